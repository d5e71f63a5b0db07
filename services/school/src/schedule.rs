//! The daily scheduled jobs of every school, run by the `maintenance` role: after the
//! school's register deadline, head teachers of classes without a morning register are
//! reminded ([`crate::attendance::remind_missing`]); after the gate arrival cut-off, pupils
//! who have not come in are reported ([`crate::gate::absence_check_at`]). Both only on school
//! days ([`crate::calendar`]) and in the school's time zone.
//!
//! Exactly once per school and day, however many instances run: a job first inserts its
//! `scheduled_runs (job, day)` row with `on conflict do nothing` in the transaction that does
//! its work. A second instance's insert waits for the first transaction and then finds the
//! row, so it does nothing; a job whose work fails rolls its row back and is tried again on
//! the next tick.
//!
//! [`run_due`] looks at one school with one small query and runs what is due. [`Scheduler`]
//! runs it for every active school and remembers, per instance, when each school next needs
//! a look (the end of its day once both jobs ran, the next deadline otherwise, re-checked at
//! least every [`RECHECK_SECS`] so a changed deadline or calendar is noticed), so a tick over
//! a thousand schools is one registry query plus the few schools that are due.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use campus_tenant::{registry, Db, Tenant, TenantError, TenantId, TenantStatus};
use chrono::{DateTime, NaiveDate, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use sqlx::Row;

use crate::attendance::TZ_SQL;
use crate::calendar::{school_day, DayFacts, DayKind};

/// Longest time a school that is not done for the day goes without a look.
pub const RECHECK_SECS: i64 = 300;
/// Schools looked at at once during a tick.
const CONCURRENCY: usize = 4;

/// A daily job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    RegisterReminders,
    GateAbsence,
}

impl Job {
    pub const ALL: [Job; 2] = [Job::RegisterReminders, Job::GateAbsence];

    /// The code stored in `scheduled_runs.job`.
    pub fn code(self) -> &'static str {
        match self {
            Self::RegisterReminders => "register_reminders",
            Self::GateAbsence => "gate_absence",
        }
    }
}

/// What one job did for one school at one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Not a school day: nothing to do.
    NoSchool,
    /// Its time has not come yet.
    NotDue { at: DateTime<Utc> },
    /// It ran earlier that day (here or on another instance).
    AlreadyRan,
    /// It ran now: classes reminded, or pupils alerted.
    Ran { affected: u64 },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoSchool => f.write_str("no school"),
            Self::NotDue { at } => write!(f, "due at {}", at.format("%Y-%m-%d %H:%M UTC")),
            Self::AlreadyRan => f.write_str("already ran"),
            Self::Ran { affected } => write!(f, "ran ({affected})"),
        }
    }
}

/// One school's jobs at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct DueReport {
    /// The school's day at `now`.
    pub day: NaiveDate,
    pub school_day: bool,
    pub register_reminders: Outcome,
    pub gate_absence: Outcome,
    /// When the school next needs a look.
    pub next_check: DateTime<Utc>,
}

impl DueReport {
    pub fn outcome(&self, job: Job) -> Outcome {
        match job {
            Job::RegisterReminders => self.register_reminders,
            Job::GateAbsence => self.gate_absence,
        }
    }
}

/// Runs the jobs of `school` that are due at `now` and have not run that day.
pub async fn run_due(
    db: &Db,
    school: &Tenant,
    now: DateTime<Utc>,
) -> Result<DueReport, TenantError> {
    let mut tx = db.school(school).await?;
    let row = sqlx::query(&format!(
        "select l.day,
                (l.day + s.register_deadline) at time zone {TZ_SQL} as register_at,
                (l.day + s.gate_arrival_cutoff) at time zone {TZ_SQL} as gate_at,
                (l.day + 1)::timestamp at time zone {TZ_SQL} as day_ends,
                (select kind from calendar_days where day = l.day) as marked,
                exists(select 1 from school_terms) as terms_defined,
                exists(select 1 from school_terms where l.day between starts_on and ends_on) as in_term,
                array(select job from scheduled_runs where day = l.day) as done
           from (select ($1::timestamptz at time zone {TZ_SQL})::date as day) as l,
                attendance_settings s
          where s.id = 1"
    ))
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    let day: NaiveDate = row.try_get("day")?;
    let day_ends: DateTime<Utc> = row.try_get("day_ends")?;
    let done: Vec<String> = row.try_get("done")?;
    let facts = DayFacts {
        marked: row
            .try_get::<Option<String>, _>("marked")?
            .as_deref()
            .and_then(DayKind::parse),
        terms_defined: row.try_get("terms_defined")?,
        in_term: row.try_get("in_term")?,
    };
    let is_school_day = school_day(day, &facts);
    let recheck = now + chrono::Duration::seconds(RECHECK_SECS);
    let mut next_check = if is_school_day {
        day_ends
    } else {
        day_ends.min(recheck)
    };
    let mut outcomes = [Outcome::NoSchool; 2];
    if is_school_day {
        for (i, job) in Job::ALL.into_iter().enumerate() {
            // The register deadline is passed once it is over; the gate cut-off at its minute.
            let (at, due) = match job {
                Job::RegisterReminders => {
                    let at: DateTime<Utc> = row.try_get("register_at")?;
                    (at, now > at)
                }
                Job::GateAbsence => {
                    let at: DateTime<Utc> = row.try_get("gate_at")?;
                    (at, now >= at)
                }
            };
            outcomes[i] = if done.iter().any(|d| d == job.code()) {
                Outcome::AlreadyRan
            } else if !due {
                next_check = next_check.min(at.max(now)).min(recheck);
                Outcome::NotDue { at }
            } else {
                run_job(db, school, job, day, now).await?
            };
        }
    }
    Ok(DueReport {
        day,
        school_day: is_school_day,
        register_reminders: outcomes[0],
        gate_absence: outcomes[1],
        next_check,
    })
}

