//! The MSP-scoped doors to actions and policies. Every method checks the
//! caller's role and the organization's visibility before it touches a row.

use secrecy::SecretString;
use tenantry_domain::actions::ActionKind;
use tenantry_domain::policy::Policy;
use tenantry_domain::{ActionId, OrganizationId, Role};
use uuid::Uuid;

use super::MspScope;
use crate::actions::{
    self, ActionFilter, ActionRecord, Actor, Created, NewAction, Refusal, StepRecord, Verdict,
};
use crate::error::StoreError;
use crate::policies;

impl MspScope<'_> {
    /// The caller as an actor: an employee (through a gateway key) or the key's holder.
    pub fn actor(&self, employee: Option<Uuid>, name: Option<String>) -> Actor {
        Actor {
            api_key_id: self.principal.api_key_id().as_uuid(),
            role: self.principal.role(),
            employee,
            name,
            operator: self.principal.operator().cloned(),
            webhook_event: None,
        }
    }

    /// The policy in force, and whether it is the default.
    pub async fn action_policy(
        &self,
        organization: OrganizationId,
        kind: ActionKind,
    ) -> Result<(Policy, bool), StoreError> {
        self.ensure_organization(organization).await?;
        policies::get(self.pool, organization, kind).await
    }

    /// Whether the caller may change policies (owners only).
    pub fn may_set_policies(&self) -> Result<(), StoreError> {
        Ok(self.principal.grant().may_set_policies()?)
    }

    /// The approver keys and groups of `approvers` that could never decide a request in
    /// `organization`, as (keys, groups) (see [`policies::unusable_approvers`]).
    pub async fn unusable_approvers(
        &self,
        organization: OrganizationId,
        approvers: &tenantry_domain::policy::Approvers,
    ) -> Result<(Vec<Uuid>, Vec<Uuid>), StoreError> {
        self.ensure_organization(organization).await?;
        policies::unusable_approvers(self.pool, self.principal.msp_id(), organization, approvers)
            .await
    }

    pub async fn set_action_policy(
        &self,
        organization: OrganizationId,
        kind: ActionKind,
        policy: &Policy,
    ) -> Result<(), StoreError> {
        self.principal.grant().may_set_policies()?;
        self.still_active().await?;
        self.ensure_organization(organization).await?;
        policies::put(
            self.pool,
            self.principal.msp_id(),
            organization,
            kind,
            policy,
            &self.actor(None, None),
        )
        .await
    }

    /// Whether the caller may request actions at all (checked before calling Microsoft).
    pub fn may_request_actions(&self) -> Result<(), StoreError> {
        Ok(self.principal.grant().may_request_actions()?)
    }

    pub async fn request_action(
        &self,
        new: NewAction,
        actor: &Actor,
    ) -> Result<Created, StoreError> {
        self.may_request_actions()?;
        self.still_active().await?;
        self.ensure_organization(new.organization).await?;
        actions::create(self.pool, self.principal.msp_id(), actor, new).await
    }

    /// The action an earlier request with this idempotency key made (from this key), or
    /// `IDEMPOTENCY_KEY_REUSED` when that request had another body.
    pub async fn replayed_action(
        &self,
        idempotency_key: &str,
        request_hash: &[u8],
    ) -> Result<Option<ActionRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        match actions::by_idempotency_key(
            &mut conn,
            self.principal.msp_id(),
            self.principal.api_key_id().as_uuid(),
            idempotency_key,
        )
        .await?
        {
            None => Ok(None),
            Some(found) => match actions::replay_or_refuse(found, request_hash)? {
                Created::New(record) | Created::Replayed(record) => Ok(Some(record)),
            },
        }
    }

    /// Records a request that policy or capability refused.
    pub async fn record_action_refusal(
        &self,
        actor: &Actor,
        refusal: Refusal,
    ) -> Result<(), StoreError> {
        self.ensure_organization(refusal.organization).await?;
        actions::record_refusal(self.pool, self.principal.msp_id(), actor, refusal).await
    }

    /// A gateway sees only the requests it filed.
    fn own_requests_only(&self) -> Option<Uuid> {
        (self.principal.role() == Role::SelfServiceGateway)
            .then(|| self.principal.api_key_id().as_uuid())
    }

    pub async fn action(
        &self,
        id: ActionId,
    ) -> Result<(ActionRecord, Vec<StepRecord>), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let visible = self.visible_organizations();
        let record =
            actions::find_in(&mut conn, self.principal.msp_id(), visible.as_deref(), id).await?;
        if self
            .own_requests_only()
            .is_some_and(|key| key != record.requested_by_key)
        {
            return Err(StoreError::NotFound);
        }
        drop(conn);
        let steps = actions::steps(self.pool, id).await?;
        Ok((record, steps))
    }

    pub async fn actions(
        &self,
        mut filter: ActionFilter,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<ActionRecord>, StoreError> {
        filter.requested_by_key = self.own_requests_only();
        // An organization the key cannot see answers as an unknown one: `NotFound`.
        if let Some(organization) = filter.organization {
            self.ensure_organization(OrganizationId::from_uuid(organization))
                .await?;
        }
        let visible = self.visible_organizations();
        actions::list(
            self.pool,
            self.principal.msp_id(),
            visible.as_deref(),
            &filter,
            after,
            limit,
        )
        .await
    }

    pub async fn decide_action(
        &self,
        id: ActionId,
        decider: &Actor,
        verdict: Verdict,
    ) -> Result<ActionRecord, StoreError> {
        self.still_active().await?;
        let visible = self.visible_organizations();
        actions::decide(
            self.pool,
            self.principal.msp_id(),
            visible.as_deref(),
            id,
            decider,
            verdict,
        )
        .await
    }

    pub async fn reveal_password(
        &self,
        id: ActionId,
        caller: &Actor,
    ) -> Result<SecretString, StoreError> {
        self.still_active().await?;
        let visible = self.visible_organizations();
        actions::reveal(
            self.pool,
            self.keyring()?,
            self.principal.msp_id(),
            visible.as_deref(),
            id,
            caller,
        )
        .await
    }
}
