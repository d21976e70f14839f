//! The simulated Exchange Online organisation of a tenant (graph-facts-next §2): mailboxes
//! (user, shared, room, equipment), distribution groups and mail-enabled security groups,
//! FullAccess and SendAs grants, and inbox rules. Built on first use from the tenant's
//! users and its [`ExchangeSpec`], so a large tenant costs nothing until Exchange is asked.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ids::{named, stable_hash};
use super::users::Users;
use crate::scenario::exchange::{ExchangeSpec, MailboxKind};

/// The Office 365 Exchange Online application id, the same in every tenant.
pub const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";
/// The app role `Exchange.ManageAsApp` of Office 365 Exchange Online (§2.1 manifest).
pub const MANAGE_AS_APP: &str = "Exchange.ManageAsApp";
pub const MANAGE_AS_APP_ID: &str = "dc50a0fb-09a3-484d-be87-e023b12c6440";

/// The app role id of an Exchange Online application permission.
pub fn role_id_of(value: &str) -> Option<Uuid> {
    (value == MANAGE_AS_APP)
        .then(|| Uuid::parse_str(MANAGE_AS_APP_ID).ok())
        .flatten()
}

/// The permission value of an Exchange Online app role id.
pub fn role_value_of(id: Uuid) -> Option<&'static str> {
    (id.to_string() == MANAGE_AS_APP_ID).then_some(MANAGE_AS_APP)
}

#[derive(Clone, Debug)]
pub struct Mailbox {
    /// `Guid` (also `ExchangeObjectId` here; real ones differ, UNVERIFIED relation).
    pub guid: Uuid,
    pub exchange_guid: Uuid,
    pub kind: MailboxKind,
    /// `Name`, `Alias`, `Identity` and `Id`.
    pub name: String,
    pub display_name: String,
    pub user_principal_name: String,
    pub primary_smtp_address: String,
    /// `SMTP:` for the primary address, `smtp:` for the others.
    pub email_addresses: Vec<String>,
    /// The Entra user's object id.
    pub external_directory_object_id: Uuid,
    /// Stored with its `smtp:` prefix, as Exchange returns it.
    pub forwarding_smtp_address: Option<String>,
    pub forwarding_address: Option<String>,
    pub deliver_to_mailbox_and_forward: bool,
    pub hidden_from_address_lists: bool,
    pub grant_send_on_behalf_to: Vec<String>,
    pub created: DateTime<Utc>,
}

