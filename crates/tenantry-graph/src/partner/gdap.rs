//! The GDAP lists of a partner tenant (graph-facts-next §1.7): its delegated admin
//! relationships and the customers they make, read app-only with
//! `DelegatedAdminRelationship.Read.All`, every page followed. One odd item never fails a
//! list: it is skipped and logged.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::calls::{self, GraphFailure};
use crate::http_client::GraphHttp;
use crate::validator::THROTTLE_BUDGET;

/// Relationships, 300 a page: the documented `$top` cap (§1.7.2, §1.7.3).
const RELATIONSHIPS: &str = "/tenantRelationships/delegatedAdminRelationships?$top=300";
/// Customers, 300 a page.
const CUSTOMERS: &str = "/tenantRelationships/delegatedAdminCustomers?$top=300";

/// One GDAP relationship (graph-facts-next §1.7.3).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GdapRelationship {
    pub id: String,
    pub display_name: String,
    /// Microsoft's status string, verbatim (`active`, `approvalPending`, `expired`, …).
    pub status: String,
    pub customer_tenant_id: Uuid,
    pub customer_display_name: String,
    /// `accessDetails.unifiedRoles[].roleDefinitionId` (role template ids), lower case.
    pub roles: Vec<String>,
    /// `null` before activation.
    pub activated_at: Option<DateTime<Utc>>,
    /// `activatedDateTime + duration`; `null` before activation.
    pub end_date_time: Option<DateTime<Utc>>,
    /// ISO 8601 (`PT0S`: no auto-extension, `P180D`).
    pub auto_extend_duration: Option<String>,
}

/// One `delegatedAdminCustomer` (graph-facts-next §1.7.2): present while at least one
/// relationship with it is active, so no durable registry of customers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GdapCustomer {
    pub tenant_id: Uuid,
    pub display_name: String,
}

/// Every relationship of the partner tenant whose token this is, following
/// `@odata.nextLink`. `resellerDelegatedAdminRelationship` items (indirect resellers) are
/// relationships too; items without a customer tenant id are skipped with a warning.
pub async fn relationships(
    http: &GraphHttp,
    token: &SecretString,
) -> Result<Vec<GdapRelationship>, GraphFailure> {
    let rows = every_page(http, token, RELATIONSHIPS).await?;
    Ok(rows.iter().filter_map(relationship_of).collect())
}

/// Every `delegatedAdminCustomer` of the partner tenant, paged likewise.
pub async fn customers(
    http: &GraphHttp,
    token: &SecretString,
) -> Result<Vec<GdapCustomer>, GraphFailure> {
    let rows = every_page(http, token, CUSTOMERS).await?;
    Ok(rows.iter().filter_map(customer_of).collect())
}

/// Every page of `path`. A short `Retry-After` is waited out (the whole list is asked
/// again: these lists are a few pages); a longer one goes back to the caller.
/// `calls::get_all` stops after 100 pages, 30,000 items here.
async fn every_page(
    http: &GraphHttp,
    token: &SecretString,
    path: &str,
) -> Result<Vec<Value>, GraphFailure> {
    let deadline = tokio::time::Instant::now() + THROTTLE_BUDGET;
    calls::patiently(deadline, || calls::get_all(http, token, path)).await
}

