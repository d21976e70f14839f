//! The Exchange Online admin API (graph-facts-next §2): `POST
//! /adminapi/{beta|v1.0}/{tenant}/InvokeCommand` with a `CmdletInput` envelope, authorised
//! by an Exchange token's `Exchange.ManageAsApp` role and an Exchange-capable directory
//! role, answered as `Collection(Exchange.GenericHashTable)` with POST-to-nextLink paging,
//! `Rate-Limit-*` headers and Exchange's nested error form.

mod cmdlets;
mod errors;
mod objects;
mod paging;
mod writes;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::SimState;
use crate::model::exchange::MANAGE_AS_APP;
use crate::token;
pub use errors::ExoError;
use objects::Params;

/// The cmdlet a request ran, put on the response for the request log.
#[derive(Clone, Debug)]
pub struct CmdletName(pub String);

/// The authenticated app calling Exchange.
pub struct ExoCaller {
    pub tenant: usize,
    pub app_id: Uuid,
    /// Directory role template ids from the token's `wids`.
    pub wids: Vec<String>,
    pub roles: Vec<String>,
}

/// Directory roles that may run every modelled cmdlet (graph-facts-next §2.1): Global
/// Administrator, Exchange Administrator, Exchange Recipient Administrator.
const WRITE_ROLES: [&str; 3] = [
    "62e90394-69f5-4237-9190-012177145e10",
    "29232cdf-9323-42fd-ade2-1d097af3e4de",
    "31392ffb-586c-42d1-9346-e59415a2cc4e",
];
/// Global Reader: the read cmdlets only.
const READ_ROLE: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";

impl ExoCaller {
    /// The authorisation rule of §2.14 item 2: `Exchange.ManageAsApp` in `roles` and an
    /// Exchange-capable role in `wids` (Global Reader for reads).
    fn may_call(&self, read: bool) -> bool {
        let role = |id: &str| self.wids.iter().any(|w| w.eq_ignore_ascii_case(id));
        self.roles.iter().any(|r| r == MANAGE_AS_APP)
            && (WRITE_ROLES.iter().any(|id| role(id)) || (read && role(READ_ROLE)))
    }
}

