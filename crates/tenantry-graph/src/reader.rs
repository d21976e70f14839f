//! Background reads of a tenant for discovery: pages (`@odata.nextLink`, delta links),
//! `$batch` of up to 20 reads, `x-ms-throttle-priority: Low`, and patience with
//! Microsoft's throttling: a short `Retry-After` is waited out here, a long one (or one
//! that keeps coming back) is handed to the job engine to snooze the job. Every request
//! and every throttle is counted for the run record, the way Microsoft counts them
//! against its limits ("Requests in a batch are evaluated individually against the
//! applicable throttling limits", json-batching.md): a `$batch` of 20 reads is 20
//! requests, and one round trip.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::calls::{GraphFailure, classify_raw, failure, send_failure};
use crate::http_client::GraphHttp;

/// Graph's limit of requests in one `$batch`.
pub const BATCH_LIMIT: usize = 20;

/// Throttling waits up to this long are taken inline; longer ones snooze the job.
const INLINE_WAIT: Duration = Duration::from_secs(30);
/// Retries of one request (throttled or 5xx) before the failure goes to the job engine.
const RETRIES: u32 = 6;

/// One page of a collection.
#[derive(Debug, Default)]
pub struct Page {
    pub value: Vec<Value>,
    pub next_link: Option<String>,
    pub delta_link: Option<String>,
}

/// One page of a collection as Microsoft sent it: the objects stay JSON text, for a
/// database that parses them itself (discovery writes pages without building them here).
#[derive(Debug, Default)]
pub struct RawPage {
    /// The `value` array, verbatim (the body as an array of one when it is one object).
    pub objects: String,
    /// How many objects the array holds.
    pub count: usize,
    pub next_link: Option<String>,
    pub delta_link: Option<String>,
}

/// The parts of a page [`RawPage`] keeps, borrowed from the body.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    value: Option<&'a serde_json::value::RawValue>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta_link: Option<String>,
}

/// A tenant reader: one token, a bound on requests in flight, counters for the run
/// record.
pub struct Reader {
    http: GraphHttp,
    token: SecretString,
    in_flight: tokio::sync::Semaphore,
    requests: AtomicU32,
    round_trips: AtomicU32,
    throttled: AtomicU32,
}

/// What a reader sent since its counters were last taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests as Microsoft throttles them: each `$batch` item on its own.
    pub requests: u32,
    /// HTTP requests (a `$batch` once).
    pub round_trips: u32,
    /// Throttling answers met (a throttled `$batch` item counts once).
    pub throttled: u32,
}

impl Reader {
    /// A reader sending at most `concurrency` requests at once.
    pub fn with_concurrency(http: GraphHttp, token: SecretString, concurrency: usize) -> Self {
        Self {
            http,
            token,
            in_flight: tokio::sync::Semaphore::new(concurrency.max(1)),
            requests: AtomicU32::new(0),
            round_trips: AtomicU32::new(0),
            throttled: AtomicU32::new(0),
        }
    }

    /// Requests sent and throttling answers met, since the last call.
    pub fn take_counters(&self) -> Counters {
        Counters {
            requests: self.requests.swap(0, Ordering::Relaxed),
            round_trips: self.round_trips.swap(0, Ordering::Relaxed),
            throttled: self.throttled.swap(0, Ordering::Relaxed),
        }
    }

    /// The absolute URL of `path` (after `/v1.0`).
    pub fn url(&self, path: &str) -> String {
        self.http.config.graph(path)
    }

    /// Whether a link Microsoft returned points at the configured Graph host (the bearer
    /// token never goes anywhere else).
    fn on_graph(&self, link: &str) -> bool {
        link.starts_with(&format!("{}/", self.http.config.graph_url))
    }

