//! A school's invitations of people (`public.member_invitations`): how a school admin adds
//! someone without ever choosing their password. An invitation by phone is texted as a
//! link (`/invitation?t=…`, the token in the query string, which request logs leave out);
//! the person proves the phone with a code and chooses a password (a new account) or is
//! linked to the account the phone already has. The owner of an account whose phone is
//! proven, or of an invited username-only account, may instead accept signed in, on
//! `/me`. Roles, links and validity are granted on acceptance, in one transaction with
//! the invitation's claim and its audit event.

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use campus_tenant::{Site, Tenant};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::otp::{self, OtpError, Purpose};
use crate::{CurrentUser, IdentityState};

/// Days an invitation may be accepted.
pub const VALID_DAYS: i32 = 7;

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// One invitation as the school's admin and the invitee see it.
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct Invitation {
    pub id: i64,
    pub tenant_id: i64,
    pub phone: Option<String>,
    pub account_id: Option<i64>,
    /// The invited username-only account's username.
    pub username: Option<String>,
    pub display_name: String,
    pub roles: Vec<String>,
    pub staff_id: Option<i64>,
    pub guardian_id: Option<i64>,
    pub valid_until: Option<NaiveDate>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The school's name.
    pub school: String,
}

const SELECT: &str = "select i.id, i.tenant_id, i.phone, i.account_id, a.username, i.display_name, i.roles,
        i.staff_id, i.guardian_id, i.valid_until, i.status, i.created_at, i.expires_at, t.name as school
   from public.member_invitations i
   join public.tenants t on t.id = i.tenant_id
   left join public.accounts a on a.id = i.account_id";

/// Whom to invite, and to what.
pub struct NewInvitation<'a> {
    pub phone: Option<&'a str>,
    pub account_id: Option<i64>,
    pub display_name: &'a str,
    pub roles: &'a [String],
    pub staff_id: Option<i64>,
    pub guardian_id: Option<i64>,
    pub valid_until: Option<NaiveDate>,
}

/// Why an invitation was not created.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("此人已是本校成员 (already a member of this school)")]
    AlreadyMember,
    #[error("已向此人发出邀请，正在等待对方接受 (an invitation to this person is waiting to be accepted)")]
    AlreadyInvited,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Stores a pending invitation and its audit event; returns its id and the token of its
/// link (the token is kept only hashed).
pub async fn create(
    pool: &PgPool,
    tenant_id: i64,
    actor: i64,
    n: &NewInvitation<'_>,
) -> Result<(i64, String), InviteError> {
    let mut tx = pool.begin().await?;
    let member: bool = sqlx::query_scalar(
        "select exists(select 1 from public.memberships m join public.accounts a on a.id = m.account_id
                        where m.tenant_id = $1 and (a.phone = $2 or a.id = $3))",
    )
    .bind(tenant_id)
    .bind(n.phone)
    .bind(n.account_id)
    .fetch_one(&mut *tx)
    .await?;
    if member {
        return Err(InviteError::AlreadyMember);
    }
    // An expired pending invitation makes way for the new one.
    sqlx::query(
        "update public.member_invitations set status = 'cancelled', decided_at = now()
          where tenant_id = $1 and status = 'pending' and expires_at <= now()
            and (phone = $2 or account_id = $3)",
    )
    .bind(tenant_id)
    .bind(n.phone)
    .bind(n.account_id)
    .execute(&mut *tx)
    .await?;
    let token = crate::session::random_hex();
    let id: Option<i64> = sqlx::query_scalar(
        "insert into public.member_invitations
                (tenant_id, token_hash, phone, account_id, display_name, roles, staff_id, guardian_id,
                 valid_until, invited_by, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now() + make_interval(days => $11))
         on conflict do nothing returning id",
    )
    .bind(tenant_id)
    .bind(token_hash(&token))
    .bind(n.phone)
    .bind(n.account_id)
    .bind(n.display_name)
    .bind(n.roles)
    .bind(n.staff_id)
    .bind(n.guardian_id)
    .bind(n.valid_until)
    .bind(actor)
    .bind(VALID_DAYS)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        return Err(InviteError::AlreadyInvited);
    };
    sqlx::query(
        "insert into public.auth_events (account_id, tenant_id, login, event, actor_account_id, detail)
         values ($1, $2, $3, 'member_invited', $4, $5)",
    )
    .bind(n.account_id)
    .bind(tenant_id)
    .bind(n.phone)
    .bind(actor)
    .bind(serde_json::json!({"invitation": id, "roles": n.roles, "name": n.display_name}))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((id, token))
}

