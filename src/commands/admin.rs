//! `tenantry admin …`: operator tasks that stand outside any MSP. Keys are printed once;
//! only their HMAC is stored.

use std::process::ExitCode;

use anyhow::{Context, bail};
use tenantry_domain::{DisplayName, MspId, OrganizationLimit, Role};
use tenantry_store::{NewApiKey, Readiness, Store, StoreError};
use uuid::Uuid;

use super::{connect, load_settings, success};

async fn store() -> anyhow::Result<Store> {
    let settings = load_settings(None)?;
    let pool = connect(&settings.database, settings.database_url()?).await?;
    let store = Store::new(pool, settings.api_key_pepper()?);
    match store.readiness().await {
        Readiness::Ready => Ok(store),
        Readiness::MigrationsPending { pending } => {
            bail!("{pending} migration(s) are not applied; run `tenantry migrate` first")
        }
        Readiness::DatabaseUnreachable => bail!("the database does not answer"),
    }
}

pub async fn create_msp(name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let name = DisplayName::parse(name).map_err(|e| anyhow::anyhow!("--name {e}"))?;
    let store = store().await?;
    let (msp, key, issued) = store.operator().create_msp(name).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "msp_id": msp.id, "name": msp.name, "api_key": issued.expose(),
                "key_id": key.key_id, "role": key.role,
            })
        );
    } else {
        println!("Created MSP {:?} ({}).", msp.name, msp.id);
        println!(
            "Its owner API key (shown once, store it now):\n{}",
            issued.expose()
        );
    }
    success()
}

pub async fn create_key(msp: Uuid, role: Role, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let name = DisplayName::parse(name).map_err(|e| anyhow::anyhow!("--name {e}"))?;
    let store = store().await?;
    let new = NewApiKey {
        name,
        role,
        organizations: OrganizationLimit::All,
    };
    let (key, issued) = match store
        .operator()
        .create_key(MspId::from_uuid(msp), new)
        .await
    {
        Err(StoreError::NotFound) => bail!("there is no MSP with id {msp}"),
        other => other.context("creating the key")?,
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "msp_id": key.msp_id, "api_key": issued.expose(), "key_id": key.key_id, "role": key.role,
            })
        );
    } else {
        println!(
            "Created a {} key for MSP {msp} (shown once, store it now):\n{}",
            key.role,
            issued.expose()
        );
    }
    success()
}
