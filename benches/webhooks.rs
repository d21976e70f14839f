//! The webhook receiver under load: 10,000 signed events (plus replays of some of them)
//! posted to `POST /hooks/{endpoint}` on loopback by many concurrent senders, against the
//! real API and a real PostgreSQL. Prints the rate, latency percentiles, and the rows
//! stored: exactly one delivery and one queued playbook per event id, none lost, none
//! duplicated.
//!
//! Run with `scripts/bench-webhooks` (it starts a throwaway PostgreSQL). Knobs:
//! `BENCH_EVENTS` (10000), `BENCH_SENDERS` (64 concurrent connections),
//! `BENCH_REPLAYS` (500 events sent a second time), `BENCH_CONNECTIONS` (32: the API's
//! pool, also the DB floor's; `serve`'s configured default is 10).
//!
//! The lower bound it is compared with: each delivery is one INSERT of the event and one
//! of its job in a single transaction (one commit, one WAL flush); the bench measures a
//! plain insert-and-commit of the same shape on the same database with the same
//! concurrency, and prints the receiver's time per event against it. The HTTP floor: the
//! same senders building and signing the same events, but asking `GET /healthz`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sqlx::PgPool;
use tenantry_domain::DisplayName;
use tenantry_domain::webhooks::{Rule, RuleApproval};
use tenantry_store::{ApiKeyPepper, Store};

fn sign(secret: &str, body: &[u8]) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{now}.").as_bytes());
    mac.update(body);
    format!("t={now},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Posts `ids` with `senders` concurrent connections; returns each request's latency
/// and status. With `floor`, each event is built and signed the same way but the request
/// is a `GET` of `url` (the HTTP floor: `/healthz`, no work of its own).
async fn post_all(
    url: &str,
    secret: &str,
    ids: Vec<usize>,
    senders: usize,
    floor: bool,
) -> Vec<(Duration, u16)> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(senders)
        .build()
        .expect("client");
    let queue = Arc::new(tokio::sync::Mutex::new(ids.into_iter()));
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let (client, queue, url, secret) = (
            client.clone(),
            queue.clone(),
            url.to_owned(),
            secret.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            loop {
                let Some(n) = queue.lock().await.next() else {
                    break;
                };
                let body = serde_json::to_vec(&serde_json::json!({
                    "id": format!("load-{n}"), "type": "user.compromised",
                    "target": format!("user{n}@contoso.example"), "data": {"n": n}
                }))
                .expect("json");
                let signature = sign(&secret, &body);
                let started = Instant::now();
                let request = if floor {
                    client.get(&url)
                } else {
                    client.post(&url)
                };
                let status = request
                    .header("content-type", "application/json")
                    .header("Tenantry-Signature", signature)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                results.push((started.elapsed(), status));
            }
            results
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("sender"));
    }
    all
}

