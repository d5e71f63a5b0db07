//! The education bureau's dashboard: rollups equal to counts worked out by hand from
//! seeded registers, notices, gate events and leave; a rebuild gives exactly what the
//! incremental passes gave; a register taken through the page reaches the rollups on the
//! next pass; the bureau sees aggregates with small pupil counts withheld, school leaders
//! see their own school in full and nobody sees another school's page; exports open in
//! Excel (BOM CSV, XLSX read back with calamine); the JSON API is in the OpenAPI document;
//! headless Chromium draws the charts with the API's numbers.

use std::io::Cursor;

use calamine::Reader;
use campus_county::rollup;
use reqwest::StatusCode;
use serde_json::Value;

use crate::attendance::{day, school, signed_in, take, School, PW};
use crate::helpers::{TestApp, Visitor, BASE};

fn county() -> String {
    format!("county.{BASE}")
}

/// A register to seed: class, days before today, enrolled, marks.
type Register<'a> = (i64, i32, i32, Vec<(i64, &'a str)>);

/// Registers of the two days before today, a notice with receipts, gate events and leave,
/// written straight into the school's tables (as the modules would).
async fn seed(app: &TestApp, s: &School) {
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    let q = |sql: &'static str| sqlx::query(sql);
    q("update students set enrolled_on = metric_local_day(now()) - 40")
        .execute(&mut *tx)
        .await
        .unwrap();
    // Two pupils share an ID number (a data-quality finding).
    q("update students set id_number = '510000201001010011' where id = any($1)")
        .bind(vec![s.class1[0], s.class2[0]])
        .execute(&mut *tx)
        .await
        .unwrap();
    let registers: [Register; 4] = [
        (
            s.classes[0],
            2,
            3,
            vec![(s.class1[1], "late"), (s.class1[2], "absent")],
        ),
        (s.classes[0], 1, 3, vec![(s.class1[2], "absent")]),
        (s.classes[1], 2, 2, vec![(s.class2[1], "leave")]),
        (s.classes[1], 1, 2, vec![(s.class2[1], "absent")]),
    ];
    for (class, ago, enrolled, marks) in registers {
        let id: i64 = sqlx::query_scalar(
            "insert into attendance_registers (class_id, day, period, enrolled, taken_at)
             values ($1, metric_local_day(now()) - $2, 'morning', $3,
                     ((metric_local_day(now()) - $2) + time '08:05') at time zone 'Asia/Shanghai')
             returning id",
        )
        .bind(class)
        .bind(ago)
        .bind(enrolled)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        for (pupil, status) in marks {
            q("insert into attendance_marks (register_id, student_id, status) values ($1, $2, $3)")
                .bind(id)
                .bind(pupil)
                .bind(status)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
    }
    // A notice two days ago at 10:00 to two guardians and two staff: three read it after
    // 30 minutes, two confirmed after an hour.
    let notice: i64 = sqlx::query_scalar(
        "insert into notices (sender_account_id, sender_name, title, body_html, audience, mode, created_at)
         values (1, '校长', '春游通知', '<p>周五春游</p>', '{\"kind\":\"school\"}', 'confirm',
                 ((metric_local_day(now()) - 2) + time '10:00') at time zone 'Asia/Shanghai')
         returning id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let recipients = [
        ("guardian", s.guardians[0], true, true),
        ("guardian", s.guardians[1], true, true),
        ("staff", s.staff[0], true, false),
        ("staff", s.staff[1], false, false),
    ];
    for (kind, id, read, confirmed) in recipients {
        q("insert into notice_recipients (notice_id, recipient_kind, recipient_id, read_at, confirmed_at)
           select $1, $2, $3,
                  case when $4 then n.created_at + interval '30 minutes' end,
                  case when $5 then n.created_at + interval '60 minutes' end
             from notices n where n.id = $1")
        .bind(notice)
        .bind(kind)
        .bind(id)
        .bind(read)
        .bind(confirmed)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    let device: i64 = sqlx::query_scalar(
        "insert into gate_devices (name, key_id, secret) values ('东门', 'k1', 'secret') returning id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    for (n, (pupil, dir, hm)) in [
        (s.class1[0], "in", "07:40"),
        (s.class1[1], "in", "07:45"),
        (s.class1[0], "out", "16:30"),
    ]
    .into_iter()
    .enumerate()
    {
        q("insert into gate_events (device_id, device_event_id, student_id, direction, at)
           values ($1, $2, $3, $4, ((metric_local_day(now()) - 1) + $5::time) at time zone 'Asia/Shanghai')")
        .bind(device)
        .bind(format!("e{n}"))
        .bind(pupil)
        .bind(dir)
        .bind(hm)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    // Sick leave for two days ago, approved (the pupil is then absent yesterday: not back
    // from leave); personal leave asked for yesterday, pending.
    q("insert into leave_requests (student_id, kind, starts_at, ends_at, reason, status, created_at)
       values ($1, 'sick', ((metric_local_day(now()) - 2) + time '08:00') at time zone 'Asia/Shanghai',
                           ((metric_local_day(now()) - 2) + time '17:30') at time zone 'Asia/Shanghai',
               '发烧', 'approved', ((metric_local_day(now()) - 2) + time '07:00') at time zone 'Asia/Shanghai'),
              ($2, 'personal', ((metric_local_day(now()) + 3) + time '08:00') at time zone 'Asia/Shanghai',
                               ((metric_local_day(now()) + 3) + time '17:30') at time zone 'Asia/Shanghai',
               '走亲戚', 'pending', ((metric_local_day(now()) - 1) + time '20:00') at time zone 'Asia/Shanghai')")
    .bind(s.class2[1])
    .bind(s.class1[2])
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// One stored value: (days before today, class id, element, category) → value.
async fn value(
    app: &TestApp,
    s: &School,
    ago: i32,
    class: i64,
    element: &str,
    category: &str,
) -> f64 {
    sqlx::query_scalar(
        "select coalesce(sum(value), 0)::float8 from public.metric_values
          where tenant_id = $1 and day = (now() at time zone 'Asia/Shanghai')::date - $2
            and class_id = $3 and element = $4 and category = $5",
    )
    .bind(s.tenant.id.0)
    .bind(ago)
    .bind(class)
    .bind(element)
    .bind(category)
    .fetch_one(&app.services.pool)
    .await
    .unwrap()
}

async fn snapshot(app: &TestApp, s: &School, element: &str) -> f64 {
    sqlx::query_scalar(
        "select value from public.metric_snapshots where tenant_id = $1 and element = $2",
    )
    .bind(s.tenant.id.0)
    .bind(element)
    .fetch_one(&app.services.pool)
    .await
    .unwrap()
}

type Stored = Vec<(chrono::NaiveDate, i64, i16, String, String, String, f64)>;

async fn everything(app: &TestApp, s: &School) -> Stored {
    sqlx::query_as(
        "select day, class_id, grade_level, class_name, element, category, value from public.metric_values
          where tenant_id = $1 order by day, class_id, element, category",
    )
    .bind(s.tenant.id.0)
    .fetch_all(&app.services.pool)
    .await
    .unwrap()
}

async fn tick(app: &TestApp) -> Vec<rollup::SchoolPass> {
    let passes = rollup::tick(&app.services.db).await.unwrap();
    for p in &passes {
        assert!(p.result.is_ok(), "{}: {:?}", p.school.slug, p.result);
    }
    passes
}

#[tokio::test]
async fn rollups_match_counts_worked_out_by_hand_and_a_rebuild_gives_the_same() {
    let app = TestApp::spawn().await;
    let s = school(&app, "cty-a", "ca").await;
    seed(&app, &s).await;
    tick(&app).await;
    let [c1, c2] = s.classes;

    // Registers: enrolled and present pupil-sessions, and each kind of mark.
    assert_eq!(value(&app, &s, 2, c1, "enrolled", "").await, 3.0);
    assert_eq!(value(&app, &s, 2, c1, "present", "").await, 2.0);
    assert_eq!(value(&app, &s, 2, c1, "late", "").await, 1.0);
    assert_eq!(value(&app, &s, 2, c1, "absent", "").await, 1.0);
    assert_eq!(value(&app, &s, 2, c2, "present", "").await, 1.0);
    assert_eq!(value(&app, &s, 2, c2, "leave", "").await, 1.0);
    assert_eq!(value(&app, &s, 1, c2, "absent", "").await, 1.0);
    assert_eq!(value(&app, &s, 2, c1, "pupils", "").await, 3.0);
    // Not back after leave: absent yesterday after approved leave the day before.
    assert_eq!(value(&app, &s, 1, c2, "leave_not_returned", "").await, 1.0);
    assert_eq!(value(&app, &s, 2, c2, "leave_not_returned", "").await, 0.0);
    // Chronic absence over the window ending yesterday: 类1's third pupil missed 2 of 2
    // registers, 类2's second pupil 2 of 2; everybody else none.
    assert_eq!(value(&app, &s, 1, c1, "chronic_90", "").await, 1.0);
    assert_eq!(value(&app, &s, 1, c1, "chronic_80", "").await, 1.0);
    assert_eq!(value(&app, &s, 1, c1, "chronic_base", "").await, 3.0);
    assert_eq!(value(&app, &s, 1, c2, "chronic_90", "").await, 1.0);
    // The window goes on to today although nothing happened today.
    assert_eq!(value(&app, &s, 0, c1, "chronic_90", "").await, 1.0);
    // Notices, counted on the day they were sent.
    assert_eq!(value(&app, &s, 2, 0, "notices_sent", "confirm").await, 1.0);
    assert_eq!(value(&app, &s, 2, 0, "notice_recipients", "").await, 4.0);
    assert_eq!(value(&app, &s, 2, 0, "notices_read", "").await, 3.0);
    assert_eq!(value(&app, &s, 2, 0, "read_minutes", "").await, 90.0);
    assert_eq!(value(&app, &s, 2, 0, "receipts_required", "").await, 4.0);
    assert_eq!(value(&app, &s, 2, 0, "receipts_signed", "").await, 2.0);
    assert_eq!(value(&app, &s, 2, 0, "sign_minutes", "").await, 120.0);
    // Gate and leave.
    assert_eq!(value(&app, &s, 1, c1, "gate_in", "").await, 2.0);
    assert_eq!(value(&app, &s, 1, c1, "gate_out", "").await, 1.0);
    assert_eq!(
        value(&app, &s, 2, c2, "leave_requests", "sick:approved").await,
        1.0
    );
    assert_eq!(
        value(&app, &s, 1, c1, "leave_requests", "personal:pending").await,
        1.0
    );
    // Today's checks.
    assert_eq!(snapshot(&app, &s, "classes_without_head").await, 0.0);
    assert_eq!(snapshot(&app, &s, "pupils_without_guardian").await, 3.0);
    assert_eq!(snapshot(&app, &s, "duplicate_id_numbers").await, 2.0);
    assert_eq!(snapshot(&app, &s, "pupils_now").await, 5.0);
    assert_eq!(
        snapshot(&app, &s, "pupils_bound").await,
        2.0,
        "both parents have accounts"
    );
    // No pupil's id or name is stored in the shared tables.
    let shared: String = sqlx::query_scalar(
        "select coalesce(string_agg(class_name || category || element, ' '), '') from public.metric_values where tenant_id = $1",
    )
    .bind(s.tenant.id.0)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert!(!shared.contains("学生"), "{shared}");

    // Nothing marked: a second pass recomputes nothing and changes nothing.
    let before = everything(&app, &s).await;
    assert!(before.len() > 40, "{}", before.len());
    let again = tick(&app).await;
    assert!(again.iter().all(|p| p.result.as_ref().unwrap().days == 0));
    assert_eq!(everything(&app, &s).await, before);

    // A rebuild recomputes every day from source — even a tampered value comes back.
    sqlx::query(
        "update public.metric_values set value = 999 where tenant_id = $1 and element = 'absent'",
    )
    .bind(s.tenant.id.0)
    .execute(&app.services.pool)
    .await
    .unwrap();
    let days = rollup::rebuild(&app.services.db, &s.tenant).await.unwrap();
    assert!(days >= 3, "{days}");
    assert_eq!(everything(&app, &s).await, before);
    app.stop().await;
}

#[tokio::test]
async fn a_register_taken_on_the_page_reaches_the_rollups_on_the_next_pass() {
    let app = TestApp::spawn().await;
    let s = school(&app, "cty-fresh", "cf").await;
    tick(&app).await;
    let c1 = s.classes[0];
    assert_eq!(value(&app, &s, 0, c1, "enrolled", "").await, 0.0);

    let mut head = signed_in(&app, &s, "head1").await;
    let saved = take(&mut head, &s, c1, &[(s.class1[2], "absent")], "").await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    // The change marked today in the school's own schema, in the register's transaction.
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    let marked: bool = sqlx::query_scalar(
        "select exists(select 1 from metric_dirty where day = metric_local_day(now()))",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(marked);

    let passes = tick(&app).await;
    let pass = passes
        .iter()
        .find(|p| p.school.id == s.tenant.id)
        .unwrap()
        .result
        .as_ref()
        .unwrap();
    assert_eq!(pass.days, 1);
    let lag = pass.lag_ms.expect("a lag is reported");
    assert!(lag < 60_000, "{lag} ms behind");
    assert_eq!(value(&app, &s, 0, c1, "enrolled", "").await, 3.0);
    assert_eq!(value(&app, &s, 0, c1, "absent", "").await, 1.0);
    assert_eq!(value(&app, &s, 0, c1, "registers_on_time", "").await, {
        // On time only if taken before the 08:30 deadline, school time.
        let late: bool =
            sqlx::query_scalar("select (now() at time zone 'Asia/Shanghai')::time > time '08:30'")
                .fetch_one(&app.services.pool)
                .await
                .unwrap();
        let school_day: bool = sqlx::query_scalar(
            "select extract(isodow from (now() at time zone 'Asia/Shanghai')) < 6",
        )
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
        if late || !school_day {
            0.0
        } else {
            1.0
        }
    });
    // The school's leaders see it on their dashboard straight away.
    let mut admin = signed_in(&app, &s, "admin").await;
    let json: Value = admin
        .get(&s.host(), "/api/v1/dashboard")
        .await
        .json()
        .await
        .unwrap();
    let absent = json["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "absent")
        .unwrap();
    assert_eq!(absent["school"]["value"], 1.0);
    app.stop().await;
}

async fn bureau(app: &TestApp) -> Visitor<'_> {
    let hash = app.services.identity.hasher.hash(PW).await.unwrap();
    campus_identity::account::ensure(
        &app.services.pool,
        &campus_identity::account::NewAccount {
            username: Some("bureau"),
            phone: None,
            display_name: "教育局",
            password_hash: &hash,
            county_role: Some("bureau"),
        },
    )
    .await
    .unwrap();
    let mut v = Visitor::new(app);
    assert_eq!(
        v.sign_in(&county(), "bureau", PW).await.status(),
        StatusCode::SEE_OTHER
    );
    v
}

fn indicator<'a>(school: &'a Value, code: &str) -> &'a Value {
    &school["indicators"][code]
}

#[tokio::test]
async fn the_bureau_sees_aggregates_with_small_cells_withheld_and_exports_them() {
    let app = TestApp::spawn().await;
    let a = school(&app, "cty-a", "ca").await;
    let b = school(&app, "cty-b", "cb").await;
    seed(&app, &a).await;
    tick(&app).await;
    let mut v = bureau(&app).await;

    let page = v.get(&county(), "/dashboard?metric=gate_in").await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("全县数据看板") && page.contains("cty-a") && page.contains("cty-b"));
    assert!(page.contains(campus_county::assets::ECHARTS_PATH));
    assert!(
        page.contains("<svg class=\"spark\""),
        "sparklines in the ranking"
    );
    assert!(!page.contains("ca学生"), "no pupil names");
    let js = app
        .get(&county(), campus_county::assets::ECHARTS_PATH)
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(js.text().await.unwrap().contains("echarts"));

    let json: Value = v
        .get(&county(), "/api/v1/county/overview?metric=notice_read_rate")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(json["threshold"], 5);
    let schools = json["schools"].as_array().unwrap();
    assert_eq!(schools[0]["school"]["slug"], "cty-a", "ranked by read rate");
    let sa = &schools[0];
    // Three absences over the period: fewer than five pupils, withheld with its numbers.
    assert_eq!(indicator(sa, "absent")["suppressed"], true);
    assert_eq!(indicator(sa, "absent")["text"], "<5");
    assert!(indicator(sa, "absent")["numerator"].is_null());
    // 6 of 10 pupil-sessions present: the 4 missing are too few to show.
    assert_eq!(indicator(sa, "attendance_rate")["suppressed"], true);
    // Not about pupils: shown.
    assert_eq!(indicator(sa, "notice_read_rate")["value"], 75.0);
    assert_eq!(indicator(sa, "gate_in")["value"], 2.0);
    assert_eq!(json["county"]["notice_read_rate"]["value"], 75.0);
    let text = json.to_string();
    assert!(!text.contains("ca学生") && !text.contains(&format!("\"id\":{}", a.class1[0])));

    let detail = v.get(&county(), "/dashboard/schools/cty-a").await;
    assert_eq!(detail.status(), StatusCode::OK);
    let detail = detail.text().await.unwrap();
    assert!(detail.contains("三年级（1）班") && detail.contains("&lt;5"));
    assert_eq!(
        v.get(&county(), "/dashboard/schools/no-such")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let d: Value = v
        .get(&county(), "/api/v1/county/schools/cty-a")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["classes"].as_array().unwrap().len(), 2);
    let checks = d["checks"].as_array().unwrap();
    let dup = checks
        .iter()
        .find(|c| c["code"] == "duplicate_id_numbers")
        .unwrap();
    assert_eq!(dup["cell"]["text"], "<5");

    // Bad filters are 422 with a message, never a 500.
    let bad = v
        .get(
            &county(),
            "/api/v1/county/overview?from=2026-05-01&to=2026-04-01",
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("开始日期"));
    assert_eq!(
        v.get(&county(), "/dashboard?from=yesterday").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        v.get(&county(), "/api/v1/county/overview?metric=nope")
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // Exports: CSV with a BOM, XLSX that a spreadsheet reader opens; withheld stays withheld.
    let csv = v.get(&county(), "/dashboard/export/schools.csv").await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let bytes = csv.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
    let csv_text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert!(csv_text.starts_with("学校,学区,学校类型,城乡,出勤率"));
    assert!(csv_text.contains("cty-a") && csv_text.contains("<5"));
    let xlsx = v
        .get(&county(), "/dashboard/export/cty-a/classes.xlsx")
        .await;
    assert_eq!(xlsx.status(), StatusCode::OK);
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(xlsx.bytes().await.unwrap().to_vec())).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let cells: Vec<String> = sheet.rows().flatten().map(|c| c.to_string()).collect();
    assert!(cells.contains(&"班级".to_owned()) && cells.contains(&"三年级（2）班".to_owned()));
    assert!(cells.contains(&"<5".to_owned()));
    assert_eq!(
        v.get(&county(), "/dashboard/export/schools.pdf")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // The bureau has no standing inside a school: its dashboard there is refused.
    let mut on_school = Visitor::new(&app);
    assert_eq!(
        on_school.sign_in(&a.host(), "bureau", PW).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        on_school.get(&a.host(), "/api/v1/dashboard").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Nobody signed in: JSON says 401, pages send to the sign-in.
    assert_eq!(
        app.get(&county(), "/api/v1/county/overview")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get(&county(), "/dashboard")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::SEE_OTHER
    );

    // The OpenAPI document describes the JSON API.
    let doc: Value = app
        .get(&county(), "/api/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/county/overview"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/dashboard"]["get"].is_object());
    drop(b);
    app.stop().await;
}

#[tokio::test]
async fn school_leaders_see_only_their_own_school_in_full() {
    let app = TestApp::spawn().await;
    let a = school(&app, "cty-a", "ca").await;
    let b = school(&app, "cty-b", "cb").await;
    seed(&app, &a).await;
    tick(&app).await;

    let mut admin = signed_in(&app, &a, "admin").await;
    let page = admin.get(&a.host(), "/dashboard").await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("三年级（1）班") && !page.contains("&lt;5"),
        "unsuppressed for the school"
    );
    let json: Value = admin
        .get(&a.host(), "/api/v1/dashboard")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(json["school"]["slug"], "cty-a");
    let absent = json["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "absent")
        .unwrap();
    assert_eq!(absent["school"]["value"], 3.0);
    let rate = json["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "attendance_rate")
        .unwrap();
    assert_eq!(rate["school"]["value"], 60.0);
    let export = admin.get(&a.host(), "/dashboard/export/classes.csv").await;
    assert_eq!(export.status(), StatusCode::OK);
    assert!(export.bytes().await.unwrap().starts_with(b"\xEF\xBB\xBF"));

    // A's admin on B's host has no standing there; on the county host no session at all.
    let mut stranger = Visitor::new(&app);
    assert_eq!(
        stranger
            .sign_in(&b.host(), &a.login("admin"), PW)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        stranger.get(&b.host(), "/api/v1/dashboard").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let token = admin.cookie(&a.host(), "campus_session").unwrap();
    for host in [b.host(), county()] {
        let replay = app
            .get(&host, "/api/v1/dashboard")
            .header(reqwest::header::COOKIE, format!("campus_session={token}"))
            .send()
            .await
            .unwrap();
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::NOT_FOUND].contains(&replay.status()),
            "{host}: {}",
            replay.status()
        );
    }
    let county_page = app
        .get(&county(), "/api/v1/county/overview")
        .header(reqwest::header::COOKIE, format!("campus_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(county_page.status(), StatusCode::UNAUTHORIZED);
    // A teacher of A without the audit permission may not open the dashboard.
    let mut head = signed_in(&app, &a, "head1").await;
    assert_eq!(
        head.get(&a.host(), "/dashboard").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        head.get(&a.host(), "/api/v1/dashboard").await.status(),
        StatusCode::FORBIDDEN
    );
    app.stop().await;
}

#[tokio::test]
async fn the_cli_rebuilds_rollups_and_grants_the_bureau_role() {
    let app = TestApp::spawn().await;
    let s = school(&app, "cty-cli", "cc").await;
    seed(&app, &s).await;
    let run = |args: &'static [&'static str], stdin: Option<&'static str>| {
        let url = app.db.url.clone();
        let prefix = app.db.role_prefix.clone();
        async move {
            use tokio::io::AsyncWriteExt;
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_campus"))
                .args(args)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("DATABASE_URL", url)
                .env("CAMPUS_ROLE_PREFIX", prefix)
                .env("CAMPUS_BASE_DOMAIN", BASE)
                .env("CAMPUS_S3_ENDPOINT", "http://127.0.0.1:9")
                .env("RUST_LOG", "warn")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            if let Some(input) = stdin {
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .await
                    .unwrap();
            }
            let out = child.wait_with_output().await.unwrap();
            assert!(
                out.status.success(),
                "campus {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }
    };
    let out = run(&["metrics", "rebuild", "--tenant", "cty-cli"], None).await;
    assert!(
        out.contains("cty-cli") && out.contains("days recomputed"),
        "{out}"
    );
    assert_eq!(value(&app, &s, 2, s.classes[0], "absent", "").await, 1.0);

    run(
        &[
            "county-user",
            "add",
            "--username",
            "kezhang",
            "--name",
            "教育局 科长",
            "--password-stdin",
        ],
        Some("Bureau-Pass-2026\n"),
    )
    .await;
    let mut v = Visitor::new(&app);
    assert_eq!(
        v.sign_in(&county(), "kezhang", "Bureau-Pass-2026")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        v.get(&county(), "/dashboard").await.status(),
        StatusCode::OK
    );
    run(&["county-user", "remove", "--username", "kezhang"], None).await;
    let mut again = Visitor::new(&app);
    // Without the role the county host has nothing for the account.
    let status = again
        .sign_in(&county(), "kezhang", "Bureau-Pass-2026")
        .await
        .status();
    assert_ne!(status, StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn the_daily_count_of_days_is_independent_of_which_day_it_is() {
    // Guards the freshness figures: `day(app, 0)` and the rollups agree on "today".
    let app = TestApp::spawn().await;
    let s = school(&app, "cty-day", "cd").await;
    tick(&app).await;
    let today = day(&app, 0).await;
    let stored: Option<String> =
        sqlx::query_scalar("select max(day)::text from public.metric_values where tenant_id = $1")
            .bind(s.tenant.id.0)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(stored.as_deref(), Some(today.as_str()));
    app.stop().await;
}

/// Terms decide which days owed registers: adding one marks the year for the rollups, so
/// the next pass takes a day outside every term out of the registers owed; removing it
/// puts the day back.
#[tokio::test]
async fn a_term_added_or_removed_changes_the_registers_owed_on_the_next_pass() {
    let app = TestApp::spawn().await;
    let s = school(&app, "cty-term", "ct").await;
    let c1 = s.classes[0];
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    sqlx::query("update classes set created_at = now() - interval '30 days'")
        .execute(&mut *tx)
        .await
        .unwrap();
    // The most recent weekday before today.
    let ago: i32 = sqlx::query_scalar(
        "select min(k) from generate_series(1, 3) k
          where extract(isodow from metric_local_day(now()) - k) < 6",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    // Nothing happened that day yet: have it computed once.
    sqlx::query("select metric_mark(array[metric_local_day(now()) - $1])")
        .bind(ago)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    tick(&app).await;
    assert_eq!(
        value(&app, &s, ago, c1, "registers_expected", "").await,
        1.0
    );

    let until_no_marks = || async {
        for _ in 0..10 {
            tick(&app).await;
            let mut tx = app.services.db.school(&s.tenant).await.unwrap();
            let left: i64 = sqlx::query_scalar("select count(*) from metric_dirty")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            if left == 0 {
                return;
            }
        }
        panic!("the marks were never all passed");
    };
    // A term that ended the day before that weekday.
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    sqlx::query(
        "insert into school_terms (name, starts_on, ends_on)
         values ('上学期', metric_local_day(now()) - 200, metric_local_day(now()) - $1 - 1)",
    )
    .bind(ago)
    .execute(&mut *tx)
    .await
    .unwrap();
    let marked: i64 = sqlx::query_scalar("select count(distinct day) from metric_dirty")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(marked, 367, "the last year and today");
    until_no_marks().await;
    assert_eq!(
        value(&app, &s, ago, c1, "registers_expected", "").await,
        0.0
    );

    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    sqlx::query("delete from school_terms")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    until_no_marks().await;
    assert_eq!(
        value(&app, &s, ago, c1, "registers_expected", "").await,
        1.0
    );
    app.stop().await;
}

/// Other systems read the same dashboard JSON with an admin token: equal to what the bureau
/// sees, small cells withheld alike; no token, bad filters and unknown schools get clear
/// errors.
#[tokio::test]
async fn an_admin_token_reads_the_dashboard_json_the_bureau_sees() {
    let app = TestApp::spawn().await;
    let a = school(&app, "cty-tok", "ck").await;
    seed(&app, &a).await;
    tick(&app).await;
    let mut v = bureau(&app).await;
    let seen: Value = v
        .get(&county(), "/api/v1/county/overview?metric=gate_in")
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .admin(
            reqwest::Method::GET,
            "/admin/v1/dashboard/overview?metric=gate_in",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let by_token: Value = r.json().await.unwrap();
    assert_eq!(by_token["schools"], seen["schools"]);
    assert_eq!(by_token["county"], seen["county"]);
    let one = app
        .admin(reqwest::Method::GET, "/admin/v1/dashboard/schools/cty-tok")
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), StatusCode::OK);
    let one: Value = one.json().await.unwrap();
    assert!(!one.to_string().contains("ck学生"), "no pupil names");

    let anonymous = app
        .get(&format!("admin.{BASE}"), "/admin/v1/dashboard/overview")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    for (path, status) in [
        (
            "/admin/v1/dashboard/overview?from=2026-05-01&to=2026-04-01",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/admin/v1/dashboard/overview?metric=nope",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/admin/v1/dashboard/schools/no-such-school",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let r = app.admin(reqwest::Method::GET, path).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{path}: {body}"
        );
    }
    let doc: Value = app
        .get(&county(), "/api/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/admin/v1/dashboard/overview"]["get"].is_object());
    app.stop().await;
}

/// Waits up to 15 s for an element (ECharts draws after the page's scripts run).
async fn drawn(c: &fantoccini::Client, css: &str) {
    for _ in 0..150 {
        if c.find(fantoccini::Locator::Css(css)).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{css} never appeared on {}", c.current_url().await.unwrap());
}

/// The series ECharts holds for `#trend-chart` (ECharts keeps a gap as "-").
async fn chart_series(c: &fantoccini::Client) -> Value {
    c.execute(
        "var chart = echarts.getInstanceByDom(document.getElementById('trend-chart'));
         return chart.getOption().series.map(function (s) {
           return s.data.map(function (v) { return (v === '-' || v === undefined) ? null : v; });
         });",
        vec![],
    )
    .await
    .unwrap()
}

type Lines = Vec<Vec<Option<f64>>>;

/// Series as numbers (JSON from the browser writes 75 where serde wrote 75.0).
fn lines(v: &Value) -> Lines {
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_array().unwrap().iter().map(Value::as_f64).collect())
        .collect()
}

fn api_series(report: &Value) -> Lines {
    report["trends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(Value::as_f64)
                .collect()
        })
        .collect()
}

/// Headless Chromium opens the county overview and a school page as the bureau: the trend
/// charts are drawn by ECharts with exactly the series the JSON API returns, the ranking
/// shows the API's figures, and each page is saved as a screenshot.
#[tokio::test]
async fn the_dashboard_draws_the_apis_numbers_in_a_real_browser() {
    let app = TestApp::spawn().await;
    let a = school(&app, "cty-web", "cw").await;
    let b = school(&app, "cty-web2", "cx").await;
    seed(&app, &a).await;
    seed(&app, &b).await;
    tick(&app).await;
    let mut v = bureau(&app).await;
    let overview: Value = v
        .get(&county(), "/api/v1/county/overview")
        .await
        .json()
        .await
        .unwrap();
    let one: Value = v
        .get(&county(), "/api/v1/county/schools/cty-web")
        .await
        .json()
        .await
        .unwrap();

    let browser = crate::webdriver::Browser::start(&app).await;
    let c = &browser.client;
    let shots = tempfile::tempdir().unwrap();
    c.goto(&format!("http://{}/login?local=1", county()))
        .await
        .unwrap();
    for (field, value) in [("login", "bureau"), ("password", PW)] {
        c.find(fantoccini::Locator::Css(&format!("input[name={field}]")))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    c.find(fantoccini::Locator::Css("form.form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    c.goto(&format!("http://{}/dashboard", county()))
        .await
        .unwrap();
    drawn(c, "#trend-chart canvas").await;
    assert_eq!(lines(&chart_series(c).await), api_series(&overview));
    // The chart is drawn by the page's own script file, within the page's CSP.
    let violations = browser.csp_violations().await;
    assert!(violations.is_empty(), "{violations:?}");
    assert!(
        api_series(&overview).iter().flatten().any(Option::is_some),
        "the chart has figures to draw"
    );
    for s in overview["schools"].as_array().unwrap() {
        let slug = s["school"]["slug"].as_str().unwrap();
        let shown = c
            .find(fantoccini::Locator::Css(&format!(
                "#ranking tr[data-slug=\"{slug}\"] td:nth-child(5)"
            )))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            shown,
            s["indicators"]["attendance_rate"]["text"].as_str().unwrap(),
            "{slug}"
        );
    }
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots.path().join("county.png"), &png).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);

    c.goto(&format!("http://{}/dashboard/schools/cty-web", county()))
        .await
        .unwrap();
    drawn(c, "#trend-chart canvas").await;
    assert_eq!(lines(&chart_series(c).await), api_series(&one));
    let classes = c
        .find(fantoccini::Locator::Css("#classes"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(classes.contains("三年级（1）班"), "{classes}");
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots.path().join("school.png"), &png).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
    app.stop().await;
}

/// A pass does not wait for a school transaction that is renewing a day's mark: it leaves
/// that mark for the next pass. (Waiting there, while holding the marks it had already
/// taken, made the school's writers queue behind the pass.)
#[tokio::test]
async fn a_pass_leaves_a_mark_being_renewed_for_the_next_pass() {
    let app = TestApp::spawn().await;
    let s = school(&app, "cty-renew", "cr").await;
    tick(&app).await;
    let mark_today = "select metric_mark(array[metric_local_day(now())])";
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    sqlx::query(mark_today).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();

    // A writer renews today's marks and keeps its transaction open.
    let mut writer = app.services.db.school(&s.tenant).await.unwrap();
    let renewed = sqlx::query(
        "update metric_dirty set seq = nextval('metric_dirty_seq') where day = metric_local_day(now())",
    )
    .execute(&mut *writer)
    .await
    .unwrap()
    .rows_affected();
    assert!(renewed >= 1);
    let pass = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        rollup::pass(&app.services.db, &s.tenant),
    )
    .await
    .expect("the pass does not wait for the writer")
    .unwrap();
    assert_eq!(pass.days, 1, "today was computed");
    writer.commit().await.unwrap();

    // The renewed mark is still there, and the next pass takes it.
    let left = |app: &TestApp| {
        let t = s.tenant.clone();
        let db = app.services.db.clone();
        async move {
            let mut tx = db.school(&t).await.unwrap();
            let n: i64 = sqlx::query_scalar("select count(*) from metric_dirty")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            n
        }
    };
    assert_eq!(left(&app).await, renewed as i64);
    let next = rollup::pass(&app.services.db, &s.tenant).await.unwrap();
    assert_eq!(next.days, 1);
    assert_eq!(left(&app).await, 0);
    app.stop().await;
}

/// Writes a school's rollups straight into the county tables, as a rollup pass would:
/// absences two days ago per class (grade, class name, count), summed for the school.
async fn rolled_up(
    app: &TestApp,
    slug: &str,
    name: &str,
    township: &str,
    classes: &[(i16, &str, f64)],
) -> i64 {
    let t = app.onboard(slug, name).await.tenant;
    let pool = &app.services.pool;
    sqlx::query(
        "insert into public.metric_schools (tenant_id, township) values ($1, $2)
         on conflict (tenant_id) do update set township = excluded.township",
    )
    .bind(t.id.0)
    .bind(township)
    .execute(pool)
    .await
    .unwrap();
    let day = "(now() at time zone 'Asia/Shanghai')::date - 2";
    for (i, (grade, class, n)) in classes.iter().enumerate() {
        sqlx::query(&format!(
            "insert into public.metric_values (tenant_id, day, class_id, grade_level, class_name, element, value)
             values ($1, {day}, $2, $3, $4, 'absent', $5)"
        ))
        .bind(t.id.0)
        .bind(i as i64 + 1)
        .bind(grade)
        .bind(class)
        .bind(n)
        .execute(pool)
        .await
        .unwrap();
    }
    let total: f64 = classes.iter().map(|c| c.2).sum();
    sqlx::query(&format!(
        "insert into public.metric_school_values (tenant_id, day, element, value)
         values ($1, {day}, 'absent', $2)"
    ))
    .bind(t.id.0)
    .bind(total)
    .execute(pool)
    .await
    .unwrap();
    t.id.0
}

/// No group of cells adding up to a figure has exactly one withheld cell (which would be
/// the figure minus the shown ones): each group is (total withheld?, parts withheld?).
fn assert_safe(what: &str, total: bool, parts: &[bool]) {
    let hidden = usize::from(total) + parts.iter().filter(|h| **h).count();
    assert_ne!(hidden, 1, "{what}: total withheld {total}, parts {parts:?}");
}

fn withheld(c: &Value) -> bool {
    assert_eq!(
        c["suppressed"].as_bool().unwrap(),
        c["numerator"].is_null(),
        "withheld cells carry no numbers: {c}"
    );
    c["suppressed"].as_bool().unwrap()
}

#[tokio::test]
async fn no_withheld_count_can_be_worked_out_from_the_totals_beside_it() {
    let app = TestApp::spawn_with(|c| c.roles = vec![campus::config::Role::Web]).await;
    rolled_up(
        &app,
        "sup-a",
        "甲小学",
        "东区",
        &[(1, "一年级（1）班", 3.0)],
    )
    .await;
    rolled_up(
        &app,
        "sup-b",
        "乙小学",
        "东区",
        &[
            (1, "一年级（1）班", 2.0),
            (1, "一年级（2）班", 18.0),
            (2, "二年级（1）班", 20.0),
        ],
    )
    .await;
    rolled_up(
        &app,
        "sup-c",
        "丙小学",
        "西区",
        &[(1, "一年级（1）班", 41.0)],
    )
    .await;
    let mut v = bureau(&app).await;

    for query in ["", "?township=东区", "?township=西区"] {
        let o: Value = v
            .get(
                &county(),
                &format!(
                    "/api/v1/county/overview?metric=absent{}",
                    query.replace('?', "&")
                ),
            )
            .await
            .json()
            .await
            .unwrap();
        let parts: Vec<bool> = o["schools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| withheld(indicator(s, "absent")))
            .collect();
        assert_safe(
            &format!("county{query}"),
            withheld(&o["county"]["absent"]),
            &parts,
        );
        // The sparkline of a withheld school shows no day either.
        for s in o["schools"].as_array().unwrap() {
            if withheld(indicator(s, "absent")) {
                assert!(
                    s["spark"].as_array().unwrap().iter().all(Value::is_null),
                    "{s}"
                );
            }
        }
    }
    let o: Value = v
        .get(&county(), "/api/v1/county/overview?metric=absent")
        .await
        .json()
        .await
        .unwrap();
    let by_slug = |slug: &str| {
        o["schools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["school"]["slug"] == slug)
            .unwrap()
            .clone()
    };
    // 3 is small; 40 goes with it (84 − 41 would give 43, not the 3); 41 is shown.
    assert_eq!(indicator(&by_slug("sup-a"), "absent")["text"], "<5");
    assert_eq!(indicator(&by_slug("sup-b"), "absent")["text"], "*");
    assert_eq!(indicator(&by_slug("sup-c"), "absent")["value"], 41.0);
    assert_eq!(o["county"]["absent"]["value"], 84.0);

    // One school's page: the school, its grades and its classes.
    let r: Value = v
        .get(&county(), "/api/v1/county/schools/sup-b")
        .await
        .json()
        .await
        .unwrap();
    let own = r["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "absent")
        .unwrap();
    let school_hidden = withheld(&own["school"]);
    assert!(school_hidden, "the same cell as on the overview");
    assert!(own["difference"].is_null());
    let grades: Vec<(i64, bool)> = r["grades"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["grade_level"].as_i64().unwrap(),
                withheld(indicator(g, "absent")),
            )
        })
        .collect();
    let classes: Vec<(i64, bool)> = r["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["grade_level"].as_i64().unwrap(),
                withheld(indicator(c, "absent")),
            )
        })
        .collect();
    assert_eq!(classes.len(), 3);
    let parts = |xs: &[(i64, bool)], level: Option<i64>| -> Vec<bool> {
        xs.iter()
            .filter(|(l, _)| level.is_none_or(|x| x == *l))
            .map(|(_, h)| *h)
            .collect()
    };
    assert_safe("school = grades", school_hidden, &parts(&grades, None));
    assert_safe("school = classes", school_hidden, &parts(&classes, None));
    for (level, hidden) in &grades {
        assert_safe(
            &format!("grade {level}"),
            *hidden,
            &parts(&classes, Some(*level)),
        );
    }
    assert!(classes[0].1, "the class of two is withheld");

    // The exports say the same.
    let csv = v.get(&county(), "/dashboard/export/schools.csv").await;
    let csv = String::from_utf8(csv.bytes().await.unwrap()[3..].to_vec()).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "缺勤人次").unwrap();
    let cell = |name: &str| {
        csv.lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .split(',')
            .nth(col)
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        (cell("甲小学"), cell("乙小学"), cell("丙小学")),
        ("<5".into(), "*".into(), "41".into())
    );
    let xlsx = v
        .get(&county(), "/dashboard/export/sup-b/grades.xlsx")
        .await;
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(xlsx.bytes().await.unwrap().to_vec())).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    let col = rows[0].iter().position(|h| h == "缺勤人次").unwrap();
    let shown: Vec<bool> = rows[1..]
        .iter()
        .map(|r| r[col] == "*" || r[col] == "<5")
        .collect();
    assert_eq!(shown, parts(&grades, None), "{rows:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_school_name_that_looks_like_a_formula_is_text_in_the_bureaus_exports() {
    let app = TestApp::spawn_with(|c| c.roles = vec![campus::config::Role::Web]).await;
    rolled_up(
        &app,
        "formula",
        "信义小学",
        "东区",
        &[(1, "一年级（1）班", 10.0)],
    )
    .await;
    let name = r#"=HYPERLINK("http://x","y")"#;
    let r = app
        .admin(reqwest::Method::PATCH, "/admin/v1/tenants/formula")
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let mut v = bureau(&app).await;
    let csv = v.get(&county(), "/dashboard/export/schools.csv").await;
    let csv = String::from_utf8(csv.bytes().await.unwrap()[3..].to_vec()).unwrap();
    assert!(
        csv.contains(r#""'=HYPERLINK(""http://x"",""y"")""#),
        "{csv}"
    );
    assert!(
        !csv.lines()
            .any(|l| l.starts_with("=") || l.starts_with("\"=")),
        "{csv}"
    );
    let csv = v
        .get(&county(), "/dashboard/export/formula/classes.csv")
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    // In the workbook the name is a text cell, never a formula.
    let xlsx = v.get(&county(), "/dashboard/export/schools.xlsx").await;
    let bytes = xlsx.bytes().await.unwrap().to_vec();
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(bytes.clone())).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    assert!(sheet.rows().flatten().any(|c| *c == name));
    let mut book: calamine::Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    let formulas = book
        .worksheet_formula(&book.sheet_names()[0].clone())
        .unwrap();
    assert!(
        formulas.used_cells().all(|(_, _, f)| f.is_empty()),
        "no formulas"
    );
    app.stop().await;
}
