//! The simulated directory: tenants with their app registrations, service principals,
//! users, groups, roles, licences, devices, risk and authentication methods. Built from a
//! [`Scenario`]; writes made through the Graph API change it in memory.

pub mod exchange;
pub mod ids;
pub mod methods;
pub mod partner;
pub mod subscriptions;
pub mod users;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::permissions;
use crate::scenario::{
    ConsentSpec, RelationshipSpec, Scenario, SecretSpec, SignInAudience, TenantSpec,
};
use ids::{Kind, stable_hash};
use methods::AuthMethods;
use subscriptions::Subscriptions;
use users::Users;

/// Microsoft's throttling size classes: under 50 users, up to 500, above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeClass {
    S,
    M,
    L,
}

impl SizeClass {
    pub fn of(users: u32) -> Self {
        match users {
            0..50 => SizeClass::S,
            50..=500 => SizeClass::M,
            _ => SizeClass::L,
        }
    }

    /// Resource units per 10 seconds for one application in one tenant (LEARN-THROTTLE).
    pub fn resource_units_per_10s(self) -> f64 {
        match self {
            SizeClass::S => 3500.0,
            SizeClass::M => 5000.0,
            SizeClass::L => 8000.0,
        }
    }
}

/// Entra built-in roles the simulator knows (template ids from graph-facts §6.1).
pub const ROLE_TEMPLATES: [(&str, &str, &str); 11] = [
    (
        "62e90394-69f5-4237-9190-012177145e10",
        "Global Administrator",
        "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities.",
    ),
    (
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
        "Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged Identity Management.",
    ),
    (
        "fe930be7-5e62-47db-91af-98c3a49a38b1",
        "User Administrator",
        "Can manage all aspects of users and groups, including resetting passwords for limited admins.",
    ),
    (
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        "Helpdesk Administrator",
        "Can reset passwords for non-administrators and Helpdesk Administrators.",
    ),
    (
        "966707d0-3269-4727-9be2-8c3a10f19b9d",
        "Password Administrator",
        "Can reset passwords for non-administrators and Password Administrators.",
    ),
    (
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",
        "Authentication Administrator",
        "Can access to view, set and reset authentication method information for any non-admin user.",
    ),
    (
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
        "Privileged Authentication Administrator",
        "Can access to view, set and reset authentication method information for any user (admin or non-admin).",
    ),
    (
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        "Security Administrator",
        "Can read security information and reports, and manage configuration in Microsoft Entra ID and Office 365.",
    ),
    // graph-facts §6.1 / graph-facts-next §1.10.
    (
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Exchange Administrator",
        "Can manage all aspects of the Exchange product.",
    ),
    (
        "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
        "Global Reader",
        "Can read everything that a Global Administrator can, but not update anything.",
    ),
    // graph-facts-next §2.1 (Exchange-capable roles).
    (
        "31392ffb-586c-42d1-9346-e59415a2cc4e",
        "Exchange Recipient Administrator",
        "Can create or update Exchange Online recipients within the Exchange Online organization.",
    ),
];

pub fn role_template(name_or_id: &str) -> Option<(usize, Uuid)> {
    ROLE_TEMPLATES
        .iter()
        .enumerate()
        .find_map(|(i, (id, name, _))| {
            (name.eq_ignore_ascii_case(name_or_id) || *id == name_or_id)
                .then(|| (i, Uuid::parse_str(id).unwrap_or_default()))
        })
}

pub struct World {
    pub tenants: Vec<Tenant>,
}

impl World {
    pub fn new(scenario: &Scenario) -> Self {
        let mut world = Self {
            tenants: scenario.tenants.iter().map(Tenant::new).collect(),
        };
        world.describe_foreign_apps();
        world
    }

    /// A tenant by GUID or by any of its verified domains.
    /// A tenant by id, domain or scenario name (what the control API and tests name).
    pub fn tenant_named(&self, key: &str) -> Option<usize> {
        self.tenant_index(key)
            .or_else(|| self.tenants.iter().position(|t| t.name == key))
    }

    pub fn tenant_index(&self, key: &str) -> Option<usize> {
        match Uuid::parse_str(key) {
            Ok(id) => self.tenants.iter().position(|t| t.id == id),
            Err(_) => self
                .tenants
                .iter()
                .position(|t| t.domains.iter().any(|d| d.eq_ignore_ascii_case(key))),
        }
    }
}

pub struct Secret {
    pub spec: SecretSpec,
}

