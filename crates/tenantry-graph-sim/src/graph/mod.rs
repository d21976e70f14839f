//! Microsoft Graph v1.0: bearer-token checks, permission checks, throttling, the error
//! envelope, and a dispatcher shared by plain requests and `$batch` items.

mod batch;
mod directory;
mod gdap;
mod groups;
mod paging;
mod subscriptions;
mod users;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::SimState;
use crate::throttle::{self, Verdict};
use crate::token;
pub use crate::urlencoding::{decode, encode, parse_query};

pub const ODATA_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// The authenticated application calling Graph.
pub struct Caller {
    pub tenant: usize,
    pub tenant_id: Uuid,
    pub app_id: Uuid,
    pub sp_id: Uuid,
    pub roles: Vec<String>,
}

impl Caller {
    pub fn has_any(&self, permissions: &[&str]) -> bool {
        self.roles.iter().any(|r| permissions.contains(&r.as_str()))
    }

    /// 403 `Authorization_RequestDenied` unless the token carries one of `permissions`.
    pub fn require(&self, permissions: &[&str]) -> Result<(), GraphError> {
        if self.has_any(permissions) {
            Ok(())
        } else {
            Err(GraphError::denied())
        }
    }
}

/// Permission sets of the endpoints (least privilege first; graph-facts §2–§9).
pub mod needs {
    pub const USERS_READ: &[&str] = &[
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ];
    pub const USERS_WRITE: &[&str] = &["User.ReadWrite.All", "Directory.ReadWrite.All"];
    /// `assignLicense`: the documented pair (DOCS user-assignlicense.md) plus the narrower
    /// `LicenseAssignment.ReadWrite.All`.
    pub const LICENSES_WRITE: &[&str] = &[
        "LicenseAssignment.ReadWrite.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
    ];
    pub const GROUPS_READ: &[&str] = &[
        "GroupMember.Read.All",
        "Group.Read.All",
        "GroupMember.ReadWrite.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ];
    pub const GROUP_MEMBERS_WRITE: &[&str] = &[
        "GroupMember.ReadWrite.All",
        "Group.ReadWrite.All",
        "Directory.ReadWrite.All",
    ];
    pub const ORGANIZATION_READ: &[&str] = &[
        "Organization.Read.All",
        "Directory.Read.All",
        "Organization.ReadWrite.All",
        "Directory.ReadWrite.All",
    ];
    /// UNVERIFIED least permission (graph-facts §9).
    pub const DOMAINS_READ: &[&str] = &[
        "Domain.Read.All",
        "Directory.Read.All",
        "Domain.ReadWrite.All",
        "Directory.ReadWrite.All",
    ];
    pub const APPLICATIONS_READ: &[&str] = &[
        "Application.Read.All",
        "Application.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ];
    pub const ROLES_READ: &[&str] = &[
        "RoleManagement.Read.Directory",
        "RoleManagement.Read.All",
        "Directory.Read.All",
        "RoleManagement.ReadWrite.Directory",
        "Directory.ReadWrite.All",
    ];
    pub const DEVICES_READ: &[&str] = &[
        "DeviceManagementManagedDevices.Read.All",
        "DeviceManagementManagedDevices.ReadWrite.All",
    ];
    pub const RISKY_READ: &[&str] = &[
        "IdentityRiskyUser.Read.All",
        "IdentityRiskyUser.ReadWrite.All",
    ];
    pub const RISKY_WRITE: &[&str] = &["IdentityRiskyUser.ReadWrite.All"];
    pub const METHODS_READ: &[&str] = &[
        "UserAuthenticationMethod.Read.All",
        "UserAuthenticationMethod.ReadWrite.All",
    ];
    pub const METHODS_WRITE: &[&str] = &["UserAuthenticationMethod.ReadWrite.All"];
}

/// A Graph error, rendered in the directory error envelope (graph-facts §7.5).
#[derive(Debug)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub headers: Vec<(&'static str, String)>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn denied() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }

    pub fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    /// Unknown path segment; the exact code and wording are UNVERIFIED.
    pub fn no_segment(segment: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{segment}'."),
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        )
    }

    fn body(&self, ids: &RequestIds) -> Value {
        let date = Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            return json!({"error": {"code": self.code, "innerError": {"code": "429", "date": date, "message": "Please retry after",
                "request-id": ids.request_id, "status": "429"}, "message": self.message}});
        }
        json!({"error": {"code": self.code, "message": self.message,
            "innerError": {"date": date, "request-id": ids.request_id, "client-request-id": ids.client_request_id}}})
    }
}

