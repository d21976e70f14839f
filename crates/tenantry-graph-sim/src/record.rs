//! The request log (for assertions: which Graph calls were made) and the fault injection
//! applied to every served request.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::SimState;

/// The log keeps at most this many records (the oldest tenth goes when full).
pub const MAX_RECORDS: usize = 200_000;

#[derive(Clone, Debug, Serialize)]
pub struct RequestRecord {
    pub at: DateTime<Utc>,
    pub method: String,
    /// Path and query as sent.
    pub path: String,
    /// The tenant (GUID or domain as addressed, or the token's `tid`), when known.
    pub tenant: Option<String>,
    pub status: u16,
    pub duration_ms: f64,
    /// The `x-ms-throttle-priority` header, when sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_priority: Option<String>,
    /// The cmdlet an Exchange admin API request ran (`Get-Mailbox`), by its canonical name
    /// (as sent when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmdlet: Option<String>,
}

/// The tenant a request concerns: the first path segment of login requests, the `tid` of
/// the bearer token (read without verification) for Graph requests.
fn tenant_of(request: &Request) -> Option<String> {
    let path = request.uri().path();
    if path.starts_with("/adminapi/") {
        // `/adminapi/{version}/{tenant}/InvokeCommand`: the tenant as addressed.
        return path.split('/').nth(3).map(str::to_owned);
    }
    if path.starts_with("/v1.0/") {
        let token = request
            .headers()
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?;
        let payload = token.split('.').nth(1)?;
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        return claims.get("tid")?.as_str().map(str::to_owned);
    }
    path.trim_start_matches('/')
        .split('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

pub async fn observe(State(state): State<SimState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.uri().path().to_owned(), |p| p.to_string());
    let tenant = tenant_of(&request);
    let throttle_priority = request
        .headers()
        .get("x-ms-throttle-priority")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let resolved_tenant = tenant.as_deref().and_then(|t| {
        let world = state.world();
        world
            .tenant_index(t)
            .map(|i| world.tenants[i].id.to_string())
    });
    let fault = state.decide_fault(
        resolved_tenant.as_deref(),
        request.method().as_str(),
        request.uri().path(),
    );
    if let Some(delay) = fault.delay {
        tokio::time::sleep(delay).await;
    }
    let response = match fault.outcome {
        crate::faults::Outcome::Pass => next.run(request).await,
        other => other.respond(),
    };
    let cmdlet = response
        .extensions()
        .get::<crate::exchange::CmdletName>()
        .map(|c| c.0.clone());
    state.record(RequestRecord {
        at: Utc::now(),
        method,
        path,
        tenant,
        status: response.status().as_u16(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        throttle_priority,
        cmdlet,
    });
    response
}
