//! Point 4: onboarding through the admin API — one idempotent call creates schema, role,
//! migrations, storage prefix and the first admin invitation; bad input gets a clear error
//! and leaves nothing behind; delete is soft with a grace period.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{TestApp, BASE};

async fn schema_exists(app: &TestApp, schema: &str) -> bool {
    sqlx::query_scalar("select exists(select 1 from pg_namespace where nspname = $1)")
        .bind(schema)
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
}

async fn role_exists(app: &TestApp, role: &str) -> bool {
    sqlx::query_scalar("select exists(select 1 from pg_roles where rolname = $1)")
        .bind(role)
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
}

async fn tenant_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from public.tenants")
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn put_onboards_a_school_completely_and_again_changes_nothing() {
    let app = TestApp::spawn().await;
    let body =
        json!({"name": "青川县信义小学", "plan": "standard", "hostnames": ["www.xinyi-school.cn"]});
    let resp = app
        .admin(Method::PUT, "/admin/v1/tenants/xinyi")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["created"], true);
    assert_eq!(created["tenant"]["status"], "active");
    assert_eq!(
        created["tenant"]["hostnames"],
        json!(["www.xinyi-school.cn"])
    );
    let invitation = created["invitation"]["url"].as_str().unwrap();
    assert!(
        invitation.starts_with(&format!("http://xinyi.{BASE}/invite/")),
        "{invitation}"
    );

    let role = format!("{}school_xinyi", app.db.role_prefix);
    assert!(schema_exists(&app, "school_xinyi").await);
    assert!(role_exists(&app, &role).await);
    let version: i32 =
        sqlx::query_scalar("select max(version) from school_xinyi._campus_migrations")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(version, campus_tenant::migrate::TENANT.latest_version());
    let marker = app
        .services
        .store
        .for_tenant(
            &campus_tenant::registry::get(
                &app.services.pool,
                &campus_tenant::Slug::parse("xinyi").unwrap(),
            )
            .await
            .unwrap(),
        )
        .get(&campus_tenant::ObjectKey::parse(campus_tenant::store::MARKER).unwrap())
        .await
        .unwrap();
    assert!(
        marker.is_some(),
        "the storage prefix is reserved with a marker object"
    );
    let invitations: i64 = sqlx::query_scalar("select count(*) from public.tenant_invitations")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(invitations, 1);

    // The same PUT again: 200, same school, no second invitation.
    let again = app
        .admin(Method::PUT, "/admin/v1/tenants/xinyi")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["created"], false);
    assert_eq!(again["invitation"], Value::Null);
    assert_eq!(again["tenant"]["id"], created["tenant"]["id"]);
    let invitations: i64 = sqlx::query_scalar("select count(*) from public.tenant_invitations")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(invitations, 1);

    // A PUT with a new name updates it; GET shows it.
    let renamed = app
        .admin(Method::PUT, "/admin/v1/tenants/xinyi")
        .json(&json!({"name": "信义小学"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), StatusCode::OK);
    let got: Value = app
        .admin(Method::GET, "/admin/v1/tenants/xinyi")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["name"], "信义小学");
    assert_eq!(
        got["hostnames"],
        json!([]),
        "PUT replaces the whole desired state"
    );
    app.stop().await;
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let app = TestApp::spawn().await;
    let url = app.url("/admin/v1/tenants");
    let host = format!("admin.{BASE}");
    let none = app
        .http
        .get(&url)
        .header("host", &host)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(none.headers().contains_key("www-authenticate"));
    let wrong = app
        .http
        .get(&url)
        .header("host", &host)
        .bearer_auth("cct_not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");

    let id: i64 = sqlx::query_scalar("select id from public.admin_tokens where name = 'tests'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert!(campus::admin_tokens::revoke(&app.services.pool, id)
        .await
        .unwrap());
    let revoked = app
        .admin(Method::GET, "/admin/v1/tenants")
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    // Tokens are stored hashed, never in clear.
    let stored: Vec<u8> =
        sqlx::query_scalar("select token_hash from public.admin_tokens where id = $1")
            .bind(id)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(&app.token));
    app.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "Bad_Slug",
            json!({"name": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_slug",
        ),
        (
            "ab",
            json!({"name": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_slug",
        ),
        (
            "admin",
            json!({"name": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_slug",
        ),
        (
            "good-slug",
            json!({"name": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            "good-slug",
            json!({"name": "x".repeat(101)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            "good-slug",
            json!({"name": "学校", "plan": "platinum"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_plan",
        ),
        (
            "good-slug",
            json!({"name": "学校", "hostnames": ["not a host"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_hostname",
        ),
        (
            "good-slug",
            json!({"name": "学校", "hostnames": [format!("other.{BASE}")]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_hostname",
        ),
        (
            "good-slug",
            json!({"name": "学校", "colour": "red"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "good-slug",
            json!({"plan": "small"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ];
    for (slug, body, status, code) in cases {
        let r = app
            .admin(Method::PUT, &format!("/admin/v1/tenants/{slug}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{slug} {body}");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["code"], code, "{slug} {body}: {err}");
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let garbled = app
        .admin(Method::PUT, "/admin/v1/tenants/good-slug")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbled.status(), StatusCode::BAD_REQUEST);
    let huge = app
        .admin(Method::PUT, "/admin/v1/tenants/good-slug")
        .header("content-type", "application/json")
        .body(format!("{{\"name\": \"{}\"}}", "x".repeat(100_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(tenant_count(&app).await, 0, "nothing may be half-created");
    assert!(!schema_exists(&app, "school_good_slug").await);
    app.stop().await;
}

#[tokio::test]
async fn a_hostname_of_another_school_is_a_conflict() {
    let app = TestApp::spawn().await;
    let r = app
        .admin(Method::PUT, "/admin/v1/tenants/first")
        .json(&json!({"name": "一校", "hostnames": ["shared.example.cn"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .admin(Method::PUT, "/admin/v1/tenants/second")
        .json(&json!({"name": "二校", "hostnames": ["shared.example.cn"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["code"], "hostname_taken");
    assert!(err["message"].as_str().unwrap().contains("first"));
    assert_eq!(
        tenant_count(&app).await,
        1,
        "the second school was not half-created"
    );
    assert!(!schema_exists(&app, "school_second").await);
    let r = app
        .admin(Method::PATCH, "/admin/v1/tenants/first")
        .json(&json!({"hostnames": ["shared.example.cn", "also.example.cn"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn onboarding_with_storage_down_leaves_nothing_behind() {
    let app = TestApp::spawn_with(|cfg| cfg.s3_endpoint = Some("http://127.0.0.1:9".into())).await;
    let r = app
        .admin(Method::PUT, "/admin/v1/tenants/xinyi")
        .json(&json!({"name": "信义"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["code"], "storage_unavailable");
    assert_eq!(tenant_count(&app).await, 0);
    assert!(!schema_exists(&app, "school_xinyi").await);
    assert!(!role_exists(&app, &format!("{}school_xinyi", app.db.role_prefix)).await);
    app.stop().await;
}

#[tokio::test]
async fn patch_changes_plan_limits_and_status() {
    let app = TestApp::spawn().await;
    app.onboard("xinyi", "信义").await;
    let r = app
        .admin(Method::PATCH, "/admin/v1/tenants/xinyi")
        .json(&json!({"plan": "large", "requests_per_second": 900, "burst": 1800}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert_eq!(
        (
            t["plan"].as_str(),
            t["requests_per_second"].as_i64(),
            t["burst"].as_i64()
        ),
        (Some("large"), Some(900), Some(1800))
    );
    let t: Value = app
        .admin(Method::PATCH, "/admin/v1/tenants/xinyi")
        .json(&json!({"requests_per_second": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["requests_per_second"], Value::Null);
    assert_eq!(t["burst"], 1800);
    let bad = app
        .admin(Method::PATCH, "/admin/v1/tenants/xinyi")
        .json(&json!({"burst": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let t: Value = app
        .admin(Method::PATCH, "/admin/v1/tenants/xinyi")
        .json(&json!({"status": "suspended", "suspended_reason": "寒假"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["status"], "suspended");
    let t: Value = app
        .admin(Method::PATCH, "/admin/v1/tenants/xinyi")
        .json(&json!({"status": "active"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["status"], "active");
    assert_eq!(
        app.admin(Method::PATCH, "/admin/v1/tenants/nosuch")
            .json(&json!({"plan": "small"}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let audit: i64 = sqlx::query_scalar("select count(*) from public.admin_audit where tenant_slug = 'xinyi' and actor = 'token:tests'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert!(audit >= 4, "every admin change is audited (found {audit})");
    app.stop().await;
}

#[tokio::test]
async fn delete_is_soft_with_a_grace_period_then_purge_removes_everything() {
    let app = TestApp::spawn().await;
    let school = app.onboard("xinyi", "信义").await.tenant;
    crate::helpers::add_pupils(&app.services, &school, "p", 2).await;
    let r = app
        .admin(Method::DELETE, "/admin/v1/tenants/xinyi")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["status"], "deleted");
    assert!(t["purge_after"].is_string());
    // Deleting again is fine (retries); the school is gone from the web and the list.
    assert_eq!(
        app.admin(Method::DELETE, "/admin/v1/tenants/xinyi")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::ACCEPTED
    );
    for _ in 0..100 {
        if app
            .get(&TestApp::school_host("xinyi"), "/")
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::NOT_FOUND
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.get(&TestApp::school_host("xinyi"), "/")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let list: Value = app
        .admin(Method::GET, "/admin/v1/tenants")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["tenants"], json!([]));
    let all: Value = app
        .admin(Method::GET, "/admin/v1/tenants?include_deleted=true")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["tenants"].as_array().unwrap().len(), 1);
    // Re-creating a deleted school is refused with a hint.
    let again = app
        .admin(Method::PUT, "/admin/v1/tenants/xinyi")
        .json(&json!({"name": "信义"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);

    // Within the grace period nothing is purged, and resume brings it back with its data.
    assert!(app
        .services
        .platform
        .purge_due("test")
        .await
        .unwrap()
        .is_empty());
    let t: Value = app
        .admin(Method::POST, "/admin/v1/tenants/xinyi/resume")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["status"], "active");
    let mut tx = app.services.db.school(&school).await.unwrap();
    let n: i64 = sqlx::query_scalar("select count(*) from students")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 2, "resume keeps the school's data");
    tx.commit().await.unwrap();

    // Delete, then pretend the grace period is over: purge removes schema, role, files, row.
    app.admin(Method::DELETE, "/admin/v1/tenants/xinyi")
        .send()
        .await
        .unwrap();
    sqlx::query(
        "update public.tenants set purge_after = now() - interval '1 second' where slug = 'xinyi'",
    )
    .execute(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(
        app.services.platform.purge_due("test").await.unwrap(),
        ["xinyi"]
    );
    assert!(!schema_exists(&app, "school_xinyi").await);
    assert!(!role_exists(&app, school.role_name()).await);
    assert!(app
        .services
        .store
        .for_tenant(&school)
        .list()
        .await
        .unwrap()
        .is_empty());
    assert_eq!(tenant_count(&app).await, 0);
    assert_eq!(
        app.admin(Method::GET, "/admin/v1/tenants/xinyi")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn invitations_can_be_reissued_for_active_schools_only() {
    let app = TestApp::spawn().await;
    app.onboard("xinyi", "信义").await;
    let r = app
        .admin(Method::POST, "/admin/v1/tenants/xinyi/invitations")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let inv: Value = r.json().await.unwrap();
    assert_eq!(inv["role"], "school_admin");
    app.admin(Method::POST, "/admin/v1/tenants/xinyi/suspend")
        .json(&json!({"reason": "检修"}))
        .send()
        .await
        .unwrap();
    let r = app
        .admin(Method::POST, "/admin/v1/tenants/xinyi/invitations")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_admin_api() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .get(BASE, "/api/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let path = &doc["paths"]["/admin/v1/tenants/{slug}"];
    for method in ["get", "put", "patch", "delete"] {
        assert!(path[method].is_object(), "{method} is documented");
    }
    assert!(doc["paths"]["/admin/v1/tenants"]["get"].is_object());
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
    assert!(doc["components"]["schemas"]["PutTenant"].is_object());
    let plans: Value = app
        .admin(Method::GET, "/admin/v1/plans")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plans.as_array().unwrap().len(), 3);
    app.stop().await;
}
