//! axum's extractors, with their rejections turned into problem responses: a JSON syntax
//! error is a 400, a well-formed body of the wrong shape a 422, a missing content type a
//! 415, an oversized body a 413. Rejection texts from serde can quote the offending value;
//! quoted strings are cut out, since a misplaced field may hold a secret.
//!
//! Stricter than axum in three ways, so that no route can forget them:
//! - a JSON body declared in another charset than UTF-8 is a 415 (it would be read as
//!   UTF-8 regardless);
//! - a JSON object that repeats a key, at any depth, is a 422 (serde keeps the last value
//!   of a `serde_json::Value` silently, while typed bodies refuse duplicate fields);
//! - a query value holding a NUL character is a 422 naming the parameter (PostgreSQL text
//!   cannot hold NUL, so it would otherwise fail in the database).

use std::collections::HashSet;
use std::fmt;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::problem::{ApiError, FieldError};

/// A JSON body (`application/json` or `application/*+json`, UTF-8, no repeated keys).
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_utf8_json(request.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(request, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// An optional JSON body (`Option<ApiJson<T>>`): none without a content type, else parsed
/// and rejected exactly as [`ApiJson`].
impl<T, S> axum::extract::OptionalFromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if !request.headers().contains_key(header::CONTENT_TYPE) {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(request, state)
            .await
            .map(Some)
    }
}

/// Whether the content type is JSON (`application/json` or `application/…+json`) with no
/// `charset` parameter, or with `charset=utf-8`.
fn is_utf8_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let is_json = essence
        .strip_prefix("application/")
        .is_some_and(|subtype| subtype == "json" || subtype.ends_with("+json"));
    is_json
        && parts.all(|parameter| match parameter.split_once('=') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
                let charset = value.trim().trim_matches('"');
                charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("utf8")
            }
            _ => true,
        })
}

/// Parses a body as axum's `Json` does (same 400/422 split), then refuses repeated keys.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let axum::Json(value) = axum::Json::<T>::from_bytes(bytes)?;
    if let Some(key) = repeated_key(bytes) {
        return Err(ApiError::validation(vec![FieldError::new(
            "body",
            format!("has a duplicate key `{key}`: a key may appear only once in an object"),
        )]));
    }
    Ok(value)
}

/// The first key some object of `json` repeats, if any (`json` is known to be valid).
fn repeated_key(json: &[u8]) -> Option<String> {
    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let _ = NoRepeatedKeys { found: &mut found }.deserialize(&mut deserializer);
    found.map(|key| key.chars().take(100).collect())
}

/// Walks a JSON document and stops at the first object that repeats a key, noting it.
struct NoRepeatedKeys<'a> {
    found: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for NoRepeatedKeys<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoRepeatedKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(NoRepeatedKeys {
                found: &mut *self.found,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                *self.found = Some(key);
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value_seed(NoRepeatedKeys {
                found: &mut *self.found,
            })?;
            seen.insert(key);
        }
        Ok(())
    }
}

/// A query string. Values are checked for NUL characters before they are parsed.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        refuse_nul(&parts.uri)?;
        let Query(value) = Query::<T>::try_from_uri(&parts.uri)?;
        Ok(ApiQuery(value))
    }
}

/// A 422 naming every parameter whose value holds a NUL character (`%00`).
fn refuse_nul(uri: &Uri) -> Result<(), ApiError> {
    // A query that does not even split into pairs is left to the typed parse to report.
    let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(uri) else {
        return Ok(());
    };
    let mut named = HashSet::new();
    let errors: Vec<FieldError> = pairs
        .into_iter()
        .filter(|(name, value)| value.contains('\0') && named.insert(name.clone()))
        .map(|(name, _)| {
            FieldError::new(
                name.replace('\0', "%00"),
                "must not contain a NUL character (%00)",
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

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

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            _ => ApiError::bad_request("The body could not be read."),
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
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::{is_utf8_json, redact_quoted, repeated_key};

    #[test]
    fn removes_quoted_values_but_keeps_field_names() {
        assert_eq!(
            redact_quoted(r#"name: invalid type: string "hunter2", expected u32 at `role`"#),
            r#"name: invalid type: string "…", expected u32 at `role`"#
        );
    }

    #[test]
    fn finds_repeated_keys_at_any_depth_only() {
        assert_eq!(repeated_key(br#"{"a": 1, "b": 2}"#), None);
        assert_eq!(repeated_key(br#"[{"a": 1}, {"a": 2}]"#), None);
        assert_eq!(repeated_key(br#"{"a": {"a": {"a": null}}}"#), None);
        assert_eq!(repeated_key(br#"{"a": 1, "a": 2}"#).as_deref(), Some("a"));
        assert_eq!(
            repeated_key(br#"{"x": [1, {"k\u0031": true, "k1": false}]}"#).as_deref(),
            Some("k1"),
            "keys compare after unescaping"
        );
    }

    #[test]
    fn takes_json_in_utf8_only() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            is_utf8_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=UTF-8"));
        assert!(with("application/problem+json; charset=\"utf-8\""));
        assert!(!with("application/json; charset=utf-16"));
        assert!(!with("text/json"));
        assert!(!with("application/jsonx"));
        assert!(!is_utf8_json(&HeaderMap::new()));
    }
}
