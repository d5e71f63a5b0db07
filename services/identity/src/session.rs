//! Server-side sessions: a random token in an `HttpOnly`, host-only cookie; only its
//! SHA-256 is stored, with the host it was issued for. A session is found only on that
//! host, so a cookie copied to another school's address is not a session there. Lookups
//! are cached with moka for a few seconds; revocation drops the cache entry, and ending
//! all of an account's sessions ([`end_all`]) makes every cached lookup of this process
//! stale.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// The cookie that carries the session token.
pub const COOKIE: &str = "campus_session";

/// One signed-in browser on one host.
#[derive(Clone, Debug)]
pub struct Session {
    pub account_id: i64,
    pub display_name: String,
    pub county_role: Option<String>,
    pub host: String,
    pub tenant_id: Option<i64>,
    /// Sent back in every form; a state-changing request without it is refused.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
    /// The sign-in behind this session passed a second factor.
    pub second_factor: bool,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    account_id: i64,
    display_name: String,
    county_role: Option<String>,
    host: String,
    tenant_id: Option<i64>,
    csrf_token: String,
    expires_at: DateTime<Utc>,
    second_factor: bool,
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Self {
        Self {
            account_id: r.account_id,
            display_name: r.display_name,
            county_role: r.county_role,
            host: r.host,
            tenant_id: r.tenant_id,
            csrf_token: r.csrf_token,
            expires_at: r.expires_at,
            second_factor: r.second_factor,
        }
    }
}

pub(crate) fn random_hex() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

pub(crate) fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Bumped whenever sessions are ended in bulk: cached lookups made before are reloaded.
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Ends every session of an account on every host (a new password, logout everywhere, a
/// disabled account), in the caller's transaction if it gives one; cached lookups in this
/// process made before are reloaded. A caller that passes a transaction calls
/// [`SessionStore::forget_cached`] after its commit (a lookup between this statement and
/// the commit still saw the sessions). Other instances' caches forget within seconds.
pub async fn end_all<'e, E>(db: E, account_id: i64) -> sqlx::Result<u64>
where
    E: sqlx::PgExecutor<'e>,
{
    let done = sqlx::query(
        "update public.sessions set revoked_at = now() where account_id = $1 and revoked_at is null",
    )
    .bind(account_id)
    .execute(db)
    .await?;
    EPOCH.fetch_add(1, Ordering::SeqCst);
    Ok(done.rows_affected())
}

/// Ends every session of an account but the one whose token is `keep` (password change:
/// the browser that changed it stays signed in).
pub async fn end_all_except(pool: &PgPool, account_id: i64, keep: &str) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "update public.sessions set revoked_at = now()
          where account_id = $1 and revoked_at is null and token_hash <> $2",
    )
    .bind(account_id)
    .bind(hash(keep))
    .execute(pool)
    .await?;
    EPOCH.fetch_add(1, Ordering::SeqCst);
    Ok(done.rows_affected())
}

#[derive(Clone, Debug)]
pub struct SessionStore {
    pool: PgPool,
    cache: moka::future::Cache<Vec<u8>, (u64, Option<Session>)>,
    lifetime: Duration,
}

impl SessionStore {
    pub fn new(pool: PgPool, lifetime: Duration) -> Self {
        // Short TTL: a session revoked on another instance stops working within seconds.
        let cache = moka::future::Cache::builder()
            .max_capacity(200_000)
            .time_to_live(Duration::from_secs(10))
            .build();
        Self {
            pool,
            cache,
            lifetime,
        }
    }

    /// Creates a session for `account_id` on `host`; returns the token for the cookie.
    pub async fn create(
        &self,
        account_id: i64,
        host: &str,
        tenant_id: Option<i64>,
    ) -> sqlx::Result<String> {
        self.create_with(account_id, host, tenant_id, false).await
    }

    /// [`Self::create`], recording whether the sign-in passed a second factor.
    pub async fn create_with(
        &self,
        account_id: i64,
        host: &str,
        tenant_id: Option<i64>,
        second_factor: bool,
    ) -> sqlx::Result<String> {
        let token = random_hex();
        let expires = Utc::now()
            + chrono::Duration::from_std(self.lifetime).unwrap_or(chrono::Duration::hours(12));
        sqlx::query(
            "insert into public.sessions (token_hash, account_id, host, tenant_id, csrf_token, expires_at, second_factor)
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(hash(&token))
        .bind(account_id)
        .bind(host)
        .bind(tenant_id)
        .bind(random_hex())
        .bind(expires)
        .bind(second_factor)
        .execute(&self.pool)
        .await?;
        Ok(token)
    }

    /// The live session for `token` on `host`, if any.
    pub async fn find(&self, token: &str, host: &str) -> sqlx::Result<Option<Session>> {
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let key = hash(token);
        let epoch = EPOCH.load(Ordering::SeqCst);
        let load = |key: Vec<u8>| {
            let pool = self.pool.clone();
            async move {
                sqlx::query_as::<_, SessionRow>(
                    "select s.account_id, a.display_name, a.county_role, s.host, s.tenant_id, s.csrf_token, s.expires_at, s.second_factor
                       from public.sessions s join public.accounts a on a.id = s.account_id
                      where s.token_hash = $1 and s.revoked_at is null and s.expires_at > now() and a.status = 'active'",
                )
                .bind(key)
                .fetch_optional(&pool)
                .await
                .map(|row| (epoch, row.map(Session::from)))
            }
        };
        let mut cached = self
            .cache
            .try_get_with(key.clone(), load(key.clone()))
            .await
            .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        if cached.0 < epoch {
            // Loaded before sessions were ended in bulk: look again.
            self.cache.invalidate(&key).await;
            cached = self
                .cache
                .try_get_with(key.clone(), load(key.clone()))
                .await
                .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        }
        let session = cached.1;
        Ok(session.filter(|s| s.host == host && s.expires_at > Utc::now()))
    }

    /// Ends one session.
    pub async fn revoke(&self, token: &str) -> sqlx::Result<()> {
        let key = hash(token);
        sqlx::query("update public.sessions set revoked_at = now() where token_hash = $1 and revoked_at is null")
            .bind(&key)
            .execute(&self.pool)
            .await?;
        self.cache.invalidate(&key).await;
        Ok(())
    }

    /// Drops every cached session lookup (after [`end_all`] in a caller's transaction).
    pub fn forget_cached(&self) {
        self.cache.invalidate_all();
    }

    /// Ends every session of an account (logout everywhere, disabled account).
    pub async fn revoke_all(&self, account_id: i64) -> sqlx::Result<u64> {
        end_all(&self.pool, account_id).await
    }
}
