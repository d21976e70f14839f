//! What Tenantry can do in a tenant, and what each capability needs from Microsoft: Graph
//! application permissions (groups of alternatives, every group satisfied) and, for some
//! writes, a directory role on the service principal (any of those listed).
//!
//! Alternatives are listed least privileged first, except that the permission Dex's guide
//! asks for (seed 000) comes first where there is one, so that the permission reported as
//! missing is the one an MSP following that guide would add.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::permissions::DEFAULT_REQUIRED;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Discovery,
    Devices,
    PasswordReset,
    MfaReset,
    UnblockSignin,
    RevokeSessions,
    DisableAccount,
    UpdateUserProfile,
    UpdatePhoto,
    GrantAccess,
    CreateUser,
    AuditLogs,
    Mail,
    Sites,
    Teams,
    /// Exchange Online administration through the admin API (graph-facts-next §2.1):
    /// `Exchange.ManageAsApp` on the Office 365 Exchange Online resource and an
    /// Exchange-capable directory role.
    Exchange,
    /// Assigning and removing licences (`assignLicense`): `User.ReadWrite.All` (or
    /// `LicenseAssignment.ReadWrite.All`, which Tenantry's catalogue does not name yet);
    /// app-only, no directory role.
    Licenses,
}

/// Entra role template ids (graph-facts §6.1).
pub mod roles {
    pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
    pub const PRIVILEGED_AUTHENTICATION_ADMINISTRATOR: &str =
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13";
    pub const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
    pub const EXCHANGE_ADMINISTRATOR: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";
    pub const EXCHANGE_RECIPIENT_ADMINISTRATOR: &str = "31392ffb-586c-42d1-9346-e59415a2cc4e";

    /// Built-in roles Tenantry reasons about (template ids from graph-facts §6.1 and
    /// graph-facts-next §1.10).
    pub const KNOWN: [(&str, &str); 10] = [
        (GLOBAL_ADMINISTRATOR, "Global Administrator"),
        (
            "e8611ab8-c189-46e8-94e1-60213ab1f814",
            "Privileged Role Administrator",
        ),
        (USER_ADMINISTRATOR, "User Administrator"),
        (
            "729827e3-9c14-49f7-bb1b-9608f156bbb8",
            "Helpdesk Administrator",
        ),
        (
            "966707d0-3269-4727-9be2-8c3a10f19b9d",
            "Password Administrator",
        ),
        (
            "c4e39bd9-1100-46d3-8c65-fb160da0071f",
            "Authentication Administrator",
        ),
        (
            PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
            "Privileged Authentication Administrator",
        ),
        (
            "194ae4cb-b126-40b2-bd5b-6091b380977d",
            "Security Administrator",
        ),
        (EXCHANGE_ADMINISTRATOR, "Exchange Administrator"),
        (
            EXCHANGE_RECIPIENT_ADMINISTRATOR,
            "Exchange Recipient Administrator",
        ),
    ];

    pub fn name_of(template_id: &str) -> &'static str {
        KNOWN
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(template_id))
            .map_or("a directory role", |(_, name)| name)
    }
}

/// Directory roles of the service principal compared with what the chosen capabilities
/// need, four ways like permissions (role template ids).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RoleDiff {
    /// Held, and satisfying a capability's need.
    pub granted: BTreeSet<String>,
    /// Needed by a capability, none of whose alternatives is held (the preferred one).
    pub missing: BTreeSet<String>,
    /// Held without any chosen capability needing it.
    pub extra: BTreeSet<String>,
    /// Known roles neither needed nor held.
    pub not_required: BTreeSet<String>,
}

/// Compares held roles with the needs of `capabilities` (`None`: every capability).
pub fn role_diff(capabilities: Option<&[Capability]>, held: &BTreeSet<String>) -> RoleDiff {
    // By default, the capabilities the default required set serves: a role is not
    // "missing" for a capability (Exchange's) whose permissions nobody asked for.
    let chosen: Vec<Capability> = capabilities.map_or_else(
        || {
            Capability::ALL
                .into_iter()
                .filter(|c| c.served_by_default())
                .collect()
        },
        <[Capability]>::to_vec,
    );
    let mut diff = RoleDiff::default();
    for capability in chosen {
        let needed = capability.needs().directory_roles;
        if needed.is_empty() {
            continue;
        }
        match needed.iter().find(|r| held.contains(**r)) {
            Some(role) => {
                diff.granted.insert((*role).to_owned());
            }
            None => {
                diff.missing.insert(needed[0].to_owned());
            }
        }
    }
    diff.extra = held.difference(&diff.granted).cloned().collect();
    diff.not_required = roles::KNOWN
        .iter()
        .map(|(id, _)| (*id).to_owned())
        .filter(|id| !held.contains(id) && !diff.missing.contains(id))
        .collect();
    diff
}

