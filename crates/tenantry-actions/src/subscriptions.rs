//! Removing an organization's Graph change-notification subscriptions before the
//! organization and its credentials go.

use tenantry_domain::OrganizationId;
use tenantry_graph::GraphAccess;
use tenantry_store::MspScope;

use crate::lookup::organization_graph;

/// Deletes an organization's Graph subscriptions, best effort. Failures are logged:
/// Graph drops subscriptions at expiry anyway.
pub async fn unsubscribe_everything(
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
    let Ok(tenant) = organization_graph(graph, scope, &record).await else {
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
