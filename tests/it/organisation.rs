//! Organisation editing: school admins create, rename and retire grades and classes and set
//! head teachers, subject teachers and grade leaders, through the pages and the JSON API;
//! every change is audited; attendance and leave rights follow a new assignment at once;
//! nobody else may change anything; and one school's ids, staff and sessions mean nothing
//! at another school's host.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::attendance::{day, scalar, school, signed_in, take, School};
use crate::helpers::{TestApp, Visitor};

/// A JSON request with the session's CSRF token.
async fn api(
    v: &mut Visitor<'_>,
    s: &School,
    method: Method,
    path: &str,
    body: Value,
) -> reqwest::Response {
    let csrf = v.csrf(&s.host(), "/me").await;
    v.json(method, &s.host(), path, &body, &[("X-CSRF-Token", &csrf)])
        .await
}

/// A form submission with the session's CSRF token.
async fn form(
    v: &mut Visitor<'_>,
    s: &School,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = v.csrf(&s.host(), "/me").await;
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    v.post(&s.host(), path, &all).await
}

async fn audited(app: &TestApp, s: &School) -> i64 {
    scalar(
        app,
        &s.tenant,
        "select count(*) from audit_log where action = 'organisation_changed' and id > $1",
        0,
    )
    .await
}

async fn grade_id(app: &TestApp, s: &School) -> i64 {
    scalar(app, &s.tenant, "select id from grades where level = $1", 3).await
}

