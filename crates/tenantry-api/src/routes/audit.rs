//! `/api/v1/audit-events`: the MSP's hash-chained audit log, listed (newest first, by
//! cursor), exported as NDJSON (oldest first, streamed page by page so an export of any
//! size holds little memory), and verified link by link.

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tenantry_store::audit::{AuditEvent, AuditFilter, Verification};
use tenantry_store::{Principal, Store};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::app::AppState;
use crate::caller::Caller;
use crate::extract::ApiQuery;
use crate::problem::{ApiError, FieldError, Problem};

const PROBLEM: &str = "application/problem+json";
const KIND_MAX: usize = 64;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this organization's; one the key cannot see (another MSP's, or unknown)
    /// answers 404, never an empty list.
    organization: Option<Uuid>,
    action_id: Option<Uuid>,
    /// e.g. `action.requested`, `action.approved`, `action.finished`, `policy.updated`.
    kind: Option<String>,
    since: Option<chrono::DateTime<chrono::Utc>>,
    until: Option<chrono::DateTime<chrono::Utc>>,
    /// 1–100 (default 50); list only.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page; list only.
    cursor: Option<String>,
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter, ApiError> {
        if self.kind.as_ref().is_some_and(|k| k.len() > KIND_MAX) {
            return Err(ApiError::validation(vec![FieldError::new(
                "kind",
                "must be at most 64 characters",
            )]));
        }
        Ok(AuditFilter {
            organization: self.organization,
            action_id: self.action_id,
            kind: self.kind.clone(),
            since: self.since,
            until: self.until,
        })
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    #[schema(value_type = Vec<crate::schemas::AuditEvent>)]
    pub data: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}

/// Audit events, newest first.
#[utoipa::path(get, path = "/api/v1/audit-events", tag = "audit", security(("api_key" = [])), params(AuditQuery),
    responses((status = 200, description = "A page of events", body = AuditPage),
        (status = 403, description = "A self-service gateway key", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid filter", body = Problem, content_type = PROBLEM)))]
pub async fn list_audit_events(
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation(vec![FieldError::new(
            "limit",
            "must be between 1 and 100",
        )]));
    }
    let cursor = match query.cursor.as_deref().map(str::parse::<i64>) {
        None => None,
        Some(Ok(seq)) if seq > 0 => Some(seq),
        Some(_) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "cursor",
                "is not a cursor this API returned",
            )]));
        }
    };
    let filter = query.filter()?;
    let mut rows = caller
        .scope()
        .audit_events(&filter, cursor, i64::from(limit) + 1, true)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last().map(|e| e.seq.to_string()))
        .flatten();
    Ok(Json(AuditPage {
        data: rows,
        next_cursor,
    }))
}

/// Audit events matching the filters, oldest first, one JSON object per line.
#[utoipa::path(get, path = "/api/v1/audit-events/export", tag = "audit", security(("api_key" = [])), params(AuditQuery),
    responses((status = 200, description = "NDJSON, one event per line", content_type = "application/x-ndjson", body = String),
        (status = 403, description = "A self-service gateway key", body = Problem, content_type = PROBLEM)))]
pub async fn export_audit_events(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let filter = query.filter()?;
    // Checks the role and organization before the first byte goes out.
    let first = caller
        .scope()
        .audit_events(&filter, None, 500, false)
        .await?;
    let principal = caller.scope().principal().clone();
    let store = state.store.clone();
    let stream = futures_util::stream::unfold(
        Export {
            store,
            principal,
            filter,
            page: Some(first),
        },
        next_chunk,
    );
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

struct Export {
    store: Store,
    principal: Principal,
    filter: AuditFilter,
    /// The page to send next; `None` once the last one went out.
    page: Option<Vec<AuditEvent>>,
}

async fn next_chunk(mut export: Export) -> Option<(Result<Vec<u8>, std::io::Error>, Export)> {
    let page = export.page.take()?;
    if page.is_empty() {
        return None;
    }
    let mut chunk = Vec::new();
    for event in &page {
        if serde_json::to_writer(&mut chunk, event).is_err() {
            return Some((Err(std::io::Error::other("serializing an event")), export));
        }
        chunk.push(b'\n');
    }
    if page.len() == 500 {
        let after = page.last().map(|e| e.seq);
        match export
            .store
            .scope(&export.principal)
            .audit_events(&export.filter, after, 500, false)
            .await
        {
            Ok(next) => export.page = Some(next),
            Err(error) => {
                tracing::error!(%error, "audit export stopped");
                return Some((Err(std::io::Error::other("reading the audit log")), export));
            }
        }
    }
    Some((Ok(chunk), export))
}

/// Walks the MSP's whole chain and reports the first broken link (owner or admin key
/// without an organization limit).
#[utoipa::path(get, path = "/api/v1/audit-events/verify", tag = "audit", security(("api_key" = [])),
    responses((status = 200, description = "`valid`, events checked, the head hash or the first broken link", body = crate::schemas::AuditVerification),
        (status = 403, description = "Not an unlimited owner or admin key", body = Problem, content_type = PROBLEM)))]
pub async fn verify_audit_events(caller: Caller) -> Result<Json<Verification>, ApiError> {
    Ok(Json(caller.scope().verify_audit().await?))
}
