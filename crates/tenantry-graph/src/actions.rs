//! Graph calls for identity actions: sending one planned write and keeping everything an
//! MSP needs from the answer (status, Microsoft's error code and message, the request id
//! to quote to Microsoft support), and the reads an action needs first: finding a user or
//! group and the directory roles a user holds.

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::calls::{self, GraphFailure};
use crate::http_client::GraphHttp;

/// A 2xx answer.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub request_id: Option<String>,
}

/// Why a write did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteFailure {
    #[error("throttled by Microsoft")]
    Throttled {
        retry_after: Option<Duration>,
        request_id: Option<String>,
    },
    #[error("Microsoft Graph is unavailable: {cause}")]
    Unavailable {
        cause: String,
        request_id: Option<String>,
    },
    /// Microsoft's verdict (4xx): repeating the request will not change it.
    #[error("Graph answered {status} ({code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
    },
}

impl WriteFailure {
    pub fn request_id(&self) -> Option<&str> {
        match self {
            WriteFailure::Throttled { request_id, .. }
            | WriteFailure::Unavailable { request_id, .. }
            | WriteFailure::Refused { request_id, .. } => request_id.as_deref(),
        }
    }
}

/// A body to send.
pub enum Body<'a> {
    None,
    Json(&'a Value),
    Bytes {
        content_type: &'a str,
        bytes: &'a [u8],
    },
}

/// Sends `method path` (after `/v1.0`) with `body`. Never retries: the caller records the
/// step first and decides what a retry may repeat.
pub async fn send(
    http: &GraphHttp,
    token: &SecretString,
    method: &str,
    path: &str,
    body: Body<'_>,
) -> Result<Answer, WriteFailure> {
    let method =
        reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| WriteFailure::Unavailable {
            cause: format!("unsupported method {method}"),
            request_id: None,
        })?;
    let mut request = http
        .client
        .request(method, http.config.graph(path))
        .bearer_auth(token.expose_secret())
        .header("client-request-id", uuid::Uuid::new_v4().to_string());
    request = match body {
        Body::None => request,
        Body::Json(value) => request.json(value),
        Body::Bytes {
            content_type,
            bytes,
        } => request
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes.to_vec()),
    };
    let response = request
        .send()
        .await
        .map_err(|e| WriteFailure::Unavailable {
            cause: calls::send_failure(&e).to_string(),
            request_id: None,
        })?;
    let status = response.status().as_u16();
    let header_id = response
        .headers()
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let retry_after = calls::retry_after(&response);
    let text = response.text().await.unwrap_or_default();
    let body: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    let request_id = header_id.or_else(|| {
        body["error"]["innerError"]["request-id"]
            .as_str()
            .map(str::to_owned)
    });
    if (200..300).contains(&status) {
        return Ok(Answer {
            status,
            body,
            request_id,
        });
    }
    Err(match calls::failure(status, retry_after, body.clone()) {
        Err(GraphFailure::Throttled { retry_after }) => WriteFailure::Throttled {
            retry_after,
            request_id,
        },
        Err(GraphFailure::Unavailable(cause)) => WriteFailure::Unavailable { cause, request_id },
        _ => WriteFailure::Refused {
            status,
            code: body["error"]["code"].as_str().unwrap_or("").to_owned(),
            message: body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(500)
                .collect(),
            request_id,
        },
    })
}

const USER_SELECT: &str = "id,userPrincipalName,displayName,mail,accountEnabled";

/// A user by object id or user principal name; `None` when Graph has no such user.
pub async fn find_user(
    http: &GraphHttp,
    token: &SecretString,
    key: &str,
) -> Result<Option<Value>, GraphFailure> {
    let key: String = url_path_segment(key);
    match calls::get(http, token, &format!("/users/{key}?$select={USER_SELECT}")).await {
        Ok(user) => Ok(Some(user)),
        Err(GraphFailure::NotFound) => Ok(None),
        Err(other) => Err(other),
    }
}

/// A user by primary mail address; `None` when none has it.
pub async fn find_user_by_mail(
    http: &GraphHttp,
    token: &SecretString,
    mail: &str,
) -> Result<Option<Value>, GraphFailure> {
    let literal = mail.replace('\'', "''");
    let filter = url_query_value(&format!("mail eq '{literal}'"));
    let page = calls::get(
        http,
        token,
        &format!("/users?$filter={filter}&$select={USER_SELECT}"),
    )
    .await?;
    Ok(page["value"].as_array().and_then(|v| v.first()).cloned())
}

/// A group by object id; `None` when Graph has no such group.
pub async fn find_group(
    http: &GraphHttp,
    token: &SecretString,
    id: uuid::Uuid,
) -> Result<Option<Value>, GraphFailure> {
    match calls::get(
        http,
        token,
        &format!("/groups/{id}?$select=id,displayName,mail,groupTypes,securityEnabled"),
    )
    .await
    {
        Ok(group) => Ok(Some(group)),
        Err(GraphFailure::NotFound) => Ok(None),
        Err(other) => Err(other),
    }
}

/// The directory roles `user` holds, directly or through role-assignable groups, as
/// (role template id, display name). Roles only eligible through PIM are not seen (that
/// needs the role-management schedule APIs and their permission).
pub async fn user_roles(
    http: &GraphHttp,
    token: &SecretString,
    user: uuid::Uuid,
) -> Result<Vec<(String, String)>, GraphFailure> {
    // Asked again after a short Retry-After (5 s in all, as the validator does): a bulk
    // action reads every target's roles, and one throttled read must not send the whole
    // check back to the queue to start over.
    let path = format!("/users/{user}/transitiveMemberOf");
    let deadline = tokio::time::Instant::now() + crate::validator::THROTTLE_BUDGET;
    let objects = calls::patiently(deadline, || calls::get_all(http, token, &path)).await?;
    Ok(objects
        .iter()
        .filter(|o| o["@odata.type"] == "#microsoft.graph.directoryRole")
        .map(|role| {
            (
                role["roleTemplateId"].as_str().unwrap_or("").to_owned(),
                role["displayName"]
                    .as_str()
                    .unwrap_or("a directory role")
                    .to_owned(),
            )
        })
        .collect())
}

/// What a path segment keeps raw: letters, digits and the characters RFC 3986 allows
/// in a segment (so a UPN's `@` and `'` stay readable; `#`, `?`, `/` and spaces do not).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@')
    .remove(b'\'')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':');

/// What an OData query value keeps raw (spaces become `%20`, never `+`).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@')
    .remove(b'\'');

fn url_path_segment(raw: &str) -> String {
    utf8_percent_encode(raw, PATH_SEGMENT).to_string()
}

fn url_query_value(raw: &str) -> String {
    utf8_percent_encode(raw, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_for_paths_and_filters() {
        assert_eq!(url_path_segment("ana@contoso.com"), "ana@contoso.com");
        assert_eq!(url_path_segment("a#b/c?"), "a%23b%2Fc%3F");
        assert_eq!(url_query_value("mail eq 'a b'"), "mail%20eq%20'a%20b'");
    }
}
