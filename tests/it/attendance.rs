//! Attendance: roll call with exceptions and the daily summary, corrections of a register
//! already taken, who may take which class, and the missing-register list whose reminder
//! reaches each head teacher once a day.

use campus_identity::account;
use campus_tenant::Tenant;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{person, TestApp, Visitor};

pub const PW: &str = "campus2026";

pub fn host(slug: &str) -> String {
    TestApp::school_host(slug)
}

/// One school's people: grade 3 with classes 1 (three pupils) and 2 (two pupils).
pub struct School {
    pub tenant: Tenant,
    pub slug: String,
    /// Login prefix of the accounts: `<p>.head1`, `<p>.head2`, `<p>.subject`, `<p>.leader`,
    /// `<p>.admin`, `<p>.parent1` (of class 1's first pupil), `<p>.parent2` (of class 2's).
    pub p: String,
    pub classes: [i64; 2],
    pub class1: Vec<i64>,
    pub class2: Vec<i64>,
    pub guardians: [i64; 2],
    pub staff: [i64; 4],
}

impl School {
    pub fn host(&self) -> String {
        host(&self.slug)
    }

    pub fn login(&self, who: &str) -> String {
        format!("{}.{who}", self.p)
    }
}

/// Login suffix, roles, staff id, guardian id.
type Member<'a> = (&'a str, &'a [&'a str], Option<i64>, Option<i64>);

/// Pupil, old status, new status, by staff, reason.
type Correction = (i64, String, String, Option<i64>, Option<String>);

pub async fn school(app: &TestApp, slug: &str, p: &str) -> School {
    let tenant = app.onboard(slug, slug).await.tenant;
    let mut tx = app.services.db.school(&tenant).await.unwrap();
    let mut staff = [0i64; 4];
    for (i, (no, name)) in [
        ("T1", "一班班主任"),
        ("T2", "二班班主任"),
        ("T3", "数学老师"),
        ("T4", "年级组长"),
    ]
    .into_iter()
    .enumerate()
    {
        staff[i] =
            sqlx::query_scalar("insert into staff (staff_no, name) values ($1, $2) returning id")
                .bind(no)
                .bind(name)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
    }
    let grade: i64 = sqlx::query_scalar(
        "insert into grades (level, name, leader_staff_id) values (3, '三年级', $1) returning id",
    )
    .bind(staff[3])
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let mut classes = [0i64; 2];
    let mut pupils = [Vec::new(), Vec::new()];
    for n in 0..2usize {
        classes[n] = sqlx::query_scalar(
            "insert into classes (grade_id, number, name, head_teacher_id) values ($1, $2, $3, $4) returning id",
        )
        .bind(grade)
        .bind(n as i16 + 1)
        .bind(format!("三年级（{}）班", n + 1))
        .bind(staff[n])
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        for i in 0..(3 - n) {
            pupils[n].push(
                sqlx::query_scalar(
                    "insert into students (student_no, name, class_id) values ($1, $2, $3) returning id",
                )
                .bind(format!("{p}{n}{i}"))
                .bind(format!("{p}学生{}{}", n + 1, i + 1))
                .bind(classes[n])
                .fetch_one(&mut *tx)
                .await
                .unwrap(),
            );
        }
    }
    sqlx::query("insert into class_teachers (class_id, staff_id, subject) values ($1, $2, '数学')")
        .bind(classes[0])
        .bind(staff[2])
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut guardians = [0i64; 2];
    for n in 0..2 {
        guardians[n] = sqlx::query_scalar("insert into guardians (name) values ($1) returning id")
            .bind(format!("家长{}", n + 1))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        sqlx::query("insert into student_guardians (student_id, guardian_id, relation) values ($1, $2, '母亲')")
            .bind(pupils[n][0])
            .bind(guardians[n])
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let people: [Member; 7] = [
        ("head1", &["teacher", "head_teacher"], Some(staff[0]), None),
        ("head2", &["teacher", "head_teacher"], Some(staff[1]), None),
        ("subject", &["teacher"], Some(staff[2]), None),
        ("leader", &["teacher", "grade_leader"], Some(staff[3]), None),
        ("admin", &["school_admin"], None, None),
        ("parent1", &["parent"], None, Some(guardians[0])),
        ("parent2", &["parent"], None, Some(guardians[1])),
    ];
    for (who, roles, staff_id, guardian_id) in people {
        let id = person(&app.services, &format!("{p}.{who}"), who, PW, &[]).await;
        account::set_membership(
            &app.services.pool,
            id,
            tenant.id.0,
            roles,
            staff_id,
            guardian_id,
        )
        .await
        .unwrap();
    }
    let [class1, class2] = pupils;
    School {
        tenant,
        slug: slug.to_owned(),
        p: p.to_owned(),
        classes,
        class1,
        class2,
        guardians,
        staff,
    }
}

pub async fn signed_in<'a>(app: &'a TestApp, s: &School, who: &str) -> Visitor<'a> {
    let mut v = Visitor::new(app);
    assert_eq!(
        v.sign_in(&s.host(), &s.login(who), PW).await.status(),
        StatusCode::SEE_OTHER
    );
    v
}

