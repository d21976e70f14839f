//! The write cmdlets (graph-facts-next §2.10.2–§2.10.9): they change the tenant's Exchange
//! organisation, so later reads see them. Membership and `Set-*` cmdlets answer an empty
//! `value` on success (§2.6).

use serde_json::Value;

use super::cmdlets::{Output, required, rule_key_matches};
use super::errors::{self, ExoError};
use super::objects::{self, Params, list_of};
use crate::model::exchange::{Exchange, Grant, GroupType, smtp};
use crate::scenario::exchange::MailboxKind;

pub fn run(exchange: &mut Exchange, cmdlet: &str, params: &Params) -> Result<Output, ExoError> {
    match cmdlet {
        "Set-Mailbox" => set_mailbox(exchange, params),
        "New-Mailbox" => new_mailbox(exchange, params),
        "Add-MailboxPermission" => add_full_access(exchange, params),
        "Remove-MailboxPermission" => remove_full_access(exchange, params),
        "Add-RecipientPermission" => add_send_as(exchange, params),
        "Remove-RecipientPermission" => remove_send_as(exchange, params),
        "New-DistributionGroup" => new_group(exchange, params),
        "Set-DistributionGroup" => set_group(exchange, params),
        "Add-DistributionGroupMember" => add_member(exchange, params),
        "Remove-DistributionGroupMember" => remove_member(exchange, params),
        "Disable-InboxRule" => set_rule_enabled(exchange, params, false),
        "Enable-InboxRule" => set_rule_enabled(exchange, params, true),
        other => Err(ExoError::invalid(format!("{other} is not modelled."))),
    }
}

/// The mailbox `key` names (404 otherwise), by index.
fn mailbox_index(exchange: &Exchange, key: &str) -> Result<usize, ExoError> {
    exchange
        .mailboxes
        .iter()
        .position(|m| m.answers_to(key))
        .ok_or_else(|| ExoError::not_found(key))
}

/// A `GenericHashTable` `{"Add": …, "Remove": …}` applied to `values`, or a plain value
/// replacing them (`null` clears). Each entry goes through `resolve`.
fn multi_valued(
    values: &mut Vec<String>,
    given: &Value,
    mut resolve: impl FnMut(&str) -> Result<String, ExoError>,
) -> Result<(), ExoError> {
    match given {
        Value::Null => values.clear(),
        Value::Object(table) => {
            let part = |name: &str| {
                list_of(
                    table
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v),
                )
            };
            for added in part("Add") {
                let added = resolve(&added)?;
                if !values.iter().any(|v| v.eq_ignore_ascii_case(&added)) {
                    values.push(added);
                }
            }
            for removed in part("Remove") {
                let removed = resolve(&removed)?;
                values.retain(|v| !v.eq_ignore_ascii_case(&removed));
            }
        }
        other => {
            let mut replaced = Vec::new();
            for value in list_of(Some(other)) {
                replaced.push(resolve(&value)?);
            }
            *values = replaced;
        }
    }
    Ok(())
}

fn bool_param(params: &Params, name: &str) -> Result<Option<bool>, ExoError> {
    match params.get(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(ExoError::invalid(format!(
            "Cannot process argument transformation on parameter '{name}'. Cannot convert value \"{other}\" to type \"System.Boolean\"."
        ))),
    }
}

