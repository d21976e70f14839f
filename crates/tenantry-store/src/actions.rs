//! Action requests and their approvals: creating one (idempotently, with its audit event
//! and, when no approval is needed, its job, all in one transaction), approving, denying,
//! expiring, listing, and the one-time reveal of a generated password.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use tenantry_domain::actions::{ActionKind, Resolved, Target};
use tenantry_domain::policy::Approvers;
use tenantry_domain::{ActionId, ErrorCode, JobId, MspId, OrganizationId, Role};
use uuid::Uuid;

use crate::audit::{self, NewEvent};
use crate::error::StoreError;
use crate::ids::NullableUuid;
use crate::jobs::ActionJob;
use crate::operators::OperatorRecord;
use crate::queue::{self, NewJob};
use crate::sealing::{Keyring, Purpose};

/// How long a generated password waits to be revealed before it is destroyed.
pub const PASSWORD_LIFETIME_HOURS: i64 = 24;

/// Who asked, or who decides.
#[derive(Clone, Debug)]
pub struct Actor {
    pub api_key_id: Uuid,
    pub role: Role,
    /// An employee acting through a gateway key (their user object id).
    pub employee: Option<Uuid>,
    /// A name the caller gave (a technician's name, a ticket reference).
    pub name: Option<String>,
    /// The person holding the key (for an employee, the gateway key's operator); `None`
    /// for a webhook endpoint.
    pub operator: Option<OperatorRecord>,
    /// The webhook delivery whose playbook asks (the key is then the endpoint's id).
    pub webhook_event: Option<Uuid>,
}

impl Actor {
    /// How the audit log names this actor.
    pub fn audit(&self) -> Value {
        if let Some(event) = self.webhook_event {
            return json!({"type": "webhook_endpoint", "endpoint_id": self.api_key_id, "webhook_event_id": event, "name": self.name});
        }
        match self.employee {
            Some(user) => {
                json!({"type": "employee", "user_id": user, "via_api_key_id": self.api_key_id,
                       "via_operator": self.operator})
            }
            None => {
                json!({"type": "api_key", "api_key_id": self.api_key_id, "role": self.role, "name": self.name,
                       "operator": self.operator})
            }
        }
    }
}

