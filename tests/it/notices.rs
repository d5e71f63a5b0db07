//! Notices with receipts and the in-app inbox: a class notice reaches its guardians' inboxes,
//! reading and signing are recorded, the sender follows receipts per class, reminds only
//! those who have not read (once a day) and exports the receipts; bodies are sanitised and
//! bounded, teachers address only the classes they head, non-recipients see nothing, one
//! school's ids and sessions mean nothing at another's host, and a school-wide notice to
//! thousands of guardians is written in one request.

use calamine::Reader;
use campus_identity::account;
use campus_tenant::{ObjectKey, Tenant};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;

use crate::helpers::{person, TestApp, Visitor};

const PW: &str = "campus2026";
/// A valid 1×1 PNG.
const PNG_1X1: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

fn host(slug: &str) -> String {
    TestApp::school_host(slug)
}

struct School {
    head: i64,
    principal: i64,
    classes: [i64; 2],
    /// Guardians of the two pupils of class 1, then of the pupil of class 2.
    guardians: [i64; 3],
}

/// Two classes (the first headed by `T1`), two pupils with a guardian each in class 1 and
/// one in class 2, and staff `T2` (the principal).
async fn school(app: &TestApp, t: &Tenant) -> School {
    let mut tx = app.services.db.school(t).await.unwrap();
    let head: i64 = sqlx::query_scalar(
        "insert into staff (staff_no, name) values ('T1', '李班主任') returning id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let principal: i64 = sqlx::query_scalar(
        "insert into staff (staff_no, name, title) values ('T2', '王校长', 'principal') returning id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::query("insert into grades (level, name) values (3, '三年级')")
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut classes = [0; 2];
    for n in 1..=2i16 {
        classes[n as usize - 1] = sqlx::query_scalar(
            "insert into classes (grade_id, number, name, head_teacher_id)
             select id, $1, '三年级（' || $1 || '）班', case when $1 = 1 then $2 end from grades returning id",
        )
        .bind(n)
        .bind(head)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    }
    let mut guardians = [0; 3];
    for (i, (class, name)) in [
        (classes[0], "张妈妈"),
        (classes[0], "赵爸爸"),
        (classes[1], "孙妈妈"),
    ]
    .into_iter()
    .enumerate()
    {
        let pupil: i64 = sqlx::query_scalar(
            "insert into students (student_no, name, class_id) values ($1, $2, $3) returning id",
        )
        .bind(format!("S{i}"))
        .bind(format!("学生{i}"))
        .bind(class)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        guardians[i] = sqlx::query_scalar("insert into guardians (name) values ($1) returning id")
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        sqlx::query("insert into student_guardians (student_id, guardian_id) values ($1, $2)")
            .bind(pupil)
            .bind(guardians[i])
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    School {
        head,
        principal,
        classes,
        guardians,
    }
}

/// Accounts `<p>.head`, `<p>.principal` and `<p>.parent0..2` in school `t`.
async fn accounts(app: &TestApp, t: &Tenant, s: &School, p: &str) {
    let pool = &app.services.pool;
    let head = person(&app.services, &format!("{p}.head"), "李班主任", PW, &[]).await;
    account::set_membership(
        pool,
        head,
        t.id.0,
        &["teacher", "head_teacher"],
        Some(s.head),
        None,
    )
    .await
    .unwrap();
    let principal = person(&app.services, &format!("{p}.principal"), "王校长", PW, &[]).await;
    account::set_membership(
        pool,
        principal,
        t.id.0,
        &["principal"],
        Some(s.principal),
        None,
    )
    .await
    .unwrap();
    for (i, g) in s.guardians.iter().enumerate() {
        let a = person(&app.services, &format!("{p}.parent{i}"), "家长", PW, &[]).await;
        account::set_membership(pool, a, t.id.0, &["parent"], None, Some(*g))
            .await
            .unwrap();
    }
}

async fn signed_in<'a>(app: &'a TestApp, slug: &str, login: &str) -> Visitor<'a> {
    let mut v = Visitor::new(app);
    assert_eq!(
        v.sign_in(&host(slug), login, PW).await.status(),
        StatusCode::SEE_OTHER
    );
    v
}

fn notice_form(
    csrf: &str,
    title: &str,
    body: &str,
    audience: &[(&str, String)],
    mode: &str,
) -> Form {
    let mut f = Form::new()
        .text("csrf", csrf.to_owned())
        .text("title", title.to_owned())
        .text("body", body.to_owned())
        .text("mode", mode.to_owned());
    for (k, v) in audience {
        f = f.text(k.to_string(), v.clone());
    }
    f
}

fn id_from_location(resp: &reqwest::Response) -> i64 {
    let loc = resp.headers()["location"].to_str().unwrap();
    loc.trim_start_matches("/notices/")
        .trim_end_matches("/receipts")
        .parse()
        .unwrap()
}

async fn count(app: &TestApp, t: &Tenant, sql: &str) -> i64 {
    let mut tx = app.services.db.school(t).await.unwrap();
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    n
}

