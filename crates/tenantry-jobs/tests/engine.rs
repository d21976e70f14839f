//! The job engine against a real PostgreSQL: two engines, each on its own runtime and
//! connection pool (as two processes would be), share one database. Every job runs
//! exactly once; a snooze spends no attempt; unique keys hold; shutdown drains or gives
//! jobs back; a job whose worker stopped heartbeating is rescued and finished by the
//! other.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tenantry_jobs::engine::{Engine, EngineConfig, Handler, JobFuture, JobHandler, Outcome, typed};
use tenantry_store::jobs::JobArgs;
use tenantry_store::queue::{ClaimedJob, Enqueued, NewJob};
use tenantry_store::{ApiKeyPepper, Store};
use tokio::sync::watch;

/// Records each execution in `probe_run`; `args.sleep_ms` makes it slow, `args.snooze`
/// makes its first attempt snooze.
struct Probe {
    pool: PgPool,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
#[serde(default)]
struct ProbeArgs {
    snooze: bool,
    fail_once: bool,
    sleep_ms: Option<u64>,
}

impl JobArgs for ProbeArgs {
    const KIND: &'static str = "probe";
    fn unique_key(&self) -> Option<String> {
        None
    }
}

impl JobHandler for Probe {
    type Args = ProbeArgs;

    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob, args: ProbeArgs) -> JobFuture<'a> {
        Box::pin(async move {
            if args.snooze && job.snoozes == 0 {
                return Outcome::Snooze(Duration::from_millis(100), "throttled".into());
            }
            if args.fail_once && job.attempt == 1 {
                return Outcome::Retry("first attempt fails".into());
            }
            if let Some(ms) = args.sleep_ms {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let recorded = sqlx::query(
                "insert into probe_run (job_id, runs) values ($1, 1)
                 on conflict (job_id) do update set runs = probe_run.runs + 1",
            )
            .bind(job.job_id.as_uuid())
            .execute(&self.pool)
            .await;
            match recorded {
                Ok(_) => Outcome::Done,
                Err(e) => Outcome::Retry(e.to_string()),
            }
        })
    }
}

fn config() -> EngineConfig {
    EngineConfig {
        concurrency: 8,
        per_organization: 2,
        global: 64,
        poll_interval: Duration::from_millis(20),
        heartbeat_interval: Duration::from_millis(200),
        lease: Duration::from_secs(2),
        drain: Duration::from_secs(5),
        max_snoozes: 5,
        listen: true,
    }
}

async fn prepare(pool: &PgPool) {
    sqlx::query("create table probe_run (job_id uuid primary key, runs int not null)")
        .execute(pool)
        .await
        .expect("probe table");
}

fn probe_job(args: serde_json::Value, unique: Option<&str>) -> NewJob {
    NewJob {
        kind: "probe".into(),
        args,
        msp_id: None,
        organization_id: None,
        unique_key: unique.map(str::to_owned),
        max_attempts: 3,
        priority: 2,
        run_at: None,
    }
}

/// An engine on its own thread, runtime and pool: a stand-in for a worker process.
struct Worker {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

fn start_worker(url: String, engine: EngineConfig) -> Worker {
    let (stop, shutdown) = watch::channel(false);
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let pool = PgPoolOptions::new()
                .max_connections(12)
                .connect(&url)
                .await
                .expect("pool");
            let store = Store::new(
                pool.clone(),
                ApiKeyPepper::new(vec![1; 32]).expect("pepper"),
            );
            let handlers: Vec<Arc<dyn Handler>> = vec![typed(Probe { pool })];
            let engine = Arc::new(Engine::new(store.queue(), engine, handlers));
            engine.run(shutdown).await;
        });
    });
    Worker { stop, thread }
}

impl Worker {
    fn stop(self) {
        let _ = self.stop.send(true);
        self.thread.join().expect("worker thread");
    }
}

fn url_of(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (run through scripts/test)");
    let database = pool
        .connect_options()
        .get_database()
        .expect("database")
        .to_owned();
    let (server, _) = base.rsplit_once('/').expect("url");
    format!("{server}/{database}")
}

fn queue(pool: &PgPool) -> tenantry_store::Queue {
    Store::new(
        pool.clone(),
        ApiKeyPepper::new(vec![1; 32]).expect("pepper"),
    )
    .queue()
}

