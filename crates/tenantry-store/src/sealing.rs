//! Envelope encryption of secrets at rest (DESIGN §6): each organization has its own data
//! key, sealed by the master key; secrets (client secrets, certificates' private keys) are
//! sealed by their organization's data key.
//! AES-256-GCM with a random 96-bit nonce per seal.
//!
//! Associated data binds every ciphertext to its organization, its purpose and the object
//! it belongs to, so a sealed value copied to another row or organization does not open.
//! The stored format is `version (1) ‖ key id (4) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`; the
//! key id is a fingerprint of the sealing key, so data keys sealed under an older master
//! key are recognised and re-sealed by `keys rotate`, while both keys are configured.
//! Deleting an organization's data key makes its secrets unrecoverable (crypto-shredding).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};
use tenantry_domain::OrganizationId;

pub const FORMAT_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("a key must be exactly 32 bytes")]
    KeyLength,
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the sealed value has format version {0}, which this build does not know")]
    UnknownVersion(u8),
    #[error("the value was sealed under a master key that is not configured (key id {0})")]
    UnknownMasterKey(String),
    #[error(
        "the sealed value does not open: wrong key, wrong organization or purpose, or tampered"
    )]
    Open,
    #[error("the OS random source failed")]
    Random,
}

/// What a sealed value is for; part of its associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    DataKey,
    /// An MSP's own data key (for secrets not tied to one organization).
    MspDataKey,
    ClientSecret,
    /// A certificate credential's private key (PKCS#8 PEM).
    CertificatePrivateKey,
    WebhookSigningSecret,
    RevealablePassword,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::DataKey => "data-key",
            Purpose::MspDataKey => "msp-data-key",
            Purpose::ClientSecret => "client-secret",
            Purpose::CertificatePrivateKey => "certificate-private-key",
            Purpose::WebhookSigningSecret => "webhook-signing-secret",
            Purpose::RevealablePassword => "revealable-password",
        }
    }
}

/// A 256-bit key with its fingerprint.
struct Key {
    id: [u8; KEY_ID_LEN],
    bytes: SecretBox<[u8; 32]>,
}

impl Key {
    fn new(bytes: &[u8]) -> Result<Self, SealError> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| SealError::KeyLength)?;
        let digest = Sha256::new()
            .chain_update(b"tenantry key id\0")
            .chain_update(array)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Ok(Self {
            id,
            bytes: SecretBox::new(Box::new(array)),
        })
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.bytes.expose_secret().into())
    }

    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let ciphertext = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| SealError::Open)?;
        let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let header = Header::parse(sealed)?;
        if header.key_id != self.id {
            return Err(SealError::Open);
        }
        self.cipher()
            .decrypt(
                &Nonce::from(header.nonce),
                Payload {
                    msg: &sealed[HEADER_LEN..],
                    aad,
                },
            )
            .map_err(|_| SealError::Open)
    }
}

struct Header {
    key_id: [u8; KEY_ID_LEN],
    nonce: [u8; NONCE_LEN],
}

impl Header {
    fn parse(sealed: &[u8]) -> Result<Self, SealError> {
        if sealed.len() < HEADER_LEN + 16 {
            return Err(SealError::Malformed);
        }
        if sealed[0] != FORMAT_VERSION {
            return Err(SealError::UnknownVersion(sealed[0]));
        }
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(&sealed[1..1 + KEY_ID_LEN]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1 + KEY_ID_LEN..HEADER_LEN]);
        Ok(Self { key_id, nonce })
    }
}

fn associated_data(purpose: Purpose, organization: OrganizationId, object: &str) -> Vec<u8> {
    format!(
        "tenantry\0v{FORMAT_VERSION}\0{}\0{organization}\0{object}",
        purpose.label()
    )
    .into_bytes()
}

/// The master keys: the current one seals, older ones (during a rotation) still open.
pub struct Keyring {
    current: Key,
    previous: Vec<Key>,
}

