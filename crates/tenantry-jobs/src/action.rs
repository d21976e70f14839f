//! The `action` job: carries out an approved or policy-cleared action step by step.
//!
//! Each Graph call is recorded before it is sent (`sent`) and after it answers, so a retry
//! after a crash, a timeout or a 5xx resumes after the last completed step. A step whose
//! answer was lost is sent again only when it is idempotent; a password is never set
//! twice (the step is marked `unknown` and the sealed password stays revealable).
//! Throttling (429, or 503 with `Retry-After`) puts the step back and snoozes the job;
//! Microsoft's 4xx verdicts fail the step with Microsoft's code and request id kept.
//! The privileged-target guard is checked again just before the first write.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tenantry_domain::actions::{
    self, ActionKind, CREATED_USER, PASSWORD_PLACEHOLDER, Parameters, Resolved, Target,
};
use tenantry_domain::policy::PrivilegedGuard;
use tenantry_domain::{ActionId, ActionState, OrganizationId};
use tenantry_graph::GraphAccess;
use tenantry_graph::actions::{Body, WriteFailure, send, user_roles};
use tenantry_store::StoreError;
use tenantry_store::action_runs::{ActionRunStore, InventoryChange, RunContext, StepOutcome};
use tenantry_store::actions::StepRecord;
use tenantry_store::jobs::ActionJob;
use tenantry_store::queue::ClaimedJob;

use crate::credentials::{NoToken, organization_token};
use crate::engine::{JobFuture, JobHandler, Outcome};
use crate::password;

/// Microsoft's rule for the default MFA method (graph-facts §6.3), matched on its message
/// because the code of that 400 is UNVERIFIED.
const DEFAULT_METHOD_REFUSAL: &str = "Cannot delete default method";
/// Identity Protection throttles at one request per second without `Retry-After`.
const THROTTLE_WITHOUT_RETRY_AFTER: Duration = Duration::from_secs(2);

/// The tokens an action's steps are sent with, each fetched the first time a step needs
/// it: Graph's, and Exchange's with the tenant whose admin API takes the cmdlets (read
/// with the credential, once per run).
#[derive(Default)]
struct Tokens {
    graph: Option<SecretString>,
    exchange: Option<(SecretString, uuid::Uuid)>,
}

/// The cmdlets an action step may name (a stored step names one of these, nothing else).
const EXCHANGE_CMDLETS: [&str; 11] = [
    "Set-Mailbox",
    "Get-InboxRule",
    "Disable-InboxRule",
    "New-Mailbox",
    "Add-MailboxPermission",
    "Remove-MailboxPermission",
    "Add-RecipientPermission",
    "Remove-RecipientPermission",
    "New-DistributionGroup",
    "Add-DistributionGroupMember",
    "Remove-DistributionGroupMember",
];

pub struct ActionHandler {
    store: ActionRunStore,
    graph: GraphAccess,
    refusals: tenantry_store::TokenRefusals,
}

/// Why execution stopped before every step ran.
enum Halt {
    /// Come back later (the outcome for the engine).
    Later(Outcome),
    /// The action ends now in `failed` with this code and message.
    Fail(String, String),
}

impl From<StoreError> for Halt {
    fn from(error: StoreError) -> Self {
        Halt::Later(Outcome::Retry(format!(
            "database: {}",
            tenantry_domain::error_chain(&error)
        )))
    }
}

/// A Graph failure while reading (guard check, listing): wait or retry.
fn read_failure(failure: &tenantry_graph::calls::GraphFailure) -> Halt {
    use tenantry_graph::calls::GraphFailure;
    match failure {
        GraphFailure::Throttled { retry_after } => Halt::Later(Outcome::Snooze(
            retry_after.unwrap_or(THROTTLE_WITHOUT_RETRY_AFTER),
            "throttled by Microsoft".into(),
        )),
        GraphFailure::Unavailable(cause) => {
            Halt::Later(Outcome::Retry(format!("Microsoft Graph: {cause}")))
        }
        other => Halt::Fail("GRAPH_REFUSED".into(), other.to_string()),
    }
}

