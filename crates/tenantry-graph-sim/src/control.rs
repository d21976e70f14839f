//! The control API under `/_sim/` (only on the simulator's own listener): load a scenario,
//! reset, set faults, latency and the login authority's clock, read or clear the request log, list the credentials of
//! the loaded tenants, register or remove an app's certificate credentials, read or clear
//! the notification delivery log, list subscriptions and send lifecycle notifications;
//! partner mode's routes are in [`partner`].

mod partner;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::{Faults, LifecycleEvent, Scenario, SimState};

pub fn router() -> Router<SimState> {
    Router::new()
        .route("/_sim/requests", get(requests).delete(clear_requests))
        .route("/_sim/reset", post(reset))
        .route("/_sim/scenario", get(scenario).put(load_scenario))
        .route("/_sim/faults", get(faults).put(set_faults))
        .route("/_sim/throttle", get(throttle).put(set_throttle))
        .route("/_sim/clock", axum::routing::put(set_clock))
        .route(
            "/_sim/notifications",
            get(notifications).delete(clear_notifications),
        )
        .route("/_sim/subscriptions", get(subscriptions))
        .route("/_sim/subscriptions/{id}/lifecycle", post(lifecycle))
        .route(
            "/_sim/tenants/{tenant}/applications/{client_id}/certificates",
            post(add_certificate),
        )
        .route(
            "/_sim/tenants/{tenant}/applications/{client_id}/certificates/{key_id}",
            axum::routing::delete(remove_certificate),
        )
        .merge(partner::router())
}

/// A certificate to register on an app, as an admin uploads it in Entra.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewCertificate {
    /// The public certificate, PEM.
    certificate_pem: String,
    #[serde(default)]
    display_name: Option<String>,
    /// The keyCredential's dates. Entra takes the certificate's own validity; the simulator
    /// does not read it, so these default to one minute ago and two years from now.
    #[serde(default)]
    start_date_time: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    end_date_time: Option<chrono::DateTime<chrono::Utc>>,
}

/// Registers a certificate: 201 with its `keyId` and `x5t#S256` thumbprint; 404 for an
/// unknown tenant or app, 422 for a PEM that is not an RSA certificate.
async fn add_certificate(
    State(state): State<SimState>,
    Path((tenant, client_id)): Path<(String, uuid::Uuid)>,
    Json(new): Json<NewCertificate>,
) -> axum::response::Response {
    let now = chrono::Utc::now();
    let start = new
        .start_date_time
        .unwrap_or(now - chrono::Duration::minutes(1));
    let spec = crate::scenario::CertificateSpec {
        key_id: uuid::Uuid::new_v4(),
        display_name: new
            .display_name
            .unwrap_or_else(|| "CN=certificate".to_owned()),
        certificate_pem: new.certificate_pem,
        start,
        end: new
            .end_date_time
            .unwrap_or(start + chrono::Duration::days(730)),
    };
    let key_id = spec.key_id;
    if crate::model::Certificate::from_spec(&spec).is_none() {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "not an RSA certificate in PEM"})),
        )
            .into_response();
    }
    match state.add_certificate(&tenant, client_id, spec) {
        Some(thumbprint) => (
            StatusCode::CREATED,
            Json(json!({"keyId": key_id, "thumbprint": thumbprint})),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no app {client_id} in tenant {tenant}")})),
        )
            .into_response(),
    }
}

