//! The second factor: TOTP codes from an authenticator app, with ten one-use recovery
//! codes. Enrolment at `/me/2fa` (or right after the password when it is required and not
//! yet set up), the pending sign-in that waits for the code at `/login/2fa`, and who must
//! use it (a school's user managers when its plan says so, the bureau when the county
//! says so).

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use campus_tenant::Site;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::session::{hash, random_hex, COOKIE};
use crate::ui::{AccountPage, Field, FormSpec};
use crate::{account, totp, CurrentUser, IdentityState, Permission};

/// Cookie binding a pending sign-in to the browser that typed the password.
pub const PENDING_COOKIE: &str = "campus_pending_signin";
/// How long a pending sign-in waits for its code.
const PENDING_MINUTES: i32 = 5;
/// Wrong codes one pending sign-in may take before the password must be typed again.
const PENDING_ATTEMPTS: i32 = 5;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;

/// Seals a TOTP secret with the platform key when there is one (first byte 1), or keeps it
/// as is (first byte 0); either way it is never shown again after enrolment.
fn seal(st: &IdentityState, secret: &[u8]) -> Vec<u8> {
    match &st.sealing {
        Some(key) => {
            let mut out = vec![1u8];
            out.extend(key.seal(&totp::base32(secret)));
            out
        }
        None => {
            let mut out = vec![0u8];
            out.extend_from_slice(secret);
            out
        }
    }
}

fn open(st: &IdentityState, stored: &[u8]) -> Option<Vec<u8>> {
    match stored.split_first()? {
        (0, raw) => Some(raw.to_vec()),
        (1, sealed) => {
            let text = st.sealing.as_ref()?.open(sealed).ok()?;
            totp::from_base32(&text)
        }
        _ => None,
    }
}

/// Whether the account has a second factor on.
pub async fn enrolled(pool: &PgPool, account_id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select coalesce((select totp_enabled_at is not null from public.accounts where id = $1), false)",
    )
    .bind(account_id)
    .fetch_one(pool)
    .await
}

/// Makes a second factor required (or not) of the user managers of every school on `plan`;
/// false when there is no such plan. Sessions already open stay open until they expire.
pub async fn set_plan_requirement(pool: &PgPool, plan: &str, required: bool) -> sqlx::Result<bool> {
    let done = sqlx::query("update public.plans set require_second_factor = $2 where code = $1")
        .bind(plan)
        .bind(required)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether signing in to `site` needs a second factor from this account: at a school whose
/// plan requires it, for those who manage users there; on the county host, for the
/// bureau when the county requires it.
pub async fn required(
    st: &IdentityState,
    account_id: i64,
    county_role: Option<&str>,
    tenant_id: Option<i64>,
) -> sqlx::Result<bool> {
    match tenant_id {
        None => Ok(st.require_second_factor_bureau && county_role == Some("bureau")),
        Some(t) => {
            let plan: bool = sqlx::query_scalar(
                "select coalesce((select p.require_second_factor from public.tenants t
                    join public.plans p on p.code = t.plan where t.id = $1), false)",
            )
            .bind(t)
            .fetch_one(&st.pool)
            .await?;
            if !plan {
                return Ok(false);
            }
            Ok(st
                .members
                .standing(account_id, t)
                .await?
                .is_some_and(|s| s.permissions.contains(Permission::ManageUsers)))
        }
    }
}

/// [`required`] for the site at `host` (a school's or the county's address under the base
/// domain), as the login host sees it before handing out a code.
pub async fn required_at_host(
    st: &IdentityState,
    account_id: i64,
    host: &str,
) -> sqlx::Result<bool> {
    let label = host
        .strip_suffix(st.urls.base_domain.as_str())
        .and_then(|r| r.strip_suffix('.'))
        .unwrap_or_default();
    if label == "county" {
        let role = account::county_role(&st.pool, account_id).await?;
        return required(st, account_id, role.as_deref(), None).await;
    }
    let tenant: Option<i64> = sqlx::query_scalar("select id from public.tenants where slug = $1")
        .bind(label)
        .fetch_optional(&st.pool)
        .await?;
    match tenant {
        Some(t) => required(st, account_id, None, Some(t)).await,
        None => Ok(false),
    }
}

