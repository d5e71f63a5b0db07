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

// ---------------------------------------------------------------------------------------
// Photos, half days, the JSON API and the teacher's overview

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

/// Asks for whole days with a photo (multipart, as the page's form sends it).
async fn ask_with_photo(
    v: &mut Visitor<'_>,
    s: &School,
    pupil: i64,
    day: &str,
    file_name: &str,
    mime: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    let csrf = v.csrf(&s.host(), "/leave/new").await;
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf)
        .text("student_id", pupil.to_string())
        .text("kind", "sick")
        .text("span", "days")
        .text("start_date", day.to_owned())
        .text("end_date", day.to_owned())
        .text("reason", "看病，附医生证明")
        .part(
            "photo",
            reqwest::multipart::Part::bytes(bytes)
                .file_name(file_name.to_owned())
                .mime_str(mime)
                .unwrap(),
        );
    v.post_multipart(&s.host(), "/leave/new", form, &[]).await
}

/// Asks through the page's form for any span: `fields` are added to csrf, pupil, kind and
/// reason.
async fn ask_span(
    v: &mut Visitor<'_>,
    s: &School,
    pupil: i64,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = v.csrf(&s.host(), "/leave/new").await;
    let pupil = pupil.to_string();
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("student_id", pupil.as_str()),
        ("kind", "personal"),
        ("reason", "家中有事"),
    ];
    form.extend_from_slice(fields);
    v.post(&s.host(), "/leave/new", &form).await
}

/// The school's stored objects under `leave/`.
async fn leave_objects(app: &TestApp, s: &School) -> Vec<String> {
    let store = app.services.store.for_tenant(&s.tenant);
    let keys = store.list().await.unwrap();
    // Photos are files of the files service; older ones were stored under leave/.
    keys.into_iter()
        .filter(|k| k.starts_with("leave/") || k.starts_with("files/"))
        .collect()
}

/// The session's CSRF token (from any page with a form).
async fn token(v: &mut Visitor<'_>, s: &School) -> String {
    v.csrf(&s.host(), "/me").await
}

