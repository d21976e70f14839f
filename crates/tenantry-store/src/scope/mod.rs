//! [`MspScope`]: the only door to MSP-owned data for request handlers. Every query it runs
//! binds the caller's MSP id, and every method checks the caller's role, so a handler
//! cannot forget either.

mod actions;
mod api_keys;
mod audit;
mod discovery;
mod inventory;
mod jobs;
mod organizations;
mod partner;
mod webhooks;

pub use inventory::{Found, Memberships};

use sqlx::PgPool;

use crate::error::StoreError;
use crate::key_cache::KeyCache;
use crate::key_hash::ApiKeyPepper;
use crate::principal::Principal;
use crate::sealing::Keyring;

pub struct MspScope<'a> {
    pool: &'a PgPool,
    pepper: &'a ApiKeyPepper,
    keyring: Option<&'a Keyring>,
    key_cache: &'a KeyCache,
    principal: &'a Principal,
}

impl<'a> MspScope<'a> {
    pub(crate) fn new(
        pool: &'a PgPool,
        pepper: &'a ApiKeyPepper,
        keyring: Option<&'a Keyring>,
        key_cache: &'a KeyCache,
        principal: &'a Principal,
    ) -> Self {
        Self {
            pool,
            pepper,
            keyring,
            key_cache,
            principal,
        }
    }

    fn keyring(&self) -> Result<&'a Keyring, StoreError> {
        self.keyring.ok_or(StoreError::NoMasterKey)
    }

    /// Checks the caller's key is still active, for changes made outside one transaction.
    async fn still_active(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        self.caller_still_active(&mut conn).await
    }

    fn visible_organizations(&self) -> Option<Vec<uuid::Uuid>> {
        self.principal
            .organizations()
            .as_list()
            .map(|ids| ids.into_iter().map(|id| id.as_uuid()).collect())
    }

    pub fn principal(&self) -> &Principal {
        self.principal
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