impl Secret {
    pub fn hint(&self) -> String {
        self.spec.value.chars().take(3).collect()
    }
}

pub struct ServicePrincipal {
    pub id: Uuid,
    /// From when Entra knows it: before, the token endpoint answers AADSTS7000229 and Graph
    /// does not show it (consent still propagating).
    pub since: DateTime<Utc>,
    /// (assignment id, app role id, created); a grant whose `created` is still ahead is
    /// propagating: not yet in tokens or in Graph.
    pub granted: Vec<(String, Uuid, DateTime<Utc>)>,
    /// The same for Office 365 Exchange Online's app roles (`Exchange.ManageAsApp`): in
    /// Exchange tokens only, never in Graph's.
    pub exchange_granted: Vec<(String, Uuid, DateTime<Utc>)>,
    pub directory_roles: Vec<Uuid>,
    /// Tokens are issued for it, but Graph reads of it answer 404 (replication lag).
    pub not_yet_in_graph: bool,
}

/// A certificate credential: its SHA-256 thumbprint (base64url, as in `x5t#S256`), the
/// key that verifies assertions signed with it, and the dates Entra keeps for it (the
/// keyCredential's `startDateTime` and `endDateTime`).
pub struct Certificate {
    pub key_id: Uuid,
    pub display_name: String,
    pub thumbprint_s256: String,
    pub key: jsonwebtoken::DecodingKey,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Certificate {
    /// `None` when the PEM is not an RSA certificate.
    pub fn from_spec(spec: &crate::scenario::CertificateSpec) -> Option<Self> {
        use base64::Engine;
        use sha2::Digest;
        let body: String = spec
            .certificate_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .ok()?;
        let thumbprint_s256 =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&der));
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(spec.certificate_pem.as_bytes()).ok()?;
        Some(Self {
            key_id: spec.key_id,
            display_name: spec.display_name.clone(),
            thumbprint_s256,
            key,
            start: spec.start,
            end: spec.end,
        })
    }
}

pub struct App {
    pub client_id: Uuid,
    pub object_id: Uuid,
    pub display_name: String,
    pub secrets: Vec<Secret>,
    pub certificates: Vec<Certificate>,
    pub sp: Option<ServicePrincipal>,
    pub sign_in_audience: SignInAudience,
    pub redirect_uris: Vec<String>,
    /// `requiredResourceAccess` on Graph: app role ids.
    pub required: Vec<Uuid>,
    /// `requiredResourceAccess` on Office 365 Exchange Online (`Exchange.ManageAsApp`).
    pub exchange_required: Vec<Uuid>,
    /// `Some(tenant id)`: registered in that (partner) tenant; this entry is only its
    /// service principal here, without credentials or an application object.
    pub home: Option<Uuid>,
    /// The registering tenant's display name (`publisherName` of the service principal).
    pub publisher: String,
}

pub struct DirectoryRole {
    pub id: Uuid,
    pub template_id: Uuid,
    pub display_name: &'static str,
    pub description: &'static str,
    /// Users (by index) holding the role.
    pub user_members: Vec<u32>,
    /// Service principals holding the role.
    pub sp_members: Vec<Uuid>,
}

pub struct Group {
    pub id: Uuid,
    pub display_name: String,
    pub description: String,
    pub mail_nickname: String,
    pub unified: bool,
    pub security_enabled: bool,
    pub members: Vec<Uuid>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    User,
    Group,
}

pub struct Change {
    pub seq: u64,
    pub kind: ChangeKind,
    pub id: Uuid,
    pub removed: bool,
}

pub struct Tenant {
    pub id: Uuid,
    /// What `/organization` answers as the id (the tenant's own id unless a scenario fault
    /// says otherwise).
    pub organization_id: Uuid,
    pub name: String,
    pub display_name: String,
    pub domains: Vec<String>,
    pub size: SizeClass,
    pub prefix: u64,
    /// The Microsoft Graph service principal's object id in this tenant.
    pub graph_sp_id: Uuid,
    pub apps: Vec<App>,
    pub roles: Vec<DirectoryRole>,
    pub users: Users,
    pub groups: Vec<Group>,
    pub methods: AuthMethods,
    pub dismissed_risk: HashSet<u32>,
    pub revoked_sessions: HashMap<u32, u32>,
    pub photos: HashMap<u32, usize>,
    pub changes: Vec<Change>,
    pub seq: u64,
    /// Change-notification subscriptions and their undelivered notifications.
    pub subscriptions: Subscriptions,
    /// GDAP relationships, when this is a partner tenant.
    pub relationships: Vec<RelationshipSpec>,
    /// What the simulated admin answers on `/adminconsent`.
    pub consent: ConsentSpec,
    /// The Office 365 Exchange Online service principal's object id in this tenant.
    pub exchange_sp_id: Uuid,
    /// What the Exchange organisation is built from, on first use.
    pub exchange_spec: crate::scenario::exchange::ExchangeSpec,
    /// The Exchange Online organisation, once an admin API call asked for it.
    pub exchange: Option<exchange::Exchange>,
    /// Until then Exchange's RBAC has not picked up the app's directory role: every
    /// cmdlet answers 401 "User is not allowed to call …" although Graph shows the role
    /// and the app role granted (assignments reach Exchange with a delay).
    pub exchange_rbac_ready_at: Option<DateTime<Utc>>,
}

