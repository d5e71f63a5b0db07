//! `campus demo`: the whole platform on a laptop. A private Postgres cluster in the data
//! folder (or `DATABASE_URL`), the embedded S3 server, 32 schools of realistic data on first
//! start, every URL and login printed. A second start reuses the data.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use campus_devstack::{EmbeddedS3, PrivatePostgres, SmsSink, SmtpSink};
use campus_school::demo::{self, SCHOOLS};
use campus_school::join;
use campus_tenant::lifecycle::SchoolSpec;
use campus_tenant::migrate::{self, MigrateOptions, OutcomeKind};
use campus_tenant::{registry, Slug};
use clap::Args;
use futures::StreamExt;

use crate::config::{Config, Role};
use crate::runtime::Services;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Port to serve on.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Folder for the demo's Postgres cluster, objects and logins.
    #[arg(long, default_value = "./data")]
    pub data: PathBuf,
    /// How many demo schools to create on first start (1–32).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub schools: u16,
    /// Stop after setting up and printing, instead of serving (for scripts and benchmarks).
    #[arg(long)]
    pub no_serve: bool,
    /// Set up the demo even though the database holds schools the demo did not create
    /// (it adds accounts with the public demo password: never on a real county's database).
    #[arg(long)]
    pub force: bool,
}

const S3_KEY: &str = "campus-demo";
const S3_SECRET: &str = "campus-demo-secret-key";

async fn ensure_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(admin_url)
        .await?;
    let exists: bool =
        sqlx::query_scalar("select exists(select 1 from pg_database where datname = $1)")
            .bind(name)
            .fetch_one(&pool)
            .await?;
    if !exists {
        sqlx::query(&format!("create database \"{name}\""))
            .execute(&pool)
            .await?;
    }
    pool.close().await;
    Ok(())
}

fn read_or_create_token(path: &Path) -> anyhow::Result<String> {
    if let Ok(t) = std::fs::read_to_string(path) {
        let t = t.trim().to_owned();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let token = crate::admin_tokens::generate();
    std::fs::write(path, format!("{token}\n"))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(token)
}

pub async fn run(mut cfg: Config, args: DemoArgs) -> anyhow::Result<i32> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let data = std::fs::canonicalize(&args.data)?;
    // Bind first: a busy port should fail before anything else starts.
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("port {} is in use; pick another with --port", args.port))?;

    let mut private_pg = None;
    let database_url = match cfg.database_url.clone() {
        Some(url) => url,
        None => {
            let pg = tokio::task::spawn_blocking({
                let data = data.clone();
                move || PrivatePostgres::start(&data)
            })
            .await??;
            ensure_database(&pg.url("postgres"), "campus").await?;
            let url = pg.url("campus");
            private_pg = Some(pg);
            url
        }
    };
    let s3 = EmbeddedS3::start(
        &data.join("s3"),
        SocketAddr::new([127, 0, 0, 1].into(), 0),
        S3_KEY,
        S3_SECRET,
    )
    .await?;

    // Mail goes to a sink on loopback that keeps every message in <data>/mail as .eml
    // files, unless a real SMTP server is configured.
    let mail_dir = data.join("mail");
    let sink = match cfg.smtp_url {
        Some(_) => None,
        None => {
            let sink = SmtpSink::start_with_spool(0, Some(mail_dir.clone())).await?;
            cfg.smtp_url = Some(sink.url());
            Some(sink)
        }
    };
    // Text messages (one-time codes, invitations) go to a provider sink that keeps each in
    // <data>/sms and prints it here, unless a real provider is configured.
    let sms_dir = data.join("sms");
    let sms_sink = match cfg.notify_webhook_url {
        Some(_) => None,
        None => {
            let sink = SmsSink::start(Some(sms_dir.clone()), true).await?;
            cfg.notify_webhook_url = Some(sink.url());
            cfg.notify_webhook_secret = Some("demo-sms-provider-secret".into());
            Some(sink)
        }
    };

    cfg.database_url = Some(database_url);
    cfg.bind = addr;
    cfg.roles = vec![Role::Web, Role::Maintenance, Role::Notify, Role::Preview];
    cfg.public_port = (args.port != 80).then_some(args.port);
    cfg.s3_endpoint = Some(s3.endpoint());
    cfg.s3_access_key = Some(S3_KEY.into());
    cfg.s3_secret_key = Some(S3_SECRET.into());
    cfg.s3_force_path_style = true;
    let token = read_or_create_token(&data.join("admin-token.txt"))?;
    cfg.admin_token = Some(token.clone());
    cfg.validate()?;

    let services = Services::connect(cfg).await?;
    if !args.force {
        let foreign = schools_not_from_the_demo(&services.pool).await?;
        if !foreign.is_empty() {
            eprintln!(
                "campus demo: this database already holds schools the demo did not create ({}).\n\
                 The demo adds accounts (each school's admin, `bureau`) with the public password \
                 {DEMO_PASSWORD:?}: it must never run against a real county's database.\n\
                 Unset DATABASE_URL to use the demo's own Postgres in --data, or pass --force if \
                 this database really is a scratch copy.\n\
                 数据库中已有不是演示创建的学校，campus demo 拒绝运行（会创建使用公开演示密码的账号）。",
                foreign.join(", ")
            );
            return Ok(2);
        }
    }
    services.store.ensure_bucket().await?;
    crate::cli::prepare(&services).await?;
    let outcomes = migrate::migrate_all(
        &services.pool,
        MigrateOptions {
            concurrency: 4,
            verify: false,
        },
        |_| {},
    )
    .await?;
    for o in &outcomes {
        if let OutcomeKind::Failed { error } = &o.result {
            tracing::error!(school = o.slug, error, "migration failed");
        }
    }

    let created = onboard_demo_schools(&services, usize::from(args.schools), &data).await?;
    for t in registry::list(&services.pool).await? {
        if t.status == campus_tenant::TenantStatus::Active {
            demo::enable_mail(&services.db, &t).await?;
        }
    }

    let logins = ensure_demo_accounts(&services).await?;
    ensure_demo_join_requests(&services).await?;
    print_banner(
        &services,
        &data,
        &token,
        created,
        started.elapsed().as_secs_f64(),
    )
    .await?;
    print_logins(&services, &logins);
    if sink.is_some() {
        println!(
            "  email: every message the platform sends is kept as an .eml file in {}",
            mail_dir.display()
        );
        println!("         (quiet hours 21:00–07:00 hold all but safety alerts until morning)");
        println!();
    }
    if sms_sink.is_some() {
        println!(
            "  SMS: text messages (sign-in codes, invitations) are printed here and kept in {}",
            sms_dir.display()
        );
        println!();
    }

    println!("Press Ctrl-C to stop.");
    if !args.no_serve {
        crate::app::serve(services, listener, crate::cli::shutdown_signal()).await?;
    }
    drop(s3);
    drop(sink);
    drop(sms_sink);
    if let Some(mut pg) = private_pg {
        tokio::task::spawn_blocking(move || pg.stop()).await??;
    }
    Ok(0)
}

