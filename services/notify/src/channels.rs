//! The outside channels: email over SMTP (lettre's client on [`SmtpPool`]'s connections)
//! and SMS/WeChat through a
//! provider webhook (an HTTP POST signed with HMAC-SHA256). Every call carries the
//! delivery's idempotency key, so a retry after a crash is recognisable downstream.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use sha2::Sha256;

use crate::model::Channel;
use crate::smtp::{SmtpError, SmtpPool};

/// What happened to one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Worth trying again later.
    Retry(String),
    /// Will never work (bad address, refused by the provider): dead at once.
    Permanent(String),
}

/// One message to one address, rendered.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub idempotency_key: String,
    pub channel: Channel,
    pub address: String,
    pub school_slug: String,
    pub category: &'static str,
    pub subject: String,
    pub text: String,
}

/// SMTP settings: a lettre URL (`smtp://host:25`, `smtp://user:pass@host:587?tls=required`,
/// `smtps://user:pass@host`; see [`crate::smtp`]) and the From address.
#[derive(Clone)]
pub struct Email {
    pool: Arc<SmtpPool>,
    from: Mailbox,
    message_id_domain: String,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email").field("from", &self.from).finish()
    }
}

impl Email {
    pub fn new(
        url: &str,
        from: &str,
        pool_size: u32,
        message_id_domain: &str,
    ) -> anyhow::Result<Self> {
        let pool = Arc::new(SmtpPool::new(url, pool_size, Duration::from_secs(20))?);
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("smtp_from {from:?} is not an email address: {e}"))?;
        Ok(Self {
            pool,
            from,
            message_id_domain: message_id_domain.to_owned(),
        })
    }

    pub async fn send(&self, m: &Outgoing) -> Outcome {
        let to: Mailbox = match m.address.parse() {
            Ok(to) => to,
            Err(e) => return Outcome::Permanent(format!("invalid address: {e}")),
        };
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&m.subject)
            .message_id(Some(format!(
                "<{}@{}>",
                m.idempotency_key, self.message_id_domain
            )))
            .header(ContentType::TEXT_PLAIN)
            .body(m.text.clone());
        let message = match message {
            Ok(msg) => msg,
            Err(e) => return Outcome::Permanent(format!("cannot build the message: {e}")),
        };
        match self
            .pool
            .send(message.envelope(), &message.formatted())
            .await
        {
            Ok(()) => Outcome::Sent,
            Err(SmtpError::Permanent(why)) => Outcome::Permanent(why),
            Err(SmtpError::Transient(why)) => Outcome::Retry(why),
        }
    }
}

/// A provider endpoint for SMS and WeChat: the county's, or a school's own.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub url: String,
    pub key_id: String,
    pub secret: String,
}

/// `hex(HMAC-SHA256(secret, timestamp + "." + body))`, the `X-Campus-Signature` header.
pub fn webhook_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

impl Webhook {
    pub async fn send(&self, http: &reqwest::Client, m: &Outgoing) -> Outcome {
        let body = serde_json::json!({
            "id": m.idempotency_key,
            "channel": m.channel.code(),
            "to": m.address,
            "school": m.school_slug,
            "category": m.category,
            "title": m.subject,
            "text": m.text,
        });
        let body = serde_json::to_vec(&body).expect("JSON serialises");
        let ts = chrono::Utc::now().timestamp().to_string();
        let sig = webhook_signature(&self.secret, &ts, &body);
        let resp = http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("idempotency-key", &m.idempotency_key)
            .header("x-campus-key-id", &self.key_id)
            .header("x-campus-timestamp", &ts)
            .header("x-campus-signature", sig)
            .body(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => Outcome::Sent,
            Ok(r) => {
                // Only the status line is kept and shown: a provider's (or anything else's)
                // response text never reaches the school's pages.
                let status = r.status();
                let why = format!("provider answered HTTP {}", status.as_u16());
                // 408, 429 and 5xx are the provider's trouble; other 4xx are ours, and a
                // redirect is never followed (the address must be the provider's own).
                if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                    Outcome::Retry(why)
                } else {
                    Outcome::Permanent(why)
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "provider unreachable");
                Outcome::Retry(
                    if e.is_timeout() {
                        "provider unreachable: timed out"
                    } else if e.is_connect() {
                        "provider unreachable: no connection"
                    } else {
                        "provider unreachable"
                    }
                    .into(),
                )
            }
        }
    }
}
