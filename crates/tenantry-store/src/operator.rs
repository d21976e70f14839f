//! Operator tasks that stand outside any one MSP: creating an MSP with its first owner key,
//! minting a key for a given MSP. Used by the `tenantry admin` CLI and `tenantry dev`, never
//! by request handlers.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tenantry_domain::{DisplayName, MspId, OrganizationLimit, Role};
use uuid::Uuid;

use crate::api_keys::{self, ApiKeyRecord, IssuedKey, NewApiKey};
use crate::error::StoreError;
use crate::key_hash::ApiKeyPepper;
use crate::operators::KeyHolder;

#[derive(Clone, Debug)]
pub struct MspRecord {
    pub id: MspId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

pub struct Operator<'a> {
    pool: &'a PgPool,
    pepper: &'a ApiKeyPepper,
    keyring: Option<&'a crate::sealing::Keyring>,
}

impl<'a> Operator<'a> {
    pub(crate) fn new(
        pool: &'a PgPool,
        pepper: &'a ApiKeyPepper,
        keyring: Option<&'a crate::sealing::Keyring>,
    ) -> Self {
        Self {
            pool,
            pepper,
            keyring,
        }
    }

    /// Re-seals every organization's data key under the current master key (`keys rotate`);
    /// returns how many were re-sealed.
    pub async fn rotate_data_keys(&self) -> Result<usize, StoreError> {
        let keyring = self.keyring.ok_or(StoreError::NoMasterKey)?;
        crate::organizations::rotate_data_keys(self.pool, keyring).await
    }

    /// Creates an MSP and its first owner key, held by `owner` (a new operator), in one
    /// transaction.
    pub async fn create_msp(
        &self,
        name: DisplayName,
        owner: DisplayName,
    ) -> Result<(MspRecord, ApiKeyRecord, IssuedKey), StoreError> {
        let id = MspId::new();
        let mut tx = self.pool.begin().await?;
        let (name, created_at): (String, DateTime<Utc>) = sqlx::query_as(
            "insert into msp (msp_id, name) values ($1, $2) returning name, created_at",
        )
        .bind(id.as_uuid())
        .bind(name.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let first_key = NewApiKey {
            name: DisplayName::parse("initial owner key")
                .map_err(|e| StoreError::Corrupt(format!("built-in key name: {e}")))?,
            role: Role::Owner,
            organizations: OrganizationLimit::All,
            operator: KeyHolder::New(owner),
        };
        let holder = api_keys::cli_holder(&mut tx, id, &first_key).await?;
        let (key, issued) =
            api_keys::insert(&mut tx, self.pepper, id, &first_key, holder, None).await?;
        tx.commit().await?;
        Ok((
            MspRecord {
                id,
                name,
                created_at,
            },
            key,
            issued,
        ))
    }

    /// Mints a key for an existing MSP; `NotFound` when there is no such MSP or the named
    /// operator is not one of its own. `KeyHolder::Minter` makes a new operator named
    /// after the key (one person per key, as the migration did for older keys).
    pub async fn create_key(
        &self,
        msp_id: MspId,
        new: NewApiKey,
    ) -> Result<(ApiKeyRecord, IssuedKey), StoreError> {
        let mut tx = self.pool.begin().await?;
        let exists: Option<Uuid> =
            sqlx::query_scalar("select msp_id from msp where msp_id = $1 for share")
                .bind(msp_id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        let holder = api_keys::cli_holder(&mut tx, msp_id, &new).await?;
        let issued = api_keys::insert(&mut tx, self.pepper, msp_id, &new, holder, None).await?;
        tx.commit().await?;
        Ok(issued)
    }

    /// The oldest MSP with exactly this name, if any (used by `tenantry dev`).
    pub async fn find_msp_by_name(&self, name: &str) -> Result<Option<MspRecord>, StoreError> {
        let row: Option<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
            "select msp_id, name, created_at from msp where name = $1 order by msp_id limit 1",
        )
        .bind(name)
        .fetch_optional(self.pool)
        .await?;
        Ok(row.map(|(id, name, created_at)| MspRecord {
            id: MspId::from_uuid(id),
            name,
            created_at,
        }))
    }
}
