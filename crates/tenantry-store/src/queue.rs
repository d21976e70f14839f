//! The durable job queue's SQL (the engine that drives it is `tenantry-jobs`). Jobs are
//! rows; every state change is one statement, and every change a worker makes to a job
//! it claimed is fenced by the attempt number, so a worker that lost its job (rescued
//! after missed heartbeats, cancelled, deleted with its organization) changes nothing.
//! See docs/jobs.md for the design and why it is not River.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use tenantry_domain::{JobId, MspId, OrganizationId};
use uuid::Uuid;

use crate::error::StoreError;
use crate::ids::NullableUuid;

/// Serialises claims across every worker process, so per-organization and global limits
/// hold exactly. A claim takes a few milliseconds; jobs run outside it.
const CLAIM_LOCK: i64 = 0x7465_6e61_6e74_7201;
/// Held (session-level) by the one process that runs maintenance and schedules.
pub const LEADER_LOCK: i64 = 0x7465_6e61_6e74_7202;

/// The channel a `NOTIFY` is sent on when a job is enqueued (payload: its kind), so idle
/// workers claim it at once instead of at their next poll. PostgreSQL delivers it when
/// the enqueuing transaction commits, and never for one rolled back.
pub const JOBS_CHANNEL: &str = "tenantry_jobs";

/// The states a job can still run from.
const UNFINISHED: &str = "('available', 'scheduled', 'retryable', 'running')";

#[derive(Clone, Debug)]
pub struct NewJob {
    pub kind: String,
    pub args: serde_json::Value,
    pub msp_id: Option<MspId>,
    pub organization_id: Option<OrganizationId>,
    /// At most one unfinished job per key.
    pub unique_key: Option<String>,
    pub max_attempts: i32,
    pub priority: i16,
    pub run_at: Option<DateTime<Utc>>,
}

/// A worker's proof of life: a session advisory lock (keyed by its worker id) on a
/// connection of its own, held while the worker runs. PostgreSQL releases it the moment
/// the process or that connection dies, so the leader rescues the worker's jobs on its
/// next tick instead of waiting out the heartbeat lease. Heartbeats stay as the backstop
/// for a worker that is alive but stuck.
pub struct Liveness {
    conn: PgConnection,
}

