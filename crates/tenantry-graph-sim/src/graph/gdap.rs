//! The GDAP APIs of a partner tenant (graph-facts-next §1.7): `tenantRelationships/
//! delegatedAdminRelationships` (and one relationship, and its `accessAssignments`) and
//! `delegatedAdminCustomers`, derived from the relationships (present while one is active).
//! App-only callers need `DelegatedAdminRelationship.Read.All` (or `…ReadWrite.All`) in the
//! partner tenant; pages hold up to 300 items with `@odata.nextLink`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::{Call, Caller, GraphError, Outcome, Reply, paging};
use crate::SimState;
use crate::model::ids::named;
use crate::scenario::{RelationshipSpec, RelationshipStatus};

/// The least permission first (DEVX; the reference pages say "Not supported", §1.7.1).
const GDAP_READ: &[&str] = &[
    "DelegatedAdminRelationship.Read.All",
    "DelegatedAdminRelationship.ReadWrite.All",
];

/// "`$top` supports up to 300 objects"; also the page size without `$top` (UNVERIFIED).
const PAGE_MAX: usize = 300;

pub fn route(state: &SimState, caller: &Caller, call: &Call<'_>, segments: &[&str]) -> Outcome {
    if call.method != "GET" {
        return Err(GraphError::method_not_allowed());
    }
    // The 403 body is Graph's usual one; its code for these APIs is UNVERIFIED.
    caller.require(GDAP_READ)?;
    let world = state.world();
    let tenant = &world.tenants[caller.tenant];
    let now = Utc::now();
    let relationships = &tenant.relationships;
    match segments {
        [_, "delegatedAdminRelationships"] => {
            let filter = Filter::parse(call.param("$filter"))?;
            let items: Vec<Value> = relationships
                .iter()
                .map(|r| relationship(r, now))
                .filter(|item| filter.matches(item))
                .collect();
            page(call, items, "delegatedAdminRelationships")
        }
        [_, "delegatedAdminRelationships", id, rest @ ..] => {
            let found = relationships
                .iter()
                .find(|r| r.id.eq_ignore_ascii_case(id))
                .ok_or_else(|| GraphError::not_found(id))?;
            match rest {
                [] => {
                    let mut body = object(select(relationship(found, now), call));
                    body.insert(
                        "@odata.context".into(),
                        json!(metadata(call, "delegatedAdminRelationships/$entity")),
                    );
                    Ok(Reply::json(Value::Object(body)))
                }
                ["accessAssignments"] => page(
                    call,
                    access_assignments(found, now),
                    &format!(
                        "delegatedAdminRelationships('{}')/accessAssignments",
                        found.id
                    ),
                ),
                [other, ..] => Err(GraphError::no_segment(other)),
            }
        }
        [_, "delegatedAdminCustomers", rest @ ..] => {
            let filter = Filter::parse(call.param("$filter"))?;
            let items: Vec<Value> = customers(relationships, now)
                .into_iter()
                .filter(|item| filter.matches(item))
                .collect();
            match rest {
                [] => page(call, items, "delegatedAdminCustomers"),
                [id] => {
                    let found = items
                        .into_iter()
                        .find(|c| c["id"].as_str().is_some_and(|c| c.eq_ignore_ascii_case(id)))
                        .ok_or_else(|| GraphError::not_found(id))?;
                    let mut body = object(select(found, call));
                    body.insert(
                        "@odata.context".into(),
                        json!(metadata(call, "delegatedAdminCustomers/$entity")),
                    );
                    Ok(Reply::json(Value::Object(body)))
                }
                [_, other, ..] => Err(GraphError::no_segment(other)),
            }
        }
        [_, other, ..] => Err(GraphError::no_segment(other)),
        [first] => Err(GraphError::no_segment(first)),
        [] => Err(GraphError::no_segment("")),
    }
}

/// `{root}/tenantRelationships/$metadata#{name}`, as Graph writes these contexts.
fn metadata(call: &Call<'_>, name: &str) -> String {
    format!("{}/tenantRelationships/$metadata#{name}", call.root)
}

/// One page of `items` with `$top` capped at 300 (a larger value is lowered, not refused:
/// UNVERIFIED) and `$select` applied.
fn page(call: &Call<'_>, items: Vec<Value>, context: &str) -> Outcome {
    let top = match call.param("$top") {
        None => PAGE_MAX,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if n >= 1 => n.min(PAGE_MAX),
            _ => {
                return Err(GraphError::bad_request(format!(
                    "Invalid page size specified: '{raw}'. Must be between 1 and {PAGE_MAX} inclusive."
                )));
            }
        },
    };
    let start = paging::start(call)?;
    let total = items.len();
    let value: Vec<Value> = items
        .into_iter()
        .skip(start)
        .take(top)
        .map(|item| select(item, call))
        .collect();
    let mut body = json!({"@odata.context": metadata(call, context), "value": value});
    if call.param("$count") == Some("true") {
        body["@odata.count"] = json!(total);
    }
    if start + top < total {
        body["@odata.nextLink"] = json!(paging::next_link(call, start + top));
    }
    Ok(Reply::json(body))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `$select` on one item, keeping `@odata` annotations and `id`.
