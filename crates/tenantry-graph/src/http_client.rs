//! The one HTTP client to Microsoft: rustls with the ring provider (the one the rest of
//! the workspace uses), no redirects (oauth2 warns about SSRF through redirects), bounded
//! timeouts, and the adapter `oauth2` needs to drive reqwest 0.13.

use std::sync::Once;

use crate::config::GraphConfig;

/// Installs rustls' ring provider as the process default, once. reqwest is built without
/// a provider of its own, so every process that makes HTTPS calls calls this first.
pub fn install_default_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[derive(Clone)]
pub struct GraphHttp {
    pub(crate) client: reqwest::Client,
    pub(crate) config: GraphConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    #[error("building the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

impl GraphHttp {
    pub fn new(config: GraphConfig) -> Result<Self, HttpSetupError> {
        install_default_crypto();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.request_timeout)
            .connect_timeout(std::time::Duration::from_secs(5))
            .user_agent(concat!("tenantry/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &config.extra_ca_pem {
            for certificate in reqwest::Certificate::from_pem_bundle(pem.as_bytes())? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(Self {
            client: builder.build()?,
            config,
        })
    }

    pub fn config(&self) -> &GraphConfig {
        &self.config
    }

    /// Sends an `oauth2` request through reqwest. A 429 or 5xx from the token endpoint is
    /// a transport failure (an outage), whatever its body says, so it can never be read as
    /// a verdict on the credentials.
    pub(crate) async fn send_oauth(
        &self,
        request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, OauthTransportError> {
        let (parts, body) = request.into_parts();
        let response = self
            .client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(OauthTransportError::Http)?;
        let status = response.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(OauthTransportError::Unavailable {
                status: status.as_u16(),
                retry_after: crate::calls::retry_after(&response),
            });
        }
        let mut builder = http::Response::builder().status(status);
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let body = response
            .bytes()
            .await
            .map_err(OauthTransportError::Http)?
            .to_vec();
        // Status and headers came from a valid response, so this cannot fail.
        Ok(builder.body(body).unwrap_or_default())
    }
}

/// Why a token request did not get an answer worth classifying.
#[derive(Debug, thiserror::Error)]
pub enum OauthTransportError {
    #[error("request failed: {0}")]
    Http(reqwest::Error),
    #[error("the token endpoint answered HTTP {status}")]
    Unavailable {
        status: u16,
        retry_after: Option<std::time::Duration>,
    },
}

/// Drives `oauth2` requests through [`GraphHttp`], with a `Send` future so token requests
/// can run inside request handlers and spawned tasks.
pub(crate) struct OauthClient<'a>(pub(crate) &'a GraphHttp);

type OauthFuture<'c> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<oauth2::HttpResponse, OauthTransportError>>
            + Send
            + 'c,
    >,
>;

impl<'c> oauth2::AsyncHttpClient<'c> for OauthClient<'_> {
    type Error = OauthTransportError;
    type Future = OauthFuture<'c>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.0.send_oauth(request))
    }
}
