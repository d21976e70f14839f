//! Assembles the router: routes, shared state and the layers every request passes through.
//!
//! Layers, from the outside in: request id → trace span → metrics → problem bodies → CORS
//! → timeout → panic catcher → body limit → route. The problem layer sits outside the
//! timeout, panic and limit layers so that what they answer becomes problem+json too.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::IntoResponse;
use tenantry_store::Store;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::auth_limit::AuthFailureLimiter;
use crate::config::ApiConfig;
use crate::metrics::{self, Metrics};
use crate::openapi::{ApiDoc, ApiDocs};
use crate::request_id::{self, RequestId, X_REQUEST_ID};
use crate::{finish, routes};

/// What every handler can reach. Cloned several times per request (each layer and
/// extractor that takes state), so it is one `Arc`: a clone is one atomic increment, not
/// a copy of every client, pool handle and string inside.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    pub(crate) store: Store,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) auth_limiter: Arc<AuthFailureLimiter>,
    pub(crate) docs: Arc<ApiDocs>,
    pub(crate) trusted_proxies: Arc<[std::net::IpAddr]>,
    pub(crate) validator: tenantry_graph::Validator,
    /// Where Microsoft Graph reaches this service (for change notifications).
    pub(crate) public_url: Option<String>,
    /// The process's Graph client and token cache (checking action requests, removing
    /// subscriptions).
    pub(crate) graph: tenantry_graph::GraphAccess,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("http.cors_allowed_origins: {0:?} is not a valid origin")]
    CorsOrigin(String),
    #[error("rendering the OpenAPI document: {0}")]
    OpenApi(#[from] serde_json::Error),
}

/// Builds the whole HTTP application.
pub fn build(
    store: Store,
    graph: tenantry_graph::GraphAccess,
    config: &ApiConfig,
    metrics: Arc<Metrics>,
) -> Result<Router, BuildError> {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::all())
        .split_for_parts();
    crate::openapi::add_common_responses(&mut doc);
    let state = AppState(Arc::new(Shared {
        store,
        metrics,
        auth_limiter: Arc::new(AuthFailureLimiter::new(config.auth_failures_per_minute)),
        docs: Arc::new(ApiDocs::new(&doc)?),
        trusted_proxies: config.trusted_proxies.clone().into(),
        public_url: config.public_url.clone(),
        validator: graph.validator(),
        graph,
    }));
    let mut router = router
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(RequestBodyLimitLayer::new(config.body_limit_bytes))
        .layer(CatchPanicLayer::custom(|_panic| {
            tracing::error!("a request handler panicked");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout(),
        ));
    if let Some(cors) = cors(&config.cors_allowed_origins)? {
        router = router.layer(cors);
    }
    Ok(router
        .layer(middleware::from_fn(finish::problems))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_failure(()),
        )
        .layer(middleware::from_fn(request_id::assign))
        .with_state(state))
}

/// One span per request; the caller's MSP and key id are recorded once authenticated.
/// Neither headers nor the query string are recorded: they may carry credentials.
fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map_or("", |id| &*id.0);
    tracing::info_span!(
        "request",
        request_id,
        method = %request.method(),
        path = request.uri().path(),
        msp_id = tracing::field::Empty,
        key_id = tracing::field::Empty,
    )
}

/// CORS for the dashboard origins named in config; none named, no CORS layer at all.
fn cors(origins: &[String]) -> Result<Option<CorsLayer>, BuildError> {
    if origins.is_empty() {
        return Ok(None);
    }
    let origins = origins
        .iter()
        .map(|origin| {
            HeaderValue::from_str(origin.trim_end_matches('/'))
                .map_err(|_| BuildError::CorsOrigin(origin.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                X_REQUEST_ID.clone(),
                header::HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([X_REQUEST_ID.clone(), header::RETRY_AFTER, header::LOCATION])
            .max_age(std::time::Duration::from_secs(600)),
    ))
}
