//! Paging through every user of the demo's 50,000-user tenant (`litware`), the way
//! discovery does (`$top=999`, `$select`), over real HTTP on loopback.
//!
//! Prints, for each run:
//! - the simulator's own time (the sum of its per-request durations from the request log)
//!   against a stated lower bound: generating and serialising the same 50,000 users once,
//!   in-process, with no HTTP at all;
//! - with injected latency, the wall time against its lower bound: pages × latency (paging
//!   is sequential, each page needs the previous page's next link).
//!
//! Run: `cargo bench -p tenantry-graph-sim --bench paging`

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenantry_graph_sim::{GraphSim, Scenario};

const SELECT: &str = "id,displayName,userPrincipalName,mail,department,jobTitle,accountEnabled,officeLocation,mobilePhone,businessPhones,usageLocation,onPremisesSyncEnabled";

#[tokio::main]
async fn main() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let scenario = Scenario {
        tenants: vec![tenantry_graph_sim::scenario::demo().tenants.remove(5)],
    };
    let spec = scenario.tenants[0].clone();
    assert_eq!(spec.name, "litware");
    let sim = GraphSim::start(scenario).await.expect("simulator");
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{}/{}/oauth2/v2.0/token", sim.base_url(), spec.id))
        .form(&[
            ("client_id", spec.app().client_id.to_string().as_str()),
            ("client_secret", spec.secret_value()),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let token = token["access_token"].as_str().expect("token").to_owned();

    let lower_bound = serialise_all_once(spec.users);
    println!(
        "lower bound: generate + serialise {} users once, in-process: {:.1} ms",
        spec.users,
        ms(lower_bound)
    );

    for round in 1..=3 {
        sim.state().clear_requests();
        let (pages, users, wall) = page_all(&client, &sim, &token).await;
        let sim_ms: f64 = sim.requests().iter().map(|r| r.duration_ms).sum();
        println!(
            "run {round}: {users} users in {pages} pages; wall {:.1} ms; simulator {sim_ms:.1} ms = {:.2}× the lower bound",
            ms(wall),
            sim_ms / ms(lower_bound)
        );
    }

    for latency in [20u64, 50] {
        let faults: tenantry_graph_sim::Faults =
            serde_json::from_value(json!({"global": {"latency_ms": latency}})).expect("faults");
        sim.state().set_faults(faults);
        let (pages, users, wall) = page_all(&client, &sim, &token).await;
        let bound = Duration::from_millis(latency * pages as u64);
        println!(
            "latency {latency} ms: {users} users in {pages} pages; wall {:.0} ms = {:.2}× the lower bound of {pages} × {latency} ms",
            ms(wall),
            wall.as_secs_f64() / bound.as_secs_f64()
        );
    }
    sim.stop().await;
}

async fn page_all(
    client: &reqwest::Client,
    sim: &GraphSim,
    token: &str,
) -> (usize, usize, Duration) {
    let started = Instant::now();
    let mut url = format!("{}/v1.0/users?$top=999&$select={SELECT}", sim.base_url());
    let (mut pages, mut users) = (0, 0);
    loop {
        let page: Value = client
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .expect("page")
            .json()
            .await
            .expect("json");
        pages += 1;
        users += page["value"].as_array().map_or(0, Vec::len);
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    (pages, users, started.elapsed())
}

/// The same users, generated and serialised with the same projection, without HTTP.
fn serialise_all_once(count: u32) -> Duration {
    let users = tenantry_graph_sim::model::users::Users::new(7, "litware.onmicrosoft.com", count);
    let select: Vec<String> = SELECT.split(',').map(str::to_owned).collect();
    let started = Instant::now();
    let mut bytes = 0;
    for index in 0..count {
        if let Some(user) = users.view(index, Some(&select)) {
            bytes += serde_json::to_vec(&user).map_or(0, |b| b.len());
        }
    }
    assert!(bytes > 0);
    started.elapsed()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
