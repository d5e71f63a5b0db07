//! A private Postgres cluster in a folder, started from the machine's Postgres binaries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::user::{self, RunAs};

const INSTALL_HINT: &str = "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found. \
On Debian/Ubuntu run `sudo apt-get install -y postgresql`, or set CAMPUS_PG_BINDIR to the folder \
that holds them, or set DATABASE_URL to use an existing server instead.";

/// Where the Postgres server binaries are.
#[derive(Clone, Debug)]
pub struct PgBinaries {
    pub bindir: PathBuf,
}

impl PgBinaries {
    /// Looks in `$CAMPUS_PG_BINDIR`, then the newest `/usr/lib/postgresql/*/bin`, then
    /// `pg_config --bindir`, then next to `initdb` on the PATH.
    pub fn find() -> anyhow::Result<Self> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Ok(dir) = std::env::var("CAMPUS_PG_BINDIR") {
            candidates.push(dir.into());
        }
        if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
            let mut versions: Vec<(u32, PathBuf)> = entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    Some((
                        e.file_name().to_str()?.parse::<u32>().ok()?,
                        e.path().join("bin"),
                    ))
                })
                .collect();
            versions.sort_by_key(|v| std::cmp::Reverse(v.0));
            candidates.extend(versions.into_iter().map(|(_, p)| p));
        }
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
            if out.status.success() {
                candidates.push(String::from_utf8_lossy(&out.stdout).trim().into());
            }
        }
        if let Some(path) = std::env::var_os("PATH") {
            candidates.extend(std::env::split_paths(&path));
        }
        candidates
            .into_iter()
            .find(|dir| {
                ["initdb", "pg_ctl", "postgres"]
                    .iter()
                    .all(|b| dir.join(b).is_file())
            })
            .map(|bindir| Self { bindir })
            .context(INSTALL_HINT)
    }

    pub fn tool(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }
}

/// A running private cluster. Stopped by [`PrivatePostgres::stop`] (or on drop).
#[derive(Debug)]
pub struct PrivatePostgres {
    bins: PgBinaries,
    data: PathBuf,
    port: u16,
    run_as: Option<RunAs>,
    stopped: bool,
}

impl PrivatePostgres {
    /// Initialises `dir` on first use and starts the cluster on a free port on 127.0.0.1
    /// with trust authentication (it listens only on loopback).
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(dir, None)
    }

    /// Like [`PrivatePostgres::start`], with TLS on: the server presents `cert_pem` (its
    /// chain, PEM) with `key_pem` (its private key), and clients may connect with or without
    /// TLS. Given on the first start of `dir`, when the cluster is initialised.
    pub fn start_with_tls(dir: &Path, cert_pem: &str, key_pem: &str) -> anyhow::Result<Self> {
        Self::start_with(dir, Some((cert_pem, key_pem)))
    }

    fn start_with(dir: &Path, tls: Option<(&str, &str)>) -> anyhow::Result<Self> {
        let bins = PgBinaries::find()?;
        let run_as = user::unprivileged()?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = std::fs::canonicalize(dir)?;
        let data = match &run_as {
            Some(u) if !u.can_reach(&dir) => {
                // e.g. a demo folder under /root: the unprivileged user cannot enter it.
                let fallback = PathBuf::from("/var/lib/campus-demo").join(short_hash(&dir));
                tracing::warn!(
                    "{} is not reachable by the '{}' user Postgres runs as; keeping the cluster in {}",
                    dir.display(),
                    u.name,
                    fallback.display()
                );
                std::fs::create_dir_all(&fallback)?;
                std::fs::write(dir.join("CLUSTER_LOCATION"), fallback.display().to_string())?;
                fallback.join("pg")
            }
            _ => dir.join("pg"),
        };
        let pg = Self {
            bins,
            data,
            port: crate::free_port()?,
            run_as,
            stopped: false,
        };
        if !pg.data.join("PG_VERSION").exists() {
            pg.initdb()?;
            if let Some((cert, key)) = tls {
                pg.enable_tls(cert, key)?;
            }
        }
        pg.pg_ctl_start()?;
        Ok(pg)
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bins.tool(tool));
        if let Some(u) = &self.run_as {
            u.apply(&mut cmd);
        }
        cmd.env_remove("PGDATA");
        cmd
    }

    fn initdb(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.data)?;
        if let Some(u) = &self.run_as {
            u.own(self.data.parent().expect("data has a parent"))?;
        }
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(&self.data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ])
            .output()
            .context("running initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        // Sized for a laptop demo with 32 schools; production uses managed Postgres.
        let conf = "\n# campus demo\nlisten_addresses = '127.0.0.1'\nmax_connections = 200\nshared_buffers = 256MB\nfsync = on\nsynchronous_commit = off\nmax_wal_size = 1GB\nmax_locks_per_transaction = 256\n";
        let path = self.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&path)?;
        text.push_str(conf);
        std::fs::write(&path, text)?;
        Ok(())
    }

    fn enable_tls(&self, cert_pem: &str, key_pem: &str) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let cert = self.data.join("server.crt");
        let key = self.data.join("server.key");
        std::fs::write(&cert, cert_pem)?;
        std::fs::write(&key, key_pem)?;
        // Postgres refuses a key that others can read.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        if let Some(u) = &self.run_as {
            u.own(&cert)?;
            u.own(&key)?;
        }
        let path = self.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&path)?;
        text.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&path, text)?;
        Ok(())
    }

    fn pg_ctl_start(&self) -> anyhow::Result<()> {
        let sockets = self.data.join("sockets");
        std::fs::create_dir_all(&sockets)?;
        if let Some(u) = &self.run_as {
            u.own(&sockets)?;
        }
        let log = self.data.join("server.log");
        let out = self
            .command("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&log)
            .arg("-w")
            .args(["-t", "60"])
            .arg("-o")
            .arg(format!("-p {} -k {}", self.port, sockets.display()))
            .output()
            .context("running pg_ctl start")?;
        if !out.status.success() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(10).collect();
            bail!(
                "Postgres did not start: {}\n{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    pub fn binaries(&self) -> &PgBinaries {
        &self.bins
    }

    /// A URL for database `db` as the superuser `postgres`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Stops the cluster (fast shutdown: open sessions are ended, data is safe).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let out = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "-t", "30"])
            .output()?;
        if !out.status.success() {
            bail!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Waits until the server accepts connections (pg_ctl -w already does; this is for
    /// callers that connect immediately over TCP).
    pub fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "Postgres on port {} did not accept connections in {timeout:?}",
            self.port
        )
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(error = %e, "stopping the private Postgres cluster");
        }
    }
}

fn short_hash(path: &Path) -> String {
    // FNV-1a: stable across runs and platforms, enough to keep demo folders apart.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}