impl ActionHandler {
    pub fn new(
        store: ActionRunStore,
        graph: GraphAccess,
        refusals: tenantry_store::TokenRefusals,
    ) -> Self {
        Self {
            store,
            graph,
            refusals,
        }
    }

    async fn run_job(&self, job: &ClaimedJob, args: ActionJob) -> Outcome {
        let id = args.action_id;
        let context = match self.store.load(id).await {
            Ok(context) => context,
            Err(StoreError::NotFound) => return Outcome::Discard("the action is gone".into()),
            Err(error) => {
                return Outcome::Retry(format!(
                    "database: {}",
                    tenantry_domain::error_chain(&error)
                ));
            }
        };
        match context.record.state {
            ActionState::Queued | ActionState::Running => {}
            state if state.has_run() => return Outcome::Done,
            other => return Outcome::Discard(format!("the action is {other}, not approved")),
        }
        let last_attempt = job.attempt >= job.max_attempts;
        match self.execute(id, &context).await {
            Ok(()) => Outcome::Done,
            Err(Halt::Fail(code, message)) => self.fail(&context, &code, &message).await,
            Err(Halt::Later(Outcome::Retry(reason))) if last_attempt => {
                self.fail(&context, "UPSTREAM_UNAVAILABLE", &reason).await
            }
            Err(Halt::Later(outcome)) => outcome,
        }
    }

    async fn fail(&self, context: &RunContext, code: &str, message: &str) -> Outcome {
        let steps = match self.store.steps(context.record.action_id).await {
            Ok(steps) => steps,
            Err(error) => {
                return Outcome::Retry(format!(
                    "database: {}",
                    tenantry_domain::error_chain(&error)
                ));
            }
        };
        let state = end_state(&steps);
        match self
            .store
            .finish(context, state, Some((code, message)))
            .await
        {
            Ok(()) => Outcome::Discard(format!("{code}: {message}")),
            Err(error) => Outcome::Retry(format!(
                "database: {}",
                tenantry_domain::error_chain(&error)
            )),
        }
    }

    /// The organization's Exchange token and its tenant (where the cmdlets go).
    async fn exchange_token(
        &self,
        organization: OrganizationId,
    ) -> Result<(SecretString, uuid::Uuid), Halt> {
        let stored = self.store.credential(organization).await?;
        let token = self
            .graph
            .exchange_token(stored.tenant_id, stored.client_id, &stored.credential)
            .await
            .map_err(|failure| match failure {
                tenantry_graph::TokenFailure::Unavailable(cause) => Halt::Later(Outcome::Retry(
                    format!("Microsoft's login service: {cause}"),
                )),
                refused => Halt::Fail("INVALID_CREDENTIALS".into(), refused.to_string()),
            })?;
        Ok((token, stored.tenant_id))
    }

    async fn graph_token(
        &self,
        organization: OrganizationId,
        tokens: &mut Tokens,
    ) -> Result<SecretString, Halt> {
        if let Some(token) = &tokens.graph {
            return Ok(token.clone());
        }
        let token = self.token(organization).await?;
        tokens.graph = Some(token.clone());
        Ok(token)
    }

    /// What `step` is sent with: an Exchange step's token and tenant, or Graph's token.
    async fn signer(
        &self,
        organization: OrganizationId,
        step: &StepRecord,
        tokens: &mut Tokens,
    ) -> Result<(SecretString, Option<uuid::Uuid>), Halt> {
        if step.method != actions::EXCHANGE {
            return Ok((self.graph_token(organization, tokens).await?, None));
        }
        if tokens.exchange.is_none() {
            tokens.exchange = Some(self.exchange_token(organization).await?);
        }
        let (token, tenant) = tokens
            .exchange
            .as_ref()
            .ok_or_else(|| Halt::Fail("INTERNAL_ERROR".into(), "no Exchange token".into()))?;
        Ok((token.clone(), Some(*tenant)))
    }

