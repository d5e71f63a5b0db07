//! Passwords a person manages: changing it while signed in (`/me/password`, other sessions
//! end), an email proven by a mailed link (`/me/email`), and choosing a new password
//! through a single-use link mailed to that email (`/password/reset/email`; every session
//! ends and the lockout is cleared). Links carry their token in the query string; only its
//! SHA-256 is stored.

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use campus_tenant::Site;
use serde::Deserialize;
use sqlx::PgPool;

use crate::login::Login;
use crate::session::{hash, random_hex, COOKIE};
use crate::ui::{AccountPage, Field, FormSpec};
use crate::{account, password, CurrentUser, IdentityState};

/// How long a reset link works.
const RESET_MINUTES: i32 = 30;
/// How long an email confirmation link works.
const CONFIRM_HOURS: i32 = 24;

fn site_name(site: &Site) -> String {
    match site {
        Site::School(t) => t.name.clone(),
        _ => format!("{} · 教育局", campus_web::PLATFORM_NAME),
    }
}

fn unavailable(e: sqlx::Error) -> Response {
    tracing::error!(error = %e, "password or email step failed");
    crate::AuthRejection::Unavailable.into_response()
}

fn host_of(headers: &HeaderMap) -> String {
    crate::pages::host_of(headers)
}

/// A new password typed twice, checked against the policy.
fn check_new(new: &str, again: &str) -> Result<(), String> {
    if new != again {
        return Err("两次输入的新密码不一致。(The two new passwords differ.)".into());
    }
    password::check_policy(new).map_err(|e| e.to_string())
}

/// Stores a new password and clears the lockout, in the caller's transaction.
async fn store_password(
    conn: &mut sqlx::PgConnection,
    account_id: i64,
    hash: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "update public.accounts set password_hash = $2, failed_logins = 0, last_failed_at = null,
                locked_until = null, updated_at = now() where id = $1",
    )
    .bind(account_id)
    .bind(hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// A single-use token for `account_id`; returns the token for the link.
async fn new_token(
    pool: &PgPool,
    account_id: i64,
    purpose: &str,
    email: &str,
    host: &str,
    minutes: i32,
) -> sqlx::Result<String> {
    let token = random_hex();
    sqlx::query(
        "insert into public.account_tokens (token_hash, account_id, purpose, email, host, expires_at)
         values ($1, $2, $3, $4, $5, now() + make_interval(mins => $6))",
    )
    .bind(hash(&token))
    .bind(account_id)
    .bind(purpose)
    .bind(email)
    .bind(host)
    .bind(minutes)
    .execute(pool)
    .await?;
    Ok(token)
}

/// Mails `text` to `to` in the background (the answer to the person must not depend on
/// whether anything was sent).
fn mail(st: &IdentityState, to: String, subject: String, text: String) {
    let Some(email) = st.mail.clone() else {
        tracing::warn!("no email channel configured (smtp_url); an account link was not sent");
        return;
    };
    tokio::spawn(async move {
        let out = campus_notify::channels::Outgoing {
            idempotency_key: random_hex(),
            channel: campus_notify::Channel::Email,
            address: to,
            school_slug: String::new(),
            category: "account",
            subject,
            text,
        };
        match email.send(&out).await {
            campus_notify::channels::Outcome::Sent => {}
            other => tracing::warn!(outcome = ?other, "an account link could not be mailed"),
        }
    });
}

fn password_fields(lang: campus_web::Lang) -> Vec<Field> {
    vec![
        Field::new(
            lang.pick(
                "新密码（至少 8 位，含字母和数字）",
                "New password (8+ characters, letters and digits)",
            ),
            "new_password",
            "password",
            "new-password",
        ),
        Field::new(
            lang.pick("再次输入新密码", "New password again"),
            "new_password2",
            "password",
            "new-password",
        ),
    ]
}

// ---- change password -------------------------------------------------------------------

fn change_page(lang: campus_web::Lang, csrf: &str, error: Option<String>) -> AccountPage {
    let mut page = AccountPage::new(lang, lang.pick("修改密码", "Change password"));
    page.error = error;
    let mut fields = vec![Field::new(
        lang.pick("当前密码", "Current password"),
        "current_password",
        "password",
        "current-password",
    )];
    fields.extend(password_fields(lang));
    page.forms.push(FormSpec {
        action: "/me/password".into(),
        hidden: vec![("csrf", csrf.to_owned())],
        fields,
        submit: lang.pick("修改密码", "Change password").to_owned(),
    });
    page.notes.push(
        lang.pick(
            "修改后，您在其他设备上的登录会全部退出，本设备保持登录。",
            "Other devices are signed out; this one stays signed in.",
        )
        .to_owned(),
    );
    page.links.push((
        "/password/reset/email".into(),
        lang.pick("忘记当前密码？", "Forgot your current password?")
            .into(),
    ));
    page
}

/// `GET /me/password`.
pub(crate) async fn change_form(
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
    user: CurrentUser,
) -> Response {
    change_page(lang, &user.csrf_token, None).into_response(
        StatusCode::OK,
        &site_name(&site),
        campus_web::Who::User(user.badge()),
    )
}

#[derive(Deserialize)]
pub(crate) struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password2: String,
}

