//! The education bureau's pages for county-wide notices on the county host: `/notices`
//! lists what was sent with how far each notice has reached and holds the form for a new
//! one; `/notices/{id}` shows every school's progress (counts only). Sending goes through
//! the same validation and storage as `POST /admin/v1/notices`; the form carries an
//! idempotency key so that a double click or a resubmitted form sends once.

use askama::Template;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use campus_identity::{AuthRejection, CurrentUser, IdentityState};
use campus_web::Lang;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use crate::county_notices::{self, CountyNoticeStatus, NewCountyNotice};
use crate::error::ApiError;
use crate::runtime::Services;

impl FromRef<Services> for IdentityState {
    fn from_ref(s: &Services) -> Self {
        s.identity.clone()
    }
}

pub fn router() -> Router<Services> {
    Router::new()
        .route("/notices", get(list).post(send))
        .route("/notices/{id}", get(one))
}

fn china(t: DateTime<Utc>) -> String {
    (t + chrono::Duration::hours(8))
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

type Name = (&'static str, &'static str);

fn audience_name(code: &str) -> Name {
    match code {
        "guardians" => ("全体家长", "Guardians"),
        "staff" => ("全体教职工", "Staff"),
        _ => ("家长和教职工", "Guardians and staff"),
    }
}

fn mode_name(code: &str) -> Name {
    match code {
        "confirm" => ("需要确认", "Tap to confirm"),
        _ => ("仅需阅读", "Read only"),
    }
}

/// The form's plain text as paragraphs (blank lines) with line breaks.
fn body_html(text: &str) -> String {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>", escape(p).replace('\n', "<br>")))
        .collect()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

struct Row {
    id: i64,
    title: String,
    audience: Name,
    mode: Name,
    sent_at: String,
    schools: i64,
    schools_done: i64,
    recipients: i64,
}

impl From<&CountyNoticeStatus> for Row {
    fn from(n: &CountyNoticeStatus) -> Self {
        Self {
            id: n.id,
            title: n.title.clone(),
            audience: audience_name(&n.audience),
            mode: mode_name(&n.mode),
            sent_at: china(n.created_at),
            schools: n.schools,
            schools_done: n.schools_done,
            recipients: n.recipients,
        }
    }
}

/// What the form held, to show it again with an error.
#[derive(Default)]
struct Draft {
    title: String,
    body: String,
    audience: String,
    mode: String,
    deadline: String,
    schools: Vec<String>,
}

struct SchoolChoice {
    slug: String,
    name: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "county_notices.html")]
struct ListPage {
    lang: Lang,
    csrf: String,
    key: String,
    error: Option<String>,
    draft: Draft,
    choices: Vec<SchoolChoice>,
    rows: Vec<Row>,
}

struct SchoolLine {
    name: String,
    state: Name,
    recipients: String,
    read: String,
    confirmed: String,
    error: String,
}

#[derive(Template)]
#[template(path = "county_notice.html")]
struct OnePage {
    lang: Lang,
    row: Row,
    confirm: bool,
    lines: Vec<SchoolLine>,
}

fn bureau(
    user: Result<CurrentUser, AuthRejection>,
) -> Result<CurrentUser, campus_county::access::Refused> {
    campus_county::access::bureau(user, campus_county::access::Answer::Page)
}

fn page(lang: Lang, user: &CurrentUser, status: StatusCode, title: &str, body: &str) -> Response {
    campus_web::Shell {
        title,
        site_name: "县教育局",
        badge_url: None,
        theme_color: None,
        body,
        who: campus_web::Who::User(user.badge()),
        lang,
    }
    .into_page(status)
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "county notice pages failed");
    campus_web::message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "县教育局",
        ("服务暂时不可用", "请稍后刷新重试。"),
        ("Temporarily unavailable", "Please try again in a moment."),
    )
}

async fn render_list(
    s: &Services,
    user: &CurrentUser,
    lang: Lang,
    status: StatusCode,
    error: Option<String>,
    draft: Draft,
) -> Response {
    let notices = match county_notices::recent(s).await {
        Ok(n) => n,
        Err(e) => return unavailable(e.message),
    };
    let schools: Vec<(String, String)> = match sqlx::query_as(
        "select slug, name from public.tenants where status = 'active' order by slug",
    )
    .fetch_all(&s.pool)
    .await
    {
        Ok(v) => v,
        Err(e) => return unavailable(e),
    };
    let body = ListPage {
        lang,
        csrf: user.csrf_token.clone(),
        key: {
            use rand::RngCore;
            let mut raw = [0u8; 16];
            rand::rng().fill_bytes(&mut raw);
            hex::encode(raw)
        },
        error,
        choices: schools
            .into_iter()
            .map(|(slug, name)| SchoolChoice {
                checked: draft.schools.contains(&slug),
                slug,
                name,
            })
            .collect(),
        draft,
        rows: notices.iter().map(Row::from).collect(),
    }
    .render()
    .unwrap_or_default();
    page(lang, user, status, "全县通知", &body)
}

