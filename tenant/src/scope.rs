//! The only door to a school's tables: a transaction that has set `search_path` and `ROLE`
//! for that school with `set_config(…, true)` (i.e. `SET LOCAL`).
//!
//! Because both settings are transaction-local, Postgres itself resets them at COMMIT or
//! ROLLBACK: a pooled connection (or a PgBouncer server connection in transaction mode)
//! can never carry one school's scope into the next request. Because the role owns only
//! its own schema, even a schema-qualified query for another school fails with
//! "permission denied" instead of returning rows.

use std::ops::{Deref, DerefMut};

use sqlx::{PgConnection, PgPool, Postgres, Transaction};

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
}

impl Db {
    /// Both school and shared work on one directly connected pool.
    pub fn new(pool: PgPool) -> Self {
        Self {
            school_pool: pool.clone(),
            shared_pool: pool,
            pgbouncer: false,
        }
    }

    /// School transactions through PgBouncer in transaction pooling mode, shared queries on
    /// a direct pool. Statements outside an explicit transaction cannot go through such a
    /// pooler (the client prepares and executes in two round trips, which PgBouncer may send
    /// to two different servers), and shared queries are mostly single statements.
    pub fn behind_pgbouncer(school_pool: PgPool, shared_pool: PgPool) -> Self {
        Self {
            school_pool,
            shared_pool,
            pgbouncer: true,
        }
    }

    /// Opens a transaction scoped to `tenant`: its schema first (and only) on the
    /// search_path and its role as the current role, both undone when the transaction ends.
    pub async fn school(&self, tenant: &Tenant) -> Result<SchoolTx> {
        let mut tx = self.school_pool.begin().await?;
        sqlx::Executor::execute(
            &mut *tx,
            scope_sql(&tenant.schema, &tenant.role, self.pgbouncer).as_str(),
        )
        .await?;
        Ok(SchoolTx {
            tx,
            tenant: tenant.id,
        })
    }

    /// The pool for shared tables in `public` (registry, accounts, rollups). Queries through
    /// it must schema-qualify or rely on the default search_path; they never see a school.
    pub fn shared(&self) -> &PgPool {
        &self.shared_pool
    }
}

/// A transaction inside one school's schema, as that school's role. Dereferences to the
/// connection so it can be used as an executor: `query(..).fetch_all(&mut *tx)`.
#[derive(Debug)]
pub struct SchoolTx {
    tx: Transaction<'static, Postgres>,
    tenant: TenantId,
}

impl SchoolTx {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl Deref for SchoolTx {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for SchoolTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
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
}
