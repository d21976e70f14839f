//! API-key secrets are stored as HMAC-SHA-256 under a server-side pepper. Keys carry 256
//! random bits, so a slow password hash would add nothing but cost on every request; the
//! pepper means a stolen database alone cannot be used to check guesses.

use std::sync::Arc;

use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox};
use tenantry_domain::KeyId;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The shortest pepper accepted, in bytes.
pub const MIN_PEPPER_BYTES: usize = 32;

/// The server's API-key pepper. Cheap to clone; never printed.
#[derive(Clone)]
pub struct ApiKeyPepper(Arc<SecretBox<Vec<u8>>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the API-key pepper must be at least {MIN_PEPPER_BYTES} bytes")]
pub struct InvalidPepper;

impl ApiKeyPepper {
    pub fn new(bytes: Vec<u8>) -> Result<Self, InvalidPepper> {
        if bytes.len() < MIN_PEPPER_BYTES {
            return Err(InvalidPepper);
        }
        Ok(Self(Arc::new(SecretBox::new(Box::new(bytes)))))
    }

    fn mac(&self, key_id: &KeyId, secret: &str) -> HmacSha256 {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.0.expose_secret())
            .expect("HMAC takes keys of any length");
        mac.update(key_id.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(secret.as_bytes());
        mac
    }

    /// The value stored for a new key.
    pub(crate) fn digest(&self, key_id: &KeyId, secret: &str) -> Vec<u8> {
        self.mac(key_id, secret).finalize().into_bytes().to_vec()
    }

    /// Constant-time comparison of a presented secret with a stored digest.
    pub(crate) fn verify(&self, key_id: &KeyId, secret: &str, stored: &[u8]) -> bool {
        self.mac(key_id, secret).verify_slice(stored).is_ok()
    }
}

impl std::fmt::Debug for ApiKeyPepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeyPepper([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_id() -> KeyId {
        KeyId::parse("00112233445566ff").expect("valid key id")
    }

    #[test]
    fn verifies_only_the_secret_it_digested() {
        let pepper = ApiKeyPepper::new(vec![7; 32]).expect("long enough");
        let stored = pepper.digest(&key_id(), "secret-a");
        assert_eq!(stored.len(), 32);
        assert!(pepper.verify(&key_id(), "secret-a", &stored));
        assert!(!pepper.verify(&key_id(), "secret-b", &stored));
        let other_id = KeyId::parse("00112233445566fe").expect("valid key id");
        assert!(
            !pepper.verify(&other_id, "secret-a", &stored),
            "digest is bound to the key id"
        );
        let other_pepper = ApiKeyPepper::new(vec![8; 32]).expect("long enough");
        assert!(!other_pepper.verify(&key_id(), "secret-a", &stored));
    }

    #[test]
    fn refuses_short_peppers_and_never_prints_them() {
        assert_eq!(ApiKeyPepper::new(vec![1; 31]).err(), Some(InvalidPepper));
        let pepper = ApiKeyPepper::new(vec![b'p'; 40]).expect("long enough");
        assert!(!format!("{pepper:?}").contains("ppp"));
    }
}
