//! Notices (通知) with receipts: a sender with `SendNotices` writes a notice (sanitised rich
//! text, attachments in the school's object storage) to whole-school guardians, all staff,
//! grades, classes, holders of chosen roles or chosen people (found with `picker`); a sender
//! without school-wide rights may address only the classes they head. Sending expands the audience set-based into `notice_recipients`
//! and, through [`crate::notify`], into the recipients' inboxes in the same transaction.
//! Recipients read (marking it read), confirm, or sign with a typed name or a drawn PNG;
//! the sender (and the school's admins) follow receipts per class with drawn signatures as
//! images, remind those who have not read (once a day) and export the receipts as XLSX. Pages and the JSON API (`X-CSRF-Token` for POST) share
//! the same functions.

use std::collections::BTreeMap;
use std::io::Cursor;

use askama::Template;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use bytes::Bytes;
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{CurrentSchool, ObjectKey, SchoolTx, Tenant, TenantError};
use campus_web::Lang;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use campus_identity::member::RoleHolders;

use crate::notify::{self, Audience, Category, Message, Recipient};
use crate::roster::export::content_disposition;

pub mod county;
mod picker;
use crate::SchoolState;

/// Longest body accepted, in characters, before sanitising.
pub const BODY_MAX_CHARS: usize = 20_000;
/// Largest attachment.
pub const FILE_LIMIT: usize = 5 * 1024 * 1024;
/// Most attachments on one notice.
pub const MAX_FILES: usize = 5;
/// Largest drawn signature (PNG bytes).
pub const SIGNATURE_LIMIT: usize = 200 * 1024;
const BODY_LIMIT: usize = MAX_FILES * FILE_LIMIT + 1024 * 1024;

/// The routes of the notices module.
pub fn router() -> Router<SchoolState> {
    Router::new()
        .route("/notices", get(list_page).post(create_page))
        .route("/notices/new", get(new_page))
        .route("/notices/{id}", get(view_page))
        .route("/notices/{id}/confirm", post(confirm_page))
        .route("/notices/{id}/receipts", get(receipts_page))
        .route("/notices/{id}/receipts.xlsx", get(receipts_xlsx))
        .route("/notices/{id}/remind", post(remind_page))
        .route("/notices/{id}/files/{n}", get(file))
        .route(
            "/notices/{id}/signatures/{kind}/{recipient}",
            get(signature_image),
        )
        .route("/api/v1/notices", post(create_api))
        .route("/api/v1/notices/people", get(picker::people_json))
        .route("/api/v1/notices/{id}/receipts", get(receipts_json))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

// ---------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
enum Fail {
    NotFound,
    Forbidden(&'static str, &'static str),
    Csrf,
    TooLarge(&'static str, &'static str),
    Invalid(String, String),
    Unavailable(String),
}

impl From<TenantError> for Fail {
    fn from(e: TenantError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl Fail {
    fn invalid(zh: &str, en: &str) -> Self {
        Self::Invalid(zh.to_owned(), en.to_owned())
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Forbidden(..) | Self::Csrf => StatusCode::FORBIDDEN,
            Self::TooLarge(..) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Invalid(..) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn texts(&self) -> (String, String) {
        match self {
            Self::NotFound => (
                "找不到该通知，或您无权查看。".into(),
                "No such notice, or you may not see it.".into(),
            ),
            Self::Forbidden(zh, en) | Self::TooLarge(zh, en) => ((*zh).into(), (*en).into()),
            Self::Csrf => (
                "页面已过期，请刷新后重试。".into(),
                "The form expired; reload and try again.".into(),
            ),
            Self::Invalid(zh, en) => (zh.clone(), en.clone()),
            Self::Unavailable(_) => (
                "服务暂时不可用，请稍后重试。".into(),
                "Temporarily unavailable; try again shortly.".into(),
            ),
        }
    }

    fn log(&self) {
        if let Self::Unavailable(e) = self {
            tracing::error!(error = %e, "notices request failed");
        }
    }

    fn page(self) -> Response {
        self.log();
        let (zh, en) = self.texts();
        let titles = match self {
            Self::NotFound => ("找不到通知", "Notice not found"),
            Self::Forbidden(..) => ("没有权限", "Forbidden"),
            Self::Csrf => ("页面已过期", "Form expired"),
            Self::TooLarge(..) => ("内容过大", "Too large"),
            Self::Invalid(..) => ("无法发送", "Not sent"),
            Self::Unavailable(_) => ("服务暂时不可用", "Temporarily unavailable"),
        };
        campus_web::message_page(
            self.status(),
            campus_web::PLATFORM_NAME,
            (titles.0, &zh),
            (titles.1, &en),
        )
    }

    fn json(self) -> Response {
        self.log();
        let code = match self {
            Self::NotFound => "not_found",
            Self::Forbidden(..) => "forbidden",
            Self::Csrf => "csrf",
            Self::TooLarge(..) => "too_large",
            Self::Invalid(..) => "invalid",
            Self::Unavailable(_) => "unavailable",
        };
        let (zh, en) = self.texts();
        (
            self.status(),
            Json(serde_json::json!({"code": code, "message": en, "message_zh": zh})),
        )
            .into_response()
    }
}

fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn check_csrf(user: &CurrentUser, token: Option<&str>) -> Result<(), Fail> {
    if token.is_some_and(|t| same_token(t.trim(), &user.csrf_token)) {
        Ok(())
    } else {
        Err(Fail::Csrf)
    }
}

fn header_token(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}

/// May address the whole school (not only the classes they head).
fn school_wide(user: &CurrentUser) -> bool {
    user.can(Permission::ManageUsers)
        || user.can(Permission::ManageRoster)
        || user.can(Permission::ViewAudit)
}

fn recipients_of(user: &CurrentUser) -> (Vec<&'static str>, Vec<i64>) {
    Recipient::all_of(user.staff_id, user.guardian_id)
        .into_iter()
        .map(|r| (r.kind(), r.id()))
        .unzip()
}

// ---------------------------------------------------------------------------------------
// Composing and sending
// ---------------------------------------------------------------------------------------

/// Who a notice goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    AllGuardians,
    AllStaff,
    Grades(Vec<i64>),
    Classes(Vec<i64>),
    People(Vec<Recipient>),
    /// Every active member holding one of these role codes (built-in or the school's own),
    /// staff and guardians alike.
    Roles(Vec<String>),
}

impl Target {
    fn describe(&self) -> serde_json::Value {
        match self {
            Self::AllGuardians => serde_json::json!({"kind": "guardians"}),
            Self::AllStaff => serde_json::json!({"kind": "staff"}),
            Self::Grades(ids) => serde_json::json!({"kind": "grades", "ids": ids}),
            Self::Classes(ids) => serde_json::json!({"kind": "classes", "ids": ids}),
            Self::People(p) => serde_json::json!({
                "kind": "people",
                "people": p.iter().map(|r| format!("{}:{}", r.kind(), r.id())).collect::<Vec<_>>()
            }),
            Self::Roles(r) => serde_json::json!({"kind": "roles", "roles": r}),
        }
    }
}

/// Confirmation a notice asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Read,
    Confirm,
    Signature,
}

impl Mode {
    fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "" | "read" => Some(Self::Read),
            "confirm" => Some(Self::Confirm),
            "signature" => Some(Self::Signature),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Confirm => "confirm",
            Self::Signature => "signature",
        }
    }
}

