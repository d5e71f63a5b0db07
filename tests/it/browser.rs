//! Pages in a real browser: headless Chromium loads a school's home page at phone size,
//! the "school not found" page and the "suspended" page, through the platform's own host
//! routing (every `*.campus.test` name is mapped to the test server).

use std::path::{Path, PathBuf};

use crate::helpers::{add_pupils, TestApp, BASE};

pub(crate) fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("headless Chromium is needed for page tests: apt-get install -y chromium (scripts/test.sh does this)")
}

/// Loads `url` in headless Chromium at phone size; returns the DOM after load and writes a
/// screenshot to `shot`.
async fn load(app: &TestApp, url: &str, shot: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=390,844",
    ];
    let resolve = format!(
        "--host-resolver-rules=MAP *.{BASE} 127.0.0.1:{}",
        app.addr.port()
    );
    let run = |extra: String| {
        let mut cmd = tokio::process::Command::new(chromium());
        cmd.args(args)
            .arg(&resolve)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(extra)
            .arg(url);
        cmd
    };
    let dom = run("--dump-dom".into()).output().await.unwrap();
    assert!(
        dom.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let shot_out = run(format!("--screenshot={}", shot.display()))
        .output()
        .await
        .unwrap();
    assert!(
        shot_out.status.success(),
        "chromium screenshot failed: {}",
        String::from_utf8_lossy(&shot_out.stderr)
    );
    String::from_utf8(dom.stdout).unwrap()
}

#[tokio::test]
async fn school_pages_render_in_a_real_browser_at_phone_size() {
    let app = TestApp::spawn().await;
    let school = app.onboard("xinyi", "青川县信义小学").await.tenant;
    add_pupils(&app.services, &school, "p", 12).await;
    let shots = tempfile::tempdir().unwrap();
    let port = app.addr.port();

    let home = load(
        &app,
        &format!("http://xinyi.{BASE}:{port}/"),
        &shots.path().join("home.png"),
    )
    .await;
    assert!(home.contains("<html lang=\"zh-CN\">"), "{home}");
    assert!(home.contains("<h1>青川县信义小学</h1>"), "{home}");
    assert!(
        home.contains("<b>12</b>在校学生"),
        "the page shows this school's own figures: {home}"
    );
    assert!(home.contains("width=device-width"), "phone viewport");
    let png = std::fs::read(shots.path().join("home.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 5_000,
        "the screenshot has content ({} bytes)",
        png.len()
    );

    let unknown = load(
        &app,
        &format!("http://nosuch.{BASE}:{port}/"),
        &shots.path().join("unknown.png"),
    )
    .await;
    assert!(
        unknown.contains("找不到这所学校") && unknown.contains("School not found"),
        "{unknown}"
    );

    app.services
        .platform
        .suspend(&school.slug, Some("系统升级".into()), "test")
        .await
        .unwrap();
    let mut suspended = String::new();
    for _ in 0..50 {
        suspended = load(
            &app,
            &format!("http://xinyi.{BASE}:{port}/"),
            &shots.path().join("suspended.png"),
        )
        .await;
        if suspended.contains("已暂停服务") {
            break;
        }
    }
    assert!(
        suspended.contains("已暂停服务") && suspended.contains("系统升级"),
        "{suspended}"
    );
    if let Ok(dir) = std::env::var("CAMPUS_SCREENSHOTS") {
        for name in ["home.png", "unknown.png", "suspended.png"] {
            let _ = std::fs::copy(shots.path().join(name), Path::new(&dir).join(name));
        }
    }
    app.stop().await;
}
