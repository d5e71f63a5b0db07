//! The API's error type: every failure becomes a status and a JSON body `{code, message}`
//! a person can act on. Unexpected failures are logged with their cause and returned opaque.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use campus_tenant::TenantError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `hostname_taken`.
    pub code: &'static str,
    /// What went wrong and what to do about it.
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on our side; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            Json(ErrorBody {
                code: self.code,
                message: self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"campus-admin\""),
            );
        }
        resp
    }
}

impl From<TenantError> for ApiError {
    fn from(e: TenantError) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            TenantError::Slug(_) => (S::UNPROCESSABLE_ENTITY, "invalid_slug"),
            TenantError::Hostname { .. } => (S::UNPROCESSABLE_ENTITY, "invalid_hostname"),
            TenantError::HostnameInBaseDomain(_) => (S::UNPROCESSABLE_ENTITY, "invalid_hostname"),
            TenantError::NotFound(_) => (S::NOT_FOUND, "not_found"),
            TenantError::HostnameTaken { .. } => (S::CONFLICT, "hostname_taken"),
            TenantError::UnknownPlan(_) => (S::UNPROCESSABLE_ENTITY, "unknown_plan"),
            TenantError::Invalid(_) => (S::UNPROCESSABLE_ENTITY, "invalid"),
            TenantError::WrongState { .. } => (S::CONFLICT, "wrong_state"),
            TenantError::Key(_) => (S::UNPROCESSABLE_ENTITY, "invalid_key"),
            TenantError::Storage(_) => {
                tracing::error!(error = %e, "object storage failed");
                return Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "object storage is not reachable; nothing was changed, try again shortly",
                );
            }
            TenantError::Database(sqlx::Error::PoolTimedOut) => {
                tracing::error!(error = %e, "database pool exhausted");
                return Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "busy",
                    "the platform is busy; try again shortly",
                );
            }
            _ => return Self::internal(e),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = match &r {
            JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, "invalid_body", r.body_text())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        TenantError::from(e).into()
    }
}
