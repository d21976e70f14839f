//! Licence assignment (`assignLicense`), with the usage-location rule.

use super::*;

/// A GUID as sent (for messages) and parsed (for comparisons).
pub(super) struct Guid {
    raw: String,
    id: Uuid,
}

/// One entry of `addLicenses`.
pub(super) struct AddLicense {
    sku: Guid,
    disabled: Vec<Uuid>,
}

/// An `assignLicense` body.
pub(super) struct LicenseChanges {
    add: Vec<AddLicense>,
    remove: Vec<Guid>,
}

/// `addLicenses` and `removeLicenses`, both required. Wording UNVERIFIED.
pub(super) fn license_changes(body: &Map<String, Value>) -> Result<LicenseChanges, GraphError> {
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

pub(super) fn sku_of(license: &Value) -> Option<Uuid> {
    license["skuId"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
}

/// `POST /users/{id}/assignLicense` (DOCS user-assignlicense.md): removes, then adds
/// (re-adding a SKU replaces its disabled plans) and answers 200 with the user. Adding
/// needs a usage location; every SKU must be one of the tenant's subscribed SKUs. The
/// messages are Microsoft's as reported; their code `Request_BadRequest` is UNVERIFIED, as
/// is the order of the checks and the 400 for removing a licence the user lacks.
pub(super) fn assign_license(
    state: &SimState,
    caller: &Caller,
    call: &Call<'_>,
    index: u32,
) -> Outcome {
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
