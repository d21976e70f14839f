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

/// Polls until `check` holds for the organization's change-notification state (30 s).
async fn wait_state(app: &TestApp, key: &str, org: &str, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..600 {
        let state: Value = app
            .get(
                &format!("/api/v1/organizations/{org}/change-notifications"),
                key,
            )
            .await
            .json()
            .await
            .expect("state");
        if check(&state) {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("change notifications of {org} never reached the expected state");
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
    let workers = app.start_workers();
    let first = app.wait_for_run(&msp.owner_key, &org, &run).await;
    assert_eq!(first["state"], "succeeded");

    let enabled = put_enabled(&app, &msp.owner_key, &org, true).await;
    assert_eq!(enabled.status(), 200);
    let state = wait_state(&app, &msp.owner_key, &org, |s| {
        s["subscriptions"].as_array().is_some_and(|v| v.len() == 2)
    })
    .await;
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
    let mut department = Value::Null;
    for _ in 0..600 {
        let row: Value = app
            .get(
                &format!("/api/v1/organizations/{org}/users/{user}"),
                &msp.owner_key,
            )
            .await
            .json()
            .await
            .expect("user");
        department = row["department"].clone();
        if department == "Notified" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(workers);
    assert_eq!(department, "Notified");
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

    let workers = app.start_workers();
    app.wait_for_run(&msp.owner_key, &org, &run).await;
    assert_eq!(
        put_enabled(&app, &msp.owner_key, &org, true).await.status(),
        200
    );
    let state = wait_state(&app, &msp.owner_key, &org, |s| {
        s["subscriptions"].as_array().is_some_and(|v| v.len() == 2)
    })
    .await;
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
    let mut renewed = false;
    for _ in 0..600 {
        let row: (
            chrono::DateTime<chrono::Utc>,
            Option<chrono::DateTime<chrono::Utc>>,
        ) = sqlx::query_as(
            "select expires_at, renewed_at from graph_subscription where subscription_id = $1",
        )
        .bind(&users_subscription)
        .fetch_one(&pool)
        .await
        .expect("row");
        if row.1.is_some() && row.0 > before {
            renewed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(renewed, "the subscription was renewed before it expired");
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
    let recreated = wait_state(&app, &msp.owner_key, &org, |s| {
        s["subscriptions"].as_array().is_some_and(|v| {
            v.len() == 2
                && v.iter()
                    .all(|x| x["subscription_id"] != users_subscription.as_str())
        })
    })
    .await;
    assert_ne!(subscription_of(&recreated, "users"), users_subscription);

    // Off: the subscriptions are deleted at Graph.
    assert_eq!(
        put_enabled(&app, &msp.owner_key, &org, false)
            .await
            .status(),
        200
    );
    wait_state(&app, &msp.owner_key, &org, |s| {
        s["subscriptions"].as_array().is_some_and(Vec::is_empty)
    })
    .await;
    drop(workers);
    let left: Value = app
        .graph("contoso", Method::GET, "/subscriptions", None)
        .await
        .json()
        .await
        .expect("subscriptions");
    assert_eq!(left["value"].as_array().map_or(0, Vec::len), 0);
}
