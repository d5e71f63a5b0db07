//! Issue 7: one busy school never slows the others. Each school's plan (or its own
//! override) caps its request rate — over it, `429` with `Retry-After` and `RateLimit-*`
//! headers while other schools are served; sensitive routes are limited per client address,
//! which an untrusted peer cannot spoof with `X-Forwarded-For`; each school's database
//! work is capped at its share of the pool; limit settings that make no sense are refused.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{TestApp, BASE};

/// Sets `xinyi`'s limits through the admin API and waits until the router uses them (the
/// registry's NOTIFY drops every instance's cached school).
async fn set_limits(app: &TestApp, slug: &str, body: Value) -> Value {
    let resp = app
        .admin(Method::PATCH, &format!("/admin/v1/tenants/{slug}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let tenant: Value = resp.json().await.unwrap();
    let host = campus_tenant::Hostname::parse(&TestApp::school_host(slug)).unwrap();
    for _ in 0..100 {
        if let Ok(campus_tenant::Site::School(t)) =
            app.services.resolver.site_for_host(host.clone()).await
        {
            let limits = serde_json::to_value(t.limits).unwrap();
            if limits == tenant["limits"] {
                return tenant;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the router did not pick up the new limits of {slug}");
}

#[tokio::test]
async fn a_school_over_its_limit_gets_429_with_headers_while_another_school_is_served() {
    let app = TestApp::spawn().await;
    app.onboard("xinyi", "青川县信义小学").await;
    app.onboard("shiyan", "青川县实验小学").await;
    let t = set_limits(&app, "xinyi", json!({"requests_per_second": 1, "burst": 5})).await;
    assert_eq!(t["requests_per_second"], 1);
    assert_eq!(t["limits"]["burst"], 5);
    assert_eq!(
        t["limits"]["db_concurrency"], 8,
        "still the standard plan's"
    );

    let a = TestApp::school_host("xinyi");
    let b = TestApp::school_host("shiyan");
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(app.get(&a, "/").send().await.unwrap().status());
    }
    assert!(
        statuses[..4].iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(statuses[7], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");

    // A browser gets a page that says what happened, with the headers clients act on.
    let page = app.get(&a, "/").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
    let h = page.headers().clone();
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(h["ratelimit-limit"], "5");
    assert_eq!(h["ratelimit-remaining"], "0");
    assert_eq!(h["ratelimit-reset"].to_str().unwrap(), retry.to_string());
    assert_eq!(h["ratelimit-policy"], "1;w=1;burst=5");
    let body = page.text().await.unwrap();
    assert!(
        body.contains("访问人数较多") && body.contains("青川县信义小学"),
        "{body}"
    );

    // API clients get JSON.
    let api = app.get(&a, "/api/v1/school").send().await.unwrap();
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
    let j: Value = api.json().await.unwrap();
    assert_eq!(j["code"], "rate_limited");
    assert_eq!(j["limit"], "school");

    // The other school, meanwhile, is served every time.
    for _ in 0..30 {
        assert_eq!(
            app.get(&b, "/").send().await.unwrap().status(),
            StatusCode::OK
        );
    }

    // After the advertised wait, the limited school is served again.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(
        app.get(&a, "/").send().await.unwrap().status(),
        StatusCode::OK
    );

    // Back to the plan's limits: the burst of 300 absorbs the same requests.
    set_limits(
        &app,
        "xinyi",
        json!({"requests_per_second": null, "burst": null}),
    )
    .await;
    for _ in 0..20 {
        assert_eq!(
            app.get(&a, "/").send().await.unwrap().status(),
            StatusCode::OK
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn limit_settings_that_make_no_sense_are_refused_and_plans_can_be_changed() {
    let app = TestApp::spawn().await;
    app.onboard("xinyi", "青川县信义小学").await;
    for (body, field) in [
        (json!({"requests_per_second": 0}), "requests_per_second"),
        (json!({"requests_per_second": -5}), "requests_per_second"),
        (
            json!({"requests_per_second": 5_000_000}),
            "requests_per_second",
        ),
        (json!({"burst": 0}), "burst"),
        (json!({"db_concurrency": 0}), "db_concurrency"),
        (json!({"db_concurrency": 100_000}), "db_concurrency"),
        (json!({"name": "新名字", "burst": -1}), "burst"),
    ] {
        let resp = app
            .admin(Method::PATCH, "/admin/v1/tenants/xinyi")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let err: Value = resp.json().await.unwrap();
        let msg = err["message"].as_str().unwrap();
        assert!(
            msg.contains(field) && msg.contains("between 1 and"),
            "{msg}"
        );
    }
    // Nothing was half-written.
    let t: Value = app
        .admin(Method::GET, "/admin/v1/tenants/xinyi")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["name"], "青川县信义小学");
    assert!(t["requests_per_second"].is_null() && t["burst"].is_null());
    assert_eq!(t["limits"]["requests_per_second"], 150);

    // A JSON value that is not a whole number is refused too, not stored as something else.
    let resp = app
        .admin(Method::PATCH, "/admin/v1/tenants/xinyi")
        .json(&json!({"burst": 1e12}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());

    // Plans: nonsense refused, unknown plan refused, a real change reaches the school.
    for body in [
        json!({"requests_per_second": 0}),
        json!({"db_concurrency": 5000}),
        json!({}),
    ] {
        let resp = app
            .admin(Method::PATCH, "/admin/v1/plans/standard")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let resp = app
        .admin(Method::PATCH, "/admin/v1/plans/gold")
        .json(&json!({"burst": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let resp = app
        .admin(Method::PATCH, "/admin/v1/plans/standard")
        .json(&json!({"requests_per_second": 200, "db_concurrency": 6}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let plan: Value = resp.json().await.unwrap();
    assert_eq!(plan["requests_per_second"], 200);
    assert_eq!(plan["burst"], 300);
    assert_eq!(plan["db_concurrency"], 6);
    let t: Value = app
        .admin(Method::GET, "/admin/v1/tenants/xinyi")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        t["limits"],
        json!({"requests_per_second": 200, "burst": 300, "db_concurrency": 6})
    );
    // …and the router's cached school, through the plans trigger's NOTIFY.
    set_limits(&app, "xinyi", json!({"db_concurrency": 3})).await;
    app.stop().await;
}

/// `GET /join/<token>` is a sensitive route (tokens could be guessed): limited per client
/// address and site. `form_requests_per_minute = 4` gives a burst of 5.
async fn join_statuses(app: &TestApp, forwarded: &[&str]) -> Vec<StatusCode> {
    let mut out = Vec::new();
    for f in forwarded {
        out.push(
            app.get(&TestApp::school_host("xinyi"), "/join/not-a-token")
                .header("x-forwarded-for", *f)
                .send()
                .await
                .unwrap()
                .status(),
        );
    }
    out
}

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_does_not_change_the_client_address() {
    let app = TestApp::spawn_with(|c| c.form_requests_per_minute = 4).await;
    app.onboard("xinyi", "青川县信义小学").await;
    // Each request claims another address; the peer (127.0.0.1) is not a trusted proxy,
    // so all of them count against 127.0.0.1.
    let claimed: Vec<String> = (1..=7).map(|i| format!("198.51.100.{i}")).collect();
    let claimed: Vec<&str> = claimed.iter().map(String::as_str).collect();
    let statuses = join_statuses(&app, &claimed).await;
    assert!(
        statuses[..5]
            .iter()
            .all(|s| *s != StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    let again = app
        .get(&TestApp::school_host("xinyi"), "/join/not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(again.text().await.unwrap().contains("尝试次数太多"));
    // Other routes of the school are not affected by the sensitive-route limit.
    assert_eq!(
        app.get(&TestApp::school_host("xinyi"), "/")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn x_forwarded_for_from_a_trusted_proxy_names_the_client() {
    let app = TestApp::spawn_with(|c| {
        c.form_requests_per_minute = 4;
        c.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    app.onboard("xinyi", "青川县信义小学").await;
    // One client behind the proxy uses up its burst…
    let statuses = join_statuses(&app, &["198.51.100.1"; 6]).await;
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // …another client behind the same proxy is still served; a spoofed first hop added
    // by that client does not matter, the proxy's own entry (the last) does.
    let statuses = join_statuses(&app, &["198.51.100.1, 198.51.100.2"; 3]).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::NOT_FOUND),
        "{statuses:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn trusting_every_peer_counts_the_address_the_load_balancer_appended() {
    // `trust_forwarded_for`: every peer is trusted, so only the load balancer's own entry
    // (the right-most) may name the client; a client rotating the entries it writes itself
    // (the left-most) is still one client.
    let app = TestApp::spawn_with(|c| {
        c.form_requests_per_minute = 4;
        c.trust_forwarded_for = true;
    })
    .await;
    app.onboard("xinyi", "青川县信义小学").await;
    let rotated: Vec<String> = (1..=7)
        .map(|i| format!("1.2.3.{i}, 198.51.100.9"))
        .collect();
    let rotated: Vec<&str> = rotated.iter().map(String::as_str).collect();
    let statuses = join_statuses(&app, &rotated).await;
    assert!(
        statuses[..5].iter().all(|s| *s == StatusCode::NOT_FOUND),
        "{statuses:?}"
    );
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // Sign-in attempts count against the same address: the limit layer refuses them too.
    let login = app
        .http
        .post(app.url("/login"))
        .header(reqwest::header::HOST, TestApp::school_host("xinyi"))
        .header("x-forwarded-for", "4.4.4.4, 198.51.100.9")
        .form(&[("login", "13800000000"), ("password", "x"), ("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same load balancer is served.
    let other = join_statuses(&app, &["1.2.3.1, 198.51.100.10"]).await;
    assert_eq!(other, vec![StatusCode::NOT_FOUND]);
    app.stop().await;
}

#[tokio::test]
async fn a_school_cannot_hold_more_than_its_share_of_the_database_pool() {
    let app = TestApp::spawn_with(|c| {
        c.database_max_connections = 10;
        c.database_acquire_timeout_secs = 1;
    })
    .await;
    app.onboard("xinyi", "青川县信义小学").await;
    app.onboard("shiyan", "青川县实验小学").await;
    set_limits(&app, "xinyi", json!({"db_concurrency": 2})).await;
    let pool = &app.services.pool;
    let a = campus_tenant::registry::get(pool, &campus_tenant::Slug::parse("xinyi").unwrap())
        .await
        .unwrap();
    let b = campus_tenant::registry::get(pool, &campus_tenant::Slug::parse("shiyan").unwrap())
        .await
        .unwrap();
    let db = app.services.db.clone();

    // School A's two permits are taken by two open transactions.
    let held = vec![db.school(&a).await.unwrap(), db.school(&a).await.unwrap()];
    // A third transaction of A waits…
    let third = {
        let (db, a) = (db.clone(), a.clone());
        tokio::spawn(async move { db.school(&a).await.map(|_tx| ()) })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!third.is_finished(), "the third transaction of A must wait");
    // …while school B's work goes ahead at once, directly and over HTTP.
    let started = std::time::Instant::now();
    let tx_b = db.school(&b).await.unwrap();
    tx_b.rollback().await.unwrap();
    let resp = app
        .get(&TestApp::school_host("shiyan"), "/api/v1/school")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_millis(900));
    let metrics = scrape(&app).await;
    assert!(
        metrics.contains("campus_db_school_waiting{school=\"xinyi\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("campus_db_school_permits{school=\"xinyi\"} 2"));
    assert!(metrics.contains("campus_db_school_in_use{school=\"xinyi\"} 2"));

    // When one of A's transactions ends, the waiting one proceeds.
    drop(held);
    tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("the waiting transaction finishes")
        .unwrap()
        .expect("the waiting transaction got its permit");

    // With both permits taken again, A's HTTP request gives up after the wait limit
    // (1 s here) with 503, not a hang or a 500.
    let held = vec![db.school(&a).await.unwrap(), db.school(&a).await.unwrap()];
    let resp = app
        .get(&TestApp::school_host("xinyi"), "/api/v1/school")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    drop(held);
    let metrics = scrape(&app).await;
    assert!(metrics.contains("campus_db_school_wait_timeouts_total{school=\"xinyi\"} 1"));
    let waits: i64 = metric_value(&metrics, "campus_db_school_waits_total{school=\"xinyi\"}");
    assert!(waits >= 2, "{waits}");
    app.stop().await;
}

pub(crate) async fn scrape(app: &TestApp) -> String {
    let resp = app.get(BASE, "/metrics").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

pub(crate) fn metric_value(metrics: &str, series: &str) -> i64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as i64)
}
