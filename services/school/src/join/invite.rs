//! Accepting an invitation created by the county (e.g. the first administrator's, at
//! onboarding): the invited person chooses a name, a login and a password and receives the
//! invited role here. A mobile number as login must be proven with an SMS code first;
//! if it already has an account, that account is linked (no password is set or asked).
//! A username that has an account needs that account's password. Each invitation works
//! once, only before it expires, and only on its own school's host.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use campus_identity::account::{self, NewAccount};
use campus_identity::login::Login;
use campus_identity::otp::{self, Purpose};
use campus_identity::permission;
use campus_tenant::lifecycle::{self, PendingInvitation};
use campus_tenant::{CurrentSchool, Tenant};
use serde::Deserialize;

use super::page;
use crate::SchoolState;

const CSRF_COOKIE: &str = "campus_invite_csrf";

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
    /// `send`: text a code to the mobile number typed as login.
    #[serde(default)]
    action: String,
    #[serde(default)]
    code: String,
    /// The proof of the phone from a correct code, kept while the form is corrected.
    #[serde(default)]
    proof: String,
}

#[derive(Template)]
#[template(path = "join/invite.html")]
struct InvitePage<'a> {
    lang: campus_web::Lang,
    school_name: &'a str,
    role_name: String,
    token: &'a str,
    csrf: &'a str,
    form: &'a InviteForm,
    errors: &'a [String],
    done: bool,
    notice: Option<String>,
}

/// Why the invitation cannot be used here.
enum Unusable {
    NotFound,
    Used,
    Expired,
    Unavailable,
}

impl Unusable {
    fn page(&self, school: &Tenant) -> Response {
        match self {
            Self::NotFound => campus_web::not_found_page(&school.name),
            Self::Used => campus_web::message_page(
                StatusCode::GONE,
                &school.name,
                (
                    "邀请链接已使用",
                    "该邀请链接只能使用一次，已经有人用它完成了设置。请直接登录，或联系县电教馆重新发送邀请。",
                ),
                (
                    "Invitation already used",
                    "This invitation works once and has been used. Sign in, or ask the county IT centre for a new one.",
                ),
            ),
            Self::Expired => campus_web::message_page(
                StatusCode::GONE,
                &school.name,
                (
                    "邀请链接已过期",
                    "该邀请链接已超过有效期。请联系县电教馆重新发送邀请。",
                ),
                (
                    "Invitation expired",
                    "This invitation has expired. Ask the county IT centre for a new one.",
                ),
            ),
            Self::Unavailable => campus_web::message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                &school.name,
                ("服务暂时不可用", "请稍后刷新重试。"),
                ("Temporarily unavailable", "Please try again in a moment."),
            ),
        }
    }
}

/// The invitation with this token, if it belongs to this school and can still be used.
async fn usable(
    state: &SchoolState,
    school: &Tenant,
    token: &str,
) -> Result<PendingInvitation, Unusable> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Unusable::NotFound);
    }
    let inv = lifecycle::find_invitation(&state.identity.pool, token)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "invitation lookup failed");
            Unusable::Unavailable
        })?
        .filter(|i| i.tenant_id == school.id.0)
        .ok_or(Unusable::NotFound)?;
    if inv.accepted_at.is_some() {
        Err(Unusable::Used)
    } else if !inv.usable() {
        Err(Unusable::Expired)
    } else {
        Ok(inv)
    }
}

struct Ctx<'a> {
    state: &'a SchoolState,
    school: &'a Tenant,
    lang: campus_web::Lang,
    token: &'a str,
    role: &'a str,
}

impl Ctx<'_> {
    fn render(
        &self,
        form: &InviteForm,
        errors: &[String],
        status: StatusCode,
        done: bool,
    ) -> Response {
        self.render_with(form, errors, status, done, None)
    }

    fn render_with(
        &self,
        form: &InviteForm,
        errors: &[String],
        status: StatusCode,
        done: bool,
        notice: Option<String>,
    ) -> Response {
        let csrf = super::new_csrf();
        let body = InvitePage {
            lang: self.lang,
            school_name: &self.school.name,
            role_name: permission::role_names(&[self.role.to_owned()]),
            token: self.token,
            csrf: &csrf,
            form,
            errors,
            done,
            notice,
        }
        .render()
        .unwrap_or_default();
        let mut resp = page(
            self.school,
            self.lang.pick("接受邀请", "Accept invitation"),
            &body,
            campus_web::Who::Nobody,
            self.lang,
            status,
        );
        if !done {
            campus_identity::cookies::set(
                &mut resp,
                CSRF_COOKIE,
                csrf,
                "/invite",
                self.state.identity.secure_cookies,
            );
        }
        resp
    }
}

/// `GET /invite/{token}`.
pub(crate) async fn form(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: campus_web::Lang,
    Path(token): Path<String>,
) -> Response {
    let inv = match usable(&state, &school, &token).await {
        Ok(i) => i,
        Err(u) => return u.page(&school),
    };
    let ctx = Ctx {
        state: &state,
        school: &school,
        lang,
        token: &token,
        role: &inv.role,
    };
    ctx.render(&InviteForm::default(), &[], StatusCode::OK, false)
}

