//! Leave (请假): a parent asks for leave for their own child; the head teacher of the
//! pupil's class approves first, and when the leave spans more calendar days than the
//! school's threshold the grade leader approves as well. Approval marks the pupil on leave
//! in registers already taken for those days (roll call pre-marks later ones). Parents may
//! cancel while pending and report an early return. Every step notifies through
//! [`crate::notify::send`] in the same transaction.
//!
//! No two pending or approved requests of one pupil overlap: the pupil's row is locked and
//! the overlap checked inside the transaction (409).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{CurrentSchool, SchoolTx, Tenant};
use campus_web::Lang;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use sqlx::Row;

use crate::attendance::{check_csrf, refuse, today, Refusal, TZ_SQL};
use crate::notify::{self, Audience, Category, Message, Recipient};
use crate::ui::page;
use crate::SchoolState;

pub(crate) fn routes() -> Router<SchoolState> {
    Router::new()
        .route("/leave", get(list))
        .route("/leave/new", get(new_form).post(submit))
        .route("/leave/{id}", get(detail))
        .route("/leave/{id}/{action}", post(act))
}

const KINDS: [(&str, &str, &str); 3] = [
    ("sick", "病假", "Sick"),
    ("personal", "事假", "Personal"),
    ("other", "其他", "Other"),
];

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

fn parse_time(s: &str) -> Result<NaiveDateTime, Refusal> {
    let s = s.trim();
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .ok_or_else(|| {
        refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "开始和结束时间格式不正确，应为 年-月-日 时:分。",
            "Bad start or end time; use YYYY-MM-DD HH:MM.",
        )
    })
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
        tx.commit().await?;
        Ok::<_, Refusal>(children)
    }
    .await;
    match result {
        Ok(children) => {
            let body = NewPage {
                lang,
                children,
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

#[derive(Debug, Deserialize)]
pub(crate) struct NewLeave {
    csrf: Option<String>,
    #[serde(default)]
    student_id: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    starts_at: String,
    #[serde(default)]
    ends_at: String,
    #[serde(default)]
    reason: String,
}

async fn create(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    form: &NewLeave,
) -> Result<i64, Refusal> {
    let guardian = parent_of(user)?;
    check_csrf(user, form.csrf.as_deref())?;
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
    let start = parse_time(&form.starts_at)?;
    let end = parse_time(&form.ends_at)?;
    if end <= start {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "结束时间必须晚于开始时间。",
            "The end must be after the start.",
        ));
    }
    let reason = form.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "请填写请假事由（不超过500字）。",
            "Give a reason (at most 500 characters).",
        ));
    }
    let days = ((end - chrono::Duration::seconds(1)).date() - start.date()).num_days() + 1;

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
            "该时段与已有的请假重叠。",
            "This overlaps another leave request.",
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
        "insert into leave_requests (student_id, guardian_id, kind, starts_at, ends_at, reason, steps)
         values ($1, $2, $3, $4, $5, $6, $7) returning id",
    )
    .bind(student)
    .bind(guardian)
    .bind(&form.kind)
    .bind(starts)
    .bind(ends)
    .bind(reason)
    .bind(&steps)
    .fetch_one(&mut *tx)
    .await?;
    let name: String = pupil.get("name");
    let title = format!("{name}的{}申请", kind_name(&form.kind));
    let body = format!("{start} 至 {end}，共{days}天。事由：{reason}");
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
    tx.commit().await?;
    Ok(id)
}

/// `POST /leave/new`.
pub(crate) async fn submit(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Form(form): Form<NewLeave>,
) -> Response {
    match create(&state, &school, &user, &form).await {
        Ok(id) => Redirect::to(&format!("/leave/{id}")).into_response(),
        Err(r) => r.page(&school),
    }
}

struct Row_ {
    id: i64,
    pupil: String,
    class_name: String,
    kind: &'static str,
    starts: String,
    ends: String,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "leave_list.html")]
struct ListPage {
    lang: Lang,
    rows: Vec<Row_>,
    parent: bool,
}

