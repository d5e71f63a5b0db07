//! The public side: the application form behind a join link (no sign-in), its submission,
//! and the applicant's status page. The applicant proves the phone with an SMS code before
//! anything about an account is said or asked: until then the form answers the same
//! whether or not the phone has an account. After the proof, a phone without an account
//! chooses a password; a phone with one is linked to it, no password asked.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use campus_identity::login::Login;
use campus_identity::otp::{self, OtpError, Purpose};
use campus_tenant::{CurrentSchool, Tenant};
use serde::Deserialize;

use super::requests::{self, NewRequest};
use super::{links, page, plausible_token, Failure, Kind, RELATIONS};
use crate::SchoolState;

/// Double-submit cookie of the application form.
const CSRF_COOKIE: &str = "campus_join_csrf";

/// What the applicant typed (passwords are never sent back).
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ApplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
    /// `send` (a code), `verify` (the code) or `password` (after the proof).
    #[serde(default)]
    action: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    proof: String,
    #[serde(default)]
    child_name: String,
    #[serde(default)]
    class_id: String,
    #[serde(default)]
    relation: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    note: String,
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "join/apply.html")]
struct ApplyPage<'a> {
    lang: campus_web::Lang,
    school_name: &'a str,
    parent: bool,
    token: &'a str,
    csrf: &'a str,
    classes: Vec<Choice>,
    relations: Vec<Choice>,
    form: &'a ApplyForm,
    errors: &'a [String],
    /// `details`, `code` (a code was sent) or `password` (phone proven, no account).
    step: &'a str,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "join/status.html")]
struct StatusPage<'a> {
    lang: campus_web::Lang,
    school_name: &'a str,
    just_submitted: bool,
    name: &'a str,
    kind: &'a str,
    status: &'a str,
    status_name: &'a str,
    reason: Option<&'a str>,
    submitted_at: String,
    status_url: String,
}

/// The form's surroundings: which school, which link, which language.
struct FormCtx<'a> {
    state: &'a SchoolState,
    school: &'a Tenant,
    lang: campus_web::Lang,
    token: &'a str,
    kind: Kind,
}

impl FormCtx<'_> {
    async fn render(&self, form: &ApplyForm, errors: &[String], status: StatusCode) -> Response {
        self.render_step(form, errors, status, "details", None)
            .await
    }

    async fn render_step(
        &self,
        form: &ApplyForm,
        errors: &[String],
        status: StatusCode,
        step: &str,
        notice: Option<String>,
    ) -> Response {
        let (state, school, lang, token, kind) =
            (self.state, self.school, self.lang, self.token, self.kind);
        let classes = if kind == Kind::Parent {
            let loaded = async {
                let mut tx = state.db.school(school).await?;
                let c = requests::classes(&mut tx).await?;
                tx.commit().await?;
                Ok::<_, campus_tenant::TenantError>(c)
            }
            .await;
            match loaded {
                Ok(c) => c,
                Err(e) => return super::unavailable(e).page(&school.name),
            }
        } else {
            Vec::new()
        };
        let csrf = super::new_csrf();
        let body = ApplyPage {
            lang,
            school_name: &school.name,
            parent: kind == Kind::Parent,
            token,
            csrf: &csrf,
            classes: classes
                .into_iter()
                .map(|(id, name)| Choice {
                    selected: form.class_id == id.to_string(),
                    value: id.to_string(),
                    label: name,
                })
                .collect(),
            relations: RELATIONS
                .iter()
                .map(|(code, zh, en)| Choice {
                    value: (*code).into(),
                    label: lang.pick(zh, en).into(),
                    selected: form.relation == *code,
                })
                .collect(),
            form,
            errors,
            step,
            notice,
        }
        .render()
        .unwrap_or_default();
        let title = match kind {
            Kind::Parent => lang.pick("家长加入", "Join as a parent"),
            Kind::Staff => lang.pick("教职工加入", "Join as staff"),
        };
        let mut resp = page(school, title, &body, campus_web::Who::Nobody, lang, status);
        campus_identity::cookies::set(
            &mut resp,
            CSRF_COOKIE,
            csrf,
            "/join",
            state.identity.secure_cookies,
        );
        resp
    }
}

