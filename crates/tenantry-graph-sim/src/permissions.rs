//! Microsoft Graph application permissions (app roles) with their global ids, from
//! `data/graph-permissions.json` (a copy of the reference file, with sources per entry).

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;
use uuid::Uuid;

/// The Microsoft Graph application id, the same in every tenant.
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

/// Partner-tenant permissions the shared data file does not list (it holds what customer
/// tenants need), with the application ids of graph-facts-next §1.7.1 (DEVX
/// `permissions-descriptions.json`, application list).
const PARTNER_PERMISSIONS: [(&str, &str); 2] = [
    (
        "DelegatedAdminRelationship.Read.All",
        "f6e9e124-4586-492f-adc0-c6f96e4823fd",
    ),
    (
        "DelegatedAdminRelationship.ReadWrite.All",
        "cc13eba4-8cd8-44c6-b4d4-f93237adce58",
    ),
];

static GRAPH_PERMISSIONS: LazyLock<HashMap<String, Uuid>> = LazyLock::new(|| {
    let entries: Vec<Entry> =
        serde_json::from_str(include_str!("../../../data/graph-permissions.json"))
            .expect("data/graph-permissions.json is valid");
    let partner = PARTNER_PERMISSIONS
        .iter()
        .filter_map(|(value, id)| Some(((*value).to_owned(), Uuid::parse_str(id).ok()?)));
    entries
        .into_iter()
        .filter(|e| e.resource_app_id == GRAPH_APP_ID)
        .map(|e| (e.value, e.id))
        .chain(partner)
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
        for permission in DEFAULT_REQUIRED.iter().copied() {
            assert!(id_of(permission).is_some(), "{permission}");
        }
        assert_eq!(
            id_of("Mail.ReadWrite").map(|u| u.to_string()).as_deref(),
            Some("e2a3a72e-5f79-4c64-b1b1-878b674786c9")
        );
        assert_eq!(
            id_of("DelegatedAdminRelationship.Read.All")
                .map(|u| u.to_string())
                .as_deref(),
            Some("f6e9e124-4586-492f-adc0-c6f96e4823fd")
        );
        assert_eq!(all().count(), 35);
    }
}
