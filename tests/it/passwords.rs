//! Passwords a person manages: changing it (other sessions end), an email proven by a
//! mailed link, and a new password through a single-use link mailed to that email (every
//! session ends, the lockout clears) — against a real SMTP server.

use std::time::Duration;

use campus_devstack::SmtpSink;
use reqwest::StatusCode;

use crate::helpers::{person, TestApp, Visitor};

const PW: &str = "campus2026";
const NEW_PW: &str = "newpass2027";

fn host(slug: &str) -> String {
    TestApp::school_host(slug)
}

/// Waits for the `n`th mail to arrive (links are mailed in the background).
async fn mail_count(sink: &SmtpSink, n: usize) -> Vec<campus_devstack::smtp::Mail> {
    for _ in 0..100 {
        let mail = sink.mail();
        if mail.len() >= n {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {n} mails, got {}", sink.mail().len());
}

/// The path and query of the first link to `host` in a mail.
fn link_in(mail: &campus_devstack::smtp::Mail, host: &str) -> String {
    let text = mail.text();
    let start =
        text.find(&format!("http://{host}")).expect("a link") + "http://".len() + host.len();
    text[start..].split_whitespace().next().unwrap().to_owned()
}

async fn signed_in<'a>(app: &'a TestApp, slug: &str, login: &str, pw: &str) -> Visitor<'a> {
    let mut v = Visitor::new(app);
    let r = v.sign_in(&host(slug), login, pw).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{login} signs in");
    v
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_and_keeps_this_one() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let id = person(
        &app.services,
        "teacher.wang",
        "王老师",
        PW,
        &[(&a, &["teacher"])],
    )
    .await;
    let mut here = signed_in(&app, "school-a", "teacher.wang", PW).await;
    let mut elsewhere = signed_in(&app, "school-a", "teacher.wang", PW).await;
    let h = host("school-a");
    let csrf = here.csrf(&h, "/me/password").await;

    // Wrong current password: refused and counted toward the lockout.
    let r = here
        .post(
            &h,
            "/me/password",
            &[
                ("csrf", &csrf),
                ("current_password", "not-it-1"),
                ("new_password", NEW_PW),
                ("new_password2", NEW_PW),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("当前密码不正确"));
    let failed: i32 = sqlx::query_scalar("select failed_logins from public.accounts where id = $1")
        .bind(id)
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(failed, 1);
    // Mismatch and policy: clear 422s, nothing changed.
    for (new, again, why) in [
        (NEW_PW, "other2027x", "不一致"),
        ("short1", "short1", "至少 8 位"),
    ] {
        let r = here
            .post(
                &h,
                "/me/password",
                &[
                    ("csrf", &csrf),
                    ("current_password", PW),
                    ("new_password", new),
                    ("new_password2", again),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains(why));
    }
    // Without the form's token: refused.
    let r = here
        .post(
            &h,
            "/me/password",
            &[
                ("current_password", PW),
                ("new_password", NEW_PW),
                ("new_password2", NEW_PW),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = here
        .post(
            &h,
            "/me/password",
            &[
                ("csrf", &csrf),
                ("current_password", PW),
                ("new_password", NEW_PW),
                ("new_password2", NEW_PW),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        here.get(&h, "/me").await.status(),
        StatusCode::OK,
        "this browser stays"
    );
    assert_eq!(
        elsewhere.get(&h, "/me").await.status(),
        StatusCode::SEE_OTHER,
        "the other browser is signed out"
    );
    let mut v = Visitor::new(&app);
    assert_eq!(
        v.sign_in(&h, "teacher.wang", PW).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        v.sign_in(&h, "teacher.wang", NEW_PW).await.status(),
        StatusCode::SEE_OTHER
    );
    app.stop().await;
}

#[tokio::test]
async fn a_reset_link_mailed_to_a_proven_email_sets_a_new_password_once_and_ends_every_session() {
    let sink = SmtpSink::start(0).await.unwrap();
    let url = sink.url();
    let app = TestApp::spawn_with(|c| c.smtp_url = Some(url)).await;
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
    let mut me = signed_in(&app, "school-a", "teacher.wang", PW).await;

    // The person gives an email on /me and proves it with the mailed link.
    let csrf = me.csrf(&h, "/me").await;
    let r = me
        .post(
            &h,
            "/me/email",
            &[("csrf", &csrf), ("email", "not an email")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = me
        .post(
            &h,
            "/me/email",
            &[("csrf", &csrf), ("email", "Wang@Example.cn")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mail = mail_count(&sink, 1).await;
    assert_eq!(mail[0].to, vec!["wang@example.cn".to_owned()]);
    // Not proven yet: a reset request sends nothing.
    let mut stranger = Visitor::new(&app);
    let r = stranger
        .post(&h, "/password/reset/email", &[("login", "teacher.wang")])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let confirm = link_in(&mail[0], &h);
    assert!(confirm.starts_with("/me/email/confirm?token="), "{confirm}");
    let r = Visitor::new(&app).get(&h, &confirm).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(me
        .get(&h, "/me")
        .await
        .text()
        .await
        .unwrap()
        .contains("已验证"));
    assert_eq!(
        Visitor::new(&app).get(&h, &confirm).await.status(),
        StatusCode::BAD_REQUEST,
        "a confirmation link works once"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.mail().len(),
        1,
        "nothing was mailed for an unproven email"
    );

    // Someone keeps the account locked.
    sqlx::query(
        "update public.accounts set failed_logins = 9, last_failed_at = now(), locked_until = now() + interval '10 minutes' where id = $1",
    )
    .bind(id)
    .execute(&app.services.pool)
    .await
    .unwrap();

    // The page answers the same whether or not anything matched.
    let r = stranger
        .post(&h, "/password/reset/email", &[("login", "nobody.here")])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let unknown = r.text().await.unwrap();
    let r = stranger
        .post(&h, "/password/reset/email", &[("login", "wang@example.cn")])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), unknown);
    let mail = mail_count(&sink, 2).await;
    let link = link_in(&mail[1], &h);
    assert!(link.starts_with("/password/reset/email?token="), "{link}");
    let stored: i64 = sqlx::query_scalar(
        "select count(*) from public.account_tokens where purpose = 'reset_password' and account_id = $1",
    )
    .bind(id)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(stored, 1);
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let plain: i64 = sqlx::query_scalar(
        "select count(*) from public.account_tokens where encode(token_hash, 'hex') = $1",
    )
    .bind(&token)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(plain, 0, "only a hash of the token is stored");

    let mut phone = Visitor::new(&app);
    let page = phone.get(&h, &link).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("new_password2"));
    let r = phone
        .post(
            &h,
            "/password/reset/email",
            &[
                ("token", &token),
                ("new_password", NEW_PW),
                ("new_password2", "nope"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = phone
        .post(
            &h,
            "/password/reset/email",
            &[
                ("token", &token),
                ("new_password", NEW_PW),
                ("new_password2", NEW_PW),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        me.get(&h, "/me").await.status(),
        StatusCode::SEE_OTHER,
        "every session ended"
    );
    // The lockout is cleared and the new password works.
    assert_eq!(
        Visitor::new(&app)
            .sign_in(&h, "teacher.wang", NEW_PW)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    // The link works once.
    let r = phone
        .post(
            &h,
            "/password/reset/email",
            &[
                ("token", &token),
                ("new_password", "again2028x"),
                ("new_password2", "again2028x"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("链接无效"));
    app.stop().await;
}

#[tokio::test]
async fn a_school_never_mails_reset_links_for_another_schools_people() {
    let sink = SmtpSink::start(0).await.unwrap();
    let url = sink.url();
    let app = TestApp::spawn_with(|c| c.smtp_url = Some(url)).await;
    app.onboard("school-a", "甲校").await;
    let b = app.onboard("school-b", "乙校").await.tenant;
    let id = person(
        &app.services,
        "teacher.zhao",
        "赵老师",
        PW,
        &[(&b, &["teacher"])],
    )
    .await;
    sqlx::query(
        "update public.accounts set email = 'zhao@example.cn', email_confirmed_at = now() where id = $1",
    )
    .bind(id)
    .execute(&app.services.pool)
    .await
    .unwrap();
    let mut v = Visitor::new(&app);
    for login in ["teacher.zhao", "zhao@example.cn"] {
        let r = v
            .post(
                &host("school-a"),
                "/password/reset/email",
                &[("login", login)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        sink.mail().is_empty(),
        "school A mails nothing for B's teacher"
    );

    // At B it works, and B's link is no reset link at A.
    let r = v
        .post(
            &host("school-b"),
            "/password/reset/email",
            &[("login", "teacher.zhao")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mail = mail_count(&sink, 1).await;
    let link = link_in(&mail[0], &host("school-b"));
    let token = link.split("token=").nth(1).unwrap().to_owned();
    assert_eq!(
        v.get(&host("school-a"), &link).await.status(),
        StatusCode::BAD_REQUEST
    );
    let r = v
        .post(
            &host("school-a"),
            "/password/reset/email",
            &[
                ("token", &token),
                ("new_password", NEW_PW),
                ("new_password2", NEW_PW),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        Visitor::new(&app)
            .sign_in(&host("school-b"), "teacher.zhao", PW)
            .await
            .status(),
        StatusCode::SEE_OTHER,
        "the password is unchanged"
    );
    app.stop().await;
}
