//! The durable job engine and what runs on it: the worker loop ([`engine`]), the leader's
//! maintenance and schedules ([`leader`]), and one handler per job kind: discovery
//! ([`discovery`]), automatic re-validation ([`revalidate`]), identity actions
//! ([`action`]), partner mode's GDAP syncs and customer verifications ([`partner`]),
//! webhook playbooks ([`playbook`], which request actions through
//! `tenantry-actions`, the same checks as the API) and Graph change-notification
//! subscriptions ([`subscriptions`]).
//!
//! The queue itself is rows in PostgreSQL (`tenantry_store::queue`), hand-rolled after
//! River's design; docs/jobs.md says why it is not the `riverqueue` crate. Job arguments
//! are types (`tenantry_store::jobs`), and [`handlers`] is the one list of kinds that
//! `serve`, `worker` and the tests all run.

pub mod action;
mod credentials;
pub mod discovery;
pub mod engine;
pub mod leader;
pub mod partner;
mod password;
pub mod playbook;
pub mod revalidate;
pub mod subscriptions;

use std::sync::Arc;

use tenantry_graph::GraphAccess;
use tenantry_store::Store;
use tokio::sync::watch;

pub use engine::{Engine, EngineConfig, Handler, JobHandler, Outcome, typed};
pub use leader::LeaderConfig;

/// What every job handler may reach, built once per process.
#[derive(Clone)]
pub struct JobContext {
    pub store: Store,
    /// The process's Graph client and token cache, shared with the API.
    pub graph: GraphAccess,
    /// Where Microsoft Graph reaches this service (`http.public_url`), for change
    /// notifications; without it nothing subscribes.
    pub public_url: Option<String>,
}

/// Every job kind this build runs: the one registry.
pub fn handlers(context: &JobContext) -> Vec<Arc<dyn Handler>> {
    let JobContext {
        store,
        graph,
        public_url,
    } = context;
    vec![
        typed(discovery::DiscoveryHandler::new(
            store.discovery(),
            graph.clone(),
            store.token_refusals(),
        )),
        typed(revalidate::RevalidateHandler::new(
            store.revalidation(),
            graph.validator(),
        )),
        typed(action::ActionHandler::new(
            store.action_runs(),
            graph.clone(),
            store.token_refusals(),
        )),
        typed(playbook::PlaybookHandler::new(store.clone(), graph.clone())),
        typed(subscriptions::SubscriptionHandler::new(
            store.change_notifications(),
            graph.clone(),
            store.token_refusals(),
            public_url.clone(),
        )),
        typed(partner::PartnerSyncHandler::new(
            store.partner(),
            graph.clone(),
        )),
        typed(partner::PartnerVerifyHandler::new(
            store.partner(),
            graph.clone(),
        )),
    ]
}

/// The engine with every kind of [`handlers`].
pub fn engine(context: &JobContext, config: EngineConfig) -> Engine {
    Engine::new(context.store.queue(), config, handlers(context))
}

/// Runs workers and the leader election until `shutdown` turns true, then drains.
pub async fn run(
    context: JobContext,
    engine_config: EngineConfig,
    leader: LeaderConfig,
    shutdown: watch::Receiver<bool>,
) {
    let workers = Arc::new(engine(&context, engine_config));
    tracing::info!(kinds = ?workers.kinds(), "starting the job engine");
    let leading = tokio::spawn(leader::run(context.store, leader, shutdown.clone()));
    workers.run(shutdown).await;
    let _ = leading.await;
}