/// Removes an invitation that could not be sent (nobody can have used it).
pub async fn discard(pool: &PgPool, tenant_id: i64, id: i64) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("delete from public.auth_events where tenant_id = $1 and event = 'member_invited' and (detail->>'invitation')::bigint = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("delete from public.member_invitations where tenant_id = $1 and id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// The school's pending invitations, newest first.
pub async fn pending_in(pool: &PgPool, tenant_id: i64) -> sqlx::Result<Vec<Invitation>> {
    sqlx::query_as(&format!(
        "{SELECT} where i.tenant_id = $1 and i.status = 'pending' order by i.created_at desc, i.id desc limit 200"
    ))
    .bind(tenant_id)
    .fetch_all(pool)
    .await
}

/// Cancels a pending invitation of this school; false if there is none with this id here.
pub async fn cancel(pool: &PgPool, tenant_id: i64, id: i64, actor: i64) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let done: Option<(Option<i64>, Option<String>)> = sqlx::query_as(
        "update public.member_invitations set status = 'cancelled', decided_at = now()
          where tenant_id = $1 and id = $2 and status = 'pending' returning account_id, phone",
    )
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((account_id, phone)) = &done {
        sqlx::query(
            "insert into public.auth_events (account_id, tenant_id, login, event, actor_account_id, detail)
             values ($1, $2, $3, 'invitation_cancelled', $4, $5)",
        )
        .bind(account_id)
        .bind(tenant_id)
        .bind(phone)
        .bind(actor)
        .bind(serde_json::json!({"invitation": id}))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(done.is_some())
}

/// The pending, unexpired invitation with this link token.
pub async fn by_token(pool: &PgPool, token: &str) -> sqlx::Result<Option<Invitation>> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    sqlx::query_as(&format!(
        "{SELECT} where i.token_hash = $1 and i.status = 'pending' and i.expires_at > now()"
    ))
    .bind(token_hash(token))
    .fetch_optional(pool)
    .await
}

/// Invitations the signed-in owner of `account_id` may accept: to its proven phone, or to
/// the account itself. The second value counts invitations to its phone that wait for the
/// phone to be proven first.
pub async fn for_account(pool: &PgPool, account_id: i64) -> sqlx::Result<(Vec<Invitation>, i64)> {
    let open: Vec<Invitation> = sqlx::query_as(&format!(
        "{SELECT} where i.status = 'pending' and i.expires_at > now()
            and (i.account_id = $1 or i.phone = (select phone from public.accounts
                                                  where id = $1 and phone_verified_at is not null))
          order by i.created_at"
    ))
    .bind(account_id)
    .fetch_all(pool)
    .await?;
    let waiting: i64 = sqlx::query_scalar(
        "select count(*) from public.member_invitations i join public.accounts a on a.phone = i.phone
          where a.id = $1 and a.phone_verified_at is null and i.status = 'pending' and i.expires_at > now()",
    )
    .bind(account_id)
    .fetch_one(pool)
    .await?;
    Ok((open, waiting))
}

/// What a pending invitation grants: school, roles, staff and guardian links, validity.
type PendingGrant = (
    i64,
    Vec<String>,
    Option<i64>,
    Option<i64>,
    Option<NaiveDate>,
);

