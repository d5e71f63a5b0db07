//! County IT centre API tokens: 256-bit random values shown once, stored as SHA-256.

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// The prefix makes leaked tokens easy to recognise in logs and secret scanners.
const PREFIX: &str = "cct_";

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub fn generate() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    format!("{PREFIX}{}", hex::encode(raw))
}

/// Creates a token and returns it; only its hash is stored.
pub async fn create(pool: &PgPool, name: &str) -> anyhow::Result<String> {
    let token = generate();
    insert(pool, name, &token).await?;
    Ok(token)
}

/// Makes sure `token` is a valid token (used for `admin_token` in the configuration).
pub async fn ensure(pool: &PgPool, name: &str, token: &str) -> anyhow::Result<()> {
    insert(pool, name, token).await
}

async fn insert(pool: &PgPool, name: &str, token: &str) -> anyhow::Result<()> {
    sqlx::query("insert into public.admin_tokens (name, token_hash) values ($1, $2) on conflict (token_hash) do nothing")
        .bind(name)
        .bind(hash(token))
        .execute(pool)
        .await?;
    Ok(())
}

/// The token's name if it is valid and not revoked.
pub async fn verify(pool: &PgPool, token: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "update public.admin_tokens set last_used_at = now()
          where token_hash = $1 and revoked_at is null returning name",
    )
    .bind(hash(token))
    .fetch_optional(pool)
    .await
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn list(pool: &PgPool) -> sqlx::Result<Vec<TokenInfo>> {
    sqlx::query_as("select id, name, created_at, last_used_at, revoked_at from public.admin_tokens order by id")
        .fetch_all(pool)
        .await
}

pub async fn revoke(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update public.admin_tokens set revoked_at = now() where id = $1 and revoked_at is null",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
