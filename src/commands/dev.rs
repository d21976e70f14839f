//! `tenantry dev`: the whole service on one machine with nothing to set up. A private
//! PostgreSQL cluster in the data folder (unless `TENANTRY__DATABASE__URL` is set),
//! generated secrets, a demo MSP with an owner key, and the API, until Ctrl-C. Everything
//! is kept in the data folder and reused by the next run, the demo key included.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::Connection;
use tenantry_api::Metrics;
use tenantry_domain::DisplayName;
use tenantry_graph_sim::GraphSim;
use tenantry_store::Store;

use super::serve::bind;
use super::{connect, load_settings, shutdown_channel, spawn_workers, success, until};
use crate::postgres::{ClusterError, DevCluster};
use crate::settings::Settings;

const DEMO_MSP_NAME: &str = "Demo MSP";

pub async fn run(json: bool) -> anyhow::Result<ExitCode> {
    let mut settings = load_settings(Some("dev"))?;
    let data_dir = settings.dev.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;

    let cluster = match &settings.database.url {
        Some(_) => None,
        None => Some(start_cluster(&data_dir).await?),
    };
    let database_url = match &cluster {
        Some(cluster) => cluster.url(),
        None => settings.database_url()?.clone(),
    };
    fill_dev_secrets(&mut settings, &data_dir)?;

    // Microsoft is the simulator, with the demo tenants; every Graph call of the service
    // goes there.
    // Beside them, the partner tenant "adatum" with six customers in different states
    // (docs/partner-mode.md).
    let mut demo = tenantry_graph_sim::scenario::demo();
    demo.tenants
        .extend(tenantry_graph_sim::scenario::partner_demo().tenants);
    let sim_addr = settings.dev.graph_sim_addr.clone();
    let sim = if settings.dev.graph_sim_tls {
        let options = tenantry_graph_sim::TlsOptions {
            ca_out: Some(data_dir.join("graph-sim-ca.pem")),
            ..Default::default()
        };
        GraphSim::start_tls(&sim_addr, demo, options)
            .await
            .with_context(|| format!("starting the Microsoft simulator on {sim_addr}"))?
    } else {
        GraphSim::start_on(&sim_addr, demo)
            .await
            .with_context(|| format!("starting the Microsoft simulator on {sim_addr}"))?
    };
    settings.microsoft.authority_url = sim.base_url();
    settings.microsoft.graph_url = sim.base_url();
    settings.microsoft.exchange_url = sim.base_url();

    let pool = connect(&settings.database, &database_url).await?;
    tenantry_store::migrate(&pool)
        .await
        .context("applying migrations")?;
    let store = Store::new(pool, settings.api_key_pepper()?).with_keyring(settings.keyring()?);
    let (msp_id, api_key) = demo_owner_key(&store, &data_dir).await?;

    let listener = bind(&settings).await?;
    let url = format!("http://{}", listener.local_addr()?);
    // The simulator delivers change notifications here.
    if settings.http.public_url.is_none() {
        settings.http.public_url = Some(url.clone());
    }
    // The partner app's consent page sends admins back to this service's callback.
    if let Some(public) = &settings.http.public_url
        && let Some(partner) = sim
            .state()
            .scenario()
            .tenants
            .iter()
            .find(|t| t.name == "adatum")
    {
        let callback = format!("{}/consent/callback", public.trim_end_matches('/'));
        sim.state()
            .set_redirect_uris("adatum", partner.app().client_id, vec![callback])
            .map_err(|e| anyhow::anyhow!("registering the consent callback: {e}"))?;
    }
    let extra_ca = match sim.ca_pem_path() {
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    let graph = super::graph_access(&settings, extra_ca)?;
    let shutdown = shutdown_channel();
    let workers = spawn_workers(
        super::job_context(&store, &graph, &settings),
        &settings,
        shutdown.clone(),
    );
    let key_watch = tenantry_api::spawn_key_watch(store.clone(), shutdown.clone());
    let app = tenantry_api::build(store, graph, &settings.http, Arc::new(Metrics::new()))?;
    let database = match &cluster {
        Some(cluster) => format!(
            "private PostgreSQL cluster in {} (127.0.0.1:{})",
            cluster.cluster().data_dir().display(),
            cluster.cluster().port()
        ),
        None => "TENANTRY__DATABASE__URL".to_owned(),
    };
    announce(json, &url, api_key.expose_secret(), msp_id, &database, &sim);

    let served = tenantry_api::serve(listener, app, until(shutdown)).await;
    let _ = workers.await;
    let _ = key_watch.await;
    sim.stop().await;
    // Dropping the cluster stops it when this process started it, or adopted it from a
    // `dev` that died (also on every early return above).
    drop(cluster);
    served?;
    success()
}

async fn start_cluster(data_dir: &Path) -> anyhow::Result<DevCluster> {
    let dir = data_dir.to_path_buf();
    let cluster = tokio::task::spawn_blocking(move || DevCluster::ensure(&dir)).await??;
    let mut admin = sqlx::PgConnection::connect(cluster.admin_url().expose_secret())
        .await
        .context("connecting to the private PostgreSQL cluster")?;
    let exists: bool =
        sqlx::query_scalar("select exists(select 1 from pg_database where datname = $1)")
            .bind(cluster.database())
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        // The name is our own constant, never input.
        let create = format!("create database \"{}\"", cluster.database());
        sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&mut admin)
            .await?;
    }
    Ok(cluster)
}

