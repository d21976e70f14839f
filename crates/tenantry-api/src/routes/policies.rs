//! `/api/v1/organizations/{id}/policies[/{action}]`: what each action needs before it
//! runs in an organization. Anyone who sees the organization may read them; only owners
//! change them.

use axum::Json;
use serde::Deserialize;
use serde_json::{Value, json};
use tenantry_domain::actions::ActionKind;
use tenantry_domain::policy::{Approval, Approvers, Policy, PrivilegedGuard};
use tenantry_domain::{OrganizationId, Role};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::caller::Caller;
use crate::extract::{ApiJson, ApiPath};
use crate::problem::{ApiError, FieldError, Problem};

const PROBLEM: &str = "application/problem+json";

fn parse_action(raw: &str) -> Result<ActionKind, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

fn policy_view(kind: ActionKind, policy: &Policy, default: bool) -> Value {
    json!({
        "action": kind,
        "is_default": default,
        "may_be_self_service": kind.may_be_self_service(),
        "enabled": policy.enabled,
        "approval": policy.approval,
        "approvers": policy.approvers,
        "self_service": policy.self_service,
        "privileged_guard": policy.privileged_guard,
        "approval_ttl_secs": policy.approval_ttl_secs,
        "self_service_groups": policy.self_service_groups,
        "outside_forwarding_approval": policy.outside_forwarding_approval,
    })
}

/// Every action's policy in the organization.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/policies", tag = "policies", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id")),
    responses((status = 200, description = "One policy per action", body = crate::schemas::Listed<crate::schemas::PolicyView>),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM)))]
pub async fn list_policies(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
) -> Result<Json<Value>, ApiError> {
    let scope = caller.scope();
    let mut data = Vec::new();
    for kind in ActionKind::ALL {
        let (policy, default) = scope.action_policy(id, kind).await?;
        data.push(policy_view(kind, &policy, default));
    }
    Ok(Json(json!({"data": data})))
}

/// One action's policy.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/policies/{action}", tag = "policies", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"), ("action" = String, Path, description = "e.g. password_reset")),
    responses((status = 200, description = "The policy", body = crate::schemas::PolicyView),
        (status = 404, description = "No such organization or action", body = Problem, content_type = PROBLEM)))]
pub async fn get_policy(
    caller: Caller,
    ApiPath((id, action)): ApiPath<(OrganizationId, String)>,
) -> Result<Json<Value>, ApiError> {
    let kind = parse_action(&action)?;
    let (policy, default) = caller.scope().action_policy(id, kind).await?;
    Ok(Json(policy_view(kind, &policy, default)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    enabled: Option<bool>,
    /// `none` or `required`.
    #[schema(value_type = Option<String>)]
    approval: Option<Approval>,
    /// `{"roles": ["owner", "admin"], "keys": [api key ids], "groups": [group ids]}`.
    #[schema(value_type = Option<Object>)]
    approvers: Option<Approvers>,
    self_service: Option<bool>,
    /// `refuse`, `require_approval` or `off`.
    #[schema(value_type = Option<String>)]
    privileged_guard: Option<PrivilegedGuard>,
    /// How long a request waits for a decision: 300 to 2592000 seconds.
    approval_ttl_secs: Option<i32>,
    /// Group ids an employee may add themselves to with self-service `grant_access`.
    self_service_groups: Option<Vec<Uuid>>,
    /// `set_mailbox_forwarding` only: `false` lets forwarding to an outside address
    /// follow `approval` like any other request (default `true`: it waits for one).
    outside_forwarding_approval: Option<bool>,
}

fn ids(ids: &[Uuid]) -> String {
    ids.iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Replace an action's policy (owner only). Fields left out take their default values.
#[utoipa::path(put, path = "/api/v1/organizations/{id}/policies/{action}", tag = "policies", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"), ("action" = String, Path, description = "e.g. password_reset")),
    request_body = PolicyBody,
    responses((status = 200, description = "The saved policy", body = crate::schemas::PolicyView),
        (status = 403, description = "Not an owner key", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such organization or action", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid policy", body = Problem, content_type = PROBLEM)))]
pub async fn put_policy(
    caller: Caller,
    ApiPath((organization, action)): ApiPath<(OrganizationId, String)>,
    ApiJson(body): ApiJson<PolicyBody>,
) -> Result<Json<Value>, ApiError> {
    let kind = parse_action(&action)?;
    let defaults = Policy::default_for(kind);
    let policy = Policy {
        enabled: body.enabled.unwrap_or(defaults.enabled),
        approval: body.approval.unwrap_or(defaults.approval),
        approvers: body.approvers.unwrap_or(defaults.approvers),
        self_service: body.self_service.unwrap_or(defaults.self_service),
        privileged_guard: body.privileged_guard.unwrap_or(defaults.privileged_guard),
        approval_ttl_secs: body.approval_ttl_secs.unwrap_or(defaults.approval_ttl_secs),
        self_service_groups: body
            .self_service_groups
            .unwrap_or(defaults.self_service_groups),
        outside_forwarding_approval: body
            .outside_forwarding_approval
            .unwrap_or(defaults.outside_forwarding_approval),
    };
    let problems = policy.problems(kind);
    if !problems.is_empty() {
        return Err(ApiError::validation(
            problems
                .into_iter()
                .map(|(field, message)| FieldError::new(field, message))
                .collect(),
        ));
    }
    if policy.approvers.roles.contains(&Role::SelfServiceGateway) {
        return Err(ApiError::validation(vec![FieldError::new(
            "approvers.roles",
            "cannot name self_service_gateway",
        )]));
    }
    let scope = caller.scope();
    // Owners only, before anything about keys or groups is looked up.
    scope.may_set_policies()?;
    // An approver nobody can be would leave requests that can be neither approved nor
    // denied. Another MSP's key reads as unknown: nothing tells it apart from a made-up id.
    let (keys, groups) = scope
        .unusable_approvers(organization, &policy.approvers)
        .await?;
    let mut errors = Vec::new();
    if !keys.is_empty() {
        errors.push(FieldError::new(
            "approvers.keys",
            format!(
                "not active keys of this MSP that see this organization (gateway keys approve only as members of approver groups): {}",
                ids(&keys)
            ),
        ));
    }
    if !groups.is_empty() {
        errors.push(FieldError::new(
            "approvers.groups",
            format!(
                "not groups in this organization's inventory (Entra group object ids; scan the organization first): {}",
                ids(&groups)
            ),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    scope.set_action_policy(organization, kind, &policy).await?;
    Ok(Json(policy_view(kind, &policy, false)))
}
