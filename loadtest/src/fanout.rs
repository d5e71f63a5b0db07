//! Notification fan-out benchmarks against the whole platform served in-process with the
//! `web` and `notify` roles, mail going to a real SMTP server on loopback
//! (`campus_devstack::SmtpSink`) through the pooled transport.
//!
//! 1. In-app: `notify::send` to a school's 6,000 guardians, timed from the start of the
//!    sending transaction until another connection sees all 6,000 inbox rows.
//! 2. County-wide: `POST /admin/v1/notices` to every guardian of 20 schools (100,000 in
//!    all), timed until every school's copy and all 100,000 inbox rows exist.
//! 3. Email: a notice to 6,000 guardians of a school that delivers by email, timed from the
//!    send until the sink holds 6,000 messages.
//! 4. Fairness: while a school's 100,000-recipient bulk notice is being mailed, another
//!    school's gate alert (safety lane) is sent, timed until its mail reaches the sink.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use campus::config::Role;
use campus::Services;
use campus_devstack::{Mail, SmtpSink};
use campus_school::notify::{self, Audience, Category, Message};
use campus_tenant::Tenant;

use crate::auth::Server;
use crate::stats::{median, ms, percentile, secs, thousands, verdict};
use crate::world::{with_world, World, BASE_DOMAIN};

const TARGET_INBOX: Duration = Duration::from_secs(2);
const TARGET_COUNTY: Duration = Duration::from_secs(30);
const TARGET_MAIL_RATE: f64 = 1_000.0;
const TARGET_ALERT: Duration = Duration::from_secs(1);

/// A plan whose send rate does not limit the benchmark (the transport is measured, not
/// the plan's cap).
const PLAN: &str = "bench-unlimited";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Measured in-app sends to one school's 6,000 guardians.
    #[arg(long, default_value_t = 5)]
    pub sends: usize,
    /// Schools of the county-wide notice.
    #[arg(long, default_value_t = 20)]
    pub schools: usize,
    /// Guardians in all those schools together.
    #[arg(long, default_value_t = 100_000)]
    pub county_guardians: usize,
    /// Guardians mailed in the email part.
    #[arg(long, default_value_t = 6_000)]
    pub mails: usize,
    /// Recipients of the bulk notice in the fairness part.
    #[arg(long, default_value_t = 100_000)]
    pub bulk: usize,
    /// Gate alerts timed during the bulk notice.
    #[arg(long, default_value_t = 5)]
    pub alerts: usize,
    /// Notification workers.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
}

pub async fn run(server_url: &str, args: Args) -> Result<String> {
    anyhow::ensure!(
        args.sends > 0
            && args.schools > 0
            && args.county_guardians >= args.schools
            && args.mails > 0
            && args.bulk > 0
            && args.alerts > 0
            && args.workers > 0,
        "every count must be positive, and --county-guardians at least --schools"
    );
    with_world(server_url, 'f', 24, |world| bench(world, args)).await
}

async fn bench(world: Arc<World>, args: Args) -> Result<String> {
    sqlx::query(
        "insert into public.plans (code, name, requests_per_second, burst, storage_quota_bytes, max_upload_bytes, notify_per_minute, db_concurrency)
         values ($1, 'benchmark', 10000, 20000, 1099511627776, 1073741824, 6000000, 16)",
    )
    .bind(PLAN)
    .execute(&world.pool)
    .await?;
    let sink = SmtpSink::start(0).await?;
    let cfg = campus::Config {
        roles: vec![Role::Web, Role::Notify],
        database_max_connections: 24,
        host_cache_ttl_secs: 3600,
        notify_workers: args.workers,
        smtp_url: Some(sink.url()),
        ..world.config()?
    };
    cfg.validate()?;
    let services = Services::with_pool(cfg, world.pool.clone()).await?;
    let server = Server::start(&services).await?;
    let result = measure(&services, &world, &sink, server.addr, &args).await;
    let stopped = server.stop().await;
    let out = result?;
    stopped?;
    Ok(out)
}

