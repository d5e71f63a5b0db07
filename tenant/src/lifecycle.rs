//! A school's life on the platform: onboarding, changes, suspension, soft deletion with a
//! grace period, purge, invitations and the audit trail of all of it.
//!
//! Onboarding runs in one database transaction — registry row, Postgres role, schema,
//! every tenant migration, first admin invitation — and writes the S3 marker before it
//! commits, so a school either exists completely or not at all. Calling it again with the
//! same input changes nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Acquire, PgConnection, PgPool};
use utoipa::ToSchema;

use crate::error::{Result, TenantError};
use crate::migrate;
use crate::registry::{self, Tenant, TenantStatus};
use crate::slug::{Hostname, RolePrefix, Slug};
use crate::store::ObjectStore;

/// Everything lifecycle operations need to know about the deployment.
#[derive(Clone, Debug)]
pub struct Platform {
    pub pool: PgPool,
    pub store: ObjectStore,
    pub role_prefix: RolePrefix,
    pub urls: SchoolUrls,
    /// How long a deleted school can still be resumed before it is purged.
    pub delete_grace: Duration,
    /// How long an invitation link stays valid.
    pub invitation_ttl: Duration,
}

/// How the outside world reaches a school: `<scheme>://<slug>.<base domain>[:port]`.
#[derive(Clone, Debug)]
pub struct SchoolUrls {
    pub scheme: String,
    pub base_domain: String,
    /// Port shown in links; `None` for the scheme's default.
    pub port: Option<u16>,
}

impl SchoolUrls {
    pub(crate) fn host_url(&self, host: &str) -> String {
        match self.port {
            Some(p) => format!("{}://{host}:{p}", self.scheme),
            None => format!("{}://{host}", self.scheme),
        }
    }

    pub fn school(&self, slug: &Slug) -> String {
        self.host_url(&format!("{slug}.{}", self.base_domain))
    }

    pub fn county(&self) -> String {
        self.host_url(&format!("county.{}", self.base_domain))
    }

    /// The central sign-in host.
    pub fn login(&self) -> String {
        self.host_url(&format!("login.{}", self.base_domain))
    }

    /// `scheme://host[:port]` for any host of the platform.
    pub fn of_host(&self, host: &str) -> String {
        self.host_url(host)
    }
}

/// Where on the school's own host an invitation is accepted.
pub fn invitation_path(token: &str) -> String {
    format!("/invite/{token}")
}

/// A stored invitation, found by its token.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PendingInvitation {
    pub id: i64,
    pub tenant_id: i64,
    pub role: String,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
}

impl PendingInvitation {
    /// Still usable: not accepted and not expired.
    pub fn usable(&self) -> bool {
        self.accepted_at.is_none() && self.expires_at > Utc::now()
    }
}

/// The invitation whose link carries `token` (only its SHA-256 is stored).
pub async fn find_invitation(
    db: impl sqlx::PgExecutor<'_>,
    token: &str,
) -> Result<Option<PendingInvitation>> {
    Ok(sqlx::query_as(
        "select id, tenant_id, role, expires_at, accepted_at
           from public.tenant_invitations where token_hash = $1",
    )
    .bind(Sha256::digest(token.as_bytes()).to_vec())
    .fetch_optional(db)
    .await?)
}

