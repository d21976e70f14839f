//! `/api/v1/organizations`: connecting a customer's Microsoft 365 tenant (validate the
//! pasted credentials, a client secret or a certificate, then store them sealed), listing,
//! renaming, removing (which destroys the organization's data key), re-validating, rotating
//! the credential (secret or certificate, either way round) without a window in which no
//! working credential is stored, and the public certificate of a certificate credential as
//! a `.cer` download.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tenantry_domain::capabilities::Capability;
use tenantry_domain::{DisplayName, ErrorCode, OrganizationId, OrganizationStatus};
use tenantry_graph::{Credentials, ValidationError, ValidationReport};
use tenantry_store::{NewOrganization, OrganizationRecord};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::AppState;
use crate::caller::Caller;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::pagination::{PageQuery, Paginated};
use crate::problem::{ApiError, FieldError, Problem};
use crate::routes::credential_input::{self, CertificateInput};

const PROBLEM: &str = "application/problem+json";

/// What an MSP pastes from the customer's app registration.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    /// The customer's name in Tenantry (1–100 characters).
    pub name: String,
    /// Only `microsoft365`.
    pub provider: String,
    /// Directory (tenant) ID, or one of the tenant's verified domains.
    pub tenant_id: String,
    /// Application (client) ID of the app registration.
    pub client_id: String,
    /// The client secret's **Value** (not its Secret ID). Never returned. Send this or
    /// `certificate`.
    pub client_secret: Option<String>,
    /// A certificate credential instead of a secret.
    pub certificate: Option<CertificateInput>,
    /// Narrow the required permissions to these capabilities (default: the full set).
    pub capabilities: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    pub name: Option<String>,
    /// Discovery schedule as a 5-field cron expression in UTC (e.g. `"30 2 * * *"`);
    /// `null` restores the default (every 24 hours with jitter).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub scan_schedule: Option<Option<String>>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceCredentials {
    /// The app's client id (unchanged or a new app registration in the same tenant).
    pub client_id: String,
    /// The new secret's Value. Send this or `certificate`.
    pub client_secret: Option<String>,
    /// A certificate credential instead (a secret can be replaced by a certificate and
    /// the other way round).
    pub certificate: Option<CertificateInput>,
}

