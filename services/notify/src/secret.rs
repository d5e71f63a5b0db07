//! Provider credentials a school stores are sealed with AES-256-GCM under the platform's
//! key (`notify_secret_key`), so a database dump alone does not reveal them.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};

const NONCE: usize = 12;

/// The platform key, parsed from 64 hex digits.
#[derive(Clone)]
pub struct SealingKey(Aes256Gcm);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("notify_secret_key must be 64 hex digits (32 bytes)")]
    BadKey,
    #[error("a stored secret could not be opened (was notify_secret_key changed?)")]
    Corrupt,
}

impl SealingKey {
    pub fn from_hex(hex_key: &str) -> Result<Self, SealError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| SealError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SealError::BadKey);
        }
        Aes256Gcm::new_from_slice(&bytes)
            .map(Self)
            .map_err(|_| SealError::BadKey)
    }

    pub fn seal(&self, plain: &str) -> Vec<u8> {
        let nonce: [u8; NONCE] = rand::random();
        let mut out = nonce.to_vec();
        out.extend(
            self.0
                .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
                .expect("AES-GCM encryption of a short secret cannot fail"),
        );
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<String, SealError> {
        if sealed.len() <= NONCE {
            return Err(SealError::Corrupt);
        }
        let (nonce, body) = sealed.split_at(NONCE);
        let plain = self
            .0
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| SealError::Corrupt)?;
        String::from_utf8(plain).map_err(|_| SealError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let key = SealingKey::from_hex(&"ab".repeat(32)).unwrap();
        let sealed = key.seal("provider-secret");
        assert!(!sealed.windows(8).any(|w| w == b"provider"));
        assert_eq!(key.open(&sealed).unwrap(), "provider-secret");
        let other = SealingKey::from_hex(&"cd".repeat(32)).unwrap();
        assert!(other.open(&sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open(&tampered).is_err());
        assert!(SealingKey::from_hex("abcd").is_err());
    }
}
