//! The outgoing side of change notifications (graph-facts §8): the validation handshake
//! with a notification endpoint, the background delivery of queued change notifications
//! (every 200 ms, one POST of up to 100 per subscription, 3 s to answer 2xx, then up to 3
//! retries 1 s apart), lifecycle notifications, and the delivery log.
//!
//! No lock of the simulator is held while a request is out: the queue is taken, the lock
//! released, and only then is anything sent.

use std::collections::HashMap;
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

use crate::SimState;
use crate::model::subscriptions::{Pending, Subscription};

/// How often queued notifications are sent.
pub const TICK: Duration = Duration::from_millis(200);
/// Most notifications in one POST.
pub const MAX_BATCH: usize = 100;
/// The endpoint must answer 2xx within this.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(3);
/// Retries after a failed first attempt, and the pause before each.
pub const RETRIES: u32 = 3;
pub const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// The endpoint must answer the validation request within this.
pub const VALIDATION_TIMEOUT: Duration = Duration::from_secs(10);
/// The delivery log keeps at most this many records (the oldest tenth goes when full).
pub const MAX_RECORDS: usize = 20_000;

/// Which kind of notification a delivery carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryKind {
    Change,
    Lifecycle,
}

/// One POST to a notification endpoint (with its retries).
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryRecord {
    /// When the first attempt started.
    pub at: DateTime<Utc>,
    pub kind: DeliveryKind,
    pub url: String,
    pub subscription_id: Uuid,
    /// Notifications in the body's `value`.
    pub count: usize,
    /// Attempts made (1 to 1 + [`RETRIES`]).
    pub attempts: u32,
    /// The last answer's status, when one came.
    pub status: Option<u16>,
    /// Why the last attempt failed (timeout, connection, non-2xx), when it did.
    pub error: Option<String>,
    /// Whether an attempt was answered 2xx in time.
    pub delivered: bool,
    /// From the first attempt to the last answer, pauses included.
    pub duration_ms: f64,
}

/// The lifecycle events Graph sends (graph-facts §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LifecycleEvent {
    SubscriptionRemoved,
    Missed,
    ReauthorizationRequired,
}

impl LifecycleEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleEvent::SubscriptionRemoved => "subscriptionRemoved",
            LifecycleEvent::Missed => "missed",
            LifecycleEvent::ReauthorizationRequired => "reauthorizationRequired",
        }
    }
}

/// The simulator's HTTP client to notification endpoints: rustls with the ring provider,
/// no redirects. `None` when it cannot be built.
pub fn client(cell: &OnceLock<Option<reqwest::Client>>) -> Option<reqwest::Client> {
    cell.get_or_init(|| {
        static CRYPTO: Once = Once::new();
        CRYPTO.call_once(|| {
            let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        });
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .build()
            .ok()
    })
    .clone()
}

/// The validation handshake: POST `{url}?validationToken=…` (text/plain, empty body); it
/// passes when the endpoint answers 200, `text/plain`, and the decoded token as body
/// within 10 s. The error says what went wrong (for logs; Graph's answer is generic).
pub async fn validate(client: &reqwest::Client, url: &str) -> Result<(), String> {
    // The token's text is UNVERIFIED; spaces and colons make receivers decode it.
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        Uuid::new_v4()
    );
    let target = with_validation_token(url, &token)?;
    let response = client
        .post(target)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body("")
        .timeout(VALIDATION_TIMEOUT)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text_plain = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/plain"));
    let body = response.text().await.map_err(|e| e.to_string())?;
    match (status, text_plain, body == token) {
        (200, true, true) => Ok(()),
        (200, true, false) => Err("the body is not the decoded validation token".to_owned()),
        (200, false, _) => Err("the content type is not text/plain".to_owned()),
        _ => Err(format!("status {status}")),
    }
}

/// `url` with `validationToken` (percent-encoded) added to its query.
fn with_validation_token(url: &str, token: &str) -> Result<reqwest::Url, String> {
    let mut target = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    let encoded = format!("validationToken={}", crate::urlencoding::encode(token));
    let query = match target.query() {
        Some(existing) if !existing.is_empty() => format!("{existing}&{encoded}"),
        _ => encoded,
    };
    target.set_query(Some(&query));
    Ok(target)
}

/// The result of one attempt: the status, and an error unless it was a timely 2xx.
async fn attempt(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
) -> (Option<u16>, Option<String>) {
    let sent = client
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .timeout(DELIVERY_TIMEOUT)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None),
        Ok(response) => (
            Some(response.status().as_u16()),
            Some(format!("status {}", response.status().as_u16())),
        ),
        Err(error) if error.is_timeout() => (None, Some("timed out".to_owned())),
        Err(error) => (None, Some(error.to_string())),
    }
}