#[derive(Serialize, ToSchema)]
pub struct OrganizationView {
    pub id: Uuid,
    pub name: String,
    pub provider: String,
    pub tenant_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    /// `connected`, `needs_attention`, `credentials_invalid` or `secret_expiring`.
    pub status: String,
    pub validated_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Cron expression of the discovery schedule; `null`: every 24 hours with jitter.
    pub scan_schedule: Option<String>,
    pub next_scan_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Expiry of the credential in use (the client secret, as last discovered, or the
    /// certificate's notAfter).
    pub secret_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `secret` or `certificate`.
    pub credential_type: Option<String>,
    /// The certificate's SHA-256 thumbprint (base64url, the assertions' `x5t#S256`), for
    /// certificate credentials.
    pub certificate_thumbprint: Option<String>,
    /// `own` (the organization's own app registration) or `partner` (a partner
    /// connection's multi-tenant app; `partner_connection_id` names it); `null` without
    /// a credential.
    pub credential_source: Option<String>,
    pub partner_connection_id: Option<Uuid>,
    /// Why the status is what it is, when something outside a validation set it (consent
    /// revoked, the partner connection deleted, the GDAP relationship ended).
    pub status_reason: Option<String>,
    /// What the last scan found that a technician should look at (shown by
    /// `GET /api/v1/organizations/{id}`; absent from lists and when there is none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<OrganizationWarning>,
}

/// A finding of the last scan that needs a person, with a stable `code`.
#[derive(Serialize, ToSchema)]
pub struct OrganizationWarning {
    /// `OUTSIDE_FORWARDING`: mailboxes forwarding mail outside the organization.
    pub code: &'static str,
    pub detail: String,
    /// The mailboxes concerned (primary addresses), at most 100.
    pub mailboxes: Vec<String>,
}

impl From<OrganizationRecord> for OrganizationView {
    fn from(o: OrganizationRecord) -> Self {
        Self {
            id: o.id.as_uuid(),
            name: o.name,
            provider: o.provider,
            tenant_id: o.tenant_id,
            client_id: o.client_id,
            status: o.status,
            validated_at: o.validated_at,
            created_at: o.created_at,
            scan_schedule: o.scan_schedule,
            next_scan_at: o.next_scan_at,
            secret_expires_at: o.secret_expires_at,
            credential_source: match (&o.partner_connection_id, &o.credential_type) {
                (Some(_), _) => Some("partner".to_owned()),
                (None, Some(_)) => Some("own".to_owned()),
                (None, None) => None,
            },
            credential_type: o.credential_type,
            certificate_thumbprint: o.certificate_thumbprint,
            partner_connection_id: o.partner_connection_id,
            status_reason: o.status_reason,
            warnings: Vec::new(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ConnectedOrganization {
    pub organization: OrganizationView,
    /// The first discovery run, queued with the organization.
    pub discovery_run_id: Uuid,
    /// The validation report: permissions, directory roles, capabilities, secret expiry.
    #[schema(value_type = crate::schemas::ValidationReport)]
    pub validation: Value,
}

fn report_json(report: &ValidationReport) -> Result<Value, ApiError> {
    serde_json::to_value(report).map_err(ApiError::internal)
}

fn described(code: ErrorCode, status: StatusCode, detail: &str) -> Problem {
    Problem::new(code, status, detail)
}

/// Maps a validation outcome to the problem an MSP technician can act on.
pub(crate) fn validation_problem(error: ValidationError) -> ApiError {
    let (problem, retry_after_secs) = match error {
        ValidationError::Invalid(problems) => {
            return ApiError::validation(problems.into_iter().map(|(f, m)| FieldError::new(f, m)).collect());
        }
        ValidationError::InvalidCredentials { reason, aadsts } => {
            use tenantry_graph::CredentialReason as R;
            let detail = match reason {
                R::SecretInvalid => "The client secret is wrong. In Entra: App registrations → your app → Certificates & secrets; copy the secret's Value (shown only when it is created) or create a new secret.",
                R::SecretExpired => "The client secret has expired. In Entra: App registrations → your app → Certificates & secrets → New client secret, then paste its Value.",
                R::SecretIdNotValue => "This is the secret's Secret ID, not its Value. In Entra: Certificates & secrets shows both; the Value is shown only right after the secret is created — create a new secret if you did not copy it.",
                R::AppNotFoundInTenant => "No app with this client id exists in this tenant. Check the Application (client) ID on the app's Overview page, and that the tenant id is the customer's.",
                R::TenantNotFound => "No tenant with this id or domain exists. Copy the Directory (tenant) ID from the app's Overview page in Entra.",
                R::CertificateNotRegistered => "The certificate is not registered on this app. In Entra: App registrations → your app → Certificates & secrets → Certificates → Upload certificate, and upload this certificate (the .cer download, or its PEM); then try again.",
                R::CertificateSignatureInvalid => "Entra could not verify the assertion's signature with the certificate registered under this thumbprint: the private key is not the certificate's. Upload the matching key and certificate, or generate a new pair and register its certificate in Entra.",
                R::CertificateExpired => "The certificate has expired (its notAfter has passed, or Entra's copy of it has ended). Generate or upload a new certificate, register it on the app in Entra (Certificates & secrets → Upload certificate) and replace the organization's credential with it.",
                R::AssertionTimeInvalid => "Entra found the client assertion expired or not yet valid: the clocks of Tenantry's server and Microsoft differ by more than a few minutes. Check the server's time synchronisation (NTP), then try again.",
                R::Rejected => "Microsoft refused the credentials. Check the tenant id, client id and secret or certificate in Entra.",
            };
            let mut p = described(ErrorCode::InvalidCredentials, StatusCode::UNPROCESSABLE_ENTITY, detail).with("reason", json!(reason.as_str()));
            if let Some(code) = aadsts {
                p = p.with("aadsts_code", json!(code));
            }
            (p, None)
        }
        ValidationError::TenantMismatch { expected, actual } => (
            described(ErrorCode::TenantMismatch, StatusCode::UNPROCESSABLE_ENTITY, "The credentials work, but for another tenant than the one given. Check the Directory (tenant) ID.")
                .with("expected_tenant_id", json!(expected))
                .with("actual_tenant_id", json!(actual)),
            None,
        ),
        ValidationError::ServicePrincipalNotFound => (
            described(ErrorCode::ServicePrincipalNotFound, StatusCode::UNPROCESSABLE_ENTITY, "Microsoft does not show the app's enterprise application (service principal) in this tenant yet. If admin consent was not granted: in Entra, App registrations → your app → API permissions → Grant admin consent; that creates it. If it was granted just now, it takes a few minutes to reach every Microsoft replica: try again shortly (a connected organization is checked again automatically)."),
            None,
        ),
        ValidationError::MissingPermissions { missing, admin_consent_url, report } => {
            let detail = format!(
                "{} application permission(s) still need admin consent. In Entra: API permissions → Add a permission → Microsoft Graph → Application permissions, add them, then Grant admin consent (or open admin_consent_url).",
                missing.len()
            );
            (
                described(ErrorCode::MissingPermissions, StatusCode::UNPROCESSABLE_ENTITY, &detail)
                    .with("missing_permissions", json!(missing))
                    .with("admin_consent_url", json!(admin_consent_url))
                    .with("validation", serde_json::to_value(*report).unwrap_or(Value::Null)),
                None,
            )
        }
        ValidationError::UpstreamUnavailable { retry_after, cause } => {
            tracing::warn!(%cause, "Microsoft unavailable during validation");
            let secs = retry_after.map_or(30, |d| d.as_secs().max(1));
            (
                described(ErrorCode::UpstreamUnavailable, StatusCode::SERVICE_UNAVAILABLE, "Microsoft did not answer in time, failed or throttled the request. Nothing was changed; retry after the Retry-After delay."),
                Some(secs),
            )
        }
    };
    ApiError::Described {
        problem: Box::new(problem),
        retry_after_secs,
    }
}

pub(crate) fn parse_capabilities(
    raw: Option<Vec<String>>,
) -> Result<Option<Vec<Capability>>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.len() > Capability::ALL.len() {
        return Err(ApiError::validation(vec![FieldError::new(
            "capabilities",
            format!("may list at most {} capabilities", Capability::ALL.len()),
        )]));
    }
    let mut parsed = Vec::with_capacity(raw.len());
    for name in &raw {
        parsed.push(name.parse::<Capability>().map_err(|e| {
            ApiError::validation(vec![FieldError::new("capabilities", e.to_string())])
        })?);
    }
    Ok(Some(parsed))
}

/// Connect a customer's Microsoft 365 tenant (owner or admin).
#[utoipa::path(post, path = "/api/v1/organizations", tag = "organizations", security(("api_key" = [])),
    request_body = CreateOrganization,
    responses(
        (status = 201, description = "Connected; the validation report is included", body = ConnectedOrganization),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Role too low", body = Problem, content_type = PROBLEM),
        (status = 409, description = "TENANT_ALREADY_BOUND", body = Problem, content_type = PROBLEM),
        (status = 422, description = "INVALID_REQUEST, CREDENTIAL_AMBIGUOUS, CREDENTIAL_MISSING, CERTIFICATE_MALFORMED, CERTIFICATE_KEY_MISMATCH, CERTIFICATE_EXPIRED, CERTIFICATE_NOT_YET_VALID, CERTIFICATE_TOO_LARGE, INVALID_CREDENTIALS, TENANT_MISMATCH, SERVICE_PRINCIPAL_NOT_FOUND or MISSING_PERMISSIONS", body = Problem, content_type = PROBLEM),
        (status = 503, description = "UPSTREAM_UNAVAILABLE (see Retry-After)", body = Problem, content_type = PROBLEM),
    ))]
pub async fn create_organization(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateOrganization>,
) -> Result<(StatusCode, Json<ConnectedOrganization>), ApiError> {
    let mut errors = Vec::new();
    let name = DisplayName::parse(&body.name)
        .map_err(|e| errors.push(FieldError::new("name", e.to_string())))
        .ok();
    if body.provider != "microsoft365" {
        errors.push(FieldError::new("provider", "must be microsoft365"));
    }
    let capabilities = parse_capabilities(body.capabilities)?;
    let scope = caller.scope();
    // Refused before Microsoft is called, or a generated key opened, on the caller's behalf.
    scope.may_manage_organizations()?;
    let given = credential_input::read(
        &scope,
        &body.tenant_id,
        &body.client_id,
        body.client_secret.as_deref(),
        body.certificate,
        &mut errors,
    )
    .await?;
    let (Some(name), Some(given)) = (name, given) else {
        return Err(ApiError::validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let credentials = given.credentials;
    let validated = state
        .validator
        .validate(&credentials, capabilities.as_deref())
        .await;
    // Whether a tenant is connected (by anyone) is said only to credentials that proved
    // control of it: Entra issued them a token for it. Said earlier, made-up credentials
    // would learn which tenants some MSP manages.
    let proven_tenant = match &validated {
        Ok(report) => Some(report.tenant_id),
        Err(ValidationError::MissingPermissions { report, .. }) => Some(report.tenant_id),
        Err(_) => None,
    };
    if let Some(tenant) = proven_tenant
        && scope.tenant_bound(tenant).await?
    {
        return Err(tenantry_store::StoreError::TenantAlreadyBound.into());
    }
    let report = validated.map_err(validation_problem)?;
    let report_value = report_json(&report)?;
    let (record, run) = scope
        .create_organization(NewOrganization {
            name,
            tenant_id: report.tenant_id,
            client_id: credentials.client_id,
            credential: credentials.credential.clone(),
            generated_certificate: given.generated,
            status: report.status().as_str().to_owned(),
            report: report_value.clone(),
        })
        .await?;
    // Granted but not yet honoured (Exchange's live check): checked again on the
    // backoff schedule without anyone asking.
    if report.propagating() {
        scope.schedule_revalidation(record.id).await?;
    }
    tracing::info!(organization_id = %record.id, tenant_id = %report.tenant_id,
        credential = credentials.credential.kind().as_str(), "tenant connected");
    Ok((
        StatusCode::CREATED,
        Json(ConnectedOrganization {
            organization: record.into(),
            discovery_run_id: run.as_uuid(),
            validation: report_value,
        }),
    ))
}

/// The MSP's organizations (those the key may see).
#[utoipa::path(get, path = "/api/v1/organizations", tag = "organizations", security(("api_key" = [])), params(PageQuery),
    responses((status = 200, description = "A page of organizations", body = Paginated<OrganizationView>),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = PROBLEM)))]
pub async fn list_organizations(
    caller: Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paginated<OrganizationView>>, ApiError> {
    let page = query.to_page()?;
    let rows = caller.scope().list_organizations(page).await?;
    Ok(Json(Paginated::from_rows(
        rows,
        page,
        |o| o.id.as_uuid(),
        OrganizationView::from,
    )))
}

/// One organization.
#[utoipa::path(get, path = "/api/v1/organizations/{id}", tag = "organizations", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id")),
    responses((status = 200, description = "The organization", body = OrganizationView),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM)))]
