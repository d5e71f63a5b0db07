//! The school's side of notification delivery: the admin page (channels on or off, quiet
//! hours, the school's own SMS/WeChat provider, templates, queue figures, dead deliveries
//! with retry) and each person's choice of channels per kind of message. JSON mirrors of
//! both under `/api/v1/notify/…`.

use askama::Template;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use campus_identity::{CurrentUser, Permission};
use campus_notify::admin::{self, Invalid, SettingsChange};
use campus_notify::{Category, Channel, Language, Recipient};
use campus_tenant::{CurrentSchool, Tenant};
use campus_web::Lang;
use serde::Deserialize;

use crate::attendance::{check_csrf, refuse, Refusal};
use crate::ui::page;
use crate::SchoolState;

pub(crate) fn routes() -> Router<SchoolState> {
    Router::new()
        .route("/admin/notify", get(admin_page).post(save_settings))
        .route("/admin/notify/templates", post(save_template))
        .route("/admin/notify/retry", post(retry))
        .route(
            "/settings/notifications",
            get(preferences_page).post(save_preferences),
        )
        .route(
            "/api/v1/notify/settings",
            get(settings_json).put(put_settings_json),
        )
        .route("/api/v1/notify/queue", get(queue_json))
        .route("/api/v1/notify/dead/retry", post(retry_json))
        .route(
            "/api/v1/notify/preferences",
            get(preferences_json).put(put_preferences_json),
        )
}

fn admin_only(user: &CurrentUser) -> Result<(), Refusal> {
    if user.can(Permission::ManageUsers) {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::FORBIDDEN,
            "只有学校管理员可以设置消息推送。",
            "Only school admins configure message delivery.",
        ))
    }
}

/// The person's inbox identity; a member with neither (e.g. an admin account with no
/// staff record) has no channels to choose.
fn recipient(user: &CurrentUser) -> Result<Recipient, Refusal> {
    Recipient::all_of(user.staff_id, user.guardian_id)
        .into_iter()
        .next()
        .ok_or_else(|| {
            refuse(
                StatusCode::NOT_FOUND,
                "您的账号没有关联教职工或家长信息，无需设置推送方式。",
                "Your account is linked to no staff or guardian record; there is nothing to set.",
            )
        })
}

fn invalid_page(school: &Tenant, e: &Invalid) -> Response {
    campus_web::message_page(
        StatusCode::UNPROCESSABLE_ENTITY,
        &school.name,
        ("填写有误", &e.0),
        ("Invalid input", &e.1),
    )
}

fn invalid_json(e: &Invalid) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(serde_json::json!({"error": "invalid", "message": e.0, "message_en": e.1})),
    )
        .into_response()
}

struct DeadRow {
    id: i64,
    who: String,
    channel: &'static str,
    address: String,
    title: String,
    attempts: i32,
    error: String,
}

struct TemplateRow {
    category: &'static str,
    category_name: &'static str,
    channel: &'static str,
    channel_name: &'static str,
    subject: String,
    body: String,
}

#[derive(Template)]
#[template(path = "notify_admin.html")]
struct AdminPage<'a> {
    lang: Lang,
    csrf: &'a str,
    s: admin::Settings,
    figures: admin::QueueFigures,
    dead: Vec<DeadRow>,
    templates: Vec<TemplateRow>,
    sealing: bool,
    saved: bool,
}

