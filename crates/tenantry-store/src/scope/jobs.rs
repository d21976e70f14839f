//! The MSP-scoped doors to the job queue: listing, reading, retrying and cancelling the
//! jobs the caller's key may see.

use tenantry_domain::JobId;

use super::MspScope;
use crate::api_keys::Page;
use crate::error::StoreError;
use crate::queue::{self, JobFilter, JobRecord};

impl MspScope<'_> {
    /// The jobs the key may see. An `organization` filter that is not one of the key's
    /// organizations (another MSP's, outside the key's limit, or unknown) is `NotFound`,
    /// as on every list that takes one.
    pub async fn jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<JobRecord>, StoreError> {
        if let Some(organization) = filter.organization {
            self.ensure_organization(organization).await?;
        }
        queue::list(
            self.pool,
            self.principal.msp_id(),
            self.visible_organizations(),
            filter,
            page,
        )
        .await
    }

    pub async fn job(&self, id: JobId) -> Result<JobRecord, StoreError> {
        queue::find(
            self.pool,
            self.principal.msp_id(),
            &self.visible_organizations(),
            id,
        )
        .await
    }

    pub async fn retry_job(&self, id: JobId) -> Result<JobRecord, StoreError> {
        self.principal.grant().may_manage_jobs()?;
        self.job(id).await?;
        queue::retry(self.pool, self.principal.msp_id(), id).await?;
        self.job(id).await
    }

    pub async fn cancel_job(&self, id: JobId) -> Result<JobRecord, StoreError> {
        self.principal.grant().may_manage_jobs()?;
        self.job(id).await?;
        queue::cancel(self.pool, self.principal.msp_id(), id).await?;
        self.job(id).await
    }
}
