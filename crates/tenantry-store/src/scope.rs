//! [`MspScope`]: the only door to MSP-owned data for request handlers. Every query it runs
//! binds the caller's MSP id, and every method checks the caller's role, so a handler
//! cannot forget either.

mod actions;
mod webhooks;

pub use actions::Found;

use sqlx::PgPool;
use tenantry_domain::{ApiKeyRecordId, Role};

use secrecy::SecretString;
use tenantry_domain::{DisplayName, OrganizationId};

use crate::api_keys::{self, ApiKeyRecord, IssuedKey, NewApiKey, Page};
use crate::audit::{self, NewEvent};
use crate::discovery::{self, Mode, RunRecord, Trigger};
use crate::error::StoreError;
use crate::inventory::{self, GroupFilter, UserFilter};
use crate::key_hash::ApiKeyPepper;
use crate::operator::{self, MspRecord};
use crate::operators::{self, KeyHolder};
use crate::organizations::{self, NewOrganization, OrganizationRecord};
use crate::principal::Principal;
use crate::queue::{self, JobFilter, JobRecord};
use crate::sealing::Keyring;
use tenantry_domain::ErrorCode;
use tenantry_domain::{DiscoveryRunId, JobId};

pub struct MspScope<'a> {
    pool: &'a PgPool,
    pepper: &'a ApiKeyPepper,
    keyring: Option<&'a Keyring>,
    principal: &'a Principal,
}

impl<'a> MspScope<'a> {
    pub(crate) fn new(
        pool: &'a PgPool,
        pepper: &'a ApiKeyPepper,
        keyring: Option<&'a Keyring>,
        principal: &'a Principal,
    ) -> Self {
        Self {
            pool,
            pepper,
            keyring,
            principal,
        }
    }