/// Claims `job` for `day` and does its work in the same transaction.
async fn run_job(
    db: &Db,
    school: &Tenant,
    job: Job,
    day: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Outcome, TenantError> {
    let mut tx = db.school(school).await?;
    let claimed = sqlx::query(
        "insert into scheduled_runs (job, day) values ($1, $2) on conflict (job, day) do nothing",
    )
    .bind(job.code())
    .bind(day)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !claimed {
        tx.rollback().await?;
        return Ok(Outcome::AlreadyRan);
    }
    let affected = match job {
        Job::RegisterReminders => {
            crate::attendance::remind_missing(&mut tx, now)
                .await?
                .classes
        }
        Job::GateAbsence => crate::gate::absence_check_at(&mut tx, day, now).await?,
    };
    sqlx::query("update scheduled_runs set affected = $3 where job = $1 and day = $2")
        .bind(job.code())
        .bind(day)
        .bind(affected as i64)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(school = %school.slug, job = job.code(), %day, affected, "scheduled job ran");
    Ok(Outcome::Ran { affected })
}

/// One school's result in a tick.
#[derive(Debug)]
pub struct SchoolRun {
    pub school: Tenant,
    pub result: Result<DueReport, TenantError>,
}

/// What a tick did.
#[derive(Debug, Default)]
pub struct Tick {
    /// Active schools in the registry.
    pub schools: usize,
    /// The schools looked at (the others were known to have nothing due yet).
    pub runs: Vec<SchoolRun>,
}

impl Tick {
    pub fn failed(&self) -> impl Iterator<Item = &SchoolRun> {
        self.runs.iter().filter(|r| r.result.is_err())
    }
}

/// Runs [`run_due`] for every active school, skipping those known to have nothing due.
#[derive(Debug, Default)]
pub struct Scheduler {
    next_check: Mutex<HashMap<TenantId, DateTime<Utc>>>,
}

impl Scheduler {
    pub fn new() -> Self {
        Self::default()
    }

    /// One pass at `now`. A school that fails is logged and tried again after
    /// [`RECHECK_SECS`]; it never stops the others. Fails only if the registry cannot be read.
    pub async fn tick(&self, db: &Db, now: DateTime<Utc>) -> Result<Tick, TenantError> {
        let schools: Vec<Tenant> = registry::list(db.shared())
            .await?
            .into_iter()
            .filter(|t| t.status == TenantStatus::Active)
            .collect();
        let total = schools.len();
        let active: HashSet<TenantId> = schools.iter().map(|t| t.id).collect();
        let due: Vec<Tenant> = {
            let next = self.next_check.lock().expect("not poisoned");
            schools
                .into_iter()
                .filter(|t| next.get(&t.id).is_none_or(|at| now >= *at))
                .collect()
        };
        let runs: Vec<SchoolRun> = stream::iter(due)
            .map(|school| async move {
                let result = run_due(db, &school, now).await;
                SchoolRun { school, result }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut next = self.next_check.lock().expect("not poisoned");
        next.retain(|id, _| active.contains(id));
        for run in &runs {
            let at = match &run.result {
                Ok(report) => report.next_check,
                Err(e) => {
                    tracing::warn!(school = %run.school.slug, error = %e, "scheduled jobs failed; other schools go on, this one is retried");
                    now + chrono::Duration::seconds(RECHECK_SECS)
                }
            };
            next.insert(run.school.id, at);
        }
        Ok(Tick {
            schools: total,
            runs,
        })
    }
}
