//! Webhook endpoints (their sealed signing secrets and rules) and the events delivered to
//! them. An event is stored and its playbook job queued in one transaction, and a replay
//! of the same event id finds the first delivery instead of a second one.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use tenantry_domain::webhooks::{Event, Rule};
use tenantry_domain::{JobId, MspId, OrganizationId};
use uuid::Uuid;

use crate::error::StoreError;
use crate::ids::NullableUuid;
use crate::jobs::WebhookJob;
use crate::queue::{self, JOBS_CHANNEL, NewJob};
use crate::sealing::{DataKey, Keyring, Purpose};

/// How long a rotated-out secret still verifies.
pub const ROTATION_OVERLAP_HOURS: i32 = 24;
/// The prefix of signing secrets, so scanners and people recognise one.
pub const SECRET_PREFIX: &str = "whsec_";

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EndpointRecord {
    pub endpoint_id: Uuid,
    #[sqlx(try_from = "NullableUuid")]
    pub organization_id: Option<OrganizationId>,
    pub name: String,
    pub rules: Value,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub previous_expires_at: Option<DateTime<Utc>>,
}

const ENDPOINT_COLUMNS: &str = "endpoint_id, organization_id, name, rules, created_by, created_at, revoked_at, previous_expires_at";

/// What the receiver needs to check a delivery.
pub struct EndpointSecrets {
    pub endpoint_id: Uuid,
    pub msp_id: MspId,
    pub organization_id: Option<Uuid>,
    pub rules: Vec<Rule>,
    /// The current secret, then the previous one while it still verifies.
    pub secrets: Vec<SecretString>,
    /// When the previous secret stops verifying (a cached copy is not kept past it).
    pub previous_expires_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct EventRecord {
    pub webhook_event_id: Uuid,
    pub endpoint_id: Uuid,
    #[sqlx(try_from = "NullableUuid")]
    pub organization_id: Option<OrganizationId>,
    pub event_id: String,
    pub event_type: String,
    pub target: Option<String>,
    #[sqlx(try_from = "String")]
    pub state: tenantry_domain::WebhookEventState,
    pub outcome: Value,
    #[sqlx(try_from = "NullableUuid")]
    pub job_id: Option<JobId>,
    pub received_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const EVENT_COLUMNS: &str = "webhook_event_id, endpoint_id, organization_id, event_id, event_type, target, state, outcome, job_id, received_at, finished_at";

/// A new delivery, or the first one with the same event id.
pub enum Recorded {
    New(EventRecord),
    Duplicate(EventRecord),
    /// The endpoint was revoked or deleted (after the caller read it): nothing stored.
    EndpointGone,
}

fn random_secret() -> Result<SecretString, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|_| StoreError::Sealing(crate::sealing::SealError::Random))?;
    Ok(SecretString::from(format!(
        "{SECRET_PREFIX}{}",
        hex::encode(bytes)
    )))
}

/// The MSP's data key, made on first use.
pub(crate) async fn msp_data_key(
    conn: &mut PgConnection,
    keyring: &Keyring,
    msp: MspId,
) -> Result<DataKey, StoreError> {
    let existing: Option<Vec<u8>> =
        sqlx::query_scalar("select sealed from msp_data_key where msp_id = $1")
            .bind(msp.as_uuid())
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(sealed) = existing {
        return Ok(keyring.open_msp_data_key(&sealed, msp)?);
    }
    let key = DataKey::generate()?;
    sqlx::query(
        "insert into msp_data_key (msp_id, sealed, master_key_id) values ($1, $2, $3)
         on conflict (msp_id) do nothing",
    )
    .bind(msp.as_uuid())
    .bind(keyring.seal_msp_data_key(&key, msp)?)
    .bind(keyring.current_id())
    .execute(&mut *conn)
    .await?;
    // Whoever inserted first wins; everyone uses the stored key.
    let sealed: Vec<u8> = sqlx::query_scalar("select sealed from msp_data_key where msp_id = $1")
        .bind(msp.as_uuid())
        .fetch_one(&mut *conn)
        .await?;
    Ok(keyring.open_msp_data_key(&sealed, msp)?)
}