impl Keyring {
    pub fn new(current: &[u8], previous: &[&[u8]]) -> Result<Self, SealError> {
        Ok(Self {
            current: Key::new(current)?,
            previous: previous
                .iter()
                .map(|k| Key::new(k))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The fingerprint of the current master key, as stored in sealed data keys.
    pub fn current_id(&self) -> String {
        hex::encode(self.current.id)
    }

    fn find(&self, id: [u8; KEY_ID_LEN]) -> Option<&Key> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }

    pub fn seal_data_key(
        &self,
        data_key: &DataKey,
        organization: OrganizationId,
    ) -> Result<Vec<u8>, SealError> {
        let aad = associated_data(Purpose::DataKey, organization, "");
        self.current.seal(data_key.0.bytes.expose_secret(), &aad)
    }

    pub fn open_data_key(
        &self,
        sealed: &[u8],
        organization: OrganizationId,
    ) -> Result<DataKey, SealError> {
        let header = Header::parse(sealed)?;
        let key = self
            .find(header.key_id)
            .ok_or_else(|| SealError::UnknownMasterKey(hex::encode(header.key_id)))?;
        let aad = associated_data(Purpose::DataKey, organization, "");
        let bytes = key.open(sealed, &aad)?;
        Ok(DataKey(Key::new(&bytes)?))
    }

    /// Seals an MSP's data key. The MSP's id takes the owner's place in the associated
    /// data; the purpose label keeps it apart from any organization's key.
    pub fn seal_msp_data_key(
        &self,
        data_key: &DataKey,
        msp: tenantry_domain::MspId,
    ) -> Result<Vec<u8>, SealError> {
        let owner = OrganizationId::from_uuid(msp.as_uuid());
        let aad = associated_data(Purpose::MspDataKey, owner, "");
        self.current.seal(data_key.0.bytes.expose_secret(), &aad)
    }

    pub fn open_msp_data_key(
        &self,
        sealed: &[u8],
        msp: tenantry_domain::MspId,
    ) -> Result<DataKey, SealError> {
        let header = Header::parse(sealed)?;
        let key = self
            .find(header.key_id)
            .ok_or_else(|| SealError::UnknownMasterKey(hex::encode(header.key_id)))?;
        let owner = OrganizationId::from_uuid(msp.as_uuid());
        let aad = associated_data(Purpose::MspDataKey, owner, "");
        let bytes = key.open(sealed, &aad)?;
        Ok(DataKey(Key::new(&bytes)?))
    }

    /// Whether a sealed data key was sealed under an older master key.
    pub fn needs_reseal(&self, sealed: &[u8]) -> Result<bool, SealError> {
        Ok(Header::parse(sealed)?.key_id != self.current.id)
    }

    /// Opens a data key (under any configured master key) and seals it under the current one.
    pub fn reseal_data_key(
        &self,
        sealed: &[u8],
        organization: OrganizationId,
    ) -> Result<Vec<u8>, SealError> {
        let data_key = self.open_data_key(sealed, organization)?;
        self.seal_data_key(&data_key, organization)
    }
}

/// One organization's data key. Never leaves the process unsealed.
pub struct DataKey(Key);

impl DataKey {
    pub fn generate() -> Result<Self, SealError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| SealError::Random)?;
        Ok(Self(Key::new(&bytes)?))
    }

    /// Seals `secret` for `organization`, bound to `purpose` and `object` (e.g. the
    /// credential's id).
    pub fn seal(
        &self,
        secret: &str,
        organization: OrganizationId,
        purpose: Purpose,
        object: &str,
    ) -> Result<Vec<u8>, SealError> {
        self.0.seal(
            secret.as_bytes(),
            &associated_data(purpose, organization, object),
        )
    }

    pub fn open(
        &self,
        sealed: &[u8],
        organization: OrganizationId,
        purpose: Purpose,
        object: &str,
    ) -> Result<SecretString, SealError> {
        let bytes = self
            .0
            .open(sealed, &associated_data(purpose, organization, object))?;
        String::from_utf8(bytes)
            .map(SecretString::from)
            .map_err(|_| SealError::Malformed)
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 32] = [1; 32];
    const B: [u8; 32] = [2; 32];

