//! Certificate credentials: reading what an MSP uploads (an RSA private key and its X.509
//! certificate, both PEM), generating a key pair with a self-signed certificate for the MSP
//! to register in Entra, and the public forms of a certificate (PEM, DER, thumbprints).
//!
//! Only RSA keys of 2048 bits or more: client assertions are signed PS256, as Microsoft's
//! certificate-credentials page asks (rust-style-and-crates §2.11). The private key is kept
//! as PKCS#8 PEM whatever form was uploaded, and no error here quotes any input.

use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tenantry_domain::CertificateCredential;

/// The longest PEM accepted for a key or a certificate. A 4096-bit key is about 3.3 KB and
/// a certificate with a chain a few KB; anything longer is not what Entra takes.
pub const MAX_PEM_BYTES: usize = 16 * 1024;
/// The shortest RSA key accepted. UNVERIFIED: the exact minimum Entra enforces for
/// certificate credentials (2048 is what its docs and tools generate).
pub const MIN_RSA_BITS: usize = 2048;
/// How long a generated certificate is valid.
pub const GENERATED_VALIDITY_DAYS: i64 = 730;
const GENERATED_BITS: usize = 2048;

/// Why an uploaded key or certificate is refused. Which input, never its content.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("the {0} is longer than {MAX_PEM_BYTES} bytes")]
    TooLarge(Part),
    #[error("the {part} is not readable: {reason}")]
    Malformed { part: Part, reason: &'static str },
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error("the certificate expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("the certificate is valid only from {0}")]
    NotYetValid(DateTime<Utc>),
    #[error("generating a key pair failed: {0}")]
    Generation(String),
}

/// Which of the two inputs a refusal is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    PrivateKey,
    Certificate,
}

impl Part {
    /// The request field that carries it.
    pub fn field(self) -> &'static str {
        match self {
            Part::PrivateKey => "certificate.private_key_pem",
            Part::Certificate => "certificate.certificate_pem",
        }
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Part::PrivateKey => "private key",
            Part::Certificate => "certificate",
        })
    }
}

/// Reads an uploaded key and certificate: both well-formed, an RSA key of at least
/// [`MIN_RSA_BITS`] that is the certificate's, and a certificate valid at `now`.
pub fn from_pem(
    private_key_pem: &str,
    certificate_pem: &str,
    now: DateTime<Utc>,
) -> Result<CertificateCredential, CertificateError> {
    if private_key_pem.len() > MAX_PEM_BYTES {
        return Err(CertificateError::TooLarge(Part::PrivateKey));
    }
    if certificate_pem.len() > MAX_PEM_BYTES {
        return Err(CertificateError::TooLarge(Part::Certificate));
    }
    let key = private_key(private_key_pem)?;
    let der = certificate_der(certificate_pem)?;
    let credential = assemble(&key, der)?;
    if credential.not_after <= now {
        return Err(CertificateError::Expired(credential.not_after));
    }
    if credential.not_before > now + Duration::minutes(5) {
        return Err(CertificateError::NotYetValid(credential.not_before));
    }
    Ok(credential)
}

/// A stored credential again (its key as PKCS#8 PEM, its certificate as DER), checked as
/// an upload is except for dates: a stored certificate may have expired since.
pub fn from_stored(
    private_key_pem: SecretString,
    certificate_der: Vec<u8>,
) -> Result<CertificateCredential, CertificateError> {
    let key = private_key(private_key_pem.expose_secret())?;
    assemble(&key, certificate_der)
}

/// A new RSA key pair and a self-signed certificate for it, valid from a minute ago for
/// [`GENERATED_VALIDITY_DAYS`], with `common_name` as subject.
pub fn generate(
    common_name: &str,
    now: DateTime<Utc>,
) -> Result<CertificateCredential, CertificateError> {
    let failed = |e: &dyn std::fmt::Display| CertificateError::Generation(e.to_string());
    let key =
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, GENERATED_BITS).map_err(|e| failed(&e))?;
    let pkcs8 = key.to_pkcs8_der().map_err(|e| failed(&e))?;
    let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &pkcs8.as_bytes().into(),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(|e| failed(&e))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| failed(&e))?;
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, common_name);
    params.distinguished_name = name;
    let start = now - Duration::minutes(1);
    params.not_before = offset_time(start)?;
    params.not_after = offset_time(start + Duration::days(GENERATED_VALIDITY_DAYS))?;
    let certificate = params.self_signed(&signer).map_err(|e| failed(&e))?;
    assemble(&key, certificate.der().to_vec())
}

/// The certificate as PEM (what the MSP may paste or upload in Entra).
pub fn certificate_pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// base64url(SHA-256(DER)), the `x5t#S256` of client assertions.
pub fn thumbprint_s256(der: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

fn offset_time(t: DateTime<Utc>) -> Result<time::OffsetDateTime, CertificateError> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp())
        .map_err(|e| CertificateError::Generation(e.to_string()))
}