fn set_mailbox(exchange: &mut Exchange, params: &Params) -> Result<Output, ExoError> {
    let identity = required(params, "Identity")?;
    let index = mailbox_index(exchange, &identity)?;
    // Recipients named in parameters resolve to their Name, as Exchange stores them.
    let names: Vec<(String, crate::model::exchange::Mailbox)> = exchange
        .mailboxes
        .iter()
        .map(|m| (m.name.clone(), m.clone()))
        .collect();
    let resolve = |key: &str| {
        names
            .iter()
            .find(|(_, m)| m.answers_to(key))
            .map(|(name, _)| name.clone())
            .ok_or_else(|| ExoError::not_found(key))
    };
    let forwarding_address = match params.get("ForwardingAddress") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.trim().is_empty() => Some(None),
        Some(Value::String(s)) => Some(Some(resolve(s)?)),
        Some(_) => return Err(ExoError::invalid("ForwardingAddress must be a recipient.")),
    };
    let mut send_on_behalf = exchange.mailboxes[index].grant_send_on_behalf_to.clone();
    if let Some(given) = params.get("GrantSendOnBehalfTo") {
        multi_valued(&mut send_on_behalf, given, resolve)?;
    }
    let mut addresses = exchange.mailboxes[index].email_addresses.clone();
    if let Some(given) = params.get("EmailAddresses") {
        let primary = exchange.mailboxes[index].primary_smtp_address.clone();
        multi_valued(&mut addresses, given, |a| {
            // `SMTP:` (capital) marks the primary address; others are stored `smtp:`.
            Ok(if a.starts_with("SMTP:") {
                a.to_owned()
            } else {
                smtp(a)
            })
        })?;
        if !addresses.iter().any(|a| a.starts_with("SMTP:")) {
            addresses.insert(0, format!("SMTP:{primary}"));
        }
    }
    let kind = match params.text("Type") {
        None => None,
        Some(t) => Some(match t.to_ascii_lowercase().as_str() {
            "regular" => MailboxKind::User,
            "shared" => MailboxKind::Shared,
            "room" => MailboxKind::Room,
            "equipment" => MailboxKind::Equipment,
            _ => {
                return Err(ExoError::invalid(format!(
                    "Cannot process argument transformation on parameter 'Type'. Cannot convert value \"{t}\" to type \"Microsoft.Exchange.Management.RecipientTasks.ConvertibleMailboxSubType\"."
                )));
            }
        }),
    };
    let deliver = bool_param(params, "DeliverToMailboxAndForward")?;
    let hidden = bool_param(params, "HiddenFromAddressListsEnabled")?;
    let mailbox = &mut exchange.mailboxes[index];
    match params.get("ForwardingSmtpAddress") {
        None => {}
        Some(Value::Null) => mailbox.forwarding_smtp_address = None,
        Some(Value::String(s)) if s.trim().is_empty() => mailbox.forwarding_smtp_address = None,
        // Stored and answered with the `smtp:` prefix (§2.6). When ForwardingAddress is
        // also set, Exchange keeps both and delivers to ForwardingAddress (§2.10.5).
        Some(Value::String(s)) => mailbox.forwarding_smtp_address = Some(smtp(s)),
        Some(_) => {
            return Err(ExoError::invalid(
                "ForwardingSmtpAddress must be an address.",
            ));
        }
    }
    if let Some(address) = forwarding_address {
        mailbox.forwarding_address = address;
    }
    if let Some(deliver) = deliver {
        mailbox.deliver_to_mailbox_and_forward = deliver;
    }
    if let Some(hidden) = hidden {
        mailbox.hidden_from_address_lists = hidden;
    }
    if let Some(kind) = kind {
        mailbox.kind = kind;
    }
    if let Some(name) = params.text("DisplayName") {
        mailbox.display_name = name;
    }
    mailbox.grant_send_on_behalf_to = send_on_behalf;
    mailbox.email_addresses = addresses;
    Ok(Output::default())
}

fn already_used(address: &str) -> ExoError {
    ExoError::bad_request(
        "Ex5A4B51",
        errors::ALREADY_EXISTS,
        format!(
            "The proxy address \"SMTP:{address}\" is already being used by the proxy addresses or LegacyExchangeDN. Please choose another proxy address."
        ),
    )
}

fn new_mailbox(exchange: &mut Exchange, params: &Params) -> Result<Output, ExoError> {
    let name = required(params, "Name")?;
    let kind = if params.flag("Shared") {
        MailboxKind::Shared
    } else if params.flag("Room") {
        MailboxKind::Room
    } else if params.flag("Equipment") {
        MailboxKind::Equipment
    } else {
        // A user mailbox needs a licensed Entra user; only resource mailboxes are modelled.
        return Err(ExoError::invalid(
            "Only -Shared, -Room and -Equipment mailboxes can be created here (a user mailbox comes from a licensed user).",
        ));
    };
    let alias = params.text("Alias").unwrap_or_else(|| {
        name.chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect()
    });
    let primary = params
        .text("PrimarySmtpAddress")
        .unwrap_or_else(|| exchange.address(&alias));
    if exchange.address_taken(&primary) {
        return Err(already_used(&primary));
    }
    if exchange
        .mailboxes
        .iter()
        .any(|m| m.name.eq_ignore_ascii_case(&alias))
    {
        return Err(ExoError::bad_request(
            "Ex5A4B51",
            errors::ALREADY_EXISTS,
            format!("The object '{alias}' already exists."),
        ));
    }
    let display = params.text("DisplayName").unwrap_or_else(|| name.clone());
    let seed = format!(
        "{}.new.{}",
        exchange.organization_guid,
        primary.to_ascii_lowercase()
    );
    let mut mailbox = exchange.mailbox(&seed, kind, &primary, &display, None);
    mailbox.name = alias;
    mailbox.created = chrono::Utc::now();
    let row = objects::mailbox(&mailbox);
    exchange.mailboxes.push(mailbox);
    Ok(Output::rows(vec![row]))
}