/// The floor: the same two inserts in one transaction, straight from this process.
async fn insert_floor(pool: &PgPool, events: usize, senders: usize) -> Duration {
    sqlx::raw_sql(
        "create table floor_event (id uuid primary key, endpoint uuid not null, event_id text not null,
             payload jsonb not null, unique (endpoint, event_id));
         create table floor_job (id uuid primary key, args jsonb not null, unique_key text unique)",
    )
    .execute(pool)
    .await
    .expect("floor tables");
    let endpoint = uuid::Uuid::now_v7();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let (pool, next) = (pool.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= events {
                    break;
                }
                let mut tx = pool.begin().await.expect("begin");
                sqlx::query(
                    "insert into floor_event values ($1, $2, $3, $4) on conflict do nothing",
                )
                .bind(uuid::Uuid::now_v7())
                .bind(endpoint)
                .bind(format!("load-{n}"))
                .bind(serde_json::json!({"n": n}))
                .execute(&mut *tx)
                .await
                .expect("insert");
                sqlx::query("insert into floor_job values ($1, $2, $3)")
                    .bind(uuid::Uuid::now_v7())
                    .bind(serde_json::json!({"n": n}))
                    .bind(format!("floor:{n}"))
                    .execute(&mut *tx)
                    .await
                    .expect("insert");
                tx.commit().await.expect("commit");
            }
        }));
    }
    for task in tasks {
        task.await.expect("floor task");
    }
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tenantry_graph::install_default_crypto();
    let events = common::env_number("BENCH_EVENTS", 10_000) as usize;
    let senders = common::env_number("BENCH_SENDERS", 64) as usize;
    let replays = (common::env_number("BENCH_REPLAYS", 500) as usize).min(events);
    let connections = common::env_number("BENCH_CONNECTIONS", 32) as u32;
    let pool = common::fresh_database("webhooks", connections).await;

    let keyring = tenantry_store::sealing::Keyring::new(&[0x42; 32], &[]).expect("keyring");
    let pepper = ApiKeyPepper::new(vec![0x24; 32]).expect("pepper");
    let store = Store::new(pool.clone(), pepper).with_keyring(keyring);
    let (msp, _, key) = store
        .operator()
        .create_msp(
            DisplayName::parse("Load MSP").expect("name"),
            DisplayName::parse("Load owner").expect("name"),
        )
        .await
        .expect("msp");
    let organization = uuid::Uuid::now_v7();
    sqlx::query("insert into organization (organization_id, msp_id, name) values ($1, $2, 'Load')")
        .bind(organization)
        .bind(msp.id.as_uuid())
        .execute(&pool)
        .await
        .expect("organization");
    let principal = store.authenticate(key.expose()).await.expect("principal");
    let rules = [Rule {
        event: "user.compromised".into(),
        actions: vec![tenantry_domain::actions::ActionKind::RevokeSessions],
        approval: RuleApproval::Policy,
    }];
    let (endpoint, secret) = store
        .scope(&principal)
        .create_webhook_endpoint("load", Some(organization), &rules)
        .await
        .expect("endpoint");

    let graph = tenantry_graph::GraphConfig::new("http://127.0.0.1:9", "http://127.0.0.1:9");
    let graph =
        tenantry_graph::GraphAccess::new(tenantry_graph::GraphHttp::new(graph).expect("client"));
    let config = tenantry_api::ApiConfig {
        addr: "127.0.0.1:0".into(),
        body_limit_bytes: 1024 * 1024,
        request_timeout_secs: 30,
        cors_allowed_origins: Vec::new(),
        auth_failures_per_minute: 1_000_000,
        trusted_proxies: Vec::new(),
        public_url: None,
    };
    let app = tenantry_api::build(
        store.clone(),
        graph,
        &config,
        Arc::new(tenantry_api::Metrics::new()),
    )
    .expect("app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let url = format!("{base}/hooks/{}", endpoint.endpoint_id);
    let healthz = format!("{base}/healthz");
    tokio::spawn(tenantry_api::serve(
        listener,
        app,
        std::future::pending::<()>(),
    ));

    use secrecy::ExposeSecret;
    let secret = secret.expose_secret().to_owned();
    // Warm the connections and the server.
    let _ = post_all(
        &url,
        &secret,
        (events..events + 50).collect(),
        senders,
        false,
    )
    .await;
    sqlx::raw_sql("delete from job; delete from webhook_event")
        .execute(&pool)
        .await
        .expect("reset");

    let started = Instant::now();
    let mut results = post_all(&url, &secret, (0..events).collect(), senders, false).await;
    let elapsed = started.elapsed();
    let replayed = post_all(&url, &secret, (0..replays).collect(), senders, false).await;

    let accepted = results.iter().filter(|(_, s)| *s == 202).count();
    let other: Vec<u16> = results
        .iter()
        .map(|(_, s)| *s)
        .filter(|s| *s != 202)
        .collect();
    let replay_ok = replayed.iter().filter(|(_, s)| *s == 200).count();
    let (stored, distinct, jobs): (i64, i64, i64) = sqlx::query_as(
        "select count(*), count(distinct event_id), (select count(*) from job where kind = 'webhook_event')
         from webhook_event",
    )
    .fetch_one(&pool)
    .await
    .expect("counts");
    results.sort_by_key(|(d, _)| *d);
    let latencies: Vec<Duration> = results.iter().map(|(d, _)| *d).collect();
    let floor = insert_floor(&pool, events, senders.min(32)).await;
    let http_started = Instant::now();
    let http = post_all(&healthz, &secret, (0..events).collect(), senders, true).await;
    let http_floor = http_started.elapsed();
    let mut http: Vec<Duration> = http.into_iter().map(|(d, _)| d).collect();
    http.sort();

    println!(
        "webhook receiver: {events} signed events, {senders} concurrent senders, loopback, {connections} database connections"
    );
    println!(
        "  wall {:.2} s, {:.0} events/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        percentile(&latencies, 1.0).as_secs_f64() * 1000.0,
    );
    println!(
        "  answers: {accepted} × 202, {} other {:?}; {replays} replays: {replay_ok} × 200 (deduplicated)",
        other.len(),
        other.iter().take(5).collect::<Vec<_>>()
    );
    println!(
        "  stored: {stored} deliveries, {distinct} distinct event ids, {jobs} playbook jobs (expected {events} each)"
    );
    println!(
        "  floor (insert event + job, one commit, same concurrency): {:.2} s → receiver at {:.2}× the floor",
        floor.as_secs_f64(),
        elapsed.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "  HTTP floor (same senders, events built and signed, GET /healthz): {:.2} s = {:.0} req/s, p99 {:.1} ms → receiver at {:.2}× it",
        http_floor.as_secs_f64(),
        events as f64 / http_floor.as_secs_f64(),
        percentile(&http, 0.99).as_secs_f64() * 1000.0,
        elapsed.as_secs_f64() / http_floor.as_secs_f64()
    );
    let lost_or_duplicated =
        stored != events as i64 || distinct != events as i64 || jobs != events as i64;
    if lost_or_duplicated || accepted != events || replay_ok != replays {
        eprintln!("FAILED: events were lost, duplicated or refused");
        std::process::exit(1);
    }
}