/// The account the invitation goes to: an existing one whose password was given (or whose
/// phone was just proven), or the details of a new one (password already hashed).
enum Holder {
    Existing(i64),
    New(String),
}

/// A password for a new account: the policy, typed twice, hashed.
async fn new_hash(state: &SchoolState, form: &InviteForm) -> Result<String, (StatusCode, String)> {
    if let Err(e) = campus_identity::password::check_policy(&form.password) {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "密码不符合要求：{}",
                e.to_string().split(" (").next().unwrap_or_default()
            ),
        ));
    }
    if form.password != form.password2 {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "两次输入的密码不一致。".to_owned(),
        ));
    }
    state
        .identity
        .hasher
        .hash(&form.password)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "hashing failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "服务暂时不可用，请稍后重试。".to_owned(),
            )
        })
}

/// For a mobile number: the proof (from the typed code, or kept from an earlier try) and
/// the holder — the phone's account if it has one, otherwise a new one with the password.
async fn phone_holder(
    state: &SchoolState,
    phone: &str,
    form: &mut InviteForm,
) -> Result<Holder, (StatusCode, String)> {
    let st = &state.identity;
    let refusal = |e: otp::OtpError| (e.status(), e.message());
    let kept = !form.proof.is_empty()
        && otp::proof_ok(&st.pool, phone, Purpose::Invite, &form.proof)
            .await
            .map_err(refusal)?;
    if !kept {
        form.proof = String::new();
        if form.code.trim().is_empty() {
            return Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                "请先获取并填写短信验证码。".to_owned(),
            ));
        }
        form.proof = otp::verify(&st.pool, phone, Purpose::Invite, &form.code)
            .await
            .map_err(refusal)?;
    }
    let mut conn = st.pool.acquire().await.map_err(|e| refusal(e.into()))?;
    let existing = account::id_by_login(&mut conn, &Login::Phone(phone.to_owned()))
        .await
        .map_err(|e| refusal(e.into()))?;
    match existing {
        Some(id) => Ok(Holder::Existing(id)),
        None => Ok(Holder::New(new_hash(state, form).await?)),
    }
}

async fn holder(
    state: &SchoolState,
    login: &Login,
    form: &InviteForm,
) -> Result<Holder, (StatusCode, String)> {
    let st = &state.identity;
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "accepting an invitation failed");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "服务暂时不可用，请稍后重试。".to_owned(),
        )
    };
    match account::find_by_login(&st.pool, login)
        .await
        .map_err(|e| unavailable(&e))?
    {
        Some(a) => {
            if a.locked_until.is_some_and(|t| t > chrono::Utc::now()) {
                return Err((
                    StatusCode::TOO_MANY_REQUESTS,
                    "密码错误次数过多，账号已暂时锁定，请稍后再试。".to_owned(),
                ));
            }
            if st
                .hasher
                .verify(&form.password, Some(&a.password_hash))
                .await
            {
                Ok(Holder::Existing(a.id))
            } else {
                if let Err(e) = account::record_failure(&st.pool, a.id).await {
                    tracing::error!(error = %e, "recording a failed password failed");
                }
                Err((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "该手机号/用户名已有平台账号，请填写该账号的登录密码。".to_owned(),
                ))
            }
        }
        None => Ok(Holder::New(new_hash(state, form).await?)),
    }
}

