//! Who may see the dashboard: on the county host, accounts holding the county role
//! `bureau` (granted with `campus county-user add`); on a school's host, that school's
//! members whose roles allow its audit log (principal, school admin), for their own school
//! only — the school comes from the host, never from a parameter.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use campus_identity::{AuthRejection, CurrentUser, Permission};

/// The county role that may read the dashboard.
pub const BUREAU: &str = "bureau";

/// How a refusal is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Page,
    Json,
}

/// A refused request: answered as a page or as JSON when turned into a response.
#[derive(Debug)]
pub struct Refused(Answer, AuthRejection);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        refuse(self.0, self.1)
    }
}

fn refuse(answer: Answer, why: AuthRejection) -> Response {
    match answer {
        Answer::Page => why.into_response(),
        Answer::Json => {
            let (status, code, message) = match why {
                AuthRejection::NotSignedIn => (
                    StatusCode::UNAUTHORIZED,
                    "not_signed_in",
                    "请先登录。Sign in first.",
                ),
                AuthRejection::Forbidden(_) => (
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "您的身份不能查看数据看板。Your identity here may not read the dashboard.",
                ),
                AuthRejection::Unavailable => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "服务暂时不可用，请稍后重试。Temporarily unavailable.",
                ),
            };
            (
                status,
                Json(serde_json::json!({"code": code, "message": message})),
            )
                .into_response()
        }
    }
}

/// A bureau account signed in on the county host.
pub fn bureau(
    user: Result<CurrentUser, AuthRejection>,
    answer: Answer,
) -> Result<CurrentUser, Refused> {
    let user = user.map_err(|e| Refused(answer, e))?;
    if user.roles.iter().any(|r| r == BUREAU) {
        Ok(user)
    } else {
        Err(Refused(
            answer,
            AuthRejection::Forbidden("只有教育局账号可以查看全县数据看板。"),
        ))
    }
}

/// A leader of the school whose host this is.
pub fn school_leader(
    user: Result<CurrentUser, AuthRejection>,
    answer: Answer,
) -> Result<CurrentUser, Refused> {
    let user = user.map_err(|e| Refused(answer, e))?;
    user.require(Permission::ViewAudit)
        .map_err(|e| Refused(answer, e))?;
    Ok(user)
}
