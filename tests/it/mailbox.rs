//! The principal's mailbox through the JSON API: writing and replying with the forms'
//! checks, the reader's filters, and one school's letters meaning nothing at another.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{TestApp, Visitor};
use crate::messages::{
    accounts, host, inbox_messages, json as get_json, school, signed_in, type_id,
};

async fn send(
    v: &mut Visitor<'_>,
    slug: &str,
    path: &str,
    body: &Value,
    csrf: Option<&str>,
) -> (StatusCode, Value) {
    let headers: Vec<(&str, &str)> = csrf.map(|c| ("x-csrf-token", c)).into_iter().collect();
    let resp = v
        .json(Method::POST, &host(slug), path, body, &headers)
        .await;
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn subjects(list: &Value) -> Vec<&str> {
    let mut s: Vec<&str> = list["letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["subject"].as_str().unwrap())
        .collect();
    s.sort();
    s
}

async fn letters_in(app: &TestApp, t: &campus_tenant::Tenant) -> i64 {
    let mut tx = app.services.db.school(t).await.unwrap();
    let n: i64 = sqlx::query_scalar("select count(*) from letters")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    n
}

#[tokio::test]
async fn mailbox_json_api_writes_replies_and_filters() {
    let app = TestApp::spawn().await;
    let a = app.onboard("mboxj", "壬小学").await;
    let s = school(&app, &a.tenant).await;
    accounts(&app, &a.tenant, &s, "j").await;
    let suggestion = type_id(&app, &a.tenant, "建议").await;
    let complaint = type_id(&app, &a.tenant, "投诉").await;
    let slug = "mboxj";

    let mut parent = signed_in(&app, slug, "j.parent0").await;
    let csrf = parent.csrf(&host(slug), "/mailbox/new").await;
    let letter = json!({"type": suggestion, "subject": "食堂建议", "body": "希望增加水果", "anonymous": true});
    let (st, _) = send(&mut parent, slug, "/api/v1/mailbox", &letter, None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "no CSRF header");
    for (bad, why) in [
        (
            json!({"type": suggestion, "subject": " ", "body": "x"}),
            "空",
        ),
        (
            json!({"type": suggestion, "subject": "x", "body": "长".repeat(2001)}),
            "过长",
        ),
        (
            json!({"type": 999_999, "subject": "x", "body": "x"}),
            "类型",
        ),
        (json!({"subject": "x", "body": "x"}), "类型"),
        (json!({"type": [1], "subject": "x", "body": "x"}), "类型"),
    ] {
        let (st, v) = send(&mut parent, slug, "/api/v1/mailbox", &bad, Some(&csrf)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(v["message"].as_str().unwrap().contains(why), "{v}");
    }
    assert_eq!(letters_in(&app, &a.tenant).await, 0, "nothing written");
    let (st, sent) = send(&mut parent, slug, "/api/v1/mailbox", &letter, Some(&csrf)).await;
    assert_eq!(st, StatusCode::CREATED, "{sent}");
    assert_eq!(
        (sent["mine"].clone(), sent["anonymous"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(sent["status"], json!("open"));
    let food = sent["id"].as_i64().unwrap();

    let mut teacher = signed_in(&app, slug, "j.teacher").await;
    let t_csrf = teacher.csrf(&host(slug), "/mailbox/new").await;
    let (st, lesson) = send(
        &mut teacher,
        slug,
        "/api/v1/mailbox",
        &json!({"type": complaint.to_string(), "subject": "课时投诉", "body": "课太多"}),
        Some(&t_csrf),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let mut tx = app.services.db.school(&a.tenant).await.unwrap();
    sqlx::query("update letters set created_at = now() - interval '30 days' where id = $1")
        .bind(lesson["id"].as_i64().unwrap())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The principal's filters; malformed ones are refused rather than ignored.
    let mut principal = signed_in(&app, slug, "j.principal").await;
    let (_, all) = get_json(&mut principal, slug, "/api/v1/mailbox").await;
    assert_eq!(subjects(&all), ["课时投诉", "食堂建议"]);
    let (_, by_type) = get_json(
        &mut principal,
        slug,
        &format!("/api/v1/mailbox?type={complaint}"),
    )
    .await;
    assert_eq!(subjects(&by_type), ["课时投诉"]);
    let week_ago = (chrono::Utc::now() - chrono::Duration::days(7)).date_naive();
    let (_, recent) = get_json(
        &mut principal,
        slug,
        &format!("/api/v1/mailbox?from={week_ago}&type={suggestion}"),
    )
    .await;
    assert_eq!(subjects(&recent), ["食堂建议"]);
    let (_, old) = get_json(
        &mut principal,
        slug,
        &format!("/api/v1/mailbox?to={week_ago}"),
    )
    .await;
    assert_eq!(subjects(&old), ["课时投诉"]);
    for bad in ["from=2026-02-30", "to=yesterday", "type=投诉"] {
        let (st, _) = get_json(&mut principal, slug, &format!("/api/v1/mailbox?{bad}")).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }

    // Replies: only readers, with the CSRF header, to a letter that exists.
    let reply = format!("/api/v1/mailbox/{food}/reply");
    let (st, _) = send(
        &mut parent,
        slug,
        &reply,
        &json!({"body": "自己回"}),
        Some(&csrf),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = send(
        &mut teacher,
        slug,
        &reply,
        &json!({"body": "我来回"}),
        Some(&t_csrf),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let p_csrf = principal.csrf(&host(slug), "/mailbox/new").await;
    let (st, _) = send(
        &mut principal,
        slug,
        &reply,
        &json!({"body": "已收到"}),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = send(
        &mut principal,
        slug,
        &reply,
        &json!({"body": ""}),
        Some(&p_csrf),
    )
    .await;
    assert_eq!(
        (st, v["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid"))
    );
    let (st, _) = send(
        &mut principal,
        slug,
        "/api/v1/mailbox/999999/reply",
        &json!({"body": "在吗"}),
        Some(&p_csrf),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(
        inbox_messages(&app, &a.tenant, "guardian", s.guardians[0]).await,
        0
    );
    let (st, answered) = send(
        &mut principal,
        slug,
        &reply,
        &json!({"body": "已安排，下周起每天有水果。"}),
        Some(&p_csrf),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{answered}");
    assert_eq!(answered["status"], json!("answered"));
    assert!(
        answered["author_name"].is_null(),
        "still anonymous to the reader"
    );
    assert_eq!(answered["replies"].as_array().unwrap().len(), 1);
    assert_eq!(
        inbox_messages(&app, &a.tenant, "guardian", s.guardians[0]).await,
        1
    );
    let (_, mine) = get_json(&mut parent, slug, &format!("/api/v1/mailbox/{food}")).await;
    assert_eq!(
        mine["replies"][0]["body"],
        json!("已安排，下周起每天有水果。")
    );
    app.stop().await;
}

#[tokio::test]
async fn mailbox_json_api_of_one_school_means_nothing_at_another() {
    let app = TestApp::spawn().await;
    let a = app.onboard("mboxk", "癸小学").await;
    let b = app.onboard("mboxl", "子小学").await;
    let sa = school(&app, &a.tenant).await;
    let sb = school(&app, &b.tenant).await;
    accounts(&app, &a.tenant, &sa, "k").await;
    accounts(&app, &b.tenant, &sb, "l").await;

    let mut parent_a = signed_in(&app, "mboxk", "k.parent0").await;
    let csrf_a = parent_a.csrf(&host("mboxk"), "/mailbox/new").await;
    let kind_a = type_id(&app, &a.tenant, "咨询").await;
    let (st, sent) = send(
        &mut parent_a,
        "mboxk",
        "/api/v1/mailbox",
        &json!({"type": kind_a, "subject": "甲校咨询", "body": "放假安排？"}),
        Some(&csrf_a),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let id = sent["id"].as_i64().unwrap();

    // B's principal: A's letter id names nothing at B, to read or to answer.
    let mut principal_b = signed_in(&app, "mboxl", "l.principal").await;
    let csrf_b = principal_b.csrf(&host("mboxl"), "/mailbox/new").await;
    let (st, _) = get_json(&mut principal_b, "mboxl", &format!("/api/v1/mailbox/{id}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = send(
        &mut principal_b,
        "mboxl",
        &format!("/api/v1/mailbox/{id}/reply"),
        &json!({"body": "越权"}),
        Some(&csrf_b),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, list) = get_json(&mut principal_b, "mboxl", "/api/v1/mailbox").await;
    assert!(list["letters"].as_array().unwrap().is_empty());

    // A's session replayed at B's host writes and answers nothing there.
    let cookie = parent_a.cookie(&host("mboxk"), "campus_session").unwrap();
    let mut thief = Visitor::new(&app);
    thief.set_cookie(&host("mboxl"), "campus_session", &cookie);
    let kind_b = type_id(&app, &b.tenant, "咨询").await;
    let (st, _) = send(
        &mut thief,
        "mboxl",
        "/api/v1/mailbox",
        &json!({"type": kind_b, "subject": "冒充", "body": "x"}),
        Some(&csrf_a),
    )
    .await;
    assert_ne!(st, StatusCode::CREATED);
    let (st, _) = send(
        &mut thief,
        "mboxl",
        &format!("/api/v1/mailbox/{id}/reply"),
        &json!({"body": "x"}),
        Some(&csrf_a),
    )
    .await;
    assert_ne!(st, StatusCode::CREATED);
    assert_eq!(letters_in(&app, &b.tenant).await, 0);
    let (_, mine) = get_json(&mut parent_a, "mboxk", &format!("/api/v1/mailbox/{id}")).await;
    assert_eq!(
        (mine["status"].clone(), mine["replies"].clone()),
        (json!("open"), json!([]))
    );
    app.stop().await;
}
