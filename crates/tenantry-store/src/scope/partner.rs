//! The MSP-scoped doors to partner mode: partner connections (owner keys change them),
//! their customers and badges, consent links, syncs and verifications (technicians with an
//! unlimited key), and connecting consented customers as organizations (admins).

use chrono::{DateTime, Utc};
use tenantry_domain::{AppCredential, DisplayName};
use uuid::Uuid;

use super::MspScope;
use crate::error::StoreError;
use crate::organizations::{self, PartnerBinding, PartnerCustomer};
use crate::partner::{
    NewPartnerConnection, PartnerConnectionRecord, connections, consent,
    customers::{self, CustomerRecord},
};

impl MspScope<'_> {
    pub fn may_change_partner_connections(&self) -> Result<(), StoreError> {
        Ok(self.principal.grant().may_change_partner_connections()?)
    }

    pub fn may_work_with_partner_connections(&self) -> Result<(), StoreError> {
        Ok(self.principal.grant().may_work_with_partner_connections()?)
    }

    pub async fn create_partner_connection(
        &self,
        new: &NewPartnerConnection,
    ) -> Result<PartnerConnectionRecord, StoreError> {
        self.may_change_partner_connections()?;
        self.still_active().await?;
        connections::insert(
            self.pool,
            self.keyring()?,
            self.principal.msp_id(),
            new,
            self.actor(None, None).audit(),
        )
        .await
    }

    pub async fn partner_connections(&self) -> Result<Vec<PartnerConnectionRecord>, StoreError> {
        self.may_work_with_partner_connections()?;
        connections::list(self.pool, self.principal.msp_id()).await
    }

    pub async fn partner_connection(
        &self,
        id: Uuid,
    ) -> Result<PartnerConnectionRecord, StoreError> {
        self.may_work_with_partner_connections()?;
        connections::find(self.pool, self.principal.msp_id(), id).await
    }

    /// The public certificate (DER) of a connection's certificate credential.
    pub async fn partner_certificate(&self, id: Uuid) -> Result<Vec<u8>, StoreError> {
        self.may_work_with_partner_connections()?;
        connections::certificate_der(self.pool, self.principal.msp_id(), id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn replace_partner_credential(
        &self,
        id: Uuid,
        credential: &AppCredential,
        generated: Option<Uuid>,
        secret_expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.may_change_partner_connections()?;
        self.still_active().await?;
        connections::replace_credential(
            self.pool,
            self.keyring()?,
            self.principal.msp_id(),
            id,
            connections::Replacement {
                credential,
                generated,
                secret_expires_at,
            },
            self.actor(None, None).audit(),
        )
        .await
    }

    /// Deletes the connection (see [`connections::delete`]); returns the organizations
    /// left without a credential.
    pub async fn delete_partner_connection(
        &self,
        id: Uuid,
        force: bool,
    ) -> Result<Vec<Uuid>, StoreError> {
        self.may_change_partner_connections()?;
        self.still_active().await?;
        connections::delete(
            self.pool,
            self.principal.msp_id(),
            id,
            force,
            self.actor(None, None).audit(),
        )
        .await
    }

    /// Queues a sync now; returns the job (the waiting one if one is queued already).
    pub async fn sync_partner_connection(
        &self,
        id: Uuid,
    ) -> Result<crate::queue::Enqueued, StoreError> {
        self.partner_connection(id).await?;
        let mut conn = self.pool.acquire().await?;
        connections::queue_sync(&mut conn, self.principal.msp_id(), id).await
    }

    pub async fn partner_customers(
        &self,
        id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<CustomerRecord>, StoreError> {
        self.partner_connection(id).await?;
        customers::page(self.pool, self.principal.msp_id(), id, after, limit).await
    }

    pub async fn partner_customer(
        &self,
        id: Uuid,
        tenant: Uuid,
    ) -> Result<CustomerRecord, StoreError> {
        self.may_work_with_partner_connections()?;
        customers::find(self.pool, self.principal.msp_id(), id, tenant).await
    }

    /// A new single-use consent `state` for one customer, valid for an hour.
    pub async fn issue_consent_state(
        &self,
        id: Uuid,
        tenant: Uuid,
    ) -> Result<(String, DateTime<Utc>), StoreError> {
        self.may_work_with_partner_connections()?;
        consent::issue(self.pool, self.principal.msp_id(), id, tenant).await
    }

    /// Queues a verification of one customer now.
    pub async fn verify_partner_customer(&self, id: Uuid, tenant: Uuid) -> Result<(), StoreError> {
        self.may_start_work()?;
        self.partner_customer(id, tenant).await?;
        customers::queue_verification(
            self.pool,
            self.principal.msp_id(),
            id,
            tenant,
            chrono::Duration::zero(),
        )
        .await
    }

    /// Connects a consented customer as an organization in partner mode (admin or owner).
    pub async fn connect_partner_customer(
        &self,
        connection: &PartnerConnectionRecord,
        customer: &CustomerRecord,
        name: &DisplayName,
        status: &str,
    ) -> Result<PartnerBinding, StoreError> {
        self.may_manage_organizations()?;
        self.still_active().await?;
        organizations::bind_partner_customer(
            self.pool,
            self.keyring()?,
            self.principal.msp_id(),
            PartnerCustomer {
                connection: connection.partner_connection_id,
                client_id: connection.client_id,
                credential_type: &connection.credential_type,
                certificate_thumbprint: connection.certificate_thumbprint.as_deref(),
                secret_expires_at: connection.secret_expires_at,
                tenant_id: customer.tenant_id,
                name,
                status,
                report: customer.verification.as_ref(),
            },
            self.actor(None, None).audit(),
        )
        .await
    }
}
