//! Single sign-on across the county's hosts. The central login host `login.<base>` keeps
//! its own session; each school's host gets *its own* session through a one-time code that
//! only that host can redeem, once, within a minute. No cookie ever spans hosts.
//!
//! - After a sign-in on a school's form the browser visits the login host (`/sso/bind`),
//!   which sets a nonce cookie (host-only, `HttpOnly`, `SameSite=Lax`) and sends it back
//!   to the school (`/sso/central?nonce=`); the school issues a `central` code for that
//!   nonce, and the login host's `/sso/establish` opens its session only in the browser
//!   holding the nonce cookie — an attacker's code cannot sign a victim's browser in as
//!   the attacker (login CSRF).
//! - Codes carry whether the sign-in passed a second factor; the login host hands a `site`
//!   code to a school only if the central session passed one where that school (or the
//!   account) requires it, else the browser signs in on the school's own form.
//! - Visiting another school's `/login` sends the browser to the login host
//!   (`/sso/start`); with a central session there it comes straight back with a `site`
//!   code (`/sso/callback`), and the school opens a session without a password.
//! - A `state` nonce in a cookie on the school's host ties the callback to the browser that
//!   started it.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use campus_tenant::{Hostname, Site};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::session::{random_hex, COOKIE};
use crate::{account, cookie_value, IdentityState};

/// Cookie on a school's host holding the nonce of an SSO round trip in progress.
pub const STATE_COOKIE: &str = "campus_sso_state";
/// Cookie on the login host binding a `central` code to the browser that asked for it.
pub const NONCE_COOKIE: &str = "campus_sso_nonce";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Central,
    Site,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Central => "central",
            Self::Site => "site",
        }
    }
}

fn hash(code: &str) -> Vec<u8> {
    Sha256::digest(code.as_bytes()).to_vec()
}

/// A new one-time code for `account_id`, redeemable only on `target_host`.
pub async fn issue(
    pool: &PgPool,
    account_id: i64,
    target_host: &str,
    purpose: Purpose,
) -> sqlx::Result<String> {
    issue_with(pool, account_id, target_host, purpose, None, false).await
}

/// [`issue`] for the browser holding `nonce` (`None`: any), recording whether the
/// sign-in behind it passed a second factor.
pub async fn issue_with(
    pool: &PgPool,
    account_id: i64,
    target_host: &str,
    purpose: Purpose,
    nonce: Option<&str>,
    second_factor: bool,
) -> sqlx::Result<String> {
    let code = random_hex();
    sqlx::query(
        "insert into public.sso_codes (code_hash, account_id, target_host, purpose, expires_at, nonce_hash, second_factor)
         values ($1, $2, $3, $4, now() + interval '60 seconds', $5, $6)",
    )
    .bind(hash(&code))
    .bind(account_id)
    .bind(target_host)
    .bind(purpose.as_str())
    .bind(nonce.map(hash))
    .bind(second_factor)
    .execute(pool)
    .await?;
    Ok(code)
}

/// What a redeemed code carries.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Redeemed {
    pub account_id: i64,
    pub nonce_hash: Option<Vec<u8>>,
    pub second_factor: bool,
}

/// Redeems a code on `host`: the account it was issued for, once.
pub async fn redeem(
    pool: &PgPool,
    code: &str,
    host: &str,
    purpose: Purpose,
) -> sqlx::Result<Option<Redeemed>> {
    if code.len() != 64 || !code.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    sqlx::query_as(
        "update public.sso_codes set used_at = now()
          where code_hash = $1 and target_host = $2 and purpose = $3 and used_at is null and expires_at > now()
          returning account_id, nonce_hash, second_factor",
    )
    .bind(hash(code))
    .bind(host)
    .bind(purpose.as_str())
    .fetch_optional(pool)
    .await
}

/// Whether `host` is a school's or the county's address under the base domain — the only
/// places the login host will send a code to (no open redirects).
pub(crate) fn is_platform_site(host: &str, base_domain: &str) -> bool {
    let Ok(h) = Hostname::parse(host) else {
        return false;
    };
    h.as_str()
        .strip_suffix(base_domain)
        .and_then(|rest| rest.strip_suffix('.'))
        .is_some_and(|label| label == "county" || campus_tenant::Slug::parse(label).is_ok())
}

pub(crate) fn login_host(st: &IdentityState) -> String {
    format!("login.{}", st.urls.base_domain)
}

pub(crate) fn message(status: StatusCode, zh: &str, en: &str) -> Response {
    campus_web::message_page(
        status,
        campus_web::PLATFORM_NAME,
        ("无法登录", zh),
        ("Cannot sign in", en),
    )
}

