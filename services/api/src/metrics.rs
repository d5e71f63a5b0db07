//! The instance's instruments on `/metrics`, besides the notification service's own:
//! requests and latency per school and route template, the database pool and each
//! school's share of it, the host cache, the rate limiters' size, the notification
//! queue's backlog and the process's memory.
//!
//! Label cardinality is bounded by design: `school` is a slug (one series per school that
//! was actually visited — fine for the few thousand schools of a county), `route` is the
//! router's template (`/notices/{id}`), never the raw path, and unmatched requests share
//! one `unmatched` series.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use campus_limits::{Limits, RequestLabels};
use campus_tenant::routing::Resolver;
use campus_tenant::Db;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use sqlx::PgPool;

/// Request counts and latencies.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "campus_http_requests_total",
                "Requests answered, by school (slug, or - for no school), route template, method and status",
            ),
            &["school", "route", "method", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "campus_http_request_duration_seconds",
                "Seconds from receiving a request to its response headers, by school and route template",
            )
            .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["school", "route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }

    fn observe(&self, labels: &RequestLabels, method: &str, status: u16, took: Duration) {
        let (school, route) = (labels.school(), labels.route());
        self.requests
            .with_label_values(&[school, route, method, &status.to_string()])
            .inc();
        self.duration
            .with_label_values(&[school, route])
            .observe(took.as_secs_f64());
    }
}

