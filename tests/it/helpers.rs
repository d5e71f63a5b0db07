//! Test harness: a fresh database per test, an embedded S3 server, the platform served
//! in-process on port 0, and short helpers for requests with a chosen `Host`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use campus::{Config, Services};
use campus_devstack::EmbeddedS3;
use campus_tenant::lifecycle::{Onboarded, SchoolSpec};
use campus_tenant::{Hostname, Slug};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::oneshot;

pub const BASE: &str = "campus.test";
pub const S3_KEY: &str = "test-access";
pub const S3_SECRET: &str = "test-secret-key";

/// The Postgres server tests create their databases on.
pub fn server_url() -> String {
    std::env::var("CAMPUS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("URL has a path");
    format!("{base}/{db}")
}

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// A database of its own for one test, plus a role prefix of its own (roles are global to
/// the cluster). Dropped explicitly with [`TestDb::drop_all`]; leftovers of crashed runs
/// are swept by the next run.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub role_prefix: String,
}

async fn sweep_leftovers(admin: &PgPool) {
    // Databases and roles carry the creating process id; drop those of dead processes.
    let dbs: Vec<String> =
        sqlx::query_scalar("select datname from pg_database where datname like 'campus_it_%'")
            .fetch_all(admin)
            .await
            .unwrap_or_default();
    for db in dbs {
        let pid: Option<i32> = db.split('_').nth(2).and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| !pid_alive(p)) {
            let _ = sqlx::query(&format!("drop database if exists \"{db}\" with (force)"))
                .execute(admin)
                .await;
        }
    }
    let roles: Vec<String> =
        sqlx::query_scalar("select rolname from pg_roles where rolname ~ '^it[0-9]+x'")
            .fetch_all(admin)
            .await
            .unwrap_or_default();
    for role in roles {
        let pid: Option<i32> = role[2..].split('x').next().and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| !pid_alive(p)) {
            let _ = sqlx::query(&format!("drop role if exists \"{role}\""))
                .execute(admin)
                .await;
        }
    }
}

fn pid_alive(pid: i32) -> bool {
    pid == std::process::id() as i32 || std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl TestDb {
    pub async fn new() -> Self {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&server_url())
            .await
            .expect("tests need Postgres: start it, or set CAMPUS_TEST_DATABASE_URL (see README)");
        SWEPT.get_or_init(|| sweep_leftovers(&admin)).await;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("campus_it_{pid}_{n}");
        sqlx::query(&format!("create database \"{name}\""))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        Self {
            url: with_database(&server_url(), &name),
            role_prefix: format!("it{pid}x{n}_"),
            name,
        }
    }

    /// Drops the database and every role this test created.
    pub async fn drop_all(&self) {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&server_url())
            .await
            .expect("connect");
        let _ = sqlx::query(&format!(
            "drop database if exists \"{}\" with (force)",
            self.name
        ))
        .execute(&admin)
        .await;
        let roles: Vec<String> =
            sqlx::query_scalar("select rolname from pg_roles where starts_with(rolname, $1)")
                .bind(&self.role_prefix)
                .fetch_all(&admin)
                .await
                .unwrap_or_default();
        for role in roles {
            let _ = sqlx::query(&format!("drop role if exists \"{role}\""))
                .execute(&admin)
                .await;
        }
        admin.close().await;
    }
}

/// A configuration for tests: this database, this S3 server, base domain `campus.test`.
pub fn config(db: &TestDb, s3: &EmbeddedS3) -> Config {
    Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        base_domain: BASE.into(),
        database_url: Some(db.url.clone()),
        database_max_connections: 10,
        role_prefix: db.role_prefix.clone(),
        s3_endpoint: Some(s3.endpoint()),
        s3_access_key: Some(S3_KEY.into()),
        s3_secret_key: Some(S3_SECRET.into()),
        // Long TTL: tests that see changes quickly prove the LISTEN/NOTIFY path works.
        host_cache_ttl_secs: 3600,
        // Scheduled jobs are called directly by the tests that exercise them; a tick in the
        // middle of another test would add inbox items it does not expect.
        schedule_interval_secs: 3600,
        // Likewise the dashboard's rollup passes: tests run them with `rollup::tick`.
        metrics_interval_secs: 3600,
        // One test person may click faster than any real one; the per-person limit has
        // tests of its own that set it.
        person_requests_per_second: 10_000,
        person_burst: 100_000,
        ..Config::default()
    }
}

