//! Typed rows of the Exchange cmdlets Tenantry reads: mailboxes with their forwarding
//! (graph-facts-next §2.6, §2.10.10). Properties the service does not use are dropped,
//! and `smtp:` prefixes are stripped where Exchange adds them.

use serde::Serialize;
use serde_json::Value;

/// The properties asked for with `Get-Mailbox` (`$select`-like; the cmdlet answers
/// ~250 otherwise).
pub const MAILBOX_PROPERTIES: &str = "ExternalDirectoryObjectId,Guid,DisplayName,UserPrincipalName,PrimarySmtpAddress,RecipientTypeDetails,EmailAddresses,ForwardingSmtpAddress,ForwardingAddress,DeliverToMailboxAndForward,HiddenFromAddressListsEnabled,GrantSendOnBehalfTo";

/// Stored and answered in camelCase, as the inventory's other objects (Graph's) are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mailbox {
    /// Exchange's object guid.
    pub guid: String,
    /// The Entra user's object id (`ExternalDirectoryObjectId`), when it has one.
    pub user_id: Option<String>,
    pub display_name: String,
    pub user_principal_name: Option<String>,
    pub primary_smtp_address: String,
    /// `UserMailbox`, `SharedMailbox`, `RoomMailbox`, `EquipmentMailbox`, …
    pub recipient_type_details: String,
    /// Every address, without the `smtp:`/`SMTP:` prefixes.
    pub aliases: Vec<String>,
    /// `ForwardingSmtpAddress` without its `smtp:` prefix: mail to outside addresses.
    pub forwarding_smtp_address: Option<String>,
    /// `ForwardingAddress`: an internal recipient (it wins over the SMTP one).
    pub forwarding_address: Option<String>,
    pub deliver_to_mailbox_and_forward: bool,
    pub hidden_from_address_lists: bool,
    pub grant_send_on_behalf_to: Vec<String>,
    /// The outside domain mail is forwarded to (see [`Mailbox::outside_forwarding`]),
    /// filled in once the tenant's domains are known.
    pub outside_forwarding_domain: Option<String>,
    /// Who holds FullAccess (`Get-MailboxPermission`), read for shared mailboxes.
    pub full_access: Vec<String>,
    /// Who may send as it (`Get-RecipientPermission`), read for shared mailboxes.
    pub send_as: Vec<String>,
}

fn text(row: &Value, name: &str) -> Option<String> {
    row[name]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn strip_smtp(address: &str) -> String {
    address
        .split_once(':')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("smtp"))
        .map_or(address, |(_, rest)| rest)
        .to_owned()
}

fn strings(row: &Value, name: &str) -> Vec<String> {
    row[name]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

impl Mailbox {
    /// A `Get-Mailbox` row; `None` without its guid or primary address.
    pub fn from_row(row: &Value) -> Option<Self> {
        Some(Self {
            guid: text(row, "Guid")?,
            user_id: text(row, "ExternalDirectoryObjectId"),
            display_name: text(row, "DisplayName").unwrap_or_default(),
            user_principal_name: text(row, "UserPrincipalName"),
            primary_smtp_address: text(row, "PrimarySmtpAddress")?,
            recipient_type_details: text(row, "RecipientTypeDetails")
                .unwrap_or_else(|| "UserMailbox".into()),
            aliases: strings(row, "EmailAddresses")
                .iter()
                .map(|a| strip_smtp(a))
                .collect(),
            forwarding_smtp_address: text(row, "ForwardingSmtpAddress").map(|a| strip_smtp(&a)),
            forwarding_address: text(row, "ForwardingAddress"),
            deliver_to_mailbox_and_forward: row["DeliverToMailboxAndForward"]
                .as_bool()
                .unwrap_or(false),
            hidden_from_address_lists: row["HiddenFromAddressListsEnabled"]
                .as_bool()
                .unwrap_or(false),
            grant_send_on_behalf_to: strings(row, "GrantSendOnBehalfTo"),
            outside_forwarding_domain: None,
            full_access: Vec::new(),
            send_as: Vec::new(),
        })
    }

    /// The outside domain mail is forwarded to, when the SMTP forwarding leaves every
    /// domain in `own_domains` (and no internal forwarding overrides it).
    pub fn outside_forwarding<'d>(
        &self,
        own_domains: impl IntoIterator<Item = &'d str>,
    ) -> Option<String> {
        if self.forwarding_address.is_some() {
            return None;
        }
        let address = self.forwarding_smtp_address.as_deref()?;
        let domain = address.rsplit_once('@')?.1.to_ascii_lowercase();
        let own: Vec<String> = own_domains
            .into_iter()
            .map(str::to_ascii_lowercase)
            .collect();
        (!own.contains(&domain)).then_some(domain)
    }
}

/// The mailbox itself, as Exchange lists it among a mailbox's own permissions.
const SELF: &str = "NT AUTHORITY\\SELF";

/// Whether `rights` (one string per right, or one comma-joined string: the REST form of
/// the flags is UNVERIFIED) holds `right`.
fn holds(rights: &Value, right: &str) -> bool {
    match rights {
        Value::Array(items) => items
            .iter()
            .any(|r| r.as_str().is_some_and(|r| holds(&Value::from(r), right))),
        Value::String(text) => text
            .split(',')
            .any(|r| r.trim().eq_ignore_ascii_case(right)),
        _ => false,
    }
}

/// The FullAccess holders of `Get-MailboxPermission` rows (allowed, not the mailbox itself).
pub fn full_access_holders(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .filter(|r| holds(&r["AccessRights"], "FullAccess") && r["Deny"].as_bool() != Some(true))
        .filter_map(|r| r["User"].as_str())
        .filter(|u| !u.eq_ignore_ascii_case(SELF))
        .map(str::to_owned)
        .collect()
}

