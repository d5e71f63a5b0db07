//! Keeping the rollups current. Triggers in every school schema mark the days a change
//! touches (`metric_dirty`, tenant migration 0015) in the transaction that makes it; a pass
//! over a school recomputes each marked day *from the school's own tables* and replaces
//! that day's aggregates in `public.metric_values`. Because a day is always recomputed
//! whole from source, [`rebuild`] (mark every day, then pass) gives exactly what the
//! incremental passes gave.
//!
//! Several maintenance instances may pass at once: a transaction-level advisory lock per
//! school lets one of them work on a school while the others skip it, and a mark is removed
//! only if nobody marked the day again while the pass was computing (its `seq` is
//! unchanged), so a change committed mid-pass is picked up by the next one.

pub mod compute;

use std::collections::BTreeSet;
use std::time::Duration;

use campus_tenant::{registry, Db, Plans, Tenant, TenantError, TenantStatus};
use chrono::{DateTime, NaiveDate, Utc};
use futures::stream::{self, StreamExt};
use sqlx::Row as _;

use crate::indicators::CHRONIC_WINDOW_DAYS;
use compute::DataValue;

/// Advisory-lock namespace of rollup passes (the second key is the school's id).
const LOCK_SPACE: i32 = 0x6d65_7472; // "metr"
/// Days recomputed in one pass at most; a rebuild of a long history takes several passes.
const DAYS_PER_PASS: i64 = 200;
/// Schools passed at once by a tick.
const CONCURRENCY: usize = 4;
const CHRONIC: [&str; 4] = ["chronic_base", "chronic_90", "chronic_88", "chronic_80"];

#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// What one pass over one school did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Pass {
    /// Another instance was passing over this school; nothing was done.
    pub skipped: bool,
    /// Days recomputed (not counting chronic-absence days recomputed for the window).
    pub days: usize,
    /// Milliseconds between the oldest change this pass picked up and the end of the pass.
    pub lag_ms: Option<i64>,
    /// Marked days still waiting (more than one pass holds).
    pub remaining: i64,
}

