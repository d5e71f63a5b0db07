//! Accounts (one per person, county-wide) and their memberships in schools.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::login::Login;

/// What the sign-in check needs to know about an account.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Credentials {
    pub id: i64,
    pub display_name: String,
    pub password_hash: String,
    pub status: String,
    pub county_role: Option<String>,
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
    /// A second factor is on: a correct password alone opens no session.
    pub totp_enabled: bool,
}

pub async fn find_by_login(pool: &PgPool, login: &Login) -> sqlx::Result<Option<Credentials>> {
    let (column, value) = match login {
        Login::Phone(p) => ("phone", p),
        Login::Username(u) => ("username", u),
    };
    sqlx::query_as(&format!(
        "select id, display_name, password_hash, status, county_role, failed_logins, locked_until,
                totp_enabled_at is not null as totp_enabled
           from public.accounts where {column} = $1"
    ))
    .bind(value)
    .fetch_optional(pool)
    .await
}

/// After this many recent failures an account is locked: for 1 minute, then 2, 4… up to
/// 15 minutes while wrong passwords keep coming, so guessing is slow while a person who
/// mistyped waits briefly.
pub const FREE_ATTEMPTS: i32 = 5;

/// Failures older than this (counted from the newest one) are forgotten, so nobody can keep
/// someone else's account locked for longer than the failures they keep sending.
pub const DECAY_MINUTES: i32 = 15;

/// Counts a wrong password (or second-factor code); returns when the account is locked
/// until, if it now is.
pub async fn record_failure(pool: &PgPool, account_id: i64) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar(
        "with c as (
             select id, case when last_failed_at is null
                              or last_failed_at < now() - make_interval(mins => $3)
                        then 1 else failed_logins + 1 end as n
               from public.accounts where id = $1 for update)
         update public.accounts a set failed_logins = c.n, last_failed_at = now(),
                locked_until = case when c.n >= $2
                    then now() + least(interval '1 minute' * power(2, c.n - $2), interval '15 minutes')
                    else null end
           from c where a.id = c.id returning a.locked_until",
    )
    .bind(account_id)
    .bind(FREE_ATTEMPTS)
    .bind(DECAY_MINUTES)
    .fetch_one(pool)
    .await
}

pub async fn record_success(pool: &PgPool, account_id: i64) -> sqlx::Result<()> {
    sqlx::query("update public.accounts set failed_logins = 0, last_failed_at = null, locked_until = null, last_login_at = now() where id = $1")
        .bind(account_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Whether the account is a member (of any standing) of the school: only then does the
/// school's audit trail name it.
pub async fn is_member(pool: &PgPool, account_id: i64, tenant_id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from public.memberships where account_id = $1 and tenant_id = $2)",
    )
    .bind(account_id)
    .bind(tenant_id)
    .fetch_one(pool)
    .await
}

/// Appends a sign-in event about `account_id` to the trail of `tenant_id`, naming the
/// account only if it belongs to that school (otherwise only the typed login is kept).
pub async fn audit_attempt(
    pool: &PgPool,
    account_id: i64,
    tenant_id: Option<i64>,
    login: &str,
    event: &str,
    host: &str,
) {
    let named = match tenant_id {
        Some(t) => match is_member(pool, account_id, t).await {
            Ok(yes) => yes.then_some(account_id),
            Err(e) => {
                tracing::error!(error = %e, "membership check for the audit trail failed");
                None
            }
        },
        None => Some(account_id),
    };
    audit(pool, named, tenant_id, login, event, host).await;
}

/// A new account; the password must already be hashed.
#[derive(Clone, Debug)]
pub struct NewAccount<'a> {
    pub username: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub county_role: Option<&'a str>,
}

/// Creates the account, or returns the existing one with the same username/phone.
pub async fn ensure(pool: &PgPool, a: &NewAccount<'_>) -> sqlx::Result<i64> {
    let mut conn = pool.acquire().await?;
    ensure_in(&mut conn, a).await
}