/// Today in the school's time zone, and a day relative to it, as `YYYY-MM-DD`.
pub async fn day(app: &TestApp, offset: i32) -> String {
    sqlx::query_scalar("select ((now() at time zone 'Asia/Shanghai')::date + $1)::text")
        .bind(offset)
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
}

pub async fn scalar(app: &TestApp, t: &Tenant, sql: &str, arg: i64) -> i64 {
    let mut tx = app.services.db.school(t).await.unwrap();
    let n: i64 = sqlx::query_scalar(sql)
        .bind(arg)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    n
}

async fn marks(app: &TestApp, t: &Tenant, class: i64) -> Vec<(i64, String)> {
    let mut tx = app.services.db.school(t).await.unwrap();
    let rows = sqlx::query_as(
        "select m.student_id, m.status from attendance_marks m join attendance_registers r on r.id = m.register_id
          where r.class_id = $1 order by m.student_id",
    )
    .bind(class)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    rows
}

/// Takes today's morning register of `class` through the form.
pub async fn take(
    v: &mut Visitor<'_>,
    s: &School,
    class: i64,
    marks: &[(i64, &str)],
    reason: &str,
) -> reqwest::Response {
    let path = format!("/attendance/{class}");
    let csrf = v.csrf(&s.host(), &path).await;
    let names: Vec<(String, String)> = marks
        .iter()
        .map(|(id, st)| (format!("p{id}"), st.to_string()))
        .collect();
    let mut form: Vec<(&str, &str)> =
        vec![("csrf", &csrf), ("period", "morning"), ("reason", reason)];
    form.extend(names.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    v.post(&s.host(), &path, &form).await
}

#[tokio::test]
async fn attendance_roll_call_saves_exceptions_and_the_summary_counts_them() {
    let app = TestApp::spawn().await;
    let s = school(&app, "att-roll", "ar").await;
    let mut head = signed_in(&app, &s, "head1").await;

    let home = head.get(&s.host(), "/").await.text().await.unwrap();
    assert!(home.contains("href=\"/attendance\"") && home.contains("href=\"/leave\""));
    let index = head
        .get(&s.host(), "/attendance")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        index.contains(&format!("/attendance/{}\"", s.classes[0])),
        "{index}"
    );
    assert!(
        !index.contains(&format!("/attendance/{}\"", s.classes[1])),
        "only classes they head or teach"
    );
    assert!(index.contains("未点名"));

    let roll = head
        .get(&s.host(), &format!("/attendance/{}", s.classes[0]))
        .await;
    assert_eq!(roll.status(), StatusCode::OK);
    let roll = roll.text().await.unwrap();
    assert!(roll.contains("ar学生11") && roll.contains("ar学生13") && !roll.contains("ar学生21"));

    let saved = take(
        &mut head,
        &s,
        s.classes[0],
        &[
            (s.class1[1], "late"),
            (s.class1[2], "absent"),
            (s.class1[0], "present"),
        ],
        "",
    )
    .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let page = head.follow(saved).await.text().await.unwrap();
    assert!(page.contains("id=\"saved\""));
    assert_eq!(
        marks(&app, &s.tenant, s.classes[0]).await,
        vec![
            (s.class1[1], "late".to_owned()),
            (s.class1[2], "absent".to_owned())
        ]
    );
    assert_eq!(
        scalar(
            &app,
            &s.tenant,
            "select count(*) from attendance_corrections where register_id > $1",
            0
        )
        .await,
        0,
        "a first roll call is not a correction"
    );

    let summary: Value = head
        .get(&s.host(), "/api/v1/attendance/summary")
        .await
        .json()
        .await
        .unwrap();
    let c1 = &summary["classes"][0];
    assert_eq!(
        (c1["taken"].clone(), c1["enrolled"].clone()),
        (json!(true), json!(3))
    );
    assert_eq!(
        (
            c1["present"].clone(),
            c1["late"].clone(),
            c1["absent"].clone(),
            c1["leave"].clone()
        ),
        (json!(1), json!(1), json!(1), json!(0))
    );
    assert_eq!(c1["rate"], json!(66.7));
    assert_eq!(summary["classes"][1]["taken"], json!(false));
    assert_eq!(
        summary["school"]["enrolled"],
        json!(3),
        "the school total counts taken registers"
    );
    let page = head
        .get(&s.host(), "/attendance/summary")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("66.7%") && page.contains("三年级（2）班"),
        "{page}"
    );

    // A subject teacher of class 1 may take it too; the JSON register shows the marks.
    let mut subject = signed_in(&app, &s, "subject").await;
    let today = day(&app, 0).await;
    let reg: Value = subject
        .get(
            &s.host(),
            &format!("/api/v1/attendance/{}/{today}/morning", s.classes[0]),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reg["taken"], json!(true));
    let statuses: Vec<&str> = reg["pupils"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["present", "late", "absent"]);
}

