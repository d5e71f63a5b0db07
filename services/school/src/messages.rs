//! Home–school messages: threads between a school's staff and guardians, with unread
//! counts per member. A head teacher writes to one parent of a class they head, or to all
//! parents of it (one thread per guardian, so replies stay private); a parent writes to any
//! teacher of their child (the head teacher or a subject teacher of the child's class);
//! staff with `SendNotices` and school-wide rights write to all staff (one shared thread).
//! Every message notifies the thread's other members through [`crate::notify`].
//!
//! Who may be addressed is computed once ([`targets`]) and both the form and the check on
//! submission use it. A thread someone is not a member of does not exist for them (404).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{CurrentSchool, SchoolTx, Tenant, TenantError};
use campus_web::Lang;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::notify::{self, Audience, Category, Recipient};
use crate::SchoolState;

pub const MAX_BODY: usize = 2000;

pub fn router() -> Router<SchoolState> {
    Router::new()
        .route("/messages", get(list_page))
        .route("/messages/new", get(new_page).post(create))
        .route("/messages/{id}", get(thread_page).post(reply))
        .route("/api/v1/messages", get(list_json).post(create_json))
        .route("/api/v1/messages/{id}", get(thread_json).post(reply_json))
}

/// Why a request was refused.
pub(crate) enum Fail {
    Csrf,
    Forbidden,
    NotFound,
    Invalid(&'static str),
    Db(TenantError),
}

impl From<TenantError> for Fail {
    fn from(e: TenantError) -> Self {
        Self::Db(e)
    }
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

impl Fail {
    pub(crate) fn page(self, school: &Tenant) -> Response {
        match self {
            Self::Csrf => campus_web::message_page(
                StatusCode::FORBIDDEN,
                &school.name,
                ("页面已过期", "请刷新后重试。"),
                ("Form expired", "Reload and try again."),
            ),
            Self::Forbidden => campus_web::message_page(
                StatusCode::FORBIDDEN,
                &school.name,
                ("没有权限", "您不能给该对象写信。"),
                ("Forbidden", "You may not write to them."),
            ),
            Self::NotFound => campus_web::message_page(
                StatusCode::NOT_FOUND,
                &school.name,
                ("找不到", "没有这条记录。"),
                ("Not found", "There is no such item."),
            ),
            Self::Invalid(why) => campus_web::message_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &school.name,
                ("内容无效", why),
                ("Invalid", why),
            ),
            Self::Db(e) => {
                tracing::error!(error = %e, "messages failed");
                campus_web::message_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    campus_web::PLATFORM_NAME,
                    ("服务暂时不可用", "请稍后刷新重试。"),
                    ("Temporarily unavailable", "Please try again in a moment."),
                )
            }
        }
    }

