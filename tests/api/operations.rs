//! Probes, metrics, the OpenAPI document and migrations.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{TestApp, assert_problem};

/// Every operation the API serves. Adding a route without documenting it, or documenting
/// one that is not served, fails a test below.
const OPERATIONS: [(&str, &str); 80] = [
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/openapi.json"),
    ("get", "/api/docs"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/api-keys"),
    ("post", "/api/v1/api-keys"),
    ("get", "/api/v1/api-keys/{id}"),
    ("delete", "/api/v1/api-keys/{id}"),
    ("get", "/api/v1/organizations"),
    ("post", "/api/v1/organizations"),
    ("get", "/api/v1/organizations/{id}"),
    ("patch", "/api/v1/organizations/{id}"),
    ("delete", "/api/v1/organizations/{id}"),
    ("post", "/api/v1/organizations/{id}/validate"),
    ("get", "/api/v1/organizations/{id}/validation"),
    ("put", "/api/v1/organizations/{id}/credentials"),
    ("get", "/api/v1/organizations/{id}/discovery-runs"),
    ("post", "/api/v1/organizations/{id}/discovery-runs"),
    ("get", "/api/v1/organizations/{id}/discovery-runs/{run}"),
    ("get", "/api/v1/organizations/{id}/users"),
    ("get", "/api/v1/organizations/{id}/users/{user}"),
    ("get", "/api/v1/organizations/{id}/groups"),
    ("get", "/api/v1/organizations/{id}/groups/{group}/members"),
    ("get", "/api/v1/organizations/{id}/directory-roles"),
    ("get", "/api/v1/organizations/{id}/licenses"),
    ("get", "/api/v1/organizations/{id}/applications"),
    ("get", "/api/v1/organizations/{id}/devices"),
    ("get", "/api/v1/organizations/{id}/approver-proposals"),
    ("get", "/api/v1/jobs"),
    ("get", "/api/v1/jobs/{id}"),
    ("post", "/api/v1/jobs/{id}/retry"),
    ("post", "/api/v1/jobs/{id}/cancel"),
    ("post", "/api/v1/organizations/{id}/actions"),
    ("get", "/api/v1/actions"),
    ("get", "/api/v1/actions/{id}"),
    ("post", "/api/v1/actions/{id}/approve"),
    ("post", "/api/v1/actions/{id}/deny"),
    ("post", "/api/v1/actions/{id}/reveal"),
    ("get", "/api/v1/organizations/{id}/policies"),
    ("get", "/api/v1/organizations/{id}/policies/{action}"),
    ("put", "/api/v1/organizations/{id}/policies/{action}"),
    ("get", "/api/v1/audit-events"),
    ("get", "/api/v1/audit-events/export"),
    ("get", "/api/v1/audit-events/verify"),
    ("get", "/api/v1/webhook-endpoints"),
    ("post", "/api/v1/webhook-endpoints"),
    ("get", "/api/v1/webhook-endpoints/{id}"),
    ("delete", "/api/v1/webhook-endpoints/{id}"),
    ("post", "/api/v1/webhook-endpoints/{id}/rotate-secret"),
    ("get", "/api/v1/webhook-events"),
    ("post", "/hooks/{endpoint}"),
    ("post", "/hooks/graph/{organization}"),
    ("get", "/api/v1/organizations/{id}/change-notifications"),
    ("put", "/api/v1/organizations/{id}/change-notifications"),
    ("get", "/api/v1/organizations/{id}/certificate.cer"),
    ("post", "/api/v1/certificates"),
    ("get", "/api/v1/certificates/{id}"),
    ("delete", "/api/v1/certificates/{id}"),
    ("get", "/api/v1/certificates/{id}/certificate.cer"),
    ("get", "/api/v1/partner-connections"),
    ("post", "/api/v1/partner-connections"),
    ("get", "/api/v1/partner-connections/{id}"),
    ("delete", "/api/v1/partner-connections/{id}"),
    ("put", "/api/v1/partner-connections/{id}/credentials"),
    ("post", "/api/v1/partner-connections/{id}/sync"),
    ("get", "/api/v1/partner-connections/{id}/customers"),
    ("get", "/api/v1/partner-connections/{id}/customers/{tenant}"),
    (
        "post",
        "/api/v1/partner-connections/{id}/customers/{tenant}/consent-link",
    ),
    ("post", "/api/v1/partner-connections/{id}/consent-links"),
    (
        "post",
        "/api/v1/partner-connections/{id}/customers/{tenant}/verify",
    ),
    ("post", "/api/v1/partner-connections/{id}/customers/connect"),
    ("get", "/consent/callback"),
    ("get", "/api/v1/partner-connections/{id}/certificate.cer"),
    ("get", "/api/v1/organizations/{id}/mailboxes"),
    ("get", "/api/v1/organizations/{id}/mailboxes/{mailbox}"),
    ("get", "/api/v1/organizations/{id}/users/{user}/inbox-rules"),
    ("get", "/api/v1/organizations/{id}/distribution-groups"),
    (
        "get",
        "/api/v1/organizations/{id}/distribution-groups/{group}/members",
    ),
];

async fn openapi(app: &TestApp) -> Value {
    let response = app
        .request(Method::GET, "/api/openapi.json", None)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .filter(|(method, _)| ["get", "post", "put", "patch", "delete"].contains(&method.as_str()))
        .collect()
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn the_openapi_document_lists_exactly_the_served_operations(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let doc = openapi(&app).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "OpenAPI 3.1: {}",
        doc["openapi"]
    );
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    let expected: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented(&doc), expected);
    if let Ok(path) = std::env::var("TENANTRY_WRITE_OPENAPI") {
        std::fs::write(path, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
    }
}

fn operations(doc: &Value) -> impl Iterator<Item = (String, String, &Value)> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .iter()
                .filter(|(method, _)| {
                    ["get", "post", "put", "patch", "delete"].contains(&method.as_str())
                })
                .map(move |(method, operation)| (method.clone(), path.clone(), operation))
        })
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn every_operation_has_a_unique_operation_id(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let doc = openapi(&app).await;
    let mut seen = std::collections::BTreeMap::new();
    for (method, path, operation) in operations(&doc) {
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
            .to_owned();
        if let Some(other) = seen.insert(id.clone(), format!("{method} {path}")) {
            panic!("operationId {id} is used by {other} and by {method} {path}");
        }
    }
    assert_eq!(seen.len(), OPERATIONS.len());
}

