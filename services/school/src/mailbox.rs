//! The principal's mailbox (校长信箱): signed-in parents and staff write letters of a type
//! the school configures (建议, 投诉, 表扬, 咨询 to begin with), optionally hiding their name
//! from the reader. Writers see their own letters with the replies; holders of `ViewAudit`
//! (principal, school admin) see every letter, search them by date range and type, and
//! reply, which notifies the writer. The JSON API (`/api/v1/mailbox…`, changes with
//! `X-CSRF-Token`) writes and replies through the same functions as the forms. `ManageUsers` manages the letter types. A letter
//! someone may not read does not exist for them (404).

use askama::Template;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{CurrentSchool, SchoolTx, Tenant};
use campus_web::Lang;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::messages::{check_csrf, check_text, Fail, MAX_BODY};
use crate::notify::{self, Audience, Category, Recipient};
use crate::SchoolState;

pub fn router() -> Router<SchoolState> {
    Router::new()
        .route("/mailbox", get(list_page))
        .route("/mailbox/new", get(new_page).post(create))
        .route("/mailbox/{id}/reply", post(reply))
        .route("/api/v1/mailbox", get(list_json).post(create_json))
        .route("/api/v1/mailbox/{id}", get(letter_json))
        .route("/api/v1/mailbox/{id}/reply", post(reply_json))
        .route("/admin/mailbox/types", get(types_page).post(save_type))
}

#[derive(Debug, Serialize)]
pub struct Reply {
    pub author_name: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct Letter {
    pub id: i64,
    pub type_id: i64,
    pub type_name: String,
    pub subject: String,
    pub body: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// `None` for an anonymous letter, except to its writer.
    pub author_name: Option<String>,
    pub anonymous: bool,
    pub mine: bool,
    pub replies: Vec<Reply>,
}

#[derive(Debug, Default, Deserialize)]
struct Search {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default, rename = "type")]
    type_id: String,
}

#[derive(Debug, Serialize)]
struct Letters {
    /// Whether the viewer reads every letter (or only their own).
    reader: bool,
    letters: Vec<Letter>,
}

fn me(user: &CurrentUser) -> (Vec<&'static str>, Vec<i64>) {
    Recipient::all_of(user.staff_id, user.guardian_id)
        .into_iter()
        .map(|r| (r.kind(), r.id()))
        .unzip()
}

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

async fn load(
    tx: &mut SchoolTx,
    user: &CurrentUser,
    one: Option<i64>,
    search: &Search,
) -> sqlx::Result<Letters> {
    let reader = user.can(Permission::ViewAudit);
    let (kinds, ids) = me(user);
    let rows = sqlx::query(
        "select l.id, l.type_id, lt.name as type_name, l.subject, l.body, l.status, l.created_at,
                l.author_name, l.anonymous,
                exists (select 1 from unnest($2::text[], $3::bigint[]) as me(k, id)
                         where me.k = l.author_kind and me.id = l.author_id) as mine
           from letters l join letter_types lt on lt.id = l.type_id
          where ($1 or exists (select 1 from unnest($2::text[], $3::bigint[]) as me(k, id)
                                where me.k = l.author_kind and me.id = l.author_id))
            and ($4::bigint is null or l.id = $4)
            and ($5::bigint is null or l.type_id = $5)
            and ($6::date is null or (l.created_at at time zone 'Asia/Shanghai')::date >= $6)
            and ($7::date is null or (l.created_at at time zone 'Asia/Shanghai')::date <= $7)
          order by l.created_at desc, l.id desc limit 500",
    )
    .bind(reader)
    .bind(&kinds)
    .bind(&ids)
    .bind(one)
    .bind(search.type_id.trim().parse::<i64>().ok())
    .bind(date(&search.from))
    .bind(date(&search.to))
    .fetch_all(&mut **tx)
    .await?;
    let mut letters: Vec<Letter> = rows
        .into_iter()
        .map(|r| {
            let mine: bool = r.get("mine");
            let anonymous: bool = r.get("anonymous");
            Letter {
                id: r.get("id"),
                type_id: r.get("type_id"),
                type_name: r.get("type_name"),
                subject: r.get("subject"),
                body: r.get("body"),
                status: r.get("status"),
                created_at: r.get("created_at"),
                author_name: (mine || !anonymous).then(|| r.get("author_name")),
                anonymous,
                mine,
                replies: Vec::new(),
            }
        })
        .collect();
    let letter_ids: Vec<i64> = letters.iter().map(|l| l.id).collect();
    let replies = sqlx::query(
        "select letter_id, author_name, body, created_at from letter_replies
          where letter_id = any($1) order by created_at, id",
    )
    .bind(&letter_ids)
    .fetch_all(&mut **tx)
    .await?;
    for r in replies {
        let id: i64 = r.get("letter_id");
        if let Some(l) = letters.iter_mut().find(|l| l.id == id) {
            l.replies.push(Reply {
                author_name: r.get("author_name"),
                body: r.get("body"),
                created_at: r.get("created_at"),
            });
        }
    }
    Ok(Letters { reader, letters })
}

