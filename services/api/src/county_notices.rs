//! County-wide notices (县级通知): the county IT centre or the education bureau sends one
//! notice to the guardians and/or staff of every school (or of chosen schools) through the
//! admin API, `POST /admin/v1/notices`. The request stores the notice once in
//! `public.county_notices` with one row per school in `county_notice_schools` and returns
//! at once; the `notify` role's workers then copy it into each school
//! (`campus_school::notices::county::receive`, recipients expanded set-based inside the
//! school's schema), one school at a time per worker, rows claimed with `FOR UPDATE SKIP
//! LOCKED` so any number of workers share the work. A school that fails is retried with
//! back-off; its copy is unique per county notice, so a retry after a crash adds nothing.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use campus_school::notices::county::{self, CountyAudience, CountyNotice};
use campus_tenant::registry;
use campus_tenant::{Slug, TenantId, TenantStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};
use utoipa::{OpenApi, ToSchema};

use crate::admin::AdminActor;
use crate::error::{ApiError, ErrorBody};
use crate::runtime::Services;

/// Channel the workers listen on; a new county notice rings it.
pub const CHANNEL: &str = "campus_county_notice";

/// Body of `POST /admin/v1/notices`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCountyNotice {
    /// 1–200 characters.
    pub title: String,
    /// HTML (sanitised: scripts and event handlers are removed), at most 20,000 characters.
    pub body: String,
    /// `guardians`, `staff` or `everyone`.
    pub audience: String,
    /// `read` (default) or `confirm` (each recipient taps to confirm).
    #[serde(default)]
    pub mode: Option<String>,
    /// Optional deadline for confirming; must be in the future.
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
    /// Shown as the sender; defaults to 县教育局.
    #[serde(default)]
    pub sender_name: Option<String>,
    /// Only these schools (slugs); all active schools when absent.
    #[serde(default)]
    pub schools: Option<Vec<String>>,
    /// The same key again returns the notice already made instead of sending twice.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// A county notice and how far it has reached.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountyNoticeStatus {
    pub id: i64,
    pub title: String,
    pub audience: String,
    pub mode: String,
    pub sender_name: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// Schools addressed, and how many have the notice so far.
    pub schools: i64,
    pub schools_done: i64,
    /// Recipients in the schools that have it.
    pub recipients: i64,
    /// Per school; read and confirmed counts only with `GET /admin/v1/notices/{id}`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_school: Vec<SchoolProgress>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SchoolProgress {
    pub slug: String,
    pub name: String,
    /// `pending`, `retrying` or `done`.
    pub state: String,
    pub recipients: Option<i64>,
    pub read: Option<i64>,
    pub confirmed: Option<i64>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub done_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CountyNoticeList {
    pub notices: Vec<CountyNoticeStatus>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
}

struct Valid {
    title: String,
    body_html: String,
    audience: CountyAudience,
    mode: String,
    deadline: Option<DateTime<Utc>>,
    sender_name: String,
    schools: Option<Vec<Slug>>,
    key: Option<String>,
}

