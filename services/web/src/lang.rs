//! The interface language: Chinese by default, English when the person switches. The choice
//! lives in a cookie so it follows the browser on this host; `/lang/{zh|en}` sets it.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::redirect::same_site_path;

/// The cookie holding the chosen language.
pub const COOKIE: &str = "campus_lang";

/// A page's language. Templates call [`Lang::pick`] with both texts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    /// The text for this language: `lang.pick("首页", "Home")`.
    pub fn pick<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Self::Zh => zh,
            Self::En => en,
        }
    }

    /// The BCP 47 tag for `<html lang>`.
    pub fn tag(&self) -> &'static str {
        self.pick("zh-CN", "en")
    }

    pub fn is_en(&self) -> bool {
        *self == Self::En
    }

    /// The other language, offered by the switch in the page header.
    pub fn other(&self) -> Self {
        match self {
            Self::Zh => Self::En,
            Self::En => Self::Zh,
        }
    }

    pub fn code(&self) -> &'static str {
        self.pick("zh", "en")
    }

    fn parse(code: &str) -> Option<Self> {
        match code {
            "zh" | "zh-CN" => Some(Self::Zh),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The language chosen in the request's cookie; Chinese when none was chosen.
    pub fn of_headers(headers: &axum::http::HeaderMap) -> Self {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .and_then(|(_, value)| Self::parse(value))
            .unwrap_or_default()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of_headers(&parts.headers))
    }
}

#[derive(Deserialize)]
pub(crate) struct Back {
    next: Option<String>,
}

/// The path of a same-host `Referer`, so the switch returns to the page it was clicked on.
fn referer_path(headers: &axum::http::HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let rest = referer
        .strip_prefix("https://")
        .or_else(|| referer.strip_prefix("http://"))?;
    let (ref_host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (ref_host.eq_ignore_ascii_case(host) && !path.is_empty()).then(|| path.to_owned())
}

/// `GET /lang/{zh|en}[?next=/path]`: remembers the language for a year and goes back to
/// `next`, or to the page the link was on.
pub(crate) async fn switch(
    Path(code): Path<String>,
    Query(back): Query<Back>,
    headers: axum::http::HeaderMap,
) -> Response {
    let lang = Lang::parse(&code).unwrap_or_default();
    let next = back.next.or_else(|| referer_path(&headers));
    let mut resp = Redirect::to(same_site_path(next.as_deref())).into_response();
    let cookie = format!(
        "{COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        lang.code()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_picks_the_language_and_chinese_is_the_default() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(Lang::of_headers(&h), Lang::Zh);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; campus_lang=en"),
        );
        assert_eq!(Lang::of_headers(&h), Lang::En);
        h.insert(header::COOKIE, HeaderValue::from_static("campus_lang=fr"));
        assert_eq!(Lang::of_headers(&h), Lang::Zh);
    }
}