/// The trustee a grant names: a mailbox's UPN (404 when nobody answers to it).
fn trustee(exchange: &Exchange, key: &str) -> Result<String, ExoError> {
    exchange
        .find_mailbox(key)
        .map(|m| m.user_principal_name.clone())
        .ok_or_else(|| ExoError::not_found(key))
}

fn rights_include(params: &Params, right: &str) -> Result<(), ExoError> {
    let rights = params.list("AccessRights");
    if rights.is_empty() {
        return Err(ExoError::invalid(
            "Cannot process command because of one or more missing mandatory parameters: AccessRights.",
        ));
    }
    if rights.iter().all(|r| r.eq_ignore_ascii_case(right)) {
        Ok(())
    } else {
        Err(ExoError::invalid(format!(
            "Only {right} is modelled for this cmdlet; got {}.",
            rights.join(", ")
        )))
    }
}

fn add_full_access(exchange: &mut Exchange, params: &Params) -> Result<Output, ExoError> {
    let identity = required(params, "Identity")?;
    let index = mailbox_index(exchange, &identity)?;
    let user = trustee(exchange, &required(params, "User")?)?;
    rights_include(params, "FullAccess")?;
    let grant = Grant {
        mailbox: exchange.mailboxes[index].guid,
        trustee: user.clone(),
    };
    let row =
        objects::mailbox_permission(&exchange.mailboxes[index], &user, &["FullAccess"], false);
    if exchange.full_access.contains(&grant) {
        // Exchange warns and changes nothing (the wording is UNVERIFIED).
        return Ok(Output {
            rows: vec![row],
            warnings: vec![format!(
                "An existing permission entry was found for user: {user}."
            )],
        });
    }
    exchange.full_access.push(grant);
    Ok(Output::rows(vec![row]))
}

fn remove_full_access(exchange: &mut Exchange, params: &Params) -> Result<Output, ExoError> {
    let identity = required(params, "Identity")?;
    let index = mailbox_index(exchange, &identity)?;
    let user = trustee(exchange, &required(params, "User")?)?;
    rights_include(params, "FullAccess")?;
    let guid = exchange.mailboxes[index].guid;
    let before = exchange.full_access.len();
    exchange
        .full_access
        .retain(|g| !(g.mailbox == guid && g.trustee.eq_ignore_ascii_case(&user)));
    Ok(absent_ace(
        before == exchange.full_access.len(),
        &identity,
        &user,
    ))
}

/// Removing a grant that does not exist warns (UNVERIFIED wording) and succeeds.
fn absent_ace(absent: bool, identity: &str, user: &str) -> Output {
    Output {
        rows: Vec::new(),
        warnings: if absent {
            vec![format!(
                "Can't remove the access control entry on the object \"{identity}\" for account \"{user}\" because the ACE doesn't exist on the object."
            )]
        } else {
            Vec::new()
        },
    }
}

fn add_send_as(exchange: &mut Exchange, params: &Params) -> Result<Output, ExoError> {
    let identity = required(params, "Identity")?;
    let index = mailbox_index(exchange, &identity)?;
    let user = trustee(exchange, &required(params, "Trustee")?)?;
    // "The only valid value for this parameter is SendAs."
    rights_include(params, "SendAs")?;
    let grant = Grant {
        mailbox: exchange.mailboxes[index].guid,
        trustee: user.clone(),
    };
    let row = objects::recipient_permission(&exchange.mailboxes[index], &user);
    if !exchange.send_as.contains(&grant) {
        exchange.send_as.push(grant);
    }
    Ok(Output::rows(vec![row]))
}

fn remove_send_as(exchange: &mut Exchange, params: &Params) -> Result<Output, ExoError> {
    let identity = required(params, "Identity")?;
    let index = mailbox_index(exchange, &identity)?;
    let user = trustee(exchange, &required(params, "Trustee")?)?;
    rights_include(params, "SendAs")?;
    let guid = exchange.mailboxes[index].guid;
    let before = exchange.send_as.len();
    exchange
        .send_as
        .retain(|g| !(g.mailbox == guid && g.trustee.eq_ignore_ascii_case(&user)));
    Ok(absent_ace(
        before == exchange.send_as.len(),
        &identity,
        &user,
    ))
}

