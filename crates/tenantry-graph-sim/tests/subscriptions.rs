//! Change-notification subscriptions (graph-facts §8) through real HTTP: the validation
//! handshake against a loopback receiver, the rules on creation and renewal, delivery of
//! change notifications for Graph writes, retries, and lifecycle notifications.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use common::{Sim, assert_graph_error};
use reqwest::Method;
use serde_json::{Value, json};
use tenantry_graph_sim::{DeliveryKind, LifecycleEvent, TenantSpec};

fn contoso() -> TenantSpec {
    TenantSpec::healthy("contoso", "Contoso Ltd", 30)
}

/// How the receiver answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The handshake as documented; notifications with 202.
    Good,
    /// Echoes the validation token still percent-encoded (must fail).
    EncodedToken,
    /// A correct handshake, then 500 to every notification.
    FailNotifications,
}

#[derive(Clone)]
struct Receiver {
    mode: Mode,
    /// Decoded validation tokens with the request's content type.
    validations: Arc<Mutex<Vec<(String, String)>>>,
    /// Notification bodies.
    received: Arc<Mutex<Vec<Value>>>,
    url: String,
}

impl Receiver {
    async fn start(mode: Mode) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let receiver = Self {
            mode,
            validations: Arc::default(),
            received: Arc::default(),
            url: format!("http://{addr}/hook"),
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        receiver
    }

    fn validations(&self) -> Vec<(String, String)> {
        self.validations.lock().expect("lock").clone()
    }

