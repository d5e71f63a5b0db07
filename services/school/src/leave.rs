//! Leave (请假): a parent asks for leave for their own child; the head teacher of the
//! pupil's class approves first, and when the leave spans more calendar days than the
//! school's threshold the grade leader approves as well. Approval marks the pupil on leave
//! in the registers already taken whose session the leave covers (roll call pre-marks later
//! ones). Parents may cancel while pending and report an early return. Every step notifies
//! through [`crate::notify::send`] in the same transaction.
//!
//! No two pending or approved requests of one pupil overlap: the pupil's row is locked and
//! the overlap checked inside the transaction (409).
//!
//! A request lasts whole days, half a day or from a start to an end time ([`span`]) and may
//! carry a photo ([`photo`]). The pages and the JSON API ([`api`]) call the same functions.

mod api;
mod photo;
mod span;

pub use photo::LeaveFiles;
pub(crate) use span::covers_register;

use askama::Template;
use axum::extract::multipart::Multipart;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{CurrentSchool, SchoolTx, Tenant};
use campus_web::Lang;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::attendance::{check_csrf, refuse, today, Refusal, TZ_SQL};
use crate::notify::{self, Audience, Category, Message, Recipient};
use crate::ui::page;
use crate::SchoolState;
use photo::Photo;
use span::{Asked, When};

pub(crate) fn routes() -> Router<SchoolState> {
    Router::new()
        .route("/leave", get(list))
        .route("/leave/new", get(new_form).post(submit))
        .route("/leave/{id}", get(detail))
        .route("/leave/{id}/photo", get(photo::serve))
        .route("/leave/{id}/{action}", post(act))
        .merge(api::routes())
        .layer(DefaultBodyLimit::max(photo::BODY_LIMIT))
}

const KINDS: [(&str, &str, &str); 3] = [
    ("sick", "病假", "Sick"),
    ("personal", "事假", "Personal"),
    ("other", "其他", "Other"),
];

const STATUSES: [&str; 5] = ["pending", "approved", "rejected", "cancelled", "returned"];

fn kind_name(code: &str) -> &'static str {
    KINDS.iter().find(|k| k.0 == code).map_or("其他", |k| k.1)
}

fn status_name(code: &str) -> &'static str {
    match code {
        "pending" => "待审批",
        "approved" => "已批准",
        "rejected" => "未批准",
        "cancelled" => "已撤销",
        "returned" => "已销假",
        _ => "",
    }
}

fn step_name(code: &str) -> &'static str {
    match code {
        "head_teacher" => "班主任",
        "grade_leader" => "年级组长",
        _ => "",
    }
}

/// Sees and decides every request (school admins, principals).
fn leader(user: &CurrentUser) -> bool {
    user.can(Permission::ApproveLeave)
        && (user.can(Permission::ManageUsers) || user.can(Permission::ViewAudit))
}

struct Child {
    id: i64,
    name: String,
    class_name: String,
}

async fn own_children(tx: &mut SchoolTx, guardian: i64) -> sqlx::Result<Vec<Child>> {
    Ok(sqlx::query(
        "select s.id, s.name, c.name as class_name from students s
           join student_guardians sg on sg.student_id = s.id join classes c on c.id = s.class_id
          where sg.guardian_id = $1 and s.left_on is null order by s.id",
    )
    .bind(guardian)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| Child {
        id: r.get("id"),
        name: r.get("name"),
        class_name: r.get("class_name"),
    })
    .collect())
}

fn parent_of(user: &CurrentUser) -> Result<i64, Refusal> {
    match (user.can(Permission::OwnChildren), user.guardian_id) {
        (true, Some(g)) => Ok(g),
        _ => Err(refuse(
            StatusCode::FORBIDDEN,
            "只有家长可以为孩子请假。",
            "Only parents ask for leave.",
        )),
    }
}

