//! Listing, reading, changing, creating and deleting users, with Microsoft's rules for
//! app-only callers (graph-facts §6).

use super::*;

pub(super) fn list(state: &SimState, caller: &Caller, call: &Call<'_>) -> Outcome {
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
pub(super) enum Filter {
    Mail(String),
    Upn(String),
}

/// `mail eq 'v'` / `userPrincipalName eq 'v'` (a quote inside the literal is doubled, as
/// in OData); `None` for anything else.
pub(super) fn parse_filter(filter: &str) -> Option<Filter> {
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
pub(super) fn string_literal(text: &str) -> Option<String> {
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
pub(super) fn filtered_page(
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

pub(super) fn get(state: &SimState, caller: &Caller, call: &Call<'_>, index: u32) -> Outcome {
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
pub(super) fn caller_roles(tenant: &Tenant, caller: &Caller) -> Vec<String> {
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
pub(super) fn may_reset_password(tenant: &Tenant, caller: &Caller, target: u32) -> bool {
    let roles = caller_roles(tenant, caller);
    let has = |template: &str| roles.iter().any(|r| r == template);
    if tenant.is_privileged(target) {
        has(GLOBAL_ADMIN) || has(PRIVILEGED_AUTH_ADMIN)
    } else {
        has(GLOBAL_ADMIN) || has(PRIVILEGED_AUTH_ADMIN) || has(USER_ADMIN)
    }
}

pub(super) fn password_is_complex(password: &str) -> bool {
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    (8..=256).contains(&password.chars().count()) && classes.iter().filter(|c| **c).count() >= 3
}

pub(super) fn complexity_error() -> GraphError {
    // Wording as commonly reported; code UNVERIFIED.
    GraphError::bad_request(
        "The specified password does not comply with password complexity requirements. Please provide a different password.",
    )
}

/// A two-letter country code in capitals (ISO 3166-1 alpha-2, graph-facts §6.6).
pub(super) fn is_usage_location(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|v| v.len() == 2 && v.chars().all(|c| c.is_ascii_uppercase()))
}

pub(super) fn usage_location_error() -> GraphError {
    // Wording and code UNVERIFIED.
    GraphError::bad_request(
        "Invalid value specified for property 'usageLocation' of resource 'User'.",
    )
}

pub(super) fn update(state: &SimState, caller: &Caller, call: &Call<'_>, index: u32) -> Outcome {
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

pub(super) fn create(state: &SimState, caller: &Caller, call: &Call<'_>) -> Outcome {
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

pub(super) fn delete(state: &SimState, caller: &Caller, index: u32) -> Outcome {
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
