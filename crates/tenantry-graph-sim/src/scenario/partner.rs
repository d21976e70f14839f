//! Partner mode as scenario data: a partner tenant with a multi-tenant app, customer tenants
//! holding (or lacking) its service principal, GDAP relationships between them, and what each
//! tenant's simulated admin answers on `/adminconsent` (graph-facts-next §1). `partner_demo`
//! is the six-customer preset for `tenantry dev`.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AppSpec, Scenario, ServicePrincipalSpec, TenantSpec};
use crate::model::ids::named;
use crate::permissions;

/// Entra role template ids used by GDAP relationships and directory roles.
pub mod roles {
    pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
    pub const PRIVILEGED_ROLE_ADMINISTRATOR: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
    pub const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
    pub const EXCHANGE_ADMINISTRATOR: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";
    pub const PRIVILEGED_AUTHENTICATION_ADMINISTRATOR: &str =
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13";
    pub const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
    pub const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";
}

/// The permission a partner app needs in its own tenant to list GDAP relationships.
pub const GDAP_READ: &str = "DelegatedAdminRelationship.Read.All";

/// `signInAudience` of an app registration (only the two values partner mode needs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignInAudience {
    #[default]
    AzureADMyOrg,
    AzureADMultipleOrgs,
}

impl SignInAudience {
    pub fn as_str(self) -> &'static str {
        match self {
            SignInAudience::AzureADMyOrg => "AzureADMyOrg",
            SignInAudience::AzureADMultipleOrgs => "AzureADMultipleOrgs",
        }
    }
}

/// The simulated admin's answer on the consent screen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConsentChoice {
    #[default]
    Accept,
    Decline,
}

/// What `/adminconsent` does in a tenant: the admin's choice, and how long the consent
/// takes to reach tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentSpec {
    #[serde(default)]
    pub choice: ConsentChoice,
    /// Seconds after consent until the granted app roles appear in new tokens (and in
    /// Graph's `appRoleAssignments`); tokens minted before keep the old roles.
    #[serde(default)]
    pub propagation_seconds: u64,
    /// Seconds after consent until a new service principal exists for the token endpoint
    /// (AADSTS7000229 until then); `None`: the same as `propagation_seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal_seconds: Option<u64>,
}

impl ConsentSpec {
    pub fn service_principal_delay(&self) -> u64 {
        self.service_principal_seconds
            .unwrap_or(self.propagation_seconds)
    }
}

/// `delegatedAdminRelationshipStatus` (graph-facts-next §1.7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RelationshipStatus {
    Activating,
    Active,
    ApprovalPending,
    Approved,
    Created,
    Expired,
    Expiring,
    Terminated,
    Terminating,
    TerminationRequested,
}

impl RelationshipStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RelationshipStatus::Activating => "activating",
            RelationshipStatus::Active => "active",
            RelationshipStatus::ApprovalPending => "approvalPending",
            RelationshipStatus::Approved => "approved",
            RelationshipStatus::Created => "created",
            RelationshipStatus::Expired => "expired",
            RelationshipStatus::Expiring => "expiring",
            RelationshipStatus::Terminated => "terminated",
            RelationshipStatus::Terminating => "terminating",
            RelationshipStatus::TerminationRequested => "terminationRequested",
        }
    }

    /// Whether the relationship has been activated (`activatedDateTime` set).
    pub fn was_activated(self) -> bool {
        !matches!(
            self,
            RelationshipStatus::Created
                | RelationshipStatus::ApprovalPending
                | RelationshipStatus::Approved
                | RelationshipStatus::Activating
        )
    }
}

/// One GDAP relationship of a partner tenant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RelationshipSpec {
    /// Two GUIDs joined by `-`, as Microsoft's samples show.
    pub id: String,
    pub display_name: String,
    pub customer_tenant_id: Uuid,
    pub customer_display_name: String,
    pub status: RelationshipStatus,
    /// `accessDetails.unifiedRoles[].roleDefinitionId` (Entra role template ids).
    pub roles: Vec<Uuid>,
    /// `duration`, as `P{n}D`.
    pub duration_days: u32,
    /// `autoExtendDuration`: 0 is `PT0S` (no auto-extension), else `P{n}D`.
    #[serde(default)]
    pub auto_extend_days: u32,
    pub created: DateTime<Utc>,
    /// `None` before activation; `endDateTime` = this + `duration`.
    #[serde(default)]
    pub activated: Option<DateTime<Utc>>,
}