impl Liveness {
    /// Whether the lock's connection still answers (else the lock is gone).
    pub async fn check(&mut self) -> Result<(), StoreError> {
        sqlx::query("select 1").execute(&mut self.conn).await?;
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    Inserted(JobId),
    /// An unfinished job with the same unique key exists already.
    Duplicate(JobId),
}

impl Enqueued {
    pub fn job_id(self) -> JobId {
        match self {
            Enqueued::Inserted(id) | Enqueued::Duplicate(id) => id,
        }
    }
}

/// Inserts a job on the caller's connection, so it commits (or not) with the caller's
/// transaction, and wakes idle workers when it does ([`JOBS_CHANNEL`], in the same
/// statement: no extra round trip).
pub async fn enqueue(conn: &mut PgConnection, job: &NewJob) -> Result<Enqueued, StoreError> {
    let id = JobId::new();
    let sql = format!(
        "insert into job (job_id, msp_id, organization_id, kind, args, max_attempts, priority, unique_key, scheduled_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, now()))
         on conflict (unique_key) where unique_key is not null and state in {UNFINISHED} do nothing
         returning job_id, pg_notify('{JOBS_CHANNEL}', kind) is null"
    );
    let inserted: Option<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(id.as_uuid())
        .bind(job.msp_id.map(|m| m.as_uuid()))
        .bind(job.organization_id.map(|o| o.as_uuid()))
        .bind(&job.kind)
        .bind(&job.args)
        .bind(job.max_attempts)
        .bind(job.priority)
        .bind(&job.unique_key)
        .bind(job.run_at)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(id) = inserted {
        return Ok(Enqueued::Inserted(JobId::from_uuid(id)));
    }
    let sql = format!("select job_id from job where unique_key = $1 and state in {UNFINISHED}");
    let existing: Option<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(&job.unique_key)
        .fetch_optional(&mut *conn)
        .await?;
    match existing {
        Some(id) => Ok(Enqueued::Duplicate(JobId::from_uuid(id))),
        // The other job finished between the two statements: a retry inserts.
        None => Box::pin(enqueue(conn, job)).await,
    }
}

/// The ids of up to `free` due jobs to claim, in priority order, within the
/// per-organization limit.
///
/// Only a prefix of the due jobs in claim order is ranked (through `job_fetch_idx`), so a
/// claim costs what it takes, not the whole queue's depth: a job's rank among its
/// organization's jobs within the prefix is its rank in the whole queue, since every job
/// ahead of it is in the prefix too. The prefix grows (×4) only while it was full and
/// yielded fewer than `free` jobs, so the answer is the one ranking the whole queue gives.
async fn claimable(
    tx: &mut PgConnection,
    limits: &ClaimLimits,
    free: i64,
) -> Result<Vec<Uuid>, StoreError> {
    let mut window = (free * 4).max(64);
    loop {
        let rows: Vec<(Uuid, bool)> = sqlx::query_as(
            "with running as (
                 select organization_id, count(*) as n from job
                 where state = 'running' and organization_id is not null group by organization_id),
             prefix as (
                 select job_id, organization_id, priority, scheduled_at from job
                 where state in ('available', 'scheduled', 'retryable') and scheduled_at <= now()
                   and kind = any($1) and not cancel_requested
                 order by priority, scheduled_at, job_id
                 limit $3),
             ranked as (
                 select job_id, organization_id, priority, scheduled_at,
                        row_number() over (partition by organization_id order by priority, scheduled_at, job_id) as rank
                 from prefix)
             select ranked.job_id,
                    ranked.organization_id is null or ranked.rank + coalesce(running.n, 0) <= $2
             from ranked left join running using (organization_id)
             order by ranked.priority, ranked.scheduled_at, ranked.job_id",
        )
        .bind(&limits.kinds)
        .bind(limits.per_organization)
        .bind(window)
        .fetch_all(&mut *tx)
        .await?;
        let full = rows.len() as i64 == window;
        let ids: Vec<Uuid> = rows
            .into_iter()
            .filter_map(|(id, allowed)| allowed.then_some(id))
            .take(usize::try_from(free).unwrap_or(0))
            .collect();
        if ids.len() as i64 >= free || !full {
            return Ok(ids);
        }
        window *= 4;
    }
}

/// A job a worker holds. `attempt` is the fence for every later change.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ClaimedJob {
    #[sqlx(try_from = "Uuid")]
    pub job_id: JobId,
    pub kind: String,
    pub args: serde_json::Value,
    #[sqlx(try_from = "NullableUuid")]
    pub msp_id: Option<MspId>,
    #[sqlx(try_from = "NullableUuid")]
    pub organization_id: Option<OrganizationId>,
    pub attempt: i32,
    pub max_attempts: i32,
    pub snoozes: i32,
}

/// What a claim may take.
#[derive(Clone, Debug)]
pub struct ClaimLimits {
    pub kinds: Vec<String>,
    /// Free slots in this worker.
    pub demand: usize,
    /// Running jobs per organization, across every worker.
    pub per_organization: i64,
    /// Running jobs in total, across every worker.
    pub global: i64,
}

/// The job as the API shows it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct JobRecord {
    #[sqlx(try_from = "Uuid")]
    pub job_id: JobId,
    pub kind: String,
    #[sqlx(try_from = "NullableUuid")]
    pub organization_id: Option<OrganizationId>,
    #[sqlx(try_from = "String")]
    pub state: tenantry_domain::JobState,
    pub args: serde_json::Value,
    pub attempt: i32,
    pub max_attempts: i32,
    pub snoozes: i32,
    pub created_at: DateTime<Utc>,
    pub scheduled_at: DateTime<Utc>,
    pub attempted_at: Option<DateTime<Utc>>,
    pub finalized_at: Option<DateTime<Utc>>,
    pub cancel_requested: bool,
    pub last_error: Option<String>,
    pub errors: serde_json::Value,
}

pub(crate) const JOB_COLUMNS: &str = "job_id, kind, organization_id, state, args, attempt, max_attempts, snoozes, created_at, scheduled_at, attempted_at, finalized_at, cancel_requested, last_error, errors";

