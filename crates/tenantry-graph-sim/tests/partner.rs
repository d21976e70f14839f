//! Partner mode over HTTP (graph-facts-next §1): the token endpoint keyed by tenant and client
//! id, admin consent with its redirects and propagation, the GDAP APIs of the partner tenant,
//! and directory roles of the partner app's service principal in customers.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::{Sim, assert_graph_error, claims};
use serde_json::{Value, json};
use tenantry_graph_sim::TenantSpec;
use tenantry_graph_sim::permissions::DEFAULT_REQUIRED;
use tenantry_graph_sim::scenario::partner::{partner_at_scale, roles};
use tenantry_graph_sim::scenario::{
    ConsentChoice, ConsentSpec, RelationshipSpec, RelationshipStatus, partner_demo,
};

const CALLBACK: &str = "http://localhost:8080/consent/callback";

fn demo_tenant(name: &str) -> TenantSpec {
    partner_demo()
        .tenants
        .into_iter()
        .find(|t| t.name == name)
        .expect("tenant in the preset")
}

struct Partner {
    sim: Sim,
    partner: TenantSpec,
    /// A client that does not follow redirects, as a test of `/adminconsent` needs.
    browser: reqwest::Client,
}

impl Partner {
    async fn start(tenants: Vec<TenantSpec>) -> Self {
        let partner = tenants[0].clone();
        Self {
            sim: Sim::start(tenants).await,
            partner,
            browser: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    async fn demo() -> Self {
        Self::start(partner_demo().tenants).await
    }

    fn client_id(&self) -> String {
        self.partner.app().client_id.to_string()
    }

    /// The partner app's token request against `tenant`.
    async fn token_response(&self, tenant: &TenantSpec) -> reqwest::Response {
        self.sim
            .token_response(
                &tenant.id.to_string(),
                &self.client_id(),
                self.partner.secret_value(),
            )
            .await
    }

    async fn token(&self, tenant: &TenantSpec) -> String {
        let response = self.token_response(tenant).await;
        assert_eq!(response.status(), 200, "token in {}", tenant.name);
        let body: Value = response.json().await.expect("json");
        body["access_token"].as_str().expect("token").to_owned()
    }

    async fn sts_error(&self, tenant: &TenantSpec) -> (u16, Value) {
        let response = self.token_response(tenant).await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("json"))
    }

    async fn consent(&self, path: &str, query: &[(&str, &str)]) -> reqwest::Response {
        let url = reqwest::Url::parse_with_params(&self.sim.url(path), query).expect("url");
        self.browser.get(url).send().await.expect("sent")
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> u16 {
        self.sim
            .client
            .request(method, self.sim.url(path))
            .json(&body)
            .send()
            .await
            .expect("sent")
            .status()
            .as_u16()
    }
}

fn roles_of(token: &str) -> BTreeSet<String> {
    claims(token)["roles"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn every_default() -> BTreeSet<String> {
    DEFAULT_REQUIRED.iter().map(|p| (*p).to_owned()).collect()
}

/// The query of a `Location`, in order.
fn location_query(response: &reqwest::Response) -> (String, Vec<(String, String)>) {
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii location")
        .to_owned();
    let url = reqwest::Url::parse(&location).expect("absolute location");
    let base = format!("{}://{}{}", url.scheme(), url.authority(), url.path());
    let pairs = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    (base, pairs)
}

#[tokio::test]
async fn the_partner_app_signs_in_to_customers_that_hold_its_service_principal() {
    let mut tenants = partner_demo().tenants;
    let contoso = TenantSpec::healthy("contoso", "Contoso Ltd", 10);
    tenants.push(contoso.clone());
    let p = Partner::start(tenants).await;
    let fourth = demo_tenant("fourthcoffee");

    // Consented customer: the customer's tid, its service principal, the roles granted there.
    let token = p.token(&fourth).await;
    let c = claims(&token);
    assert_eq!(c["tid"], fourth.id.to_string());
    assert_eq!(c["appid"], p.client_id());
    assert_eq!(
        c["oid"],
        fourth
            .app()
            .service_principal
            .as_ref()
            .expect("sp")
            .id
            .to_string()
    );
    assert_eq!(c["iss"], format!("https://sts.windows.net/{}/", fourth.id));
    assert_eq!(roles_of(&token), every_default());
    let users = p.sim.get(&token, "/users?$top=5").await;
    assert_eq!(users.status(), 200);

    // The partner tenant itself: GDAP read on top.
    let own = p.token(&p.partner).await;
    assert_eq!(claims(&own)["tid"], p.partner.id.to_string());
    assert!(roles_of(&own).contains("DelegatedAdminRelationship.Read.All"));

    // Not consented: AADSTS7000229, 401 invalid_client, naming app and tenant.
    let alpine = demo_tenant("alpineskihouse");
    let (status, body) = p.sts_error(&alpine).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([7000229]));
    let description = body["error_description"].as_str().expect("description");
    assert!(
        description.starts_with(&format!(
            "AADSTS7000229: The client application {} is missing service principal in the tenant {}.",
            p.client_id(),
            alpine.id
        )),
        "{description}"
    );

    // The partner secret is still checked in the customer.
    let wrong = p
        .sim
        .token_response(&fourth.id.to_string(), &p.client_id(), "nope")
        .await;
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.expect("json");
    assert_eq!(body["error_codes"], json!([7000215]));

    // Unknown app, and a single-tenant app of another tenant: AADSTS700016, 400.
    for (client, secret) in [
        (uuid::Uuid::new_v4().to_string(), "x".to_owned()),
        (
            contoso.app().client_id.to_string(),
            contoso.secret_value().to_owned(),
        ),
    ] {
        let response = p
            .sim
            .token_response(&fourth.id.to_string(), &client, &secret)
            .await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], "unauthorized_client", "{body}");
        assert_eq!(body["error_codes"], json!([700016]));
    }
    // … while the single-tenant app still works at home.
    assert!(!p.sim.token(&contoso).await.is_empty());
}

#[tokio::test]
async fn a_partner_certificate_works_in_customers() {
    const CERT: &str = include_str!("data/app-cert.pem");
    const KEY: &str = include_str!("data/app-cert.key");
    let mut tenants = partner_demo().tenants;
    tenants[0] = tenants[0].clone().with_certificate(CERT);
    let p = Partner::start(tenants).await;
    let fourth = demo_tenant("fourthcoffee");
    let thumbprint = {
        use base64::Engine;
        use sha2::Digest;
        let body: String = CERT.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("pem body");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der))
    };
    let audience = p.sim.url(&format!("/{}/oauth2/v2.0/token", fourth.id));
    let client = p.client_id();
    let now = chrono::Utc::now().timestamp();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
    header.x5t_s256 = Some(thumbprint);
    let assertion = jsonwebtoken::encode(
        &header,
        &json!({"aud": audience, "iss": client, "sub": client, "jti": uuid::Uuid::new_v4(),
            "nbf": now - 60, "iat": now - 60, "exp": now + 600}),
        &jsonwebtoken::EncodingKey::from_rsa_pem(KEY.as_bytes()).expect("key"),
    )
    .expect("signed");
    let response = p
        .sim
        .client
        .post(&audience)
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
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(claims(token)["tid"], fourth.id.to_string());
    assert_eq!(claims(token)["appidacr"], "2");
}