fn private_key(pem: &str) -> Result<RsaPrivateKey, CertificateError> {
    let malformed = |reason| CertificateError::Malformed {
        part: Part::PrivateKey,
        reason,
    };
    let pem = pem.trim();
    let key = if pem.starts_with("-----BEGIN PRIVATE KEY-----") {
        RsaPrivateKey::from_pkcs8_pem(pem)
            .map_err(|_| malformed("not an RSA private key in PKCS#8 PEM"))?
    } else if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        RsaPrivateKey::from_pkcs1_pem(pem)
            .map_err(|_| malformed("not an RSA private key in PKCS#1 PEM"))?
    } else if pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(malformed(
            "the key is encrypted; upload it without a passphrase (openssl pkcs8 -topk8 -nocrypt)",
        ));
    } else if pem.starts_with("-----BEGIN EC PRIVATE KEY-----") {
        return Err(malformed(
            "the key is an EC key; Entra's client assertions need an RSA key",
        ));
    } else {
        return Err(malformed(
            "expected PEM starting with -----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----",
        ));
    };
    if key.n().bits() < MIN_RSA_BITS {
        return Err(malformed("the RSA key is shorter than 2048 bits"));
    }
    Ok(key)
}

/// The DER of the first certificate in `pem` (a chain may follow it).
fn certificate_der(pem: &str) -> Result<Vec<u8>, CertificateError> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.trim().as_bytes()).map_err(|_| {
        CertificateError::Malformed {
            part: Part::Certificate,
            reason: "expected PEM starting with -----BEGIN CERTIFICATE-----",
        }
    })?;
    if parsed.label != "CERTIFICATE" {
        return Err(CertificateError::Malformed {
            part: Part::Certificate,
            reason: "expected PEM starting with -----BEGIN CERTIFICATE-----",
        });
    }
    Ok(parsed.contents)
}

/// The credential of `key` and the certificate `der`, which must carry `key`'s public key.
fn assemble(key: &RsaPrivateKey, der: Vec<u8>) -> Result<CertificateCredential, CertificateError> {
    let malformed = |reason| CertificateError::Malformed {
        part: Part::Certificate,
        reason,
    };
    let (not_before, not_after) = {
        let (rest, certificate) = x509_parser::parse_x509_certificate(&der)
            .map_err(|_| malformed("not an X.509 certificate"))?;
        if !rest.is_empty() {
            return Err(malformed("trailing bytes after the certificate"));
        }
        let public = RsaPublicKey::from_public_key_der(certificate.public_key().raw)
            .map_err(|_| CertificateError::KeyMismatch)?;
        if public.n() != key.n() || public.e() != key.e() {
            return Err(CertificateError::KeyMismatch);
        }
        let validity = certificate.validity();
        let at = |t: &x509_parser::time::ASN1Time| {
            Utc.timestamp_opt(t.timestamp(), 0)
                .single()
                .ok_or(malformed("validity dates out of range"))
        };
        (at(&validity.not_before)?, at(&validity.not_after)?)
    };
    let pkcs8 = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| CertificateError::Malformed {
            part: Part::PrivateKey,
            reason: "the key cannot be written as PKCS#8",
        })?;
    Ok(CertificateCredential {
        private_key_pem: SecretString::from(pkcs8.as_str().to_owned()),
        thumbprint_s256: thumbprint_s256(&der),
        certificate_der: der,
        not_before,
        not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_pair_reads_back_and_a_foreign_key_is_refused() {
        let now = Utc::now();
        let generated = generate("Tenantry test", now).expect("generated");
        assert!(generated.not_after > now + Duration::days(700));
        let pem = certificate_pem(&generated.certificate_der);
        let again = from_pem(generated.private_key_pem.expose_secret(), &pem, now).expect("reads");
        assert_eq!(again.thumbprint_s256, generated.thumbprint_s256);
        assert_eq!(again.thumbprint_s256.len(), 43, "base64url of 32 bytes");

        let other = generate("Other", now).expect("generated");
        assert_eq!(
            from_pem(other.private_key_pem.expose_secret(), &pem, now).err(),
            Some(CertificateError::KeyMismatch)
        );
        assert_eq!(
            from_pem(
                generated.private_key_pem.expose_secret(),
                &pem,
                now + Duration::days(800)
            )
            .err(),
            Some(CertificateError::Expired(generated.not_after))
        );
        assert!(matches!(
            from_pem("not a key", &pem, now),
            Err(CertificateError::Malformed {
                part: Part::PrivateKey,
                ..
            })
        ));
        assert!(matches!(
            from_pem(generated.private_key_pem.expose_secret(), "junk", now),
            Err(CertificateError::Malformed {
                part: Part::Certificate,
                ..
            })
        ));
        assert_eq!(
            from_pem(&"k".repeat(MAX_PEM_BYTES + 1), &pem, now).err(),
            Some(CertificateError::TooLarge(Part::PrivateKey))
        );
        let stored = from_stored(
            generated.private_key_pem.clone(),
            generated.certificate_der.clone(),
        )
        .expect("stored");
        assert_eq!(stored.not_after, generated.not_after);
    }
}
