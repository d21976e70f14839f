//! Identity actions over HTTP: `POST /api/v1/organizations/{id}/actions` hands a request
//! to [`tenantry_actions::submit`] (the checks shared with webhook playbooks) and shapes
//! its answer; `GET /api/v1/actions[/{id}]` shows actions with each Graph step;
//! `approve`/`deny` decide (four eyes); `reveal` hands a generated password over once.

mod problems;
mod view;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use tenantry_actions::{SubmitRequest, Submitted};
use tenantry_domain::actions::ActionKind;
use tenantry_domain::{ActionId, ActionState, OrganizationId, Role};
use tenantry_store::MspScope;
use tenantry_store::actions::{ActionFilter, Actor, Verdict};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub use view::ActionView;
use view::view;

use crate::app::AppState;
use crate::caller::Caller;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::pagination::{PageQuery, Paginated};
use crate::problem::{ApiError, FieldError, PROBLEM_CONTENT_TYPE as PROBLEM, Problem};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// `password_reset`, `mfa_reset`, `unblock_signin`, `revoke_sessions`,
    /// `disable_account`, `enable_account`, `update_user_profile`, `update_photo`,
    /// `grant_access`, `revoke_access`, `create_user`, or an Exchange Online action:
    /// `clear_mailbox_forwarding`, `set_mailbox_forwarding`, `disable_inbox_rules`,
    /// `create_shared_mailbox`, `convert_to_shared_mailbox`, `grant_mailbox_access`,
    /// `revoke_mailbox_access`, `create_distribution_group`,
    /// `add_distribution_group_member`, `remove_distribution_group_member`,
    /// `hide_from_address_lists` (docs/exchange.md); the playbooks `offboard_user` and
    /// `remediate_compromised_user`; `assign_license` and `remove_license`.
    action: String,
    /// The user: UPN, mail or object id; a list of up to 50 for `disable_account`,
    /// `enable_account`, `revoke_sessions`, the licence actions and the distribution-group
    /// member actions;
    /// the new UPN for `create_user`; the new address for `create_shared_mailbox` and
    /// `create_distribution_group`; a mailbox's address for the mailbox-access actions
    /// and `hide_from_address_lists`.
    #[schema(value_type = Object)]
    target: Value,
    #[schema(value_type = Object)]
    #[serde(default)]
    parameters: Value,
    /// A technician's name or ticket reference; through a self-service gateway key, the
    /// employee (UPN, mail or object id) on whose behalf the gateway asks.
    requested_by: Option<String>,
    /// Show the Graph calls and the policy's decision without doing anything.
    #[serde(default)]
    dry_run: bool,
}

impl From<ActionRequest> for SubmitRequest {
    fn from(request: ActionRequest) -> Self {
        Self {
            action: request.action,
            target: request.target,
            parameters: request.parameters,
            requested_by: request.requested_by,
            dry_run: request.dry_run,
        }
    }
}

/// An optional free-text field, checked like every name (1 to `max` characters, no
/// control characters).
fn checked_text(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>, ApiError> {
    value
        .map(|raw| {
            tenantry_domain::name::checked_text(raw, max)
                .map(str::to_owned)
                .map_err(|e| ApiError::validation(vec![FieldError::new(field, e.to_string())]))
        })
        .transpose()
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => {
            let key = value.to_str().unwrap_or("").trim();
            if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
                Err(ApiError::validation(vec![FieldError::new(
                    "Idempotency-Key",
                    "must be 1 to 255 visible ASCII characters",
                )]))
            } else {
                Ok(Some(key.to_owned()))
            }
        }
    }
}

/// Request an action on a user of the organization (technician or higher, or a
/// self-service gateway for an employee).
#[utoipa::path(post, path = "/api/v1/organizations/{id}/actions", tag = "actions", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"),
        ("Idempotency-Key" = String, Header, description = "Required unless dry_run: the same key and body return the same action")),
    request_body = ActionRequest,
    responses((status = 201, description = "Queued, or waiting for approval", body = ActionView),
        (status = 200, description = "A replay of an earlier request with this Idempotency-Key (the action), or a dry run (its plan)", body = crate::schemas::ActionOrPlan),
        (status = 403, description = "ACTION_DISABLED, SELF_SERVICE_NOT_ALLOWED, PRIVILEGED_TARGET or FORBIDDEN", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM),
        (status = 422, description = "INVALID_REQUEST, IDEMPOTENCY_KEY_REUSED, TARGET_NOT_FOUND or CAPABILITY_UNAVAILABLE", body = Problem, content_type = PROBLEM),
        (status = 503, description = "UPSTREAM_UNAVAILABLE", body = Problem, content_type = PROBLEM)))]
