//! Discovery of the Exchange Online sections at scale: many simulated tenants, each with
//! a mailbox per user plus shared mailboxes and distribution groups, whose `mailboxes`
//! and `distribution_groups` sections are read by the job engine against a real
//! PostgreSQL, with latency injected on every Microsoft request. It exists because those
//! two sections talk to another API than Graph (the Exchange admin API's `InvokeCommand`,
//! paged by re-POSTing), with their own token and one request per shared mailbox
//! permission and per group's members, one after another: the discovery bench does not
//! see what that costs.
//!
//! Run with `scripts/bench-exchange` (it starts a throwaway PostgreSQL). Knobs:
//! `BENCH_TENANTS` (50), `BENCH_MAILBOXES` (2000 per tenant), `BENCH_SHARED` (20 of
//! them shared), `BENCH_GROUPS` (10 distribution groups), `BENCH_MEMBERS` (50 per group),
//! `BENCH_LATENCY_MS` (50), `BENCH_CONCURRENCY` (the engine's default, 16 runs at once).
//!
//! What is timed: every tenant is first scanned in full with no latency (the inventory,
//! and the delta links, the measured runs start from); then both Exchange sections are
//! asked for (`request_sections`, as a change notification naming them does) and a delta
//! run of every tenant reads them, with the process's token cache emptied first (each
//! run takes its tokens, as a worker's first run of the day does). A delta run also reads
//! users and groups by their delta links (one page each, nothing changed); every other
//! section is not due.
//!
//! The request-chain lower bound, with `L` the injected latency, `M` mailboxes, `S`
//! shared ones, `G` groups of `m` members, `T` tenants and `J` runs at once: a run takes
//! its Graph token before any section (1), then both Exchange sections wait for the one
//! Exchange token (1); `mailboxes` is then ⌈M/1000⌉ pages of `Get-Mailbox` one after
//! another and the two permission cmdlets of each shared mailbox together, one mailbox
//! after another (S); `distribution_groups`, beside it, ⌈G/1000⌉ pages of `Get-DistributionGroup`
//! and one `Get-DistributionGroupMember` per group (⌈m/1000⌉ pages each), one group
//! after another. So one tenant's chain is
//! `c = 2 + max(⌈M/1000⌉ + S, ⌈G/1000⌉ + G·⌈m/1000⌉)` requests (the Graph deltas beside
//! it are 2), and `T` runs on `J` slots take at least `⌈T/J⌉ · c · L`. A run has at most
//! three Exchange requests in flight (two for mailboxes, one for groups; they are not
//! under the Graph reader's 4-in-flight limit), so all `R` of them take at least
//! `R · L / (3J)`; the bound
//! is the larger of the two (the chain, with these figures). The same runs with no latency (this machine's floor: the simulator,
//! PostgreSQL and the workers share its cores) are measured first and printed beside it,
//! and last PostgreSQL's floor for writing the same Exchange rows once more
//! (`floor::write_floor`, as the discovery bench measures its own).

mod common;
mod cpu;
mod floor;
mod runs;
mod seed;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;
use tenantry_domain::discovery::Section;
use tenantry_graph_sim::{Scenario, TenantSpec};
use tenantry_store::{DiscoveryMode, Store};

/// Rows per page of the Exchange admin API (`Prefer: odata.maxpagesize`, at most 1000).
const EXCHANGE_PAGE: u64 = tenantry_graph::exchange::PAGE_SIZE as u64;

async fn set_latency(client: &reqwest::Client, base: &str, latency: u64) {
    client
        .put(format!("{base}/_sim/faults"))
        .json(&json!({"global": {"latency_ms": latency}}))
        .send()
        .await
        .expect("faults set");
}

/// The simulator's request log since the last clear, and clears it.
async fn take_requests(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let log: Vec<Value> = client
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
    log
}

/// What Microsoft served during one phase.
#[derive(Default)]
struct Served {
    tokens: usize,
    exchange: usize,
    graph: usize,
    throttled: usize,
    /// Per tenant: from its first request's start to its last request's end, seconds.
    spans: Vec<f64>,
    /// Mean time the simulator took per Exchange request (the injected latency and its
    /// own work), seconds.
    exchange_served: f64,
    /// Mean time between one permission cmdlet's answer and the next one's start within
    /// a tenant (they go one after another): the client's side of each link of the chain.
    permission_gap: f64,
}