async fn api(
    v: &mut Visitor<'_>,
    s: &School,
    method: reqwest::Method,
    path: &str,
    body: &Value,
    csrf: Option<&str>,
) -> (StatusCode, Value) {
    let headers: Vec<(&str, &str)> = csrf.map(|c| ("x-csrf-token", c)).into_iter().collect();
    let resp = v.json(method, &s.host(), path, body, &headers).await;
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get_json(v: &mut Visitor<'_>, s: &School, path: &str) -> (StatusCode, Value) {
    let resp = v.get(&s.host(), path).await;
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn ids(list: &Value) -> Vec<i64> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn leave_photo_is_stored_with_the_request_and_served_only_to_its_parties() {
    let app = TestApp::spawn().await;
    let s = school(&app, "leave-photo", "lp").await;
    let b = school(&app, "leave-photo-b", "lq").await;
    let d1 = day(&app, 1).await;
    let mut parent = signed_in(&app, &s, "parent1").await;
    let id = id_of(
        &ask_with_photo(
            &mut parent,
            &s,
            s.class1[0],
            &d1,
            "证明.png",
            "image/png",
            PNG.to_vec(),
        )
        .await,
    );
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    let (key, kind, file_id): (String, String, i64) = sqlx::query_as(
        "select photo_key, photo_type, photo_file_id from leave_requests where id = $1",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    // A file of the files service, owned by the request and counted in the school's usage.
    let (owner_kind, owner_id, file_key): (String, i64, String) =
        sqlx::query_as("select owner_kind, owner_id, object_key from files where id = $1")
            .bind(file_id)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert!(key.starts_with("files/") && key == file_key, "{key}");
    assert_eq!((owner_kind.as_str(), owner_id), ("leave", id));
    assert_eq!(kind, "image/png");
    assert_eq!(leave_objects(&app, &s).await.len(), 1);
    let used: i64 =
        sqlx::query_scalar("select bytes from public.storage_usage where tenant_id = $1")
            .bind(s.tenant.id.0)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(used, PNG.len() as i64);
    // The files service shows it to the request's parties only.
    let file = format!("/files/{file_id}/download");
    assert_eq!(parent.get(&s.host(), &file).await.status(), StatusCode::OK);
    let mut other_parent = signed_in(&app, &s, "parent2").await;
    assert_eq!(
        other_parent.get(&s.host(), &file).await.status(),
        StatusCode::NOT_FOUND
    );

    let page = parent
        .get(&s.host(), &format!("/leave/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("/leave/{id}/photo")) && page.contains("全天"));
    let photo = format!("/leave/{id}/photo");
    let resp = parent.get(&s.host(), &photo).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert!(resp.headers()["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("private"));
    assert_eq!(resp.bytes().await.unwrap().as_ref(), PNG);

    // The head teacher, the grade leader and the school admin see it; nobody else does.
    for who in ["head1", "leader", "admin"] {
        let mut v = signed_in(&app, &s, who).await;
        assert_eq!(
            v.get(&s.host(), &photo).await.status(),
            StatusCode::OK,
            "{who}"
        );
    }
    for who in ["parent2", "head2", "subject"] {
        let mut v = signed_in(&app, &s, who).await;
        let resp = v.get(&s.host(), &photo).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{who}");
        assert_ne!(resp.bytes().await.unwrap().as_ref(), PNG);
    }
    let mut stranger = Visitor::new(&app);
    assert_eq!(
        stranger.get(&s.host(), &photo).await.status(),
        StatusCode::SEE_OTHER
    );

    // School B: the same id there is B's request (without a photo); A's cookie is no
    // session at B's host.
    let mut pb = signed_in(&app, &b, "parent1").await;
    let id_b = id_of(
        &ask(
            &mut pb,
            &b,
            b.class1[0],
            &format!("{d1}T08:00"),
            &format!("{d1}T12:00"),
        )
        .await,
    );
    assert_eq!(id_b, id);
    let resp = pb.get(&b.host(), &photo).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_ne!(resp.bytes().await.unwrap().as_ref(), PNG);
    let mut head_b = signed_in(&app, &b, "head1").await;
    assert_eq!(
        head_b.get(&b.host(), &photo).await.status(),
        StatusCode::NOT_FOUND
    );
    let cookie = parent.cookie(&s.host(), "campus_session").unwrap();
    let mut thief = Visitor::new(&app);
    thief.set_cookie(&b.host(), "campus_session", &cookie);
    let resp = thief.get(&b.host(), &photo).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(leave_objects(&app, &b).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn leave_photo_must_really_be_a_small_image_and_nothing_is_half_written() {
    let app = TestApp::spawn().await;
    let s = school(&app, "leave-photo-bad", "lx").await;
    let d1 = day(&app, 1).await;
    let mut parent = signed_in(&app, &s, "parent1").await;
    let count = || {
        scalar(
            &app,
            &s.tenant,
            "select count(*) from leave_requests where id > $1",
            0,
        )
    };

    // A text file named .jpg and declared a JPEG.
    let lying = ask_with_photo(
        &mut parent,
        &s,
        s.class1[0],
        &d1,
        "证明.jpg",
        "image/jpeg",
        "我是一段文字，不是图片".as_bytes().to_vec(),
    )
    .await;
    assert_eq!(lying.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(lying
        .text()
        .await
        .unwrap()
        .contains("JPEG、PNG、WebP 或 HEIC"));
    // A JPEG one byte over 5 MB, and a body far over it.
    let mut big = vec![0xFF, 0xD8, 0xFF, 0xE0];
    big.resize(5 * 1024 * 1024 + 1, 0);
    let resp = ask_with_photo(
        &mut parent,
        &s,
        s.class1[0],
        &d1,
        "big.jpg",
        "image/jpeg",
        big.clone(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(resp.text().await.unwrap().contains("5 MB"));
    let mut huge = big.clone();
    huge.resize(7 * 1024 * 1024, 0);
    let resp = ask_with_photo(
        &mut parent,
        &s,
        s.class1[0],
        &d1,
        "huge.jpg",
        "image/jpeg",
        huge,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(count().await, 0);
    assert!(leave_objects(&app, &s).await.is_empty());

    // When the database refuses at commit, after the photo was stored, the photo goes too.
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    sqlx::query(
        "create function refuse_leave() returns trigger language plpgsql as
         $$ begin raise exception 'refused at commit'; end $$",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "create constraint trigger refuse_leave after insert on leave_requests
         deferrable initially deferred for each row execute function refuse_leave()",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let failed = ask_with_photo(
        &mut parent,
        &s,
        s.class1[0],
        &d1,
        "证明.png",
        "image/png",
        PNG.to_vec(),
    )
    .await;
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(count().await, 0);
    assert!(
        leave_objects(&app, &s).await.is_empty(),
        "the stored photo was removed"
    );
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    sqlx::query("drop trigger refuse_leave on leave_requests")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The raw upload of the JSON API checks the same way.
    let id = id_of(
        &ask_span(
            &mut parent,
            &s,
            s.class1[0],
            &[("span", "morning"), ("date", &d1)],
        )
        .await,
    );
    let csrf = token(&mut parent, &s).await;
    let put = |body: Vec<u8>, csrf: String| {
        let host = s.host();
        let cookie = parent.cookie(&s.host(), "campus_session").unwrap();
        let app = &app;
        async move {
            app.http
                .put(app.url(&format!("/api/v1/leave/{id}/photo")))
                .header("host", host)
                .header("cookie", format!("campus_session={cookie}"))
                .header("x-csrf-token", csrf)
                .header("content-type", "image/jpeg")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let resp = put(b"GIF89a not ours".to_vec(), csrf.clone()).await;
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "unsupported_media_type"
    );
    assert_eq!(
        put(big.clone(), csrf.clone()).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        put(PNG.to_vec(), "wrong".into()).await.status(),
        StatusCode::FORBIDDEN
    );
    assert!(leave_objects(&app, &s).await.is_empty());
    let resp = put(PNG.to_vec(), csrf.clone()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let detail: Value = resp.json().await.unwrap();
    assert_eq!(detail["photo_url"], json!(format!("/leave/{id}/photo")));
    // Replacing keeps one object.
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg.extend_from_slice(b"JFIF");
    assert_eq!(put(jpeg.clone(), csrf).await.status(), StatusCode::OK);
    assert_eq!(leave_objects(&app, &s).await.len(), 1);
    let usage: (i64, i64) =
        sqlx::query_as("select bytes, files from public.storage_usage where tenant_id = $1")
            .bind(s.tenant.id.0)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(
        usage,
        (jpeg.len() as i64, 1),
        "the replaced photo left the school's usage"
    );
    let got = parent.get(&s.host(), &format!("/leave/{id}/photo")).await;
    assert_eq!(got.headers()["content-type"], "image/jpeg");
    assert_eq!(got.bytes().await.unwrap().as_ref(), jpeg.as_slice());
    app.stop().await;
}

/// Takes the register of class 1 for today's `period`, everyone present.
async fn take_period(v: &mut Visitor<'_>, s: &School, period: &str) {
    let path = format!("/attendance/{}", s.classes[0]);
    let csrf = v.csrf(&s.host(), &path).await;
    let resp = v
        .post(
            &s.host(),
            &path,
            &[("csrf", &csrf), ("period", period), ("reason", "")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

async fn mark(app: &TestApp, s: &School, pupil: i64, period: &str) -> Option<String> {
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    let m: Option<String> = sqlx::query_scalar(
        "select m.status from attendance_marks m join attendance_registers r on r.id = m.register_id
          where m.student_id = $1 and r.period = $2 and r.day = (now() at time zone 'Asia/Shanghai')::date",
    )
    .bind(pupil)
    .bind(period)
    .fetch_optional(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    m
}

#[tokio::test]
async fn half_day_leave_marks_only_the_registers_it_covers() {
    let app = TestApp::spawn().await;
    let s = school(&app, "leave-half", "lh").await;
    let (today, tomorrow, later) = (day(&app, 0).await, day(&app, 1).await, day(&app, 4).await);
    let mut head = signed_in(&app, &s, "head1").await;
    take_period(&mut head, &s, "morning").await;
    take_period(&mut head, &s, "afternoon").await;

    let mut parent = signed_in(&app, &s, "parent1").await;
    let pupil = s.class1[0];
    let morning = id_of(
        &ask_span(
            &mut parent,
            &s,
            pupil,
            &[("span", "morning"), ("date", &today)],
        )
        .await,
    );
    let mut tx = app.services.db.school(&s.tenant).await.unwrap();
    let (span, starts, ends): (String, String, String) = sqlx::query_as(
        "select span, to_char(starts_at at time zone 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI'),
                to_char(ends_at at time zone 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI')
           from leave_requests where id = $1",
    )
    .bind(morning)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        (span.as_str(), starts, ends),
        (
            "morning",
            format!("{today} 08:00"),
            format!("{today} 12:00")
        ),
        "the school's default morning session"
    );
    assert_eq!(
        act(&mut head, &s, morning, "approve").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        mark(&app, &s, pupil, "morning").await.as_deref(),
        Some("leave")
    );
    assert_eq!(
        mark(&app, &s, pupil, "afternoon").await,
        None,
        "present in the afternoon"
    );

    // Tomorrow afternoon: the roll calls start with the pupil on leave only from the
    // afternoon (and the evening after it), not in the morning.
    let afternoon = id_of(
        &ask_span(
            &mut parent,
            &s,
            pupil,
            &[("span", "afternoon"), ("date", &tomorrow)],
        )
        .await,
    );
    let detail = parent
        .get(&s.host(), &format!("/leave/{afternoon}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(detail.contains("下午（14:00–17:30）"), "{detail}");
    assert_eq!(
        act(&mut head, &s, afternoon, "approve").await.status(),
        StatusCode::SEE_OTHER
    );
    for (period, expected) in [
        ("morning", "present"),
        ("afternoon", "leave"),
        ("evening", "leave"),
    ] {
        let reg: Value = head
            .get(
                &s.host(),
                &format!("/api/v1/attendance/{}/{tomorrow}/{period}", s.classes[0]),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(reg["pupils"][0]["status"], json!(expected), "{period}");
    }

    // The other half of today is free; whole days over it overlap and are refused.
    let other_half = ask_span(
        &mut parent,
        &s,
        pupil,
        &[("span", "afternoon"), ("date", &today)],
    )
    .await;
    assert_eq!(other_half.status(), StatusCode::SEE_OTHER);
    let overlap = ask_span(
        &mut parent,
        &s,
        pupil,
        &[
            ("span", "days"),
            ("start_date", &today),
            ("end_date", &later),
        ],
    )
    .await;
    assert_eq!(overlap.status(), StatusCode::CONFLICT);
    assert!(overlap.text().await.unwrap().contains("重叠"));
    let backwards = ask_span(
        &mut parent,
        &s,
        pupil,
        &[
            ("span", "days"),
            ("start_date", &later),
            ("end_date", &today),
        ],
    )
    .await;
    assert_eq!(backwards.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(backwards
        .text()
        .await
        .unwrap()
        .contains("结束日期不能早于开始日期"));
    assert_eq!(
        scalar(
            &app,
            &s.tenant,
            "select count(*) from leave_requests where student_id = $1",
            pupil
        )
        .await,
        3
    );
    app.stop().await;
}

#[tokio::test]
async fn leave_json_api_follows_the_pages_rules_for_every_role() {
    let app = TestApp::spawn().await;
    let s = school(&app, "leave-api", "la").await;
    let (yesterday, d1, d2) = (day(&app, -1).await, day(&app, 1).await, day(&app, 2).await);
    let mut parent = signed_in(&app, &s, "parent1").await;
    let csrf = token(&mut parent, &s).await;
    let post = reqwest::Method::POST;
    let body = json!({"student_id": s.class1[0], "kind": "sick", "span": "days",
                      "start_date": d1, "end_date": d1, "reason": "发烧"});

    let (st, _) = api(&mut parent, &s, post.clone(), "/api/v1/leave", &body, None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "no CSRF header");
    let (st, v) = api(
        &mut parent,
        &s,
        post.clone(),
        "/api/v1/leave",
        &json!({"span": 3}),
        Some(&csrf),
    )
    .await;
    assert_eq!(
        (st, v["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("bad_request"))
    );
    let mut week = body.clone();
    week["span"] = json!("week");
    let (st, v) = api(
        &mut parent,
        &s,
        post.clone(),
        "/api/v1/leave",
        &week,
        Some(&csrf),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["message"].as_str().unwrap().contains("请假时长"));
    let (st, first) = api(
        &mut parent,
        &s,
        post.clone(),
        "/api/v1/leave",
        &body,
        Some(&csrf),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{first}");
    let id = first["id"].as_i64().unwrap();
    assert_eq!(
        (first["status"].clone(), first["span"].clone()),
        (json!("pending"), json!("days"))
    );
    assert_eq!(first["may_cancel"], json!(true));
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
    let (st, _) = api(
        &mut parent,
        &s,
        post.clone(),
        "/api/v1/leave",
        &body,
        Some(&csrf),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "the same day again");
    let second_body = json!({"student_id": s.class1[0].to_string(), "kind": "personal", "span": "morning",
                             "date": d2, "reason": "看牙"});
    let (st, second) = api(
        &mut parent,
        &s,
        post.clone(),
        "/api/v1/leave",
        &second_body,
        Some(&csrf),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let second = second["id"].as_i64().unwrap();
    let others = json!({"student_id": s.class2[0], "kind": "sick", "span": "days",
                        "start_date": d1, "end_date": d1, "reason": "x"});
    let (st, _) = api(
        &mut parent,
        &s,
        post.clone(),
        "/api/v1/leave",
        &others,
        Some(&csrf),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "another family's child");

    // Who sees what.
    let (_, mine) = get_json(&mut parent, &s, "/api/v1/leave").await;
    assert_eq!((ids(&mine).len(), mine["total"].clone()), (2, json!(2)));
    let mut head = signed_in(&app, &s, "head1").await;
    let (st, list) = get_json(&mut head, &s, "/api/v1/leave").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(ids(&list).len(), 2);
    let (_, page) = get_json(&mut head, &s, "/api/v1/leave?per_page=1&page=2").await;
    assert_eq!((ids(&page).len(), page["total"].clone()), (1, json!(2)));
    let (_, none) = get_json(&mut head, &s, "/api/v1/leave?status=approved").await;
    assert!(ids(&none).is_empty());
    let (_, by_day) = get_json(&mut head, &s, &format!("/api/v1/leave?from={d2}&to={d2}")).await;
    assert_eq!(ids(&by_day), [second]);
    let (_, other_class) = get_json(
        &mut head,
        &s,
        &format!("/api/v1/leave?class={}", s.classes[1]),
    )
    .await;
    assert!(ids(&other_class).is_empty());
    for bad in ["status=done", "from=2026-13-01", "per_page=0", "class=x"] {
        let (st, v) = get_json(&mut head, &s, &format!("/api/v1/leave?{bad}")).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(v["message"].is_string());
    }
    let mut leader = signed_in(&app, &s, "leader").await;
    assert_eq!(
        ids(&get_json(&mut leader, &s, "/api/v1/leave").await.1).len(),
        2
    );
    let mut head2 = signed_in(&app, &s, "head2").await;
    assert!(ids(&get_json(&mut head2, &s, "/api/v1/leave").await.1).is_empty());
    assert_eq!(
        get_json(&mut head2, &s, &format!("/api/v1/leave/{id}"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let mut parent2 = signed_in(&app, &s, "parent2").await;
    assert!(ids(&get_json(&mut parent2, &s, "/api/v1/leave").await.1).is_empty());
    assert_eq!(
        get_json(&mut parent2, &s, &format!("/api/v1/leave/{id}"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let mut subject = signed_in(&app, &s, "subject").await;
    assert_eq!(
        get_json(&mut subject, &s, "/api/v1/leave").await.0,
        StatusCode::FORBIDDEN
    );

    // Decisions: not the parent's, not another class's head teacher's.
    let approve = format!("/api/v1/leave/{id}/approve");
    let (st, v) = api(
        &mut parent,
        &s,
        post.clone(),
        &approve,
        &json!({}),
        Some(&csrf),
    )
    .await;
    assert_eq!(
        (st, v["code"].clone()),
        (StatusCode::FORBIDDEN, json!("forbidden"))
    );
    let csrf2 = token(&mut head2, &s).await;
    let (st, _) = api(
        &mut head2,
        &s,
        post.clone(),
        &approve,
        &json!({}),
        Some(&csrf2),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let head_csrf = token(&mut head, &s).await;
    let (st, _) = api(&mut head, &s, post.clone(), &approve, &json!({}), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "no CSRF header");
    let (st, _) = api(
        &mut head,
        &s,
        post.clone(),
        &format!("/api/v1/leave/{id}/bless"),
        &json!({}),
        Some(&head_csrf),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, done) = api(
        &mut head,
        &s,
        post.clone(),
        &approve,
        &json!({"note": "注意休息"}),
        Some(&head_csrf),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["status"], json!("approved"));
    assert_eq!(done["approvals"][0]["note"], json!("注意休息"));
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
    let (st, _) = api(
        &mut head,
        &s,
        post.clone(),
        &approve,
        &json!({}),
        Some(&head_csrf),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (_, approved) = get_json(&mut head, &s, "/api/v1/leave?status=approved").await;
    assert_eq!(ids(&approved), [id]);

    // The parent cancels the second; the head teacher cannot, nor approve it afterwards.
    let cancel = format!("/api/v1/leave/{second}/cancel");
    let (st, _) = api(
        &mut head,
        &s,
        post.clone(),
        &cancel,
        &json!({}),
        Some(&head_csrf),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = api(
        &mut parent,
        &s,
        post.clone(),
        &cancel,
        &json!({}),
        Some(&csrf),
    )
    .await;
    assert_eq!(
        (st, v["status"].clone()),
        (StatusCode::OK, json!("cancelled"))
    );
    let (st, _) = api(
        &mut head,
        &s,
        post.clone(),
        &format!("/api/v1/leave/{second}/approve"),
        &json!({}),
        Some(&head_csrf),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);

    // Early return of leave in progress.
    let running = json!({"student_id": s.class1[0], "kind": "sick", "span": "time",
                         "starts_at": format!("{yesterday}T08:00"), "ends_at": format!("{d1}T07:00"), "reason": "住院"});
    let (st, v) = api(
        &mut parent,
        &s,
        post.clone(),
        "/api/v1/leave",
        &running,
        Some(&csrf),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let third = v["id"].as_i64().unwrap();
    let (st, _) = api(
        &mut head,
        &s,
        post.clone(),
        &format!("/api/v1/leave/{third}/approve"),
        &json!({}),
        Some(&head_csrf),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = api(
        &mut parent,
        &s,
        post.clone(),
        &format!("/api/v1/leave/{third}/return"),
        &json!({}),
        Some(&csrf),
    )
    .await;
    assert_eq!(
        (st, v["status"].clone()),
        (StatusCode::OK, json!("returned"))
    );

    // Only a guardian adds the photo, to an open request.
    let photo = |v: &Visitor<'_>, id: i64, csrf: &str| {
        let req = app
            .http
            .put(app.url(&format!("/api/v1/leave/{id}/photo")))
            .header("host", s.host())
            .header(
                "cookie",
                format!(
                    "campus_session={}",
                    v.cookie(&s.host(), "campus_session").unwrap()
                ),
            )
            .header("x-csrf-token", csrf.to_owned())
            .body(PNG.to_vec());
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(photo(&head, id, &head_csrf).await, StatusCode::FORBIDDEN);
    let csrf_p2 = token(&mut parent2, &s).await;
    assert_eq!(photo(&parent2, id, &csrf_p2).await, StatusCode::NOT_FOUND);
    assert_eq!(
        photo(&parent, second, &csrf).await,
        StatusCode::CONFLICT,
        "cancelled"
    );
    assert_eq!(photo(&parent, id, &csrf).await, StatusCode::OK);
    let (_, v) = get_json(&mut head, &s, &format!("/api/v1/leave/{id}")).await;
    assert_eq!(v["photo_type"], json!("image/png"));
    assert_eq!(
        head.get(&s.host(), &format!("/leave/{id}/photo"))
            .await
            .status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn leave_json_api_of_one_school_means_nothing_at_another() {
    let app = TestApp::spawn().await;
    let a = school(&app, "leave-api-a", "lja").await;
    let b = school(&app, "leave-api-b", "ljb").await;
    // A's head teacher is also a parent (of class 2's first pupil) at B.
    let account: i64 = sqlx::query_scalar("select id from public.accounts where username = $1")
        .bind(a.login("head1"))
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
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
    let d1 = day(&app, 1).await;
    let mut pa = signed_in(&app, &a, "parent1").await;
    let id_a = id_of(
        &ask_span(
            &mut pa,
            &a,
            a.class1[0],
            &[("span", "days"), ("start_date", &d1), ("end_date", &d1)],
        )
        .await,
    );
    let mut pb = signed_in(&app, &b, "parent1").await;
    let id_b = id_of(
        &ask_span(
            &mut pb,
            &b,
            b.class1[0],
            &[("span", "days"), ("start_date", &d1), ("end_date", &d1)],
        )
        .await,
    );
    assert_eq!(id_a, id_b);

    let mut head = signed_in(&app, &a, "head1").await;
    assert_eq!(
        ids(&get_json(&mut head, &a, "/api/v1/leave").await.1),
        [id_a]
    );
    // A's session cookie is no session at B's host, for any of the new endpoints.
    let cookie = head.cookie(&a.host(), "campus_session").unwrap();
    let mut thief = Visitor::new(&app);
    thief.set_cookie(&b.host(), "campus_session", &cookie);
    let csrf_a = token(&mut head, &a).await;
    let post = reqwest::Method::POST;
    for (method, path) in [
        (reqwest::Method::GET, "/api/v1/leave".to_owned()),
        (reqwest::Method::GET, format!("/api/v1/leave/{id_b}")),
        (post.clone(), "/api/v1/leave".to_owned()),
        (post.clone(), format!("/api/v1/leave/{id_b}/approve")),
        (reqwest::Method::PUT, format!("/api/v1/leave/{id_b}/photo")),
        (reqwest::Method::GET, format!("/leave/{id_b}/photo")),
    ] {
        let (st, v) = api(&mut thief, &b, method, &path, &json!({}), Some(&csrf_a)).await;
        assert!(
            st == StatusCode::SEE_OTHER || st == StatusCode::UNAUTHORIZED,
            "{path}: {st}"
        );
        assert!(v.is_null(), "{path}: {v}");
    }

    // Signed in at B, where they are only a parent: A's ids name B's requests, which are
    // not theirs.
    assert_eq!(
        head.sign_in(&b.host(), &a.login("head1"), crate::attendance::PW)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let csrf_b = token(&mut head, &b).await;
    assert!(ids(&get_json(&mut head, &b, "/api/v1/leave").await.1).is_empty());
    assert_eq!(
        get_json(&mut head, &b, &format!("/api/v1/leave/{id_a}"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    for action in ["approve", "reject", "cancel", "return"] {
        let (st, _) = api(
            &mut head,
            &b,
            post.clone(),
            &format!("/api/v1/leave/{id_a}/{action}"),
            &json!({}),
            Some(&csrf_b),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{action}");
    }
    let resp = app
        .http
        .put(app.url(&format!("/api/v1/leave/{id_a}/photo")))
        .header("host", b.host())
        .header(
            "cookie",
            format!(
                "campus_session={}",
                head.cookie(&b.host(), "campus_session").unwrap()
            ),
        )
        .header("x-csrf-token", csrf_b.clone())
        .body(PNG.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // Asking at B for A's pupil id names B's pupil, who is not their child.
    let body = json!({"student_id": a.class1[0], "kind": "sick", "span": "days", "start_date": d1, "end_date": d1, "reason": "x"});
    let (st, _) = api(
        &mut head,
        &b,
        post.clone(),
        "/api/v1/leave",
        &body,
        Some(&csrf_b),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(status(&app, &b, id_b).await, "pending");
    assert_eq!(
        scalar(
            &app,
            &b.tenant,
            "select count(*) from leave_requests where photo_key is not null or id > $1",
            id_b
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

    // At A the same person approves A's request through the API; B's stays pending.
    let (st, v) = api(
        &mut head,
        &a,
        post.clone(),
        &format!("/api/v1/leave/{id_a}/approve"),
        &json!({}),
        Some(&csrf_a),
    )
    .await;
    assert_eq!(
        (st, v["status"].clone()),
        (StatusCode::OK, json!("approved"))
    );
    assert_eq!(status(&app, &b, id_b).await, "pending");
    app.stop().await;
}

#[tokio::test]
async fn head_teachers_overview_shows_pending_first_then_todays_leave() {
    let app = TestApp::spawn().await;
    let s = school(&app, "leave-overview", "lv").await;
    let (past, today, d3) = (day(&app, -3).await, day(&app, 0).await, day(&app, 3).await);
    let mut parent = signed_in(&app, &s, "parent1").await;
    let mut head = signed_in(&app, &s, "head1").await;
    let pupil = s.class1[0];
    let old = id_of(
        &ask_span(
            &mut parent,
            &s,
            pupil,
            &[("span", "days"), ("start_date", &past), ("end_date", &past)],
        )
        .await,
    );
    let now = id_of(
        &ask_span(
            &mut parent,
            &s,
            pupil,
            &[
                ("span", "days"),
                ("start_date", &today),
                ("end_date", &today),
            ],
        )
        .await,
    );
    for id in [old, now] {
        assert_eq!(
            act(&mut head, &s, id, "approve").await.status(),
            StatusCode::SEE_OTHER
        );
    }
    let pending = id_of(
        &ask_span(
            &mut parent,
            &s,
            pupil,
            &[("span", "morning"), ("date", &d3)],
        )
        .await,
    );

    let page = head.get(&s.host(), "/leave").await.text().await.unwrap();
    let at = |id: i64| page.find(&format!("href=\"/leave/{id}\""));
    let (p, t) = (
        page.find("id=\"leave-pending\"").unwrap(),
        page.find("id=\"leave-today\"").unwrap(),
    );
    assert!(p < t, "pending first");
    assert!(at(pending).is_some_and(|i| p < i && i < t), "{page}");
    assert!(at(now).is_some_and(|i| i > t), "today's approved leave");
    assert!(at(old).is_none(), "past leave is not in the overview");
    assert!(page.contains("上午"));
    let mut other = signed_in(&app, &s, "head2").await;
    let page = other.get(&s.host(), "/leave").await.text().await.unwrap();
    assert!(
        !page.contains(&format!("href=\"/leave/{now}\""))
            && !page.contains(&format!("href=\"/leave/{pending}\""))
    );
    let family = parent.get(&s.host(), "/leave").await.text().await.unwrap();
    assert!([old, now, pending]
        .iter()
        .all(|id| family.contains(&format!("href=\"/leave/{id}\""))));
    app.stop().await;
}
