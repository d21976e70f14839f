//! What the worker executing an action reads and writes: the action, its step records
//! (written before a call is sent and after it answers), the sealed one-time password,
//! the final state with its audit event, and the inventory rows a result changes. Not
//! MSP-scoped: the job names the action, and the action its MSP.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sqlx::PgPool;
use tenantry_domain::actions::{ActionKind, PlannedStep};
use tenantry_domain::policy::Policy;
use tenantry_domain::{ActionId, MspId, OrganizationId};
use uuid::Uuid;

use crate::actions::{ACTION_COLUMNS, ActionRecord, PASSWORD_LIFETIME_HOURS, StepRecord};
use crate::audit::{self, NewEvent};
use crate::error::StoreError;
use crate::organizations::{self, StoredCredential};
use crate::sealing::{Keyring, Purpose};

#[derive(Clone)]
pub struct ActionRunStore {
    pool: PgPool,
    keyring: Option<std::sync::Arc<Keyring>>,
}

/// An action as its worker sees it.
pub struct RunContext {
    pub msp_id: MspId,
    pub record: ActionRecord,
    pub attachment: Option<Vec<u8>>,
}

/// How a step ended.
pub struct StepOutcome<'a> {
    pub state: &'a str,
    pub http_status: Option<u16>,
    pub request_id: Option<&'a str>,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub detail: Option<Value>,
}

/// A change a result makes to the inventory, so it shows before the next scan.
pub enum InventoryChange {
    AccountEnabled {
        user: Uuid,
        enabled: bool,
    },
    /// Graph property → value, for the columns the inventory keeps.
    Profile {
        user: Uuid,
        changes: Value,
    },
    Membership {
        group: Uuid,
        member: Uuid,
        added: bool,
    },
}

impl ActionRunStore {
    pub(crate) fn new(pool: PgPool, keyring: Option<std::sync::Arc<Keyring>>) -> Self {
        Self { pool, keyring }
    }

    fn keyring(&self) -> Result<&Keyring, StoreError> {
        self.keyring.as_deref().ok_or(StoreError::NoMasterKey)
    }