struct Attachment {
    file_name: String,
    bytes: Bytes,
}

/// A notice as submitted.
struct Draft {
    csrf: Option<String>,
    title: String,
    body: String,
    target: Target,
    mode: Mode,
    deadline: Option<DateTime<Utc>>,
    files: Vec<Attachment>,
    /// Files uploaded beforehand through the files service (large ones, resumably).
    file_ids: Vec<i64>,
}

fn ids(values: &[String]) -> Result<Vec<i64>, Fail> {
    let mut out = Vec::new();
    for v in values.iter().flat_map(|v| v.split([',', ' '])) {
        if v.trim().is_empty() {
            continue;
        }
        out.push(
            v.trim()
                .parse()
                .map_err(|_| Fail::invalid("编号无效。", "Invalid id."))?,
        );
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn parse_target(kind: &str, fields: &BTreeMap<String, Vec<String>>) -> Result<Target, Fail> {
    let get = |k: &str| fields.get(k).map(Vec::as_slice).unwrap_or(&[]);
    let nonempty = |v: Vec<i64>| {
        if v.is_empty() {
            Err(Fail::invalid("请选择发送对象。", "Choose who receives it."))
        } else {
            Ok(v)
        }
    };
    match kind.trim() {
        "guardians" => Ok(Target::AllGuardians),
        "staff" => Ok(Target::AllStaff),
        "grades" => Ok(Target::Grades(nonempty(ids(get("grade_ids"))?)?)),
        "classes" => Ok(Target::Classes(nonempty(ids(get("class_ids"))?)?)),
        "people" => {
            let mut people = Vec::new();
            for p in get("people").iter().flat_map(|v| v.split([',', ' '])) {
                let p = p.trim();
                if p.is_empty() {
                    continue;
                }
                let (k, id) = p
                    .split_once(':')
                    .ok_or_else(|| Fail::invalid("收件人格式无效。", "Invalid recipient."))?;
                let id: i64 = id
                    .parse()
                    .map_err(|_| Fail::invalid("收件人格式无效。", "Invalid recipient."))?;
                people.push(match k {
                    "staff" => Recipient::Staff(id),
                    "guardian" => Recipient::Guardian(id),
                    _ => return Err(Fail::invalid("收件人格式无效。", "Invalid recipient.")),
                });
            }
            people.sort_by_key(|r| (r.kind(), r.id()));
            people.dedup();
            if people.is_empty() {
                return Err(Fail::invalid("请选择收件人。", "Choose recipients."));
            }
            Ok(Target::People(people))
        }
        "roles" => {
            let mut roles = Vec::new();
            for r in get("roles").iter().flat_map(|v| v.split([',', ' '])) {
                let r = r.trim();
                if r.is_empty() {
                    continue;
                }
                if r.len() > 40
                    || !r
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                {
                    return Err(Fail::invalid("角色无效。", "Invalid role."));
                }
                roles.push(r.to_owned());
            }
            roles.sort_unstable();
            roles.dedup();
            if roles.is_empty() {
                return Err(Fail::invalid("请选择角色。", "Choose at least one role."));
            }
            Ok(Target::Roles(roles))
        }
        _ => Err(Fail::invalid("请选择发送对象。", "Choose who receives it.")),
    }
}

fn parse_deadline(s: &str) -> Result<Option<DateTime<Utc>>, Fail> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let china = FixedOffset::east_opt(8 * 3600).expect("valid offset");
    let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .or_else(|_| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(23, 59, 0).unwrap_or_default())
        })
        .map_err(|_| Fail::invalid("截止时间格式无效。", "Invalid deadline."))?;
    Ok(local
        .and_local_timezone(china)
        .single()
        .map(|t| t.with_timezone(&Utc)))
}

/// Reads the multipart form; a body over the limit is refused before anything is kept.
async fn read_draft(
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Draft, Fail> {
    let too_large = || {
        Fail::TooLarge(
            "通知内容或附件过大。",
            "The notice or an attachment is too large.",
        )
    };
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > BODY_LIMIT)
    {
        return Err(too_large());
    }
    let mut mp = multipart.map_err(|_| Fail::invalid("表单无效。", "Invalid form."))?;
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut files = Vec::new();
    let field_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            Fail::invalid("表单无效。", "Invalid form.")
        }
    };
    while let Some(mut field) = mp.next_field().await.map_err(field_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" || name == "files" {
            let file_name = field.file_name().unwrap_or_default().trim().to_owned();
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(field_error)? {
                if bytes.len() + chunk.len() > FILE_LIMIT {
                    return Err(Fail::TooLarge(
                        "附件不能超过 5 MB。",
                        "Attachments may be at most 5 MB each.",
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            if file_name.is_empty() && bytes.is_empty() {
                continue;
            }
            if files.len() == MAX_FILES {
                return Err(Fail::invalid("附件最多 5 个。", "At most 5 attachments."));
            }
            files.push(Attachment {
                file_name: if file_name.is_empty() {
                    "attachment".into()
                } else {
                    file_name.chars().take(200).collect()
                },
                bytes: Bytes::from(bytes),
            });
            continue;
        }
        let limit = if name == "body" || name == "people" {
            BODY_MAX_CHARS * 4 + 4
        } else {
            4096
        };
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(field_error)? {
            if value.len() + chunk.len() > limit {
                return Err(Fail::TooLarge(
                    "通知正文不能超过 20000 字。",
                    "The body may be at most 20,000 characters.",
                ));
            }
            value.extend_from_slice(&chunk);
        }
        fields
            .entry(name)
            .or_default()
            .push(String::from_utf8_lossy(&value).into_owned());
    }
    let one = |k: &str| {
        fields
            .get(k)
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default()
    };
    let body = one("body");
    if body.chars().count() > BODY_MAX_CHARS {
        return Err(Fail::TooLarge(
            "通知正文不能超过 20000 字。",
            "The body may be at most 20,000 characters.",
        ));
    }
    let title = one("title").trim().to_owned();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(Fail::invalid(
            "标题不能为空，且不超过 200 字。",
            "A title of 1 to 200 characters is required.",
        ));
    }
    let mode = Mode::parse(&one("mode"))
        .ok_or_else(|| Fail::invalid("回执方式无效。", "Invalid confirmation mode."))?;
    Ok(Draft {
        csrf: fields.get("csrf").and_then(|v| v.first()).cloned(),
        target: parse_target(&one("audience"), &fields)?,
        deadline: parse_deadline(&one("deadline"))?,
        title,
        body,
        mode,
        file_ids: ids(fields.get("file_id").map(Vec::as_slice).unwrap_or_default())?,
        files,
    })
}

/// Rich text with scripts, event handlers and unknown markup removed.
pub fn sanitise(html: &str) -> String {
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer"))
        .clean(html)
        .to_string()
}

/// The SQL that lists a target's recipients as (kind, id, class id); `$2` / `$3` bind the
/// target's ids.
pub(crate) fn recipient_select(target: &Target) -> &'static str {
    match target {
        Target::AllGuardians => {
            "select 'guardian', sg.guardian_id, min(s.class_id) from student_guardians sg
               join students s on s.id = sg.student_id
              where s.left_on is null and $2::bigint[] is not null and $3::text[] is not null
              group by sg.guardian_id"
        }
        Target::Classes(_) => {
            "select 'guardian', sg.guardian_id, min(s.class_id) from student_guardians sg
               join students s on s.id = sg.student_id
              where s.left_on is null and s.class_id = any($2) and $3::text[] is not null
              group by sg.guardian_id"
        }
        Target::Grades(_) => {
            "select 'guardian', sg.guardian_id, min(s.class_id) from student_guardians sg
               join students s on s.id = sg.student_id join classes c on c.id = s.class_id
              where s.left_on is null and c.grade_id = any($2) and $3::text[] is not null
              group by sg.guardian_id"
        }
        Target::AllStaff => {
            "select 'staff', s.id, null::bigint from staff s
              where s.active and $2::bigint[] is not null and $3::text[] is not null"
        }
        Target::People(_) | Target::Roles(_) => {
            "select r.k, r.i, (select min(s.class_id) from student_guardians sg join students s on s.id = sg.student_id
                                where r.k = 'guardian' and sg.guardian_id = r.i and s.left_on is null)
               from unnest($3::text[], $2::bigint[]) as r(k, i)
              where (r.k = 'staff' and exists (select 1 from staff st where st.id = r.i and st.active))
                 or (r.k = 'guardian' and exists (select 1 from guardians g where g.id = r.i))"
        }
    }
}

