//! County dashboard benchmarks on the 32 schools of the demo county, seeded as `campus demo`
//! seeds them, with their morning registers extended to 180 school days:
//!
//! 1. Full rebuild: `rollup::rebuild_all` of every school, as `campus metrics rebuild` runs
//!    it (four schools at a time, then the rollup tables' statistics refreshed).
//! 2. County overview for 32 schools: `GET /dashboard` (the page) and
//!    `GET /api/v1/county/overview` (its JSON) as a bureau account, one request at a time.
//! 3. Rollup lag under the morning arrival: every school's gate reports arrivals at 10× the
//!    county's real rate while the maintenance role keeps the rollups current at its
//!    default interval; each second's count of accepted events per school is a probe, and
//!    its lag is the time until the dashboard's gate figures for that school reach it.
//! 4. County overview for 1,000 schools: 968 more schools generated as registry rows with
//!    rollups copied from the 32 (the overview reads nothing but the shared rollups).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use campus::config::Role;
use campus::Services;
use campus_identity::account::{self, NewAccount};
use campus_school::demo::SCHOOLS;
use campus_tenant::Tenant;
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::auth::Server;
use crate::stats::{ms, percentile, secs, thousands, verdict};
use crate::world::{with_world, World, BASE_DOMAIN};

const TARGET_OVERVIEW_32: Duration = Duration::from_millis(50);
const TARGET_OVERVIEW_1000: Duration = Duration::from_millis(200);
const TARGET_LAG: Duration = Duration::from_secs(60);
const TARGET_REBUILD: Duration = Duration::from_secs(60);
const PASSWORD: &str = "Bench-Bureau-2026";
const BUREAU: &str = "bench.bureau";
/// 60,000 pupils arriving in 40 minutes, at 10× speed.
const MORNING_ARRIVALS_PER_SECOND: f64 = 60_000.0 / (40.0 * 60.0) * 10.0;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// School days of register history per school.
    #[arg(long, default_value_t = 180)]
    pub days: u32,
    /// Timed requests per overview endpoint and county size.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Schools in the generated county.
    #[arg(long, default_value_t = 1000)]
    pub generated: usize,
    /// Seconds of morning arrivals while the lag is measured.
    #[arg(long, default_value_t = 120)]
    pub seconds: u64,
}

pub async fn run(server_url: &str, args: Args) -> Result<String> {
    anyhow::ensure!(
        args.days > 0 && args.requests >= 20 && args.generated >= SCHOOLS.len() && args.seconds >= 10,
        "--days must be positive, --requests at least 20, --generated at least {} and --seconds at least 10",
        SCHOOLS.len()
    );
    with_world(server_url, 'd', 24, |world| bench(world, args)).await
}

fn china_today() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