/// Secrets `dev` generates once and keeps in `<data dir>/secrets.json` (mode 0600), unless
/// the environment provides them.
#[derive(Serialize, Deserialize)]
struct DevSecrets {
    master_key: String,
    api_key_pepper: String,
}

fn fill_dev_secrets(settings: &mut Settings, data_dir: &Path) -> anyhow::Result<()> {
    let path = data_dir.join("secrets.json");
    // A secrets file that exists but cannot be read is an error, not a reason to make new
    // secrets: new ones would invalidate every API key issued so far.
    let stored: Option<DevSecrets> = match std::fs::read(&path) {
        Ok(bytes) => Some(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not valid", path.display()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let secrets = match stored {
        Some(secrets) => secrets,
        None => {
            let secrets = DevSecrets {
                master_key: random_base64()?,
                api_key_pepper: random_base64()?,
            };
            crate::postgres::write_private(&path, &serde_json::to_vec_pretty(&secrets)?)?;
            secrets
        }
    };
    let fill = |slot: &mut Option<SecretString>, value: String| {
        slot.get_or_insert_with(|| SecretString::from(value));
    };
    fill(&mut settings.secrets.master_key, secrets.master_key);
    fill(&mut settings.secrets.api_key_pepper, secrets.api_key_pepper);
    settings.check_master_key()?;
    Ok(())
}

fn random_base64() -> Result<String, ClusterError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ClusterError::Setup(format!("random source: {e}")))?;
    Ok(BASE64.encode(bytes))
}

/// The demo MSP's owner key: the one remembered in `<data dir>/dev-api-key` while it still
/// works, else a new one (creating the demo MSP on first run).
async fn demo_owner_key(
    store: &Store,
    data_dir: &Path,
) -> anyhow::Result<(uuid::Uuid, SecretString)> {
    let path = data_dir.join("dev-api-key");
    if let Ok(remembered) = std::fs::read_to_string(&path) {
        let remembered = remembered.trim().to_owned();
        if let Ok(principal) = store.authenticate(&remembered).await {
            return Ok((principal.msp_id().as_uuid(), SecretString::from(remembered)));
        }
    }
    let operator = store.operator();
    let (msp_id, issued) = match operator.find_msp_by_name(DEMO_MSP_NAME).await? {
        Some(msp) => {
            let new = tenantry_store::NewApiKey {
                name: DisplayName::parse("dev owner key")?,
                role: tenantry_domain::Role::Owner,
                organizations: tenantry_domain::OrganizationLimit::All,
                operator: tenantry_store::KeyHolder::New(DisplayName::parse("dev owner")?),
            };
            let (_, issued) = operator.create_key(msp.id, new).await?;
            (msp.id, issued)
        }
        None => {
            let (msp, _, issued) = operator
                .create_msp(
                    DisplayName::parse(DEMO_MSP_NAME)?,
                    DisplayName::parse("dev owner")?,
                )
                .await?;
            (msp.id, issued)
        }
    };
    crate::postgres::write_private(&path, issued.expose().as_bytes())?;
    Ok((
        msp_id.as_uuid(),
        SecretString::from(issued.expose().to_owned()),
    ))
}

fn announce(
    json: bool,
    url: &str,
    api_key: &str,
    msp_id: uuid::Uuid,
    database: &str,
    sim: &GraphSim,
) {
    let scenario = sim.state().scenario();
    let credentials = tenantry_graph_sim::credentials(&scenario);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "url": url,
                "api_key": api_key,
                "msp_id": msp_id,
                "database": database,
                "graph_sim_url": sim.base_url(),
                "demo_tenants": super::graph_sim::own_app_tenants(&credentials),
                "partners": credentials["partners"],
            })
        );
        return;
    }
    println!("Tenantry dev is running.");
    println!("  API:      {url}   (docs: {url}/api/docs)");
    println!("  API key:  {api_key}   (owner of \"{DEMO_MSP_NAME}\")");
    println!("  Database: {database}");
    println!();
    super::graph_sim::print_credentials(&sim.base_url(), &scenario);
    println!();
    println!("Try:  curl -H \"Authorization: Bearer {api_key}\" {url}/api/v1/me");
    println!("Stop with Ctrl-C.");
}