    fn received(&self) -> Vec<Value> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits (up to 5 s) until `count` notification bodies have arrived.
    async fn wait_for(&self, count: usize) -> Vec<Value> {
        for _ in 0..50 {
            if self.received().len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.received()
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    Query(query): Query<HashMap<String, String>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(token) = query.get("validationToken") {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        receiver
            .validations
            .lock()
            .expect("lock")
            .push((token.clone(), content_type));
        let answer = match receiver.mode {
            Mode::EncodedToken => raw
                .unwrap_or_default()
                .trim_start_matches("validationToken=")
                .to_owned(),
            _ => token.clone(),
        };
        return (StatusCode::OK, [("content-type", "text/plain")], answer).into_response();
    }
    let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    receiver.received.lock().expect("lock").push(parsed);
    match receiver.mode {
        Mode::FailNotifications => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        _ => StatusCode::ACCEPTED.into_response(),
    }
}

fn in_minutes(minutes: i64) -> String {
    (Utc::now() + chrono::Duration::minutes(minutes)).to_rfc3339()
}

fn request(resource: &str, change_type: &str, url: &str) -> Value {
    json!({
        "changeType": change_type,
        "notificationUrl": url,
        "resource": resource,
        "expirationDateTime": in_minutes(60),
        "clientState": "SecretClientState",
    })
}

async fn create(sim: &Sim, token: &str, body: Value) -> reqwest::Response {
    sim.send(token, Method::POST, "/subscriptions", Some(body))
        .await
}

/// Creates a subscription that must succeed; returns its body.
async fn created(sim: &Sim, token: &str, body: Value) -> Value {
    let response = create(sim, token, body).await;
    assert_eq!(response.status(), 201);
    response.json().await.expect("json")
}

#[tokio::test]
async fn creation_validates_the_endpoint_and_answers_the_documented_shape() {
    let spec = contoso();
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let receiver = Receiver::start(Mode::Good).await;
    let body = created(
        &sim,
        &token,
        request("/users", "updated,deleted", &receiver.url),
    )
    .await;

    let validations = receiver.validations();
    assert_eq!(validations.len(), 1);
    let (decoded, content_type) = &validations[0];
    assert!(decoded.contains(' ') && decoded.contains(':'), "{decoded}");
    assert_eq!(content_type, "text/plain; charset=utf-8");

    assert!(
        body["@odata.context"]
            .as_str()
            .expect("context")
            .ends_with("/v1.0/$metadata#subscriptions/$entity")
    );
    let id = body["id"].as_str().expect("id");
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert_eq!(body["resource"], "users");
    assert_eq!(body["applicationId"], spec.app().client_id.to_string());
    let sp = spec.app().service_principal.as_ref().expect("sp");
    assert_eq!(body["creatorId"], sp.id.to_string());
    assert_eq!(body["changeType"], "updated,deleted");
    assert_eq!(body["clientState"], "SecretClientState");
    assert_eq!(body["notificationUrl"], receiver.url);
    assert_eq!(body["lifecycleNotificationUrl"], Value::Null);
    assert_eq!(body["latestSupportedTlsVersion"], "v1_2");
    assert_eq!(body["notificationContentType"], "application/json");
    assert_eq!(body["includeResourceData"], false);
    for null in [
        "encryptionCertificate",
        "encryptionCertificateId",
        "notificationQueryOptions",
        "notificationUrlAppId",
    ] {
        assert_eq!(body[null], Value::Null, "{null}");
    }
    let expires = body["expirationDateTime"].as_str().expect("expiry");
    assert!(chrono::DateTime::parse_from_rfc3339(expires).is_ok());

    let listed: Value = sim
        .get(&token, "/subscriptions")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["value"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["value"][0]["id"], id);
    let one = sim.get(&token, &format!("/subscriptions/{id}")).await;
    assert_eq!(one.status(), 200);
    assert_eq!(one.json::<Value>().await.expect("json")["id"], id);
    assert_eq!(sim.sim.subscriptions().len(), 1);
}

#[tokio::test]
async fn a_failing_handshake_answers_400_and_stores_nothing() {
    let spec = contoso();
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let encoded = Receiver::start(Mode::EncodedToken).await;
    let body = assert_graph_error(
        create(&sim, &token, request("users", "updated", &encoded.url)).await,
        400,
        "InvalidRequest",
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .starts_with("Subscription validation request failed.")
    );
    assert_eq!(encoded.validations().len(), 1, "the endpoint was called");
    // Nobody listening.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/hook", listener.local_addr().expect("addr"))
    };
    assert_graph_error(
        create(&sim, &token, request("users", "updated", &closed)).await,
        400,
        "InvalidRequest",
    )
    .await;
    // A good notification URL with a failing lifecycle URL fails too.
    let good = Receiver::start(Mode::Good).await;
    let mut with_lifecycle = request("users", "updated", &good.url);
    with_lifecycle["lifecycleNotificationUrl"] = json!(encoded.url);
    assert_graph_error(
        create(&sim, &token, with_lifecycle).await,
        400,
        "InvalidRequest",
    )
    .await;
    assert!(sim.sim.subscriptions().is_empty());
    let listed: Value = sim
        .get(&token, "/subscriptions")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["value"], json!([]));
}

#[tokio::test]
async fn invalid_requests_answer_400_without_calling_the_endpoint() {
    let spec = contoso();
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let receiver = Receiver::start(Mode::Good).await;
    let base = request("users", "updated", &receiver.url);
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = base.clone();
        body.as_object_mut().expect("object").remove(key);
        body
    };
    let cases = [
        (
            "too long",
            with("expirationDateTime", json!(in_minutes(41_770))),
            "ExtensionError",
        ),
        (
            "in the past",
            with("expirationDateTime", json!(in_minutes(-1))),
            "ExtensionError",
        ),
        (
            "not a time",
            with("expirationDateTime", json!("tomorrow")),
            "InvalidRequest",
        ),
        ("no expiry", without("expirationDateTime"), "InvalidRequest"),
        ("no clientState", without("clientState"), "InvalidRequest"),
        (
            "long clientState",
            with("clientState", json!("x".repeat(129))),
            "InvalidRequest",
        ),
        ("no changeType", without("changeType"), "InvalidRequest"),
        (
            "bad changeType",
            with("changeType", json!("updated,moved")),
            "InvalidRequest",
        ),
        (
            "no notificationUrl",
            without("notificationUrl"),
            "InvalidRequest",
        ),
        (
            "relative URL",
            with("notificationUrl", json!("/hook")),
            "InvalidRequest",
        ),
        (
            "ftp URL",
            with("notificationUrl", json!("ftp://127.0.0.1/hook")),
            "InvalidRequest",
        ),
        (
            "mail resource",
            with("resource", json!("me/messages")),
            "InvalidRequest",
        ),
    ];
    for (name, body, code) in cases {
        let response = create(&sim, &token, body).await;
        assert_eq!(response.status(), 400, "{name}");
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["error"]["code"], code, "{name}: {error}");
    }
    assert!(receiver.validations().is_empty());
    assert!(sim.sim.subscriptions().is_empty());
    // The longest lifetime itself is accepted.
    created(
        &sim,
        &token,
        with("expirationDateTime", json!(in_minutes(41_759))),
    )
    .await;
}

