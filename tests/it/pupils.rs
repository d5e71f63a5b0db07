//! Pupil records and the audit log: sensitive fields are masked until someone allowed to
//! reveals them, each reveal is logged, parents see only their own children, and the
//! school admin searches the log — all within one school.

use campus_identity::account;
use campus_tenant::Tenant;
use reqwest::StatusCode;

use crate::helpers::{person, TestApp, Visitor};

const PW: &str = "campus2026";
const ID_1: &str = "510122201509091234";

fn host(slug: &str) -> String {
    TestApp::school_host(slug)
}

/// Two classes (the first headed by staff `T1`), a pupil in each, and one guardian of the
/// first pupil. Returns (staff id of T1, pupil ids, guardian id).
async fn school_with_pupils(app: &TestApp, t: &Tenant, prefix: &str) -> (i64, [i64; 2], i64) {
    let mut tx = app.services.db.school(t).await.unwrap();
    let staff: i64 = sqlx::query_scalar(
        "insert into staff (staff_no, name) values ('T1', '班主任') returning id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::query("insert into grades (level, name) values (3, '三年级')")
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut pupils = [0; 2];
    for n in 1..=2i16 {
        let class: i64 = sqlx::query_scalar(
            "insert into classes (grade_id, number, name, head_teacher_id)
             select id, $1, '三年级（' || $1 || '）班', case when $1 = 1 then $2 end from grades returning id",
        )
        .bind(n)
        .bind(staff)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        pupils[n as usize - 1] = sqlx::query_scalar(
            "insert into students (student_no, name, class_id, id_number, blood_type, medical_notes)
             values ($1, $2, $3, $4, 'AB', '花生过敏') returning id",
        )
        .bind(format!("{prefix}-{n}"))
        .bind(format!("{prefix}学生{n}"))
        .bind(class)
        .bind(ID_1)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    }
    let guardian: i64 = sqlx::query_scalar(
        "insert into guardians (name, phone) values ('家长', '13900139000') returning id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "insert into student_guardians (student_id, guardian_id, relation) values ($1, $2, '母亲')",
    )
    .bind(pupils[0])
    .bind(guardian)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (staff, pupils, guardian)
}

async fn reveals(app: &TestApp, t: &Tenant) -> Vec<(String, String)> {
    let mut tx = app.services.db.school(t).await.unwrap();
    let rows = sqlx::query_as(
        "select actor_name, subject from audit_log where action = 'sensitive_read' order by id",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    rows
}

async fn signed_in<'a>(app: &'a TestApp, slug: &str, login: &str) -> Visitor<'a> {
    let mut v = Visitor::new(app);
    assert_eq!(
        v.sign_in(&host(slug), login, PW).await.status(),
        StatusCode::SEE_OTHER
    );
    v
}