    /// Sends an Exchange step (`EXCHANGE` method: the path is the cmdlet) and answers
    /// as a Graph write would, so the rest of the executor treats both alike.
    async fn send_cmdlet(
        &self,
        tenant: uuid::Uuid,
        token: &SecretString,
        cmdlet: &str,
        parameters: Option<&Value>,
    ) -> Result<tenantry_graph::actions::Answer, WriteFailure> {
        use tenantry_graph::exchange::{Cmdlet, Exchange, ExchangeFailure};
        let Some(name) = EXCHANGE_CMDLETS
            .iter()
            .find(|c| c.eq_ignore_ascii_case(cmdlet))
        else {
            return Err(WriteFailure::Refused {
                status: 400,
                code: "UnknownCmdlet".into(),
                message: format!("{cmdlet} is not a cmdlet Tenantry sends"),
                request_id: None,
            });
        };
        let cmdlet = Cmdlet::new(name, parameters.cloned().unwrap_or(json!({})));
        match Exchange::new(self.graph.http(), token, tenant)
            .run(&cmdlet)
            .await
        {
            Ok(rows) => Ok(tenantry_graph::actions::Answer {
                status: 200,
                body: json!({"value": rows}),
                request_id: None,
            }),
            Err(ExchangeFailure::Throttled { retry_after }) => Err(WriteFailure::Throttled {
                retry_after,
                request_id: None,
            }),
            Err(ExchangeFailure::Unavailable(cause)) => Err(WriteFailure::Unavailable {
                cause,
                request_id: None,
            }),
            Err(ExchangeFailure::NotAllowed { cmdlet }) => Err(WriteFailure::Refused {
                status: 401,
                code: "Unauthorized".into(),
                message: format!(
                    "User is not allowed to call {cmdlet}: the app needs an Exchange role"
                ),
                request_id: None,
            }),
            Err(ExchangeFailure::NotFound { exception, message }) => Err(WriteFailure::Refused {
                status: 404,
                code: exception,
                message,
                request_id: None,
            }),
            Err(ExchangeFailure::Refused {
                exception, message, ..
            }) => Err(WriteFailure::Refused {
                status: 400,
                code: exception,
                message,
                request_id: None,
            }),
        }
    }

    async fn token(&self, organization: OrganizationId) -> Result<SecretString, Halt> {
        let stored = self.store.credential(organization).await?;
        organization_token(
            &self.graph,
            crate::credentials::Refusals {
                log: &self.refusals,
                organization,
            },
            stored.tenant_id,
            stored.client_id,
            &stored.credential,
        )
        .await
        .map_err(|missing| match missing {
            NoToken::Later(cause) => Halt::Later(Outcome::Retry(cause)),
            NoToken::Refused(detail) => Halt::Fail("INVALID_CREDENTIALS".into(), detail),
        })
    }

