//! Notification fan-out beyond the inbox: mail to a real SMTP server on loopback, signed
//! webhook calls to a real local HTTP receiver, retries, dead letters and their retry,
//! quiet hours, preferences, fairness between schools, a worker killed mid-batch, and the
//! school admin's settings kept apart between schools.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use campus::config::Role;
use campus_devstack::SmtpSink;
use campus_notify::admin::{self, SettingsChange};
use campus_notify::channels::webhook_signature;
use campus_notify::Channel;
use campus_school::notify::{self, Audience, Category, Message, Recipient};
use campus_tenant::Tenant;
use reqwest::Method;

use crate::helpers::{add_pupils, person, TestApp, Visitor};

const PW: &str = "Correct-Horse-9";
const HOOK_SECRET: &str = "county-provider-secret-0123456789";

/// Guardians `g0..gn` with mail and phone, one per pupil of a fresh school.
pub(crate) async fn school(app: &TestApp, slug: &str, n: usize) -> Tenant {
    let t = app.onboard(slug, &format!("{slug} 学校")).await.tenant;
    add_pupils(&app.services, &t, slug, n).await;
    let mut tx = app.services.db.school(&t).await.unwrap();
    sqlx::query(
        "with g as (
           insert into guardians (name, email, phone)
           select 'g' || i, 'g' || i || '@' || $1 || '.example.cn', '139' || lpad(i::text, 8, '0')
             from generate_series(0, $2 - 1) as i
           returning id, name)
         insert into student_guardians (student_id, guardian_id)
         select s.id, g.id from g join students s on s.student_no = $1 || '-' || substr(g.name, 2)",
    )
    .bind(slug)
    .bind(n as i32)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    t
}

