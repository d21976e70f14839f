//! The MSP-scoped doors to discovery runs: queueing a scan and reading its runs.

use tenantry_domain::{DiscoveryRunId, OrganizationId};

use super::MspScope;
use crate::api_keys::Page;
use crate::discovery::{self, Mode, RunRecord, Trigger};
use crate::error::StoreError;

impl MspScope<'_> {
    /// Queues a discovery run now, or returns the one already queued or running (with
    /// `false`).
    pub async fn queue_discovery(
        &self,
        id: OrganizationId,
        trigger: Trigger,
        mode: Mode,
    ) -> Result<(RunRecord, bool), StoreError> {
        self.principal.grant().may_start_work()?;
        self.ensure_organization(id).await?;
        // The job and its run commit together: a worker never claims a job whose run row
        // it cannot see yet.
        let mut tx = self.pool.begin().await?;
        let (run, created) =
            discovery::queue_run(&mut tx, self.principal.msp_id(), id, trigger, mode).await?;
        tx.commit().await?;
        Ok((self.discovery_run(id, run).await?, created))
    }

    pub async fn discovery_runs(
        &self,
        id: OrganizationId,
        page: Page,
    ) -> Result<Vec<RunRecord>, StoreError> {
        self.ensure_organization(id).await?;
        discovery::list_runs(self.pool, self.principal.msp_id(), id, page).await
    }

    pub async fn discovery_run(
        &self,
        id: OrganizationId,
        run: DiscoveryRunId,
    ) -> Result<RunRecord, StoreError> {
        self.ensure_organization(id).await?;
        discovery::find_run(self.pool, self.principal.msp_id(), id, run).await
    }
}