fn new_group(exchange: &mut Exchange, params: &Params) -> Result<Output, ExoError> {
    let name = required(params, "Name")?;
    let alias = params.text("Alias").unwrap_or_else(|| {
        name.chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect()
    });
    let kind = match params
        .text("Type")
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("distribution") => GroupType::Distribution,
        Some("security") => GroupType::Security,
        Some(other) => {
            return Err(ExoError::invalid(format!(
                "Cannot process argument transformation on parameter 'Type'. Cannot convert value \"{other}\" to type \"Microsoft.Exchange.Data.Directory.Recipient.GroupType\"."
            )));
        }
    };
    let mut group = exchange.new_group(&alias, &params.text("DisplayName").unwrap_or(name), kind);
    if let Some(primary) = params.text("PrimarySmtpAddress") {
        group.primary_smtp_address = primary;
    }
    if exchange.address_taken(&group.primary_smtp_address) || exchange.find_group(&alias).is_some()
    {
        return Err(already_used(&group.primary_smtp_address));
    }
    for member in params.list("Members") {
        let guid = exchange.mailboxes[mailbox_index(exchange, &member)?].guid;
        if !group.members.contains(&guid) {
            group.members.push(guid);
        }
    }
    group.created = chrono::Utc::now();
    let row = objects::group(exchange, &group);
    exchange.groups.push(group);
    Ok(Output::rows(vec![row]))
}

fn set_group(exchange: &mut Exchange, params: &Params) -> Result<Output, ExoError> {
    let identity = required(params, "Identity")?;
    let index = exchange
        .find_group(&identity)
        .ok_or_else(|| ExoError::not_found(&identity))?;
    let hidden = bool_param(params, "HiddenFromAddressListsEnabled")?;
    let group = &mut exchange.groups[index];
    if let Some(hidden) = hidden {
        group.hidden_from_address_lists = hidden;
    }
    if let Some(name) = params.text("DisplayName") {
        group.display_name = name;
    }
    Ok(Output::default())
}

/// The group and the member mailbox a membership cmdlet names.
fn membership(
    exchange: &Exchange,
    params: &Params,
) -> Result<(usize, uuid::Uuid, String), ExoError> {
    let identity = required(params, "Identity")?;
    let group = exchange
        .find_group(&identity)
        .ok_or_else(|| ExoError::not_found(&identity))?;
    let member = required(params, "Member")?;
    let mailbox = exchange.mailboxes[mailbox_index(exchange, &member)?].guid;
    Ok((group, mailbox, member))
}

fn add_member(exchange: &mut Exchange, params: &Params) -> Result<Output, ExoError> {
    let (group, mailbox, member) = membership(exchange, params)?;
    let group = &mut exchange.groups[group];
    if group.members.contains(&mailbox) {
        return Err(ExoError::bad_request(
            "Ex8A2D1B",
            errors::MEMBER_EXISTS,
            format!(
                "The recipient \"{member}\" is already a member of the group \"{}\".",
                group.name
            ),
        ));
    }
    group.members.push(mailbox);
    Ok(Output::default())
}

fn remove_member(exchange: &mut Exchange, params: &Params) -> Result<Output, ExoError> {
    let (group, mailbox, member) = membership(exchange, params)?;
    let group = &mut exchange.groups[group];
    if !group.members.contains(&mailbox) {
        // UNVERIFIED: exception type, status (400 BadRequest) and wording.
        return Err(ExoError::bad_request(
            "Ex9C7E44",
            errors::MEMBER_NOT_FOUND,
            format!(
                "The recipient \"{member}\" isn't a member of the group \"{}\".",
                group.name
            ),
        ));
    }
    group.members.retain(|m| *m != mailbox);
    Ok(Output::default())
}

fn set_rule_enabled(
    exchange: &mut Exchange,
    params: &Params,
    enabled: bool,
) -> Result<Output, ExoError> {
    let identity = required(params, "Identity")?;
    let owner = match params.text("Mailbox") {
        Some(mailbox) => Some(exchange.mailboxes[mailbox_index(exchange, &mailbox)?].guid),
        None => None,
    };
    let aliases: Vec<(uuid::Uuid, String)> = exchange
        .mailboxes
        .iter()
        .map(|m| (m.guid, m.name.clone()))
        .collect();
    let alias_of = |guid: uuid::Uuid| {
        aliases
            .iter()
            .find(|(g, _)| *g == guid)
            .map(|(_, a)| a.as_str())
            .unwrap_or_default()
    };
    let Some(rule) = exchange.rules.iter_mut().find(|r| {
        owner.is_none_or(|o| o == r.mailbox)
            && (rule_key_matches(alias_of(r.mailbox), r.rule_identity, &identity)
                || (owner.is_some() && r.name.eq_ignore_ascii_case(&identity)))
    }) else {
        return Err(ExoError::not_found(&identity));
    };
    if !enabled && rule.is_protected() {
        // UNVERIFIED: Exchange refuses these (CIPP expects failures on `Delegate Rule -N`
        // and skips the junk rule); the exception type and text are the simulator's.
        return Err(ExoError::bad_request(
            "ExB21F07",
            errors::RULE_REFUSED,
            format!(
                "The inbox rule \"{}\" can't be disabled because it's a system or delegate rule.",
                rule.name
            ),
        ));
    }
    rule.enabled = enabled;
    Ok(Output::default())
}
