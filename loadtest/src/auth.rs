//! Authentication costs, measured in one run against the whole platform served in-process
//! (`campus::app::serve`: request ids and tracing, the tenant layer, the identity
//! extractors, Postgres) on a throwaway database, with a school and accounts that sign in
//! through the real login form.
//!
//! 1. Signed-in overhead: the school's home page (`GET /`, which takes `MaybeUser`) without
//!    a cookie — the extractor returns at once — against the same request with a valid
//!    session cookie: session lookup, the member's standing (roles → permissions) in the
//!    school, and the identity badge in the header. Rounds alternate A-B, B-A, … as in the
//!    routing benchmark.
//! 2. Sign-in bursts: a cheap request unrelated to signing in, measured alone and while
//!    many clients sign in continuously (`POST /login` with the right password, so every
//!    attempt verifies an Argon2id hash on the hasher's blocking threads, a bounded number
//!    at a time), again in alternating rounds. Hashing on the server's worker threads would
//!    stall every request queued behind a hash; the probe's p99 shows whether it does.
//!
//! The load comes from a current-thread runtime on a thread of its own; the server runs on
//! the main runtime (one worker per core) and hashes on Tokio's blocking pool.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::extract::FromRequestParts;
use bytes::Bytes;
use campus::config::Role;
use campus::Services;
use campus_identity::account::{self, NewAccount};
use campus_identity::{IdentityState, MaybeUser, Permission};
use campus_tenant::Site;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE, COOKIE, HOST, SET_COOKIE};
use hyper::{Request, StatusCode};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::driver::{self, Phase, Target, Totals};
use crate::stats::{mean_and_se, median, ms, percentile, thousands, us_as_ms, verdict};
use crate::world::{with_world, World, BASE_DOMAIN};

/// The target from the issue: signed-in throughput ÷ anonymous ≥ 0.9 on the same endpoint.
const TARGET_SIGNED_IN_RATIO: f64 = 0.9;
/// Sign-ins must not starve other requests: the probe keeps at least half its throughput…
const TARGET_PROBE_RATIO: f64 = 0.5;
/// …and its p99 latency stays below this while the burst runs.
const TARGET_PROBE_P99: Duration = Duration::from_millis(50);

const SLUG: &str = "bench-school";
/// Every benchmark account has this password (URL-safe: it goes into a form body as is).
pub(crate) const PASSWORD: &str = "Bench-passw0rd";
/// The built-in role the accounts hold, and a permission it grants.
const ROLE: &str = "teacher";
const PERMISSION: Permission = Permission::StaffArea;
pub(crate) const SESSION_COOKIE: &str = campus_identity::session::COOKIE;
/// The login form's double-submit CSRF cookie.
const LOGIN_CSRF_COOKIE: &str = "campus_login_csrf";
/// Sign-in attempts per address per minute: high enough that the rate limiter never
/// answers instead of the hasher (every client of the benchmark shares 127.0.0.1).
const LOGIN_LIMIT: u32 = 1_000_000;

/// The cheap request measured with and without sign-ins.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Probe {
    /// `GET /healthz`: answered before the tenant layer; needs nothing but a server
    /// worker thread, which is exactly what hashing on those threads would take away.
    Healthz,
    /// `GET /api/v1/school`: the school's profile as JSON (tenant layer and a
    /// school-scoped transaction with three queries).
    Profile,
}

