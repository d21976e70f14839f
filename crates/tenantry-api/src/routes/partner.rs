//! `/api/v1/partner-connections`: partner mode. A connection is the MSP's multi-tenant app
//! in its partner tenant with one credential (secret or certificate), proven before it is
//! stored (a token at home, the app multi-tenant, `DelegatedAdminRelationship.Read.All`
//! granted, the required permissions declared); its customers come from GDAP syncs, each
//! with three badges (GDAP, consent, directory roles); consent links carry a single-use
//! `state`; consented customers are connected as organizations that use the connection's
//! credential.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tenantry_domain::partner::{self as badges, Badge, GdapBadge, RoleNeed};
use tenantry_domain::{DisplayName, ErrorCode};
use tenantry_graph::partner::{self, PartnerCheckError};
use tenantry_graph::{Credentials, ValidationError};
use tenantry_store::partner::{CustomerRecord, NewPartnerConnection, PartnerConnectionRecord};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::app::AppState;
use crate::caller::Caller;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::problem::{ApiError, FieldError, Problem};
use crate::routes::credential_input::{self, CertificateInput};
use crate::routes::organizations::{OrganizationView, validation_problem};

const PROBLEM: &str = "application/problem+json";
/// The most customers connected by one request.
const MAX_CONNECT: usize = 100;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePartnerConnection {
    /// A name for the connection (1–100 characters), e.g. the partner tenant's.
    pub name: String,
    /// The partner tenant: its GUID or a verified domain.
    pub tenant_id: String,
    /// Application (client) ID of the multi-tenant app in the partner tenant.
    pub client_id: String,
    /// The app's client secret **Value**. Send this or `certificate`.
    pub client_secret: Option<String>,
    pub certificate: Option<CertificateInput>,
    /// The capabilities the connection's organizations need (default: every one). Their
    /// required permissions are the consent scope: what the app must declare and what
    /// each customer is verified for.
    pub capabilities: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplacePartnerCredential {
    pub client_secret: Option<String>,
    pub certificate: Option<CertificateInput>,
}

#[derive(Serialize, ToSchema)]
pub struct PartnerConnectionView {
    pub id: Uuid,
    pub name: String,
    pub tenant_id: Uuid,
    pub client_id: Uuid,
    pub app_display_name: Option<String>,
    /// `secret` or `certificate`.
    pub credential_type: String,
    pub certificate_thumbprint: Option<String>,
    pub secret_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The Graph application permissions customers consent to.
    pub consent_scope: Vec<String>,
    /// The capabilities the consent scope serves; `null`: every capability.
    pub capabilities: Option<Vec<String>>,
    /// Where Microsoft sends the admin back after consent, and whether it is registered
    /// on the app (Entra refuses the consent page otherwise).
    pub redirect_uri: Option<String>,
    pub redirect_uri_registered: bool,
    pub organizations: i64,
    pub customers: i64,
    pub last_synced_at: Option<chrono::DateTime<chrono::Utc>>,
    pub next_sync_at: chrono::DateTime<chrono::Utc>,
    /// Why the last sync failed; `null` after a success.
    pub sync_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The consent callback this service answers.
fn redirect_uri(state: &AppState) -> Option<String> {
    state
        .public_url
        .as_deref()
        .map(|url| format!("{}/consent/callback", url.trim_end_matches('/')))
}

fn view(state: &AppState, p: PartnerConnectionRecord) -> PartnerConnectionView {
    let redirect = redirect_uri(state);
    let registered = redirect.as_deref().is_some_and(|uri| {
        p.redirect_uris
            .iter()
            .any(|r| uri == r || uri.starts_with(&format!("{}/", r.trim_end_matches('/'))))
    });
    PartnerConnectionView {
        id: p.partner_connection_id,
        name: p.name,
        tenant_id: p.tenant_id,
        client_id: p.client_id,
        app_display_name: p.app_display_name,
        credential_type: p.credential_type,
        certificate_thumbprint: p.certificate_thumbprint,
        secret_expires_at: p.secret_expires_at,
        consent_scope: p.required_permissions,
        capabilities: p.capabilities,
        redirect_uri: redirect,
        redirect_uri_registered: registered,
        organizations: p.organizations,
        customers: p.customers,
        last_synced_at: p.last_synced_at,
        next_sync_at: p.next_sync_at,
        sync_error: p.sync_error,
        created_at: p.created_at,
    }
}

fn described(code: ErrorCode, status: StatusCode, detail: impl Into<String>) -> Problem {
    Problem::new(code, status, detail)
}

fn problem(p: Problem) -> ApiError {
    ApiError::Described {
        problem: Box::new(p),
        retry_after_secs: None,
    }
}

/// The refusal an MSP can act on, for a partner app that does not pass.
fn partner_problem(error: PartnerCheckError) -> ApiError {
    match error {
        PartnerCheckError::Credentials(error) => validation_problem(error),
        PartnerCheckError::NotMultiTenant { sign_in_audience } => problem(
            described(ErrorCode::PartnerAppNotMultitenant, StatusCode::UNPROCESSABLE_ENTITY,
                "The app is single-tenant, so no customer can consent to it. In Entra (partner tenant): App registrations → your app → Authentication → Supported account types → \"Accounts in any organizational directory (Any Microsoft Entra ID tenant - Multitenant)\", then try again.")
            .with("sign_in_audience", json!(sign_in_audience)),
        ),
        PartnerCheckError::GdapNotGranted => problem(
            described(ErrorCode::MissingPermissions, StatusCode::UNPROCESSABLE_ENTITY,
                "The app cannot read GDAP relationships in the partner tenant. In Entra (partner tenant): App registrations → your app → API permissions → Add a permission → Microsoft Graph → Application permissions → DelegatedAdminRelationship.Read.All, then Grant admin consent.")
            .with("missing_permissions", json!([partner::GDAP_READ]))
            .with("where", json!("partner_tenant")),
        ),
        PartnerCheckError::NotDeclared { missing } => problem(
            described(ErrorCode::MissingPermissions, StatusCode::UNPROCESSABLE_ENTITY,
                format!("The app does not declare {} permission(s) that customers must consent to; a consent grants only what the app declares. In Entra (partner tenant): App registrations → your app → API permissions → Add a permission → Microsoft Graph → Application permissions, add them.", missing.len()))
            .with("missing_permissions", json!(missing))
            .with("where", json!("app_registration")),
        ),
    }
}

/// When the connection's credential ends, as the partner tenant says (a secret) or the
/// certificate itself does.
fn credential_expiry(app: &partner::PartnerApp) -> Option<chrono::DateTime<chrono::Utc>> {
    app.secret
        .as_ref()
        .and_then(|s| s.expires_at)
        .or(app.certificate.as_ref().map(|c| c.expires_at))
}

fn parse_name(raw: &str, errors: &mut Vec<FieldError>) -> Option<DisplayName> {
    DisplayName::parse(raw)
        .map_err(|e| errors.push(FieldError::new("name", e.to_string())))
        .ok()
}

/// Connect a partner tenant's multi-tenant app (owner).
#[utoipa::path(post, path = "/api/v1/partner-connections", tag = "partner", security(("api_key" = [])),
    request_body = CreatePartnerConnection,
    responses(
        (status = 201, description = "Proven and stored; its first sync is queued", body = PartnerConnectionView),
        (status = 403, description = "Not an unlimited owner key", body = Problem, content_type = PROBLEM),
        (status = 409, description = "TENANT_ALREADY_BOUND: this app is already a connection", body = Problem, content_type = PROBLEM),
        (status = 422, description = "INVALID_REQUEST, CREDENTIAL_*, CERTIFICATE_*, INVALID_CREDENTIALS, TENANT_MISMATCH, PARTNER_APP_NOT_MULTITENANT or MISSING_PERMISSIONS", body = Problem, content_type = PROBLEM),
        (status = 503, description = "UPSTREAM_UNAVAILABLE", body = Problem, content_type = PROBLEM)))]