async fn bench(world: Arc<World>, args: Args) -> Result<String> {
    let cfg = campus::Config {
        roles: vec![Role::Web],
        database_max_connections: 24,
        host_cache_ttl_secs: 3600,
        ..world.config()?
    };
    cfg.validate()?;
    let web = Services::with_pool(cfg.clone(), world.pool.clone()).await?;

    eprintln!(
        "seeding the 32 demo schools with {} days of registers",
        args.days
    );
    let started = Instant::now();
    let schools = seed(&web, &world, args.days).await?;
    let pupils: i64 = schools.iter().map(|s| s.student_nos.len() as i64).sum();
    let registers = count(&web, &schools, "select count(*) from attendance_registers").await?;
    let marks = count(&web, &schools, "select count(*) from attendance_marks").await?;
    eprintln!("seeded in {}", secs(started.elapsed()));

    eprintln!("rebuilding every school's rollups");
    let started = Instant::now();
    let mut days = 0;
    let tenants = schools.iter().map(|s| s.tenant.clone()).collect();
    for r in campus_county::rollup::rebuild_all(&web.db, tenants).await? {
        days += r.result?;
    }
    let rebuild = started.elapsed();
    let values: i64 = sqlx::query_scalar("select count(*) from public.metric_values")
        .fetch_one(&world.pool)
        .await?;
    eprintln!("rebuilt {days} school-days in {}", secs(rebuild));

    bureau(&web).await?;
    let server = Server::start(&web).await?;
    let overview_32 = overviews(server.addr, SCHOOLS.len(), args.requests).await;
    server.stop().await?;
    let overview_32 = overview_32?;

    let lag = {
        let cfg = campus::Config {
            roles: vec![Role::Web, Role::Maintenance],
            ..cfg.clone()
        };
        let services = Services::with_pool(cfg, world.pool.clone()).await?;
        let server = Server::start(&services).await?;
        let lag = morning(&world, &schools, server.addr, args.seconds).await;
        server.stop().await?;
        lag?
    };

    eprintln!("generating a county of {} schools", args.generated);
    generate(&world, args.generated).await?;
    let server = Server::start(&web).await?;
    let overview_big = overviews(server.addr, args.generated, args.requests).await;
    server.stop().await?;
    let overview_big = overview_big?;

    Ok(report(&Report {
        args: &args,
        pupils,
        registers,
        marks,
        days,
        values,
        rebuild,
        overview_32,
        overview_big,
        lag,
    }))
}

// ---------------------------------------------------------------------------------------
// Seeding.

struct School {
    tenant: Tenant,
    student_nos: Vec<String>,
    device_key: String,
    device_secret: String,
}

async fn seed(services: &Services, world: &World, days: u32) -> Result<Vec<School>> {
    let today = china_today();
    stream::iter(SCHOOLS.iter())
        .map(|demo| async move {
            let tenant = world.onboard(demo.slug).await?.tenant;
            campus_school::demo::seed(&services.db, &services.store, &tenant, demo, today)
                .await?
                .context("the school was already seeded")?;
            let mut tx = services.db.school(&tenant).await?;
            // Classes and pupils as old as the history, so that every day owes its registers.
            sqlx::query("update classes set created_at = now() - make_interval(days => $1)")
                .bind(i32::try_from(days * 2 + 30)?)
                .execute(&mut *tx)
                .await?;
            sqlx::query("update students set enrolled_on = $1::date - $2, created_at = now() - make_interval(days => $2)")
                .bind(today)
                .bind(i32::try_from(days * 2 + 30)?)
                .execute(&mut *tx)
                .await?;
            // The `days` most recent weekdays before today, with about 4% exceptions, as
            // the demo seeds its 30.
            sqlx::query(
                "with days as (
                    select d::date as day from generate_series($1::date - $2 * 2, $1::date - 1, interval '1 day') d
                     where extract(isodow from d) < 6 order by d desc limit $3
                 ), sizes as (select class_id, count(*) as n from students group by class_id),
                 added as (
                    insert into attendance_registers (class_id, day, period, taken_by, taken_at, enrolled)
                    select c.id, days.day, 'morning', c.head_teacher_id,
                           (days.day + time '07:50' + random() * interval '40 minutes') at time zone 'Asia/Shanghai',
                           coalesce(sizes.n, 0)
                      from classes c cross join days left join sizes on sizes.class_id = c.id
                    on conflict (class_id, day, period) do nothing
                    returning id, class_id)
                 insert into attendance_marks (register_id, student_id, status)
                 select register_id, student_id,
                        case when x < 0.012 then 'absent' when x < 0.022 then 'leave' when x < 0.035 then 'late' else 'early_leave' end
                   from (select a.id as register_id, s.id as student_id, random() as x
                           from added a join students s on s.class_id = a.class_id) pairs
                  where x < 0.04",
            )
            .bind(today)
            .bind(i32::try_from(days)?)
            .bind(i64::from(days))
            .execute(&mut *tx)
            .await?;
            let student_nos: Vec<String> =
                sqlx::query_scalar("select student_no from students where left_on is null order by id")
                    .fetch_all(&mut *tx)
                    .await?;
            let device_key = format!("bench-{}", demo.slug);
            let device_secret = format!("{:064x}", demo.slug.len() as u128 * 0x9e37_79b9_7f4a_7c15);
            sqlx::query("insert into gate_devices (name, key_id, secret) values ('基准测试闸机', $1, $2)")
                .bind(&device_key)
                .bind(&device_secret)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            anyhow::Ok(School {
                tenant,
                student_nos,
                device_key,
                device_secret,
            })
        })
        .buffer_unordered(4)
        .try_collect()
        .await
}

