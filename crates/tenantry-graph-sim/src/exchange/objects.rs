//! Cmdlet parameters (names case-insensitive, §2.5) and the rows cmdlets answer, with the
//! typed annotations Exchange puts beside Guid, collection and date properties (§2.6).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::model::exchange::{DistributionGroup, Exchange, GroupType, InboxRule, Mailbox};

/// A cmdlet's `Parameters`, looked up case-insensitively.
pub struct Params(Map<String, Value>);

impl Params {
    pub fn new(map: Map<String, Value>) -> Self {
        Self(map)
    }

    /// The value of parameter `name`, when present (possibly `null`).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A string parameter (numbers are written out).
    pub fn text(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// A switch or boolean: `true`, `"true"` or `"$true"`.
    pub fn flag(&self, name: &str) -> bool {
        match self.get(name) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => {
                s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("$true")
            }
            _ => false,
        }
    }

    /// A multi-valued parameter: an array, or a comma-separated string.
    pub fn list(&self, name: &str) -> Vec<String> {
        list_of(self.get(name))
    }

    /// The parameters as stable text (names lower-cased, sorted), for skip tokens.
    pub fn canonical(&self) -> String {
        let mut pairs: Vec<(String, String)> = self
            .0
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        pairs.sort();
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Strings of an array, or of a comma-separated string.
pub fn list_of(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(|s| s.trim().to_owned()))
            .collect(),
        _ => Vec::new(),
    }
}

