//! A throwaway platform for one benchmark: a fresh database on the shared Postgres server,
//! a role prefix of its own, the embedded S3 server and a [`Platform`] wired to both. The
//! S3 server runs in the benchmark's process, or, for benchmarks that measure the
//! platform's memory, in a child process of its own ([`S3Placement::OwnProcess`]), as a
//! production S3 service would.
//!
//! Everything is created with the benchmark process's id in its name so that two runs
//! (or a run and the integration tests, which use `campus_it_*` and `it<pid>x*`) never
//! collide, and so that leftovers of a crashed run can be recognised and swept later.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use campus_devstack::EmbeddedS3;
use campus_tenant::lifecycle::{Onboarded, Platform, SchoolSpec, SchoolUrls};
use campus_tenant::{migrate, ObjectStore, RolePrefix, Slug};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// The base domain every benchmark school lives under.
pub const BASE_DOMAIN: &str = "campus.test";

const DB_PREFIX: &str = "campus_bench_";
const S3_KEY: &str = "bench-access";
const S3_SECRET: &str = "bench-secret-key";
const BUCKET: &str = "campus";

/// Where a [`World`]'s S3 server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3Placement {
    /// In the benchmark's process (cheapest; most benchmarks).
    InProcess,
    /// In a `campus-bench s3-server` child process, so that the benchmark process's
    /// memory is the platform's (and the client's) alone.
    OwnProcess,
}

/// A running S3 server; dropping it stops the server.
enum S3Server {
    InProcess(EmbeddedS3),
    // `kill_on_drop` kills the child with the world; its stdin (kept open in `Child`)
    // closes when this process ends in any other way, and the child then exits too.
    OwnProcess {
        endpoint: String,
        child: tokio::process::Child,
    },
}