/// The SendAs trustees of `Get-RecipientPermission` rows (allowed, not the mailbox itself).
pub fn send_as_trustees(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .filter(|r| {
            holds(&r["AccessRights"], "SendAs") && r["AccessControlType"].as_str() != Some("Deny")
        })
        .filter_map(|r| r["Trustee"].as_str())
        .filter(|t| !t.eq_ignore_ascii_case(SELF))
        .map(str::to_owned)
        .collect()
}

/// A distribution group or mail-enabled security group with its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DistributionGroup {
    pub guid: String,
    pub display_name: String,
    pub primary_smtp_address: String,
    /// `MailUniversalDistributionGroup`, `MailUniversalSecurityGroup`, `RoomList`, …
    pub recipient_type_details: String,
    /// A mail-enabled security group (it can hold permissions).
    pub security: bool,
    pub hidden_from_address_lists: bool,
    pub members: Vec<GroupMember>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMember {
    pub display_name: String,
    pub primary_smtp_address: Option<String>,
    /// The Entra object id, when the member has one.
    pub user_id: Option<String>,
    pub recipient_type_details: Option<String>,
}

impl DistributionGroup {
    /// A `Get-DistributionGroup` row; `None` without its guid or primary address.
    pub fn from_row(row: &Value) -> Option<Self> {
        let details = text(row, "RecipientTypeDetails").unwrap_or_default();
        Some(Self {
            guid: text(row, "Guid")?,
            display_name: text(row, "DisplayName").unwrap_or_default(),
            primary_smtp_address: text(row, "PrimarySmtpAddress")?,
            security: details == "MailUniversalSecurityGroup",
            recipient_type_details: details,
            hidden_from_address_lists: row["HiddenFromAddressListsEnabled"]
                .as_bool()
                .unwrap_or(false),
            members: Vec::new(),
        })
    }
}

impl GroupMember {
    /// A `Get-DistributionGroupMember` row.
    pub fn from_row(row: &Value) -> Option<Self> {
        Some(Self {
            display_name: text(row, "DisplayName").or_else(|| text(row, "Name"))?,
            primary_smtp_address: text(row, "PrimarySmtpAddress"),
            user_id: text(row, "ExternalDirectoryObjectId"),
            recipient_type_details: text(row, "RecipientTypeDetails"),
        })
    }
}

/// Marks each mailbox that forwards outside the tenant: outside means a domain none of the
/// tenant's mailboxes has an address in (the domains Exchange accepts mail for, as far as
/// the mailboxes show them).
pub fn flag_outside_forwarding(mailboxes: &mut [Mailbox]) {
    let own: std::collections::BTreeSet<String> = mailboxes
        .iter()
        .flat_map(|m| std::iter::once(&m.primary_smtp_address).chain(m.aliases.iter()))
        .filter_map(|a| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
        .collect();
    for mailbox in mailboxes {
        mailbox.outside_forwarding_domain =
            mailbox.outside_forwarding(own.iter().map(String::as_str));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_mailbox_row_is_read_with_prefixes_stripped_and_outside_forwarding_seen() {
        let row = json!({
            "Guid@odata.type": "#Guid", "Guid": "9feb45ad-0cc9-43dc-a609-2110e2216c15",
            "ExternalDirectoryObjectId": "7cdbe897-3c7f-4fb6-a369-56408d68081f",
            "DisplayName": "Calvin", "UserPrincipalName": "C@lvin.ie", "PrimarySmtpAddress": "C@lvin.ie",
            "RecipientTypeDetails": "UserMailbox",
            "EmailAddresses@odata.type": "#Collection(String)",
            "EmailAddresses": ["smtp:c@vdbdx.onmicrosoft.com", "SMTP:C@lvin.ie"],
            "ForwardingSmtpAddress": "smtp:calvinbergin212@gmail.com", "ForwardingAddress": null,
            "DeliverToMailboxAndForward": true
        });
        let mailbox = Mailbox::from_row(&row).expect("mailbox");
        assert_eq!(mailbox.aliases, ["c@vdbdx.onmicrosoft.com", "C@lvin.ie"]);
        assert_eq!(
            mailbox.forwarding_smtp_address.as_deref(),
            Some("calvinbergin212@gmail.com")
        );
        assert_eq!(
            mailbox.outside_forwarding(["lvin.ie", "vdbdx.onmicrosoft.com"]),
            Some("gmail.com".into())
        );
        assert_eq!(mailbox.outside_forwarding(["gmail.com"]), None);
        assert!(Mailbox::from_row(&json!({"DisplayName": "no guid"})).is_none());
        let permissions = [
            json!({"User": "NT AUTHORITY\\SELF", "AccessRights": ["FullAccess", "ReadPermission"]}),
            json!({"User": "alice@contoso.com", "AccessRights": ["FullAccess"], "Deny": false}),
            json!({"User": "eve@contoso.com", "AccessRights": "FullAccess, ReadPermission", "Deny": true}),
        ];
        assert_eq!(full_access_holders(&permissions), ["alice@contoso.com"]);
        let send_as = [
            json!({"Trustee": "NT AUTHORITY\\SELF", "AccessRights": ["SendAs"], "AccessControlType": "Allow"}),
            json!({"Trustee": "bob@contoso.com", "AccessRights": ["SendAs"], "AccessControlType": "Allow"}),
        ];
        assert_eq!(send_as_trustees(&send_as), ["bob@contoso.com"]);
    }
}