const USERS_READ: &[&str] = &[
    "User.ReadWrite.All",
    "User.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const USERS_WRITE: &[&str] = &["User.ReadWrite.All", "Directory.ReadWrite.All"];
const GROUPS_READ: &[&str] = &[
    "Group.ReadWrite.All",
    "GroupMember.Read.All",
    "Group.Read.All",
    "GroupMember.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const GROUP_MEMBERS_WRITE: &[&str] = &[
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const ORGANIZATION_READ: &[&str] = &[
    "Organization.Read.All",
    "Directory.Read.All",
    "Organization.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const ROLES_READ: &[&str] = &[
    "RoleManagement.Read.Directory",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const APPLICATIONS_READ: &[&str] = &[
    "Application.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// The Exchange Online resource's app role an app needs (graph-facts-next §2.1), named as
/// the validator names a granted one.
pub const EXCHANGE_MANAGE_AS_APP: &str = "Exchange.ManageAsApp";
/// Its app role id on the resource `00000002-0000-0ff1-ce00-000000000000`.
pub const EXCHANGE_MANAGE_AS_APP_ID: &str = "dc50a0fb-09a3-484d-be87-e023b12c6440";
/// Office 365 Exchange Online's application id, the same in every tenant.
pub const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";
/// Roles that cover Tenantry's Exchange cmdlets, reads and writes alike (graph-facts-next
/// §2.1: "Exchange Administrator … provide the required permissions for any task";
/// Recipient Administrator covers recipients, the cmdlets Tenantry runs).
const EXCHANGE_ROLES: &[&str] = &[
    roles::EXCHANGE_ADMINISTRATOR,
    roles::EXCHANGE_RECIPIENT_ADMINISTRATOR,
    roles::GLOBAL_ADMINISTRATOR,
];
/// Password reset by an application: User Administrator or higher (graph-facts §6.2).
const PASSWORD_ROLES: &[&str] = &[
    roles::USER_ADMINISTRATOR,
    roles::PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
    roles::GLOBAL_ADMINISTRATOR,
];

/// What one capability needs.
pub struct Needs {
    /// Every group must be satisfied by one of its permissions.
    pub permissions: &'static [&'static [&'static str]],
    /// When not empty, the service principal must hold one of these roles (template ids).
    pub directory_roles: &'static [&'static str],
}

impl Capability {
    pub const ALL: [Capability; 17] = [
        Capability::Discovery,
        Capability::Devices,
        Capability::PasswordReset,
        Capability::MfaReset,
        Capability::UnblockSignin,
        Capability::RevokeSessions,
        Capability::DisableAccount,
        Capability::UpdateUserProfile,
        Capability::UpdatePhoto,
        Capability::GrantAccess,
        Capability::CreateUser,
        Capability::AuditLogs,
        Capability::Mail,
        Capability::Sites,
        Capability::Teams,
        Capability::Exchange,
        Capability::Licenses,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Discovery => "discovery",
            Capability::Devices => "devices",
            Capability::PasswordReset => "password_reset",
            Capability::MfaReset => "mfa_reset",
            Capability::UnblockSignin => "unblock_signin",
            Capability::RevokeSessions => "revoke_sessions",
            Capability::DisableAccount => "disable_account",
            Capability::UpdateUserProfile => "update_user_profile",
            Capability::UpdatePhoto => "update_photo",
            Capability::GrantAccess => "grant_access",
            Capability::CreateUser => "create_user",
            Capability::AuditLogs => "audit_logs",
            Capability::Mail => "mail",
            Capability::Sites => "sites",
            Capability::Teams => "teams",
            Capability::Exchange => "exchange",
            Capability::Licenses => "licenses",
        }
    }

    /// Whether the default required set (Dex's 27) covers every permission it needs.
    pub fn served_by_default(self) -> bool {
        self.needs()
            .permissions
            .iter()
            .all(|group| group.iter().any(|p| DEFAULT_REQUIRED.contains(p)))
    }

    pub fn needs(self) -> Needs {
        let none: &'static [&'static str] = &[];
        match self {
            Capability::Discovery => Needs {
                permissions: &[
                    USERS_READ,
                    GROUPS_READ,
                    ORGANIZATION_READ,
                    ROLES_READ,
                    APPLICATIONS_READ,
                ],
                directory_roles: none,
            },
            Capability::Devices => Needs {
                permissions: &[&[
                    "DeviceManagementManagedDevices.ReadWrite.All",
                    "DeviceManagementManagedDevices.Read.All",
                ]],
                directory_roles: none,
            },
            Capability::PasswordReset => Needs {
                permissions: &[USERS_WRITE],
                directory_roles: PASSWORD_ROLES,
            },
            // No directory role is documented for app-only method deletes (UNVERIFIED).
            Capability::MfaReset => Needs {
                permissions: &[&["UserAuthenticationMethod.ReadWrite.All"]],
                directory_roles: none,
            },
            Capability::UnblockSignin => Needs {
                permissions: &[&["IdentityRiskyUser.ReadWrite.All"]],
                directory_roles: none,
            },
            Capability::RevokeSessions
            | Capability::DisableAccount
            | Capability::UpdateUserProfile => Needs {
                permissions: &[USERS_WRITE],
                directory_roles: none,
            },
            Capability::UpdatePhoto => Needs {
                permissions: &[&["User.ReadWrite.All"]],
                directory_roles: none,
            },
            Capability::GrantAccess => Needs {
                permissions: &[GROUP_MEMBERS_WRITE],
                directory_roles: none,
            },
            Capability::CreateUser | Capability::Licenses => Needs {
                permissions: &[USERS_WRITE],
                directory_roles: none,
            },
            Capability::AuditLogs => Needs {
                permissions: &[&["AuditLog.Read.All"]],
                directory_roles: none,
            },
            Capability::Mail => Needs {
                permissions: &[&["Mail.ReadWrite"], &["Mail.Send"]],
                directory_roles: none,
            },
            Capability::Sites => Needs {
                permissions: &[&[
                    "Sites.Read.All",
                    "Sites.ReadWrite.All",
                    "Sites.FullControl.All",
                ]],
                directory_roles: none,
            },
            Capability::Teams => Needs {
                permissions: &[
                    &["TeamsAppInstallation.ReadWriteForUser.All"],
                    &["AppCatalog.ReadWrite.All"],
                ],
                directory_roles: none,
            },
            Capability::Exchange => Needs {
                permissions: &[&[EXCHANGE_MANAGE_AS_APP]],
                directory_roles: EXCHANGE_ROLES,
            },
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability {0:?}")]
pub struct UnknownCapability(pub String);

impl FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCapability(s.to_owned()))
    }
}

/// The permissions to require: Dex's 27 by default, else, for each requirement group of
/// the chosen capabilities that no other chosen permission already satisfies, its first
/// alternative.
pub fn required_permissions(capabilities: Option<&[Capability]>) -> BTreeSet<String> {
    let Some(capabilities) = capabilities else {
        return DEFAULT_REQUIRED.iter().map(|p| (*p).to_owned()).collect();
    };
    let mut required = BTreeSet::new();
    for capability in capabilities {
        for group in capability.needs().permissions {
            if !group.iter().any(|p| required.contains(*p)) {
                required.insert(group[0].to_owned());
            }
        }
    }
    required
}

/// Whether a capability is available, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CapabilityStatus {
    pub capability: Capability,
    pub available: bool,
    /// Permissions to grant (one per unsatisfied group: the preferred alternative).
    pub missing_permissions: Vec<String>,
    /// Directory roles of which the service principal needs one, when it has none.
    pub missing_directory_role: Vec<String>,
    /// What a live call said, for capabilities checked by one (Exchange's
    /// `Get-OrganizationConfig`): granted is not yet working while it propagates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_check: Option<LiveCheck>,
}

/// The answer of a capability's live probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveCheck {
    /// The service answered: the capability works.
    Working,
    /// Everything is granted, but the service still refuses (assignments have not
    /// reached it yet): checked again on the revalidation schedule.
    Propagating,
    /// The service did not answer; the grants alone decide.
    Unknown,
}

