//! `campus-bench load`: realistic load against a *running* `campus` (started by
//! `loadtest/run-load.sh` as `campus demo` on a fresh database), across every school:
//!
//! 1. A county's morning replayed at 10× speed: gate devices of every school report
//!    arrivals (60,000 pupils in 40 minutes), each school sends a notice to every
//!    guardian, and parents read (10 % of 100,000 parents within 5 minutes) — all at once.
//! 2. Roll call: registers saved for every class.
//! 3. The county dashboard, read by the bureau.
//! 4. Noisy neighbour: school A floods at 20× its limit while the other schools run a
//!    normal load; their p99 with and without the flood, in alternating rounds of one run.
//! 5. A thousand schools registered: schools are onboarded through the admin API until
//!    the registry holds `--registered` of them, then every school's home page is read in
//!    turn while the demo schools' parents read as in the morning; the server's peak
//!    resident memory is the figure (target < 200 MB).
//!
//! Setup (accounts for parents, gate devices, a lower limit for school A) uses the demo's
//! database and the admin API; the measured phases use only HTTP.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use campus_tenant::{registry, Db, TenantStatus};
use sqlx::postgres::PgPoolOptions;

use crate::open_loop::{self, Outcome, Stream, Usage, TABLE_HEAD};
use crate::stats::verdict;

const PASSWORD: &str = "campus2026";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address the running `campus` listens on.
    #[arg(long)]
    target: SocketAddr,
    /// Its process id (CPU and memory are read from /proc).
    #[arg(long)]
    pid: u32,
    /// Its base domain (schools on `<slug>.<base>`).
    #[arg(long, default_value = "localhost")]
    base_domain: String,
    /// The admin API token file (`campus demo` writes `<data>/admin-token.txt`).
    #[arg(long)]
    token_file: PathBuf,
    /// Seconds of each scenario.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seconds of each noisy-neighbour phase (rounds alternate quiet and flood).
    #[arg(long, default_value_t = 10)]
    noisy_seconds: u64,
    #[arg(long, default_value_t = 3)]
    noisy_rounds: usize,
    /// Parent accounts signed in per school (enough that no one parent exceeds the
    /// per-person limit when a few schools carry the county's whole load).
    #[arg(long, default_value_t = 24)]
    parents: usize,
    /// Replay speed of the county's morning.
    #[arg(long, default_value_t = 10.0)]
    speedup: f64,
    /// Schools registered for the last scenario (onboarded until the registry holds this
    /// many; 0 skips it).
    #[arg(long, default_value_t = 1000)]
    registered: usize,
}

/// The memory target of scenario 5.
const TARGET_RSS_MB: f64 = 200.0;

#[derive(Clone)]
struct Session {
    cookie: String,
    csrf: String,
}

struct School {
    slug: String,
    host: String,
    admin: Session,
    parents: Vec<Session>,
    device: (String, String),
    students: Vec<String>,
    classes: Vec<i64>,
}

struct Ctx {
    http: reqwest::Client,
    target: SocketAddr,
}

impl Ctx {
    fn get(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("http://{}{path}", self.target))
            .header("host", host)
    }

    fn post(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("http://{}{path}", self.target))
            .header("host", host)
    }

    fn put(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .put(format!("http://{}{path}", self.target))
            .header("host", host)
    }
}

fn cookie_from(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

fn field_after<'a>(page: &'a str, marker: &str) -> Option<&'a str> {
    let start = page.find(marker)? + marker.len();
    page[start..].split(['"', '<']).next()
}

async fn sign_in(ctx: &Ctx, host: &str, login: &str, csrf_page: &str) -> Result<Session> {
    let form = ctx.get(host, "/login?local=1").send().await?;
    let login_csrf = cookie_from(&form, "campus_login_csrf").context("no login CSRF cookie")?;
    let page = form.text().await?;
    let csrf = field_after(&page, "name=\"csrf\" value=\"").context("no CSRF field")?;
    let resp = ctx
        .post(host, "/login")
        .header("cookie", format!("campus_login_csrf={login_csrf}"))
        .form(&[("login", login), ("password", PASSWORD), ("csrf", csrf)])
        .send()
        .await?;
    let session = cookie_from(&resp, campus_identity::session::COOKIE)
        .with_context(|| format!("signing in {login} on {host} answered {}", resp.status()))?;
    let cookie = format!("{}={session}", campus_identity::session::COOKIE);
    let page = ctx
        .get(host, csrf_page)
        .header("cookie", &cookie)
        .send()
        .await?
        .text()
        .await?;
    let csrf = field_after(&page, "name=\"csrf\" value=\"")
        .unwrap_or_default()
        .to_owned();
    Ok(Session { cookie, csrf })
}

