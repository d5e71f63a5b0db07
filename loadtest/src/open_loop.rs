//! An open-loop load generator: each stream sends at a fixed rate whatever the server's
//! speed, and a request's latency is measured from the moment it was *scheduled*, so a
//! slow server cannot hide its queueing by slowing the client down (coordinated
//! omission). Streams are spread over their periods (of N streams, the i-th starts i/N of
//! a period late), as 32 schools' gates are not in step with each other: started together,
//! every school's once-a-second batch would arrive in the same millisecond. Requests go over a pooled keep-alive HTTP/1.1 client (reqwest), and the
//! server process's CPU and resident memory are sampled from `/proc/<pid>` meanwhile.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::stats::{percentile, thousands, us_as_ms};

/// Builds the `n`th request of a stream.
pub type MakeRequest = Arc<dyn Fn(u64) -> reqwest::RequestBuilder + Send + Sync>;

pub struct Stream {
    pub label: String,
    /// Requests per second.
    pub rate: f64,
    /// Stop after this many requests (a one-off burst such as one notice per school).
    pub limit: Option<u64>,
    pub make: MakeRequest,
}

#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub ok: u64,
    pub limited: u64,
    pub errors: u64,
    /// Microseconds from the scheduled send to the whole response, successes only.
    pub latencies_us: Vec<u32>,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn merge(&mut self, other: &Outcome) {
        self.ok += other.ok;
        self.limited += other.limited;
        self.errors += other.errors;
        self.latencies_us.extend_from_slice(&other.latencies_us);
        self.elapsed = self.elapsed.max(other.elapsed);
    }

    pub fn p(&mut self, q: f64) -> Option<u32> {
        self.latencies_us.sort_unstable();
        percentile(&self.latencies_us, q)
    }

    /// `| label | requests | req/s | p50 | p95 | p99 | 429 | errors |`
    pub fn row(&mut self, label: &str) -> String {
        let fmt = |v: Option<u32>| v.map_or("–".into(), us_as_ms);
        let (p50, p95, p99) = (self.p(50.0), self.p(95.0), self.p(99.0));
        let total = self.ok + self.limited + self.errors;
        format!(
            "| {label} | {} | {:.1} | {} | {} | {} | {} | {} |\n",
            thousands(total),
            total as f64 / self.elapsed.as_secs_f64().max(1e-9),
            fmt(p50),
            fmt(p95),
            fmt(p99),
            thousands(self.limited),
            thousands(self.errors)
        )
    }
}

pub const TABLE_HEAD: &str = "| stream | requests | req/s | p50 | p95 | p99 | 429 | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";

/// CPU and memory of the server while a phase ran.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    /// Average CPU over the phase, in percent of one core.
    pub cpu_percent: f64,
    pub peak_rss_bytes: u64,
}

fn proc_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at ") ".
    let rest = stat.rsplit_once(") ")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn proc_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Runs `streams` together for `duration` against whatever they address; `pid` is the
/// server process to sample. Returns each stream's outcome by label, and the usage.
pub async fn run(
    streams: Vec<Stream>,
    duration: Duration,
    pid: u32,
) -> (BTreeMap<String, Outcome>, Usage) {
    let results: Arc<Mutex<BTreeMap<String, Outcome>>> = Arc::default();
    let started = Instant::now();
    let end = started + duration;
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                if let Some(rss) = proc_rss(pid) {
                    peak.fetch_max(rss, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let ticks_before = proc_ticks(pid).unwrap_or(0);
    // Bounds the client's own memory if the server stalls; far above any phase's need.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(4096));
    let mut tasks = Vec::new();
    let count = streams.len().max(1);
    for (i, stream) in streams.into_iter().enumerate() {
        let phase = i as f64 / count as f64;
        let results = Arc::clone(&results);
        let in_flight = Arc::clone(&in_flight);
        tasks.push(tokio::spawn(async move {
            let period = Duration::from_secs_f64(1.0 / stream.rate.max(0.001));
            let mut requests = Vec::new();
            let mut n = 0u64;
            let begin = tokio::time::Instant::now();
            loop {
                let due = begin + period.mul_f64(n as f64 + phase);
                if due.into_std() >= end || stream.limit.is_some_and(|l| n >= l) {
                    break;
                }
                tokio::time::sleep_until(due).await;
                let req = (stream.make)(n);
                let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                    break;
                };
                let scheduled = due.into_std();
                requests.push(tokio::spawn(async move {
                    let _permit = permit;
                    let outcome = match req.send().await {
                        Ok(resp) => {
                            let status = resp.status();
                            let done = resp.bytes().await.is_ok();
                            (status, done)
                        }
                        Err(_) => (reqwest::StatusCode::BAD_GATEWAY, false),
                    };
                    (outcome, scheduled.elapsed())
                }));
                n += 1;
            }
            let mut out = Outcome::default();
            for r in requests {
                let Ok(((status, done), took)) = r.await else {
                    out.errors += 1;
                    continue;
                };
                if status.is_success() && done {
                    out.ok += 1;
                    out.latencies_us
                        .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                    out.limited += 1;
                } else {
                    out.errors += 1;
                }
            }
            out.elapsed = begin.elapsed();
            results
                .lock()
                .expect("not poisoned")
                .entry(stream.label)
                .or_default()
                .merge(&out);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed();
    sampler.abort();
    let ticks = proc_ticks(pid).unwrap_or(0).saturating_sub(ticks_before);
    // Linux reports CPU time in clock ticks of 1/100 s (USER_HZ).
    let usage = Usage {
        cpu_percent: ticks as f64 / elapsed.as_secs_f64(),
        peak_rss_bytes: peak.load(std::sync::atomic::Ordering::Relaxed),
    };
    let out = std::mem::take(&mut *results.lock().expect("not poisoned"));
    (out, usage)
}
