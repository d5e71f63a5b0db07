//! Versioned, checksummed migrations for the shared schema and for every school schema.
//!
//! Files live in `migrations/public` and `migrations/tenant` and are embedded at build
//! time. Each migration runs in its own transaction under a transaction-scoped advisory
//! lock, so a crash leaves a school at its last good version, two `campus migrate` runs
//! never collide, and a failure in one school never touches another. A school's
//! migrations run *as the school's own role*, so every object belongs to that role.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, PgPool};

use crate::error::{Result, TenantError};
use crate::registry::{self, Tenant, TenantStatus};
use crate::scope;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_migrations.rs"));
}

/// One migration file.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
    pub checksum: String,
}

/// An ordered set of migrations, e.g. every tenant migration in this build.
#[derive(Debug)]
pub struct MigrationSet {
    pub migrations: Vec<Migration>,
}

impl MigrationSet {
    /// Builds a set from `(file name, SQL)` pairs; names start with the version number.
    pub fn from_files(files: &[(&'static str, &'static str)]) -> Self {
        let mut migrations: Vec<Migration> = files
            .iter()
            .map(|(name, sql)| {
                let version = name
                    .split('_')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| {
                        panic!("migration {name} must start with a number, e.g. 0007_name.sql")
                    });
                Migration {
                    version,
                    name,
                    sql,
                    checksum: hex::encode(Sha256::digest(sql.as_bytes())),
                }
            })
            .collect();
        migrations.sort_by_key(|m| m.version);
        for pair in migrations.windows(2) {
            assert!(
                pair[0].version != pair[1].version,
                "two migrations share version {}",
                pair[0].version
            );
        }
        Self { migrations }
    }

    pub fn latest_version(&self) -> i32 {
        self.migrations.last().map_or(0, |m| m.version)
    }

    /// A digest over every migration's name and checksum: equal digests mean a schema has
    /// exactly this build's migrations applied.
    pub fn digest(&self) -> String {
        digest(
            self.migrations
                .iter()
                .map(|m| (m.name, m.checksum.as_str())),
        )
    }
}

