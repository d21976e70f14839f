//! A user's group memberships and manager.

use super::*;

pub(super) fn member_of(state: &SimState, caller: &Caller, call: &Call<'_>, index: u32) -> Outcome {
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
            let mut group = crate::graph::groups::group_json(g);
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
pub(super) fn manager(state: &SimState, caller: &Caller, call: &Call<'_>, index: u32) -> Outcome {
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
pub(super) fn set_manager(
    state: &SimState,
    caller: &Caller,
    call: &Call<'_>,
    index: u32,
) -> Outcome {
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
pub(super) fn reference_key(body: &Map<String, Value>) -> Result<String, GraphError> {
    let reference = body.get("@odata.id").and_then(Value::as_str).unwrap_or("");
    let mut tail = reference.trim_end_matches('/').rsplit('/');
    match (tail.next(), tail.next()) {
        (Some(key), Some("users" | "directoryObjects")) if !key.is_empty() => {
            Ok(crate::graph::decode(key))
        }
        // Wording UNVERIFIED (the one group references use).
        _ => Err(GraphError::bad_request(format!(
            "Invalid object identifier '{reference}'."
        ))),
    }
}

/// `DELETE /users/{id}/manager/$ref`: 204; 404 `Request_ResourceNotFound` naming `manager`
/// when none is set (UNVERIFIED).
pub(super) fn remove_manager(state: &SimState, caller: &Caller, index: u32) -> Outcome {
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
