//! [`submit`]: one request for an action, checked and stored. The order of checks is the
//! order a reviewer would ask: is it a known action, is it a retry, are the parameters
//! right, can the tenant do it, who asks, about whom, does the guard allow it, what does
//! the policy say. Refusals by the rules are recorded in the audit log before they are
//! answered; input errors are not (nothing was asked yet).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tenantry_domain::actions::{
    self, ActionKind, ForwardingTarget, MAX_TARGETS, NamedGroup, OffboardingPlan, Parameters,
    RemediationPlan, Resolved, Target, TargetKind,
};
use tenantry_domain::capabilities::Capability;
use tenantry_domain::policy::{self, Approval, Decision, Requester};
use tenantry_domain::{ErrorCode, OrganizationId, Role};
use tenantry_graph::GraphAccess;
use tenantry_store::MspScope;
use tenantry_store::actions::{ActionRecord, Created, NewAction, Refusal, StepRecord};
use uuid::Uuid;

use crate::lookup::{
    OrganizationExchange, OrganizationGraph, exchange_problem, find_recipient, graph_problem,
    not_found, organization_exchange, organization_graph, resolve_user,
};
use crate::{FieldProblem, MissingCapability, SubmitError};

/// A request for an action, as any front end received it.
#[derive(Clone, Debug)]
pub struct SubmitRequest {
    /// The action's name (`password_reset`, …).
    pub action: String,
    /// One UPN, mail or object id; a list for bulk actions; the new UPN for
    /// `create_user`.
    pub target: Value,
    pub parameters: Value,
    /// A technician's name or ticket; through a self-service gateway, the employee.
    pub requested_by: Option<String>,
    pub dry_run: bool,
}

impl SubmitRequest {
    /// A playbook step: `action` on `target`, nothing else.
    pub fn for_webhook(action: ActionKind, target: &str) -> Self {
        Self {
            action: action.as_str().to_owned(),
            target: Value::String(target.to_owned()),
            parameters: Value::Null,
            requested_by: None,
            dry_run: false,
        }
    }
}

/// A webhook playbook asking for an action.
pub struct WebhookOrigin {
    pub event: Uuid,
    pub endpoint_name: String,
    /// The rule says `approval: none`: the policy's approval is skipped (the
    /// privileged-target guard still applies).
    pub skip_policy_approval: bool,
}

/// What a request came to.
pub enum Submitted {
    DryRun(Value),
    Replayed(ActionRecord, Vec<StepRecord>),
    Created(ActionRecord),
}

/// The request's fingerprint: organization and body, with object keys sorted.
pub fn request_hash(organization: OrganizationId, body: &Value) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(organization.as_uuid().as_bytes());
    hasher.update(
        tenantry_store::audit::canonical(body)
            .to_string()
            .as_bytes(),
    );
    hasher.finalize().to_vec()
}

