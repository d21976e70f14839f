//! The simulator's token-signing key (RS256, like Entra's) and its JWKS. The key is fixed
//! and public: it signs simulator tokens only and protects nothing, and a fixed key keeps
//! start-up instant and tokens valid across simulator restarts.

use std::sync::LazyLock;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};

const PRIVATE_KEY_PEM: &str = include_str!("../keys/signing-key.pem");
/// Base64url modulus of the key above (`openssl rsa -modulus`, re-encoded).
const MODULUS: &str = include_str!("../keys/signing-key.n.txt");
const EXPONENT: &str = "AQAB";
pub const KEY_ID: &str = "tenantry-sim-1";

pub struct SigningKeys {
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
}

pub static KEYS: LazyLock<SigningKeys> = LazyLock::new(|| SigningKeys {
    encoding: EncodingKey::from_rsa_pem(PRIVATE_KEY_PEM.as_bytes())
        .expect("the embedded signing key is valid PEM"),
    decoding: DecodingKey::from_rsa_components(MODULUS.trim(), EXPONENT)
        .expect("the embedded modulus is valid"),
});

pub fn header() -> Header {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KEY_ID.to_owned());
    header.typ = Some("JWT".to_owned());
    header
}

/// The JSON Web Key Set served at `/{tenant}/discovery/v2.0/keys`.
pub fn jwks() -> Value {
    json!({
        "keys": [{
            "kty": "RSA",
            "use": "sig",
            "kid": KEY_ID,
            "n": MODULUS.trim(),
            "e": EXPONENT,
        }]
    })
}