async fn count(services: &Services, schools: &[School], sql: &str) -> Result<i64> {
    let mut total = 0;
    for s in schools {
        let mut tx = services.db.school(&s.tenant).await?;
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        total += n;
    }
    Ok(total)
}

async fn bureau(services: &Services) -> Result<()> {
    let hash = services.identity.hasher.hash(PASSWORD).await?;
    account::ensure(
        &services.pool,
        &NewAccount {
            username: Some(BUREAU),
            phone: None,
            display_name: "教育局（基准测试）",
            password_hash: &hash,
            county_role: Some(campus_county::access::BUREAU),
        },
    )
    .await?;
    Ok(())
}

/// Registry rows for schools `33..=n` (slugs `gen-0033`…), each with the rollups, checks
/// and rollup run of one of the 32 real schools, round robin.
async fn generate(world: &World, n: usize) -> Result<()> {
    let mut tx = world.pool.begin().await?;
    sqlx::query(
        "insert into public.tenants (slug, name, schema_name, db_role, s3_prefix, status, plan)
         select 'gen-' || lpad(g::text, 4, '0'), '生成学校' || g, 'gen_' || g, 'gen_role_' || g,
                'gen/' || g || '/', 'active', 'standard'
           from generate_series($1::int, $2::int) g",
    )
    .bind(i32::try_from(SCHOOLS.len() + 1)?)
    .bind(i32::try_from(n)?)
    .execute(&mut *tx)
    .await?;
    // Each generated school copies the real school with the same position modulo 32.
    let pairs = "with real as (select tenant_id, row_number() over (order by tenant_id) - 1 as k
                                 from public.metric_schools),
                      gen as (select id, substr(slug, 5)::int as g from public.tenants where slug like 'gen-%')
                 select gen.id as copy, real.tenant_id as source
                   from gen join real on real.k = gen.g % (select count(*) from real)";
    sqlx::query(&format!(
        "insert into public.metric_schools (tenant_id, township, kind, locality, timezone)
         select p.copy, m.township, m.kind, m.locality, m.timezone
           from ({pairs}) p join public.metric_schools m on m.tenant_id = p.source"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "insert into public.metric_values (tenant_id, day, class_id, grade_level, class_name, element, category, value)
         select p.copy, v.day, v.class_id, v.grade_level, v.class_name, v.element, v.category, v.value
           from ({pairs}) p join public.metric_values v on v.tenant_id = p.source"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "insert into public.metric_school_values (tenant_id, day, element, value)
         select p.copy, v.day, v.element, v.value
           from ({pairs}) p join public.metric_school_values v on v.tenant_id = p.source"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "insert into public.metric_snapshots (tenant_id, element, value)
         select p.copy, s.element, s.value from ({pairs}) p join public.metric_snapshots s on s.tenant_id = p.source"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "insert into public.metric_rollup_runs (tenant_id, finished_at, days, lag_ms)
         select p.copy, r.finished_at, r.days, r.lag_ms from ({pairs}) p join public.metric_rollup_runs r on r.tenant_id = p.source"
    ))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("analyze public.metric_values")
        .execute(&world.pool)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The overview.

fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

fn county_host() -> String {
    format!("county.{BASE_DOMAIN}")
}

fn cookie_from(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
        .filter(|c| !c.is_empty())
}

