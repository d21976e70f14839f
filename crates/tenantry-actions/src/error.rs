//! Why a request for an action was not stored: the caller's input, the rules, Microsoft
//! or the database. Codes are the domain's stable [`ErrorCode`]s; the HTTP status that
//! goes with each is the API's business.

use std::time::Duration;

use serde_json::Value;
use tenantry_domain::ErrorCode;
use tenantry_domain::actions::ActionKind;
use tenantry_store::StoreError;

/// One invalid input field (dotted path for nested fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What an organization's app lacks for an action, from its last validation report.
#[derive(Clone, Debug)]
pub struct MissingCapability {
    pub action: ActionKind,
    /// Graph permissions to grant, as the validation report names them.
    pub missing_permissions: Value,
    /// Directory roles, any one of which the app's service principal needs.
    pub missing_directory_roles: Value,
}

impl MissingCapability {
    /// What the requester is told (the API's problem detail, a playbook step's outcome).
    pub fn detail(&self) -> String {
        format!(
            "The organization's app cannot {} yet: grant what is listed, then re-validate the organization.",
            self.action
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The request itself is wrong; nothing was recorded.
    #[error("invalid request: {}", describe(.0))]
    Invalid(Vec<FieldProblem>),
    /// The rules refuse it (policy, guard, target not found, idempotency key reuse).
    #[error("{}: {detail}", code.as_str())]
    Refused { code: ErrorCode, detail: String },
    /// The tenant has not granted what the action needs.
    #[error("the organization's app cannot {} yet", .0.action)]
    CapabilityUnavailable(Box<MissingCapability>),
    /// Microsoft did not answer, failed or throttled while the request was checked;
    /// nothing was done and the same request may be sent again.
    #[error("Microsoft is unavailable: {detail}")]
    Upstream {
        detail: String,
        retry_after: Option<Duration>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn describe(fields: &[FieldProblem]) -> String {
    fields
        .iter()
        .map(|f| format!("`{}` {}", f.field, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl SubmitError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldProblem::new(field, message)])
    }

    pub fn refused(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::Refused {
            code,
            detail: detail.into(),
        }
    }

    /// Whether the same request may succeed later without anyone changing anything:
    /// Microsoft or the database was unavailable.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Upstream { .. } => true,
            Self::Store(error) => matches!(
                error,
                StoreError::Database(_)
                    | StoreError::Unavailable(_)
                    | StoreError::Sealing(_)
                    | StoreError::NoMasterKey
                    | StoreError::RotationIncomplete { .. }
                    | StoreError::Corrupt(_)
            ),
            Self::Invalid(_) | Self::Refused { .. } | Self::CapabilityUnavailable(_) => false,
        }
    }

    /// The stable code of a final refusal, for records that are not HTTP answers (a
    /// playbook step's outcome). Retryable errors have codes too, for the last attempt.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) => ErrorCode::InvalidRequest,
            Self::Refused { code, .. } => *code,
            Self::CapabilityUnavailable(_) => ErrorCode::CapabilityUnavailable,
            Self::Upstream { .. } => ErrorCode::UpstreamUnavailable,
            Self::Store(StoreError::NotFound | StoreError::UnknownOrganization(_)) => {
                ErrorCode::NotFound
            }
            Self::Store(StoreError::Refused(code, _)) => *code,
            Self::Store(StoreError::CallerRevoked) => ErrorCode::Unauthenticated,
            Self::Store(StoreError::NotAllowed(_)) => ErrorCode::Forbidden,
            Self::Store(_) => ErrorCode::InternalError,
        }
    }

    /// What happened, in words fit for the requester (never an internal cause).
    pub fn detail(&self) -> String {
        match self {
            Self::Invalid(fields) => describe(fields),
            Self::Refused { detail, .. } | Self::Upstream { detail, .. } => detail.clone(),
            Self::CapabilityUnavailable(missing) => missing.detail(),
            Self::Store(StoreError::NotFound) => {
                "the organization or object is gone, or not visible to the requester".into()
            }
            Self::Store(
                error @ (StoreError::Refused(..)
                | StoreError::CallerRevoked
                | StoreError::NotAllowed(_)
                | StoreError::UnknownOrganization(_)),
            ) => error.to_string(),
            Self::Store(_) => "the database failed while the request was checked".into(),
        }
    }
}
