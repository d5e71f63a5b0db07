//! The aggregates of given days, computed from a school's own tables inside its
//! [`SchoolTx`]. Every query here groups before it returns: what leaves the schema is counts
//! per day, class and category, never a pupil's row or id.

use campus_tenant::SchoolTx;
use chrono::NaiveDate;
use sqlx::Row as _;

use crate::indicators::CHRONIC_WINDOW_DAYS;

/// One data value, as stored in `public.metric_values`.
#[derive(Clone, Debug, PartialEq)]
pub struct DataValue {
    pub day: NaiveDate,
    /// 0: the whole school.
    pub class_id: i64,
    pub grade_level: i16,
    pub class_name: String,
    pub element: String,
    pub category: String,
    pub value: f64,
}

/// The school's place in the tree and its group sets, from its profile.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    pub township: String,
    pub kind: String,
    pub locality: String,
    pub timezone: String,
}

pub async fn profile(tx: &mut SchoolTx) -> sqlx::Result<Profile> {
    let row = sqlx::query(
        "select coalesce(township, '') as township, kind, locality, timezone from school_profile where id = 1",
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match row {
        Some(r) => Profile {
            township: r.get("township"),
            kind: r.get("kind"),
            locality: r.get("locality"),
            timezone: r.get("timezone"),
        },
        None => Profile {
            timezone: "Asia/Shanghai".into(),
            kind: "primary".into(),
            locality: "urban".into(),
            ..Profile::default()
        },
    })
}

/// Counts per class and day: registers, attendance marks, head counts, leave, gate.
/// `school_days` are the days among `days` on which registers are expected.
const CLASS_SQL: &str = r#"
with days as (select unnest($1::date[]) as day),
settings as (select register_deadline from attendance_settings where id = 1),
live_classes as (
    select d.day, c.id as class_id from days d join classes c
        on metric_day($3, c.created_at) <= d.day
       and (c.retired_at is null or metric_day($3, c.retired_at) > d.day)
),
regs as (
    select r.* from attendance_registers r where r.day = any($1::date[])
),
marks as (
    select r.day, r.class_id, m.status, count(*) as n
      from regs r join attendance_marks m on m.register_id = r.id
     group by 1, 2, 3
),
counts as (
    select day, class_id, 'enrolled' as element, '' as category, sum(enrolled)::float8 as value from regs group by 1, 2
    union all
    select r.day, r.class_id, 'present', '', (sum(r.enrolled) - coalesce(sum(a.n), 0))::float8
      from regs r left join lateral (
           select count(*) as n from attendance_marks m where m.register_id = r.id and m.status in ('absent', 'leave')) a on true
     group by 1, 2
    union all
    select day, class_id, status, '', n::float8 from marks
    union all
    select day, class_id, 'registers', '', count(*)::float8 from regs group by 1, 2
    union all
    select l.day, l.class_id, 'registers_expected', '', 1 from live_classes l where l.day = any($2::date[])
    union all
    select l.day, l.class_id, 'registers_on_time', '', 1
      from live_classes l join regs r on r.class_id = l.class_id and r.day = l.day and r.period = 'morning'
     where l.day = any($2::date[])
       and metric_day($3, r.taken_at) <= r.day
       and (metric_day($3, r.taken_at) < r.day
            or (r.taken_at at time zone coalesce((select timezone from school_profile where id = 1), 'Asia/Shanghai'))::time
               <= (select register_deadline from settings))
    union all
    select d.day, s.class_id, 'pupils', '', count(*)::float8
      from days d join students s on s.enrolled_on <= d.day and (s.left_on is null or s.left_on > d.day)
     group by 1, 2
    union all
    select metric_day($3, l.created_at), s.class_id, 'leave_requests', l.kind || ':' || l.status, count(*)::float8
      from leave_requests l join students s on s.id = l.student_id
     where metric_day($3, l.created_at) = any($1::date[])
     group by 1, 2, 4
    union all
    select r.day, r.class_id, 'leave_not_returned', '', count(distinct m.student_id)::float8
      from regs r join attendance_marks m on m.register_id = r.id and m.status = 'absent'
     where exists (select 1 from leave_requests l
                    where l.student_id = m.student_id and l.status in ('approved', 'returned')
                      and metric_day($3, l.ends_at) between r.day - 3 and r.day - 1)
       and not exists (select 1 from leave_requests l
                    where l.student_id = m.student_id and l.status = 'approved'
                      and metric_day($3, l.starts_at) <= r.day and metric_day($3, l.ends_at) >= r.day)
     group by 1, 2
    union all
    select metric_day($3, g.at), s.class_id, 'gate_' || g.direction, '', count(*)::float8
      from gate_events g join students s on s.id = g.student_id
     where g.at >= (select min(day) from days)::timestamp at time zone coalesce((select timezone from school_profile where id = 1), 'Asia/Shanghai') - interval '1 day'
       and g.at < ((select max(day) from days) + 2)::timestamp at time zone coalesce((select timezone from school_profile where id = 1), 'Asia/Shanghai')
       and metric_day($3, g.at) = any($1::date[])
     group by 1, 2, 3
    union all
    select a.day, s.class_id, 'absence_alerts', '', count(*)::float8
      from gate_absence_alerts a join students s on s.id = a.student_id
     where a.day = any($1::date[])
     group by 1, 2
)
select k.day, k.class_id, g.level as grade_level, c.name as class_name, k.element, k.category, sum(k.value)::float8 as value
  from counts k join classes c on c.id = k.class_id join grades g on g.id = c.grade_id
 group by 1, 2, 3, 4, 5, 6
