//! Delta rounds over users.

use super::*;

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