/// Keeps the `$select`ed properties (and their annotations).
pub fn select(row: Value, select: Option<&[String]>) -> Value {
    let (Some(select), Value::Object(map)) = (select, &row) else {
        return row;
    };
    let kept: Map<String, Value> = map
        .iter()
        .filter(|(key, _)| {
            let base = key.split('@').next().unwrap_or(key);
            select.iter().any(|s| s.eq_ignore_ascii_case(base))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(kept)
}

struct Row(Map<String, Value>);

impl Row {
    fn new() -> Self {
        Self(Map::new())
    }

    fn set(&mut self, name: &str, value: Value) -> &mut Self {
        self.0.insert(name.to_owned(), value);
        self
    }

    fn guid(&mut self, name: &str, id: Uuid) -> &mut Self {
        self.0
            .insert(format!("{name}@data.type"), json!("System.Guid"));
        self.0.insert(format!("{name}@odata.type"), json!("#Guid"));
        self.set(name, json!(id))
    }

    fn strings(&mut self, name: &str, values: &[String]) -> &mut Self {
        self.0
            .insert(format!("{name}@odata.type"), json!("#Collection(String)"));
        self.set(name, json!(values))
    }

    fn date(&mut self, name: &str, at: DateTime<Utc>) -> &mut Self {
        self.0
            .insert(format!("{name}@data.type"), json!("System.DateTime"));
        // Seven fractional digits (.NET ticks), as in the capture.
        use chrono::Timelike;
        let text = format!(
            "{}.{:07}Z",
            at.format("%Y-%m-%dT%H:%M:%S"),
            at.nanosecond() % 1_000_000_000 / 100
        );
        self.set(name, json!(text))
    }

    fn done(&mut self) -> Value {
        Value::Object(std::mem::take(&mut self.0))
    }
}

/// A `Get-Mailbox` row: the properties MSP tools read (the real object has ~250).
pub fn mailbox(m: &Mailbox) -> Value {
    let details = m.kind.recipient_type_details();
    Row::new()
        .set("Identity", json!(m.name))
        .set("Id", json!(m.name))
        .set("Name", json!(m.name))
        .set("Alias", json!(m.name))
        .set("DisplayName", json!(m.display_name))
        .set("UserPrincipalName", json!(m.user_principal_name))
        .set("PrimarySmtpAddress", json!(m.primary_smtp_address))
        .strings("EmailAddresses", &m.email_addresses)
        .set("RecipientType", json!("UserMailbox"))
        .set("RecipientTypeDetails", json!(details))
        .set("IsShared", json!(details == "SharedMailbox"))
        .set(
            "ExternalDirectoryObjectId",
            json!(m.external_directory_object_id),
        )
        .guid("Guid", m.guid)
        .guid("ExchangeObjectId", m.guid)
        .guid("ExchangeGuid", m.exchange_guid)
        .set("ForwardingAddress", json!(m.forwarding_address))
        .set("ForwardingSmtpAddress", json!(m.forwarding_smtp_address))
        .set(
            "DeliverToMailboxAndForward",
            json!(m.deliver_to_mailbox_and_forward),
        )
        .set(
            "HiddenFromAddressListsEnabled",
            json!(m.hidden_from_address_lists),
        )
        .strings("GrantSendOnBehalfTo", &m.grant_send_on_behalf_to)
        .set("ProhibitSendQuota", json!("99 GB (106,300,440,576 bytes)"))
        .set(
            "ProhibitSendReceiveQuota",
            json!("100 GB (107,374,182,400 bytes)"),
        )
        .set("Database", json!("NAMPR01DG001-db001"))
        .date("WhenCreatedUTC", m.created)
        .date("WhenChangedUTC", m.created)
        .done()
}

fn group_details(kind: GroupType) -> &'static str {
    match kind {
        GroupType::Distribution => "MailUniversalDistributionGroup",
        GroupType::Security => "MailUniversalSecurityGroup",
    }
}

/// A `Get-DistributionGroup` row.
pub fn group(exchange: &Exchange, g: &DistributionGroup) -> Value {
    let details = group_details(g.kind);
    let addresses = vec![
        format!("SMTP:{}", g.primary_smtp_address),
        format!("smtp:{}@{}", g.name, exchange.initial_domain),
    ];
    Row::new()
        .set("Identity", json!(g.name))
        .set("Id", json!(g.name))
        .set("Name", json!(g.name))
        .set("Alias", json!(g.name))
        .set("DisplayName", json!(g.display_name))
        .set("PrimarySmtpAddress", json!(g.primary_smtp_address))
        .strings("EmailAddresses", &addresses)
        .set("RecipientType", json!(details))
        .set("RecipientTypeDetails", json!(details))
        .set(
            "GroupType",
            json!(match g.kind {
                GroupType::Distribution => "Universal",
                GroupType::Security => "Universal, SecurityEnabled",
            }),
        )
        .set(
            "ExternalDirectoryObjectId",
            json!(g.external_directory_object_id),
        )
        .guid("Guid", g.guid)
        .guid("ExchangeObjectId", g.guid)
        .strings("ManagedBy", &[])
        .set(
            "HiddenFromAddressListsEnabled",
            json!(g.hidden_from_address_lists),
        )
        .set("RequireSenderAuthenticationEnabled", json!(true))
        .date("WhenCreatedUTC", g.created)
        .done()
}

/// A `Get-DistributionGroupMember` row (a recipient).
pub fn member(m: &Mailbox) -> Value {
    Row::new()
        .set("Identity", json!(m.name))
        .set("Name", json!(m.name))
        .set("Alias", json!(m.name))
        .set("DisplayName", json!(m.display_name))
        .set("PrimarySmtpAddress", json!(m.primary_smtp_address))
        .set("RecipientType", json!("UserMailbox"))
        .set(
            "RecipientTypeDetails",
            json!(m.kind.recipient_type_details()),
        )
        .set(
            "ExternalDirectoryObjectId",
            json!(m.external_directory_object_id),
        )
        .guid("Guid", m.guid)
        .done()
}

/// A `Get-MailboxPermission` row. `AccessRights` as one string per right (UNVERIFIED: the
/// REST form of the flags enum may be one comma-joined string).
pub fn mailbox_permission(m: &Mailbox, user: &str, rights: &[&str], inherited: bool) -> Value {
    let rights: Vec<String> = rights.iter().map(|r| (*r).to_owned()).collect();
    Row::new()
        .set("Identity", json!(m.name))
        .set("User", json!(user))
        .strings("AccessRights", &rights)
        .set("IsInherited", json!(inherited))
        .set("Deny", json!(false))
        .set("InheritanceType", json!("All"))
        .done()
}

/// A `Get-RecipientPermission` row.
pub fn recipient_permission(m: &Mailbox, trustee: &str) -> Value {
    Row::new()
        .set("Identity", json!(m.name))
        .set("Trustee", json!(trustee))
        .set("AccessControlType", json!("Allow"))
        .strings("AccessRights", &["SendAs".to_owned()])
        .set("IsInherited", json!(false))
        .set("InheritanceType", json!("None"))
        .done()
}

/// A `Get-InboxRule` row.
pub fn rule(owner: &Mailbox, r: &InboxRule) -> Value {
    let mut row = Row::new();
    row.set(
        "Identity",
        json!(format!("{}\\{}", owner.name, r.rule_identity)),
    )
    .set("RuleIdentity", json!(r.rule_identity.to_string()))
    .set("Name", json!(r.name))
    .set("Enabled", json!(r.enabled))
    .set("Priority", json!(r.priority))
    .set("MailboxOwnerId", json!(owner.name))
    .set("Description", json!(describe(r)))
    .set("MoveToFolder", json!(r.move_to_folder))
    .set("DeleteMessage", json!(r.delete_message))
    .set("StopProcessingRules", json!(r.stop_processing_rules))
    .set("InError", json!(false));
    let words = (!r.subject_or_body_contains.is_empty()).then_some(&r.subject_or_body_contains);
    match words {
        Some(words) => row.strings("SubjectOrBodyContainsWords", words),
        None => row.set("SubjectOrBodyContainsWords", Value::Null),
    };
    for (name, list) in [("ForwardTo", &r.forward_to), ("RedirectTo", &r.redirect_to)] {
        if list.is_empty() {
            row.set(name, Value::Null);
        } else {
            row.strings(name, list);
        }
    }
    row.done()
}

fn describe(r: &InboxRule) -> String {
    let mut text = String::new();
    if !r.subject_or_body_contains.is_empty() {
        text.push_str(&format!(
            "If the message:\r\n\tincludes '{}' in the subject or body\r\n",
            r.subject_or_body_contains.join("' or '")
        ));
    }
    text.push_str("Take the following actions:\r\n");
    if let Some(folder) = &r.move_to_folder {
        text.push_str(&format!("\tmove the message to folder '{folder}'\r\n"));
    }
    if !r.forward_to.is_empty() {
        text.push_str(&format!(
            "\tforward the message to '{}'\r\n",
            r.forward_to.join("' or '")
        ));
    }
    if !r.redirect_to.is_empty() {
        text.push_str(&format!(
            "\tredirect the message to '{}'\r\n",
            r.redirect_to.join("' or '")
        ));
    }
    if r.delete_message {
        text.push_str("\tdelete the message\r\n");
    }
    if r.stop_processing_rules {
        text.push_str("\tand stop processing more rules on this message\r\n");
    }
    text
}

/// `Get-OrganizationConfig`: a handful of properties (a cheap probe).
pub fn organization(exchange: &Exchange, display_name: &str) -> Value {
    Row::new()
        .set("Identity", json!(exchange.initial_domain))
        .set("Name", json!(exchange.initial_domain))
        .set("DisplayName", json!(display_name))
        .guid("Guid", exchange.organization_guid)
        .set("IsDehydrated", json!(false))
        .set("AuditDisabled", json!(false))
        .set("OAuth2ClientProfileEnabled", json!(true))
        .set("DefaultPublicFolderMailbox", Value::Null)
        .done()
}
