//! The pages and JSON views of user and role management.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use campus_tenant::{Site, Tenant};
use campus_web::Lang;

use super::form::{self, Fields};
use super::store::{self, MemberFilter, MembershipChange};
use crate::invitations::{self, InviteError, NewInvitation};
use crate::login::Login;
use crate::permission::{self, Permission, BUILTIN_ROLES};
use crate::{AuthRejection, CurrentUser, IdentityState};

/// A failed request: status and a message in both languages.
struct Refusal(StatusCode, String);

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "user administration failed");
    AuthRejection::Unavailable.into_response()
}

fn school_of(site: &Site) -> Option<&Tenant> {
    match site {
        Site::School(t) => Some(t),
        _ => None,
    }
}

/// Why an admin page is refused before anything is looked up.
enum NotAdmin {
    Auth(AuthRejection),
    NotSchool,
}

impl IntoResponse for NotAdmin {
    fn into_response(self) -> Response {
        match self {
            Self::Auth(r) => r.into_response(),
            Self::NotSchool => campus_web::not_found_page(campus_web::PLATFORM_NAME),
        }
    }
}

/// The school and the admin acting in it, or why they are refused.
fn admin_here<'a>(site: &'a Site, user: &CurrentUser) -> Result<&'a Tenant, NotAdmin> {
    user.require(Permission::ManageUsers)
        .map_err(NotAdmin::Auth)?;
    school_of(site).ok_or(NotAdmin::NotSchool)
}

fn page(
    lang: Lang,
    school: &Tenant,
    user: &CurrentUser,
    title: &str,
    body: &str,
    status: StatusCode,
) -> Response {
    campus_web::Shell {
        title,
        site_name: &school.name,
        badge_url: Some("/badge.svg"),
        theme_color: None,
        body,
        who: campus_web::Who::User(user.badge()),
        lang,
    }
    .into_page(status)
}

fn forbidden_csrf() -> Response {
    campus_web::message_page(
        StatusCode::FORBIDDEN,
        campus_web::PLATFORM_NAME,
        ("页面已过期", "请返回上一页刷新后重试。"),
        (
            "The form expired",
            "Go back, reload the page and try again.",
        ),
    )
}

struct RoleOption {
    code: String,
    name: String,
    checked: bool,
}

/// Built-in roles, then the school's custom roles, marked when held.
fn role_options(custom: &[store::CustomRole], lang: Lang, held: &[String]) -> Vec<RoleOption> {
    let mut options: Vec<RoleOption> = BUILTIN_ROLES
        .iter()
        .map(|r| RoleOption {
            code: r.code.to_owned(),
            name: lang.pick(r.name_zh, r.name_en).to_owned(),
            checked: held.iter().any(|h| h == r.code),
        })
        .collect();
    options.extend(custom.iter().map(|r| RoleOption {
        checked: held.contains(&r.code),
        code: r.code.clone(),
        name: r.name.clone(),
    }));
    options
}

