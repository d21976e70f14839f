//! Automatic re-validation: after consent is granted in Entra it takes minutes to reach
//! every Microsoft replica, so an organization that failed for a missing permission or a
//! missing service principal is checked again on a backoff schedule by a `revalidate`
//! job, without anyone asking. This module queues those jobs and gives the worker the
//! organization's credentials and a place to save what it found.

use chrono::{Duration, Utc};
use sqlx::PgPool;
use tenantry_domain::{MspId, OrganizationId};
use uuid::Uuid;

use crate::error::StoreError;
use crate::jobs::RevalidateJob;
use crate::queue::{self, NewJob};
use crate::sealing::Keyring;

/// Minutes from one check to the next: the first check a minute after the failure.
pub const SCHEDULE_MINUTES: [i64; 6] = [1, 5, 15, 30, 60, 120];

/// Queues the first check (nothing when one is already waiting).
pub(crate) async fn schedule(
    db: &PgPool,
    msp: MspId,
    organization: OrganizationId,
) -> Result<(), StoreError> {
    let mut conn = db.acquire().await?;
    queue::enqueue(
        &mut conn,
        &NewJob::of(
            &RevalidateJob {
                organization_id: organization,
            },
            msp,
            Some(organization),
        )?
        .max_attempts(5)
        .priority(2)
        .run_at(Utc::now() + Duration::minutes(SCHEDULE_MINUTES[0])),
    )
    .await?;
    Ok(())
}

pub use crate::organizations::StoredCredential;

/// The workers' side of re-validation (not MSP-scoped: the job names the organization).
#[derive(Clone)]
pub struct RevalidationStore {
    pool: PgPool,
    keyring: Option<std::sync::Arc<Keyring>>,
}

impl RevalidationStore {
    pub(crate) fn new(pool: PgPool, keyring: Option<std::sync::Arc<Keyring>>) -> Self {
        Self { pool, keyring }
    }

    pub async fn credential(
        &self,
        organization: OrganizationId,
    ) -> Result<StoredCredential, StoreError> {
        crate::organizations::stored_credential(&self.pool, self.keyring.as_deref(), organization)
            .await
    }

    /// Saves the check's outcome, unless the secret was replaced meanwhile.
    pub async fn save(
        &self,
        organization: OrganizationId,
        credential_id: Uuid,
        status: tenantry_domain::OrganizationStatus,
        report: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        crate::organizations::save_validation(
            &self.pool,
            None,
            organization,
            credential_id,
            status,
            report,
        )
        .await
    }
}
