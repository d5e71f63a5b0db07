//! Home–school benchmarks against the whole platform served in-process
//! (`campus::app::serve`) on a throwaway database with one realistic school: seeded by the
//! demo generator (grades, classes, staff, pupils with guardians, 30 days of registers),
//! one class brought to 50 pupils and the guardians to exactly 6,000.
//!
//! 1. A school-wide notice to 6,000 guardians through `POST /api/v1/notices`, timed per
//!    request; the recipients' rows are counted afterwards.
//! 2. The head teacher's roll-call page (`GET /attendance/{class}`) and a parent's today
//!    page (`GET /today`) under closed-loop load, against pgbench running the statements
//!    one such request sent (recorded from sqlx's tracing events: the transaction, the
//!    school scope and the page's queries) with the values it bound, at the same
//!    concurrency, in alternating rounds.
//! 3. Gate ingest (`POST /api/v1/gate/events`), signed per device as real devices sign,
//!    for a sustained period per batch size.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use campus::config::Role;
use campus::Services;
use campus_identity::account::{self, NewAccount};
use campus_tenant::Tenant;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE, COOKIE, HOST};
use hyper::{Request, StatusCode};

use crate::auth::{on_load_thread, Server, SignInClient, PASSWORD, SESSION_COOKIE};
use crate::driver::{self, Phase, Target, Totals};
use crate::pgbench::{self, Script};
use crate::statements::Statements;
use crate::stats::{mean_and_se, median, ms, percentile, thousands, us_as_ms, verdict};
use crate::world::{with_world, World, BASE_DOMAIN};

const SLUG: &str = "bench-home";
/// Guardians of the school, all reached by a school-wide notice.
const GUARDIANS: i64 = 6_000;
/// Pupils of the class whose register is taken.
const CLASS_SIZE: i64 = 50;
/// Pupils the demo generator seeds: about 1.33 guardians each, a little under 6,000.
const SEEDED_PUPILS: u32 = 4_400;

const TARGET_NOTICE: Duration = Duration::from_millis(200);
const TARGET_RATIO: f64 = 0.6;
const TARGET_GATE: f64 = 2_000.0;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Measured school-wide notices (after one unmeasured send).
    #[arg(long, default_value_t = 10)]
    pub sends: usize,
    /// Concurrent connections of the page load, and pgbench clients.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Rounds per page; each runs the HTTP load and pgbench once.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seconds per variant per round (whole seconds: pgbench's -T).
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Unmeasured seconds of each variant before the first round.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Seconds of gate ingest per batch size.
    #[arg(long, default_value_t = 30.0)]
    pub gate_seconds: f64,
    /// Gate devices posting at once (each on its own connection, one request in flight).
    #[arg(long, default_value_t = 8)]
    pub devices: usize,
    /// Events per gate request, one measurement each.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 20])]
    pub batches: Vec<usize>,
}

fn pool_size() -> u32 {
    campus::Config::default().database_max_connections
}

pub async fn run(server_url: &str, args: Args) -> Result<String> {
    anyhow::ensure!(
        args.sends > 0
            && args.connections > 0
            && args.rounds > 0
            && args.seconds > 0
            && args.gate_seconds > 0.0
            && args.devices > 0
            && !args.batches.is_empty()
            && args.batches.iter().all(|b| (1..=500).contains(b)),
        "--sends, --connections, --rounds, --seconds, --gate-seconds and --devices must be \
         positive, and --batches between 1 and 500"
    );
    let recorder = Statements::install()?;
    with_world(server_url, 'h', pool_size(), |world| {
        bench(world, args, recorder)
    })
    .await
}

/// Login, roles, staff row, guardian row.
type Member<'a> = (&'a str, &'a [&'a str], Option<i64>, Option<i64>);

/// The people the benchmark acts as, and the ids it needs.
struct School {
    tenant: Tenant,
    class_id: i64,
    head_staff_id: i64,
    guardian_id: i64,
    child_id: i64,
    student_nos: Vec<String>,
}

async fn bench(world: Arc<World>, args: Args, recorder: Arc<Statements>) -> Result<String> {
    let onboarded = world.onboard(SLUG).await?;
    let cfg = campus::Config {
        roles: vec![Role::Web],
        database_max_connections: pool_size(),
        host_cache_ttl_secs: 3600,
        login_attempts_per_minute: 1_000_000,
        ..world.config()?
    };
    cfg.validate()?;
    let services = Services::with_pool(cfg, world.pool.clone()).await?;
    eprintln!("seeding the school");
    let school = seed(&services, &onboarded.tenant).await?;
    let server = Server::start(&services).await?;
    let result = measure(&services, &world, &school, server.addr, &args, &recorder).await;
    let stopped = server.stop().await;
    let out = result?;
    stopped?;
    Ok(out)
}