#[derive(Template)]
#[template(path = "leave_new.html")]
struct NewPage<'a> {
    lang: Lang,
    children: Vec<Child>,
    kinds: [(&'static str, &'static str, &'static str); 3],
    /// The morning and afternoon sessions, e.g. `08:00–12:00`.
    sessions: (String, String),
    csrf: &'a str,
}

/// `GET /leave/new`.
pub(crate) async fn new_form(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    let result = async {
        let guardian = parent_of(&user)?;
        let mut tx = state.db.school(&school).await?;
        let children = own_children(&mut tx, guardian).await?;
        let s = span::sessions(&mut tx).await?;
        tx.commit().await?;
        let hm = |t: chrono::NaiveTime| t.format("%H:%M").to_string();
        let sessions = (
            format!("{}–{}", hm(s.morning.0), hm(s.morning.1)),
            format!("{}–{}", hm(s.afternoon.0), hm(s.afternoon.1)),
        );
        Ok::<_, Refusal>((children, sessions))
    }
    .await;
    match result {
        Ok((children, sessions)) => {
            let body = NewPage {
                lang,
                children,
                sessions,
                kinds: KINDS,
                csrf: &user.csrf_token,
            }
            .render()
            .unwrap_or_default();
            page(
                lang,
                &school,
                &user,
                lang.pick("请假申请", "Ask for leave"),
                &body,
            )
        }
        Err(r) => r.page(&school),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NewLeave {
    csrf: Option<String>,
    #[serde(default)]
    student_id: String,
    #[serde(default)]
    kind: String,
    /// `days` (`start_date`–`end_date`), `morning` / `afternoon` (`date`) or `time`
    /// (`starts_at`–`ends_at`, also when absent).
    #[serde(default)]
    span: String,
    #[serde(default)]
    start_date: String,
    #[serde(default)]
    end_date: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    starts_at: String,
    #[serde(default)]
    ends_at: String,
    #[serde(default)]
    reason: String,
}

impl NewLeave {
    fn when(&self) -> When<'_> {
        When {
            span: &self.span,
            start_date: &self.start_date,
            end_date: &self.end_date,
            date: &self.date,
            starts_at: &self.starts_at,
            ends_at: &self.ends_at,
        }
    }
}

fn local(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// Checks and stores a request (with its photo, if any) in one transaction; the id.
async fn create(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    csrf: Option<&str>,
    form: &NewLeave,
    photo: Option<Photo>,
) -> Result<i64, Refusal> {
    let guardian = parent_of(user)?;
    check_csrf(user, csrf)?;
    let student: i64 = form.student_id.trim().parse().map_err(|_| {
        refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "请选择要请假的孩子。",
            "Choose the child.",
        )
    })?;
    if !KINDS.iter().any(|k| k.0 == form.kind) {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "请假类型不正确（病假、事假或其他）。",
            "Unknown kind of leave.",
        ));
    }
    let asked = Asked::parse(&form.when())?;
    let reason = form.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "请填写请假事由（不超过500字）。",
            "Give a reason (at most 500 characters).",
        ));
    }

    let mut tx = state.db.school(school).await?;
    let Some(pupil) = sqlx::query(
        "select s.id, s.name, s.class_id, g.leader_staff_id from students s
           join classes c on c.id = s.class_id join grades g on g.id = c.grade_id
          where s.id = $1 and s.left_on is null
            and exists(select 1 from student_guardians sg where sg.student_id = s.id and sg.guardian_id = $2)
          for update of s",
    )
    .bind(student)
    .bind(guardian)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(refuse(StatusCode::NOT_FOUND, "找不到该学生，或您不是其家长。", "No such child of yours."));
    };
    let (start, end) = asked.times(&span::sessions(&mut tx).await?);
    let days = ((end - chrono::Duration::seconds(1)).date() - start.date()).num_days() + 1;
    let (starts, ends): (DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(&format!(
        "select $1::timestamp at time zone {TZ_SQL}, $2::timestamp at time zone {TZ_SQL}"
    ))
    .bind(start)
    .bind(end)
    .fetch_one(&mut *tx)
    .await?;
    let overlapping: bool = sqlx::query_scalar(
        "select exists(select 1 from leave_requests where student_id = $1 and status in ('pending', 'approved')
                        and starts_at < $3 and ends_at > $2)",
    )
    .bind(student)
    .bind(starts)
    .bind(ends)
    .fetch_one(&mut *tx)
    .await?;
    if overlapping {
        return Err(refuse(
            StatusCode::CONFLICT,
            "该时段与孩子已有的请假（待审批或已批准）重叠。请调整时间，或先撤销原来的申请。",
            "This overlaps another pending or approved leave of the child; change the times or cancel the other request.",
        ));
    }
    let threshold: i32 =
        sqlx::query_scalar("select leave_grade_leader_days from attendance_settings where id = 1")
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or(3);
    let long = days > i64::from(threshold);
    let steps: Vec<&str> = if long {
        vec!["head_teacher", "grade_leader"]
    } else {
        vec!["head_teacher"]
    };
    let id: i64 = sqlx::query_scalar(
        "insert into leave_requests (student_id, guardian_id, kind, span, starts_at, ends_at, reason, steps)
         values ($1, $2, $3, $4, $5, $6, $7, $8) returning id",
    )
    .bind(student)
    .bind(guardian)
    .bind(&form.kind)
    .bind(asked.code())
    .bind(starts)
    .bind(ends)
    .bind(reason)
    .bind(&steps)
    .fetch_one(&mut *tx)
    .await?;
    let name: String = pupil.get("name");
    let title = format!("{name}的{}申请", kind_name(&form.kind));
    let when = span::describe(asked.code(), &local(start), &local(end));
    let body = format!("{when}，共{days}天。事由：{reason}");
    let link = format!("/leave/{id}");
    let source = format!("leave:{id}");
    let key = format!("leave:{id}:submitted");
    let msg = Message {
        category: Category::Attendance,
        title: &title,
        body: &body,
        link: Some(&link),
        source: &source,
        dedupe_key: Some(&key),
        en: None,
    };
    notify::send(
        &mut tx,
        &Audience::HeadTeachersOfClasses(vec![pupil.get("class_id")]),
        &msg,
    )
    .await?;
    if let (true, Some(leader_id)) = (long, pupil.get::<Option<i64>, _>("leader_staff_id")) {
        notify::send(
            &mut tx,
            &Audience::People(vec![Recipient::Staff(leader_id)]),
            &msg,
        )
        .await?;
    }
    match photo {
        Some(p) => {
            let (key, replaced) =
                photo::attach(state, school, user.account_id, &mut tx, id, &p).await?;
            photo::commit(state, school, tx, &key, replaced).await?;
        }
        None => tx.commit().await?,
    }
    Ok(id)
}

