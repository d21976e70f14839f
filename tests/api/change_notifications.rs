//! Microsoft Graph change notifications against the simulator: opting in creates
//! subscriptions on users and groups through Graph's validation handshake; a change in
//! the tenant arrives as a notification and the inventory follows by delta discovery,
//! without a full scan; a wrong clientState is ignored; renewals happen before expiry,
//! and a subscription Graph removed is created again.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{TestApp, assert_problem, connect_run};

async fn put_enabled(app: &TestApp, key: &str, org: &str, enabled: bool) -> reqwest::Response {
    app.request(
        Method::PUT,
        &format!("/api/v1/organizations/{org}/change-notifications"),
        Some(key),
    )
    .json(&json!({"enabled": enabled}))
    .send()
    .await
    .expect("sent")
}

/// The organization's change-notification state once every pending job has run and the
/// leader's maintenance has had its round.
async fn state_after_jobs(app: &TestApp, key: &str, org: &str) -> Value {
    app.run_maintenance().await;
    app.run_pending_jobs().await;
    app.get(
        &format!("/api/v1/organizations/{org}/change-notifications"),
        key,
    )
    .await
    .json()
    .await
    .expect("state")
}

/// Waits (up to 30 s) for Microsoft to deliver a notification of `resource`: Graph sends
/// them on its own schedule, the one thing here no test can drain.
async fn notification_received(pool: &PgPool, resource: &str) {
    for _ in 0..600 {
        let received: i64 =
            sqlx::query_scalar("select count(*) from graph_notification where resource ilike $1")
                .bind(format!("%{resource}%"))
                .fetch_one(pool)
                .await
                .expect("count");
        if received > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("Graph delivered no notification about {resource} in 30 s");
}

fn subscription_of(state: &Value, resource: &str) -> String {
    state["subscriptions"]
        .as_array()
        .expect("subscriptions")
        .iter()
        .find(|s| s["resource"] == resource)
        .and_then(|s| s["subscription_id"].as_str())
        .expect("subscription")
        .to_owned()
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_change_in_the_tenant_reaches_the_inventory_by_notification(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Notified MSP").await;
    let (org, run) = connect_run(&app, &msp.owner_key, app.connect_body("contoso")).await;
    let first = app.finished_run(&msp.owner_key, &org, &run).await;
    assert_eq!(first["state"], "succeeded");

    let enabled = put_enabled(&app, &msp.owner_key, &org, true).await;
    assert_eq!(enabled.status(), 200);
    let state = state_after_jobs(&app, &msp.owner_key, &org).await;
    assert_eq!(
        state["subscriptions"].as_array().map(Vec::len),
        Some(2),
        "{state}"
    );
    assert_eq!(state["enabled"], true);
    let at_graph: Value = app
        .graph("contoso", Method::GET, "/subscriptions", None)
        .await
        .json()
        .await
        .expect("subscriptions");
    let urls: Vec<&str> = at_graph["value"]
        .as_array()
        .expect("value")
        .iter()
        .filter_map(|s| s["notificationUrl"].as_str())
        .collect();
    assert_eq!(urls.len(), 2);
    assert!(
        urls.iter()
            .all(|u| u.ends_with(&format!("/hooks/graph/{org}")))
    );

    // An admin changes a user in Entra; Graph notifies; the inventory follows.
    let users: Value = app
        .graph("contoso", Method::GET, "/users?$top=30", None)
        .await
        .json()
        .await
        .expect("users");
    let user = users["value"][25]["id"].as_str().expect("id").to_owned();
    let patched = app
        .graph(
            "contoso",
            Method::PATCH,
            &format!("/users/{user}"),
            Some(json!({"department": "Notified"})),
        )
        .await;
    assert_eq!(patched.status(), 204);
    notification_received(&pool, &user).await;
    // The leader queues a delta scan for the notified change; it runs.
    state_after_jobs(&app, &msp.owner_key, &org).await;
    let row: Value = app
        .get(
            &format!("/api/v1/organizations/{org}/users/{user}"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("user");
    assert_eq!(row["department"], "Notified", "{row}");
    let runs: Value = app
        .get(
            &format!("/api/v1/organizations/{org}/discovery-runs"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("runs");
    let latest = &runs["data"][0];
    assert_eq!(latest["trigger"], "webhook", "{latest}");
    assert_eq!(latest["mode"], "delta", "no full scan: {latest}");
    let received: i64 = sqlx::query_scalar("select count(*) from graph_notification")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert!(received >= 1);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn forged_notifications_are_ignored_and_subscriptions_are_renewed_and_recreated(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Renewing MSP").await;
    let (org, run) = connect_run(&app, &msp.owner_key, app.connect_body("contoso")).await;
    // Not on yet: no handshake is answered for this organization.
    let early = app
        .request(
            Method::POST,
            &format!("/hooks/graph/{org}?validationToken=abc"),
            None,
        )
        .send()
        .await
        .expect("sent");
    assert_problem(early, 404, "NOT_FOUND").await;

    app.finished_run(&msp.owner_key, &org, &run).await;
    assert_eq!(
        put_enabled(&app, &msp.owner_key, &org, true).await.status(),
        200
    );
    let state = state_after_jobs(&app, &msp.owner_key, &org).await;
    assert_eq!(
        state["subscriptions"].as_array().map(Vec::len),
        Some(2),
        "{state}"
    );
    let users_subscription = subscription_of(&state, "users");
    let runs_before: i64 = sqlx::query_scalar("select count(*) from discovery_run")
        .fetch_one(&pool)
        .await
        .expect("count");

    // Right subscription, wrong clientState: answered, ignored.
    let forged = app
        .request(Method::POST, &format!("/hooks/graph/{org}"), None)
        .json(
            &json!({"value": [{"subscriptionId": users_subscription, "clientState": "guessed",
            "changeType": "updated", "resource": "Users/00000000-0000-0000-0000-000000000001"}]}),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(forged.status(), 202);
    let (runs_after, notifications): (i64, i64) = sqlx::query_as(
        "select (select count(*) from discovery_run), (select count(*) from graph_notification)",
    )
    .fetch_one(&pool)
    .await
    .expect("counts");
    assert_eq!((runs_after, notifications), (runs_before, 0));

    // Renewal falls due: the leader queues it, Graph's expiry moves on.
    let before: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "update graph_subscription set renew_at = now() where subscription_id = $1 returning expires_at",
    )
    .bind(&users_subscription)
    .fetch_one(&pool)
    .await
    .expect("due");
    state_after_jobs(&app, &msp.owner_key, &org).await;
    let (expires_at, renewed_at): (
        chrono::DateTime<chrono::Utc>,
        Option<chrono::DateTime<chrono::Utc>>,
    ) = sqlx::query_as(
        "select expires_at, renewed_at from graph_subscription where subscription_id = $1",
    )
    .bind(&users_subscription)
    .fetch_one(&pool)
    .await
    .expect("row");
    assert!(
        renewed_at.is_some() && expires_at > before,
        "the subscription was renewed before it expired"
    );
    assert!(app.sim.requests().iter().any(|r| {
        r.method == "PATCH"
            && r.path
                .contains(&format!("/subscriptions/{users_subscription}"))
    }));

    // Graph removes the subscription and says so: Tenantry subscribes again.
    let removed = reqwest::Client::new()
        .post(format!(
            "{}/_sim/subscriptions/{users_subscription}/lifecycle",
            app.sim.base_url()
        ))
        .json(&json!({"lifecycleEvent": "subscriptionRemoved"}))
        .send()
        .await
        .expect("sent");
    assert!(removed.status().is_success(), "{}", removed.status());
    let recreated = state_after_jobs(&app, &msp.owner_key, &org).await;
    let subscriptions = recreated["subscriptions"]
        .as_array()
        .expect("subscriptions");
    assert_eq!(subscriptions.len(), 2, "{recreated}");
    assert!(
        subscriptions
            .iter()
            .all(|x| x["subscription_id"] != users_subscription.as_str()),
        "{recreated}"
    );
    assert_ne!(subscription_of(&recreated, "users"), users_subscription);

    // Off: the subscriptions are deleted at Graph.
    assert_eq!(
        put_enabled(&app, &msp.owner_key, &org, false)
            .await
            .status(),
        200
    );
    let off = state_after_jobs(&app, &msp.owner_key, &org).await;
    assert_eq!(
        off["subscriptions"].as_array().map(Vec::len),
        Some(0),
        "{off}"
    );
    let left: Value = app
        .graph("contoso", Method::GET, "/subscriptions", None)
        .await
        .json()
        .await
        .expect("subscriptions");
    assert_eq!(left["value"].as_array().map_or(0, Vec::len), 0);
}