pub async fn get_organization(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
) -> Result<Json<OrganizationView>, ApiError> {
    let scope = caller.scope();
    let mut view: OrganizationView = scope.organization(id).await?.into();
    // Forwarding outside the organization is a classic sign of a compromised mailbox
    // (docs/exchange.md): the organization says so, not only its mailbox list.
    let filter = tenantry_store::inventory::MailboxFilter {
        forwarding_outside: true,
        ..Default::default()
    };
    let page = tenantry_store::Page {
        limit: 100,
        after: None,
    };
    let forwarding = scope.inventory_mailboxes(id, &filter, page).await?;
    if !forwarding.is_empty() {
        let shown: Vec<String> = forwarding
            .iter()
            .map(|m| {
                format!(
                    "{} to {}",
                    m.data["primarySmtpAddress"].as_str().unwrap_or(&m.id),
                    m.data["outsideForwardingDomain"].as_str().unwrap_or("?")
                )
            })
            .collect();
        view.warnings.push(OrganizationWarning {
            code: "OUTSIDE_FORWARDING",
            detail: format!(
                "{} mailbox(es) forward mail outside the organization, a classic sign of a compromised mailbox: {}. Review them (GET …/mailboxes?forwarding=outside) and clear what nobody asked for (clear_mailbox_forwarding, or remediate_compromised_user).",
                forwarding.len(),
                shown.join("; ")
            ),
            mailboxes: forwarding
                .iter()
                .filter_map(|m| m.data["primarySmtpAddress"].as_str().map(str::to_owned))
                .collect(),
        });
    }
    Ok(Json(view))
}