/// Brings one school's rollups up to date with what is marked now.
pub async fn pass(db: &Db, school: &Tenant) -> Result<Pass, RollupError> {
    let tenant = school.id.0;
    let shared = db.shared();
    let last_run: Option<DateTime<Utc>> = sqlx::query_scalar(
        "select finished_at from public.metric_rollup_runs where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(shared)
    .await?;
    let bound: Vec<i64> = sqlx::query_scalar(
        "select guardian_id from public.memberships
          where tenant_id = $1 and status = 'active' and guardian_id is not null",
    )
    .bind(tenant)
    .fetch_all(shared)
    .await?;

    // Planned for each pass's days: a plan Postgres kept for a pass of one day (the usual
    // tick) would serve a rebuild's 180 badly.
    let mut tx = db.school_planned(school, Plans::Custom).await?;
    let locked: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1, $2)")
        .bind(LOCK_SPACE)
        .bind(i32::try_from(tenant).unwrap_or(i32::MAX))
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        tx.rollback().await?;
        return Ok(Pass {
            skipped: true,
            ..Pass::default()
        });
    }
    let today: NaiveDate = sqlx::query_scalar("select metric_local_day(now())")
        .fetch_one(&mut *tx)
        .await?;
    // Every day is computed at least once on the day itself, so a day on which nothing
    // happened still shows the registers it owed.
    let last_local: Option<NaiveDate> = match last_run {
        Some(at) => {
            sqlx::query_scalar("select metric_local_day($1)")
                .bind(at)
                .fetch_one(&mut *tx)
                .await?
        }
        None => None,
    };
    if last_local.is_none_or(|d| d < today) {
        sqlx::query("select metric_mark(array[metric_local_day(now())])")
            .execute(&mut *tx)
            .await?;
    }
    // Every shard's mark of the first days (tenant migration 0018).
    let marks = sqlx::query(
        "select day, shard, seq, marked_at from metric_dirty
          where day in (select distinct day from metric_dirty order by day limit $1)
          order by day, shard",
    )
    .bind(DAYS_PER_PASS)
    .fetch_all(&mut *tx)
    .await?;
    let mark_days: Vec<NaiveDate> = marks.iter().map(|r| r.get("day")).collect();
    let shards: Vec<i16> = marks.iter().map(|r| r.get("shard")).collect();
    let seqs: Vec<i64> = marks.iter().map(|r| r.get("seq")).collect();
    let mut days = mark_days.clone();
    days.dedup();
    let oldest: Option<DateTime<Utc>> = marks.iter().map(|r| r.get("marked_at")).min();

    let profile = compute::profile(&mut tx).await?;
    let school_days = school_days(&mut tx, &days, today).await?;
    let chronic_days = chronic_days(&days, today);
    let mut values = compute::day_values(&mut tx, &days, &school_days, &profile.timezone).await?;
    values.extend(compute::chronic_values(&mut tx, &chronic_days).await?);
    let checks = compute::checks(&mut tx, &bound).await?;
    let remaining: i64 = sqlx::query_scalar("select count(distinct day) from metric_dirty")
        .fetch_one(&mut *tx)
        .await?;

    let mut out = shared.begin().await?;
    sqlx::query(
        "insert into public.metric_schools (tenant_id, township, kind, locality, timezone, updated_at)
         values ($1, $2, $3, $4, $5, now())
         on conflict (tenant_id) do update set township = excluded.township, kind = excluded.kind,
             locality = excluded.locality, timezone = excluded.timezone, updated_at = now()",
    )
    .bind(tenant)
    .bind(&profile.township)
    .bind(&profile.kind)
    .bind(&profile.locality)
    .bind(&profile.timezone)
    .execute(&mut *out)
    .await?;
    sqlx::query(
        "delete from public.metric_values
          where tenant_id = $1
            and ((day = any($2::date[]) and element <> all($4::text[]))
              or (day = any($3::date[]) and element = any($4::text[])))",
    )
    .bind(tenant)
    .bind(&days)
    .bind(&chronic_days)
    .bind(&CHRONIC[..])
    .execute(&mut *out)
    .await?;
    insert_values(&mut out, tenant, &values).await?;
    active_users(&mut out, tenant, &days, &profile.timezone).await?;
    let mut touched: Vec<NaiveDate> = days.iter().chain(&chronic_days).copied().collect();
    touched.sort_unstable();
    touched.dedup();
    school_totals(&mut out, tenant, &touched).await?;
    for (element, value) in &checks {
        sqlx::query(
            "insert into public.metric_snapshots (tenant_id, element, value, computed_at) values ($1, $2, $3, now())
             on conflict (tenant_id, element) do update set value = excluded.value, computed_at = now()",
        )
        .bind(tenant)
        .bind(element)
        .bind(value)
        .execute(&mut *out)
        .await?;
    }
    let now = Utc::now();
    let lag_ms = oldest.map(|o| (now - o).num_milliseconds().max(0));
    if !days.is_empty() {
        sqlx::query(
            "insert into public.metric_rollup_runs (tenant_id, finished_at, days, lag_ms) values ($1, $2, $3, $4)
             on conflict (tenant_id) do update set finished_at = excluded.finished_at, days = excluded.days, lag_ms = excluded.lag_ms",
        )
        .bind(tenant)
        .bind(now)
        .bind(i32::try_from(days.len()).unwrap_or(i32::MAX))
        .bind(lag_ms)
        .execute(&mut *out)
        .await?;
    }
    out.commit().await?;

    // Only marks nobody renewed meanwhile: a change committed during the pass keeps its day
    // marked for the next one. A mark locked now belongs to a transaction renewing it, so it
    // is left alone rather than waited for: waiting here, while holding the marks already
    // taken, made that school's writers queue behind the pass. Should this fail after the
    // commit above, the days are simply recomputed again (same result).
    sqlx::query(
        "delete from metric_dirty d
          where d.ctid = any(array(
            select m.ctid from metric_dirty m
              join unnest($1::date[], $2::int2[], $3::bigint[]) as x(day, shard, seq)
                on m.day = x.day and m.shard = x.shard and m.seq = x.seq
               for update of m skip locked))",
    )
    .bind(&mark_days)
    .bind(&shards)
    .bind(&seqs)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Pass {
        skipped: false,
        days: days.len(),
        lag_ms,
        remaining: (remaining - i64::try_from(days.len()).unwrap_or(0)).max(0),
    })
}

/// The days among `days` on which registers were owed: school days by the school's
/// calendar (the same rule the reminders use), up to today.
async fn school_days(
    tx: &mut campus_tenant::SchoolTx,
    days: &[NaiveDate],
    today: NaiveDate,
) -> sqlx::Result<Vec<NaiveDate>> {
    use campus_school::calendar::{school_day, DayFacts, DayKind};
    let rows = sqlx::query(
        "select d.day, c.kind,
                exists(select 1 from school_terms) as terms_defined,
                exists(select 1 from school_terms t where d.day between t.starts_on and t.ends_on) as in_term
           from unnest($1::date[]) as d(day) left join calendar_days c on c.day = d.day",
    )
    .bind(days)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let day: NaiveDate = r.get("day");
            let facts = DayFacts {
                marked: r
                    .get::<Option<String>, _>("kind")
                    .as_deref()
                    .and_then(DayKind::parse),
                terms_defined: r.get("terms_defined"),
                in_term: r.get("in_term"),
            };
            (day <= today && school_day(day, &facts)).then_some(day)
        })
        .collect())
}