fn validate(b: NewCountyNotice) -> Result<Valid, ApiError> {
    let title = b.title.trim().to_owned();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(invalid(
            "title must have 1 to 200 characters (标题为 1–200 个字)",
        ));
    }
    if b.body.chars().count() > campus_school::notices::BODY_MAX_CHARS {
        return Err(invalid(format!(
            "body must have at most {} characters (正文过长)",
            campus_school::notices::BODY_MAX_CHARS
        )));
    }
    let audience = CountyAudience::parse(b.audience.trim()).ok_or_else(|| {
        invalid("audience must be `guardians`, `staff` or `everyone` (发送对象无效)")
    })?;
    let mode = b.mode.as_deref().map(str::trim).unwrap_or("read");
    let mode = county::parse_mode(mode)
        .ok_or_else(|| invalid("mode must be `read` or `confirm` (确认方式无效)"))?
        .code()
        .to_owned();
    if b.deadline.is_some_and(|d| d <= Utc::now()) {
        return Err(invalid(
            "deadline must be in the future (截止时间须晚于现在)",
        ));
    }
    let sender_name = b
        .sender_name
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "县教育局".to_owned());
    if sender_name.chars().count() > 100 {
        return Err(invalid("sender_name must have at most 100 characters"));
    }
    let schools = match b.schools {
        None => None,
        Some(v) if v.is_empty() => {
            return Err(invalid(
                "schools, when given, must name at least one school",
            ))
        }
        Some(v) => Some(
            v.iter()
                .map(|s| {
                    Slug::parse(s.trim())
                        .map_err(|_| invalid(format!("`{s}` is not a school slug")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let key = b.idempotency_key.map(|k| k.trim().to_owned());
    if key.as_ref().is_some_and(|k| k.is_empty() || k.len() > 200) {
        return Err(invalid("idempotency_key must have 1 to 200 characters"));
    }
    let body_html = campus_school::notices::sanitise(&b.body);
    Ok(Valid {
        title,
        body_html,
        audience,
        mode,
        deadline: b.deadline,
        sender_name,
        schools,
        key,
    })
}

/// Stores a county notice for every active school (or the chosen ones) and rings the
/// workers. Returns the notice's id and the number of schools, or the existing notice's
/// for a repeated idempotency key.
async fn create(pool: &PgPool, v: Valid, actor: &str) -> Result<(i64, i64, bool), ApiError> {
    let mut tx = pool.begin().await?;
    let active: Vec<(i64, String)> =
        sqlx::query_as("select id, slug from public.tenants where status = 'active' order by slug")
            .fetch_all(&mut *tx)
            .await?;
    let targets: Vec<i64> = match &v.schools {
        None => active.iter().map(|t| t.0).collect(),
        Some(chosen) => {
            let mut ids = Vec::new();
            for slug in chosen {
                match active.iter().find(|t| t.1 == slug.as_str()) {
                    Some(t) => ids.push(t.0),
                    None => {
                        return Err(invalid(format!(
                            "`{slug}` is not an active school (学校不存在或已停用)"
                        )))
                    }
                }
            }
            ids.sort_unstable();
            ids.dedup();
            ids
        }
    };
    if targets.is_empty() {
        return Err(invalid(
            "there is no active school to send to (没有可发送的学校)",
        ));
    }
    let id: Option<i64> = sqlx::query_scalar(
        "insert into public.county_notices (idempotency_key, sender_name, title, body_html, audience, mode, deadline, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict (idempotency_key) do nothing
         returning id",
    )
    .bind(&v.key)
    .bind(&v.sender_name)
    .bind(&v.title)
    .bind(&v.body_html)
    .bind(v.audience.code())
    .bind(&v.mode)
    .bind(v.deadline)
    .bind(actor)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        let (id, schools): (i64, i64) = sqlx::query_as(
            "select n.id, (select count(*) from public.county_notice_schools s where s.notice_id = n.id)
               from public.county_notices n where n.idempotency_key = $1",
        )
        .bind(&v.key)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok((id, schools, false));
    };
    sqlx::query(
        "insert into public.county_notice_schools (notice_id, tenant_id)
         select $1, t from unnest($2::bigint[]) as t",
    )
    .bind(id)
    .bind(&targets)
    .execute(&mut *tx)
    .await?;
    sqlx::query("select pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((id, targets.len() as i64, true))
}

#[utoipa::path(post, path = "/admin/v1/notices", tag = "notices",
    request_body = NewCountyNotice,
    responses(
        (status = 202, description = "Stored; the schools receive it within seconds", body = CountyNoticeStatus),
        (status = 200, description = "The idempotency key names a notice already sent", body = CountyNoticeStatus),
        (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn post_notice(
    State(s): State<Services>,
    actor: AdminActor,
    body: Result<Json<NewCountyNotice>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let valid = validate(body)?;
    let (id, _, created) = create(&s.pool, valid, &actor.0).await?;
    let status = status_of(&s, id, false)
        .await?
        .ok_or_else(|| ApiError::internal("the notice just stored is missing"))?;
    let code = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(status)).into_response())
}

#[utoipa::path(get, path = "/admin/v1/notices", tag = "notices",
    responses((status = 200, body = CountyNoticeList), (status = 401, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn list_notices(
    State(s): State<Services>,
    _actor: AdminActor,
) -> Result<Json<CountyNoticeList>, ApiError> {
    Ok(Json(CountyNoticeList {
        notices: recent(&s).await?,
    }))
}

/// The 100 most recent county notices, newest first, with their overall figures.
pub async fn recent(s: &Services) -> Result<Vec<CountyNoticeStatus>, ApiError> {
    let ids: Vec<i64> =
        sqlx::query_scalar("select id from public.county_notices order by id desc limit 100")
            .fetch_all(&s.pool)
            .await?;
    let mut notices = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(n) = status_of(s, id, false).await? {
            notices.push(n);
        }
    }
    Ok(notices)
}

/// Validates and stores a county notice as `POST /admin/v1/notices` does; its id (the
/// existing notice's for a repeated idempotency key).
pub async fn submit(s: &Services, body: NewCountyNotice, actor: &str) -> Result<i64, ApiError> {
    let (id, _, _) = create(&s.pool, validate(body)?, actor).await?;
    Ok(id)
}

/// One county notice with every school's progress.
pub async fn status(s: &Services, id: i64) -> Result<Option<CountyNoticeStatus>, ApiError> {
    status_of(s, id, true).await
}

#[utoipa::path(get, path = "/admin/v1/notices/{id}", tag = "notices",
    params(("id" = i64, Path, description = "The county notice's id")),
    responses((status = 200, body = CountyNoticeStatus), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn get_notice(
    State(s): State<Services>,
    _actor: AdminActor,
    Path(id): Path<String>,
) -> Result<Json<CountyNoticeStatus>, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such county notice");
    let id: i64 = id.parse().map_err(|_| not_found())?;
    status_of(&s, id, true)
        .await?
        .map(Json)
        .ok_or_else(not_found)
}

/// The notice's figures; with `per_school`, each school's progress including its read and
/// confirmed counts (read from the school's own copy: counts only, never names).
async fn status_of(
    s: &Services,
    id: i64,
    per_school: bool,
) -> Result<Option<CountyNoticeStatus>, ApiError> {
    let Some(n) = sqlx::query(
        "select n.id, n.title, n.audience, n.mode, n.sender_name, n.created_by, n.created_at,
                count(cs.tenant_id) as schools, count(cs.done_at) as done,
                coalesce(sum(cs.recipients), 0)::bigint as recipients
           from public.county_notices n
           left join public.county_notice_schools cs on cs.notice_id = n.id
          where n.id = $1
          group by n.id",
    )
    .bind(id)
    .fetch_optional(&s.pool)
    .await?
    else {
        return Ok(None);
    };
    let mut out = CountyNoticeStatus {
        id: n.get("id"),
        title: n.get("title"),
        audience: n.get("audience"),
        mode: n.get("mode"),
        sender_name: n.get("sender_name"),
        created_by: n.get("created_by"),
        created_at: n.get("created_at"),
        schools: n.get("schools"),
        schools_done: n.get("done"),
        recipients: n.get("recipients"),
        per_school: Vec::new(),
    };
    if per_school {
        let rows = sqlx::query(
            "select cs.tenant_id, cs.school_notice_id, cs.recipients, cs.attempts, cs.last_error, cs.done_at
               from public.county_notice_schools cs join public.tenants t on t.id = cs.tenant_id
              where cs.notice_id = $1 order by t.slug",
        )
        .bind(id)
        .fetch_all(&s.pool)
        .await?;
        for r in rows {
            let Some(tenant) = registry::find_by_id(&s.pool, TenantId(r.get("tenant_id"))).await?
            else {
                continue;
            };
            let copy: Option<i64> = r.get("school_notice_id");
            let progress = match copy {
                Some(notice) if tenant.status != TenantStatus::Deleted => {
                    let mut tx = s.db.school(&tenant).await?;
                    let p = county::progress(&mut tx, notice).await?;
                    tx.commit().await?;
                    Some(p)
                }
                _ => None,
            };
            let attempts: i32 = r.get("attempts");
            let done_at: Option<DateTime<Utc>> = r.get("done_at");
            out.per_school.push(SchoolProgress {
                slug: tenant.slug.to_string(),
                name: tenant.name.clone(),
                state: match (done_at, attempts) {
                    (Some(_), _) => "done",
                    (None, 0) => "pending",
                    (None, _) => "retrying",
                }
                .to_owned(),
                recipients: r.get::<Option<i32>, _>("recipients").map(i64::from),
                read: progress.map(|p| p.read),
                confirmed: progress.map(|p| p.confirmed),
                attempts,
                last_error: r.get("last_error"),
                done_at,
            });
        }
    }
    Ok(Some(out))
}

#[derive(OpenApi)]
#[openapi(
    paths(post_notice, list_notices, get_notice),
    components(schemas(NewCountyNotice, CountyNoticeStatus, SchoolProgress, CountyNoticeList)),
    tags((name = "notices", description = "County-wide notices to every school's guardians and staff"))
)]
pub struct NoticesDoc;

pub fn router() -> Router<Services> {
    Router::new()
        .route("/admin/v1/notices", get(list_notices).post(post_notice))
        .route("/admin/v1/notices/{id}", get(get_notice))
}

// ---------------------------------------------------------------------------------------
// Delivery to the schools (the notify role)

/// Copies one due (notice, school) pair into its school. Returns whether there was one.
pub async fn deliver_one(s: &Services) -> anyhow::Result<bool> {
    let mut tx = s.pool.begin().await?;
    let Some(row) = sqlx::query(
        "select cs.notice_id, cs.tenant_id, cs.attempts, n.sender_name, n.title, n.body_html,
                n.audience, n.mode, n.deadline
           from public.county_notice_schools cs join public.county_notices n on n.id = cs.notice_id
          where cs.done_at is null and cs.next_at <= now()
          order by cs.next_at, cs.notice_id, cs.tenant_id
          limit 1
          for update of cs skip locked",
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        tx.commit().await?;
        return Ok(false);
    };
    let notice_id: i64 = row.get("notice_id");
    let tenant_id = TenantId(row.get("tenant_id"));
    let attempts: i32 = row.get("attempts");
    let outcome = async {
        let Some(tenant) = registry::find_by_id(&s.pool, tenant_id).await? else {
            return Ok(None);
        };
        if tenant.status == TenantStatus::Deleted {
            return Ok(None);
        }
        let audience: String = row.get("audience");
        let mode: String = row.get("mode");
        let notice = CountyNotice {
            id: notice_id,
            sender_name: row.get("sender_name"),
            title: row.get("title"),
            body_html: row.get("body_html"),
            audience: CountyAudience::parse(&audience)
                .ok_or_else(|| anyhow::anyhow!("unknown audience {audience}"))?,
            mode: county::parse_mode(&mode)
                .ok_or_else(|| anyhow::anyhow!("unknown mode {mode}"))?,
            deadline: row.get("deadline"),
        };
        let mut school = s.db.school(&tenant).await?;
        let received = county::receive(&mut school, &notice).await?;
        school.commit().await?;
        anyhow::Ok(Some(received))
    }
    .await;
    match outcome {
        Ok(received) => {
            sqlx::query(
                "update public.county_notice_schools
                    set school_notice_id = $3, recipients = $4, done_at = now(), last_error = $5
                  where notice_id = $1 and tenant_id = $2",
            )
            .bind(notice_id)
            .bind(tenant_id.0)
            .bind(received.map(|r| r.notice_id))
            .bind(received.map(|r| r.recipients as i32).unwrap_or(0))
            .bind(received.is_none().then_some("the school has been deleted"))
            .execute(&mut *tx)
            .await?;
        }
        Err(e) => {
            let wait = retry_delay(attempts);
            tracing::warn!(notice = notice_id, tenant = tenant_id.0, error = %e, retry_in_secs = wait.as_secs(), "copying a county notice into a school failed");
            sqlx::query(
                "update public.county_notice_schools
                    set attempts = attempts + 1, next_at = now() + $3, last_error = $4
                  where notice_id = $1 and tenant_id = $2",
            )
            .bind(notice_id)
            .bind(tenant_id.0)
            .bind(wait)
            .bind(e.to_string())
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// 5 s, 10 s, 20 s … up to 10 minutes.
fn retry_delay(attempts: i32) -> Duration {
    Duration::from_secs((5u64 << attempts.clamp(0, 7) as u32).min(600))
}

/// Runs `workers` delivery loops until aborted; each new county notice wakes them.
pub fn spawn(s: Services, workers: usize, listen_pool: PgPool) -> Vec<tokio::task::JoinHandle<()>> {
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut handles = Vec::new();
    let bell = wake.clone();
    handles.push(tokio::spawn(async move {
        loop {
            if let Ok(mut l) = sqlx::postgres::PgListener::connect_with(&listen_pool).await {
                if l.listen(CHANNEL).await.is_ok() {
                    while l.recv().await.is_ok() {
                        bell.notify_waiters();
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }));
    for _ in 0..workers.max(1) {
        let s = s.clone();
        let wake = wake.clone();
        handles.push(tokio::spawn(async move {
            loop {
                match deliver_one(&s).await {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "county notice delivery failed; will retry")
                    }
                }
                // Retries fall due without a ring; look again every few seconds.
                let _ = tokio::time::timeout(Duration::from_secs(5), wake.notified()).await;
            }
        }));
    }
    handles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_stop_growing() {
        assert_eq!(retry_delay(0), Duration::from_secs(5));
        assert_eq!(retry_delay(1), Duration::from_secs(10));
        assert_eq!(retry_delay(30), Duration::from_secs(600));
    }
}