/// The secret being enrolled, made (and stored sealed) on first call.
async fn enrolment_secret(st: &IdentityState, account_id: i64) -> sqlx::Result<Vec<u8>> {
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("select totp_pending from public.accounts where id = $1")
            .bind(account_id)
            .fetch_optional(&st.pool)
            .await?
            .flatten();
    if let Some(secret) = stored.as_deref().and_then(|s| open(st, s)) {
        return Ok(secret);
    }
    let secret = totp::new_secret();
    sqlx::query("update public.accounts set totp_pending = $2 where id = $1")
        .bind(account_id)
        .bind(seal(st, &secret))
        .execute(&st.pool)
        .await?;
    Ok(secret)
}

fn recovery_hash(code: &str) -> Vec<u8> {
    let normal: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Sha256::digest(normal.as_bytes()).to_vec()
}

fn new_recovery_code() -> String {
    let raw = random_hex();
    format!("{}-{}", &raw[..5], &raw[5..10])
}

/// Turns the enrolment on if `code` is the current code of the secret being enrolled;
/// returns the recovery codes (shown once).
async fn confirm_enrolment(
    st: &IdentityState,
    account_id: i64,
    code: &str,
) -> sqlx::Result<Option<Vec<String>>> {
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("select totp_pending from public.accounts where id = $1")
            .bind(account_id)
            .fetch_optional(&st.pool)
            .await?
            .flatten();
    let Some(secret) = stored.as_deref().and_then(|s| open(st, s)) else {
        return Ok(None);
    };
    let Some(step) = totp::matching_step(&secret, code, totp::now_step()) else {
        return Ok(None);
    };
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let hashes: Vec<Vec<u8>> = codes.iter().map(|c| recovery_hash(c)).collect();
    let mut tx = st.pool.begin().await?;
    let done = sqlx::query(
        "update public.accounts set totp_secret = totp_pending, totp_pending = null,
                totp_enabled_at = now(), totp_last_step = $2, updated_at = now()
          where id = $1 and totp_pending = $3",
    )
    .bind(account_id)
    .bind(i64::try_from(step).unwrap_or(i64::MAX))
    .bind(stored)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    sqlx::query("delete from public.recovery_codes where account_id = $1")
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into public.recovery_codes (account_id, code_hash) select $1, unnest($2::bytea[])",
    )
    .bind(account_id)
    .bind(&hashes)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(codes))
}

