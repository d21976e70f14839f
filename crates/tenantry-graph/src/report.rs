//! The validation report: what Tenantry can and cannot do in a tenant, and why.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_domain::capabilities::{CapabilityStatus, RoleDiff};
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
    /// Directory roles the service principal holds (role template ids).
    pub directory_roles: BTreeSet<String>,
    /// Those roles compared with what the capabilities need: granted, missing, extra, not
    /// required (template ids).
    pub directory_role_status: RoleDiff,
    pub capabilities: Vec<CapabilityStatus>,
    pub secret: Option<SecretExpiry>,
    pub warnings: Vec<String>,
    pub checked_at: DateTime<Utc>,
}

impl ValidationReport {
    /// The organization's status from a passing report: `secret_expiring` within 30 days of
    /// the secret's end; `needs_attention` when something could not be checked, or when a
    /// capability has its permissions but lacks the directory role it needs (a role is one
    /// assignment away, unlike a capability the MSP chose not to consent to); else `connected`.
    pub fn status(&self) -> &'static str {
        let expiring = self
            .secret
            .as_ref()
            .and_then(|s| s.days_left)
            .is_some_and(|d| d <= 30);
        let role_missing = self
            .capabilities
            .iter()
            .any(|c| c.missing_permissions.is_empty() && !c.missing_directory_role.is_empty());
        if expiring {
            "secret_expiring"
        } else if !self.warnings.is_empty() || role_missing {
            "needs_attention"
        } else {
            "connected"
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