/// Grants the invitation to `account_id` in the caller's transaction: locks it (still
/// pending and unexpired), adds the roles, links and validity to the membership, marks it
/// accepted and records the event. False if it was no longer pending.
pub async fn accept_in(
    conn: &mut PgConnection,
    invitation_id: i64,
    account_id: i64,
    host: &str,
) -> sqlx::Result<bool> {
    let inv: Option<PendingGrant> = sqlx::query_as(
        "select tenant_id, roles, staff_id, guardian_id, valid_until from public.member_invitations
          where id = $1 and status = 'pending' and expires_at > now() for update",
    )
    .bind(invitation_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((tenant_id, roles, staff_id, guardian_id, valid_until)) = inv else {
        return Ok(false);
    };
    let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
    crate::account::add_roles(conn, account_id, tenant_id, &roles, staff_id, guardian_id).await?;
    if valid_until.is_some() {
        sqlx::query(
            "update public.memberships set valid_until = $3 where account_id = $1 and tenant_id = $2",
        )
        .bind(account_id)
        .bind(tenant_id)
        .bind(valid_until)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "update public.member_invitations set status = 'accepted', decided_at = now(), accepted_account_id = $2
          where id = $1",
    )
    .bind(invitation_id)
    .bind(account_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "insert into public.auth_events (account_id, tenant_id, event, host, actor_account_id, detail)
         values ($1, $2, 'invitation_accepted', $3, $1, $4)",
    )
    .bind(account_id)
    .bind(tenant_id)
    .bind(host)
    .bind(serde_json::json!({"invitation": invitation_id, "roles": roles}))
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// The link texted to the invitee.
pub fn link(urls: &campus_tenant::lifecycle::SchoolUrls, school: &Tenant, token: &str) -> String {
    format!("{}/invitation?t={token}", urls.school(&school.slug))
}

/// Texts the invitation's link to its phone.
pub async fn send_sms(
    st: &IdentityState,
    school: &Tenant,
    id: i64,
    phone: &str,
    token: &str,
    roles: &str,
) -> Result<(), OtpError> {
    let sms = st.sms.as_ref().ok_or(OtpError::NoChannel)?;
    let text = format!(
        "【{}】邀请您加入本校，身份：{roles}。请在 {VALID_DAYS} 天内打开链接，验证手机号后接受：{}",
        school.name,
        link(&st.urls, school, token)
    );
    sms.send(
        &format!("invitation:{id}"),
        phone,
        school.slug.as_str(),
        "邀请",
        &text,
    )
    .await
    .map_err(|why| {
        tracing::warn!(error = %why, "an invitation could not be texted");
        OtpError::SendFailed
    })
}

// ---- The invitee's pages -------------------------------------------------------------

const CSRF_COOKIE: &str = "campus_invitation_csrf";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// What the invitation is; send a code.
    Start,
    /// Type the code.
    Code,
    /// Choose a password (the phone has no account yet).
    Password,
    Done,
    /// An invitation to an existing username-only account: accept signed in.
    SignIn,
}

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage<'a> {
    lang: campus_web::Lang,
    school_name: &'a str,
    name: &'a str,
    roles: String,
    masked: String,
    step: Step,
    token: &'a str,
    proof: &'a str,
    csrf: &'a str,
    errors: &'a [String],
    notice: Option<String>,
}

impl Step {
    fn is(&self, name: &str) -> bool {
        matches!(
            (self, name),
            (Step::Start, "start")
                | (Step::Code, "code")
                | (Step::Password, "password")
                | (Step::Done, "done")
                | (Step::SignIn, "signin")
        )
    }
}

struct Ctx<'a> {
    st: &'a IdentityState,
    school: &'a Tenant,
    lang: campus_web::Lang,
    inv: &'a Invitation,
    token: &'a str,
}

