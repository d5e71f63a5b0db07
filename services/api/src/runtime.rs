//! Connections to the outside world, built once from [`Config`]: the Postgres pool, the S3
//! client, the tenant resolver and the lifecycle handle.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use campus_tenant::lifecycle::{Platform, SchoolUrls};
use campus_tenant::routing::Resolver;
use campus_tenant::{Db, ObjectStore};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::config::Config;

/// Everything a running instance shares between requests and workers.
#[derive(Clone, Debug)]
pub struct Services {
    pub cfg: Arc<Config>,
    /// The pool for shared tables (always a direct connection).
    pub pool: PgPool,
    pub db: Db,
    pub store: ObjectStore,
    pub platform: Platform,
    pub resolver: Arc<Resolver>,
    pub identity: campus_identity::IdentityState,
    /// The notification workers' shared state (run only by the notify role).
    pub notifier: Arc<campus_notify::worker::Notifier>,
    /// Every Prometheus instrument of this instance, served on `/metrics`.
    pub metrics: prometheus::Registry,
    /// Request rate limits per school, person and client address.
    pub limits: campus_limits::Limits,
    /// Request counts and latencies per school and route.
    pub http_metrics: crate::metrics::HttpMetrics,
}

/// Connection options; behind PgBouncer in transaction mode the statement cache is off,
/// because a cached statement lives on a server connection the next transaction may not get.
pub fn pg_options(url: &str, pgbouncer: bool) -> anyhow::Result<PgConnectOptions> {
    let opts: PgConnectOptions = url
        .parse()
        .with_context(|| "DATABASE_URL is not a valid Postgres URL".to_string())?;
    let opts = opts.application_name("campus");
    Ok(if pgbouncer {
        opts.statement_cache_capacity(0)
    } else {
        opts
    })
}

/// Pool options shared by every pool: a connection is checked with a round trip before use
/// only after it has sat idle for a while (a restarted server or a dropped link shows up
/// there), not on every check-out, where the check would cost as much as a short query.
fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

const IDLE_BEFORE_PING: Duration = Duration::from_secs(10);

pub async fn connect_pool(cfg: &Config) -> anyhow::Result<PgPool> {
    let opts = pg_options(cfg.database_url()?, cfg.database_pgbouncer)?;
    pool_options()
        .max_connections(cfg.database_max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(cfg.database_acquire_timeout_secs))
        .connect_with(opts)
        .await
        .context("connecting to Postgres (check DATABASE_URL and that the server is running)")
}

pub async fn s3_client(cfg: &Config) -> aws_sdk_s3::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(cfg.s3_region.clone()));
    if let (Some(ak), Some(sk)) = (&cfg.s3_access_key, &cfg.s3_secret_key) {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            ak,
            sk,
            None,
            None,
            "campus-config",
        ));
    }
    if let Some(endpoint) = &cfg.s3_endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let shared = loader.load().await;
    let s3 = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(cfg.s3_force_path_style)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

impl Services {
    /// Connects to Postgres and S3. Behind PgBouncer (`database_pgbouncer`), school
    /// transactions use `database_url` (the pooler) and everything else a small direct pool
    /// on `database_direct_url`.
    pub async fn connect(cfg: Config) -> anyhow::Result<Self> {
        if cfg.database_pgbouncer {
            let school_pool = connect_pool(&cfg).await?;
            let direct = pg_options(cfg.direct_database_url()?, false)?;
            let shared_pool = pool_options()
                .max_connections(cfg.database_direct_max_connections)
                .acquire_timeout(Duration::from_secs(cfg.database_acquire_timeout_secs))
                .connect_with(direct)
                .await
                .context("connecting to Postgres directly (database_direct_url)")?;
            let db = Db::behind_pgbouncer(school_pool, shared_pool.clone())
                .with_school_wait(Duration::from_secs(cfg.database_acquire_timeout_secs));
            return Self::assemble(cfg, shared_pool, db).await;
        }
        let pool = connect_pool(&cfg).await?;
        Self::with_pool(cfg, pool).await
    }