pub(crate) async fn enable(app: &TestApp, t: &Tenant, email: bool, sms: bool, quiet: (&str, &str)) {
    let mut tx = app.services.db.school(t).await.unwrap();
    admin::save_settings(
        &mut tx,
        &SettingsChange {
            email_enabled: email,
            sms_enabled: sms,
            wechat_enabled: false,
            quiet_start: quiet.0.into(),
            quiet_end: quiet.1.into(),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap()
    .unwrap();
    tx.commit().await.unwrap();
}

/// Quiet hours that never hold anything (an empty window).
pub(crate) const AWAKE: (&str, &str) = ("00:00", "00:00");

async fn send(app: &TestApp, t: &Tenant, audience: Audience, category: Category, key: &str) -> u64 {
    let mut tx = app.services.db.school(t).await.unwrap();
    let n = notify::send(
        &mut tx,
        &audience,
        &Message {
            category,
            title: "Notice 家长会",
            body: "周五下午三点在礼堂召开家长会。",
            link: Some("/notices/1"),
            source: &format!("test:{key}"),
            dedupe_key: Some(key),
            en: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    n
}

async fn statuses(app: &TestApp, t: &Tenant) -> HashMap<String, i64> {
    let mut tx = app.services.db.school(t).await.unwrap();
    let rows: Vec<(String, i64)> =
        sqlx::query_as("select status, count(*) from notify_deliveries group by status")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    rows.into_iter().collect()
}

/// The deliveries given up, as (address, last error), by address.
async fn dead(app: &TestApp, t: &Tenant) -> Vec<(String, Option<String>)> {
    let mut tx = app.services.db.school(t).await.unwrap();
    let rows = sqlx::query_as(
        "select address, last_error from notify_deliveries where status = 'dead' order by address",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    rows
}

/// A provider's receiving end on loopback: checks the signature, remembers every call, and
/// answers per phone number as told (default 200).
#[derive(Clone, Default)]
struct Provider {
    calls: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    /// phone → statuses to answer in turn (then 200).
    script: Arc<Mutex<HashMap<String, Vec<u16>>>>,
    /// Delay before answering (to kill a worker mid-batch).
    delay_ms: Arc<AtomicUsize>,
    bad_signatures: Arc<AtomicUsize>,
}

async fn provider_endpoint(
    State(p): State<Provider>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    if webhook_signature(HOOK_SECRET, &h("x-campus-timestamp"), &body) != h("x-campus-signature") {
        p.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["id"].as_str().unwrap(), h("idempotency-key"));
    p.calls
        .lock()
        .unwrap()
        .push((h("idempotency-key"), json.clone()));
    let delay = p.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    let to = json["to"].as_str().unwrap_or("").to_owned();
    let answer = p
        .script
        .lock()
        .unwrap()
        .get_mut(&to)
        .and_then(|v| (!v.is_empty()).then(|| v.remove(0)));
    StatusCode::from_u16(answer.unwrap_or(200)).unwrap()
}

impl Provider {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/send", post(provider_endpoint))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/send")
    }

    fn calls_to(&self, phone: &str) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, j)| j["to"] == phone)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

pub(crate) async fn app_with(adjust: impl FnOnce(&mut campus::Config)) -> TestApp {
    TestApp::spawn_with(|c| {
        // Workers are driven by the tests (drain / run_once) unless a test asks for the role.
        c.roles = vec![Role::Web];
        c.notify_retry_base_secs = 0;
        adjust(c);
    })
    .await
}

#[tokio::test]
async fn mail_reaches_a_real_smtp_server_once_per_recipient() {
    let sink = SmtpSink::start(0).await.unwrap();
    let url = sink.url();
    let app = app_with(|c| c.smtp_url = Some(url)).await;
    let a = school(&app, "mail-a", 30).await;
    enable(&app, &a, true, false, AWAKE).await;

    assert_eq!(
        send(&app, &a, Audience::AllGuardians, Category::Notices, "n1").await,
        30,
        "inbox rows at once"
    );
    app.services.notifier.drain().await.unwrap();
    let mail = sink.mail();
    assert_eq!(mail.len(), 30);
    let to: HashSet<String> = mail.iter().flat_map(|m| m.to.clone()).collect();
    let expected: HashSet<String> = (0..30).map(|i| format!("g{i}@mail-a.example.cn")).collect();
    assert_eq!(to, expected);
    let ids: HashSet<String> = mail
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), 30, "one message id per delivery");
    assert!(
        ids.iter()
            .all(|id| id.starts_with(&format!("<campus-{}-", a.id.0))),
        "{ids:?}"
    );
    assert!(
        mail[0].text().contains("/notices/1") && mail[0].text().contains("周五下午三点"),
        "{}",
        mail[0].text()
    );
    assert_eq!(statuses(&app, &a).await.get("sent"), Some(&30));
    assert!(
        sink.connections() <= u64::from(app.services.cfg.smtp_pool_size),
        "connections are reused: {} for 30 messages",
        sink.connections()
    );

    // The same send again (same key) and another drain deliver nothing more.
    assert_eq!(
        send(&app, &a, Audience::AllGuardians, Category::Notices, "n1").await,
        0
    );
    app.services.notifier.drain().await.unwrap();
    assert_eq!(sink.mail().len(), 30);

    // A guardian who turns mail off for notices gets none for the next one.
    let mut tx = app.services.db.school(&a).await.unwrap();
    let g0: i64 = sqlx::query_scalar("select id from guardians where name = 'g0'")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    admin::save_preferences(
        &mut tx,
        Recipient::Guardian(g0),
        &[(Category::Notices, vec![])],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    send(&app, &a, Audience::AllGuardians, Category::Notices, "n2").await;
    app.services.notifier.drain().await.unwrap();
    let mail = sink.mail();
    assert_eq!(mail.len(), 59);
    assert!(!mail[30..]
        .iter()
        .any(|m| m.to.contains(&"g0@mail-a.example.cn".to_string())));
    app.stop().await;
}

/// A mail server that refuses some mailboxes (550) and one that is down: the refused
/// deliveries are given up at once with the server's reason, the others sent once; while
/// the server is down nothing is lost, everything waits for a retry.
#[tokio::test]
async fn refused_mailboxes_are_dead_at_once_and_a_server_that_is_down_is_retried() {
    let sink = SmtpSink::start(0).await.unwrap();
    sink.refuse("g3@");
    sink.refuse("g7@");
    let url = sink.url();
    let app = app_with(|c| c.smtp_url = Some(url)).await;
    let a = school(&app, "refused", 10).await;
    enable(&app, &a, true, false, AWAKE).await;
    send(&app, &a, Audience::AllGuardians, Category::Notices, "n1").await;
    app.services.notifier.drain().await.unwrap();
    assert_eq!(sink.mail().len(), 8);
    let s = statuses(&app, &a).await;
    assert_eq!(
        (s.get("sent"), s.get("dead")),
        (Some(&8), Some(&2)),
        "{s:?}"
    );
    let reasons = dead(&app, &a).await;
    assert_eq!(reasons.len(), 2);
    assert!(reasons[0].0.starts_with("g3@"), "{reasons:?}");
    assert!(
        reasons
            .iter()
            .all(|(_, e)| e.as_deref().is_some_and(|e| e.contains("550"))),
        "{reasons:?}"
    );

    // A server that is not there: every delivery waits for a retry, none is given up.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let app2 = app_with(|c| c.smtp_url = Some(format!("smtp://{down}"))).await;
    let b = school(&app2, "mail-down", 4).await;
    enable(&app2, &b, true, false, AWAKE).await;
    send(&app2, &b, Audience::AllGuardians, Category::Notices, "n1").await;
    app2.services.notifier.run_once().await.unwrap();
    app2.services.notifier.run_once().await.unwrap();
    let s = statuses(&app2, &b).await;
    assert_eq!(s.get("pending"), Some(&4), "{s:?}");
    assert_eq!(s.get("dead"), None);
    let mut tx = app2.services.db.school(&b).await.unwrap();
    let attempts: i64 = sqlx::query_scalar("select min(attempts)::bigint from notify_deliveries")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(attempts >= 1, "tried and rescheduled");
    app2.stop().await;
    app.stop().await;
}

/// A mail server that asks for a login gets the one in `smtp_url` (percent-decoded); with
/// a wrong password every delivery is given up with the server's 535, nothing is sent.
#[tokio::test]
async fn the_mail_servers_login_comes_from_the_smtp_url() {
    let sink = SmtpSink::start(0).await.unwrap();
    sink.require_login("campus@mail-login.cn", "s3cret:1");
    let url = format!("smtp://campus%40mail-login.cn:s3cret%3A1@{}", sink.addr);
    let app = app_with(|c| c.smtp_url = Some(url)).await;
    let a = school(&app, "mail-login", 5).await;
    enable(&app, &a, true, false, AWAKE).await;
    send(&app, &a, Audience::AllGuardians, Category::Notices, "n1").await;
    app.services.notifier.drain().await.unwrap();
    assert_eq!(sink.mail().len(), 5);
    assert_eq!(statuses(&app, &a).await.get("sent"), Some(&5));
    app.stop().await;

    let wrong = format!("smtp://campus%40mail-login.cn:guess@{}", sink.addr);
    let app = app_with(|c| c.smtp_url = Some(wrong)).await;
    let b = school(&app, "mail-badlogin", 3).await;
    enable(&app, &b, true, false, AWAKE).await;
    send(&app, &b, Audience::AllGuardians, Category::Notices, "n1").await;
    app.services.notifier.drain().await.unwrap();
    assert_eq!(sink.mail().len(), 5, "nothing more was sent");
    let s = statuses(&app, &b).await;
    assert_eq!(s.get("dead"), Some(&3), "{s:?}");
    let errors = dead(&app, &b).await;
    assert!(
        errors
            .iter()
            .all(|(_, e)| e.as_deref().is_some_and(|e| e.contains("535"))),
        "{errors:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn webhook_calls_are_signed_retried_and_dead_lettered() {
    let provider = Provider::default();
    let hook = provider.start().await;
    let app = app_with(|c| {
        c.notify_webhook_url = Some(hook);
        c.notify_webhook_secret = Some(HOOK_SECRET.into());
        c.notify_max_attempts = 4;
    })
    .await;
    let a = school(&app, "hook-a", 3).await;
    enable(&app, &a, false, true, AWAKE).await;
    let (flaky, refused, fine) = ("13900000000", "13900000001", "13900000002");
    provider
        .script
        .lock()
        .unwrap()
        .insert(flaky.into(), vec![503, 503]);
    provider
        .script
        .lock()
        .unwrap()
        .insert(refused.into(), vec![400]);

    send(&app, &a, Audience::AllGuardians, Category::Safety, "gate-1").await;
    app.services.notifier.drain().await.unwrap();
    assert_eq!(provider.bad_signatures.load(Ordering::SeqCst), 0);
    let flaky_calls = provider.calls_to(flaky);
    assert_eq!(flaky_calls.len(), 3, "two 503s, then delivered");
    assert!(
        flaky_calls.iter().all(|k| k == &flaky_calls[0]),
        "a retry carries the same key"
    );
    assert_eq!(provider.calls_to(fine).len(), 1);
    assert_eq!(provider.calls_to(refused).len(), 1, "a 400 is not retried");
    let s = statuses(&app, &a).await;
    assert_eq!((s.get("sent"), s.get("dead")), (Some(&2), Some(&1)));
    let body = provider.calls.lock().unwrap()[0].1.clone();
    assert_eq!(body["channel"], "sms");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("【hook-a 学校】"),
        "{body}"
    );

    // The school admin sees the dead delivery and retries it; school B's admin cannot.
    let b = app.onboard("hook-b", "乙校").await.tenant;
    person(
        &app.services,
        "admin.a",
        "甲管理员",
        PW,
        &[(&a, &["school_admin"])],
    )
    .await;
    person(
        &app.services,
        "admin.b",
        "乙管理员",
        PW,
        &[(&b, &["school_admin"])],
    )
    .await;
    person(
        &app.services,
        "teacher.a",
        "甲老师",
        PW,
        &[(&a, &["teacher"])],
    )
    .await;
    let host_a = TestApp::school_host("hook-a");
    let host_b = TestApp::school_host("hook-b");

    let mut vb = Visitor::new(&app);
    vb.sign_in(&host_b, "admin.b", PW).await;
    let csrf_b = vb.csrf(&host_b, "/admin/notify").await;
    let r = vb
        .json(
            Method::POST,
            &host_b,
            "/api/v1/notify/dead/retry",
            &serde_json::json!({}),
            &[("x-csrf-token", &csrf_b)],
        )
        .await;
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["retried"],
        0,
        "B's retry touches only B"
    );
    let r = vb.get(&host_a, "/api/v1/notify/queue").await;
    assert!(
        r.status().is_client_error() || r.status().is_redirection(),
        "B's session is not one on A's host: {}",
        r.status()
    );
    assert_eq!(statuses(&app, &a).await.get("dead"), Some(&1));

    let mut vt = Visitor::new(&app);
    vt.sign_in(&host_a, "teacher.a", PW).await;
    assert_eq!(
        vt.get(&host_a, "/api/v1/notify/queue").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        vt.get(&host_a, "/admin/notify").await.status(),
        StatusCode::FORBIDDEN
    );

    let mut va = Visitor::new(&app);
    va.sign_in(&host_a, "admin.a", PW).await;
    let page = va.get(&host_a, "/admin/notify").await.text().await.unwrap();
    assert!(
        page.contains("139****0001"),
        "the dead delivery is listed, masked"
    );
    let queue: serde_json::Value = va
        .get(&host_a, "/api/v1/notify/queue")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(queue["dead"].as_array().unwrap().len(), 1);
    assert!(queue["dead"][0]["last_error"]
        .as_str()
        .unwrap()
        .contains("400"));
    let csrf = va.csrf(&host_a, "/admin/notify").await;
    let r = va
        .json(
            Method::POST,
            &host_a,
            "/api/v1/notify/dead/retry",
            &serde_json::json!({}),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["retried"], 1);
    app.services.notifier.drain().await.unwrap();
    assert_eq!(provider.calls_to(refused).len(), 2);
    assert_eq!(statuses(&app, &a).await.get("sent"), Some(&3));
    app.stop().await;
}

