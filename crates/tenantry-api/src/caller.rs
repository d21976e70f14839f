//! The authenticated caller. Taking a [`Caller`] as a handler argument is how a handler
//! gets at data at all: [`Caller::scope`] hands out the store handle bound to the caller's
//! MSP, and there is no other way to obtain one.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use tenantry_store::{AuthError, MspScope, Principal, Store};

use crate::app::AppState;
use crate::problem::ApiError;

pub struct Caller {
    store: Store,
    principal: Principal,
}

impl Caller {
    pub fn scope(&self) -> MspScope<'_> {
        self.store.scope(&self.principal)
    }
}

const MISSING_KEY: &str = "Send an API key as `Authorization: Bearer <key>`.";
const REFUSED_KEY: &str = "The API key is not valid: it is unknown, wrong or revoked. Ask an owner or admin of your MSP for a new key.";

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        let address = client_address(peer, &parts.headers, &state.trusted_proxies);
        // A blocked address is still verified (one indexed read and a constant-time HMAC):
        // a valid key from behind the same NAT or proxy as a guesser gets through, and
        // only failures are answered 429.
        let blocked = state.auth_limiter.blocked_for(address);
        let refuse = |detail: &str| match blocked {
            Some(wait) => ApiError::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
            },
            None => ApiError::Unauthenticated(detail.into()),
        };
        let presented = match parts.headers.get(AUTHORIZATION) {
            None => return Err(refuse(MISSING_KEY)),
            Some(value) => value.to_str().ok().and_then(bearer_token),
        };
        let result = match presented {
            Some(token) => state.store.authenticate(token).await,
            None => Err(AuthError::Malformed),
        };
        match result {
            Ok(principal) => {
                let span = tracing::Span::current();
                span.record("msp_id", tracing::field::display(principal.msp_id()));
                span.record("key_id", tracing::field::display(principal.key_id()));
                Ok(Caller {
                    store: state.store.clone(),
                    principal,
                })
            }
            Err(AuthError::Unavailable(e)) => Err(ApiError::database_unavailable(format!(
                "authenticating: {}",
                tenantry_domain::error_chain(&e)
            ))),
            Err(AuthError::Database(e)) => Err(ApiError::internal(format!(
                "authenticating: {}",
                tenantry_domain::error_chain(&e)
            ))),
            Err(AuthError::Corrupt(what)) => Err(ApiError::internal(format!(
                "authenticating: corrupt {what}"
            ))),
            Err(refused) => {
                state.metrics.auth_failure(refused.reason());
                // While blocked, failures are neither counted again nor logged one by one.
                if blocked.is_none() {
                    if state.auth_limiter.record_failure(address) {
                        tracing::warn!(%address, "too many failed authentications; failures from this address get 429 for the rest of the minute");
                    }
                    tracing::info!(reason = refused.reason(), %address, "API key refused");
                }
                Err(refuse(REFUSED_KEY))
            }
        }
    }
}

/// The client's address: the peer, unless the peer is a trusted reverse proxy; then the
/// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy.
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find(|address| !trusted.contains(address))
        .unwrap_or(peer)
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::{HeaderMap, IpAddr, bearer_token, client_address};

    #[test]
    fn reads_bearer_tokens_only() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn trusts_forwarded_addresses_only_from_trusted_proxies() {
        let proxy: IpAddr = [10, 0, 0, 1].into();
        let client: IpAddr = [203, 0, 113, 7].into();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "198.51.100.1, 203.0.113.7".parse().expect("header"),
        );
        assert_eq!(
            client_address(proxy, &headers, &[proxy]),
            client,
            "rightmost untrusted entry"
        );
        assert_eq!(
            client_address(proxy, &headers, &[]),
            proxy,
            "no trusted proxies: the peer"
        );
        let stranger: IpAddr = [192, 0, 2, 9].into();
        assert_eq!(
            client_address(stranger, &headers, &[proxy]),
            stranger,
            "spoofed header ignored"
        );
        assert_eq!(client_address(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }
}
