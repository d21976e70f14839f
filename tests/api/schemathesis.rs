//! Schemathesis against the real API: the served OpenAPI document, the real server over
//! a real PostgreSQL database, a connected organization (the simulator behind it) whose
//! inventory a discovery run has read, and an owner key. Every answer must be documented:
//! no server error, no undocumented status code or content type, no body that breaks its
//! schema.
//!
//! Bounded: every operation, `--max-examples 10` per operation over the examples, coverage
//! and fuzzing phases (no stateful phase), in positive and negative mode, with a hard
//! limit of five minutes (a run takes well under a minute). The reads' path ids are fixed
//! to real objects (the organization, a user, a group, the run, its job, an action, a
//! webhook endpoint, the key) so their success answers are checked, not only 404s; writes
//! get generated ids, so they answer 404 or refuse the body and never delete the
//! organization or revoke the key in use. The failed-authentication limit is raised so
//! requests without a valid key keep getting 401, not 429.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::process::Command;

use crate::helpers::TestApp;
use crate::python::{run, venv_with};

pub const SCHEMATHESIS: &str = "schemathesis==4.32.5";
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn schemathesis_finds_every_answer_documented(pool: PgPool) {
    let Some(bin) = venv_with("schemathesis-venv", &[SCHEMATHESIS]).await else {
        return;
    };
    let app = TestApp::spawn_with(pool, |config| {
        config.auth_failures_per_minute = 1_000_000;
    })
    .await;
    let msp = app.create_msp("Schemathesis MSP").await;
    let connected: Value = app
        .post_json(
            "/api/v1/organizations",
            &msp.owner_key,
            app.connect_body("contoso"),
        )
        .await
        .json()
        .await
        .expect("json");
    let org = connected["organization"]["id"]
        .as_str()
        .expect("org id")
        .to_owned();
    let run_id = connected["discovery_run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    let scan = app.finished_run(&msp.owner_key, &org, &run_id).await;
    assert_eq!(scan["state"], "succeeded", "{scan}");
    let first_id = |rows: Value| rows["data"][0]["id"].as_str().expect("an id").to_owned();
    let user = first_id(
        app.get(
            &format!("/api/v1/organizations/{org}/users?limit=1"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("users"),
    );
    let group = first_id(
        app.get(
            &format!("/api/v1/organizations/{org}/groups?limit=1"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("groups"),
    );
    let job = scan["job_id"].as_str().expect("job id").to_owned();
    // A pending action (the first users may hold privileged roles, which are refused).
    let users: Value = app
        .get(
            &format!("/api/v1/organizations/{org}/users?limit=20"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("users");
    let mut action = None;
    for (n, candidate) in users["data"].as_array().expect("users").iter().enumerate() {
        let response = app
            .request(
                Method::POST,
                &format!("/api/v1/organizations/{org}/actions"),
                Some(&msp.owner_key),
            )
            .header("Idempotency-Key", format!("schemathesis-{n}"))
            .json(&json!({"action": "password_reset", "target": candidate["id"], "requested_by": "Schemathesis"}))
            .send()
            .await
            .expect("sent");
        if response.status() == 201 {
            let body: Value = response.json().await.expect("action");
            action = body["id"].as_str().map(str::to_owned);
            break;
        }
    }
    let action = action.expect("some user takes a password reset");
    let endpoint: Value = app
        .post_json(
            "/api/v1/webhook-endpoints",
            &msp.owner_key,
            json!({"name": "SIEM", "rules": [
                {"event": "user.compromised", "actions": ["revoke_sessions"], "approval": "policy"}
            ]}),
        )
        .await
        .json()
        .await
        .expect("endpoint");
    let endpoint = endpoint["id"].as_str().expect("endpoint id").to_owned();
    let key = msp.owner_key_id;

    // Real ids for the reads; writes get generated ones (so they answer 404 or refuse
    // the body, and never delete the organization or revoke the key in use).
    let work = tempfile::tempdir().expect("temp dir");
    let config = work.path().join("schemathesis.toml");
    let fixed = |path_regex: &str, parameters: String| {
        format!(
            "[[operations]]\ninclude-name-regex = '^GET {path_regex}'\nparameters = {{ {parameters} }}\n\n"
        )
    };
    let toml = [
        fixed(
            r"/api/v1/organizations/\{id\}",
            format!(
                r#""path.id" = "{org}", "path.user" = "{user}", "path.group" = "{group}", "path.run" = "{run_id}", "path.action" = "password_reset""#
            ),
        ),
        fixed(r"/api/v1/jobs/\{id\}$", format!(r#""path.id" = "{job}""#)),
        fixed(r"/api/v1/actions/\{id\}$", format!(r#""path.id" = "{action}""#)),
        fixed(
            r"/api/v1/webhook-endpoints/\{id\}$",
            format!(r#""path.id" = "{endpoint}""#),
        ),
        fixed(r"/api/v1/api-keys/\{id\}$", format!(r#""path.id" = "{key}""#)),
    ]
    .concat();
    std::fs::write(&config, toml).expect("config");
    // Reads first, with the real ids; then every other method, with generated ids only.
    let reads = schemathesis(
        &bin,
        &app,
        &msp.owner_key,
        work.path(),
        Some(&config),
        "GET",
    )
    .await;
    let writes = schemathesis(
        &bin,
        &app,
        &msp.owner_key,
        work.path(),
        None,
        "POST|PUT|PATCH|DELETE",
    )
    .await;
    // The reads reached the real objects, so their success answers were checked.
    let report = std::fs::read_dir(work.path().join("report-GET"))
        .expect("report folder")
        .map(|entry| std::fs::read_to_string(entry.expect("entry").path()).expect("report"))
        .collect::<String>();
    let missed: Vec<String> = [
        format!("/api/v1/organizations/{org}/users/{user}"),
        format!("/api/v1/organizations/{org}/groups/{group}/members"),
        format!("/api/v1/organizations/{org}/discovery-runs/{run_id}"),
        format!("/api/v1/organizations/{org}/policies/password_reset"),
        format!("/api/v1/jobs/{job}"),
        format!("/api/v1/actions/{action}"),
        format!("/api/v1/webhook-endpoints/{endpoint}"),
        format!("/api/v1/api-keys/{key}"),
    ]
    .into_iter()
    .filter(|path| !report.contains(&format!("{path}\"")) && !report.contains(&format!("{path}?")))
    .collect();
    for (what, (ok, log)) in [("reads", reads), ("writes", writes)] {
        eprintln!("schemathesis over the {what}:\n{log}");
        assert!(
            ok,
            "schemathesis found {what} answering what the document does not declare:\n{log}"
        );
    }
    assert!(missed.is_empty(), "schemathesis never read {missed:?}");
    // The writes were tested with a working key, not answered 401 throughout.
    assert_eq!(app.get("/api/v1/me", &msp.owner_key).await.status(), 200);
}

/// One bounded schemathesis run over the operations whose method matches `methods`.
async fn schemathesis(
    bin: &Path,
    app: &TestApp,
    key: &str,
    dir: &Path,
    config: Option<&Path>,
    methods: &str,
) -> (bool, String) {
    let mut command = Command::new(bin.join("schemathesis"));
    if let Some(config) = config {
        command.arg("--config-file").arg(config);
    }
    let output = run(
        command
            .arg("run")
            .arg(format!("{}/api/openapi.json", app.url))
            .args(["--url", &app.url])
            .args(["--header", &format!("Authorization: Bearer {key}")])
            .args(["--checks", CHECKS])
            .args(["--include-method-regex", &format!("^({methods})$")])
            // It would revoke the key in use: schemathesis reuses ids from answers, and a
            // key it creates (`created_by`) names the one it runs with. Its answers are
            // covered by tests/api/api_keys.rs.
            .args(["--exclude-name", "DELETE /api/v1/api-keys/{id}"])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--mode", "all"])
            .args(["--max-examples", "10"])
            .args(["--seed", "1"])
            // One worker: hypothesis parses lambda sources with `ast`, which is not safe
            // across threads in CPython 3.11 ("AST constructor recursion depth mismatch").
            .args(["--workers", "1"])
            .args(["--request-timeout", "30"])
            .args(["--suppress-health-check", "all"])
            .args(["--no-color"])
            .args(["--report", "ndjson", "--report-dir"])
            .arg(dir.join(format!("report-{}", methods.replace('|', "-"))))
            .current_dir(dir),
        Duration::from_secs(240),
        "schemathesis",
    )
    .await;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), log)
}