/// Parent accounts linked to guardians who have children, created in the demo's database.
async fn parent_logins(
    db: &Db,
    pool: &sqlx::PgPool,
    t: &campus_tenant::Tenant,
    n: usize,
) -> Result<Vec<String>> {
    use campus_identity::account::{self, NewAccount};
    let mut tx = db.school(t).await?;
    let guardians: Vec<i64> = sqlx::query_scalar(
        "select g.id from guardians g where exists (select 1 from student_guardians sg where sg.guardian_id = g.id)
         order by g.id limit $1",
    )
    .bind(n as i64)
    .fetch_all(&mut *tx)
    .await?;
    tx.rollback().await?;
    let hash = campus_identity::Hasher::new(1)
        .hash(PASSWORD)
        .await
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    let mut logins = Vec::new();
    for (i, g) in guardians.into_iter().enumerate() {
        // Usernames have at most 32 characters; school codes may be 30 long.
        let login = format!("load.s{}.parent{i}", t.id.0);
        let id = account::ensure(
            pool,
            &NewAccount {
                username: Some(&login),
                phone: None,
                display_name: "家长",
                password_hash: &hash,
                county_role: None,
            },
        )
        .await?;
        account::set_membership(pool, id, t.id.0, &["parent"], None, Some(g)).await?;
        logins.push(login);
    }
    Ok(logins)
}

async fn add_device(ctx: &Ctx, host: &str, admin: &Session) -> Result<(String, String)> {
    let page = ctx
        .post(host, "/admin/gate/devices")
        .header("cookie", &admin.cookie)
        .form(&[("csrf", admin.csrf.as_str()), ("name", "负载测试闸机")])
        .send()
        .await?
        .text()
        .await?;
    let key = field_after(&page, "<code id=\"key\">").context("no device key")?;
    let secret = field_after(&page, "<code id=\"secret\">").context("no device secret")?;
    Ok((key.to_owned(), secret.to_owned()))
}

async fn setup(ctx: &Ctx, database_url: &str, args: &Args) -> Result<Vec<School>> {
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(database_url)
        .await?;
    let db = Db::new(pool.clone());
    let mut tenants: Vec<_> = registry::list(&pool)
        .await?
        .into_iter()
        .filter(|t| t.status == TenantStatus::Active)
        .collect();
    tenants.sort_by_key(|t| t.id);
    let mut schools = Vec::new();
    for t in &tenants {
        let host = format!("{}.{}", t.slug, args.base_domain);
        let mut tx = db.school(t).await?;
        let students: Vec<String> =
            sqlx::query_scalar("select student_no from students where left_on is null order by id")
                .fetch_all(&mut *tx)
                .await?;
        let classes: Vec<i64> =
            sqlx::query_scalar("select id from classes where retired_at is null order by id")
                .fetch_all(&mut *tx)
                .await?;
        tx.rollback().await?;
        let admin = sign_in(
            ctx,
            &host,
            &format!("{}.admin", t.slug),
            "/admin/gate/devices",
        )
        .await?;
        let device = add_device(ctx, &host, &admin).await?;
        let mut parents = Vec::new();
        for login in parent_logins(&db, &pool, t, args.parents).await? {
            parents.push(sign_in(ctx, &host, &login, "/today").await?);
        }
        eprintln!(
            "  {}: {} pupils, {} classes, {} parents signed in",
            t.slug,
            students.len(),
            classes.len(),
            parents.len()
        );
        schools.push(School {
            slug: t.slug.to_string(),
            host,
            admin,
            parents,
            device,
            students,
            classes,
        });
    }
    db.close().await;
    Ok(schools)
}

fn gate_batch(school: &School, n: u64, per_batch: usize, run: &str) -> (String, String, String) {
    let now = chrono::Utc::now();
    let events: Vec<serde_json::Value> = (0..per_batch)
        .map(|i| {
            let k = (n as usize * per_batch + i) % school.students.len().max(1);
            serde_json::json!({
                "id": format!("{run}-{n}-{i}"),
                "student_no": school.students.get(k).cloned().unwrap_or_default(),
                "direction": "in",
                "at": now,
            })
        })
        .collect();
    let body = serde_json::json!({ "events": events }).to_string();
    let ts = now.timestamp().to_string();
    let sig = campus_school::gate::signature(&school.device.1, &ts, body.as_bytes());
    (body, ts, sig)
}