#[tokio::test]
async fn quiet_hours_hold_all_but_safety_alerts() {
    let provider = Provider::default();
    let hook = provider.start().await;
    let app = app_with(|c| {
        c.notify_webhook_url = Some(hook);
        c.notify_webhook_secret = Some(HOOK_SECRET.into());
    })
    .await;
    let a = school(&app, "quiet-a", 2).await;
    // A quiet window from an hour ago to an hour from now, China time.
    let now = chrono::Utc::now() + chrono::Duration::hours(8);
    let fmt = |d: chrono::DateTime<chrono::Utc>| d.format("%H:%M").to_string();
    let (from, until) = (
        fmt(now - chrono::Duration::hours(1)),
        fmt(now + chrono::Duration::hours(1)),
    );
    enable(&app, &a, false, true, (&from, &until)).await;

    send(
        &app,
        &a,
        Audience::AllGuardians,
        Category::Attendance,
        "late-1",
    )
    .await;
    send(
        &app,
        &a,
        Audience::AllGuardians,
        Category::Safety,
        "absent-1",
    )
    .await;
    app.services.notifier.drain().await.unwrap();
    let calls = provider.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "only the safety alerts went out");
    assert!(calls.iter().all(|(_, j)| j["category"] == "safety"));
    let mut tx = app.services.db.school(&a).await.unwrap();
    let held: Vec<(String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "select d.status, d.next_attempt_at from notify_deliveries d join notify_jobs j on j.id = d.job_id where j.category = 'attendance'",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(held.len(), 2);
    for (status, at) in held {
        assert_eq!(status, "pending");
        let wait = at - chrono::Utc::now();
        assert!(
            wait > chrono::Duration::minutes(50) && wait < chrono::Duration::minutes(61),
            "held until the window ends: {wait}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_safety_alert_is_not_held_up_by_another_schools_bulk_notice() {
    let provider = Provider::default();
    let hook = provider.start().await;
    let app = app_with(|c| {
        c.notify_webhook_url = Some(hook);
        c.notify_webhook_secret = Some(HOOK_SECRET.into());
        c.notify_batch = 100;
    })
    .await;
    let busy = school(&app, "busy", 600).await;
    let calm = school(&app, "calm", 1).await;
    enable(&app, &busy, false, true, AWAKE).await;
    enable(&app, &calm, false, true, AWAKE).await;
    // The bulk notice is queued first; SMS only for this test's purposes.
    let mut tx = app.services.db.school(&busy).await.unwrap();
    sqlx::query("insert into notify_preferences (recipient_kind, recipient_id, category, channels) select 'guardian', id, 'notices', '{sms}' from guardians")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    send(
        &app,
        &busy,
        Audience::AllGuardians,
        Category::Notices,
        "bulk",
    )
    .await;
    send(
        &app,
        &calm,
        Audience::AllGuardians,
        Category::Safety,
        "gate",
    )
    .await;

    // One turn: the safety lane is served first.
    assert!(app.services.notifier.run_once().await.unwrap());
    let calls = provider.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].1["school"], "calm");
    assert_eq!(calls[0].1["category"], "safety");
    // Then the bulk notice goes out in batches, within the school's rate.
    app.services.notifier.drain().await.unwrap();
    assert_eq!(provider.calls.lock().unwrap().len(), 601);
    assert_eq!(statuses(&app, &busy).await.get("sent"), Some(&600));
    app.stop().await;
}

