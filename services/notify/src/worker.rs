//! The delivery workers (`campus serve --roles notify`). Any number run, on any number of
//! machines. A worker takes one school's lane at a time from the doorbell (safety first,
//! least recently served school first), expands that school's new jobs into deliveries
//! set-based, claims a batch of due deliveries within the school's send rate, sends them,
//! records the outcomes, and hands the lane back with the time its next work is due.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use campus_tenant::lifecycle::SchoolUrls;
use campus_tenant::{registry, Db, SchoolTx, Tenant, TenantId, TenantStatus};
use chrono::{DateTime, FixedOffset, NaiveTime, Utc};
use futures::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sqlx::Row;

use crate::channels::{Email, Outcome, Outgoing, Webhook};
use crate::guard::{Refused, Vetted, WebhookGuard};
use crate::metrics::Metrics;
use crate::model::{Category, Channel, Lane};
use crate::queue::{self, Turn};
use crate::render::{self, Parts, Template};
use crate::secret::SealingKey;

/// How the workers behave.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Deliveries claimed per turn.
    pub batch: u32,
    /// Seconds a claimed delivery stays with its worker before another may retry it.
    pub lease_secs: u64,
    /// Attempts before a delivery is dead.
    pub max_attempts: i32,
    /// First retry delay; doubled per attempt up to `retry_max_secs`, with jitter.
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    /// Sends in flight at once per turn.
    pub send_concurrency: usize,
    /// How long an idle worker waits before looking again without a wake-up.
    pub poll: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            batch: 200,
            lease_secs: 60,
            max_attempts: 8,
            retry_base_secs: 10,
            retry_max_secs: 3600,
            send_concurrency: 32,
            // Also the bound on a ring's wait in the rare case where it did not wake the
            // workers (see `notify_ring` in public migration 0012).
            poll: Duration::from_millis(500),
        }
    }
}

/// Everything the workers need; shared by every worker task of an instance.
#[derive(Debug)]
pub struct Notifier {
    db: Db,
    settings: WorkerSettings,
    urls: SchoolUrls,
    email: Option<Email>,
    county_webhook: Option<Webhook>,
    sealing: Option<SealingKey>,
    /// The county's provider: operators' own address, may be internal; no redirects.
    http: reqwest::Client,
    /// Schools' own providers: checked at every turn, reached only at the checked addresses.
    guard: WebhookGuard,
    school_clients: moka::sync::Cache<(Option<String>, Vec<std::net::SocketAddr>), reqwest::Client>,
    pub metrics: Metrics,
    tenants: moka::future::Cache<i64, Option<Arc<Tenant>>>,
    plans: moka::future::Cache<String, u32>,
    rates: moka::sync::Cache<(i64, u32), Arc<DefaultDirectRateLimiter>>,
    wake: tokio::sync::Notify,
}

/// Outside connections for [`Notifier::new`].
#[derive(Debug, Default)]
pub struct Transports {
    pub email: Option<Email>,
    pub county_webhook: Option<Webhook>,
    pub sealing: Option<SealingKey>,
    /// What schools' own provider addresses may be (`notify_webhook_allow`).
    pub guard: WebhookGuard,
}

/// A claimed delivery.
struct Claimed {
    id: i64,
    channel: Channel,
    address: String,
    attempts: i32,
    category: Category,
    title: String,
    body: String,
    link: Option<String>,
    queued_at: DateTime<Utc>,
    /// The English wording, when the recipient reads English and the message has it.
    english: Option<(String, String)>,
}

const CHINA: i32 = 8 * 3600;

/// Jobs expanded per statement (a turn's worth: most jobs are one pupil's or one person's).
const EXPAND_JOBS: i64 = 100;

