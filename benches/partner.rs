//! Partner mode at scale: one partner connection whose partner tenant holds `N` GDAP
//! customers (all consented), synced and every customer verified by the job engine against
//! a real PostgreSQL, with latency injected on every Microsoft request. Prints wall time,
//! Microsoft requests, and the ratio to the request-chain lower bound.
//!
//! Run with `scripts/bench-partner` (it starts a throwaway PostgreSQL). Knobs:
//! `BENCH_CUSTOMERS` (1000), `BENCH_LATENCY_MS` (50).
//!
//! The lower bound, with `L` the injected latency: a sync is a token in the partner
//! tenant, then the relationships list, ⌈N/300⌉ pages one after another (the customers
//! list is read beside it), so `1 + ⌈N/300⌉` requests in a chain. Each verification is a
//! token in the customer tenant, then its six reads at once: two round trips. With `C`
//! verifications in flight (`VERIFY_CONCURRENCY`), `N` customers take at least
//! `⌈N/C⌉ × 2` round trips. The bound is `(1 + ⌈N/300⌉ + ⌈N/C⌉ × 2) × L`: nothing this
//! design does can be faster, so the ratio says what CPU, PostgreSQL and scheduling cost
//! on top. The same sync with no latency is measured first (this machine's floor: the
//! simulator, PostgreSQL and the workers share its two cores) and printed beside it.

mod common;
mod cpu;
mod seed;

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::PgPool;
use tenantry_domain::permissions::DEFAULT_REQUIRED;
use tenantry_store::partner::NewPartnerConnection;

/// Verifications in flight, as `tenantry-jobs::partner` runs them.
const VERIFY_CONCURRENCY: u64 = 16;

async fn set_latency(client: &reqwest::Client, base: &str, latency: u64) {
    client
        .put(format!("{base}/_sim/faults"))
        .json(&json!({"global": {"latency_ms": latency}}))
        .send()
        .await
        .expect("faults set");
}

/// Microsoft requests the simulator served since the last clear, and clears the log.
async fn take_requests(client: &reqwest::Client, base: &str) -> (usize, usize) {
    let log: Vec<serde_json::Value> = client
        .get(format!("{base}/_sim/requests"))
        .send()
        .await
        .expect("log")
        .json()
        .await
        .expect("log json");
    client
        .delete(format!("{base}/_sim/requests"))
        .send()
        .await
        .expect("clear");
    let tokens = log
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/oauth2/v2.0/token"))
        })
        .count();
    (log.len(), tokens)
}

struct Phase {
    wall: Duration,
    requests: usize,
    tokens: usize,
    complete: i64,
    jobs: usize,
    cpu_postgres: f64,
    cpu_simulator: f64,
    cpu_workers: f64,
}