/// Marks an invitation used, once: `false` if it was already used or has expired. Run it in
/// the transaction that creates the membership, so the two happen together or not at all.
pub async fn claim_invitation(conn: &mut PgConnection, id: i64) -> Result<bool> {
    let claimed = sqlx::query(
        "update public.tenant_invitations set accepted_at = now()
          where id = $1 and accepted_at is null and expires_at > now()",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// What a caller asks for when creating or replacing a school.
#[derive(Clone, Debug)]
pub struct SchoolSpec {
    pub slug: Slug,
    pub name: String,
    pub plan: String,
    pub hostnames: Vec<Hostname>,
}

/// An invitation link, shown once: only its hash is stored.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Invitation {
    pub role: String,
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Onboarded {
    pub tenant: Tenant,
    /// True when this call created the school (false: it already existed).
    pub created: bool,
    /// The first admin's invitation, present only when this call created it.
    pub invitation: Option<Invitation>,
}

/// A status change: which states it may start from, the update that makes it, and what to
/// tell a caller who tries it from another state.
struct Transition<'a> {
    action: &'a str,
    allowed: &'a [TenantStatus],
    hint: &'static str,
    /// Binds `$1` = tenant id and `$2` = `arg`.
    sql: &'a str,
    arg: Option<String>,
}

/// A change to an existing school; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct SchoolPatch {
    pub name: Option<String>,
    pub plan: Option<String>,
    pub hostnames: Option<Vec<Hostname>>,
    /// `Some(None)` clears the override and falls back to the plan.
    pub requests_per_second: Option<Option<i32>>,
    pub burst: Option<Option<i32>>,
    pub db_concurrency: Option<Option<i32>>,
}

/// A change to a plan's limits (every school on the plan without its own override).
#[derive(Clone, Debug, Default)]
pub struct PlanPatch {
    pub requests_per_second: Option<i32>,
    pub burst: Option<i32>,
    pub db_concurrency: Option<i32>,
}

/// The largest sane value of each limit: above it a setting is a typo, not a plan.
pub const MAX_REQUESTS_PER_SECOND: i32 = 100_000;
pub const MAX_BURST: i32 = 100_000;
pub const MAX_DB_CONCURRENCY: i32 = 1000;