/// Role codes a notice may address: the built-in roles and the school's own.
async fn role_choices(state: &SchoolState, school: &Tenant) -> Result<Vec<(String, String)>, Fail> {
    let custom =
        campus_identity::admin::store::custom_roles(&state.identity.pool, school.id.0).await?;
    Ok(campus_identity::permission::BUILTIN_ROLES
        .iter()
        .map(|r| (r.code.to_owned(), r.name_zh.to_owned()))
        .chain(custom.into_iter().map(|r| (r.code, r.name)))
        .collect())
}

/// The linked rows of the members holding `codes`; an unknown code is refused.
async fn role_holders(
    state: &SchoolState,
    school: &Tenant,
    codes: &[String],
) -> Result<RoleHolders, Fail> {
    let known = role_choices(state, school).await?;
    if let Some(unknown) = codes.iter().find(|c| !known.iter().any(|(k, _)| k == *c)) {
        return Err(Fail::Invalid(
            format!("本校没有角色“{unknown}”。"),
            format!("This school has no role \"{unknown}\"."),
        ));
    }
    Ok(campus_identity::member::holders_of_roles(&state.identity.pool, school.id.0, codes).await?)
}

/// What was sent.
#[derive(Debug, Serialize)]
pub struct Sent {
    pub id: i64,
    pub recipients: u64,
    pub attachments: usize,
}

async fn send_notice(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    draft: Draft,
) -> Result<Sent, Fail> {
    user.require(Permission::SendNotices)
        .map_err(|_| Fail::Forbidden("您的身份不能发布通知。", "You may not send notices."))?;
    let holders = match &draft.target {
        Target::Roles(codes) if school_wide(user) => role_holders(state, school, codes).await?,
        _ => RoleHolders::default(),
    };
    let mut tx = state.db.school(school).await?;
    if !school_wide(user) {
        let Target::Classes(classes) = &draft.target else {
            return Err(Fail::Forbidden(
                "您只能向自己任班主任的班级发送通知。",
                "You may only address the classes you head.",
            ));
        };
        let headed: i64 = sqlx::query_scalar(
            "select count(*) from classes where id = any($1) and head_teacher_id = $2",
        )
        .bind(classes)
        .bind(user.staff_id)
        .fetch_one(&mut *tx)
        .await?;
        if user.staff_id.is_none() || headed != classes.len() as i64 {
            return Err(Fail::Forbidden(
                "您只能向自己任班主任的班级发送通知。",
                "You may only address the classes you head.",
            ));
        }
    }
    let body_html = sanitise(&draft.body);
    let id: i64 = sqlx::query_scalar(
        "insert into notices (sender_account_id, sender_name, sender_staff_id, title, body_html, audience, mode, deadline)
         values ($1, $2, $3, $4, $5, $6, $7, $8) returning id",
    )
    .bind(user.account_id)
    .bind(&user.display_name)
    .bind(user.staff_id)
    .bind(&draft.title)
    .bind(&body_html)
    .bind(draft.target.describe())
    .bind(draft.mode.code())
    .bind(draft.deadline)
    .fetch_one(&mut *tx)
    .await?;
    let (list, kinds): (Vec<i64>, Vec<&str>) = match &draft.target {
        Target::Grades(v) | Target::Classes(v) => (v.clone(), Vec::new()),
        Target::People(p) => (
            p.iter().map(|r| r.id()).collect(),
            p.iter().map(|r| r.kind()).collect(),
        ),
        Target::Roles(_) => (
            holders
                .staff
                .iter()
                .chain(&holders.guardians)
                .copied()
                .collect(),
            std::iter::repeat_n("staff", holders.staff.len())
                .chain(std::iter::repeat_n("guardian", holders.guardians.len()))
                .collect(),
        ),
        _ => (Vec::new(), Vec::new()),
    };
    let sql = format!(
        "insert into notice_recipients (notice_id, recipient_kind, recipient_id, class_id)
         select $1, r.k, r.i, r.c from ({}) as r(k, i, c)
         on conflict do nothing",
        recipient_select(&draft.target)
    );
    let recipients = sqlx::query(&sql)
        .bind(id)
        .bind(&list)
        .bind(&kinds)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if recipients == 0 {
        return Err(Fail::invalid(
            "所选对象中没有收件人。",
            "The chosen audience has nobody in it.",
        ));
    }
    let audience = match &draft.target {
        Target::AllGuardians => Audience::AllGuardians,
        Target::AllStaff => Audience::AllStaff,
        Target::Grades(v) => Audience::GuardiansOfGrades(v.clone()),
        Target::Classes(v) => Audience::GuardiansOfClasses(v.clone()),
        Target::Roles(_) => Audience::RoleHolders {
            staff: holders.staff,
            guardians: holders.guardians,
        },
        Target::People(_) => {
            // Only the people that exist (as written to the receipts).
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "select recipient_kind, recipient_id from notice_recipients where notice_id = $1",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            Audience::People(
                rows.into_iter()
                    .map(|(k, i)| {
                        if k == "staff" {
                            Recipient::Staff(i)
                        } else {
                            Recipient::Guardian(i)
                        }
                    })
                    .collect(),
            )
        }
    };
    let link = format!("/notices/{id}");
    let source = format!("notice:{id}");
    let preview: String = ammonia::Builder::empty()
        .clean(&body_html)
        .to_string()
        .chars()
        .take(200)
        .collect();
    notify::send(
        &mut tx,
        &audience,
        &Message {
            category: Category::Notices,
            title: &draft.title,
            body: &preview,
            link: Some(&link),
            source: &source,
            dedupe_key: Some(&source),
            en: None,
        },
    )
    .await?;
    crate::audit::record(
        &mut tx,
        user,
        crate::audit::Action::NoticeSent,
        Some(&source),
        serde_json::json!({"recipients": recipients, "audience": draft.target.describe()}),
    )
    .await?;
    // Attachments become files of the files service owned by the notice (sniffed, counted
    // against the school's quota, previewed). They are stored last, just before the
    // commit; if anything fails, the objects already stored are removed again.
    let mut stored = Vec::new();
    let outcome = attach_files(state, school, user, &mut tx, id, &draft, &mut stored).await;
    let outcome = match outcome {
        Ok(()) => tx.commit().await.map_err(Fail::from),
        Err(e) => Err(e),
    };
    if let Err(e) = outcome {
        let store = state.store.for_tenant(school);
        for key in &stored {
            if let Err(e) = store.delete(key).await {
                tracing::warn!(error = %e, key = key.as_str(), "attachment of an unsent notice not removed");
            }
        }
        return Err(e);
    }
    Ok(Sent {
        id,
        recipients,
        attachments: draft.files.len() + draft.file_ids.len(),
    })
}

