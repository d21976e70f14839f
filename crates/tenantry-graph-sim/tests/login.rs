//! The login authority: tokens, the AADSTS error table, OpenID configuration and JWKS,
//! compared with the recorded responses in graph-facts §1.

mod common;

use common::{Sim, claims};
use reqwest::Method;
use serde_json::Value;
use tenantry_graph_sim::TenantSpec;
use tenantry_graph_sim::permissions::DEFAULT_REQUIRED;

#[tokio::test]
async fn a_healthy_tenant_gets_an_app_only_graph_token() {
    let contoso = TenantSpec::healthy("contoso", "Contoso Ltd", 30);
    let sim = Sim::start(vec![contoso.clone()]).await;
    let response = sim
        .token_response(
            &contoso.id.to_string(),
            &contoso.app().client_id.to_string(),
            contoso.secret_value(),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(response.headers()["cache-control"], "no-store, no-cache");
    let text = response.text().await.expect("body");
    assert!(
        text.starts_with(
            r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":""#
        ),
        "{text}"
    );
    let body: Value = serde_json::from_str(&text).expect("json");
    let token = body["access_token"].as_str().expect("token");
    let header: Value = {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().expect("header"))
            .expect("b64");
        serde_json::from_slice(&bytes).expect("header json")
    };
    assert_eq!(header["alg"], "RS256");
    let claims = claims(token);
    let sp = contoso.app().service_principal.as_ref().expect("sp");
    assert_eq!(claims["tid"], contoso.id.to_string());
    assert_eq!(claims["appid"], contoso.app().client_id.to_string());
    assert_eq!(claims["oid"], sp.id.to_string());
    assert_eq!(claims["sub"], sp.id.to_string());
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    assert_eq!(
        claims["iss"],
        format!("https://sts.windows.net/{}/", contoso.id)
    );
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(claims["appidacr"], "1");
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert!((3599..=3601).contains(&lifetime), "{lifetime}");
    let roles: Vec<&str> = claims["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for permission in DEFAULT_REQUIRED.iter() {
        assert!(roles.contains(permission), "{permission} in roles");
    }
    assert!(claims.get("scp").is_none(), "no scp in app-only tokens");

    // The tenant may be named by any verified domain, and Basic authentication works too.
    let by_domain = sim
        .client
        .post(sim.url("/contoso.onmicrosoft.com/oauth2/v2.0/token"))
        .basic_auth(contoso.app().client_id, Some(contoso.secret_value()))
        .form(&[
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(by_domain.status(), 200);
}

async fn assert_sts_error(
    response: reqwest::Response,
    status: u16,
    error: &str,
    code: u64,
) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], serde_json::json!([code]), "{body}");
    let description = body["error_description"].as_str().expect("description");
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    assert!(
        description.contains("\r\nTrace ID: ")
            && description.contains("\r\nCorrelation ID: ")
            && description.contains("\r\nTimestamp: ")
    );
    assert_eq!(
        body["error_uri"],
        format!("https://login.microsoftonline.com/error?code={code}")
    );
    let timestamp = body["timestamp"].as_str().expect("timestamp");
    assert_eq!(timestamp.len(), 20, "YYYY-MM-DD HH:MM:SSZ: {timestamp}");
    assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());
    body
}

#[tokio::test]
async fn the_token_endpoint_answers_entras_error_table() {
    let contoso = TenantSpec::healthy("contoso", "Contoso Ltd", 30);
    let woodgrove = TenantSpec::healthy("woodgrove", "Woodgrove Bank", 10).with_expired_secret();
    let northwind =
        TenantSpec::healthy("northwind", "Northwind Traders", 10).without_service_principal();
    let sim = Sim::start(vec![contoso.clone(), woodgrove.clone(), northwind.clone()]).await;
    let (tenant, client) = (contoso.id.to_string(), contoso.app().client_id.to_string());

    let body = assert_sts_error(
        sim.token_response(&tenant, &client, "wrong-secret").await,
        401,
        "invalid_client",
        7000215,
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .expect("text")
            .contains("not the client secret ID")
    );
    let secret_id = contoso.app().secrets[0].key_id.to_string();
    assert_sts_error(
        sim.token_response(&tenant, &client, &secret_id).await,
        401,
        "invalid_client",
        7000215,
    )
    .await;
    assert_sts_error(
        sim.token_response(
            &woodgrove.id.to_string(),
            &woodgrove.app().client_id.to_string(),
            woodgrove.secret_value(),
        )
        .await,
        401,
        "invalid_client",
        7000222,
    )
    .await;
    assert_sts_error(
        sim.token_response(&tenant, &uuid::Uuid::new_v4().to_string(), "x")
            .await,
        400,
        "unauthorized_client",
        700016,
    )
    .await;
    // An app of another tenant is not found in this one.
    assert_sts_error(
        sim.token_response(
            &tenant,
            &woodgrove.app().client_id.to_string(),
            woodgrove.secret_value(),
        )
        .await,
        400,
        "unauthorized_client",
        700016,
    )
    .await;
    assert_sts_error(
        sim.token_response(
            &uuid::Uuid::new_v4().to_string(),
            &client,
            contoso.secret_value(),
        )
        .await,
        400,
        "invalid_request",
        90002,
    )
    .await;
    assert_sts_error(
        sim.token_response("unknown.onmicrosoft.com", &client, contoso.secret_value())
            .await,
        400,
        "invalid_request",
        90002,
    )
    .await;
    assert_sts_error(
        sim.token_response("not a tenant", &client, contoso.secret_value())
            .await,
        400,
        "invalid_request",
        900023,
    )
    .await;
    assert_sts_error(
        sim.token_response(
            &northwind.id.to_string(),
            &northwind.app().client_id.to_string(),
            northwind.secret_value(),
        )
        .await,
        401,
        "invalid_client",
        7000229,
    )
    .await;
}

