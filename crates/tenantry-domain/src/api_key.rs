//! The shape of an API key and the rules for handing out new ones.
//!
//! A key looks like `tnty_<key id>_<secret>`: the 16-hex-digit key id is public (it is
//! shown in listings and used to find the record), the 64-hex-digit secret (256 random
//! bits) is shown once and only its HMAC is stored. Generating and hashing keys needs
//! randomness and a pepper, so it lives in the store; parsing and the grant rules are pure
//! and live here.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::ids::OrganizationId;
use crate::role::Role;

/// Every key starts with this, so secret scanners and humans can recognise one.
pub const KEY_PREFIX: &str = "tnty_";
/// Hex digits in the public key id (64 bits).
pub const KEY_ID_HEX_LEN: usize = 16;
/// Hex digits in the secret part (256 bits).
pub const SECRET_HEX_LEN: usize = 64;

/// The public, non-secret identifier of a key (the part after `tnty_`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// Accepts exactly 16 lowercase hex digits.
    pub fn parse(raw: &str) -> Option<Self> {
        is_lower_hex(raw, KEY_ID_HEX_LEN).then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A presented key split into its parts. Deliberately not `Debug`: it holds the secret.
pub struct ApiKeyToken<'a> {
    key_id: KeyId,
    secret: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the API key is not in the form tnty_<key id>_<secret>")]
pub struct MalformedKey;

impl<'a> ApiKeyToken<'a> {
    pub fn parse(presented: &'a str) -> Result<Self, MalformedKey> {
        let rest = presented.strip_prefix(KEY_PREFIX).ok_or(MalformedKey)?;
        let (key_id, secret) = rest.split_once('_').ok_or(MalformedKey)?;
        let key_id = KeyId::parse(key_id).ok_or(MalformedKey)?;
        if !is_lower_hex(secret, SECRET_HEX_LEN) {
            return Err(MalformedKey);
        }
        Ok(Self { key_id, secret })
    }

    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    pub fn secret(&self) -> &'a str {
        self.secret
    }
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Which organizations a key may see: all of its MSP's, or only the listed ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrganizationLimit {
    All,
    Only(BTreeSet<OrganizationId>),
}

impl OrganizationLimit {
    pub fn allows(&self, organization: OrganizationId) -> bool {
        match self {
            OrganizationLimit::All => true,
            OrganizationLimit::Only(ids) => ids.contains(&organization),
        }
    }

    /// The listed organizations, or `None` for all.
    pub fn as_list(&self) -> Option<Vec<OrganizationId>> {
        match self {
            OrganizationLimit::All => None,
            OrganizationLimit::Only(ids) => Some(ids.iter().copied().collect()),
        }
    }
}

/// What a caller may do with keys, decided from the caller's own key.
#[derive(Clone, Debug)]
pub struct KeyGrant {
    pub role: Role,
    pub organizations: OrganizationLimit,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyGrantError {
    #[error("managing API keys needs the owner or admin role")]
    RoleTooLow,
    #[error("a key limited to some organizations cannot manage API keys")]
    LimitedKey,
    #[error("only an owner can create or revoke an owner key")]
    OwnerOnly,
    #[error("a viewer key can only read; this needs the technician role or higher")]
    ReadOnly,
    #[error("managing jobs needs the owner or admin role")]
    JobsAdminOnly,
    #[error("changing action policies needs the owner role")]
    PoliciesOwnerOnly,
    #[error(
        "requesting actions needs the technician role or higher, or a self-service gateway key"
    )]
    NoActions,
    #[error("the audit log is not open to self-service gateway keys")]
    NoAudit,
    #[error(
        "verifying the whole audit chain needs an owner or admin key without an organization limit"
    )]
    AuditVerifyAdminOnly,
    #[error(
        "partner connections hold the credential of every customer: changing one needs an owner key without an organization limit"
    )]
    PartnerOwnerOnly,
    #[error(
        "partner connections span every customer: this needs a technician key or higher without an organization limit"
    )]
    PartnerUnlimitedOnly,
}

impl KeyGrant {
    /// Key management is MSP-wide, so it needs an unlimited owner or admin key.
    pub fn may_manage_keys(&self) -> Result<(), KeyGrantError> {
        if !self.role.includes(Role::Admin) {
            return Err(KeyGrantError::RoleTooLow);
        }
        if self.organizations != OrganizationLimit::All {
            return Err(KeyGrantError::LimitedKey);
        }
        Ok(())
    }

    /// Starting work in an organization the key can see (a discovery scan, say) needs
    /// the technician role or higher.
    pub fn may_start_work(&self) -> Result<(), KeyGrantError> {
        if self.role.includes(Role::Technician) {
            Ok(())
        } else {
            Err(KeyGrantError::ReadOnly)
        }
    }

    /// Retrying and cancelling jobs needs the owner or admin role.
    pub fn may_manage_jobs(&self) -> Result<(), KeyGrantError> {
        if self.role.includes(Role::Admin) {
            Ok(())
        } else {
            Err(KeyGrantError::JobsAdminOnly)
        }
    }

    /// Requesting identity actions: technicians and above, and gateways for employees.
    pub fn may_request_actions(&self) -> Result<(), KeyGrantError> {
        if self.role.includes(Role::Technician) || self.role == Role::SelfServiceGateway {
            Ok(())
        } else {
            Err(KeyGrantError::NoActions)
        }
    }

