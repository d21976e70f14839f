//! The login authority: tokens, the AADSTS error table, OpenID configuration and JWKS,
//! compared with the recorded responses in graph-facts §1.

mod common;

use common::{Sim, claims};
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

fn thumbprint() -> String {
    use base64::Engine;
    use sha2::Digest;
    let body: String = CERT.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("pem body");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der))
}

fn assertion(audience: &str, client_id: &str, exp_offset: i64, x5t_s256: Option<String>) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
    header.x5t_s256 = x5t_s256;
    let claims = serde_json::json!({"aud": audience, "iss": client_id, "sub": client_id, "jti": uuid::Uuid::new_v4(),
        "nbf": now - 60, "iat": now - 60, "exp": now + exp_offset});
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(KEY.as_bytes()).expect("test key");
    jsonwebtoken::encode(&header, &claims, &key).expect("signed")
}

#[tokio::test]
async fn certificate_credentials_work_and_bad_assertions_are_refused() {
    let contoso = TenantSpec::healthy("contoso", "Contoso Ltd", 30).with_certificate(CERT);
    let sim = Sim::start(vec![contoso.clone()]).await;
    let tenant = contoso.id.to_string();
    let client = contoso.app().client_id.to_string();
    let audience = sim.url(&format!("/{tenant}/oauth2/v2.0/token"));
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
    let ok = send(assertion(&audience, &client, 600, Some(thumbprint())))
        .await
        .expect("sent");
    assert_eq!(ok.status(), 200);
    let token: Value = ok.json().await.expect("json");
    assert_eq!(
        claims(token["access_token"].as_str().expect("token"))["appidacr"],
        "2",
        "certificate credential"
    );

    assert_sts_error(
        send(assertion(&audience, &client, 600, None))
            .await
            .expect("sent"),
        401,
        "invalid_client",
        700027,
    )
    .await;
    assert_sts_error(
        send(assertion(&audience, &client, 600, Some("AAAA".into())))
            .await
            .expect("sent"),
        401,
        "invalid_client",
        700027,
    )
    .await;
    assert_sts_error(
        send(assertion(&audience, &client, -600, Some(thumbprint())))
            .await
            .expect("sent"),
        401,
        "invalid_client",
        700024,
    )
    .await;
    assert_sts_error(
        send(assertion(
            "https://evil.example/token",
            &client,
            600,
            Some(thumbprint()),
        ))
        .await
        .expect("sent"),
        401,
        "invalid_client",
        700027,
    )
    .await;
    let mut tampered = assertion(&audience, &client, 600, Some(thumbprint()));
    tampered.replace_range(tampered.len() - 6.., "AAAAAA");
    assert_sts_error(
        send(tampered).await.expect("sent"),
        401,
        "invalid_client",
        700027,
    )
    .await;
    assert_sts_error(
        send(assertion(
            &audience,
            &uuid::Uuid::new_v4().to_string(),
            600,
            Some(thumbprint()),
        ))
        .await
        .expect("sent"),
        400,
        "invalid_request",
        700021,
    )
    .await;
}