pub async fn request_action(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(organization): ApiPath<OrganizationId>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let scope = caller.scope();
    scope.may_request_actions()?;
    let hash = tenantry_actions::request_hash(organization, &body);
    let request: ActionRequest = serde_json::from_value(body)
        .map_err(|e| ApiError::validation(vec![FieldError::new("body", e.to_string())]))?;
    let idempotency_key = idempotency_key(&headers)?;
    let submitted = tenantry_actions::submit(
        &state.graph,
        &scope,
        organization,
        request.into(),
        idempotency_key,
        hash,
        None,
    )
    .await?;
    Ok(match submitted {
        Submitted::DryRun(plan) => Json(plan).into_response(),
        Submitted::Replayed(record, steps) => {
            let mut response = Json(view(record, Some(steps))).into_response();
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            response
        }
        Submitted::Created(record) => {
            let location = format!("/api/v1/actions/{}", record.action_id);
            let mut response =
                (StatusCode::CREATED, Json(view(record, Some(Vec::new())))).into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
    })
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActionQuery {
    /// Only this organization's; one the key cannot see (another MSP's, or unknown)
    /// answers 404, never an empty list.
    organization: Option<Uuid>,
    state: Option<String>,
    action: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The MSP's actions, newest first (a gateway key sees only what it requested).
#[utoipa::path(get, path = "/api/v1/actions", tag = "actions", security(("api_key" = [])), params(ActionQuery),
    responses((status = 200, description = "A page of actions", body = Paginated<ActionView>),
        (status = 422, description = "Invalid filter", body = Problem, content_type = PROBLEM)))]
pub async fn list_actions(
    caller: Caller,
    ApiQuery(query): ApiQuery<ActionQuery>,
) -> Result<Json<Paginated<ActionView>>, ApiError> {
    let page = PageQuery::new(query.limit, query.cursor).to_page()?;
    if let Some(state) = &query.state
        && state.parse::<ActionState>().is_err()
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "state",
            format!("must be one of {}", ActionState::names()),
        )]));
    }
    if let Some(action) = &query.action
        && action.parse::<ActionKind>().is_err()
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "action",
            "is not an action Tenantry offers",
        )]));
    }
    let filter = ActionFilter {
        organization: query.organization,
        state: query.state,
        action: query.action,
        requested_by_key: None,
    };
    let rows = caller
        .scope()
        .actions(filter, page.after, i64::from(page.limit))
        .await?;
    Ok(Json(Paginated::from_rows(
        rows,
        page,
        |a| a.action_id.as_uuid(),
        |a| view(a, None),
    )))
}

/// One action with each Graph step, its status and Microsoft's request id.
#[utoipa::path(get, path = "/api/v1/actions/{id}", tag = "actions", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The action's id")),
    responses((status = 200, description = "The action", body = ActionView),
        (status = 404, description = "No such action for this key", body = Problem, content_type = PROBLEM)))]
pub async fn get_action(
    caller: Caller,
    ApiPath(id): ApiPath<ActionId>,
) -> Result<Json<ActionView>, ApiError> {
    let (record, steps) = caller.scope().action(id).await?;
    Ok(Json(view(record, Some(steps))))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// Why (kept in the audit log).
    reason: Option<String>,
    /// Through a self-service gateway key: the employee deciding (a member of one of the
    /// policy's approver groups).
    approver: Option<String>,
}

/// The employee a gateway names for action `id`, found in the action's organization.
async fn employee_of_action(
    state: &AppState,
    scope: &MspScope<'_>,
    id: ActionId,
    who: &str,
) -> Result<Uuid, ApiError> {
    Ok(tenantry_actions::resolve_employee(&state.graph, scope, id, who).await?)
}

