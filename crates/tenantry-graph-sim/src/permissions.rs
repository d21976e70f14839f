//! Microsoft Graph application permissions (app roles) with their global ids, from
//! `data/graph-permissions.json` (a copy of the reference file, with sources per entry).

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;
use uuid::Uuid;

/// The Microsoft Graph application id, the same in every tenant.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// The 27 permissions Dex's setup guide (seed 000) asks for; a healthy demo tenant has them.
pub const DEFAULT_REQUIRED: [&str; 27] = [
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Group.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "AuditLog.Read.All",
    "Application.Read.All",
    "RoleManagement.Read.Directory",
    "BitlockerKey.Read.All",
    "DeviceManagementApps.ReadWrite.All",
    "DeviceManagementConfiguration.Read.All",
    "DeviceManagementManagedDevices.PrivilegedOperations.All",
    "DeviceManagementManagedDevices.ReadWrite.All",
    "Mail.Send",
    "Mail.ReadWrite",
    "Calendars.ReadWrite",
    "MailboxSettings.ReadWrite",
    "Sites.Read.All",
    "Sites.ReadWrite.All",
    "Sites.FullControl.All",
    "Files.Read.All",
    "Files.ReadWrite.All",
    "Organization.Read.All",
    "Reports.Read.All",
    "ReportSettings.ReadWrite.All",
    "TeamsAppInstallation.ReadWriteForUser.All",
    "AppCatalog.ReadWrite.All",
];

#[derive(Debug, Deserialize)]
struct Entry {
    resource_app_id: String,
    value: String,
    id: Uuid,
}

static GRAPH_PERMISSIONS: LazyLock<HashMap<String, Uuid>> = LazyLock::new(|| {
    let entries: Vec<Entry> =
        serde_json::from_str(include_str!("../../../data/graph-permissions.json"))
            .expect("data/graph-permissions.json is valid");
    entries
        .into_iter()
        .filter(|e| e.resource_app_id == GRAPH_APP_ID)
        .map(|e| (e.value, e.id))
        .collect()
});

/// The app role id of a Graph permission, when it is one the reference file lists.
pub fn id_of(value: &str) -> Option<Uuid> {
    GRAPH_PERMISSIONS.get(value).copied()
}

/// The permission value of a Graph app role id.
pub fn value_of(id: Uuid) -> Option<&'static str> {
    GRAPH_PERMISSIONS
        .iter()
        .find(|(_, v)| **v == id)
        .map(|(k, _)| k.as_str())
}

/// Every known Graph permission, as `(value, id)`.
pub fn all() -> impl Iterator<Item = (&'static str, Uuid)> {
    GRAPH_PERMISSIONS.iter().map(|(k, v)| (k.as_str(), *v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_permission_has_an_id() {
        for permission in DEFAULT_REQUIRED {
            assert!(id_of(permission).is_some(), "{permission}");
        }
        assert_eq!(
            id_of("Mail.ReadWrite").map(|u| u.to_string()).as_deref(),
            Some("e2a3a72e-5f79-4c64-b1b1-878b674786c9")
        );
        assert_eq!(all().count(), 33);
    }
}
