//! Scenarios are data: a list of tenants with their app registrations, granted permissions,
//! directory roles and sizes. `demo` is built here (`partner_demo` in [`partner`]); tests
//! build their own with [`TenantSpec`]'s builder methods or load JSON (`PUT /_sim/scenario`).

pub mod exchange;
pub mod partner;

pub use partner::{
    ConsentChoice, ConsentSpec, RelationshipSpec, RelationshipStatus, SignInAudience, partner_demo,
};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::ids::named;
use crate::permissions;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Scenario {
    pub tenants: Vec<TenantSpec>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TenantSpec {
    /// Short name; also the first label of the initial `<name>.onmicrosoft.com` domain.
    pub name: String,
    pub id: Uuid,
    pub display_name: String,
    /// Verified domains; the first is the initial `onmicrosoft.com` one.
    pub domains: Vec<String>,
    pub users: u32,
    pub apps: Vec<AppSpec>,
    /// Make `/organization` answer another id than the tenant's: a fault that no healthy
    /// tenant shows, for testing a client's TENANT_MISMATCH handling.
    #[serde(default)]
    pub organization_id_override: Option<Uuid>,
    /// GDAP relationships of a partner tenant with its customers (graph-facts-next §1.7.3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gdap_relationships: Vec<RelationshipSpec>,
    /// What the tenant's simulated admin answers on `/adminconsent`.
    #[serde(default)]
    pub consent: ConsentSpec,
    /// Exchange Online data (graph-facts-next §2); by default a mailbox per user.
    #[serde(default, skip_serializing_if = "exchange::ExchangeSpec::is_empty")]
    pub exchange: exchange::ExchangeSpec,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppSpec {
    pub client_id: Uuid,
    pub display_name: String,
    pub secrets: Vec<SecretSpec>,
    /// Certificate credentials (PEM), for client assertions.
    #[serde(default)]
    pub certificates: Vec<CertificateSpec>,
    /// `None`: registered but never consented in the tenant (no enterprise application).
    pub service_principal: Option<ServicePrincipalSpec>,
    /// Who may sign in: `AzureADMyOrg` (this tenant only, the default) or
    /// `AzureADMultipleOrgs` (a partner's multi-tenant app).
    #[serde(default)]
    pub sign_in_audience: SignInAudience,
    /// The registered redirect URIs (`web.redirectUris`), checked by `/adminconsent`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    /// The Graph application permissions the app declares (`requiredResourceAccess`): what
    /// an admin consents to on `/adminconsent`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_permissions: Vec<String>,
    /// `Some(partner tenant id)`: the app is registered in that tenant and this entry is
    /// only its service principal here (no credentials of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_tenant: Option<Uuid>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretSpec {
    pub key_id: Uuid,
    pub value: String,
    pub display_name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CertificateSpec {
    pub key_id: Uuid,
    pub display_name: String,
    /// The public certificate, PEM (`-----BEGIN CERTIFICATE-----`).
    pub certificate_pem: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServicePrincipalSpec {
    pub id: Uuid,
    /// Granted application permissions, by value: Microsoft Graph's (`User.Read.All`) and
    /// Office 365 Exchange Online's `Exchange.ManageAsApp`.
    pub granted: Vec<String>,
    /// Directory roles held by the service principal, by display name.
    pub directory_roles: Vec<String>,
    /// Entra issues tokens for it (their `oid` names it) but Graph does not show it yet:
    /// reads of it answer 404, as in the minutes after consent while it replicates
    /// (graph-facts-next §1.6).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_yet_in_graph: bool,
    /// The granted roles reach tokens (and Graph) only this many seconds after the scenario
    /// loads: consent still propagating (graph-facts-next §1.6).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub roles_propagate_seconds: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Scenario {
    pub fn by_name(name: &str) -> Option<Scenario> {
        match name {
            "demo" => Some(demo()),
            "partner" | "partner_demo" => Some(partner_demo()),
            "empty" => Some(Scenario::default()),
            _ => None,
        }
    }
}

impl TenantSpec {
    /// A healthy tenant named `name` with `users` users and one app holding every permission
    /// of the default required set and User Administrator.
    pub fn healthy(name: &str, display_name: &str, users: u32) -> Self {
        let client_id = named(&format!("{name}.app"));
        Self {
            name: name.to_owned(),
            id: named(&format!("{name}.tenant")),
            display_name: display_name.to_owned(),
            domains: vec![format!("{name}.onmicrosoft.com"), format!("{name}.example")],
            users,
            organization_id_override: None,
            gdap_relationships: Vec::new(),
            consent: ConsentSpec::default(),
            exchange: exchange::ExchangeSpec::default(),
            apps: vec![AppSpec {
                client_id,
                display_name: "Tenantry".to_owned(),
                secrets: vec![SecretSpec::valid(name)],
                certificates: Vec::new(),
                service_principal: Some(ServicePrincipalSpec {
                    id: named(&format!("{name}.sp")),
                    granted: permissions::DEFAULT_REQUIRED
                        .iter()
                        .map(|p| (*p).to_owned())
                        .collect(),
                    directory_roles: vec!["User Administrator".to_owned()],
                    not_yet_in_graph: false,
                    roles_propagate_seconds: 0,
                }),
                sign_in_audience: SignInAudience::AzureADMyOrg,
                redirect_uris: Vec::new(),
                required_permissions: Vec::new(),
                home_tenant: None,
            }],
        }
    }

    pub fn app(&self) -> &AppSpec {
        &self.apps[0]
    }

    pub(crate) fn app_mut(&mut self) -> &mut AppSpec {
        &mut self.apps[0]
    }

    pub(crate) fn sp_mut(&mut self) -> Option<&mut ServicePrincipalSpec> {
        self.app_mut().service_principal.as_mut()
    }

    /// `/organization` answers `id` instead of the tenant's own id (a fault).
    pub fn with_organization_id(mut self, id: Uuid) -> Self {
        self.organization_id_override = Some(id);
        self
    }

    /// Revokes consent for these permissions.
    pub fn without_permissions(mut self, missing: &[&str]) -> Self {
        if let Some(sp) = self.sp_mut() {
            sp.granted.retain(|p| !missing.contains(&p.as_str()));
        }
        self
    }

    /// Adds consent for these permissions.
    pub fn with_permissions(mut self, extra: &[&str]) -> Self {
        if let Some(sp) = self.sp_mut() {
            sp.granted.extend(extra.iter().map(|p| (*p).to_owned()));
        }
        self
    }

    pub fn without_service_principal(mut self) -> Self {
        self.app_mut().service_principal = None;
        self
    }

    /// The service principal exists for Entra (tokens are issued) but Graph does not
    /// show it yet (`false` undoes it).
    pub fn with_service_principal_replicating(mut self, replicating: bool) -> Self {
        if let Some(sp) = self.sp_mut() {
            sp.not_yet_in_graph = replicating;
        }
        self
    }

    pub fn with_directory_roles(mut self, roles: &[&str]) -> Self {
        if let Some(sp) = self.sp_mut() {
            sp.directory_roles = roles.iter().map(|r| (*r).to_owned()).collect();
        }
        self
    }

    pub fn with_expired_secret(mut self) -> Self {
        let name = self.name.clone();
        self.app_mut().secrets = vec![SecretSpec::expired(&name)];
        self
    }

    /// Registers a certificate credential (PEM) on the app, valid for two years.
    pub fn with_certificate(mut self, certificate_pem: &str) -> Self {
        let start = Utc::now() - Duration::days(1);
        let key_id = named(&format!(
            "{}.certificate.{}",
            self.name,
            self.app().certificates.len()
        ));
        self.app_mut().certificates.push(CertificateSpec {
            key_id,
            display_name: "CN=tenantry".to_owned(),
            certificate_pem: certificate_pem.to_owned(),
            start,
            end: start + Duration::days(730),
        });
        self
    }

    /// The value of the app's first secret (what an MSP pastes).
    pub fn secret_value(&self) -> &str {
        &self.app().secrets[0].value
    }
}

impl SecretSpec {
    fn value_for(name: &str) -> String {
        // Entra secret values are 40 characters with `8Q~` after the three-character hint.
        let hash = |salt: &[u8]| crate::model::ids::stable_hash(&[name.as_bytes(), salt]);
        let digest = format!(
            "{:016x}{:016x}{:016x}",
            hash(b"s1"),
            hash(b"s2"),
            hash(b"s3")
        );
        format!("{}8Q~{}", &digest[..3], &digest[3..37])
    }

    pub fn valid(name: &str) -> Self {
        let start = DateTime::parse_from_rfc3339("2026-01-15T09:00:00Z")
            .map_or_else(|_| Utc::now(), |t| t.with_timezone(&Utc));
        Self {
            key_id: named(&format!("{name}.secret")),
            value: Self::value_for(name),
            display_name: "Tenantry".to_owned(),
            start,
            end: start + Duration::days(730),
        }
    }

    pub fn expired(name: &str) -> Self {
        let start = DateTime::parse_from_rfc3339("2024-01-15T09:00:00Z")
            .map_or_else(|_| Utc::now(), |t| t.with_timezone(&Utc));
        Self {
            end: start + Duration::days(365),
            start,
            ..Self::valid(name)
        }
    }
}

/// The `demo` scenario: one tenant for each situation an MSP meets when adding a tenant.
pub fn demo() -> Scenario {
    let contoso = TenantSpec::healthy("contoso", "Contoso Ltd", 250).with_exchange_admin();
    let contoso_exchange = exchange::contoso_exchange(&contoso);
    Scenario {
        tenants: vec![
            contoso.with_exchange(contoso_exchange),
            TenantSpec::healthy("fabrikam", "Fabrikam Inc", 120).without_permissions(&[
                "AuditLog.Read.All",
                "Sites.Read.All",
                "Reports.Read.All",
            ]),
            TenantSpec::healthy("northwind", "Northwind Traders", 80).without_service_principal(),
            TenantSpec::healthy("woodgrove", "Woodgrove Bank", 60).with_expired_secret(),
            TenantSpec::healthy("tailspin", "Tailspin Toys", 40)
                .with_directory_roles(&[])
                // Exchange.ManageAsApp without an Exchange-capable role: every cmdlet
                // answers 401 "User is not allowed to call …".
                .with_exchange_manage_as_app(),
            TenantSpec::healthy("litware", "Litware Inc", 50_000),
        ],
    }
}
