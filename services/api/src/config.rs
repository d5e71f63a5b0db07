//! Configuration: compiled-in defaults, then an optional TOML file, then `CAMPUS_*`
//! environment variables (plus the conventional `DATABASE_URL`). Validated once at start
//! with errors that name the setting. Every setting is documented in the README.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use campus_tenant::{Hostname, RolePrefix};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Which parts of the platform this instance runs (`campus serve --roles web,maintenance`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Serves HTTP: school sites, the county site, the admin API.
    Web,
    /// Housekeeping: purges schools whose deletion grace period has ended, and runs each
    /// school's daily jobs (register reminders, gate absence alerts) when they are due.
    Maintenance,
    /// Delivers notifications by email, SMS and WeChat from the outbox.
    Notify,
    /// Makes previews of uploaded files (images, PDF, office documents) in sandboxed
    /// subprocesses, one conversion per core.
    Preview,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address `campus serve` listens on.
    pub bind: SocketAddr,
    /// Roles this instance runs.
    pub roles: Vec<Role>,
    /// The county's domain: schools answer on `<slug>.<base_domain>`, the dashboard on
    /// `county.<base_domain>`.
    pub base_domain: String,
    /// Scheme used in links the platform prints or mails (`https` behind TLS).
    pub public_scheme: String,
    /// Port used in links, when it is not the scheme's default.
    pub public_port: Option<u16>,
    /// Postgres URL for queries (may point at PgBouncer in transaction mode).
    pub database_url: Option<String>,
    /// Direct Postgres URL for LISTEN/NOTIFY and `pg_dump` (defaults to `database_url`).
    pub database_direct_url: Option<String>,
    /// Set when `database_url` goes through PgBouncer in transaction pooling mode: turns
    /// off the client's prepared-statement cache, which such poolers cannot support.
    pub database_pgbouncer: bool,
    pub database_max_connections: u32,
    /// Size of the direct pool used for shared tables when `database_pgbouncer` is set.
    pub database_direct_max_connections: u32,
    /// Seconds to wait for a pooled connection before failing a request.
    pub database_acquire_timeout_secs: u64,
    /// Prefix of every per-school Postgres role (roles are global to a cluster).
    pub role_prefix: String,
    /// S3 endpoint; unset means AWS S3 with the default credential chain.
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    pub s3_bucket: String,
    pub s3_access_key: Option<String>,
    pub s3_secret_key: Option<String>,
    /// Path-style addressing (needed by most S3-compatible stores).
    pub s3_force_path_style: bool,
    /// Seconds a host → school resolution stays cached (changes are also pushed).
    pub host_cache_ttl_secs: u64,
    /// Most hosts kept in the cache (bounds memory under random-host floods).
    pub host_cache_capacity: u64,
    /// Days a deleted school can be resumed before it is purged.
    pub delete_grace_days: u64,
    /// Days an invitation link stays valid.
    pub invitation_ttl_days: u64,
    /// Schools migrated at once by `campus migrate`.
    pub migrate_concurrency: usize,
    /// An admin API token to make sure exists (stored hashed); convenient for Terraform
    /// bootstraps. Prefer `campus admin-token create`.
    pub admin_token: Option<String>,
    /// `text` or `json` log lines.
    pub log_format: String,
    /// Seconds between maintenance passes (purging expired deletions).
    pub maintenance_interval_secs: u64,
    /// Seconds between looks for schools' daily jobs that are due (register reminders, gate
    /// absence alerts).
    pub schedule_interval_secs: u64,
    /// Seconds between the maintenance role's passes that bring the county dashboard's
    /// rollups up to date (the dashboard is at most about this far behind).
    pub metrics_interval_secs: u64,
    /// Pupil counts below this (but above zero) are withheld from the education bureau's
    /// dashboard; 0 shows everything.
    pub dashboard_min_cell: i64,
    /// Hours a sign-in lasts.
    pub session_hours: u64,
    /// Password hashes computed at once (each takes ~19 MiB and a core for tens of ms).
    /// Half the machine's cores by default, at least one: a burst of sign-ins then takes
    /// at most half the CPU, and every other request the rest.
    pub password_hash_concurrency: usize,
    /// Sign-in attempts allowed per client address per minute (half of it, at least 10,
    /// per login name).
    pub login_attempts_per_minute: u32,
    /// Bureau accounts must sign in with a second factor (TOTP) on the county host.
    pub require_second_factor_bureau: bool,
    /// Take client addresses from `X-Forwarded-For` of any peer (only when nothing but the
    /// load balancer can reach the instance; prefer `trusted_proxies`).
    pub trust_forwarded_for: bool,
    /// Addresses or networks (`10.0.0.0/8`) of the load balancers whose `X-Forwarded-For`
    /// is believed; from any other peer the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Requests per second of one signed-in person on one school's site.
    pub person_requests_per_second: u32,
    /// Requests one person may send at once above that rate.
    pub person_burst: u32,
    /// Sign-in, join and invitation requests per minute from one client address to one site.
    pub form_requests_per_minute: u32,
    /// Gate device uploads per second from one client address to one school.
    pub gate_requests_per_second: u32,
    /// Where email goes: `smtp://host:25`, `smtp://user:pass@host:587?tls=required` or
    /// `smtps://user:pass@host:465`. Unset: no email channel.
    pub smtp_url: Option<String>,
    /// The From address of notification mail.
    pub smtp_from: String,
    /// SMTP connections kept open per instance. Each message waits a round trip or two on
    /// the server (and its end-of-data on the server's delayed ACK), so throughput grows with
    /// connections; relays commonly allow 50 per client.
    pub smtp_pool_size: u32,
    /// The county's SMS/WeChat provider webhook (signed POSTs). Unset: schools need their own.
    pub notify_webhook_url: Option<String>,
    /// HMAC key for the county's provider webhook.
    pub notify_webhook_secret: Option<String>,
    /// `address:port` pairs a school's own provider address may resolve to although they
    /// are loopback, private or otherwise internal (e.g. `["10.2.0.8:8080"]`, a county
    /// gateway). Every other internal address is refused for schools.
    pub notify_webhook_allow: Vec<String>,
    /// 64 hex digits: the key that seals schools' own provider secrets in the database.
    pub notify_secret_key: Option<String>,
    /// Delivery worker loops per instance running the notify role.
    pub notify_workers: usize,
    /// Deliveries a worker claims per turn.
    pub notify_batch: u32,
    /// Seconds a claimed delivery is reserved for its worker before it is retried.
    pub notify_lease_secs: u64,
    /// Attempts before a delivery is dead (an admin may retry it).
    pub notify_max_attempts: i32,
    /// First retry delay in seconds (doubled per attempt, with jitter, up to an hour).
    pub notify_retry_base_secs: u64,
    /// Conversions the preview role runs at once (0: one per core).
    pub preview_workers: usize,
    /// Seconds one conversion step (LibreOffice, pdftoppm, image decoding) may take.
    pub preview_timeout_secs: u64,
    /// Address-space limit of a conversion subprocess, in MB.
    pub preview_memory_mb: u64,
    /// Pages of a document rendered at most.
    pub preview_max_pages: u32,
    /// How conversion subprocesses are isolated: `bwrap` (bubblewrap namespaces; without a
    /// working bwrap, PDF and office files are not previewed) or `none`.
    pub preview_sandbox: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: "0.0.0.0:8080".parse().expect("valid address"),
            roles: vec![Role::Web, Role::Maintenance, Role::Notify, Role::Preview],
            base_domain: "localhost".into(),
            public_scheme: "http".into(),
            public_port: None,
            database_url: None,
            database_direct_url: None,
            database_pgbouncer: false,
            database_max_connections: 20,
            database_direct_max_connections: 5,
            database_acquire_timeout_secs: 5,
            role_prefix: "campus_".into(),
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_bucket: "campus".into(),
            s3_access_key: None,
            s3_secret_key: None,
            s3_force_path_style: true,
            host_cache_ttl_secs: 60,
            host_cache_capacity: 100_000,
            delete_grace_days: 30,
            invitation_ttl_days: 14,
            migrate_concurrency: 8,
            admin_token: None,
            log_format: "text".into(),
            maintenance_interval_secs: 3600,
            schedule_interval_secs: 60,
            metrics_interval_secs: 15,
            dashboard_min_cell: 5,
            session_hours: 12,
            password_hash_concurrency: std::thread::available_parallelism()
                .map_or(1, |n| (n.get() / 2).max(1)),
            login_attempts_per_minute: 20,
            require_second_factor_bureau: false,
            trust_forwarded_for: false,
            trusted_proxies: Vec::new(),
            person_requests_per_second: 10,
            person_burst: 30,
            form_requests_per_minute: 60,
            gate_requests_per_second: 20,
            smtp_url: None,
            smtp_from: "County Campus Cloud <noreply@localhost>".into(),
            smtp_pool_size: 32,
            notify_webhook_url: None,
            notify_webhook_secret: None,
            notify_webhook_allow: Vec::new(),
            notify_secret_key: None,
            notify_workers: 4,
            notify_batch: 200,
            notify_lease_secs: 60,
            notify_max_attempts: 8,
            notify_retry_base_secs: 10,
            preview_workers: 0,
            preview_timeout_secs: 60,
            preview_memory_mb: 2048,
            preview_max_pages: 30,
            preview_sandbox: "bwrap".into(),
        }
    }
}

