//! SMS one-time codes that prove a person holds a phone: 6 digits, valid 5 minutes, at
//! most 5 tries, kept only as a salted hash, bound to one purpose and used once. A correct
//! code yields a proof (a random token, also kept hashed) that the next step of a form
//! redeems once, inside the transaction that acts on it. Sending is limited per phone
//! (one a minute, five an hour) and per client address (ten an hour), durably in
//! `public.phone_codes`, and goes through the county's SMS provider webhook (the
//! notification service's channel).

use std::net::IpAddr;

use axum::http::StatusCode;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use campus_notify::channels::{Outcome, Outgoing, Webhook};

/// How long a code may be typed back.
pub const CODE_MINUTES: i32 = 5;
/// Wrong tries before a code is locked.
pub const MAX_TRIES: i32 = 5;
/// How long a proof from a correct code may be redeemed.
pub const PROOF_MINUTES: i32 = 15;
/// Codes per phone per hour (and at most one per minute).
pub const PER_PHONE_PER_HOUR: i64 = 5;
/// Codes requested from one client address per hour.
pub const PER_ADDRESS_PER_HOUR: i64 = 10;

/// What a code is for; a code sent for one purpose proves nothing for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Applying to join a school.
    Join,
    /// Accepting a school's or the county's invitation.
    Invite,
    /// Choosing a new password.
    Reset,
    /// Proving the phone of a signed-in account.
    Link,
}

impl Purpose {
    pub fn code(self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Invite => "invite",
            Self::Reset => "reset",
            Self::Link => "link",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::Join => "申请加入学校",
            Self::Invite => "接受邀请",
            Self::Reset => "重置密码",
            Self::Link => "验证手机号",
        }
    }
}

/// The county's SMS channel: its provider webhook and an HTTP client.
#[derive(Clone, Debug)]
pub struct Sms {
    pub webhook: Webhook,
    pub http: reqwest::Client,
}

impl Sms {
    pub fn new(webhook: Webhook) -> Self {
        Self {
            webhook,
            http: reqwest::Client::new(),
        }
    }

    /// Sends one text message now; `Err` says why it did not go out.
    pub async fn send(
        &self,
        key: &str,
        phone: &str,
        school: &str,
        title: &str,
        text: &str,
    ) -> Result<(), String> {
        let m = Outgoing {
            idempotency_key: key.to_owned(),
            channel: campus_notify::Channel::Sms,
            address: phone.to_owned(),
            school_slug: school.to_owned(),
            category: "account",
            subject: title.to_owned(),
            text: text.to_owned(),
        };
        match self.webhook.send(&self.http, &m).await {
            Outcome::Sent => Ok(()),
            Outcome::Retry(why) | Outcome::Permanent(why) => Err(why),
        }
    }
}

/// Why a code was not sent or not accepted. Each has a message a person can act on
/// (Chinese, then English) and a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtpError {
    /// No SMS channel is configured on this platform.
    NoChannel,
    /// Too many codes for this phone or from this address; wait this many seconds.
    TooMany(u64),
    /// The provider did not take the message.
    SendFailed,
    /// Wrong code (or none was sent, or it was for something else).
    Wrong,
    /// The code is older than five minutes.
    Expired,
    /// Five wrong tries: the code no longer works.
    Locked,
    /// The proof from an earlier step is missing, used or too old.
    NoProof,
    Unavailable,
}

impl OtpError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoChannel | Self::SendFailed | Self::Unavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Wrong | Self::Expired | Self::Locked | Self::NoProof => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
        }
    }

    /// The message in Chinese (English in brackets).
    pub fn message(&self) -> String {
        match self {
            Self::NoChannel => "本平台尚未配置短信通道，无法发送验证码，请联系学校或县电教馆。(No SMS channel is configured, so no code can be sent; contact the school or the county IT centre.)".into(),
            Self::TooMany(secs) => format!("验证码发送过于频繁，请 {secs} 秒后再试。(Too many codes requested; try again in {secs} s.)"),
            Self::SendFailed => "短信发送失败，请稍后重试。(The text message could not be sent; try again later.)".into(),
            Self::Wrong => "验证码不正确。(Wrong code.)".into(),
            Self::Expired => "验证码已过期，请重新获取。(The code has expired; request a new one.)".into(),
            Self::Locked => "验证码错误次数过多，已失效，请重新获取。(Too many wrong tries; request a new code.)".into(),
            Self::NoProof => "验证已过期，请重新获取验证码。(The verification expired; request a new code.)".into(),
            Self::Unavailable => "服务暂时不可用，请稍后重试。(Temporarily unavailable.)".into(),
        }
    }

    /// Seconds to wait, for a `Retry-After` header.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::TooMany(s) => Some(*s),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for OtpError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "one-time code storage failed");
        Self::Unavailable
    }
}

