//! The `public.tenants` registry: who the schools are, where their data lives, and in
//! what state they are. Read by the router, written by [`crate::lifecycle`].

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgExecutor, PgPool, Row};
use utoipa::ToSchema;

use crate::error::{Result, TenantError};
use crate::slug::{Hostname, Ident, Slug};

/// A school's database id in `public.tenants`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(transparent)]
pub struct TenantId(pub i64);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    /// Onboarding started but did not finish; the next onboarding call completes it.
    Provisioning,
    Active,
    /// Reachable only to show a "suspended" page; data kept.
    Suspended,
    /// Soft-deleted: invisible, purged after the grace period unless resumed.
    Deleted,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }

    fn parse(raw: &str) -> Self {
        match raw {
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            "deleted" => Self::Deleted,
            _ => Self::Provisioning,
        }
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One school as the platform knows it. Cheap to clone behind an [`Arc`]; the router puts
/// one into every school request.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    #[schema(value_type = String, example = "xinyi")]
    pub slug: Slug,
    pub name: String,
    pub status: TenantStatus,
    pub plan: String,
    /// Extra host names besides `<slug>.<base domain>`.
    pub hostnames: Vec<String>,
    pub s3_prefix: String,
    /// Per-school override of the plan's requests per second (null: the plan's).
    pub requests_per_second: Option<i32>,
    /// Per-school override of the plan's burst (null: the plan's).
    pub burst: Option<i32>,
    /// Per-school override of the plan's concurrent database transactions (null: the plan's).
    pub db_concurrency: Option<i32>,
    /// The limits in force: the overrides above where set, else the plan's.
    pub limits: Limits,
    pub suspended_reason: Option<String>,
    pub schema_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub purge_after: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub(crate) schema: Ident,
    #[serde(skip)]
    pub(crate) role: Ident,
}

impl Tenant {
    pub fn schema_name(&self) -> &str {
        self.schema.as_str()
    }

    pub fn role_name(&self) -> &str {
        self.role.as_str()
    }
}

pub type SharedTenant = Arc<Tenant>;

/// A school's limits in force, resolved from its plan and its own overrides when the
/// school is read, so the router's cached school carries them to every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Limits {
    /// Sustained requests per second to the school's host, per instance.
    pub requests_per_second: i32,
    /// Requests allowed at once above the sustained rate.
    pub burst: i32,
    /// School transactions open at once per instance (capped below the pool size).
    pub db_concurrency: i32,
}

const SELECT: &str = "select t.id, t.slug, t.name, t.status, t.plan, t.s3_prefix, t.schema_name, t.db_role,
        t.requests_per_second, t.burst, t.db_concurrency, t.suspended_reason, t.schema_version,
        t.created_at, t.updated_at, t.deleted_at, t.purge_after,
        coalesce(t.requests_per_second, p.requests_per_second) as limit_rps,
        coalesce(t.burst, p.burst) as limit_burst,
        coalesce(t.db_concurrency, p.db_concurrency) as limit_db,
        coalesce(array(select h.hostname from tenant_hostnames h where h.tenant_id = t.id order by h.hostname), '{}') as hostnames
    from public.tenants t join public.plans p on p.code = t.plan";

fn from_row(row: &sqlx::postgres::PgRow) -> Result<Tenant> {
    let slug: String = row.try_get("slug")?;
    let schema: String = row.try_get("schema_name")?;
    let role: String = row.try_get("db_role")?;
    let bad = |what: &str, v: &str| {
        TenantError::Invalid(format!("registry row has an invalid {what} {v:?}"))
    };
    Ok(Tenant {
        id: TenantId(row.try_get("id")?),
        slug: Slug::parse(&slug).map_err(|_| bad("slug", &slug))?,
        name: row.try_get("name")?,
        status: TenantStatus::parse(row.try_get::<&str, _>("status")?),
        plan: row.try_get("plan")?,
        hostnames: row.try_get("hostnames")?,
        s3_prefix: row.try_get("s3_prefix")?,
        requests_per_second: row.try_get("requests_per_second")?,
        burst: row.try_get("burst")?,
        db_concurrency: row.try_get("db_concurrency")?,
        limits: Limits {
            requests_per_second: row.try_get("limit_rps")?,
            burst: row.try_get("limit_burst")?,
            db_concurrency: row.try_get("limit_db")?,
        },
        suspended_reason: row.try_get("suspended_reason")?,
        schema_version: row.try_get("schema_version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        deleted_at: row.try_get("deleted_at")?,
        purge_after: row.try_get("purge_after")?,
        schema: Ident::from_registry(&schema).ok_or_else(|| bad("schema", &schema))?,
        role: Ident::from_registry(&role).ok_or_else(|| bad("role", &role))?,
    })
}

/// Every school, ordered by slug (deleted ones included: callers filter).
pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<Tenant>> {
    let rows = sqlx::query(&format!("{SELECT} order by t.slug"))
        .fetch_all(db)
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn find_by_slug(db: impl PgExecutor<'_>, slug: &Slug) -> Result<Option<Tenant>> {
    let row = sqlx::query(&format!("{SELECT} where t.slug = $1"))
        .bind(slug.as_str())
        .fetch_optional(db)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn find_by_id(db: impl PgExecutor<'_>, id: TenantId) -> Result<Option<Tenant>> {
    let row = sqlx::query(&format!("{SELECT} where t.id = $1"))
        .bind(id.0)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn get(db: impl PgExecutor<'_>, slug: &Slug) -> Result<Tenant> {
    find_by_slug(db, slug)
        .await?
        .ok_or_else(|| TenantError::NotFound(slug.to_string()))
}

/// The school that answers on `host`: either `<slug>.<base domain>` or an extra hostname.
pub async fn find_by_host(
    pool: &PgPool,
    host: &Hostname,
    base_domain: &str,
) -> Result<Option<Tenant>> {
    let slug = host
        .as_str()
        .strip_suffix(base_domain)
        .and_then(|rest| rest.strip_suffix('.'))
        .filter(|label| !label.contains('.'))
        .and_then(|label| Slug::parse(label).ok());
    let row = sqlx::query(&format!(
        "{SELECT} where t.slug = $1 or t.id = (select tenant_id from tenant_hostnames where hostname = $2)
         order by (t.slug = $1) desc limit 1"
    ))
    .bind(slug.as_ref().map(Slug::as_str))
    .bind(host.as_str())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// A plan: the default limits a school gets.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Plan {
    pub code: String,
    pub name: String,
    pub requests_per_second: i32,
    pub burst: i32,
    pub storage_quota_bytes: i64,
    pub max_upload_bytes: i64,
    pub notify_per_minute: i32,
    pub db_concurrency: i32,
}

pub async fn plans(db: impl PgExecutor<'_>) -> Result<Vec<Plan>> {
    Ok(sqlx::query_as::<_, Plan>(
        "select code, name, requests_per_second, burst, storage_quota_bytes, max_upload_bytes,
                notify_per_minute, db_concurrency
         from public.plans order by requests_per_second",
    )
    .fetch_all(db)
    .await?)
}
