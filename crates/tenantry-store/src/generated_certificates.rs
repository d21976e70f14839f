//! Key pairs Tenantry generated for an MSP (`generated_certificate`), waiting for the MSP to
//! register the certificate on an app in Entra and to connect or rotate a tenant with it.
//! The private key is sealed by the MSP's data key and never leaves the service; using it
//! moves it into the organization's credential, in the transaction that deletes its row.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use sqlx::{PgConnection, PgPool};
use tenantry_domain::{CertificateCredential, MspId, OrganizationId};
use uuid::Uuid;

use crate::error::StoreError;
use crate::sealing::{Keyring, Purpose};

/// What is public about a generated certificate.
#[derive(Clone, Debug)]
pub struct GeneratedCertificate {
    pub id: Uuid,
    pub certificate_der: Vec<u8>,
    pub thumbprint_s256: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// The MSP's id in the associated data of what its data key seals.
fn owner(msp: MspId) -> OrganizationId {
    OrganizationId::from_uuid(msp.as_uuid())
}

pub(crate) async fn insert(
    db: &PgPool,
    keyring: &Keyring,
    msp: MspId,
    certificate: &CertificateCredential,
) -> Result<GeneratedCertificate, StoreError> {
    let mut tx = db.begin().await?;
    let key = crate::webhooks::msp_data_key(&mut tx, keyring, msp).await?;
    let id = Uuid::now_v7();
    let sealed = key.seal(
        certificate.private_key_pem.expose_secret(),
        owner(msp),
        Purpose::CertificatePrivateKey,
        &id.to_string(),
    )?;
    let created_at: DateTime<Utc> = sqlx::query_scalar(
        "insert into generated_certificate (certificate_id, msp_id, sealed_private_key,
             certificate_der, thumbprint, not_before, not_after)
         values ($1, $2, $3, $4, $5, $6, $7) returning created_at",
    )
    .bind(id)
    .bind(msp.as_uuid())
    .bind(sealed)
    .bind(&certificate.certificate_der)
    .bind(&certificate.thumbprint_s256)
    .bind(certificate.not_before)
    .bind(certificate.not_after)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(GeneratedCertificate {
        id,
        certificate_der: certificate.certificate_der.clone(),
        thumbprint_s256: certificate.thumbprint_s256.clone(),
        not_before: certificate.not_before,
        not_after: certificate.not_after,
        created_at,
    })
}

type Row = (
    Uuid,
    Vec<u8>,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    DateTime<Utc>,
);

pub(crate) async fn find(
    db: &PgPool,
    msp: MspId,
    id: Uuid,
) -> Result<GeneratedCertificate, StoreError> {
    let row: Row = sqlx::query_as(
        "select certificate_id, certificate_der, thumbprint, not_before, not_after, created_at
         from generated_certificate where msp_id = $1 and certificate_id = $2",
    )
    .bind(msp.as_uuid())
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or(StoreError::NotFound)?;
    let (id, certificate_der, thumbprint_s256, not_before, not_after, created_at) = row;
    Ok(GeneratedCertificate {
        id,
        certificate_der,
        thumbprint_s256,
        not_before,
        not_after,
        created_at,
    })
}

/// The generated key pair, opened (to prove it to Microsoft before it is used).
pub(crate) async fn open(
    db: &PgPool,
    keyring: &Keyring,
    msp: MspId,
    id: Uuid,
) -> Result<CertificateCredential, StoreError> {
    // The public parts first: holding a pooled connection while asking the pool for
    // another would deadlock a pool whose every connection is held by an `open`.
    let public = find(db, msp, id).await?;
    let mut conn = db.acquire().await?;
    let sealed: Vec<u8> = sqlx::query_scalar(
        "select sealed_private_key from generated_certificate where msp_id = $1 and certificate_id = $2",
    )
    .bind(msp.as_uuid())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound)?;
    let key = crate::webhooks::msp_data_key(&mut conn, keyring, msp).await?;
    let private_key_pem = key.open(
        &sealed,
        owner(msp),
        Purpose::CertificatePrivateKey,
        &id.to_string(),
    )?;
    Ok(CertificateCredential {
        private_key_pem,
        certificate_der: public.certificate_der,
        thumbprint_s256: public.thumbprint_s256,
        not_before: public.not_before,
        not_after: public.not_after,
    })
}

/// Uses the generated key up (in the transaction that stores it as a credential):
/// `NotFound` when it is gone, e.g. used by a concurrent request.
pub(crate) async fn consume(
    conn: &mut PgConnection,
    msp: MspId,
    id: Uuid,
) -> Result<(), StoreError> {
    let deleted =
        sqlx::query("delete from generated_certificate where msp_id = $1 and certificate_id = $2")
            .bind(msp.as_uuid())
            .bind(id)
            .execute(&mut *conn)
            .await?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// [`consume`] for a credential being stored: a key pair another request used first
/// (both opened it, this one committed second) is the caller's input gone stale, as a
/// reuse after the fact is, not a missing page.
pub(crate) async fn consume_for_credential(
    conn: &mut PgConnection,
    msp: MspId,
    id: Uuid,
) -> Result<(), StoreError> {
    consume(conn, msp, id).await.map_err(|error| match error {
        StoreError::NotFound => StoreError::Refused(
            tenantry_domain::ErrorCode::InvalidRequest,
            "`certificate.generated_id` was used by another connection meanwhile; generate a new certificate".into(),
        ),
        other => other,
    })
}

pub(crate) async fn delete(db: &PgPool, msp: MspId, id: Uuid) -> Result<(), StoreError> {
    let mut conn = db.acquire().await?;
    consume(&mut conn, msp, id).await
}