impl Config {
    /// Defaults → `file` (if given) → `CAMPUS_*` and `DATABASE_URL` from the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            anyhow::ensure!(
                path.is_file(),
                "configuration file {} does not exist",
                path.display()
            );
            fig = fig.merge(Toml::file(path));
        }
        let known = Self::setting_names();
        fig = fig.merge(Env::raw().only(&["DATABASE_URL"])).merge(
            Env::prefixed("CAMPUS_").filter(move |key| known.iter().any(|k| key == k.as_str())),
        );
        let cfg: Config = fig
            .extract()
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The name of every setting, as used in the file and (upper-cased, `CAMPUS_`-prefixed)
    /// in the environment.
    pub fn setting_names() -> Vec<String> {
        match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// `CAMPUS_*` environment variables that are neither a setting nor one of the helper
    /// variables the tools read: most likely typos, worth a warning.
    pub fn unknown_env_vars() -> Vec<String> {
        const HELPERS: &[&str] = &[
            "CONFIG",
            "TEST_DATABASE_URL",
            "TEST_PGDATA",
            "PG_BINDIR",
            "PGBOUNCER",
            "SCREENSHOTS",
        ];
        let known = Self::setting_names();
        std::env::vars()
            .filter_map(|(k, _)| k.strip_prefix("CAMPUS_").map(str::to_owned))
            .filter(|k| {
                !HELPERS.contains(&k.as_str()) && !known.iter().any(|n| n.eq_ignore_ascii_case(k))
            })
            .map(|k| format!("CAMPUS_{k}"))
            .collect()
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (0..=100).contains(&self.dashboard_min_cell),
            "dashboard_min_cell must be between 0 and 100 (pupil counts below it are withheld from the bureau)"
        );
        let base = Hostname::parse(&self.base_domain).map_err(|e| {
            anyhow::anyhow!("base_domain {:?} is not a host name: {e}", self.base_domain)
        })?;
        anyhow::ensure!(
            !base.is_ip(),
            "base_domain must be a DNS name, not an IP address"
        );
        anyhow::ensure!(
            matches!(self.public_scheme.as_str(), "http" | "https"),
            "public_scheme must be http or https (got {:?})",
            self.public_scheme
        );
        RolePrefix::parse(&self.role_prefix).map_err(|e| anyhow::anyhow!("role_prefix: {e}"))?;
        anyhow::ensure!(
            self.s3_access_key.is_some() == self.s3_secret_key.is_some(),
            "s3_access_key and s3_secret_key must be set together"
        );
        anyhow::ensure!(!self.s3_bucket.is_empty(), "s3_bucket must not be empty");
        anyhow::ensure!(
            self.database_max_connections >= 2,
            "database_max_connections must be at least 2"
        );
        anyhow::ensure!(
            self.migrate_concurrency >= 1,
            "migrate_concurrency must be at least 1"
        );
        anyhow::ensure!(
            matches!(self.log_format.as_str(), "text" | "json"),
            "log_format must be text or json (got {:?})",
            self.log_format
        );
        if let Some(k) = &self.notify_secret_key {
            campus_notify::secret::SealingKey::from_hex(k)?;
        }
        anyhow::ensure!(
            self.notify_webhook_url.is_none()
                || self
                    .notify_webhook_secret
                    .as_deref()
                    .is_some_and(|s| s.len() >= 16),
            "notify_webhook_secret (at least 16 characters) is needed with notify_webhook_url"
        );
        if let Some(u) = &self.notify_webhook_url {
            anyhow::ensure!(
                u.starts_with("http://") || u.starts_with("https://"),
                "notify_webhook_url must be an http(s):// URL (got {u:?})"
            );
        }
        self.webhook_guard()
            .map_err(|e| anyhow::anyhow!("notify_webhook_allow: {e}"))?;
        anyhow::ensure!(
            (1..=64).contains(&self.notify_workers),
            "notify_workers must be between 1 and 64"
        );
        anyhow::ensure!(
            (1..=5000).contains(&self.notify_batch),
            "notify_batch must be between 1 and 5000"
        );
        anyhow::ensure!(
            (1..=100).contains(&self.notify_max_attempts),
            "notify_max_attempts must be between 1 and 100"
        );
        anyhow::ensure!(
            self.notify_lease_secs >= 1,
            "notify_lease_secs must be at least 1"
        );
        anyhow::ensure!(
            self.preview_workers <= 64,
            "preview_workers must be between 0 (one per core) and 64"
        );
        anyhow::ensure!(
            (1..=3600).contains(&self.preview_timeout_secs),
            "preview_timeout_secs must be between 1 and 3600"
        );
        anyhow::ensure!(
            self.preview_memory_mb >= 256,
            "preview_memory_mb must be at least 256 (LibreOffice needs about 1 GB)"
        );
        anyhow::ensure!(
            (1..=500).contains(&self.preview_max_pages),
            "preview_max_pages must be between 1 and 500"
        );
        anyhow::ensure!(
            campus_files::preview::sandbox::Isolation::parse(&self.preview_sandbox).is_some(),
            "preview_sandbox must be bwrap or none (got {:?})",
            self.preview_sandbox
        );
        self.trusted_proxies()
            .map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?;
        for (name, v, max) in [
            (
                "person_requests_per_second",
                self.person_requests_per_second,
                10_000,
            ),
            ("person_burst", self.person_burst, 100_000),
            (
                "form_requests_per_minute",
                self.form_requests_per_minute,
                100_000,
            ),
            (
                "gate_requests_per_second",
                self.gate_requests_per_second,
                100_000,
            ),
        ] {
            anyhow::ensure!(
                (1..=max).contains(&v),
                "{name} must be between 1 and {max} (got {v})"
            );
        }
        if let Some(t) = &self.admin_token {
            anyhow::ensure!(
                !t.is_empty(),
                "admin_token is empty: generate one with `openssl rand -hex 32`, or leave the setting out"
            );
            anyhow::ensure!(t.len() >= 32, "admin_token must be at least 32 characters");
        }
        for (name, value) in [
            ("admin_token", &self.admin_token),
            ("notify_webhook_secret", &self.notify_webhook_secret),
            ("notify_secret_key", &self.notify_secret_key),
        ] {
            if let Some(why) = value.as_deref().and_then(placeholder) {
                anyhow::bail!(
                    "{name} looks like a placeholder ({why}), not a secret: generate one with `openssl rand -hex 32`"
                );
            }
        }
        Ok(())
    }

    pub fn database_url(&self) -> anyhow::Result<&str> {
        self.database_url
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("no database configured: set DATABASE_URL (or CAMPUS_DATABASE_URL, or database_url in the config file)"))
    }

    pub fn direct_database_url(&self) -> anyhow::Result<&str> {
        match &self.database_direct_url {
            Some(u) => Ok(u),
            None => self.database_url(),
        }
    }

    pub fn role_prefix(&self) -> RolePrefix {
        RolePrefix::parse(&self.role_prefix).expect("validated")
    }

    /// The preview workers' limits.
    pub fn preview_settings(&self) -> campus_files::preview::PreviewSettings {
        let defaults = campus_files::preview::PreviewSettings::default();
        campus_files::preview::PreviewSettings {
            workers: if self.preview_workers == 0 {
                defaults.workers
            } else {
                self.preview_workers
            },
            timeout: Duration::from_secs(self.preview_timeout_secs),
            memory_bytes: self.preview_memory_mb * 1024 * 1024,
            max_pages: self.preview_max_pages,
            sandbox: campus_files::preview::sandbox::Isolation::parse(&self.preview_sandbox)
                .unwrap_or_default(),
            ..defaults
        }
    }

    /// The proxies whose `X-Forwarded-For` is believed.
    /// The guard for schools' own provider addresses, with `notify_webhook_allow`.
    pub fn webhook_guard(&self) -> Result<campus_notify::guard::WebhookGuard, String> {
        campus_notify::guard::WebhookGuard::new(&self.notify_webhook_allow)
    }

    pub fn trusted_proxies(&self) -> Result<campus_limits::TrustedProxies, String> {
        if self.trust_forwarded_for {
            return Ok(campus_limits::TrustedProxies::any());
        }
        campus_limits::TrustedProxies::parse(&self.trusted_proxies)
    }

    /// The limits that are the same for every school.
    pub fn limit_settings(&self) -> campus_limits::Settings {
        use campus_limits::Rate;
        campus_limits::Settings {
            person: Rate::per_second(self.person_requests_per_second, self.person_burst),
            // A burst of half a minute's worth: a family filling in the join form together
            // is not held up, a script trying tokens soon is.
            forms: Rate::per_minute(
                self.form_requests_per_minute,
                (self.form_requests_per_minute / 2).max(5),
            ),
            gate: Rate::per_second(
                self.gate_requests_per_second,
                self.gate_requests_per_second * 2,
            ),
            proxies: self.trusted_proxies().unwrap_or_default(),
            session_cookie: campus_identity::session::COOKIE,
        }
    }

    pub fn delete_grace(&self) -> Duration {
        Duration::from_secs(self.delete_grace_days * 86_400)
    }
}

