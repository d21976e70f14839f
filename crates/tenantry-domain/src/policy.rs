//! Per-organization action policies and the decision they make on a request: refused,
//! waiting for approval, or straight to the queue. Pure rules, so they are tested without
//! a database and the API and the worker (which re-checks the privileged-target guard just
//! before execution) apply the same ones.

use serde::{Deserialize, Serialize};

use crate::actions::{ActionKind, Parameters};
use crate::error_code::ErrorCode;
use crate::role::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    None,
    Required,
}

/// What to do when a target holds a privileged directory role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivilegedGuard {
    /// Refuse the request (the default: the most repeated ask in CIPP's tracker).
    Refuse,
    /// Let it through only with an approval, even when the policy needs none.
    RequireApproval,
    Off,
}

impl PrivilegedGuard {
    pub const fn as_str(self) -> &'static str {
        match self {
            PrivilegedGuard::Refuse => "refuse",
            PrivilegedGuard::RequireApproval => "require_approval",
            PrivilegedGuard::Off => "off",
        }
    }
}

impl Approval {
    pub const fn as_str(self) -> &'static str {
        match self {
            Approval::None => "none",
            Approval::Required => "required",
        }
    }
}

/// Who may approve: MSP roles, particular keys, and (for self-service requests) members
/// of the organization's approver groups, vouched for by a gateway key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approvers {
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub keys: Vec<uuid::Uuid>,
    #[serde(default)]
    pub groups: Vec<uuid::Uuid>,
}

/// Shortest and longest time a request may wait for approval.
pub const APPROVAL_TTL_SECS: std::ops::RangeInclusive<i32> = 300..=30 * 24 * 3600;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub enabled: bool,
    pub approval: Approval,
    pub approvers: Approvers,
    pub self_service: bool,
    pub privileged_guard: PrivilegedGuard,
    pub approval_ttl_secs: i32,
    /// The groups an employee may add themselves to (`grant_access` self-service).
    #[serde(default)]
    pub self_service_groups: Vec<uuid::Uuid>,
    /// Whether `set_mailbox_forwarding` to an address outside the organization waits for
    /// an approval even when `approval` is `none` (the default: yes).
    #[serde(default = "outside_forwarding_default")]
    pub outside_forwarding_approval: bool,
}

const fn outside_forwarding_default() -> bool {
    true
}

impl Policy {
    /// Every action is a write, so every action needs approval until an owner says
    /// otherwise; owners and admins approve; nothing is self-service; the guard refuses.
    pub fn default_for(_kind: ActionKind) -> Self {
        Self {
            enabled: true,
            approval: Approval::Required,
            approvers: Approvers {
                roles: vec![Role::Owner, Role::Admin],
                keys: Vec::new(),
                groups: Vec::new(),
            },
            self_service: false,
            privileged_guard: PrivilegedGuard::Refuse,
            approval_ttl_secs: 24 * 3600,
            self_service_groups: Vec::new(),
            outside_forwarding_approval: true,
        }
    }

    /// Problems with a policy an owner wants to save, as (field, message).
    pub fn problems(&self, kind: ActionKind) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.self_service && !kind.may_be_self_service() {
            problems.push(("self_service", format!("{kind} can never be self-service")));
        }
        if !APPROVAL_TTL_SECS.contains(&self.approval_ttl_secs) {
            problems.push((
                "approval_ttl_secs",
                "must be between 300 (5 minutes) and 2592000 (30 days)".into(),
            ));
        }
        if self.approvers.roles.contains(&Role::SelfServiceGateway) {
            problems.push((
                "approvers.roles",
                "a gateway approves only for members of approver groups; list the groups".into(),
            ));
        }
        let named =
            self.approvers.roles.len() + self.approvers.keys.len() + self.approvers.groups.len();
        let may_need_approval = self.approval == Approval::Required
            || self.privileged_guard == PrivilegedGuard::RequireApproval;
        if may_need_approval && named == 0 {
            problems.push((
                "approvers",
                "name at least one approver role, key or group".into(),
            ));
        }
        if !self.outside_forwarding_approval && kind != ActionKind::SetMailboxForwarding {
            problems.push((
                "outside_forwarding_approval",
                "applies to set_mailbox_forwarding only".into(),
            ));
        }
        if self.self_service_groups.len() > 100 {
            problems.push(("self_service_groups", "at most 100 groups".into()));
        }
        if self.approvers.keys.len() > 100 || self.approvers.groups.len() > 100 {
            problems.push(("approvers", "at most 100 keys and 100 groups".into()));
        }
        problems
    }
}