/// A register changes the rolling chronic-absence window of its day and of the days after
/// it (up to today).
fn chronic_days(days: &[NaiveDate], today: NaiveDate) -> Vec<NaiveDate> {
    let mut out = BTreeSet::new();
    for d in days.iter().filter(|d| **d <= today) {
        let mut x = *d;
        while x <= today && (x - *d).num_days() < CHRONIC_WINDOW_DAYS {
            out.insert(x);
            x = x.succ_opt().unwrap_or(x);
            if x == *d {
                break;
            }
        }
    }
    out.into_iter().collect()
}

async fn insert_values(
    out: &mut sqlx::PgConnection,
    tenant: i64,
    values: &[DataValue],
) -> sqlx::Result<()> {
    for chunk in values.chunks(5000) {
        let day: Vec<NaiveDate> = chunk.iter().map(|v| v.day).collect();
        let class: Vec<i64> = chunk.iter().map(|v| v.class_id).collect();
        let grade: Vec<i16> = chunk.iter().map(|v| v.grade_level).collect();
        let name: Vec<&str> = chunk.iter().map(|v| v.class_name.as_str()).collect();
        let element: Vec<&str> = chunk.iter().map(|v| v.element.as_str()).collect();
        let category: Vec<&str> = chunk.iter().map(|v| v.category.as_str()).collect();
        let value: Vec<f64> = chunk.iter().map(|v| v.value).collect();
        sqlx::query(
            "insert into public.metric_values (tenant_id, day, class_id, grade_level, class_name, element, category, value)
             select $1, * from unnest($2::date[], $3::bigint[], $4::int2[], $5::text[], $6::text[], $7::text[], $8::float8[])",
        )
        .bind(tenant)
        .bind(day)
        .bind(class)
        .bind(grade)
        .bind(name)
        .bind(element)
        .bind(category)
        .bind(value)
        .execute(&mut *out)
        .await?;
    }
    Ok(())
}

/// Brings `public.metric_school_values` (whole-school totals, what the county overview
/// reads) in line with the school's `metric_values` of `days`.
async fn school_totals(
    out: &mut sqlx::PgConnection,
    tenant: i64,
    days: &[NaiveDate],
) -> sqlx::Result<()> {
    if days.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "delete from public.metric_school_values where tenant_id = $1 and day = any($2::date[])",
    )
    .bind(tenant)
    .bind(days)
    .execute(&mut *out)
    .await?;
    sqlx::query(
        "insert into public.metric_school_values (tenant_id, day, element, value)
         select tenant_id, day, element, sum(value) from public.metric_values
          where tenant_id = $1 and day = any($2::date[])
          group by 1, 2, 3",
    )
    .bind(tenant)
    .bind(days)
    .execute(&mut *out)
    .await?;
    Ok(())
}

/// Active users per role and day: accounts that signed in to the school that (local) day,
/// counted under each role they hold there. Sign-ins are shared data, so this is computed
/// from `public` for the days in hand.
async fn active_users(
    out: &mut sqlx::PgConnection,
    tenant: i64,
    days: &[NaiveDate],
    timezone: &str,
) -> sqlx::Result<()> {
    if days.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "delete from public.metric_values where tenant_id = $1 and element = 'active_users' and day = any($2::date[])",
    )
    .bind(tenant)
    .bind(days)
    .execute(&mut *out)
    .await?;
    sqlx::query(
        "insert into public.metric_values (tenant_id, day, element, category, value)
         select $1, (e.at at time zone $3)::date, 'active_users', r.role, count(distinct e.account_id)
           from public.auth_events e
           join public.memberships m on m.account_id = e.account_id and m.tenant_id = e.tenant_id
           cross join lateral unnest(m.roles) as r(role)
          where e.tenant_id = $1 and e.event in ('signed_in', 'signed_in_sso')
            and e.at >= (select min(d) from unnest($2::date[]) d)::timestamp at time zone $3
            and (e.at at time zone $3)::date = any($2::date[])
          group by 2, 4",
    )
    .bind(tenant)
    .bind(days)
    .bind(timezone)
    .execute(&mut *out)
    .await?;
    Ok(())
}

