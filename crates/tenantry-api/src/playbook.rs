//! The `webhook_event` job: runs the playbook an event's rule names, one action after
//! another on the event's target. Each step is an ordinary action request (requester: the
//! endpoint), so policies, the privileged-target guard, approvals and the audit log apply
//! unchanged. A step is requested once the one before it ended: the playbook's job ends
//! while a step runs or waits for approval, and the step's end, decision or expiry queues
//! the playbook again. A denied or expired step ends it. Retries and overlapping runs are
//! safe: each step's idempotency key is the event and the step's position.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tenantry_jobs::{Handler, Outcome};
use tenantry_store::queue::ClaimedJob;
use tenantry_store::webhooks::{PlaybookContext, WEBHOOK_JOB};
use tenantry_store::{Store, StoreError};
use uuid::Uuid;

use crate::routes::actions::{
    ActionRequest, GraphAccess, Submitted, WebhookOrigin, request_hash, submit,
};

pub struct PlaybookHandler {
    store: Store,
    graph: GraphAccess,
}

/// The job handlers that need more than the engine's defaults: webhook playbooks (which
/// request actions through the API's checks) and Graph subscriptions (which need the
/// service's public URL).
pub fn job_handlers(
    store: &Store,
    http: tenantry_graph::GraphHttp,
    public_url: Option<String>,
) -> Vec<Arc<dyn Handler>> {
    vec![
        Arc::new(PlaybookHandler {
            store: store.clone(),
            graph: GraphAccess {
                http: http.clone(),
                tokens: tenantry_graph::TokenCache::default(),
            },
        }),
        Arc::new(tenantry_jobs::subscriptions::SubscriptionHandler::new(
            store.change_notifications(),
            http,
            public_url,
        )),
    ]
}

/// Where the playbook stands after this run.
enum Progress {
    Done(&'static str),
    Parked,
    Waiting,
}

impl PlaybookHandler {
    async fn run_job(&self, job: &ClaimedJob) -> Outcome {
        let Some(id) = job.args["webhook_event_id"]
            .as_str()
            .and_then(|v| v.parse::<Uuid>().ok())
        else {
            return Outcome::Discard("job arguments name no webhook event".into());
        };
        let playbooks = self.store.playbooks();
        let context = match playbooks.load(id).await {
            Ok(context) => context,
            Err(StoreError::NotFound) => return Outcome::Discard("the event is gone".into()),
            Err(error) => return Outcome::Retry(format!("database: {error}")),
        };
        if matches!(
            context.event.state.as_str(),
            "completed" | "failed" | "ignored"
        ) {
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
            Ok(Progress::Parked) => ("waiting_for_approval", Outcome::Done),
            // The step's end queues the playbook again.
            Ok(Progress::Waiting) => ("running", Outcome::Done),
            // Out of attempts: the delivery says so instead of staying `running`.
            Err(Outcome::Retry(reason)) if last_attempt => {
                outcome.push(json!({"code": "UPSTREAM_UNAVAILABLE", "detail": reason}));
                ("failed", Outcome::Discard(reason))
            }
            Err(outcome_on_error) => ("running", outcome_on_error),
        };
        match playbooks.update(id, state, &Value::Array(outcome)).await {
            Ok(()) => result,
            Err(error) => Outcome::Retry(format!("database: {error}")),
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
            Ok(Progress::Done("failed"))
        };
        let Some(rule) = &context.rule else {
            return Ok(Progress::Done("ignored"));
        };
        if !context.endpoint_active {
            return refuse(
                outcome,
                "ENDPOINT_REVOKED",
                "the endpoint was revoked before the playbook ran",
            );
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
                return refuse(outcome, "ENDPOINT_REVOKED", "the endpoint was revoked");
            }
            Err(error) => return Err(Outcome::Retry(format!("database: {error}"))),
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
            let request = ActionRequest::for_webhook(*kind, target);
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
                Err(error) => {
                    let (code, status, detail) = error.summary();
                    if status == 503 || status >= 500 {
                        return Err(Outcome::Retry(format!("{code}: {detail}")));
                    }
                    json!({"action": kind, "code": code, "detail": detail})
                }
            };
            let state = entry["state"].as_str().unwrap_or("refused").to_owned();
            if position < outcome.len() {
                outcome[position] = entry;
            } else {
                outcome.push(entry);
            }
            match state.as_str() {
                "succeeded" | "failed" | "partially_succeeded" | "refused" => continue,
                "pending_approval" => return Ok(Progress::Parked),
                "denied" | "expired" => return Ok(Progress::Done("failed")),
                _ => return Ok(Progress::Waiting),
            }
        }
        let all_succeeded = outcome.iter().all(|e| e["state"] == "succeeded");
        Ok(Progress::Done(if all_succeeded {
            "completed"
        } else {
            "failed"
        }))
    }
}

impl Handler for PlaybookHandler {
    fn kind(&self) -> &'static str {
        WEBHOOK_JOB
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(120)
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob) -> tenantry_jobs::engine::JobFuture<'a> {
        Box::pin(self.run_job(job))
    }
}
