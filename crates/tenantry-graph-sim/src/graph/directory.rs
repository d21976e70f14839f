//! Directory-level resources: organization, domains, service principals and their app role
//! assignments, applications (secret expiry), role assignments, directory roles, licences,
//! managed devices and risky users.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::paging;
use super::{Call, Caller, GraphError, Outcome, Reply, context, needs};
use crate::SimState;
use crate::model::{RISKY_MODULUS, RISKY_REMAINDER, Tenant, ids};
use crate::permissions::{self, GRAPH_APP_ID};

/// `servicePrincipals(appId='x')` → (`servicePrincipals`, Some((`appId`, `x`))).
pub fn split_key(segment: &str) -> (&str, Option<(&str, &str)>) {
    match segment.split_once('(') {
        Some((name, rest)) => {
            let inner = rest.trim_end_matches(')');
            match inner.split_once('=') {
                Some((key, value)) => (name, Some((key, value.trim_matches('\'')))),
                None => (name, Some(("id", inner.trim_matches('\'')))),
            }
        }
        None => (segment, None),
    }
}

/// `appId eq 'x'` → `x` for the property `name`; other filters are not supported.
fn eq_filter<'a>(call: &'a Call<'_>, name: &str) -> Result<Option<&'a str>, GraphError> {
    let Some(filter) = call.param("$filter") else {
        return Ok(None);
    };
    let unsupported = || {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Unsupported Query.",
        )
    };
    let (property, value) = filter.split_once(" eq ").ok_or_else(unsupported)?;
    if property.trim() != name {
        return Err(unsupported());
    }
    Ok(Some(value.trim().trim_matches('\'')))
}