/// Today's active users for one school, refreshed on every tick (sign-ins mark no day in
/// the school's schema).
async fn refresh_active_today(db: &Db, tenant: i64) -> sqlx::Result<()> {
    let mut out = db.shared().begin().await?;
    let tz: Option<String> =
        sqlx::query_scalar("select timezone from public.metric_schools where tenant_id = $1")
            .bind(tenant)
            .fetch_optional(&mut *out)
            .await?;
    let tz = tz.unwrap_or_else(|| "Asia/Shanghai".into());
    let today: NaiveDate = sqlx::query_scalar("select (now() at time zone $1)::date")
        .bind(&tz)
        .fetch_one(&mut *out)
        .await?;
    active_users(&mut out, tenant, &[today], &tz).await?;
    school_totals(&mut out, tenant, &[today]).await?;
    out.commit().await
}

/// One school's outcome in a tick.
#[derive(Debug)]
pub struct SchoolPass {
    pub school: Tenant,
    pub result: Result<Pass, RollupError>,
}

/// One pass over every active school (four at a time); a failing school is reported and
/// does not stop the others. Fails only if the registry cannot be read.
pub async fn tick(db: &Db) -> Result<Vec<SchoolPass>, RollupError> {
    let schools: Vec<Tenant> = registry::list(db.shared())
        .await?
        .into_iter()
        .filter(|t| t.status == TenantStatus::Active)
        .collect();
    Ok(stream::iter(schools)
        .map(|school| async move {
            let mut result = pass(db, &school).await;
            if result.is_ok() {
                if let Err(e) = refresh_active_today(db, school.id.0).await {
                    result = Err(e.into());
                }
            }
            SchoolPass { school, result }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await)
}

/// Recomputes every day of one school from source: the days with anything counted, the
/// days the rollups already hold, and today; then passes until nothing is marked.
pub async fn rebuild(db: &Db, school: &Tenant) -> Result<usize, RollupError> {
    let known: Vec<NaiveDate> =
        sqlx::query_scalar("select distinct day from public.metric_values where tenant_id = $1")
            .bind(school.id.0)
            .fetch_all(db.shared())
            .await?;
    let mut tx = db.school(school).await?;
    let tz = compute::profile(&mut tx).await?.timezone;
    let mut days: BTreeSet<NaiveDate> = compute::event_days(&mut tx, &tz)
        .await?
        .into_iter()
        .collect();
    days.extend(compute::leave_days(&mut tx, &tz).await?);
    days.extend(known);
    let days: Vec<NaiveDate> = days.into_iter().collect();
    sqlx::query("select metric_mark($1::date[])")
        .bind(&days)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut total = 0;
    for _ in 0..10_000 {
        let p = pass(db, school).await?;
        if p.skipped {
            // Another instance holds the school; its pass includes our marks.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        total += p.days;
        if p.remaining == 0 {
            break;
        }
    }
    refresh_active_today(db, school.id.0).await?;
    Ok(total)
}

/// One school's outcome in [`rebuild_all`]: days recomputed and how long it took.
#[derive(Debug)]
pub struct Rebuilt {
    pub school: Tenant,
    pub result: Result<usize, RollupError>,
    pub took: Duration,
}

/// Rebuilds every school in `schools`, four at a time (each school is one transaction at
/// a time, so schools are what runs in parallel), then refreshes the planner's statistics
/// of the rollup tables: a rebuild rewrites most of their rows at once.
pub async fn rebuild_all(db: &Db, schools: Vec<Tenant>) -> Result<Vec<Rebuilt>, RollupError> {
    let done: Vec<Rebuilt> = stream::iter(schools)
        .map(|school| async move {
            let started = std::time::Instant::now();
            let result = rebuild(db, &school).await;
            Rebuilt {
                school,
                result,
                took: started.elapsed(),
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    sqlx::query("analyze public.metric_values, public.metric_school_values")
        .execute(db.shared())
        .await?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_register_dirties_the_chronic_window_of_the_following_days_up_to_today() {
        let days = chronic_days(&[d("2026-03-02"), d("2026-03-04")], d("2026-03-05"));
        assert_eq!(
            days,
            vec![
                d("2026-03-02"),
                d("2026-03-03"),
                d("2026-03-04"),
                d("2026-03-05")
            ]
        );
        let far = chronic_days(&[d("2026-01-01")], d("2026-06-01"));
        assert_eq!(far.len(), CHRONIC_WINDOW_DAYS as usize);
        assert!(chronic_days(&[d("2026-07-01")], d("2026-06-01")).is_empty());
    }
}
