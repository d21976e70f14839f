//! `/subscriptions` (graph-facts §8): create a change-notification subscription on `users`
//! or `groups` after the validation handshake with its endpoints, list the calling app's
//! subscriptions, get, renew (`PATCH` of `expirationDateTime`) and delete one. Another
//! app's subscription does not exist for the caller.
//!
//! Deliberate deviation: real Graph requires `https` notification URLs; the simulator also
//! accepts `http`, so tests can receive on loopback.

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{Call, Caller, GraphError, Outcome, Reply, context, needs};
use crate::SimState;
use crate::model::subscriptions::{CHANGE_TYPES, MAX_LIFETIME_MINUTES, Resource, Subscription};

/// Longest `clientState` Graph accepts.
const MAX_CLIENT_STATE: usize = 128;

pub fn is_create(method: &str, segments: &[&str]) -> bool {
    method == "POST" && segments == ["subscriptions"]
}

pub fn route(state: &SimState, caller: &Caller, call: &Call<'_>, segments: &[&str]) -> Outcome {
    match (call.method, segments) {
        ("GET", [_]) => list(state, caller, call),
        ("GET", [_, id]) => get(state, caller, call, id),
        ("PATCH", [_, id]) => renew(state, caller, call, id),
        ("DELETE", [_, id]) => delete(state, caller, id),
        (_, [_] | [_, _]) => Err(GraphError::method_not_allowed()),
        (_, [_, _, next, ..]) => Err(GraphError::no_segment(next)),
        (_, []) => Err(GraphError::no_segment("")),
    }
}

/// 400 for an invalid subscription request; the code is UNVERIFIED.
fn invalid(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
}

/// Wording as observed for `expirationDateTime`
/// (microsoftgraph/microsoft-graph-docs-contrib#7399); for other properties UNVERIFIED.
fn required(property: &str) -> GraphError {
    invalid(format!(
        "{property} is a required property for subscription creation."
    ))
}

/// The failed validation handshake; the wording is UNVERIFIED.
fn validation_failed() -> GraphError {
    invalid(
        "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.",
    )
}

/// An unknown (or another app's) subscription; code and wording UNVERIFIED.
fn not_found(id: &str) -> GraphError {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!("The subscription '{id}' was not found."),
    )
}

fn needs_for(resource: Resource) -> &'static [&'static str] {
    match resource {
        Resource::Users => needs::USERS_READ,
        Resource::Groups => needs::GROUPS_READ,
    }
}

fn text<'a>(body: &'a Map<String, Value>, property: &str) -> Option<&'a str> {
    body.get(property).and_then(Value::as_str)
}

/// A subscription with `@odata.context` first.
fn entity(call: &Call<'_>, subscription: &Subscription) -> Value {
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        json!(context(call, "subscriptions/$entity")),
    );
    if let Value::Object(fields) = subscription.to_graph() {
        out.extend(fields);
    }
    Value::Object(out)
}

/// What a valid creation request asks for.
struct Draft {
    resource: Resource,
    change_type: String,
    notification_url: String,
    lifecycle_notification_url: Option<String>,
    client_state: String,
    expiration: DateTime<Utc>,
}

impl Draft {
    fn parse(caller: &Caller, body: &Map<String, Value>) -> Result<Self, GraphError> {
        let raw = text(body, "resource").ok_or_else(|| required("resource"))?;
        let resource = Resource::parse(raw)
            .ok_or_else(|| invalid(format!("Resource '{raw}' is not supported.")))?;
        caller.require(needs_for(resource))?;
        Ok(Self {
            resource,
            change_type: change_type(body)?,
            notification_url: url(body, "notificationUrl")?
                .ok_or_else(|| required("notificationUrl"))?,
            lifecycle_notification_url: url(body, "lifecycleNotificationUrl")?,
            expiration: expiration(body, Utc::now())?,
            client_state: client_state(body)?,
        })
    }