/// The new-request form as sent by the page: multipart with an optional `photo` file, or
/// (without a photo) URL-encoded.
async fn read_submission(req: Request) -> Result<(NewLeave, Option<Photo>), Refusal> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let invalid = || {
        refuse(
            StatusCode::BAD_REQUEST,
            "表单无效，请刷新后重试。",
            "Invalid form; reload and try again.",
        )
    };
    if !multipart {
        let Form(form) = Form::<NewLeave>::from_request(req, &())
            .await
            .map_err(|_| invalid())?;
        return Ok((form, None));
    }
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > photo::BODY_LIMIT)
    {
        return Err(photo::too_large());
    }
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|_| invalid())?;
    let field_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            photo::too_large()
        } else {
            invalid()
        }
    };
    let mut fields = serde_json::Map::new();
    let mut upload = None;
    while let Some(mut field) = mp.next_field().await.map_err(field_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        let limit = if name == "photo" {
            photo::PHOTO_MAX
        } else {
            8192
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(field_error)? {
            if bytes.len() + chunk.len() > limit {
                return Err(if name == "photo" {
                    photo::too_large()
                } else {
                    refuse(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "填写的内容过长。",
                        "A field is too long.",
                    )
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        if name == "photo" {
            upload = photo::accept(bytes.into())?;
        } else {
            fields.insert(name, String::from_utf8_lossy(&bytes).into_owned().into());
        }
    }
    let form = serde_json::from_value(fields.into()).map_err(|_| invalid())?;
    Ok((form, upload))
}

/// `POST /leave/new`.
pub(crate) async fn submit(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    req: Request,
) -> Response {
    let result = async {
        let (form, photo) = read_submission(req).await?;
        create(&state, &school, &user, form.csrf.as_deref(), &form, photo).await
    }
    .await;
    match result {
        Ok(id) => Redirect::to(&format!("/leave/{id}")).into_response(),
        Err(r) => r.page(&school),
    }
}

/// One request in a list.
#[derive(Debug, Serialize)]
pub(crate) struct Item {
    pub id: i64,
    pub student_id: i64,
    pub pupil: String,
    pub class_id: i64,
    pub class_name: String,
    pub kind: String,
    pub span: String,
    pub status: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The span in words, in the school's time zone.
    pub when: String,
    pub has_photo: bool,
}

impl Item {
    fn kind_name(&self) -> &'static str {
        kind_name(&self.kind)
    }

    fn status_name(&self) -> &'static str {
        status_name(&self.status)
    }
}

/// Whose requests a list may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The signed-in parent's children.
    Family,
    /// The classes the approver heads, the grade they lead, or every class for school leaders.
    Staff,
    /// Both.
    All,
}

/// Filters of a list; `None` is no filter.
#[derive(Default)]
pub(crate) struct Filter {
    pub statuses: Option<Vec<String>>,
    /// Leave that lasts into this day or later.
    pub from: Option<NaiveDate>,
    /// Leave that starts on or before this day.
    pub to: Option<NaiveDate>,
    pub class_id: Option<i64>,
}

/// The requests of `scope` the person may see, pending first, then the latest; and how
/// many there are in all.
pub(crate) async fn find(
    tx: &mut SchoolTx,
    user: &CurrentUser,
    scope: Scope,
    filter: &Filter,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<Item>, i64)> {
    let guardian = user
        .guardian_id
        .filter(|_| user.can(Permission::OwnChildren) && scope != Scope::Staff);
    let approver = user.can(Permission::ApproveLeave) && scope != Scope::Family;
    let condition = format!(
        "from leave_requests l join students s on s.id = l.student_id
           join classes c on c.id = s.class_id join grades g on g.id = c.grade_id
          where (($1::bigint is not null and exists(select 1 from student_guardians sg where sg.student_id = s.id and sg.guardian_id = $1))
                 or ($2 and $3::bigint is not null and (c.head_teacher_id = $3 or g.leader_staff_id = $3))
                 or ($2 and $4))
            and ($5::text[] is null or l.status = any($5))
            and ($6::date is null or l.ends_at > ($6::date::timestamp at time zone {TZ_SQL}))
            and ($7::date is null or l.starts_at < (($7::date + 1)::timestamp at time zone {TZ_SQL}))
            and ($8::bigint is null or c.id = $8)"
    );
    macro_rules! bound {
        ($q:expr) => {
            $q.bind(guardian)
                .bind(approver)
                .bind(user.staff_id)
                .bind(leader(user))
                .bind(&filter.statuses)
                .bind(filter.from)
                .bind(filter.to)
                .bind(filter.class_id)
        };
    }
    let total: i64 = bound!(sqlx::query_scalar(&format!("select count(*) {condition}")))
        .fetch_one(&mut **tx)
        .await?;
    let rows = bound!(sqlx::query(&format!(
        "select l.id, l.student_id, s.name as pupil, c.id as class_id, c.name as class_name,
                l.kind, l.span, l.status, l.starts_at, l.ends_at, l.photo_key is not null as has_photo,
                to_char(l.starts_at at time zone {TZ_SQL}, 'YYYY-MM-DD HH24:MI') as starts,
                to_char(l.ends_at at time zone {TZ_SQL}, 'YYYY-MM-DD HH24:MI') as ends
           {condition}
          order by (l.status = 'pending') desc, l.starts_at desc, l.id desc limit $9 offset $10"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut **tx)
    .await?;
    let items = rows
        .into_iter()
        .map(|r| {
            let span: String = r.get("span");
            Item {
                id: r.get("id"),
                student_id: r.get("student_id"),
                pupil: r.get("pupil"),
                class_id: r.get("class_id"),
                class_name: r.get("class_name"),
                kind: r.get("kind"),
                when: span::describe(&span, r.get("starts"), r.get("ends")),
                span,
                status: r.get("status"),
                starts_at: r.get("starts_at"),
                ends_at: r.get("ends_at"),
                has_photo: r.get("has_photo"),
            }
        })
        .collect();
    Ok((items, total))
}

#[derive(Template)]
#[template(path = "leave_list.html")]
struct ListPage {
    lang: Lang,
    parent: bool,
    approver: bool,
    /// The parent's children's requests.
    family: Vec<Item>,
    /// Waiting for a decision, in the approver's classes.
    pending: Vec<Item>,
    /// Approved leave of today in the approver's classes.
    today: Vec<Item>,
}

/// `GET /leave`: parents their children's requests; head teachers and grade leaders the
/// pending requests of their classes and grades and today's approved leave there; school
/// leaders the same for every class.
pub(crate) async fn list(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    let parent = user.guardian_id.is_some() && user.can(Permission::OwnChildren);
    let approver = user.can(Permission::ApproveLeave);
    let result = async {
        if !parent && !approver {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "您的身份不能查看请假。",
                "You may not see leave requests.",
            ));
        }
        let mut tx = state.db.school(&school).await?;
        let mut page = ListPage {
            lang,
            parent,
            approver,
            family: Vec::new(),
            pending: Vec::new(),
            today: Vec::new(),
        };
        if parent {
            page.family = find(&mut tx, &user, Scope::Family, &Filter::default(), 200, 0)
                .await?
                .0;
        }
        if approver {
            let pending = Filter {
                statuses: Some(vec!["pending".into()]),
                ..Filter::default()
            };
            page.pending = find(&mut tx, &user, Scope::Staff, &pending, 200, 0)
                .await?
                .0;
            let day = today(&mut tx).await?;
            let current = Filter {
                statuses: Some(vec!["approved".into(), "returned".into()]),
                from: Some(day),
                to: Some(day),
                ..Filter::default()
            };
            page.today = find(&mut tx, &user, Scope::Staff, &current, 200, 0)
                .await?
                .0;
        }
        tx.commit().await?;
        Ok(page)
    }
    .await;
    match result {
        Ok(p) => {
            let body = p.render().unwrap_or_default();
            page(lang, &school, &user, lang.pick("请假", "Leave"), &body)
        }
        Err(r) => r.page(&school),
    }
}

/// One request and how the viewer stands to it.
struct Leave {
    id: i64,
    student_id: i64,
    pupil: String,
    class_id: i64,
    class_name: String,
    guardian_id: Option<i64>,
    kind: String,
    span: String,
    status: String,
    steps: Vec<String>,
    starts: String,
    ends: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    reason: String,
    photo_key: Option<String>,
    photo_type: Option<String>,
    photo_file_id: Option<i64>,
    approvals: Vec<(String, String, String, Option<String>)>,
    is_parent: bool,
    heads: bool,
    leads_grade: bool,
    started: bool,
    ended: bool,
}

impl Leave {
    /// The next step waiting for a decision.
    fn next_step(&self) -> Option<&str> {
        if self.status != "pending" {
            return None;
        }
        self.steps.iter().map(String::as_str).find(|s| {
            !self
                .approvals
                .iter()
                .any(|a| a.0 == *s && a.1 == "approved")
        })
    }

    fn may_decide(&self, user: &CurrentUser) -> bool {
        user.can(Permission::ApproveLeave)
            && match self.next_step() {
                Some("head_teacher") => self.heads || leader(user),
                Some("grade_leader") => self.leads_grade || leader(user),
                _ => false,
            }
    }

    fn may_cancel(&self) -> bool {
        self.is_parent && self.status == "pending"
    }

    fn may_return(&self) -> bool {
        self.status == "approved" && self.started && !self.ended
    }

    fn when(&self) -> String {
        span::describe(&self.span, &self.starts, &self.ends)
    }

    fn photo_url(&self) -> Option<String> {
        self.photo_key
            .as_ref()
            .map(|_| format!("/leave/{}/photo", self.id))
    }

    fn to_json(&self, user: &CurrentUser) -> LeaveJson {
        LeaveJson {
            id: self.id,
            student_id: self.student_id,
            pupil: self.pupil.clone(),
            class_id: self.class_id,
            class_name: self.class_name.clone(),
            kind: self.kind.clone(),
            span: self.span.clone(),
            status: self.status.clone(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            when: self.when(),
            reason: self.reason.clone(),
            steps: self.steps.clone(),
            next_step: self.next_step().map(str::to_owned),
            approvals: self
                .approvals
                .iter()
                .map(|a| ApprovalJson {
                    step: a.0.clone(),
                    decision: a.1.clone(),
                    at: a.2.clone(),
                    note: a.3.clone(),
                })
                .collect(),
            photo_url: self.photo_url(),
            photo_type: self.photo_type.clone(),
            photo_file_id: self.photo_file_id,
            may_decide: self.may_decide(user),
            may_cancel: self.may_cancel(),
            may_return: self.may_return(),
        }
    }
}

/// A request as the JSON API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct LeaveJson {
    id: i64,
    student_id: i64,
    pupil: String,
    class_id: i64,
    class_name: String,
    kind: String,
    span: String,
    status: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    when: String,
    reason: String,
    steps: Vec<String>,
    next_step: Option<String>,
    approvals: Vec<ApprovalJson>,
    photo_url: Option<String>,
    photo_type: Option<String>,
    /// The photo as a file of the files service (`/files/{id}` previews it), for photos
    /// added since the files service holds them.
    photo_file_id: Option<i64>,
    may_decide: bool,
    may_cancel: bool,
    may_return: bool,
}

#[derive(Debug, Serialize)]
struct ApprovalJson {
    step: String,
    decision: String,
    /// Local time, `YYYY-MM-DD HH:MI`.
    at: String,
    note: Option<String>,
}

/// The request as JSON for this person, read in a transaction of its own.
pub(crate) async fn detail_json_of(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    id: i64,
) -> Result<LeaveJson, Refusal> {
    let mut tx = state.db.school(school).await?;
    let l = load(&mut tx, user, id, false).await?;
    tx.commit().await?;
    Ok(l.to_json(user))
}

pub(crate) fn header_token(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}

/// Loads a request the person may see (locked for update when `lock`).
async fn load(
    tx: &mut SchoolTx,
    user: &CurrentUser,
    id: i64,
    lock: bool,
) -> Result<Leave, Refusal> {
    let row = sqlx::query(&format!(
        "select l.id, l.student_id, s.name as pupil, c.id as class_id, c.name as class_name, l.guardian_id, l.kind,
                l.span, l.status, l.steps, l.reason, l.starts_at, l.ends_at, l.photo_key, l.photo_type,
                l.photo_file_id,
                to_char(l.starts_at at time zone {TZ_SQL}, 'YYYY-MM-DD HH24:MI') as starts,
                to_char(l.ends_at at time zone {TZ_SQL}, 'YYYY-MM-DD HH24:MI') as ends,
                l.starts_at <= now() as started, l.ends_at <= now() as ended,
                c.head_teacher_id, g.leader_staff_id,
                exists(select 1 from student_guardians sg where sg.student_id = s.id and sg.guardian_id = $2) as is_parent
           from leave_requests l join students s on s.id = l.student_id
           join classes c on c.id = s.class_id join grades g on g.id = c.grade_id
          where l.id = $1 {}",
        if lock { "for update of l" } else { "" }
    ))
    .bind(id)
    .bind(user.guardian_id.filter(|_| user.can(Permission::OwnChildren)))
    .fetch_optional(&mut **tx)
    .await?;
    let not_found = || {
        refuse(
            StatusCode::NOT_FOUND,
            "找不到该请假申请。",
            "No such leave request.",
        )
    };
    let row = row.ok_or_else(not_found)?;
    let staff = user.staff_id;
    let heads = staff.is_some() && row.get::<Option<i64>, _>("head_teacher_id") == staff;
    let leads_grade = staff.is_some() && row.get::<Option<i64>, _>("leader_staff_id") == staff;
    let is_parent: bool = row.get("is_parent");
    let approver = user.can(Permission::ApproveLeave) && (heads || leads_grade || leader(user));
    if !(is_parent || approver) {
        return Err(not_found());
    }
    let approvals = sqlx::query(&format!(
        "select step, decision, to_char(at at time zone {TZ_SQL}, 'YYYY-MM-DD HH24:MI') as at, note
           from leave_approvals where leave_id = $1 order by at"
    ))
    .bind(id)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| (r.get("step"), r.get("decision"), r.get("at"), r.get("note")))
    .collect();
    Ok(Leave {
        id,
        student_id: row.get("student_id"),
        pupil: row.get("pupil"),
        class_id: row.get("class_id"),
        class_name: row.get("class_name"),
        guardian_id: row.get("guardian_id"),
        kind: row.get("kind"),
        span: row.get("span"),
        status: row.get("status"),
        steps: row.get("steps"),
        starts: row.get("starts"),
        ends: row.get("ends"),
        starts_at: row.get("starts_at"),
        ends_at: row.get("ends_at"),
        reason: row.get("reason"),
        photo_key: row.get("photo_key"),
        photo_type: row.get("photo_type"),
        photo_file_id: row.get("photo_file_id"),
        approvals,
        is_parent,
        heads,
        leads_grade,
        started: row.get("started"),
        ended: row.get("ended"),
    })
}

#[derive(Template)]
#[template(path = "leave_detail.html")]
struct DetailPage<'a> {
    lang: Lang,
    l: &'a Leave,
    when: String,
    /// The photo's address, and whether browsers show it inline (HEIC is only linked).
    photo: Option<(String, bool)>,
    kind: &'static str,
    status: &'static str,
    steps: Vec<&'static str>,
    approvals: Vec<(&'static str, &'static str, &'a str, &'a str)>,
    may_decide: bool,
    may_cancel: bool,
    may_return: bool,
    csrf: &'a str,
}

