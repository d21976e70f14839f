//! Partner mode (graph-facts-next §1): one multi-tenant app, registered in the MSP's partner
//! tenant, acts in each customer tenant through its service principal there, with the
//! credential only the partner holds. This module proves the app at home (multi-tenant, GDAP
//! read granted, declaring what customers must consent to), validates its service principal
//! inside a customer (the validator without the application object, which a customer does
//! not have), lists GDAP relationships and customers ([`gdap`]) and writes the per-customer
//! admin-consent link ([`consent`]).

mod consent;
mod gdap;

use std::collections::BTreeSet;

use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::Value;
use tenantry_domain::AppCredential;
use tenantry_domain::capabilities::{self, Capability};
use tenantry_domain::permissions::{self, GRAPH_APP_ID};
use uuid::Uuid;

pub use consent::admin_consent_url;
pub use gdap::{GdapCustomer, GdapRelationship, customers, relationships};

use crate::calls::{self, GraphFailure};
use crate::report::{CertificateExpiry, SecretExpiry, ValidationReport};
use crate::validator::{
    self, CredentialReason, Credentials, THROTTLE_BUDGET, Tenancy, ValidationError, Validator,
};

/// The app role a partner app needs in its own tenant to read GDAP relationships and
/// customers app-only (graph-facts-next §1.7.1: the service and Graph Explorer's map accept
/// it, although the reference pages say "Not supported").
pub const GDAP_READ: &str = "DelegatedAdminRelationship.Read.All";
/// The write variant, which also allows the reads.
pub const GDAP_READ_WRITE: &str = "DelegatedAdminRelationship.ReadWrite.All";

/// App-role ids of the two GDAP permissions (graph-facts-next §1.7.1, DEVX
/// `permissions-descriptions.json`), which the domain's permission catalogue does not list.
const GDAP_APP_ROLES: [(&str, &str); 2] = [
    ("f6e9e124-4586-492f-adc0-c6f96e4823fd", GDAP_READ),
    ("cc13eba4-8cd8-44c6-b4d4-f93237adce58", GDAP_READ_WRITE),
];

/// The `signInAudience` values whose apps can be consented in other organizations. The
/// reference documents partner mode with `AzureADMultipleOrgs` only; that
/// `AzureADandPersonalMicrosoftAccount` (any organization plus personal accounts) works the
/// same for client credentials in customers is UNVERIFIED. `AzureADMyOrg` (this tenant
/// only) and `PersonalMicrosoftAccount` (no organizations) cannot be.
const MULTI_TENANT_AUDIENCES: [&str; 2] =
    ["AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount"];

