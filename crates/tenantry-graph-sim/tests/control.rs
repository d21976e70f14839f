//! Throttling, injected faults, bearer checks, the request log and the control API.

mod common;

use std::time::{Duration, Instant};

use common::{Sim, assert_graph_error};
use reqwest::Method;
use serde_json::{Value, json};
use tenantry_graph_sim::TenantSpec;

#[tokio::test]
async fn a_burst_above_the_budget_gets_429_and_the_budget_refills() {
    let spec = TenantSpec::healthy("contoso", "Contoso Ltd", 20); // size S: 3,500 RU per 10 s
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    // 20 × GET /subscribedSkus (3 RU each) per batch; 59 batches exceed 3,500 RU.
    let requests: Vec<Value> = (0..20)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/subscribedSkus"}))
        .collect();
    let mut throttled = None;
    for _ in 0..200 {
        let body: Value = sim
            .send(
                &token,
                Method::POST,
                "/$batch",
                Some(json!({"requests": requests})),
            )
            .await
            .json()
            .await
            .expect("json");
        if let Some(item) = body["responses"]
            .as_array()
            .expect("responses")
            .iter()
            .find(|r| r["status"] == 429)
        {
            throttled = Some(item.clone());
            break;
        }
    }
    let item = throttled.expect("the budget runs out");
    let retry_after: f64 = item["headers"]["Retry-After"]
        .as_str()
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(
        retry_after > 0.0 && retry_after < 1.0,
        "fractional seconds: {retry_after}"
    );
    assert_eq!(item["body"]["error"]["code"], "TooManyRequests");

    // With budgets scaled down (3.5 RU per 10 s), a plain request shows the headers.
    let scaled = sim
        .client
        .put(sim.url("/_sim/throttle"))
        .json(&json!({"scale": 0.001}))
        .send()
        .await
        .expect("sent");
    assert_eq!(scaled.status(), 204);
    assert_eq!(sim.get(&token, "/users").await.status(), 200, "2 of 3.5 RU");
    let response = sim.get(&token, "/users").await;
    assert_eq!(response.status(), 429);
    let scope = response.headers()["x-ms-throttle-scope"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(
        scope,
        format!(
            "Tenant_Application/ReadWrite/{}/{}",
            spec.app().client_id,
            spec.id
        )
    );
    assert_eq!(
        response.headers()["x-ms-throttle-information"],
        "ResourceUnitLimitExceeded"
    );
    let wait: f64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("float");
    assert!(
        wait > 1.0 && wait < 1.5,
        "(2 − 1.5) RU at 0.35 RU/s: {wait}"
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["message"], "Please retry again later.");
    assert_eq!(body["error"]["innerError"]["code"], "429");
    assert_eq!(body["error"]["innerError"]["status"], "429");

    tokio::time::sleep(Duration::from_secs_f64(wait + 0.05)).await;
    let after = sim.get(&token, "/users").await;
    assert_eq!(after.status(), 200, "the budget refills");
    assert!(
        after
            .headers()
            .contains_key("x-ms-throttle-limit-percentage"),
        "usage above 80 % is announced"
    );
}

#[tokio::test]
async fn risky_users_allow_one_request_per_second_without_retry_after() {
    let spec = TenantSpec::healthy("contoso", "Contoso Ltd", 300)
        .with_permissions(&["IdentityRiskyUser.ReadWrite.All"]);
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let first: Value = sim
        .get(&token, "/identityProtection/riskyUsers")
        .await
        .json()
        .await
        .expect("json");
    let risky = first["value"].as_array().expect("value").clone();
    assert_eq!(risky.len(), 4, "users 5, 102, 199 and 296 of 300");
    assert_eq!(risky[0]["riskState"], "atRisk");
    let second = sim.get(&token, "/identityProtection/riskyUsers").await;
    assert_eq!(second.status(), 429);
    assert!(!second.headers().contains_key("retry-after"));
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let dismissed = sim
        .send(
            &token,
            Method::POST,
            "/identityProtection/riskyUsers/dismiss",
            Some(json!({"userIds": [risky[0]["id"]]})),
        )
        .await;
    assert_eq!(dismissed.status(), 204);
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let after: Value = sim
        .get(&token, "/identityProtection/riskyUsers")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(after["value"][0]["riskState"], "dismissed");
}

#[tokio::test]
async fn bad_tokens_are_refused_with_invalid_authentication_token() {
    let spec = TenantSpec::healthy("contoso", "Contoso Ltd", 20);
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let missing = sim
        .client
        .get(sim.url("/v1.0/users"))
        .send()
        .await
        .expect("sent");
    assert_graph_error(missing, 401, "InvalidAuthenticationToken").await;
    let mut tampered = token.clone();
    tampered.replace_range(tampered.len() - 6.., "AAAAAA");
    assert_graph_error(
        sim.get(&tampered, "/users").await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;
    assert_graph_error(
        sim.get("not.a.jwt", "/users").await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;
    assert_eq!(sim.get(&token, "/users").await.status(), 200);
}

#[tokio::test]
async fn injected_latency_errors_and_drops_hit_only_their_tenant() {
    let contoso = TenantSpec::healthy("contoso", "Contoso Ltd", 20);
    let fabrikam = TenantSpec::healthy("fabrikam", "Fabrikam Inc", 20);
    let sim = Sim::start(vec![contoso.clone(), fabrikam.clone()]).await;
    let token = sim.token(&contoso).await;
    let other = sim.token(&fabrikam).await;

    let put_faults = |faults: Value| sim.client.put(sim.url("/_sim/faults")).json(&faults).send();
    put_faults(json!({"tenants": {contoso.id.to_string(): {"latency_ms": 150}}}))
        .await
        .expect("sent");
    let started = Instant::now();
    assert_eq!(sim.get(&token, "/organization").await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    let started = Instant::now();
    assert_eq!(sim.get(&other, "/organization").await.status(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "other tenants are unaffected"
    );

    put_faults(
        json!({"tenants": {contoso.id.to_string(): {"error_rate": 1.0, "error_statuses": [503]}}}),
    )
    .await
    .expect("sent");
    let unavailable = sim.get(&token, "/organization").await;
    assert_eq!(unavailable.status(), 503);
    assert!(unavailable.headers().contains_key("retry-after"));

    put_faults(json!({"global": {"drop_rate": 1.0}}))
        .await
        .expect("sent");
    let dropped = sim
        .client
        .get(sim.url("/v1.0/organization"))
        .bearer_auth(&other)
        .send()
        .await;
    let failed = match dropped {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(failed, "the connection is cut");

    let reset = sim
        .client
        .post(sim.url("/_sim/reset"))
        .send()
        .await
        .expect("sent");
    assert_eq!(reset.status(), 204);
    assert_eq!(sim.get(&other, "/organization").await.status(), 200);
}

#[tokio::test]
async fn the_request_log_records_what_was_called() {
    let spec = TenantSpec::healthy("contoso", "Contoso Ltd", 20);
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    sim.get(&token, "/users?$top=5").await;
    sim.token_response(
        &spec.id.to_string(),
        &spec.app().client_id.to_string(),
        "bad",
    )
    .await;
    let log: Value = sim
        .client
        .get(sim.url("/_sim/requests"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let log = log.as_array().expect("records");
    assert_eq!(log.len(), 3);
    assert_eq!(log[1]["method"], "GET");
    assert_eq!(log[1]["path"], "/v1.0/users?$top=5");
    assert_eq!(log[1]["tenant"], spec.id.to_string());
    assert_eq!(log[1]["status"], 200);
    assert_eq!(log[2]["status"], 401);
    assert_eq!(
        sim.sim.requests().len(),
        3,
        "the in-process handle sees the same log"
    );
    let credentials: Value = sim
        .client
        .get(sim.url("/_sim/scenario"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        credentials["tenants"][0]["client_secret"],
        spec.secret_value()
    );
    assert_eq!(credentials["tenants"][0]["expect"], "healthy");
}