fn digest(salt: &[u8], text: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(text.as_bytes());
    h.finalize().to_vec()
}

/// `138****5678`: enough for a person to recognise their number.
pub fn mask(phone: &str) -> String {
    if phone.len() == 11 && phone.is_ascii() {
        format!("{}****{}", &phone[..3], &phone[7..])
    } else {
        "****".into()
    }
}

/// Where and why a code is sent.
pub struct Request<'a> {
    pub phone: &'a str,
    pub purpose: Purpose,
    pub ip: Option<IpAddr>,
    /// The school (slug) or site the code is for; shown to the provider.
    pub site: &'a str,
    /// The site's name in the message.
    pub site_name: &'a str,
    /// False: record the request (so limits and answers are the same) but send nothing,
    /// e.g. a password reset for a phone that has no account.
    pub deliver: bool,
}

/// Creates a code and texts it. Limits are checked first; nothing is stored when the
/// platform has no SMS channel.
pub async fn send(pool: &PgPool, sms: Option<&Sms>, r: &Request<'_>) -> Result<(), OtpError> {
    let sms = sms.ok_or(OtpError::NoChannel)?;
    let ip = r.ip.map(|i| i.to_string());
    let mut tx = pool.begin().await?;
    // Serialise requests for one phone, so two at once cannot both pass the minute limit.
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('phone_code:' || $1, 0))")
        .bind(r.phone)
        .execute(&mut *tx)
        .await?;
    let (last_minute, last_hour, oldest): (i64, i64, Option<f64>) = sqlx::query_as(
        "select count(*) filter (where created_at > now() - interval '60 seconds'),
                count(*),
                extract(epoch from (min(created_at) + interval '1 hour' - now()))::float8
           from public.phone_codes where phone = $1 and created_at > now() - interval '1 hour'",
    )
    .bind(r.phone)
    .fetch_one(&mut *tx)
    .await?;
    if last_minute > 0 {
        let wait: f64 = sqlx::query_scalar(
            "select extract(epoch from (max(created_at) + interval '60 seconds' - now()))::float8
               from public.phone_codes where phone = $1",
        )
        .bind(r.phone)
        .fetch_one(&mut *tx)
        .await?;
        return Err(OtpError::TooMany(wait.ceil().max(1.0) as u64));
    }
    if last_hour >= PER_PHONE_PER_HOUR {
        return Err(OtpError::TooMany(
            oldest.unwrap_or(60.0).ceil().max(1.0) as u64
        ));
    }
    if let Some(ip) = &ip {
        let (from_here, oldest): (i64, Option<f64>) = sqlx::query_as(
            "select count(*), extract(epoch from (min(created_at) + interval '1 hour' - now()))::float8
               from public.phone_codes where client_ip = $1 and created_at > now() - interval '1 hour'",
        )
        .bind(ip)
        .fetch_one(&mut *tx)
        .await?;
        if from_here >= PER_ADDRESS_PER_HOUR {
            return Err(OtpError::TooMany(
                oldest.unwrap_or(60.0).ceil().max(1.0) as u64
            ));
        }
    }
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    // Earlier codes for the same purpose stop working: only the newest counts.
    sqlx::query(
        "update public.phone_codes set used_at = now()
          where phone = $1 and purpose = $2 and used_at is null and verified_at is null",
    )
    .bind(r.phone)
    .bind(r.purpose.code())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "delete from public.phone_codes where phone = $1 and created_at < now() - interval '1 day'",
    )
    .bind(r.phone)
    .execute(&mut *tx)
    .await?;
    let id: i64 = sqlx::query_scalar(
        "insert into public.phone_codes (phone, purpose, salt, code_hash, client_ip, expires_at)
         values ($1, $2, $3, $4, $5, now() + make_interval(mins => $6)) returning id",
    )
    .bind(r.phone)
    .bind(r.purpose.code())
    .bind(&salt[..])
    .bind(digest(&salt, &code))
    .bind(&ip)
    .bind(CODE_MINUTES)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    if !r.deliver {
        return Ok(());
    }
    let text = format!(
        "【{}】您正在{}，验证码 {code}，{CODE_MINUTES} 分钟内有效。请勿告诉他人。",
        r.site_name,
        r.purpose.words()
    );
    if let Err(why) = sms
        .send(&format!("otp:{id}"), r.phone, r.site, "验证码", &text)
        .await
    {
        tracing::warn!(error = %why, "a one-time code could not be sent");
        // A code that never arrived does not count against the person's limits.
        sqlx::query("delete from public.phone_codes where id = $1")
            .bind(id)
            .execute(pool)
            .await?;
        return Err(OtpError::SendFailed);
    }
    tracing::info!(purpose = r.purpose.code(), "one-time code sent");
    Ok(())
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    id: i64,
    salt: Vec<u8>,
    code_hash: Vec<u8>,
    tries: i32,
    expired: bool,
}