/// The actor the demo onboards its schools as; `public.admin_audit` keeps it with each
/// school's `create` event, which is how a later start knows the school is the demo's.
const DEMO_ACTOR: &str = "demo";

/// Slugs of the schools in the database that the demo did not create: any school whose
/// slug is not one of the demo's, or whose creation was not recorded as the demo's
/// (`public.admin_audit`, actor `demo`). A database without the platform's tables has none.
async fn schools_not_from_the_demo(pool: &sqlx::PgPool) -> anyhow::Result<Vec<String>> {
    let registry: bool = sqlx::query_scalar(
        "select to_regclass('public.tenants') is not null
            and to_regclass('public.admin_audit') is not null",
    )
    .fetch_one(pool)
    .await?;
    if !registry {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, bool)> = sqlx::query_as(
        "select t.slug,
                exists (select 1 from public.admin_audit a
                         where a.tenant_id = t.id and a.action = 'create' and a.actor = $1)
           from public.tenants t
          order by t.slug",
    )
    .bind(DEMO_ACTOR)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(slug, by_demo)| !(*by_demo && SCHOOLS.iter().any(|s| s.slug == slug)))
        .map(|(slug, _)| slug)
        .collect())
}

/// Onboards and seeds the demo schools that do not exist yet; returns how many were new.
async fn onboard_demo_schools(
    services: &Services,
    count: usize,
    data: &Path,
) -> anyhow::Result<usize> {
    let existing: Vec<String> = registry::list(&services.pool)
        .await?
        .into_iter()
        .map(|t| t.slug.to_string())
        .collect();
    let missing: Vec<_> = SCHOOLS
        .iter()
        .take(count)
        .filter(|s| !existing.iter().any(|e| e == s.slug))
        .collect();
    if missing.is_empty() {
        return Ok(0);
    }
    println!(
        "setting up {} demo schools (first start only)…",
        missing.len()
    );
    let today = chrono::Local::now().date_naive();
    let results: Vec<anyhow::Result<(String, Option<String>)>> =
        futures::stream::iter(missing.iter().copied())
            .map(|school| async move {
                let spec = SchoolSpec {
                    slug: Slug::parse(school.slug)?,
                    name: school.name.into(),
                    plan: plan_for(school.students).into(),
                    hostnames: vec![],
                };
                let done = services.platform.onboard(&spec, DEMO_ACTOR).await?;
                demo::seed(&services.db, &services.store, &done.tenant, school, today).await?;
                Ok((school.slug.to_owned(), done.invitation.map(|i| i.url)))
            })
            .buffer_unordered(4)
            .collect()
            .await;
    let mut logins = String::from(
        "# First-administrator invitation links of the demo schools (valid 14 days)\n",
    );
    let mut created = 0;
    for r in results {
        let (slug, invitation) = r?;
        created += 1;
        if let Some(url) = invitation {
            logins.push_str(&format!("{slug}\t{url}\n"));
        }
    }
    let path = data.join("demo-logins.txt");
    let mut previous = std::fs::read_to_string(&path).unwrap_or_default();
    if previous.is_empty() {
        previous = logins;
    } else {
        previous.push_str(
            logins
                .lines()
                .skip(1)
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .as_str(),
        );
    }
    std::fs::write(&path, previous)?;
    Ok(created)
}

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "campus2026";

