//! How an app registration proves itself to Entra: a client secret, or a certificate (an
//! RSA private key that never leaves the service, and the public certificate registered on
//! the app). One vocabulary for every kind of connection: a per-tenant organization today,
//! a partner connection later.
//!
//! Pure data: parsing, generating and signing live in `tenantry-graph::certificate`, sealing
//! in `tenantry-store`. Nothing here prints a secret or a private key (`Debug` redacts them).

use std::fmt;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

/// A credential of an app registration.
#[derive(Clone)]
pub enum AppCredential {
    /// A client secret's Value.
    Secret(SecretString),
    Certificate(CertificateCredential),
}

impl AppCredential {
    pub fn kind(&self) -> CredentialKind {
        match self {
            AppCredential::Secret(_) => CredentialKind::Secret,
            AppCredential::Certificate(_) => CredentialKind::Certificate,
        }
    }

    pub fn certificate(&self) -> Option<&CertificateCredential> {
        match self {
            AppCredential::Certificate(certificate) => Some(certificate),
            AppCredential::Secret(_) => None,
        }
    }
}

impl fmt::Debug for AppCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppCredential::Secret(_) => f.write_str("Secret([REDACTED])"),
            AppCredential::Certificate(certificate) => certificate.fmt(f),
        }
    }
}

/// Which kind of credential; stored as `secret` or `certificate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    Secret,
    Certificate,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Secret => "secret",
            CredentialKind::Certificate => "certificate",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "secret" => Some(CredentialKind::Secret),
            "certificate" => Some(CredentialKind::Certificate),
            _ => None,
        }
    }
}

/// A certificate credential: the private key (PKCS#8 PEM, opened only to sign client
/// assertions) and what is public about it.
#[derive(Clone)]
pub struct CertificateCredential {
    /// The RSA private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_key_pem: SecretString,
    /// The public certificate, DER (what a `.cer` file holds).
    pub certificate_der: Vec<u8>,
    /// base64url(SHA-256(certificate DER)): the `x5t#S256` header of client assertions.
    pub thumbprint_s256: String,
    /// The certificate's notBefore and notAfter.
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("private_key_pem", &"[REDACTED]")
            .field("thumbprint_s256", &self.thumbprint_s256)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret_or_the_key() {
        let secret = AppCredential::Secret(SecretString::from("abc8Q~very-secret"));
        assert!(!format!("{secret:?}").contains("very-secret"));
        let certificate = AppCredential::Certificate(CertificateCredential {
            private_key_pem: SecretString::from("-----BEGIN PRIVATE KEY-----\nMIIkey"),
            certificate_der: vec![0x30, 0x82],
            thumbprint_s256: "thumb".into(),
            not_before: Utc::now(),
            not_after: Utc::now(),
        });
        let shown = format!("{certificate:?}");
        assert!(
            !shown.contains("MIIkey") && shown.contains("thumb"),
            "{shown}"
        );
        assert_eq!(certificate.kind().as_str(), "certificate");
        assert_eq!(
            CredentialKind::parse("secret"),
            Some(CredentialKind::Secret)
        );
        assert_eq!(CredentialKind::parse("other"), None);
    }
}
