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
async fn a_path_id_that_is_not_a_uuid_is_a_400_problem_for_every_id_type(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let key = msp.owner_key.as_str();
    let known = uuid::Uuid::now_v7();
    for path in [
        "/api/v1/organizations/not-a-uuid".to_owned(),
        "/api/v1/jobs/not-a-uuid".to_owned(),
        "/api/v1/actions/not-a-uuid".to_owned(),
        "/api/v1/api-keys/not-a-uuid".to_owned(),
        format!("/api/v1/organizations/{known}/discovery-runs/not-a-uuid"),
        "/api/v1/organizations/not-a-uuid/policies/password_reset".to_owned(),
    ] {
        assert_problem(app.get(&path, key).await, 400, "INVALID_REQUEST").await;
    }
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

/// The path with every `{parameter}` replaced by a fresh id.
fn path_with_ids(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |i| start + i + 1);
        out.push_str(&uuid::Uuid::now_v7().to_string());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A string parameter without a format (not an id, not a date): free text to the server.
fn is_free_text(schema: &Value) -> bool {
    let is_string = match &schema["type"] {
        Value::String(t) => t == "string",
        Value::Array(types) => types.iter().any(|t| t == "string"),
        _ => false,
    };
    is_string && schema.get("format").is_none()
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_nul_in_any_text_query_parameter_is_a_422_naming_it(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let doc: Value = app
        .request(Method::GET, "/api/openapi.json", None)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("document");
    let mut walked = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let Some(parameters) = item["get"]["parameters"].as_array() else {
            continue;
        };
        for parameter in parameters {
            if parameter["in"] != "query" || !is_free_text(&parameter["schema"]) {
                continue;
            }
            let name = parameter["name"].as_str().expect("name");
            let url = format!("{}?{name}=a%00b", path_with_ids(path));
            let response = app.get(&url, &msp.owner_key).await;
            let body = assert_problem(response, 422, "INVALID_REQUEST").await;
            assert_eq!(body["errors"][0]["field"], name, "{url}: {body}");
            walked.push(format!("{path}?{name}"));
        }
    }
    for expected in [
        "/api/v1/organizations/{id}/users?q",
        "/api/v1/organizations/{id}/users?department",
        "/api/v1/organizations/{id}/users?job_title",
        "/api/v1/organizations/{id}/groups?q",
        "/api/v1/jobs?kind",
        "/api/v1/audit-events?kind",
        "/api/v1/audit-events/export?kind",
    ] {
        assert!(
            walked.iter().any(|w| w == expected),
            "{expected} was not walked: {walked:?}"
        );
    }
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn json_bodies_with_duplicate_keys_are_refused_everywhere(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let organization = uuid::Uuid::now_v7();
    for (path, body) in [
        (
            format!("/api/v1/organizations/{organization}/actions"),
            r#"{"action": "revoke_sessions", "target": "a@contoso.example", "action": "mfa_reset"}"#,
        ),
        (
            format!("/api/v1/organizations/{organization}/actions"),
            r#"{"action": "revoke_sessions", "target": "a@contoso.example", "parameters": {"x": 1, "x": 2}}"#,
        ),
        (
            "/api/v1/api-keys".to_owned(),
            r#"{"name": "a", "role": "viewer", "name": "b"}"#,
        ),
    ] {
        let response = app
            .request(Method::POST, &path, Some(&msp.owner_key))
            .header("content-type", "application/json")
            .header("idempotency-key", "dup-1")
            .body(body)
            .send()
            .await
            .expect("sent");
        let problem = assert_problem(response, 422, "INVALID_REQUEST").await;
        assert!(
            problem.to_string().contains("duplicate"),
            "{path} {body}: {problem}"
        );
    }
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn json_bodies_in_another_charset_than_utf8_are_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let send = |content_type: &'static str| {
        app.request(Method::POST, "/api/v1/api-keys", Some(&msp.owner_key))
            .header("content-type", content_type)
            .body(r#"{"name": "charset", "role": "viewer"}"#)
            .send()
    };
    for refused in [
        "application/json; charset=utf-16",
        "application/json; charset=\"UTF-16LE\"",
        "application/json;charset=iso-8859-1",
    ] {
        let response = send(refused).await.expect("sent");
        assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    }
    for accepted in [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=\"UTF-8\"",
        "application/vnd.api+json",
    ] {
        let response = send(accepted).await.expect("sent");
        assert_eq!(response.status(), 201, "{accepted}");
    }
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn answers_that_hand_out_a_secret_are_not_stored_and_none_is_sniffed(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let cache_control = |response: &reqwest::Response| {
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let nosniff = |response: &reqwest::Response| {
        response
            .headers()
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok())
            == Some("nosniff")
    };

    let minted = app
        .post_json(
            "/api/v1/api-keys",
            &msp.owner_key,
            json!({"name": "PSA", "role": "viewer"}),
        )
        .await;
    assert_eq!(minted.status(), 201);
    assert_eq!(cache_control(&minted).as_deref(), Some("no-store"));
    assert!(nosniff(&minted));

    let created = app
        .post_json(
            "/api/v1/webhook-endpoints",
            &msp.owner_key,
            json!({"name": "SIEM", "rules": [{"event": "user.compromised", "actions": ["revoke_sessions"]}]}),
        )
        .await;
    assert_eq!(created.status(), 201);
    assert_eq!(cache_control(&created).as_deref(), Some("no-store"));
    let endpoint: Value = created.json().await.expect("endpoint");
    let id = endpoint["id"].as_str().expect("id");
    let rotated = app
        .post_json(
            &format!("/api/v1/webhook-endpoints/{id}/rotate-secret"),
            &msp.owner_key,
            json!({}),
        )
        .await;
    assert_eq!(rotated.status(), 200);
    assert_eq!(cache_control(&rotated).as_deref(), Some("no-store"));

    let me = app.get("/api/v1/me", &msp.owner_key).await;
    assert_eq!(me.status(), 200);
    assert!(nosniff(&me), "JSON answers carry nosniff");
    let problem = app.get("/api/v1/me", "hunter2").await;
    assert!(nosniff(&problem), "problem answers carry nosniff");
    let health = app
        .request(Method::GET, "/healthz", None)
        .send()
        .await
        .expect("sent");
    assert!(nosniff(&health));
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn oversized_request_headers_get_a_problem_document(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for (label, request) in [
        (
            "one 1 MiB header",
            app.request(Method::GET, "/healthz", None)
                .header("x-filler", "a".repeat(1024 * 1024)),
        ),
        (
            "many headers",
            (0..300).fold(app.request(Method::GET, "/healthz", None), |r, i| {
                r.header(format!("x-filler-{i}"), "a")
            }),
        ),
    ] {
        let response = request.send().await.expect("sent");
        let body = assert_problem(response, 431, "REQUEST_HEADERS_TOO_LARGE").await;
        assert!(body["detail"].is_string(), "{label}: {body}");
    }
    // The server keeps serving.
    let health = app
        .request(Method::GET, "/healthz", None)
        .send()
        .await
        .expect("sent");
    assert_eq!(health.status(), 200);
}
