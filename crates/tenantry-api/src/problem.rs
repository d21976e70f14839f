//! RFC 9457 problem details with a stable `code`, and [`ApiError`], the one error type
//! handlers return.
//!
//! Converting an error into a response has no side effects: the [`Problem`] rides in the
//! response extensions, and the [`crate::finish`] layer adds the request id, logs the
//! cause of 5xx answers and writes the body. So a 5xx body can never carry internal detail.

use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tenantry_domain::ErrorCode;
use tenantry_store::StoreError;
use utoipa::ToSchema;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem document, as every error response carries it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "https://tenantry.dev/problems/unauthenticated",
    "title": "Authentication required",
    "status": 401,
    "code": "UNAUTHENTICATED",
    "detail": "Send an API key as `Authorization: Bearer <key>`.",
    "request_id": "0193a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d"
}))]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    /// Stable, machine-readable code; clients branch on this.
    pub code: String,
    /// What happened in this occurrence, and what to do about it.
    pub detail: String,
    /// Field-level validation errors, when the request body or query was invalid.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The id of this request, also in the `x-request-id` header and in the service's logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Members particular to the problem (e.g. `reason`, `missing_permissions`).
    #[serde(flatten)]
    #[schema(additional_properties)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

/// One invalid input field.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name (dotted path for nested fields).
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Problem {
    pub fn new(code: ErrorCode, status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            type_uri: code.type_uri(),
            title: code.title().to_owned(),
            status: status.as_u16(),
            code: code.as_str().to_owned(),
            detail: detail.into(),
            errors: Vec::new(),
            request_id: None,
            extensions: serde_json::Map::new(),
        }
    }

    /// Adds a problem-specific member.
    pub fn with(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(name.to_owned(), value);
        self
    }

    /// The problem for a response that some layer produced without one (axum's 405, a
    /// timeout's 408, a body limit's 413, a panic's 500).
    pub fn for_status(status: StatusCode) -> Self {
        let (code, detail) = match status {
            StatusCode::BAD_REQUEST => {
                (ErrorCode::InvalidRequest, "The request could not be read.")
            }
            StatusCode::UNAUTHORIZED => (ErrorCode::Unauthenticated, "Authentication required."),
            StatusCode::FORBIDDEN => (ErrorCode::Forbidden, "Not allowed."),
            StatusCode::NOT_FOUND => (ErrorCode::NotFound, "There is nothing at this address."),
            StatusCode::METHOD_NOT_ALLOWED => (
                ErrorCode::MethodNotAllowed,
                "This method is not allowed here; see the Allow header.",
            ),
            StatusCode::REQUEST_TIMEOUT => (
                ErrorCode::RequestTimeout,
                "The request took longer than the server allows.",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                ErrorCode::PayloadTooLarge,
                "The request body is larger than the server accepts.",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                ErrorCode::UnsupportedMediaType,
                "Send the body as application/json.",
            ),
            StatusCode::TOO_MANY_REQUESTS => {
                (ErrorCode::RateLimited, "Too many requests; retry later.")
            }
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
                ErrorCode::RequestHeadersTooLarge,
                "The request headers are larger, or more, than the server accepts.",
            ),
            s if s.is_client_error() => (ErrorCode::InvalidRequest, "The request is invalid."),
            _ => (ErrorCode::InternalError, INTERNAL_DETAIL),
        };
        let status = if status.is_client_error() || status.is_server_error() {
            status
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        Self::new(code, status, detail)
    }
}

/// What a client is told to wait when the database is out of reach: about one pool
/// acquire timeout, so a retry is likely to meet a restarted database.
pub const DATABASE_RETRY_AFTER_SECS: u64 = 5;

const INTERNAL_DETAIL: &str =
    "Something went wrong on our side. Quote the request id when you contact support.";

/// The cause of a 5xx response, carried to the logging layer and never to the client.
#[derive(Clone, Debug)]
pub(crate) struct InternalCause(pub String);

/// Everything a handler or extractor can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request: {detail}")]
    InvalidRequest {
        status: StatusCode,
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("last owner key")]
    LastOwnerKey,
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("not ready: {0}")]
    NotReady(String),
    /// The database is out of reach; the cause goes to the log, the client is told to retry.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A fully described problem (validation outcomes and the like).
    #[error("{}: {}", problem.code, problem.detail)]
    Described {
        problem: Box<Problem>,
        retry_after_secs: Option<u64>,
    },
}