/// The bureau account's session cookie on the county host.
async fn sign_in(http: &reqwest::Client, addr: std::net::SocketAddr) -> Result<String> {
    let host = county_host();
    let form = http
        .get(format!("http://{addr}/login?local=1"))
        .header("host", &host)
        .send()
        .await?;
    let login_csrf = cookie_from(&form, "campus_login_csrf").context("no login CSRF cookie")?;
    let page = form.text().await?;
    let marker = "name=\"csrf\" value=\"";
    let csrf = page
        .find(marker)
        .map(|i| &page[i + marker.len()..])
        .and_then(|rest| rest.split('"').next())
        .context("no CSRF field on the login form")?;
    let resp = http
        .post(format!("http://{addr}/login"))
        .header("host", &host)
        .header("cookie", format!("campus_login_csrf={login_csrf}"))
        .form(&[("login", BUREAU), ("password", PASSWORD), ("csrf", csrf)])
        .send()
        .await?;
    let session = cookie_from(&resp, campus_identity::session::COOKIE)
        .with_context(|| format!("signing in the bureau answered {}", resp.status()))?;
    Ok(format!("{}={session}", campus_identity::session::COOKIE))
}

struct Timed {
    path: &'static str,
    schools: usize,
    latencies: Vec<Duration>,
    bytes: usize,
}

impl Timed {
    fn p(&self, q: f64) -> Duration {
        percentile(&self.latencies, q).unwrap_or_default()
    }
}

