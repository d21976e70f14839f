//! JSON batching (graph-facts §7.3): up to 20 requests, unique ids, `dependsOn` (a failed
//! dependency fails its dependants with 424), each item throttled on its own; the batch
//! answers 200 when it parses and 400 when it does not.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Call, Caller, GraphError, ODATA_JSON, RequestIds, dispatch, parse_query, render};
use crate::SimState;

pub const MAX_REQUESTS: usize = 20;

#[derive(Deserialize)]
struct Batch {
    requests: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    id: String,
    method: String,
    url: String,
    #[serde(default)]
    headers: HashMap<String, String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default, rename = "dependsOn")]
    depends_on: Vec<String>,
}

pub async fn run(
    state: &SimState,
    caller: &Caller,
    body: &[u8],
    root: &str,
    ids: &RequestIds,
) -> Response {
    let batch: Batch = match serde_json::from_slice(body) {
        Ok(batch) => batch,
        Err(_) => {
            return render(
                Err(GraphError::bad_request("Invalid batch payload format.")),
                ids,
                None,
            );
        }
    };
    if batch.requests.len() > MAX_REQUESTS {
        return render(
            Err(GraphError::bad_request(format!(
                "The number of batch requests exceeds the limit of {MAX_REQUESTS}."
            ))),
            ids,
            None,
        );
    }
    let mut seen = std::collections::HashSet::new();
    for item in &batch.requests {
        if !seen.insert(item.id.as_str()) {
            return render(
                Err(GraphError::bad_request(
                    "Batch request contains duplicate ids.",
                )),
                ids,
                None,
            );
        }
        if item.body.is_some()
            && !item
                .headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("content-type"))
        {
            return render(
                Err(GraphError::bad_request(
                    "Write requests (excluding DELETE) must contain the Content-Type header declaration.",
                )),
                ids,
                None,
            );
        }
        if item
            .depends_on
            .iter()
            .any(|d| !batch.requests.iter().any(|r| &r.id == d))
        {
            return render(
                Err(GraphError::bad_request("Invalid dependsOn reference.")),
                ids,
                None,
            );
        }
    }
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::new();
    for item in &batch.requests {
        let failed_dependency = item
            .depends_on
            .iter()
            .any(|d| statuses.get(d).is_none_or(|s| *s >= 400));
        let (status, body, mut headers) = if failed_dependency {
            let error = GraphError::new(
                StatusCode::FAILED_DEPENDENCY,
                "BadRequest",
                "Dependency failed.",
            );
            (
                StatusCode::FAILED_DEPENDENCY,
                Some(error.body(ids)),
                json!({"Content-Type": "application/json"}),
            )
        } else {
            execute(state, caller, item, root, ids).await
        };
        headers["Cache-Control"] = json!("no-cache");
        statuses.insert(item.id.clone(), status.as_u16());
        let mut response = json!({"id": item.id, "status": status.as_u16(), "headers": headers});
        if let Some(body) = body {
            response["body"] = body;
        }
        responses.push(response);
    }
    (
        StatusCode::OK,
        [("content-type", ODATA_JSON)],
        json!({"responses": responses}).to_string(),
    )
        .into_response()
}

async fn execute(
    state: &SimState,
    caller: &Caller,
    item: &Item,
    root: &str,
    ids: &RequestIds,
) -> (StatusCode, Option<Value>, Value) {
    let url = item.url.trim_start_matches("/v1.0").trim_start_matches('/');
    let (path, raw_query) = url.split_once('?').unwrap_or((url, ""));
    let body = item
        .body
        .as_ref()
        .map(|b| serde_json::to_vec(b).unwrap_or_default())
        .unwrap_or_default();
    let method = item.method.to_ascii_uppercase();
    let call = Call {
        method: &method,
        segments: path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(super::decode)
            .collect(),
        query: parse_query(raw_query),
        raw_query: raw_query.to_owned(),
        content_type: item
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone()),
        body: &body,
        root: root.to_owned(),
    };
    let (outcome, meta) = dispatch(state, caller, &call).await;
    let cost = meta.cost;
    match outcome {
        Ok(reply) => (
            reply.status,
            reply.body,
            json!({"x-ms-resource-unit": cost.to_string(), "OData-Version": "4.0", "Content-Type": ODATA_JSON}),
        ),
        Err(error) => {
            let mut headers =
                json!({"x-ms-resource-unit": cost.to_string(), "Content-Type": "application/json"});
            for (name, value) in &error.headers {
                headers[*name] = json!(value);
            }
            (error.status, Some(error.body(ids)), headers)
        }
    }
}
