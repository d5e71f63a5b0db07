//! County-wide notices: one admin API call reaches the guardians of every school (or the
//! chosen ones) as a notice of each school's own, copied by the notification workers; a
//! repeated request or a repeated copy adds nothing; the county sees counts per school,
//! never names; bad requests are refused with nothing stored.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use campus_identity::account::{self, NewAccount};
use campus_tenant::Tenant;

use crate::fanout::school;
use crate::helpers::{TestApp, Visitor};

const PW: &str = "Correct-Horse-9";

/// Copies every due (notice, school) pair as the notify role's workers do — the test
/// server's own workers may take some of them first — and waits until none is left.
async fn deliver_all(app: &TestApp) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        while campus::county_notices::deliver_one(&app.services)
            .await
            .unwrap()
        {}
        let open: i64 = sqlx::query_scalar(
            "select count(*) from public.county_notice_schools where done_at is null",
        )
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
        if open == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{open} schools never got the notice"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn count(app: &TestApp, t: &Tenant, sql: &str) -> i64 {
    let mut tx = app.services.db.school(t).await.unwrap();
    let n = sqlx::query_scalar(sql).fetch_one(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    n
}

async fn post(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let r = app
        .admin(Method::POST, "/admin/v1/notices")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

/// A signed-in guardian of `t`: the guardian row `g0`.
async fn guardian<'a>(app: &'a TestApp, t: &Tenant, login: &str) -> Visitor<'a> {
    let mut tx = app.services.db.school(t).await.unwrap();
    let g: i64 = sqlx::query_scalar("select id from guardians where name = 'g0'")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let hash = app.services.identity.hasher.hash(PW).await.unwrap();
    let id = account::ensure(
        &app.services.pool,
        &NewAccount {
            username: Some(login),
            phone: None,
            display_name: login,
            password_hash: &hash,
            county_role: None,
        },
    )
    .await
    .unwrap();
    account::set_membership(&app.services.pool, id, t.id.0, &["parent"], None, Some(g))
        .await
        .unwrap();
    let mut v = Visitor::new(app);
    let host = TestApp::school_host(t.slug.as_str());
    let r = v.sign_in(&host, login, PW).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    v
}