    /// Policies decide what technicians may do unchecked, so only owners change them.
    pub fn may_set_policies(&self) -> Result<(), KeyGrantError> {
        if self.role == Role::Owner {
            Ok(())
        } else {
            Err(KeyGrantError::PoliciesOwnerOnly)
        }
    }

    /// The audit log names every technician's actions: not for gateways.
    pub fn may_read_audit(&self) -> Result<(), KeyGrantError> {
        if self.role == Role::SelfServiceGateway {
            Err(KeyGrantError::NoAudit)
        } else {
            Ok(())
        }
    }

    /// Verification walks the MSP's whole chain, across every organization.
    pub fn may_verify_audit(&self) -> Result<(), KeyGrantError> {
        if self.role.includes(Role::Admin)
            && self.role != Role::SelfServiceGateway
            && self.organizations == OrganizationLimit::All
        {
            Ok(())
        } else {
            Err(KeyGrantError::AuditVerifyAdminOnly)
        }
    }

    /// Creating, rotating and deleting a partner connection: its credential reaches every
    /// customer, so only an unlimited owner key.
    pub fn may_change_partner_connections(&self) -> Result<(), KeyGrantError> {
        if self.role == Role::Owner && self.organizations == OrganizationLimit::All {
            Ok(())
        } else {
            Err(KeyGrantError::PartnerOwnerOnly)
        }
    }

    /// Reading partner connections and their customers, syncing, consent links: a
    /// technician or higher whose key sees every organization (a customer is not yet an
    /// organization a limit could name).
    pub fn may_work_with_partner_connections(&self) -> Result<(), KeyGrantError> {
        if self.role.includes(Role::Technician)
            && self.role != Role::SelfServiceGateway
            && self.organizations == OrganizationLimit::All
        {
            Ok(())
        } else {
            Err(KeyGrantError::PartnerUnlimitedOnly)
        }
    }

    /// Whether this caller may create, or revoke, a key holding `role`. Nobody hands out
    /// more power than they hold, and only owners touch owner keys.
    pub fn may_manage_key_with_role(&self, role: Role) -> Result<(), KeyGrantError> {
        self.may_manage_keys()?;
        if role == Role::Owner && self.role != Role::Owner {
            return Err(KeyGrantError::OwnerOnly);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, secret: &str) -> String {
        format!("{KEY_PREFIX}{id}_{secret}")
    }

    #[test]
    fn parses_a_well_formed_key() {
        let presented = key("0123456789abcdef", &"a".repeat(64));
        let token = ApiKeyToken::parse(&presented).expect("well formed");
        assert_eq!(token.key_id().as_str(), "0123456789abcdef");
        assert_eq!(token.secret(), "a".repeat(64));
    }

    #[test]
    fn rejects_malformed_keys() {
        let good_secret = "b".repeat(64);
        for bad in [
            String::new(),
            "tnty_".into(),
            key("0123456789abcdef", &"b".repeat(63)),
            key("0123456789abcdef", &"B".repeat(64)),
            key("0123456789abcde", &good_secret),
            key("0123456789abcdeg", &good_secret),
            format!("xxxx_0123456789abcdef_{good_secret}"),
            key("0123456789abcdef", &format!("{good_secret}_extra")),
        ] {
            assert!(
                ApiKeyToken::parse(&bad).is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn only_unlimited_admins_and_owners_manage_keys() {
        let grant = |role, organizations| KeyGrant {
            role,
            organizations,
        };
        assert!(
            grant(Role::Owner, OrganizationLimit::All)
                .may_manage_keys()
                .is_ok()
        );
        assert!(
            grant(Role::Admin, OrganizationLimit::All)
                .may_manage_keys()
                .is_ok()
        );
        assert_eq!(
            grant(Role::Technician, OrganizationLimit::All).may_manage_keys(),
            Err(KeyGrantError::RoleTooLow)
        );
        assert_eq!(
            grant(Role::Viewer, OrganizationLimit::All).may_manage_keys(),
            Err(KeyGrantError::RoleTooLow)
        );
        let limited = OrganizationLimit::Only(BTreeSet::from([OrganizationId::new()]));
        assert_eq!(
            grant(Role::Owner, limited).may_manage_keys(),
            Err(KeyGrantError::LimitedKey)
        );
    }

    #[test]
    fn admins_cannot_mint_or_revoke_owner_keys() {
        let admin = KeyGrant {
            role: Role::Admin,
            organizations: OrganizationLimit::All,
        };
        assert_eq!(
            admin.may_manage_key_with_role(Role::Owner),
            Err(KeyGrantError::OwnerOnly)
        );
        assert!(admin.may_manage_key_with_role(Role::Admin).is_ok());
        assert!(admin.may_manage_key_with_role(Role::Viewer).is_ok());
        let owner = KeyGrant {
            role: Role::Owner,
            organizations: OrganizationLimit::All,
        };
        assert!(owner.may_manage_key_with_role(Role::Owner).is_ok());
    }

    #[test]
    fn organization_limit_allows_only_listed_organizations() {
        let listed = OrganizationId::new();
        let limit = OrganizationLimit::Only(BTreeSet::from([listed]));
        assert!(limit.allows(listed));
        assert!(!limit.allows(OrganizationId::new()));
        assert!(OrganizationLimit::All.allows(OrganizationId::new()));
    }
}
