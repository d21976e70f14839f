//! Exchange Online data of a scenario tenant (graph-facts-next §2): which users have
//! mailboxes, the shared/room/equipment mailboxes, distribution and mail-enabled security
//! groups, FullAccess/SendAs grants, forwarding and inbox rules; and the builders that
//! give a tenant's app `Exchange.ManageAsApp` and shape that data. The demo's Contoso
//! organisation is built here.

use serde::{Deserialize, Serialize};

use super::TenantSpec;
use crate::model::exchange::MANAGE_AS_APP;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MailboxKind {
    User,
    Shared,
    Room,
    Equipment,
}

impl MailboxKind {
    /// `RecipientTypeDetails`.
    pub fn recipient_type_details(self) -> &'static str {
        match self {
            MailboxKind::User => "UserMailbox",
            MailboxKind::Shared => "SharedMailbox",
            MailboxKind::Room => "RoomMailbox",
            MailboxKind::Equipment => "EquipmentMailbox",
        }
    }
}

/// Mailboxes are named by any key `Get-Mailbox -Identity` accepts (UPN, address, alias).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExchangeSpec {
    /// User mailboxes for the first this-many users; `None`: every user has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_mailboxes: Option<u32>,
    /// Mailboxes other than the users' (shared, room, equipment), at `alias@` the
    /// tenant's second domain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mailboxes: Vec<MailboxSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub full_access: Vec<GrantSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub send_as: Vec<GrantSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forwarding: Vec<ForwardingSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inbox_rules: Vec<InboxRuleSpec>,
}