/// Users whose index has this remainder mod 97 are at risk.
pub const RISKY_MODULUS: u32 = 97;
pub const RISKY_REMAINDER: u32 = 5;

impl Tenant {
    pub fn new(spec: &TenantSpec) -> Self {
        let prefix = stable_hash(&[spec.name.as_bytes(), spec.id.as_bytes()]);
        let mut roles: Vec<DirectoryRole> = Vec::new();
        let activate =
            |roles: &mut Vec<DirectoryRole>, index: usize| activate_role(roles, prefix, index);
        // The first three users hold Global, User and Helpdesk Administrator.
        for (user, template) in [(0u32, 0usize), (1, 2), (2, 3)] {
            if user < spec.users {
                let pos = activate(&mut roles, template);
                roles[pos].user_members.push(user);
            }
        }
        let loaded = Utc::now();
        let apps = spec
            .apps
            .iter()
            .map(|app| App {
                sign_in_audience: app.sign_in_audience,
                redirect_uris: app.redirect_uris.clone(),
                required: app
                    .required_permissions
                    .iter()
                    .filter_map(|value| permissions::id_of(value))
                    .collect(),
                exchange_required: app
                    .required_permissions
                    .iter()
                    .filter_map(|value| exchange::role_id_of(value))
                    .collect(),
                home: app.home_tenant.filter(|home| *home != spec.id),
                publisher: spec.display_name.clone(),
                client_id: app.client_id,
                object_id: ids::named(&format!("{}.{}.application", spec.name, app.client_id)),
                display_name: app.display_name.clone(),
                secrets: app
                    .secrets
                    .iter()
                    .map(|s| Secret { spec: s.clone() })
                    .collect(),
                certificates: app
                    .certificates
                    .iter()
                    .filter_map(Certificate::from_spec)
                    .collect(),
                sp: app.service_principal.as_ref().map(|sp| {
                    let mut directory_roles = Vec::new();
                    for role in &sp.directory_roles {
                        if let Some((index, template)) = role_template(role) {
                            let pos = activate(&mut roles, index);
                            roles[pos].sp_members.push(sp.id);
                            directory_roles.push(template);
                        }
                    }
                    let created = if sp.roles_propagate_seconds > 0 {
                        loaded
                            + chrono::Duration::seconds(
                                i64::try_from(sp.roles_propagate_seconds).unwrap_or(i64::MAX / 2),
                            )
                    } else {
                        DateTime::parse_from_rfc3339("2026-01-15T09:05:00Z")
                            .map_or_else(|_| Utc::now(), |t| t.with_timezone(&Utc))
                    };
                    ServicePrincipal {
                        id: sp.id,
                        since: DateTime::<Utc>::MIN_UTC,
                        granted: sp
                            .granted
                            .iter()
                            .filter_map(|value| permissions::id_of(value))
                            .map(|role| (assignment_id(sp.id, role), role, created))
                            .collect(),
                        exchange_granted: sp
                            .granted
                            .iter()
                            .filter_map(|value| exchange::role_id_of(value))
                            .map(|role| (assignment_id(sp.id, role), role, created))
                            .collect(),
                        directory_roles,
                        not_yet_in_graph: sp.not_yet_in_graph,
                    }
                }),
            })
            .collect();
        let domain = spec
            .domains
            .first()
            .cloned()
            .unwrap_or_else(|| format!("{}.onmicrosoft.com", spec.name));
        let users = Users::new(prefix, &domain, spec.users);
        let groups = generate_groups(prefix, spec.users);
        Self {
            id: spec.id,
            organization_id: spec.organization_id_override.unwrap_or(spec.id),
            name: spec.name.clone(),
            display_name: spec.display_name.clone(),
            domains: spec.domains.clone(),
            size: SizeClass::of(spec.users),
            prefix,
            graph_sp_id: ids::named(&format!("{}.graph-sp", spec.name)),
            apps,
            roles,
            users,
            groups,
            methods: AuthMethods::default(),
            dismissed_risk: HashSet::new(),
            revoked_sessions: HashMap::new(),
            photos: HashMap::new(),
            changes: Vec::new(),
            seq: 0,
            subscriptions: Subscriptions::default(),
            relationships: spec.gdap_relationships.clone(),
            consent: spec.consent,
            exchange_sp_id: ids::named(&format!("{}.exchange-sp", spec.name)),
            exchange_spec: spec.exchange.clone(),
            exchange: None,
            exchange_rbac_ready_at: None,
        }
    }

