//! Graph requests and their failures. Throttling (429, with `Retry-After`), outages (5xx,
//! timeouts, refused connections) and refusals (403/404) are told apart here, once, so no
//! caller can mistake an outage for a verdict.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::http_client::GraphHttp;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphFailure {
    #[error("throttled by Microsoft")]
    Throttled { retry_after: Option<Duration> },
    #[error("Microsoft Graph is unavailable: {0}")]
    Unavailable(String),
    #[error("Graph denied the request ({code})")]
    Denied { code: String },
    #[error("not found")]
    NotFound,
    #[error("Graph answered {status} ({code})")]
    Unexpected { status: u16, code: String },
}

impl GraphFailure {
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            GraphFailure::Throttled { .. } | GraphFailure::Unavailable(_)
        )
    }
}

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After` in seconds; Microsoft may send fractions (graph-facts §7.4). Capped.
pub(crate) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    let seconds = value.trim().parse::<f64>().ok()?;
    Duration::try_from_secs_f64(seconds)
        .ok()
        .map(|d| d.min(MAX_RETRY_AFTER))
}

/// GETs a Graph URL (absolute, e.g. a next link) and returns its JSON body.
pub async fn get_url(
    http: &GraphHttp,
    token: &SecretString,
    url: &str,
) -> Result<Value, GraphFailure> {
    let response = http
        .client
        .get(url)
        .bearer_auth(token.expose_secret())
        .header("client-request-id", uuid::Uuid::new_v4().to_string())
        .send()
        .await
        .map_err(|e| send_failure(&e))?;
    classify(response).await
}

/// Failed sends are outages: Microsoft's verdicts only come in answers.
pub(crate) fn send_failure(error: &reqwest::Error) -> GraphFailure {
    GraphFailure::Unavailable(if error.is_timeout() {
        "timed out".into()
    } else {
        "connection failed".into()
    })
}

/// An answer's JSON body, or the failure it tells of.
pub(crate) async fn classify(response: reqwest::Response) -> Result<Value, GraphFailure> {
    let body = classify_raw(response).await?;
    serde_json::from_slice(&body).map_err(|_| GraphFailure::Unavailable("unreadable answer".into()))
}

/// Like [`classify`], keeping a successful answer's body as Microsoft sent it.
pub(crate) async fn classify_raw(response: reqwest::Response) -> Result<Vec<u8>, GraphFailure> {
    let status = response.status();
    if status.is_success() {
        return response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|_| GraphFailure::Unavailable("unreadable answer".into()));
    }
    let retry_after = retry_after(&response);
    let body = response.json().await.unwrap_or(Value::Null);
    match failure(status.as_u16(), retry_after, body) {
        Ok(_) => Err(GraphFailure::Unavailable(format!("HTTP {status}"))),
        Err(failure) => Err(failure),
    }
}

/// The failure an error answer (or a `$batch` item) tells of.
pub(crate) fn failure(
    status: u16,
    retry_after: Option<Duration>,
    body: Value,
) -> Result<Value, GraphFailure> {
    // A 503 that says when to come back is Microsoft asking to wait, like a 429: the
    // job engine snoozes for it instead of spending an attempt.
    if status == 429 || (status == 503 && retry_after.is_some()) {
        return Err(GraphFailure::Throttled { retry_after });
    }
    if status >= 500 {
        return Err(GraphFailure::Unavailable(format!("HTTP {status}")));
    }
    let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
    Err(match status {
        403 => GraphFailure::Denied { code },
        404 => GraphFailure::NotFound,
        other => GraphFailure::Unexpected {
            status: other,
            code,
        },
    })
}

/// Runs `call` again while Microsoft asks to wait (429, or 503 with `Retry-After`) for
/// no longer than `deadline` allows: a short `Retry-After` is waited out, a longer one (or
/// a throttle without one) goes back to the caller, who answers with it.
pub async fn patiently<T, F, Fut>(
    deadline: tokio::time::Instant,
    mut call: F,
) -> Result<T, GraphFailure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, GraphFailure>>,
{
    loop {
        match call().await {
            Err(GraphFailure::Throttled {
                retry_after: Some(wait),
            }) if tokio::time::Instant::now() + wait <= deadline => {
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// GETs `path` (after `/v1.0`).
pub async fn get(
    http: &GraphHttp,
    token: &SecretString,
    path: &str,
) -> Result<Value, GraphFailure> {
    get_url(http, token, &http.config.graph(path)).await
}

/// GETs every page of a collection, following `@odata.nextLink` (whole URLs, as Graph
/// asks). Bounded to 100 pages, far above what the validator reads.
pub async fn get_all(
    http: &GraphHttp,
    token: &SecretString,
    path: &str,
) -> Result<Vec<Value>, GraphFailure> {
    let mut url = http.config.graph(path);
    let mut rows = Vec::new();
    for _ in 0..100 {
        let mut page = get_url(http, token, &url).await?;
        if let Value::Array(values) = page["value"].take() {
            rows.extend(values);
        }
        match page["@odata.nextLink"].as_str() {
            // The bearer token only ever goes to the configured Graph host.
            Some(next) if next.starts_with(&format!("{}/", http.config.graph_url)) => {
                url = next.to_owned()
            }
            Some(_) => {
                return Err(GraphFailure::Unavailable(
                    "a next link pointed outside Microsoft Graph".into(),
                ));
            }
            None => return Ok(rows),
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_503_with_retry_after_is_a_request_to_wait_and_without_it_an_outage() {
        let wait = Some(Duration::from_secs(7));
        assert_eq!(
            failure(503, wait, Value::Null),
            Err(GraphFailure::Throttled { retry_after: wait })
        );
        assert!(matches!(
            failure(503, None, Value::Null),
            Err(GraphFailure::Unavailable(_))
        ));
        assert_eq!(
            failure(429, None, Value::Null),
            Err(GraphFailure::Throttled { retry_after: None })
        );
        let denied = serde_json::json!({"error": {"code": "Authorization_RequestDenied"}});
        assert_eq!(
            failure(403, None, denied),
            Err(GraphFailure::Denied {
                code: "Authorization_RequestDenied".into()
            })
        );
    }
}