impl S3Server {
    async fn start(placement: S3Placement, root: &Path) -> Result<Self> {
        Ok(match placement {
            S3Placement::InProcess => Self::InProcess(
                EmbeddedS3::start(root, "127.0.0.1:0".parse()?, S3_KEY, S3_SECRET).await?,
            ),
            S3Placement::OwnProcess => {
                let mut child = tokio::process::Command::new(std::env::current_exe()?)
                    .arg("s3-server")
                    .arg("--root")
                    .arg(root)
                    .args(["--port", "0"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .context("starting campus-bench s3-server")?;
                let stdout = child.stdout.take().context("no stdout")?;
                let endpoint = tokio::time::timeout(
                    Duration::from_secs(30),
                    BufReader::new(stdout).lines().next_line(),
                )
                .await
                .context("campus-bench s3-server printed no endpoint within 30 s")??
                .context("campus-bench s3-server exited before printing its endpoint")?;
                Self::OwnProcess { endpoint, child }
            }
        })
    }

    fn endpoint(&self) -> String {
        match self {
            Self::InProcess(s3) => s3.endpoint(),
            Self::OwnProcess { endpoint, .. } => endpoint.clone(),
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Self::InProcess(_) => None,
            Self::OwnProcess { child, .. } => child.id(),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct S3ServerArgs {
    /// Folder holding the objects (created if missing).
    #[arg(long)]
    pub root: PathBuf,
    /// Port on 127.0.0.1 (0 for any free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

/// `campus-bench s3-server`: serves the embedded S3 server with the benchmarks' keys,
/// prints its endpoint as the first line on stdout, and stops when stdin closes (when the
/// benchmark that started it ends, however it ends).
pub async fn serve_s3(args: S3ServerArgs) -> Result<()> {
    let s3 = EmbeddedS3::start(
        &args.root,
        ([127, 0, 0, 1], args.port).into(),
        S3_KEY,
        S3_SECRET,
    )
    .await?;
    println!("{}", s3.endpoint());
    let mut sink = Vec::new();
    tokio::io::stdin().read_to_end(&mut sink).await?;
    Ok(())
}

/// One benchmark's database, storage and platform. Call [`World::destroy`] when done:
/// roles are global to the Postgres cluster and outlive the database unless dropped.
pub struct World {
    server_url: String,
    db_name: String,
    role_prefix: String,
    pub pool: PgPool,
    pub platform: Platform,
    // Kept alive for the benchmark's duration: dropping either stops the S3 server or
    // deletes its files.
    s3: S3Server,
    _dir: tempfile::TempDir,
}

/// `url` with its database replaced by `db`.
fn with_database(url: &str, db: &str) -> Result<String> {
    let (base, _) = url
        .rsplit_once('/')
        .context("the database URL has no /<database> part")?;
    Ok(format!("{base}/{db}"))
}

async fn admin_pool(server_url: &str) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(1)
        .connect(server_url)
        .await
        .with_context(|| format!("connecting to {server_url} (is Postgres running?)"))
}

fn pid_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// Drops databases and roles left by benchmark runs whose process is gone (killed runs
/// never reach [`World::destroy`]); those of live runs are left alone.
async fn sweep_leftovers(admin: &PgPool) -> Result<()> {
    let dbs: Vec<String> =
        sqlx::query_scalar("select datname from pg_database where starts_with(datname, $1)")
            .bind(DB_PREFIX)
            .fetch_all(admin)
            .await?;
    for db in dbs {
        let pid = db[DB_PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| !pid_alive(p)) {
            eprintln!("sweeping database {db} left by an earlier run");
            sqlx::query(&format!("drop database if exists \"{db}\" with (force)"))
                .execute(admin)
                .await?;
        }
    }
    // Role names are b<pid><letter>_school_<slug>; see `World::create`.
    let roles: Vec<String> =
        sqlx::query_scalar("select rolname from pg_roles where rolname ~ '^b[0-9]+[a-z]_school_'")
            .fetch_all(admin)
            .await?;
    let mut swept = 0;
    for role in roles {
        let pid = role[1..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| !pid_alive(p)) {
            sqlx::query(&format!("drop role if exists \"{role}\""))
                .execute(admin)
                .await?;
            swept += 1;
        }
    }
    if swept > 0 {
        eprintln!("swept {swept} roles left by earlier runs");
    }
    Ok(())
}

impl World {
    /// Creates the database `campus_bench_<pid>_<tag>` with the `public` schema migrated,
    /// starts the embedded S3 server where `s3` says and creates its bucket. `tag` is one
    /// lowercase letter naming the benchmark; `pool_size` bounds the platform's connections.
    pub async fn create(
        server_url: &str,
        tag: char,
        pool_size: u32,
        s3: S3Placement,
    ) -> Result<Self> {
        anyhow::ensure!(tag.is_ascii_lowercase(), "tag must be a lowercase letter");
        let admin = admin_pool(server_url).await?;
        sweep_leftovers(&admin).await?;
        let pid = std::process::id();
        let db_name = format!("{DB_PREFIX}{pid}_{tag}");
        // The letter after the pid keeps the benchmarks of one process apart; the whole
        // prefix stays far below RolePrefix's 24-character limit.
        let role_prefix = format!("b{pid}{tag}_");
        sqlx::query(&format!(
            "drop database if exists \"{db_name}\" with (force)"
        ))
        .execute(&admin)
        .await?;
        sqlx::query(&format!("create database \"{db_name}\""))
            .execute(&admin)
            .await?;
        admin.close().await;

        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(Duration::from_secs(60))
            .connect(&with_database(server_url, &db_name)?)
            .await?;
        migrate::migrate_public(&pool).await?;

        let dir = tempfile::tempdir()?;
        let s3 = S3Server::start(s3, &dir.path().join("s3")).await?;
        let client = campus::runtime::s3_client(&campus::Config {
            s3_endpoint: Some(s3.endpoint()),
            s3_access_key: Some(S3_KEY.into()),
            s3_secret_key: Some(S3_SECRET.into()),
            ..Default::default()
        })
        .await;
        let store = ObjectStore::new(client, BUCKET);
        store.ensure_bucket().await?;

        let platform = Platform {
            pool: pool.clone(),
            store,
            role_prefix: RolePrefix::parse(&role_prefix).map_err(anyhow::Error::msg)?,
            urls: SchoolUrls {
                scheme: "http".into(),
                base_domain: BASE_DOMAIN.into(),
                port: None,
            },
            delete_grace: Duration::from_secs(30 * 86_400),
            invitation_ttl: Duration::from_secs(14 * 86_400),
        };
        Ok(Self {
            server_url: server_url.to_owned(),
            db_name,
            role_prefix,
            pool,
            platform,
            s3,
            _dir: dir,
        })
    }

    /// The S3 server's process id when it runs in a process of its own.
    pub fn s3_pid(&self) -> Option<u32> {
        self.s3.pid()
    }

    /// A configuration that serves the whole platform (`campus::Services`) on this world's
    /// database, storage and role prefix, so that schools onboarded through
    /// [`World::onboard`] are the platform's own. Other settings are the defaults.
    pub fn config(&self) -> Result<campus::Config> {
        Ok(campus::Config {
            base_domain: BASE_DOMAIN.into(),
            database_url: Some(with_database(&self.server_url, &self.db_name)?),
            role_prefix: self.role_prefix.clone(),
            s3_endpoint: Some(self.s3.endpoint()),
            s3_access_key: Some(S3_KEY.into()),
            s3_secret_key: Some(S3_SECRET.into()),
            s3_bucket: BUCKET.into(),
            // These benchmarks measure the platform's own speed; the rate limits are measured
            // by the load tests (run-load.sh), so here they are set out of the way.
            person_requests_per_second: 10_000,
            person_burst: 100_000,
            gate_requests_per_second: 100_000,
            form_requests_per_minute: 100_000,
            ..Default::default()
        })
    }

    /// Onboards one school on the standard plan, exactly as the admin API would.
    pub async fn onboard(&self, slug: &str) -> Result<Onboarded> {
        let spec = SchoolSpec {
            slug: Slug::parse(slug)?,
            name: format!("Benchmark school {slug}"),
            plan: "standard".into(),
            hostnames: vec![],
        };
        let onboarded = self.platform.onboard(&spec, "bench").await?;
        // Out of the way of the benchmarks (see `config`).
        sqlx::query(
            "update public.tenants set requests_per_second = 100000, burst = 100000 where slug = $1",
        )
        .bind(slug)
        .execute(&self.pool)
        .await?;
        let tenant = campus_tenant::registry::get(&self.pool, &spec.slug).await?;
        Ok(Onboarded {
            tenant,
            ..onboarded
        })
    }

    /// Drops the database (and every school schema in it) and then every role this
    /// benchmark created. Roles must go after the database: they own its schemas.
    pub async fn destroy(&self) -> Result<()> {
        self.pool.close().await;
        let admin = admin_pool(&self.server_url).await?;
        sqlx::query(&format!(
            "drop database if exists \"{}\" with (force)",
            self.db_name
        ))
        .execute(&admin)
        .await?;
        let roles: Vec<String> =
            sqlx::query_scalar("select rolname from pg_roles where starts_with(rolname, $1)")
                .bind(&self.role_prefix)
                .fetch_all(&admin)
                .await?;
        for role in &roles {
            sqlx::query(&format!("drop role if exists \"{role}\""))
                .execute(&admin)
                .await?;
        }
        admin.close().await;
        eprintln!(
            "cleaned up: database {} and {} roles dropped",
            self.db_name,
            roles.len()
        );
        Ok(())
    }
}

/// Runs `bench` against a fresh [`World`] and always destroys the world afterwards, also
/// when the benchmark fails, so that a failed run leaves no databases or roles behind.
pub async fn with_world<F, Fut>(
    server_url: &str,
    tag: char,
    pool_size: u32,
    bench: F,
) -> Result<String>
where
    F: FnOnce(Arc<World>) -> Fut,
    Fut: std::future::Future<Output = Result<String>>,
{
    with_world_s3(server_url, tag, pool_size, S3Placement::InProcess, bench).await
}

/// [`with_world`] with the S3 server where `s3` says.
pub async fn with_world_s3<F, Fut>(
    server_url: &str,
    tag: char,
    pool_size: u32,
    s3: S3Placement,
    bench: F,
) -> Result<String>
where
    F: FnOnce(Arc<World>) -> Fut,
    Fut: std::future::Future<Output = Result<String>>,
{
    let world = Arc::new(World::create(server_url, tag, pool_size, s3).await?);
    let result = bench(Arc::clone(&world)).await;
    let cleanup = world.destroy().await;
    // The benchmark's own error matters more than a cleanup error; report both.
    match (result, cleanup) {
        (Ok(out), Ok(())) => Ok(out),
        (Err(e), Ok(())) => Err(e),
        (Ok(_), Err(c)) => Err(c.context("cleaning up the benchmark database")),
        (Err(e), Err(c)) => {
            eprintln!("cleanup failed too: {c:#}");
            Err(e)
        }
    }
}
