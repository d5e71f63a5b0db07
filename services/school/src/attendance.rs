//! Attendance (考勤): the classes a person may take, the roll call of one class register
//! (everyone present unless marked late, absent, on leave or left early; pupils on approved
//! leave are pre-marked), saving a register in one transaction with every change to an
//! already-taken register logged in `attendance_corrections`, the daily summary, the list of
//! registers missing after the school's deadline with a reminder to head teachers, and the
//! same register as JSON.
//!
//! A person may take the register of a class they head or teach (`class_teachers`); holders
//! of `ManageRoster` may take any. Everyone needs `TakeAttendance`.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{CurrentSchool, SchoolTx, Tenant};
use campus_web::Lang;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::notify::{self, Category};
use crate::SchoolState;

/// The school's time zone, as SQL.
pub(crate) const TZ_SQL: &str =
    "coalesce((select timezone from school_profile where id = 1), 'Asia/Shanghai')";

/// Today in the school's time zone.
pub(crate) async fn today(tx: &mut SchoolTx) -> sqlx::Result<NaiveDate> {
    sqlx::query_scalar(&format!("select (now() at time zone {TZ_SQL})::date"))
        .fetch_one(&mut **tx)
        .await
}

/// Why a request was refused, in Chinese and English.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub zh: &'static str,
    pub en: &'static str,
}

pub(crate) fn refuse(status: StatusCode, zh: &'static str, en: &'static str) -> Refusal {
    Refusal { status, zh, en }
}

impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "attendance or leave query failed");
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "服务暂时不可用，请稍后重试。",
            "Temporarily unavailable.",
        )
    }
}

impl From<campus_tenant::TenantError> for Refusal {
    fn from(e: campus_tenant::TenantError) -> Self {
        tracing::error!(error = %e, "school transaction failed");
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "服务暂时不可用，请稍后重试。",
            "Temporarily unavailable.",
        )
    }
}

impl Refusal {
    fn titles(&self) -> (&'static str, &'static str) {
        match self.status {
            StatusCode::FORBIDDEN => ("没有权限", "Forbidden"),
            StatusCode::NOT_FOUND => ("找不到", "Not found"),
            StatusCode::CONFLICT => ("无法办理", "Conflict"),
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => {
                ("填写有误", "Invalid input")
            }
            StatusCode::PAYLOAD_TOO_LARGE => ("文件过大", "Too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ("文件格式不支持", "Unsupported file type"),
            _ => ("服务暂时不可用", "Temporarily unavailable"),
        }
    }

    pub fn page(&self, school: &Tenant) -> Response {
        let (zh, en) = self.titles();
        campus_web::message_page(self.status, &school.name, (zh, self.zh), (en, self.en))
    }

    pub fn json(&self) -> Response {
        let code = match self.status {
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::CONFLICT => "conflict",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid",
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ => "unavailable",
        };
        (
            self.status,
            Json(serde_json::json!({"code": code, "message": self.zh, "message_en": self.en})),
        )
            .into_response()
    }
}

pub(crate) fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub(crate) fn check_csrf(user: &CurrentUser, token: Option<&str>) -> Result<(), Refusal> {
    if token.is_some_and(|t| same_token(t, &user.csrf_token)) {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::FORBIDDEN,
            "页面已过期，请刷新后重试。",
            "The form has expired; reload and try again.",
        ))
    }
}

/// A pupil's attendance in one register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Present,
    Late,
    Absent,
    Leave,
    EarlyLeave,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Present,
        Status::Late,
        Status::Absent,
        Status::Leave,
        Status::EarlyLeave,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Present => "present",
            Self::Late => "late",
            Self::Absent => "absent",
            Self::Leave => "leave",
            Self::EarlyLeave => "early_leave",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::Present => ("出勤", "Present"),
            Self::Late => ("迟到", "Late"),
            Self::Absent => ("缺勤", "Absent"),
            Self::Leave => ("请假", "Leave"),
            Self::EarlyLeave => ("早退", "Left early"),
        }
    }
}

const PERIODS: [(&str, &str, &str); 3] = [
    ("morning", "上午", "Morning"),
    ("afternoon", "下午", "Afternoon"),
    ("evening", "晚自习", "Evening"),
];