/// The submitted roles if every one exists here and there is at least one.
async fn valid_roles(
    st: &IdentityState,
    school: &Tenant,
    roles: Vec<String>,
) -> Result<Vec<String>, Refusal> {
    if roles.is_empty() {
        return Err(Refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            "请至少选择一个角色。(Choose at least one role.)".into(),
        ));
    }
    let custom = store::custom_roles(&st.pool, school.id.0)
        .await
        .map_err(|e| Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let mut out = Vec::new();
    for r in roles {
        if permission::builtin(&r).is_none() && !custom.iter().any(|c| c.code == r) {
            return Err(Refusal(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("角色“{r}”不存在。(There is no role {r}.)"),
            ));
        }
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

struct MemberRow {
    account_id: i64,
    name: String,
    login: String,
    roles: String,
    status: &'static str,
    active: bool,
    validity: String,
    last_login: String,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage<'a> {
    lang: Lang,
    csrf: &'a str,
    rows: Vec<MemberRow>,
    total: i64,
    filter: &'a MemberFilter,
    prev_page: Option<u32>,
    next_page: Option<u32>,
    role_options: Vec<RoleOption>,
    error: Option<String>,
    added: Option<String>,
    invitations: Vec<InvitationRow>,
}

struct InvitationRow {
    id: i64,
    name: String,
    login: String,
    roles: String,
    expires: String,
}

fn validity(from: Option<chrono::NaiveDate>, until: Option<chrono::NaiveDate>) -> String {
    match (from, until) {
        (None, None) => "—".into(),
        (f, u) => format!(
            "{} ~ {}",
            f.map(|d| d.to_string()).unwrap_or_default(),
            u.map(|d| d.to_string()).unwrap_or_default()
        ),
    }
}

/// What the users page reports after a submission.
struct Outcome {
    status: StatusCode,
    error: Option<String>,
    added: Option<String>,
}

impl Outcome {
    const PLAIN: Self = Self {
        status: StatusCode::OK,
        error: None,
        added: None,
    };
}

async fn render_users(
    st: &IdentityState,
    school: &Tenant,
    user: &CurrentUser,
    lang: Lang,
    filter: &MemberFilter,
    outcome: Outcome,
) -> Response {
    let Outcome {
        status,
        error,
        added,
    } = outcome;
    let (members, total) = match store::members(&st.pool, school.id.0, filter).await {
        Ok(m) => m,
        Err(e) => return unavailable(e),
    };
    let custom = match store::custom_roles(&st.pool, school.id.0).await {
        Ok(c) => c,
        Err(e) => return unavailable(e),
    };
    let role_name = |code: &String| -> String {
        permission::builtin(code)
            .map(|b| lang.pick(b.name_zh, b.name_en).to_owned())
            .or_else(|| {
                custom
                    .iter()
                    .find(|c| &c.code == code)
                    .map(|c| c.name.clone())
            })
            .unwrap_or_else(|| code.clone())
    };
    let today = chrono::Utc::now().date_naive();
    let rows = members
        .into_iter()
        .map(|m| {
            let expired =
                m.valid_until.is_some_and(|u| u < today) || m.valid_from.is_some_and(|f| f > today);
            let active = m.status == "active" && m.account_status == "active" && !expired;
            MemberRow {
                account_id: m.account_id,
                login: m.phone.or(m.username).unwrap_or_default(),
                name: m.display_name,
                roles: m.roles.iter().map(role_name).collect::<Vec<_>>().join("、"),
                status: if m.status != "active" || m.account_status != "active" {
                    lang.pick("已停用", "disabled")
                } else if expired {
                    lang.pick("不在有效期", "outside validity")
                } else {
                    lang.pick("正常", "active")
                },
                active,
                validity: validity(m.valid_from, m.valid_until),
                last_login: m
                    .last_login_at
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_else(|| "—".into()),
            }
        })
        .collect();
    let invitations = match invitations::pending_in(&st.pool, school.id.0).await {
        Ok(found) => found,
        Err(e) => return unavailable(e),
    };
    let invitations = invitations
        .into_iter()
        .map(|i| InvitationRow {
            id: i.id,
            login: i.phone.clone().or(i.username.clone()).unwrap_or_default(),
            roles: i.roles.iter().map(role_name).collect::<Vec<_>>().join("、"),
            expires: if i.expires_at <= chrono::Utc::now() {
                lang.pick("已过期", "expired").to_owned()
            } else {
                i.expires_at.format("%Y-%m-%d").to_string()
            },
            name: i.display_name,
        })
        .collect();
    let role_options = role_options(&custom, lang, &[]);
    let pages = (total + store::PAGE_SIZE - 1) / store::PAGE_SIZE;
    let body = UsersPage {
        lang,
        csrf: &user.csrf_token,
        rows,
        total,
        filter,
        prev_page: filter.page.checked_sub(1),
        next_page: (i64::from(filter.page) + 1 < pages).then_some(filter.page + 1),
        role_options,
        error,
        added,
        invitations,
    }
    .render()
    .unwrap_or_default();
    page(
        lang,
        school,
        user,
        lang.pick("用户管理", "Users"),
        &body,
        status,
    )
}

/// `GET /admin/users`: the school's members, searchable by name, phone or role.
pub(super) async fn users(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: Lang,
    user: CurrentUser,
    Query(filter): Query<MemberFilter>,
) -> Response {
    let school = match admin_here(&site, &user) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    render_users(&st, school, &user, lang, &filter, Outcome::PLAIN).await
}

/// `GET /api/v1/users`: the same list as JSON.
pub(super) async fn users_json(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    user: CurrentUser,
    Query(filter): Query<MemberFilter>,
) -> Response {
    let school = match admin_here(&site, &user) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    match store::members(&st.pool, school.id.0, &filter).await {
        Ok((members, total)) => {
            Json(serde_json::json!({"members": members, "total": total})).into_response()
        }
        Err(e) => unavailable(e),
    }
}

/// `POST /admin/users`: invites a person to the school. Nobody chooses a password for
/// somebody else: the person accepts with their own (see [`crate::invitations`]).
pub(super) async fn add_user(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: Lang,
    user: CurrentUser,
    body: Bytes,
) -> Response {
    let school = match admin_here(&site, &user) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let f = Fields::parse(&body);
    if !f.csrf_ok(&user) {
        return forbidden_csrf();
    }
    let asked = Invite {
        display_name: f.get("display_name").to_owned(),
        login: f.get("login").to_owned(),
        roles: f.all("role"),
        valid_until: f.get("valid_until").to_owned(),
    };
    let outcome = match invite_member(&st, school, &user, lang, &asked).await {
        Ok((_, message)) => Outcome {
            added: Some(message),
            ..Outcome::PLAIN
        },
        Err(Refusal(status, msg)) => Outcome {
            status,
            error: Some(msg),
            added: None,
        },
    };
    render_users(&st, school, &user, lang, &MemberFilter::default(), outcome).await
}

/// An invitation as the admin asked for it (form or JSON).
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct Invite {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    valid_until: String,
}

/// Checks and stores the invitation, then texts its link (a phone) — or leaves it for the
/// account's owner to accept signed in (a username). Returns its id and what to tell the
/// admin.
async fn invite_member(
    st: &IdentityState,
    school: &Tenant,
    user: &CurrentUser,
    lang: Lang,
    asked: &Invite,
) -> Result<(i64, String), Refusal> {
    let unprocessable = |m: String| Refusal(StatusCode::UNPROCESSABLE_ENTITY, m);
    let down = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "inviting a member failed");
        Refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "服务暂时不可用，请稍后重试。(Temporarily unavailable.)".into(),
        )
    };
    let name = asked.display_name.trim();
    if name.is_empty() || name.chars().count() > 50 {
        return Err(unprocessable(
            "请填写姓名（最多 50 字）。(Enter a name of up to 50 characters.)".into(),
        ));
    }
    let login = Login::parse(&asked.login).map_err(|e| unprocessable(e.to_string()))?;
    let roles = valid_roles(st, school, asked.roles.clone()).await?;
    let valid_until = form::date(asked.valid_until.trim()).map_err(|()| {
        unprocessable("有效期日期格式应为 2026-09-01。(Dates look like 2026-09-01.)".into())
    })?;
    let (phone, account_id) = match &login {
        Login::Phone(p) => {
            if st.sms.is_none() {
                return Err(Refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    crate::otp::OtpError::NoChannel.message(),
                ));
            }
            (Some(p.as_str()), None)
        }
        Login::Username(_) => {
            let mut conn = st.pool.acquire().await.map_err(|e| down(&e))?;
            let id = crate::account::id_by_login(&mut conn, &login)
                .await
                .map_err(|e| down(&e))?;
            match id {
                Some(id) => (None, Some(id)),
                None => {
                    return Err(unprocessable(
                        "没有使用此用户名的账号。新成员请填写其手机号，平台会发短信邀请。(No account has this username; invite a new member by mobile number.)".into(),
                    ))
                }
            }
        }
    };
    let new = NewInvitation {
        phone,
        account_id,
        display_name: name,
        roles: &roles,
        staff_id: None,
        guardian_id: None,
        valid_until,
    };
    let (id, token) = match invitations::create(&st.pool, school.id.0, user.account_id, &new).await
    {
        Ok(created) => created,
        Err(e @ (InviteError::AlreadyMember | InviteError::AlreadyInvited)) => {
            return Err(Refusal(StatusCode::CONFLICT, e.to_string()))
        }
        Err(InviteError::Db(e)) => return Err(down(&e)),
    };
    let Some(phone) = phone else {
        return Ok((
            id,
            format!(
                "{name}：{}",
                lang.pick(
                    "已邀请该账号，对方登录后在「我的身份」页面接受即可加入。",
                    "invited; the account's owner accepts on their My identities page."
                )
            ),
        ));
    };
    let role_text = crate::permission::role_names(&roles);
    if let Err(e) = invitations::send_sms(st, school, id, phone, &token, &role_text).await {
        if let Err(d) = invitations::discard(&st.pool, school.id.0, id).await {
            tracing::error!(error = %d, "could not discard an unsent invitation");
        }
        return Err(Refusal(e.status(), e.message()));
    }
    Ok((
        id,
        format!(
            "{name}：{} {}",
            lang.pick("邀请短信已发送至", "an invitation was texted to"),
            crate::otp::mask(phone)
        ),
    ))
}

