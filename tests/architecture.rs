//! The workspace's dependency rules (DESIGN §2), checked from the manifests so a wrong
//! dependency fails the build's tests instead of a review.

use std::collections::BTreeMap;

/// Which workspace crates each crate may depend on. The HTTP API and the job engine are
/// two front ends over the same core and never depend on each other: the binary wires
/// them together.
const ALLOWED: [(&str, &[&str]); 7] = [
    ("tenantry-domain", &[]),
    ("tenantry-graph", &["tenantry-domain"]),
    ("tenantry-store", &["tenantry-domain"]),
    (
        "tenantry-actions",
        &["tenantry-domain", "tenantry-graph", "tenantry-store"],
    ),
    (
        "tenantry-jobs",
        &[
            "tenantry-domain",
            "tenantry-graph",
            "tenantry-store",
            "tenantry-actions",
        ],
    ),
    (
        "tenantry-api",
        &[
            "tenantry-domain",
            "tenantry-graph",
            "tenantry-store",
            "tenantry-actions",
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

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[test]
fn job_arguments_are_read_as_types_and_job_kinds_live_with_the_engine() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = rust_files(&root.join("crates"));
    sources.extend(rust_files(&root.join("src")));
    sources.extend(rust_files(&root.join("tests")));
    // This file names the patterns it looks for.
    let this_file = root.join("tests/architecture.rs");
    let untyped = ["args", "[\""].concat();
    for file in sources.iter().filter(|f| **f != this_file) {
        let text = std::fs::read_to_string(file).expect("source");
        assert!(
            !text.contains(&untyped),
            "{} reads job arguments as untyped JSON; use `ClaimedJob::args::<T>()`",
            file.display()
        );
        if file.starts_with(root.join("crates/tenantry-api")) {
            for handler in ["impl JobHandler", "impl Handler for", "tenantry_jobs"] {
                assert!(
                    !text.contains(handler),
                    "{} defines or reaches a job handler; job kinds belong to tenantry-jobs",
                    file.display()
                );
            }
        }
    }
}
