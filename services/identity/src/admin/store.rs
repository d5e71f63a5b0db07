//! Queries behind user and role management: members of one school, their memberships and
//! the school's custom roles. Every query is bounded by the school's `tenant_id`, so an
//! admin of one school can neither see nor change another school's members.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

use crate::permission::Permission;

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct Member {
    pub account_id: i64,
    pub display_name: String,
    pub username: Option<String>,
    pub phone: Option<String>,
    pub roles: Vec<String>,
    pub status: String,
    pub account_status: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// Filters of the member list.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct MemberFilter {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub page: u32,
}

pub const PAGE_SIZE: i64 = 50;

const MEMBER_COLUMNS: &str =
    "a.id as account_id, a.display_name, a.username, a.phone, m.roles, m.status,
     a.status as account_status, m.valid_from, m.valid_until, a.last_login_at";

/// One page of the school's members and the total matching.
pub async fn members(
    pool: &PgPool,
    tenant_id: i64,
    f: &MemberFilter,
) -> sqlx::Result<(Vec<Member>, i64)> {
    let q = f.q.trim();
    let pattern = format!(
        "%{}%",
        q.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let filter = "m.tenant_id = $1
        and ($2 = '' or a.display_name ilike $3 or a.phone like $3 or a.username ilike $3)
        and ($4 = '' or $4 = any(m.roles))
        and ($5 = '' or m.status = $5)";
    let rows = sqlx::query_as::<_, Member>(&format!(
        "select {MEMBER_COLUMNS} from public.memberships m join public.accounts a on a.id = m.account_id
          where {filter} order by a.display_name, a.id limit $6 offset $7"
    ))
    .bind(tenant_id)
    .bind(q)
    .bind(&pattern)
    .bind(&f.role)
    .bind(&f.status)
    .bind(PAGE_SIZE)
    .bind(i64::from(f.page) * PAGE_SIZE)
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!(
        "select count(*) from public.memberships m join public.accounts a on a.id = m.account_id where {filter}"
    ))
    .bind(tenant_id)
    .bind(q)
    .bind(&pattern)
    .bind(&f.role)
    .bind(&f.status)
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

/// One member of this school; `None` if the account has no membership here.
pub async fn member(
    pool: &PgPool,
    tenant_id: i64,
    account_id: i64,
) -> sqlx::Result<Option<Member>> {
    sqlx::query_as::<_, Member>(&format!(
        "select {MEMBER_COLUMNS} from public.memberships m join public.accounts a on a.id = m.account_id
          where m.tenant_id = $1 and m.account_id = $2"
    ))
    .bind(tenant_id)
    .bind(account_id)
    .fetch_optional(pool)
    .await
}

/// The new state of a membership, as submitted by the school admin.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MembershipChange {
    pub roles: Vec<String>,
    pub status: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
}

/// Writes the change and the audit event in one transaction.
pub async fn update_membership(
    pool: &PgPool,
    tenant_id: i64,
    account_id: i64,
    actor: i64,
    before: &MembershipChange,
    after: &MembershipChange,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "update public.memberships set roles = $3, status = $4, valid_from = $5, valid_until = $6, updated_at = now()
          where tenant_id = $1 and account_id = $2",
    )
    .bind(tenant_id)
    .bind(account_id)
    .bind(&after.roles)
    .bind(&after.status)
    .bind(after.valid_from)
    .bind(after.valid_until)
    .execute(&mut *tx)
    .await?;
    let event = if before.roles != after.roles {
        "role_changed"
    } else {
        "membership_changed"
    };
    audit_change(
        &mut tx,
        tenant_id,
        account_id,
        actor,
        event,
        serde_json::json!({"before": before, "after": after}),
    )
    .await?;
    tx.commit().await
}

/// Active members here whose roles include `school_admin`, other than `except`.
pub async fn other_active_admins(pool: &PgPool, tenant_id: i64, except: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select count(*) from public.memberships m join public.accounts a on a.id = m.account_id
          where m.tenant_id = $1 and m.account_id <> $2 and m.status = 'active' and a.status = 'active'
            and 'school_admin' = any(m.roles)
            and (m.valid_until is null or m.valid_until >= current_date)",
    )
    .bind(tenant_id)
    .bind(except)
    .fetch_one(pool)
    .await
}

/// Records who changed what about whom in the identity audit trail.
pub async fn audit_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    tenant_id: i64,
    subject: i64,
    actor: i64,
    event: &str,
    detail: serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into public.auth_events (account_id, tenant_id, event, actor_account_id, detail)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(subject)
    .bind(tenant_id)
    .bind(event)
    .bind(actor)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct CustomRole {
    pub code: String,
    pub name: String,
    pub permissions: Vec<String>,
    /// Members holding the role.
    pub holders: i64,
}

pub async fn custom_roles(pool: &PgPool, tenant_id: i64) -> sqlx::Result<Vec<CustomRole>> {
    sqlx::query_as(
        "select r.code, r.name, r.permissions,
                (select count(*) from public.memberships m where m.tenant_id = r.tenant_id and r.code = any(m.roles)) as holders
           from public.school_roles r where r.tenant_id = $1 order by r.name",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await
}

/// Creates or updates a custom role; returns its code.
pub async fn save_role(
    pool: &PgPool,
    tenant_id: i64,
    actor: i64,
    code: &str,
    name: &str,
    permissions: &[Permission],
) -> sqlx::Result<()> {
    let codes: Vec<&str> = permissions.iter().map(|p| p.code()).collect();
    let mut tx = pool.begin().await?;
    let created: bool = sqlx::query_scalar(
        "insert into public.school_roles (tenant_id, code, name, permissions) values ($1, $2, $3, $4)
         on conflict (tenant_id, code) do update set name = excluded.name, permissions = excluded.permissions, updated_at = now()
         returning (xmax = 0)",
    )
    .bind(tenant_id)
    .bind(code)
    .bind(name)
    .bind(&codes)
    .fetch_one(&mut *tx)
    .await?;
    audit_change(
        &mut tx,
        tenant_id,
        actor,
        actor,
        if created {
            "role_created"
        } else {
            "role_updated"
        },
        serde_json::json!({"code": code, "name": name, "permissions": codes}),
    )
    .await?;
    tx.commit().await
}

/// Removes a custom role nobody holds; `Ok(false)` if it is still held or unknown.
pub async fn delete_role(
    pool: &PgPool,
    tenant_id: i64,
    actor: i64,
    code: &str,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let deleted = sqlx::query(
        "delete from public.school_roles r where r.tenant_id = $1 and r.code = $2
           and not exists (select 1 from public.memberships m where m.tenant_id = r.tenant_id and r.code = any(m.roles))",
    )
    .bind(tenant_id)
    .bind(code)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if deleted {
        audit_change(
            &mut tx,
            tenant_id,
            actor,
            actor,
            "role_deleted",
            serde_json::json!({"code": code}),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(deleted)
}

/// The longest-standing active admin of a school, if any.
pub async fn first_admin(pool: &PgPool, tenant_id: i64) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "select account_id from public.memberships
          where tenant_id = $1 and status = 'active' and 'school_admin' = any(roles)
          order by created_at, account_id limit 1",
    )
    .bind(tenant_id)
    .fetch_optional(pool)
    .await
}