/// `POST /api/v1/users` (JSON, `X-CSRF-Token`): the same invitation as the page's form.
pub(super) async fn invite_json(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: Lang,
    user: CurrentUser,
    headers: axum::http::HeaderMap,
    Json(asked): Json<Invite>,
) -> Response {
    let school = match admin_here(&site, &user) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if sent.is_empty() || sent != user.csrf_token {
        return json_refusal(Refusal(
            StatusCode::FORBIDDEN,
            "缺少或错误的 CSRF 令牌。(Missing or wrong X-CSRF-Token.)".into(),
        ));
    }
    match invite_member(&st, school, &user, lang, &asked).await {
        Ok((id, message)) => (
            StatusCode::CREATED,
            Json(serde_json::json!({"invitation_id": id, "status": "invited", "message": message})),
        )
            .into_response(),
        Err(r) => json_refusal(r),
    }
}

fn json_refusal(Refusal(status, message): Refusal) -> Response {
    let code = match status {
        StatusCode::CONFLICT => "conflict",
        StatusCode::FORBIDDEN => "csrf",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "invalid",
    };
    (
        status,
        Json(serde_json::json!({"code": code, "message": message})),
    )
        .into_response()
}

/// `GET /api/v1/invitations`: the school's pending invitations.
pub(super) async fn invitations_json(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    user: CurrentUser,
) -> Response {
    let school = match admin_here(&site, &user) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    match invitations::pending_in(&st.pool, school.id.0).await {
        Ok(found) => Json(serde_json::json!({"invitations": found})).into_response(),
        Err(e) => unavailable(e),
    }
}