    async fn execute(&self, id: ActionId, context: &RunContext) -> Result<(), Halt> {
        let record = &context.record;
        let kind: ActionKind = record.action.parse().map_err(|e: actions::UnknownAction| {
            Halt::Fail("INVALID_REQUEST".into(), e.to_string())
        })?;
        let organization = record.organization_id;
        let targets: Vec<Target> = serde_json::from_value(record.targets.clone())
            .map_err(|e| Halt::Fail("INTERNAL_ERROR".into(), format!("targets: {e}")))?;
        // Exchange steps send cmdlets, with a token for Exchange's resource; each token
        // is fetched when a step first needs it (a skipped step needs none). A Graph
        // action's credentials are proven before anything is recorded as begun.
        let mut tokens = Tokens::default();
        if !kind.runs_in_exchange() {
            self.graph_token(organization, &mut tokens).await?;
        }
        self.store.begin(context).await?;
        let mut steps = self.store.steps(id).await?;
        if steps.is_empty() {
            // The guard reads the targets' roles from Graph, with a Graph token.
            let graph_token = self.graph_token(organization, &mut tokens).await?;
            self.guard(kind, organization, record, &targets, &graph_token)
                .await?;
            let parameters = match kind {
                ActionKind::UpdatePhoto => Parameters::Photo {
                    content_type: record.parameters["content_type"]
                        .as_str()
                        .unwrap_or("image/jpeg")
                        .to_owned(),
                    bytes: Vec::new(),
                },
                _ => actions::parse_parameters(kind, &record.parameters).map_err(|errors| {
                    Halt::Fail("INVALID_REQUEST".into(), format!("parameters: {errors:?}"))
                })?,
            };
            let resolved: Resolved =
                serde_json::from_value(record.resolved.clone()).unwrap_or_default();
            let base = self.graph.http().config().graph("");
            let plan = actions::plan(kind, &targets, &parameters, &resolved, &base);
            self.store.add_steps(id, &plan).await?;
            steps = self.store.steps(id).await?;
        }
        let mut deferred = Vec::new();
        let mut index = 0;
        while index < steps.len() {
            let step = steps[index].clone();
            index += 1;
            let again = kind == ActionKind::MfaReset && steps.len() == 1;
            match step.state.as_str() {
                "succeeded" if again => {}
                "succeeded" | "failed" | "unknown" | "skipped" => continue,
                "sent" if !step.idempotent => {
                    self.store
                        .finish_step(
                            id,
                            step.position,
                            StepOutcome {
                                state: "unknown",
                                http_status: None,
                                request_id: None,
                                error_code: Some("STEP_OUTCOME_UNKNOWN"),
                                error_message: Some(
                                    "sent, but the answer was lost; not sent again because it must happen at most once",
                                ),
                                detail: None,
                            },
                        )
                        .await?;
                    if kind == ActionKind::CreateUser && step.path == "/users" {
                        break;
                    }
                    continue;
                }
                _ => {}
            }
            match self
                .send_step(id, context, kind, &step, &steps, &mut tokens)
                .await?
            {
                // Later steps may need what this one learned (a created user's id, the
                // deletes an MFA listing planned).
                StepResult::Done => steps = self.store.steps(id).await?,
                StepResult::Deferred(refusal) => deferred.push((step, refusal)),
                // Nothing can follow a user that was not created; other steps are
                // independent of each other.
                StepResult::Failed => {
                    if kind == ActionKind::CreateUser && step.path == "/users" {
                        break;
                    }
                }
            }
        }
        // Some MFA deletes are refused only while other methods remain (the default method
        // until it is the last one; a mobile phone while an alternateMobile one remains;
        // graph-facts §6.3): they are sent again after the others, round after round while
        // a round deletes something. What is still refused then fails with Microsoft's
        // own refusal.
        while !deferred.is_empty() {
            let waiting = deferred.len();
            let mut refused = Vec::new();
            for (step, _) in deferred {
                let steps = self.store.steps(id).await?;
                if let StepResult::Deferred(refusal) = self
                    .send_step(id, context, kind, &step, &steps, &mut tokens)
                    .await?
                {
                    refused.push((step, refusal));
                }
            }
            if refused.len() == waiting {
                for (step, refusal) in refused {
                    let code = if refusal.message.contains(DEFAULT_METHOD_REFUSAL) {
                        "DEFAULT_METHOD".to_owned()
                    } else {
                        graph_code(&refusal.code, refusal.status)
                    };
                    self.store
                        .finish_step(
                            id,
                            step.position,
                            StepOutcome {
                                state: "failed",
                                http_status: Some(refusal.status),
                                request_id: refusal.request_id.as_deref(),
                                error_code: Some(&code),
                                error_message: Some(&format!(
                                    "Microsoft still refuses this delete after the other methods: {}",
                                    refusal.message
                                )),
                                detail: None,
                            },
                        )
                        .await?;
                }
                break;
            }
            deferred = refused;
        }
        let steps = self.store.steps(id).await?;
        let first_problem = steps.iter().find(|s| {
            matches!(
                s.state.as_str(),
                "failed" | "unknown" | "pending" | "skipped"
            )
        });
        let (state, error) = match first_problem {
            None => (ActionState::Succeeded, None),
            Some(step) => (
                end_state(&steps),
                Some((
                    step.error_code
                        .clone()
                        .unwrap_or_else(|| "STEP_NOT_RUN".into()),
                    step.error_message
                        .clone()
                        .unwrap_or_else(|| format!("step {:?} did not run", step.name)),
                )),
            ),
        };
        let error = error.as_ref().map(|(c, m)| (c.as_str(), m.as_str()));
        self.store.finish(context, state, error).await?;
        Ok(())
    }

