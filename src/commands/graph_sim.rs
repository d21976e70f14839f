//! `tenantry graph-sim`: the Microsoft identity platform + Graph simulator on its own, for
//! trying scripts and SDKs against a safe stand-in.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use tenantry_graph_sim::{GraphSim, Scenario, TlsOptions};

use super::{load_settings, shutdown_signal, success};

/// `--tls` and its files.
pub struct TlsFiles {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca_out: Option<PathBuf>,
}

pub async fn run(
    scenario: &str,
    file: Option<&Path>,
    host: &str,
    port: u16,
    tls: Option<TlsFiles>,
) -> anyhow::Result<ExitCode> {
    load_settings(None)?;
    let loaded = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a scenario", path.display()))?
        }
        None => Scenario::by_name(scenario)
            .with_context(|| format!("unknown scenario {scenario:?}; known: demo, empty"))?,
    };
    let addr = format!("{host}:{port}");
    let sim = match tls {
        None => GraphSim::start_on(&addr, loaded)
            .await
            .with_context(|| format!("listening on {addr}"))?,
        Some(files) => GraphSim::start_tls(&addr, loaded, tls_options(files)?)
            .await
            .with_context(|| format!("serving HTTPS on {addr}"))?,
    };
    print_credentials(&sim.base_url(), &sim.state().scenario());
    if let Some(ca) = sim.ca_pem_path() {
        println!(
            "  TLS: trust {} (REQUESTS_CA_BUNDLE / SSL_CERT_FILE)",
            ca.display()
        );
    }
    println!("Stop with Ctrl-C.");
    shutdown_signal().await;
    sim.stop().await;
    success()
}

fn tls_options(files: TlsFiles) -> anyhow::Result<TlsOptions> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let cert_and_key_pem = match (files.cert, files.key) {
        (Some(cert), Some(key)) => Some((read(&cert)?, read(&key)?)),
        _ => None,
    };
    Ok(TlsOptions {
        cert_and_key_pem,
        ca_out: files.ca_out,
    })
}

/// The simulator's URL and what to paste for each demo tenant.
/// The tenants with an app registration of their own: every tenant but partner tenants
/// and their customers (which are reached through the partner's app, listed apart).
pub fn own_app_tenants(credentials: &serde_json::Value) -> Vec<serde_json::Value> {
    let partners = credentials["partners"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let in_partner_mode = |id: &serde_json::Value| {
        partners.iter().any(|p| {
            p["tenant_id"] == *id
                || p["customers"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["tenant_id"] == *id))
        })
    };
    credentials["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| !in_partner_mode(&t["tenant_id"]))
        .cloned()
        .collect()
}

pub fn print_credentials(base_url: &str, scenario: &Scenario) {
    println!("Microsoft simulator at {base_url}");
    println!(
        "  login authority: {base_url}/<tenant>   Graph: {base_url}/v1.0   control: {base_url}/_sim/"
    );
    let credentials = tenantry_graph_sim::credentials(scenario);
    for tenant in own_app_tenants(&credentials) {
        println!(
            "  {:<10} tenant {}  client {}  secret {}  ({})",
            tenant["name"].as_str().unwrap_or(""),
            tenant["tenant_id"].as_str().unwrap_or(""),
            tenant["client_id"].as_str().unwrap_or("-"),
            tenant["client_secret"].as_str().unwrap_or("-"),
            tenant["expect"].as_str().unwrap_or(""),
        );
    }
    for partner in credentials["partners"].as_array().into_iter().flatten() {
        println!(
            "  partner {:<10} tenant {}  client {}  secret {}  ({} GDAP customers; POST /api/v1/partner-connections)",
            partner["name"].as_str().unwrap_or(""),
            partner["tenant_id"].as_str().unwrap_or(""),
            partner["client_id"].as_str().unwrap_or("-"),
            partner["client_secret"].as_str().unwrap_or("-"),
            partner["customers"].as_array().map_or(0, Vec::len),
        );
    }
}
