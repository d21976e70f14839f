//! The modelled cmdlets: names (case-insensitive), which are reads, and the read cmdlets
//! themselves (graph-facts-next §2.10). Writes are in [`super::writes`].

use serde_json::Value;

use super::errors::ExoError;
use super::objects::{self, Params};
use super::writes;
use crate::model::exchange::Exchange;
use crate::scenario::exchange::MailboxKind;

const CMDLETS: [&str; 19] = [
    "Get-OrganizationConfig",
    "Get-Mailbox",
    "Get-DistributionGroup",
    "Get-DistributionGroupMember",
    "Get-MailboxPermission",
    "Get-RecipientPermission",
    "Get-InboxRule",
    "Set-Mailbox",
    "New-Mailbox",
    "Add-MailboxPermission",
    "Remove-MailboxPermission",
    "Add-RecipientPermission",
    "Remove-RecipientPermission",
    "New-DistributionGroup",
    "Add-DistributionGroupMember",
    "Remove-DistributionGroupMember",
    "Disable-InboxRule",
    "Enable-InboxRule",
    "Set-DistributionGroup",
];

/// The cmdlet's canonical name, when it is modelled.
pub fn canonical(name: &str) -> Option<&'static str> {
    CMDLETS
        .iter()
        .copied()
        .find(|c| c.eq_ignore_ascii_case(name.trim()))
}

pub fn is_read(cmdlet: &str) -> bool {
    cmdlet.starts_with("Get-")
}

/// Listings, which `ResultSize` cuts.
pub fn is_listing(cmdlet: &str) -> bool {
    is_read(cmdlet) && cmdlet != "Get-OrganizationConfig"
}

/// What a cmdlet answered: rows for `value`, and warnings.
#[derive(Default)]
pub struct Output {
    pub rows: Vec<Value>,
    pub warnings: Vec<String>,
}

impl Output {
    pub fn rows(rows: Vec<Value>) -> Self {
        Self {
            rows,
            warnings: Vec::new(),
        }
    }
}

pub fn run(
    exchange: &mut Exchange,
    display_name: &str,
    cmdlet: &str,
    params: &Params,
) -> Result<Output, ExoError> {
    match cmdlet {
        "Get-OrganizationConfig" => Ok(Output::rows(vec![objects::organization(
            exchange,
            display_name,
        )])),
        "Get-Mailbox" => get_mailbox(exchange, params),
        "Get-DistributionGroup" => get_groups(exchange, params),
        "Get-DistributionGroupMember" => get_members(exchange, params),
        "Get-MailboxPermission" => get_mailbox_permission(exchange, params),
        "Get-RecipientPermission" => get_recipient_permission(exchange, params),
        "Get-InboxRule" => get_inbox_rule(exchange, params),
        _ => writes::run(exchange, cmdlet, params),
    }
}

/// A required parameter (PowerShell's missing-mandatory-parameter failure, as a 400).
pub fn required(params: &Params, name: &str) -> Result<String, ExoError> {
    params
        .text(name)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            ExoError::invalid(format!(
                "Cannot process command because of one or more missing mandatory parameters: {name}."
            ))
        })
}

/// A `RecipientTypeDetails` value: `Some` kind when modelled, `None` for a documented
/// value no modelled mailbox has (it matches nothing), 400 otherwise.
fn kind_of(details: &str) -> Result<Option<MailboxKind>, ExoError> {
    const UNMODELLED: [&str; 7] = [
        "schedulingmailbox",
        "groupmailbox",
        "discoverymailbox",
        "teammailbox",
        "legacymailbox",
        "linkedmailbox",
        "linkedroommailbox",
    ];
    match details.to_ascii_lowercase().as_str() {
        "usermailbox" => Ok(Some(MailboxKind::User)),
        "sharedmailbox" => Ok(Some(MailboxKind::Shared)),
        "roommailbox" => Ok(Some(MailboxKind::Room)),
        "equipmentmailbox" => Ok(Some(MailboxKind::Equipment)),
        other if UNMODELLED.contains(&other) => Ok(None),
        _ => Err(ExoError::invalid(format!(
            "Cannot process argument transformation on parameter 'RecipientTypeDetails'. Cannot convert value \"{details}\" to type \"Microsoft.Exchange.Data.Directory.Recipient.RecipientTypeDetails\"."
        ))),
    }
}

fn get_mailbox(exchange: &Exchange, params: &Params) -> Result<Output, ExoError> {
    if let Some(identity) = params.text("Identity") {
        let mailbox = exchange
            .find_mailbox(&identity)
            .ok_or_else(|| ExoError::not_found(&identity))?;
        return Ok(Output::rows(vec![objects::mailbox(mailbox)]));
    }
    let mut kinds = Vec::new();
    for details in params.list("RecipientTypeDetails") {
        kinds.extend(kind_of(&details)?);
    }
    let filtered = params.has("RecipientTypeDetails");
    let rows = exchange
        .mailboxes
        .iter()
        .filter(|m| !filtered || kinds.contains(&m.kind))
        .map(objects::mailbox)
        .collect();
    Ok(Output::rows(rows))
}

