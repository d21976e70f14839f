//! Discovery runs and the inventory they keep: `/api/v1/organizations/{id}/discovery-runs`
//! (list, scan now, one run) and the inventory reads (users, groups and members,
//! directory roles, licences, applications, devices, approver proposals). Every list is
//! cursor-paginated in a stable order and bounded.

use axum::Json;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantry_domain::{DiscoveryRunId, OrganizationId};
use tenantry_store::discovery::RunRecord;
use tenantry_store::inventory::{GroupFilter, UserFilter};
use tenantry_store::{DiscoveryMode, DiscoveryTrigger};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::caller::Caller;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::pagination::{PageQuery, Paginated};
use crate::problem::{ApiError, FieldError, Problem};

const PROBLEM: &str = "application/problem+json";
/// Longest accepted search text.
const MAX_QUERY_CHARS: usize = 200;

#[derive(Serialize, ToSchema)]
pub struct RunView {
    pub id: Uuid,
    pub organization_id: Uuid,
    /// `added`, `schedule`, `manual` or `webhook`.
    pub trigger: String,
    /// `full` or `delta`.
    pub mode: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    pub job_id: Option<Uuid>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Per section: `status` (`done`, `skipped` with the `permission` to grant,
    /// `throttled`, `failed`, or `not_due` with `read_at` and `due_at` when a delta run
    /// left it alone), `count`, and `reason` why the run read it or not (`full`, `delta`
    /// for users and groups read by delta link, `due` by its own schedule, `requested`,
    /// `not_due`).
    #[schema(value_type = HashMap<String, Object>)]
    pub sections: Value,
    /// Requests to Microsoft Graph as Microsoft counts them against its throttling
    /// limits: each item of a `$batch` on its own.
    pub graph_requests: i32,
    /// HTTP requests sent to Microsoft Graph (a `$batch` of up to 20 reads once).
    pub graph_round_trips: i32,
    /// Throttling answers met (each was waited out or snoozed, never skipped).
    pub throttled: i32,
    pub error: Option<String>,
}

impl From<RunRecord> for RunView {
    fn from(r: RunRecord) -> Self {
        Self {
            id: r.run_id.as_uuid(),
            organization_id: r.organization_id.as_uuid(),
            trigger: r.trigger,
            mode: r.mode,
            state: r.state.as_str().to_owned(),
            job_id: r.job_id.map(Uuid::from),
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            sections: r.sections,
            graph_requests: r.graph_requests,
            graph_round_trips: r.graph_round_trips,
            throttled: r.throttled,
            error: r.error,
        }
    }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// `full` (default: every section afresh) or `delta` (users and groups changed since
    /// the last run, the members of changed groups, and any other section due by its
    /// own schedule or asked for).
    pub mode: Option<String>,
}

/// The organization's discovery runs, newest first.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/discovery-runs", tag = "inventory", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"), PageQuery),
    responses((status = 200, description = "A page of runs", body = Paginated<RunView>),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM)))]
pub async fn list_runs(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paginated<RunView>>, ApiError> {
    let page = query.to_page()?;
    let rows = caller.scope().discovery_runs(id, page).await?;
    Ok(Json(Paginated::from_rows(
        rows,
        page,
        |r| r.run_id.as_uuid(),
        RunView::from,
    )))
}

/// Scan now (technician or higher). Answers 202 with the queued run, or with the run
/// already queued or running for this organization.
#[utoipa::path(post, path = "/api/v1/organizations/{id}/discovery-runs", tag = "inventory", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id")),
    request_body(content = StartRun, description = "Optional: `{\"mode\": \"delta\"}`"),
    responses((status = 202, description = "Queued (or already queued)", body = RunView),
        (status = 403, description = "A viewer key", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM)))]
pub async fn start_run(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
    body: Option<ApiJson<StartRun>>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    // The body is optional: none means a full scan.
    let body = body.map(|ApiJson(body)| body).unwrap_or_default();
    let mode = match body.mode.as_deref() {
        None => DiscoveryMode::Full,
        Some(text) => DiscoveryMode::parse(text).ok_or_else(|| {
            ApiError::validation(vec![FieldError::new("mode", "must be `full` or `delta`")])
        })?,
    };
    let (run, _) = caller
        .scope()
        .queue_discovery(id, DiscoveryTrigger::Manual, mode)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(run.into())))
}