async fn decide(
    state: &AppState,
    caller: &Caller,
    id: ActionId,
    body: DecisionBody,
    approve: bool,
) -> Result<Json<ActionView>, ApiError> {
    let scope = caller.scope();
    let reason = checked_text("reason", body.reason.as_deref(), 500)?;
    let approver = checked_text("approver", body.approver.as_deref(), 256)?;
    let employee = if scope.principal().role() == Role::SelfServiceGateway {
        let Some(who) = approver.as_deref() else {
            return Err(ApiError::validation(vec![FieldError::new(
                "approver",
                "is required with a self-service gateway key: the employee deciding",
            )]));
        };
        Some(employee_of_action(state, &scope, id, who).await?)
    } else {
        if approver.is_some() {
            return Err(ApiError::validation(vec![FieldError::new(
                "approver",
                "is only for self-service gateway keys",
            )]));
        }
        None
    };
    let decider: Actor = scope.actor(employee, None);
    let record = scope
        .decide_action(id, &decider, Verdict { approve, reason })
        .await?;
    Ok(Json(view(record, None)))
}

/// Approve a pending action: it is queued at once. Nobody approves their own request.
#[utoipa::path(post, path = "/api/v1/actions/{id}/approve", tag = "actions", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The action's id")), request_body = DecisionBody,
    responses((status = 200, description = "Approved and queued", body = ActionView),
        (status = 403, description = "SELF_APPROVAL or NOT_AN_APPROVER", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such action for this key", body = Problem, content_type = PROBLEM),
        (status = 409, description = "ACTION_STATE_CONFLICT: not pending, or expired", body = Problem, content_type = PROBLEM)))]
pub async fn approve_action(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ActionId>,
    body: Option<ApiJson<DecisionBody>>,
) -> Result<Json<ActionView>, ApiError> {
    decide(
        &state,
        &caller,
        id,
        body.map(|b| b.0).unwrap_or_default(),
        true,
    )
    .await
}

/// Deny a pending action.
#[utoipa::path(post, path = "/api/v1/actions/{id}/deny", tag = "actions", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The action's id")), request_body = DecisionBody,
    responses((status = 200, description = "Denied", body = ActionView),
        (status = 403, description = "SELF_APPROVAL or NOT_AN_APPROVER", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such action for this key", body = Problem, content_type = PROBLEM),
        (status = 409, description = "ACTION_STATE_CONFLICT", body = Problem, content_type = PROBLEM)))]
pub async fn deny_action(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ActionId>,
    body: Option<ApiJson<DecisionBody>>,
) -> Result<Json<ActionView>, ApiError> {
    decide(
        &state,
        &caller,
        id,
        body.map(|b| b.0).unwrap_or_default(),
        false,
    )
    .await
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RevealBody {
    /// Through a self-service gateway key: the employee who asked.
    requested_by: Option<String>,
}

/// Reveal a generated password, once, to the requester; it is destroyed as it is shown.
#[utoipa::path(post, path = "/api/v1/actions/{id}/reveal", tag = "actions", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The action's id")), request_body = RevealBody,
    responses((status = 200, description = "The password (`Cache-Control: no-store`)", body = crate::schemas::RevealedPassword),
        (status = 403, description = "Not the requester", body = Problem, content_type = PROBLEM),
        (status = 409, description = "ACTION_STATE_CONFLICT: not run yet", body = Problem, content_type = PROBLEM),
        (status = 410, description = "SECRET_GONE: revealed already or expired", body = Problem, content_type = PROBLEM)))]
pub async fn reveal_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ActionId>,
    body: Option<ApiJson<RevealBody>>,
) -> Result<Response, ApiError> {
    let scope = caller.scope();
    let body = body.map(|b| b.0).unwrap_or_default();
    let employee = if scope.principal().role() == Role::SelfServiceGateway {
        let who = checked_text("requested_by", body.requested_by.as_deref(), 256)?;
        let who = who.as_deref().ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                "requested_by",
                "is required with a self-service gateway key: the employee who asked",
            )])
        })?;
        Some(employee_of_action(&state, &scope, id, who).await?)
    } else {
        None
    };
    let actor = scope.actor(employee, None);
    let password = scope.reveal_password(id, &actor).await?;
    let mut response = Json(json!({
        "action_id": id,
        "password": password.expose_secret(),
        "force_change_at_next_sign_in": true,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