async fn remove_certificate(
    State(state): State<SimState>,
    Path((tenant, client_id, key_id)): Path<(String, uuid::Uuid, uuid::Uuid)>,
) -> StatusCode {
    if state.remove_certificate(&tenant, client_id, key_id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn notifications(State(state): State<SimState>) -> impl IntoResponse {
    Json(state.notifications())
}

async fn clear_notifications(State(state): State<SimState>) -> StatusCode {
    state.clear_notifications();
    StatusCode::NO_CONTENT
}

async fn subscriptions(State(state): State<SimState>) -> impl IntoResponse {
    Json(state.subscriptions())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LifecycleRequest {
    lifecycle_event: LifecycleEvent,
}

/// Sends the lifecycle notification and answers its delivery record (404 for an unknown
/// subscription).
async fn lifecycle(
    State(state): State<SimState>,
    Path(id): Path<String>,
    Json(request): Json<LifecycleRequest>,
) -> axum::response::Response {
    let sent = match uuid::Uuid::parse_str(&id) {
        Ok(id) => state.send_lifecycle(id, request.lifecycle_event).await,
        Err(_) => None,
    };
    match sent {
        Some(record) => Json(record).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no subscription {id}")})),
        )
            .into_response(),
    }
}

async fn requests(State(state): State<SimState>) -> impl IntoResponse {
    Json(state.requests())
}

async fn clear_requests(State(state): State<SimState>) -> StatusCode {
    state.clear_requests();
    StatusCode::NO_CONTENT
}

async fn reset(State(state): State<SimState>) -> StatusCode {
    state.reset();
    StatusCode::NO_CONTENT
}

async fn scenario(State(state): State<SimState>) -> Json<Value> {
    Json(credentials(&state.scenario()))
}

async fn load_scenario(
    State(state): State<SimState>,
    Json(scenario): Json<Scenario>,
) -> StatusCode {
    state.load(scenario);
    StatusCode::NO_CONTENT
}

async fn faults(State(state): State<SimState>) -> Json<Faults> {
    Json(state.faults())
}

async fn set_faults(State(state): State<SimState>, Json(faults): Json<Faults>) -> StatusCode {
    state.set_faults(faults);
    StatusCode::NO_CONTENT
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClockSettings {
    /// How far ahead (negative: behind) the login authority's clock runs for the time checks
    /// of client assertions.
    offset_seconds: i64,
}

async fn set_clock(State(state): State<SimState>, Json(clock): Json<ClockSettings>) -> StatusCode {
    state.set_clock_offset(chrono::Duration::seconds(clock.offset_seconds));
    StatusCode::NO_CONTENT
}

#[derive(serde::Deserialize, serde::Serialize)]
struct ThrottleSettings {
    /// Multiplies Microsoft's budgets (1.0); budgets restart full when it changes.
    scale: f64,
}

async fn throttle(State(state): State<SimState>) -> Json<ThrottleSettings> {
    Json(ThrottleSettings {
        scale: state.throttle().scale(),
    })
}

async fn set_throttle(
    State(state): State<SimState>,
    Json(settings): Json<ThrottleSettings>,
) -> StatusCode {
    if !(settings.scale > 0.0 && settings.scale.is_finite()) {
        return StatusCode::UNPROCESSABLE_ENTITY;
    }
    *state.throttle() = crate::throttle::Throttle::with_scale(settings.scale);
    StatusCode::NO_CONTENT
}

/// What an MSP would paste for each tenant, and what the simulator will say about it.
pub fn credentials(scenario: &Scenario) -> Value {
    let tenants: Vec<Value> = scenario
        .tenants
        .iter()
        .map(|t| {
            let app = t.apps.first();
            let expect = match app {
                None => "no app registration",
                Some(app) if app.home_tenant.is_some() => match &app.service_principal {
                    None => "partner customer: not consented",
                    Some(sp) if sp.roles_propagate_seconds > 0 => {
                        "partner customer: consent propagating"
                    }
                    Some(_) => "partner customer: consented",
                },
                Some(app) if app.secrets.iter().all(|s| s.end <= chrono::Utc::now()) => {
                    "secret expired"
                }
                Some(app) => match &app.service_principal {
                    None => "no service principal",
                    Some(sp) if sp.directory_roles.is_empty() => {
                        "no directory role on the service principal"
                    }
                    Some(sp)
                        if crate::permissions::DEFAULT_REQUIRED
                            .iter()
                            .any(|p| !sp.granted.iter().any(|g| g == p)) =>
                    {
                        "permissions missing"
                    }
                    Some(_) => "healthy",
                },
            };
            json!({
                "name": t.name,
                "display_name": t.display_name,
                "tenant_id": t.id,
                "domains": t.domains,
                "users": t.users,
                "client_id": app.map(|a| a.client_id),
                "client_secret": app.and_then(|a| a.secrets.first()).map(|s| s.value.clone()),
                "secret_id": app.and_then(|a| a.secrets.first()).map(|s| s.key_id),
                "expect": expect,
            })
        })
        .collect();
    let partners: Vec<Value> = scenario
        .tenants
        .iter()
        .filter(|t| !t.gdap_relationships.is_empty())
        .map(|t| {
            let app = t.apps.iter().find(|a| a.home_tenant.is_none());
            json!({
                "name": t.name,
                "display_name": t.display_name,
                "tenant_id": t.id,
                "client_id": app.map(|a| a.client_id),
                "client_secret": app.and_then(|a| a.secrets.first()).map(|s| s.value.clone()),
                "sign_in_audience": app.map(|a| a.sign_in_audience.as_str()),
                "redirect_uris": app.map(|a| a.redirect_uris.clone()),
                "customers": t.gdap_relationships.iter().map(|r| json!({
                    "tenant_id": r.customer_tenant_id,
                    "display_name": r.customer_display_name,
                    "relationship_id": r.id,
                    "status": r.status.as_str(),
                    "end": r.end(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    if partners.is_empty() {
        return json!({"tenants": tenants});
    }
    json!({"tenants": tenants, "partners": partners})
}