    /// The guard, again, just before the first write: roles may have changed since the
    /// request (or its approval).
    async fn guard(
        &self,
        kind: ActionKind,
        organization: OrganizationId,
        record: &tenantry_store::actions::ActionRecord,
        targets: &[Target],
        token: &SecretString,
    ) -> Result<(), Halt> {
        if kind.creates_target() {
            return Ok(());
        }
        let policy = self.store.policy(organization, kind).await?;
        if policy.privileged_guard == PrivilegedGuard::Off {
            return Ok(());
        }
        let mut privileged = Vec::new();
        for target in targets {
            let Some(user) = target.id else { continue };
            let roles = user_roles(self.graph.http(), token, user)
                .await
                .map_err(|f| read_failure(&f))?;
            privileged.extend(
                roles
                    .into_iter()
                    .filter(|(template, _)| actions::is_privileged_role(template))
                    .map(|(_, name)| name),
            );
        }
        if privileged.is_empty() {
            return Ok(());
        }
        // An approver who saw the target's privileges when approving has decided; one
        // who approved before the target became privileged has not.
        let seen_by_approver = record.decided_by_key.is_some()
            && targets.iter().filter_map(|t| t.id).all(|user| {
                record.privileged_targets.as_array().is_some_and(|listed| {
                    listed
                        .iter()
                        .any(|p| p["user_id"] == user.to_string().as_str())
                })
            });
        if policy.privileged_guard == PrivilegedGuard::RequireApproval && seen_by_approver {
            return Ok(());
        }
        Err(Halt::Fail(
            "PRIVILEGED_TARGET".into(),
            format!(
                "checked again before execution, the target holds privileged directory roles ({}); nothing was changed",
                privileged.join(", ")
            ),
        ))
    }