/// Both overview endpoints, `requests` times each after a few untimed ones; checks that
/// every response is a 200 and that the JSON ranks `schools` schools.
async fn overviews(
    addr: std::net::SocketAddr,
    schools: usize,
    requests: usize,
) -> Result<Vec<Timed>> {
    let http = client()?;
    let cookie = sign_in(&http, addr).await?;
    let json: serde_json::Value = http
        .get(format!("http://{addr}/api/v1/county/overview"))
        .header("host", county_host())
        .header("cookie", &cookie)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let ranked = json["schools"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(
        ranked == schools,
        "the overview ranks {ranked} schools, not {schools}"
    );
    let mut out = Vec::new();
    for path in ["/dashboard", "/api/v1/county/overview"] {
        let mut latencies = Vec::with_capacity(requests);
        let mut bytes = 0;
        for i in 0..requests + 5 {
            let started = Instant::now();
            let resp = http
                .get(format!("http://{addr}{path}"))
                .header("host", county_host())
                .header("cookie", &cookie)
                .send()
                .await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            let took = started.elapsed();
            anyhow::ensure!(status.is_success(), "{path} answered {status}");
            if i >= 5 {
                latencies.push(took);
                bytes = body.len();
            }
        }
        latencies.sort_unstable();
        let t = Timed {
            path,
            schools,
            latencies,
            bytes,
        };
        eprintln!(
            "{path} with {schools} schools: p50 {}, p95 {}",
            ms(t.p(50.0)),
            ms(t.p(95.0))
        );
        out.push(t);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Rollup lag under the morning arrival.

struct Lag {
    seconds: u64,
    accepted: u64,
    errors: u64,
    probes: usize,
    /// Sorted lags of the probes that were met.
    lags: Vec<Duration>,
    unmet: usize,
    interval: u64,
}

/// The gate figures of the dashboard per school: entries and exits since the start.
async fn gate_figures(world: &World) -> Result<HashMap<i64, f64>> {
    let rows: Vec<(i64, f64)> = sqlx::query_as(
        "select tenant_id, sum(value) from public.metric_values
          where element in ('gate_in', 'gate_out') and class_id <> 0 group by tenant_id",
    )
    .fetch_all(&world.pool)
    .await?;
    Ok(rows.into_iter().collect())
}

async fn morning(
    world: &World,
    schools: &[School],
    addr: std::net::SocketAddr,
    seconds: u64,
) -> Result<Lag> {
    let http = client()?;
    let baseline = gate_figures(world).await?;
    let per_school = (MORNING_ARRIVALS_PER_SECOND / schools.len() as f64).ceil() as usize;
    eprintln!(
        "morning arrival: {} events/s from {} gates for {seconds} s",
        per_school * schools.len(),
        schools.len()
    );
    // (school, accepted so far, when) for every accepted batch.
    let probes: Arc<Mutex<Vec<(i64, f64, Instant)>>> = Arc::default();
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (i, s) in schools.iter().enumerate() {
        let http = http.clone();
        let probes = Arc::clone(&probes);
        let errors = Arc::clone(&errors);
        let host = format!("{}.{BASE_DOMAIN}", s.tenant.slug);
        let tenant = s.tenant.id.0;
        let (key, secret, nos) = (
            s.device_key.clone(),
            s.device_secret.clone(),
            s.student_nos.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            // Schools report at different moments within each second.
            tokio::time::sleep(Duration::from_millis((i as u64 * 31) % 1000)).await;
            let mut sent = 0usize;
            while Instant::now() < deadline {
                tick.tick().await;
                let at = chrono::Utc::now().to_rfc3339();
                let events: Vec<serde_json::Value> = (0..per_school)
                    .map(|k| {
                        let n = sent + k;
                        serde_json::json!({
                            "id": format!("m-{n}"),
                            "student_no": nos[n % nos.len()],
                            "direction": "in",
                            "at": at,
                        })
                    })
                    .collect();
                let body = serde_json::json!({ "events": events }).to_string();
                let ts = chrono::Utc::now().timestamp().to_string();
                let sig = campus_school::gate::signature(&secret, &ts, body.as_bytes());
                let resp = http
                    .post(format!("http://{addr}/api/v1/gate/events"))
                    .header("host", &host)
                    .header("content-type", "application/json")
                    .header("x-gate-key", &key)
                    .header("x-gate-timestamp", ts)
                    .header("x-gate-signature", sig)
                    .body(body)
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        sent += per_school;
                        probes
                            .lock()
                            .unwrap()
                            .push((tenant, sent as f64, Instant::now()));
                    }
                    Ok(r) => {
                        if errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 {
                            let status = r.status();
                            eprintln!(
                                "gate batch answered {status}: {}",
                                r.text().await.unwrap_or_default()
                            );
                        }
                    }
                    Err(e) => {
                        if errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 {
                            eprintln!("gate batch failed: {e}");
                        }
                    }
                }
            }
            sent as u64
        }));
    }

    // Poll the dashboard's figures; a probe is met the first time its school's figure
    // reaches what had been accepted when the probe was taken.
    let mut met: HashMap<usize, Duration> = HashMap::new();
    let give_up = deadline + TARGET_LAG * 2;
    loop {
        let now = Instant::now();
        let figures = gate_figures(world).await?;
        let taken = probes.lock().unwrap().clone();
        for (k, (tenant, accepted, at)) in taken.iter().enumerate() {
            if met.contains_key(&k) {
                continue;
            }
            let shown = figures.get(tenant).copied().unwrap_or(0.0)
                - baseline.get(tenant).copied().unwrap_or(0.0);
            if shown >= *accepted {
                met.insert(k, now.saturating_duration_since(*at));
            }
        }
        let all_sent = tasks.iter().all(|t| t.is_finished());
        if (all_sent && met.len() == taken.len()) || now > give_up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += t.await.context("a gate task panicked")?;
    }
    let probes = probes.lock().unwrap().len();
    let mut lags: Vec<Duration> = met.into_values().collect();
    lags.sort_unstable();
    Ok(Lag {
        seconds,
        accepted,
        errors: errors.load(std::sync::atomic::Ordering::Relaxed),
        probes,
        unmet: probes - lags.len(),
        lags,
        interval: campus::Config::default().metrics_interval_secs,
    })
}

// ---------------------------------------------------------------------------------------
// The report.