fn check_period(p: &str) -> Result<(), Refusal> {
    if PERIODS.iter().any(|(c, _, _)| *c == p) {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "时段不正确（上午、下午或晚自习）。",
            "Unknown period.",
        ))
    }
}

fn parse_day(s: &str) -> Result<NaiveDate, Refusal> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "日期格式不正确，应为 年-月-日。",
            "Bad date; use YYYY-MM-DD.",
        )
    })
}

/// Whether the person sees every class (school admins).
pub(crate) fn school_wide(user: &CurrentUser) -> bool {
    user.can(Permission::ManageRoster)
}

fn may_oversee(user: &CurrentUser) -> bool {
    user.can(Permission::ManageRoster) || user.can(Permission::ViewAudit)
}

pub(crate) struct ClassInfo {
    pub id: i64,
    pub name: String,
}

/// The class if this person may take its register.
async fn class_access(
    tx: &mut SchoolTx,
    user: &CurrentUser,
    class_id: i64,
) -> Result<ClassInfo, Refusal> {
    if !user.can(Permission::TakeAttendance) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "您的身份不能点名。",
            "You may not take attendance.",
        ));
    }
    let row = sqlx::query(
        "select c.id, c.name, c.head_teacher_id,
                exists(select 1 from class_teachers t where t.class_id = c.id and t.staff_id = $2) as teaches
           from classes c where c.id = $1",
    )
    .bind(class_id)
    .bind(user.staff_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "没有这个班级。", "No such class."))?;
    let heads =
        user.staff_id.is_some() && row.get::<Option<i64>, _>("head_teacher_id") == user.staff_id;
    if !(school_wide(user) || heads || row.get::<bool, _>("teaches")) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "您不是该班的班主任或任课老师，不能点名。",
            "You neither head nor teach this class.",
        ));
    }
    Ok(ClassInfo {
        id: row.get("id"),
        name: row.get("name"),
    })
}

