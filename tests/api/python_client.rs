//! A client generated from the served OpenAPI document with `openapi-python-client` gets a
//! named model for every JSON success answer of every operation, never `Any` or a dict: the
//! document types every body, so generated clients in any language do too.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::process::Command;

use crate::helpers::TestApp;
use crate::python::{run, venv_with};

const GENERATOR: &str = "openapi-python-client==0.29.1";
const CHECK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/python/check_client.py"
);

/// Every 2xx answer with a JSON body of `/api/v1` and `/hooks`, as `operationId`, status
/// and a label (the OpenAPI document itself is the one free-form object).
fn json_successes(doc: &Value) -> Vec<Value> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let Some(responses) = operation["responses"].as_object() else {
                continue;
            };
            for (status, response) in responses {
                let ours = path.starts_with("/api/v1/") || path.starts_with("/hooks/");
                if ours
                    && status.starts_with('2')
                    && response["content"].get("application/json").is_some()
                {
                    found.push(json!({
                        "operation_id": operation["operationId"],
                        "status": status.parse::<u16>().expect("status"),
                        "label": format!("{} {path}", method.to_uppercase()),
                    }));
                }
            }
        }
    }
    found
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_generated_python_client_has_a_model_for_every_success_answer(pool: PgPool) {
    let Some(bin) = venv_with("openapi-python-client-venv", &[GENERATOR]).await else {
        return;
    };
    let app = TestApp::spawn(pool).await;
    let doc: Value = app
        .request(Method::GET, "/api/openapi.json", None)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let expectations = json_successes(&doc);
    let api_answers = expectations
        .iter()
        .filter(|e| e["label"].as_str().is_some_and(|l| l.contains(" /api/v1/")))
        .count();
    assert!(
        api_answers >= 45,
        "only {api_answers} JSON success answers under /api/v1"
    );

    let work = tempfile::tempdir().expect("temp dir");
    let spec = work.path().join("openapi.json");
    std::fs::write(&spec, doc.to_string()).expect("write spec");
    let expected = work.path().join("expectations.json");
    std::fs::write(&expected, Value::from(expectations).to_string()).expect("write");
    let out = work.path().join("client");
    let generated = run(
        Command::new(bin.join("openapi-python-client"))
            .args(["generate", "--meta", "none", "--path"])
            .arg(&spec)
            .arg("--output-path")
            .arg(&out),
        Duration::from_secs(180),
        "openapi-python-client",
    )
    .await;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&generated.stdout),
        String::from_utf8_lossy(&generated.stderr)
    );
    assert!(generated.status.success(), "generation failed:\n{log}");
    // The only answers it may leave out are the ones that are not JSON (metrics, the
    // audit export, and the `.cer` certificate downloads).
    for line in log.lines().filter(|l| l.starts_with("WARNING parsing")) {
        assert!(
            line.contains("GET /metrics")
                || line.contains("GET /api/v1/audit-events/export")
                || line.contains("/certificate.cer "),
            "the generator skipped part of an operation: {line}\n{log}"
        );
    }
    let checked = run(
        Command::new(bin.join("python"))
            .arg(CHECK)
            .arg(&out)
            .arg(&expected),
        Duration::from_secs(60),
        "check_client.py",
    )
    .await;
    assert!(
        checked.status.success(),
        "success answers without a model:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
