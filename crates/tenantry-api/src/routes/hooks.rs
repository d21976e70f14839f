//! `POST /hooks/{endpoint}`: the receiver of signed remediation events. No API key: the
//! signature is the authentication. Order of checks: size, endpoint, timestamp, HMAC (in
//! constant time, against every signature and every live secret), then the body; an
//! unauthenticated body is never parsed. The endpoint comes from the process's cache
//! (evicted in every process by `LISTEN/NOTIFY` when it changes); a signature the cached
//! secrets refuse is checked again against the database's, and the statement that stores
//! the event checks the endpoint is still active. The event is stored and its playbook
//! queued in one statement (one transaction) before the 202; a replayed event id answers
//! 200 with the first delivery and does nothing.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::Sha256;
use tenantry_domain::ErrorCode;
use tenantry_domain::webhooks::{self, Signature};
use tenantry_store::webhooks::{EndpointSecrets, Recorded};
use uuid::Uuid;

use crate::app::AppState;
use crate::extract::ApiPath;
use crate::problem::{ApiError, FieldError, Problem, refusal};

const PROBLEM: &str = "application/problem+json";
/// The largest event accepted.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
const SIGNATURE_HEADER: &str = "tenantry-signature";

fn unauthenticated(code: ErrorCode) -> ApiError {
    let detail = match code {
        ErrorCode::WebhookTimestampStale => {
            "The signature's timestamp is more than 5 minutes from now; check the sender's clock."
        }
        _ => {
            "Sign the body as `Tenantry-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">` with the endpoint's signing secret."
        }
    };
    ApiError::Described {
        problem: Box::new(Problem::new(code, StatusCode::UNAUTHORIZED, detail)),
        retry_after_secs: None,
    }
}

/// Whether any signature matches any live secret (each comparison in constant time).
fn verified(endpoint: &EndpointSecrets, signature: &Signature, body: &[u8]) -> bool {
    let timestamp = signature.timestamp.to_string();
    let mut any = false;
    for secret in &endpoint.secrets {
        for candidate in &signature.signatures {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            else {
                continue;
            };
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            mac.update(body);
            // No early exit: every pair is checked, so timing says nothing about which.
            any |= mac.verify_slice(candidate).is_ok();
        }
    }
    any
}

fn delivery_view(record: &tenantry_store::webhooks::EventRecord, duplicate: bool) -> Value {
    json!({
        "id": record.webhook_event_id,
        "event_id": record.event_id,
        "type": record.event_type,
        "state": record.state,
        "outcome": record.outcome,
        "received_at": record.received_at,
        "duplicate": duplicate,
    })
}

/// Receive a signed event for an endpoint.
#[utoipa::path(post, path = "/hooks/{endpoint}", tag = "webhooks",
    params(("endpoint" = Uuid, Path, description = "The endpoint's id"),
        ("Tenantry-Signature" = String, Header, description = "t=<unix>,v1=<hex HMAC-SHA256 of \"t.body\">")),
    request_body(content = Object, description = "{id, type, occurred_at, organization | tenant_id, target, data}"),
    responses((status = 202, description = "Stored; the playbook is queued", body = crate::schemas::Delivery),
        (status = 200, description = "A replay of an event id already received: nothing done", body = crate::schemas::Delivery),
        (status = 401, description = "WEBHOOK_SIGNATURE_INVALID or WEBHOOK_TIMESTAMP_STALE", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such endpoint (or revoked)", body = Problem, content_type = PROBLEM),
        (status = 413, description = "Larger than 64 KiB", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Not a valid event", body = Problem, content_type = PROBLEM)))]
pub async fn receive(
    State(state): State<AppState>,
    ApiPath(endpoint): ApiPath<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let Some(endpoint) = state.store.webhook_endpoint(endpoint).await? else {
        return Err(ApiError::NotFound);
    };
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(webhooks::parse_signature)
        .ok_or_else(|| unauthenticated(ErrorCode::WebhookSignatureInvalid))?;
    if !webhooks::fresh(signature.timestamp, chrono::Utc::now().timestamp()) {
        return Err(unauthenticated(ErrorCode::WebhookTimestampStale));
    }
    let endpoint = if verified(&endpoint, &signature, &body) {
        endpoint
    } else {
        // The copy may be cached from before a rotation whose notification this process
        // has not seen yet: the database's secrets decide.
        match state
            .store
            .fresh_webhook_endpoint(endpoint.endpoint_id)
            .await?
        {
            Some(fresh) if verified(&fresh, &signature, &body) => fresh,
            _ => {
                state.metrics.auth_failure("webhook_signature");
                return Err(unauthenticated(ErrorCode::WebhookSignatureInvalid));
            }
        }
    };
    let payload: Value = serde_json::from_slice(&body).map_err(|_| {
        ApiError::validation(vec![FieldError::new("body", "must be a JSON object")])
    })?;
    let event = webhooks::parse_event(&payload).map_err(|problems| {
        ApiError::validation(
            problems
                .into_iter()
                .map(|(field, message)| FieldError::new(field, message))
                .collect(),
        )
    })?;
    let organization = match (endpoint.organization_id, event.organization) {
        (Some(own), None) => own,
        (Some(own), Some(named)) => {
            let found = tenantry_store::webhooks::organization_of(
                state.store.pool(),
                endpoint.msp_id,
                named,
            )
            .await?;
            if found != Some(own) {
                return Err(refusal(
                    ErrorCode::InvalidRequest,
                    "the event names another organization than the endpoint's",
                ));
            }
            own
        }
        (None, Some(named)) => {
            tenantry_store::webhooks::organization_of(state.store.pool(), endpoint.msp_id, named)
                .await?
                .ok_or_else(|| {
                    ApiError::validation(vec![FieldError::new(
                        "organization",
                        "names no organization of this MSP (give its id or its tenant id)",
                    )])
                })?
        }
        (None, None) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "organization",
                "is required for an MSP-wide endpoint: the organization id or tenant id",
            )]));
        }
    };
    match tenantry_store::webhooks::record_event(
        state.store.pool(),
        &endpoint,
        organization,
        &event,
        &payload,
    )
    .await?
    {
        Recorded::New(record) => {
            tracing::info!(webhook_event_id = %record.webhook_event_id, event_type = %record.event_type, "webhook event accepted");
            Ok((StatusCode::ACCEPTED, Json(delivery_view(&record, false))).into_response())
        }
        Recorded::Duplicate(record) => Ok(Json(delivery_view(&record, true)).into_response()),
        Recorded::EndpointGone => {
            state.store.forget_webhook_endpoint(endpoint.endpoint_id);
            Err(ApiError::NotFound)
        }
    }
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GraphQuery {
    /// Sent by Graph when a subscription is created: echoed back as plain text.
    #[serde(rename = "validationToken")]
    validation_token: Option<String>,
}

/// The largest validation token echoed.
const MAX_VALIDATION_TOKEN: usize = 1024;

/// Microsoft Graph change notifications for an organization: answers the validation
/// handshake, checks each notification's clientState in constant time, and queues a delta
/// discovery; always within Microsoft's 3-second limit, as `202`.
#[utoipa::path(post, path = "/hooks/graph/{organization}", tag = "webhooks",
    params(("organization" = Uuid, Path, description = "The organization's id"), GraphQuery),
    request_body(content = Object, description = "Graph's {\"value\": [notification…]}"),
    responses((status = 200, description = "The validation token, as text/plain", body = String, content_type = "text/plain"),
        (status = 202, description = "Received (notifications with a wrong clientState are ignored)", body = crate::schemas::GraphReceipt),
        (status = 404, description = "No organization with change notifications on", body = Problem, content_type = PROBLEM)))]
pub async fn receive_graph(
    State(state): State<AppState>,
    ApiPath(organization): ApiPath<Uuid>,
    axum::extract::Query(query): axum::extract::Query<GraphQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let notifications = state.store.change_notifications();
    if let Some(token) = query.validation_token {
        if token.len() > MAX_VALIDATION_TOKEN || !notifications.accepts(organization).await? {
            return Err(ApiError::NotFound);
        }
        let mut response = token.into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response.headers_mut().insert(
            axum::http::header::X_CONTENT_TYPE_OPTIONS,
            axum::http::HeaderValue::from_static("nosniff"),
        );
        return Ok(response);
    }
    if body.len() > MAX_EVENT_BYTES * 16 {
        return Err(ApiError::PayloadTooLarge);
    }
    let payload: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("The body is not JSON."))?;
    let items = payload["value"].as_array().cloned().unwrap_or_default();
    let received: Vec<tenantry_store::change_notifications::Received<'_>> = items
        .iter()
        .take(1000)
        .map(|n| tenantry_store::change_notifications::Received {
            subscription_id: n["subscriptionId"].as_str().unwrap_or(""),
            client_state: n["clientState"].as_str().unwrap_or(""),
            change_type: n["changeType"].as_str(),
            resource: n["resource"].as_str(),
            lifecycle_event: n["lifecycleEvent"].as_str(),
        })
        .collect();
    let accepted = notifications.receive(organization, &received).await?;
    if accepted.ignored > 0 {
        tracing::warn!(%organization, ignored = accepted.ignored, "Graph notifications with an unknown subscription or a wrong clientState were ignored");
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"recorded": accepted.recorded})),
    )
        .into_response())
}