/// A files-service refusal in the notice's terms.
fn file_fail(e: campus_files::Fail) -> Fail {
    let (zh, en) = e.texts();
    match e.status() {
        StatusCode::SERVICE_UNAVAILABLE => Fail::Unavailable(en),
        StatusCode::PAYLOAD_TOO_LARGE => Fail::TooLarge(
            "附件超过了单个文件上限或学校剩余的存储空间。",
            "An attachment is over the plan's file size limit or the school's remaining storage.",
        ),
        StatusCode::NOT_FOUND => Fail::invalid(
            "所选附件不存在，或不是您上传的，或已用于其他内容。",
            "A chosen file does not exist, is not yours, or is already used elsewhere.",
        ),
        _ => Fail::Invalid(zh, en),
    }
}

/// Stores the form's attachments and attaches already uploaded files to notice `id`,
/// recording each in `notice_attachments`; keys of objects stored go to `stored`.
async fn attach_files(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    tx: &mut SchoolTx,
    id: i64,
    draft: &Draft,
    stored: &mut Vec<ObjectKey>,
) -> Result<(), Fail> {
    if draft.files.len() + draft.file_ids.len() > MAX_FILES {
        return Err(Fail::invalid("附件最多 5 个。", "At most 5 attachments."));
    }
    let mut files = Vec::new();
    for f in &draft.files {
        let s = campus_files::ingest(
            &state.db,
            &state.store,
            school,
            tx,
            campus_files::Incoming {
                file_name: &f.file_name,
                bytes: f.bytes.clone(),
                uploaded_by: user.account_id,
                owner: ("notice", id),
            },
        )
        .await
        .map_err(file_fail)?;
        stored.push(s.key);
        files.push(s.file);
    }
    for fid in &draft.file_ids {
        let f = campus_files::model::attach(tx, user, *fid, "notice", id)
            .await
            .map_err(file_fail)?;
        files.push(f);
    }
    for (i, f) in files.iter().enumerate() {
        sqlx::query(
            "insert into notice_attachments (notice_id, n, object_key, file_name, content_type, size, file_id)
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(i as i16 + 1)
        .bind(&f.object_key)
        .bind(&f.file_name)
        .bind(&f.content_type)
        .bind(f.size)
        .bind(f.id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Who may see a notice's files: its sender, the school's admins and its recipients.
pub struct NoticeFiles;

#[async_trait::async_trait]
impl campus_files::OwnerAccess for NoticeFiles {
    async fn may_see(&self, tx: &mut SchoolTx, user: &CurrentUser, id: i64) -> sqlx::Result<bool> {
        let Some(n) = notice(tx, id).await? else {
            return Ok(false);
        };
        Ok(may_see_receipts(&n, user) || is_recipient(tx, user, id).await?)
    }
}

struct Choice {
    id: i64,
    name: String,
}

/// What the form showed before a search without JavaScript reloaded it.
#[derive(Default)]
struct Prefill {
    title: String,
    body: String,
    mode: String,
    deadline: String,
    audience: String,
    q: String,
    roles: Vec<String>,
}

#[derive(Template)]
#[template(path = "notices_new.html")]
struct NewPage<'a> {
    lang: Lang,
    csrf: &'a str,
    school_wide: bool,
    grades: Vec<Choice>,
    classes: Vec<Choice>,
    /// (code, name, chosen).
    roles: Vec<(String, String, bool)>,
    f: Prefill,
    searched: bool,
    chosen: Vec<picker::Person>,
    found: Vec<picker::Person>,
}

/// `GET /notices/new`; with `q` (the picker's search button, without JavaScript) it shows
/// the people found and keeps what was already filled in and chosen.
async fn new_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = user.require(Permission::SendNotices) {
        return r.into_response();
    }
    let wide = school_wide(&user);
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in query {
        fields.entry(k).or_default().push(v);
    }
    let one = |k: &str| {
        fields
            .get(k)
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default()
    };
    let f = Prefill {
        title: one("title").chars().take(200).collect(),
        body: one("body").chars().take(BODY_MAX_CHARS).collect(),
        mode: one("mode"),
        deadline: one("deadline"),
        audience: if fields.contains_key("q") && wide {
            "people".into()
        } else {
            one("audience")
        },
        q: one("q").chars().take(picker::QUERY_MAX).collect(),
        roles: fields.get("roles").cloned().unwrap_or_default(),
    };
    let searched = wide && fields.contains_key("q");
    // Chosen people the form carried; malformed entries are simply not shown again.
    let chosen_keys = match parse_target("people", &fields) {
        Ok(Target::People(p)) if wide => p,
        _ => Vec::new(),
    };
    let loaded = async {
        let roles = if wide {
            role_choices(&state, &school).await?
        } else {
            Vec::new()
        };
        let mut tx = state.db.school(&school).await?;
        let grades: Vec<(i64, String)> =
            sqlx::query_as("select id, name from grades order by level")
                .fetch_all(&mut *tx)
                .await?;
        let classes: Vec<(i64, String)> = sqlx::query_as(
            "select c.id, c.name from classes c join grades g on g.id = c.grade_id
              where c.retired_at is null and ($1 or c.head_teacher_id = $2) order by g.level, c.number",
        )
        .bind(wide)
        .bind(user.staff_id)
        .fetch_all(&mut *tx)
        .await?;
        let chosen = picker::named(&mut tx, &chosen_keys).await?;
        let found = if searched {
            picker::search(&mut tx, &f.q).await?
        } else {
            Vec::new()
        };
        tx.commit().await?;
        Ok::<_, Fail>((roles, grades, classes, chosen, found))
    }
    .await;
    let (roles, grades, classes, chosen, found) = match loaded {
        Ok(x) => x,
        Err(e) => return e.page(),
    };
    let found = found
        .into_iter()
        .filter(|p| !chosen.iter().any(|c| c.key == p.key))
        .collect();
    let choices = |v: Vec<(i64, String)>| {
        v.into_iter()
            .map(|(id, name)| Choice { id, name })
            .collect()
    };
    let body = NewPage {
        lang,
        csrf: &user.csrf_token,
        school_wide: wide,
        grades: if wide { choices(grades) } else { Vec::new() },
        classes: choices(classes),
        roles: roles
            .into_iter()
            .map(|(code, name)| {
                let chosen = f.roles.contains(&code);
                (code, name, chosen)
            })
            .collect(),
        f,
        searched,
        chosen,
        found,
    }
    .render()
    .unwrap_or_default();
    crate::ui::page(
        lang,
        &school,
        &user,
        lang.pick("发布通知", "New notice"),
        &body,
    )
}

/// `POST /notices` (multipart).
async fn create_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    if let Err(r) = user.require(Permission::SendNotices) {
        return r.into_response();
    }
    let result = async {
        let draft = read_draft(&headers, multipart).await?;
        check_csrf(&user, draft.csrf.as_deref())?;
        send_notice(&state, &school, &user, draft).await
    }
    .await;
    match result {
        Ok(sent) => Redirect::to(&format!("/notices/{}/receipts", sent.id)).into_response(),
        Err(e) => e.page(),
    }
}

/// `POST /api/v1/notices` (multipart, `X-CSRF-Token`).
async fn create_api(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let result = async {
        check_csrf(&user, header_token(&headers))?;
        let draft = read_draft(&headers, multipart).await?;
        send_notice(&state, &school, &user, draft).await
    }
    .await;
    match result {
        Ok(sent) => (StatusCode::CREATED, Json(sent)).into_response(),
        Err(e) => e.json(),
    }
}

// ---------------------------------------------------------------------------------------
// Sent notices
// ---------------------------------------------------------------------------------------

struct SentRow {
    id: i64,
    title: String,
    created: String,
    mode: String,
    total: i64,
    read: i64,
    unread: i64,
    signed: i64,
}

#[derive(Template)]
#[template(path = "notices_list.html")]
struct ListPage {
    lang: Lang,
    may_send: bool,
    rows: Vec<SentRow>,
    received: Vec<(i64, String, String, bool)>,
}

fn local_time(t: DateTime<Utc>) -> String {
    let china = FixedOffset::east_opt(8 * 3600).expect("valid offset");
    t.with_timezone(&china).format("%Y-%m-%d %H:%M").to_string()
}

/// `GET /notices`: notices I sent with their receipt counts, and notices I received.
async fn list_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    let (kinds, rids) = recipients_of(&user);
    let loaded = async {
        let mut tx = state.db.school(&school).await?;
        let rows = sqlx::query(
            "select n.id, n.title, n.created_at, n.mode,
                    count(r.*) as total, count(r.read_at) as read, count(r.confirmed_at) as signed
               from notices n left join notice_recipients r on r.notice_id = n.id
              where n.sender_account_id = $1
              group by n.id order by n.created_at desc, n.id desc limit 200",
        )
        .bind(user.account_id)
        .fetch_all(&mut *tx)
        .await?;
        let received: Vec<(i64, String, DateTime<Utc>, bool)> = sqlx::query_as(
            "select n.id, n.title, n.created_at, bool_and(r.read_at is not null)
               from notice_recipients r join notices n on n.id = r.notice_id
               join unnest($1::text[], $2::bigint[]) as me(k, i) on r.recipient_kind = me.k and r.recipient_id = me.i
              group by n.id order by n.created_at desc, n.id desc limit 200",
        )
        .bind(&kinds)
        .bind(&rids)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, Fail>((rows, received))
    }
    .await;
    let (rows, received) = match loaded {
        Ok(x) => x,
        Err(e) => return e.page(),
    };
    let rows = rows
        .into_iter()
        .map(|r| {
            let total: i64 = r.get("total");
            let read: i64 = r.get("read");
            SentRow {
                id: r.get("id"),
                title: r.get("title"),
                created: local_time(r.get("created_at")),
                mode: r.get("mode"),
                total,
                read,
                unread: total - read,
                signed: r.get("signed"),
            }
        })
        .collect();
    let body = ListPage {
        lang,
        may_send: user.can(Permission::SendNotices),
        rows,
        received: received
            .into_iter()
            .map(|(id, t, c, read)| (id, t, local_time(c), read))
            .collect(),
    }
    .render()
    .unwrap_or_default();
    crate::ui::page(lang, &school, &user, lang.pick("通知", "Notices"), &body)
}

