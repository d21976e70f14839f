//! What the scale benches set up alike: the store with the benches' secrets, an MSP with
//! its owner key, and the simulator in its own process.

// Each bench uses only part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use sqlx::PgPool;
use tenantry_domain::DisplayName;
use tenantry_domain::OrganizationId;
use tenantry_graph_sim::Scenario;
use tenantry_store::{ApiKeyPepper, MspScope, NewOrganization, Principal, Store};

/// The API-key pepper and master key of every bench (and of the processes they start).
pub const PEPPER: [u8; 32] = [9; 32];
pub const MASTER_KEY: [u8; 32] = [7; 32];

pub fn store(pool: &PgPool) -> Store {
    Store::new(
        pool.clone(),
        ApiKeyPepper::new(PEPPER.to_vec()).expect("pepper"),
    )
    .with_keyring(tenantry_store::sealing::Keyring::new(&MASTER_KEY, &[]).expect("keyring"))
}

/// A new MSP and its owner key: the key as a caller presents it, and who it is.
pub async fn msp(store: &Store, name: &str) -> (String, Principal) {
    let (_, _, issued) = store
        .operator()
        .create_msp(
            DisplayName::parse(name).expect("name"),
            DisplayName::parse("Bench owner").expect("name"),
        )
        .await
        .expect("msp");
    let key = issued.expose().to_owned();
    let principal = store.authenticate(&key).await.expect("key");
    (key, principal)
}

/// Connects every tenant of `scenario` as a validated organization with `report` (each
/// queues its first scan); returns their ids in the scenario's order.
pub async fn connect_all(
    scope: &MspScope<'_>,
    scenario: &Scenario,
    report: &serde_json::Value,
) -> Vec<OrganizationId> {
    let mut ids = Vec::new();
    for tenant in &scenario.tenants {
        let (organization, _) = scope
            .create_organization(NewOrganization {
                name: DisplayName::parse(&tenant.display_name).expect("name"),
                tenant_id: tenant.id,
                client_id: tenant.app().client_id,
                credential: tenantry_domain::AppCredential::Secret(
                    tenant.secret_value().to_owned().into(),
                ),
                generated_certificate: None,
                status: "connected".into(),
                report: report.clone(),
            })
            .await
            .expect("organization");
        ids.push(organization.id);
    }
    ids
}

/// `tenantry graph-sim` serving `scenario` on a free port; stopped on drop.
pub struct Simulator {
    pub base: String,
    child: Child,
    scenario_path: PathBuf,
}

impl Simulator {
    pub fn start(scenario: &Scenario) -> Self {
        let scenario_path =
            std::env::temp_dir().join(format!("bench-scenario-{}.json", std::process::id()));
        std::fs::write(&scenario_path, serde_json::to_vec(scenario).expect("json")).expect("write");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tenantry"))
            .args(["graph-sim", "--port", "0", "--scenario-file"])
            .arg(&scenario_path)
            .env("TENANTRY__LOG__FILTER", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("simulator starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().expect("a line").expect("readable");
        // Keep reading: the simulator prints a line per tenant, and a closed pipe would
        // stop it.
        std::thread::spawn(move || lines.for_each(drop));
        let base = first
            .strip_prefix("Microsoft simulator at ")
            .expect("the simulator's URL")
            .trim()
            .to_owned();
        Self {
            base,
            child,
            scenario_path,
        }
    }

    /// The simulator's process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.scenario_path);
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop();
    }
}
