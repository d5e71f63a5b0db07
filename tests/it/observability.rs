//! Issue 7: what operators see. `/metrics` counts requests and latency per school and
//! route template (never the raw path), rate-limit rejections, the pool and each school's
//! share of it, and the host cache; JSON log lines carry the request id, the school and the
//! signed-in person; the Grafana dashboard and the alert rules in `infra/` name only
//! metrics the platform exports.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{person, TestApp, Visitor};
use crate::limits::{metric_value, scrape};

/// The labels of a series line, in any order: `name{a="1",b="2"} value`.
fn series<'a>(metrics: &'a str, name: &str, labels: &[(&str, &str)]) -> Option<&'a str> {
    metrics.lines().find(|l| {
        l.starts_with(&format!("{name}{{"))
            && labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
    })
}

fn value(line: &str) -> f64 {
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn metrics_count_requests_per_school_and_route_template() {
    let app = TestApp::spawn().await;
    app.onboard("xinyi", "青川县信义小学").await;
    app.onboard("shiyan", "青川县实验小学").await;
    let a = TestApp::school_host("xinyi");
    let b = TestApp::school_host("shiyan");
    for _ in 0..3 {
        assert_eq!(
            app.get(&a, "/api/v1/school").send().await.unwrap().status(),
            StatusCode::OK
        );
    }
    app.get(&b, "/api/v1/school").send().await.unwrap();
    // Two different ids, one route template; and a path no route matches.
    app.get(&a, "/messages/17").send().await.unwrap();
    app.get(&a, "/messages/18").send().await.unwrap();
    app.get(&a, "/no/such/page/12345").send().await.unwrap();

    // A school over its limit shows up in the rejection counter.
    app.admin(Method::PATCH, "/admin/v1/tenants/shiyan")
        .json(&json!({"requests_per_second": 1, "burst": 1}))
        .send()
        .await
        .unwrap();
    let mut limited = false;
    for _ in 0..50 {
        if app.get(&b, "/").send().await.unwrap().status() == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited);

    let m = scrape(&app).await;
    let ok = series(
        &m,
        "campus_http_requests_total",
        &[
            ("school", "xinyi"),
            ("route", "/api/v1/school"),
            ("method", "GET"),
            ("status", "200"),
        ],
    )
    .expect("per-school, per-route counter");
    assert_eq!(value(ok), 3.0);
    let other = series(
        &m,
        "campus_http_requests_total",
        &[
            ("school", "shiyan"),
            ("route", "/api/v1/school"),
            ("status", "200"),
        ],
    )
    .unwrap();
    assert_eq!(value(other), 1.0);
    let templated = series(
        &m,
        "campus_http_requests_total",
        &[("school", "xinyi"), ("route", "/messages/{id}")],
    )
    .expect("route template, not the raw path");
    assert_eq!(value(templated), 2.0);
    assert!(
        !m.contains("/messages/17") && !m.contains("/no/such/page"),
        "raw paths leak into labels"
    );
    assert!(series(
        &m,
        "campus_http_requests_total",
        &[
            ("school", "xinyi"),
            ("route", "unmatched"),
            ("status", "404")
        ]
    )
    .is_some());
    let hist = series(
        &m,
        "campus_http_request_duration_seconds_count",
        &[("school", "xinyi"), ("route", "/api/v1/school")],
    )
    .unwrap();
    assert_eq!(value(hist), 3.0);
    assert!(
        series(
            &m,
            "campus_http_requests_total",
            &[
                ("school", "shiyan"),
                ("route", "unmatched"),
                ("status", "429")
            ]
        )
        .is_some(),
        "a rejection is a request too"
    );
    assert!(
        value(
            series(
                &m,
                "campus_rate_limited_total",
                &[("school", "shiyan"), ("limit", "school")]
            )
            .unwrap()
        ) >= 1.0
    );
    // Pool, shares, host cache, limiter keys and memory are there too.
    assert!(metric_value(&m, "campus_db_pool_connections{state=\"max\"}") == 10);
    assert!(series(&m, "campus_db_school_permits", &[("school", "xinyi")]).is_some());
    assert!(
        value(series(&m, "campus_host_cache_lookups_total", &[("result", "hit")]).unwrap()) >= 5.0
    );
    assert!(value(series(&m, "campus_rate_limit_keys", &[("limiter", "school")]).unwrap()) >= 2.0);
    assert!(metric_value(&m, "campus_process_resident_memory_bytes") > 1 << 20);

    // Not on a school's host: schools must not see the county's figures.
    let resp = app.get(&a, "/metrics").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

/// Starts the real `campus serve --roles web` with `log_format = "json"` on a free port of
/// its own and points `app`'s address at it: its own process, so no other test's log
/// subscriber can take its lines.
async fn serve_with_json_logs(app: &mut TestApp) -> tokio::process::Child {
    use crate::helpers::{BASE, S3_KEY, S3_SECRET};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = &app.services.cfg;
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_campus"))
        .args(["serve", "--roles", "web"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.db.url)
        .env("CAMPUS_ROLE_PREFIX", &app.db.role_prefix)
        .env("CAMPUS_BASE_DOMAIN", BASE)
        .env("CAMPUS_BIND", format!("127.0.0.1:{port}"))
        .env("CAMPUS_S3_ENDPOINT", cfg.s3_endpoint.as_deref().unwrap())
        .env("CAMPUS_S3_ACCESS_KEY", S3_KEY)
        .env("CAMPUS_S3_SECRET_KEY", S3_SECRET)
        .env("CAMPUS_LOG_FORMAT", "json")
        .env("RUST_LOG", "info,tower_http=debug")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Every request of this test goes to the child process.
    app.addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut up = false;
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(app.addr).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(up, "campus serve did not listen within 10 s");
    child
}

/// Stops the server and returns everything it logged.
async fn stop_and_read_logs(mut child: tokio::process::Child) -> String {
    use tokio::io::AsyncReadExt;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let mut text = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .await
        .unwrap();
    text
}

/// The real `campus serve` with `log_format = "json"`, as operators run it.
#[tokio::test]
async fn json_log_lines_carry_the_request_id_the_school_and_the_person() {
    let mut app = TestApp::spawn().await;
    let school = app.onboard("xinyi", "青川县信义小学").await.tenant;
    let id = person(
        &app.services,
        "wang.laoshi",
        "王老师",
        "campus2026",
        &[(&school, &["teacher"])],
    )
    .await;
    let child = serve_with_json_logs(&mut app).await;
    let host = TestApp::school_host("xinyi");
    let mut v = Visitor::new(&app);
    v.sign_in(&host, "wang.laoshi", "campus2026").await;
    let me = v.get(&host, "/me").await;
    assert_eq!(me.status(), StatusCode::OK);
    let request_id = me.headers()["x-request-id"].to_str().unwrap().to_owned();
    let text = stop_and_read_logs(child).await;
    app.stop().await;

    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let of_request: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["request_id"] == request_id.as_str())
        .collect();
    assert!(
        !of_request.is_empty(),
        "no line of request {request_id}: {text}"
    );
    let done = of_request
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("finished processing request"))
        })
        .unwrap_or_else(|| panic!("no response line of request {request_id}: {text}"));
    let span = &done["span"];
    assert_eq!(span["school"], "xinyi");
    assert_eq!(span["route"], "/me");
    assert_eq!(span["person"].to_string(), id.to_string());
    assert_eq!(span["host"], host.as_str());
    assert!(done["timestamp"].is_string() && done["level"] == "DEBUG");
}

