//! The leave JSON API: the same rules, notifications and transactions as the pages (every
//! handler calls the page's functions); changes need the session's CSRF token in
//! `X-CSRF-Token`; refusals are `{code, message, message_en}` with the page's status.
//!
//! - `GET /api/v1/leave?status=&from=&to=&class=&page=&per_page=`: the caller's view (a
//!   parent their children's requests, a head teacher their classes', a grade leader their
//!   grade's, school leaders all), pending first.
//! - `POST /api/v1/leave`: a parent asks (`student_id`, `kind`, `span`, the span's dates or
//!   times, `reason`); the photo follows with `PUT /api/v1/leave/{id}/photo`.
//! - `GET /api/v1/leave/{id}`, `POST /api/v1/leave/{id}/approve|reject|cancel|return`
//!   (optional `{"note"}`).

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use campus_identity::{CurrentUser, Permission};
use campus_tenant::CurrentSchool;
use chrono::NaiveDate;
use serde::Deserialize;

use super::{
    act_on, create, detail_json_of, find, header_token, photo, Filter, NewLeave, Scope, STATUSES,
};
use crate::attendance::{refuse, Refusal};
use crate::SchoolState;

pub(super) fn routes() -> Router<SchoolState> {
    Router::new()
        .route("/api/v1/leave", get(list_json).post(create_json))
        .route("/api/v1/leave/{id}", get(detail_json))
        .route("/api/v1/leave/{id}/photo", put(photo::put_json))
        .route("/api/v1/leave/{id}/{action}", post(act_json))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    class: String,
    #[serde(default)]
    page: String,
    #[serde(default)]
    per_page: String,
}

fn invalid(zh: &'static str, en: &'static str) -> Refusal {
    refuse(StatusCode::UNPROCESSABLE_ENTITY, zh, en)
}

fn optional<T: std::str::FromStr>(s: &str, bad: Refusal) -> Result<Option<T>, Refusal> {
    match s.trim() {
        "" => Ok(None),
        v => v.parse().map(Some).map_err(|_| bad),
    }
}

impl ListQuery {
    fn filter(&self) -> Result<(Filter, i64, i64), Refusal> {
        let status = self.status.trim();
        if !status.is_empty() && !STATUSES.contains(&status) {
            return Err(invalid(
                "状态不正确（pending、approved、rejected、cancelled 或 returned）。",
                "Unknown status.",
            ));
        }
        let day = |s: &str| {
            optional::<NaiveDate>(
                s,
                invalid(
                    "日期格式不正确，应为 年-月-日。",
                    "Bad date; use YYYY-MM-DD.",
                ),
            )
        };
        let filter = Filter {
            statuses: (!status.is_empty()).then(|| vec![status.to_owned()]),
            from: day(&self.from)?,
            to: day(&self.to)?,
            class_id: optional(&self.class, invalid("班级编号不正确。", "Bad class id."))?,
        };
        let page: i64 = optional(&self.page, invalid("页码不正确。", "Bad page."))?.unwrap_or(1);
        let per_page: i64 =
            optional(&self.per_page, invalid("每页条数不正确。", "Bad per_page."))?.unwrap_or(20);
        if page < 1 || !(1..=100).contains(&per_page) {
            return Err(invalid(
                "页码从 1 开始，每页 1 到 100 条。",
                "page starts at 1; per_page is 1 to 100.",
            ));
        }
        Ok((filter, page, per_page))
    }
}

/// `GET /api/v1/leave`.
async fn list_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Query(q): Query<ListQuery>,
) -> Response {
    let result = async {
        let parent = user.guardian_id.is_some() && user.can(Permission::OwnChildren);
        if !parent && !user.can(Permission::ApproveLeave) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "您的身份不能查看请假。",
                "You may not see leave requests.",
            ));
        }
        let (filter, page, per_page) = q.filter()?;
        let mut tx = state.db.school(&school).await?;
        let (items, total) = find(
            &mut tx,
            &user,
            Scope::All,
            &filter,
            per_page,
            (page - 1) * per_page,
        )
        .await?;
        tx.commit().await?;
        Ok(serde_json::json!({
            "items": items, "total": total, "page": page, "per_page": per_page,
        }))
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(r) => r.json(),
    }
}

fn bad_json(e: &JsonRejection) -> Refusal {
    tracing::debug!(error = %e, "leave JSON refused");
    refuse(
        StatusCode::BAD_REQUEST,
        "请求内容不是有效的 JSON。",
        "The body is not valid JSON of the expected form.",
    )
}

#[derive(Debug, Deserialize)]
struct NewLeaveJson {
    student_id: serde_json::Value,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    span: String,
    #[serde(default)]
    start_date: String,
    #[serde(default)]
    end_date: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    starts_at: String,
    #[serde(default)]
    ends_at: String,
    #[serde(default)]
    reason: String,
}

/// `POST /api/v1/leave`: 201 with the new request.
async fn create_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    body: Result<Json<NewLeaveJson>, JsonRejection>,
) -> Response {
    let result = async {
        let Json(b) = body.map_err(|e| bad_json(&e))?;
        let form = NewLeave {
            csrf: None,
            student_id: match b.student_id {
                serde_json::Value::String(s) => s,
                v => v.to_string(),
            },
            kind: b.kind,
            span: b.span,
            start_date: b.start_date,
            end_date: b.end_date,
            date: b.date,
            starts_at: b.starts_at,
            ends_at: b.ends_at,
            reason: b.reason,
        };
        let id = create(&state, &school, &user, header_token(&headers), &form, None).await?;
        detail_json_of(&state, &school, &user, id).await
    }
    .await;
    match result {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(r) => r.json(),
    }
}

/// `GET /api/v1/leave/{id}`.
async fn detail_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Response {
    match detail_json_of(&state, &school, &user, id).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r.json(),
    }
}

#[derive(Debug, Default, Deserialize)]
struct ActJson {
    note: Option<String>,
}

/// `POST /api/v1/leave/{id}/approve|reject|cancel|return`: the request afterwards.
async fn act_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path((id, action)): Path<(i64, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        // The body is optional: none, or `{"note": "…"}`.
        let b: ActJson = if body.iter().all(u8::is_ascii_whitespace) {
            ActJson::default()
        } else {
            serde_json::from_slice(&body).map_err(|_| {
                refuse(
                    StatusCode::BAD_REQUEST,
                    "请求内容不是有效的 JSON。",
                    "The body is not valid JSON.",
                )
            })?
        };
        let csrf = header_token(&headers);
        act_on(&state, &school, &user, id, &action, csrf, b.note.as_deref()).await?;
        detail_json_of(&state, &school, &user, id).await
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(r) => r.json(),
    }
}
