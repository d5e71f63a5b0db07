//! Routing overhead: the throughput of a trivial school-scoped endpoint behind the tenant
//! layer (`SiteLayer`: Host parsing, cached host → school resolution, the `Site` extension)
//! against the very same handler with no layer, measured in one run.
//!
//! Both servers run in this process on the main multi-threaded runtime; the load comes from
//! a current-thread runtime on its own thread, identical for both. Rounds alternate
//! A-B, B-A, … so that drift (CPU frequency, other work on the machine, cache warm-up)
//! falls on both variants alike.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::body::Body;
use axum::routing::get;
use axum::Router;
use campus_tenant::routing::{plain_rejection, Resolver, SiteLayer};
use http_body_util::BodyExt;
use hyper::header::{HeaderValue, HOST};
use hyper::{Request, StatusCode};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::driver::{self, Phase, Target, Totals};
use crate::stats::{mean_and_se, thousands, verdict};
use crate::world::{with_world, World, BASE_DOMAIN};

/// The target from the issue: throughput with the layer ÷ without ≥ 0.95.
const TARGET_RATIO: f64 = 0.95;
const SLUG: &str = "bench-school";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Concurrent keep-alive connections (each with one request in flight).
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Measured rounds; each runs both variants once.
    #[arg(long, default_value_t = 6)]
    pub rounds: usize,
    /// Seconds per variant per round.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Unmeasured seconds per variant before the first round (JIT-free Rust still needs
    /// warm caches, allocator arenas and the resolver's cache entry).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Worker threads of the servers' runtime; 0 for Tokio's default (one per core). Note
    /// that with fewer server threads than cores the one-thread client can become the
    /// bottleneck, which hides the layer's cost instead of measuring it.
    #[arg(long, default_value_t = 0)]
    pub server_threads: usize,
    /// Requests per variant for the in-process measurement (no sockets, one thread).
    #[arg(long, default_value_t = 300_000)]
    pub in_process: u32,
}

/// The handler both variants serve, byte for byte the same work.
async fn ping() -> &'static str {
    "ok"
}

async fn serve(app: Router) -> Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("benchmark server stopped: {e}");
        }
    });
    Ok((addr, task))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    With,
    Without,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::With => "with tenant layer",
            Variant::Without => "without tenant layer",
        }
    }
}

pub async fn run(server_url: &str, args: Args) -> Result<String> {
    anyhow::ensure!(args.connections > 0 && args.rounds > 0 && args.seconds > 0.0);
    with_world(server_url, 'r', 4, |world| bench(world, args)).await
}

async fn bench(world: Arc<World>, args: Args) -> Result<String> {
    world.onboard(SLUG).await?;
    // The same settings as production's defaults (capacity) with a long TTL so that no
    // entry expires mid-run; production keeps entries fresh through LISTEN/NOTIFY, which
    // costs nothing per request and is therefore not started here.
    let resolver = Resolver::new(
        world.pool.clone(),
        BASE_DOMAIN,
        Duration::from_secs(3600),
        100_000,
    );
    let with_layer = Router::new()
        .route("/ping", get(ping))
        .layer(SiteLayer::new(
            Arc::clone(&resolver),
            Arc::new(plain_rejection),
        ));
    let without_layer = Router::new().route("/ping", get(ping));
    let (with_addr, with_task) = serve(with_layer.clone()).await?;
    let (without_addr, without_task) = serve(without_layer.clone()).await?;

    let host = HeaderValue::from_str(&format!("{SLUG}.{BASE_DOMAIN}"))?;
    let target = |addr| Target {
        addr,
        host: host.clone(),
        path: "/ping",
        cookie: None,
        cookies: Vec::new(),
    };
    let targets = [
        (Variant::With, target(with_addr)),
        (Variant::Without, target(without_addr)),
    ];

    let result = drive(&targets, &args).await;
    with_task.abort();
    without_task.abort();
    let phases = result?;
    let lookups = resolver.db_lookups();
    let host = format!("{SLUG}.{BASE_DOMAIN}");
    let n = args.in_process;
    let in_process = InProcess {
        with: per_request(&with_layer, &host, n).await?,
        without: per_request(&without_layer, &host, n).await?,
        site_for_school: site_for(&resolver, &host, n).await?,
        site_for_platform: site_for(&resolver, "localhost", n).await?,
    };
    Ok(report(&phases, &in_process, &args, lookups))
}

