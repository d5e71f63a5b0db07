//! Choosing a new password with a code texted to the account's phone (`/password/reset`,
//! on school hosts and the login host). The page answers the same whether or not the phone
//! has an account (a request for an unknown phone is recorded against the limits but no
//! text is sent). Success sets the password, marks the phone proven, clears the lockout and
//! ends every session of the account.

use askama::Template;
use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use campus_tenant::Site;
use serde::Deserialize;

use crate::login::Login;
use crate::otp::{self, OtpError, Purpose};
use crate::IdentityState;

const CSRF_COOKIE: &str = "campus_reset_csrf";

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage<'a> {
    lang: campus_web::Lang,
    site_name: &'a str,
    /// 1: phone, 2: code and new password, 3: done.
    step: u8,
    phone: &'a str,
    csrf: &'a str,
    errors: &'a [String],
    notice: Option<&'a str>,
}

fn site_name(site: &Site) -> String {
    match site {
        Site::School(t) => t.name.clone(),
        _ => campus_web::PLATFORM_NAME.to_owned(),
    }
}

/// What one answer of the page shows.
struct View<'a> {
    step: u8,
    phone: &'a str,
    status: StatusCode,
    errors: &'a [String],
    notice: Option<&'a str>,
}

fn render(st: &IdentityState, site: &Site, lang: campus_web::Lang, v: View<'_>) -> Response {
    let View {
        step,
        phone,
        status,
        errors,
        notice,
    } = v;
    let csrf = crate::session::random_hex();
    let name = site_name(site);
    let body = ResetPage {
        lang,
        site_name: &name,
        step,
        phone,
        csrf: &csrf,
        errors,
        notice,
    }
    .render()
    .unwrap_or_default();
    let mut resp = campus_web::Shell {
        title: lang.pick("重置密码", "Reset the password"),
        site_name: &name,
        badge_url: None,
        theme_color: None,
        body: &body,
        who: campus_web::Who::Nobody,
        lang,
    }
    .into_page(status);
    crate::cookies::set(&mut resp, CSRF_COOKIE, csrf, "/password", st.secure_cookies);
    resp
}

/// `GET /password/reset`.
pub(crate) async fn form(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
) -> Response {
    let view = View {
        step: 1,
        phone: "",
        status: StatusCode::OK,
        errors: &[],
        notice: None,
    };
    render(&st, &site, lang, view)
}

#[derive(Deserialize, Default)]
pub(crate) struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

const SENT: &str = "如果该手机号已注册，验证码已发送，5 分钟内有效。(If this number has an account, a code was sent; it works for 5 minutes.)";

/// `POST /password/reset`: `action=send` texts a code; `action=reset` sets the password.
pub(crate) async fn submit(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
    crate::limits::ClientIp(ip): crate::limits::ClientIp,
    headers: HeaderMap,
    Form(f): Form<ResetForm>,
) -> Response {
    let page =
        |step: u8, phone: &str, status: StatusCode, errors: &[String], notice: Option<&str>| {
            let view = View {
                step,
                phone,
                status,
                errors,
                notice,
            };
            render(&st, &site, lang, view)
        };
    let csrf_cookie = crate::cookie_value(&headers, CSRF_COOKIE);
    if f.csrf.is_empty() || csrf_cookie.as_deref() != Some(f.csrf.as_str()) {
        return page(
            1,
            &f.phone,
            StatusCode::FORBIDDEN,
            &["页面已过期，请重新操作。(The page expired; please try again.)".into()],
            None,
        );
    }
    let phone = match Login::parse(&f.phone) {
        Ok(Login::Phone(p)) => p,
        _ => {
            return page(
                1,
                &f.phone,
                StatusCode::UNPROCESSABLE_ENTITY,
                &["请填写 11 位手机号。(Enter an 11-digit mobile number.)".into()],
                None,
            )
        }
    };
    let otp_error = |step: u8, e: OtpError| {
        let mut resp = page(step, &phone, e.status(), &[e.message()], None);
        if let Some(secs) = e.retry_after() {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        resp
    };
    let account: Option<(i64, String)> =
        match sqlx::query_as("select id, status from public.accounts where phone = $1")
            .bind(&phone)
            .fetch_optional(&st.pool)
            .await
        {
            Ok(a) => a,
            Err(e) => return otp_error(1, e.into()),
        };
    let (slug, name) = match &site {
        Site::School(t) => (t.slug.to_string(), t.name.clone()),
        _ => ("login".to_owned(), campus_web::PLATFORM_NAME.to_owned()),
    };
    if f.action == "send" {
        let r = otp::Request {
            phone: &phone,
            purpose: Purpose::Reset,
            ip,
            site: &slug,
            site_name: &name,
            deliver: account.as_ref().is_some_and(|(_, s)| s == "active"),
        };
        return match otp::send(&st.pool, st.sms.as_ref(), &r).await {
            Ok(()) => page(2, &phone, StatusCode::OK, &[], Some(SENT)),
            Err(e) => otp_error(1, e),
        };
    }
    // The new password is checked before the code, so a typo costs no try.
    if let Err(e) = crate::password::check_policy(&f.password) {
        return page(
            2,
            &phone,
            StatusCode::UNPROCESSABLE_ENTITY,
            &[e.to_string()],
            None,
        );
    }
    if f.password != f.password2 {
        return page(
            2,
            &phone,
            StatusCode::UNPROCESSABLE_ENTITY,
            &["两次输入的密码不一致。(The passwords differ.)".into()],
            None,
        );
    }
    let proof = match otp::verify(&st.pool, &phone, Purpose::Reset, &f.code).await {
        Ok(p) => p,
        Err(e) => return otp_error(2, e),
    };
    let hash = match st.hasher.hash(&f.password).await {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "hashing failed");
            return otp_error(2, OtpError::Unavailable);
        }
    };
    let host = crate::pages::host_of(&headers);
    let done = async {
        let mut tx = st.pool.begin().await?;
        if !otp::redeem(&mut tx, &phone, Purpose::Reset, &proof).await? {
            return Ok::<_, sqlx::Error>(None);
        }
        let id: Option<i64> = sqlx::query_scalar(
            "update public.accounts set password_hash = $2, phone_verified_at = coalesce(phone_verified_at, now()),
                    failed_logins = 0, locked_until = null, updated_at = now()
              where phone = $1 returning id",
        )
        .bind(&phone)
        .bind(&hash)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = id {
            crate::session::end_all(&mut *tx, id).await?;
            sqlx::query(
                "insert into public.auth_events (account_id, login, event, host) values ($1, $2, 'password_reset', $3)",
            )
            .bind(id)
            .bind(&phone)
            .bind(&host)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(id))
    }
    .await;
    match done {
        Ok(Some(_)) => {
            st.sessions.forget_cached();
            page(3, "", StatusCode::OK, &[], None)
        }
        Ok(None) => otp_error(1, OtpError::NoProof),
        Err(e) => otp_error(2, e.into()),
    }
    .into_response()
}