/// Join, status, invitation and visitor-pass links carry their token in the path, sign-on
/// callbacks a code in the query: none of them may reach the log, while the request lines
/// (with the route template) still do.
#[tokio::test]
async fn tokens_in_links_never_reach_the_log() {
    let mut app = TestApp::spawn().await;
    let school = app.onboard("xinyi", "青川县信义小学").await.tenant;
    let join = "3f9c1e0b7a52d4e8c6b1f0a9d3e7c2b5";
    let mut tx = app.services.db.school(&school).await.unwrap();
    sqlx::query("insert into join_links (kind, token) values ('parent', $1)")
        .bind(join)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let child = serve_with_json_logs(&mut app).await;
    let host = TestApp::school_host("xinyi");
    let page = app
        .get(&host, &format!("/join/{join}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let request_id = page.headers()["x-request-id"].to_str().unwrap().to_owned();
    let secrets = [
        "8d2e4f6a1b3c5d7e9f0a2b4c6d8e0f1a",
        "c4e6a8b0d2f4a6c8e0b2d4f6a8c0e2b4",
        "5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a",
        "e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1",
    ];
    for path in [
        format!("/join/status/{}", secrets[0]),
        format!("/invite/{}", secrets[1]),
        format!("/visit/{}", secrets[2]),
        format!("/sso/callback?code={}&state=x", secrets[3]),
    ] {
        app.get(&host, &path).send().await.unwrap();
    }
    let text = stop_and_read_logs(child).await;
    app.stop().await;

    for secret in std::iter::once(join).chain(secrets) {
        assert!(!text.contains(secret), "{secret} was logged: {text}");
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let done = lines
        .iter()
        .find(|l| {
            l["span"]["request_id"] == request_id.as_str()
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("finished processing request"))
        })
        .unwrap_or_else(|| panic!("no response line of the join page: {text}"));
    assert_eq!(done["span"]["uri"], "/join/{token}");
    assert_eq!(done["span"]["route"], "/join/{token}");
    assert_eq!(done["span"]["school"], "xinyi");
    for shown in [
        "/join/status/{token}",
        "/invite/{token}",
        "/visit/{token}",
        "/sso/callback",
    ] {
        assert!(
            lines.iter().any(|l| l["span"]["uri"] == shown),
            "no request line for {shown}: {text}"
        );
    }
}

/// Metric names used by the dashboard and the alert rules, without histogram suffixes.
fn names_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("campus_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &text[start..end];
        let name = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        out.push(name.to_owned());
        i = end;
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn the_dashboard_and_alert_rules_name_only_exported_metrics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dashboard =
        std::fs::read_to_string(root.join("infra/grafana/campus-dashboard.json")).unwrap();
    let parsed: Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() >= 6));
    let rules = std::fs::read_to_string(root.join("infra/prometheus/campus-alerts.yml")).unwrap();
    for alert in [
        "CampusHighErrorRate",
        "CampusNotifyBacklog",
        "CampusSchoolRateLimited",
    ] {
        assert!(
            rules.contains(&format!("alert: {alert}")),
            "{alert} missing"
        );
    }
    // Every metric name the platform declares appears as a string literal in its code.
    let mut declared = String::new();
    for dir in [
        "services/api/src",
        "services/limits/src",
        "services/notify/src",
    ] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                declared.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    for name in names_in(&dashboard).into_iter().chain(names_in(&rules)) {
        assert!(
            declared.contains(&format!("\"{name}\"")),
            "{name} is used in infra/ but no such metric is exported"
        );
    }
}
