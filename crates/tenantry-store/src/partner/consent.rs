//! The `state` of admin-consent links. Microsoft hands it back unchanged on the redirect to
//! `GET /consent/callback`, which anyone can call, so it must carry its own proof: a random
//! 256-bit value (hex), of which only the SHA-256 is stored with what it is bound to (the
//! MSP, the partner connection, the customer tenant), an expiry an hour ahead and whether it
//! was used. A forged value finds no row; a replayed or expired one finds a used or stale
//! row; the callback trusts nothing of the query but the state (never its `tenant`,
//! which graph-facts-next §1.4 says an attacker controls). Server-side rows rather than a
//! signature: single use needs a row anyway, and a row can be revoked with its connection.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tenantry_domain::MspId;
use uuid::Uuid;

use crate::error::StoreError;

/// How long a consent link works.
pub const LIFETIME: chrono::Duration = chrono::Duration::hours(1);

/// The length of a state value: 32 random bytes, hex.
pub const STATE_LEN: usize = 64;

fn hash(state: &str) -> Vec<u8> {
    Sha256::digest(state.as_bytes()).to_vec()
}

/// A new state for (connection, customer); the value is shown once, in the link.
pub(crate) async fn issue(
    db: &PgPool,
    msp: MspId,
    connection: Uuid,
    customer: Uuid,
) -> Result<(String, DateTime<Utc>), StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Corrupt(format!("randomness: {e}")))?;
    let state = hex::encode(bytes);
    let expires_at: DateTime<Utc> = sqlx::query_scalar(
        "insert into consent_request (state_hash, msp_id, partner_connection_id, customer_tenant_id, expires_at)
         select $1, $2, $3, $4, now() + $5
          where exists (select 1 from partner_customer where msp_id = $2 and partner_connection_id = $3 and tenant_id = $4)
         returning expires_at",
    )
    .bind(hash(&state))
    .bind(msp.as_uuid())
    .bind(connection)
    .bind(customer)
    .bind(LIFETIME)
    .fetch_optional(db)
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok((state, expires_at))
}

/// msp, connection, customer, expires_at, used_at.
type RequestRow = (Uuid, Uuid, Uuid, DateTime<Utc>, Option<DateTime<Utc>>);

/// What a good state was bound to.
#[derive(Clone, Debug)]
pub struct ConsentGrant {
    pub msp_id: MspId,
    pub partner_connection_id: Uuid,
    pub customer_tenant_id: Uuid,
}

/// Why a state was refused (for the callback's page; never more than this).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateRefusal {
    /// Not a state Tenantry issued (or malformed).
    Unknown,
    /// Already used.
    Used,
    Expired,
}

/// Uses the state up and records the admin's answer in one transaction: `declined` is the
/// AADSTS description of a refusal, `None` for a consent. Queues the customer's
/// verification after a consent.
pub(crate) async fn redeem(
    db: &PgPool,
    state: &str,
    declined: Option<&str>,
) -> Result<Result<ConsentGrant, StateRefusal>, StoreError> {
    if state.len() != STATE_LEN || !state.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(Err(StateRefusal::Unknown));
    }
    let mut tx = db.begin().await?;
    let row: Option<RequestRow> = sqlx::query_as(
        "select msp_id, partner_connection_id, customer_tenant_id, expires_at, used_at
           from consent_request where state_hash = $1 for update",
    )
    .bind(hash(state))
    .fetch_optional(&mut *tx)
    .await?;
    let Some((msp, connection, customer, expires_at, used_at)) = row else {
        return Ok(Err(StateRefusal::Unknown));
    };
    if used_at.is_some() {
        return Ok(Err(StateRefusal::Used));
    }
    if expires_at <= Utc::now() {
        return Ok(Err(StateRefusal::Expired));
    }
    sqlx::query("update consent_request set used_at = now() where state_hash = $1")
        .bind(hash(state))
        .execute(&mut *tx)
        .await?;
    let msp = MspId::from_uuid(msp);
    super::customers::record_consent_answer(&mut tx, connection, customer, declined).await?;
    if declined.is_none() {
        // The first check soon: the principal usually exists within a minute.
        super::customers::queue_verification_on(
            &mut tx,
            msp,
            connection,
            customer,
            chrono::Duration::seconds(5),
        )
        .await?;
    }
    crate::audit::append(
        &mut tx,
        msp,
        crate::audit::NewEvent {
            kind: if declined.is_none() {
                "partner_customer.consented"
            } else {
                "partner_customer.consent_declined"
            },
            actor: serde_json::json!({"type": "system", "component": "consent_callback"}),
            parameters: serde_json::json!({"partner_connection_id": connection, "customer_tenant_id": customer}),
            targets: serde_json::json!([{"type": "tenant", "id": customer}]),
            decision: Some(if declined.is_none() { "consented" } else { "declined" }.into()),
            reason: declined.map(str::to_owned),
            ..crate::audit::NewEvent::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(ConsentGrant {
        msp_id: msp,
        partner_connection_id: connection,
        customer_tenant_id: customer,
    }))
}

/// Deletes consent requests a day past their expiry (used or not): nothing can redeem
/// them, and an MSP asking for links every day should not grow the table forever.
pub async fn prune(db: &PgPool) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("delete from consent_request where expires_at < now() - interval '1 day'")
            .execute(db)
            .await?
            .rows_affected(),
    )
}