    fn keyring(&self) -> Result<&'a Keyring, StoreError> {
        self.keyring.ok_or(StoreError::NoMasterKey)
    }

    /// Adding, changing and deleting organizations needs an unlimited admin or owner key.
    /// Public so handlers can refuse before calling Microsoft on the caller's behalf.
    pub fn may_manage_organizations(&self) -> Result<(), StoreError> {
        Ok(self.principal.grant().may_manage_keys()?)
    }

    /// Checks the caller's key is still active, for changes made outside one transaction.
    async fn still_active(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        self.caller_still_active(&mut conn).await
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

    /// Whether a tenant is bound anywhere in the service (never says where).
    pub async fn tenant_bound(&self, tenant_id: uuid::Uuid) -> Result<bool, StoreError> {
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

    /// The organization's client secret, for re-validation and Graph calls.
    pub async fn client_secret(&self, id: OrganizationId) -> Result<SecretString, StoreError> {
        self.organization(id).await?;
        organizations::client_secret(self.pool, self.keyring()?, id).await
    }

    /// The stored credential's id and secret (the id changes with every replacement).
    pub async fn credential(
        &self,
        id: OrganizationId,
    ) -> Result<(uuid::Uuid, SecretString), StoreError> {
        self.organization(id).await?;
        organizations::credential(self.pool, self.keyring()?, id).await
    }

    /// Stores a new, validated secret together with its report.
    pub async fn replace_credentials(
        &self,
        id: OrganizationId,
        client_id: uuid::Uuid,
        secret: &SecretString,
        status: tenantry_domain::OrganizationStatus,
        report: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.may_manage_organizations()?;
        self.still_active().await?;
        self.organization(id).await?;
        organizations::replace_secret(
            self.pool,
            self.keyring()?,
            self.principal.msp_id(),
            id,
            client_id,
            secret,
            organizations::Validated { status, report },
        )
        .await
    }

    /// Saves a report of credential `credential`; ignored when the secret was replaced
    /// since (the newer secret's report stands).
    pub async fn save_validation(
        &self,
        id: OrganizationId,
        credential: uuid::Uuid,
        status: tenantry_domain::OrganizationStatus,
        report: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        self.organization(id).await?;
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
        self.organization(id).await?;
        crate::revalidation::schedule(self.pool, self.principal.msp_id(), id).await
    }

    pub async fn rename_organization(
        &self,
        id: OrganizationId,
        name: &DisplayName,
    ) -> Result<(), StoreError> {
        self.may_manage_organizations()?;
        self.still_active().await?;
        self.organization(id).await?;
        organizations::rename(self.pool, self.principal.msp_id(), id, name).await
    }

    pub async fn delete_organization(&self, id: OrganizationId) -> Result<(), StoreError> {
        self.may_manage_organizations()?;
        self.still_active().await?;
        self.organization(id).await?;
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
        self.organization(id).await?;
        organizations::set_scan_schedule(
            self.pool,
            self.principal.msp_id(),
            id,
            schedule,
            next_scan_at,
        )
        .await
    }

    /// Queues a discovery run now, or returns the one already queued or running (with
    /// `false`).
    pub async fn queue_discovery(
        &self,
        id: OrganizationId,
        trigger: Trigger,
        mode: Mode,
    ) -> Result<(RunRecord, bool), StoreError> {
        self.principal.grant().may_start_work()?;
        self.organization(id).await?;
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
        self.organization(id).await?;
        discovery::list_runs(self.pool, self.principal.msp_id(), id, page).await
    }

    pub async fn discovery_run(
        &self,
        id: OrganizationId,
        run: DiscoveryRunId,
    ) -> Result<RunRecord, StoreError> {
        self.organization(id).await?;
        discovery::find_run(self.pool, self.principal.msp_id(), id, run).await
    }

    pub async fn inventory_users(
        &self,
        id: OrganizationId,
        filter: &UserFilter,
        page: Page,
    ) -> Result<Vec<inventory::InventoryUser>, StoreError> {
        self.organization(id).await?;
        inventory::users(self.pool, id.as_uuid(), filter, page).await
    }

    pub async fn inventory_user(
        &self,
        id: OrganizationId,
        user: uuid::Uuid,
    ) -> Result<inventory::UserDetail, StoreError> {
        self.organization(id).await?;
        inventory::user(self.pool, id.as_uuid(), user).await
    }

    pub async fn inventory_groups(
        &self,
        id: OrganizationId,
        filter: &GroupFilter,
        page: Page,
    ) -> Result<Vec<inventory::InventoryGroup>, StoreError> {
        self.organization(id).await?;
        inventory::groups(self.pool, id.as_uuid(), filter, page).await
    }

    pub async fn inventory_group_members(
        &self,
        id: OrganizationId,
        group: uuid::Uuid,
        page: Page,
    ) -> Result<Vec<inventory::Member>, StoreError> {
        self.organization(id).await?;
        inventory::group_members(self.pool, id.as_uuid(), group, page).await
    }

    pub async fn inventory_roles(
        &self,
        id: OrganizationId,
    ) -> Result<Vec<inventory::RoleWithMembers>, StoreError> {
        self.organization(id).await?;
        inventory::roles(self.pool, id.as_uuid()).await
    }

    pub async fn approver_proposals(
        &self,
        id: OrganizationId,
    ) -> Result<Vec<inventory::ApproverProposal>, StoreError> {
        self.organization(id).await?;
        inventory::approver_proposals(self.pool, id.as_uuid()).await
    }

    /// Rows of a listed inventory section (`licenses`, `service_principals`, `devices`).
    pub async fn inventory_objects(
        &self,
        id: OrganizationId,
        section: &str,
        page: Page,
    ) -> Result<Vec<inventory::InventoryObject>, StoreError> {
        self.organization(id).await?;
        let after = page.after.map(|a| a.to_string());
        inventory::objects(
            self.pool,
            id.as_uuid(),
            section,
            after.as_deref(),
            page.limit,
        )
        .await
    }

    fn visible_organizations(&self) -> Option<Vec<uuid::Uuid>> {
        self.principal
            .organizations()
            .as_list()
            .map(|ids| ids.into_iter().map(|id| id.as_uuid()).collect())
    }

    /// The jobs the key may see. An `organization` filter that is not one of the key's
    /// organizations (another MSP's, outside the key's limit, or unknown) is `NotFound`,
    /// as on every list that takes one.
    pub async fn jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<JobRecord>, StoreError> {
        if let Some(organization) = filter.organization {
            self.organization(organization).await?;
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

    pub fn principal(&self) -> &Principal {
        self.principal
    }

    /// The caller's own MSP.
    pub async fn msp(&self) -> Result<MspRecord, StoreError> {
        operator::find_msp(self.pool, self.principal.msp_id()).await
    }

    /// The key the caller authenticated with.
    pub async fn own_key(&self) -> Result<ApiKeyRecord, StoreError> {
        api_keys::find(
            self.pool,
            self.principal.msp_id(),
            self.principal.api_key_id(),
        )
        .await
    }

    /// One key of this MSP (owner or admin).
    pub async fn api_key(&self, id: ApiKeyRecordId) -> Result<ApiKeyRecord, StoreError> {
        self.principal.grant().may_manage_keys()?;
        api_keys::find(self.pool, self.principal.msp_id(), id).await
    }

    pub async fn list_api_keys(&self, page: Page) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.principal.grant().may_manage_keys()?;
        api_keys::list(self.pool, self.principal.msp_id(), page).await
    }

    /// Mints a key. It belongs to the caller's own operator unless an owner names a new
    /// one (a person joining the MSP); nobody mints a key for another existing person, so
    /// no key can be made to approve as someone else.
    pub async fn create_api_key(
        &self,
        new: NewApiKey,
    ) -> Result<(ApiKeyRecord, IssuedKey), StoreError> {
        self.principal.grant().may_manage_key_with_role(new.role)?;
        let own = self
            .principal
            .operator()
            .ok_or(StoreError::Refused(
                ErrorCode::Forbidden,
                "only API keys held by an operator mint keys".into(),
            ))?
            .clone();
        match &new.operator {
            KeyHolder::Minter => {}
            KeyHolder::Existing(id) if *id == own.id => {}
            KeyHolder::Existing(_) => {
                return Err(StoreError::Refused(
                    ErrorCode::Forbidden,
                    "a key can be minted only for its minter's own operator, or by an owner for a new operator"
                        .into(),
                ));
            }
            KeyHolder::New(_) if self.principal.role() != Role::Owner => {
                return Err(StoreError::Refused(
                    ErrorCode::Forbidden,
                    "only owners add operators; keys you mint are your own".into(),
                ));
            }
            KeyHolder::New(_) => {}
        }
        let mut tx = self.pool.begin().await?;
        self.caller_still_active(&mut tx).await?;
        let msp = self.principal.msp_id();
        let holder = match &new.operator {
            KeyHolder::New(name) => Some(
                operators::insert(&mut tx, msp, name, Some(self.principal.api_key_id())).await?,
            ),
            KeyHolder::Minter | KeyHolder::Existing(_) => None,
        };
        let operator = holder.as_ref().map_or(own.id, |h| h.id);
        let (record, issued) = api_keys::insert(
            &mut tx,
            self.pepper,
            msp,
            &new,
            operator,
            Some(self.principal.api_key_id()),
        )
        .await?;
        if let Some(holder) = holder {
            // A new person can approve the owner's requests: the log says who made them.
            audit::append(
                &mut tx,
                msp,
                NewEvent {
                    kind: "operator.created",
                    actor: self.actor(None, None).audit(),
                    parameters: serde_json::json!({
                        "operator": holder,
                        "api_key_id": record.id.as_uuid(),
                        "key_id": record.key_id.as_str(),
                        "role": record.role,
                    }),
                    ..NewEvent::default()
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok((record, issued))
    }

    /// Revokes a key of this MSP. Revoking an already revoked key changes nothing. The last
    /// active owner key cannot be revoked: the MSP would be locked out of its own account.
    pub async fn revoke_api_key(&self, id: ApiKeyRecordId) -> Result<ApiKeyRecord, StoreError> {
        let grant = self.principal.grant();
        grant.may_manage_keys()?;
        let msp = self.principal.msp_id().as_uuid();
        let mut tx = self.pool.begin().await?;
        // Lock the MSP's active owner keys first, in id order, before any other key row: two
        // concurrent revocations cannot each believe the other owner key survives, and they
        // queue here instead of deadlocking on each other's caller rows (each used to hold a
        // share lock on its own key while waiting for the other's). Every MSP keeps an
        // active owner key, so every revocation of the MSP passes through this lock.
        let active_owners: Vec<uuid::Uuid> = sqlx::query_scalar(
            "select api_key_id from api_key
             where msp_id = $1 and role = 'owner' and revoked_at is null and not limited
             order by api_key_id for update",
        )
        .bind(msp)
        .fetch_all(&mut *tx)
        .await?;
        // After the lock: a revocation that waited for another sees its outcome, so a key
        // the other one just revoked is refused here as the caller.
        self.caller_still_active(&mut tx).await?;
        let target: Option<(String, bool)> = sqlx::query_as(
            "select role, revoked_at is not null from api_key
             where msp_id = $1 and api_key_id = $2 for update",
        )
        .bind(msp)
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let (role, already_revoked) = target.ok_or(StoreError::NotFound)?;
        let role: Role = role
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("api_key.role: {e}")))?;
        grant.may_manage_key_with_role(role)?;
        if !already_revoked {
            // Only unlimited owner keys can manage keys, so only they count as the survivor.
            if role == Role::Owner && active_owners.iter().all(|owner| *owner == id.as_uuid()) {
                return Err(StoreError::LastOwnerKey);
            }
            sqlx::query(
                "update api_key set revoked_at = now() where msp_id = $1 and api_key_id = $2",
            )
            .bind(msp)
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        api_keys::find(self.pool, self.principal.msp_id(), id).await
    }

    /// Key management re-checks, inside its transaction, that the caller's own key is
    /// still active: a request authenticated just before its key was revoked must not mint
    /// or revoke keys afterwards.
    async fn caller_still_active(&self, tx: &mut sqlx::PgConnection) -> Result<(), StoreError> {
        if self.principal.is_endpoint() {
            let active: Option<i32> = sqlx::query_scalar(
                "select 1 from webhook_endpoint where msp_id = $1 and endpoint_id = $2 and revoked_at is null for share",
            )
            .bind(self.principal.msp_id().as_uuid())
            .bind(self.principal.api_key_id().as_uuid())
            .fetch_optional(tx)
            .await?;
            return active.map(|_| ()).ok_or(StoreError::CallerRevoked);
        }
        let active: Option<i32> = sqlx::query_scalar(
            "select 1 from api_key where msp_id = $1 and api_key_id = $2 and revoked_at is null for share",
        )
        .bind(self.principal.msp_id().as_uuid())
        .bind(self.principal.api_key_id().as_uuid())
        .fetch_optional(tx)
        .await?;
        active.map(|_| ()).ok_or(StoreError::CallerRevoked)
    }
}