#[derive(Debug, Serialize)]
pub(crate) struct RollPupil {
    pub id: i64,
    pub student_no: String,
    pub name: String,
    pub status: Status,
    /// On approved leave during this register's session.
    pub on_leave: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct Roll {
    pub class_id: i64,
    pub class_name: String,
    pub day: NaiveDate,
    pub period: String,
    pub taken: bool,
    pub taken_at: Option<chrono::DateTime<chrono::Utc>>,
    pub pupils: Vec<RollPupil>,
}

async fn load_roll(
    tx: &mut SchoolTx,
    class: &ClassInfo,
    day: NaiveDate,
    period: &str,
) -> Result<Roll, Refusal> {
    let register: Option<(i64, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "select id, taken_at from attendance_registers where class_id = $1 and day = $2 and period = $3",
    )
    .bind(class.id)
    .bind(day)
    .bind(period)
    .fetch_optional(&mut **tx)
    .await?;
    let rows = sqlx::query(&format!(
        "select s.id, s.student_no, s.name, m.status,
                exists(select 1 from leave_requests l
                        where l.student_id = s.id and l.status in ('approved', 'returned')
                          and {covers}) as on_leave
           from students s
           left join attendance_marks m on m.register_id = $3 and m.student_id = s.id
          where s.class_id = $1 and s.left_on is null
          order by s.student_no",
        covers = crate::leave::covers_register("$2", "$4")
    ))
    .bind(class.id)
    .bind(day)
    .bind(register.map(|r| r.0))
    .bind(period)
    .fetch_all(&mut **tx)
    .await?;
    let pupils = rows
        .into_iter()
        .map(|r| {
            let on_leave: bool = r.get("on_leave");
            let mark: Option<String> = r.get("status");
            let status = match (&register, mark) {
                (Some(_), Some(m)) => Status::parse(&m).unwrap_or(Status::Present),
                (Some(_), None) => Status::Present,
                (None, _) if on_leave => Status::Leave,
                (None, _) => Status::Present,
            };
            RollPupil {
                id: r.get("id"),
                student_no: r.get("student_no"),
                name: r.get("name"),
                status,
                on_leave,
            }
        })
        .collect();
    Ok(Roll {
        class_id: class.id,
        class_name: class.name.clone(),
        day,
        period: period.to_owned(),
        taken: register.is_some(),
        taken_at: register.map(|r| r.1),
        pupils,
    })
}

#[derive(Debug, Serialize)]
pub(crate) struct Saved {
    pub register_id: i64,
    pub created: bool,
    pub exceptions: usize,
    pub corrections: usize,
}

/// Saves one register: the row and its exceptions; on a register already taken, every
/// changed mark is logged as a correction.
async fn save_register(
    tx: &mut SchoolTx,
    user: &CurrentUser,
    class: &ClassInfo,
    day: NaiveDate,
    period: &str,
    marks: &HashMap<i64, Status>,
    reason: Option<&str>,
) -> Result<Saved, Refusal> {
    check_period(period)?;
    if day > today(tx).await? {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "不能为将来的日期点名。",
            "That day is in the future.",
        ));
    }
    if reason.is_some_and(|r| r.chars().count() > 500) {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "更正原因不能超过500字。",
            "Reason too long.",
        ));
    }
    let pupils: Vec<i64> =
        sqlx::query_scalar("select id from students where class_id = $1 and left_on is null")
            .bind(class.id)
            .fetch_all(&mut **tx)
            .await?;
    if marks.keys().any(|id| !pupils.contains(id)) {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "名单中有不属于该班的学生。",
            "A pupil is not in this class.",
        ));
    }
    let row = sqlx::query(
        "insert into attendance_registers (class_id, day, period, taken_by, enrolled)
         values ($1, $2, $3, $4, $5)
         on conflict (class_id, day, period) do update set taken_at = attendance_registers.taken_at
         returning id, (xmax = 0) as created",
    )
    .bind(class.id)
    .bind(day)
    .bind(period)
    .bind(user.staff_id)
    .bind(pupils.len() as i32)
    .fetch_one(&mut **tx)
    .await?;
    let register_id: i64 = row.get("id");
    let created: bool = row.get("created");
    let mut corrections = 0;
    if !created {
        let old: HashMap<i64, Status> = sqlx::query_as::<_, (i64, String)>(
            "select student_id, status from attendance_marks where register_id = $1",
        )
        .bind(register_id)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .filter_map(|(id, s)| Status::parse(&s).map(|s| (id, s)))
        .collect();
        let (mut ids, mut olds, mut news) = (Vec::new(), Vec::new(), Vec::new());
        for id in pupils
            .iter()
            .chain(old.keys().filter(|k| !pupils.contains(k)))
        {
            let before = old.get(id).copied().unwrap_or(Status::Present);
            let after = marks.get(id).copied().unwrap_or(Status::Present);
            if before != after {
                ids.push(*id);
                olds.push(before.code());
                news.push(after.code());
            }
        }
        corrections = ids.len();
        sqlx::query(
            "insert into attendance_corrections (register_id, student_id, old_status, new_status, by_staff_id, by_account, reason)
             select $1, x.id, x.o, x.n, $5, $6, $7 from unnest($2::int8[], $3::text[], $4::text[]) as x(id, o, n)",
        )
        .bind(register_id)
        .bind(&ids)
        .bind(&olds)
        .bind(&news)
        .bind(user.staff_id)
        .bind(user.account_id)
        .bind(reason.filter(|r| !r.trim().is_empty()))
        .execute(&mut **tx)
        .await?;
        sqlx::query("update attendance_registers set enrolled = $2 where id = $1")
            .bind(register_id)
            .bind(pupils.len() as i32)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("delete from attendance_marks where register_id = $1")
        .bind(register_id)
        .execute(&mut **tx)
        .await?;
    let (ids, codes): (Vec<i64>, Vec<&str>) = marks
        .iter()
        .filter(|(_, s)| **s != Status::Present)
        .map(|(id, s)| (*id, s.code()))
        .unzip();
    sqlx::query(
        "insert into attendance_marks (register_id, student_id, status)
         select $1, x.id, x.s from unnest($2::int8[], $3::text[]) as x(id, s)",
    )
    .bind(register_id)
    .bind(&ids)
    .bind(&codes)
    .execute(&mut **tx)
    .await?;
    Ok(Saved {
        register_id,
        created,
        exceptions: ids.len(),
        corrections,
    })
}

// ---------------------------------------------------------------------------------------
// Pages

struct ClassToday {
    id: i64,
    name: String,
    taken: bool,
    exceptions: i64,
}