struct Report<'a> {
    args: &'a Args,
    pupils: i64,
    registers: i64,
    marks: i64,
    days: usize,
    values: i64,
    rebuild: Duration,
    overview_32: Vec<Timed>,
    overview_big: Vec<Timed>,
    lag: Lag,
}

fn report(r: &Report) -> String {
    let mut out = format!(
        "The 32 schools of the demo county ({} pupils) seeded as `campus demo` seeds them, with {} school days of morning registers ({} registers, {} exception marks). Every request as a signed-in bureau account on the county host, one at a time, after 5 untimed ones; default period (the last 30 days).\n\n",
        thousands(r.pupils as u64),
        r.args.days,
        thousands(r.registers as u64),
        thousands(r.marks as u64),
    );
    out.push_str("| Measurement | Figure |\n|---|---:|\n");
    out.push_str(&format!(
        "| Full rebuild of 32 schools (`rollup::rebuild_all`, as `campus metrics rebuild`: four schools at a time) | {} ({} school-days, {} rollup rows) |\n",
        secs(r.rebuild),
        thousands(r.days as u64),
        thousands(r.values as u64)
    ));
    for t in r.overview_32.iter().chain(&r.overview_big) {
        out.push_str(&format!(
            "| `{}`, {} schools, {} requests | p50 {}, p95 {}, p99 {} ({} KB) |\n",
            t.path,
            thousands(t.schools as u64),
            t.latencies.len(),
            ms(t.p(50.0)),
            ms(t.p(95.0)),
            ms(t.p(99.0)),
            t.bytes / 1024
        ));
    }
    let l = &r.lag;
    let max = l.lags.last().copied().unwrap_or_default();
    out.push_str(&format!(
        "| Morning arrival at 10× ({:.0} events/s) for {} s: events accepted, errors | {}, {} |\n",
        MORNING_ARRIVALS_PER_SECOND,
        l.seconds,
        thousands(l.accepted),
        thousands(l.errors)
    ));
    out.push_str(&format!(
        "| Rollup lag of {} probes (maintenance interval {} s) | p50 {}, p95 {}, max {}; {} never shown |\n",
        l.probes,
        l.interval,
        secs(percentile(&l.lags, 50.0).unwrap_or_default()),
        secs(percentile(&l.lags, 95.0).unwrap_or_default()),
        secs(max),
        l.unmet
    ));
    out.push_str(&format!(
        "\nThe {}-school county: {} schools generated as registry rows with the rollups of one of the 32 real schools each, round robin (the overview reads only the shared rollups).\n\n",
        thousands(r.args.generated as u64),
        thousands((r.args.generated - SCHOOLS.len()) as u64)
    ));
    out.push_str("| Target | Measured | Result |\n|---|---|---|\n");
    for (ts, target, label) in [
        (&r.overview_32, TARGET_OVERVIEW_32, "32 schools"),
        (&r.overview_big, TARGET_OVERVIEW_1000, "1,000 schools"),
    ] {
        for t in ts {
            out.push_str(&format!(
                "| Dashboard: `{}` for {label}, p95 < {} | {} | {} |\n",
                t.path,
                ms(target),
                ms(t.p(95.0)),
                verdict(t.p(95.0) < target)
            ));
        }
    }
    out.push_str(&format!(
        "| Dashboard: rollup lag under the morning arrival < {} | max {} ({} of {} probes never shown, {} errors) | {} |\n",
        secs(TARGET_LAG),
        secs(max),
        l.unmet,
        l.probes,
        l.errors,
        verdict(l.unmet == 0 && l.errors == 0 && l.probes > 0 && max < TARGET_LAG)
    ));
    out.push_str(&format!(
        "| Dashboard: full rebuild of 32 schools × {} days < {} | {} | {} |\n",
        r.args.days,
        secs(TARGET_REBUILD),
        secs(r.rebuild),
        verdict(r.rebuild < TARGET_REBUILD && r.args.days >= 180)
    ));
    out
}