/// Rename an organization (owner or admin).
#[utoipa::path(patch, path = "/api/v1/organizations/{id}", tag = "organizations", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id")), request_body = UpdateOrganization,
    responses((status = 200, description = "Renamed", body = OrganizationView),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid name", body = Problem, content_type = PROBLEM)))]
pub async fn update_organization(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
    ApiJson(body): ApiJson<UpdateOrganization>,
) -> Result<Json<OrganizationView>, ApiError> {
    let name = body
        .name
        .as_deref()
        .map(DisplayName::parse)
        .transpose()
        .map_err(|e| ApiError::validation(vec![FieldError::new("name", e.to_string())]))?;
    let now = chrono::Utc::now();
    let schedule = match &body.scan_schedule {
        None => None,
        Some(None) => Some((None, tenantry_domain::schedule::next_scan(None, now))),
        Some(Some(text)) => {
            let text = text.trim();
            let next = tenantry_domain::schedule::parse(text, now).map_err(|e| {
                ApiError::validation(vec![FieldError::new("scan_schedule", e.to_string())])
            })?;
            Some((Some(text.to_owned()), next))
        }
    };
    if name.is_none() && schedule.is_none() {
        return Err(ApiError::validation(vec![FieldError::new(
            "name",
            "send `name`, `scan_schedule` or both",
        )]));
    }
    let scope = caller.scope();
    if let Some(name) = &name {
        scope.rename_organization(id, name).await?;
    }
    if let Some((schedule, next)) = &schedule {
        scope
            .set_scan_schedule(id, schedule.as_deref(), *next)
            .await?;
    }
    Ok(Json(scope.organization(id).await?.into()))
}

/// Remove an organization and destroy its data key (owner or admin).
#[utoipa::path(delete, path = "/api/v1/organizations/{id}", tag = "organizations", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id")),
    responses((status = 204, description = "Removed; its sealed secrets can no longer be opened"),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM)))]