    pub fn app(&self, client_id: Uuid) -> Option<&App> {
        self.apps.iter().find(|a| a.client_id == client_id)
    }

    /// Records a change for delta and queues its change notifications.
    pub fn record_change(&mut self, kind: ChangeKind, id: Uuid, removed: bool) {
        self.seq += 1;
        self.changes.push(Change {
            seq: self.seq,
            kind,
            id,
            removed,
        });
        self.subscriptions.queue(kind, id, removed);
    }

    /// Whether a user (by index) holds any directory role.
    pub fn is_privileged(&self, user: u32) -> bool {
        self.roles.iter().any(|r| r.user_members.contains(&user))
    }

    pub fn is_risky(&self, user: u32) -> bool {
        user % RISKY_MODULUS == RISKY_REMAINDER && !self.dismissed_risk.contains(&user)
    }

    /// The Exchange Online organisation, built from the users and the spec on first use.
    pub fn exchange_mut(&mut self) -> &mut exchange::Exchange {
        let (name, domains, users, spec) =
            (&self.name, &self.domains, &self.users, &self.exchange_spec);
        self.exchange
            .get_or_insert_with(|| exchange::Exchange::build(name, domains, users, spec))
    }

    pub fn initial_domain(&self) -> &str {
        self.domains.first().map_or("", String::as_str)
    }
}

/// The position of built-in role `index` (of [`ROLE_TEMPLATES`]) among the tenant's
/// activated roles, activating it first if needed.
pub(crate) fn activate_role(roles: &mut Vec<DirectoryRole>, prefix: u64, index: usize) -> usize {
    if let Some(pos) = roles
        .iter()
        .position(|r| r.template_id.to_string() == ROLE_TEMPLATES[index].0)
    {
        return pos;
    }
    let (template, name, description) = ROLE_TEMPLATES[index];
    roles.push(DirectoryRole {
        id: ids::generated(prefix, Kind::Role, index as u32),
        template_id: Uuid::parse_str(template).unwrap_or_default(),
        display_name: name,
        description,
        user_members: Vec::new(),
        sp_members: Vec::new(),
    });
    roles.len() - 1
}

/// Base64url of (SP id ‖ role id), like Entra's 43-character assignment ids.
pub(crate) fn assignment_id(sp: Uuid, role: Uuid) -> String {
    use base64::Engine;
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(sp.as_bytes());
    bytes.extend_from_slice(role.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

const NAMED_GROUPS: [(&str, bool); 5] = [
    ("Finance-Admins", false),
    ("All Staff", true),
    ("Sales", true),
    ("IT Security", false),
    ("VPN Users", false),
];

/// Five named groups plus one per 50 users; user i belongs to group (i mod count).
fn generate_groups(prefix: u64, users: u32) -> Vec<Group> {
    let count = (NAMED_GROUPS.len() as u32).max(users / 50);
    let mut groups: Vec<Group> = (0..count)
        .map(|g| {
            let (name, unified) = NAMED_GROUPS.get(g as usize).map_or_else(
                || (format!("Team {g:04}"), g % 2 == 0),
                |(n, u)| ((*n).to_owned(), *u),
            );
            Group {
                id: ids::generated(prefix, Kind::Group, g),
                description: format!("{name} group"),
                mail_nickname: name.to_ascii_lowercase().replace(' ', "-"),
                display_name: name,
                unified,
                security_enabled: !unified,
                members: Vec::new(),
            }
        })
        .collect();
    for user in 0..users {
        groups[(user % count) as usize]
            .members
            .push(ids::generated(prefix, Kind::User, user));
    }
    groups
}