// ---------------------------------------------------------------------------------------
// Reading, confirming, signing
// ---------------------------------------------------------------------------------------

struct NoticeRow {
    id: i64,
    /// None for a notice from the county.
    sender_account_id: Option<i64>,
    sender_name: String,
    title: String,
    body_html: String,
    mode: String,
    deadline: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

async fn notice(tx: &mut SchoolTx, id: i64) -> sqlx::Result<Option<NoticeRow>> {
    Ok(sqlx::query(
        "select id, sender_account_id, sender_name, title, body_html, mode, deadline, created_at
           from notices where id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .map(|r| NoticeRow {
        id: r.get("id"),
        sender_account_id: r.get("sender_account_id"),
        sender_name: r.get("sender_name"),
        title: r.get("title"),
        body_html: r.get("body_html"),
        mode: r.get("mode"),
        deadline: r.get("deadline"),
        created_at: r.get("created_at"),
    }))
}

/// Whether the user is one of the notice's recipients.
async fn is_recipient(tx: &mut SchoolTx, user: &CurrentUser, id: i64) -> sqlx::Result<bool> {
    let (kinds, rids) = recipients_of(user);
    sqlx::query_scalar(
        "select exists (select 1 from notice_recipients r
                          join unnest($2::text[], $3::bigint[]) as me(k, i) on r.recipient_kind = me.k and r.recipient_id = me.i
                         where r.notice_id = $1)",
    )
    .bind(id)
    .bind(&kinds)
    .bind(&rids)
    .fetch_one(&mut **tx)
    .await
}

fn is_sender(n: &NoticeRow, user: &CurrentUser) -> bool {
    n.sender_account_id == Some(user.account_id)
}

/// The sender and the school's admins follow a notice's receipts and signatures.
fn may_see_receipts(n: &NoticeRow, user: &CurrentUser) -> bool {
    is_sender(n, user) || user.can(Permission::ManageUsers)
}

#[derive(Template)]
#[template(path = "notice.html")]
struct ViewPage<'a> {
    lang: Lang,
    csrf: &'a str,
    n: &'a NoticeRow,
    created: String,
    deadline: Option<String>,
    files: Vec<(i16, String, i64, Option<i64>)>,
    recipient: bool,
    sender: bool,
    confirmed: Option<String>,
    signature_name: Option<String>,
}