/// [`ensure`] on a connection the caller holds, e.g. inside its own transaction. Two
/// concurrent calls for the same login both end with the one account.
pub async fn ensure_in(conn: &mut PgConnection, a: &NewAccount<'_>) -> sqlx::Result<i64> {
    let existing: Option<i64> =
        sqlx::query_scalar("select id from public.accounts where username = $1 or phone = $2")
            .bind(a.username)
            .bind(a.phone)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(id) = existing {
        return Ok(id);
    }
    let inserted: Option<i64> = sqlx::query_scalar(
        "insert into public.accounts (username, phone, display_name, password_hash, county_role)
         values ($1, $2, $3, $4, $5) on conflict do nothing returning id",
    )
    .bind(a.username)
    .bind(a.phone)
    .bind(a.display_name)
    .bind(a.password_hash)
    .bind(a.county_role)
    .fetch_optional(&mut *conn)
    .await?;
    match inserted {
        Some(id) => Ok(id),
        None => {
            sqlx::query_scalar("select id from public.accounts where username = $1 or phone = $2")
                .bind(a.username)
                .bind(a.phone)
                .fetch_one(&mut *conn)
                .await
        }
    }
}

/// The id of the account that signs in with `login`, if there is one.
pub async fn id_by_login(conn: &mut PgConnection, login: &Login) -> sqlx::Result<Option<i64>> {
    let (column, value) = match login {
        Login::Phone(p) => ("phone", p),
        Login::Username(u) => ("username", u),
    };
    sqlx::query_scalar(&format!(
        "select id from public.accounts where {column} = $1"
    ))
    .bind(value)
    .fetch_optional(conn)
    .await
}

/// Adds roles in a school to the account's membership there, keeping the roles it already
/// holds (creating the membership if there is none). A staff or guardian link is set when
/// given and otherwise left as it was. Running it twice changes nothing.
pub async fn add_roles(
    conn: &mut PgConnection,
    account_id: i64,
    tenant_id: i64,
    roles: &[&str],
    staff_id: Option<i64>,
    guardian_id: Option<i64>,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "insert into public.memberships as m (account_id, tenant_id, roles, staff_id, guardian_id)
         values ($1, $2, $3, $4, $5)
         on conflict (account_id, tenant_id) do update
            set roles = m.roles || array(select r from unnest(excluded.roles) r where r <> all(m.roles)),
                staff_id = coalesce(excluded.staff_id, m.staff_id),
                guardian_id = coalesce(excluded.guardian_id, m.guardian_id),
                updated_at = now()
         returning roles",
    )
    .bind(account_id)
    .bind(tenant_id)
    .bind(roles)
    .bind(staff_id)
    .bind(guardian_id)
    .fetch_one(conn)
    .await
}

/// Gives an account roles in a school (replacing its roles there).
pub async fn set_membership(
    pool: &PgPool,
    account_id: i64,
    tenant_id: i64,
    roles: &[&str],
    staff_id: Option<i64>,
    guardian_id: Option<i64>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into public.memberships (account_id, tenant_id, roles, staff_id, guardian_id) values ($1, $2, $3, $4, $5)
         on conflict (account_id, tenant_id) do update
            set roles = excluded.roles, staff_id = excluded.staff_id, guardian_id = excluded.guardian_id, updated_at = now()",
    )
    .bind(account_id)
    .bind(tenant_id)
    .bind(roles)
    .bind(staff_id)
    .bind(guardian_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// The staff and guardian rows the account's membership in a school points to, if it has a
/// membership there.
pub async fn links_in(
    pool: &PgPool,
    account_id: i64,
    tenant_id: i64,
) -> sqlx::Result<Option<(Option<i64>, Option<i64>)>> {
    sqlx::query_as(
        "select staff_id, guardian_id from public.memberships where account_id = $1 and tenant_id = $2",
    )
    .bind(account_id)
    .bind(tenant_id)
    .fetch_optional(pool)
    .await
}

/// The account's active roles in a school today (empty: no membership there).
pub async fn roles_in(pool: &PgPool, account_id: i64, tenant_id: i64) -> sqlx::Result<Vec<String>> {
    let roles: Option<Vec<String>> = sqlx::query_scalar(
        "select roles from public.memberships
          where account_id = $1 and tenant_id = $2 and status = 'active'
            and (valid_from is null or valid_from <= current_date)
            and (valid_until is null or valid_until >= current_date)",
    )
    .bind(account_id)
    .bind(tenant_id)
    .fetch_optional(pool)
    .await?;
    Ok(roles.unwrap_or_default())
}

/// The account's county-level role, if any.
pub async fn county_role(pool: &PgPool, account_id: i64) -> sqlx::Result<Option<String>> {
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "select county_role from public.accounts where id = $1 and status = 'active'",
    )
    .bind(account_id)
    .fetch_optional(pool)
    .await?
    .flatten())
}