pub fn route(state: &SimState, caller: &Caller, call: &Call<'_>, segments: &[&str]) -> Outcome {
    if call.method == "POST" && segments == ["identityProtection", "riskyUsers", "dismiss"] {
        return dismiss_risk(state, caller, call);
    }
    if call.method != "GET" {
        return Err(GraphError::method_not_allowed());
    }
    let world = state.world();
    let tenant = &world.tenants[caller.tenant];
    let first = split_key(segments[0]);
    match (first, &segments[1..]) {
        (("organization", None), []) => {
            caller.require(needs::ORGANIZATION_READ)?;
            Ok(Reply::json(
                json!({"@odata.context": context(call, "organization"), "value": [organization(tenant)]}),
            ))
        }
        (("organization", None), [id]) => {
            caller.require(needs::ORGANIZATION_READ)?;
            if Uuid::parse_str(id).ok() != Some(tenant.id) {
                return Err(GraphError::not_found(id));
            }
            let mut body = object(organization(tenant));
            body.insert(
                "@odata.context".into(),
                json!(context(call, "organization/$entity")),
            );
            Ok(Reply::json(Value::Object(body)))
        }
        (("domains", None), []) => {
            caller.require(needs::DOMAINS_READ)?;
            let value: Vec<Value> = tenant
                .domains
                .iter()
                .enumerate()
                .map(|(i, d)| domain(d, i))
                .collect();
            Ok(Reply::json(
                json!({"@odata.context": context(call, "domains"), "value": value}),
            ))
        }
        (("servicePrincipals", None), []) => list_service_principals(tenant, caller, call),
        (("servicePrincipals", key), rest) => {
            service_principal(tenant, caller, call, key, segments[0], rest)
        }
        (("applications", Some(("appId", app_id))), []) => {
            application(tenant, caller, call, app_id)
        }
        (("roleManagement", None), ["directory", "roleAssignments"]) => {
            role_assignments(tenant, caller, call)
        }
        (("directoryRoles", None), []) => {
            caller.require(needs::ROLES_READ)?;
            let value: Vec<Value> = tenant.roles.iter().map(directory_role).collect();
            Ok(Reply::json(
                json!({"@odata.context": context(call, "directoryRoles"), "value": value}),
            ))
        }
        (("directoryRoles", key), ["members"]) => {
            role_members(tenant, caller, call, key, segments[0])
        }
        // The id as its own segment (`/directoryRoles/{id}/members`), as Graph also accepts.
        (("directoryRoles", None), [id, "members"]) => {
            role_members(tenant, caller, call, Some(("id", id)), id)
        }
        (("subscribedSkus", None), []) => {
            caller.require(needs::ORGANIZATION_READ)?;
            Ok(Reply::json(
                json!({"@odata.context": context(call, "subscribedSkus"), "value": skus(tenant)}),
            ))
        }
        (("deviceManagement", None), ["managedDevices"]) => managed_devices(tenant, caller, call),
        (("identityProtection", None), ["riskyUsers"]) => risky_users(tenant, caller, call),
        ((name, _), _) => Err(GraphError::no_segment(
            segments.last().copied().unwrap_or(name),
        )),
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn organization(tenant: &Tenant) -> Value {
    let verified: Vec<Value> = tenant
        .domains
        .iter()
        .enumerate()
        .map(|(i, name)| json!({"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": i == 0, "isInitial": i == 0, "name": name, "type": "Managed"}))
        .collect();
    json!({
        "id": tenant.organization_id,
        "deletedDateTime": null,
        "businessPhones": ["425-555-0100"],
        "city": null,
        "country": null,
        "countryLetterCode": "US",
        "createdDateTime": "2021-08-02T10:30:06Z",
        "defaultUsageLocation": "US",
        "displayName": tenant.display_name,
        "isMultipleDataLocationsForServicesEnabled": null,
        "marketingNotificationEmails": [],
        "onPremisesLastSyncDateTime": null,
        "onPremisesSyncEnabled": null,
        "partnerTenantType": null,
        "postalCode": null,
        "preferredLanguage": "en",
        "securityComplianceNotificationMails": [],
        "securityComplianceNotificationPhones": [],
        "state": null,
        "street": null,
        "technicalNotificationMails": [format!("admin@{}", tenant.initial_domain())],
        "tenantType": "AAD",
        "directorySizeQuota": {"used": tenant.users.slots() + 50, "total": 50000},
        "assignedPlans": [],
        "privacyProfile": {"contactEmail": "", "statementUrl": ""},
        "provisionedPlans": [],
        "verifiedDomains": verified,
    })
}

fn domain(name: &str, index: usize) -> Value {
    json!({
        "authenticationType": "Managed",
        "availabilityStatus": null,
        "isAdminManaged": true,
        "isDefault": index == 0,
        "isInitial": index == 0,
        "isRoot": true,
        "isVerified": true,
        "id": name,
        "supportedServices": ["Email", "OfficeCommunicationsOnline"],
    })
}

/// The Microsoft Graph service principal of this tenant, with the app roles the
/// reference file lists (the real one has hundreds).
fn graph_service_principal(tenant: &Tenant) -> Value {
    let mut roles: Vec<(&str, Uuid)> = permissions::all().collect();
    roles.sort();
    let app_roles: Vec<Value> = roles
        .into_iter()
        .map(|(value, id)| json!({"allowedMemberTypes": ["Application"], "description": value, "displayName": value, "id": id, "isEnabled": true, "origin": "Application", "value": value}))
        .collect();
    json!({
        "id": tenant.graph_sp_id,
        "deletedDateTime": null,
        "accountEnabled": true,
        "appDisplayName": "Microsoft Graph",
        "appId": GRAPH_APP_ID,
        "appOwnerOrganizationId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
        "appRoleAssignmentRequired": false,
        "appRoles": app_roles,
        "displayName": "Microsoft Graph",
        "servicePrincipalType": "Application",
        "signInAudience": "AzureADMultipleOrgs",
        "tags": [],
    })
}

/// The Office 365 Exchange Online service principal, present in every tenant, with its
/// `Exchange.ManageAsApp` app role (graph-facts-next §2.1).
fn exchange_service_principal(tenant: &Tenant) -> Value {
    use crate::model::exchange::{EXCHANGE_APP_ID, MANAGE_AS_APP, MANAGE_AS_APP_ID};
    json!({
        "id": tenant.exchange_sp_id,
        "deletedDateTime": null,
        "accountEnabled": true,
        "appDisplayName": "Office 365 Exchange Online",
        "appId": EXCHANGE_APP_ID,
        "appOwnerOrganizationId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
        "appRoleAssignmentRequired": false,
        "appRoles": [{"allowedMemberTypes": ["Application"], "description": "Allows the app to manage the organization's Exchange environment without any user interaction. This includes mailboxes, groups, and other configuration objects. To enable management actions, an admin must assign the appropriate roles directly to the app.",
            "displayName": "Manage Exchange As Application", "id": MANAGE_AS_APP_ID, "isEnabled": true, "origin": "Application", "value": MANAGE_AS_APP}],
        "displayName": "Office 365 Exchange Online",
        "servicePrincipalType": "Application",
        "signInAudience": "AzureADMultipleOrgs",
        "tags": [],
    })
}

fn app_service_principal(
    tenant: &Tenant,
    app: &crate::model::App,
    sp: &crate::model::ServicePrincipal,
) -> Value {
    json!({
        "id": sp.id,
        "deletedDateTime": null,
        "accountEnabled": true,
        "addIns": [],
        "alternativeNames": [],
        "appDisplayName": app.display_name,
        "appId": app.client_id,
        "appOwnerOrganizationId": app.home.unwrap_or(tenant.id),
        "appRoleAssignmentRequired": false,
        "appRoles": [],
        "disabledByMicrosoftStatus": null,
        "displayName": app.display_name,
        "endpoints": [],
        "homepage": null,
        "info": {"termsOfServiceUrl": null, "supportUrl": null, "privacyStatementUrl": null, "marketingUrl": null, "logoUrl": null},
        "keyCredentials": [],
        "logoutUrl": null,
        "oauth2PermissionScopes": [],
        "passwordCredentials": [],
        "publisherName": app.publisher,
        "replyUrls": [],
        "resourceSpecificApplicationPermissions": [],
        "servicePrincipalNames": [app.client_id],
        "servicePrincipalType": "Application",
        "signInAudience": app.sign_in_audience.as_str(),
        "tags": [],
        "tokenEncryptionKeyId": null,
    })
}

/// Every service principal of the tenant Graph shows: Microsoft Graph first, then the
/// apps' (not those still replicating, nor those a consent has not created yet).
fn all_service_principals(tenant: &Tenant) -> Vec<(Uuid, String, Value)> {
    let mut all = vec![(
        tenant.graph_sp_id,
        GRAPH_APP_ID.to_owned(),
        graph_service_principal(tenant),
    )];
    all.push((
        tenant.exchange_sp_id,
        crate::model::exchange::EXCHANGE_APP_ID.to_owned(),
        exchange_service_principal(tenant),
    ));
    let now = chrono::Utc::now();
    for app in &tenant.apps {
        if let Some(sp) = app.sp_at(now).filter(|sp| !sp.not_yet_in_graph) {
            all.push((
                sp.id,
                app.client_id.to_string(),
                app_service_principal(tenant, app, sp),
            ));
        }
    }
    all
}

/// An app may always read its own service principal (graph-facts §3).
fn may_read_sp(caller: &Caller, sp_id: Uuid) -> Result<(), GraphError> {
    if sp_id == caller.sp_id {
        Ok(())
    } else {
        caller.require(needs::APPLICATIONS_READ)
    }
}

fn list_service_principals(tenant: &Tenant, caller: &Caller, call: &Call<'_>) -> Outcome {
    let filter = eq_filter(call, "appId")?;
    let own_only = filter.is_some_and(|app_id| {
        tenant
            .app(caller.app_id)
            .is_some_and(|a| a.client_id.to_string().eq_ignore_ascii_case(app_id))
    });
    if !own_only {
        caller.require(needs::APPLICATIONS_READ)?;
    }
    let value: Vec<Value> = all_service_principals(tenant)
        .into_iter()
        .filter(|(_, app_id, _)| filter.is_none_or(|f| app_id.eq_ignore_ascii_case(f)))
        .map(|(_, _, sp)| sp)
        .collect();
    Ok(Reply::json(
        json!({"@odata.context": context(call, "servicePrincipals"), "value": value}),
    ))
}

fn service_principal(
    tenant: &Tenant,
    caller: &Caller,
    call: &Call<'_>,
    key: Option<(&str, &str)>,
    raw: &str,
    rest: &[&str],
) -> Outcome {
    let all = all_service_principals(tenant);
    let found = match key {
        Some(("appId", app_id)) => all
            .into_iter()
            .find(|(_, a, _)| a.eq_ignore_ascii_case(app_id)),
        Some((_, id)) => all
            .into_iter()
            .find(|(sp, _, _)| sp.to_string().eq_ignore_ascii_case(id)),
        None => {
            let id = rest.first().copied().unwrap_or("");
            all.into_iter()
                .find(|(sp, _, _)| sp.to_string().eq_ignore_ascii_case(id))
        }
    };
    // `/servicePrincipals/{id}/…` carries the id as the next segment.
    let rest = if key.is_none() {
        rest.get(1..).unwrap_or(&[])
    } else {
        rest
    };
    let missing = || {
        // The message for alternate keys is UNVERIFIED (graph-facts §3).
        let id = key.map_or_else(
            || call.segments.get(1).cloned().unwrap_or_default(),
            |(_, v)| v.to_owned(),
        );
        let _ = raw;
        GraphError::not_found(&id)
    };
    match rest {
        [] => {
            let Some((sp_id, _, body)) = found else {
                caller.require(needs::APPLICATIONS_READ)?;
                return Err(missing());
            };
            may_read_sp(caller, sp_id)?;
            let mut body = object(body);
            body.insert(
                "@odata.context".into(),
                json!(context(call, "servicePrincipals/$entity")),
            );
            Ok(Reply::json(Value::Object(body)))
        }
        ["appRoleAssignments"] => {
            caller.require(needs::APPLICATIONS_READ)?;
            let Some((sp_id, _, body)) = found else {
                return Err(missing());
            };
            let display = body["displayName"].clone();
            // Grants still propagating are not shown yet.
            let now = chrono::Utc::now();
            // Graph's grants first, then Office 365 Exchange Online's (`Exchange.ManageAsApp`).
            let grants: Vec<(String, Uuid, chrono::DateTime<chrono::Utc>, Uuid, &str)> = tenant
                .apps
                .iter()
                .filter_map(|a| a.sp.as_ref())
                .find(|sp| sp.id == sp_id)
                .map(|sp| {
                    let graph = sp.granted.iter().map(|(id, role, at)| {
                        (id, role, at, tenant.graph_sp_id, "Microsoft Graph")
                    });
                    let exchange = sp.exchange_granted.iter().map(|(id, role, at)| {
                        (
                            id,
                            role,
                            at,
                            tenant.exchange_sp_id,
                            "Office 365 Exchange Online",
                        )
                    });
                    graph
                        .chain(exchange)
                        .filter(|(_, _, created, _, _)| **created <= now)
                        .map(|(id, role, at, resource, name)| {
                            (id.clone(), *role, *at, resource, name)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let top = paging::top(call, 100, 999)?;
            let start = paging::start(call)?;
            let page: Vec<Value> = grants
                .iter()
                .skip(start)
                .take(top)
                .map(|(id, role, created, resource, resource_name)| json!({
                    "id": id,
                    "deletedDateTime": null,
                    "appRoleId": role,
                    "createdDateTime": created.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "principalDisplayName": display,
                    "principalId": sp_id,
                    "principalType": "ServicePrincipal",
                    "resourceDisplayName": resource_name,
                    "resourceId": resource,
                }))
                .collect();
            let mut body =
                json!({"@odata.context": context(call, "appRoleAssignments"), "value": page});
            if start + top < grants.len() {
                body["@odata.nextLink"] = json!(paging::next_link(call, start + top));
            }
            Ok(Reply::json(body))
        }
        [other, ..] => Err(GraphError::no_segment(other)),
    }
}

fn application(tenant: &Tenant, caller: &Caller, call: &Call<'_>, app_id: &str) -> Outcome {
    // Another tenant's app has only its service principal here: no application object
    // (an own-app read of it answering 404 rather than 403 is UNVERIFIED).
    let own = caller.app_id.to_string().eq_ignore_ascii_case(app_id);
    let app = tenant
        .apps
        .iter()
        .find(|a| a.is_registered_here() && a.client_id.to_string().eq_ignore_ascii_case(app_id));
    if !own {
        caller.require(needs::APPLICATIONS_READ)?;
    }
    let Some(app) = app else {
        return Err(GraphError::not_found(app_id));
    };
    let credentials: Vec<Value> = app
        .secrets
        .iter()
        .map(|s| {
            json!({
                "customKeyIdentifier": null,
                "displayName": s.spec.display_name,
                "endDateTime": s.spec.end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "hint": s.hint(),
                "keyId": s.spec.key_id,
                "secretText": null,
                "startDateTime": s.spec.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            })
        })
        .collect();
    // keyCredential resource (DOCS): `customKeyIdentifier` is null as for a key added
    // through Graph without one (the portal sets the SHA-1 thumbprint; not modelled).
    let keys: Vec<Value> = app
        .certificates
        .iter()
        .map(|c| {
            json!({
                "customKeyIdentifier": null,
                "displayName": c.display_name,
                "endDateTime": c.end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "key": null,
                "keyId": c.key_id,
                "startDateTime": c.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "type": "AsymmetricX509Cert",
                "usage": "Verify",
            })
        })
        .collect();
    let full = json!({
        "@odata.context": context(call, "applications/$entity"),
        "id": app.object_id,
        "appId": app.client_id,
        "displayName": app.display_name,
        "signInAudience": app.sign_in_audience.as_str(),
        "keyCredentials": keys,
        "passwordCredentials": credentials,
        "requiredResourceAccess": required_resource_access(app),
        "web": {
            "homePageUrl": null,
            "logoutUrl": null,
            "redirectUris": app.redirect_uris,
            "implicitGrantSettings": {"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false},
        },
    });
    Ok(Reply::json(select_fields(full, call)))
}

/// `requiredResourceAccess`: the declared Graph app roles, then Office 365 Exchange
/// Online's (graph-facts-next §2.1's manifest form); none: an empty list.
fn required_resource_access(app: &crate::model::App) -> Value {
    let access = |ids: &[Uuid]| -> Vec<Value> {
        ids.iter()
            .map(|id| json!({"id": id, "type": "Role"}))
            .collect()
    };
    let mut resources = Vec::new();
    if !app.required.is_empty() {
        resources
            .push(json!({"resourceAppId": GRAPH_APP_ID, "resourceAccess": access(&app.required)}));
    }
    if !app.exchange_required.is_empty() {
        resources.push(json!({"resourceAppId": crate::model::exchange::EXCHANGE_APP_ID, "resourceAccess": access(&app.exchange_required)}));
    }
    Value::Array(resources)
}

/// Applies `$select` to a single object (keeping annotations).
fn select_fields(value: Value, call: &Call<'_>) -> Value {
    let Some(select) = call.param("$select") else {
        return value;
    };
    let wanted: Vec<&str> = select.split(',').map(str::trim).collect();
    Value::Object(
        object(value)
            .into_iter()
            .filter(|(k, _)| k.starts_with('@') || wanted.contains(&k.as_str()))
            .collect(),
    )
}

/// `unifiedRoleAssignment`s of the service principals (shape UNVERIFIED in graph-facts).
fn role_assignments(tenant: &Tenant, caller: &Caller, call: &Call<'_>) -> Outcome {
    caller.require(needs::ROLES_READ)?;
    let principal = eq_filter(call, "principalId")?;
    let now = chrono::Utc::now();
    let visible = |sp: &Uuid| {
        tenant
            .apps
            .iter()
            .any(|a| a.sp_at(now).is_some_and(|s| s.id == *sp))
    };
    let mut value = Vec::new();
    for role in &tenant.roles {
        let users = role.user_members.iter().map(|u| tenant.users.id_at(*u));
        let sps = role.sp_members.iter().copied().filter(|sp| visible(sp));
        for member in users.chain(sps) {
            if principal.is_some_and(|p| !member.to_string().eq_ignore_ascii_case(p)) {
                continue;
            }
            value.push(json!({
                "id": format!("{}-{member}", role.template_id),
                "principalId": member,
                "roleDefinitionId": role.template_id,
                "directoryScopeId": "/",
            }));
        }
    }
    Ok(Reply::json(
        json!({"@odata.context": context(call, "roleManagement/directory/roleAssignments"), "value": value}),
    ))
}

fn directory_role(role: &crate::model::DirectoryRole) -> Value {
    json!({
        "id": role.id,
        "deletedDateTime": null,
        "description": role.description,
        "displayName": role.display_name,
        "roleTemplateId": role.template_id,
    })
}

fn role_members(
    tenant: &Tenant,
    caller: &Caller,
    call: &Call<'_>,
    key: Option<(&str, &str)>,
    raw: &str,
) -> Outcome {
    caller.require(needs::ROLES_READ)?;
    let role = match key {
        Some(("roleTemplateId", template)) => tenant
            .roles
            .iter()
            .find(|r| r.template_id.to_string().eq_ignore_ascii_case(template)),
        Some((_, id)) => tenant
            .roles
            .iter()
            .find(|r| r.id.to_string().eq_ignore_ascii_case(id)),
        None => {
            let id = call.segments.get(1).map(String::as_str).unwrap_or("");
            tenant
                .roles
                .iter()
                .find(|r| r.id.to_string().eq_ignore_ascii_case(id))
        }
    };
    // Never-activated roles answer 404 to the alternate key too (graph-facts §6.1).
    let Some(role) = role else {
        return Err(GraphError::not_found(key.map_or(raw, |(_, v)| v)));
    };
    let mut value: Vec<Value> = role
        .user_members
        .iter()
        .filter_map(|u| tenant.users.view(*u, None))
        .map(|mut member| {
            member.insert("@odata.type".into(), json!("#microsoft.graph.user"));
            Value::Object(member)
        })
        .collect();
    let now = chrono::Utc::now();
    for sp in &role.sp_members {
        if let Some(app) = tenant
            .apps
            .iter()
            .find(|a| a.sp_at(now).is_some_and(|s| s.id == *sp))
        {
            value.push(json!({"@odata.type": "#microsoft.graph.servicePrincipal", "id": sp, "appId": app.client_id, "displayName": app.display_name}));
        }
    }
    Ok(Reply::json(
        json!({"@odata.context": context(call, "directoryObjects"), "value": value}),
    ))
}

/// The tenant's subscribed SKUs as (skuId, skuPartNumber, enabled units); `assignLicense`
/// accepts only these.
pub fn subscribed_skus(tenant: &Tenant) -> [(&'static str, &'static str, u32); 3] {
    let users = tenant.users.slots();
    [
        (
            "c7df2760-2c81-4ef7-b578-5b5392b571df",
            "ENTERPRISEPREMIUM",
            users / 3 + 5,
        ),
        (
            "f245ecc8-75af-4f8e-b61f-27d8114de5f3",
            "O365_BUSINESS_PREMIUM",
            users - users / 3 + 10,
        ),
        (
            "078d2b04-f1bd-4111-bbd4-b4b1b354cef4",
            "AAD_PREMIUM",
            users / 10 + 5,
        ),
    ]
}

fn skus(tenant: &Tenant) -> Vec<Value> {
    subscribed_skus(tenant)
        .into_iter()
        .map(|(sku, part, enabled)| {
            json!({
                "accountName": tenant.display_name,
                "accountId": tenant.id,
                "appliesTo": "User",
                "capabilityStatus": "Enabled",
                "consumedUnits": enabled.saturating_sub(3),
                "id": format!("{}_{sku}", tenant.id),
                "prepaidUnits": {"enabled": enabled, "lockedOut": 0, "suspended": 0, "warning": 0},
                "servicePlans": [],
                "skuId": sku,
                "skuPartNumber": part,
                "subscriptionIds": [ids::named(&format!("{}.{part}", tenant.name))],
            })
        })
        .collect()
}

/// One device for every other user.
fn managed_devices(tenant: &Tenant, caller: &Caller, call: &Call<'_>) -> Outcome {
    caller.require(needs::DEVICES_READ)?;
    let count = (tenant.users.slots() / 2) as usize;
    let top = paging::top(call, 1000, 1000)?;
    let start = paging::start(call)?;
    let value: Vec<Value> = (start..count.min(start + top))
        .filter_map(|i| {
            let owner = u32::try_from(i * 2).ok()?;
            let user = tenant.users.at(owner)?;
            let windows = i % 3 != 0;
            Some(json!({
                "@odata.type": "#microsoft.graph.managedDevice",
                "id": ids::generated(tenant.prefix, ids::Kind::Device, u32::try_from(i).ok()?),
                "userId": user["id"],
                "deviceName": format!("{}-{:05}", if windows { "DESKTOP" } else { "IPHONE" }, i),
                "managedDeviceOwnerType": "company",
                "enrolledDateTime": "2024-02-11T09:12:00Z",
                "lastSyncDateTime": "2026-11-20T07:45:00Z",
                "operatingSystem": if windows { "Windows" } else { "iOS" },
                "complianceState": if i % 11 == 0 { "noncompliant" } else { "compliant" },
                "jailBroken": "False",
                "managementAgent": "mdm",
                "osVersion": if windows { "10.0.22631.4460" } else { "18.1" },
                "azureADRegistered": true,
                "deviceEnrollmentType": "windowsAzureADJoin",
                "emailAddress": user["mail"],
                "azureADDeviceId": ids::named(&format!("{}.aad-device.{i}", tenant.name)),
                "deviceRegistrationState": "registered",
                "isSupervised": false,
                "isEncrypted": true,
                "userPrincipalName": user["userPrincipalName"],
                "model": if windows { "Surface Laptop 5" } else { "iPhone 15" },
                "manufacturer": if windows { "Microsoft Corporation" } else { "Apple" },
                "serialNumber": format!("SN{:08}", i),
                "userDisplayName": user["displayName"],
            }))
        })
        .collect();
    let mut body =
        json!({"@odata.context": context(call, "deviceManagement/managedDevices"), "value": value});
    if start + top < count {
        body["@odata.nextLink"] = json!(paging::next_link(call, start + top));
    }
    Ok(Reply::json(body))
}

fn risky_users(tenant: &Tenant, caller: &Caller, call: &Call<'_>) -> Outcome {
    caller.require(needs::RISKY_READ)?;
    let value: Vec<Value> = (RISKY_REMAINDER..tenant.users.slots())
        .step_by(RISKY_MODULUS as usize)
        .filter_map(|i| tenant.users.at(i).map(|u| (i, u)))
        .map(|(i, user)| {
            let dismissed = !tenant.is_risky(i);
            json!({
                "id": user["id"],
                "isDeleted": false,
                "isProcessing": false,
                "riskLastUpdatedDateTime": "2026-11-19T22:14:03Z",
                "riskLevel": if dismissed { "none" } else { "high" },
                "riskState": if dismissed { "dismissed" } else { "atRisk" },
                "riskDetail": if dismissed { "adminDismissedAllRiskForUser" } else { "none" },
                "userDisplayName": user["displayName"],
                "userPrincipalName": user["userPrincipalName"],
            })
        })
        .collect();
    Ok(Reply::json(
        json!({"@odata.context": context(call, "identityProtection/riskyUsers"), "value": value}),
    ))
}

fn dismiss_risk(state: &SimState, caller: &Caller, call: &Call<'_>) -> Outcome {
    caller.require(needs::RISKY_WRITE)?;
    let body = call.json_body()?;
    let ids: Vec<String> = body
        .get("userIds")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .ok_or_else(|| GraphError::bad_request("Invalid request: userIds is required."))?;
    let mut world = state.world_mut();
    let tenant = &mut world.tenants[caller.tenant];
    for id in ids {
        if let Some(index) = tenant.users.find(&id) {
            tenant.dismissed_risk.insert(index);
        }
    }
    Ok(Reply::no_content())
}
