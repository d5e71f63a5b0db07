//! The only door to a school's tables: a transaction that has set `search_path` and `ROLE`
//! for that school with `set_config(…, true)` (i.e. `SET LOCAL`).
//!
//! Because both settings are transaction-local, Postgres itself resets them at COMMIT or
//! ROLLBACK: a pooled connection (or a PgBouncer server connection in transaction mode)
//! can never carry one school's scope into the next request. Because the role owns only
//! its own schema, even a schema-qualified query for another school fails with
//! "permission denied" instead of returning rows.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres, TransactionManager};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::affinity::{Parking, Source};
use crate::error::Result;
use crate::registry::{Tenant, TenantId};
use crate::slug::Ident;

/// Sets the school's scope on the current transaction. Crate-private: callers go through
/// [`Db::school`], which always opens a fresh transaction first.
///
/// Sent as one simple-protocol query (no prepared statement, one round trip). The names
/// are [`Ident`]s — lowercase ASCII letters, digits and underscores only — so they cannot
/// break out of the literals.
pub(crate) async fn enter(tx: &mut PgConnection, schema: &Ident, role: &Ident) -> Result<()> {
    sqlx::Executor::execute(tx, scope_sql(schema, role, false).as_str()).await?;
    Ok(())
}

fn scope_sql(schema: &Ident, role: &Ident, pgbouncer: bool) -> String {
    // Behind PgBouncer in transaction mode, statements prepared by another client may be
    // left on this server connection; our client never reuses them (its statement cache is
    // off), so dropping them first keeps names from colliding.
    let reset = if pgbouncer { "deallocate all; " } else { "" };
    format!(
        "{reset}select set_config('search_path', '{}', true), set_config('role', '{}', true)",
        schema.quoted(),
        role.as_str()
    )
}

/// The platform's database handle. School data is reachable only through [`Db::school`];
/// shared tables in `public` through [`Db::shared`].
#[derive(Clone, Debug)]
pub struct Db {
    school_pool: PgPool,
    shared_pool: PgPool,
    pgbouncer: bool,
    /// Each school's fair share of `school_pool` (see [`SchoolGate`]).
    gate: Arc<SchoolGate>,
    /// Connections kept for the school they last served (see [`crate::affinity`]).
    parking: Arc<Parking>,
    /// Called after a commit that asked for it (see [`SchoolTx::wake_after_commit`]).
    wake: Option<Wake>,
}

/// What a committed transaction that asked for it calls: the notification workers'
/// doorbell, rung after the commit so that the commit itself never waits for it.
#[derive(Clone)]
pub struct Wake(pub Arc<dyn Fn(TenantId) + Send + Sync>);

impl std::fmt::Debug for Wake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wake")
    }
}

type PgTransactions = <Postgres as sqlx::Database>::TransactionManager;

/// How long a school transaction waits for its school's share of the pool before the
/// request is answered "busy" (the same error as an exhausted pool).
pub const DEFAULT_SCHOOL_WAIT: Duration = Duration::from_secs(5);

impl Db {
    /// Both school and shared work on one directly connected pool; no connection is kept
    /// for its school (tools, tests, short-lived handles).
    pub fn new(pool: PgPool) -> Self {
        Self {
            gate: SchoolGate::for_pool(&pool),
            parking: Arc::new(Parking::new(0)),
            school_pool: pool.clone(),
            shared_pool: pool,
            pgbouncer: false,
            wake: None,
        }
    }

    /// School transactions on `school_pool`, which nothing else may use, with connections
    /// kept for the school they last served (see [`crate::affinity`]); shared queries on
    /// `shared_pool`.
    pub fn with_affinity(school_pool: PgPool, shared_pool: PgPool) -> Self {
        Self {
            gate: SchoolGate::for_pool(&school_pool),
            parking: Parking::for_pool(&school_pool),
            school_pool,
            shared_pool,
            pgbouncer: false,
            wake: None,
        }
    }

