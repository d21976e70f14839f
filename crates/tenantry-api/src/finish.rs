//! The last word on every error response: whatever produced it (a handler's [`ApiError`],
//! axum's 405, the timeout's 408, the body limit's 413, a caught panic's 500), the client
//! gets an `application/problem+json` body with a stable code and the request id, and the
//! cause of a 5xx goes to the log only.
//!
//! Also, for every response: `X-Content-Type-Options: nosniff`; and every request whose
//! headers pass [`MAX_HEADER_BYTES`] or [`MAX_HEADERS`] is answered 431 here, before any
//! route sees it (hyper's own, larger limits in [`crate::serve`] only catch what is too big
//! to be read at all).
//!
//! [`ApiError`]: crate::ApiError

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::problem::{InternalCause, PROBLEM_CONTENT_TYPE, Problem};
use crate::request_id::RequestId;

/// The most header bytes (names and values) a request may carry.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The most header fields a request may carry.
pub const MAX_HEADERS: usize = 100;

pub async fn problems(request: Request, next: Next) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.to_string());
    if headers_too_large(request.headers()) {
        let response = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE.into_response();
        let problem = Problem::for_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        return nosniff(write(
            response,
            Problem {
                request_id,
                detail: format!(
                    "The request headers are larger, or more, than the server accepts (at most {MAX_HEADERS} fields and {} KiB).",
                    MAX_HEADER_BYTES / 1024
                ),
                ..problem
            },
        ));
    }
    let response = nosniff(next.run(request).await);
    finish(response, request_id)
}

/// Marks a response whose error body is meant for a person's browser (the consent
/// callback's HTML pages): it is passed on as it is, not replaced by a problem document.
#[derive(Clone, Copy)]
pub struct OwnBody;

fn finish(mut response: Response, request_id: Option<String>) -> Response {
    let status = response.status();
    if response.extensions_mut().remove::<OwnBody>().is_some() {
        return response;
    }
    if let Some(InternalCause(cause)) = response.extensions_mut().remove::<InternalCause>() {
        tracing::error!(%status, request_id = request_id.as_deref().unwrap_or(""), %cause, "request failed");
    }
    let problem = match response.extensions_mut().remove::<Problem>() {
        Some(problem) => problem,
        None if (status.is_client_error() || status.is_server_error())
            && !is_problem(&response) =>
        {
            if status.is_server_error() {
                tracing::error!(%status, request_id = request_id.as_deref().unwrap_or(""), "a layer answered with a server error");
            }
            Problem::for_status(status)
        }
        None => return response,
    };
    write(
        response,
        Problem {
            request_id,
            ..problem
        },
    )
}

fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| {
            value
                .as_bytes()
                .starts_with(PROBLEM_CONTENT_TYPE.as_bytes())
        })
}

fn write(response: Response, problem: Problem) -> Response {
    let (mut parts, _) = response.into_parts();
    let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

fn headers_too_large(headers: &HeaderMap) -> bool {
    headers.len() > MAX_HEADERS
        || headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum::<usize>()
            > MAX_HEADER_BYTES
}

fn nosniff(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