    /// Builds the services on an existing, directly connected pool, which serves shared
    /// queries. School transactions get a pool of their own of the same size and
    /// connection options, opened lazily: its connections are kept for the school they
    /// last served ([`campus_tenant::affinity`]), which only works if nothing else waits
    /// on that pool.
    pub async fn with_pool(cfg: Config, pool: PgPool) -> anyhow::Result<Self> {
        let timeout = Duration::from_secs(cfg.database_acquire_timeout_secs);
        let school_pool = pool_options()
            .max_connections(pool.options().get_max_connections())
            .acquire_timeout(timeout)
            .connect_lazy_with((*pool.connect_options()).clone());
        let db = Db::with_affinity(school_pool, pool.clone()).with_school_wait(timeout);
        Self::assemble(cfg, pool, db).await
    }

    async fn assemble(cfg: Config, pool: PgPool, db: Db) -> anyhow::Result<Self> {
        let store = ObjectStore::new(s3_client(&cfg).await, cfg.s3_bucket.clone());
        let resolver = Resolver::new(
            pool.clone(),
            &cfg.base_domain,
            Duration::from_secs(cfg.host_cache_ttl_secs),
            cfg.host_cache_capacity,
        );
        let platform = Platform {
            pool: pool.clone(),
            store: store.clone(),
            role_prefix: cfg.role_prefix(),
            urls: SchoolUrls {
                scheme: cfg.public_scheme.clone(),
                base_domain: cfg.base_domain.to_ascii_lowercase(),
                port: cfg.public_port,
            },
            delete_grace: cfg.delete_grace(),
            invitation_ttl: Duration::from_secs(cfg.invitation_ttl_days * 86_400),
        };
        let identity = campus_identity::IdentityState {
            pool: pool.clone(),
            hasher: campus_identity::Hasher::new(cfg.password_hash_concurrency),
            sessions: campus_identity::SessionStore::new(
                pool.clone(),
                Duration::from_secs(cfg.session_hours.max(1) * 3600),
            ),
            members: campus_identity::Members::new(pool.clone()),
            login_limits: campus_identity::limits::LoginLimits::new(cfg.login_attempts_per_minute),
            proxies: cfg.trusted_proxies().map_err(anyhow::Error::msg)?,
            secure_cookies: cfg.public_scheme == "https",
            urls: platform.urls.clone(),
            sms: county_webhook(&cfg).map(campus_identity::otp::Sms::new),
            mail: cfg
                .smtp_url
                .as_deref()
                .map(|url| {
                    campus_notify::channels::Email::new(url, &cfg.smtp_from, 2, &cfg.base_domain)
                })
                .transpose()?,
            sealing: cfg
                .notify_secret_key
                .as_deref()
                .and_then(|k| campus_notify::secret::SealingKey::from_hex(k).ok()),
            require_second_factor_bureau: cfg.require_second_factor_bureau,
        };
        let metrics = prometheus::Registry::new();
        // Commits that queue notifications wake the workers of every instance afterwards.
        let wake = campus_notify::queue::doorbell(pool.clone());
        let db = db.with_wake(wake.clone());
        let notify_db = if cfg.roles.contains(&crate::config::Role::Notify) {
            notify_db(&cfg)?.with_wake(wake)
        } else {
            db.clone()
        };
        let notifier = Arc::new(notifier(&cfg, notify_db, platform.urls.clone(), &metrics)?);
        let limits = campus_limits::Limits::new(cfg.limit_settings(), &metrics)?;
        let http_metrics = crate::metrics::HttpMetrics::register(&metrics)?;
        crate::metrics::register_runtime(&metrics, &db, &resolver, &limits)?;
        Ok(Self {
            limits,
            http_metrics,
            identity,
            notifier,
            metrics,
            cfg: Arc::new(cfg),
            db,
            pool,
            store,
            platform,
            resolver,
        })
    }

