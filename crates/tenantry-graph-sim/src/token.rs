//! The login authority: `POST /{tenant}/oauth2/v2.0/token` (client credentials with a
//! client secret or a certificate's client assertion, verified against the certificates
//! registered on the app), the OpenID configuration and the JWKS, with Entra's error bodies and
//! AADSTS codes (graph-facts §1).

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::SimState;
use crate::keys;

/// Claims of an app-only Graph token (graph-facts §1.5; the exact live claim set is
/// UNVERIFIED, this is the documented template).
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub app_displayname: String,
    pub appid: String,
    pub appidacr: String,
    pub idp: String,
    pub idtyp: String,
    pub oid: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub sub: String,
    pub tid: String,
    pub ver: String,
    /// Directory role template ids, in Exchange tokens only (graph-facts-next §2.2: "the
    /// directory role … is returned in the access token"; the claim name `wids` for this
    /// resource is UNVERIFIED).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wids: Vec<String>,
}

pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
/// The audience of Exchange Online tokens. UNVERIFIED (graph-facts-next §2.2): the
/// resource URI the scope names, as Entra does for resources requested by URI.
pub const EXCHANGE_AUDIENCE: &str = "https://outlook.office365.com";

/// The resource a client-credentials request asks a token for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Graph,
    Exchange,
}

impl Resource {
    fn of_scope(scope: &str) -> Option<Self> {
        match scope {
            "https://graph.microsoft.com/.default"
            | "00000003-0000-0000-c000-000000000000/.default" => Some(Resource::Graph),
            // graph-facts-next §2.2 (CIPP, ExoHelper); the appId form is accepted like
            // Graph's.
            "https://outlook.office365.com/.default"
            | "https://outlook.office.com/.default"
            | "00000002-0000-0ff1-ce00-000000000000/.default" => Some(Resource::Exchange),
            _ => None,
        }
    }
}
pub const TOKEN_LIFETIME_SECS: i64 = 3599;

/// An AADSTS error as Entra's token endpoint answers it.
pub struct StsError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    message: String,
}

impl StsError {
    fn new(status: StatusCode, error: &'static str, code: u32, message: String) -> Self {
        Self {
            status,
            error,
            code,
            message,
        }
    }
}

impl IntoResponse for StsError {
    fn into_response(self) -> Response {
        let now = Utc::now();
        let timestamp = now.format("%Y-%m-%d %H:%M:%SZ").to_string();
        let trace = Uuid::new_v4();
        let correlation = Uuid::new_v4();
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}",
                self.code, self.message
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        (self.status, sts_headers(), body.to_string()).into_response()
    }
}

fn sts_headers() -> [(header::HeaderName, HeaderValue); 4] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-cache"),
        ),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
        (header::EXPIRES, HeaderValue::from_static("-1")),
    ]
}

/// AADSTS900023: neither a GUID nor a DNS name.
pub(crate) fn is_valid_tenant_identifier(tenant: &str) -> bool {
    if Uuid::parse_str(tenant).is_ok() {
        return true;
    }
    let labels: Vec<&str> = tenant.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn tenant_not_found(tenant: &str, error: &'static str) -> StsError {
    StsError::new(
        StatusCode::BAD_REQUEST,
        error,
        90002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
    )
}

fn bad_identifier(tenant: &str) -> StsError {
    StsError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900023,
        format!(
            "Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain."
        ),
    )
}

pub async fn token(
    State(state): State<SimState>,
    Path(tenant_key): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    match issue(&state, &tenant_key, &headers, &body) {
        Ok(token) => {
            let body = json!({
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECS,
                "ext_expires_in": TOKEN_LIFETIME_SECS,
                "access_token": token,
            });
            (StatusCode::OK, sts_headers(), body.to_string()).into_response()
        }
        Err(error) => error.into_response(),
    }
}

