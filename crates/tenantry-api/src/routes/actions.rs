//! Identity actions: `POST /api/v1/organizations/{id}/actions` checks a request (action,
//! parameters, targets resolved against the inventory then Graph, the tenant's
//! capability, the policy and the privileged-target guard) and queues it or holds it for
//! approval; `GET /api/v1/actions[/{id}]` shows actions with each Graph step;
//! `approve`/`deny` decide (four eyes); `reveal` hands a generated password over once.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tenantry_domain::actions::{self, ActionKind, MAX_TARGETS, Parameters, Resolved, Target};
use tenantry_domain::policy::{self, Decision, Requester};
use tenantry_domain::{ActionId, ErrorCode, OrganizationId, Role};
use tenantry_graph::TokenFailure;
use tenantry_graph::calls::GraphFailure;
use tenantry_store::actions::{
    ActionFilter, ActionRecord, Actor, Created, NewAction, Refusal, StepRecord, Verdict,
};
use tenantry_store::{MspScope, OrganizationRecord};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::app::AppState;
use crate::caller::Caller;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::pagination::{PageQuery, Paginated};
use crate::problem::{ApiError, FieldError, Problem, refusal};

const PROBLEM: &str = "application/problem+json";
const STATES: [&str; 9] = [
    "pending_approval",
    "approved",
    "denied",
    "expired",
    "queued",
    "running",
    "succeeded",
    "failed",
    "partially_succeeded",
];

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// `password_reset`, `mfa_reset`, `unblock_signin`, `revoke_sessions`,
    /// `disable_account`, `enable_account`, `update_user_profile`, `update_photo`,
    /// `grant_access`, `revoke_access` or `create_user`.
    action: String,
    /// The user: UPN, mail or object id; a list of up to 50 for `disable_account`,
    /// `enable_account` and `revoke_sessions`; the new UPN for `create_user`.
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

impl ActionRequest {
    /// A playbook step: `action` on `target`, nothing else.
    pub(crate) fn for_webhook(action: ActionKind, target: &str) -> Self {
        Self {
            action: action.as_str().to_owned(),
            target: Value::String(target.to_owned()),
            parameters: Value::Null,
            requested_by: None,
            dry_run: false,
        }
    }
}

#[derive(serde::Serialize, ToSchema)]
pub struct ActionView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub action: String,
    /// `pending_approval`, `approved`, `denied`, `expired`, `queued`, `running`,
    /// `succeeded`, `failed` or `partially_succeeded`.
    pub state: String,
    #[schema(value_type = Vec<Object>)]
    pub targets: Value,
    #[schema(value_type = Object)]
    pub parameters: Value,
    #[schema(value_type = Object)]
    pub requester: Value,
    #[schema(value_type = Object)]
    pub approval: Value,
    #[schema(value_type = Vec<Object>)]
    pub privileged_targets: Value,
    pub job_id: Option<Uuid>,
    #[schema(value_type = Object)]
    pub error: Value,
    /// Whether a generated password waits for its one reveal.
    pub password_available: bool,
    #[schema(value_type = Vec<Object>)]
    pub steps: Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn view(record: ActionRecord, steps: Option<Vec<StepRecord>>) -> ActionView {
    let password_available = record.password_available();
    ActionView {
        id: record.action_id,
        organization_id: record.organization_id,
        action: record.action,
        state: record.state,
        targets: record.targets,
        parameters: record.parameters,
        requester: json!({
            "kind": record.requester_kind,
            "api_key_id": record.requested_by_key,
            "requested_by": record.requested_by,
        }),
        approval: json!({
            "required": record.approval_required,
            "reason": record.approval_reason,
            "approvers": {"roles": record.approver_roles, "keys": record.approver_keys, "groups": record.approver_groups},
            "expires_at": record.expires_at,
            "decided_by_key": record.decided_by_key,
            "decided_by": record.decided_by,
            "decided_at": record.decided_at,
            "reason_given": record.decision_reason,
        }),
        privileged_targets: record.privileged_targets,
        job_id: record.job_id,
        error: match record.error_code {
            Some(code) => json!({"code": code, "message": record.error_message}),
            None => Value::Null,
        },
        password_available,
        steps: steps.map_or(Value::Null, |s| json!(s)),
        created_at: record.created_at,
        updated_at: record.updated_at,
        finished_at: record.finished_at,
    }
}

