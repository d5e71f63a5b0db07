//! The signed-in person's in-app inbox: every category of message sent through
//! [`crate::notify`] to their staff and guardian rows, newest first with the unread count;
//! opening an item marks it read.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use campus_identity::CurrentUser;
use campus_tenant::{CurrentSchool, SchoolTx, TenantError};
use campus_web::Lang;
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::notify::{self, Recipient};
use crate::SchoolState;

pub fn router() -> Router<SchoolState> {
    Router::new()
        .route("/inbox", get(page))
        .route("/inbox/{id}/read", post(read))
        .route("/api/v1/inbox", get(json))
}

/// One inbox item.
#[derive(Debug, Serialize)]
pub struct Item {
    pub id: i64,
    pub category: String,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub created_at: DateTime<Utc>,
    pub read: bool,
    /// The English wording, for messages the platform writes in both languages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title_en: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_en: Option<String>,
}

#[derive(Debug, Serialize)]
struct Inbox {
    unread: i64,
    items: Vec<Item>,
}

fn who(user: &CurrentUser) -> (Vec<&'static str>, Vec<i64>) {
    Recipient::all_of(user.staff_id, user.guardian_id)
        .into_iter()
        .map(|r| (r.kind(), r.id()))
        .unzip()
}

async fn load(tx: &mut SchoolTx, user: &CurrentUser) -> sqlx::Result<Inbox> {
    let (kinds, ids) = who(user);
    let items = sqlx::query(
        "select i.id, i.category, i.title, i.body, i.link, i.created_at, i.read_at is not null as read,
                i.title_en, i.body_en
           from inbox_items i
           join unnest($1::text[], $2::bigint[]) as me(k, id) on i.recipient_kind = me.k and i.recipient_id = me.id
          order by i.created_at desc, i.priority desc, i.id desc limit 200",
    )
    .bind(&kinds)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| Item {
        id: r.get("id"),
        category: r.get("category"),
        title: r.get("title"),
        body: r.get("body"),
        link: r.get("link"),
        created_at: r.get("created_at"),
        read: r.get("read"),
        title_en: r.get("title_en"),
        body_en: r.get("body_en"),
    })
    .collect();
    let unread = notify::unread(tx, &Recipient::all_of(user.staff_id, user.guardian_id)).await?;
    Ok(Inbox { unread, items })
}

async fn inbox(
    state: &SchoolState,
    school: &campus_tenant::Tenant,
    user: &CurrentUser,
) -> Result<Inbox, TenantError> {
    let mut tx = state.db.school(school).await?;
    let inbox = load(&mut tx, user).await?;
    tx.commit().await?;
    Ok(inbox)
}

struct Line {
    id: i64,
    category: &'static str,
    title: String,
    body: String,
    when: String,
    read: bool,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct Page<'a> {
    lang: Lang,
    csrf: &'a str,
    unread: i64,
    items: Vec<Line>,
}

fn category(lang: Lang, code: &str) -> &'static str {
    match code {
        "safety" => lang.pick("安全", "Safety"),
        "attendance" => lang.pick("考勤", "Attendance"),
        "notices" => lang.pick("通知", "Notice"),
        "messages" => lang.pick("消息", "Message"),
        _ => lang.pick("其他", "General"),
    }
}

/// `GET /inbox`.
async fn page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    let inbox = match inbox(&state, &school, &user).await {
        Ok(i) => i,
        Err(e) => return crate::ui::unavailable("inbox", e),
    };
    let china = FixedOffset::east_opt(8 * 3600).expect("valid offset");
    let body = Page {
        lang,
        csrf: &user.csrf_token,
        unread: inbox.unread,
        items: inbox
            .items
            .into_iter()
            .map(|i| {
                // The page's language picks the wording when the message has both.
                let (title, body) = match (lang, i.title_en, i.body_en) {
                    (Lang::En, Some(t), Some(b)) => (t, b),
                    _ => (i.title, i.body),
                };
                Line {
                    id: i.id,
                    category: category(lang, &i.category),
                    title,
                    body,
                    when: i
                        .created_at
                        .with_timezone(&china)
                        .format("%m-%d %H:%M")
                        .to_string(),
                    read: i.read,
                }
            })
            .collect(),
    }
    .render()
    .unwrap_or_default();
    campus_web::Shell {
        title: lang.pick("消息", "Inbox"),
        site_name: &school.name,
        badge_url: Some("/badge.svg"),
        theme_color: None,
        body: &body,
        who: campus_web::Who::User(user.badge()),
        lang,
    }
    .into_page(StatusCode::OK)
}

/// `GET /api/v1/inbox`.
async fn json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
) -> Response {
    match inbox(&state, &school, &user).await {
        Ok(i) => Json(i).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "inbox failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"code": "unavailable", "message": "try again shortly"})),
            )
                .into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
struct ReadForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /inbox/{id}/read`: marks the item read and opens its link (or the inbox).
async fn read(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<ReadForm>,
) -> Response {
    let token = form.csrf.trim();
    if token.len() != user.csrf_token.len()
        || token
            .bytes()
            .zip(user.csrf_token.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            != 0
    {
        return campus_web::message_page(
            StatusCode::FORBIDDEN,
            campus_web::PLATFORM_NAME,
            ("页面已过期", "请刷新后重试。"),
            ("Form expired", "Reload and try again."),
        );
    }
    let (kinds, ids) = who(&user);
    let result = async {
        let mut tx = state.db.school(&school).await?;
        let link: Option<Option<String>> = sqlx::query_scalar(
            "update inbox_items i set read_at = coalesce(i.read_at, now())
               from unnest($2::text[], $3::bigint[]) as me(k, id)
              where i.id = $1 and i.recipient_kind = me.k and i.recipient_id = me.id
              returning i.link",
        )
        .bind(id)
        .bind(&kinds)
        .bind(&ids)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, TenantError>(link)
    }
    .await;
    match result {
        Ok(Some(link)) => {
            let to = link
                .as_deref()
                .map(|l| campus_web::same_site_path(Some(l)))
                .filter(|to| *to != "/")
                .unwrap_or("/inbox");
            Redirect::to(to).into_response()
        }
        Ok(None) => campus_web::message_page(
            StatusCode::NOT_FOUND,
            &school.name,
            ("找不到该消息", "没有这条消息。"),
            ("Not found", "There is no such message."),
        ),
        Err(e) => crate::ui::unavailable("inbox", e),
    }
}
