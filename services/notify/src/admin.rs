//! What the school's pages read and change: delivery settings (channels, quiet hours, the
//! school's own provider), templates, each person's channel choices, queue figures, dead
//! deliveries and their retry, and delivery status per recipient of one send.

use std::collections::HashMap;

use campus_tenant::SchoolTx;
use chrono::{DateTime, NaiveTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::guard::{Refused, WebhookGuard};
use crate::model::{Category, Channel, Lane, Language, Recipient};
use crate::render::check_template;
use crate::secret::SealingKey;

/// A school's delivery settings (the provider secret is never read back).
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub email_enabled: bool,
    pub sms_enabled: bool,
    pub wechat_enabled: bool,
    pub quiet_start: NaiveTime,
    pub quiet_end: NaiveTime,
    pub webhook_url: Option<String>,
    pub has_webhook_secret: bool,
}

pub async fn settings(tx: &mut SchoolTx) -> sqlx::Result<Settings> {
    let r = sqlx::query(
        "select email_enabled, sms_enabled, wechat_enabled, quiet_start, quiet_end, webhook_url,
                webhook_secret is not null as has_secret
           from notify_settings where id = 1",
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(Settings {
        email_enabled: r.get("email_enabled"),
        sms_enabled: r.get("sms_enabled"),
        wechat_enabled: r.get("wechat_enabled"),
        quiet_start: r.get("quiet_start"),
        quiet_end: r.get("quiet_end"),
        webhook_url: r.get("webhook_url"),
        has_webhook_secret: r.get("has_secret"),
    })
}

/// A change of settings, as submitted.
#[derive(Clone, Debug, Default)]
pub struct SettingsChange {
    pub email_enabled: bool,
    pub sms_enabled: bool,
    pub wechat_enabled: bool,
    pub quiet_start: String,
    pub quiet_end: String,
    /// Empty: use the county's provider.
    pub webhook_url: String,
    /// Empty: keep the stored secret.
    pub webhook_secret: String,
}

/// A reason to refuse input, in Chinese and English.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid(pub String, pub String);

fn parse_time(s: &str, zh: &str, en: &str) -> Result<NaiveTime, Invalid> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(s.trim(), "%H:%M:%S"))
        .map_err(|_| {
            Invalid(
                format!("{zh}须为 时:分，例如 21:00。"),
                format!("{en} must be HH:MM, e.g. 21:00."),
            )
        })
}

/// Checks a school's own provider address before it is saved: an http(s) URL whose host
/// is not, and does not resolve to, an internal address (see [`crate::guard`]). A name
/// that does not resolve yet is accepted: every send checks it again.
pub async fn check_provider(guard: &WebhookGuard, url: &str) -> Result<(), Invalid> {
    let url = url.trim();
    if url.is_empty() {
        return Ok(());
    }
    match guard.vet(url).await {
        Ok(_) | Err(Refused::Unresolvable) => Ok(()),
        Err(refused) => {
            let (zh, en) = refused.message();
            Err(Invalid(zh, en))
        }
    }
}