/// What a Graph failure during checks means for the caller.
fn graph_problem(failure: &GraphFailure) -> ApiError {
    match failure {
        GraphFailure::Throttled { .. } | GraphFailure::Unavailable(_) => refusal(
            ErrorCode::UpstreamUnavailable,
            "Microsoft did not answer in time, failed or throttled the request while Tenantry checked the target; nothing was done. Retry shortly",
        ),
        GraphFailure::Denied { code } => refusal(
            ErrorCode::CapabilityUnavailable,
            &format!(
                "Microsoft refused to let Tenantry read the target ({code}); check the app's permissions"
            ),
        ),
        // The object vanished or Microsoft refused the key as given: for the caller, the
        // target was not found.
        GraphFailure::NotFound | GraphFailure::Unexpected { .. } => refusal(
            ErrorCode::TargetNotFound,
            "Microsoft Graph did not find the target (it may have been deleted, or the key is not a valid UPN, mail or id)",
        ),
    }
}

/// The Graph client and token cache requests are checked with (the API's, or a worker's
/// for webhook playbooks).
#[derive(Clone)]
pub struct GraphAccess {
    pub http: tenantry_graph::GraphHttp,
    pub tokens: tenantry_graph::TokenCache,
}

/// Graph access for one organization while checking a request.
struct Tenant {
    http: tenantry_graph::GraphHttp,
    token: SecretString,
}

async fn tenant(
    graph: &GraphAccess,
    scope: &MspScope<'_>,
    organization: &OrganizationRecord,
) -> Result<Tenant, ApiError> {
    let (Some(tenant_id), Some(client_id)) = (organization.tenant_id, organization.client_id)
    else {
        return Err(refusal(
            ErrorCode::CapabilityUnavailable,
            "the organization has no Microsoft 365 credentials",
        ));
    };
    let (_, secret) = scope.credential(organization.id).await?;
    let http = graph.http.clone();
    let token = graph
        .tokens
        .token(&http, &tenant_id.to_string(), &client_id.to_string(), &secret)
        .await
        .map_err(|failure| match failure {
            TokenFailure::Unavailable(_) => refusal(
                ErrorCode::UpstreamUnavailable,
                "Microsoft's login service did not answer; nothing was done. Retry shortly",
            ),
            TokenFailure::Refused { .. } => refusal(
                ErrorCode::InvalidCredentials,
                "Entra refused the organization's stored credentials; re-validate it or replace its secret",
            ),
        })?;
    Ok(Tenant { http, token })
}

/// Deletes an organization's Graph subscriptions, best effort (before the organization
/// and its credentials go). Failures are logged: Graph drops them at expiry anyway.
pub(crate) async fn unsubscribe_everything(
    graph: &GraphAccess,
    scope: &MspScope<'_>,
    organization: OrganizationId,
) {
    let Ok((_, subscriptions, _)) = scope.change_notifications(organization).await else {
        return;
    };
    if subscriptions.is_empty() {
        return;
    }
    let Ok(record) = scope.organization(organization).await else {
        return;
    };
    let Ok(tenant) = tenant(graph, scope, &record).await else {
        tracing::warn!(%organization, "could not delete Graph subscriptions: no token");
        return;
    };
    for subscription in subscriptions {
        let path = format!("/subscriptions/{}", subscription.subscription_id);
        let deleted = tenantry_graph::actions::send(
            &tenant.http,
            &tenant.token,
            "DELETE",
            &path,
            tenantry_graph::actions::Body::None,
        )
        .await;
        if let Err(error) = deleted {
            tracing::warn!(%organization, %error, "could not delete a Graph subscription");
        }
    }
}