async fn render_admin(
    state: &SchoolState,
    school: &Tenant,
    lang: Lang,
    user: &CurrentUser,
    saved: bool,
) -> Result<Response, Refusal> {
    let mut tx = state.db.school(school).await?;
    let s = admin::settings(&mut tx).await?;
    let figures = admin::figures(&mut tx).await?;
    let dead = admin::dead(&mut tx, 100).await?;
    let stored = admin::templates(&mut tx).await?;
    tx.commit().await?;
    let mut templates = Vec::new();
    for category in Category::ALL {
        for channel in Channel::ALL {
            let t = stored
                .iter()
                .find(|t| t.category == category && t.channel == channel);
            templates.push(TemplateRow {
                category: category.code(),
                category_name: lang.pick(category.names().0, category.names().1),
                channel: channel.code(),
                channel_name: lang.pick(channel.names().0, channel.names().1),
                subject: t.map(|t| t.subject.clone()).unwrap_or_default(),
                body: t.map(|t| t.body.clone()).unwrap_or_default(),
            });
        }
    }
    let dead = dead
        .into_iter()
        .map(|d| DeadRow {
            id: d.id,
            who: d
                .recipient_name
                .unwrap_or_else(|| format!("{} {}", d.recipient_kind, d.recipient_id)),
            channel: Channel::parse(&d.channel)
                .map(|c| lang.pick(c.names().0, c.names().1))
                .unwrap_or(""),
            address: mask(&d.address),
            title: d.title,
            attempts: d.attempts,
            error: d.last_error.unwrap_or_default(),
        })
        .collect();
    let body = AdminPage {
        lang,
        csrf: &user.csrf_token,
        s,
        figures,
        dead,
        templates,
        sealing: state.sealing.is_some(),
        saved,
    }
    .render()
    .unwrap_or_default();
    Ok(page(
        lang,
        school,
        user,
        lang.pick("消息推送设置", "Message delivery"),
        &body,
    ))
}

/// Phone numbers and addresses are shown masked on the admin page.
fn mask(address: &str) -> String {
    match address.split_once('@') {
        Some((name, domain)) => {
            let first: String = name.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => crate::pupils::mask(address),
    }
}

/// `GET /admin/notify`.
pub(crate) async fn admin_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    let result = async {
        admin_only(&user)?;
        render_admin(&state, &school, lang, &user, false).await
    }
    .await;
    result.unwrap_or_else(|r| r.page(&school))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SettingsForm {
    csrf: Option<String>,
    email_enabled: Option<String>,
    sms_enabled: Option<String>,
    wechat_enabled: Option<String>,
    #[serde(default)]
    quiet_start: String,
    #[serde(default)]
    quiet_end: String,
    #[serde(default)]
    webhook_url: String,
    #[serde(default)]
    webhook_secret: String,
}

/// `POST /admin/notify`.
pub(crate) async fn save_settings(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Form(form): Form<SettingsForm>,
) -> Response {
    let change = SettingsChange {
        email_enabled: form.email_enabled.is_some(),
        sms_enabled: form.sms_enabled.is_some(),
        wechat_enabled: form.wechat_enabled.is_some(),
        quiet_start: form.quiet_start.clone(),
        quiet_end: form.quiet_end.clone(),
        webhook_url: form.webhook_url.clone(),
        webhook_secret: form.webhook_secret.clone(),
    };
    let result = async {
        admin_only(&user)?;
        check_csrf(&user, form.csrf.as_deref())?;
        match apply_settings(&state, &school, &user, &change).await? {
            Ok(()) => Ok(Ok(render_admin(&state, &school, lang, &user, true).await?)),
            Err(e) => Ok(Err(e)),
        }
    }
    .await;
    let result: Result<Result<Response, Invalid>, Refusal> = result;
    match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => invalid_page(&school, &e),
        Err(r) => r.page(&school),
    }
}

