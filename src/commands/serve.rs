//! `tenantry serve` and `tenantry api`: the HTTP API (and, for `serve`, the workers) until
//! SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tenantry_api::Metrics;
use tenantry_store::Store;
use tokio::net::TcpListener;

use super::{connect, load_settings, shutdown_signal, success};
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
        // The job engine lands with its own capability; until then there is no work to run.
        tracing::info!("no background job kinds exist yet; serving the API only");
    }
    let store = Store::new(pool, settings.api_key_pepper()?).with_keyring(keyring);
    let listener = bind(&settings).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let app = tenantry_api::build(
        store,
        super::validator(&settings, None)?,
        &settings.http,
        Arc::new(Metrics::new()),
    )?;
    tenantry_api::serve(listener, app, shutdown_signal()).await?;
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
