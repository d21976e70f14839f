//! Organizations (customer tenants) of an MSP, with their sealed credentials (a client
//! secret or a certificate, [`crate::credentials`]). Reached only through
//! [`crate::MspScope`]; every query binds the caller's MSP and, for keys limited to some
//! organizations, only those.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use tenantry_domain::{AppCredential, DisplayName, MspId, OrganizationId, OrganizationLimit};
use uuid::Uuid;

use crate::api_keys::Page;
use crate::error::StoreError;
use crate::sealing::{DataKey, Keyring};

#[derive(Clone, Debug)]
pub struct OrganizationRecord {
    pub id: OrganizationId,
    pub name: String,
    pub provider: String,
    pub tenant_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    pub status: String,
    pub validated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Cron expression for discovery; `None`: every 24 hours with jitter.
    pub scan_schedule: Option<String>,
    pub next_scan_at: Option<DateTime<Utc>>,
    /// When the credential in use (secret or certificate) expires, as last known.
    pub secret_expires_at: Option<DateTime<Utc>>,
    /// `secret` or `certificate`; `None` without credentials.
    pub credential_type: Option<String>,
    /// The certificate's `x5t#S256` thumbprint, for certificate credentials.
    pub certificate_thumbprint: Option<String>,
    /// The partner connection whose credential it uses (partner mode); `None`: its own
    /// app registration's.
    pub partner_connection_id: Option<Uuid>,
    /// Why the status is what it is, when something outside a validation set it (consent
    /// revoked, the partner connection deleted, GDAP ended).
    pub status_reason: Option<String>,
}

/// A validated tenant to store.
pub struct NewOrganization {
    pub name: DisplayName,
    pub tenant_id: Uuid,
    pub client_id: Uuid,
    pub credential: AppCredential,
    /// The generated key pair the credential came from, used up with the insert.
    pub generated_certificate: Option<Uuid>,
    pub status: String,
    pub report: serde_json::Value,
}

#[derive(sqlx::FromRow)]
struct Row {
    #[sqlx(try_from = "Uuid")]
    organization_id: OrganizationId,
    name: String,
    provider: String,
    tenant_id: Option<Uuid>,
    client_id: Option<Uuid>,
    status: String,
    validated_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    scan_schedule: Option<String>,
    next_scan_at: Option<DateTime<Utc>>,
    secret_expires_at: Option<DateTime<Utc>>,
    credential_type: Option<String>,
    certificate_thumbprint: Option<String>,
    partner_connection_id: Option<Uuid>,
    status_reason: Option<String>,
}

impl From<Row> for OrganizationRecord {
    fn from(row: Row) -> Self {
        Self {
            id: row.organization_id,
            name: row.name,
            provider: row.provider,
            tenant_id: row.tenant_id,
            client_id: row.client_id,
            status: row.status,
            validated_at: row.validated_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            scan_schedule: row.scan_schedule,
            next_scan_at: row.next_scan_at,
            secret_expires_at: row.secret_expires_at,
            credential_type: row.credential_type,
            certificate_thumbprint: row.certificate_thumbprint,
            partner_connection_id: row.partner_connection_id,
            status_reason: row.status_reason,
        }
    }
}

/// Every column but the validation report, which weighs several KB and is read only
/// where it is shown ([`validation_report`]).
const COLUMNS: &str = "organization_id, name, provider, tenant_id, client_id, status, validated_at, created_at, updated_at, scan_schedule, next_scan_at, secret_expires_at, credential_type, certificate_thumbprint, partner_connection_id, status_reason";

