//! `tenantry worker`: only the job engine (any number of these share one database), until
//! SIGTERM or Ctrl-C; running jobs then get the drain period to finish, and the rest go
//! back to the queue for another worker.

use std::process::ExitCode;

use tenantry_store::Store;

use super::{
    connect, graph_access, job_context, load_settings, shutdown_channel, spawn_workers, success,
};

pub async fn run() -> anyhow::Result<ExitCode> {
    let settings = load_settings(None)?;
    // Workers open organizations' credentials: without the master key, refuse to start.
    let keyring = settings.keyring()?;
    let pool = connect(&settings.database, settings.database_url()?).await?;
    let store = Store::new(pool, settings.api_key_pepper()?).with_keyring(keyring);
    let graph = graph_access(&settings, None)?;
    let workers = spawn_workers(
        job_context(&store, &graph, &settings),
        &settings,
        shutdown_channel(),
    );
    workers.await?;
    success()
}
