//! The job engine's own speed, with no Microsoft behind it: how soon an idle worker
//! starts a job after the enqueuing transaction commits, and how many no-op jobs two
//! worker processes get through, each exactly once.
//!
//! Run with `scripts/bench-jobs` (it starts a throwaway PostgreSQL). Each "worker
//! process" is an engine on its own thread, runtime and connection pool, as in the
//! engine's tests. Knobs: `BENCH_LATENCY_JOBS` (200), `BENCH_JOBS` (10000).
//!
//! Baselines measured in the same run:
//! - latency: the same engine with `listen` off, waking only at its poll (500 ms, the
//!   default), which is what every worker did before the enqueue notification;
//! - throughput: PostgreSQL's floor for the rows alone: every job's state change written
//!   as one plain `update … commit` per job by 32 concurrent connections, with no claim,
//!   no limits and no handler (a job costs at least that commit).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tenantry_jobs::engine::{Engine, EngineConfig, JobFuture, JobHandler, Outcome, typed};
use tenantry_store::jobs::JobArgs;
use tenantry_store::queue::{ClaimedJob, NewJob};
use tenantry_store::{ApiKeyPepper, Store};
use uuid::Uuid;

#[derive(serde::Serialize, serde::Deserialize)]
struct NoOp {}

impl JobArgs for NoOp {
    const KIND: &'static str = "bench_noop";
    fn unique_key(&self) -> Option<String> {
        None
    }
}

/// When each job started, and how often (exactly once is the requirement).
#[derive(Clone, Default)]
struct Starts(Arc<Mutex<HashMap<Uuid, (Instant, u32)>>>);

struct Recorder(Starts);

impl JobHandler for Recorder {
    type Args = NoOp;
    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
    fn run<'a>(&'a self, job: &'a ClaimedJob, _args: NoOp) -> JobFuture<'a> {
        let at = Instant::now();
        let mut starts = self.0.0.lock().unwrap_or_else(|p| p.into_inner());
        starts
            .entry(job.job_id.as_uuid())
            .and_modify(|(_, n)| *n += 1)
            .or_insert((at, 1));
        Box::pin(async { Outcome::Done })
    }
}

struct Worker {
    stop: tokio::sync::watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

fn start_worker(url: String, config: EngineConfig, starts: Starts) -> Worker {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .connect(&url)
                .await
                .expect("pool");
            let store = Store::new(pool, ApiKeyPepper::new(vec![1; 32]).expect("pepper"));
            let engine = Arc::new(Engine::new(
                store.queue(),
                config,
                vec![typed(Recorder(starts))],
            ));
            engine.run(shutdown).await;
        });
    });
    Worker { stop, thread }
}

impl Worker {
    fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.thread.join();
    }
}