/// `GET /leave/{id}`.
pub(crate) async fn detail(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Response {
    let result = async {
        let mut tx = state.db.school(&school).await?;
        let l = load(&mut tx, &user, id, false).await?;
        tx.commit().await?;
        Ok::<_, Refusal>(l)
    }
    .await;
    match result {
        Ok(l) => {
            let body = DetailPage {
                lang,
                when: l.when(),
                photo: l
                    .photo_url()
                    .map(|u| (u, l.photo_type.as_deref() != Some("image/heic"))),
                kind: kind_name(&l.kind),
                status: status_name(&l.status),
                steps: l.steps.iter().map(|s| step_name(s)).collect(),
                approvals: l
                    .approvals
                    .iter()
                    .map(|a| {
                        (
                            step_name(&a.0),
                            if a.1 == "approved" {
                                "同意"
                            } else {
                                "不同意"
                            },
                            a.2.as_str(),
                            a.3.as_deref().unwrap_or(""),
                        )
                    })
                    .collect(),
                may_decide: l.may_decide(&user),
                may_cancel: l.may_cancel(),
                may_return: l.may_return(),
                csrf: &user.csrf_token,
                l: &l,
            }
            .render()
            .unwrap_or_default();
            page(
                lang,
                &school,
                &user,
                lang.pick("请假详情", "Leave request"),
                &body,
            )
        }
        Err(r) => r.page(&school),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActForm {
    csrf: Option<String>,
    note: Option<String>,
}

async fn tell_parent(tx: &mut SchoolTx, l: &Leave, outcome: &str, what: &str) -> sqlx::Result<u64> {
    let audience = match l.guardian_id {
        Some(g) => Audience::People(vec![Recipient::Guardian(g)]),
        None => Audience::GuardiansOfStudents(vec![l.student_id]),
    };
    let title = format!("{}的请假{what}", l.pupil);
    let body = format!("{}：{what}。", l.when());
    let link = format!("/leave/{}", l.id);
    let source = format!("leave:{}", l.id);
    let key = format!("leave:{}:{outcome}", l.id);
    let what_en = if outcome == "approved" {
        "approved"
    } else {
        "not approved"
    };
    let title_en = format!("Leave for {}: {what_en}", l.pupil);
    let body_en = format!("The leave from {} to {} was {what_en}.", l.starts, l.ends);
    notify::send(
        tx,
        &audience,
        &Message {
            category: Category::Attendance,
            title: &title,
            body: &body,
            link: Some(&link),
            source: &source,
            dedupe_key: Some(&key),
            en: Some((&title_en, &body_en)),
        },
    )
    .await
}

async fn decide(
    tx: &mut SchoolTx,
    user: &CurrentUser,
    l: &Leave,
    approve: bool,
    note: Option<&str>,
) -> Result<(), Refusal> {
    if !user.can(Permission::ApproveLeave) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "您的身份不能审批请假。",
            "You may not approve leave.",
        ));
    }
    if note.is_some_and(|n| n.trim().chars().count() > 500) {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "审批意见不能超过500字。",
            "The note may be at most 500 characters.",
        ));
    }
    let Some(step) = l.next_step() else {
        return Err(refuse(
            StatusCode::CONFLICT,
            "该请假已处理，不能再审批。",
            "This request has been decided.",
        ));
    };
    if !l.may_decide(user) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            if step == "head_teacher" {
                "请等待班主任审批。"
            } else {
                "请等待年级组长审批。"
            },
            "This step is not yours to decide.",
        ));
    }
    sqlx::query(
        "insert into leave_approvals (leave_id, step, decision, by_staff_id, by_account, note) values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(l.id)
    .bind(step)
    .bind(if approve { "approved" } else { "rejected" })
    .bind(user.staff_id)
    .bind(user.account_id)
    .bind(note.map(str::trim).filter(|n| !n.is_empty()))
    .execute(&mut **tx)
    .await?;
    let last = l.steps.last().map(String::as_str) == Some(step);
    if !approve {
        sqlx::query(
            "update leave_requests set status = 'rejected', updated_at = now() where id = $1",
        )
        .bind(l.id)
        .execute(&mut **tx)
        .await?;
        tell_parent(tx, l, "rejected", "未获批准").await?;
    } else if !last {
        let leader_id: Option<i64> = sqlx::query_scalar(
            "select g.leader_staff_id from students s join classes c on c.id = s.class_id join grades g on g.id = c.grade_id where s.id = $1",
        )
        .bind(l.student_id)
        .fetch_one(&mut **tx)
        .await?;
        if let Some(leader_id) = leader_id {
            let title = format!("{}的请假待年级组长审批", l.pupil);
            let link = format!("/leave/{}", l.id);
            let source = format!("leave:{}", l.id);
            let key = format!("leave:{}:grade_leader", l.id);
            notify::send(
                tx,
                &Audience::People(vec![Recipient::Staff(leader_id)]),
                &Message {
                    category: Category::Attendance,
                    title: &title,
                    body: &format!("{}，班主任已同意。", l.when()),
                    link: Some(&link),
                    source: &source,
                    dedupe_key: Some(&key),
                    en: None,
                },
            )
            .await?;
        }
    } else {
        sqlx::query(
            "update leave_requests set status = 'approved', updated_at = now() where id = $1",
        )
        .bind(l.id)
        .execute(&mut **tx)
        .await?;
        sqlx::query(&format!(
            "with target as (
                select r.id as register_id, l.student_id, coalesce(m.status, 'present') as old
                  from leave_requests l join students s on s.id = l.student_id
                  join attendance_registers r on r.class_id = s.class_id
                  left join attendance_marks m on m.register_id = r.id and m.student_id = l.student_id
                 where l.id = $1
                   and r.day between (l.starts_at at time zone {TZ_SQL})::date
                                 and ((l.ends_at - interval '1 microsecond') at time zone {TZ_SQL})::date
                   and {covers}
             ), logged as (
                insert into attendance_corrections (register_id, student_id, old_status, new_status, by_staff_id, by_account, reason)
                select register_id, student_id, old, 'leave', $2, $3, '请假已批准（leave:' || $1 || '）'
                  from target where old <> 'leave'
             )
             insert into attendance_marks (register_id, student_id, status, note)
             select register_id, student_id, 'leave', 'leave:' || $1 from target
             on conflict (register_id, student_id) do update set status = 'leave', note = excluded.note",
            covers = covers_register("r.day", "r.period"),
        ))
        .bind(l.id)
        .bind(user.staff_id)
        .bind(user.account_id)
        .execute(&mut **tx)
        .await?;
        tell_parent(tx, l, "approved", "已批准").await?;
    }
    Ok(())
}

