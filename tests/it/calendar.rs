//! The school calendar: days off and make-up school days added as ranges (idempotently),
//! terms and the two daily times, with clear refusals of bad input; holidays silence the
//! missing-register list and the gate absence check and a make-up day brings them back;
//! only the school's academic administrators change it, and only their own school's.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::attendance::{scalar, school, signed_in, School};
use crate::helpers::TestApp;

async fn count(app: &TestApp, s: &School, sql: &str) -> i64 {
    scalar(app, &s.tenant, &format!("select ({sql}) + $1 * 0"), 0).await
}

fn day<'a>(cal: &'a Value, d: &str) -> &'a Value {
    cal["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["day"] == d)
        .unwrap_or_else(|| panic!("{d} not in {cal}"))
}

#[tokio::test]
async fn calendar_days_terms_and_times_are_managed_by_the_admin() {
    let app = TestApp::spawn().await;
    let s = school(&app, "cal-a", "ca").await;
    let host = s.host();
    let mut admin = signed_in(&app, &s, "admin").await;
    let home = admin.get(&host, "/").await.text().await.unwrap();
    assert!(home.contains("href=\"/admin/calendar\""), "{home}");
    let csrf = admin.csrf(&host, "/admin/calendar?month=2026-10").await;
    let h = [("X-CSRF-Token", csrf.as_str())];

    // 国庆节 as a range from the page.
    let resp = admin
        .post(
            &host,
            "/admin/calendar/days",
            &[
                ("csrf", &csrf),
                ("from", "2026-10-01"),
                ("to", "2026-10-07"),
                ("kind", "off"),
                ("name", "国庆节"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let page = admin.follow(resp).await.text().await.unwrap();
    assert!(page.contains("id=\"saved\""), "{page}");
    let row = &page[page.find("id=\"day-2026-10-03\"").unwrap()..];
    assert!(
        row[..row.find("</tr>").unwrap()].contains("国庆节"),
        "{row}"
    );

    // A make-up Saturday through the JSON API.
    let resp = admin
        .json(
            Method::POST,
            &host,
            "/api/v1/calendar",
            &json!({"from": "2026-10-10", "kind": "school", "name": "国庆调休"}),
            &h,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["added"], 1);

    // The same range again changes nothing.
    let resp = admin
        .json(
            Method::POST,
            &host,
            "/api/v1/calendar",
            &json!({"from": "2026-10-01", "to": "2026-10-07", "kind": "off", "name": "国庆节"}),
            &h,
        )
        .await;
    let again: Value = resp.json().await.unwrap();
    assert_eq!(
        (&again["added"], &again["changed"], &again["unchanged"]),
        (&json!(0), &json!(0), &json!(7)),
        "{again}"
    );

    let cal: Value = admin
        .get(&host, "/api/v1/calendar?from=2026-09-30&to=2026-10-11")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cal["days"].as_array().unwrap().len(), 12);
    for (d, school_day) in [
        ("2026-09-30", true),  // Wednesday
        ("2026-10-01", false), // holiday
        ("2026-10-07", false), // holiday
        ("2026-10-08", true),  // Thursday
        ("2026-10-10", true),  // make-up Saturday
        ("2026-10-11", false), // Sunday
    ] {
        assert_eq!(day(&cal, d)["school_day"], school_day, "{d}: {cal}");
    }
    assert_eq!(day(&cal, "2026-10-01")["name"], "国庆节");
    assert_eq!(day(&cal, "2026-10-10")["kind"], "school");

    // Bad input: a clear 422 each, nothing written.
    for body in [
        json!({"from": "2026-10-07", "to": "2026-10-01", "kind": "off", "name": "反了"}),
        json!({"from": "2026-01-01", "to": "2027-06-01", "kind": "off", "name": "太长"}),
        json!({"from": "10/01/2026", "kind": "off", "name": "格式"}),
        json!({"from": "2026-02-30", "kind": "off", "name": "没有这天"}),
        json!({"from": "2026-11-02", "kind": "holiday", "name": "类型"}),
        json!({"from": "2026-11-02", "kind": "off", "name": "  "}),
    ] {
        let resp = admin
            .json(Method::POST, &host, "/api/v1/calendar", &body, &h)
            .await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["code"], "invalid");
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
    let resp = admin
        .post(
            &host,
            "/admin/calendar/days",
            &[
                ("csrf", &csrf),
                ("from", "2026-10-07"),
                ("to", "2026-10-01"),
                ("kind", "off"),
                ("name", "反了"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("结束日期不能早于开始日期"));
    assert_eq!(
        count(&app, &s, "select count(*) from calendar_days").await,
        8
    );

    // Unmarking part of the range.
    let resp = admin
        .json(
            Method::DELETE,
            &host,
            "/api/v1/calendar?from=2026-10-06&to=2026-10-07",
            &json!({}),
            &h,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["removed"], 2);
    let resp = admin
        .json(
            Method::DELETE,
            &host,
            "/api/v1/calendar?from=2026-10-06",
            &json!({}),
            &h,
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["removed"], 0);

    // Terms: days outside every term are off once a term exists; overlaps are refused.
    let resp = admin
        .json(
            Method::POST,
            &host,
            "/api/v1/calendar/terms",
            &json!({"name": "2026秋季学期", "starts_on": "2026-09-01", "ends_on": "2027-01-20"}),
            &h,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let term: Value = resp.json().await.unwrap();
    let resp = admin
        .json(
            Method::POST,
            &host,
            "/api/v1/calendar/terms",
            &json!({"name": "重叠", "starts_on": "2027-01-01", "ends_on": "2027-02-01"}),
            &h,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let resp = admin
        .json(
            Method::POST,
            &host,
            "/api/v1/calendar/terms",
            &json!({"name": "反了", "starts_on": "2027-07-01", "ends_on": "2027-03-01"}),
            &h,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let cal: Value = admin
        .get(&host, "/api/v1/calendar?from=2026-08-31&to=2026-09-01")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(day(&cal, "2026-08-31")["school_day"], false, "summer");
    assert_eq!(day(&cal, "2026-09-01")["school_day"], true, "first day");
    assert_eq!(cal["terms"][0]["name"], "2026秋季学期");

    // The two times: validated, then saved.
    let resp = admin
        .post(
            &host,
            "/admin/calendar/settings",
            &[
                ("csrf", &csrf),
                ("register_deadline", "25:00"),
                ("gate_arrival_cutoff", "08:10"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("时间格式不正确"));
    let resp = admin
        .post(
            &host,
            "/admin/calendar/settings",
            &[
                ("csrf", &csrf),
                ("register_deadline", "08:05"),
                ("gate_arrival_cutoff", "07:50"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = admin
        .json(
            Method::PUT,
            &host,
            "/api/v1/calendar/settings",
            &json!({"register_deadline": "8点", "gate_arrival_cutoff": "07:50"}),
            &h,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let cal: Value = admin
        .get(&host, "/api/v1/calendar")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&cal["register_deadline"], &cal["gate_arrival_cutoff"]),
        (&json!("08:05:00"), &json!("07:50:00"))
    );
    let page = admin
        .get(&host, "/admin/calendar")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("value=\"08:05\"") && page.contains("2026秋季学期"));

    // Removing the term; an unknown term is 404.
    let path = format!("/api/v1/calendar/terms/{}", term["id"]);
    let resp = admin
        .json(Method::DELETE, &host, &path, &json!({}), &h)
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = admin
        .json(Method::DELETE, &host, &path, &json!({}), &h)
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Every change is in the school's audit log.
    assert_eq!(
        count(
            &app,
            &s,
            "select count(*) from audit_log where action = 'attendance_settings_changed'"
        )
        .await,
        1
    );
    assert!(
        count(
            &app,
            &s,
            "select count(*) from audit_log where action = 'calendar_changed'"
        )
        .await
            >= 5
    );
    app.stop().await;
}

#[tokio::test]
async fn calendar_changes_need_academic_admin_rights() {
    let app = TestApp::spawn().await;
    let s = school(&app, "cal-p", "cp").await;
    let host = s.host();
    for (who, csrf_page) in [
        ("head1", format!("/attendance/{}", s.classes[0])),
        ("parent1", "/leave/new".to_owned()),
    ] {
        let mut v = signed_in(&app, &s, who).await;
        let csrf = v.csrf(&host, &csrf_page).await;
        let h = [("X-CSRF-Token", csrf.as_str())];
        // They may read the calendar …
        let resp = v.get(&host, "/api/v1/calendar").await;
        assert_eq!(resp.status(), StatusCode::OK, "{who}");
        // … but not open the admin page or change anything.
        assert_eq!(
            v.get(&host, "/admin/calendar").await.status(),
            StatusCode::FORBIDDEN,
            "{who}"
        );
        for (method, path, body) in [
            (
                Method::POST,
                "/api/v1/calendar",
                json!({"from": "2026-10-01", "kind": "off", "name": "国庆节"}),
            ),
            (
                Method::DELETE,
                "/api/v1/calendar?from=2026-10-01",
                json!({}),
            ),
            (
                Method::POST,
                "/api/v1/calendar/terms",
                json!({"name": "学期", "starts_on": "2026-09-01", "ends_on": "2027-01-20"}),
            ),
            (
                Method::PUT,
                "/api/v1/calendar/settings",
                json!({"register_deadline": "09:00", "gate_arrival_cutoff": "09:00"}),
            ),
        ] {
            let resp = v.json(method.clone(), &host, path, &body, &h).await;
            assert_eq!(
                resp.status(),
                StatusCode::FORBIDDEN,
                "{who} {method} {path}"
            );
            let err: Value = resp.json().await.unwrap();
            assert!(
                err["message"].as_str().unwrap().contains("教务"),
                "refused for the role, not the token: {err}"
            );
        }
        let resp = v
            .post(
                &host,
                "/admin/calendar/days",
                &[
                    ("csrf", &csrf),
                    ("from", "2026-10-01"),
                    ("kind", "off"),
                    ("name", "国庆节"),
                ],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{who}");
        let resp = v
            .post(
                &host,
                "/admin/calendar/settings",
                &[
                    ("csrf", &csrf),
                    ("register_deadline", "09:00"),
                    ("gate_arrival_cutoff", "09:00"),
                ],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{who}");
    }
    // The admin without the CSRF token is refused too.
    let mut admin = signed_in(&app, &s, "admin").await;
    let resp = admin
        .json(
            Method::POST,
            &host,
            "/api/v1/calendar",
            &json!({"from": "2026-10-01", "kind": "off", "name": "国庆节"}),
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        count(&app, &s, "select count(*) from calendar_days").await,
        0
    );
    assert_eq!(
        count(&app, &s, "select count(*) from school_terms").await,
        0
    );
    assert_eq!(
        count(
            &app,
            &s,
            "select count(*) from attendance_settings where register_deadline = '08:30' and gate_arrival_cutoff = '08:10'"
        )
        .await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn calendar_belongs_to_one_school() {
    let app = TestApp::spawn().await;
    let a = school(&app, "cal-x", "cx").await;
    let b = school(&app, "cal-y", "cy").await;
    let mut admin_a = signed_in(&app, &a, "admin").await;
    let csrf_a = admin_a.csrf(&a.host(), "/admin/calendar").await;
    let ha = [("X-CSRF-Token", csrf_a.as_str())];
    for (from, to, name) in [
        ("2026-09-01", "2027-01-20", "甲校秋季"),
        ("2027-02-20", "2027-07-01", "甲校春季"),
    ] {
        let resp = admin_a
            .json(
                Method::POST,
                &a.host(),
                "/api/v1/calendar/terms",
                &json!({"name": name, "starts_on": from, "ends_on": to}),
                &ha,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    admin_a
        .json(
            Method::POST,
            &a.host(),
            "/api/v1/calendar",
            &json!({"from": "2026-10-01", "to": "2026-10-07", "kind": "off", "name": "甲校国庆"}),
            &ha,
        )
        .await;

    // B's admin sees none of A's calendar and cannot remove A's terms by id.
    let mut admin_b = signed_in(&app, &b, "admin").await;
    let csrf_b = admin_b.csrf(&b.host(), "/admin/calendar").await;
    let cal: Value = admin_b
        .get(&b.host(), "/api/v1/calendar?from=2026-10-01&to=2026-10-07")
        .await
        .json()
        .await
        .unwrap();
    assert!(!cal.to_string().contains("甲校"), "{cal}");
    assert_eq!(day(&cal, "2026-10-01")["school_day"], true);
    for id in [1, 2] {
        let resp = admin_b
            .json(
                Method::DELETE,
                &b.host(),
                &format!("/api/v1/calendar/terms/{id}"),
                &json!({}),
                &[("X-CSRF-Token", csrf_b.as_str())],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let resp = admin_b
            .post(
                &b.host(),
                &format!("/admin/calendar/terms/{id}/delete"),
                &[("csrf", &csrf_b)],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(
        count(&app, &a, "select count(*) from school_terms").await,
        2
    );

    // A's admin on B's host: no session there, so neither reading nor changing.
    let resp = admin_a.get(&b.host(), "/admin/calendar").await;
    assert_ne!(resp.status(), StatusCode::OK);
    let token = admin_a.cookie(&a.host(), "campus_session").unwrap();
    admin_a.set_cookie(&b.host(), "campus_session", &token);
    let resp = admin_a.get(&b.host(), "/api/v1/calendar").await;
    assert_ne!(resp.status(), StatusCode::OK);
    assert!(!resp.text().await.unwrap().contains("days"));
    let resp = admin_a
        .json(
            Method::POST,
            &b.host(),
            "/api/v1/calendar",
            &json!({"from": "2026-11-02", "kind": "off", "name": "闯入"}),
            &ha,
        )
        .await;
    assert_ne!(resp.status(), StatusCode::OK);
    let resp = admin_a
        .json(
            Method::PUT,
            &b.host(),
            "/api/v1/calendar/settings",
            &json!({"register_deadline": "10:00", "gate_arrival_cutoff": "10:00"}),
            &ha,
        )
        .await;
    assert_ne!(resp.status(), StatusCode::OK);
    assert_eq!(
        count(&app, &b, "select count(*) from calendar_days").await,
        0
    );
    assert_eq!(
        count(
            &app,
            &b,
            "select count(*) from attendance_settings where register_deadline = '08:30'"
        )
        .await,
        1
    );
    app.stop().await;
}

/// Marks today (in the school's time zone) as `kind` through the admin's JSON API.
async fn mark_today(
    app: &TestApp,
    admin: &mut crate::helpers::Visitor<'_>,
    s: &School,
    csrf: &str,
    kind: &str,
) {
    let today = crate::attendance::day(app, 0).await;
    let resp = admin
        .json(
            Method::POST,
            &s.host(),
            "/api/v1/calendar",
            &json!({"from": today, "kind": kind, "name": "运动会"}),
            &[("X-CSRF-Token", csrf)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn holidays_silence_missing_registers_and_absence_alerts_and_make_up_days_restore_them() {
    let app = TestApp::spawn().await;
    let s = school(&app, "cal-h", "ch").await;
    let host = s.host();
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    sqlx::query(
        "update attendance_settings set register_deadline = '00:00', gate_arrival_cutoff = '00:00'",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut admin = signed_in(&app, &s, "admin").await;
    let csrf = admin.csrf(&host, "/admin/calendar").await;

    // Today is a holiday: no missing registers, no absence alerts, no expected registers.
    mark_today(&app, &mut admin, &s, &csrf, "off").await;
    let page = admin
        .get(&host, "/attendance/missing")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"no-school\""), "{page}");
    assert!(!page.contains("三年级（1）班"), "{page}");
    let page = admin
        .post(&host, "/admin/gate/absence-check", &[("csrf", &csrf)])
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("<span id=\"alerted\">0</span>"), "{page}");
    let summary: Value = admin
        .get(&host, "/api/v1/attendance/summary")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["school_day"], false);
    assert_eq!(count(&app, &s, "select count(*) from inbox_items").await, 0);

    // Made a school day (even on a weekend): both classes are missing, all five pupils absent.
    mark_today(&app, &mut admin, &s, &csrf, "school").await;
    let page = admin
        .get(&host, "/attendance/missing")
        .await
        .text()
        .await
        .unwrap();
    let list = &page[page.find("id=\"missing\"").unwrap()..];
    assert!(
        list.contains("三年级（1）班") && list.contains("三年级（2）班"),
        "{page}"
    );
    let page = admin
        .post(&host, "/admin/gate/absence-check", &[("csrf", &csrf)])
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("<span id=\"alerted\">5</span>"), "{page}");
    let summary: Value = admin
        .get(&host, "/api/v1/attendance/summary")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["school_day"], true);
    app.stop().await;
}
