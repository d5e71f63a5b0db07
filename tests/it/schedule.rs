//! The daily scheduled jobs: register reminders after the register deadline and gate
//! absence alerts after the arrival cut-off, on school days only, exactly once per school
//! and day even with concurrent callers; nothing before the deadline; a broken school does
//! not stop the others; `campus jobs run-due` by hand, and `campus serve --roles
//! maintenance` firing them with no request at all.

use std::process::Stdio;
use std::time::Duration;

use campus::config::Role;
use campus_school::schedule::{run_due, Job, Outcome, Scheduler};
use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use serde_json::Value;

use crate::attendance::{scalar, school, School};
use crate::helpers::{TestApp, BASE, S3_KEY, S3_SECRET};

const BIN: &str = env!("CARGO_BIN_EXE_campus");

/// `hh:mm` on `day` in the schools' time zone (Asia/Shanghai, UTC+8 all year).
fn at(day: NaiveDate, hm: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{day}T{hm}:00+08:00"))
        .unwrap()
        .with_timezone(&Utc)
}

/// The first `weekday` at least a week from now: pupils enrolled today count on that day,
/// and no register exists for it.
fn coming(weekday: Weekday) -> NaiveDate {
    let today = (Utc::now() + chrono::Duration::hours(8)).date_naive();
    (today + chrono::Duration::days(7))
        .iter_days()
        .find(|d| d.weekday() == weekday)
        .unwrap()
}

async fn count(app: &TestApp, s: &School, sql: &str) -> i64 {
    scalar(app, &s.tenant, &format!("select ({sql}) + $1 * 0"), 0).await
}

async fn inbox(app: &TestApp, s: &School, kind: &str, id: i64, category: &str) -> i64 {
    scalar(
        app,
        &s.tenant,
        &format!(
            "select count(*) from inbox_items where recipient_kind = '{kind}' and category = '{category}' and recipient_id = $1"
        ),
        id,
    )
    .await
}

async fn exec(app: &TestApp, s: &School, sql: &str) {
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_jobs_run_once_with_two_concurrent_callers() {
    let app = TestApp::spawn().await;
    let s = school(&app, "sch-once", "so").await;
    let now = at(coming(Weekday::Tue), "09:00");
    // Both callers start at the same instant, as two maintenance instances would.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let run = || {
        let db = app.services.db.clone();
        let t = s.tenant.clone();
        let start = start.clone();
        tokio::spawn(async move {
            start.wait().await;
            run_due(&db, &t, now).await.unwrap()
        })
    };
    let (first, second) = (run(), run());
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    for (job, affected) in [(Job::RegisterReminders, 2), (Job::GateAbsence, 5)] {
        let mut outcomes = [first.outcome(job), second.outcome(job)];
        outcomes.sort_by_key(|o| matches!(o, Outcome::AlreadyRan));
        assert_eq!(
            outcomes,
            [Outcome::Ran { affected }, Outcome::AlreadyRan],
            "{job:?}"
        );
    }
    // One reminder per head teacher, one absence alert per pupil to their guardian, and
    // one summary per class to its head teacher (class 1 has three pupils, class 2 two).
    for head in [s.staff[0], s.staff[1]] {
        assert_eq!(inbox(&app, &s, "staff", head, "attendance").await, 1);
        assert_eq!(inbox(&app, &s, "staff", head, "safety").await, 1);
    }
    for g in s.guardians {
        assert_eq!(inbox(&app, &s, "guardian", g, "safety").await, 1);
    }
    assert_eq!(
        count(&app, &s, "select count(*) from gate_absence_alerts").await,
        5
    );
    assert_eq!(
        count(
            &app,
            &s,
            "select count(*) from scheduled_runs where (job, affected) in (('register_reminders', 2), ('gate_absence', 5))"
        )
        .await,
        2
    );

    // Later the same day: nothing more.
    let before = count(&app, &s, "select count(*) from inbox_items").await;
    let again = run_due(
        &app.services.db,
        &s.tenant,
        now + chrono::Duration::hours(3),
    )
    .await
    .unwrap();
    assert_eq!(
        (again.register_reminders, again.gate_absence),
        (Outcome::AlreadyRan, Outcome::AlreadyRan)
    );
    assert_eq!(
        count(&app, &s, "select count(*) from inbox_items").await,
        before
    );
    app.stop().await;
}

