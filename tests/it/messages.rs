//! Home–school messages and the principal's mailbox: a parent and the head teacher talk in
//! a thread with unread counts and inbox rows; a parent may write only to teachers of their
//! child; non-members do not see threads; a message to a class reaches every guardian of
//! it; letters to the principal are answered and searched, and stay private to the
//! principal and the writer; one school's ids and sessions mean nothing at another's host.

use campus_identity::account;
use campus_tenant::Tenant;
use reqwest::StatusCode;

use crate::helpers::{person, TestApp, Visitor};

const PW: &str = "campus2026";

pub(crate) fn host(slug: &str) -> String {
    TestApp::school_host(slug)
}

pub(crate) struct School {
    head: i64,
    principal: i64,
    other_teacher: i64,
    classes: [i64; 2],
    /// Guardians of the two pupils of class 1, then of the pupil of class 2.
    pub(crate) guardians: [i64; 3],
}

/// Class 1 headed by `T1`, class 2 with subject teacher `T3`; principal `T2`.
pub(crate) async fn school(app: &TestApp, t: &Tenant) -> School {
    let mut tx = app.services.db.school(t).await.unwrap();
    let mut staff = [0i64; 3];
    for (i, (no, name, title)) in [
        ("T1", "李班主任", "teacher"),
        ("T2", "王校长", "principal"),
        ("T3", "周老师", "teacher"),
    ]
    .into_iter()
    .enumerate()
    {
        staff[i] = sqlx::query_scalar(
            "insert into staff (staff_no, name, title) values ($1, $2, $3) returning id",
        )
        .bind(no)
        .bind(name)
        .bind(title)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    }
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
        .bind(staff[0])
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    }
    sqlx::query("insert into class_teachers (class_id, staff_id, subject) values ($1, $2, '数学')")
        .bind(classes[1])
        .bind(staff[2])
        .execute(&mut *tx)
        .await
        .unwrap();
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
        head: staff[0],
        other_teacher: staff[2],
        classes,
        guardians,
        principal: staff[1],
    }
}

/// Accounts `<p>.head`, `<p>.principal`, `<p>.teacher` (T3) and `<p>.parent0..2`.
pub(crate) async fn accounts(app: &TestApp, t: &Tenant, s: &School, p: &str) {
    let pool = &app.services.pool;
    for (login, roles, staff) in [
        ("head", &["teacher", "head_teacher"][..], s.head),
        ("principal", &["principal"][..], s.principal),
        ("teacher", &["teacher"][..], s.other_teacher),
    ] {
        let a = person(&app.services, &format!("{p}.{login}"), login, PW, &[]).await;
        account::set_membership(pool, a, t.id.0, roles, Some(staff), None)
            .await
            .unwrap();
    }
    for (i, g) in s.guardians.iter().enumerate() {
        let a = person(&app.services, &format!("{p}.parent{i}"), "家长", PW, &[]).await;
        account::set_membership(pool, a, t.id.0, &["parent"], None, Some(*g))
            .await
            .unwrap();
    }
}

pub(crate) async fn signed_in<'a>(app: &'a TestApp, slug: &str, login: &str) -> Visitor<'a> {
    let mut v = Visitor::new(app);
    assert_eq!(
        v.sign_in(&host(slug), login, PW).await.status(),
        StatusCode::SEE_OTHER
    );
    v
}

