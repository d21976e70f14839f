//! PostgreSQL persistence for Tenantry.
//!
//! The one rule this crate exists to enforce: nothing MSP-owned can be read or written
//! without an [`MspScope`], and an `MspScope` can only be obtained from a [`Principal`],
//! which only [`Store::authenticate`] can produce. Operator tasks that legitimately span
//! MSPs (the `admin` CLI) go through [`Store::operator`], which the HTTP layer never calls.

pub mod action_runs;
pub mod actions;
mod api_keys;
pub mod audit;
pub mod change_notifications;
mod credentials;
pub mod discovery;
mod endpoint_cache;
mod error;
mod generated_certificates;
pub mod ids;
pub mod inventory;
pub mod jobs;
mod key_cache;
mod key_changes;
mod key_hash;
mod operator;
pub mod operators;
mod organizations;
pub mod partner;
mod policies;
pub mod pool;
mod principal;
pub mod queue;
mod readiness;
pub mod revalidation;
mod scope;
pub mod sealing;
mod token_refusals;
pub mod webhooks;

use sqlx::PgPool;
use sqlx::migrate::Migrator;

pub use api_keys::{ApiKeyRecord, IssuedKey, NewApiKey, Page};
pub use discovery::{DiscoveryStore, Mode as DiscoveryMode, Trigger as DiscoveryTrigger};
pub use error::{AuthError, StoreError};
pub use generated_certificates::GeneratedCertificate;
pub use key_cache::KeyLookups;
pub use key_changes::ApiKeyChanges;
pub use key_hash::{ApiKeyPepper, InvalidPepper};
pub use operator::{MspRecord, Operator};
pub use operators::{KeyHolder, OperatorRecord};
pub use organizations::{NewOrganization, OrganizationRecord, PartnerBinding, StoredCredential};
pub use principal::Principal;
pub use queue::Queue;
pub use readiness::Readiness;
pub use scope::{Found, Memberships, MspScope};
pub use token_refusals::TokenRefusals;

/// The workspace's migrations (the top-level `migrations/` folder). sqlx's migrator takes
/// an advisory lock, so several processes may run it at once safely.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// Runs every pending migration.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// The handle the rest of the service holds: a connection pool and the API-key pepper.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    pepper: ApiKeyPepper,
    keyring: Option<std::sync::Arc<sealing::Keyring>>,
    key_cache: std::sync::Arc<key_cache::KeyCache>,
    endpoints: std::sync::Arc<endpoint_cache::EndpointCache>,
}

impl Store {
    pub fn new(pool: PgPool, pepper: ApiKeyPepper) -> Self {
        Self {
            pool,
            pepper,
            keyring: None,
            key_cache: Default::default(),
            endpoints: Default::default(),
        }
    }

    /// The master keys that seal organizations' data keys; without them, credentials can
    /// be neither stored nor read.
    pub fn with_keyring(mut self, keyring: sealing::Keyring) -> Self {
        self.keyring = Some(std::sync::Arc::new(keyring));
        self
    }

    /// Checks a presented API key and returns who is calling. Unknown ids, wrong secrets and
    /// revoked keys are distinguished for logs and metrics only; the API answers all of
    /// them with the same 401.
    pub async fn authenticate(&self, presented: &str) -> Result<Principal, AuthError> {
        api_keys::authenticate(&self.pool, &self.pepper, &self.key_cache, presented).await
    }

    /// Subscribes to API key changes: while the returned subscription lives (and is
    /// polled with [`ApiKeyChanges::apply_next`]), [`Store::authenticate`] answers from
    /// memory and writes `last_used_at` only through [`Store::flush_key_usage`].
    pub async fn api_key_changes(&self) -> Result<ApiKeyChanges, StoreError> {
        ApiKeyChanges::subscribe(&self.pool, self.key_cache.clone()).await
    }

    /// Whether authentication currently answers from memory (a key-change subscription
    /// is live).
    pub fn caches_keys(&self) -> bool {
        self.key_cache.is_live()
    }

    /// Where authentication found key rows so far (memory or database).
    pub fn key_lookups(&self) -> KeyLookups {
        self.key_cache.lookups()
    }

    /// Writes the keys' uses noted since the last flush (at most one per key and minute);
    /// returns how many rows changed. Uses that could not be written are kept for the next.
    pub async fn flush_key_usage(&self) -> Result<u64, StoreError> {
        let uses = self.key_cache.take_pending_uses();
        if uses.is_empty() {
            return Ok(0);
        }
        match api_keys::record_uses(&self.pool, &uses).await {
            Ok(written) => Ok(written),
            Err(e) => {
                self.key_cache.requeue_uses(uses);
                Err(e.into())
            }
        }
    }

    /// Everything the caller may touch, bound to the caller's MSP.
    pub fn scope<'a>(&'a self, principal: &'a Principal) -> MspScope<'a> {
        MspScope::new(
            &self.pool,
            &self.pepper,
            self.keyring.as_deref(),
            &self.key_cache,
            principal,
        )
    }

