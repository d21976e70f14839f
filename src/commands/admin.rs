//! `tenantry admin …`: operator tasks that stand outside any MSP. Keys are printed once;
//! only their HMAC is stored.

use std::process::ExitCode;

use anyhow::{Context, bail};
use tenantry_domain::{DisplayName, MspId, OperatorId, OrganizationLimit, Role};
use tenantry_store::{KeyHolder, NewApiKey, Readiness, Store, StoreError};
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

/// The person the first owner key belongs to: `--operator`, else "Owner of <MSP name>"
/// (cut to fit), so the MSP has a named person from the start.
fn first_owner(msp: &DisplayName, operator: Option<&str>) -> anyhow::Result<DisplayName> {
    match operator {
        Some(name) => DisplayName::parse(name).map_err(|e| anyhow::anyhow!("--operator {e}")),
        None => {
            let default: String = format!("Owner of {}", msp.as_str())
                .chars()
                .take(100)
                .collect();
            DisplayName::parse(default.trim_end())
                .map_err(|e| anyhow::anyhow!("default operator name: {e}"))
        }
    }
}

pub async fn create_msp(
    name: &str,
    operator: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let name = DisplayName::parse(name).map_err(|e| anyhow::anyhow!("--name {e}"))?;
    let owner = first_owner(&name, operator)?;
    let store = store().await?;
    let (msp, key, issued) = store.operator().create_msp(name, owner).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "msp_id": msp.id, "name": msp.name, "api_key": issued.expose(),
                "key_id": key.key_id, "role": key.role, "operator": key.operator,
            })
        );
    } else {
        println!("Created MSP {:?} ({}).", msp.name, msp.id);
        println!(
            "Its owner API key, held by {:?} (shown once, store it now):\n{}",
            key.operator.name,
            issued.expose()
        );
    }
    success()
}

/// Who a key minted by `create-key` belongs to (`--operator` / `--operator-id`).
pub struct Holder {
    pub name: Option<String>,
    pub id: Option<Uuid>,
}

impl Holder {
    fn parse(self) -> anyhow::Result<KeyHolder> {
        Ok(match (self.name, self.id) {
            (Some(_), Some(_)) => bail!("give --operator or --operator-id, not both"),
            (Some(name), None) => KeyHolder::New(
                DisplayName::parse(&name).map_err(|e| anyhow::anyhow!("--operator {e}"))?,
            ),
            (None, Some(id)) => KeyHolder::Existing(OperatorId::from_uuid(id)),
            // A person of its own, as the migration gave every older key.
            (None, None) => KeyHolder::Minter,
        })
    }
}

pub async fn create_key(
    msp: Uuid,
    role: Role,
    name: &str,
    holder: Holder,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let name = DisplayName::parse(name).map_err(|e| anyhow::anyhow!("--name {e}"))?;
    let operator = holder.parse()?;
    let named = match &operator {
        KeyHolder::Existing(id) => Some(*id),
        _ => None,
    };
    let store = store().await?;
    let new = NewApiKey {
        name,
        role,
        organizations: OrganizationLimit::All,
        operator,
    };
    let (key, issued) = match store
        .operator()
        .create_key(MspId::from_uuid(msp), new)
        .await
    {
        Err(StoreError::NotFound) => match named {
            Some(id) => bail!("there is no MSP with id {msp}, or no operator {id} in it"),
            None => bail!("there is no MSP with id {msp}"),
        },
        other => other.context("creating the key")?,
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "msp_id": key.msp_id, "api_key": issued.expose(), "key_id": key.key_id, "role": key.role,
                "operator": key.operator,
            })
        );
    } else {
        println!(
            "Created a {} key for MSP {msp}, held by {:?} ({}) (shown once, store it now):\n{}",
            key.role,
            key.operator.name,
            key.operator.id,
            issued.expose()
        );
    }
    success()
}
