//! `tenantry keys rotate`: re-seals every organization's data key under the current master
//! key. Run it with the new key as `TENANTRY__SECRETS__MASTER_KEY` and the old one in
//! `TENANTRY__SECRETS__PREVIOUS_MASTER_KEYS`; services keep working throughout, since they
//! open data keys under either. Afterwards the old key can be dropped.

use std::process::ExitCode;

use tenantry_store::Store;

use super::{connect, load_settings, success};

pub async fn rotate() -> anyhow::Result<ExitCode> {
    let settings = load_settings(None)?;
    let pool = connect(&settings.database, settings.database_url()?).await?;
    let store = Store::new(pool, settings.api_key_pepper()?).with_keyring(settings.keyring()?);
    let count = store.operator().rotate_data_keys().await?;
    println!("re-sealed {count} organization data key(s) under the current master key");
    success()
}
