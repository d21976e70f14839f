//! What each subcommand does, plus the pieces they share: loading settings, connecting to
//! the database, waiting for a shutdown signal.

pub mod admin;
pub mod dev;
pub mod graph_sim;
pub mod keys;
pub mod migrate;
pub mod serve;
pub mod test_env;
pub mod worker;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::settings::{DatabaseSettings, Settings, Sources};
use crate::telemetry;

/// Loads settings (`implied_env` when `TENANTRY_ENV` is unset) and starts logging.
pub fn load_settings(implied_env: Option<&str>) -> anyhow::Result<Settings> {
    let settings = Settings::load(&Sources::from_process(implied_env))?;
    telemetry::init(&settings.log);
    Ok(settings)
}

pub async fn connect(database: &DatabaseSettings, url: &SecretString) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(database.max_connections)
        .acquire_timeout(Duration::from_secs(database.acquire_timeout_secs))
        .connect(url.expose_secret())
        .await
        // sqlx's connection errors do not echo the URL, so the password stays out.
        .context("connecting to PostgreSQL")
}

/// The process's one way to Microsoft (HTTP client and token cache), talking to the
/// configured endpoints and trusting `extra_ca_pem` too (e.g. the simulator's own CA).
/// The API and the workers of a process share it.
pub fn graph_access(
    settings: &Settings,
    extra_ca_pem: Option<String>,
) -> anyhow::Result<tenantry_graph::GraphAccess> {
    let mut config = tenantry_graph::GraphConfig::new(
        &settings.microsoft.authority_url,
        &settings.microsoft.graph_url,
    );
    config.extra_ca_pem = extra_ca_pem;
    Ok(tenantry_graph::GraphAccess::new(
        tenantry_graph::GraphHttp::new(config)?,
    ))
}

/// What the job handlers of this process reach.
pub fn job_context(
    store: &tenantry_store::Store,
    graph: &tenantry_graph::GraphAccess,
    settings: &Settings,
) -> tenantry_jobs::JobContext {
    tenantry_jobs::JobContext {
        store: store.clone(),
        graph: graph.clone(),
        public_url: settings.http.public_url.clone(),
    }
}

/// Starts the job engine (workers and the leader election) with every job kind; it
/// drains and returns once `shutdown` turns true.
pub fn spawn_workers(
    context: tenantry_jobs::JobContext,
    settings: &Settings,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tracing::info!(
        concurrency = settings.jobs.concurrency,
        "starting the job engine"
    );
    tokio::spawn(tenantry_jobs::run(
        context,
        settings.jobs.engine(),
        settings.jobs.leader(),
        shutdown,
    ))
}

/// A channel that turns true on Ctrl-C or SIGTERM, for everything that must stop.
pub fn shutdown_channel() -> tokio::sync::watch::Receiver<bool> {
    let (sender, receiver) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = sender.send(true);
    });
    receiver
}

/// Resolves once `shutdown` turns true.
pub async fn until(mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}

pub(crate) fn success() -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