/// One run, with its sections and counters.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/discovery-runs/{run}", tag = "inventory", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"), ("run" = Uuid, Path, description = "The run's id")),
    responses((status = 200, description = "The run", body = RunView),
        (status = 404, description = "No such run for this key", body = Problem, content_type = PROBLEM)))]
pub async fn get_run(
    caller: Caller,
    ApiPath((id, run)): ApiPath<(OrganizationId, DiscoveryRunId)>,
) -> Result<Json<RunView>, ApiError> {
    Ok(Json(caller.scope().discovery_run(id, run).await?.into()))
}

fn search_text(field: &str, text: Option<String>) -> Result<Option<String>, ApiError> {
    match text.map(|t| t.trim().to_owned()) {
        None => Ok(None),
        Some(t) if t.is_empty() => Ok(None),
        Some(t) if t.chars().count() > MAX_QUERY_CHARS => {
            Err(ApiError::validation(vec![FieldError::new(
                field,
                format!("must be at most {MAX_QUERY_CHARS} characters"),
            )]))
        }
        Some(t) => Ok(Some(t)),
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Part of the display name, UPN or mail (case-insensitive).
    q: Option<String>,
    department: Option<String>,
    job_title: Option<String>,
    /// `false` lists disabled ("locked") accounts.
    enabled: Option<bool>,
    /// Only users holding this SKU (its id; `GET …/licenses` lists them).
    license: Option<Uuid>,
    /// `true`: only users holding no licence at all.
    unlicensed: Option<bool>,
    /// Rows per page, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page (`page_token` is accepted too).
    #[serde(alias = "page_token")]
    cursor: Option<String>,
}

/// The organization's users from the inventory, filtered, in a stable order (by id).
#[utoipa::path(get, path = "/api/v1/organizations/{id}/users", tag = "inventory", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"), UserQuery),
    responses((status = 200, description = "A page of users", body = Paginated<crate::schemas::InventoryUser>),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM)))]
pub async fn list_users(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> Result<Json<Paginated<Value>>, ApiError> {
    let page = PageQuery::new(query.limit, query.cursor).to_page()?;
    let filter = UserFilter {
        q: search_text("q", query.q)?,
        department: search_text("department", query.department)?,
        job_title: search_text("job_title", query.job_title)?,
        enabled: query.enabled,
        license: query.license,
        unlicensed: query.unlicensed.unwrap_or(false),
    };
    let rows = caller.scope().inventory_users(id, &filter, page).await?;
    Ok(Json(Paginated::from_rows(rows, page, |u| u.id, to_json)))
}

/// A page of inventory objects, whose ids (Graph's and Exchange's) are GUIDs.
fn object_page(
    rows: Vec<tenantry_store::inventory::InventoryObject>,
    page: tenantry_store::Page,
) -> Paginated<Value> {
    Paginated::from_rows(
        rows,
        page,
        |o| Uuid::parse_str(&o.id).unwrap_or_default(),
        to_json,
    )
}

fn to_json<T: Serialize>(row: T) -> Value {
    serde_json::to_value(row).unwrap_or(Value::Null)
}

/// One user, with the groups and directory roles they hold.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/users/{user}", tag = "inventory", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"), ("user" = Uuid, Path, description = "The user's object id")),
    responses((status = 200, description = "The user", body = crate::schemas::InventoryUserDetail),
        (status = 404, description = "No such user for this key", body = Problem, content_type = PROBLEM)))]
pub async fn get_user(
    caller: Caller,
    ApiPath((id, user)): ApiPath<(OrganizationId, Uuid)>,
) -> Result<Json<Value>, ApiError> {
    let detail = caller.scope().inventory_user(id, user).await?;
    Ok(Json(to_json(detail)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GroupQuery {
    /// Part of the display name or mail (case-insensitive).
    q: Option<String>,
    /// `security`, `m365` or `distribution`.
    kind: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    #[serde(alias = "page_token")]
    cursor: Option<String>,
}

/// The organization's groups.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/groups", tag = "inventory", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"), GroupQuery),
    responses((status = 200, description = "A page of groups", body = Paginated<crate::schemas::InventoryGroup>),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM)))]
pub async fn list_groups(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
    ApiQuery(query): ApiQuery<GroupQuery>,
) -> Result<Json<Paginated<Value>>, ApiError> {
    let page = PageQuery::new(query.limit, query.cursor).to_page()?;
    if let Some(kind) = &query.kind
        && !["security", "m365", "distribution"].contains(&kind.as_str())
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "kind",
            "must be `security`, `m365` or `distribution`",
        )]));
    }
    let filter = GroupFilter {
        q: search_text("q", query.q)?,
        kind: query.kind,
    };
    let rows = caller.scope().inventory_groups(id, &filter, page).await?;
    Ok(Json(Paginated::from_rows(rows, page, |g| g.id, to_json)))
}