/// Per-request costs measured in-process, without sockets (informational).
struct InProcess {
    with: Duration,
    without: Duration,
    /// `Resolver::site_for` alone for the school's host: parse + cache hit.
    site_for_school: Duration,
    /// `Resolver::site_for` for `localhost`, answered before the cache: parse only.
    site_for_platform: Duration,
}

/// The cost of one `Resolver::site_for` call, `n` times in a row on this task, to show
/// how much of the layer's cost is host resolution (and of that, the cache lookup).
async fn site_for(resolver: &Resolver, host: &str, n: u32) -> Result<Duration> {
    for _ in 0..n / 10 {
        std::hint::black_box(resolver.site_for(Some(host)).await)
            .map_err(|e| anyhow::anyhow!("{host} did not resolve: {e:?}"))?;
    }
    let started = Instant::now();
    for _ in 0..n {
        // black_box: the result is unused, and the call must not be optimised away.
        let _ = std::hint::black_box(resolver.site_for(Some(host)).await);
    }
    Ok(started.elapsed() / n.max(1))
}

/// The server-side cost of one request without sockets, HTTP parsing or a client: the
/// router is called directly, `n` times in a row on this task. It separates the layer's
/// own cost from the client's share of the CPU, which the end-to-end ratio includes.
async fn per_request(app: &Router, host: &str, n: u32) -> Result<Duration> {
    let call = || async {
        let req = Request::builder()
            .uri("/ping")
            .header(HOST, host)
            .body(Body::empty())?;
        let resp = app.clone().oneshot(req).await?;
        anyhow::ensure!(
            resp.status() == StatusCode::OK,
            "in-process call answered {}",
            resp.status()
        );
        resp.into_body().collect().await?;
        anyhow::Ok(())
    };
    // A tenth as many unmeasured calls first, as the network rounds have a warm-up too.
    for _ in 0..n / 10 {
        call().await?;
    }
    let started = Instant::now();
    for _ in 0..n {
        call().await?;
    }
    Ok(started.elapsed() / n.max(1))
}

/// Runs the warm-up and the measured rounds on a current-thread runtime of its own, so the
/// client is one thread whatever the server does, identical for both variants.
async fn drive(targets: &[(Variant, Target); 2], args: &Args) -> Result<Vec<(Variant, Phase)>> {
    let targets = targets.clone();
    let (connections, rounds) = (args.connections, args.rounds);
    let measured = Duration::from_secs_f64(args.seconds);
    let warmup = Duration::from_secs_f64(args.warmup);
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            sanity_checks(&targets).await?;
            for (variant, t) in &targets {
                let p = driver::run_phase(t, connections, warmup).await?;
                eprintln!(
                    "warm-up {:<22} {:>9.0} req/s",
                    variant.label(),
                    p.per_second()
                );
            }
            let mut phases = Vec::with_capacity(rounds * 2);
            for round in 0..rounds {
                // A-B then B-A: each variant goes first equally often.
                let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
                for i in order {
                    let (variant, t) = &targets[i];
                    let p = driver::run_phase(t, connections, measured).await?;
                    eprintln!(
                        "round {}/{rounds} {:<22} {:>9.0} req/s ({} errors)",
                        round + 1,
                        variant.label(),
                        p.per_second(),
                        p.errors
                    );
                    phases.push((*variant, p));
                }
            }
            Ok(phases)
        })
    })
    .await
    .context("the load thread panicked")?
}

