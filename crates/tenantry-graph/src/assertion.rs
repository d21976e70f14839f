//! Client assertions for certificate credentials, per Microsoft's current
//! certificate-credentials guidance (rust-style-and-crates §2.11): a JWT signed PS256,
//! `x5t#S256` = base64url(SHA-256(certificate DER)) in the header, and `aud` = the token
//! endpoint, `iss` = `sub` = the client id, a fresh `jti`, `nbf` = `iat` = now and `exp`
//! ten minutes later.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tenantry_domain::CertificateCredential;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long an assertion is valid (Microsoft: 5–10 minutes).
const LIFETIME_SECS: i64 = 600;

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

/// Why no assertion could be signed (the stored key is unusable; never its content).
#[derive(Debug, thiserror::Error)]
#[error("the certificate's private key cannot sign: {0}")]
pub struct AssertionError(String);

/// A signed assertion for `client_id` at the token endpoint `token_url`.
pub fn sign(
    certificate: &CertificateCredential,
    client_id: &str,
    token_url: &str,
    now: DateTime<Utc>,
) -> Result<SecretString, AssertionError> {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
    header.x5t_s256 = Some(certificate.thumbprint_s256.clone());
    let iat = now.timestamp();
    let claims = Claims {
        aud: token_url,
        iss: client_id,
        sub: client_id,
        jti: uuid::Uuid::new_v4().to_string(),
        nbf: iat,
        iat,
        exp: iat + LIFETIME_SECS,
    };
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(
        certificate.private_key_pem.expose_secret().as_bytes(),
    )
    .map_err(kind)?;
    jsonwebtoken::encode(&header, &claims, &key)
        .map(SecretString::from)
        .map_err(kind)
}

/// The error's kind only: all a log needs, and nothing of the key.
fn kind(error: jsonwebtoken::errors::Error) -> AssertionError {
    AssertionError(format!("{:?}", error.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertions_carry_the_thumbprint_and_the_claims_microsoft_asks_for() {
        let now = Utc::now();
        let certificate = crate::certificate::generate("test", now).expect("generated");
        let url = "https://login.example/tenant/oauth2/v2.0/token";
        let jwt = sign(&certificate, "client", url, now).expect("signed");
        let header = jsonwebtoken::decode_header(jwt.expose_secret()).expect("header");
        assert_eq!(header.alg, jsonwebtoken::Algorithm::PS256);
        assert_eq!(
            header.x5t_s256.as_deref(),
            Some(certificate.thumbprint_s256.as_str())
        );
        let claims = crate::token::unverified_claims(jwt.expose_secret()).expect("claims");
        assert_eq!(claims["aud"], url);
        assert_eq!(claims["iss"], "client");
        assert_eq!(claims["sub"], "client");
        assert_eq!(
            claims["exp"].as_i64(),
            Some(now.timestamp() + LIFETIME_SECS)
        );
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() == 36));
    }
}