/// `POST /invite/{token}`: creates or proves the account and gives it the invited role,
/// marking the invitation used in the same transaction.
pub(crate) async fn submit(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: campus_web::Lang,
    campus_identity::limits::ClientIp(ip): campus_identity::limits::ClientIp,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(mut form): Form<InviteForm>,
) -> Response {
    let inv = match usable(&state, &school, &token).await {
        Ok(i) => i,
        Err(u) => return u.page(&school),
    };
    let ctx = Ctx {
        state: &state,
        school: &school,
        lang,
        token: &token,
        role: &inv.role,
    };
    if !super::double_submit_ok(&headers, CSRF_COOKIE, &form.csrf) {
        return ctx.render(
            &form,
            &["页面已过期，请重新填写并提交。".to_owned()],
            StatusCode::FORBIDDEN,
            false,
        );
    }
    if form.action == "send" {
        let Ok(Login::Phone(phone)) = Login::parse(&form.login) else {
            return ctx.render(
                &form,
                &["验证码只能发送到手机号：请在登录账号处填写 11 位手机号。".to_owned()],
                StatusCode::UNPROCESSABLE_ENTITY,
                false,
            );
        };
        let r = otp::Request {
            phone: &phone,
            purpose: Purpose::Invite,
            ip,
            site: school.slug.as_str(),
            site_name: &school.name,
            deliver: true,
        };
        form.password = String::new();
        form.password2 = String::new();
        return match otp::send(&state.identity.pool, state.identity.sms.as_ref(), &r).await {
            Ok(()) => ctx.render_with(
                &form,
                &[],
                StatusCode::OK,
                false,
                Some(format!(
                    "验证码已发送至 {}，5 分钟内有效。",
                    otp::mask(&phone)
                )),
            ),
            Err(e) => {
                let mut resp = ctx.render(&form, &[e.message()], e.status(), false);
                if let Some(secs) = e.retry_after() {
                    resp.headers_mut().insert(
                        axum::http::header::RETRY_AFTER,
                        axum::http::HeaderValue::from(secs),
                    );
                }
                resp
            }
        };
    }
    let mut errors = Vec::new();
    let name = form.display_name.trim().to_owned();
    let name = name.as_str();
    if name.is_empty() || name.chars().count() > 50 {
        errors.push("请填写姓名（最多 50 个字）。".to_owned());
    }
    let login = match Login::parse(&form.login) {
        Ok(l) => Some(l),
        Err(e) => {
            errors.push(
                e.to_string()
                    .split(" (")
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            );
            None
        }
    };
    if form.password.is_empty() && !matches!(login, Some(Login::Phone(_))) {
        errors.push("请填写密码。".to_owned());
    }
    if permission::builtin(&inv.role).is_none() {
        errors.push("邀请的角色无效，请联系县电教馆。".to_owned());
    }
    let Some(login) = login.filter(|_| errors.is_empty()) else {
        return ctx.render(&form, &errors, StatusCode::UNPROCESSABLE_ENTITY, false);
    };
    let holder = match &login {
        Login::Phone(phone) => phone_holder(&state, phone, &mut form).await,
        Login::Username(_) => holder(&state, &login, &form).await,
    };
    let holder = match holder {
        Ok(h) => h,
        Err((status, message)) => return ctx.render(&form, &[message], status, false),
    };
    let proof = (!form.proof.is_empty()).then_some(form.proof.as_str());
    match accept(&state, &school, &inv, &login, name, &holder, proof).await {
        Ok(Some(account_id)) => {
            account::audit(
                &state.identity.pool,
                Some(account_id),
                Some(school.id.0),
                &login.to_string(),
                "invitation_accepted",
                &super::review::host(&headers),
            )
            .await;
            ctx.render(&form, &[], StatusCode::OK, true)
        }
        // Used by someone else a moment ago, or expired meanwhile.
        Ok(None) => Unusable::Used.page(&school),
        Err(AcceptError::AccountAppeared) => ctx.render(
            &form,
            &["该手机号/用户名刚刚被注册，请填写该账号的密码后重新提交。".to_owned()],
            StatusCode::CONFLICT,
            false,
        ),
        Err(AcceptError::NotProven) => {
            form.proof = String::new();
            ctx.render(
                &form,
                &["验证已过期，请重新获取短信验证码。".to_owned()],
                StatusCode::UNPROCESSABLE_ENTITY,
                false,
            )
        }
        Err(AcceptError::Db(e)) => {
            tracing::error!(error = %e, "accepting an invitation failed");
            Unusable::Unavailable.page(&school)
        }
    }
}

enum AcceptError {
    AccountAppeared,
    /// The phone's proof was spent or expired meanwhile.
    NotProven,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for AcceptError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

impl From<campus_tenant::TenantError> for AcceptError {
    fn from(e: campus_tenant::TenantError) -> Self {
        match e {
            campus_tenant::TenantError::Database(e) => Self::Db(e),
            other => Self::Db(sqlx::Error::Protocol(other.to_string())),
        }
    }
}

/// One transaction: claim the invitation, spend the phone's proof (a mobile number as
/// login), create the account if it is new, add the role. `None` if the invitation could
/// not be claimed.
async fn accept(
    state: &SchoolState,
    school: &Tenant,
    inv: &PendingInvitation,
    login: &Login,
    name: &str,
    holder: &Holder,
    proof: Option<&str>,
) -> Result<Option<i64>, AcceptError> {
    let mut tx = state.identity.pool.begin().await?;
    if !lifecycle::claim_invitation(&mut tx, inv.id).await? {
        return Ok(None);
    }
    if let Login::Phone(phone) = login {
        let proven = match proof {
            Some(p) => otp::redeem(&mut tx, phone, Purpose::Invite, p).await?,
            None => false,
        };
        if !proven {
            return Err(AcceptError::NotProven);
        }
    }
    let now = account::id_by_login(&mut tx, login).await?;
    let account_id = match (holder, now) {
        (Holder::Existing(id), Some(found)) if *id == found => found,
        (Holder::New(hash), None) => {
            let (username, phone) = match login {
                Login::Phone(p) => (None, Some(p.as_str())),
                Login::Username(u) => (Some(u.as_str()), None),
            };
            account::ensure_in(
                &mut tx,
                &NewAccount {
                    username,
                    phone,
                    display_name: name,
                    password_hash: hash,
                    county_role: None,
                },
            )
            .await?
        }
        _ => return Err(AcceptError::AccountAppeared),
    };
    if matches!(login, Login::Phone(_)) {
        otp::mark_proven(&mut tx, account_id).await?;
    }
    account::add_roles(&mut tx, account_id, school.id.0, &[&inv.role], None, None).await?;
    tx.commit().await?;
    Ok(Some(account_id))
}