/// What the partner tenant says about the multi-tenant app.
#[derive(Clone, Debug, Serialize)]
pub struct PartnerApp {
    /// The token's `tid`.
    pub tenant_id: Uuid,
    /// The application's `displayName`.
    pub display_name: Option<String>,
    pub sign_in_audience: String,
    /// Graph application permissions (type `Role`) the app declares in
    /// `requiredResourceAccess`: what a customer's admin consents to.
    pub declared_permissions: BTreeSet<String>,
    /// `web.redirectUris`.
    pub redirect_uris: Vec<String>,
    /// The client secret in use (secret credentials).
    pub secret: Option<SecretExpiry>,
    /// The certificate in use (certificate credentials).
    pub certificate: Option<CertificateExpiry>,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PartnerCheckError {
    /// Token refusals, outages, tenant mismatch: what [`Validator::validate`] maps them to;
    /// also `AppNotFoundInTenant` when the tenant has no registration of the app.
    #[error(transparent)]
    Credentials(ValidationError),
    /// Only multi-organization audiences can be consented in customers.
    #[error("the app is not multi-tenant ({sign_in_audience})")]
    NotMultiTenant { sign_in_audience: String },
    /// The token's `roles` claim holds neither [`GDAP_READ`] nor [`GDAP_READ_WRITE`].
    #[error("DelegatedAdminRelationship.Read.All is not granted in the partner tenant")]
    GdapNotGranted,
    /// Required permissions the app does not declare, so customers cannot consent to them.
    #[error("{} permissions are not declared on the app", missing.len())]
    NotDeclared { missing: Vec<String> },
}

impl Validator {
    /// Proves a partner app in its own (partner) tenant: a fresh token, the `roles` claim
    /// for GDAP read, then the app's registration. `required` lists the Graph permissions
    /// customers must consent to. Refusals in this order: credentials, not multi-tenant,
    /// GDAP not granted, permissions not declared.
    pub async fn check_partner(
        &self,
        credentials: &Credentials,
        required: &[&str],
    ) -> Result<PartnerApp, PartnerCheckError> {
        let deadline = tokio::time::Instant::now() + THROTTLE_BUDGET;
        let proof = self
            .prove(credentials, Tenancy::Home)
            .await
            .map_err(PartnerCheckError::Credentials)?;
        let path = format!(
            "/applications(appId='{}')?$select=id,appId,displayName,signInAudience,requiredResourceAccess,web,passwordCredentials",
            credentials.client_id
        );
        let app = calls::patiently(deadline, || calls::get(self.http(), &proof.token, &path))
            .await
            .map_err(|failure| PartnerCheckError::Credentials(application_failure(&failure)))?;

        let Some(audience) = app["signInAudience"].as_str() else {
            return Err(PartnerCheckError::Credentials(
                ValidationError::UpstreamUnavailable {
                    retry_after: None,
                    cause: "/applications answered without signInAudience".into(),
                },
            ));
        };
        if !MULTI_TENANT_AUDIENCES
            .iter()
            .any(|a| a.eq_ignore_ascii_case(audience))
        {
            return Err(PartnerCheckError::NotMultiTenant {
                sign_in_audience: audience.to_owned(),
            });
        }
        if !grants_gdap_read(&proof.claims) {
            return Err(PartnerCheckError::GdapNotGranted);
        }
        let mut warnings = Vec::new();
        let declared = declared_permissions(&app, &mut warnings);
        let mut missing: Vec<String> = Vec::new();
        for permission in required {
            if !declared.contains(*permission) && !missing.iter().any(|m| m == permission) {
                missing.push((*permission).to_owned());
            }
        }
        if !missing.is_empty() {
            return Err(PartnerCheckError::NotDeclared { missing });
        }
        let (secret, certificate) = match &credentials.credential {
            AppCredential::Secret(secret) => (
                Some(validator::secret_expiry(
                    &app,
                    secret.expose_secret(),
                    &mut warnings,
                )),
                None,
            ),
            AppCredential::Certificate(certificate) => (
                None,
                Some(validator::certificate_expiry(certificate, &mut warnings)),
            ),
        };
        Ok(PartnerApp {
            tenant_id: proof.tenant,
            display_name: app["displayName"].as_str().map(str::to_owned),
            sign_in_audience: audience.to_owned(),
            declared_permissions: declared,
            redirect_uris: strings(&app["web"]["redirectUris"]),
            secret,
            certificate,
            warnings,
        })
    }