pub async fn start_s3(dir: &std::path::Path) -> EmbeddedS3 {
    EmbeddedS3::start(
        &dir.join("s3"),
        "127.0.0.1:0".parse().unwrap(),
        S3_KEY,
        S3_SECRET,
    )
    .await
    .expect("embedded S3")
}

/// A running platform on a random port with its own database, S3 and admin token.
pub struct TestApp {
    pub addr: SocketAddr,
    pub services: Services,
    pub token: String,
    pub http: reqwest::Client,
    pub db: TestDb,
    /// The SMS provider sink, when the app was started with one ([`TestApp::spawn_with_sms`]).
    pub sms: Option<campus_devstack::SmsSink>,
    _s3: EmbeddedS3,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// An app whose county SMS provider is a sink on loopback (`app.sms`), so one-time
    /// codes and invitations are really sent and can be read back.
    pub async fn spawn_with_sms(adjust: impl FnOnce(&mut Config)) -> Self {
        let sink = campus_devstack::SmsSink::start(None, false)
            .await
            .expect("SMS sink");
        let url = sink.url();
        let mut app = Self::spawn_with(move |c| {
            c.notify_webhook_url = Some(url);
            c.notify_webhook_secret = Some("test-sms-provider-secret".into());
            adjust(c);
        })
        .await;
        app.sms = Some(sink);
        app
    }

    /// The one-time code last texted to `phone`.
    pub fn code_for(&self, phone: &str) -> String {
        self.sms
            .as_ref()
            .expect("started with an SMS sink")
            .last_code(phone)
            .unwrap_or_else(|| panic!("no code was texted to {phone}"))
    }

    /// Forgets the send limits' history (codes are still valid): ages every code request by
    /// two hours, as if the person came back later.
    pub async fn age_code_requests(&self) {
        sqlx::query("update public.phone_codes set created_at = created_at - interval '2 hours'")
            .execute(&self.services.pool)
            .await
            .unwrap();
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb::new().await;
        let dir = tempfile::tempdir().unwrap();
        let s3 = start_s3(dir.path()).await;
        let mut cfg = config(&db, &s3);
        adjust(&mut cfg);
        let services = Services::connect(cfg).await.expect("services");
        // Tests of an unreachable store configure a dead endpoint on purpose.
        let _ = services.store.ensure_bucket().await;
        campus::cli::prepare(&services).await.expect("prepare");
        let token = campus::admin_tokens::create(&services.pool, "tests")
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(campus::app::serve(services.clone(), listener, async {
            let _ = stopped.await;
        }));
        let app = Self {
            addr,
            services,
            token,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            db,
            sms: None,
            _s3: s3,
            _dir: dir,
            stop: Some(stop),
            server: Some(server),
        };
        app.wait_listening().await;
        app
    }

    async fn wait_listening(&self) {
        for _ in 0..200 {
            if self.services.resolver.is_listening() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the tenant change listener did not subscribe in 5 s");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A GET to `path` with `Host: host`.
    pub fn get(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(self.url(path))
            .header(reqwest::header::HOST, host)
    }

    pub fn school_host(slug: &str) -> String {
        format!("{slug}.{BASE}")
    }

    /// An admin API request on the platform host with the test token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header(reqwest::header::HOST, format!("admin.{BASE}"))
            .bearer_auth(&self.token)
    }

    pub async fn onboard(&self, slug: &str, name: &str) -> Onboarded {
        onboard(&self.services, slug, name, &[]).await
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        }
        self.services.db.close().await;
        self.db.drop_all().await;
    }
}

pub async fn onboard(services: &Services, slug: &str, name: &str, hostnames: &[&str]) -> Onboarded {
    let spec = SchoolSpec {
        slug: Slug::parse(slug).unwrap(),
        name: name.into(),
        plan: "standard".into(),
        hostnames: hostnames
            .iter()
            .map(|h| Hostname::parse(h).unwrap())
            .collect(),
    };
    services
        .platform
        .onboard(&spec, "test")
        .await
        .expect("onboard")
}