/// `POST /admin/invitations/{id}/cancel`: withdraws one of this school's pending
/// invitations (another school's id names nothing here: 404).
pub(super) async fn cancel_invitation(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    user: CurrentUser,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let school = match admin_here(&site, &user) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if !Fields::parse(&body).csrf_ok(&user) {
        return forbidden_csrf();
    }
    match invitations::cancel(&st.pool, school.id.0, id, user.account_id).await {
        Ok(true) => Redirect::to("/admin/users").into_response(),
        Ok(false) => campus_web::message_page(
            StatusCode::NOT_FOUND,
            &school.name,
            ("找不到此邀请", "本校没有这项待接受的邀请。"),
            (
                "No such invitation",
                "This school has no such pending invitation.",
            ),
        ),
        Err(e) => unavailable(e),
    }
}

#[derive(Template)]
#[template(path = "admin_user_edit.html")]
struct EditPage<'a> {
    lang: Lang,
    csrf: &'a str,
    member: &'a store::Member,
    role_options: Vec<RoleOption>,
    error: Option<String>,
}

async fn render_edit(
    st: &IdentityState,
    school: &Tenant,
    user: &CurrentUser,
    lang: Lang,
    member: &store::Member,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let role_options = match store::custom_roles(&st.pool, school.id.0).await {
        Ok(custom) => role_options(&custom, lang, &member.roles),
        Err(e) => return unavailable(e),
    };
    let body = EditPage {
        lang,
        csrf: &user.csrf_token,
        member,
        role_options,
        error,
    }
    .render()
    .unwrap_or_default();
    page(
        lang,
        school,
        user,
        lang.pick("编辑用户", "Edit user"),
        &body,
        status,
    )
}

