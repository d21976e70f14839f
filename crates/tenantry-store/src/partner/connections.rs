//! Partner connections (`partner_connection`): the partner tenant, its multi-tenant app and
//! the app's one credential for every customer, sealed by the MSP's data key and bound to
//! (connection, purpose, credential id). Created, rotated and deleted in one transaction
//! each, with an audit event; the first sync is queued with the connection.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use sqlx::{PgConnection, PgPool};
use tenantry_domain::{AppCredential, CredentialKind, MspId, OrganizationId};
use uuid::Uuid;

use crate::error::StoreError;
use crate::jobs::PartnerSyncJob;
use crate::queue::{self, NewJob};
use crate::sealing::{Keyring, Purpose};

/// A partner connection as listed and shown (never its credential).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PartnerConnectionRecord {
    pub partner_connection_id: Uuid,
    pub name: String,
    pub tenant_id: Uuid,
    pub client_id: Uuid,
    pub credential_type: String,
    pub certificate_thumbprint: Option<String>,
    pub secret_expires_at: Option<DateTime<Utc>>,
    pub required_permissions: Vec<String>,
    /// The capabilities its organizations need (`None`: every capability).
    pub capabilities: Option<Vec<String>>,
    pub redirect_uris: Vec<String>,
    pub app_display_name: Option<String>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub next_sync_at: DateTime<Utc>,
    pub sync_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Organizations that take their credential from this connection.
    pub organizations: i64,
    /// Customers the last sync found.
    pub customers: i64,
}

const COLUMNS: &str = "p.partner_connection_id, p.name, p.tenant_id, p.client_id, p.credential_type,
    p.certificate_thumbprint, p.secret_expires_at, p.required_permissions, p.capabilities, p.redirect_uris,
    p.app_display_name, p.last_synced_at, p.next_sync_at, p.sync_error, p.created_at, p.updated_at,
    (select count(*) from organization o where o.partner_connection_id = p.partner_connection_id) as organizations,
    (select count(*) from partner_customer c where c.partner_connection_id = p.partner_connection_id and c.listed) as customers";

/// A validated partner connection to store.
pub struct NewPartnerConnection {
    pub name: String,
    pub tenant_id: Uuid,
    pub client_id: Uuid,
    pub credential: AppCredential,
    /// The generated key pair the credential came from, used up with the insert.
    pub generated: Option<Uuid>,
    pub required_permissions: Vec<String>,
    /// The capabilities its organizations need (`None`: every capability).
    pub capabilities: Option<Vec<String>>,
    pub redirect_uris: Vec<String>,
    pub app_display_name: Option<String>,
    pub secret_expires_at: Option<DateTime<Utc>>,
}

/// A connection's credential, opened for a worker or a check.
pub struct PartnerCredential {
    pub partner_connection_id: Uuid,
    pub msp_id: MspId,
    pub tenant_id: Uuid,
    pub client_id: Uuid,
    pub credential_id: Uuid,
    pub credential: AppCredential,
    pub required_permissions: Vec<String>,
    /// The capabilities customers are verified for (`None`: every capability).
    pub capabilities: Option<Vec<String>>,
}

fn purpose(kind: CredentialKind) -> Purpose {
    match kind {
        CredentialKind::Secret => Purpose::ClientSecret,
        CredentialKind::Certificate => Purpose::CertificatePrivateKey,
    }
}

/// The associated data of a sealed partner credential: the connection as owner, and the
/// credential id (prefixed, so it can never open as anything sealed for an organization).
fn binding(connection: Uuid, credential_id: Uuid) -> (OrganizationId, String) {
    (
        OrganizationId::from_uuid(connection),
        format!("partner:{credential_id}"),
    )
}