/// `POST /me/password`: the current password (a wrong one counts toward the lockout) and
/// the new one twice; every other session of the account ends.
pub(crate) async fn change_submit(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
    user: CurrentUser,
    headers: HeaderMap,
    Form(form): Form<ChangeForm>,
) -> Response {
    if form.csrf != user.csrf_token {
        return (StatusCode::FORBIDDEN, "missing or wrong CSRF token").into_response();
    }
    let host = host_of(&headers);
    let answer = |status: StatusCode, error: &str| {
        change_page(lang, &user.csrf_token, Some(error.to_owned())).into_response(
            status,
            &site_name(&site),
            campus_web::Who::User(user.badge()),
        )
    };
    let row: Option<(String, Option<chrono::DateTime<chrono::Utc>>)> = match sqlx::query_as(
        "select password_hash, locked_until from public.accounts where id = $1",
    )
    .bind(user.account_id)
    .fetch_optional(&st.pool)
    .await
    {
        Ok(r) => r,
        Err(e) => return unavailable(e),
    };
    let Some((stored, locked_until)) = row else {
        return crate::AuthRejection::NotSignedIn.into_response();
    };
    if locked_until.is_some_and(|t| t > chrono::Utc::now()) {
        return answer(
            StatusCode::TOO_MANY_REQUESTS,
            "尝试次数过多，账号已暂时锁定，请稍后再试。(Too many attempts; try again later.)",
        );
    }
    if !st
        .hasher
        .verify(&form.current_password, Some(&stored))
        .await
    {
        if let Err(e) = account::record_failure(&st.pool, user.account_id).await {
            return unavailable(e);
        }
        account::audit(
            &st.pool,
            Some(user.account_id),
            user.tenant_id,
            "",
            "wrong_password",
            &host,
        )
        .await;
        return answer(
            StatusCode::UNAUTHORIZED,
            "当前密码不正确。(The current password is wrong.)",
        );
    }
    if let Err(why) = check_new(&form.new_password, &form.new_password2) {
        return answer(StatusCode::UNPROCESSABLE_ENTITY, &why);
    }
    let Ok(new_hash) = st.hasher.hash(&form.new_password).await else {
        return crate::AuthRejection::Unavailable.into_response();
    };
    let saved = async {
        let mut tx = st.pool.begin().await?;
        store_password(&mut tx, user.account_id, &new_hash).await?;
        tx.commit().await
    };
    if let Err(e) = saved.await {
        return unavailable(e);
    }
    let keep = crate::cookie_value(&headers, COOKIE).unwrap_or_default();
    if let Err(e) = crate::session::end_all_except(&st.pool, user.account_id, &keep).await {
        return unavailable(e);
    }
    account::audit(
        &st.pool,
        Some(user.account_id),
        user.tenant_id,
        "",
        "password_changed",
        &host,
    )
    .await;
    let mut page = AccountPage::new(lang, lang.pick("密码已修改", "Password changed"));
    page.notes.push(
        lang.pick(
            "新密码已生效，其他设备上的登录已全部退出。",
            "The new password works now; other devices were signed out.",
        )
        .to_owned(),
    );
    page.links
        .push(("/me".into(), lang.pick("返回", "Back").into()));
    page.into_response(
        StatusCode::OK,
        &site_name(&site),
        campus_web::Who::User(user.badge()),
    )
}

