//! The validation report: what Tenantry can and cannot do in a tenant, and why.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_domain::capabilities::{self, CapabilityStatus, RoleDiff};
use tenantry_domain::permissions::PermissionDiff;
use uuid::Uuid;

#[derive(Clone, Debug, Serialize)]
pub struct ValidationReport {
    pub tenant_id: Uuid,
    pub tenant_display_name: Option<String>,
    pub verified_domains: Vec<String>,
    pub service_principal_id: Uuid,
    /// Graph application permissions: required & granted, missing, extra, not required.
    pub permissions: PermissionDiff,
    /// Directory roles the service principal holds: template id and display name.
    pub directory_roles: NamedRoles,
    /// Those roles compared with what the capabilities need: granted, missing, extra, not
    /// required (template id and display name each).
    pub directory_role_status: NamedRoleDiff,
    pub capabilities: Vec<CapabilityStatus>,
    /// The client secret in use (secret credentials).
    pub secret: Option<SecretExpiry>,
    /// The certificate in use (certificate credentials).
    pub certificate: Option<CertificateExpiry>,
    pub warnings: Vec<String>,
    pub checked_at: DateTime<Utc>,
}

impl ValidationReport {
    /// Whether a capability is granted but its service does not honour it yet (Exchange's
    /// live check): the organization is then checked again on the revalidation schedule.
    pub fn propagating(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.live_check == Some(tenantry_domain::capabilities::LiveCheck::Propagating))
    }

    /// The organization's status from a passing report: `secret_expiring` within 30 days of
    /// the end of the secret or certificate in use; `needs_attention` when something could not be checked, or when a
    /// capability has its permissions but lacks the directory role it needs (a role is one
    /// assignment away, unlike a capability the MSP chose not to consent to); else `connected`.
    pub fn status(&self) -> tenantry_domain::OrganizationStatus {
        let expiring = self
            .secret
            .as_ref()
            .and_then(|s| s.days_left)
            .or(self.certificate.as_ref().map(|c| c.days_left))
            .is_some_and(|d| d <= 30);
        let role_missing = self
            .capabilities
            .iter()
            .any(|c| c.missing_permissions.is_empty() && !c.missing_directory_role.is_empty());
        if expiring {
            tenantry_domain::OrganizationStatus::SecretExpiring
        } else if !self.warnings.is_empty() || role_missing {
            tenantry_domain::OrganizationStatus::NeedsAttention
        } else {
            tenantry_domain::OrganizationStatus::Connected
        }
    }
}

/// A directory role by its template id, with its display name: Graph's (`GET
/// /directoryRoles`, activated roles), else the built-in roles reference (graph-facts
/// §6.1), else `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NamedRole {
    pub id: String,
    pub name: Option<String>,
}

/// Roles sorted by template id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct NamedRoles(pub Vec<NamedRole>);

impl NamedRoles {
    /// Names the template ids in `ids` from `graph_names` (template id → display name,
    /// lower-case ids) or the built-in roles reference.
    pub fn new(ids: &BTreeSet<String>, graph_names: &BTreeMap<String, String>) -> Self {
        Self(
            ids.iter()
                .map(|id| NamedRole {
                    id: id.clone(),
                    name: graph_names
                        .get(&id.to_ascii_lowercase())
                        .cloned()
                        .or_else(|| {
                            capabilities::roles::KNOWN
                                .iter()
                                .find(|(known, _)| known.eq_ignore_ascii_case(id))
                                .map(|(_, name)| (*name).to_owned())
                        }),
                })
                .collect(),
        )
    }

    pub fn contains(&self, template_id: &str) -> bool {
        self.0
            .iter()
            .any(|r| r.id.eq_ignore_ascii_case(template_id))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// [`RoleDiff`] with each role named.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NamedRoleDiff {
    pub granted: NamedRoles,
    pub missing: NamedRoles,
    pub extra: NamedRoles,
    pub not_required: NamedRoles,
}

impl NamedRoleDiff {
    pub fn new(diff: &RoleDiff, graph_names: &BTreeMap<String, String>) -> Self {
        Self {
            granted: NamedRoles::new(&diff.granted, graph_names),
            missing: NamedRoles::new(&diff.missing, graph_names),
            extra: NamedRoles::new(&diff.extra, graph_names),
            not_required: NamedRoles::new(&diff.not_required, graph_names),
        }
    }
}

/// The app's client secret as Entra describes it (never its value).
#[derive(Clone, Debug, Serialize)]
pub struct SecretExpiry {
    pub key_id: Option<String>,
    pub hint: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub days_left: Option<i64>,
}

/// The certificate in use (never its key): from the certificate itself.
#[derive(Clone, Debug, Serialize)]
pub struct CertificateExpiry {
    /// base64url(SHA-256(DER)), as sent in the assertions' `x5t#S256`.
    pub thumbprint_s256: String,
    pub not_before: DateTime<Utc>,
    /// The certificate's notAfter.
    pub expires_at: DateTime<Utc>,
    pub days_left: i64,
}
