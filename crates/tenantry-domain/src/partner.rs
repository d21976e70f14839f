//! Partner mode's vocabulary: a customer tenant reached through the MSP's multi-tenant app,
//! the GDAP relationships the partner holds with it, and the three badges an MSP reads to
//! know what is left to do for it (GDAP, consent, directory roles), each with its reason
//! and the step that fixes it. Pure: computed from what the last sync and verification
//! stored, at the time they are shown, so an expiry date turns a badge amber by itself.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::capabilities::roles as known_roles;

/// Entra role template ids partner mode reasons about (graph-facts §6.1, graph-facts-next
/// §1.10).
pub mod roles {
    pub use crate::capabilities::roles::{
        EXCHANGE_ADMINISTRATOR, EXCHANGE_RECIPIENT_ADMINISTRATOR, GLOBAL_ADMINISTRATOR,
        PRIVILEGED_AUTHENTICATION_ADMINISTRATOR, USER_ADMINISTRATOR,
    };
    pub const PRIVILEGED_ROLE_ADMINISTRATOR: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
    pub const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";
    pub const CLOUD_APPLICATION_ADMINISTRATOR: &str = "158c047a-c907-4556-b7ef-446551a6b5f7";

    const MORE: [(&str, &str); 3] = [
        (GLOBAL_READER, "Global Reader"),
        (
            CLOUD_APPLICATION_ADMINISTRATOR,
            "Cloud Application Administrator",
        ),
        (
            "fdd7a751-b60b-444a-984c-02652fe8fa1c",
            "Groups Administrator",
        ),
    ];

    /// The role's display name, or its template id when Tenantry does not know it.
    pub fn name(template_id: &str) -> String {
        super::known_roles::KNOWN
            .iter()
            .chain(MORE.iter())
            .find(|(id, _)| id.eq_ignore_ascii_case(template_id))
            .map_or_else(|| template_id.to_owned(), |(_, name)| (*name).to_owned())
    }
}

/// A GDAP relationship as Tenantry keeps it (graph-facts-next §1.7.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relationship {
    pub id: String,
    pub display_name: String,
    /// Microsoft's status, verbatim (`active`, `expired`, `terminated`, …).
    pub status: String,
    /// Role template ids, lower case.
    pub roles: Vec<String>,
    pub end_date_time: Option<DateTime<Utc>>,
    pub auto_extend_duration: Option<String>,
}

/// A relationship within this many days of its end is `expiring`.
pub const EXPIRING_DAYS: i64 = 30;

/// Green, amber or red, as a dashboard paints a badge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    Ok,
    Warning,
    Blocked,
}

/// One badge: its state, why, and what fixes it (`None` when nothing is left to do).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Badge {
    pub status: &'static str,
    pub tone: Tone,
    pub reason: String,
    pub fix: Option<String>,
}

/// The GDAP badge and its facts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GdapBadge {
    #[serde(flatten)]
    pub badge: Badge,
    /// The latest end date of an active relationship.
    pub ends_at: Option<DateTime<Utc>>,
    /// Whether an active relationship holds Global Administrator or Privileged Role
    /// Administrator: what an MSP technician needs to consent for the customer.
    pub can_consent: bool,
    /// Every role of the active relationships, by name.
    pub roles: Vec<String>,
}

