//! The Graph calls a checked request makes, in order: what a dry run shows and what the
//! executor sends (graph-facts §6).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ActionKind, CREATED_USER, MailboxRight, PASSWORD_PLACEHOLDER, Parameters};
use crate::capabilities::Capability;

/// A user the action is about, resolved against the tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The object id; `None` for a user still to be created.
    pub id: Option<uuid::Uuid>,
    pub user_principal_name: Option<String>,
    pub display_name: Option<String>,
}

/// References resolved before planning.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    pub group_id: Option<uuid::Uuid>,
    pub manager_id: Option<uuid::Uuid>,
    /// The address Exchange knows the `user` of a mailbox-access request by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trustee: Option<String>,
    /// The distribution group of a membership request, as Exchange identifies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution_group: Option<String>,
    /// Where a forwarding goes, as found in the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<ForwardingTarget>,
    /// What an offboarding found to undo, frozen when it was requested so the dry run,
    /// the approval and the execution see the same steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offboarding: Option<OffboardingPlan>,
    /// What a BEC remediation found to remove, frozen when it was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<RemediationPlan>,
}

/// A BEC remediation's findings: the user's authentication methods and the inbox rules
/// to disable as listed at request time, and the capabilities the tenant lacks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemediationPlan {
    /// `GET …/authentication/methods` rows (`@odata.type`, `id`, `phoneType`).
    #[serde(default)]
    pub methods: Vec<Value>,
    /// Identities of the enabled rules that are neither built-in nor delegate rules.
    #[serde(default)]
    pub inbox_rules: Vec<String>,
    #[serde(default)]
    pub unavailable: Vec<Capability>,
}

/// A group an offboarded user leaves: its id (Graph object id or Exchange guid) and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedGroup {
    pub id: String,
    pub name: Option<String>,
}

/// An offboarding's findings: the memberships to end (from the last scan), who takes
/// over the mailbox, the licences held now, and the capabilities the tenant lacks (the
/// steps needing them are planned as skipped, with the reason).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffboardingPlan {
    #[serde(default)]
    pub groups: Vec<NamedGroup>,
    #[serde(default)]
    pub distribution_groups: Vec<NamedGroup>,
    /// The delegate's address (FullAccess, and the forwarding when asked).
    pub delegate: Option<String>,
    #[serde(default)]
    pub licenses: Vec<uuid::Uuid>,
    #[serde(default)]
    pub unavailable: Vec<Capability>,
}

/// A forwarding address, looked up in the tenant: a recipient of its own
/// (`ForwardingAddress`), or an SMTP address (`ForwardingSmtpAddress`) whose domain may be
/// outside the tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardingTarget {
    pub address: String,
    /// A mailbox or mail user of the tenant.
    pub internal_recipient: bool,
    /// The domain, when it is none of the tenant's (mail leaves the organization).
    pub outside_domain: Option<String>,
}

/// One call of an action: a Graph request, or an Exchange Online cmdlet (method
/// [`EXCHANGE`], the cmdlet's name as path, its parameters as body).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedStep {
    pub name: String,
    pub method: &'static str,
    /// After `/v1.0`; for an Exchange step, the cmdlet.
    pub path: String,
    /// JSON body; a password appears only as [`PASSWORD_PLACEHOLDER`].
    pub body: Option<Value>,
    /// Whether sending it twice does no harm. A step that may have been sent but whose
    /// answer was lost is sent again only when this holds.
    pub idempotent: bool,
    /// Why the step will not be sent (the tenant has not granted its capability): it is
    /// recorded `skipped` with this reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// The method of a step that is an Exchange Online cmdlet (`InvokeCommand`).
pub const EXCHANGE: &str = "EXCHANGE";

/// The rules a `disable_inbox_rules` listing found to disable: one step each (what the
/// listing's rows say, see `tenantry_graph::exchange::rules`).
pub fn disable_rule_steps(identities: &[String]) -> Vec<PlannedStep> {
    identities
        .iter()
        .map(|identity| {
            PlannedStep::new(format!("disable inbox rule {identity}"), EXCHANGE, "Disable-InboxRule".into())
                .body(json!({"Identity": identity, "AlwaysDeleteOutlookRulesBlob": true, "Confirm": false}))
        })
        .collect()
}

impl PlannedStep {
    fn new(name: impl Into<String>, method: &'static str, path: String) -> Self {
        Self {
            name: name.into(),
            method,
            path,
            body: None,
            idempotent: true,
            skipped: None,
        }
    }