fn new_job() -> NewJob {
    let mut job = NewJob::of(&NoOp {}, tenantry_domain::MspId::new(), None).expect("job");
    job.msp_id = None;
    job
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn started(starts: &Starts) -> usize {
    starts.0.lock().map(|s| s.len()).unwrap_or(0)
}

/// Enqueues `count` jobs one at a time, each in its own transaction, a few milliseconds
/// apart, and returns each one's commit-to-start delay, sorted.
async fn latencies(pool: &PgPool, url: &str, count: u64, listen: bool) -> Vec<Duration> {
    let starts = Starts::default();
    let config = EngineConfig {
        listen,
        ..EngineConfig::default()
    };
    let worker = start_worker(url.to_owned(), config, starts.clone());
    // Let the worker connect, listen and go idle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut committed = Vec::new();
    for _ in 0..count {
        let mut tx = pool.begin().await.expect("tx");
        let id = tenantry_store::queue::enqueue(&mut tx, &new_job())
            .await
            .expect("enqueue")
            .job_id()
            .as_uuid();
        tx.commit().await.expect("commit");
        committed.push((id, Instant::now()));
        tokio::time::sleep(Duration::from_millis(5 + fastrand::u64(0..15))).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while started(&starts) < committed.len() {
        assert!(Instant::now() < deadline, "jobs did not start within 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.stop();
    let starts = starts.0.lock().unwrap_or_else(|p| p.into_inner());
    let mut delays: Vec<Duration> = committed
        .iter()
        .map(|(id, at)| starts[id].0.saturating_duration_since(*at))
        .collect();
    delays.sort();
    delays
}

/// Runs `count` queued no-op jobs through two workers; returns the wall time.
async fn throughput(pool: &PgPool, url: &str, count: u64, starts: &Starts) -> Duration {
    let mut left = count;
    while left > 0 {
        let batch = left.min(1000);
        let mut tx = pool.begin().await.expect("tx");
        for _ in 0..batch {
            tenantry_store::queue::enqueue(&mut tx, &new_job())
                .await
                .expect("enqueue");
        }
        tx.commit().await.expect("commit");
        left -= batch;
    }
    let config = EngineConfig {
        concurrency: 32,
        global: 64,
        ..EngineConfig::default()
    };
    let began = Instant::now();
    let workers = [
        start_worker(url.to_owned(), config.clone(), starts.clone()),
        start_worker(url.to_owned(), config, starts.clone()),
    ];
    loop {
        let unfinished: i64 =
            sqlx::query_scalar("select count(*) from job where state <> 'completed'")
                .fetch_one(pool)
                .await
                .expect("count");
        if unfinished == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = began.elapsed();
    for worker in workers {
        worker.stop();
    }
    wall
}

/// PostgreSQL's floor for the jobs' rows: one single-row update and commit per job, 32
/// connections at once.
async fn commit_floor(pool: &PgPool) -> Duration {
    let ids: Vec<Uuid> = sqlx::query_scalar("select job_id from job")
        .fetch_all(pool)
        .await
        .expect("ids");
    let ids = Arc::new(Mutex::new(ids.into_iter()));
    let began = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (pool, ids) = (pool.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(id) = ids.lock().ok().and_then(|mut i| i.next()) else {
                    return;
                };
                sqlx::query(
                    "update job set state = 'completed', finalized_at = now() where job_id = $1",
                )
                .bind(id)
                .execute(&pool)
                .await
                .expect("update");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    began.elapsed()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let latency_jobs = common::env_number("BENCH_LATENCY_JOBS", 200);
        let jobs = common::env_number("BENCH_JOBS", 10_000);
        let pool = common::fresh_database("jobs", 40).await;
        let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
        let (server, _) = base.rsplit_once('/').expect("url");
        let database: String = sqlx::query_scalar("select current_database()")
            .fetch_one(&pool)
            .await
            .expect("database");
        let url = format!("{server}/{database}");

        let notified = latencies(&pool, &url, latency_jobs, true).await;
        let polled = latencies(&pool, &url, latency_jobs.min(40), false).await;
        let (p50, polled_p50) = (percentile(&notified, 0.5), percentile(&polled, 0.5));
        println!("commit-to-start, jobs enqueued one by one to an idle worker:");
        println!(
            "  LISTEN/NOTIFY ({latency_jobs} jobs)  p50 {:8.2} ms  p99 {:8.2} ms  (target p50 < 20 ms)",
            ms(p50),
            ms(percentile(&notified, 0.99))
        );
        println!(
            "  polling only ({} jobs)   p50 {:8.2} ms  p99 {:8.2} ms  (baseline: the 500 ms poll)",
            polled.len(),
            ms(polled_p50),
            ms(percentile(&polled, 0.99))
        );
        println!(
            "  p50 ratio notified / polled: {:.3}",
            p50.as_secs_f64() / polled_p50.as_secs_f64()
        );

        sqlx::query("delete from job")
            .execute(&pool)
            .await
            .expect("clear");
        let starts = Starts::default();
        let wall = throughput(&pool, &url, jobs, &starts).await;
        let (distinct, twice) = {
            let starts = starts.0.lock().unwrap_or_else(|p| p.into_inner());
            (starts.len(), starts.values().filter(|(_, n)| *n > 1).count())
        };
        sqlx::query("update job set state = 'available', finalized_at = null")
            .execute(&pool)
            .await
            .expect("reset");
        let floor = commit_floor(&pool).await;
        println!("{jobs} no-op jobs through two worker processes:");
        println!(
            "  {:.2} s = {:.0} jobs/s (target ≥ 1,000); {distinct} started, {twice} more than once",
            wall.as_secs_f64(),
            jobs as f64 / wall.as_secs_f64()
        );
        println!(
            "  PostgreSQL's floor for the rows (one update + commit per job, 32 connections): {:.2} s = {:.0} jobs/s; the engine takes {:.2}× the floor",
            floor.as_secs_f64(),
            jobs as f64 / floor.as_secs_f64(),
            wall.as_secs_f64() / floor.as_secs_f64()
        );
        assert_eq!(distinct as u64, jobs, "every job ran");
        assert_eq!(twice, 0, "no job ran twice");
    });
}