#[tokio::test]
async fn the_resource_needs_its_read_permission() {
    let spec = contoso().without_permissions(&["User.ReadWrite.All", "Directory.ReadWrite.All"]);
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let receiver = Receiver::start(Mode::Good).await;
    assert_graph_error(
        create(&sim, &token, request("users", "updated", &receiver.url)).await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    assert!(receiver.validations().is_empty());
    // Group permissions remain, so groups can be watched.
    let body = created(&sim, &token, request("groups", "updated", &receiver.url)).await;
    assert_eq!(body["resource"], "groups");
}

#[tokio::test]
async fn renewal_and_deletion_follow_the_rules_and_stay_within_the_app() {
    let mut spec = contoso();
    let mut other_app = spec.app().clone();
    other_app.client_id = uuid::Uuid::new_v4();
    if let Some(sp) = other_app.service_principal.as_mut() {
        sp.id = uuid::Uuid::new_v4();
    }
    spec.apps.push(other_app.clone());
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let receiver = Receiver::start(Mode::Good).await;
    let body = created(&sim, &token, request("users", "updated", &receiver.url)).await;
    let path = format!("/subscriptions/{}", body["id"].as_str().expect("id"));

    let later = Utc::now() + chrono::Duration::days(20);
    let renewed = sim
        .send(
            &token,
            Method::PATCH,
            &path,
            Some(json!({"expirationDateTime": later.to_rfc3339()})),
        )
        .await;
    assert_eq!(renewed.status(), 200);
    let renewed: Value = renewed.json().await.expect("json");
    assert_eq!(renewed["id"], body["id"]);
    let expires = chrono::DateTime::parse_from_rfc3339(
        renewed["expirationDateTime"].as_str().expect("expiry"),
    )
    .expect("rfc 3339");
    assert_eq!(expires.timestamp(), later.timestamp());
    let too_long = json!({"expirationDateTime": in_minutes(41_770)});
    assert_graph_error(
        sim.send(&token, Method::PATCH, &path, Some(too_long)).await,
        400,
        "ExtensionError",
    )
    .await;

    // Another app of the same tenant sees nothing.
    let response = sim
        .token_response(
            &spec.id.to_string(),
            &other_app.client_id.to_string(),
            spec.secret_value(),
        )
        .await;
    let other_token: Value = response.json().await.expect("json");
    let other_token = other_token["access_token"].as_str().expect("token");
    assert_graph_error(sim.get(other_token, &path).await, 404, "ResourceNotFound").await;
    let listed: Value = sim
        .get(other_token, "/subscriptions")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["value"], json!([]));
    assert_graph_error(
        sim.send(other_token, Method::DELETE, &path, None).await,
        404,
        "ResourceNotFound",
    )
    .await;

    let deleted = sim.send(&token, Method::DELETE, &path, None).await;
    assert_eq!(deleted.status(), 204);
    assert_graph_error(sim.get(&token, &path).await, 404, "ResourceNotFound").await;
    assert_graph_error(
        sim.send(&token, Method::DELETE, &path, None).await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_graph_error(
        sim.get(&token, "/subscriptions/not-a-guid").await,
        404,
        "ResourceNotFound",
    )
    .await;
}

/// The id of the tenant's user at `index` (not an administrator above 2).
async fn user_id(sim: &Sim, token: &str, index: usize) -> String {
    let users: Value = sim
        .get(token, "/users?$top=20")
        .await
        .json()
        .await
        .expect("json");
    users["value"][index]["id"]
        .as_str()
        .expect("user id")
        .to_owned()
}

#[tokio::test]
async fn graph_writes_are_delivered_to_matching_subscriptions() {
    let spec = contoso();
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let receiver = Receiver::start(Mode::Good).await;
    let deletions_only = Receiver::start(Mode::Good).await;
    let subscription = created(
        &sim,
        &token,
        request("users", "updated,deleted", &receiver.url),
    )
    .await;
    created(
        &sim,
        &token,
        request("users", "deleted", &deletions_only.url),
    )
    .await;
    let user = user_id(&sim, &token, 10).await;

    let patched = sim
        .send(
            &token,
            Method::PATCH,
            &format!("/users/{user}"),
            Some(json!({"jobTitle": "Engineer"})),
        )
        .await;
    assert_eq!(patched.status(), 204);
    let bodies = receiver.wait_for(1).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let items = bodies[0]["value"].as_array().expect("value");
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item["subscriptionId"], subscription["id"]);
    assert_eq!(
        item["subscriptionExpirationDateTime"],
        subscription["expirationDateTime"]
    );
    assert_eq!(item["clientState"], "SecretClientState");
    assert_eq!(item["changeType"], "updated");
    assert_eq!(item["resource"], format!("Users/{user}"));
    assert_eq!(item["tenantId"], spec.id.to_string());
    assert_eq!(
        item["resourceData"],
        json!({
            "@odata.type": "#Microsoft.Graph.User",
            "@odata.id": format!("Users/{user}"),
            "id": user,
            "organizationId": spec.id.to_string(),
        })
    );
    assert!(deletions_only.received().is_empty());

    let deleted = sim
        .send(&token, Method::DELETE, &format!("/users/{user}"), None)
        .await;
    assert_eq!(deleted.status(), 204);
    let bodies = receiver.wait_for(2).await;
    assert_eq!(bodies[1]["value"][0]["changeType"], "deleted");
    let bodies = deletions_only.wait_for(1).await;
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["value"][0]["resource"], format!("Users/{user}"));

    let log = sim.sim.notifications();
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(log.iter().all(|r| r.delivered
        && r.status == Some(202)
        && r.attempts == 1
        && r.count == 1
        && r.kind == DeliveryKind::Change));
    let control: Value = sim
        .client
        .get(sim.url("/_sim/notifications"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(control.as_array().map(Vec::len), Some(3));
    assert_eq!(control[0]["url"], receiver.url);
    assert_eq!(control[0]["subscription_id"], subscription["id"]);
    let cleared = sim
        .client
        .delete(sim.url("/_sim/notifications"))
        .send()
        .await
        .expect("sent");
    assert_eq!(cleared.status(), 204);
    assert!(sim.sim.notifications().is_empty());

    // An expired subscription gets nothing.
    let id = uuid::Uuid::parse_str(subscription["id"].as_str().expect("id")).expect("uuid");
    assert!(
        sim.sim
            .state()
            .set_subscription_expiration(id, Utc::now() - chrono::Duration::seconds(1))
    );
    let other = user_id(&sim, &token, 11).await;
    sim.send(
        &token,
        Method::PATCH,
        &format!("/users/{other}"),
        Some(json!({"jobTitle": "Engineer"})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.received().len(), 2);
    sim.sim.stop().await;
}

#[tokio::test]
async fn group_changes_arrive_as_group_notifications() {
    let spec = contoso();
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let receiver = Receiver::start(Mode::Good).await;
    created(&sim, &token, request("groups", "updated", &receiver.url)).await;
    let groups: Value = sim.get(&token, "/groups").await.json().await.expect("json");
    let group = groups["value"][0]["id"].as_str().expect("group id");
    let user = user_id(&sim, &token, 11).await;
    let added = sim
        .send(
            &token,
            Method::POST,
            &format!("/groups/{group}/members/$ref"),
            Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{user}")})),
        )
        .await;
    assert_eq!(added.status(), 204);
    let bodies = receiver.wait_for(1).await;
    let item = &bodies[0]["value"][0];
    assert_eq!(item["resource"], format!("Groups/{group}"));
    assert_eq!(
        item["resourceData"]["@odata.type"],
        "#Microsoft.Graph.Group"
    );
}

#[tokio::test]
async fn failed_deliveries_are_retried_three_times() {
    let spec = contoso();
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let receiver = Receiver::start(Mode::FailNotifications).await;
    created(&sim, &token, request("users", "updated", &receiver.url)).await;
    let user = user_id(&sim, &token, 10).await;
    sim.send(
        &token,
        Method::PATCH,
        &format!("/users/{user}"),
        Some(json!({"jobTitle": "Engineer"})),
    )
    .await;
    let mut log = Vec::new();
    for _ in 0..60 {
        log = sim.sim.notifications();
        if !log.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(log.len(), 1, "{log:?}");
    let record = &log[0];
    assert!(!record.delivered);
    assert_eq!(record.attempts, 4);
    assert_eq!(record.status, Some(500));
    assert!(record.error.is_some());
    assert!(record.duration_ms >= 3000.0, "{}", record.duration_ms);
    assert_eq!(receiver.received().len(), 4);
}

#[tokio::test]
async fn lifecycle_notifications_go_to_the_lifecycle_url() {
    let spec = contoso();
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let changes = Receiver::start(Mode::Good).await;
    let lifecycle = Receiver::start(Mode::Good).await;
    let mut body = request("users", "updated", &changes.url);
    body["lifecycleNotificationUrl"] = json!(lifecycle.url);
    let subscription = created(&sim, &token, body).await;
    assert_eq!(subscription["lifecycleNotificationUrl"], lifecycle.url);
    assert_eq!(lifecycle.validations().len(), 1, "both endpoints validated");
    let id = subscription["id"].as_str().expect("id");

    let answer = sim
        .client
        .post(sim.url(&format!("/_sim/subscriptions/{id}/lifecycle")))
        .json(&json!({"lifecycleEvent": "reauthorizationRequired"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(answer.status(), 200);
    let record: Value = answer.json().await.expect("json");
    assert_eq!(record["delivered"], true);
    assert_eq!(record["kind"], "lifecycle");
    let bodies = lifecycle.received();
    assert_eq!(
        bodies[0],
        json!({"value": [{
            "lifecycleEvent": "reauthorizationRequired",
            "subscriptionId": id,
            "subscriptionExpirationDateTime": subscription["expirationDateTime"],
            "clientState": "SecretClientState",
            "tenantId": spec.id.to_string(),
        }]})
    );
    assert!(changes.received().is_empty());

    let uuid = uuid::Uuid::parse_str(id).expect("uuid");
    let removed = sim
        .sim
        .send_lifecycle(uuid, LifecycleEvent::SubscriptionRemoved)
        .await
        .expect("known subscription");
    assert!(removed.delivered);
    assert_eq!(
        lifecycle.received()[1]["value"][0]["lifecycleEvent"],
        "subscriptionRemoved"
    );
    assert!(sim.sim.subscriptions().is_empty());
    assert_graph_error(
        sim.get(&token, &format!("/subscriptions/{id}")).await,
        404,
        "ResourceNotFound",
    )
    .await;
    let unknown = sim
        .client
        .post(sim.url(&format!("/_sim/subscriptions/{id}/lifecycle")))
        .json(&json!({"lifecycleEvent": "missed"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn without_a_lifecycle_url_lifecycle_notifications_use_the_notification_url() {
    let spec = contoso();
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let receiver = Receiver::start(Mode::Good).await;
    let subscription = created(&sim, &token, request("users", "updated", &receiver.url)).await;
    let id = uuid::Uuid::parse_str(subscription["id"].as_str().expect("id")).expect("uuid");
    let record = sim
        .sim
        .send_lifecycle(id, LifecycleEvent::Missed)
        .await
        .expect("known");
    assert_eq!(record.url, receiver.url);
    assert_eq!(
        receiver.received()[0]["value"][0]["lifecycleEvent"],
        "missed"
    );
    assert_eq!(sim.sim.subscriptions().len(), 1, "missed keeps it");
}