async fn find_link(
    state: &SchoolState,
    school: &Tenant,
    token: &str,
) -> Result<links::Link, Failure> {
    if !plausible_token(token) {
        return Err(Failure::NotFound);
    }
    let mut tx = state.db.school(school).await?;
    let link = links::by_token(&mut tx, token).await?;
    tx.commit().await?;
    link.ok_or(Failure::NotFound)
}

fn link_gone(school: &Tenant) -> Response {
    campus_web::message_page(
        StatusCode::NOT_FOUND,
        &school.name,
        (
            "加入链接无效",
            "该链接或二维码不存在或已被学校更换。请向学校索取新的加入链接。",
        ),
        (
            "Join link not valid",
            "This link or QR code does not exist or was replaced. Ask the school for the current one.",
        ),
    )
}

/// `GET /join/{token}`: the parent's or the staff member's application form.
pub(crate) async fn form(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: campus_web::Lang,
    Path(token): Path<String>,
) -> Response {
    match find_link(&state, &school, &token).await {
        Ok(link) => {
            let ctx = FormCtx {
                state: &state,
                school: &school,
                lang,
                token: &token,
                kind: link.kind,
            };
            ctx.render(&ApplyForm::default(), &[], StatusCode::OK).await
        }
        Err(Failure::NotFound) => link_gone(&school),
        Err(f) => f.page(&school.name),
    }
}

fn trimmed(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty()).then_some(t)
}

/// Field checks that need no database; every problem is reported at once.
fn check_fields(kind: Kind, f: &ApplyForm) -> (Vec<String>, Option<String>, Option<i64>) {
    let mut errors = Vec::new();
    match trimmed(&f.name) {
        None => errors.push("请填写姓名。".to_owned()),
        Some(n) if n.chars().count() > 50 => errors.push("姓名最多 50 个字。".to_owned()),
        _ => {}
    }
    let phone = match Login::parse(&f.phone) {
        Ok(Login::Phone(p)) => Some(p),
        _ => {
            errors.push("手机号格式不正确：应为 11 位数字，以 1 开头。".to_owned());
            None
        }
    };
    let mut class_id = None;
    match kind {
        Kind::Parent => {
            match trimmed(&f.child_name) {
                None => errors.push("请填写孩子的姓名。".to_owned()),
                Some(n) if n.chars().count() > 50 => {
                    errors.push("孩子姓名最多 50 个字。".to_owned())
                }
                _ => {}
            }
            match f.class_id.trim().parse::<i64>() {
                Ok(id) => class_id = Some(id),
                Err(_) => errors.push("请选择孩子所在的班级。".to_owned()),
            }
            if !RELATIONS.iter().any(|r| r.0 == f.relation) {
                errors.push("请选择您与孩子的关系。".to_owned());
            }
        }
        Kind::Staff => {
            match trimmed(&f.title) {
                None => errors.push("请填写职务（如：教师、班主任、后勤）。".to_owned()),
                Some(t) if t.chars().count() > 30 => errors.push("职务最多 30 个字。".to_owned()),
                _ => {}
            }
            if f.subject.trim().chars().count() > 30 {
                errors.push("任教学科最多 30 个字。".to_owned());
            }
        }
    }
    if f.note.trim().chars().count() > 500 {
        errors.push("备注最多 500 个字。".to_owned());
    }
    (errors, phone, class_id)
}

/// The chosen password of a new account: it must meet the policy and be typed twice.
async fn new_password(state: &SchoolState, f: &ApplyForm) -> Result<String, (StatusCode, String)> {
    if let Err(e) = campus_identity::password::check_policy(&f.password) {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "密码不符合要求：{}",
                e.to_string().split(" (").next().unwrap_or_default()
            ),
        ));
    }
    if f.password != f.password2 {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "两次输入的密码不一致。".to_owned(),
        ));
    }
    state.identity.hasher.hash(&f.password).await.map_err(|e| {
        tracing::error!(error = %e, "hashing failed");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "服务暂时不可用，请稍后重试。".to_owned(),
        )
    })
}

fn otp_refusal(e: &OtpError) -> (StatusCode, String) {
    (e.status(), e.message())
}

const DUPLICATE: &str = "该手机号已提交过申请，正在等待学校审核，请勿重复提交。";