/// What the layers answer on every operation is documented on every operation: 401 and 429
/// where a key is needed, 400 for unreadable path and query parameters, 422 for query
/// values, 400/413/415/422 for bodies, 431 everywhere, 503 with `Retry-After` wherever
/// the database is read; and `limit` is declared as the range the server takes.
#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn every_operation_documents_the_answers_of_the_shared_layers(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let doc = openapi(&app).await;
    let mut missing = Vec::new();
    for (method, path, operation) in operations(&doc) {
        let responses = &operation["responses"];
        let params = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let has_in = |place: &str| params.iter().any(|p| p["in"] == place);
        let secured = operation["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        let body = operation.get("requestBody").is_some();
        let api = path.starts_with("/api/v1/");
        let mut expect = vec!["431"];
        if secured {
            expect.extend(["401", "429", "503"]);
        }
        if has_in("path") {
            expect.push("400");
        }
        if has_in("path") && secured {
            expect.push("404");
        }
        if has_in("query") {
            expect.extend(["400", "422"]);
        }
        if params
            .iter()
            .any(|p| p["in"] == "query" && p["name"] == "organization")
        {
            expect.push("404");
        }
        if body {
            expect.push("413");
        }
        if body && api {
            expect.extend(["400", "415", "422"]);
        }
        for status in expect {
            if responses.get(status).is_none() {
                missing.push(format!("{method} {path}: {status}"));
            }
        }
        for status in ["429", "503"] {
            if let Some(response) = responses.get(status)
                && response["headers"]["Retry-After"].is_null()
                && (secured || status == "503")
                && path != "/readyz"
            {
                missing.push(format!("{method} {path}: Retry-After on {status}"));
            }
        }
        for param in &params {
            if param["name"] == "limit" {
                let schema = &param["schema"];
                assert_eq!(schema["minimum"], 1, "{method} {path}: limit minimum");
                assert_eq!(schema["maximum"], 100, "{method} {path}: limit maximum");
            }
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented answers:\n{}",
        missing.join("\n")
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn every_api_operation_is_served_and_demands_a_key(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for (method, path) in OPERATIONS {
        let concrete = path
            .replace("{id}", &uuid::Uuid::now_v7().to_string())
            .replace("{endpoint}", &uuid::Uuid::now_v7().to_string())
            .replace("{organization}", &uuid::Uuid::now_v7().to_string());
        let response = app
            .request(
                Method::from_bytes(method.to_uppercase().as_bytes()).expect("method"),
                &concrete,
                None,
            )
            .send()
            .await
            .expect("sent");
        if path.starts_with("/api/v1/") {
            assert_problem(response, 401, "UNAUTHENTICATED").await;
        } else if path.starts_with("/hooks/graph/") {
            // Graph's notifications carry no key; a body-less POST is not JSON.
            assert_problem(response, 400, "INVALID_REQUEST").await;
        } else if path.starts_with("/hooks/") {
            // Authenticated by signature, not key: an unknown endpoint is simply not there.
            assert_problem(response, 404, "NOT_FOUND").await;
        } else if path == "/consent/callback" {
            // A browser's page, proven by its `state` alone: without one, a 400 page.
            assert_eq!(response.status(), 400, "{method} {path}");
            let html = response.text().await.expect("page");
            assert!(html.contains("<code>state</code>"), "{html}");
        } else {
            assert_eq!(response.status(), 200, "{method} {path}");
        }
    }
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn probes_metrics_and_docs_answer(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let health: Value = app
        .request(Method::GET, "/healthz", None)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
    let ready: Value = app
        .request(Method::GET, "/readyz", None)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["status"], "ready");

    let msp = app.create_msp("Contoso IT").await;
    assert_eq!(app.get("/api/v1/me", &msp.owner_key).await.status(), 200);
    let metrics = app
        .request(Method::GET, "/metrics", None)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(
            r#"tenantry_http_requests_total{method="GET",route="/api/v1/me",status="200"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("tenantry_http_request_duration_seconds_bucket"),
        "{metrics}"
    );

    let docs = app
        .request(Method::GET, "/api/docs", None)
        .send()
        .await
        .expect("sent");
    assert!(
        docs.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let html = docs.text().await.expect("html");
    assert!(html.contains("/api/v1/api-keys/{id}") && html.contains("/api/openapi.json"));
}

#[sqlx::test(migrations = false)]
async fn readiness_fails_until_migrations_are_applied_and_migrating_twice_is_harmless(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let response = app
        .request(Method::GET, "/readyz", None)
        .send()
        .await
        .expect("sent");
    let body = assert_problem(response, 503, "NOT_READY").await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("tenantry migrate")),
        "{body}"
    );

    tenantry_store::migrate(&pool)
        .await
        .expect("first migration");
    tenantry_store::migrate(&pool)
        .await
        .expect("second migration is a no-op");
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(applied as usize, tenantry_store::MIGRATOR.iter().count());
    let response = app
        .request(Method::GET, "/readyz", None)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
}

/// A database outage is the client's to retry: 503, `DATABASE_UNAVAILABLE`, `Retry-After`.
async fn assert_database_unavailable(response: reqwest::Response) {
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let body = assert_problem(response, 503, "DATABASE_UNAVAILABLE").await;
    let text = body.to_string().to_lowercase();
    for internal in ["sqlx", "pool", "postgres", "connection refused"] {
        assert!(
            !text.contains(internal),
            "503 body leaks {internal:?}: {body}"
        );
    }
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_closed_database_pool_answers_503_with_retry_after(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    assert_eq!(
        app.get("/api/v1/organizations", &msp.owner_key)
            .await
            .status(),
        200
    );
    app.pool.close().await;
    // Reads of the database (`/api/v1/me` may be answered from the key held in memory).
    assert_database_unavailable(app.get("/api/v1/organizations", &msp.owner_key).await).await;
    assert_database_unavailable(app.get("/api/v1/api-keys", &msp.owner_key).await).await;
}

/// Its own small cluster, since the test stops and restarts PostgreSQL under the API.
#[tokio::test]
async fn a_postgresql_restart_is_a_503_while_down_and_heals_after() {
    let cluster = tenantry::postgres::TempCluster::start().expect("a private cluster");
    // The service's own pool options: a connection is pinged only after sitting idle.
    let pool = tenantry_store::pool::options(4)
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect(&cluster.url())
        .await
        .expect("connect");
    tenantry_store::migrate(&pool).await.expect("migrate");
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    // Several connections sit idle in the pool when PostgreSQL goes away.
    let warm = concurrent_reads(&app, &msp.owner_key, 4).await;
    assert!(warm.iter().all(|s| *s == 200), "{warm:?}");

    cluster.cluster().stop().expect("stop PostgreSQL");
    assert_database_unavailable(app.get("/api/v1/organizations", &msp.owner_key).await).await;

    cluster.cluster().start().expect("start PostgreSQL again");
    // The pooled connections are stale now; none of them may surface as an error.
    let healed = concurrent_reads(&app, &msp.owner_key, 8).await;
    assert!(healed.iter().all(|s| *s == 200), "{healed:?}");
}

/// `n` concurrent `GET /api/v1/organizations` (a read of the database), their statuses.
async fn concurrent_reads(app: &TestApp, key: &str, n: usize) -> Vec<u16> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let request = app.request(Method::GET, "/api/v1/organizations", Some(key));
        tasks.spawn(async move { request.send().await.expect("sent").status().as_u16() });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.expect("joined"));
    }
    statuses
}
