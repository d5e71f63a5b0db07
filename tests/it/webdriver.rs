//! The sign-in journey in a real browser, driven through WebDriver (Debian's chromium and
//! chromedriver): a teacher of one school who is a parent at another signs in once, sees
//! the identity they act as, switches to their other school without a password, is
//! refused by a school where they have no membership, and switches the language.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::browser::chromium;
use crate::helpers::{person, TestApp, BASE};

const PW: &str = "campus2026";

fn chromedriver() -> PathBuf {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("chromedriver is needed for WebDriver tests: apt-get install -y chromium-driver (scripts/test.sh does this)")
}

/// A chromedriver process and a headless Chromium session that resolves every
/// `*.campus.test` name to the test server.
pub(crate) struct Browser {
    pub(crate) client: Client,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) async fn start(app: &TestApp) -> Self {
        let port = campus_devstack::free_port().unwrap();
        let driver = tokio::process::Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--window-size=390,844",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--host-resolver-rules=MAP *.{BASE} 127.0.0.1:{}", app.addr.port()),
                ],
            }),
        );
        // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session");
        Self {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    async fn text(&self, id: &str) -> String {
        let url = self.client.current_url().await.unwrap();
        match self.client.find(Locator::Id(id)).await {
            Ok(e) => e.text().await.unwrap(),
            Err(e) => panic!("#{id} on {url}: {e}"),
        }
    }

    /// Signs in on `host`'s own form (through the login host's round trip) and waits until
    /// the browser is back on `host`.
    pub(crate) async fn sign_in(&self, host: &str, login: &str, password: &str) {
        let c = &self.client;
        c.goto(&format!("http://{host}/login?local=1"))
            .await
            .unwrap();
        for (field, value) in [("login", login), ("password", password)] {
            c.find(Locator::Css(&format!("input[name={field}]")))
                .await
                .unwrap()
                .send_keys(value)
                .await
                .unwrap();
        }
        c.find(Locator::Css("form.form button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        for _ in 0..100 {
            let url = c.current_url().await.unwrap();
            if url.host_str() == Some(host) && url.path() == "/me" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{login} was not signed in at {host}: {}", self.body().await);
    }

    /// The Content-Security-Policy violations the current page reported (Chromium keeps
    /// them for a `buffered` ReportingObserver), as `directive blocked-url sample` lines.
    pub(crate) async fn csp_violations(&self) -> Vec<String> {
        let got = self
            .client
            .execute(
                r#"return new Promise(function (done) {
                  var got = [];
                  function keep(list) {
                    list.forEach(function (r) {
                      got.push(r.body.effectiveDirective + " " + (r.body.blockedURL || "") + " " + (r.body.sample || ""));
                    });
                  }
                  var o = new ReportingObserver(function (list) { keep(list); },
                    { types: ["csp-violation"], buffered: true });
                  o.observe();
                  setTimeout(function () { keep(o.takeRecords()); o.disconnect(); done(got); }, 300);
                });"#,
                vec![],
            )
            .await
            .unwrap();
        serde_json::from_value(got).unwrap()
    }

    async fn body(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_teacher_who_is_a_parent_elsewhere_signs_in_once_switches_identity_and_is_refused_where_unknown(
) {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    app.onboard("school-c", "丙校").await;
    person(
        &app.services,
        "teacher.wang",
        "王老师",
        PW,
        &[(&a, &["teacher", "head_teacher"]), (&b, &["parent"])],
    )
    .await;
    let browser = Browser::start(&app).await;
    let c = &browser.client;

    // Signing in at school A: the platform asks the login host first, which has no session
    // yet and sends the browser back to A's own form.
    c.goto(&format!("http://school-a.{BASE}/login"))
        .await
        .unwrap();
    c.find(Locator::Css("input[name=login]"))
        .await
        .unwrap()
        .send_keys("teacher.wang")
        .await
        .unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PW)
        .await
        .unwrap();
    c.find(Locator::Css("form.form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let url = c.current_url().await.unwrap();
    assert_eq!(url.host_str(), Some(format!("school-a.{BASE}").as_str()));
    assert_eq!(browser.text("acting-as").await, "教师、班主任");
    assert!(browser.text("current-identity").await.contains("王老师"));

    // Switching identity: the other school is offered on "me"; following it signs in there
    // through the login host, without the password.
    c.find(Locator::LinkText("乙校 · 家长"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let url = c.current_url().await.unwrap();
    assert_eq!(
        url.host_str(),
        Some(format!("school-b.{BASE}").as_str()),
        "{url}"
    );
    assert_eq!(browser.text("acting-as").await, "家长");
    assert!(browser.text("current-identity").await.contains("家长"));
    c.goto(&format!("http://school-b.{BASE}/")).await.unwrap();
    assert!(
        browser
            .text("current-identity")
            .await
            .contains("王老师 · 家长"),
        "the identity acted as is on every page"
    );

    // School C: the same browser, but no membership there.
    c.goto(&format!("http://school-c.{BASE}/login"))
        .await
        .unwrap();
    let body = browser.body().await;
    assert!(body.contains("您在这里没有身份"), "{body}");
    c.goto(&format!("http://school-c.{BASE}/me")).await.unwrap();
    assert!(
        c.find(Locator::Id("acting-as")).await.is_err(),
        "no identity page at school C"
    );

    // Back at A, still signed in; the language switch turns the page into English.
    c.goto(&format!("http://school-a.{BASE}/me")).await.unwrap();
    assert_eq!(browser.text("acting-as").await, "教师、班主任");
    c.find(Locator::Id("lang-switch"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(browser.text("acting-as").await, "Teacher, Head teacher");
    assert!(browser.body().await.contains("Sign out everywhere"));
    let violations = browser.csp_violations().await;
    assert!(violations.is_empty(), "{violations:?}");

    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a screenshot of the page");
    browser.client.clone().close().await.unwrap();
    app.stop().await;
}