    /// Validates, inside a customer tenant, the partner app's service principal there: the
    /// report and errors of [`Validator::validate`], except that the app's `/applications`
    /// entry is never read (it lives in the partner tenant), so the report carries no
    /// credential expiry (`secret` and `certificate` are `None`: the partner check reports
    /// them once), and AADSTS700016 at token time is `ServicePrincipalNotFound`, like
    /// 7000229 (graph-facts-next §1.3: both mean "not consented" for a multi-tenant app).
    pub async fn validate_customer(
        &self,
        credentials: &Credentials,
        capabilities: Option<&[Capability]>,
    ) -> Result<ValidationReport, ValidationError> {
        self.validate_in(credentials, capabilities, Tenancy::Customer)
            .await
    }
}

/// What a failed read of the app's own registration says.
fn application_failure(failure: &GraphFailure) -> ValidationError {
    match failure {
        // The token was issued here, yet the tenant has no registration of the app: the
        // credentials are the app's service principal in another (customer) tenant.
        GraphFailure::NotFound => ValidationError::InvalidCredentials {
            reason: CredentialReason::AppNotFoundInTenant,
            aadsts: None,
        },
        GraphFailure::Throttled { retry_after } => ValidationError::UpstreamUnavailable {
            retry_after: *retry_after,
            cause: failure.to_string(),
        },
        GraphFailure::Unavailable(_) => ValidationError::UpstreamUnavailable {
            retry_after: None,
            cause: failure.to_string(),
        },
        // An app may read its own registration without any permission (graph-facts-next
        // §1.6), so a refusal here is the tenant refusing the app, not an outage to wait
        // out; which refusal Entra would give is UNVERIFIED.
        GraphFailure::Denied { .. } | GraphFailure::Unexpected { .. } => {
            ValidationError::InvalidCredentials {
                reason: CredentialReason::Rejected,
                aadsts: None,
            }
        }
    }
}

/// Whether the token's `roles` claim holds GDAP read (or read-write).
fn grants_gdap_read(claims: &Value) -> bool {
    strings(&claims["roles"])
        .iter()
        .any(|r| r.eq_ignore_ascii_case(GDAP_READ) || r.eq_ignore_ascii_case(GDAP_READ_WRITE))
}

/// The Graph application permissions (`type` `Role`) in `requiredResourceAccess`, by name;
/// an app role id Tenantry does not know is warned of.
fn declared_permissions(app: &Value, warnings: &mut Vec<String>) -> BTreeSet<String> {
    let mut declared = BTreeSet::new();
    let mut unknown = 0;
    let resources = app["requiredResourceAccess"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for resource in resources.iter().filter(|r| {
        r["resourceAppId"]
            .as_str()
            .is_some_and(|id| id.eq_ignore_ascii_case(GRAPH_APP_ID))
    }) {
        let access = resource["resourceAccess"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for role in access.iter().filter(|a| a["type"].as_str() == Some("Role")) {
            match role["id"]
                .as_str()
                .and_then(|id| Uuid::parse_str(id).ok())
                .and_then(permission_name)
            {
                Some(name) => {
                    declared.insert(name.to_owned());
                }
                None => unknown += 1,
            }
        }
    }
    if unknown > 0 {
        warnings.push(format!("{unknown} Graph application permissions declared on the app are not known to Tenantry and were ignored."));
    }
    // Exchange Online's one app role, declared on its own resource (graph-facts-next
    // §2.1): what a customer's consent grants for the exchange capability.
    let exchange_declared = resources
        .iter()
        .filter(|r| {
            r["resourceAppId"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(capabilities::EXCHANGE_APP_ID))
        })
        .flat_map(|r| r["resourceAccess"].as_array().into_iter().flatten())
        .any(|a| {
            a["type"].as_str() == Some("Role")
                && a["id"].as_str().is_some_and(|id| {
                    id.eq_ignore_ascii_case(capabilities::EXCHANGE_MANAGE_AS_APP_ID)
                })
        });
    if exchange_declared {
        declared.insert(capabilities::EXCHANGE_MANAGE_AS_APP.to_owned());
    }
    declared
}

/// A Graph app role's permission name: the catalogue's, else a GDAP one.
fn permission_name(app_role_id: Uuid) -> Option<&'static str> {
    permissions::permission_of(app_role_id).or_else(|| {
        GDAP_APP_ROLES
            .iter()
            .find(|(id, _)| Uuid::parse_str(id).ok() == Some(app_role_id))
            .map(|(_, name)| *name)
    })
}

/// The strings of a JSON array (anything else: none).
fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn graph_app_roles_and_exchange_manage_as_app_are_declared_permissions() {
        let user_read = permissions::app_role_id_of("User.Read.All").expect("known");
        let app = json!({"requiredResourceAccess": [
            {"resourceAppId": GRAPH_APP_ID, "resourceAccess": [
                {"id": user_read, "type": "Role"},
                {"id": "f6e9e124-4586-492f-adc0-c6f96e4823fd", "type": "Role"},
                {"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "type": "Scope"},
                {"id": "00000000-0000-0000-0000-000000000001", "type": "Role"},
            ]},
            {"resourceAppId": "00000002-0000-0ff1-ce00-000000000000", "resourceAccess": [
                {"id": user_read, "type": "Role"},
                {"id": "dc50a0fb-09a3-484d-be87-e023b12c6440", "type": "Role"},
            ]},
        ]});
        let mut warnings = Vec::new();
        let declared = declared_permissions(&app, &mut warnings);
        assert_eq!(
            declared.into_iter().collect::<Vec<_>>(),
            [GDAP_READ, "Exchange.ManageAsApp", "User.Read.All"],
            "Graph's roles, and Exchange's one role on its own resource only"
        );
        assert_eq!(warnings.len(), 1, "the unknown app role");
    }

    #[test]
    fn gdap_read_is_read_or_read_write() {
        assert!(grants_gdap_read(&json!({"roles": [GDAP_READ]})));
        assert!(grants_gdap_read(
            &json!({"roles": ["User.Read.All", GDAP_READ_WRITE]})
        ));
        assert!(!grants_gdap_read(&json!({"roles": ["User.Read.All"]})));
        assert!(!grants_gdap_read(&json!({})));
    }
}
