//! The `webhook_event` job: runs the playbook an event's rule names, one action after
//! another on the event's target. Each step is an ordinary action request (requester: the
//! endpoint), so policies, the privileged-target guard, approvals and the audit log apply
//! unchanged. A step is requested once the one before it ended: the playbook's job ends
//! while a step runs or waits for approval, and the step's end, decision or expiry queues
//! the playbook again. A denied or expired step ends it. Retries and overlapping runs are
//! safe: each step's idempotency key is the event and the step's position.

use std::time::Duration;

use serde_json::{Value, json};
use tenantry_actions::{
    SubmitError, SubmitRequest, Submitted, WebhookOrigin, request_hash, submit,
};
use tenantry_domain::{ActionState, WebhookEventState as EventState};
use tenantry_graph::GraphAccess;
use tenantry_store::jobs::WebhookJob;
use tenantry_store::queue::ClaimedJob;
use tenantry_store::webhooks::PlaybookContext;
use tenantry_store::{Store, StoreError};
use uuid::Uuid;

use crate::engine::{JobFuture, JobHandler, Outcome};

pub struct PlaybookHandler {
    store: Store,
    graph: GraphAccess,
}

impl PlaybookHandler {
    pub fn new(store: Store, graph: GraphAccess) -> Self {
        Self { store, graph }
    }
}

/// Where the playbook stands after this run.
enum Progress {
    Done(EventState),
    Parked,
    Waiting,
}

impl PlaybookHandler {
    async fn run_job(&self, job: &ClaimedJob, args: WebhookJob) -> Outcome {
        let id = args.webhook_event_id;
        let playbooks = self.store.playbooks();
        let context = match playbooks.load(id).await {
            Ok(context) => context,
            Err(StoreError::NotFound) => return Outcome::Discard("the event is gone".into()),
            Err(error) => {
                return Outcome::Retry(format!(
                    "database: {}",
                    tenantry_domain::error_chain(&error)
                ));
            }
        };
        if context.event.state.is_final() {
            return Outcome::Done;
        }
        let mut outcome: Vec<Value> = context
            .event
            .outcome
            .as_array()
            .cloned()
            .unwrap_or_default();
        let progress = self.advance(id, &context, &mut outcome).await;
        let last_attempt = job.attempt >= job.max_attempts;
        let (state, result) = match progress {
            Ok(Progress::Done(state)) => (state, Outcome::Done),
            Ok(Progress::Parked) => (EventState::WaitingForApproval, Outcome::Done),
            // The step's end queues the playbook again.
            Ok(Progress::Waiting) => (EventState::Running, Outcome::Done),
            // Out of attempts: the delivery says so instead of staying `running`.
            Err(Outcome::Retry(reason)) if last_attempt => {
                outcome.push(json!({"code": "UPSTREAM_UNAVAILABLE", "detail": reason}));
                (EventState::Failed, Outcome::Discard(reason))
            }
            Err(outcome_on_error) => (EventState::Running, outcome_on_error),
        };
        match playbooks.update(id, state, &Value::Array(outcome)).await {
            Ok(()) => result,
            Err(error) => Outcome::Retry(format!(
                "database: {}",
                tenantry_domain::error_chain(&error)
            )),
        }
    }