/// Today in China (the demo's anchor for its 30 days of history).
fn china_today() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

async fn seed(services: &Services, tenant: &Tenant) -> Result<School> {
    let demo = campus_school::demo::DemoSchool {
        slug: SLUG,
        name: "青川县基准测试小学",
        short_name: "基准小学",
        kind: "primary",
        township: "城关镇",
        locality: "urban",
        students: SEEDED_PUPILS,
        color: "#1f6feb",
        motto: "勤学 守纪",
    };
    campus_school::demo::seed(&services.db, &services.store, tenant, &demo, china_today())
        .await?
        .context("the benchmark school was already seeded")?;

    let mut tx = services.db.school(tenant).await?;
    let (class_id, head_staff_id): (i64, i64) = sqlx::query_as(
        "select id, head_teacher_id from classes where head_teacher_id is not null order by id limit 1",
    )
    .fetch_one(&mut *tx)
    .await?;
    // The class to 50 pupils.
    sqlx::query(
        "insert into students (student_no, name, class_id)
         select 'X' || lpad(g::text, 4, '0'), '补充学生' || g, $1
           from generate_series(1, $2 - (select count(*) from students where class_id = $1 and left_on is null)) g",
    )
    .bind(class_id)
    .bind(CLASS_SIZE)
    .execute(&mut *tx)
    .await?;
    // The guardians to 6,000: one more guardian each for the first pupils.
    let have: i64 = sqlx::query_scalar(
        "select count(distinct sg.guardian_id) from student_guardians sg
           join students s on s.id = sg.student_id where s.left_on is null",
    )
    .fetch_one(&mut *tx)
    .await?;
    anyhow::ensure!(
        have <= GUARDIANS,
        "the demo generator made {have} guardians, more than {GUARDIANS}; lower SEEDED_PUPILS"
    );
    sqlx::query(
        "with g as (
            insert into guardians (name, phone)
            select '家长' || n, 'bench-' || n from generate_series(1, $1) n returning id, phone)
         insert into student_guardians (student_id, guardian_id, relation)
         select s.id, g.id, 'parent'
           from g join (select id, row_number() over (order by id) as rn from students where left_on is null) s
             on s.rn = substr(g.phone, 7)::int",
    )
    .bind(GUARDIANS - have)
    .execute(&mut *tx)
    .await?;
    let guardians: i64 = sqlx::query_scalar(
        "select count(distinct sg.guardian_id) from student_guardians sg
           join students s on s.id = sg.student_id where s.left_on is null",
    )
    .fetch_one(&mut *tx)
    .await?;
    anyhow::ensure!(
        guardians == GUARDIANS,
        "{guardians} guardians, not {GUARDIANS}"
    );
    let in_class: i64 =
        sqlx::query_scalar("select count(*) from students where class_id = $1 and left_on is null")
            .bind(class_id)
            .fetch_one(&mut *tx)
            .await?;
    anyhow::ensure!(in_class == CLASS_SIZE, "{in_class} pupils in the class");
    // The parent: a guardian of the class's first pupil.
    let (guardian_id, child_id): (i64, i64) = sqlx::query_as(
        "select sg.guardian_id, s.id from students s join student_guardians sg on sg.student_id = s.id
          where s.class_id = $1 and s.left_on is null order by s.id, sg.guardian_id limit 1",
    )
    .bind(class_id)
    .fetch_one(&mut *tx)
    .await?;
    let student_nos: Vec<String> =
        sqlx::query_scalar("select student_no from students where left_on is null order by id")
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;

    let principal = campus_school::demo::principal(&services.db, tenant).await?;
    let hash = services.identity.hasher.hash(PASSWORD).await?;
    let people: [Member; 3] = [
        (
            "bench.principal",
            &["school_admin", "principal"],
            Some(principal.id),
            None,
        ),
        (
            "bench.head",
            &["teacher", "head_teacher"],
            Some(head_staff_id),
            None,
        ),
        ("bench.parent", &["parent"], None, Some(guardian_id)),
    ];
    for (login, roles, staff, guardian) in people {
        let id = account::ensure(
            &services.pool,
            &NewAccount {
                username: Some(login),
                phone: None,
                display_name: login,
                password_hash: &hash,
                county_role: None,
            },
        )
        .await?;
        account::set_membership(&services.pool, id, tenant.id.0, roles, staff, guardian).await?;
    }
    Ok(School {
        tenant: tenant.clone(),
        class_id,
        head_staff_id,
        guardian_id,
        child_id,
        student_nos,
    })
}

