//! The MSP-scoped doors to webhook endpoints and their deliveries. Managing endpoints is
//! MSP-wide key management in all but name: owners and admins without an organization
//! limit.

use secrecy::SecretString;
use tenantry_domain::OrganizationId;
use tenantry_domain::webhooks::Rule;
use uuid::Uuid;

use super::MspScope;
use crate::actions::Actor;
use crate::error::StoreError;
use crate::webhooks::{self, EndpointRecord, EventRecord};

impl MspScope<'_> {
    /// The actor a webhook endpoint's playbook requests actions as.
    pub fn webhook_actor(&self, event: Uuid, name: &str) -> Actor {
        Actor {
            webhook_event: Some(event),
            ..self.actor(None, Some(format!("webhook endpoint {name}")))
        }
    }

    pub async fn create_webhook_endpoint(
        &self,
        name: &str,
        organization: Option<Uuid>,
        rules: &[Rule],
    ) -> Result<(EndpointRecord, SecretString), StoreError> {
        self.principal.grant().may_manage_keys()?;
        // Skipping the approval policy is a policy decision: owners only.
        if rules
            .iter()
            .any(|r| r.approval == tenantry_domain::webhooks::RuleApproval::None)
        {
            self.principal.grant().may_set_policies()?;
        }
        self.still_active().await?;
        if let Some(organization) = organization {
            self.ensure_organization(OrganizationId::from_uuid(organization))
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => {
                        StoreError::UnknownOrganization(OrganizationId::from_uuid(organization))
                    }
                    other => other,
                })?;
        }
        webhooks::create_endpoint(
            self.pool,
            self.keyring()?,
            self.principal.msp_id(),
            self.principal.api_key_id().as_uuid(),
            name,
            organization,
            rules,
        )
        .await
    }

    pub async fn webhook_endpoints(
        &self,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<EndpointRecord>, StoreError> {
        self.principal.grant().may_read_audit()?;
        let visible = self.visible_organizations();
        webhooks::endpoints(
            self.pool,
            self.principal.msp_id(),
            visible.as_deref(),
            after,
            limit,
        )
        .await
    }

    pub async fn webhook_endpoint(&self, id: Uuid) -> Result<EndpointRecord, StoreError> {
        self.principal.grant().may_read_audit()?;
        let visible = self.visible_organizations();
        webhooks::endpoint(self.pool, self.principal.msp_id(), visible.as_deref(), id).await
    }

    pub async fn revoke_webhook_endpoint(&self, id: Uuid) -> Result<EndpointRecord, StoreError> {
        self.webhook_endpoint(id).await?;
        self.principal.grant().may_manage_keys()?;
        self.still_active().await?;
        webhooks::revoke_endpoint(self.pool, self.principal.msp_id(), id).await?;
        self.webhook_endpoint(id).await
    }

    pub async fn rotate_webhook_secret(
        &self,
        id: Uuid,
    ) -> Result<(EndpointRecord, SecretString), StoreError> {
        self.webhook_endpoint(id).await?;
        self.principal.grant().may_manage_keys()?;
        self.still_active().await?;
        webhooks::rotate_secret(self.pool, self.keyring()?, self.principal.msp_id(), id).await
    }

    pub async fn webhook_events(
        &self,
        endpoint: Option<Uuid>,
        state: Option<&str>,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        self.principal.grant().may_read_audit()?;
        let visible = self.visible_organizations();
        webhooks::events(
            self.pool,
            self.principal.msp_id(),
            visible.as_deref(),
            endpoint,
            state,
            after,
            limit,
        )
        .await
    }
}

impl MspScope<'_> {
    /// Turns Graph change notifications on or off; the subscriptions job does the rest.
    pub async fn set_change_notifications(
        &self,
        organization: OrganizationId,
        enabled: bool,
    ) -> Result<(), StoreError> {
        self.may_manage_organizations()?;
        self.still_active().await?;
        self.ensure_organization(organization).await?;
        crate::change_notifications::set_enabled(
            self.pool,
            self.keyring()?,
            self.principal.msp_id(),
            organization,
            enabled,
        )
        .await
    }

    /// Whether change notifications are on, the subscriptions Graph holds, and how many
    /// notifications arrived in the last day.
    pub async fn change_notifications(
        &self,
        organization: OrganizationId,
    ) -> Result<
        (
            bool,
            Vec<crate::change_notifications::SubscriptionRecord>,
            i64,
        ),
        StoreError,
    > {
        self.ensure_organization(organization).await?;
        let (enabled, received): (bool, i64) = sqlx::query_as(
            "select o.change_notifications,
                    (select count(*) from graph_notification n where n.organization_id = o.organization_id
                       and n.received_at > now() - interval '1 day')
             from organization o where o.organization_id = $1",
        )
        .bind(organization.as_uuid())
        .fetch_one(self.pool)
        .await?;
        let subscriptions =
            crate::change_notifications::subscriptions(self.pool, organization).await?;
        Ok((enabled, subscriptions, received))
    }
}