#[derive(Template)]
#[template(path = "attendance_index.html")]
struct IndexPage {
    lang: Lang,
    day: NaiveDate,
    classes: Vec<ClassToday>,
    oversee: bool,
}

/// `GET /attendance`: the classes this person may take, with today's status.
pub(crate) async fn index(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    let result = async {
        if !user.can(Permission::TakeAttendance) {
            return Err(refuse(StatusCode::FORBIDDEN, "您的身份不能点名。", "You may not take attendance."));
        }
        let mut tx = state.db.school(&school).await?;
        let day = today(&mut tx).await?;
        let rows = sqlx::query(
            "select c.id, c.name, r.id is not null as taken,
                    (select count(*) from attendance_marks m where m.register_id = r.id) as exceptions
               from classes c
               left join attendance_registers r on r.class_id = c.id and r.day = $1 and r.period = 'morning'
              where c.retired_at is null and ($2 or c.head_teacher_id = $3
                 or exists(select 1 from class_teachers t where t.class_id = c.id and t.staff_id = $3))
              order by c.grade_id, c.number",
        )
        .bind(day)
        .bind(school_wide(&user))
        .bind(user.staff_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let classes = rows
            .into_iter()
            .map(|r| ClassToday { id: r.get("id"), name: r.get("name"), taken: r.get("taken"), exceptions: r.get("exceptions") })
            .collect();
        Ok(IndexPage { lang, day, classes, oversee: may_oversee(&user) }.render().unwrap_or_default())
    }
    .await;
    match result {
        Ok(body) => crate::ui::page(
            lang,
            &school,
            &user,
            lang.pick("考勤点名", "Attendance"),
            &body,
        ),
        Err(r) => r.page(&school),
    }
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct RollQuery {
    day: Option<String>,
    period: Option<String>,
    saved: Option<String>,
}

#[derive(Template)]
#[template(path = "attendance_roll.html")]
struct RollPage<'a> {
    lang: Lang,
    roll: &'a Roll,
    csrf: &'a str,
    statuses: [Status; 5],
    periods: [(&'static str, &'static str, &'static str); 3],
    saved: bool,
}

/// `GET /attendance/{class_id}?day=&period=`: the roll call form.
pub(crate) async fn roll_call(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Path(class_id): Path<i64>,
    Query(q): Query<RollQuery>,
) -> Response {
    let q_saved = q.saved.is_some();
    let result = async {
        let mut tx = state.db.school(&school).await?;
        let class = class_access(&mut tx, &user, class_id).await?;
        let day = match q.day.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => parse_day(d)?,
            None => today(&mut tx).await?,
        };
        let period = q.period.unwrap_or_else(|| "morning".into());
        check_period(&period)?;
        let roll = load_roll(&mut tx, &class, day, &period).await?;
        tx.commit().await?;
        Ok::<_, Refusal>(roll)
    }
    .await;
    match result {
        Ok(roll) => {
            let body = RollPage {
                lang,
                roll: &roll,
                csrf: &user.csrf_token,
                statuses: Status::ALL,
                periods: PERIODS,
                saved: q_saved,
            }
            .render()
            .unwrap_or_default();
            crate::ui::page(lang, &school, &user, &roll.class_name, &body)
        }
        Err(r) => r.page(&school),
    }
}

/// `POST /attendance/{class_id}`: form fields `csrf`, `day`, `period`, `reason` and
/// `p<pupil id>` = status for each pupil (missing = present).
pub(crate) async fn save(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(class_id): Path<i64>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let result = async {
        check_csrf(&user, field("csrf"))?;
        let mut marks = HashMap::new();
        for (k, v) in &fields {
            if let Some(id) = k.strip_prefix('p').and_then(|id| id.parse::<i64>().ok()) {
                let s = Status::parse(v).ok_or_else(|| {
                    refuse(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "考勤状态不正确。",
                        "Unknown status.",
                    )
                })?;
                marks.insert(id, s);
            }
        }
        let mut tx = state.db.school(&school).await?;
        let class = class_access(&mut tx, &user, class_id).await?;
        let day = match field("day").filter(|d| !d.is_empty()) {
            Some(d) => parse_day(d)?,
            None => today(&mut tx).await?,
        };
        let period = field("period").unwrap_or("morning").to_owned();
        let saved = save_register(
            &mut tx,
            &user,
            &class,
            day,
            &period,
            &marks,
            field("reason"),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, Refusal>((day, period, saved))
    }
    .await;
    match result {
        Ok((day, period, _)) => Redirect::to(&format!(
            "/attendance/{class_id}?day={day}&period={period}&saved=1"
        ))
        .into_response(),
        Err(r) => r.page(&school),
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct ClassSummary {
    pub class_id: i64,
    pub class_name: String,
    pub taken: bool,
    pub enrolled: i64,
    pub present: i64,
    pub late: i64,
    pub absent: i64,
    pub leave: i64,
    pub early_leave: i64,
    /// Share of pupils at school (not absent, not on leave), in percent.
    pub rate: Option<f64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    pub day: NaiveDate,
    /// Whether registers are expected that day (see [`crate::calendar`]).
    pub school_day: bool,
    pub classes: Vec<ClassSummary>,
    pub school: ClassSummary,
}

async fn summary_of(tx: &mut SchoolTx, day: NaiveDate) -> Result<Summary, Refusal> {
    let rows = sqlx::query(
        "select c.id, c.name, r.id is not null as taken,
                coalesce(r.enrolled::int8, (select count(*) from students s where s.class_id = c.id and s.left_on is null)) as enrolled,
                count(m.*) filter (where m.status = 'late') as late,
                count(m.*) filter (where m.status = 'absent') as absent,
                count(m.*) filter (where m.status = 'leave') as leave,
                count(m.*) filter (where m.status = 'early_leave') as early_leave
           from classes c
           left join attendance_registers r on r.class_id = c.id and r.day = $1 and r.period = 'morning'
           left join attendance_marks m on m.register_id = r.id
          group by c.id, c.name, r.id, r.enrolled, c.grade_id, c.number
          order by c.grade_id, c.number",
    )
    .bind(day)
    .fetch_all(&mut **tx)
    .await?;
    let make = |class_id, class_name, taken, enrolled: i64, late, absent, leave, early_leave| {
        let present = if taken {
            enrolled - late - absent - leave - early_leave
        } else {
            0
        };
        ClassSummary {
            class_id,
            class_name,
            taken,
            enrolled,
            present,
            late,
            absent,
            leave,
            early_leave,
            rate: (taken && enrolled > 0).then(|| {
                ((enrolled - absent - leave) as f64 * 1000.0 / enrolled as f64).round() / 10.0
            }),
        }
    };
    let classes: Vec<ClassSummary> = rows
        .into_iter()
        .map(|r| {
            make(
                r.get("id"),
                r.get("name"),
                r.get("taken"),
                r.get("enrolled"),
                r.get("late"),
                r.get("absent"),
                r.get("leave"),
                r.get("early_leave"),
            )
        })
        .collect();
    let taken: Vec<&ClassSummary> = classes.iter().filter(|c| c.taken).collect();
    let sum = |f: fn(&ClassSummary) -> i64| taken.iter().map(|c| f(c)).sum::<i64>();
    let school = make(
        0,
        "全校".into(),
        !taken.is_empty(),
        sum(|c| c.enrolled),
        sum(|c| c.late),
        sum(|c| c.absent),
        sum(|c| c.leave),
        sum(|c| c.early_leave),
    );
    Ok(Summary {
        day,
        school_day: crate::calendar::is_school_day(tx, day).await?,
        classes,
        school,
    })
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct DayQuery {
    day: Option<String>,
}

async fn summary_for(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    q: &DayQuery,
) -> Result<Summary, Refusal> {
    if !(user.can(Permission::TakeAttendance) || user.can(Permission::ApproveLeave)) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "您的身份不能查看考勤汇总。",
            "You may not see attendance.",
        ));
    }
    let mut tx = state.db.school(school).await?;
    let day = match q.day.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => parse_day(d)?,
        None => today(&mut tx).await?,
    };
    let s = summary_of(&mut tx, day).await?;
    tx.commit().await?;
    Ok(s)
}

#[derive(Template)]
#[template(path = "attendance_summary.html")]
struct SummaryPage<'a> {
    lang: Lang,
    s: &'a Summary,
}

/// `GET /attendance/summary?day=`.
pub(crate) async fn summary(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Query(q): Query<DayQuery>,
) -> Response {
    match summary_for(&state, &school, &user, &q).await {
        Ok(s) => {
            let body = SummaryPage { lang, s: &s }.render().unwrap_or_default();
            crate::ui::page(
                lang,
                &school,
                &user,
                lang.pick("考勤汇总", "Attendance summary"),
                &body,
            )
        }
        Err(r) => r.page(&school),
    }
}

/// `GET /api/v1/attendance/summary?day=`.
pub(crate) async fn summary_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Query(q): Query<DayQuery>,
) -> Response {
    match summary_for(&state, &school, &user, &q).await {
        Ok(s) => Json(s).into_response(),
        Err(r) => r.json(),
    }
}

