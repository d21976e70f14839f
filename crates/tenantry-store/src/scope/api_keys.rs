//! The MSP-scoped doors to API keys: the caller's own key, listing, minting (with a new
//! operator when an owner names one) and revoking.

use tenantry_domain::{ApiKeyRecordId, ErrorCode, KeyId, Role};
use uuid::Uuid;

use super::MspScope;
use crate::api_keys::{self, ApiKeyRecord, IssuedKey, NewApiKey, Page};
use crate::audit::{self, NewEvent};
use crate::error::StoreError;
use crate::key_changes;
use crate::operator::MspRecord;
use crate::operators::{self, KeyHolder};

impl MspScope<'_> {
    /// The caller's MSP and own key: from the verified key held in memory when it is
    /// (no round trip), else read together in one statement.
    pub async fn me(&self) -> Result<(MspRecord, ApiKeyRecord), StoreError> {
        if let Some(shown) = self.key_cache.shown(self.principal.key_id()) {
            return Ok(shown);
        }
        api_keys::find_with_msp(
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
        let active_owners: Vec<Uuid> = sqlx::query_scalar(
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
        let target: Option<(String, String, bool)> = sqlx::query_as(
            "select role, key_id, revoked_at is not null from api_key
             where msp_id = $1 and api_key_id = $2 for update",
        )
        .bind(msp)
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let (role, key_id, already_revoked) = target.ok_or(StoreError::NotFound)?;
        let key_id = KeyId::parse(&key_id)
            .ok_or_else(|| StoreError::Corrupt(format!("api_key.key_id of {id}")))?;
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
            key_changes::publish(&mut tx, &key_id).await?;
        }
        tx.commit().await?;
        // Every listening process forgets the key when the notice arrives; this one
        // forgets it now, so its very next request is refused without waiting for it.
        self.key_cache.forget(&key_id);
        api_keys::find(self.pool, self.principal.msp_id(), id).await
    }
}
