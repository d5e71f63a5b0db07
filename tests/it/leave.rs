//! Leave: a parent asks, the head teacher (and for long leave the grade leader) decides,
//! approval marks the register, parents hear of every decision; bad input, overlaps and
//! other people's children are refused with nothing written; early return; and one school's
//! head teacher can neither take another school's register nor approve its leave.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::attendance::{day, scalar, school, signed_in, take, School};
use crate::helpers::{TestApp, Visitor};

/// Submits a leave request; returns the response.
async fn ask(
    v: &mut Visitor<'_>,
    s: &School,
    pupil: i64,
    start: &str,
    end: &str,
) -> reqwest::Response {
    let csrf = v.csrf(&s.host(), "/leave/new").await;
    let pupil = pupil.to_string();
    v.post(
        &s.host(),
        "/leave/new",
        &[
            ("csrf", &csrf),
            ("student_id", &pupil),
            ("kind", "sick"),
            ("starts_at", start),
            ("ends_at", end),
            ("reason", "发烧"),
        ],
    )
    .await
}

/// The id of a request from the redirect after submitting it.
fn id_of(resp: &reqwest::Response) -> i64 {
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let loc = resp.headers()[reqwest::header::LOCATION].to_str().unwrap();
    loc.strip_prefix("/leave/").unwrap().parse().unwrap()
}

async fn act(v: &mut Visitor<'_>, s: &School, id: i64, action: &str) -> reqwest::Response {
    let csrf = v.csrf(&s.host(), "/me").await;
    v.post(
        &s.host(),
        &format!("/leave/{id}/{action}"),
        &[("csrf", &csrf)],
    )
    .await
}

async fn status(app: &TestApp, s: &School, id: i64) -> String {
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    let st: String = sqlx::query_scalar("select status from leave_requests where id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    st
}

async fn inbox(app: &TestApp, s: &School, kind: &str, id: i64, key: &str) -> i64 {
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "select count(*) from inbox_items where recipient_kind = $1 and recipient_id = $2 and dedupe_key = $3",
    )
    .bind(kind)
    .bind(id)
    .bind(key)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    n
}