/// `POST /join/{token}`: `action=send` checks the details and texts a code; `verify`
/// checks the code, then stores the application of a phone that has an account (linked to
/// it) or asks a new applicant for a password; `password` stores it with the new password.
pub(crate) async fn submit(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: campus_web::Lang,
    campus_identity::limits::ClientIp(ip): campus_identity::limits::ClientIp,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(mut form): Form<ApplyForm>,
) -> Response {
    let link = match find_link(&state, &school, &token).await {
        Ok(l) => l,
        Err(Failure::NotFound) => return link_gone(&school),
        Err(f) => return f.page(&school.name),
    };
    let kind = link.kind;
    let ctx = FormCtx {
        state: &state,
        school: &school,
        lang,
        token: &token,
        kind,
    };
    // Passwords and codes are never sent back in a page.
    let typed_password = std::mem::take(&mut form.password);
    let typed_password2 = std::mem::take(&mut form.password2);
    let typed_code = std::mem::take(&mut form.code);
    let proof = std::mem::take(&mut form.proof);
    let again = |errors: Vec<String>, status: StatusCode| {
        let (ctx, form) = (&ctx, &form);
        async move { ctx.render(form, &errors, status).await }
    };
    if !super::double_submit_ok(&headers, CSRF_COOKIE, &form.csrf) {
        return again(
            vec!["页面已过期，请重新填写并提交。".to_owned()],
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let (errors, phone, class_id) = check_fields(kind, &form);
    if !errors.is_empty() {
        return again(errors, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let phone = phone.unwrap_or_default();
    let class_ok = async {
        let mut tx = state.db.school(&school).await?;
        let ok = match class_id {
            Some(id) => requests::class_exists(&mut tx, id).await?,
            None => true,
        };
        tx.commit().await?;
        Ok::<_, Failure>(ok)
    }
    .await;
    match class_ok {
        Ok(false) => {
            return again(
                vec!["所选班级不存在，请重新选择。".to_owned()],
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Ok(true) => {}
        Err(f) => return f.page(&school.name),
    }
    let st = &state.identity;
    let at_code_step = |e: OtpError| {
        let (ctx, form) = (&ctx, &form);
        async move {
            let (status, message) = otp_refusal(&e);
            let mut resp = ctx
                .render_step(form, &[message], status, "code", None)
                .await;
            if let Some(secs) = e.retry_after() {
                resp.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(secs),
                );
            }
            resp
        }
    };
    let (account_id, password_hash) = match form.action.as_str() {
        "verify" => {
            let proof = match otp::verify(&st.pool, &phone, Purpose::Join, &typed_code).await {
                Ok(p) => p,
                Err(e) => return at_code_step(e).await,
            };
            let existing = match account_id_by_phone(st, &phone).await {
                Ok(a) => a,
                Err(f) => return f.page(&school.name),
            };
            match existing {
                Some(id) => match redeem(st, &phone, &proof).await {
                    Ok(()) => (Some(id), None),
                    Err(e) => return at_code_step(e).await,
                },
                None => {
                    let mut next = form.clone();
                    next.proof = proof;
                    return ctx
                        .render_step(&next, &[], StatusCode::OK, "password", None)
                        .await;
                }
            }
        }
        "password" => {
            match otp::proof_ok(&st.pool, &phone, Purpose::Join, &proof).await {
                Ok(true) => {}
                Ok(false) => return at_code_step(OtpError::NoProof).await,
                Err(e) => return at_code_step(e).await,
            }
            let typed = ApplyForm {
                password: typed_password,
                password2: typed_password2,
                ..ApplyForm::default()
            };
            let hash = match new_password(&state, &typed).await {
                Ok(h) => h,
                Err((status, message)) => {
                    let mut next = form.clone();
                    next.proof = proof;
                    return ctx
                        .render_step(&next, &[message], status, "password", None)
                        .await;
                }
            };
            if let Err(e) = redeem(st, &phone, &proof).await {
                return at_code_step(e).await;
            }
            (None, Some(hash))
        }
        _ => {
            // Send a code. Nothing here depends on whether the phone has an account.
            let r = otp::Request {
                phone: &phone,
                purpose: Purpose::Join,
                ip,
                site: school.slug.as_str(),
                site_name: &school.name,
                deliver: true,
            };
            return match otp::send(&st.pool, st.sms.as_ref(), &r).await {
                Ok(()) => {
                    ctx.render_step(
                        &form,
                        &[],
                        StatusCode::OK,
                        "code",
                        Some(format!(
                            "验证码已发送至 {}，5 分钟内有效。",
                            otp::mask(&phone)
                        )),
                    )
                    .await
                }
                Err(e) => {
                    let (status, message) = otp_refusal(&e);
                    let mut resp = ctx
                        .render_step(&form, &[message], status, "details", None)
                        .await;
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
    };
    let note = trimmed(&form.note);
    let new = NewRequest {
        link_id: link.id,
        kind,
        name: form.name.trim(),
        phone: &phone,
        relation: (kind == Kind::Parent).then_some(form.relation.as_str()),
        child_name: (kind == Kind::Parent).then(|| form.child_name.trim()),
        class_id,
        staff_title: (kind == Kind::Staff).then(|| form.title.trim()),
        staff_subject: (kind == Kind::Staff)
            .then(|| trimmed(&form.subject))
            .flatten(),
        note,
        password_hash: password_hash.as_deref(),
        account_id,
        phone_proven: true,
    };
    let stored = async {
        let mut tx = state.db.school(&school).await?;
        // The link may have been rotated while the person was typing.
        if links::by_token(&mut tx, &token).await?.is_none() {
            return Err(Failure::NotFound);
        }
        let token = requests::insert(&mut tx, &new).await?;
        tx.commit().await?;
        Ok(token)
    }
    .await;
    let status_token = match stored {
        Ok(Some(t)) => t,
        Ok(None) => return again(vec![DUPLICATE.to_owned()], StatusCode::CONFLICT).await,
        Err(Failure::NotFound) => return link_gone(&school),
        Err(f) => return f.page(&school.name),
    };
    tracing::info!(kind = kind.code(), "join application received");
    let body = StatusPage {
        lang,
        school_name: &school.name,
        just_submitted: true,
        name: form.name.trim(),
        kind: kind.name(lang),
        status: "pending",
        status_name: super::status_name("pending", lang),
        reason: None,
        submitted_at: super::local_time(chrono::Utc::now()),
        status_url: format!("/join/status/{status_token}"),
    }
    .render()
    .unwrap_or_default();
    page(
        &school,
        lang.pick("已提交", "Submitted"),
        &body,
        campus_web::Who::Nobody,
        lang,
        StatusCode::OK,
    )
}

async fn account_id_by_phone(
    st: &campus_identity::IdentityState,
    phone: &str,
) -> Result<Option<i64>, Failure> {
    let mut conn = st.pool.acquire().await?;
    Ok(campus_identity::account::id_by_login(&mut conn, &Login::Phone(phone.to_owned())).await?)
}

/// Spends the proof of the phone (its own small transaction in `public`).
async fn redeem(
    st: &campus_identity::IdentityState,
    phone: &str,
    proof: &str,
) -> Result<(), OtpError> {
    let mut tx = st.pool.begin().await?;
    if !otp::redeem(&mut tx, phone, Purpose::Join, proof).await? {
        return Err(OtpError::NoProof);
    }
    tx.commit().await?;
    Ok(())
}

/// `GET /join/status/{token}`: 待审核, 成功加入 or 已拒绝 (with the reason).
pub(crate) async fn status(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: campus_web::Lang,
    Path(token): Path<String>,
) -> Response {
    if !plausible_token(&token) {
        return campus_web::not_found_page(&school.name);
    }
    let found = async {
        let mut tx = state.db.school(&school).await?;
        let r = requests::by_status_token(&mut tx, &token).await?;
        tx.commit().await?;
        Ok::<_, Failure>(r)
    }
    .await;
    let r = match found {
        Ok(Some(r)) => r,
        Ok(None) => return campus_web::not_found_page(&school.name),
        Err(f) => return f.page(&school.name),
    };
    let kind = Kind::parse(&r.kind).unwrap_or(Kind::Parent);
    let body = StatusPage {
        lang,
        school_name: &school.name,
        just_submitted: false,
        name: &r.name,
        kind: kind.name(lang),
        status: &r.status,
        status_name: super::status_name(&r.status, lang),
        reason: r.reject_reason.as_deref(),
        submitted_at: super::local_time(r.created_at),
        status_url: format!("/join/status/{token}"),
    }
    .render()
    .unwrap_or_default();
    page(
        &school,
        lang.pick("申请进度", "Application status"),
        &body,
        campus_web::Who::Nobody,
        lang,
        StatusCode::OK,
    )
}