pub(crate) async fn json(
    v: &mut Visitor<'_>,
    slug: &str,
    path: &str,
) -> (StatusCode, serde_json::Value) {
    let resp = v.get(&host(slug), path).await;
    let status = resp.status();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// Sends a new message; returns the response.
async fn write(
    v: &mut Visitor<'_>,
    slug: &str,
    to: &str,
    subject: &str,
    body: &str,
) -> reqwest::Response {
    let csrf = v.csrf(&host(slug), "/messages/new").await;
    v.post(
        &host(slug),
        "/messages/new",
        &[
            ("csrf", &csrf),
            ("to", to),
            ("subject", subject),
            ("body", body),
        ],
    )
    .await
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(reqwest::header::LOCATION)
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_owned()
}

pub(crate) async fn inbox_messages(app: &TestApp, t: &Tenant, kind: &str, id: i64) -> i64 {
    let mut tx = app.services.db.school(t).await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "select count(*) from inbox_items where category = 'messages' and recipient_kind = $1 and recipient_id = $2",
    )
    .bind(kind)
    .bind(id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    n
}

#[tokio::test]
async fn messages_parent_and_head_teacher_talk_with_unread_counts() {
    let app = TestApp::spawn().await;
    let a = app.onboard("msga", "甲小学").await;
    let s = school(&app, &a.tenant).await;
    accounts(&app, &a.tenant, &s, "a").await;

    let mut parent = signed_in(&app, "msga", "a.parent0").await;
    let resp = write(
        &mut parent,
        "msga",
        &format!("staff:{}", s.head),
        "请假",
        "孩子明天发烧请假",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let thread = location(&resp);
    assert!(thread.starts_with("/messages/"), "{thread}");
    assert_eq!(inbox_messages(&app, &a.tenant, "staff", s.head).await, 1);

    let mut head = signed_in(&app, "msga", "a.head").await;
    let (status, list) = json(&mut head, "msga", "/api/v1/messages").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["unread"], 1);
    assert_eq!(list["threads"][0]["subject"], "请假");
    let id = list["threads"][0]["id"].as_i64().unwrap();
    assert_eq!(thread, format!("/messages/{id}"));

    // Opening the thread marks it read.
    let page = head.get(&host("msga"), &thread).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("孩子明天发烧请假"));
    let (_, list) = json(&mut head, "msga", "/api/v1/messages").await;
    assert_eq!(list["unread"], 0);

    // The head teacher replies; the parent has one unread and an inbox row.
    let csrf = head.csrf(&host("msga"), &thread).await;
    let resp = head
        .post(
            &host("msga"),
            &thread,
            &[("csrf", &csrf), ("body", "好的，注意休息")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        inbox_messages(&app, &a.tenant, "guardian", s.guardians[0]).await,
        1
    );
    let (_, list) = json(&mut parent, "msga", "/api/v1/messages").await;
    assert_eq!(list["unread"], 1);
    let (_, t) = json(&mut parent, "msga", &format!("/api/v1/messages/{id}")).await;
    let bodies: Vec<&str> = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["孩子明天发烧请假", "好的，注意休息"]);
    let (_, list) = json(&mut parent, "msga", "/api/v1/messages").await;
    assert_eq!(list["unread"], 0);

    // Empty and oversized bodies are refused; so is a reply without the CSRF token.
    let csrf = parent.csrf(&host("msga"), &thread).await;
    for body in ["   ".to_owned(), "字".repeat(2001)] {
        let resp = parent
            .post(&host("msga"), &thread, &[("csrf", &csrf), ("body", &body)])
            .await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let resp = parent
        .post(&host("msga"), &thread, &[("body", "无令牌")])
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (_, t) = json(&mut parent, "msga", &format!("/api/v1/messages/{id}")).await;
    assert_eq!(t["messages"].as_array().unwrap().len(), 2);

    // Another parent is not a member: 404 on reading and replying.
    let mut other = signed_in(&app, "msga", "a.parent1").await;
    assert_eq!(
        other.get(&host("msga"), &thread).await.status(),
        StatusCode::NOT_FOUND
    );
    let (status, _) = json(&mut other, "msga", &format!("/api/v1/messages/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let csrf = other.csrf(&host("msga"), "/messages/new").await;
    let resp = other
        .post(&host("msga"), &thread, &[("csrf", &csrf), ("body", "插话")])
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn messages_parents_write_only_to_their_childs_teachers() {
    let app = TestApp::spawn().await;
    let a = app.onboard("msgb", "乙小学").await;
    let s = school(&app, &a.tenant).await;
    accounts(&app, &a.tenant, &s, "b").await;

    // Parent of class 1 may not write to T3, who teaches only class 2.
    let mut parent0 = signed_in(&app, "msgb", "b.parent0").await;
    let resp = write(
        &mut parent0,
        "msgb",
        &format!("staff:{}", s.other_teacher),
        "数学",
        "问题",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        inbox_messages(&app, &a.tenant, "staff", s.other_teacher).await,
        0
    );
    // Parent of class 2 may (subject teacher of the child's class).
    let mut parent2 = signed_in(&app, "msgb", "b.parent2").await;
    let resp = write(
        &mut parent2,
        "msgb",
        &format!("staff:{}", s.other_teacher),
        "数学",
        "问题",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        inbox_messages(&app, &a.tenant, "staff", s.other_teacher).await,
        1
    );

    // A head teacher may not write to a parent of a class they do not head.
    let mut head = signed_in(&app, "msgb", "b.head").await;
    let resp = write(
        &mut head,
        "msgb",
        &format!("guardian:{}", s.guardians[2]),
        "x",
        "y",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = write(
        &mut head,
        "msgb",
        &format!("class:{}", s.classes[1]),
        "x",
        "y",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // The whole class: one thread per guardian of class 1, none for class 2.
    let resp = write(
        &mut head,
        "msgb",
        &format!("class:{}", s.classes[0]),
        "春游",
        "周五春游",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    for g in &s.guardians[..2] {
        assert_eq!(inbox_messages(&app, &a.tenant, "guardian", *g).await, 1);
    }
    assert_eq!(
        inbox_messages(&app, &a.tenant, "guardian", s.guardians[2]).await,
        0
    );
    for login in ["b.parent0", "b.parent1"] {
        let mut p = signed_in(&app, "msgb", login).await;
        let (_, list) = json(&mut p, "msgb", "/api/v1/messages").await;
        let threads = list["threads"].as_array().unwrap();
        let spring: Vec<_> = threads.iter().filter(|t| t["subject"] == "春游").collect();
        assert_eq!(spring.len(), 1);
        assert_eq!(spring[0]["kind"], "class_broadcast");
        assert_eq!(spring[0]["unread"], 1);
    }
    let (_, list) = json(&mut parent2, "msgb", "/api/v1/messages").await;
    assert!(list["threads"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["subject"] != "春游"));

    // Only school-wide staff write to all staff; a teacher may not.
    let mut teacher = signed_in(&app, "msgb", "b.teacher").await;
    let resp = write(&mut teacher, "msgb", "all_staff", "会议", "开会").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let mut principal = signed_in(&app, "msgb", "b.principal").await;
    let resp = write(&mut principal, "msgb", "all_staff", "会议", "周一开会").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(inbox_messages(&app, &a.tenant, "staff", s.head).await, 1);
    // T3 has the parent's message and the staff meeting unread.
    let (_, list) = json(&mut teacher, "msgb", "/api/v1/messages").await;
    assert_eq!(list["unread"], 2);
    assert_eq!(list["threads"][0]["kind"], "staff_broadcast");
    app.stop().await;
}

#[tokio::test]
async fn messages_of_one_school_mean_nothing_at_another() {
    let app = TestApp::spawn().await;
    let a = app.onboard("msgc", "丙小学").await;
    let b = app.onboard("msgd", "丁小学").await;
    let sa = school(&app, &a.tenant).await;
    let sb = school(&app, &b.tenant).await;
    accounts(&app, &a.tenant, &sa, "c").await;
    accounts(&app, &b.tenant, &sb, "d").await;

    let mut parent_b = signed_in(&app, "msgd", "d.parent0").await;
    let resp = write(
        &mut parent_b,
        "msgd",
        &format!("staff:{}", sb.head),
        "秘密",
        "乙校的秘密",
    )
    .await;
    let thread = location(&resp);
    // The same person-ids exist at A, but B's thread does not exist there.
    let mut parent_a = signed_in(&app, "msgc", "c.parent0").await;
    let resp = parent_a.get(&host("msgc"), &thread).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(!resp.text().await.unwrap().contains("乙校的秘密"));
    let (_, list) = json(&mut parent_a, "msgc", "/api/v1/messages").await;
    assert_eq!(list["threads"].as_array().unwrap().len(), 0);

    // A's session cookie replayed at B's host is no session there.
    let mut thief = Visitor::new(&app);
    let cookie = parent_a.cookie(&host("msgc"), "campus_session").unwrap();
    thief.set_cookie(&host("msgd"), "campus_session", &cookie);
    let resp = thief.get(&host("msgd"), &thread).await;
    assert_ne!(resp.status(), StatusCode::OK);
    assert!(!resp.text().await.unwrap().contains("乙校的秘密"));
    app.stop().await;
}

pub(crate) async fn letter(
    v: &mut Visitor<'_>,
    slug: &str,
    type_id: i64,
    subject: &str,
    anonymous: bool,
) -> reqwest::Response {
    let csrf = v.csrf(&host(slug), "/mailbox/new").await;
    let t = type_id.to_string();
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("type", t.as_str()),
        ("subject", subject),
        ("body", "信的内容"),
    ];
    if anonymous {
        form.push(("anonymous", "1"));
    }
    v.post(&host(slug), "/mailbox/new", &form).await
}

pub(crate) async fn type_id(app: &TestApp, t: &Tenant, name: &str) -> i64 {
    let mut tx = app.services.db.school(t).await.unwrap();
    let id = sqlx::query_scalar("select id from letter_types where name = $1")
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

fn subjects(list: &serde_json::Value) -> Vec<String> {
    let mut s: Vec<String> = list["letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["subject"].as_str().unwrap().to_owned())
        .collect();
    s.sort();
    s
}

#[tokio::test]
async fn mailbox_letters_are_answered_searched_and_private() {
    let app = TestApp::spawn().await;
    let a = app.onboard("mboxa", "戊小学").await;
    let s = school(&app, &a.tenant).await;
    accounts(&app, &a.tenant, &s, "e").await;
    let suggestion = type_id(&app, &a.tenant, "建议").await;
    let complaint = type_id(&app, &a.tenant, "投诉").await;

    let mut parent = signed_in(&app, "mboxa", "e.parent0").await;
    assert_eq!(
        letter(&mut parent, "mboxa", suggestion, "食堂建议", true)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let mut teacher = signed_in(&app, "mboxa", "e.teacher").await;
    assert_eq!(
        letter(&mut teacher, "mboxa", complaint, "课时投诉", false)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    // One letter dated a month back, for the date search.
    let mut tx = app.services.db.school(&a.tenant).await.unwrap();
    sqlx::query(
        "update letters set created_at = now() - interval '30 days' where subject = '课时投诉'",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // The principal sees both; the anonymous writer's name is hidden.
    let mut principal = signed_in(&app, "mboxa", "e.principal").await;
    let (status, all) = json(&mut principal, "mboxa", "/api/v1/mailbox").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(subjects(&all), ["课时投诉", "食堂建议"]);
    let food = all["letters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["subject"] == "食堂建议")
        .unwrap()
        .clone();
    assert!(food["author_name"].is_null());
    assert_eq!(food["status"], "open");
    let (_, by_type) = json(
        &mut principal,
        "mboxa",
        &format!("/api/v1/mailbox?type={complaint}"),
    )
    .await;
    assert_eq!(subjects(&by_type), ["课时投诉"]);
    let today = chrono::Utc::now().date_naive();
    let week_ago = today - chrono::Duration::days(7);
    let (_, recent) = json(
        &mut principal,
        "mboxa",
        &format!("/api/v1/mailbox?from={week_ago}"),
    )
    .await;
    assert_eq!(subjects(&recent), ["食堂建议"]);
    let (_, old) = json(
        &mut principal,
        "mboxa",
        &format!("/api/v1/mailbox?to={week_ago}"),
    )
    .await;
    assert_eq!(subjects(&old), ["课时投诉"]);

    // The teacher sees only their own letter, and not the parent's, even by id.
    let (_, own) = json(&mut teacher, "mboxa", "/api/v1/mailbox").await;
    assert_eq!(subjects(&own), ["课时投诉"]);
    let food_id = food["id"].as_i64().unwrap();
    let (status, _) = json(&mut teacher, "mboxa", &format!("/api/v1/mailbox/{food_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nor may they reply.
    let csrf = teacher.csrf(&host("mboxa"), "/mailbox/new").await;
    let resp = teacher
        .post(
            &host("mboxa"),
            &format!("/mailbox/{food_id}/reply"),
            &[("csrf", &csrf), ("body", "我来回")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // The principal replies; the writer is notified and sees the reply.
    let csrf = principal.csrf(&host("mboxa"), "/mailbox").await;
    let resp = principal
        .post(
            &host("mboxa"),
            &format!("/mailbox/{food_id}/reply"),
            &[("csrf", &csrf), ("body", "已转食堂改进")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        inbox_messages(&app, &a.tenant, "guardian", s.guardians[0]).await,
        1
    );
    let (_, mine) = json(&mut parent, "mboxa", "/api/v1/mailbox").await;
    assert_eq!(subjects(&mine), ["食堂建议"]);
    assert_eq!(mine["letters"][0]["status"], "answered");
    assert_eq!(mine["letters"][0]["replies"][0]["body"], "已转食堂改进");
    assert_eq!(mine["letters"][0]["author_name"], "家长");
    let page = parent
        .get(&host("mboxa"), "/mailbox")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("已转食堂改进"));

    // Letter types: the principal may not manage them; a disabled type takes no letters.
    assert_eq!(
        principal
            .get(&host("mboxa"), "/admin/mailbox/types")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let admin = person(
        &app.services,
        "e.admin",
        "管理员",
        PW,
        &[(&a.tenant, &["school_admin"])],
    )
    .await;
    assert!(admin > 0);
    let mut admin = signed_in(&app, "mboxa", "e.admin").await;
    let csrf = admin.csrf(&host("mboxa"), "/admin/mailbox/types").await;
    let resp = admin
        .post(
            &host("mboxa"),
            "/admin/mailbox/types",
            &[("csrf", &csrf), ("name", "求助")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let help = type_id(&app, &a.tenant, "求助").await;
    let resp = admin
        .post(
            &host("mboxa"),
            "/admin/mailbox/types",
            &[
                ("csrf", &csrf),
                ("id", &complaint.to_string()),
                ("active", "0"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        letter(&mut parent, "mboxa", complaint, "再投诉", false)
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        letter(&mut parent, "mboxa", help, "求助信", false)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    app.stop().await;
}

#[tokio::test]
async fn mailbox_letters_of_one_school_mean_nothing_at_another() {
    let app = TestApp::spawn().await;
    let a = app.onboard("mboxb", "己小学").await;
    let b = app.onboard("mboxc", "庚小学").await;
    let sa = school(&app, &a.tenant).await;
    let sb = school(&app, &b.tenant).await;
    accounts(&app, &a.tenant, &sa, "f").await;
    accounts(&app, &b.tenant, &sb, "g").await;

    let mut parent_b = signed_in(&app, "mboxc", "g.parent0").await;
    let kind = type_id(&app, &b.tenant, "投诉").await;
    letter(&mut parent_b, "mboxc", kind, "乙校投诉", false).await;
    let mut principal_b = signed_in(&app, "mboxc", "g.principal").await;
    let (_, list) = json(&mut principal_b, "mboxc", "/api/v1/mailbox").await;
    let id = list["letters"][0]["id"].as_i64().unwrap();

    // At A's host B's letter id is A's data or nothing.
    let mut principal_a = signed_in(&app, "mboxb", "f.principal").await;
    let (status, _) = json(&mut principal_a, "mboxb", &format!("/api/v1/mailbox/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, all) = json(&mut principal_a, "mboxb", "/api/v1/mailbox").await;
    assert!(all["letters"].as_array().unwrap().is_empty());
    let csrf = principal_a.csrf(&host("mboxb"), "/mailbox/new").await;
    let resp = principal_a
        .post(
            &host("mboxb"),
            &format!("/mailbox/{id}/reply"),
            &[("csrf", &csrf), ("body", "越权")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let (_, list) = json(&mut principal_b, "mboxc", "/api/v1/mailbox").await;
    assert_eq!(list["letters"][0]["status"], "open");

    // A's session replayed at B's host reads nothing of B.
    let cookie = principal_a
        .cookie(&host("mboxb"), "campus_session")
        .unwrap();
    let mut thief = Visitor::new(&app);
    thief.set_cookie(&host("mboxc"), "campus_session", &cookie);
    let resp = thief.get(&host("mboxc"), "/api/v1/mailbox").await;
    assert_ne!(resp.status(), StatusCode::OK);
    assert!(!resp.text().await.unwrap().contains("乙校投诉"));
    app.stop().await;
}

#[tokio::test]
async fn messages_json_api_needs_the_csrf_header() {
    let app = TestApp::spawn().await;
    let a = app.onboard("msge", "辛小学").await;
    let s = school(&app, &a.tenant).await;
    accounts(&app, &a.tenant, &s, "h").await;
    let mut head = signed_in(&app, "msge", "h.head").await;
    let csrf = head.csrf(&host("msge"), "/messages/new").await;
    let body = serde_json::json!({"to": format!("guardian:{}", s.guardians[1]), "subject": "作业", "body": "请检查作业"});
    let resp = head
        .json(
            reqwest::Method::POST,
            &host("msge"),
            "/api/v1/messages",
            &body,
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = head
        .json(
            reqwest::Method::POST,
            &host("msge"),
            "/api/v1/messages",
            &body,
            &[("X-CSRF-Token", &csrf)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = resp.json::<serde_json::Value>().await.unwrap()["threads"][0]
        .as_i64()
        .unwrap();

    let mut parent = signed_in(&app, "msge", "h.parent1").await;
    let csrf = parent.csrf(&host("msge"), "/messages/new").await;
    let path = format!("/api/v1/messages/{id}");
    let resp = parent
        .json(
            reqwest::Method::POST,
            &host("msge"),
            &path,
            &serde_json::json!({"body": ""}),
            &[("X-CSRF-Token", &csrf)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let resp = parent
        .json(
            reqwest::Method::POST,
            &host("msge"),
            &path,
            &serde_json::json!({"body": "已检查"}),
            &[("X-CSRF-Token", &csrf)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (_, t) = json(&mut head, "msge", &path).await;
    assert_eq!(t["messages"][1]["body"], "已检查");
    assert_eq!(inbox_messages(&app, &a.tenant, "staff", s.head).await, 1);
    app.stop().await;
}