fn relationship_of(item: &Value) -> Option<GdapRelationship> {
    let id = item["id"].as_str();
    let Some(customer_tenant_id) = item["customer"]["tenantId"]
        .as_str()
        .and_then(|t| Uuid::parse_str(t).ok())
    else {
        tracing::warn!(
            relationship = id.unwrap_or("(no id)"),
            "a GDAP relationship without a customer tenant id was skipped"
        );
        return None;
    };
    let Some(id) = id else {
        tracing::warn!(customer = %customer_tenant_id, "a GDAP relationship without an id was skipped");
        return None;
    };
    let roles = item["accessDetails"]["unifiedRoles"]
        .as_array()
        .map(|roles| {
            roles
                .iter()
                .filter_map(|r| r["roleDefinitionId"].as_str().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default();
    Some(GdapRelationship {
        id: id.to_owned(),
        display_name: text(&item["displayName"]),
        status: text(&item["status"]),
        customer_tenant_id,
        customer_display_name: text(&item["customer"]["displayName"]),
        roles,
        activated_at: time(&item["activatedDateTime"]),
        end_date_time: time(&item["endDateTime"]),
        auto_extend_duration: item["autoExtendDuration"].as_str().map(str::to_owned),
    })
}

fn customer_of(item: &Value) -> Option<GdapCustomer> {
    // `id` is the customer's tenant id too (the documented sample shows both equal).
    let tenant = item["tenantId"].as_str().or_else(|| item["id"].as_str());
    let Some(tenant_id) = tenant.and_then(|t| Uuid::parse_str(t).ok()) else {
        tracing::warn!(
            customer = item["id"].as_str().unwrap_or("(no id)"),
            "a delegatedAdminCustomer without a tenant id was skipped"
        );
        return None;
    };
    Some(GdapCustomer {
        tenant_id,
        display_name: text(&item["displayName"]),
    })
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// A DateTimeOffset (Graph writes up to seven fractional digits); `null` or unreadable:
/// none.
fn time(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn microsofts_sample_reads_and_odd_items_are_skipped() {
        // GDOCS list page's element (graph-facts-next §1.7.3), a reseller relationship
        // not yet activated, and one without a customer.
        let sample = json!({
            "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
            "id": "5d027261-d21f-4aa9-b7db-7fa1f56fb163-8777b240-c6f0-4469-9e98-a3205431b836",
            "displayName": "Contoso admin relationship",
            "duration": "P730D",
            "customer": { "tenantId": "52eaad04-13a2-4a2f-9ce8-93a294fadf36", "displayName": "Contoso Inc" },
            "accessDetails": { "unifiedRoles": [ { "roleDefinitionId": "DD4DB9A0-cc4a-4213-9f9f-70242232d97e" } ] },
            "status": "active",
            "autoExtendDuration": "P180D",
            "activatedDateTime": "2022-02-10T11:26:44.9941884Z",
            "endDateTime": "2024-02-10T11:24:42.3148266Z"
        });
        let one = relationship_of(&sample).expect("read");
        assert_eq!(one.status, "active");
        assert_eq!(one.customer_display_name, "Contoso Inc");
        assert_eq!(one.roles, ["dd4db9a0-cc4a-4213-9f9f-70242232d97e"]);
        assert_eq!(
            one.end_date_time.map(|t| t.to_rfc3339()),
            Some("2024-02-10T11:24:42.314826600+00:00".to_owned())
        );
        assert_eq!(one.auto_extend_duration.as_deref(), Some("P180D"));

        let reseller = json!({
            "@odata.type": "#microsoft.graph.resellerDelegatedAdminRelationship",
            "id": "r-1",
            "displayName": "Indirect",
            "customer": { "tenantId": "4fdbff88-9d6b-42e0-9713-45c922ba8001", "displayName": "Fabrikam" },
            "status": "approvalPending",
            "activatedDateTime": null,
            "endDateTime": null,
            "isPartnerConsentPending": true,
            "indirectProviderTenantId": "52eaad04-13a2-4a2f-9ce8-93a294fadf36"
        });
        let pending = relationship_of(&reseller).expect("a relationship too");
        assert_eq!(pending.status, "approvalPending");
        assert!(pending.activated_at.is_none() && pending.end_date_time.is_none());
        assert!(pending.roles.is_empty());

        assert!(relationship_of(&json!({"id": "x", "customer": {}})).is_none());
        assert!(relationship_of(&json!({"id": "x", "customer": {"tenantId": "nope"}})).is_none());

        let customer = customer_of(&json!({
            "id": "4fdbff88-9d6b-42e0-9713-45c922ba8001",
            "tenantId": "4fdbff88-9d6b-42e0-9713-45c922ba8001",
            "displayName": "Contoso Inc"
        }))
        .expect("read");
        assert_eq!(customer.display_name, "Contoso Inc");
        assert!(customer_of(&json!({"displayName": "No id"})).is_none());
    }
}