/// Inserts `n` pupils into a school (in its own scope), named `<prefix>-<i>`.
pub async fn add_pupils(
    services: &Services,
    tenant: &campus_tenant::Tenant,
    prefix: &str,
    n: usize,
) {
    let mut tx = services.db.school(tenant).await.unwrap();
    sqlx::query("insert into grades (level, name) values (1, '一年级') on conflict do nothing")
        .execute(&mut *tx)
        .await
        .unwrap();
    let class: i64 = sqlx::query_scalar(
        "insert into classes (grade_id, number, name) select id, 1, '一年级（1）班' from grades where level = 1
         on conflict (grade_id, number) do update set name = excluded.name returning id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    for i in 0..n {
        sqlx::query("insert into students (student_no, name, class_id) values ($1, $1, $2)")
            .bind(format!("{prefix}-{i}"))
            .bind(class)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// A browser-like visitor: keeps cookies per host (host-only cookies, as the platform
/// issues them) and sends them back only to the host that set them.
pub struct Visitor<'a> {
    app: &'a TestApp,
    cookies: std::collections::HashMap<String, std::collections::BTreeMap<String, String>>,
    last_host: String,
}

impl<'a> Visitor<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: Default::default(),
            last_host: String::new(),
        }
    }

    fn cookie_header(&self, host: &str) -> String {
        self.cookies
            .get(host)
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    fn remember(&mut self, host: &str, resp: &reqwest::Response) {
        for v in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let c = cookie::Cookie::parse(v.to_str().unwrap().to_owned()).unwrap();
            let jar = self.cookies.entry(host.to_owned()).or_default();
            if c.max_age().is_some_and(|a| a.is_zero()) || c.value().is_empty() {
                jar.remove(c.name());
            } else {
                jar.insert(c.name().to_owned(), c.value().to_owned());
            }
        }
    }

    /// Any request to `host` with this visitor's cookies (for methods and bodies the
    /// helpers below do not cover: PATCH with a raw body, HEAD…).
    pub fn request(
        &self,
        method: reqwest::Method,
        host: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.app
            .http
            .request(method, self.app.url(path))
            .header(reqwest::header::HOST, host)
            .header(reqwest::header::COOKIE, self.cookie_header(host))
    }

    /// The app this visitor talks to.
    pub fn app(&self) -> &'a TestApp {
        self.app
    }

    /// Copies a cookie as an attacker would, e.g. to replay it on another host.
    pub fn cookie(&self, host: &str, name: &str) -> Option<String> {
        self.cookies.get(host).and_then(|j| j.get(name)).cloned()
    }

    pub fn set_cookie(&mut self, host: &str, name: &str, value: &str) {
        self.cookies
            .entry(host.to_owned())
            .or_default()
            .insert(name.to_owned(), value.to_owned());
    }

    pub async fn get(&mut self, host: &str, path: &str) -> reqwest::Response {
        self.last_host = host.to_owned();
        let resp = self
            .app
            .get(host, path)
            .header(reqwest::header::COOKIE, self.cookie_header(host))
            .send()
            .await
            .unwrap();
        self.remember(host, &resp);
        resp
    }

    pub async fn post(
        &mut self,
        host: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.last_host = host.to_owned();
        let resp = self
            .app
            .http
            .post(self.app.url(path))
            .header(reqwest::header::HOST, host)
            .header(reqwest::header::COOKIE, self.cookie_header(host))
            .form(form)
            .send()
            .await
            .unwrap();
        self.remember(host, &resp);
        resp
    }

    /// A multipart POST (a form with a file) with this host's cookies and any extra
    /// headers, e.g. `X-CSRF-Token` for the JSON API.
    pub async fn post_multipart(
        &mut self,
        host: &str,
        path: &str,
        form: reqwest::multipart::Form,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.last_host = host.to_owned();
        let mut req = self
            .app
            .http
            .post(self.app.url(path))
            .header(reqwest::header::HOST, host)
            .header(reqwest::header::COOKIE, self.cookie_header(host))
            .multipart(form);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.unwrap();
        self.remember(host, &resp);
        resp
    }

    /// A JSON request with this host's cookies and any extra headers.
    pub async fn json(
        &mut self,
        method: reqwest::Method,
        host: &str,
        path: &str,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.last_host = host.to_owned();
        let mut req = self
            .app
            .http
            .request(method, self.app.url(path))
            .header(reqwest::header::HOST, host)
            .header(reqwest::header::COOKIE, self.cookie_header(host))
            .json(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.unwrap();
        self.remember(host, &resp);
        resp
    }

    /// Follows a redirect like a browser: absolute locations go to their host (all served by
    /// the test server), relative ones to the host of the last request.
    pub async fn follow(&mut self, resp: reqwest::Response) -> reqwest::Response {
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .expect("a redirect")
            .to_str()
            .unwrap()
            .to_owned();
        if location.starts_with("http") {
            let url = url::Url::parse(&location).unwrap();
            let path = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_owned(),
            };
            self.get(url.host_str().unwrap(), &path).await
        } else {
            let host = self.last_host.clone();
            self.get(&host, &location).await
        }
    }

    /// The hidden CSRF field of the form on the page at `path`.
    pub async fn csrf(&mut self, host: &str, path: &str) -> String {
        let page = self.get(host, path).await.text().await.unwrap();
        let start = page
            .find("name=\"csrf\" value=\"")
            .expect("the page has a CSRF field")
            + "name=\"csrf\" value=\"".len();
        page[start..start + 64].to_owned()
    }

    /// Signs in on `host`; returns the response to the form submission.
    pub async fn sign_in(&mut self, host: &str, login: &str, password: &str) -> reqwest::Response {
        let csrf = self.csrf(host, "/login?local=1").await;
        self.post(
            host,
            "/login",
            &[("login", login), ("password", password), ("csrf", &csrf)],
        )
        .await
    }
}