impl RelationshipSpec {
    /// An active relationship with `customer`, activated `age_days` ago, for `duration_days`.
    pub fn active(
        customer: &TenantSpec,
        roles: &[&str],
        age_days: i64,
        duration_days: u32,
    ) -> Self {
        let activated = Utc::now() - Duration::days(age_days);
        Self {
            id: format!(
                "{}-{}",
                named(&format!("{}.gdap", customer.name)),
                named(&format!("{}.gdap.2", customer.name))
            ),
            display_name: format!("{} admin relationship", customer.display_name),
            customer_tenant_id: customer.id,
            customer_display_name: customer.display_name.clone(),
            status: RelationshipStatus::Active,
            roles: roles
                .iter()
                .filter_map(|r| Uuid::parse_str(r).ok())
                .collect(),
            duration_days,
            auto_extend_days: 0,
            created: activated - Duration::minutes(3),
            activated: Some(activated),
        }
    }

    /// The same relationship with another status (dates cleared before activation).
    pub fn with_status(mut self, status: RelationshipStatus) -> Self {
        self.status = status;
        if !status.was_activated() {
            self.activated = None;
        }
        self
    }

    pub fn end(&self) -> Option<DateTime<Utc>> {
        self.activated
            .map(|a| a + Duration::days(i64::from(self.duration_days)))
    }

    pub fn duration(&self) -> String {
        format!("P{}D", self.duration_days)
    }

    pub fn auto_extend_duration(&self) -> String {
        match self.auto_extend_days {
            0 => "PT0S".to_owned(),
            n => format!("P{n}D"),
        }
    }

    /// The status Graph shows at `now`: an active relationship past its end date is
    /// `expired` (Microsoft passes through `expiring` while deprovisioning; the simulator
    /// skips it unless a scenario sets it, UNVERIFIED timing).
    pub fn status_at(&self, now: DateTime<Utc>) -> RelationshipStatus {
        match (self.status, self.end()) {
            (RelationshipStatus::Active, Some(end)) if end <= now => RelationshipStatus::Expired,
            (status, _) => status,
        }
    }
}

impl TenantSpec {
    /// A partner tenant: one multi-tenant app (`AzureADMultipleOrgs`) with a secret,
    /// redirect URIs for Tenantry's consent callback on `localhost:8080`, declaring the
    /// default required set (what customers consent to), and consented in its own tenant
    /// with that set plus `DelegatedAdminRelationship.Read.All`.
    pub fn partner(name: &str, display_name: &str, users: u32) -> Self {
        let mut spec = Self::healthy(name, display_name, users);
        // Graph's default set and Exchange's app role, so customers can consent to both.
        let required: Vec<String> = permissions::DEFAULT_REQUIRED
            .iter()
            .map(|p| (*p).to_owned())
            .chain(std::iter::once(
                crate::model::exchange::MANAGE_AS_APP.to_owned(),
            ))
            .collect();
        let app = spec.app_mut();
        app.display_name = "Tenantry Partner".to_owned();
        app.sign_in_audience = SignInAudience::AzureADMultipleOrgs;
        app.redirect_uris = vec![
            "http://localhost:8080/consent/callback".to_owned(),
            "http://127.0.0.1:8080/consent/callback".to_owned(),
        ];
        app.required_permissions = required;
        if let Some(sp) = spec.sp_mut() {
            sp.granted.push(GDAP_READ.to_owned());
            sp.directory_roles.clear();
        }
        spec
    }

    /// A customer tenant of `partner` that has consented its app: the app's service
    /// principal holds every permission the app declares, and User Administrator.
    pub fn customer_of(partner: &TenantSpec, name: &str, display_name: &str, users: u32) -> Self {
        let home = partner.app();
        let mut spec = Self::healthy(name, display_name, users);
        spec.apps = vec![AppSpec {
            client_id: home.client_id,
            display_name: home.display_name.clone(),
            secrets: Vec::new(),
            certificates: Vec::new(),
            service_principal: Some(ServicePrincipalSpec {
                id: named(&format!("{name}.{}.sp", home.client_id)),
                granted: home.required_permissions.clone(),
                directory_roles: vec!["User Administrator".to_owned()],
                not_yet_in_graph: false,
                roles_propagate_seconds: 0,
            }),
            sign_in_audience: home.sign_in_audience,
            redirect_uris: Vec::new(),
            required_permissions: Vec::new(),
            home_tenant: Some(partner.id),
        }];
        spec
    }

    /// Adds a GDAP relationship (on a partner tenant).
    pub fn with_relationship(mut self, relationship: RelationshipSpec) -> Self {
        self.gdap_relationships.push(relationship);
        self
    }

