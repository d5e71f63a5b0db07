//! Keyed rate limits on sign-in attempts (governor): per client address and per login
//! name, in memory on each instance. They sit in front of the per-account lockout, which is
//! durable but only starts after wrong passwords; these also stop a flood of attempts
//! against many accounts from one address, or one account from many addresses, before any
//! password is hashed. Idle keys are swept so the maps stay small.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::IdentityState;

#[derive(Clone, Debug)]
pub struct LoginLimits {
    per_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    per_login: Arc<DefaultKeyedRateLimiter<String>>,
    /// Requests for a password-reset link from one address (10 an hour).
    mail_per_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// Links mailed to one account, reset or email confirmation (3 an hour).
    mail_per_account: Arc<DefaultKeyedRateLimiter<i64>>,
}

impl LoginLimits {
    /// `per_ip` attempts per minute from one address; half that (at least 10) for one login
    /// name from anywhere (the durable lockout after 5 wrong passwords comes first for a
    /// single account; this caps the attempts it must absorb).
    pub fn new(per_ip_per_minute: u32) -> Self {
        let per_ip = NonZeroU32::new(per_ip_per_minute.max(1)).expect("at least one");
        let per_login = NonZeroU32::new((per_ip_per_minute / 2).max(10)).expect("at least ten");
        Self {
            per_ip: Arc::new(RateLimiter::keyed(Quota::per_minute(per_ip))),
            per_login: Arc::new(RateLimiter::keyed(Quota::per_minute(per_login))),
            mail_per_ip: Arc::new(RateLimiter::keyed(Quota::per_hour(
                NonZeroU32::new(10).expect("ten"),
            ))),
            mail_per_account: Arc::new(RateLimiter::keyed(Quota::per_hour(
                NonZeroU32::new(3).expect("three"),
            ))),
        }
    }

    /// `Err(wait)` when this address asked for too many reset links.
    pub fn check_mail_ip(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        let clock = DefaultClock::default();
        match ip {
            Some(ip) => self
                .mail_per_ip
                .check_key(&ip)
                .map_err(|n| n.wait_time_from(clock.now())),
            None => Ok(()),
        }
    }

    /// Whether one more link may be mailed to this account now.
    pub fn allow_mail_to(&self, account_id: i64) -> bool {
        self.mail_per_account.check_key(&account_id).is_ok()
    }

    /// `Err(wait)` when this attempt exceeds a limit.
    pub fn check(&self, ip: Option<IpAddr>, login: &str) -> Result<(), Duration> {
        let clock = DefaultClock::default();
        if let Some(ip) = ip {
            self.per_ip
                .check_key(&ip)
                .map_err(|n| n.wait_time_from(clock.now()))?;
        }
        self.per_login
            .check_key(&login.to_ascii_lowercase())
            .map_err(|n| n.wait_time_from(clock.now()))
    }

    /// Forget keys whose limits are back to full.
    pub fn sweep(&self) {
        self.per_ip.retain_recent();
        self.per_ip.shrink_to_fit();
        self.per_login.retain_recent();
        self.per_login.shrink_to_fit();
        self.mail_per_ip.retain_recent();
        self.mail_per_account.retain_recent();
    }

    /// Sweeps every minute for as long as the returned task runs.
    pub fn spawn_sweeper(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                me.sweep();
            }
        })
    }

    /// Keys currently tracked (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.per_ip.len() + self.per_login.len()
    }
}

/// The client's address: the TCP peer, or behind a configured trusted proxy the address
/// it forwarded (`campus_limits::TrustedProxies`, the one rule the whole platform uses).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S> FromRequestParts<S> for ClientIp
where
    IdentityState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let st = IdentityState::from_ref(state);
        Ok(Self(
            st.proxies.client_ip_of(&parts.headers, &parts.extensions),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_is_limited_and_idle_keys_are_swept() {
        let limits = LoginLimits::new(6);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for i in 0..6 {
            // Different names: only the address limit applies.
            assert!(limits.check(Some(ip), &format!("user{i}")).is_ok());
        }
        let wait = limits.check(Some(ip), "user9").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(10));
        assert!(limits
            .check(Some("10.0.0.2".parse().unwrap()), "user9")
            .is_ok());
        assert!(limits.tracked() > 0);
    }

    #[test]
    fn one_login_name_is_limited_from_any_address() {
        let limits = LoginLimits::new(30);
        for i in 0..15 {
            let ip: IpAddr = format!("10.0.1.{i}").parse().unwrap();
            assert!(limits.check(Some(ip), "Teacher.Demo").is_ok());
        }
        assert!(limits
            .check(Some("10.0.2.1".parse().unwrap()), "teacher.demo")
            .is_err());
    }
}
