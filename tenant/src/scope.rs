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
pub(crate) async fn enter(tx: &mut PgConnection, schema: &Ident, role: &Ident) -> Result<()> {
    sqlx::query("select set_config('search_path', $1, true), set_config('role', $2, true)")
        .bind(schema.quoted())
        .bind(role.as_str())
        .execute(tx)
        .await?;
    Ok(())
}

/// The platform's database handle. School data is reachable only through [`Db::school`];
/// shared tables in `public` through [`Db::shared`].
#[derive(Clone, Debug)]
pub struct Db {
    pool: PgPool,
}

impl Db {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Opens a transaction scoped to `tenant`: its schema first (and only) on the
    /// search_path and its role as the current role, both undone when the transaction ends.
    pub async fn school(&self, tenant: &Tenant) -> Result<SchoolTx> {
        let mut tx = self.pool.begin().await?;
        enter(&mut tx, &tenant.schema, &tenant.role).await?;
        Ok(SchoolTx {
            tx,
            tenant: tenant.id,
        })
    }

    /// The pool for shared tables in `public` (registry, accounts, rollups). Queries through
    /// it must schema-qualify or rely on the default search_path; they never see a school.
    pub fn shared(&self) -> &PgPool {
        &self.pool
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
