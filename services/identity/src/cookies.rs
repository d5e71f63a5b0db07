//! The platform's cookies: always host-only (no `Domain`), `HttpOnly`, `SameSite=Lax`, and
//! `Secure` when served over TLS — built in one place so no page can get an attribute wrong.

use axum::http::{header, HeaderValue};
use axum::response::Response;
use cookie::{Cookie, SameSite};

/// Appends `Set-Cookie: name=value` for `path` to `resp`.
pub fn set(
    resp: &mut Response,
    name: &'static str,
    value: String,
    path: &'static str,
    secure: bool,
) {
    let c = Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .build();
    append(resp, &c);
}

/// Appends a `Set-Cookie` that removes cookie `name` on `path`.
pub fn clear(resp: &mut Response, name: &'static str, path: &'static str) {
    let c = Cookie::build((name, ""))
        .path(path)
        .http_only(true)
        .max_age(cookie::time::Duration::ZERO)
        .build();
    append(resp, &c);
}

fn append(resp: &mut Response, c: &Cookie<'_>) {
    let value = HeaderValue::from_str(&c.to_string()).expect("cookie is valid header text");
    resp.headers_mut().append(header::SET_COOKIE, value);
}