/// `GET /notices/{id}`: the notice; a recipient's copy is marked read.
async fn view_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Response {
    let (kinds, rids) = recipients_of(&user);
    let loaded = async {
        let mut tx = state.db.school(&school).await?;
        let n = notice(&mut tx, id).await?.ok_or(Fail::NotFound)?;
        let recipient = is_recipient(&mut tx, &user, id).await?;
        if !recipient && !may_see_receipts(&n, &user) {
            return Err(Fail::NotFound);
        }
        let mut confirmed = None;
        if recipient {
            let row: (Option<DateTime<Utc>>, Option<String>) = sqlx::query_as(
                "with me as (select * from unnest($2::text[], $3::bigint[]) as me(k, i))
                 update notice_recipients r set read_at = coalesce(r.read_at, now())
                   from me where r.notice_id = $1 and r.recipient_kind = me.k and r.recipient_id = me.i
                 returning r.confirmed_at, r.signature_name",
            )
            .bind(id)
            .bind(&kinds)
            .bind(&rids)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "update inbox_items i set read_at = now()
                   from unnest($2::text[], $3::bigint[]) as me(k, id)
                  where i.recipient_kind = me.k and i.recipient_id = me.id and i.read_at is null
                    and i.source = $1",
            )
            .bind(format!("notice:{id}"))
            .bind(&kinds)
            .bind(&rids)
            .execute(&mut *tx)
            .await?;
            confirmed = Some(row);
        }
        let files: Vec<(i16, String, i64, Option<i64>)> = sqlx::query_as(
            "select n, file_name, size, file_id from notice_attachments where notice_id = $1 order by n",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((n, recipient, confirmed, files))
    }
    .await;
    let (n, recipient, confirmed, files) = match loaded {
        Ok(x) => x,
        Err(e) => return e.page(),
    };
    let (confirmed_at, signature_name) = confirmed.unwrap_or((None, None));
    let body = ViewPage {
        lang,
        csrf: &user.csrf_token,
        created: local_time(n.created_at),
        deadline: n.deadline.map(local_time),
        files,
        recipient,
        sender: may_see_receipts(&n, &user),
        confirmed: confirmed_at.map(local_time),
        signature_name,
        n: &n,
    }
    .render()
    .unwrap_or_default();
    crate::ui::page(lang, &school, &user, &n.title, &body)
}

#[derive(Debug, Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    signature_name: String,
    #[serde(default)]
    signature_png: String,
}

/// A drawn signature: a `data:image/png;base64,` URL whose bytes decode as a PNG of at
/// most [`SIGNATURE_LIMIT`] bytes.
pub fn signature_png(data_url: &str) -> Result<Vec<u8>, &'static str> {
    let b64 = data_url
        .trim()
        .strip_prefix("data:image/png;base64,")
        .ok_or("not a PNG data URL")?;
    if b64.len() > SIGNATURE_LIMIT * 4 / 3 + 8 {
        return Err("signature too large");
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| "not base64")?;
    if bytes.len() > SIGNATURE_LIMIT {
        return Err("signature too large");
    }
    let mut decoder = png::Decoder::new(Cursor::new(&bytes));
    decoder.set_limits(png::Limits {
        bytes: 16 * 1024 * 1024,
    });
    let mut reader = decoder.read_info().map_err(|_| "not a PNG")?;
    let mut buf = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut buf).map_err(|_| "not a PNG")?;
    Ok(bytes)
}

/// `POST /notices/{id}/confirm`: confirm, or sign with a typed name and/or drawn PNG.
async fn confirm_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let result = async {
        check_csrf(&user, Some(&form.csrf))?;
        let (kinds, rids) = recipients_of(&user);
        let mut tx = state.db.school(&school).await?;
        let n = notice(&mut tx, id).await?.ok_or(Fail::NotFound)?;
        if !is_recipient(&mut tx, &user, id).await? {
            return Err(Fail::NotFound);
        }
        let name = form.signature_name.trim();
        let mut key = None;
        if n.mode == "signature" {
            if name.is_empty() && form.signature_png.trim().is_empty() {
                return Err(Fail::invalid("请输入姓名或手写签名。", "Type your name or draw a signature."));
            }
            if name.chars().count() > 50 {
                return Err(Fail::invalid("姓名过长。", "The name is too long."));
            }
            if !form.signature_png.trim().is_empty() {
                let png = signature_png(&form.signature_png).map_err(|e| {
                    Fail::Invalid("签名图片无效（须为 200 KB 以内的 PNG）。".into(), format!("Invalid signature image: {e}."))
                })?;
                let k = ObjectKey::parse(&format!("notices/{id}/signatures/{}-{}.png", kinds[0], rids[0]))
                    .map_err(|e| Fail::Unavailable(e.to_string()))?;
                state
                    .store
                    .for_tenant(&school)
                    .put(&k, Bytes::from(png), "image/png")
                    .await?;
                key = Some(k.as_str().to_owned());
            }
        }
        sqlx::query(
            "update notice_recipients r
                set read_at = coalesce(r.read_at, now()), confirmed_at = coalesce(r.confirmed_at, now()),
                    signature_name = coalesce(nullif($4, ''), r.signature_name),
                    signature_key = coalesce($5, r.signature_key)
               from unnest($2::text[], $3::bigint[]) as me(k, i)
              where r.notice_id = $1 and r.recipient_kind = me.k and r.recipient_id = me.i",
        )
        .bind(id)
        .bind(&kinds)
        .bind(&rids)
        .bind((n.mode == "signature").then_some(name))
        .bind(key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to(&format!("/notices/{id}")).into_response(),
        Err(e) => e.page(),
    }
}

// ---------------------------------------------------------------------------------------
// Receipts
// ---------------------------------------------------------------------------------------

/// One recipient's receipt.
#[derive(Debug, Serialize)]
pub struct Receipt {
    pub kind: String,
    pub id: i64,
    pub name: String,
    pub class_id: Option<i64>,
    pub class_name: String,
    pub read_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub signature_name: Option<String>,
    pub signed_image: bool,
    /// The notice's deliveries to this person on other channels (email, SMS, WeChat).
    pub deliveries: Vec<Delivery>,
}

/// One delivery of a notice on one channel: `pending`, `sending`, `sent` or `dead`.
#[derive(Debug, Serialize)]
pub struct Delivery {
    pub channel: &'static str,
    pub status: String,
}

/// A channel's deliveries of a notice, counted by state.
#[derive(Debug, Default, Serialize)]
pub struct ChannelFigures {
    pub channel: &'static str,
    pub name_zh: &'static str,
    pub name_en: &'static str,
    pub sent: usize,
    /// Waiting, being sent, or held by quiet hours.
    pub waiting: usize,
    /// Given up after every retry (an admin can retry them on the delivery page).
    pub dead: usize,
}

/// A class's receipts.
#[derive(Debug, Serialize)]
pub struct ClassReceipts {
    pub class_id: Option<i64>,
    pub class_name: String,
    pub read: Vec<Receipt>,
    pub unread: Vec<Receipt>,
    pub signed: Vec<Receipt>,
}

