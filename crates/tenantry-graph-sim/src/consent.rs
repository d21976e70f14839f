//! Admin consent: `GET /{tenant}/adminconsent` (v1, everything the app declares) and
//! `GET /{tenant}/v2.0/adminconsent` (`scope=…/.default`), answered for the tenant's
//! simulated admin, whose choice the control API sets (`PUT /_sim/tenants/{t}/consent`).
//! Accepting redirects with `admin_consent=True&tenant=…` and creates the app's service
//! principal and grants after the tenant's propagation delays; declining redirects with
//! `error=access_denied` and AADSTS65004 (graph-facts-next §1.4, §1.14). Requests Entra
//! would not redirect for (unknown app, redirect URI not registered) get an error page.

use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use uuid::Uuid;

use crate::SimState;
use crate::model::partner::Grant;
use crate::scenario::ConsentChoice;

/// Which of the two documented endpoints was called.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// Refusals Entra shows on its own page instead of redirecting (status 400 and the page's
/// wording are UNVERIFIED; the AADSTS messages are Microsoft's).
#[derive(Debug, thiserror::Error)]
enum PageError {
    #[error(
        "AADSTS900023: Specified tenant identifier '{0}' is neither a valid DNS name, nor a valid external domain."
    )]
    BadTenant(String),
    #[error(
        "AADSTS90002: Tenant '{0}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
    )]
    TenantNotFound(String),
    /// `common` / `organizations` would sign in an admin of some tenant; the simulator's
    /// admins belong to the tenant in the path (a deliberate deviation).
    #[error(
        "The simulator needs the customer tenant in the path (GUID or domain), not '{0}': its admins sign in to one tenant."
    )]
    NoTenant(String),
    #[error("AADSTS900144: The request body must contain the following parameter: '{0}'.")]
    Missing(&'static str),
    #[error(
        "AADSTS700016: Application with identifier '{client_id}' was not found in the directory '{directory}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
    )]
    AppNotFound {
        client_id: String,
        directory: String,
    },
    #[error(
        "AADSTS50011: The redirect URI '{uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this."
    )]
    RedirectMismatch { uri: String, client_id: String },
    /// UNVERIFIED code and wording for an app without any redirect URI.
    #[error("AADSTS500113: No reply address is registered for the application.")]
    NoReplyAddress,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let message = escape_html(&self.to_string());
        let body = format!(
            "<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body><h1>Sorry, but we're having trouble signing you in.</h1><p id=\"error\">{message}</p></body></html>"
        );
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

pub async fn v1(
    State(state): State<SimState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    answer(&state, &tenant, query.as_deref().unwrap_or(""), Version::V1)
}

pub async fn v2(
    State(state): State<SimState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    answer(&state, &tenant, query.as_deref().unwrap_or(""), Version::V2)
}

fn answer(state: &SimState, tenant_key: &str, raw_query: &str, version: Version) -> Response {
    match consent(state, tenant_key, raw_query, version) {
        Ok(location) => redirect(&location),
        Err(page) => page.into_response(),
    }
}

