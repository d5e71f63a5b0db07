//! The security headers of every response, set in one layer around the whole application:
//! the Content-Security-Policy (pages load scripts and styles only from this site's own
//! files — no inline script, style or event handler), framing refused, no MIME sniffing, a
//! referrer policy (`no-referrer` on pages whose URL carries a token) and, when the
//! platform is served over HTTPS, Strict-Transport-Security.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use http::HeaderValue;

/// The headers, built once from the configuration.
#[derive(Clone, Debug)]
pub struct SecurityHeaders {
    csp: HeaderValue,
    hsts: Option<HeaderValue>,
}

impl SecurityHeaders {
    /// `login_origin` is the central sign-in host (`https://login.<base>`): a sign-in form
    /// is answered with a redirect there, and `form-action` governs where a form's
    /// redirects may lead too.
    pub fn new(login_origin: &str, https: bool) -> Self {
        let csp = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
             font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
             frame-ancestors 'none'; form-action 'self' {login_origin}"
        );
        Self {
            csp: HeaderValue::from_str(&csp).expect("an origin is a valid header value"),
            hsts: https.then(|| HeaderValue::from_static("max-age=31536000; includeSubDomains")),
        }
    }
}

/// Whether a request's URL carries a secret (a token in the path, a `token=` or `code=`
/// parameter): such a page must not send its address on as a `Referer`.
pub fn carries_token(uri: &http::Uri) -> bool {
    crate::logging::TOKEN_PREFIXES
        .iter()
        .any(|p| uri.path().len() > p.len() && uri.path().starts_with(p))
        || uri.query().is_some_and(|q| {
            q.split('&')
                .any(|kv| kv.starts_with("token=") || kv.starts_with("code="))
        })
}

/// The middleware: handlers may set their own value of a header (a stricter policy for a
/// download, say); the layer fills in the rest.
pub async fn add(State(h): State<Arc<SecurityHeaders>>, req: Request, next: Next) -> Response {
    let token_page = carries_token(req.uri());
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    headers
        .entry(CONTENT_SECURITY_POLICY)
        .or_insert_with(|| h.csp.clone());
    headers
        .entry(X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    headers
        .entry(X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    if token_page {
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    } else {
        headers
            .entry(REFERRER_POLICY)
            .or_insert(HeaderValue::from_static("same-origin"));
    }
    if let Some(hsts) = &h.hsts {
        headers
            .entry(STRICT_TRANSPORT_SECURITY)
            .or_insert_with(|| hsts.clone());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::carries_token;

    #[test]
    fn token_pages_are_recognised() {
        for yes in [
            "/join/abc",
            "/join/status/abc",
            "/invite/abc",
            "/visit/abc",
            "/password/reset/email/abc",
            "/sso/callback?code=ab&state=cd",
            "/x?a=1&token=2",
        ] {
            assert!(carries_token(&yes.parse().unwrap()), "{yes}");
        }
        for no in [
            "/",
            "/join/",
            "/visit",
            "/visits/3",
            "/me?x=1",
            "/x?notoken=1",
        ] {
            assert!(!carries_token(&no.parse().unwrap()), "{no}");
        }
    }
}