/// `GET /notices` on the county host.
async fn list(
    State(s): State<Services>,
    user: Result<CurrentUser, AuthRejection>,
    lang: Lang,
) -> Response {
    let user = match bureau(user) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    render_list(&s, &user, lang, StatusCode::OK, None, Draft::default()).await
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |x, (p, q)| x | (p ^ q)) == 0
}

/// `datetime-local` input in China time, e.g. `2026-12-01T17:00`.
fn deadline(s: &str) -> Result<Option<DateTime<Utc>>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").map_err(|_| {
        "截止时间格式应为 2026-12-01 17:00。The deadline is not a date and time.".to_owned()
    })?;
    let china = chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset");
    Ok(china
        .from_local_datetime(&local)
        .single()
        .map(|t| t.with_timezone(&Utc)))
}

/// `POST /notices` (form: `csrf`, `key`, `title`, `body`, `audience`, `mode`, optional
/// `deadline`, any number of `school`; no school ticked means every school).
async fn send(
    State(s): State<Services>,
    user: Result<CurrentUser, AuthRejection>,
    lang: Lang,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let user = match bureau(user) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if !same(get("csrf").trim(), &user.csrf_token) {
        return campus_web::message_page(
            StatusCode::FORBIDDEN,
            "县教育局",
            ("页面已过期", "请返回刷新页面后重新提交。"),
            (
                "This page has expired",
                "Go back, reload the page and submit again.",
            ),
        );
    }
    let draft = Draft {
        title: get("title"),
        body: get("body"),
        audience: get("audience"),
        mode: get("mode"),
        deadline: get("deadline"),
        schools: fields
            .iter()
            .filter(|(n, _)| n == "school")
            .map(|(_, v)| v.clone())
            .collect(),
    };
    let refuse = |message: String, draft: Draft| {
        let s = s.clone();
        let user = user.clone();
        async move {
            render_list(
                &s,
                &user,
                lang,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(message),
                draft,
            )
            .await
        }
    };
    if draft.body.trim().is_empty() {
        return refuse("请填写通知正文。The notice needs a body.".into(), draft).await;
    }
    let deadline = match deadline(&draft.deadline) {
        Ok(d) => d,
        Err(m) => return refuse(m, draft).await,
    };
    let new = NewCountyNotice {
        title: draft.title.clone(),
        body: body_html(&draft.body),
        audience: draft.audience.clone(),
        mode: Some(draft.mode.clone()).filter(|m| !m.is_empty()),
        deadline,
        sender_name: None,
        schools: Some(draft.schools.clone()).filter(|v| !v.is_empty()),
        idempotency_key: Some(get("key")).filter(|k| !k.trim().is_empty()),
    };
    let actor = format!("bureau:{}:{}", user.account_id, user.display_name);
    match county_notices::submit(&s, new, &actor).await {
        Ok(id) => Redirect::to(&format!("/notices/{id}")).into_response(),
        Err(e) if e.status.is_client_error() => refuse(e.message, draft).await,
        Err(e) => unavailable(e.message),
    }
}

/// `GET /notices/{id}` on the county host.
async fn one(
    State(s): State<Services>,
    user: Result<CurrentUser, AuthRejection>,
    lang: Lang,
    Path(id): Path<String>,
) -> Response {
    let user = match bureau(user) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let not_found = || {
        campus_web::message_page(
            StatusCode::NOT_FOUND,
            "县教育局",
            ("没有这条通知", "它可能从未发出。"),
            ("No such notice", "It may never have been sent."),
        )
    };
    let Ok(id) = id.parse::<i64>() else {
        return not_found();
    };
    let n = match county_notices::status(&s, id).await {
        Ok(Some(n)) => n,
        Ok(None) => return not_found(),
        Err(ApiError { message, .. }) => return unavailable(message),
    };
    let count = |v: Option<i64>| v.map_or("—".to_owned(), |n| n.to_string());
    let body = OnePage {
        lang,
        row: Row::from(&n),
        confirm: n.mode == "confirm",
        lines: n
            .per_school
            .iter()
            .map(|p| SchoolLine {
                name: p.name.clone(),
                state: match p.state.as_str() {
                    "done" => ("已送达", "Delivered"),
                    "retrying" => ("重试中", "Retrying"),
                    _ => ("排队中", "Queued"),
                },
                recipients: count(p.recipients),
                read: count(p.read),
                confirmed: count(p.confirmed),
                error: p.last_error.clone().unwrap_or_default(),
            })
            .collect(),
    }
    .render()
    .unwrap_or_default();
    page(lang, &user, StatusCode::OK, &n.title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_text_becomes_escaped_paragraphs() {
        assert_eq!(
            body_html("明天停课\n请注意安全\n\n教育局 & 学校"),
            "<p>明天停课<br>请注意安全</p><p>教育局 &amp; 学校</p>"
        );
        assert_eq!(
            body_html("成绩<60分\r\n<script>"),
            "<p>成绩&lt;60分<br>&lt;script&gt;</p>"
        );
    }

    #[test]
    fn deadlines_are_china_time() {
        let d = deadline("2026-12-01T17:00").unwrap().unwrap();
        assert_eq!(d.to_rfc3339(), "2026-12-01T09:00:00+00:00");
        assert_eq!(deadline("  ").unwrap(), None);
        assert!(deadline("tomorrow").is_err());
    }
}
