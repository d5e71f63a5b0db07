//! PgBouncer in transaction-pooling mode in front of a Postgres server: the classic setup
//! in which schema-per-tenant platforms leak one tenant's session state into another's
//! request. Tests run the isolation suite through it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::user;

const INSTALL_HINT: &str =
    "pgbouncer was not found. On Debian/Ubuntu run `sudo apt-get install -y pgbouncer` \
(the test script does this when run as root), or set CAMPUS_PGBOUNCER to its path.";

/// A running PgBouncer; killed when dropped.
#[derive(Debug)]
pub struct PgBouncer {
    port: u16,
    child: tokio::process::Child,
    _dir: tempfile_dir::Dir,
}

mod tempfile_dir {
    /// A scratch folder removed on drop (kept small: no extra dependency for one folder).
    #[derive(Debug)]
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn find() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("CAMPUS_PGBOUNCER") {
        return Ok(p.into());
    }
    [
        "/usr/sbin/pgbouncer",
        "/usr/bin/pgbouncer",
        "/usr/local/bin/pgbouncer",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .context(INSTALL_HINT)
}

impl PgBouncer {
    /// Starts PgBouncer on a free loopback port, forwarding every database to
    /// `upstream_host:upstream_port` with `pool_size` server connections per database —
    /// small on purpose, so many client connections share few server connections.
    pub async fn start(
        upstream_host: &str,
        upstream_port: u16,
        pool_size: u32,
    ) -> anyhow::Result<Self> {
        let bin = find()?;
        let port = crate::free_port()?;
        let dir =
            std::env::temp_dir().join(format!("campus-pgbouncer-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let dir = tempfile_dir::Dir(dir);
        let ini = format!(
            "[databases]\n* = host={upstream_host} port={upstream_port}\n\n[pgbouncer]\n\
             listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
             auth_type = trust\nauth_file = {auth}\npool_mode = transaction\n\
             default_pool_size = {pool_size}\nmax_client_conn = 1000\n\
             ignore_startup_parameters = extra_float_digits,options\n\
             logfile = {log}\npidfile = {pid}\nadmin_users = postgres\n",
            auth = dir.0.join("users.txt").display(),
            log = dir.0.join("pgbouncer.log").display(),
            pid = dir.0.join("pgbouncer.pid").display(),
        );
        std::fs::write(dir.0.join("pgbouncer.ini"), ini)?;
        std::fs::write(dir.0.join("users.txt"), "\"postgres\" \"\"\n")?;
        let run_as = user::unprivileged()?;
        if let Some(u) = &run_as {
            u.own(&dir.0)?;
        }
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg(dir.0.join("pgbouncer.ini")).kill_on_drop(true);
        if let Some(u) = &run_as {
            u.apply_tokio(&mut cmd);
        }
        let mut child = cmd.spawn().context("starting pgbouncer")?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(dir.0.join("pgbouncer.log")).unwrap_or_default();
                bail!("pgbouncer exited with {status}: {log}");
            }
            if tokio::time::Instant::now() > deadline {
                bail!("pgbouncer did not listen on port {port} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            port,
            child,
            _dir: dir,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for database `db` through PgBouncer.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