/// Saves the settings and their audit record in one transaction.
async fn apply_settings(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    change: &SettingsChange,
) -> Result<Result<(), Invalid>, Refusal> {
    // Resolved before the transaction begins: a slow name server holds no connection.
    if let Err(e) = admin::check_provider(&state.webhook_guard, &change.webhook_url).await {
        return Ok(Err(e));
    }
    let mut tx = state.db.school(school).await?;
    if let Err(e) = admin::save_settings(&mut tx, change, state.sealing.as_ref()).await? {
        return Ok(Err(e));
    }
    crate::audit::record(
        &mut tx,
        user,
        crate::audit::Action::NotifySettingsChanged,
        Some("notify_settings"),
        serde_json::json!({
            "email": change.email_enabled, "sms": change.sms_enabled, "wechat": change.wechat_enabled,
            "quiet": [change.quiet_start, change.quiet_end],
            "own_provider": !change.webhook_url.trim().is_empty(),
            "secret_changed": !change.webhook_secret.trim().is_empty(),
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(()))
}

#[derive(Debug, Deserialize)]
pub(crate) struct TemplateForm {
    csrf: Option<String>,
    category: String,
    channel: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
}

/// `POST /admin/notify/templates`: saves one template (an empty body restores the
/// platform's wording).
pub(crate) async fn save_template(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Form(form): Form<TemplateForm>,
) -> Response {
    let result = async {
        admin_only(&user)?;
        check_csrf(&user, form.csrf.as_deref())?;
        let (Some(category), Some(channel)) = (Category::parse(&form.category), Channel::parse(&form.channel)) else {
            return Err(refuse(StatusCode::UNPROCESSABLE_ENTITY, "消息类型或渠道无效。", "Unknown kind of message or channel."));
        };
        let mut tx = state.db.school(&school).await?;
        if let Err(e) = admin::save_template(&mut tx, category, channel, &form.subject, &form.body).await? {
            return Ok(Err(e));
        }
        crate::audit::record(
            &mut tx,
            &user,
            crate::audit::Action::NotifySettingsChanged,
            Some("notify_templates"),
            serde_json::json!({"category": category.code(), "channel": channel.code(), "body": form.body.trim()}),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }
    .await;
    match result {
        Ok(Ok(())) => Redirect::to("/admin/notify#templates").into_response(),
        Ok(Err(e)) => invalid_page(&school, &e),
        Err(r) => r.page(&school),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RetryForm {
    csrf: Option<String>,
    /// A delivery id, or empty for every dead delivery.
    #[serde(default)]
    id: String,
}

async fn do_retry(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    ids: Option<Vec<i64>>,
) -> Result<u64, Refusal> {
    let mut tx = state.db.school(school).await?;
    let n = admin::retry_dead(&mut tx, ids.as_deref()).await?;
    crate::audit::record(
        &mut tx,
        user,
        crate::audit::Action::NotifyRetried,
        None,
        serde_json::json!({"ids": ids, "count": n}),
    )
    .await?;
    tx.commit().await?;
    Ok(n)
}

/// `POST /admin/notify/retry`.
pub(crate) async fn retry(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Form(form): Form<RetryForm>,
) -> Response {
    let result = async {
        admin_only(&user)?;
        check_csrf(&user, form.csrf.as_deref())?;
        let ids = match form.id.trim() {
            "" => None,
            id => Some(vec![id.parse::<i64>().map_err(|_| {
                refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "投递编号无效。",
                    "Invalid delivery id.",
                )
            })?]),
        };
        let n = do_retry(&state, &school, &user, ids.clone()).await?;
        if ids.is_some() && n == 0 {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                "找不到这条失败的投递（可能已重试）。",
                "No such dead delivery (it may have been retried).",
            ));
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/admin/notify#dead").into_response(),
        Err(r) => r.page(&school),
    }
}

// ---------------------------------------------------------------------------------------
// A person's channels

struct PrefRow {
    code: &'static str,
    name: &'static str,
    channels: Vec<(&'static str, &'static str, bool)>,
}

#[derive(Template)]
#[template(path = "notify_preferences.html")]
struct PreferencesPage<'a> {
    lang: Lang,
    csrf: &'a str,
    rows: Vec<PrefRow>,
    english: bool,
    saved: bool,
}

async fn render_preferences(
    state: &SchoolState,
    school: &Tenant,
    lang: Lang,
    user: &CurrentUser,
    saved: bool,
) -> Result<Response, Refusal> {
    let who = recipient(user)?;
    let mut tx = state.db.school(school).await?;
    let prefs = admin::preferences(&mut tx, who).await?;
    let language = admin::language(&mut tx, who).await?;
    tx.commit().await?;
    let rows = prefs
        .into_iter()
        .map(|(c, chosen)| PrefRow {
            code: c.code(),
            name: lang.pick(c.names().0, c.names().1),
            channels: Channel::ALL
                .into_iter()
                .map(|ch| {
                    (
                        ch.code(),
                        lang.pick(ch.names().0, ch.names().1),
                        chosen.contains(&ch),
                    )
                })
                .collect(),
        })
        .collect();
    let body = PreferencesPage {
        lang,
        csrf: &user.csrf_token,
        rows,
        english: language == Language::En,
        saved,
    }
    .render()
    .unwrap_or_default();
    Ok(page(
        lang,
        school,
        user,
        lang.pick("消息提醒方式", "How you are notified"),
        &body,
    ))
}

/// `GET /settings/notifications`.
pub(crate) async fn preferences_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    render_preferences(&state, &school, lang, &user, false)
        .await
        .unwrap_or_else(|r| r.page(&school))
}

/// Channel choices from form fields named `<category>` with values `<channel>`.
fn choices_from(fields: &[(String, String)]) -> Vec<(Category, Vec<Channel>)> {
    Category::ALL
        .into_iter()
        .map(|c| {
            let mut chosen: Vec<Channel> = fields
                .iter()
                .filter(|(k, _)| k == c.code())
                .filter_map(|(_, v)| Channel::parse(v))
                .collect();
            chosen.sort_by_key(|ch| ch.code());
            chosen.dedup();
            (c, chosen)
        })
        .collect()
}

/// `POST /settings/notifications`.
pub(crate) async fn save_preferences(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let result = async {
        let csrf = fields
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str());
        check_csrf(&user, csrf)?;
        let who = recipient(&user)?;
        let language = match fields.iter().find(|(k, _)| k == "language") {
            None => None,
            Some((_, v)) => Some(Language::parse(v).ok_or_else(|| {
                refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "消息语言只能是中文或英文。",
                    "The language of messages is zh or en.",
                )
            })?),
        };
        let mut tx = state.db.school(&school).await?;
        admin::save_preferences(&mut tx, who, &choices_from(&fields)).await?;
        if let Some(language) = language {
            admin::save_language(&mut tx, who, language).await?;
        }
        tx.commit().await?;
        render_preferences(&state, &school, lang, &user, true).await
    }
    .await;
    result.unwrap_or_else(|r| r.page(&school))
}

