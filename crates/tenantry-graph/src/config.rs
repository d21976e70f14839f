//! Where Microsoft is: the login authority and the Graph root, injected from configuration.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct GraphConfig {
    /// e.g. `https://login.microsoftonline.com` (no trailing slash).
    pub authority_url: String,
    /// e.g. `https://graph.microsoft.com` (no trailing slash, no version).
    pub graph_url: String,
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
            request_timeout: Duration::from_secs(15),
            extra_ca_pem: None,
        }
    }

    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.authority_url)
    }

    pub fn graph(&self, path_and_query: &str) -> String {
        format!("{}/v1.0{path_and_query}", self.graph_url)
    }
}
