//! The sign-in pages: login form and submission (with lockout and audit), logout
//! everywhere, and "me" — who I am here and which other identities I hold.

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use campus_tenant::Site;
use serde::Deserialize;

use crate::login::Login;
use crate::session::{random_hex, COOKIE};
use crate::{account, permission, CurrentUser, IdentityState};

/// Double-submit cookie protecting the login form (there is no session yet to hold a token).
const LOGIN_CSRF: &str = "campus_login_csrf";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    lang: campus_web::Lang,
    site_name: &'a str,
    csrf: &'a str,
    login: &'a str,
    error: Option<&'a str>,
}

fn site_name(site: &Site) -> String {
    match site {
        Site::School(t) => t.name.clone(),
        _ => format!("{} · 教育局", campus_web::PLATFORM_NAME),
    }
}

fn render_login(
    st: &IdentityState,
    site: &Site,
    lang: campus_web::Lang,
    status: StatusCode,
    login: &str,
    error: Option<&str>,
) -> Response {
    let csrf = random_hex();
    let name = site_name(site);
    let body = LoginPage {
        lang,
        site_name: &name,
        csrf: &csrf,
        login,
        error,
    }
    .render()
    .unwrap_or_default();
    let mut resp = campus_web::Shell {
        title: lang.pick("登录", "Sign in"),
        site_name: &name,
        badge_url: None,
        theme_color: None,
        body: &body,
        who: campus_web::Who::Nobody,
        lang,
    }
    .into_page(status);
    crate::cookies::set(&mut resp, LOGIN_CSRF, csrf, "/login", st.secure_cookies);
    resp
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    local: Option<String>,
}

/// Without a session here, first ask the central login host (single sign-on); it sends the
/// browser back with a code, or to `?local=1` for this site's own form.
pub(crate) async fn login_form(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let host = host_of(&headers);
    if q.local.is_none() && crate::sso::is_platform_site(&host, &st.urls.base_domain) {
        return crate::sso::start_round_trip(&st, &host);
    }
    render_login(&st, &site, lang, StatusCode::OK, "", None)
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

pub(crate) fn host_of(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| campus_tenant::Hostname::parse(h).ok())
        .map(|h| h.as_str().to_owned())
        .unwrap_or_default()
}

pub(crate) async fn login_submit(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
    crate::limits::ClientIp(ip): crate::limits::ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let csrf_cookie = crate::cookie_value(&headers, LOGIN_CSRF);
    if form.csrf.is_empty() || csrf_cookie.as_deref() != Some(form.csrf.as_str()) {
        return render_login(
            &st,
            &site,
            lang,
            StatusCode::FORBIDDEN,
            &form.login,
            Some("页面已过期，请重新登录。(The form expired; please sign in again.)"),
        );
    }
    let login = match Login::parse(&form.login) {
        Ok(l) => l,
        Err(e) => {
            return render_login(
                &st,
                &site,
                lang,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form.login,
                Some(&e.to_string()),
            )
        }
    };
    let host = host_of(&headers);
    let tenant_id = match &site {
        Site::School(t) => Some(t.id.0),
        _ => None,
    };
    if let Err(wait) = st.login_limits.check(ip, &login.to_string()) {
        account::audit(
            &st.pool,
            None,
            tenant_id,
            &login.to_string(),
            "rate_limited",
            &host,
        )
        .await;
        let secs = wait.as_secs().max(1);
        let message = format!(
            "登录尝试过于频繁，请 {secs} 秒后再试。(Too many sign-in attempts; try again in {secs} s.)"
        );
        let mut resp = render_login(
            &st,
            &site,
            lang,
            StatusCode::TOO_MANY_REQUESTS,
            &form.login,
            Some(&message),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        return resp;
    }
    let a = match sign_in(&st, &site, &login, &form.password, &host, tenant_id).await {
        Ok(a) => a,
        Err((status, message)) => {
            return render_login(&st, &site, lang, status, &form.login, Some(message))
        }
    };
    let login_text = login.to_string();
    // A second factor on, or required here: no session before the code (or enrolment).
    let must_enrol = if a.totp_enabled {
        false
    } else {
        match crate::second_factor::required(&st, a.id, a.county_role.as_deref(), tenant_id).await {
            Ok(must) => must,
            Err(e) => {
                tracing::error!(error = %e, "second factor requirement lookup failed");
                return crate::AuthRejection::Unavailable.into_response();
            }
        }
    };
    if a.totp_enabled || must_enrol {
        let pending = match crate::second_factor::begin_pending(
            &st.pool,
            a.id,
            &host,
            tenant_id,
            &login_text,
            must_enrol,
        )
        .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "starting a pending sign-in failed");
                return crate::AuthRejection::Unavailable.into_response();
            }
        };
        let mut resp = Redirect::to("/login/2fa").into_response();
        crate::cookies::set(
            &mut resp,
            crate::second_factor::PENDING_COOKIE,
            pending,
            "/login",
            st.secure_cookies,
        );
        return resp;
    }
    match complete_sign_in(&st, a.id, &host, tenant_id, &login_text, false).await {
        Ok(token) => {
            let mut resp = Redirect::to(&after_sign_in(&st, &host)).into_response();
            crate::cookies::set(&mut resp, COOKIE, token, "/", st.secure_cookies);
            resp
        }
        Err(resp) => resp,
    }
}

