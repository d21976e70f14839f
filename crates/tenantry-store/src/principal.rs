//! The authenticated caller. Only [`crate::Store::authenticate`] can make one, which is
//! what makes [`crate::MspScope`] impossible to obtain without a verified key.

use tenantry_domain::{ApiKeyRecordId, KeyGrant, KeyId, MspId, OrganizationLimit, Role};

use crate::operators::OperatorRecord;

#[derive(Clone, Debug)]
pub struct Principal {
    msp_id: MspId,
    api_key_id: ApiKeyRecordId,
    key_id: KeyId,
    role: Role,
    organizations: OrganizationLimit,
    /// The person holding the key; `None` for a webhook endpoint.
    operator: Option<OperatorRecord>,
    /// A webhook endpoint acting through its playbook, not an API key.
    endpoint: bool,
}

impl Principal {
    pub(crate) fn new(
        msp_id: MspId,
        api_key_id: ApiKeyRecordId,
        key_id: KeyId,
        role: Role,
        organizations: OrganizationLimit,
        operator: OperatorRecord,
    ) -> Self {
        Self {
            msp_id,
            api_key_id,
            key_id,
            role,
            organizations,
            operator: Some(operator),
            endpoint: false,
        }
    }

    /// A webhook endpoint's playbook, requesting actions like a technician limited to the
    /// endpoint's organization (or all of the MSP's, for an MSP-wide endpoint).
    pub(crate) fn for_endpoint(
        msp_id: MspId,
        endpoint: uuid::Uuid,
        organization: Option<tenantry_domain::OrganizationId>,
    ) -> Option<Self> {
        // The endpoint id's random half, as the public id logs show.
        let key_id = KeyId::parse(&hex::encode(&endpoint.as_bytes()[8..16]))?;
        Some(Self {
            msp_id,
            api_key_id: ApiKeyRecordId::from_uuid(endpoint),
            key_id,
            role: Role::Technician,
            organizations: match organization {
                Some(id) => OrganizationLimit::Only([id].into()),
                None => OrganizationLimit::All,
            },
            operator: None,
            endpoint: true,
        })
    }

    /// Whether this is a webhook endpoint rather than an API key.
    pub fn is_endpoint(&self) -> bool {
        self.endpoint
    }

    pub fn msp_id(&self) -> MspId {
        self.msp_id
    }

    pub fn api_key_id(&self) -> ApiKeyRecordId {
        self.api_key_id
    }

    /// The public key id, safe to log.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The person holding the key (`None` for a webhook endpoint).
    pub fn operator(&self) -> Option<&OperatorRecord> {
        self.operator.as_ref()
    }

    pub fn organizations(&self) -> &OrganizationLimit {
        &self.organizations
    }

    pub fn grant(&self) -> KeyGrant {
        KeyGrant {
            role: self.role,
            organizations: self.organizations.clone(),
        }
    }
}