async fn letters(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    one: Option<i64>,
    search: &Search,
) -> Result<Letters, Fail> {
    let mut tx = state.db.school(school).await?;
    let l = load(&mut tx, user, one, search).await?;
    tx.commit().await?;
    Ok(l)
}

struct TypeLine {
    id: i64,
    name: String,
    active: bool,
}

async fn types(tx: &mut SchoolTx, only_active: bool) -> sqlx::Result<Vec<TypeLine>> {
    Ok(
        sqlx::query("select id, name, active from letter_types where active or not $1 order by id")
            .bind(only_active)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(|r| TypeLine {
                id: r.get("id"),
                name: r.get("name"),
                active: r.get("active"),
            })
            .collect(),
    )
}

#[derive(Template)]
#[template(path = "mailbox_list.html")]
struct ListPage<'a> {
    lang: Lang,
    csrf: &'a str,
    reader: bool,
    letters: Vec<Letter>,
    types: Vec<TypeLine>,
    from: &'a str,
    to: &'a str,
}

/// `GET /mailbox[?from=&to=&type=]`.
async fn list_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Query(search): Query<Search>,
) -> Response {
    let result = async {
        let mut tx = state.db.school(&school).await?;
        let l = load(&mut tx, &user, None, &search).await?;
        let t = types(&mut tx, false).await?;
        tx.commit().await?;
        Ok::<_, Fail>((l, t))
    }
    .await;
    match result {
        Ok((l, types)) => {
            let body = ListPage {
                lang,
                csrf: &user.csrf_token,
                reader: l.reader,
                letters: l.letters,
                types,
                from: &search.from,
                to: &search.to,
            }
            .render()
            .unwrap_or_default();
            crate::ui::page(
                lang,
                &school,
                &user,
                lang.pick("校长信箱", "Principal's mailbox"),
                &body,
            )
        }
        Err(e) => e.page(&school),
    }
}

impl Search {
    /// Refuses filters that would otherwise be ignored silently.
    fn check(&self) -> Result<(), Fail> {
        let bad_date = |s: &str| !s.trim().is_empty() && date(s).is_none();
        if bad_date(&self.from) || bad_date(&self.to) {
            return Err(Fail::Invalid(
                "日期格式应为 年-月-日 / dates are YYYY-MM-DD",
            ));
        }
        if !self.type_id.trim().is_empty() && self.type_id.trim().parse::<i64>().is_err() {
            return Err(Fail::Invalid("类型编号不正确 / bad type id"));
        }
        Ok(())
    }
}

/// `GET /api/v1/mailbox[?from=&to=&type=]`: a malformed filter is 422.
async fn list_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Query(search): Query<Search>,
) -> Response {
    if let Err(e) = search.check() {
        return e.json();
    }
    match letters(&state, &school, &user, None, &search).await {
        Ok(l) => Json(l).into_response(),
        Err(e) => e.json(),
    }
}

/// `GET /api/v1/mailbox/{id}`.
async fn letter_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Response {
    match letters(&state, &school, &user, Some(id), &Search::default()).await {
        Ok(mut l) => match l.letters.pop() {
            Some(letter) => Json(letter).into_response(),
            None => Fail::NotFound.json(),
        },
        Err(e) => e.json(),
    }
}

#[derive(Template)]
#[template(path = "mailbox_new.html")]
struct NewPage<'a> {
    lang: Lang,
    csrf: &'a str,
    types: Vec<TypeLine>,
}

