//! Plan limits and per-school storage usage. Usage lives in `public.storage_usage` so the
//! county IT centre reads every school's figure in one query; a school changes its own
//! figure only through `public.storage_charge`, in the same transaction that records or
//! removes the file, so usage and files never disagree and two uploads cannot both slip
//! under the quota.

use campus_tenant::{Db, SchoolTx, TenantId};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::error::{mb, Fail};

/// One school's limits and usage, in bytes.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Usage {
    /// Largest single file the school's plan accepts.
    pub max_upload_bytes: i64,
    /// Total storage the school's plan includes.
    pub quota_bytes: i64,
    pub used_bytes: i64,
    pub files: i64,
}

impl Usage {
    pub fn remaining(&self) -> i64 {
        (self.quota_bytes - self.used_bytes).max(0)
    }

    /// Whole percent of the quota in use.
    pub fn percent(&self) -> i64 {
        if self.quota_bytes == 0 {
            100
        } else {
            self.used_bytes.saturating_mul(100) / self.quota_bytes
        }
    }

    /// The refusal for a file of `size` bytes, if it does not fit.
    pub fn check(&self, size: i64) -> Result<(), Fail> {
        if size > self.max_upload_bytes {
            return Err(too_big(self.max_upload_bytes));
        }
        if size > self.remaining() {
            return Err(over_quota(self.quota_bytes));
        }
        Ok(())
    }
}

pub fn too_big(max: i64) -> Fail {
    Fail::TooLarge(
        format!("单个文件不能超过 {} MB（学校套餐的上限）。", mb(max)),
        format!("A file may be at most {} MB on the school's plan.", mb(max)),
    )
}

pub fn over_quota(quota: i64) -> Fail {
    Fail::TooLarge(
        format!(
            "学校的存储空间（{} MB）已用完，请删除不用的文件或联系县电教中心扩容。",
            mb(quota)
        ),
        format!(
            "The school's storage ({} MB) is full; delete files or ask the county IT centre for more.",
            mb(quota)
        ),
    )
}

/// The school's limits and usage now (outside any transaction; a final check happens when
/// the file is recorded).
pub async fn usage(db: &Db, tenant: TenantId) -> Result<Usage, Fail> {
    let row: Option<(i64, i64, i64, i64)> = sqlx::query_as(
        "select p.max_upload_bytes, p.storage_quota_bytes, coalesce(u.bytes, 0), coalesce(u.files, 0)
           from public.tenants t
           join public.plans p on p.code = t.plan
           left join public.storage_usage u on u.tenant_id = t.id
          where t.id = $1",
    )
    .bind(tenant.0)
    .fetch_optional(db.shared())
    .await?;
    let (max_upload_bytes, quota_bytes, used_bytes, files) = row.ok_or(Fail::NotFound)?;
    Ok(Usage {
        max_upload_bytes,
        quota_bytes,
        used_bytes,
        files,
    })
}

/// Adds a file of `size` bytes to the school's usage in `tx`; refuses (and changes
/// nothing) when it would exceed the quota.
pub async fn charge(tx: &mut SchoolTx, size: i64) -> Result<(), Fail> {
    let (ok, _used, quota): (bool, i64, i64) =
        sqlx::query_as("select ok, used, quota from public.storage_charge($1, 1)")
            .bind(size)
            .fetch_one(&mut **tx)
            .await?;
    if ok {
        Ok(())
    } else {
        Err(over_quota(quota))
    }
}

/// Removes a file of `size` bytes from the school's usage in `tx`.
pub async fn release(tx: &mut SchoolTx, size: i64) -> Result<(), Fail> {
    sqlx::query("select ok from public.storage_charge($1, -1)")
        .bind(-size)
        .fetch_one(&mut **tx)
        .await?;
    Ok(())
}

/// One school's line in the county IT centre's storage report.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SchoolUsage {
    pub slug: String,
    pub name: String,
    pub plan: String,
    #[serde(flatten)]
    pub usage: Usage,
}

/// Every school's usage (deleted schools left out), fullest first.
pub async fn usage_all(pool: &PgPool) -> sqlx::Result<Vec<SchoolUsage>> {
    let rows: Vec<(String, String, String, i64, i64, i64, i64)> = sqlx::query_as(
        "select t.slug, t.name, t.plan, p.max_upload_bytes, p.storage_quota_bytes,
                coalesce(u.bytes, 0), coalesce(u.files, 0)
           from public.tenants t
           join public.plans p on p.code = t.plan
           left join public.storage_usage u on u.tenant_id = t.id
          where t.status <> 'deleted'
          order by coalesce(u.bytes, 0)::float8 / p.storage_quota_bytes desc, t.slug",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(slug, name, plan, max_upload_bytes, quota_bytes, used_bytes, files)| SchoolUsage {
                slug,
                name,
                plan,
                usage: Usage {
                    max_upload_bytes,
                    quota_bytes,
                    used_bytes,
                    files,
                },
            },
        )
        .collect())
}