/// `POST /adminapi/{version}/{tenant}/InvokeCommand`.
pub async fn invoke(
    State(state): State<SimState>,
    Path((version, tenant_key)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = Uuid::new_v4();
    let mut cmdlet_name = None;
    let outcome = run(
        &state,
        &version,
        &tenant_key,
        &method,
        &uri,
        &headers,
        &body,
        &mut cmdlet_name,
    );
    let mut response = match outcome {
        Ok(response) => response,
        Err((error, rate)) => {
            let mut response = (
                error.status(),
                [(header::CONTENT_TYPE, crate::graph::ODATA_JSON)],
                error.body().to_string(),
            )
                .into_response();
            if let ExoError::Throttled { retry_after } = error
                && let Ok(value) = HeaderValue::from_str(&format!("{retry_after:.3}"))
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            if matches!(error, ExoError::Token(_)) {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            if let Some(rate) = rate {
                rate.apply(response.headers_mut());
            }
            response
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("OData-Version", HeaderValue::from_static("4.0"));
    if let Ok(value) = HeaderValue::from_str(&request_id.to_string()) {
        headers.insert("request-id", value);
    }
    if let Some(name) = cmdlet_name {
        response.extensions_mut().insert(CmdletName(name));
    }
    response
}

/// The `Rate-Limit-*` headers of one request.
struct Rate {
    limit: u64,
    remaining: u64,
    reset: chrono::DateTime<Utc>,
}

impl Rate {
    fn apply(&self, headers: &mut HeaderMap) {
        let reset = self
            .reset
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for (name, value) in [
            ("Rate-Limit-Limit", self.limit.to_string()),
            ("Rate-Limit-Remaining", self.remaining.to_string()),
            ("Rate-Limit-Reset", reset),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
}

type Failure = (ExoError, Option<Rate>);

#[allow(clippy::too_many_arguments)]
fn run(
    state: &SimState,
    version: &str,
    tenant_key: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    cmdlet_name: &mut Option<String>,
) -> Result<Response, Failure> {
    if !matches!(version, "beta" | "v1.0") {
        return Err((
            ExoError::Malformed(format!("Unknown API version '{version}'.")),
            None,
        ));
    }
    // InvokeCommand is an OData action: only POST. A GET on a nextLink is refused with 405
    // (UNVERIFIED status; the reference says paging is POST-only, §2.7 and §2.13).
    if method != Method::POST {
        return Err((ExoError::Method(method.to_string()), None));
    }
    let caller = authenticate(state, headers, tenant_key).map_err(|e| (e, None))?;
    let input = parse_input(body).map_err(|e| (e, None))?;
    let (name, params) = input;
    let known = cmdlets::canonical(&name);
    *cmdlet_name = Some(known.map_or_else(|| name.clone(), str::to_owned));
    let tenant_id = state.world().tenants[caller.tenant].id;
    let verdict = state.throttle().check_exchange(caller.app_id, tenant_id);
    let rate = Rate {
        limit: verdict.limit,
        remaining: verdict.remaining,
        reset: Utc::now()
            + chrono::Duration::from_std(verdict.reset_in).unwrap_or(chrono::Duration::zero()),
    };
    if let Some(retry_after) = verdict.retry_after {
        let retry_after = retry_after.as_secs_f64().max(0.001);
        return Err((ExoError::Throttled { retry_after }, Some(rate)));
    }
    let display = known.unwrap_or(name.as_str()).to_owned();
    let read = known.is_none_or(cmdlets::is_read);
    let rbac_pending = state.world().tenants[caller.tenant]
        .exchange_rbac_ready_at
        .is_some_and(|ready| Utc::now() < ready);
    if !caller.may_call(read) || rbac_pending {
        return Err((ExoError::NotAllowed(display), Some(rate)));
    }
    let Some(cmdlet) = known else {
        // UNVERIFIED: the answer to an unknown cmdlet (PowerShell's wording).
        return Err((
            ExoError::bad_request(
                "Ex0C9E2A",
                errors::COMMAND_NOT_FOUND,
                format!(
                    "The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable program."
                ),
            ),
            Some(rate),
        ));
    };
    let confirm = params.flag("Confirm");
    if confirm && !cmdlets::is_read(cmdlet) {
        // `Confirm: true` asks before executing (§2.5); nothing changes. The message's
        // wording is UNVERIFIED.
        let body = envelope(
            state,
            version,
            tenant_key,
            Vec::new(),
            &[],
            Some(format!(
                "Are you sure you want to perform this action? {cmdlet} with the given parameters. Resend with \"Confirm\": false to run it."
            )),
        );
        return Ok(reply(body, &rate, None));
    }
    let output = {
        let mut world = state.world_mut();
        let tenant = &mut world.tenants[caller.tenant];
        let display_name = tenant.display_name.clone();
        cmdlets::run(tenant.exchange_mut(), &display_name, cmdlet, &params)
    }
    .map_err(|e| (e, Some(rate_copy(&rate))))?;
    let page_size = paging::page_size(headers).map_err(|e| (e, Some(rate_copy(&rate))))?;
    let result_size = paging::result_size(&params).map_err(|e| (e, Some(rate_copy(&rate))))?;
    let fingerprint = paging::fingerprint(&name, &params);
    let query = crate::urlencoding::parse_query(uri.query().unwrap_or(""));
    let skip = match query.get("$skiptoken") {
        Some(token) => {
            paging::decode(token, fingerprint).map_err(|e| (e, Some(rate_copy(&rate))))?
        }
        None => 0,
    };
    let select: Option<Vec<String>> = query
        .get("$select")
        .map(|s| s.split(',').map(|p| p.trim().to_owned()).collect());
    let page = paging::page(
        output.rows,
        skip,
        page_size.size,
        result_size,
        cmdlets::is_listing(cmdlet),
    );
    let mut warnings = output.warnings;
    if page.truncated {
        warnings.push("There are more results available than are currently displayed. To view them, increase the value for the ResultSize parameter.".to_owned());
    }
    let rows: Vec<Value> = page
        .rows
        .into_iter()
        .map(|row| objects::select(row, select.as_deref()))
        .collect();
    let mut body = envelope(state, version, tenant_key, rows, &warnings, None);
    if let Some(next) = page.next {
        let mut link = format!(
            "{}/adminapi/{version}/{tenant_key}/InvokeCommand?$skiptoken={}",
            state.base_url(),
            paging::encode(next, fingerprint)
        );
        if let Some(select) = query.get("$select") {
            link.push_str("&$select=");
            link.push_str(&crate::urlencoding::encode(select));
        }
        body.insert("@odata.nextLink".into(), json!(link));
    }
    Ok(reply(body, &rate, page_size.applied))
}

fn rate_copy(rate: &Rate) -> Rate {
    Rate {
        limit: rate.limit,
        remaining: rate.remaining,
        reset: rate.reset,
    }
}

/// The success envelope (§2.6).
fn envelope(
    state: &SimState,
    version: &str,
    tenant_key: &str,
    rows: Vec<Value>,
    warnings: &[String],
    confirmation: Option<String>,
) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/adminapi/{version}/{tenant_key}/$metadata#Collection(Exchange.GenericHashTable)",
            state.base_url()
        )),
    );
    body.insert(
        "adminapi.warnings@odata.type".into(),
        json!("#Collection(String)"),
    );
    body.insert("@adminapi.warnings".into(), json!(warnings));
    if let Some(message) = confirmation {
        body.insert("@adminapi.confirmationmessage".into(), json!(message));
    }
    body.insert("value".into(), Value::Array(rows));
    body
}

fn reply(body: Map<String, Value>, rate: &Rate, applied: Option<usize>) -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, crate::graph::ODATA_JSON)],
        Value::Object(body).to_string(),
    )
        .into_response();
    let headers = response.headers_mut();
    rate.apply(headers);
    headers.insert("Organizationstatus", HeaderValue::from_static("Active"));
    headers.insert(
        "X-Exchangeversion",
        HeaderValue::from_static("Version 15.20 (Build 7587.36)"),
    );
    if let Some(size) = applied
        && let Ok(value) = HeaderValue::from_str(&format!("odata.maxpagesize={size}"))
    {
        headers.insert("Preference-Applied", value);
    }
    response
}

