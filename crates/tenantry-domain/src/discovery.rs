//! The sections of a discovery run (DESIGN §8): what each reads, and the permission a
//! technician must grant when Microsoft refuses it, so a refused section is reported as
//! "skipped: grant X" instead of failing the run.

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
}

impl Section {
    /// Every section, in the order a full run reports them.
    pub const ALL: [Section; 11] = [
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
    ];

    /// What a delta run reads: the sections with delta links, and the members of the
    /// groups that changed.
    pub const DELTA: [Section; 3] = [Section::Users, Section::Groups, Section::GroupMembers];

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
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_permissions_are_in_the_catalogue() {
        for section in Section::ALL {
            assert_eq!(Section::parse(section.name()), Some(section));
            assert!(
                crate::permissions::app_role_id_of(section.permission()).is_some(),
                "{} is not a Graph application permission",
                section.permission()
            );
        }
    }
}
