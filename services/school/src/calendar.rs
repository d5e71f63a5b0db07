//! The school calendar (校历): days off (holidays) and make-up school days (调休 Saturdays),
//! the school's terms, and the two times of day the daily jobs wait for (register deadline,
//! gate arrival cut-off). Decides whether a day needs registers and arrivals at all:
//! [`school_day`] is the rule, [`is_school_day`] applies it to a school's data.
//!
//! Holders of `ManageRoster` change it at `/admin/calendar` and through
//! `POST/DELETE /api/v1/calendar` (`X-CSRF-Token`); every member of the school may read it
//! at `GET /api/v1/calendar`. Adding a day that is already marked the same way changes
//! nothing, so a range can be submitted again safely.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post, put};
use axum::{Form, Json, Router};
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{CurrentSchool, SchoolTx, Tenant};
use campus_web::Lang;
use chrono::{Datelike, Months, NaiveDate, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::attendance::{check_csrf, refuse, today, Refusal};
use crate::ui::page;
use crate::SchoolState;

/// The longest range of days one request may add or remove, and the longest term.
pub const MAX_RANGE_DAYS: i64 = 366;

pub(crate) fn routes() -> Router<SchoolState> {
    Router::new()
        .route("/admin/calendar", get(calendar_page))
        .route("/admin/calendar/days", post(add_days_form))
        .route("/admin/calendar/days/delete", post(remove_days_form))
        .route("/admin/calendar/terms", post(add_term_form))
        .route("/admin/calendar/terms/{id}/delete", post(remove_term_form))
        .route("/admin/calendar/settings", post(settings_form))
        .route(
            "/api/v1/calendar",
            get(calendar_json)
                .post(add_days_json)
                .delete(remove_days_json),
        )
        .route("/api/v1/calendar/terms", post(add_term_json))
        .route("/api/v1/calendar/terms/{id}", delete(remove_term_json))
        .route("/api/v1/calendar/settings", put(settings_json))
}

// ---------------------------------------------------------------------------------------
// The rule

/// How a day is marked in the calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// No school (a holiday, even on a weekday).
    Off,
    /// School (a make-up day, even on a weekend).
    School,
}

impl DayKind {
    pub fn code(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::School => "school",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "off" => Some(Self::Off),
            "school" => Some(Self::School),
            _ => None,
        }
    }
}

/// What the calendar says about one day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DayFacts {
    /// The day's own mark, if any.
    pub marked: Option<DayKind>,
    /// Whether the school has entered any term at all.
    pub terms_defined: bool,
    /// Whether the day falls inside one of those terms.
    pub in_term: bool,
}

/// Whether `day` needs registers and arrivals: a marked day is what its mark says;
/// otherwise a weekday inside a term (or any weekday, while the school has entered no
/// terms) is a school day and a weekend is not.
pub fn school_day(day: NaiveDate, facts: &DayFacts) -> bool {
    match facts.marked {
        Some(DayKind::Off) => false,
        Some(DayKind::School) => true,
        None => {
            (facts.in_term || !facts.terms_defined)
                && !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
        }
    }
}

/// The calendar's facts about `day`, in one query.
pub async fn day_facts(tx: &mut SchoolTx, day: NaiveDate) -> sqlx::Result<DayFacts> {
    let row = sqlx::query(
        "select (select kind from calendar_days where day = $1) as marked,
                exists(select 1 from school_terms) as terms_defined,
                exists(select 1 from school_terms where $1 between starts_on and ends_on) as in_term",
    )
    .bind(day)
    .fetch_one(&mut **tx)
    .await?;
    Ok(DayFacts {
        marked: row
            .get::<Option<String>, _>("marked")
            .as_deref()
            .and_then(DayKind::parse),
        terms_defined: row.get("terms_defined"),
        in_term: row.get("in_term"),
    })
}

/// Whether `day` is a school day at this school (see [`school_day`]).
pub async fn is_school_day(tx: &mut SchoolTx, day: NaiveDate) -> sqlx::Result<bool> {
    Ok(school_day(day, &day_facts(tx, day).await?))
}

