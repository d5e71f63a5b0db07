//! The parent's "today" page (今日, `/today`, JSON at `GET /api/v1/today`): one card per
//! child of the signed-in guardian at this school with today's register status per period,
//! today's gate entries and exits, current or upcoming leave, and the guardian's unread
//! notices with the latest three titles.
//!
//! Parents open it many times a day, so the whole page is one query (after the session and
//! standing lookup, which are cached): lateral subqueries per child aggregated to JSON.
//! People without children here (teachers, admins) get a short explanation, not an error.

use std::sync::LazyLock;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{CurrentSchool, SchoolTx, Tenant, TenantError};
use campus_web::Lang;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::types::Json as SqlJson;
use sqlx::Row;

use crate::attendance::{Status, TZ_SQL};
use crate::SchoolState;

pub(crate) fn routes() -> Router<SchoolState> {
    Router::new()
        .route("/today", get(page))
        .route("/api/v1/today", get(json))
}

/// The one query behind the page; `$1` is the guardian. Everything is "today" in the
/// school's time zone; leave is listed while it has not ended.
static TODAY_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "with d as (select tz, (now() at time zone tz)::date as day from (select {TZ_SQL} as tz) t),
              kids as (
                select s.id, s.name, s.class_id, c.name as class_name
                  from student_guardians sg
                  join students s on s.id = sg.student_id
                  join classes c on c.id = s.class_id
                 where sg.guardian_id = $1 and s.left_on is null)
         select d.day,
                (select coalesce(json_agg(json_build_object(
                           'id', k.id, 'name', k.name, 'class_name', k.class_name,
                           'registers', reg.list, 'gate', gate.list, 'leave', lv.list) order by k.id), '[]'::json)
                   from kids k
                   cross join lateral (
                     select coalesce(json_agg(json_build_object(
                              'period', r.period, 'status', coalesce(m.status, 'present'),
                              'taken_at', to_char(r.taken_at at time zone d.tz, 'HH24:MI'))
                              order by array_position(array['morning', 'afternoon', 'evening'], r.period)), '[]'::json) as list
                       from attendance_registers r
                       left join attendance_marks m on m.register_id = r.id and m.student_id = k.id
                      where r.class_id = k.class_id and r.day = d.day) reg
                   cross join lateral (
                     select coalesce(json_agg(json_build_object(
                              'direction', e.direction, 'time', to_char(e.at at time zone d.tz, 'HH24:MI'))
                              order by e.at, e.id), '[]'::json) as list
                       from gate_events e
                      where e.student_id = k.id
                        and e.at >= (d.day::timestamp at time zone d.tz)
                        and e.at < ((d.day + 1)::timestamp at time zone d.tz)) gate
                   cross join lateral (
                     select coalesce(json_agg(json_build_object(
                              'id', l.id, 'kind', l.kind, 'status', l.status, 'current', l.starts_at <= now(),
                              'starts', to_char(l.starts_at at time zone d.tz, 'MM-DD HH24:MI'),
                              'ends', to_char(l.ends_at at time zone d.tz, 'MM-DD HH24:MI'))
                              order by l.starts_at, l.id), '[]'::json) as list
                       from leave_requests l
                      where l.student_id = k.id and l.status in ('pending', 'approved') and l.ends_at > now()) lv
                ) as children,
                (select count(*) from notice_recipients nr
                  where nr.recipient_kind = 'guardian' and nr.recipient_id = $1 and nr.read_at is null) as unread_notices,
                (select coalesce(json_agg(json_build_object('id', x.id, 'title', x.title, 'unread', x.unread,
                                                            'sent', to_char(x.created_at at time zone d.tz, 'MM-DD HH24:MI'))
                                          order by x.created_at desc, x.id desc), '[]'::json)
                   from (select n.id, n.title, n.created_at, nr.read_at is null as unread
                           from notice_recipients nr join notices n on n.id = nr.notice_id
                          where nr.recipient_kind = 'guardian' and nr.recipient_id = $1
                          order by n.created_at desc, n.id desc limit 3) x) as latest_notices
           from d"
    )
});

