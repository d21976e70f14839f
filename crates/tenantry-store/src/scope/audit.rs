//! The MSP-scoped doors to the audit log: reading pages of events and verifying the
//! hash chain.

use tenantry_domain::OrganizationId;

use super::MspScope;
use crate::audit::{self, AuditEvent, AuditFilter, Verification};
use crate::error::StoreError;

impl MspScope<'_> {
    pub async fn audit_events(
        &self,
        filter: &AuditFilter,
        cursor: Option<i64>,
        limit: i64,
        descending: bool,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        self.principal.grant().may_read_audit()?;
        if let Some(organization) = filter.organization {
            self.ensure_organization(OrganizationId::from_uuid(organization))
                .await?;
        }
        let visible = self.visible_organizations();
        audit::page(
            self.pool,
            self.principal.msp_id(),
            visible.as_deref(),
            filter,
            cursor,
            limit,
            descending,
        )
        .await
    }

    pub async fn verify_audit(&self) -> Result<Verification, StoreError> {
        self.principal.grant().may_verify_audit()?;
        audit::verify(self.pool, self.principal.msp_id()).await
    }
}