fn get_groups(exchange: &Exchange, params: &Params) -> Result<Output, ExoError> {
    if let Some(identity) = params.text("Identity") {
        let index = exchange
            .find_group(&identity)
            .ok_or_else(|| ExoError::not_found(&identity))?;
        return Ok(Output::rows(vec![objects::group(
            exchange,
            &exchange.groups[index],
        )]));
    }
    let wanted: Vec<String> = params
        .list("RecipientTypeDetails")
        .into_iter()
        .map(|d| d.to_ascii_lowercase())
        .collect();
    let rows = exchange
        .groups
        .iter()
        .map(|g| objects::group(exchange, g))
        .filter(|row| {
            wanted.is_empty()
                || row["RecipientTypeDetails"]
                    .as_str()
                    .is_some_and(|d| wanted.contains(&d.to_ascii_lowercase()))
        })
        .collect();
    Ok(Output::rows(rows))
}

fn get_members(exchange: &Exchange, params: &Params) -> Result<Output, ExoError> {
    let identity = required(params, "Identity")?;
    let index = exchange
        .find_group(&identity)
        .ok_or_else(|| ExoError::not_found(&identity))?;
    let rows = exchange.groups[index]
        .members
        .iter()
        .filter_map(|guid| exchange.mailbox_by_guid(*guid))
        .map(objects::member)
        .collect();
    Ok(Output::rows(rows))
}

fn get_mailbox_permission(exchange: &Exchange, params: &Params) -> Result<Output, ExoError> {
    let identity = required(params, "Identity")?;
    let mailbox = exchange
        .find_mailbox(&identity)
        .ok_or_else(|| ExoError::not_found(&identity))?;
    let user_filter = params.text("User");
    // Real Exchange lists the owner's own entry first: `NT AUTHORITY\SELF` with
    // FullAccess and ReadPermission.
    let mut rows = vec![objects::mailbox_permission(
        mailbox,
        "NT AUTHORITY\\SELF",
        &["FullAccess", "ReadPermission"],
        false,
    )];
    rows.extend(
        exchange
            .full_access
            .iter()
            .filter(|g| g.mailbox == mailbox.guid)
            .map(|g| objects::mailbox_permission(mailbox, &g.trustee, &["FullAccess"], false)),
    );
    if let Some(user) = user_filter {
        rows.retain(|row| {
            row["User"]
                .as_str()
                .is_some_and(|u| u.eq_ignore_ascii_case(&user))
        });
    }
    Ok(Output::rows(rows))
}

fn get_recipient_permission(exchange: &Exchange, params: &Params) -> Result<Output, ExoError> {
    let mailboxes: Vec<&crate::model::exchange::Mailbox> = match params.text("Identity") {
        Some(identity) => vec![
            exchange
                .find_mailbox(&identity)
                .ok_or_else(|| ExoError::not_found(&identity))?,
        ],
        None => exchange.mailboxes.iter().collect(),
    };
    let trustee = params.text("Trustee");
    let mut rows = Vec::new();
    for mailbox in mailboxes {
        // The mailbox's own SendAs entry, as real Exchange lists it.
        rows.push(objects::recipient_permission(mailbox, "NT AUTHORITY\\SELF"));
        rows.extend(
            exchange
                .send_as
                .iter()
                .filter(|g| g.mailbox == mailbox.guid)
                .map(|g| objects::recipient_permission(mailbox, &g.trustee)),
        );
    }
    if let Some(trustee) = trustee {
        rows.retain(|row| {
            row["Trustee"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case(&trustee))
        });
    }
    Ok(Output::rows(rows))
}

fn get_inbox_rule(exchange: &Exchange, params: &Params) -> Result<Output, ExoError> {
    // Without -Mailbox the app has no mailbox of its own to read (app-only).
    let owner = required(params, "Mailbox")?;
    let mailbox = exchange
        .find_mailbox(&owner)
        .ok_or_else(|| ExoError::not_found(&owner))?;
    let hidden = params.flag("IncludeHidden");
    let identity = params.text("Identity");
    let mut rules: Vec<&crate::model::exchange::InboxRule> = exchange
        .rules_of(mailbox.guid)
        .filter(|r| hidden || !r.hidden)
        .filter(|r| {
            identity.as_deref().is_none_or(|id| {
                r.name.eq_ignore_ascii_case(id)
                    || rule_key_matches(&mailbox.name, r.rule_identity, id)
            })
        })
        .collect();
    rules.sort_by_key(|r| r.priority);
    if let Some(identity) = identity
        && rules.is_empty()
    {
        return Err(ExoError::not_found(&identity));
    }
    Ok(Output::rows(
        rules
            .into_iter()
            .map(|r| objects::rule(mailbox, r))
            .collect(),
    ))
}

/// `RuleIdentity` or `Alias\RuleIdentity`.
pub fn rule_key_matches(alias: &str, rule_identity: u64, key: &str) -> bool {
    let id = rule_identity.to_string();
    key == id
        || key
            .split_once('\\')
            .is_some_and(|(a, r)| a.eq_ignore_ascii_case(alias) && r == id)
}
