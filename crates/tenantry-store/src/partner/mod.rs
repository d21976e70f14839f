//! Partner mode at rest: partner connections (a partner tenant's multi-tenant app and its
//! sealed credential, [`connections`]), the customers a GDAP sync found and what their
//! verification saw ([`customers`]), single-use admin-consent `state` values
//! ([`consent`]), and the worker's side of syncing and verifying ([`PartnerStore`]).

pub(crate) mod connections;
pub mod consent;
pub(crate) mod customers;

pub use connections::{NewPartnerConnection, PartnerConnectionRecord, PartnerCredential};
pub use consent::ConsentGrant;
pub use customers::{CustomerRecord, SyncedCustomer, Verification};

use sqlx::PgPool;
use uuid::Uuid;

use crate::error::StoreError;
use crate::sealing::Keyring;

/// Queues the partner syncs that are due (the leader's schedule); returns how many.
pub async fn queue_due_syncs(pool: &PgPool, limit: i64) -> Result<usize, StoreError> {
    connections::queue_due_syncs(pool, limit).await
}

/// Syncing and verifying, for workers (not MSP-scoped: the job names the connection).
#[derive(Clone)]
pub struct PartnerStore {
    pool: PgPool,
    keyring: Option<std::sync::Arc<Keyring>>,
}

impl PartnerStore {
    pub(crate) fn new(pool: PgPool, keyring: Option<std::sync::Arc<Keyring>>) -> Self {
        Self { pool, keyring }
    }

    /// The connection with its credential opened.
    pub async fn credential(&self, connection: Uuid) -> Result<PartnerCredential, StoreError> {
        let keyring = self.keyring.as_deref().ok_or(StoreError::NoMasterKey)?;
        connections::open(&self.pool, keyring, connection).await
    }

    /// Saves what a sync found: every listed customer's relationships (new customers
    /// appear as `unknown`), and which customers are no longer listed.
    pub async fn save_sync(
        &self,
        connection: Uuid,
        customers: &[SyncedCustomer],
    ) -> Result<(), StoreError> {
        customers::save_sync(&self.pool, connection, customers).await
    }

    /// Records a sync that failed (the customers stay as they were).
    pub async fn save_sync_failure(&self, connection: Uuid, error: &str) -> Result<(), StoreError> {
        connections::sync_failed(&self.pool, connection, error).await
    }

    /// Saves a verification of credential `credential_id` (nothing when the connection's
    /// credential was replaced since); returns the consent state saved.
    pub async fn save_verification(
        &self,
        connection: Uuid,
        tenant: Uuid,
        credential_id: Uuid,
        verification: &Verification,
    ) -> Result<Option<tenantry_domain::partner::ConsentState>, StoreError> {
        customers::save_verification(&self.pool, connection, tenant, credential_id, verification)
            .await
    }

    /// Queues a verification of one customer on the re-validation backoff schedule.
    pub async fn queue_verification(
        &self,
        msp: tenantry_domain::MspId,
        connection: Uuid,
        tenant: Uuid,
        delay: chrono::Duration,
    ) -> Result<(), StoreError> {
        customers::queue_verification(&self.pool, msp, connection, tenant, delay).await
    }
}
