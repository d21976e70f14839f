//! MSP isolation: a second MSP's owner key walks every operation of the OpenAPI document,
//! aimed at the first MSP's objects, and must neither see nor change anything. A route
//! with a path parameter this test does not know fails the test, so every new route gets
//! its isolation checked.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use tenantry_domain::Role;

use crate::helpers::TestApp;

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn another_msps_key_sees_and_touches_nothing_on_any_route(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let victim = app.create_msp("Victim MSP").await;
    let (victim_admin_id, victim_admin_key) = app.key_for(&victim, Role::Admin).await;
    let attacker = app.create_msp("Attacker MSP").await;
    let connected: Value = app
        .post_json(
            "/api/v1/organizations",
            &victim.owner_key,
            app.connect_body("contoso"),
        )
        .await
        .json()
        .await
        .expect("json");
    let victim_org = connected["organization"]["id"]
        .as_str()
        .expect("org id")
        .to_owned();
    let victim_run = connected["discovery_run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    let run = app
        .finished_run(&victim.owner_key, &victim_org, &victim_run)
        .await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let first_id = |rows: Value| rows["data"][0]["id"].as_str().expect("an id").to_owned();
    let victim_user = first_id(
        app.get(
            &format!("/api/v1/organizations/{victim_org}/users?limit=1"),
            &victim.owner_key,
        )
        .await
        .json()
        .await
        .expect("users"),
    );
    let victim_group = first_id(
        app.get(
            &format!("/api/v1/organizations/{victim_org}/groups?limit=1"),
            &victim.owner_key,
        )
        .await
        .json()
        .await
        .expect("groups"),
    );
    // An action waiting for approval, and a changed policy, in the victim's organization.
    let (_, victim_technician) = app.key_for(&victim, Role::Technician).await;
    let policy = app
        .request(
            Method::PUT,
            &format!("/api/v1/organizations/{victim_org}/policies/revoke_sessions"),
            Some(&victim.owner_key),
        )
        .json(&json!({"privileged_guard": "require_approval"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(policy.status(), 200);
    let action: Value = app
        .request(
            Method::POST,
            &format!("/api/v1/organizations/{victim_org}/actions"),
            Some(&victim_technician),
        )
        .header("Idempotency-Key", "victim-1")
        .json(&json!({"action": "revoke_sessions", "target": victim_user}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("action");
    let victim_action = action["id"].as_str().expect("action id").to_owned();
    let endpoint: Value = app
        .post_json(
            "/api/v1/webhook-endpoints",
            &victim.owner_key,
            json!({"name": "victim SIEM", "organization_id": victim_org,
                "rules": [{"event": "user.compromised", "actions": ["revoke_sessions"]}]}),
        )
        .await
        .json()
        .await
        .expect("endpoint");
    let victim_endpoint = endpoint["id"].as_str().expect("endpoint id").to_owned();
    // A key pair generated for the victim, waiting to be used.
    let generated: Value = app
        .post_json("/api/v1/certificates", &victim.owner_key, json!({}))
        .await
        .json()
        .await
        .expect("generated certificate");
    let victim_certificate = generated["id"].as_str().expect("certificate id").to_owned();
    let victim_certificate_pem = generated["certificate_pem"]
        .as_str()
        .expect("pem")
        .lines()
        .nth(1)
        .expect("a PEM line")
        .to_owned();
    let victim_signing_secret = endpoint["signing_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let victim_job = first_id(
        app.get("/api/v1/jobs", &victim.owner_key)
            .await
            .json()
            .await
            .expect("jobs"),
    );

    let doc: Value = app
        .request(Method::GET, "/api/openapi.json", None)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let secrets_and_ids = [
        victim.id.to_string(),
        victim.name.clone(),
        victim.owner_key_id.to_string(),
        victim_admin_id.to_string(),
        victim.owner_key.clone(),
        victim_admin_key.clone(),
        victim_org.clone(),
        app.demo("contoso").id.to_string(),
        victim_run.clone(),
        victim_user.clone(),
        victim_group.clone(),
        victim_job.clone(),
        victim_action.clone(),
        victim_endpoint.clone(),
        victim_signing_secret.clone(),
        victim_certificate.clone(),
        victim_certificate_pem.clone(),
    ];
    let mut walked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            walked += 1;
            let has_params = path.contains('{');
            let fixture = if path.contains("/organizations/") {
                victim_org.clone()
            } else if path.starts_with("/api/v1/jobs/") {
                victim_job.clone()
            } else if path.starts_with("/api/v1/actions/") {
                victim_action.clone()
            } else if path.starts_with("/api/v1/webhook-endpoints/") {
                victim_endpoint.clone()
            } else if path.starts_with("/api/v1/certificates/") {
                victim_certificate.clone()
            } else {
                victim_admin_id.to_string()
            };
            let concrete = path
                .replace("{id}", &fixture)
                .replace("{run}", &victim_run)
                .replace("{user}", &victim_user)
                .replace("{group}", &victim_group)
                .replace("{action}", "password_reset")
                .replace("{endpoint}", &victim_endpoint)
                .replace("{organization}", &victim_org)
                .replace("{tenant}", &app.demo("contoso").id.to_string())
                .replace("{mailbox}", "probe@contoso.onmicrosoft.com");
            assert!(
                !concrete.contains('{'),
                "{method} {path}: add a victim fixture for this path parameter"
            );
            let http_method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let mut request = app.request(http_method, &concrete, Some(&attacker.owner_key));
            // A body each operation accepts, so the answer is about the id, not the body.
            let body = match (method, path.as_str()) {
                ("post", "/api/v1/api-keys") => Some(json!({"name": "probe", "role": "viewer"})),
                ("post", "/api/v1/organizations") => Some(app.connect_body("fabrikam")),
                ("patch", _) => Some(json!({"name": "probe"})),
                ("post", "/api/v1/webhook-endpoints") => Some(json!({"name": "probe",
                    "rules": [{"event": "probe", "actions": ["revoke_sessions"]}]})),
                ("post", "/hooks/{endpoint}") => {
                    Some(json!({"id": "probe", "type": "user.compromised", "target": victim_user}))
                }
                ("post", "/api/v1/organizations/{id}/actions") => {
                    Some(json!({"action": "revoke_sessions", "target": victim_user}))
                }
                ("put", "/api/v1/organizations/{id}/change-notifications") => {
                    Some(json!({"enabled": true}))
                }
                ("put", "/api/v1/organizations/{id}/policies/{action}") => {
                    Some(json!({"approval": "none"}))
                }
                ("put", "/api/v1/partner-connections/{id}/credentials") => {
                    Some(json!({"client_secret": "probe-secret"}))
                }
                ("post", "/api/v1/partner-connections/{id}/customers/connect") => {
                    Some(json!({"tenant_ids": [app.demo("contoso").id]}))
                }
                ("put", _) => Some(
                    json!({"client_id": uuid::Uuid::new_v4(), "client_secret": "probe-secret"}),
                ),
                _ => None,
            };
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.expect("sent");
            let status = response.status().as_u16();
            let body = response.text().await.expect("body");
            if path.starts_with("/hooks/graph/") {
                // Graph's receiver takes no key; without the clientState nothing happens.
                assert!(
                    status == 202 || status == 400,
                    "{method} {path}: {status} {body}"
                );
            } else if path.starts_with("/hooks/") {
                // The receiver takes no API key: whoever cannot sign is refused.
                assert_eq!(status, 401, "{method} {path}: {body}");
            } else if has_params {
                assert_eq!(
                    status, 404,
                    "{method} {path} with another MSP's id must be 404, got {status}: {body}"
                );
            }
            for needle in &secrets_and_ids {
                assert!(
                    !body.contains(needle.as_str()),
                    "{method} {path} leaked {needle:?}: {body}"
                );
            }
        }
    }
    assert!(
        walked >= 8,
        "the walk covered the API ({walked} operations)"
    );

    // The victim's generated certificate is still there.
    assert_eq!(
        app.get(
            &format!("/api/v1/certificates/{victim_certificate}"),
            &victim.owner_key
        )
        .await
        .status(),
        200
    );

    // The victim's keys are untouched and still work.
    assert_eq!(app.get("/api/v1/me", &victim_admin_key).await.status(), 200);
    let keys: Value = app
        .get("/api/v1/api-keys", &victim.owner_key)
        .await
        .json()
        .await
        .expect("json");
    let keys = keys["data"].as_array().expect("data");
    assert_eq!(keys.len(), 3, "nothing was added to the victim's MSP");
    assert!(keys.iter().all(|key| key["revoked_at"].is_null()));
}

/// Every list that takes `?organization=` answers an organization the key cannot see the
/// same way, whether it belongs to another MSP or does not exist at all: 404 NOT_FOUND,
/// as a path id would. The lists are found in the OpenAPI document, so a new one is
/// checked too.
#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn an_organization_filter_the_key_cannot_see_answers_404_on_every_list(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ours = app.create_msp("Our MSP").await;
    let theirs = app.create_msp("Their MSP").await;
    let own_org = app.insert_organization(&ours, "Contoso").await;
    let their_org = app.insert_organization(&theirs, "Fabrikam").await;
    let unknown = uuid::Uuid::now_v7();
    let doc: Value = app
        .request(Method::GET, "/api/openapi.json", None)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let mut lists = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let takes_organization = item["get"]["parameters"].as_array().is_some_and(|params| {
            params
                .iter()
                .any(|p| p["in"] == "query" && p["name"] == "organization")
        });
        if takes_organization {
            lists.push(path.clone());
        }
    }
    for expected in ["/api/v1/audit-events", "/api/v1/jobs", "/api/v1/actions"] {
        assert!(
            lists.iter().any(|p| p == expected),
            "{expected} in {lists:?}"
        );
    }
    for path in &lists {
        let own = app
            .get(&format!("{path}?organization={own_org}"), &ours.owner_key)
            .await;
        assert_eq!(own.status(), 200, "{path} with our own organization");
        for other in [their_org, unknown] {
            let response = app
                .get(&format!("{path}?organization={other}"), &ours.owner_key)
                .await;
            crate::helpers::assert_problem(response, 404, "NOT_FOUND").await;
        }
    }
}
