//! A description of the machine the figures come from, as a markdown list: benchmark
//! results mean little without the CPU, memory and Postgres they were measured on.

use anyhow::Result;
use sqlx::postgres::PgPoolOptions;

/// The value of the first `key: value` or `key=value` line of a system file.
fn field(path: &str, key: &str, sep: char) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(sep)?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn memory() -> Option<String> {
    let kib: f64 = field("/proc/meminfo", "MemTotal", ':')?
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(format!("{:.1} GiB", kib / 1024.0 / 1024.0))
}

/// The version of the Postgres binaries `campus demo` starts its private cluster from.
fn demo_postgres() -> String {
    let Ok(bins) = campus_devstack::PgBinaries::find() else {
        return "not found".into();
    };
    std::process::Command::new(bins.tool("postgres"))
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
        .map_or_else(
            || "unknown".into(),
            |v| format!("{v} ({})", bins.bindir.display()),
        )
}

pub async fn run(server_url: &str) -> Result<String> {
    let unknown = || "unknown".to_owned();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(server_url)
        .await?;
    let (pg_version, max_conn): (String, String) =
        sqlx::query_as("select version(), current_setting('max_connections')")
            .fetch_one(&pool)
            .await?;
    pool.close().await;
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    Ok(format!(
        "- CPU: {} × {}\n\
         - Memory: {}\n\
         - OS: {}, kernel {}\n\
         - Postgres (benchmarks 1–3): {pg_version}, max_connections {max_conn}\n\
         - Postgres (demo's private cluster): {}\n",
        cpus,
        field("/proc/cpuinfo", "model name", ':').unwrap_or_else(unknown),
        memory().unwrap_or_else(unknown),
        field("/etc/os-release", "PRETTY_NAME", '=').unwrap_or_else(unknown),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| unknown(), |s| s.trim().to_owned()),
        demo_postgres(),
    ))
}