async fn message(r: reqwest::Response) -> String {
    let v: Value = r.json().await.unwrap();
    v["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn admins_create_rename_and_retire_grades_and_classes() {
    let app = TestApp::spawn().await;
    let s = school(&app, "org-edit", "oe").await;
    let mut admin = signed_in(&app, &s, "admin").await;
    let h = s.host();

    // A grade through the API; bad levels, names and duplicates are refused.
    let r = api(
        &mut admin,
        &s,
        Method::POST,
        "/api/v1/grades",
        json!({"level": 4, "name": "四年级"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o: Value = r.json().await.unwrap();
    let g4 = o["grades"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["level"] == 4)
        .expect("the new grade")["id"]
        .as_i64()
        .unwrap();
    for (body, status) in [
        (
            json!({"level": 3, "name": "又一个三年级"}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"level": 13, "name": "十三年级"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"level": 5, "name": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"level": "five"}), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let r = api(&mut admin, &s, Method::POST, "/api/v1/grades", body.clone()).await;
        assert_eq!(r.status(), status, "{body}");
        assert!(!message(r).await.is_empty(), "{body}: a message");
    }
    let r = admin
        .json(
            Method::POST,
            &h,
            "/api/v1/grades",
            &json!({"level": 6, "name": "六年级"}),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no X-CSRF-Token");

    // A class in it, named after the grade unless named.
    let r = api(
        &mut admin,
        &s,
        Method::POST,
        "/api/v1/classes",
        json!({"grade_id": g4, "number": 1}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["name"], "四年级（1）班");
    assert_eq!(c["retired"], false);
    let c4 = c["id"].as_i64().unwrap();
    let r = api(
        &mut admin,
        &s,
        Method::POST,
        "/api/v1/classes",
        json!({"grade_id": g4, "number": 1}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(message(r).await.contains("已有 1 班"));
    for body in [
        json!({"grade_id": 999_999, "number": 2}),
        json!({"grade_id": g4, "number": 0}),
        json!({"grade_id": g4, "number": 2, "name": "班".repeat(31)}),
    ] {
        let r = api(
            &mut admin,
            &s,
            Method::POST,
            "/api/v1/classes",
            body.clone(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }

    // Renaming both.
    let r = api(
        &mut admin,
        &s,
        Method::PATCH,
        &format!("/api/v1/classes/{c4}"),
        json!({"name": "四年级星光班"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "四年级星光班");
    let r = api(
        &mut admin,
        &s,
        Method::PATCH,
        &format!("/api/v1/grades/{g4}"),
        json!({"name": "四年级组"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = api(
        &mut admin,
        &s,
        Method::PATCH,
        "/api/v1/grades/999999",
        json!({"name": "无"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = api(
        &mut admin,
        &s,
        Method::PATCH,
        &format!("/api/v1/classes/{c4}"),
        json!({"name": ""}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Retiring: refused while pupils are in the class, allowed when empty, then frozen.
    let r = api(
        &mut admin,
        &s,
        Method::POST,
        &format!("/api/v1/classes/{}/retire", s.classes[0]),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(message(r).await.contains("3 名在读学生"));
    let r = form(
        &mut admin,
        &s,
        &format!("/classes/{}/retire", s.classes[0]),
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("在读学生"));
    let r = api(
        &mut admin,
        &s,
        Method::POST,
        &format!("/api/v1/classes/{c4}/retire"),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["retired"], true);
    let r = api(
        &mut admin,
        &s,
        Method::PUT,
        &format!("/api/v1/classes/{c4}/head-teacher"),
        json!({"staff_id": s.staff[0]}),
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "a retired class is frozen"
    );
    let list: Value = admin.get(&h, "/api/v1/classes").await.json().await.unwrap();
    let retired = list["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == c4)
        .unwrap();
    assert_eq!(retired["retired"], true);
    let page = admin.get(&h, "/classes").await.text().await.unwrap();
    assert!(page.contains("id=\"retired-classes\"") && page.contains("四年级星光班"));

    // The same through the pages' forms.
    let r = form(
        &mut admin,
        &s,
        "/grades",
        &[("level", "5"), ("name", "五年级")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let g5 = scalar(&app, &s.tenant, "select id from grades where level = $1", 5).await;
    let r = form(
        &mut admin,
        &s,
        "/classes",
        &[("grade_id", &g5.to_string()), ("number", "2"), ("name", "")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = admin.follow(r).await.text().await.unwrap();
    assert!(page.contains("五年级（2）班") && page.contains("id=\"saved\""));
    assert!(page.contains("id=\"head-teacher-form\"") && page.contains("id=\"retire-form\""));
    let r = form(&mut admin, &s, "/grades", &[("level", "x"), ("name", "坏")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("年级序号"));
    let r = admin
        .post(&h, "/grades", &[("level", "7"), ("name", "七年级")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token");

    // Every change that was made is in the audit log, and only those.
    assert_eq!(audited(&app, &s).await, 7);
    assert_eq!(
        scalar(
            &app,
            &s.tenant,
            "select count(*) from grades where level > $1",
            5
        )
        .await,
        0,
        "nothing half-written"
    );
    let log = admin.get(&h, "/admin/audit").await.text().await.unwrap();
    assert!(log.contains("调整年级班级"), "{log}");
    app.stop().await;
}

#[tokio::test]
async fn teaching_assignments_decide_roll_call_and_leave_at_once() {
    let app = TestApp::spawn().await;
    let s = school(&app, "org-assign", "oa").await;
    let h = s.host();
    let (c1, c2) = (s.classes[0], s.classes[1]);
    let mut admin = signed_in(&app, &s, "admin").await;
    let mut head2 = signed_in(&app, &s, "head2").await;
    let mut head1 = signed_in(&app, &s, "head1").await;
    assert_eq!(
        head2.get(&h, &format!("/attendance/{c1}")).await.status(),
        StatusCode::FORBIDDEN
    );

    // Head2 becomes class 1's head teacher: roll call and leave at once; head1 loses both.
    let r = api(
        &mut admin,
        &s,
        Method::PUT,
        &format!("/api/v1/classes/{c1}/head-teacher"),
        json!({"staff_id": s.staff[1]}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["head_teacher"]["id"], s.staff[1]);
    assert_eq!(c["head_teacher"]["name"], "二班班主任");
    assert_eq!(
        scalar(
            &app,
            &s.tenant,
            "select count(*) from inbox_items where recipient_kind = 'staff' and recipient_id = $1 and title like '%班主任'",
            s.staff[1]
        )
        .await,
        1,
        "the new head teacher is told"
    );
    assert_eq!(
        head2.get(&h, &format!("/attendance/{c1}")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        take(&mut head2, &s, c1, &[(s.class1[1], "late")], "")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        head1.get(&h, &format!("/attendance/{c1}")).await.status(),
        StatusCode::FORBIDDEN
    );

    let (today, tomorrow) = (day(&app, 1).await, day(&app, 2).await);
    let mut parent = signed_in(&app, &s, "parent1").await;
    let csrf = parent.csrf(&h, "/leave/new").await;
    let pupil = s.class1[0].to_string();
    let asked = parent
        .post(
            &h,
            "/leave/new",
            &[
                ("csrf", &csrf),
                ("student_id", &pupil),
                ("kind", "sick"),
                ("starts_at", &format!("{today}T08:00")),
                ("ends_at", &format!("{tomorrow}T18:00")),
                ("reason", "发烧"),
            ],
        )
        .await;
    assert_eq!(asked.status(), StatusCode::SEE_OTHER);
    let leave: i64 = asked.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("/leave/")
        .parse()
        .unwrap();
    assert_eq!(
        head1.get(&h, &format!("/leave/{leave}")).await.status(),
        StatusCode::NOT_FOUND,
        "the former head teacher no longer sees the class's leave"
    );
    let approved = form(&mut head2, &s, &format!("/leave/{leave}/approve"), &[]).await;
    assert_eq!(approved.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        scalar(
            &app,
            &s.tenant,
            "select count(*) from leave_requests where id = $1 and status = 'approved'",
            leave
        )
        .await,
        1
    );

    // Cleared through the page: head2 loses class 1 again.
    let r = form(
        &mut admin,
        &s,
        &format!("/classes/{c1}/head-teacher"),
        &[("staff_id", "")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        head2.get(&h, &format!("/attendance/{c1}")).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        head2.get(&h, &format!("/leave/{leave}")).await.status(),
        StatusCode::NOT_FOUND
    );
    let page = admin
        .get(&h, &format!("/classes/{c1}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("<b id=\"head-teacher\">—</b>"), "{page}");

    // A subject teacher of class 2: added by API, then removed through the page.
    let mut subject = signed_in(&app, &s, "subject").await;
    assert_eq!(
        subject.get(&h, &format!("/attendance/{c2}")).await.status(),
        StatusCode::FORBIDDEN
    );
    let r = api(
        &mut admin,
        &s,
        Method::POST,
        &format!("/api/v1/classes/{c2}/teachers"),
        json!({"staff_id": s.staff[2], "subject": " 英语 "}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["teachers"][0]["subject"], "英语");
    assert_eq!(
        subject.get(&h, &format!("/attendance/{c2}")).await.status(),
        StatusCode::OK
    );
    let staff = s.staff[2].to_string();
    let r = form(
        &mut admin,
        &s,
        &format!("/classes/{c2}/teachers/remove"),
        &[("staff_id", &staff), ("subject", "英语")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        subject.get(&h, &format!("/attendance/{c2}")).await.status(),
        StatusCode::FORBIDDEN
    );

    // Grade leader set and cleared.
    let g = grade_id(&app, &s).await;
    let r = api(
        &mut admin,
        &s,
        Method::PUT,
        &format!("/api/v1/grades/{g}/leader"),
        json!({"staff_id": s.staff[0]}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let o: Value = r.json().await.unwrap();
    assert_eq!(o["grades"][0]["leader"]["id"], s.staff[0]);
    let detail: Value = head1
        .get(&h, &format!("/api/v1/classes/{c2}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["grade_leader"]["name"], "一班班主任");
    let r = form(
        &mut admin,
        &s,
        &format!("/grades/{g}/leader"),
        &[("staff_id", "")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        scalar(
            &app,
            &s.tenant,
            "select count(*) from grades where id = $1 and leader_staff_id is null",
            g
        )
        .await,
        1
    );
    assert_eq!(audited(&app, &s).await, 6);
    app.stop().await;
}

#[tokio::test]
async fn only_admins_change_and_only_this_schools_active_staff_are_chosen() {
    let app = TestApp::spawn().await;
    let s = school(&app, "org-perm", "op").await;
    let h = s.host();
    let c1 = s.classes[0];
    let stopped: i64 = {
        let mut tx = app.services.db.school(&s.tenant).await.unwrap();
        let id = sqlx::query_scalar(
            "insert into staff (staff_no, name, active) values ('T9', '已离职', false) returning id",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        id
    };

    // Teachers read but change nothing; parents do neither.
    let mut teacher = signed_in(&app, &s, "head1").await;
    assert_eq!(
        teacher.get(&h, "/api/v1/classes").await.status(),
        StatusCode::OK
    );
    let page = teacher
        .get(&h, &format!("/classes/{c1}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("三年级（1）班") && !page.contains("head-teacher-form"));
    let mut parent = signed_in(&app, &s, "parent1").await;
    for who in [&mut teacher, &mut parent] {
        for (method, path, body) in [
            (
                Method::PUT,
                format!("/api/v1/classes/{c1}/head-teacher"),
                json!({"staff_id": s.staff[1]}),
            ),
            (
                Method::POST,
                format!("/api/v1/classes/{c1}/teachers"),
                json!({"staff_id": s.staff[1], "subject": "语文"}),
            ),
            (
                Method::DELETE,
                format!("/api/v1/classes/{c1}/teachers"),
                json!({"staff_id": s.staff[2], "subject": "数学"}),
            ),
            (
                Method::POST,
                "/api/v1/grades".to_owned(),
                json!({"level": 4, "name": "四年级"}),
            ),
            (
                Method::POST,
                format!("/api/v1/classes/{c1}/retire"),
                json!({}),
            ),
        ] {
            let r = api(who, &s, method, &path, body).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        }
        let staff = s.staff[1].to_string();
        for (path, fields) in [
            (
                format!("/classes/{c1}/head-teacher"),
                vec![("staff_id", staff.as_str())],
            ),
            (
                "/grades".to_owned(),
                vec![("level", "4"), ("name", "四年级")],
            ),
            (format!("/classes/{c1}/retire"), vec![]),
            (format!("/classes/{c1}/rename"), vec![("name", "改名")]),
        ] {
            let r = form(who, &s, &path, &fields).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        }
    }
    assert_eq!(
        parent.get(&h, "/api/v1/classes").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        parent.get(&h, &format!("/classes/{c1}")).await.status(),
        StatusCode::FORBIDDEN
    );

    // Unknown or stopped staff, bad subjects, duplicates and unknown classes.
    let mut admin = signed_in(&app, &s, "admin").await;
    for staff in [999_999, stopped] {
        let r = api(
            &mut admin,
            &s,
            Method::PUT,
            &format!("/api/v1/classes/{c1}/head-teacher"),
            json!({"staff_id": staff}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(message(r).await.contains("不在本校或已停用"));
    }
    let r = form(
        &mut admin,
        &s,
        &format!("/classes/{c1}/teachers"),
        &[("staff_id", &stopped.to_string()), ("subject", "语文")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    for subject in ["", &"语".repeat(21)] {
        let r = api(
            &mut admin,
            &s,
            Method::POST,
            &format!("/api/v1/classes/{c1}/teachers"),
            json!({"staff_id": s.staff[1], "subject": subject}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{subject}");
    }
    let r = api(
        &mut admin,
        &s,
        Method::POST,
        &format!("/api/v1/classes/{c1}/teachers"),
        json!({"staff_id": s.staff[2], "subject": "数学"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = api(
        &mut admin,
        &s,
        Method::DELETE,
        &format!("/api/v1/classes/{c1}/teachers"),
        json!({"staff_id": s.staff[1], "subject": "数学"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = api(
        &mut admin,
        &s,
        Method::PUT,
        "/api/v1/classes/999999/head-teacher",
        json!({"staff_id": s.staff[1]}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = api(
        &mut admin,
        &s,
        Method::PUT,
        &format!("/api/v1/classes/{c1}/head-teacher"),
        json!({"staff": "nobody"}),
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "staff_id must be given (null clears)"
    );
    let csrf = admin.csrf(&h, "/me").await;
    let r = app
        .http
        .put(app.url(&format!("/api/v1/classes/{c1}/head-teacher")))
        .header(reqwest::header::HOST, &h)
        .header(
            reqwest::header::COOKIE,
            format!(
                "campus_session={}",
                admin.cookie(&h, "campus_session").unwrap()
            ),
        )
        .header("X-CSRF-Token", &csrf)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a body that is no JSON"
    );
    assert_eq!(
        scalar(
            &app,
            &s.tenant,
            "select count(*) from classes where id = $1 and head_teacher_id is not null",
            c1
        )
        .await,
        1,
        "the head teacher is still set"
    );

    assert_eq!(
        scalar(
            &app,
            &s.tenant,
            "select count(*) from class_teachers where staff_id = $1",
            stopped
        )
        .await,
        0
    );
    assert_eq!(audited(&app, &s).await, 0, "nothing was changed");
    app.stop().await;
}

#[tokio::test]
async fn one_schools_ids_staff_and_sessions_mean_nothing_at_another() {
    let app = TestApp::spawn().await;
    let a = school(&app, "org-a", "ka").await;
    let b = school(&app, "org-b", "kb").await;
    // School B has a member of staff, a grade and a class whose ids school A does not have.
    let (b_staff, b_grade, b_class) = {
        let mut tx = app.services.db.school(&b.tenant).await.unwrap();
        let staff: i64 = sqlx::query_scalar(
            "insert into staff (staff_no, name) values ('T5', '乙校老师') returning id",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        let class: i64 = sqlx::query_scalar(
            "insert into classes (grade_id, number, name) select id, 3, '乙校三班' from grades returning id",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        let grade: i64 = sqlx::query_scalar(
            "insert into grades (level, name) values (9, '乙校九年级') returning id",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        (staff, grade, class)
    };
    let mut admin_a = signed_in(&app, &a, "admin").await;
    let ha = a.host();

    // B's staff id cannot be chosen at A, in any role.
    let c1 = a.classes[0];
    for (method, path, body) in [
        (
            Method::PUT,
            format!("/api/v1/classes/{c1}/head-teacher"),
            json!({"staff_id": b_staff}),
        ),
        (
            Method::POST,
            format!("/api/v1/classes/{c1}/teachers"),
            json!({"staff_id": b_staff, "subject": "语文"}),
        ),
        (
            Method::PUT,
            format!("/api/v1/grades/{}/leader", grade_id(&app, &a).await),
            json!({"staff_id": b_staff}),
        ),
    ] {
        let r = api(&mut admin_a, &a, method, &path, body).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
    }
    // B's class id names nothing at A's host.
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/classes/{b_class}"), json!({})),
        (
            Method::PUT,
            format!("/api/v1/classes/{b_class}/head-teacher"),
            json!({"staff_id": a.staff[0]}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/classes/{b_class}"),
            json!({"name": "改名"}),
        ),
        (
            Method::POST,
            format!("/api/v1/classes/{b_class}/retire"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/v1/classes/{b_class}/teachers"),
            json!({"staff_id": a.staff[0], "subject": "语文"}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/classes/{b_class}/teachers"),
            json!({"staff_id": a.staff[0], "subject": "语文"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/grades/{b_grade}"),
            json!({"name": "改名"}),
        ),
        (
            Method::PUT,
            format!("/api/v1/grades/{b_grade}/leader"),
            json!({"staff_id": a.staff[0]}),
        ),
    ] {
        let r = api(&mut admin_a, &a, method, &path, body).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(!r.text().await.unwrap().contains("乙校"));
    }
    let page = admin_a.get(&ha, &format!("/classes/{b_class}")).await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    let r = form(
        &mut admin_a,
        &a,
        &format!("/classes/{b_class}/head-teacher"),
        &[("staff_id", &a.staff[0].to_string())],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = api(
        &mut admin_a,
        &a,
        Method::POST,
        "/api/v1/classes",
        json!({"grade_id": b_grade, "number": 5}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "B's grade");
    let list = admin_a
        .get(&ha, "/api/v1/classes")
        .await
        .text()
        .await
        .unwrap();
    assert!(!list.contains("乙校"), "{list}");

    // A's session replayed at B's host is no session there.
    let cookie = admin_a.cookie(&ha, "campus_session").unwrap();
    let mut replay = Visitor::new(&app);
    replay.set_cookie(&b.host(), "campus_session", &cookie);
    for path in ["/api/v1/classes".to_owned(), format!("/classes/{b_class}")] {
        let r = replay.get(&b.host(), &path).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
    }
    let r = replay
        .json(
            Method::PUT,
            &b.host(),
            &format!("/api/v1/classes/{b_class}/head-teacher"),
            &json!({"staff_id": b_staff}),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // Nothing of either school changed.
    for s in [&a, &b] {
        assert_eq!(audited(&app, s).await, 0);
    }
    assert_eq!(
        scalar(
            &app,
            &b.tenant,
            "select count(*) from classes where id = $1 and head_teacher_id is null and name = '乙校三班'",
            b_class
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &app,
            &b.tenant,
            "select count(*) from grades where id = $1 and leader_staff_id is null and name = '乙校九年级'",
            b_grade
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &app,
            &a.tenant,
            "select count(*) from classes where id > $1",
            0
        )
        .await,
        2,
        "no class was created at A"
    );
    app.stop().await;
}
