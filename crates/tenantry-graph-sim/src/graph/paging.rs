//! `$top`, `$skiptoken` and `@odata.nextLink`: pages are windows over a stable order, and
//! the next link repeats the first request's query with an opaque skip token, as Graph's
//! do (clients must follow the whole URL; graph-facts §7.1).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{Call, GraphError, encode};

/// `$top`, validated against `1..=max` (default `default`). The message is Microsoft's
/// (MS Q&A 1129204); its error code is UNVERIFIED.
pub fn top(call: &Call<'_>, default: usize, max: usize) -> Result<usize, GraphError> {
    match call.param("$top") {
        None => Ok(default),
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(GraphError::bad_request(format!(
                "Invalid page size specified: '{raw}'. Must be between 1 and {max} inclusive."
            ))),
        },
    }
}

/// Where this page starts, from `$skiptoken` (0 without one).
pub fn start(call: &Call<'_>) -> Result<usize, GraphError> {
    match call.param("$skiptoken") {
        None => Ok(0),
        Some(token) => decode_token(token)
            .and_then(|text| text.strip_prefix("i:").and_then(|n| n.parse().ok()))
            .ok_or_else(|| {
                GraphError::bad_request("The specified page token value has expired or is invalid.")
            }),
    }
}

pub fn encode_token(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

pub fn decode_token(token: &str) -> Option<String> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()
}

/// The request's own URL with `$skiptoken` set to continue at `next`.
pub fn next_link(call: &Call<'_>, next: usize) -> String {
    link_with(call, "$skiptoken", &encode_token(&format!("i:{next}")))
}

/// The request's path and query, with `name` replaced by `value` (and the other token
/// parameter dropped).
pub fn link_with(call: &Call<'_>, name: &str, value: &str) -> String {
    let mut pairs: Vec<String> = call
        .raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = super::decode(p.split('=').next().unwrap_or(""));
            key != "$skiptoken" && key != "$deltatoken"
        })
        .map(str::to_owned)
        .collect();
    pairs.push(format!("{}={}", encode(name), encode(value)));
    let path: Vec<String> = call.segments.iter().map(|s| encode(s)).collect();
    format!("{}/{}?{}", call.root, path.join("/"), pairs.join("&"))
}
