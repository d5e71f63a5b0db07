//! Proven phones: every account is owned by its person. SMS one-time codes (expiry, tries,
//! limits per phone and per address), invitations instead of admin-chosen passwords
//! (accepted with a code or signed in by a proven owner), joining without revealing whether
//! a phone has an account, resetting a password by code (which ends every session), the
//! county's invitation asking a code for a phone that has an account — and that one
//! school's admin can neither see nor decide another school's invitations.

use campus_tenant::Tenant;
use reqwest::StatusCode;

use crate::helpers::{hidden_field, person, TestApp, Visitor, BASE};

const PW: &str = "campus2026";

fn host(slug: &str) -> String {
    TestApp::school_host(slug)
}

async fn app() -> TestApp {
    TestApp::spawn_with_sms(|c| c.form_requests_per_minute = 6000).await
}

async fn signed_in<'a>(app: &'a TestApp, slug: &str, login: &str, password: &str) -> Visitor<'a> {
    let mut v = Visitor::new(app);
    let r = v.sign_in(&host(slug), login, password).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{login} signs in at {slug}"
    );
    v
}

/// A form POST carrying the CSRF field of the page at `page`.
async fn post_from(
    v: &mut Visitor<'_>,
    slug: &str,
    page: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = v.csrf(&host(slug), page).await;
    let mut fields = form.to_vec();
    fields.push(("csrf", &csrf));
    v.post(&host(slug), path, &fields).await
}

/// An account with a phone (and a password someone chose), member of `school` as `roles`.
async fn phone_account(
    app: &TestApp,
    phone: &str,
    password: &str,
    school: &Tenant,
    roles: &[&str],
) -> i64 {
    use campus_identity::account::{self, NewAccount};
    let hash = app.services.identity.hasher.hash(password).await.unwrap();
    let id = account::ensure(
        &app.services.pool,
        &NewAccount {
            username: None,
            phone: Some(phone),
            display_name: "某人",
            password_hash: &hash,
            county_role: None,
        },
    )
    .await
    .unwrap();
    account::set_membership(&app.services.pool, id, school.id.0, roles, None, None)
        .await
        .unwrap();
    id
}

async fn proven_at(app: &TestApp, phone: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
        "select phone_verified_at from public.accounts where phone = $1",
    )
    .bind(phone)
    .fetch_optional(&app.services.pool)
    .await
    .unwrap()
    .flatten()
}

async fn account_count(app: &TestApp, phone: &str) -> i64 {
    sqlx::query_scalar("select count(*) from public.accounts where phone = $1")
        .bind(phone)
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
}

/// The token of the school's staff join link.
async fn staff_link(admin: &mut Visitor<'_>, slug: &str) -> String {
    let page = admin
        .get(&host(slug), "/admin/join")
        .await
        .text()
        .await
        .unwrap();
    let at = page.find("id=\"link-staff\"").expect("link section");
    let prefix = format!("href=\"http://{slug}.{BASE}/join/");
    let start = at + page[at..].find(&prefix).expect("link URL") + prefix.len();
    page[start..start + 32].to_owned()
}

fn staff_fields<'a>(name: &'a str, phone: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![("name", name), ("phone", phone), ("title", "教师")]
}

/// One step of the join form: `extra` added to the details, with the page's CSRF field.
async fn join_step(
    v: &mut Visitor<'_>,
    slug: &str,
    token: &str,
    csrf: &str,
    details: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = details.to_vec();
    form.extend_from_slice(extra);
    form.push(("csrf", csrf));
    v.post(&host(slug), &format!("/join/{token}"), &form).await
}

/// The invitation link texted to `phone`, as a path with its query.
fn invitation_path(app: &TestApp, phone: &str) -> String {
    let text = app
        .sms
        .as_ref()
        .unwrap()
        .last_to(phone)
        .expect("a text")
        .text;
    let at = text.find("/invitation?t=").expect("an invitation link");
    text[at..at + "/invitation?t=".len() + 64].to_owned()
}