/// School/county `/login` without a local session: go ask the login host.
pub(crate) fn start_round_trip(st: &IdentityState, host: &str) -> Response {
    let state = random_hex();
    let to = format!("{}/sso/start?to={host}&state={state}", st.urls.login());
    let mut resp = Redirect::to(&to).into_response();
    crate::cookies::set(&mut resp, STATE_COOKIE, state, "/sso", st.secure_cookies);
    resp
}

#[derive(Deserialize)]
pub(crate) struct StartQuery {
    to: String,
    state: String,
}

/// Login host: hand the asking site a code if someone is signed in here, else send the
/// browser back to that site's own form.
pub(crate) async fn start(
    State(st): State<IdentityState>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> Response {
    if !is_platform_site(&q.to, &st.urls.base_domain) || q.state.len() != 64 {
        return message(
            StatusCode::BAD_REQUEST,
            "登录请求无效。",
            "This sign-in request is not valid.",
        );
    }
    let to = Hostname::parse(&q.to)
        .expect("checked above")
        .as_str()
        .to_owned();
    let site_url = st.urls.of_host(&to);
    let central = match cookie_value(&headers, COOKIE) {
        Some(token) => st
            .sessions
            .find(&token, &login_host(&st))
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let Some(session) = central else {
        return Redirect::to(&format!("{site_url}/login?local=1")).into_response();
    };
    // A sign-in without a second factor does not open a site that wants one.
    if !session.second_factor {
        let needs = match crate::second_factor::enrolled(&st.pool, session.account_id).await {
            Ok(true) => Ok(true),
            Ok(false) => crate::second_factor::required_at_host(&st, session.account_id, &to).await,
            Err(e) => Err(e),
        };
        match needs {
            Ok(false) => {}
            Ok(true) => return Redirect::to(&format!("{site_url}/login?local=1")).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "second factor lookup failed");
                return crate::AuthRejection::Unavailable.into_response();
            }
        }
    }
    match issue_with(
        &st.pool,
        session.account_id,
        &to,
        Purpose::Site,
        None,
        session.second_factor,
    )
    .await
    {
        Ok(code) => Redirect::to(&format!(
            "{site_url}/sso/callback?code={code}&state={}",
            q.state
        ))
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "issuing a sign-on code failed");
            crate::AuthRejection::Unavailable.into_response()
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct CallbackQuery {
    code: String,
    state: String,
}

/// School/county host: redeem a `site` code for a session of our own.
pub(crate) async fn callback(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let host = crate::pages::host_of(&headers);
    if cookie_value(&headers, STATE_COOKIE).as_deref() != Some(q.state.as_str()) {
        return message(
            StatusCode::FORBIDDEN,
            "登录链接与本浏览器不匹配，请重新登录。",
            "This sign-in link was not started in this browser.",
        );
    }
    let (account_id, second_factor) = match redeem(&st.pool, &q.code, &host, Purpose::Site).await {
        Ok(Some(r)) => (r.account_id, r.second_factor),
        Ok(None) => {
            return message(
                StatusCode::FORBIDDEN,
                "登录链接已失效，请重新登录。",
                "This sign-in link has expired or was used.",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "redeeming a sign-on code failed");
            return crate::AuthRejection::Unavailable.into_response();
        }
    };
    let tenant_id = match &site {
        Site::School(t) => Some(t.id.0),
        _ => None,
    };
    let allowed = match &site {
        Site::School(t) => account::roles_in(&st.pool, account_id, t.id.0)
            .await
            .map(|r| !r.is_empty()),
        Site::County => account::county_role(&st.pool, account_id)
            .await
            .map(|r| r.is_some()),
        _ => Ok(false),
    };
    match allowed {
        Ok(true) => {}
        Ok(false) => {
            account::audit(
                &st.pool,
                Some(account_id),
                tenant_id,
                "",
                "no_membership",
                &host,
            )
            .await;
            return message(
                StatusCode::FORBIDDEN,
                "您在这里没有身份。",
                "You have no identity here.",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "membership lookup failed");
            return crate::AuthRejection::Unavailable.into_response();
        }
    }
    let token = match st
        .sessions
        .create_with(account_id, &host, tenant_id, second_factor)
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "creating a session failed");
            return crate::AuthRejection::Unavailable.into_response();
        }
    };
    account::audit(
        &st.pool,
        Some(account_id),
        tenant_id,
        "",
        "signed_in_sso",
        &host,
    )
    .await;
    let mut resp = Redirect::to("/me").into_response();
    crate::cookies::set(&mut resp, COOKIE, token, "/", st.secure_cookies);
    crate::cookies::clear(&mut resp, STATE_COOKIE, "/sso");
    resp
}

#[derive(Deserialize)]
pub(crate) struct BindQuery {
    next: String,
}