    /// School transactions through PgBouncer in transaction pooling mode, shared queries on
    /// a direct pool. Statements outside an explicit transaction cannot go through such a
    /// pooler (the client prepares and executes in two round trips, which PgBouncer may send
    /// to two different servers), and shared queries are mostly single statements.
    pub fn behind_pgbouncer(school_pool: PgPool, shared_pool: PgPool) -> Self {
        Self {
            gate: SchoolGate::for_pool(&school_pool),
            // Through the pooler, the next transaction may get any server connection:
            // nothing to keep.
            parking: Arc::new(Parking::new(0)),
            school_pool,
            shared_pool,
            pgbouncer: true,
            wake: None,
        }
    }

    /// What a transaction that calls [`SchoolTx::wake_after_commit`] calls once it has
    /// committed.
    pub fn with_wake(mut self, wake: Wake) -> Self {
        self.wake = Some(wake);
        self
    }

    /// How long a school transaction may wait for its school's share of the pool.
    pub fn with_school_wait(mut self, wait: Duration) -> Self {
        self.gate = Arc::new(SchoolGate::new(self.gate.pool_size, wait));
        self
    }

    /// The per-school shares of the pool, for metrics.
    pub fn gate(&self) -> &SchoolGate {
        &self.gate
    }

    /// The pool school transactions run on (its size and idle count are metrics).
    pub fn school_pool(&self) -> &PgPool {
        &self.school_pool
    }

    /// Connections idle but kept for the school they last served (not counted idle by
    /// the pool).
    pub fn parked(&self) -> usize {
        self.parking.len()
    }

    /// School transactions waiting for a connection of the pool right now.
    pub fn waiting_for_connection(&self) -> usize {
        self.parking.waiting()
    }

    /// School transactions so far by where their connection came from.
    pub fn connection_sources(&self) -> [(Source, u64); 3] {
        self.parking.sources()
    }

    /// Hands the parked connections back and closes the pools. (`PgPool::close` alone
    /// also works: the parking's sweeper notices and hands them back within a moment.)
    pub async fn close(&self) {
        self.parking.release_all();
        self.school_pool.close().await;
        self.shared_pool.close().await;
    }

    /// Opens a transaction scoped to `tenant`: its schema first (and only) on the
    /// search_path and its role as the current role, both undone when the transaction ends.
    ///
    /// First it takes one of the school's permits (its plan's `db_concurrency`, at most the
    /// pool size less one), held until the transaction ends: one busy school cannot occupy
    /// the whole pool and make every other school wait.
    pub async fn school(&self, tenant: &Tenant) -> Result<SchoolTx> {
        self.begin_school(tenant, "").await
    }

    /// Like [`Db::school`], with the transaction's statements planned as `plans` says
    /// (`plan_cache_mode`, local to the transaction). Postgres's own choice goes wrong both
    /// ways for statements over bound arrays (`unnest($1)`, `= any($1)`), which it cannot
    /// size: it re-plans a small hot statement on every call, or keeps a plan made for ten
    /// elements for calls with hundreds.
    pub async fn school_planned(&self, tenant: &Tenant, plans: Plans) -> Result<SchoolTx> {
        let setting = match plans {
            Plans::Generic => ", set_config('plan_cache_mode', 'force_generic_plan', true)",
            Plans::Custom => ", set_config('plan_cache_mode', 'force_custom_plan', true)",
        };
        self.begin_school(tenant, setting).await
    }

    async fn begin_school(&self, tenant: &Tenant, settings: &str) -> Result<SchoolTx> {
        let permit = self.gate.acquire(tenant).await?;
        // BEGIN and the scope in one simple-protocol query: one round trip, not two, on
        // every request that touches a school.
        let begin = format!(
            "begin; {}{settings}",
            scope_sql(&tenant.schema, &tenant.role, self.pgbouncer)
        );
        // sqlx logs no event for the statement that opens a transaction; this one goes
        // with its statement events (`RUST_LOG=sqlx=debug`), so a trace of a request
        // shows which school each transaction entered.
        tracing::debug!(target: "sqlx::query", summary = "begin", db.statement = begin.as_str(), "school transaction");
        let (mut conn, source) = self.parking.take(tenant.id, &self.school_pool).await?;
        // If BEGIN fails the connection goes back to the pool, which tests it.
        PgTransactions::begin(&mut conn, Some(begin.into())).await?;
        Ok(SchoolTx {
            conn: Some(conn),
            open: true,
            source,
            parking: Arc::clone(&self.parking),
            tenant: tenant.id,
            wake: false,
            db_wake: self.wake.clone(),
            _permit: permit,
        })
    }