impl Probe {
    fn path(self) -> &'static str {
        match self {
            Probe::Healthz => "/healthz",
            Probe::Profile => "/api/v1/school",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Concurrent keep-alive connections of the measured requests (each with one request
    /// in flight), in both parts.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Measured rounds of each part; each runs both variants once.
    #[arg(long, default_value_t = 6)]
    pub rounds: usize,
    /// Seconds per variant per round.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Unmeasured seconds per variant before the first round of each part.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Clients signing in continuously during the burst, each as its own account on its
    /// own connection.
    #[arg(long, default_value_t = 16)]
    pub sign_ins: usize,
    /// Password hashes computed at once (`password_hash_concurrency`); the platform's
    /// default unless given.
    #[arg(long, default_value_t = campus::Config::default().password_hash_concurrency)]
    pub hash_concurrency: usize,
    /// The cheap request measured with and without the sign-in burst.
    #[arg(long, value_enum, default_value_t = Probe::Healthz)]
    pub probe: Probe,
    /// Calls per variant of the in-process measurement of the identity extractor.
    #[arg(long, default_value_t = 200_000)]
    pub in_process: u32,
}

/// The platform's database pool: the production default (`database_max_connections`).
fn pool_size() -> u32 {
    campus::Config::default().database_max_connections
}

pub async fn run(server_url: &str, args: Args) -> Result<String> {
    anyhow::ensure!(
        args.connections > 0 && args.rounds > 0 && args.seconds > 0.0 && args.sign_ins > 0,
        "--connections, --rounds, --seconds and --sign-ins must be positive"
    );
    with_world(server_url, 'a', pool_size(), |world| bench(world, args)).await
}

/// The platform serving on a local port until [`Server::stop`].
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    pub(crate) async fn start(services: &Services) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(campus::app::serve(services.clone(), listener, async {
            let _ = stopped.await;
        }));
        Ok(Self { addr, stop, task })
    }

    pub(crate) async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        let mut task = self.task;
        match tokio::time::timeout(Duration::from_secs(10), &mut task).await {
            Ok(done) => done.context("the server task panicked")?,
            Err(_) => {
                task.abort();
                anyhow::bail!("the server did not stop within 10 s")
            }
        }
    }
}

async fn bench(world: Arc<World>, args: Args) -> Result<String> {
    let onboarded = world.onboard(SLUG).await?;
    let tenant_id = onboarded.tenant.id.0;
    let cfg = campus::Config {
        roles: vec![Role::Web],
        database_max_connections: pool_size(),
        // As the tests do: changes are pushed over LISTEN/NOTIFY; none happen here.
        host_cache_ttl_secs: 3600,
        password_hash_concurrency: args.hash_concurrency,
        login_attempts_per_minute: LOGIN_LIMIT,
        // Each signed-in member sends a share of tens of thousands of requests a second:
        // the per-person limit at its highest setting (the default, 10/s, would answer
        // 429 instead of the page). Its check still runs on every request.
        person_requests_per_second: 10_000,
        person_burst: 100_000,
        ..world.config()?
    };
    cfg.validate()?;
    let services = Services::with_pool(cfg, world.pool.clone()).await?;

    // One Argon2id hash for every account: each sign-in verifies against a hash with the
    // platform's parameters, which is all that its cost depends on.
    let hash = services.identity.hasher.hash(PASSWORD).await?;
    let mut logins = Vec::with_capacity(args.sign_ins);
    for i in 0..args.sign_ins {
        let login = format!("bench.teacher{i:03}");
        let name = format!("Bench teacher {i}");
        let id = account::ensure(
            &services.pool,
            &NewAccount {
                username: Some(&login),
                phone: None,
                display_name: &name,
                password_hash: &hash,
                county_role: None,
            },
        )
        .await?;
        account::set_membership(&services.pool, id, tenant_id, &[ROLE], None, None).await?;
        logins.push(login);
    }
    let hash_time = hash_time(&services.identity, &hash).await?;

    let server = Server::start(&services).await?;
    let result = measure(&services, server.addr, &logins, hash_time, &args).await;
    let stopped = server.stop().await;
    let out = result?;
    stopped?;
    Ok(out)
}

/// The median of a few verifications one after another (no contention): what one sign-in
/// costs in CPU on this machine.
async fn hash_time(identity: &IdentityState, hash: &str) -> Result<Duration> {
    let mut times = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        anyhow::ensure!(
            identity.hasher.verify(PASSWORD, Some(hash)).await,
            "the benchmark password does not verify"
        );
        times.push(started.elapsed());
    }
    times.sort_unstable();
    median(&times).context("no verifications")
}

