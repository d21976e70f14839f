//! `tenantry serve` and `tenantry api`: the HTTP API (and, for `serve`, the job engine)
//! until SIGTERM or Ctrl-C; the workers then drain before the process exits.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tenantry_api::Metrics;
use tenantry_store::Store;
use tokio::net::TcpListener;

use super::{connect, load_settings, shutdown_channel, spawn_workers, success, until};
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    ApiAndWorkers,
    ApiOnly,
}

pub async fn run(mode: Mode) -> anyhow::Result<ExitCode> {
    let settings = load_settings(None)?;
    // Without the master key no credential can be stored or read: refuse to start.
    let keyring = settings.keyring()?;
    let pool = connect(&settings.database, settings.database_url()?).await?;
    if mode == Mode::ApiAndWorkers {
        tenantry_store::migrate(&pool)
            .await
            .context("applying migrations")?;
    }
    let store = Store::new(pool, settings.api_key_pepper()?).with_keyring(keyring);
    let shutdown = shutdown_channel();
    let graph = super::graph_access(&settings, None)?;
    let workers = match mode {
        Mode::ApiAndWorkers => Some(spawn_workers(
            super::job_context(&store, &graph, &settings),
            &settings,
            shutdown.clone(),
        )),
        Mode::ApiOnly => None,
    };
    let listener = bind(&settings).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let key_watch = tenantry_api::spawn_key_watch(store.clone(), shutdown.clone());
    let app = tenantry_api::build(store, graph, &settings.http, Arc::new(Metrics::new()))?;
    let served = tenantry_api::serve(listener, app, until(shutdown)).await;
    let _ = key_watch.await;
    if let Some(workers) = workers {
        let _ = workers.await;
    }
    served?;
    success()
}

pub async fn bind(settings: &Settings) -> anyhow::Result<TcpListener> {
    TcpListener::bind(&settings.http.addr)
        .await
        .with_context(|| {
            format!(
                "listening on {} (set TENANTRY__HTTP__ADDR to use another address)",
                settings.http.addr
            )
        })
}