    /// The pool for shared tables in `public` (registry, accounts, rollups). Queries through
    /// it must schema-qualify or rely on the default search_path; they never see a school.
    pub fn shared(&self) -> &PgPool {
        &self.shared_pool
    }
}

/// How the statements of a school transaction are planned (see [`Db::school_planned`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plans {
    /// Planned once per connection and the plan kept: for hot paths whose statements have
    /// one good plan whatever the values (gate ingest, where planning was a third of
    /// Postgres's time).
    Generic,
    /// Planned for each call's values: for heavy statements whose best plan depends on
    /// how many values they get (the dashboard's rollups, a day or a year of days).
    Custom,
}

/// A transaction inside one school's schema, as that school's role. Dereferences to the
/// connection so it can be used as an executor: `query(..).fetch_all(&mut *tx)`.
///
/// Dropped without [`SchoolTx::commit`], it rolls back (sent before the connection's next
/// use, as `sqlx::Transaction` does) and the connection goes back to the pool. Committed
/// or rolled back, the connection is parked for the school's next transaction.
pub struct SchoolTx {
    // Declared before the permit: fields drop in order, so the connection goes back to the
    // pool before the school's next transaction is let in. `None` only once finished.
    conn: Option<PoolConnection<Postgres>>,
    open: bool,
    source: Source,
    parking: Arc<Parking>,
    tenant: TenantId,
    /// Set by [`SchoolTx::wake_after_commit`].
    wake: bool,
    db_wake: Option<Wake>,
    _permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for SchoolTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchoolTx")
            .field("tenant", &self.tenant)
            .field("open", &self.open)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl SchoolTx {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant
    }

    /// Where this transaction's connection came from.
    pub fn connection_source(&self) -> Source {
        self.source
    }

    /// Asks for the [`Db::with_wake`] call once this transaction has committed (nothing
    /// happens if it rolls back).
    pub fn wake_after_commit(&mut self) {
        self.wake = true;
    }

    pub async fn commit(mut self) -> Result<()> {
        PgTransactions::commit(self.conn_mut()).await?;
        self.finish();
        if self.wake {
            if let Some(wake) = &self.db_wake {
                (wake.0)(self.tenant);
            }
        }
        Ok(())
    }

    pub async fn rollback(mut self) -> Result<()> {
        PgTransactions::rollback(self.conn_mut()).await?;
        self.finish();
        Ok(())
    }

    fn conn_mut(&mut self) -> &mut PgConnection {
        self.conn
            .as_mut()
            .expect("a school transaction's connection")
    }

    fn finish(&mut self) {
        self.open = false;
        if let Some(conn) = self.conn.take() {
            self.parking.park(self.tenant, conn);
        }
    }
}

impl Drop for SchoolTx {
    fn drop(&mut self) {
        if self.open {
            if let Some(conn) = self.conn.as_mut() {
                PgTransactions::start_rollback(conn);
            }
        }
    }
}

impl Deref for SchoolTx {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.conn
            .as_ref()
            .expect("a school transaction's connection")
    }
}

impl DerefMut for SchoolTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn_mut()
    }
}

/// Caps each school's concurrent transactions in this instance with a semaphore per
/// school, sized from its limits and the pool. Schools idle for ten minutes are forgotten,
/// so the map holds only schools in use (a few hundred bytes each).
pub struct SchoolGate {
    pool_size: u32,
    wait: Duration,
    schools: moka::sync::Cache<TenantId, Arc<SchoolShare>>,
}

impl std::fmt::Debug for SchoolGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchoolGate")
            .field("pool_size", &self.pool_size)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

/// One school's share of the pool and what happened at its door.
#[derive(Debug)]
pub struct SchoolShare {
    pub slug: String,
    pub permits: u32,
    semaphore: Arc<Semaphore>,
    waiting: AtomicI64,
    /// Transactions that found every permit taken and had to wait.
    pub waits: AtomicU64,
    /// Of those, the ones that gave up after the wait limit.
    pub timeouts: AtomicU64,
    /// Total time spent waiting, in microseconds.
    pub wait_micros: AtomicU64,
}

