//! The JSON shapes the API returns, kept apart from store records so the wire format is a
//! deliberate choice and never leaks a column by accident.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantry_domain::Role;
use tenantry_store::{ApiKeyRecord, MspRecord, OperatorRecord};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleView {
    Owner,
    Admin,
    Technician,
    Viewer,
    /// A trusted portal or bot that files self-service requests for employees.
    SelfServiceGateway,
}

impl From<Role> for RoleView {
    fn from(role: Role) -> Self {
        match role {
            Role::Owner => RoleView::Owner,
            Role::Admin => RoleView::Admin,
            Role::Technician => RoleView::Technician,
            Role::Viewer => RoleView::Viewer,
            Role::SelfServiceGateway => RoleView::SelfServiceGateway,
        }
    }
}

impl From<RoleView> for Role {
    fn from(role: RoleView) -> Self {
        match role {
            RoleView::Owner => Role::Owner,
            RoleView::Admin => Role::Admin,
            RoleView::Technician => Role::Technician,
            RoleView::Viewer => Role::Viewer,
            RoleView::SelfServiceGateway => Role::SelfServiceGateway,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MspView {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<MspRecord> for MspView {
    fn from(msp: MspRecord) -> Self {
        Self {
            id: msp.id.as_uuid(),
            name: msp.name,
            created_at: msp.created_at,
        }
    }
}

/// A person who holds API keys of the MSP.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OperatorView {
    pub id: Uuid,
    /// A name or email address.
    pub name: String,
}

impl From<OperatorRecord> for OperatorView {
    fn from(operator: OperatorRecord) -> Self {
        Self {
            id: operator.id.as_uuid(),
            name: operator.name,
        }
    }
}

/// An API key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    /// The public part of the key (`tnty_<key_id>_…`), to recognise it in listings.
    pub key_id: String,
    pub name: String,
    pub role: RoleView,
    /// The organizations this key is limited to; `null` means all of the MSP's.
    pub organization_ids: Option<Vec<Uuid>>,
    /// The person holding the key. Approvals compare operators: no key of the requester's
    /// operator approves or denies the request.
    pub operator: OperatorView,
    /// The key that created this one; `null` for keys made by the operator CLI.
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// Last successful use, to the minute.
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRecord> for ApiKeyView {
    fn from(key: ApiKeyRecord) -> Self {
        Self {
            id: key.id.as_uuid(),
            key_id: key.key_id.to_string(),
            name: key.name,
            role: key.role.into(),
            organization_ids: key
                .organizations
                .as_list()
                .map(|ids| ids.into_iter().map(|id| id.as_uuid()).collect()),
            operator: key.operator.into(),
            created_by: key.created_by.map(|id| id.as_uuid()),
            created_at: key.created_at,
            last_used_at: key.last_used_at,
            revoked_at: key.revoked_at,
        }
    }
}