/// A successful answer of one Graph operation.
pub struct Reply {
    pub status: StatusCode,
    pub body: Option<Value>,
}

impl Reply {
    pub fn json(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(body),
        }
    }

    pub fn created(body: Value) -> Self {
        Self {
            status: StatusCode::CREATED,
            body: Some(body),
        }
    }

    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: None,
        }
    }
}

pub type Outcome = Result<Reply, GraphError>;

/// What throttling said about a served operation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Meta {
    /// Resource units charged (`x-ms-resource-unit`).
    pub cost: u32,
    /// Share of the budget in use, once above 80 % (`x-ms-throttle-limit-percentage`).
    pub limit_percentage: Option<f64>,
}

pub struct RequestIds {
    pub request_id: Uuid,
    pub client_request_id: String,
}

/// One Graph operation, from a plain request or a `$batch` item.
pub struct Call<'a> {
    pub method: &'a str,
    pub segments: Vec<String>,
    pub query: HashMap<String, String>,
    pub raw_query: String,
    pub content_type: Option<String>,
    pub body: &'a [u8],
    /// `{base}/v1.0`, for absolute links.
    pub root: String,
}

impl Call<'_> {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    pub fn json_body(&self) -> Result<serde_json::Map<String, Value>, GraphError> {
        match serde_json::from_slice::<Value>(self.body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(GraphError::bad_request(
                "Write requests (excluding DELETE) must contain the Content-Type header declaration.",
            )),
        }
    }
}

pub async fn entry(
    State(state): State<SimState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ids = RequestIds {
        request_id: Uuid::new_v4(),
        client_request_id: headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned),
    };
    let caller = match authenticate(&state, &headers) {
        Ok(caller) => caller,
        Err(error) => return render(Err(error), &ids, None),
    };
    let path = uri.path().trim_start_matches("/v1.0/");
    let root = format!("{}/v1.0", state.base_url());
    let raw_query = uri.query().unwrap_or("").to_owned();
    if path == "$batch" {
        if method != Method::POST {
            return render(Err(GraphError::method_not_allowed()), &ids, None);
        }
        return batch::run(&state, &caller, &body, &root, &ids).await;
    }
    let call = Call {
        method: method.as_str(),
        segments: path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(decode)
            .collect(),
        query: parse_query(&raw_query),
        raw_query,
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: &body,
        root,
    };
    let (outcome, meta) = dispatch(&state, &caller, &call).await;
    render(outcome, &ids, Some(meta))
}

fn authenticate(state: &SimState, headers: &HeaderMap) -> Result<Caller, GraphError> {
    // Message texts of InvalidAuthenticationToken are UNVERIFIED (graph-facts §7.6).
    let unauthorized = |message: &str| {
        GraphError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or_else(|| unauthorized("Access token is empty."))?;
    let claims = token::verify(token.trim()).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature
        | jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
            unauthorized("Access token has expired or is not yet valid.")
        }
        jsonwebtoken::errors::ErrorKind::InvalidAudience => {
            unauthorized("Access token validation failure. Invalid audience.")
        }
        _ => unauthorized("Access token validation failure."),
    })?;
    let world = state.world();
    let tenant = world
        .tenant_index(&claims.tid)
        .ok_or_else(|| unauthorized("Access token validation failure."))?;
    let parse =
        |s: &str| Uuid::parse_str(s).map_err(|_| unauthorized("Access token validation failure."));
    Ok(Caller {
        tenant,
        tenant_id: world.tenants[tenant].id,
        app_id: parse(&claims.appid)?,
        sp_id: parse(&claims.oid)?,
        roles: claims.roles,
    })
}

/// Routes one operation after the throttling check; returns its outcome and RU cost.
/// Creating a subscription is the one asynchronous operation (it calls the notification
/// endpoint); everything else is answered without awaiting.
pub async fn dispatch(state: &SimState, caller: &Caller, call: &Call<'_>) -> (Outcome, Meta) {
    let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    let meta = match admit(state, caller, call, &segments) {
        Ok(meta) => meta,
        Err((error, meta)) => return (Err(error), meta),
    };
    let outcome = if subscriptions::is_create(call.method, &segments) {
        subscriptions::create(state, caller, call).await
    } else {
        route(state, caller, call, &segments)
    };
    (outcome, meta)
}