pub struct NewAction {
    pub organization: OrganizationId,
    pub kind: ActionKind,
    pub targets: Vec<Target>,
    /// Validated parameters as recorded (no secrets, no photo bytes).
    pub parameters: Value,
    pub resolved: Resolved,
    pub attachment: Option<Vec<u8>>,
    pub idempotency_key: Option<String>,
    pub request_hash: Vec<u8>,
    /// `[{"user_id", "roles": [names]}]` for targets holding privileged roles.
    pub privileged_targets: Value,
    /// Why approval is needed; `None` queues the action at once.
    pub approval_reason: Option<String>,
    pub approvers: Approvers,
    pub approval_ttl_secs: i32,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ActionRecord {
    #[sqlx(try_from = "Uuid")]
    pub action_id: ActionId,
    #[sqlx(try_from = "Uuid")]
    pub organization_id: OrganizationId,
    pub action: String,
    #[sqlx(try_from = "String")]
    pub state: tenantry_domain::ActionState,
    pub targets: Value,
    pub parameters: Value,
    pub resolved: Value,
    pub requested_by_key: Uuid,
    pub requester_kind: String,
    pub requested_by: Option<String>,
    /// The operator of the requesting key (`None` for webhook endpoints).
    pub requested_by_operator: Option<Uuid>,
    pub requested_by_operator_name: Option<String>,
    pub privileged_targets: Value,
    pub approval_required: bool,
    pub approval_reason: Option<String>,
    pub approver_roles: Vec<String>,
    pub approver_keys: Vec<Uuid>,
    pub approver_groups: Vec<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
    pub decided_by_key: Option<Uuid>,
    pub decided_by: Option<String>,
    /// The operator of the deciding key.
    pub decided_by_operator: Option<Uuid>,
    pub decided_by_operator_name: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: Option<String>,
    #[sqlx(try_from = "NullableUuid")]
    pub job_id: Option<JobId>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Whether the step that sets a password has (or may have) reached Microsoft.
    pub password_set: bool,
    /// Whether the sealed password is still kept (not revealed, not destroyed).
    pub password_kept: bool,
}

impl ActionRecord {
    /// Whether a generated password is waiting for its one reveal.
    pub fn password_available(&self) -> bool {
        self.password_set && self.password_kept
    }
}

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct StepRecord {
    pub position: i32,
    pub name: String,
    pub method: String,
    pub path: String,
    pub idempotent: bool,
    pub state: String,
    pub http_status: Option<i32>,
    pub ms_request_id: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub detail: Option<Value>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub(crate) const ACTION_COLUMNS: &str =
    "a.action_id, a.organization_id, a.action, a.state, a.targets, a.parameters, a.resolved,
    a.requested_by_key, a.requester_kind, a.requested_by, a.privileged_targets, a.approval_required,
    a.approval_reason, a.approver_roles, a.approver_keys, a.approver_groups, a.expires_at,
    a.decided_by_key, a.decided_by, a.decided_at, a.decision_reason, a.job_id, a.error_code,
    a.error_message, a.created_at, a.updated_at, a.finished_at,
    a.requested_by_operator, a.decided_by_operator,
    (select p.name from operator p where p.msp_id = a.msp_id and p.operator_id = a.requested_by_operator)
        as requested_by_operator_name,
    (select p.name from operator p where p.msp_id = a.msp_id and p.operator_id = a.decided_by_operator)
        as decided_by_operator_name,
    exists (select 1 from action_step t where t.action_id = a.action_id and not t.idempotent
            and t.state in ('succeeded', 'unknown')) as password_set,
    exists (select 1 from action_secret s where s.action_id = a.action_id) as password_kept";

/// A created action, or the one an earlier request with the same idempotency key made.
pub enum Created {
    New(ActionRecord),
    Replayed(ActionRecord),
}

pub(crate) async fn by_idempotency_key(
    conn: &mut PgConnection,
    msp: MspId,
    key: Uuid,
    idempotency_key: &str,
) -> Result<Option<(ActionRecord, Option<Vec<u8>>)>, StoreError> {
    let sql = format!(
        "select {ACTION_COLUMNS}, a.request_hash from action_request a
         where a.msp_id = $1 and a.requested_by_key = $2 and a.idempotency_key = $3"
    );
    let row: Option<(ActionRecord, Option<Vec<u8>>)> = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(key)
        .bind(idempotency_key)
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| {
            use sqlx::{FromRow, Row};
            Ok::<_, sqlx::Error>((ActionRecord::from_row(&row)?, row.try_get("request_hash")?))
        })
        .transpose()?;
    Ok(row)
}

pub(crate) fn replay_or_refuse(
    found: (ActionRecord, Option<Vec<u8>>),
    hash: &[u8],
) -> Result<Created, StoreError> {
    if found.1.as_deref() == Some(hash) {
        Ok(Created::Replayed(found.0))
    } else {
        Err(StoreError::Refused(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was already used with a different request; use a new key for a new request".into(),
        ))
    }
}

fn enqueue_job(
    msp: MspId,
    organization: OrganizationId,
    action: ActionId,
) -> Result<NewJob, StoreError> {
    Ok(
        NewJob::of(&ActionJob { action_id: action }, msp, Some(organization))?
            .max_attempts(8)
            // Someone is waiting for an action: ahead of background scans.
            .priority(1),
    )
}

/// Queues `action`'s job and records its id, in `conn`'s transaction.
async fn queue_action(
    conn: &mut PgConnection,
    msp: MspId,
    organization: OrganizationId,
    action: ActionId,
) -> Result<(), StoreError> {
    let job = match queue::enqueue(conn, &enqueue_job(msp, organization, action)?).await? {
        queue::Enqueued::Inserted(id) | queue::Enqueued::Duplicate(id) => id,
    };
    sqlx::query(
        "update action_request set state = 'queued', job_id = $2, updated_at = now() where action_id = $1",
    )
    .bind(action.as_uuid())
    .bind(job.as_uuid())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn create(
    db: &PgPool,
    msp: MspId,
    actor: &Actor,
    new: NewAction,
) -> Result<Created, StoreError> {
    let mut tx = db.begin().await?;
    if let Some(key) = &new.idempotency_key
        && let Some(found) = by_idempotency_key(&mut tx, msp, actor.api_key_id, key).await?
    {
        return replay_or_refuse(found, &new.request_hash);
    }
    let id = ActionId::new();
    let needs_approval = new.approval_reason.is_some();
    let inserted = sqlx::query(
        "insert into action_request (action_id, msp_id, organization_id, action, state, targets, parameters,
             resolved, attachment, requested_by_key, requester_kind, requested_by, idempotency_key, request_hash,
             privileged_targets, approval_required, approval_reason, approver_roles, approver_keys,
             approver_groups, expires_at, webhook_event_id, requested_by_operator)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
             case when $16 then now() + make_interval(secs => $21) end, $22, $23)",
    )
    .bind(id.as_uuid())
    .bind(msp.as_uuid())
    .bind(new.organization.as_uuid())
    .bind(new.kind.as_str())
    .bind(if needs_approval { "pending_approval" } else { "queued" })
    .bind(serde_json::to_value(&new.targets).map_err(|e| StoreError::Corrupt(e.to_string()))?)
    .bind(&new.parameters)
    .bind(serde_json::to_value(&new.resolved).map_err(|e| StoreError::Corrupt(e.to_string()))?)
    .bind(&new.attachment)
    .bind(actor.api_key_id)
    .bind(match (actor.webhook_event, actor.employee) {
        (Some(_), _) => "webhook",
        (None, Some(_)) => "employee",
        (None, None) => "technician",
    })
    .bind(actor.employee.map(|u| u.to_string()).or_else(|| actor.name.clone()))
    .bind(&new.idempotency_key)
    .bind(&new.request_hash)
    .bind(&new.privileged_targets)
    .bind(needs_approval)
    .bind(&new.approval_reason)
    .bind(new.approvers.roles.iter().map(|r| r.as_str().to_owned()).collect::<Vec<_>>())
    .bind(&new.approvers.keys)
    .bind(&new.approvers.groups)
    .bind(f64::from(new.approval_ttl_secs))
    .bind(actor.webhook_event)
    .bind(actor.operator.as_ref().map(|o| o.id.as_uuid()))
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        // Another request with the same key won the race: answer as it did.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            drop(tx);
            let mut conn = db.acquire().await?;
            let key = new.idempotency_key.as_deref().unwrap_or_default();
            return match by_idempotency_key(&mut conn, msp, actor.api_key_id, key).await? {
                Some(found) => replay_or_refuse(found, &new.request_hash),
                None => Err(StoreError::Corrupt(
                    "idempotency conflict without a row".into(),
                )),
            };
        }
        Err(e) => return Err(e.into()),
    }
    if !needs_approval {
        queue_action(&mut tx, msp, new.organization, id).await?;
    }
    audit::append(
        &mut tx,
        msp,
        NewEvent {
            kind: "action.requested",
            actor: actor.audit(),
            organization_id: Some(new.organization.as_uuid()),
            action_id: Some(id.as_uuid()),
            action: Some(new.kind.as_str().into()),
            targets: serde_json::to_value(&new.targets).unwrap_or(Value::Null),
            parameters: new.parameters.clone(),
            decision: Some(
                if needs_approval {
                    "pending_approval"
                } else {
                    "queued"
                }
                .into(),
            ),
            reason: new.approval_reason.clone(),
            graph_request_ids: Vec::new(),
        },
    )
    .await?;
    let record = find_in(&mut tx, msp, None, id).await?;
    tx.commit().await?;
    Ok(Created::New(record))
}