/// The expiry of the credential a validation report describes (`secret.expires_at` for a
/// client secret, `certificate.expires_at` for a certificate), when it names one. The
/// column is kept beside the report so lists and the view show it without parsing reports.
fn secret_expires_at(report: &serde_json::Value) -> Option<DateTime<Utc>> {
    report["secret"]["expires_at"]
        .as_str()
        .or(report["certificate"]["expires_at"].as_str())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// A new credential's expiry: a certificate's own notAfter, else what its report found.
fn credential_expires_at(
    credential: &AppCredential,
    report: &serde_json::Value,
) -> Option<DateTime<Utc>> {
    credential
        .certificate()
        .map(|c| c.not_after)
        .or_else(|| secret_expires_at(report))
}

/// The organization ids a key may see, as a SQL array parameter (`None`: all).
fn visible(limit: &OrganizationLimit) -> Option<Vec<Uuid>> {
    limit
        .as_list()
        .map(|ids| ids.into_iter().map(|id| id.as_uuid()).collect())
}

pub(crate) async fn find(
    db: &PgPool,
    msp: MspId,
    limit: &OrganizationLimit,
    id: OrganizationId,
) -> Result<OrganizationRecord, StoreError> {
    let sql = format!(
        "select {COLUMNS} from organization where msp_id = $1 and organization_id = $2 and ($3::uuid[] is null or organization_id = any($3))"
    );
    sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(id.as_uuid())
        .bind(visible(limit))
        .fetch_optional(db)
        .await?
        .map(OrganizationRecord::from)
        .ok_or(StoreError::NotFound)
}

/// The organization's last validation report (`None` before the first validation).
pub(crate) async fn validation_report(
    db: &PgPool,
    msp: MspId,
    limit: &OrganizationLimit,
    id: OrganizationId,
) -> Result<Option<serde_json::Value>, StoreError> {
    sqlx::query_scalar::<_, Option<serde_json::Value>>(
        "select validation_report from organization where msp_id = $1 and organization_id = $2 and ($3::uuid[] is null or organization_id = any($3))",
    )
    .bind(msp.as_uuid())
    .bind(id.as_uuid())
    .bind(visible(limit))
    .fetch_optional(db)
    .await?
    .ok_or(StoreError::NotFound)
}

/// Whether the organization exists in `msp` and the key may see it, read from the
/// primary key alone (for doors that only need to know, not the row).
pub(crate) async fn ensure_visible(
    db: &PgPool,
    msp: MspId,
    limit: &OrganizationLimit,
    id: OrganizationId,
) -> Result<(), StoreError> {
    sqlx::query_scalar::<_, i32>(
        "select 1 from organization where organization_id = $2 and msp_id = $1 and ($3::uuid[] is null or organization_id = any($3))",
    )
    .bind(msp.as_uuid())
    .bind(id.as_uuid())
    .bind(visible(limit))
    .fetch_optional(db)
    .await?
    .map(|_| ())
    .ok_or(StoreError::NotFound)
}

pub(crate) async fn list(
    db: &PgPool,
    msp: MspId,
    limit: &OrganizationLimit,
    page: Page,
) -> Result<Vec<OrganizationRecord>, StoreError> {
    let sql = format!(
        "select {COLUMNS} from organization
         where msp_id = $1 and ($2::uuid[] is null or organization_id = any($2)) and ($3::uuid is null or organization_id > $3)
         order by organization_id limit $4"
    );
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(visible(limit))
        .bind(page.after)
        .bind(i64::from(page.limit))
        .fetch_all(db)
        .await?
        .into_iter()
        .map(OrganizationRecord::from)
        .collect())
}

/// Whether any organization of any MSP is bound to `tenant_id` (says nothing about which).
pub(crate) async fn tenant_bound(db: &PgPool, tenant_id: Uuid) -> Result<bool, StoreError> {
    Ok(
        sqlx::query_scalar("select exists(select 1 from organization where tenant_id = $1)")
            .bind(tenant_id)
            .fetch_one(db)
            .await?,
    )
}

/// A unique violation of the one-organization-per-tenant index, told apart.
fn tenant_bound_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.constraint() == Some("organization_tenant_bound_idx") => {
            StoreError::TenantAlreadyBound
        }
        _ => StoreError::from(error),
    }
}

/// A new organization's data key, sealed by the master key and stored.
async fn insert_data_key(
    conn: &mut sqlx::PgConnection,
    keyring: &Keyring,
    id: OrganizationId,
) -> Result<DataKey, StoreError> {
    let data_key = DataKey::generate()?;
    sqlx::query("insert into organization_data_key (organization_id, sealed, master_key_id) values ($1, $2, $3)")
        .bind(id.as_uuid())
        .bind(keyring.seal_data_key(&data_key, id)?)
        .bind(keyring.current_id())
        .execute(&mut *conn)
        .await?;
    Ok(data_key)
}

