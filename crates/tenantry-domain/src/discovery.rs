//! The sections of a discovery run (DESIGN §8): what each reads, the permission a
//! technician must grant when Microsoft refuses it (so a refused section is reported as
//! "skipped: grant X" instead of failing the run), and when a delta run reads it.

use chrono::{DateTime, TimeDelta, Utc};

/// One part of a tenant's inventory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Section {
    Organization,
    Domains,
    Users,
    Groups,
    GroupMembers,
    DirectoryRoles,
    ServicePrincipals,
    Licenses,
    Devices,
    RiskyUsers,
    AppSecret,
    /// Exchange Online mailboxes (the admin API's `Get-Mailbox`), shared ones with their
    /// FullAccess and SendAs holders.
    Mailboxes,
    /// Distribution groups and mail-enabled security groups with their members.
    DistributionGroups,
}

impl Section {
    /// Every section, in the order a full run reports them.
    pub const ALL: [Section; 13] = [
        Section::Organization,
        Section::Domains,
        Section::Users,
        Section::Groups,
        Section::GroupMembers,
        Section::DirectoryRoles,
        Section::ServicePrincipals,
        Section::Licenses,
        Section::Devices,
        Section::RiskyUsers,
        Section::AppSecret,
        Section::Mailboxes,
        Section::DistributionGroups,
    ];

    /// How long a section stays fresh for delta runs: users and groups are read by every
    /// delta run (through their delta links, so a run reads only what changed), the
    /// others only once this long has passed since a run last read them (or when
    /// something asked for them, see [`SectionPlan`]). Full runs read everything.
    ///
    /// Chosen, not measured: what Microsoft changes without an administrator's hand
    /// (device compliance, user risk) every 4 hours; roles, applications and licences,
    /// which an administrator changes, every 12; the organization, its domains and the
    /// app's own secret once a day.
    pub fn refresh_interval(self) -> Option<TimeDelta> {
        match self {
            Section::Users | Section::Groups | Section::GroupMembers => None,
            Section::Devices | Section::RiskyUsers => Some(TimeDelta::hours(4)),
            Section::DirectoryRoles
            | Section::ServicePrincipals
            | Section::Licenses
            | Section::Mailboxes
            | Section::DistributionGroups => Some(TimeDelta::hours(12)),
            Section::Organization | Section::Domains | Section::AppSecret => {
                Some(TimeDelta::hours(24))
            }
        }
    }

    /// The name used in run records and the inventory tables.
    pub fn name(self) -> &'static str {
        match self {
            Section::Organization => "organization",
            Section::Domains => "domains",
            Section::Users => "users",
            Section::Groups => "groups",
            Section::GroupMembers => "group_members",
            Section::DirectoryRoles => "directory_roles",
            Section::ServicePrincipals => "service_principals",
            Section::Licenses => "licenses",
            Section::Devices => "devices",
            Section::RiskyUsers => "risky_users",
            Section::AppSecret => "app_secret",
            Section::Mailboxes => "mailboxes",
            Section::DistributionGroups => "distribution_groups",
        }
    }

    /// The application permission to grant when Microsoft refuses the section: the
    /// narrowest one of the sourced catalogue (data/graph-permissions.json) that allows it.
    /// Narrower ones exist for some (Group.Read.All, Domain.Read.All,
    /// DeviceManagementManagedDevices.Read.All) but are not in the catalogue, so their
    /// ids are unverified here; the catalogue's are what the onboarding set asks for.
    pub fn permission(self) -> &'static str {
        match self {
            Section::Organization | Section::Licenses => "Organization.Read.All",
            Section::Users => "User.Read.All",
            Section::Domains | Section::Groups | Section::GroupMembers => "Directory.Read.All",
            Section::DirectoryRoles => "RoleManagement.Read.Directory",
            Section::ServicePrincipals | Section::AppSecret => "Application.Read.All",
            Section::Devices => "DeviceManagementManagedDevices.ReadWrite.All",
            Section::RiskyUsers => "IdentityRiskyUser.Read.All",
            // An app role of the Exchange Online resource, with an Exchange role.
            Section::Mailboxes | Section::DistributionGroups => {
                "Exchange.ManageAsApp (Office 365 Exchange Online) with the Exchange Administrator role"
            }
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Why a run reads a section, or does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A full run reads every section.
    Full,
    /// Users, groups and the members of changed groups: every delta run, by delta link.
    Delta,
    /// Its last read is older than its [`Section::refresh_interval`] (or it was never read).
    Due,
    /// Something asked for it since it was last read (a change notification naming it).
    Requested,
    /// Not read: read recently enough, and nothing asked for it.
    NotDue,
}

