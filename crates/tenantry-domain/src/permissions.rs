//! Microsoft Graph application permissions: the catalogue (values and their global app-role
//! ids, from `data/graph-permissions.json`, which cites a source for every entry), the
//! default required set, and the four-state comparison of granted against required.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Microsoft Graph's application id, the same in every tenant.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// The default required set: the 27 permissions of Dex's setup guide (seed 000), from
/// `data/default-required-permissions.txt`, the one list both the validator and the
/// simulator read.
pub static DEFAULT_REQUIRED: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| {
        include_str!("../../../data/default-required-permissions.txt")
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    });

#[derive(Debug, Deserialize)]
struct Entry {
    resource_app_id: String,
    value: String,
    id: Uuid,
}

/// `(value, app role id)` of every Graph application permission the catalogue knows.
static CATALOGUE: LazyLock<Vec<(String, Uuid)>> = LazyLock::new(|| {
    let entries: Vec<Entry> =
        serde_json::from_str(include_str!("../../../data/graph-permissions.json"))
            .unwrap_or_default();
    entries
        .into_iter()
        .filter(|e| e.resource_app_id == GRAPH_APP_ID)
        .map(|e| (e.value, e.id))
        .collect()
});

/// The permission name of a Graph app role id (app role ids are global).
pub fn permission_of(app_role_id: Uuid) -> Option<&'static str> {
    CATALOGUE
        .iter()
        .find(|(_, id)| *id == app_role_id)
        .map(|(value, _)| value.as_str())
}

/// The app role id of a Graph permission.
pub fn app_role_id_of(permission: &str) -> Option<Uuid> {
    CATALOGUE
        .iter()
        .find(|(value, _)| value == permission)
        .map(|(_, id)| *id)
}

/// Every permission the catalogue knows.
pub fn known() -> impl Iterator<Item = &'static str> {
    CATALOGUE.iter().map(|(value, _)| value.as_str())
}

/// Where one permission stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionState {
    /// Required and granted.
    Granted,
    /// Required, not granted: needs admin consent.
    Missing,
    /// Granted without being required: more privilege than the chosen features need.
    Extra,
    /// Neither required nor granted.
    NotRequired,
}

/// Granted permissions compared with the required set, permission by permission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PermissionDiff {
    pub granted: BTreeSet<String>,
    pub missing: BTreeSet<String>,
    pub extra: BTreeSet<String>,
    pub not_required: BTreeSet<String>,
}

impl PermissionDiff {
    pub fn compute(required: &BTreeSet<String>, granted: &BTreeSet<String>) -> Self {
        let not_required = known()
            .filter(|p| !required.contains(*p) && !granted.contains(*p))
            .map(str::to_owned)
            .collect();
        Self {
            granted: required.intersection(granted).cloned().collect(),
            missing: required.difference(granted).cloned().collect(),
            extra: granted.difference(required).cloned().collect(),
            not_required,
        }
    }

    pub fn state_of(&self, permission: &str) -> PermissionState {
        if self.granted.contains(permission) {
            PermissionState::Granted
        } else if self.missing.contains(permission) {
            PermissionState::Missing
        } else if self.extra.contains(permission) {
            PermissionState::Extra
        } else {
            PermissionState::NotRequired
        }
    }

    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(values: &[&str]) -> BTreeSet<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn the_catalogue_knows_every_default_permission_by_its_global_id() {
        for permission in DEFAULT_REQUIRED.iter().copied() {
            let id = app_role_id_of(permission).unwrap_or_else(|| panic!("{permission} has an id"));
            assert_eq!(permission_of(id), Some(permission));
        }
        assert_eq!(
            app_role_id_of("Mail.ReadWrite")
                .map(|id| id.to_string())
                .as_deref(),
            Some("e2a3a72e-5f79-4c64-b1b1-878b674786c9")
        );
        assert_eq!(known().count(), 33);
    }

    #[test]
    fn the_diff_has_four_states() {
        let required = set(&["User.Read.All", "AuditLog.Read.All"]);
        let granted = set(&["User.Read.All", "Mail.Send"]);
        let diff = PermissionDiff::compute(&required, &granted);
        assert_eq!(diff.granted, set(&["User.Read.All"]));
        assert_eq!(diff.missing, set(&["AuditLog.Read.All"]));
        assert_eq!(diff.extra, set(&["Mail.Send"]));
        assert_eq!(
            diff.state_of("Sites.Read.All"),
            PermissionState::NotRequired
        );
        assert_eq!(diff.state_of("AuditLog.Read.All"), PermissionState::Missing);
        assert!(!diff.is_complete());
        assert_eq!(diff.not_required.len(), 33 - 3);
    }
}