/// One register of today, as the query returns it.
#[derive(Debug, Deserialize)]
struct RegisterRow {
    period: String,
    status: String,
    taken_at: String,
}

#[derive(Debug, Deserialize)]
struct GateRow {
    direction: String,
    time: String,
}

#[derive(Debug, Deserialize)]
struct LeaveRow {
    id: i64,
    kind: String,
    status: String,
    current: bool,
    starts: String,
    ends: String,
}

#[derive(Debug, Deserialize)]
struct ChildRow {
    id: i64,
    name: String,
    class_name: String,
    registers: Vec<RegisterRow>,
    gate: Vec<GateRow>,
    leave: Vec<LeaveRow>,
}

#[derive(Debug, Deserialize, Serialize)]
struct NoticeRow {
    id: i64,
    title: String,
    unread: bool,
    sent: String,
}

/// Today for one guardian, straight from [`TODAY_SQL`].
struct Loaded {
    day: NaiveDate,
    children: Vec<ChildRow>,
    unread_notices: i64,
    latest_notices: Vec<NoticeRow>,
}

async fn load(tx: &mut SchoolTx, guardian: i64) -> sqlx::Result<Loaded> {
    let row = sqlx::query(TODAY_SQL.as_str())
        .bind(guardian)
        .fetch_one(&mut **tx)
        .await?;
    let SqlJson(children): SqlJson<Vec<ChildRow>> = row.try_get("children")?;
    let SqlJson(latest_notices): SqlJson<Vec<NoticeRow>> = row.try_get("latest_notices")?;
    Ok(Loaded {
        day: row.try_get("day")?,
        children,
        unread_notices: row.try_get("unread_notices")?,
        latest_notices,
    })
}

/// The guardian row whose children the person sees, if they are a parent here.
fn guardian_of(user: &CurrentUser) -> Option<i64> {
    user.guardian_id
        .filter(|_| user.can(Permission::OwnChildren))
}

async fn fetch(state: &SchoolState, school: &Tenant, guardian: i64) -> Result<Loaded, TenantError> {
    let mut tx = state.db.school(school).await?;
    let loaded = load(&mut tx, guardian).await?;
    tx.commit().await?;
    Ok(loaded)
}

// ---------------------------------------------------------------------------------------
// What is shown: the rows above in words.

/// The registers of the day: morning and afternoon always (not taken yet when missing),
/// the evening register only when a school takes one.
const PERIODS: [(&str, &str, &str); 3] = [
    ("morning", "上午", "Morning"),
    ("afternoon", "下午", "Afternoon"),
    ("evening", "晚自习", "Evening"),
];

const NOT_TAKEN: &str = "not_taken";

#[derive(Debug, Serialize)]
struct PeriodOut {
    period: &'static str,
    /// `present`, `late`, `absent`, `leave`, `early_leave`, or `not_taken`.
    status: &'static str,
    /// When the register was taken (school time, `HH:MM`).
    taken_at: Option<String>,
    #[serde(skip)]
    label: String,
}

#[derive(Debug, Serialize)]
struct GateOut {
    direction: String,
    time: String,
    /// `到校 07:42` / `离校 16:32` (or English).
    #[serde(skip)]
    label: String,
}

#[derive(Debug, Serialize)]
struct LeaveOut {
    id: i64,
    kind: String,
    status: String,
    /// Under way now (otherwise upcoming).
    current: bool,
    starts: String,
    ends: String,
    #[serde(skip)]
    label: String,
}

#[derive(Debug, Serialize)]
struct ChildOut {
    id: i64,
    name: String,
    class_name: String,
    attendance: Vec<PeriodOut>,
    gate: Vec<GateOut>,
    leave: Vec<LeaveOut>,
}

#[derive(Debug, Serialize)]
struct Today {
    day: Option<NaiveDate>,
    /// Whether the person is a parent here at all.
    guardian: bool,
    children: Vec<ChildOut>,
    unread_notices: i64,
    latest_notices: Vec<NoticeRow>,
}