    pub(crate) fn json(self) -> Response {
        let (status, code) = match self {
            Self::Csrf => (StatusCode::FORBIDDEN, "csrf"),
            Self::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            Self::Db(ref e) => {
                tracing::error!(error = %e, "messages failed");
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
        };
        let mut body = serde_json::json!({"code": code});
        if let Self::Invalid(why) = self {
            // What to fix, e.g. "内容不能为空 / empty".
            body["message"] = why.into();
        }
        (status, Json(body)).into_response()
    }
}

pub(crate) fn check_csrf(user: &CurrentUser, token: &str) -> Result<(), Fail> {
    let token = token.trim();
    let same = token.len() == user.csrf_token.len()
        && token
            .bytes()
            .zip(user.csrf_token.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0;
    if same {
        Ok(())
    } else {
        Err(Fail::Csrf)
    }
}

/// A plain-text body of 1..=2000 characters.
pub(crate) fn check_text(text: &str, max: usize) -> Result<&str, Fail> {
    let t = text.trim();
    if t.is_empty() {
        Err(Fail::Invalid("内容不能为空 / empty"))
    } else if t.chars().count() > max {
        Err(Fail::Invalid("内容过长 / too long"))
    } else {
        Ok(t)
    }
}

fn me(user: &CurrentUser) -> (Vec<&'static str>, Vec<i64>) {
    Recipient::all_of(user.staff_id, user.guardian_id)
        .into_iter()
        .map(|r| (r.kind(), r.id()))
        .unzip()
}

/// One of my threads.
#[derive(Debug, Serialize)]
pub struct ThreadLine {
    pub id: i64,
    pub subject: String,
    pub kind: String,
    pub unread: i64,
    pub last_at: Option<DateTime<Utc>>,
}

async fn my_threads(tx: &mut SchoolTx, user: &CurrentUser) -> sqlx::Result<Vec<ThreadLine>> {
    let (kinds, ids) = me(user);
    Ok(sqlx::query(
        "select t.id, t.subject, t.kind,
                sum((select count(*) from messages m
                      where m.thread_id = t.id
                        and m.created_at > coalesce(tm.last_read_at, '-infinity')
                        and not (m.author_kind = tm.member_kind and m.author_id = tm.member_id)))::bigint as unread,
                (select max(m.created_at) from messages m where m.thread_id = t.id) as last_at
           from threads t
           join thread_members tm on tm.thread_id = t.id
           join unnest($1::text[], $2::bigint[]) as me(k, id) on tm.member_kind = me.k and tm.member_id = me.id
          group by t.id
          order by last_at desc nulls last, t.id desc limit 200",
    )
    .bind(&kinds)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| ThreadLine {
        id: r.get("id"),
        subject: r.get("subject"),
        kind: r.get("kind"),
        unread: r.get("unread"),
        last_at: r.get("last_at"),
    })
    .collect())
}

#[derive(Debug, Serialize)]
struct Threads {
    unread: i64,
    threads: Vec<ThreadLine>,
}

async fn threads(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
) -> Result<Threads, Fail> {
    let mut tx = state.db.school(school).await?;
    let threads = my_threads(&mut tx, user).await?;
    tx.commit().await?;
    Ok(Threads {
        unread: threads.iter().map(|t| t.unread).sum(),
        threads,
    })
}

#[derive(Template)]
#[template(path = "messages_list.html")]
struct ListPage {
    lang: Lang,
    unread: i64,
    threads: Vec<ThreadLine>,
}

/// `GET /messages`.
async fn list_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    match threads(&state, &school, &user).await {
        Ok(t) => {
            let body = ListPage {
                lang,
                unread: t.unread,
                threads: t.threads,
            }
            .render()
            .unwrap_or_default();
            crate::ui::page(
                lang,
                &school,
                &user,
                lang.pick("家校沟通", "Messages"),
                &body,
            )
        }
        Err(e) => e.page(&school),
    }
}

/// `GET /api/v1/messages`.
async fn list_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
) -> Response {
    match threads(&state, &school, &user).await {
        Ok(t) => Json(t).into_response(),
        Err(e) => e.json(),
    }
}

#[derive(Debug, Serialize)]
pub struct Post {
    pub id: i64,
    pub author_kind: String,
    pub author_id: i64,
    pub author_name: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub mine: bool,
}

#[derive(Debug, Serialize)]
pub struct Thread {
    pub id: i64,
    pub subject: String,
    pub kind: String,
    pub members: Vec<(String, i64)>,
    pub messages: Vec<Post>,
}

/// The thread if `user` is a member of it; marks it read.
async fn open(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    id: i64,
) -> Result<Thread, Fail> {
    let (kinds, ids) = me(user);
    let mut tx = state.db.school(school).await?;
    let marked = sqlx::query(
        "update thread_members tm set last_read_at = now()
           from unnest($2::text[], $3::bigint[]) as me(k, id)
          where tm.thread_id = $1 and tm.member_kind = me.k and tm.member_id = me.id",
    )
    .bind(id)
    .bind(&kinds)
    .bind(&ids)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if marked == 0 {
        return Err(Fail::NotFound);
    }
    let t = sqlx::query("select subject, kind from threads where id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let members = sqlx::query(
        "select member_kind, member_id from thread_members where thread_id = $1 order by member_kind desc, member_id",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| (r.get("member_kind"), r.get("member_id")))
    .collect();
    let mine: Vec<Recipient> = Recipient::all_of(user.staff_id, user.guardian_id);
    let messages = sqlx::query(
        "select id, author_kind, author_id, author_name, body, created_at from messages
          where thread_id = $1 order by created_at, id",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| {
        let kind: String = r.get("author_kind");
        let author_id: i64 = r.get("author_id");
        Post {
            id: r.get("id"),
            mine: mine.iter().any(|m| m.kind() == kind && m.id() == author_id),
            author_kind: kind,
            author_id,
            author_name: r.get("author_name"),
            body: r.get("body"),
            created_at: r.get("created_at"),
        }
    })
    .collect();
    tx.commit().await?;
    Ok(Thread {
        id,
        subject: t.get("subject"),
        kind: t.get("kind"),
        members,
        messages,
    })
}

#[derive(Template)]
#[template(path = "message_thread.html")]
struct ThreadPage<'a> {
    lang: Lang,
    csrf: &'a str,
    t: &'a Thread,
}