/// The GDAP badge: `active`, `expiring` (≤ 30 days), `ended` (expired or terminated), or
/// `none` (no relationship is listed).
pub fn gdap_badge(relationships: &[Relationship], now: DateTime<Utc>) -> GdapBadge {
    let active: Vec<&Relationship> = relationships
        .iter()
        .filter(|r| r.status == "active")
        .collect();
    let mut roles: Vec<String> = active
        .iter()
        .flat_map(|r| r.roles.iter().cloned())
        .collect();
    roles.sort();
    roles.dedup();
    let can_consent = roles.iter().any(|r| {
        r.eq_ignore_ascii_case(roles::GLOBAL_ADMINISTRATOR)
            || r.eq_ignore_ascii_case(roles::PRIVILEGED_ROLE_ADMINISTRATOR)
    });
    let ends_at = active.iter().filter_map(|r| r.end_date_time).max();
    let names = roles.iter().map(|r| roles::name(r)).collect();
    let badge = if active.is_empty() {
        match relationships.first() {
            Some(ended) => Badge {
                status: "ended",
                tone: Tone::Blocked,
                reason: format!(
                    "No GDAP relationship with this customer is active (\"{}\" is {}).",
                    ended.display_name, ended.status
                ),
                fix: Some("Create a new GDAP relationship in Partner Center and have the customer approve it.".into()),
            },
            None => Badge {
                status: "none",
                tone: Tone::Blocked,
                reason: "The partner tenant lists no GDAP relationship with this customer.".into(),
                fix: Some("Create a GDAP relationship in Partner Center and have the customer approve it.".into()),
            },
        }
    } else if let Some(end) = ends_at.filter(|end| *end - now <= Duration::days(EXPIRING_DAYS)) {
        let days = (end - now).num_days().max(0);
        Badge {
            status: "expiring",
            tone: Tone::Warning,
            reason: format!("The GDAP relationship ends in {days} days ({end})."),
            fix: Some("Extend the relationship in Partner Center (or turn on auto-extend), or create a new one before it ends.".into()),
        }
    } else if !can_consent {
        Badge {
            status: "active",
            tone: Tone::Warning,
            reason: "The GDAP relationship is active, but holds neither Global Administrator nor Privileged Role Administrator, so no partner technician can consent to the app for this customer.".into(),
            fix: Some("Have the customer's own Global Administrator open the consent link, or add Privileged Role Administrator to a GDAP relationship.".into()),
        }
    } else {
        Badge {
            status: "active",
            tone: Tone::Ok,
            reason: "An active GDAP relationship holds a role that can consent to the app.".into(),
            fix: None,
        }
    };
    GdapBadge {
        badge,
        ends_at,
        can_consent,
        roles: names,
    }
}

/// Where consent stands in a customer tenant, as verification last saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    /// Not verified yet.
    Unknown,
    /// The app has no service principal there (AADSTS7000229 at token time).
    NotConsented,
    /// The admin declined on the consent page.
    Declined,
    /// Consented, but some required permissions are not granted.
    PermissionsMissing,
    /// A consent was given; Microsoft does not show all of it yet.
    Propagating,
    /// Every required permission is granted.
    Complete,
}