impl ExchangeSpec {
    pub fn is_empty(&self) -> bool {
        self.user_mailboxes.is_none()
            && self.mailboxes.is_empty()
            && self.groups.is_empty()
            && self.full_access.is_empty()
            && self.send_as.is_empty()
            && self.forwarding.is_empty()
            && self.inbox_rules.is_empty()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MailboxSpec {
    pub alias: String,
    pub display_name: String,
    pub kind: MailboxKind,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupSpec {
    pub alias: String,
    pub display_name: String,
    /// A mail-enabled security group (`New-DistributionGroup -Type Security`).
    #[serde(default)]
    pub security: bool,
    /// Member mailboxes.
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GrantSpec {
    pub mailbox: String,
    /// The trustee's UPN.
    pub trustee: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardingSpec {
    pub mailbox: String,
    /// Without the `smtp:` prefix (stored with it).
    pub smtp_address: String,
    #[serde(default)]
    pub deliver_to_mailbox_and_forward: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InboxRuleSpec {
    pub mailbox: String,
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Shown only by `Get-InboxRule -IncludeHidden`.
    #[serde(default)]
    pub hidden: bool,
    #[serde(default)]
    pub subject_or_body_contains: Vec<String>,
    #[serde(default)]
    pub move_to_folder: Option<String>,
    #[serde(default)]
    pub forward_to: Vec<String>,
    #[serde(default)]
    pub redirect_to: Vec<String>,
    #[serde(default)]
    pub delete_message: bool,
    #[serde(default)]
    pub stop_processing_rules: bool,
}

fn yes() -> bool {
    true
}

impl TenantSpec {
    /// The user principal name of generated user `index` (what its mailbox answers to).
    pub fn user_upn(&self, index: u32) -> Option<String> {
        let prefix = crate::model::ids::stable_hash(&[self.name.as_bytes(), self.id.as_bytes()]);
        let domain = self.domains.first()?;
        let users = crate::model::users::Users::new(prefix, domain, self.users);
        users
            .at(index)?
            .get("userPrincipalName")?
            .as_str()
            .map(str::to_owned)
    }

    /// Grants the app `Exchange.ManageAsApp` on Office 365 Exchange Online (a token for
    /// `https://outlook.office365.com/.default` then carries it).
    pub fn with_exchange_manage_as_app(mut self) -> Self {
        if let Some(sp) = self.sp_mut()
            && !sp.granted.iter().any(|g| g == MANAGE_AS_APP)
        {
            sp.granted.push(MANAGE_AS_APP.to_owned());
        }
        self
    }

    /// `Exchange.ManageAsApp` and the Exchange Administrator role: what an MSP sets up so
    /// every cmdlet works.
    pub fn with_exchange_admin(self) -> Self {
        let mut spec = self.with_exchange_manage_as_app();
        if let Some(sp) = spec.sp_mut()
            && !sp
                .directory_roles
                .iter()
                .any(|r| r == "Exchange Administrator")
        {
            sp.directory_roles.push("Exchange Administrator".to_owned());
        }
        spec
    }

    /// Replaces the tenant's Exchange data.
    pub fn with_exchange(mut self, exchange: ExchangeSpec) -> Self {
        self.exchange = exchange;
        self
    }

    /// Adds shared mailboxes `alias@<second domain>`.
    pub fn with_shared_mailboxes(mut self, aliases: &[&str]) -> Self {
        for alias in aliases {
            self.exchange.mailboxes.push(MailboxSpec {
                alias: (*alias).to_owned(),
                display_name: (*alias).to_owned(),
                kind: MailboxKind::Shared,
            });
        }
        self
    }

    /// Adds an inbox rule.
    pub fn with_inbox_rule(mut self, rule: InboxRuleSpec) -> Self {
        self.exchange.inbox_rules.push(rule);
        self
    }

    /// An organisation at scale for benches: beside a mailbox per user, `shared` shared
    /// mailboxes `shared-<n>@` (each with two FullAccess holders and a SendAs trustee
    /// among the users) and `groups` distribution groups `dl-<n>@` of `members` user
    /// mailboxes each (every third one a mail-enabled security group). The tenant then
    /// has `users + shared` mailboxes; the admin API pages them like any listing.
    pub fn with_exchange_at_scale(mut self, shared: u32, groups: u32, members: u32) -> Self {
        let users = self.users.max(1);
        let upn = |i: u32| self.user_upn(i % users).unwrap_or_default();
        let shared_domain = self
            .domains
            .get(1)
            .or(self.domains.first())
            .cloned()
            .unwrap_or_default();
        let mut exchange = ExchangeSpec::default();
        for n in 0..shared {
            let alias = format!("shared-{n}");
            let address = format!("{alias}@{shared_domain}");
            for trustee in [upn(2 * n), upn(2 * n + 1)] {
                exchange.full_access.push(GrantSpec {
                    mailbox: address.clone(),
                    trustee,
                });
            }
            exchange.send_as.push(GrantSpec {
                mailbox: address,
                trustee: upn(2 * n),
            });
            exchange.mailboxes.push(MailboxSpec {
                display_name: format!("Shared {n}"),
                alias,
                kind: MailboxKind::Shared,
            });
        }
        for n in 0..groups {
            exchange.groups.push(GroupSpec {
                alias: format!("dl-{n}"),
                display_name: format!("Distribution list {n}"),
                security: n % 3 == 2,
                members: (0..members).map(|m| upn(n * members + m)).collect(),
            });
        }
        self.exchange.mailboxes.extend(exchange.mailboxes);
        self.exchange.full_access.extend(exchange.full_access);
        self.exchange.send_as.extend(exchange.send_as);
        self.exchange.groups.extend(exchange.groups);
        self
    }
}

/// The user of the demo's Contoso whose mailbox forwards outside and has suspicious rules.
pub const CONTOSO_FORWARDING_USER: u32 = 7;
pub const CONTOSO_OUTSIDE_ADDRESS: &str = "someone@outside-example.net";
pub const CONTOSO_SHARED: [(&str, &str); 5] = [
    ("info", "Contoso Info"),
    ("support", "Contoso Support"),
    ("billing", "Contoso Billing"),
    ("hr", "Contoso HR"),
    ("reception", "Contoso Reception"),
];

/// Contoso's organisation in the demo: a mailbox per user, five shared mailboxes with
/// FullAccess and SendAs grants, two distribution groups and a mail-enabled security
/// group, and one user forwarding outside with suspicious inbox rules.
pub fn contoso_exchange(spec: &TenantSpec) -> ExchangeSpec {
    let upn = |i: u32| spec.user_upn(i).unwrap_or_default();
    let shared_domain = spec
        .domains
        .get(1)
        .or(spec.domains.first())
        .cloned()
        .unwrap_or_default();
    let shared = |alias: &str| format!("{alias}@{shared_domain}");
    let mut exchange = ExchangeSpec {
        mailboxes: CONTOSO_SHARED
            .iter()
            .map(|(alias, name)| MailboxSpec {
                alias: (*alias).to_owned(),
                display_name: (*name).to_owned(),
                kind: MailboxKind::Shared,
            })
            .collect(),
        ..ExchangeSpec::default()
    };
    for (n, (alias, _)) in CONTOSO_SHARED.iter().enumerate() {
        let n = n as u32;
        for trustee in [upn(3 + n), upn(10 + n)] {
            exchange.full_access.push(GrantSpec {
                mailbox: shared(alias),
                trustee,
            });
        }
        exchange.send_as.push(GrantSpec {
            mailbox: shared(alias),
            trustee: upn(3 + n),
        });
    }
    exchange.groups = vec![
        GroupSpec {
            alias: "all-staff-dl".to_owned(),
            display_name: "All Staff (DL)".to_owned(),
            security: false,
            members: (0..25).map(upn).collect(),
        },
        GroupSpec {
            alias: "sales-dl".to_owned(),
            display_name: "Sales DL".to_owned(),
            security: false,
            members: (25..35).map(upn).collect(),
        },
        GroupSpec {
            alias: "finance-approvers".to_owned(),
            display_name: "Finance Approvers".to_owned(),
            security: true,
            members: (35..40).map(upn).collect(),
        },
    ];
    let victim = upn(CONTOSO_FORWARDING_USER);
    exchange.forwarding.push(ForwardingSpec {
        mailbox: victim.clone(),
        smtp_address: CONTOSO_OUTSIDE_ADDRESS.to_owned(),
        deliver_to_mailbox_and_forward: false,
    });
    exchange.inbox_rules = vec![
        InboxRuleSpec {
            mailbox: victim.clone(),
            name: "Invoices".to_owned(),
            enabled: true,
            subject_or_body_contains: vec!["invoice".to_owned()],
            move_to_folder: Some("RSS Feeds".to_owned()),
            stop_processing_rules: true,
            ..InboxRuleSpec::default()
        },
        InboxRuleSpec {
            mailbox: victim.clone(),
            name: "Sync".to_owned(),
            enabled: true,
            forward_to: vec![CONTOSO_OUTSIDE_ADDRESS.to_owned()],
            ..InboxRuleSpec::default()
        },
        InboxRuleSpec {
            mailbox: victim,
            name: ".".to_owned(),
            enabled: true,
            hidden: true,
            subject_or_body_contains: vec!["password".to_owned(), "security alert".to_owned()],
            delete_message: true,
            ..InboxRuleSpec::default()
        },
    ];
    exchange
}