/// `GET /messages/{id}`.
async fn thread_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Response {
    match open(&state, &school, &user, id).await {
        Ok(t) => {
            let body = ThreadPage {
                lang,
                csrf: &user.csrf_token,
                t: &t,
            }
            .render()
            .unwrap_or_default();
            crate::ui::page(lang, &school, &user, &t.subject, &body)
        }
        Err(e) => e.page(&school),
    }
}

/// `GET /api/v1/messages/{id}`.
async fn thread_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Response {
    match open(&state, &school, &user, id).await {
        Ok(t) => Json(t).into_response(),
        Err(e) => e.json(),
    }
}

/// Adds a message to thread `id` and notifies its other members.
async fn post(
    tx: &mut SchoolTx,
    thread: i64,
    subject: &str,
    from: Recipient,
    name: &str,
    body: &str,
) -> sqlx::Result<()> {
    let message: i64 = sqlx::query_scalar(
        "insert into messages (thread_id, author_kind, author_id, author_name, body)
         values ($1, $2, $3, $4, $5) returning id",
    )
    .bind(thread)
    .bind(from.kind())
    .bind(from.id())
    .bind(name)
    .bind(body)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "update thread_members set last_read_at = now()
          where thread_id = $1 and member_kind = $2 and member_id = $3",
    )
    .bind(thread)
    .bind(from.kind())
    .bind(from.id())
    .execute(&mut **tx)
    .await?;
    let others: Vec<Recipient> = sqlx::query(
        "select member_kind, member_id from thread_members
          where thread_id = $1 and not (member_kind = $2 and member_id = $3)",
    )
    .bind(thread)
    .bind(from.kind())
    .bind(from.id())
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| {
        let id: i64 = r.get("member_id");
        if r.get::<String, _>("member_kind") == "staff" {
            Recipient::Staff(id)
        } else {
            Recipient::Guardian(id)
        }
    })
    .collect();
    if others.is_empty() {
        return Ok(());
    }
    let title = format!("{name}：{subject}");
    let preview: String = body.chars().take(100).collect();
    let link = format!("/messages/{thread}");
    let source = format!("message:{message}");
    notify::send(
        tx,
        &Audience::People(others),
        &notify::Message {
            category: Category::Messages,
            title: &title.chars().take(200).collect::<String>(),
            body: &preview,
            link: Some(&link),
            source: &source,
            dedupe_key: Some(&source),
            en: None,
        },
    )
    .await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
}

async fn add_reply(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    id: i64,
    csrf: Option<&str>,
    body: &str,
) -> Result<i64, Fail> {
    check_csrf(user, csrf.unwrap_or_default())?;
    let (kinds, ids) = me(user);
    let mut tx = state.db.school(school).await?;
    let member: Option<(String, i64, String)> = sqlx::query_as(
        "select tm.member_kind, tm.member_id, t.subject from thread_members tm
           join threads t on t.id = tm.thread_id
           join unnest($2::text[], $3::bigint[]) as me(k, id) on tm.member_kind = me.k and tm.member_id = me.id
          where tm.thread_id = $1
          order by tm.member_kind desc limit 1",
    )
    .bind(id)
    .bind(&kinds)
    .bind(&ids)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((kind, member, subject)) = member else {
        return Err(Fail::NotFound);
    };
    let body = check_text(body, MAX_BODY)?;
    let from = if kind == "staff" {
        Recipient::Staff(member)
    } else {
        Recipient::Guardian(member)
    };
    post(&mut tx, id, &subject, from, &user.display_name, body).await?;
    tx.commit().await?;
    Ok(id)
}

/// `POST /messages/{id}` (form: `csrf`, `body`).
async fn reply(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<ReplyForm>,
) -> Response {
    match add_reply(&state, &school, &user, id, Some(&form.csrf), &form.body).await {
        Ok(id) => Redirect::to(&format!("/messages/{id}")).into_response(),
        Err(e) => e.page(&school),
    }
}

fn header_token(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}

#[derive(Debug, Deserialize)]
struct ReplyJson {
    #[serde(default)]
    body: String,
}

/// `POST /api/v1/messages/{id}` (`{"body"}`, `X-CSRF-Token`).
async fn reply_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(form): Json<ReplyJson>,
) -> Response {
    match add_reply(
        &state,
        &school,
        &user,
        id,
        header_token(&headers),
        &form.body,
    )
    .await
    {
        Ok(id) => (StatusCode::CREATED, Json(serde_json::json!({"thread": id}))).into_response(),
        Err(e) => e.json(),
    }
}