pub async fn create_partner_connection(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreatePartnerConnection>,
) -> Result<(StatusCode, Json<PartnerConnectionView>), ApiError> {
    let scope = caller.scope();
    scope.may_change_partner_connections()?;
    let capabilities = crate::routes::organizations::parse_capabilities(body.capabilities)?;
    let mut errors = Vec::new();
    let name = parse_name(&body.name, &mut errors);
    let given = credential_input::read(
        &scope,
        &body.tenant_id,
        &body.client_id,
        body.client_secret.as_deref(),
        body.certificate,
        &mut errors,
    )
    .await?;
    let (Some(name), Some(given), true) = (name, given, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let required_set = tenantry_domain::capabilities::required_permissions(capabilities.as_deref());
    let required: Vec<&str> = required_set.iter().map(String::as_str).collect();
    let app = state
        .validator
        .check_partner(&given.credentials, &required)
        .await
        .map_err(partner_problem)?;
    let expires = credential_expiry(&app);
    let record = scope
        .create_partner_connection(&NewPartnerConnection {
            name: name.as_str().to_owned(),
            tenant_id: app.tenant_id,
            client_id: given.credentials.client_id,
            credential: given.credentials.credential.clone(),
            generated: given.generated,
            required_permissions: required.iter().map(|p| (*p).to_owned()).collect(),
            capabilities: capabilities
                .as_ref()
                .map(|c| c.iter().map(|c| c.as_str().to_owned()).collect()),
            redirect_uris: app.redirect_uris.clone(),
            app_display_name: app.display_name.clone(),
            secret_expires_at: expires,
        })
        .await?;
    tracing::info!(partner_connection_id = %record.partner_connection_id, tenant_id = %app.tenant_id, "partner connection created");
    Ok((StatusCode::CREATED, Json(view(&state, record))))
}

/// Every partner connection of the MSP (a few at most: one per partner tenant).
#[derive(Serialize, ToSchema)]
pub struct PartnerConnectionList {
    pub data: Vec<PartnerConnectionView>,
}

#[utoipa::path(get, path = "/api/v1/partner-connections", tag = "partner", security(("api_key" = [])),
    responses((status = 200, description = "The MSP's partner connections", body = PartnerConnectionList)))]