async fn measure(
    services: &Services,
    addr: SocketAddr,
    logins: &[String],
    hash_time: Duration,
    args: &Args,
) -> Result<String> {
    let host_name = format!("{SLUG}.{BASE_DOMAIN}");
    let host = HeaderValue::from_str(&host_name)?;

    // Real sign-ins through the form give the sessions of the signed-in variant: one per
    // member, the connections taking them in turn, so that no one member goes over the
    // per-person rate limit (whose check is part of what is measured).
    let mut cookies = Vec::new();
    let mut tokens = Vec::new();
    for login in logins {
        let mut client = SignInClient::open(addr, &host, login).await?;
        let token = client.sign_in().await?;
        cookies.push(HeaderValue::from_str(&format!("{SESSION_COOKIE}={token}"))?);
        tokens.push(token);
    }
    let token = tokens.first().context("no member signed in")?.clone();
    let anonymous = Target {
        addr,
        host: host.clone(),
        path: "/",
        cookie: None,
        cookies: Vec::new(),
    };
    let signed_in = Target {
        // The first member's, for the page checks before the measured phases.
        cookie: cookies.first().cloned(),
        cookies,
        ..anonymous.clone()
    };

    eprintln!("part 1: GET / anonymous and signed in");
    let overhead = drive_overhead(
        [
            (Signed::In, signed_in.clone()),
            (Signed::Out, anonymous.clone()),
        ],
        args,
    )
    .await?;
    let in_process = InProcess::measure(services, &host_name, &token, args.in_process).await?;

    eprintln!("part 2: {} with and without sign-ins", args.probe.path());
    let probe = Target {
        path: args.probe.path(),
        ..anonymous
    };
    let burst = BurstSpec {
        addr,
        host,
        logins: logins.to_vec(),
    };
    let (probe_phases, sign_ins) = drive_bursts(probe, burst, args).await?;

    let mut out = overhead_report(&overhead, &in_process, args);
    out.push('\n');
    out.push_str(&burst_report(&probe_phases, &sign_ins, hash_time, args));
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Part 1: signed in against anonymous.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signed {
    In,
    Out,
}

impl Signed {
    fn label(self) -> &'static str {
        match self {
            Signed::In => "signed in (session cookie)",
            Signed::Out => "anonymous (no cookie)",
        }
    }
}