/// A school on the unlimited plan with `guardians` guardians (one pupil each, all with an
/// address), delivering by email when `email` is set.
async fn school(
    services: &Services,
    world: &World,
    slug: &str,
    guardians: usize,
    email: bool,
) -> Result<Tenant> {
    let onboarded = world.onboard(slug).await?;
    sqlx::query("update public.tenants set plan = $2 where slug = $1")
        .bind(slug)
        .bind(PLAN)
        .execute(&world.pool)
        .await?;
    let mut tenant = onboarded.tenant;
    tenant.plan = PLAN.into();
    let mut tx = services.db.school(&tenant).await?;
    sqlx::query(
        "with g as (insert into grades (level, name) values (1, '一年级') returning id),
              c as (insert into classes (grade_id, number, name) select id, 1, '一年级（1）班' from g returning id),
              s as (insert into students (student_no, name, class_id)
                    select 'S' || i, '学生' || i, c.id from c, generate_series(1, $1) i returning id, student_no),
              p as (insert into guardians (name, email, phone)
                    select '家长' || i, 'p' || i || '@' || $2 || '.example.cn', '139' || lpad(i::text, 8, '0')
                      from generate_series(1, $1) i returning id, phone)
         insert into student_guardians (student_id, guardian_id, relation)
         select s.id, p.id, 'parent' from s join p on substr(s.student_no, 2)::int = substr(p.phone, 4)::int",
    )
    .bind(guardians as i32)
    .bind(slug)
    .execute(&mut *tx)
    .await?;
    if email {
        sqlx::query("update notify_settings set email_enabled = true, quiet_start = '00:00', quiet_end = '00:00' where id = 1")
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(tenant)
}

async fn inbox_rows(services: &Services, t: &Tenant, key: &str) -> Result<i64> {
    let mut tx = services.db.school(t).await?;
    let n = sqlx::query_scalar("select count(*) from inbox_items where dedupe_key = $1")
        .bind(key)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(n)
}

async fn send(
    services: &Services,
    t: &Tenant,
    audience: &Audience,
    category: Category,
    key: &str,
) -> Result<u64> {
    let mut tx = services.db.school(t).await?;
    let n = notify::send(
        &mut tx,
        audience,
        &Message {
            category,
            title: "关于期末家长会的通知",
            body: "各位家长：本周五下午三点在学校礼堂召开期末家长会，请准时参加。",
            link: Some("/notices"),
            source: key,
            dedupe_key: Some(key),
            en: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(n)
}

async fn measure(
    services: &Services,
    world: &World,
    sink: &SmtpSink,
    addr: std::net::SocketAddr,
    args: &Args,
) -> Result<String> {
    let mut out = String::new();

    eprintln!("part 1: in-app sends to 6,000 guardians");
    let one = school(services, world, "fan-inbox", 6_000, false).await?;
    send(
        services,
        &one,
        &Audience::AllGuardians,
        Category::Notices,
        "warm",
    )
    .await?;
    let mut times = Vec::new();
    for i in 0..args.sends {
        let key = format!("inbox-{i}");
        let started = Instant::now();
        send(
            services,
            &one,
            &Audience::AllGuardians,
            Category::Notices,
            &key,
        )
        .await?;
        let n = inbox_rows(services, &one, &key).await?;
        times.push(started.elapsed());
        anyhow::ensure!(n == 6_000, "{n} inbox rows, not 6,000");
    }
    times.sort();
    let inbox_med = median(&times).context("no sends")?;
    let inbox_max = *times.last().context("no sends")?;

    eprintln!("part 2: a county-wide notice");
    let per_school = args.county_guardians / args.schools;
    let mut county = Vec::new();
    for i in 0..args.schools {
        let extra = if i == 0 {
            args.county_guardians - per_school * args.schools
        } else {
            0
        };
        county.push(
            school(
                services,
                world,
                &format!("fan-c{i:02}"),
                per_school + extra,
                false,
            )
            .await?,
        );
    }
    let token = campus::admin_tokens::create(&services.pool, "bench").await?;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let resp = http
        .post(format!("http://{addr}/admin/v1/notices"))
        .header(reqwest::header::HOST, format!("admin.{BASE_DOMAIN}"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "title": "关于做好寒假安全工作的通知",
            "body": "<p>各位家长：寒假将至，请加强对孩子的安全教育。</p>",
            "audience": "guardians",
            "schools": county.iter().map(|t| t.slug.to_string()).collect::<Vec<_>>(),
        }))
        .send()
        .await?;
    anyhow::ensure!(
        resp.status() == reqwest::StatusCode::ACCEPTED,
        "POST /admin/v1/notices: {}",
        resp.status()
    );
    let accepted = started.elapsed();
    let id = resp.json::<serde_json::Value>().await?["id"]
        .as_i64()
        .context("no id")?;
    let county_time = loop {
        let open: i64 = sqlx::query_scalar(
            "select count(*) from public.county_notice_schools where notice_id = $1 and done_at is null",
        )
        .bind(id)
        .fetch_one(&world.pool)
        .await?;
        if open == 0 {
            break started.elapsed();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "{open} schools still without the notice after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut county_rows = 0;
    for t in &county {
        let mut tx = services.db.school(t).await?;
        let n: i64 = sqlx::query_scalar(
            "select count(*) from inbox_items i join notices n on i.source = 'notice:' || n.id where n.county_notice_id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        county_rows += n;
    }

    eprintln!("part 3: email to {} guardians", args.mails);
    let mailed = school(services, world, "fan-mail", args.mails, true).await?;
    let mailbox = sink.mailbox();
    let before = mailbox.lock().expect("not poisoned").len();
    let started = Instant::now();
    send(
        services,
        &mailed,
        &Audience::AllGuardians,
        Category::Notices,
        "mail-1",
    )
    .await?;
    let (mail_time, first) = wait_for_count(
        &mailbox,
        before + args.mails,
        started,
        Duration::from_secs(300),
    )
    .await?;
    let mail_rate = args.mails as f64 / (mail_time - first).as_secs_f64().max(1e-3);
    let mail_overall = args.mails as f64 / mail_time.as_secs_f64();

    eprintln!(
        "part 4: gate alerts behind a {}-recipient bulk notice",
        args.bulk
    );
    let bulk = school(services, world, "fan-bulk", args.bulk, true).await?;
    let gate = school(services, world, "fan-gate", 10, true).await?;
    let bulk_started = Instant::now();
    let bulk_before = mailbox.lock().expect("not poisoned").len();
    send(
        services,
        &bulk,
        &Audience::AllGuardians,
        Category::Notices,
        "bulk-1",
    )
    .await?;
    // Let the bulk notice get going: expanded and being mailed.
    wait_for_count(
        &mailbox,
        bulk_before + 2_000,
        bulk_started,
        Duration::from_secs(300),
    )
    .await?;
    let mut alerts = Vec::new();
    for i in 0..args.alerts {
        let key = format!("gate-{i}");
        let student: i64 = {
            let mut tx = services.db.school(&gate).await?;
            let id = sqlx::query_scalar("select id from students order by id offset $1 limit 1")
                .bind(i as i64 % 10)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            id
        };
        let address = format!("p{}@fan-gate.example.cn", i % 10 + 1);
        let seen = mailbox.lock().expect("not poisoned").len();
        let started = Instant::now();
        send(
            services,
            &gate,
            &Audience::GuardiansOfStudents(vec![student]),
            Category::Safety,
            &key,
        )
        .await?;
        alerts.push(
            wait_for_mail_to(&mailbox, seen, &address, started, Duration::from_secs(60)).await?,
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bulk_sent_during = mailbox.lock().expect("not poisoned").len() - bulk_before;
    alerts.sort();
    let alert_med = median(&alerts).context("no alerts")?;
    let alert_max = *alerts.last().context("no alerts")?;

    out.push_str(&format!(
        "The platform runs in this process with the `web` and `notify` roles ({} notification \
         workers, batches of {}, a pool of {} Postgres connections); mail goes through the email \
         channel's SMTP pool ({} connections, the default `smtp_pool_size`) to a real SMTP \
         server on loopback (`campus_devstack::SmtpSink`). \
         Every school is on a plan whose send rate (6,000,000 a minute) does not limit the \
         benchmark, so the figures are the platform's, not a plan's cap. Quiet hours are off.\n\n",
        args.workers,
        services.cfg.notify_batch,
        services.cfg.database_max_connections,
        services.cfg.smtp_pool_size,
    ));
    out.push_str("| Part | What is timed | Figures |\n|---|---|---|\n");
    out.push_str(&format!(
        "| In-app, one school | `notify::send` to 6,000 guardians until another connection sees the 6,000 inbox rows ({} sends) | median {}, max {} |\n",
        args.sends, ms(inbox_med), ms(inbox_max),
    ));
    out.push_str(&format!(
        "| County-wide notice | `POST /admin/v1/notices` to {} guardians of {} schools until every school's copy is committed | answered in {}; all copies in {}; {} inbox rows |\n",
        thousands(args.county_guardians as u64), args.schools, ms(accepted), secs(county_time), thousands(county_rows as u64),
    ));
    out.push_str(&format!(
        "| Email | a notice to {} guardians until the SMTP server holds every message | first after {}, all after {}: {:.0} messages/s from the first (overall {:.0}/s) |\n",
        thousands(args.mails as u64), ms(first), secs(mail_time), mail_rate, mail_overall,
    ));
    out.push_str(&format!(
        "| Fairness | another school's gate alert (safety lane) sent while a {}-recipient bulk notice is being mailed, until its mail arrives ({} alerts) | median {}, p95 {}, max {}; {} bulk messages mailed meanwhile |\n\n",
        thousands(args.bulk as u64), args.alerts, ms(alert_med),
        ms(percentile(&alerts, 95.0).unwrap_or(alert_max)), ms(alert_max), thousands(bulk_sent_during as u64),
    ));
    out.push_str("| Target | Measured | Result |\n|---|---|---|\n");
    out.push_str(&format!(
        "| Fan-out: 6,000 in-app deliveries visible within {} s of the send | max {} | {} |\n",
        TARGET_INBOX.as_secs(),
        ms(inbox_max),
        verdict(inbox_max < TARGET_INBOX),
    ));
    out.push_str(&format!(
        "| Fan-out: a county-wide notice's {} in-app deliveries within {} s | {} ({} rows) | {} |\n",
        thousands(args.county_guardians as u64), TARGET_COUNTY.as_secs(), secs(county_time), thousands(county_rows as u64),
        verdict(county_time < TARGET_COUNTY && county_rows == args.county_guardians as i64),
    ));
    out.push_str(&format!(
        "| Fan-out: ≥ {:.0} emails/s to a local SMTP server with the pooled transport | {:.0}/s | {} |\n",
        TARGET_MAIL_RATE, mail_rate, verdict(mail_rate >= TARGET_MAIL_RATE),
    ));
    out.push_str(&format!(
        "| Fan-out: a gate alert behind another school's {}-recipient bulk notice delivered within {} s | max {} | {} |\n",
        thousands(args.bulk as u64), TARGET_ALERT.as_secs(), ms(alert_max), verdict(alert_max < TARGET_ALERT),
    ));
    Ok(out)
}

/// Waits until the sink holds `count` messages; returns the time to the last and to the
/// first new one since `started`.
async fn wait_for_count(
    mailbox: &Arc<Mutex<Vec<Mail>>>,
    count: usize,
    started: Instant,
    limit: Duration,
) -> Result<(Duration, Duration)> {
    let before = mailbox.lock().expect("not poisoned").len();
    let mut first = None;
    loop {
        let n = mailbox.lock().expect("not poisoned").len();
        if first.is_none() && n > before {
            first = Some(started.elapsed());
        }
        if n >= count {
            let all = started.elapsed();
            return Ok((all, first.unwrap_or(all)));
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "{n} of {count} messages after {} s",
            limit.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits for a message to `address` among those received after the first `seen`.
async fn wait_for_mail_to(
    mailbox: &Arc<Mutex<Vec<Mail>>>,
    mut seen: usize,
    address: &str,
    started: Instant,
    limit: Duration,
) -> Result<Duration> {
    loop {
        {
            let mail = mailbox.lock().expect("not poisoned");
            if mail[seen..]
                .iter()
                .any(|m| m.to.iter().any(|t| t == address))
            {
                return Ok(started.elapsed());
            }
            seen = mail.len();
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "no mail to {address} after {} s",
            limit.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
