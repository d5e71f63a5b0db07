//! Gate entry and exit: signed batches from gate devices are stored once and tell the
//! pupils' guardians at once; unsigned, badly signed, stale and revoked requests are refused
//! with nothing written; unknown pupils are reported per event; the absence check alerts
//! guardians and head teachers of pupils who neither came in nor are on leave, once a day;
//! devices belong to one school.

use campus_tenant::Tenant;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::attendance::{school, signed_in, School};
use crate::helpers::{TestApp, Visitor};

/// Adds a device through the admin page; returns (key id, secret).
async fn add_device(v: &mut Visitor<'_>, s: &School, name: &str) -> (String, String) {
    let csrf = v.csrf(&s.host(), "/admin/gate/devices").await;
    let resp = v
        .post(
            &s.host(),
            "/admin/gate/devices",
            &[("csrf", &csrf), ("name", name)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.unwrap();
    let grab = |id: &str| {
        let start = page.find(&format!("<code id=\"{id}\">")).expect(id) + id.len() + 12;
        page[start..start + page[start..].find('<').unwrap()].to_owned()
    };
    (grab("key"), grab("secret"))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Posts `body` to the ingest endpoint with the given key, timestamp and signature.
async fn post_raw(
    app: &TestApp,
    host: &str,
    headers: &[(&str, String)],
    body: &str,
) -> reqwest::Response {
    let mut req = app
        .http
        .post(app.url("/api/v1/gate/events"))
        .header(reqwest::header::HOST, host)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.unwrap()
}

async fn post_signed(
    app: &TestApp,
    host: &str,
    key: &str,
    secret: &str,
    ts: i64,
    body: &Value,
) -> reqwest::Response {
    let body = body.to_string();
    let ts = ts.to_string();
    let sig = campus_school::gate::signature(secret, &ts, body.as_bytes());
    post_raw(
        app,
        host,
        &[
            ("X-Gate-Key", key.to_owned()),
            ("X-Gate-Timestamp", ts),
            ("X-Gate-Signature", sig),
        ],
        body.as_str(),
    )
    .await
}

async fn count(app: &TestApp, t: &Tenant, sql: &str) -> i64 {
    let mut tx = app.services.db.school(t).await.unwrap();
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    n
}

async fn inbox_titles(app: &TestApp, t: &Tenant, kind: &str, id: i64) -> Vec<String> {
    let mut tx = app.services.db.school(t).await.unwrap();
    let rows = sqlx::query_scalar(
        "select title from inbox_items where recipient_kind = $1 and recipient_id = $2 and category = 'safety' order by id",
    )
    .bind(kind)
    .bind(id)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    rows
}

fn no(s: &School, class: usize, i: usize) -> String {
    format!("{}{class}{i}", s.p)
}

#[tokio::test]
async fn gate_signed_batches_are_stored_once_and_tell_guardians() {
    let app = TestApp::spawn().await;
    let s = school(&app, "gatea", "ga").await;
    let mut admin = signed_in(&app, &s, "admin").await;
    let (key, secret) = add_device(&mut admin, &s, "东门闸机").await;
    assert_eq!(secret.len(), 64);

    let batch = json!({"events": [
        {"id": "dev-1", "student_no": no(&s, 0, 0), "direction": "in", "at": "2026-03-02T23:52:00Z"},
        {"id": "dev-2", "student_no": no(&s, 1, 0), "direction": "out", "at": "2026-03-02T08:32:00Z"},
        {"id": "dev-3", "student_no": "nobody", "direction": "in", "at": "2026-03-02T23:53:00Z"},
    ]});
    let resp = post_signed(&app, &s.host(), &key, &secret, now(), &batch).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["accepted"], 2);
    assert_eq!(out["duplicates"], 0);
    assert_eq!(
        out["rejected"],
        json!([{"id": "dev-3", "reason": "unknown_student"}])
    );
    assert_eq!(
        inbox_titles(&app, &s.tenant, "guardian", s.guardians[0]).await,
        ["到校 07:52"]
    );
    assert_eq!(
        inbox_titles(&app, &s.tenant, "guardian", s.guardians[1]).await,
        ["离校 16:32"]
    );
    assert_eq!(
        count(&app, &s.tenant, "select count(*) from gate_events").await,
        2
    );

    // The device resends the same batch: nothing new is stored or sent.
    let resp = post_signed(&app, &s.host(), &key, &secret, now(), &batch).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["accepted"], 0);
    assert_eq!(out["duplicates"], 2);
    assert_eq!(
        count(&app, &s.tenant, "select count(*) from gate_events").await,
        2
    );
    assert_eq!(
        count(&app, &s.tenant, "select count(*) from inbox_items").await,
        2
    );

    // The guard sees today's traffic; a teacher without GateScan does not.
    let guard = crate::helpers::person(
        &app.services,
        "ga.guard",
        "门卫",
        crate::attendance::PW,
        &[(&s.tenant, &["guard"])],
    )
    .await;
    assert!(guard > 0);
    let mut g = signed_in(&app, &s, "guard").await;
    let page = g.get(&s.host(), "/gate").await;
    assert_eq!(page.status(), StatusCode::OK);
    let mut t = signed_in(&app, &s, "subject").await;
    assert_eq!(
        t.get(&s.host(), "/gate").await.status(),
        StatusCode::FORBIDDEN
    );
    // And may not add devices either.
    let csrf = t
        .csrf(&s.host(), &format!("/attendance/{}", s.classes[0]))
        .await;
    let resp = t
        .post(
            &s.host(),
            "/admin/gate/devices",
            &[("csrf", &csrf), ("name", "偷偷加的")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        count(&app, &s.tenant, "select count(*) from gate_devices").await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn gate_refuses_unsigned_bad_stale_and_revoked_requests() {
    let app = TestApp::spawn().await;
    let s = school(&app, "gateb", "gb").await;
    let mut admin = signed_in(&app, &s, "admin").await;
    let (key, secret) = add_device(&mut admin, &s, "西门").await;
    let batch = json!({"events": [
        {"id": "e1", "student_no": no(&s, 0, 0), "direction": "in", "at": "2026-03-02T23:52:00Z"},
    ]});
    let body = batch.to_string();
    let ts = now().to_string();
    let good = campus_school::gate::signature(&secret, &ts, body.as_bytes());

    // No headers at all.
    assert_eq!(
        post_raw(&app, &s.host(), &[], &body).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A signature made with another secret.
    let wrong = campus_school::gate::signature(&"0".repeat(64), &ts, body.as_bytes());
    let resp = post_raw(
        &app,
        &s.host(),
        &[
            ("X-Gate-Key", key.clone()),
            ("X-Gate-Timestamp", ts.clone()),
            ("X-Gate-Signature", wrong),
        ],
        &body,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // The right signature over a different body.
    let resp = post_raw(
        &app,
        &s.host(),
        &[
            ("X-Gate-Key", key.clone()),
            ("X-Gate-Timestamp", ts.clone()),
            ("X-Gate-Signature", good.clone()),
        ],
        &body.replace("\"in\"", "\"out\""),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Signed, but ten minutes old (a replay).
    let resp = post_signed(&app, &s.host(), &key, &secret, now() - 600, &batch).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Signed and fresh but malformed: 422.
    let resp = post_signed(
        &app,
        &s.host(),
        &key,
        &secret,
        now(),
        &json!({"events": [{"id": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // More than 500 events in one batch: 422.
    let big: Vec<Value> = (0..501)
        .map(|i| json!({"id": format!("b{i}"), "student_no": no(&s, 0, 0), "direction": "in", "at": "2026-03-02T23:52:00Z"}))
        .collect();
    let resp = post_signed(
        &app,
        &s.host(),
        &key,
        &secret,
        now(),
        &json!({ "events": big }),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A timestamp ten minutes ahead is refused like a stale one.
    let resp = post_signed(&app, &s.host(), &key, &secret, now() + 600, &batch).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        count(&app, &s.tenant, "select count(*) from gate_events").await,
        0
    );
    assert_eq!(
        count(&app, &s.tenant, "select count(*) from inbox_items").await,
        0
    );

    // Revoked: the same good request is refused.
    let id = count(&app, &s.tenant, "select id from gate_devices").await;
    let csrf = admin.csrf(&s.host(), "/admin/gate/devices").await;
    let resp = admin
        .post(
            &s.host(),
            &format!("/admin/gate/devices/{id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = post_signed(&app, &s.host(), &key, &secret, now(), &batch).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        count(&app, &s.tenant, "select count(*) from gate_events").await,
        0
    );
    assert_eq!(
        count(
            &app,
            &s.tenant,
            "select count(*) from audit_log where action in ('gate_device_added', 'gate_device_revoked')"
        )
        .await,
        2
    );
    assert_eq!(
        count(&app, &s.tenant, "select count(*) from inbox_items").await,
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn gate_absence_check_alerts_pupils_without_arrival_or_leave_once_a_day() {
    let app = TestApp::spawn().await;
    let s = school(&app, "gatec", "gc").await;
    let mut admin = signed_in(&app, &s, "admin").await;
    let (key, secret) = add_device(&mut admin, &s, "南门").await;
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    sqlx::query("update attendance_settings set gate_arrival_cutoff = '00:00'")
        .execute(&mut *tx)
        .await
        .unwrap();
    // Arrivals are expected today whatever the weekday.
    sqlx::query("insert into calendar_days (day, kind, name) values ((now() at time zone 'Asia/Shanghai')::date, 'school', '上课')")
        .execute(&mut *tx)
        .await
        .unwrap();
    // Class 1's second pupil is on approved leave covering now.
    sqlx::query(
        "insert into leave_requests (student_id, kind, starts_at, ends_at, reason, status)
         values ($1, 'sick', now() - interval '1 hour', now() + interval '1 day', '发烧', 'approved')",
    )
    .bind(s.class1[1])
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // Class 1's first pupil came in just now.
    let at = chrono::Utc::now().to_rfc3339();
    let resp = post_signed(
        &app,
        &s.host(),
        &key,
        &secret,
        now(),
        &json!({"events": [{"id": "a1", "student_no": no(&s, 0, 0), "direction": "in", "at": at}]}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);

    let csrf = admin.csrf(&s.host(), "/admin/gate/devices").await;
    let page = admin
        .post(&s.host(), "/admin/gate/absence-check", &[("csrf", &csrf)])
        .await
        .text()
        .await
        .unwrap();
    // Class 1's third pupil and both of class 2's.
    assert!(page.contains("<span id=\"alerted\">3</span>"), "{page}");
    let alerted: Vec<i64> = {
        let mut tx = app.services.db.school(&s.tenant).await.unwrap();
        let v =
            sqlx::query_scalar("select student_id from gate_absence_alerts order by student_id")
                .fetch_all(&mut *tx)
                .await
                .unwrap();
        tx.commit().await.unwrap();
        v
    };
    assert_eq!(alerted, vec![s.class1[2], s.class2[0], s.class2[1]]);
    // Class 2's first pupil's guardian and both head teachers hear of it.
    let g2 = inbox_titles(&app, &s.tenant, "guardian", s.guardians[1]).await;
    assert_eq!(g2.len(), 1);
    assert!(g2[0].starts_with("未到校"));
    assert_eq!(
        inbox_titles(&app, &s.tenant, "staff", s.staff[0])
            .await
            .len(),
        1
    );
    // One summary per class, naming every absent pupil of it.
    assert_eq!(
        inbox_titles(&app, &s.tenant, "staff", s.staff[1]).await,
        vec!["三年级（2）班 2 名学生未到校".to_string()]
    );
    let summary: String = {
        let mut tx = app.services.db.school(&s.tenant).await.unwrap();
        let b = sqlx::query_scalar(
            "select body from inbox_items where recipient_kind = 'staff' and recipient_id = $1 and category = 'safety'",
        )
        .bind(s.staff[1])
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        b
    };
    for pupil in [s.class2[0], s.class2[1]] {
        let name: String = {
            let mut tx = app.services.db.school(&s.tenant).await.unwrap();
            let n = sqlx::query_scalar("select name from students where id = $1")
                .bind(pupil)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            n
        };
        assert!(summary.contains(&name), "{summary} names {name}");
    }
    // The pupil who came in only has the arrival notice.
    assert_eq!(
        inbox_titles(&app, &s.tenant, "guardian", s.guardians[0])
            .await
            .len(),
        1
    );

    // Again the same day: nobody is alerted twice.
    let before = count(&app, &s.tenant, "select count(*) from inbox_items").await;
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    let day: chrono::NaiveDate =
        sqlx::query_scalar("select (now() at time zone 'Asia/Shanghai')::date")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(
        campus_school::gate::absence_check(&mut tx, day)
            .await
            .unwrap(),
        0
    );
    tx.commit().await.unwrap();
    assert_eq!(
        count(&app, &s.tenant, "select count(*) from inbox_items").await,
        before
    );

    // A teacher may not run it.
    let mut t = signed_in(&app, &s, "head1").await;
    let csrf = t
        .csrf(&s.host(), &format!("/attendance/{}", s.classes[0]))
        .await;
    assert_eq!(
        t.post(&s.host(), "/admin/gate/absence-check", &[("csrf", &csrf)])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    app.stop().await;
}

#[tokio::test]
async fn gate_devices_belong_to_one_school() {
    let app = TestApp::spawn().await;
    let a = school(&app, "gatex", "gx").await;
    let b = school(&app, "gatey", "gy").await;
    let mut admin_a = signed_in(&app, &a, "admin").await;
    let mut admin_b = signed_in(&app, &b, "admin").await;
    let (key_a, secret_a) = add_device(&mut admin_a, &a, "甲校大门").await;
    add_device(&mut admin_b, &b, "乙校大门").await;

    // A's device key, correctly signed, naming one of B's pupils: unknown on B's host.
    let batch = json!({"events": [
        {"id": "x1", "student_no": no(&b, 0, 0), "direction": "in", "at": "2026-03-02T23:52:00Z"},
    ]});
    let resp = post_signed(&app, &b.host(), &key_a, &secret_a, now(), &batch).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        count(&app, &b.tenant, "select count(*) from gate_events").await,
        0
    );
    assert_eq!(
        count(&app, &b.tenant, "select count(*) from inbox_items").await,
        0
    );

    // A's admin sees only A's devices, and nothing on B's host.
    let page = admin_a
        .get(&a.host(), "/admin/gate/devices")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("甲校大门") && !page.contains("乙校大门"));
    let resp = admin_a.get(&b.host(), "/admin/gate/devices").await;
    assert_ne!(resp.status(), StatusCode::OK);
    assert!(!resp.text().await.unwrap().contains("乙校大门"));
    app.stop().await;
}

async fn check_code(guard: &mut Visitor<'_>, s: &School, csrf: &str, code: &str) -> String {
    guard
        .post(
            &s.host(),
            "/gate/visitor",
            &[("csrf", csrf), ("code", code)],
        )
        .await
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn gate_visitor_passes_are_approved_by_the_host_and_checked_once_by_the_guard() {
    let app = TestApp::spawn().await;
    let s = school(&app, "gated", "gd").await;
    crate::helpers::person(
        &app.services,
        "gd.guard",
        "门卫",
        crate::attendance::PW,
        &[(&s.tenant, &["guard"])],
    )
    .await;
    let today = crate::attendance::day(&app, 0).await;
    let at = format!("{today}T15:00");
    let mut visitor = Visitor::new(&app);
    let form = |host: &'static str| {
        vec![
            ("name", "王五"),
            ("phone", "13800001111"),
            ("host", host),
            ("purpose", "送材料"),
        ]
    };
    // A teacher who does not exist: refused, nothing stored.
    let mut f = form("没有这个人");
    f.push(("at", &at));
    let resp = visitor.post(&s.host(), "/visit", &f).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        count(&app, &s.tenant, "select count(*) from gate_visits").await,
        0
    );

    let mut f = form("数学老师");
    f.push(("at", &at));
    let resp = visitor.post(&s.host(), "/visit", &f).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let status_path = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let page = visitor
        .get(&s.host(), &status_path)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("待教师确认") && !page.contains("id=\"code\""));
    let host_inbox: Vec<String> = {
        let mut tx = app.services.db.school(&s.tenant).await.unwrap();
        let v = sqlx::query_scalar(
            "select title from inbox_items where recipient_kind = 'staff' and recipient_id = $1",
        )
        .bind(s.staff[2])
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        v
    };
    assert_eq!(host_inbox, ["访客预约：王五"]);
    let id = count(&app, &s.tenant, "select id from gate_visits").await;

    // Another teacher cannot decide it.
    let mut other = signed_in(&app, &s, "head1").await;
    let csrf = other
        .csrf(&s.host(), &format!("/attendance/{}", s.classes[0]))
        .await;
    let resp = other
        .post(
            &s.host(),
            &format!("/visits/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(!visitor
        .get(&s.host(), &status_path)
        .await
        .text()
        .await
        .unwrap()
        .contains("id=\"code\""));

    // The host approves; the visitor sees the pass code.
    let mut host = signed_in(&app, &s, "subject").await;
    let list = host.get(&s.host(), "/visits").await.text().await.unwrap();
    assert!(list.contains("王五"));
    let csrf = host.csrf(&s.host(), "/visits").await;
    let resp = host
        .post(
            &s.host(),
            &format!("/visits/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let page = visitor
        .get(&s.host(), &status_path)
        .await
        .text()
        .await
        .unwrap();
    let start = page.find("<strong id=\"code\">").expect("a pass code") + 18;
    let code = page[start..start + 8].to_owned();
    assert!(code.chars().all(|c| c.is_ascii_digit()));

    // The guard checks it: valid once, then used; a made-up code is invalid.
    let mut guard = signed_in(&app, &s, "guard").await;
    let csrf = guard.csrf(&s.host(), "/gate/visitor").await;
    let first = check_code(&mut guard, &s, &csrf, &code).await;
    assert!(first.contains("通行：王五，访 数学老师"), "{first}");
    let again = check_code(&mut guard, &s, &csrf, &code).await;
    assert!(again.contains("无效"));
    let wrong = check_code(&mut guard, &s, &csrf, "00000000").await;
    assert!(wrong.contains("无效") && !wrong.contains("通行：王五"));
    assert_eq!(
        count(
            &app,
            &s.tenant,
            "select count(*) from gate_visits where checked_in_at is not null"
        )
        .await,
        1
    );

    // Parents are not guards.
    let mut parent = signed_in(&app, &s, "parent1").await;
    assert_eq!(
        parent.get(&s.host(), "/gate/visitor").await.status(),
        StatusCode::FORBIDDEN
    );
    app.stop().await;
}
