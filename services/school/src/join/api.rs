//! `/api/v1/join/requests`: the review as JSON for the school's administrators. Reads need
//! a session with the right to manage users; changes also need the session's CSRF token in
//! `X-CSRF-Token`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use campus_identity::{AuthRejection, CurrentUser, Permission};
use campus_tenant::CurrentSchool;
use serde::Deserialize;
use serde_json::json;

use super::approve::{self, ApproveError, Reviewer};
use super::requests;
use super::review::{host, ListQuery};
use super::{Failure, STATUSES};
use crate::SchoolState;

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

/// The signed-in administrator, or a JSON 401/403.
fn admin(user: Result<CurrentUser, AuthRejection>) -> Result<CurrentUser, Box<Response>> {
    let refused = match user {
        Ok(u) if u.can(Permission::ManageUsers) => return Ok(u),
        Ok(_) | Err(AuthRejection::Forbidden(_)) => {
            json_error(StatusCode::FORBIDDEN, "forbidden", "您的身份没有此项权限。")
        }
        Err(AuthRejection::NotSignedIn) => {
            json_error(StatusCode::UNAUTHORIZED, "not_signed_in", "请先登录。")
        }
        Err(AuthRejection::Unavailable) => Failure::Unavailable.json(),
    };
    Err(Box::new(refused))
}

/// [`admin`] plus the `X-CSRF-Token` header for changes.
fn admin_changing(
    user: Result<CurrentUser, AuthRejection>,
    headers: &HeaderMap,
) -> Result<CurrentUser, Box<Response>> {
    let user = admin(user)?;
    let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    if sent != Some(user.csrf_token.as_str()) {
        return Err(Box::new(Failure::Forbidden.json()));
    }
    Ok(user)
}

/// `GET /api/v1/join/requests[?status=…]`: applications in one state (default pending) and
/// the count in each.
pub(crate) async fn list(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: Result<CurrentUser, AuthRejection>,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Err(r) = admin(user) {
        return *r;
    }
    let status = q.status.as_deref().unwrap_or("pending");
    if !STATUSES.iter().any(|s| s.0 == status) {
        return Failure::Invalid("status 应为 pending、approved 或 rejected。".into()).json();
    }
    let loaded = async {
        let mut tx = state.db.school(&school).await?;
        let rows = requests::list(&mut tx, status).await?;
        let counts = requests::counts(&mut tx).await?;
        tx.commit().await?;
        Ok::<_, Failure>((rows, counts))
    }
    .await;
    match loaded {
        Ok((rows, counts)) => {
            let counts: serde_json::Map<String, serde_json::Value> = STATUSES
                .iter()
                .map(|(code, ..)| {
                    let n = counts.iter().find(|(c, _)| c == code).map_or(0, |x| x.1);
                    ((*code).to_owned(), json!(n))
                })
                .collect();
            Json(json!({"status": status, "counts": counts, "requests": rows})).into_response()
        }
        Err(f) => f.json(),
    }
}

/// `GET /api/v1/join/requests/{id}`: one application, with the pupils a parent's
/// application may refer to while it is pending.
pub(crate) async fn one(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: Result<CurrentUser, AuthRejection>,
    Path(id): Path<i64>,
) -> Response {
    if let Err(r) = admin(user) {
        return *r;
    }
    let loaded = async {
        let mut tx = state.db.school(&school).await?;
        let r = requests::get(&mut tx, id, false)
            .await?
            .ok_or(Failure::NotFound)?;
        let candidates = match (r.status.as_str(), r.class_id, r.child_name.as_deref()) {
            ("pending", Some(c), Some(n)) => Some(requests::candidates(&mut tx, c, n).await?),
            _ => None,
        };
        tx.commit().await?;
        Ok::<_, Failure>((r, candidates))
    }
    .await;
    match loaded {
        Ok((r, c)) => Json(json!({
            "request": r,
            "candidates": c.as_ref().map(|x| &x.0),
            "exact_match": c.as_ref().map(|x| x.1),
        }))
        .into_response(),
        Err(f) => f.json(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ApproveBody {
    student_id: Option<i64>,
    #[serde(default)]
    roles: Vec<String>,
}

/// `POST /api/v1/join/requests/{id}/approve` with `{"student_id"?, "roles"?}`. 409 with
/// `candidates` when the reviewer must pick the pupil.
pub(crate) async fn approve(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: Result<CurrentUser, AuthRejection>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Option<Json<ApproveBody>>,
) -> Response {
    let user = match admin_changing(user, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let host = host(&headers);
    let by = Reviewer {
        user: &user,
        host: &host,
    };
    match approve::approve(&state, &school, &by, id, body.student_id, &body.roles).await {
        Ok(r) => Json(json!({"request": r})).into_response(),
        Err(ApproveError::ChooseStudent(candidates)) => (
            StatusCode::CONFLICT,
            Json(json!({
                "code": "choose_student",
                "message": "孩子姓名与所选班级的学生不是唯一匹配，请指定 student_id。",
                "candidates": candidates,
            })),
        )
            .into_response(),
        Err(ApproveError::Failed(f)) => f.json(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RejectBody {
    #[serde(default)]
    reason: String,
}

/// `POST /api/v1/join/requests/{id}/reject` with `{"reason": "…"}` (required).
pub(crate) async fn reject(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: Result<CurrentUser, AuthRejection>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Option<Json<RejectBody>>,
) -> Response {
    let user = match admin_changing(user, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let reason = body.map(|Json(b)| b.reason).unwrap_or_default();
    let host = host(&headers);
    let by = Reviewer {
        user: &user,
        host: &host,
    };
    match approve::reject(&state, &school, &by, id, &reason).await {
        Ok(r) => Json(json!({"request": r})).into_response(),
        Err(f) => f.json(),
    }
}