pub(crate) async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    keyring: &Keyring,
    msp: MspId,
    new: &NewOrganization,
) -> Result<OrganizationRecord, StoreError> {
    let id = OrganizationId::new();
    let sql = format!(
        "insert into organization (organization_id, msp_id, name, tenant_id, client_id, status, validation_report, validated_at, next_scan_at, secret_expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, now(), now() + interval '23 hours' + random() * interval '2 hours', $8)
         returning {COLUMNS}"
    );
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id.as_uuid())
        .bind(msp.as_uuid())
        .bind(new.name.as_str())
        .bind(new.tenant_id)
        .bind(new.client_id)
        .bind(&new.status)
        .bind(&new.report)
        .bind(credential_expires_at(&new.credential, &new.report))
        .fetch_one(&mut **tx)
        .await
        .map_err(tenant_bound_error)?;
    let data_key = insert_data_key(tx, keyring, id).await?;
    crate::credentials::store(tx, &data_key, id, &new.credential).await?;
    if let Some(generated) = new.generated_certificate {
        crate::generated_certificates::consume_for_credential(tx, msp, generated).await?;
    }
    let mut record = OrganizationRecord::from(row);
    record.credential_type = Some(new.credential.kind().as_str().to_owned());
    record.certificate_thumbprint = new
        .credential
        .certificate()
        .map(|c| c.thumbprint_s256.clone());
    Ok(record)
}

pub(crate) async fn data_key(
    db: &mut sqlx::PgConnection,
    keyring: &Keyring,
    id: OrganizationId,
) -> Result<DataKey, StoreError> {
    let sealed: Vec<u8> =
        sqlx::query_scalar("select sealed from organization_data_key where organization_id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&mut *db)
            .await?
            .ok_or(StoreError::NotFound)?;
    Ok(keyring.open_data_key(&sealed, id)?)
}

/// An organization's credentials as a worker needs them.
pub struct StoredCredential {
    pub msp_id: MspId,
    pub tenant_id: Uuid,
    pub client_id: Uuid,
    pub credential_id: Uuid,
    pub credential: AppCredential,
    /// Set in partner mode: the credential is the partner connection's, used in the
    /// customer's tenant (whose `/applications` entry does not exist there).
    pub partner_connection_id: Option<Uuid>,
}

/// Loads and opens an organization's credentials for a worker (not MSP-scoped: the job
/// names the organization). In partner mode, the partner connection's credential.
pub(crate) async fn stored_credential(
    db: &PgPool,
    keyring: Option<&Keyring>,
    organization: OrganizationId,
) -> Result<StoredCredential, StoreError> {
    let (msp, tenant, client, partner): (Uuid, Option<Uuid>, Option<Uuid>, Option<Uuid>) =
        sqlx::query_as(
            "select msp_id, tenant_id, client_id, partner_connection_id from organization where organization_id = $1",
        )
        .bind(organization.as_uuid())
        .fetch_optional(db)
        .await?
        .ok_or(StoreError::NotFound)?;
    let keyring = keyring.ok_or(StoreError::NoMasterKey)?;
    let Some(tenant_id) = tenant else {
        return Err(StoreError::Corrupt("organization without a tenant".into()));
    };
    if let Some(connection) = partner {
        let partner = crate::partner::connections::open(db, keyring, connection).await?;
        return Ok(StoredCredential {
            msp_id: MspId::from_uuid(msp),
            tenant_id,
            client_id: partner.client_id,
            credential_id: partner.credential_id,
            credential: partner.credential,
            partner_connection_id: Some(connection),
        });
    }
    let Some(client_id) = client else {
        return Err(StoreError::Corrupt(
            "organization without credentials".into(),
        ));
    };
    let (credential_id, credential) = match credential(db, keyring, organization).await {
        Err(StoreError::NotFound) => {
            // Left without one: its partner connection was deleted.
            return Err(StoreError::Refused(
                tenantry_domain::ErrorCode::CredentialMissing,
                "the organization has no credential (its partner connection was deleted); give it its own app registration's credentials".into(),
            ));
        }
        other => other?,
    };
    Ok(StoredCredential {
        msp_id: MspId::from_uuid(msp),
        tenant_id,
        client_id,
        credential_id,
        credential,
        partner_connection_id: None,
    })
}

/// The id of the stored credential and the credential, opened. The id changes whenever
/// the credential is replaced.
pub(crate) async fn credential(
    db: &PgPool,
    keyring: &Keyring,
    id: OrganizationId,
) -> Result<(Uuid, AppCredential), StoreError> {
    let mut conn = db.acquire().await?;
    let key = data_key(&mut conn, keyring, id).await?;
    crate::credentials::open(&mut conn, &key, id).await
}

/// The new credential: the app's client id, the credential, and the generated key pair it
/// came from (if any).
pub(crate) struct Replacement<'a> {
    pub client_id: Uuid,
    pub credential: &'a AppCredential,
    pub generated: Option<Uuid>,
    /// Who replaces it, as the audit log names them.
    pub actor: serde_json::Value,
}

