//! HTTP conventions every endpoint shares: problem+json for every error (including those
//! axum and tower produce), request ids, body limits, CORS.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{TestApp, assert_problem};

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn framework_errors_are_problem_documents_too(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |config| config.body_limit_bytes = 1024).await;
    let msp = app.create_msp("Contoso IT").await;
    let key = msp.owner_key.as_str();

    let unknown_route = app.get("/api/v1/nothing-here", key).await;
    assert_problem(unknown_route, 404, "NOT_FOUND").await;

    let wrong_method = app
        .request(Method::PUT, "/api/v1/me", Some(key))
        .send()
        .await
        .expect("sent");
    assert!(
        wrong_method.headers().contains_key("allow"),
        "405 keeps its Allow header"
    );
    assert_problem(wrong_method, 405, "METHOD_NOT_ALLOWED").await;

    let bad_json = app
        .request(Method::POST, "/api/v1/api-keys", Some(key))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("sent");
    assert_problem(bad_json, 400, "INVALID_REQUEST").await;

    let not_json = app
        .request(Method::POST, "/api/v1/api-keys", Some(key))
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .expect("sent");
    assert_problem(not_json, 415, "UNSUPPORTED_MEDIA_TYPE").await;

    let huge = json!({"name": "x".repeat(4096), "role": "viewer"});
    let too_large = app.post_json("/api/v1/api-keys", key, huge).await;
    assert_problem(too_large, 413, "PAYLOAD_TOO_LARGE").await;
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn json_errors_do_not_echo_submitted_values(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let response = app
        .post_json(
            "/api/v1/api-keys",
            &msp.owner_key,
            json!({"name": ["s3cr3t-value"], "role": "viewer"}),
        )
        .await;
    let body = assert_problem(response, 422, "INVALID_REQUEST").await;
    assert!(!body.to_string().contains("s3cr3t-value"), "{body}");
    let response = app
        .post_json(
            "/api/v1/api-keys",
            &msp.owner_key,
            json!({"name": "ok", "role": "viewer", "organization_ids": "s3cr3t-value"}),
        )
        .await;
    let body = assert_problem(response, 422, "INVALID_REQUEST").await;
    assert!(!body.to_string().contains("s3cr3t-value"), "{body}");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn server_errors_carry_no_internal_detail(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    sqlx::query("drop table api_key cascade")
        .execute(&app.pool)
        .await
        .expect("drop");
    let response = app.get("/api/v1/me", &msp.owner_key).await;
    let body = assert_problem(response, 500, "INTERNAL_ERROR").await;
    let text = body.to_string().to_lowercase();
    for internal in ["api_key", "relation", "sqlx", "postgres", "does not exist"] {
        assert!(
            !text.contains(internal),
            "500 body leaks {internal:?}: {body}"
        );
    }
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn request_ids_are_kept_when_sane_and_made_otherwise(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let header = |response: &reqwest::Response| {
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let kept = app
        .request(Method::GET, "/healthz", None)
        .header("x-request-id", "psa-ticket-4711")
        .send()
        .await
        .expect("sent");
    assert_eq!(header(&kept).as_deref(), Some("psa-ticket-4711"));
    let replaced = app
        .request(Method::GET, "/healthz", None)
        .header("x-request-id", "x".repeat(500))
        .send()
        .await
        .expect("sent");
    let replaced = header(&replaced).expect("an id");
    assert!(uuid::Uuid::parse_str(&replaced).is_ok(), "{replaced}");
    let problem = app
        .request(Method::GET, "/api/v1/me", None)
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("sent");
    let body = assert_problem(problem, 401, "UNAUTHENTICATED").await;
    assert_eq!(body["request_id"], "abc-123");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn cors_allows_only_configured_dashboard_origins(pool: PgPool) {
    let preflight = |app: &TestApp, origin: &str| {
        app.request(Method::OPTIONS, "/api/v1/me", None)
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allow_origin = |response: &reqwest::Response| {
        response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };

    let closed = TestApp::spawn(pool.clone()).await;
    let response = preflight(&closed, "https://dashboard.example")
        .await
        .expect("sent");
    assert_eq!(
        allow_origin(&response),
        None,
        "no origin is allowed by default"
    );

    let open = TestApp::spawn_with(pool, |config| {
        config.cors_allowed_origins = vec!["https://dashboard.example".into()];
    })
    .await;
    let allowed = preflight(&open, "https://dashboard.example")
        .await
        .expect("sent");
    assert_eq!(
        allow_origin(&allowed).as_deref(),
        Some("https://dashboard.example")
    );
    let evil = preflight(&open, "https://evil.example")
        .await
        .expect("sent");
    assert_eq!(allow_origin(&evil), None);
    let msp = open.create_msp("Contoso IT").await;
    let actual = open
        .request(Method::GET, "/api/v1/me", Some(&msp.owner_key))
        .header("origin", "https://dashboard.example")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        allow_origin(&actual).as_deref(),
        Some("https://dashboard.example")
    );
    let exposed = actual
        .headers()
        .get("access-control-expose-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(exposed.contains("x-request-id"), "{exposed}");
    let _: Value = actual.json().await.expect("json");
}