/// `GET /mailbox/new`.
async fn new_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    if user.staff_id.is_none() && user.guardian_id.is_none() {
        return Fail::Forbidden.page(&school);
    }
    let result = async {
        let mut tx = state.db.school(&school).await?;
        let t = types(&mut tx, true).await?;
        tx.commit().await?;
        Ok::<_, Fail>(t)
    }
    .await;
    match result {
        Ok(types) => {
            let body = NewPage {
                lang,
                csrf: &user.csrf_token,
                types,
            }
            .render()
            .unwrap_or_default();
            crate::ui::page(
                lang,
                &school,
                &user,
                lang.pick("写信给校长", "Write to the principal"),
                &body,
            )
        }
        Err(e) => e.page(&school),
    }
}

#[derive(Debug, Deserialize)]
struct NewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default, rename = "type")]
    type_id: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    anonymous: Option<String>,
}

/// Writes a letter as the signed-in parent or member of staff; its id.
async fn write_letter(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    csrf: &str,
    form: &NewForm,
) -> Result<i64, Fail> {
    check_csrf(user, csrf)?;
    let author = Recipient::all_of(user.staff_id, user.guardian_id)
        .into_iter()
        .next()
        .ok_or(Fail::Forbidden)?;
    let subject = check_text(&form.subject, 200)?;
    let body = check_text(&form.body, MAX_BODY)?;
    let type_id: i64 = form
        .type_id
        .trim()
        .parse()
        .map_err(|_| Fail::Invalid("请选择类型 / choose a type"))?;
    let mut tx = state.db.school(school).await?;
    let active: Option<bool> = sqlx::query_scalar("select active from letter_types where id = $1")
        .bind(type_id)
        .fetch_optional(&mut *tx)
        .await?;
    if active != Some(true) {
        return Err(Fail::Invalid("请选择类型 / choose a type"));
    }
    let id: i64 = sqlx::query_scalar(
        "insert into letters (type_id, author_kind, author_id, author_name, anonymous, subject, body)
         values ($1, $2, $3, $4, $5, $6, $7) returning id",
    )
    .bind(type_id)
    .bind(author.kind())
    .bind(author.id())
    .bind(&user.display_name)
    .bind(form.anonymous.as_deref().is_some_and(|v| !v.is_empty() && v != "0"))
    .bind(subject)
    .bind(body)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// `POST /mailbox/new` (form: `csrf`, `type`, `subject`, `body`, optional `anonymous`).
async fn create(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Form(form): Form<NewForm>,
) -> Response {
    match write_letter(&state, &school, &user, &form.csrf, &form).await {
        Ok(_) => Redirect::to("/mailbox").into_response(),
        Err(e) => e.page(&school),
    }
}

fn header_token(headers: &HeaderMap) -> &str {
    headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The letter as its reader or writer sees it, after a change.
async fn one_letter(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    id: i64,
) -> Result<Letter, Fail> {
    letters(state, school, user, Some(id), &Search::default())
        .await?
        .letters
        .pop()
        .ok_or(Fail::NotFound)
}

#[derive(Debug, Deserialize)]
struct NewLetterJson {
    #[serde(default, rename = "type")]
    type_id: Option<serde_json::Value>,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    anonymous: bool,
}

/// `POST /api/v1/mailbox` (`{"type", "subject", "body", "anonymous"}`, `X-CSRF-Token`):
/// 201 with the letter.
async fn create_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    body: Result<Json<NewLetterJson>, JsonRejection>,
) -> Response {
    let result = async {
        let Json(b) = body.map_err(|_| Fail::Invalid("请求不是有效的 JSON / not valid JSON"))?;
        let form = NewForm {
            csrf: String::new(),
            type_id: match b.type_id {
                Some(serde_json::Value::String(s)) => s,
                Some(v) => v.to_string(),
                None => String::new(),
            },
            subject: b.subject,
            body: b.body,
            anonymous: b.anonymous.then(|| "1".to_owned()),
        };
        let id = write_letter(&state, &school, &user, header_token(&headers), &form).await?;
        one_letter(&state, &school, &user, id).await
    }
    .await;
    match result {
        Ok(l) => (StatusCode::CREATED, Json(l)).into_response(),
        Err(e) => e.json(),
    }
}

#[derive(Debug, Deserialize)]
struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
}

