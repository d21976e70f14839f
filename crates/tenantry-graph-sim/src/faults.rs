//! Injected latency, server errors and dropped connections, globally or per tenant, so the
//! client's retry and timeout paths can be exercised and benchmarks can model Microsoft's
//! round-trip times.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Faults {
    #[serde(default)]
    pub global: FaultSpec,
    /// By tenant GUID.
    #[serde(default)]
    pub tenants: HashMap<String, FaultSpec>,
    /// One-off answers to particular requests, taken before any other fault (each is
    /// used up after `times` requests).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scripted: Vec<ScriptedFault>,
}

/// "Answer the next `times` requests to `path` with `status`": a single, targeted
/// failure (one 429 on `/v1.0/organization`) that rates cannot express.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedFault {
    /// Matched against the start of the request path (without the query), e.g.
    /// `/v1.0/organization` or `/{tenant}/oauth2/v2.0/token`.
    pub path: String,
    /// Only requests with this method (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    pub status: u16,
    /// How many requests get it; default 1.
    #[serde(default = "one")]
    pub times: u32,
    /// `Retry-After` (seconds, may be fractional) of an injected 429; default 1.
    #[serde(default)]
    pub retry_after_secs: Option<f64>,
}

fn one() -> u32 {
    1
}

impl ScriptedFault {
    pub fn new(path: &str, status: u16) -> Self {
        Self {
            path: path.to_owned(),
            method: None,
            status,
            times: 1,
            retry_after_secs: None,
        }
    }

    pub fn retry_after(mut self, secs: f64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.times > 0
            && path.starts_with(&self.path)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Added to every response.
    #[serde(default)]
    pub latency_ms: u64,
    /// Up to this much more, uniformly.
    #[serde(default)]
    pub jitter_ms: u64,
    /// Share of requests (0–1) answered with one of `error_statuses`.
    #[serde(default)]
    pub error_rate: f64,
    /// Defaults to 500, 503 and 504.
    #[serde(default)]
    pub error_statuses: Vec<u16>,
    /// Share of requests (0–1) whose connection is cut mid-response.
    #[serde(default)]
    pub drop_rate: f64,
    /// `Retry-After` (seconds, may be fractional) sent with injected 429s; default 1.
    #[serde(default)]
    pub retry_after_secs: Option<f64>,
}

pub struct Decision {
    pub delay: Option<Duration>,
    pub outcome: Outcome,
}

#[derive(Debug)]
pub enum Outcome {
    Pass,
    /// Status, and the `Retry-After` of an injected 429.
    Error(u16, f64),
    Drop,
}

/// Marks a response whose connection the simulator cut.
#[derive(Clone, Copy, Debug)]
pub struct Dropped;

impl Faults {
    /// Uses up the first scripted fault matching the request, if any.
    pub(crate) fn take_scripted(&mut self, method: &str, path: &str) -> Option<Outcome> {
        let index = self.scripted.iter().position(|s| s.matches(method, path))?;
        let fault = &mut self.scripted[index];
        fault.times -= 1;
        let outcome = Outcome::Error(fault.status, fault.retry_after_secs.unwrap_or(1.0).max(0.0));
        if fault.times == 0 {
            self.scripted.remove(index);
        }
        Some(outcome)
    }

    pub fn decide(&self, tenant: Option<&str>) -> Decision {
        let spec = tenant
            .and_then(|t| self.tenants.get(t))
            .unwrap_or(&self.global);
        let delay = match (spec.latency_ms, spec.jitter_ms) {
            (0, 0) => None,
            (fixed, 0) => Some(Duration::from_millis(fixed)),
            (fixed, jitter) => Some(Duration::from_millis(fixed + fastrand::u64(0..=jitter))),
        };
        let roll = fastrand::f64();
        let outcome = if roll < spec.drop_rate {
            Outcome::Drop
        } else if roll < spec.drop_rate + spec.error_rate {
            let statuses: &[u16] = if spec.error_statuses.is_empty() {
                &[500, 503, 504]
            } else {
                &spec.error_statuses
            };
            Outcome::Error(
                statuses[fastrand::usize(..statuses.len())],
                spec.retry_after_secs.unwrap_or(1.0).max(0.0),
            )
        } else {
            Outcome::Pass
        };
        Decision { delay, outcome }
    }
}

impl Outcome {
    pub fn respond(self) -> Response {
        match self {
            Outcome::Pass => StatusCode::OK.into_response(),
            Outcome::Error(429, retry_after) => {
                // Microsoft's throttling answer (graph-facts §7.4).
                let body = json!({"error": {"code": "TooManyRequests", "message": "Please retry again later.",
                    "innerError": {"code": "429", "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                        "message": "Please retry after", "request-id": uuid::Uuid::new_v4(), "status": "429"}}});
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::CONTENT_TYPE, "application/json")],
                    body.to_string(),
                )
                    .into_response();
                if let Ok(value) = HeaderValue::from_str(&format!("{retry_after:.3}")) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                response
            }
            Outcome::Error(status, _) => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                // Envelope as for other Graph errors; the codes Graph uses for these
                // outages are UNVERIFIED.
                let code = match status {
                    StatusCode::SERVICE_UNAVAILABLE => "serviceNotAvailable",
                    StatusCode::GATEWAY_TIMEOUT => "gatewayTimeout",
                    _ => "UnknownError",
                };
                let body = json!({"error": {"code": code, "message": "The service is temporarily unavailable (simulated fault).",
                    "innerError": {"date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(), "request-id": uuid::Uuid::new_v4(), "client-request-id": uuid::Uuid::new_v4()}}});
                let mut response = (
                    status,
                    [(header::CONTENT_TYPE, "application/json")],
                    body.to_string(),
                )
                    .into_response();
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                }
                response
            }
            Outcome::Drop => {
                let mut response = Response::new(Body::from_stream(FailingBody(false)));
                response.extensions_mut().insert(Dropped);
                response
            }
        }
    }
}

/// A body stream that fails at once, so the server aborts the connection mid-response.
struct FailingBody(bool);

impl futures_core::Stream for FailingBody {
    type Item = Result<axum::body::Bytes, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.0 {
            return std::task::Poll::Ready(None);
        }
        self.0 = true;
        let error = std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated dropped connection",
        );
        std::task::Poll::Ready(Some(Err(error)))
    }
}