#[tokio::test]
async fn openid_configuration_and_keys_are_served_for_guid_and_domain() {
    let contoso = TenantSpec::healthy("contoso", "Contoso Ltd", 30);
    let sim = Sim::start(vec![contoso.clone()]).await;
    for key in [contoso.id.to_string(), "contoso.example".to_owned()] {
        let response = sim
            .client
            .get(sim.url(&format!("/{key}/v2.0/.well-known/openid-configuration")))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200);
        let config: Value = response.json().await.expect("json");
        assert_eq!(
            config["token_endpoint"],
            sim.url(&format!("/{}/oauth2/v2.0/token", contoso.id))
        );
        assert_eq!(config["issuer"], sim.url(&format!("/{}/v2.0", contoso.id)));
        let keys: Value = sim
            .client
            .get(config["jwks_uri"].as_str().expect("jwks"))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        assert_eq!(keys["keys"][0]["kty"], "RSA");
    }
    let unknown = sim
        .client
        .get(sim.url("/nobody.example/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .expect("sent");
    assert_eq!(unknown.status(), 400);
    let body: Value = unknown.json().await.expect("json");
    assert_eq!(body["error"], "invalid_tenant");
    assert_eq!(body["error_codes"][0], 90002);
}

const CERT: &str = include_str!("data/app-cert.pem");
const KEY: &str = include_str!("data/app-cert.key");
/// An RSA key that is not the certificate's.
const OTHER_KEY: &str = include_str!("data/other-key.pem");

fn thumbprint() -> String {
    use base64::Engine;
    use sha2::Digest;
    let body: String = CERT.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("pem body");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der))
}

/// An assertion as Microsoft's guidance builds it, valid from `nbf_offset` to `exp_offset`
/// seconds from now, signed with `key`.
#[derive(Clone)]
struct Assertion<'a> {
    audience: &'a str,
    client_id: &'a str,
    nbf_offset: i64,
    exp_offset: i64,
    x5t_s256: Option<String>,
    key: &'a str,
}

impl Assertion<'_> {
    fn sign(&self) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
        header.x5t_s256 = self.x5t_s256.clone();
        let claims = serde_json::json!({"aud": self.audience, "iss": self.client_id, "sub": self.client_id,
            "jti": uuid::Uuid::new_v4(), "nbf": now + self.nbf_offset, "iat": now + self.nbf_offset,
            "exp": now + self.exp_offset});
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(self.key.as_bytes()).expect("test key");
        jsonwebtoken::encode(&header, &claims, &key).expect("signed")
    }
}

