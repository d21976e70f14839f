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

/// The app's client secret as Entra describes it (never its value).
#[derive(Clone, Debug, Serialize)]
pub struct SecretExpiry {
    pub key_id: Option<String>,
    pub hint: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub days_left: Option<i64>,
}
