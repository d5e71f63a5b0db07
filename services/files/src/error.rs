//! Why a files request failed, as a status and a sentence in Chinese and English; rendered
//! as a page for browsers and as `{code, message, message_zh}` JSON for the API.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use campus_tenant::TenantError;

#[derive(Debug)]
pub enum Fail {
    /// No such file, or the asker may not see it (the two are never told apart).
    NotFound,
    Csrf,
    Forbidden(&'static str, &'static str),
    /// Bigger than the plan allows for one file, or than the school's remaining quota.
    TooLarge(String, String),
    Unsupported(&'static str, &'static str),
    Invalid(String, String),
    /// A resumable chunk at the wrong offset; carries the offset expected.
    Conflict(String, String),
    Unavailable(String),
}

impl From<TenantError> for Fail {
    fn from(e: TenantError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl Fail {
    pub fn invalid(zh: &str, en: &str) -> Self {
        Self::Invalid(zh.to_owned(), en.to_owned())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Csrf | Self::Forbidden(..) => StatusCode::FORBIDDEN,
            Self::TooLarge(..) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unsupported(..) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid(..) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(..) => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Csrf => "csrf",
            Self::Forbidden(..) => "forbidden",
            Self::TooLarge(..) => "too_large",
            Self::Unsupported(..) => "unsupported_type",
            Self::Invalid(..) => "invalid",
            Self::Conflict(..) => "conflict",
            Self::Unavailable(_) => "unavailable",
        }
    }

    pub fn texts(&self) -> (String, String) {
        match self {
            Self::NotFound => (
                "找不到该文件，或您无权查看。".into(),
                "No such file, or you may not see it.".into(),
            ),
            Self::Csrf => (
                "页面已过期，请刷新后重试。".into(),
                "The form expired; reload and try again.".into(),
            ),
            Self::Forbidden(zh, en) | Self::Unsupported(zh, en) => ((*zh).into(), (*en).into()),
            Self::TooLarge(zh, en) | Self::Invalid(zh, en) | Self::Conflict(zh, en) => {
                (zh.clone(), en.clone())
            }
            Self::Unavailable(_) => (
                "服务暂时不可用，请稍后重试。".into(),
                "Temporarily unavailable; try again shortly.".into(),
            ),
        }
    }

    fn log(&self) {
        if let Self::Unavailable(e) = self {
            tracing::error!(error = %e, "files request failed");
        }
    }

    pub fn page(self) -> Response {
        self.log();
        let (zh, en) = self.texts();
        let titles = match self {
            Self::NotFound => ("找不到文件", "File not found"),
            Self::TooLarge(..) => ("文件过大", "Too large"),
            Self::Unavailable(_) => ("服务暂时不可用", "Temporarily unavailable"),
            _ => ("无法完成", "Not done"),
        };
        campus_web::message_page(
            self.status(),
            campus_web::PLATFORM_NAME,
            (titles.0, &zh),
            (titles.1, &en),
        )
    }

    pub fn json(self) -> Response {
        self.log();
        let (zh, en) = self.texts();
        (
            self.status(),
            Json(serde_json::json!({"code": self.code(), "message": en, "message_zh": zh})),
        )
            .into_response()
    }
}

/// Megabytes for messages, rounded down.
pub fn mb(bytes: i64) -> i64 {
    bytes / (1024 * 1024)
}