#[tokio::test]
async fn attendance_corrections_are_logged_for_every_changed_mark() {
    let app = TestApp::spawn().await;
    let s = school(&app, "att-fix", "af").await;
    let mut head = signed_in(&app, &s, "head1").await;
    assert_eq!(
        take(&mut head, &s, s.classes[0], &[(s.class1[1], "late")], "")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );

    let today = day(&app, 0).await;
    let path = format!("/api/v1/attendance/{}/{today}/morning", s.classes[0]);
    let csrf = head
        .csrf(&s.host(), &format!("/attendance/{}", s.classes[0]))
        .await;
    let body = json!({"marks": [{"student_id": s.class1[0], "status": "early_leave"}], "reason": "家长接走"});
    let refused = head.json(Method::PUT, &s.host(), &path, &body, &[]).await;
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "PUT needs the CSRF header"
    );
    let saved = head
        .json(
            Method::PUT,
            &s.host(),
            &path,
            &body,
            &[("X-CSRF-Token", &csrf)],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let saved: Value = saved.json().await.unwrap();
    assert_eq!(
        (saved["created"].clone(), saved["corrections"].clone()),
        (json!(false), json!(2))
    );

    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    let rows: Vec<Correction> = sqlx::query_as(
        "select student_id, old_status, new_status, by_staff_id, reason from attendance_corrections order by student_id",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        rows,
        vec![
            (
                s.class1[0],
                "present".into(),
                "early_leave".into(),
                Some(s.staff[0]),
                Some("家长接走".into())
            ),
            (
                s.class1[1],
                "late".into(),
                "present".into(),
                Some(s.staff[0]),
                Some("家长接走".into())
            ),
        ]
    );
    assert_eq!(
        marks(&app, &s.tenant, s.classes[0]).await,
        vec![(s.class1[0], "early_leave".to_owned())]
    );
    assert_eq!(
        scalar(
            &app,
            &s.tenant,
            "select count(*) from attendance_registers where class_id = $1",
            s.classes[0]
        )
        .await,
        1
    );

    // Saving the same marks again changes nothing and logs nothing.
    let again: Value = head
        .json(
            Method::PUT,
            &s.host(),
            &path,
            &body,
            &[("X-CSRF-Token", &csrf)],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["corrections"], json!(0));
    assert_eq!(
        scalar(
            &app,
            &s.tenant,
            "select count(*) from attendance_corrections where id > $1",
            0
        )
        .await,
        2
    );
}

#[tokio::test]
async fn attendance_of_another_class_is_refused() {
    let app = TestApp::spawn().await;
    let s = school(&app, "att-deny", "ad").await;
    let mut other = signed_in(&app, &s, "head2").await;
    let class1 = format!("/attendance/{}", s.classes[0]);
    assert_eq!(
        other.get(&s.host(), &class1).await.status(),
        StatusCode::FORBIDDEN
    );
    let csrf = other
        .csrf(&s.host(), &format!("/attendance/{}", s.classes[1]))
        .await;
    let post = other
        .post(
            &s.host(),
            &class1,
            &[
                ("csrf", &csrf),
                ("period", "morning"),
                (&format!("p{}", s.class1[0]), "absent"),
            ],
        )
        .await;
    assert_eq!(post.status(), StatusCode::FORBIDDEN);
    assert!(post.text().await.unwrap().contains("不能点名"));
    let today = day(&app, 0).await;
    let json = other
        .get(
            &s.host(),
            &format!("/api/v1/attendance/{}/{today}/morning", s.classes[0]),
        )
        .await;
    assert_eq!(json.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        other.get(&s.host(), "/attendance/999999").await.status(),
        StatusCode::NOT_FOUND
    );
    let mut parent = signed_in(&app, &s, "parent1").await;
    assert_eq!(
        parent.get(&s.host(), &class1).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        scalar(
            &app,
            &s.tenant,
            "select count(*) from attendance_registers where id > $1",
            0
        )
        .await,
        0
    );

    // The school admin may take any class.
    let mut admin = signed_in(&app, &s, "admin").await;
    assert_eq!(
        take(&mut admin, &s, s.classes[0], &[(s.class1[0], "absent")], "")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        marks(&app, &s.tenant, s.classes[0]).await,
        vec![(s.class1[0], "absent".to_owned())]
    );
}

