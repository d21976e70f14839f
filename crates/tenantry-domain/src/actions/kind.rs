//! The catalogue of actions: each one's name, capability, and what it may do.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::capabilities::Capability;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    PasswordReset,
    MfaReset,
    UnblockSignin,
    RevokeSessions,
    DisableAccount,
    EnableAccount,
    UpdateUserProfile,
    UpdatePhoto,
    GrantAccess,
    RevokeAccess,
    CreateUser,
    /// Exchange Online: remove a mailbox's forwarding (BEC remediation).
    ClearMailboxForwarding,
    /// Exchange Online: disable a mailbox's inbox rules, hidden ones included, except the
    /// built-in and delegate rules (BEC remediation).
    DisableInboxRules,
    /// Exchange Online: a new shared mailbox (`New-Mailbox -Shared`).
    CreateSharedMailbox,
    /// Exchange Online: a user's mailbox becomes a shared one (offboarding).
    ConvertToSharedMailbox,
    /// Exchange Online: FullAccess (with or without auto-mapping), SendAs or
    /// SendOnBehalf on a mailbox, for a user.
    GrantMailboxAccess,
    RevokeMailboxAccess,
    /// Exchange Online: a distribution group or mail-enabled security group.
    CreateDistributionGroup,
    AddDistributionGroupMember,
    RemoveDistributionGroupMember,
    /// Exchange Online: forward a mailbox's mail (to an outside address only with an
    /// approval).
    SetMailboxForwarding,
    /// Exchange Online: hide a mailbox from the address lists, or show it again.
    HideFromAddressLists,
    /// The offboarding playbook as one action: block sign-in, reset the password,
    /// revoke sessions, leave groups and distribution groups, convert the mailbox to
    /// shared, give a delegate FullAccess (and optionally the forwarding), hide it, and
    /// return the licences. Graph and Exchange steps in one plan; one approval.
    OffboardUser,
    /// BEC remediation as one action: reset the password, revoke sessions, block
    /// sign-in, remove MFA methods, clear forwarding, disable the inbox rules. Each step
    /// has its own outcome; one the tenant has not granted is skipped with the reason.
    RemediateCompromisedUser,
    /// Licences: a SKU for users (with Microsoft's usage-location rule checked first).
    AssignLicense,
    /// Licences: a SKU taken back; the step says how many seats were returned.
    RemoveLicense,
}

/// What a request's `target` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// Existing users (UPN, mail or object id).
    User,
    /// A user to be created: its principal name.
    NewUser,
    /// An existing mailbox, a user's or a shared one (address or Exchange guid).
    Mailbox,
    /// A shared mailbox to be created: its primary address.
    NewMailbox,
    /// A distribution group to be created: its primary address.
    NewDistributionGroup,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action {0:?}")]
pub struct UnknownAction(pub String);

/// Stands in for a generated password in plans, dry runs and step records: the password
/// itself exists only in the request to Microsoft and sealed in the vault.
pub const PASSWORD_PLACEHOLDER: &str = "[generated at execution; revealed once]";
/// Stands in for the id of the user a `create_user` step creates.
pub const CREATED_USER: &str = "{created-user-id}";
/// The most targets one bulk request may name.
pub const MAX_TARGETS: usize = 50;

