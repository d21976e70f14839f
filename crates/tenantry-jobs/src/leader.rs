//! Maintenance that exactly one process runs: rescuing jobs of dead workers, closing runs
//! whose jobs ended without them, queueing due discovery scans, pruning finished jobs.
//! Leadership is a session advisory lock on a dedicated connection: it is released when
//! the process or its connection dies, and another process takes over within a tick.

use std::time::Duration;

use sqlx::Connection;
use tenantry_store::Store;
use tokio::sync::watch;

use tenantry_domain::schedule;

#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub tick: Duration,
    /// Jobs whose worker has not heartbeated for this long are rescued.
    pub lease: Duration,
    /// Jobs running longer than this are rescued even while heartbeating (above every
    /// kind's timeout).
    pub horizon: Duration,
    /// Finished jobs are kept this long for the jobs API.
    pub retention: Duration,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            horizon: Duration::from_secs(2 * 3600),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Competes for leadership until `shutdown`, doing the leader's work while it holds it.
pub async fn run(store: Store, config: LeaderConfig, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        match lead(&store, &config, &mut shutdown).await {
            Ok(()) => return,
            Err(error) => tracing::warn!(%error, "leader connection lost; competing again"),
        }
        tokio::select! {
            _ = tokio::time::sleep(config.tick) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn lead(
    store: &Store,
    config: &LeaderConfig,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), sqlx::Error> {
    let mut conn = store.pool().acquire().await?.detach();
    let mut leading = false;
    let queue = store.queue();
    let discovery = store.discovery();
    let actions = store.action_runs();
    loop {
        if !leading {
            leading = sqlx::query_scalar("select pg_try_advisory_lock($1)")
                .bind(tenantry_store::queue::LEADER_LOCK)
                .fetch_one(&mut conn)
                .await?;
            if leading {
                tracing::info!("this process leads maintenance and scheduling");
            }
        } else {
            // The lock lives as long as this connection does.
            sqlx::query("select 1").execute(&mut conn).await?;
        }
        if leading && let Err(error) = maintain(&queue, &discovery, &actions, config).await {
            tracing::warn!(%error, "maintenance failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(config.tick) => {}
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    let _ = conn.close().await;
                    return Ok(());
                }
            }
        }
    }
}

/// One round of the leader's maintenance, here and now, without competing for
/// leadership: for tests and one-shot tools (a running service's leader does this every
/// tick).
pub async fn maintain_once(
    store: &Store,
    config: &LeaderConfig,
) -> Result<(), tenantry_store::StoreError> {
    maintain(
        &store.queue(),
        &store.discovery(),
        &store.action_runs(),
        config,
    )
    .await
}

async fn maintain(
    queue: &tenantry_store::Queue,
    discovery: &tenantry_store::DiscoveryStore,
    actions: &tenantry_store::action_runs::ActionRunStore,
    config: &LeaderConfig,
) -> Result<(), tenantry_store::StoreError> {
    let rescued = queue.rescue(config.lease, config.horizon).await?;
    if rescued > 0 {
        tracing::warn!(rescued, "jobs of lost workers returned to the queue");
    }
    discovery.close_orphaned_runs().await?;
    let queued = discovery
        .queue_due_scans(100, |s| schedule::next_scan(s, chrono::Utc::now()))
        .await?;
    if queued > 0 {
        tracing::info!(queued, "scheduled discovery scans queued");
    }
    let expired = tenantry_store::actions::expire_due(discovery.pool()).await?;
    if expired > 0 {
        tracing::info!(expired, "action requests expired without a decision");
    }
    let notified =
        tenantry_store::change_notifications::queue_notified_scans(discovery.pool()).await?;
    if notified > 0 {
        tracing::info!(notified, "delta scans queued for notified changes");
    }
    let syncs = tenantry_store::partner::queue_due_syncs(discovery.pool(), 100).await?;
    if syncs > 0 {
        tracing::info!(syncs, "scheduled partner connection syncs queued");
    }
    tenantry_store::partner::consent::prune(discovery.pool()).await?;
    let renewals =
        tenantry_store::change_notifications::queue_due_renewals(discovery.pool()).await?;
    if renewals > 0 {
        tracing::info!(renewals, "Graph subscription renewals queued");
    }
    let orphaned = tenantry_store::action_runs::close_orphaned_actions(actions).await?;
    if orphaned > 0 {
        tracing::warn!(orphaned, "actions whose job ended without them were closed");
    }
    let destroyed =
        tenantry_store::action_runs::destroy_expired_passwords(discovery.pool()).await?;
    if destroyed > 0 {
        tracing::info!(destroyed, "unrevealed generated passwords destroyed");
    }
    queue.prune(config.retention).await?;
    Ok(())
}
