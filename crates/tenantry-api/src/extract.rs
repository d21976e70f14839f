//! axum's extractors, with their rejections turned into problem responses: a JSON syntax
//! error is a 400, a well-formed body of the wrong shape a 422, a missing content type a
//! 415, an oversized body a 413. Rejection texts from serde can quote the offending value;
//! quoted strings are cut out, since a misplaced field may hold a secret.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;

use crate::problem::{ApiError, FieldError};

/// A JSON body.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// An optional JSON body (`Option<ApiJson<T>>`): none without a content type, else parsed
/// and rejected exactly as [`ApiJson`].
impl<T, S> axum::extract::OptionalFromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let body =
            <axum::Json<T> as axum::extract::OptionalFromRequest<S>>::from_request(request, state)
                .await?;
        Ok(body.map(|axum::Json(value)| ApiJson(value)))
    }
}

/// A query string.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Path parameters.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::validation(vec![FieldError::new(
                "body",
                redact_quoted(&rejection.body_text()),
            )]),
            _ => ApiError::bad_request(format!(
                "The body is not valid JSON: {}",
                redact_quoted(&rejection.body_text())
            )),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(redact_quoted(&rejection.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(redact_quoted(&rejection.body_text()))
    }
}

/// Replaces the contents of every `"…"` with `…`, so echoed input values never reach a
/// response. Field names (quoted with backticks by serde) stay readable.
fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for c in text.chars() {
        if c == '"' {
            if !inside {
                out.push_str("\"…\"");
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_quoted;

    #[test]
    fn removes_quoted_values_but_keeps_field_names() {
        assert_eq!(
            redact_quoted(r#"name: invalid type: string "hunter2", expected u32 at `role`"#),
            r#"name: invalid type: string "…", expected u32 at `role`"#
        );
    }
}