impl Reason {
    /// The word the run record uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Full => "full",
            Reason::Delta => "delta",
            Reason::Due => "due",
            Reason::Requested => "requested",
            Reason::NotDue => "not_due",
        }
    }

    pub fn reads(self) -> bool {
        self != Reason::NotDue
    }
}

/// What an organization's inventory remembers of one section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SectionState {
    /// When an applied run last read it.
    pub read_at: Option<DateTime<Utc>>,
    /// When something last asked for it to be read again.
    pub requested_at: Option<DateTime<Utc>>,
}

/// What a run reads, section by section, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionPlan {
    pub sections: Vec<(Section, Reason)>,
}

impl SectionPlan {
    /// Every section of a full run; for a delta run, users and groups (and members of
    /// changed groups) plus each other section that is due or was asked for at `now`.
    pub fn new(delta: bool, now: DateTime<Utc>, state: impl Fn(Section) -> SectionState) -> Self {
        let sections = Section::ALL
            .into_iter()
            .map(|section| {
                let reason = if !delta {
                    Reason::Full
                } else {
                    match section.refresh_interval() {
                        None => Reason::Delta,
                        Some(interval) => {
                            let known = state(section);
                            match known.read_at {
                                None => Reason::Due,
                                Some(read) if known.requested_at.is_some_and(|r| r > read) => {
                                    Reason::Requested
                                }
                                Some(read) if now - read >= interval => Reason::Due,
                                Some(_) => Reason::NotDue,
                            }
                        }
                    }
                };
                (section, reason)
            })
            .collect();
        Self { sections }
    }

    /// The sections to read, in report order.
    pub fn reads(&self) -> impl Iterator<Item = Section> + '_ {
        self.sections
            .iter()
            .filter(|(_, reason)| reason.reads())
            .map(|(section, _)| *section)
    }

    pub fn reason(&self, section: Section) -> Reason {
        self.sections
            .iter()
            .find(|(s, _)| *s == section)
            .map_or(Reason::NotDue, |(_, reason)| *reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + hours * 3600, 0).expect("time")
    }

    #[test]
    fn a_full_run_reads_everything() {
        let plan = SectionPlan::new(false, at(0), |_| SectionState {
            read_at: Some(at(0)),
            requested_at: None,
        });
        assert_eq!(plan.reads().count(), Section::ALL.len());
        assert!(plan.sections.iter().all(|(_, r)| *r == Reason::Full));
    }

    #[test]
    fn a_delta_run_reads_other_sections_only_when_due_or_asked_for() {
        let read_two_hours_ago = |section: Section| SectionState {
            read_at: Some(at(-2)),
            requested_at: (section == Section::Licenses).then(|| at(-1)),
        };
        let plan = SectionPlan::new(true, at(0), read_two_hours_ago);
        let reads: Vec<Section> = plan.reads().collect();
        assert_eq!(
            reads,
            [
                Section::Users,
                Section::Groups,
                Section::GroupMembers,
                Section::Licenses
            ]
        );
        assert_eq!(plan.reason(Section::Users), Reason::Delta);
        assert_eq!(plan.reason(Section::Licenses), Reason::Requested);
        assert_eq!(plan.reason(Section::Devices), Reason::NotDue);

        // Five hours on, devices and risky users (4 h) are due; roles (12 h) are not.
        let plan = SectionPlan::new(true, at(3), read_two_hours_ago);
        assert_eq!(plan.reason(Section::Devices), Reason::Due);
        assert_eq!(plan.reason(Section::RiskyUsers), Reason::Due);
        assert_eq!(plan.reason(Section::DirectoryRoles), Reason::NotDue);

        // Never read (the organization's first run is a delta one): everything is due.
        let plan = SectionPlan::new(true, at(0), |_| SectionState::default());
        assert_eq!(plan.reads().count(), Section::ALL.len());
    }

    #[test]
    fn names_round_trip_and_permissions_are_in_the_catalogue() {
        for section in Section::ALL {
            assert_eq!(Section::parse(section.name()), Some(section));
            if matches!(section, Section::Mailboxes | Section::DistributionGroups) {
                // Exchange Online's own resource, not Graph's.
                assert!(section.permission().starts_with("Exchange.ManageAsApp"));
                continue;
            }
            assert!(
                crate::permissions::app_role_id_of(section.permission()).is_some(),
                "{} is not a Graph application permission",
                section.permission()
            );
        }
    }
}
