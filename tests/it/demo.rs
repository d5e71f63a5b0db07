//! Point 8: `campus demo` starts its own Postgres cluster and S3 server in a scratch
//! folder, onboards and seeds the demo schools, serves them, shuts down cleanly on Ctrl-C,
//! and reuses its data on the next start.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_campus");

fn demo(data: &std::path::Path, port: u16, extra: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args([
        "demo",
        "--schools",
        "2",
        "--port",
        &port.to_string(),
        "--data",
    ])
    .arg(data)
    .args(extra)
    .env_remove("DATABASE_URL")
    .env_remove("CAMPUS_DATABASE_URL")
    .env("RUST_LOG", "warn")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn the_demo_serves_seeded_schools_stops_cleanly_and_restarts_on_its_data() {
    let dir = tempfile::tempdir().unwrap();
    // Postgres runs as an unprivileged user when we are root; let it into the folder.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    let port = campus_devstack::free_port().unwrap();

    let mut child = demo(&data, port, &[]).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    let ready = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            banner.push_str(&line);
            banner.push('\n');
            if line.contains("Press Ctrl-C") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(ready, "demo did not become ready:\n{banner}");
    assert!(
        banner.contains(&format!("http://xinyi.localhost:{port}")),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("http://county.localhost:{port}")),
        "{banner}"
    );
    assert!(banner.contains("admin API token:   cct_"), "{banner}");
    assert!(banner.contains("2 schools set up now"), "{banner}");
    // Mail goes to the demo's own sink, kept in the data folder.
    assert!(
        banner.contains(&format!("{}", data.join("mail").display())),
        "{banner}"
    );
    assert!(data.join("mail").is_dir());

    let http = reqwest::Client::new();
    let page = http
        .get(format!("http://127.0.0.1:{port}/"))
        .header("host", format!("xinyi.localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("青川县信义小学") && page.contains("/badge.svg"),
        "{page}"
    );
    let profile: serde_json::Value = http
        .get(format!("http://127.0.0.1:{port}/api/v1/school"))
        .header("host", format!("xinyi.localhost:{port}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pupils = profile["students"].as_i64().unwrap();
    assert!(
        (800..=3100).contains(&pupils),
        "a demo school has 800–3,000 pupils, got {pupils}"
    );
    assert!(
        profile["attendance_rate"]
            .as_f64()
            .is_some_and(|r| r > 0.9 && r < 1.0),
        "{profile}"
    );
    let badge = http
        .get(format!("http://127.0.0.1:{port}/badge.svg"))
        .header("host", format!("xinyi.localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert!(badge.text().await.unwrap().starts_with("<svg"));
    // The banner prints the first school's join link; it opens the parents' form, and the
    // review page has applications waiting.
    let prefix = format!("    parents: http://xinyi.localhost:{port}/join/");
    let start = banner.find(&prefix).unwrap_or_else(|| panic!("{banner}")) + prefix.len();
    let token = &banner[start..start + 32];
    let form = http
        .get(format!("http://127.0.0.1:{port}/join/{token}"))
        .header("host", format!("xinyi.localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    assert!(form.text().await.unwrap().contains("家长加入"));
    let logins = std::fs::read_to_string(data.join("demo-logins.txt")).unwrap();
    assert!(logins.contains("xinyi\thttp://xinyi.localhost"), "{logins}");

    // Ctrl-C: a clean exit, and the private Postgres is stopped.
    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGINT).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "demo exited with {status}");
    assert!(
        !data.join("pg/postmaster.pid").exists(),
        "Postgres was left running"
    );

    // Second start: the same data, nothing to set up.
    let out = demo(&data, port, &["--no-serve"]).output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let banner = String::from_utf8_lossy(&out.stdout);
    assert!(
        banner.contains("0 schools set up now, 2 in all"),
        "{banner}"
    );
    assert!(!data.join("pg/postmaster.pid").exists());
}

#[tokio::test]
async fn the_demo_refuses_a_database_holding_schools_it_did_not_create() {
    // A county's real database: one school, onboarded through the platform (not by the
    // demo), even with a slug the demo also uses.
    let app = crate::helpers::TestApp::spawn().await;
    app.onboard("xinyi", "青川县信义小学").await;
    app.onboard("chengguan", "城关中学").await;
    let dir = tempfile::tempdir().unwrap();
    let port = campus_devstack::free_port().unwrap();
    let out = demo(&dir.path().join("data"), port, &["--no-serve"])
        .env("DATABASE_URL", &app.db.url)
        .env("CAMPUS_ROLE_PREFIX", &app.db.role_prefix)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("chengguan, xinyi") && stderr.contains("--force"),
        "{stderr}"
    );
    // Nothing was added: no account with the public demo password, no demo school.
    let accounts: i64 = sqlx::query_scalar(
        "select count(*) from public.accounts where username in ('bureau', 'xinyi.admin')",
    )
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(accounts, 0);
    let schools: i64 = sqlx::query_scalar("select count(*) from public.tenants")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(schools, 2);
    app.stop().await;
}
