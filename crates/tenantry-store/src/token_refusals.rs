//! What a job learns when Entra refuses an organization's token: AADSTS7000229 (or 700016)
//! means the app's service principal is gone from the tenant, i.e. consent was revoked.
//! The organization then shows `needs_attention` with that reason, so the MSP sees why its
//! jobs stopped instead of finding only failed jobs.

use sqlx::PgPool;
use tenantry_domain::OrganizationId;

use crate::error::StoreError;

/// The AADSTS codes that mean "no service principal here" (graph-facts-next §1.3).
pub const NO_SERVICE_PRINCIPAL: [u32; 2] = [7000229, 700016];

/// Records refusals on organizations (not MSP-scoped: the job names the organization).
#[derive(Clone)]
pub struct TokenRefusals {
    pool: PgPool,
}

impl TokenRefusals {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Notes Entra's refusal `code` of the organization's token.
    pub async fn note(&self, organization: OrganizationId, code: u32) -> Result<(), StoreError> {
        if !NO_SERVICE_PRINCIPAL.contains(&code) {
            return Ok(());
        }
        sqlx::query(
            "update organization set status = 'needs_attention', status_reason = $2, updated_at = now()
             where organization_id = $1 and status_reason is distinct from $2",
        )
        .bind(organization.as_uuid())
        .bind(crate::partner::customers::CONSENT_REVOKED)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