impl Mailbox {
    /// Whether `key` names this mailbox: name, any address, UPN, display name or a GUID.
    pub fn answers_to(&self, key: &str) -> bool {
        let key = key.trim();
        let key = key
            .strip_prefix("smtp:")
            .or_else(|| key.strip_prefix("SMTP:"))
            .unwrap_or(key);
        if let Ok(id) = Uuid::parse_str(key) {
            return id == self.guid
                || id == self.external_directory_object_id
                || id == self.exchange_guid;
        }
        self.name.eq_ignore_ascii_case(key)
            || self.display_name.eq_ignore_ascii_case(key)
            || self.user_principal_name.eq_ignore_ascii_case(key)
            || self
                .email_addresses
                .iter()
                .any(|a| a.get(5..).is_some_and(|a| a.eq_ignore_ascii_case(key)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupType {
    Distribution,
    Security,
}

#[derive(Clone, Debug)]
pub struct DistributionGroup {
    pub guid: Uuid,
    pub external_directory_object_id: Uuid,
    pub name: String,
    pub display_name: String,
    pub primary_smtp_address: String,
    pub kind: GroupType,
    /// Members by mailbox `Guid`.
    pub members: Vec<Uuid>,
    pub hidden_from_address_lists: bool,
    pub created: DateTime<Utc>,
}

impl DistributionGroup {
    pub fn answers_to(&self, key: &str) -> bool {
        if let Ok(id) = Uuid::parse_str(key.trim()) {
            return id == self.guid || id == self.external_directory_object_id;
        }
        let key = key.trim();
        self.name.eq_ignore_ascii_case(key)
            || self.display_name.eq_ignore_ascii_case(key)
            || self.primary_smtp_address.eq_ignore_ascii_case(key)
    }
}

/// A FullAccess (mailbox) or SendAs (recipient) grant to a trustee, by UPN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub mailbox: Uuid,
    pub trustee: String,
}

#[derive(Clone, Debug)]
pub struct InboxRule {
    /// `RuleIdentity` (a 64-bit number in Exchange).
    pub rule_identity: u64,
    pub mailbox: Uuid,
    pub name: String,
    pub enabled: bool,
    pub hidden: bool,
    pub priority: u32,
    pub subject_or_body_contains: Vec<String>,
    pub move_to_folder: Option<String>,
    pub forward_to: Vec<String>,
    pub redirect_to: Vec<String>,
    pub delete_message: bool,
    pub stop_processing_rules: bool,
}

impl InboxRule {
    /// Rules Exchange refuses to disable: the built-in junk rule and delegate rules.
    pub fn is_protected(&self) -> bool {
        self.name == JUNK_RULE || is_delegate_rule(&self.name)
    }
}

pub const JUNK_RULE: &str = "Junk E-Mail Rule";

/// `^Delegate Rule -\d+$` (CIPP expects these to refuse Disable-InboxRule).
pub fn is_delegate_rule(name: &str) -> bool {
    name.strip_prefix("Delegate Rule -")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// One tenant's Exchange Online organisation.
pub struct Exchange {
    pub organization_guid: Uuid,
    pub mailboxes: Vec<Mailbox>,
    pub groups: Vec<DistributionGroup>,
    pub full_access: Vec<Grant>,
    pub send_as: Vec<Grant>,
    pub rules: Vec<InboxRule>,
    /// For names and addresses of new objects.
    pub initial_domain: String,
    pub default_domain: String,
}

fn created_at(seed: u64) -> DateTime<Utc> {
    let base = DateTime::parse_from_rfc3339("2022-03-01T08:00:00Z")
        .map_or_else(|_| Utc::now(), |t| t.with_timezone(&Utc));
    base + chrono::Duration::seconds(i64::try_from(seed % 90_000_000).unwrap_or(0))
}

impl Exchange {
    /// The organisation of tenant `name`: a user mailbox per live user (the first
    /// `spec.user_mailboxes`, when set), then the spec's mailboxes, groups, grants, forwarding and rules.
    pub fn build(name: &str, domains: &[String], users: &Users, spec: &ExchangeSpec) -> Self {
        let initial_domain = domains
            .first()
            .cloned()
            .unwrap_or_else(|| format!("{name}.onmicrosoft.com"));
        let default_domain = domains
            .get(1)
            .cloned()
            .unwrap_or_else(|| initial_domain.clone());
        let mut exchange = Self {
            organization_guid: named(&format!("{name}.exchange.organization")),
            mailboxes: Vec::new(),
            groups: Vec::new(),
            full_access: Vec::new(),
            send_as: Vec::new(),
            rules: Vec::new(),
            initial_domain,
            default_domain,
        };
        let limit = spec.user_mailboxes.unwrap_or(u32::MAX).min(users.slots());
        for index in 0..limit {
            let Some(user) = users.at(index) else {
                continue;
            };
            let text = |field: &str| {
                user.get(field)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let upn = text("userPrincipalName");
            let id = Uuid::parse_str(&text("id")).unwrap_or_else(|_| users.id_at(index));
            let mailbox = exchange.mailbox(
                &format!("{name}.{index}"),
                MailboxKind::User,
                &upn,
                &text("displayName"),
                Some(id),
            );
            exchange.mailboxes.push(mailbox);
        }
        for extra in &spec.mailboxes {
            let address = exchange.address(&extra.alias);
            let mailbox = exchange.mailbox(
                &format!("{name}.{}", extra.alias),
                extra.kind,
                &address,
                &extra.display_name,
                None,
            );
            exchange.mailboxes.push(mailbox);
        }
        for forward in &spec.forwarding {
            if let Some(mailbox) = exchange.find_mailbox_mut(&forward.mailbox) {
                mailbox.forwarding_smtp_address = Some(smtp(&forward.smtp_address));
                mailbox.deliver_to_mailbox_and_forward = forward.deliver_to_mailbox_and_forward;
            }
        }
        for group in &spec.groups {
            let members = group
                .members
                .iter()
                .filter_map(|m| exchange.find_mailbox(m).map(|mb| mb.guid))
                .collect();
            let created = exchange.new_group(
                &group.alias,
                &group.display_name,
                if group.security {
                    GroupType::Security
                } else {
                    GroupType::Distribution
                },
            );
            let position = exchange.groups.len();
            exchange.groups.push(created);
            exchange.groups[position].members = members;
        }
        for grant in &spec.full_access {
            if let Some(mailbox) = exchange.find_mailbox(&grant.mailbox).map(|m| m.guid) {
                exchange.full_access.push(Grant {
                    mailbox,
                    trustee: grant.trustee.clone(),
                });
            }
        }
        for grant in &spec.send_as {
            if let Some(mailbox) = exchange.find_mailbox(&grant.mailbox).map(|m| m.guid) {
                exchange.send_as.push(Grant {
                    mailbox,
                    trustee: grant.trustee.clone(),
                });
            }
        }
        for rule in &spec.inbox_rules {
            let Some(mailbox) = exchange.find_mailbox(&rule.mailbox).map(|m| m.guid) else {
                continue;
            };
            let priority = exchange.rules_of(mailbox).count() as u32 + 1;
            exchange.rules.push(InboxRule {
                rule_identity: stable_hash(&[mailbox.as_bytes(), rule.name.as_bytes()]) >> 1,
                mailbox,
                name: rule.name.clone(),
                enabled: rule.enabled,
                hidden: rule.hidden,
                priority,
                subject_or_body_contains: rule.subject_or_body_contains.clone(),
                move_to_folder: rule.move_to_folder.clone(),
                forward_to: rule.forward_to.clone(),
                redirect_to: rule.redirect_to.clone(),
                delete_message: rule.delete_message,
                stop_processing_rules: rule.stop_processing_rules,
            });
        }
        exchange
    }

    /// `alias@default domain`.
    pub fn address(&self, alias: &str) -> String {
        format!("{alias}@{}", self.default_domain)
    }

    /// A new mailbox (not yet added), with the built-in junk rule.
    pub fn mailbox(
        &mut self,
        seed: &str,
        kind: MailboxKind,
        primary: &str,
        display_name: &str,
        user: Option<Uuid>,
    ) -> Mailbox {
        let guid = named(&format!("{seed}.mailbox"));
        let local = primary.split('@').next().unwrap_or(primary).to_owned();
        let mut email_addresses = vec![format!("SMTP:{primary}")];
        let initial = format!("{local}@{}", self.initial_domain);
        if !initial.eq_ignore_ascii_case(primary) {
            email_addresses.push(format!("smtp:{initial}"));
        } else if self.default_domain != self.initial_domain {
            email_addresses.push(format!("smtp:{local}@{}", self.default_domain));
        }
        self.rules.push(InboxRule {
            rule_identity: stable_hash(&[guid.as_bytes(), JUNK_RULE.as_bytes()]) >> 1,
            mailbox: guid,
            name: JUNK_RULE.to_owned(),
            enabled: true,
            // UNVERIFIED: the junk rule shows only with -IncludeHidden (CIPP sees it with
            // IncludeHidden and skips it by name).
            hidden: true,
            priority: 0,
            subject_or_body_contains: Vec::new(),
            move_to_folder: Some("Junk Email".to_owned()),
            forward_to: Vec::new(),
            redirect_to: Vec::new(),
            delete_message: false,
            stop_processing_rules: false,
        });
        Mailbox {
            guid,
            exchange_guid: named(&format!("{seed}.exchange-guid")),
            kind,
            name: local.clone(),
            display_name: if display_name.is_empty() {
                local
            } else {
                display_name.to_owned()
            },
            user_principal_name: primary.to_owned(),
            primary_smtp_address: primary.to_owned(),
            email_addresses,
            // Shared, room and equipment mailboxes have a disabled Entra user; the
            // simulator does not add it to Graph (documented deviation).
            external_directory_object_id: user.unwrap_or_else(|| named(&format!("{seed}.user"))),
            forwarding_smtp_address: None,
            forwarding_address: None,
            deliver_to_mailbox_and_forward: false,
            hidden_from_address_lists: false,
            grant_send_on_behalf_to: Vec::new(),
            created: created_at(stable_hash(&[seed.as_bytes()])),
        }
    }

    pub fn new_group(&self, alias: &str, display_name: &str, kind: GroupType) -> DistributionGroup {
        let seed = format!("{}.{alias}", self.organization_guid);
        DistributionGroup {
            guid: named(&format!("{seed}.group")),
            external_directory_object_id: named(&format!("{seed}.group-object")),
            name: alias.to_owned(),
            display_name: if display_name.is_empty() {
                alias.to_owned()
            } else {
                display_name.to_owned()
            },
            primary_smtp_address: self.address(alias),
            kind,
            members: Vec::new(),
            hidden_from_address_lists: false,
            created: created_at(stable_hash(&[seed.as_bytes()])),
        }
    }

    pub fn find_mailbox(&self, key: &str) -> Option<&Mailbox> {
        self.mailboxes.iter().find(|m| m.answers_to(key))
    }

    pub fn find_mailbox_mut(&mut self, key: &str) -> Option<&mut Mailbox> {
        self.mailboxes.iter_mut().find(|m| m.answers_to(key))
    }

    pub fn mailbox_by_guid(&self, guid: Uuid) -> Option<&Mailbox> {
        self.mailboxes.iter().find(|m| m.guid == guid)
    }

    pub fn find_group(&self, key: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.answers_to(key))
    }

    pub fn rules_of(&self, mailbox: Uuid) -> impl Iterator<Item = &InboxRule> {
        self.rules.iter().filter(move |r| r.mailbox == mailbox)
    }

    /// Whether an address is taken by any recipient.
    pub fn address_taken(&self, address: &str) -> bool {
        self.find_mailbox(address).is_some()
            || self
                .groups
                .iter()
                .any(|g| g.primary_smtp_address.eq_ignore_ascii_case(address))
    }
}

/// `addr` → `smtp:addr` (kept when already prefixed).
pub fn smtp(address: &str) -> String {
    let address = address.trim();
    match (address.get(..5), address.get(5..)) {
        (Some(prefix), Some(rest)) if prefix.eq_ignore_ascii_case("smtp:") => {
            format!("smtp:{rest}")
        }
        _ => format!("smtp:{address}"),
    }
}