/// Profile fields an employee may change on themselves: contact details only. Job title,
/// department, usage location and manager drive dynamic groups and licences.
const SELF_SERVICE_PROFILE: [&str; 3] = ["businessPhones", "mobilePhone", "officeLocation"];

/// What an employee may ask for beyond the policy's yes: their own contact details, and
/// only the groups the policy lists. `group` is the resolved group of `grant_access`.
pub fn self_service_scope(
    kind: ActionKind,
    parameters: &Parameters,
    group: Option<uuid::Uuid>,
    policy: &Policy,
) -> Result<(), String> {
    match (kind, parameters) {
        (ActionKind::UpdateUserProfile, Parameters::Profile { changes, manager }) => {
            if manager.is_some()
                || changes
                    .keys()
                    .any(|field| !SELF_SERVICE_PROFILE.contains(&field.as_str()))
            {
                return Err("employees may change only their phones and office location".into());
            }
            Ok(())
        }
        (ActionKind::GrantAccess, _) => match group {
            Some(group) if policy.self_service_groups.contains(&group) => Ok(()),
            _ => Err("the policy does not open this group to self-service".into()),
        },
        _ => Ok(()),
    }
}

/// Who asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requester {
    /// The holder of a technician (or higher) API key.
    Technician,
    /// An employee, through a self-service gateway key; `is_target` says whether the
    /// only target is the employee themselves.
    Employee { is_target: bool },
}

/// What a policy makes of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Refuse { code: ErrorCode, detail: String },
    NeedsApproval { reason: String },
    Proceed,
}

/// Applies `policy` to a request for `kind` by `requester`; `privileged` lists the
/// privileged roles the targets hold (display names), empty when none.
pub fn decide(
    kind: ActionKind,
    policy: &Policy,
    requester: Requester,
    privileged: &[String],
) -> Decision {
    if !policy.enabled {
        return Decision::Refuse {
            code: ErrorCode::ActionDisabled,
            detail: format!("{kind} is turned off for this organization."),
        };
    }
    if let Requester::Employee { is_target } = requester {
        if !policy.self_service || !kind.may_be_self_service() {
            return Decision::Refuse {
                code: ErrorCode::SelfServiceNotAllowed,
                detail: format!("{kind} is not open to self-service in this organization."),
            };
        }
        if !is_target {
            return Decision::Refuse {
                code: ErrorCode::SelfServiceNotAllowed,
                detail: "An employee may only act on their own account.".into(),
            };
        }
    }
    if !privileged.is_empty() {
        let roles = privileged.join(", ");
        match policy.privileged_guard {
            PrivilegedGuard::Refuse => {
                return Decision::Refuse {
                    code: ErrorCode::PrivilegedTarget,
                    detail: format!(
                        "The target holds privileged directory roles ({roles}); the policy refuses {kind} on privileged accounts."
                    ),
                };
            }
            PrivilegedGuard::RequireApproval => {
                return Decision::NeedsApproval {
                    reason: format!("the target holds privileged directory roles ({roles})"),
                };
            }
            PrivilegedGuard::Off => {}
        }
    }
    match policy.approval {
        Approval::Required => Decision::NeedsApproval {
            reason: "the policy requires approval".into(),
        },
        Approval::None => Decision::Proceed,
    }
}