fn too_many_requests() -> GraphError {
    GraphError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "Please retry again later.",
    )
}

/// The throttling check: the operation's cost (and budget share), or the 429 to answer.
fn admit(
    state: &SimState,
    caller: &Caller,
    call: &Call<'_>,
    segments: &[&str],
) -> Result<Meta, (GraphError, Meta)> {
    let cost = throttle::cost(
        call.method,
        segments,
        call.query.contains_key("$select"),
        call.query.contains_key("$expand"),
        call.param("$top").and_then(|t| t.parse().ok()),
    );
    let plain = Meta {
        cost,
        limit_percentage: None,
    };
    if segments.first() == Some(&"identityProtection") {
        // Identity Protection sends no Retry-After (LEARN-THROTTLE).
        return if state.throttle().check_risky(caller.tenant_id) {
            Ok(plain)
        } else {
            Err((too_many_requests(), plain))
        };
    }
    let size = state.world().tenants[caller.tenant].size;
    let verdict = state.throttle().check(
        caller.app_id,
        caller.tenant_id,
        size,
        cost,
        call.method != "GET",
    );
    match verdict {
        Verdict::Throttled {
            retry_after,
            scope,
            information,
        } => {
            let mut error = too_many_requests();
            error.headers = vec![
                (
                    "Retry-After",
                    format!("{:.3}", retry_after.as_secs_f64().max(0.001)),
                ),
                ("x-ms-throttle-scope", scope),
                ("x-ms-throttle-information", information.to_owned()),
            ];
            Err((error, plain))
        }
        Verdict::Allowed { limit_percentage } => Ok(Meta {
            cost,
            limit_percentage,
        }),
    }
}

fn route(state: &SimState, caller: &Caller, call: &Call<'_>, segments: &[&str]) -> Outcome {
    let Some(first) = segments.first() else {
        return Err(GraphError::no_segment(""));
    };
    let (name, key) = directory::split_key(first);
    match name {
        "organization" | "domains" | "servicePrincipals" | "applications" | "roleManagement"
        | "directoryRoles" | "subscribedSkus" => directory::route(state, caller, call, segments),
        "users" => users::route(state, caller, call, segments),
        "groups" => groups::route(state, caller, call, segments),
        "subscriptions" => subscriptions::route(state, caller, call, segments),
        "tenantRelationships" => gdap::route(state, caller, call, segments),
        "deviceManagement" | "identityProtection" => {
            directory::route(state, caller, call, segments)
        }
        other => {
            let _ = key;
            Err(GraphError::no_segment(other))
        }
    }
}

/// Renders an outcome as an HTTP response with Graph's headers.
pub fn render(outcome: Outcome, ids: &RequestIds, meta: Option<Meta>) -> Response {
    let mut response = match outcome {
        Ok(reply) => match reply.body {
            Some(body) => (
                reply.status,
                [(header::CONTENT_TYPE, ODATA_JSON)],
                body.to_string(),
            )
                .into_response(),
            None => reply.status.into_response(),
        },
        Err(error) => {
            let mut response = (
                error.status,
                [(header::CONTENT_TYPE, "application/json")],
                error.body(ids).to_string(),
            )
                .into_response();
            for (name, value) in &error.headers {
                if let Ok(value) = HeaderValue::from_str(value) {
                    response.headers_mut().insert(*name, value);
                }
            }
            response
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("OData-Version", HeaderValue::from_static("4.0"));
    if let Ok(value) = HeaderValue::from_str(&ids.request_id.to_string()) {
        headers.insert("request-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&ids.client_request_id) {
        headers.insert("client-request-id", value);
    }
    if let Some(meta) = meta {
        headers.insert("x-ms-resource-unit", HeaderValue::from(meta.cost));
        if let Some(share) = meta.limit_percentage
            && let Ok(value) = HeaderValue::from_str(&format!("{share:.2}"))
        {
            headers.insert("x-ms-throttle-limit-percentage", value);
        }
    }
    response
}

/// `{"@odata.context": "{root}/$metadata#{context}", ...}` (Graph's contexts name
/// graph.microsoft.com; the simulator names itself so links resolve).
pub fn context(call: &Call<'_>, context: &str) -> String {
    format!("{}/$metadata#{context}", call.root)
}
