//! `tenantry migrate`: apply pending migrations (sqlx takes an advisory lock, so running it
//! from several places at once is safe).

use std::process::ExitCode;

use super::{connect, load_settings, success};

pub async fn run() -> anyhow::Result<ExitCode> {
    let settings = load_settings(None)?;
    let pool = connect(&settings.database, settings.database_url()?).await?;
    tenantry_store::migrate(&pool).await?;
    tracing::info!("migrations applied");
    eprintln!("migrations applied");
    success()
}
