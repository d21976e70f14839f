//! Discovery runs: the run record, the staging area pages stream into, and the one
//! transaction that applies a finished run to the inventory. Staging is what keeps a
//! tenant of 100,000 users out of memory, and applying in one transaction is what keeps
//! readers from ever seeing half a run.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use tenantry_domain::{DiscoveryRunId, MspId, OrganizationId};
use uuid::Uuid;

use crate::error::StoreError;
use crate::queue::{self, Enqueued, NewJob};
use crate::sealing::Keyring;

/// The job kind that runs a discovery.
pub const DISCOVERY_JOB: &str = "discovery";

/// Why a run started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Added,
    Schedule,
    Manual,
    Webhook,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Added => "added",
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Webhook => "webhook",
        }
    }
}

/// `full` reads every section afresh; `delta` reads users and groups from their delta
/// links (and the members of changed groups) and leaves the other sections as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Full,
    Delta,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Delta => "delta",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "full" => Some(Mode::Full),
            "delta" => Some(Mode::Delta),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct RunRecord {
    pub run_id: Uuid,
    pub organization_id: Uuid,
    pub trigger: String,
    pub mode: String,
    pub state: String,
    pub job_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub sections: serde_json::Value,
    pub graph_requests: i32,
    pub throttled: i32,
    pub error: Option<String>,
}

const RUN_COLUMNS: &str = "run_id, organization_id, trigger, mode, state, job_id, created_at, started_at, finished_at, sections, graph_requests, throttled, error";

/// Queues a discovery run on the caller's connection, which must be inside a transaction
/// (the job and its run row must become visible together). When one is already queued or
/// running for the organization, that run is returned instead.
pub async fn queue_run(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    msp: MspId,
    organization: OrganizationId,
    trigger: Trigger,
    mode: Mode,
) -> Result<(DiscoveryRunId, bool), StoreError> {
    let run = DiscoveryRunId::new();
    let job = NewJob {
        kind: DISCOVERY_JOB.into(),
        args: serde_json::json!({"run_id": run, "organization_id": organization}),
        msp_id: Some(msp),
        organization_id: Some(organization),
        unique_key: Some(format!("discovery:{organization}")),
        max_attempts: 5,
        priority: if trigger == Trigger::Schedule { 3 } else { 2 },
        run_at: None,
    };
    let conn: &mut PgConnection = tx;
    match queue::enqueue(conn, &job).await? {
        Enqueued::Inserted(job_id) => {
            sqlx::query(
                "insert into discovery_run (run_id, msp_id, organization_id, trigger, mode, job_id)
                 values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(run.as_uuid())
            .bind(msp.as_uuid())
            .bind(organization.as_uuid())
            .bind(trigger.as_str())
            .bind(mode.as_str())
            .bind(job_id.as_uuid())
            .execute(&mut *conn)
            .await?;
            Ok((run, true))
        }
        Enqueued::Duplicate(job_id) => {
            let existing: Uuid =
                sqlx::query_scalar("select run_id from discovery_run where job_id = $1")
                    .bind(job_id.as_uuid())
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt(format!("job {job_id} has no run")))?;
            Ok((DiscoveryRunId::from_uuid(existing), false))
        }
    }
}

pub(crate) async fn list_runs(
    db: &PgPool,
    msp: MspId,
    organization: OrganizationId,
    page: crate::Page,
) -> Result<Vec<RunRecord>, StoreError> {
    let sql = format!(
        "select {RUN_COLUMNS} from discovery_run
         where msp_id = $1 and organization_id = $2 and ($3::uuid is null or run_id < $3)
         order by run_id desc limit $4"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(organization.as_uuid())
        .bind(page.after)
        .bind(i64::from(page.limit))
        .fetch_all(db)
        .await?)
}