/// Whether `typed` is a current TOTP code of the account (each time step accepted once) or
/// one of its unused recovery codes (then used up).
pub async fn check_code(st: &IdentityState, account_id: i64, typed: &str) -> sqlx::Result<bool> {
    let compact: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() != 6 {
        let used = sqlx::query(
            "update public.recovery_codes set used_at = now()
              where account_id = $1 and code_hash = $2 and used_at is null",
        )
        .bind(account_id)
        .bind(recovery_hash(&compact))
        .execute(&st.pool)
        .await?;
        return Ok(used.rows_affected() == 1);
    }
    let stored: Option<Vec<u8>> = sqlx::query_scalar(
        "select totp_secret from public.accounts where id = $1 and totp_enabled_at is not null",
    )
    .bind(account_id)
    .fetch_optional(&st.pool)
    .await?
    .flatten();
    let Some(secret) = stored.as_deref().and_then(|s| open(st, s)) else {
        return Ok(false);
    };
    let Some(step) = totp::matching_step(&secret, &compact, totp::now_step()) else {
        return Ok(false);
    };
    // A code (its time step) works once: a replay, even within its 30 seconds, is refused.
    let done = sqlx::query(
        "update public.accounts set totp_last_step = $2
          where id = $1 and (totp_last_step is null or totp_last_step < $2)",
    )
    .bind(account_id)
    .bind(i64::try_from(step).unwrap_or(i64::MAX))
    .execute(&st.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A password checked at `host`, waiting for the second factor.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Pending {
    pub account_id: i64,
    pub tenant_id: Option<i64>,
    pub login: String,
    pub must_enrol: bool,
    pub csrf_token: String,
    pub attempts: i32,
}

/// Starts a pending sign-in; returns the token for [`PENDING_COOKIE`].
pub async fn begin_pending(
    pool: &PgPool,
    account_id: i64,
    host: &str,
    tenant_id: Option<i64>,
    login: &str,
    must_enrol: bool,
) -> sqlx::Result<String> {
    let token = random_hex();
    sqlx::query(
        "insert into public.pending_signins (token_hash, account_id, host, tenant_id, login, must_enrol, csrf_token, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(mins => $8))",
    )
    .bind(hash(&token))
    .bind(account_id)
    .bind(host)
    .bind(tenant_id)
    .bind(login)
    .bind(must_enrol)
    .bind(random_hex())
    .bind(PENDING_MINUTES)
    .execute(pool)
    .await?;
    Ok(token)
}

async fn find_pending(
    pool: &PgPool,
    headers: &HeaderMap,
    host: &str,
) -> sqlx::Result<Option<(String, Pending)>> {
    let Some(token) = crate::cookie_value(headers, PENDING_COOKIE) else {
        return Ok(None);
    };
    let found: Option<Pending> = sqlx::query_as(
        "select account_id, tenant_id, login, must_enrol, csrf_token, attempts from public.pending_signins
          where token_hash = $1 and host = $2 and expires_at > now() and attempts < $3",
    )
    .bind(hash(&token))
    .bind(host)
    .bind(PENDING_ATTEMPTS)
    .fetch_optional(pool)
    .await?;
    Ok(found.map(|p| (token, p)))
}

async fn end_pending(pool: &PgPool, token: &str) -> sqlx::Result<()> {
    sqlx::query("delete from public.pending_signins where token_hash = $1 or expires_at < now()")
        .bind(hash(token))
        .execute(pool)
        .await?;
    Ok(())
}

fn unavailable(e: sqlx::Error) -> Response {
    tracing::error!(error = %e, "second factor step failed");
    crate::AuthRejection::Unavailable.into_response()
}

fn site_name(site: &Site) -> String {
    match site {
        Site::School(t) => t.name.clone(),
        _ => format!("{} · 教育局", campus_web::PLATFORM_NAME),
    }
}

fn code_form(
    lang: campus_web::Lang,
    action: &str,
    csrf: &str,
    submit: &str,
    extra: Option<(&'static str, &str)>,
) -> FormSpec {
    let mut hidden = vec![("csrf", csrf.to_owned())];
    if let Some((k, v)) = extra {
        hidden.push((k, v.to_owned()));
    }
    FormSpec {
        action: action.to_owned(),
        hidden,
        fields: vec![Field::new(
            lang.pick(
                "验证码（6 位数字）或恢复码",
                "Code (6 digits) or a recovery code",
            ),
            "code",
            "text",
            "one-time-code",
        )],
        submit: submit.to_owned(),
    }
}

/// The enrolment page: QR code of the `otpauth://` URI, the secret as text, and a form to
/// confirm with the first code.
async fn enrolment_page(
    st: &IdentityState,
    lang: campus_web::Lang,
    account_id: i64,
    label: &str,
    action: &str,
    csrf: &str,
    error: Option<String>,
) -> Result<AccountPage, Response> {
    let secret = enrolment_secret(st, account_id)
        .await
        .map_err(unavailable)?;
    let uri = totp::otpauth_uri(campus_web::PLATFORM_NAME, label, &secret);
    let mut page = AccountPage::new(
        lang,
        lang.pick("设置两步验证", "Set up two-step verification"),
    );
    page.error = error;
    page.notes.push(
        lang.pick(
            "用身份验证器应用（如 Google Authenticator、Microsoft Authenticator）扫描二维码，再输入应用显示的 6 位验证码。",
            "Scan the QR code with an authenticator app, then type the 6-digit code it shows.",
        )
        .to_owned(),
    );
    page.qr = Some(crate::ui::qr_svg(&uri));
    page.secret = Some(totp::base32(&secret));
    let mut form = code_form(
        lang,
        action,
        csrf,
        lang.pick("启用", "Turn on"),
        Some(("action", "enable")),
    );
    form.fields[0].label = lang
        .pick("应用显示的 6 位验证码", "The 6-digit code the app shows")
        .to_owned();
    page.forms.push(form);
    Ok(page)
}

fn recovery_page(lang: campus_web::Lang, codes: Vec<String>, next: &str) -> AccountPage {
    let mut page = AccountPage::new(
        lang,
        lang.pick("两步验证已启用", "Two-step verification is on"),
    );
    page.notes.push(
        lang.pick(
            "请抄下这些恢复码并妥善保管：手机丢失时，每个恢复码可代替验证码使用一次。它们只显示这一次。",
            "Write down these recovery codes: each replaces a code once if you lose your phone. They are shown only now.",
        )
        .to_owned(),
    );
    page.codes = codes;
    page.links
        .push((next.to_owned(), lang.pick("继续", "Continue").to_owned()));
    page
}

/// `GET /login/2fa`: the code (or enrolment) step of a sign-in.
pub(crate) async fn pending_form(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
    headers: HeaderMap,
) -> Response {
    let host = crate::pages::host_of(&headers);
    let (_, pending) = match find_pending(&st.pool, &headers, &host).await {
        Ok(Some(p)) => p,
        Ok(None) => return Redirect::to("/login?local=1").into_response(),
        Err(e) => return unavailable(e),
    };
    render_pending(&st, &site, lang, &pending, StatusCode::OK, None).await
}

async fn render_pending(
    st: &IdentityState,
    site: &Site,
    lang: campus_web::Lang,
    pending: &Pending,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let name = site_name(site);
    let page = if pending.must_enrol {
        let mut page = match enrolment_page(
            st,
            lang,
            pending.account_id,
            &pending.login,
            "/login/2fa",
            &pending.csrf_token,
            error,
        )
        .await
        {
            Ok(p) => p,
            Err(resp) => return resp,
        };
        page.notes.insert(
            0,
            lang.pick(
                "您的身份要求两步验证。设置完成后才能进入系统。",
                "Your role here requires two-step verification; set it up to continue.",
            )
            .to_owned(),
        );
        page
    } else {
        let mut page = AccountPage::new(lang, lang.pick("两步验证", "Two-step verification"));
        page.error = error;
        page.notes.push(
            lang.pick(
                "请输入身份验证器应用显示的 6 位验证码；手机不在身边时可用一个恢复码。",
                "Type the 6-digit code from your authenticator app, or a recovery code.",
            )
            .to_owned(),
        );
        page.forms.push(code_form(
            lang,
            "/login/2fa",
            &pending.csrf_token,
            lang.pick("验证", "Verify"),
            None,
        ));
        page
    };
    page.into_response(status, &name, campus_web::Who::Nobody)
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    action: String,
}

/// `POST /login/2fa`: checks the code (or confirms the enrolment) and opens the session.
pub(crate) async fn pending_submit(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let host = crate::pages::host_of(&headers);
    let (token, pending) = match find_pending(&st.pool, &headers, &host).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return crate::sso::message(
                StatusCode::FORBIDDEN,
                "验证已过期或尝试次数过多，请重新输入密码登录。",
                "This sign-in expired or took too many wrong codes; sign in again.",
            )
        }
        Err(e) => return unavailable(e),
    };
    if form.csrf != pending.csrf_token {
        return (StatusCode::FORBIDDEN, "missing or wrong CSRF token").into_response();
    }
    let locked: Option<chrono::DateTime<chrono::Utc>> = match sqlx::query_scalar(
        "select locked_until from public.accounts where id = $1 and status = 'active'",
    )
    .bind(pending.account_id)
    .fetch_optional(&st.pool)
    .await
    {
        Ok(Some(l)) => l,
        Ok(None) => return Redirect::to("/login?local=1").into_response(),
        Err(e) => return unavailable(e),
    };
    if locked.is_some_and(|t| t > chrono::Utc::now()) {
        return render_pending(
            &st,
            &site,
            lang,
            &pending,
            StatusCode::TOO_MANY_REQUESTS,
            Some(
                "尝试次数过多，账号已暂时锁定，请稍后再试。(Too many attempts; try again later.)"
                    .into(),
            ),
        )
        .await;
    }
    let outcome = if pending.must_enrol {
        confirm_enrolment(&st, pending.account_id, &form.code)
            .await
            .map(|c| c.map(Some))
    } else {
        check_code(&st, pending.account_id, &form.code)
            .await
            .map(|ok| ok.then_some(None))
    };
    let recovery = match outcome {
        Ok(Some(recovery)) => recovery,
        Ok(None) => {
            let _ = sqlx::query(
                "update public.pending_signins set attempts = attempts + 1 where token_hash = $1",
            )
            .bind(hash(&token))
            .execute(&st.pool)
            .await;
            if let Err(e) = account::record_failure(&st.pool, pending.account_id).await {
                return unavailable(e);
            }
            account::audit_attempt(
                &st.pool,
                pending.account_id,
                pending.tenant_id,
                &pending.login,
                "wrong_second_factor",
                &host,
            )
            .await;
            let pending = Pending {
                attempts: pending.attempts + 1,
                ..pending
            };
            return render_pending(
                &st,
                &site,
                lang,
                &pending,
                StatusCode::UNAUTHORIZED,
                Some("验证码不正确或已用过。(Wrong or already used code.)".into()),
            )
            .await;
        }
        Err(e) => return unavailable(e),
    };
    if let Err(e) = end_pending(&st.pool, &token).await {
        return unavailable(e);
    }
    let session = match crate::pages::complete_sign_in(
        &st,
        pending.account_id,
        &host,
        pending.tenant_id,
        &pending.login,
        true,
    )
    .await
    {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let next = crate::pages::after_sign_in(&st, &host);
    let mut resp = match recovery {
        Some(codes) => recovery_page(lang, codes, &next).into_response(
            StatusCode::OK,
            &site_name(&site),
            campus_web::Who::Nobody,
        ),
        None => Redirect::to(&next).into_response(),
    };
    crate::cookies::set(&mut resp, COOKIE, session, "/", st.secure_cookies);
    crate::cookies::clear(&mut resp, PENDING_COOKIE, "/login");
    resp
}

/// `GET /me/2fa`: turn the second factor on (QR code, confirm with a code) or off.
pub(crate) async fn me_form(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
    user: CurrentUser,
) -> Response {
    me_page(&st, &site, lang, &user, StatusCode::OK, None).await
}

async fn me_page(
    st: &IdentityState,
    site: &Site,
    lang: campus_web::Lang,
    user: &CurrentUser,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let on = match enrolled(&st.pool, user.account_id).await {
        Ok(on) => on,
        Err(e) => return unavailable(e),
    };
    let page = if on {
        let left: i64 = match sqlx::query_scalar(
            "select count(*) from public.recovery_codes where account_id = $1 and used_at is null",
        )
        .bind(user.account_id)
        .fetch_one(&st.pool)
        .await
        {
            Ok(n) => n,
            Err(e) => return unavailable(e),
        };
        let mut page = AccountPage::new(lang, lang.pick("两步验证", "Two-step verification"));
        page.error = error;
        page.notes.push(format!(
            "{} {left}",
            lang.pick(
                "两步验证已启用。剩余恢复码：",
                "Two-step verification is on. Recovery codes left:"
            )
        ));
        page.forms.push(code_form(
            lang,
            "/me/2fa",
            &user.csrf_token,
            lang.pick("关闭两步验证", "Turn off"),
            Some(("action", "disable")),
        ));
        page
    } else {
        match enrolment_page(
            st,
            lang,
            user.account_id,
            &user.display_name,
            "/me/2fa",
            &user.csrf_token,
            error,
        )
        .await
        {
            Ok(p) => p,
            Err(resp) => return resp,
        }
    };
    page.into_response(
        status,
        &site_name(site),
        campus_web::Who::User(user.badge()),
    )
}

/// `POST /me/2fa` (`action` = `enable` with the first code, or `disable` with a current
/// code or a recovery code).
pub(crate) async fn me_submit(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
    user: CurrentUser,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    if form.csrf != user.csrf_token {
        return (StatusCode::FORBIDDEN, "missing or wrong CSRF token").into_response();
    }
    let host = crate::pages::host_of(&headers);
    let wrong = |st: &IdentityState| {
        let st = st.clone();
        let (account_id, tenant_id) = (user.account_id, user.tenant_id);
        let host = host.clone();
        async move {
            if let Err(e) = account::record_failure(&st.pool, account_id).await {
                tracing::error!(error = %e, "counting a wrong code failed");
            }
            account::audit_attempt(
                &st.pool,
                account_id,
                tenant_id,
                "",
                "wrong_second_factor",
                &host,
            )
            .await;
        }
    };
    match form.action.as_str() {
        "enable" => match confirm_enrolment(&st, user.account_id, &form.code).await {
            Ok(Some(codes)) => {
                account::audit(
                    &st.pool,
                    Some(user.account_id),
                    user.tenant_id,
                    "",
                    "second_factor_on",
                    &host,
                )
                .await;
                recovery_page(lang, codes, "/me").into_response(
                    StatusCode::OK,
                    &site_name(&site),
                    campus_web::Who::User(user.badge()),
                )
            }
            Ok(None) => {
                wrong(&st).await;
                me_page(
                    &st,
                    &site,
                    lang,
                    &user,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some("验证码不正确，请再试一次。(Wrong code; try again.)".into()),
                )
                .await
            }
            Err(e) => unavailable(e),
        },
        "disable" => {
            let county_role = account::county_role(&st.pool, user.account_id).await;
            let must = match county_role {
                Ok(role) => required(&st, user.account_id, role.as_deref(), user.tenant_id).await,
                Err(e) => Err(e),
            };
            match must {
                Ok(true) => {
                    return me_page(
                        &st,
                        &site,
                        lang,
                        &user,
                        StatusCode::FORBIDDEN,
                        Some("您的身份要求两步验证，不能关闭。(Your role here requires it; it cannot be turned off.)".into()),
                    )
                    .await
                }
                Ok(false) => {}
                Err(e) => return unavailable(e),
            }
            match check_code(&st, user.account_id, &form.code).await {
                Ok(true) => {}
                Ok(false) => {
                    wrong(&st).await;
                    return me_page(
                        &st,
                        &site,
                        lang,
                        &user,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        Some("验证码不正确或已用过。(Wrong or already used code.)".into()),
                    )
                    .await;
                }
                Err(e) => return unavailable(e),
            }
            let off = async {
                let mut tx = st.pool.begin().await?;
                sqlx::query(
                    "update public.accounts set totp_secret = null, totp_enabled_at = null, totp_pending = null,
                            totp_last_step = null, updated_at = now() where id = $1",
                )
                .bind(user.account_id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("delete from public.recovery_codes where account_id = $1")
                    .bind(user.account_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            };
            if let Err(e) = off.await {
                return unavailable(e);
            }
            account::audit(
                &st.pool,
                Some(user.account_id),
                user.tenant_id,
                "",
                "second_factor_off",
                &host,
            )
            .await;
            Redirect::to("/me/2fa").into_response()
        }
        _ => {
            me_page(
                &st,
                &site,
                lang,
                &user,
                StatusCode::BAD_REQUEST,
                Some("请求无效。(Unknown action.)".into()),
            )
            .await
        }
    }
}
