//! App-only tokens (client credentials) through the `oauth2` crate, proven by a client
//! secret or by a client assertion signed with a certificate ([`crate::assertion`]), with
//! Entra's error body (`error`, `error_codes`) parsed and classified, and a cache per
//! (tenant, client, credential fingerprint) that refreshes five minutes early and lets only
//! one request per key go to the token endpoint at a time.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenResponse,
};
use oauth2::{
    AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RequestTokenError, Scope,
    StandardRevocableToken, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tenantry_domain::AppCredential;

use crate::http_client::{GraphHttp, OauthClient};

pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Exchange Online's resource (graph-facts-next §2.2): one token per (tenant, resource).
pub const EXCHANGE_SCOPE: &str = "https://outlook.office365.com/.default";
/// Tokens are refreshed this long before they expire.
const EARLY_REFRESH: Duration = Duration::from_secs(300);
/// The most (tenant, client, credential) keys cached; past it, the cache starts over.
const MAX_SLOTS: usize = 10_000;

/// Entra's token error body (graph-facts §1.3). Only `error` and `error_codes` are used to
/// decide anything; the description is kept for logs, never parsed.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EntraError {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub error_codes: Vec<u32>,
    #[serde(default)]
    pub trace_id: Option<String>,
    #[serde(default)]
    pub correlation_id: Option<String>,
}

impl fmt::Display for EntraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.error, self.error_codes)
    }
}

impl oauth2::ErrorResponse for EntraError {}

type EntraClient = oauth2::Client<
    EntraError,
    BasicTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Why no token was issued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenFailure {
    /// Entra refused the credentials; `code` is the AADSTS code. `reason` is the bracketed
    /// `[Reason - …]` sentence of AADSTS700027, the one refusal whose code alone does not
    /// say what is wrong (see [`certificate_reason`]); `None` for every other code.
    #[error("Entra refused the request: {error} (AADSTS{code})")]
    Refused {
        error: String,
        code: u32,
        reason: Option<AssertionReason>,
    },
    /// Microsoft could not be reached, timed out, answered 5xx or `temporarily_unavailable`.
    #[error("Microsoft's login service is unavailable: {0}")]
    Unavailable(String),
    /// The stored credential cannot be used at all (a certificate's key that does not sign);
    /// nothing was sent to Microsoft.
    #[error("the stored credential is unusable: {0}")]
    Unusable(String),
}

#[derive(Clone)]
struct CachedToken {
    token: SecretString,
    refresh_at: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

/// Tokens by (tenant, client id, credential fingerprint). Cheap to clone.
#[derive(Clone, Default)]
pub struct TokenCache {
    slots: Arc<Mutex<HashMap<String, Slot>>>,
}

impl TokenCache {
    /// A token for `tenant` and `client_id`, from the cache or from the token endpoint.
    /// Concurrent callers for the same key wait for one request instead of each sending one.
    pub async fn token(
        &self,
        http: &GraphHttp,
        tenant: &str,
        client_id: &str,
        credential: &AppCredential,
    ) -> Result<SecretString, TokenFailure> {
        self.token_for(http, tenant, client_id, credential, GRAPH_SCOPE)
            .await
    }