    /// Uses up a consent link's `state` and records the admin's answer (`declined`: the
    /// AADSTS description of a refusal). Not MSP-scoped: the callback is Microsoft's
    /// redirect of a browser, and the state alone says whose it is.
    pub async fn redeem_consent_state(
        &self,
        state: &str,
        declined: Option<&str>,
    ) -> Result<Result<partner::ConsentGrant, partner::consent::StateRefusal>, StoreError> {
        partner::consent::redeem(&self.pool, state, declined).await
    }

    /// Cross-MSP operator tasks (creating MSPs and their first keys). Not for request
    /// handlers.
    /// The connection pool (for the job engine's leader connection).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The job queue, for workers (not MSP-scoped).
    pub fn queue(&self) -> Queue {
        Queue::new(self.pool.clone())
    }

    /// Discovery runs, for workers (not MSP-scoped).
    pub fn discovery(&self) -> DiscoveryStore {
        DiscoveryStore::new(self.pool.clone(), self.keyring.clone())
    }

    /// Automatic re-validation, for workers (not MSP-scoped).
    pub fn revalidation(&self) -> revalidation::RevalidationStore {
        revalidation::RevalidationStore::new(self.pool.clone(), self.keyring.clone())
    }

    /// Action execution, for workers (not MSP-scoped).
    pub fn action_runs(&self) -> action_runs::ActionRunStore {
        action_runs::ActionRunStore::new(self.pool.clone(), self.keyring.clone())
    }

    /// Graph change notifications, for the receiver and workers (not MSP-scoped).
    pub fn change_notifications(&self) -> change_notifications::ChangeNotificationStore {
        change_notifications::ChangeNotificationStore::new(self.pool.clone(), self.keyring.clone())
    }

    /// Partner connections' syncs and customer verifications, for workers.
    pub fn partner(&self) -> partner::PartnerStore {
        partner::PartnerStore::new(self.pool.clone(), self.keyring.clone())
    }

    /// Where jobs note Entra's refusals of an organization's token.
    pub fn token_refusals(&self) -> TokenRefusals {
        TokenRefusals::new(self.pool.clone())
    }

    /// Webhook playbooks, for workers (not MSP-scoped).
    pub fn playbooks(&self) -> webhooks::PlaybookStore {
        webhooks::PlaybookStore::new(self.pool.clone())
    }

    /// The receiver's view of an active endpoint: its MSP, rules and secrets, from this
    /// process's cache when it holds them (see `endpoint_cache`: every change to an
    /// endpoint evicts it in every process through `LISTEN/NOTIFY`).
    pub async fn webhook_endpoint(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<std::sync::Arc<webhooks::EndpointSecrets>>, StoreError> {
        match self.endpoints.get(&self.pool, id) {
            Ok(cached) => Ok(Some(cached)),
            Err(ticket) => self.read_webhook_endpoint(id, ticket).await,
        }
    }

    /// The endpoint as the database has it now (and cached again): for a signature no
    /// cached secret verified, which may be signed with a secret rotated in a moment ago.
    pub async fn fresh_webhook_endpoint(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<std::sync::Arc<webhooks::EndpointSecrets>>, StoreError> {
        let ticket = self.endpoints.ticket();
        self.read_webhook_endpoint(id, ticket).await
    }

    /// Drops a cached endpoint found revoked or deleted.
    pub fn forget_webhook_endpoint(&self, id: uuid::Uuid) {
        self.endpoints.evict(id);
    }

    async fn read_webhook_endpoint(
        &self,
        id: uuid::Uuid,
        ticket: endpoint_cache::Ticket,
    ) -> Result<Option<std::sync::Arc<webhooks::EndpointSecrets>>, StoreError> {
        let keyring = self.keyring.as_deref().ok_or(StoreError::NoMasterKey)?;
        let Some(found) = webhooks::endpoint_secrets(&self.pool, keyring, id).await? else {
            return Ok(None);
        };
        let found = std::sync::Arc::new(found);
        self.endpoints.put(ticket, std::sync::Arc::clone(&found));
        Ok(Some(found))
    }

    /// The principal a webhook endpoint's playbook acts as (the endpoint must be active).
    pub async fn endpoint_principal(&self, id: uuid::Uuid) -> Result<Principal, StoreError> {
        let row: Option<(uuid::Uuid, Option<uuid::Uuid>)> = sqlx::query_as(
            "select msp_id, organization_id from webhook_endpoint where endpoint_id = $1 and revoked_at is null",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let (msp, organization) = row.ok_or(StoreError::NotFound)?;
        Principal::for_endpoint(
            tenantry_domain::MspId::from_uuid(msp),
            id,
            organization.map(tenantry_domain::OrganizationId::from_uuid),
        )
        .ok_or_else(|| StoreError::Corrupt("endpoint id".into()))
    }

    pub fn operator(&self) -> Operator<'_> {
        Operator::new(&self.pool, &self.pepper, self.keyring.as_deref())
    }

    /// Whether the database answers and every migration this build knows is applied.
    pub async fn readiness(&self) -> Readiness {
        readiness::check(&self.pool).await
    }
}