    /// Sends one step and records its outcome.
    async fn send_step(
        &self,
        id: ActionId,
        context: &RunContext,
        kind: ActionKind,
        step: &StepRecord,
        steps: &[StepRecord],
        tokens: &mut Tokens,
    ) -> Result<StepResult, Halt> {
        let organization = context.record.organization_id;
        // Before anything is marked sent: without a token nothing leaves.
        let (token, exchange_tenant) = self.signer(organization, step, tokens).await?;
        let created = steps
            .iter()
            .find_map(|s| s.detail.as_ref()?["created_id"].as_str().map(str::to_owned));
        let fill = |text: &str| match &created {
            Some(user) => text.replace(CREATED_USER, user),
            None => text.to_owned(),
        };
        let path = fill(&step.path);
        let mut body = step
            .detail
            .as_ref()
            .and_then(|d| d.get("request"))
            .map(|b| serde_json::from_str::<Value>(&fill(&b.to_string())).unwrap_or(Value::Null));
        if path.contains(CREATED_USER) {
            return Err(Halt::Fail(
                "STEP_NOT_RUN".into(),
                "the user was not created, so later steps cannot run".into(),
            ));
        }
        // A password is generated and sealed before it leaves: whatever happens next, the
        // requester can still reveal what Microsoft may have set.
        let mut password = None;
        if let Some(Value::Object(object)) = body.as_mut()
            && let Some(profile) = object.get_mut("passwordProfile")
            && profile["password"] == PASSWORD_PLACEHOLDER
        {
            // A retry sends the password sealed the first time: the one that may be
            // revealed is always the one Microsoft may have set.
            let generated = match self.store.sealed_password(id, organization).await? {
                Some(sealed) => sealed,
                None => {
                    let fresh = password::generate()
                        .map_err(|e| Halt::Later(Outcome::Retry(e.to_string())))?;
                    self.store.seal_password(id, organization, &fresh).await?;
                    fresh
                }
            };
            profile["password"] = json!(generated.expose_secret());
            password = Some(generated);
        }
        let payload = match (&body, kind) {
            (_, ActionKind::UpdatePhoto) => Body::Bytes {
                content_type: context.record.parameters["content_type"]
                    .as_str()
                    .unwrap_or("image/jpeg"),
                bytes: context.attachment.as_deref().unwrap_or_default(),
            },
            (Some(body), _) => Body::Json(body),
            (None, _) => Body::None,
        };
        if !self.store.mark_sent(id, step.position).await? {
            return Err(Halt::Later(Outcome::Retry(format!(
                "step {:?} is being sent by another worker",
                step.name
            ))));
        }
        let result = match (step.method.as_str(), exchange_tenant) {
            (actions::EXCHANGE, Some(tenant)) => {
                self.send_cmdlet(tenant, &token, &path, body.as_ref()).await
            }
            (actions::EXCHANGE, None) => {
                return Err(Halt::Fail(
                    "INTERNAL_ERROR".into(),
                    "an Exchange step without Exchange's tenant".into(),
                ));
            }
            _ => send(self.graph.http(), &token, &step.method, &path, payload).await,
        };
        drop(body);
        drop(password);
        match result {
            Ok(answer) => {
                let mut detail = None;
                if kind == ActionKind::MfaReset && step.position == 0 {
                    let methods = answer.body["value"].as_array().cloned().unwrap_or_default();
                    let user = path
                        .trim_start_matches("/users/")
                        .split('/')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let deletes = actions::mfa_delete_steps(&user, &methods);
                    detail = Some(json!({"methods": methods.len(), "to_delete": deletes.len()}));
                    if steps.len() == 1 {
                        self.store.add_steps(id, &deletes).await?;
                    }
                }
                if kind == ActionKind::DisableInboxRules && step.position == 0 {
                    let rules: Vec<tenantry_graph::exchange::rules::InboxRule> =
                        answer.body["value"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(tenantry_graph::exchange::rules::InboxRule::from_row)
                            .collect();
                    // Only the listed rules, when the request lists some (by name or
                    // identity); never a built-in or delegate rule either way.
                    let listed: Vec<String> = context.record.parameters["rules"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r.as_str().map(str::to_owned))
                        .collect();
                    let chosen = |r: &tenantry_graph::exchange::rules::InboxRule| {
                        listed.is_empty()
                            || listed.iter().any(|l| {
                                l.eq_ignore_ascii_case(&r.name)
                                    || l.eq_ignore_ascii_case(&r.identity)
                            })
                    };
                    let identities: Vec<String> = rules
                        .iter()
                        .filter(|r| r.to_disable() && chosen(r))
                        .map(|r| r.identity.clone())
                        .collect();
                    detail = Some(json!({
                        "rules": rules.len(),
                        "to_disable": identities.len(),
                        "left_alone": rules.iter().filter(|r| !(r.to_disable() && chosen(r))).map(|r| json!({"name": r.name, "built_in": r.built_in, "delegate_rule": r.delegate_rule, "enabled": r.enabled})).collect::<Vec<_>>(),
                    }));
                    if steps.len() == 1 {
                        self.store
                            .add_steps(id, &actions::disable_rule_steps(&identities))
                            .await?;
                    }
                }
                if kind == ActionKind::CreateUser && step.method == "POST" && step.path == "/users"
                {
                    detail = Some(json!({"created_id": answer.body["id"]}));
                }
                // Offboarding says how many seats it returned (CyberDrain/CIPP #291).
                if matches!(kind, ActionKind::OffboardUser | ActionKind::RemoveLicense)
                    && step.path.ends_with("/assignLicense")
                {
                    let returned = step
                        .detail
                        .as_ref()
                        .and_then(|d| d["request"]["removeLicenses"].as_array())
                        .map_or(0, Vec::len);
                    detail = Some(json!({"licenses_returned": returned}));
                }
                self.record(
                    id,
                    step,
                    "succeeded",
                    Some(answer.status),
                    answer.request_id.as_deref(),
                    None,
                    detail,
                )
                .await?;
                self.update_inventory(context, kind, step, &path).await;
                Ok(StepResult::Done)
            }
            Err(WriteFailure::Throttled {
                retry_after,
                request_id,
            }) => {
                // Not processed: the step goes back to pending and the job waits.
                self.record(
                    id,
                    step,
                    "pending",
                    Some(429),
                    request_id.as_deref(),
                    None,
                    None,
                )
                .await?;
                Err(Halt::Later(Outcome::Snooze(
                    retry_after.unwrap_or(THROTTLE_WITHOUT_RETRY_AFTER),
                    format!("throttled by Microsoft at step {:?}", step.name),
                )))
            }
            Err(WriteFailure::Unavailable { cause, request_id }) => {
                // An answered 5xx changed nothing; a lost connection may have: then the
                // step stays `sent` and only an idempotent one is sent again.
                // A gateway timeout may have been processed behind the gateway.
                let maybe_applied = cause == "HTTP 504" && !step.idempotent;
                if !maybe_applied && (request_id.is_some() || cause.starts_with("HTTP ")) {
                    self.record(id, step, "pending", None, request_id.as_deref(), None, None)
                        .await?;
                }
                Err(Halt::Later(Outcome::Retry(format!(
                    "Microsoft Graph at step {:?}: {cause}",
                    step.name
                ))))
            }
            Err(WriteFailure::Refused {
                status,
                code,
                message,
                request_id,
            }) => {
                let request_id = request_id.as_deref();
                // Desired state already holds: Microsoft says so in its own words.
                let note = match (kind, status) {
                    (ActionKind::GrantAccess, 400) if message.contains("already exist") => {
                        Some("already a member; nothing changed")
                    }
                    (ActionKind::RevokeAccess, 404) => Some("not a member; nothing changed"),
                    (ActionKind::OffboardUser, 404) if step.method == "DELETE" => {
                        Some("not a member any more; nothing changed")
                    }
                    // Exchange names the state in its exception type (graph-facts-next
                    // §2.8, §2.10.8); the not-a-member one is UNVERIFIED.
                    (ActionKind::AddDistributionGroupMember, _)
                        if exception_is(&code, "MemberAlreadyExistsException") =>
                    {
                        Some("already a member; nothing changed")
                    }
                    (ActionKind::RemoveDistributionGroupMember | ActionKind::OffboardUser, _)
                        if exception_is(&code, "MemberNotFoundException") =>
                    {
                        Some("not a member; nothing changed")
                    }
                    (ActionKind::MfaReset, 404) if step.method == "DELETE" => {
                        Some("already removed; nothing changed")
                    }
                    (ActionKind::RemediateCompromisedUser, 404)
                        if step.method == "DELETE" && step.path.contains("/authentication/") =>
                    {
                        Some("already removed; nothing changed")
                    }
                    _ => None,
                };
                if let Some(note) = note {
                    self.record(
                        id,
                        step,
                        "succeeded",
                        Some(status),
                        request_id,
                        None,
                        Some(json!({"note": note})),
                    )
                    .await?;
                    return Ok(StepResult::Done);
                }
                // A refused MFA delete may pass once the other methods are gone (the
                // default method; a mobile phone behind an alternateMobile one).
                let mfa_delete = step.method == "DELETE"
                    && (kind == ActionKind::MfaReset
                        || (kind == ActionKind::RemediateCompromisedUser
                            && step.path.contains("/authentication/")));
                if mfa_delete && status == 400 {
                    let note = if message.contains(DEFAULT_METHOD_REFUSAL) {
                        "the default method; sent again after the others"
                    } else {
                        "refused while other methods remain; sent again after the others"
                    };
                    self.record(
                        id,
                        step,
                        "pending",
                        Some(status),
                        request_id,
                        None,
                        Some(json!({"note": note})),
                    )
                    .await?;
                    return Ok(StepResult::Deferred(Refusal {
                        status,
                        code,
                        message,
                        request_id: request_id.map(str::to_owned),
                    }));
                }
                if kind.generates_password() && !step.idempotent {
                    // Refused outright, so never set: nothing to reveal.
                    self.store.discard_password(id).await?;
                }
                self.record(
                    id,
                    step,
                    "failed",
                    Some(status),
                    request_id,
                    Some((&graph_code(&code, status), &message)),
                    None,
                )
                .await?;
                Ok(StepResult::Failed)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        id: ActionId,
        step: &StepRecord,
        state: &str,
        http_status: Option<u16>,
        request_id: Option<&str>,
        error: Option<(&str, &str)>,
        detail: Option<Value>,
    ) -> Result<(), StoreError> {
        self.store
            .finish_step(
                id,
                step.position,
                StepOutcome {
                    state,
                    http_status,
                    request_id,
                    error_code: error.map(|e| e.0),
                    error_message: error.map(|e| e.1),
                    detail,
                },
            )
            .await
    }

    /// Makes a result visible in the inventory before the next scan. A failure here is
    /// logged, not fatal: the next scan corrects the inventory anyway.
    async fn update_inventory(
        &self,
        context: &RunContext,
        kind: ActionKind,
        step: &StepRecord,
        path: &str,
    ) {
        let organization = context.record.organization_id;
        let user = path
            .split('/')
            .find_map(|segment| segment.parse::<uuid::Uuid>().ok());
        let body = step.detail.as_ref().and_then(|d| d.get("request"));
        let change = match (kind, user) {
            (_, None) => None,
            (ActionKind::GrantAccess | ActionKind::RevokeAccess, Some(group))
            | (ActionKind::OffboardUser, Some(group))
                if kind != ActionKind::OffboardUser || step.method == "DELETE" =>
            {
                let member = path
                    .split('/')
                    .filter_map(|s| s.parse::<uuid::Uuid>().ok())
                    .nth(1)
                    .or_else(|| {
                        body.and_then(|b| b["@odata.id"].as_str())
                            .and_then(|r| r.rsplit('/').next())
                            .and_then(|id| id.parse().ok())
                    });
                member.map(|member| InventoryChange::Membership {
                    group,
                    member,
                    added: kind == ActionKind::GrantAccess,
                })
            }
            (_, Some(user)) if step.method == "PATCH" => match body {
                Some(b) if b.get("accountEnabled").is_some() => {
                    Some(InventoryChange::AccountEnabled {
                        user,
                        enabled: b["accountEnabled"].as_bool().unwrap_or(true),
                    })
                }
                Some(b) if b.get("passwordProfile").is_none() => Some(InventoryChange::Profile {
                    user,
                    changes: b.clone(),
                }),
                _ => None,
            },
            _ => None,
        };
        if let Some(change) = change
            && let Err(error) = self.store.update_inventory(organization, change).await
        {
            tracing::warn!(action_id = %context.record.action_id, %error, "could not update the inventory after an action");
        }
    }
}

/// How an action that did not fully succeed ends: `partially_succeeded` when any write
/// went through (reads such as the MFA listing do not count), else `failed`.
fn end_state(steps: &[StepRecord]) -> ActionState {
    if steps
        .iter()
        .any(|s| s.state == "succeeded" && s.method != "GET")
    {
        ActionState::PartiallySucceeded
    } else {
        ActionState::Failed
    }
}

enum StepResult {
    Done,
    /// An MFA delete Microsoft refused while other methods remain, to send again later.
    Deferred(Refusal),
    Failed,
}

/// Microsoft's answer to a deferred MFA delete.
struct Refusal {
    status: u16,
    code: String,
    message: String,
    request_id: Option<String>,
}

/// Whether an Exchange refusal's code (its exception type) is `name`.
fn exception_is(code: &str, name: &str) -> bool {
    code.rsplit('.').next() == Some(name)
}

/// Microsoft's code, or the HTTP status when the body named none.
fn graph_code(code: &str, status: u16) -> String {
    if code.is_empty() {
        format!("HTTP_{status}")
    } else {
        code.to_owned()
    }
}

impl JobHandler for ActionHandler {
    type Args = ActionJob;

    fn timeout(&self) -> Duration {
        Duration::from_secs(120)
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob, args: ActionJob) -> JobFuture<'a> {
        Box::pin(self.run_job(job, args))
    }
}
