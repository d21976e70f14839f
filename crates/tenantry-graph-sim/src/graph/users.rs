//! `/users`: list (with `$filter` on `mail` and `userPrincipalName`) and get with `$select`
//! and paging, delta rounds, profile and password updates, creation, deletion, session
//! revocation, group memberships, managers, licence assignment, authentication methods and
//! photos, with Microsoft's rules for app-only callers (graph-facts §6).

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::directory::subscribed_skus;
use super::paging;
use super::{Call, Caller, GraphError, Outcome, Reply, context, needs};
use crate::SimState;
use crate::model::methods::DeleteError;
use crate::model::users::{DEFAULT_PROPERTIES, SELECTABLE, project};
use crate::model::{ChangeKind, Tenant};

/// Properties an application can never update (graph-facts §6.6).
const APP_ONLY_FORBIDDEN: [&str; 10] = [
    "aboutMe",
    "birthday",
    "hireDate",
    "interests",
    "mySite",
    "pastProjects",
    "preferredName",
    "responsibilities",
    "schools",
    "skills",
];

const WRITABLE: [&str; 23] = [
    "accountEnabled",
    "businessPhones",
    "city",
    "companyName",
    "country",
    "department",
    "displayName",
    "employeeId",
    "givenName",
    "jobTitle",
    "mail",
    "mailNickname",
    "mobilePhone",
    "officeLocation",
    "otherMails",
    "passwordPolicies",
    "passwordProfile",
    "postalCode",
    "preferredLanguage",
    "state",
    "streetAddress",
    "surname",
    "usageLocation",
];

const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
const PRIVILEGED_AUTH_ADMIN: &str = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13";
const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";

fn select(call: &Call<'_>) -> Result<Option<Vec<String>>, GraphError> {
    let Some(raw) = call.param("$select") else {
        return Ok(None);
    };
    let fields: Vec<String> = raw
        .split(',')
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .collect();
    if let Some(unknown) = fields.iter().find(|f| !SELECTABLE.contains(&f.as_str())) {
        // Wording and code UNVERIFIED.
        return Err(GraphError::bad_request(format!(
            "Could not find a property named '{unknown}' on type 'microsoft.graph.user'."
        )));
    }
    Ok(Some(fields))
}