/// A demo sign-in: where, who, as what.
#[derive(Debug, Clone)]
pub struct DemoLogin {
    pub login: String,
    pub who: String,
    pub school: Option<String>,
}

/// A few pending join applications in every demo school (idempotent).
async fn ensure_demo_join_requests(services: &Services) -> anyhow::Result<()> {
    let hash = services
        .identity
        .hasher
        .hash(DEMO_PASSWORD)
        .await
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    for t in registry::list(&services.pool).await? {
        if t.status == campus_tenant::TenantStatus::Active {
            demo::seed_join_requests(&services.db, &t, &hash).await?;
        }
    }
    Ok(())
}

/// Accounts for the demo: the bureau, each school's administrator, a head teacher at the
/// first school who is also a parent at the second, and a parent at the first school.
async fn ensure_demo_accounts(services: &Services) -> anyhow::Result<Vec<DemoLogin>> {
    use campus_identity::account::{self, NewAccount};
    let pool = &services.pool;
    let hash = services
        .identity
        .hasher
        .hash(DEMO_PASSWORD)
        .await
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    let new = |username: Option<&'static str>,
               phone: Option<String>,
               display: String,
               county: Option<&'static str>| (username, phone, display, county);
    let mut tenants: Vec<_> = registry::list(pool)
        .await?
        .into_iter()
        .filter(|t| t.status == campus_tenant::TenantStatus::Active)
        .collect();
    // The demo county's order: the first school is the teacher's, the second her child's.
    tenants.sort_by_key(|t| {
        SCHOOLS
            .iter()
            .position(|s| s.slug == t.slug.as_str())
            .unwrap_or(usize::MAX)
    });
    let mut logins = Vec::new();

    let bureau = new(Some("bureau"), None, "教育局 李科长".into(), Some("bureau"));
    account::ensure(
        pool,
        &NewAccount {
            username: bureau.0,
            phone: None,
            display_name: &bureau.2,
            password_hash: &hash,
            county_role: bureau.3,
        },
    )
    .await?;
    logins.push(DemoLogin {
        login: "bureau".into(),
        who: "教育局 (education bureau)".into(),
        school: None,
    });

    for t in &tenants {
        let principal = demo::principal(&services.db, t).await?;
        let username = format!("{}.admin", t.slug);
        let id = account::ensure(
            pool,
            &NewAccount {
                username: Some(&username),
                phone: None,
                display_name: &principal.name,
                password_hash: &hash,
                county_role: None,
            },
        )
        .await?;
        account::set_membership(
            pool,
            id,
            t.id.0,
            &["school_admin", "principal"],
            Some(principal.id),
            None,
        )
        .await?;
        demo::seed_notices(
            &services.db,
            t,
            &demo::DemoSender {
                account_id: id,
                name: &principal.name,
                staff_id: principal.id,
            },
        )
        .await?;
        logins.push(DemoLogin {
            login: username,
            who: format!("{} 校长/管理员 (principal, admin)", principal.name),
            school: Some(t.slug.to_string()),
        });
    }

    if let [first, second, ..] = tenants.as_slice() {
        // A custom role, as a school admin would define one on /admin/roles.
        campus_identity::admin::store::save_role(
            pool,
            first.id.0,
            campus_identity::admin::store::first_admin(pool, first.id.0)
                .await?
                .context("the first school has an admin")?,
            "x_registrar",
            "教务员",
            &[
                campus_identity::Permission::StaffArea,
                campus_identity::Permission::PupilRecords,
                campus_identity::Permission::ManageRoster,
            ],
        )
        .await?;
        let teacher = demo::head_teacher(&services.db, first).await?;
        let id = account::ensure(
            pool,
            &NewAccount {
                username: Some("teacher.demo"),
                phone: None,
                display_name: &teacher.name,
                password_hash: &hash,
                county_role: None,
            },
        )
        .await?;
        account::set_membership(
            pool,
            id,
            first.id.0,
            &["teacher", "head_teacher"],
            Some(teacher.id),
            None,
        )
        .await?;
        let as_parent = demo::guardian(&services.db, second, Some(&teacher)).await?;
        account::set_membership(pool, id, second.id.0, &["parent"], None, Some(as_parent.id))
            .await?;
        logins.push(DemoLogin {
            login: "teacher.demo".into(),
            who: format!(
                "{} 班主任 @ {}, 家长 @ {} (head teacher and parent)",
                teacher.name, first.slug, second.slug
            ),
            school: Some(first.slug.to_string()),
        });
        let parent = demo::guardian(&services.db, first, None).await?;
        if let Some(phone) = parent.phone.clone() {
            let id = account::ensure(
                pool,
                &NewAccount {
                    username: None,
                    phone: Some(&phone),
                    display_name: &parent.name,
                    password_hash: &hash,
                    county_role: None,
                },
            )
            .await?;
            account::set_membership(pool, id, first.id.0, &["parent"], None, Some(parent.id))
                .await?;
            // The demo's own account: its phone counts as proven (no admin chose a password
            // for a real person here).
            let mut conn = pool.acquire().await?;
            campus_identity::otp::mark_proven(&mut conn, id).await?;
            logins.push(DemoLogin {
                login: phone,
                who: format!("{} 家长 (parent)", parent.name),
                school: Some(first.slug.to_string()),
            });
        }
    }
    Ok(logins)
}

