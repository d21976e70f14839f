//! Customers of a partner connection (`partner_customer`): what the last GDAP sync listed
//! (relationships with their status, roles and end date) and what the last verification
//! in the customer tenant found (consent, missing permissions, the app's directory
//! roles). A customer whose relationships all ended stays, marked unlisted, so that its
//! organization can say why it stopped working.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use tenantry_domain::MspId;
use tenantry_domain::partner::{ConsentState, Relationship, consent_after_verification};
use uuid::Uuid;

use crate::error::StoreError;
use crate::jobs::PartnerVerifyJob;
use crate::queue::{self, NewJob};

/// One customer as a sync found it.
#[derive(Clone, Debug, Serialize)]
pub struct SyncedCustomer {
    pub tenant_id: Uuid,
    pub display_name: String,
    pub relationships: Vec<Relationship>,
}

/// What a verification in the customer tenant found.
#[derive(Clone, Debug)]
pub struct Verification {
    pub found: ConsentState,
    pub missing_permissions: Vec<String>,
    /// The validation report (directory roles, capabilities), when a token was had.
    pub report: Option<serde_json::Value>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CustomerRecord {
    pub partner_connection_id: Uuid,
    pub tenant_id: Uuid,
    pub display_name: String,
    #[sqlx(json)]
    pub relationships: Vec<Relationship>,
    pub listed: bool,
    pub consent_state: String,
    pub missing_permissions: Vec<String>,
    pub verification: Option<serde_json::Value>,
    pub verified_at: Option<DateTime<Utc>>,
    pub consented_at: Option<DateTime<Utc>>,
    pub declined_at: Option<DateTime<Utc>>,
    pub declined_reason: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// The organization bound to this customer's tenant through this connection.
    pub organization_id: Option<Uuid>,
}

impl CustomerRecord {
    pub fn consent(&self) -> ConsentState {
        ConsentState::parse(&self.consent_state).unwrap_or(ConsentState::Unknown)
    }

    /// The role template ids the app holds in the customer, when verified.
    pub fn directory_roles(&self) -> Option<Vec<String>> {
        let roles = self.verification.as_ref()?["directory_roles"].as_array()?;
        Some(
            roles
                .iter()
                .filter_map(|r| r["id"].as_str().map(str::to_ascii_lowercase))
                .collect(),
        )
    }
}

const COLUMNS: &str = "c.partner_connection_id, c.tenant_id, c.display_name, c.relationships, c.listed,
    c.consent_state, c.missing_permissions, c.verification, c.verified_at, c.consented_at,
    c.declined_at, c.declined_reason, c.updated_at,
    (select o.organization_id from organization o
      where o.tenant_id = c.tenant_id and o.partner_connection_id = c.partner_connection_id) as organization_id";

pub(crate) async fn save_sync(
    db: &PgPool,
    connection: Uuid,
    customers: &[SyncedCustomer],
) -> Result<(), StoreError> {
    let rows = serde_json::to_value(customers)
        .map_err(|e| StoreError::Corrupt(format!("customers: {e}")))?;
    let listed: Vec<Uuid> = customers.iter().map(|c| c.tenant_id).collect();
    let mut tx = db.begin().await?;
    // One statement for every customer: a partner with 1,000 customers is one round trip.
    sqlx::query(
        "insert into partner_customer (partner_connection_id, tenant_id, msp_id, display_name, relationships, listed)
         select $1, x.tenant_id, p.msp_id, x.display_name, x.relationships, true
           from jsonb_to_recordset($2) as x(tenant_id uuid, display_name text, relationships jsonb)
           join partner_connection p on p.partner_connection_id = $1
         on conflict (partner_connection_id, tenant_id) do update
            set display_name = excluded.display_name, relationships = excluded.relationships,
                listed = true, updated_at = now()",
    )
    .bind(connection)
    .bind(rows)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "update partner_customer set listed = false, updated_at = now()
         where partner_connection_id = $1 and listed and tenant_id <> all($2)",
    )
    .bind(connection)
    .bind(&listed)
    .execute(&mut *tx)
    .await?;
    // An organization whose customer has no active relationship any more is told so; its
    // jobs go on as long as the app's own consent holds (GDAP governs the partner's
    // people, not the app: graph-facts-next §1.1).
    sqlx::query(
        "update organization o set status = 'needs_attention',
             status_reason = 'No GDAP relationship with this customer is active any more (see the partner connection''s customers). The app keeps working while its consent holds, but no partner technician can consent or administer it.',
             updated_at = now()
           from partner_customer c
          where c.partner_connection_id = $1 and o.partner_connection_id = $1 and o.tenant_id = c.tenant_id
            and not exists (select 1 from jsonb_array_elements(c.relationships) r where r->>'status' = 'active')
            and o.status_reason is distinct from 'No GDAP relationship with this customer is active any more (see the partner connection''s customers). The app keeps working while its consent holds, but no partner technician can consent or administer it.'",
    )
    .bind(connection)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "update partner_connection set last_synced_at = now(), sync_error = null, updated_at = now()
         where partner_connection_id = $1",
    )
    .bind(connection)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// One page of the connection's customers, for an MSP.