pub async fn delete_organization(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath(organization): ApiPath<OrganizationId>,
) -> Result<StatusCode, ApiError> {
    let scope = caller.scope();
    scope.may_manage_organizations()?;
    // Graph's subscriptions would outlive the credentials that can delete them.
    tenantry_actions::unsubscribe_everything(&state.graph, &scope, organization).await;
    scope.delete_organization(organization).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Re-verify the stored credentials now and store the new report.
#[utoipa::path(post, path = "/api/v1/organizations/{id}/validate", tag = "organizations", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id")),
    responses((status = 200, description = "The new validation report", body = crate::schemas::ValidationReport),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM),
        (status = 422, description = "The credentials no longer pass", body = Problem, content_type = PROBLEM),
        (status = 503, description = "UPSTREAM_UNAVAILABLE", body = Problem, content_type = PROBLEM)))]
pub async fn validate_organization(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
) -> Result<Json<Value>, ApiError> {
    let scope = caller.scope();
    // It signs in with the organization's credential and rewrites its status: work, not
    // a read (viewers may not).
    scope.may_start_work()?;
    let organization = scope.organization(id).await?;
    let stored = scope.stored_credential(id).await?;
    let credential = stored.credential_id;
    let credentials = stored_credentials(&organization, &stored.credential)?;
    // Reports are saved only while the secret they checked is still the one stored: a
    // secret replaced meanwhile keeps its own, newer report. In partner mode the app lives
    // in the partner tenant, so the customer's check reads no application entry.
    let checked = if stored.partner_connection_id.is_some() {
        state.validator.validate_customer(&credentials, None).await
    } else {
        state.validator.validate(&credentials, None).await
    };
    match checked {
        Ok(report) => {
            let value = report_json(&report)?;
            scope
                .save_validation(id, credential, report.status(), &value)
                .await?;
            if report.propagating() {
                scope.schedule_revalidation(id).await?;
            }
            Ok(Json(value))
        }
        Err(error) => {
            if let Some(status) = OrganizationStatus::after_failed_validation(error.failure()) {
                scope
                    .save_validation(
                        id,
                        credential,
                        status,
                        &json!({"failed": error.to_string()}),
                    )
                    .await?;
            }
            // Consent takes minutes to reach every Microsoft replica: check again on a
            // backoff schedule without anyone asking.
            if matches!(
                error,
                ValidationError::MissingPermissions { .. }
                    | ValidationError::ServicePrincipalNotFound
            ) {
                scope.schedule_revalidation(id).await?;
            }
            Err(validation_problem(error))
        }
    }
}