    /// Skipped when the tenant has not granted `capability`.
    fn needs(mut self, capability: Capability, unavailable: &[Capability]) -> Self {
        if unavailable.contains(&capability) {
            self.skipped = Some(format!(
                "the tenant has not granted the {} capability; grant it and re-validate the organization",
                capability.as_str()
            ));
        }
        self
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn once(mut self) -> Self {
        self.idempotent = false;
        self
    }
}

/// The Graph calls of an action. `graph_base` (e.g. `https://graph.microsoft.com/v1.0`)
/// builds the `@odata.id` references Graph asks for. `mfa_reset` plans its listing here
/// and its deletes from the listing ([`mfa_delete_steps`]).
pub fn plan(
    kind: ActionKind,
    targets: &[Target],
    parameters: &Parameters,
    resolved: &Resolved,
    graph_base: &str,
) -> Vec<PlannedStep> {
    let user = |t: &Target| {
        t.id.map_or_else(|| CREATED_USER.to_owned(), |id| id.to_string())
    };
    // Exchange finds a user's mailbox by the user principal name (or, failing it, the
    // Entra object id, which it also takes as an identity).
    let mailbox = |t: &Target| t.user_principal_name.clone().unwrap_or_else(|| user(t));
    let mut steps = Vec::new();
    for target in targets {
        let id = user(target);
        match kind {
            ActionKind::PasswordReset => steps.push(password_step("set password", &id)),
            ActionKind::MfaReset => steps.push(PlannedStep::new(
                "list authentication methods",
                "GET",
                format!("/users/{id}/authentication/methods"),
            )),
            ActionKind::UnblockSignin => {
                steps.push(
                    PlannedStep::new(
                        "dismiss user risk",
                        "POST",
                        "/identityProtection/riskyUsers/dismiss".into(),
                    )
                    .body(json!({"userIds": [id]})),
                );
                steps.push(
                    PlannedStep::new("enable account", "PATCH", format!("/users/{id}"))
                        .body(json!({"accountEnabled": true})),
                );
            }
            ActionKind::ClearMailboxForwarding => {
                steps.push(clear_forwarding_step(&mailbox(target)));
            }
            // The listing plans the disables (`disable_rule_steps`), as MFA's does.
            ActionKind::DisableInboxRules => steps.push(
                PlannedStep::new("list inbox rules", EXCHANGE, "Get-InboxRule".into())
                    .body(json!({"Mailbox": mailbox(target), "IncludeHidden": true})),
            ),
            ActionKind::CreateSharedMailbox => {
                if let Parameters::NewRecipient {
                    display_name,
                    alias,
                    ..
                } = parameters
                {
                    let address = mailbox(target);
                    steps.push(
                        PlannedStep::new("create shared mailbox", EXCHANGE, "New-Mailbox".into())
                            .body(json!({
                                "Name": alias.clone().unwrap_or_else(|| local_part(&address)),
                                "DisplayName": display_name,
                                "PrimarySmtpAddress": address,
                                "Shared": true,
                            }))
                            .once(),
                    );
                }
            }
            ActionKind::ConvertToSharedMailbox => steps.push(
                PlannedStep::new("convert to shared mailbox", EXCHANGE, "Set-Mailbox".into())
                    .body(json!({"Identity": mailbox(target), "Type": "Shared"})),
            ),
            ActionKind::GrantMailboxAccess | ActionKind::RevokeMailboxAccess => {
                if let Parameters::MailboxAccess {
                    right,
                    auto_mapping,
                    ..
                } = parameters
                {
                    let trustee = resolved.trustee.clone().unwrap_or_else(|| "{user}".into());
                    steps.push(mailbox_access(
                        kind == ActionKind::GrantMailboxAccess,
                        &mailbox(target),
                        &trustee,
                        *right,
                        *auto_mapping,
                    ));
                }
            }
            ActionKind::CreateDistributionGroup => {
                if let Parameters::NewRecipient {
                    display_name,
                    alias,
                    security,
                } = parameters
                {
                    let address = mailbox(target);
                    let alias = alias.clone().unwrap_or_else(|| local_part(&address));
                    steps.push(
                        PlannedStep::new(
                            "create distribution group",
                            EXCHANGE,
                            "New-DistributionGroup".into(),
                        )
                        .body(json!({
                            "Name": alias,
                            "Alias": alias,
                            "DisplayName": display_name,
                            "PrimarySmtpAddress": address,
                            "Type": if *security { "Security" } else { "Distribution" },
                        }))
                        .once(),
                    );
                }
            }
            ActionKind::AddDistributionGroupMember | ActionKind::RemoveDistributionGroupMember => {
                let group = resolved
                    .distribution_group
                    .clone()
                    .unwrap_or_else(|| "{group}".into());
                let add = kind == ActionKind::AddDistributionGroupMember;
                steps.push(
                    PlannedStep::new(
                        if add {
                            "add distribution group member"
                        } else {
                            "remove distribution group member"
                        },
                        EXCHANGE,
                        if add {
                            "Add-DistributionGroupMember"
                        } else {
                            "Remove-DistributionGroupMember"
                        }
                        .into(),
                    )
                    .body(json!({
                        "Identity": group,
                        "Member": mailbox(target),
                        "BypassSecurityGroupManagerCheck": true,
                        "Confirm": false,
                    })),
                );
            }
            ActionKind::SetMailboxForwarding => {
                if let (Parameters::Forwarding { keep_copy, .. }, Some(forwarding)) =
                    (parameters, &resolved.forwarding)
                {
                    // One of the two fields, the other cleared: Exchange ignores the SMTP
                    // one while the recipient one is set (graph-facts-next §2.10.5).
                    let (recipient, smtp) = if forwarding.internal_recipient {
                        (json!(forwarding.address), Value::Null)
                    } else {
                        (Value::Null, json!(forwarding.address))
                    };
                    steps.push(
                        PlannedStep::new("set mailbox forwarding", EXCHANGE, "Set-Mailbox".into())
                            .body(json!({
                                "Identity": mailbox(target),
                                "ForwardingAddress": recipient,
                                "ForwardingSmtpAddress": smtp,
                                "DeliverToMailboxAndForward": keep_copy,
                            })),
                    );
                }
            }
            ActionKind::HideFromAddressLists => {
                if let Parameters::Hidden { hidden } = parameters {
                    steps.push(
                        PlannedStep::new(
                            if *hidden {
                                "hide from address lists"
                            } else {
                                "show in address lists"
                            },
                            EXCHANGE,
                            "Set-Mailbox".into(),
                        )
                        .body(json!({"Identity": mailbox(target), "HiddenFromAddressListsEnabled": hidden})),
                    );
                }
            }
            ActionKind::AssignLicense | ActionKind::RemoveLicense => {
                if let Parameters::License {
                    sku_id,
                    disabled_plans,
                    usage_location,
                } = parameters
                {
                    if let Some(location) = usage_location {
                        steps.push(
                            PlannedStep::new("set usage location", "PATCH", format!("/users/{id}"))
                                .body(json!({"usageLocation": location})),
                        );
                    }
                    let assign = kind == ActionKind::AssignLicense;
                    let body = if assign {
                        json!({"addLicenses": [{"skuId": sku_id, "disabledPlans": disabled_plans}], "removeLicenses": []})
                    } else {
                        json!({"addLicenses": [], "removeLicenses": [sku_id]})
                    };
                    steps.push(
                        PlannedStep::new(
                            if assign {
                                "assign licence"
                            } else {
                                "remove licence"
                            },
                            "POST",
                            format!("/users/{id}/assignLicense"),
                        )
                        .body(body),
                    );
                }
            }
            ActionKind::RemediateCompromisedUser => {
                if let Some(found) = &resolved.remediation {
                    steps.extend(remediation_steps(&id, &mailbox(target), found));
                }
            }
            ActionKind::OffboardUser => {
                if let (Parameters::Offboarding { .. }, Some(found)) =
                    (parameters, &resolved.offboarding)
                {
                    steps.extend(offboarding_steps(&id, &mailbox(target), parameters, found));
                }
            }
            ActionKind::RevokeSessions => steps.push(revoke_sessions_step(&id)),
            ActionKind::DisableAccount | ActionKind::EnableAccount => {
                let enable = kind == ActionKind::EnableAccount;
                steps.push(
                    PlannedStep::new(
                        if enable {
                            "enable account"
                        } else {
                            "disable account"
                        },
                        "PATCH",
                        format!("/users/{id}"),
                    )
                    .body(json!({"accountEnabled": enable})),
                );
            }
            ActionKind::UpdateUserProfile => {
                if let Parameters::Profile { changes, .. } = parameters
                    && !changes.is_empty()
                {
                    steps.push(
                        PlannedStep::new("update profile", "PATCH", format!("/users/{id}"))
                            .body(Value::Object(changes.clone())),
                    );
                }
                if let Some(manager) = resolved.manager_id {
                    steps.push(set_manager(&id, manager, graph_base));
                }
            }
            ActionKind::UpdatePhoto => {
                if let Parameters::Photo { content_type, .. } = parameters {
                    steps.push(PlannedStep {
                        name: format!("upload photo ({content_type})"),
                        ..PlannedStep::new("", "PUT", format!("/users/{id}/photo/$value"))
                    });
                }
            }
            ActionKind::GrantAccess | ActionKind::RevokeAccess => {
                let group = resolved
                    .group_id
                    .map_or_else(|| "{group-id}".to_owned(), |g| g.to_string());
                steps.push(if kind == ActionKind::GrantAccess {
                    PlannedStep::new(
                        "add group member",
                        "POST",
                        format!("/groups/{group}/members/$ref"),
                    )
                    .body(json!({"@odata.id": format!("{graph_base}/directoryObjects/{id}")}))
                } else {
                    PlannedStep::new(
                        "remove group member",
                        "DELETE",
                        format!("/groups/{group}/members/{id}/$ref"),
                    )
                });
            }
            ActionKind::CreateUser => {
                if let Parameters::NewUser {
                    profile,
                    license_sku_id,
                    ..
                } = parameters
                {
                    let upn = target.user_principal_name.clone().unwrap_or_default();
                    let mut body = profile.clone();
                    body.insert("accountEnabled".into(), json!(true));
                    body.insert("userPrincipalName".into(), json!(upn));
                    if !body.contains_key("mailNickname") {
                        let local = upn.split('@').next().unwrap_or_default();
                        let nickname: String = local
                            .chars()
                            .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
                            .collect();
                        body.insert("mailNickname".into(), json!(nickname));
                    }
                    body.insert(
                        "passwordProfile".into(),
                        json!({"forceChangePasswordNextSignIn": true, "password": PASSWORD_PLACEHOLDER}),
                    );
                    steps.push(
                        PlannedStep::new("create user", "POST", "/users".into())
                            .body(Value::Object(body))
                            .once(),
                    );
                    if let Some(manager) = resolved.manager_id {
                        steps.push(set_manager(CREATED_USER, manager, graph_base));
                    }
                    if let Some(sku) = license_sku_id {
                        steps.push(
                            PlannedStep::new(
                                "assign licence",
                                "POST",
                                format!("/users/{CREATED_USER}/assignLicense"),
                            )
                            .body(json!({
                                "addLicenses": [{"skuId": sku, "disabledPlans": []}],
                                "removeLicenses": [],
                            })),
                        );
                    }
                }
            }
        }
    }
    steps
}

/// A generated password set once, the user asked to change it at the next sign-in; the
/// password itself appears only as [`PASSWORD_PLACEHOLDER`].
fn password_step(name: &str, user: &str) -> PlannedStep {
    PlannedStep::new(name, "PATCH", format!("/users/{user}"))
        .body(json!({"passwordProfile": {
            "forceChangePasswordNextSignIn": true,
            "password": PASSWORD_PLACEHOLDER,
        }}))
        .once()
}

fn revoke_sessions_step(user: &str) -> PlannedStep {
    PlannedStep::new(
        "revoke sign-in sessions",
        "POST",
        format!("/users/{user}/revokeSignInSessions"),
    )
}

fn block_sign_in_step(user: &str) -> PlannedStep {
    PlannedStep::new("block sign-in", "PATCH", format!("/users/{user}"))
        .body(json!({"accountEnabled": false}))
}

/// Both forwarding fields `null` explicitly, as real clients clear them
/// (graph-facts-next §2.10.5).
fn clear_forwarding_step(mailbox: &str) -> PlannedStep {
    PlannedStep::new("clear mailbox forwarding", EXCHANGE, "Set-Mailbox".into())
        .body(json!({"Identity": mailbox, "ForwardingSmtpAddress": null,
               "ForwardingAddress": null, "DeliverToMailboxAndForward": false}))
}

/// BEC remediation in the order of the issue and CIPP's: the attacker's sessions end and
/// the account is locked before the mailbox is cleaned up.
fn remediation_steps(user: &str, mailbox: &str, found: &RemediationPlan) -> Vec<PlannedStep> {
    let off = &found.unavailable;
    let mut steps = vec![
        password_step("reset password", user).needs(Capability::PasswordReset, off),
        revoke_sessions_step(user).needs(Capability::RevokeSessions, off),
        block_sign_in_step(user).needs(Capability::DisableAccount, off),
    ];
    // Without a capability nothing was listed: one skipped step says what did not run.
    if off.contains(&Capability::MfaReset) {
        steps.push(
            PlannedStep::new(
                "remove MFA methods",
                "DELETE",
                format!("/users/{user}/authentication/methods"),
            )
            .needs(Capability::MfaReset, off),
        );
    }
    steps.extend(mfa_delete_steps(user, &found.methods));
    steps.push(clear_forwarding_step(mailbox).needs(Capability::Exchange, off));
    if off.contains(&Capability::Exchange) {
        steps.push(
            PlannedStep::new("disable inbox rules", EXCHANGE, "Disable-InboxRule".into())
                .needs(Capability::Exchange, off),
        );
    }
    steps.extend(disable_rule_steps(&found.inbox_rules));
    steps
}

/// Offboarding in CIPP's order (graph-facts §6, graph-facts-next §2.10): sign-in blocked
/// first so nothing happens meanwhile, the mailbox made shared before its licence goes
/// (a shared mailbox needs none; an unlicensed user mailbox is deleted after 30 days).
fn offboarding_steps(
    user: &str,
    mailbox: &str,
    parameters: &Parameters,
    found: &OffboardingPlan,
) -> Vec<PlannedStep> {
    let Parameters::Offboarding {
        forward_to_delegate,
        remove_from_groups,
        convert_to_shared,
        hide_from_address_lists,
        remove_licenses,
        ..
    } = parameters
    else {
        return Vec::new();
    };
    let off = &found.unavailable;
    let mut steps = vec![
        block_sign_in_step(user).needs(Capability::DisableAccount, off),
        password_step("reset password", user).needs(Capability::PasswordReset, off),
        revoke_sessions_step(user).needs(Capability::RevokeSessions, off),
    ];
    if *remove_from_groups {
        for group in &found.groups {
            let name = group.name.as_deref().unwrap_or(&group.id);
            steps.push(
                PlannedStep::new(
                    format!("leave group {name}"),
                    "DELETE",
                    format!("/groups/{}/members/{user}/$ref", group.id),
                )
                .needs(Capability::GrantAccess, off),
            );
        }
        for group in &found.distribution_groups {
            let name = group.name.as_deref().unwrap_or(&group.id);
            steps.push(
                PlannedStep::new(
                    format!("leave distribution group {name}"),
                    EXCHANGE,
                    "Remove-DistributionGroupMember".into(),
                )
                .body(json!({"Identity": group.id, "Member": mailbox,
                             "BypassSecurityGroupManagerCheck": true, "Confirm": false}))
                .needs(Capability::Exchange, off),
            );
        }
    }
    if *convert_to_shared {
        steps.push(
            PlannedStep::new("convert mailbox to shared", EXCHANGE, "Set-Mailbox".into())
                .body(json!({"Identity": mailbox, "Type": "Shared"}))
                .needs(Capability::Exchange, off),
        );
    }
    if let Some(delegate) = &found.delegate {
        steps.push(
            mailbox_access(true, mailbox, delegate, MailboxRight::FullAccess, true)
                .needs(Capability::Exchange, off),
        );
        if *forward_to_delegate {
            steps.push(
                PlannedStep::new("forward mail to the delegate", EXCHANGE, "Set-Mailbox".into())
                    .body(json!({"Identity": mailbox, "ForwardingAddress": delegate,
                                 "ForwardingSmtpAddress": null, "DeliverToMailboxAndForward": true}))
                    .needs(Capability::Exchange, off),
            );
        }
    }
    if *hide_from_address_lists {
        steps.push(
            PlannedStep::new("hide from address lists", EXCHANGE, "Set-Mailbox".into())
                .body(json!({"Identity": mailbox, "HiddenFromAddressListsEnabled": true}))
                .needs(Capability::Exchange, off),
        );
    }
    if *remove_licenses && !found.licenses.is_empty() {
        steps.push(
            PlannedStep::new(
                format!("remove {} licence(s)", found.licenses.len()),
                "POST",
                format!("/users/{user}/assignLicense"),
            )
            .body(json!({"addLicenses": [], "removeLicenses": found.licenses}))
            .needs(Capability::Licenses, off),
        );
    }
    steps
}

/// The part of an address before the `@`, as an Exchange name.
fn local_part(address: &str) -> String {
    address.split('@').next().unwrap_or_default().to_owned()
}

/// The cmdlet that grants or removes one right on a mailbox (graph-facts-next
/// §2.10.3–4): FullAccess and SendAs are permissions of their own, SendOnBehalf is a
/// multi-valued property of the mailbox changed with `Add`/`Remove`.
fn mailbox_access(
    grant: bool,
    mailbox: &str,
    trustee: &str,
    right: MailboxRight,
    auto_mapping: bool,
) -> PlannedStep {
    let verb = if grant { "grant" } else { "revoke" };
    let name = format!("{verb} {}", right.as_str().replace('_', " "));
    match right {
        MailboxRight::FullAccess => {
            let mut body = json!({"Identity": mailbox, "User": trustee, "AccessRights": ["FullAccess"], "Confirm": false});
            if grant {
                body["AutoMapping"] = json!(auto_mapping);
                body["InheritanceType"] = json!("All");
            }
            let cmdlet = if grant {
                "Add-MailboxPermission"
            } else {
                "Remove-MailboxPermission"
            };
            PlannedStep::new(name, EXCHANGE, cmdlet.into()).body(body)
        }
        MailboxRight::SendAs => {
            let cmdlet = if grant {
                "Add-RecipientPermission"
            } else {
                "Remove-RecipientPermission"
            };
            PlannedStep::new(name, EXCHANGE, cmdlet.into()).body(json!({"Identity": mailbox, "Trustee": trustee, "AccessRights": ["SendAs"], "Confirm": false}))
        }
        MailboxRight::SendOnBehalf => {
            PlannedStep::new(name, EXCHANGE, "Set-Mailbox".into()).body(json!({
                "Identity": mailbox,
                "GrantSendOnBehalfTo": {
                    "@odata.type": "#Exchange.GenericHashTable",
                    if grant { "Add" } else { "Remove" }: [trustee],
                },
            }))
        }
    }
}

fn set_manager(user: &str, manager: uuid::Uuid, graph_base: &str) -> PlannedStep {
    PlannedStep::new("set manager", "PUT", format!("/users/{user}/manager/$ref"))
        .body(json!({"@odata.id": format!("{graph_base}/users/{manager}")}))
}

/// The deletable collections by a method's `@odata.type` (graph-facts §6.3). The password
/// method has none: it is never deleted.
const METHOD_COLLECTIONS: [(&str, &str); 7] = [
    (
        "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
        "microsoftAuthenticatorMethods",
    ),
    ("#microsoft.graph.phoneAuthenticationMethod", "phoneMethods"),
    (
        "#microsoft.graph.softwareOathAuthenticationMethod",
        "softwareOathMethods",
    ),
    ("#microsoft.graph.fido2AuthenticationMethod", "fido2Methods"),
    ("#microsoft.graph.emailAuthenticationMethod", "emailMethods"),
    (
        "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
        "temporaryAccessPassMethods",
    ),
    (
        "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
        "windowsHelloForBusinessMethods",
    ),
];

/// One DELETE per method the listing returned, password excluded, in listed order except
/// that alternateMobile phones go first: "A user can't have an alternateMobile number
/// without a mobile number" (graph-facts §6.3), so the mobile one is refused while an
/// alternateMobile one remains. Graph v1.0 does not say which method is the default; the
/// executor learns it from Microsoft's refusal ("Cannot delete default method with other
/// methods configured") and, like any delete refused while other methods remain, sends it
/// again after the others.
pub fn mfa_delete_steps(user: &str, methods: &[Value]) -> Vec<PlannedStep> {
    let alternate_mobile = |method: &&Value| {
        method["@odata.type"] == "#microsoft.graph.phoneAuthenticationMethod"
            && method["phoneType"] == "alternateMobile"
    };
    let (first, rest): (Vec<&Value>, Vec<&Value>) = methods.iter().partition(alternate_mobile);
    first
        .into_iter()
        .chain(rest)
        .filter_map(|method| {
            let kind = method["@odata.type"].as_str()?;
            let id = method["id"].as_str()?;
            let (_, collection) = METHOD_COLLECTIONS.iter().find(|(t, _)| *t == kind)?;
            Some(PlannedStep::new(
                format!("delete {}", collection.trim_end_matches("Methods")),
                "DELETE",
                format!("/users/{user}/authentication/{collection}/{id}"),
            ))
        })
        .collect()
}