/// The new credential's validation, saved with it.
pub(crate) struct Validated<'a> {
    pub status: tenantry_domain::OrganizationStatus,
    pub report: &'a serde_json::Value,
}

/// Replaces the credential (a secret or a certificate, after it was validated) and its
/// report in one transaction: the old credential works until the new one is stored.
/// `generated` names the generated key pair the new credential came from, used up here.
pub(crate) async fn replace_credential(
    db: &PgPool,
    keyring: &Keyring,
    msp: MspId,
    id: OrganizationId,
    replacement: Replacement<'_>,
    validated: Validated<'_>,
) -> Result<(), StoreError> {
    let Replacement {
        client_id,
        credential,
        generated,
        actor,
    } = replacement;
    let mut tx = db.begin().await?;
    // Its own credential from now on: out of partner mode, if it was in it.
    let updated = sqlx::query("update organization set client_id = $3, partner_connection_id = null, status_reason = null, updated_at = now() where msp_id = $1 and organization_id = $2")
        .bind(msp.as_uuid())
        .bind(id.as_uuid())
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    let key = data_key(&mut tx, keyring, id).await?;
    crate::credentials::store(&mut tx, &key, id, credential).await?;
    if let Some(generated) = generated {
        crate::generated_certificates::consume_for_credential(&mut tx, msp, generated).await?;
    }
    // A new credential: its own expiry (or none known), never the old one's.
    sqlx::query(
        "update organization set status = $2, validation_report = $3, validated_at = now(), updated_at = now(),
             secret_expires_at = $4
         where organization_id = $1",
    )
    .bind(id.as_uuid())
    .bind(validated.status.as_str())
    .bind(validated.report)
    .bind(credential_expires_at(credential, validated.report))
    .execute(&mut *tx)
    .await?;
    // What changed, never the credential itself: its kind, the certificate's thumbprint.
    crate::audit::append(
        &mut tx,
        msp,
        crate::audit::NewEvent {
            kind: "organization.credential_replaced",
            actor,
            organization_id: Some(id.as_uuid()),
            parameters: serde_json::json!({
                "client_id": client_id,
                "credential_type": credential.kind().as_str(),
                "certificate_thumbprint": credential.certificate().map(|c| c.thumbprint_s256.as_str()),
                "generated_certificate_id": generated,
            }),
            decision: Some("replaced".into()),
            ..crate::audit::NewEvent::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Saves a report of the credential `credential` (nothing, when another credential has
/// replaced it since: that one's report stands), with the secret expiry it found (a report
/// without one, e.g. a failure, keeps the known expiry of the same secret). Returns
/// whether it was saved.
pub(crate) async fn save_validation(
    db: &PgPool,
    msp: Option<MspId>,
    id: OrganizationId,
    credential: Uuid,
    status: tenantry_domain::OrganizationStatus,
    report: &serde_json::Value,
) -> Result<bool, StoreError> {
    let saved = sqlx::query(
        "update organization set status = $3, validation_report = $4, validated_at = now(), updated_at = now(),
             secret_expires_at = coalesce($6, secret_expires_at)
         where ($1::uuid is null or msp_id = $1) and organization_id = $2
           and (exists(select 1 from organization_credential c where c.organization_id = $2 and c.credential_id = $5)
                or exists(select 1 from partner_connection p where p.partner_connection_id = organization.partner_connection_id and p.credential_id = $5))",
    )
    .bind(msp.map(|m| m.as_uuid()))
    .bind(id.as_uuid())
    .bind(status.as_str())
    .bind(report)
    .bind(credential)
    .bind(secret_expires_at(report))
    .execute(db)
    .await?;
    Ok(saved.rows_affected() == 1)
}

pub(crate) async fn set_scan_schedule(
    db: &PgPool,
    msp: MspId,
    id: OrganizationId,
    schedule: Option<&str>,
    next_scan_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "update organization set scan_schedule = $3, next_scan_at = $4, updated_at = now()
         where msp_id = $1 and organization_id = $2",
    )
    .bind(msp.as_uuid())
    .bind(id.as_uuid())
    .bind(schedule)
    .bind(next_scan_at)
    .execute(db)
    .await?;
    Ok(())
}

pub(crate) async fn rename(
    db: &PgPool,
    msp: MspId,
    id: OrganizationId,
    name: &DisplayName,
) -> Result<(), StoreError> {
    let updated = sqlx::query("update organization set name = $3, updated_at = now() where msp_id = $1 and organization_id = $2")
        .bind(msp.as_uuid())
        .bind(id.as_uuid())
        .bind(name.as_str())
        .execute(db)
        .await?;
    if updated.rows_affected() == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// Deletes the organization; its data key goes with it, so its sealed secrets can never be
/// opened again.
pub(crate) async fn delete(db: &PgPool, msp: MspId, id: OrganizationId) -> Result<(), StoreError> {
    let deleted =
        sqlx::query("delete from organization where msp_id = $1 and organization_id = $2")
            .bind(msp.as_uuid())
            .bind(id.as_uuid())
            .execute(db)
            .await?;
    if deleted.rows_affected() == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// Re-seals every data key sealed under an older master key; returns how many. Fails when
/// some remain afterwards (a service still sealing under the old key created them): restart
/// the services with the new key, then run it again.
pub(crate) async fn rotate_data_keys(db: &PgPool, keyring: &Keyring) -> Result<usize, StoreError> {
    let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
        "select organization_id, sealed from organization_data_key where master_key_id <> $1",
    )
    .bind(keyring.current_id())
    .fetch_all(db)
    .await?;
    let mut count = 0;
    for (id, sealed) in rows {
        let resealed = keyring.reseal_data_key(&sealed, OrganizationId::from_uuid(id))?;
        let updated = sqlx::query(
            "update organization_data_key set sealed = $2, master_key_id = $3 where organization_id = $1 and sealed = $4",
        )
        .bind(id)
        .bind(resealed)
        .bind(keyring.current_id())
        .bind(&sealed)
        .execute(db)
        .await?;
        count += usize::try_from(updated.rows_affected()).unwrap_or(0);
    }
    count += crate::webhooks::rotate_msp_data_keys(db, keyring).await?;
    let left: i64 = sqlx::query_scalar(
        "select (select count(*) from organization_data_key where master_key_id <> $1)
              + (select count(*) from msp_data_key where master_key_id <> $1)",
    )
    .bind(keyring.current_id())
    .fetch_one(db)
    .await?;
    if left > 0 {
        return Err(StoreError::RotationIncomplete { left });
    }
    Ok(count)
}

/// How a customer of a partner connection became (or already was) an organization.
#[derive(Clone, Debug)]
pub struct PartnerBinding {
    pub organization: OrganizationRecord,
    /// `created`, `moved` (from its own app registration or another connection) or
    /// `already_connected`.
    pub outcome: &'static str,
    /// The discovery run queued for a new organization.
    pub discovery_run_id: Option<tenantry_domain::DiscoveryRunId>,
}

/// What connecting a customer needs to know of its connection and verification.
pub(crate) struct PartnerCustomer<'a> {
    pub connection: Uuid,
    pub client_id: Uuid,
    pub credential_type: &'a str,
    pub certificate_thumbprint: Option<&'a str>,
    pub secret_expires_at: Option<DateTime<Utc>>,
    pub tenant_id: Uuid,
    pub name: &'a DisplayName,
    pub status: &'a str,
    pub report: Option<&'a serde_json::Value>,
}

/// Binds a consented customer's tenant as an organization in partner mode, in one
/// transaction: a new organization (with its data key and first discovery run), or an
/// existing one of the MSP moved onto the connection (its own credential is deleted; its
/// inventory and history stay). A tenant bound in another MSP is `TenantAlreadyBound`.
pub(crate) async fn bind_partner_customer(
    db: &PgPool,
    keyring: &Keyring,
    msp: MspId,
    customer: PartnerCustomer<'_>,
    actor: serde_json::Value,
) -> Result<PartnerBinding, StoreError> {
    let mut tx = db.begin().await?;
    let existing: Option<(Uuid, Uuid, Option<Uuid>)> = sqlx::query_as(
        "select organization_id, msp_id, partner_connection_id from organization where tenant_id = $1 for update",
    )
    .bind(customer.tenant_id)
    .fetch_optional(&mut *tx)
    .await?;
    let (id, outcome, run) = match existing {
        Some((_, owner, _)) if owner != msp.as_uuid() => {
            return Err(StoreError::TenantAlreadyBound);
        }
        Some((id, _, Some(connection))) if connection == customer.connection => {
            (OrganizationId::from_uuid(id), "already_connected", None)
        }
        Some((id, _, _)) => {
            let id = OrganizationId::from_uuid(id);
            sqlx::query(
                "update organization set partner_connection_id = $2, client_id = $3, credential_type = $4,
                     certificate_thumbprint = $5, secret_expires_at = $6, status = $7, status_reason = null,
                     validation_report = coalesce($8, validation_report), validated_at = now(), updated_at = now()
                 where organization_id = $1",
            )
            .bind(id.as_uuid())
            .bind(customer.connection)
            .bind(customer.client_id)
            .bind(customer.credential_type)
            .bind(customer.certificate_thumbprint)
            .bind(customer.secret_expires_at)
            .bind(customer.status)
            .bind(customer.report)
            .execute(&mut *tx)
            .await?;
            // One credential per organization: the connection's from now on.
            sqlx::query("delete from organization_credential where organization_id = $1")
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?;
            (id, "moved", None)
        }
        None => {
            let id = OrganizationId::new();
            sqlx::query(
                "insert into organization (organization_id, msp_id, name, tenant_id, client_id, status, validation_report,
                     validated_at, next_scan_at, secret_expires_at, credential_type, certificate_thumbprint, partner_connection_id)
                 values ($1, $2, $3, $4, $5, $6, $7, now(), now() + interval '23 hours' + random() * interval '2 hours', $8, $9, $10, $11)",
            )
            .bind(id.as_uuid())
            .bind(msp.as_uuid())
            .bind(customer.name.as_str())
            .bind(customer.tenant_id)
            .bind(customer.client_id)
            .bind(customer.status)
            .bind(customer.report)
            .bind(customer.secret_expires_at)
            .bind(customer.credential_type)
            .bind(customer.certificate_thumbprint)
            .bind(customer.connection)
            .execute(&mut *tx)
            .await
            .map_err(tenant_bound_error)?;
            // Its own data key still seals what belongs to it alone (revealable passwords).
            insert_data_key(&mut tx, keyring, id).await?;
            let (run, _) = crate::discovery::queue_run(
                &mut tx,
                msp,
                id,
                crate::discovery::Trigger::Added,
                crate::discovery::Mode::Full,
            )
            .await?;
            (id, "created", Some(run))
        }
    };
    if outcome != "already_connected" {
        crate::audit::append(
            &mut tx,
            msp,
            crate::audit::NewEvent {
                kind: "organization.connected_through_partner",
                actor,
                organization_id: Some(id.as_uuid()),
                parameters: serde_json::json!({
                    "partner_connection_id": customer.connection,
                    "tenant_id": customer.tenant_id,
                    "outcome": outcome,
                }),
                decision: Some(outcome.into()),
                ..crate::audit::NewEvent::default()
            },
        )
        .await?;
    }
    let sql = format!("select {COLUMNS} from organization where organization_id = $1");
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id.as_uuid())
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(PartnerBinding {
        organization: OrganizationRecord::from(row),
        outcome,
        discovery_run_id: run,
    })
}