/// Re-seals MSP data keys sealed under an older master key (part of key rotation).
pub(crate) async fn rotate_msp_data_keys(
    db: &PgPool,
    keyring: &Keyring,
) -> Result<usize, StoreError> {
    let rows: Vec<(Uuid, Vec<u8>)> =
        sqlx::query_as("select msp_id, sealed from msp_data_key where master_key_id <> $1")
            .bind(keyring.current_id())
            .fetch_all(db)
            .await?;
    let mut count = 0;
    for (msp, sealed) in rows {
        let msp = MspId::from_uuid(msp);
        let key = keyring.open_msp_data_key(&sealed, msp)?;
        let updated = sqlx::query(
            "update msp_data_key set sealed = $2, master_key_id = $3 where msp_id = $1 and sealed = $4",
        )
        .bind(msp.as_uuid())
        .bind(keyring.seal_msp_data_key(&key, msp)?)
        .bind(keyring.current_id())
        .bind(&sealed)
        .execute(db)
        .await?;
        count += usize::try_from(updated.rows_affected()).unwrap_or(0);
    }
    Ok(count)
}

fn seal_secret(
    key: &DataKey,
    msp: MspId,
    endpoint: Uuid,
    secret: &SecretString,
) -> Result<Vec<u8>, StoreError> {
    Ok(key.seal(
        secret.expose_secret(),
        OrganizationId::from_uuid(msp.as_uuid()),
        Purpose::WebhookSigningSecret,
        &endpoint.to_string(),
    )?)
}