struct MissingClass {
    id: i64,
    name: String,
    head: Option<String>,
    head_id: Option<i64>,
}

/// Where `now` stands for the morning register: the school's day, whether it is a school
/// day, whether the deadline has passed, and the classes still without a register.
struct Missing {
    day: NaiveDate,
    school_day: bool,
    past_deadline: bool,
    classes: Vec<MissingClass>,
}

/// Classes without the morning register of `now`'s day once the deadline has passed on a
/// school day (none on other days).
async fn missing_at(tx: &mut SchoolTx, now: DateTime<Utc>) -> sqlx::Result<Missing> {
    let (day, past): (NaiveDate, bool) = sqlx::query_as(&format!(
        "select ($1::timestamptz at time zone {TZ_SQL})::date,
                ($1::timestamptz at time zone {TZ_SQL})::time > register_deadline
           from attendance_settings where id = 1"
    ))
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    let school_day = crate::calendar::is_school_day(tx, day).await?;
    if !(school_day && past) {
        return Ok(Missing {
            day,
            school_day,
            past_deadline: past,
            classes: Vec::new(),
        });
    }
    let rows = sqlx::query(
        "select c.id, c.name, s.name as head, s.id as head_id from classes c left join staff s on s.id = c.head_teacher_id
          where c.retired_at is null
            and not exists(select 1 from attendance_registers r where r.class_id = c.id and r.day = $1 and r.period = 'morning')
          order by c.grade_id, c.number",
    )
    .bind(day)
    .fetch_all(&mut **tx)
    .await?;
    Ok(Missing {
        day,
        school_day,
        past_deadline: past,
        classes: rows
            .into_iter()
            .map(|r| MissingClass {
                id: r.get("id"),
                name: r.get("name"),
                head: r.get("head"),
                head_id: r.get("head_id"),
            })
            .collect(),
    })
}