pub async fn list_partner_connections(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PartnerConnectionList>, ApiError> {
    let records = caller.scope().partner_connections().await?;
    let data = records.into_iter().map(|r| view(&state, r)).collect();
    Ok(Json(PartnerConnectionList { data }))
}

#[utoipa::path(get, path = "/api/v1/partner-connections/{id}", tag = "partner", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The partner connection's id")),
    responses((status = 200, description = "The connection", body = PartnerConnectionView),
        (status = 404, description = "No such connection for this key", body = Problem, content_type = PROBLEM)))]
pub async fn get_partner_connection(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<PartnerConnectionView>, ApiError> {
    let record = caller.scope().partner_connection(id).await?;
    Ok(Json(view(&state, record)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Delete even while organizations use the connection: they are left without a
    /// credential (`needs_attention`), keeping their inventory and history.
    #[serde(default)]
    pub force: bool,
}

/// Delete a partner connection (owner). Refused while organizations use it, unless `force`.
#[utoipa::path(delete, path = "/api/v1/partner-connections/{id}", tag = "partner", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The partner connection's id"), DeleteQuery),
    responses((status = 200, description = "Deleted; `organizations_left_without_credential` lists what it did to organizations"),
        (status = 404, description = "No such connection", body = Problem, content_type = PROBLEM),
        (status = 409, description = "PARTNER_CONNECTION_IN_USE", body = Problem, content_type = PROBLEM)))]
pub async fn delete_partner_connection(
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> Result<Json<Value>, ApiError> {
    let left = caller
        .scope()
        .delete_partner_connection(id, query.force)
        .await?;
    Ok(Json(
        json!({"deleted": id, "organizations_left_without_credential": left}),
    ))
}

/// Replace the connection's credential without a gap (owner): the new one is proven in the
/// partner tenant and in one consented customer before the old one stops being used.
#[utoipa::path(put, path = "/api/v1/partner-connections/{id}/credentials", tag = "partner", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The partner connection's id")),
    request_body = ReplacePartnerCredential,
    responses((status = 200, description = "Replaced", body = PartnerConnectionView),
        (status = 422, description = "The new credential does not pass", body = Problem, content_type = PROBLEM),
        (status = 503, description = "UPSTREAM_UNAVAILABLE", body = Problem, content_type = PROBLEM)))]
