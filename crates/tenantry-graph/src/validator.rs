//! The credential validator (DESIGN §5): pre-flight checks on the pasted values, a token,
//! then everything else concurrently — organization, the app's own service principal (the
//! token's `oid`), the Microsoft Graph service principal, granted app roles, directory
//! roles (named from the activated roles) and the app's secret expiry — so a validation costs
//! two sequential round trips. The credential is a client secret or a certificate; a
//! certificate's expiry is its own notAfter, warned of as a secret's is, and its refusals
//! (not registered on the app, invalid signature, expired, assertion outside its validity)
//! are reasons of their own. The same validation runs in a customer tenant of a partner's
//! multi-tenant app (`crate::partner`), without the application object, which lives in the
//! partner tenant.
//! The required permissions are compared with the granted ones four ways, and each
//! capability is reported available or not, with the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tenantry_domain::capabilities::{self, Capability};
use tenantry_domain::permissions::{self, PermissionDiff};
use uuid::Uuid;

use crate::calls::{self, GraphFailure};
use crate::http_client::GraphHttp;
use crate::report::{CertificateExpiry, NamedRoleDiff, NamedRoles, SecretExpiry, ValidationReport};
use crate::token::{AssertionReason, TokenFailure, unverified_claims};
use tenantry_domain::{AppCredential, CertificateCredential};

/// Longest accepted secret; Entra's are 40 characters.
const MAX_SECRET_LEN: usize = 1024;
/// Secret expiry warnings start this many days ahead.
const EXPIRY_WARNING_DAYS: i64 = 30;
/// How long one validation may wait out Microsoft's `Retry-After` in all (counted from
/// its start): a second or two of throttling is absorbed inside the request, anything
/// longer is answered 503 with Microsoft's `Retry-After`.
pub const THROTTLE_BUDGET: Duration = Duration::from_secs(5);

/// Why the credentials themselves were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialReason {
    SecretInvalid,
    SecretExpired,
    SecretIdNotValue,
    AppNotFoundInTenant,
    TenantNotFound,
    /// AADSTS700027 "key not found": the certificate is not registered on the app.
    CertificateNotRegistered,
    /// AADSTS700027 otherwise: the assertion's signature does not verify with the
    /// certificate registered under its thumbprint.
    CertificateSignatureInvalid,
    /// The certificate is past its notAfter (seen before any call), or Entra says the
    /// registered one has expired.
    CertificateExpired,
    /// AADSTS700024: the assertion is expired or not yet valid (the service's clock).
    AssertionTimeInvalid,
    /// Another AADSTS refusal.
    Rejected,
}