// ---------------------------------------------------------------------------------------
// JSON

fn csrf_header(user: &CurrentUser, headers: &HeaderMap) -> Result<(), Refusal> {
    check_csrf(
        user,
        headers.get("x-csrf-token").and_then(|v| v.to_str().ok()),
    )
}

/// `GET /api/v1/notify/settings`.
pub(crate) async fn settings_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
) -> Response {
    let result = async {
        admin_only(&user)?;
        let mut tx = state.db.school(&school).await?;
        let s = admin::settings(&mut tx).await?;
        let t = admin::templates(&mut tx).await?;
        tx.commit().await?;
        let templates: Vec<_> = t
            .iter()
            .map(|t| serde_json::json!({"category": t.category.code(), "channel": t.channel.code(), "subject": t.subject, "body": t.body}))
            .collect();
        Ok::<_, Refusal>(Json(serde_json::json!({"settings": s, "templates": templates})).into_response())
    }
    .await;
    result.unwrap_or_else(|r| r.json())
}

#[derive(Debug, Deserialize)]
pub(crate) struct SettingsIn {
    #[serde(default)]
    email_enabled: bool,
    #[serde(default)]
    sms_enabled: bool,
    #[serde(default)]
    wechat_enabled: bool,
    quiet_start: Option<String>,
    quiet_end: Option<String>,
    #[serde(default)]
    webhook_url: String,
    #[serde(default)]
    webhook_secret: String,
}

/// `PUT /api/v1/notify/settings`.
pub(crate) async fn put_settings_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Json(body): Json<SettingsIn>,
) -> Response {
    let change = SettingsChange {
        email_enabled: body.email_enabled,
        sms_enabled: body.sms_enabled,
        wechat_enabled: body.wechat_enabled,
        quiet_start: body.quiet_start.unwrap_or_else(|| "21:00".into()),
        quiet_end: body.quiet_end.unwrap_or_else(|| "07:00".into()),
        webhook_url: body.webhook_url,
        webhook_secret: body.webhook_secret,
    };
    let result = async {
        admin_only(&user)?;
        csrf_header(&user, &headers)?;
        apply_settings(&state, &school, &user, &change).await
    }
    .await;
    match result {
        Ok(Ok(())) => settings_json(State(state), CurrentSchool(school), user).await,
        Ok(Err(e)) => invalid_json(&e),
        Err(r) => r.json(),
    }
}