fn issue(
    state: &SimState,
    tenant_key: &str,
    headers: &HeaderMap,
    body: &str,
) -> Result<String, StsError> {
    if !is_valid_tenant_identifier(tenant_key) {
        return Err(bad_identifier(tenant_key));
    }
    let form: HashMap<String, String> = crate::urlencoding::parse_query(body);
    let (basic_id, basic_secret) = basic_credentials(headers).unzip();
    let client_id = form
        .get("client_id")
        .cloned()
        .or(basic_id)
        .unwrap_or_default();
    let grant_type = form.get("grant_type").map(String::as_str).unwrap_or("");
    if grant_type != "client_credentials" {
        // UNVERIFIED: AADSTS70003 for unsupported grant types.
        return Err(StsError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    let scope = form.get("scope").map(String::as_str).unwrap_or("");
    let Some(resource) = Resource::of_scope(scope) else {
        return Err(StsError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!(
                "The provided value for the input parameter 'scope' isn't valid. The scope {scope} isn't valid."
            ),
        ));
    };
    let world = state.world();
    let Some(index) = world.tenant_index(tenant_key) else {
        // The token endpoint answered `invalid_request` in recorded responses; newer ones
        // may say `invalid_tenant` (UNVERIFIED). Clients must map on error_codes.
        return Err(tenant_not_found(tenant_key, "invalid_request"));
    };
    let tenant = &world.tenants[index];
    let resolved = Uuid::parse_str(&client_id)
        .map_err(|_| crate::model::partner::ClientError::NotFound)
        .and_then(|id| world.resolve(index, id))
        .map_err(|_| app_not_found(&client_id, &tenant.display_name))?;
    // The credential is the registration's, wherever it lives: a multi-tenant app's
    // partner-held secret or certificate works in every customer (graph-facts-next §1.2).
    // Whether Entra checks it before the service principal's presence is UNVERIFIED.
    let app = resolved.registration;
    let now = Utc::now();
    // "1": client secret, "2": certificate (graph-facts §1.5).
    let appidacr = match form.get("client_assertion") {
        Some(assertion) => {
            verify_assertion(
                state,
                app,
                tenant_key,
                &client_id,
                form.get("client_assertion_type"),
                assertion,
            )?;
            "2"
        }
        None => {
            let presented = form
                .get("client_secret")
                .cloned()
                .or(basic_secret.flatten())
                .unwrap_or_default();
            check_secret(app, &client_id, &presented, now)?;
            "1"
        }
    };
    // A service principal created by a consent still propagating does not exist yet.
    let Some(sp) = resolved.local.and_then(|local| local.sp_at(now)) else {
        // 401 `invalid_client` (graph-facts-next §1.3, Microsoft's cross-tenant page).
        return Err(StsError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000229,
            format!(
                "The client application {client_id} is missing service principal in the tenant {}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119",
                tenant.id
            ),
        ));
    };
    let iat = now.timestamp();
    let issuer = format!("https://sts.windows.net/{}/", tenant.id);
    // The roles granted in this tenant for the asked resource and propagated at minting
    // time (§1.2): later grants only reach new tokens. Graph tokens never carry
    // Exchange's roles, nor Exchange tokens Graph's.
    let (aud, roles, wids) = match resource {
        Resource::Graph => (
            GRAPH_AUDIENCE,
            sp.roles_at(now)
                .filter_map(crate::permissions::value_of)
                .map(str::to_owned)
                .collect(),
            Vec::new(),
        ),
        Resource::Exchange => (
            EXCHANGE_AUDIENCE,
            sp.exchange_roles_at(now)
                .filter_map(crate::model::exchange::role_value_of)
                .map(str::to_owned)
                .collect(),
            sp.directory_roles.iter().map(Uuid::to_string).collect(),
        ),
    };
    let claims = Claims {
        aud: aud.to_owned(),
        iss: issuer.clone(),
        iat,
        nbf: iat,
        exp: iat + TOKEN_LIFETIME_SECS + 1,
        app_displayname: app.display_name.clone(),
        appid: client_id,
        appidacr: appidacr.to_owned(),
        idp: issuer,
        idtyp: "app".to_owned(),
        oid: sp.id.to_string(),
        roles,
        sub: sp.id.to_string(),
        tid: tenant.id.to_string(),
        ver: "1.0".to_owned(),
        wids,
    };
    jsonwebtoken::encode(&keys::header(), &claims, &keys::KEYS.encoding).map_err(|e| {
        StsError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "temporarily_unavailable",
            90033,
            format!("signing failed: {e}"),
        )
    })
}

/// AADSTS700016: the client id names no app this tenant can use (unknown anywhere, or a
/// single-tenant app of another tenant).
fn app_not_found(client_id: &str, directory: &str) -> StsError {
    StsError::new(
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        700016,
        format!(
            "Application with identifier '{client_id}' was not found in the directory '{directory}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
        ),
    )
}