pub fn route(state: &SimState, caller: &Caller, call: &Call<'_>, segments: &[&str]) -> Outcome {
    match (call.method, &segments[1..]) {
        ("GET", []) => list(state, caller, call),
        ("POST", []) => create(state, caller, call),
        ("GET", ["delta"]) => {
            caller.require(needs::USERS_READ)?;
            let select = select(call)?;
            let world = state.world();
            let tenant = &world.tenants[caller.tenant];
            let render = |index: u32| {
                tenant
                    .users
                    .view(index, select.as_deref())
                    .map(Value::Object)
            };
            let by_id = |id: Uuid| tenant.users.find(&id.to_string()).and_then(&render);
            delta(
                call,
                tenant,
                ChangeKind::User,
                tenant.users.slots(),
                &render,
                &by_id,
                "users",
            )
        }
        (method, [key, rest @ ..]) => {
            let index = {
                let world = state.world();
                world.tenants[caller.tenant].users.find(key)
            };
            let Some(index) = index else {
                caller.require(needs::USERS_READ)?;
                return Err(GraphError::not_found(key));
            };
            match (method, rest) {
                ("GET", []) => get(state, caller, call, index),
                ("PATCH", []) => update(state, caller, call, index),
                ("DELETE", []) => delete(state, caller, index),
                ("POST", ["revokeSignInSessions"]) => {
                    caller.require(needs::USERS_WRITE)?;
                    let mut world = state.world_mut();
                    *world.tenants[caller.tenant]
                        .revoked_sessions
                        .entry(index)
                        .or_default() += 1;
                    // Documented to become 204; answers 200 with `true` today (known issue).
                    Ok(Reply::json(
                        json!({"@odata.context": context(call, "Edm.Boolean"), "value": true}),
                    ))
                }
                // Groups here hold no groups and roles are assigned directly, so the
                // transitive view equals the direct one.
                ("GET", ["memberOf" | "transitiveMemberOf"]) => {
                    member_of(state, caller, call, index)
                }
                ("GET", ["authentication", "methods"]) => {
                    caller.require(needs::METHODS_READ)?;
                    let world = state.world();
                    let tenant = &world.tenants[caller.tenant];
                    let value: Vec<Value> = tenant
                        .methods
                        .list(tenant.prefix, index)
                        .into_iter()
                        .map(|m| Value::Object(m.body))
                        .collect();
                    let ctx = context(
                        call,
                        &format!("users('{}')/authentication/methods", super::encode(key)),
                    );
                    Ok(Reply::json(json!({"@odata.context": ctx, "value": value})))
                }
                ("DELETE", ["authentication", collection, method_id]) => {
                    caller.require(needs::METHODS_WRITE)?;
                    let mut world = state.world_mut();
                    let tenant = &mut world.tenants[caller.tenant];
                    let prefix = tenant.prefix;
                    match tenant.methods.delete(prefix, index, collection, method_id) {
                        Ok(()) => Ok(Reply::no_content()),
                        Err(DeleteError::NotFound) => Err(GraphError::not_found(method_id)),
                        // The message is Microsoft's (MS Q&A 1337439); the code is UNVERIFIED.
                        Err(DeleteError::DefaultWithOthers) => Err(GraphError::new(
                            StatusCode::BAD_REQUEST,
                            "badRequest",
                            "Cannot delete default method with other methods configured. Please change default method before deletion.",
                        )),
                        // The rule is documented (graph-facts §6.3); the status, code and
                        // message of Graph's refusal are UNVERIFIED (the docs' sentence).
                        Err(DeleteError::AlternateMobileNeedsMobile) => Err(GraphError::new(
                            StatusCode::BAD_REQUEST,
                            "badRequest",
                            "A user can't have an alternateMobile number without a mobile number. Delete the alternateMobile number first.",
                        )),
                    }
                }
                ("PUT" | "PATCH", ["photo", "$value"]) => photo(state, caller, call, index),
                ("GET", ["manager"]) => manager(state, caller, call, index),
                ("PUT", ["manager", "$ref"]) => set_manager(state, caller, call, index),
                ("DELETE", ["manager", "$ref"]) => remove_manager(state, caller, index),
                (_, ["manager", ..]) => Err(GraphError::method_not_allowed()),
                ("POST", ["assignLicense"]) => assign_license(state, caller, call, index),
                (_, ["assignLicense"]) => Err(GraphError::method_not_allowed()),
                ("GET" | "PATCH" | "POST" | "PUT" | "DELETE", [other, ..]) if !other.is_empty() => {
                    Err(GraphError::no_segment(other))
                }
                _ => Err(GraphError::method_not_allowed()),
            }
        }
        _ => Err(GraphError::method_not_allowed()),
    }
}

fn list(state: &SimState, caller: &Caller, call: &Call<'_>) -> Outcome {
    caller.require(needs::USERS_READ)?;
    let select = select(call)?;
    let top = paging::top(call, 100, 999)?;
    let start = paging::start(call)?;
    let world = state.world();
    let tenant = &world.tenants[caller.tenant];
    if let Some(filter) = call.param("$filter").and_then(parse_filter) {
        let found = match filter {
            Filter::Mail(mail) => tenant.users.find_by_mail(&mail),
            Filter::Upn(upn) => tenant.users.find_by_upn(&upn).into_iter().collect(),
        };
        return Ok(filtered_page(
            call,
            tenant,
            &found,
            select.as_deref(),
            start,
            top,
        ));
    }
    let slots = tenant.users.slots() as usize;
    let mut value = Vec::with_capacity(top);
    let mut next = start;
    while next < slots && value.len() < top {
        if let Some(user) = tenant
            .users
            .view(u32::try_from(next).unwrap_or(u32::MAX), select.as_deref())
        {
            value.push(Value::Object(user));
        }
        next += 1;
    }
    let mut body = json!({"@odata.context": context(call, "users"), "value": value});
    if next < slots {
        body["@odata.nextLink"] = json!(paging::next_link(call, next));
    }
    Ok(Reply::json(body))
}

