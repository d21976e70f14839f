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

use crate::settings::{DatabaseSettings, Settings, Sources};
use crate::telemetry;

/// Loads settings (`implied_env` when `TENANTRY_ENV` is unset) and starts logging.
pub fn load_settings(implied_env: Option<&str>) -> anyhow::Result<Settings> {
    let settings = Settings::load(&Sources::from_process(implied_env))?;
    telemetry::init(&settings.log);
    Ok(settings)
}

pub async fn connect(database: &DatabaseSettings, url: &SecretString) -> anyhow::Result<PgPool> {
    tenantry_store::pool::options(database.max_connections)
        .acquire_timeout(Duration::from_secs(database.acquire_timeout_secs))
        .connect(url.expose_secret())
        .await
        // sqlx's connection errors do not echo the URL, so the password stays out.
        .context("connecting to PostgreSQL")
}

pub use crate::wiring::{graph_access, job_context, spawn_workers};

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