impl SchoolShare {
    /// Transactions of this school open right now.
    pub fn in_use(&self) -> u32 {
        self.permits
            .saturating_sub(self.semaphore.available_permits() as u32)
    }

    /// Transactions of this school waiting for a permit right now.
    pub fn waiting(&self) -> i64 {
        self.waiting.load(Ordering::Relaxed)
    }
}

impl SchoolGate {
    fn for_pool(pool: &PgPool) -> Arc<Self> {
        Arc::new(Self::new(
            pool.options().get_max_connections(),
            DEFAULT_SCHOOL_WAIT,
        ))
    }

    pub fn new(pool_size: u32, wait: Duration) -> Self {
        Self {
            pool_size,
            wait,
            schools: moka::sync::Cache::builder()
                .time_to_idle(Duration::from_secs(600))
                .build(),
        }
    }

    /// The permits a school gets: its `db_concurrency`, at least one, and at most the pool
    /// less one connection, which always stays free for the other schools.
    pub fn permits_for(&self, wanted: i32) -> u32 {
        let most = self.pool_size.saturating_sub(1).max(1);
        u32::try_from(wanted).unwrap_or(1).clamp(1, most)
    }

    fn share(&self, tenant: &Tenant) -> Arc<SchoolShare> {
        let permits = self.permits_for(tenant.limits.db_concurrency);
        match self.schools.get(&tenant.id) {
            Some(s) if s.permits == permits => s,
            // New, or its limit changed: a fresh semaphore. Transactions holding the old
            // one finish normally; for their lifetime both counts apply.
            _ => {
                let share = Arc::new(SchoolShare {
                    slug: tenant.slug.to_string(),
                    permits,
                    semaphore: Arc::new(Semaphore::new(permits as usize)),
                    waiting: AtomicI64::new(0),
                    waits: AtomicU64::new(0),
                    timeouts: AtomicU64::new(0),
                    wait_micros: AtomicU64::new(0),
                });
                self.schools.insert(tenant.id, Arc::clone(&share));
                share
            }
        }
    }

    async fn acquire(&self, tenant: &Tenant) -> Result<OwnedSemaphorePermit> {
        let share = self.share(tenant);
        if let Ok(permit) = Arc::clone(&share.semaphore).try_acquire_owned() {
            return Ok(permit);
        }
        share.waits.fetch_add(1, Ordering::Relaxed);
        share.waiting.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(self.wait, Arc::clone(&share.semaphore).acquire_owned()).await;
        share.waiting.fetch_sub(1, Ordering::Relaxed);
        share.wait_micros.fetch_add(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        match outcome {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; a timeout is this school using its whole share.
            _ => {
                share.timeouts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(school = %tenant.slug, permits = share.permits,
                    "school transaction waited too long for its share of the database pool");
                Err(sqlx::Error::PoolTimedOut.into())
            }
        }
    }

    /// Every school seen recently, with its permits, use and waits.
    pub fn shares(&self) -> Vec<Arc<SchoolShare>> {
        self.schools.iter().map(|(_, s)| s).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_statement_quotes_the_schema_and_resets_only_behind_pgbouncer() {
        let schema = Ident::from_registry("school_xinyi").unwrap();
        let role = Ident::from_registry("campus_school_xinyi").unwrap();
        assert_eq!(
            scope_sql(&schema, &role, false),
            "select set_config('search_path', '\"school_xinyi\"', true), set_config('role', 'campus_school_xinyi', true)"
        );
        assert!(scope_sql(&schema, &role, true).starts_with("deallocate all; select"));
    }

    #[test]
    fn a_school_never_gets_the_whole_pool() {
        let gate = SchoolGate::new(20, DEFAULT_SCHOOL_WAIT);
        assert_eq!(gate.permits_for(8), 8);
        assert_eq!(gate.permits_for(500), 19);
        assert_eq!(gate.permits_for(0), 1);
        assert_eq!(gate.permits_for(-3), 1);
        assert_eq!(SchoolGate::new(1, DEFAULT_SCHOOL_WAIT).permits_for(4), 1);
    }
}