async fn phase(
    context: &tenantry_jobs::JobContext,
    pool: &PgPool,
    client: &reqwest::Client,
    base: &str,
    simulator: u32,
    connection: uuid::Uuid,
    msp: tenantry_domain::MspId,
) -> Phase {
    sqlx::query("update partner_customer set consent_state = 'unknown', verification = null")
        .execute(pool)
        .await
        .expect("reset");
    take_requests(client, base).await;
    let mut conn = pool.acquire().await.expect("conn");
    tenantry_store::queue::enqueue(
        &mut conn,
        &tenantry_store::queue::NewJob::of(
            &tenantry_store::jobs::PartnerSyncJob {
                partner_connection_id: connection,
            },
            msp,
            None,
        )
        .expect("job"),
    )
    .await
    .expect("enqueue");
    drop(conn);
    let engine = tenantry_jobs::engine(
        context,
        tenantry_jobs::EngineConfig {
            concurrency: 4,
            poll_interval: Duration::from_millis(20),
            ..Default::default()
        },
    );
    let (pg0, sim0, own0) = (cpu::postgres(), cpu::of(simulator), cpu::own());
    let started = Instant::now();
    let jobs = engine
        .run_until_idle(Duration::from_secs(1))
        .await
        .expect("jobs run");
    let wall = started.elapsed();
    let (pg1, sim1, own1) = (cpu::postgres(), cpu::of(simulator), cpu::own());
    let (requests, tokens) = take_requests(client, base).await;
    let complete: i64 = sqlx::query_scalar(
        "select count(*) from partner_customer where consent_state = 'complete'",
    )
    .fetch_one(pool)
    .await
    .expect("count");
    Phase {
        wall,
        requests,
        tokens,
        complete,
        jobs,
        cpu_postgres: pg1 - pg0,
        cpu_simulator: sim1 - sim0,
        cpu_workers: own1 - own0,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tenantry_graph::install_default_crypto();
    let customers = common::env_number("BENCH_CUSTOMERS", 1000);
    let latency = common::env_number("BENCH_LATENCY_MS", 50);
    let scenario = tenantry_graph_sim::scenario::partner::partner_at_scale(customers as usize, 1);
    let partner = scenario.tenants[0].clone();
    let mut sim = seed::Simulator::start(&scenario);
    let base = sim.base.clone();
    let client = reqwest::Client::new();
    let pool = common::fresh_database("partner", 32).await;
    let store = seed::store(&pool);
    let (_, principal) = seed::msp(&store, "Bench MSP").await;
    let scope = store.scope(&principal);
    let record = scope
        .create_partner_connection(&NewPartnerConnection {
            name: "Bench partner".into(),
            tenant_id: partner.id,
            client_id: partner.app().client_id,
            credential: tenantry_domain::AppCredential::Secret(
                partner.secret_value().to_owned().into(),
            ),
            generated: None,
            required_permissions: DEFAULT_REQUIRED.iter().map(|p| (*p).to_owned()).collect(),
            capabilities: None,
            redirect_uris: Vec::new(),
            app_display_name: None,
            secret_expires_at: None,
        })
        .await
        .expect("connection");
    // The sync queued with the connection is run by the first phase's engine.
    sqlx::query("delete from job")
        .execute(&pool)
        .await
        .expect("clear the queue");
    let graph = tenantry_graph::GraphAccess::new(
        tenantry_graph::GraphHttp::new(
            tenantry_graph::GraphConfig::new(&base, &base).with_exchange_url(&base),
        )
        .expect("client"),
    );
    let context = tenantry_jobs::JobContext {
        store: store.clone(),
        graph,
        public_url: None,
    };
    let connection = record.partner_connection_id;
    let msp = principal.msp_id();

    set_latency(&client, &base, 0).await;
    let floor = phase(&context, &pool, &client, &base, sim.pid(), connection, msp).await;
    set_latency(&client, &base, latency).await;
    let measured = phase(&context, &pool, &client, &base, sim.pid(), connection, msp).await;
    sim.stop();

    let l = latency as f64 / 1000.0;
    let pages = customers.div_ceil(300).max(1);
    let waves = customers.div_ceil(VERIFY_CONCURRENCY);
    let chain = 1 + pages + 2 * waves;
    let bound = chain as f64 * l;
    let secs = measured.wall.as_secs_f64();
    println!(
        "partner sync of {customers} GDAP customers (all consented), {latency} ms per Microsoft request, {VERIFY_CONCURRENCY} verifications in flight"
    );
    println!(
        "  sync + verify: {secs:.2} s, {} Microsoft requests ({} token requests, {:.1} requests per customer), {} jobs, {} customers complete",
        measured.requests,
        measured.tokens,
        measured.requests as f64 / customers as f64,
        measured.jobs,
        measured.complete
    );
    println!(
        "  request-chain lower bound: (1 token + {pages} relationship pages + {waves} waves × 2 round trips) × {latency} ms = {bound:.2} s"
    );
    println!(
        "  ratio to the request-chain bound: {:.2}× (target ≤ 1.5×)",
        secs / bound
    );
    println!(
        "  this machine's floor (the same sync, 0 ms latency): {:.2} s; ratio to max(bound, floor): {:.2}×",
        floor.wall.as_secs_f64(),
        secs / bound.max(floor.wall.as_secs_f64())
    );
    println!(
        "  CPU seconds of the measured sync: PostgreSQL {:.2}, simulator (Microsoft's side) {:.2}, workers {:.2}",
        measured.cpu_postgres, measured.cpu_simulator, measured.cpu_workers
    );
    assert_eq!(
        measured.complete, customers as i64,
        "every consented customer was verified"
    );
}
