//! Signed remediation webhooks, end to end: an event runs its playbook against the
//! simulator; bad signatures, stale timestamps, unknown endpoints, oversized bodies and
//! replays are refused or deduplicated with nothing executed; rules under an approval
//! policy wait for a person.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::PgPool;
use tenantry_domain::Role;

use crate::helpers::{TestApp, assert_problem, connect, sim_calls, sim_user};

/// Creates an endpoint; returns (id, signing secret).
pub(crate) async fn endpoint(app: &TestApp, key: &str, body: Value) -> (String, String) {
    let response = app.post_json("/api/v1/webhook-endpoints", key, body).await;
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let created: Value = response.json().await.expect("endpoint");
    (
        created["id"].as_str().expect("id").to_owned(),
        created["signing_secret"]
            .as_str()
            .expect("secret")
            .to_owned(),
    )
}

fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

async fn deliver(
    app: &TestApp,
    endpoint: &str,
    signature: Option<String>,
    body: &[u8],
) -> reqwest::Response {
    let mut request = app
        .request(Method::POST, &format!("/hooks/{endpoint}"), None)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("Tenantry-Signature", signature);
    }
    request.send().await.expect("sent")
}

pub(crate) async fn deliver_signed(
    app: &TestApp,
    endpoint: &str,
    secret: &str,
    event: &Value,
) -> reqwest::Response {
    let body = serde_json::to_vec(event).expect("json");
    let now = chrono::Utc::now().timestamp();
    let signature = format!("t={now},v1={}", sign(secret, now, &body));
    deliver(app, endpoint, Some(signature), &body).await
}