impl ConsentState {
    pub const fn as_str(self) -> &'static str {
        match self {
            ConsentState::Unknown => "unknown",
            ConsentState::NotConsented => "not_consented",
            ConsentState::Declined => "declined",
            ConsentState::PermissionsMissing => "permissions_missing",
            ConsentState::Propagating => "propagating",
            ConsentState::Complete => "complete",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            ConsentState::Unknown,
            ConsentState::NotConsented,
            ConsentState::Declined,
            ConsentState::PermissionsMissing,
            ConsentState::Propagating,
            ConsentState::Complete,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Microsoft caches consent for up to two hours (graph-facts-next §1.6): within this long
/// after a consent callback, a customer verification does not yet show is `propagating`.
pub const PROPAGATION_WINDOW: Duration = Duration::hours(2);

/// The consent state a verification found, given when a consent was last reported: a
/// missing principal or missing permissions within the propagation window after a
/// consent are `propagating`, not a verdict.
pub fn consent_after_verification(
    found: ConsentState,
    consented_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> ConsentState {
    let recent = consented_at.is_some_and(|at| now - at <= PROPAGATION_WINDOW);
    match found {
        ConsentState::NotConsented | ConsentState::PermissionsMissing if recent => {
            ConsentState::Propagating
        }
        other => other,
    }
}

pub fn consent_badge(state: ConsentState, missing: &[String], declined: Option<&str>) -> Badge {
    let (status, tone, reason, fix): (&'static str, Tone, String, Option<String>) = match state {
        ConsentState::Unknown => (
            "unknown",
            Tone::Warning,
            "Not verified yet.".into(),
            Some("Sync the partner connection, or verify this customer.".into()),
        ),
        ConsentState::NotConsented => (
            "not_consented",
            Tone::Blocked,
            "The app has no enterprise application (service principal) in this tenant: Entra answers AADSTS7000229 to its token requests.".into(),
            Some("Open the customer's consent link as a Global Administrator of the customer (a GDAP technician with Global Administrator or Privileged Role Administrator, or the customer's own admin).".into()),
        ),
        ConsentState::Declined => (
            "declined",
            Tone::Blocked,
            format!(
                "The admin declined consent{}.",
                declined.map(|d| format!(" ({d})")).unwrap_or_default()
            ),
            Some("Open a new consent link and accept the permissions.".into()),
        ),
        ConsentState::PermissionsMissing => (
            "permissions_missing",
            Tone::Blocked,
            format!(
                "Consented, but {} required permission(s) are not granted: {}.",
                missing.len(),
                missing.join(", ")
            ),
            Some("Open a new consent link: consenting again grants every permission the app declares.".into()),
        ),
        ConsentState::Propagating => (
            "propagating",
            Tone::Warning,
            "Consent was given; Microsoft takes minutes to hours to show it everywhere. Tenantry checks again by itself.".into(),
            None,
        ),
        ConsentState::Complete => (
            "complete",
            Tone::Ok,
            "Every required permission is granted.".into(),
            None,
        ),
    };
    Badge {
        status,
        tone,
        reason,
        fix,
    }
}

/// The directory roles a capability needs on the app's service principal in a customer.
pub const ROLE_NEEDS: [(&str, &str, &str); 3] = [
    (
        "password_reset",
        roles::USER_ADMINISTRATOR,
        "password resets, MFA resets and unblocking sign-ins of users who hold no admin role",
    ),
    (
        "exchange",
        roles::EXCHANGE_ADMINISTRATOR,
        "Exchange Online: mailboxes, permissions, forwarding and inbox rules",
    ),
    (
        "admin_targets",
        roles::PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
        "the same actions on users who hold admin roles",
    ),
];

/// One directory-role need and whether it is met.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoleNeed {
    pub capability: &'static str,
    pub role: String,
    pub role_id: &'static str,
    pub held: bool,
    pub needed_for: &'static str,
}

/// The directory-roles badge, from the role template ids the service principal holds
/// (`None`: not verified).
pub fn directory_roles_badge(held: Option<&[String]>) -> (Badge, Vec<RoleNeed>) {
    let Some(held) = held else {
        return (
            Badge {
                status: "unknown",
                tone: Tone::Warning,
                reason: "Not verified yet (the app's roles are read once consent is complete)."
                    .into(),
                fix: None,
            },
            Vec::new(),
        );
    };
    let global = held
        .iter()
        .any(|r| r.eq_ignore_ascii_case(roles::GLOBAL_ADMINISTRATOR));
    let needs: Vec<RoleNeed> = ROLE_NEEDS
        .iter()
        .map(|(capability, role_id, needed_for)| RoleNeed {
            capability,
            role: roles::name(role_id),
            role_id,
            held: global || held.iter().any(|r| r.eq_ignore_ascii_case(role_id)),
            needed_for,
        })
        .collect();
    let missing: Vec<&RoleNeed> = needs.iter().filter(|n| !n.held).collect();
    let badge = if missing.is_empty() {
        Badge {
            status: "complete",
            tone: Tone::Ok,
            reason: "The app holds every directory role Tenantry's capabilities need.".into(),
            fix: None,
        }
    } else {
        Badge {
            status: "roles_missing",
            tone: Tone::Warning,
            reason: missing
                .iter()
                .map(|n| format!("{} is missing (needed for {})", n.role, n.needed_for))
                .collect::<Vec<_>>()
                .join("; "),
            fix: Some(format!(
                "In the customer's Entra admin center: Roles & admins → {} → Add assignments → select the app's enterprise application.",
                missing
                    .iter()
                    .map(|n| n.role.as_str())
                    .collect::<Vec<_>>()
                    .join(" / ")
            )),
        }
    };
    (badge, needs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relationship(status: &str, roles: &[&str], end_in_days: i64) -> Relationship {
        Relationship {
            id: "r1".into(),
            display_name: "Contoso admin".into(),
            status: status.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            end_date_time: Some(Utc::now() + Duration::days(end_in_days)),
            auto_extend_duration: Some("PT0S".into()),
        }
    }

    #[test]
    fn gdap_badges_follow_status_end_date_and_roles() {
        let now = Utc::now();
        let ok = gdap_badge(
            &[relationship("active", &[roles::GLOBAL_ADMINISTRATOR], 300)],
            now,
        );
        assert_eq!(
            (ok.badge.status, ok.badge.tone, ok.can_consent),
            ("active", Tone::Ok, true)
        );
        assert_eq!(ok.roles, ["Global Administrator"]);
        let expiring = gdap_badge(
            &[relationship(
                "active",
                &[roles::PRIVILEGED_ROLE_ADMINISTRATOR],
                10,
            )],
            now,
        );
        assert_eq!(expiring.badge.status, "expiring");
        assert!(
            expiring.badge.reason.contains("ends in 9 days")
                || expiring.badge.reason.contains("ends in 10 days")
        );
        let no_consent = gdap_badge(
            &[relationship("active", &[roles::USER_ADMINISTRATOR], 300)],
            now,
        );
        assert_eq!(
            (no_consent.badge.tone, no_consent.can_consent),
            (Tone::Warning, false)
        );
        assert!(no_consent.badge.fix.is_some());
        let ended = gdap_badge(
            &[relationship(
                "terminated",
                &[roles::GLOBAL_ADMINISTRATOR],
                -3,
            )],
            now,
        );
        assert_eq!(
            (ended.badge.status, ended.badge.tone),
            ("ended", Tone::Blocked)
        );
        assert!(!ended.can_consent, "an ended relationship grants nothing");
        assert_eq!(gdap_badge(&[], now).badge.status, "none");
    }

    #[test]
    fn consent_shortly_after_a_callback_is_propagating_not_a_verdict() {
        let now = Utc::now();
        let recent = Some(now - Duration::minutes(5));
        let long_ago = Some(now - Duration::hours(3));
        assert_eq!(
            consent_after_verification(ConsentState::NotConsented, recent, now),
            ConsentState::Propagating
        );
        assert_eq!(
            consent_after_verification(ConsentState::PermissionsMissing, recent, now),
            ConsentState::Propagating
        );
        assert_eq!(
            consent_after_verification(ConsentState::NotConsented, long_ago, now),
            ConsentState::NotConsented
        );
        assert_eq!(
            consent_after_verification(ConsentState::Complete, recent, now),
            ConsentState::Complete
        );
        let missing = consent_badge(
            ConsentState::PermissionsMissing,
            &["User.Read.All".into()],
            None,
        );
        assert!(missing.reason.contains("User.Read.All"));
        for state in [
            "unknown",
            "not_consented",
            "declined",
            "permissions_missing",
            "propagating",
            "complete",
        ] {
            assert_eq!(
                ConsentState::parse(state).map(ConsentState::as_str),
                Some(state)
            );
        }
    }

    #[test]
    fn directory_role_needs_are_named_per_capability() {
        let (badge, needs) = directory_roles_badge(Some(&[roles::USER_ADMINISTRATOR.to_owned()]));
        assert_eq!(badge.status, "roles_missing");
        assert!(
            badge.reason.contains("Exchange Administrator is missing"),
            "{}",
            badge.reason
        );
        let held: Vec<(&str, bool)> = needs.iter().map(|n| (n.capability, n.held)).collect();
        assert_eq!(
            held,
            [
                ("password_reset", true),
                ("exchange", false),
                ("admin_targets", false)
            ]
        );
        let (global, _) = directory_roles_badge(Some(&[roles::GLOBAL_ADMINISTRATOR.to_owned()]));
        assert_eq!(global.status, "complete");
        assert_eq!(directory_roles_badge(None).0.status, "unknown");
    }
}
