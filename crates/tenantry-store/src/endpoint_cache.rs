//! The receiver's per-process cache of active webhook endpoints (MSP, organization,
//! rules and opened secrets), so a delivery does not look its endpoint up and open its
//! secrets again each time.
//!
//! Invalidation: a trigger on `webhook_endpoint` notifies [`ENDPOINTS_CHANNEL`] with the
//! endpoint's id from every transaction that updates or deletes a row (rotation,
//! revocation, cascades from a deleted organization or MSP), and every process listens
//! and evicts it. The cache is used only while its listener is connected: notifications
//! sent while it is not are lost, so it is emptied when the connection drops and filled
//! again only once `LISTEN` is back. A fill that raced a notification is not kept (an
//! epoch counts notifications). Each entry also lives at most [`TTL`] (the backstop), and
//! never past the moment a rotated-out secret stops verifying.
//!
//! Callers still close the window between a commit and its notification: the statement
//! that records a delivery checks the endpoint is active, and a signature that no cached
//! secret verifies is checked again against the database's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::webhooks::EndpointSecrets;

/// The channel the `webhook_endpoint` trigger notifies (payload: the endpoint id).
pub const ENDPOINTS_CHANNEL: &str = "tenantry_webhook_endpoints";
/// The longest an entry is used without being read again.
pub const TTL: Duration = Duration::from_secs(60);
/// The wait before listening again after the listener's connection failed.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    /// Whether the listener is connected (else nothing is read from or put in the cache).
    live: bool,
    /// Counts notifications and reconnects.
    epoch: u64,
    entries: HashMap<Uuid, (Instant, Arc<EndpointSecrets>)>,
}

/// Shared by every clone of a [`crate::Store`].
#[derive(Default)]
pub(crate) struct EndpointCache {
    state: Mutex<State>,
    listening: AtomicBool,
}

/// What a fill must present to be kept: the epoch read before the database was.
#[derive(Clone, Copy)]
pub(crate) struct Ticket(Option<u64>);

impl EndpointCache {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters (entries are replaced whole), so a poisoned lock is used as it is.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached endpoint, or the ticket to fill it with; starts the listener on first use.
    pub(crate) fn get(
        self: &Arc<Self>,
        pool: &PgPool,
        id: Uuid,
    ) -> Result<Arc<EndpointSecrets>, Ticket> {
        if !self.listening.swap(true, Ordering::AcqRel) {
            tokio::spawn(listen(Arc::clone(self), pool.clone()));
        }
        let mut state = self.state();
        if !state.live {
            return Err(Ticket(None));
        }
        match state.entries.get(&id) {
            Some((until, entry)) if *until > Instant::now() => Ok(Arc::clone(entry)),
            Some(_) => {
                state.entries.remove(&id);
                Err(Ticket(Some(state.epoch)))
            }
            None => Err(Ticket(Some(state.epoch))),
        }
    }

    /// A ticket for a read that replaces whatever is cached.
    pub(crate) fn ticket(&self) -> Ticket {
        let state = self.state();
        Ticket(state.live.then_some(state.epoch))
    }

    /// Keeps what the database answered, unless a notification came in since the ticket.
    pub(crate) fn put(&self, ticket: Ticket, entry: Arc<EndpointSecrets>) {
        let Ticket(Some(epoch)) = ticket else {
            return;
        };
        let mut life = TTL;
        if let Some(expires) = entry.previous_expires_at {
            let left = (expires - chrono::Utc::now()).to_std().unwrap_or_default();
            life = life.min(left);
        }
        let mut state = self.state();
        if state.live && state.epoch == epoch {
            state
                .entries
                .insert(entry.endpoint_id, (Instant::now() + life, entry));
        }
    }

    /// Forgets one endpoint (this process saw it change).
    pub(crate) fn evict(&self, id: Uuid) {
        let mut state = self.state();
        state.epoch += 1;
        state.entries.remove(&id);
    }

    fn reset(&self, live: bool) {
        let mut state = self.state();
        state.epoch += 1;
        state.live = live;
        state.entries.clear();
    }
}

/// Listens for endpoint changes for as long as the runtime runs, reconnecting after a
/// lost connection.
async fn listen(cache: Arc<EndpointCache>, pool: PgPool) {
    // Should the task end with its runtime, the cache goes dark and the next use listens
    // again.
    struct Stopped(Arc<EndpointCache>);
    impl Drop for Stopped {
        fn drop(&mut self) {
            self.0.reset(false);
            self.0.listening.store(false, Ordering::Release);
        }
    }
    let _stopped = Stopped(Arc::clone(&cache));
    loop {
        match connect(&pool).await {
            Ok(mut listener) => {
                cache.reset(true);
                // `try_recv` answers `None` when the connection was lost.
                while let Ok(Some(notification)) = listener.try_recv().await {
                    match notification.payload().parse::<Uuid>() {
                        Ok(id) => cache.evict(id),
                        Err(_) => cache.reset(true),
                    }
                }
                cache.reset(false);
                tracing::warn!("the webhook endpoint cache lost its listener; reconnecting");
            }
            Err(error) => {
                tracing::warn!(%error, "the webhook endpoint cache cannot listen; reading endpoints from the database");
            }
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(ENDPOINTS_CHANNEL).await?;
    Ok(listener)
}
