//! How a refused action request answers over HTTP: each [`SubmitError`] becomes the
//! problem document (and status) that its code stands for.

use axum::http::StatusCode;
use tenantry_actions::{MissingCapability, SubmitError};
use tenantry_domain::ErrorCode;

use crate::problem::{ApiError, FieldError, Problem, refusal};

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::Invalid(fields) => ApiError::validation(
                fields
                    .into_iter()
                    .map(|f| FieldError::new(f.field, f.message))
                    .collect(),
            ),
            SubmitError::Refused { code, detail } => refusal(code, &detail),
            SubmitError::CapabilityUnavailable(missing) => {
                let detail = missing.detail();
                let MissingCapability {
                    missing_permissions,
                    missing_directory_roles,
                    ..
                } = *missing;
                let problem = Problem::new(
                    ErrorCode::CapabilityUnavailable,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    detail,
                )
                .with("missing_permissions", missing_permissions)
                .with("missing_directory_roles", missing_directory_roles);
                ApiError::Described {
                    problem: Box::new(problem),
                    retry_after_secs: None,
                }
            }
            SubmitError::Upstream {
                detail,
                retry_after,
            } => match refusal(ErrorCode::UpstreamUnavailable, &detail) {
                ApiError::Described { problem, .. } => ApiError::Described {
                    problem,
                    retry_after_secs: retry_after.map(|wait| wait.as_secs_f64().ceil() as u64),
                },
                other => other,
            },
            SubmitError::Store(error) => error.into(),
        }
    }
}