// ---- email -------------------------------------------------------------------------------

/// The account's email and whether it is proven.
pub(crate) async fn email_of(
    pool: &PgPool,
    account_id: i64,
) -> sqlx::Result<Option<(String, bool)>> {
    let row: Option<(Option<String>, bool)> = sqlx::query_as(
        "select email, email_confirmed_at is not null from public.accounts where id = $1",
    )
    .bind(account_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(e, ok)| e.map(|e| (e, ok))))
}

fn plausible_email(raw: &str) -> Option<String> {
    let e = raw.trim().to_ascii_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = e.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';' | '"'))
        && !domain.contains('@');
    ok.then_some(e)
}

#[derive(Deserialize)]
pub(crate) struct EmailForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

/// `POST /me/email`: records the email (unproven) and mails a confirmation link to it.
pub(crate) async fn email_submit(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
    user: CurrentUser,
    headers: HeaderMap,
    Form(form): Form<EmailForm>,
) -> Response {
    if form.csrf != user.csrf_token {
        return (StatusCode::FORBIDDEN, "missing or wrong CSRF token").into_response();
    }
    let name = site_name(&site);
    let who = campus_web::Who::User(user.badge());
    let Some(email) = plausible_email(&form.email) else {
        let mut page = AccountPage::new(lang, lang.pick("邮箱地址无效", "Invalid email"));
        page.error = Some("请输入有效的邮箱地址，例如 name@example.com。(Enter an address like name@example.com.)".into());
        page.links
            .push(("/me".into(), lang.pick("返回", "Back").into()));
        return page.into_response(StatusCode::UNPROCESSABLE_ENTITY, &name, who);
    };
    if st.mail.is_none() {
        let mut page = AccountPage::new(lang, lang.pick("暂不能发送邮件", "Mail is not available"));
        page.error =
            Some("平台未配置邮件发送，暂时无法验证邮箱。(This platform sends no mail yet.)".into());
        page.links
            .push(("/me".into(), lang.pick("返回", "Back").into()));
        return page.into_response(StatusCode::SERVICE_UNAVAILABLE, &name, who);
    }
    if !st.login_limits.allow_mail_to(user.account_id) {
        let mut page = AccountPage::new(lang, lang.pick("请稍后再试", "Try again later"));
        page.error = Some(
            "发送过于频繁，请一小时后再试。(Too many links sent; try again in an hour.)".into(),
        );
        page.links
            .push(("/me".into(), lang.pick("返回", "Back").into()));
        return page.into_response(StatusCode::TOO_MANY_REQUESTS, &name, who);
    }
    let host = host_of(&headers);
    let saved = sqlx::query(
        "update public.accounts set email = $2, email_confirmed_at = null, updated_at = now() where id = $1",
    )
    .bind(user.account_id)
    .bind(&email)
    .execute(&st.pool)
    .await;
    if let Err(e) = saved {
        return unavailable(e);
    }
    let token = match new_token(
        &st.pool,
        user.account_id,
        "confirm_email",
        &email,
        &host,
        CONFIRM_HOURS * 60,
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return unavailable(e),
    };
    let link = format!("{}/me/email/confirm?token={token}", st.urls.of_host(&host));
    mail(
        &st,
        email.clone(),
        "请确认您的邮箱 / Confirm your email".into(),
        format!(
            "{}：\n\n请打开下面的链接确认此邮箱，之后可用它找回密码（{CONFIRM_HOURS} 小时内有效）：\n{link}\n\nOpen the link above to confirm this address for password resets.\n",
            user.display_name
        ),
    );
    let mut page = AccountPage::new(lang, lang.pick("确认邮件已发送", "Confirmation sent"));
    page.notes.push(format!(
        "{} {email}",
        lang.pick(
            "请打开发送到以下邮箱的链接完成验证：",
            "Open the link we mailed to:"
        )
    ));
    page.links
        .push(("/me".into(), lang.pick("返回", "Back").into()));
    page.into_response(StatusCode::OK, &name, who)
}

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn valid_token_text(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `GET /me/email/confirm?token=`: proves the email (works once, also when not signed in).
pub(crate) async fn email_confirm(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
    Query(q): Query<TokenQuery>,
) -> Response {
    let name = site_name(&site);
    let confirmed: Option<i64> = if valid_token_text(&q.token) {
        let done = async {
            let mut tx = st.pool.begin().await?;
            let used: Option<(i64, String)> = sqlx::query_as(
                "update public.account_tokens set used_at = now()
                  where token_hash = $1 and purpose = 'confirm_email' and used_at is null and expires_at > now()
                  returning account_id, email",
            )
            .bind(hash(&q.token))
            .fetch_optional(&mut *tx)
            .await?;
            let mut ok = None;
            if let Some((account_id, email)) = used {
                let n = sqlx::query(
                    "update public.accounts set email_confirmed_at = now() where id = $1 and email = $2",
                )
                .bind(account_id)
                .bind(&email)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 1 {
                    ok = Some(account_id);
                }
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(ok)
        };
        match done.await {
            Ok(ok) => ok,
            Err(e) => return unavailable(e),
        }
    } else {
        None
    };
    match confirmed {
        Some(_) => {
            let mut page = AccountPage::new(lang, lang.pick("邮箱已验证", "Email confirmed"));
            page.notes.push(
                lang.pick(
                    "忘记密码时，可通过此邮箱收取重设链接。",
                    "Password reset links can now be mailed to this address.",
                )
                .to_owned(),
            );
            page.links
                .push(("/me".into(), lang.pick("返回", "Back").into()));
            page.into_response(StatusCode::OK, &name, campus_web::Who::Nobody)
        }
        None => campus_web::message_page(
            StatusCode::BAD_REQUEST,
            &name,
            (
                "链接无效",
                "此确认链接无效、已用过或已过期，请在“我的身份”页重新发送。",
            ),
            (
                "Invalid link",
                "This link is invalid, used or expired; send a new one from your profile page.",
            ),
        ),
    }
}

// ---- reset by email link -----------------------------------------------------------------

fn request_page(lang: campus_web::Lang, error: Option<String>) -> AccountPage {
    let mut page = AccountPage::new(
        lang,
        lang.pick("通过邮箱重设密码", "Reset password by email"),
    );
    page.error = error;
    page.notes.push(
        lang.pick(
            "输入手机号、用户名或已验证的邮箱。如果账号有已验证的邮箱，我们会把重设链接发到该邮箱（30 分钟内有效，只能用一次）。",
            "Type your mobile number, username or confirmed email; if the account has a confirmed email, a link (valid 30 minutes, once) is mailed to it.",
        )
        .to_owned(),
    );
    page.forms.push(FormSpec {
        action: "/password/reset/email".into(),
        hidden: vec![],
        fields: vec![Field::new(
            lang.pick("手机号、用户名或邮箱", "Mobile number, username or email"),
            "login",
            "text",
            "username",
        )],
        submit: lang.pick("发送重设链接", "Send the link").to_owned(),
    });
    page.links.push((
        "/password/reset".into(),
        lang.pick("用短信验证码重设", "Reset with an SMS code instead")
            .into(),
    ));
    page
}

fn new_password_page(lang: campus_web::Lang, token: &str, error: Option<String>) -> AccountPage {
    let mut page = AccountPage::new(lang, lang.pick("设置新密码", "Choose a new password"));
    page.error = error;
    page.forms.push(FormSpec {
        action: "/password/reset/email".into(),
        hidden: vec![("token", token.to_owned())],
        fields: password_fields(lang),
        submit: lang.pick("保存新密码", "Save the new password").to_owned(),
    });
    page
}

fn bad_link(name: &str) -> Response {
    campus_web::message_page(
        StatusCode::BAD_REQUEST,
        name,
        (
            "链接无效",
            "此重设链接无效、已用过或已过期（30 分钟内有效）。请重新申请：/password/reset/email",
        ),
        (
            "Invalid link",
            "This reset link is invalid, used or expired (links last 30 minutes); ask for a new one at /password/reset/email.",
        ),
    )
}

async fn reset_token_live(pool: &PgPool, token: &str, host: &str) -> sqlx::Result<bool> {
    if !valid_token_text(token) {
        return Ok(false);
    }
    sqlx::query_scalar(
        "select exists (select 1 from public.account_tokens where token_hash = $1 and purpose = 'reset_password'
                           and host = $2 and used_at is null and expires_at > now())",
    )
    .bind(hash(token))
    .bind(host)
    .fetch_one(pool)
    .await
}

/// `GET /password/reset/email[?token=]`: the request form, or with a live link's token the
/// form for the new password.
pub(crate) async fn reset_form(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    let name = site_name(&site);
    if q.token.is_empty() {
        return request_page(lang, None).into_response(
            StatusCode::OK,
            &name,
            campus_web::Who::Nobody,
        );
    }
    match reset_token_live(&st.pool, &q.token, &host_of(&headers)).await {
        Ok(true) => new_password_page(lang, &q.token, None).into_response(
            StatusCode::OK,
            &name,
            campus_web::Who::Nobody,
        ),
        Ok(false) => bad_link(&name),
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct ResetForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password2: String,
}

/// `POST /password/reset/email`: with `login`, mails a link if an account that may sign in
/// here has a confirmed email (the answer is the same either way); with `token`, sets the
/// new password, ends every session of the account and clears its lockout.
pub(crate) async fn reset_submit(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
    crate::limits::ClientIp(ip): crate::limits::ClientIp,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> Response {
    let name = site_name(&site);
    let host = host_of(&headers);
    if !form.token.is_empty() {
        return set_new_password(&st, &site, lang, &host, &form).await;
    }
    if let Err(wait) = st.login_limits.check_mail_ip(ip) {
        let secs = wait.as_secs().max(1);
        let mut resp = request_page(
            lang,
            Some(format!(
                "申请过于频繁，请 {secs} 秒后再试。(Too many requests; try again in {secs} s.)"
            )),
        )
        .into_response(
            StatusCode::TOO_MANY_REQUESTS,
            &name,
            campus_web::Who::Nobody,
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        return resp;
    }
    let typed = form.login.trim();
    if typed.is_empty() {
        return request_page(
            lang,
            Some("请输入手机号、用户名或邮箱。(Enter a mobile number, username or email.)".into()),
        )
        .into_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &name,
            campus_web::Who::Nobody,
        );
    }
    let found: sqlx::Result<Vec<(i64, String, String)>> = if typed.contains('@') {
        sqlx::query_as(
            "select id, email, display_name from public.accounts
              where lower(email) = lower($1) and email_confirmed_at is not null and status = 'active'
              order by id limit 3",
        )
        .bind(typed)
        .fetch_all(&st.pool)
        .await
    } else {
        match Login::parse(typed) {
            Ok(login) => {
                let (column, value) = match &login {
                    Login::Phone(p) => ("phone", p.clone()),
                    Login::Username(u) => ("username", u.clone()),
                };
                sqlx::query_as(&format!(
                    "select id, email, display_name from public.accounts
                      where {column} = $1 and email is not null and email_confirmed_at is not null and status = 'active'"
                ))
                .bind(value)
                .fetch_all(&st.pool)
                .await
            }
            Err(e) => {
                return request_page(lang, Some(e.to_string())).into_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &name,
                    campus_web::Who::Nobody,
                )
            }
        }
    };
    let found = match found {
        Ok(f) => f,
        Err(e) => return unavailable(e),
    };
    let tenant_id = match &site {
        Site::School(t) => Some(t.id.0),
        _ => None,
    };
    for (account_id, email, display_name) in found {
        // Only for people who may sign in here: a school's page never mails another
        // school's people.
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
            Ok(false) => continue,
            Err(e) => return unavailable(e),
        }
        if !st.login_limits.allow_mail_to(account_id) {
            continue;
        }
        let token = match new_token(
            &st.pool,
            account_id,
            "reset_password",
            &email,
            &host,
            RESET_MINUTES,
        )
        .await
        {
            Ok(t) => t,
            Err(e) => return unavailable(e),
        };
        account::audit(
            &st.pool,
            Some(account_id),
            tenant_id,
            typed,
            "reset_link_sent",
            &host,
        )
        .await;
        let link = format!(
            "{}/password/reset/email?token={token}",
            st.urls.of_host(&host)
        );
        mail(
            &st,
            email,
            "重设密码 / Reset your password".into(),
            format!(
                "{display_name}：\n\n请在 {RESET_MINUTES} 分钟内打开下面的链接设置新密码（只能使用一次）：\n{link}\n\n如果不是您本人申请，请忽略此邮件。\n\nOpen the link within {RESET_MINUTES} minutes to choose a new password. If you did not ask, ignore this mail.\n"
            ),
        );
    }
    let mut page = AccountPage::new(lang, lang.pick("请查收邮件", "Check your mail"));
    page.notes.push(
        lang.pick(
            "如果该账号有已验证的邮箱，重设链接已发送到该邮箱，30 分钟内有效。",
            "If the account has a confirmed email, a reset link valid for 30 minutes was mailed to it.",
        )
        .to_owned(),
    );
    page.links.push((
        "/login".into(),
        lang.pick("返回登录", "Back to sign-in").into(),
    ));
    page.into_response(StatusCode::OK, &name, campus_web::Who::Nobody)
}

async fn set_new_password(
    st: &IdentityState,
    site: &Site,
    lang: campus_web::Lang,
    host: &str,
    form: &ResetForm,
) -> Response {
    let name = site_name(site);
    match reset_token_live(&st.pool, &form.token, host).await {
        Ok(true) => {}
        Ok(false) => return bad_link(&name),
        Err(e) => return unavailable(e),
    }
    if let Err(why) = check_new(&form.new_password, &form.new_password2) {
        return new_password_page(lang, &form.token, Some(why)).into_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &name,
            campus_web::Who::Nobody,
        );
    }
    let Ok(new_hash) = st.hasher.hash(&form.new_password).await else {
        return crate::AuthRejection::Unavailable.into_response();
    };
    let saved = async {
        let mut tx = st.pool.begin().await?;
        let account_id: Option<i64> = sqlx::query_scalar(
            "update public.account_tokens set used_at = now()
              where token_hash = $1 and purpose = 'reset_password' and host = $2
                and used_at is null and expires_at > now()
              returning account_id",
        )
        .bind(hash(&form.token))
        .bind(host)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = account_id {
            store_password(&mut tx, id, &new_hash).await?;
            // Any other link still out for this account stops working too.
            sqlx::query(
                "update public.account_tokens set used_at = now()
                  where account_id = $1 and purpose = 'reset_password' and used_at is null",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(account_id)
    };
    let account_id = match saved.await {
        Ok(Some(id)) => id,
        Ok(None) => return bad_link(&name),
        Err(e) => return unavailable(e),
    };
    if let Err(e) = crate::session::end_all(&st.pool, account_id).await {
        return unavailable(e);
    }
    let tenant_id = match site {
        Site::School(t) => Some(t.id.0),
        _ => None,
    };
    account::audit(
        &st.pool,
        Some(account_id),
        tenant_id,
        "",
        "password_reset_email",
        host,
    )
    .await;
    let mut page = AccountPage::new(lang, lang.pick("密码已重设", "Password reset"));
    page.notes.push(
        lang.pick(
            "新密码已生效，所有设备上的登录均已退出。请用新密码登录。",
            "The new password works now; every device was signed out. Sign in with it.",
        )
        .to_owned(),
    );
    page.links
        .push(("/login".into(), lang.pick("登录", "Sign in").into()));
    page.into_response(StatusCode::OK, &name, campus_web::Who::Nobody)
}