/// Someone or some group a person may write to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A guardian of a class the writer heads.
    Guardian(i64),
    /// Every guardian of a class the writer heads (one thread each).
    Class(i64),
    /// A teacher of one of the writer's children.
    Staff(i64),
    /// Every active member of staff (one shared thread).
    AllStaff,
}

impl Target {
    fn code(&self) -> String {
        match self {
            Self::Guardian(id) => format!("guardian:{id}"),
            Self::Class(id) => format!("class:{id}"),
            Self::Staff(id) => format!("staff:{id}"),
            Self::AllStaff => "all_staff".into(),
        }
    }

    fn parse(code: &str) -> Option<Self> {
        if code == "all_staff" {
            return Some(Self::AllStaff);
        }
        let (kind, id) = code.split_once(':')?;
        let id: i64 = id.parse().ok()?;
        match kind {
            "guardian" => Some(Self::Guardian(id)),
            "class" => Some(Self::Class(id)),
            "staff" => Some(Self::Staff(id)),
            _ => None,
        }
    }
}

pub(crate) struct Choice {
    code: String,
    label: String,
}

fn school_wide(user: &CurrentUser) -> bool {
    user.can(Permission::ManageUsers)
        || user.can(Permission::ManageRoster)
        || user.can(Permission::ViewAudit)
}

/// Everyone `user` may start a thread with.
async fn targets(tx: &mut SchoolTx, user: &CurrentUser) -> sqlx::Result<Vec<(Target, String)>> {
    let mut out = Vec::new();
    if let Some(staff) = user.staff_id {
        let classes = sqlx::query(
            "select id, name from classes where head_teacher_id = $1 order by grade_id, number",
        )
        .bind(staff)
        .fetch_all(&mut **tx)
        .await?;
        for c in classes {
            let name: String = c.get("name");
            out.push((Target::Class(c.get("id")), format!("{name} 全体家长")));
        }
        let guardians = sqlx::query(
            "select distinct g.id, g.name, c.name as class_name from classes c
               join students s on s.class_id = c.id and s.left_on is null
               join student_guardians sg on sg.student_id = s.id
               join guardians g on g.id = sg.guardian_id
              where c.head_teacher_id = $1 order by g.id",
        )
        .bind(staff)
        .fetch_all(&mut **tx)
        .await?;
        for g in guardians {
            let name: String = g.get("name");
            let class: String = g.get("class_name");
            out.push((Target::Guardian(g.get("id")), format!("{name}（{class}）")));
        }
        if user.can(Permission::SendNotices) && school_wide(user) {
            out.push((Target::AllStaff, "全体教职工".into()));
        }
    }
    if let Some(guardian) = user.guardian_id {
        let teachers = sqlx::query(
            "select distinct st.id, st.name from students s
               join student_guardians sg on sg.student_id = s.id and sg.guardian_id = $1
               join classes c on c.id = s.class_id
               join staff st on st.id = c.head_teacher_id
                             or st.id in (select ct.staff_id from class_teachers ct where ct.class_id = c.id)
              where s.left_on is null and st.active
              order by st.id",
        )
        .bind(guardian)
        .fetch_all(&mut **tx)
        .await?;
        for t in teachers {
            out.push((Target::Staff(t.get("id")), t.get("name")));
        }
    }
    Ok(out)
}

#[derive(Template)]
#[template(path = "messages_new.html")]
struct NewPage<'a> {
    lang: Lang,
    csrf: &'a str,
    choices: Vec<Choice>,
}