#[tokio::test]
async fn a_worker_killed_mid_batch_leaves_one_delivery_per_recipient() {
    let provider = Provider::default();
    let hook = provider.start().await;
    let app = app_with(|c| {
        c.notify_webhook_url = Some(hook);
        c.notify_webhook_secret = Some(HOOK_SECRET.into());
        c.notify_lease_secs = 1;
        c.notify_batch = 50;
    })
    .await;
    let a = school(&app, "crash", 40).await;
    enable(&app, &a, false, true, AWAKE).await;
    send(&app, &a, Audience::AllGuardians, Category::Safety, "alert").await;

    // The provider is slow; the worker is killed while its batch is in flight.
    provider.delay_ms.store(3_000, Ordering::SeqCst);
    let notifier = app.services.notifier.clone();
    let worker = tokio::spawn(async move { notifier.run_once().await });
    for _ in 0..100 {
        if provider.calls.lock().unwrap().len() >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.abort();
    let _ = worker.await;
    let seen_before = provider.calls.lock().unwrap().len();
    assert!(
        seen_before >= 10,
        "the batch was in flight when the worker died"
    );
    assert_eq!(
        statuses(&app, &a).await.get("sending"),
        Some(&40),
        "claimed, never reported"
    );

    // Another worker takes over once the lease runs out.
    provider.delay_ms.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    app.services.notifier.drain().await.unwrap();
    assert_eq!(statuses(&app, &a).await.get("sent"), Some(&40));

    // Every recipient got one delivery: one key each, however many times it was presented.
    let calls = provider.calls.lock().unwrap().clone();
    let mut keys_per_phone: HashMap<String, HashSet<String>> = HashMap::new();
    for (key, json) in &calls {
        keys_per_phone
            .entry(json["to"].as_str().unwrap().to_owned())
            .or_default()
            .insert(key.clone());
    }
    assert_eq!(keys_per_phone.len(), 40);
    assert!(
        keys_per_phone.values().all(|k| k.len() == 1),
        "a resend reuses the key the provider deduplicates on"
    );
    let mut tx = app.services.db.school(&a).await.unwrap();
    let per_recipient: Vec<i64> = sqlx::query_scalar(
        "select count(*) from notify_deliveries group by recipient_kind, recipient_id, channel",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(per_recipient.iter().all(|n| *n == 1));
    app.stop().await;
}

/// The next doorbell notification's payload (the lane), or None if none comes. NOTIFY is
/// delivered at commit, so once a send has returned its notification is on its way or
/// was never sent.
async fn next_ring(listener: &mut sqlx::postgres::PgListener) -> Option<String> {
    tokio::time::timeout(Duration::from_millis(700), listener.recv())
        .await
        .ok()
        .map(|n| n.unwrap().payload().to_owned())
}

/// A ring wakes the workers (NOTIFY, sent by the instance after the commit) only when they
/// may not know of the work yet: the first ring of a school's lane wakes them, further rings of that lane
/// before the workers fold it do not, another lane does, and once the lane is served and
/// cleared the next ring wakes them again.
#[tokio::test]
async fn a_ring_notifies_only_when_the_workers_may_not_know() {
    let sink = SmtpSink::start(0).await.unwrap();
    let url = sink.url();
    let app = app_with(|c| c.smtp_url = Some(url)).await;
    let a = school(&app, "bell", 3).await;
    enable(&app, &a, true, false, AWAKE).await;
    let mut listener = sqlx::postgres::PgListener::connect(&app.db.url)
        .await
        .unwrap();
    listener.listen("campus_notify").await.unwrap();
    send(&app, &a, Audience::AllGuardians, Category::Notices, "n1").await;
    assert_eq!(
        next_ring(&mut listener).await.as_deref(),
        Some(""),
        "first ring wakes"
    );
    send(&app, &a, Audience::AllGuardians, Category::Notices, "n2").await;
    assert_eq!(
        next_ring(&mut listener).await,
        None,
        "the lane is known already"
    );
    send(&app, &a, Audience::AllGuardians, Category::Safety, "s1").await;
    assert_eq!(
        next_ring(&mut listener).await.as_deref(),
        Some(""),
        "another lane wakes"
    );

    app.services.notifier.drain().await.unwrap();
    assert_eq!(sink.mail().len(), 9, "every ring's job was delivered");
    send(&app, &a, Audience::AllGuardians, Category::Notices, "n3").await;
    assert_eq!(
        next_ring(&mut listener).await.as_deref(),
        Some(""),
        "a cleared lane wakes again"
    );
    app.services.notifier.drain().await.unwrap();
    assert_eq!(sink.mail().len(), 12);

    // The wake-up follows the commit: a transaction that rings and rolls back wakes no one.
    let mut tx = app.services.db.school(&a).await.unwrap();
    notify::send(
        &mut tx,
        &Audience::AllGuardians,
        &Message {
            category: Category::Notices,
            title: "撤回",
            body: "不会发出。",
            link: None,
            source: "test:rolled-back",
            dedupe_key: Some("rolled-back"),
            en: None,
        },
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(next_ring(&mut listener).await, None, "nothing committed");
    app.services.notifier.drain().await.unwrap();
    assert_eq!(sink.mail().len(), 12);
    app.stop().await;
}

/// A school's transaction that sends while a worker is in the middle of that school's turn
/// never waits for the worker: under the county's morning load such waits once formed a
/// cycle across connections (the turn waiting on the request, the request on the turn)
/// that stopped the server. The message sent mid-turn is not lost either: it goes out
/// after the turn, and the doorbell is empty once everything is delivered.
#[tokio::test]
async fn sending_during_a_turn_waits_for_nothing_and_is_delivered_after_it() {
    let provider = Provider::default();
    let hook = provider.start().await;
    let app = app_with(|c| {
        c.notify_webhook_url = Some(hook);
        c.notify_webhook_secret = Some(HOOK_SECRET.into());
    })
    .await;
    let a = school(&app, "midturn", 5).await;
    enable(&app, &a, false, true, AWAKE).await;
    send(&app, &a, Audience::AllGuardians, Category::Safety, "first").await;

    provider.delay_ms.store(1_500, Ordering::SeqCst);
    let notifier = app.services.notifier.clone();
    let worker = tokio::spawn(async move { notifier.run_once().await });
    for _ in 0..200 {
        if !provider.calls.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !provider.calls.lock().unwrap().is_empty(),
        "the turn is sending"
    );

    // Any lock wait at all fails this transaction (SQLSTATE 55P03) instead of waiting.
    let mut tx = app.services.db.school(&a).await.unwrap();
    sqlx::query("set local lock_timeout = '100ms'")
        .execute(&mut *tx)
        .await
        .unwrap();
    notify::send(
        &mut tx,
        &Audience::AllGuardians,
        &Message {
            category: Category::Safety,
            title: "第二条",
            body: "放学时间调整。",
            link: None,
            source: "test:second",
            dedupe_key: Some("second"),
            en: None,
        },
    )
    .await
    .expect("ringing during a turn waits for no lock");
    tx.commit().await.unwrap();

    assert!(worker.await.unwrap().unwrap(), "the turn finished");
    provider.delay_ms.store(0, Ordering::SeqCst);
    app.services.notifier.drain().await.unwrap();
    for i in 0..5 {
        let phone = format!("139{i:08}");
        assert_eq!(
            provider.calls_to(&phone).len(),
            2,
            "both alerts reached {phone}"
        );
    }
    let left: i64 = sqlx::query_scalar(
        "select (select count(*) from public.notify_queue where tenant_id = $1)
              + (select count(*) from public.notify_rings where tenant_id = $1)",
    )
    .bind(a.id.0)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(left, 0, "nothing left on the doorbell");
    app.stop().await;
}

#[tokio::test]
async fn the_notify_role_delivers_by_itself_and_counts_it() {
    let sink = SmtpSink::start(0).await.unwrap();
    let url = sink.url();
    let app = TestApp::spawn_with(|c| {
        c.roles = vec![Role::Web, Role::Notify];
        c.smtp_url = Some(url);
    })
    .await;
    let a = school(&app, "role-a", 5).await;
    enable(&app, &a, true, false, AWAKE).await;
    send(&app, &a, Audience::AllGuardians, Category::Safety, "s1").await;
    let mut delivered = 0;
    for _ in 0..100 {
        delivered = sink.mail().len();
        if delivered == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered, 5, "workers woke up on the ring and delivered");
    let metrics = app
        .get("127.0.0.1", "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("campus_notify_sent_total{channel=\"email\",school=\"role-a\"} 5"),
        "{metrics}"
    );
    let r = app
        .get(&TestApp::school_host("role-a"), "/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "school hosts do not expose metrics"
    );
    app.stop().await;
}

#[tokio::test]
async fn delivery_settings_are_checked_sealed_and_kept_per_school() {
    let key = "5a1f9c3e7b2d8a4c6e0f1b3d5a7c9e2f4b6d8a0c1e3f5b7d9a2c4e6f8b0d1a3c".to_owned();
    let app = app_with(|c| c.notify_secret_key = Some(key)).await;
    let a = app.onboard("set-a", "甲校").await.tenant;
    let b = app.onboard("set-b", "乙校").await.tenant;
    person(
        &app.services,
        "admin.a",
        "甲管理员",
        PW,
        &[(&a, &["school_admin"])],
    )
    .await;
    let host_a = TestApp::school_host("set-a");
    let host_b = TestApp::school_host("set-b");
    let mut va = Visitor::new(&app);
    va.sign_in(&host_a, "admin.a", PW).await;
    let csrf = va.csrf(&host_a, "/admin/notify").await;
    let put = |body: serde_json::Value| body;
    let r = va
        .json(Method::PUT, &host_a, "/api/v1/notify/settings", &put(serde_json::json!({
            "sms_enabled": true, "quiet_start": "22:00", "quiet_end": "06:30",
            "webhook_url": "https://sms.example.cn/send", "webhook_secret": "school-own-secret-123456"
        })), &[("x-csrf-token", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let got: serde_json::Value = r.json().await.unwrap();
    assert_eq!(got["settings"]["sms_enabled"], true);
    assert_eq!(got["settings"]["has_webhook_secret"], true);
    assert!(
        !got.to_string().contains("school-own-secret"),
        "the secret is never read back"
    );

    let mut tx = app.services.db.school(&a).await.unwrap();
    let sealed: Vec<u8> = sqlx::query_scalar("select webhook_secret from notify_settings")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        !String::from_utf8_lossy(&sealed).contains("school-own-secret"),
        "stored sealed"
    );

    for (body, what) in [
        (
            serde_json::json!({"quiet_start": "25:00", "quiet_end": "07:00"}),
            "免打扰开始时间",
        ),
        (
            serde_json::json!({"webhook_url": "ftp://sms.example.cn"}),
            "http(s)",
        ),
        (
            serde_json::json!({"webhook_url": "https://x.example.cn", "webhook_secret": "short"}),
            "16",
        ),
    ] {
        let r = va
            .json(
                Method::PUT,
                &host_a,
                "/api/v1/notify/settings",
                &body,
                &[("x-csrf-token", &csrf)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let msg = r.json::<serde_json::Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(msg.contains(what), "{msg}");
    }
    let r = va
        .json(
            Method::PUT,
            &host_a,
            "/api/v1/notify/settings",
            &serde_json::json!({"sms_enabled": false}),
            &[("x-csrf-token", "forged")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Nothing of the refused changes was written, and school B is untouched.
    let mut tx = app.services.db.school(&a).await.unwrap();
    assert!(admin::settings(&mut tx).await.unwrap().sms_enabled);
    tx.commit().await.unwrap();
    let mut tx = app.services.db.school(&b).await.unwrap();
    let sb = admin::settings(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    assert!(!sb.sms_enabled && sb.webhook_url.is_none());
    // A's session means nothing on B's host.
    let r = va.get(&host_b, "/api/v1/notify/settings").await;
    assert_ne!(r.status(), StatusCode::OK);

    // The page shows the same, in Chinese.
    let page = va.get(&host_a, "/admin/notify").await.text().await.unwrap();
    assert!(
        page.contains("消息推送设置")
            && page.contains("22:00")
            && page.contains("已保存，留空不修改")
    );
    app.stop().await;
}

#[tokio::test]
async fn people_choose_their_channels_on_their_own_page() {
    let app = app_with(|_| {}).await;
    let a = school(&app, "pref-a", 1).await;
    let b = school(&app, "pref-b", 1).await;
    let mut tx = app.services.db.school(&a).await.unwrap();
    let g: i64 = sqlx::query_scalar("select id from guardians")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let account = person(&app.services, "parent.a", "家长", PW, &[(&a, &["parent"])]).await;
    sqlx::query("update memberships set guardian_id = $1 where account_id = $2")
        .bind(g)
        .bind(account)
        .execute(&app.services.pool)
        .await
        .unwrap();
    let host_a = TestApp::school_host("pref-a");
    let mut v = Visitor::new(&app);
    v.sign_in(&host_a, "parent.a", PW).await;
    let page = v
        .get(&host_a, "/settings/notifications")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("消息提醒方式"));
    let csrf = v.csrf(&host_a, "/settings/notifications").await;
    let r = v
        .post(
            &host_a,
            "/settings/notifications",
            &[
                ("csrf", csrf.as_str()),
                ("safety", "sms"),
                ("notices", "wechat"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let prefs: serde_json::Value = v
        .get(&host_a, "/api/v1/notify/preferences")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(prefs["safety"], serde_json::json!(["sms"]));
    assert_eq!(prefs["notices"], serde_json::json!(["wechat"]));
    assert_eq!(prefs["messages"], serde_json::json!([]));
    let r = v
        .json(
            Method::PUT,
            &host_a,
            "/api/v1/notify/preferences",
            &serde_json::json!({"safety": ["pigeon"]}),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // B's guardian with the same id has no choices of A's parent.
    let mut tx = app.services.db.school(&b).await.unwrap();
    let gb: i64 = sqlx::query_scalar("select id from guardians")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let prefs_b = admin::preferences(&mut tx, Recipient::Guardian(gb))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(prefs_b[0].1, Category::Safety.default_channels().to_vec());
    app.stop().await;
}

/// The real `campus serve --roles notify` process, killed with SIGKILL while its batch is
/// at the provider, and a second process started after it: every recipient ends with one
/// delivery row, sent, and the provider saw one idempotency key per recipient.
#[tokio::test]
async fn a_notify_process_killed_with_sigkill_mid_batch_leaves_one_delivery_per_recipient() {
    use crate::helpers::{BASE, S3_KEY, S3_SECRET};
    let provider = Provider::default();
    let hook = provider.start().await;
    let app = app_with(|_| {}).await;
    let a = school(&app, "sigkill", 60).await;
    enable(&app, &a, false, true, AWAKE).await;
    send(&app, &a, Audience::AllGuardians, Category::Safety, "alert").await;
    provider.delay_ms.store(2_000, Ordering::SeqCst);

    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let worker = |port: u16| {
        let cfg = &app.services.cfg;
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_campus"));
        cmd.args(["serve", "--roles", "notify"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &app.db.url)
            .env("CAMPUS_ROLE_PREFIX", &app.db.role_prefix)
            .env("CAMPUS_BASE_DOMAIN", BASE)
            .env("CAMPUS_BIND", format!("127.0.0.1:{port}"))
            .env("CAMPUS_S3_ENDPOINT", cfg.s3_endpoint.as_deref().unwrap())
            .env("CAMPUS_S3_ACCESS_KEY", S3_KEY)
            .env("CAMPUS_S3_SECRET_KEY", S3_SECRET)
            .env("CAMPUS_NOTIFY_WEBHOOK_URL", &hook)
            .env("CAMPUS_NOTIFY_WEBHOOK_SECRET", HOOK_SECRET)
            .env("CAMPUS_NOTIFY_LEASE_SECS", "1")
            .env("CAMPUS_NOTIFY_BATCH", "50")
            .env("CAMPUS_NOTIFY_WORKERS", "2")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true);
        cmd.spawn().unwrap()
    };
    let mut first = worker(free_port());
    let mut in_flight = 0;
    for _ in 0..300 {
        in_flight = provider.calls.lock().unwrap().len();
        if in_flight >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(in_flight >= 10, "the batch reached the provider");
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    assert!(
        statuses(&app, &a).await.get("sent").copied().unwrap_or(0) < 60,
        "killed before the batch was recorded"
    );

    provider.delay_ms.store(0, Ordering::SeqCst);
    let port = free_port();
    let mut second = worker(port);
    let mut sent = 0;
    for _ in 0..500 {
        sent = statuses(&app, &a).await.get("sent").copied().unwrap_or(0);
        if sent == 60 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A worker without the web role still answers its probes and shows its own counters
    // (the web instances' /metrics cannot count deliveries made here), and nothing else.
    let worker_get = |path: &'static str| {
        let http = app.http.clone();
        async move {
            http.get(format!("http://127.0.0.1:{port}{path}"))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(worker_get("/healthz").await.status(), StatusCode::OK);
    let metrics = worker_get("/metrics").await.text().await.unwrap();
    let sent_here = metrics
        .lines()
        .find(|l| {
            l.starts_with("campus_notify_sent_total")
                && l.contains("school=\"sigkill\"")
                && l.contains("channel=\"sms\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok());
    assert!(
        sent_here.is_some_and(|n| n >= 1.0),
        "the second worker counts what it sent: {metrics}"
    );
    assert_eq!(worker_get("/").await.status(), StatusCode::NOT_FOUND);
    second.start_kill().unwrap();
    second.wait().await.unwrap();
    assert_eq!(sent, 60);

    let calls = provider.calls.lock().unwrap().clone();
    let mut keys_per_phone: HashMap<String, HashSet<String>> = HashMap::new();
    for (key, json) in &calls {
        keys_per_phone
            .entry(json["to"].as_str().unwrap().to_owned())
            .or_default()
            .insert(key.clone());
    }
    assert_eq!(keys_per_phone.len(), 60);
    assert!(
        keys_per_phone.values().all(|k| k.len() == 1),
        "a resend after the crash carries the key the provider deduplicates on"
    );
    let mut tx = app.services.db.school(&a).await.unwrap();
    let per_recipient: Vec<i64> = sqlx::query_scalar(
        "select count(*) from notify_deliveries group by recipient_kind, recipient_id, channel",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(per_recipient.len(), 60);
    assert!(per_recipient.iter().all(|n| *n == 1));
    app.stop().await;
}

/// The county's view of the queues: the schools with work waiting, their lanes and counts
/// per channel (no names), and nothing of schools with nothing queued.
#[tokio::test]
async fn the_county_sees_which_schools_have_notifications_queued() {
    let sink = SmtpSink::start(0).await.unwrap();
    let url = sink.url();
    let app = app_with(|c| c.smtp_url = Some(url)).await;
    let a = school(&app, "queued-a", 12).await;
    let _b = school(&app, "idle-b", 3).await;
    enable(&app, &a, true, false, AWAKE).await;
    send(&app, &a, Audience::AllGuardians, Category::Notices, "n1").await;
    send(&app, &a, Audience::AllGuardians, Category::Safety, "s1").await;

    let get = || async {
        let r = app
            .admin(Method::GET, "/admin/v1/notify/queues")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        r.json::<serde_json::Value>().await.unwrap()
    };
    let q = get().await;
    let schools = q["schools"].as_array().unwrap();
    assert_eq!(schools.len(), 1, "{q}");
    assert_eq!(schools[0]["slug"], "queued-a");
    let lanes: Vec<i64> = schools[0]["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lane"].as_i64().unwrap())
        .collect();
    assert_eq!(lanes, [0, 3], "safety first: {q}");
    assert_eq!(schools[0]["jobs_waiting"], 2);
    assert!(!q.to_string().contains("@queued-a"), "no addresses: {q}");

    app.services.notifier.drain().await.unwrap();
    assert_eq!(sink.mail().len(), 24);
    assert_eq!(get().await["schools"].as_array().map(Vec::len), Some(0));

    let r = app
        .http
        .get(app.url("/admin/v1/notify/queues"))
        .header(
            reqwest::header::HOST,
            format!("admin.{}", crate::helpers::BASE),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
    app.stop().await;
}

/// A guardian who reads English chooses it on their own page: the platform's own messages
/// (a gate arrival) reach them by mail in English and in their inbox when the page is in
/// English, while another guardian of the same school, and the inbox page in Chinese, get
/// the Chinese; a teacher's notice goes to both as written. Nonsense languages are refused.
#[tokio::test]
async fn guardians_get_the_platforms_messages_in_the_language_they_choose() {
    let sink = SmtpSink::start(0).await.unwrap();
    let url = sink.url();
    let app = app_with(|c| c.smtp_url = Some(url)).await;
    let a = school(&app, "lang-a", 2).await;
    enable(&app, &a, true, false, AWAKE).await;
    let mut tx = app.services.db.school(&a).await.unwrap();
    let guardians: Vec<i64> = sqlx::query_scalar("select id from guardians order by name")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    for g in &guardians {
        admin::save_preferences(
            &mut tx,
            Recipient::Guardian(*g),
            &[(Category::Safety, vec![Channel::Email])],
        )
        .await
        .unwrap();
    }
    let secret = "0123456789abcdef0123456789abcdef";
    sqlx::query("insert into gate_devices (name, key_id, secret) values ('东门', 'lang-gate', $1)")
        .bind(secret)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // g0's parent picks English on the page.
    let account = person(
        &app.services,
        "parent.en",
        "Parent",
        PW,
        &[(&a, &["parent"])],
    )
    .await;
    sqlx::query("update memberships set guardian_id = $1 where account_id = $2")
        .bind(guardians[0])
        .bind(account)
        .execute(&app.services.pool)
        .await
        .unwrap();
    let host = TestApp::school_host("lang-a");
    let mut v = Visitor::new(&app);
    v.sign_in(&host, "parent.en", PW).await;
    let csrf = v.csrf(&host, "/settings/notifications").await;
    let r = v
        .post(
            &host,
            "/settings/notifications",
            &[
                ("csrf", csrf.as_str()),
                ("safety", "email"),
                ("language", "en"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("value=\"en\" checked"));
    let r = v
        .json(
            Method::PUT,
            &host,
            "/api/v1/notify/preferences",
            &serde_json::json!({"language": "fr"}),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let prefs: serde_json::Value = v
        .get(&host, "/api/v1/notify/preferences")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(prefs["language"], "en", "a refused change keeps the choice");

    // Both pupils come through the gate at 07:42.
    let day = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
    let body = serde_json::json!({"events": [
        {"id": "e0", "student_no": "lang-a-0", "direction": "in", "at": format!("{day}T07:42:00+08:00")},
        {"id": "e1", "student_no": "lang-a-1", "direction": "in", "at": format!("{day}T07:42:00+08:00")},
    ]})
    .to_string();
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = campus_school::gate::signature(secret, &ts, body.as_bytes());
    let r = app
        .http
        .post(app.url("/api/v1/gate/events"))
        .header(reqwest::header::HOST, &host)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Gate-Key", "lang-gate")
        .header("X-Gate-Timestamp", ts)
        .header("X-Gate-Signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.services.notifier.drain().await.unwrap();
    let mail = sink.mail();
    assert_eq!(mail.len(), 2);
    let to = |who: &str| {
        mail.iter()
            .find(|m| m.to.contains(&format!("{who}@lang-a.example.cn")))
            .unwrap_or_else(|| panic!("no mail to {who}"))
            .text()
    };
    assert!(
        to("g0").contains("arrived at school at 07:42"),
        "{}",
        to("g0")
    );
    assert!(to("g1").contains("07:42 到校"), "{}", to("g1"));

    // The inbox follows the page's language.
    let zh = v.get(&host, "/inbox").await.text().await.unwrap();
    assert!(zh.contains("到校 07:42"), "{zh}");
    v.set_cookie(&host, "campus_lang", "en");
    let en = v.get(&host, "/inbox").await.text().await.unwrap();
    assert!(
        en.contains("Arrived at school 07:42") && !en.contains("到校 07:42"),
        "{en}"
    );

    // A message written in Chinese only reaches the English reader as written.
    send(
        &app,
        &a,
        Audience::AllGuardians,
        Category::Safety,
        "zh-only",
    )
    .await;
    app.services.notifier.drain().await.unwrap();
    let mail = sink.mail();
    assert_eq!(mail.len(), 4);
    assert!(mail[2..].iter().all(|m| m.text().contains("周五下午三点")));
    app.stop().await;
}

/// A worker expands a turn's jobs in one statement through `notify_audience`, whatever
/// their audiences: every kind reaches exactly whom the inbox reached, a hundred and more
/// one-pupil jobs (a morning's arrivals) are all delivered, and a job whose stored audience
/// is unreadable expands to no one without stopping the others.
#[tokio::test]
async fn a_turn_expands_every_kind_of_audience_and_skips_unreadable_ones() {
    let sink = SmtpSink::start(0).await.unwrap();
    let url = sink.url();
    let app = app_with(|c| c.smtp_url = Some(url)).await;
    let a = school(&app, "aud", 6).await;
    enable(&app, &a, true, false, AWAKE).await;
    let (class, staff, pupils): (i64, Vec<i64>, Vec<i64>) = {
        let mut tx = app.services.db.school(&a).await.unwrap();
        let staff: Vec<i64> = sqlx::query_scalar(
            "insert into staff (staff_no, name, email, active)
             values ('t1', '班主任', 'head@aud.example.cn', true), ('t2', '任课', 't2@aud.example.cn', true),
                    ('t3', '离职', 'gone@aud.example.cn', false)
             returning id",
        )
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        let class: i64 = sqlx::query_scalar("update classes set head_teacher_id = $1 returning id")
            .bind(staff[0])
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let pupils = sqlx::query_scalar("select id from students order by id")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        (class, staff, pupils)
    };
    let grade: i64 = {
        let mut tx = app.services.db.school(&a).await.unwrap();
        let g = sqlx::query_scalar("select grade_id from classes where id = $1")
            .bind(class)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        g
    };
    let audiences = [
        (
            "people",
            Audience::People(vec![Recipient::Staff(staff[1])]),
            1,
        ),
        (
            "students",
            Audience::GuardiansOfStudents(pupils[..2].to_vec()),
            2,
        ),
        ("classes", Audience::GuardiansOfClasses(vec![class]), 6),
        ("grades", Audience::GuardiansOfGrades(vec![grade]), 6),
        ("all", Audience::AllGuardians, 6),
        ("heads", Audience::HeadTeachersOfClasses(vec![class]), 1),
        ("staff", Audience::AllStaff, 2),
        (
            "roles",
            Audience::RoleHolders {
                staff: vec![staff[1], staff[2]],
                guardians: vec![],
            },
            1,
        ),
    ];
    for (key, audience, expected) in &audiences {
        let inboxed = send(&app, &a, audience.clone(), Category::Notices, key).await;
        assert_eq!(inboxed, *expected as u64, "{key}: inbox rows");
    }
    // A morning's worth of one-pupil jobs, more than one statement takes.
    for i in 0..130 {
        send(
            &app,
            &a,
            Audience::GuardiansOfStudents(vec![pupils[i % pupils.len()]]),
            Category::Safety,
            &format!("arrival-{i}"),
        )
        .await;
    }
    // Stored audiences this build cannot read.
    {
        let mut tx = app.services.db.school(&a).await.unwrap();
        sqlx::query(
            "insert into notify_jobs (idempotency_key, category, lane, audience, title, body, source)
             select 'k:bad-' || n, 'notices', 3, a::jsonb, '坏', '坏', 'test:bad'
               from unnest(array['\"junk\"', '{\"to\": \"people\", \"ids\": \"x\"}',
                                 '{\"to\": \"guardians_of_students\", \"ids\": [\"a\", {\"x\": 1}, [2]]}',
                                 '{\"to\": \"people\", \"ids\": [{\"kind\": \"robot\", \"id\": 1}, {\"kind\": \"staff\", \"id\": \"x\"}]}',
                                 '{\"to\": \"somebody_new\"}', '[]']) with ordinality as b(a, n)",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    app.services.notifier.drain().await.unwrap();

    let jobs: Vec<(String, Option<i32>, bool)> = {
        let mut tx = app.services.db.school(&a).await.unwrap();
        let v = sqlx::query_as(
            "select idempotency_key, recipients, expanded_at is not null from notify_jobs order by id",
        )
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        v
    };
    assert_eq!(jobs.len(), audiences.len() + 130 + 6);
    assert!(
        jobs.iter().all(|(_, _, expanded)| *expanded),
        "every job expanded"
    );
    let recipients: HashMap<&str, i32> = jobs
        .iter()
        .map(|(k, n, _)| (k.as_str(), n.unwrap_or(-1)))
        .collect();
    for (key, _, expected) in &audiences {
        // Everyone has an address, so one email each.
        assert_eq!(recipients[format!("k:{key}").as_str()], *expected, "{key}");
    }
    for i in 0..130 {
        assert_eq!(recipients[format!("k:arrival-{i}").as_str()], 1);
    }
    for n in 1..=6 {
        assert_eq!(
            recipients[format!("k:bad-{n}").as_str()],
            0,
            "bad audience {n}"
        );
    }
    let expected_mail: i32 = audiences.iter().map(|(_, _, n)| n).sum::<i32>() + 130;
    assert_eq!(sink.mail().len(), expected_mail as usize);
    assert!(
        !sink
            .mail()
            .iter()
            .any(|m| m.to.iter().any(|t| t.contains("gone@"))),
        "inactive staff get nothing"
    );
    app.stop().await;
}

/// A listener on loopback that counts the connections it is offered and answers nothing.
async fn tap() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (addr, seen)
}

/// Stores a school's own provider straight in its settings, as an old value or a name
/// that resolved elsewhere when it was saved would be.
async fn store_provider(app: &TestApp, t: &Tenant, key: &str, url: &str) {
    let sealed = campus_notify::secret::SealingKey::from_hex(key)
        .unwrap()
        .seal(HOOK_SECRET);
    let mut tx = app.services.db.school(t).await.unwrap();
    sqlx::query("update notify_settings set webhook_url = $1, webhook_secret = $2 where id = 1")
        .bind(url)
        .bind(sealed)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_schools_provider_address_may_not_point_inside_the_network() {
    let key = "6b".repeat(32);
    let app = app_with(|c| c.notify_secret_key = Some(key)).await;
    let a = app.onboard("ssrf-a", "甲校").await.tenant;
    let b = app.onboard("ssrf-b", "乙校").await.tenant;
    person(
        &app.services,
        "admin.a",
        "甲管理员",
        PW,
        &[(&a, &["school_admin"])],
    )
    .await;
    let host_a = TestApp::school_host("ssrf-a");
    let mut va = Visitor::new(&app);
    va.sign_in(&host_a, "admin.a", PW).await;
    let csrf = va.csrf(&host_a, "/admin/notify").await;
    let (listening, _) = tap().await;
    let port = listening.port();
    for url in [
        format!("http://127.0.0.1:{port}/send"),
        // A name that resolves to loopback, like any DNS name could.
        format!("http://localhost:{port}/send"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::1]/send".to_owned(),
        "http://[::ffff:127.0.0.1]/send".to_owned(),
        "http://2130706433/send".to_owned(),
        "https://10.0.0.8/send".to_owned(),
        "http://192.168.1.20/send".to_owned(),
        "http://100.64.0.1/send".to_owned(),
    ] {
        let r = va
            .json(
                Method::PUT,
                &host_a,
                "/api/v1/notify/settings",
                &serde_json::json!({"sms_enabled": true, "webhook_url": url,
                                    "webhook_secret": "school-own-secret-123456"}),
                &[("x-csrf-token", &csrf)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains("内网"),
            "{url}: {body}"
        );
    }
    // The page's form says the same, in Chinese first.
    let hook = format!("http://localhost:{port}/send");
    let r = va
        .post(
            &host_a,
            "/admin/notify",
            &[
                ("csrf", csrf.as_str()),
                ("quiet_start", "21:00"),
                ("quiet_end", "07:00"),
                ("webhook_url", hook.as_str()),
                ("webhook_secret", "school-own-secret-123456"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("内网") && page.contains("private network"),
        "{page}"
    );
    // Nothing was stored.
    let mut tx = app.services.db.school(&a).await.unwrap();
    let s = admin::settings(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    assert!(s.webhook_url.is_none() && !s.sms_enabled, "{s:?}");

    // A public address is kept; school B is untouched and A's session means nothing there.
    let r = va
        .json(
            Method::PUT,
            &host_a,
            "/api/v1/notify/settings",
            &serde_json::json!({"webhook_url": "https://1.1.1.1/send",
                                "webhook_secret": "school-own-secret-123456"}),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut tx = app.services.db.school(&b).await.unwrap();
    assert!(admin::settings(&mut tx)
        .await
        .unwrap()
        .webhook_url
        .is_none());
    tx.commit().await.unwrap();
    let r = va
        .json(
            Method::PUT,
            &TestApp::school_host("ssrf-b"),
            "/api/v1/notify/settings",
            &serde_json::json!({"webhook_url": "https://1.1.1.1/send"}),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_ne!(r.status(), StatusCode::OK);
    app.stop().await;
}

/// A provider answering 500 with text of its own, and a redirect.
async fn talkative_provider() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/fails",
            post(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ERROR: password authentication failed for user \"sms_admin\"",
                )
            }),
        )
        .route(
            "/moved",
            post(move || async move {
                (
                    StatusCode::FOUND,
                    [("location", format!("http://{addr}/fails"))],
                    "",
                )
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn a_stored_internal_provider_is_refused_at_send_time_while_the_countys_is_used() {
    let key = "7c".repeat(32);
    let county = Provider::default();
    let county_url = county.start().await;
    let (listening, connections) = tap().await;
    let port = listening.port();
    let k = key.clone();
    let app = app_with(|c| {
        c.notify_secret_key = Some(k);
        c.notify_webhook_url = Some(county_url);
        c.notify_webhook_secret = Some(HOOK_SECRET.into());
    })
    .await;
    let mut schools = Vec::new();
    for (slug, url) in [
        ("send-lo", format!("http://127.0.0.1:{port}/send")),
        ("send-name", format!("http://localhost:{port}/send")),
        (
            "send-meta",
            "http://169.254.169.254/latest/meta-data/".to_owned(),
        ),
    ] {
        let t = school(&app, slug, 2).await;
        enable(&app, &t, false, true, AWAKE).await;
        store_provider(&app, &t, &key, &url).await;
        send(&app, &t, Audience::AllGuardians, Category::Safety, "gate-1").await;
        schools.push(t);
    }
    // A school without its own provider uses the county's, which is on loopback too.
    let plain = school(&app, "send-county", 2).await;
    enable(&app, &plain, false, true, AWAKE).await;
    send(
        &app,
        &plain,
        Audience::AllGuardians,
        Category::Safety,
        "gate-1",
    )
    .await;
    app.services.notifier.drain().await.unwrap();

    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "nothing connected to the internal address"
    );
    for t in &schools {
        let s = statuses(&app, t).await;
        assert_eq!(s.get("dead"), Some(&2), "{}: {s:?}", t.slug);
        for (_, error) in dead(&app, t).await {
            let error = error.unwrap();
            assert!(error.contains("refused"), "{}: {error}", t.slug);
        }
    }
    assert_eq!(statuses(&app, &plain).await.get("sent"), Some(&2));
    assert_eq!(
        county.calls.lock().unwrap().len(),
        2,
        "only the county school's"
    );
    app.stop().await;

    // An operator's allow-listed pair is reached, but a redirect is not followed and only
    // the status line of a failure is kept.
    let provider = talkative_provider().await;
    let k = key.clone();
    let app = app_with(|c| {
        c.notify_secret_key = Some(k);
        c.notify_webhook_allow = vec![provider.to_string()];
        c.notify_max_attempts = 1;
    })
    .await;
    let fails = school(&app, "send-fails", 1).await;
    let moved = school(&app, "send-moved", 1).await;
    for (t, path) in [(&fails, "fails"), (&moved, "moved")] {
        enable(&app, t, false, true, AWAKE).await;
        store_provider(&app, t, &key, &format!("http://{provider}/{path}")).await;
        send(&app, t, Audience::AllGuardians, Category::Safety, "gate-1").await;
    }
    app.services.notifier.drain().await.unwrap();
    assert_eq!(
        dead(&app, &fails).await[0].1.as_deref(),
        Some("provider answered HTTP 500")
    );
    assert_eq!(
        dead(&app, &moved).await[0].1.as_deref(),
        Some("provider answered HTTP 302"),
        "the redirect was not followed"
    );
    // The school admin's page shows the status line, never the provider's text.
    person(
        &app.services,
        "admin.f",
        "管理员",
        PW,
        &[(&fails, &["school_admin"])],
    )
    .await;
    let host = TestApp::school_host("send-fails");
    let mut v = Visitor::new(&app);
    v.sign_in(&host, "admin.f", PW).await;
    let page = v.get(&host, "/admin/notify").await.text().await.unwrap();
    assert!(
        page.contains("HTTP 500") && !page.contains("sms_admin"),
        "{page}"
    );
    app.stop().await;
}
