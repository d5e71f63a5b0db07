//! The second factor: enrolment with a QR code and recovery codes, the code step before a
//! session exists, replayed codes refused, a plan or the county making it mandatory, and
//! single sign-on that does not skip it. Codes are computed from the enrolment secret.

use campus_identity::totp;
use reqwest::StatusCode;

use crate::helpers::{person, TestApp, Visitor, BASE};

const PW: &str = "campus2026";
const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn host(slug: &str) -> String {
    TestApp::school_host(slug)
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// The secret shown on an enrolment page.
fn secret_in(page: &str) -> Vec<u8> {
    let start = page
        .find("id=\"totp-secret\">")
        .expect("the secret is shown")
        + "id=\"totp-secret\">".len();
    let end = start + page[start..].find('<').unwrap();
    totp::from_base32(&page[start..end]).unwrap()
}

fn code(secret: &[u8], offset: i64) -> String {
    let step = totp::now_step() as i64 + offset;
    format!("{:06}", totp::code_at(secret, step as u64))
}

fn recovery_codes(page: &str) -> Vec<String> {
    let list = &page[page.find("id=\"recovery-codes\"").expect("recovery codes")..];
    list.split("<code>")
        .skip(1)
        .map(|c| c[..c.find('<').unwrap()].to_owned())
        .collect()
}

/// The hidden CSRF field of a form in `page`.
fn csrf_in(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    page[start..start + 64].to_owned()
}

/// Types the password at `slug`; the answer must be the code step (no session yet).
async fn password_step(v: &mut Visitor<'_>, slug: &str, login: &str) -> String {
    let r = v.sign_in(&host(slug), login, PW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login/2fa");
    assert!(
        v.cookie(&host(slug), "campus_session").is_none(),
        "no session before the code"
    );
    let page = v.get(&host(slug), "/login/2fa").await;
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.unwrap()
}

#[tokio::test]
async fn enrolling_puts_a_code_step_after_the_password_and_each_code_works_once() {
    let app = TestApp::spawn_with(|c| c.notify_secret_key = Some(KEY.into())).await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let id = person(
        &app.services,
        "teacher.wang",
        "王老师",
        PW,
        &[(&a, &["teacher"])],
    )
    .await;
    let h = host("school-a");
    let mut v = Visitor::new(&app);
    v.sign_in(&h, "teacher.wang", PW).await;
    let page = v.get(&h, "/me/2fa").await.text().await.unwrap();
    assert!(
        page.contains("<svg class=\"qr\""),
        "a QR code of the otpauth URI"
    );
    let secret = secret_in(&page);
    let csrf = csrf_in(&page);
    let r = v
        .post(
            &h,
            "/me/2fa",
            &[("csrf", &csrf), ("action", "enable"), ("code", "000000")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = v
        .post(
            &h,
            "/me/2fa",
            &[
                ("csrf", &csrf),
                ("action", "enable"),
                ("code", &code(&secret, 0)),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let recovery = recovery_codes(&r.text().await.unwrap());
    assert_eq!(recovery.len(), 10);
    // Sealed at rest; the secret is never shown again.
    let stored: Vec<u8> =
        sqlx::query_scalar("select totp_secret from public.accounts where id = $1")
            .bind(id)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(stored[0], 1, "sealed with the platform key");
    assert!(!stored.windows(secret.len()).any(|w| w == secret.as_slice()));
    let page = v.get(&h, "/me/2fa").await.text().await.unwrap();
    assert!(!page.contains("totp-secret") && page.contains("剩余恢复码"));

    // A new sign-in: password, then the code.
    let mut phone = Visitor::new(&app);
    let page = password_step(&mut phone, "school-a", "teacher.wang").await;
    let pending_csrf = csrf_in(&page);
    let r = phone
        .post(
            &h,
            "/login/2fa",
            &[("csrf", &pending_csrf), ("code", "123456")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let fresh = code(&secret, 1);
    let r = phone
        .post(
            &h,
            "/login/2fa",
            &[("csrf", &pending_csrf), ("code", &fresh)],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    assert_eq!(phone.get(&h, "/me").await.status(), StatusCode::OK);
    // The same code again (a replay within its 30 seconds) is refused.
    let mut replay = Visitor::new(&app);
    let page = password_step(&mut replay, "school-a", "teacher.wang").await;
    let pending_csrf = csrf_in(&page);
    let r = replay
        .post(
            &h,
            "/login/2fa",
            &[("csrf", &pending_csrf), ("code", &fresh)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(replay.cookie(&h, "campus_session").is_none());
    // A recovery code works once.
    let r = replay
        .post(
            &h,
            "/login/2fa",
            &[("csrf", &pending_csrf), ("code", &recovery[0])],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let mut again = Visitor::new(&app);
    let page = password_step(&mut again, "school-a", "teacher.wang").await;
    let r = again
        .post(
            &h,
            "/login/2fa",
            &[("csrf", &csrf_in(&page)), ("code", &recovery[0])],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Wrong codes count toward the lockout.
    let failed: i32 = sqlx::query_scalar("select failed_logins from public.accounts where id = $1")
        .bind(id)
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(
        failed, 1,
        "reset by the sign-ins in between, then one wrong code"
    );
    // A pending sign-in is no session anywhere.
    assert_eq!(again.get(&h, "/me").await.status(), StatusCode::SEE_OTHER);

    // Turning it off needs a current code.
    let csrf = v.csrf(&h, "/me/2fa").await;
    let r = v
        .post(
            &h,
            "/me/2fa",
            &[("csrf", &csrf), ("action", "disable"), ("code", "111111")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = v
        .post(
            &h,
            "/me/2fa",
            &[
                ("csrf", &csrf),
                ("action", "disable"),
                ("code", &recovery[1]),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        Visitor::new(&app)
            .sign_in(&h, "teacher.wang", PW)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    app.stop().await;
}

#[tokio::test]
async fn a_plan_that_requires_it_sends_user_managers_to_enrolment_before_any_page() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    sqlx::query(
        "update public.plans set require_second_factor = true where code = (select plan from public.tenants where slug = 'school-a')",
    )
    .execute(&app.services.pool)
    .await
    .unwrap();
    // Another plan for B, which does not require it.
    sqlx::query(
        "update public.tenants set plan = (select code from public.plans where code <> (select plan from public.tenants where slug = 'school-a') limit 1) where slug = 'school-b'",
    )
    .execute(&app.services.pool)
    .await
    .unwrap();
    person(
        &app.services,
        "teacher.li",
        "李老师",
        PW,
        &[(&a, &["teacher"])],
    )
    .await;
    person(
        &app.services,
        "head.zhang",
        "张主任",
        PW,
        &[(&a, &["school_admin"]), (&b, &["teacher"])],
    )
    .await;
    let h = host("school-a");

    // A teacher at A is not asked.
    assert_eq!(
        location(&Visitor::new(&app).sign_in(&h, "teacher.li", PW).await),
        format!("http://login.{BASE}/sso/bind?next=school-a.{BASE}")
    );

    // Single sign-on does not skip it: signed in at B with a password only, A's login
    // page does not get a code from the login host but the school's own form.
    let mut v = Visitor::new(&app);
    let r = v.sign_in(&host("school-b"), "head.zhang", PW).await;
    let r = v.follow(r).await;
    let r = v.follow(r).await;
    let r = v.follow(r).await;
    assert_eq!(location(&r), format!("http://school-b.{BASE}/me"));
    assert!(v
        .cookie(&format!("login.{BASE}"), "campus_session")
        .is_some());
    let r = v.get(&h, "/login").await;
    let r = v.follow(r).await;
    assert_eq!(
        location(&r),
        format!("http://school-a.{BASE}/login?local=1")
    );
    assert!(v.cookie(&h, "campus_session").is_none());

    // The school admin at A: enrolment right after the password, no page before it.
    let mut v = Visitor::new(&app);
    let page = password_step(&mut v, "school-a", "head.zhang").await;
    assert!(page.contains("要求两步验证"), "{page}");
    assert_eq!(
        v.get(&h, "/admin/users").await.status(),
        StatusCode::SEE_OTHER
    );
    let secret = secret_in(&page);
    let r = v
        .post(
            &h,
            "/login/2fa",
            &[("csrf", &csrf_in(&page)), ("code", &code(&secret, 0))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(recovery_codes(&r.text().await.unwrap()).len(), 10);
    assert_eq!(v.get(&h, "/admin/users").await.status(), StatusCode::OK);
    // Required here: it cannot be turned off.
    let csrf = v.csrf(&h, "/me/2fa").await;
    let r = v
        .post(
            &h,
            "/me/2fa",
            &[
                ("csrf", &csrf),
                ("action", "disable"),
                ("code", &code(&secret, 1)),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn the_county_can_require_it_of_the_bureau() {
    let app = TestApp::spawn_with(|c| c.require_second_factor_bureau = true).await;
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
    let county = format!("county.{BASE}");
    let mut v = Visitor::new(&app);
    let r = v.sign_in(&county, "bureau", PW).await;
    assert_eq!(location(&r), "/login/2fa");
    assert!(v.cookie(&county, "campus_session").is_none());
    assert_eq!(v.get(&county, "/me").await.status(), StatusCode::SEE_OTHER);
    let page = v.get(&county, "/login/2fa").await.text().await.unwrap();
    assert!(page.contains("totp-secret"));
    app.stop().await;
}

#[tokio::test]
async fn one_schools_admin_cannot_turn_off_another_schools_second_factor() {
    let app = TestApp::spawn().await;
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
    let bid = person(
        &app.services,
        "teacher.b",
        "乙老师",
        PW,
        &[(&b, &["teacher"])],
    )
    .await;
    // B's teacher turns it on.
    let mut tb = Visitor::new(&app);
    tb.sign_in(&host("school-b"), "teacher.b", PW).await;
    let page = tb
        .get(&host("school-b"), "/me/2fa")
        .await
        .text()
        .await
        .unwrap();
    let secret = secret_in(&page);
    let r = tb
        .post(
            &host("school-b"),
            "/me/2fa",
            &[
                ("csrf", &csrf_in(&page)),
                ("action", "enable"),
                ("code", &code(&secret, 0)),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // A's admin, even knowing a current code of B's teacher, only reaches their own.
    let mut aa = Visitor::new(&app);
    aa.sign_in(&host("school-a"), "admin.a", PW).await;
    let csrf = aa.csrf(&host("school-a"), "/me/2fa").await;
    let r = aa
        .post(
            &host("school-a"),
            "/me/2fa",
            &[
                ("csrf", &csrf),
                ("action", "disable"),
                ("code", &code(&secret, 1)),
            ],
        )
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    // A's cookie is no session at B.
    let cookie = aa.cookie(&host("school-a"), "campus_session").unwrap();
    aa.set_cookie(&host("school-b"), "campus_session", &cookie);
    let r = aa
        .post(
            &host("school-b"),
            "/me/2fa",
            &[
                ("csrf", &csrf),
                ("action", "disable"),
                ("code", &code(&secret, 1)),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login");
    let on: bool =
        sqlx::query_scalar("select totp_enabled_at is not null from public.accounts where id = $1")
            .bind(bid)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert!(on, "B's teacher still has the second factor");
    app.stop().await;
}
