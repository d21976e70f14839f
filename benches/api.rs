//! The authenticated read path at MSP scale: one MSP with 1,000 organizations (each
//! scanned once, so runs, jobs and inventories exist) and one of them a 50,000-user
//! tenant, served by the real `tenantry api` binary in its own process with its default
//! settings, loaded by `wrk` on loopback. Every endpoint is compared with the same
//! server's `/healthz` measured in the same run: the ratio is what authentication and the
//! endpoint's own work cost, whatever this machine's speed.
//!
//! Run with `scripts/bench-api` (it installs Debian's `wrk` when missing and starts a
//! throwaway PostgreSQL). Knobs: `BENCH_ORGS` (1000), `BENCH_BIG_USERS` (50000),
//! `BENCH_CONNECTIONS` (64), `BENCH_SECONDS` (10 per endpoint).
//!
//! Targets (issue #15): every list and search ≥ 25 % of `/healthz` with p99 < 20 ms;
//! `/api/v1/me` ≥ 40 % of `/healthz`.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use sqlx::PgPool;
use tenantry_domain::DisplayName;
use tenantry_graph_sim::{GraphSim, Scenario, TenantSpec};
use tenantry_store::{ApiKeyPepper, NewOrganization, Store};

const PEPPER: [u8; 32] = [9; 32];
const MASTER_KEY: [u8; 32] = [7; 32];

/// What `wrk --latency` reported for one endpoint.
struct Load {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    not_ok: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tenantry_graph::install_default_crypto();
    let organizations = common::env_number("BENCH_ORGS", 1000) as usize;
    let big_users = common::env_number("BENCH_BIG_USERS", 50_000) as u32;
    let connections = common::env_number("BENCH_CONNECTIONS", 64);
    let seconds = common::env_number("BENCH_SECONDS", 10);