pub async fn replace_partner_credential(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ReplacePartnerCredential>,
) -> Result<Json<PartnerConnectionView>, ApiError> {
    let scope = caller.scope();
    scope.may_change_partner_connections()?;
    let current = scope.partner_connection(id).await?;
    let mut errors = Vec::new();
    let given = credential_input::read(
        &scope,
        &current.tenant_id.to_string(),
        &current.client_id.to_string(),
        body.client_secret.as_deref(),
        body.certificate,
        &mut errors,
    )
    .await?;
    let (Some(given), true) = (given, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let required: Vec<&str> = current
        .required_permissions
        .iter()
        .map(String::as_str)
        .collect();
    let app = state
        .validator
        .check_partner(&given.credentials, &required)
        .await
        .map_err(partner_problem)?;
    // Proven in one customer that works today, when there is one: a credential that works
    // at home but not in customers (a certificate of another app, say) is refused here.
    let proof = scope
        .partner_customers(id, None, 100)
        .await?
        .into_iter()
        .find(|c| c.consent() == badges::ConsentState::Complete);
    if let Some(customer) = proof {
        let in_customer = Credentials::stored(
            &customer.tenant_id.to_string(),
            &current.client_id.to_string(),
            &given.credentials.credential,
        )
        .map_err(validation_problem)?;
        match state.validator.validate_customer(&in_customer, None).await {
            Ok(_) | Err(ValidationError::MissingPermissions { .. }) => {}
            Err(error) => {
                let mut p = match validation_problem(error) {
                    ApiError::Described { problem, .. } => *problem,
                    other => return Err(other),
                };
                p = p.with("proven_in_customer", json!(customer.tenant_id));
                return Err(problem(p));
            }
        }
    }
    let expires = credential_expiry(&app);
    scope
        .replace_partner_credential(id, &given.credentials.credential, given.generated, expires)
        .await?;
    // Tokens of the old credential are keyed by its fingerprint: the next job takes one
    // with the new credential.
    let record = scope.partner_connection(id).await?;
    Ok(Json(view(&state, record)))
}

/// Sync GDAP relationships and customers now (technician, unlimited key).
#[utoipa::path(post, path = "/api/v1/partner-connections/{id}/sync", tag = "partner", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The partner connection's id")),
    responses((status = 202, description = "Queued (or already waiting); `job_id` follows it at /api/v1/jobs/{id}")))]
pub async fn sync_partner_connection(
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let scope = caller.scope();
    scope.may_start_work()?;
    let (job, queued) = match scope.sync_partner_connection(id).await? {
        tenantry_store::queue::Enqueued::Inserted(job) => (job, true),
        tenantry_store::queue::Enqueued::Duplicate(job) => (job, false),
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job_id": job, "newly_queued": queued})),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct CustomerView {
    pub tenant_id: Uuid,
    pub display_name: String,
    /// Whether the last sync listed it (an unlisted customer has no active relationship).
    pub listed: bool,
    /// The organization bound to this customer through this connection, once connected.
    pub organization_id: Option<Uuid>,
    #[schema(value_type = Object)]
    pub gdap: GdapBadge,
    #[schema(value_type = Object)]
    pub consent: ConsentView,
    #[schema(value_type = Object)]
    pub directory_roles: RolesView,
    #[schema(value_type = Object)]
    pub relationships: Vec<badges::Relationship>,
    pub verified_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether it can be connected now (consent complete).
    pub ready_to_connect: bool,
}

#[derive(Serialize)]
pub struct ConsentView {
    #[serde(flatten)]
    badge: Badge,
    missing_permissions: Vec<String>,
    consented_at: Option<chrono::DateTime<chrono::Utc>>,
    declined_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize)]
pub struct RolesView {
    #[serde(flatten)]
    badge: Badge,
    needs: Vec<RoleNeed>,
}

