//! Finding `initdb` and `pg_ctl`: on PATH, else in Debian's `/usr/lib/postgresql/<n>/bin`
//! (newest first), else installing Debian's `postgresql` package when we are root and
//! `apt-get` exists.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::cluster::ClusterError;

#[derive(Clone, Debug)]
pub struct PgBinaries {
    pub initdb: PathBuf,
    pub pg_ctl: PathBuf,
}

impl PgBinaries {
    /// Finds the binaries, installing PostgreSQL first when they are missing and we can.
    pub fn locate_or_install() -> Result<Self, ClusterError> {
        if let Some(found) = Self::locate() {
            return Ok(found);
        }
        install_debian_package()?;
        Self::locate().ok_or(ClusterError::NotInstalled(
            "installed Debian's postgresql package, but still found no initdb".into(),
        ))
    }

    fn locate() -> Option<Self> {
        let on_path = |name: &str| {
            std::env::var_os("PATH")
                .into_iter()
                .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
                .map(|dir| dir.join(name))
                .find(|candidate| is_executable(candidate))
        };
        if let (Some(initdb), Some(pg_ctl)) = (on_path("initdb"), on_path("pg_ctl")) {
            return Some(Self { initdb, pg_ctl });
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                Some((version, entry.path().join("bin")))
            })
            .collect();
        versions.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
        versions.into_iter().find_map(|(_, bin)| {
            let (initdb, pg_ctl) = (bin.join("initdb"), bin.join("pg_ctl"));
            (is_executable(&initdb) && is_executable(&pg_ctl)).then_some(Self { initdb, pg_ctl })
        })
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

fn install_debian_package() -> Result<(), ClusterError> {
    let hint = "install PostgreSQL's server (Debian: `apt-get install postgresql`) or set TENANTRY__DATABASE__URL";
    if !nix::unistd::Uid::effective().is_root() {
        return Err(ClusterError::NotInstalled(format!(
            "no initdb/pg_ctl found and not root; {hint}"
        )));
    }
    if !is_executable(Path::new("/usr/bin/apt-get")) {
        return Err(ClusterError::NotInstalled(format!(
            "no initdb/pg_ctl found and no apt-get; {hint}"
        )));
    }
    eprintln!(
        "PostgreSQL is not installed; installing Debian's postgresql package (a minute or two)…"
    );
    // Debian's package creates and starts a system-wide cluster on port 5432; a
    // policy-rc.d answering 101 ("action forbidden") keeps it from starting, the usual way
    // containers install services. Only a file we created is removed afterwards.
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let placed_policy = !policy.exists()
        && std::fs::write(policy, "#!/bin/sh\nexit 101\n").is_ok()
        && std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755)).is_ok();
    let installed = run_apt_get(hint);
    if placed_policy {
        let _ = std::fs::remove_file(policy);
    }
    installed
}

fn run_apt_get(hint: &str) -> Result<(), ClusterError> {
    let install = [
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        "postgresql",
    ];
    for args in [&["update", "-qq"][..], &install[..]] {
        let status = Command::new("/usr/bin/apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| ClusterError::NotInstalled(format!("running apt-get: {e}")))?;
        if !status.success() {
            return Err(ClusterError::NotInstalled(format!(
                "apt-get {} failed ({status}); {hint}",
                args[0]
            )));
        }
    }
    Ok(())
}
