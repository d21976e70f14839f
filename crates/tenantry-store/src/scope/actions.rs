//! The MSP-scoped doors to actions, policies and the audit log. Every method checks the
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
use crate::audit::{self, AuditEvent, AuditFilter, Verification};
use crate::error::StoreError;
use crate::inventory::CURRENT;
use crate::policies;

/// A user or group found in the inventory.
#[derive(Clone, Debug)]
pub struct Found {
    pub id: Uuid,
    pub name: Option<String>,
    pub user_principal_name: Option<String>,
}

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
        self.organization(organization).await?;
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
        self.organization(organization).await?;
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
        self.organization(organization).await?;
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
        self.organization(new.organization).await?;
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
        self.organization(refusal.organization).await?;
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
            self.organization(OrganizationId::from_uuid(organization))
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

    pub async fn audit_events(
        &self,
        filter: &AuditFilter,
        cursor: Option<i64>,
        limit: i64,
        descending: bool,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        self.principal.grant().may_read_audit()?;
        if let Some(organization) = filter.organization {
            self.organization(OrganizationId::from_uuid(organization))
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

    /// A user of the inventory by object id, user principal name or mail.
    pub async fn inventory_user_by_key(
        &self,
        organization: OrganizationId,
        key: &str,
    ) -> Result<Option<Found>, StoreError> {
        self.organization(organization).await?;
        let id = key.parse::<Uuid>().ok();
        let sql = format!(
            "select user_id, display_name, user_principal_name from inventory_user
             where organization_id = $1 and generation = {CURRENT}
               and (user_id = $2 or lower(user_principal_name) = lower($3) or lower(mail) = lower($3))
             order by (user_id = $2) desc nulls last, (lower(user_principal_name) = lower($3)) desc
             limit 1"
        );
        let row: Option<(Uuid, Option<String>, Option<String>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(organization.as_uuid())
                .bind(id)
                .bind(key)
                .fetch_optional(self.pool)
                .await?;
        Ok(row.map(|(id, name, upn)| Found {
            id,
            name,
            user_principal_name: upn,
        }))
    }

    /// Groups of the inventory by object id, mail or display name (case-insensitive);
    /// several when a name is ambiguous.
    pub async fn inventory_groups_by_key(
        &self,
        organization: OrganizationId,
        key: &str,
    ) -> Result<Vec<Found>, StoreError> {
        self.organization(organization).await?;
        let id = key.parse::<Uuid>().ok();
        let sql = format!(
            "select group_id, display_name from inventory_group
             where organization_id = $1 and generation = {CURRENT}
               and (group_id = $2 or lower(mail) = lower($3) or lower(display_name) = lower($3))
             order by group_id limit 5"
        );
        let rows: Vec<(Uuid, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(organization.as_uuid())
            .bind(id)
            .bind(key)
            .fetch_all(self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name)| Found {
                id,
                name,
                user_principal_name: None,
            })
            .collect())
    }
}
