//! A lean closed-loop HTTP/1.1 load driver over raw hyper client connections.
//!
//! Each connection is kept alive and has exactly one request in flight: it sends, waits
//! for the whole response, records the latency and sends again until the phase's deadline.
//! No pooling, retries or redirects — the client must cost as little as possible, because
//! on a small machine it shares the CPU with the server it measures.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Body;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, COOKIE, HOST};
use hyper::{Request, StatusCode};

use crate::stats::{percentile, thousands, us_as_ms};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where a phase sends its requests.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: HeaderValue,
    pub path: &'static str,
    /// A `Cookie` header to send with every request (e.g. a session).
    pub cookie: Option<HeaderValue>,
    /// If not empty, connection `i` sends `cookies[i % len]` instead of `cookie` (several
    /// people signed in, each within the per-person rate limit).
    pub cookies: Vec<HeaderValue>,
}

/// What one phase of load produced.
#[derive(Debug, Default)]
pub struct Phase {
    /// Responses with status 200.
    pub ok: u64,
    /// Any other status, or a broken connection.
    pub errors: u64,
    /// From the moment every connection was open until the last one finished.
    pub elapsed: Duration,
    /// Latency of every successful request, in microseconds.
    pub latencies_us: Vec<u32>,
}

impl Phase {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// Opens one keep-alive HTTP/1.1 connection whose requests carry bodies of type `B`.
pub async fn connect<B>(addr: SocketAddr) -> Result<SendRequest<B>>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    // Small request/response pairs: without NODELAY, Nagle's algorithm would add delays
    // that have nothing to do with what is being measured.
    tcp.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        // The connection ends when its sender is dropped at the end of the phase.
        let _ = conn.await;
    });
    Ok(sender)
}

fn request(target: &Target) -> Result<Request<Empty<Bytes>>> {
    let mut req = Request::builder()
        .uri(target.path)
        .header(HOST, target.host.clone());
    if let Some(cookie) = &target.cookie {
        req = req.header(COOKIE, cookie.clone());
    }
    Ok(req.body(Empty::new())?)
}

/// Sends one request on a fresh connection and returns the status and body (sanity checks
/// before the measured phases).
pub async fn probe(target: &Target) -> Result<(StatusCode, String)> {
    let mut sender = connect(target.addr).await?;
    let resp = sender.send_request(request(target)?).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn connection_loop(
    mut sender: SendRequest<Empty<Bytes>>,
    target: Target,
    deadline: Instant,
) -> Phase {
    let mut phase = Phase {
        latencies_us: Vec::with_capacity(1 << 16),
        ..Phase::default()
    };
    while Instant::now() < deadline {
        let Ok(req) = request(&target) else {
            phase.errors += 1;
            break;
        };
        if sender.ready().await.is_err() {
            phase.errors += 1;
            break;
        }
        let started = Instant::now();
        let outcome = async {
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            // Read the whole body: the request is complete only when the client has it.
            resp.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        }
        .await;
        let took = started.elapsed();
        match outcome {
            Ok(StatusCode::OK) => {
                phase.ok += 1;
                phase
                    .latencies_us
                    .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
            }
            Ok(status) => {
                if phase.errors == 0 {
                    eprintln!(
                        "{} answered {status} (the first error on this connection)",
                        target.path
                    );
                }
                phase.errors += 1;
            }
            Err(_) => {
                // A broken connection cannot carry more requests; stop this one.
                phase.errors += 1;
                break;
            }
        }
    }
    phase
}

/// Drives `target` with `connections` keep-alive connections for `duration`. Connections
/// are opened before the clock starts so that handshakes are not part of the figures.
/// Must run inside a Tokio runtime; the routing benchmark uses a current-thread one.
pub async fn run_phase(target: &Target, connections: usize, duration: Duration) -> Result<Phase> {
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(connect(target.addr).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let mut target = target.clone();
            if !target.cookies.is_empty() {
                target.cookie = Some(target.cookies[i % target.cookies.len()].clone());
            }
            tokio::spawn(connection_loop(s, target, deadline))
        })
        .collect();
    let mut total = Phase::default();
    for task in futures::future::join_all(tasks).await {
        let p = task.context("a load connection panicked")?;
        total.ok += p.ok;
        total.errors += p.errors;
        total.latencies_us.extend(p.latencies_us);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// The phases of one variant added up: what a benchmark's table row shows.
pub struct Totals {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Ascending.
    pub latencies_us: Vec<u32>,
}

impl Totals {
    /// Adds up the phases of `variant` among `phases`.
    pub fn of<V: PartialEq>(phases: &[(V, Phase)], variant: V) -> Self {
        let mut t = Totals {
            ok: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            latencies_us: Vec::new(),
        };
        for (_, p) in phases.iter().filter(|(v, _)| *v == variant) {
            t.ok += p.ok;
            t.errors += p.errors;
            t.elapsed += p.elapsed;
            t.latencies_us.extend_from_slice(&p.latencies_us);
        }
        t.latencies_us.sort_unstable();
        t
    }

    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q`th percentile latency in microseconds (0 without any request).
    pub fn latency_us(&self, q: f64) -> u32 {
        percentile(&self.latencies_us, q).unwrap_or(0)
    }

    /// `| label | requests | requests/s | p50 | p99 | errors |`
    pub fn row(&self, label: &str) -> String {
        let p = |q| percentile(&self.latencies_us, q).map_or("–".into(), us_as_ms);
        format!(
            "| {label} | {} | {} | {} | {} | {} |\n",
            thousands(self.ok),
            thousands(self.per_second().round() as u64),
            p(50.0),
            p(99.0),
            thousands(self.errors)
        )
    }
}

/// Throughput of variant `a` ÷ variant `b` in each round, for phases recorded two per
/// round (one of each variant, in either order).
pub fn round_ratios<V: PartialEq + Copy>(phases: &[(V, Phase)], a: V, b: V) -> Vec<f64> {
    phases
        .chunks(2)
        .map(|pair| {
            let rate = |v| {
                pair.iter()
                    .find(|(pv, _)| *pv == v)
                    .map_or(f64::NAN, |(_, p)| p.per_second())
            };
            rate(a) / rate(b)
        })
        .collect()
}