impl Served {
    fn of(log: &[Value]) -> Self {
        let mut served = Served::default();
        let mut spans: HashMap<String, (f64, f64)> = HashMap::new();
        let mut permissions: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
        let mut exchange_seconds = 0.0;
        for record in log {
            let path = record["path"].as_str().unwrap_or_default();
            if path.starts_with("/_sim") {
                continue;
            }
            if path.ends_with("/oauth2/v2.0/token") {
                served.tokens += 1;
            } else if path.starts_with("/adminapi/") {
                served.exchange += 1;
            } else {
                served.graph += 1;
            }
            served.throttled += usize::from(record["status"] == 429);
            let end = record["at"]
                .as_str()
                .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                .map_or(0.0, |at| at.timestamp_micros() as f64 / 1e6);
            let start = end - record["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0;
            if path.starts_with("/adminapi/") {
                exchange_seconds += end - start;
            }
            if let Some(tenant) = record["tenant"].as_str() {
                if matches!(
                    record["cmdlet"].as_str(),
                    Some("Get-MailboxPermission" | "Get-RecipientPermission")
                ) {
                    permissions
                        .entry(tenant.to_ascii_lowercase())
                        .or_default()
                        .push((start, end));
                }
                let span = spans
                    .entry(tenant.to_ascii_lowercase())
                    .or_insert((start, end));
                span.0 = span.0.min(start);
                span.1 = span.1.max(end);
            }
        }
        served.spans = spans.values().map(|(start, end)| end - start).collect();
        served.spans.sort_by(f64::total_cmp);
        served.exchange_served = exchange_seconds / served.exchange.max(1) as f64;
        let (mut gaps, mut count) = (0.0, 0);
        for requests in permissions.values_mut() {
            requests.sort_by(|a, b| a.0.total_cmp(&b.0));
            for pair in requests.windows(2) {
                gaps += pair[1].0 - pair[0].1;
                count += 1;
            }
        }
        served.permission_gap = gaps / f64::from(count.max(1));
        served
    }

    fn mean_span(&self) -> f64 {
        self.spans.iter().sum::<f64>() / self.spans.len().max(1) as f64
    }

    fn max_span(&self) -> f64 {
        self.spans.last().copied().unwrap_or(0.0)
    }
}

struct Phase {
    wall: Duration,
    served: Served,
    failed: i64,
    /// Runs whose two Exchange sections were not staged with the expected counts.
    short: i64,
    cpu_postgres: f64,
    cpu_simulator: f64,
    cpu_workers: f64,
}

struct Bench {
    store: Store,
    principal: tenantry_store::Principal,
    pool: PgPool,
    graph: tenantry_graph::GraphAccess,
    organizations: Vec<tenantry_domain::OrganizationId>,
    concurrency: usize,
    client: reqwest::Client,
    base: String,
    simulator: u32,
    mailboxes: i64,
    groups: i64,
}

impl Bench {
    /// Queues a run of `mode` for every organization (asking a delta run for both Exchange
    /// sections), runs the engine until all are finished, and sums them up.
    async fn phase(&self, mode: DiscoveryMode) -> Phase {
        let scope = self.store.scope(&self.principal);
        sqlx::query("delete from discovery_run where state not in ('queued', 'running')")
            .execute(&self.pool)
            .await
            .expect("clear runs");
        if mode == DiscoveryMode::Delta {
            let discovery = self.store.discovery();
            for organization in &self.organizations {
                discovery
                    .request_sections(
                        *organization,
                        &[Section::Mailboxes, Section::DistributionGroups],
                    )
                    .await
                    .expect("sections asked for");
            }
        }
        self.graph.forget_tokens();
        take_requests(&self.client, &self.base).await;
        let engine = tenantry_jobs::EngineConfig {
            concurrency: self.concurrency,
            global: self.concurrency as i64,
            per_organization: 1,
            poll_interval: Duration::from_millis(20),
            ..Default::default()
        };
        let context = tenantry_jobs::JobContext {
            store: self.store.clone(),
            graph: self.graph.clone(),
            public_url: None,
        };
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let (pg0, sim0, own0) = (cpu::postgres(), cpu::of(self.simulator), cpu::own());
        let started = Instant::now();
        let workers = tokio::spawn(tenantry_jobs::run(
            context,
            engine,
            tenantry_jobs::LeaderConfig::default(),
            shutdown,
        ));
        for organization in &self.organizations {
            scope
                .queue_discovery(
                    *organization,
                    tenantry_store::DiscoveryTrigger::Manual,
                    mode,
                )
                .await
                .expect("queued");
        }
        let wall = runs::wait_for_runs(&self.pool, started).await;
        let (pg1, sim1, own1) = (cpu::postgres(), cpu::of(self.simulator), cpu::own());
        let _ = stop.send(true);
        let _ = workers.await;
        let served = Served::of(&take_requests(&self.client, &self.base).await);
        let (failed, short): (i64, i64) = sqlx::query_as(
            "select count(*) filter (where state <> 'succeeded'),
                    count(*) filter (where coalesce((sections->'mailboxes'->>'count')::int8, -1) <> $1
                                        or coalesce((sections->'distribution_groups'->>'count')::int8, -1) <> $2)
             from discovery_run",
        )
        .bind(self.mailboxes)
        .bind(self.groups)
        .fetch_one(&self.pool)
        .await
        .expect("sums");
        if failed + short > 0 {
            let runs: Vec<(String, Option<String>, Value)> = sqlx::query_as(
                "select state, error, sections from discovery_run
                 where state <> 'succeeded' or sections->'mailboxes'->>'count' is distinct from $1::text
                 limit 2",
            )
            .bind(self.mailboxes.to_string())
            .fetch_all(&self.pool)
            .await
            .expect("runs");
            eprintln!("runs not as expected: {runs:?}");
        }
        Phase {
            wall,
            served,
            failed,
            short,
            cpu_postgres: pg1 - pg0,
            cpu_simulator: sim1 - sim0,
            cpu_workers: own1 - own0,
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tenantry_graph::install_default_crypto();
    let tenants = common::env_number("BENCH_TENANTS", 50) as usize;
    let mailboxes = common::env_number("BENCH_MAILBOXES", 2000);
    let shared = common::env_number("BENCH_SHARED", 20).min(mailboxes.saturating_sub(1));
    let groups = common::env_number("BENCH_GROUPS", 10);
    let members = common::env_number("BENCH_MEMBERS", 50);
    let latency = common::env_number("BENCH_LATENCY_MS", 50);
    let concurrency = common::env_number(
        "BENCH_CONCURRENCY",
        tenantry_jobs::EngineConfig::default().concurrency as u64,
    ) as usize;

    // A mailbox per user, plus the shared ones: `mailboxes` in all.
    let users = u32::try_from(mailboxes - shared).expect("users");
    let scenario = Scenario {
        tenants: (0..tenants)
            .map(|i| {
                TenantSpec::healthy(&format!("exo{i}"), &format!("Exchange {i}"), users)
                    .with_exchange_admin()
                    .with_exchange_at_scale(shared as u32, groups as u32, members as u32)
            })
            .collect(),
    };
    let mut sim = seed::Simulator::start(&scenario);
    let base = sim.base.clone();
    let client = reqwest::Client::new();
    let pool = common::fresh_database("exchange", 64).await;
    let store = seed::store(&pool);
    let (_, principal) = seed::msp(&store, "Bench MSP").await;
    let scope = store.scope(&principal);
    let organizations = seed::connect_all(&scope, &scenario, &json!({})).await;
    let graph = tenantry_graph::GraphAccess::new(
        tenantry_graph::GraphHttp::new(
            tenantry_graph::GraphConfig::new(&base, &base).with_exchange_url(&base),
        )
        .expect("client"),
    );
    let bench = Bench {
        store: store.clone(),
        principal,
        pool: pool.clone(),
        graph,
        organizations,
        concurrency,
        client: client.clone(),
        base: base.clone(),
        simulator: sim.pid(),
        mailboxes: mailboxes as i64,
        groups: groups as i64,
    };

    // 0. Every tenant's full scan, with no latency: the inventory and delta links the
    //    measured runs start from (and the simulator builds each Exchange organisation).
    set_latency(&client, &base, 0).await;
    let setup = bench.phase(DiscoveryMode::Full).await;
    // 1. This machine's floor: the Exchange sections' runs with no latency.
    let floor = bench.phase(DiscoveryMode::Delta).await;
    // 2. The measured runs, with Microsoft's latency.
    set_latency(&client, &base, latency).await;
    let measured = bench.phase(DiscoveryMode::Delta).await;
    set_latency(&client, &base, 0).await;
    sim.stop();

    let exchange_rows: i64 = sqlx::query_scalar(
        "select count(*) from inventory_object i join organization o using (organization_id)
         where i.generation = o.inventory_generation and i.section in ('mailboxes', 'distribution_groups')",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    let (copy_floor, write_floor) = floor::write_floor(
        &pool,
        &[floor::Rows::matching(
            "inventory_object",
            "section in ('mailboxes', 'distribution_groups')",
        )],
    )
    .await;

    let l = latency as f64 / 1000.0;
    let mailbox_chain = mailboxes.div_ceil(EXCHANGE_PAGE).max(1) + shared;
    let group_chain =
        groups.div_ceil(EXCHANGE_PAGE).max(1) + groups * members.div_ceil(EXCHANGE_PAGE).max(1);
    let chain = 2 + mailbox_chain.max(group_chain);
    let waves = tenants.div_ceil(concurrency.max(1)) as u64;
    let chain_bound = (waves * chain) as f64 * l;
    let throughput_bound = measured.served.exchange as f64 * l / (3 * concurrency.max(1)) as f64;
    let bound = chain_bound.max(throughput_bound);
    // Two permission cmdlets per shared mailbox, sent together (one link of the chain).
    let exchange_per_tenant = mailbox_chain + shared + group_chain;
    let secs = measured.wall.as_secs_f64();

    println!(
        "Exchange sections of {tenants} tenants × {mailboxes} mailboxes ({shared} shared, {groups} distribution groups of {members}), {latency} ms per Microsoft request, {concurrency} runs at once"
    );
    println!(
        "  setup (full scan of every tenant, 0 ms): {:.2} s, {} not succeeded",
        setup.wall.as_secs_f64(),
        setup.failed
    );
    println!(
        "  measured: {secs:.2} s; Microsoft served {} Exchange requests ({:.1} per tenant, {exchange_per_tenant} expected), {} tokens, {} Graph requests, {} throttled; {} runs not succeeded, {} without every mailbox and group",
        measured.served.exchange,
        measured.served.exchange as f64 / tenants as f64,
        measured.served.tokens,
        measured.served.graph,
        measured.served.throttled,
        measured.failed,
        measured.short
    );
    println!(
        "  request-chain lower bound {bound:.2} s: max(⌈T/J⌉ × c × L, R × L / 3J) with c = 2 tokens + max(⌈M/1000⌉ + S, ⌈G/1000⌉ + G·⌈m/1000⌉) = 2 + max({mailbox_chain}, {group_chain}) = {chain}: ⌈{tenants}/{concurrency}⌉ = {waves} waves × {chain} × {latency} ms = {chain_bound:.2} s; {} Exchange requests × {latency} ms / (3 × {concurrency}) = {throughput_bound:.2} s",
        measured.served.exchange
    );
    println!(
        "  ratio to the request-chain bound: {:.2}× (target ≤ 1.5×)",
        secs / bound
    );
    println!(
        "  per tenant, first request to last answer: mean {:.2} s, max {:.2} s, against c × L = {:.2} s ({:.2}× on average)",
        measured.served.mean_span(),
        measured.served.max_span(),
        chain as f64 * l,
        measured.served.mean_span() / (chain as f64 * l)
    );
    println!(
        "  each Exchange request: {:.1} ms in the simulator (of which {latency} ms injected; {:.1} ms at 0 ms), then {:.1} ms before the next one of the same tenant starts (the worker's side, negative where a tenant's requests overlap; {:.1} ms at 0 ms)",
        measured.served.exchange_served * 1000.0,
        floor.served.exchange_served * 1000.0,
        measured.served.permission_gap * 1000.0,
        floor.served.permission_gap * 1000.0
    );
    println!(
        "  this machine's floor (the same runs, 0 ms latency): {:.2} s; ratio to max(bound, floor): {:.2}×",
        floor.wall.as_secs_f64(),
        secs / bound.max(floor.wall.as_secs_f64())
    );
    println!(
        "  CPU seconds of the measured runs: PostgreSQL {:.2}, simulator (Microsoft's side) {:.2}, workers {:.2}",
        measured.cpu_postgres, measured.cpu_simulator, measured.cpu_workers
    );
    println!(
        "  PostgreSQL's floor for writing these {exchange_rows} Exchange rows once more ({} rows, same indexes, JSON parsed from text): {:.2} s = {:.2}× the request-chain bound; as stored (JSON already parsed): {:.2} s",
        write_floor.rows,
        write_floor.wall.as_secs_f64(),
        write_floor.wall.as_secs_f64() / bound,
        copy_floor.wall.as_secs_f64()
    );
    assert_eq!(
        (measured.failed, measured.short),
        (0, 0),
        "every run read every mailbox and group"
    );
}