fn usage_line(u: Usage) -> String {
    format!(
        "Server: CPU {:.0} % of one core on average, peak RSS {:.0} MB.\n\n",
        u.cpu_percent,
        u.peak_rss_bytes as f64 / 1048576.0
    )
}

fn table(results: &mut std::collections::BTreeMap<String, Outcome>) -> String {
    let mut out = String::from(TABLE_HEAD);
    let mut all = Outcome::default();
    for (label, o) in results.iter_mut() {
        out.push_str(&o.row(label));
        all.merge(o);
    }
    out.push_str(&all.row("**all**"));
    out
}

pub async fn run(database_url: &str, args: Args) -> Result<String> {
    let ctx = Arc::new(Ctx {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(512)
            .timeout(Duration::from_secs(30))
            .build()?,
        target: args.target,
    });
    let token = std::fs::read_to_string(&args.token_file)
        .with_context(|| format!("reading {}", args.token_file.display()))?;
    let token = token.trim().to_owned();
    eprintln!("setting up: parents, gate devices, sign-ins");
    let schools = Arc::new(setup(&ctx, database_url, &args).await?);
    anyhow::ensure!(
        schools.len() >= 2,
        "the noisy-neighbour test needs at least two schools"
    );
    let bureau = sign_in(&ctx, &format!("county.{}", args.base_domain), "bureau", "/").await?;
    let run_id = format!("load{}", chrono::Utc::now().timestamp());
    let total_pupils: usize = schools.iter().map(|s| s.students.len()).sum();
    let seconds = Duration::from_secs(args.seconds);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Against `campus demo` with {} schools and {} pupils, on this machine while it also runs the load generator (open loop: latency counted from each request's scheduled send time; the streams' schedules are spread over their periods, not in step).\n",
        schools.len(),
        crate::stats::thousands(total_pupils as u64)
    );

    // 1. The county's morning at `speedup`×: 60,000 arrivals in 40 minutes; 10 % of
    //    100,000 parents reading within 5 minutes; a notice to every guardian per school.
    let arrivals_per_s = 60_000.0 / 2400.0 * args.speedup;
    let reads_per_s = 10_000.0 / 300.0 * args.speedup;
    let mut streams = Vec::new();
    for (i, s) in schools.iter().enumerate() {
        let share = s.students.len() as f64 / total_pupils.max(1) as f64;
        let per_batch = ((arrivals_per_s * share).round() as usize).max(1);
        let (c, sc, run) = (Arc::clone(&ctx), Arc::clone(&schools), run_id.clone());
        streams.push(Stream {
            label: "gate batches (1/s per school)".into(),
            rate: 1.0,
            limit: None,
            make: Arc::new(move |n| {
                let school = &sc[i];
                let (body, ts, sig) = gate_batch(school, n, per_batch, &run);
                c.post(&school.host, "/api/v1/gate/events")
                    .header("content-type", "application/json")
                    .header("x-gate-key", &school.device.0)
                    .header("x-gate-timestamp", ts)
                    .header("x-gate-signature", sig)
                    .body(body)
            }),
        });
        streams.push(parents_reading(&ctx, &schools, i, reads_per_s * share));
    }
    let (c, sc) = (Arc::clone(&ctx), Arc::clone(&schools));
    let n_schools = schools.len();
    streams.push(Stream {
        label: "school-wide notice (one per school)".into(),
        rate: 2.0,
        limit: Some(n_schools as u64),
        make: Arc::new(move |n| {
            let school = &sc[n as usize % n_schools];
            let form = reqwest::multipart::Form::new()
                .text("title", "明早到校时间调整")
                .text("body", "<p>各位家长：明天早上请于 7:40 前到校。</p>")
                .text("mode", "read")
                .text("audience", "guardians");
            c.post(&school.host, "/api/v1/notices")
                .header("cookie", &school.admin.cookie)
                .header("x-csrf-token", &school.admin.csrf)
                .multipart(form)
        }),
    });
    eprintln!("scenario 1: the county's morning at {}×", args.speedup);
    let (mut morning, usage) = open_loop::run(streams, seconds, args.pid).await;
    let _ = writeln!(
        out,
        "### The county's morning at {}× speed\n\n{} arrivals/s from every school's gate (a batch per school per second, {} events/s in all), {:.0} parents' page reads/s, and a school-wide notice from each school in the first seconds, for {} s.\n",
        args.speedup, arrivals_per_s, arrivals_per_s, reads_per_s, args.seconds
    );
    out.push_str(&table(&mut morning));
    out.push('\n');
    out.push_str(&usage_line(usage));
    let mut all = Outcome::default();
    for o in morning.values() {
        all.merge(o);
    }
    let morning_p99 = all.p(99.0).unwrap_or(u32::MAX);

    // 2. Roll call: every class's morning register, 4,000 registers in ten minutes at speed.
    let registers_per_s = (4000.0 / 600.0 * args.speedup).max(1.0);
    let (c, sc) = (Arc::clone(&ctx), Arc::clone(&schools));
    let day = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("offset"))
        .format("%Y-%m-%d")
        .to_string();
    let streams = vec![Stream {
        label: "roll call (PUT register)".into(),
        rate: registers_per_s,
        limit: None,
        make: Arc::new(move |n| {
            let school = &sc[n as usize % sc.len()];
            let class = school.classes[(n as usize / sc.len()) % school.classes.len().max(1)];
            c.put(
                &school.host,
                &format!("/api/v1/attendance/{class}/{day}/morning"),
            )
            .header("cookie", &school.admin.cookie)
            .header("x-csrf-token", &school.admin.csrf)
            .json(&serde_json::json!({"marks": []}))
        }),
    }];
    eprintln!("scenario 2: roll call");
    let (mut roll, usage) = open_loop::run(streams, seconds, args.pid).await;
    let _ = writeln!(out, "### Roll call\n\n{registers_per_s:.0} registers/s across every class of every school (each register rewritten when the run outlasts the classes).\n");
    out.push_str(&table(&mut roll));
    out.push('\n');
    out.push_str(&usage_line(usage));

    // 3. The county dashboard.
    let (c, county, cookie) = (
        Arc::clone(&ctx),
        format!("county.{}", args.base_domain),
        bureau.cookie.clone(),
    );
    let streams = vec![Stream {
        label: "county dashboard".into(),
        rate: 20.0,
        limit: None,
        make: Arc::new(move |_| c.get(&county, "/dashboard").header("cookie", &cookie)),
    }];
    eprintln!("scenario 3: county dashboard");
    let (mut county_r, usage) =
        open_loop::run(streams, Duration::from_secs(args.seconds.min(20)), args.pid).await;
    out.push_str("### County dashboard\n\n20 reads/s of the county overview (`/dashboard`) by the bureau.\n\n");
    out.push_str(&table(&mut county_r));
    out.push('\n');
    out.push_str(&usage_line(usage));

    // 4. Noisy neighbour. What was measured so far goes to stderr too, in case it fails.
    eprintln!("{out}");
    out.push_str(&noisy(&ctx, &schools, &token, &args).await?);

    let thousand = if args.registered > schools.len() {
        eprintln!("{out}");
        Some(registered(&ctx, &schools, &token, &args).await?)
    } else {
        None
    };
    if let Some((text, _)) = &thousand {
        out.push_str(text);
    }

    let _ = writeln!(
        out,
        "\n| target | measured | result |\n|---|---|---|\n| county morning at {}×: p99 < 100 ms, no errors | p99 {:.1} ms, {} errors | {} |",
        args.speedup,
        f64::from(morning_p99) / 1000.0,
        all.errors,
        verdict(morning_p99 < 100_000 && all.errors == 0)
    );
    if let Some((_, row)) = thousand {
        out.push_str(&row);
    }
    Ok(out)
}

