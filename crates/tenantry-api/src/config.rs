//! The API's own settings, embedded in the service's configuration under `[http]`.

use std::time::Duration;

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Listen address, e.g. `127.0.0.1:8080` (`TENANTRY__HTTP__ADDR`).
    pub addr: String,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered 408.
    pub request_timeout_secs: u64,
    /// Browser origins allowed to call the API (the MSP dashboard). Empty: no CORS at all.
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
    /// Failed authentications allowed per client address per minute before 429.
    pub auth_failures_per_minute: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the real client. Empty: the peer
    /// address is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Where Microsoft Graph reaches this service from outside, e.g.
    /// `https://tenantry.example.com` (`TENANTRY__HTTP__PUBLIC_URL`). Needed for change
    /// notifications; `dev` sets its own address.
    #[serde(default)]
    pub public_url: Option<String>,
}

impl ApiConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}