fn print_logins(services: &Services, logins: &[DemoLogin]) {
    let urls = &services.platform.urls;
    println!("  demo sign-ins (password {DEMO_PASSWORD}):");
    for l in logins
        .iter()
        .filter(|l| !l.login.ends_with(".admin"))
        .chain(
            logins
                .iter()
                .filter(|l| l.login.ends_with(".admin"))
                .take(3),
        )
    {
        let at = match &l.school {
            Some(slug) => urls.school(&Slug::parse(slug).expect("valid slug")),
            None => urls.county(),
        };
        println!("    {:<16} {}/login   {}", l.login, at, l.who);
    }
    println!("    (every school has <slug>.admin)");
    println!();
}

fn plan_for(students: u32) -> &'static str {
    match students {
        0..=1000 => "small",
        1001..=3000 => "standard",
        _ => "large",
    }
}

async fn print_banner(
    services: &Services,
    data: &Path,
    token: &str,
    created: usize,
    secs: f64,
) -> anyhow::Result<()> {
    let urls = &services.platform.urls;
    let tenants = registry::list(&services.pool).await?;
    println!();
    println!("县域智慧校园云平台 County Campus Cloud — demo ready in {secs:.1} s ({created} schools set up now, {} in all)", tenants.len());
    println!();
    println!("  county dashboard:  {}/dashboard", urls.county());
    println!(
        "  platform & API:    {}://localhost:{}/   (OpenAPI: /api/openapi.json)",
        urls.scheme,
        urls.port.unwrap_or(80)
    );
    println!("  schools:");
    for t in &tenants {
        println!("    {:<44} {}", urls.school(&t.slug), t.name);
    }
    let first = tenants
        .iter()
        .filter(|t| t.status == campus_tenant::TenantStatus::Active)
        .min_by_key(|t| {
            SCHOOLS
                .iter()
                .position(|s| s.slug == t.slug.as_str())
                .unwrap_or(usize::MAX)
        });
    if let Some(t) = first {
        let parents = join::active_link(&services.db, t, join::Kind::Parent).await?;
        let staff = join::active_link(&services.db, t, join::Kind::Staff).await?;
        println!();
        println!(
            "  join links of {} (review at {}/admin/join):",
            t.name,
            urls.school(&t.slug)
        );
        println!("    parents: {}{parents}", urls.school(&t.slug));
        println!("    staff:   {}{staff}", urls.school(&t.slug));
    }
    println!();
    println!("  admin API token:   {token}");
    println!(
        "    e.g. curl -H 'Authorization: Bearer {token}' {}://localhost:{}/admin/v1/tenants",
        urls.scheme,
        urls.port.unwrap_or(80)
    );
    println!(
        "  school-admin invitation links: {}",
        data.join("demo-logins.txt").display()
    );
    println!(
        "  data folder: {} (delete it to start over)",
        data.display()
    );
    println!();
    Ok(())
}