pub fn evaluate(
    capability: Capability,
    granted: &BTreeSet<String>,
    directory_roles: &BTreeSet<String>,
) -> CapabilityStatus {
    let needs = capability.needs();
    let missing_permissions: Vec<String> = needs
        .permissions
        .iter()
        .filter(|group| !group.iter().any(|p| granted.contains(*p)))
        .map(|group| group[0].to_owned())
        .collect();
    let role_ok = needs.directory_roles.is_empty()
        || needs
            .directory_roles
            .iter()
            .any(|r| directory_roles.contains(*r));
    let missing_directory_role = if role_ok {
        Vec::new()
    } else {
        needs
            .directory_roles
            .iter()
            .map(|r| roles::name_of(r).to_owned())
            .collect()
    };
    CapabilityStatus {
        capability,
        available: missing_permissions.is_empty() && role_ok,
        missing_permissions,
        missing_directory_role,
        live_check: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(values: &[&str]) -> BTreeSet<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn the_default_required_set_is_dex_s_27() {
        let required = required_permissions(None);
        assert_eq!(required.len(), 27);
        assert!(required.contains("TeamsAppInstallation.ReadWriteForUser.All"));
    }

    #[test]
    fn capabilities_narrow_the_required_set() {
        let required =
            required_permissions(Some(&[Capability::PasswordReset, Capability::GrantAccess]));
        assert_eq!(
            required,
            set(&["User.ReadWrite.All", "GroupMember.ReadWrite.All"])
        );
        let discovery = required_permissions(Some(&[Capability::Discovery]));
        assert_eq!(
            discovery,
            set(&[
                "User.ReadWrite.All",
                "Group.ReadWrite.All",
                "Organization.Read.All",
                "RoleManagement.Read.Directory",
                "Application.Read.All"
            ])
        );
    }

    #[test]
    fn every_default_capability_is_covered_by_the_default_set_except_the_documented_gaps() {
        let granted = required_permissions(None);
        let roles = set(&[roles::USER_ADMINISTRATOR]);
        let unavailable: Vec<Capability> = Capability::ALL
            .into_iter()
            .filter(|c| !evaluate(*c, &granted, &roles).available)
            .collect();
        // Dex's list has no IdentityRiskyUser.* permission, nor Exchange's resource.
        assert_eq!(
            unavailable,
            [Capability::UnblockSignin, Capability::Exchange]
        );
        assert!(!Capability::Exchange.served_by_default());
        assert!(Capability::PasswordReset.served_by_default());
    }

    #[test]
    fn password_reset_needs_a_directory_role_on_the_service_principal() {
        let granted = set(&["User.ReadWrite.All"]);
        let without = evaluate(Capability::PasswordReset, &granted, &BTreeSet::new());
        assert!(!without.available);
        assert!(without.missing_permissions.is_empty());
        assert!(
            without
                .missing_directory_role
                .contains(&"User Administrator".to_owned())
        );
        let with = evaluate(
            Capability::PasswordReset,
            &granted,
            &set(&[roles::USER_ADMINISTRATOR]),
        );
        assert!(with.available);
        let no_permission = evaluate(
            Capability::PasswordReset,
            &BTreeSet::new(),
            &set(&[roles::USER_ADMINISTRATOR]),
        );
        assert_eq!(no_permission.missing_permissions, ["User.ReadWrite.All"]);
    }

    #[test]
    fn roles_are_compared_four_ways() {
        let held = set(&[
            roles::USER_ADMINISTRATOR,
            "194ae4cb-b126-40b2-bd5b-6091b380977d",
        ]);
        let diff = role_diff(None, &held);
        assert_eq!(diff.granted, set(&[roles::USER_ADMINISTRATOR]));
        assert_eq!(
            diff.extra,
            set(&["194ae4cb-b126-40b2-bd5b-6091b380977d"]),
            "Security Administrator is not needed"
        );
        assert!(
            diff.missing.is_empty(),
            "Exchange's role is not asked for by default"
        );
        assert_eq!(diff.not_required.len(), 8);
        let exchange = role_diff(Some(&[Capability::Exchange]), &held);
        assert_eq!(exchange.missing, set(&[roles::EXCHANGE_ADMINISTRATOR]));
        let none = role_diff(Some(&[Capability::PasswordReset]), &BTreeSet::new());
        assert_eq!(none.missing, set(&[roles::USER_ADMINISTRATOR]));
        assert!(
            role_diff(Some(&[Capability::Discovery]), &BTreeSet::new())
                .missing
                .is_empty()
        );
    }

    #[test]
    fn capabilities_parse_from_their_names() {
        for capability in Capability::ALL {
            assert_eq!(capability.as_str().parse::<Capability>(), Ok(capability));
        }
        assert!("root_access".parse::<Capability>().is_err());
    }
}
