//! `/api/v1/webhook-endpoints`: where SIEMs and PSAs send remediation events, each with a
//! signing secret shown once and rules mapping event types to playbooks; and
//! `/api/v1/webhook-events`: every delivery with its playbook's outcome.

use axum::Json;
use axum::http::{HeaderName, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use tenantry_domain::OrganizationId;
use tenantry_domain::webhooks::{Rule, rule_problems};
use tenantry_store::webhooks::{EndpointRecord, EventRecord};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::caller::Caller;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::pagination::{PageQuery, Paginated};
use crate::problem::{ApiError, FieldError, Problem};

const PROBLEM: &str = "application/problem+json";
/// For answers that carry a signing secret: no cache may keep them.
const NO_STORE: [(HeaderName, &str); 1] = [(header::CACHE_CONTROL, "no-store")];

#[derive(serde::Serialize, ToSchema)]
pub struct EndpointView {
    pub id: Uuid,
    pub name: String,
    /// `null`: every organization of the MSP (events name theirs).
    pub organization_id: Option<Uuid>,
    /// Where to send events (relative to the service's address).
    pub url: String,
    #[schema(value_type = Vec<Object>)]
    pub rules: Value,
    pub created_by: Uuid,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Until when the previous secret still verifies, after a rotation.
    pub previous_secret_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Only in the answer that creates or rotates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

fn endpoint_view(record: EndpointRecord, secret: Option<&SecretString>) -> EndpointView {
    EndpointView {
        url: format!("/hooks/{}", record.endpoint_id),
        id: record.endpoint_id,
        name: record.name,
        organization_id: record.organization_id.map(Uuid::from),
        rules: record.rules,
        created_by: record.created_by,
        created_at: record.created_at,
        revoked_at: record.revoked_at,
        previous_secret_expires_at: record.previous_expires_at,
        signing_secret: secret.map(|s| s.expose_secret().to_owned()),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    name: String,
    /// Limit the endpoint to one organization; omit for every organization of the MSP.
    organization_id: Option<Uuid>,
    /// `[{"event": "user.compromised", "actions": ["revoke_sessions", "password_reset",
    /// "mfa_reset"], "approval": "policy" | "none"}]`
    #[schema(value_type = Vec<Object>)]
    rules: Vec<Rule>,
}

/// Create an endpoint (owner or admin without an organization limit). The signing
/// secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints", tag = "webhooks", security(("api_key" = [])),
    request_body = NewEndpoint,
    responses((status = 201, description = "Created, with its signing secret (shown once; `Cache-Control: no-store`)", body = EndpointView),
        (status = 403, description = "Not an unlimited owner or admin key", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid name, organization or rules", body = Problem, content_type = PROBLEM)))]
pub async fn create_endpoint(
    caller: Caller,
    ApiJson(body): ApiJson<NewEndpoint>,
) -> Result<
    (
        StatusCode,
        [(HeaderName, &'static str); 1],
        Json<EndpointView>,
    ),
    ApiError,
> {
    let mut problems: Vec<FieldError> = rule_problems(&body.rules)
        .into_iter()
        .map(|(field, message)| FieldError::new(field, message))
        .collect();
    let name = tenantry_domain::DisplayName::parse(&body.name)
        .map_err(|e| problems.push(FieldError::new("name", e.to_string())))
        .ok();
    let Some(name) = name.filter(|_| problems.is_empty()) else {
        return Err(ApiError::validation(problems));
    };
    let (record, secret) = caller
        .scope()
        .create_webhook_endpoint(name.as_str(), body.organization_id, &body.rules)
        .await?;
    Ok((
        StatusCode::CREATED,
        NO_STORE,
        Json(endpoint_view(record, Some(&secret))),
    ))
}

/// The MSP's endpoints, newest first (no secrets).
#[utoipa::path(get, path = "/api/v1/webhook-endpoints", tag = "webhooks", security(("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of endpoints", body = Paginated<EndpointView>)))]
pub async fn list_endpoints(
    caller: Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paginated<EndpointView>>, ApiError> {
    let page = query.to_page()?;
    let rows = caller
        .scope()
        .webhook_endpoints(page.after, i64::from(page.limit))
        .await?;
    Ok(Json(Paginated::from_rows(
        rows,
        page,
        |e| e.endpoint_id,
        |e| endpoint_view(e, None),
    )))
}

/// One endpoint (no secret).
#[utoipa::path(get, path = "/api/v1/webhook-endpoints/{id}", tag = "webhooks", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    responses((status = 200, description = "The endpoint", body = EndpointView),
        (status = 404, description = "No such endpoint for this key", body = Problem, content_type = PROBLEM)))]
pub async fn get_endpoint(
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<EndpointView>, ApiError> {
    Ok(Json(endpoint_view(
        caller.scope().webhook_endpoint(id).await?,
        None,
    )))
}

/// Revoke an endpoint: deliveries to it are refused from now on.
#[utoipa::path(delete, path = "/api/v1/webhook-endpoints/{id}", tag = "webhooks", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    responses((status = 200, description = "Revoked", body = EndpointView),
        (status = 403, description = "Not an unlimited owner or admin key", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such endpoint for this key", body = Problem, content_type = PROBLEM)))]
pub async fn revoke_endpoint(
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<EndpointView>, ApiError> {
    Ok(Json(endpoint_view(
        caller.scope().revoke_webhook_endpoint(id).await?,
        None,
    )))
}

/// A new signing secret (shown once); the previous one still verifies for 24 hours, so
/// senders can switch without losing events.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    responses((status = 200, description = "The endpoint with its new secret (`Cache-Control: no-store`)", body = EndpointView),
        (status = 403, description = "Not an unlimited owner or admin key", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such active endpoint for this key", body = Problem, content_type = PROBLEM)))]
pub async fn rotate_secret(
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<([(HeaderName, &'static str); 1], Json<EndpointView>), ApiError> {
    let (record, secret) = caller.scope().rotate_webhook_secret(id).await?;
    Ok((NO_STORE, Json(endpoint_view(record, Some(&secret)))))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    endpoint: Option<Uuid>,
    state: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct EventView {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub organization_id: Option<Uuid>,
    /// The sender's event id.
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub target: Option<String>,
    /// `accepted`, `running`, `waiting_for_approval`, `completed`, `failed` or `ignored`
    /// (no rule maps the type).
    pub state: String,
    /// One entry per playbook step: the action and its state, or why it was refused.
    #[schema(value_type = Vec<Object>)]
    pub outcome: Value,
    pub job_id: Option<Uuid>,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<EventRecord> for EventView {
    fn from(e: EventRecord) -> Self {
        Self {
            id: e.webhook_event_id,
            endpoint_id: e.endpoint_id,
            organization_id: e.organization_id.map(Uuid::from),
            event_id: e.event_id,
            event_type: e.event_type,
            target: e.target,
            state: e.state.as_str().to_owned(),
            outcome: e.outcome,
            job_id: e.job_id.map(Uuid::from),
            received_at: e.received_at,
            finished_at: e.finished_at,
        }
    }
}

/// Deliveries with their outcome, newest first.
#[utoipa::path(get, path = "/api/v1/webhook-events", tag = "webhooks", security(("api_key" = [])), params(EventQuery),
    responses((status = 200, description = "A page of deliveries", body = Paginated<EventView>),
        (status = 422, description = "Invalid filter", body = Problem, content_type = PROBLEM)))]
pub async fn list_webhook_events(
    caller: Caller,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> Result<Json<Paginated<EventView>>, ApiError> {
    let page = PageQuery::new(query.limit, query.cursor).to_page()?;
    if let Some(state) = &query.state
        && state.parse::<tenantry_domain::WebhookEventState>().is_err()
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "state",
            format!(
                "must be one of {}",
                tenantry_domain::WebhookEventState::names()
            ),
        )]));
    }
    let rows = caller
        .scope()
        .webhook_events(
            query.endpoint,
            query.state.as_deref(),
            page.after,
            i64::from(page.limit),
        )
        .await?;
    Ok(Json(Paginated::from_rows(
        rows,
        page,
        |e| e.webhook_event_id,
        EventView::from,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeNotificationsBody {
    enabled: bool,
}

async fn change_notifications_view(
    caller: &Caller,
    id: OrganizationId,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (enabled, subscriptions, received) = caller.scope().change_notifications(id).await?;
    Ok(Json(serde_json::json!({
        "enabled": enabled,
        "subscriptions": subscriptions,
        "notifications_last_day": received,
    })))
}

/// Whether Microsoft Graph tells Tenantry about changes to users and groups, the
/// subscriptions it holds, and the notifications received in the last day.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/change-notifications", tag = "webhooks", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id")),
    responses((status = 200, description = "The state", body = crate::schemas::ChangeNotifications),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM)))]
pub async fn get_change_notifications(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
) -> Result<Json<serde_json::Value>, ApiError> {
    change_notifications_view(&caller, id).await
}

/// Turn change notifications on or off (owner or admin). On: a job subscribes to users
/// and groups (Graph checks the service's public URL first) and renews before expiry;
/// each notification queues a delta discovery. Off: the subscriptions are deleted.
#[utoipa::path(put, path = "/api/v1/organizations/{id}/change-notifications", tag = "webhooks", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id")), request_body = ChangeNotificationsBody,
    responses((status = 200, description = "Saved; the subscriptions job is queued", body = crate::schemas::ChangeNotifications),
        (status = 403, description = "Not an unlimited owner or admin key", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM),
        (status = 422, description = "No public URL configured", body = Problem, content_type = PROBLEM)))]
pub async fn put_change_notifications(
    axum::extract::State(state): axum::extract::State<crate::app::AppState>,
    caller: Caller,
    ApiPath(organization): ApiPath<OrganizationId>,
    ApiJson(body): ApiJson<ChangeNotificationsBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.scope().ensure_organization(organization).await?;
    if body.enabled && state.public_url.is_none() {
        return Err(ApiError::validation(vec![FieldError::new(
            "enabled",
            "needs http.public_url (TENANTRY__HTTP__PUBLIC_URL): the address Microsoft Graph reaches this service at",
        )]));
    }
    caller
        .scope()
        .set_change_notifications(organization, body.enabled)
        .await?;
    change_notifications_view(&caller, organization).await
}