impl Ctx<'_> {
    fn render(
        &self,
        step: Step,
        status: StatusCode,
        errors: &[String],
        notice: Option<String>,
        proof: &str,
    ) -> Response {
        let csrf = crate::session::random_hex();
        let body = InvitationPage {
            lang: self.lang,
            school_name: &self.school.name,
            name: &self.inv.display_name,
            roles: role_names(self.lang, &self.inv.roles),
            masked: self.inv.phone.as_deref().map(otp::mask).unwrap_or_default(),
            step,
            token: self.token,
            proof,
            csrf: &csrf,
            errors,
            notice,
        }
        .render()
        .unwrap_or_default();
        let mut resp = campus_web::Shell {
            title: self.lang.pick("接受邀请", "Accept the invitation"),
            site_name: &self.school.name,
            badge_url: Some("/badge.svg"),
            theme_color: None,
            body: &body,
            who: campus_web::Who::Nobody,
            lang: self.lang,
        }
        .into_page(status);
        crate::cookies::set(
            &mut resp,
            CSRF_COOKIE,
            csrf,
            "/invitation",
            self.st.secure_cookies,
        );
        resp
    }

    fn otp_error(&self, step: Step, e: &OtpError) -> Response {
        let mut resp = self.render(step, e.status(), &[e.message()], None, "");
        if let Some(secs) = e.retry_after() {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        resp
    }
}

fn role_names(lang: campus_web::Lang, roles: &[String]) -> String {
    if lang.is_en() {
        crate::permission::role_names_en(roles)
    } else {
        crate::permission::role_names(roles)
    }
}

fn school_of(site: &Site) -> Option<&Tenant> {
    match site {
        Site::School(t) => Some(t),
        _ => None,
    }
}

fn gone(site_name: &str) -> Response {
    campus_web::message_page(
        StatusCode::NOT_FOUND,
        site_name,
        (
            "邀请不存在或已失效",
            "该邀请链接不存在、已被使用、已取消或已过期。请联系邀请您的学校重新发送。",
        ),
        (
            "No such invitation",
            "This invitation does not exist, was used or cancelled, or has expired. Ask the school to send a new one.",
        ),
    )
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "invitation handling failed");
    crate::AuthRejection::Unavailable.into_response()
}

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    #[serde(default)]
    t: String,
}

/// The invitation of this link, only on its own school's host.
async fn find(
    st: &IdentityState,
    school: &Tenant,
    token: &str,
) -> Result<Option<Invitation>, Response> {
    match by_token(&st.pool, token).await {
        Ok(found) => Ok(found.filter(|i| i.tenant_id == school.id.0)),
        Err(e) => Err(unavailable(e)),
    }
}

/// `GET /invitation?t=…`: what the invitation is, and how to accept it.
pub(crate) async fn open(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
    Query(q): Query<TokenQuery>,
) -> Response {
    let Some(school) = school_of(&site) else {
        return campus_web::not_found_page(campus_web::PLATFORM_NAME);
    };
    let inv = match find(&st, school, &q.t).await {
        Ok(Some(i)) => i,
        Ok(None) => return gone(&school.name),
        Err(r) => return r,
    };
    let ctx = Ctx {
        st: &st,
        school,
        lang,
        inv: &inv,
        token: &q.t,
    };
    let step = if inv.phone.is_some() {
        Step::Start
    } else {
        Step::SignIn
    };
    ctx.render(step, StatusCode::OK, &[], None, "")
}

#[derive(Deserialize, Default)]
pub(crate) struct RespondForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    t: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    proof: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