fn stored_credentials(
    organization: &OrganizationRecord,
    credential: &tenantry_domain::AppCredential,
) -> Result<Credentials, ApiError> {
    let (Some(tenant), Some(client)) = (organization.tenant_id, organization.client_id) else {
        return Err(ApiError::internal(
            "organization without tenant or client id",
        ));
    };
    Credentials::stored(&tenant.to_string(), &client.to_string(), credential)
        .map_err(validation_problem)
}

/// The latest validation report.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/validation", tag = "organizations", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id")),
    responses((status = 200, description = "The latest report, or why the last check failed", body = crate::schemas::StoredValidation),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM)))]
pub async fn get_validation(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
) -> Result<Json<Value>, ApiError> {
    caller
        .scope()
        .validation_report(id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// Replace the credential with a new client secret or certificate (either kind, whatever
/// the old one was): the new one is validated first, and the old one stays until it passes
/// (owner or admin).
#[utoipa::path(put, path = "/api/v1/organizations/{id}/credentials", tag = "organizations", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id")), request_body = ReplaceCredentials,
    responses((status = 200, description = "Replaced; the new validation report", body = crate::schemas::ValidationReport),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM),
        (status = 422, description = "The new credentials do not pass (the same codes as connecting); the old ones stay", body = Problem, content_type = PROBLEM),
        (status = 503, description = "UPSTREAM_UNAVAILABLE", body = Problem, content_type = PROBLEM)))]
pub async fn replace_credentials(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
    ApiJson(body): ApiJson<ReplaceCredentials>,
) -> Result<Json<Value>, ApiError> {
    let scope = caller.scope();
    scope.may_manage_organizations()?;
    let organization = scope.organization(id).await?;
    let tenant = organization
        .tenant_id
        .ok_or_else(|| ApiError::internal("organization without tenant"))?;
    let mut errors = Vec::new();
    let given = credential_input::read(
        &scope,
        &tenant.to_string(),
        &body.client_id,
        body.client_secret.as_deref(),
        body.certificate,
        &mut errors,
    )
    .await?;
    let Some(given) = given else {
        return Err(ApiError::validation(errors));
    };
    let credentials = given.credentials;
    let report = state
        .validator
        .validate(&credentials, None)
        .await
        .map_err(validation_problem)?;
    if report.tenant_id != tenant {
        return Err(validation_problem(ValidationError::TenantMismatch {
            expected: tenant.to_string(),
            actual: report.tenant_id.to_string(),
        }));
    }
    // The new credential and its report are stored in one transaction.
    let value = report_json(&report)?;
    scope
        .replace_credentials(
            id,
            credentials.client_id,
            &credentials.credential,
            given.generated,
            report.status(),
            &value,
        )
        .await?;
    tracing::info!(organization_id = %id, credential = credentials.credential.kind().as_str(),
        "credential replaced");
    Ok(Json(value))
}

/// The public certificate of the organization's certificate credential, DER-encoded (a
/// `.cer` file, for Entra's "Upload certificate").
#[utoipa::path(get, path = "/api/v1/organizations/{id}/certificate.cer", tag = "organizations", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id")),
    responses((status = 200, description = "The certificate, DER", content_type = "application/pkix-cert", body = Vec<u8>),
        (status = 404, description = "No such organization for this key, or it uses a client secret", body = Problem, content_type = PROBLEM)))]
pub async fn download_certificate(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
) -> Result<axum::response::Response, ApiError> {
    let der = caller.scope().organization_certificate(id).await?;
    Ok(crate::routes::certificates::cer_file(
        der,
        &format!("tenantry-{id}.cer"),
    ))
}
