//! Reaching an organization's tenant while a request is checked: its token, and users
//! found by UPN, mail or object id (the inventory first, then Graph). Graph failures are
//! told apart: an outage may be retried, a denial or a missing object may not.

use secrecy::SecretString;
use tenantry_domain::actions::Target;
use tenantry_domain::{ActionId, ErrorCode, OrganizationId};
use tenantry_graph::calls::GraphFailure;
use tenantry_graph::{GraphAccess, GraphHttp, TokenFailure};
use tenantry_store::{MspScope, OrganizationRecord};
use uuid::Uuid;

use crate::SubmitError;

/// Graph access for one organization while checking a request.
pub struct OrganizationGraph {
    pub http: GraphHttp,
    pub token: SecretString,
}

/// The organization's token, from the process's cache or Entra.
pub async fn organization_graph(
    graph: &GraphAccess,
    scope: &MspScope<'_>,
    organization: &OrganizationRecord,
) -> Result<OrganizationGraph, SubmitError> {
    let (Some(tenant_id), Some(client_id)) = (organization.tenant_id, organization.client_id)
    else {
        return Err(SubmitError::refused(
            ErrorCode::CapabilityUnavailable,
            "the organization has no Microsoft 365 credentials",
        ));
    };
    let (_, credential) = scope.credential(organization.id).await?;
    let token = graph
        .organization_token(tenant_id, client_id, &credential)
        .await
        .map_err(token_problem)?;
    Ok(OrganizationGraph {
        http: graph.http().clone(),
        token,
    })
}

fn token_problem(failure: TokenFailure) -> SubmitError {
    match failure {
        TokenFailure::Unavailable(_) => SubmitError::Upstream {
            detail: "Microsoft's login service did not answer; nothing was done. Retry shortly"
                .into(),
            retry_after: None,
        },
        TokenFailure::Refused { .. } | TokenFailure::Unusable(_) => SubmitError::refused(
            ErrorCode::InvalidCredentials,
            "Entra refused the organization's stored credentials; re-validate it or replace its secret or certificate",
        ),
    }
}

/// Exchange Online's admin API for one organization while checking a request.
pub struct OrganizationExchange {
    pub http: GraphHttp,
    pub token: SecretString,
    /// The tenant whose admin API answers (the customer's, in partner mode).
    pub tenant: Uuid,
}

/// The organization's Exchange token (its own resource), from the cache or Entra.
pub async fn organization_exchange(
    graph: &GraphAccess,
    scope: &MspScope<'_>,
    organization: &OrganizationRecord,
) -> Result<OrganizationExchange, SubmitError> {
    let (_, credential) = scope.credential(organization.id).await?;
    let (Some(tenant), Some(client_id)) = (organization.tenant_id, organization.client_id) else {
        return Err(SubmitError::refused(
            ErrorCode::CapabilityUnavailable,
            "the organization has no Microsoft 365 credentials",
        ));
    };
    let token = graph
        .exchange_token(tenant, client_id, &credential)
        .await
        .map_err(token_problem)?;
    Ok(OrganizationExchange {
        http: graph.http().clone(),
        token,
        tenant,
    })
}

/// The recipient `get` (`Get-Mailbox`, `Get-DistributionGroup`) finds by `key` (any
/// identity Exchange takes: address, alias, name, guid), live; `None` when Exchange
/// finds none.
pub(crate) async fn find_recipient(
    exchange: &OrganizationExchange,
    get: &'static str,
    key: &str,
) -> Result<Option<serde_json::Value>, SubmitError> {
    use tenantry_graph::exchange::{Cmdlet, Exchange, ExchangeFailure};
    // `-Identity` takes wildcards: a key with `*` would name whichever mailbox came first.
    if key.contains('*') {
        return Ok(None);
    }
    let cmdlet = Cmdlet::new(get, serde_json::json!({"Identity": key}));
    match Exchange::new(&exchange.http, &exchange.token, exchange.tenant)
        .run(&cmdlet)
        .await
    {
        Ok(rows) if rows.len() > 1 => Err(SubmitError::invalid(
            "target",
            "names several recipients in Exchange; give the primary address or guid",
        )),
        Ok(rows) => Ok(rows.into_iter().next()),
        Err(ExchangeFailure::NotFound { .. }) => Ok(None),
        // Exchange refused the key as given (not an identity it takes).
        Err(ExchangeFailure::Refused { .. }) => Ok(None),
        Err(failure) => Err(exchange_problem(failure, "checked the target")),
    }
}

