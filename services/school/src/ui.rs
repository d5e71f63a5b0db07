//! The frame of a signed-in page of the school and the page shown when the database or
//! storage does not answer — shared by every module of the school's site.

use axum::http::StatusCode;
use axum::response::Response;
use campus_identity::CurrentUser;
use campus_tenant::Tenant;
use campus_web::Lang;

/// `body` in the school's frame, with the signed-in person's badge.
pub(crate) fn page(
    lang: Lang,
    school: &Tenant,
    user: &CurrentUser,
    title: &str,
    body: &str,
) -> Response {
    campus_web::Shell {
        title,
        site_name: &school.name,
        badge_url: Some("/badge.svg"),
        theme_color: None,
        body,
        who: campus_web::Who::User(user.badge()),
        lang,
    }
    .into_page(StatusCode::OK)
}

/// `503` after logging what failed (`what` names the module).
pub(crate) fn unavailable(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "{what} failed");
    campus_web::message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        campus_web::PLATFORM_NAME,
        ("服务暂时不可用", "请稍后刷新重试。"),
        ("Temporarily unavailable", "Please try again in a moment."),
    )
}