    /// What this tenant's admin answers on `/adminconsent`.
    pub fn with_consent(mut self, consent: ConsentSpec) -> Self {
        self.consent = consent;
        self
    }

    /// The service principal exists but its roles reach tokens only `seconds` after load.
    pub fn with_roles_propagating(mut self, seconds: u64) -> Self {
        if let Some(sp) = self.sp_mut() {
            sp.roles_propagate_seconds = seconds;
        }
        self
    }
}

/// The GDAP roles a partner needs to consent for its customers, plus the usual others.
const FULL_GDAP: [&str; 5] = [
    roles::GLOBAL_ADMINISTRATOR,
    roles::PRIVILEGED_ROLE_ADMINISTRATOR,
    roles::USER_ADMINISTRATOR,
    roles::EXCHANGE_ADMINISTRATOR,
    roles::HELPDESK_ADMINISTRATOR,
];

/// The directory roles the app's service principal holds in a complete customer.
const FULL_DIRECTORY_ROLES: [&str; 3] = [
    "User Administrator",
    "Exchange Administrator",
    "Privileged Authentication Administrator",
];

/// The `partner` scenario for `tenantry dev`: the partner tenant `adatum` (first tenant;
/// its app's secret is the partner credential) and six customers, one per state:
///
/// | customer | state |
/// |---|---|
/// | `fourthcoffee` | consented, every permission and directory role, GDAP with GA/PRA |
/// | `alpineskihouse` | not consented (AADSTS7000229), GDAP with GA/PRA |
/// | `proseware` | consented, roles still propagating for two minutes |
/// | `wideworldimporters` | not consented, GDAP without Global or Privileged Role Administrator |
/// | `margiestravel` | consented, Exchange Administrator missing |
/// | `lamna` | consented and complete, GDAP relationship ending in 10 days |
///
/// Admins accept consent; it propagates in 30 seconds (`PUT /_sim/tenants/{t}/consent`).
pub fn partner_demo() -> Scenario {
    let partner = TenantSpec::partner("adatum", "Adatum Partners", 12);
    let consent = ConsentSpec {
        choice: ConsentChoice::Accept,
        propagation_seconds: 30,
        service_principal_seconds: Some(10),
    };
    let customer = |name: &str, display: &str, users: u32| {
        TenantSpec::customer_of(&partner, name, display, users)
            .with_directory_roles(&FULL_DIRECTORY_ROLES)
            .with_consent(consent)
    };
    let customers = vec![
        customer("fourthcoffee", "Fourth Coffee", 60),
        customer("alpineskihouse", "Alpine Ski House", 35).without_service_principal(),
        customer("proseware", "Proseware Inc", 45).with_roles_propagating(120),
        customer("wideworldimporters", "Wide World Importers", 80).without_service_principal(),
        customer("margiestravel", "Margie's Travel", 25).with_directory_roles(&[
            "User Administrator",
            "Privileged Authentication Administrator",
        ]),
        customer("lamna", "Lamna Healthcare", 40),
    ];
    let limited = [roles::USER_ADMINISTRATOR, roles::EXCHANGE_ADMINISTRATOR];
    let mut partner = partner;
    for c in &customers {
        let relationship = match c.name.as_str() {
            "wideworldimporters" => RelationshipSpec::active(c, &limited, 200, 730),
            "lamna" => RelationshipSpec::active(c, &FULL_GDAP, 720, 730),
            _ => RelationshipSpec::active(c, &FULL_GDAP, 100, 730),
        };
        partner = partner.with_relationship(relationship);
    }
    let mut tenants = vec![partner];
    tenants.extend(customers);
    Scenario { tenants }
}

/// A partner with `customers` consented customers (each with an active GDAP relationship
/// holding GA/PRA), for benches and scale tests.
pub fn partner_at_scale(customers: usize, users_per_customer: u32) -> Scenario {
    let mut partner = TenantSpec::partner("scalepartner", "Scale Partner", 10);
    let mut tenants = Vec::with_capacity(customers + 1);
    for i in 0..customers {
        let customer = TenantSpec::customer_of(
            &partner,
            &format!("customer{i:04}"),
            &format!("Customer {i:04}"),
            users_per_customer,
        )
        .with_directory_roles(&FULL_DIRECTORY_ROLES);
        partner =
            partner.with_relationship(RelationshipSpec::active(&customer, &FULL_GDAP, 30, 730));
        tenants.push(customer);
    }
    tenants.insert(0, partner);
    Scenario { tenants }
}