// ---------------------------------------------------------------------------------------
// Input

fn bad(zh: &'static str, en: &'static str) -> Refusal {
    refuse(StatusCode::UNPROCESSABLE_ENTITY, zh, en)
}

fn parse_date(raw: &str) -> Result<NaiveDate, Refusal> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
        bad(
            "日期格式不正确，应为 年-月-日，例如 2026-10-01。",
            "Bad date; use YYYY-MM-DD, e.g. 2026-10-01.",
        )
    })
}

/// `from`..=`to` (`to` defaults to `from`), at most [`MAX_RANGE_DAYS`] long.
fn parse_range(from: Option<&str>, to: Option<&str>) -> Result<(NaiveDate, NaiveDate), Refusal> {
    let from = parse_date(from.unwrap_or(""))?;
    let to = match to.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => parse_date(t)?,
        None => from,
    };
    if to < from {
        return Err(bad(
            "结束日期不能早于开始日期。",
            "The end date is before the start date.",
        ));
    }
    if (to - from).num_days() >= MAX_RANGE_DAYS {
        return Err(bad(
            "一次最多设置一年（366 天）。",
            "At most one year (366 days) at a time.",
        ));
    }
    Ok((from, to))
}

fn parse_name(raw: Option<&str>) -> Result<String, Refusal> {
    let name = raw.unwrap_or("").trim();
    if name.is_empty() || name.chars().count() > 50 {
        return Err(bad(
            "请填写名称（1 到 50 字），例如 国庆节。",
            "Give a name of 1 to 50 characters, e.g. National Day.",
        ));
    }
    Ok(name.to_owned())
}

fn parse_kind(raw: Option<&str>) -> Result<DayKind, Refusal> {
    DayKind::parse(raw.unwrap_or("").trim()).ok_or_else(|| {
        bad(
            "类型应为 休息日（off）或 调休上课日（school）。",
            "Kind must be off or school.",
        )
    })
}

fn parse_time(raw: Option<&str>) -> Result<NaiveTime, Refusal> {
    let raw = raw.unwrap_or("").trim();
    NaiveTime::parse_from_str(raw, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(raw, "%H:%M:%S"))
        .map_err(|_| {
            bad(
                "时间格式不正确，应为 时:分，例如 08:30。",
                "Bad time; use HH:MM, e.g. 08:30.",
            )
        })
}

fn parse_month(raw: &str) -> Result<NaiveDate, Refusal> {
    NaiveDate::parse_from_str(&format!("{}-01", raw.trim()), "%Y-%m-%d").map_err(|_| {
        bad(
            "月份格式不正确，应为 年-月，例如 2026-10。",
            "Bad month; use YYYY-MM.",
        )
    })
}

fn manager_or_refuse(user: &CurrentUser) -> Result<(), Refusal> {
    if user.can(Permission::ManageRoster) {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::FORBIDDEN,
            "只有教务管理人员可以修改校历。",
            "Only academic administrators change the calendar.",
        ))
    }
}