#[tokio::test]
async fn attendance_missing_registers_are_listed_and_reminded_once_a_day() {
    let app = TestApp::spawn().await;
    let s = school(&app, "att-miss", "am").await;
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    sqlx::query("update attendance_settings set register_deadline = '00:00'")
        .execute(&mut *tx)
        .await
        .unwrap();
    // Registers are expected today whatever the weekday.
    sqlx::query("insert into calendar_days (day, kind, name) values ((now() at time zone 'Asia/Shanghai')::date, 'school', '上课')")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut head = signed_in(&app, &s, "head1").await;
    assert_eq!(
        take(&mut head, &s, s.classes[0], &[], "").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        head.get(&s.host(), "/attendance/missing").await.status(),
        StatusCode::FORBIDDEN
    );

    let mut admin = signed_in(&app, &s, "admin").await;
    let page = admin
        .get(&s.host(), "/attendance/missing")
        .await
        .text()
        .await
        .unwrap();
    let list = &page[page.find("id=\"missing\"").unwrap()..];
    assert!(
        list.contains("三年级（2）班")
            && list.contains("二班班主任")
            && !list.contains("三年级（1）班"),
        "{page}"
    );

    let inbox = |id: i64| {
        let app = &app;
        let t = &s.tenant;
        async move {
            scalar(
                app,
                t,
                "select count(*) from inbox_items where recipient_kind = 'staff' and recipient_id = $1 and category = 'attendance'",
                id,
            )
            .await
        }
    };
    let csrf = admin.csrf(&s.host(), "/attendance/missing").await;
    assert_eq!(
        admin
            .post(&s.host(), "/attendance/missing/remind", &[])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let sent = admin
        .post(&s.host(), "/attendance/missing/remind", &[("csrf", &csrf)])
        .await
        .text()
        .await
        .unwrap();
    assert!(sent.contains("id=\"reminded\""), "{sent}");
    assert_eq!((inbox(s.staff[1]).await, inbox(s.staff[0]).await), (1, 0));
    admin
        .post(&s.host(), "/attendance/missing/remind", &[("csrf", &csrf)])
        .await;
    assert_eq!(inbox(s.staff[1]).await, 1, "once per day");
}

#[tokio::test]
async fn attendance_demo_seed_gives_classes_teachers_grade_leaders_and_leave() {
    let app = TestApp::spawn().await;
    let school = campus_school::demo::SCHOOLS
        .iter()
        .min_by_key(|s| s.students)
        .unwrap();
    let tenant = app.onboard("att-demo", "演示").await.tenant;
    let today = chrono::Utc::now().date_naive();
    campus_school::demo::seed(
        &app.services.db,
        &app.services.store,
        &tenant,
        school,
        today,
    )
    .await
    .unwrap()
    .expect("seeded");
    let mut tx = app.services.db.school(&tenant).await.unwrap();
    let (classes, taught, grades, led): (i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from classes), (select count(distinct class_id) from class_teachers),
                (select count(*) from grades), (select count(*) from grades where leader_staff_id is not null)",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!((taught, led), (classes, grades));
    let leave: Vec<(String, i32)> =
        sqlx::query_as("select status, cardinality(steps) from leave_requests order by id")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    assert_eq!(
        leave,
        vec![
            ("pending".into(), 1),
            ("approved".into(), 1),
            ("pending".into(), 2)
        ]
    );
    let first_class_pending: i64 = sqlx::query_scalar(
        "select count(*) from leave_requests l join students s on s.id = l.student_id
          where s.class_id = (select min(id) from classes) and l.status = 'pending'",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        first_class_pending, 2,
        "the demo head teacher has requests to decide"
    );
    tx.commit().await.unwrap();
}
