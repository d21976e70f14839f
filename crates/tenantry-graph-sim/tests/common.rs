//! Helpers for the simulator's tests: a running simulator and a client that gets tokens.

#![allow(dead_code)]

use reqwest::{Client, Response};
use serde_json::Value;
use tenantry_graph_sim::{GraphSim, Scenario, TenantSpec};

pub struct Sim {
    pub sim: GraphSim,
    pub client: Client,
}

impl Sim {
    pub async fn start(tenants: Vec<TenantSpec>) -> Self {
        // When the workspace builds reqwest with rustls (and no provider of its own).
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let sim = GraphSim::start(Scenario { tenants })
            .await
            .expect("simulator starts");
        Self {
            sim,
            client: Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    pub async fn token_response(&self, tenant: &str, client_id: &str, secret: &str) -> Response {
        self.client
            .post(self.url(&format!("/{tenant}/oauth2/v2.0/token")))
            .form(&[
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", "https://graph.microsoft.com/.default"),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await
            .expect("sent")
    }

    /// A Graph token for the tenant's first app.
    pub async fn token(&self, spec: &TenantSpec) -> String {
        let response = self
            .token_response(
                &spec.id.to_string(),
                &spec.app().client_id.to_string(),
                spec.secret_value(),
            )
            .await;
        assert_eq!(response.status(), 200, "token for {}", spec.name);
        let body: Value = response.json().await.expect("json");
        body["access_token"].as_str().expect("token").to_owned()
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.client
            .get(self.url(&format!("/v1.0{path}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("sent")
    }

    pub async fn get_url(&self, token: &str, url: &str) -> Response {
        self.client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("sent")
    }

    pub async fn send(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, self.url(&format!("/v1.0{path}")))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("sent")
    }
}

/// Asserts a Graph error envelope (graph-facts §7.5) and returns the body.
pub async fn assert_graph_error(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "{}", response.url());
    assert!(response.headers().contains_key("request-id"));
    let body: Value = response.json().await.expect("json error");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    let inner = &body["error"]["innerError"];
    let date = inner["date"].as_str().expect("innerError.date");
    assert_eq!(
        date.len(),
        19,
        "date without zone, like 2023-05-09T11:17:00: {date}"
    );
    assert!(inner["request-id"].is_string(), "{body}");
    body
}

/// Decodes a JWT's claims without checking it.
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}