/// A user by UPN, mail or object id: the inventory first, then Graph.
async fn resolve_user(
    scope: &MspScope<'_>,
    organization: OrganizationId,
    graph: &Tenant,
    key: &str,
) -> Result<Option<Target>, ApiError> {
    if let Some(found) = scope.inventory_user_by_key(organization, key).await? {
        return Ok(Some(Target {
            id: Some(found.id),
            user_principal_name: found.user_principal_name,
            display_name: found.name,
        }));
    }
    let mut user = if key.parse::<Uuid>().is_ok() || key.contains('@') {
        tenantry_graph::actions::find_user(&graph.http, &graph.token, key)
            .await
            .map_err(|f| graph_problem(&f))?
    } else {
        None
    };
    if user.is_none() && key.contains('@') {
        user = tenantry_graph::actions::find_user_by_mail(&graph.http, &graph.token, key)
            .await
            .map_err(|f| graph_problem(&f))?;
    }
    Ok(user.and_then(|u| {
        Some(Target {
            id: Some(u["id"].as_str()?.parse().ok()?),
            user_principal_name: u["userPrincipalName"].as_str().map(str::to_owned),
            display_name: u["displayName"].as_str().map(str::to_owned),
        })
    }))
}

fn not_found(what: &str, key: &str) -> ApiError {
    let shown: String = key.chars().take(120).collect();
    refusal(
        ErrorCode::TargetNotFound,
        &format!("no {what} {shown:?} in the organization's inventory or in Microsoft Graph"),
    )
}

/// The target keys of a request: one string, or a list for bulk actions.
fn target_keys(kind: ActionKind, target: &Value) -> Result<Vec<String>, ApiError> {
    let keys: Vec<String> = match target {
        Value::String(one) => vec![one.trim().to_owned()],
        Value::Array(many) if kind.takes_many_targets() => many
            .iter()
            .map(|v| v.as_str().map(|s| s.trim().to_owned()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ApiError::validation(vec![FieldError::new("target", "must list strings")])
            })?,
        Value::Array(_) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "target",
                format!("{kind} takes one target"),
            )]));
        }
        _ => {
            return Err(ApiError::validation(vec![FieldError::new(
                "target",
                "is required: a UPN, mail or object id",
            )]));
        }
    };
    if keys.is_empty() || keys.len() > MAX_TARGETS {
        return Err(ApiError::validation(vec![FieldError::new(
            "target",
            format!("must name between 1 and {MAX_TARGETS} users"),
        )]));
    }
    if keys
        .iter()
        .any(|k| k.is_empty() || k.len() > 256 || k.chars().any(char::is_control))
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "target",
            "each target must be 1 to 256 characters",
        )]));
    }
    Ok(keys)
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

/// The request's fingerprint: organization and body, with object keys sorted.
pub(crate) fn request_hash(organization: Uuid, body: &Value) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(organization.as_bytes());
    hasher.update(
        tenantry_store::audit::canonical(body)
            .to_string()
            .as_bytes(),
    );
    hasher.finalize().to_vec()
}

/// The capability check against the organization's last validation report.
fn capability_missing(organization: &OrganizationRecord, kind: ActionKind) -> Option<ApiError> {
    let report = organization.validation_report.as_ref()?;
    let status = report["capabilities"]
        .as_array()?
        .iter()
        .find(|c| c["capability"] == kind.capability().as_str())?;
    if status["available"].as_bool() != Some(false) {
        return None;
    }
    let permissions = status["missing_permissions"].clone();
    // Names of directory roles, any one of which the app's service principal needs.
    let roles = status["missing_directory_role"].clone();
    let problem = Problem::new(
        ErrorCode::CapabilityUnavailable,
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("The organization's app cannot {kind} yet: grant what is listed, then re-validate the organization."),
    )
    .with("missing_permissions", permissions)
    .with("missing_directory_roles", roles);
    Some(ApiError::Described {
        problem: Box::new(problem),
        retry_after_secs: None,
    })
}

