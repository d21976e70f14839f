//! How the crates are put together into a running service: one Graph access per process,
//! the job context every handler gets, the job engine and the HTTP application. The
//! subcommands (`serve`, `api`, `worker`, `dev`) and the test harness all build the
//! service through these functions, so what is tested is what runs.

use crate::settings::Settings;

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
    )
    .with_exchange_url(&settings.microsoft.exchange_url);
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
