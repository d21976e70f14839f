//! `tenantry test-env -- <command>`: runs a command with `DATABASE_URL` pointing at a
//! throwaway PostgreSQL cluster, and removes the cluster afterwards, whether the command
//! passed, failed or was interrupted. The README's test command is built on it.

use std::process::ExitCode;

use anyhow::Context;

use super::shutdown_signal;
use crate::postgres::TempCluster;

pub async fn run(command: Vec<String>) -> anyhow::Result<ExitCode> {
    let Some((program, args)) = command.split_first() else {
        anyhow::bail!("test-env needs a command to run");
    };
    let cluster = tokio::task::spawn_blocking(TempCluster::start).await??;
    eprintln!(
        "test-env: throwaway PostgreSQL on 127.0.0.1:{} (data in {})",
        cluster.cluster().port(),
        cluster.cluster().data_dir().display()
    );
    // The command runs in its own process group, so an interruption can end all of it
    // (cargo and every test binary it started), not just its first process.
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env("DATABASE_URL", cluster.url())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let code = tokio::select! {
        status = child.wait() => {
            let status = status.context("waiting for the command")?;
            status.code().map_or(ExitCode::FAILURE, |code| ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        () = shutdown_signal() => {
            if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
                let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            }
            let _ = child.wait().await;
            eprintln!("test-env: interrupted");
            ExitCode::from(130)
        }
    };
    tokio::task::spawn_blocking(move || drop(cluster)).await?;
    eprintln!("test-env: PostgreSQL stopped and removed");
    Ok(code)
}