/// The `$filter`s `GET /users` answers; any other filter is ignored, as before.
#[derive(Debug, PartialEq, Eq)]
enum Filter {
    Mail(String),
    Upn(String),
}

/// `mail eq 'v'` / `userPrincipalName eq 'v'` (a quote inside the literal is doubled, as
/// in OData); `None` for anything else.
fn parse_filter(filter: &str) -> Option<Filter> {
    let (property, rest) = filter.trim().split_once(' ')?;
    let (operator, literal) = rest.trim_start().split_once(' ')?;
    if !operator.eq_ignore_ascii_case("eq") {
        return None;
    }
    let value = string_literal(literal.trim())?;
    if property.eq_ignore_ascii_case("mail") {
        Some(Filter::Mail(value))
    } else if property.eq_ignore_ascii_case("userPrincipalName") {
        Some(Filter::Upn(value))
    } else {
        None
    }
}

/// `'o''brien'` → `o'brien`; `None` unless the text is one quoted OData string.
fn string_literal(text: &str) -> Option<String> {
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut value = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\'' && chars.next() != Some('\'') {
            return None;
        }
        value.push(c);
    }
    Some(value)
}

/// One page of a filtered listing: a window over the matching indices.
fn filtered_page(
    call: &Call<'_>,
    tenant: &Tenant,
    found: &[u32],
    select: Option<&[String]>,
    start: usize,
    top: usize,
) -> Reply {
    let value: Vec<Value> = found
        .iter()
        .skip(start)
        .take(top)
        .filter_map(|index| tenant.users.view(*index, select))
        .map(Value::Object)
        .collect();
    let mut body = json!({"@odata.context": context(call, "users"), "value": value});
    if start + top < found.len() {
        body["@odata.nextLink"] = json!(paging::next_link(call, start + top));
    }
    Reply::json(body)
}

fn get(state: &SimState, caller: &Caller, call: &Call<'_>, index: u32) -> Outcome {
    caller.require(needs::USERS_READ)?;
    let select = select(call)?;
    let world = state.world();
    let mut body = world.tenants[caller.tenant]
        .users
        .view(index, select.as_deref())
        .ok_or_else(|| GraphError::not_found(&index.to_string()))?;
    body.insert(
        "@odata.context".into(),
        json!(context(call, "users/$entity")),
    );
    Ok(Reply::json(Value::Object(body)))
}

/// The template ids of the directory roles the calling service principal holds.
fn caller_roles(tenant: &Tenant, caller: &Caller) -> Vec<String> {
    tenant
        .apps
        .iter()
        .filter_map(|a| a.sp.as_ref())
        .find(|sp| sp.id == caller.sp_id)
        .map(|sp| sp.directory_roles.iter().map(Uuid::to_string).collect())
        .unwrap_or_default()
}

/// App-only password reset needs User Administrator or higher on the service principal,
/// and Privileged Authentication Administrator (or Global Administrator) when the target
/// holds an admin role (graph-facts §6.2; whether Helpdesk or Password Administrator also
/// suffice is UNVERIFIED and not accepted here).
fn may_reset_password(tenant: &Tenant, caller: &Caller, target: u32) -> bool {
    let roles = caller_roles(tenant, caller);
    let has = |template: &str| roles.iter().any(|r| r == template);
    if tenant.is_privileged(target) {
        has(GLOBAL_ADMIN) || has(PRIVILEGED_AUTH_ADMIN)
    } else {
        has(GLOBAL_ADMIN) || has(PRIVILEGED_AUTH_ADMIN) || has(USER_ADMIN)
    }
}

fn password_is_complex(password: &str) -> bool {
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    (8..=256).contains(&password.chars().count()) && classes.iter().filter(|c| **c).count() >= 3
}

fn complexity_error() -> GraphError {
    // Wording as commonly reported; code UNVERIFIED.
    GraphError::bad_request(
        "The specified password does not comply with password complexity requirements. Please provide a different password.",
    )
}

/// A two-letter country code in capitals (ISO 3166-1 alpha-2, graph-facts §6.6).
fn is_usage_location(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|v| v.len() == 2 && v.chars().all(|c| c.is_ascii_uppercase()))
}