impl Notifier {
    pub fn new(
        db: Db,
        settings: WorkerSettings,
        urls: SchoolUrls,
        t: Transports,
        metrics: Metrics,
    ) -> Self {
        Self {
            db,
            settings,
            urls,
            email: t.email,
            county_webhook: t.county_webhook,
            sealing: t.sealing,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            guard: t.guard,
            school_clients: moka::sync::Cache::builder()
                .time_to_idle(Duration::from_secs(600))
                .max_capacity(1_000)
                .build(),
            metrics,
            tenants: moka::future::Cache::builder()
                .time_to_live(Duration::from_secs(30))
                .max_capacity(10_000)
                .build(),
            plans: moka::future::Cache::builder()
                .time_to_live(Duration::from_secs(60))
                .build(),
            rates: moka::sync::Cache::builder()
                .time_to_idle(Duration::from_secs(600))
                .max_capacity(10_000)
                .build(),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Which outside channels this instance can deliver on, for the start-up log.
    pub fn describe(&self) -> String {
        format!(
            "email {}, SMS/WeChat county provider {}, school provider secrets {}",
            if self.email.is_some() {
                "on"
            } else {
                "off (smtp_url unset)"
            },
            if self.county_webhook.is_some() {
                "on"
            } else {
                "off (notify_webhook_url unset)"
            },
            if self.sealing.is_some() {
                "on"
            } else {
                "off (notify_secret_key unset)"
            },
        )
    }

    /// Runs `workers` worker loops and a listener that wakes them when a school rings.
    pub fn spawn(
        self: &Arc<Self>,
        workers: usize,
        listen_pool: sqlx::PgPool,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut handles = Vec::new();
        let me = self.clone();
        handles.push(tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect_with(&listen_pool).await {
                    Ok(mut l) => {
                        if l.listen(queue::CHANNEL).await.is_ok() {
                            while l.recv().await.is_ok() {
                                me.wake.notify_waiters();
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "notification listener cannot connect; retrying")
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
        for _ in 0..workers.max(1) {
            let me = self.clone();
            handles.push(tokio::spawn(async move {
                loop {
                    match me.run_once().await {
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "notification worker turn failed; will retry"),
                    }
                    let _ = tokio::time::timeout(me.settings.poll, me.wake.notified()).await;
                }
            }));
        }
        handles
    }

    /// Serves one school's lane: the first lane (safety first) with a school due. Returns
    /// whether there was one.
    pub async fn run_once(&self) -> anyhow::Result<bool> {
        queue::fold(self.db.shared()).await?;
        for lane in Lane::ALL {
            if let Some(turn) =
                queue::claim(self.db.shared(), lane, self.settings.lease_secs).await?
            {
                self.serve(turn).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Runs turns until no school has work due now (tests and `campus notify drain`).
    pub async fn drain(&self) -> anyhow::Result<u32> {
        let mut turns = 0;
        while self.run_once().await? {
            turns += 1;
        }
        Ok(turns)
    }

    async fn tenant(&self, id: TenantId) -> anyhow::Result<Option<Arc<Tenant>>> {
        let db = self.db.clone();
        self.tenants
            .try_get_with(id.0, async move {
                registry::find_by_id(db.shared(), id)
                    .await
                    .map(|t| t.map(Arc::new))
            })
            .await
            .map_err(|e| anyhow::anyhow!("looking up school {}: {e}", id.0))
    }

    async fn per_minute(&self, plan: &str) -> anyhow::Result<u32> {
        let db = self.db.clone();
        let code = plan.to_owned();
        self.plans
            .try_get_with(plan.to_owned(), async move {
                sqlx::query_scalar::<_, i32>(
                    "select notify_per_minute from public.plans where code = $1",
                )
                .bind(code)
                .fetch_optional(db.shared())
                .await
                .map(|n| n.unwrap_or(1000).max(1) as u32)
            })
            .await
            .map_err(|e| anyhow::anyhow!("reading plan {plan}: {e}"))
    }

    /// How many sends the school may make now (at most `want`), or when it may again.
    fn take(&self, tenant: i64, per_minute: u32, want: u32) -> Result<u32, DateTime<Utc>> {
        let limiter = self.rates.get_with((tenant, per_minute), || {
            let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
            // A burst of a tenth of a minute's quota, so a big notice starts at once.
            let burst = NonZeroU32::new((per_minute / 10).max(1)).unwrap_or(NonZeroU32::MIN);
            Arc::new(RateLimiter::direct(Quota::per_minute(n).allow_burst(burst)))
        });
        let mut got = 0;
        while got < want {
            match limiter.check() {
                Ok(()) => got += 1,
                Err(not_until) if got == 0 => {
                    let wait = not_until.wait_time_from(governor::clock::Clock::now(
                        &governor::clock::DefaultClock::default(),
                    ));
                    return Err(Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default());
                }
                Err(_) => break,
            }
        }
        Ok(got)
    }

    async fn serve(&self, turn: Turn) -> anyhow::Result<()> {
        let Some(tenant) = self.tenant(turn.tenant).await? else {
            // The school is gone (purged): nothing of it can be delivered.
            turn.finish(None).await?;
            return Ok(());
        };
        if tenant.status != TenantStatus::Active {
            turn.defer(Utc::now() + chrono::Duration::minutes(5))
                .await?;
            return Ok(());
        }
        let lane = turn.lane;
        self.expand(&tenant, lane).await?;
        let due = self.due_now(&tenant, lane).await?;
        if due > 0 {
            let per_minute = self.per_minute(&tenant.plan).await?;
            let room = match self.take(tenant.id.0, per_minute, due) {
                Ok(n) => n,
                Err(until) => {
                    turn.defer(until).await?;
                    return Ok(());
                }
            };
            let claimed = self.claim(&tenant, lane, room).await?;
            if !claimed.is_empty() {
                self.deliver(&tenant, claimed).await?;
            }
        }
        let next = self.next_due(&tenant, lane).await?;
        turn.finish(next).await?;
        Ok(())
    }

    /// Expands the school's new jobs of `lane` into deliveries: up to [`EXPAND_JOBS`] jobs
    /// in one statement, each job's audience through `notify_audience` (tenant migration
    /// 0024), so a morning's thousands of one-pupil jobs cost a statement per turn, not one
    /// each. A job whose audience is unreadable is expanded to no one.
    async fn expand(&self, tenant: &Tenant, lane: Lane) -> anyhow::Result<()> {
        let now = Utc::now();
        let mut tx = self.db.school(tenant).await?;
        // When each category may start (quiet hours are the school's, read in the
        // statement) and the channels it uses when a person has not chosen.
        let codes: Vec<&str> = Category::ALL.iter().map(|c| c.code()).collect();
        let quiet: Vec<bool> = Category::ALL
            .iter()
            .map(|c| c.respects_quiet_hours())
            .collect();
        let defaults: Vec<String> = Category::ALL
            .iter()
            .map(|c| {
                let v: Vec<&str> = c.default_channels().iter().map(|ch| ch.code()).collect();
                v.join(",")
            })
            .collect();
        let settings = sqlx::query(
            "select email_enabled, sms_enabled, wechat_enabled, quiet_start, quiet_end from notify_settings where id = 1",
        )
        .fetch_one(&mut *tx)
        .await?;
        let enabled: Vec<&str> = [
            ("email_enabled", Channel::Email),
            ("sms_enabled", Channel::Sms),
            ("wechat_enabled", Channel::Wechat),
        ]
        .into_iter()
        .filter(|(col, _)| settings.get::<bool, _>(*col))
        .map(|(_, c)| c.code())
        .collect();
        let after_quiet =
            after_quiet_hours(now, settings.get("quiet_start"), settings.get("quiet_end"));
        let starts: Vec<DateTime<Utc>> = quiet
            .iter()
            .map(|q| if *q { after_quiet } else { now })
            .collect();
        let counts: Vec<(String, i64)> = sqlx::query_as(
            "with j as (
               select id, audience,
                      coalesce((select code from unnest($3::text[]) as k(code) where code = category), 'general') as category
                 from notify_jobs
                where lane = $1 and expanded_at is null order by id limit $2 for update skip locked),
             c(code, start_at, defaults) as (
               select code, start_at, string_to_array(defaults, ',')
                 from unnest($3::text[], $4::timestamptz[], $5::text[]) as c(code, start_at, defaults)),
             r as (
               select j.id as job, j.category, c.start_at, c.defaults, a.k, a.i
                 from j join c on c.code = j.category
                 cross join lateral notify_audience(j.audience) as a(k, i)),
             addr as (
               select r.*, s.email, s.phone from r join staff s on r.k = 'staff' and s.id = r.i
               union all
               select r.*, g.email, g.phone from r join guardians g on r.k = 'guardian' and g.id = r.i),
             ins as (
               insert into notify_deliveries (job_id, recipient_kind, recipient_id, channel, address, lane, next_attempt_at, lang)
               select a.job, a.k, a.i, ch.ch, case ch.ch when 'email' then a.email else a.phone end, $1, a.start_at,
                      coalesce((select l.lang from notify_languages l
                                 where l.recipient_kind = a.k and l.recipient_id = a.i), 'zh')
                 from addr a
                 cross join lateral unnest(coalesce(
                     (select p.channels from notify_preferences p
                       where p.recipient_kind = a.k and p.recipient_id = a.i and p.category = a.category),
                     a.defaults)) as ch(ch)
                where ch.ch = any($6::text[])
                  and case ch.ch when 'email' then a.email else a.phone end is not null
               on conflict do nothing
               returning job_id, channel),
             per_job as (select job_id, count(*) as n from ins group by job_id),
             done as (
               update notify_jobs n
                  set expanded_at = now(), recipients = coalesce(p.n, 0)
                 from j left join per_job p on p.job_id = j.id
                where n.id = j.id)
             select channel, count(*) from ins group by channel",
        )
        .bind(lane.0)
        .bind(EXPAND_JOBS)
        .bind(&codes)
        .bind(&starts)
        .bind(&defaults)
        .bind(&enabled)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        for (channel, n) in &counts {
            self.metrics
                .queued
                .with_label_values(&[tenant.slug.as_str(), channel])
                .inc_by(*n as u64);
        }
        Ok(())
    }

    /// How many deliveries of the lane are due now (at most a batch), counting those whose
    /// worker's lease ran out; so only that many sends are taken from the school's rate.
    async fn due_now(&self, tenant: &Tenant, lane: Lane) -> anyhow::Result<u32> {
        let mut tx = self.db.school(tenant).await?;
        let n: i64 = sqlx::query_scalar(
            "select (select count(*) from (select 1 from notify_deliveries
                       where lane = $1 and status = 'pending' and next_attempt_at <= now() limit $2) p)
                  + (select count(*) from (select 1 from notify_deliveries
                       where lane = $1 and status = 'sending' and lease_until < now() limit $2) s)",
        )
        .bind(lane.0)
        .bind(i64::from(self.settings.batch))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((n as u32).min(self.settings.batch))
    }

    async fn claim(&self, tenant: &Tenant, lane: Lane, room: u32) -> anyhow::Result<Vec<Claimed>> {
        let mut tx = self.db.school(tenant).await?;
        // Deliveries whose worker vanished (crash, lost connection) go back to the queue;
        // their idempotency key is unchanged, so the retry is recognisable downstream.
        sqlx::query(
            "update notify_deliveries set status = 'pending', next_attempt_at = now(), lease_until = null
              where lane = $1 and status = 'sending' and lease_until < now()",
        )
        .bind(lane.0)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "update notify_deliveries d
                set status = 'sending', attempts = d.attempts + 1,
                    lease_until = now() + make_interval(secs => $3)
               from notify_jobs j
              where j.id = d.job_id
                and d.id in (select id from notify_deliveries
                              where lane = $1 and status = 'pending' and next_attempt_at <= now()
                              order by next_attempt_at, id
                              limit $2
                              for update skip locked)
          returning d.id, d.channel, d.address, d.attempts, d.lang, j.category, j.title, j.body, j.link, j.created_at,
                    j.title_en, j.body_en",
        )
        .bind(lane.0)
        .bind(i64::from(room))
        .bind(self.settings.lease_secs as f64)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|r| Claimed {
                id: r.get("id"),
                channel: Channel::parse(r.get("channel")).unwrap_or(Channel::Wechat),
                address: r.get("address"),
                attempts: r.get("attempts"),
                category: Category::parse(r.get("category")).unwrap_or(Category::General),
                title: r.get("title"),
                body: r.get("body"),
                link: r.get("link"),
                queued_at: r.get("created_at"),
                english: match (
                    r.get::<&str, _>("lang"),
                    r.get::<Option<String>, _>("title_en"),
                    r.get::<Option<String>, _>("body_en"),
                ) {
                    ("en", Some(t), Some(b)) => Some((t, b)),
                    _ => None,
                },
            })
            .collect())
    }

    /// The school's own provider (`true`), if it configured one, else the county's.
    async fn webhook_for(
        &self,
        tx: &mut SchoolTx,
    ) -> anyhow::Result<Result<(Webhook, bool), String>> {
        let row: Option<(Option<String>, Option<Vec<u8>>)> =
            sqlx::query_as("select webhook_url, webhook_secret from notify_settings where id = 1")
                .fetch_optional(&mut **tx)
                .await?;
        if let Some((Some(url), Some(sealed))) = row {
            let Some(key) = &self.sealing else {
                return Ok(Err(
                    "学校的短信/微信服务商密钥无法解密：平台未配置 notify_secret_key".into(),
                ));
            };
            return Ok(match key.open(&sealed) {
                Ok(secret) => Ok((
                    Webhook {
                        url,
                        key_id: "school".into(),
                        secret,
                    },
                    true,
                )),
                Err(e) => Err(e.to_string()),
            });
        }
        Ok(self
            .county_webhook
            .clone()
            .map(|w| (w, false))
            .ok_or_else(|| "未配置短信/微信服务商（notify_webhook_url）".to_string()))
    }

    /// The provider and the client to reach it with: a school's own address is checked now
    /// (its name resolved and every address judged), and reached only at those addresses.
    async fn provider(
        &self,
        found: Result<(Webhook, bool), String>,
    ) -> Result<(Webhook, reqwest::Client), Outcome> {
        let (webhook, own) = found.map_err(Outcome::Permanent)?;
        if !own {
            return Ok((webhook, self.http.clone()));
        }
        let vetted: Vetted = self.guard.vet(&webhook.url).await.map_err(|e| match e {
            // A name server's bad moment is worth another try; an internal address is not.
            Refused::Unresolvable => Outcome::Retry(e.to_string()),
            _ => Outcome::Permanent(e.to_string()),
        })?;
        let key = (vetted.name.clone(), vetted.addrs.clone());
        let client = match self.school_clients.get(&key) {
            Some(c) => c,
            None => {
                let c = WebhookGuard::client(&vetted).map_err(|e| {
                    tracing::warn!(error = %e, "cannot build the provider client");
                    Outcome::Retry("provider client unavailable".into())
                })?;
                self.school_clients.insert(key, c.clone());
                c
            }
        };
        Ok((webhook, client))
    }

    async fn deliver(&self, tenant: &Tenant, claimed: Vec<Claimed>) -> anyhow::Result<()> {
        let (templates, webhook) = {
            let mut tx = self.db.school(tenant).await?;
            let templates =
                sqlx::query("select category, channel, subject, body from notify_templates")
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .filter_map(|r| {
                        Some(Template {
                            category: Category::parse(r.get("category"))?,
                            channel: Channel::parse(r.get("channel"))?,
                            subject: r.get("subject"),
                            body: r.get("body"),
                        })
                    })
                    .collect::<Vec<_>>();
            let webhook = if claimed.iter().any(|c| c.channel != Channel::Email) {
                Some(self.webhook_for(&mut tx).await?)
            } else {
                None
            };
            tx.commit().await?;
            (templates, webhook)
        };
        let webhook = match webhook {
            Some(found) => Some(self.provider(found).await),
            None => None,
        };
        let site = self.urls.school(&tenant.slug);
        let outcomes: Vec<(i64, Outcome, i32, Channel, DateTime<Utc>)> =
            futures::stream::iter(claimed)
                .map(|c| {
                    let templates = &templates;
                    let webhook = &webhook;
                    let site = &site;
                    async move {
                        let link = c
                            .link
                            .as_deref()
                            .map(|l| format!("{site}{l}"))
                            .unwrap_or_default();
                        let (subject, text) = match &c.english {
                            // The school's templates are its Chinese wording.
                            Some((title, body)) => render::render_english(
                                c.channel,
                                &Parts {
                                    school: &tenant.name,
                                    title,
                                    body,
                                    link: &link,
                                },
                            ),
                            None => render::render(
                                templates,
                                c.category,
                                c.channel,
                                &Parts {
                                    school: &tenant.name,
                                    title: &c.title,
                                    body: &c.body,
                                    link: &link,
                                },
                            ),
                        };
                        let out = Outgoing {
                            idempotency_key: format!("campus-{}-{}", tenant.id.0, c.id),
                            channel: c.channel,
                            address: c.address.clone(),
                            school_slug: tenant.slug.to_string(),
                            category: c.category.code(),
                            subject,
                            text,
                        };
                        let outcome = match c.channel {
                            Channel::Email => match &self.email {
                                Some(email) => email.send(&out).await,
                                None => {
                                    Outcome::Permanent("平台未配置发信服务器（smtp_url）".into())
                                }
                            },
                            Channel::Sms | Channel::Wechat => match webhook {
                                Some(Ok((w, client))) => w.send(client, &out).await,
                                Some(Err(outcome)) => outcome.clone(),
                                None => Outcome::Permanent("no provider".into()),
                            },
                        };
                        (c.id, outcome, c.attempts, c.channel, c.queued_at)
                    }
                })
                .buffer_unordered(self.settings.send_concurrency.max(1))
                .collect()
                .await;
        self.record(tenant, &outcomes).await
    }

    async fn record(
        &self,
        tenant: &Tenant,
        outcomes: &[(i64, Outcome, i32, Channel, DateTime<Utc>)],
    ) -> anyhow::Result<()> {
        let now = Utc::now();
        let mut ids = Vec::new();
        let mut statuses = Vec::new();
        let mut next = Vec::new();
        let mut errors: Vec<Option<String>> = Vec::new();
        for (id, outcome, attempts, channel, queued_at) in outcomes {
            let slug = tenant.slug.as_str();
            ids.push(*id);
            match outcome {
                Outcome::Sent => {
                    statuses.push("sent");
                    next.push(now);
                    errors.push(None);
                    self.metrics
                        .sent
                        .with_label_values(&[slug, channel.code()])
                        .inc();
                    self.metrics
                        .latency
                        .with_label_values(&[slug, channel.code()])
                        .observe((now - *queued_at).num_milliseconds().max(0) as f64 / 1000.0);
                }
                Outcome::Retry(why) if *attempts < self.settings.max_attempts => {
                    statuses.push("pending");
                    next.push(now + backoff(&self.settings, *attempts));
                    errors.push(Some(why.chars().take(500).collect()));
                    self.metrics
                        .failed
                        .with_label_values(&[slug, channel.code(), "retry"])
                        .inc();
                }
                Outcome::Retry(why) | Outcome::Permanent(why) => {
                    statuses.push("dead");
                    next.push(now);
                    errors.push(Some(why.chars().take(500).collect()));
                    self.metrics
                        .failed
                        .with_label_values(&[slug, channel.code(), "dead"])
                        .inc();
                    tracing::warn!(school = %tenant.slug, delivery = id, channel = channel.code(), error = %why, "delivery dead");
                }
            }
        }
        let mut tx = self.db.school(tenant).await?;
        sqlx::query(
            "update notify_deliveries d
                set status = v.status,
                    sent_at = case when v.status = 'sent' then now() end,
                    next_attempt_at = v.next, last_error = v.err, lease_until = null
               from unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[]) as v(id, status, next, err)
              where d.id = v.id and d.status = 'sending'",
        )
        .bind(&ids)
        .bind(&statuses)
        .bind(&next)
        .bind(&errors)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn next_due(&self, tenant: &Tenant, lane: Lane) -> anyhow::Result<Option<DateTime<Utc>>> {
        let mut tx = self.db.school(tenant).await?;
        let next: Option<DateTime<Utc>> = sqlx::query_scalar(
            "select least(
                (select min(next_attempt_at) from notify_deliveries where lane = $1 and status = 'pending'),
                (select min(lease_until) from notify_deliveries where lane = $1 and status = 'sending'),
                (select now() from notify_jobs where lane = $1 and expanded_at is null limit 1))",
        )
        .bind(lane.0)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(next)
    }
}

/// `retry_base × 2^(attempts-1)`, at most `retry_max`, times a jitter in [0.5, 1.5).
fn backoff(s: &WorkerSettings, attempts: i32) -> chrono::Duration {
    let exp = (attempts.max(1) - 1).min(20) as u32;
    let secs = (s.retry_base_secs.saturating_mul(1u64 << exp)).min(s.retry_max_secs) as f64;
    let jitter: f64 = 0.5 + rand::random::<f64>();
    chrono::Duration::milliseconds((secs * jitter * 1000.0) as i64)
}

/// `now`, or the end of the quiet hours if `now` falls inside them (China time; the
/// window may wrap past midnight, e.g. 21:00–07:00).
pub fn after_quiet_hours(now: DateTime<Utc>, start: NaiveTime, end: NaiveTime) -> DateTime<Utc> {
    if start == end {
        return now;
    }
    let china = FixedOffset::east_opt(CHINA).expect("valid offset");
    let local = now.with_timezone(&china);
    let t = local.time();
    let inside = if start < end {
        t >= start && t < end
    } else {
        t >= start || t < end
    };
    if !inside {
        return now;
    }
    let mut day = local.date_naive();
    if t >= end {
        day = day.succ_opt().unwrap_or(day);
    }
    day.and_time(end)
        .and_local_timezone(china)
        .single()
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn china(h: u32, m: u32) -> DateTime<Utc> {
        FixedOffset::east_opt(CHINA)
            .unwrap()
            .with_ymd_and_hms(2026, 11, 24, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn quiet_hours_hold_until_morning() {
        let (s, e) = (
            NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
            NaiveTime::from_hms_opt(7, 0, 0).unwrap(),
        );
        assert_eq!(after_quiet_hours(china(12, 0), s, e), china(12, 0));
        assert_eq!(after_quiet_hours(china(6, 30), s, e), china(7, 0));
        let late = after_quiet_hours(china(22, 15), s, e);
        assert_eq!(late, china(7, 0) + chrono::Duration::days(1));
        assert_eq!(after_quiet_hours(china(7, 0), s, e), china(7, 0));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let s = WorkerSettings::default();
        let first = backoff(&s, 1).num_milliseconds();
        assert!((5_000..15_000).contains(&first));
        let late = backoff(&s, 30).num_milliseconds();
        assert!(late <= 3600 * 1500);
    }
}
