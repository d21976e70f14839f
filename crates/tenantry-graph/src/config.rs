//! Where Microsoft is: the login authority, the Graph root and the Exchange Online admin API
//! root, injected from configuration.

use std::time::Duration;

/// Exchange Online's admin API host (graph-facts-next §2.3).
pub const EXCHANGE_URL: &str = "https://outlook.office365.com";

#[derive(Clone, Debug)]
pub struct GraphConfig {
    /// e.g. `https://login.microsoftonline.com` (no trailing slash).
    pub authority_url: String,
    /// e.g. `https://graph.microsoft.com` (no trailing slash, no version).
    pub graph_url: String,
    /// The Exchange Online admin API's host, e.g. `https://outlook.office365.com` (no
    /// trailing slash); [`EXCHANGE_URL`] unless configured otherwise.
    pub exchange_url: String,
    /// Longest a single request to Microsoft may take.
    pub request_timeout: Duration,
    /// Extra CA certificates to trust (PEM), e.g. the simulator's over TLS.
    pub extra_ca_pem: Option<String>,
}

impl GraphConfig {
    pub fn new(authority_url: &str, graph_url: &str) -> Self {
        Self {
            authority_url: authority_url.trim_end_matches('/').to_owned(),
            graph_url: graph_url.trim_end_matches('/').to_owned(),
            exchange_url: EXCHANGE_URL.to_owned(),
            request_timeout: Duration::from_secs(15),
            extra_ca_pem: None,
        }
    }

    /// The Exchange Online admin API at `url` (the simulator, a national cloud).
    pub fn with_exchange_url(mut self, url: &str) -> Self {
        url.trim_end_matches('/').clone_into(&mut self.exchange_url);
        self
    }

    /// The `InvokeCommand` endpoint of a tenant (graph-facts-next §2.3).
    pub fn invoke_command(&self, tenant: &str) -> String {
        format!("{}/adminapi/beta/{tenant}/InvokeCommand", self.exchange_url)
    }

    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.authority_url)
    }

    pub fn graph(&self, path_and_query: &str) -> String {
        format!("{}/v1.0{path_and_query}", self.graph_url)
    }
}
