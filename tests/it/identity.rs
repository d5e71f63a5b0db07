//! Identity: sign-in per school host, host-bound sessions, several identities for one
//! person, lockout, CSRF, logout everywhere, and the sign-in audit trail.

use reqwest::StatusCode;

use crate::helpers::{person, TestApp, Visitor};

const PW: &str = "campus2026";

fn host(slug: &str) -> String {
    TestApp::school_host(slug)
}

#[tokio::test]
async fn a_teacher_at_one_school_is_a_parent_at_another_and_each_cookie_stays_on_its_host() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    app.onboard("school-c", "丙校").await;
    person(
        &app.services,
        "teacher.wang",
        "王老师",
        PW,
        &[(&a, &["teacher", "head_teacher"]), (&b, &["parent"])],
    )
    .await;
    let mut v = Visitor::new(&app);
    let home = v.get(&host("school-a"), "/").await.text().await.unwrap();
    assert!(
        home.contains("href=\"/login\">登录"),
        "signed out: a sign-in link"
    );

    let r = v.sign_in(&host("school-a"), "teacher.wang", PW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"),
        "{set}"
    );
    assert!(
        !set.to_lowercase().contains("domain="),
        "session cookies are host-only: {set}"
    );
    let me = v.get(&host("school-a"), "/me").await.text().await.unwrap();
    assert!(me.contains("王老师") && me.contains("教师、班主任"), "{me}");
    assert!(
        me.contains("乙校 · 家长"),
        "the other identity is offered: {me}"
    );

    // The same cookie replayed on school B's host is not a session there.
    let token = v.cookie(&host("school-a"), "campus_session").unwrap();
    v.set_cookie(&host("school-b"), "campus_session", &token);
    let r = v.get(&host("school-b"), "/me").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");

    // Signing in at B gives the parent identity there.
    assert_eq!(
        v.sign_in(&host("school-b"), "teacher.wang", PW)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let me = v.get(&host("school-b"), "/me").await.text().await.unwrap();
    assert!(me.contains("<b id=\"acting-as\">家长</b>"), "{me}");
    let home = v.get(&host("school-b"), "/").await.text().await.unwrap();
    assert!(home.contains("王老师 · 家长</a>"));

    // School C: no membership, no sign-in.
    let r = v.sign_in(&host("school-c"), "teacher.wang", PW).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("没有身份"));
    app.stop().await;
}