impl ActionKind {
    pub const ALL: [ActionKind; 26] = [
        ActionKind::PasswordReset,
        ActionKind::MfaReset,
        ActionKind::UnblockSignin,
        ActionKind::RevokeSessions,
        ActionKind::DisableAccount,
        ActionKind::EnableAccount,
        ActionKind::UpdateUserProfile,
        ActionKind::UpdatePhoto,
        ActionKind::GrantAccess,
        ActionKind::RevokeAccess,
        ActionKind::CreateUser,
        ActionKind::ClearMailboxForwarding,
        ActionKind::DisableInboxRules,
        ActionKind::CreateSharedMailbox,
        ActionKind::ConvertToSharedMailbox,
        ActionKind::GrantMailboxAccess,
        ActionKind::RevokeMailboxAccess,
        ActionKind::CreateDistributionGroup,
        ActionKind::AddDistributionGroupMember,
        ActionKind::RemoveDistributionGroupMember,
        ActionKind::SetMailboxForwarding,
        ActionKind::HideFromAddressLists,
        ActionKind::OffboardUser,
        ActionKind::RemediateCompromisedUser,
        ActionKind::AssignLicense,
        ActionKind::RemoveLicense,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ActionKind::PasswordReset => "password_reset",
            ActionKind::MfaReset => "mfa_reset",
            ActionKind::UnblockSignin => "unblock_signin",
            ActionKind::RevokeSessions => "revoke_sessions",
            ActionKind::DisableAccount => "disable_account",
            ActionKind::EnableAccount => "enable_account",
            ActionKind::UpdateUserProfile => "update_user_profile",
            ActionKind::UpdatePhoto => "update_photo",
            ActionKind::GrantAccess => "grant_access",
            ActionKind::RevokeAccess => "revoke_access",
            ActionKind::CreateUser => "create_user",
            ActionKind::ClearMailboxForwarding => "clear_mailbox_forwarding",
            ActionKind::DisableInboxRules => "disable_inbox_rules",
            ActionKind::CreateSharedMailbox => "create_shared_mailbox",
            ActionKind::ConvertToSharedMailbox => "convert_to_shared_mailbox",
            ActionKind::GrantMailboxAccess => "grant_mailbox_access",
            ActionKind::RevokeMailboxAccess => "revoke_mailbox_access",
            ActionKind::CreateDistributionGroup => "create_distribution_group",
            ActionKind::AddDistributionGroupMember => "add_distribution_group_member",
            ActionKind::RemoveDistributionGroupMember => "remove_distribution_group_member",
            ActionKind::SetMailboxForwarding => "set_mailbox_forwarding",
            ActionKind::HideFromAddressLists => "hide_from_address_lists",
            ActionKind::OffboardUser => "offboard_user",
            ActionKind::RemediateCompromisedUser => "remediate_compromised_user",
            ActionKind::AssignLicense => "assign_license",
            ActionKind::RemoveLicense => "remove_license",
        }
    }

    /// The capability whose permissions and directory roles the action needs.
    pub const fn capability(self) -> Capability {
        match self {
            ActionKind::PasswordReset => Capability::PasswordReset,
            ActionKind::MfaReset => Capability::MfaReset,
            ActionKind::UnblockSignin => Capability::UnblockSignin,
            // BEC remediation's first containment step; the others are skipped, with
            // the reason, where their capability is missing.
            ActionKind::RevokeSessions | ActionKind::RemediateCompromisedUser => {
                Capability::RevokeSessions
            }
            // Offboarding's first step; every other step is skipped, with the reason,
            // where the tenant has not granted its own capability.
            ActionKind::DisableAccount | ActionKind::EnableAccount | ActionKind::OffboardUser => {
                Capability::DisableAccount
            }
            ActionKind::UpdateUserProfile => Capability::UpdateUserProfile,
            ActionKind::UpdatePhoto => Capability::UpdatePhoto,
            ActionKind::GrantAccess | ActionKind::RevokeAccess => Capability::GrantAccess,
            ActionKind::CreateUser => Capability::CreateUser,
            ActionKind::AssignLicense | ActionKind::RemoveLicense => Capability::Licenses,
            ActionKind::ClearMailboxForwarding
            | ActionKind::DisableInboxRules
            | ActionKind::CreateSharedMailbox
            | ActionKind::ConvertToSharedMailbox
            | ActionKind::GrantMailboxAccess
            | ActionKind::RevokeMailboxAccess
            | ActionKind::CreateDistributionGroup
            | ActionKind::AddDistributionGroupMember
            | ActionKind::RemoveDistributionGroupMember
            | ActionKind::SetMailboxForwarding
            | ActionKind::HideFromAddressLists => Capability::Exchange,
        }
    }

    /// Whether a policy may open the action to employees acting on themselves (the set
    /// Dex offers for self-service, seed 001). Disabling accounts or creating users is
    /// never self-service.
    pub const fn may_be_self_service(self) -> bool {
        matches!(
            self,
            ActionKind::PasswordReset
                | ActionKind::MfaReset
                | ActionKind::UnblockSignin
                | ActionKind::UpdateUserProfile
                | ActionKind::UpdatePhoto
                | ActionKind::GrantAccess
        )
    }

    /// Whether one request may name several targets (bulk unlock and the like).
    pub const fn takes_many_targets(self) -> bool {
        matches!(
            self,
            ActionKind::DisableAccount
                | ActionKind::EnableAccount
                | ActionKind::RevokeSessions
                | ActionKind::AddDistributionGroupMember
                | ActionKind::RemoveDistributionGroupMember
                | ActionKind::AssignLicense
                | ActionKind::RemoveLicense
        )
    }

    /// What the request's `target` names.
    pub const fn target_kind(self) -> TargetKind {
        match self {
            ActionKind::CreateUser => TargetKind::NewUser,
            ActionKind::CreateSharedMailbox => TargetKind::NewMailbox,
            ActionKind::CreateDistributionGroup => TargetKind::NewDistributionGroup,
            ActionKind::GrantMailboxAccess
            | ActionKind::RevokeMailboxAccess
            | ActionKind::HideFromAddressLists => TargetKind::Mailbox,
            _ => TargetKind::User,
        }
    }

    /// Whether the target is an object to be created rather than one that exists.
    pub const fn creates_target(self) -> bool {
        matches!(
            self.target_kind(),
            TargetKind::NewUser | TargetKind::NewMailbox | TargetKind::NewDistributionGroup
        )
    }

    /// Whether its steps are Exchange Online cmdlets (sent to the admin API with a token
    /// for Exchange's resource) rather than Graph calls.
    pub const fn runs_in_exchange(self) -> bool {
        matches!(self.capability(), Capability::Exchange)
    }

    /// Whether execution generates a password to reveal once.
    pub const fn generates_password(self) -> bool {
        matches!(
            self,
            ActionKind::PasswordReset
                | ActionKind::CreateUser
                | ActionKind::OffboardUser
                | ActionKind::RemediateCompromisedUser
        )
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ActionKind {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActionKind::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAction(s.to_owned()))
    }
}