fn no_such_member(school: &Tenant) -> Response {
    campus_web::message_page(
        StatusCode::NOT_FOUND,
        &school.name,
        ("找不到此用户", "本校没有这位成员。"),
        (
            "No such member",
            "This person is not a member of this school.",
        ),
    )
}

/// `GET /admin/users/{account_id}`: roles, status and validity of one member.
pub(super) async fn edit_user(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: Lang,
    user: CurrentUser,
    Path(account_id): Path<i64>,
) -> Response {
    let school = match admin_here(&site, &user) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    match store::member(&st.pool, school.id.0, account_id).await {
        Ok(Some(m)) => render_edit(&st, school, &user, lang, &m, StatusCode::OK, None).await,
        Ok(None) => no_such_member(school),
        Err(e) => unavailable(e),
    }
}

/// `POST /admin/users/{account_id}`: saves roles, status and validity (audited).
pub(super) async fn save_user(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: Lang,
    user: CurrentUser,
    Path(account_id): Path<i64>,
    body: Bytes,
) -> Response {
    let school = match admin_here(&site, &user) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let member = match store::member(&st.pool, school.id.0, account_id).await {
        Ok(Some(m)) => m,
        Ok(None) => return no_such_member(school),
        Err(e) => return unavailable(e),
    };
    let f = Fields::parse(&body);
    if !f.csrf_ok(&user) {
        return forbidden_csrf();
    }
    match change_membership(&st, school, &user, &member, &f).await {
        Ok(()) => Redirect::to("/admin/users").into_response(),
        Err(Refusal(status, msg)) => {
            render_edit(&st, school, &user, lang, &member, status, Some(msg)).await
        }
    }
}

