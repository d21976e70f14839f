//! Throwaway Python virtual environments for the tests that run Python tools against the
//! API (`openapi-python-client`, `schemathesis`): one per tool, under the build's
//! temporary folder, created on first use and reused by later runs of the same build
//! folder. Versions are pinned so a new release cannot change what the tests check. When
//! PyPI cannot be reached the helper says so on standard error and the test passes, as
//! the SDK compatibility test does; any other failure fails it.

use std::path::PathBuf;
use std::time::Duration;

use tokio::process::Command;

/// Runs `command` to its end, killing it after `limit`.
pub async fn run(command: &mut Command, limit: Duration, what: &str) -> std::process::Output {
    command.kill_on_drop(true);
    match tokio::time::timeout(limit, command.output()).await {
        Ok(output) => output.unwrap_or_else(|e| panic!("{what} could not be started: {e}")),
        Err(_) => panic!("{what} took longer than {limit:?}"),
    }
}

/// The `bin` folder of a virtual environment named `name` holding `packages` (pinned
/// `name==version` requirements); `None` when PyPI is unreachable.
pub async fn venv_with(name: &str, packages: &[&str]) -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let bin = venv.join("bin");
    let ready = venv.join("installed");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&ready).is_ok_and(|have| have == wanted) {
        return Some(bin);
    }
    let created = run(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
        Duration::from_secs(120),
        "python3 -m venv",
    )
    .await;
    assert!(
        created.status.success(),
        "python3 -m venv failed (scripts/test installs python3-venv when it is missing): {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let probe = run(
        Command::new(bin.join("python"))
            .args(["-m", "pip", "download", "--no-deps", "--quiet"])
            .args(["--timeout", "30", "-d"])
            .arg(venv.join("probe"))
            .arg(packages[0]),
        Duration::from_secs(120),
        "pip download",
    )
    .await;
    if !probe.status.success() {
        eprintln!(
            "SKIPPED: PyPI is unreachable, so {} cannot be installed:\n{}",
            packages.join(", "),
            String::from_utf8_lossy(&probe.stderr)
        );
        return None;
    }
    let install = run(
        Command::new(bin.join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(packages),
        Duration::from_secs(600),
        "pip install",
    )
    .await;
    assert!(
        install.status.success(),
        "installing {} failed: {}",
        packages.join(", "),
        String::from_utf8_lossy(&install.stderr)
    );
    std::fs::write(&ready, wanted).expect("marker");
    Some(bin)
}