fn customer_view(c: CustomerRecord) -> CustomerView {
    let now = chrono::Utc::now();
    let consent = c.consent();
    let roles = c.directory_roles();
    let (roles_badge, needs) = if consent == badges::ConsentState::Complete
        || consent == badges::ConsentState::PermissionsMissing
    {
        badges::directory_roles_badge(roles.as_deref())
    } else {
        badges::directory_roles_badge(None)
    };
    CustomerView {
        tenant_id: c.tenant_id,
        gdap: badges::gdap_badge(&c.relationships, now),
        consent: ConsentView {
            badge: badges::consent_badge(
                consent,
                &c.missing_permissions,
                c.declined_reason.as_deref(),
            ),
            missing_permissions: c.missing_permissions,
            consented_at: c.consented_at,
            declined_at: c.declined_at,
        },
        directory_roles: RolesView {
            badge: roles_badge,
            needs,
        },
        display_name: c.display_name,
        listed: c.listed,
        organization_id: c.organization_id,
        relationships: c.relationships,
        verified_at: c.verified_at,
        ready_to_connect: consent == badges::ConsentState::Complete,
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomersQuery {
    /// Rows per page, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The connection's customers with their badges (technician, unlimited key).
#[utoipa::path(get, path = "/api/v1/partner-connections/{id}/customers", tag = "partner", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The partner connection's id"), CustomersQuery),
    responses((status = 200, description = "One page of customers")))]
pub async fn list_customers(
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<CustomersQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = crate::pagination::PageQuery::new(query.limit, query.cursor).to_page()?;
    let rows = caller
        .scope()
        .partner_customers(id, page.after, page.limit)
        .await?;
    let paged = crate::pagination::Paginated::from_rows(rows, page, |c| c.tenant_id, customer_view);
    Ok(Json(
        json!({"data": paged.data, "next_cursor": paged.next_cursor}),
    ))
}

#[utoipa::path(get, path = "/api/v1/partner-connections/{id}/customers/{tenant}", tag = "partner", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The partner connection's id"), ("tenant" = Uuid, Path, description = "The customer's tenant id")),
    responses((status = 200, description = "The customer with its badges")))]
pub async fn get_customer(
    caller: Caller,
    ApiPath((id, tenant)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<CustomerView>, ApiError> {
    let customer = caller.scope().partner_customer(id, tenant).await?;
    Ok(Json(customer_view(customer)))
}

/// A consent link for one customer (its `state` works once, for an hour).
async fn consent_link(
    state: &AppState,
    scope: &tenantry_store::MspScope<'_>,
    connection: &PartnerConnectionRecord,
    tenant: Uuid,
) -> Result<Value, ApiError> {
    let Some(redirect) = redirect_uri(state) else {
        return Err(problem(described(
            ErrorCode::InvalidRequest,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Consent links need the service's public URL: set TENANTRY__HTTP__PUBLIC_URL (Microsoft redirects the admin to {public_url}/consent/callback, which must be a redirect URI of the app).",
        )));
    };
    let (consent_state, expires_at) = scope
        .issue_consent_state(connection.partner_connection_id, tenant)
        .await?;
    let url = partner::admin_consent_url(
        state.validator.http().config(),
        tenant,
        connection.client_id,
        &redirect,
        &consent_state,
    );
    Ok(json!({"tenant_id": tenant, "url": url, "expires_at": expires_at}))
}

/// A fresh admin-consent link for one customer (technician, unlimited key).
#[utoipa::path(post, path = "/api/v1/partner-connections/{id}/customers/{tenant}/consent-link", tag = "partner", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The partner connection's id"), ("tenant" = Uuid, Path, description = "The customer's tenant id")),
    responses((status = 201, description = "`url` to open as the customer's Global Administrator; works once, until `expires_at`")))]
pub async fn create_consent_link(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, tenant)): ApiPath<(Uuid, Uuid)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let scope = caller.scope();
    scope.may_start_work()?;
    let connection = scope.partner_connection(id).await?;
    let link = consent_link(&state, &scope, &connection, tenant).await?;
    Ok((StatusCode::CREATED, Json(link)))
}

/// Consent links for every listed customer whose consent is not complete.
#[utoipa::path(post, path = "/api/v1/partner-connections/{id}/consent-links", tag = "partner", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The partner connection's id")),
    responses((status = 201, description = "One link per pending customer")))]
pub async fn create_consent_links(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let scope = caller.scope();
    scope.may_start_work()?;
    let connection = scope.partner_connection(id).await?;
    let mut links = Vec::new();
    let mut after = None;
    loop {
        let page = scope.partner_customers(id, after, 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.tenant_id);
        for customer in &page {
            if customer.listed && customer.consent() != badges::ConsentState::Complete {
                let mut link =
                    consent_link(&state, &scope, &connection, customer.tenant_id).await?;
                link["display_name"] = json!(customer.display_name);
                link["consent"] = json!(customer.consent().as_str());
                links.push(link);
            }
        }
        if page.len() < 500 {
            break;
        }
    }
    Ok((StatusCode::CREATED, Json(json!({"data": links}))))
}