/// Every school the account is a member of: (slug, school name, roles).
pub async fn memberships(
    pool: &PgPool,
    account_id: i64,
) -> sqlx::Result<Vec<(String, String, Vec<String>)>> {
    sqlx::query_as(
        "select t.slug, t.name, m.roles from public.memberships m join public.tenants t on t.id = m.tenant_id
          where m.account_id = $1 and m.status = 'active' and t.status = 'active' order by t.name",
    )
    .bind(account_id)
    .fetch_all(pool)
    .await
}

/// Appends to the sign-in audit trail.
pub async fn audit(
    pool: &PgPool,
    account_id: Option<i64>,
    tenant_id: Option<i64>,
    login: &str,
    event: &str,
    host: &str,
) {
    let result = sqlx::query("insert into public.auth_events (account_id, tenant_id, login, event, host) values ($1, $2, $3, $4, $5)")
        .bind(account_id)
        .bind(tenant_id)
        .bind(login)
        .bind(event)
        .bind(host)
        .execute(pool)
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, event, "could not write the sign-in audit log");
    }
}

/// One entry of a school's identity audit trail (sign-ins, role and membership changes).
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct SchoolEvent {
    pub at: DateTime<Utc>,
    pub event: String,
    /// The person concerned (or the login typed, for unknown logins).
    pub subject: String,
    /// Who acted, when it was not the person concerned.
    pub actor: Option<String>,
    pub host: Option<String>,
    pub detail: Option<serde_json::Value>,
}

/// What to look for in a school's identity audit trail.
#[derive(Clone, Debug, Default)]
pub struct EventFilter<'a> {
    /// `signin` (sign-in outcomes) or `roles` (role and membership changes); empty: both.
    pub kind: &'a str,
    /// Part of a name or login of the person concerned or of the actor.
    pub who: &'a str,
    pub from: Option<chrono::NaiveDate>,
    pub to: Option<chrono::NaiveDate>,
    pub limit: i64,
}

/// The newest matching events of one school, newest first.
pub async fn school_events(
    pool: &PgPool,
    tenant_id: i64,
    f: &EventFilter<'_>,
) -> sqlx::Result<Vec<SchoolEvent>> {
    let who = format!("%{}%", f.who.replace(['%', '_', '\\'], ""));
    sqlx::query_as(
        "select e.at, e.event,
                coalesce(s.display_name, e.login, '—') as subject,
                actor.display_name as actor, e.host, e.detail
           from public.auth_events e
           left join public.accounts s on s.id = e.account_id
           left join public.accounts actor on actor.id = e.actor_account_id and e.actor_account_id is distinct from e.account_id
          where e.tenant_id = $1
            and ($2 = '' or ($2 = 'roles') = (e.actor_account_id is not null))
            and ($3 = '%%' or s.display_name like $3 or e.login like $3 or actor.display_name like $3)
            and ($4::date is null or e.at >= $4::date)
            and ($5::date is null or e.at < $5::date + 1)
          order by e.at desc, e.id desc limit $6",
    )
    .bind(tenant_id)
    .bind(f.kind)
    .bind(&who)
    .bind(f.from)
    .bind(f.to)
    .bind(f.limit)
    .fetch_all(pool)
    .await
}

/// Grants (or with `None` withdraws) the account's county-level role, e.g. `bureau` for the
/// education bureau's dashboard, and records it in the identity audit trail. False if no
/// account has this id.
pub async fn set_county_role(
    pool: &PgPool,
    account_id: i64,
    role: Option<&str>,
    actor: &str,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let changed = sqlx::query(
        "update public.accounts set county_role = $2, updated_at = now() where id = $1",
    )
    .bind(account_id)
    .bind(role)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if changed {
        sqlx::query(
            "insert into public.auth_events (account_id, login, event, detail) values ($1, $2, 'county_role_changed', $3)",
        )
        .bind(account_id)
        .bind(actor)
        .bind(serde_json::json!({ "county_role": role }))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(changed)
}