fn member_or_refuse(user: &CurrentUser) -> Result<(), Refusal> {
    if user.can(Permission::StaffArea) || user.can(Permission::OwnChildren) {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::FORBIDDEN,
            "您的身份不能查看校历。",
            "You may not see the calendar.",
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Changes (each in the caller's transaction, with its audit row)

#[derive(Debug, Serialize)]
pub(crate) struct DaysAdded {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Days newly marked.
    pub added: u64,
    /// Days whose kind or name changed.
    pub changed: u64,
    /// Days already marked exactly so.
    pub unchanged: u64,
}

async fn add_days(
    tx: &mut SchoolTx,
    user: &CurrentUser,
    (from, to): (NaiveDate, NaiveDate),
    kind: DayKind,
    name: &str,
) -> Result<DaysAdded, Refusal> {
    let rows: Vec<bool> = sqlx::query_scalar(
        "insert into calendar_days (day, kind, name)
         select d::date, $3, $4 from generate_series($1::date, $2::date, interval '1 day') as d
         on conflict (day) do update set kind = excluded.kind, name = excluded.name, updated_at = now()
          where (calendar_days.kind, calendar_days.name) is distinct from (excluded.kind, excluded.name)
         returning (xmax = 0)",
    )
    .bind(from)
    .bind(to)
    .bind(kind.code())
    .bind(name)
    .fetch_all(&mut **tx)
    .await?;
    let added = rows.iter().filter(|new| **new).count() as u64;
    let changed = rows.len() as u64 - added;
    let total = (to - from).num_days() as u64 + 1;
    if !rows.is_empty() {
        crate::audit::record(
            tx,
            user,
            crate::audit::Action::CalendarChanged,
            Some(&format!("calendar:{from}..{to}")),
            serde_json::json!({"marked": kind.code(), "name": name, "added": added, "changed": changed}),
        )
        .await?;
    }
    Ok(DaysAdded {
        from,
        to,
        added,
        changed,
        unchanged: total - added - changed,
    })
}

async fn remove_days(
    tx: &mut SchoolTx,
    user: &CurrentUser,
    (from, to): (NaiveDate, NaiveDate),
) -> Result<u64, Refusal> {
    let removed = sqlx::query("delete from calendar_days where day between $1 and $2")
        .bind(from)
        .bind(to)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if removed > 0 {
        crate::audit::record(
            tx,
            user,
            crate::audit::Action::CalendarChanged,
            Some(&format!("calendar:{from}..{to}")),
            serde_json::json!({"removed": removed}),
        )
        .await?;
    }
    Ok(removed)
}

#[derive(Debug, Serialize)]
pub(crate) struct Term {
    pub id: i64,
    pub name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

async fn add_term(
    tx: &mut SchoolTx,
    user: &CurrentUser,
    name: &str,
    (starts_on, ends_on): (NaiveDate, NaiveDate),
) -> Result<Term, Refusal> {
    // Two admins adding overlapping terms at once: the second waits and then sees the first.
    sqlx::query("lock table school_terms in share row exclusive mode")
        .execute(&mut **tx)
        .await?;
    let overlaps: bool = sqlx::query_scalar(
        "select exists(select 1 from school_terms where starts_on <= $2 and ends_on >= $1)",
    )
    .bind(starts_on)
    .bind(ends_on)
    .fetch_one(&mut **tx)
    .await?;
    if overlaps {
        return Err(refuse(
            StatusCode::CONFLICT,
            "这个学期与已有学期的日期重叠。",
            "This term overlaps a term already entered.",
        ));
    }
    let id: i64 = sqlx::query_scalar(
        "insert into school_terms (name, starts_on, ends_on) values ($1, $2, $3) returning id",
    )
    .bind(name)
    .bind(starts_on)
    .bind(ends_on)
    .fetch_one(&mut **tx)
    .await?;
    crate::audit::record(
        tx,
        user,
        crate::audit::Action::CalendarChanged,
        Some(&format!("term:{id}")),
        serde_json::json!({"term": name, "starts_on": starts_on, "ends_on": ends_on}),
    )
    .await?;
    Ok(Term {
        id,
        name: name.to_owned(),
        starts_on,
        ends_on,
    })
}

async fn remove_term(tx: &mut SchoolTx, user: &CurrentUser, id: i64) -> Result<(), Refusal> {
    let name: Option<String> =
        sqlx::query_scalar("delete from school_terms where id = $1 returning name")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(name) = name else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "没有这个学期。",
            "No such term.",
        ));
    };
    crate::audit::record(
        tx,
        user,
        crate::audit::Action::CalendarChanged,
        Some(&format!("term:{id}")),
        serde_json::json!({"term_removed": name}),
    )
    .await?;
    Ok(())
}

/// The two times of day the daily jobs wait for.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Times {
    pub register_deadline: NaiveTime,
    pub gate_arrival_cutoff: NaiveTime,
}