/// `POST /invitation`: send a code, check it, choose a password; accepting at the end.
pub(crate) async fn respond(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: campus_web::Lang,
    crate::limits::ClientIp(ip): crate::limits::ClientIp,
    headers: HeaderMap,
    Form(f): Form<RespondForm>,
) -> Response {
    let Some(school) = school_of(&site) else {
        return campus_web::not_found_page(campus_web::PLATFORM_NAME);
    };
    let inv = match find(&st, school, &f.t).await {
        Ok(Some(i)) => i,
        Ok(None) => return gone(&school.name),
        Err(r) => return r,
    };
    let ctx = Ctx {
        st: &st,
        school,
        lang,
        inv: &inv,
        token: &f.t,
    };
    let Some(phone) = inv.phone.clone() else {
        return ctx.render(Step::SignIn, StatusCode::OK, &[], None, "");
    };
    let csrf_cookie = crate::cookie_value(&headers, CSRF_COOKIE);
    if f.csrf.is_empty() || csrf_cookie.as_deref() != Some(f.csrf.as_str()) {
        return ctx.render(
            Step::Start,
            StatusCode::FORBIDDEN,
            &["页面已过期，请重新操作。(The page expired; please try again.)".into()],
            None,
            "",
        );
    }
    let host = crate::pages::host_of(&headers);
    match f.action.as_str() {
        "send" => {
            let r = otp::Request {
                phone: &phone,
                purpose: Purpose::Invite,
                ip,
                site: school.slug.as_str(),
                site_name: &school.name,
                deliver: true,
            };
            match otp::send(&st.pool, st.sms.as_ref(), &r).await {
                Ok(()) => ctx.render(
                    Step::Code,
                    StatusCode::OK,
                    &[],
                    Some(format!(
                        "验证码已发送至 {} (A code was sent.)",
                        otp::mask(&phone)
                    )),
                    "",
                ),
                Err(e) => ctx.otp_error(Step::Start, &e),
            }
        }
        "verify" => {
            let proof = match otp::verify(&st.pool, &phone, Purpose::Invite, &f.code).await {
                Ok(p) => p,
                Err(e) => return ctx.otp_error(Step::Code, &e),
            };
            let existing = match account_by_phone(&st.pool, &phone).await {
                Ok(a) => a,
                Err(e) => return unavailable(e),
            };
            match existing {
                // The phone is proven: its account is the invitee's.
                Some(account_id) => finish(&ctx, &phone, &proof, account_id, None, &host).await,
                None => ctx.render(Step::Password, StatusCode::OK, &[], None, &proof),
            }
        }
        "password" => {
            match otp::proof_ok(&st.pool, &phone, Purpose::Invite, &f.proof).await {
                Ok(true) => {}
                Ok(false) => return ctx.otp_error(Step::Start, &OtpError::NoProof),
                Err(e) => return ctx.otp_error(Step::Start, &e),
            }
            if let Err(e) = crate::password::check_policy(&f.password) {
                return ctx.render(
                    Step::Password,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &[e.to_string()],
                    None,
                    &f.proof,
                );
            }
            if f.password != f.password2 {
                return ctx.render(
                    Step::Password,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &["两次输入的密码不一致。(The passwords differ.)".into()],
                    None,
                    &f.proof,
                );
            }
            let hash = match st.hasher.hash(&f.password).await {
                Ok(h) => h,
                Err(e) => return unavailable(e),
            };
            finish(&ctx, &phone, &f.proof, 0, Some(&hash), &host).await
        }
        _ => ctx.render(Step::Start, StatusCode::OK, &[], None, ""),
    }
}

async fn account_by_phone(pool: &PgPool, phone: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("select id from public.accounts where phone = $1")
        .bind(phone)
        .fetch_optional(pool)
        .await
}