#[tokio::test]
async fn leave_approved_by_the_head_teacher_marks_the_register_and_tells_the_parent() {
    let app = TestApp::spawn().await;
    let s = school(&app, "leave-ok", "lo").await;
    let (today, tomorrow) = (day(&app, 0).await, day(&app, 1).await);
    let mut head = signed_in(&app, &s, "head1").await;
    assert_eq!(
        take(&mut head, &s, s.classes[0], &[], "").await.status(),
        StatusCode::SEE_OTHER
    );

    let mut parent = signed_in(&app, &s, "parent1").await;
    let form = parent
        .get(&s.host(), "/leave/new")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        form.contains("lo学生11") && !form.contains("lo学生12"),
        "only their own child"
    );
    let id = id_of(
        &ask(
            &mut parent,
            &s,
            s.class1[0],
            &format!("{today}T00:00"),
            &format!("{tomorrow}T18:00"),
        )
        .await,
    );
    assert_eq!(status(&app, &s, id).await, "pending");
    assert_eq!(
        inbox(
            &app,
            &s,
            "staff",
            s.staff[0],
            &format!("leave:{id}:submitted")
        )
        .await,
        1
    );
    assert_eq!(
        inbox(
            &app,
            &s,
            "staff",
            s.staff[3],
            &format!("leave:{id}:submitted")
        )
        .await,
        0,
        "short leave: no grade leader"
    );

    let list = head.get(&s.host(), "/leave").await.text().await.unwrap();
    assert!(list.contains(&format!("/leave/{id}\"")), "{list}");
    let detail = head
        .get(&s.host(), &format!("/leave/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(detail.contains("/approve") && detail.contains("待审批"));
    // The parent cannot approve, and another head teacher does not even see it.
    assert_eq!(
        act(&mut parent, &s, id, "approve").await.status(),
        StatusCode::FORBIDDEN
    );
    let mut other = signed_in(&app, &s, "head2").await;
    assert_eq!(
        other.get(&s.host(), &format!("/leave/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        act(&mut other, &s, id, "approve").await.status(),
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        act(&mut head, &s, id, "approve").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(status(&app, &s, id).await, "approved");
    assert_eq!(
        inbox(
            &app,
            &s,
            "guardian",
            s.guardians[0],
            &format!("leave:{id}:approved")
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &app,
            &s.tenant,
            "select count(*) from attendance_marks where student_id = $1 and status = 'leave'",
            s.class1[0]
        )
        .await,
        1,
        "today's register, already taken, now shows the leave"
    );
    assert_eq!(
        scalar(&app, &s.tenant, "select count(*) from attendance_corrections where student_id = $1 and old_status = 'present' and new_status = 'leave'", s.class1[0]).await,
        1,
        "and the change is logged as a correction"
    );
    assert_eq!(
        act(&mut head, &s, id, "approve").await.status(),
        StatusCode::CONFLICT
    );

    // Tomorrow's roll call starts with the pupil on leave.
    let reg: Value = head
        .get(
            &s.host(),
            &format!("/api/v1/attendance/{}/{tomorrow}/morning", s.classes[0]),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (reg["taken"].clone(), reg["pupils"][0]["status"].clone()),
        (json!(false), json!("leave"))
    );
    assert_eq!(reg["pupils"][1]["status"], json!("present"));
    let page = parent
        .get(&s.host(), &format!("/leave/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("已批准"));
}

#[tokio::test]
async fn leave_longer_than_the_threshold_needs_the_grade_leader_too() {
    let app = TestApp::spawn().await;
    let s = school(&app, "leave-long", "ll").await;
    let (from, to) = (day(&app, 2).await, day(&app, 6).await);
    let mut parent = signed_in(&app, &s, "parent1").await;
    let id = id_of(
        &ask(
            &mut parent,
            &s,
            s.class1[0],
            &format!("{from}T08:00"),
            &format!("{to}T17:00"),
        )
        .await,
    );
    assert_eq!(
        inbox(
            &app,
            &s,
            "staff",
            s.staff[3],
            &format!("leave:{id}:submitted")
        )
        .await,
        1
    );

    let mut leader = signed_in(&app, &s, "leader").await;
    let early = act(&mut leader, &s, id, "approve").await;
    assert_eq!(early.status(), StatusCode::FORBIDDEN);
    assert!(early.text().await.unwrap().contains("请等待班主任审批"));
    let mut head = signed_in(&app, &s, "head1").await;
    assert_eq!(
        act(&mut head, &s, id, "approve").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        status(&app, &s, id).await,
        "pending",
        "the grade leader still has to decide"
    );
    assert_eq!(
        inbox(
            &app,
            &s,
            "guardian",
            s.guardians[0],
            &format!("leave:{id}:approved")
        )
        .await,
        0
    );
    assert_eq!(
        inbox(
            &app,
            &s,
            "staff",
            s.staff[3],
            &format!("leave:{id}:grade_leader")
        )
        .await,
        1
    );
    assert_eq!(
        act(&mut head, &s, id, "approve").await.status(),
        StatusCode::FORBIDDEN
    );
    let list = leader.get(&s.host(), "/leave").await.text().await.unwrap();
    assert!(list.contains(&format!("/leave/{id}\"")));
    assert_eq!(
        act(&mut leader, &s, id, "approve").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(status(&app, &s, id).await, "approved");
    assert_eq!(
        inbox(
            &app,
            &s,
            "guardian",
            s.guardians[0],
            &format!("leave:{id}:approved")
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &app,
            &s.tenant,
            "select count(*) from leave_approvals where leave_id = $1",
            id
        )
        .await,
        2
    );
}

#[tokio::test]
async fn leave_rejected_or_cancelled() {
    let app = TestApp::spawn().await;
    let s = school(&app, "leave-no", "ln").await;
    let (d1, d2) = (day(&app, 1).await, day(&app, 2).await);
    let mut parent = signed_in(&app, &s, "parent1").await;
    let id = id_of(
        &ask(
            &mut parent,
            &s,
            s.class1[0],
            &format!("{d1}T08:00"),
            &format!("{d1}T12:00"),
        )
        .await,
    );
    let mut head = signed_in(&app, &s, "head1").await;
    assert_eq!(
        act(&mut head, &s, id, "reject").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(status(&app, &s, id).await, "rejected");
    assert_eq!(
        inbox(
            &app,
            &s,
            "guardian",
            s.guardians[0],
            &format!("leave:{id}:rejected")
        )
        .await,
        1
    );
    assert_eq!(
        act(&mut parent, &s, id, "cancel").await.status(),
        StatusCode::CONFLICT
    );

    // A rejected request does not block a new one for the same time; the parent cancels it.
    let again = id_of(
        &ask(
            &mut parent,
            &s,
            s.class1[0],
            &format!("{d1}T08:00"),
            &format!("{d2}T12:00"),
        )
        .await,
    );
    assert_eq!(
        act(&mut head, &s, again, "cancel").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        act(&mut parent, &s, again, "cancel").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(status(&app, &s, again).await, "cancelled");
    assert_eq!(
        act(&mut head, &s, again, "approve").await.status(),
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn leave_bad_input_overlap_and_other_children_are_refused_with_nothing_written() {
    let app = TestApp::spawn().await;
    let s = school(&app, "leave-bad", "lb").await;
    let (d1, d2, d3) = (day(&app, 1).await, day(&app, 2).await, day(&app, 3).await);
    let mut parent = signed_in(&app, &s, "parent1").await;
    id_of(
        &ask(
            &mut parent,
            &s,
            s.class1[0],
            &format!("{d1}T08:00"),
            &format!("{d2}T17:00"),
        )
        .await,
    );
    let count = || {
        scalar(
            &app,
            &s.tenant,
            "select count(*) from leave_requests where id > $1",
            0,
        )
    };
    assert_eq!(count().await, 1);

    let overlap = ask(
        &mut parent,
        &s,
        s.class1[0],
        &format!("{d2}T08:00"),
        &format!("{d3}T17:00"),
    )
    .await;
    assert_eq!(overlap.status(), StatusCode::CONFLICT);
    assert!(overlap.text().await.unwrap().contains("重叠"));
    let backwards = ask(
        &mut parent,
        &s,
        s.class1[0],
        &format!("{d3}T08:00"),
        &format!("{d3}T07:00"),
    )
    .await;
    assert_eq!(backwards.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(backwards
        .text()
        .await
        .unwrap()
        .contains("结束时间必须晚于开始时间"));
    let bad_date = ask(
        &mut parent,
        &s,
        s.class1[0],
        "2026-02-30T08:00",
        &format!("{d3}T17:00"),
    )
    .await;
    assert_eq!(bad_date.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_date.text().await.unwrap().contains("格式不正确"));
    let not_theirs = ask(
        &mut parent,
        &s,
        s.class2[0],
        &format!("{d3}T08:00"),
        &format!("{d3}T17:00"),
    )
    .await;
    assert_eq!(not_theirs.status(), StatusCode::NOT_FOUND);
    assert!(not_theirs.text().await.unwrap().contains("找不到该学生"));
    let no_csrf = parent
        .post(
            &s.host(),
            "/leave/new",
            &[
                ("student_id", &s.class1[0].to_string()),
                ("kind", "sick"),
                ("starts_at", &format!("{d3}T08:00")),
                ("ends_at", &format!("{d3}T17:00")),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
    let mut teacher = signed_in(&app, &s, "head1").await;
    assert_eq!(
        teacher.get(&s.host(), "/leave/new").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(count().await, 1, "nothing written");
    assert_eq!(
        scalar(
            &app,
            &s.tenant,
            "select count(*) from inbox_items where id > $1",
            0
        )
        .await,
        1
    );
}

#[tokio::test]
async fn leave_early_return_ends_the_leave_now() {
    let app = TestApp::spawn().await;
    let s = school(&app, "leave-back", "lr").await;
    let (yesterday, later) = (day(&app, -1).await, day(&app, 1).await);
    let mut parent = signed_in(&app, &s, "parent1").await;
    let id = id_of(
        &ask(
            &mut parent,
            &s,
            s.class1[0],
            &format!("{yesterday}T08:00"),
            &format!("{later}T17:00"),
        )
        .await,
    );
    assert_eq!(
        act(&mut parent, &s, id, "return").await.status(),
        StatusCode::CONFLICT,
        "not approved yet"
    );
    let mut head = signed_in(&app, &s, "head1").await;
    assert_eq!(
        act(&mut head, &s, id, "approve").await.status(),
        StatusCode::SEE_OTHER
    );
    let back = act(&mut parent, &s, id, "return").await;
    assert_eq!(
        back.status(),
        StatusCode::SEE_OTHER,
        "{}",
        back.text().await.unwrap()
    );
    assert_eq!(status(&app, &s, id).await, "returned");
    assert_eq!(
        scalar(&app, &s.tenant, "select count(*) from leave_requests where id = $1 and ends_at <= now() and ends_at > now() - interval '1 minute'", id).await,
        1
    );
    assert_eq!(
        act(&mut parent, &s, id, "return").await.status(),
        StatusCode::CONFLICT
    );
    // The pupil is no longer pre-marked on leave for the days after.
    let reg: Value = head
        .get(
            &s.host(),
            &format!("/api/v1/attendance/{}/{later}/morning", s.classes[0]),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reg["pupils"][0]["status"], json!("present"));
}

#[tokio::test]
async fn leave_and_attendance_isolation_between_schools() {
    let app = TestApp::spawn().await;
    let a = school(&app, "iso-a", "ia").await;
    let b = school(&app, "iso-b", "ib").await;
    // A's head teacher is also a parent (of class 2's first pupil) at B.
    let mut tx = app.services.pool.begin().await.unwrap();
    let account: i64 = sqlx::query_scalar("select id from public.accounts where username = $1")
        .bind(a.login("head1"))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    campus_identity::account::set_membership(
        &app.services.pool,
        account,
        b.tenant.id.0,
        &["parent"],
        None,
        Some(b.guardians[1]),
    )
    .await
    .unwrap();

    // A leave request at each school (the same id in both schemas).
    let d1 = day(&app, 1).await;
    let mut pa = signed_in(&app, &a, "parent1").await;
    let id_a = id_of(
        &ask(
            &mut pa,
            &a,
            a.class1[0],
            &format!("{d1}T08:00"),
            &format!("{d1}T17:00"),
        )
        .await,
    );
    let mut pb = signed_in(&app, &b, "parent1").await;
    let id_b = id_of(
        &ask(
            &mut pb,
            &b,
            b.class1[0],
            &format!("{d1}T08:00"),
            &format!("{d1}T17:00"),
        )
        .await,
    );
    assert_eq!(id_a, id_b);

    let mut head = signed_in(&app, &a, "head1").await;
    // A's session cookie is not a session at B's host.
    let token = head.cookie(&a.host(), "campus_session").unwrap();
    let mut thief = Visitor::new(&app);
    thief.set_cookie(&b.host(), "campus_session", &token);
    let r = thief
        .get(&b.host(), &format!("/attendance/{}", b.classes[0]))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "sent to sign in");
    assert_eq!(
        thief
            .get(&b.host(), &format!("/leave/{id_b}"))
            .await
            .status(),
        StatusCode::SEE_OTHER
    );

    // Signed in at B (where they are only a parent): A's class id names B's class, which
    // they may not take; B's leave is not theirs to see or approve.
    assert_eq!(
        head.sign_in(&b.host(), &a.login("head1"), crate::attendance::PW)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        head.get(&b.host(), &format!("/attendance/{}", a.classes[0]))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let csrf_b = head.csrf(&b.host(), "/me").await;
    let post = head
        .post(
            &b.host(),
            &format!("/attendance/{}", a.classes[0]),
            &[
                ("csrf", &csrf_b),
                ("period", "morning"),
                (&format!("p{}", a.class1[0]), "absent"),
            ],
        )
        .await;
    assert_eq!(post.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        head.get(&b.host(), &format!("/leave/{id_a}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let approve = head
        .post(
            &b.host(),
            &format!("/leave/{id_a}/approve"),
            &[("csrf", &csrf_b)],
        )
        .await;
    assert_eq!(approve.status(), StatusCode::NOT_FOUND);
    assert_eq!(status(&app, &b, id_b).await, "pending");
    assert_eq!(
        scalar(
            &app,
            &b.tenant,
            "select count(*) from attendance_registers where id > $1",
            0
        )
        .await,
        0
    );

    // At A the same person approves A's request and takes A's register; B is untouched.
    assert_eq!(
        act(&mut head, &a, id_a, "approve").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        take(&mut head, &a, a.classes[0], &[(a.class1[1], "late")], "")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(status(&app, &a, id_a).await, "approved");
    assert_eq!(status(&app, &b, id_b).await, "pending");
    assert_eq!(
        scalar(
            &app,
            &a.tenant,
            "select count(*) from attendance_registers where id > $1",
            0
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &app,
            &b.tenant,
            "select count(*) from attendance_registers where id > $1",
            0
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &app,
            &b.tenant,
            "select count(*) from leave_approvals where leave_id > $1",
            0
        )
        .await,
        0
    );
}
