//! The MSP-scoped doors to organizations: listing, adding, credentials (secrets,
//! certificates, and key pairs generated for the MSP), validation reports, renaming,
//! deleting and the discovery schedule.

use tenantry_domain::{
    AppCredential, CertificateCredential, DiscoveryRunId, DisplayName, OrganizationId,
    OrganizationStatus,
};
use uuid::Uuid;

use super::MspScope;
use crate::api_keys::Page;
use crate::discovery::{self, Mode, Trigger};
use crate::error::StoreError;
use crate::generated_certificates::{self, GeneratedCertificate};
use crate::organizations::{self, NewOrganization, OrganizationRecord};

impl MspScope<'_> {
    /// Adding, changing and deleting organizations needs an unlimited admin or owner key.
    /// Public so handlers can refuse before calling Microsoft on the caller's behalf.
    pub fn may_manage_organizations(&self) -> Result<(), StoreError> {
        Ok(self.principal.grant().may_manage_keys()?)
    }

    /// Work that acts in a tenant on the caller's behalf (a scan, a re-validation) needs a
    /// technician key or above.
    pub fn may_start_work(&self) -> Result<(), StoreError> {
        Ok(self.principal.grant().may_start_work()?)
    }

    /// The caller's organizations (all, or those its key is limited to).
    pub async fn list_organizations(
        &self,
        page: Page,
    ) -> Result<Vec<OrganizationRecord>, StoreError> {
        organizations::list(
            self.pool,
            self.principal.msp_id(),
            self.principal.organizations(),
            page,
        )
        .await
    }

    pub async fn organization(&self, id: OrganizationId) -> Result<OrganizationRecord, StoreError> {
        organizations::find(
            self.pool,
            self.principal.msp_id(),
            self.principal.organizations(),
            id,
        )
        .await
    }

    /// The organization's last validation report (`None` before the first validation).
    pub async fn validation_report(
        &self,
        id: OrganizationId,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        organizations::validation_report(
            self.pool,
            self.principal.msp_id(),
            self.principal.organizations(),
            id,
        )
        .await
    }

    /// Fails with `NotFound` unless the organization is the caller's to see; cheaper than
    /// [`MspScope::organization`] where the row itself is not needed.
    pub async fn ensure_organization(&self, id: OrganizationId) -> Result<(), StoreError> {
        organizations::ensure_visible(
            self.pool,
            self.principal.msp_id(),
            self.principal.organizations(),
            id,
        )
        .await
    }

    /// Whether a tenant is bound anywhere in the service (never says where).
    pub async fn tenant_bound(&self, tenant_id: Uuid) -> Result<bool, StoreError> {
        self.may_manage_organizations()?;
        organizations::tenant_bound(self.pool, tenant_id).await
    }

    /// Stores a validated organization and queues its first discovery run.
    pub async fn create_organization(
        &self,
        new: NewOrganization,
    ) -> Result<(OrganizationRecord, DiscoveryRunId), StoreError> {
        self.may_manage_organizations()?;
        let keyring = self.keyring()?;
        let mut tx = self.pool.begin().await?;
        self.caller_still_active(&mut tx).await?;
        let record = organizations::insert(&mut tx, keyring, self.principal.msp_id(), &new).await?;
        // The first scan commits with the organization, or neither does.
        let (run, _) = discovery::queue_run(
            &mut tx,
            self.principal.msp_id(),
            record.id,
            Trigger::Added,
            Mode::Full,
        )
        .await?;
        tx.commit().await?;
        Ok((record, run))
    }

    /// The stored credential's id and the credential (the id changes with every
    /// replacement), for re-validation and Graph calls.
    pub async fn credential(
        &self,
        id: OrganizationId,
    ) -> Result<(Uuid, AppCredential), StoreError> {
        let stored = self.stored_credential(id).await?;
        Ok((stored.credential_id, stored.credential))
    }

    /// The organization's credential with where it comes from (its own app registration,
    /// or a partner connection), for re-validation.
    pub async fn stored_credential(
        &self,
        id: OrganizationId,
    ) -> Result<organizations::StoredCredential, StoreError> {
        self.ensure_organization(id).await?;
        organizations::stored_credential(self.pool, Some(self.keyring()?), id).await
    }

    /// The public certificate (DER) of the organization's credential; `NotFound` when it
    /// uses a client secret.
    pub async fn organization_certificate(
        &self,
        id: OrganizationId,
    ) -> Result<Vec<u8>, StoreError> {
        self.ensure_organization(id).await?;
        crate::credentials::certificate_der(self.pool, id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Stores a new, validated credential (secret or certificate) together with its report;
    /// `generated` names the generated key pair it came from, used up in the same
    /// transaction.
    pub async fn replace_credentials(
        &self,
        id: OrganizationId,
        client_id: Uuid,
        credential: &AppCredential,
        generated: Option<Uuid>,
        status: OrganizationStatus,
        report: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.may_manage_organizations()?;
        self.still_active().await?;
        self.ensure_organization(id).await?;
        organizations::replace_credential(
            self.pool,
            self.keyring()?,
            self.principal.msp_id(),
            id,
            organizations::Replacement {
                client_id,
                credential,
                generated,
                actor: self.actor(None, None).audit(),
            },
            organizations::Validated { status, report },
        )
        .await
    }

    /// Keeps a key pair generated for the MSP until a connection uses it (owner or admin).
    pub async fn store_generated_certificate(
        &self,
        certificate: &CertificateCredential,
    ) -> Result<GeneratedCertificate, StoreError> {
        self.may_manage_organizations()?;
        self.still_active().await?;
        generated_certificates::insert(
            self.pool,
            self.keyring()?,
            self.principal.msp_id(),
            certificate,
        )
        .await
    }

    /// A generated certificate (its public parts), while no connection has used it.
    pub async fn generated_certificate(
        &self,
        id: Uuid,
    ) -> Result<GeneratedCertificate, StoreError> {
        self.may_manage_organizations()?;
        generated_certificates::find(self.pool, self.principal.msp_id(), id).await
    }

    /// A generated key pair, opened to prove it to Microsoft before a connection uses it.
    pub async fn open_generated_certificate(
        &self,
        id: Uuid,
    ) -> Result<CertificateCredential, StoreError> {
        self.may_manage_organizations()?;
        generated_certificates::open(self.pool, self.keyring()?, self.principal.msp_id(), id).await
    }

    /// Destroys a generated key pair no connection uses.
    pub async fn delete_generated_certificate(&self, id: Uuid) -> Result<(), StoreError> {
        self.may_manage_organizations()?;
        self.still_active().await?;
        generated_certificates::delete(self.pool, self.principal.msp_id(), id).await
    }

    /// Saves a report of credential `credential`; ignored when the secret was replaced
    /// since (the newer secret's report stands).
    pub async fn save_validation(
        &self,
        id: OrganizationId,
        credential: Uuid,
        status: OrganizationStatus,
        report: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        self.ensure_organization(id).await?;
        organizations::save_validation(
            self.pool,
            Some(self.principal.msp_id()),
            id,
            credential,
            status,
            report,
        )
        .await
    }

    /// Queues automatic re-validation on the backoff schedule (one per organization).
    pub async fn schedule_revalidation(&self, id: OrganizationId) -> Result<(), StoreError> {
        self.ensure_organization(id).await?;
        crate::revalidation::schedule(self.pool, self.principal.msp_id(), id).await
    }

    pub async fn rename_organization(
        &self,
        id: OrganizationId,
        name: &DisplayName,
    ) -> Result<(), StoreError> {
        self.may_manage_organizations()?;
        self.still_active().await?;
        self.ensure_organization(id).await?;
        organizations::rename(self.pool, self.principal.msp_id(), id, name).await
    }

    pub async fn delete_organization(&self, id: OrganizationId) -> Result<(), StoreError> {
        self.may_manage_organizations()?;
        self.still_active().await?;
        self.ensure_organization(id).await?;
        organizations::delete(self.pool, self.principal.msp_id(), id).await
    }

    /// Sets the discovery schedule (`None`: every 24 hours with jitter) and when the next
    /// scan is due.
    pub async fn set_scan_schedule(
        &self,
        id: OrganizationId,
        schedule: Option<&str>,
        next_scan_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.may_manage_organizations()?;
        self.ensure_organization(id).await?;
        organizations::set_scan_schedule(
            self.pool,
            self.principal.msp_id(),
            id,
            schedule,
            next_scan_at,
        )
        .await
    }
}