#[tokio::test]
async fn certificate_credentials_work_and_bad_assertions_are_refused() {
    let contoso = TenantSpec::healthy("contoso", "Contoso Ltd", 30).with_certificate(CERT);
    let sim = Sim::start(vec![contoso.clone()]).await;
    let tenant = contoso.id.to_string();
    let client = contoso.app().client_id.to_string();
    let audience = sim.url(&format!("/{tenant}/oauth2/v2.0/token"));
    let good = Assertion {
        audience: &audience,
        client_id: &client,
        nbf_offset: -60,
        exp_offset: 600,
        x5t_s256: Some(thumbprint()),
        key: KEY,
    };
    let send = |assertion: String| {
        sim.client
            .post(audience.clone())
            .form(&[
                ("client_id", client.as_str()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
                ("scope", "https://graph.microsoft.com/.default"),
                ("grant_type", "client_credentials"),
            ])
            .send()
    };
    let ok = send(good.sign()).await.expect("sent");
    assert_eq!(ok.status(), 200);
    let token: Value = ok.json().await.expect("json");
    assert_eq!(
        claims(token["access_token"].as_str().expect("token"))["appidacr"],
        "2",
        "certificate credential"
    );

    // Not registered: no thumbprint, or one of no certificate on the app.
    for x5t in [None, Some("AAAA".to_owned())] {
        let body = assert_sts_error(
            send(
                Assertion {
                    x5t_s256: x5t,
                    ..good.clone()
                }
                .sign(),
            )
            .await
            .expect("sent"),
            401,
            "invalid_client",
            700027,
        )
        .await;
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("[Reason - The key was not found.")),
            "{body}"
        );
    }
    // Signed by another key under the registered certificate's thumbprint, or tampered.
    let mut tampered = good.sign();
    tampered.replace_range(tampered.len() - 6.., "AAAAAA");
    for assertion in [
        Assertion {
            key: OTHER_KEY,
            ..good.clone()
        }
        .sign(),
        tampered,
    ] {
        let body = assert_sts_error(
            send(assertion).await.expect("sent"),
            401,
            "invalid_client",
            700027,
        )
        .await;
        assert!(
            body["error_description"].as_str().is_some_and(|d| {
                d.contains(
                "[Reason - The provided signature value did not match the expected signature value."
            )
            }),
            "{body}"
        );
    }
    // Expired, and not yet valid (beyond five minutes of skew).
    for (nbf_offset, exp_offset) in [(-1200, -600), (3600, 4200)] {
        let body = assert_sts_error(
            send(
                Assertion {
                    nbf_offset,
                    exp_offset,
                    ..good.clone()
                }
                .sign(),
            )
            .await
            .expect("sent"),
            401,
            "invalid_client",
            700024,
        )
        .await;
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("Client assertion is not within its valid time range.")),
            "{body}"
        );
    }
    // Within the skew, an assertion a little ahead or behind still works.
    let skewed = Assertion {
        nbf_offset: 120,
        exp_offset: 600,
        ..good.clone()
    };
    assert_eq!(send(skewed.sign()).await.expect("sent").status(), 200);
    assert_sts_error(
        send(
            Assertion {
                audience: "https://evil.example/token",
                ..good.clone()
            }
            .sign(),
        )
        .await
        .expect("sent"),
        401,
        "invalid_client",
        700023,
    )
    .await;
    let stranger = uuid::Uuid::new_v4().to_string();
    assert_sts_error(
        send(
            Assertion {
                client_id: &stranger,
                ..good.clone()
            }
            .sign(),
        )
        .await
        .expect("sent"),
        400,
        "invalid_request",
        700021,
    )
    .await;
    assert_sts_error(
        send("not-a-jwt".to_owned()).await.expect("sent"),
        400,
        "invalid_request",
        50027,
    )
    .await;
}

#[tokio::test]
async fn the_control_api_registers_and_removes_certificates_with_their_own_dates() {
    let contoso = TenantSpec::healthy("contoso", "Contoso Ltd", 30);
    let sim = Sim::start(vec![contoso.clone()]).await;
    let tenant = contoso.id.to_string();
    let client = contoso.app().client_id.to_string();
    let audience = sim.url(&format!("/{tenant}/oauth2/v2.0/token"));
    let good = Assertion {
        audience: &audience,
        client_id: &client,
        nbf_offset: -60,
        exp_offset: 600,
        x5t_s256: Some(thumbprint()),
        key: KEY,
    };
    let token = || async {
        sim.client
            .post(audience.clone())
            .form(&[
                ("client_id", client.as_str()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", good.sign().as_str()),
                ("scope", "https://graph.microsoft.com/.default"),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await
            .expect("sent")
    };
    assert_sts_error(token().await, 401, "invalid_client", 700027).await;

    let certificates = sim.url(&format!(
        "/_sim/tenants/contoso/applications/{client}/certificates"
    ));
    let registered: Value = sim
        .client
        .post(&certificates)
        .json(&serde_json::json!({"certificatePem": CERT, "displayName": "CN=tenantry-sim-test"}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(registered["thumbprint"], thumbprint());
    assert_eq!(token().await.status(), 200);
    // Graph shows it among the app's key credentials.
    let graph_token = sim.token(&contoso).await;
    let app: Value = sim
        .send(
            &graph_token,
            Method::GET,
            &format!("/applications(appId='{client}')"),
            None,
        )
        .await
        .json()
        .await
        .expect("app");
    assert_eq!(app["keyCredentials"][0]["keyId"], registered["keyId"]);
    assert_eq!(app["keyCredentials"][0]["type"], "AsymmetricX509Cert");

    let key_id = registered["keyId"].as_str().expect("key id").to_owned();
    let removed = sim
        .client
        .delete(format!("{certificates}/{key_id}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(removed.status(), 204);
    assert_sts_error(token().await, 401, "invalid_client", 700027).await;

    // A registered certificate whose end date has passed: the key is expired.
    let past = chrono::Utc::now() - chrono::Duration::days(1);
    let expired = sim
        .client
        .post(&certificates)
        .json(&serde_json::json!({"certificatePem": CERT,
            "startDateTime": past - chrono::Duration::days(365), "endDateTime": past}))
        .send()
        .await
        .expect("sent");
    assert_eq!(expired.status(), 201);
    let body = assert_sts_error(token().await, 401, "invalid_client", 700027).await;
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("[Reason - The key used is expired.")),
        "{body}"
    );
    let unknown = sim
        .client
        .post(sim.url(&format!(
            "/_sim/tenants/contoso/applications/{}/certificates",
            uuid::Uuid::new_v4()
        )))
        .json(&serde_json::json!({"certificatePem": CERT}))
        .send()
        .await
        .expect("sent");
    assert_eq!(unknown.status(), 404);
}
