//! `/api/v1/api-keys`: an MSP's owners and admins list, mint and revoke keys. Secrets are
//! returned exactly once, at creation. The role rules (nobody mints more power than they
//! hold; only owners touch owner keys; limited keys manage nothing) live in the domain and
//! are enforced by the store's scoped handle.

use std::collections::BTreeSet;

use axum::Json;
use axum::http::{HeaderName, StatusCode, header};
use serde::{Deserialize, Serialize};
use tenantry_domain::{ApiKeyRecordId, DisplayName, OperatorId, OrganizationId, OrganizationLimit};
use tenantry_store::{KeyHolder, NewApiKey};
use utoipa::ToSchema;
use uuid::Uuid;

use super::views::{ApiKeyView, RoleView};
use crate::caller::Caller;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::pagination::{PageQuery, Paginated};
use crate::problem::{ApiError, FieldError, Problem};

/// The most organizations one key may be limited to.
const MAX_ORGANIZATIONS_PER_KEY: usize = 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for, e.g. "PSA integration" (1–100 characters).
    pub name: String,
    pub role: RoleView,
    /// Limit the key to these organizations; omit for all of the MSP's organizations.
    pub organization_ids: Option<Vec<Uuid>>,
    /// Whose key it is. Omitted, or `{"id": <your own operator id>}`: yours (approvals
    /// compare people, so it cannot approve your requests). `{"name": "…"}` (owners only):
    /// a new person joining the MSP, e.g. a second technician.
    pub operator: Option<OperatorChoice>,
}

/// An operator (the person holding a key): an existing one by `id`, or a new one by
/// `name` (a person's name or email address, 1–100 characters). Exactly one of the two.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorChoice {
    pub id: Option<Uuid>,
    pub name: Option<String>,
}

/// Not `Debug`: it carries the key.
#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The full key. Shown this once; store it now.
    pub api_key: String,
    pub key: ApiKeyView,
}

const PROBLEM: &str = "application/problem+json";

/// List the MSP's API keys (owner or admin).
#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    security(("api_key" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of keys", body = Paginated<ApiKeyView>),
        (status = 400, description = "Bad query", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Role too low", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn list_api_keys(
    caller: Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paginated<ApiKeyView>>, ApiError> {
    let page = query.to_page()?;
    let keys = caller.scope().list_api_keys(page).await?;
    Ok(Json(Paginated::from_rows(
        keys,
        page,
        |key| key.id.as_uuid(),
        ApiKeyView::from,
    )))
}

/// Create an API key (owner or admin). The response carries the secret, once, and must not
/// be stored by any cache.
#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    security(("api_key" = [])),
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created; `api_key` is shown only now (`Cache-Control: no-store`)", body = CreatedApiKey),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Role too low for the requested role, or an operator other than the caller's own (only owners name a new one)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn create_api_key(
    caller: Caller,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> Result<
    (
        StatusCode,
        [(HeaderName, &'static str); 1],
        Json<CreatedApiKey>,
    ),
    ApiError,
> {
    let new = validate(body)?;
    let (record, issued) = caller.scope().create_api_key(new).await?;
    tracing::info!(created_key_id = %record.key_id, role = %record.role, "API key created");
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(CreatedApiKey {
            api_key: issued.expose().to_owned(),
            key: record.into(),
        }),
    ))
}

fn validate(body: CreateApiKey) -> Result<NewApiKey, ApiError> {
    let mut errors = Vec::new();
    let name = DisplayName::parse(&body.name)
        .map_err(|e| errors.push(FieldError::new("name", e.to_string())))
        .ok();
    let organizations = match body.organization_ids {
        None => OrganizationLimit::All,
        Some(ids) if ids.is_empty() => {
            errors.push(FieldError::new(
                "organization_ids",
                "must list at least one organization; omit it for all organizations",
            ));
            OrganizationLimit::All
        }
        Some(ids) if ids.len() > MAX_ORGANIZATIONS_PER_KEY => {
            errors.push(FieldError::new(
                "organization_ids",
                format!("may list at most {MAX_ORGANIZATIONS_PER_KEY} organizations"),
            ));
            OrganizationLimit::All
        }
        Some(ids) => OrganizationLimit::Only(
            ids.into_iter()
                .map(OrganizationId::from_uuid)
                .collect::<BTreeSet<_>>(),
        ),
    };
    let operator = match body.operator {
        None => KeyHolder::Minter,
        Some(OperatorChoice {
            id: Some(id),
            name: None,
        }) => KeyHolder::Existing(OperatorId::from_uuid(id)),
        Some(OperatorChoice {
            id: None,
            name: Some(name),
        }) => match DisplayName::parse(&name) {
            Ok(name) => KeyHolder::New(name),
            Err(e) => {
                errors.push(FieldError::new("operator.name", e.to_string()));
                KeyHolder::Minter
            }
        },
        Some(_) => {
            errors.push(FieldError::new(
                "operator",
                "must hold exactly one of `id` (your own operator) and `name` (a new operator)",
            ));
            KeyHolder::Minter
        }
    };
    match name {
        Some(name) if errors.is_empty() => Ok(NewApiKey {
            name,
            role: body.role.into(),
            organizations,
            operator,
        }),
        _ => Err(ApiError::validation(errors)),
    }
}

/// One API key of the MSP (owner or admin).
#[utoipa::path(
    get,
    path = "/api/v1/api-keys/{id}",
    tag = "api-keys",
    security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The key's `id`")),
    responses(
        (status = 200, description = "The key", body = ApiKeyView),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Role too low", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such key in this MSP", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn get_api_key(
    caller: Caller,
    ApiPath(id): ApiPath<ApiKeyRecordId>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let key = caller.scope().api_key(id).await?;
    Ok(Json(key.into()))
}

/// Revoke an API key (owner or admin; only owners revoke owner keys). Idempotent.
#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{id}",
    tag = "api-keys",
    security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The key's `id`")),
    responses(
        (status = 204, description = "Revoked (or already revoked)"),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Role too low", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such key in this MSP", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The MSP's last owner key", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn revoke_api_key(
    caller: Caller,
    ApiPath(id): ApiPath<ApiKeyRecordId>,
) -> Result<StatusCode, ApiError> {
    let revoked = caller.scope().revoke_api_key(id).await?;
    tracing::info!(revoked_key_id = %revoked.key_id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
