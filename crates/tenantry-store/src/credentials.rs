//! An organization's credential at rest (`organization_credential`, one row per
//! organization): a client secret, or a certificate whose private key is sealed exactly as
//! a secret is and whose public certificate is kept in the clear. The row's
//! `credential_id` changes with every replacement, so a validation report is saved only
//! for the credential it checked.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use sqlx::PgConnection;
use tenantry_domain::{AppCredential, CertificateCredential, CredentialKind, OrganizationId};
use uuid::Uuid;

use crate::error::StoreError;
use crate::sealing::{DataKey, Purpose};

fn purpose(kind: CredentialKind) -> Purpose {
    match kind {
        CredentialKind::Secret => Purpose::ClientSecret,
        CredentialKind::Certificate => Purpose::CertificatePrivateKey,
    }
}

/// Stores `credential` as the organization's (a new credential id), replacing any other.
pub(crate) async fn store(
    conn: &mut PgConnection,
    data_key: &DataKey,
    id: OrganizationId,
    credential: &AppCredential,
) -> Result<(), StoreError> {
    let credential_id = Uuid::now_v7();
    let (sealed_value, certificate) = match credential {
        AppCredential::Secret(secret) => (secret.expose_secret(), None),
        AppCredential::Certificate(c) => (c.private_key_pem.expose_secret(), Some(c)),
    };
    let sealed = data_key.seal(
        sealed_value,
        id,
        purpose(credential.kind()),
        &credential_id.to_string(),
    )?;
    // The organization row keeps the kind and thumbprint for lists, written here with
    // the credential (one statement).
    sqlx::query(
        "with stored as (
             insert into organization_credential (organization_id, credential_id, sealed_secret, kind,
                 certificate_der, certificate_thumbprint, certificate_not_before, certificate_not_after)
             values ($1, $2, $3, $4, $5, $6, $7, $8)
             on conflict (organization_id) do update set credential_id = excluded.credential_id,
                 sealed_secret = excluded.sealed_secret, kind = excluded.kind,
                 certificate_der = excluded.certificate_der,
                 certificate_thumbprint = excluded.certificate_thumbprint,
                 certificate_not_before = excluded.certificate_not_before,
                 certificate_not_after = excluded.certificate_not_after, updated_at = now()
             returning organization_id, kind, certificate_thumbprint)
         update organization o set credential_type = stored.kind,
             certificate_thumbprint = stored.certificate_thumbprint
         from stored where o.organization_id = stored.organization_id",
    )
    .bind(id.as_uuid())
    .bind(credential_id)
    .bind(sealed)
    .bind(credential.kind().as_str())
    .bind(certificate.map(|c| c.certificate_der.as_slice()))
    .bind(certificate.map(|c| c.thumbprint_s256.as_str()))
    .bind(certificate.map(|c| c.not_before))
    .bind(certificate.map(|c| c.not_after))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    credential_id: Uuid,
    sealed_secret: Vec<u8>,
    kind: String,
    certificate_der: Option<Vec<u8>>,
    certificate_thumbprint: Option<String>,
    certificate_not_before: Option<DateTime<Utc>>,
    certificate_not_after: Option<DateTime<Utc>>,
}

/// The stored credential's id and the credential, opened with the organization's data key.
pub(crate) async fn open(
    conn: &mut PgConnection,
    data_key: &DataKey,
    id: OrganizationId,
) -> Result<(Uuid, AppCredential), StoreError> {
    let row: Row = sqlx::query_as(
        "select credential_id, sealed_secret, kind, certificate_der, certificate_thumbprint,
             certificate_not_before, certificate_not_after
         from organization_credential where organization_id = $1",
    )
    .bind(id.as_uuid())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound)?;
    let kind = CredentialKind::parse(&row.kind)
        .ok_or_else(|| StoreError::Corrupt(format!("credential kind {:?}", row.kind)))?;
    let opened = data_key.open(
        &row.sealed_secret,
        id,
        purpose(kind),
        &row.credential_id.to_string(),
    )?;
    let credential = assemble(
        kind,
        opened,
        CertificateColumns {
            der: row.certificate_der,
            thumbprint: row.certificate_thumbprint,
            not_before: row.certificate_not_before,
            not_after: row.certificate_not_after,
        },
    )?;
    Ok((row.credential_id, credential))
}

/// The public columns of a stored certificate credential (all `None` for a secret).
pub(crate) struct CertificateColumns {
    pub der: Option<Vec<u8>>,
    pub thumbprint: Option<String>,
    pub not_before: Option<DateTime<Utc>>,
    pub not_after: Option<DateTime<Utc>>,
}

/// A credential of `kind` from its opened secret (a client secret, or a certificate's
/// private key) and its public columns; one way for every table that keeps credentials.
pub(crate) fn assemble(
    kind: CredentialKind,
    opened: secrecy::SecretString,
    columns: CertificateColumns,
) -> Result<AppCredential, StoreError> {
    match kind {
        CredentialKind::Secret => Ok(AppCredential::Secret(opened)),
        CredentialKind::Certificate => {
            let (Some(der), Some(thumbprint), Some(not_before), Some(not_after)) = (
                columns.der,
                columns.thumbprint,
                columns.not_before,
                columns.not_after,
            ) else {
                return Err(StoreError::Corrupt(
                    "certificate credential without its certificate".into(),
                ));
            };
            Ok(AppCredential::Certificate(CertificateCredential {
                private_key_pem: opened,
                certificate_der: der,
                thumbprint_s256: thumbprint,
                not_before,
                not_after,
            }))
        }
    }
}

/// The public certificate (DER) of the organization's credential; `None` for a secret.
pub(crate) async fn certificate_der(
    db: &sqlx::PgPool,
    id: OrganizationId,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(sqlx::query_scalar::<_, Option<Vec<u8>>>(
        "select certificate_der from organization_credential where organization_id = $1",
    )
    .bind(id.as_uuid())
    .fetch_optional(db)
    .await?
    .flatten())
}