impl CredentialReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialReason::SecretInvalid => "secret_invalid",
            CredentialReason::SecretExpired => "secret_expired",
            CredentialReason::SecretIdNotValue => "secret_id_not_value",
            CredentialReason::AppNotFoundInTenant => "app_not_found_in_tenant",
            CredentialReason::TenantNotFound => "tenant_not_found",
            CredentialReason::CertificateNotRegistered => "certificate_not_registered",
            CredentialReason::CertificateSignatureInvalid => "certificate_signature_invalid",
            CredentialReason::CertificateExpired => "certificate_expired",
            CredentialReason::AssertionTimeInvalid => "assertion_time_invalid",
            CredentialReason::Rejected => "rejected",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    #[error("invalid input")]
    Invalid(Vec<(&'static str, String)>),
    #[error("the credentials were refused ({})", reason.as_str())]
    InvalidCredentials {
        reason: CredentialReason,
        aadsts: Option<u32>,
    },
    #[error("the credentials belong to tenant {actual}, not {expected}")]
    TenantMismatch { expected: String, actual: String },
    /// No service principal yet: Entra refused the token (AADSTS7000229, never consented
    /// or not yet replicated; in a partner app's customer also AADSTS700016) or issued one
    /// whose principal Graph does not show yet.
    #[error("the app's service principal is not (yet) available in the tenant")]
    ServicePrincipalNotFound,
    #[error("{} permissions are missing", missing.len())]
    MissingPermissions {
        missing: Vec<String>,
        admin_consent_url: String,
        report: Box<ValidationReport>,
    },
    #[error("Microsoft is unavailable: {cause}")]
    UpstreamUnavailable {
        retry_after: Option<Duration>,
        cause: String,
    },
}

impl ValidationError {
    /// What the failure says about the credentials, for the organization's status
    /// (`OrganizationStatus::after_failed_validation`).
    pub fn failure(&self) -> tenantry_domain::ValidationFailure {
        use tenantry_domain::ValidationFailure;
        match self {
            ValidationError::UpstreamUnavailable { .. } => ValidationFailure::Outage,
            ValidationError::MissingPermissions { .. }
            | ValidationError::ServicePrincipalNotFound => ValidationFailure::ConsentPending,
            ValidationError::Invalid(_)
            | ValidationError::InvalidCredentials { .. }
            | ValidationError::TenantMismatch { .. } => ValidationFailure::Refused,
        }
    }
}

/// Pasted credentials after pre-flight: trimmed and shaped, not yet proven.
#[derive(Clone)]
pub struct Credentials {
    pub tenant: String,
    pub client_id: Uuid,
    pub credential: AppCredential,
}

/// The tenant and client id, checked; field problems otherwise.
fn preflight_ids(
    tenant: &str,
    client_id: &str,
    problems: &mut Vec<(&'static str, String)>,
) -> (String, Uuid) {
    let (tenant, client_id) = (tenant.trim(), client_id.trim());
    if !(Uuid::parse_str(tenant).is_ok() || is_domain(tenant)) {
        problems.push((
            "tenant_id",
            "must be the tenant's GUID or one of its verified domains".to_owned(),
        ));
    }
    let parsed_client = Uuid::parse_str(client_id).ok();
    if parsed_client.is_none() {
        problems.push((
            "client_id",
            "must be the app registration's Application (client) ID, a GUID".to_owned(),
        ));
    }
    (
        tenant.to_ascii_lowercase(),
        parsed_client.unwrap_or_default(),
    )
}

impl Credentials {
    /// Checks a tenant, a client id and a certificate (already read by
    /// [`crate::certificate`]) before any network call: a certificate past its notAfter is
    /// refused here, without asking Microsoft.
    pub fn with_certificate(
        tenant: &str,
        client_id: &str,
        certificate: CertificateCredential,
    ) -> Result<Self, ValidationError> {
        let mut problems = Vec::new();
        let (tenant, client_id) = preflight_ids(tenant, client_id, &mut problems);
        if !problems.is_empty() {
            return Err(ValidationError::Invalid(problems));
        }
        if certificate.not_after <= Utc::now() {
            return Err(ValidationError::InvalidCredentials {
                reason: CredentialReason::CertificateExpired,
                aadsts: None,
            });
        }
        Ok(Self {
            tenant,
            client_id,
            credential: AppCredential::Certificate(certificate),
        })
    }

    /// A stored credential of either kind, checked as when it was given.
    pub fn stored(
        tenant: &str,
        client_id: &str,
        credential: &AppCredential,
    ) -> Result<Self, ValidationError> {
        match credential {
            AppCredential::Secret(secret) => {
                Self::preflight(tenant, client_id, secret.expose_secret())
            }
            AppCredential::Certificate(certificate) => {
                Self::with_certificate(tenant, client_id, certificate.clone())
            }
        }
    }

    /// Checks the pasted values (a client secret) before any network call.
    pub fn preflight(
        tenant: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Self, ValidationError> {
        let secret = client_secret.trim();
        let mut problems = Vec::new();
        let (tenant, client_id) = preflight_ids(tenant, client_id, &mut problems);
        if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
            problems.push((
                "client_secret",
                format!("must be 1–{MAX_SECRET_LEN} characters"),
            ));
        }
        if !problems.is_empty() {
            return Err(ValidationError::Invalid(problems));
        }
        // A GUID is the Secret ID column of "Certificates & secrets", not the Value.
        if Uuid::parse_str(secret).is_ok() {
            return Err(ValidationError::InvalidCredentials {
                reason: CredentialReason::SecretIdNotValue,
                aadsts: None,
            });
        }
        Ok(Self {
            tenant,
            client_id,
            credential: AppCredential::Secret(SecretString::from(secret.to_owned())),
        })
    }
}

fn is_domain(value: &str) -> bool {
    let labels: Vec<&str> = value.split('.').collect();
    value.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[derive(Clone)]
pub struct Validator {
    http: GraphHttp,
}

impl Validator {
    pub fn new(http: GraphHttp) -> Self {
        Self { http }
    }

    /// The HTTP client it uses, for other Graph calls on the same configuration.
    pub fn http(&self) -> &GraphHttp {
        &self.http
    }

    /// Proves the credentials and reports what they allow. `capabilities` narrows the
    /// required permissions (`None`: the default set).
    pub async fn validate(
        &self,
        credentials: &Credentials,
        capabilities: Option<&[Capability]>,
    ) -> Result<ValidationReport, ValidationError> {
        self.validate_in(credentials, capabilities, Tenancy::Home)
            .await
    }

    /// A fresh token for the credentials (a cached one would hide a secret revoked since),
    /// its claims and its tenant (`tid`), checked against the tenant asked for.
    pub(crate) async fn prove(
        &self,
        credentials: &Credentials,
        tenancy: Tenancy,
    ) -> Result<Proof, ValidationError> {
        let client = credentials.client_id.to_string();
        let (token, _) = crate::token::request_token(
            &self.http,
            &credentials.tenant,
            &client,
            &credentials.credential,
        )
        .await
        .map_err(|failure| from_token_failure(failure, tenancy))?;
        let claims = unverified_claims(token.expose_secret()).unwrap_or(Value::Null);
        let Some(tenant) = claims["tid"].as_str().and_then(|t| Uuid::parse_str(t).ok()) else {
            return Err(ValidationError::UpstreamUnavailable {
                retry_after: None,
                cause: "token without tid".into(),
            });
        };
        if let Ok(expected) = Uuid::parse_str(&credentials.tenant)
            && expected != tenant
        {
            return Err(ValidationError::TenantMismatch {
                expected: expected.to_string(),
                actual: tenant.to_string(),
            });
        }
        Ok(Proof {
            token,
            claims,
            tenant,
        })
    }

    /// [`Validator::validate`], in the app's own tenant or in a customer of a partner app
    /// (where the app's `/applications` entry does not exist, so the credential's expiry is
    /// not read or reported: it is the partner's, see [`Validator::check_partner`]).
    pub(crate) async fn validate_in(
        &self,
        credentials: &Credentials,
        capabilities: Option<&[Capability]>,
        tenancy: Tenancy,
    ) -> Result<ValidationReport, ValidationError> {
        let deadline = tokio::time::Instant::now() + THROTTLE_BUDGET;
        let client = credentials.client_id.to_string();
        let Proof {
            token,
            claims,
            tenant: token_tenant,
        } = self.prove(credentials, tenancy).await?;
        let Some(sp_id) = claims["oid"].as_str().and_then(|t| Uuid::parse_str(t).ok()) else {
            return Err(ValidationError::UpstreamUnavailable {
                retry_after: None,
                cause: "token without oid".into(),
            });
        };

        let http = &self.http;
        let own_sp_path = format!("/servicePrincipals/{sp_id}?$select=id,appId,displayName");
        let graph_sp_path = format!(
            "/servicePrincipals(appId='{}')?$select=id",
            permissions::GRAPH_APP_ID
        );
        let assignments_path = format!("/servicePrincipals/{sp_id}/appRoleAssignments?$top=999");
        let roles_path =
            format!("/roleManagement/directory/roleAssignments?$filter=principalId eq '{sp_id}'");
        let application_path =
            format!("/applications(appId='{client}')?$select=id,appId,passwordCredentials");
        // Each read waits out a short `Retry-After` on its own, within the shared budget.
        let (
            organization,
            own_sp,
            graph_sp,
            assignments,
            role_assignments,
            application,
            activated_roles,
        ) = tokio::join!(
            calls::patiently(deadline, || calls::get(
                http,
                &token,
                "/organization?$select=id,displayName,verifiedDomains"
            )),
            calls::patiently(deadline, || calls::get(http, &token, &own_sp_path)),
            calls::patiently(deadline, || calls::get(http, &token, &graph_sp_path)),
            calls::patiently(deadline, || calls::get_all(http, &token, &assignments_path)),
            calls::patiently(deadline, || calls::get_all(http, &token, &roles_path)),
            // Only a secret's expiry is read from Entra; a certificate's is its own. In a
            // customer the application object does not exist (it answers 404).
            async {
                match (&credentials.credential, tenancy) {
                    (AppCredential::Secret(_), Tenancy::Home) => Some(
                        calls::patiently(deadline, || calls::get(http, &token, &application_path))
                            .await,
                    ),
                    _ => None,
                }
            },
            // Only for the roles' display names (graph-facts §9: activated roles, with
            // `displayName` and `roleTemplateId`).
            calls::patiently(deadline, || calls::get_all(http, &token, "/directoryRoles")),
        );
        let outcomes: [Option<&GraphFailure>; 7] = [
            organization.as_ref().err(),
            own_sp.as_ref().err(),
            graph_sp.as_ref().err(),
            assignments.as_ref().err(),
            role_assignments.as_ref().err(),
            application.as_ref().and_then(|read| read.as_ref().err()),
            activated_roles.as_ref().err(),
        ];
        if let Some(outage) = outages(&outcomes) {
            return Err(outage);
        }
        let mut warnings = Vec::new();

        let (display_name, verified_domains) = match &organization {
            Ok(body) => {
                let org = &body["value"][0];
                // An answer without an organization id is a broken answer, not a mismatch.
                let Some(id) = org["id"].as_str().and_then(|t| Uuid::parse_str(t).ok()) else {
                    return Err(ValidationError::UpstreamUnavailable {
                        retry_after: None,
                        cause: "/organization answered without an id".into(),
                    });
                };
                if id != token_tenant {
                    return Err(ValidationError::TenantMismatch {
                        expected: token_tenant.to_string(),
                        actual: id.to_string(),
                    });
                }
                let domains = org["verifiedDomains"]
                    .as_array()
                    .map(|d| {
                        d.iter()
                            .filter_map(|d| d["name"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                (org["displayName"].as_str().map(str::to_owned), domains)
            }
            Err(_) => {
                warnings.push("The organization could not be read (Organization.Read.All is not granted); the tenant was identified from the token.".to_owned());
                (None, Vec::new())
            }
        };
        match &own_sp {
            Ok(sp)
                if sp["appId"]
                    .as_str()
                    .is_some_and(|a| a.eq_ignore_ascii_case(&client)) => {}
            Ok(_) => return Err(ValidationError::ServicePrincipalNotFound),
            // The token named this principal, so a 404 is replication lag after consent,
            // not absence, and never a verdict on the credentials; but Microsoft did
            // answer, so it is no outage either. It is the "not there yet" of AADSTS7000229:
            // the organization needs attention and re-validation checks again on its
            // schedule until Graph shows the principal.
            Err(GraphFailure::NotFound) => return Err(ValidationError::ServicePrincipalNotFound),
            Err(_) => warnings.push("The app's service principal could not be read.".to_owned()),
        }

        let granted: BTreeSet<String> = match &assignments {
            Ok(rows) => {
                let graph_id = graph_sp
                    .as_ref()
                    .ok()
                    .and_then(|sp| sp["id"].as_str().map(str::to_owned));
                rows.iter()
                    .filter(|row| {
                        graph_id
                            .as_deref()
                            .is_none_or(|g| row["resourceId"].as_str() == Some(g))
                    })
                    .filter_map(|row| {
                        row["appRoleId"]
                            .as_str()
                            .and_then(|id| Uuid::parse_str(id).ok())
                    })
                    .filter_map(permissions::permission_of)
                    .map(str::to_owned)
                    // Exchange Online's one app role (graph-facts-next §2.1) is granted on
                    // its own resource; its id is that role's everywhere, so it is named
                    // without reading the Exchange principal.
                    .chain(
                        rows.iter()
                            .any(|row| {
                                row["appRoleId"].as_str().is_some_and(|id| {
                                    id.eq_ignore_ascii_case(capabilities::EXCHANGE_MANAGE_AS_APP_ID)
                                })
                            })
                            .then(|| capabilities::EXCHANGE_MANAGE_AS_APP.to_owned()),
                    )
                    .collect()
            }
            Err(_) => {
                warnings.push("Granted permissions could not be listed (Application.Read.All is not granted); they were read from the token instead.".to_owned());
                claims["roles"]
                    .as_array()
                    .map(|r| {
                        r.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            }
        };
        let directory_roles: BTreeSet<String> = match &role_assignments {
            Ok(rows) => rows
                .iter()
                .filter_map(|r| r["roleDefinitionId"].as_str().map(str::to_ascii_lowercase))
                .collect(),
            Err(_) => {
                warnings.push("Directory roles could not be read (RoleManagement.Read.Directory is not granted); actions that need a role are reported unavailable.".to_owned());
                BTreeSet::new()
            }
        };
        // A role Graph cannot name here is named from the built-in roles reference.
        let role_names: BTreeMap<String, String> = activated_roles
            .iter()
            .flatten()
            .filter_map(|role| {
                Some((
                    role["roleTemplateId"].as_str()?.to_ascii_lowercase(),
                    role["displayName"].as_str()?.to_owned(),
                ))
            })
            .collect();
        let (secret, certificate) = match (&credentials.credential, &application) {
            // The partner's credential: its expiry is the partner check's business, not
            // each customer's.
            _ if tenancy == Tenancy::Customer => (None, None),
            (AppCredential::Secret(secret), Some(Ok(app))) => (
                Some(secret_expiry(app, secret.expose_secret(), &mut warnings)),
                None,
            ),
            (AppCredential::Secret(_), _) => {
                warnings.push("The client secret's expiry could not be read.".to_owned());
                (None, None)
            }
            // A certificate's expiry is its own; Entra's copy of it is not read.
            (AppCredential::Certificate(certificate), _) => {
                (None, Some(certificate_expiry(certificate, &mut warnings)))
            }
        };

        let required = capabilities::required_permissions(capabilities);
        // Exchange's app role is compared only when Exchange is asked for: it is not a
        // Graph permission, so it is neither "extra" Graph privilege nor in Dex's set.
        let compared: BTreeSet<String> = if required.contains(capabilities::EXCHANGE_MANAGE_AS_APP)
        {
            granted.clone()
        } else {
            granted
                .iter()
                .filter(|p| p.as_str() != capabilities::EXCHANGE_MANAGE_AS_APP)
                .cloned()
                .collect()
        };
        let diff = PermissionDiff::compute(&required, &compared);
        let mut capability_statuses: Vec<_> = Capability::ALL
            .iter()
            .map(|c| capabilities::evaluate(*c, &granted, &directory_roles))
            .collect();
        if let Some(exchange) = capability_statuses
            .iter_mut()
            .find(|c| c.capability == Capability::Exchange && c.available)
        {
            let check = self
                .probe_exchange(credentials, token_tenant, &mut warnings)
                .await;
            exchange.available = check != capabilities::LiveCheck::Propagating;
            exchange.live_check = Some(check);
        }
        let report = ValidationReport {
            tenant_id: token_tenant,
            tenant_display_name: display_name,
            verified_domains,
            service_principal_id: sp_id,
            permissions: diff,
            directory_role_status: NamedRoleDiff::new(
                &capabilities::role_diff(capabilities, &directory_roles),
                &role_names,
            ),
            directory_roles: NamedRoles::new(&directory_roles, &role_names),
            capabilities: capability_statuses,
            secret,
            certificate,
            warnings,
            checked_at: Utc::now(),
        };
        if !report.permissions.missing.is_empty() {
            return Err(ValidationError::MissingPermissions {
                missing: report.permissions.missing.iter().cloned().collect(),
                admin_consent_url: format!(
                    "{}/{token_tenant}/adminconsent?client_id={client}",
                    self.http.config().authority_url
                ),
                report: Box::new(report),
            });
        }
        Ok(report)
    }
}

impl Validator {
    /// Whether Exchange honours what Graph shows granted: `Get-OrganizationConfig`, the
    /// cheapest cmdlet every Exchange role may call, with a fresh Exchange token. A 401
    /// (or a token Entra will not issue for Exchange yet) means the assignments have not
    /// reached Exchange: propagating. An outage decides nothing.
    async fn probe_exchange(
        &self,
        credentials: &Credentials,
        tenant: Uuid,
        warnings: &mut Vec<String>,
    ) -> capabilities::LiveCheck {
        use crate::exchange::{Cmdlet, Exchange, ExchangeFailure};
        use capabilities::LiveCheck;
        let token = match crate::token::request_token_for(
            &self.http,
            &credentials.tenant,
            &credentials.client_id.to_string(),
            &credentials.credential,
            crate::token::EXCHANGE_SCOPE,
        )
        .await
        {
            Ok((token, _)) => token,
            Err(crate::TokenFailure::Unavailable(_)) => {
                warnings.push("Exchange Online: Entra did not answer for an Exchange token, so Exchange was not checked live.".into());
                return LiveCheck::Unknown;
            }
            Err(_) => {
                warnings.push(PROPAGATING.into());
                return LiveCheck::Propagating;
            }
        };
        match Exchange::new(&self.http, &token, tenant)
            .run(&Cmdlet::new(
                "Get-OrganizationConfig",
                serde_json::json!({}),
            ))
            .await
        {
            Ok(_) => LiveCheck::Working,
            Err(ExchangeFailure::NotAllowed { .. }) => {
                warnings.push(PROPAGATING.into());
                LiveCheck::Propagating
            }
            Err(failure) => {
                warnings.push(format!(
                    "Exchange Online could not be checked live ({failure}); the grants alone say it is available."
                ));
                LiveCheck::Unknown
            }
        }
    }
}

/// The warning of a granted Exchange capability Exchange does not honour yet.
const PROPAGATING: &str = "Exchange Online: Exchange.ManageAsApp and an Exchange role are granted, but Exchange still refuses the app (Get-OrganizationConfig answered 401). Assignments take a while to reach Exchange (up to an hour is commonly reported; UNVERIFIED); Tenantry checks again at 1, 5, 15, 30, 60 and 120 minutes.";

/// Where a validation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tenancy {
    /// The tenant the app is registered in.
    Home,
    /// A customer tenant of a partner's multi-tenant app: only its service principal is
    /// there.
    Customer,
}

/// A token just issued for the credentials.
pub(crate) struct Proof {
    pub(crate) token: SecretString,
    pub(crate) claims: Value,
    /// The token's `tid`.
    pub(crate) tenant: Uuid,
}

fn from_token_failure(failure: TokenFailure, tenancy: Tenancy) -> ValidationError {
    match failure {
        TokenFailure::Unavailable(cause) => ValidationError::UpstreamUnavailable {
            retry_after: None,
            cause,
        },
        TokenFailure::Unusable(cause) => {
            ValidationError::Invalid(vec![("certificate", format!("cannot be used: {cause}"))])
        }
        TokenFailure::Refused { code, reason, .. } => {
            let reason = match (code, reason) {
                (_, Some(AssertionReason::KeyNotFound)) => {
                    CredentialReason::CertificateNotRegistered
                }
                (_, Some(AssertionReason::KeyExpired)) => CredentialReason::CertificateExpired,
                (_, Some(AssertionReason::SignatureInvalid)) => {
                    CredentialReason::CertificateSignatureInvalid
                }
                (700024, _) => CredentialReason::AssertionTimeInvalid,
                (7000215, _) => CredentialReason::SecretInvalid,
                (7000222, _) => CredentialReason::SecretExpired,
                // For a multi-tenant app in a customer, "not found in the directory" means
                // not consented there, like 7000229 (graph-facts-next §1.3).
                (700016, _) if tenancy == Tenancy::Customer => {
                    return ValidationError::ServicePrincipalNotFound;
                }
                (700016, _) => CredentialReason::AppNotFoundInTenant,
                (90002 | 900023, _) => CredentialReason::TenantNotFound,
                (7000229, _) => return ValidationError::ServicePrincipalNotFound,
                _ => CredentialReason::Rejected,
            };
            ValidationError::InvalidCredentials {
                reason,
                aadsts: Some(code),
            }
        }
    }
}

/// The first outage among the concurrent calls, with the longest `Retry-After` seen.
fn outages(outcomes: &[Option<&GraphFailure>]) -> Option<ValidationError> {
    let failures: Vec<&GraphFailure> = outcomes
        .iter()
        .flatten()
        .copied()
        .filter(|f| f.is_outage())
        .collect();
    let first = failures.first()?;
    let retry_after = failures
        .iter()
        .filter_map(|f| match f {
            GraphFailure::Throttled { retry_after } => *retry_after,
            _ => None,
        })
        .max();
    Some(ValidationError::UpstreamUnavailable {
        retry_after,
        cause: first.to_string(),
    })
}

/// The certificate in use, described from the certificate itself (its notAfter), with the
/// same warning threshold as a secret's.
pub fn certificate_expiry(
    certificate: &CertificateCredential,
    warnings: &mut Vec<String>,
) -> CertificateExpiry {
    let days_left = (certificate.not_after - Utc::now()).num_days();
    if days_left <= EXPIRY_WARNING_DAYS {
        warnings.push(format!("The certificate expires in {days_left} days; generate or upload a new certificate, register it on the app in Entra and replace it here."));
    }
    CertificateExpiry {
        thumbprint_s256: certificate.thumbprint_s256.clone(),
        not_before: certificate.not_before,
        expires_at: certificate.not_after,
        days_left,
    }
}

/// Finds the secret in use among the app's password credentials by its hint (its first
/// three characters; UNVERIFIED that hints are always three characters).
pub fn secret_expiry(app: &Value, secret: &str, warnings: &mut Vec<String>) -> SecretExpiry {
    let prefix: String = secret.chars().take(3).collect();
    let credentials = app["passwordCredentials"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let matching: Vec<&Value> = credentials
        .iter()
        .filter(|c| c["hint"].as_str() == Some(prefix.as_str()))
        .collect();
    // Only Entra's own description of a unique match is reported: nothing derived from the
    // pasted secret itself is kept, and two secrets with one hint tell nothing apart.
    let [credential] = matching.as_slice() else {
        warnings.push("The secret in use could not be told apart among the app's client secrets; its expiry is unknown.".to_owned());
        return SecretExpiry {
            key_id: None,
            hint: None,
            expires_at: None,
            days_left: None,
        };
    };
    let expires_at = credential["endDateTime"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let days_left = expires_at.map(|t| (t - Utc::now()).num_days());
    if let Some(days) = days_left.filter(|d| *d <= EXPIRY_WARNING_DAYS) {
        warnings.push(format!("The client secret expires in {days} days; add a new secret in Entra and update it here."));
    }
    SecretExpiry {
        key_id: credential["keyId"].as_str().map(str::to_owned),
        hint: credential["hint"].as_str().map(str::to_owned),
        expires_at,
        days_left,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preflight_trims_and_catches_the_secret_id() {
        let ok = Credentials::preflight(
            " contoso.onmicrosoft.com ",
            " 8962d11c-c54a-4cd2-8d5a-8a20e69df16d\n",
            " abc8Q~x ",
        )
        .expect("valid");
        assert_eq!(ok.tenant, "contoso.onmicrosoft.com");
        assert!(
            matches!(&ok.credential, AppCredential::Secret(s) if s.expose_secret() == "abc8Q~x")
        );
        let secret_id = Credentials::preflight(
            "b3918e60-3cab-40d7-885a-9b8ccc8dfba0",
            "8962d11c-c54a-4cd2-8d5a-8a20e69df16d",
            "f0b0b335-1d71-4883-8f98-567911bfdca6",
        );
        assert!(matches!(
            secret_id,
            Err(ValidationError::InvalidCredentials {
                reason: CredentialReason::SecretIdNotValue,
                ..
            })
        ));
        match Credentials::preflight("not a tenant", "nope", "") {
            Err(ValidationError::Invalid(problems)) => {
                let fields: Vec<&str> = problems.iter().map(|(f, _)| *f).collect();
                assert_eq!(fields, ["tenant_id", "client_id", "client_secret"]);
            }
            _ => panic!("three field errors"),
        }
        assert!(
            Credentials::preflight(
                "a.b",
                "8962d11c-c54a-4cd2-8d5a-8a20e69df16d",
                &"x".repeat(1025)
            )
            .is_err()
        );
    }
}
