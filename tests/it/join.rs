//! Joining a school by link or QR code: applications through the public form, review by the
//! school's administrator (pages and JSON API), what approval creates (account, membership,
//! guardian and pupil link, staff row), refusals that write nothing, isolation between
//! schools, and the single-use onboarding invitation.

use campus_tenant::Tenant;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{hidden_field, person, TestApp, Visitor, BASE};

const PW: &str = "campus2026";
const PARENT_PW: &str = "jiazhang2026";

fn host(slug: &str) -> String {
    TestApp::school_host(slug)
}

/// An app with an SMS sink (codes are really texted) and room for the extra form steps
/// the code adds (the per-address form limit has tests of its own).
async fn app() -> TestApp {
    TestApp::spawn_with_sms(|c| c.form_requests_per_minute = 6000).await
}

/// Onboards a school with one class holding `pupils`; returns the school, the class id and
/// the pupils' ids in order.
async fn school(app: &TestApp, slug: &str, name: &str, pupils: &[&str]) -> (Tenant, i64, Vec<i64>) {
    let t = app.onboard(slug, name).await.tenant;
    let mut tx = app.services.db.school(&t).await.unwrap();
    sqlx::query("insert into grades (level, name) values (1, '一年级')")
        .execute(&mut *tx)
        .await
        .unwrap();
    let class: i64 = sqlx::query_scalar(
        "insert into classes (grade_id, number, name) select id, 1, '一年级（1）班' from grades returning id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let mut ids = Vec::new();
    for (i, p) in pupils.iter().enumerate() {
        ids.push(
            sqlx::query_scalar(
                "insert into students (student_no, name, class_id) values ($1, $2, $3) returning id",
            )
            .bind(format!("{slug}-{i}"))
            .bind(p)
            .bind(class)
            .fetch_one(&mut *tx)
            .await
            .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    (t, class, ids)
}

/// A signed-in visitor holding `roles` at the school.
async fn member<'a>(app: &'a TestApp, t: &Tenant, username: &str, roles: &[&str]) -> Visitor<'a> {
    person(&app.services, username, "审核老师", PW, &[(t, roles)]).await;
    let mut v = Visitor::new(app);
    let r = v.sign_in(&host(t.slug.as_str()), username, PW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{username} signs in");
    v
}

/// The token of the school's `kind` link as shown on the review page.
async fn link(admin: &mut Visitor<'_>, slug: &str, kind: &str) -> String {
    let page = admin
        .get(&host(slug), "/admin/join")
        .await
        .text()
        .await
        .unwrap();
    let at = page
        .find(&format!("id=\"link-{kind}\""))
        .expect("link section");
    let prefix = format!("href=\"http://{slug}.{BASE}/join/");
    let start = at + page[at..].find(&prefix).expect("link URL") + prefix.len();
    page[start..start + 32].to_owned()
}

fn parent_form(name: &str, phone: &str, child: &str, class: i64) -> Vec<(&'static str, String)> {
    vec![
        ("name", name.into()),
        ("phone", phone.into()),
        ("password", PARENT_PW.into()),
        ("password2", PARENT_PW.into()),
        ("child_name", child.into()),
        ("class_id", class.to_string()),
        ("relation", "mother".into()),
    ]
}

/// Fills in the form behind `/join/{token}` like a browser (with its CSRF field): the
/// details and a code request, the code texted to the phone, then — if the phone has no
/// account yet — the password (the `password`/`password2` entries of `fields`). Returns
/// the first response that is not a step forward. Afterwards the code requests are aged,
/// so the next application is not held up by the per-phone limits.
async fn apply(
    v: &mut Visitor<'_>,
    slug: &str,
    token: &str,
    fields: &[(&'static str, String)],
) -> reqwest::Response {
    let r = apply_steps(v, slug, token, fields).await;
    v.app().age_code_requests().await;
    r
}

async fn apply_steps(
    v: &mut Visitor<'_>,
    slug: &str,
    token: &str,
    fields: &[(&'static str, String)],
) -> reqwest::Response {
    let path = format!("/join/{token}");
    let h = host(slug);
    let details: Vec<(&str, &str)> = fields
        .iter()
        .filter(|(k, _)| !k.starts_with("password"))
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let csrf = v.csrf(&h, &path).await;
    let mut form = details.clone();
    form.extend([("csrf", csrf.as_str()), ("action", "send")]);
    let r = v.post(&h, &path, &form).await;
    if r.status() != StatusCode::OK {
        return r;
    }
    let page = r.text().await.unwrap();
    let code = v.app().code_for(&field("phone"));
    let csrf = hidden_field(&page, "csrf").unwrap();
    let mut form = details.clone();
    form.extend([
        ("csrf", csrf.as_str()),
        ("action", "verify"),
        ("code", code.as_str()),
    ]);
    let r = v.post(&h, &path, &form).await;
    if r.status() != StatusCode::OK {
        return r;
    }
    let page = r.text().await.unwrap();
    let Some(proof) = hidden_field(&page, "proof") else {
        // The phone has an account: this is already the page of the stored application.
        return http::Response::builder()
            .status(StatusCode::OK)
            .body(page)
            .unwrap()
            .into();
    };
    let csrf = hidden_field(&page, "csrf").unwrap();
    let (password, password2) = (field("password"), field("password2"));
    let mut form = details.clone();
    form.extend([
        ("csrf", csrf.as_str()),
        ("action", "password"),
        ("proof", proof.as_str()),
        ("password", password.as_str()),
        ("password2", password2.as_str()),
    ]);
    v.post(&h, &path, &form).await
}

/// The status-page path in a "submitted" page.
fn status_path(page: &str) -> String {
    let start = page.find("href=\"/join/status/").expect("status link") + "href=\"".len();
    page[start..start + "/join/status/".len() + 32].to_owned()
}

async fn request_id(app: &TestApp, t: &Tenant, phone: &str) -> i64 {
    let mut tx = app.services.db.school(t).await.unwrap();
    let id = sqlx::query_scalar(
        "select id from join_requests where phone = $1 order by id desc limit 1",
    )
    .bind(phone)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

/// One value from the school's schema.
async fn school_scalar<T>(app: &TestApp, t: &Tenant, sql: &str, bind: i64) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    let mut tx = app.services.db.school(t).await.unwrap();
    let v = sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    v
}

async fn count_in_school(app: &TestApp, t: &Tenant, table: &str) -> i64 {
    school_scalar(
        app,
        t,
        &format!("select count(*) from {table} where $1 = $1"),
        0,
    )
    .await
}

async fn account_by_phone(app: &TestApp, phone: &str) -> Option<i64> {
    sqlx::query_scalar("select id from public.accounts where phone = $1")
        .bind(phone)
        .fetch_optional(&app.services.pool)
        .await
        .unwrap()
}

async fn membership(
    app: &TestApp,
    account: i64,
    t: &Tenant,
) -> (Vec<String>, Option<i64>, Option<i64>) {
    sqlx::query_as("select roles, guardian_id, staff_id from public.memberships where account_id = $1 and tenant_id = $2")
        .bind(account)
        .bind(t.id.0)
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
}

/// A JSON API call with the visitor's session (and, for changes, its CSRF token).
async fn api(
    app: &TestApp,
    v: &mut Visitor<'_>,
    slug: &str,
    method: reqwest::Method,
    path: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let session = v.cookie(&host(slug), "campus_session").unwrap_or_default();
    let mut req = app
        .http
        .request(method, app.url(path))
        .header(reqwest::header::HOST, host(slug))
        .header(reqwest::header::COOKIE, format!("campus_session={session}"));
    if let Some(c) = csrf {
        req = req.header("x-csrf-token", c);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_parent_applies_is_approved_and_signs_in_linked_to_the_child() {
    let app = app().await;
    let (a, class, pupils) = school(&app, "school-a", "甲校", &["李小明", "赵小红"]).await;
    let mut admin = member(&app, &a, "a.admin", &["school_admin"]).await;
    let token = link(&mut admin, "school-a", "parent").await;

    // The review page shows both links with QR codes; a teacher may not see it.
    let page = admin.get(&host("school-a"), "/admin/join").await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert_eq!(page.matches("<svg class=\"qr\"").count(), 2, "two QR codes");
    assert!(page.contains("<path") && page.contains(&format!("/join/{token}")));
    let mut teacher = member(&app, &a, "a.teacher", &["teacher"]).await;
    let r = teacher.get(&host("school-a"), "/admin/join").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (status, _) = api(
        &app,
        &mut teacher,
        "school-a",
        reqwest::Method::GET,
        "/api/v1/join/requests",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The parent applies without signing in.
    let mut parent = Visitor::new(&app);
    let form = parent
        .get(&host("school-a"), &format!("/join/{token}"))
        .await;
    assert_eq!(form.status(), StatusCode::OK);
    let form = form.text().await.unwrap();
    assert!(
        form.contains("一年级（1）班") && form.contains("外婆"),
        "classes and relations offered"
    );
    let r = apply(
        &mut parent,
        "school-a",
        &token,
        &parent_form("李妈妈", "13912345678", "李小明", class),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let done = r.text().await.unwrap();
    assert!(done.contains("已提交，等待学校审核"), "{done}");
    let status = status_path(&done);
    let s = parent
        .get(&host("school-a"), &status)
        .await
        .text()
        .await
        .unwrap();
    assert!(s.contains("data-status=\"pending\">待审核<"), "{s}");
    assert_eq!(
        account_by_phone(&app, "13912345678").await,
        None,
        "no account before review"
    );

    // The administrator sees it with its pupil matched, and approves.
    let page = admin
        .get(&host("school-a"), "/admin/join")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("李妈妈") && page.contains("匹配学生") && page.contains("李小明"));
    assert!(
        page.contains("id=\"tab-pending\"")
            && page.contains("待审核 (<span class=\"count\">1</span>)")
    );
    let id = request_id(&app, &a, "13912345678").await;
    let csrf = admin.csrf(&host("school-a"), "/admin/join").await;
    let r = admin
        .post(
            &host("school-a"),
            &format!("/admin/join/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let s = parent
        .get(&host("school-a"), &status)
        .await
        .text()
        .await
        .unwrap();
    assert!(s.contains("data-status=\"approved\">成功加入<"), "{s}");

    // The parent signs in with the password they chose and acts as a parent here.
    let r = parent
        .sign_in(&host("school-a"), "13912345678", PARENT_PW)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let me = parent
        .get(&host("school-a"), "/me")
        .await
        .text()
        .await
        .unwrap();
    assert!(me.contains("<b id=\"acting-as\">家长</b>"), "{me}");
    let account = account_by_phone(&app, "13912345678").await.unwrap();
    let (roles, guardian, staff) = membership(&app, account, &a).await;
    assert_eq!(roles, ["parent"]);
    assert_eq!(staff, None);
    let guardian = guardian.expect("membership names the guardian row");
    let (child, relation): (i64, String) = {
        let mut tx = app.services.db.school(&a).await.unwrap();
        let row = sqlx::query_as(
            "select student_id, relation from student_guardians where guardian_id = $1",
        )
        .bind(guardian)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        row
    };
    assert_eq!((child, relation.as_str()), (pupils[0], "mother"));
    let phone: String = school_scalar(
        &app,
        &a,
        "select phone from guardians where id = $1",
        guardian,
    )
    .await;
    assert_eq!(phone, "13912345678");
    let hash: Option<String> = school_scalar(
        &app,
        &a,
        "select password_hash from join_requests where id = $1",
        id,
    )
    .await;
    assert_eq!(
        hash, None,
        "the password hash is dropped once the account exists"
    );
    let audited: i64 = school_scalar(
        &app,
        &a,
        "select count(*) from audit_log where action = 'join_approved' and subject = 'join:' || $1",
        id,
    )
    .await;
    assert_eq!(audited, 1);
    let events: i64 = sqlx::query_scalar(
        "select count(*) from public.auth_events where account_id = $1 and event = 'join_approved'",
    )
    .bind(account)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(events, 1);

    // Approving again (a retry) changes nothing.
    let r = admin
        .post(
            &host("school-a"),
            &format!("/admin/join/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(membership(&app, account, &a).await.0, ["parent"]);
    assert_eq!(count_in_school(&app, &a, "guardians").await, 1);
    assert_eq!(count_in_school(&app, &a, "student_guardians").await, 1);

    // A second child: the same account (its password proves it) and the same guardian row.
    let mut form = parent_form("李妈妈", "13912345678", "赵小红", class);
    form[3].1 = String::new();
    let r = apply(&mut parent, "school-a", &token, &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    let second = request_id(&app, &a, "13912345678").await;
    assert_ne!(second, id);
    let r = admin
        .post(
            &host("school-a"),
            &format!("/admin/join/{second}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        membership(&app, account, &a).await,
        (vec!["parent".to_owned()], Some(guardian), None)
    );
    let children: i64 = school_scalar(
        &app,
        &a,
        "select count(*) from student_guardians where guardian_id = $1",
        guardian,
    )
    .await;
    assert_eq!(children, 2);
    assert_eq!(count_in_school(&app, &a, "guardians").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_teacher_at_one_school_applies_as_a_parent_at_another_and_keeps_both_identities() {
    let app = app().await;
    let (a, _, _) = school(&app, "school-a", "甲校", &[]).await;
    let (b, class_b, pupils_b) = school(&app, "school-b", "乙校", &["王小宝"]).await;
    let hash = app.services.identity.hasher.hash(PW).await.unwrap();
    let teacher = campus_identity::account::ensure(
        &app.services.pool,
        &campus_identity::account::NewAccount {
            username: None,
            phone: Some("13800001111"),
            display_name: "王老师",
            password_hash: &hash,
            county_role: None,
        },
    )
    .await
    .unwrap();
    campus_identity::account::set_membership(
        &app.services.pool,
        teacher,
        a.id.0,
        &["teacher"],
        Some(7),
        None,
    )
    .await
    .unwrap();
    let mut admin_b = member(&app, &b, "b.admin", &["school_admin"]).await;
    let token = link(&mut admin_b, "school-b", "parent").await;

    // The phone has an account: once the applicant proves the phone with the code, the
    // application is linked to it; no password is asked or kept.
    let mut v = Visitor::new(&app);
    let mut form = parent_form("王老师", "13800001111", "王小宝", class_b);
    form[2].1 = String::new();
    form[3].1 = String::new();
    let r = apply(&mut v, "school-b", &token, &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("/join/status/"), "{page}");
    assert!(
        !page.contains("name=\"password\""),
        "no password asked: {page}"
    );
    let id = request_id(&app, &b, "13800001111").await;
    let stored: Option<String> = school_scalar(
        &app,
        &b,
        "select password_hash from join_requests where id = $1",
        id,
    )
    .await;
    assert_eq!(
        stored, None,
        "no new password is kept for an existing account"
    );

    // Approved through the API.
    let csrf = admin_b.csrf(&host("school-b"), "/admin/join").await;
    let (status, body) = api(
        &app,
        &mut admin_b,
        "school-b",
        reqwest::Method::GET,
        "/api/v1/join/requests",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["counts"]["pending"], 1);
    assert_eq!(body["requests"][0]["id"], id);
    assert_eq!(body["requests"][0]["existing_account"], true);
    assert!(body["requests"][0].get("password_hash").is_none());
    let path = format!("/api/v1/join/requests/{id}/approve");
    let (status, _) = api(
        &app,
        &mut admin_b,
        "school-b",
        reqwest::Method::POST,
        &path,
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF header");
    let (status, body) = api(
        &app,
        &mut admin_b,
        "school-b",
        reqwest::Method::POST,
        &path,
        Some(&csrf),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["request"]["status"], "approved");
    assert_eq!(body["request"]["student_id"], pupils_b[0]);
    assert_eq!(body["request"]["account_id"], teacher);

    // One account, an identity in each school.
    assert_eq!(
        membership(&app, teacher, &a).await,
        (vec!["teacher".to_owned()], None, Some(7))
    );
    let (roles_b, guardian_b, _) = membership(&app, teacher, &b).await;
    assert_eq!(roles_b, ["parent"]);
    assert!(guardian_b.is_some());
    let mut t = Visitor::new(&app);
    assert_eq!(
        t.sign_in(&host("school-a"), "13800001111", PW)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let me = t.get(&host("school-a"), "/me").await.text().await.unwrap();
    assert!(
        me.contains("<b id=\"acting-as\">教师</b>") && me.contains("乙校 · 家长"),
        "{me}"
    );
    assert_eq!(
        t.sign_in(&host("school-b"), "13800001111", PW)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let me = t.get(&host("school-b"), "/me").await.text().await.unwrap();
    assert!(me.contains("<b id=\"acting-as\">家长</b>"), "{me}");
    app.stop().await;
}

#[tokio::test]
async fn staff_are_rejected_with_a_reason_or_approved_with_the_chosen_roles() {
    let app = app().await;
    let (a, _, _) = school(&app, "school-a", "甲校", &[]).await;
    let mut admin = member(&app, &a, "a.admin", &["school_admin"]).await;
    let token = link(&mut admin, "school-a", "staff").await;
    let staff_form = |name: &str, phone: &str| {
        vec![
            ("name", name.to_owned()),
            ("phone", phone.to_owned()),
            ("password", PARENT_PW.to_owned()),
            ("password2", PARENT_PW.to_owned()),
            ("title", "教师".to_owned()),
            ("subject", "数学".to_owned()),
        ]
    };
    let mut v = Visitor::new(&app);
    let r = apply(
        &mut v,
        "school-a",
        &token,
        &staff_form("张冒名", "13700000001"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let status = status_path(&r.text().await.unwrap());
    let r = apply(
        &mut v,
        "school-a",
        &token,
        &staff_form("刘老师", "13700000002"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (rejected, approved) = (
        request_id(&app, &a, "13700000001").await,
        request_id(&app, &a, "13700000002").await,
    );
    let csrf = admin.csrf(&host("school-a"), "/admin/join").await;

    // A rejection needs a reason; the applicant sees it; nothing is created.
    let path = format!("/admin/join/{rejected}/reject");
    let r = admin
        .post(
            &host("school-a"),
            &path,
            &[("csrf", &csrf), ("reason", " ")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = admin
        .post(
            &host("school-a"),
            &path,
            &[("csrf", &csrf), ("reason", "本校没有这位老师")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let s = v
        .get(&host("school-a"), &status)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        s.contains("已拒绝") && s.contains("<span id=\"reject-reason\">本校没有这位老师</span>"),
        "{s}"
    );
    assert_eq!(account_by_phone(&app, "13700000001").await, None);
    assert_eq!(count_in_school(&app, &a, "staff").await, 0);
    let hash: Option<String> = school_scalar(
        &app,
        &a,
        "select password_hash from join_requests where id = $1",
        rejected,
    )
    .await;
    assert_eq!(hash, None);
    let audited: i64 = school_scalar(
        &app,
        &a,
        "select count(*) from audit_log where action = 'join_rejected' and subject = 'join:' || $1",
        rejected,
    )
    .await;
    assert_eq!(audited, 1);
    let r = admin
        .post(
            &host("school-a"),
            &format!("/admin/join/{rejected}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "a rejected request stays rejected"
    );

    // Only staff roles can be granted; the chosen ones are.
    let (code, _) = api(
        &app,
        &mut admin,
        "school-a",
        reqwest::Method::POST,
        &format!("/api/v1/join/requests/{approved}/approve"),
        Some(&csrf),
        Some(json!({"roles": ["teacher", "parent"]})),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count_in_school(&app, &a, "staff").await, 0);
    let r = admin
        .post(
            &host("school-a"),
            &format!("/admin/join/{approved}/approve"),
            &[
                ("csrf", &csrf),
                ("role.teacher", "on"),
                ("role.head_teacher", "on"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let account = account_by_phone(&app, "13700000002").await.unwrap();
    let (roles, _, staff) = membership(&app, account, &a).await;
    assert_eq!(roles, ["teacher", "head_teacher"]);
    let staff = staff.expect("membership names the staff row");
    let name: String = school_scalar(
        &app,
        &a,
        "select name || '/' || staff_no || '/' || phone from staff where id = $1",
        staff,
    )
    .await;
    assert_eq!(name, format!("刘老师/J{approved:05}/13700000002"));
    // The account side lost (as if the second step had failed): approving again repairs it
    // without a second staff row.
    sqlx::query("delete from public.memberships where account_id = $1")
        .bind(account)
        .execute(&app.services.pool)
        .await
        .unwrap();
    let (code, body) = api(
        &app,
        &mut admin,
        "school-a",
        reqwest::Method::POST,
        &format!("/api/v1/join/requests/{approved}/approve"),
        Some(&csrf),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["request"]["staff_id"], staff);
    assert_eq!(
        membership(&app, account, &a).await,
        (
            vec!["teacher".to_owned(), "head_teacher".to_owned()],
            None,
            Some(staff)
        )
    );
    assert_eq!(count_in_school(&app, &a, "staff").await, 1);
    let page = admin
        .get(&host("school-a"), "/admin/join?status=rejected")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("张冒名")
            && !page.contains("刘老师")
            && page.contains("已拒绝 (<span class=\"count\">1</span>)")
    );
    app.stop().await;
}

#[tokio::test]
async fn an_ambiguous_child_name_needs_the_reviewers_pick() {
    let app = app().await;
    let (a, class, pupils) = school(&app, "school-a", "甲校", &["王芳", "王芳", "陈晨"]).await;
    let mut admin = member(&app, &a, "a.admin", &["school_admin"]).await;
    let token = link(&mut admin, "school-a", "parent").await;
    let mut v = Visitor::new(&app);
    let r = apply(
        &mut v,
        "school-a",
        &token,
        &parent_form("王爸爸", "13600000001", "王芳", class),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let id = request_id(&app, &a, "13600000001").await;
    let csrf = admin.csrf(&host("school-a"), "/admin/join").await;

    let page = admin
        .get(&host("school-a"), "/admin/join")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("name=\"student_id\""),
        "the reviewer is asked to pick"
    );
    assert!(page.contains(&format!("<option value=\"{}\">王芳", pupils[0])));
    assert!(page.contains(&format!("<option value=\"{}\">王芳", pupils[1])));
    let r = admin
        .post(
            &host("school-a"),
            &format!("/admin/join/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let (code, body) = api(
        &app,
        &mut admin,
        "school-a",
        reqwest::Method::POST,
        &format!("/api/v1/join/requests/{id}/approve"),
        Some(&csrf),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(body["code"], "choose_student");
    assert_eq!(body["candidates"].as_array().unwrap().len(), 2);
    let still: String = school_scalar(
        &app,
        &a,
        "select status from join_requests where id = $1",
        id,
    )
    .await;
    assert_eq!(still, "pending");
    assert_eq!(count_in_school(&app, &a, "guardians").await, 0);
    assert_eq!(account_by_phone(&app, "13600000001").await, None);

    let picked = pupils[1].to_string();
    let r = admin
        .post(
            &host("school-a"),
            &format!("/admin/join/{id}/approve"),
            &[("csrf", &csrf), ("student_id", &picked)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let linked: i64 = school_scalar(
        &app,
        &a,
        "select sg.student_id from join_requests r join student_guardians sg on sg.guardian_id = r.guardian_id where r.id = $1",
        id,
    )
    .await;
    assert_eq!(linked, pupils[1]);
    app.stop().await;
}

#[tokio::test]
async fn bad_applications_duplicates_and_dead_links_are_refused() {
    let app = app().await;
    let (a, class, _) = school(&app, "school-a", "甲校", &["李小明"]).await;
    let mut admin = member(&app, &a, "a.admin", &["school_admin"]).await;
    let token = link(&mut admin, "school-a", "parent").await;
    let mut v = Visitor::new(&app);
    let good = parent_form("李妈妈", "13912345678", "李小明", class);
    let with = |field: &str, value: &str| {
        let mut f = good.clone();
        f.iter_mut().find(|(k, _)| *k == field).unwrap().1 = value.to_owned();
        f
    };
    for (form, message) in [
        (with("phone", "12345"), "手机号格式不正确"),
        (with("password", "short1"), "密码不符合要求"),
        (with("password2", "jiazhang2027"), "两次输入的密码不一致"),
        (with("child_name", ""), "请填写孩子的姓名"),
        (with("class_id", ""), "请选择孩子所在的班级"),
        (with("class_id", "999999"), "所选班级不存在"),
        (with("relation", "uncle"), "请选择您与孩子的关系"),
        (with("name", "  "), "请填写姓名"),
    ] {
        let r = apply(&mut v, "school-a", &token, &form).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{message}");
        let page = r.text().await.unwrap();
        assert!(page.contains(message), "{message}: {page}");
        assert!(
            page.contains("value=\"李妈妈\"") || message == "请填写姓名",
            "the form keeps what was typed"
        );
    }
    // Without the CSRF cookie's twin in the form: refused.
    let fields: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = v
        .post(&host("school-a"), &format!("/join/{token}"), &fields)
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        count_in_school(&app, &a, "join_requests").await,
        0,
        "nothing was written"
    );
    assert_eq!(account_by_phone(&app, "13912345678").await, None);

    // A second application while the first waits: 409.
    assert_eq!(
        apply(&mut v, "school-a", &token, &good).await.status(),
        StatusCode::OK
    );
    let r = apply(&mut v, "school-a", &token, &good).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("请勿重复提交"));
    assert_eq!(count_in_school(&app, &a, "join_requests").await, 1);

    // Unknown tokens and rotated links: 404.
    let r = v
        .get(&host("school-a"), "/join/0123456789abcdef0123456789abcdef")
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        v.get(&host("school-a"), "/join/not-a-token").await.status(),
        StatusCode::NOT_FOUND
    );
    let csrf_form = v.csrf(&host("school-a"), &format!("/join/{token}")).await;
    let csrf = admin.csrf(&host("school-a"), "/admin/join").await;
    let r = admin
        .post(
            &host("school-a"),
            "/admin/join/links/parent/rotate",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = v.get(&host("school-a"), &format!("/join/{token}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("加入链接无效"));
    let late_fields = with("phone", "13912345679");
    let mut late: Vec<(&str, &str)> = late_fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    late.push(("csrf", &csrf_form));
    let r = v
        .post(&host("school-a"), &format!("/join/{token}"), &late)
        .await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "a form from the old link is refused"
    );
    let fresh = link(&mut admin, "school-a", "parent").await;
    assert_ne!(fresh, token);
    assert_eq!(
        v.get(&host("school-a"), &format!("/join/{fresh}"))
            .await
            .status(),
        StatusCode::OK
    );
    let active: i64 = school_scalar(
        &app,
        &a,
        "select count(*) from join_links where kind = 'parent' and active and $1 = $1",
        0,
    )
    .await;
    assert_eq!(active, 1);
    assert_eq!(count_in_school(&app, &a, "join_requests").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn one_schools_administrator_cannot_touch_another_schools_requests() {
    let app = app().await;
    let (a, class_a, _) = school(&app, "school-a", "甲校", &["李小明"]).await;
    let (b, _, _) = school(&app, "school-b", "乙校", &[]).await;
    let mut admin_a = member(&app, &a, "a.admin", &["school_admin"]).await;
    let mut admin_b = member(&app, &b, "b.admin", &["school_admin"]).await;
    let token_a = link(&mut admin_a, "school-a", "parent").await;
    let mut v = Visitor::new(&app);
    let r = apply(
        &mut v,
        "school-a",
        &token_a,
        &parent_form("李妈妈", "13912345678", "李小明", class_a),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let id = request_id(&app, &a, "13912345678").await;
    assert_eq!(id, 1, "request ids are per school");

    // B's administrator: A's request is not in B's list and cannot be decided at B.
    let csrf_b = admin_b.csrf(&host("school-b"), "/admin/join").await;
    let (code, body) = api(
        &app,
        &mut admin_b,
        "school-b",
        reqwest::Method::GET,
        "/api/v1/join/requests",
        None,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["requests"], json!([]));
    assert_eq!(body["counts"]["pending"], 0);
    let page = admin_b
        .get(&host("school-b"), "/admin/join")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("李妈妈"));
    let (code, _) = api(
        &app,
        &mut admin_b,
        "school-b",
        reqwest::Method::GET,
        &format!("/api/v1/join/requests/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    for action in ["approve", "reject"] {
        let (code, _) = api(
            &app,
            &mut admin_b,
            "school-b",
            reqwest::Method::POST,
            &format!("/api/v1/join/requests/{id}/{action}"),
            Some(&csrf_b),
            Some(json!({"reason": "不是本校"})),
        )
        .await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{action} at B");
        let r = admin_b
            .post(
                &host("school-b"),
                &format!("/admin/join/{id}/{action}"),
                &[("csrf", &csrf_b), ("reason", "不是本校")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{action} page at B");
    }
    // B's session is nothing at A; B's administrator has no identity at A.
    let session_b = admin_b.cookie(&host("school-b"), "campus_session").unwrap();
    admin_b.set_cookie(&host("school-a"), "campus_session", &session_b);
    let (code, _) = api(
        &app,
        &mut admin_b,
        "school-a",
        reqwest::Method::GET,
        "/api/v1/join/requests",
        None,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let mut b_at_a = Visitor::new(&app);
    assert_eq!(
        b_at_a
            .sign_in(&host("school-a"), "b.admin", PW)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    let status: String = school_scalar(
        &app,
        &a,
        "select status from join_requests where id = $1",
        id,
    )
    .await;
    assert_eq!(status, "pending", "A's request is untouched");
    assert_eq!(count_in_school(&app, &a, "guardians").await, 0);
    assert_eq!(account_by_phone(&app, "13912345678").await, None);
    let audit_b: i64 = count_in_school(&app, &b, "audit_log").await;
    assert_eq!(audit_b, 0);

    // A's link on B's host is unknown there.
    assert_eq!(
        v.get(&host("school-b"), &format!("/join/{token_a}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let mut form: Vec<(&str, &str)> = vec![("name", "李妈妈"), ("phone", "13912345670")];
    form.push(("csrf", "x"));
    assert_eq!(
        v.post(&host("school-b"), &format!("/join/{token_a}"), &form)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(count_in_school(&app, &b, "join_requests").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn the_onboarding_invitation_works_once_only_at_its_school_and_expires() {
    let app = app().await;
    let a = app.onboard("school-a", "甲校").await;
    app.onboard("school-b", "乙校").await;
    let url = a
        .invitation
        .expect("onboarding invites the first admin")
        .url;
    let prefix = format!("http://school-a.{BASE}/invite/");
    assert!(url.starts_with(&prefix), "{url}");
    let path = url
        .trim_start_matches(&format!("http://school-a.{BASE}"))
        .to_owned();

    let mut v = Visitor::new(&app);
    // The wrong school's host does not know the invitation.
    assert_eq!(
        v.get(&host("school-b"), &path).await.status(),
        StatusCode::NOT_FOUND
    );
    let csrf = v.csrf(&host("school-a"), &path).await;
    let fields = |password: &str, csrf: &str| {
        vec![
            ("display_name", "张校长".to_owned()),
            ("login", "zhang.admin".to_owned()),
            ("password", password.to_owned()),
            ("password2", password.to_owned()),
            ("csrf", csrf.to_owned()),
        ]
    };
    v.set_cookie(&host("school-b"), "campus_invite_csrf", &csrf);
    let r = post(&mut v, &path, host("school-b"), fields(PW, &csrf)).await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "not usable on another school's host"
    );
    let r = post(&mut v, &path, host("school-a"), fields("weak", &csrf)).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("密码不符合要求"));
    let r = post(&mut v, &path, host("school-a"), fields(PW, "")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF field");
    let csrf = v.csrf(&host("school-a"), &path).await;
    let used: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "select accepted_at from public.tenant_invitations where tenant_id = $1",
    )
    .bind(a.tenant.id.0)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(used, None, "refusals do not use up the invitation");

    let r = post(&mut v, &path, host("school-a"), fields(PW, &csrf)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("设置完成"));
    let mut admin = Visitor::new(&app);
    assert_eq!(
        admin
            .sign_in(&host("school-a"), "zhang.admin", PW)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        admin.get(&host("school-a"), "/admin/join").await.status(),
        StatusCode::OK,
        "the new admin reviews"
    );
    let account: i64 =
        sqlx::query_scalar("select id from public.accounts where username = 'zhang.admin'")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(
        membership(&app, account, &a.tenant).await.0,
        ["school_admin"]
    );

    // Second use: gone.
    let r = v.get(&host("school-a"), &path).await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert!(r.text().await.unwrap().contains("邀请链接已使用"));
    let r = post(&mut v, &path, host("school-a"), fields(PW, &csrf)).await;
    assert_eq!(r.status(), StatusCode::GONE);

    // An expired invitation: gone, with a message saying so.
    let inv = app
        .services
        .platform
        .new_admin_invitation(&campus_tenant::Slug::parse("school-b").unwrap(), "test")
        .await
        .unwrap();
    sqlx::query("update public.tenant_invitations set expires_at = now() - interval '1 minute' where accepted_at is null")
        .execute(&app.services.pool)
        .await
        .unwrap();
    let path_b = inv
        .url
        .trim_start_matches(&format!("http://school-b.{BASE}"))
        .to_owned();
    assert!(path_b.starts_with("/invite/"));
    let r = v.get(&host("school-b"), &path_b).await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert!(r.text().await.unwrap().contains("邀请链接已过期"));
    let members: i64 =
        sqlx::query_scalar("select count(*) from public.memberships where tenant_id = $1")
            .bind(inv_tenant(&app, "school-b").await)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(members, 0);
    app.stop().await;
}

async fn inv_tenant(app: &TestApp, slug: &str) -> i64 {
    sqlx::query_scalar("select id from public.tenants where slug = $1")
        .bind(slug)
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
}

async fn post(
    v: &mut Visitor<'_>,
    path: &str,
    host: String,
    fields: Vec<(&'static str, String)>,
) -> reqwest::Response {
    let form: Vec<(&str, &str)> = fields.iter().map(|(k, x)| (*k, x.as_str())).collect();
    v.post(&host, path, &form).await
}