    /// [`TokenCache::token`] for another resource's `scope` (Exchange Online's).
    pub async fn token_for(
        &self,
        http: &GraphHttp,
        tenant: &str,
        client_id: &str,
        credential: &AppCredential,
        scope: &'static str,
    ) -> Result<SecretString, TokenFailure> {
        let fingerprint = fingerprint(credential);
        let key = format!(
            "{}|{}|{fingerprint}|{scope}",
            tenant.to_ascii_lowercase(),
            client_id.to_ascii_lowercase()
        );
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            if slots.len() >= MAX_SLOTS && !slots.contains_key(&key) {
                slots.clear();
            }
            slots.entry(key.clone()).or_default().clone()
        };
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.token.clone());
        }
        let (token, lifetime) =
            match request_with_retries(http, tenant, client_id, credential, scope).await {
                Ok(issued) => issued,
                Err(failure) => {
                    // A failed key leaves nothing behind.
                    self.slots
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&key);
                    return Err(failure);
                }
            };
        *cached = Some(CachedToken {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(EARLY_REFRESH),
        });
        Ok(token)
    }

    /// Forgets every token (after a credential change).
    pub fn clear(&self) {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// A short fingerprint of a credential for cache keys: a replaced secret or certificate is
/// a new key, so its first use takes a fresh token.
fn fingerprint(credential: &AppCredential) -> String {
    let digest = match credential {
        AppCredential::Secret(secret) => Sha256::digest(secret.expose_secret().as_bytes()),
        AppCredential::Certificate(certificate) => Sha256::new()
            .chain_update(b"certificate\0")
            .chain_update(certificate.thumbprint_s256.as_bytes())
            .chain_update(certificate.private_key_pem.expose_secret().as_bytes())
            .finalize(),
    };
    hex::encode(&digest[..8])
}

/// How many times an unavailable login service is asked again before the caller hears
/// of it, and the pause before each retry.
const TOKEN_RETRY_PAUSES: [Duration; 2] = [Duration::from_millis(250), Duration::from_millis(1000)];

/// A token request, asked again after a short pause when the login service was briefly
/// unavailable (a 503 from Entra should not cost a background job one of its attempts).
/// A refusal is final at once.
async fn request_with_retries(
    http: &GraphHttp,
    tenant: &str,
    client_id: &str,
    credential: &AppCredential,
    scope: &str,
) -> Result<(SecretString, Duration), TokenFailure> {
    let mut pauses = TOKEN_RETRY_PAUSES.iter();
    loop {
        match request_token_for(http, tenant, client_id, credential, scope).await {
            Err(TokenFailure::Unavailable(cause)) => match pauses.next() {
                Some(pause) => {
                    tracing::debug!(%cause, "the token endpoint was unavailable; asking again");
                    tokio::time::sleep(*pause).await;
                }
                None => return Err(TokenFailure::Unavailable(cause)),
            },
            other => return other,
        }
    }
}

/// One client-credentials request: with the secret in the body, or with a fresh client
/// assertion (`client_assertion_type` jwt-bearer) signed by the certificate's key.
pub async fn request_token(
    http: &GraphHttp,
    tenant: &str,
    client_id: &str,
    credential: &AppCredential,
) -> Result<(SecretString, Duration), TokenFailure> {
    request_token_for(http, tenant, client_id, credential, GRAPH_SCOPE).await
}

/// [`request_token`] for another resource's `scope`.
pub async fn request_token_for(
    http: &GraphHttp,
    tenant: &str,
    client_id: &str,
    credential: &AppCredential,
    scope: &str,
) -> Result<(SecretString, Duration), TokenFailure> {
    let url = http.config.token_url(tenant);
    let token_url =
        TokenUrl::new(url.clone()).map_err(|e| TokenFailure::Unavailable(e.to_string()))?;
    let client: EntraClient = oauth2::Client::new(ClientId::new(client_id.to_owned()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(token_url);
    let result = match credential {
        AppCredential::Secret(secret) => {
            client
                .set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()))
                .exchange_client_credentials()
                .add_scope(Scope::new(scope.to_owned()))
                .request_async(&OauthClient(http))
                .await
        }
        AppCredential::Certificate(certificate) => {
            let assertion =
                crate::assertion::sign(certificate, client_id, &url, chrono::Utc::now())
                    .map_err(|e| TokenFailure::Unusable(e.to_string()))?;
            client
                .exchange_client_credentials()
                .add_scope(Scope::new(scope.to_owned()))
                .add_extra_param("client_assertion_type", crate::assertion::ASSERTION_TYPE)
                .add_extra_param("client_assertion", assertion.expose_secret().to_owned())
                .request_async(&OauthClient(http))
                .await
        }
    };
    match result {
        Ok(response) => {
            let lifetime = response.expires_in().unwrap_or(Duration::from_secs(3599));
            Ok((
                SecretString::from(response.access_token().secret().to_owned()),
                lifetime,
            ))
        }
        Err(RequestTokenError::ServerResponse(error)) => Err(classify(&error)),
        Err(RequestTokenError::Request(error)) => Err(TokenFailure::Unavailable(format!(
            "request failed: {error}"
        ))),
        // A body that is not Entra's JSON (an HTML error page from a gateway, say) is an
        // outage, not a verdict on the credentials.
        Err(RequestTokenError::Parse(_, _)) => Err(TokenFailure::Unavailable(
            "unreadable answer from the token endpoint".into(),
        )),
        Err(RequestTokenError::Other(message)) => Err(TokenFailure::Unavailable(message)),
    }
}

fn classify(error: &EntraError) -> TokenFailure {
    if error.error == "temporarily_unavailable" {
        return TokenFailure::Unavailable(error.to_string());
    }
    let code = error.error_codes.first().copied().unwrap_or(0);
    TokenFailure::Refused {
        error: error.error.clone(),
        code,
        reason: (code == INVALID_ASSERTION)
            .then(|| certificate_reason(error.error_description.as_deref().unwrap_or_default())),
    }
}

/// AADSTS700027: Entra refused the client assertion's certificate or signature.
pub const INVALID_ASSERTION: u32 = 700027;

/// What AADSTS700027 says is wrong with a client assertion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssertionReason {
    /// No certificate with the assertion's thumbprint is registered on the app.
    KeyNotFound,
    /// The registered certificate with that thumbprint has expired.
    KeyExpired,
    /// A certificate is registered, but the signature does not verify with it.
    SignatureInvalid,
}

/// Entra answers one code, 700027, for an unregistered certificate, an expired one and a bad
/// signature, telling them apart only in the `[Reason - …]` part of its description. The
/// rule is to classify on `error` and `error_codes` (graph-facts §1.3); this is the one
/// place the description refines a code, and only to choose the fix text: the verdict
/// (refused credentials) comes from the code. Observed reasons: "The key was not found."
/// (Azure/azure-sdk-for-net#29007; Microsoft Q&A 2262614 and 5915574), "The provided
/// signature value did not match the expected signature value." (seen with AADSTS50013,
/// Azure/azure-sdk-for-java#25109; UNVERIFIED with 700027), "The key used is expired."
/// (UNVERIFIED). Anything else counts as an invalid signature, the code's documented
/// meaning ("Client assertion contains an invalid signature").
pub fn certificate_reason(description: &str) -> AssertionReason {
    let reason = description
        .split_once("[Reason - ")
        .map(|(_, rest)| rest.split(['.', ',', ']']).next().unwrap_or_default())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if reason.contains("not found") {
        AssertionReason::KeyNotFound
    } else if reason.contains("expired") {
        AssertionReason::KeyExpired
    } else {
        AssertionReason::SignatureInvalid
    }
}

/// Reads claims of an access token without verifying it (the service only needs `tid`
/// and `oid`, from a token it just received over TLS from the authority).
pub fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