fn usage_location_error() -> GraphError {
    // Wording and code UNVERIFIED.
    GraphError::bad_request(
        "Invalid value specified for property 'usageLocation' of resource 'User'.",
    )
}

fn update(state: &SimState, caller: &Caller, call: &Call<'_>, index: u32) -> Outcome {
    caller.require(needs::USERS_WRITE)?;
    let patch = call.json_body()?;
    let mut world = state.world_mut();
    let tenant = &mut world.tenants[caller.tenant];
    let privileged = tenant.is_privileged(index);
    for (key, value) in &patch {
        if APP_ONLY_FORBIDDEN.contains(&key.as_str()) {
            return Err(GraphError::denied());
        }
        if !WRITABLE.contains(&key.as_str()) && key != "userPrincipalName" {
            return Err(GraphError::bad_request(format!(
                "Property '{key}' is read-only or does not exist on type 'microsoft.graph.user'."
            )));
        }
        // Phones and other mails of administrators are off limits (graph-facts §6.6).
        if privileged
            && matches!(
                key.as_str(),
                "businessPhones" | "mobilePhone" | "otherMails"
            )
        {
            return Err(GraphError::denied());
        }
        if key == "businessPhones" && value.as_array().is_some_and(|a| a.len() > 1) {
            return Err(GraphError::bad_request(
                "Only one business phone number can be set.",
            ));
        }
        if key == "usageLocation" && !is_usage_location(value) {
            return Err(usage_location_error());
        }
    }
    if let Some(profile) = patch.get("passwordProfile") {
        if !may_reset_password(tenant, caller, index) {
            return Err(GraphError::denied());
        }
        let password = profile
            .get("password")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !password_is_complex(password) {
            return Err(complexity_error());
        }
    }
    // Disabling an administrator needs a privileged role too (UNVERIFIED, plausible).
    if privileged && patch.get("accountEnabled") == Some(&json!(false)) {
        let roles = caller_roles(tenant, caller);
        if !roles
            .iter()
            .any(|r| r == GLOBAL_ADMIN || r == PRIVILEGED_AUTH_ADMIN)
        {
            return Err(GraphError::denied());
        }
    }
    let mut user = tenant
        .users
        .at(index)
        .ok_or_else(|| GraphError::not_found(&index.to_string()))?;
    for (key, value) in patch {
        if key == "passwordProfile" {
            // Never stored in a readable form; sessions end with a new password.
            *tenant.revoked_sessions.entry(index).or_default() += 1;
            continue;
        }
        user.insert(key, value);
    }
    let id = tenant.users.id_at(index);
    tenant.users.replace(index, user);
    tenant.record_change(ChangeKind::User, id, false);
    Ok(Reply::no_content())
}

