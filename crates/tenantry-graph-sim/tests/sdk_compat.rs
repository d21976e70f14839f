//! Microsoft's own SDKs against the simulator over TLS: MSAL (tokens, the AADSTS error
//! table) and the Graph SDK for Python (`msgraph-sdk`: typed reads, paging, API errors).
//! They are the strictest clients there are; if they parse the simulator's answers, the
//! simulator is faithful.
//!
//! The SDKs are installed from PyPI into a throwaway virtual environment under the build's
//! temporary folder (reused by later runs of the same build folder). When PyPI cannot be
//! reached, the test says so on standard error and passes; any other failure fails it.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tenantry_graph_sim::{GraphSim, Scenario, TenantSpec, TlsOptions};
use tokio::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/msal_graph.py");

/// The virtual environment's python, installing the SDKs on first use; `None` when PyPI
/// is unreachable.
async fn sdk_python() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sdk-compat-venv");
    let python = venv.join("bin").join("python");
    let ready = venv.join("installed");
    if ready.exists() {
        return Some(python);
    }
    let created = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg("--clear")
        .arg(&venv)
        .output()
        .await;
    let created = created.expect("python3 runs (it is part of the machine's toolchain)");
    assert!(
        created.status.success(),
        "python3 -m venv failed: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let probe_dir = venv.join("probe");
    let probe = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--timeout",
            "30",
            "-d",
        ])
        .arg(&probe_dir)
        .arg("msal")
        .output()
        .await
        .expect("pip runs");
    if !probe.status.success() {
        eprintln!(
            "SKIPPED sdk_compat: PyPI is unreachable, so msal and msgraph-sdk cannot be installed:\n{}",
            String::from_utf8_lossy(&probe.stderr)
        );
        return None;
    }
    let install = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "msal",
            "msgraph-sdk",
        ])
        .output()
        .await
        .expect("pip runs");
    assert!(
        install.status.success(),
        "installing the SDKs failed: {}",
        String::from_utf8_lossy(&install.stderr)
    );
    std::fs::write(&ready, "msal msgraph-sdk\n").expect("marker");
    Some(python)
}

fn tenant_json(scenario: &Scenario, index: usize) -> String {
    tenantry_graph_sim::credentials(scenario)["tenants"][index].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_and_the_graph_sdk_work_against_the_simulator_over_tls() {
    let Some(python) = sdk_python().await else {
        return;
    };
    let healthy = TenantSpec::healthy("contoso", "Contoso Ltd", 250);
    let bare = TenantSpec::healthy("fabrikam", "Fabrikam Inc", 20)
        .without_permissions(&tenantry_graph_sim::permissions::DEFAULT_REQUIRED[..]);
    let scenario = Scenario {
        tenants: vec![healthy.clone(), bare],
    };
    let ca = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sdk-compat-ca.pem");
    let sim = GraphSim::start_tls(
        "127.0.0.1:0",
        scenario.clone(),
        TlsOptions {
            ca_out: Some(ca.clone()),
            ..TlsOptions::default()
        },
    )
    .await
    .expect("simulator starts over TLS");
    assert!(sim.base_url().starts_with("https://localhost:"));
    assert_eq!(sim.ca_pem_path(), Some(ca.as_path()));

    let output = Command::new(&python)
        .arg(SCRIPT)
        .env("SIM_URL", sim.base_url())
        .env("SIM_CA", &ca)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("SSL_CERT_FILE", &ca)
        .env("HEALTHY", tenant_json(&scenario, 0))
        .env("BARE", tenant_json(&scenario, 1))
        .output()
        .await
        .expect("the script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the SDK script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("one JSON line");
    assert_eq!(seen["token_type"], "Bearer");
    assert_eq!(seen["bad_error"], "invalid_client");
    assert_eq!(seen["bad_error_codes"], serde_json::json!([7000215]));
    assert_eq!(seen["organization"], serde_json::json!(["Contoso Ltd"]));
    assert_eq!(seen["organization_id"], healthy.id.to_string());
    assert_eq!(seen["users"], 250, "every user, across pages: {seen}");
    assert_eq!(seen["distinct_users"], 250);
    assert!(
        seen["pages"].as_u64().is_some_and(|p| p > 1),
        "more than one page: {seen}"
    );
    assert_eq!(seen["denied_status"], 403);
    assert_eq!(seen["denied_code"], "Authorization_RequestDenied");
    // The calls went through the simulator, over TLS.
    let paths: Vec<String> = sim.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        paths.iter().any(|p| p.starts_with("/v1.0/users")),
        "{paths:?}"
    );
    let _ = Path::new(SCRIPT);
}