#[tokio::test]
async fn a_county_notice_reaches_every_schools_guardians_once_with_counts_per_school() {
    let app = TestApp::spawn().await;
    let a = school(&app, "county-a", 30).await;
    let b = school(&app, "county-b", 12).await;

    let (status, sent) = post(
        &app,
        json!({"title": "关于寒假安全的通知", "body": "<p>注意防火</p><script>alert(1)</script>",
               "audience": "guardians", "mode": "confirm", "idempotency_key": "winter-2026"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent["schools"], 2);
    // The server's own workers may already have copied it into a school or two.
    assert!(sent["schools_done"].as_i64().unwrap() <= 2, "{sent}");
    let id = sent["id"].as_i64().unwrap();

    // The same key again: the same notice, nothing new.
    let (status, again) = post(
        &app,
        json!({"title": "关于寒假安全的通知", "body": "x", "audience": "guardians",
               "idempotency_key": "winter-2026"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["id"], id);

    deliver_all(&app).await;
    for (t, guardians) in [(&a, 30), (&b, 12)] {
        assert_eq!(
            count(
                &app,
                t,
                "select count(*) from notices where county_notice_id is not null"
            )
            .await,
            1
        );
        assert_eq!(
            count(&app, t, "select count(*) from notice_recipients").await,
            guardians
        );
        assert_eq!(
            count(
                &app,
                t,
                "select count(*) from inbox_items where category = 'notices'"
            )
            .await,
            guardians
        );
        // Sanitised as any notice.
        assert_eq!(
            count(
                &app,
                t,
                "select count(*) from notices where body_html like '%script%'"
            )
            .await,
            0
        );
    }

    // A crash after a school's copy committed but before it was ticked off: copying again
    // finds the copy and adds nothing.
    sqlx::query("update public.county_notice_schools set done_at = null, recipients = null")
        .execute(&app.services.pool)
        .await
        .unwrap();
    deliver_all(&app).await;
    for (t, guardians) in [(&a, 30), (&b, 12)] {
        assert_eq!(count(&app, t, "select count(*) from notices").await, 1);
        assert_eq!(
            count(&app, t, "select count(*) from inbox_items").await,
            guardians
        );
    }

    // A guardian of A reads and confirms; the county sees the counts, not the person.
    let mut parent = guardian(&app, &a, "county.parent").await;
    let host = TestApp::school_host("county-a");
    let inbox: Value = parent
        .get(&host, "/api/v1/inbox")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inbox["unread"], 1, "{inbox}");
    let link = inbox["items"][0]["link"].as_str().unwrap().to_owned();
    let page = parent.get(&host, &link).await;
    assert_eq!(page.status(), StatusCode::OK);
    let body = page.text().await.unwrap();
    assert!(
        body.contains("关于寒假安全的通知") && body.contains("县教育局"),
        "{body}"
    );

    let detail: Value = app
        .admin(Method::GET, &format!("/admin/v1/notices/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["schools_done"], 2, "{detail}");
    assert_eq!(detail["recipients"], 42);
    let per: Vec<&Value> = detail["per_school"].as_array().unwrap().iter().collect();
    assert_eq!(per.len(), 2);
    assert_eq!(per[0]["slug"], "county-a");
    assert_eq!(per[0]["state"], "done");
    assert_eq!(per[0]["recipients"], 30);
    assert_eq!(per[0]["read"], 1);
    assert_eq!(per[1]["read"], 0);
    assert!(
        !detail.to_string().contains("g0"),
        "names stay in the school: {detail}"
    );

    let list: Value = app
        .admin(Method::GET, "/admin/v1/notices")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["notices"][0]["id"], id);
    app.stop().await;
}

#[tokio::test]
async fn a_notice_for_chosen_schools_leaves_the_others_untouched() {
    let app = TestApp::spawn().await;
    let a = school(&app, "only-a", 5).await;
    let b = school(&app, "not-b", 5).await;
    let (status, sent) = post(
        &app,
        json!({"title": "甲校专项通知", "body": "仅甲校", "audience": "everyone", "schools": ["only-a"]}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent["schools"], 1);
    deliver_all(&app).await;
    assert_eq!(count(&app, &a, "select count(*) from notices").await, 1);
    assert_eq!(count(&app, &b, "select count(*) from notices").await, 0);
    assert_eq!(count(&app, &b, "select count(*) from inbox_items").await, 0);
    // "everyone": the guardians and the school's staff (the first admin's staff row, if any).
    let staff = count(&app, &a, "select count(*) from staff where active").await;
    assert_eq!(
        count(&app, &a, "select count(*) from notice_recipients").await,
        5 + staff
    );
    // B's guardian sees nothing of it at B's host.
    let mut parent = guardian(&app, &b, "b.parent").await;
    let inbox: Value = parent
        .get(&TestApp::school_host("not-b"), "/api/v1/inbox")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inbox["unread"], 0, "{inbox}");
    assert_eq!(inbox["items"].as_array().map(Vec::len), Some(0), "{inbox}");
    app.stop().await;
}

#[tokio::test]
async fn bad_county_notices_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    school(&app, "bad-a", 3).await;
    for (body, needle) in [
        (
            json!({"title": "", "body": "x", "audience": "guardians"}),
            "title",
        ),
        (
            json!({"title": "t", "body": "x", "audience": "parents"}),
            "audience",
        ),
        (
            json!({"title": "t", "body": "x", "audience": "guardians", "mode": "signature"}),
            "mode",
        ),
        (
            json!({"title": "t", "body": "x", "audience": "guardians", "schools": ["nope-school"]}),
            "nope-school",
        ),
        (
            json!({"title": "t", "body": "x", "audience": "guardians", "schools": []}),
            "schools",
        ),
        (
            json!({"title": "t", "body": "x", "audience": "guardians", "deadline": "2001-01-01T00:00:00Z"}),
            "deadline",
        ),
        (
            json!({"title": "t", "body": "长".repeat(20_001), "audience": "guardians"}),
            "body",
        ),
    ] {
        let (status, err) = post(&app, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    let (status, _) = post(
        &app,
        json!({"title": "t", "body": "x", "audience": "guardians", "extra": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Without a token.
    let r = app
        .http
        .post(app.url("/admin/v1/notices"))
        .header(
            reqwest::header::HOST,
            format!("admin.{}", crate::helpers::BASE),
        )
        .json(&json!({"title": "t", "body": "x", "audience": "guardians"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let stored: i64 = sqlx::query_scalar("select count(*) from public.county_notices")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    let r = app
        .admin(Method::GET, "/admin/v1/notices/999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn the_receipts_show_how_each_copy_was_delivered_by_mail() {
    use crate::fanout::{app_with, enable, AWAKE};
    let sink = campus_devstack::SmtpSink::start(0).await.unwrap();
    let url = sink.url();
    let app = app_with(|c| c.smtp_url = Some(url)).await;
    let a = school(&app, "mailed-a", 8).await;
    enable(&app, &a, true, false, AWAKE).await;
    let (status, _) = post(
        &app,
        json!({"title": "防溺水提醒", "body": "<p>不去河边</p>", "audience": "guardians"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    deliver_all(&app).await;
    app.services.notifier.drain().await.unwrap();
    assert_eq!(sink.mail().len(), 8);

    crate::helpers::person(
        &app.services,
        "mailed.admin",
        "管理员",
        PW,
        &[(&a, &["school_admin"])],
    )
    .await;
    let host = TestApp::school_host("mailed-a");
    let mut admin = Visitor::new(&app);
    assert!(admin
        .sign_in(&host, "mailed.admin", PW)
        .await
        .status()
        .is_redirection());
    let copy = count(&app, &a, "select id from notices").await;
    let r = admin
        .get(&host, &format!("/api/v1/notices/{copy}/receipts"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let receipts: Value = r.json().await.unwrap();
    assert_eq!(receipts["delivery"][0]["channel"], "email", "{receipts}");
    assert_eq!(receipts["delivery"][0]["sent"], 8);
    assert_eq!(receipts["delivery"][0]["dead"], 0);
    assert_eq!(
        receipts["classes"][0]["unread"][0]["deliveries"][0]["status"],
        "sent"
    );
    let page = admin
        .get(&host, &format!("/notices/{copy}/receipts"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("邮件 已发送 <b class=\"sent\">8</b>"),
        "{page}"
    );
    app.stop().await;
}

/// The value of the hidden form field `name` on a page.
fn field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} on {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

async fn stored(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from public.county_notices")
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
}

/// The education bureau sends from its page on the county host: bad input comes back as
/// the form with a message and nothing stored; the form's key makes a resubmitted form send
/// once; the progress page shows counts per school; nobody else can use the pages.
#[tokio::test]
async fn the_bureau_sends_a_county_notice_from_its_page_and_follows_each_school() {
    let app = TestApp::spawn().await;
    let a = school(&app, "cpage-a", 8).await;
    let b = school(&app, "cpage-b", 5).await;
    let county = format!("county.{}", crate::helpers::BASE);
    let hash = app.services.identity.hasher.hash(PW).await.unwrap();
    account::ensure(
        &app.services.pool,
        &NewAccount {
            username: Some("kezhang"),
            phone: None,
            display_name: "王科长",
            password_hash: &hash,
            county_role: Some("bureau"),
        },
    )
    .await
    .unwrap();

    // Nobody signed in, and a guardian of school A, get neither the page nor a send.
    let mut stranger = Visitor::new(&app);
    assert_ne!(
        stranger.get(&county, "/notices").await.status(),
        StatusCode::OK
    );
    let mut parent = guardian(&app, &a, "cpage.parent").await;
    let own = TestApp::school_host(a.slug.as_str());
    let session = parent.cookie(&own, "campus_session").unwrap();
    parent.set_cookie(&county, "campus_session", &session);
    assert_ne!(
        parent.get(&county, "/notices").await.status(),
        StatusCode::OK
    );
    let r = parent
        .post(
            &county,
            "/notices",
            &[
                ("csrf", "x"),
                ("title", "假通知"),
                ("body", "x"),
                ("audience", "guardians"),
            ],
        )
        .await;
    // Not signed in here: sent to sign in, never to a notice.
    let to = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        r.status().is_client_error() || (r.status().is_redirection() && to.contains("login")),
        "{} {to}",
        r.status()
    );
    assert_eq!(stored(&app).await, 0);

    let mut v = Visitor::new(&app);
    assert_eq!(
        v.sign_in(&county, "kezhang", PW).await.status(),
        StatusCode::SEE_OTHER
    );
    let dashboard = v.get(&county, "/dashboard").await.text().await.unwrap();
    assert!(
        dashboard.contains("href=\"/notices\""),
        "the dashboard links to the notices"
    );
    let page = v.get(&county, "/notices").await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("发布全县通知") && page.contains("id=\"no-notices\""));
    let (csrf, key) = (field(&page, "csrf"), field(&page, "key"));

    // Bad input: the form again with what was typed, a message, and nothing stored.
    for (form, says) in [
        (
            vec![("title", ""), ("body", "正文"), ("audience", "guardians")],
            "标题",
        ),
        (
            vec![("title", "通知"), ("body", "  "), ("audience", "guardians")],
            "正文",
        ),
        (
            vec![("title", "通知"), ("body", "正文"), ("audience", "pupils")],
            "发送对象",
        ),
        (
            vec![
                ("title", "通知"),
                ("body", "正文"),
                ("audience", "guardians"),
                ("mode", "confirm"),
                ("deadline", "2020-01-01T08:00"),
            ],
            "截止时间",
        ),
        (
            vec![
                ("title", "通知"),
                ("body", "正文"),
                ("audience", "guardians"),
                ("school", "no-such-school"),
            ],
            "学校不存在",
        ),
    ] {
        let mut fields = vec![("csrf", csrf.as_str()), ("key", key.as_str())];
        fields.extend(form);
        let r = v.post(&county, "/notices", &fields).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let text = r.text().await.unwrap();
        let error = text
            .split("id=\"form-error\">")
            .nth(1)
            .and_then(|e| e.split("</p>").next())
            .unwrap_or_else(|| panic!("no error on {text}"));
        assert!(error.contains(says), "{says}: {error}");
        assert!(
            text.contains("value=\"通知\"") || text.contains("正文</textarea>"),
            "what was typed is kept"
        );
    }
    let r = v
        .post(
            &county,
            "/notices",
            &[
                ("csrf", "forged"),
                ("key", &key),
                ("title", "通知"),
                ("body", "正文"),
                ("audience", "guardians"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(stored(&app).await, 0);

    // Sent to school A only; the same form submitted twice sends once.
    let form = [
        ("csrf", csrf.as_str()),
        ("key", key.as_str()),
        ("title", "寒潮预警"),
        ("body", "明天降温\r\n注意保暖\r\n\r\n县教育局"),
        ("audience", "guardians"),
        ("mode", "confirm"),
        ("school", a.slug.as_str()),
    ];
    let first = v.post(&county, "/notices", &form).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let at = first.headers()["location"].to_str().unwrap().to_owned();
    assert!(at.starts_with("/notices/"), "{at}");
    let again = v.post(&county, "/notices", &form).await;
    assert_eq!(again.headers()["location"].to_str().unwrap(), at);
    assert_eq!(stored(&app).await, 1);

    deliver_all(&app).await;
    let body: String = {
        let mut tx = app.services.db.school(&a).await.unwrap();
        let body =
            sqlx::query_scalar("select body_html from notices where county_notice_id is not null")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        tx.commit().await.unwrap();
        body
    };
    assert_eq!(body, "<p>明天降温<br>注意保暖</p><p>县教育局</p>");
    assert_eq!(
        count(&app, &b, "select count(*) from notices").await,
        0,
        "school B was not chosen"
    );
    let progress = v.get(&county, &at).await;
    assert_eq!(progress.status(), StatusCode::OK);
    let progress = progress.text().await.unwrap();
    assert!(progress.contains("cpage-a 学校") && !progress.contains("cpage-b 学校"));
    assert!(progress.contains("已送达") && progress.contains("<td class=\"num\">8</td>"));
    assert!(
        progress.contains("已确认"),
        "a confirm notice shows the confirmed column"
    );
    let list = v.get(&county, "/notices").await.text().await.unwrap();
    assert!(list.contains("寒潮预警") && list.contains("1 / 1"));
    assert_eq!(
        v.get(&county, "/notices/999999").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        v.get(&county, "/notices/abc").await.status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}
