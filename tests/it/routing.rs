//! Point 5: host → school routing. Subdomains and extra hostnames reach their school,
//! unknown hosts get a 404 page without a database query once cached, suspended schools a
//! clear page, and a change made anywhere reaches every instance through LISTEN/NOTIFY.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{onboard, TestApp, BASE};

#[tokio::test]
async fn each_school_answers_on_its_subdomain_and_its_extra_hostnames() {
    let app = TestApp::spawn().await;
    onboard(
        &app.services,
        "xinyi",
        "青川县信义小学",
        &["www.xinyi-school.cn"],
    )
    .await;
    onboard(&app.services, "shiyan", "青川县实验小学", &[]).await;

    for (host, name) in [
        (format!("xinyi.{BASE}"), "青川县信义小学"),
        (format!("XinYi.{BASE}:8080"), "青川县信义小学"),
        ("www.xinyi-school.cn".to_owned(), "青川县信义小学"),
        (format!("shiyan.{BASE}"), "青川县实验小学"),
    ] {
        let resp = app.get(&host, "/").send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{host}");
        let body = resp.text().await.unwrap();
        assert!(body.contains(name), "{host} should show {name}");
        let other = if name == "青川县信义小学" {
            "青川县实验小学"
        } else {
            "青川县信义小学"
        };
        assert!(!body.contains(other), "{host} must not show {other}");
    }
    app.stop().await;
}

#[tokio::test]
async fn unknown_hosts_get_a_404_page_and_cost_no_query_once_cached() {
    let app = TestApp::spawn().await;
    let first = app
        .get(&format!("nosuch.{BASE}"), "/")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::NOT_FOUND);
    let page = first.text().await.unwrap();
    assert!(page.contains("找不到这所学校"), "{page}");
    let lookups = app.services.resolver.db_lookups();
    for _ in 0..20 {
        let r = app
            .get(&format!("nosuch.{BASE}"), "/anything")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(
        app.services.resolver.db_lookups(),
        lookups,
        "cached unknown hosts must not query the registry"
    );
    app.stop().await;
}

#[tokio::test]
async fn malformed_or_oversized_hosts_get_a_clear_400() {
    let app = TestApp::spawn().await;
    let long = format!("{}.{BASE}", "a".repeat(300));
    for host in [
        "a..b",
        "-x.campus.test",
        "x.campus.test:99999",
        "bad_host!.campus.test",
        long.as_str(),
    ] {
        let r = app.get(host, "/").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{host}");
        assert!(r.text().await.unwrap().contains("网址无效"));
    }
    app.stop().await;
}

#[tokio::test]
async fn a_suspended_school_shows_a_page_saying_so_and_comes_back_on_resume() {
    let app = TestApp::spawn().await;
    let school = app.onboard("xinyi", "青川县信义小学").await.tenant;
    let host = format!("xinyi.{BASE}");
    assert_eq!(
        app.get(&host, "/").send().await.unwrap().status(),
        StatusCode::OK
    );
    app.services
        .platform
        .suspend(&school.slug, Some("欠费".into()), "test")
        .await
        .unwrap();
    let resp = wait_for_status(&app, &host, StatusCode::FORBIDDEN).await;
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("已暂停服务") && page.contains("欠费"),
        "{page}"
    );
    app.services
        .platform
        .resume(&school.slug, "test")
        .await
        .unwrap();
    wait_for_status(&app, &host, StatusCode::OK).await;
    app.stop().await;
}