async fn inbox(v: &mut Visitor<'_>, slug: &str) -> serde_json::Value {
    let r = v.get(&host(slug), "/api/v1/inbox").await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_class_notice_is_read_signed_reminded_and_exported_per_class() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let s = school(&app, &a).await;
    accounts(&app, &a, &s, "a").await;
    let h = host("school-a");

    let mut head = signed_in(&app, "school-a", "a.head").await;
    let csrf = head.csrf(&h, "/notices/new").await;
    let form = notice_form(
        &csrf,
        "春游安排",
        r#"<p onclick="steal()">请家长签字<script>alert(1)</script><img src="x.png" onerror="steal()"></p>"#,
        &[("audience", "classes".into()), ("class_ids", s.classes[0].to_string())],
        "signature",
    )
    .part(
        "file",
        Part::bytes(b"day plan".to_vec())
            .file_name("春游 安排.txt")
            .mime_str("text/plain")
            .unwrap(),
    );
    let sent = head.post_multipart(&h, "/notices", form, &[]).await;
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    let id = id_from_location(&sent);
    assert_eq!(
        count(
            &app,
            &a,
            &format!(
                "select count(*) from notice_recipients where notice_id = {id} and class_id = {}",
                s.classes[0]
            )
        )
        .await,
        2
    );
    let body_html: String = {
        let mut tx = app.services.db.school(&a).await.unwrap();
        sqlx::query_scalar("select body_html from notices where id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .unwrap()
    };
    assert!(body_html.contains("请家长签字"), "{body_html}");
    for bad in ["script", "alert", "onclick", "onerror", "steal"] {
        assert!(!body_html.contains(bad), "{bad} in {body_html}");
    }

    // The first guardian: unread in the inbox, read on opening, then signs.
    let mut p0 = signed_in(&app, "school-a", "a.parent0").await;
    let before = inbox(&mut p0, "school-a").await;
    assert_eq!(before["unread"], 1);
    assert_eq!(before["items"][0]["title"], "春游安排");
    assert_eq!(before["items"][0]["link"], format!("/notices/{id}"));
    let page = p0.get(&h, "/inbox").await.text().await.unwrap();
    assert!(
        page.contains("春游安排") && page.contains("未读 1"),
        "{page}"
    );
    let view = p0.get(&h, &format!("/notices/{id}")).await;
    assert_eq!(view.status(), StatusCode::OK);
    let view = view.text().await.unwrap();
    assert!(view.contains("请家长签字") && view.contains("id=\"sign-form\""));
    assert!(!view.contains("alert(1)") && !view.contains("steal()"));
    assert_eq!(inbox(&mut p0, "school-a").await["unread"], 0);
    assert_eq!(
        count(&app, &a, &format!("select count(*) from notice_recipients where notice_id = {id} and read_at is not null")).await,
        1
    );
    let file = p0.get(&h, &format!("/notices/{id}/files/1")).await;
    assert_eq!(file.status(), StatusCode::OK);
    let disposition = file.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"")
            && disposition.contains("filename*=UTF-8''%E6%98%A5%E6%B8%B8%20"),
        "{disposition}"
    );
    assert_eq!(file.bytes().await.unwrap().as_ref(), b"day plan");
    let csrf0 = p0.csrf(&h, &format!("/notices/{id}")).await;
    let signed = p0
        .post(
            &h,
            &format!("/notices/{id}/confirm"),
            &[
                ("csrf", &csrf0),
                ("signature_name", "张三"),
                ("signature_png", PNG_1X1),
            ],
        )
        .await;
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    let (name, key): (Option<String>, Option<String>) = {
        let mut tx = app.services.db.school(&a).await.unwrap();
        sqlx::query_as(
            "select signature_name, signature_key from notice_recipients
              where notice_id = $1 and recipient_id = $2 and confirmed_at is not null",
        )
        .bind(id)
        .bind(s.guardians[0])
        .fetch_one(&mut *tx)
        .await
        .unwrap()
    };
    assert_eq!(name.as_deref(), Some("张三"));
    let (png, _) = app
        .services
        .store
        .for_tenant(&a)
        .get(&ObjectKey::parse(&key.unwrap()).unwrap())
        .await
        .unwrap()
        .expect("the drawn signature is stored");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // Not a PNG: refused, nothing recorded.
    let mut p1 = signed_in(&app, "school-a", "a.parent1").await;
    let csrf1 = p1.csrf(&h, &format!("/notices/{id}")).await;
    let refused = p1
        .post(
            &h,
            &format!("/notices/{id}/confirm"),
            &[
                ("csrf", &csrf1),
                ("signature_png", "data:image/png;base64,PHN2Zz48L3N2Zz4="),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        count(&app, &a, &format!("select count(*) from notice_recipients where notice_id = {id} and confirmed_at is not null")).await,
        1
    );
    // Mark the second guardian unread again so that the reminder has someone to reach.
    {
        let mut tx = app.services.db.school(&a).await.unwrap();
        sqlx::query("update notice_recipients set read_at = null where notice_id = $1 and recipient_id = $2")
            .bind(id)
            .bind(s.guardians[1])
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    // A guardian of another class is no recipient: no notice, no attachment.
    let mut p2 = signed_in(&app, "school-a", "a.parent2").await;
    assert_eq!(
        p2.get(&h, &format!("/notices/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        p2.get(&h, &format!("/notices/{id}/files/1")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(inbox(&mut p2, "school-a").await["unread"], 0);
    // Nor may a recipient read the receipts.
    assert_eq!(
        p0.get(&h, &format!("/notices/{id}/receipts"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // The sender's receipts per class.
    let receipts = head.get(&h, &format!("/notices/{id}/receipts")).await;
    assert_eq!(receipts.status(), StatusCode::OK);
    let receipts = receipts.text().await.unwrap();
    assert!(receipts.contains("三年级（1）班"), "{receipts}");
    assert!(receipts.contains("张妈妈（张三）✍"), "{receipts}");
    assert!(receipts.contains("<b>未读：</b>赵爸爸"), "{receipts}");
    let json: serde_json::Value = head
        .get(&h, &format!("/api/v1/notices/{id}/receipts"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(json["total"], 2);
    assert_eq!(json["read"], 1);
    assert_eq!(json["unread"], 1);
    assert_eq!(json["signed"], 1);
    assert_eq!(json["classes"].as_array().unwrap().len(), 1);
    assert_eq!(json["classes"][0]["unread"][0]["name"], "赵爸爸");
    assert_eq!(json["classes"][0]["signed"][0]["signature_name"], "张三");
    let list = head.get(&h, "/notices").await.text().await.unwrap();
    assert!(
        list.contains("春游安排") && list.contains("class=\"read\">1/2<"),
        "{list}"
    );

    // Remind: only the unread guardian, and once a day.
    let reminders = format!(
        "select count(*) from inbox_items where source = 'notice:{id}' and dedupe_key like 'notice:{id}:remind:%'"
    );
    let csrf_h = head.csrf(&h, &format!("/notices/{id}/receipts")).await;
    for _ in 0..2 {
        let r = head
            .post(&h, &format!("/notices/{id}/remind"), &[("csrf", &csrf_h)])
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(count(&app, &a, &reminders).await, 1);
    }
    assert_eq!(
        count(
            &app,
            &a,
            &format!(
                "{reminders} and recipient_id = {} and recipient_kind = 'guardian'",
                s.guardians[1]
            )
        )
        .await,
        1
    );
    assert_eq!(
        inbox(&mut p1, "school-a").await["unread"],
        1,
        "the reminder"
    );
    assert_eq!(inbox(&mut p0, "school-a").await["unread"], 0);
    let no_csrf = head.post(&h, &format!("/notices/{id}/remind"), &[]).await;
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);

    // XLSX export of the receipts.
    let x = head.get(&h, &format!("/notices/{id}/receipts.xlsx")).await;
    assert_eq!(x.status(), StatusCode::OK);
    let bytes = x.bytes().await.unwrap();
    let mut book =
        calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let sheet = book.worksheet_range("回执").unwrap();
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0][..3], ["班级", "姓名", "身份"]);
    assert!(
        rows.iter()
            .any(|r| r[1] == "张妈妈" && r[5] == "张三（手写）"),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| r[1] == "赵爸爸" && r[3].is_empty()),
        "{rows:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn oversized_bodies_and_other_classes_are_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let s = school(&app, &a).await;
    accounts(&app, &a, &s, "a").await;
    let h = host("school-a");
    let mut head = signed_in(&app, "school-a", "a.head").await;
    let csrf = head.csrf(&h, "/notices/new").await;
    let own = [
        ("audience", "classes".to_owned()),
        ("class_ids", s.classes[0].to_string()),
    ];

    let huge = "字".repeat(20_001);
    let r = head
        .post_multipart(
            &h,
            "/notices",
            notice_form(&csrf, "太长", &huge, &own, "read"),
            &[],
        )
        .await;
    assert!(
        [
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::UNPROCESSABLE_ENTITY
        ]
        .contains(&r.status()),
        "{}",
        r.status()
    );
    let other = [
        ("audience", "classes".to_owned()),
        ("class_ids", s.classes[1].to_string()),
    ];
    let r = head
        .post_multipart(
            &h,
            "/notices",
            notice_form(&csrf, "别班", "x", &other, "read"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let both = [
        ("audience", "classes".to_owned()),
        ("class_ids", s.classes[0].to_string()),
        ("class_ids", s.classes[1].to_string()),
    ];
    let r = head
        .post_multipart(
            &h,
            "/notices",
            notice_form(&csrf, "两个班", "x", &both, "read"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let everyone = [("audience", "guardians".to_owned())];
    let r = head
        .post_multipart(
            &h,
            "/notices",
            notice_form(&csrf, "全校", "x", &everyone, "read"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = head
        .post_multipart(
            &h,
            "/notices",
            notice_form("wrong", "令牌", "x", &own, "read"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    for table in [
        "notices",
        "notice_recipients",
        "notice_attachments",
        "inbox_items",
    ] {
        assert_eq!(
            count(&app, &a, &format!("select count(*) from {table}")).await,
            0,
            "{table}"
        );
    }

    // A parent cannot send at all; the principal may address the whole school by API.
    let mut parent = signed_in(&app, "school-a", "a.parent0").await;
    let r = parent
        .post_multipart(
            &h,
            "/notices",
            notice_form(&csrf, "家长", "x", &own, "read"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let mut principal = signed_in(&app, "school-a", "a.principal").await;
    let token = principal.csrf(&h, "/notices/new").await;
    let r = principal
        .post_multipart(
            &h,
            "/api/v1/notices",
            notice_form("", "全校家长会", "<b>周五</b>", &everyone, "confirm"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no X-CSRF-Token");
    let r = principal
        .post_multipart(
            &h,
            "/api/v1/notices",
            notice_form("", "全校家长会", "<b>周五</b>", &everyone, "confirm"),
            &[("X-CSRF-Token", &token)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let sent: serde_json::Value = r.json().await.unwrap();
    assert_eq!(sent["recipients"], 3);
    assert_eq!(
        count(
            &app,
            &a,
            "select count(*) from inbox_items where category = 'notices'"
        )
        .await,
        3
    );
    let id = sent["id"].as_i64().unwrap();
    let csrf_p = parent.csrf(&h, &format!("/notices/{id}")).await;
    let r = parent
        .post(&h, &format!("/notices/{id}/confirm"), &[("csrf", &csrf_p)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        count(
            &app,
            &a,
            "select count(*) from notice_recipients where confirmed_at is not null"
        )
        .await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn notice_ids_and_sessions_mean_nothing_at_another_schools_host() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    let sa = school(&app, &a).await;
    let sb = school(&app, &b).await;
    accounts(&app, &a, &sa, "a").await;
    accounts(&app, &b, &sb, "b").await;
    let (ha, hb) = (host("school-a"), host("school-b"));

    let mut b_principal = signed_in(&app, "school-b", "b.principal").await;
    let csrf = b_principal.csrf(&hb, "/notices/new").await;
    let mut ids = Vec::new();
    for title in ["乙校通知一", "乙校机密通知"] {
        let form = notice_form(
            &csrf,
            title,
            "仅乙校",
            &[("audience", "guardians".into())],
            "read",
        )
        .part("file", Part::bytes(b"secret-b".to_vec()).file_name("b.txt"));
        let r = b_principal.post_multipart(&hb, "/notices", form, &[]).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        ids.push(id_from_location(&r));
    }
    let id = ids[1];
    assert_eq!(
        b_principal
            .get(&hb, &format!("/notices/{id}/receipts"))
            .await
            .status(),
        StatusCode::OK
    );

    // School A has one notice of its own (id 1); B's id 2 names nothing at A's host.
    let mut a_principal = signed_in(&app, "school-a", "a.principal").await;
    let csrf_a = a_principal.csrf(&ha, "/notices/new").await;
    let r = a_principal
        .post_multipart(
            &ha,
            "/notices",
            notice_form(
                &csrf_a,
                "甲校通知",
                "甲",
                &[("audience", "staff".into())],
                "read",
            ),
            &[],
        )
        .await;
    assert_eq!(id_from_location(&r), 1);
    for path in [
        format!("/notices/{id}"),
        format!("/notices/{id}/receipts"),
        format!("/notices/{id}/receipts.xlsx"),
        format!("/api/v1/notices/{id}/receipts"),
        format!("/notices/{id}/files/1"),
    ] {
        let r = a_principal.get(&ha, &path).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let text = r.text().await.unwrap();
        assert!(
            !text.contains("乙校") && !text.contains("secret-b"),
            "{path}: {text}"
        );
    }
    let own = a_principal
        .get(&ha, "/notices/1/receipts")
        .await
        .text()
        .await
        .unwrap();
    assert!(own.contains("甲校通知") && !own.contains("乙校"));

    // A's session cookie replayed at B's host is no session there.
    let cookie = a_principal.cookie(&ha, "campus_session").unwrap();
    let mut replay = Visitor::new(&app);
    replay.set_cookie(&hb, "campus_session", &cookie);
    for path in [
        format!("/notices/{id}/receipts"),
        format!("/notices/{id}/files/1"),
        "/inbox".into(),
    ] {
        let r = replay.get(&hb, &path).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers()["location"], "/login");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_school_wide_notice_to_six_thousand_guardians_is_one_request() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let s = school(&app, &a).await;
    accounts(&app, &a, &s, "a").await;
    {
        let mut tx = app.services.db.school(&a).await.unwrap();
        sqlx::query(
            "insert into students (student_no, name, class_id)
             select 'B' || g, '学生' || g, $1 from generate_series(1, 5997) as g",
        )
        .bind(s.classes[1])
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "insert into guardians (name, phone) select '家长' || g, 'bulk-' || g from generate_series(1, 5997) as g",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "insert into student_guardians (student_id, guardian_id)
             select s.id, g.id from students s join guardians g on g.phone = 'bulk-' || substr(s.student_no, 2)
              where s.student_no like 'B%'",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let h = host("school-a");
    let mut principal = signed_in(&app, "school-a", "a.principal").await;
    let token = principal.csrf(&h, "/notices/new").await;
    let r = principal
        .post_multipart(
            &h,
            "/api/v1/notices",
            notice_form(
                "",
                "全校安全通知",
                "注意安全",
                &[("audience", "guardians".into())],
                "confirm",
            ),
            &[("X-CSRF-Token", &token)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let sent: serde_json::Value = r.json().await.unwrap();
    assert_eq!(sent["recipients"], 6000);
    let id = sent["id"].as_i64().unwrap();
    assert_eq!(
        count(
            &app,
            &a,
            &format!("select count(*) from notice_recipients where notice_id = {id}")
        )
        .await,
        6000
    );
    assert_eq!(
        count(
            &app,
            &a,
            &format!("select count(*) from inbox_items where dedupe_key = 'notice:{id}'")
        )
        .await,
        6000
    );
    let json: serde_json::Value = principal
        .get(&h, &format!("/api/v1/notices/{id}/receipts"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(json["unread"], 6000);
    assert_eq!(json["classes"].as_array().unwrap().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn demo_notices_arrive_with_receipts_once() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let s = school(&app, &a).await;
    accounts(&app, &a, &s, "a").await;
    let sender_id: i64 =
        sqlx::query_scalar("select id from accounts where username = 'a.principal'")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    let sender = campus_school::demo::DemoSender {
        account_id: sender_id,
        name: "王校长",
        staff_id: s.principal,
    };
    for expected in [2, 0] {
        let added = campus_school::demo::seed_notices(&app.services.db, &a, &sender)
            .await
            .unwrap();
        assert_eq!(added, expected);
    }
    // Three guardians and two staff; those whose id is not a multiple of 3 have read.
    assert_eq!(
        count(&app, &a, "select count(*) from notice_recipients").await,
        5
    );
    assert_eq!(
        count(
            &app,
            &a,
            "select count(*) from inbox_items where category = 'notices'"
        )
        .await,
        5
    );
    assert_eq!(
        count(
            &app,
            &a,
            "select count(*) from notice_recipients where read_at is null"
        )
        .await,
        count(
            &app,
            &a,
            "select count(*) from inbox_items where read_at is null"
        )
        .await
    );
    let h = host("school-a");
    let mut principal = signed_in(&app, "school-a", "a.principal").await;
    let list = principal.get(&h, "/notices").await.text().await.unwrap();
    assert!(
        list.contains("防溺水") && list.contains("教职工大会"),
        "{list}"
    );
    let mut parent = signed_in(&app, "school-a", "a.parent2").await;
    let items = inbox(&mut parent, "school-a").await;
    assert_eq!(items["items"][0]["category"], "notices");
    let unread = items["unread"].as_i64().unwrap();
    let item = items["items"][0]["id"].as_i64().unwrap();
    let link = items["items"][0]["link"].as_str().unwrap().to_owned();
    let csrf = parent.csrf(&h, "/inbox").await;
    let opened = parent
        .post(&h, &format!("/inbox/{item}/read"), &[("csrf", &csrf)])
        .await;
    assert_eq!(opened.status(), StatusCode::SEE_OTHER);
    assert_eq!(opened.headers()["location"], link.as_str());
    let after = inbox(&mut parent, "school-a").await;
    assert_eq!(after["items"][0]["read"], true);
    assert_eq!(after["unread"].as_i64().unwrap(), (unread - 1).max(0));
    // Someone else's item is not found; without the token nothing happens.
    let mut other = signed_in(&app, "school-a", "a.parent0").await;
    let csrf0 = other.csrf(&h, "/inbox").await;
    let r = other
        .post(&h, &format!("/inbox/{item}/read"), &[("csrf", &csrf0)])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = other.post(&h, &format!("/inbox/{item}/read"), &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

/// Sends a notice through the JSON API as `v`; returns the response.
async fn send_api(
    v: &mut Visitor<'_>,
    slug: &str,
    title: &str,
    audience: &[(&str, String)],
) -> reqwest::Response {
    let token = v.csrf(&host(slug), "/me").await;
    v.post_multipart(
        &host(slug),
        "/api/v1/notices",
        notice_form("", title, "正文", audience, "read"),
        &[("X-CSRF-Token", &token)],
    )
    .await
}

async fn recipients_of(app: &TestApp, t: &Tenant, id: i64) -> Vec<(String, i64)> {
    let mut tx = app.services.db.school(t).await.unwrap();
    let rows = sqlx::query_as(
        "select recipient_kind, recipient_id from notice_recipients where notice_id = $1 order by 1, 2",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    rows
}

#[tokio::test]
async fn a_role_notice_reaches_every_active_holder_staff_and_guardians() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    let s = school(&app, &a).await;
    accounts(&app, &a, &s, "a").await;
    let pool = &app.services.pool;
    // A custom role of school A held by the principal, and one that only school B has.
    for (t, code, name) in [(&a, "x_canteen", "食堂管理"), (&b, "x_bonly", "乙校角色")] {
        sqlx::query("insert into school_roles (tenant_id, code, name) values ($1, $2, $3)")
            .bind(t.id.0)
            .bind(code)
            .bind(name)
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::query(
        "update memberships set roles = roles || '{x_canteen}'::text[]
          where tenant_id = $1 and account_id = (select id from accounts where username = 'a.principal')",
    )
    .bind(a.id.0)
    .execute(pool)
    .await
    .unwrap();
    // A disabled parent's membership is no holder.
    sqlx::query(
        "update memberships set status = 'disabled'
          where tenant_id = $1 and account_id = (select id from accounts where username = 'a.parent2')",
    )
    .bind(a.id.0)
    .execute(pool)
    .await
    .unwrap();

    let mut principal = signed_in(&app, "school-a", "a.principal").await;
    let page = principal
        .get(&host("school-a"), "/notices/new")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("value=\"roles\"") && page.contains("食堂管理") && !page.contains("乙校角色"),
        "{page}"
    );
    let r = send_api(
        &mut principal,
        "school-a",
        "班主任和家长",
        &[
            ("audience", "roles".into()),
            ("roles", "head_teacher".into()),
            ("roles", "parent".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let sent: serde_json::Value = r.json().await.unwrap();
    assert_eq!(sent["recipients"], 3);
    let id = sent["id"].as_i64().unwrap();
    assert_eq!(
        recipients_of(&app, &a, id).await,
        vec![
            ("guardian".to_owned(), s.guardians[0]),
            ("guardian".to_owned(), s.guardians[1]),
            ("staff".to_owned(), s.head),
        ]
    );
    assert_eq!(
        count(
            &app,
            &a,
            &format!("select count(*) from inbox_items where dedupe_key = 'notice:{id}'")
        )
        .await,
        3
    );
    let mut p0 = signed_in(&app, "school-a", "a.parent0").await;
    assert_eq!(
        p0.get(&host("school-a"), &format!("/notices/{id}"))
            .await
            .status(),
        StatusCode::OK
    );

    // The school's own custom role, through the page's form.
    let csrf = principal.csrf(&host("school-a"), "/notices/new").await;
    let r = principal
        .post_multipart(
            &host("school-a"),
            "/notices",
            notice_form(
                &csrf,
                "食堂通知",
                "x",
                &[("audience", "roles".into()), ("roles", "x_canteen".into())],
                "read",
            ),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let canteen = id_from_location(&r);
    assert_eq!(
        recipients_of(&app, &a, canteen).await,
        vec![("staff".to_owned(), s.principal)]
    );

    // Unknown roles, another school's role, bad codes, nobody chosen: 422, nothing written.
    let before = count(&app, &a, "select count(*) from notices").await;
    for roles in ["x_nope", "x_bonly", "Parent!", ""] {
        let r = send_api(
            &mut principal,
            "school-a",
            "坏角色",
            &[("audience", "roles".into()), ("roles", roles.into())],
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{roles}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(!body["message_zh"].as_str().unwrap().is_empty());
    }
    assert_eq!(
        count(&app, &a, "select count(*) from notices").await,
        before
    );

    // A head teacher without school-wide rights may not address roles.
    let mut head = signed_in(&app, "school-a", "a.head").await;
    let r = send_api(
        &mut head,
        "school-a",
        "全体家长",
        &[("audience", "roles".into()), ("roles", "parent".into())],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        count(&app, &a, "select count(*) from notices").await,
        before
    );
    app.stop().await;
}

#[tokio::test]
async fn the_people_picker_finds_this_schools_staff_and_guardians_with_or_without_js() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    let s = school(&app, &a).await;
    let sb = school(&app, &b).await;
    accounts(&app, &a, &s, "a").await;
    accounts(&app, &b, &sb, "b").await;
    {
        let mut tx = app.services.db.school(&a).await.unwrap();
        sqlx::query("update guardians set phone = '13800001234' where id = $1")
            .bind(s.guardians[1])
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = app.services.db.school(&b).await.unwrap();
        sqlx::query("insert into guardians (name, phone) values ('钱乙乙', '13900001234')")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let h = host("school-a");
    let mut principal = signed_in(&app, "school-a", "a.principal").await;
    let find = |v: serde_json::Value| -> Vec<(String, String, String)> {
        v["people"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["key"].as_str().unwrap().to_owned(),
                    p["name"].as_str().unwrap().to_owned(),
                    p["detail"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let r = principal.get(&h, "/api/v1/notices/people?q=张").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        find(r.json().await.unwrap()),
        vec![(
            format!("guardian:{}", s.guardians[0]),
            "张妈妈".to_owned(),
            "学生0（三年级（1）班）".to_owned()
        )]
    );
    // By phone suffix (only this school's 1234), by child's name, staff by name.
    let by_phone: serde_json::Value = principal
        .get(&h, "/api/v1/notices/people?q=1234")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_phone["people"].as_array().unwrap().len(), 1);
    assert_eq!(by_phone["people"][0]["name"], "赵爸爸");
    assert_eq!(by_phone["people"][0]["phone_tail"], "1234");
    let by_child: serde_json::Value = principal
        .get(&h, "/api/v1/notices/people?q=学生2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_child["people"][0]["name"], "孙妈妈");
    let staff: serde_json::Value = principal
        .get(&h, "/api/v1/notices/people?q=王校")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        find(staff),
        vec![(
            format!("staff:{}", s.principal),
            "王校长".to_owned(),
            "T2".to_owned()
        )]
    );
    for q in ["钱乙乙", "", "%25", "_"] {
        let none: serde_json::Value = principal
            .get(&h, &format!("/api/v1/notices/people?q={q}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(none["people"], serde_json::json!([]), "{q}");
    }

    // Only senders with school-wide rights may search; A's session means nothing at B.
    for login in ["a.head", "a.parent0"] {
        let mut v = signed_in(&app, "school-a", login).await;
        assert_eq!(
            v.get(&h, "/api/v1/notices/people?q=张").await.status(),
            StatusCode::FORBIDDEN,
            "{login}"
        );
    }
    let cookie = principal.cookie(&h, "campus_session").unwrap();
    let mut replay = Visitor::new(&app);
    replay.set_cookie(&host("school-b"), "campus_session", &cookie);
    let r = replay
        .get(&host("school-b"), "/api/v1/notices/people?q=钱")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // Without JavaScript: the search reloads the form with results as checkboxes, keeping
    // what was written and who was already chosen.
    let page = principal
        .get(
            &h,
            &format!(
                "/notices/new?title=%E6%98%A5%E6%B8%B8&q=%E5%BC%A0&search=1&people=guardian:{}&people=guardian:999999",
                s.guardians[1]
            ),
        )
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("value=\"春游\""), "{page}");
    assert!(
        page.contains(&format!(
            "name=\"people\" value=\"guardian:{}\" checked> 赵爸爸",
            s.guardians[1]
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "name=\"people\" value=\"guardian:{}\"> 家长 张妈妈",
            s.guardians[0]
        )),
        "{page}"
    );
    assert!(!page.contains("guardian:999999"));
    assert!(page.contains("id=\"aud-people\" checked"));
    let nobody = principal
        .get(&h, "/notices/new?q=%E9%92%B1&search=1")
        .await
        .text()
        .await
        .unwrap();
    assert!(nobody.contains("id=\"people-none\""));

    // The chosen checkboxes are sent as repeated `people` fields; the comma-separated
    // `people` format still works for the API.
    let csrf = principal.csrf(&h, "/notices/new").await;
    let r = principal
        .post_multipart(
            &h,
            "/notices",
            notice_form(
                &csrf,
                "两位家长",
                "x",
                &[
                    ("audience", "people".into()),
                    ("people", format!("guardian:{}", s.guardians[0])),
                    ("people", format!("guardian:{}", s.guardians[1])),
                ],
                "read",
            ),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let id = id_from_location(&r);
    assert_eq!(recipients_of(&app, &a, id).await.len(), 2);
    let r = send_api(
        &mut principal,
        "school-a",
        "旧格式",
        &[
            ("audience", "people".into()),
            (
                "people",
                format!("staff:{},guardian:{}", s.head, s.guardians[2]),
            ),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        recipients_of(&app, &a, id).await,
        vec![
            ("guardian".to_owned(), s.guardians[2]),
            ("staff".to_owned(), s.head)
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn drawn_signatures_show_on_the_receipts_to_the_sender_and_admins_only() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    let s = school(&app, &a).await;
    let sb = school(&app, &b).await;
    accounts(&app, &a, &s, "a").await;
    accounts(&app, &b, &sb, "b").await;
    person(
        &app.services,
        "a.admin",
        "管理员",
        PW,
        &[(&a, &["school_admin"])],
    )
    .await;
    let h = host("school-a");

    let mut head = signed_in(&app, "school-a", "a.head").await;
    let csrf = head.csrf(&h, "/notices/new").await;
    let sent = head
        .post_multipart(
            &h,
            "/notices",
            notice_form(
                &csrf,
                "签字回执",
                "请签字",
                &[
                    ("audience", "classes".into()),
                    ("class_ids", s.classes[0].to_string()),
                ],
                "signature",
            ),
            &[],
        )
        .await;
    let id = id_from_location(&sent);
    // One guardian draws, the other only types a name.
    for (login, fields) in [
        ("a.parent0", vec![("signature_png", PNG_1X1)]),
        ("a.parent1", vec![("signature_name", "赵四")]),
    ] {
        let mut p = signed_in(&app, "school-a", login).await;
        let csrf = p.csrf(&h, &format!("/notices/{id}")).await;
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields);
        let r = p.post(&h, &format!("/notices/{id}/confirm"), &form).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
    let drawn = format!("/notices/{id}/signatures/guardian/{}", s.guardians[0]);
    let typed = format!("/notices/{id}/signatures/guardian/{}", s.guardians[1]);

    let receipts = head
        .get(&h, &format!("/notices/{id}/receipts"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        receipts.contains(&format!("<img class=\"signature\" src=\"{drawn}\"")),
        "{receipts}"
    );
    assert!(!receipts.contains(&typed), "no image for a typed name");
    let mut admin = signed_in(&app, "school-a", "a.admin").await;
    for v in [&mut head, &mut admin] {
        let r = v.get(&h, &drawn).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "image/png");
        assert!(r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private"));
        assert_eq!(&r.bytes().await.unwrap()[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(v.get(&h, &typed).await.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(
        admin
            .get(&h, &format!("/notices/{id}/receipts"))
            .await
            .status(),
        StatusCode::OK,
        "admins follow every notice's receipts"
    );
    let view = admin.get(&h, &format!("/notices/{id}")).await;
    assert_eq!(view.status(), StatusCode::OK);
    let view = view.text().await.unwrap();
    assert!(view.contains("签字回执") && !view.contains("id=\"sign-form\""));
    for path in [
        format!("/notices/{id}/signatures/staff/{}", s.guardians[0]),
        format!("/notices/{id}/signatures/guardian/999999"),
        format!("/notices/999999/signatures/guardian/{}", s.guardians[0]),
    ] {
        assert_eq!(
            head.get(&h, &path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // The signer, another parent and a principal who did not send it see nothing.
    for login in ["a.parent0", "a.parent2", "a.principal"] {
        let mut v = signed_in(&app, "school-a", login).await;
        let r = v.get(&h, &drawn).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{login}");
        assert_ne!(r.headers()["content-type"], "image/png");
    }

    // The export says who signed by hand.
    let x = head.get(&h, &format!("/notices/{id}/receipts.xlsx")).await;
    let bytes = x.bytes().await.unwrap();
    let mut book =
        calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let rows: Vec<Vec<String>> = book
        .worksheet_range("回执")
        .unwrap()
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(rows[0][6], "手写签名");
    assert!(
        rows.iter().any(|r| r[1] == "张妈妈" && r[6] == "有"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r[1] == "赵爸爸" && r[5] == "赵四" && r[6] == "无"),
        "{rows:?}"
    );

    // School B: its own notice 1 has no signature, A's ids mean nothing there, and A's
    // session is no session at B's host.
    let mut b_principal = signed_in(&app, "school-b", "b.principal").await;
    let hb = host("school-b");
    let csrf = b_principal.csrf(&hb, "/notices/new").await;
    let r = b_principal
        .post_multipart(
            &hb,
            "/notices",
            notice_form(
                &csrf,
                "乙校通知",
                "x",
                &[("audience", "guardians".into())],
                "signature",
            ),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        b_principal.get(&hb, &drawn).await.status(),
        StatusCode::NOT_FOUND
    );
    let cookie = head.cookie(&h, "campus_session").unwrap();
    let mut replay = Visitor::new(&app);
    replay.set_cookie(&hb, "campus_session", &cookie);
    assert_eq!(
        replay.get(&hb, &drawn).await.status(),
        StatusCode::SEE_OTHER
    );
    app.stop().await;
}

/// In a real browser, under the page's Content-Security-Policy: a guardian draws a signature
/// on the canvas and signs (the drawing is stored), and the sender's people picker finds
/// people as she types — both run from the site's own script files, and Chromium reports
/// no violation of the policy on either page.
#[tokio::test]
async fn signing_and_the_people_picker_work_in_a_real_browser_within_the_pages_policy() {
    use fantoccini::Locator;
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let s = school(&app, &a).await;
    accounts(&app, &a, &s, "a").await;
    let h = host("school-a");
    let mut head = signed_in(&app, "school-a", "a.head").await;
    let csrf = head.csrf(&h, "/notices/new").await;
    let sent = head
        .post_multipart(
            &h,
            "/notices",
            notice_form(
                &csrf,
                "春游签字",
                "请签字",
                &[
                    ("audience", "classes".into()),
                    ("class_ids", s.classes[0].to_string()),
                ],
                "signature",
            ),
            &[],
        )
        .await;
    let id = id_from_location(&sent);

    let parent = crate::webdriver::Browser::start(&app).await;
    parent.sign_in(&h, "a.parent0", PW).await;
    let c = &parent.client;
    c.goto(&format!("http://{h}/notices/{id}")).await.unwrap();
    c.execute(
        r#"var c = document.getElementById("pad"), r = c.getBoundingClientRect();
           function ev(t, x, y) { c.dispatchEvent(new PointerEvent(t, { bubbles: true, clientX: r.left + x, clientY: r.top + y })); }
           ev("pointerdown", 20, 20); ev("pointermove", 80, 90); ev("pointermove", 160, 30); ev("pointermove", 250, 100);
           window.dispatchEvent(new PointerEvent("pointerup"));"#,
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(
        inline_scripts(c).await,
        0,
        "the page's script is a file of the site"
    );
    let violations = parent.csp_violations().await;
    assert!(violations.is_empty(), "{violations:?}");
    c.find(Locator::Css("#sign-form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mut stored = None;
    for _ in 0..100 {
        let mut tx = app.services.db.school(&a).await.unwrap();
        stored = sqlx::query_scalar::<_, Option<String>>(
            "select signature_key from notice_recipients
              where notice_id = $1 and recipient_kind = 'guardian' and recipient_id = $2",
        )
        .bind(id)
        .bind(s.guardians[0])
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        if stored.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(stored.is_some(), "the drawn signature was not sent");

    let sender = crate::webdriver::Browser::start(&app).await;
    sender.sign_in(&h, "a.principal", PW).await;
    let c = &sender.client;
    c.goto(&format!("http://{h}/notices/new")).await.unwrap();
    c.find(Locator::Id("people-q"))
        .await
        .unwrap()
        .send_keys("张")
        .await
        .unwrap();
    let mut found = String::new();
    for _ in 0..100 {
        found = c
            .find(Locator::Id("people-results"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if found.contains("张妈妈") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(found.contains("家长 张妈妈"), "{found:?}");
    assert_eq!(c.current_url().await.unwrap().path(), "/notices/new");
    assert_eq!(
        inline_scripts(c).await,
        0,
        "the page's script is a file of the site"
    );
    let violations = sender.csp_violations().await;
    assert!(violations.is_empty(), "{violations:?}");
    app.stop().await;
}

/// Scripts written into the page itself (the policy allows only the site's files; JSON
/// data islands are not scripts).
async fn inline_scripts(c: &fantoccini::Client) -> u64 {
    c.execute(
        r#"return document.querySelectorAll('script:not([src]):not([type="application/json"])').length;"#,
        vec![],
    )
    .await
    .unwrap()
    .as_u64()
    .unwrap()
}
