//! Serving the application on a bound listener until a shutdown signal, letting requests in
//! flight finish.
//!
//! hyper, not axum, reads the request head, and it answers a head it cannot hold with a bare
//! 431 (no body, no request id). Its limits are therefore set well above the application's
//! ([`crate::finish::MAX_HEADER_BYTES`], [`crate::finish::MAX_HEADERS`]), so that oversized
//! headers normally reach [`crate::finish`] and get a problem document; only a head past
//! [`MAX_HEAD_BYTES`] or [`MAX_HEAD_FIELDS`] still gets hyper's bare 431. The head must
//! arrive within [`HEADER_READ_TIMEOUT`], so the larger buffer cannot be held open forever.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::Layer;

/// The largest request head hyper reads (it answers a bare 431 beyond).
pub const MAX_HEAD_BYTES: usize = 2 * 1024 * 1024;
/// The most header fields hyper parses (it answers a bare 431 beyond).
pub const MAX_HEAD_FIELDS: usize = 1000;
/// How long a client may take to send a request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
#[error("the HTTP server failed: {0}")]
pub struct ServeError(#[from] std::io::Error);

/// Serves `app` on `listener` until `shutdown` completes; connections in flight are then
/// allowed to finish. Client addresses are made available for rate limiting.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // Flips to true once, when `shutdown` completes: each connection then shuts down gracefully.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut shutdown = pin!(shutdown);
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !is_connection_error(&error) {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::error!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let service = TowerToHyperService::new(Extension(ConnectInfo(peer)).layer(app.clone()));
        let mut stopped = stopped.clone();
        connections.spawn(async move {
            let builder = builder();
            let mut connection =
                pin!(builder.serve_connection_with_upgrades(TokioIo::new(stream), service));
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                _ = stopped.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// HTTP/1.1 and HTTP/2 (prior knowledge), as `axum::serve` does, with the head limits above.
fn builder() -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEAD_FIELDS);
    builder.http2().enable_connect_protocol();
    builder
}

/// Errors of one connection that the listener itself survives.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