#[tokio::test]
async fn admin_consent_redirects_then_propagates_into_new_tokens_only() {
    let p = Partner::demo().await;
    let alpine = demo_tenant("alpineskihouse");
    let tenant = alpine.id.to_string();
    let consent =
        json!({"choice": "accept", "propagationSeconds": 2, "servicePrincipalSeconds": 1});
    assert_eq!(
        p.control(
            reqwest::Method::PUT,
            &format!("/_sim/tenants/{tenant}/consent"),
            consent.clone()
        )
        .await,
        204
    );
    let read: Value = p
        .sim
        .client
        .get(p.sim.url("/_sim/tenants/alpineskihouse/consent"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(read, consent);

    let client = p.client_id();
    let response = p
        .consent(
            &format!("/{tenant}/adminconsent"),
            &[
                ("client_id", &client),
                ("redirect_uri", CALLBACK),
                ("state", "s-1 2"),
            ],
        )
        .await;
    assert_eq!(response.status(), 302);
    let (base, query) = location_query(&response);
    assert_eq!(base, CALLBACK);
    let expected: Vec<(String, String)> = [
        ("tenant", tenant.as_str()),
        ("state", "s-1 2"),
        ("admin_consent", "True"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(
        query, expected,
        "v1 success parameters in the documented order"
    );

    // Propagating: no service principal for the token endpoint yet.
    let (status, body) = p.sts_error(&alpine).await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (401, Some(7000229))
    );

    // The principal exists, its roles do not yet: a token without roles.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let early = p.token(&alpine).await;
    assert!(roles_of(&early).is_empty(), "{:?}", roles_of(&early));
    assert_graph_error(
        p.sim.get(&early, "/users").await,
        403,
        "Authorization_RequestDenied",
    )
    .await;

    // Propagated: a new token carries every declared permission, the old one none.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let late = p.token(&alpine).await;
    assert_eq!(roles_of(&late), every_default());
    assert!(roles_of(&early).is_empty());
    assert_eq!(p.sim.get(&late, "/users?$top=1").await.status(), 200);
    let sp = claims(&late)["oid"].as_str().expect("oid").to_owned();
    let assignments: Value = p
        .sim
        .get(
            &late,
            &format!("/servicePrincipals/{sp}/appRoleAssignments?$top=999"),
        )
        .await
        .json()
        .await
        .expect("json");
    // Graph's roles and, on Exchange's own resource, Exchange.ManageAsApp (the partner
    // app declares both, so the consent grants both).
    assert_eq!(
        assignments["value"].as_array().map(Vec::len),
        Some(DEFAULT_REQUIRED.len() + 1)
    );
    assert!(
        assignments["value"]
            .as_array()
            .expect("assignments")
            .iter()
            .any(|a| a["appRoleId"] == "dc50a0fb-09a3-484d-be87-e023b12c6440"
                && a["resourceDisplayName"] == "Office 365 Exchange Online"),
        "{assignments}"
    );
    // The validator's reads of its own principal work in the customer; the application
    // object lives only in the partner tenant.
    let own: Value = p
        .sim
        .get(
            &late,
            &format!("/servicePrincipals/{sp}?$select=id,appId,displayName"),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(own["appId"], client);
    assert_eq!(own["appOwnerOrganizationId"], p.partner.id.to_string());
    assert_eq!(own["signInAudience"], "AzureADMultipleOrgs");
    assert_graph_error(
        p.sim
            .get(&late, &format!("/applications(appId='{client}')"))
            .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;

    // v2 with the Graph `.default` scope: the v2 parameters, scope echoed.
    let wide = demo_tenant("wideworldimporters");
    let response = p
        .consent(
            &format!("/{}/v2.0/adminconsent", wide.id),
            &[
                ("client_id", &client),
                ("scope", "https://graph.microsoft.com/.default"),
                ("redirect_uri", CALLBACK),
                ("state", "v2"),
            ],
        )
        .await;
    assert_eq!(response.status(), 302);
    let (_, query) = location_query(&response);
    let keys: Vec<&str> = query.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["admin_consent", "tenant", "scope", "state"]);
    assert_eq!(query[2].1, "https://graph.microsoft.com/.default");
    assert_eq!(query[1].1, wide.id.to_string());
}

#[tokio::test]
async fn re_consent_after_new_permissions_keeps_old_roles_in_earlier_tokens() {
    let mut tenants = partner_demo().tenants;
    let margie = tenants
        .iter_mut()
        .find(|t| t.name == "margiestravel")
        .expect("margie");
    *margie = margie
        .clone()
        .without_permissions(&["Sites.Read.All", "AuditLog.Read.All"])
        .with_consent(ConsentSpec {
            choice: ConsentChoice::Accept,
            propagation_seconds: 1,
            service_principal_seconds: None,
        });
    let margie = margie.clone();
    let p = Partner::start(tenants).await;
    let before = p.token(&margie).await;
    assert!(!roles_of(&before).contains("Sites.Read.All"));
    let response = p
        .consent(
            &format!("/{}/adminconsent", margie.id),
            &[("client_id", &p.client_id()), ("redirect_uri", CALLBACK)],
        )
        .await;
    assert_eq!(response.status(), 302);
    // The existing principal keeps working, with the roles it had.
    let during = p.token(&margie).await;
    assert!(!roles_of(&during).contains("Sites.Read.All"));
    assert_eq!(claims(&during)["oid"], claims(&before)["oid"]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let after = p.token(&margie).await;
    assert_eq!(roles_of(&after), every_default());
    assert!(!roles_of(&before).contains("Sites.Read.All"));
}

#[tokio::test]
async fn a_declined_consent_redirects_with_access_denied_and_changes_nothing() {
    let p = Partner::demo().await;
    let alpine = demo_tenant("alpineskihouse");
    assert_eq!(
        p.control(
            reqwest::Method::PUT,
            "/_sim/tenants/alpineskihouse/consent",
            json!({"choice": "decline"})
        )
        .await,
        204
    );
    let response = p
        .consent(
            &format!("/{}/adminconsent", alpine.id),
            &[
                ("client_id", &p.client_id()),
                ("redirect_uri", CALLBACK),
                ("state", "abc"),
            ],
        )
        .await;
    assert_eq!(response.status(), 302);
    let raw = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        raw.contains("error_description=AADSTS65004%3A+User+declined"),
        "{raw}"
    );
    let (base, query) = location_query(&response);
    assert_eq!(base, CALLBACK);
    let map: HashMap<&str, &str> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let keys: Vec<&str> = query.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "error",
            "error_description",
            "error_uri",
            "admin_consent",
            "state"
        ]
    );
    assert_eq!(map["error"], "access_denied");
    assert!(
        map["error_description"]
            .starts_with("AADSTS65004: User declined to consent to access the app.\r\nTrace ID: ")
    );
    assert_eq!(
        map["error_uri"],
        "https://login.microsoftonline.com/error?code=65004"
    );
    assert_eq!(map["admin_consent"], "True");
    assert_eq!(map["state"], "abc");
    assert!(!map.contains_key("tenant"), "no tenant on errors");
    let (status, body) = p.sts_error(&alpine).await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (401, Some(7000229))
    );
}

#[tokio::test]
async fn consent_requests_entra_would_not_redirect_get_an_error_page() {
    let p = Partner::demo().await;
    let alpine = demo_tenant("alpineskihouse");
    let client = p.client_id();
    let path = format!("/{}/adminconsent", alpine.id);
    let page = |response: reqwest::Response| async move {
        assert_eq!(response.status(), 400);
        assert!(response.headers().get("location").is_none());
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap_or("")
                .starts_with("text/html")
        );
        response.text().await.expect("page")
    };
    let text = page(
        p.consent(
            &path,
            &[
                ("client_id", &client),
                ("redirect_uri", "https://evil.example/cb"),
            ],
        )
        .await,
    )
    .await;
    assert!(
        text.contains(&format!("AADSTS50011: The redirect URI 'https://evil.example/cb' specified in the request does not match the redirect URIs configured for the application '{client}'.")),
        "{text}"
    );
    let text = page(
        p.consent(
            &path,
            &[
                ("client_id", &uuid::Uuid::new_v4().to_string()),
                ("redirect_uri", CALLBACK),
            ],
        )
        .await,
    )
    .await;
    assert!(text.contains("AADSTS700016"), "{text}");
    let text = page(p.consent(&path, &[("redirect_uri", CALLBACK)]).await).await;
    assert!(text.contains("AADSTS900144"), "{text}");
    // Nothing was consented.
    let (status, _) = p.sts_error(&alpine).await;
    assert_eq!(status, 401);
    // Extra path segments below a registered URI are accepted.
    let response = p
        .consent(
            &path,
            &[
                ("client_id", &client),
                ("redirect_uri", &format!("{CALLBACK}/more")),
            ],
        )
        .await;
    assert_eq!(response.status(), 302);
    // A redirect URI registered later (the service's real port) is accepted.
    let late = "http://127.0.0.1:40123/consent/callback";
    assert_eq!(
        p.control(
            reqwest::Method::PUT,
            &format!("/_sim/tenants/adatum/applications/{client}/redirectUris"),
            json!({"redirectUris": [late]})
        )
        .await,
        204
    );
    let response = p
        .consent(&path, &[("client_id", &client), ("redirect_uri", late)])
        .await;
    assert_eq!(response.status(), 302);
}

