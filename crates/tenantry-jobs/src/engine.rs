//! The worker loop: claims due jobs within the per-organization and global limits, runs
//! each under its kind's timeout, heartbeats the ones it holds (and stops those whose
//! cancellation was asked), records every outcome, and on shutdown stops claiming, lets
//! running jobs finish for a grace period and gives back the rest untouched.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tenantry_domain::JobId;
use tenantry_store::jobs::JobArgs;
use tenantry_store::queue::{ClaimLimits, ClaimedJob, Liveness};
use tenantry_store::{Queue, StoreError};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;
use uuid::Uuid;

/// How a job's attempt ended.
#[derive(Debug)]
pub enum Outcome {
    Done,
    /// Try again after a backoff (spends an attempt).
    Retry(String),
    /// Microsoft asked to wait: run again after this long without spending an attempt.
    Snooze(Duration, String),
    /// Will never succeed; no more attempts.
    Discard(String),
}

impl Outcome {
    /// A stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Retry(_) => "retry",
            Outcome::Snooze(..) => "snooze",
            Outcome::Discard(_) => "discard",
        }
    }
}

pub type JobFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// Runs the jobs of one kind, as the engine sees them (arguments still JSON). Job kinds
/// implement [`JobHandler`] instead and register through [`typed`].
pub trait Handler: Send + Sync + 'static {
    fn kind(&self) -> &'static str;
    /// The longest an attempt may run; must stay below the rescue horizon.
    fn timeout(&self) -> Duration;
    fn run<'a>(&'a self, job: &'a ClaimedJob) -> JobFuture<'a>;
}

/// Runs the jobs of the kind its arguments name.
pub trait JobHandler: Send + Sync + 'static {
    type Args: JobArgs;
    /// The longest an attempt may run; must stay below the rescue horizon.
    fn timeout(&self) -> Duration;
    fn run<'a>(&'a self, job: &'a ClaimedJob, args: Self::Args) -> JobFuture<'a>;
}

/// A [`JobHandler`] as the engine runs it: arguments that do not parse as the kind's
/// type are discarded (no retry will make them parse).
pub fn typed<H: JobHandler>(handler: H) -> Arc<dyn Handler> {
    Arc::new(Typed(handler))
}

struct Typed<H>(H);

impl<H: JobHandler> Handler for Typed<H> {
    fn kind(&self) -> &'static str {
        H::Args::KIND
    }

    fn timeout(&self) -> Duration {
        self.0.timeout()
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob) -> JobFuture<'a> {
        match job.args::<H::Args>() {
            Ok(args) => self.0.run(job, args),
            Err(error) => Box::pin(async move { Outcome::Discard(error.to_string()) }),
        }
    }
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Jobs this process runs at once.
    pub concurrency: usize,
    /// Jobs running at once for one organization, across every worker.
    pub per_organization: i64,
    /// Jobs running at once in total, across every worker.
    pub global: i64,
    /// How often an idle worker looks for due jobs.
    pub poll_interval: Duration,
    pub heartbeat_interval: Duration,
    /// A job whose worker has not heartbeated for this long is rescued.
    pub lease: Duration,
    /// How long shutdown waits for running jobs before giving them back.
    pub drain: Duration,
    pub max_snoozes: i32,
    /// Wake on the enqueue notification (`LISTEN`) besides polling. Off where the
    /// database is reached through a pooler that cannot hold a listening session
    /// (PgBouncer in transaction mode): the poll alone then finds new jobs.
    pub listen: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            per_organization: 2,
            global: 64,
            poll_interval: Duration::from_millis(500),
            heartbeat_interval: Duration::from_secs(5),
            lease: Duration::from_secs(30),
            drain: Duration::from_secs(20),
            max_snoozes: 50,
            listen: true,
        }
    }
}

/// Exponential backoff with jitter for attempt `n` (1-based): 2^n seconds plus up to
/// half again, capped at an hour.
pub fn retry_backoff(attempt: i32) -> Duration {
    let base = 2f64.powi(attempt.clamp(1, 12)).min(3600.0);
    Duration::from_secs_f64(base + fastrand::f64() * base / 2.0)
}

type Running = Arc<Mutex<HashMap<JobId, tokio::task::AbortHandle>>>;

pub struct Engine {
    queue: Queue,
    config: EngineConfig,
    worker_id: String,
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
}

impl Engine {
    pub fn new(queue: Queue, config: EngineConfig, handlers: Vec<Arc<dyn Handler>>) -> Self {
        let worker_id = format!(
            "{}-{}-{}",
            hostname(),
            std::process::id(),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            queue,
            config,
            worker_id,
            handlers: handlers.into_iter().map(|h| (h.kind(), h)).collect(),
        }
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.handlers.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }

