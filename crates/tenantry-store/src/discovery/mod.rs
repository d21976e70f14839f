//! Discovery runs: the run record, the writing of each page as it arrives, and the one
//! transaction that applies a finished run to the inventory.
//!
//! Pages go straight into the inventory tables under the run's own generation (writing
//! each page at once is what keeps a tenant of 100,000 users out of memory); readers see
//! only the organization's current generation (`organization.inventory_generation`), and
//! applying a run switches it in one transaction, so they never see half a run. What is
//! not inventory (removals and refreshed groups of delta runs, delta links) waits in
//! `discovery_stage`.
//!
//! The run's lifecycle is in [`run`], the page writers in [`pages`], the apply in
//! [`apply`].

mod apply;
mod pages;
mod run;

use apply::{delete_generation, drop_run_rows, lock_running};
pub use pages::Removals;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use tenantry_domain::discovery::{Section, SectionState};
use tenantry_domain::{DiscoveryRunId, JobId, MspId, OrganizationId};
use uuid::Uuid;

use crate::error::StoreError;
use crate::ids::NullableUuid;
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
/// links (and the members of changed groups), and of the other sections only those due
/// by their own schedule or asked for (`tenantry_domain::discovery::SectionPlan`).
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
    #[sqlx(try_from = "Uuid")]
    pub run_id: DiscoveryRunId,
    #[sqlx(try_from = "Uuid")]
    pub organization_id: OrganizationId,
    pub trigger: String,
    pub mode: String,
    #[sqlx(try_from = "String")]
    pub state: tenantry_domain::RunState,
    #[sqlx(try_from = "NullableUuid")]
    pub job_id: Option<JobId>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub sections: serde_json::Value,
    /// Requests as Microsoft counts them against its throttling limits: every item of a
    /// `$batch` on its own.
    pub graph_requests: i32,
    /// HTTP requests sent to Microsoft Graph (a `$batch` once).
    pub graph_round_trips: i32,
    pub throttled: i32,
    pub error: Option<String>,
}

const RUN_COLUMNS: &str = "run_id, organization_id, trigger, mode, state, job_id, created_at, started_at, finished_at, sections, graph_requests, graph_round_trips, throttled, error";

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
    pub credential: tenantry_domain::AppCredential,
    /// Set in partner mode: the app (and its credential's expiry) lives in the partner
    /// tenant, not in this one.
    pub partner_connection_id: Option<Uuid>,
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

/// A section's request counters, added to the run's.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    /// Requests as Microsoft throttles them (each `$batch` item on its own).
    pub requests: i32,
    /// HTTP requests (a `$batch` once).
    pub round_trips: i32,
    /// Throttling answers met.
    pub throttled: i32,
}

/// Which run writes, for which organization and MSP: every row a run writes carries them.
#[derive(Clone, Copy, Debug)]
pub struct RunKeys {
    pub run: DiscoveryRunId,
    pub organization: OrganizationId,
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
}