#[tokio::test]
async fn gdap_lists_page_at_300_with_microsofts_shapes() {
    let scenario = partner_at_scale(650, 1);
    let p = Partner::start(scenario.tenants.clone()).await;
    let token = p.token(&p.partner).await;

    let first: Value = p
        .sim
        .get(&token, "/tenantRelationships/delegatedAdminRelationships")
        .await
        .json()
        .await
        .expect("json");
    assert!(
        first["@odata.context"].as_str().is_some_and(
            |c| c.ends_with("/v1.0/tenantRelationships/$metadata#delegatedAdminRelationships")
        ),
        "{}",
        first["@odata.context"]
    );
    assert_eq!(first["value"].as_array().map(Vec::len), Some(300));
    let item = &first["value"][0];
    assert_eq!(
        item["@odata.type"],
        "#microsoft.graph.delegatedAdminRelationship"
    );
    assert!(
        item["@odata.etag"]
            .as_str()
            .is_some_and(|e| e.starts_with("W/\""))
    );
    let id = item["id"].as_str().expect("id");
    assert_eq!(id.len(), 73, "two GUIDs joined by '-': {id}");
    assert_eq!(item["status"], "active");
    assert_eq!(item["duration"], "P730D");
    assert_eq!(item["autoExtendDuration"], "PT0S");
    assert_eq!(
        item["customer"]["tenantId"],
        scenario.tenants[1].id.to_string()
    );
    assert_eq!(item["customer"]["displayName"], "Customer 0000");
    let role_ids: Vec<&str> = item["accessDetails"]["unifiedRoles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(|r| r["roleDefinitionId"].as_str())
        .collect();
    assert!(role_ids.contains(&roles::GLOBAL_ADMINISTRATOR));
    assert!(role_ids.contains(&roles::PRIVILEGED_ROLE_ADMINISTRATOR));
    for field in [
        "createdDateTime",
        "lastModifiedDateTime",
        "activatedDateTime",
        "endDateTime",
    ] {
        assert!(
            item[field].as_str().is_some_and(|t| t.ends_with('Z')),
            "{field}: {item}"
        );
    }

    // Following nextLink reaches every relationship once; $top above 300 is capped.
    let mut seen = BTreeSet::new();
    let mut url = Some(
        p.sim
            .url("/v1.0/tenantRelationships/delegatedAdminRelationships?$top=500"),
    );
    let mut pages = 0;
    while let Some(next) = url {
        let page: Value = p
            .sim
            .get_url(&token, &next)
            .await
            .json()
            .await
            .expect("json");
        let items = page["value"].as_array().expect("value");
        assert!(items.len() <= 300);
        seen.extend(
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned)),
        );
        url = page["@odata.nextLink"].as_str().map(str::to_owned);
        pages += 1;
    }
    assert_eq!((seen.len(), pages), (650, 3));
    let small: Value = p
        .sim
        .get(
            &token,
            "/tenantRelationships/delegatedAdminRelationships?$top=100",
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(small["value"].as_array().map(Vec::len), Some(100));
    assert!(small["@odata.nextLink"].is_string());

    // Filters as production code writes them.
    let customer = scenario.tenants[7].id;
    let filtered: Value = p
        .sim
        .get(
            &token,
            &format!("/tenantRelationships/delegatedAdminRelationships?$filter=(status eq 'active') AND (customer/tenantId eq '{customer}')&$select=customer,autoExtendDuration,endDateTime"),
        )
        .await
        .json()
        .await
        .expect("json");
    let items = filtered["value"].as_array().expect("value");
    assert_eq!(items.len(), 1);
    assert!(
        items[0].get("status").is_none(),
        "$select applies: {}",
        items[0]
    );
    assert_eq!(items[0]["customer"]["tenantId"], customer.to_string());

    // Customers: derived, same paging.
    let customers: Value = p
        .sim
        .get(&token, "/tenantRelationships/delegatedAdminCustomers")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(customers["value"].as_array().map(Vec::len), Some(300));
    assert!(customers["@odata.nextLink"].is_string());
    let c = &customers["value"][0];
    assert_eq!(c["@odata.type"], "#microsoft.graph.delegatedAdminCustomer");
    assert!(c["@odata.etag"].is_string());
    assert_eq!(c["id"], c["tenantId"]);
    assert_eq!(c["displayName"], "Customer 0000");
}

