//! Validation wall time against the simulator with 50 ms injected latency per request,
//! printed as a multiple of that round trip. The lower bound is two sequential round trips
//! (the token, then everything else concurrently): 2×; the target is at most 2.3×.
//!
//! Run: `cargo bench -p tenantry-graph --bench validation`

use std::time::{Duration, Instant};

use tenantry_graph::{Credentials, GraphConfig, GraphHttp, Validator};
use tenantry_graph_sim::{Faults, GraphSim, Scenario, TenantSpec};

const LATENCY_MS: u64 = 50;
const RUNS: usize = 10;

#[tokio::main]
async fn main() {
    let contoso = TenantSpec::healthy("contoso", "Contoso Ltd", 250);
    let sim = GraphSim::start(Scenario {
        tenants: vec![contoso.clone()],
    })
    .await
    .expect("simulator");
    let faults: Faults =
        serde_json::from_value(serde_json::json!({"global": {"latency_ms": LATENCY_MS}}))
            .expect("faults");
    sim.state().set_faults(faults);
    let http = GraphHttp::new(
        GraphConfig::new(&sim.base_url(), &sim.base_url()).with_exchange_url(&sim.base_url()),
    )
    .expect("client");
    let credentials = Credentials::preflight(
        &contoso.id.to_string(),
        &contoso.app().client_id.to_string(),
        contoso.secret_value(),
    )
    .expect("ok");
    let round_trip = Duration::from_millis(LATENCY_MS);
    let mut times = Vec::new();
    for _ in 0..RUNS {
        // Every validation asks for a fresh token, as adding a tenant does.
        let validator = Validator::new(http.clone());
        let started = Instant::now();
        validator.validate(&credentials, None).await.expect("valid");
        times.push(started.elapsed());
    }
    times.sort();
    let ratio = |d: Duration| d.as_secs_f64() / round_trip.as_secs_f64();
    println!(
        "validation with {LATENCY_MS} ms per request, {RUNS} runs: median {:.1} ms = {:.2}× the round trip, best {:.2}×, worst {:.2}× (lower bound 2×, target ≤ 2.3×)",
        times[RUNS / 2].as_secs_f64() * 1000.0,
        ratio(times[RUNS / 2]),
        ratio(times[0]),
        ratio(times[RUNS - 1]),
    );
    sim.stop().await;
}