fn check_secret(
    app: &crate::model::App,
    client_id: &str,
    presented: &str,
    now: chrono::DateTime<Utc>,
) -> Result<(), StsError> {
    match app.secrets.iter().find(|s| s.spec.value == presented) {
        None => Err(StsError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )),
        Some(secret) if secret.spec.end <= now => Err(StsError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000222,
            format!(
                "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
            ),
        )),
        Some(_) => Ok(()),
    }
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    #[serde(default)]
    nbf: Option<i64>,
    exp: i64,
    /// A string, or an array of them (RFC 7519).
    aud: serde_json::Value,
}

/// Clock skew tolerated on assertions' `nbf` and `exp`: five minutes (UNVERIFIED, the usual
/// value of Microsoft's token validation).
const ASSERTION_LEEWAY_SECS: u64 = 300;

/// AADSTS700027, whose `[Reason - …]` says what is wrong with the assertion's certificate.
fn invalid_assertion(message: String) -> StsError {
    // HTTP 401 like the other `invalid_client` refusals; UNVERIFIED for 700027.
    StsError::new(StatusCode::UNAUTHORIZED, "invalid_client", 700027, message)
}

/// The thumbprint as Entra's messages quote it (hex, upper case). They quote the SHA-1
/// `x5t`; for an `x5t#S256` assertion, which they would quote is UNVERIFIED.
fn quoted_thumbprint(x5t_s256: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(x5t_s256)
        .map(|bytes| bytes.iter().map(|b| format!("{b:02X}")).collect())
        .unwrap_or_else(|_| x5t_s256.to_owned())
}

/// A time as 700024 quotes it: seven fractional digits (.NET ticks), `Z`.
fn ticks(t: chrono::DateTime<Utc>) -> String {
    use chrono::Timelike;
    format!(
        "{}.{:07}Z",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.nanosecond() / 100
    )
}

/// `Start=MM/dd/yyyy HH:mm:ss, End=…`, as 700027 describes the key it found.
fn found_key(certificate: &crate::model::Certificate) -> String {
    let format = "%m/%d/%Y %H:%M:%S";
    format!(
        "Start={}, End={}",
        certificate.start.format(format),
        certificate.end.format(format)
    )
}