/// Creates an account with a password and roles in the given schools.
pub async fn person(
    services: &Services,
    username: &str,
    name: &str,
    password: &str,
    roles: &[(&campus_tenant::Tenant, &[&str])],
) -> i64 {
    use campus_identity::account::{self, NewAccount};
    let hash = services.identity.hasher.hash(password).await.unwrap();
    let id = account::ensure(
        &services.pool,
        &NewAccount {
            username: Some(username),
            phone: None,
            display_name: name,
            password_hash: &hash,
            county_role: None,
        },
    )
    .await
    .unwrap();
    for (tenant, r) in roles {
        account::set_membership(&services.pool, id, tenant.id.0, r, None, None)
            .await
            .unwrap();
    }
    id
}

/// The value of the hidden field `name` in a page (e.g. `csrf` or `proof`), if present.
pub fn hidden_field(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = start + page[start..].find('"')?;
    Some(page[start..end].to_owned())
}

/// Rewrites a zip so that every entry larger than 1 KB declares an unpacked size of 1 KB,
/// in its central directory record and its local header: what a zip bomb's maker does to
/// pass checks that trust the declared sizes. The data and CRCs stay as they were.
pub fn understate_zip_sizes(zip: &mut [u8]) {
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as usize;
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let eocd = (0..=zip.len() - 22)
        .rev()
        .find(|&i| zip[i..i + 4] == *b"PK\x05\x06")
        .expect("an end of central directory record");
    let entries = u16_at(zip, eocd + 10);
    let mut at = u32_at(zip, eocd + 16) as usize;
    for _ in 0..entries {
        assert_eq!(
            zip[at..at + 4],
            *b"PK\x01\x02",
            "a central directory record"
        );
        let size = u32_at(zip, at + 24);
        let local = u32_at(zip, at + 42) as usize;
        if size > 1024 {
            zip[at + 24..at + 28].copy_from_slice(&1024u32.to_le_bytes());
            assert_eq!(zip[local..local + 4], *b"PK\x03\x04", "a local header");
            zip[local + 22..local + 26].copy_from_slice(&1024u32.to_le_bytes());
        }
        at += 46 + u16_at(zip, at + 28) + u16_at(zip, at + 30) + u16_at(zip, at + 32);
    }
}
