//! The workspace's dependency rules (DESIGN §2), checked from the manifests so a wrong
//! dependency fails the build's tests instead of a review.

use std::collections::BTreeMap;

/// Which workspace crates each crate may depend on.
const ALLOWED: [(&str, &[&str]); 6] = [
    ("tenantry-domain", &[]),
    ("tenantry-graph", &["tenantry-domain"]),
    ("tenantry-store", &["tenantry-domain"]),
    (
        "tenantry-jobs",
        &["tenantry-domain", "tenantry-graph", "tenantry-store"],
    ),
    (
        "tenantry-api",
        &[
            "tenantry-domain",
            "tenantry-graph",
            "tenantry-store",
            "tenantry-jobs",
        ],
    ),
    ("tenantry-graph-sim", &[]),
];

/// The `tenantry-*` names a manifest lists in its `[dependencies]` (what ships; tests may
/// use the simulator as a dev-dependency).
fn workspace_dependencies(manifest: &str) -> Vec<String> {
    let mut in_dependencies = false;
    let mut found = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if in_dependencies && line.starts_with("tenantry") {
            let name = line.split(['.', '=', ' ']).next().unwrap_or_default();
            found.push(name.to_owned());
        }
    }
    found
}

#[test]
fn crates_depend_only_in_the_allowed_direction() {
    let root = env!("CARGO_MANIFEST_DIR");
    let rules: BTreeMap<_, _> = ALLOWED.into_iter().collect();
    let mut crates = std::fs::read_dir(format!("{root}/crates"))
        .expect("crates folder")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>();
    crates.sort();
    assert_eq!(
        crates,
        rules.keys().copied().collect::<Vec<_>>(),
        "every crate has a rule"
    );
    for (name, allowed) in rules {
        let manifest =
            std::fs::read_to_string(format!("{root}/crates/{name}/Cargo.toml")).expect("manifest");
        for dependency in workspace_dependencies(&manifest) {
            assert!(
                allowed.contains(&dependency.as_str()),
                "{name} may not depend on {dependency}"
            );
        }
    }
}