pub(crate) async fn find_run(
    db: &PgPool,
    msp: MspId,
    organization: OrganizationId,
    run: DiscoveryRunId,
) -> Result<RunRecord, StoreError> {
    let sql = format!(
        "select {RUN_COLUMNS} from discovery_run where msp_id = $1 and organization_id = $2 and run_id = $3"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(organization.as_uuid())
        .bind(run.as_uuid())
        .fetch_optional(db)
        .await?
        .ok_or(StoreError::NotFound)
}

/// What a worker needs to run a discovery.
pub struct RunContext {
    pub run: RunRecord,
    pub msp_id: MspId,
    pub tenant_id: Uuid,
    pub client_id: Uuid,
    pub client_secret: SecretString,
}

/// One staged object.
pub struct StagedObject {
    pub object_id: String,
    pub data: serde_json::Value,
    pub removed: bool,
}

/// A section whose staged rows an apply should take.
#[derive(Clone, Debug)]
pub struct Applied {
    pub section: &'static str,
    /// The delta link to keep for the next delta run (users, groups).
    pub delta_link: Option<String>,
}

/// The workers' side of discovery. Not MSP-scoped: workers act for every MSP, from the
/// organization a job names.
#[derive(Clone)]
pub struct DiscoveryStore {
    pool: PgPool,
    keyring: Option<std::sync::Arc<Keyring>>,
}

impl DiscoveryStore {
    /// The connection pool, for the leader's other maintenance.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn new(pool: PgPool, keyring: Option<std::sync::Arc<Keyring>>) -> Self {
        Self { pool, keyring }
    }

    /// Marks the run running and opens the organization's credentials.
    pub async fn start(&self, run: DiscoveryRunId) -> Result<RunContext, StoreError> {
        let sql = format!(
            "update discovery_run set state = 'running', started_at = coalesce(started_at, now())
             where run_id = $1 and state in ('queued', 'running') returning {RUN_COLUMNS}"
        );
        let record: RunRecord = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(run.as_uuid())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        let stored = crate::organizations::stored_credential(
            &self.pool,
            self.keyring.as_deref(),
            OrganizationId::from_uuid(record.organization_id),
        )
        .await?;
        Ok(RunContext {
            run: record,
            msp_id: stored.msp_id,
            tenant_id: stored.tenant_id,
            client_id: stored.client_id,
            client_secret: stored.secret,
        })
    }

    /// The stored delta link of a section, if a full run has left one.
    pub async fn delta_link(
        &self,
        organization: Uuid,
        section: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "select delta_link from discovery_cursor where organization_id = $1 and section = $2",
        )
        .bind(organization)
        .bind(section)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Adds one page of objects to the run's staging area.
    pub async fn stage(
        &self,
        run: Uuid,
        section: &str,
        objects: &[StagedObject],
    ) -> Result<(), StoreError> {
        if objects.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = objects.iter().map(|o| o.object_id.as_str()).collect();
        let data: Vec<&serde_json::Value> = objects.iter().map(|o| &o.data).collect();
        let removed: Vec<bool> = objects.iter().map(|o| o.removed).collect();
        sqlx::query(
            "insert into discovery_stage (run_id, section, object_id, data, removed)
             select $1, $2, * from unnest($3::text[], $4::jsonb[], $5::bool[])
             on conflict (run_id, section, object_id) do update set data = excluded.data, removed = excluded.removed",
        )
        .bind(run)
        .bind(section)
        .bind(&ids)
        .bind(&data)
        .bind(&removed)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ids staged (not as removals) in a section, e.g. the groups whose members to read.
    pub async fn staged_ids(&self, run: Uuid, section: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "select object_id from discovery_stage where run_id = $1 and section = $2 and not removed order by object_id",
        )
        .bind(run)
        .bind(section)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The delta link a section staged (kept for an apply after a resumed attempt).
    pub async fn staged_delta_link(
        &self,
        run: Uuid,
        section: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "select data #>> '{}' from discovery_stage
             where run_id = $1 and section = 'delta_link' and object_id = $2",
        )
        .bind(run)
        .bind(section)
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    /// The expiry of the client secret in use, as the app-secret section staged it.
    pub async fn staged_secret_expiry(
        &self,
        run: Uuid,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let text: Option<Option<String>> = sqlx::query_scalar(
            "select data->'secret_in_use'->>'expires_at' from discovery_stage
             where run_id = $1 and section = 'app_secret' limit 1",
        )
        .bind(run)
        .fetch_optional(&self.pool)
        .await?;
        Ok(text
            .flatten()
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    /// Drops what a section staged (before it is read again from the start).
    pub async fn clear_section(&self, run: Uuid, section: &str) -> Result<(), StoreError> {
        sqlx::query("delete from discovery_stage where run_id = $1 and section = $2")
            .bind(run)
            .bind(section)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a section's status (`{"status": ..., "count": ...}`) and request counters.
    pub async fn record_section(
        &self,
        run: Uuid,
        section: &str,
        status: &serde_json::Value,
        requests: i32,
        throttled: i32,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "update discovery_run set sections = jsonb_set(sections, array[$2], $3),
                 graph_requests = graph_requests + $4, throttled = throttled + $5
             where run_id = $1",
        )
        .bind(run)
        .bind(section)
        .bind(status)
        .bind(requests)
        .bind(throttled)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Applies the staged sections to the inventory and finishes the run, in one
    /// transaction.
    pub async fn apply(
        &self,
        run: &RunRecord,
        msp: MspId,
        applied: &[Applied],
        secret_expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let full = run.mode == Mode::Full.as_str();
        let mut tx = self.pool.begin().await?;
        // Lock the organization row: an organization deleted meanwhile ends the run here.
        let exists: Option<Uuid> = sqlx::query_scalar(
            "select organization_id from organization where organization_id = $1 for update",
        )
        .bind(run.organization_id)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        for section in applied {
            apply_section(
                &mut tx,
                run.run_id,
                run.organization_id,
                msp,
                section.section,
                full,
            )
            .await?;
            if let Some(link) = &section.delta_link {
                sqlx::query(
                    "insert into discovery_cursor (organization_id, section, delta_link) values ($1, $2, $3)
                     on conflict (organization_id, section) do update set delta_link = excluded.delta_link, updated_at = now()",
                )
                .bind(run.organization_id)
                .bind(section.section)
                .bind(link)
                .execute(&mut *tx)
                .await?;
            }
        }
        if let Some(expires) = secret_expires_at {
            sqlx::query(
                "update organization set secret_expires_at = $2,
                     status = case when status in ('connected', 'secret_expiring')
                                   then case when $2 < now() + interval '30 days' then 'secret_expiring' else 'connected' end
                                   else status end
                 where organization_id = $1",
            )
            .bind(run.organization_id)
            .bind(expires)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("delete from discovery_stage where run_id = $1")
            .bind(run.run_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "update discovery_run set state = 'succeeded', finished_at = now(), error = null,
                 sections = coalesce((select jsonb_object_agg(key,
                     case when value->>'status' = 'staged' then jsonb_set(value, '{status}', '\"done\"') else value end)
                     from jsonb_each(sections)), '{}')
             where run_id = $1",
        )
        .bind(run.run_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends a run that will not be retried.
    pub async fn fail(&self, run: Uuid, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "update discovery_run set state = 'failed', finished_at = now(), error = $2 where run_id = $1 and state in ('queued', 'running')",
        )
        .bind(run)
        .bind(error)
        .execute(&self.pool)
        .await?;
        sqlx::query("delete from discovery_stage where run_id = $1")
            .bind(run)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Keeps the run's last error visible while its job waits for another attempt.
    pub async fn note_error(&self, run: Uuid, error: &str) -> Result<(), StoreError> {
        sqlx::query("update discovery_run set error = $2 where run_id = $1")
            .bind(run)
            .bind(error)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Runs whose job ended without the worker closing them (rescued on its last
    /// attempt, cancelled) are closed with the job's outcome. Leader only.
    pub async fn close_orphaned_runs(&self) -> Result<u64, StoreError> {
        let closed = sqlx::query(
            "update discovery_run r set
                 state = case when j.state = 'cancelled' then 'cancelled' else 'failed' end,
                 finished_at = now(), error = coalesce(j.last_error, r.error)
             from job j
             where r.job_id = j.job_id and r.state in ('queued', 'running')
               and j.state in ('discarded', 'cancelled')",
        )
        .execute(&self.pool)
        .await?;
        Ok(closed.rows_affected())
    }

    /// Queues a run for every organization whose schedule is due, and moves each
    /// schedule on with `next`. Leader only; rows are locked, so a second leader (after
    /// a failover) cannot queue the same scan twice.
    pub async fn queue_due_scans(
        &self,
        limit: i64,
        next: impl Fn(Option<&str>) -> DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        let due: Vec<(Uuid, Uuid, Option<String>)> = sqlx::query_as(
            "select organization_id, msp_id, scan_schedule from organization
             where next_scan_at <= now() order by next_scan_at limit $1 for update skip locked",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        for (organization, msp, schedule) in &due {
            queue_run(
                &mut tx,
                MspId::from_uuid(*msp),
                OrganizationId::from_uuid(*organization),
                Trigger::Schedule,
                Mode::Full,
            )
            .await?;
            sqlx::query("update organization set next_scan_at = $2 where organization_id = $1")
                .bind(organization)
                .bind(next(schedule.as_deref()))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(due.len())
    }
}

/// Moves one section's staged rows into the inventory.
async fn apply_section(
    tx: &mut PgConnection,
    run: Uuid,
    organization: Uuid,
    msp: MspId,
    section: &str,
    full: bool,
) -> Result<(), StoreError> {
    let statements: Vec<&str> = match (section, full) {
        ("users", true) => vec![
            "delete from inventory_user where organization_id = $1",
            USERS_UPSERT,
        ],
        ("users", false) => vec![
            "delete from inventory_user u using discovery_stage s
             where s.run_id = $2 and s.section = 'users' and s.removed and u.organization_id = $1
               and u.user_id = s.object_id::uuid",
            "delete from inventory_group_member m using discovery_stage s
             where s.run_id = $2 and s.section = 'users' and s.removed and m.organization_id = $1
               and m.member_id = s.object_id::uuid",
            "delete from inventory_role_member m using discovery_stage s
             where s.run_id = $2 and s.section = 'users' and s.removed and m.organization_id = $1
               and m.member_id = s.object_id::uuid",
            USERS_UPSERT,
        ],
        ("groups", true) => vec![
            "delete from inventory_group where organization_id = $1",
            GROUPS_UPSERT,
        ],
        ("groups", false) => vec![
            "delete from inventory_group g using discovery_stage s
             where s.run_id = $2 and s.section = 'groups' and s.removed and g.organization_id = $1
               and g.group_id = s.object_id::uuid",
            "delete from inventory_group_member m using discovery_stage s
             where s.run_id = $2 and s.section = 'groups' and s.removed and m.organization_id = $1
               and m.group_id = s.object_id::uuid",
            GROUPS_UPSERT,
        ],
        ("group_members", true) => vec![
            "delete from inventory_group_member where organization_id = $1",
            MEMBERS_INSERT,
        ],
        ("group_members", false) => vec![
            "delete from inventory_group_member m using discovery_stage s
             where s.run_id = $2 and s.section = 'member_groups' and m.organization_id = $1
               and m.group_id = s.object_id::uuid",
            MEMBERS_INSERT,
        ],
        ("directory_roles", _) => vec![
            "delete from inventory_role where organization_id = $1",
            "delete from inventory_role_member where organization_id = $1",
            "insert into inventory_role (organization_id, role_id, role_template_id, display_name)
             select $1, s.object_id::uuid, (s.data->>'roleTemplateId')::uuid, s.data->>'displayName'
             from discovery_stage s where s.run_id = $2 and s.section = 'directory_roles'",
            "insert into inventory_role_member (organization_id, role_id, member_id, member_type)
             select $1, (s.data->>'role_id')::uuid, (s.data->>'member_id')::uuid, s.data->>'type'
             from discovery_stage s where s.run_id = $2 and s.section = 'role_members'
             on conflict do nothing",
        ],
        (_, _) => vec![
            "delete from inventory_object where organization_id = $1 and section = $2",
            "insert into inventory_object (organization_id, section, object_id, display_name, data)
             select $1, $2, s.object_id, coalesce(s.data->>'displayName', s.data->>'deviceName', s.data->>'userDisplayName', s.data->>'skuPartNumber', s.data->>'id'), s.data
             from discovery_stage s where s.run_id = $3 and s.section = $2 and not s.removed",
        ],
    };
    // Each statement gets the leading parameters it uses: (organization, run, MSP), or
    // (organization, section, run) for the listed sections.
    let params: [Param<'_>; 3] = match section {
        "users" | "groups" | "group_members" | "directory_roles" => [
            Param::Id(organization),
            Param::Id(run),
            Param::Id(msp.as_uuid()),
        ],
        _ => [
            Param::Id(organization),
            Param::Text(section),
            Param::Id(run),
        ],
    };
    for statement in statements {
        let used = (1..=params.len())
            .rev()
            .find(|n| statement.contains(&format!("${n}")))
            .unwrap_or(0);
        let mut query = sqlx::query(statement);
        for param in &params[..used] {
            query = match param {
                Param::Id(id) => query.bind(*id),
                Param::Text(text) => query.bind(*text),
            };
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// A parameter of the apply statements.
enum Param<'a> {
    Id(Uuid),
    Text(&'a str),
}

const USERS_UPSERT: &str = "insert into inventory_user
        (msp_id, organization_id, user_id, display_name, user_principal_name, mail, department, job_title, account_enabled, data)
    select $3, $1, s.object_id::uuid, s.data->>'displayName', s.data->>'userPrincipalName', s.data->>'mail',
           s.data->>'department', s.data->>'jobTitle', (s.data->>'accountEnabled')::boolean, s.data
    from discovery_stage s where s.run_id = $2 and s.section = 'users' and not s.removed
    on conflict (organization_id, user_id) do update set
        display_name = excluded.display_name, user_principal_name = excluded.user_principal_name,
        mail = excluded.mail, department = excluded.department, job_title = excluded.job_title,
        account_enabled = excluded.account_enabled, data = excluded.data";

const GROUPS_UPSERT: &str = "insert into inventory_group
        (msp_id, organization_id, group_id, display_name, mail, kind, data)
    select $3, $1, s.object_id::uuid, s.data->>'displayName', s.data->>'mail',
           case when coalesce(s.data->'groupTypes', '[]'::jsonb) ? 'Unified' then 'm365'
                when coalesce((s.data->>'securityEnabled')::boolean, false) then 'security'
                else 'distribution' end,
           s.data
    from discovery_stage s where s.run_id = $2 and s.section = 'groups' and not s.removed
    on conflict (organization_id, group_id) do update set
        display_name = excluded.display_name, mail = excluded.mail, kind = excluded.kind, data = excluded.data";

const MEMBERS_INSERT: &str =
    "insert into inventory_group_member (organization_id, group_id, member_id, member_type)
    select $1, (s.data->>'group_id')::uuid, (s.data->>'member_id')::uuid, s.data->>'type'
    from discovery_stage s where s.run_id = $2 and s.section = 'group_members'
    on conflict do nothing";