/// What an Exchange failure while a request is checked means for the requester (Tenantry
/// was `doing` something): an outage may be retried, a refusal names what the app lacks.
pub(crate) fn exchange_problem(
    failure: tenantry_graph::exchange::ExchangeFailure,
    doing: &str,
) -> SubmitError {
    use tenantry_graph::exchange::ExchangeFailure;
    match failure {
        ExchangeFailure::Throttled { retry_after } => SubmitError::Upstream {
            detail: format!(
                "Exchange Online throttled the request while Tenantry {doing}; nothing was done. Retry shortly"
            ),
            retry_after,
        },
        ExchangeFailure::Unavailable(_) => SubmitError::Upstream {
            detail: format!(
                "Exchange Online did not answer in time or failed while Tenantry {doing}; nothing was done. Retry shortly"
            ),
            retry_after: None,
        },
        ExchangeFailure::NotAllowed { cmdlet } => SubmitError::refused(
            ErrorCode::CapabilityUnavailable,
            format!(
                "Exchange Online does not allow the app to call {cmdlet}: its service principal needs the Exchange Administrator or Exchange Recipient Administrator role"
            ),
        ),
        other => SubmitError::refused(
            ErrorCode::CapabilityUnavailable,
            format!("Exchange Online refused while Tenantry {doing}: {other}"),
        ),
    }
}

/// What a Graph failure during checks means for the requester.
pub(crate) fn graph_problem(failure: &GraphFailure) -> SubmitError {
    match failure {
        GraphFailure::Throttled { retry_after } => SubmitError::Upstream {
            detail: "Microsoft throttled the request while Tenantry checked the target; nothing was done. Retry shortly".into(),
            retry_after: *retry_after,
        },
        GraphFailure::Unavailable(_) => SubmitError::Upstream {
            detail: "Microsoft did not answer in time or failed while Tenantry checked the target; nothing was done. Retry shortly".into(),
            retry_after: None,
        },
        GraphFailure::Denied { code } => SubmitError::refused(
            ErrorCode::CapabilityUnavailable,
            format!(
                "Microsoft refused to let Tenantry read the target ({code}); check the app's permissions"
            ),
        ),
        // The object vanished or Microsoft refused the key as given: for the requester,
        // the target was not found.
        GraphFailure::NotFound | GraphFailure::Unexpected { .. } => SubmitError::refused(
            ErrorCode::TargetNotFound,
            "Microsoft Graph did not find the target (it may have been deleted, or the key is not a valid UPN, mail or id)",
        ),
    }
}

/// A user by UPN, mail or object id: the inventory first, then Graph.
pub(crate) async fn resolve_user(
    scope: &MspScope<'_>,
    organization: OrganizationId,
    graph: &OrganizationGraph,
    key: &str,
) -> Result<Option<Target>, SubmitError> {
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

pub(crate) fn not_found(what: &str, key: &str) -> SubmitError {
    let shown: String = key.chars().take(120).collect();
    SubmitError::refused(
        ErrorCode::TargetNotFound,
        format!("no {what} {shown:?} in the organization's inventory or in Microsoft Graph"),
    )
}

/// The employee a self-service gateway names for action `id` (deciding it, or asking
/// for its password), found in the action's organization.
pub async fn resolve_employee(
    graph: &GraphAccess,
    scope: &MspScope<'_>,
    id: ActionId,
    who: &str,
) -> Result<Uuid, SubmitError> {
    let (record, _) = scope.action(id).await?;
    let organization = scope.organization(record.organization_id).await?;
    let tenant = organization_graph(graph, scope, &organization).await?;
    resolve_user(scope, organization.id, &tenant, who)
        .await?
        .and_then(|t| t.id)
        .ok_or_else(|| not_found("employee", who))
}