    fn into_subscription(self, caller: &Caller) -> Subscription {
        Subscription {
            id: Uuid::new_v4(),
            tenant_id: caller.tenant_id,
            application_id: caller.app_id,
            creator_id: caller.sp_id,
            resource: self.resource,
            change_type: self.change_type,
            notification_url: self.notification_url,
            lifecycle_notification_url: self.lifecycle_notification_url,
            client_state: self.client_state,
            expiration_date_time: self.expiration,
        }
    }
}

/// A comma list of `created`, `updated`, `deleted`, normalised (no spaces).
fn change_type(body: &Map<String, Value>) -> Result<String, GraphError> {
    let raw = text(body, "changeType").ok_or_else(|| required("changeType"))?;
    let types: Vec<&str> = raw.split(',').map(str::trim).collect();
    if let Some(bad) = types.iter().find(|t| !CHANGE_TYPES.contains(*t)) {
        return Err(invalid(format!("Invalid 'changeType' attribute: '{bad}'.")));
    }
    Ok(types.join(","))
}

/// An absolute `http` or `https` URL (real Graph: `https` only), when present.
fn url(body: &Map<String, Value>, property: &str) -> Result<Option<String>, GraphError> {
    let Some(raw) = text(body, property) else {
        return Ok(None);
    };
    let absolute = reqwest::Url::parse(raw)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
    if absolute {
        Ok(Some(raw.to_owned()))
    } else {
        // Wording UNVERIFIED.
        Err(invalid(format!(
            "Invalid {property} '{raw}': an absolute https URL is required."
        )))
    }
}

/// At most 128 characters.
fn client_state(body: &Map<String, Value>) -> Result<String, GraphError> {
    let value = text(body, "clientState").ok_or_else(|| required("clientState"))?;
    if value.chars().count() > MAX_CLIENT_STATE {
        // Wording UNVERIFIED.
        return Err(invalid(format!(
            "clientState cannot be longer than {MAX_CLIENT_STATE} characters."
        )));
    }
    Ok(value.to_owned())
}

/// An RFC 3339 time in the future, at most 41,760 minutes from `now`.
fn expiration(body: &Map<String, Value>, now: DateTime<Utc>) -> Result<DateTime<Utc>, GraphError> {
    let raw = text(body, "expirationDateTime").ok_or_else(|| required("expirationDateTime"))?;
    let at = DateTime::parse_from_rfc3339(raw)
        .map_err(|_| invalid(format!("Invalid expirationDateTime '{raw}'.")))?
        .with_timezone(&Utc);
    check_lifetime(at, now)?;
    Ok(at)
}

/// Code `ExtensionError` and the "can only be N minutes" wording as observed for mail
/// (microsoftgraph/microsoft-graph-docs-contrib#7726); for users and groups, and the
/// past-time message, UNVERIFIED.
fn check_lifetime(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), GraphError> {
    let error =
        |message: String| GraphError::new(StatusCode::BAD_REQUEST, "ExtensionError", message);
    if at <= now {
        return Err(error(
            "Subscription expiration must be in the future.".to_owned(),
        ));
    }
    if at > now + Duration::minutes(MAX_LIFETIME_MINUTES) {
        return Err(error(format!(
            "Subscription expiration can only be {MAX_LIFETIME_MINUTES} minutes in the future."
        )));
    }
    Ok(())
}

/// `POST /subscriptions`: checks the request, validates the endpoints (no lock held while
/// they are called), then stores the subscription.
pub async fn create(state: &SimState, caller: &Caller, call: &Call<'_>) -> Outcome {
    let draft = Draft::parse(caller, &call.json_body()?)?;
    handshake(state, &draft.notification_url).await?;
    if let Some(url) = &draft.lifecycle_notification_url {
        handshake(state, url).await?;
    }
    let subscription = draft.into_subscription(caller);
    store(state, caller, subscription.clone())?;
    Ok(Reply::created(entity(call, &subscription)))
}