/// Seals `credential` for `connection` under a new credential id and writes it.
async fn write_credential(
    conn: &mut PgConnection,
    keyring: &Keyring,
    msp: MspId,
    connection: Uuid,
    credential: &AppCredential,
    secret_expires_at: Option<DateTime<Utc>>,
) -> Result<Uuid, StoreError> {
    let key = crate::webhooks::msp_data_key(&mut *conn, keyring, msp).await?;
    let credential_id = Uuid::now_v7();
    let (owner, context) = binding(connection, credential_id);
    let (value, certificate) = match credential {
        AppCredential::Secret(secret) => (secret.expose_secret(), None),
        AppCredential::Certificate(c) => (c.private_key_pem.expose_secret(), Some(c)),
    };
    let sealed = key.seal(value, owner, purpose(credential.kind()), &context)?;
    let updated = sqlx::query(
        "update partner_connection set credential_id = $3, sealed_secret = $4, credential_type = $5,
             certificate_der = $6, certificate_thumbprint = $7, certificate_not_before = $8,
             certificate_not_after = $9, secret_expires_at = $10, updated_at = now()
         where msp_id = $1 and partner_connection_id = $2",
    )
    .bind(msp.as_uuid())
    .bind(connection)
    .bind(credential_id)
    .bind(sealed)
    .bind(credential.kind().as_str())
    .bind(certificate.map(|c| c.certificate_der.as_slice()))
    .bind(certificate.map(|c| c.thumbprint_s256.as_str()))
    .bind(certificate.map(|c| c.not_before))
    .bind(certificate.map(|c| c.not_after))
    .bind(certificate.map(|c| c.not_after).or(secret_expires_at))
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    // Organizations in partner mode show the kind of the credential they use.
    sqlx::query(
        "update organization set credential_type = $2, certificate_thumbprint = $3,
             secret_expires_at = $4, updated_at = now()
         where partner_connection_id = $1",
    )
    .bind(connection)
    .bind(credential.kind().as_str())
    .bind(certificate.map(|c| c.thumbprint_s256.as_str()))
    .bind(certificate.map(|c| c.not_after).or(secret_expires_at))
    .execute(&mut *conn)
    .await?;
    Ok(credential_id)
}

fn describe(credential: &AppCredential, generated: Option<Uuid>) -> serde_json::Value {
    serde_json::json!({
        "credential_type": credential.kind().as_str(),
        "certificate_thumbprint": credential.certificate().map(|c| c.thumbprint_s256.as_str()),
        "generated_certificate_id": generated,
    })
}

pub(crate) async fn insert(
    db: &PgPool,
    keyring: &Keyring,
    msp: MspId,
    new: &NewPartnerConnection,
    actor: serde_json::Value,
) -> Result<PartnerConnectionRecord, StoreError> {
    let id = Uuid::now_v7();
    let mut tx = db.begin().await?;
    // The row first, with a placeholder credential replaced in the same transaction (the
    // sealed value is bound to the row's id).
    sqlx::query(
        "insert into partner_connection (partner_connection_id, msp_id, name, tenant_id, client_id,
             credential_id, sealed_secret, credential_type, required_permissions, redirect_uris,
             app_display_name, next_sync_at, capabilities)
         values ($1, $2, $3, $4, $5, $1, '\\x00', 'secret', $6, $7, $8, now() + $9, $10)",
    )
    .bind(id)
    .bind(msp.as_uuid())
    .bind(&new.name)
    .bind(new.tenant_id)
    .bind(new.client_id)
    .bind(&new.required_permissions)
    .bind(&new.redirect_uris)
    .bind(&new.app_display_name)
    .bind(SYNC_EVERY)
    .bind(&new.capabilities)
    .execute(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.constraint() == Some("partner_connection_app_idx") => {
            StoreError::Refused(
                tenantry_domain::ErrorCode::TenantAlreadyBound,
                "this partner tenant's app is already a partner connection of this MSP; rotate its credential instead".into(),
            )
        }
        _ => StoreError::from(e),
    })?;
    write_credential(
        &mut tx,
        keyring,
        msp,
        id,
        &new.credential,
        new.secret_expires_at,
    )
    .await?;
    if let Some(generated) = new.generated {
        crate::generated_certificates::consume_for_credential(&mut tx, msp, generated).await?;
    }
    let mut parameters = describe(&new.credential, new.generated);
    parameters["partner_tenant_id"] = serde_json::json!(new.tenant_id);
    parameters["client_id"] = serde_json::json!(new.client_id);
    parameters["required_permissions"] = serde_json::json!(new.required_permissions);
    crate::audit::append(
        &mut tx,
        msp,
        crate::audit::NewEvent {
            kind: "partner_connection.created",
            actor,
            parameters,
            targets: serde_json::json!([{"type": "partner_connection", "id": id, "name": new.name}]),
            decision: Some("created".into()),
            ..crate::audit::NewEvent::default()
        },
    )
    .await?;
    queue_sync(&mut tx, msp, id).await?;
    let record = find_on(&mut tx, msp, id).await?;
    tx.commit().await?;
    Ok(record)
}