async fn wait_for_status(app: &TestApp, host: &str, want: StatusCode) -> reqwest::Response {
    for _ in 0..100 {
        let r = app.get(host, "/").send().await.unwrap();
        if r.status() == want {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{host} did not answer {want} within 5 s");
}

#[tokio::test]
async fn a_change_made_by_one_instance_reaches_another_through_notify() {
    let app = TestApp::spawn().await;
    // A second instance on the same database: its own cache, its own listener.
    let services_b = campus::Services::connect(campus::Config {
        database_url: Some(app.db.url.clone()),
        ..(*app.services.cfg).clone()
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr_b = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(campus::app::serve(services_b.clone(), listener, async {
        let _ = stopped.await;
    }));
    for _ in 0..200 {
        if services_b.resolver.is_listening() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let get_b = |host: String| {
        app.http
            .get(format!("http://{addr_b}/"))
            .header("host", host)
            .send()
    };

    // Instance B caches "unknown" for a host, then instance A creates that school.
    assert_eq!(
        get_b(format!("late.{BASE}")).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    app.onboard("late", "后来的学校").await;
    let mut seen = false;
    for _ in 0..100 {
        if get_b(format!("late.{BASE}")).await.unwrap().status() == StatusCode::OK {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        seen,
        "instance B never saw the new school although its cache TTL is an hour"
    );

    // Instance A adds a hostname; B routes it without a restart.
    app.services
        .platform
        .update(
            &campus_tenant::Slug::parse("late").unwrap(),
            &campus_tenant::lifecycle::SchoolPatch {
                hostnames: Some(vec![
                    campus_tenant::Hostname::parse("late.example.cn").unwrap()
                ]),
                ..Default::default()
            },
            "test",
        )
        .await
        .unwrap();
    let mut routed = false;
    for _ in 0..100 {
        if get_b("late.example.cn".into()).await.unwrap().status() == StatusCode::OK {
            routed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(routed, "instance B never routed the new hostname");
    let _ = stop.send(());
    let _ = server.await;
    services_b.db.close().await;
    app.stop().await;
}

#[tokio::test]
async fn the_county_host_and_the_admin_api_are_not_schools() {
    let app = TestApp::spawn().await;
    app.onboard("xinyi", "青川县信义小学").await;
    let county = app
        .get(&format!("county.{BASE}"), "/")
        .send()
        .await
        .unwrap();
    assert_eq!(county.status(), StatusCode::OK);
    assert!(county.text().await.unwrap().contains("教育局"));
    // The admin API answers on the platform and county hosts, never on a school's.
    let on_school = app
        .http
        .get(app.url("/admin/v1/tenants"))
        .header("host", format!("xinyi.{BASE}"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(on_school.status(), StatusCode::NOT_FOUND);
    for host in [
        format!("admin.{BASE}"),
        format!("county.{BASE}"),
        BASE.to_owned(),
        "127.0.0.1".to_owned(),
    ] {
        let r = app
            .http
            .get(app.url("/admin/v1/tenants"))
            .header("host", host.clone())
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{host}");
    }
    // Slugs that name platform hosts cannot be taken by a school.
    let r = app
        .admin(reqwest::Method::PUT, "/admin/v1/tenants/county")
        .json(&serde_json::json!({"name": "冒名"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

#[tokio::test]
async fn health_probes_answer_on_any_host() {
    let app = TestApp::spawn().await;
    for host in ["whatever.example", "10.0.0.5", BASE] {
        assert_eq!(
            app.get(host, "/healthz").send().await.unwrap().status(),
            StatusCode::OK
        );
        let ready = app.get(host, "/readyz").send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        let body: serde_json::Value = ready.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"postgres": "ok", "s3": "ok"}));
    }
    app.stop().await;
}

#[tokio::test]
async fn readiness_fails_when_object_storage_is_down() {
    let app = TestApp::spawn_with(|cfg| cfg.s3_endpoint = Some("http://127.0.0.1:9".into())).await;
    let ready = app.get(BASE, "/readyz").send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["postgres"], "ok");
    assert_ne!(body["s3"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn school_pages_show_only_that_schools_data() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    crate::helpers::add_pupils(&app.services, &a, "a", 4).await;
    crate::helpers::add_pupils(&app.services, &b, "b", 7).await;
    for (slug, pupils) in [("school-a", 4), ("school-b", 7)] {
        let profile: serde_json::Value = app
            .get(&TestApp::school_host(slug), "/api/v1/school")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(profile["students"], pupils, "{slug}");
    }
    app.stop().await;
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let t = onboard(&app.services, "xinyi", "青川县信义小学", &[])
        .await
        .tenant;
    let mut tx = app.services.db.school(&t).await.unwrap();
    sqlx::query(
        "insert into school_profile (name, short_name, theme_color) values ('青川县信义小学', '信义', '#1F6FEB')",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let school = format!("xinyi.{BASE}");
    for (host, path) in [
        (school.as_str(), "/"),
        (school.as_str(), "/login?local=1"),
        (school.as_str(), "/static/campus.css"),
        (school.as_str(), "/api/v1/school"),
        (school.as_str(), "/no/such/page"),
        ("nowhere.campus.test", "/"),
        ("county.campus.test", "/login?local=1"),
    ] {
        let resp = app.get(host, path).send().await.unwrap();
        let h = resp.headers();
        let csp = h
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("no CSP on {host}{path}"))
            .to_str()
            .unwrap();
        for part in [
            "default-src 'self'",
            "script-src 'self';",
            "style-src 'self';",
            "img-src 'self' data: blob:",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
            "form-action 'self' http://login.campus.test",
        ] {
            assert!(csp.contains(part), "{host}{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{host}{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{host}{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{host}{path}");
        assert!(h.get("strict-transport-security").is_none(), "plain http");
    }
    // Pages whose address carries a token send no Referer anywhere.
    for path in [
        "/join/3f9c1e0b7a52d4e8c6b1f0a9d3e7c2b5",
        "/join/status/3f9c1e0b7a52d4e8c6b1f0a9d3e7c2b5",
        "/invite/3f9c1e0b7a52d4e8c6b1f0a9d3e7c2b5",
        "/visit/3f9c1e0b7a52d4e8c6b1f0a9d3e7c2b5",
        "/sso/callback?code=ab&state=cd",
    ] {
        let resp = app.get(&school, path).send().await.unwrap();
        assert_eq!(resp.headers()["referrer-policy"], "no-referrer", "{path}");
    }
    // The pages themselves carry no inline script or style the policy would block.
    let home = app
        .get(&school, "/")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("/static/theme/1f6feb.css"), "{home}");
    assert!(
        !home.contains("<style") && !home.contains("style=\""),
        "{home}"
    );
    let theme = app
        .get(&school, "/static/theme/1f6feb.css")
        .send()
        .await
        .unwrap();
    assert_eq!(theme.status(), StatusCode::OK);
    assert!(theme.text().await.unwrap().contains("--brand: #1f6feb"));
    let bad = app
        .get(&school, "/static/theme/red;x.css")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::NOT_FOUND);
    app.stop().await;

    // Over HTTPS, browsers are told to stay on HTTPS.
    let app = TestApp::spawn_with(|c| c.public_scheme = "https".into()).await;
    let resp = app.get("nowhere.campus.test", "/").send().await.unwrap();
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    assert!(resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("form-action 'self' https://login.campus.test"));
    app.stop().await;
}
