//! Tenantry's HTTP API: the axum router, authentication, RFC 9457 problem responses, the
//! OpenAPI document, health probes and metrics.
//!
//! Handlers stay thin: they parse input, obtain an [`tenantry_store::MspScope`] from the
//! authenticated caller and shape the output. Every cross-cutting concern (request ids,
//! problem bodies, timeouts, body limits, CORS, metrics, panics) is a layer in [`app`].

mod app;
mod auth_limit;
mod caller;
mod config;
mod extract;
mod finish;
mod key_watch;
mod metrics;
mod openapi;
mod pagination;
mod problem;
mod request_id;
mod routes;
mod schemas;
mod serve;

pub use app::{AppState, build};
pub use config::ApiConfig;
pub use key_watch::spawn_key_watch;
pub use metrics::Metrics;
pub use problem::{ApiError, FieldError, Problem};
pub use serve::{ServeError, serve};