/// Proves the comparison is fair: the layered server really resolves the school (and
/// refuses an unknown host), and both answer the benchmark request with the same body.
async fn sanity_checks(targets: &[(Variant, Target); 2]) -> Result<()> {
    for (variant, t) in targets {
        let (status, body) = driver::probe(t).await?;
        anyhow::ensure!(
            status == StatusCode::OK && body == "ok",
            "{}: GET /ping answered {status} {body:?}, expected 200 \"ok\"",
            variant.label()
        );
    }
    let unknown = Target {
        host: HeaderValue::from_static("no-such-school.campus.test"),
        ..targets[0].1.clone()
    };
    let (status, _) = driver::probe(&unknown).await?;
    anyhow::ensure!(
        status == StatusCode::NOT_FOUND,
        "the tenant layer answered {status} for an unknown school; expected 404"
    );
    Ok(())
}

fn report(
    phases: &[(Variant, Phase)],
    in_process: &InProcess,
    args: &Args,
    db_lookups: u64,
) -> String {
    let with = Totals::of(phases, Variant::With);
    let without = Totals::of(phases, Variant::Without);
    let ratio = with.per_second() / without.per_second();
    // Per-round ratios show how much the figure moves between rounds.
    let round_ratios = driver::round_ratios(phases, Variant::With, Variant::Without);
    let lo = round_ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = round_ratios
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let (mean, se) = mean_and_se(&round_ratios);
    let errors = with.errors + without.errors;

    let mut out = String::new();
    let threads = match args.server_threads {
        0 => "Tokio's default of one per core".to_owned(),
        n => n.to_string(),
    };
    out.push_str(&format!(
        "{} keep-alive connections, closed loop, `GET /ping` with `Host: {SLUG}.{BASE_DOMAIN}`; \
         {} rounds × {} s per variant, interleaved (A-B, B-A, …) after {} s of warm-up each. \
         Server worker threads: {threads}; the client runs on one thread of its own.\n\n",
        args.connections, args.rounds, args.seconds, args.warmup
    ));
    out.push_str("| Variant | Requests | Requests/s | p50 latency | p99 latency | Errors |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|\n");
    out.push_str(&with.row(Variant::With.label()));
    out.push_str(&without.row(Variant::Without.label()));
    out.push_str(&format!(
        "\nPer-round ratios: {lo:.3} – {hi:.3}, mean {mean:.3} ± {:.3} (two standard errors). \
         Registry queries made by the resolver during the whole run: {db_lookups} (every \
         other request was answered from its cache).\n\n",
        2.0 * se
    ));
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (with_us, without_us) = (us(in_process.with), us(in_process.without));
    out.push_str(&format!(
        "Informational, in-process (the router called directly {} times per variant on one \
         thread, no sockets or HTTP parsing): {with_us:.2} µs per request with the layer, \
         {without_us:.2} µs without, so the layer adds {:.2} µs (in-process ratio {:.3}). \
         Of that, `Resolver::site_for` takes {:.2} µs for the school's host (Host parsing \
         and the cache hit) and {:.2} µs for `localhost` (parsing only, answered before the \
         cache).\n\n",
        thousands(u64::from(args.in_process)),
        with_us - without_us,
        without_us / with_us,
        us(in_process.site_for_school),
        us(in_process.site_for_platform),
    ));
    out.push_str("| Target | Measured | Result |\n|---|---|---|\n");
    out.push_str(&format!(
        "| Routing: throughput with ÷ without the tenant layer ≥ {TARGET_RATIO} | {ratio:.3} \
         (rounds: {mean:.3} ± {:.3}) | {} |\n",
        2.0 * se,
        verdict(ratio >= TARGET_RATIO && errors == 0)
    ));
    // On a small shared machine the rounds scatter; say so when the scatter is wide enough
    // to put the target within reach of the figure, rather than let PASS or FAIL look firm.
    if (mean - 2.0 * se..=mean + 2.0 * se).contains(&TARGET_RATIO) {
        out.push_str(
            "\nThe target lies within two standard errors of the per-round mean: on this \
             machine one run cannot tell PASS from FAIL reliably; repeat the benchmark (or run \
             it with more `--rounds`) before drawing a conclusion.\n",
        );
    }
    if errors > 0 {
        out.push_str(&format!(
            "\n{errors} requests failed; a run with errors does not pass.\n"
        ));
    }
    out
}