"#;

/// Whole-school counts per day: notices and receipts, messages, joins, deliveries.
const SCHOOL_SQL: &str = r#"
with n as (
    select n.id, metric_day($2, n.created_at) as day, n.mode, n.created_at
      from notices n
     where metric_day($2, n.created_at) = any($1::date[])
),
counts as (
    select day, 'notices_sent' as element, mode as category, count(*)::float8 as value from n group by 1, 3
    union all
    select n.day, 'notice_recipients', '', count(*)::float8 from n join notice_recipients r on r.notice_id = n.id group by 1
    union all
    select n.day, 'notices_read', '', count(*)::float8 from n join notice_recipients r on r.notice_id = n.id where r.read_at is not null group by 1
    union all
    select n.day, 'read_minutes', '', sum(extract(epoch from r.read_at - n.created_at) / 60)::float8
      from n join notice_recipients r on r.notice_id = n.id where r.read_at is not null group by 1
    union all
    select n.day, 'receipts_required', '', count(*)::float8 from n join notice_recipients r on r.notice_id = n.id where n.mode <> 'read' group by 1
    union all
    select n.day, 'receipts_signed', '', count(*)::float8
      from n join notice_recipients r on r.notice_id = n.id where n.mode <> 'read' and r.confirmed_at is not null group by 1
    union all
    select n.day, 'sign_minutes', '', sum(extract(epoch from r.confirmed_at - n.created_at) / 60)::float8
      from n join notice_recipients r on r.notice_id = n.id where n.mode <> 'read' and r.confirmed_at is not null group by 1
    union all
    select metric_day($2, created_at), 'messages', author_kind, count(*)::float8
      from messages where metric_day($2, created_at) = any($1::date[]) group by 1, 3
    union all
    select metric_day($2, created_at), 'join_requests', kind, count(*)::float8
      from join_requests where metric_day($2, created_at) = any($1::date[]) group by 1, 3
    union all
    select metric_day($2, reviewed_at), 'join_approved', kind, count(*)::float8
      from join_requests where status = 'approved' and metric_day($2, reviewed_at) = any($1::date[]) group by 1, 3
    union all
    select metric_day($2, created_at), 'deliveries_failed', channel, count(*)::float8
      from notify_deliveries where status = 'dead' and metric_day($2, created_at) = any($1::date[]) group by 1, 3
    union all
    select metric_day($2, created_at), 'deliveries_sent', channel, count(*)::float8
      from notify_deliveries where status = 'sent' and metric_day($2, created_at) = any($1::date[]) group by 1, 3
)
select day, element, category, value from counts where value <> 0
"#;

/// Pupils whose attendance over the window ending on each day is under 90%, 88% and 80%,
/// per class; `chronic_base` counts the pupils who had at least one register in it.
const CHRONIC_SQL: &str = r#"
with ends as (select unnest($1::date[]) as x),
class_sessions as (
    select e.x, r.class_id, count(*) as n
      from ends e join attendance_registers r on r.day between e.x - $2::int + 1 and e.x
     group by 1, 2
),
absences as (
    select e.x, m.student_id, count(*) as a
      from ends e join attendance_registers r on r.day between e.x - $2::int + 1 and e.x
      join attendance_marks m on m.register_id = r.id and m.status in ('absent', 'leave')
     group by 1, 2
),
per_pupil as (
    select cs.x, s.class_id, coalesce(a.a, 0)::float8 / cs.n as missed
      from class_sessions cs
      join students s on s.class_id = cs.class_id and s.enrolled_on <= cs.x and (s.left_on is null or s.left_on > cs.x)
      left join absences a on a.x = cs.x and a.student_id = s.id
)
select p.x as day, p.class_id, g.level as grade_level, c.name as class_name,
       count(*)::float8 as base,
       count(*) filter (where missed > 0.10)::float8 as c90,
       count(*) filter (where missed > 0.12)::float8 as c88,
       count(*) filter (where missed > 0.20)::float8 as c80
  from per_pupil p join classes c on c.id = p.class_id join grades g on g.id = c.grade_id
 group by 1, 2, 3, 4
"#;