/// Request an action on a user of the organization (technician or higher, or a
/// self-service gateway for an employee).
#[utoipa::path(post, path = "/api/v1/organizations/{id}/actions", tag = "actions", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"),
        ("Idempotency-Key" = String, Header, description = "Required unless dry_run: the same key and body return the same action")),
    request_body = ActionRequest,
    responses((status = 201, description = "Queued, or waiting for approval", body = ActionView),
        (status = 200, description = "A replay of an earlier request with this Idempotency-Key, or a dry run", body = ActionView),
        (status = 403, description = "ACTION_DISABLED, SELF_SERVICE_NOT_ALLOWED, PRIVILEGED_TARGET or FORBIDDEN", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM),
        (status = 422, description = "INVALID_REQUEST, IDEMPOTENCY_KEY_REUSED, TARGET_NOT_FOUND or CAPABILITY_UNAVAILABLE", body = Problem, content_type = PROBLEM),
        (status = 503, description = "UPSTREAM_UNAVAILABLE", body = Problem, content_type = PROBLEM)))]
pub async fn request_action(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let scope = caller.scope();
    scope.may_request_actions()?;
    let hash = request_hash(id, &body);
    let request: ActionRequest = serde_json::from_value(body)
        .map_err(|e| ApiError::validation(vec![FieldError::new("body", e.to_string())]))?;
    let idempotency_key = idempotency_key(&headers)?;
    let submitted = submit(
        &state.graph,
        &scope,
        id,
        request,
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

/// A webhook playbook asking for an action.
pub(crate) struct WebhookOrigin {
    pub event: Uuid,
    pub endpoint_name: String,
    /// The rule says `approval: none`: the policy's approval is skipped (the
    /// privileged-target guard still applies).
    pub skip_policy_approval: bool,
}

/// What a request came to.
pub(crate) enum Submitted {
    DryRun(Value),
    Replayed(ActionRecord, Vec<StepRecord>),
    Created(ActionRecord),
}

/// Checks a request and stores it: parameters, targets, capability, guard, policy, and
/// the idempotency key. Shared by the API and webhook playbooks.
pub(crate) async fn submit(
    graph_access: &GraphAccess,
    scope: &MspScope<'_>,
    id: Uuid,
    request: ActionRequest,
    idempotency_key: Option<String>,
    hash: Vec<u8>,
    webhook: Option<WebhookOrigin>,
) -> Result<Submitted, ApiError> {
    let organization_id = OrganizationId::from_uuid(id);
    let organization = scope.organization(organization_id).await?;
    let kind: ActionKind = request.action.parse().map_err(|_| {
        ApiError::validation(vec![FieldError::new(
            "action",
            "is not an action Tenantry offers; see the API reference",
        )])
    })?;
    if idempotency_key.is_none() && !request.dry_run {
        return Err(ApiError::validation(vec![FieldError::new(
            "Idempotency-Key",
            "header is required, so a retried request never acts twice",
        )]));
    }
    if let Some(key) = &idempotency_key
        && !request.dry_run
        && let Some(record) = scope.replayed_action(key, &hash).await?
    {
        let (record, steps) = scope.action(ActionId::from_uuid(record.action_id)).await?;
        return Ok(Submitted::Replayed(record, steps));
    }
    let parameters = actions::parse_parameters(kind, &request.parameters).map_err(|errors| {
        ApiError::validation(
            errors
                .into_iter()
                .map(|e| FieldError::new(e.field, e.message))
                .collect(),
        )
    })?;
    let gateway = scope.principal().role() == Role::SelfServiceGateway;
    let requested_by = checked_text("requested_by", request.requested_by.as_deref(), 200)?;
    let keys = target_keys(kind, &request.target)?;
    // Checked before Graph is called; recorded once the requester is known.
    let capability = capability_missing(&organization, kind);
    let graph = match capability {
        None => Some(tenant(graph_access, scope, &organization).await?),
        Some(_) => None,
    };

    // Who asks.
    let employee = match (gateway, &graph) {
        (false, _) => None,
        (true, None) => Some(None),
        (true, Some(graph)) => {
            let Some(who) = requested_by.as_deref() else {
                return Err(ApiError::validation(vec![FieldError::new(
                    "requested_by",
                    "is required with a self-service gateway key: the employee asking",
                )]));
            };
            let found = resolve_user(scope, organization_id, graph, who)
                .await?
                .and_then(|t| t.id)
                .ok_or_else(|| not_found("employee", who))?;
            Some(Some(found))
        }
    };
    let actor = match (&webhook, employee) {
        (Some(origin), _) => scope.webhook_actor(origin.event, &origin.endpoint_name),
        (None, Some(user)) => scope.actor(user, None),
        (None, None) => scope.actor(None, requested_by.clone()),
    };
    let employee = employee.flatten();
    let (Some(graph), None) = (graph, &capability) else {
        if !request.dry_run {
            scope
                .record_action_refusal(
                    &actor,
                    Refusal {
                        organization: organization_id,
                        kind,
                        targets: json!(keys),
                        parameters: parameters.to_record(),
                        code: ErrorCode::CapabilityUnavailable,
                        detail: "the tenant has not granted what the action needs".into(),
                    },
                )
                .await?;
        }
        return Err(capability.unwrap_or_else(|| ApiError::internal("no Graph access")));
    };

    // What about.
    let mut targets = Vec::new();
    if kind.creates_target() {
        let upn = actions::parse_new_upn(&keys[0])
            .map_err(|e| ApiError::validation(vec![FieldError::new(e.field, e.message)]))?;
        if resolve_user(scope, organization_id, &graph, &upn)
            .await?
            .is_some()
        {
            return Err(ApiError::validation(vec![FieldError::new(
                "target",
                "a user with this principal name already exists",
            )]));
        }
        targets.push(Target {
            id: None,
            user_principal_name: Some(upn),
            display_name: match &parameters {
                Parameters::NewUser { profile, .. } => profile
                    .get("displayName")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                _ => None,
            },
        });
    } else {
        for key in &keys {
            let target = resolve_user(scope, organization_id, &graph, key)
                .await?
                .ok_or_else(|| not_found("user", key))?;
            if !targets.iter().any(|t: &Target| t.id == target.id) {
                targets.push(target);
            }
        }
    }
    let mut resolved = Resolved::default();
    if let Parameters::Group { group } = &parameters {
        let found = scope
            .inventory_groups_by_key(organization_id, group)
            .await?;
        resolved.group_id = match found.as_slice() {
            [one] => Some(one.id),
            [] => match group.parse::<Uuid>() {
                Ok(group_id) => {
                    tenantry_graph::actions::find_group(&graph.http, &graph.token, group_id)
                        .await
                        .map_err(|f| graph_problem(&f))?
                        .map(|_| group_id)
                }
                Err(_) => None,
            },
            _ => {
                return Err(ApiError::validation(vec![FieldError::new(
                    "parameters.group",
                    "matches several groups; give the group's object id",
                )]));
            }
        };
        if resolved.group_id.is_none() {
            return Err(not_found("group", group));
        }
    }
    if let Some(manager) = parameters.manager() {
        let found = resolve_user(scope, organization_id, &graph, manager)
            .await?
            .ok_or_else(|| not_found("manager", manager))?;
        resolved.manager_id = found.id;
    }

    // Privileged targets, as Microsoft says now.
    let mut privileged = Vec::new();
    let mut privileged_names = Vec::new();
    for target in &targets {
        let Some(user) = target.id else { continue };
        let roles = tenantry_graph::actions::user_roles(&graph.http, &graph.token, user)
            .await
            .map_err(|f| graph_problem(&f))?;
        let names: Vec<String> = roles
            .into_iter()
            .filter(|(template, _)| actions::is_privileged_role(template))
            .map(|(_, name)| name)
            .collect();
        if !names.is_empty() {
            privileged.push(json!({"user_id": user, "roles": names}));
            privileged_names.extend(names);
        }
    }

    let (mut policy, _) = scope.action_policy(organization_id, kind).await?;
    if webhook.as_ref().is_some_and(|w| w.skip_policy_approval) {
        policy.approval = tenantry_domain::policy::Approval::None;
    }
    let requester = match employee {
        Some(user) => Requester::Employee {
            is_target: targets.len() == 1 && targets[0].id == Some(user),
        },
        None => Requester::Technician,
    };
    let mut decision = policy::decide(kind, &policy, requester, &privileged_names);
    if employee.is_some()
        && !matches!(decision, Decision::Refuse { .. })
        && let Err(detail) =
            policy::self_service_scope(kind, &parameters, resolved.group_id, &policy)
    {
        decision = Decision::Refuse {
            code: ErrorCode::SelfServiceNotAllowed,
            detail,
        };
    }
    let approval_reason = match decision {
        Decision::Refuse { code, detail } if request.dry_run => {
            return Err(refusal(code, &detail));
        }
        Decision::Refuse { code, detail } => {
            scope
                .record_action_refusal(
                    &actor,
                    Refusal {
                        organization: organization_id,
                        kind,
                        targets: json!(targets),
                        parameters: parameters.to_record(),
                        code,
                        detail: detail.clone(),
                    },
                )
                .await?;
            return Err(refusal(code, &detail));
        }
        Decision::NeedsApproval { reason } => Some(reason),
        Decision::Proceed => None,
    };
    let base = graph_access.http.config().graph("");
    if request.dry_run {
        let mut steps = actions::plan(kind, &targets, &parameters, &resolved, &base);
        if kind == ActionKind::MfaReset
            && let Some(user) = targets.first().and_then(|t| t.id)
        {
            let methods = tenantry_graph::calls::get(
                &graph.http,
                &graph.token,
                &format!("/users/{user}/authentication/methods"),
            )
            .await
            .map_err(|f| graph_problem(&f))?;
            let listed = methods["value"].as_array().cloned().unwrap_or_default();
            steps.extend(actions::mfa_delete_steps(&user.to_string(), &listed));
        }
        return Ok(Submitted::DryRun(json!({
            "dry_run": true,
            "action": kind,
            "organization_id": id,
            "targets": targets,
            "parameters": parameters.to_record(),
            "decision": if approval_reason.is_some() { "would_wait_for_approval" } else { "would_queue" },
            "approval_reason": approval_reason,
            "privileged_targets": privileged,
            "steps": steps,
        })));
    }
    let attachment = match &parameters {
        Parameters::Photo { bytes, .. } => Some(bytes.clone()),
        _ => None,
    };
    let new = NewAction {
        organization: organization_id,
        kind,
        targets,
        parameters: parameters.to_record(),
        resolved,
        attachment,
        idempotency_key,
        request_hash: hash,
        privileged_targets: Value::Array(privileged),
        approval_reason,
        approvers: policy.approvers.clone(),
        approval_ttl_secs: policy.approval_ttl_secs,
    };
    Ok(match scope.request_action(new, &actor).await? {
        Created::New(record) => Submitted::Created(record),
        Created::Replayed(record) => {
            let steps = scope.action(ActionId::from_uuid(record.action_id)).await?.1;
            Submitted::Replayed(record, steps)
        }
    })
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActionQuery {
    organization: Option<Uuid>,
    state: Option<String>,
    action: Option<String>,
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
        && !STATES.contains(&state.as_str())
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "state",
            format!("must be one of {}", STATES.join(", ")),
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
        |a| a.action_id,
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
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ActionView>, ApiError> {
    let (record, steps) = caller.scope().action(ActionId::from_uuid(id)).await?;
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
    id: Uuid,
    who: &str,
) -> Result<Uuid, ApiError> {
    let (record, _) = scope.action(ActionId::from_uuid(id)).await?;
    let organization = scope
        .organization(OrganizationId::from_uuid(record.organization_id))
        .await?;
    let graph = tenant(&state.graph, scope, &organization).await?;
    resolve_user(scope, organization.id, &graph, who)
        .await?
        .and_then(|t| t.id)
        .ok_or_else(|| not_found("employee", who))
}

async fn decide(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
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
        .decide_action(
            ActionId::from_uuid(id),
            &decider,
            Verdict { approve, reason },
        )
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
    ApiPath(id): ApiPath<Uuid>,
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
    ApiPath(id): ApiPath<Uuid>,
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
    responses((status = 200, description = "The password (`Cache-Control: no-store`)", body = Object),
        (status = 403, description = "Not the requester", body = Problem, content_type = PROBLEM),
        (status = 409, description = "ACTION_STATE_CONFLICT: not run yet", body = Problem, content_type = PROBLEM),
        (status = 410, description = "SECRET_GONE: revealed already or expired", body = Problem, content_type = PROBLEM)))]
pub async fn reveal_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
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
    let password = scope
        .reveal_password(ActionId::from_uuid(id), &actor)
        .await?;
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