/// Why a secret setting's value is a placeholder copied from an example rather than a
/// generated secret, if it is one: a word examples use, or too few different characters
/// (random hex of 16 or more digits has about ten).
fn placeholder(value: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    const WORDS: [&str; 9] = [
        "change",
        "example",
        "placeholder",
        "replace",
        "your-",
        "your_",
        "xxxx",
        "fixme",
        "dummy",
    ];
    if let Some(w) = WORDS.iter().find(|w| lower.contains(*w)) {
        return Some(format!("it contains {w:?}"));
    }
    let mut distinct: Vec<char> = value.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    (!value.is_empty() && distinct.len() < 6)
        .then(|| format!("only {} different characters", distinct.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_secrets_are_refused_and_name_their_setting() {
        for (cfg, name) in [
            (
                Config {
                    admin_token: Some("CHANGE-ME-TO-48-RANDOM-CHARACTERS-0123456789abcdef".into()),
                    ..Config::default()
                },
                "admin_token",
            ),
            (
                Config {
                    admin_token: Some("a".repeat(40)),
                    ..Config::default()
                },
                "admin_token",
            ),
            (
                Config {
                    admin_token: Some("your-admin-token-goes-here-please-1234".into()),
                    ..Config::default()
                },
                "admin_token",
            ),
            (
                Config {
                    admin_token: Some(String::new()),
                    ..Config::default()
                },
                "admin_token",
            ),
            (
                Config {
                    notify_webhook_url: Some("https://sms.example.cn/hook".into()),
                    notify_webhook_secret: Some("CHANGE-ME-at-least-16-characters".into()),
                    ..Config::default()
                },
                "notify_webhook_secret",
            ),
            (
                Config {
                    notify_secret_key: Some("0".repeat(64)),
                    ..Config::default()
                },
                "notify_secret_key",
            ),
        ] {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(name), "{name}: {err}");
        }
        // Generated secrets pass.
        Config {
            admin_token: Some("3f9c1e0b7a52d4e8c6b1f0a9d3e7c2b5a8f4d1e6c9b0a3f7".into()),
            notify_webhook_url: Some("https://sms.county.cn/hook".into()),
            notify_webhook_secret: Some("9b1d4f7a2c8e5b3d".into()),
            notify_secret_key: Some(
                "5a1f9c3e7b2d8a4c6e0f1b3d5a7c9e2f4b6d8a0c1e3f5b7d9a2c4e6f8b0d1a3c".into(),
            ),
            ..Config::default()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn bad_settings_are_named_in_the_error() {
        let cfg = Config {
            base_domain: "not a host".into(),
            ..Config::default()
        };
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("base_domain"));
        let cfg = Config {
            role_prefix: "Bad-".into(),
            ..Config::default()
        };
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("role_prefix"));
        let cfg = Config {
            s3_access_key: Some("a".into()),
            ..Config::default()
        };
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("s3_secret_key"));
        let cfg = Config {
            trusted_proxies: vec!["10.0.0.0/40".into()],
            ..Config::default()
        };
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("trusted_proxies"));
        let cfg = Config {
            person_requests_per_second: 0,
            ..Config::default()
        };
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("person_requests_per_second"));
    }

    #[test]
    // figment::Jail fixes the closure's error type; its size is not ours to choose.
    #[allow(clippy::result_large_err)]
    fn a_file_and_the_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "campus.toml",
                "base_domain = \"edu.example.cn\"\ndelete_grace_days = 7\n",
            )?;
            jail.set_env("CAMPUS_DELETE_GRACE_DAYS", "10");
            jail.set_env("CAMPUS_DELETE_GRACE_DAZE", "typo");
            jail.set_env("CAMPUS_TEST_DATABASE_URL", "postgres://elsewhere/db");
            jail.set_env("DATABASE_URL", "postgres://db/campus");
            let cfg = Config::load(Some(Path::new("campus.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(cfg.base_domain, "edu.example.cn");
            assert_eq!(cfg.delete_grace_days, 10);
            assert_eq!(cfg.database_url.as_deref(), Some("postgres://db/campus"));
            let unknown = Config::unknown_env_vars();
            assert!(
                unknown.contains(&"CAMPUS_DELETE_GRACE_DAZE".to_owned()),
                "{unknown:?}"
            );
            assert!(
                !unknown.iter().any(|k| k == "CAMPUS_TEST_DATABASE_URL"),
                "{unknown:?}"
            );
            Ok(())
        });
    }
}