/// Page text with what differs between two visitors of the same form removed: the
/// CSRF values, and the phone as typed and masked.
fn normalised(page: &str, phone: &str) -> String {
    let mut out = page
        .replace(phone, "PHONE")
        .replace(&format!("{}****{}", &phone[..3], &phone[7..]), "MASKED");
    while let Some(csrf) = hidden_field(&out, "csrf") {
        out = out.replace(&format!("value=\"{csrf}\""), "value=CSRF");
    }
    out
}

#[tokio::test]
async fn an_admin_cannot_take_over_a_phone_and_the_person_joins_with_their_own_password() {
    let app = app().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
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
    const PHONE: &str = "13912340001";
    const CHOSEN_BY_A: &str = "Takeover2026";

    // A's admin adds the phone with a password of their choosing: only an invitation is
    // made; the password goes nowhere.
    let mut admin_a = signed_in(&app, "school-a", "admin.a", PW).await;
    let r = post_from(
        &mut admin_a,
        "school-a",
        "/admin/users",
        "/admin/users",
        &[
            ("display_name", "王老师"),
            ("login", PHONE),
            ("password", CHOSEN_BY_A),
            ("role", "teacher"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(account_count(&app, PHONE).await, 0, "no account is created");
    // B's admin adds the same phone (no password asked): again only an invitation.
    let mut admin_b = signed_in(&app, "school-b", "admin.b", PW).await;
    let r = post_from(
        &mut admin_b,
        "school-b",
        "/admin/users",
        "/admin/users",
        &[
            ("display_name", "王老师"),
            ("login", PHONE),
            ("role", "teacher"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // A's admin cannot sign in at B as that phone.
    let mut attacker = Visitor::new(&app);
    assert_eq!(
        attacker
            .sign_in(&host("school-b"), PHONE, CHOSEN_BY_A)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // The person's own join request at B: proves the phone, chooses a password.
    let token = staff_link(&mut admin_b, "school-b").await;
    let mut me = Visitor::new(&app);
    let details = staff_fields("王老师", PHONE);
    let csrf = me.csrf(&host("school-b"), &format!("/join/{token}")).await;
    let r = join_step(
        &mut me,
        "school-b",
        &token,
        &csrf,
        &details,
        &[("action", "send")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(
        !page.contains("已有平台账号") && !page.contains("已有账号"),
        "{page}"
    );
    let code = app.code_for(PHONE);
    let csrf = hidden_field(&page, "csrf").unwrap();
    let r = join_step(
        &mut me,
        "school-b",
        &token,
        &csrf,
        &details,
        &[("action", "verify"), ("code", &code)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let proof = hidden_field(&page, "proof").expect("a new applicant chooses a password");
    let csrf = hidden_field(&page, "csrf").unwrap();
    let r = join_step(
        &mut me,
        "school-b",
        &token,
        &csrf,
        &details,
        &[
            ("action", "password"),
            ("proof", &proof),
            ("password", "MyOwnPass2026"),
            ("password2", "MyOwnPass2026"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("/join/status/"));
    let id: i64 = {
        let mut tx = app.services.db.school(&b).await.unwrap();
        let id = sqlx::query_scalar("select id from join_requests where phone = $1")
            .bind(PHONE)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        id
    };
    let r = post_from(
        &mut admin_b,
        "school-b",
        "/admin/join",
        &format!("/admin/join/{id}/approve"),
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        proven_at(&app, PHONE).await.is_some(),
        "the phone is proven"
    );
    let mut me = Visitor::new(&app);
    assert_eq!(
        me.sign_in(&host("school-b"), PHONE, "MyOwnPass2026")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let mut attacker = Visitor::new(&app);
    assert_eq!(
        attacker
            .sign_in(&host("school-b"), PHONE, CHOSEN_BY_A)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test]
async fn the_join_form_answers_the_same_whether_or_not_the_phone_has_an_account() {
    let app = app().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    person(
        &app.services,
        "admin.a",
        "甲管理员",
        PW,
        &[(&a, &["school_admin"])],
    )
    .await;
    let b = app.onboard("school-b", "乙校").await.tenant;
    const WITH: &str = "13912340011";
    const WITHOUT: &str = "13912340012";
    phone_account(&app, WITH, PW, &b, &["teacher"]).await;
    let mut admin = signed_in(&app, "school-a", "admin.a", PW).await;
    let token = staff_link(&mut admin, "school-a").await;

    let mut answers = Vec::new();
    for phone in [WITH, WITHOUT] {
        let mut v = Visitor::new(&app);
        let details = staff_fields("张三", phone);
        let csrf = v.csrf(&host("school-a"), &format!("/join/{token}")).await;
        // Sending the code, then a wrong code: the same answers for both phones.
        let sent = join_step(
            &mut v,
            "school-a",
            &token,
            &csrf,
            &details,
            &[("action", "send")],
        )
        .await;
        let sent_status = sent.status();
        let sent_page = sent.text().await.unwrap();
        let csrf = hidden_field(&sent_page, "csrf").unwrap();
        let wrong = join_step(
            &mut v,
            "school-a",
            &token,
            &csrf,
            &details,
            &[("action", "verify"), ("code", "000000")],
        )
        .await;
        let wrong = (wrong.status(), wrong.text().await.unwrap());
        answers.push((
            sent_status,
            normalised(&sent_page, phone),
            wrong.0,
            normalised(&wrong.1, phone),
        ));
        // The code really went out, to both.
        assert!(app.sms.as_ref().unwrap().last_code(phone).is_some());
    }
    assert_eq!(answers[0].0, StatusCode::OK);
    assert_eq!(answers[0].2, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answers[0], answers[1], "identical answers");
    assert!(
        !answers[0].1.contains("password"),
        "no password asked before the proof"
    );
    app.stop().await;
}

/// Sends a reset code for `phone` from the visitor; the response.
async fn reset_send(v: &mut Visitor<'_>, slug: &str, phone: &str) -> reqwest::Response {
    post_from(
        v,
        slug,
        "/password/reset",
        "/password/reset",
        &[("action", "send"), ("phone", phone)],
    )
    .await
}

async fn reset_with(
    v: &mut Visitor<'_>,
    slug: &str,
    phone: &str,
    code: &str,
    password: &str,
) -> reqwest::Response {
    post_from(
        v,
        slug,
        "/password/reset",
        "/password/reset",
        &[
            ("action", "reset"),
            ("phone", phone),
            ("code", code),
            ("password", password),
            ("password2", password),
        ],
    )
    .await
}

#[tokio::test]
async fn codes_expire_lock_after_five_wrong_tries_and_are_limited_per_phone_and_address() {
    let app = app().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    const PHONE: &str = "13912340021";
    phone_account(&app, PHONE, PW, &a, &["teacher"]).await;
    let mut v = Visitor::new(&app);

    // One code a minute per phone: a second request at once is refused with 429.
    assert_eq!(
        reset_send(&mut v, "school-a", PHONE).await.status(),
        StatusCode::OK
    );
    let r = reset_send(&mut v, "school-a", PHONE).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    assert!(r.text().await.unwrap().contains("验证码发送过于频繁"));

    // An expired code does not work, even when right.
    let code = app.code_for(PHONE);
    sqlx::query("update public.phone_codes set expires_at = now() - interval '1 second'")
        .execute(&app.services.pool)
        .await
        .unwrap();
    let r = reset_with(&mut v, "school-a", PHONE, &code, "NewPass2026").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("验证码已过期"));

    // Five wrong tries lock the code; the right one then fails too.
    app.age_code_requests().await;
    assert_eq!(
        reset_send(&mut v, "school-a", PHONE).await.status(),
        StatusCode::OK
    );
    let code = app.code_for(PHONE);
    let wrong = if code == "111111" { "222222" } else { "111111" };
    for i in 1..=5 {
        let r = reset_with(&mut v, "school-a", PHONE, wrong, "NewPass2026").await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = r.text().await.unwrap();
        let expected = if i < 5 {
            "验证码不正确"
        } else {
            "错误次数过多"
        };
        assert!(page.contains(expected), "try {i}: {page}");
    }
    let r = reset_with(&mut v, "school-a", PHONE, &code, "NewPass2026").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("错误次数过多"));
    let mut old = Visitor::new(&app);
    assert_eq!(
        old.sign_in(&host("school-a"), PHONE, PW).await.status(),
        StatusCode::SEE_OTHER,
        "the password is unchanged"
    );

    // At most five codes an hour per phone.
    app.age_code_requests().await;
    for _ in 0..5 {
        assert_eq!(
            reset_send(&mut v, "school-a", PHONE).await.status(),
            StatusCode::OK
        );
        sqlx::query(
            "update public.phone_codes set created_at = created_at - interval '61 seconds'",
        )
        .execute(&app.services.pool)
        .await
        .unwrap();
    }
    assert_eq!(
        reset_send(&mut v, "school-a", PHONE).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    // At most ten code requests an hour from one address, whatever the phones.
    app.age_code_requests().await;
    for i in 0..10 {
        let phone = format!("1391234{:04}", 100 + i);
        assert_eq!(
            reset_send(&mut v, "school-a", &phone).await.status(),
            StatusCode::OK,
            "{phone}"
        );
    }
    let r = reset_send(&mut v, "school-a", "13912349999").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().await.unwrap().contains("验证码发送过于频繁"));
    // Only hashes are stored.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("select code_hash from public.phone_codes")
        .fetch_all(&app.services.pool)
        .await
        .unwrap();
    assert!(stored.iter().all(|h| h.len() == 32));
    app.stop().await;
}

#[tokio::test]
async fn an_invitation_accepted_with_a_code_creates_the_account_with_the_persons_password() {
    let app = app().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    app.onboard("school-b", "乙校").await;
    person(
        &app.services,
        "admin.a",
        "甲管理员",
        PW,
        &[(&a, &["school_admin"])],
    )
    .await;
    const PHONE: &str = "13912340031";
    let mut admin = signed_in(&app, "school-a", "admin.a", PW).await;
    let csrf = admin.csrf(&host("school-a"), "/admin/users").await;
    // Through the JSON API this time.
    let r = admin
        .json(
            reqwest::Method::POST,
            &host("school-a"),
            "/api/v1/users",
            &serde_json::json!({"display_name": "门卫老张", "login": PHONE, "roles": ["guard"]}),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let path = invitation_path(&app, PHONE);
    assert!(
        path.starts_with("/invitation?t="),
        "the token is not in the path"
    );

    let mut v = Visitor::new(&app);
    // Not on another school's host.
    assert_eq!(
        v.get(&host("school-b"), &path).await.status(),
        StatusCode::NOT_FOUND
    );
    let page = v.get(&host("school-a"), &path).await.text().await.unwrap();
    assert!(page.contains("139****0031"), "{page}");
    let t = &path["/invitation?t=".len()..];
    let csrf = hidden_field(&page, "csrf").unwrap();
    let r = v
        .post(
            &host("school-a"),
            "/invitation",
            &[("csrf", &csrf), ("t", t), ("action", "send")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let csrf = hidden_field(&r.text().await.unwrap(), "csrf").unwrap();
    let code = app.code_for(PHONE);
    let r = v
        .post(
            &host("school-a"),
            "/invitation",
            &[
                ("csrf", &csrf),
                ("t", t),
                ("action", "verify"),
                ("code", &code),
            ],
        )
        .await;
    let page = r.text().await.unwrap();
    let proof = hidden_field(&page, "proof").expect("a new person chooses a password");
    let csrf = hidden_field(&page, "csrf").unwrap();
    let weak = v
        .post(
            &host("school-a"),
            "/invitation",
            &[
                ("csrf", &csrf),
                ("t", t),
                ("action", "password"),
                ("proof", &proof),
                ("password", "short"),
                ("password2", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let csrf = hidden_field(&weak.text().await.unwrap(), "csrf").unwrap();
    let r = v
        .post(
            &host("school-a"),
            "/invitation",
            &[
                ("csrf", &csrf),
                ("t", t),
                ("action", "password"),
                ("proof", &proof),
                ("password", "GatePass2026"),
                ("password2", "GatePass2026"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("invitation-done"));
    assert!(proven_at(&app, PHONE).await.is_some());
    let mut guard = Visitor::new(&app);
    assert_eq!(
        guard
            .sign_in(&host("school-a"), PHONE, "GatePass2026")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let roles: Vec<String> = sqlx::query_scalar(
        "select m.roles from public.memberships m join public.accounts a on a.id = m.account_id where a.phone = $1",
    )
    .bind(PHONE)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(roles, ["guard"]);
    // Used: the link is gone.
    assert_eq!(
        v.get(&host("school-a"), &path).await.status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn an_existing_account_accepts_signed_in_only_once_its_phone_is_proven() {
    let app = app().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    person(
        &app.services,
        "admin.a",
        "甲管理员",
        PW,
        &[(&a, &["school_admin"])],
    )
    .await;
    const PROVEN: &str = "13912340041";
    const UNPROVEN: &str = "13912340042";
    phone_account(&app, PROVEN, PW, &b, &["teacher"]).await;
    sqlx::query("update public.accounts set phone_verified_at = now() where phone = $1")
        .bind(PROVEN)
        .execute(&app.services.pool)
        .await
        .unwrap();
    // An old account whose password an admin chose: its phone was never proven.
    phone_account(&app, UNPROVEN, "AdminChose2026", &b, &["teacher"]).await;
    let mut admin = signed_in(&app, "school-a", "admin.a", PW).await;
    for phone in [PROVEN, UNPROVEN] {
        let r = post_from(
            &mut admin,
            "school-a",
            "/admin/users",
            "/admin/users",
            &[
                ("display_name", "乙老师"),
                ("login", phone),
                ("role", "teacher"),
            ],
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let id_of = |phone: &'static str| {
        let pool = app.services.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "select id from public.member_invitations where phone = $1",
            )
            .bind(phone)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };

    // The proven owner sees the invitation on /me and accepts it signed in.
    let mut owner = signed_in(&app, "school-b", PROVEN, PW).await;
    let me = owner
        .get(&host("school-b"), "/me")
        .await
        .text()
        .await
        .unwrap();
    assert!(me.contains("甲校"), "{me}");
    let r = post_from(
        &mut owner,
        "school-b",
        "/me",
        &format!("/me/invitations/{}/accept", id_of(PROVEN).await),
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    signed_in(&app, "school-a", PROVEN, PW).await;

    // The unproven account cannot accept signed in (its password may be an admin's).
    let mut old = signed_in(&app, "school-b", UNPROVEN, "AdminChose2026").await;
    let me = old
        .get(&host("school-b"), "/me")
        .await
        .text()
        .await
        .unwrap();
    assert!(me.contains("invitations-waiting"), "{me}");
    assert!(!me.contains("/accept"), "{me}");
    let r = post_from(
        &mut old,
        "school-b",
        "/me",
        &format!("/me/invitations/{}/accept", id_of(UNPROVEN).await),
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let mut nobody = Visitor::new(&app);
    assert_eq!(
        nobody
            .sign_in(&host("school-a"), UNPROVEN, "AdminChose2026")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    // With the code texted to the phone, it is linked; no password is asked or changed.
    let path = invitation_path(&app, UNPROVEN);
    let t = path["/invitation?t=".len()..].to_owned();
    let mut v = Visitor::new(&app);
    let page = v.get(&host("school-a"), &path).await.text().await.unwrap();
    let csrf = hidden_field(&page, "csrf").unwrap();
    let r = v
        .post(
            &host("school-a"),
            "/invitation",
            &[("csrf", &csrf), ("t", &t), ("action", "send")],
        )
        .await;
    let csrf = hidden_field(&r.text().await.unwrap(), "csrf").unwrap();
    let code = app.code_for(UNPROVEN);
    let r = v
        .post(
            &host("school-a"),
            "/invitation",
            &[
                ("csrf", &csrf),
                ("t", &t),
                ("action", "verify"),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("invitation-done") && !page.contains("name=\"proof\""),
        "{page}"
    );
    assert!(proven_at(&app, UNPROVEN).await.is_some());
    signed_in(&app, "school-a", UNPROVEN, "AdminChose2026").await;
    app.stop().await;
}

#[tokio::test]
async fn one_schools_admin_cannot_see_accept_or_cancel_another_schools_invitations() {
    let app = app().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
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
    const PHONE: &str = "13912340051";
    let mut admin_b = signed_in(&app, "school-b", "admin.b", PW).await;
    let r = post_from(
        &mut admin_b,
        "school-b",
        "/admin/users",
        "/admin/users",
        &[
            ("display_name", "乙校新人"),
            ("login", PHONE),
            ("role", "teacher"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let id: i64 =
        sqlx::query_scalar("select id from public.member_invitations where tenant_id = $1")
            .bind(b.id.0)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();

    let mut admin_a = signed_in(&app, "school-a", "admin.a", PW).await;
    let list = admin_a.get(&host("school-a"), "/api/v1/invitations").await;
    assert_eq!(list.status(), StatusCode::OK);
    let list = list.text().await.unwrap();
    assert!(
        !list.contains("乙校新人") && !list.contains(PHONE),
        "{list}"
    );
    let page = admin_a
        .get(&host("school-a"), "/admin/users")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("乙校新人"));
    let r = post_from(
        &mut admin_a,
        "school-a",
        "/admin/users",
        &format!("/admin/invitations/{id}/cancel"),
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = post_from(
        &mut admin_a,
        "school-a",
        "/me",
        &format!("/me/invitations/{id}/accept"),
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // B's link does not work on A's host.
    let path = invitation_path(&app, PHONE);
    assert_eq!(
        admin_a.get(&host("school-a"), &path).await.status(),
        StatusCode::NOT_FOUND
    );
    let status: String =
        sqlx::query_scalar("select status from public.member_invitations where id = $1")
            .bind(id)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(status, "pending");
    // B's admin sees and cancels it.
    let list = admin_b
        .get(&host("school-b"), "/api/v1/invitations")
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("乙校新人"));
    let r = post_from(
        &mut admin_b,
        "school-b",
        "/admin/users",
        &format!("/admin/invitations/{id}/cancel"),
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        admin_b.get(&host("school-b"), &path).await.status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn a_reset_by_code_sets_the_password_and_ends_every_session() {
    let app = app().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    const PHONE: &str = "13912340061";
    const NOBODY: &str = "13912340062";
    let id = phone_account(&app, PHONE, PW, &a, &["teacher"]).await;
    campus_identity::account::set_membership(
        &app.services.pool,
        id,
        b.id.0,
        &["parent"],
        None,
        None,
    )
    .await
    .unwrap();
    let mut at_a = signed_in(&app, "school-a", PHONE, PW).await;
    let mut at_b = signed_in(&app, "school-b", PHONE, PW).await;
    assert_eq!(
        at_a.get(&host("school-a"), "/me").await.status(),
        StatusCode::OK
    );

    // The sign-in page links the reset; the reset page links the email reset.
    let login = Visitor::new(&app)
        .get(&host("school-a"), "/login?local=1")
        .await
        .text()
        .await
        .unwrap();
    assert!(login.contains("href=\"/password/reset\""));
    let mut v = Visitor::new(&app);
    let form = v
        .get(&host("school-a"), "/password/reset")
        .await
        .text()
        .await
        .unwrap();
    assert!(form.contains("href=\"/password/reset/email\""));

    // The same answer for a phone with and one without an account.
    let with = reset_send(&mut v, "school-a", PHONE).await;
    let with = (
        with.status(),
        normalised(&with.text().await.unwrap(), PHONE),
    );
    let without = reset_send(&mut v, "school-a", NOBODY).await;
    let without = (
        without.status(),
        normalised(&without.text().await.unwrap(), NOBODY),
    );
    assert_eq!(with, without);
    assert_eq!(with.0, StatusCode::OK);
    assert!(
        app.sms.as_ref().unwrap().last_to(NOBODY).is_none(),
        "nothing texted to a stranger"
    );

    let code = app.code_for(PHONE);
    let r = reset_with(&mut v, "school-a", PHONE, &code, "BrandNew2026").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("reset-done"));
    // Every old session is over, on every host.
    assert_eq!(
        at_a.get(&host("school-a"), "/me").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        at_b.get(&host("school-b"), "/me").await.status(),
        StatusCode::SEE_OTHER
    );
    let live: i64 = sqlx::query_scalar(
        "select count(*) from public.sessions where account_id = $1 and revoked_at is null",
    )
    .bind(id)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(live, 0);
    let mut old = Visitor::new(&app);
    assert_eq!(
        old.sign_in(&host("school-a"), PHONE, PW).await.status(),
        StatusCode::UNAUTHORIZED
    );
    signed_in(&app, "school-a", PHONE, "BrandNew2026").await;
    assert!(proven_at(&app, PHONE).await.is_some());
    // The code is spent.
    let r = reset_with(&mut v, "school-a", PHONE, &code, "Another2026x").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The login host serves the same page.
    assert_eq!(
        v.get(&format!("login.{BASE}"), "/password/reset")
            .await
            .status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn without_an_sms_channel_codes_and_invitations_say_so_and_write_nothing() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    person(
        &app.services,
        "admin.a",
        "甲管理员",
        PW,
        &[(&a, &["school_admin"])],
    )
    .await;
    let mut v = Visitor::new(&app);
    let r = reset_send(&mut v, "school-a", "13912340071").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains("尚未配置短信通道"));
    let mut admin = signed_in(&app, "school-a", "admin.a", PW).await;
    let r = post_from(
        &mut admin,
        "school-a",
        "/admin/users",
        "/admin/users",
        &[
            ("display_name", "某人"),
            ("login", "13912340072"),
            ("role", "teacher"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains("尚未配置短信通道"));
    let written: (i64, i64) = sqlx::query_as(
        "select (select count(*) from public.phone_codes), (select count(*) from public.member_invitations)",
    )
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(written, (0, 0));
    app.stop().await;
}

#[tokio::test]
async fn the_countys_invitation_needs_a_code_for_a_phone_that_has_an_account() {
    let app = app().await;
    let onboarded = app.onboard("school-a", "甲校").await;
    let b = app.onboard("school-b", "乙校").await.tenant;
    const PHONE: &str = "13912340081";
    // Someone knows this account's password (an admin chose it once).
    phone_account(&app, PHONE, "AdminChose2026", &b, &["teacher"]).await;
    let url = onboarded.invitation.expect("an invitation").url;
    let path = url
        .trim_start_matches(&format!("http://school-a.{BASE}"))
        .to_owned();
    let mut v = Visitor::new(&app);
    let fields = |csrf: &str| {
        vec![
            ("display_name", "张校长".to_owned()),
            ("login", PHONE.to_owned()),
            ("password", "AdminChose2026".to_owned()),
            ("password2", String::new()),
            ("csrf", csrf.to_owned()),
        ]
    };
    async fn post(
        v: &mut Visitor<'_>,
        path: &str,
        form: Vec<(&'static str, String)>,
    ) -> reqwest::Response {
        let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        v.post(&host("school-a"), path, &refs).await
    }
    // The account's password alone is not enough.
    let csrf = v.csrf(&host("school-a"), &path).await;
    let r = post(&mut v, &path, fields(&csrf)).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("短信验证码"));
    let used: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "select accepted_at from public.tenant_invitations where tenant_id = $1",
    )
    .bind(onboarded.tenant.id.0)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(used, None);
    // With the code texted to the phone, the account is linked.
    let csrf = v.csrf(&host("school-a"), &path).await;
    let mut send = fields(&csrf);
    send.push(("action", "send".into()));
    let r = post(&mut v, &path, send).await;
    assert_eq!(r.status(), StatusCode::OK);
    let csrf = hidden_field(&r.text().await.unwrap(), "csrf").unwrap();
    let mut accept = fields(&csrf);
    accept[2].1 = String::new();
    accept.push(("code", app.code_for(PHONE)));
    accept.push(("action", "accept".into()));
    let r = post(&mut v, &path, accept).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("设置完成"));
    assert!(proven_at(&app, PHONE).await.is_some());
    signed_in(&app, "school-a", PHONE, "AdminChose2026").await;
    app.stop().await;
}
