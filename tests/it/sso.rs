//! Single sign-on: one sign-in opens every school where the person has an identity, each
//! through its own session obtained with a one-time code bound to that school's host.

use reqwest::StatusCode;

use crate::helpers::{person, TestApp, Visitor, BASE};

const PW: &str = "campus2026";

fn host(slug: &str) -> String {
    TestApp::school_host(slug)
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn signing_in_once_opens_every_school_of_the_person_without_a_password() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    app.onboard("school-c", "丙校").await;
    person(
        &app.services,
        "teacher.wang",
        "王老师",
        PW,
        &[(&a, &["teacher"]), (&b, &["parent"])],
    )
    .await;
    let mut v = Visitor::new(&app);

    // The form at school A, then the login host opens its own session: it binds the
    // round trip to this browser with a nonce cookie, A issues a code for that nonce.
    let r = v.sign_in(&host("school-a"), "teacher.wang", PW).await;
    assert_eq!(
        location(&r),
        format!("http://login.{BASE}/sso/bind?next=school-a.{BASE}")
    );
    let r = v.follow(r).await;
    assert!(v
        .cookie(&format!("login.{BASE}"), "campus_sso_nonce")
        .is_some());
    let r = v.follow(r).await;
    assert!(
        location(&r).starts_with(&format!("http://login.{BASE}/sso/establish?code=")),
        "{}",
        location(&r)
    );
    let r = v.follow(r).await;
    assert_eq!(location(&r), format!("http://school-a.{BASE}/me"));
    assert!(v
        .cookie(&format!("login.{BASE}"), "campus_session")
        .is_some());
    let me = v.follow(r).await.text().await.unwrap();
    assert!(me.contains("教师"), "{me}");

    // School B: its login page asks the login host, which answers with a code for B.
    let r = v.get(&host("school-b"), "/login").await;
    assert!(location(&r).starts_with(&format!(
        "http://login.{BASE}/sso/start?to=school-b.{BASE}&state="
    )));
    let r = v.follow(r).await;
    let callback = location(&r);
    assert!(
        callback.starts_with(&format!("http://school-b.{BASE}/sso/callback?code=")),
        "{callback}"
    );
    let r = v.follow(r).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let me = v.follow(r).await.text().await.unwrap();
    assert!(
        me.contains("<b id=\"acting-as\">家长</b>"),
        "no password was typed at B: {me}"
    );
    let b_token = v.cookie(&host("school-b"), "campus_session").unwrap();
    assert_ne!(
        Some(b_token),
        v.cookie(&host("school-a"), "campus_session"),
        "each host has its own session"
    );

    // The code works once.
    let url = url::Url::parse(&callback).unwrap();
    let replay = v
        .get(
            &host("school-b"),
            &format!("/sso/callback?{}", url.query().unwrap()),
        )
        .await;
    assert_eq!(replay.status(), StatusCode::FORBIDDEN);

    // School C: the login host hands out a code, but C finds no identity for the person.
    let r = v.get(&host("school-c"), "/login").await;
    let r = v.follow(r).await;
    let r = v.follow(r).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(v.cookie(&host("school-c"), "campus_session").is_none());
    app.stop().await;
}

#[tokio::test]
async fn a_code_for_one_school_cannot_be_used_at_another_or_from_another_browser() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    person(
        &app.services,
        "teacher.li",
        "李老师",
        PW,
        &[(&a, &["teacher"]), (&b, &["teacher"])],
    )
    .await;
    let mut v = Visitor::new(&app);
    let r = v.sign_in(&host("school-a"), "teacher.li", PW).await;
    let r = v.follow(r).await;
    let r = v.follow(r).await;
    v.follow(r).await;
    let r = v.get(&host("school-b"), "/login").await;
    let r = v.follow(r).await;
    let query = url::Url::parse(&location(&r))
        .unwrap()
        .query()
        .unwrap()
        .to_owned();

    // Presented at school A instead of B: refused (codes are bound to their host).
    let state = v.cookie(&host("school-b"), "campus_sso_state").unwrap();
    v.set_cookie(&host("school-a"), "campus_sso_state", &state);
    assert_eq!(
        v.get(&host("school-a"), &format!("/sso/callback?{query}"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // Presented by another browser (no state cookie): refused.
    let mut other = Visitor::new(&app);
    assert_eq!(
        other
            .get(&host("school-b"), &format!("/sso/callback?{query}"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert!(other.cookie(&host("school-b"), "campus_session").is_none());
    app.stop().await;
}

#[tokio::test]
async fn the_login_host_sends_codes_only_to_the_platforms_own_sites() {
    let app = TestApp::spawn().await;
    let mut v = Visitor::new(&app);
    let state = "a".repeat(64);
    for to in [
        "evil.example.com",
        &format!("admin.{BASE}"),
        &format!("a.b.{BASE}"),
        &format!("school-a.{BASE}.evil.com"),
    ] {
        let r = v
            .get(
                &format!("login.{BASE}"),
                &format!("/sso/start?to={to}&state={state}"),
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{to}");
    }
    // Not signed in centrally: back to the school's own form.
    let r = v
        .get(
            &format!("login.{BASE}"),
            &format!("/sso/start?to=school-a.{BASE}&state={state}"),
        )
        .await;
    assert_eq!(
        location(&r),
        format!("http://school-a.{BASE}/login?local=1")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_central_code_from_an_attackers_browser_does_not_sign_in_the_victims() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    person(
        &app.services,
        "attacker",
        "攻击者",
        PW,
        &[(&a, &["teacher"])],
    )
    .await;
    let login = format!("login.{BASE}");

    // The attacker signs in and stops before the login host redeems the code.
    let mut attacker = Visitor::new(&app);
    let r = attacker.sign_in(&host("school-a"), "attacker", PW).await;
    let r = attacker.follow(r).await;
    let r = attacker.follow(r).await;
    let establish = url::Url::parse(&location(&r)).unwrap();
    assert_eq!(establish.path(), "/sso/establish");
    let path = format!("/sso/establish?{}", establish.query().unwrap());

    // The victim's browser is lured to the link: with no nonce cookie, or its own one.
    let mut victim = Visitor::new(&app);
    let r = victim.get(&login, &path).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("不是在本浏览器中发起的"));
    assert!(victim.cookie(&login, "campus_session").is_none());

    let again = attacker_again(&mut attacker, &app).await;
    let r = attacker.follow(again).await;
    let establish = url::Url::parse(&location(&r)).unwrap();
    let path = format!("/sso/establish?{}", establish.query().unwrap());
    victim
        .get(&login, &format!("/sso/bind?next=school-a.{BASE}"))
        .await;
    assert!(victim.cookie(&login, "campus_sso_nonce").is_some());
    let r = victim.get(&login, &path).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(victim.cookie(&login, "campus_session").is_none());

    // A nonce taken to another browser's school session issues nothing for the victim
    // either: /sso/central needs a session at the school.
    let r = victim
        .get(
            &host("school-a"),
            &format!("/sso/central?nonce={}", "a".repeat(64)),
        )
        .await;
    assert_eq!(location(&r), "/login?local=1");
    app.stop().await;
}

/// The attacker's browser asks for another central code (a fresh bind round trip).
async fn attacker_again(attacker: &mut Visitor<'_>, _app: &TestApp) -> reqwest::Response {
    attacker
        .get(
            &format!("login.{BASE}"),
            &format!("/sso/bind?next=school-a.{BASE}"),
        )
        .await
}