fn create(state: &SimState, caller: &Caller, call: &Call<'_>) -> Outcome {
    caller.require(needs::USERS_WRITE)?;
    let body = call.json_body()?;
    for required in [
        "accountEnabled",
        "displayName",
        "mailNickname",
        "userPrincipalName",
        "passwordProfile",
    ] {
        if !body.contains_key(required) {
            return Err(GraphError::bad_request(format!(
                "Invalid value specified for property '{required}' of resource 'User'."
            )));
        }
    }
    if body
        .get("usageLocation")
        .is_some_and(|v| !is_usage_location(v))
    {
        return Err(usage_location_error());
    }
    let upn = body["userPrincipalName"].as_str().unwrap_or("").to_owned();
    let mut world = state.world_mut();
    let tenant = &mut world.tenants[caller.tenant];
    let domain_ok = upn.split_once('@').is_some_and(|(local, host)| {
        !local.is_empty() && tenant.domains.iter().any(|d| d.eq_ignore_ascii_case(host))
    });
    if !domain_ok {
        return Err(GraphError::bad_request(
            "Property userPrincipalName is invalid. The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.",
        ));
    }
    if tenant.users.upn_taken(&upn) {
        return Err(GraphError::bad_request(
            "Another object with the same value for property userPrincipalName already exists.",
        ));
    }
    let password = body["passwordProfile"]
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !password_is_complex(password) {
        return Err(complexity_error());
    }
    let mut user = Map::new();
    for field in DEFAULT_PROPERTIES {
        user.insert(
            field.to_owned(),
            body.get(field).cloned().unwrap_or(Value::Null),
        );
    }
    if !body.contains_key("businessPhones") {
        user.insert("businessPhones".into(), json!([]));
    }
    for (key, value) in &body {
        // Licences come only through assignLicense.
        if key != "passwordProfile"
            && key != "assignedLicenses"
            && SELECTABLE.contains(&key.as_str())
        {
            user.insert(key.clone(), value.clone());
        }
    }
    user.insert("assignedLicenses".into(), json!([]));
    user.insert(
        "createdDateTime".into(),
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    );
    user.insert("userType".into(), json!("Member"));
    let (_, created) = tenant.users.create(user);
    let id = created["id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_default();
    tenant.record_change(ChangeKind::User, id, false);
    let mut response = project(&created, None);
    response.insert(
        "@odata.context".into(),
        json!(context(call, "users/$entity")),
    );
    Ok(Reply::created(Value::Object(response)))
}

fn delete(state: &SimState, caller: &Caller, index: u32) -> Outcome {
    caller.require(needs::USERS_WRITE)?;
    let mut world = state.world_mut();
    let tenant = &mut world.tenants[caller.tenant];
    if tenant.is_privileged(index)
        && !caller_roles(tenant, caller)
            .iter()
            .any(|r| r == GLOBAL_ADMIN || r == PRIVILEGED_AUTH_ADMIN)
    {
        return Err(GraphError::denied());
    }
    let id = tenant.users.id_at(index);
    tenant.users.delete(index);
    for group in &mut tenant.groups {
        group.members.retain(|m| *m != id);
    }
    tenant.record_change(ChangeKind::User, id, true);
    Ok(Reply::no_content())
}

fn member_of(state: &SimState, caller: &Caller, call: &Call<'_>, index: u32) -> Outcome {
    if !caller.has_any(needs::USERS_READ) {
        caller.require(needs::GROUPS_READ)?;
    }
    let world = state.world();
    let tenant = &world.tenants[caller.tenant];
    let id = tenant.users.id_at(index);
    let mut value: Vec<Value> = tenant
        .groups
        .iter()
        .filter(|g| g.members.contains(&id))
        .map(|g| {
            let mut group = super::groups::group_json(g);
            group.insert("@odata.type".into(), json!("#microsoft.graph.group"));
            Value::Object(group)
        })
        .collect();
    for role in tenant
        .roles
        .iter()
        .filter(|r| r.user_members.contains(&index))
    {
        value.push(json!({"@odata.type": "#microsoft.graph.directoryRole", "id": role.id, "deletedDateTime": null,
            "description": role.description, "displayName": role.display_name, "roleTemplateId": role.template_id}));
    }
    Ok(Reply::json(
        json!({"@odata.context": context(call, "directoryObjects"), "value": value}),
    ))
}

/// `GET /users/{id}/manager`: the manager as a directory object (default properties or
/// `$select`), 404 `Request_ResourceNotFound` naming `manager` when none is set. The whole
/// manager shape is UNVERIFIED (graph-facts §6.6; DOCS user-list-manager.md).
fn manager(state: &SimState, caller: &Caller, call: &Call<'_>, index: u32) -> Outcome {
    caller.require(needs::USERS_READ)?;
    let select = select(call)?;
    let world = state.world();
    let users = &world.tenants[caller.tenant].users;
    let mut body = users
        .manager_of(index)
        .and_then(|manager| users.view(manager, select.as_deref()))
        .ok_or_else(|| GraphError::not_found("manager"))?;
    body.insert(
        "@odata.context".into(),
        json!(context(call, "directoryObjects/$entity")),
    );
    body.insert("@odata.type".into(), json!("#microsoft.graph.user"));
    Ok(Reply::json(Value::Object(body)))
}

/// `PUT /users/{id}/manager/$ref` with `{"@odata.id": ".../users/{managerId}"}` (or
/// `.../directoryObjects/{managerId}`): 204. UNVERIFIED: the 400 for a user as their own
/// manager and the wording of a malformed reference.
fn set_manager(state: &SimState, caller: &Caller, call: &Call<'_>, index: u32) -> Outcome {
    caller.require(needs::USERS_WRITE)?;
    let body = call.json_body()?;
    let key = reference_key(&body)?;
    let mut world = state.world_mut();
    let tenant = &mut world.tenants[caller.tenant];
    let manager = tenant
        .users
        .find(&key)
        .ok_or_else(|| GraphError::not_found(&key))?;
    if manager == index {
        return Err(GraphError::bad_request(
            "Invalid reference: a user cannot be their own manager.",
        ));
    }
    tenant.users.set_manager(index, manager);
    let id = tenant.users.id_at(index);
    tenant.record_change(ChangeKind::User, id, false);
    Ok(Reply::no_content())
}

/// The object key at the end of a reference body's `@odata.id`
/// (`…/users/{key}` or `…/directoryObjects/{key}`).
fn reference_key(body: &Map<String, Value>) -> Result<String, GraphError> {
    let reference = body.get("@odata.id").and_then(Value::as_str).unwrap_or("");
    let mut tail = reference.trim_end_matches('/').rsplit('/');
    match (tail.next(), tail.next()) {
        (Some(key), Some("users" | "directoryObjects")) if !key.is_empty() => {
            Ok(super::decode(key))
        }
        // Wording UNVERIFIED (the one group references use).
        _ => Err(GraphError::bad_request(format!(
            "Invalid object identifier '{reference}'."
        ))),
    }
}

/// `DELETE /users/{id}/manager/$ref`: 204; 404 `Request_ResourceNotFound` naming `manager`
/// when none is set (UNVERIFIED).
fn remove_manager(state: &SimState, caller: &Caller, index: u32) -> Outcome {
    caller.require(needs::USERS_WRITE)?;
    let mut world = state.world_mut();
    let tenant = &mut world.tenants[caller.tenant];
    if !tenant.users.remove_manager(index) {
        return Err(GraphError::not_found("manager"));
    }
    let id = tenant.users.id_at(index);
    tenant.record_change(ChangeKind::User, id, false);
    Ok(Reply::no_content())
}

/// A GUID as sent (for messages) and parsed (for comparisons).
struct Guid {
    raw: String,
    id: Uuid,
}

/// One entry of `addLicenses`.
struct AddLicense {
    sku: Guid,
    disabled: Vec<Uuid>,
}

/// An `assignLicense` body.
struct LicenseChanges {
    add: Vec<AddLicense>,
    remove: Vec<Guid>,
}

/// `addLicenses` and `removeLicenses`, both required. Wording UNVERIFIED.
fn license_changes(body: &Map<String, Value>) -> Result<LicenseChanges, GraphError> {
    let missing: Vec<&str> = ["addLicenses", "removeLicenses"]
        .into_iter()
        .filter(|name| !body.get(*name).is_some_and(Value::is_array))
        .collect();
    if !missing.is_empty() {
        return Err(GraphError::bad_request(format!(
            "One or more parameters of the function import 'assignLicense' are missing from the request payload. The missing parameters are: {}.",
            missing.join(", ")
        )));
    }
    let invalid = |property: &str| {
        GraphError::bad_request(format!(
            "Invalid value specified for property '{property}' of resource 'AssignedLicense'."
        ))
    };
    let guid = |value: &Value, property: &str| {
        value
            .as_str()
            .and_then(|raw| {
                let id = Uuid::parse_str(raw).ok()?;
                Some(Guid {
                    raw: raw.to_owned(),
                    id,
                })
            })
            .ok_or_else(|| invalid(property))
    };
    let mut add = Vec::new();
    let list = |name: &str| {
        body.get(name)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    };
    for license in list("addLicenses") {
        let sku = guid(&license["skuId"], "skuId")?;
        let disabled = match &license["disabledPlans"] {
            Value::Null => Vec::new(),
            Value::Array(plans) => plans
                .iter()
                .map(|p| guid(p, "disabledPlans").map(|plan| plan.id))
                .collect::<Result<_, _>>()?,
            _ => return Err(invalid("disabledPlans")),
        };
        add.push(AddLicense { sku, disabled });
    }
    let remove = list("removeLicenses")
        .map(|sku| guid(sku, "removeLicenses"))
        .collect::<Result<_, _>>()?;
    Ok(LicenseChanges { add, remove })
}

fn sku_of(license: &Value) -> Option<Uuid> {
    license["skuId"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
}

/// `POST /users/{id}/assignLicense` (DOCS user-assignlicense.md): removes, then adds
/// (re-adding a SKU replaces its disabled plans) and answers 200 with the user. Adding
/// needs a usage location; every SKU must be one of the tenant's subscribed SKUs. The
/// messages are Microsoft's as reported; their code `Request_BadRequest` is UNVERIFIED, as
/// is the order of the checks and the 400 for removing a licence the user lacks.
fn assign_license(state: &SimState, caller: &Caller, call: &Call<'_>, index: u32) -> Outcome {
    caller.require(needs::LICENSES_WRITE)?;
    let body = call.json_body()?;
    let LicenseChanges { add, remove } = license_changes(&body)?;
    let mut world = state.world_mut();
    let tenant = &mut world.tenants[caller.tenant];
    let mut user = tenant
        .users
        .at(index)
        .ok_or_else(|| GraphError::not_found(&index.to_string()))?;
    if !add.is_empty() && !user.get("usageLocation").is_some_and(is_usage_location) {
        return Err(GraphError::bad_request(
            "License assignment cannot be done for user with invalid usage location.",
        ));
    }
    let subscribed: Vec<Uuid> = subscribed_skus(tenant)
        .iter()
        .filter_map(|(sku, _, _)| Uuid::parse_str(sku).ok())
        .collect();
    for sku in add.iter().map(|l| &l.sku).chain(&remove) {
        if !subscribed.contains(&sku.id) {
            return Err(GraphError::bad_request(format!(
                "License {} does not correspond to a valid company License.",
                sku.raw
            )));
        }
    }
    let mut assigned: Vec<Value> = user
        .get("assignedLicenses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for sku in &remove {
        let before = assigned.len();
        assigned.retain(|l| sku_of(l) != Some(sku.id));
        if assigned.len() == before {
            return Err(GraphError::bad_request(
                "User does not have a corresponding license.",
            ));
        }
    }
    for license in add {
        assigned.retain(|l| sku_of(l) != Some(license.sku.id));
        assigned.push(json!({"disabledPlans": license.disabled, "skuId": license.sku.id}));
    }
    user.insert("assignedLicenses".into(), Value::Array(assigned));
    let mut response = project(&user, None);
    tenant.users.replace(index, user);
    let id = tenant.users.id_at(index);
    tenant.record_change(ChangeKind::User, id, false);
    response.insert(
        "@odata.context".into(),
        json!(context(call, "users/$entity")),
    );
    Ok(Reply::json(Value::Object(response)))
}

/// Profile photos: JPEG or PNG, at most 4 MB (graph-facts §6.8). Answers 200 as the docs
/// of the reference version say (newer docs may say 204: UNVERIFIED).
fn photo(state: &SimState, caller: &Caller, call: &Call<'_>, index: u32) -> Outcome {
    caller.require(&["User.ReadWrite.All"])?;
    let content_type = call.content_type.as_deref().unwrap_or("");
    if !content_type.starts_with("image/jpeg") && !content_type.starts_with("image/png") {
        return Err(GraphError::bad_request(
            "Content-Type must be image/jpeg or image/png.",
        ));
    }
    if call.body.len() > 4 * 1024 * 1024 {
        return Err(GraphError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestBodyTooLarge",
            "The request body is larger than 4 MB.",
        ));
    }
    if call.body.is_empty() {
        return Err(GraphError::bad_request("The photo is empty."));
    }
    state.world_mut().tenants[caller.tenant]
        .photos
        .insert(index, call.body.len());
    Ok(Reply {
        status: StatusCode::OK,
        body: None,
    })
}

/// Delta rounds over one kind of object: a full pass (pages, then a delta link), then the
/// objects changed since the token, with `@removed` for deleted ones (graph-facts §7.2).
pub fn delta(
    call: &Call<'_>,
    tenant: &Tenant,
    kind: ChangeKind,
    slots: u32,
    render: &dyn Fn(u32) -> Option<Value>,
    by_id: &dyn Fn(Uuid) -> Option<Value>,
    ctx: &str,
) -> Outcome {
    let top = paging::top(call, 200, 999)?;
    let invalid =
        || GraphError::bad_request("The specified delta token value has expired or is invalid.");
    let state = match (call.param("$skiptoken"), call.param("$deltatoken")) {
        (Some(token), _) => paging::decode_token(token).ok_or_else(invalid)?,
        (None, Some(token)) => {
            let since = paging::decode_token(token)
                .and_then(|t| t.strip_prefix("s:").map(str::to_owned))
                .ok_or_else(invalid)?;
            format!("c:0:{since}:{}", tenant.seq)
        }
        (None, None) => format!("f:0:{}", tenant.seq),
    };
    let parts: Vec<&str> = state.split(':').collect();
    let number = |i: usize| {
        parts
            .get(i)
            .and_then(|p| p.parse::<u64>().ok())
            .ok_or_else(invalid)
    };
    let mut value = Vec::new();
    let (next_state, done_seq) = match parts.first() {
        Some(&"f") => {
            let (mut next, seq) = (number(1)?, number(2)?);
            while next < u64::from(slots) && value.len() < top {
                if let Some(object) = render(u32::try_from(next).unwrap_or(u32::MAX)) {
                    value.push(object);
                }
                next += 1;
            }
            if next < u64::from(slots) {
                (Some(format!("f:{next}:{seq}")), seq)
            } else {
                (None, seq)
            }
        }
        Some(&"c") => {
            let (offset, since, until) = (number(1)?, number(2)?, number(3)?);
            let mut latest: Vec<(Uuid, bool)> = Vec::new();
            for change in tenant
                .changes
                .iter()
                .filter(|c| c.kind == kind && c.seq > since && c.seq <= until)
            {
                latest.retain(|(id, _)| *id != change.id);
                latest.push((change.id, change.removed));
            }
            let offset = usize::try_from(offset).unwrap_or(usize::MAX);
            for (id, removed) in latest.iter().skip(offset).take(top) {
                match (removed, by_id(*id)) {
                    (false, Some(object)) => value.push(object),
                    _ => value.push(json!({"id": id, "@removed": {"reason": "changed"}})),
                }
            }
            let next = offset + top;
            if next < latest.len() {
                (Some(format!("c:{next}:{since}:{until}")), until)
            } else {
                (None, until)
            }
        }
        _ => return Err(invalid()),
    };
    let mut body = json!({"@odata.context": context(call, ctx), "value": value});
    match next_state {
        Some(state) => {
            body["@odata.nextLink"] = json!(paging::link_with(
                call,
                "$skiptoken",
                &paging::encode_token(&state)
            ))
        }
        None => {
            body["@odata.deltaLink"] = json!(paging::link_with(
                call,
                "$deltatoken",
                &paging::encode_token(&format!("s:{done_seq}"))
            ))
        }
    }
    Ok(Reply::json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_on_mail_and_upn_parse_with_doubled_quotes() {
        assert_eq!(
            parse_filter("mail eq 'Adele.Vance1@contoso.onmicrosoft.com'"),
            Some(Filter::Mail("Adele.Vance1@contoso.onmicrosoft.com".into()))
        );
        assert_eq!(
            parse_filter(" userPrincipalName  eq 'o''brien@contoso.example' "),
            Some(Filter::Upn("o'brien@contoso.example".into()))
        );
        assert_eq!(
            parse_filter("userprincipalname EQ ''''"),
            Some(Filter::Upn("'".into()))
        );
        for other in [
            "mail eq 'a'b'",
            "mail eq 'open",
            "mail eq unquoted",
            "mail ne 'x'",
            "startswith(mail,'x')",
            "displayName eq 'x'",
            "accountEnabled eq true",
        ] {
            assert_eq!(parse_filter(other), None, "{other}");
        }
    }
}