async fn load_times(tx: &mut SchoolTx) -> Result<Times, Refusal> {
    let (register_deadline, gate_arrival_cutoff): (NaiveTime, NaiveTime) = sqlx::query_as(
        "select register_deadline, gate_arrival_cutoff from attendance_settings where id = 1",
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(Times {
        register_deadline,
        gate_arrival_cutoff,
    })
}

async fn save_times(tx: &mut SchoolTx, user: &CurrentUser, t: Times) -> Result<(), Refusal> {
    sqlx::query(
        "update attendance_settings set register_deadline = $1, gate_arrival_cutoff = $2, updated_at = now()
          where id = 1",
    )
    .bind(t.register_deadline)
    .bind(t.gate_arrival_cutoff)
    .execute(&mut **tx)
    .await?;
    crate::audit::record(
        tx,
        user,
        crate::audit::Action::AttendanceSettingsChanged,
        None,
        serde_json::json!({
            "register_deadline": t.register_deadline.format("%H:%M").to_string(),
            "gate_arrival_cutoff": t.gate_arrival_cutoff.format("%H:%M").to_string(),
        }),
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reading

#[derive(Debug, Serialize)]
pub(crate) struct Day {
    pub day: NaiveDate,
    /// 1 = Monday … 7 = Sunday.
    pub weekday: u32,
    pub school_day: bool,
    pub kind: Option<DayKind>,
    pub name: Option<String>,
}

impl Day {
    fn weekday_name(&self, lang: &Lang) -> &'static str {
        const ZH: [&str; 7] = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];
        const EN: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let i = (self.weekday as usize).clamp(1, 7) - 1;
        lang.pick(ZH[i], EN[i])
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Calendar {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<Day>,
    pub terms: Vec<Term>,
    #[serde(flatten)]
    pub times: Times,
}

/// Every day of `from..=to` with whether it is a school day, plus the terms and times.
async fn load_calendar(
    tx: &mut SchoolTx,
    (from, to): (NaiveDate, NaiveDate),
) -> Result<Calendar, Refusal> {
    let marked: Vec<(NaiveDate, String, String)> = sqlx::query_as(
        "select day, kind, name from calendar_days where day between $1 and $2 order by day",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut **tx)
    .await?;
    let terms: Vec<Term> =
        sqlx::query("select id, name, starts_on, ends_on from school_terms order by starts_on, id")
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(|r| Term {
                id: r.get("id"),
                name: r.get("name"),
                starts_on: r.get("starts_on"),
                ends_on: r.get("ends_on"),
            })
            .collect();
    let times = load_times(tx).await?;
    let days = from
        .iter_days()
        .take_while(|d| *d <= to)
        .map(|day| {
            let mark = marked.iter().find(|m| m.0 == day);
            let kind = mark.and_then(|m| DayKind::parse(&m.1));
            let facts = DayFacts {
                marked: kind,
                terms_defined: !terms.is_empty(),
                in_term: terms.iter().any(|t| t.starts_on <= day && day <= t.ends_on),
            };
            Day {
                day,
                weekday: day.weekday().number_from_monday(),
                school_day: school_day(day, &facts),
                kind,
                name: mark.map(|m| m.2.clone()),
            }
        })
        .collect();
    Ok(Calendar {
        from,
        to,
        days,
        terms,
        times,
    })
}

fn month_end(first: NaiveDate) -> NaiveDate {
    first
        .checked_add_months(Months::new(1))
        .and_then(|d| d.pred_opt())
        .unwrap_or(first)
}

// ---------------------------------------------------------------------------------------
// Page

#[derive(Template)]
#[template(path = "calendar.html")]
struct CalendarPage<'a> {
    lang: Lang,
    month: String,
    prev: String,
    next: String,
    cal: &'a Calendar,
    csrf: &'a str,
    saved: bool,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct PageQuery {
    month: Option<String>,
    saved: Option<String>,
}

/// `GET /admin/calendar?month=YYYY-MM`: one month's days, the terms and the two times.
pub(crate) async fn calendar_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Query(q): Query<PageQuery>,
) -> Response {
    let result = async {
        manager_or_refuse(&user)?;
        let mut tx = state.db.school(&school).await?;
        let first = match q.month.as_deref().filter(|m| !m.trim().is_empty()) {
            Some(m) => parse_month(m)?,
            None => today(&mut tx).await?.with_day(1).expect("day 1 exists"),
        };
        let cal = load_calendar(&mut tx, (first, month_end(first))).await?;
        tx.commit().await?;
        Ok::<_, Refusal>((first, cal))
    }
    .await;
    match result {
        Ok((first, cal)) => {
            let shift = |d: Option<NaiveDate>| d.map(|d| d.format("%Y-%m").to_string());
            let body = CalendarPage {
                lang,
                month: first.format("%Y-%m").to_string(),
                prev: shift(first.checked_sub_months(Months::new(1))).unwrap_or_default(),
                next: shift(first.checked_add_months(Months::new(1))).unwrap_or_default(),
                cal: &cal,
                csrf: &user.csrf_token,
                saved: q.saved.is_some(),
            }
            .render()
            .unwrap_or_default();
            page(
                lang,
                &school,
                &user,
                lang.pick("校历", "School calendar"),
                &body,
            )
        }
        Err(r) => r.page(&school),
    }
}

fn back_to(month_of: NaiveDate) -> Response {
    Redirect::to(&format!(
        "/admin/calendar?month={}&saved=1",
        month_of.format("%Y-%m")
    ))
    .into_response()
}

/// A school transaction for a change, after the permission and CSRF checks.
async fn begin_change(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    csrf: Option<&str>,
) -> Result<SchoolTx, Refusal> {
    manager_or_refuse(user)?;
    check_csrf(user, csrf)?;
    Ok(state.db.school(school).await?)
}

#[derive(Debug, Deserialize)]
pub(crate) struct DaysForm {
    csrf: Option<String>,
    from: Option<String>,
    to: Option<String>,
    kind: Option<String>,
    name: Option<String>,
}

/// `POST /admin/calendar/days`: marks `from`..=`to` as days off or make-up school days.
pub(crate) async fn add_days_form(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Form(f): Form<DaysForm>,
) -> Response {
    let result = async {
        manager_or_refuse(&user)?;
        let range = parse_range(f.from.as_deref(), f.to.as_deref())?;
        let kind = parse_kind(f.kind.as_deref())?;
        let name = parse_name(f.name.as_deref())?;
        let mut tx = begin_change(&state, &school, &user, f.csrf.as_deref()).await?;
        let out = add_days(&mut tx, &user, range, kind, &name).await?;
        tx.commit().await?;
        Ok::<_, Refusal>(out)
    }
    .await;
    match result {
        Ok(added) => back_to(added.from),
        Err(r) => r.page(&school),
    }
}

/// `POST /admin/calendar/days/delete`: unmarks `from`..=`to`.
pub(crate) async fn remove_days_form(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Form(f): Form<DaysForm>,
) -> Response {
    let result = async {
        manager_or_refuse(&user)?;
        let range = parse_range(f.from.as_deref(), f.to.as_deref())?;
        let mut tx = begin_change(&state, &school, &user, f.csrf.as_deref()).await?;
        remove_days(&mut tx, &user, range).await?;
        tx.commit().await?;
        Ok::<_, Refusal>(range.0)
    }
    .await;
    match result {
        Ok(from) => back_to(from),
        Err(r) => r.page(&school),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct TermForm {
    csrf: Option<String>,
    name: Option<String>,
    starts_on: Option<String>,
    ends_on: Option<String>,
}

/// `POST /admin/calendar/terms`: adds a term.
pub(crate) async fn add_term_form(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Form(f): Form<TermForm>,
) -> Response {
    let result = async {
        manager_or_refuse(&user)?;
        let name = parse_name(f.name.as_deref())?;
        let range = parse_range(f.starts_on.as_deref(), f.ends_on.as_deref())?;
        let mut tx = begin_change(&state, &school, &user, f.csrf.as_deref()).await?;
        let out = add_term(&mut tx, &user, &name, range).await?;
        tx.commit().await?;
        Ok::<_, Refusal>(out)
    }
    .await;
    match result {
        Ok(term) => back_to(term.starts_on),
        Err(r) => r.page(&school),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /admin/calendar/terms/{id}/delete`.
pub(crate) async fn remove_term_form(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let result = async {
        let mut tx = begin_change(&state, &school, &user, f.csrf.as_deref()).await?;
        remove_term(&mut tx, &user, id).await?;
        tx.commit().await?;
        Ok::<_, Refusal>(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/admin/calendar?saved=1").into_response(),
        Err(r) => r.page(&school),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct TimesIn {
    csrf: Option<String>,
    register_deadline: Option<String>,
    gate_arrival_cutoff: Option<String>,
}

fn parse_times(f: &TimesIn) -> Result<Times, Refusal> {
    Ok(Times {
        register_deadline: parse_time(f.register_deadline.as_deref())?,
        gate_arrival_cutoff: parse_time(f.gate_arrival_cutoff.as_deref())?,
    })
}

/// `POST /admin/calendar/settings`: the register deadline and the gate arrival cut-off.
pub(crate) async fn settings_form(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Form(f): Form<TimesIn>,
) -> Response {
    let result = async {
        manager_or_refuse(&user)?;
        let times = parse_times(&f)?;
        let mut tx = begin_change(&state, &school, &user, f.csrf.as_deref()).await?;
        save_times(&mut tx, &user, times).await?;
        tx.commit().await?;
        Ok::<_, Refusal>(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/admin/calendar?saved=1").into_response(),
        Err(r) => r.page(&school),
    }
}

// ---------------------------------------------------------------------------------------
// JSON

fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/v1/calendar?from=&to=` (default: this month): every day with whether it is a
/// school day and its mark, the terms, and the two times.
pub(crate) async fn calendar_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Query(q): Query<RangeQuery>,
) -> Response {
    let result = async {
        member_or_refuse(&user)?;
        let mut tx = state.db.school(&school).await?;
        let range = match q.from.as_deref().filter(|f| !f.trim().is_empty()) {
            Some(from) => parse_range(Some(from), q.to.as_deref())?,
            None => {
                let first = today(&mut tx).await?.with_day(1).expect("day 1 exists");
                (first, month_end(first))
            }
        };
        let cal = load_calendar(&mut tx, range).await?;
        tx.commit().await?;
        Ok::<_, Refusal>(cal)
    }
    .await;
    match result {
        Ok(cal) => Json(cal).into_response(),
        Err(r) => r.json(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct DaysIn {
    from: Option<String>,
    to: Option<String>,
    kind: Option<String>,
    name: Option<String>,
}

/// `POST /api/v1/calendar` `{from, to?, kind: "off"|"school", name}`.
pub(crate) async fn add_days_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Json(body): Json<DaysIn>,
) -> Response {
    let result = async {
        manager_or_refuse(&user)?;
        let range = parse_range(body.from.as_deref(), body.to.as_deref())?;
        let kind = parse_kind(body.kind.as_deref())?;
        let name = parse_name(body.name.as_deref())?;
        let mut tx = begin_change(&state, &school, &user, csrf_header(&headers)).await?;
        let out = add_days(&mut tx, &user, range, kind, &name).await?;
        tx.commit().await?;
        Ok::<_, Refusal>(out)
    }
    .await;
    match result {
        Ok(added) => Json(added).into_response(),
        Err(r) => r.json(),
    }
}

/// `DELETE /api/v1/calendar?from=&to=`: unmarks those days.
pub(crate) async fn remove_days_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Query(q): Query<RangeQuery>,
) -> Response {
    let result = async {
        manager_or_refuse(&user)?;
        let range = parse_range(q.from.as_deref(), q.to.as_deref())?;
        let mut tx = begin_change(&state, &school, &user, csrf_header(&headers)).await?;
        let removed = remove_days(&mut tx, &user, range).await?;
        tx.commit().await?;
        Ok::<_, Refusal>(serde_json::json!({"from": range.0, "to": range.1, "removed": removed}))
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(r) => r.json(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct TermIn {
    name: Option<String>,
    starts_on: Option<String>,
    ends_on: Option<String>,
}

/// `POST /api/v1/calendar/terms` `{name, starts_on, ends_on}`: 201 with the term.
pub(crate) async fn add_term_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Json(body): Json<TermIn>,
) -> Response {
    let result = async {
        manager_or_refuse(&user)?;
        let name = parse_name(body.name.as_deref())?;
        let range = parse_range(body.starts_on.as_deref(), body.ends_on.as_deref())?;
        let mut tx = begin_change(&state, &school, &user, csrf_header(&headers)).await?;
        let out = add_term(&mut tx, &user, &name, range).await?;
        tx.commit().await?;
        Ok::<_, Refusal>(out)
    }
    .await;
    match result {
        Ok(term) => (StatusCode::CREATED, Json(term)).into_response(),
        Err(r) => r.json(),
    }
}

/// `DELETE /api/v1/calendar/terms/{id}`: 204.
pub(crate) async fn remove_term_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let result = async {
        let mut tx = begin_change(&state, &school, &user, csrf_header(&headers)).await?;
        remove_term(&mut tx, &user, id).await?;
        tx.commit().await?;
        Ok::<_, Refusal>(())
    }
    .await;
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r.json(),
    }
}

/// `PUT /api/v1/calendar/settings` `{register_deadline: "08:30", gate_arrival_cutoff: "08:10"}`.
pub(crate) async fn settings_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Json(body): Json<TimesIn>,
) -> Response {
    let result = async {
        manager_or_refuse(&user)?;
        let times = parse_times(&body)?;
        let mut tx = begin_change(&state, &school, &user, csrf_header(&headers)).await?;
        save_times(&mut tx, &user, times).await?;
        tx.commit().await?;
        Ok::<_, Refusal>(times)
    }
    .await;
    match result {
        Ok(t) => Json(t).into_response(),
        Err(r) => r.json(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn weekends_are_off_unless_made_up_and_holidays_are_off() {
        let none = DayFacts::default();
        assert!(school_day(d("2026-11-24"), &none), "a Tuesday");
        assert!(!school_day(d("2026-11-28"), &none), "a Saturday");
        assert!(!school_day(d("2026-11-29"), &none), "a Sunday");
        let made_up = DayFacts {
            marked: Some(DayKind::School),
            ..none
        };
        assert!(school_day(d("2026-11-28"), &made_up));
        let holiday = DayFacts {
            marked: Some(DayKind::Off),
            ..none
        };
        assert!(!school_day(d("2026-10-01"), &holiday));
    }

    #[test]
    fn outside_every_term_is_off_once_terms_exist() {
        let outside = DayFacts {
            marked: None,
            terms_defined: true,
            in_term: false,
        };
        assert!(!school_day(d("2026-08-05"), &outside));
        let inside = DayFacts {
            in_term: true,
            ..outside
        };
        assert!(school_day(d("2026-09-07"), &inside));
        let made_up = DayFacts {
            marked: Some(DayKind::School),
            ..outside
        };
        assert!(school_day(d("2026-08-08"), &made_up));
    }

    #[test]
    fn ranges_are_checked() {
        assert!(parse_range(Some("2026-10-01"), Some("2026-10-07")).is_ok());
        assert_eq!(
            parse_range(Some("2026-10-01"), None).unwrap(),
            (d("2026-10-01"), d("2026-10-01"))
        );
        assert!(parse_range(Some("2026-10-07"), Some("2026-10-01")).is_err());
        assert!(parse_range(Some("2026-01-01"), Some("2027-01-02")).is_err());
        assert!(
            parse_range(Some("2028-01-01"), Some("2028-12-31")).is_ok(),
            "a leap year"
        );
        assert!(parse_range(Some("2026-01-01"), Some("2026-12-31")).is_ok());
        assert!(parse_range(Some("10/01/2026"), None).is_err());
        assert!(parse_time(Some("08:30")).is_ok());
        assert!(parse_time(Some("25:00")).is_err());
    }
}
