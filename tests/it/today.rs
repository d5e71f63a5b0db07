//! The parent's "today" page: after a roll call, gate events, a leave request and a notice
//! the parent sees each of their own children's day and nobody else's; staff without
//! children get an explanation; a parent's session of one school means nothing on another
//! school's host, and another school's pupils never appear.

use reqwest::multipart::Form;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::attendance::{day, school, signed_in, take, School};
use crate::helpers::{TestApp, Visitor};

/// Adds a gate device through the admin page; returns (key id, secret).
async fn add_device(v: &mut Visitor<'_>, s: &School) -> (String, String) {
    let csrf = v.csrf(&s.host(), "/admin/gate/devices").await;
    let resp = v
        .post(
            &s.host(),
            "/admin/gate/devices",
            &[("csrf", &csrf), ("name", "东门闸机")],
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

/// Posts signed gate events (`(device event id, student_no, direction, local time)`) for
/// today, school time.
async fn gate_events(
    app: &TestApp,
    s: &School,
    device: &(String, String),
    events: &[(&str, String, &str, &str)],
) {
    let today = day(app, 0).await;
    let body = json!({"events": events.iter().map(|(id, no, dir, hm)| json!({
        "id": id, "student_no": no, "direction": dir, "at": format!("{today}T{hm}:00+08:00"),
    })).collect::<Vec<_>>()})
    .to_string();
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = campus_school::gate::signature(&device.1, &ts, body.as_bytes());
    let resp = app
        .http
        .post(app.url("/api/v1/gate/events"))
        .header(reqwest::header::HOST, s.host())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Gate-Key", &device.0)
        .header("X-Gate-Timestamp", ts)
        .header("X-Gate-Signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["accepted"], events.len());
}

/// The parent asks for leave for `pupil` from tomorrow 08:00 to the day after, 18:00.
async fn ask_leave(app: &TestApp, v: &mut Visitor<'_>, s: &School, pupil: i64) -> i64 {
    let (tomorrow, after) = (day(app, 1).await, day(app, 2).await);
    let csrf = v.csrf(&s.host(), "/leave/new").await;
    let resp = v
        .post(
            &s.host(),
            "/leave/new",
            &[
                ("csrf", &csrf),
                ("student_id", &pupil.to_string()),
                ("kind", "sick"),
                ("starts_at", &format!("{tomorrow}T08:00")),
                ("ends_at", &format!("{after}T18:00")),
                ("reason", "发烧"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let loc = resp.headers()[reqwest::header::LOCATION].to_str().unwrap();
    loc.strip_prefix("/leave/").unwrap().parse().unwrap()
}

/// The school admin sends a notice to every guardian.
async fn notice_to_all(v: &mut Visitor<'_>, s: &School, title: &str) {
    let token = v.csrf(&s.host(), "/notices/new").await;
    let form = Form::new()
        .text("title", title.to_owned())
        .text("body", "<p>请家长知悉。</p>")
        .text("mode", "read")
        .text("audience", "guardians");
    let resp = v
        .post_multipart(
            &s.host(),
            "/api/v1/notices",
            form,
            &[("X-CSRF-Token", &token)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}

async fn today_json(v: &mut Visitor<'_>, s: &School) -> Value {
    let resp = v
        .json(Method::GET, &s.host(), "/api/v1/today", &Value::Null, &[])
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

async fn today_page(v: &mut Visitor<'_>, s: &School) -> String {
    let resp = v.get(&s.host(), "/today").await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

#[tokio::test]
async fn today_shows_each_childs_register_gate_leave_and_notices() {
    let app = TestApp::spawn().await;
    let s = school(&app, "today-a", "ta").await;
    // parent1 has a second child, in class 2; class 1 has a pupil who has left the school.
    {
        let mut tx = app.services.db.school(&s.tenant).await.unwrap();
        sqlx::query("insert into student_guardians (student_id, guardian_id) values ($1, $2)")
            .bind(s.class2[1])
            .bind(s.guardians[0])
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("update students set left_on = current_date where id = $1")
            .bind(s.class1[2])
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("insert into student_guardians (student_id, guardian_id) values ($1, $2)")
            .bind(s.class1[2])
            .bind(s.guardians[0])
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    let mut parent = signed_in(&app, &s, "parent1").await;
    let home = parent.get(&s.host(), "/").await.text().await.unwrap();
    assert!(home.contains("href=\"/today\""), "the home page links it");
    let before = today_json(&mut parent, &s).await;
    assert_eq!(before["guardian"], true);
    assert_eq!(
        before["children"][0]["attendance"],
        json!([
            {"period": "morning", "status": "not_taken", "taken_at": null},
            {"period": "afternoon", "status": "not_taken", "taken_at": null},
        ])
    );
    assert_eq!(before["children"][0]["gate"], json!([]));

    let mut head = signed_in(&app, &s, "head1").await;
    assert_eq!(
        take(&mut head, &s, s.classes[0], &[(s.class1[0], "late")], "")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let mut admin = signed_in(&app, &s, "admin").await;
    let device = add_device(&mut admin, &s).await;
    gate_events(
        &app,
        &s,
        &device,
        &[
            ("e1", "ta00".into(), "in", "07:42"),
            ("e2", "ta00".into(), "out", "16:32"),
            ("e3", "ta01".into(), "in", "07:30"),
        ],
    )
    .await;
    let leave = ask_leave(&app, &mut parent, &s, s.class1[0]).await;
    notice_to_all(&mut admin, &s, "春季运动会通知").await;

    let t = today_json(&mut parent, &s).await;
    let children = t["children"].as_array().unwrap();
    assert_eq!(
        children
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [s.class1[0], s.class2[1]],
        "their two current children, not the one who left, not other families'"
    );
    let first = &children[0];
    assert_eq!(first["name"], "ta学生11");
    assert_eq!(first["class_name"], "三年级（1）班");
    assert_eq!(first["attendance"][0]["period"], "morning");
    assert_eq!(first["attendance"][0]["status"], "late");
    assert!(first["attendance"][0]["taken_at"].is_string());
    assert_eq!(first["attendance"][1]["status"], "not_taken");
    assert_eq!(
        first["gate"],
        json!([{"direction": "in", "time": "07:42"}, {"direction": "out", "time": "16:32"}])
    );
    assert_eq!(first["leave"][0]["id"], leave);
    assert_eq!(first["leave"][0]["status"], "pending");
    assert_eq!(first["leave"][0]["current"], false);
    let second = &children[1];
    assert_eq!(second["name"], "ta学生22");
    assert_eq!(second["attendance"][0]["status"], "not_taken");
    assert_eq!(second["gate"], json!([]));
    assert_eq!(second["leave"], json!([]));
    assert_eq!(t["unread_notices"], 1);
    assert_eq!(t["latest_notices"][0]["title"], "春季运动会通知");
    assert_eq!(t["latest_notices"][0]["unread"], true);

    let page = today_page(&mut parent, &s).await;
    for shown in [
        "ta学生11",
        "ta学生22",
        "上午：迟到",
        "下午：未点名",
        "到校 07:42",
        "离校 16:32",
        "病假",
        "待审批",
        &format!("href=\"/leave/{leave}\""),
        "春季运动会通知",
        "<b id=\"unread-notices\">1</b>",
    ] {
        assert!(page.contains(shown), "{shown} missing from {page}");
    }
    for hidden in ["ta学生12", "ta学生13", "ta学生21", "到校 07:30"] {
        assert!(!page.contains(hidden), "{hidden} shown to the wrong parent");
    }

    // Reading the notice clears the unread count; the English page uses English words.
    let id = t["latest_notices"][0]["id"].as_i64().unwrap();
    assert_eq!(
        parent
            .get(&s.host(), &format!("/notices/{id}"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(today_json(&mut parent, &s).await["unread_notices"], 0);
    parent.get(&s.host(), "/lang/en").await;
    let en = today_page(&mut parent, &s).await;
    assert!(
        en.contains("Arrived 07:42") && en.contains("Morning: Late"),
        "{en}"
    );

    // The other parent sees their own child only, with today's arrival.
    let mut other = signed_in(&app, &s, "parent2").await;
    let t2 = today_json(&mut other, &s).await;
    assert_eq!(t2["children"].as_array().unwrap().len(), 1);
    assert_eq!(t2["children"][0]["name"], "ta学生21");
    assert_eq!(t2["children"][0]["gate"], json!([]));
    assert_eq!(t2["children"][0]["leave"], json!([]));
    let page2 = today_page(&mut other, &s).await;
    assert!(!page2.contains("ta学生11") && !page2.contains("07:42"));
    app.stop().await;
}

#[tokio::test]
async fn staff_without_children_get_an_explanation_and_no_link() {
    let app = TestApp::spawn().await;
    let s = school(&app, "today-staff", "ts").await;
    for who in ["head1", "admin"] {
        let mut v = signed_in(&app, &s, who).await;
        let page = today_page(&mut v, &s).await;
        assert!(page.contains("没有关联的孩子"), "{page}");
        assert!(!page.contains("ts学生"), "no pupil is shown to {who}");
        let t = today_json(&mut v, &s).await;
        assert_eq!(t["guardian"], false);
        assert_eq!(t["children"], json!([]));
        let home = v.get(&s.host(), "/").await.text().await.unwrap();
        assert!(!home.contains("href=\"/today\""), "{who} has no today link");
    }
    // Not signed in: to the sign-in page.
    let mut anonymous = Visitor::new(&app);
    for path in ["/today", "/api/v1/today"] {
        let resp = anonymous.get(&s.host(), path).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(resp.headers()[reqwest::header::LOCATION], "/login");
    }
    app.stop().await;
}

#[tokio::test]
async fn one_schools_parent_sees_nothing_of_another_school() {
    let app = TestApp::spawn().await;
    let a = school(&app, "today-sa", "sa").await;
    let b = school(&app, "today-sb", "sb").await;
    // The same guardian and pupil ids exist in both schools; give both a day to show.
    let mut head_a = signed_in(&app, &a, "head1").await;
    assert_eq!(
        take(
            &mut head_a,
            &a,
            a.classes[0],
            &[(a.class1[0], "absent")],
            ""
        )
        .await
        .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(a.guardians, b.guardians, "ids are per school");

    let mut parent_a = signed_in(&app, &a, "parent1").await;
    let token = parent_a.cookie(&a.host(), "campus_session").unwrap();
    let mut thief = Visitor::new(&app);
    thief.set_cookie(&b.host(), "campus_session", &token);
    for path in ["/today", "/api/v1/today"] {
        let resp = thief.get(&b.host(), path).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(resp.headers()[reqwest::header::LOCATION], "/login");
    }

    let mut parent_b = signed_in(&app, &b, "parent1").await;
    let tb = today_json(&mut parent_b, &b).await;
    assert_eq!(tb["children"].as_array().unwrap().len(), 1);
    assert_eq!(tb["children"][0]["name"], "sb学生11");
    assert_eq!(tb["children"][0]["attendance"][0]["status"], "not_taken");
    let page_b = today_page(&mut parent_b, &b).await;
    assert!(page_b.contains("sb学生11"));
    assert!(
        !page_b.contains("sa学生") && !page_b.contains("缺勤"),
        "{page_b}"
    );

    let ta = today_json(&mut parent_a, &a).await;
    assert_eq!(ta["children"][0]["name"], "sa学生11");
    assert_eq!(ta["children"][0]["attendance"][0]["status"], "absent");
    app.stop().await;
}