async fn wait_until(pool: &PgPool, sql: &str, expected: i64, limit: Duration) {
    let started = std::time::Instant::now();
    loop {
        let value: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(pool)
            .await
            .expect("query");
        if value == expected {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{sql} = {value}, wanted {expected} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn two_workers_run_each_of_a_thousand_jobs_exactly_once(pool: PgPool) {
    prepare(&pool).await;
    let queue = queue(&pool);
    for i in 0..1000 {
        queue
            .enqueue(&probe_job(serde_json::json!({"n": i}), None))
            .await
            .expect("enqueue");
    }
    let first = start_worker(url_of(&pool), config());
    let second = start_worker(url_of(&pool), config());
    wait_until(
        &pool,
        "select count(*) from job where state = 'completed'",
        1000,
        Duration::from_secs(120),
    )
    .await;
    first.stop();
    second.stop();
    let runs: Vec<i32> = sqlx::query_scalar("select runs from probe_run")
        .fetch_all(&pool)
        .await
        .expect("runs");
    assert_eq!(runs.len(), 1000);
    assert!(runs.iter().all(|r| *r == 1), "a job ran twice");
    let workers: i64 = sqlx::query_scalar("select count(distinct attempted_by) from job")
        .fetch_one(&pool)
        .await
        .expect("workers");
    assert_eq!(workers, 2, "both workers took jobs");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_snooze_spends_no_attempt_and_a_failure_does(pool: PgPool) {
    prepare(&pool).await;
    let queue = queue(&pool);
    let snoozed = queue
        .enqueue(&probe_job(serde_json::json!({"snooze": true}), None))
        .await
        .expect("enqueue")
        .job_id();
    let failed_once = queue
        .enqueue(&probe_job(serde_json::json!({"fail_once": true}), None))
        .await
        .expect("enqueue")
        .job_id();
    let worker = start_worker(url_of(&pool), config());
    wait_until(
        &pool,
        &format!("select count(*) from job where state = 'completed' and job_id = '{snoozed}'"),
        1,
        Duration::from_secs(30),
    )
    .await;
    let (attempt, snoozes): (i32, i32) =
        sqlx::query_as("select attempt, snoozes from job where job_id = $1")
            .bind(snoozed.as_uuid())
            .fetch_one(&pool)
            .await
            .expect("job");
    assert_eq!(
        (attempt, snoozes),
        (1, 1),
        "the snooze did not spend an attempt"
    );
    // A failure spends one and is retried after a backoff (2–3 s for the first).
    wait_until(
        &pool,
        &format!("select count(*) from job where state = 'completed' and job_id = '{failed_once}'"),
        1,
        Duration::from_secs(30),
    )
    .await;
    let (attempt, errors): (i32, serde_json::Value) =
        sqlx::query_as("select attempt, errors from job where job_id = $1")
            .bind(failed_once.as_uuid())
            .fetch_one(&pool)
            .await
            .expect("job");
    assert_eq!(attempt, 2);
    assert_eq!(errors[0]["error"], "first attempt fails");
    worker.stop();
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_unique_key_admits_one_unfinished_job(pool: PgPool) {
    prepare(&pool).await;
    let queue = queue(&pool);
    let first = queue
        .enqueue(&probe_job(serde_json::json!({}), Some("scan:1")))
        .await
        .expect("enqueue");
    let second = queue
        .enqueue(&probe_job(serde_json::json!({}), Some("scan:1")))
        .await
        .expect("enqueue");
    assert!(matches!(first, Enqueued::Inserted(_)));
    assert_eq!(second, Enqueued::Duplicate(first.job_id()));
    let worker = start_worker(url_of(&pool), config());
    wait_until(
        &pool,
        "select count(*) from job where state = 'completed'",
        1,
        Duration::from_secs(30),
    )
    .await;
    worker.stop();
    // Finished jobs no longer block the key.
    let third = queue
        .enqueue(&probe_job(serde_json::json!({}), Some("scan:1")))
        .await
        .expect("enqueue");
    assert!(matches!(third, Enqueued::Inserted(id) if id != first.job_id()));
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn shutdown_finishes_short_jobs_and_gives_long_ones_back(pool: PgPool) {
    prepare(&pool).await;
    let queue = queue(&pool);
    let short = queue
        .enqueue(&probe_job(serde_json::json!({"sleep_ms": 300}), None))
        .await
        .expect("enqueue")
        .job_id();
    let long = queue
        .enqueue(&probe_job(serde_json::json!({"sleep_ms": 60_000}), None))
        .await
        .expect("enqueue")
        .job_id();
    let worker = start_worker(
        url_of(&pool),
        EngineConfig {
            drain: Duration::from_secs(1),
            ..config()
        },
    );
    wait_until(
        &pool,
        "select count(*) from job where state = 'running'",
        2,
        Duration::from_secs(30),
    )
    .await;
    worker.stop();
    let state = |id: tenantry_domain::JobId| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (String, i32)>("select state, attempt from job where job_id = $1")
                .bind(id.as_uuid())
                .fetch_one(&pool)
                .await
                .expect("job")
        }
    };
    assert_eq!(state(short).await, ("completed".to_owned(), 1));
    assert_eq!(
        state(long).await,
        ("available".to_owned(), 0),
        "given back without spending its attempt"
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn per_organization_and_global_limits_hold_across_workers(pool: PgPool) {
    prepare(&pool).await;
    let queue = queue(&pool);
    for _ in 0..6 {
        queue
            .enqueue(&probe_job(serde_json::json!({"sleep_ms": 500}), None))
            .await
            .expect("enqueue");
    }
    let limited = EngineConfig {
        global: 3,
        ..config()
    };
    let first = start_worker(url_of(&pool), limited.clone());
    let second = start_worker(url_of(&pool), limited);
    let mut peak = 0;
    for _ in 0..60 {
        let running: i64 = sqlx::query_scalar("select count(*) from job where state = 'running'")
            .fetch_one(&pool)
            .await
            .expect("count");
        peak = peak.max(running);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    wait_until(
        &pool,
        "select count(*) from job where state = 'completed'",
        6,
        Duration::from_secs(30),
    )
    .await;
    first.stop();
    second.stop();
    assert!(
        peak <= 3,
        "at most 3 jobs ran at once across both workers, saw {peak}"
    );
    assert!(
        peak >= 2,
        "the workers did run jobs side by side (peak {peak})"
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_job_of_a_silent_worker_is_rescued_and_finished(pool: PgPool) {
    prepare(&pool).await;
    let queue = queue(&pool);
    let id = queue
        .enqueue(&probe_job(serde_json::json!({}), None))
        .await
        .expect("enqueue")
        .job_id();
    // A worker claims the job and then goes silent (alive, as its liveness lock says,
    // but stuck): no heartbeat, no outcome.
    let limits = tenantry_store::queue::ClaimLimits {
        kinds: vec!["probe".into()],
        demand: 1,
        per_organization: 2,
        global: 10,
    };
    let _alive = queue.hold_liveness("ghost").await.expect("liveness");
    let claimed = queue.claim("ghost", &limits).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let rescued = queue
        .rescue(Duration::from_secs(60), Duration::from_secs(3600))
        .await
        .expect("rescue");
    assert_eq!(rescued, 0, "a fresh heartbeat is not rescued");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let rescued = queue
        .rescue(Duration::from_secs(1), Duration::from_secs(3600))
        .await
        .expect("rescue");
    assert_eq!(rescued, 1);
    // The ghost's late answer changes nothing: the attempt fence.
    assert!(!queue.complete(&claimed[0]).await.expect("complete"));
    let worker = start_worker(url_of(&pool), config());
    wait_until(
        &pool,
        "select count(*) from job where state = 'completed'",
        1,
        Duration::from_secs(30),
    )
    .await;
    worker.stop();
    let (attempt, last_error): (i32, Option<String>) =
        sqlx::query_as("select attempt, errors->0->>'error' from job where job_id = $1")
            .bind(id.as_uuid())
            .fetch_one(&pool)
            .await
            .expect("job");
    assert_eq!(attempt, 2);
    assert_eq!(last_error.as_deref(), Some("worker lost: no heartbeat"));
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn one_organization_never_runs_more_than_its_limit_across_workers(pool: PgPool) {
    prepare(&pool).await;
    let msp = uuid::Uuid::now_v7();
    let busy = uuid::Uuid::now_v7();
    let quiet = uuid::Uuid::now_v7();
    sqlx::query("insert into msp (msp_id, name) values ($1, 'Limits MSP')")
        .bind(msp)
        .execute(&pool)
        .await
        .expect("msp");
    for (organization, name) in [(busy, "Busy"), (quiet, "Quiet")] {
        sqlx::query("insert into organization (organization_id, msp_id, name) values ($1, $2, $3)")
            .bind(organization)
            .bind(msp)
            .bind(name)
            .execute(&pool)
            .await
            .expect("organization");
    }
    let queue = queue(&pool);
    let job_for = |organization: uuid::Uuid| NewJob {
        msp_id: Some(tenantry_domain::MspId::from_uuid(msp)),
        organization_id: Some(tenantry_domain::OrganizationId::from_uuid(organization)),
        ..probe_job(serde_json::json!({"sleep_ms": 400}), None)
    };
    for _ in 0..6 {
        queue.enqueue(&job_for(busy)).await.expect("enqueue");
    }
    queue.enqueue(&job_for(quiet)).await.expect("enqueue");
    let first = start_worker(url_of(&pool), config());
    let second = start_worker(url_of(&pool), config());
    let (mut peak_busy, mut quiet_started_early, mut quiet_seen) = (0, false, false);
    for _ in 0..60 {
        let busy_running: i64 = sqlx::query_scalar(
            "select count(*) from job where state = 'running' and organization_id = $1",
        )
        .bind(busy)
        .fetch_one(&pool)
        .await
        .expect("count");
        peak_busy = peak_busy.max(busy_running);
        // Early means while the busy organization still had jobs waiting (not within a
        // wall-clock time: a loaded machine starts the workers late, not out of order).
        if !quiet_seen {
            let (quiet_done, busy_waiting): (i64, i64) = sqlx::query_as(
                "select count(*) filter (where organization_id = $1 and state in ('running', 'completed')),
                        count(*) filter (where organization_id = $2 and state in ('available', 'scheduled', 'retryable'))
                 from job",
            )
            .bind(quiet)
            .bind(busy)
            .fetch_one(&pool)
            .await
            .expect("count");
            if quiet_done > 0 {
                quiet_seen = true;
                quiet_started_early = busy_waiting > 0;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    wait_until(
        &pool,
        "select count(*) from job where state = 'completed'",
        7,
        Duration::from_secs(30),
    )
    .await;
    first.stop();
    second.stop();
    assert_eq!(
        peak_busy, 2,
        "the busy organization ran at its limit of 2, never above"
    );
    assert!(
        quiet_started_early,
        "the other organization's job did not wait behind the busy one's queue"
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn run_until_idle_runs_every_due_job_once_snoozes_and_retries_included(pool: PgPool) {
    prepare(&pool).await;
    let queue = queue(&pool);
    for args in [
        serde_json::json!({}),
        serde_json::json!({"snooze": true}),
        serde_json::json!({"fail_once": true}),
    ] {
        queue
            .enqueue(&probe_job(args, None))
            .await
            .expect("enqueue");
    }
    // One that is not due within the horizon stays queued.
    let mut later = probe_job(serde_json::json!({}), None);
    later.run_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    queue.enqueue(&later).await.expect("enqueue");

    let engine = Engine::new(
        queue.clone(),
        config(),
        vec![typed(Probe { pool: pool.clone() })],
    );
    let attempts = engine
        .run_until_idle(Duration::from_secs(30))
        .await
        .expect("drains");

    // Three jobs, plus the snoozed one's second run and the failed one's retry.
    assert_eq!(attempts, 5);
    let runs: Vec<i32> = sqlx::query_scalar("select runs from probe_run")
        .fetch_all(&pool)
        .await
        .expect("runs");
    assert_eq!(runs, vec![1, 1, 1], "each due job recorded exactly once");
    let states: Vec<String> = sqlx::query_scalar("select state from job order by state")
        .fetch_all(&pool)
        .await
        .expect("states");
    assert_eq!(
        states,
        vec!["available", "completed", "completed", "completed"],
        "the job due in an hour waits"
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_job_of_a_worker_whose_process_ended_is_rescued_without_waiting_for_the_lease(
    pool: PgPool,
) {
    prepare(&pool).await;
    let queue = queue(&pool);
    queue
        .enqueue(&probe_job(serde_json::json!({}), None))
        .await
        .expect("enqueue");
    let limits = tenantry_store::queue::ClaimLimits {
        kinds: vec!["probe".into()],
        demand: 1,
        per_organization: 2,
        global: 10,
    };
    let liveness = queue.hold_liveness("doomed").await.expect("liveness");
    assert_eq!(
        queue.claim("doomed", &limits).await.expect("claim").len(),
        1
    );
    let lease = Duration::from_secs(600);
    assert_eq!(
        queue
            .rescue(lease, Duration::from_secs(3600))
            .await
            .expect("rescue"),
        0,
        "a live worker's job stays with it"
    );
    // The process dies: its connection, and with it the lock, goes.
    drop(liveness);
    let mut rescued = 0;
    for _ in 0..50 {
        rescued = queue
            .rescue(lease, Duration::from_secs(3600))
            .await
            .expect("rescue");
        if rescued > 0 {
            break;
        }
        // PostgreSQL notices the closed socket a moment later.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rescued, 1, "rescued long before the 600 s lease");
    let last_error: String = sqlx::query_scalar("select last_error from job")
        .fetch_one(&pool)
        .await
        .expect("job");
    assert_eq!(
        last_error,
        "worker lost: its process or database connection ended"
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn an_idle_worker_wakes_on_the_enqueue_notification_not_its_poll(pool: PgPool) {
    prepare(&pool).await;
    // Polls only once a minute: a job finished within the test's 30 s was announced.
    let worker = start_worker(
        url_of(&pool),
        EngineConfig {
            poll_interval: Duration::from_secs(60),
            ..config()
        },
    );
    wait_until(
        &pool,
        "select count(*) from pg_stat_activity
         where datname = current_database() and query ilike 'listen%tenantry_jobs%'",
        1,
        Duration::from_secs(30),
    )
    .await;
    let queue = queue(&pool);
    let mut tx = pool.begin().await.expect("tx");
    tenantry_store::queue::enqueue(&mut tx, &probe_job(serde_json::json!({}), None))
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
    wait_until(
        &pool,
        "select count(*) from job where state = 'completed'",
        1,
        Duration::from_secs(30),
    )
    .await;
    worker.stop();
    // A job enqueued in a transaction that rolls back wakes nobody and is not there.
    let mut tx = pool.begin().await.expect("tx");
    tenantry_store::queue::enqueue(&mut tx, &probe_job(serde_json::json!({}), None))
        .await
        .expect("enqueue");
    tx.rollback().await.expect("rollback");
    assert_eq!(queue.depth().await.expect("depth"), Vec::new());
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_claim_looks_past_a_backlog_its_limit_keeps_waiting(pool: PgPool) {
    prepare(&pool).await;
    let queue = queue(&pool);
    let msp = tenantry_domain::MspId::new();
    let busy = tenantry_domain::OrganizationId::new();
    let other = tenantry_domain::OrganizationId::new();
    sqlx::query("insert into msp (msp_id, name) values ($1, 'Backlog MSP')")
        .bind(msp.as_uuid())
        .execute(&pool)
        .await
        .expect("msp");
    for (organization, name) in [(busy, "Busy"), (other, "Other")] {
        sqlx::query("insert into organization (organization_id, msp_id, name) values ($1, $2, $3)")
            .bind(organization.as_uuid())
            .bind(msp.as_uuid())
            .bind(name)
            .execute(&pool)
            .await
            .expect("organization");
    }
    for organization in std::iter::repeat_n(busy, 300).chain([other]) {
        let mut job = probe_job(serde_json::json!({}), None);
        job.msp_id = Some(msp);
        job.organization_id = Some(organization);
        queue.enqueue(&job).await.expect("enqueue");
    }
    let limits = tenantry_store::queue::ClaimLimits {
        kinds: vec!["probe".into()],
        demand: 10,
        per_organization: 2,
        global: 64,
    };
    let claimed = queue.claim("w", &limits).await.expect("claim");
    let for_busy = claimed
        .iter()
        .filter(|j| j.organization_id == Some(busy))
        .count();
    let for_other = claimed
        .iter()
        .filter(|j| j.organization_id == Some(other))
        .count();
    assert_eq!(
        (for_busy, for_other),
        (2, 1),
        "two of the backlog (its limit) and the other organization's job behind it"
    );
}
