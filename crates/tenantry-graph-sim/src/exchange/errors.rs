//! The admin API's error answers (graph-facts-next §2.8): the OData envelope with the
//! useful text nested in `details[].message` as `"ExXXXXXX|<exception type>|<text>"`, and
//! `innererror.type` `Microsoft.Exchange.Admin.OData.Core.ODataServiceException`.

use axum::http::StatusCode;
use serde_json::{Value, json};

const SERVICE_EXCEPTION: &str = "Microsoft.Exchange.Admin.OData.Core.ODataServiceException";

pub const NOT_FOUND: &str =
    "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException";
pub const ALREADY_EXISTS: &str = "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException";
pub const MEMBER_EXISTS: &str = "Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException";
/// UNVERIFIED type name for removing a recipient that is not a member.
pub const MEMBER_NOT_FOUND: &str = "Microsoft.Exchange.Management.Tasks.MemberNotFoundException";
pub const INVALID_PARAMETER: &str = "System.ArgumentException";
/// UNVERIFIED type name for an unknown cmdlet (PowerShell's).
pub const COMMAND_NOT_FOUND: &str = "System.Management.Automation.CommandNotFoundException";
/// UNVERIFIED type name for refusing to disable a system or delegate inbox rule.
pub const RULE_REFUSED: &str =
    "Microsoft.Exchange.Management.StoreTasks.InboxRuleOperationException";

/// One refusal of the admin API.
#[derive(Debug, thiserror::Error)]
pub enum ExoError {
    /// 401 "User is not allowed to call <cmdlet>" (verbatim, §2.8).
    #[error("User is not allowed to call {0}")]
    NotAllowed(String),
    /// 401 for a missing, expired or foreign bearer token (the body is UNVERIFIED).
    #[error("{0}")]
    Token(&'static str),
    /// A cmdlet failure: HTTP status, `error.code`, error id, exception type, text.
    #[error("{text}")]
    Cmdlet {
        status: StatusCode,
        code: &'static str,
        id: &'static str,
        exception: &'static str,
        text: String,
    },
    /// 400 for a body that is not a `CmdletInput` envelope.
    #[error("{0}")]
    Malformed(String),
    /// 405 for anything but POST.
    #[error("The HTTP method '{0}' is not allowed for InvokeCommand.")]
    Method(String),
    /// 429 from the admin API's own throttle.
    #[error("too many requests")]
    Throttled { retry_after: f64 },
    /// 404 for a tenant the simulator does not know.
    #[error("tenant not found")]
    NoTenant(String),
}

impl ExoError {
    /// `ManagementObjectNotFoundException` (404 `NotFound`), Exchange's wording.
    pub fn not_found(identity: &str) -> Self {
        Self::Cmdlet {
            status: StatusCode::NOT_FOUND,
            code: "NotFound",
            id: "Ex6F9304",
            exception: NOT_FOUND,
            text: format!(
                "The operation couldn't be performed because object '{identity}' couldn't be found on 'SIM01A001DC001.NAMPR01A001.PROD.OUTLOOK.COM'."
            ),
        }
    }

    /// 400 `BadRequest` with `exception`.
    pub fn bad_request(id: &'static str, exception: &'static str, text: impl Into<String>) -> Self {
        Self::Cmdlet {
            status: StatusCode::BAD_REQUEST,
            code: "BadRequest",
            id,
            exception,
            text: text.into(),
        }
    }

    /// An invalid or missing parameter.
    pub fn invalid(text: impl Into<String>) -> Self {
        Self::bad_request("Ex4D2F81", INVALID_PARAMETER, text)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotAllowed(_) | Self::Token(_) => StatusCode::UNAUTHORIZED,
            Self::Cmdlet { status, .. } => *status,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NoTenant(_) => StatusCode::NOT_FOUND,
        }
    }

    pub fn body(&self) -> Value {
        match self {
            Self::NotAllowed(_) => {
                let message = self.to_string();
                json!({"error": {"code": "Unauthorized", "message": message,
                    "innererror": {"message": message, "type": SERVICE_EXCEPTION}}})
            }
            Self::Cmdlet {
                code,
                id,
                exception,
                text,
                ..
            } => json!({"error": {"code": code, "message": "Error executing cmdlet",
                "details": [{"code": "Client", "target": "", "message": format!("{id}|{exception}|{text}")}],
                "innererror": {"message": "Error executing cmdlet", "type": SERVICE_EXCEPTION, "stacktrace": ""}}}),
            Self::Throttled { .. } => {
                // UNVERIFIED body; the status and the fractional Retry-After are §2.8's.
                json!({"error": {"code": "TooManyRequests", "message": "The request was throttled. Retry after the time in the Retry-After header.",
                    "innererror": {"message": "The request was throttled.", "type": SERVICE_EXCEPTION}}})
            }
            Self::NoTenant(tenant) => json!({"error": {"code": "NotFound",
                "message": format!("The tenant '{tenant}' was not found."),
                "innererror": {"message": "Tenant not found", "type": SERVICE_EXCEPTION}}}),
            Self::Token(_) | Self::Malformed(_) | Self::Method(_) => {
                let code = match self {
                    Self::Token(_) => "Unauthorized",
                    Self::Method(_) => "MethodNotAllowed",
                    _ => "BadRequest",
                };
                let message = self.to_string();
                json!({"error": {"code": code, "message": message,
                    "innererror": {"message": message, "type": SERVICE_EXCEPTION}}})
            }
        }
    }
}