    /// GETs one page, retrying throttling and outages within limits.
    pub async fn page(&self, url: &str) -> Result<Page, GraphFailure> {
        let raw = self.get_raw(url).await?;
        let mut body: Value = serde_json::from_slice(&raw)
            .map_err(|_| GraphFailure::Unavailable("unreadable answer".into()))?;
        // A single object (e.g. `/applications(appId='…')`) is a page of one.
        let value = match body.get_mut("value").map(Value::take) {
            Some(Value::Array(values)) => values,
            Some(_) => Vec::new(),
            None => vec![body.clone()],
        };
        Ok(Page {
            next_link: self.checked_link(body["@odata.nextLink"].as_str())?,
            delta_link: self.checked_link(body["@odata.deltaLink"].as_str())?,
            value,
        })
    }

    /// GETs one page of a collection like [`Reader::page`], leaving its objects as text.
    pub async fn raw_page(&self, url: &str) -> Result<RawPage, GraphFailure> {
        let raw = self.get_raw(url).await?;
        let unreadable = || GraphFailure::Unavailable("unreadable answer".into());
        let envelope: Envelope<'_> = serde_json::from_slice(&raw).map_err(|_| unreadable())?;
        // A single object (e.g. `/applications(appId='…')`) is a page of one, as in `page`.
        let objects = match envelope.value {
            Some(value) => value.get().to_owned(),
            None => format!("[{}]", String::from_utf8_lossy(&raw)),
        };
        let count = serde_json::from_str::<Vec<serde::de::IgnoredAny>>(&objects)
            .map_err(|_| unreadable())?
            .len();
        Ok(RawPage {
            objects,
            count,
            next_link: self.checked_link(envelope.next_link.as_deref())?,
            delta_link: self.checked_link(envelope.delta_link.as_deref())?,
        })
    }

    /// GETs `url` (on Microsoft Graph only), retrying throttling and outages within
    /// limits; the body as Microsoft sent it.
    async fn get_raw(&self, url: &str) -> Result<Vec<u8>, GraphFailure> {
        if !self.on_graph(url) {
            return Err(GraphFailure::Unavailable(
                "a link pointed outside Microsoft Graph".into(),
            ));
        }
        self.with_retries(|| self.send_raw(self.http.client.get(url)))
            .await
    }

    /// A link Microsoft returned, refused unless it points at Microsoft Graph.
    fn checked_link(&self, link: Option<&str>) -> Result<Option<String>, GraphFailure> {
        match link {
            Some(link) if self.on_graph(link) => Ok(Some(link.to_owned())),
            Some(_) => Err(GraphFailure::Unavailable(
                "a link pointed outside Microsoft Graph".into(),
            )),
            None => Ok(None),
        }
    }

    /// Sends up to [`BATCH_LIMIT`] GETs (relative URLs, e.g. `/groups/{id}/members`) in one
    /// `$batch`; items throttled or failing with 5xx are sent again (in a smaller batch)
    /// after the longest `Retry-After`. Returns each item's result, in request order.
    pub async fn batch(&self, urls: &[String]) -> Vec<Result<Value, GraphFailure>> {
        let mut results: Vec<Option<Result<Value, GraphFailure>>> = vec![None; urls.len()];
        let mut pending: Vec<usize> = (0..urls.len()).collect();
        for round in 0..=RETRIES {
            if pending.is_empty() {
                break;
            }
            let requests: Vec<Value> = pending
                .iter()
                .map(|i| json!({"id": i.to_string(), "method": "GET", "url": urls[*i]}))
                .collect();
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            self.requests.fetch_add(
                u32::try_from(pending.len()).unwrap_or(u32::MAX),
                Ordering::Relaxed,
            );
            let answer = self
                .send(
                    self.http
                        .client
                        .post(self.url("/$batch"))
                        .json(&json!({"requests": requests})),
                )
                .await;
            let mut wait = Duration::ZERO;
            let mut again = Vec::new();
            match answer {
                Ok(mut body) => {
                    let mut responses = match body.get_mut("responses").map(Value::take) {
                        Some(Value::Array(responses)) => responses,
                        _ => Vec::new(),
                    };
                    for index in &pending {
                        let item = responses
                            .iter_mut()
                            .find(|r| r["id"].as_str() == Some(&index.to_string()));
                        let result = match item {
                            None => Err(GraphFailure::Unavailable("batch item missing".into())),
                            Some(item) => {
                                let status = item["status"].as_u64().unwrap_or(500) as u16;
                                if (200..300).contains(&status) {
                                    Ok(item["body"].take())
                                } else {
                                    let retry = item["headers"]["Retry-After"]
                                        .as_str()
                                        .or_else(|| item["headers"]["retry-after"].as_str())
                                        .and_then(|v| v.trim().parse::<f64>().ok())
                                        .and_then(|s| Duration::try_from_secs_f64(s).ok());
                                    failure(status, retry, item["body"].take())
                                }
                            }
                        };
                        match &result {
                            Err(f @ GraphFailure::Throttled { .. })
                            | Err(f @ GraphFailure::Unavailable(_))
                                if round < RETRIES =>
                            {
                                if matches!(f, GraphFailure::Throttled { .. }) {
                                    self.throttled.fetch_add(1, Ordering::Relaxed);
                                }
                                wait = wait.max(backoff(f, round));
                                again.push(*index);
                            }
                            _ => results[*index] = Some(result),
                        }
                    }
                }
                Err(whole) => {
                    if matches!(whole, GraphFailure::Throttled { .. }) {
                        self.throttled.fetch_add(1, Ordering::Relaxed);
                    }
                    if whole.is_outage() && round < RETRIES {
                        wait = backoff(&whole, round);
                        again = pending.clone();
                    } else {
                        for index in &pending {
                            results[*index] = Some(Err(whole.clone()));
                        }
                    }
                }
            }
            if wait > INLINE_WAIT {
                for index in &again {
                    results[*index] = Some(Err(GraphFailure::Throttled {
                        retry_after: Some(wait),
                    }));
                }
                again.clear();
            }
            pending = again;
            if !pending.is_empty() {
                tokio::time::sleep(wait).await;
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(GraphFailure::Unavailable("no answer".into()))))
            .collect()
    }