/// Forwarding a mailbox outside the organization is how a compromised mailbox leaks
/// mail, so it waits for an approval even where the policy needs none, unless the
/// policy's `outside_forwarding_approval` is off; a refusal stays a refusal.
pub fn outside_forwarding(decision: Decision, domain: &str, policy: &Policy) -> Decision {
    match decision {
        Decision::Proceed if policy.outside_forwarding_approval => Decision::NeedsApproval {
            reason: format!("mail would be forwarded outside the organization, to {domain}"),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_policy() -> Policy {
        Policy {
            approval: Approval::None,
            self_service: true,
            ..Policy::default_for(ActionKind::PasswordReset)
        }
    }

    #[test]
    fn defaults_require_approval_and_refuse_privileged_targets() {
        let policy = Policy::default_for(ActionKind::PasswordReset);
        assert!(matches!(
            decide(
                ActionKind::PasswordReset,
                &policy,
                Requester::Technician,
                &[]
            ),
            Decision::NeedsApproval { .. }
        ));
        let admin = ["Global Administrator".to_owned()];
        assert!(matches!(
            decide(
                ActionKind::PasswordReset,
                &policy,
                Requester::Technician,
                &admin
            ),
            Decision::Refuse {
                code: ErrorCode::PrivilegedTarget,
                ..
            }
        ));
    }

    #[test]
    fn employees_act_only_on_themselves_and_only_where_allowed() {
        let policy = open_policy();
        assert_eq!(
            decide(
                ActionKind::PasswordReset,
                &policy,
                Requester::Employee { is_target: true },
                &[]
            ),
            Decision::Proceed
        );
        assert!(matches!(
            decide(
                ActionKind::PasswordReset,
                &policy,
                Requester::Employee { is_target: false },
                &[]
            ),
            Decision::Refuse {
                code: ErrorCode::SelfServiceNotAllowed,
                ..
            }
        ));
        assert!(matches!(
            decide(
                ActionKind::DisableAccount,
                &policy,
                Requester::Employee { is_target: true },
                &[]
            ),
            Decision::Refuse {
                code: ErrorCode::SelfServiceNotAllowed,
                ..
            }
        ));
    }

    #[test]
    fn the_guard_can_escalate_instead_of_refusing() {
        let policy = Policy {
            privileged_guard: PrivilegedGuard::RequireApproval,
            ..open_policy()
        };
        assert!(matches!(
            decide(
                ActionKind::MfaReset,
                &policy,
                Requester::Technician,
                &["Helpdesk Administrator".to_owned()]
            ),
            Decision::NeedsApproval { .. }
        ));
        let disabled = Policy {
            enabled: false,
            ..open_policy()
        };
        assert!(matches!(
            decide(ActionKind::MfaReset, &disabled, Requester::Technician, &[]),
            Decision::Refuse {
                code: ErrorCode::ActionDisabled,
                ..
            }
        ));
    }

    #[test]
    fn employees_change_only_contact_details_and_listed_groups() {
        let policy = Policy {
            self_service_groups: vec![uuid::Uuid::from_u128(7)],
            ..open_policy()
        };
        let phones = crate::actions::parse_parameters(
            ActionKind::UpdateUserProfile,
            &serde_json::json!({"mobile_phone": "+1 555 0100", "office_location": "B2"}),
        )
        .expect("valid");
        assert!(self_service_scope(ActionKind::UpdateUserProfile, &phones, None, &policy).is_ok());
        let title = crate::actions::parse_parameters(
            ActionKind::UpdateUserProfile,
            &serde_json::json!({"job_title": "CFO"}),
        )
        .expect("valid");
        assert!(self_service_scope(ActionKind::UpdateUserProfile, &title, None, &policy).is_err());
        let group = Parameters::Group {
            group: "Finance".into(),
        };
        let listed = Some(uuid::Uuid::from_u128(7));
        let other = Some(uuid::Uuid::from_u128(8));
        assert!(self_service_scope(ActionKind::GrantAccess, &group, listed, &policy).is_ok());
        assert!(self_service_scope(ActionKind::GrantAccess, &group, other, &policy).is_err());
    }

    #[test]
    fn a_policy_names_approvers_when_it_needs_them() {
        let mut policy = Policy::default_for(ActionKind::DisableAccount);
        policy.approvers.roles.clear();
        policy.self_service = true;
        let fields: Vec<&str> = policy
            .problems(ActionKind::DisableAccount)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(fields, ["self_service", "approvers"]);
    }
}