#[tokio::test]
async fn gdap_statuses_customers_and_access_assignments() {
    let demo = partner_demo();
    let fourth = demo_tenant("fourthcoffee");
    let alpine = demo_tenant("alpineskihouse");
    let margie = demo_tenant("margiestravel");
    let mut tenants = demo.tenants.clone();
    let partner = tenants[0].clone();
    let mut relationships = partner.gdap_relationships.clone();
    // Alpine: approval pending; Margie's: ended (activated 800 days ago for 730).
    relationships[1] = relationships[1]
        .clone()
        .with_status(RelationshipStatus::ApprovalPending);
    relationships[4] = RelationshipSpec::active(&margie, &[roles::GLOBAL_ADMINISTRATOR], 800, 730);
    tenants[0].gdap_relationships = relationships;
    let p = Partner::start(tenants).await;
    let token = p.token(&p.partner).await;
    let all: Value = p
        .sim
        .get(&token, "/tenantRelationships/delegatedAdminRelationships")
        .await
        .json()
        .await
        .expect("json");
    let by_customer = |tenant: &TenantSpec| {
        all["value"]
            .as_array()
            .expect("value")
            .iter()
            .find(|r| r["customer"]["tenantId"] == tenant.id.to_string())
            .cloned()
            .expect("relationship")
    };
    let pending = by_customer(&alpine);
    assert_eq!(pending["status"], "approvalPending");
    assert!(pending["activatedDateTime"].is_null() && pending["endDateTime"].is_null());
    assert_eq!(by_customer(&margie)["status"], "expired");
    let lamna = by_customer(&demo_tenant("lamna"));
    let end = chrono::DateTime::parse_from_rfc3339(lamna["endDateTime"].as_str().expect("end"))
        .expect("time");
    let days = (end.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((9..=10).contains(&days), "lamna ends in 10 days: {days}");
    let wide = by_customer(&demo_tenant("wideworldimporters"));
    let wide_roles: Vec<&str> = wide["accessDetails"]["unifiedRoles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(|r| r["roleDefinitionId"].as_str())
        .collect();
    assert!(!wide_roles.contains(&roles::GLOBAL_ADMINISTRATOR));
    assert!(!wide_roles.contains(&roles::PRIVILEGED_ROLE_ADMINISTRATOR));

    // Customers: only those with an active relationship.
    let customers: Value = p
        .sim
        .get(&token, "/tenantRelationships/delegatedAdminCustomers")
        .await
        .json()
        .await
        .expect("json");
    let ids: BTreeSet<String> = customers["value"]
        .as_array()
        .expect("value")
        .iter()
        .filter_map(|c| c["tenantId"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 4);
    assert!(ids.contains(&fourth.id.to_string()));
    assert!(!ids.contains(&alpine.id.to_string()) && !ids.contains(&margie.id.to_string()));

    // One relationship and its access assignment.
    let id = by_customer(&fourth)["id"].as_str().expect("id").to_owned();
    let one: Value = p
        .sim
        .get(
            &token,
            &format!("/tenantRelationships/delegatedAdminRelationships/{id}"),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(one["id"], id);
    let assignments: Value = p
        .sim
        .get(
            &token,
            &format!("/tenantRelationships/delegatedAdminRelationships/{id}/accessAssignments"),
        )
        .await
        .json()
        .await
        .expect("json");
    let a = &assignments["value"][0];
    assert_eq!(
        a["@odata.type"],
        "#microsoft.graph.delegatedAdminAccessAssignment"
    );
    assert_eq!(a["status"], "active");
    assert_eq!(a["accessContainer"]["accessContainerType"], "securityGroup");
    assert_graph_error(
        p.sim
            .get(
                &token,
                "/tenantRelationships/delegatedAdminRelationships/nope",
            )
            .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;

    // The control API ends a relationship: the customer disappears.
    let mut ended = RelationshipSpec::active(&fourth, &[roles::GLOBAL_ADMINISTRATOR], 10, 730);
    ended.status = RelationshipStatus::Terminated;
    let body = serde_json::to_value(&ended).expect("json");
    assert_eq!(
        p.control(
            reqwest::Method::PUT,
            &format!(
                "/_sim/tenants/adatum/delegatedAdminRelationships/{}",
                ended.id
            ),
            body
        )
        .await,
        204
    );
    let customers: Value = p
        .sim
        .get(
            &token,
            &format!(
                "/tenantRelationships/delegatedAdminCustomers?$filter=tenantId eq '{}'",
                fourth.id
            ),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(customers["value"], json!([]));
}

#[tokio::test]
async fn gdap_apis_need_delegated_admin_relationship_read_in_the_partner_tenant() {
    let mut tenants = partner_demo().tenants;
    tenants[0] = tenants[0]
        .clone()
        .without_permissions(&["DelegatedAdminRelationship.Read.All"]);
    let p = Partner::start(tenants).await;
    let token = p.token(&p.partner).await;
    for path in [
        "/tenantRelationships/delegatedAdminRelationships",
        "/tenantRelationships/delegatedAdminCustomers",
    ] {
        assert_graph_error(
            p.sim.get(&token, path).await,
            403,
            "Authorization_RequestDenied",
        )
        .await;
    }
    // A customer token holds no GDAP permission either.
    let customer = p.token(&demo_tenant("fourthcoffee")).await;
    assert_graph_error(
        p.sim
            .get(
                &customer,
                "/tenantRelationships/delegatedAdminRelationships",
            )
            .await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    // The partner app is multi-tenant and declares what customers consent to.
    let app: Value = p
        .sim
        .get(&token, &format!("/applications(appId='{}')", p.client_id()))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(app["signInAudience"], "AzureADMultipleOrgs");
    assert_eq!(
        app["requiredResourceAccess"][0]["resourceAccess"]
            .as_array()
            .map(Vec::len),
        Some(DEFAULT_REQUIRED.len())
    );
    assert_eq!(
        app["requiredResourceAccess"][0]["resourceAccess"][0]["type"],
        "Role"
    );
    assert_eq!(app["web"]["redirectUris"][0], CALLBACK);
}

/// Template ids of the roles the validator reads for a principal.
async fn role_definitions(p: &Partner, token: &str) -> BTreeSet<String> {
    let sp = claims(token)["oid"].as_str().expect("oid").to_owned();
    let body: Value = p
        .sim
        .get(
            token,
            &format!("/roleManagement/directory/roleAssignments?$filter=principalId eq '{sp}'"),
        )
        .await
        .json()
        .await
        .expect("json");
    body["value"]
        .as_array()
        .expect("value")
        .iter()
        .filter_map(|r| r["roleDefinitionId"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn directory_roles_of_the_partner_app_per_customer() {
    let p = Partner::demo().await;
    let fourth = p.token(&demo_tenant("fourthcoffee")).await;
    let full: BTreeSet<String> = [
        roles::USER_ADMINISTRATOR,
        roles::EXCHANGE_ADMINISTRATOR,
        roles::PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
    ]
    .iter()
    .map(|r| (*r).to_owned())
    .collect();
    assert_eq!(role_definitions(&p, &fourth).await, full);
    let activated: Value = p
        .sim
        .get(&fourth, "/directoryRoles")
        .await
        .json()
        .await
        .expect("json");
    assert!(
        activated["value"]
            .as_array()
            .expect("value")
            .iter()
            .any(|r| r["displayName"] == "Exchange Administrator"
                && r["roleTemplateId"] == roles::EXCHANGE_ADMINISTRATOR)
    );
    let members: Value = p
        .sim
        .get(
            &fourth,
            &format!(
                "/directoryRoles(roleTemplateId='{}')/members",
                roles::EXCHANGE_ADMINISTRATOR
            ),
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(
        members["value"]
            .as_array()
            .expect("value")
            .iter()
            .any(|m| m["appId"] == p.client_id())
    );

    let margie_spec = demo_tenant("margiestravel");
    let margie = p.token(&margie_spec).await;
    let held = role_definitions(&p, &margie).await;
    assert!(!held.contains(roles::EXCHANGE_ADMINISTRATOR));
    assert_eq!(held.len(), 2);

    let path = format!(
        "/_sim/tenants/{}/servicePrincipals/{}/directoryRoles",
        margie_spec.id,
        p.client_id()
    );
    assert_eq!(
        p.control(
            reqwest::Method::PUT,
            &path,
            json!({"roles": ["Exchange Administrator", roles::USER_ADMINISTRATOR]})
        )
        .await,
        204
    );
    let held = role_definitions(&p, &margie).await;
    assert!(
        held.contains(roles::EXCHANGE_ADMINISTRATOR) && held.contains(roles::USER_ADMINISTRATOR)
    );
    assert_eq!(held.len(), 2);
    assert_eq!(
        p.control(
            reqwest::Method::PUT,
            &path,
            json!({"roles": ["Chief Coffee Officer"]})
        )
        .await,
        422
    );
    // No principal (not consented): 404.
    let alpine = demo_tenant("alpineskihouse");
    assert_eq!(
        p.control(
            reqwest::Method::PUT,
            &format!(
                "/_sim/tenants/{}/servicePrincipals/{}/directoryRoles",
                alpine.id,
                p.client_id()
            ),
            json!({"roles": []})
        )
        .await,
        404
    );
}

#[tokio::test]
async fn revoking_consent_removes_the_service_principal() {
    let p = Partner::demo().await;
    let fourth = demo_tenant("fourthcoffee");
    let before = p.token(&fourth).await;
    assert_eq!(
        p.control(
            reqwest::Method::DELETE,
            &format!(
                "/_sim/tenants/fourthcoffee/servicePrincipals/{}",
                p.client_id()
            ),
            json!({})
        )
        .await,
        204
    );
    let (status, body) = p.sts_error(&fourth).await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (401, Some(7000229))
    );
    // A token minted before stays valid until it expires.
    assert_eq!(p.sim.get(&before, "/users?$top=1").await.status(), 200);
}

#[tokio::test]
async fn the_preset_has_six_customers_in_their_states() {
    let demo = partner_demo();
    assert_eq!(demo.tenants.len(), 7);
    assert_eq!(demo.tenants[0].gdap_relationships.len(), 6);
    let p = Partner::demo().await;
    // Propagating: the principal exists, its roles arrive in two minutes.
    let proseware = p.token(&demo_tenant("proseware")).await;
    assert!(roles_of(&proseware).is_empty());
    for name in ["alpineskihouse", "wideworldimporters"] {
        let (status, _) = p.sts_error(&demo_tenant(name)).await;
        assert_eq!(status, 401, "{name}");
    }
    for name in ["fourthcoffee", "margiestravel", "lamna"] {
        assert_eq!(
            roles_of(&p.token(&demo_tenant(name)).await),
            every_default(),
            "{name}"
        );
    }
    let listed = tenantry_graph_sim::credentials(&demo);
    assert_eq!(listed["partners"][0]["client_id"], p.client_id());
    assert_eq!(
        listed["partners"][0]["customers"].as_array().map(Vec::len),
        Some(6)
    );
    assert_eq!(
        tenantry_graph_sim::Scenario::by_name("partner").map(|s| s.tenants.len()),
        Some(7)
    );
}