/// Tells the head teacher of each class that its register of `day` is missing; a class is
/// reminded at most once per day however often this runs. Returns the inbox items added.
async fn send_reminders(
    tx: &mut SchoolTx,
    day: NaiveDate,
    classes: &[MissingClass],
) -> sqlx::Result<u64> {
    // One statement for every class (each head teacher's own message).
    let texts: Vec<(i64, String, String, String)> = classes
        .iter()
        .filter_map(|c| {
            Some((
                c.head_id?,
                format!("attendance-missing:{day}:{}", c.id),
                format!("已过点名截止时间，{}今天还没有点名，请尽快完成。", c.name),
                format!("/attendance/{}", c.id),
            ))
        })
        .collect();
    let source = format!("attendance:{day}");
    let messages: Vec<notify::PersonMessage> = texts
        .iter()
        .map(|(head, key, body, link)| notify::PersonMessage {
            recipient: notify::Recipient::Staff(*head),
            title: "今日考勤尚未提交",
            body,
            link: Some(link),
            source: &source,
            dedupe_key: key,
            en: None,
        })
        .collect();
    let sent = notify::send_each_to_people(tx, Category::Attendance, &messages).await?;
    Ok(sent)
}

/// What [`remind_missing`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reminded {
    pub day: NaiveDate,
    /// Classes without a register (0 before the deadline and on days without school).
    pub classes: u64,
    /// Inbox items added (classes reminded earlier that day are not reminded again).
    pub sent: u64,
}

/// Reminds the head teachers of the classes whose morning register of `now`'s day is
/// missing once the school's deadline has passed, on school days only: the same reminder
/// an admin sends from `/attendance/missing`, once per class per day.
pub async fn remind_missing(tx: &mut SchoolTx, now: DateTime<Utc>) -> sqlx::Result<Reminded> {
    let m = missing_at(tx, now).await?;
    let sent = send_reminders(tx, m.day, &m.classes).await?;
    Ok(Reminded {
        day: m.day,
        classes: m.classes.len() as u64,
        sent,
    })
}

