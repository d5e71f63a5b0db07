//! Point 7: per-school object storage over the real AWS SDK against the embedded S3
//! server. Keys are relative to the school's prefix; traversal and encoding tricks are
//! refused before any request is made.

use bytes::Bytes;
use campus_tenant::store::KeyError;
use campus_tenant::ObjectKey;

use crate::helpers::TestApp;

#[tokio::test]
async fn objects_land_under_the_schools_prefix_and_nowhere_else() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    let store_a = app.services.store.for_tenant(&a);
    let store_b = app.services.store.for_tenant(&b);
    let key = ObjectKey::parse("notices/2026/秋季开学通知.pdf").unwrap();
    store_a
        .put(&key, Bytes::from_static(b"%PDF-a"), "application/pdf")
        .await
        .unwrap();
    store_b
        .put(&key, Bytes::from_static(b"%PDF-b"), "application/pdf")
        .await
        .unwrap();

    assert_eq!(
        store_a.get(&key).await.unwrap().unwrap().0,
        Bytes::from_static(b"%PDF-a")
    );
    assert_eq!(
        store_b.get(&key).await.unwrap().unwrap().0,
        Bytes::from_static(b"%PDF-b")
    );
    assert_eq!(
        store_a.full_key(&key),
        "schools/school-a/notices/2026/秋季开学通知.pdf"
    );
    let mut keys = store_a.list().await.unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            campus_tenant::store::MARKER,
            "notices/2026/秋季开学通知.pdf"
        ]
    );

    // Ask the bucket directly (plain SDK): every object sits under some school's prefix.
    let client = campus::runtime::s3_client(&app.services.cfg).await;
    let listed = client
        .list_objects_v2()
        .bucket(&app.services.cfg.s3_bucket)
        .send()
        .await
        .unwrap();
    let all: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert_eq!(all.len(), 4);
    assert!(
        all.iter()
            .all(|k| k.starts_with("schools/school-a/") || k.starts_with("schools/school-b/")),
        "{all:?}"
    );

    store_a.delete(&key).await.unwrap();
    assert!(store_a.get(&key).await.unwrap().is_none());
    assert!(
        store_b.get(&key).await.unwrap().is_some(),
        "deleting in A leaves B's object alone"
    );
    app.stop().await;
}

#[tokio::test]
async fn keys_that_try_to_leave_the_prefix_are_refused() {
    for (raw, want) in [
        ("../school-b/secret.pdf", KeyError::Traversal),
        ("a/../../school-b/x", KeyError::Traversal),
        ("/schools/school-b/x", KeyError::Absolute),
        ("..%2Fschool-b%2Fx", KeyError::Character),
        ("%2e%2e/x", KeyError::Character),
        ("a\\..\\b", KeyError::Character),
        ("a//b", KeyError::Traversal),
        ("./a", KeyError::Traversal),
    ] {
        assert_eq!(ObjectKey::parse(raw), Err(want), "{raw:?}");
    }
}

#[tokio::test]
async fn presigned_urls_serve_the_object_for_a_short_time() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let store = app.services.store.for_tenant(&a);
    let key = ObjectKey::parse("photos/class-1.txt").unwrap();
    store
        .put(
            &key,
            Bytes::from_static("班级合影".as_bytes()),
            "text/plain; charset=utf-8",
        )
        .await
        .unwrap();
    let url = store
        .presign_get(&key, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert!(url.contains("X-Amz-Expires=60"), "{url}");
    let body = app.http.get(&url).send().await.unwrap();
    assert_eq!(body.status(), 200);
    assert_eq!(body.text().await.unwrap(), "班级合影");
    // Tampering with the signed URL's key is refused by the server.
    let tampered = url.replace("school-a", "school-b");
    assert_eq!(app.http.get(&tampered).send().await.unwrap().status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn the_school_badge_comes_from_that_schools_own_prefix() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    let key = ObjectKey::parse("branding/badge.svg").unwrap();
    app.services
        .store
        .for_tenant(&a)
        .put(
            &key,
            Bytes::from_static(b"<svg id=\"a\"/>"),
            "image/svg+xml",
        )
        .await
        .unwrap();
    app.services
        .store
        .for_tenant(&b)
        .put(
            &key,
            Bytes::from_static(b"<svg id=\"b\"/>"),
            "image/svg+xml",
        )
        .await
        .unwrap();
    for (slug, id) in [("school-a", "a"), ("school-b", "b")] {
        let svg = app
            .get(&TestApp::school_host(slug), "/badge.svg")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(svg, format!("<svg id=\"{id}\"/>"));
    }
    app.stop().await;
}