pub(crate) async fn page(
    db: &PgPool,
    msp: MspId,
    connection: Uuid,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<CustomerRecord>, StoreError> {
    let sql = format!(
        "select {COLUMNS} from partner_customer c
         where c.msp_id = $1 and c.partner_connection_id = $2 and ($3::uuid is null or c.tenant_id > $3)
         order by c.tenant_id limit $4"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(connection)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(db)
        .await?)
}

pub(crate) async fn find(
    db: &PgPool,
    msp: MspId,
    connection: Uuid,
    tenant: Uuid,
) -> Result<CustomerRecord, StoreError> {
    let sql = format!(
        "select {COLUMNS} from partner_customer c
         where c.msp_id = $1 and c.partner_connection_id = $2 and c.tenant_id = $3"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(connection)
        .bind(tenant)
        .fetch_optional(db)
        .await?
        .ok_or(StoreError::NotFound)
}

/// The reason an organization in partner mode shows while its consent is gone.
pub const CONSENT_REVOKED: &str = "The partner app's consent in this tenant is gone (Entra answers AADSTS7000229: no service principal). Its jobs stop until a Global Administrator of the customer consents again (GET /api/v1/partner-connections/{id}/customers/{tenant}/consent-link).";

pub(crate) async fn save_verification(
    db: &PgPool,
    connection: Uuid,
    tenant: Uuid,
    credential_id: Uuid,
    verification: &Verification,
) -> Result<Option<ConsentState>, StoreError> {
    let consented_at: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
        "select consented_at from partner_customer where partner_connection_id = $1 and tenant_id = $2",
    )
    .bind(connection)
    .bind(tenant)
    .fetch_optional(db)
    .await?;
    let Some(consented_at) = consented_at else {
        return Err(StoreError::NotFound);
    };
    let state = consent_after_verification(verification.found, consented_at, Utc::now());
    let mut tx = db.begin().await?;
    // Saved only for the credential it proved: a verification of a credential rotated
    // away meanwhile says nothing about the new one.
    let saved = sqlx::query(
        "update partner_customer c set consent_state = $4, missing_permissions = $5,
             verification = coalesce($6, c.verification), verified_credential_id = $3,
             verified_at = now(), updated_at = now()
           from partner_connection p
          where p.partner_connection_id = c.partner_connection_id and p.credential_id = $3
            and c.partner_connection_id = $1 and c.tenant_id = $2",
    )
    .bind(connection)
    .bind(tenant)
    .bind(credential_id)
    .bind(state.as_str())
    .bind(&verification.missing_permissions)
    .bind(&verification.report)
    .execute(&mut *tx)
    .await?;
    if saved.rows_affected() == 0 {
        return Ok(None);
    }
    if state == ConsentState::Complete {
        // Consent is back: what revoking it said of the organization no longer holds.
        sqlx::query(
            "update organization set status = 'connected', status_reason = null, updated_at = now()
             where partner_connection_id = $1 and tenant_id = $2 and status_reason = $3",
        )
        .bind(connection)
        .bind(tenant)
        .bind(CONSENT_REVOKED)
        .execute(&mut *tx)
        .await?;
    }
    if state == ConsentState::NotConsented {
        sqlx::query(
            "update organization set status = 'needs_attention', status_reason = $3, updated_at = now()
             where partner_connection_id = $1 and tenant_id = $2",
        )
        .bind(connection)
        .bind(tenant)
        .bind(CONSENT_REVOKED)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Some(state))
}

/// Notes the admin's answer on the consent page (from a callback whose `state` was good).
pub(crate) async fn record_consent_answer(
    conn: &mut sqlx::PgConnection,
    connection: Uuid,
    tenant: Uuid,
    declined: Option<&str>,
) -> Result<(), StoreError> {
    let updated = match declined {
        None => sqlx::query(
            "update partner_customer set consented_at = now(), declined_at = null, declined_reason = null,
                 consent_state = case when consent_state = 'complete' then consent_state else 'propagating' end,
                 updated_at = now()
             where partner_connection_id = $1 and tenant_id = $2",
        )
        .bind(connection)
        .bind(tenant)
        .execute(&mut *conn)
        .await?,
        Some(reason) => sqlx::query(
            "update partner_customer set declined_at = now(), declined_reason = $3,
                 consent_state = case when consent_state = 'complete' then consent_state else 'declined' end,
                 updated_at = now()
             where partner_connection_id = $1 and tenant_id = $2",
        )
        .bind(connection)
        .bind(tenant)
        .bind(reason)
        .execute(&mut *conn)
        .await?,
    };
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn queue_verification(
    db: &PgPool,
    msp: MspId,
    connection: Uuid,
    tenant: Uuid,
    delay: chrono::Duration,
) -> Result<(), StoreError> {
    let mut conn = db.acquire().await?;
    queue_verification_on(&mut conn, msp, connection, tenant, delay).await
}

pub(crate) async fn queue_verification_on(
    conn: &mut sqlx::PgConnection,
    msp: MspId,
    connection: Uuid,
    tenant: Uuid,
    delay: chrono::Duration,
) -> Result<(), StoreError> {
    queue::enqueue(
        conn,
        &NewJob::of(
            &PartnerVerifyJob {
                partner_connection_id: connection,
                tenant_id: tenant,
            },
            msp,
            None,
        )?
        .max_attempts(5)
        .priority(2)
        .run_at(Utc::now() + delay),
    )
    .await?;
    Ok(())
}
