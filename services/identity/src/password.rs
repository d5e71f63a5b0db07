//! Password hashing with Argon2id, off the async runtime's core threads and with bounded
//! concurrency, so a burst of sign-ins cannot starve other requests.
//!
//! Parameters (OWASP's recommendation for Argon2id): 19 MiB of memory, 2 iterations, one
//! lane. Hashes are stored in PHC string form, which records the parameters, so they can be
//! raised later without invalidating existing hashes.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;

pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const LANES: u32 = 1;

fn argon2() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(MEMORY_KIB, ITERATIONS, LANES, None).expect("valid Argon2 parameters"),
    )
}

/// Why a password is refused when it is set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("密码至少 8 位 (password must be at least 8 characters)")]
    TooShort,
    #[error("密码最多 128 位 (password must be at most 128 characters)")]
    TooLong,
    #[error("密码需同时包含字母和数字 (password needs both letters and digits)")]
    TooSimple,
}

/// The password policy: 8–128 characters with at least one letter and one digit.
pub fn check_policy(password: &str) -> Result<(), PolicyError> {
    let len = password.chars().count();
    if len < 8 {
        return Err(PolicyError::TooShort);
    }
    if len > 128 {
        return Err(PolicyError::TooLong);
    }
    let letters = password.chars().any(char::is_alphabetic);
    let digits = password.chars().any(|c| c.is_ascii_digit());
    if !(letters && digits) {
        return Err(PolicyError::TooSimple);
    }
    Ok(())
}

/// Hashes and verifies on tokio's blocking pool, at most `permits` at a time.
#[derive(Clone, Debug)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// A hash to verify against when the account does not exist, so that the answer takes
    /// as long as for a real account and does not reveal which logins exist.
    dummy: Arc<String>,
}

impl Hasher {
    pub fn new(concurrency: usize) -> Self {
        let dummy = hash_blocking("not-a-real-password-0").expect("hashing works");
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: Arc::new(dummy),
        }
    }

    pub async fn hash(&self, password: &str) -> Result<String, argon2::password_hash::Error> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore is never closed");
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .expect("hashing task")
    }

    /// Verifies `password` against `stored` (or against a dummy hash when `None`).
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore is never closed");
        let password = password.to_owned();
        let real = stored.is_some();
        let stored = stored.map_or_else(|| self.dummy.as_str().to_owned(), str::to_owned);
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored)
                .is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
        })
        .await
        .unwrap_or(false);
        ok && real
    }
}

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_record_their_parameters() {
        let h = Hasher::new(2);
        let stored = h.hash("correct horse 9").await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(h.verify("correct horse 9", Some(&stored)).await);
        assert!(!h.verify("wrong horse 9", Some(&stored)).await);
        assert!(
            !h.verify("correct horse 9", None).await,
            "no account never verifies"
        );
        assert!(!h.verify("x", Some("not a phc string")).await);
    }

    #[test]
    fn the_policy_wants_length_letters_and_digits() {
        assert_eq!(check_policy("abc1"), Err(PolicyError::TooShort));
        assert_eq!(check_policy("abcdefgh"), Err(PolicyError::TooSimple));
        assert_eq!(check_policy("12345678"), Err(PolicyError::TooSimple));
        assert_eq!(check_policy(&"a1".repeat(65)), Err(PolicyError::TooLong));
        assert!(check_policy("校园平台2026").is_ok());
    }
}