fn digest<'a>(items: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut hasher = Sha256::new();
    for (name, checksum) in items {
        hasher.update(name.as_bytes());
        hasher.update(b":");
        hasher.update(checksum.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

pub static PUBLIC: LazyLock<MigrationSet> =
    LazyLock::new(|| MigrationSet::from_files(embedded::PUBLIC));
pub static TENANT: LazyLock<MigrationSet> =
    LazyLock::new(|| MigrationSet::from_files(embedded::TENANT));

const CREATE_LEDGER: &str = "create table if not exists _campus_migrations (
    version     integer primary key,
    name        text not null,
    checksum    text not null,
    applied_at  timestamptz not null default now(),
    duration_ms integer not null
)";

/// Applied migrations in the current search_path: (version, name, checksum).
async fn applied(conn: &mut PgConnection) -> Result<Vec<(i32, String, String)>> {
    Ok(
        sqlx::query_as("select version, name, checksum from _campus_migrations order by version")
            .fetch_all(conn)
            .await?,
    )
}

fn check_checksums(set: &MigrationSet, applied: &[(i32, String, String)]) -> Result<()> {
    for (version, name, checksum) in applied {
        if let Some(m) = set.migrations.iter().find(|m| m.version == *version) {
            if &m.checksum != checksum {
                return Err(TenantError::ChecksumMismatch {
                    name: name.clone(),
                    applied: checksum.clone(),
                    embedded: m.checksum.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Brings `public` up to date. Safe to run from many instances at once.
pub async fn migrate_public(pool: &PgPool) -> Result<Vec<&'static str>> {
    let mut conn = pool.acquire().await?;
    let mut done = Vec::new();
    for m in &PUBLIC.migrations {
        let mut tx = conn.begin().await?;
        sqlx::query("select pg_advisory_xact_lock(hashtext('campus-migrate-public'))")
            .execute(&mut *tx)
            .await?;
        sqlx::query("set local search_path to public")
            .execute(&mut *tx)
            .await?;
        sqlx::query(CREATE_LEDGER).execute(&mut *tx).await?;
        let applied = applied(&mut tx).await?;
        check_checksums(&PUBLIC, &applied)?;
        if applied.iter().any(|(v, ..)| *v == m.version) {
            continue;
        }
        let started = Instant::now();
        sqlx::Executor::execute(&mut *tx, m.sql)
            .await
            .map_err(|e| TenantError::Migration {
                slug: "public".into(),
                migration: m.name.into(),
                message: e.to_string(),
            })?;
        record(&mut tx, m, started.elapsed()).await?;
        tx.commit().await?;
        done.push(m.name);
    }
    Ok(done)
}

async fn record(conn: &mut PgConnection, m: &Migration, took: Duration) -> Result<()> {
    sqlx::query("insert into _campus_migrations (version, name, checksum, duration_ms) values ($1, $2, $3, $4)")
        .bind(m.version)
        .bind(m.name)
        .bind(&m.checksum)
        .bind(i32::try_from(took.as_millis()).unwrap_or(i32::MAX))
        .execute(conn)
        .await?;
    Ok(())
}

/// Applies the pending tenant migrations to one school, each in its own transaction,
/// running as the school's role inside the school's schema. Returns what was applied.
pub async fn migrate_tenant(conn: &mut PgConnection, tenant: &Tenant) -> Result<Vec<&'static str>> {
    migrate_tenant_with(conn, tenant, &TENANT).await
}

/// [`migrate_tenant`] with an explicit set of migrations (tests and benchmarks add some).
pub async fn migrate_tenant_with(
    conn: &mut PgConnection,
    tenant: &Tenant,
    set: &MigrationSet,
) -> Result<Vec<&'static str>> {
    let mut done = Vec::new();
    let fail = |m: &Migration, e: &dyn std::fmt::Display| TenantError::Migration {
        slug: tenant.slug.to_string(),
        migration: m.name.into(),
        message: e.to_string(),
    };
    for m in &set.migrations {
        let mut tx = conn.begin().await?;
        apply_one(&mut tx, tenant, set, m, &mut done)
            .await
            .map_err(|e| match e {
                TenantError::Database(db) => fail(m, &db),
                other => other,
            })?;
        tx.commit().await?;
    }
    record_version(conn, tenant).await?;
    Ok(done)
}

async fn apply_one(
    tx: &mut PgConnection,
    tenant: &Tenant,
    set: &MigrationSet,
    m: &Migration,
    done: &mut Vec<&'static str>,
) -> Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtext('campus-migrate:' || $1))")
        .bind(tenant.schema.as_str())
        .execute(&mut *tx)
        .await?;
    scope::enter(tx, &tenant.schema, &tenant.role).await?;
    sqlx::query(CREATE_LEDGER).execute(&mut *tx).await?;
    let applied = applied(tx).await?;
    check_checksums(set, &applied)?;
    if applied.iter().any(|(v, ..)| *v == m.version) {
        return Ok(());
    }
    let started = Instant::now();
    sqlx::Executor::execute(&mut *tx, m.sql).await?;
    record(tx, m, started.elapsed()).await?;
    done.push(m.name);
    Ok(())
}

/// Applies every tenant migration inside an already open transaction (onboarding uses this
/// so that creating a school is all-or-nothing). The caller resets the role afterwards.
pub(crate) async fn migrate_tenant_in(tx: &mut PgConnection, tenant: &Tenant) -> Result<()> {
    let mut done = Vec::new();
    for m in &TENANT.migrations {
        apply_one(tx, tenant, &TENANT, m, &mut done)
            .await
            .map_err(|e| match e {
                TenantError::Database(db) => TenantError::Migration {
                    slug: tenant.slug.to_string(),
                    migration: m.name.into(),
                    message: db.to_string(),
                },
                other => other,
            })?;
    }
    Ok(())
}

/// Stores the school's applied version and digest in the registry so later runs can skip it.
async fn record_version(conn: &mut PgConnection, tenant: &Tenant) -> Result<()> {
    let mut tx = conn.begin().await?;
    scope::enter(&mut tx, &tenant.schema, &tenant.role).await?;
    let applied = applied(&mut tx).await?;
    sqlx::query(
        "select set_config('role', 'none', true), set_config('search_path', 'public', true)",
    )
    .execute(&mut *tx)
    .await?;
    let version = applied.last().map_or(0, |(v, ..)| *v);
    let digest = digest(applied.iter().map(|(_, n, c)| (n.as_str(), c.as_str())));
    sqlx::query("update public.tenants set schema_version = $2, schema_digest = $3 where id = $1")
        .bind(tenant.id.0)
        .bind(version)
        .bind(digest)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// What happened to one school during `campus migrate`.
#[derive(Debug, Serialize)]
pub struct TenantOutcome {
    pub slug: String,
    #[serde(flatten)]
    pub result: OutcomeKind,
    pub millis: u128,
}

#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OutcomeKind {
    UpToDate,
    Migrated { applied: Vec<&'static str> },
    Failed { error: String },
}

#[derive(Debug, Clone, Copy)]
pub struct MigrateOptions {
    /// How many schools are migrated at once (each holds one connection).
    pub concurrency: usize,
    /// Visit every schema and compare checksums even when the registry says it is current.
    pub verify: bool,
}

/// Migrates every school that is not deleted. Schools already at this build's digest are
/// skipped without touching their schema unless `verify` is set. `progress` is called as
/// each school finishes.
pub async fn migrate_all(
    pool: &PgPool,
    opts: MigrateOptions,
    progress: impl Fn(&TenantOutcome),
) -> Result<Vec<TenantOutcome>> {
    migrate_all_with(pool, &TENANT, opts, progress).await
}

/// [`migrate_all`] with an explicit set of migrations.
pub async fn migrate_all_with(
    pool: &PgPool,
    set: &MigrationSet,
    opts: MigrateOptions,
    progress: impl Fn(&TenantOutcome),
) -> Result<Vec<TenantOutcome>> {
    let digest = set.digest();
    let rows: Vec<(String, i32, String)> =
        sqlx::query_as("select slug, schema_version, schema_digest from public.tenants where status <> 'deleted' order by slug")
            .fetch_all(pool)
            .await?;
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut pending = Vec::new();
    for (slug, version, d) in rows {
        if !opts.verify && version == set.latest_version() && d == digest {
            let outcome = TenantOutcome {
                slug,
                result: OutcomeKind::UpToDate,
                millis: 0,
            };
            progress(&outcome);
            outcomes.push(outcome);
        } else {
            pending.push(slug);
        }
    }
    let mut stream = futures::stream::iter(pending)
        .map(|slug| async move {
            let started = Instant::now();
            let result = migrate_by_slug(pool, set, &slug).await;
            let result = match result {
                Ok(applied) if applied.is_empty() => OutcomeKind::UpToDate,
                Ok(applied) => OutcomeKind::Migrated { applied },
                Err(e) => OutcomeKind::Failed {
                    error: e.to_string(),
                },
            };
            TenantOutcome {
                slug,
                result,
                millis: started.elapsed().as_millis(),
            }
        })
        .buffer_unordered(opts.concurrency.max(1));
    while let Some(outcome) = stream.next().await {
        progress(&outcome);
        outcomes.push(outcome);
    }
    outcomes.sort_by(|a, b| a.slug.cmp(&b.slug));
    Ok(outcomes)
}

async fn migrate_by_slug(
    pool: &PgPool,
    set: &MigrationSet,
    slug: &str,
) -> Result<Vec<&'static str>> {
    let slug = crate::Slug::parse(slug)?;
    let tenant = registry::get(pool, &slug).await?;
    if tenant.status == TenantStatus::Deleted {
        return Ok(Vec::new());
    }
    let mut conn = pool.acquire().await?;
    migrate_tenant_with(&mut conn, &tenant, set).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_sets_are_ordered_and_checksummed() {
        assert!(!PUBLIC.migrations.is_empty());
        assert!(!TENANT.migrations.is_empty());
        for set in [&*PUBLIC, &*TENANT] {
            assert!(set
                .migrations
                .windows(2)
                .all(|w| w[0].version < w[1].version));
            assert!(set.migrations.iter().all(|m| m.checksum.len() == 64));
        }
        assert_eq!(TENANT.digest(), TENANT.digest());
        assert_ne!(TENANT.digest(), PUBLIC.digest());
    }

    /// True if the text contains `school_<ident>.` — a schema-qualified name.
    fn names_a_school_schema(sql: &str) -> bool {
        sql.match_indices("school_").any(|(i, _)| {
            let rest = &sql[i + "school_".len()..];
            let ident_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            ident_len > 0 && rest[ident_len..].starts_with('.')
        })
    }

    #[test]
    fn the_schema_name_check_finds_qualified_names() {
        assert!(names_a_school_schema("select * from school_abc.students"));
        assert!(!names_a_school_schema(
            "create table school_profile (id int)"
        ));
    }

    #[test]
    fn tenant_migrations_never_name_another_schema() {
        // A school's migration runs inside its own schema; naming `public.` or another
        // school would break isolation and the Citus schema-sharding path.
        for m in &TENANT.migrations {
            let lower = m.sql.to_lowercase();
            assert!(!lower.contains("public."), "{} mentions public.", m.name);
            assert!(
                !names_a_school_schema(&lower),
                "{} names a school schema",
                m.name
            );
            assert!(
                !lower.contains("search_path"),
                "{} changes search_path",
                m.name
            );
        }
    }
}