    /// What schools' own provider addresses may be.
    pub fn webhook_guard(&self) -> campus_notify::guard::WebhookGuard {
        self.cfg.webhook_guard().unwrap_or_default()
    }

    /// The key that seals schools' provider secrets, if configured.
    pub fn sealing_key(&self) -> Option<campus_notify::secret::SealingKey> {
        self.cfg
            .notify_secret_key
            .as_deref()
            .and_then(|k| campus_notify::secret::SealingKey::from_hex(k).ok())
    }

    /// A small separate pool for LISTEN, on the direct URL (LISTEN does not survive
    /// PgBouncer's transaction pooling).
    pub async fn listen_pool(&self) -> anyhow::Result<PgPool> {
        let opts = pg_options(self.cfg.direct_database_url()?, false)?;
        Ok(PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(opts))
    }
}

/// The notification workers' own connections and school permits, so that a burst of
/// requests at a school can never take the connections or permits its delivery turns
/// need: a gate alert goes out however busy the web side is.
fn notify_db(cfg: &Config) -> anyhow::Result<Db> {
    // Each worker loop uses one at a time; the spare ones serve folds and the listener.
    let size = u32::try_from(cfg.notify_workers)
        .unwrap_or(u32::MAX)
        .saturating_mul(2)
        .saturating_add(2);
    let timeout = Duration::from_secs(cfg.database_acquire_timeout_secs);
    let school = pool_options()
        .max_connections(size)
        .acquire_timeout(timeout)
        .connect_lazy_with(pg_options(cfg.database_url()?, cfg.database_pgbouncer)?);
    Ok(if cfg.database_pgbouncer {
        let shared = pool_options()
            .max_connections(size)
            .acquire_timeout(timeout)
            .connect_lazy_with(pg_options(cfg.direct_database_url()?, false)?);
        Db::behind_pgbouncer(school, shared)
    } else {
        Db::new(school)
    })
}

/// The county's SMS/WeChat provider webhook, if configured: the notification workers' and
/// the one-time codes' SMS channel.
fn county_webhook(cfg: &Config) -> Option<campus_notify::channels::Webhook> {
    match (&cfg.notify_webhook_url, &cfg.notify_webhook_secret) {
        (Some(url), Some(secret)) => Some(campus_notify::channels::Webhook {
            url: url.clone(),
            key_id: "county".into(),
            secret: secret.clone(),
        }),
        _ => None,
    }
}

fn notifier(
    cfg: &Config,
    db: Db,
    urls: SchoolUrls,
    registry: &prometheus::Registry,
) -> anyhow::Result<campus_notify::worker::Notifier> {
    use campus_notify::channels::Email;
    let email = cfg
        .smtp_url
        .as_deref()
        .map(|url| Email::new(url, &cfg.smtp_from, cfg.smtp_pool_size, &cfg.base_domain))
        .transpose()?;
    let county_webhook = county_webhook(cfg);
    let sealing = cfg
        .notify_secret_key
        .as_deref()
        .map(campus_notify::secret::SealingKey::from_hex)
        .transpose()?;
    let settings = campus_notify::worker::WorkerSettings {
        batch: cfg.notify_batch,
        lease_secs: cfg.notify_lease_secs,
        max_attempts: cfg.notify_max_attempts,
        retry_base_secs: cfg.notify_retry_base_secs,
        ..Default::default()
    };
    let metrics = campus_notify::metrics::Metrics::register(registry)?;
    Ok(campus_notify::worker::Notifier::new(
        db,
        settings,
        urls,
        campus_notify::worker::Transports {
            email,
            county_webhook,
            sealing,
            guard: cfg.webhook_guard().map_err(anyhow::Error::msg)?,
        },
        metrics,
    ))
}
