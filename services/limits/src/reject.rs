//! The answer to a request over a limit: `429 Too Many Requests` with `Retry-After` and
//! the `RateLimit-*` headers, as a page in Chinese (English beneath) for browsers or as
//! `{code, message}` JSON for API clients.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::keyed::Denied;

/// Which limit refused a request (the `limit` label of `campus_rate_limited_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    School,
    Person,
    Forms,
    Gate,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::School => "school",
            Self::Person => "person",
            Self::Forms => "forms",
            Self::Gate => "gate",
        }
    }

    fn texts(self, secs: u64) -> ((&'static str, String), (&'static str, String)) {
        match self {
            Self::School => (
                ("访问人数较多", format!("本校此刻的访问量超过了平台为学校设定的上限，请 {secs} 秒后再试。")),
                ("Busy", format!("This school's site is receiving more requests than its plan allows. Please try again in {secs} s.")),
            ),
            Self::Person => (
                ("操作太频繁", format!("您的操作太快了，请 {secs} 秒后再试。")),
                ("Too many requests", format!("You are sending requests too quickly. Please try again in {secs} s.")),
            ),
            Self::Forms => (
                ("尝试次数太多", format!("来自您所在网络的登录或加入请求太多，请 {secs} 秒后再试。")),
                ("Too many attempts", format!("Too many sign-in or join requests from your network. Please try again in {secs} s.")),
            ),
            Self::Gate => (
                ("上传太频繁", format!("此设备地址上传门禁记录太频繁，请 {secs} 秒后重试。")),
                ("Too many uploads", format!("Gate events arrive too often from this address. Retry in {secs} s.")),
            ),
        }
    }
}

fn wants_json(headers: &HeaderMap, path: &str) -> bool {
    if path.starts_with("/api/") {
        return true;
    }
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

/// The 429 response for `denied` by `limit`.
pub(crate) fn too_many(
    limit: Limit,
    denied: Denied,
    site_name: &str,
    req_headers: &HeaderMap,
    path: &str,
) -> Response {
    // Whole seconds, rounded up: a client that waits the advertised time gets through.
    let secs = denied.wait.as_secs() + u64::from(denied.wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let (zh, en) = limit.texts(secs);
    let mut resp = if wants_json(req_headers, path) {
        (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(serde_json::json!({
                "code": "rate_limited",
                "limit": limit.as_str(),
                "message": format!("{} {}", en.1, zh.1),
                "retry_after_secs": secs,
            })),
        )
            .into_response()
    } else {
        campus_web::message_page(
            StatusCode::TOO_MANY_REQUESTS,
            site_name,
            (zh.0, &zh.1),
            (en.0, &en.1),
        )
    };
    let h = resp.headers_mut();
    let num = |n: u64| HeaderValue::from_str(&n.to_string()).expect("digits");
    h.insert(http::header::RETRY_AFTER, num(secs));
    h.insert("ratelimit-limit", num(u64::from(denied.rate.burst)));
    h.insert("ratelimit-remaining", num(0));
    h.insert("ratelimit-reset", num(secs));
    if let Ok(policy) = HeaderValue::from_str(&format!(
        "{};w={};burst={}",
        denied.rate.count,
        denied.rate.window_secs(),
        denied.rate.burst
    )) {
        h.insert("ratelimit-policy", policy);
    }
    resp
}