/// A group's members.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/groups/{group}/members", tag = "inventory", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"), ("group" = Uuid, Path, description = "The group's object id"), PageQuery),
    responses((status = 200, description = "A page of members", body = Paginated<crate::schemas::GroupMember>),
        (status = 404, description = "No such group for this key", body = Problem, content_type = PROBLEM)))]
pub async fn list_group_members(
    caller: Caller,
    ApiPath((id, group)): ApiPath<(OrganizationId, Uuid)>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paginated<Value>>, ApiError> {
    let page = query.to_page()?;
    let rows = caller
        .scope()
        .inventory_group_members(id, group, page)
        .await?;
    Ok(Json(Paginated::from_rows(rows, page, |m| m.id, to_json)))
}

/// A list that is never paged; documented as [`crate::schemas::Listed`].
#[derive(Serialize)]
pub struct Listed {
    pub data: Vec<Value>,
}

/// Activated directory roles with their members.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/directory-roles", tag = "inventory", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id")),
    responses((status = 200, description = "Roles with members", body = crate::schemas::Listed<crate::schemas::DirectoryRole>),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM)))]
pub async fn list_directory_roles(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
) -> Result<Json<Listed>, ApiError> {
    let roles = caller.scope().inventory_roles(id).await?;
    Ok(Json(Listed {
        data: roles.into_iter().map(to_json).collect(),
    }))
}

/// Users proposed as approvers: holders of Global Administrator, Privileged Role
/// Administrator, User Administrator or Helpdesk Administrator.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/approver-proposals", tag = "inventory", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id")),
    responses((status = 200, description = "Proposed approvers with their roles", body = crate::schemas::Listed<crate::schemas::ApproverProposal>),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM)))]
pub async fn list_approver_proposals(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
) -> Result<Json<Listed>, ApiError> {
    let proposals = caller.scope().approver_proposals(id).await?;
    Ok(Json(Listed {
        data: proposals.into_iter().map(to_json).collect(),
    }))
}

async fn objects(
    caller: &Caller,
    id: OrganizationId,
    section: &str,
    query: PageQuery,
) -> Result<Json<Paginated<Value>>, ApiError> {
    let page = query.to_page()?;
    let rows = caller.scope().inventory_objects(id, section, page).await?;
    Ok(Json(object_page(rows, page)))
}

/// Subscribed SKUs (licences): each with its product name and seats (purchased,
/// assigned, available, unused share), and the SKU as Graph returned it.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/licenses", tag = "inventory", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"), PageQuery),
    responses((status = 200, description = "A page of licences", body = Paginated<crate::schemas::LicenseObject>),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM)))]
pub async fn list_licenses(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paginated<Value>>, ApiError> {
    use tenantry_domain::licences;
    let Json(mut page) = objects(&caller, id, "licenses", query).await?;
    for row in &mut page.data {
        let part = row["data"]["skuPartNumber"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        row["name"] = serde_json::json!(licences::product_name(&part).unwrap_or(&part));
        row["seats"] = to_json(licences::seats(&row["data"]));
    }
    Ok(Json(page))
}

/// Enterprise applications (service principals).
#[utoipa::path(get, path = "/api/v1/organizations/{id}/applications", tag = "inventory", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"), PageQuery),
    responses((status = 200, description = "A page of applications", body = Paginated<crate::schemas::InventoryObject>),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM)))]
pub async fn list_applications(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paginated<Value>>, ApiError> {
    objects(&caller, id, "service_principals", query).await
}

/// Intune managed devices (when the app may read them).
#[utoipa::path(get, path = "/api/v1/organizations/{id}/devices", tag = "inventory", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"), PageQuery),
    responses((status = 200, description = "A page of devices", body = Paginated<crate::schemas::InventoryObject>),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM)))]
