//! Telling every process that an API key changed: a notice on [`API_KEYS_CHANNEL`] sent
//! in the changing transaction (PostgreSQL delivers it at commit, to every listener), and
//! the listener that applies such notices to this process's [`KeyCache`].

use std::sync::Arc;

use sqlx::postgres::PgListener;
use sqlx::{PgPool, Postgres, Transaction};
use tenantry_domain::KeyId;

use crate::error::StoreError;
use crate::key_cache::{API_KEYS_CHANNEL, KeyCache};

/// Publishes, at the commit of `tx`, that the key `key_id` changed.
pub(crate) async fn publish(
    tx: &mut Transaction<'_, Postgres>,
    key_id: &KeyId,
) -> Result<(), StoreError> {
    sqlx::query("select pg_notify($1, $2)")
        .bind(API_KEYS_CHANNEL)
        .bind(key_id.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A live subscription to key changes. While one exists and its connection holds, the
/// process trusts its key cache; dropping it, or losing its connection, stops that.
pub struct ApiKeyChanges {
    listener: PgListener,
    cache: Arc<KeyCache>,
}

impl ApiKeyChanges {
    pub(crate) async fn subscribe(pool: &PgPool, cache: Arc<KeyCache>) -> Result<Self, StoreError> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(API_KEYS_CHANNEL).await?;
        // Only now: a change committed from here on reaches this listener.
        cache.go_live();
        Ok(Self { listener, cache })
    }

    /// Waits for the next notice and applies it. `Ok(false)` when the connection was lost
    /// (notices may have been missed: the cache is dropped and bypassed; subscribe again).
    pub async fn apply_next(&mut self) -> Result<bool, StoreError> {
        match self.listener.try_recv().await {
            Ok(Some(notice)) => {
                match KeyId::parse(notice.payload()) {
                    Some(key_id) => self.cache.forget(&key_id),
                    None => self.cache.forget_all(),
                }
                Ok(true)
            }
            Ok(None) => {
                self.cache.go_dark();
                Ok(false)
            }
            Err(e) => {
                self.cache.go_dark();
                Err(e.into())
            }
        }
    }
}

impl Drop for ApiKeyChanges {
    fn drop(&mut self) {
        self.cache.go_dark();
    }
}
