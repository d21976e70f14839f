//! Probes and documents for operators and load balancers: `/healthz` (the process answers),
//! `/readyz` (database reachable and migrated), `/metrics` (Prometheus), the OpenAPI
//! document and the docs page. None needs a key; none reveals MSP data.

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use tenantry_store::Readiness;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::problem::{ApiError, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Status)))]
pub async fn healthz() -> axum::Json<Status> {
    axum::Json(Status { status: "ok" })
}

/// Readiness: the database answers and all migrations are applied.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Status),
        (status = 503, description = "Not ready", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Status>, ApiError> {
    match state.store.readiness().await {
        Readiness::Ready => Ok(axum::Json(Status { status: "ready" })),
        Readiness::DatabaseUnreachable => {
            Err(ApiError::NotReady("The database does not answer.".into()))
        }
        Readiness::MigrationsPending { pending } => Err(ApiError::NotReady(format!(
            "{pending} database migration(s) are not applied yet; run `tenantry migrate`."
        ))),
    }
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics", content_type = "application/openmetrics-text", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    state.metrics.set_key_lookups(state.store.key_lookups());
    let queue = state.store.queue();
    match (queue.depth().await, queue.latency().await) {
        (Ok(depth), Ok(wait)) => state.metrics.set_queue(&depth, wait),
        (Err(error), _) | (_, Err(error)) => {
            tracing::warn!(%error, "reading queue figures for /metrics failed");
        }
    }
    let text = state.metrics.render().map_err(ApiError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.docs.json.clone(),
    )
        .into_response()
}

/// A human-readable list of every operation.
#[utoipa::path(get, path = "/api/docs", tag = "operations",
    responses((status = 200, description = "HTML page", content_type = "text/html", body = String)))]
pub async fn docs_page(State(state): State<AppState>) -> Html<String> {
    Html(state.docs.html.clone())
}