/// Verify one customer now (technician, unlimited key); the badges change when it ends.
#[utoipa::path(post, path = "/api/v1/partner-connections/{id}/customers/{tenant}/verify", tag = "partner", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The partner connection's id"), ("tenant" = Uuid, Path, description = "The customer's tenant id")),
    responses((status = 202, description = "Queued")))]
pub async fn verify_customer(
    caller: Caller,
    ApiPath((id, tenant)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    caller.scope().verify_partner_customer(id, tenant).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectCustomers {
    /// The customers' tenant ids (1–100).
    pub tenant_ids: Vec<Uuid>,
}

/// Connect consented customers as organizations in partner mode (owner or admin). Each is
/// answered on its own: `created`, `moved` (an existing organization of this MSP now uses
/// the connection, keeping its inventory and history), `already_connected`, or a problem.
#[utoipa::path(post, path = "/api/v1/partner-connections/{id}/customers/connect", tag = "partner", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The partner connection's id")),
    request_body = ConnectCustomers,
    responses((status = 200, description = "One result per tenant, in the order given")))]
pub async fn connect_customers(
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ConnectCustomers>,
) -> Result<Json<Value>, ApiError> {
    let scope = caller.scope();
    scope.may_manage_organizations()?;
    if body.tenant_ids.is_empty() || body.tenant_ids.len() > MAX_CONNECT {
        return Err(ApiError::validation(vec![FieldError::new(
            "tenant_ids",
            format!("must list 1–{MAX_CONNECT} tenant ids"),
        )]));
    }
    let connection = scope.partner_connection(id).await?;
    let mut results = Vec::with_capacity(body.tenant_ids.len());
    for tenant in body.tenant_ids {
        let result = connect_one(&scope, &connection, tenant).await;
        results.push(match result {
            Ok(value) => value,
            Err(error) => {
                let problem = error.problem();
                json!({"tenant_id": tenant, "outcome": "refused", "problem": problem})
            }
        });
    }
    Ok(Json(json!({"data": results})))
}

async fn connect_one(
    scope: &tenantry_store::MspScope<'_>,
    connection: &PartnerConnectionRecord,
    tenant: Uuid,
) -> Result<Value, ApiError> {
    let customer = scope
        .partner_customer(connection.partner_connection_id, tenant)
        .await?;
    if customer.consent() != badges::ConsentState::Complete {
        return Err(problem(
            described(ErrorCode::CustomerNotReady, StatusCode::UNPROCESSABLE_ENTITY,
                "The customer's consent is not complete. Open its consent link as the customer's Global Administrator; once Microsoft shows the consent (the badge turns complete by itself), connect it.")
            .with("consent", json!(customer.consent().as_str())),
        ));
    }
    let name = DisplayName::parse(&customer.display_name)
        .or_else(|_| DisplayName::parse(&format!("Tenant {tenant}")))
        .map_err(ApiError::internal)?;
    let status = customer
        .verification
        .as_ref()
        .and_then(|v| v["organization_status"].as_str())
        .unwrap_or("connected")
        .to_owned();
    let bound = scope
        .connect_partner_customer(connection, &customer, &name, &status)
        .await?;
    Ok(json!({
        "tenant_id": tenant,
        "outcome": bound.outcome,
        "organization": OrganizationView::from(bound.organization),
        "discovery_run_id": bound.discovery_run_id,
    }))
}

/// The public certificate of the connection's certificate credential, DER-encoded (a
/// `.cer` file, to register on the app in Entra).
#[utoipa::path(get, path = "/api/v1/partner-connections/{id}/certificate.cer", tag = "partner", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The partner connection's id")),
    responses((status = 200, description = "The certificate, DER", content_type = "application/pkix-cert", body = Vec<u8>),
        (status = 404, description = "No such connection for this key, or it uses a client secret", body = Problem, content_type = PROBLEM)))]
pub async fn download_partner_certificate(
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::response::Response, ApiError> {
    let der = caller.scope().partner_certificate(id).await?;
    Ok(crate::routes::certificates::cer_file(
        der,
        &format!("partner-{id}.cer"),
    ))
}