#[tokio::test]
async fn sensitive_fields_are_masked_revealed_only_when_allowed_and_every_reveal_is_logged() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let (staff, [p1, p2], guardian) = school_with_pupils(&app, &a, "A").await;
    let head = person(&app.services, "head.a", "刘班主任", PW, &[]).await;
    account::set_membership(
        &app.services.pool,
        head,
        a.id.0,
        &["teacher", "head_teacher"],
        Some(staff),
        None,
    )
    .await
    .unwrap();
    person(
        &app.services,
        "teacher.a",
        "普通老师",
        PW,
        &[(&a, &["teacher"])],
    )
    .await;
    person(&app.services, "guard.a", "门卫", PW, &[(&a, &["guard"])]).await;
    let parent = person(&app.services, "parent.a", "张妈妈", PW, &[]).await;
    account::set_membership(
        &app.services.pool,
        parent,
        a.id.0,
        &["parent"],
        None,
        Some(guardian),
    )
    .await
    .unwrap();

    let mut head_v = signed_in(&app, "school-a", "head.a").await;
    let masked = head_v
        .get(&host("school-a"), &format!("/pupils/{p1}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        masked.contains("510***********1234") && !masked.contains(ID_1),
        "{masked}"
    );
    assert!(!masked.contains("花生过敏") && masked.contains("id=\"reveal\""));
    assert!(
        reveals(&app, &a).await.is_empty(),
        "a masked view is not a read"
    );
    let shown = head_v
        .get(&host("school-a"), &format!("/pupils/{p1}?reveal=1"))
        .await;
    assert_eq!(shown.status(), StatusCode::OK);
    let shown = shown.text().await.unwrap();
    assert!(shown.contains(ID_1) && shown.contains("花生过敏") && shown.contains(">AB<"));
    assert_eq!(
        reveals(&app, &a).await,
        [("刘班主任".to_owned(), format!("student:{p1}"))]
    );
    // Not their class: the record, but no reveal.
    assert_eq!(
        head_v
            .get(&host("school-a"), &format!("/pupils/{p2}?reveal=1"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    let mut teacher = signed_in(&app, "school-a", "teacher.a").await;
    assert_eq!(
        teacher
            .get(&host("school-a"), &format!("/pupils/{p2}"))
            .await
            .status(),
        StatusCode::OK
    );
    let r = teacher
        .get(&host("school-a"), &format!("/api/v1/pupils/{p1}?reveal=1"))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let mut guard = signed_in(&app, "school-a", "guard.a").await;
    assert_eq!(
        guard.get(&host("school-a"), "/pupils").await.status(),
        StatusCode::FORBIDDEN
    );

    // A parent sees their own child, with its sensitive fields, and nobody else's.
    let mut parent_v = signed_in(&app, "school-a", "parent.a").await;
    // The home page offers each role its own tasks.
    let home = parent_v
        .get(&host("school-a"), "/")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        home.contains(">我的孩子<") && !home.contains("学生档案") && !home.contains("用户管理"),
        "{home}"
    );
    let home = head_v
        .get(&host("school-a"), "/")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        home.contains(">学生档案<") && !home.contains("用户管理"),
        "{home}"
    );
    let list = parent_v
        .get(&host("school-a"), "/pupils")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("A学生1") && !list.contains("A学生2"),
        "{list}"
    );
    let own: serde_json::Value = parent_v
        .get(&host("school-a"), &format!("/api/v1/pupils/{p1}?reveal=1"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own["id_number"], ID_1);
    assert_eq!(
        parent_v
            .get(&host("school-a"), &format!("/pupils/{p2}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        reveals(&app, &a).await.len(),
        2,
        "head teacher's and parent's reads"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_admin_searches_the_audit_log_of_their_own_school_only() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    let (_, [pa, _], _) = school_with_pupils(&app, &a, "A").await;
    let (_, [pb, _], _) = school_with_pupils(&app, &b, "B").await;
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

    let mut admin_b = signed_in(&app, "school-b", "admin.b").await;
    let r = admin_b
        .get(&host("school-b"), &format!("/pupils/{pb}?reveal=1"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("B学生1"));

    let mut admin_a = signed_in(&app, "school-a", "admin.a").await;
    // Pupil ids are per school: the same number at A's host is A's pupil, never B's.
    let own = admin_a
        .get(&host("school-a"), &format!("/pupils/{pb}?reveal=1"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(pa, pb);
    assert!(own.contains("A学生1") && !own.contains("B学生1"));
    let mut wrong = Visitor::new(&app);
    wrong
        .sign_in(&host("school-a"), "wrong.person", "nope")
        .await;

    let page = admin_a.get(&host("school-a"), "/admin/audit").await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    for expected in [
        "查看敏感信息",
        "登录成功",
        "甲管理员",
        "账号不存在",
        "wrong.person",
    ] {
        assert!(page.contains(expected), "{expected} in {page}");
    }
    assert!(!page.contains("乙管理员"), "school B's log stays at B");
    let data: serde_json::Value = admin_a
        .get(&host("school-a"), "/api/v1/audit?kind=data")
        .await
        .json()
        .await
        .unwrap();
    let entries = data["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{data}");
    assert_eq!(entries[0]["actor"], "甲管理员");
    let signins: serde_json::Value = admin_a
        .get(&host("school-a"), "/api/v1/audit?kind=signin&who=wrong")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(signins["entries"].as_array().unwrap().len(), 1, "{signins}");
    let future: serde_json::Value = admin_a
        .get(&host("school-a"), "/api/v1/audit?from=2099-01-01")
        .await
        .json()
        .await
        .unwrap();
    assert!(future["entries"].as_array().unwrap().is_empty());
    assert_eq!(
        admin_a
            .get(&host("school-a"), "/admin/audit?from=yesterday")
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let mut teacher = signed_in(&app, "school-a", "teacher.a").await;
    assert_eq!(
        teacher
            .get(&host("school-a"), "/admin/audit")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    // A's session is nothing at B.
    let token = admin_a.cookie(&host("school-a"), "campus_session").unwrap();
    admin_a.set_cookie(&host("school-b"), "campus_session", &token);
    assert_eq!(
        admin_a
            .get(&host("school-b"), "/api/v1/audit")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    app.stop().await;
}

#[tokio::test]
async fn class_pages_show_staff_the_organisation_of_their_own_school_only() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    let (_, [pa, _], guardian) = school_with_pupils(&app, &a, "A").await;
    school_with_pupils(&app, &b, "B").await;
    person(
        &app.services,
        "teacher.a",
        "甲老师",
        PW,
        &[(&a, &["teacher"])],
    )
    .await;
    let parent = person(&app.services, "parent.a", "张妈妈", PW, &[]).await;
    account::set_membership(
        &app.services.pool,
        parent,
        a.id.0,
        &["parent"],
        None,
        Some(guardian),
    )
    .await
    .unwrap();
    let mut teacher = signed_in(&app, "school-a", "teacher.a").await;
    let list = teacher.get(&host("school-a"), "/classes").await;
    assert_eq!(list.status(), StatusCode::OK);
    let list = list.text().await.unwrap();
    assert!(
        list.contains("三年级（1）班") && list.contains("三年级（2）班") && list.contains("班主任"),
        "{list}"
    );
    let class: i64 = {
        let mut tx = app.services.db.school(&a).await.unwrap();
        let id = sqlx::query_scalar("select class_id from students where id = $1")
            .bind(pa)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        id
    };
    let page = teacher
        .get(&host("school-a"), &format!("/classes/{class}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("A学生1")
            && !page.contains("B学生1")
            && page.contains("id=\"head-teacher\">班主任<"),
        "{page}"
    );
    assert_eq!(
        teacher
            .get(&host("school-a"), "/classes/999999")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let mut parent_v = signed_in(&app, "school-a", "parent.a").await;
    assert_eq!(
        parent_v.get(&host("school-a"), "/classes").await.status(),
        StatusCode::FORBIDDEN
    );
    // A's session means nothing at B.
    let token = teacher.cookie(&host("school-a"), "campus_session").unwrap();
    teacher.set_cookie(&host("school-b"), "campus_session", &token);
    assert_eq!(
        teacher.get(&host("school-b"), "/classes").await.status(),
        StatusCode::SEE_OTHER
    );
    app.stop().await;
}