async fn change_membership(
    st: &IdentityState,
    school: &Tenant,
    user: &CurrentUser,
    member: &store::Member,
    f: &Fields,
) -> Result<(), Refusal> {
    let unprocessable = |m: &str| Refusal(StatusCode::UNPROCESSABLE_ENTITY, m.to_owned());
    let roles = valid_roles(st, school, f.all("role")).await?;
    let status = match f.get("status") {
        "active" | "disabled" => f.get("status").to_owned(),
        _ => {
            return Err(unprocessable(
                "状态只能是正常或停用。(Status is active or disabled.)",
            ))
        }
    };
    const BAD_DATE: &str = "日期格式应为 2026-09-01。(Dates look like 2026-09-01.)";
    let valid_from = form::date(f.get("valid_from")).map_err(|()| unprocessable(BAD_DATE))?;
    let valid_until = form::date(f.get("valid_until")).map_err(|()| unprocessable(BAD_DATE))?;
    if let (Some(a), Some(b)) = (valid_from, valid_until) {
        if a > b {
            return Err(unprocessable(
                "有效期开始日期不能晚于结束日期。(The validity starts after it ends.)",
            ));
        }
    }
    let after = MembershipChange {
        roles,
        status,
        valid_from,
        valid_until,
    };
    let before = MembershipChange {
        roles: member.roles.clone(),
        status: member.status.clone(),
        valid_from: member.valid_from,
        valid_until: member.valid_until,
    };
    if after == before {
        return Ok(());
    }
    let stays_admin = after.status == "active"
        && after.roles.iter().any(|r| r == "school_admin")
        && after
            .valid_until
            .is_none_or(|u| u >= chrono::Utc::now().date_naive());
    if !stays_admin && member.roles.iter().any(|r| r == "school_admin") {
        if member.account_id == user.account_id {
            return Err(Refusal(
                StatusCode::CONFLICT,
                "不能停用自己或取消自己的管理员角色，请让另一位管理员操作。(You cannot remove your own admin rights; ask another admin.)".into(),
            ));
        }
        let others = store::other_active_admins(&st.pool, school.id.0, member.account_id)
            .await
            .map_err(|e| Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        if others == 0 {
            return Err(Refusal(
                StatusCode::CONFLICT,
                "学校至少需要一位在用的管理员。(The school needs at least one active admin.)"
                    .into(),
            ));
        }
    }
    store::update_membership(
        &st.pool,
        school.id.0,
        member.account_id,
        user.account_id,
        &before,
        &after,
    )
    .await
    .map_err(|e| Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    st.members.forget(member.account_id, school.id.0).await;
    Ok(())
}

struct PermissionOption {
    code: &'static str,
    name: &'static str,
    checked: bool,
}

struct RoleRow {
    code: String,
    name: String,
    builtin: bool,
    holders: i64,
    permissions: String,
    options: Vec<PermissionOption>,
}

#[derive(Template)]
#[template(path = "admin_roles.html")]
struct RolesPage<'a> {
    lang: Lang,
    csrf: &'a str,
    roles: Vec<RoleRow>,
    new_options: Vec<PermissionOption>,
    error: Option<String>,
}

fn permission_options(lang: Lang, held: &[String]) -> Vec<PermissionOption> {
    Permission::ALL
        .into_iter()
        .map(|p| {
            let (zh, en) = p.names();
            PermissionOption {
                code: p.code(),
                name: lang.pick(zh, en),
                checked: held.iter().any(|h| h == p.code()),
            }
        })
        .collect()
}

fn permission_list(lang: Lang, codes: &[String]) -> String {
    codes
        .iter()
        .filter_map(|c| Permission::from_code(c))
        .map(|p| {
            let (zh, en) = p.names();
            lang.pick(zh, en)
        })
        .collect::<Vec<_>>()
        .join(lang.pick("、", ", "))
}

async fn render_roles(
    st: &IdentityState,
    school: &Tenant,
    user: &CurrentUser,
    lang: Lang,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let custom = match store::custom_roles(&st.pool, school.id.0).await {
        Ok(c) => c,
        Err(e) => return unavailable(e),
    };
    let mut roles: Vec<RoleRow> = BUILTIN_ROLES
        .iter()
        .map(|r| {
            let codes: Vec<String> = r.permissions.iter().map(|p| p.code().to_owned()).collect();
            RoleRow {
                code: r.code.to_owned(),
                name: lang.pick(r.name_zh, r.name_en).to_owned(),
                builtin: true,
                holders: 0,
                permissions: permission_list(lang, &codes),
                options: Vec::new(),
            }
        })
        .collect();
    roles.extend(custom.into_iter().map(|r| RoleRow {
        permissions: permission_list(lang, &r.permissions),
        options: permission_options(lang, &r.permissions),
        code: r.code,
        name: r.name,
        builtin: false,
        holders: r.holders,
    }));
    let body = RolesPage {
        lang,
        csrf: &user.csrf_token,
        roles,
        new_options: permission_options(lang, &[]),
        error,
    }
    .render()
    .unwrap_or_default();
    page(
        lang,
        school,
        user,
        lang.pick("角色与权限", "Roles and permissions"),
        &body,
        status,
    )
}

/// `GET /admin/roles`: built-in roles and the school's own, with their permissions.
pub(super) async fn roles(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    match admin_here(&site, &user) {
        Ok(school) => render_roles(&st, school, &user, lang, StatusCode::OK, None).await,
        Err(r) => r.into_response(),
    }
}

/// `GET /api/v1/roles`.
pub(super) async fn roles_json(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    user: CurrentUser,
) -> Response {
    let school = match admin_here(&site, &user) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let builtin: Vec<_> = BUILTIN_ROLES
        .iter()
        .map(|r| {
            serde_json::json!({
                "code": r.code, "name": r.name_zh, "name_en": r.name_en,
                "permissions": r.permissions.iter().map(|p| p.code()).collect::<Vec<_>>(),
            })
        })
        .collect();
    match store::custom_roles(&st.pool, school.id.0).await {
        Ok(custom) => {
            Json(serde_json::json!({"builtin": builtin, "custom": custom})).into_response()
        }
        Err(e) => unavailable(e),
    }
}

/// The role name and permissions of a role form.
fn role_fields(f: &Fields) -> Result<(String, Vec<Permission>), Refusal> {
    let name = f.get("name");
    if name.is_empty() || name.chars().count() > 30 {
        return Err(Refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            "请填写角色名称（最多 30 字）。(Enter a role name of up to 30 characters.)".into(),
        ));
    }
    let mut permissions = Vec::new();
    for code in f.all("permission") {
        let p = Permission::from_code(&code).ok_or_else(|| {
            Refusal(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("没有“{code}”这项权限。(Unknown permission {code}.)"),
            )
        })?;
        if !permissions.contains(&p) {
            permissions.push(p);
        }
    }
    if permissions.is_empty() {
        return Err(Refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            "请至少选择一项权限。(Choose at least one permission.)".into(),
        ));
    }
    Ok((name.to_owned(), permissions))
}