#[derive(Debug, Serialize)]
struct Receipts {
    id: i64,
    title: String,
    mode: String,
    total: usize,
    read: usize,
    unread: usize,
    signed: usize,
    classes: Vec<ClassReceipts>,
    /// Per channel other than the inbox; empty when the school delivers only in the app.
    delivery: Vec<ChannelFigures>,
    /// Recipients one of whose deliveries was given up: (name, channel names).
    undelivered: Vec<(String, String)>,
}

/// The receipts of a notice the user sent or, for admins, any notice (anyone else: not
/// found).
async fn load_receipts(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    id: i64,
) -> Result<(NoticeRow, Vec<Receipt>), Fail> {
    let mut tx = state.db.school(school).await?;
    let n = notice(&mut tx, id).await?.ok_or(Fail::NotFound)?;
    if !may_see_receipts(&n, user) {
        return Err(Fail::NotFound);
    }
    let rows = sqlx::query(
        "select r.recipient_kind, r.recipient_id, coalesce(g.name, s.name, '') as name, r.class_id,
                coalesce(c.name, case when r.recipient_kind = 'staff' then '教职工' else '未分班' end) as class_name,
                r.read_at, r.confirmed_at, r.signature_name, r.signature_key is not null as signed_image
           from notice_recipients r
           left join guardians g on r.recipient_kind = 'guardian' and g.id = r.recipient_id
           left join staff s on r.recipient_kind = 'staff' and s.id = r.recipient_id
           left join classes c on c.id = r.class_id
           left join grades gr on gr.id = c.grade_id
          where r.notice_id = $1
          order by gr.level nulls last, c.number nulls last, r.recipient_kind, name, r.recipient_id",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let mut states =
        campus_notify::admin::statuses_for_source(&mut tx, &format!("notice:{id}")).await?;
    tx.commit().await?;
    let receipts = rows
        .into_iter()
        .map(|r| Receipt {
            deliveries: Recipient::parse(
                &r.get::<String, _>("recipient_kind"),
                r.get("recipient_id"),
            )
            .and_then(|who| states.remove(&who))
            .unwrap_or_default()
            .into_iter()
            .map(|(channel, status)| Delivery {
                channel: channel.code(),
                status,
            })
            .collect(),
            kind: r.get("recipient_kind"),
            id: r.get("recipient_id"),
            name: r.get("name"),
            class_id: r.get("class_id"),
            class_name: r.get("class_name"),
            read_at: r.get("read_at"),
            confirmed_at: r.get("confirmed_at"),
            signature_name: r.get("signature_name"),
            signed_image: r.get("signed_image"),
        })
        .collect();
    Ok((n, receipts))
}

fn group(receipts: Vec<Receipt>) -> Vec<ClassReceipts> {
    let mut out: Vec<ClassReceipts> = Vec::new();
    for r in receipts {
        if out
            .last()
            .is_none_or(|c| c.class_id != r.class_id || c.class_name != r.class_name)
        {
            out.push(ClassReceipts {
                class_id: r.class_id,
                class_name: r.class_name.clone(),
                read: Vec::new(),
                unread: Vec::new(),
                signed: Vec::new(),
            });
        }
        let c = out.last_mut().expect("pushed above");
        if r.confirmed_at.is_some() {
            c.signed.push(r);
        } else if r.read_at.is_some() {
            c.read.push(r);
        } else {
            c.unread.push(r);
        }
    }
    out
}

fn summary(n: &NoticeRow, receipts: Vec<Receipt>) -> Receipts {
    let total = receipts.len();
    let read = receipts.iter().filter(|r| r.read_at.is_some()).count();
    let signed = receipts.iter().filter(|r| r.confirmed_at.is_some()).count();
    let mut delivery: Vec<ChannelFigures> = Vec::new();
    let mut undelivered = Vec::new();
    for r in &receipts {
        let mut given_up = Vec::new();
        for d in &r.deliveries {
            let Some(channel) = notify::Channel::parse(d.channel) else {
                continue;
            };
            let i = match delivery.iter().position(|f| f.channel == d.channel) {
                Some(i) => i,
                None => {
                    let (name_zh, name_en) = channel.names();
                    delivery.push(ChannelFigures {
                        channel: d.channel,
                        name_zh,
                        name_en,
                        ..Default::default()
                    });
                    delivery.len() - 1
                }
            };
            match d.status.as_str() {
                "sent" => delivery[i].sent += 1,
                "dead" => {
                    delivery[i].dead += 1;
                    given_up.push(channel.names().0);
                }
                _ => delivery[i].waiting += 1,
            }
        }
        if !given_up.is_empty() {
            undelivered.push((r.name.clone(), given_up.join("、")));
        }
    }
    Receipts {
        delivery,
        undelivered,
        id: n.id,
        title: n.title.clone(),
        mode: n.mode.clone(),
        total,
        read,
        unread: total - read,
        signed,
        classes: group(receipts),
    }
}

#[derive(Template)]
#[template(path = "notice_receipts.html")]
struct ReceiptsPage<'a> {
    lang: Lang,
    csrf: &'a str,
    r: &'a Receipts,
}

/// `GET /notices/{id}/receipts`: the sender's view, per class.
async fn receipts_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Response {
    match load_receipts(&state, &school, &user, id).await {
        Ok((n, receipts)) => {
            let r = summary(&n, receipts);
            let body = ReceiptsPage {
                lang,
                csrf: &user.csrf_token,
                r: &r,
            }
            .render()
            .unwrap_or_default();
            crate::ui::page(lang, &school, &user, lang.pick("回执", "Receipts"), &body)
        }
        Err(e) => e.page(),
    }
}

/// `GET /api/v1/notices/{id}/receipts`.
async fn receipts_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Response {
    match load_receipts(&state, &school, &user, id).await {
        Ok((n, receipts)) => Json(summary(&n, receipts)).into_response(),
        Err(e) => e.json(),
    }
}

fn xlsx(receipts: &[Receipt]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let head = Format::new().set_bold().set_background_color("#E8EEF7");
    let quoted = Format::new().set_quote_prefix();
    let ws = book.add_worksheet();
    ws.set_name("回执")?;
    let headers = [
        "班级",
        "姓名",
        "身份",
        "已读时间",
        "确认时间",
        "签名",
        "手写签名",
    ];
    for (c, h) in headers.iter().enumerate() {
        ws.set_column_width(c as u16, if c >= 3 { 18.0 } else { 14.0 })?;
        ws.write_string_with_format(0, c as u16, *h, &head)?;
    }
    ws.set_freeze_panes(1, 0)?;
    for (i, r) in receipts.iter().enumerate() {
        let row = i as u32 + 1;
        let who = if r.kind == "staff" {
            "教职工"
        } else {
            "家长"
        };
        let signature = match (&r.signature_name, r.signed_image) {
            (Some(n), true) => format!("{n}（手写）"),
            (Some(n), false) => n.clone(),
            (None, true) => "（手写）".into(),
            (None, false) => String::new(),
        };
        let cells = [
            r.class_name.clone(),
            r.name.clone(),
            who.to_owned(),
            r.read_at.map(local_time).unwrap_or_default(),
            r.confirmed_at.map(local_time).unwrap_or_default(),
            signature,
            if r.signed_image { "有" } else { "无" }.to_owned(),
        ];
        for (c, v) in cells.iter().enumerate() {
            // Names are people's own text: a formula-like one stays text when edited.
            if campus_web::sheet::is_risky(v) {
                ws.write_string_with_format(row, c as u16, v, &quoted)?;
            } else {
                ws.write_string(row, c as u16, v)?;
            }
        }
    }
    book.save_to_buffer()
}

