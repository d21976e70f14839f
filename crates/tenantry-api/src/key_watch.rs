//! Keeps this process's cache of verified API keys in step with every other process:
//! one task listens for key changes (a revocation anywhere is forgotten here when it
//! commits), another writes the keys' `last_used_at` in batches. Without a listener the
//! store reads every key from the database, so losing the connection costs speed, never
//! a revoked key accepted.

use std::time::Duration;

use tenantry_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the uses noted in memory are written (`last_used_at` has a minute's
/// precision; this keeps it within a quarter minute of that).
const FLUSH_EVERY: Duration = Duration::from_secs(15);

/// Pause before subscribing again after the listening connection was refused or lost.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// Starts the watch; it stops, writing the uses it holds, once `shutdown` turns true.
pub fn spawn_key_watch(store: Store, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let listening = tokio::spawn(listen(store.clone()));
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stopped = async move {
            // A dropped sender stops the watch too.
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = tick.tick() => flush(&store).await,
                () = &mut stopped => break,
            }
        }
        // Dropping the subscription stops the cache being trusted before the last flush.
        listening.abort();
        let _ = listening.await;
        flush(&store).await;
    })
}

async fn listen(store: Store) {
    loop {
        match store.api_key_changes().await {
            Ok(mut changes) => loop {
                match changes.apply_next().await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            "API key notices interrupted; reading keys from the database meanwhile"
                        );
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "API key notices failed; reading keys from the database meanwhile");
                        break;
                    }
                }
            },
            Err(error) => {
                tracing::warn!(%error, "cannot listen for API key notices; reading keys from the database meanwhile");
            }
        }
        tokio::time::sleep(RESUBSCRIBE_AFTER).await;
    }
}

async fn flush(store: &Store) {
    if let Err(error) = store.flush_key_usage().await {
        tracing::warn!(%error, "writing API keys' last use failed; kept for the next try");
    }
}