impl ApiError {
    /// A 422 for a body that parsed but failed validation.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("`{}` {}.", one.field, one.message),
            many => format!("{} fields are invalid; see `errors`.", many.len()),
        };
        ApiError::InvalidRequest {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail,
            errors,
        }
    }

    /// A 400 for a request that could not be read at all.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::InvalidRequest {
            status: StatusCode::BAD_REQUEST,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn internal(cause: impl fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    /// A 503 with `Retry-After` for a database that cannot be reached; `cause` is logged.
    pub fn database_unavailable(cause: impl fmt::Display) -> Self {
        ApiError::DatabaseUnavailable(cause.to_string())
    }

    pub(crate) fn problem(&self) -> Problem {
        match self {
            ApiError::InvalidRequest {
                status,
                detail,
                errors,
            } => {
                let mut p = Problem::new(ErrorCode::InvalidRequest, *status, detail.clone());
                p.errors = errors.clone();
                p
            }
            ApiError::Unauthenticated(detail) => Problem::new(
                ErrorCode::Unauthenticated,
                StatusCode::UNAUTHORIZED,
                detail.clone(),
            ),
            ApiError::Forbidden(detail) => {
                Problem::new(ErrorCode::Forbidden, StatusCode::FORBIDDEN, detail.clone())
            }
            ApiError::NotFound => Problem::new(
                ErrorCode::NotFound,
                StatusCode::NOT_FOUND,
                "No such object, or it is not visible to this API key.",
            ),
            ApiError::LastOwnerKey => Problem::new(
                ErrorCode::LastOwnerKey,
                StatusCode::CONFLICT,
                "This is the MSP's last active owner key. Create another owner key first, then revoke this one.",
            ),
            ApiError::RateLimited { retry_after_secs } => Problem::new(
                ErrorCode::RateLimited,
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many failed attempts from this address; retry in {retry_after_secs} s."
                ),
            ),
            ApiError::PayloadTooLarge => Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE),
            ApiError::UnsupportedMediaType => {
                Problem::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            ApiError::NotReady(detail) => Problem::new(
                ErrorCode::NotReady,
                StatusCode::SERVICE_UNAVAILABLE,
                detail.clone(),
            ),
            ApiError::DatabaseUnavailable(_) => Problem::new(
                ErrorCode::DatabaseUnavailable,
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "The service cannot reach its database right now. Retry in {DATABASE_RETRY_AFTER_SECS} s; quote the request id if it persists."
                ),
            ),
            ApiError::Internal(_) => Problem::new(
                ErrorCode::InternalError,
                StatusCode::INTERNAL_SERVER_ERROR,
                INTERNAL_DETAIL,
            ),
            ApiError::Described { problem, .. } => (**problem).clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = status.into_response();
        match &self {
            ApiError::Unauthenticated(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tenantry\""),
                );
            }
            ApiError::RateLimited { retry_after_secs }
            | ApiError::Described {
                retry_after_secs: Some(retry_after_secs),
                ..
            } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::Internal(cause) => {
                response
                    .extensions_mut()
                    .insert(InternalCause(cause.clone()));
            }
            ApiError::DatabaseUnavailable(cause) => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(DATABASE_RETRY_AFTER_SECS),
                );
                response
                    .extensions_mut()
                    .insert(InternalCause(cause.clone()));
            }
            _ => {}
        }
        response.extensions_mut().insert(problem);
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            error if error.is_unavailable() => ApiError::database_unavailable(
                std::error::Error::source(&error)
                    .map_or_else(|| error.to_string(), ToString::to_string),
            ),
            StoreError::NotFound => ApiError::NotFound,
            StoreError::UnknownOrganization(id) => ApiError::validation(vec![FieldError::new(
                "organization_ids",
                format!("contains {id}, which is not one of this MSP's organizations"),
            )]),
            StoreError::LastOwnerKey => ApiError::LastOwnerKey,
            StoreError::CallerRevoked => {
                ApiError::Unauthenticated("This API key was revoked.".into())
            }
            StoreError::NotAllowed(reason) => ApiError::Forbidden(capitalize(&reason.to_string())),
            StoreError::TenantAlreadyBound => ApiError::Described {
                problem: Box::new(Problem::new(
                    ErrorCode::TenantAlreadyBound,
                    StatusCode::CONFLICT,
                    "This Microsoft 365 tenant is already connected to an organization. If it should be connected here, ask whoever connected it to remove it first.",
                )),
                retry_after_secs: None,
            },
            StoreError::JobConflict(detail) => ApiError::Described {
                problem: Box::new(Problem::new(
                    ErrorCode::JobStateConflict,
                    StatusCode::CONFLICT,
                    capitalize(detail),
                )),
                retry_after_secs: None,
            },
            StoreError::Refused(code, detail) => refusal(code, &detail),
            StoreError::NoMasterKey => ApiError::internal("no master key configured"),
            StoreError::RotationIncomplete { left } => {
                ApiError::internal(format!("{left} data keys not rotated"))
            }
            StoreError::Sealing(e) => {
                ApiError::internal(format!("sealing: {}", tenantry_domain::error_chain(&e)))
            }
            StoreError::Unavailable(e) => {
                ApiError::database_unavailable(tenantry_domain::error_chain(&e))
            }
            StoreError::Database(e) => {
                ApiError::internal(format!("database: {}", tenantry_domain::error_chain(&e)))
            }
            StoreError::Corrupt(what) => ApiError::internal(format!("corrupt row: {what}")),
        }
    }
}

/// A refusal by the rules, with the status that goes with its code.
pub fn refusal(code: ErrorCode, detail: &str) -> ApiError {
    let status = match code {
        ErrorCode::ActionDisabled
        | ErrorCode::SelfServiceNotAllowed
        | ErrorCode::PrivilegedTarget
        | ErrorCode::SelfApproval
        | ErrorCode::NotAnApprover
        | ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::ActionStateConflict
        | ErrorCode::JobStateConflict
        | ErrorCode::PartnerConnectionInUse
        | ErrorCode::TenantAlreadyBound => StatusCode::CONFLICT,
        ErrorCode::SecretGone => StatusCode::GONE,
        ErrorCode::UpstreamUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::Described {
        problem: Box::new(Problem::new(code, status, capitalize(detail))),
        retry_after_secs: None,
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => format!(
            "{}{}.",
            first.to_uppercase(),
            chars.as_str().trim_end_matches('.')
        ),
        None => String::new(),
    }
}
