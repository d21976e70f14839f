//! Prometheus metrics of the HTTP layer: request counts and latency by method, route
//! template and status, refused authentications by reason, and where key rows came from
//! (memory or database). Routes are labelled by
//! their template (`/api/v1/api-keys/{id}`), never the raw path, so the label set stays
//! bounded; unmatched paths share one label. Queue depth by job kind and state, and how
//! long jobs wait to start, are read from the database at each scrape, so they describe
//! every worker process, not just this one.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::app::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    kind: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuantileLabels {
    quantile: String,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    auth_failures: Family<AuthLabels, Counter>,
    key_lookups: Family<SourceLabels, Counter>,
    queue_depth: Family<QueueLabels, Gauge>,
    job_wait: Family<QuantileLabels, FloatGauge>,
    jobs_started: Gauge,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tenantry");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        let auth_failures = Family::<AuthLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            latency.clone(),
        );
        registry.register(
            "auth_failures",
            "API keys refused, by reason",
            auth_failures.clone(),
        );
        let key_lookups = Family::<SourceLabels, Counter>::default();
        registry.register(
            "api_key_lookups",
            "API key rows authentication took from this process's memory or from the database",
            key_lookups.clone(),
        );
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        let job_wait = Family::<QuantileLabels, FloatGauge>::default();
        let jobs_started = Gauge::default();
        registry.register(
            "jobs",
            "Unfinished jobs by kind and state, read at scrape time",
            queue_depth.clone(),
        );
        registry.register(
            "job_wait_seconds",
            "Seconds between a job being due and starting, over jobs started in the last 5 minutes",
            job_wait.clone(),
        );
        registry.register(
            "jobs_started_recently",
            "Jobs started in the last 5 minutes",
            jobs_started.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            auth_failures,
            key_lookups,
            queue_depth,
            job_wait,
            jobs_started,
        }
    }

    /// Brings the key lookup counters up to the store's totals for this scrape.
    pub(crate) fn set_key_lookups(&self, lookups: tenantry_store::KeyLookups) {
        for (source, total) in [("memory", lookups.memory), ("database", lookups.database)] {
            let counter = self.key_lookups.get_or_create(&SourceLabels { source });
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// Sets the queue figures read from the database for this scrape.
    pub(crate) fn set_queue(&self, depth: &[(String, String, i64)], wait: (f64, f64, i64)) {
        self.queue_depth.clear();
        for (kind, state, count) in depth {
            self.queue_depth
                .get_or_create(&QueueLabels {
                    kind: kind.clone(),
                    state: state.clone(),
                })
                .set(*count);
        }
        for (quantile, value) in [("0.5", wait.0), ("0.99", wait.1)] {
            self.job_wait
                .get_or_create(&QuantileLabels {
                    quantile: quantile.to_owned(),
                })
                .set(value);
        }
        self.jobs_started.set(wait.2);
    }

    pub(crate) fn auth_failure(&self, reason: &str) {
        self.auth_failures
            .get_or_create(&AuthLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Only standard methods become labels, so made-up ones cannot grow the label set.
    let method = match request.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    metrics
        .latency
        .get_or_create(&RouteLabels { method, route })
        .observe(started.elapsed().as_secs_f64());
    response
}