/// Appends an error to `errors`, keeping the last ten.
const APPEND_ERROR: &str = "errors = (case when jsonb_array_length(errors) >= 10 then errors - 0 else errors end)
    || jsonb_build_array(jsonb_build_object('attempt', attempt, 'at', now(), 'error', $3::text)), last_error = $3";

/// The workers' side of the queue. Not MSP-scoped: workers act for every MSP.
#[derive(Clone)]
pub struct Queue {
    pool: PgPool,
}

impl Queue {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn enqueue(&self, job: &NewJob) -> Result<Enqueued, StoreError> {
        let mut conn = self.pool.acquire().await?;
        enqueue(&mut conn, job).await
    }

    /// A connection listening on [`JOBS_CHANNEL`]: each notification names the kind of a
    /// job just enqueued. The listener reconnects by itself after a lost connection
    /// (notifications sent meanwhile are lost; workers poll as well).
    pub async fn wake_ups(&self) -> Result<sqlx::postgres::PgListener, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(JOBS_CHANNEL).await?;
        Ok(listener)
    }

    /// Takes `worker`'s liveness lock on a connection of its own (see [`Liveness`]).
    pub async fn hold_liveness(&self, worker: &str) -> Result<Liveness, StoreError> {
        let mut conn = self.pool.acquire().await?.detach();
        let held: bool = sqlx::query_scalar("select pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(worker)
            .fetch_one(&mut conn)
            .await?;
        if !held {
            return Err(StoreError::Corrupt(format!(
                "worker id {worker} is already in use by a live worker"
            )));
        }
        Ok(Liveness { conn })
    }

    /// When the next job of `kinds` that may still run becomes due (now, for one due
    /// already); `None` when none is waiting.
    pub async fn next_due(&self, kinds: &[String]) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "select min(scheduled_at) from job
             where state in ('available', 'scheduled', 'retryable') and kind = any($1)
               and not cancel_requested",
        )
        .bind(kinds)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Claims due jobs of `kinds` for `worker`, within the limits.
    pub async fn claim(
        &self,
        worker: &str,
        limits: &ClaimLimits,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        if limits.demand == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("select pg_advisory_xact_lock($1)")
            .bind(CLAIM_LOCK)
            .execute(&mut *tx)
            .await?;
        let running: i64 = sqlx::query_scalar("select count(*) from job where state = 'running'")
            .fetch_one(&mut *tx)
            .await?;
        let free = (limits.global - running).min(limits.demand as i64);
        if free <= 0 {
            return Ok(Vec::new());
        }
        let ids = claimable(&mut tx, limits, free).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let jobs: Vec<ClaimedJob> = sqlx::query_as(
            "update job set state = 'running', attempt = attempt + 1, attempted_at = now(),
                 heartbeat_at = now(), attempted_by = $2
             where job_id = any($1) and state in ('available', 'scheduled', 'retryable')
             returning job_id, kind, args, msp_id, organization_id, attempt, max_attempts, snoozes",
        )
        .bind(&ids)
        .bind(worker)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(jobs)
    }

    /// Keeps the worker's jobs alive; returns the ids of those whose cancellation was
    /// requested.
    pub async fn heartbeat(&self, worker: &str, jobs: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_scalar::<_, Option<Uuid>>(
            "update job set heartbeat_at = now()
             where job_id = any($1) and attempted_by = $2 and state = 'running'
             returning case when cancel_requested then job_id end",
        )
        .bind(jobs)
        .bind(worker)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .flatten()
        .collect())
    }

    /// Runs `update job set {set}` on `job` if this worker still holds it; `$1` is the job
    /// id, `$2` the attempt, `$3` an error text and `$4` a delay in seconds.
    async fn finish(
        &self,
        job: &ClaimedJob,
        set: &str,
        error: &str,
        delay: Duration,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "update job set {set} where job_id = $1 and attempt = $2 and state = 'running'
               and $3::text is not null and $4::float8 is not null"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(job.job_id.as_uuid())
            .bind(job.attempt)
            .bind(error)
            .bind(delay.as_secs_f64())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The job succeeded. False when the worker no longer held it.
    pub async fn complete(&self, job: &ClaimedJob) -> Result<bool, StoreError> {
        self.finish(
            job,
            "state = 'completed', finalized_at = now(), cancel_requested = false",
            "",
            Duration::ZERO,
        )
        .await
    }

    /// The attempt failed: retried after `backoff`, or discarded when it was the last.
    pub async fn fail(
        &self,
        job: &ClaimedJob,
        error: &str,
        backoff: Duration,
    ) -> Result<bool, StoreError> {
        let set = format!(
            "state = case when attempt >= max_attempts then 'discarded' else 'retryable' end,
             finalized_at = case when attempt >= max_attempts then now() end,
             scheduled_at = now() + make_interval(secs => $4), {APPEND_ERROR}"
        );
        self.finish(job, &set, error, backoff).await
    }

    /// The job cannot succeed (a permanent refusal): no further attempts.
    pub async fn discard(&self, job: &ClaimedJob, error: &str) -> Result<bool, StoreError> {
        let set = format!("state = 'discarded', finalized_at = now(), {APPEND_ERROR}");
        self.finish(job, &set, error, Duration::ZERO).await
    }

    /// Microsoft asked to wait: run again after `delay` without spending an attempt.
    /// Past `max_snoozes` the snooze counts as a failure, so a tenant throttled forever
    /// still ends.
    pub async fn snooze(
        &self,
        job: &ClaimedJob,
        delay: Duration,
        reason: &str,
        max_snoozes: i32,
    ) -> Result<bool, StoreError> {
        if job.snoozes >= max_snoozes {
            return self
                .fail(
                    job,
                    &format!("{reason} (snoozed {max_snoozes} times)"),
                    delay,
                )
                .await;
        }
        self.finish(
            job,
            "state = 'scheduled', attempt = attempt - 1, snoozes = snoozes + 1,
             scheduled_at = now() + make_interval(secs => $4), last_error = $3",
            reason,
            delay,
        )
        .await
    }

    /// Gives a running job back untouched (shutdown before it finished).
    pub async fn release(&self, job: &ClaimedJob) -> Result<bool, StoreError> {
        self.finish(
            job,
            "state = 'available', attempt = attempt - 1, scheduled_at = now()",
            "",
            Duration::ZERO,
        )
        .await
    }

    /// Gives back every job `worker` still holds (its shutdown grace ran out).
    pub async fn release_worker(&self, worker: &str) -> Result<u64, StoreError> {
        let released = sqlx::query(
            "update job set state = 'available', attempt = attempt - 1, scheduled_at = now()
             where attempted_by = $1 and state = 'running'",
        )
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(released.rows_affected())
    }

    /// The job stopped because its cancellation was requested.
    pub async fn cancelled(&self, job: &ClaimedJob) -> Result<bool, StoreError> {
        self.finish(
            job,
            "state = 'cancelled', finalized_at = now(), last_error = 'cancelled while running'",
            "",
            Duration::ZERO,
        )
        .await
    }

    /// Jobs whose worker stopped heartbeating for `lease`, or that outran `horizon`, go back
    /// to the queue (or are discarded when that was their last attempt). Leader only.
    pub async fn rescue(&self, lease: Duration, horizon: Duration) -> Result<u64, StoreError> {
        let rescued = sqlx::query(
            "update job set
                 state = case when attempt >= max_attempts then 'discarded' else 'retryable' end,
                 finalized_at = case when attempt >= max_attempts then now() end,
                 scheduled_at = now(),
                 errors = (case when jsonb_array_length(errors) >= 10 then errors - 0 else errors end)
                     || jsonb_build_array(jsonb_build_object('attempt', attempt, 'at', now(), 'error', lost.why)),
                 last_error = lost.why
             from (
                 select job_id, case when not exists (
                          select 1 from pg_locks l
                          where l.locktype = 'advisory' and l.granted and l.objsubid = 1
                            and l.database = (select oid from pg_database where datname = current_database())
                            and ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(j.attempted_by, 0))
                        then 'worker lost: its process or database connection ended'
                        else 'worker lost: no heartbeat' end as why,
                        heartbeat_at, attempted_at
                 from job j where state = 'running'
             ) as lost
             where job.job_id = lost.job_id
               and (lost.why like '%process%'
                    or lost.heartbeat_at < now() - make_interval(secs => $1)
                    or lost.attempted_at < now() - make_interval(secs => $2))",
        )
        .bind(lease.as_secs_f64())
        .bind(horizon.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(rescued.rows_affected())
    }

    /// Deletes finished jobs older than `retention`. Leader only.
    pub async fn prune(&self, retention: Duration) -> Result<u64, StoreError> {
        let pruned = sqlx::query(
            "delete from job where job_id in (
                 select job_id from job where finalized_at < now() - make_interval(secs => $1) limit 1000)",
        )
        .bind(retention.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(pruned.rows_affected())
    }

    /// Counts by kind and state, for `/metrics`.
    pub async fn depth(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "select kind, state, count(*) from job
             where state in ('available', 'scheduled', 'retryable', 'running')
             group by kind, state order by kind, state",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Seconds between due and started, of jobs started in the last five minutes, as
    /// (p50, p99, count), for `/metrics`.
    pub async fn latency(&self) -> Result<(f64, f64, i64), StoreError> {
        let row: (Option<f64>, Option<f64>, i64) = sqlx::query_as(
            "select percentile_cont(0.5) within group (order by wait),
                    percentile_cont(0.99) within group (order by wait), count(*)
             from (select greatest(extract(epoch from attempted_at - scheduled_at), 0)::float8 as wait
                   from job where attempted_at > now() - interval '5 minutes') waits",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.0.unwrap_or(0.0), row.1.unwrap_or(0.0), row.2))
    }
}

/// The API's side: an MSP's jobs.
pub(crate) async fn list(
    db: &PgPool,
    msp: MspId,
    visible: Option<Vec<Uuid>>,
    filter: &JobFilter,
    page: crate::Page,
) -> Result<Vec<JobRecord>, StoreError> {
    let sql = format!(
        "select {JOB_COLUMNS} from job
         where msp_id = $1 and ($2::uuid[] is null or organization_id = any($2))
           and ($3::uuid is null or organization_id = $3) and ($4::text is null or kind = $4)
           and ($5::text is null or state = $5) and ($6::uuid is null or job_id < $6)
         order by job_id desc limit $7"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(visible)
        .bind(filter.organization.map(|o| o.as_uuid()))
        .bind(&filter.kind)
        .bind(&filter.state)
        .bind(page.after)
        .bind(i64::from(page.limit))
        .fetch_all(db)
        .await?)
}

#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub organization: Option<OrganizationId>,
    pub kind: Option<String>,
    pub state: Option<String>,
}

pub(crate) async fn find(
    db: &PgPool,
    msp: MspId,
    visible: &Option<Vec<Uuid>>,
    id: JobId,
) -> Result<JobRecord, StoreError> {
    let sql = format!(
        "select {JOB_COLUMNS} from job where msp_id = $1 and job_id = $2 and ($3::uuid[] is null or organization_id = any($3))"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(id.as_uuid())
        .bind(visible)
        .fetch_optional(db)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Runs a failed or cancelled job again with fresh attempts.
pub(crate) async fn retry(db: &PgPool, msp: MspId, id: JobId) -> Result<(), StoreError> {
    let updated = sqlx::query(
        "update job set state = 'available', attempt = 0, snoozes = 0, finalized_at = null,
             scheduled_at = now(), cancel_requested = false
         where msp_id = $1 and job_id = $2 and state in ('discarded', 'cancelled', 'retryable', 'scheduled')",
    )
    .bind(msp.as_uuid())
    .bind(id.as_uuid())
    .execute(db)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.constraint() == Some("job_unique_idx") => {
            StoreError::JobConflict("another job for the same work is already queued or running")
        }
        _ => StoreError::Database(e),
    })?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::JobConflict(
            "only failed, cancelled or waiting jobs can be retried",
        ));
    }
    Ok(())
}

/// Cancels a job: at once when it waits, at its next heartbeat when it runs.
pub(crate) async fn cancel(db: &PgPool, msp: MspId, id: JobId) -> Result<(), StoreError> {
    let updated = sqlx::query(
        "update job set
             state = case when state = 'running' then state else 'cancelled' end,
             finalized_at = case when state = 'running' then null else now() end,
             cancel_requested = state = 'running'
         where msp_id = $1 and job_id = $2 and state in ('available', 'scheduled', 'retryable', 'running')",
    )
    .bind(msp.as_uuid())
    .bind(id.as_uuid())
    .execute(db)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::JobConflict("the job has already finished"));
    }
    Ok(())
}