    pub async fn load(&self, id: ActionId) -> Result<RunContext, StoreError> {
        let sql = format!(
            "select {ACTION_COLUMNS}, a.msp_id, a.attachment from action_request a where a.action_id = $1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        use sqlx::{FromRow, Row};
        Ok(RunContext {
            msp_id: MspId::from_uuid(row.try_get("msp_id")?),
            attachment: row.try_get("attachment")?,
            record: ActionRecord::from_row(&row)?,
        })
    }

    pub async fn credential(
        &self,
        organization: OrganizationId,
    ) -> Result<StoredCredential, StoreError> {
        organizations::stored_credential(&self.pool, self.keyring.as_deref(), organization).await
    }

    pub async fn policy(
        &self,
        organization: OrganizationId,
        kind: ActionKind,
    ) -> Result<Policy, StoreError> {
        Ok(crate::policies::get(&self.pool, organization, kind)
            .await?
            .0)
    }

    /// Moves a queued action to `running` (recording the start once).
    pub async fn begin(&self, context: &RunContext) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let started = sqlx::query(
            "update action_request set state = 'running', updated_at = now()
             where action_id = $1 and state = 'queued'",
        )
        .bind(context.record.action_id.as_uuid())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if started > 0 {
            audit::append(
                &mut tx,
                context.msp_id,
                NewEvent {
                    kind: "action.started",
                    actor: json!({"type": "system", "component": "worker"}),
                    organization_id: Some(context.record.organization_id.as_uuid()),
                    action_id: Some(context.record.action_id.as_uuid()),
                    action: Some(context.record.action.clone()),
                    targets: context.record.targets.clone(),
                    decision: Some("running".into()),
                    ..NewEvent::default()
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn steps(&self, id: ActionId) -> Result<Vec<StepRecord>, StoreError> {
        crate::actions::steps(&self.pool, id).await
    }

    /// Appends planned steps after those recorded; returns their positions.
    pub async fn add_steps(
        &self,
        id: ActionId,
        steps: &[PlannedStep],
    ) -> Result<Vec<i32>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let next: i32 = sqlx::query_scalar(
            "select coalesce(max(position) + 1, 0) from action_step where action_id = $1",
        )
        .bind(id.as_uuid())
        .fetch_one(&mut *tx)
        .await?;
        let mut positions = Vec::new();
        for (offset, step) in steps.iter().enumerate() {
            let position = next + i32::try_from(offset).unwrap_or(i32::MAX - next);
            sqlx::query(
                "insert into action_step (action_id, position, name, method, path, idempotent, state, detail,
                                          error_code, error_message)
                 values ($1, $2, $3, $4, $5, $6, case when $8::text is null then 'pending' else 'skipped' end, $7,
                         case when $8::text is null then null else 'CAPABILITY_UNAVAILABLE' end, $8)",
            )
            .bind(id.as_uuid())
            .bind(position)
            .bind(&step.name)
            .bind(step.method)
            .bind(&step.path)
            .bind(step.idempotent)
            .bind(step.body.as_ref().map(|b| json!({"request": b})))
            .bind(step.skipped.as_deref())
            .execute(&mut *tx)
            .await?;
            positions.push(position);
        }
        tx.commit().await?;
        Ok(positions)
    }

    /// Records that a step is about to be sent: from here its outcome is unknown until
    /// [`Self::finish_step`]. `false` when the step is no longer this worker's to send
    /// (another worker sent it, or it is not idempotent and was sent already).
    pub async fn mark_sent(&self, id: ActionId, position: i32) -> Result<bool, StoreError> {
        let marked = sqlx::query(
            "update action_step set state = 'sent', started_at = now()
             where action_id = $1 and position = $2
               and (state = 'pending' or (state = 'sent' and idempotent))",
        )
        .bind(id.as_uuid())
        .bind(position)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(marked == 1)
    }

    /// The password sealed for `id` by an earlier attempt, so a retry sends the same one.
    pub async fn sealed_password(
        &self,
        id: ActionId,
        organization: OrganizationId,
    ) -> Result<Option<SecretString>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let sealed: Option<Vec<u8>> =
            sqlx::query_scalar("select sealed from action_secret where action_id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&mut *conn)
                .await?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let key = organizations::data_key(&mut conn, self.keyring()?, organization).await?;
        Ok(Some(key.open(
            &sealed,
            organization,
            Purpose::RevealablePassword,
            &id.to_string(),
        )?))
    }

    pub async fn finish_step(
        &self,
        id: ActionId,
        position: i32,
        outcome: StepOutcome<'_>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "update action_step set state = $3, http_status = $4, ms_request_id = coalesce($5, ms_request_id),
                 error_code = $6, error_message = $7,
                 detail = case when $8::jsonb is null then detail else coalesce(detail, '{}') || $8 end,
                 finished_at = case when $3 = 'pending' then null else now() end
             where action_id = $1 and position = $2",
        )
        .bind(id.as_uuid())
        .bind(position)
        .bind(outcome.state)
        .bind(outcome.http_status.map(i32::from))
        .bind(outcome.request_id)
        .bind(outcome.error_code)
        .bind(outcome.error_message)
        .bind(outcome.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Seals a generated password for the one reveal, before it is sent to Microsoft (so
    /// a crash after sending cannot lose a password that is already set).
    pub async fn seal_password(
        &self,
        id: ActionId,
        organization: OrganizationId,
        password: &SecretString,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let key = organizations::data_key(&mut conn, self.keyring()?, organization).await?;
        let sealed = key.seal(
            password.expose_secret(),
            organization,
            Purpose::RevealablePassword,
            &id.to_string(),
        )?;
        sqlx::query(
            "insert into action_secret (action_id, organization_id, sealed, expires_at)
             values ($1, $2, $3, now() + make_interval(hours => $4))
             on conflict (action_id) do update set sealed = excluded.sealed, created_at = now(),
                 expires_at = excluded.expires_at",
        )
        .bind(id.as_uuid())
        .bind(organization.as_uuid())
        .bind(sealed)
        .bind(i32::try_from(PASSWORD_LIFETIME_HOURS).unwrap_or(24))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Destroys a sealed password that was never set (its step failed for good).
    pub async fn discard_password(&self, id: ActionId) -> Result<(), StoreError> {
        sqlx::query("delete from action_secret where action_id = $1")
            .bind(id.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends the action in `state` with its audit event (Microsoft's request ids of every
    /// step sent).
    pub async fn finish(
        &self,
        context: &RunContext,
        state: tenantry_domain::ActionState,
        error: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "update action_request set state = $2, error_code = $3, error_message = $4, updated_at = now(),
                 finished_at = now()
             where action_id = $1 and state in ('queued', 'running')",
        )
        .bind(context.record.action_id.as_uuid())
        .bind(state.as_str())
        .bind(error.map(|e| e.0))
        .bind(error.map(|e| e.1))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed > 0 {
            let steps: Vec<(String, String, Option<String>)> = sqlx::query_as(
                "select name, state, ms_request_id from action_step where action_id = $1 order by position",
            )
            .bind(context.record.action_id.as_uuid())
            .fetch_all(&mut *tx)
            .await?;
            audit::append(
                &mut tx,
                context.msp_id,
                NewEvent {
                    kind: "action.finished",
                    actor: json!({"type": "system", "component": "worker"}),
                    organization_id: Some(context.record.organization_id.as_uuid()),
                    action_id: Some(context.record.action_id.as_uuid()),
                    action: Some(context.record.action.clone()),
                    targets: context.record.targets.clone(),
                    parameters: json!({
                        "steps": steps.iter().map(|(name, state, _)| json!({"name": name, "state": state})).collect::<Vec<_>>(),
                    }),
                    decision: Some(state.as_str().to_owned()),
                    reason: error.map(|(code, message)| format!("{code}: {message}")),
                    graph_request_ids: steps.into_iter().filter_map(|(_, _, id)| id).collect(),
                },
            )
            .await?;
            crate::webhooks::resume_playbook(&mut tx, context.record.action_id.as_uuid()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Applies a result to the inventory, in every generation that holds the object (the
    /// current one, and a scan's in progress).
    pub async fn update_inventory(
        &self,
        organization: OrganizationId,
        change: InventoryChange,
    ) -> Result<(), StoreError> {
        match change {
            InventoryChange::AccountEnabled { user, enabled } => {
                sqlx::query(
                    "update inventory_user set account_enabled = $3,
                         data = jsonb_set(data, '{accountEnabled}', to_jsonb($3))
                     where organization_id = $1 and user_id = $2",
                )
                .bind(organization.as_uuid())
                .bind(user)
                .bind(enabled)
                .execute(&self.pool)
                .await?;
            }
            InventoryChange::Profile { user, changes } => {
                sqlx::query(
                    "update inventory_user set
                         department = case when $3 ? 'department' then $3->>'department' else department end,
                         job_title = case when $3 ? 'jobTitle' then $3->>'jobTitle' else job_title end,
                         data = data || $3
                     where organization_id = $1 and user_id = $2",
                )
                .bind(organization.as_uuid())
                .bind(user)
                .bind(changes)
                .execute(&self.pool)
                .await?;
            }
            InventoryChange::Membership {
                group,
                member,
                added: true,
            } => {
                sqlx::query(
                    "insert into inventory_group_member (organization_id, generation, group_id, member_id, member_type)
                     select $1, generation, $2, $3, 'user' from inventory_group
                     where organization_id = $1 and group_id = $2
                     on conflict do nothing",
                )
                .bind(organization.as_uuid())
                .bind(group)
                .bind(member)
                .execute(&self.pool)
                .await?;
            }
            InventoryChange::Membership {
                group,
                member,
                added: false,
            } => {
                sqlx::query(
                    "delete from inventory_group_member where organization_id = $1 and group_id = $2 and member_id = $3",
                )
                .bind(organization.as_uuid())
                .bind(group)
                .bind(member)
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }
}

/// Ends actions whose job ended without them (a timeout or crash on the last attempt,
/// snoozes run out, a job cancelled by an admin): a step sent but unanswered becomes
/// `unknown`, and the action fails with its audit event (the leader calls this).
pub async fn close_orphaned_actions(store: &ActionRunStore) -> Result<u64, StoreError> {
    let orphans: Vec<(Uuid, Option<String>)> = sqlx::query_as(
        "select a.action_id, j.last_error from action_request a
         left join job j on j.job_id = a.job_id
         where a.state in ('queued', 'running')
           and (j.job_id is null or j.state in ('discarded', 'cancelled', 'completed'))
         limit 100",
    )
    .fetch_all(&store.pool)
    .await?;
    let mut closed = 0;
    for (action, last_error) in orphans {
        let id = ActionId::from_uuid(action);
        sqlx::query(
            "update action_step set state = 'unknown', error_code = 'STEP_OUTCOME_UNKNOWN',
                 error_message = 'sent, but the job ended before the answer was recorded', finished_at = now()
             where action_id = $1 and state = 'sent'",
        )
        .bind(action)
        .execute(&store.pool)
        .await?;
        let context = store.load(id).await?;
        let any_done: bool = sqlx::query_scalar(
            "select exists (select 1 from action_step where action_id = $1 and state = 'succeeded' and method <> 'GET')",
        )
        .bind(action)
        .fetch_one(&store.pool)
        .await?;
        let message = last_error.unwrap_or_else(|| "the job ended before the action".into());
        store
            .finish(
                &context,
                if any_done {
                    tenantry_domain::ActionState::PartiallySucceeded
                } else {
                    tenantry_domain::ActionState::Failed
                },
                Some(("JOB_ENDED", &message)),
            )
            .await?;
        closed += 1;
    }
    Ok(closed)
}

/// Destroys passwords nobody revealed within their lifetime, each with an audit event
/// (the leader calls this).
pub async fn destroy_expired_passwords(db: &PgPool) -> Result<u64, StoreError> {
    let mut tx = db.begin().await?;
    let gone: Vec<(Uuid, Uuid, Uuid, String)> = sqlx::query_as(
        "delete from action_secret s using action_request a
         where s.action_id = a.action_id and s.expires_at <= now()
         returning a.msp_id, a.action_id, a.organization_id, a.action",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (msp, action, organization, kind) in &gone {
        audit::append(
            &mut tx,
            MspId::from_uuid(*msp),
            NewEvent {
                kind: "action.password_destroyed",
                actor: json!({"type": "system", "component": "vault"}),
                organization_id: Some(*organization),
                action_id: Some(*action),
                action: Some(kind.clone()),
                decision: Some("destroyed".into()),
                reason: Some("not revealed within 24 hours".into()),
                ..NewEvent::default()
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(gone.len() as u64)
}