/// The target keys of a request: one string, or a list for bulk actions.
fn target_keys(kind: ActionKind, target: &Value) -> Result<Vec<String>, SubmitError> {
    let keys: Vec<String> = match target {
        Value::String(one) => vec![one.trim().to_owned()],
        Value::Array(many) if kind.takes_many_targets() => many
            .iter()
            .map(|v| v.as_str().map(|s| s.trim().to_owned()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| SubmitError::invalid("target", "must list strings"))?,
        Value::Array(_) => {
            return Err(SubmitError::invalid(
                "target",
                format!("{kind} takes one target"),
            ));
        }
        _ => {
            return Err(SubmitError::invalid(
                "target",
                "is required: a UPN, mail or object id",
            ));
        }
    };
    if keys.is_empty() || keys.len() > MAX_TARGETS {
        return Err(SubmitError::invalid(
            "target",
            format!("must name between 1 and {MAX_TARGETS} users"),
        ));
    }
    if keys
        .iter()
        .any(|k| k.is_empty() || k.len() > 256 || k.chars().any(char::is_control))
    {
        return Err(SubmitError::invalid(
            "target",
            "each target must be 1 to 256 characters",
        ));
    }
    Ok(keys)
}

/// An optional free-text field, checked like every name (1 to `max` characters, no
/// control characters).
pub(crate) fn checked_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, SubmitError> {
    value
        .map(|raw| {
            tenantry_domain::name::checked_text(raw, max)
                .map(str::to_owned)
                .map_err(|e| SubmitError::invalid(field, e.to_string()))
        })
        .transpose()
}

/// The capabilities the organization's last validation report found unavailable.
fn unavailable_capabilities(report: Option<&Value>) -> Vec<Capability> {
    report
        .and_then(|r| r["capabilities"].as_array())
        .into_iter()
        .flatten()
        .filter(|c| c["available"].as_bool() == Some(false))
        .filter_map(|c| c["capability"].as_str()?.parse().ok())
        .collect()
}

/// The capability check against the organization's last validation report.
fn capability_missing(report: Option<&Value>, kind: ActionKind) -> Option<SubmitError> {
    let report = report?;
    let status = report["capabilities"]
        .as_array()?
        .iter()
        .find(|c| c["capability"] == kind.capability().as_str())?;
    if status["available"].as_bool() != Some(false) {
        return None;
    }
    Some(SubmitError::CapabilityUnavailable(Box::new(
        MissingCapability {
            action: kind,
            missing_permissions: status["missing_permissions"].clone(),
            missing_directory_roles: status["missing_directory_role"].clone(),
        },
    )))
}

/// Checks a request and stores it: parameters, targets, capability, guard, policy, and
/// the idempotency key.
pub async fn submit(
    graph_access: &GraphAccess,
    scope: &MspScope<'_>,
    organization_id: OrganizationId,
    request: SubmitRequest,
    idempotency_key: Option<String>,
    hash: Vec<u8>,
    webhook: Option<WebhookOrigin>,
) -> Result<Submitted, SubmitError> {
    let organization = scope.organization(organization_id).await?;
    let kind: ActionKind = request.action.parse().map_err(|_| {
        SubmitError::invalid(
            "action",
            "is not an action Tenantry offers; see the API reference",
        )
    })?;
    if idempotency_key.is_none() && !request.dry_run {
        return Err(SubmitError::invalid(
            "Idempotency-Key",
            "header is required, so a retried request never acts twice",
        ));
    }
    if let Some(key) = &idempotency_key
        && !request.dry_run
        && let Some(record) = scope.replayed_action(key, &hash).await?
    {
        let (record, steps) = scope.action(record.action_id).await?;
        return Ok(Submitted::Replayed(record, steps));
    }
    let parameters = actions::parse_parameters(kind, &request.parameters).map_err(|errors| {
        SubmitError::Invalid(
            errors
                .into_iter()
                .map(|e| FieldProblem::new(e.field, e.message))
                .collect(),
        )
    })?;
    let gateway = scope.principal().role() == Role::SelfServiceGateway;
    let requested_by = checked_text("requested_by", request.requested_by.as_deref(), 200)?;
    let keys = target_keys(kind, &request.target)?;
    // Checked before Graph is called; recorded once the requester is known.
    let report = scope.validation_report(organization_id).await?;
    let graph = match capability_missing(report.as_ref(), kind) {
        Some(missing) => Err(missing),
        None => Ok(organization_graph(graph_access, scope, &organization).await?),
    };

    // Who asks.
    let employee = match (gateway, &graph) {
        (false, _) => None,
        (true, Err(_)) => Some(None),
        (true, Ok(graph)) => {
            let Some(who) = requested_by.as_deref() else {
                return Err(SubmitError::invalid(
                    "requested_by",
                    "is required with a self-service gateway key: the employee asking",
                ));
            };
            let found = resolve_user(scope, organization_id, graph, who)
                .await?
                .and_then(|t| t.id)
                .ok_or_else(|| not_found("employee", who))?;
            Some(Some(found))
        }
    };
    let actor = match (&webhook, employee) {
        (Some(origin), _) => scope.webhook_actor(origin.event, &origin.endpoint_name),
        (None, Some(user)) => scope.actor(user, None),
        (None, None) => scope.actor(None, requested_by.clone()),
    };
    let employee = employee.flatten();
    let graph = match graph {
        Ok(graph) => graph,
        Err(missing) => {
            if !request.dry_run {
                scope
                    .record_action_refusal(
                        &actor,
                        Refusal {
                            organization: organization_id,
                            kind,
                            targets: json!(keys),
                            parameters: parameters.to_record(),
                            code: ErrorCode::CapabilityUnavailable,
                            detail: "the tenant has not granted what the action needs".into(),
                        },
                    )
                    .await?;
            }
            return Err(missing);
        }
    };

    // What about.
    let mut tenant = Tenant {
        graph_access,
        scope,
        organization: &organization,
        graph: &graph,
        exchange: None,
    };
    let targets = tenant.targets(kind, &keys, &parameters).await?;
    let mut resolved = tenant.resolved(&parameters).await?;
    if let (Parameters::Offboarding { .. }, Some(target)) = (&parameters, targets.first()) {
        resolved.offboarding = Some(
            tenant
                .offboarding(target, &parameters, report.as_ref())
                .await?,
        );
    }
    if let Parameters::License { .. } = &parameters {
        tenant.check_licence(kind, &targets, &parameters).await?;
    }
    if let (ActionKind::RemediateCompromisedUser, Some(target)) = (kind, targets.first()) {
        resolved.remediation = Some(tenant.remediation(target, report.as_ref()).await?);
    }

    // Privileged targets, as Microsoft says now.
    let mut privileged = Vec::new();
    let mut privileged_names = Vec::new();
    for target in &targets {
        let Some(user) = target.id else { continue };
        let roles = tenantry_graph::actions::user_roles(&graph.http, &graph.token, user)
            .await
            .map_err(|f| graph_problem(&f))?;
        let names: Vec<String> = roles
            .into_iter()
            .filter(|(template, _)| actions::is_privileged_role(template))
            .map(|(_, name)| name)
            .collect();
        if !names.is_empty() {
            privileged.push(json!({"user_id": user, "roles": names}));
            privileged_names.extend(names);
        }
    }

    let (mut policy, _) = scope.action_policy(organization_id, kind).await?;
    if webhook.as_ref().is_some_and(|w| w.skip_policy_approval) {
        policy.approval = Approval::None;
    }
    let requester = match employee {
        Some(user) => Requester::Employee {
            is_target: targets.len() == 1 && targets[0].id == Some(user),
        },
        None => Requester::Technician,
    };
    let mut decision = policy::decide(kind, &policy, requester, &privileged_names);
    if let Some(domain) = resolved
        .forwarding
        .as_ref()
        .and_then(|f| f.outside_domain.as_deref())
    {
        decision = policy::outside_forwarding(decision, domain, &policy);
    }
    if employee.is_some()
        && !matches!(decision, Decision::Refuse { .. })
        && let Err(detail) =
            policy::self_service_scope(kind, &parameters, resolved.group_id, &policy)
    {
        decision = Decision::Refuse {
            code: ErrorCode::SelfServiceNotAllowed,
            detail,
        };
    }
    let approval_reason = match decision {
        Decision::Refuse { code, detail } if request.dry_run => {
            return Err(SubmitError::refused(code, detail));
        }
        Decision::Refuse { code, detail } => {
            scope
                .record_action_refusal(
                    &actor,
                    Refusal {
                        organization: organization_id,
                        kind,
                        targets: json!(targets),
                        parameters: parameters.to_record(),
                        code,
                        detail: detail.clone(),
                    },
                )
                .await?;
            return Err(SubmitError::refused(code, detail));
        }
        Decision::NeedsApproval { reason } => Some(reason),
        Decision::Proceed => None,
    };
    if request.dry_run {
        let base = graph_access.http().config().graph("");
        let mut steps = actions::plan(kind, &targets, &parameters, &resolved, &base);
        if kind == ActionKind::MfaReset
            && let Some(user) = targets.first().and_then(|t| t.id)
        {
            let methods = tenantry_graph::calls::get(
                &graph.http,
                &graph.token,
                &format!("/users/{user}/authentication/methods"),
            )
            .await
            .map_err(|f| graph_problem(&f))?;
            let listed = methods["value"].as_array().cloned().unwrap_or_default();
            steps.extend(actions::mfa_delete_steps(&user.to_string(), &listed));
        }
        return Ok(Submitted::DryRun(json!({
            "dry_run": true,
            "action": kind,
            "organization_id": organization_id,
            "targets": targets,
            "parameters": parameters.to_record(),
            "decision": if approval_reason.is_some() { "would_wait_for_approval" } else { "would_queue" },
            "approval_reason": approval_reason,
            "privileged_targets": privileged,
            "steps": steps,
        })));
    }
    let attachment = match &parameters {
        Parameters::Photo { bytes, .. } => Some(bytes.clone()),
        _ => None,
    };
    let new = NewAction {
        organization: organization_id,
        kind,
        targets,
        parameters: parameters.to_record(),
        resolved,
        attachment,
        idempotency_key,
        request_hash: hash,
        privileged_targets: Value::Array(privileged),
        approval_reason,
        approvers: policy.approvers.clone(),
        approval_ttl_secs: policy.approval_ttl_secs,
    };
    Ok(match scope.request_action(new, &actor).await? {
        Created::New(record) => Submitted::Created(record),
        Created::Replayed(record) => {
            let steps = scope.action(record.action_id).await?.1;
            Submitted::Replayed(record, steps)
        }
    })
}

/// What the request's checks reach in the tenant: Graph, and Exchange's admin API once a
/// mailbox or distribution group must be looked up there.
struct Tenant<'a> {
    graph_access: &'a GraphAccess,
    scope: &'a MspScope<'a>,
    organization: &'a tenantry_store::OrganizationRecord,
    graph: &'a OrganizationGraph,
    exchange: Option<OrganizationExchange>,
}

