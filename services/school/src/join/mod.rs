//! Joining the school by link or QR code (seed 000 用户加入): the school shows one link for
//! parents and one for staff, applicants fill in their details, and an administrator
//! reviews each application (待审核 → 成功加入 / 已拒绝). Approval links parents to their
//! children and gives the person's county-wide account a membership here. Also the
//! acceptance of the first administrator's invitation created at onboarding.
//!
//! School rows are written in the school's own transaction; accounts and memberships go
//! through `campus-identity`.

mod api;
mod apply;
mod approve;
mod invite;
pub(crate) mod links;
mod qr;
mod requests;
mod review;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::RngCore;

use crate::SchoolState;

pub use links::active_link;

/// Who a link is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Parent,
    Staff,
}

impl Kind {
    pub fn code(self) -> &'static str {
        match self {
            Self::Parent => "parent",
            Self::Staff => "staff",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "parent" => Some(Self::Parent),
            "staff" => Some(Self::Staff),
            _ => None,
        }
    }

    pub fn name(self, lang: campus_web::Lang) -> &'static str {
        match self {
            Self::Parent => lang.pick("家长", "Parents"),
            Self::Staff => lang.pick("教职工", "Staff"),
        }
    }
}

/// How a guardian is related to the child: stored code, Chinese, English.
pub(crate) const RELATIONS: &[(&str, &str, &str)] = &[
    ("father", "父亲", "Father"),
    ("mother", "母亲", "Mother"),
    ("grandfather", "爷爷", "Grandfather (paternal)"),
    ("grandmother", "奶奶", "Grandmother (paternal)"),
    ("maternal_grandfather", "外公", "Grandfather (maternal)"),
    ("maternal_grandmother", "外婆", "Grandmother (maternal)"),
    ("other", "其他", "Other"),
];

pub(crate) fn relation_name(code: &str) -> &str {
    RELATIONS.iter().find(|r| r.0 == code).map_or(code, |r| r.1)
}

/// An application's state: stored code, Chinese, English.
pub(crate) const STATUSES: &[(&str, &str, &str)] = &[
    ("pending", "待审核", "Pending review"),
    ("approved", "成功加入", "Joined"),
    ("rejected", "已拒绝", "Rejected"),
];

pub(crate) fn status_name(code: &str, lang: campus_web::Lang) -> &'static str {
    STATUSES
        .iter()
        .find(|s| s.0 == code)
        .map_or("", |s| lang.pick(s.1, s.2))
}

/// 16 random bytes as 32 lowercase hex digits (link and status tokens).
pub(crate) fn random_token() -> String {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Tokens in paths are 32 lowercase hex digits; anything else is not looked up at all.
pub(crate) fn plausible_token(token: &str) -> bool {
    token.len() == 32
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Why a join or review action did not happen.
#[derive(Debug)]
pub(crate) enum Failure {
    NotFound,
    /// Already decided, a duplicate, or a choice the reviewer still has to make.
    Conflict(String),
    Invalid(String),
    /// Missing or wrong CSRF token.
    Forbidden,
    Unavailable,
}

impl Failure {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            Self::NotFound => "找不到该申请或链接。".into(),
            Self::Conflict(m) | Self::Invalid(m) => m.clone(),
            Self::Forbidden => "页面已过期，请刷新后重试。".into(),
            Self::Unavailable => "服务暂时不可用，请稍后重试。".into(),
        }
    }

    /// As a page for a browser.
    pub(crate) fn page(&self, site_name: &str) -> Response {
        match self {
            Self::NotFound => campus_web::not_found_page(site_name),
            _ => campus_web::message_page(
                self.status(),
                site_name,
                ("操作未完成", &self.message()),
                ("Not done", "The request could not be completed."),
            ),
        }
    }

    /// As `{code, message}` JSON for the API.
    pub(crate) fn json(&self) -> Response {
        let code = match self {
            Self::NotFound => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Invalid(_) => "invalid",
            Self::Forbidden => "csrf",
            Self::Unavailable => "unavailable",
        };
        (
            self.status(),
            Json(serde_json::json!({"code": code, "message": self.message()})),
        )
            .into_response()
    }
}

/// Logs a storage error and hides it from the person asking.
pub(crate) fn unavailable(e: impl std::fmt::Display) -> Failure {
    tracing::error!(error = %e, "join request handling failed");
    Failure::Unavailable
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        unavailable(e)
    }
}

impl From<campus_tenant::TenantError> for Failure {
    fn from(e: campus_tenant::TenantError) -> Self {
        unavailable(e)
    }
}

/// Renders a page of this module inside the shell.
pub(crate) fn page(
    school: &campus_tenant::Tenant,
    title: &str,
    body: &str,
    who: campus_web::Who,
    lang: campus_web::Lang,
    status: StatusCode,
) -> Response {
    campus_web::Shell {
        title,
        site_name: &school.name,
        badge_url: Some("/badge.svg"),
        theme_color: None,
        body,
        who,
        lang,
    }
    .into_page(status)
}

/// The join, review and invitation routes of a school host.
pub(crate) fn routes() -> Router<SchoolState> {
    Router::new()
        .route("/join/{token}", get(apply::form).post(apply::submit))
        .route("/join/status/{token}", get(apply::status))
        .route("/admin/join", get(review::show))
        .route("/admin/join/links/{kind}/rotate", post(review::rotate))
        .route("/admin/join/{id}/approve", post(review::approve))
        .route("/admin/join/{id}/reject", post(review::reject))
        .route("/api/v1/join/requests", get(api::list))
        .route("/api/v1/join/requests/{id}", get(api::one))
        .route("/api/v1/join/requests/{id}/approve", post(api::approve))
        .route("/api/v1/join/requests/{id}/reject", post(api::reject))
        .route("/invite/{token}", get(invite::form).post(invite::submit))
}

/// A timestamp as the county reads it (China Standard Time).
pub(crate) fn local_time(t: chrono::DateTime<chrono::Utc>) -> String {
    let cst = chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset");
    t.with_timezone(&cst).format("%Y-%m-%d %H:%M").to_string()
}

/// The value of cookie `name` in the request.
pub(crate) fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

/// Double-submit check for forms shown before anyone signs in: the hidden field must equal
/// the cookie set with the form.
pub(crate) fn double_submit_ok(headers: &axum::http::HeaderMap, cookie: &str, field: &str) -> bool {
    !field.is_empty() && cookie_value(headers, cookie).as_deref() == Some(field)
}

/// A new random CSRF value for a form (64 hex digits).
pub(crate) fn new_csrf() -> String {
    format!("{}{}", random_token(), random_token())
}