#[tokio::test]
async fn scheduled_jobs_wait_for_each_deadline() {
    let app = TestApp::spawn().await;
    let s = school(&app, "sch-early", "se").await;
    let day = coming(Weekday::Wed);
    let early = run_due(&app.services.db, &s.tenant, at(day, "08:00"))
        .await
        .unwrap();
    assert!(early.school_day);
    assert_eq!(
        (early.register_reminders, early.gate_absence),
        (
            Outcome::NotDue {
                at: at(day, "08:30")
            },
            Outcome::NotDue {
                at: at(day, "08:10")
            }
        )
    );
    assert_eq!(
        early.next_check,
        at(day, "08:05"),
        "re-checked within 5 min"
    );
    assert_eq!(count(&app, &s, "select count(*) from inbox_items").await, 0);
    assert_eq!(
        count(&app, &s, "select count(*) from scheduled_runs").await,
        0
    );

    // After the arrival cut-off but before the register deadline: only the gate check.
    let mid = run_due(&app.services.db, &s.tenant, at(day, "08:20"))
        .await
        .unwrap();
    assert_eq!(mid.gate_absence, Outcome::Ran { affected: 5 });
    assert_eq!(
        mid.register_reminders,
        Outcome::NotDue {
            at: at(day, "08:30")
        }
    );
    assert_eq!(mid.next_check, at(day, "08:25"));
    assert_eq!(inbox(&app, &s, "staff", s.staff[0], "attendance").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn holidays_and_make_up_saturdays_decide_whether_jobs_run() {
    let app = TestApp::spawn().await;
    let s = school(&app, "sch-cal", "sc").await;
    let holiday = coming(Weekday::Thu);
    let saturday = coming(Weekday::Sat);
    exec(
        &app,
        &s,
        &format!("insert into calendar_days (day, kind, name) values ('{holiday}', 'off', '校庆')"),
    )
    .await;
    for day in [holiday, saturday] {
        let r = run_due(&app.services.db, &s.tenant, at(day, "10:00"))
            .await
            .unwrap();
        assert!(!r.school_day, "{day}");
        assert_eq!(
            (r.register_reminders, r.gate_absence),
            (Outcome::NoSchool, Outcome::NoSchool)
        );
    }
    assert_eq!(count(&app, &s, "select count(*) from inbox_items").await, 0);
    assert_eq!(
        count(&app, &s, "select count(*) from scheduled_runs").await,
        0
    );

    // The Saturday becomes a make-up school day.
    exec(
        &app,
        &s,
        &format!(
            "insert into calendar_days (day, kind, name) values ('{saturday}', 'school', '调休')"
        ),
    )
    .await;
    let r = run_due(&app.services.db, &s.tenant, at(saturday, "10:00"))
        .await
        .unwrap();
    assert!(r.school_day);
    assert_eq!(r.register_reminders, Outcome::Ran { affected: 2 });
    assert_eq!(r.gate_absence, Outcome::Ran { affected: 5 });
    assert_eq!(inbox(&app, &s, "staff", s.staff[1], "attendance").await, 1);

    // Once terms exist, a weekday outside all of them has no school.
    let friday = coming(Weekday::Fri);
    exec(
        &app,
        &s,
        &format!(
            "insert into school_terms (name, starts_on, ends_on) values ('下学期', '{}', '{}')",
            friday + chrono::Duration::days(30),
            friday + chrono::Duration::days(120)
        ),
    )
    .await;
    let r = run_due(&app.services.db, &s.tenant, at(friday, "10:00"))
        .await
        .unwrap();
    assert_eq!(r.register_reminders, Outcome::NoSchool);
    app.stop().await;
}

#[tokio::test]
async fn a_broken_school_does_not_stop_the_others() {
    let app = TestApp::spawn().await;
    let good = school(&app, "sch-good", "sg").await;
    let broken = school(&app, "sch-broken", "sb").await;
    sqlx::query(&format!(
        "drop table \"{}\".attendance_settings cascade",
        broken.tenant.schema_name()
    ))
    .execute(&app.services.pool)
    .await
    .unwrap();
    let now = at(coming(Weekday::Mon), "09:00");
    let scheduler = Scheduler::new();
    let tick = scheduler.tick(&app.services.db, now).await.unwrap();
    assert_eq!(tick.schools, 2);
    let failed: Vec<&str> = tick.failed().map(|r| r.school.slug.as_str()).collect();
    assert_eq!(failed, ["sch-broken"]);
    let ok = tick
        .runs
        .iter()
        .find(|r| r.school.slug.as_str() == "sch-good")
        .unwrap();
    assert_eq!(
        ok.result.as_ref().unwrap().register_reminders,
        Outcome::Ran { affected: 2 }
    );
    assert_eq!(
        inbox(&app, &good, "staff", good.staff[0], "attendance").await,
        1
    );

    // A minute later neither is looked at again: the good one is done for the day, the
    // broken one waits for its retry.
    let tick = scheduler
        .tick(&app.services.db, now + chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert!(tick.runs.is_empty(), "{:?}", tick.runs);
    let tick = scheduler
        .tick(&app.services.db, now + chrono::Duration::minutes(6))
        .await
        .unwrap();
    let looked: Vec<&str> = tick.runs.iter().map(|r| r.school.slug.as_str()).collect();
    assert_eq!(looked, ["sch-broken"]);
    app.stop().await;
}

fn campus(app: &TestApp, args: &[&str]) -> tokio::process::Command {
    let cfg = &app.services.cfg;
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.db.url)
        .env("CAMPUS_ROLE_PREFIX", &app.db.role_prefix)
        .env("CAMPUS_BASE_DOMAIN", BASE)
        .env("CAMPUS_S3_ENDPOINT", cfg.s3_endpoint.as_deref().unwrap())
        .env("CAMPUS_S3_ACCESS_KEY", S3_KEY)
        .env("CAMPUS_S3_SECRET_KEY", S3_SECRET)
        .env("RUST_LOG", "warn");
    cmd
}

#[tokio::test]
async fn jobs_run_due_runs_a_schools_jobs_from_the_command_line() {
    let app = TestApp::spawn().await;
    let s = school(&app, "sch-cli", "sl").await;
    let when = format!("{}T09:00:00+08:00", coming(Weekday::Tue));
    let run = |args: Vec<String>| {
        let app = &app;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            campus(app, &args).output().await.unwrap()
        }
    };
    let args = |extra: &[&str]| {
        let mut v: Vec<String> = [
            "jobs",
            "run-due",
            "--tenant",
            "sch-cli",
            "--at",
            when.as_str(),
            "--json",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        v.extend(extra.iter().map(|a| a.to_string()));
        v
    };
    let out = run(args(&[])).await;
    assert!(out.status.success(), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["report"]["register_reminders"]["status"], "ran");
    assert_eq!(report["report"]["gate_absence"]["status"], "ran");
    assert_eq!(inbox(&app, &s, "staff", s.staff[0], "attendance").await, 1);
    let out = run(args(&[])).await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["report"]["register_reminders"]["status"],
        "already_ran"
    );

    // Every active school, in plain text.
    let out = run(vec![
        "jobs".into(),
        "run-due".into(),
        "--at".into(),
        when.clone(),
    ])
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("sch-cli")
            && text.contains("already ran")
            && text.contains("1 active schools"),
        "{text}"
    );

    // A time that is not a time: exit 2 and what to write instead.
    let out = run(vec![
        "jobs".into(),
        "run-due".into(),
        "--at".into(),
        "tomorrow 8am".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
    let out = run(vec![
        "jobs".into(),
        "run-due".into(),
        "--tenant".into(),
        "no-such-school".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    app.stop().await;
}

#[tokio::test]
async fn serve_with_the_maintenance_role_fires_the_jobs_without_any_request() {
    // This process serves only the web role: the jobs must come from the real binary.
    let app = TestApp::spawn_with(|c| c.roles = vec![Role::Web]).await;
    let s = school(&app, "sch-serve", "sv").await;
    // Today is a school day whatever the weekday, and its deadline has passed.
    exec(
        &app,
        &s,
        "insert into calendar_days (day, kind, name)
         values ((now() at time zone 'Asia/Shanghai')::date, 'school', '调休')
         on conflict (day) do update set kind = 'school';
         update attendance_settings set register_deadline = '00:00', gate_arrival_cutoff = '23:59:59'",
    )
    .await;
    let mut child = campus(
        &app,
        &["serve", "--roles", "maintenance", "--bind", "127.0.0.1:0"],
    )
    .env("CAMPUS_SCHEDULE_INTERVAL_SECS", "1")
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .kill_on_drop(true)
    .spawn()
    .unwrap();
    let mut reminded = 0;
    for _ in 0..120 {
        reminded = inbox(&app, &s, "staff", s.staff[1], "attendance").await;
        if reminded > 0 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "campus serve exited early"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        reminded, 1,
        "the maintenance role reminded the head teacher"
    );
    // More ticks pass; still one reminder, and one recorded run.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(inbox(&app, &s, "staff", s.staff[1], "attendance").await, 1);
    assert_eq!(
        count(
            &app,
            &s,
            "select count(*) from scheduled_runs where job = 'register_reminders'"
        )
        .await,
        1
    );
    child.kill().await.unwrap();
    app.stop().await;
}
