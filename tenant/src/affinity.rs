//! Connections parked by school, so a school's next transaction gets a connection that
//! last served the same school.
//!
//! Why: every school transaction sets its own `search_path`. Postgres (up to 16) discards
//! a prepared statement's plan when it runs under a different search_path from the one it
//! was planned under, so on a pool shared by many schools nearly every statement is parsed
//! and planned again. A connection that goes back to the school it last served finds its
//! plans still valid.
//!
//! A cleanly finished school transaction parks its connection here instead of returning
//! it to the pool (which would also cost a ping). A new transaction takes, in order: a
//! connection parked by its own school, an idle connection from the pool, the connection
//! parked longest by any school, and only then waits on the pool. At most `capacity`
//! connections are parked, so the rest of the pool always circulates for shared queries,
//! and a connection parked for longer than [`PARK_FOR`] is handed back to the pool.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

use crate::registry::TenantId;

/// How long a connection stays parked before it goes back to the pool. Short enough that
/// a connection broken while parked (a restarted server) is tested by the pool soon, as
/// the pool tests connections idle for longer than this.
pub const PARK_FOR: Duration = Duration::from_secs(5);
const SWEEP_EVERY: Duration = Duration::from_millis(250);

struct Parked {
    school: TenantId,
    since: Instant,
    conn: PoolConnection<Postgres>,
}

#[derive(Default)]
struct Lot {
    /// Oldest first.
    conns: Vec<Parked>,
    /// School transactions waiting on the pool itself.
    waiting: usize,
}

/// The parked connections of one pool, which only [`crate::Db::school`] may use (anyone
/// else waiting on it would not be seen, and could wait while connections sit parked).
pub struct Parking {
    capacity: usize,
    parked: Mutex<Lot>,
    /// Connections handed out, by [`Source`] (same, pool, stolen).
    taken: [AtomicU64; 3],
}

impl std::fmt::Debug for Parking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parking")
            .field("capacity", &self.capacity)
            .field("parked", &self.len())
            .finish()
    }
}

/// Which way a school transaction got its connection (for the tests and metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Parked by the same school.
    Same = 0,
    /// Idle in the pool, or newly opened.
    Pool = 1,
    /// Parked by another school.
    Stolen = 2,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Same => "same_school",
            Source::Pool => "pool",
            Source::Stolen => "other_school",
        }
    }
}

impl Parking {
    /// Parks at most `capacity` connections; 0 turns parking off.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            parked: Mutex::new(Lot::default()),
            taken: Default::default(),
        }
    }

    /// For a pool of `size` connections: all but four (at least half) may be parked.
    pub fn for_pool_size(size: u32) -> Self {
        let size = size as usize;
        Self::new(size.saturating_sub(4).max(size / 2))
    }

    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }

    /// School transactions waiting on the pool right now.
    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connections handed out so far: from the same school, the pool, another school.
    pub fn sources(&self) -> [(Source, u64); 3] {
        [Source::Same, Source::Pool, Source::Stolen]
            .map(|s| (s, self.taken[s as usize].load(Ordering::Relaxed)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lot> {
        // A panic while holding this lock leaves the lot whole; carry on with it.
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection for `school`: see the module documentation for the order.
    pub async fn take(
        &self,
        school: TenantId,
        pool: &PgPool,
    ) -> sqlx::Result<(PoolConnection<Postgres>, Source)> {
        let (conn, source) = self.take_uncounted(school, pool).await?;
        self.taken[source as usize].fetch_add(1, Ordering::Relaxed);
        Ok((conn, source))
    }

    async fn take_uncounted(
        &self,
        school: TenantId,
        pool: &PgPool,
    ) -> sqlx::Result<(PoolConnection<Postgres>, Source)> {
        let (own, stale) = {
            let mut parked = self.lock();
            let stale = drain_stale(&mut parked.conns);
            let own = parked
                .conns
                .iter()
                .rposition(|p| p.school == school)
                .map(|i| parked.conns.remove(i).conn);
            (own, stale)
        };
        drop(stale);
        if let Some(conn) = own {
            return Ok((conn, Source::Same));
        }
        if let Some(conn) = pool.try_acquire() {
            return Ok((conn, Source::Pool));
        }
        // Nothing idle: the connection parked longest by another school, or else wait on
        // the pool — registered under the same lock, so that from then on a finishing
        // transaction hands its connection to the pool (to us) instead of parking it.
        {
            let mut parked = self.lock();
            if !parked.conns.is_empty() {
                return Ok((parked.conns.remove(0).conn, Source::Stolen));
            }
            parked.waiting += 1;
        }
        // Counted down even if this future is dropped while it waits.
        let _waiting = Waiting(self);
        Ok((pool.acquire().await?, Source::Pool))
    }

    /// Parks a connection whose transaction ended cleanly. When full, the longest-parked
    /// connection goes back to the pool to make room.
    pub fn park(&self, school: TenantId, conn: PoolConnection<Postgres>) {
        if self.capacity == 0 {
            return;
        }
        let released = {
            let mut parked = self.lock();
            if parked.waiting > 0 {
                // Someone waits on the pool: the connection goes there.
                drop(parked);
                drop(conn);
                return;
            }
            let mut released = drain_stale(&mut parked.conns);
            if parked.conns.len() >= self.capacity {
                released.push(parked.conns.remove(0));
            }
            parked.conns.push(Parked {
                school,
                since: Instant::now(),
                conn,
            });
            released
        };
        // Returned to the pool outside the lock (dropping a connection spawns its return).
        drop(released);
    }

    /// Parking for `pool` with a sweeper that hands back connections parked too long, and
    /// all of them as soon as the pool is closed (`PgPool::close` waits for every
    /// connection to come back). Outside a Tokio runtime nothing could sweep: no parking.
    pub fn for_pool(pool: &PgPool) -> Arc<Self> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Arc::new(Self::new(0));
        };
        let me = Arc::new(Self::for_pool_size(pool.options().get_max_connections()));
        if me.capacity == 0 {
            return me;
        }
        let weak = Arc::downgrade(&me);
        let pool = pool.clone();
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(parking) = weak.upgrade() else { break };
                if pool.is_closed() {
                    parking.release_all();
                    break;
                }
                let stale = drain_stale(&mut parking.lock().conns);
                drop(stale);
            }
        });
        me
    }

    /// Hands every parked connection back to the pool (before the pool is closed, which
    /// waits for every connection to come back).
    pub fn release_all(&self) {
        let all = std::mem::take(&mut self.lock().conns);
        drop(all);
    }
}

struct Waiting<'a>(&'a Parking);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.lock().waiting -= 1;
    }
}

fn drain_stale(parked: &mut Vec<Parked>) -> Vec<Parked> {
    let fresh_from = parked
        .iter()
        .position(|p| p.since.elapsed() < PARK_FOR)
        .unwrap_or(parked.len());
    parked.drain(..fresh_from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_keeps_some_connections_unparked() {
        assert_eq!(Parking::for_pool_size(20).capacity, 16);
        assert_eq!(Parking::for_pool_size(6).capacity, 3);
        assert_eq!(Parking::for_pool_size(2).capacity, 1);
        assert_eq!(Parking::for_pool_size(1).capacity, 0);
    }
}