/// A request the rules refused, for the audit log.
pub struct Refusal {
    pub organization: OrganizationId,
    pub kind: ActionKind,
    pub targets: Value,
    pub parameters: Value,
    pub code: ErrorCode,
    pub detail: String,
}

/// Records a refused request (policy, capability, guard) in the audit log.
pub(crate) async fn record_refusal(
    db: &PgPool,
    msp: MspId,
    actor: &Actor,
    refusal: Refusal,
) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    audit::append(
        &mut tx,
        msp,
        NewEvent {
            kind: "action.refused",
            actor: actor.audit(),
            organization_id: Some(refusal.organization.as_uuid()),
            action: Some(refusal.kind.as_str().into()),
            targets: refusal.targets,
            parameters: refusal.parameters,
            decision: Some(refusal.code.as_str().into()),
            reason: Some(refusal.detail),
            ..NewEvent::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn find_in(
    conn: &mut PgConnection,
    msp: MspId,
    organizations: Option<&[Uuid]>,
    id: ActionId,
) -> Result<ActionRecord, StoreError> {
    let sql = format!(
        "select {ACTION_COLUMNS} from action_request a
         where a.msp_id = $1 and a.action_id = $2 and ($3::uuid[] is null or a.organization_id = any($3))"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(id.as_uuid())
        .bind(organizations)
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

pub(crate) async fn steps(db: &PgPool, id: ActionId) -> Result<Vec<StepRecord>, StoreError> {
    Ok(sqlx::query_as(
        "select position, name, method, path, idempotent, state, http_status, ms_request_id, error_code, error_message,
                detail, started_at, finished_at
         from action_step where action_id = $1 order by position",
    )
    .bind(id.as_uuid())
    .fetch_all(db)
    .await?)
}

#[derive(Clone, Debug, Default)]
pub struct ActionFilter {
    pub organization: Option<Uuid>,
    pub state: Option<String>,
    pub action: Option<String>,
    /// Only actions requested with this key (a gateway sees only its own requests).
    pub requested_by_key: Option<Uuid>,
}

pub(crate) async fn list(
    db: &PgPool,
    msp: MspId,
    organizations: Option<&[Uuid]>,
    filter: &ActionFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ActionRecord>, StoreError> {
    let sql = format!(
        "select {ACTION_COLUMNS} from action_request a
         where a.msp_id = $1 and ($2::uuid[] is null or a.organization_id = any($2))
           and ($3::uuid is null or a.organization_id = $3)
           and ($4::text is null or a.state = $4)
           and ($5::text is null or a.action = $5)
           and ($6::uuid is null or a.action_id < $6)
           and ($8::uuid is null or a.requested_by_key = $8)
         order by a.action_id desc limit $7"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(organizations)
        .bind(filter.organization)
        .bind(&filter.state)
        .bind(&filter.action)
        .bind(after)
        .bind(limit)
        .bind(filter.requested_by_key)
        .fetch_all(db)
        .await?)
}

/// Marks a pending request past its deadline `expired`, with its audit event.
async fn expire(
    conn: &mut PgConnection,
    msp: MspId,
    record: &ActionRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "update action_request set state = 'expired', updated_at = now(), finished_at = now()
         where action_id = $1 and state = 'pending_approval'",
    )
    .bind(record.action_id.as_uuid())
    .execute(&mut *conn)
    .await?;
    audit::append(
        conn,
        msp,
        NewEvent {
            kind: "action.expired",
            actor: json!({"type": "system", "component": "approvals"}),
            organization_id: Some(record.organization_id.as_uuid()),
            action_id: Some(record.action_id.as_uuid()),
            action: Some(record.action.clone()),
            targets: record.targets.clone(),
            decision: Some("expired".into()),
            reason: Some("nobody decided before the approval deadline".into()),
            ..NewEvent::default()
        },
    )
    .await?;
    crate::webhooks::resume_playbook(conn, record.action_id.as_uuid()).await?;
    Ok(())
}

/// Expires every pending request past its deadline (the leader calls this).
pub async fn expire_due(db: &PgPool) -> Result<u64, StoreError> {
    let due: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "select msp_id, action_id from action_request
         where state = 'pending_approval' and expires_at <= now() limit 500",
    )
    .fetch_all(db)
    .await?;
    let mut expired = 0;
    for (msp, action) in due {
        let msp = MspId::from_uuid(msp);
        let mut tx = db.begin().await?;
        let sql = format!(
            "select {ACTION_COLUMNS} from action_request a where a.action_id = $1 and a.state = 'pending_approval' for update"
        );
        let record: Option<ActionRecord> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(action)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(record) = record {
            expire(&mut tx, msp, &record).await?;
            expired += 1;
        }
        tx.commit().await?;
    }
    Ok(expired)
}

/// An approval or a denial.
pub struct Verdict {
    pub approve: bool,
    pub reason: Option<String>,
}

/// Whether `decider` is among the approvers of `record` and not its requester.
async fn check_decider(
    conn: &mut PgConnection,
    record: &ActionRecord,
    decider: &Actor,
) -> Result<(), StoreError> {
    let requester_employee = (record.requester_kind == "employee")
        .then(|| {
            record
                .requested_by
                .as_deref()
                .and_then(|u| u.parse::<Uuid>().ok())
        })
        .flatten();
    // People, not keys: every key of one operator is the same person, so a second key
    // minted by the requester cannot approve (or deny) the request.
    let same_person = match decider.employee {
        Some(user) => requester_employee == Some(user),
        None => {
            record.requester_kind == "technician"
                && (record.requested_by_key == decider.api_key_id
                    || decider
                        .operator
                        .as_ref()
                        .is_some_and(|o| record.requested_by_operator == Some(o.id.as_uuid())))
        }
    };
    if same_person {
        return Err(StoreError::Refused(
            ErrorCode::SelfApproval,
            "nobody approves or denies their own request; ask another approver".into(),
        ));
    }
    let eligible = match decider.employee {
        // Employees decide only self-service requests, as members of approver groups.
        Some(user) => {
            decider.role == Role::SelfServiceGateway
                && record.requester_kind == "employee"
                && !record.approver_groups.is_empty()
                && sqlx::query_scalar::<_, bool>(
                    "select exists (select 1 from inventory_group_member
                     where organization_id = $1 and member_id = $2 and group_id = any($3)
                       and generation = (select inventory_generation from organization where organization_id = $1))",
                )
                .bind(record.organization_id.as_uuid())
                .bind(user)
                .bind(&record.approver_groups)
                .fetch_one(&mut *conn)
                .await?
        }
        None => {
            decider.role != Role::SelfServiceGateway
                && (record
                    .approver_roles
                    .iter()
                    .any(|r| r == decider.role.as_str())
                    || record.approver_keys.contains(&decider.api_key_id))
        }
    };
    if eligible {
        Ok(())
    } else {
        Err(StoreError::Refused(
            ErrorCode::NotAnApprover,
            "this caller is not among the approvers the policy names for this request".into(),
        ))
    }
}

pub(crate) async fn decide(
    db: &PgPool,
    msp: MspId,
    organizations: Option<&[Uuid]>,
    id: ActionId,
    decider: &Actor,
    verdict: Verdict,
) -> Result<ActionRecord, StoreError> {
    let mut tx = db.begin().await?;
    // Locked first (within the MSP), then read once: concurrent decisions and the
    // leader's expiry see each other's outcome.
    sqlx::query("select 1 from action_request where action_id = $1 and msp_id = $2 for update")
        .bind(id.as_uuid())
        .bind(msp.as_uuid())
        .execute(&mut *tx)
        .await?;
    let record = find_in(&mut tx, msp, organizations, id).await?;
    if record.state != tenantry_domain::ActionState::PendingApproval {
        return Err(StoreError::Refused(
            ErrorCode::ActionStateConflict,
            format!("the action is {}, not waiting for approval", record.state),
        ));
    }
    check_decider(&mut tx, &record, decider).await?;
    if record.expires_at.is_some_and(|at| at <= Utc::now()) {
        expire(&mut tx, msp, &record).await?;
        tx.commit().await?;
        return Err(StoreError::Refused(
            ErrorCode::ActionStateConflict,
            "the approval deadline passed; the request has expired".into(),
        ));
    }
    let state = if verdict.approve {
        "approved"
    } else {
        "denied"
    };
    sqlx::query(
        "update action_request set state = $2, decided_by_key = $3, decided_by = $4, decided_at = now(),
             decision_reason = $5, updated_at = now(), decided_by_operator = $6,
             finished_at = case when $2 = 'denied' then now() end
         where action_id = $1",
    )
    .bind(id.as_uuid())
    .bind(state)
    .bind(decider.api_key_id)
    .bind(decider.employee.map(|u| u.to_string()).or_else(|| decider.name.clone()))
    .bind(&verdict.reason)
    .bind(decider.operator.as_ref().map(|o| o.id.as_uuid()))
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        msp,
        NewEvent {
            kind: if verdict.approve {
                "action.approved"
            } else {
                "action.denied"
            },
            actor: decider.audit(),
            organization_id: Some(record.organization_id.as_uuid()),
            action_id: Some(record.action_id.as_uuid()),
            action: Some(record.action.clone()),
            targets: record.targets.clone(),
            decision: Some(state.into()),
            reason: verdict.reason.clone(),
            ..NewEvent::default()
        },
    )
    .await?;
    if verdict.approve {
        queue_action(&mut tx, msp, record.organization_id, id).await?;
    }
    // A playbook waiting on this decision goes on.
    crate::webhooks::resume_playbook(&mut tx, id.as_uuid()).await?;
    let record = find_in(&mut tx, msp, organizations, id).await?;
    tx.commit().await?;
    Ok(record)
}

/// Opens and destroys the generated password of `id`, for its requester only.
pub(crate) async fn reveal(
    db: &PgPool,
    keyring: &Keyring,
    msp: MspId,
    organizations: Option<&[Uuid]>,
    id: ActionId,
    caller: &Actor,
) -> Result<SecretString, StoreError> {
    let mut tx = db.begin().await?;
    let record = find_in(&mut tx, msp, organizations, id).await?;
    let employee = caller.employee.map(|u| u.to_string());
    let is_requester = record.requested_by_key == caller.api_key_id
        && (record.requester_kind == "technician" || record.requested_by == employee);
    if !is_requester {
        return Err(StoreError::Refused(
            ErrorCode::Forbidden,
            "only the requester of an action may reveal its password".into(),
        ));
    }
    // Only a password Microsoft has (or may have) set: not one sealed for a step that a
    // retry is still going to send.
    let sealed: Option<(Vec<u8>, Uuid)> = if record.password_set {
        sqlx::query_as(
            "delete from action_secret where action_id = $1 and expires_at > now()
             returning sealed, organization_id",
        )
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?
    } else {
        None
    };
    let Some((sealed, organization)) = sealed else {
        let generates = record
            .action
            .parse::<ActionKind>()
            .is_ok_and(ActionKind::generates_password);
        return Err(match record.state {
            _ if !generates => StoreError::Refused(
                ErrorCode::ActionStateConflict,
                format!("{} generates no password", record.action),
            ),
            state if !state.is_final() && !record.password_set => StoreError::Refused(
                ErrorCode::ActionStateConflict,
                "the password is not set yet; reveal it once the action has run".into(),
            ),
            _ => StoreError::Refused(
                ErrorCode::SecretGone,
                "the password was already revealed, has expired (24 hours), or was never set"
                    .into(),
            ),
        });
    };
    let organization = OrganizationId::from_uuid(organization);
    let key = crate::organizations::data_key(&mut tx, keyring, organization).await?;
    let password = key.open(
        &sealed,
        organization,
        Purpose::RevealablePassword,
        &id.to_string(),
    )?;
    audit::append(
        &mut tx,
        msp,
        NewEvent {
            kind: "action.password_revealed",
            actor: caller.audit(),
            organization_id: Some(record.organization_id.as_uuid()),
            action_id: Some(record.action_id.as_uuid()),
            action: Some(record.action.clone()),
            targets: record.targets.clone(),
            decision: Some("revealed".into()),
            reason: Some("revealed once to the requester, then destroyed".into()),
            ..NewEvent::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(password)
}