impl Tenant<'_> {
    fn organization_id(&self) -> OrganizationId {
        self.organization.id
    }

    async fn user(&self, key: &str) -> Result<Option<Target>, SubmitError> {
        resolve_user(self.scope, self.organization_id(), self.graph, key).await
    }

    async fn exchange(&mut self) -> Result<&OrganizationExchange, SubmitError> {
        if self.exchange.is_none() {
            self.exchange = Some(
                organization_exchange(self.graph_access, self.scope, self.organization).await?,
            );
        }
        self.exchange
            .as_ref()
            .ok_or_else(|| SubmitError::refused(ErrorCode::InternalError, "no Exchange access"))
    }

    /// A mailbox by address, alias or guid: a user's (so the guard sees the user), else
    /// one of the inventory's mailboxes, else what Exchange finds now.
    async fn mailbox(&mut self, key: &str) -> Result<Option<Target>, SubmitError> {
        if let Some(user) = self.user(key).await? {
            return Ok(Some(user));
        }
        let found = match self
            .scope
            .inventory_mailbox(self.organization_id(), key)
            .await
        {
            Ok(found) => Some((
                found.data["recipientTypeDetails"]
                    .as_str()
                    .map(str::to_owned),
                found.data["userId"].as_str().map(str::to_owned),
                found.data["primarySmtpAddress"].as_str().map(str::to_owned),
                found.display_name,
            )),
            Err(tenantry_store::StoreError::NotFound) => None,
            Err(error) => return Err(error.into()),
        };
        let found = match found {
            Some(found) => Some(found),
            None => {
                let exchange = self.exchange().await?;
                find_recipient(exchange, "Get-Mailbox", key)
                    .await?
                    .map(|row| {
                        let text = |name: &str| row[name].as_str().map(str::to_owned);
                        (
                            text("RecipientTypeDetails"),
                            text("ExternalDirectoryObjectId"),
                            text("PrimarySmtpAddress"),
                            text("DisplayName"),
                        )
                    })
            }
        };
        let Some((kind, user_id, address, display_name)) = found else {
            return Ok(None);
        };
        // A user's mailbox found by alias or another address is still that user: the
        // privileged-target guard must see them.
        if kind.as_deref() == Some("UserMailbox") {
            return match user_id {
                Some(id) => self.user(&id).await,
                None => Ok(None),
            };
        }
        Ok(Some(Target {
            id: None,
            user_principal_name: address,
            display_name,
        }))
    }

    /// Whether an address is already some recipient's: a user, a mailbox or a group.
    async fn address_taken(&mut self, address: &str) -> Result<bool, SubmitError> {
        if self.mailbox(address).await?.is_some() {
            return Ok(true);
        }
        let exchange = self.exchange().await?;
        Ok(find_recipient(exchange, "Get-DistributionGroup", address)
            .await?
            .is_some())
    }

    /// The objects a request is about: a new user, mailbox or group that must not exist
    /// yet, or existing users or mailboxes (each once).
    async fn targets(
        &mut self,
        kind: ActionKind,
        keys: &[String],
        parameters: &Parameters,
    ) -> Result<Vec<Target>, SubmitError> {
        let mut targets = Vec::new();
        match kind.target_kind() {
            TargetKind::NewUser => {
                let upn = actions::parse_new_upn(&keys[0])
                    .map_err(|e| SubmitError::invalid(e.field, e.message))?;
                if self.user(&upn).await?.is_some() {
                    return Err(SubmitError::invalid(
                        "target",
                        "a user with this principal name already exists",
                    ));
                }
                targets.push(Target {
                    id: None,
                    user_principal_name: Some(upn),
                    display_name: match parameters {
                        Parameters::NewUser { profile, .. } => profile
                            .get("displayName")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        _ => None,
                    },
                });
            }
            TargetKind::NewMailbox | TargetKind::NewDistributionGroup => {
                let address = keys[0].to_ascii_lowercase();
                if !actions::is_mail_address(&address) {
                    return Err(SubmitError::invalid(
                        "target",
                        "must be the new recipient's primary address, local@domain",
                    ));
                }
                if self.address_taken(&address).await? {
                    return Err(SubmitError::invalid(
                        "target",
                        "this address is already used by a user, mailbox or group",
                    ));
                }
                let display_name = match parameters {
                    Parameters::NewRecipient { display_name, .. } => Some(display_name.clone()),
                    _ => None,
                };
                targets.push(Target {
                    id: None,
                    user_principal_name: Some(address),
                    display_name,
                });
            }
            TargetKind::Mailbox => {
                let target = self
                    .mailbox(&keys[0])
                    .await?
                    .ok_or_else(|| not_found("mailbox", &keys[0]))?;
                targets.push(target);
            }
            TargetKind::User => {
                for key in keys {
                    let target = self
                        .user(key)
                        .await?
                        .ok_or_else(|| not_found("user", key))?;
                    if !targets.iter().any(|t: &Target| t.id == target.id) {
                        targets.push(target);
                    }
                }
            }
        }
        Ok(targets)
    }

    /// The objects a request's parameters name (a group, a manager, a trustee, a
    /// forwarding address), resolved against the tenant.
    async fn resolved(&mut self, parameters: &Parameters) -> Result<Resolved, SubmitError> {
        let (scope, organization, graph) = (self.scope, self.organization_id(), self.graph);
        let mut resolved = Resolved::default();
        match parameters {
            Parameters::Group { group } => {
                let found = scope.inventory_groups_by_key(organization, group).await?;
                resolved.group_id = match found.as_slice() {
                    [one] => Some(one.id),
                    [] => match group.parse::<Uuid>() {
                        Ok(group_id) => {
                            tenantry_graph::actions::find_group(&graph.http, &graph.token, group_id)
                                .await
                                .map_err(|f| graph_problem(&f))?
                                .map(|_| group_id)
                        }
                        Err(_) => None,
                    },
                    _ => {
                        return Err(SubmitError::invalid(
                            "parameters.group",
                            "matches several groups; give the group's object id",
                        ));
                    }
                };
                if resolved.group_id.is_none() {
                    return Err(not_found("group", group));
                }
            }
            Parameters::MailboxAccess { user, .. } => {
                let found = self
                    .user(user)
                    .await?
                    .ok_or_else(|| not_found("user", user))?;
                resolved.trustee = found
                    .user_principal_name
                    .or_else(|| found.id.map(|id| id.to_string()));
            }
            Parameters::DistributionGroup { group } => {
                resolved.distribution_group = Some(self.distribution_group(group).await?);
            }
            Parameters::Forwarding { forward_to, .. } => {
                resolved.forwarding = Some(self.forwarding(forward_to).await?);
            }
            _ => {}
        }
        if let Some(manager) = parameters.manager() {
            let found = self
                .user(manager)
                .await?
                .ok_or_else(|| not_found("manager", manager))?;
            resolved.manager_id = found.id;
        }
        Ok(resolved)
    }

    /// What offboarding `target` will undo, read now: the memberships of the last scan,
    /// the delegate (named, else the user's manager), the licences Graph says the user
    /// holds, and the capabilities the last validation found missing.
    async fn offboarding(
        &mut self,
        target: &Target,
        parameters: &Parameters,
        report: Option<&Value>,
    ) -> Result<OffboardingPlan, SubmitError> {
        let Parameters::Offboarding {
            delegate,
            forward_to_delegate,
            remove_from_groups,
            remove_licenses,
            ..
        } = parameters
        else {
            return Ok(OffboardingPlan::default());
        };
        let Some(user) = target.id else {
            return Err(not_found("user", ""));
        };
        let (http, token) = (&self.graph.http, &self.graph.token);
        let mut plan = OffboardingPlan {
            unavailable: unavailable_capabilities(report),
            ..OffboardingPlan::default()
        };
        if *remove_from_groups {
            let address = target.user_principal_name.clone().unwrap_or_default();
            let memberships = self
                .scope
                .inventory_memberships(self.organization_id(), user, &address)
                .await?;
            plan.groups = memberships
                .graph_groups
                .into_iter()
                .map(|(id, name)| NamedGroup {
                    id: id.to_string(),
                    name,
                })
                .collect();
            plan.distribution_groups = memberships
                .distribution_groups
                .into_iter()
                .map(|(id, name)| NamedGroup { id, name })
                .collect();
        }
        plan.delegate = match delegate {
            Some(key) => {
                let found = self
                    .user(key)
                    .await?
                    .ok_or_else(|| not_found("delegate", key))?;
                if found.id == Some(user) {
                    return Err(SubmitError::invalid(
                        "parameters.delegate",
                        "must be someone other than the user being offboarded",
                    ));
                }
                found.user_principal_name
            }
            None => match tenantry_graph::calls::get(
                http,
                token,
                &format!("/users/{user}/manager?$select=id,userPrincipalName"),
            )
            .await
            {
                Ok(manager) => manager["userPrincipalName"].as_str().map(str::to_owned),
                Err(tenantry_graph::calls::GraphFailure::NotFound) => None,
                Err(failure) => return Err(graph_problem(&failure)),
            },
        };
        if *forward_to_delegate && plan.delegate.is_none() {
            return Err(SubmitError::invalid(
                "parameters.forward_to_delegate",
                "needs a delegate: the user has no manager, so name one in `delegate`",
            ));
        }
        if *remove_licenses {
            let held = tenantry_graph::calls::get(
                http,
                token,
                &format!("/users/{user}?$select=id,assignedLicenses"),
            )
            .await
            .map_err(|f| graph_problem(&f))?;
            plan.licenses = held["assignedLicenses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["skuId"].as_str()?.parse().ok())
                .collect();
        }
        Ok(plan)
    }

    /// What a BEC remediation of `target` will remove, listed now: the authentication
    /// methods (Graph) and the inbox rules to disable (Exchange, hidden ones included),
    /// each only where the tenant granted the capability to remove them.
    async fn remediation(
        &mut self,
        target: &Target,
        report: Option<&Value>,
    ) -> Result<RemediationPlan, SubmitError> {
        use tenantry_graph::exchange::{Cmdlet, Exchange, ExchangeFailure, rules::InboxRule};
        let Some(user) = target.id else {
            return Err(not_found("user", ""));
        };
        let mut plan = RemediationPlan {
            unavailable: unavailable_capabilities(report),
            ..RemediationPlan::default()
        };
        if !plan.unavailable.contains(&Capability::MfaReset) {
            let methods = tenantry_graph::calls::get(
                &self.graph.http,
                &self.graph.token,
                &format!("/users/{user}/authentication/methods"),
            )
            .await
            .map_err(|f| graph_problem(&f))?;
            plan.methods = methods["value"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| json!({"@odata.type": m["@odata.type"], "id": m["id"], "phoneType": m["phoneType"]}))
                .collect();
        }
        if !plan.unavailable.contains(&Capability::Exchange) {
            let mailbox = target
                .user_principal_name
                .clone()
                .unwrap_or_else(|| user.to_string());
            let exchange = self.exchange().await?;
            let rows = Exchange::new(&exchange.http, &exchange.token, exchange.tenant)
                .run(&Cmdlet::new(
                    "Get-InboxRule",
                    json!({"Mailbox": mailbox, "IncludeHidden": true}),
                ))
                .await;
            plan.inbox_rules = match rows {
                Ok(rows) => rows
                    .iter()
                    .filter_map(InboxRule::from_row)
                    .filter(InboxRule::to_disable)
                    .map(|r| r.identity)
                    .collect(),
                // A user without a mailbox has no rules to disable.
                Err(ExchangeFailure::NotFound { .. }) => Vec::new(),
                Err(failure) => return Err(exchange_problem(failure, "listed the inbox rules")),
            };
        }
        Ok(plan)
    }

    /// Microsoft's licence rules, checked before anything is stored so the requester
    /// sees them as field errors: the tenant subscribes to the SKU; an assignment has a
    /// free seat per user who lacks it and a usage location for each (or one to set);
    /// a removal names users who hold the SKU.
    async fn check_licence(
        &self,
        kind: ActionKind,
        targets: &[Target],
        parameters: &Parameters,
    ) -> Result<(), SubmitError> {
        let Parameters::License {
            sku_id,
            usage_location,
            ..
        } = parameters
        else {
            return Ok(());
        };
        let (http, token) = (&self.graph.http, &self.graph.token);
        let skus = tenantry_graph::calls::get(http, token, "/subscribedSkus")
            .await
            .map_err(|f| graph_problem(&f))?;
        let sku_text = sku_id.to_string();
        let Some(sku) = skus["value"].as_array().into_iter().flatten().find(|s| {
            s["skuId"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(&sku_text))
        }) else {
            return Err(SubmitError::invalid(
                "parameters.sku_id",
                "the tenant does not subscribe to this SKU (GET …/licenses lists those it does)",
            ));
        };
        let mut lacking = Vec::new();
        let mut holding = Vec::new();
        let mut unlocated = Vec::new();
        for target in targets {
            let Some(user) = target.id else { continue };
            let found = tenantry_graph::calls::get(
                http,
                token,
                &format!(
                    "/users/{user}?$select=id,userPrincipalName,usageLocation,assignedLicenses"
                ),
            )
            .await
            .map_err(|f| graph_problem(&f))?;
            let name = target
                .user_principal_name
                .clone()
                .unwrap_or_else(|| user.to_string());
            let holds = found["assignedLicenses"].as_array().is_some_and(|held| {
                held.iter().any(|l| {
                    l["skuId"]
                        .as_str()
                        .is_some_and(|id| id.eq_ignore_ascii_case(&sku_text))
                })
            });
            if holds {
                holding.push(name.clone());
            } else {
                lacking.push(name.clone());
            }
            if found["usageLocation"].as_str().is_none_or(str::is_empty) {
                unlocated.push(name);
            }
        }
        if kind == ActionKind::RemoveLicense {
            if !lacking.is_empty() {
                return Err(SubmitError::invalid(
                    "target",
                    format!(
                        "does not hold this SKU, so there is nothing to remove: {}",
                        lacking.join(", ")
                    ),
                ));
            }
            return Ok(());
        }
        if usage_location.is_none() && !unlocated.is_empty() {
            return Err(SubmitError::invalid(
                "parameters.usage_location",
                format!(
                    "is required: Microsoft refuses licences to users without a usage location, and these have none: {} (give a two-letter country code such as \"US\" to set it first)",
                    unlocated.join(", ")
                ),
            ));
        }
        let units = |v: &Value| v.as_i64().unwrap_or(0);
        let purchased = units(&sku["prepaidUnits"]["enabled"]);
        let consumed = units(&sku["consumedUnits"]);
        let free = (purchased - consumed).max(0);
        let needed = i64::try_from(lacking.len()).unwrap_or(i64::MAX);
        if needed > free {
            return Err(SubmitError::invalid(
                "parameters.sku_id",
                format!(
                    "{needed} seat(s) needed but {free} free ({purchased} purchased, {consumed} assigned); buy more or free some first"
                ),
            ));
        }
        Ok(())
    }

    /// A distribution group's Exchange guid: the inventory's (by guid, address or name),
    /// else what Exchange finds now.
    async fn distribution_group(&mut self, key: &str) -> Result<String, SubmitError> {
        let page = tenantry_store::Page {
            after: None,
            limit: 5,
        };
        let found = self
            .scope
            .inventory_distribution_groups(self.organization_id(), Some(key), page)
            .await?;
        let exact: Vec<_> = found
            .iter()
            .filter(|g| {
                g.id.eq_ignore_ascii_case(key)
                    || g.display_name
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(key))
                    || g.data["primarySmtpAddress"]
                        .as_str()
                        .is_some_and(|a| a.eq_ignore_ascii_case(key))
            })
            .collect();
        match exact.as_slice() {
            [one] => return Ok(one.id.clone()),
            [] => {}
            _ => {
                return Err(SubmitError::invalid(
                    "parameters.group",
                    "matches several groups; give the group's address or id",
                ));
            }
        }
        let exchange = self.exchange().await?;
        find_recipient(exchange, "Get-DistributionGroup", key)
            .await?
            .and_then(|row| row["Guid"].as_str().map(str::to_owned))
            .ok_or_else(|| not_found("distribution group", key))
    }

    /// Where a forwarding goes: a recipient of the tenant, or an address in one of its
    /// domains, or outside (Graph's `/domains` says which domains are the tenant's).
    async fn forwarding(&mut self, address: &str) -> Result<ForwardingTarget, SubmitError> {
        if let Some(recipient) = self.mailbox(address).await? {
            return Ok(ForwardingTarget {
                address: recipient
                    .user_principal_name
                    .unwrap_or_else(|| address.to_owned()),
                internal_recipient: true,
                outside_domain: None,
            });
        }
        let domain = address
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        let domains =
            tenantry_graph::calls::get(&self.graph.http, &self.graph.token, "/domains?$select=id")
                .await
                .map_err(|f| graph_problem(&f))?;
        let own = domains["value"].as_array().is_some_and(|all| {
            all.iter().any(|d| {
                d["id"]
                    .as_str()
                    .is_some_and(|id| id.eq_ignore_ascii_case(&domain))
            })
        });
        Ok(ForwardingTarget {
            address: address.to_owned(),
            internal_recipient: false,
            outside_domain: (!own).then_some(domain),
        })
    }
}