    /// Runs every due job in this task, one after another, until none is left, also
    /// waiting for jobs that become due (snoozed, retried, scheduled) within `horizon`
    /// from the call; returns how many attempts ran. For tests and one-shot tools: no
    /// heartbeats, no leader, no background task, so what the queue held when it returns
    /// has run to its end or is scheduled beyond the horizon.
    pub async fn run_until_idle(&self, horizon: Duration) -> Result<usize, StoreError> {
        let deadline = tokio::time::Instant::now() + horizon;
        // Held while jobs run, so a leader elsewhere does not take them for lost.
        let _liveness = self.queue.hold_liveness(&self.worker_id).await?;
        let limits = ClaimLimits {
            kinds: self.kinds().iter().map(|k| (*k).to_owned()).collect(),
            demand: 1,
            per_organization: self.config.per_organization,
            global: self.config.global,
        };
        let mut ran = 0;
        loop {
            let claimed = self.queue.claim(&self.worker_id, &limits).await?;
            if claimed.is_empty() {
                let Some(due) = self.queue.next_due(&limits.kinds).await? else {
                    return Ok(ran);
                };
                let wait = (due - chrono::Utc::now()).to_std().unwrap_or_default();
                if tokio::time::Instant::now() + wait > deadline {
                    return Ok(ran);
                }
                // A job due now that could not be claimed waits for a limit to free up.
                tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
                continue;
            }
            for job in claimed {
                let Some(handler) = self.handlers.get(job.kind.as_str()).cloned() else {
                    continue;
                };
                async {
                    let outcome = attempt(handler.as_ref(), &job).await;
                    self.record(&job, outcome).await;
                }
                .instrument(job_span(&job))
                .await;
                ran += 1;
            }
        }
    }

    /// Runs until `shutdown` turns true, then drains.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let running: Running = Arc::default();
        let mut tasks: JoinSet<()> = JoinSet::new();
        let wake = Arc::new(tokio::sync::Notify::new());
        let listening = self
            .config
            .listen
            .then(|| tokio::spawn(Arc::clone(&self).listen(Arc::clone(&wake))));
        let liveness = self.liveness().await;
        let heartbeat = tokio::spawn(Arc::clone(&self).heartbeat(Arc::clone(&running), liveness));
        let limits = ClaimLimits {
            kinds: self.kinds().iter().map(|k| (*k).to_owned()).collect(),
            demand: 0,
            per_organization: self.config.per_organization,
            global: self.config.global,
        };
        tracing::info!(worker = %self.worker_id, kinds = ?self.kinds(), "worker started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            while tasks.try_join_next().is_some() {}
            let free = self.config.concurrency.saturating_sub(tasks.len());
            let mut claimed = 0;
            if free > 0 {
                let limits = ClaimLimits {
                    demand: free,
                    ..limits.clone()
                };
                match self.queue.claim(&self.worker_id, &limits).await {
                    Ok(jobs) => {
                        claimed = jobs.len();
                        for job in jobs {
                            self.start(&mut tasks, &running, job);
                        }
                    }
                    Err(error) => tracing::warn!(%error, "claiming jobs failed"),
                }
            }
            // Claimed a full batch: there may be more. Otherwise wait for a poll, a
            // finished job or shutdown.
            if claimed > 0 && claimed == free {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                _ = wake.notified() => {}
                _ = shutdown.changed() => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        if let Some(listening) = listening {
            listening.abort();
        }
        tracing::info!(worker = %self.worker_id, running = tasks.len(), "worker draining");
        let drained = tokio::time::timeout(self.config.drain, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        heartbeat.abort();
        if drained.is_err() {
            // Jobs still running are given back: their attempt is not spent.
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            match self.queue.release_worker(&self.worker_id).await {
                Ok(released) => {
                    tracing::info!(worker = %self.worker_id, released, "unfinished jobs given back")
                }
                Err(error) => {
                    tracing::error!(%error, "giving jobs back failed; they will be rescued after the lease")
                }
            }
        }
        tracing::info!(worker = %self.worker_id, "worker stopped");
    }

    fn start(self: &Arc<Self>, tasks: &mut JoinSet<()>, running: &Running, job: ClaimedJob) {
        let Some(handler) = self.handlers.get(job.kind.as_str()).cloned() else {
            return;
        };
        let engine = Arc::clone(self);
        let id = job.job_id;
        let registry = Arc::clone(running);
        // The guard gives the job back if the task is aborted (shutdown or cancel) before
        // it recorded an outcome.
        let span = job_span(&job);
        let abort = tasks.spawn(
            async move {
                let mut guard = Unfinished {
                    queue: engine.queue.clone(),
                    job: Some(job.clone()),
                    running: Arc::clone(&registry),
                };
                let outcome = attempt(handler.as_ref(), &job).await;
                engine.record(&job, outcome).await;
                guard.job = None;
            }
            .instrument(span),
        );
        running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, abort);
    }

    async fn record(&self, job: &ClaimedJob, outcome: Outcome) {
        let kind = job.kind.as_str();
        let result = match &outcome {
            Outcome::Done => self.queue.complete(job).await,
            Outcome::Retry(error) => {
                tracing::warn!(job = %job.job_id, kind, attempt = job.attempt, %error, "job failed");
                self.queue
                    .fail(job, error, retry_backoff(job.attempt))
                    .await
            }
            Outcome::Snooze(delay, reason) => {
                tracing::info!(job = %job.job_id, kind, delay_ms = delay.as_millis() as u64, %reason, "job snoozed");
                self.queue
                    .snooze(job, *delay, reason, self.config.max_snoozes)
                    .await
            }
            Outcome::Discard(error) => {
                tracing::warn!(job = %job.job_id, kind, %error, "job discarded");
                self.queue.discard(job, error).await
            }
        };
        match result {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job = %job.job_id, kind, "job was taken from this worker before it finished")
            }
            Err(error) => {
                tracing::error!(job = %job.job_id, kind, %error, "recording a job's outcome failed")
            }
        }
    }

    /// Wakes the worker loop when a job of one of its kinds is enqueued. Without a
    /// listening connection (refused, lost) the loop still polls; the listener tries
    /// again after a pause.
    async fn listen(self: Arc<Self>, wake: Arc<tokio::sync::Notify>) {
        loop {
            match self.queue.wake_ups().await {
                Ok(mut listener) => loop {
                    match listener.recv().await {
                        Ok(notification) => {
                            if self.handlers.contains_key(notification.payload()) {
                                wake.notify_one();
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, "job notifications interrupted; polling meanwhile");
                            break;
                        }
                    }
                },
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for job notifications; polling meanwhile")
                }
            }
            tokio::time::sleep(self.config.poll_interval.max(Duration::from_secs(1))).await;
        }
    }

    /// This worker's liveness lock, or none when the database refused it (the heartbeat
    /// lease still covers the worker, and the heartbeat tries again).
    async fn liveness(&self) -> Option<Liveness> {
        match self.queue.hold_liveness(&self.worker_id).await {
            Ok(liveness) => Some(liveness),
            Err(error) => {
                tracing::warn!(worker = %self.worker_id, %error, "could not take the liveness lock");
                None
            }
        }
    }

    async fn heartbeat(self: Arc<Self>, running: Running, mut liveness: Option<Liveness>) {
        let mut tick = tokio::time::interval(self.config.heartbeat_interval);
        loop {
            tick.tick().await;
            let alive = match liveness.as_mut() {
                Some(held) => held.check().await.is_ok(),
                None => false,
            };
            if !alive {
                liveness = self.liveness().await;
            }
            let ids: Vec<Uuid> = {
                let mut running = running.lock().unwrap_or_else(|p| p.into_inner());
                running.retain(|_, task| !task.is_finished());
                running.keys().map(JobId::as_uuid).collect()
            };
            match self.queue.heartbeat(&self.worker_id, &ids).await {
                Ok(cancelled) => {
                    for id in cancelled {
                        let handle = running
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&JobId::from(id));
                        if let Some(handle) = handle {
                            tracing::info!(job = %id, "job cancelled while running");
                            handle.abort();
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "heartbeat failed"),
            }
        }
    }
}