/// Checks the bearer token (Exchange's audience, signature, expiry) and that its tenant is
/// the one in the path (GUID or any verified domain).
fn authenticate(
    state: &SimState,
    headers: &HeaderMap,
    tenant_key: &str,
) -> Result<ExoCaller, ExoError> {
    // The bodies of these 401s are UNVERIFIED (Exchange's own answer was not captured).
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or(ExoError::Token("The access token is missing."))?;
    let claims =
        token::verify_for(bearer.trim(), token::EXCHANGE_AUDIENCE).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature
            | jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                ExoError::Token("The access token has expired or is not yet valid.")
            }
            jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                ExoError::Token("The access token's audience is not Exchange Online.")
            }
            _ => ExoError::Token("The access token is invalid."),
        })?;
    let world = state.world();
    let Some(tenant) = world.tenant_index(tenant_key) else {
        return Err(ExoError::NoTenant(tenant_key.to_owned()));
    };
    if !world.tenants[tenant]
        .id
        .to_string()
        .eq_ignore_ascii_case(&claims.tid)
    {
        // UNVERIFIED: a token of another tenant than the path's.
        return Err(ExoError::Token(
            "The access token was issued for another tenant.",
        ));
    }
    Ok(ExoCaller {
        tenant,
        app_id: Uuid::parse_str(&claims.appid)
            .map_err(|_| ExoError::Token("The access token is invalid."))?,
        wids: claims.wids,
        roles: claims.roles,
    })
}

/// `{"CmdletInput":{"CmdletName":…,"Parameters":{…}}}` (key names case-insensitive).
fn parse_input(body: &[u8]) -> Result<(String, Params), ExoError> {
    let malformed = || {
        ExoError::Malformed(
            "The request body must be {\"CmdletInput\":{\"CmdletName\":…,\"Parameters\":{…}}}."
                .to_owned(),
        )
    };
    let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(body) else {
        return Err(malformed());
    };
    let field = |map: &Map<String, Value>, name: &str| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let Some(Value::Object(input)) = field(&root, "CmdletInput") else {
        return Err(malformed());
    };
    let Some(Value::String(name)) = field(&input, "CmdletName") else {
        return Err(malformed());
    };
    let params = match field(&input, "Parameters") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(malformed()),
    };
    Ok((name, Params::new(params)))
}