    /// Runs steps until one must be waited for, or the playbook ends.
    async fn advance(
        &self,
        id: Uuid,
        context: &PlaybookContext,
        outcome: &mut Vec<Value>,
    ) -> Result<Progress, Outcome> {
        let refuse = |outcome: &mut Vec<Value>, code: &str, detail: &str| {
            outcome.push(json!({"code": code, "detail": detail}));
            Ok(Progress::Done(EventState::Failed))
        };
        let Some(rule) = &context.rule else {
            return Ok(Progress::Done(EventState::Ignored));
        };
        if !context.endpoint_active {
            return self
                .after_revocation(context, rule.actions.len(), outcome)
                .await;
        }
        let (Some(organization), Some(target)) = (
            context.event.organization_id,
            context.event.target.as_deref(),
        ) else {
            return refuse(
                outcome,
                "INVALID_REQUEST",
                "the event names no organization or no target",
            );
        };
        let principal = match self
            .store
            .endpoint_principal(context.event.endpoint_id)
            .await
        {
            Ok(principal) => principal,
            Err(StoreError::NotFound) => {
                return self
                    .after_revocation(context, rule.actions.len(), outcome)
                    .await;
            }
            Err(error) => {
                return Err(Outcome::Retry(format!(
                    "database: {}",
                    tenantry_domain::error_chain(&error)
                )));
            }
        };
        let scope = self.store.scope(&principal);
        for (position, kind) in rule.actions.iter().enumerate() {
            // A step refused earlier stays refused; the playbook goes on without it.
            if outcome
                .get(position)
                .is_some_and(|e| e.get("code").is_some())
            {
                continue;
            }
            let request = SubmitRequest::for_webhook(*kind, target);
            let hash = request_hash(
                organization,
                &json!({"webhook_event_id": id, "position": position, "action": kind, "target": target}),
            );
            let origin = WebhookOrigin {
                event: id,
                endpoint_name: context.endpoint_name.clone(),
                skip_policy_approval: rule.approval
                    == tenantry_domain::webhooks::RuleApproval::None,
            };
            let submitted = submit(
                &self.graph,
                &scope,
                organization,
                request,
                Some(format!("webhook:{id}:{position}")),
                hash,
                Some(origin),
            )
            .await;
            let entry = match submitted {
                Ok(Submitted::Created(record) | Submitted::Replayed(record, _)) => {
                    json!({"action": kind, "action_id": record.action_id, "state": record.state})
                }
                Ok(Submitted::DryRun(_)) => {
                    json!({"action": kind, "code": "INTERNAL_ERROR", "detail": "unexpected dry run"})
                }
                Err(error) if error.is_retryable() => {
                    return Err(Outcome::Retry(error.to_string()));
                }
                // The endpoint was revoked while this step was being requested.
                Err(SubmitError::Store(StoreError::CallerRevoked)) => {
                    return self
                        .after_revocation(context, rule.actions.len(), outcome)
                        .await;
                }
                // A step the tenant has not granted what it needs for is skipped, with
                // the reason, and the playbook goes on (CIPP's model: partial success
                // visible per step, never a step silently dropped).
                Err(error) if error.code() == tenantry_domain::ErrorCode::CapabilityUnavailable => {
                    json!({"action": kind, "state": "skipped", "code": error.code(), "detail": error.detail()})
                }
                Err(error) => {
                    json!({"action": kind, "code": error.code(), "detail": error.detail()})
                }
            };
            let state = step_state(&entry);
            if position < outcome.len() {
                outcome[position] = entry;
            } else {
                outcome.push(entry);
            }
            match state {
                // Refused: the playbook goes on without it.
                None => continue,
                Some(state) if state.has_run() => continue,
                Some(ActionState::PendingApproval) => return Ok(Progress::Parked),
                Some(ActionState::Denied | ActionState::Expired) => {
                    return Ok(Progress::Done(EventState::Failed));
                }
                Some(_) => return Ok(Progress::Waiting),
            }
        }
        Ok(Progress::Done(ended(outcome)))
    }
}

impl PlaybookHandler {
    /// The endpoint was revoked: no further step is requested, but steps requested
    /// before keep their real state (and are waited for while they run), so the delivery
    /// says what ran.
    async fn after_revocation(
        &self,
        context: &PlaybookContext,
        steps: usize,
        outcome: &mut Vec<Value>,
    ) -> Result<Progress, Outcome> {
        let requested: Vec<Uuid> = outcome
            .iter()
            .filter_map(|e| e["action_id"].as_str()?.parse().ok())
            .collect();
        let states = self
            .store
            .playbooks()
            .action_states(context.msp_id, &requested)
            .await
            .map_err(|e| {
                Outcome::Retry(format!("database: {}", tenantry_domain::error_chain(&e)))
            })?;
        for entry in outcome.iter_mut() {
            let current = entry["action_id"]
                .as_str()
                .and_then(|id| id.parse::<Uuid>().ok())
                .and_then(|id| states.get(&id));
            if let Some(state) = current {
                entry["state"] = Value::String(state.clone());
            }
        }
        while outcome.len() < steps {
            outcome.push(json!({
                "code": "ENDPOINT_REVOKED",
                "detail": "the endpoint was revoked before this step was requested; it did not run",
            }));
        }
        let states: Vec<_> = outcome.iter().map(step_state).collect();
        if states.contains(&Some(ActionState::PendingApproval)) {
            return Ok(Progress::Parked);
        }
        if states.iter().flatten().any(|state| !state.is_final()) {
            return Ok(Progress::Waiting);
        }
        Ok(Progress::Done(ended(outcome)))
    }
}

/// A step's action state, as its outcome entry records it (`None`: refused, no action).
fn step_state(entry: &Value) -> Option<ActionState> {
    entry["state"].as_str()?.parse().ok()
}

/// How a playbook whose steps all ended ends: completed only if every step succeeded.
fn ended(outcome: &[Value]) -> EventState {
    if outcome
        .iter()
        .all(|e| step_state(e) == Some(ActionState::Succeeded))
    {
        EventState::Completed
    } else {
        EventState::Failed
    }
}

impl JobHandler for PlaybookHandler {
    type Args = WebhookJob;

    fn timeout(&self) -> Duration {
        Duration::from_secs(120)
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob, args: WebhookJob) -> JobFuture<'a> {
        Box::pin(self.run_job(job, args))
    }
}