/// Marks a claimed job cancelled if its task is aborted because its cancellation was
/// asked (the heartbeat removes it from the registry first). Jobs aborted at shutdown are
/// given back by the engine instead.
struct Unfinished {
    queue: Queue,
    job: Option<ClaimedJob>,
    running: Running,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let Some(job) = self.job.take() else {
            return;
        };
        let cancelled = !self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&job.job_id);
        if !cancelled {
            return;
        }
        let queue = self.queue.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(error) = queue.cancelled(&job).await {
                    tracing::warn!(job = %job.job_id, %error, "recording a cancellation failed");
                }
            });
        }
    }
}

/// The span every log line of a job's attempt carries: which job, of which kind, for
/// which MSP and organization.
fn job_span(job: &ClaimedJob) -> tracing::Span {
    let span = tracing::info_span!(
        "job",
        job_id = %job.job_id,
        kind = %job.kind,
        attempt = job.attempt,
        msp_id = tracing::field::Empty,
        organization_id = tracing::field::Empty,
    );
    if let Some(msp) = job.msp_id {
        span.record("msp_id", tracing::field::display(msp));
    }
    if let Some(organization) = job.organization_id {
        span.record("organization_id", tracing::field::display(organization));
    }
    span
}

/// One attempt of `job` under its kind's timeout.
async fn attempt(handler: &dyn Handler, job: &ClaimedJob) -> Outcome {
    tracing::debug!("job started");
    let outcome = tokio::time::timeout(handler.timeout(), handler.run(job))
        .await
        .unwrap_or_else(|_| {
            Outcome::Retry(format!("timed out after {} s", handler.timeout().as_secs()))
        });
    tracing::debug!(outcome = outcome.label(), "job attempt ended");
    outcome
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "worker".into())
}
