//! How the Exchange admin API fails (graph-facts-next §2.8), decided on the HTTP status,
//! `error.code` and the exception type in `details[].message`, never on the human text:
//! throttled (429 with `Retry-After`, possibly fractional), unavailable (5xx other than a
//! cmdlet error, timeouts), the cmdlet not allowed (401 "User is not allowed to call …":
//! the directory role is missing), the object not found, or refused for another reason.

use std::time::Duration;

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeFailure {
    #[error("throttled by Exchange Online")]
    Throttled { retry_after: Option<Duration> },
    #[error("Exchange Online is unavailable: {0}")]
    Unavailable(String),
    /// 401: no token Exchange accepts, or the app's principal holds no Exchange-capable
    /// directory role for the cmdlet.
    #[error("Exchange Online does not allow {cmdlet} for this app")]
    NotAllowed { cmdlet: String },
    /// `ManagementObjectNotFoundException` and kin.
    #[error("not found ({exception})")]
    NotFound { exception: String, message: String },
    /// Another cmdlet error: `exception` is its type name (e.g.
    /// `MemberAlreadyExistsException`), `id` its `Ex…` identifier when given.
    #[error("{cmdlet} was refused ({exception})")]
    Refused {
        cmdlet: String,
        exception: String,
        id: Option<String>,
        message: String,
    },
}

impl ExchangeFailure {
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            ExchangeFailure::Throttled { .. } | ExchangeFailure::Unavailable(_)
        )
    }

    /// Whether the refusal names this exception type (its last dotted segment).
    pub fn is_exception(&self, name: &str) -> bool {
        match self {
            ExchangeFailure::Refused { exception, .. }
            | ExchangeFailure::NotFound { exception, .. } => {
                exception.rsplit('.').next() == Some(name)
            }
            _ => false,
        }
    }
}

/// One `details[]` entry read: the `Ex…` id, the exception type, the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detail {
    pub id: Option<String>,
    pub exception: String,
    pub message: String,
}

/// Reads a `details[].message` in either observed format: `"<ErrorId>|<ExceptionType>|<Text>"`
/// or a JSON string with `Message` and `TypeName` (§2.8).
pub fn detail(message: &str) -> Option<Detail> {
    if let Ok(json) = serde_json::from_str::<Value>(message)
        && let Some(type_name) = json["TypeName"].as_str()
    {
        return Some(Detail {
            id: None,
            exception: type_name.to_owned(),
            message: json["Message"].as_str().unwrap_or_default().to_owned(),
        });
    }
    let mut parts = message.splitn(3, '|');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(id), Some(exception), Some(text)) if exception.contains("Exception") => {
            Some(Detail {
                id: Some(id.to_owned()),
                exception: exception.to_owned(),
                message: text.to_owned(),
            })
        }
        _ => None,
    }
}

/// The body of a successful answer, or the failure it tells of.
pub(crate) async fn classify(
    response: reqwest::Response,
    cmdlet: &str,
) -> Result<Value, ExchangeFailure> {
    let status = response.status();
    if status.as_u16() == 429 {
        return Err(ExchangeFailure::Throttled {
            retry_after: crate::calls::retry_after(&response),
        });
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|_| ExchangeFailure::Unavailable("the answer broke off".into()))?;
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    if status.is_success() {
        return body.ok_or_else(|| ExchangeFailure::Unavailable("unreadable answer".into()));
    }
    if status.as_u16() == 401 {
        return Err(ExchangeFailure::NotAllowed {
            cmdlet: cmdlet.to_owned(),
        });
    }
    let error = body.as_ref().map(|b| &b["error"]);
    let found = error
        .and_then(|e| e["details"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|d| d["message"].as_str())
        .find_map(detail);
    match found {
        Some(detail) if detail.exception.ends_with("NotFoundException") => {
            Err(ExchangeFailure::NotFound {
                exception: detail.exception,
                message: detail.message,
            })
        }
        Some(detail) => Err(ExchangeFailure::Refused {
            cmdlet: cmdlet.to_owned(),
            exception: detail.exception,
            id: detail.id,
            message: detail.message,
        }),
        // No cmdlet error inside: a server failure (5xx) is an outage; anything else is
        // a refusal named by its code.
        None if status.is_server_error() => Err(ExchangeFailure::Unavailable(format!(
            "Exchange Online answered {status}"
        ))),
        None => Err(ExchangeFailure::Refused {
            cmdlet: cmdlet.to_owned(),
            exception: error
                .and_then(|e| e["code"].as_str())
                .unwrap_or("unknown")
                .to_owned(),
            id: None,
            message: error
                .and_then(|e| e["message"].as_str())
                .unwrap_or_default()
                .to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_detail_formats_are_read() {
        let piped = detail("Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation couldn't be performed because object 'user2@x.com' couldn't be found on 'EXHV-1242'.")
            .expect("piped");
        assert_eq!(piped.id.as_deref(), Some("Ex6F9304"));
        assert!(
            piped
                .exception
                .ends_with("ManagementObjectNotFoundException")
        );
        assert!(piped.message.contains("user2@x.com"));
        let json = detail(r#"{"Message":"already exists","TypeName":"Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException"}"#)
            .expect("json");
        assert_eq!(
            json.exception,
            "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException"
        );
        assert_eq!(detail("plain text with | one pipe"), None);
        let refused = ExchangeFailure::Refused {
            cmdlet: "Add-DistributionGroupMember".into(),
            exception: "Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException".into(),
            id: None,
            message: String::new(),
        };
        assert!(refused.is_exception("MemberAlreadyExistsException"));
        assert!(!refused.is_exception("ManagementObjectNotFoundException"));
    }
}
