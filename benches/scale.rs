//! Past one process: two `tenantry api` processes and three `tenantry worker` processes
//! over one PostgreSQL, the simulator in a sixth process. First the API alone under load
//! (both processes at once, `wrk` against each: round-robin by construction), then 200
//! tenants scanned by the three workers while the same load runs (in slices until the
//! last scan ends). Prints the scan's wall
//! time and rate, the API's rate and p99 alone and during the scan, and proves every job
//! ran exactly once (one attempt, one run per organization, each succeeded, the workers
//! that took them).
//!
//! Run with `scripts/bench-scale` (throwaway PostgreSQL; installs Debian's `wrk` when
//! missing). Knobs: `BENCH_TENANTS` (200), `BENCH_USERS` (500), `BENCH_LATENCY_MS` (20),
//! `BENCH_CONNECTIONS` (32 per API process), `BENCH_SECONDS` (5 per load slice).

mod common;
mod load;
mod seed;

use std::time::{Duration, Instant};

use tenantry_graph_sim::{Scenario, TenantSpec};

use load::{Load, Process, database_url, wrk};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tenantry_graph::install_default_crypto();
    let tenants = common::env_number("BENCH_TENANTS", 200) as usize;
    let users = common::env_number("BENCH_USERS", 500) as u32;
    let latency = common::env_number("BENCH_LATENCY_MS", 20);
    let connections = common::env_number("BENCH_CONNECTIONS", 32);
    let seconds = common::env_number("BENCH_SECONDS", 5);

    let scenario = Scenario {
        tenants: (0..tenants)
            .map(|i| TenantSpec::healthy(&format!("s{i}"), &format!("Scale {i}"), users))
            .collect(),
    };
    let mut sim = seed::Simulator::start(&scenario);
    let microsoft = sim.base.clone();
    reqwest::Client::new()
        .put(format!("{microsoft}/_sim/faults"))
        .json(&serde_json::json!({"global": {"latency_ms": latency}}))
        .send()
        .await
        .expect("latency set");

    let pool = common::fresh_database("scale", 8).await;
    let store = seed::store(&pool);
    let (key, principal) = seed::msp(&store, "Scale MSP").await;
    let scope = store.scope(&principal);
    // Creating an organization queues its first scan; no worker runs yet.
    let first = seed::connect_all(&scope, &scenario, &serde_json::json!({})).await[0];

    let url = database_url(&pool);
    let apis = [Process::api(&url), Process::api(&url)];
    let paths = [
        "/api/v1/organizations".to_owned(),
        format!("/api/v1/organizations/{first}/discovery-runs"),
    ];
    println!(
        "{tenants} tenants × {users} users at {latency} ms per Microsoft request; 2 API processes (wrk, {connections} connections each), 3 worker processes (default settings: 16 jobs each, 64 across all), one PostgreSQL, 2 cores"
    );
    let alone = load_slice(&apis, &paths, &key, connections, seconds).await;
    print_load("API alone", &alone);

    let workers = [
        Process::worker(&url, &microsoft),
        Process::worker(&url, &microsoft),
        Process::worker(&url, &microsoft),
    ];
    let started = Instant::now();
    let finished = tokio::spawn({
        let pool = pool.clone();
        async move {
            loop {
                let open: i64 = sqlx::query_scalar(
                    "select count(*) from discovery_run where state in ('queued', 'running')",
                )
                .fetch_one(&pool)
                .await
                .expect("count");
                if open == 0 {
                    return started.elapsed();
                }
                assert!(
                    started.elapsed() < Duration::from_secs(900),
                    "the scans did not finish in 15 minutes"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let mut during = Vec::new();
    while !finished.is_finished() {
        during.extend(load_slice(&apis, &paths, &key, connections, seconds).await);
    }
    let scan = finished.await.expect("scan watch");
    print_load("API during the scan", &during);
    drop(workers);
    drop(apis);
    sim.stop();

    let (runs, succeeded, organizations_scanned): (i64, i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where state = 'succeeded'), count(distinct organization_id)
         from discovery_run",
    )
    .fetch_one(&pool)
    .await
    .expect("runs");
    let (jobs, completed, once, by): (i64, i64, i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where state = 'completed'),
                count(*) filter (where attempt = 1), count(distinct attempted_by)
         from job where kind = 'discovery'",
    )
    .fetch_one(&pool)
    .await
    .expect("jobs");
    let requests: i64 =
        sqlx::query_scalar("select coalesce(sum(graph_requests), 0)::int8 from discovery_run")
            .fetch_one(&pool)
            .await
            .expect("requests");
    let users_in_inventory: i64 = sqlx::query_scalar("select count(*) from inventory_user")
        .fetch_one(&pool)
        .await
        .expect("users");
    println!(
        "scan: {tenants} tenants in {:.1} s = {:.1} tenants/s, {requests} Graph requests, {users_in_inventory} users in inventory",
        scan.as_secs_f64(),
        tenants as f64 / scan.as_secs_f64()
    );
    println!(
        "exactly once: {runs} runs for {organizations_scanned} organizations, {succeeded} succeeded; {jobs} discovery jobs, {completed} completed, {once} in one attempt, spread over {by} workers"
    );
    assert_eq!(
        (runs, succeeded, organizations_scanned),
        (tenants as i64, tenants as i64, tenants as i64),
        "one succeeded run per organization"
    );
    assert_eq!(
        (jobs, completed, once),
        (tenants as i64, tenants as i64, tenants as i64),
        "every job completed in exactly one attempt"
    );
}

/// `wrk` against each API process at once, one path each in turn, for `seconds`.
async fn load_slice(
    apis: &[Process; 2],
    paths: &[String],
    key: &str,
    connections: u64,
    seconds: u64,
) -> Vec<(String, Load)> {
    let mut results = Vec::new();
    for path in paths {
        let runs: Vec<_> = apis
            .iter()
            .map(|api| {
                let (url, key) = (format!("{}{path}", api.base), key.to_owned());
                tokio::task::spawn_blocking(move || wrk(&url, Some(&key), connections, seconds))
            })
            .collect();
        for run in runs {
            let load = run.await.expect("wrk");
            assert_eq!(load.not_ok, 0, "{path}: answers that were not 2xx");
            results.push((path.clone(), load));
        }
    }
    results
}

fn print_load(title: &str, loads: &[(String, Load)]) {
    let total: f64 = loads.iter().map(|(_, l)| l.requests_per_sec).sum::<f64>()
        / (loads.len() as f64 / 2.0).max(1.0);
    let worst_p99 = loads.iter().map(|(_, l)| l.p99_ms).fold(0.0, f64::max);
    let median_p50 = {
        let mut p50: Vec<f64> = loads.iter().map(|(_, l)| l.p50_ms).collect();
        p50.sort_by(f64::total_cmp);
        p50.get(p50.len() / 2).copied().unwrap_or(0.0)
    };
    println!(
        "{title}: {total:.0} req/s over both processes (mean of {} slices), p50 {median_p50:.2} ms, worst p99 {worst_p99:.2} ms",
        loads.len() / 2
    );
}