/// Certificate credentials: a JWT signed (PS256 or RS256) with a certificate registered on
/// the app, named by its `x5t#S256` thumbprint, addressed to this token endpoint, with
/// `iss` = `sub` = the client id and a current `nbf`/`exp`. Each refusal is Entra's:
/// - AADSTS700027 "… not registered on application. [Reason - The key was not found., …]"
///   for an unknown thumbprint (Azure/azure-sdk-for-net#29007, Microsoft Q&A 5915574);
/// - AADSTS700027 "Client assertion contains an invalid signature. [Reason - The provided
///   signature value did not match the expected signature value., …]" for a signature the
///   registered key does not verify (the reason is observed with AADSTS50013,
///   Azure/azure-sdk-for-java#25109; with 700027 UNVERIFIED);
/// - AADSTS700027 "[Reason - The key used is expired., …]" for a registered certificate
///   past its end date, or before its start (UNVERIFIED wording);
/// - AADSTS700024 "Client assertion is not within its valid time range. …" for an
///   expired or not yet valid assertion (AzureAD/microsoft-authentication-library-for-java
///   #984, `invalid_client`);
/// - AADSTS700023 "Client assertion audience claim does not match Realm issuer." for
///   another audience (Azure SDK for Java troubleshooting page; status and class
///   UNVERIFIED);
/// - AADSTS700021 for `iss`/`sub` other than the client id (same page);
/// - AADSTS50027 "JWT token is invalid or malformed." for a value that is not a JWT
///   (panva/openid-client#348; class UNVERIFIED).
fn verify_assertion(
    state: &SimState,
    app: &crate::model::App,
    tenant_key: &str,
    client_id: &str,
    assertion_type: Option<&String>,
    assertion: &str,
) -> Result<(), StsError> {
    if assertion_type.map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        // UNVERIFIED: code and wording (AADSTS90011 "Unexpected client assertion type." was
        // seen from the v1 endpoint, AzureAD/azure-activedirectory-library-for-ruby#53).
        return Err(StsError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90011,
            "Unexpected client assertion type.".to_owned(),
        ));
    }
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| {
        StsError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.".to_owned(),
        )
    })?;
    let thumbprint = header.x5t_s256.as_deref().unwrap_or_default();
    let quoted = quoted_thumbprint(thumbprint);
    let portal = format!(
        "Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, such as 'https://graph.microsoft.com/beta/applications/{client_id}'"
    );
    let Some(certificate) = app
        .certificates
        .iter()
        .find(|c| !thumbprint.is_empty() && c.thumbprint_s256 == thumbprint)
    else {
        return Err(invalid_assertion(format!(
            "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{quoted}', {portal}]."
        )));
    };
    let bad_signature = || {
        invalid_assertion(format!(
            "Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '{quoted}', Found key '{}', {portal}].",
            found_key(certificate)
        ))
    };
    if !matches!(
        header.alg,
        jsonwebtoken::Algorithm::PS256 | jsonwebtoken::Algorithm::RS256
    ) {
        return Err(bad_signature());
    }
    // The signature first, with the claims checked below by hand, so each failure gets
    // its own answer.
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &certificate.key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => bad_signature(),
            _ => StsError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "JWT token is invalid or malformed.".to_owned(),
            ),
        })?
        .claims;
    let now = state.authority_now();
    if now < certificate.start || certificate.end <= now {
        return Err(invalid_assertion(format!(
            "Client assertion contains an invalid signature. [Reason - The key used is expired., Thumbprint of key used by client: '{quoted}', Found key '{}', {portal}].",
            found_key(certificate)
        )));
    }
    let leeway = i64::try_from(ASSERTION_LEEWAY_SECS).unwrap_or(300);
    let not_yet = claims
        .nbf
        .is_some_and(|nbf| nbf.saturating_sub(leeway) > now.timestamp());
    if claims.exp.saturating_add(leeway) < now.timestamp() || not_yet {
        let at = |t: i64| ticks(chrono::DateTime::from_timestamp(t.max(0), 0).unwrap_or_default());
        return Err(StsError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
                ticks(now),
                at(claims.nbf.unwrap_or(0)),
                at(claims.exp)
            ),
        ));
    }
    let base = state.base_url();
    let audiences = [
        format!("{base}/{tenant_key}/oauth2/v2.0/token"),
        format!("https://login.microsoftonline.com/{tenant_key}/oauth2/v2.0/token"),
    ];
    let named: Vec<&str> = match &claims.aud {
        serde_json::Value::String(one) => vec![one.as_str()],
        serde_json::Value::Array(many) => many.iter().filter_map(|a| a.as_str()).collect(),
        _ => Vec::new(),
    };
    if !named
        .iter()
        .any(|aud| audiences.iter().any(|a| a.eq_ignore_ascii_case(aud)))
    {
        return Err(StsError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700023,
            "Client assertion audience claim does not match Realm issuer.".to_owned(),
        ));
    }
    if !claims.iss.eq_ignore_ascii_case(client_id) || !claims.sub.eq_ignore_ascii_case(client_id) {
        return Err(StsError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter."
                .to_owned(),
        ));
    }
    Ok(())
}

/// `Authorization: Basic base64(client_id:client_secret)`, the RFC 6749 alternative.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, Option<String>)> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = crate::urlencoding::decode;
    Some((unescape(id), Some(unescape(secret))))
}

pub async fn openid_configuration(
    State(state): State<SimState>,
    Path(tenant_key): Path<String>,
) -> Response {
    if !is_valid_tenant_identifier(&tenant_key) {
        return bad_identifier(&tenant_key).into_response();
    }
    let world = state.world();
    let Some(index) = world.tenant_index(&tenant_key) else {
        return tenant_not_found(&tenant_key, "invalid_tenant").into_response();
    };
    let tid = world.tenants[index].id;
    let base = state.base_url();
    let body = json!({
        "token_endpoint": format!("{base}/{tid}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{tid}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{tid}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "tid", "ver", "oid", "roles"],
        "kerberos_endpoint": format!("{base}/{tid}/kerberos"),
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net"
    });
    (StatusCode::OK, sts_headers(), body.to_string()).into_response()
}

pub async fn jwks(Path(_tenant): Path<String>) -> Response {
    (StatusCode::OK, sts_headers(), keys::jwks().to_string()).into_response()
}

/// Verifies a Graph bearer token: signature, expiry, audience. Returns its claims.
pub fn verify(token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
    verify_for(token, GRAPH_AUDIENCE)
}

/// Verifies a bearer token for `audience` (Graph's or Exchange's).
pub fn verify_for(token: &str, audience: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Claims>(token, &keys::KEYS.decoding, &validation).map(|data| data.claims)
}