/// Warm-up, then alternating rounds of both variants on the load thread.
async fn drive_overhead(
    targets: [(Signed, Target); 2],
    args: &Args,
) -> Result<Vec<(Signed, Phase)>> {
    let (connections, rounds) = (args.connections, args.rounds);
    let measured = Duration::from_secs_f64(args.seconds);
    let warmup = Duration::from_secs_f64(args.warmup);
    on_load_thread(async move {
        home_page_checks(&targets).await?;
        for (variant, t) in &targets {
            let p = driver::run_phase(t, connections, warmup).await?;
            eprintln!(
                "warm-up {:<28} {:>8.0} req/s",
                variant.label(),
                p.per_second()
            );
        }
        let mut phases = Vec::with_capacity(rounds * 2);
        for round in 0..rounds {
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let (variant, t) = &targets[i];
                let p = driver::run_phase(t, connections, measured).await?;
                eprintln!(
                    "round {}/{rounds} {:<28} {:>8.0} req/s ({} errors)",
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
    .await
}

/// Proves the two variants differ only in who is asking: the same page, with the sign-in
/// link for the anonymous request and the member's name and role for the signed-in one.
async fn home_page_checks(targets: &[(Signed, Target); 2]) -> Result<()> {
    for (variant, t) in targets {
        let (status, body) = driver::probe(t).await?;
        anyhow::ensure!(
            status == StatusCode::OK,
            "{}: GET / answered {status}",
            variant.label()
        );
        let badge = body.contains("id=\"current-identity\"") && body.contains("Bench teacher 0");
        let sign_in_link = body.contains("<a class=\"who\" href=\"/login\">");
        match variant {
            Signed::In => anyhow::ensure!(
                badge && !sign_in_link,
                "the signed-in home page does not show the member's badge"
            ),
            Signed::Out => anyhow::ensure!(
                sign_in_link && !badge,
                "the anonymous home page does not show the sign-in link"
            ),
        }
    }
    Ok(())
}

/// The identity extractor's own cost per request, without sockets, HTTP or the page.
struct InProcess {
    anonymous: Duration,
    signed_in: Duration,
}

impl InProcess {
    /// Calls `MaybeUser` (and, when someone is signed in, the permission check) `n` times
    /// in a row on this task, with and without the session cookie.
    async fn measure(services: &Services, host: &str, token: &str, n: u32) -> Result<Self> {
        let site = services
            .resolver
            .site_for(Some(host))
            .await
            .map_err(|e| anyhow::anyhow!("{host} did not resolve: {e:?}"))?;
        anyhow::ensure!(matches!(site, Site::School(_)), "{host} is not a school");
        let parts = |cookie: Option<String>| -> Result<axum::http::request::Parts> {
            let mut req = Request::builder().uri("/").header(HOST, host);
            if let Some(c) = cookie {
                req = req.header(COOKIE, c);
            }
            let (mut parts, ()) = req.body(())?.into_parts();
            parts.extensions.insert(site.clone());
            Ok(parts)
        };
        let identity = &services.identity;
        let mut anonymous = parts(None)?;
        let mut signed_in = parts(Some(format!("{SESSION_COOKIE}={token}")))?;
        anyhow::ensure!(
            !allowed(&mut anonymous, identity).await?,
            "anonymous request was let through"
        );
        anyhow::ensure!(
            allowed(&mut signed_in, identity).await?,
            "the signed-in member lacks {PERMISSION:?}"
        );
        Ok(Self {
            anonymous: per_call(&mut anonymous, identity, n).await?,
            signed_in: per_call(&mut signed_in, identity, n).await?,
        })
    }
}

/// What a handler guarded by the permission would decide for this request.
async fn allowed(parts: &mut axum::http::request::Parts, identity: &IdentityState) -> Result<bool> {
    let Ok(MaybeUser(user)) = MaybeUser::from_request_parts(parts, identity).await;
    Ok(user.is_some_and(|u| u.require(PERMISSION).is_ok()))
}

async fn per_call(
    parts: &mut axum::http::request::Parts,
    identity: &IdentityState,
    n: u32,
) -> Result<Duration> {
    for _ in 0..n / 10 {
        std::hint::black_box(allowed(parts, identity).await?);
    }
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(allowed(parts, identity).await?);
    }
    Ok(started.elapsed() / n.max(1))
}

fn overhead_report(phases: &[(Signed, Phase)], in_process: &InProcess, args: &Args) -> String {
    let signed_in = Totals::of(phases, Signed::In);
    let anonymous = Totals::of(phases, Signed::Out);
    let ratio = signed_in.per_second() / anonymous.per_second();
    let round_ratios = driver::round_ratios(phases, Signed::In, Signed::Out);
    let (lo, hi) = spread(&round_ratios);
    let (mean, se) = mean_and_se(&round_ratios);
    let errors = signed_in.errors + anonymous.errors;

    let mut out = String::new();
    out.push_str("#### Signed-in request overhead\n\n");
    out.push_str(&format!(
        "{} keep-alive connections, closed loop, `GET /` with `Host: {SLUG}.{BASE_DOMAIN}` \
         (the school's home page: a school-scoped transaction with three queries, rendered \
         to HTML) through the whole application, without a cookie and with the session \
         cookies of the school's members, each signed in through the login form (built-in role \
         `{ROLE}`; the connections take them in turn, so that each stays within the \
         per-person rate limit, set to its highest, 10,000/s); {} rounds × {} s per variant, interleaved (A-B, B-A, …) after {} s of \
         warm-up each. Signed in, the `MaybeUser` extractor looks the session up and then \
         the member's standing in the school (roles → permissions), both cached for 10 s \
         as in production, and the page shows the member's name and role instead of the \
         sign-in link. Server: one worker thread per core, a pool of {} Postgres \
         connections; the client runs on one thread of its own.\n\n",
        args.connections,
        args.rounds,
        args.seconds,
        args.warmup,
        pool_size()
    ));
    out.push_str("| Variant | Requests | Requests/s | p50 latency | p99 latency | Errors |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|\n");
    out.push_str(&signed_in.row(Signed::In.label()));
    out.push_str(&anonymous.row(Signed::Out.label()));
    out.push_str(&format!(
        "\nPer-round ratios signed in ÷ anonymous: {lo:.3} – {hi:.3}, mean {mean:.3}, \
         standard error {se:.3} (± {:.3} is two standard errors).\n\n",
        2.0 * se
    ));
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (with_us, without_us) = (us(in_process.signed_in), us(in_process.anonymous));
    out.push_str(&format!(
        "Informational, in-process (the `MaybeUser` extractor and a `{PERMISSION:?}` \
         permission check called directly {} times per variant on one thread, caches warm): \
         {with_us:.2} µs per request signed in, {without_us:.2} µs anonymous, so \
         identifying the member adds {:.2} µs to a request.\n\n",
        thousands(u64::from(args.in_process)),
        with_us - without_us,
    ));
    out.push_str("| Target | Measured | Result |\n|---|---|---|\n");
    out.push_str(&format!(
        "| Auth: throughput signed in ÷ anonymous on the same page ≥ {TARGET_SIGNED_IN_RATIO} \
         | {ratio:.3} (rounds: {mean:.3} ± {:.3}) | {} |\n",
        2.0 * se,
        verdict(ratio >= TARGET_SIGNED_IN_RATIO && errors == 0)
    ));
    out.push_str(&uncertainty_note(mean, se, TARGET_SIGNED_IN_RATIO));
    if errors > 0 {
        out.push_str(&format!(
            "\n{errors} requests failed; a run with errors does not pass.\n"
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Part 2: a cheap request with and without a sign-in burst.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    DuringSignIns,
    Alone,
}

impl Load {
    fn label(self, probe: Probe) -> String {
        match self {
            Load::DuringSignIns => format!("`{}` during sign-ins", probe.path()),
            Load::Alone => format!("`{}` alone", probe.path()),
        }
    }
}

/// One client signing in over and over on its own keep-alive connection, as a browser
/// would: the form once (for its CSRF cookie), then `POST /login` as often as asked.
pub(crate) struct SignInClient {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
    cookie: HeaderValue,
    form: Bytes,
}

/// The value of cookie `name` among the response's `Set-Cookie` headers.
pub(crate) fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let value = v.strip_prefix(name)?.strip_prefix('=')?;
            Some(value.split(';').next().unwrap_or_default().to_owned())
        })
        .filter(|v| !v.is_empty())
}

impl SignInClient {
    pub(crate) async fn open(addr: SocketAddr, host: &HeaderValue, login: &str) -> Result<Self> {
        let mut sender = driver::connect::<Full<Bytes>>(addr).await?;
        let req = Request::get("/login?local=1")
            .header(HOST, host.clone())
            .body(Full::default())?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let csrf = set_cookie(resp.headers(), LOGIN_CSRF_COOKIE);
        resp.into_body().collect().await?;
        anyhow::ensure!(status == StatusCode::OK, "the login form answered {status}");
        let csrf = csrf.context("the login form set no CSRF cookie")?;
        Ok(Self {
            sender,
            host: host.clone(),
            cookie: HeaderValue::from_str(&format!("{LOGIN_CSRF_COOKIE}={csrf}"))?,
            form: Bytes::from(format!("login={login}&password={PASSWORD}&csrf={csrf}")),
        })
    }

    /// Signs in once; the new session's token.
    pub(crate) async fn sign_in(&mut self) -> Result<String> {
        let req = Request::post("/login")
            .header(HOST, self.host.clone())
            .header(COOKIE, self.cookie.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(self.form.clone()))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let token = set_cookie(resp.headers(), SESSION_COOKIE);
        resp.into_body().collect().await?;
        anyhow::ensure!(
            status == StatusCode::SEE_OTHER,
            "signing in answered {status}"
        );
        token.context("signing in set no session cookie")
    }
}

/// Where the burst signs in, and as whom (one client per login).
#[derive(Clone)]
struct BurstSpec {
    addr: SocketAddr,
    host: HeaderValue,
    logins: Vec<String>,
}

/// Completed sign-ins: when each finished and how long it took.
#[derive(Default)]
struct SignIns {
    done: Vec<(Instant, u32)>,
    errors: u64,
    /// The first error, to show what went wrong.
    first_error: Option<String>,
}

async fn sign_in_loop(
    mut client: SignInClient,
    stop: Arc<AtomicBool>,
    completed: Arc<AtomicU64>,
) -> SignIns {
    let mut s = SignIns::default();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match client.sign_in().await {
            Ok(_) => {
                let took = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
                s.done.push((Instant::now(), took));
                completed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                s.errors += 1;
                s.first_error.get_or_insert_with(|| format!("{e:#}"));
                if client.sender.is_closed() {
                    break;
                }
            }
        }
    }
    s
}

/// Runs one probe phase while every client of `spec` signs in continuously. The phase
/// starts once the first sign-in has completed (so hashing is under way from its first to
/// its last moment); the burst stops when it ends, and in-flight sign-ins are awaited so
/// that the next phase starts quiet. Returns the sign-ins completed within the phase.
async fn phase_during_sign_ins(
    probe: &Target,
    spec: &BurstSpec,
    connections: usize,
    duration: Duration,
) -> Result<(Phase, SignIns, Duration)> {
    let stop = Arc::new(AtomicBool::new(false));
    let completed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(spec.logins.len());
    for login in &spec.logins {
        let client = SignInClient::open(spec.addr, &spec.host, login).await?;
        tasks.push(tokio::spawn(sign_in_loop(
            client,
            Arc::clone(&stop),
            Arc::clone(&completed),
        )));
    }
    let ramp = Instant::now();
    while completed.load(Ordering::Relaxed) == 0 && ramp.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let from = Instant::now();
    let phase = driver::run_phase(probe, connections, duration).await;
    let to = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let mut within = SignIns::default();
    for task in futures::future::join_all(tasks).await {
        let s = task.context("a sign-in client panicked")?;
        within.errors += s.errors;
        if within.first_error.is_none() {
            within.first_error = s.first_error;
        }
        within.done.extend(
            s.done
                .into_iter()
                .filter(|(at, _)| (from..=to).contains(at)),
        );
    }
    Ok((phase?, within, to - from))
}

/// Everything the sign-in clients did in the measured phases.
#[derive(Default)]
struct BurstTotals {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    window: Duration,
    latencies_us: Vec<u32>,
}

impl BurstTotals {
    fn add(&mut self, s: SignIns, window: Duration) {
        self.ok += s.done.len() as u64;
        self.errors += s.errors;
        if self.first_error.is_none() {
            self.first_error = s.first_error;
        }
        self.window += window;
        self.latencies_us.extend(s.done.iter().map(|(_, us)| *us));
    }

    fn per_second(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }
}

async fn drive_bursts(
    probe: Target,
    spec: BurstSpec,
    args: &Args,
) -> Result<(Vec<(Load, Phase)>, BurstTotals)> {
    let (connections, rounds, what) = (args.connections, args.rounds, args.probe);
    let measured = Duration::from_secs_f64(args.seconds);
    let warmup = Duration::from_secs_f64(args.warmup);
    on_load_thread(async move {
        let (status, _) = driver::probe(&probe).await?;
        anyhow::ensure!(
            status == StatusCode::OK,
            "GET {} answered {status}",
            probe.path
        );
        let run = |load: Load, duration: Duration| {
            let (probe, spec) = (&probe, &spec);
            async move {
                match load {
                    Load::Alone => {
                        Ok((driver::run_phase(probe, connections, duration).await?, None))
                    }
                    Load::DuringSignIns => {
                        let (phase, sign_ins, window) =
                            phase_during_sign_ins(probe, spec, connections, duration).await?;
                        anyhow::Ok((phase, Some((sign_ins, window))))
                    }
                }
            }
        };
        let targets = [Load::DuringSignIns, Load::Alone];
        for load in targets {
            let (p, sign_ins) = run(load, warmup).await?;
            eprintln!(
                "warm-up {:<36} {:>8.0} req/s{}",
                load.label(what),
                p.per_second(),
                sign_ins.map_or(String::new(), |(s, w)| format!(
                    ", {:.1} sign-ins/s",
                    s.done.len() as f64 / w.as_secs_f64()
                ))
            );
        }
        let mut phases = Vec::with_capacity(rounds * 2);
        let mut totals = BurstTotals::default();
        for round in 0..rounds {
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let load = targets[i];
                let (p, sign_ins) = run(load, measured).await?;
                let mut line = format!(
                    "round {}/{rounds} {:<36} {:>8.0} req/s ({} errors)",
                    round + 1,
                    load.label(what),
                    p.per_second(),
                    p.errors
                );
                if let Some((s, window)) = sign_ins {
                    line.push_str(&format!(
                        ", {:.1} sign-ins/s ({} errors)",
                        s.done.len() as f64 / window.as_secs_f64(),
                        s.errors
                    ));
                    totals.add(s, window);
                }
                eprintln!("{line}");
                phases.push((load, p));
            }
        }
        totals.latencies_us.sort_unstable();
        Ok((phases, totals))
    })
    .await
}

fn burst_report(
    phases: &[(Load, Phase)],
    sign_ins: &BurstTotals,
    hash_time: Duration,
    args: &Args,
) -> String {
    let during = Totals::of(phases, Load::DuringSignIns);
    let alone = Totals::of(phases, Load::Alone);
    let ratio = during.per_second() / alone.per_second();
    let round_ratios = driver::round_ratios(phases, Load::DuringSignIns, Load::Alone);
    let (lo, hi) = spread(&round_ratios);
    let (mean, se) = mean_and_se(&round_ratios);
    let p99 = Duration::from_micros(u64::from(during.latency_us(99.0)));
    let errors = during.errors + alone.errors;
    let path = args.probe.path();
    let permits = args.hash_concurrency.max(1);
    let ceiling = permits as f64 / hash_time.as_secs_f64();

    let mut out = String::new();
    out.push_str("#### Sign-in bursts\n\n");
    out.push_str(&format!(
        "`GET {path}` over {} keep-alive connections (closed loop) alone, and while {} \
         clients sign in continuously, each as its own member on its own connection: \
         `POST /login` with the right password, so every attempt verifies an Argon2id hash \
         (19 MiB, 2 iterations) on Tokio's blocking threads, at most {permits} at a time \
         (`password_hash_concurrency`), then writes the session, the single sign-on code \
         and the audit row. The login rate limit is raised to {} attempts a minute so that \
         it never answers instead of the hasher. {} rounds × {} s per variant, interleaved \
         after {} s of warm-up each; a burst phase starts once its first sign-in has \
         completed and waits for its last one before the next phase. One verification \
         alone takes {} on this machine, so {permits} at a time allow at most {:.0} \
         sign-ins/s.\n\n",
        args.connections,
        args.sign_ins,
        thousands(u64::from(LOGIN_LIMIT)),
        args.rounds,
        args.seconds,
        args.warmup,
        ms(hash_time),
        ceiling,
    ));
    out.push_str("| Variant | Requests | Requests/s | p50 latency | p99 latency | Errors |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|\n");
    out.push_str(&during.row(&Load::DuringSignIns.label(args.probe)));
    out.push_str(&alone.row(&Load::Alone.label(args.probe)));
    let lat = |q| percentile(&sign_ins.latencies_us, q).map_or("–".into(), us_as_ms);
    out.push_str(&format!(
        "\n| Sign-ins in the measured phases | Sign-ins/s | p50 latency | p99 latency | Errors |\n\
         |---:|---:|---:|---:|---:|\n\
         | {} | {:.1} | {} | {} | {} |\n",
        thousands(sign_ins.ok),
        sign_ins.per_second(),
        lat(50.0),
        lat(99.0),
        thousands(sign_ins.errors),
    ));
    out.push_str(&format!(
        "\nPer-round ratios during ÷ alone: {lo:.3} – {hi:.3}, mean {mean:.3}, standard \
         error {se:.3} (± {:.3} is two standard errors).\n\n",
        2.0 * se
    ));
    out.push_str(&format!(
        "The targets: hashing {permits} passwords at a time keeps up to {permits} threads \
         busy beside the server's worker threads, the load client and Postgres, so on a \
         machine with few cores the probe loses a share of the CPU however the hashing is \
         scheduled; keeping at least {TARGET_PROBE_RATIO} of its throughput means the \
         sign-ins take no more than their share. Its p99 latency under \
         {} ms means no request waits for a hash to finish: hashing on a worker thread \
         would hold every request queued behind it for a whole verification or more.\n\n",
        TARGET_PROBE_P99.as_millis()
    ));
    let burst_ok = sign_ins.ok > 0 && sign_ins.errors == 0 && errors == 0;
    out.push_str("| Target | Measured | Result |\n|---|---|---|\n");
    out.push_str(&format!(
        "| Logins: `{path}` throughput during a burst of {} sign-ins ÷ alone ≥ \
         {TARGET_PROBE_RATIO} | {ratio:.3} (rounds: {mean:.3} ± {:.3}; {:.1} sign-ins/s) | {} |\n",
        args.sign_ins,
        2.0 * se,
        sign_ins.per_second(),
        verdict(ratio >= TARGET_PROBE_RATIO && burst_ok)
    ));
    out.push_str(&format!(
        "| Logins: `{path}` p99 latency during a burst of {} sign-ins < {} ms | {} (alone: {}) \
         | {} |\n",
        args.sign_ins,
        TARGET_PROBE_P99.as_millis(),
        us_as_ms(during.latency_us(99.0)),
        us_as_ms(alone.latency_us(99.0)),
        verdict(p99 < TARGET_PROBE_P99 && burst_ok)
    ));
    out.push_str(&uncertainty_note(mean, se, TARGET_PROBE_RATIO));
    if errors > 0 {
        out.push_str(&format!(
            "\n{errors} probe requests failed; a run with errors does not pass.\n"
        ));
    }
    if sign_ins.errors > 0 || sign_ins.ok == 0 {
        out.push_str(&format!(
            "\n{} sign-ins failed and {} succeeded (first error: {}); a burst that did not \
             sign in does not pass.\n",
            sign_ins.errors,
            sign_ins.ok,
            sign_ins.first_error.as_deref().unwrap_or("none")
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Shared helpers.

/// Runs `work` on a current-thread runtime of its own thread: the load client is one thread
/// whatever the server does, identical for every variant.
pub(crate) async fn on_load_thread<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T>> + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(work)
    })
    .await
    .context("the load thread panicked")?
}

fn spread(xs: &[f64]) -> (f64, f64) {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

/// A warning when the target lies within two standard errors of the per-round mean, so
/// that PASS or FAIL does not look firmer than one run on a small machine makes it.
fn uncertainty_note(mean: f64, se: f64, target: f64) -> String {
    if (mean - 2.0 * se..=mean + 2.0 * se).contains(&target) {
        "\nThe target lies within two standard errors of the per-round mean: on this machine \
         one run cannot tell PASS from FAIL reliably; repeat the benchmark (or run it with \
         more `--rounds`) before drawing a conclusion.\n"
            .to_owned()
    } else {
        String::new()
    }
}