/// Where the browser goes once signed in: through the login host, so that it opens its own
/// session too (other schools then need no password), bound to this browser by a nonce
/// cookie there (see [`crate::sso`]); off the platform's addresses, straight to `/me`.
pub(crate) fn after_sign_in(st: &IdentityState, host: &str) -> String {
    if crate::sso::is_platform_site(host, &st.urls.base_domain) {
        format!("{}/sso/bind?next={host}", st.urls.login())
    } else {
        "/me".to_owned()
    }
}

/// The last step of a sign-in: lockout cleared, session opened, audited. Returns the
/// session token for the cookie.
pub(crate) async fn complete_sign_in(
    st: &IdentityState,
    account_id: i64,
    host: &str,
    tenant_id: Option<i64>,
    login_text: &str,
    second_factor: bool,
) -> Result<String, Response> {
    let unavailable = |e: sqlx::Error| {
        tracing::error!(error = %e, "sign-in failed");
        crate::AuthRejection::Unavailable.into_response()
    };
    account::record_success(&st.pool, account_id)
        .await
        .map_err(unavailable)?;
    let token = st
        .sessions
        .create_with(account_id, host, tenant_id, second_factor)
        .await
        .map_err(unavailable)?;
    account::audit(
        &st.pool,
        Some(account_id),
        tenant_id,
        login_text,
        "signed_in",
        host,
    )
    .await;
    Ok(token)
}

/// Checks the password and the person's right to sign in here; returns the account.
async fn sign_in(
    st: &IdentityState,
    site: &Site,
    login: &Login,
    password: &str,
    host: &str,
    tenant_id: Option<i64>,
) -> Result<account::Credentials, (StatusCode, &'static str)> {
    const WRONG: &str = "手机号/用户名或密码不正确。(Wrong login or password.)";
    let unavailable = |e: sqlx::Error| {
        tracing::error!(error = %e, "sign-in failed");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "服务暂时不可用，请稍后重试。(Temporarily unavailable.)",
        )
    };
    let account = account::find_by_login(&st.pool, login)
        .await
        .map_err(unavailable)?;
    let login_text = login.to_string();
    if let Some(a) = &account {
        if a.locked_until.is_some_and(|t| t > chrono::Utc::now()) {
            account::audit_attempt(&st.pool, a.id, tenant_id, &login_text, "locked_out", host)
                .await;
            return Err((
                StatusCode::TOO_MANY_REQUESTS,
                "尝试次数过多，账号已暂时锁定，请稍后再试。(Too many attempts; try again later.)",
            ));
        }
    }
    // Always verify, against a dummy hash when the account does not exist: same timing.
    let ok = st
        .hasher
        .verify(password, account.as_ref().map(|a| a.password_hash.as_str()))
        .await;
    let Some(a) = account.filter(|_| ok) else {
        if let Some(a) = account::find_by_login(&st.pool, login)
            .await
            .map_err(unavailable)?
        {
            account::record_failure(&st.pool, a.id)
                .await
                .map_err(unavailable)?;
            account::audit_attempt(
                &st.pool,
                a.id,
                tenant_id,
                &login_text,
                "wrong_password",
                host,
            )
            .await;
        } else {
            account::audit(
                &st.pool,
                None,
                tenant_id,
                &login_text,
                "unknown_login",
                host,
            )
            .await;
        }
        return Err((StatusCode::UNAUTHORIZED, WRONG));
    };
    if a.status != "active" {
        account::audit_attempt(&st.pool, a.id, tenant_id, &login_text, "disabled", host).await;
        return Err((
            StatusCode::FORBIDDEN,
            "账号已停用，请联系学校管理员。(This account is disabled.)",
        ));
    }
    let allowed = match site {
        Site::School(t) => !account::roles_in(&st.pool, a.id, t.id.0)
            .await
            .map_err(unavailable)?
            .is_empty(),
        Site::County => a.county_role.is_some(),
        Site::Platform | Site::Login => false,
    };
    if !allowed {
        account::audit_attempt(
            &st.pool,
            a.id,
            tenant_id,
            &login_text,
            "no_membership",
            host,
        )
        .await;
        return Err((
            StatusCode::FORBIDDEN,
            "您在这里没有身份。请到您所在学校的网址登录。(You have no identity here.)",
        ));
    }
    Ok(a)
}