async fn find_on(
    conn: &mut PgConnection,
    msp: MspId,
    id: Uuid,
) -> Result<PartnerConnectionRecord, StoreError> {
    let sql = format!(
        "select {COLUMNS} from partner_connection p where p.msp_id = $1 and p.partner_connection_id = $2"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)
}

pub(crate) async fn find(
    db: &PgPool,
    msp: MspId,
    id: Uuid,
) -> Result<PartnerConnectionRecord, StoreError> {
    let mut conn = db.acquire().await?;
    find_on(&mut conn, msp, id).await
}

pub(crate) async fn list(
    db: &PgPool,
    msp: MspId,
) -> Result<Vec<PartnerConnectionRecord>, StoreError> {
    let sql = format!(
        "select {COLUMNS} from partner_connection p where p.msp_id = $1 order by p.partner_connection_id"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .fetch_all(db)
        .await?)
}

#[derive(sqlx::FromRow)]
struct SealedRow {
    msp_id: Uuid,
    tenant_id: Uuid,
    client_id: Uuid,
    credential_id: Uuid,
    sealed_secret: Vec<u8>,
    credential_type: String,
    certificate_der: Option<Vec<u8>>,
    certificate_thumbprint: Option<String>,
    certificate_not_before: Option<DateTime<Utc>>,
    certificate_not_after: Option<DateTime<Utc>>,
    required_permissions: Vec<String>,
    capabilities: Option<Vec<String>>,
}

/// The connection's credential, opened (not MSP-scoped: workers, and doors that checked
/// the MSP first).
pub(crate) async fn open(
    db: &PgPool,
    keyring: &Keyring,
    id: Uuid,
) -> Result<PartnerCredential, StoreError> {
    let row: SealedRow = sqlx::query_as(
        "select msp_id, tenant_id, client_id, credential_id, sealed_secret, credential_type,
             certificate_der, certificate_thumbprint, certificate_not_before, certificate_not_after,
             required_permissions, capabilities
         from partner_connection where partner_connection_id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or(StoreError::NotFound)?;
    let msp = MspId::from_uuid(row.msp_id);
    let mut conn = db.acquire().await?;
    let key = crate::webhooks::msp_data_key(&mut conn, keyring, msp).await?;
    drop(conn);
    let kind = CredentialKind::parse(&row.credential_type)
        .ok_or_else(|| StoreError::Corrupt(format!("credential kind {:?}", row.credential_type)))?;
    let (owner, context) = binding(id, row.credential_id);
    let opened = key.open(&row.sealed_secret, owner, purpose(kind), &context)?;
    let credential = crate::credentials::assemble(
        kind,
        opened,
        crate::credentials::CertificateColumns {
            der: row.certificate_der,
            thumbprint: row.certificate_thumbprint,
            not_before: row.certificate_not_before,
            not_after: row.certificate_not_after,
        },
    )?;
    Ok(PartnerCredential {
        partner_connection_id: id,
        msp_id: msp,
        tenant_id: row.tenant_id,
        client_id: row.client_id,
        credential_id: row.credential_id,
        credential,
        required_permissions: row.required_permissions,
        capabilities: row.capabilities,
    })
}

/// The public certificate (DER) of a connection's certificate credential.
pub(crate) async fn certificate_der(
    db: &PgPool,
    msp: MspId,
    id: Uuid,
) -> Result<Option<Vec<u8>>, StoreError> {
    sqlx::query_scalar::<_, Option<Vec<u8>>>(
        "select certificate_der from partner_connection where msp_id = $1 and partner_connection_id = $2",
    )
    .bind(msp.as_uuid())
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or(StoreError::NotFound)
}

/// A proven credential to put in place, the key pair it came from, and its expiry.
pub struct Replacement<'a> {
    pub credential: &'a AppCredential,
    pub generated: Option<Uuid>,
    pub secret_expires_at: Option<DateTime<Utc>>,
}