pub(crate) async fn create_endpoint(
    db: &PgPool,
    keyring: &Keyring,
    msp: MspId,
    created_by: Uuid,
    name: &str,
    organization: Option<Uuid>,
    rules: &[Rule],
) -> Result<(EndpointRecord, SecretString), StoreError> {
    let id = Uuid::now_v7();
    let secret = random_secret()?;
    let mut tx = db.begin().await?;
    let key = msp_data_key(&mut tx, keyring, msp).await?;
    let sealed = seal_secret(&key, msp, id, &secret)?;
    let sql = format!(
        "insert into webhook_endpoint (endpoint_id, msp_id, organization_id, name, sealed_secret, rules, created_by)
         values ($1, $2, $3, $4, $5, $6, $7) returning {ENDPOINT_COLUMNS}"
    );
    let record: EndpointRecord = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(msp.as_uuid())
        .bind(organization)
        .bind(name)
        .bind(sealed)
        .bind(serde_json::to_value(rules).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(created_by)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((record, secret))
}

/// A new secret for an endpoint; the old one verifies for another day.
pub(crate) async fn rotate_secret(
    db: &PgPool,
    keyring: &Keyring,
    msp: MspId,
    endpoint: Uuid,
) -> Result<(EndpointRecord, SecretString), StoreError> {
    let secret = random_secret()?;
    let mut tx = db.begin().await?;
    let key = msp_data_key(&mut tx, keyring, msp).await?;
    let sealed = seal_secret(&key, msp, endpoint, &secret)?;
    let sql = format!(
        "update webhook_endpoint set previous_sealed_secret = sealed_secret, sealed_secret = $3,
             previous_expires_at = now() + make_interval(hours => $4)
         where msp_id = $1 and endpoint_id = $2 and revoked_at is null
         returning {ENDPOINT_COLUMNS}"
    );
    let record: EndpointRecord = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(endpoint)
        .bind(sealed)
        .bind(ROTATION_OVERLAP_HOURS)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
    tx.commit().await?;
    Ok((record, secret))
}

pub(crate) async fn endpoints(
    db: &PgPool,
    msp: MspId,
    organizations: Option<&[Uuid]>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<EndpointRecord>, StoreError> {
    let sql = format!(
        "select {ENDPOINT_COLUMNS} from webhook_endpoint
         where msp_id = $1 and ($2::uuid[] is null or organization_id = any($2))
           and ($3::uuid is null or endpoint_id < $3)
         order by endpoint_id desc limit $4"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(organizations)
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await?)
}

pub(crate) async fn endpoint(
    db: &PgPool,
    msp: MspId,
    organizations: Option<&[Uuid]>,
    id: Uuid,
) -> Result<EndpointRecord, StoreError> {
    let sql = format!(
        "select {ENDPOINT_COLUMNS} from webhook_endpoint
         where msp_id = $1 and endpoint_id = $2 and ($3::uuid[] is null or organization_id = any($3))"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(id)
        .bind(organizations)
        .fetch_optional(db)
        .await?
        .ok_or(StoreError::NotFound)
}

pub(crate) async fn revoke_endpoint(db: &PgPool, msp: MspId, id: Uuid) -> Result<(), StoreError> {
    sqlx::query(
        "update webhook_endpoint set revoked_at = coalesce(revoked_at, now()) where msp_id = $1 and endpoint_id = $2",
    )
    .bind(msp.as_uuid())
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// The receiver's view of an active endpoint (no caller to scope by: the signature is
/// the authentication). `None` for unknown or revoked endpoints.
pub async fn endpoint_secrets(
    db: &PgPool,
    keyring: &Keyring,
    id: Uuid,
) -> Result<Option<EndpointSecrets>, StoreError> {
    // One round trip on the receiver's hot path: the endpoint and its MSP's data key
    // (made when the endpoint was).
    type SecretRow = (
        Uuid,
        Option<Uuid>,
        Value,
        Vec<u8>,
        Option<Vec<u8>>,
        Option<DateTime<Utc>>,
        Vec<u8>,
    );
    let row: Option<SecretRow> = sqlx::query_as(
        "select e.msp_id, e.organization_id, e.rules, e.sealed_secret,
                case when e.previous_expires_at > now() then e.previous_sealed_secret end,
                case when e.previous_expires_at > now() then e.previous_expires_at end, k.sealed
         from webhook_endpoint e join msp_data_key k on k.msp_id = e.msp_id
         where e.endpoint_id = $1 and e.revoked_at is null",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    let Some((msp, organization, rules, current, previous, previous_expires_at, sealed_key)) = row
    else {
        return Ok(None);
    };
    let msp = MspId::from_uuid(msp);
    let key = keyring.open_msp_data_key(&sealed_key, msp)?;
    let owner = OrganizationId::from_uuid(msp.as_uuid());
    let object = id.to_string();
    let mut secrets = vec![key.open(&current, owner, Purpose::WebhookSigningSecret, &object)?];
    if let Some(previous) = previous {
        secrets.push(key.open(&previous, owner, Purpose::WebhookSigningSecret, &object)?);
    }
    Ok(Some(EndpointSecrets {
        endpoint_id: id,
        msp_id: msp,
        organization_id: organization,
        rules: serde_json::from_value(rules).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        secrets,
        previous_expires_at,
    }))
}

/// The MSP's organization an event names, by organization id or tenant id.
pub async fn organization_of(
    db: &PgPool,
    msp: MspId,
    named: Uuid,
) -> Result<Option<Uuid>, StoreError> {
    Ok(sqlx::query_scalar(
        "select organization_id from organization where msp_id = $1 and (organization_id = $2 or tenant_id = $2)",
    )
    .bind(msp.as_uuid())
    .bind(named)
    .fetch_optional(db)
    .await?)
}

/// A delivery as the one statement that records it returns it: `fresh` when this call
/// inserted it.
#[derive(sqlx::FromRow)]
struct RecordedRow {
    #[sqlx(flatten)]
    record: EventRecord,
    fresh: bool,
}

/// Stores a delivery and queues its playbook in one statement (so one transaction and
/// one round trip: the event row, already naming its job, and the job commit together or
/// not at all); a replayed event id returns the first delivery and changes nothing. The
/// same statement checks the endpoint is still active, so a revocation committed before
/// it began refuses the delivery even when the caller's copy of the endpoint was cached.
pub async fn record_event(
    db: &PgPool,
    endpoint: &EndpointSecrets,
    organization: Uuid,
    event: &Event,
    payload: &Value,
) -> Result<Recorded, StoreError> {
    let id = Uuid::now_v7();
    let matched = endpoint.rules.iter().any(|r| r.event == event.event_type);
    let job = NewJob::of(
        &WebhookJob {
            webhook_event_id: id,
        },
        endpoint.msp_id,
        Some(OrganizationId::from_uuid(organization)),
    )?
    .max_attempts(8)
    .priority(1);
    // The job's id is chosen here, so the event row names it as it is inserted (no
    // update after). Its unique key names the new event, so no unfinished job can hold
    // it already. Data-modifying CTEs always run to completion; `queued` inserts only
    // when `event` did (a replay inserts no job) and the rule matched (`$10` not null).
    // A replay is answered from the stored row, read in the same statement.
    let job_id = matched.then(|| tenantry_domain::JobId::new().as_uuid());
    let sql = format!(
        "with active as (
             select from webhook_endpoint where endpoint_id = $2 and revoked_at is null),
         event as (
             insert into webhook_event (webhook_event_id, endpoint_id, msp_id, organization_id, event_id,
                 event_type, target, payload, state, job_id)
             select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 from active
             on conflict (endpoint_id, event_id) do nothing
             returning {EVENT_COLUMNS}),
         queued as (
             insert into job (job_id, msp_id, organization_id, kind, args, max_attempts, priority, unique_key)
             select $10, $3, $4, $11, $12, $13, $14, $15 from event where $10::uuid is not null
             returning pg_notify('{JOBS_CHANNEL}', kind))
         select {EVENT_COLUMNS}, true as fresh from event
         union all
         select {EVENT_COLUMNS}, false from webhook_event
         where endpoint_id = $2 and event_id = $5 and exists (select from active)
           and not exists (select from event)"
    );
    let row: Option<RecordedRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(endpoint.endpoint_id)
        .bind(endpoint.msp_id.as_uuid())
        .bind(organization)
        .bind(&event.id)
        .bind(&event.event_type)
        .bind(&event.target)
        .bind(payload)
        .bind(if matched { "accepted" } else { "ignored" })
        .bind(job_id)
        .bind(&job.kind)
        .bind(&job.args)
        .bind(job.max_attempts)
        .bind(job.priority)
        .bind(&job.unique_key)
        .fetch_optional(db)
        .await?;
    match row {
        Some(RecordedRow {
            record,
            fresh: true,
        }) => Ok(Recorded::New(record)),
        Some(RecordedRow { record, .. }) => Ok(Recorded::Duplicate(record)),
        None => {
            // The endpoint is gone, or a concurrent delivery of the same id committed
            // after this statement's snapshot was taken: the insert skipped it, the
            // select could not see it yet.
            let sql = format!(
                "select {EVENT_COLUMNS} from webhook_event
                 where endpoint_id = $1 and event_id = $2
                   and exists (select from webhook_endpoint where endpoint_id = $1 and revoked_at is null)"
            );
            let first: Option<EventRecord> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(endpoint.endpoint_id)
                .bind(&event.id)
                .fetch_optional(db)
                .await?;
            Ok(first.map_or(Recorded::EndpointGone, Recorded::Duplicate))
        }
    }
}

/// Queues another run of event `id`'s playbook after one of its steps was decided or
/// ended. Never merged with a run in progress (which may be about to finish without
/// seeing the change); overlapping runs are harmless, as each step's request is
/// idempotent and the outcome is read back from the actions.
pub(crate) async fn resume_playbook(
    conn: &mut PgConnection,
    action: Uuid,
) -> Result<(), StoreError> {
    let linked: Option<(Uuid, Uuid, Option<Uuid>)> = sqlx::query_as(
        "select e.msp_id, e.webhook_event_id, e.organization_id from action_request a
         join webhook_event e on e.webhook_event_id = a.webhook_event_id
         where a.action_id = $1 and e.state not in ('completed', 'failed', 'ignored')",
    )
    .bind(action)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((msp, event, organization)) = linked else {
        return Ok(());
    };
    queue::enqueue(
        conn,
        // Not unique: the playbook's own job may still be finishing the run that
        // requested this step.
        &NewJob::of(
            &WebhookJob {
                webhook_event_id: event,
            },
            MspId::from_uuid(msp),
            organization.map(OrganizationId::from_uuid),
        )?
        .not_unique()
        .max_attempts(8)
        .priority(1),
    )
    .await?;
    Ok(())
}

pub(crate) async fn events(
    db: &PgPool,
    msp: MspId,
    organizations: Option<&[Uuid]>,
    endpoint: Option<Uuid>,
    state: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<EventRecord>, StoreError> {
    let sql = format!(
        "select {EVENT_COLUMNS} from webhook_event
         where msp_id = $1 and ($2::uuid[] is null or organization_id = any($2))
           and ($3::uuid is null or endpoint_id = $3) and ($4::text is null or state = $4)
           and ($5::uuid is null or webhook_event_id < $5)
         order by webhook_event_id desc limit $6"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(organizations)
        .bind(endpoint)
        .bind(state)
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await?)
}

/// An event as its playbook job sees it.
pub struct PlaybookContext {
    pub event: EventRecord,
    pub msp_id: MspId,
    pub endpoint_name: String,
    pub endpoint_organization: Option<Uuid>,
    pub endpoint_active: bool,
    pub rule: Option<Rule>,
}

/// Playbook state, for the worker (not MSP-scoped: the job names the event).
#[derive(Clone)]
pub struct PlaybookStore {
    pool: PgPool,
}

impl PlaybookStore {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn load(&self, id: Uuid) -> Result<PlaybookContext, StoreError> {
        let sql = format!("select {EVENT_COLUMNS} from webhook_event where webhook_event_id = $1");
        let event: EventRecord = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        let (msp, name, organization, active, rules): (Uuid, String, Option<Uuid>, bool, Value) =
            sqlx::query_as(
                "select msp_id, name, organization_id, revoked_at is null, rules
                 from webhook_endpoint where endpoint_id = $1",
            )
            .bind(event.endpoint_id)
            .fetch_one(&self.pool)
            .await?;
        let rules: Vec<Rule> =
            serde_json::from_value(rules).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(PlaybookContext {
            rule: rules.into_iter().find(|r| r.event == event.event_type),
            msp_id: MspId::from_uuid(msp),
            endpoint_name: name,
            endpoint_organization: organization,
            endpoint_active: active,
            event,
        })
    }

    /// The current state of actions a playbook requested (by id, within its MSP).
    pub async fn action_states(
        &self,
        msp: MspId,
        actions: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, String>, StoreError> {
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "select action_id, state from action_request where msp_id = $1 and action_id = any($2)",
        )
        .bind(msp.as_uuid())
        .bind(actions)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Records the playbook's progress; an ended delivery is never reopened by a run
    /// that overlapped the one that ended it.
    pub async fn update(
        &self,
        id: Uuid,
        state: tenantry_domain::WebhookEventState,
        outcome: &Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "update webhook_event set state = $2, outcome = $3,
                 finished_at = case when $2 in ('completed', 'failed') then now() end
             where webhook_event_id = $1 and state not in ('completed', 'failed', 'ignored')",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(outcome)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