pub async fn save_settings(
    tx: &mut SchoolTx,
    change: &SettingsChange,
    key: Option<&SealingKey>,
) -> Result<Result<(), Invalid>, sqlx::Error> {
    let start = match parse_time(&change.quiet_start, "免打扰开始时间", "Quiet hours start")
    {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    let end = match parse_time(&change.quiet_end, "免打扰结束时间", "Quiet hours end") {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    let url = change.webhook_url.trim();
    if !url.is_empty() {
        let ok = url::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        if ok.is_none() || url.len() > 500 {
            return Ok(Err(Invalid(
                "服务商地址须为 http(s):// 开头的网址。".into(),
                "The provider address must be an http(s):// URL.".into(),
            )));
        }
    }
    let secret = change.webhook_secret.trim();
    let sealed = if secret.is_empty() {
        None
    } else {
        if secret.len() < 16 || secret.len() > 200 {
            return Ok(Err(Invalid(
                "服务商密钥长度须在 16 到 200 个字符之间。".into(),
                "The provider secret must be 16 to 200 characters.".into(),
            )));
        }
        let Some(key) = key else {
            return Ok(Err(Invalid(
                "平台未配置加密密钥（notify_secret_key），不能保存学校自己的服务商密钥；请联系县电教中心。".into(),
                "The platform has no notify_secret_key, so a school's own provider secret cannot be stored; ask the county IT centre.".into(),
            )));
        };
        Some(key.seal(secret))
    };
    let current = settings(tx).await?;
    if !url.is_empty() && sealed.is_none() && !current.has_webhook_secret {
        return Ok(Err(Invalid(
            "使用学校自己的服务商时须填写密钥。".into(),
            "A school's own provider needs its secret.".into(),
        )));
    }
    sqlx::query(
        "update notify_settings
            set email_enabled = $1, sms_enabled = $2, wechat_enabled = $3,
                quiet_start = $4, quiet_end = $5,
                webhook_url = nullif($6, ''),
                webhook_secret = case when nullif($6, '') is null then null else coalesce($7, webhook_secret) end,
                updated_at = now()
          where id = 1",
    )
    .bind(change.email_enabled)
    .bind(change.sms_enabled)
    .bind(change.wechat_enabled)
    .bind(start)
    .bind(end)
    .bind(url)
    .bind(sealed)
    .execute(&mut **tx)
    .await?;
    Ok(Ok(()))
}

/// The school's templates.
pub async fn templates(tx: &mut SchoolTx) -> sqlx::Result<Vec<crate::render::Template>> {
    Ok(sqlx::query(
        "select category, channel, subject, body from notify_templates order by category, channel",
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .filter_map(|r| {
        Some(crate::render::Template {
            category: Category::parse(r.get("category"))?,
            channel: Channel::parse(r.get("channel"))?,
            subject: r.get("subject"),
            body: r.get("body"),
        })
    })
    .collect())
}

/// Saves (or, with an empty body, removes) the school's template for a kind and channel.
pub async fn save_template(
    tx: &mut SchoolTx,
    category: Category,
    channel: Channel,
    subject: &str,
    body: &str,
) -> Result<Result<(), Invalid>, sqlx::Error> {
    let (subject, body) = (subject.trim(), body.trim());
    if body.is_empty() {
        sqlx::query("delete from notify_templates where category = $1 and channel = $2")
            .bind(category.code())
            .bind(channel.code())
            .execute(&mut **tx)
            .await?;
        return Ok(Ok(()));
    }
    if subject.chars().count() > 200 || body.chars().count() > 1000 {
        return Ok(Err(Invalid(
            "模板过长：标题最多 200 字，正文最多 1000 字。".into(),
            "Template too long: subject up to 200, body up to 1,000 characters.".into(),
        )));
    }
    for t in [subject, body] {
        if let Err(why) = check_template(t) {
            return Ok(Err(Invalid(
                format!("模板有误：{why}"),
                format!("Template error: {why}"),
            )));
        }
    }
    sqlx::query(
        "insert into notify_templates (category, channel, subject, body) values ($1, $2, $3, $4)
         on conflict (category, channel) do update set subject = excluded.subject, body = excluded.body, updated_at = now()",
    )
    .bind(category.code())
    .bind(channel.code())
    .bind(subject)
    .bind(body)
    .execute(&mut **tx)
    .await?;
    Ok(Ok(()))
}

/// A person's channels per kind of message (the defaults where they have not chosen).
pub async fn preferences(
    tx: &mut SchoolTx,
    who: Recipient,
) -> sqlx::Result<Vec<(Category, Vec<Channel>)>> {
    let rows: Vec<(String, Vec<String>)> = sqlx::query_as(
        "select category, channels from notify_preferences where recipient_kind = $1 and recipient_id = $2",
    )
    .bind(who.kind())
    .bind(who.id())
    .fetch_all(&mut **tx)
    .await?;
    Ok(Category::ALL
        .into_iter()
        .map(|c| {
            let chosen = rows
                .iter()
                .find(|(code, _)| code == c.code())
                .map(|(_, ch)| {
                    ch.iter()
                        .filter_map(|x| Channel::parse(x))
                        .collect::<Vec<_>>()
                });
            (c, chosen.unwrap_or_else(|| c.default_channels().to_vec()))
        })
        .collect())
}

pub async fn save_preferences(
    tx: &mut SchoolTx,
    who: Recipient,
    choices: &[(Category, Vec<Channel>)],
) -> sqlx::Result<()> {
    for (category, channels) in choices {
        let codes: Vec<&str> = channels.iter().map(|c| c.code()).collect();
        sqlx::query(
            "insert into notify_preferences (recipient_kind, recipient_id, category, channels) values ($1, $2, $3, $4)
             on conflict (recipient_kind, recipient_id, category) do update set channels = excluded.channels, updated_at = now()",
        )
        .bind(who.kind())
        .bind(who.id())
        .bind(category.code())
        .bind(codes)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The language a person reads their messages in (Chinese unless they chose English).
pub async fn language(tx: &mut SchoolTx, who: Recipient) -> sqlx::Result<Language> {
    let code: Option<String> = sqlx::query_scalar(
        "select lang from notify_languages where recipient_kind = $1 and recipient_id = $2",
    )
    .bind(who.kind())
    .bind(who.id())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(code
        .as_deref()
        .and_then(Language::parse)
        .unwrap_or_default())
}

pub async fn save_language(tx: &mut SchoolTx, who: Recipient, lang: Language) -> sqlx::Result<()> {
    sqlx::query(
        "insert into notify_languages (recipient_kind, recipient_id, lang) values ($1, $2, $3)
         on conflict (recipient_kind, recipient_id) do update set lang = excluded.lang, updated_at = now()",
    )
    .bind(who.kind())
    .bind(who.id())
    .bind(lang.code())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deliveries by channel and state.
#[derive(Clone, Debug, Default, Serialize)]
pub struct QueueFigures {
    pub rows: Vec<ChannelFigures>,
    pub jobs_waiting: i64,
    pub oldest_waiting: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChannelFigures {
    pub channel: String,
    pub waiting: i64,
    pub sending: i64,
    pub sent: i64,
    pub dead: i64,
}

pub async fn figures(tx: &mut SchoolTx) -> sqlx::Result<QueueFigures> {
    let rows = sqlx::query(
        "select channel,
                count(*) filter (where status = 'pending') as waiting,
                count(*) filter (where status = 'sending') as sending,
                count(*) filter (where status = 'sent') as sent,
                count(*) filter (where status = 'dead') as dead
           from notify_deliveries group by channel order by channel",
    )
    .fetch_all(&mut **tx)
    .await?;
    let (jobs_waiting, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "select count(*), min(created_at) from notify_jobs where expanded_at is null",
    )
    .fetch_one(&mut **tx)
    .await?;
    let oldest_delivery: Option<DateTime<Utc>> = sqlx::query_scalar(
        "select min(created_at) from notify_deliveries where status in ('pending', 'sending')",
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(QueueFigures {
        rows: rows
            .into_iter()
            .map(|r| ChannelFigures {
                channel: r.get("channel"),
                waiting: r.get("waiting"),
                sending: r.get("sending"),
                sent: r.get("sent"),
                dead: r.get("dead"),
            })
            .collect(),
        jobs_waiting,
        oldest_waiting: [oldest, oldest_delivery].into_iter().flatten().min(),
    })
}

/// A delivery that gave up.
#[derive(Clone, Debug, Serialize)]
pub struct Dead {
    pub id: i64,
    pub recipient_kind: String,
    pub recipient_id: i64,
    pub recipient_name: Option<String>,
    pub channel: String,
    pub address: String,
    pub title: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn dead(tx: &mut SchoolTx, limit: i64) -> sqlx::Result<Vec<Dead>> {
    let rows = sqlx::query(
        "select d.id, d.recipient_kind, d.recipient_id, d.channel, d.address, d.attempts, d.last_error, d.created_at,
                j.title,
                case d.recipient_kind when 'staff' then (select name from staff where id = d.recipient_id)
                                      else (select name from guardians where id = d.recipient_id) end as name
           from notify_deliveries d join notify_jobs j on j.id = d.job_id
          where d.status = 'dead'
          order by d.id desc limit $1",
    )
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Dead {
            id: r.get("id"),
            recipient_kind: r.get("recipient_kind"),
            recipient_id: r.get("recipient_id"),
            recipient_name: r.get("name"),
            channel: r.get("channel"),
            address: r.get("address"),
            title: r.get("title"),
            attempts: r.get("attempts"),
            last_error: r.get("last_error"),
            created_at: r.get("created_at"),
        })
        .collect())
}

/// Puts dead deliveries back in the queue (all of them when `ids` is None); returns how
/// many. Their idempotency keys are unchanged.
pub async fn retry_dead(tx: &mut SchoolTx, ids: Option<&[i64]>) -> sqlx::Result<u64> {
    let lanes: Vec<(i16, i64)> = sqlx::query_as(
        "with r as (
           update notify_deliveries set status = 'pending', attempts = 0, next_attempt_at = now(), last_error = null
            where status = 'dead' and ($1::bigint[] is null or id = any($1))
           returning lane)
         select lane, count(*) from r group by lane",
    )
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    for (lane, _) in &lanes {
        crate::queue::ring(tx, Lane(*lane)).await?;
    }
    Ok(lanes.iter().map(|(_, n)| *n as u64).sum())
}

/// Delivery states per recipient of everything sent with `source` (e.g. `notice:12`):
/// for the sender's lists.
pub async fn statuses_for_source(
    tx: &mut SchoolTx,
    source: &str,
) -> sqlx::Result<HashMap<Recipient, Vec<(Channel, String)>>> {
    let rows: Vec<(String, i64, String, String)> = sqlx::query_as(
        "select d.recipient_kind, d.recipient_id, d.channel, d.status
           from notify_deliveries d join notify_jobs j on j.id = d.job_id
          where j.source = $1 order by d.channel",
    )
    .bind(source)
    .fetch_all(&mut **tx)
    .await?;
    let mut out: HashMap<Recipient, Vec<(Channel, String)>> = HashMap::new();
    for (kind, id, channel, status) in rows {
        if let (Some(r), Some(c)) = (Recipient::parse(&kind, id), Channel::parse(&channel)) {
            out.entry(r).or_default().push((c, status));
        }
    }
    Ok(out)
}
