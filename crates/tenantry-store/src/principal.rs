//! The authenticated caller. Only [`crate::Store::authenticate`] can make one, which is
//! what makes [`crate::MspScope`] impossible to obtain without a verified key.

use tenantry_domain::{ApiKeyRecordId, KeyGrant, KeyId, MspId, OrganizationLimit, Role};

#[derive(Clone, Debug)]
pub struct Principal {
    msp_id: MspId,
    api_key_id: ApiKeyRecordId,
    key_id: KeyId,
    role: Role,
    organizations: OrganizationLimit,
}

impl Principal {
    pub(crate) fn new(
        msp_id: MspId,
        api_key_id: ApiKeyRecordId,
        key_id: KeyId,
        role: Role,
        organizations: OrganizationLimit,
    ) -> Self {
        Self {
            msp_id,
            api_key_id,
            key_id,
            role,
            organizations,
        }
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