pub async fn list_devices(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paginated<Value>>, ApiError> {
    objects(&caller, id, "devices", query).await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MailboxQuery {
    /// `user`, `shared`, `room` or `equipment`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    kind: Option<String>,
    /// Part of the display name or primary address (case-insensitive).
    q: Option<String>,
    /// `outside`: only mailboxes forwarding mail outside the tenant (a classic sign of a
    /// compromised mailbox).
    forwarding: Option<String>,
    /// Rows per page, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Exchange's `RecipientTypeDetails` for a `type` filter value.
fn recipient_type(kind: &str) -> Option<&'static str> {
    match kind {
        "user" => Some("UserMailbox"),
        "shared" => Some("SharedMailbox"),
        "room" => Some("RoomMailbox"),
        "equipment" => Some("EquipmentMailbox"),
        _ => None,
    }
}

/// The organization's Exchange Online mailboxes from the inventory, with their forwarding
/// (`outsideForwardingDomain` is set when mail leaves the tenant).
#[utoipa::path(get, path = "/api/v1/organizations/{id}/mailboxes", tag = "inventory", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"), MailboxQuery),
    responses((status = 200, description = "A page of mailboxes", body = Paginated<crate::schemas::InventoryObject>),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM)))]
pub async fn list_mailboxes(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
    ApiQuery(query): ApiQuery<MailboxQuery>,
) -> Result<Json<Paginated<Value>>, ApiError> {
    let page = PageQuery::new(query.limit, query.cursor).to_page()?;
    let mut errors = Vec::new();
    let recipient = match query.kind.as_deref() {
        None => None,
        Some(kind) => recipient_type(kind).or_else(|| {
            errors.push(FieldError::new(
                "type",
                "must be user, shared, room or equipment",
            ));
            None
        }),
    };
    let forwarding_outside = match query.forwarding.as_deref() {
        None => false,
        Some("outside") => true,
        Some(_) => {
            errors.push(FieldError::new("forwarding", "must be outside"));
            false
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let filter = tenantry_store::inventory::MailboxFilter {
        recipient_type: recipient.map(str::to_owned),
        q: search_text("q", query.q)?,
        forwarding_outside,
    };
    let rows = caller
        .scope()
        .inventory_mailboxes(id, &filter, page)
        .await?;
    Ok(Json(object_page(rows, page)))
}

/// One mailbox by its Exchange guid or primary address.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/mailboxes/{mailbox}", tag = "inventory", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"),
        ("mailbox" = String, Path, description = "The mailbox's Exchange guid or primary address")),
    responses((status = 200, description = "The mailbox", body = crate::schemas::InventoryObject),
        (status = 404, description = "No such organization for this key, or no such mailbox", body = Problem, content_type = PROBLEM)))]
pub async fn get_mailbox(
    caller: Caller,
    ApiPath((id, mailbox)): ApiPath<(OrganizationId, String)>,
) -> Result<Json<Value>, ApiError> {
    if mailbox.len() > 320 {
        return Err(ApiError::NotFound);
    }
    let found = caller.scope().inventory_mailbox(id, &mailbox).await?;
    Ok(Json(to_json(found)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Part of the display name or primary address (case-insensitive).
    q: Option<String>,
    /// Rows per page, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Distribution groups and mail-enabled security groups (Exchange Online), each with
/// its members.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/distribution-groups", tag = "inventory", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"), SearchQuery),
    responses((status = 200, description = "A page of groups", body = Paginated<crate::schemas::InventoryObject>),
        (status = 404, description = "No such organization for this key", body = Problem, content_type = PROBLEM)))]
pub async fn list_distribution_groups(
    caller: Caller,
    ApiPath(id): ApiPath<OrganizationId>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<Paginated<Value>>, ApiError> {
    let page = PageQuery::new(query.limit, query.cursor).to_page()?;
    let q = search_text("q", query.q)?;
    let rows = caller
        .scope()
        .inventory_distribution_groups(id, q.as_deref(), page)
        .await?;
    Ok(Json(object_page(rows, page)))
}

/// The members of one distribution group, as the last discovery run read them.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/distribution-groups/{group}/members", tag = "inventory", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The organization's id"),
        ("group" = Uuid, Path, description = "The group's Exchange guid")),
    responses((status = 200, description = "The members", body = crate::schemas::Listed<crate::schemas::DistributionGroupMember>),
        (status = 404, description = "No such organization for this key, or no such group", body = Problem, content_type = PROBLEM)))]
pub async fn list_distribution_group_members(
    caller: Caller,
    ApiPath((id, group)): ApiPath<(OrganizationId, Uuid)>,
) -> Result<Json<Listed>, ApiError> {
    let found = caller
        .scope()
        .inventory_distribution_group(id, &group.to_string())
        .await?;
    let members = found.data["members"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(Json(Listed { data: members }))
}