    /// Sends one request as background work (token, low throttle priority, a fresh
    /// client request id) within the bound on requests in flight.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, GraphFailure> {
        let raw = self.send_raw(request).await?;
        serde_json::from_slice(&raw)
            .map_err(|_| GraphFailure::Unavailable("unreadable answer".into()))
    }

    /// [`Reader::send`], keeping the body as Microsoft sent it.
    async fn send_raw(&self, request: reqwest::RequestBuilder) -> Result<Vec<u8>, GraphFailure> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| GraphFailure::Unavailable("reader closed".into()))?;
        let response = request
            .bearer_auth(self.token.expose_secret())
            .header("x-ms-throttle-priority", "Low")
            .header("client-request-id", uuid::Uuid::new_v4().to_string())
            .send()
            .await
            .map_err(|e| send_failure(&e))?;
        classify_raw(response).await
    }

    /// Runs `send` until it succeeds, fails for good, or the retries or the inline wait
    /// run out.
    async fn with_retries<T, F, Fut>(&self, send: F) -> Result<T, GraphFailure>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, GraphFailure>>,
    {
        let mut round = 0;
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            match send().await {
                Ok(body) => return Ok(body),
                Err(failure) if failure.is_outage() => {
                    if matches!(failure, GraphFailure::Throttled { .. }) {
                        self.throttled.fetch_add(1, Ordering::Relaxed);
                    }
                    let wait = backoff(&failure, round);
                    if round >= RETRIES || wait > INLINE_WAIT {
                        return Err(match failure {
                            GraphFailure::Throttled { .. } => GraphFailure::Throttled {
                                retry_after: Some(wait),
                            },
                            other => other,
                        });
                    }
                    tokio::time::sleep(wait).await;
                    round += 1;
                }
                Err(failure) => return Err(failure),
            }
        }
    }
}

/// How long to wait before retrying: Microsoft's `Retry-After` when given, else an
/// exponential backoff with jitter (identity protection throttles without `Retry-After`).
fn backoff(failure: &GraphFailure, round: u32) -> Duration {
    let exponential = Duration::from_millis(250 * 2u64.pow(round.min(6)));
    let jitter = Duration::from_millis(fastrand::u64(0..=250));
    match failure {
        GraphFailure::Throttled {
            retry_after: Some(after),
        } => *after + jitter / 4,
        _ => exponential + jitter,
    }
}