/// School `i`'s signed-in parents reading their today page and notices, in turn.
fn parents_reading(ctx: &Arc<Ctx>, schools: &Arc<Vec<School>>, i: usize, rate: f64) -> Stream {
    let (c, sc) = (Arc::clone(ctx), Arc::clone(schools));
    Stream {
        label: "parents: today page and notices".into(),
        rate,
        limit: None,
        make: Arc::new(move |n| {
            let school = &sc[i];
            let p = &school.parents[n as usize % school.parents.len().max(1)];
            let path = if n % 2 == 0 { "/today" } else { "/notices" };
            c.get(&school.host, path).header("cookie", &p.cookie)
        }),
    }
}

/// Scenario 5: onboards schools until `args.registered` exist, then reads every school's
/// home page in turn beside the parents' morning reads. Returns the section and its
/// target row.
async fn registered(
    ctx: &Arc<Ctx>,
    schools: &Arc<Vec<School>>,
    token: &str,
    args: &Args,
) -> Result<(String, String)> {
    use futures::StreamExt;
    let admin_host = format!("admin.{}", args.base_domain);
    let existing: serde_json::Value = ctx
        .get(&admin_host, "/admin/v1/tenants")
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut slugs: Vec<String> = existing["tenants"]
        .as_array()
        .context("the tenant list holds `tenants`")?
        .iter()
        .filter_map(|t| t["slug"].as_str().map(str::to_owned))
        .collect();
    let missing = args.registered.saturating_sub(slugs.len());
    eprintln!("scenario 5: onboarding {missing} schools");
    let started = std::time::Instant::now();
    let new: Vec<String> = (0..missing).map(|i| format!("extra-{i:04}")).collect();
    let results: Vec<Result<()>> = futures::stream::iter(new.clone())
        .map(|slug| {
            let (ctx, host) = (Arc::clone(ctx), admin_host.clone());
            async move {
                ctx.put(&host, &format!("/admin/v1/tenants/{slug}"))
                    .bearer_auth(token)
                    .json(&serde_json::json!({"name": format!("负载测试学校 {slug}")}))
                    .send()
                    .await?
                    .error_for_status()?;
                Ok(())
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    for r in results {
        r.context("onboarding a school for scenario 5")?;
    }
    let onboarding = started.elapsed();
    slugs.extend(new);
    let hosts: Arc<Vec<String>> = Arc::new(
        slugs
            .iter()
            .map(|s| format!("{s}.{}", args.base_domain))
            .collect(),
    );
    let total_pupils: usize = schools.iter().map(|s| s.students.len()).sum();
    let reads_per_s = 10_000.0 / 300.0 * args.speedup;
    let home_rate = 100.0;
    let mut streams = Vec::new();
    let (c, h) = (Arc::clone(ctx), Arc::clone(&hosts));
    streams.push(Stream {
        label: "every school's home page in turn".into(),
        rate: home_rate,
        limit: None,
        make: Arc::new(move |n| c.get(&h[n as usize % h.len()], "/")),
    });
    for (i, s) in schools.iter().enumerate() {
        let share = s.students.len() as f64 / total_pupils.max(1) as f64;
        streams.push(parents_reading(ctx, schools, i, reads_per_s * share));
    }
    let seconds = Duration::from_secs(args.seconds);
    let (mut res, usage) = open_loop::run(streams, seconds, args.pid).await;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### {} schools registered

{missing} schools onboarded through the admin API ({:.0} s, four at a time) so that the registry holds {}; then for {} s every school's home page in turn at {home_rate:.0}/s (each school's host resolved, limited, and its page rendered) beside the parents' {reads_per_s:.0} reads/s of the morning.
",
        slugs.len(),
        onboarding.as_secs_f64(),
        slugs.len(),
        args.seconds
    );
    out.push_str(&table(&mut res));
    out.push('\n');
    out.push_str(&usage_line(usage));
    let mut all = Outcome::default();
    for o in res.values() {
        all.merge(o);
    }
    let peak_mb = usage.peak_rss_bytes as f64 / 1048576.0;
    let row = format!(
        "| `campus` RSS < {TARGET_RSS_MB:.0} MB with {} schools registered under load | peak {peak_mb:.0} MB, {} errors | {} |\n",
        slugs.len(),
        all.errors,
        verdict(peak_mb < TARGET_RSS_MB && all.errors == 0)
    );
    Ok((out, row))
}

async fn noisy(
    ctx: &Arc<Ctx>,
    schools: &Arc<Vec<School>>,
    token: &str,
    args: &Args,
) -> Result<String> {
    let a = &schools[0];
    // School A's limit: 20 requests/s, burst 20; it floods at 20× that.
    let limit = 20.0;
    // The morning's notices may still be going out: a busy server answers 503 for a while.
    let mut status = reqwest::StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..60 {
        status = ctx
            .http
            .patch(format!("http://{}/admin/v1/tenants/{}", ctx.target, a.slug))
            .header("host", format!("admin.{}", args.base_domain))
            .bearer_auth(token)
            .json(&serde_json::json!({"requests_per_second": 20, "burst": 20}))
            .send()
            .await?
            .status();
        if status != reqwest::StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    anyhow::ensure!(
        status.is_success(),
        "setting school A's limit answered {status}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let others = schools.len() - 1;
    let normal_per_school = 5.0;
    let mut quiet = Outcome::default();
    let mut flooded = Outcome::default();
    let mut flood = Outcome::default();
    let mut usage_q = Usage::default();
    let mut usage_f = Usage::default();
    for round in 0..args.noisy_rounds {
        for with_flood in [false, true] {
            let mut streams = Vec::new();
            for i in 1..schools.len() {
                let (c, sc) = (Arc::clone(ctx), Arc::clone(schools));
                streams.push(Stream {
                    label: "others".into(),
                    rate: normal_per_school,
                    limit: None,
                    make: Arc::new(move |n| {
                        let school = &sc[i];
                        let p = &school.parents[n as usize % school.parents.len().max(1)];
                        let path = if n % 2 == 0 {
                            "/today"
                        } else {
                            "/api/v1/school"
                        };
                        c.get(&school.host, path).header("cookie", &p.cookie)
                    }),
                });
            }
            if with_flood {
                let (c, host) = (Arc::clone(ctx), a.host.clone());
                streams.push(Stream {
                    label: "flood".into(),
                    rate: limit * 20.0,
                    limit: None,
                    make: Arc::new(move |_| c.get(&host, "/api/v1/school")),
                });
            }
            eprintln!(
                "scenario 4: noisy neighbour, round {} {}",
                round + 1,
                if with_flood { "with flood" } else { "quiet" }
            );
            let (r, usage) =
                open_loop::run(streams, Duration::from_secs(args.noisy_seconds), args.pid).await;
            let target = if with_flood { &mut flooded } else { &mut quiet };
            if let Some(o) = r.get("others") {
                target.merge(o);
            }
            if let Some(o) = r.get("flood") {
                flood.merge(o);
            }
            let u = if with_flood {
                &mut usage_f
            } else {
                &mut usage_q
            };
            u.cpu_percent = u.cpu_percent.max(usage.cpu_percent);
            u.peak_rss_bytes = u.peak_rss_bytes.max(usage.peak_rss_bytes);
        }
    }
    quiet.elapsed = Duration::from_secs(args.noisy_seconds * args.noisy_rounds as u64);
    flooded.elapsed = quiet.elapsed;
    flood.elapsed = quiet.elapsed;
    let (p_q, p_f) = (
        quiet.p(99.0).unwrap_or(0),
        flooded.p(99.0).unwrap_or(u32::MAX),
    );
    let ratio = f64::from(p_f) / f64::from(p_q.max(1));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Noisy neighbour\n\nSchool A (`{}`) is limited to {limit} requests/s (burst 20) and floods at {} requests/s; the other {others} schools each send {normal_per_school} requests/s (parents' today page and the school API). {} rounds of {} s quiet, then {} s with the flood, in one run.\n",
        a.slug, limit * 20.0, args.noisy_rounds, args.noisy_seconds, args.noisy_seconds
    );
    out.push_str(TABLE_HEAD);
    out.push_str(&quiet.row("others, quiet"));
    out.push_str(&flooded.row("others, A flooding"));
    out.push_str(&flood.row("A's flood"));
    out.push('\n');
    let _ = writeln!(
        out,
        "Server: CPU {:.0} % (quiet) and {:.0} % (flood) of one core at most per phase; peak RSS {:.0} MB.\n",
        usage_q.cpu_percent,
        usage_f.cpu_percent,
        usage_f.peak_rss_bytes.max(usage_q.peak_rss_bytes) as f64 / 1048576.0
    );
    let _ = writeln!(
        out,
        "| target | measured | result |\n|---|---|---|\n| others' p99 with A flooding ≤ 1.2 × without | {:.1} ms vs {:.1} ms (× {:.2}) | {} |\n| others get no 429 | {} | {} |\n| A's flood is refused beyond its limit | {} served, {} refused | {} |",
        f64::from(p_f) / 1000.0,
        f64::from(p_q) / 1000.0,
        ratio,
        verdict(ratio <= 1.2),
        quiet.limited + flooded.limited,
        verdict(quiet.limited + flooded.limited == 0),
        flood.ok,
        flood.limited,
        verdict(flood.limited > flood.ok)
    );
    // Leave school A as it was.
    let _ = ctx
        .http
        .patch(format!("http://{}/admin/v1/tenants/{}", ctx.target, a.slug))
        .header("host", format!("admin.{}", args.base_domain))
        .bearer_auth(token)
        .json(&serde_json::json!({"requests_per_second": null, "burst": null}))
        .send()
        .await;
    Ok(out)
}