    #[test]
    fn secrets_round_trip_and_are_bound_to_organization_purpose_and_object() {
        let keyring = Keyring::new(&A, &[]).expect("keyring");
        let (org, other_org) = (OrganizationId::new(), OrganizationId::new());
        let data_key = DataKey::generate().expect("data key");
        let sealed = data_key
            .seal("s3cr3t~value", org, Purpose::ClientSecret, "cred-1")
            .expect("sealed");
        assert!(
            !sealed.windows(6).any(|w| w == b"s3cr3t"),
            "no plaintext in the sealed bytes"
        );
        let opened = data_key
            .open(&sealed, org, Purpose::ClientSecret, "cred-1")
            .expect("opens");
        assert_eq!(opened.expose_secret(), "s3cr3t~value");
        assert_eq!(
            data_key
                .open(&sealed, other_org, Purpose::ClientSecret, "cred-1")
                .err(),
            Some(SealError::Open)
        );
        assert_eq!(
            data_key
                .open(&sealed, org, Purpose::WebhookSigningSecret, "cred-1")
                .err(),
            Some(SealError::Open)
        );
        assert_eq!(
            data_key
                .open(&sealed, org, Purpose::ClientSecret, "cred-2")
                .err(),
            Some(SealError::Open)
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            data_key
                .open(&tampered, org, Purpose::ClientSecret, "cred-1")
                .err(),
            Some(SealError::Open)
        );

        // The data key itself only opens for its organization.
        let sealed_key = keyring.seal_data_key(&data_key, org).expect("sealed key");
        let reopened = keyring.open_data_key(&sealed_key, org).expect("opens");
        assert_eq!(
            reopened
                .open(&sealed, org, Purpose::ClientSecret, "cred-1")
                .expect("opens")
                .expose_secret(),
            "s3cr3t~value"
        );
        assert_eq!(
            keyring.open_data_key(&sealed_key, other_org).err(),
            Some(SealError::Open)
        );
    }

    #[test]
    fn rotation_reseals_data_keys_under_the_new_master_key() {
        let org = OrganizationId::new();
        let old = Keyring::new(&A, &[]).expect("keyring");
        let data_key = DataKey::generate().expect("data key");
        let secret = data_key
            .seal("value", org, Purpose::ClientSecret, "c")
            .expect("sealed");
        let sealed_key = old.seal_data_key(&data_key, org).expect("sealed");

        let rotating = Keyring::new(&B, &[&A]).expect("keyring");
        assert!(rotating.needs_reseal(&sealed_key).expect("parse"));
        let resealed = rotating
            .reseal_data_key(&sealed_key, org)
            .expect("resealed");
        assert!(!rotating.needs_reseal(&resealed).expect("parse"));

        let new_only = Keyring::new(&B, &[]).expect("keyring");
        let opened = new_only
            .open_data_key(&resealed, org)
            .expect("opens with the new key alone");
        assert_eq!(
            opened
                .open(&secret, org, Purpose::ClientSecret, "c")
                .expect("opens")
                .expose_secret(),
            "value"
        );
        assert!(matches!(
            new_only.open_data_key(&sealed_key, org),
            Err(SealError::UnknownMasterKey(_))
        ));
    }

    #[test]
    fn malformed_values_are_refused() {
        let keyring = Keyring::new(&A, &[]).expect("keyring");
        let org = OrganizationId::new();
        assert_eq!(
            keyring.open_data_key(&[1, 2, 3], org).err(),
            Some(SealError::Malformed)
        );
        let mut future = keyring
            .seal_data_key(&DataKey::generate().expect("key"), org)
            .expect("sealed");
        future[0] = 9;
        assert_eq!(
            keyring.open_data_key(&future, org).err(),
            Some(SealError::UnknownVersion(9))
        );
        assert_eq!(
            Keyring::new(&[0; 31], &[]).err(),
            Some(SealError::KeyLength)
        );
    }
}