fn method_label(m: &http::Method) -> &'static str {
    use http::Method as M;
    match *m {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::PATCH => "PATCH",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Outermost middleware: hands the inner layers an empty [`RequestLabels`] and records
/// the request once it is answered.
pub async fn track(State(m): State<HttpMetrics>, mut req: Request, next: Next) -> Response {
    let labels = RequestLabels::default();
    req.extensions_mut().insert(labels.clone());
    let method = method_label(req.method());
    let started = Instant::now();
    let resp = next.run(req).await;
    m.observe(&labels, method, resp.status().as_u16(), started.elapsed());
    resp
}

/// Route middleware of every site router: the matched template goes to the metrics and
/// to the request's log span.
pub async fn record_route(req: Request, next: Next) -> Response {
    if let Some(path) = req.extensions().get::<MatchedPath>() {
        tracing::Span::current().record("route", path.as_str());
        if let Some(labels) = req.extensions().get::<RequestLabels>() {
            labels.set_route(path.as_str());
        }
    }
    next.run(req).await
}

/// Figures read from the running parts at scrape time (no work between scrapes).
struct Runtime {
    db: Db,
    resolver: Arc<Resolver>,
    limits: Limits,
    pool: GaugeVec,
    permits: IntGaugeVec,
    in_use: IntGaugeVec,
    waiting: IntGaugeVec,
    waits: IntGaugeVec,
    timeouts: IntGaugeVec,
    wait_seconds: GaugeVec,
    host_cache: IntGaugeVec,
    connection_sources: IntGaugeVec,
    limiter_keys: IntGaugeVec,
    rss: IntGauge,
}

impl Runtime {
    fn families(&self) -> Vec<&dyn Collector> {
        vec![
            &self.pool,
            &self.permits,
            &self.in_use,
            &self.waiting,
            &self.waits,
            &self.timeouts,
            &self.wait_seconds,
            &self.host_cache,
            &self.connection_sources,
            &self.limiter_keys,
            &self.rss,
        ]
    }

    fn refresh(&self) {
        let pool = self.db.school_pool();
        let size = f64::from(pool.size());
        // Parked connections wait for their school's next transaction: idle all the same.
        let idle = (pool.num_idle() + self.db.parked()) as f64;
        self.pool.with_label_values(&["open"]).set(size);
        self.pool.with_label_values(&["idle"]).set(idle);
        self.pool.with_label_values(&["in_use"]).set(size - idle);
        self.pool
            .with_label_values(&["max"])
            .set(f64::from(pool.options().get_max_connections()));
        // Schools forgotten by the gate (idle ten minutes) leave the gauges too.
        for g in [
            &self.permits,
            &self.in_use,
            &self.waiting,
            &self.waits,
            &self.timeouts,
        ] {
            g.reset();
        }
        self.wait_seconds.reset();
        use std::sync::atomic::Ordering::Relaxed;
        for share in self.db.gate().shares() {
            let l = [share.slug.as_str()];
            self.permits
                .with_label_values(&l)
                .set(i64::from(share.permits));
            self.in_use
                .with_label_values(&l)
                .set(i64::from(share.in_use()));
            self.waiting.with_label_values(&l).set(share.waiting());
            self.waits
                .with_label_values(&l)
                .set(share.waits.load(Relaxed) as i64);
            self.timeouts
                .with_label_values(&l)
                .set(share.timeouts.load(Relaxed) as i64);
            self.wait_seconds
                .with_label_values(&l)
                .set(share.wait_micros.load(Relaxed) as f64 / 1e6);
        }
        self.host_cache
            .with_label_values(&["hit"])
            .set(self.resolver.cache_hits() as i64);
        self.host_cache
            .with_label_values(&["miss"])
            .set(self.resolver.db_lookups() as i64);
        for (source, n) in self.db.connection_sources() {
            self.connection_sources
                .with_label_values(&[source.label()])
                .set(n as i64);
        }
        let (schools, people, addresses) = self.limits.tracked();
        self.limiter_keys
            .with_label_values(&["school"])
            .set(schools as i64);
        self.limiter_keys
            .with_label_values(&["person"])
            .set(people as i64);
        self.limiter_keys
            .with_label_values(&["address"])
            .set(addresses as i64);
        self.rss.set(resident_bytes().unwrap_or(0) as i64);
    }
}

/// Resident memory of this process, from `/proc/self/statm` (Linux).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

impl Collector for Runtime {
    fn desc(&self) -> Vec<&Desc> {
        self.families().into_iter().flat_map(|c| c.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        self.families()
            .into_iter()
            .flat_map(|c| c.collect())
            .collect()
    }
}

/// Registers the scrape-time figures of the database, the host cache and the limiters.
pub fn register_runtime(
    registry: &Registry,
    db: &Db,
    resolver: &Arc<Resolver>,
    limits: &Limits,
) -> prometheus::Result<()> {
    let school = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &["school"]);
    let runtime = Runtime {
        db: db.clone(),
        resolver: Arc::clone(resolver),
        limits: limits.clone(),
        pool: GaugeVec::new(
            Opts::new(
                "campus_db_pool_connections",
                "School transaction pool: open, idle, in_use and max connections",
            ),
            &["state"],
        )?,
        permits: school(
            "campus_db_school_permits",
            "Concurrent school transactions a school may hold on this instance",
        )?,
        in_use: school(
            "campus_db_school_in_use",
            "School transactions open right now, by school",
        )?,
        waiting: school(
            "campus_db_school_waiting",
            "School transactions waiting for the school's share of the pool (queue depth)",
        )?,
        waits: school(
            "campus_db_school_waits_total",
            "School transactions that had to wait for a permit (counter)",
        )?,
        timeouts: school(
            "campus_db_school_wait_timeouts_total",
            "School transactions that gave up waiting and answered busy (counter)",
        )?,
        wait_seconds: GaugeVec::new(
            Opts::new(
                "campus_db_school_wait_seconds_total",
                "Seconds spent waiting for permits, by school (counter)",
            ),
            &["school"],
        )?,
        host_cache: IntGaugeVec::new(
            Opts::new(
                "campus_host_cache_lookups_total",
                "School host resolutions answered from the cache (hit) or the registry (miss) (counter)",
            ),
            &["result"],
        )?,
        connection_sources: IntGaugeVec::new(
            Opts::new(
                "campus_db_school_connections_total",
                "School transactions by where their connection came from: parked by the same school (its plans still valid), the pool, or parked by another school (counter)",
            ),
            &["source"],
        )?,
        limiter_keys: IntGaugeVec::new(
            Opts::new(
                "campus_rate_limit_keys",
                "Keys held by the rate limiters (idle keys are swept each minute)",
            ),
            &["limiter"],
        )?,
        rss: IntGauge::new(
            "campus_process_resident_memory_bytes",
            "Resident memory of this process",
        )?,
    };
    registry.register(Box::new(runtime))
}

/// The notification backlog, sampled every 15 s (a query, so not at scrape time).
pub fn spawn_queue_sampler(
    registry: &Registry,
    pool: PgPool,
) -> prometheus::Result<tokio::task::JoinHandle<()>> {
    let due = IntGaugeVec::new(
        Opts::new(
            "campus_notify_queue_due",
            "Schools' notification lanes with work due now, by lane (0 safety … 3 bulk)",
        ),
        &["lane"],
    )?;
    let oldest = prometheus::Gauge::new(
        "campus_notify_queue_oldest_due_seconds",
        "How long the longest-waiting due notification lane has been due",
    )?;
    registry.register(Box::new(due.clone()))?;
    registry.register(Box::new(oldest.clone()))?;
    Ok(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(15));
        loop {
            tick.tick().await;
            let rows: Result<Vec<(i16, i64, f64)>, _> = sqlx::query_as(
                // Rings not yet folded count too: with no worker running, they are all
                // there is.
                "select lane, count(distinct tenant_id), coalesce(extract(epoch from now() - min(due_at))::float8, 0)
                   from (select tenant_id, lane, due_at from public.notify_queue
                         union all
                         select tenant_id, lane, due_at from public.notify_rings) q
                  where due_at <= now() group by lane",
            )
            .fetch_all(&pool)
            .await;
            match rows {
                Ok(rows) => {
                    due.reset();
                    let mut worst = 0.0f64;
                    for (lane, n, age) in rows {
                        due.with_label_values(&[&lane.to_string()]).set(n);
                        worst = worst.max(age);
                    }
                    oldest.set(worst);
                }
                Err(e) => tracing::debug!(error = %e, "sampling the notification queue failed"),
            }
        }
    }))
}