async fn handshake(state: &SimState, url: &str) -> Result<(), GraphError> {
    let client = state.http_client().ok_or_else(validation_failed)?;
    crate::notify::validate(&client, url)
        .await
        .map_err(|reason| {
            tracing::debug!(%url, %reason, "notification endpoint validation failed");
            validation_failed()
        })
}

/// Adds the subscription to the caller's tenant, found again by id: the world may have
/// been reloaded while the endpoints were called.
fn store(state: &SimState, caller: &Caller, subscription: Subscription) -> Result<(), GraphError> {
    let mut world = state.world_mut();
    let index = world
        .tenant_index(&caller.tenant_id.to_string())
        .ok_or_else(|| invalid("The tenant was unloaded while the subscription was validated."))?;
    world.tenants[index].subscriptions.add(subscription);
    Ok(())
}

fn list(state: &SimState, caller: &Caller, call: &Call<'_>) -> Outcome {
    let world = state.world();
    let value: Vec<Value> = world.tenants[caller.tenant]
        .subscriptions
        .for_app(caller.app_id)
        .map(Subscription::to_graph)
        .collect();
    Ok(Reply::json(json!({
        "@odata.context": context(call, "subscriptions"),
        "value": value,
    })))
}

/// The caller's subscription `id`, after the permission check for its resource.
fn find(state: &SimState, caller: &Caller, id: &str) -> Result<Subscription, GraphError> {
    let key = Uuid::parse_str(id).map_err(|_| not_found(id))?;
    let found = state.world().tenants[caller.tenant]
        .subscriptions
        .get(caller.app_id, key)
        .cloned()
        .ok_or_else(|| not_found(id))?;
    caller.require(needs_for(found.resource))?;
    Ok(found)
}

fn get(state: &SimState, caller: &Caller, call: &Call<'_>, id: &str) -> Outcome {
    let subscription = find(state, caller, id)?;
    Ok(Reply::json(entity(call, &subscription)))
}

/// `PATCH /subscriptions/{id}` with a new `expirationDateTime` (the creation rules).
fn renew(state: &SimState, caller: &Caller, call: &Call<'_>, id: &str) -> Outcome {
    let current = find(state, caller, id)?;
    let at = expiration(&call.json_body()?, Utc::now())?;
    let mut world = state.world_mut();
    let subscription = world.tenants[caller.tenant]
        .subscriptions
        .get_mut(caller.app_id, current.id)
        .ok_or_else(|| not_found(id))?;
    subscription.expiration_date_time = at;
    Ok(Reply::json(entity(call, subscription)))
}

fn delete(state: &SimState, caller: &Caller, id: &str) -> Outcome {
    let current = find(state, caller, id)?;
    state.world_mut().tenants[caller.tenant]
        .subscriptions
        .remove(current.id);
    Ok(Reply::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn lifetimes_are_bounded_by_41760_minutes() {
        let now = Utc::now();
        assert!(check_lifetime(now + Duration::minutes(41_760), now).is_ok());
        let long = check_lifetime(now + Duration::minutes(41_761), now).expect_err("too long");
        assert_eq!(long.code, "ExtensionError");
        assert!(check_lifetime(now - Duration::seconds(1), now).is_err());
    }

    #[test]
    fn change_types_are_normalised_and_checked() {
        let ok = change_type(&body(json!({"changeType": "updated, deleted"})));
        assert_eq!(ok.expect("valid").as_str(), "updated,deleted");
        assert!(change_type(&body(json!({"changeType": "updated,moved"}))).is_err());
        assert!(change_type(&body(json!({"changeType": ""}))).is_err());
    }

    #[test]
    fn notification_urls_must_be_absolute_http_or_https() {
        for good in ["https://hooks.example/in", "http://127.0.0.1:8080/hook?x=1"] {
            let parsed = url(&body(json!({"notificationUrl": good})), "notificationUrl");
            assert_eq!(parsed.expect("valid").as_deref(), Some(good));
        }
        for bad in ["/relative", "ftp://example.com/x", "not a url"] {
            assert!(url(&body(json!({"notificationUrl": bad})), "notificationUrl").is_err());
        }
    }
}
