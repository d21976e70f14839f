//! The durable job engine and what runs on it: the worker loop ([`engine`]), the leader's
//! maintenance and schedules ([`leader`], [`schedule`]), discovery ([`discovery`]) and
//! automatic re-validation ([`revalidate`]) and identity actions ([`action`]).
//!
//! The queue itself is rows in PostgreSQL (`tenantry_store::queue`), hand-rolled after
//! River's design; docs/jobs.md says why it is not the `riverqueue` crate.

pub mod action;
mod credentials;
pub mod discovery;
pub mod engine;
pub mod leader;
mod password;
pub mod revalidate;
pub mod schedule;
pub mod subscriptions;

use std::sync::Arc;

use tenantry_graph::{GraphHttp, TokenCache};
use tenantry_store::Store;
use tokio::sync::watch;

pub use engine::{Engine, EngineConfig, Handler, Outcome};
pub use leader::LeaderConfig;

/// The job kinds this build runs.
pub fn handlers(store: &Store, http: GraphHttp) -> Vec<Arc<dyn Handler>> {
    vec![
        Arc::new(revalidate::RevalidateHandler::new(
            store.revalidation(),
            tenantry_graph::Validator::new(http.clone()),
        )),
        Arc::new(action::ActionHandler::new(
            store.action_runs(),
            http.clone(),
            TokenCache::default(),
        )),
        Arc::new(discovery::DiscoveryHandler::new(
            store.discovery(),
            http,
            TokenCache::default(),
        )),
    ]
}

/// Runs workers and the leader election until `shutdown` turns true, then drains.
pub async fn run(
    store: Store,
    http: GraphHttp,
    engine: EngineConfig,
    leader: LeaderConfig,
    shutdown: watch::Receiver<bool>,
) {
    run_with(store, http, engine, leader, shutdown, Vec::new()).await;
}

/// [`run`], with handlers for job kinds defined outside this crate (webhook playbooks,
/// which request actions through the API's checks).
pub async fn run_with(
    store: Store,
    http: GraphHttp,
    engine: EngineConfig,
    leader: LeaderConfig,
    shutdown: watch::Receiver<bool>,
    extra: Vec<Arc<dyn Handler>>,
) {
    let mut all = handlers(&store, http);
    all.extend(extra);
    let workers = Arc::new(Engine::new(store.queue(), engine, all));
    let leading = tokio::spawn(leader::run(store, leader, shutdown.clone()));
    workers.run(shutdown).await;
    let _ = leading.await;
}