/// Checks a typed code against the newest code sent to `phone` for `purpose`. Right: the
/// code is spent and a proof is returned for the next step. Wrong: one try is used.
pub async fn verify(
    pool: &PgPool,
    phone: &str,
    purpose: Purpose,
    typed: &str,
) -> Result<String, OtpError> {
    let typed = typed.trim();
    let mut tx = pool.begin().await?;
    let row: Option<CodeRow> = sqlx::query_as(
        "select id, salt, code_hash, tries, expires_at <= now() as expired
           from public.phone_codes
          where phone = $1 and purpose = $2 and used_at is null and verified_at is null
          order by created_at desc, id desc limit 1 for update",
    )
    .bind(phone)
    .bind(purpose.code())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(OtpError::Wrong);
    };
    if row.tries >= MAX_TRIES {
        return Err(OtpError::Locked);
    }
    if row.expired {
        return Err(OtpError::Expired);
    }
    let right = typed.len() == 6
        && typed.bytes().all(|b| b.is_ascii_digit())
        && constant_eq(&digest(&row.salt, typed), &row.code_hash);
    if !right {
        let tries: i32 = sqlx::query_scalar(
            "update public.phone_codes set tries = tries + 1 where id = $1 returning tries",
        )
        .bind(row.id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        return Err(if tries >= MAX_TRIES {
            OtpError::Locked
        } else {
            OtpError::Wrong
        });
    }
    let proof = crate::session::random_hex();
    sqlx::query("update public.phone_codes set verified_at = now(), proof_hash = $2 where id = $1")
        .bind(row.id)
        .bind(digest(b"proof", &proof))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(proof)
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `proof` (from [`verify`]) is still good for `phone` and `purpose`, without
/// spending it (to show the next step of a form).
pub async fn proof_ok(
    pool: &PgPool,
    phone: &str,
    purpose: Purpose,
    proof: &str,
) -> Result<bool, OtpError> {
    if proof.len() != 64 {
        return Ok(false);
    }
    Ok(sqlx::query_scalar(
        "select exists(select 1 from public.phone_codes
                        where proof_hash = $1 and phone = $2 and purpose = $3 and used_at is null
                          and verified_at > now() - make_interval(mins => $4))",
    )
    .bind(digest(b"proof", proof))
    .bind(phone)
    .bind(purpose.code())
    .bind(PROOF_MINUTES)
    .fetch_one(pool)
    .await?)
}

/// Spends the proof in the caller's transaction; false if it is not (or no longer) good.
pub async fn redeem(
    conn: &mut PgConnection,
    phone: &str,
    purpose: Purpose,
    proof: &str,
) -> sqlx::Result<bool> {
    if proof.len() != 64 {
        return Ok(false);
    }
    let done = sqlx::query(
        "update public.phone_codes set used_at = now()
          where proof_hash = $1 and phone = $2 and purpose = $3 and used_at is null
            and verified_at > now() - make_interval(mins => $4)",
    )
    .bind(digest(b"proof", proof))
    .bind(phone)
    .bind(purpose.code())
    .bind(PROOF_MINUTES)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks the account's phone as proven (it was proven by a code just now).
pub async fn mark_proven(conn: &mut PgConnection, account_id: i64) -> sqlx::Result<()> {
    sqlx::query(
        "update public.accounts set phone_verified_at = coalesce(phone_verified_at, now()), updated_at = now()
          where id = $1 and phone is not null",
    )
    .bind(account_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_masked_and_hashes_depend_on_the_salt() {
        assert_eq!(mask("13800138000"), "138****8000");
        assert_eq!(mask("x"), "****");
        assert_ne!(digest(b"a", "123456"), digest(b"b", "123456"));
        assert!(constant_eq(&digest(b"a", "1"), &digest(b"a", "1")));
        assert!(!constant_eq(&digest(b"a", "1"), &digest(b"a", "2")));
    }
}
