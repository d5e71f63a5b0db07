//! The shared look of every page: the page shell, the stylesheet, and the friendly pages the
//! router shows for unknown, suspended or malformed hosts. Chinese first, English beneath.

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use campus_tenant::routing::Rejection;

mod lang;
mod redirect;
pub mod sheet;
pub use lang::Lang;
pub use redirect::same_site_path;

/// The frame around every page's body.
#[derive(Template)]
#[template(path = "shell.html")]
pub struct Shell<'a> {
    pub title: &'a str,
    pub site_name: &'a str,
    pub badge_url: Option<&'a str>,
    pub theme_color: Option<&'a str>,
    /// Already-rendered, already-escaped HTML from the page's own template.
    pub body: &'a str,
    /// Who is signed in and as what, shown on every page.
    pub who: Who,
    /// The interface language (the header offers the other one).
    pub lang: Lang,
}

/// The header's corner: the signed-in identity, a sign-in link, or nothing.
#[derive(Clone, Debug)]
pub enum Who {
    Nobody,
    SignIn,
    User(UserBadge),
}

/// The signed-in person and the identity they act as, for the page header.
#[derive(Clone, Debug)]
pub struct UserBadge {
    pub name: String,
    /// Role names in Chinese, e.g. 教师、班主任.
    pub roles: String,
    /// The same in English.
    pub roles_en: String,
}

impl Shell<'_> {
    /// The stylesheet that sets the school's colour (`/static/theme/1f6feb.css`), when the
    /// colour is a `#rgb` or `#rrggbb` value; pages carry no inline styles.
    fn theme_href(&self) -> Option<String> {
        let hex = theme_hex(self.theme_color?.strip_prefix('#')?)?;
        Some(format!("/static/theme/{hex}.css"))
    }

    pub fn into_page(self, status: StatusCode) -> Response {
        match self.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing_free_log(&e);
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "page could not be rendered",
                )
                    .into_response()
            }
        }
    }
}

fn tracing_free_log(e: &askama::Error) {
    // The web crate has no logging dependency of its own; rendering errors are programming
    // errors caught by tests, so stderr is enough.
    eprintln!("template error: {e}");
}

#[derive(Template)]
#[template(path = "message.html")]
struct Message<'a> {
    status: u16,
    title_zh: &'a str,
    title_en: &'a str,
    detail_zh: &'a str,
    detail_en: &'a str,
}

/// A page that says one thing in Chinese and English, e.g. an error.
pub fn message_page(
    status: StatusCode,
    site_name: &str,
    zh: (&str, &str),
    en: (&str, &str),
) -> Response {
    let body = Message {
        status: status.as_u16(),
        title_zh: zh.0,
        detail_zh: zh.1,
        title_en: en.0,
        detail_en: en.1,
    }
    .render()
    .unwrap_or_default();
    Shell {
        title: zh.0,
        site_name,
        badge_url: None,
        theme_color: None,
        body: &body,
        who: Who::Nobody,
        lang: Lang::Zh,
    }
    .into_page(status)
}

/// The name shown on pages that do not belong to a school.
pub const PLATFORM_NAME: &str = "县域智慧校园云平台";

/// Friendly pages for the router's rejections (plugged into `campus_tenant::routing`).
pub fn render_rejection(r: Rejection) -> Response {
    match r {
        Rejection::BadHost(why) => message_page(
            StatusCode::BAD_REQUEST,
            PLATFORM_NAME,
            ("网址无效", "请检查浏览器地址栏中的网址是否完整、正确。"),
            (
                "Bad address",
                &format!("The Host header was not accepted: {why}."),
            ),
        ),
        Rejection::UnknownHost(host) => message_page(
            StatusCode::NOT_FOUND,
            PLATFORM_NAME,
            (
                "找不到这所学校",
                &format!("“{host}” 不是本县已开通的学校网址。请向学校或县电教馆确认正确的网址。"),
            ),
            (
                "School not found",
                &format!("{host} is not the address of a school on this platform."),
            ),
        ),
        Rejection::Suspended(t) => {
            let zh = match &t.suspended_reason {
                Some(reason) => format!("{} 的校园平台已暂停服务（{reason}）。数据均已保留，恢复后即可继续使用。如有疑问请联系学校或县电教馆。", t.name),
                None => format!("{} 的校园平台已暂停服务。数据均已保留，恢复后即可继续使用。如有疑问请联系学校或县电教馆。", t.name),
            };
            message_page(
                StatusCode::FORBIDDEN,
                &t.name,
                ("平台已暂停服务", &zh),
                ("Service suspended", "This school's platform is suspended by the county IT centre. Its data is kept."),
            )
        }
        Rejection::Unavailable => {
            let mut resp = message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                PLATFORM_NAME,
                ("服务暂时不可用", "请稍后刷新重试。"),
                ("Temporarily unavailable", "Please try again in a moment."),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            resp
        }
    }
}

/// `404` for a path that does not exist on a known site.
pub fn not_found_page(site_name: &str) -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        site_name,
        ("页面不存在", "您访问的页面不存在或已被移除。"),
        ("Page not found", "The page you asked for does not exist."),
    )
}

const CSS: &str = include_str!("../static/campus.css");
const SIGNATURE_JS: &str = include_str!("../static/signature.js");
const PEOPLE_PICKER_JS: &str = include_str!("../static/people-picker.js");

/// A colour's hex digits, lowercase, if `hex` is 3 or 6 of them.
fn theme_hex(hex: &str) -> Option<String> {
    (matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// A static asset cached by browsers for a day.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

/// `GET /static/theme/{hex}.css`: a school's colour as a stylesheet (any colour, so it can
/// be cached for a year without knowing the school).
async fn theme_css(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    match file.strip_suffix(".css").and_then(theme_hex) {
        Some(hex) => (
            [
                (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            format!(":root {{ --brand: #{hex}; }}\n"),
        )
            .into_response(),
        None => not_found_page(PLATFORM_NAME),
    }
}

/// `/static/*`: the stylesheet, the pages' scripts (pages carry no inline script, so the
/// Content-Security-Policy allows only these files), each school's colour;
/// `/lang/{zh|en}`: the switch.
pub fn static_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/lang/{code}", get(lang::switch))
        .route(
            "/static/campus.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/static/signature.js",
            get(|| async { asset("text/javascript; charset=utf-8", SIGNATURE_JS) }),
        )
        .route(
            "/static/people-picker.js",
            get(|| async { asset("text/javascript; charset=utf-8", PEOPLE_PICKER_JS) }),
        )
        .route("/static/theme/{file}", get(theme_css))
}
