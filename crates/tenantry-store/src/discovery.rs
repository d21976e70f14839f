//! Discovery runs: the run record, the writing of each page as it arrives, and the one
//! transaction that applies a finished run to the inventory.
//!
//! Pages go straight into the inventory tables under the run's own generation (writing
//! each page at once is what keeps a tenant of 100,000 users out of memory); readers see
//! only the organization's current generation (`organization.inventory_generation`), and
//! applying a run switches it in one transaction, so they never see half a run. What is
//! not inventory (removals and refreshed groups of delta runs, delta links) waits in
//! `discovery_stage`.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use tenantry_domain::discovery::Section;
use tenantry_domain::{DiscoveryRunId, MspId, OrganizationId};
use uuid::Uuid;

use crate::error::StoreError;
use crate::jobs::DiscoveryJob;
use crate::queue::{self, Enqueued, NewJob};
use crate::sealing::Keyring;

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
    #[sqlx(try_from = "String")]
    pub state: tenantry_domain::RunState,
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
    let args = DiscoveryJob {
        run_id: run,
        organization_id: organization,
    };
    let job = NewJob::of(&args, msp, Some(organization))?
        .max_attempts(5)
        .priority(if trigger == Trigger::Schedule { 3 } else { 2 });
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

/// Something a run keeps aside until it is applied (refreshed groups, delta links).
pub struct StagedObject {
    pub object_id: String,
    pub data: serde_json::Value,
}

/// A member of a group or directory role.
pub struct Membership {
    pub parent: Uuid,
    pub member: Uuid,
    /// `user`, `group`, `servicePrincipal`, ...
    pub kind: String,
}

/// A section an apply should take (it was written completely by this run or an earlier
/// attempt of it).
#[derive(Clone, Debug)]
pub struct Applied {
    pub section: &'static str,
    /// The delta link to keep for the next delta run (users, groups).
    pub delta_link: Option<String>,
}

/// Which run writes, for which organization and MSP: every row a run writes carries them.
#[derive(Clone, Copy, Debug)]
pub struct RunKeys {
    pub run: Uuid,
    pub organization: Uuid,
    pub msp: MspId,
}

/// Where a section's rows are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    Users,
    Groups,
    GroupMembers,
    Roles,
    RoleMembers,
    /// `inventory_object`, one section of it.
    Objects,
    /// `discovery_stage`: refreshed groups (`member_groups`) and delta links.
    Stage,
}

impl Table {
    fn of(section: &str) -> Self {
        match section {
            "users" => Table::Users,
            "groups" => Table::Groups,
            "group_members" => Table::GroupMembers,
            "directory_roles" => Table::Roles,
            "role_members" => Table::RoleMembers,
            "member_groups" | "delta_link" => Table::Stage,
            _ => Table::Objects,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Table::Users => "inventory_user",
            Table::Groups => "inventory_group",
            Table::GroupMembers => "inventory_group_member",
            Table::Roles => "inventory_role",
            Table::RoleMembers => "inventory_role_member",
            Table::Objects => "inventory_object",
            Table::Stage => "discovery_stage",
        }
    }
}

/// The inventory tables, each holding generations.
const INVENTORY_TABLES: [Table; 6] = [
    Table::Users,
    Table::Groups,
    Table::GroupMembers,
    Table::Roles,
    Table::RoleMembers,
    Table::Objects,
];