/// Answers a letter (`ViewAudit`) and notifies its writer, in one transaction.
async fn answer(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    id: i64,
    csrf: &str,
    body: &str,
) -> Result<(), Fail> {
    check_csrf(user, csrf)?;
    if !user.can(Permission::ViewAudit) {
        return Err(Fail::Forbidden);
    }
    let body = check_text(body, MAX_BODY)?;
    let mut tx = state.db.school(school).await?;
    let letter: Option<(String, i64, String)> = sqlx::query_as(
        "update letters set status = 'answered' where id = $1
             returning author_kind, author_id, subject",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((kind, author, subject)) = letter else {
        return Err(Fail::NotFound);
    };
    sqlx::query(
            "insert into letter_replies (letter_id, author_staff_id, author_name, body) values ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(user.staff_id)
        .bind(&user.display_name)
        .bind(body)
        .execute(&mut *tx)
        .await?;
    let writer = if kind == "staff" {
        Recipient::Staff(author)
    } else {
        Recipient::Guardian(author)
    };
    let title: String = format!("校长信箱回复：{subject}")
        .chars()
        .take(200)
        .collect();
    let preview: String = body.chars().take(100).collect();
    let source = format!("letter:{id}");
    notify::send(
        &mut tx,
        &Audience::People(vec![writer]),
        &notify::Message {
            category: Category::Messages,
            title: &title,
            body: &preview,
            link: Some("/mailbox"),
            source: &source,
            dedupe_key: None,
            en: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /mailbox/{id}/reply` (`ViewAudit`): answers the letter and notifies its writer.
async fn reply(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<ReplyForm>,
) -> Response {
    match answer(&state, &school, &user, id, &form.csrf, &form.body).await {
        Ok(()) => Redirect::to("/mailbox").into_response(),
        Err(e) => e.page(&school),
    }
}

#[derive(Debug, Deserialize)]
struct ReplyJson {
    #[serde(default)]
    body: String,
}

/// `POST /api/v1/mailbox/{id}/reply` (`{"body"}`, `X-CSRF-Token`, `ViewAudit`): 201 with
/// the letter and its replies.
async fn reply_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Result<Json<ReplyJson>, JsonRejection>,
) -> Response {
    let result = async {
        let Json(b) = body.map_err(|_| Fail::Invalid("请求不是有效的 JSON / not valid JSON"))?;
        answer(&state, &school, &user, id, header_token(&headers), &b.body).await?;
        one_letter(&state, &school, &user, id).await
    }
    .await;
    match result {
        Ok(l) => (StatusCode::CREATED, Json(l)).into_response(),
        Err(e) => e.json(),
    }
}

#[derive(Template)]
#[template(path = "mailbox_types.html")]
struct TypesPage<'a> {
    lang: Lang,
    csrf: &'a str,
    types: Vec<TypeLine>,
}

/// `GET /admin/mailbox/types` (`ManageUsers`).
async fn types_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    if !user.can(Permission::ManageUsers) {
        return Fail::Forbidden.page(&school);
    }
    let result = async {
        let mut tx = state.db.school(&school).await?;
        let t = types(&mut tx, false).await?;
        tx.commit().await?;
        Ok::<_, Fail>(t)
    }
    .await;
    match result {
        Ok(types) => {
            let body = TypesPage {
                lang,
                csrf: &user.csrf_token,
                types,
            }
            .render()
            .unwrap_or_default();
            crate::ui::page(
                lang,
                &school,
                &user,
                lang.pick("信件类型", "Letter types"),
                &body,
            )
        }
        Err(e) => e.page(&school),
    }
}

#[derive(Debug, Deserialize)]
struct TypeForm {
    #[serde(default)]
    csrf: String,
    /// A new type's name.
    #[serde(default)]
    name: String,
    /// An existing type to switch on or off, with `active` = `1` or `0`.
    #[serde(default)]
    id: String,
    #[serde(default)]
    active: String,
}

/// `POST /admin/mailbox/types` (`ManageUsers`): adds a type or switches one on or off.
async fn save_type(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Form(form): Form<TypeForm>,
) -> Response {
    let result = async {
        check_csrf(&user, &form.csrf)?;
        if !user.can(Permission::ManageUsers) {
            return Err(Fail::Forbidden);
        }
        let mut tx = state.db.school(&school).await?;
        if let Ok(id) = form.id.trim().parse::<i64>() {
            let n = sqlx::query("update letter_types set active = $2 where id = $1")
                .bind(id)
                .bind(form.active.trim() == "1")
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(Fail::NotFound);
            }
        } else {
            let name = check_text(&form.name, 50)?;
            sqlx::query(
                "insert into letter_types (name) values ($1)
                 on conflict (name) do update set active = true",
            )
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/admin/mailbox/types").into_response(),
        Err(e) => e.page(&school),
    }
}