/// Login host, after a sign-in on a site's form: a fresh nonce in a cookie here, then back
/// to the site, which issues a `central` code for it.
pub(crate) async fn bind(State(st): State<IdentityState>, Query(q): Query<BindQuery>) -> Response {
    if !is_platform_site(&q.next, &st.urls.base_domain) {
        return message(
            StatusCode::BAD_REQUEST,
            "登录请求无效。",
            "This sign-in request is not valid.",
        );
    }
    let site = st
        .urls
        .of_host(Hostname::parse(&q.next).expect("checked").as_str());
    let nonce = random_hex();
    let mut resp = Redirect::to(&format!("{site}/sso/central?nonce={nonce}")).into_response();
    crate::cookies::set(&mut resp, NONCE_COOKIE, nonce, "/sso", st.secure_cookies);
    resp
}

#[derive(Deserialize)]
pub(crate) struct CentralQuery {
    nonce: String,
}

/// School/county host: a `central` code for the signed-in person, bound to the login
/// host's nonce cookie of this browser.
pub(crate) async fn central(
    State(st): State<IdentityState>,
    headers: HeaderMap,
    Query(q): Query<CentralQuery>,
) -> Response {
    let host = crate::pages::host_of(&headers);
    if q.nonce.len() != 64 || !q.nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return message(
            StatusCode::BAD_REQUEST,
            "登录请求无效。",
            "This sign-in request is not valid.",
        );
    }
    let session = match cookie_value(&headers, COOKIE) {
        Some(token) => match st.sessions.find(&token, &host).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "session lookup failed");
                return crate::AuthRejection::Unavailable.into_response();
            }
        },
        None => None,
    };
    let Some(session) = session else {
        return Redirect::to("/login?local=1").into_response();
    };
    match issue_with(
        &st.pool,
        session.account_id,
        &login_host(&st),
        Purpose::Central,
        Some(&q.nonce),
        session.second_factor,
    )
    .await
    {
        Ok(code) => Redirect::to(&format!(
            "{}/sso/establish?code={code}&next={host}",
            st.urls.login()
        ))
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "could not issue a central sign-on code; signed in here only");
            Redirect::to("/me").into_response()
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct EstablishQuery {
    code: String,
    next: String,
}

/// Login host: open the central session after a sign-in on a school's form — only in the
/// browser whose nonce cookie the code was issued for.
pub(crate) async fn establish(
    State(st): State<IdentityState>,
    headers: HeaderMap,
    Query(q): Query<EstablishQuery>,
) -> Response {
    let here = login_host(&st);
    let redeemed = match redeem(&st.pool, &q.code, &here, Purpose::Central).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return message(
                StatusCode::FORBIDDEN,
                "登录链接已失效，请重新登录。",
                "This sign-in link has expired or was used.",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "redeeming a central code failed");
            return crate::AuthRejection::Unavailable.into_response();
        }
    };
    let nonce = cookie_value(&headers, NONCE_COOKIE);
    if redeemed.nonce_hash.is_none() || nonce.as_deref().map(hash) != redeemed.nonce_hash {
        return message(
            StatusCode::FORBIDDEN,
            "登录链接不是在本浏览器中发起的，已拒绝。请在本浏览器中重新登录。",
            "This sign-in link was not started in this browser.",
        );
    }
    let token = match st
        .sessions
        .create_with(redeemed.account_id, &here, None, redeemed.second_factor)
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "creating the central session failed");
            return crate::AuthRejection::Unavailable.into_response();
        }
    };
    let next = if is_platform_site(&q.next, &st.urls.base_domain) {
        format!(
            "{}/me",
            st.urls
                .of_host(Hostname::parse(&q.next).expect("checked").as_str())
        )
    } else {
        st.urls.county()
    };
    let mut resp = Redirect::to(&next).into_response();
    crate::cookies::set(&mut resp, COOKIE, token, "/", st.secure_cookies);
    crate::cookies::clear(&mut resp, NONCE_COOKIE, "/sso");
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_only_sent_to_schools_and_the_county_under_the_base_domain() {
        let base = "edu.example.cn";
        for ok in [
            "xinyi.edu.example.cn",
            "county.edu.example.cn",
            "XinYi.edu.example.cn:8443",
        ] {
            assert!(is_platform_site(ok, base), "{ok}");
        }
        for bad in [
            "evil.com",
            "edu.example.cn",
            "a.b.edu.example.cn",
            "xinyi.edu.example.cn.evil.com",
            "admin.edu.example.cn",
            "login.edu.example.cn",
            "x_y.edu.example.cn",
        ] {
            assert!(!is_platform_site(bad, base), "{bad}");
        }
    }
}