/// `GET /api/v1/notify/queue`: figures and the latest dead deliveries.
pub(crate) async fn queue_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
) -> Response {
    let result = async {
        admin_only(&user)?;
        let mut tx = state.db.school(&school).await?;
        let figures = admin::figures(&mut tx).await?;
        let dead = admin::dead(&mut tx, 100).await?;
        tx.commit().await?;
        Ok::<_, Refusal>(
            Json(serde_json::json!({"figures": figures, "dead": dead})).into_response(),
        )
    }
    .await;
    result.unwrap_or_else(|r| r.json())
}

#[derive(Debug, Deserialize)]
pub(crate) struct RetryIn {
    /// Delivery ids; absent for every dead delivery.
    ids: Option<Vec<i64>>,
}

/// `POST /api/v1/notify/dead/retry`.
pub(crate) async fn retry_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Json(body): Json<RetryIn>,
) -> Response {
    let result = async {
        admin_only(&user)?;
        csrf_header(&user, &headers)?;
        do_retry(&state, &school, &user, body.ids).await
    }
    .await;
    match result {
        Ok(n) => Json(serde_json::json!({"retried": n})).into_response(),
        Err(r) => r.json(),
    }
}

/// `GET /api/v1/notify/preferences`.
pub(crate) async fn preferences_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
) -> Response {
    let result = async {
        let who = recipient(&user)?;
        let mut tx = state.db.school(&school).await?;
        let prefs = admin::preferences(&mut tx, who).await?;
        let language = admin::language(&mut tx, who).await?;
        tx.commit().await?;
        let mut map: serde_json::Map<String, serde_json::Value> = prefs
            .into_iter()
            .map(|(c, ch)| (c.code().to_owned(), serde_json::json!(ch)))
            .collect();
        map.insert("language".into(), serde_json::json!(language.code()));
        Ok::<_, Refusal>(Json(serde_json::Value::Object(map)).into_response())
    }
    .await;
    result.unwrap_or_else(|r| r.json())
}

/// `PUT /api/v1/notify/preferences`: `{"notices": ["wechat"], "safety": ["sms", "wechat"],
/// "language": "en"}`; kinds not named keep their setting, as does the language.
pub(crate) async fn put_preferences_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Json(mut body): Json<std::collections::BTreeMap<String, serde_json::Value>>,
) -> Response {
    let result = async {
        csrf_header(&user, &headers)?;
        let who = recipient(&user)?;
        let language = match body.remove("language") {
            None => None,
            Some(v) => Some(v.as_str().and_then(Language::parse).ok_or_else(|| {
                refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "消息语言只能是 \"zh\" 或 \"en\"。",
                    "language must be \"zh\" or \"en\".",
                )
            })?),
        };
        let mut choices = Vec::new();
        for (k, v) in &body {
            let bad_channels = || {
                refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "渠道应为列表，如 [\"sms\", \"wechat\"]。",
                    "Channels are a list such as [\"sms\", \"wechat\"].",
                )
            };
            let v: Vec<String> = serde_json::from_value(v.clone()).map_err(|_| bad_channels())?;
            let Some(c) = Category::parse(k) else {
                return Err(refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "消息类型无效（safety/attendance/notices/messages/general）。",
                    "Unknown kind of message (safety/attendance/notices/messages/general).",
                ));
            };
            let mut chosen = Vec::new();
            for ch in &v {
                chosen.push(Channel::parse(ch).ok_or_else(|| {
                    refuse(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "渠道无效（email/sms/wechat）。",
                        "Unknown channel (email/sms/wechat).",
                    )
                })?);
            }
            chosen.dedup();
            choices.push((c, chosen));
        }
        let mut tx = state.db.school(&school).await?;
        admin::save_preferences(&mut tx, who, &choices).await?;
        if let Some(language) = language {
            admin::save_language(&mut tx, who, language).await?;
        }
        tx.commit().await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => preferences_json(State(state), CurrentSchool(school), user).await,
        Err(r) => r.json(),
    }
}
