//! What the load benches share: the real `tenantry` binary started as its own process
//! (`api` or `worker`) over a bench database, and `wrk` run against it.

// Each bench uses only part of this module.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

use crate::seed::{MASTER_KEY, PEPPER};

/// What `wrk --latency` reported.
pub struct Load {
    pub requests: u64,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub not_ok: u64,
}

pub struct Process {
    pub base: String,
    child: Child,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn command(subcommand: &str, database_url: &str) -> Command {
        let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut command = Command::new(env!("CARGO_BIN_EXE_tenantry"));
        command
            .arg(subcommand)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("TENANTRY__DATABASE__URL", database_url)
            .env("TENANTRY__SECRETS__API_KEY_PEPPER", encode(&PEPPER))
            .env("TENANTRY__SECRETS__MASTER_KEY", encode(&MASTER_KEY))
            .env("TENANTRY__LOG__FILTER", "warn")
            .env_remove("RUST_LOG")
            .env_remove("TENANTRY_ENV")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Slow-statement warnings under load would drown the figures.
            .stderr(Stdio::null());
        command
    }

    /// `tenantry api` on a free port, logging warnings only (as a loaded server would be
    /// configured), with its default settings otherwise.
    pub fn api(database_url: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Self::command("api", database_url)
            .env("TENANTRY__HTTP__ADDR", format!("127.0.0.1:{port}"))
            .spawn()
            .expect("tenantry api starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "tenantry api did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            base: format!("http://127.0.0.1:{port}"),
            child,
        }
    }

    /// `tenantry worker` talking to Microsoft at `microsoft` (the simulator).
    pub fn worker(database_url: &str, microsoft: &str) -> Self {
        let child = Self::command("worker", database_url)
            .env("TENANTRY__MICROSOFT__AUTHORITY_URL", microsoft)
            .env("TENANTRY__MICROSOFT__GRAPH_URL", microsoft)
            .env("TENANTRY__MICROSOFT__EXCHANGE_URL", microsoft)
            .spawn()
            .expect("tenantry worker starts");
        Self {
            base: String::new(),
            child,
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `wrk --latency` (2 threads) against `url` and reads its summary.
pub fn wrk(url: &str, key: Option<&str>, connections: u64, seconds: u64) -> Load {
    let mut command = Command::new("wrk");
    command.args([
        "--latency",
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
    ]);
    if let Some(key) = key {
        command.args(["-H", &format!("Authorization: Bearer {key}")]);
    }
    let output = command
        .arg(url)
        .output()
        .expect("wrk runs (the bench's script installs it)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "wrk failed: {text}");
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {prefix:?} in wrk's output:\n{text}"))
    };
    let not_ok = text
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0);
    // "  123456 requests in 10.00s, 45.67MB read"
    let requests = text
        .lines()
        .map(str::trim)
        .find_map(|line| line.split_once(" requests in "))
        .and_then(|(count, _)| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"));
    Load {
        requests,
        requests_per_sec: field("Requests/sec:").parse().expect("rate"),
        p50_ms: milliseconds(field("50%")),
        p99_ms: milliseconds(field("99%")),
        not_ok,
    }
}

/// wrk's durations: `812.00us`, `1.23ms`, `2.01s`, `1.00m`.
fn milliseconds(value: &str) -> f64 {
    let (number, unit) = value
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((value, "ms"), |at| value.split_at(at));
    let number: f64 = number.parse().expect("a duration");
    match unit {
        "us" => number / 1000.0,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        _ => number,
    }
}

/// The URL of the database `pool` is connected to, on `DATABASE_URL`'s server.
pub fn database_url(pool: &sqlx::PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let database = pool
        .connect_options()
        .get_database()
        .expect("database")
        .to_owned();
    let (server, _) = base.rsplit_once('/').expect("url");
    format!("{server}/{database}")
}
