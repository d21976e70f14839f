//! `/groups`: list, get, delta, members (paged), and membership changes through `$ref`
//! with Microsoft's answers (400 for an existing member, 404 for an unknown object;
//! graph-facts §6.7).

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::paging;
use super::{Call, Caller, GraphError, Outcome, Reply, context, needs};
use crate::SimState;
use crate::model::{ChangeKind, Group};

pub fn group_json(group: &Group) -> Map<String, Value> {
    let value = json!({
        "id": group.id,
        "deletedDateTime": null,
        "description": group.description,
        "displayName": group.display_name,
        "groupTypes": if group.unified { json!(["Unified"]) } else { json!([]) },
        "mail": if group.unified { json!(format!("{}@example.com", group.mail_nickname)) } else { Value::Null },
        "mailEnabled": group.unified,
        "mailNickname": group.mail_nickname,
        "securityEnabled": group.security_enabled,
        "visibility": if group.unified { json!("Private") } else { Value::Null },
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn selected(group: &Group, call: &Call<'_>) -> Value {
    let full = group_json(group);
    match call.param("$select") {
        None => Value::Object(full),
        Some(select) => {
            let wanted: Vec<&str> = select.split(',').map(str::trim).collect();
            Value::Object(
                full.into_iter()
                    .filter(|(k, _)| wanted.contains(&k.as_str()))
                    .collect(),
            )
        }
    }
}

pub fn route(state: &SimState, caller: &Caller, call: &Call<'_>, segments: &[&str]) -> Outcome {
    match (call.method, &segments[1..]) {
        ("GET", []) => {
            caller.require(needs::GROUPS_READ)?;
            let top = paging::top(call, 100, 999)?;
            let start = paging::start(call)?;
            let world = state.world();
            let groups = &world.tenants[caller.tenant].groups;
            let value: Vec<Value> = groups
                .iter()
                .skip(start)
                .take(top)
                .map(|g| selected(g, call))
                .collect();
            let mut body = json!({"@odata.context": context(call, "groups"), "value": value});
            if start + top < groups.len() {
                body["@odata.nextLink"] = json!(paging::next_link(call, start + top));
            }
            Ok(Reply::json(body))
        }
        ("GET", ["delta"]) => {
            caller.require(needs::GROUPS_READ)?;
            let world = state.world();
            let tenant = &world.tenants[caller.tenant];
            let render = |index: u32| tenant.groups.get(index as usize).map(|g| selected(g, call));
            let by_id = |id: Uuid| {
                tenant
                    .groups
                    .iter()
                    .find(|g| g.id == id)
                    .map(|g| selected(g, call))
            };
            let slots = u32::try_from(tenant.groups.len()).unwrap_or(u32::MAX);
            super::users::delta(
                call,
                tenant,
                ChangeKind::Group,
                slots,
                &render,
                &by_id,
                "groups",
            )
        }
        (method, [id, rest @ ..]) => {
            let position = {
                let world = state.world();
                world.tenants[caller.tenant]
                    .groups
                    .iter()
                    .position(|g| g.id.to_string().eq_ignore_ascii_case(id))
            };
            let Some(position) = position else {
                caller.require(needs::GROUPS_READ)?;
                return Err(GraphError::not_found(id));
            };
            match (method, rest) {
                ("GET", []) => {
                    caller.require(needs::GROUPS_READ)?;
                    let world = state.world();
                    let mut body =
                        match selected(&world.tenants[caller.tenant].groups[position], call) {
                            Value::Object(map) => map,
                            _ => Map::new(),
                        };
                    body.insert(
                        "@odata.context".into(),
                        json!(context(call, "groups/$entity")),
                    );
                    Ok(Reply::json(Value::Object(body)))
                }
                ("GET", ["members"]) => members(state, caller, call, position),
                ("POST", ["members", "$ref"]) => add_member(state, caller, call, position),
                ("DELETE", ["members", member, "$ref"]) => {
                    remove_member(state, caller, position, member)
                }
                (_, [other, ..]) if !other.is_empty() && *other != "members" => {
                    Err(GraphError::no_segment(other))
                }
                _ => Err(GraphError::method_not_allowed()),
            }
        }
        _ => Err(GraphError::method_not_allowed()),
    }
}

fn members(state: &SimState, caller: &Caller, call: &Call<'_>, position: usize) -> Outcome {
    caller.require(needs::GROUPS_READ)?;
    let top = paging::top(call, 100, 999)?;
    let start = paging::start(call)?;
    let world = state.world();
    let tenant = &world.tenants[caller.tenant];
    let members = &tenant.groups[position].members;
    let value: Vec<Value> = members
        .iter()
        .skip(start)
        .take(top)
        .filter_map(|id| {
            tenant
                .users
                .find(&id.to_string())
                .and_then(|i| tenant.users.view(i, None))
        })
        .map(|mut member| {
            member.insert("@odata.type".into(), json!("#microsoft.graph.user"));
            Value::Object(member)
        })
        .collect();
    let mut body = json!({"@odata.context": context(call, "directoryObjects"), "value": value});
    if start + top < members.len() {
        body["@odata.nextLink"] = json!(paging::next_link(call, start + top));
    }
    Ok(Reply::json(body))
}

fn add_member(state: &SimState, caller: &Caller, call: &Call<'_>, position: usize) -> Outcome {
    caller.require(needs::GROUP_MEMBERS_WRITE)?;
    let body = call.json_body()?;
    let reference = body
        .get("@odata.id")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::bad_request("Invalid object identifier ''."))?;
    let member_key = reference
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    let mut world = state.world_mut();
    let tenant = &mut world.tenants[caller.tenant];
    let Some(index) = tenant.users.find(member_key) else {
        return Err(GraphError::not_found(member_key));
    };
    let member = tenant.users.id_at(index);
    let group = &mut tenant.groups[position];
    if group.members.contains(&member) {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "One or more added object references already exist for the following modified properties: 'members'.",
        ));
    }
    group.members.push(member);
    let id = group.id;
    tenant.record_change(ChangeKind::Group, id, false);
    Ok(Reply::no_content())
}

fn remove_member(state: &SimState, caller: &Caller, position: usize, member: &str) -> Outcome {
    caller.require(needs::GROUP_MEMBERS_WRITE)?;
    let mut world = state.world_mut();
    let tenant = &mut world.tenants[caller.tenant];
    let group = &mut tenant.groups[position];
    let before = group.members.len();
    group
        .members
        .retain(|m| !m.to_string().eq_ignore_ascii_case(member));
    if group.members.len() == before {
        // Body text for a non-member is UNVERIFIED (graph-facts §6.7).
        return Err(GraphError::not_found(member));
    }
    let id = group.id;
    tenant.record_change(ChangeKind::Group, id, false);
    Ok(Reply::no_content())
}