/// The rows a section of a full run keeps from the previous generation when the run did
/// not read it (Microsoft refused it): `(table, section filter for inventory_object)`.
fn section_rows(section: &str) -> Vec<(Table, Option<&str>)> {
    match Table::of(section) {
        Table::Roles => vec![(Table::Roles, None), (Table::RoleMembers, None)],
        Table::Objects => vec![(Table::Objects, Some(section))],
        Table::Stage => Vec::new(),
        table => vec![(table, None)],
    }
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

    /// Writes one page of a section into the run's generation of the inventory. `objects`
    /// is the page's `value` array as Microsoft sent it: PostgreSQL parses it once, and
    /// nothing is built object by object on the way. Objects are keyed by `id_field`; one
    /// listed twice in the page is written once, as last listed. A delta run's `@removed`
    /// items (users, groups) are kept aside for the apply instead.
    pub async fn write_page(
        &self,
        keys: RunKeys,
        section: &str,
        id_field: &str,
        objects: &str,
    ) -> Result<(), StoreError> {
        let query = match Table::of(section) {
            Table::Users => sqlx::query(WRITE_USERS),
            Table::Groups => sqlx::query(WRITE_GROUPS),
            Table::Roles => sqlx::query(WRITE_ROLES),
            Table::Objects => sqlx::query(WRITE_OBJECTS),
            Table::GroupMembers | Table::RoleMembers | Table::Stage => {
                return Err(StoreError::Corrupt(format!(
                    "{section} is not written from pages"
                )));
            }
        };
        let query = query.bind(keys.organization).bind(keys.run).bind(objects);
        let query = match Table::of(section) {
            Table::Users | Table::Groups => query.bind(keys.msp.as_uuid()),
            Table::Objects => query.bind(section).bind(id_field),
            _ => query,
        };
        query.execute(&self.pool).await?;
        Ok(())
    }

    /// Writes members of groups (`group_members`) or directory roles (`role_members`) into
    /// the run's generation.
    pub async fn write_memberships(
        &self,
        keys: RunKeys,
        section: &str,
        members: &[Membership],
    ) -> Result<(), StoreError> {
        let sql = match Table::of(section) {
            Table::GroupMembers => WRITE_GROUP_MEMBERS,
            Table::RoleMembers => WRITE_ROLE_MEMBERS,
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "{section} holds no memberships"
                )));
            }
        };
        if members.is_empty() {
            return Ok(());
        }
        let parents: Vec<Uuid> = members.iter().map(|m| m.parent).collect();
        let ids: Vec<Uuid> = members.iter().map(|m| m.member).collect();
        let kinds: Vec<&str> = members.iter().map(|m| m.kind.as_str()).collect();
        sqlx::query(sql)
            .bind(keys.organization)
            .bind(keys.run)
            .bind(&parents)
            .bind(&ids)
            .bind(&kinds)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Keeps objects aside until the run is applied.
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
        sqlx::query(
            "insert into discovery_stage (run_id, section, object_id, data)
             select $1, $2, * from unnest($3::text[], $4::jsonb[])
             where exists (select 1 from discovery_run where run_id = $1 and state = 'running' for key share)
             on conflict (run_id, section, object_id) do update set data = excluded.data",
        )
        .bind(run)
        .bind(section)
        .bind(&ids)
        .bind(&data)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The groups this run wrote (all of them in a full run, the changed ones in a delta
    /// run): the groups whose members to read.
    pub async fn written_group_ids(&self, keys: RunKeys) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "select group_id::text from inventory_group
             where organization_id = $1 and generation = $2 order by group_id",
        )
        .bind(keys.organization)
        .bind(keys.run)
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

    /// The expiry of the client secret in use, as the app-secret section wrote it.
    pub async fn written_secret_expiry(
        &self,
        keys: RunKeys,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let text: Option<Option<String>> = sqlx::query_scalar(
            "select data->'secret_in_use'->>'expires_at' from inventory_object
             where organization_id = $1 and generation = $2 and section = 'app_secret' limit 1",
        )
        .bind(keys.organization)
        .bind(keys.run)
        .fetch_optional(&self.pool)
        .await?;
        Ok(text
            .flatten()
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    /// Drops what this run wrote of a section (before it is read again from the start).
    pub async fn clear_section(&self, keys: RunKeys, section: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_running(&mut tx, keys.run).await?;
        // The section's removals, its mark of a fresh delta round (a re-read may not be
        // one), and for members the groups they were read for.
        sqlx::query(
            "delete from discovery_stage where run_id = $1
               and (section = $2 or (section = 'fresh_round' and object_id = $2)
                    or ($2 = 'group_members' and section = 'member_groups'))",
        )
        .bind(keys.run)
        .bind(section)
        .execute(&mut *tx)
        .await?;
        for (table, object_section) in section_rows(section) {
            delete_generation(&mut tx, table, keys.organization, keys.run, object_section).await?;
        }
        tx.commit().await?;
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

    /// Applies the run's sections to the inventory and finishes the run, in one
    /// transaction: a full run's generation becomes the organization's inventory (keeping
    /// the previous generation's rows of sections it did not read), a delta run's rows
    /// and removals are merged into the current generation.
    pub async fn apply(
        &self,
        run: &RunRecord,
        msp: MspId,
        applied: &[Applied],
        secret_expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let full = run.mode == Mode::Full.as_str();
        let mut tx = self.pool.begin().await?;
        // Lock the organization row: an organization deleted meanwhile ends the run here,
        // and no other apply or action changes its generation until this one commits.
        let owner: Option<(Uuid, Uuid)> = sqlx::query_as(
            "select msp_id, inventory_generation from organization where organization_id = $1 for update",
        )
        .bind(run.organization_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((owner, current)) = owner else {
            return Err(StoreError::NotFound);
        };
        if owner != msp.as_uuid() {
            return Err(StoreError::Corrupt(format!(
                "run {} names another MSP than its organization",
                run.run_id
            )));
        }
        // Only a running run applies: a worker whose attempt was rescued, and whose run
        // another attempt has already applied or ended, changes nothing here.
        lock_running(&mut tx, run.run_id).await?;
        let organization = run.organization_id;
        if full {
            for section in Section::ALL {
                if applied.iter().any(|a| a.section == section.name()) {
                    continue;
                }
                for (table, object_section) in section_rows(section.name()) {
                    delete_generation(&mut tx, table, organization, run.run_id, object_section)
                        .await?;
                    carry_forward(
                        &mut tx,
                        table,
                        organization,
                        current,
                        run.run_id,
                        object_section,
                    )
                    .await?;
                }
            }
            sqlx::query(
                "update organization set inventory_generation = $2 where organization_id = $1",
            )
            .bind(organization)
            .bind(run.run_id)
            .execute(&mut *tx)
            .await?;
            for table in INVENTORY_TABLES {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "delete from {} where organization_id = $1 and generation <> $2",
                    table.name()
                )))
                .bind(organization)
                .bind(run.run_id)
                .execute(&mut *tx)
                .await?;
            }
        } else {
            for section in applied {
                merge_delta(&mut tx, run.run_id, organization, current, section.section).await?;
            }
            for table in INVENTORY_TABLES {
                delete_generation(&mut tx, table, organization, run.run_id, None).await?;
            }
        }
        for section in applied {
            if let Some(link) = &section.delta_link {
                sqlx::query(
                    "insert into discovery_cursor (organization_id, section, delta_link) values ($1, $2, $3)
                     on conflict (organization_id, section) do update set delta_link = excluded.delta_link, updated_at = now()",
                )
                .bind(organization)
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
            .bind(organization)
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

    /// Ends a run that will not be retried, dropping what it wrote (also when the run row
    /// went with its organization).
    pub async fn fail(&self, keys: RunKeys, error: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let ended = sqlx::query(
            "update discovery_run set state = 'failed', finished_at = now(), error = $2
             where run_id = $1 and state in ('queued', 'running')",
        )
        .bind(keys.run)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        let organization_gone: bool = sqlx::query_scalar(
            "select not exists (select 1 from organization where organization_id = $1)",
        )
        .bind(keys.organization)
        .fetch_one(&mut *tx)
        .await?;
        if ended.rows_affected() > 0 || organization_gone {
            drop_run_rows(&mut tx, keys.organization, keys.run).await?;
        }
        tx.commit().await?;
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
        let mut tx = self.pool.begin().await?;
        let closed: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "update discovery_run r set
                 state = case when j.state = 'cancelled' then 'cancelled' else 'failed' end,
                 finished_at = now(), error = coalesce(j.last_error, r.error)
             from job j
             where r.job_id = j.job_id and r.state in ('queued', 'running')
               and j.state in ('discarded', 'cancelled')
             returning r.organization_id, r.run_id",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (organization, run) in &closed {
            drop_run_rows(&mut tx, *organization, *run).await?;
        }
        tx.commit().await?;
        Ok(closed.len() as u64)
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

/// Locks a run that is still running (its writes and its apply hold this lock), or
/// refuses: the run was applied, failed or closed by another attempt, or is gone.
async fn lock_running(tx: &mut PgConnection, run: Uuid) -> Result<(), StoreError> {
    let running: Option<Uuid> = sqlx::query_scalar(
        "select run_id from discovery_run where run_id = $1 and state = 'running' for update",
    )
    .bind(run)
    .fetch_optional(&mut *tx)
    .await?;
    match running {
        Some(_) => Ok(()),
        None => Err(StoreError::JobConflict("the run is no longer running")),
    }
}

/// Deletes a generation's rows from one inventory table (of one section, for
/// `inventory_object`).
async fn delete_generation(
    tx: &mut PgConnection,
    table: Table,
    organization: Uuid,
    generation: Uuid,
    object_section: Option<&str>,
) -> Result<(), StoreError> {
    let sql = format!(
        "delete from {} where organization_id = $1 and generation = $2",
        table.name()
    );
    match object_section {
        Some(section) => {
            sqlx::query(sqlx::AssertSqlSafe(format!("{sql} and section = $3")))
                .bind(organization)
                .bind(generation)
                .bind(section)
                .execute(&mut *tx)
                .await?
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(organization)
                .bind(generation)
                .execute(&mut *tx)
                .await?
        }
    };
    Ok(())
}

/// Drops everything a run wrote: its generation and its staged rows.
async fn drop_run_rows(
    tx: &mut PgConnection,
    organization: Uuid,
    run: Uuid,
) -> Result<(), StoreError> {
    for table in INVENTORY_TABLES {
        delete_generation(tx, table, organization, run, None).await?;
    }
    sqlx::query("delete from discovery_stage where run_id = $1")
        .bind(run)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Moves the previous generation's rows of a section the run did not read into the run's
/// generation.
async fn carry_forward(
    tx: &mut PgConnection,
    table: Table,
    organization: Uuid,
    from: Uuid,
    to: Uuid,
    object_section: Option<&str>,
) -> Result<(), StoreError> {
    let sql = format!(
        "update {} set generation = $3 where organization_id = $1 and generation = $2",
        table.name()
    );
    let query = match object_section {
        Some(_) => sqlx::query(sqlx::AssertSqlSafe(format!("{sql} and section = $4"))),
        None => sqlx::query(sqlx::AssertSqlSafe(sql)),
    };
    let query = query.bind(organization).bind(from).bind(to);
    match object_section {
        Some(section) => query.bind(section).execute(&mut *tx).await?,
        None => query.execute(&mut *tx).await?,
    };
    Ok(())
}

/// Merges one section of a delta run into the current generation: removals first, then
/// the run's rows over the current ones.
async fn merge_delta(
    tx: &mut PgConnection,
    run: Uuid,
    organization: Uuid,
    current: Uuid,
    section: &str,
) -> Result<(), StoreError> {
    let statements: &[&'static str] = match section {
        "users" => &[
            // Gone: users the run saw removed, and after a fresh round (no delta link, or an
            // expired one) users it did not list; their memberships go with them.
            "with gone as (
                 select s.object_id::uuid as id from discovery_stage s
                 where s.run_id = $2 and s.section = 'users' and s.removed
                 union
                 select u.user_id from inventory_user u
                 where u.organization_id = $1 and u.generation = $3
                   and exists (select 1 from discovery_stage f where f.run_id = $2
                               and f.section = 'fresh_round' and f.object_id = 'users')
                   and not exists (select 1 from inventory_user r where r.organization_id = $1
                                   and r.generation = $2 and r.user_id = u.user_id)),
             users as (
                 delete from inventory_user where organization_id = $1 and generation = $3
                   and user_id in (select id from gone)),
             group_memberships as (
                 delete from inventory_group_member where organization_id = $1 and generation = $3
                   and member_id in (select id from gone))
             delete from inventory_role_member where organization_id = $1 and generation = $3
               and member_id in (select id from gone)",
            "insert into inventory_user (msp_id, organization_id, generation, user_id, display_name,
                 user_principal_name, mail, department, job_title, account_enabled, data)
             select msp_id, organization_id, $3, user_id, display_name, user_principal_name, mail,
                    department, job_title, account_enabled, data
             from inventory_user where organization_id = $1 and generation = $2
             on conflict (organization_id, generation, user_id) do update set
                 display_name = excluded.display_name, user_principal_name = excluded.user_principal_name,
                 mail = excluded.mail, department = excluded.department, job_title = excluded.job_title,
                 account_enabled = excluded.account_enabled, data = excluded.data",
        ],
        "groups" => &[
            // Gone: as for users; their memberships, either way, go with them.
            "with gone as (
                 select s.object_id::uuid as id from discovery_stage s
                 where s.run_id = $2 and s.section = 'groups' and s.removed
                 union
                 select g.group_id from inventory_group g
                 where g.organization_id = $1 and g.generation = $3
                   and exists (select 1 from discovery_stage f where f.run_id = $2
                               and f.section = 'fresh_round' and f.object_id = 'groups')
                   and not exists (select 1 from inventory_group r where r.organization_id = $1
                                   and r.generation = $2 and r.group_id = g.group_id)),
             groups as (
                 delete from inventory_group where organization_id = $1 and generation = $3
                   and group_id in (select id from gone))
             delete from inventory_group_member where organization_id = $1 and generation = $3
               and (group_id in (select id from gone) or member_id in (select id from gone))",
            "insert into inventory_group (msp_id, organization_id, generation, group_id, display_name, mail, kind, data)
             select msp_id, organization_id, $3, group_id, display_name, mail, kind, data
             from inventory_group where organization_id = $1 and generation = $2
             on conflict (organization_id, generation, group_id) do update set
                 display_name = excluded.display_name, mail = excluded.mail, kind = excluded.kind, data = excluded.data",
        ],
        "group_members" => &[
            "delete from inventory_group_member m using discovery_stage s
             where s.run_id = $2 and s.section = 'member_groups' and m.organization_id = $1
               and m.generation = $3 and m.group_id = s.object_id::uuid",
            "insert into inventory_group_member (organization_id, generation, group_id, member_id, member_type)
             select organization_id, $3, group_id, member_id, member_type
             from inventory_group_member where organization_id = $1 and generation = $2
             on conflict do nothing",
        ],
        // A delta run reads nothing else.
        _ => &[],
    };
    for statement in statements {
        sqlx::query(*statement)
            .bind(organization)
            .bind(run)
            .bind(current)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

// Page writers. Parameters: $1 organization, $2 generation, $3 the page's objects (a JSON
// array), then $4 the MSP (users, groups) or $4 the section and $5 the id field (listed
// sections).

/// The page's objects, each once (the last listing wins), with their ids.
macro_rules! page_cte {
    () => {
        "page as (
        select distinct on (e.d->>'id') e.d, e.d->>'id' as id
        from jsonb_array_elements($3::text::jsonb) with ordinality as e (d, n)
        where e.d ? 'id' and exists (select 1 from discovery_run
            where run_id = $2 and state = 'running' for key share)
        order by e.d->>'id', e.n desc)"
    };
}

/// A delta page's removals of `section`: kept aside, dropping what the run wrote of the
/// object, and an object present again cancels a removal kept earlier in the run.
macro_rules! removals_cte {
    ($section:literal, $table:literal, $id:literal) => {
        concat!(
            "removed as (
        insert into discovery_stage (run_id, section, object_id, data, removed)
        select $2, '", $section, "', id, d, true from page where d ? '@removed'
        on conflict (run_id, section, object_id) do update set data = excluded.data, removed = true),
    unwritten as (
        delete from ", $table, " where organization_id = $1 and generation = $2
          and ", $id, " in (select id::uuid from page where d ? '@removed')),
    revived as (
        delete from discovery_stage where run_id = $2 and section = '", $section, "'
          and object_id in (select id from page where not d ? '@removed'))"
        )
    };
}

const WRITE_USERS: &str = concat!(
    "with ",
    page_cte!(),
    ", ",
    removals_cte!("users", "inventory_user", "user_id"),
    "
    insert into inventory_user
        (organization_id, generation, user_id, display_name, user_principal_name, mail, department, job_title, account_enabled, data, msp_id)
    select $1, $2, id::uuid, d->>'displayName', d->>'userPrincipalName', d->>'mail',
           d->>'department', d->>'jobTitle', (d->>'accountEnabled')::boolean, d, $4
    from page where not d ? '@removed'
    on conflict (organization_id, generation, user_id) do update set
        display_name = excluded.display_name, user_principal_name = excluded.user_principal_name,
        mail = excluded.mail, department = excluded.department, job_title = excluded.job_title,
        account_enabled = excluded.account_enabled, data = excluded.data"
);

const WRITE_GROUPS: &str = concat!(
    "with ",
    page_cte!(),
    ", ",
    removals_cte!("groups", "inventory_group", "group_id"),
    "
    insert into inventory_group
        (organization_id, generation, group_id, display_name, mail, kind, data, msp_id)
    select $1, $2, id::uuid, d->>'displayName', d->>'mail',
           case when coalesce(d->'groupTypes', '[]'::jsonb) ? 'Unified' then 'm365'
                when coalesce((d->>'securityEnabled')::boolean, false) then 'security'
                else 'distribution' end,
           d, $4
    from page where not d ? '@removed'
    on conflict (organization_id, generation, group_id) do update set
        display_name = excluded.display_name, mail = excluded.mail, kind = excluded.kind, data = excluded.data"
);

const WRITE_ROLES: &str = concat!(
    "with ",
    page_cte!(),
    "
    insert into inventory_role (organization_id, generation, role_id, role_template_id, display_name)
    select $1, $2, id::uuid, (d->>'roleTemplateId')::uuid, d->>'displayName' from page
    on conflict (organization_id, generation, role_id) do update set
        role_template_id = excluded.role_template_id, display_name = excluded.display_name"
);

const WRITE_OBJECTS: &str = "insert into inventory_object
        (organization_id, generation, section, object_id, display_name, data)
    select distinct on (e.d->>$5) $1::uuid, $2::uuid, $4::text, e.d->>$5,
           coalesce(e.d->>'displayName', e.d->>'deviceName', e.d->>'userDisplayName', e.d->>'skuPartNumber', e.d->>$5),
           e.d
    from jsonb_array_elements($3::text::jsonb) with ordinality as e (d, n)
    where e.d ? $5 and exists (select 1 from discovery_run
        where run_id = $2 and state = 'running' for key share)
    order by e.d->>$5, e.n desc
    on conflict (organization_id, generation, section, object_id) do update set
        display_name = excluded.display_name, data = excluded.data";

// Membership writers: $1 organization, $2 generation, $3 parents, $4 members, $5 kinds.

const WRITE_GROUP_MEMBERS: &str = "insert into inventory_group_member
        (organization_id, generation, group_id, member_id, member_type)
    select $1, $2, * from unnest($3::uuid[], $4::uuid[], $5::text[])
    where exists (select 1 from discovery_run where run_id = $2 and state = 'running' for key share)
    on conflict do nothing";

const WRITE_ROLE_MEMBERS: &str = "insert into inventory_role_member
        (organization_id, generation, role_id, member_id, member_type)
    select $1, $2, * from unnest($3::uuid[], $4::uuid[], $5::text[])
    where exists (select 1 from discovery_run where run_id = $2 and state = 'running' for key share)
    on conflict do nothing";