fn status_of(code: &str) -> Option<Status> {
    Status::parse(code)
}

fn periods(registers: &[RegisterRow], lang: Lang) -> Vec<PeriodOut> {
    let mut out = Vec::new();
    for (code, zh, en) in PERIODS {
        let register = registers.iter().find(|r| r.period == code);
        if register.is_none() && code == "evening" {
            continue;
        }
        let status = register.and_then(|r| status_of(&r.status));
        let label = match status {
            Some(s) => lang.pick(s.names().0, s.names().1),
            None => lang.pick("未点名", "not taken yet"),
        };
        out.push(PeriodOut {
            period: code,
            status: status.map_or(NOT_TAKEN, Status::code),
            taken_at: register.map(|r| r.taken_at.clone()),
            label: format!("{}{}{label}", lang.pick(zh, en), lang.pick("：", ": ")),
        });
    }
    out
}

fn leave_kind(code: &str, lang: Lang) -> &'static str {
    match code {
        "sick" => lang.pick("病假", "Sick leave"),
        "personal" => lang.pick("事假", "Personal leave"),
        _ => lang.pick("其他请假", "Leave"),
    }
}

fn leave_status(code: &str, lang: Lang) -> &'static str {
    match code {
        "approved" => lang.pick("已批准", "approved"),
        _ => lang.pick("待审批", "awaiting approval"),
    }
}

fn shown(loaded: Loaded, lang: Lang) -> Today {
    let children = loaded
        .children
        .into_iter()
        .map(|c| ChildOut {
            attendance: periods(&c.registers, lang),
            gate: c
                .gate
                .into_iter()
                .map(|g| GateOut {
                    label: format!(
                        "{} {}",
                        if g.direction == "in" {
                            lang.pick("到校", "Arrived")
                        } else {
                            lang.pick("离校", "Left")
                        },
                        g.time
                    ),
                    direction: g.direction,
                    time: g.time,
                })
                .collect(),
            leave: c
                .leave
                .into_iter()
                .map(|l| LeaveOut {
                    label: format!(
                        "{} {} — {} · {}",
                        leave_kind(&l.kind, lang),
                        l.starts,
                        l.ends,
                        leave_status(&l.status, lang)
                    ),
                    id: l.id,
                    kind: l.kind,
                    status: l.status,
                    current: l.current,
                    starts: l.starts,
                    ends: l.ends,
                })
                .collect(),
            id: c.id,
            name: c.name,
            class_name: c.class_name,
        })
        .collect();
    Today {
        day: Some(loaded.day),
        guardian: true,
        children,
        unread_notices: loaded.unread_notices,
        latest_notices: loaded.latest_notices,
    }
}

/// What someone without children here sees.
fn nobody() -> Today {
    Today {
        day: None,
        guardian: false,
        children: Vec::new(),
        unread_notices: 0,
        latest_notices: Vec::new(),
    }
}

async fn today_for(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    lang: Lang,
) -> Result<Today, TenantError> {
    match guardian_of(user) {
        Some(g) => Ok(shown(fetch(state, school, g).await?, lang)),
        None => Ok(nobody()),
    }
}

#[derive(Template)]
#[template(path = "today.html")]
struct TodayPage<'a> {
    lang: Lang,
    t: &'a Today,
}

/// `GET /today`.
pub(crate) async fn page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    match today_for(&state, &school, &user, lang).await {
        Ok(t) => {
            let body = TodayPage { lang, t: &t }.render().unwrap_or_default();
            crate::ui::page(lang, &school, &user, lang.pick("今日", "Today"), &body)
        }
        Err(e) => crate::ui::unavailable("today page", e),
    }
}

/// `GET /api/v1/today`.
pub(crate) async fn json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    match today_for(&state, &school, &user, lang).await {
        Ok(t) => Json(t).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "today JSON failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"code": "unavailable", "message": "服务暂时不可用，请稍后重试。", "message_en": "Temporarily unavailable."})),
            )
                .into_response()
        }
    }
}