/// A new, proven credential replaces the old one in one statement: every job that opens
/// the credential afterwards uses the new one; jobs that opened the old one finish with
/// it (it still works in Entra until the MSP removes it there).
pub(crate) async fn replace_credential(
    db: &PgPool,
    keyring: &Keyring,
    msp: MspId,
    id: Uuid,
    new: Replacement<'_>,
    actor: serde_json::Value,
) -> Result<(), StoreError> {
    let Replacement {
        credential,
        generated,
        secret_expires_at,
    } = new;
    let mut tx = db.begin().await?;
    write_credential(&mut tx, keyring, msp, id, credential, secret_expires_at).await?;
    if let Some(generated) = generated {
        crate::generated_certificates::consume_for_credential(&mut tx, msp, generated).await?;
    }
    crate::audit::append(
        &mut tx,
        msp,
        crate::audit::NewEvent {
            kind: "partner_connection.credential_replaced",
            actor,
            parameters: describe(credential, generated),
            targets: serde_json::json!([{"type": "partner_connection", "id": id}]),
            decision: Some("replaced".into()),
            ..crate::audit::NewEvent::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes the connection. While organizations take their credential from it, only with
/// `force`; they are then left without a credential, `needs_attention` with the reason,
/// and their inventory and history stay. Returns the organizations left so.
pub(crate) async fn delete(
    db: &PgPool,
    msp: MspId,
    id: Uuid,
    force: bool,
    actor: serde_json::Value,
) -> Result<Vec<Uuid>, StoreError> {
    let mut tx = db.begin().await?;
    let exists: Option<i32> = sqlx::query_scalar(
        "select 1 from partner_connection where msp_id = $1 and partner_connection_id = $2 for update",
    )
    .bind(msp.as_uuid())
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    let organizations: Vec<Uuid> = sqlx::query_scalar(
        "select organization_id from organization where msp_id = $1 and partner_connection_id = $2 order by organization_id for update",
    )
    .bind(msp.as_uuid())
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    if !organizations.is_empty() && !force {
        return Err(StoreError::Refused(
            tenantry_domain::ErrorCode::PartnerConnectionInUse,
            format!(
                "{} organization(s) take their credential from this partner connection. Deleting it stops every job of theirs until each is given its own app registration's credentials (PUT /api/v1/organizations/{{id}}/credentials) or another partner connection; their inventory and history are kept. Repeat with ?force=true to delete it anyway",
                organizations.len()
            ),
        ));
    }
    sqlx::query(
        "update organization set partner_connection_id = null, credential_type = null,
             certificate_thumbprint = null, status = 'needs_attention',
             status_reason = 'Its partner connection was deleted, so it has no credential: give it its own app registration''s credentials (PUT /api/v1/organizations/{id}/credentials) or connect it through another partner connection.',
             updated_at = now()
         where msp_id = $1 and partner_connection_id = $2",
    )
    .bind(msp.as_uuid())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("delete from partner_connection where msp_id = $1 and partner_connection_id = $2")
        .bind(msp.as_uuid())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    crate::audit::append(
        &mut tx,
        msp,
        crate::audit::NewEvent {
            kind: "partner_connection.deleted",
            actor,
            parameters: serde_json::json!({"force": force, "organizations_left_without_credential": organizations}),
            targets: serde_json::json!([{"type": "partner_connection", "id": id}]),
            decision: Some("deleted".into()),
            ..crate::audit::NewEvent::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(organizations)
}

/// Queues a sync of the connection (nothing when one is already waiting).
pub(crate) async fn queue_sync(
    conn: &mut PgConnection,
    msp: MspId,
    id: Uuid,
) -> Result<crate::queue::Enqueued, StoreError> {
    queue::enqueue(
        conn,
        &NewJob::of(
            &PartnerSyncJob {
                partner_connection_id: id,
            },
            msp,
            None,
        )?
        .max_attempts(5)
        .priority(2),
    )
    .await
}

/// How often a partner connection is synced without being asked.
pub const SYNC_EVERY: chrono::Duration = chrono::Duration::hours(6);

/// Queues the syncs that are due and moves their next due time on.
pub(crate) async fn queue_due_syncs(db: &PgPool, limit: i64) -> Result<usize, StoreError> {
    let mut tx = db.begin().await?;
    let due: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "select partner_connection_id, msp_id from partner_connection
         where next_sync_at <= now() order by next_sync_at limit $1 for update skip locked",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    for (id, msp) in &due {
        queue_sync(&mut tx, MspId::from_uuid(*msp), *id).await?;
        sqlx::query(
            "update partner_connection set next_sync_at = now() + $2 where partner_connection_id = $1",
        )
        .bind(id)
        .bind(SYNC_EVERY)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

pub(crate) async fn sync_failed(db: &PgPool, id: Uuid, error: &str) -> Result<(), StoreError> {
    sqlx::query(
        "update partner_connection set sync_error = $2, updated_at = now() where partner_connection_id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(db)
    .await?;
    Ok(())
}