async fn save_role(
    st: &IdentityState,
    site: &Site,
    lang: Lang,
    user: &CurrentUser,
    body: &Bytes,
    code: Option<String>,
) -> Response {
    let school = match admin_here(site, user) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let f = Fields::parse(body);
    if !f.csrf_ok(user) {
        return forbidden_csrf();
    }
    let (name, permissions) = match role_fields(&f) {
        Ok(v) => v,
        Err(Refusal(status, msg)) => {
            return render_roles(st, school, user, lang, status, Some(msg)).await
        }
    };
    let custom = match store::custom_roles(&st.pool, school.id.0).await {
        Ok(c) => c,
        Err(e) => return unavailable(e),
    };
    if custom
        .iter()
        .any(|r| r.name == name && Some(&r.code) != code.as_ref())
        || BUILTIN_ROLES
            .iter()
            .any(|r| r.name_zh == name || r.name_en == name)
    {
        return render_roles(
            st,
            school,
            user,
            lang,
            StatusCode::CONFLICT,
            Some(format!(
                "已有名为“{name}”的角色。(A role named {name} exists.)"
            )),
        )
        .await;
    }
    let code = match code {
        Some(c) if custom.iter().any(|r| r.code == c) => c,
        Some(_) => {
            return campus_web::message_page(
                StatusCode::NOT_FOUND,
                &school.name,
                ("找不到此角色", "本校没有这个自定义角色。"),
                ("No such role", "This school has no such custom role."),
            )
        }
        None => format!("x_{}", &crate::session::random_hex()[..10]),
    };
    if let Err(e) = store::save_role(
        &st.pool,
        school.id.0,
        user.account_id,
        &code,
        &name,
        &permissions,
    )
    .await
    {
        return unavailable(e);
    }
    st.members.forget_all();
    Redirect::to("/admin/roles").into_response()
}

/// `POST /admin/roles`: a new custom role.
pub(super) async fn create_role(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: Lang,
    user: CurrentUser,
    body: Bytes,
) -> Response {
    save_role(&st, &site, lang, &user, &body, None).await
}

/// `POST /admin/roles/{code}`: renames a custom role or changes its permissions.
pub(super) async fn update_role(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: Lang,
    user: CurrentUser,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    save_role(&st, &site, lang, &user, &body, Some(code)).await
}

/// `POST /admin/roles/{code}/delete`: removes a custom role nobody holds.
pub(super) async fn delete_role(
    State(st): State<IdentityState>,
    Extension(site): Extension<Site>,
    lang: Lang,
    user: CurrentUser,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    let school = match admin_here(&site, &user) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if !Fields::parse(&body).csrf_ok(&user) {
        return forbidden_csrf();
    }
    match store::delete_role(&st.pool, school.id.0, user.account_id, &code).await {
        Ok(true) => {
            st.members.forget_all();
            Redirect::to("/admin/roles").into_response()
        }
        Ok(false) => {
            render_roles(
                &st,
                school,
                &user,
                lang,
                StatusCode::CONFLICT,
                Some("该角色仍有成员使用或不存在，请先在用户管理中取消。(The role is still held, or does not exist.)".into()),
            )
            .await
        }
        Err(e) => unavailable(e),
    }
}