/// The whole exchange; `Ok` is the redirect's target.
fn consent(
    state: &SimState,
    tenant_key: &str,
    raw_query: &str,
    version: Version,
) -> Result<String, PageError> {
    if ["common", "organizations", "consumers"].contains(&tenant_key.to_ascii_lowercase().as_str())
    {
        return Err(PageError::NoTenant(tenant_key.to_owned()));
    }
    if !crate::token::is_valid_tenant_identifier(tenant_key) {
        return Err(PageError::BadTenant(tenant_key.to_owned()));
    }
    let query = crate::urlencoding::parse_query(raw_query);
    let param = |name: &str| {
        query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let client_id = param("client_id").ok_or(PageError::Missing("client_id"))?;
    let state_param = param("state");
    let (index, grant, redirect_uri, choice, sp_delay, roles_delay) = {
        let world = state.world();
        let index = world
            .tenant_index(tenant_key)
            .ok_or_else(|| PageError::TenantNotFound(tenant_key.to_owned()))?;
        let tenant = &world.tenants[index];
        let not_found = || PageError::AppNotFound {
            client_id: client_id.to_owned(),
            directory: tenant.display_name.clone(),
        };
        let client_uuid = Uuid::parse_str(client_id).map_err(|_| not_found())?;
        let (home, registration) = world.registration(client_uuid).ok_or_else(not_found)?;
        if home != index && !registration.is_multi_tenant() {
            return Err(not_found());
        }
        let redirect_uri = match param("redirect_uri") {
            Some(uri) if registration.accepts_redirect(uri) => uri.to_owned(),
            Some(uri) => {
                return Err(PageError::RedirectMismatch {
                    uri: uri.to_owned(),
                    client_id: client_id.to_owned(),
                });
            }
            // Without one, Entra uses a registered reply URL (which one is UNVERIFIED).
            None => registration
                .redirect_uris
                .first()
                .cloned()
                .ok_or(PageError::NoReplyAddress)?,
        };
        let home_tenant = &world.tenants[home];
        let grant = Grant {
            client_id: client_uuid,
            home: home_tenant.id,
            display_name: registration.display_name.clone(),
            publisher: home_tenant.display_name.clone(),
            sign_in_audience: registration.sign_in_audience,
            roles: registration.required.clone(),
            exchange_roles: registration.exchange_required.clone(),
        };
        let seconds = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 4));
        (
            index,
            grant,
            redirect_uri,
            tenant.consent.choice,
            seconds(tenant.consent.service_principal_delay()),
            seconds(tenant.consent.propagation_seconds),
        )
    };
    let mut params: Vec<(&str, String)> = Vec::new();
    let scope = param("scope");
    if version == Version::V2 {
        // "In order to request app permissions, you must use the `/.default` value"; the
        // simulator grants app permissions only. The redirected errors are UNVERIFIED.
        let error = match scope {
            None => Some((
                "invalid_request",
                sts_description(
                    900144,
                    "The request body must contain the following parameter: 'scope'.",
                ),
            )),
            Some(scope) if !is_graph_default(scope) => Some((
                "invalid_scope",
                sts_description(
                    70011,
                    &format!(
                        "The provided value for the input parameter 'scope' isn't valid. The scope {scope} isn't valid."
                    ),
                ),
            )),
            Some(_) => None,
        };
        if let Some((error, description)) = error {
            params.push(("error", error.to_owned()));
            params.push(("error_description", description));
            push_state(&mut params, state_param);
            return Ok(with_query(&redirect_uri, &params));
        }
    }
    match choice {
        ConsentChoice::Decline => {
            // The observed decline (MicrosoftDocs/azure-docs#114009): no `tenant`.
            params.push(("error", "access_denied".to_owned()));
            params.push((
                "error_description",
                sts_description(65004, "User declined to consent to access the app."),
            ));
            params.push((
                "error_uri",
                "https://login.microsoftonline.com/error?code=65004".to_owned(),
            ));
            params.push(("admin_consent", "True".to_owned()));
            push_state(&mut params, state_param);
        }
        ConsentChoice::Accept => {
            let tenant_id = {
                let mut world = state.world_mut();
                let tenant = &mut world.tenants[index];
                tenant.consent(&grant, Utc::now(), sp_delay, roles_delay);
                tenant.id.to_string()
            };
            match version {
                // v1 order as documented: tenant, state, admin_consent.
                Version::V1 => {
                    params.push(("tenant", tenant_id));
                    push_state(&mut params, state_param);
                    params.push(("admin_consent", "True".to_owned()));
                }
                // v2: admin_consent, tenant, scope, state.
                Version::V2 => {
                    params.push(("admin_consent", "True".to_owned()));
                    params.push(("tenant", tenant_id));
                    params.push(("scope", scope.unwrap_or_default().to_owned()));
                    push_state(&mut params, state_param);
                }
            }
        }
    }
    Ok(with_query(&redirect_uri, &params))
}

fn is_graph_default(scope: &str) -> bool {
    scope.split(' ').filter(|s| !s.is_empty()).all(|s| {
        matches!(
            s,
            "https://graph.microsoft.com/.default"
                | "00000003-0000-0000-c000-000000000000/.default"
        )
    })
}

fn push_state(params: &mut Vec<(&str, String)>, state: Option<&str>) {
    if let Some(state) = state {
        params.push(("state", state.to_owned()));
    }
}

/// `AADSTS{code}: {message}` with the trace lines Entra appends.
fn sts_description(code: u32, message: &str) -> String {
    let timestamp = Utc::now().format("%Y-%m-%d %H:%M:%SZ");
    format!(
        "AADSTS{code}: {message}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {timestamp}",
        Uuid::new_v4(),
        Uuid::new_v4()
    )
}

/// `uri` with `params` appended to its query, form-encoded as Entra writes them
/// (`+` for spaces).
fn with_query(uri: &str, params: &[(&str, String)]) -> String {
    let encoded: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect();
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{}", encoded.join("&"))
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b' ' => out.push('+'),
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') => {
                out.push(b as char);
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn redirect(location: &str) -> Response {
    match axum::http::HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => PageError::NoReplyAddress.into_response(),
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_form_encoded_after_the_redirect_uris_own_query() {
        let url = with_query(
            "http://localhost/cb?x=1",
            &[("error_description", "AADSTS65004: a b\r\n".to_owned())],
        );
        assert_eq!(
            url,
            "http://localhost/cb?x=1&error_description=AADSTS65004%3A+a+b%0D%0A"
        );
        assert!(is_graph_default("https://graph.microsoft.com/.default"));
        assert!(!is_graph_default("https://graph.microsoft.com/User.Read"));
    }
}