/// `GET /notices/{id}/receipts.xlsx`.
async fn receipts_xlsx(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Response {
    let (n, receipts) = match load_receipts(&state, &school, &user, id).await {
        Ok(x) => x,
        Err(e) => return e.page(),
    };
    match xlsx(&receipts) {
        Ok(bytes) => (
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    content_disposition(
                        &format!("notice-{id}-receipts.xlsx"),
                        &format!("{}-回执.xlsx", n.title.chars().take(40).collect::<String>()),
                    ),
                ),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => Fail::Unavailable(e.to_string()).page(),
    }
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Sends a reminder to the recipients who have not read the notice; at most once a day.
/// Returns how many were reminded.
async fn remind(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    id: i64,
) -> Result<u64, Fail> {
    let mut tx = state.db.school(school).await?;
    let n = notice(&mut tx, id).await?.ok_or(Fail::NotFound)?;
    if !may_see_receipts(&n, user) {
        return Err(Fail::NotFound);
    }
    let unread: Vec<(String, i64)> = sqlx::query_as(
        "select recipient_kind, recipient_id from notice_recipients where notice_id = $1 and read_at is null",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let today = Utc::now()
        .with_timezone(&FixedOffset::east_opt(8 * 3600).expect("valid offset"))
        .date_naive();
    let people = unread
        .into_iter()
        .map(|(k, i)| {
            if k == "staff" {
                Recipient::Staff(i)
            } else {
                Recipient::Guardian(i)
            }
        })
        .collect::<Vec<_>>();
    let key = format!("notice:{id}:remind:{today}");
    let link = format!("/notices/{id}");
    let title = format!("提醒：{}", n.title)
        .chars()
        .take(200)
        .collect::<String>();
    let sent = notify::send(
        &mut tx,
        &Audience::People(people),
        &Message {
            category: Category::Notices,
            title: &title,
            body: "您还没有阅读这条通知，请尽快查看。",
            link: Some(&link),
            source: &format!("notice:{id}"),
            dedupe_key: Some(&key),
            en: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(sent)
}

/// `POST /notices/{id}/remind` (form with `csrf`; or `X-CSRF-Token`).
async fn remind_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let token = form
        .as_ref()
        .ok()
        .map(|f| f.csrf.as_str())
        .filter(|t| !t.is_empty())
        .or_else(|| header_token(&headers));
    if let Err(e) = check_csrf(&user, token) {
        return e.page();
    }
    match remind(&state, &school, &user, id).await {
        Ok(n) => Redirect::to(&format!("/notices/{id}/receipts?reminded={n}")).into_response(),
        Err(e) => e.page(),
    }
}

// ---------------------------------------------------------------------------------------
// Attachments
// ---------------------------------------------------------------------------------------

/// Characters safe in the plain `filename=` of a Content-Disposition.
fn ascii_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.trim_matches(['_', '.']).is_empty() {
        "attachment".into()
    } else {
        s
    }
}

/// `GET /notices/{id}/files/{n}`: for the sender, the school's admins and the recipients
/// only.
async fn file(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path((id, n)): Path<(i64, i16)>,
) -> Response {
    let result = async {
        let mut tx = state.db.school(&school).await?;
        let notice = notice(&mut tx, id).await?.ok_or(Fail::NotFound)?;
        if !may_see_receipts(&notice, &user) && !is_recipient(&mut tx, &user, id).await? {
            return Err(Fail::NotFound);
        }
        let (key, name): (String, String) = sqlx::query_as(
            "select object_key, file_name from notice_attachments where notice_id = $1 and n = $2",
        )
        .bind(id)
        .bind(n)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Fail::NotFound)?;
        tx.commit().await?;
        let key = ObjectKey::parse(&key).map_err(|e| Fail::Unavailable(e.to_string()))?;
        let (bytes, _) = state
            .store
            .for_tenant(&school)
            .get(&key)
            .await?
            .ok_or(Fail::NotFound)?;
        Ok((name, bytes))
    }
    .await;
    match result {
        Ok((name, bytes)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    content_disposition(&ascii_name(&name), &name),
                ),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
                (header::CACHE_CONTROL, "private, no-store".to_owned()),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => e.page(),
    }
}

/// `GET /notices/{id}/signatures/{kind}/{recipient}`: a recipient's drawn signature, for
/// those who may see the notice's receipts; everyone else, and every other school's ids,
/// get 404.
async fn signature_image(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path((id, kind, recipient)): Path<(i64, String, i64)>,
) -> Response {
    let result = async {
        let mut tx = state.db.school(&school).await?;
        let n = notice(&mut tx, id).await?.ok_or(Fail::NotFound)?;
        if !may_see_receipts(&n, &user) {
            return Err(Fail::NotFound);
        }
        let key: Option<String> = sqlx::query_scalar(
            "select signature_key from notice_recipients
              where notice_id = $1 and recipient_kind = $2 and recipient_id = $3",
        )
        .bind(id)
        .bind(&kind)
        .bind(recipient)
        .fetch_optional(&mut *tx)
        .await?
        .flatten();
        tx.commit().await?;
        let key = ObjectKey::parse(&key.ok_or(Fail::NotFound)?)
            .map_err(|e| Fail::Unavailable(e.to_string()))?;
        let (bytes, _) = state
            .store
            .for_tenant(&school)
            .get(&key)
            .await?
            .ok_or(Fail::NotFound)?;
        Ok(bytes)
    }
    .await;
    match result {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CACHE_CONTROL, "private, max-age=300"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => e.page(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_and_handlers_are_stripped() {
        let clean = sanitise(
            r#"<p onclick="x()">好<script>alert(1)</script><img src="a.png" onerror="y()"><a href="javascript:z()">l</a></p>"#,
        );
        assert!(
            !clean.contains("script") && !clean.contains("onclick") && !clean.contains("onerror")
        );
        assert!(!clean.contains("javascript:"), "{clean}");
        assert!(clean.contains("<p>好"), "{clean}");
    }

    #[test]
    fn file_names_fall_back_to_ascii() {
        assert_eq!(ascii_name("春游 安排.pdf"), "_____.pdf");
        assert_eq!(ascii_name("\"evil\r\n.txt"), "_evil__.txt");
        assert_eq!(ascii_name("通知"), "attachment");
    }

    #[test]
    fn signatures_must_be_small_pngs() {
        assert!(signature_png("data:image/png;base64,aGVsbG8=").is_err());
        assert!(signature_png("data:text/html;base64,aGVsbG8=").is_err());
    }
}
