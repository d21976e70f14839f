//! Running the `tenantry` binary from tests: environment, output capture, signals.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use sqlx::PgPool;

pub struct Tenantry {
    command: Command,
}

impl Tenantry {
    pub fn new() -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tenantry"));
        let pepper = base64::engine::general_purpose::STANDARD.encode([0x33u8; 32]);
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("TENANTRY_ENV", "test")
            .env("TENANTRY__SECRETS__API_KEY_PEPPER", pepper)
            .env(
                "TENANTRY__SECRETS__MASTER_KEY",
                base64::engine::general_purpose::STANDARD.encode([0x21u8; 32]),
            )
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        Self { command }
    }

    pub fn database(mut self, url: &str) -> Self {
        self.command.env("TENANTRY__DATABASE__URL", url);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.command.env_remove(key);
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.command.arg(arg);
        self
    }

    pub fn args<'a>(mut self, args: impl IntoIterator<Item = &'a str>) -> Self {
        self.command.args(args);
        self
    }

    pub fn output(mut self) -> Output {
        self.command.output().expect("tenantry runs")
    }

    pub fn spawn(mut self) -> Running {
        let mut child = self
            .command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tenantry starts");
        let (stdout_tx, stdout) = channel();
        let stdout_pipe = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout_pipe).lines().map_while(Result::ok) {
                let _ = stdout_tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                let mut all = sink.lock().expect("lock");
                all.push_str(&line);
                all.push('\n');
            }
        });
        Running {
            child,
            stdout,
            stderr,
        }
    }
}

pub struct Running {
    child: Child,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    pub fn wait_for_stdout_line(&mut self, limit: Duration) -> String {
        match self.stdout.recv_timeout(limit) {
            Ok(line) => line,
            Err(_) => {
                let _ = self.child.kill();
                panic!("no output within {limit:?}; stderr:\n{}", self.logs());
            }
        }
    }

    /// Waits for a log line containing `needle` and returns it.
    pub fn wait_for_stderr(&mut self, needle: &str, limit: Duration) -> String {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(line) = self.logs().lines().find(|line| line.contains(needle)) {
                return line.to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "tenantry exited ({status}) before logging {needle:?}:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("no {needle:?} within {limit:?}:\n{}", self.logs());
    }

    fn logs(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// SIGKILL: the process dies without any chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits; returns the exit code and everything logged.
    pub fn terminate(mut self, limit: Duration) -> (Option<i32>, String) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.logs());
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!(
                    "tenantry did not stop within {limit:?} of SIGTERM:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
    }
}

/// The URL of the database `#[sqlx::test]` made for this test.
pub fn database_url_for(pool: &PgPool) -> String {
    let base =
        std::env::var("DATABASE_URL").expect("DATABASE_URL (run the tests through scripts/test)");
    let database = pool
        .connect_options()
        .get_database()
        .expect("database name")
        .to_owned();
    let (server, _) = base.rsplit_once('/').expect("a URL with a database");
    format!("{server}/{database}")
}

pub async fn http_get(url: &str, key: Option<&str>) -> (u16, String) {
    tenantry_graph::install_default_crypto();
    let client = reqwest::Client::new();
    let mut request = client.get(url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}