/// `GET /messages/new`.
async fn new_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    let result = async {
        let mut tx = state.db.school(&school).await?;
        let t = targets(&mut tx, &user).await?;
        tx.commit().await?;
        Ok::<_, Fail>(t)
    }
    .await;
    match result {
        Ok(t) => {
            let body = NewPage {
                lang,
                csrf: &user.csrf_token,
                choices: t
                    .into_iter()
                    .map(|(t, label)| Choice {
                        code: t.code(),
                        label,
                    })
                    .collect(),
            }
            .render()
            .unwrap_or_default();
            crate::ui::page(
                lang,
                &school,
                &user,
                lang.pick("写消息", "New message"),
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
    #[serde(default)]
    to: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
}

async fn new_thread(
    tx: &mut SchoolTx,
    subject: &str,
    kind: &str,
    class: Option<i64>,
    members: &[Recipient],
) -> sqlx::Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "insert into threads (subject, kind, class_id) values ($1, $2, $3) returning id",
    )
    .bind(subject)
    .bind(kind)
    .bind(class)
    .fetch_one(&mut **tx)
    .await?;
    let (kinds, ids): (Vec<&str>, Vec<i64>) = members.iter().map(|m| (m.kind(), m.id())).unzip();
    sqlx::query(
        "insert into thread_members (thread_id, member_kind, member_id)
         select $1, k, i from unnest($2::text[], $3::bigint[]) as m(k, i) on conflict do nothing",
    )
    .bind(id)
    .bind(&kinds)
    .bind(&ids)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Starts a thread (or one per guardian of a class); returns the thread ids.
async fn start(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    csrf: Option<&str>,
    form: &NewForm,
) -> Result<Vec<i64>, Fail> {
    {
        check_csrf(user, csrf.unwrap_or_default())?;
        let target = Target::parse(form.to.trim()).ok_or(Fail::Forbidden)?;
        let mut tx = state.db.school(school).await?;
        if !targets(&mut tx, user)
            .await?
            .iter()
            .any(|(t, _)| *t == target)
        {
            return Err(Fail::Forbidden);
        }
        let subject = check_text(&form.subject, 200)?;
        let body = check_text(&form.body, MAX_BODY)?;
        let name = user.display_name.as_str();
        let to = match target {
            Target::Guardian(g) => {
                let staff = Recipient::Staff(user.staff_id.ok_or(Fail::Forbidden)?);
                let id = new_thread(
                    &mut tx,
                    subject,
                    "direct",
                    None,
                    &[staff, Recipient::Guardian(g)],
                )
                .await?;
                post(&mut tx, id, subject, staff, name, body).await?;
                vec![id]
            }
            Target::Staff(s) => {
                let guardian = Recipient::Guardian(user.guardian_id.ok_or(Fail::Forbidden)?);
                let id = new_thread(
                    &mut tx,
                    subject,
                    "direct",
                    None,
                    &[guardian, Recipient::Staff(s)],
                )
                .await?;
                post(&mut tx, id, subject, guardian, name, body).await?;
                vec![id]
            }
            Target::Class(class) => {
                let staff = Recipient::Staff(user.staff_id.ok_or(Fail::Forbidden)?);
                let guardians: Vec<i64> = sqlx::query_scalar(
                    "select distinct sg.guardian_id from student_guardians sg
                       join students s on s.id = sg.student_id
                      where s.class_id = $1 and s.left_on is null order by 1",
                )
                .bind(class)
                .fetch_all(&mut *tx)
                .await?;
                let mut made = Vec::new();
                for g in guardians {
                    let id = new_thread(
                        &mut tx,
                        subject,
                        "class_broadcast",
                        Some(class),
                        &[staff, Recipient::Guardian(g)],
                    )
                    .await?;
                    post(&mut tx, id, subject, staff, name, body).await?;
                    made.push(id);
                }
                made
            }
            Target::AllStaff => {
                let me = Recipient::Staff(user.staff_id.ok_or(Fail::Forbidden)?);
                let mut members: Vec<Recipient> =
                    sqlx::query_scalar::<_, i64>("select id from staff where active order by id")
                        .fetch_all(&mut *tx)
                        .await?
                        .into_iter()
                        .map(Recipient::Staff)
                        .collect();
                members.push(me);
                let id = new_thread(&mut tx, subject, "staff_broadcast", None, &members).await?;
                post(&mut tx, id, subject, me, name, body).await?;
                vec![id]
            }
        };
        tx.commit().await?;
        Ok(to)
    }
}

/// `POST /messages/new` (form: `csrf`, `to`, `subject`, `body`); redirects to the new thread
/// (or to the list after a message to a whole class).
async fn create(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Form(form): Form<NewForm>,
) -> Response {
    match start(&state, &school, &user, Some(&form.csrf), &form).await {
        Ok(ids) if ids.len() == 1 => Redirect::to(&format!("/messages/{}", ids[0])).into_response(),
        Ok(_) => Redirect::to("/messages").into_response(),
        Err(e) => e.page(&school),
    }
}

/// `POST /api/v1/messages` (`{"to", "subject", "body"}`, `X-CSRF-Token`): the new thread ids.
async fn create_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Json(form): Json<NewForm>,
) -> Response {
    match start(&state, &school, &user, header_token(&headers), &form).await {
        Ok(ids) => (
            StatusCode::CREATED,
            Json(serde_json::json!({"threads": ids})),
        )
            .into_response(),
        Err(e) => e.json(),
    }
}