fn clean_name(name: &str) -> Result<String> {
    let name = name.trim();
    let len = name.chars().count();
    if len == 0 || len > 100 {
        return Err(TenantError::Invalid(format!(
            "school name must be 1–100 characters (got {len})"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(TenantError::Invalid(
            "school name may not contain control characters".into(),
        ));
    }
    Ok(name.to_owned())
}

async fn check_plan(conn: &mut PgConnection, plan: &str) -> Result<()> {
    let exists: bool =
        sqlx::query_scalar("select exists(select 1 from public.plans where code = $1)")
            .bind(plan)
            .fetch_one(conn)
            .await?;
    if exists {
        Ok(())
    } else {
        Err(TenantError::UnknownPlan(plan.to_owned()))
    }
}

fn check_limit(field: &str, v: Option<Option<i32>>, max: i32) -> Result<()> {
    if let Some(Some(n)) = v {
        if !(1..=max).contains(&n) {
            return Err(TenantError::Invalid(format!(
                "{field} must be between 1 and {max} (got {n}); 0 or a negative value would shut the school out, a larger value is not a limit"
            )));
        }
    }
    Ok(())
}

fn check_limits(
    rps: Option<Option<i32>>,
    burst: Option<Option<i32>>,
    db: Option<Option<i32>>,
) -> Result<()> {
    check_limit("requests_per_second", rps, MAX_REQUESTS_PER_SECOND)?;
    check_limit("burst", burst, MAX_BURST)?;
    check_limit("db_concurrency", db, MAX_DB_CONCURRENCY)
}

impl Platform {
    async fn lock(conn: &mut PgConnection, slug: &Slug) -> Result<()> {
        sqlx::query("select pg_advisory_xact_lock(hashtext('campus-tenant:' || $1))")
            .bind(slug.as_str())
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn audit(
        conn: &mut PgConnection,
        tenant: Option<&Tenant>,
        slug: &Slug,
        actor: &str,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        sqlx::query("insert into public.admin_audit (tenant_id, tenant_slug, actor, action, detail) values ($1, $2, $3, $4, $5)")
            .bind(tenant.map(|t| t.id.0))
            .bind(slug.as_str())
            .bind(actor)
            .bind(action)
            .bind(detail)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Replaces the school's extra hostnames, refusing any that belong to another school or
    /// fall inside the platform's own domain.
    async fn set_hostnames(
        &self,
        conn: &mut PgConnection,
        tenant_id: i64,
        hostnames: &[Hostname],
    ) -> Result<()> {
        let base = &self.urls.base_domain;
        for h in hostnames {
            if h.as_str() == base.as_str() || h.as_str().ends_with(&format!(".{base}")) {
                return Err(TenantError::HostnameInBaseDomain(h.to_string()));
            }
        }
        let names: Vec<&str> = hostnames.iter().map(Hostname::as_str).collect();
        let taken: Option<(String, String)> = sqlx::query_as(
            "select h.hostname, t.slug from public.tenant_hostnames h join public.tenants t on t.id = h.tenant_id
             where h.hostname = any($1) and h.tenant_id <> $2 limit 1",
        )
        .bind(&names)
        .bind(tenant_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some((host, owner)) = taken {
            return Err(TenantError::HostnameTaken { host, owner });
        }
        sqlx::query(
            "delete from public.tenant_hostnames where tenant_id = $1 and hostname <> all($2)",
        )
        .bind(tenant_id)
        .bind(&names)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "insert into public.tenant_hostnames (hostname, tenant_id) select unnest($1::text[]), $2
             on conflict (hostname) do nothing",
        )
        .bind(&names)
        .bind(tenant_id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Creates the school, or brings an existing one in line with `spec` (name, plan,
    /// hostnames). Idempotent: the same spec twice leaves one identical school.
    pub async fn onboard(&self, spec: &SchoolSpec, actor: &str) -> Result<Onboarded> {
        let name = clean_name(&spec.name)?;
        let slug = &spec.slug;
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        Self::lock(&mut tx, slug).await?;
        check_plan(&mut tx, &spec.plan).await?;

        let existing = registry::find_by_slug(&mut *tx, slug).await?;
        if let Some(t) = &existing {
            if t.status == TenantStatus::Deleted {
                return Err(TenantError::WrongState {
                    slug: slug.to_string(),
                    status: t.status.to_string(),
                    hint:
                        "resume it to bring it back, or wait until it is purged to reuse the slug",
                });
            }
        }
        let created = existing.is_none();
        let id: i64 = match &existing {
            Some(t) => {
                sqlx::query("update public.tenants set name = $2, plan = $3, updated_at = now() where id = $1 and (name, plan) is distinct from ($2, $3)")
                    .bind(t.id.0)
                    .bind(&name)
                    .bind(&spec.plan)
                    .execute(&mut *tx)
                    .await?;
                t.id.0
            }
            None => {
                sqlx::query_scalar(
                    "insert into public.tenants (slug, name, schema_name, db_role, s3_prefix, plan)
                     values ($1, $2, $3, $4, $5, $6) returning id",
                )
                .bind(slug.as_str())
                .bind(&name)
                .bind(slug.schema().as_str())
                .bind(slug.role(&self.role_prefix).as_str())
                .bind(slug.s3_prefix())
                .bind(&spec.plan)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        self.set_hostnames(&mut tx, id, &spec.hostnames).await?;

        let tenant = registry::get(&mut *tx, slug).await?;
        let mut invitation = None;
        if tenant.status == TenantStatus::Provisioning {
            self.provision(&mut tx, &tenant).await?;
            invitation = Some(
                self.invite(&mut tx, &tenant, "school_admin", "first administrator")
                    .await?,
            );
        }
        let tenant = registry::get(&mut *tx, slug).await?;
        let changed = existing.as_ref().is_some_and(|e| {
            e.name != tenant.name || e.plan != tenant.plan || e.hostnames != tenant.hostnames
        });
        if created || changed {
            let action = if created { "create" } else { "update" };
            let detail =
                serde_json::json!({"name": name, "plan": spec.plan, "hostnames": tenant.hostnames});
            Self::audit(&mut tx, Some(&tenant), slug, actor, action, detail).await?;
        }
        // Claim the prefix before committing: if storage is down, nothing is half-created.
        self.store
            .tenant_prefix(&tenant.s3_prefix)
            .reserve(
                serde_json::json!({"slug": slug, "tenant_id": tenant.id, "name": tenant.name})
                    .to_string(),
            )
            .await?;
        tx.commit().await?;
        Ok(Onboarded {
            tenant,
            created,
            invitation,
        })
    }

    /// Role, schema and tenant migrations, inside the caller's transaction.
    async fn provision(&self, tx: &mut PgConnection, tenant: &Tenant) -> Result<()> {
        let role = &tenant.role;
        let schema = &tenant.schema;
        // CREATE ROLE has no IF NOT EXISTS; a role left by an earlier attempt is reused.
        let role_exists: bool =
            sqlx::query_scalar("select exists(select 1 from pg_roles where rolname = $1)")
                .bind(role.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if !role_exists {
            sqlx::query(&format!("create role {} nologin noinherit", role.quoted()))
                .execute(&mut *tx)
                .await?;
        }
        // The platform's own user must be able to SET ROLE to the school (superusers can
        // anyway; on managed Postgres the user has CREATEROLE and needs the membership).
        sqlx::query(&format!("grant {} to current_user", role.quoted()))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "create schema if not exists {} authorization {}",
            schema.quoted(),
            role.quoted()
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "revoke all on schema {} from public",
            schema.quoted()
        ))
        .execute(&mut *tx)
        .await?;
        migrate::migrate_tenant_in(tx, tenant).await?;
        sqlx::query(
            "select set_config('role', 'none', true), set_config('search_path', 'public', true)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "update public.tenants set status = 'active', schema_version = $2, schema_digest = $3, updated_at = now() where id = $1",
        )
        .bind(tenant.id.0)
        .bind(migrate::TENANT.latest_version())
        .bind(migrate::TENANT.digest())
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn invite(
        &self,
        tx: &mut PgConnection,
        tenant: &Tenant,
        role: &str,
        note: &str,
    ) -> Result<Invitation> {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = hex::encode(raw);
        let expires_at = Utc::now()
            + chrono::Duration::from_std(self.invitation_ttl).unwrap_or(chrono::Duration::days(14));
        sqlx::query(
            "insert into public.tenant_invitations (tenant_id, role, token_hash, note, expires_at) values ($1, $2, $3, $4, $5)",
        )
        .bind(tenant.id.0)
        .bind(role)
        .bind(Sha256::digest(token.as_bytes()).to_vec())
        .bind(note)
        .bind(expires_at)
        .execute(tx)
        .await?;
        Ok(Invitation {
            role: role.to_owned(),
            url: format!(
                "{}{}",
                self.urls.school(&tenant.slug),
                invitation_path(&token)
            ),
            expires_at,
        })
    }

    /// Issues a fresh school-admin invitation (e.g. when the first one expired).
    pub async fn new_admin_invitation(&self, slug: &Slug, actor: &str) -> Result<Invitation> {
        let mut tx = self.pool.begin().await?;
        let tenant = registry::get(&mut *tx, slug).await?;
        if tenant.status != TenantStatus::Active {
            return Err(TenantError::WrongState {
                slug: slug.to_string(),
                status: tenant.status.to_string(),
                hint: "only an active school can invite people",
            });
        }
        let inv = self
            .invite(&mut tx, &tenant, "school_admin", "administrator")
            .await?;
        Self::audit(
            &mut tx,
            Some(&tenant),
            slug,
            actor,
            "invite",
            serde_json::json!({"role": "school_admin"}),
        )
        .await?;
        tx.commit().await?;
        Ok(inv)
    }

    pub async fn update(&self, slug: &Slug, patch: &SchoolPatch, actor: &str) -> Result<Tenant> {
        check_limits(patch.requests_per_second, patch.burst, patch.db_concurrency)?;
        let name = patch.name.as_deref().map(clean_name).transpose()?;
        let mut tx = self.pool.begin().await?;
        Self::lock(&mut tx, slug).await?;
        let tenant = registry::get(&mut *tx, slug).await?;
        if tenant.status == TenantStatus::Deleted {
            return Err(TenantError::WrongState {
                slug: slug.to_string(),
                status: tenant.status.to_string(),
                hint: "resume it before changing it",
            });
        }
        if let Some(plan) = &patch.plan {
            check_plan(&mut tx, plan).await?;
        }
        sqlx::query(
            "update public.tenants set
                name = coalesce($2, name),
                plan = coalesce($3, plan),
                requests_per_second = case when $4 then $5 else requests_per_second end,
                burst = case when $6 then $7 else burst end,
                db_concurrency = case when $8 then $9 else db_concurrency end,
                updated_at = now()
             where id = $1",
        )
        .bind(tenant.id.0)
        .bind(&name)
        .bind(&patch.plan)
        .bind(patch.requests_per_second.is_some())
        .bind(patch.requests_per_second.flatten())
        .bind(patch.burst.is_some())
        .bind(patch.burst.flatten())
        .bind(patch.db_concurrency.is_some())
        .bind(patch.db_concurrency.flatten())
        .execute(&mut *tx)
        .await?;
        if let Some(hosts) = &patch.hostnames {
            self.set_hostnames(&mut tx, tenant.id.0, hosts).await?;
        }
        let updated = registry::get(&mut *tx, slug).await?;
        Self::audit(
            &mut tx,
            Some(&updated),
            slug,
            actor,
            "update",
            serde_json::json!({"name": name, "plan": patch.plan, "hostnames": patch.hostnames, "requests_per_second": patch.requests_per_second, "burst": patch.burst, "db_concurrency": patch.db_concurrency}),
        )
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Changes a plan's limits; every instance sees them within moments (the plans trigger
    /// drops the cached schools). Audited with the plan code in place of a school.
    pub async fn update_plan(
        &self,
        code: &str,
        patch: &PlanPatch,
        actor: &str,
    ) -> Result<crate::registry::Plan> {
        check_limits(
            patch.requests_per_second.map(Some),
            patch.burst.map(Some),
            patch.db_concurrency.map(Some),
        )?;
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "update public.plans set
                requests_per_second = coalesce($2, requests_per_second),
                burst = coalesce($3, burst),
                db_concurrency = coalesce($4, db_concurrency),
                updated_at = now()
             where code = $1",
        )
        .bind(code)
        .bind(patch.requests_per_second)
        .bind(patch.burst)
        .bind(patch.db_concurrency)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(TenantError::UnknownPlan(code.to_owned()));
        }
        sqlx::query(
            "insert into public.admin_audit (tenant_id, tenant_slug, actor, action, detail)
             values (null, null, $1, 'update_plan', $2)",
        )
        .bind(actor)
        .bind(serde_json::json!({"plan": code, "requests_per_second": patch.requests_per_second, "burst": patch.burst, "db_concurrency": patch.db_concurrency}))
        .execute(&mut *tx)
        .await?;
        let plan = crate::registry::plans(&mut *tx)
            .await?
            .into_iter()
            .find(|p| p.code == code)
            .ok_or_else(|| TenantError::UnknownPlan(code.to_owned()))?;
        tx.commit().await?;
        Ok(plan)
    }

    async fn transition(&self, slug: &Slug, actor: &str, t: Transition<'_>) -> Result<Tenant> {
        let Transition {
            action,
            allowed,
            hint,
            sql,
            arg,
        } = t;
        let mut tx = self.pool.begin().await?;
        Self::lock(&mut tx, slug).await?;
        let tenant = registry::get(&mut *tx, slug).await?;
        if !allowed.contains(&tenant.status) {
            return Err(TenantError::WrongState {
                slug: slug.to_string(),
                status: tenant.status.to_string(),
                hint,
            });
        }
        sqlx::query(sql)
            .bind(tenant.id.0)
            .bind(&arg)
            .execute(&mut *tx)
            .await?;
        let updated = registry::get(&mut *tx, slug).await?;
        Self::audit(
            &mut tx,
            Some(&updated),
            slug,
            actor,
            action,
            serde_json::json!({"detail": arg}),
        )
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Suspends an active school: its pages show a notice, its data is kept.
    pub async fn suspend(
        &self,
        slug: &Slug,
        reason: Option<String>,
        actor: &str,
    ) -> Result<Tenant> {
        self.transition(slug, actor, Transition {
            action: "suspend",
            allowed: &[TenantStatus::Active, TenantStatus::Suspended],
            hint: "only an active school can be suspended",
            sql: "update public.tenants set status = 'suspended', suspended_reason = $2, updated_at = now() where id = $1",
            arg: reason,
        })
        .await
    }

    /// Brings a suspended school, or a deleted one still inside its grace period, back.
    pub async fn resume(&self, slug: &Slug, actor: &str) -> Result<Tenant> {
        let tenant = self
            .transition(slug, actor, Transition {
                action: "resume",
                allowed: &[TenantStatus::Suspended, TenantStatus::Deleted, TenantStatus::Active],
                hint: "a school still provisioning is finished by onboarding it again",
                sql: "update public.tenants set status = 'active', suspended_reason = null, deleted_at = null, purge_after = null, updated_at = now() where id = $1 and $2::text is null",
                arg: None,
            })
            .await?;
        // A school deleted before an upgrade missed that upgrade's migrations.
        let mut conn = self.pool.acquire().await?;
        migrate::migrate_tenant(&mut conn, &tenant).await?;
        registry::get(&self.pool, slug).await
    }

    /// Soft-deletes: the school disappears at once and is purged after the grace period.
    pub async fn delete(&self, slug: &Slug, actor: &str) -> Result<Tenant> {
        let grace = format!("{} seconds", self.delete_grace.as_secs());
        self.transition(slug, actor, Transition {
            action: "delete",
            allowed: &[TenantStatus::Active, TenantStatus::Suspended, TenantStatus::Provisioning],
            hint: "it is already deleted; resume it to bring it back",
            sql: "update public.tenants set status = 'deleted', deleted_at = now(), purge_after = now() + $2::interval, updated_at = now() where id = $1",
            arg: Some(grace),
        })
        .await
    }

    /// Permanently removes a deleted school — schema, role, files and registry row — if
    /// its grace period is over (or `force`). Returns whether it was purged.
    pub async fn purge(&self, slug: &Slug, force: bool, actor: &str) -> Result<bool> {
        let tenant = registry::get(&self.pool, slug).await?;
        if tenant.status != TenantStatus::Deleted {
            return Err(TenantError::WrongState {
                slug: slug.to_string(),
                status: tenant.status.to_string(),
                hint: "delete it first; purge only removes deleted schools",
            });
        }
        if !force && tenant.purge_after.is_some_and(|t| t > Utc::now()) {
            return Ok(false);
        }
        self.store
            .tenant_prefix(&tenant.s3_prefix)
            .delete_all()
            .await?;
        let mut tx = self.pool.begin().await?;
        Self::lock(&mut tx, slug).await?;
        sqlx::query(&format!(
            "drop schema if exists {} cascade",
            tenant.schema.quoted()
        ))
        .execute(&mut *tx)
        .await?;
        let role_exists: bool =
            sqlx::query_scalar("select exists(select 1 from pg_roles where rolname = $1)")
                .bind(tenant.role.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if role_exists {
            sqlx::query(&format!("drop owned by {}", tenant.role.quoted()))
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!("drop role {}", tenant.role.quoted()))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("delete from public.tenants where id = $1")
            .bind(tenant.id.0)
            .execute(&mut *tx)
            .await?;
        Self::audit(
            &mut tx,
            None,
            slug,
            actor,
            "purge",
            serde_json::json!({"tenant_id": tenant.id}),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Purges every deleted school whose grace period has ended; returns their slugs.
    pub async fn purge_due(&self, actor: &str) -> Result<Vec<String>> {
        let due: Vec<String> = sqlx::query_scalar("select slug from public.tenants where status = 'deleted' and purge_after <= now() order by slug")
            .fetch_all(&self.pool)
            .await?;
        let mut purged = Vec::new();
        for slug in due {
            if self.purge(&Slug::parse(&slug)?, false, actor).await? {
                purged.push(slug);
            }
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod send_check {
    fn is_send<T: Send>(_: T) {}
    #[allow(dead_code)]
    fn futures_are_send(
        p: &super::Platform,
        s: &crate::Slug,
        c: &mut sqlx::PgConnection,
        t: &crate::Tenant,
    ) {
        is_send(crate::migrate::migrate_tenant(c, t));
        is_send(p.resume(s, "x"));
    }
}