#[tokio::test]
async fn wrong_passwords_lock_the_account_for_a_while_and_are_audited() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let id = person(
        &app.services,
        "teacher.li",
        "李老师",
        PW,
        &[(&a, &["teacher"])],
    )
    .await;
    let mut v = Visitor::new(&app);
    for _ in 0..5 {
        let r = v
            .sign_in(&host("school-a"), "teacher.li", "wrong-pass-1")
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.text().await.unwrap().contains("密码不正确"));
    }
    // Locked now: even the right password is refused until the lock expires.
    let r = v.sign_in(&host("school-a"), "teacher.li", PW).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let events: Vec<String> = sqlx::query_scalar(
        "select event from public.auth_events where account_id = $1 order by id",
    )
    .bind(id)
    .fetch_all(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(events.iter().filter(|e| *e == "wrong_password").count(), 5);
    assert_eq!(events.last().map(String::as_str), Some("locked_out"));
    // After the lock expires, the right password works and resets the counter.
    sqlx::query(
        "update public.accounts set locked_until = now() - interval '1 second' where id = $1",
    )
    .bind(id)
    .execute(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(
        v.sign_in(&host("school-a"), "teacher.li", PW)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let failed: i32 = sqlx::query_scalar("select failed_logins from public.accounts where id = $1")
        .bind(id)
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(failed, 0);
    app.stop().await;
}

#[tokio::test]
async fn unknown_logins_and_malformed_input_get_clear_answers() {
    let app = TestApp::spawn().await;
    app.onboard("school-a", "甲校").await;
    let mut v = Visitor::new(&app);
    let r = v.sign_in(&host("school-a"), "nobody.here", PW).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = v.sign_in(&host("school-a"), "1380013800", PW).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("11 位"));
    let r = v.sign_in(&host("school-a"), "", PW).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

#[tokio::test]
async fn forms_without_the_csrf_token_change_nothing() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    person(
        &app.services,
        "teacher.zhao",
        "赵老师",
        PW,
        &[(&a, &["teacher"])],
    )
    .await;
    let mut v = Visitor::new(&app);
    // A login post without the form's token (e.g. from another site) is refused.
    let r = v
        .post(
            &host("school-a"),
            "/login",
            &[("login", "teacher.zhao"), ("password", PW)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(v.cookie(&host("school-a"), "campus_session").is_none());

    assert_eq!(
        v.sign_in(&host("school-a"), "teacher.zhao", PW)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let r = v
        .post(&host("school-a"), "/logout", &[("csrf", "forged")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        v.get(&host("school-a"), "/me").await.status(),
        StatusCode::OK,
        "still signed in"
    );
    app.stop().await;
}

#[tokio::test]
async fn logout_ends_the_session_on_every_host() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    person(
        &app.services,
        "teacher.sun",
        "孙老师",
        PW,
        &[(&a, &["teacher"]), (&b, &["parent"])],
    )
    .await;
    let mut v = Visitor::new(&app);
    v.sign_in(&host("school-a"), "teacher.sun", PW).await;
    v.sign_in(&host("school-b"), "teacher.sun", PW).await;
    let b_token = v.cookie(&host("school-b"), "campus_session").unwrap();
    let csrf = v.csrf(&host("school-a"), "/me").await;
    let r = v
        .post(&host("school-a"), "/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        v.cookie(&host("school-a"), "campus_session").is_none(),
        "the cookie is cleared"
    );
    // The session on B, in another tab, is over too.
    v.set_cookie(&host("school-b"), "campus_session", &b_token);
    assert_eq!(
        v.get(&host("school-b"), "/me").await.status(),
        StatusCode::SEE_OTHER
    );
    app.stop().await;
}

#[tokio::test]
async fn forged_or_expired_session_cookies_are_not_sessions() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    person(
        &app.services,
        "teacher.qian",
        "钱老师",
        PW,
        &[(&a, &["teacher"])],
    )
    .await;
    let mut v = Visitor::new(&app);
    for forged in ["x", &"0".repeat(64), "../../etc/passwd", &"g".repeat(64)] {
        v.set_cookie(&host("school-a"), "campus_session", forged);
        assert_eq!(
            v.get(&host("school-a"), "/me").await.status(),
            StatusCode::SEE_OTHER,
            "{forged}"
        );
    }
    v.sign_in(&host("school-a"), "teacher.qian", PW).await;
    sqlx::query("update public.sessions set expires_at = now() - interval '1 second'")
        .execute(&app.services.pool)
        .await
        .unwrap();
    // Cached lookups expire within seconds; a new visitor with the same (expired) token
    // is refused as soon as the row is read.
    let token = v.cookie(&host("school-a"), "campus_session").unwrap();
    let fresh = campus_identity::SessionStore::new(
        app.services.pool.clone(),
        std::time::Duration::from_secs(3600),
    );
    assert!(fresh
        .find(&token, &host("school-a"))
        .await
        .unwrap()
        .is_none());
    app.stop().await;
}

#[tokio::test]
async fn the_bureau_signs_in_on_the_county_host_only() {
    let app = TestApp::spawn().await;
    app.onboard("school-a", "甲校").await;
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
    let mut v = Visitor::new(&app);
    let county = format!("county.{}", crate::helpers::BASE);
    assert_eq!(
        v.sign_in(&county, "bureau", PW).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(v.get(&county, "/me").await.status(), StatusCode::OK);
    assert_eq!(
        v.sign_in(&host("school-a"), "bureau", PW).await.status(),
        StatusCode::FORBIDDEN,
        "the bureau has no identity inside a school"
    );
    app.stop().await;
}

#[tokio::test]
async fn old_failures_decay_so_one_wrong_password_later_does_not_lock() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let id = person(
        &app.services,
        "teacher.li",
        "李老师",
        PW,
        &[(&a, &["teacher"])],
    )
    .await;
    let mut v = Visitor::new(&app);
    for _ in 0..4 {
        let r = v
            .sign_in(&host("school-a"), "teacher.li", "wrong-pass-1")
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Past the decay window, the four old failures no longer count.
    sqlx::query(
        "update public.accounts set last_failed_at = now() - interval '16 minutes' where id = $1",
    )
    .bind(id)
    .execute(&app.services.pool)
    .await
    .unwrap();
    let r = v
        .sign_in(&host("school-a"), "teacher.li", "wrong-pass-1")
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (failed, locked): (i32, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("select failed_logins, locked_until from public.accounts where id = $1")
            .bind(id)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!((failed, locked), (1, None));
    assert_eq!(
        v.sign_in(&host("school-a"), "teacher.li", PW)
            .await
            .status(),
        StatusCode::SEE_OTHER,
        "not locked"
    );
    // While failures keep coming the lock grows, but stays short (at most 15 minutes).
    sqlx::query(
        "update public.accounts set failed_logins = 30, last_failed_at = now() where id = $1",
    )
    .bind(id)
    .execute(&app.services.pool)
    .await
    .unwrap();
    let r = v
        .sign_in(&host("school-a"), "teacher.li", "wrong-pass-1")
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let short: bool = sqlx::query_scalar(
        "select locked_until <= now() + interval '15 minutes' and locked_until > now() from public.accounts where id = $1",
    )
    .bind(id)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert!(short);
    app.stop().await;
}

#[tokio::test]
async fn a_schools_audit_log_names_only_its_own_people() {
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
    person(
        &app.services,
        "teacher.a",
        "甲老师",
        PW,
        &[(&a, &["teacher"])],
    )
    .await;
    let bid = person(
        &app.services,
        "teacher.b",
        "乙校秘密老师",
        PW,
        &[(&b, &["teacher"])],
    )
    .await;
    let mut v = Visitor::new(&app);
    // Someone at A types the login of B's teacher (wrong and right password), and an A
    // teacher's login with a wrong password.
    v.sign_in(&host("school-a"), "teacher.b", "wrong-pass-1")
        .await;
    v.sign_in(&host("school-a"), "teacher.b", PW).await;
    v.sign_in(&host("school-a"), "teacher.a", "wrong-pass-1")
        .await;
    let named_at_a: i64 = sqlx::query_scalar(
        "select count(*) from public.auth_events where tenant_id = $1 and account_id = $2",
    )
    .bind(a.id.0)
    .bind(bid)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(named_at_a, 0, "B's teacher is not recorded in A's trail");

    let mut admin = Visitor::new(&app);
    admin.sign_in(&host("school-a"), "admin.a", PW).await;
    let log = admin
        .get(&host("school-a"), "/admin/audit?kind=signin")
        .await
        .text()
        .await
        .unwrap();
    assert!(!log.contains("乙校秘密老师"), "{log}");
    assert!(log.contains("teacher.b"), "the typed login is kept: {log}");
    assert!(log.contains("甲老师"), "A's own people are named: {log}");
    app.stop().await;
}