    let seeding = Instant::now();
    let mut tenants = vec![TenantSpec::healthy("big", "Big Customer", big_users)];
    tenants.extend(
        (1..organizations)
            .map(|i| TenantSpec::healthy(&format!("c{i}"), &format!("Customer {i}"), 5)),
    );
    let scenario = Scenario { tenants };
    let sim = GraphSim::start(scenario.clone()).await.expect("simulator");
    let pool = common::fresh_database("api", 32).await;
    let store = Store::new(
        pool.clone(),
        ApiKeyPepper::new(PEPPER.to_vec()).expect("pepper"),
    )
    .with_keyring(tenantry_store::sealing::Keyring::new(&MASTER_KEY, &[]).expect("keyring"));
    let (_, _, issued) = store
        .operator()
        .create_msp(
            DisplayName::parse("Bench MSP").expect("name"),
            DisplayName::parse("Bench owner").expect("name"),
        )
        .await
        .expect("msp");
    let key = issued.expose().to_owned();
    let principal = store.authenticate(&key).await.expect("key");
    let scope = store.scope(&principal);
    // A validation report of the size real ones have (a few KB), which no list shows.
    let report = realistic_report();
    let mut ids = Vec::new();
    for tenant in &scenario.tenants {
        let created = scope
            .create_organization(NewOrganization {
                name: DisplayName::parse(&tenant.display_name).expect("name"),
                tenant_id: tenant.id,
                client_id: tenant.app().client_id,
                client_secret: tenant.secret_value().to_owned().into(),
                status: "connected".into(),
                report: report.clone(),
            })
            .await
            .expect("organization");
        ids.push(created.0.id);
    }
    scan_everything(&store, &sim, &pool).await;
    let users: i64 = sqlx::query_scalar("select count(*) from inventory_user")
        .fetch_one(&pool)
        .await
        .expect("count");
    println!(
        "seeded {organizations} organizations ({users} users in inventory, the largest tenant {big_users}) in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    sim.stop().await;

    let database_url = database_url(&pool);
    let mut server = ApiServer::start(&database_url);
    let big = ids[0];
    let endpoints: Vec<(String, String, f64)> = vec![
        ("/healthz".into(), "baseline".into(), 0.0),
        (
            "/api/v1/me".into(),
            "authentication, the caller's key".into(),
            0.40,
        ),
        (
            "/api/v1/organizations".into(),
            "first page of 1,000".into(),
            0.25,
        ),
        (
            "/api/v1/organizations?limit=100".into(),
            "largest page".into(),
            0.25,
        ),
        (
            format!("/api/v1/organizations/{big}"),
            "one organization".into(),
            0.25,
        ),
        (
            format!("/api/v1/organizations/{big}/users"),
            "50,000 users, first page".into(),
            0.25,
        ),
        (
            format!("/api/v1/organizations/{big}/users?q=an"),
            "search by name or address".into(),
            0.25,
        ),
        (
            format!("/api/v1/organizations/{big}/groups?q=a"),
            "group search".into(),
            0.25,
        ),
        (
            format!("/api/v1/organizations/{big}/devices?q=a"),
            "device search".into(),
            0.25,
        ),
        (
            format!("/api/v1/organizations/{big}/licenses"),
            "licences".into(),
            0.25,
        ),
        (
            format!("/api/v1/organizations/{big}/discovery-runs"),
            "runs".into(),
            0.25,
        ),
        (
            "/api/v1/jobs".into(),
            "jobs of 1,000 organizations".into(),
            0.25,
        ),
        ("/api/v1/actions".into(), "actions".into(), 0.25),
        ("/api/v1/audit-events".into(), "audit log".into(), 0.25),
        ("/api/v1/api-keys".into(), "keys".into(), 0.25),
    ];
    println!(
        "wrk: {connections} connections, 2 threads, {seconds} s per endpoint, against `tenantry api` (release, default settings: 10 database connections)"
    );
    println!(
        "{:<58} {:>10} {:>8} {:>8} {:>9}  target",
        "endpoint", "req/s", "p50 ms", "p99 ms", "/healthz"
    );
    let mut baseline = 0.0;
    let mut missed = 0;
    for (path, what, target) in &endpoints {
        let auth = path.starts_with("/api/");
        let load = wrk(
            &format!("{}{path}", server.base),
            auth.then_some(key.as_str()),
            connections,
            seconds,
        );
        assert_eq!(
            load.not_ok, 0,
            "{path}: {} answers were not 2xx",
            load.not_ok
        );
        if baseline == 0.0 {
            baseline = load.requests_per_sec;
        }
        let ratio = load.requests_per_sec / baseline;
        let verdict = if *target == 0.0 {
            String::new()
        } else if ratio >= *target && load.p99_ms < 20.0 {
            format!("≥ {:.0} %, p99 < 20 ms: met", target * 100.0)
        } else {
            missed += 1;
            format!("≥ {:.0} %, p99 < 20 ms: MISSED", target * 100.0)
        };
        let label = format!("{path} ({what})");
        println!(
            "{label:<58} {:>10.0} {:>8.2} {:>8.2} {:>8.0} %  {verdict}",
            load.requests_per_sec,
            load.p50_ms,
            load.p99_ms,
            ratio * 100.0
        );
    }
    println!("{missed} endpoint(s) missed their target");
    server.stop();
}

/// Runs the first scan every new organization queued, with the job engine (the large tenant's 50,000 users
/// page in 999 at a time), so the lists read real runs, jobs and inventories.
async fn scan_everything(store: &Store, sim: &GraphSim, pool: &PgPool) {
    let graph = tenantry_graph::GraphAccess::new(
        tenantry_graph::GraphHttp::new(tenantry_graph::GraphConfig::new(
            &sim.base_url(),
            &sim.base_url(),
        ))
        .expect("client"),
    );
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(tenantry_jobs::run(
        tenantry_jobs::JobContext {
            store: store.clone(),
            graph,
            public_url: None,
        },
        tenantry_jobs::EngineConfig {
            concurrency: 16,
            global: 16,
            per_organization: 1,
            poll_interval: Duration::from_millis(20),
            ..Default::default()
        },
        tenantry_jobs::LeaderConfig::default(),
        shutdown,
    ));
    loop {
        let (open, failed): (i64, i64) = sqlx::query_as(
            "select count(*) filter (where state in ('queued', 'running')),
                    count(*) filter (where state not in ('queued', 'running', 'succeeded'))
             from discovery_run",
        )
        .fetch_one(pool)
        .await
        .expect("count");
        assert_eq!(failed, 0, "every scan succeeds");
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    let _ = workers.await;
    sqlx::query("vacuum analyze")
        .execute(pool)
        .await
        .expect("vacuum");
}

fn realistic_report() -> serde_json::Value {
    let capability = |name: &str| {
        serde_json::json!({
            "capability": name, "available": true,
            "required_app_roles": ["User.Read.All", "Group.Read.All", "Directory.Read.All"],
            "granted_app_roles": ["User.Read.All", "Group.Read.All", "Directory.Read.All"],
            "missing_app_roles": [], "required_directory_roles": ["User Administrator"],
            "missing_directory_roles": [],
            "fix": "Grant the listed permissions in Entra admin center → App registrations → API permissions, then grant admin consent.",
        })
    };
    let capabilities: Vec<serde_json::Value> = [
        "inventory",
        "password_reset",
        "mfa_reset",
        "sign_in_block",
        "group_membership",
        "sessions",
        "offboarding",
        "licenses",
    ]
    .iter()
    .map(|c| capability(c))
    .collect();
    serde_json::json!({
        "checked_at": "2026-12-01T00:00:00Z",
        "organization": {"display_name": "Customer", "verified_domains": ["customer.example", "customer.onmicrosoft.com"]},
        "capabilities": capabilities,
    })
}

fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let database = pool
        .connect_options()
        .get_database()
        .expect("database")
        .to_owned();
    let (server, _) = base.rsplit_once('/').expect("url");
    format!("{server}/{database}")
}

struct ApiServer {
    base: String,
    child: Child,
}

impl ApiServer {
    /// `tenantry api` on a free port, logging warnings only (as a loaded server would be
    /// configured), over the bench's database.
    fn start(database_url: &str) -> Self {
        let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_tenantry"))
            .arg("api")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("TENANTRY__DATABASE__URL", database_url)
            .env("TENANTRY__HTTP__ADDR", format!("127.0.0.1:{port}"))
            .env("TENANTRY__SECRETS__API_KEY_PEPPER", encode(&PEPPER))
            .env("TENANTRY__SECRETS__MASTER_KEY", encode(&MASTER_KEY))
            .env("TENANTRY__LOG__FILTER", "warn")
            .env_remove("RUST_LOG")
            .env_remove("TENANTRY_ENV")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("tenantry api starts");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "tenantry api did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { base, child }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `wrk --latency` against `url` and reads its summary.
fn wrk(url: &str, key: Option<&str>, connections: u64, seconds: u64) -> Load {
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
        .expect("wrk runs (scripts/bench-api installs it)");
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
    Load {
        requests_per_sec: field("Requests/sec:").parse().expect("rate"),
        p50_ms: milliseconds(field("50%")),
        p99_ms: milliseconds(field("99%")),
        not_ok,
    }
}

/// wrk's durations: `812.00us`, `1.23ms`, `2.01s`.
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