// ---------------------------------------------------------------------------------------
// One-off requests.

/// A signed-in person: session cookie and CSRF token.
struct Session {
    cookie: HeaderValue,
    csrf: String,
}

struct Client {
    addr: SocketAddr,
    host: HeaderValue,
}

impl Client {
    async fn send(
        &self,
        req: hyper::http::request::Builder,
        body: Bytes,
    ) -> Result<(StatusCode, HeaderMap, Bytes)> {
        let mut sender = driver::connect::<Full<Bytes>>(self.addr).await?;
        let req = req.header(HOST, self.host.clone()).body(Full::new(body))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, headers, body))
    }

    async fn sign_in(&self, login: &str, csrf_page: &str) -> Result<Session> {
        let token = SignInClient::open(self.addr, &self.host, login)
            .await?
            .sign_in()
            .await?;
        let cookie = HeaderValue::from_str(&format!("{SESSION_COOKIE}={token}"))?;
        let (status, _, body) = self
            .send(
                Request::get(csrf_page).header(COOKIE, cookie.clone()),
                Bytes::new(),
            )
            .await?;
        anyhow::ensure!(
            status == StatusCode::OK,
            "GET {csrf_page} answered {status}"
        );
        let page = String::from_utf8_lossy(&body);
        let marker = "name=\"csrf\" value=\"";
        let start = page
            .find(marker)
            .with_context(|| format!("{csrf_page} has no CSRF field"))?
            + marker.len();
        let csrf = page[start..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok(Session { cookie, csrf })
    }

    /// A form POST; the status and body.
    async fn post_form(
        &self,
        who: &Session,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<(StatusCode, Bytes)> {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let (status, _, body) = self
            .send(
                Request::post(path)
                    .header(COOKIE, who.cookie.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded"),
                Bytes::from(body),
            )
            .await?;
        Ok((status, body))
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn measure(
    services: &Services,
    world: &World,
    school: &School,
    addr: SocketAddr,
    args: &Args,
    recorder: &Statements,
) -> Result<String> {
    let client = Client {
        addr,
        host: HeaderValue::from_str(&format!("{SLUG}.{BASE_DOMAIN}"))?,
    };
    let roll_path = format!("/attendance/{}", school.class_id);
    let principal = client
        .sign_in("bench.principal", "/admin/gate/devices")
        .await?;
    let head = client.sign_in("bench.head", &roll_path).await?;
    let parent = client.sign_in("bench.parent", "/leave/new").await?;

    // A day for the parent's page: the register taken with the child late and a gate
    // device's report of the arrival (the demo data gives the child pending leave).
    let child_field = format!("p{}", school.child_id);
    let (status, _) = client
        .post_form(
            &head,
            &roll_path,
            &[
                ("csrf", &head.csrf),
                ("period", "morning"),
                ("reason", ""),
                (&child_field, "late"),
            ],
        )
        .await?;
    anyhow::ensure!(
        status == StatusCode::SEE_OTHER,
        "taking the register answered {status}"
    );
    let devices = add_devices(&client, &principal, args.devices.max(1)).await?;
    let child_no = {
        let mut tx = services.db.school(&school.tenant).await?;
        let no: String = sqlx::query_scalar("select student_no from students where id = $1")
            .bind(school.child_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        no
    };
    let arrival = serde_json::json!({"events": [{
        "id": "arrival-1", "student_no": child_no, "direction": "in",
        "at": chrono::Utc::now().to_rfc3339(),
    }]})
    .to_string();
    let (status, _, body) = client
        .send(signed(&devices[0], &arrival)?, Bytes::from(arrival))
        .await?;
    anyhow::ensure!(
        status == StatusCode::OK,
        "the arrival answered {status}: {body:?}"
    );

    eprintln!("part 1: school-wide notices");
    let notices = send_notices(services, &client, &principal, school, args.sends).await?;

    let url = world
        .config()?
        .database_url
        .context("the world has a database URL")?;
    let pgbench = pgbench::find()?;
    let scratch = tempfile::tempdir()?;
    let today = china_today().to_string();

    eprintln!("part 2: roll-call page against pgbench");
    let roll_target = Target {
        addr,
        host: client.host.clone(),
        path: Box::leak(roll_path.clone().into_boxed_str()),
        cookie: Some(head.cookie.clone()),
        cookies: Vec::new(),
    };
    let register_id: i64 = {
        let mut tx = services.db.school(&school.tenant).await?;
        let id = sqlx::query_scalar(
            "select id from attendance_registers where class_id = $1 and day = $2::date and period = 'morning'",
        )
        .bind(school.class_id)
        .bind(&today)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        id
    };
    let class = school.class_id.to_string();
    let roll_params = vec![
        // The class and whether this teacher may take it.
        vec![class.clone(), school.head_staff_id.to_string()],
        // Today in the school's time zone.
        vec![],
        // Today's morning register.
        vec![class.clone(), today.clone(), "morning".into()],
        // The pupils with their marks and the leave that covers this register.
        vec![class, today, register_id.to_string(), "morning".into()],
    ];
    let roll = compare(
        "roll call",
        &roll_target,
        &roll_params,
        recorder,
        &pgbench,
        &url,
        &scratch.path().join("roll-call.sql"),
        args,
        |body| body.contains("id=\"roll\"") && pupil_selects(body) == CLASS_SIZE as usize,
    )
    .await?;

    eprintln!("part 3: the parent's today page against pgbench");
    let today_target = Target {
        path: "/today",
        cookie: Some(parent.cookie.clone()),
        cookies: Vec::new(),
        ..roll_target.clone()
    };
    let today_page = compare(
        "today",
        &today_target,
        &[vec![school.guardian_id.to_string()]],
        recorder,
        &pgbench,
        &url,
        &scratch.path().join("today.sql"),
        args,
        |body| body.contains("到校 ") && body.contains("迟到") && body.contains("待审批"),
    )
    .await?;

    eprintln!("part 4: gate ingest");
    let mut gate = Vec::new();
    for &batch in &args.batches {
        gate.push(
            ingest(
                services,
                school,
                &client,
                &devices,
                batch,
                args.gate_seconds,
            )
            .await?,
        );
    }

    let mut out = notices_report(&notices, args);
    out.push('\n');
    out.push_str(&pages_report(&[&roll, &today_page], args));
    out.push('\n');
    out.push_str(&gate_report(&gate, args));
    out.push_str("\n| Target | Measured | Result |\n|---|---|---|\n");
    out.push_str(&notices_target(&notices));
    out.push_str(&roll.target_row());
    out.push_str(&today_page.target_row());
    for g in &gate {
        out.push_str(&g.target_row());
    }
    Ok(out)
}

/// The roll-call form's status choices, one per pupil (`<select name="p<pupil id>">`).
fn pupil_selects(body: &str) -> usize {
    let marker = "<select name=\"p";
    body.match_indices(marker)
        .filter(|(i, _)| body[i + marker.len()..].starts_with(|c: char| c.is_ascii_digit()))
        .count()
}

// ---------------------------------------------------------------------------------------
// Part 1: notices.

struct Notices {
    times: Vec<Duration>,
    /// Recipients each send reported.
    recipients: Vec<u64>,
    inbox_rows: i64,
    recipient_rows: i64,
}

fn multipart(fields: &[(&str, &str)], boundary: &str) -> Bytes {
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    Bytes::from(body)
}

async fn send_notices(
    services: &Services,
    client: &Client,
    who: &Session,
    school: &School,
    sends: usize,
) -> Result<Notices> {
    let boundary = "campus-bench-boundary";
    let mut times = Vec::new();
    let mut recipients = Vec::new();
    let mut ids = Vec::new();
    // One unmeasured send first: the first use of each statement prepares it.
    for i in 0..=sends {
        let title = format!("全校家长通知 {i}");
        let body = multipart(
            &[
                ("title", &title),
                ("body", "<p>请各位家长注意孩子上下学交通安全。</p>"),
                ("mode", "confirm"),
                ("audience", "guardians"),
            ],
            boundary,
        );
        let req = Request::post("/api/v1/notices")
            .header(COOKIE, who.cookie.clone())
            .header("x-csrf-token", who.csrf.as_str())
            .header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            );
        let started = Instant::now();
        let (status, _, body) = client.send(req, body).await?;
        let took = started.elapsed();
        anyhow::ensure!(
            status == StatusCode::CREATED,
            "sending a notice answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let sent: serde_json::Value = serde_json::from_slice(&body)?;
        ids.push(sent["id"].as_i64().context("no notice id")?);
        eprintln!(
            "notice {i}: {} ({} recipients)",
            ms(took),
            sent["recipients"]
        );
        if i > 0 {
            times.push(took);
            recipients.push(sent["recipients"].as_u64().unwrap_or(0));
        }
    }
    let measured = &ids[1..];
    let keys: Vec<String> = measured.iter().map(|id| format!("notice:{id}")).collect();
    let mut tx = services.db.school(&school.tenant).await?;
    let inbox_rows: i64 =
        sqlx::query_scalar("select count(*) from inbox_items where dedupe_key = any($1)")
            .bind(&keys)
            .fetch_one(&mut *tx)
            .await?;
    let recipient_rows: i64 =
        sqlx::query_scalar("select count(*) from notice_recipients where notice_id = any($1)")
            .bind(measured)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    times.sort_unstable();
    Ok(Notices {
        times,
        recipients,
        inbox_rows,
        recipient_rows,
    })
}

fn notices_ok(n: &Notices) -> bool {
    let expected = GUARDIANS * n.times.len() as i64;
    n.recipients.iter().all(|r| *r == GUARDIANS as u64)
        && n.inbox_rows == expected
        && n.recipient_rows == expected
}

fn notices_report(n: &Notices, args: &Args) -> String {
    let p = |q| percentile(&n.times, q).map_or("–".into(), ms);
    let mut out = String::from("#### School-wide notice to 6,000 guardians\n\n");
    out.push_str(&format!(
        "`POST /api/v1/notices` (multipart, `X-CSRF-Token`) as the principal, audience \
         \"all guardians\", confirmation mode \"confirm\", {} times one after another after \
         one unmeasured send, each timed from sending the request until the whole response \
         was read. The school has {} pupils and {} guardians. Afterwards the rows of the \
         measured notices are counted: `notice_recipients` and the guardians' \
         `inbox_items` (dedupe key `notice:<id>`).\n\n",
        args.sends,
        thousands(u64::from(SEEDED_PUPILS) + 6),
        thousands(GUARDIANS as u64),
    ));
    out.push_str("| Sends | Median | p95 | Max | Recipients per send | `notice_recipients` rows | Inbox rows |\n");
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|\n");
    let per_send = if n.recipients.iter().all(|r| *r == n.recipients[0]) {
        thousands(n.recipients[0])
    } else {
        format!("{:?}", n.recipients)
    };
    out.push_str(&format!(
        "| {} | {} | {} | {} | {} | {} | {} |\n",
        n.times.len(),
        median(&n.times).map_or("–".into(), ms),
        p(95.0),
        p(100.0),
        per_send,
        thousands(n.recipient_rows as u64),
        thousands(n.inbox_rows as u64),
    ));
    out
}

fn notices_target(n: &Notices) -> String {
    let med = median(&n.times).unwrap_or(Duration::MAX);
    let p95 = percentile(&n.times, 95.0).unwrap_or(Duration::MAX);
    format!(
        "| Home–school: a school-wide notice to 6,000 guardians returns in < {} ms (and every \
         recipient's rows exist) | median {}, p95 {}; {} inbox rows for {} sends | {} |\n",
        TARGET_NOTICE.as_millis(),
        ms(med),
        ms(p95),
        thousands(n.inbox_rows as u64),
        n.times.len(),
        verdict(p95 < TARGET_NOTICE && notices_ok(n))
    )
}

// ---------------------------------------------------------------------------------------
// Parts 2 and 3: pages against pgbench.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Http,
    Pgbench,
}

struct Comparison {
    name: &'static str,
    path: String,
    queries: usize,
    script: String,
    http: Totals,
    /// pgbench transactions per second of each round.
    pgbench: Vec<f64>,
    ratios: Vec<f64>,
}

impl Comparison {
    fn pgbench_tps(&self) -> f64 {
        self.pgbench.iter().sum::<f64>() / self.pgbench.len() as f64
    }

    fn ratio(&self) -> f64 {
        self.http.per_second() / self.pgbench_tps()
    }

    fn target_row(&self) -> String {
        let (mean, se) = mean_and_se(&self.ratios);
        format!(
            "| Home–school: `GET {}` ({}) throughput ≥ {TARGET_RATIO} × pgbench of the same SQL \
             | {:.3} ({} ÷ {} per s; rounds {mean:.3} ± {:.3}) | {} |\n",
            self.path,
            self.name,
            self.ratio(),
            thousands(self.http.per_second().round() as u64),
            thousands(self.pgbench_tps().round() as u64),
            2.0 * se,
            verdict(self.ratio() >= TARGET_RATIO && self.http.errors == 0)
        )
    }
}

/// Records the statements of one request to `target`, then runs it and pgbench with the
/// same statements in alternating rounds. `looks_right` checks the page's body first.
#[allow(clippy::too_many_arguments)]
async fn compare(
    name: &'static str,
    target: &Target,
    params: &[Vec<String>],
    recorder: &Statements,
    pgbench: &std::path::Path,
    url: &str,
    file: &std::path::Path,
    args: &Args,
    looks_right: impl Fn(&str) -> bool,
) -> Result<Comparison> {
    // Twice: the first request may still look up the session and standing (cached after).
    driver::probe(target).await?;
    recorder.start();
    let probed = driver::probe(target).await;
    let statements = recorder.stop();
    let (status, body) = probed?;
    anyhow::ensure!(
        status == StatusCode::OK,
        "GET {} answered {status}",
        target.path
    );
    anyhow::ensure!(
        looks_right(&body),
        "GET {} does not show what the benchmark set up:\n{body}",
        target.path
    );
    let script: Script = pgbench::script(&statements, params)?;
    eprintln!(
        "{name}: {} queries per request; pgbench script:\n{}",
        script.queries, script.text
    );

    let connections = args.connections;
    let measured = Duration::from_secs(args.seconds);
    let warmup = Duration::from_secs(args.warmup);
    let http_phase = |d: Duration| {
        let t = target.clone();
        async move { on_load_thread(async move { driver::run_phase(&t, connections, d).await }).await }
    };
    let w = http_phase(warmup).await?;
    let wp = pgbench::run(pgbench, url, &script, file, connections, warmup).await?;
    eprintln!(
        "warm-up {name}: HTTP {:.0}/s, pgbench {wp:.0}/s",
        w.per_second()
    );
    let mut phases: Vec<(Variant, Phase)> = Vec::new();
    let mut pg = Vec::new();
    let mut ratios = Vec::new();
    for round in 0..args.rounds {
        let mut http_rate = 0.0;
        let mut pg_rate = 0.0;
        let order = if round % 2 == 0 {
            [Variant::Http, Variant::Pgbench]
        } else {
            [Variant::Pgbench, Variant::Http]
        };
        for v in order {
            match v {
                Variant::Http => {
                    let p = http_phase(measured).await?;
                    http_rate = p.per_second();
                    phases.push((Variant::Http, p));
                }
                Variant::Pgbench => {
                    pg_rate =
                        pgbench::run(pgbench, url, &script, file, connections, measured).await?;
                    pg.push(pg_rate);
                }
            }
        }
        eprintln!(
            "round {}/{} {name}: HTTP {http_rate:.0}/s, pgbench {pg_rate:.0}/s, ratio {:.3}",
            round + 1,
            args.rounds,
            http_rate / pg_rate
        );
        ratios.push(http_rate / pg_rate);
    }
    Ok(Comparison {
        name,
        path: target.path.to_owned(),
        queries: script.queries,
        script: script.text,
        http: Totals::of(&phases, Variant::Http),
        pgbench: pg,
        ratios,
    })
}

fn pages_report(pages: &[&Comparison], args: &Args) -> String {
    let mut out =
        String::from("#### Roll-call page and the parent's today page against pgbench\n\n");
    out.push_str(&format!(
        "Each page is requested over {c} keep-alive connections (closed loop, one request in \
         flight each, on one client thread) with the session of the person who uses it: the \
         head teacher of a class of {CLASS_SIZE} for `GET /attendance/{{class}}` (today's \
         register already taken), a parent whose child has a register, a gate arrival, \
         pending leave and {n} unread notices for `GET /today`. pgbench runs the \
         statements one request of the page sent — recorded from sqlx's statement events — \
         with the values it bound: `BEGIN`, the school scope (`set_config` of the schema \
         path and role), the page's queries, `COMMIT`, with {c} clients on one thread and \
         prepared statements (`-M prepared`, as the platform's client prepares and caches \
         them). The platform sends `BEGIN` and the scope in one simple query (one round \
         trip); pgbench's prepared mode cannot combine commands, so it sends them as two. \
         {r} rounds × {s} s per variant, alternating which goes first, after {w} s of \
         warm-up each; HTTP and pgbench share the same two cores with Postgres, so the ratio \
         is what the platform's own work (HTTP, session, rendering) costs on top of the SQL.\n\n",
        c = args.connections,
        r = args.rounds,
        s = args.seconds,
        w = args.warmup,
        n = args.sends + 1,
    ));
    out.push_str("| Page | Queries per request | HTTP requests/s | p50 | p99 | pgbench transactions/s | Ratio | Errors |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for p in pages {
        out.push_str(&format!(
            "| `GET {}` ({}) | {} | {} | {} | {} | {} | {:.3} | {} |\n",
            p.path,
            p.name,
            p.queries,
            thousands(p.http.per_second().round() as u64),
            us_as_ms(p.http.latency_us(50.0)),
            us_as_ms(p.http.latency_us(99.0)),
            thousands(p.pgbench_tps().round() as u64),
            p.ratio(),
            thousands(p.http.errors),
        ));
    }
    for p in pages {
        out.push_str(&format!(
            "\n<details><summary>pgbench script of the {} page</summary>\n\n```sql\n{}```\n\n</details>\n",
            p.name, p.script
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Part 4: gate ingest.

/// A gate device's key id and secret.
struct Device {
    key: String,
    secret: String,
}

/// Adds devices through the admin page, reading each one's key and secret from the page
/// that shows them once.
async fn add_devices(client: &Client, admin: &Session, n: usize) -> Result<Vec<Device>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("闸机{}", i + 1);
        let (status, body) = client
            .post_form(
                admin,
                "/admin/gate/devices",
                &[("csrf", &admin.csrf), ("name", &name)],
            )
            .await?;
        anyhow::ensure!(
            status == StatusCode::OK,
            "adding a gate device answered {status}"
        );
        let page = String::from_utf8_lossy(&body);
        let grab = |id: &str| -> Result<String> {
            let marker = format!("<code id=\"{id}\">");
            let start = page
                .find(&marker)
                .with_context(|| format!("no {id} on the page"))?
                + marker.len();
            Ok(page[start..]
                .split('<')
                .next()
                .unwrap_or_default()
                .to_owned())
        };
        out.push(Device {
            key: grab("key")?,
            secret: grab("secret")?,
        });
    }
    Ok(out)
}

/// A signed ingest request for `body`.
fn signed(device: &Device, body: &str) -> Result<hyper::http::request::Builder> {
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = campus_school::gate::signature(&device.secret, &ts, body.as_bytes());
    Ok(Request::post("/api/v1/gate/events")
        .header(CONTENT_TYPE, "application/json")
        .header("x-gate-key", HeaderValue::from_str(&device.key)?)
        .header("x-gate-timestamp", ts)
        .header("x-gate-signature", sig))
}

struct Ingest {
    batch: usize,
    requests: u64,
    events: u64,
    stored: i64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

impl Ingest {
    fn per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    fn target_row(&self) -> String {
        format!(
            "| Home–school: gate ingest ≥ {} events/s sustained, {} event{} per request | {} events/s \
             ({} stored, {} errors) | {} |\n",
            thousands(TARGET_GATE as u64),
            self.batch,
            if self.batch == 1 { "" } else { "s" },
            thousands(self.per_second().round() as u64),
            thousands(self.stored as u64),
            thousands(self.errors),
            verdict(
                self.per_second() >= TARGET_GATE
                    && self.errors == 0
                    && self.stored == self.events as i64
            )
        )
    }
}

struct DeviceLoop {
    requests: u64,
    events: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
}

/// One device posting batches of `batch` new events until `deadline`, one request in
/// flight; every event is a pupil passing the gate now.
async fn device_loop(
    addr: SocketAddr,
    host: HeaderValue,
    device: Device,
    tag: String,
    nos: Arc<Vec<String>>,
    batch: usize,
    deadline: Instant,
) -> DeviceLoop {
    let mut out = DeviceLoop {
        requests: 0,
        events: 0,
        errors: 0,
        first_error: None,
        latencies_us: Vec::new(),
    };
    let mut sender = match driver::connect::<Full<Bytes>>(addr).await {
        Ok(s) => s,
        Err(e) => {
            out.errors += 1;
            out.first_error = Some(format!("{e:#}"));
            return out;
        }
    };
    let mut n: usize = 0;
    while Instant::now() < deadline {
        let at = chrono::Utc::now().to_rfc3339();
        let events: Vec<serde_json::Value> = (0..batch)
            .map(|_| {
                n += 1;
                serde_json::json!({
                    "id": format!("{tag}-{n}"),
                    "student_no": nos[(n * 7919) % nos.len()],
                    "direction": if n.is_multiple_of(2) { "out" } else { "in" },
                    "at": at,
                })
            })
            .collect();
        let body = serde_json::json!({ "events": events }).to_string();
        let req = match signed(&device, &body).and_then(|r| {
            Ok(r.header(HOST, host.clone())
                .body(Full::new(Bytes::from(body)))?)
        }) {
            Ok(r) => r,
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(format!("{e:#}"));
                break;
            }
        };
        if sender.ready().await.is_err() {
            out.errors += 1;
            break;
        }
        let started = Instant::now();
        let outcome = async {
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        }
        .await;
        match outcome {
            Ok((StatusCode::OK, _)) => {
                out.requests += 1;
                out.events += batch as u64;
                out.latencies_us
                    .push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            Ok((status, body)) => {
                out.errors += 1;
                out.first_error
                    .get_or_insert(format!("{status}: {}", String::from_utf8_lossy(&body)));
            }
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(format!("{e:#}"));
                break;
            }
        }
    }
    out
}

async fn gate_events(services: &Services, tenant: &Tenant) -> Result<i64> {
    let mut tx = services.db.school(tenant).await?;
    let n = sqlx::query_scalar("select count(*) from gate_events")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(n)
}

async fn ingest(
    services: &Services,
    school: &School,
    client: &Client,
    devices: &[Device],
    batch: usize,
    seconds: f64,
) -> Result<Ingest> {
    let before = gate_events(services, &school.tenant).await?;
    let nos = Arc::new(school.student_nos.clone());
    let (addr, host) = (client.addr, client.host.clone());
    let devices: Vec<Device> = devices
        .iter()
        .map(|d| Device {
            key: d.key.clone(),
            secret: d.secret.clone(),
        })
        .collect();
    let duration = Duration::from_secs_f64(seconds);
    let (loops, elapsed) = on_load_thread(async move {
        let started = Instant::now();
        let deadline = started + duration;
        let tasks: Vec<_> = devices
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                tokio::spawn(device_loop(
                    addr,
                    host.clone(),
                    d,
                    format!("b{batch}-d{i}"),
                    Arc::clone(&nos),
                    batch,
                    deadline,
                ))
            })
            .collect();
        let mut loops = Vec::new();
        for t in futures::future::join_all(tasks).await {
            loops.push(t.context("a device loop panicked")?);
        }
        Ok((loops, started.elapsed()))
    })
    .await?;
    let stored = gate_events(services, &school.tenant).await? - before;
    let mut out = Ingest {
        batch,
        requests: 0,
        events: 0,
        stored,
        errors: 0,
        elapsed,
        latencies_us: Vec::new(),
    };
    let mut first_error = None;
    for l in loops {
        out.requests += l.requests;
        out.events += l.events;
        out.errors += l.errors;
        out.latencies_us.extend(l.latencies_us);
        first_error = first_error.or(l.first_error);
    }
    out.latencies_us.sort_unstable();
    if let Some(e) = first_error {
        eprintln!("gate ingest, {batch} per request: first error: {e}");
    }
    eprintln!(
        "gate ingest, {batch} per request: {:.0} events/s ({} requests, {} stored, {} errors)",
        out.per_second(),
        out.requests,
        out.stored,
        out.errors
    );
    Ok(out)
}

fn gate_report(runs: &[Ingest], args: &Args) -> String {
    let mut out = String::from("#### Gate ingest\n\n");
    out.push_str(&format!(
        "{} gate devices, added through the admin page, post at once for {} s per batch size, \
         each on its own keep-alive connection with one request in flight: `POST \
         /api/v1/gate/events` signed with the device's key (`X-Gate-Key`, `X-Gate-Timestamp`, \
         HMAC-SHA256 `X-Gate-Signature`), every event a new pupil passing now (spread over the \
         school's pupils), so each is stored and tells the pupil's guardians in the same \
         transaction. Events are counted from the answers and checked against the rows \
         stored.\n\n",
        args.devices, args.gate_seconds
    ));
    out.push_str(
        "| Events per request | Requests | Events | Events/s | p50 | p99 | Stored | Errors |\n",
    );
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in runs {
        let p = |q| percentile(&r.latencies_us, q).map_or("–".into(), us_as_ms);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.batch,
            thousands(r.requests),
            thousands(r.events),
            thousands(r.per_second().round() as u64),
            p(50.0),
            p(99.0),
            thousands(r.stored as u64),
            thousands(r.errors),
        ));
    }
    out
}