/// A delivery as the API lists it.
pub(crate) async fn event(app: &TestApp, key: &str, id: &str) -> Value {
    let page: Value = app
        .get("/api/v1/webhook-events?limit=100", key)
        .await
        .json()
        .await
        .expect("events");
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|e| e["id"] == id)
        .cloned()
        .expect("the delivery is listed")
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_signed_alert_runs_its_playbook_in_order_against_the_tenant(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Remediating MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    let (user_id, upn) = sim_user(&app, "contoso", 4).await;
    let (id, secret) = endpoint(&app, &msp.owner_key, json!({"name": "Sentinel", "organization_id": org,
        "rules": [{"event": "user.compromised", "actions": ["revoke_sessions", "password_reset", "mfa_reset"], "approval": "none"}]})).await;
    assert!(secret.starts_with("whsec_"));
    let listed: Value = app
        .get(&format!("/api/v1/webhook-endpoints/{id}"), &msp.owner_key)
        .await
        .json()
        .await
        .expect("endpoint");
    assert!(
        listed.get("signing_secret").is_none(),
        "the secret is shown once"
    );

    let response = deliver_signed(
        &app,
        &id,
        &secret,
        &json!({"id": "alert-1", "type": "user.compromised",
        "occurred_at": "2026-11-22T09:00:00Z", "target": upn, "data": {"severity": "high"}}),
    )
    .await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.expect("accepted");
    assert_eq!(accepted["state"], "accepted");
    let delivery = accepted["id"].as_str().expect("id").to_owned();

    app.run_pending_jobs().await;
    let done = event(&app, &msp.owner_key, &delivery).await;
    assert_eq!(done["state"], "completed", "{done}");
    let steps = done["outcome"].as_array().expect("outcome");
    assert_eq!(steps.len(), 3);
    assert!(steps.iter().all(|s| s["state"] == "succeeded"), "{steps:?}");
    assert_eq!(
        sim_calls(
            &app,
            "POST",
            &format!("/users/{user_id}/revokeSignInSessions")
        ),
        1
    );
    assert_eq!(sim_calls(&app, "PATCH", &format!("/users/{user_id}")), 1);
    assert_eq!(
        sim_calls(&app, "DELETE", &format!("/users/{user_id}/authentication/")),
        2
    );

    // In order: each step started after the one before it ended.
    let mut previous_end: Option<String> = None;
    for step in steps {
        let action: Value = app
            .get(
                &format!(
                    "/api/v1/actions/{}",
                    step["action_id"].as_str().expect("id")
                ),
                &msp.owner_key,
            )
            .await
            .json()
            .await
            .expect("action");
        assert_eq!(action["requester"]["kind"], "webhook");
        if let Some(end) = &previous_end {
            assert!(
                action["created_at"].as_str().expect("created") >= end.as_str(),
                "{action}"
            );
        }
        previous_end = action["finished_at"].as_str().map(str::to_owned);
    }
    let audit = app
        .get("/api/v1/audit-events?kind=action.requested", &msp.owner_key)
        .await
        .json::<Value>()
        .await
        .expect("audit");
    assert_eq!(audit["data"][0]["actor"]["type"], "webhook_endpoint");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn forged_stale_oversized_unknown_and_replayed_deliveries_do_nothing(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), |c| c.body_limit_bytes = 256 * 1024).await;
    let msp = app.create_msp("Careful MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    let (_, upn) = sim_user(&app, "contoso", 9).await;
    let (id, secret) = endpoint(&app, &msp.owner_key, json!({"name": "PSA", "organization_id": org,
        "rules": [{"event": "user.compromised", "actions": ["revoke_sessions"], "approval": "none"}]})).await;
    let event = json!({"id": "evt-7", "type": "user.compromised", "target": upn});
    let body = serde_json::to_vec(&event).expect("json");
    let now = chrono::Utc::now().timestamp();

    assert_problem(
        deliver(&app, &id, None, &body).await,
        401,
        "WEBHOOK_SIGNATURE_INVALID",
    )
    .await;
    let forged = format!("t={now},v1={}", sign("whsec_not-the-secret", now, &body));
    assert_problem(
        deliver(&app, &id, Some(forged), &body).await,
        401,
        "WEBHOOK_SIGNATURE_INVALID",
    )
    .await;
    let tampered = format!("t={now},v1={}", sign(&secret, now, b"{\"id\":\"other\"}"));
    assert_problem(
        deliver(&app, &id, Some(tampered), &body).await,
        401,
        "WEBHOOK_SIGNATURE_INVALID",
    )
    .await;
    let old = now - 301;
    let stale = format!("t={old},v1={}", sign(&secret, old, &body));
    assert_problem(
        deliver(&app, &id, Some(stale), &body).await,
        401,
        "WEBHOOK_TIMESTAMP_STALE",
    )
    .await;
    let unknown = uuid::Uuid::now_v7();
    let signed = format!("t={now},v1={}", sign(&secret, now, &body));
    assert_problem(
        deliver(&app, &unknown.to_string(), Some(signed.clone()), &body).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let big = json!({"id": "evt-big", "type": "user.compromised", "target": upn, "data": {"blob": "x".repeat(70 * 1024)}});
    let big = serde_json::to_vec(&big).expect("json");
    let big_signature = format!("t={now},v1={}", sign(&secret, now, &big));
    assert_problem(
        deliver(&app, &id, Some(big_signature), &big).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    let invalid = serde_json::to_vec(&json!({"type": "user.compromised"})).expect("json");
    let invalid_signature = format!("t={now},v1={}", sign(&secret, now, &invalid));
    assert_problem(
        deliver(&app, &id, Some(invalid_signature), &invalid).await,
        422,
        "INVALID_REQUEST",
    )
    .await;
    let stored: i64 = sqlx::query_scalar("select count(*) from webhook_event")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(stored, 0, "nothing refused was stored");

    // Several signatures, one of them right (a sender rotating its secret): accepted once;
    // the replay answers with the first delivery and queues nothing.
    let two = format!(
        "t={now},v1={},v1={}",
        sign("whsec_old", now, &body),
        sign(&secret, now, &body)
    );
    let first = deliver(&app, &id, Some(two.clone()), &body).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.expect("first");
    let replay = deliver(&app, &id, Some(two), &body).await;
    assert_eq!(replay.status(), 200);
    let replay: Value = replay.json().await.expect("replay");
    assert_eq!(replay["id"], first["id"]);
    assert_eq!(replay["duplicate"], true);
    let (events, jobs): (i64, i64) = sqlx::query_as(
        "select (select count(*) from webhook_event), (select count(*) from job where kind = 'webhook_event')",
    )
    .fetch_one(&pool)
    .await
    .expect("counts");
    assert_eq!((events, jobs), (1, 1));
    let actions: i64 = sqlx::query_scalar("select count(*) from action_request")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(
        actions, 0,
        "no worker ran; nothing was executed by the receiver"
    );

    // Rotation: the old secret keeps working for a day, the new one at once.
    let rotated: Value = app
        .post_json(
            &format!("/api/v1/webhook-endpoints/{id}/rotate-secret"),
            &msp.owner_key,
            json!({}),
        )
        .await
        .json()
        .await
        .expect("rotated");
    let new_secret = rotated["signing_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert_ne!(new_secret, secret);
    let with_old = deliver_signed(
        &app,
        &id,
        &secret,
        &json!({"id": "evt-8", "type": "user.compromised", "target": upn}),
    )
    .await;
    assert_eq!(with_old.status(), 202);
    let with_new = deliver_signed(
        &app,
        &id,
        &new_secret,
        &json!({"id": "evt-9", "type": "user.compromised", "target": upn}),
    )
    .await;
    assert_eq!(with_new.status(), 202);

    // A revoked endpoint is unknown.
    let (_, technician) = app.key_for(&msp, Role::Technician).await;
    assert_problem(
        app.delete(&format!("/api/v1/webhook-endpoints/{id}"), &technician)
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_eq!(
        app.delete(&format!("/api/v1/webhook-endpoints/{id}"), &msp.owner_key)
            .await
            .status(),
        200
    );
    let after = deliver_signed(
        &app,
        &id,
        &new_secret,
        &json!({"id": "evt-10", "type": "user.compromised", "target": upn}),
    )
    .await;
    assert_problem(after, 404, "NOT_FOUND").await;

    // Rules are checked when the endpoint is made.
    let bad = app
        .post_json(
            "/api/v1/webhook-endpoints",
            &msp.owner_key,
            json!({"name": "x",
        "rules": [{"event": "user.compromised", "actions": ["grant_access"]}]}),
        )
        .await;
    let problem = assert_problem(bad, 422, "INVALID_REQUEST").await;
    assert_eq!(problem["errors"][0]["field"], "rules[0].actions");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_rule_under_the_approval_policy_waits_for_a_person_then_goes_on(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Cautious MSP").await;
    let (_, admin) = app.key_for(&msp, Role::Admin).await;
    let org = connect(&app, &msp, "contoso").await;
    let (user_id, upn) = sim_user(&app, "contoso", 11).await;
    let tenant = app.demo("contoso").id;
    // MSP-wide: the event names its organization by tenant id.
    let (id, secret) = endpoint(
        &app,
        &msp.owner_key,
        json!({"name": "SIEM",
        "rules": [{"event": "user.risky", "actions": ["disable_account", "revoke_sessions"]}]}),
    )
    .await;
    let nameless = deliver_signed(
        &app,
        &id,
        &secret,
        &json!({"id": "r-0", "type": "user.risky", "target": upn}),
    )
    .await;
    let problem = assert_problem(nameless, 422, "INVALID_REQUEST").await;
    assert_eq!(problem["errors"][0]["field"], "organization");

    let accepted: Value = deliver_signed(
        &app,
        &id,
        &secret,
        &json!({"id": "r-1", "type": "user.risky", "tenant_id": tenant, "target": upn}),
    )
    .await
    .json()
    .await
    .expect("accepted");
    let delivery = accepted["id"].as_str().expect("id").to_owned();
    app.run_pending_jobs().await;
    let waiting = event(&app, &msp.owner_key, &delivery).await;
    assert_eq!(waiting["state"], "waiting_for_approval", "{waiting}");
    assert_eq!(waiting["outcome"][0]["state"], "pending_approval");
    assert_eq!(
        waiting["outcome"].as_array().expect("outcome").len(),
        1,
        "the next step waits"
    );
    assert_eq!(sim_calls(&app, "PATCH", &user_id), 0);
    assert_eq!(waiting["organization_id"], org.as_str());

    let action = waiting["outcome"][0]["action_id"].as_str().expect("action");
    let approved = app
        .post_json(
            &format!("/api/v1/actions/{action}/approve"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(approved.status(), 200);
    app.run_pending_jobs().await;
    let parked_again = event(&app, &msp.owner_key, &delivery).await;
    assert_eq!(
        parked_again["state"], "waiting_for_approval",
        "{parked_again}"
    );
    // The second step needs its own approval, again by a person.
    assert_eq!(
        parked_again["outcome"].as_array().expect("outcome").len(),
        2,
        "{parked_again}"
    );
    let second = parked_again["outcome"][1]["action_id"]
        .as_str()
        .expect("action")
        .to_owned();
    let approved = app
        .post_json(
            &format!("/api/v1/actions/{second}/approve"),
            &msp.owner_key,
            json!({}),
        )
        .await;
    assert_eq!(approved.status(), 200);
    app.run_pending_jobs().await;
    let done = event(&app, &msp.owner_key, &delivery).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(sim_calls(&app, "PATCH", &user_id), 1);
    assert_eq!(
        sim_calls(
            &app,
            "POST",
            &format!("/users/{user_id}/revokeSignInSessions")
        ),
        1
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn only_owners_skip_approval_and_an_expired_step_ends_the_playbook(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Strict MSP").await;
    let (_, admin) = app.key_for(&msp, Role::Admin).await;
    let org = connect(&app, &msp, "contoso").await;
    let (_, upn) = sim_user(&app, "contoso", 13).await;

    // Skipping the approval policy is an owner's decision.
    let skip = json!({"name": "SIEM", "organization_id": org,
        "rules": [{"event": "user.compromised", "actions": ["revoke_sessions"], "approval": "none"}]});
    assert_problem(
        app.post_json("/api/v1/webhook-endpoints", &admin, skip)
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    // A webhook may only contain damage, never re-enable an account.
    let reenable = json!({"name": "SIEM", "organization_id": org,
        "rules": [{"event": "user.cleared", "actions": ["enable_account"]}]});
    let problem = assert_problem(
        app.post_json("/api/v1/webhook-endpoints", &admin, reenable)
            .await,
        422,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "rules[0].actions");

    let (id, secret) = endpoint(&app, &admin, json!({"name": "SIEM", "organization_id": org,
        "rules": [{"event": "user.compromised", "actions": ["revoke_sessions", "disable_account"]}]})).await;
    // A signed body that is not JSON is refused as such.
    let now = chrono::Utc::now().timestamp();
    let garbage = b"not json";
    let signature = format!("t={now},v1={}", sign(&secret, now, garbage));
    assert_problem(
        deliver(&app, &id, Some(signature), garbage).await,
        422,
        "INVALID_REQUEST",
    )
    .await;

    let accepted: Value = deliver_signed(
        &app,
        &id,
        &secret,
        &json!({"id": "x-1", "type": "user.compromised", "target": upn}),
    )
    .await
    .json()
    .await
    .expect("accepted");
    let delivery = accepted["id"].as_str().expect("id").to_owned();
    app.run_pending_jobs().await;
    let waiting = event(&app, &msp.owner_key, &delivery).await;
    assert_eq!(waiting["state"], "waiting_for_approval", "{waiting}");
    let action = waiting["outcome"][0]["action_id"]
        .as_str()
        .expect("action")
        .to_owned();
    // Nobody decides in time: the step expires and the playbook ends.
    sqlx::query("update action_request set expires_at = now() - interval '1 second' where action_id = $1::uuid")
        .bind(&action)
        .execute(&pool)
        .await
        .expect("backdate");
    // The leader expires it; its end queues the playbook again.
    app.run_maintenance().await;
    app.run_pending_jobs().await;
    let ended = event(&app, &msp.owner_key, &delivery).await;
    assert_eq!(ended["state"], "failed", "{ended}");
    assert_eq!(ended["outcome"][0]["state"], "expired");
    assert_eq!(
        ended["outcome"].as_array().expect("outcome").len(),
        1,
        "later steps never ran"
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn an_endpoint_revoked_mid_playbook_keeps_what_ran_and_requests_nothing_more(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Revoking MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    let (user_id, upn) = sim_user(&app, "contoso", 4).await;
    let (id, secret) = endpoint(&app, &msp.owner_key, json!({"name": "Sentinel", "organization_id": org,
        "rules": [{"event": "user.compromised", "actions": ["revoke_sessions", "disable_account"], "approval": "none"}]})).await;
    let accepted: Value = deliver_signed(
        &app,
        &id,
        &secret,
        &json!({"id": "alert-7", "type": "user.compromised", "target": upn}),
    )
    .await
    .json()
    .await
    .expect("accepted");
    let delivery = accepted["id"].as_str().expect("id").to_owned();

    // The playbook requests its first step; then, before that step runs, the endpoint
    // is revoked.
    let context = app.job_context();
    let playbook_only: Vec<_> = tenantry_jobs::handlers(&context)
        .into_iter()
        .filter(|h| h.kind() == "webhook_event")
        .collect();
    tenantry_jobs::Engine::new(
        context.store.queue(),
        crate::helpers::test_engine(),
        playbook_only,
    )
    .run_until_idle(Duration::from_secs(5))
    .await
    .expect("playbook ran");
    let revoked = app
        .delete(&format!("/api/v1/webhook-endpoints/{id}"), &msp.owner_key)
        .await;
    assert!(revoked.status().is_success(), "{}", revoked.status());
    app.run_pending_jobs().await;

    let done = event(&app, &msp.owner_key, &delivery).await;
    let steps = done["outcome"].as_array().expect("outcome");
    assert_eq!(steps.len(), 2, "one entry per step of the rule: {done}");
    assert_eq!(
        steps[0]["state"], "succeeded",
        "the step that ran says so: {done}"
    );
    assert_eq!(steps[1]["code"], "ENDPOINT_REVOKED", "{done}");
    assert_eq!(
        done["state"], "failed",
        "not every step of the rule ran: {done}"
    );
    assert_eq!(
        sim_calls(
            &app,
            "POST",
            &format!("/users/{user_id}/revokeSignInSessions")
        ),
        1
    );
    assert_eq!(
        sim_calls(&app, "PATCH", &format!("/users/{user_id}")),
        0,
        "nothing was requested after the revocation"
    );
}

/// Each API process caches endpoints; a change made through one takes effect in the
/// other at once: a rotated-in secret verifies on the next delivery, a revoked endpoint
/// is unknown on the next delivery, and a secret whose overlap ended (changed in the
/// database by hand, so only the notification tells the processes) stops verifying
/// without waiting for the cache's time limit.
#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn endpoint_changes_reach_every_process_cache_at_once(pool: PgPool) {
    let one = TestApp::spawn(pool.clone()).await;
    let other = TestApp::spawn(pool.clone()).await;
    let msp = one.create_msp("Cached MSP").await;
    let org = connect(&one, &msp, "contoso").await;
    let (id, secret) = endpoint(&one, &msp.owner_key, json!({"name": "PSA", "organization_id": org,
        "rules": [{"event": "user.compromised", "actions": ["revoke_sessions"], "approval": "none"}]})).await;
    let event = |n: u32| json!({"id": format!("evt-{n}"), "type": "user.compromised", "target": "adele@contoso.example"});
    // Both processes have the endpoint cached.
    for app in [&one, &other] {
        for n in 0..3 {
            let status = deliver_signed(app, &id, &secret, &event(n)).await.status();
            assert!(status == 202 || status == 200, "{status}");
        }
    }

    let rotated: Value = one
        .post_json(
            &format!("/api/v1/webhook-endpoints/{id}/rotate-secret"),
            &msp.owner_key,
            json!({}),
        )
        .await
        .json()
        .await
        .expect("rotated");
    let new_secret = rotated["signing_secret"].as_str().expect("secret");
    for app in [&other, &one] {
        let with_new = deliver_signed(app, &id, new_secret, &event(10))
            .await
            .status();
        assert!(with_new == 202 || with_new == 200, "{with_new}");
    }
    assert_eq!(
        deliver_signed(&other, &id, &secret, &event(11))
            .await
            .status(),
        202,
        "the previous secret still verifies during the overlap"
    );

    // The overlap ends early: only the trigger's notification reaches the caches.
    sqlx::query(
        "update webhook_endpoint set previous_expires_at = now() where endpoint_id = $1::uuid",
    )
    .bind(&id)
    .execute(&pool)
    .await
    .expect("end the overlap");
    let mut refused = false;
    for _ in 0..100 {
        if deliver_signed(&other, &id, &secret, &event(12))
            .await
            .status()
            == 401
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the expired secret kept verifying from the cache");

    assert_eq!(
        one.delete(&format!("/api/v1/webhook-endpoints/{id}"), &msp.owner_key)
            .await
            .status(),
        200
    );
    for app in [&other, &one] {
        assert_problem(
            deliver_signed(app, &id, new_secret, &event(13)).await,
            404,
            "NOT_FOUND",
        )
        .await;
        // A replay of a stored event id is unknown too.
        assert_problem(
            deliver_signed(app, &id, new_secret, &event(0)).await,
            404,
            "NOT_FOUND",
        )
        .await;
    }
    let stored: i64 =
        sqlx::query_scalar("select count(*) from webhook_event where event_id = 'evt-13'")
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(stored, 0);
}