#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// Ends every session of the person, on every host.
pub(crate) async fn logout(
    State(st): State<IdentityState>,
    user: CurrentUser,
    Form(form): Form<LogoutForm>,
) -> Response {
    if form.csrf != user.csrf_token {
        return (StatusCode::FORBIDDEN, "missing or wrong CSRF token").into_response();
    }
    if let Err(e) = st.sessions.revoke_all(user.account_id).await {
        tracing::error!(error = %e, "logout failed");
        return crate::AuthRejection::Unavailable.into_response();
    }
    let mut resp = Redirect::to("/login").into_response();
    crate::cookies::clear(&mut resp, COOKIE, "/");
    resp
}

struct OtherIdentity {
    school: String,
    roles: String,
    url: String,
}

#[derive(Template)]
#[template(path = "me.html")]
struct MePage<'a> {
    lang: campus_web::Lang,
    name: &'a str,
    site_name: &'a str,
    roles: String,
    others: Vec<OtherIdentity>,
    csrf: &'a str,
    invitations: Vec<PendingInvitation>,
    /// Invitations to the account's phone that wait for the phone to be proven.
    waiting: i64,
    email: Option<String>,
    email_confirmed: bool,
    second_factor: bool,
}

struct PendingInvitation {
    id: i64,
    school: String,
    roles: String,
}

pub(crate) async fn me(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
    user: CurrentUser,
) -> Response {
    let all = match account::memberships(&st.pool, user.account_id).await {
        Ok(all) => all,
        Err(e) => {
            tracing::error!(error = %e, "listing memberships failed");
            return crate::AuthRejection::Unavailable.into_response();
        }
    };
    let (invitations, waiting) =
        match crate::invitations::for_account(&st.pool, user.account_id).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "listing invitations failed");
                return crate::AuthRejection::Unavailable.into_response();
            }
        };
    let invitations = invitations
        .into_iter()
        .map(|i| PendingInvitation {
            id: i.id,
            school: i.school,
            roles: if lang.is_en() {
                permission::role_names_en(&i.roles)
            } else {
                permission::role_names(&i.roles)
            },
        })
        .collect();
    let here = match &site {
        Site::School(t) => t.slug.to_string(),
        _ => String::new(),
    };
    let others = all
        .into_iter()
        .filter(|(slug, ..)| *slug != here)
        .filter_map(|(slug, school, roles)| {
            let slug = campus_tenant::Slug::parse(&slug).ok()?;
            Some(OtherIdentity {
                url: format!("{}/login", st.urls.school(&slug)),
                school,
                roles: if lang.is_en() {
                    permission::role_names_en(&roles)
                } else {
                    permission::role_names(&roles)
                },
            })
        })
        .collect();
    let (email, email_confirmed) = match crate::passwords::email_of(&st.pool, user.account_id).await
    {
        Ok(Some((e, ok))) => (Some(e), ok),
        Ok(None) => (None, false),
        Err(e) => {
            tracing::error!(error = %e, "reading the email failed");
            return crate::AuthRejection::Unavailable.into_response();
        }
    };
    let second_factor = match crate::second_factor::enrolled(&st.pool, user.account_id).await {
        Ok(on) => on,
        Err(e) => {
            tracing::error!(error = %e, "reading the second factor failed");
            return crate::AuthRejection::Unavailable.into_response();
        }
    };
    let name = site_name(&site);
    let badge = user.badge();
    let body = MePage {
        email,
        email_confirmed,
        second_factor,
        lang,
        name: &user.display_name,
        site_name: &name,
        roles: if lang.is_en() {
            badge.roles_en.clone()
        } else {
            badge.roles.clone()
        },
        others,
        csrf: &user.csrf_token,
        invitations,
        waiting,
    }
    .render()
    .unwrap_or_default();
    campus_web::Shell {
        title: lang.pick("我的身份", "My identities"),
        site_name: &name,
        badge_url: None,
        theme_color: None,
        body: &body,
        who: campus_web::Who::User(badge),
        lang,
    }
    .into_page(StatusCode::OK)
}