#[derive(Template)]
#[template(path = "attendance_missing.html")]
struct MissingPage<'a> {
    lang: Lang,
    day: NaiveDate,
    school_day: bool,
    past_deadline: bool,
    classes: Vec<MissingClass>,
    csrf: &'a str,
    reminded: Option<u64>,
}

fn oversee_or_refuse(user: &CurrentUser) -> Result<(), Refusal> {
    if may_oversee(user) {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::FORBIDDEN,
            "只有学校管理人员可以查看未点名班级。",
            "Only school leaders see missing registers.",
        ))
    }
}

async fn missing_page(
    state: &SchoolState,
    school: &Tenant,
    lang: Lang,
    user: &CurrentUser,
    remind: bool,
) -> Result<String, Refusal> {
    oversee_or_refuse(user)?;
    let mut tx = state.db.school(school).await?;
    let m = missing_at(&mut tx, Utc::now()).await?;
    let mut reminded = None;
    if remind {
        reminded = Some(send_reminders(&mut tx, m.day, &m.classes).await?);
    }
    tx.commit().await?;
    Ok(MissingPage {
        lang,
        day: m.day,
        school_day: m.school_day,
        past_deadline: m.past_deadline,
        classes: m.classes,
        csrf: &user.csrf_token,
        reminded,
    }
    .render()
    .unwrap_or_default())
}

/// `GET /attendance/missing`.
pub(crate) async fn missing(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    match missing_page(&state, &school, lang, &user, false).await {
        Ok(body) => crate::ui::page(
            lang,
            &school,
            &user,
            lang.pick("未点名班级", "Missing registers"),
            &body,
        ),
        Err(r) => r.page(&school),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /attendance/missing/remind`: reminds the head teachers, once per day.
pub(crate) async fn remind(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = check_csrf(&user, form.csrf.as_deref()) {
        return r.page(&school);
    }
    match missing_page(&state, &school, lang, &user, true).await {
        Ok(body) => crate::ui::page(
            lang,
            &school,
            &user,
            lang.pick("未点名班级", "Missing registers"),
            &body,
        ),
        Err(r) => r.page(&school),
    }
}

// ---------------------------------------------------------------------------------------
// JSON

/// `GET /api/v1/attendance/{class_id}/{day}/{period}`.
pub(crate) async fn register_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path((class_id, day, period)): Path<(i64, String, String)>,
) -> Response {
    let result = async {
        let day = parse_day(&day)?;
        check_period(&period)?;
        let mut tx = state.db.school(&school).await?;
        let class = class_access(&mut tx, &user, class_id).await?;
        let roll = load_roll(&mut tx, &class, day, &period).await?;
        tx.commit().await?;
        Ok::<_, Refusal>(roll)
    }
    .await;
    match result {
        Ok(roll) => Json(roll).into_response(),
        Err(r) => r.json(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct MarkIn {
    student_id: i64,
    status: Status,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RegisterIn {
    #[serde(default)]
    marks: Vec<MarkIn>,
    reason: Option<String>,
}

/// `PUT /api/v1/attendance/{class_id}/{day}/{period}` with `X-CSRF-Token`: pupils not
/// listed are present.
pub(crate) async fn put_register_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Path((class_id, day, period)): Path<(i64, String, String)>,
    Json(body): Json<RegisterIn>,
) -> Response {
    let result = async {
        check_csrf(
            &user,
            headers.get("x-csrf-token").and_then(|v| v.to_str().ok()),
        )?;
        let day = parse_day(&day)?;
        let mut tx = state.db.school(&school).await?;
        let class = class_access(&mut tx, &user, class_id).await?;
        let marks = body
            .marks
            .iter()
            .map(|m| (m.student_id, m.status))
            .collect();
        let saved = save_register(
            &mut tx,
            &user,
            &class,
            day,
            &period,
            &marks,
            body.reason.as_deref(),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, Refusal>(saved)
    }
    .await;
    match result {
        Ok(saved) => Json(saved).into_response(),
        Err(r) => r.json(),
    }
}
