//! The last word on every error response: whatever produced it (a handler's [`ApiError`],
//! axum's 405, the timeout's 408, the body limit's 413, a caught panic's 500), the client
//! gets an `application/problem+json` body with a stable code and the request id, and the
//! cause of a 5xx goes to the log only.
//!
//! [`ApiError`]: crate::ApiError

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::problem::{InternalCause, PROBLEM_CONTENT_TYPE, Problem};
use crate::request_id::RequestId;

pub async fn problems(request: Request, next: Next) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.to_string());
    let mut response = next.run(request).await;
    let status = response.status();
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