async fn act_on(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    id: i64,
    action: &str,
    csrf: Option<&str>,
    note: Option<&str>,
) -> Result<(), Refusal> {
    check_csrf(user, csrf)?;
    let mut tx = state.db.school(school).await?;
    let l = load(&mut tx, user, id, true).await?;
    match action {
        "approve" | "reject" => decide(&mut tx, user, &l, action == "approve", note).await?,
        "cancel" => {
            if !l.is_parent {
                return Err(refuse(
                    StatusCode::FORBIDDEN,
                    "只有家长可以撤销请假。",
                    "Only the parent may cancel.",
                ));
            }
            if l.status != "pending" {
                return Err(refuse(
                    StatusCode::CONFLICT,
                    "只能撤销待审批的请假。",
                    "Only pending requests can be cancelled.",
                ));
            }
            sqlx::query(
                "update leave_requests set status = 'cancelled', updated_at = now() where id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        "return" => {
            if l.status != "approved" || !l.started || l.ended {
                return Err(refuse(
                    StatusCode::CONFLICT,
                    "只有已批准、正在进行中的请假可以销假。",
                    "Only approved leave in progress can end early.",
                ));
            }
            sqlx::query("update leave_requests set status = 'returned', ends_at = now(), updated_at = now() where id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let day = today(&mut tx).await?;
            sqlx::query(
                "delete from attendance_marks m using attendance_registers r
                  where m.register_id = r.id and m.note = $1 and r.day > $2",
            )
            .bind(format!("leave:{id}"))
            .bind(day)
            .execute(&mut *tx)
            .await?;
            let classes: Vec<i64> =
                sqlx::query_scalar("select class_id from students where id = $1")
                    .bind(l.student_id)
                    .fetch_all(&mut *tx)
                    .await?;
            notify::send(
                &mut tx,
                &Audience::HeadTeachersOfClasses(classes),
                &Message {
                    category: Category::Attendance,
                    title: &format!("{}已销假返校", l.pupil),
                    body: "",
                    link: Some(&format!("/leave/{id}")),
                    source: &format!("leave:{id}"),
                    dedupe_key: Some(&format!("leave:{id}:returned")),
                    en: None,
                },
            )
            .await?;
        }
        _ => {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                "没有这个操作。",
                "No such action.",
            ))
        }
    }
    tx.commit().await?;
    Ok(())
}

/// `POST /leave/{id}/approve|reject|cancel|return`.
pub(crate) async fn act(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path((id, action)): Path<(i64, String)>,
    Form(form): Form<ActForm>,
) -> Response {
    let (csrf, note) = (form.csrf.as_deref(), form.note.as_deref());
    match act_on(&state, &school, &user, id, &action, csrf, note).await {
        Ok(()) => Redirect::to(&format!("/leave/{id}")).into_response(),
        Err(r) => r.page(&school),
    }
}