fn select(value: Value, call: &Call<'_>) -> Value {
    let Some(select) = call.param("$select") else {
        return value;
    };
    let wanted: Vec<&str> = select.split(',').map(str::trim).collect();
    Value::Object(
        object(value)
            .into_iter()
            .filter(|(k, _)| k.starts_with('@') || k == "id" || wanted.contains(&k.as_str()))
            .collect(),
    )
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A weak ETag like Graph's (`W/"<base64 of a quoted version>"`), changing with `seed`.
fn etag(seed: &str) -> String {
    use base64::Engine;
    let version = named(seed).simple().to_string();
    let inner = format!("'\"{}-0000-0200-0000-{}\"'", &version[..8], &version[20..]);
    format!(
        "W/\"{}\"",
        base64::engine::general_purpose::STANDARD.encode(inner)
    )
}

fn unified_roles(relationship: &RelationshipSpec) -> Value {
    let roles: Vec<Value> = relationship
        .roles
        .iter()
        .map(|r| json!({"roleDefinitionId": r}))
        .collect();
    json!({"unifiedRoles": roles})
}

fn relationship(r: &RelationshipSpec, now: DateTime<Utc>) -> Value {
    let status = r.status_at(now);
    let last_modified = r.activated.unwrap_or(r.created);
    json!({
        "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
        "@odata.etag": etag(&format!("{}.{}", r.id, status.as_str())),
        "id": r.id,
        "displayName": r.display_name,
        "duration": r.duration(),
        "customer": {"tenantId": r.customer_tenant_id, "displayName": r.customer_display_name},
        "accessDetails": unified_roles(r),
        "status": status.as_str(),
        "autoExtendDuration": r.auto_extend_duration(),
        "createdDateTime": time(r.created),
        "lastModifiedDateTime": time(last_modified),
        "activatedDateTime": r.activated.map(time),
        "endDateTime": r.end().map(time),
    })
}

/// One access assignment per relationship, to the partner's admin-agent group, with the
/// relationship's roles: `active` once the relationship is, `pending` while it activates
/// (the simulator does not model partner groups; UNVERIFIED simplification).
fn access_assignments(r: &RelationshipSpec, now: DateTime<Utc>) -> Vec<Value> {
    let status = match r.status_at(now) {
        RelationshipStatus::Active | RelationshipStatus::TerminationRequested => "active",
        RelationshipStatus::Approved | RelationshipStatus::Activating => "pending",
        _ => return Vec::new(),
    };
    let created = r.activated.unwrap_or(r.created);
    vec![json!({
        "@odata.type": "#microsoft.graph.delegatedAdminAccessAssignment",
        "@odata.etag": etag(&format!("{}.assignment.{status}", r.id)),
        "id": named(&format!("{}.assignment", r.id)),
        "status": status,
        "createdDateTime": time(created),
        "lastModifiedDateTime": time(created),
        "accessContainer": {
            "accessContainerId": named(&format!("{}.container", r.customer_tenant_id)),
            "accessContainerType": "securityGroup",
        },
        "accessDetails": unified_roles(r),
    })]
}

/// Customers with at least one active relationship, in the order of their first one
/// ("deleted when no more active relationships exist", §1.7.2).
fn customers(relationships: &[RelationshipSpec], now: DateTime<Utc>) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut value = Vec::new();
    for r in relationships {
        if r.status_at(now) != RelationshipStatus::Active || seen.contains(&r.customer_tenant_id) {
            continue;
        }
        seen.push(r.customer_tenant_id);
        value.push(json!({
            "@odata.type": "#microsoft.graph.delegatedAdminCustomer",
            "@odata.etag": etag(&format!("{}.customer", r.customer_tenant_id)),
            "id": r.customer_tenant_id,
            "tenantId": r.customer_tenant_id,
            "displayName": r.customer_display_name,
        }));
    }
    value
}

/// `$filter` as production code sends it: `eq` clauses on `status`, `id`, `displayName`,
/// `tenantId` or `customer/tenantId`, joined by `and`, parentheses allowed.
struct Filter {
    clauses: Vec<(String, String)>,
}

impl Filter {
    fn parse(raw: Option<&str>) -> Result<Self, GraphError> {
        let Some(raw) = raw else {
            return Ok(Self {
                clauses: Vec::new(),
            });
        };
        // The refusal's code and wording are UNVERIFIED.
        let unsupported = || {
            GraphError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                format!("Unsupported filter: {raw}"),
            )
        };
        let cleaned = raw.replace(['(', ')'], " ");
        let mut clauses = Vec::new();
        for clause in split_and(&cleaned) {
            let (property, value) = clause.split_once(" eq ").ok_or_else(unsupported)?;
            let property = property.trim();
            if !matches!(
                property,
                "status" | "id" | "displayName" | "tenantId" | "customer/tenantId"
            ) {
                return Err(unsupported());
            }
            let value = value.trim();
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .ok_or_else(unsupported)?;
            clauses.push((property.to_owned(), value.to_owned()));
        }
        Ok(Self { clauses })
    }

    fn matches(&self, item: &Value) -> bool {
        self.clauses.iter().all(|(property, value)| {
            let field = property
                .split('/')
                .fold(item, |v, part| &v[part])
                .as_str()
                .unwrap_or("");
            field.eq_ignore_ascii_case(value)
        })
    }
}

/// Splits on ` and ` in any case.
fn split_and(s: &str) -> Vec<&str> {
    let lower = s.to_ascii_lowercase();
    let mut parts = Vec::new();
    let mut start = 0;
    while let Some(pos) = lower[start..].find(" and ") {
        parts.push(&s[start..start + pos]);
        start += pos + 5;
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_as_production_code_writes_them() {
        let filter = Filter::parse(Some(
            "(status eq 'active') AND (customer/tenantId eq 'abc')",
        ))
        .expect("a supported filter");
        let item = json!({"status": "active", "customer": {"tenantId": "ABC"}});
        assert!(filter.matches(&item));
        let other = json!({"status": "expired", "customer": {"tenantId": "abc"}});
        assert!(!filter.matches(&other));
        assert!(Filter::parse(Some("startswith(displayName,'x')")).is_err());
    }
}