/// One transaction: spend the proof, create the account (with `hash`) unless the phone has
/// one, mark the phone proven, accept the invitation.
async fn finish(
    ctx: &Ctx<'_>,
    phone: &str,
    proof: &str,
    existing: i64,
    hash: Option<&str>,
    host: &str,
) -> Response {
    let st = ctx.st;
    let result = async {
        let mut tx = st.pool.begin().await?;
        if !otp::redeem(&mut tx, phone, Purpose::Invite, proof).await? {
            return Ok::<_, sqlx::Error>(Err(OtpError::NoProof));
        }
        let now: Option<i64> = sqlx::query_scalar("select id from public.accounts where phone = $1 for update")
            .bind(phone)
            .fetch_optional(&mut *tx)
            .await?;
        let account_id = match (now, hash) {
            (Some(id), _) => id,
            (None, Some(hash)) => {
                sqlx::query_scalar(
                    "insert into public.accounts (phone, display_name, password_hash, phone_verified_at)
                     values ($1, $2, $3, now()) returning id",
                )
                .bind(phone)
                .bind(&ctx.inv.display_name)
                .bind(hash)
                .fetch_one(&mut *tx)
                .await?
            }
            (None, None) if existing != 0 => existing,
            (None, None) => return Ok(Err(OtpError::NoProof)),
        };
        otp::mark_proven(&mut tx, account_id).await?;
        if !accept_in(&mut tx, ctx.inv.id, account_id, host).await? {
            return Ok(Err(OtpError::NoProof));
        }
        tx.commit().await?;
        Ok(Ok(account_id))
    }
    .await;
    match result {
        Ok(Ok(account_id)) => {
            st.members.forget(account_id, ctx.inv.tenant_id).await;
            ctx.render(Step::Done, StatusCode::OK, &[], None, "")
        }
        Ok(Err(e)) => ctx.otp_error(Step::Start, &e),
        Err(e) => unavailable(e),
    }
}

// ---- Accepting signed in, on /me ------------------------------------------------------

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /me/invitations/{id}/accept`: the signed-in owner accepts an invitation to their
/// proven phone or to their account.
pub(crate) async fn accept_signed_in(
    State(st): State<IdentityState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    decide_signed_in(&st, &user, &headers, id, &f, true).await
}

/// `POST /me/invitations/{id}/decline`.
pub(crate) async fn decline_signed_in(
    State(st): State<IdentityState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    decide_signed_in(&st, &user, &headers, id, &f, false).await
}

async fn decide_signed_in(
    st: &IdentityState,
    user: &CurrentUser,
    headers: &HeaderMap,
    id: i64,
    f: &CsrfForm,
    accept: bool,
) -> Response {
    if f.csrf.is_empty() || f.csrf != user.csrf_token {
        return (StatusCode::FORBIDDEN, "missing or wrong CSRF token").into_response();
    }
    let mine = match for_account(&st.pool, user.account_id).await {
        Ok((open, _)) => open.into_iter().find(|i| i.id == id),
        Err(e) => return unavailable(e),
    };
    let Some(inv) = mine else {
        return campus_web::message_page(
            StatusCode::NOT_FOUND,
            campus_web::PLATFORM_NAME,
            (
                "找不到此邀请",
                "没有发给您的这项邀请，或它已被处理、已过期。",
            ),
            (
                "No such invitation",
                "There is no such invitation for you, or it was already decided or expired.",
            ),
        );
    };
    let host = crate::pages::host_of(headers);
    let result = async {
        let mut tx = st.pool.begin().await?;
        let done = if accept {
            accept_in(&mut tx, inv.id, user.account_id, &host).await?
        } else {
            let declined = sqlx::query(
                "update public.member_invitations set status = 'declined', decided_at = now()
                  where id = $1 and status = 'pending'",
            )
            .bind(inv.id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if declined {
                sqlx::query(
                    "insert into public.auth_events (account_id, tenant_id, event, host, actor_account_id, detail)
                     values ($1, $2, 'invitation_declined', $3, $1, $4)",
                )
                .bind(user.account_id)
                .bind(inv.tenant_id)
                .bind(&host)
                .bind(serde_json::json!({"invitation": inv.id}))
                .execute(&mut *tx)
                .await?;
            }
            declined
        };
        tx.commit().await?;
        Ok::<_, sqlx::Error>(done)
    }
    .await;
    match result {
        Ok(_) => {
            st.members.forget(user.account_id, inv.tenant_id).await;
            Redirect::to("/me").into_response()
        }
        Err(e) => unavailable(e),
    }
}