/// `GET /leave`: parents their children's requests; head teachers and grade leaders the
/// pending ones of their classes and grades; school leaders all.
pub(crate) async fn list(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    let result = async {
        let guardian = user.guardian_id.filter(|_| user.can(Permission::OwnChildren));
        let approver = user.can(Permission::ApproveLeave);
        if guardian.is_none() && !approver {
            return Err(refuse(StatusCode::FORBIDDEN, "您的身份不能查看请假。", "You may not see leave requests."));
        }
        let mut tx = state.db.school(&school).await?;
        let rows = sqlx::query(&format!(
            "select l.id, s.name as pupil, c.name as class_name, l.kind, l.status,
                    to_char(l.starts_at at time zone {TZ_SQL}, 'YYYY-MM-DD HH24:MI') as starts,
                    to_char(l.ends_at at time zone {TZ_SQL}, 'YYYY-MM-DD HH24:MI') as ends
               from leave_requests l join students s on s.id = l.student_id
               join classes c on c.id = s.class_id join grades g on g.id = c.grade_id
              where ($1::bigint is not null and exists(select 1 from student_guardians sg where sg.student_id = s.id and sg.guardian_id = $1))
                 or ($2 and l.status = 'pending' and $3::bigint is not null and (c.head_teacher_id = $3 or g.leader_staff_id = $3))
                 or $4
              order by (l.status = 'pending') desc, l.starts_at desc limit 200"
        ))
        .bind(guardian)
        .bind(approver)
        .bind(user.staff_id)
        .bind(leader(&user))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|r| Row_ {
                id: r.get("id"),
                pupil: r.get("pupil"),
                class_name: r.get("class_name"),
                kind: kind_name(r.get("kind")),
                starts: r.get("starts"),
                ends: r.get("ends"),
                status: status_name(r.get("status")),
            })
            .collect())
    }
    .await;
    match result {
        Ok(rows) => {
            let body = ListPage {
                lang,
                rows,
                parent: user.guardian_id.is_some() && user.can(Permission::OwnChildren),
            }
            .render()
            .unwrap_or_default();
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
    class_name: String,
    guardian_id: Option<i64>,
    kind: String,
    status: String,
    steps: Vec<String>,
    starts: String,
    ends: String,
    reason: String,
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
}

/// Loads a request the person may see (locked for update when `lock`).
async fn load(
    tx: &mut SchoolTx,
    user: &CurrentUser,
    id: i64,
    lock: bool,
) -> Result<Leave, Refusal> {
    let row = sqlx::query(&format!(
        "select l.id, l.student_id, s.name as pupil, c.name as class_name, l.guardian_id, l.kind, l.status, l.steps, l.reason,
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
        class_name: row.get("class_name"),
        guardian_id: row.get("guardian_id"),
        kind: row.get("kind"),
        status: row.get("status"),
        steps: row.get("steps"),
        starts: row.get("starts"),
        ends: row.get("ends"),
        reason: row.get("reason"),
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
                may_cancel: l.is_parent && l.status == "pending",
                may_return: l.status == "approved" && l.started && !l.ended,
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
    let body = format!("{} 至 {}：{what}。", l.starts, l.ends);
    let link = format!("/leave/{}", l.id);
    let source = format!("leave:{}", l.id);
    let key = format!("leave:{}:{outcome}", l.id);
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
                    body: &format!("{} 至 {}，班主任已同意。", l.starts, l.ends),
                    link: Some(&link),
                    source: &source,
                    dedupe_key: Some(&key),
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
             ), logged as (
                insert into attendance_corrections (register_id, student_id, old_status, new_status, by_staff_id, by_account, reason)
                select register_id, student_id, old, 'leave', $2, $3, '请假已批准（leave:' || $1 || '）'
                  from target where old <> 'leave'
             )
             insert into attendance_marks (register_id, student_id, status, note)
             select register_id, student_id, 'leave', 'leave:' || $1 from target
             on conflict (register_id, student_id) do update set status = 'leave', note = excluded.note"
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
    form: &ActForm,
) -> Result<(), Refusal> {
    check_csrf(user, form.csrf.as_deref())?;
    let mut tx = state.db.school(school).await?;
    let l = load(&mut tx, user, id, true).await?;
    match action {
        "approve" | "reject" => {
            decide(&mut tx, user, &l, action == "approve", form.note.as_deref()).await?
        }
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
    match act_on(&state, &school, &user, id, &action, &form).await {
        Ok(()) => Redirect::to(&format!("/leave/{id}")).into_response(),
        Err(r) => r.page(&school),
    }
}
