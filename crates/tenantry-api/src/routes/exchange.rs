//! Live Exchange Online reads for one mailbox (not kept in the inventory): a user's inbox
//! rules, hidden ones included, each judged as BEC remediation judges it
//! (`tenantry_graph::exchange::rules`). It signs in with the organization's credential
//! for Exchange's resource, so it needs a technician key.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;
use tenantry_domain::{ErrorCode, OrganizationId};
use tenantry_graph::exchange::rules::InboxRule;
use tenantry_graph::exchange::{Cmdlet, Exchange, ExchangeFailure};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::caller::Caller;
use crate::extract::ApiPath;
use crate::problem::{ApiError, Problem};

const PROBLEM: &str = "application/problem+json";

#[derive(Serialize, ToSchema)]
pub struct InboxRules {
    pub user_principal_name: String,
    /// Every rule, hidden and built-in ones included, with `suspicious` reasons.
    #[schema(value_type = Vec<crate::schemas::InboxRule>)]
    pub data: Vec<InboxRule>,
    /// How many rules look like an attacker's.
    pub suspicious: usize,
}

fn described(code: ErrorCode, status: StatusCode, detail: String) -> ApiError {
    ApiError::Described {
        problem: Box::new(Problem::new(code, status, detail)),
        retry_after_secs: None,
    }
}

/// What an Exchange failure means for the caller.
pub(crate) fn exchange_problem(failure: ExchangeFailure) -> ApiError {
    match failure {
        ExchangeFailure::Throttled { retry_after } => ApiError::Described {
            problem: Box::new(Problem::new(
                ErrorCode::UpstreamUnavailable,
                StatusCode::SERVICE_UNAVAILABLE,
                "Exchange Online throttled the request; retry after the Retry-After delay.",
            )),
            retry_after_secs: Some(retry_after.map_or(30, |d| d.as_secs_f64().ceil() as u64)),
        },
        ExchangeFailure::Unavailable(cause) => {
            tracing::warn!(%cause, "Exchange Online unavailable");
            ApiError::Described {
                problem: Box::new(Problem::new(
                    ErrorCode::UpstreamUnavailable,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Exchange Online did not answer in time or failed; retry shortly.",
                )),
                retry_after_secs: Some(30),
            }
        }
        ExchangeFailure::NotAllowed { cmdlet } => described(
            ErrorCode::CapabilityUnavailable,
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "Exchange Online does not let the app run {cmdlet}. Grant it Exchange.ManageAsApp (API permissions → Add a permission → APIs my organization uses → Office 365 Exchange Online → Application permissions) with admin consent, and assign its enterprise application the Exchange Administrator role (Roles & admins); then re-validate the organization."
            ),
        ),
        ExchangeFailure::NotFound { .. } => described(
            ErrorCode::TargetNotFound,
            StatusCode::NOT_FOUND,
            "Exchange Online has no mailbox for this user.".into(),
        ),
        ExchangeFailure::Refused {
            cmdlet, exception, ..
        } => ApiError::internal(format!("Exchange Online refused {cmdlet} ({exception})")),
    }
}

/// The user's inbox rules, read live from Exchange Online (hidden ones included).
#[utoipa::path(get, path = "/api/v1/organizations/{id}/users/{user}/inbox-rules", tag = "inventory", security(("api_key" = [])),
    params(("id" = uuid::Uuid, Path, description = "The organization's id"),
        ("user" = String, Path, description = "The user's object id, UPN or mail")),
    responses((status = 200, description = "The rules, each with its suspicious reasons", body = InboxRules),
        (status = 404, description = "NOT_FOUND (organization or user) or TARGET_NOT_FOUND (no mailbox)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "CAPABILITY_UNAVAILABLE: Exchange.ManageAsApp or the Exchange role is missing", body = Problem, content_type = PROBLEM),
        (status = 503, description = "UPSTREAM_UNAVAILABLE (see Retry-After)", body = Problem, content_type = PROBLEM)))]
pub async fn list_inbox_rules(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, user)): ApiPath<(OrganizationId, String)>,
) -> Result<Json<InboxRules>, ApiError> {
    let scope = caller.scope();
    scope.may_start_work()?;
    if user.len() > 320 {
        return Err(ApiError::NotFound);
    }
    let found = scope
        .inventory_user_by_key(id, &user)
        .await?
        .ok_or(ApiError::NotFound)?;
    let upn = found.user_principal_name.ok_or(ApiError::NotFound)?;
    // The credential names the tenant too: no second read of the organization.
    let stored = scope.stored_credential(id).await?;
    let tenant = stored.tenant_id;
    let token = state
        .graph
        .exchange_token(tenant, stored.client_id, &stored.credential)
        .await
        .map_err(|failure| match failure {
            tenantry_graph::TokenFailure::Unavailable(cause) => {
                exchange_problem(ExchangeFailure::Unavailable(cause))
            }
            _ => described(
                ErrorCode::InvalidCredentials,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Entra refused the organization's stored credentials; re-validate it or replace its secret or certificate.".into(),
            ),
        })?;
    let rows = Exchange::new(state.graph.http(), &token, tenant)
        .run(&Cmdlet::new(
            "Get-InboxRule",
            json!({"Mailbox": upn, "IncludeHidden": true}),
        ))
        .await
        .map_err(exchange_problem)?;
    let data: Vec<InboxRule> = rows.iter().filter_map(InboxRule::from_row).collect();
    let suspicious = data.iter().filter(|r| !r.suspicious.is_empty()).count();
    Ok(Json(InboxRules {
        user_principal_name: upn,
        data,
        suspicious,
    }))
}
