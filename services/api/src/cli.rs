//! The `campus` command line: `serve`, `demo`, `migrate`, `tenant …`, `admin-token …` and
//! `jobs …`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use campus_tenant::lifecycle::{SchoolPatch, SchoolSpec};
use campus_tenant::migrate::{self, MigrateOptions, OutcomeKind};
use campus_tenant::{registry, Hostname, Slug, Tenant, TenantStatus};
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Role};
use crate::runtime::Services;

#[derive(Debug, Parser)]
#[command(
    name = "campus",
    version,
    about = "County Campus Cloud (县域智慧校园云平台): one platform for every school of a county."
)]
pub struct Cli {
    /// TOML configuration file (settings are documented in the README).
    #[arg(long, global = true, env = "CAMPUS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the platform from configuration.
    Serve(ServeArgs),
    /// Run the platform on this machine with embedded Postgres and S3 and 32 demo schools.
    Demo(crate::demo::DemoArgs),
    /// Migrate the shared schema, then every school's schema.
    Migrate(MigrateArgs),
    /// Onboard and manage schools.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage admin API tokens.
    #[command(subcommand, name = "admin-token")]
    AdminToken(TokenCommand),
    /// Run schools' daily jobs by hand (the `maintenance` role runs them every minute).
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// The county dashboard's rollups (the `maintenance` role keeps them current).
    #[command(subcommand)]
    Metrics(MetricsCommand),
    /// Education bureau accounts, which may read the county dashboard.
    #[command(subcommand, name = "county-user")]
    CountyUser(CountyUserCommand),
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Recompute every day of the dashboard's rollups from the schools' own tables (gives
    /// the same figures as the incremental updates).
    Rebuild {
        /// Only this school (default: every active school).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// One pass of the incremental update over every active school, as the maintenance
    /// role runs every `metrics_interval_secs`.
    Update {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CountyUserCommand {
    /// Create an education bureau account (or give an existing account the bureau role).
    /// The password is read from standard input with --password-stdin, otherwise a random
    /// one is printed once.
    Add {
        /// Mobile phone number to sign in with.
        #[arg(long, required_unless_present = "username")]
        phone: Option<String>,
        /// User name to sign in with.
        #[arg(long)]
        username: Option<String>,
        /// Display name, e.g. 教育局 李科长.
        #[arg(long)]
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Withdraw the bureau role from an account (the account itself stays).
    Remove {
        #[arg(long, required_unless_present = "username")]
        phone: Option<String>,
        #[arg(long)]
        username: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Roles to run (default: all). Scale web and workers separately by starting
    /// instances with different roles.
    #[arg(long, value_delimiter = ',', value_enum)]
    pub roles: Option<Vec<Role>>,
    /// Address to listen on (overrides `bind`).
    #[arg(long)]
    pub bind: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Schools migrated at once (overrides `migrate_concurrency`).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Check every school's migration ledger even when the registry says it is current.
    #[arg(long)]
    pub verify: bool,
    /// One JSON object per school on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Onboard a school: schema, role, migrations, storage prefix, first admin invitation.
    /// Running it again with the same arguments changes nothing.
    Create {
        slug: String,
        /// Full name, e.g. 青川县信义小学.
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "standard")]
        plan: String,
        /// Extra host name (repeatable).
        #[arg(long = "hostname")]
        hostnames: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List schools.
    List {
        #[arg(long)]
        json: bool,
        /// Include soft-deleted schools.
        #[arg(long)]
        all: bool,
    },
    /// Show one school.
    Show {
        slug: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a school's name, plan, hostnames or rate limits.
    Update {
        slug: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        plan: Option<String>,
        /// Replace the extra host names (repeatable).
        #[arg(long = "hostname")]
        hostnames: Vec<String>,
        /// Remove every extra host name.
        #[arg(long, conflicts_with = "hostnames")]
        clear_hostnames: bool,
        /// Requests per second for this school, overriding its plan.
        #[arg(long)]
        requests_per_second: Option<i32>,
        /// Burst for this school, overriding its plan.
        #[arg(long)]
        burst: Option<i32>,
        /// Concurrent database transactions for this school per instance, overriding its
        /// plan (at most the pool size less one is used).
        #[arg(long)]
        db_concurrency: Option<i32>,
        /// Drop every limit override and use the plan's.
        #[arg(long, conflicts_with_all = ["requests_per_second", "burst", "db_concurrency"])]
        use_plan_limits: bool,
        #[arg(long)]
        json: bool,
    },
    /// Suspend a school: its pages show a notice; data is kept.
    Suspend {
        slug: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a suspended school, or a deleted one within its grace period.
    Resume { slug: String },
    /// Soft-delete a school; it is purged after `delete_grace_days` unless resumed.
    Delete { slug: String },
    /// Permanently remove deleted schools whose grace period is over (or one, with --force).
    Purge {
        slug: Option<String>,
        /// Purge now, even inside the grace period.
        #[arg(long, requires = "slug")]
        force: bool,
    },
    /// Write a school's schema dump and files to a folder.
    Export {
        slug: String,
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Issue a new school-admin invitation link.
    Invite { slug: String },
    /// List the plans and their limits.
    Plans,
    /// Change a plan's limits (every school on it without its own override follows).
    #[command(name = "plan-limits")]
    PlanLimits {
        /// Plan code, e.g. standard.
        plan: String,
        /// Requests per second per school per instance.
        #[arg(long)]
        requests_per_second: Option<i32>,
        /// Requests allowed at once above that rate.
        #[arg(long)]
        burst: Option<i32>,
        /// Concurrent database transactions per school per instance.
        #[arg(long)]
        db_concurrency: Option<i32>,
        /// Whether the schools' user managers must sign in with a second factor (TOTP).
        #[arg(long)]
        require_second_factor: Option<bool>,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Run the jobs that are due (register reminders, gate absence alerts) and have not run
    /// that school day yet.
    RunDue {
        /// Only this school (default: every active school).
        #[arg(long)]
        tenant: Option<String>,
        /// The moment to run for, RFC 3339, e.g. 2026-11-24T08:40:00+08:00 (default: now).
        #[arg(long)]
        at: Option<String>,
        /// One JSON object per school on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List tokens (never their values).
    List,
    /// Revoke a token by id.
    Revoke { id: i64 },
}

pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let cfg = Config::load(cli.config.as_deref())?;
    crate::logging::init(&cfg);
    for var in Config::unknown_env_vars() {
        tracing::warn!(
            "{var} is not a setting and is ignored; see the configuration table in the README"
        );
    }
    match cli.command {
        Command::Serve(args) => serve(cfg, args).await,
        Command::Demo(args) => crate::demo::run(cfg, args).await,
        Command::Migrate(args) => migrate_cmd(cfg, args).await,
        Command::Tenant(cmd) => tenant(cfg, cmd).await,
        Command::AdminToken(cmd) => token(cfg, cmd).await,
        Command::Jobs(cmd) => jobs(cfg, cmd).await,
        Command::Metrics(cmd) => metrics(cfg, cmd).await,
        Command::CountyUser(cmd) => county_user(cfg, cmd).await,
    }
}

async fn serve(mut cfg: Config, args: ServeArgs) -> anyhow::Result<i32> {
    if let Some(roles) = args.roles {
        cfg.roles = roles;
    }
    if let Some(bind) = args.bind {
        cfg.bind = bind;
    }
    let services = Services::connect(cfg).await?;
    prepare(&services).await?;
    let listener = tokio::net::TcpListener::bind(services.cfg.bind)
        .await
        .with_context(|| format!("listening on {}", services.cfg.bind))?;
    tracing::info!(addr = %services.cfg.bind, roles = ?services.cfg.roles, "campus is serving");
    crate::app::serve(services, listener, shutdown_signal()).await?;
    Ok(0)
}

/// Start-up work every serving instance does: shared migrations and the configured token.
pub async fn prepare(services: &Services) -> anyhow::Result<()> {
    migrate::migrate_public(&services.pool).await?;
    if let Some(token) = &services.cfg.admin_token {
        crate::admin_tokens::ensure(&services.pool, "configured", token).await?;
    }
    let behind: i64 = sqlx::query_scalar(
        "select count(*) from public.tenants where status <> 'deleted' and schema_version < $1",
    )
    .bind(migrate::TENANT.latest_version())
    .fetch_one(&services.pool)
    .await?;
    if behind > 0 {
        tracing::warn!(
            schools = behind,
            "some schools are behind this build's migrations; run `campus migrate`"
        );
    }
    Ok(())
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

async fn migrate_cmd(cfg: Config, args: MigrateArgs) -> anyhow::Result<i32> {
    let concurrency = args.concurrency.unwrap_or(cfg.migrate_concurrency).max(1);
    let mut cfg = cfg;
    cfg.database_max_connections = cfg
        .database_max_connections
        .max(u32::try_from(concurrency).unwrap_or(64) + 2);
    let pool = crate::runtime::connect_pool(&cfg).await?;
    let started = Instant::now();
    let public = migrate::migrate_public(&pool).await?;
    if !args.json {
        if public.is_empty() {
            println!("shared schema: up to date");
        } else {
            println!("shared schema: applied {}", public.join(", "));
        }
    }
    let json = args.json;
    let outcomes = migrate::migrate_all(
        &pool,
        MigrateOptions {
            concurrency,
            verify: args.verify,
        },
        |o| {
            if json {
                println!("{}", serde_json::to_string(o).expect("json"));
            } else {
                match &o.result {
                    OutcomeKind::UpToDate => println!("  {:<24} up to date", o.slug),
                    OutcomeKind::Migrated { applied } => println!(
                        "  {:<24} migrated: {} ({} ms)",
                        o.slug,
                        applied.join(", "),
                        o.millis
                    ),
                    OutcomeKind::Failed { error } => println!("  {:<24} FAILED: {error}", o.slug),
                }
            }
        },
    )
    .await?;
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o.result, OutcomeKind::Failed { .. }))
        .count();
    let migrated = outcomes
        .iter()
        .filter(|o| matches!(o.result, OutcomeKind::Migrated { .. }))
        .count();
    if !json {
        println!(
            "{} schools: {migrated} migrated, {} up to date, {failed} failed in {:.1} s",
            outcomes.len(),
            outcomes.len() - migrated - failed,
            started.elapsed().as_secs_f64()
        );
        if failed > 0 {
            println!("failed schools keep their last good version; fix the cause and run `campus migrate` again");
        }
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

fn slug(raw: &str) -> anyhow::Result<Slug> {
    Slug::parse(raw).map_err(|e| anyhow::anyhow!("{raw:?}: {e}"))
}

fn hosts(raw: &[String]) -> anyhow::Result<Vec<Hostname>> {
    raw.iter()
        .map(|h| Hostname::parse(h).map_err(|e| anyhow::anyhow!("hostname {h:?}: {e}")))
        .collect()
}

fn print_tenant(t: &Tenant, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(t).expect("json"));
        return;
    }
    println!("{} ({})", t.name, t.slug);
    println!(
        "  status:       {}{}",
        t.status,
        t.suspended_reason
            .as_ref()
            .map(|r| format!(" — {r}"))
            .unwrap_or_default()
    );
    println!("  plan:         {}", t.plan);
    let overridden =
        t.requests_per_second.is_some() || t.burst.is_some() || t.db_concurrency.is_some();
    println!(
        "  limits:       {} req/s, burst {}, {} database transactions at once{}",
        t.limits.requests_per_second,
        t.limits.burst,
        t.limits.db_concurrency,
        if overridden {
            " (school's own overrides)"
        } else {
            " (plan)"
        }
    );
    println!(
        "  hostnames:    {}",
        if t.hostnames.is_empty() {
            "-".into()
        } else {
            t.hostnames.join(", ")
        }
    );
    println!(
        "  schema:       {} (version {})",
        t.schema_name(),
        t.schema_version
    );
    println!("  role:         {}", t.role_name());
    println!("  storage:      {}", t.s3_prefix);
    println!(
        "  created:      {}",
        t.created_at.format("%Y-%m-%d %H:%M UTC")
    );
    if let Some(p) = t.purge_after {
        println!("  purge after:  {}", p.format("%Y-%m-%d %H:%M UTC"));
    }
}

async fn tenant(cfg: Config, cmd: TenantCommand) -> anyhow::Result<i32> {
    let services = Services::connect(cfg).await?;
    migrate::migrate_public(&services.pool).await?;
    let p = &services.platform;
    let actor = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    match cmd {
        TenantCommand::Create {
            slug: s,
            name,
            plan,
            hostnames,
            json,
        } => {
            let spec = SchoolSpec {
                slug: slug(&s)?,
                name,
                plan,
                hostnames: hosts(&hostnames)?,
            };
            let started = Instant::now();
            let done = p.onboard(&spec, &actor).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&done)?);
            } else {
                let verb = if done.created {
                    "onboarded"
                } else {
                    "already exists; brought in line"
                };
                println!(
                    "{} {verb} in {} ms",
                    done.tenant.slug,
                    started.elapsed().as_millis()
                );
                println!("  url:        {}", p.urls.school(&done.tenant.slug));
                if let Some(inv) = &done.invitation {
                    println!(
                        "  admin invitation (shown once, valid until {}):\n    {}",
                        inv.expires_at.format("%Y-%m-%d"),
                        inv.url
                    );
                }
            }
        }
        TenantCommand::List { json, all } => {
            let tenants: Vec<Tenant> = registry::list(&services.pool)
                .await?
                .into_iter()
                .filter(|t| all || t.status != TenantStatus::Deleted)
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&tenants)?);
            } else {
                println!(
                    "{:<24} {:<12} {:<9} {:>7}  name",
                    "slug", "status", "plan", "version"
                );
                for t in &tenants {
                    println!(
                        "{:<24} {:<12} {:<9} {:>7}  {}",
                        t.slug.as_str(),
                        t.status.as_str(),
                        t.plan,
                        t.schema_version,
                        t.name
                    );
                }
                println!("{} schools", tenants.len());
            }
        }
        TenantCommand::Show { slug: s, json } => {
            print_tenant(&registry::get(&services.pool, &slug(&s)?).await?, json)
        }
        TenantCommand::Update {
            slug: s,
            name,
            plan,
            hostnames,
            clear_hostnames,
            requests_per_second,
            burst,
            db_concurrency,
            use_plan_limits,
            json,
        } => {
            let patch = SchoolPatch {
                name,
                plan,
                hostnames: if clear_hostnames {
                    Some(Vec::new())
                } else if hostnames.is_empty() {
                    None
                } else {
                    Some(hosts(&hostnames)?)
                },
                requests_per_second: if use_plan_limits {
                    Some(None)
                } else {
                    requests_per_second.map(Some)
                },
                burst: if use_plan_limits {
                    Some(None)
                } else {
                    burst.map(Some)
                },
                db_concurrency: if use_plan_limits {
                    Some(None)
                } else {
                    db_concurrency.map(Some)
                },
            };
            print_tenant(&p.update(&slug(&s)?, &patch, &actor).await?, json);
        }
        TenantCommand::Suspend { slug: s, reason } => {
            let t = p.suspend(&slug(&s)?, reason, &actor).await?;
            println!("{} suspended", t.slug);
        }
        TenantCommand::Resume { slug: s } => {
            let t = p.resume(&slug(&s)?, &actor).await?;
            println!("{} is active again", t.slug);
        }
        TenantCommand::Delete { slug: s } => {
            let t = p.delete(&slug(&s)?, &actor).await?;
            let when = t
                .purge_after
                .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default();
            println!("{} deleted; it will be purged after {when} unless resumed (`campus tenant resume {}`)", t.slug, t.slug);
        }
        TenantCommand::Purge {
            slug: Some(s),
            force,
        } => {
            if p.purge(&slug(&s)?, force, &actor).await? {
                println!("{s} purged: schema, role, files and registry entry removed");
            } else {
                println!("{s} is still inside its grace period; use --force to purge it now");
            }
        }
        TenantCommand::Purge { slug: None, .. } => {
            let purged = p.purge_due(&actor).await?;
            println!(
                "purged {} schools{}",
                purged.len(),
                if purged.is_empty() {
                    String::new()
                } else {
                    format!(": {}", purged.join(", "))
                }
            );
        }
        TenantCommand::Export { slug: s, out } => {
            let tenant = registry::get(&services.pool, &slug(&s)?).await?;
            let pg_dump = crate::tools::pg_dump()?;
            let summary = campus_tenant::export::export(
                &tenant,
                &services.store.for_tenant(&tenant),
                &pg_dump,
                services.cfg.direct_database_url()?,
                &out,
            )
            .await?;
            println!(
                "exported {} to {} ({} files, {} bytes; schema in {})",
                tenant.slug,
                summary.dir.display(),
                summary.files,
                summary.bytes,
                summary.schema_dump.display()
            );
        }
        TenantCommand::Invite { slug: s } => {
            let inv = p.new_admin_invitation(&slug(&s)?, &actor).await?;
            println!(
                "school-admin invitation (shown once, valid until {}):\n  {}",
                inv.expires_at.format("%Y-%m-%d"),
                inv.url
            );
        }
        TenantCommand::PlanLimits {
            plan,
            requests_per_second,
            burst,
            db_concurrency,
            require_second_factor,
        } => {
            anyhow::ensure!(
                requests_per_second.is_some()
                    || burst.is_some()
                    || db_concurrency.is_some()
                    || require_second_factor.is_some(),
                "give at least one of --requests-per-second, --burst, --db-concurrency, --require-second-factor"
            );
            if let Some(required) = require_second_factor {
                anyhow::ensure!(
                    campus_identity::second_factor::set_plan_requirement(
                        &services.pool,
                        &plan,
                        required
                    )
                    .await?,
                    "there is no plan {plan:?} (see `campus tenant plans`)"
                );
                println!(
                    "{plan}: user managers {} sign in with a second factor",
                    if required { "must" } else { "need not" }
                );
                if requests_per_second.is_none() && burst.is_none() && db_concurrency.is_none() {
                    return Ok(0);
                }
            }
            let patch = campus_tenant::lifecycle::PlanPatch {
                requests_per_second,
                burst,
                db_concurrency,
            };
            let plan = p.update_plan(&plan, &patch, &actor).await?;
            println!(
                "{}: {} req/s, burst {}, {} database transactions at once per school",
                plan.code, plan.requests_per_second, plan.burst, plan.db_concurrency
            );
        }
        TenantCommand::Plans => {
            println!(
                "{:<10} {:>8} {:>6} {:>6} {:>10} {:>10}  name",
                "plan", "req/s", "burst", "db", "storage", "upload"
            );
            for plan in registry::plans(&services.pool).await? {
                println!(
                    "{:<10} {:>8} {:>6} {:>6} {:>8}GB {:>8}MB  {}",
                    plan.code,
                    plan.requests_per_second,
                    plan.burst,
                    plan.db_concurrency,
                    plan.storage_quota_bytes >> 30,
                    plan.max_upload_bytes >> 20,
                    plan.name
                );
            }
        }
    }
    Ok(0)
}

async fn token(cfg: Config, cmd: TokenCommand) -> anyhow::Result<i32> {
    let pool = crate::runtime::connect_pool(&cfg).await?;
    migrate::migrate_public(&pool).await?;
    match cmd {
        TokenCommand::Create { name } => {
            let token = crate::admin_tokens::create(&pool, &name).await?;
            println!("{token}");
            eprintln!("store this token now: it is not shown again (only its hash is kept)");
        }
        TokenCommand::List => {
            for t in crate::admin_tokens::list(&pool).await? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let used = t
                    .last_used_at
                    .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_else(|| "never".into());
                println!("{:>4}  {:<24} {state:<8} last used {used}", t.id, t.name);
            }
        }
        TokenCommand::Revoke { id } => {
            if crate::admin_tokens::revoke(&pool, id).await? {
                println!("token {id} revoked");
            } else {
                anyhow::bail!("no active token with id {id}");
            }
        }
    }
    Ok(0)
}

async fn jobs(cfg: Config, cmd: JobsCommand) -> anyhow::Result<i32> {
    use campus_school::schedule::{run_due, DueReport, Scheduler};
    let JobsCommand::RunDue { tenant, at, json } = cmd;
    let at = match at {
        Some(raw) => chrono::DateTime::parse_from_rfc3339(raw.trim())
            .map_err(|e| {
                anyhow::anyhow!(
                    "--at {raw:?} is not an RFC 3339 time such as 2026-11-24T08:40:00+08:00: {e}"
                )
            })?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    let services = Services::connect(cfg).await?;
    migrate::migrate_public(&services.pool).await?;
    let print =
        |slug: &str, result: &Result<DueReport, campus_tenant::TenantError>| match (json, result) {
            (true, Ok(r)) => println!("{}", serde_json::json!({"tenant": slug, "report": r})),
            (true, Err(e)) => println!(
                "{}",
                serde_json::json!({"tenant": slug, "error": e.to_string()})
            ),
            (false, Ok(r)) if !r.school_day => println!("  {slug:<24} {}: no school", r.day),
            (false, Ok(r)) => println!(
                "  {slug:<24} {}: register reminders {}; gate absence {}",
                r.day, r.register_reminders, r.gate_absence
            ),
            (false, Err(e)) => println!("  {slug:<24} FAILED: {e}"),
        };
    let failed = match tenant {
        Some(s) => {
            let school = registry::get(&services.pool, &slug(&s)?).await?;
            anyhow::ensure!(
                school.status == TenantStatus::Active,
                "school {} is {}; jobs run only for active schools",
                school.slug,
                school.status
            );
            let result = run_due(&services.db, &school, at).await;
            print(school.slug.as_str(), &result);
            usize::from(result.is_err())
        }
        None => {
            let tick = Scheduler::new().tick(&services.db, at).await?;
            for run in &tick.runs {
                print(run.school.slug.as_str(), &run.result);
            }
            if !json {
                println!("{} active schools", tick.schools);
            }
            tick.failed().count()
        }
    };
    Ok(if failed > 0 { 1 } else { 0 })
}

async fn metrics(cfg: Config, cmd: MetricsCommand) -> anyhow::Result<i32> {
    use campus_county::rollup;
    let services = Services::connect(cfg).await?;
    migrate::migrate_public(&services.pool).await?;
    match cmd {
        MetricsCommand::Rebuild { tenant } => {
            let schools: Vec<Tenant> = match tenant {
                Some(s) => vec![registry::get(&services.pool, &slug(&s)?).await?],
                None => registry::list(&services.pool)
                    .await?
                    .into_iter()
                    .filter(|t| t.status == TenantStatus::Active)
                    .collect(),
            };
            let total = schools.len();
            let started = Instant::now();
            let mut failed = 0;
            for r in rollup::rebuild_all(&services.db, schools).await? {
                match r.result {
                    Ok(days) => println!(
                        "  {:<24} {days} days recomputed in {} ms",
                        r.school.slug,
                        r.took.as_millis()
                    ),
                    Err(e) => {
                        failed += 1;
                        println!("  {:<24} FAILED: {e}", r.school.slug);
                    }
                }
            }
            println!(
                "{} schools rebuilt, {failed} failed, in {:.1} s",
                total - failed,
                started.elapsed().as_secs_f64()
            );
            Ok(if failed > 0 { 1 } else { 0 })
        }
        MetricsCommand::Update { json } => {
            let passes = rollup::tick(&services.db).await?;
            let mut failed = 0;
            for p in &passes {
                match (&p.result, json) {
                    (Ok(r), true) => println!(
                        "{}",
                        serde_json::json!({"tenant": p.school.slug.as_str(), "pass": r})
                    ),
                    (Ok(r), false) => println!(
                        "  {:<24} {} days, lag {} ms",
                        p.school.slug,
                        r.days,
                        r.lag_ms.map_or("-".into(), |l| l.to_string())
                    ),
                    (Err(e), _) => {
                        failed += 1;
                        println!("  {:<24} FAILED: {e}", p.school.slug);
                    }
                }
            }
            Ok(if failed > 0 { 1 } else { 0 })
        }
    }
}

async fn county_user(cfg: Config, cmd: CountyUserCommand) -> anyhow::Result<i32> {
    use campus_identity::account::{self, NewAccount};
    use campus_identity::login::Login;
    let services = Services::connect(cfg).await?;
    migrate::migrate_public(&services.pool).await?;
    let actor = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let login_of = |phone: &Option<String>, username: &Option<String>| -> anyhow::Result<Login> {
        let raw = phone.as_deref().or(username.as_deref()).unwrap_or_default();
        Login::parse(raw)
            .map_err(|e| anyhow::anyhow!("{raw:?} is not a phone number or user name: {e}"))
    };
    match cmd {
        CountyUserCommand::Add {
            phone,
            username,
            name,
            password_stdin,
        } => {
            let login = login_of(&phone, &username)?;
            let mut conn = services.pool.acquire().await?;
            let existing = account::id_by_login(&mut conn, &login).await?;
            drop(conn);
            let id = match existing {
                Some(id) => {
                    println!("an account signs in with this already; it gets the bureau role (its password is unchanged)");
                    id
                }
                None => {
                    let password = if password_stdin {
                        let mut line = String::new();
                        std::io::stdin().read_line(&mut line)?;
                        let p = line.trim_end_matches(['\r', '\n']).to_owned();
                        anyhow::ensure!(
                            p.chars().count() >= 8,
                            "the password must have at least 8 characters"
                        );
                        p
                    } else {
                        let p: String = {
                            use rand::Rng;
                            const CHARS: &[u8] =
                                b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
                            let mut rng = rand::rng();
                            (0..14)
                                .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
                                .collect()
                        };
                        println!("password (shown once): {p}");
                        p
                    };
                    let hash = services.identity.hasher.hash(&password).await?;
                    let (phone, username) = match &login {
                        Login::Phone(p) => (Some(p.as_str()), None),
                        Login::Username(u) => (None, Some(u.as_str())),
                    };
                    account::ensure(
                        &services.pool,
                        &NewAccount {
                            username,
                            phone,
                            display_name: &name,
                            password_hash: &hash,
                            county_role: Some(campus_county::access::BUREAU),
                        },
                    )
                    .await?
                }
            };
            account::set_county_role(
                &services.pool,
                id,
                Some(campus_county::access::BUREAU),
                &actor,
            )
            .await?;
            println!(
                "account {id} may read the county dashboard at {}/dashboard",
                services.platform.urls.county()
            );
        }
        CountyUserCommand::Remove { phone, username } => {
            let login = login_of(&phone, &username)?;
            let mut conn = services.pool.acquire().await?;
            let Some(id) = account::id_by_login(&mut conn, &login).await? else {
                anyhow::bail!("no account signs in with {login:?}");
            };
            drop(conn);
            account::set_county_role(&services.pool, id, None, &actor).await?;
            println!("account {id} no longer has the bureau role");
        }
    }
    Ok(0)
}