/// POSTs `body` to `url`, retrying failures, and says how it went.
async fn post(
    client: reqwest::Client,
    kind: DeliveryKind,
    url: String,
    subscription_id: Uuid,
    body: Value,
) -> DeliveryRecord {
    let at = Utc::now();
    let started = Instant::now();
    let count = body["value"].as_array().map_or(0, Vec::len);
    let mut attempts = 0;
    let (status, error) = loop {
        attempts += 1;
        let (status, error) = attempt(&client, &url, &body).await;
        if error.is_none() || attempts > RETRIES {
            break (status, error);
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    };
    DeliveryRecord {
        at,
        kind,
        url,
        subscription_id,
        count,
        attempts,
        status,
        delivered: error.is_none(),
        error,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}

/// Pending notifications as POST bodies: per subscription in queue order, at most
/// [`MAX_BATCH`] each.
fn batches(pending: Vec<Pending>) -> Vec<(Uuid, String, Value)> {
    let mut order: Vec<Uuid> = Vec::new();
    let mut grouped: HashMap<Uuid, (String, Vec<Value>)> = HashMap::new();
    for item in pending {
        let entry = grouped.entry(item.subscription).or_insert_with(|| {
            order.push(item.subscription);
            (item.url, Vec::new())
        });
        entry.1.push(item.item);
    }
    let mut out = Vec::new();
    for id in order {
        let Some((url, items)) = grouped.remove(&id) else {
            continue;
        };
        for chunk in items.chunks(MAX_BATCH) {
            out.push((id, url.clone(), json!({"value": chunk})));
        }
    }
    out
}

/// Takes every queued notification of every tenant (briefly holding the world lock).
fn take_pending(state: &SimState) -> Vec<Pending> {
    let mut world = state.world_mut();
    world
        .tenants
        .iter_mut()
        .flat_map(|t| t.subscriptions.take_pending())
        .collect()
}

/// Sends everything queued now, concurrently per POST, and logs each delivery.
pub async fn deliver_pending(state: &SimState) -> Vec<DeliveryRecord> {
    let pending = take_pending(state);
    if pending.is_empty() {
        return Vec::new();
    }
    let Some(client) = state.http_client() else {
        tracing::warn!("no HTTP client: change notifications dropped");
        return Vec::new();
    };
    let mut posts = JoinSet::new();
    for (id, url, body) in batches(pending) {
        posts.spawn(post(client.clone(), DeliveryKind::Change, url, id, body));
    }
    let mut records = Vec::new();
    while let Some(done) = posts.join_next().await {
        if let Ok(record) = done {
            state.record_delivery(record.clone());
            records.push(record);
        }
    }
    records
}

/// Sends a lifecycle notification for a subscription (to its lifecycle URL, else its
/// notification URL) and logs it.
pub async fn send_lifecycle(
    state: &SimState,
    subscription: &Subscription,
    event: LifecycleEvent,
) -> DeliveryRecord {
    let url = subscription.lifecycle_url().to_owned();
    let body = subscription.lifecycle_notification(event.as_str());
    let record = match state.http_client() {
        Some(client) => post(client, DeliveryKind::Lifecycle, url, subscription.id, body).await,
        None => DeliveryRecord {
            at: Utc::now(),
            kind: DeliveryKind::Lifecycle,
            url,
            subscription_id: subscription.id,
            count: 1,
            attempts: 0,
            status: None,
            error: Some("no HTTP client".to_owned()),
            delivered: false,
            duration_ms: 0.0,
        },
    };
    state.record_delivery(record.clone());
    record
}

/// The background deliverer of a running simulator.
pub struct Deliverer {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Deliverer {
    pub fn spawn(state: SimState) -> Self {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(state, stopped));
        Self {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Tells the task to stop (deliveries under way are abandoned).
    pub fn signal(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops the task and waits for it.
    pub async fn stop(mut self) {
        self.signal();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Deliverer {
    fn drop(&mut self) {
        self.signal();
    }
}

async fn run(state: SimState, mut stopped: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick() => {}
        }
        tokio::select! {
            _ = &mut stopped => break,
            _ = deliver_pending(&state) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_percent_encoded_into_the_query() {
        let url = with_validation_token("http://127.0.0.1:9/hook?x=1", "a b:c").expect("url");
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/hook?x=1&validationToken=a%20b%3Ac"
        );
    }

    #[test]
    fn batches_hold_at_most_100_in_queue_order() {
        let id = Uuid::new_v4();
        let other = Uuid::new_v4();
        let mut pending: Vec<Pending> = (0..150)
            .map(|i| Pending {
                subscription: id,
                url: "http://a/".to_owned(),
                item: json!(i),
            })
            .collect();
        pending.insert(
            3,
            Pending {
                subscription: other,
                url: "http://b/".to_owned(),
                item: json!("x"),
            },
        );
        let out = batches(pending);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].2["value"].as_array().map(Vec::len), Some(100));
        assert_eq!(out[0].2["value"][0], 0);
        assert_eq!(out[1].2["value"].as_array().map(Vec::len), Some(50));
        assert_eq!((out[2].0, out[2].1.as_str()), (other, "http://b/"));
    }
}