/// Every element of `days` except the chronic-absence ones; `school_days` are those days on
/// which each live class owes a morning register.
pub async fn day_values(
    tx: &mut SchoolTx,
    days: &[NaiveDate],
    school_days: &[NaiveDate],
    tz: &str,
) -> sqlx::Result<Vec<DataValue>> {
    if days.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for r in sqlx::query(CLASS_SQL)
        .bind(days)
        .bind(school_days)
        .bind(tz)
        .fetch_all(&mut **tx)
        .await?
    {
        let value: f64 = r.get("value");
        if value != 0.0 {
            out.push(DataValue {
                day: r.get("day"),
                class_id: r.get("class_id"),
                grade_level: r.get("grade_level"),
                class_name: r.get("class_name"),
                element: r.get("element"),
                category: r.get("category"),
                value,
            });
        }
    }
    for r in sqlx::query(SCHOOL_SQL)
        .bind(days)
        .bind(tz)
        .fetch_all(&mut **tx)
        .await?
    {
        out.push(DataValue {
            day: r.get("day"),
            class_id: 0,
            grade_level: 0,
            class_name: String::new(),
            element: r.get("element"),
            category: r.get("category"),
            value: r.get("value"),
        });
    }
    Ok(out)
}

/// The chronic-absence elements of each day in `days` (rolling window).
pub async fn chronic_values(tx: &mut SchoolTx, days: &[NaiveDate]) -> sqlx::Result<Vec<DataValue>> {
    if days.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let window = i32::try_from(CHRONIC_WINDOW_DAYS).unwrap_or(30);
    for r in sqlx::query(CHRONIC_SQL)
        .bind(days)
        .bind(window)
        .fetch_all(&mut **tx)
        .await?
    {
        for (element, column) in [
            ("chronic_base", "base"),
            ("chronic_90", "c90"),
            ("chronic_88", "c88"),
            ("chronic_80", "c80"),
        ] {
            let value: f64 = r.get(column);
            if value != 0.0 {
                out.push(DataValue {
                    day: r.get("day"),
                    class_id: r.get("class_id"),
                    grade_level: r.get("grade_level"),
                    class_name: r.get("class_name"),
                    element: element.into(),
                    category: String::new(),
                    value,
                });
            }
        }
    }
    Ok(out)
}

/// Today's checks: data quality and guardians bound. `bound_guardians` are the school's
/// guardian rows linked to an active account (from the shared membership table).
pub async fn checks(
    tx: &mut SchoolTx,
    bound_guardians: &[i64],
) -> sqlx::Result<Vec<(String, f64)>> {
    let row = sqlx::query(
        "with current as (select id, id_number from students where left_on is null)
         select
           (select count(*) from classes where retired_at is null and head_teacher_id is null)::float8 as classes_without_head,
           (select count(*) from current s where not exists (select 1 from student_guardians g where g.student_id = s.id))::float8 as pupils_without_guardian,
           (select coalesce(sum(n), 0) from (select count(*) as n from current where id_number is not null and id_number <> ''
                                             group by id_number having count(*) > 1) d)::float8 as duplicate_id_numbers,
           (select count(*) from current)::float8 as pupils_now,
           (select count(*) from current s where exists (select 1 from student_guardians g
                where g.student_id = s.id and g.guardian_id = any($1::bigint[])))::float8 as pupils_bound",
    )
    .bind(bound_guardians)
    .fetch_one(&mut **tx)
    .await?;
    Ok([
        "classes_without_head",
        "pupils_without_guardian",
        "duplicate_id_numbers",
        "pupils_now",
        "pupils_bound",
    ]
    .into_iter()
    .map(|k| (k.to_owned(), row.get::<f64, _>(k)))
    .collect())
}

/// Every day this school has something the dashboard counts (for a rebuild).
pub async fn event_days(tx: &mut SchoolTx, tz: &str) -> sqlx::Result<Vec<NaiveDate>> {
    sqlx::query_scalar(
        "select day from attendance_registers
         union select metric_day($1, created_at) from leave_requests
         union select metric_day($1, created_at) from notices
         union select metric_day($1, at) from gate_events
         union select day from gate_absence_alerts
         union select metric_day($1, created_at) from join_requests
         union select metric_day($1, reviewed_at) from join_requests where reviewed_at is not null
         union select metric_day($1, created_at) from messages
         union select metric_day($1, created_at) from notify_deliveries
         union select metric_day($1, now())",
    )
    .bind(tz)
    .fetch_all(&mut **tx)
    .await
}

/// Leave spans also touch the days after them (pupils not back from leave): the days a
/// rebuild must recompute for leave, as the incremental marks do.
pub async fn leave_days(tx: &mut SchoolTx, tz: &str) -> sqlx::Result<Vec<NaiveDate>> {
    sqlx::query_scalar(
        "select distinct generate_series(metric_day($1, starts_at),
                    least(metric_day($1, ends_at) + 3, metric_day($1, starts_at) + 62), interval '1 day')::date
           from leave_requests",
    )
    .bind(tz)
    .fetch_all(&mut **tx)
    .await
}
