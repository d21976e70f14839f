//! Partner mode against the simulator over real HTTP: the partner app proven at home and each
//! refusal, GDAP lists over several pages, validation inside customers (never reading the
//! application object there), and the admin-consent link through `/adminconsent`.

use std::collections::BTreeSet;

use tenantry_domain::capabilities::roles;
use tenantry_domain::permissions::DEFAULT_REQUIRED;
use tenantry_graph::partner::{self, GDAP_READ, PartnerCheckError};
use tenantry_graph::{
    CredentialReason, Credentials, GraphConfig, GraphHttp, ValidationError, Validator,
};
use tenantry_graph_sim::scenario::partner::{partner_at_scale, roles as sim_roles};
use tenantry_graph_sim::scenario::{RelationshipStatus, SignInAudience, partner_demo};
use tenantry_graph_sim::{GraphSim, Scenario, TenantSpec};

const CALLBACK: &str = "http://localhost:8080/consent/callback";
const RELATIONSHIPS: &str = "/v1.0/tenantRelationships/delegatedAdminRelationships";
const CUSTOMERS: &str = "/v1.0/tenantRelationships/delegatedAdminCustomers";

struct Fixture {
    sim: GraphSim,
    validator: Validator,
    scenario: Scenario,
}

impl Fixture {
    async fn start(scenario: Scenario) -> Self {
        let sim = GraphSim::start(scenario.clone()).await.expect("simulator");
        let config =
            GraphConfig::new(&sim.base_url(), &sim.base_url()).with_exchange_url(&sim.base_url());
        let validator = Validator::new(GraphHttp::new(config).expect("client"));
        Self {
            sim,
            validator,
            scenario,
        }
    }

    async fn demo() -> Self {
        Self::start(partner_demo()).await
    }

    fn tenant(&self, name: &str) -> &TenantSpec {
        self.scenario
            .tenants
            .iter()
            .find(|t| t.name == name)
            .expect("tenant in the scenario")
    }

    /// The partner (first tenant).
    fn partner(&self) -> &TenantSpec {
        &self.scenario.tenants[0]
    }

    /// The partner app's own credentials, aimed at tenant `name`.
    fn partner_credentials_in(&self, name: &str) -> Credentials {
        let partner = self.partner();
        Credentials::preflight(
            &self.tenant(name).id.to_string(),
            &partner.app().client_id.to_string(),
            partner.secret_value(),
        )
        .expect("preflight")
    }

    /// Tenant `name`'s own app and secret.
    fn own_credentials(&self, name: &str) -> Credentials {
        let t = self.tenant(name);
        Credentials::preflight(
            &t.id.to_string(),
            &t.app().client_id.to_string(),
            t.secret_value(),
        )
        .expect("preflight")
    }

    async fn partner_token(&self) -> secrecy::SecretString {
        let partner = self.partner();
        let credential = tenantry_domain::AppCredential::Secret(secrecy::SecretString::from(
            partner.secret_value().to_owned(),
        ));
        tenantry_graph::token::request_token(
            self.validator.http(),
            &partner.id.to_string(),
            &partner.app().client_id.to_string(),
            &credential,
        )
        .await
        .expect("partner token")
        .0
    }

    /// GET requests to `path` (query ignored) since the log was last cleared.
    fn pages_of(&self, path: &str) -> Vec<String> {
        self.sim
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.path.split('?').next() == Some(path))
            .map(|r| r.path)
            .collect()
    }
}

/// What the demo partner app declares: the default Graph set and Exchange.ManageAsApp.
fn every_default() -> BTreeSet<String> {
    DEFAULT_REQUIRED
        .iter()
        .map(|p| (*p).to_owned())
        .chain(std::iter::once("Exchange.ManageAsApp".to_owned()))
        .collect()
}

#[tokio::test]
async fn the_partner_app_is_proven_in_its_own_tenant() {
    let f = Fixture::demo().await;
    let adatum = f.tenant("adatum");
    let app = f
        .validator
        .check_partner(&f.own_credentials("adatum"), &DEFAULT_REQUIRED)
        .await
        .expect("a partner app");
    assert_eq!(app.tenant_id, adatum.id);
    assert_eq!(app.display_name.as_deref(), Some("Tenantry Partner"));
    assert_eq!(app.sign_in_audience, "AzureADMultipleOrgs");
    assert_eq!(app.declared_permissions, every_default());
    assert_eq!(
        app.redirect_uris,
        [
            "http://localhost:8080/consent/callback",
            "http://127.0.0.1:8080/consent/callback"
        ]
    );
    let secret = app.secret.as_ref().expect("secret expiry");
    assert_eq!(secret.hint.as_deref(), Some(&adatum.secret_value()[..3]));
    assert_eq!(
        secret.key_id.as_deref(),
        Some(adatum.app().secrets[0].key_id.to_string().as_str())
    );
    assert!(secret.days_left.is_some_and(|d| d > 30));
    assert!(app.certificate.is_none());
    assert!(app.warnings.is_empty(), "{:?}", app.warnings);
    // One token (never cached), one read of the registration.
    let paths: Vec<String> = f.sim.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(paths[1].starts_with(&format!(
        "/v1.0/applications(appId='{}')?$select=",
        adatum.app().client_id
    )));
    assert!(paths.iter().all(|p| !p.contains(adatum.secret_value())));
}

#[tokio::test]
async fn each_partner_refusal_in_its_order() {
    let mut scenario = partner_demo();
    // A partner-shaped app that is single-tenant, one without GDAP read, and an ordinary
    // single-tenant customer app.
    let mut solo = TenantSpec::partner("solo", "Solo Partners", 3);
    solo.apps[0].sign_in_audience = SignInAudience::AzureADMyOrg;
    scenario.tenants.push(solo);
    scenario.tenants.push(
        TenantSpec::partner("nogdap", "No GDAP Partners", 3).without_permissions(&[GDAP_READ]),
    );
    scenario
        .tenants
        .push(TenantSpec::healthy("contoso", "Contoso Ltd", 3));
    let f = Fixture::start(scenario).await;
    let check = |credentials: Credentials, required: &'static [&'static str]| {
        let validator = f.validator.clone();
        async move { validator.check_partner(&credentials, required).await }
    };

    // Credentials first: a wrong secret.
    let adatum = f.tenant("adatum");
    let wrong = Credentials::preflight(
        &adatum.id.to_string(),
        &adatum.app().client_id.to_string(),
        "wrong-secret-value",
    )
    .expect("preflight");
    match check(wrong, &[]).await {
        Err(PartnerCheckError::Credentials(ValidationError::InvalidCredentials {
            reason: CredentialReason::SecretInvalid,
            aadsts: Some(7000215),
        })) => {}
        other => panic!("expected secret_invalid, got {other:?}"),
    }
    // The partner's credentials in a customer: a token is issued there, but the tenant has
    // no registration of the app.
    match check(f.partner_credentials_in("fourthcoffee"), &[]).await {
        Err(PartnerCheckError::Credentials(ValidationError::InvalidCredentials {
            reason: CredentialReason::AppNotFoundInTenant,
            aadsts: None,
        })) => {}
        other => panic!("expected app_not_found_in_tenant, got {other:?}"),
    }

    // Single-tenant, although GDAP read is granted (so the audience is checked first).
    for name in ["solo", "contoso"] {
        match check(f.own_credentials(name), &[]).await {
            Err(PartnerCheckError::NotMultiTenant { sign_in_audience }) => {
                assert_eq!(sign_in_audience, "AzureADMyOrg", "{name}")
            }
            other => panic!("{name}: expected NotMultiTenant, got {other:?}"),
        }
    }

    // Multi-tenant, but DelegatedAdminRelationship.Read.All is not granted at home; and
    // that comes before what the app declares.
    match check(
        f.own_credentials("nogdap"),
        &["IdentityRiskyUser.ReadWrite.All"],
    )
    .await
    {
        Err(PartnerCheckError::GdapNotGranted) => {}
        other => panic!("expected GdapNotGranted, got {other:?}"),
    }

    // A permission the customers could not consent to: not in requiredResourceAccess.
    match check(
        f.own_credentials("adatum"),
        &[
            "User.ReadWrite.All",
            "IdentityRiskyUser.ReadWrite.All",
            "IdentityRiskyUser.ReadWrite.All",
        ],
    )
    .await
    {
        Err(PartnerCheckError::NotDeclared { missing }) => {
            assert_eq!(missing, ["IdentityRiskyUser.ReadWrite.All"])
        }
        other => panic!("expected NotDeclared, got {other:?}"),
    }
}

#[tokio::test]
async fn gdap_lists_follow_every_page_of_300() {
    let f = Fixture::start(partner_at_scale(650, 0)).await;
    let token = f.partner_token().await;
    let http = f.validator.http();
    let customers_expected: BTreeSet<uuid::Uuid> =
        f.scenario.tenants[1..].iter().map(|t| t.id).collect();
    assert_eq!(customers_expected.len(), 650);

    f.sim.state().clear_requests();
    let relationships = partner::relationships(http, &token).await.expect("listed");
    assert_eq!(relationships.len(), 650);
    let ids: BTreeSet<&str> = relationships.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 650, "each relationship once");
    let of: BTreeSet<uuid::Uuid> = relationships.iter().map(|r| r.customer_tenant_id).collect();
    assert_eq!(of, customers_expected);
    let pages = f.pages_of(RELATIONSHIPS);
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(pages[0].ends_with("?$top=300"), "{}", pages[0]);
    assert!(relationships.iter().all(|r| {
        r.status == "active"
            && r.roles
                .contains(&sim_roles::GLOBAL_ADMINISTRATOR.to_owned())
    }));

    f.sim.state().clear_requests();
    let customers = partner::customers(http, &token).await.expect("listed");
    assert_eq!(customers.len(), 650);
    let tenants: BTreeSet<uuid::Uuid> = customers.iter().map(|c| c.tenant_id).collect();
    assert_eq!(tenants, customers_expected, "each customer once");
    assert_eq!(f.pages_of(CUSTOMERS).len(), 3);
    let first = &f.scenario.tenants[1];
    assert!(
        customers
            .iter()
            .any(|c| c.tenant_id == first.id && c.display_name == first.display_name)
    );
}

#[tokio::test]
async fn relationships_carry_status_roles_and_end_dates() {
    let mut scenario = partner_demo();
    // Alpine's relationship still waiting for the customer's approval.
    let alpine_id = scenario.tenants[0]
        .gdap_relationships
        .iter()
        .position(|r| r.customer_display_name == "Alpine Ski House")
        .expect("alpine's relationship");
    let pending = scenario.tenants[0].gdap_relationships[alpine_id]
        .clone()
        .with_status(RelationshipStatus::ApprovalPending);
    scenario.tenants[0].gdap_relationships[alpine_id] = pending;
    let f = Fixture::start(scenario).await;
    let token = f.partner_token().await;
    let relationships = partner::relationships(f.validator.http(), &token)
        .await
        .expect("listed");
    assert_eq!(relationships.len(), 6);
    let of = |name: &str| {
        let id = f.tenant(name).id;
        relationships
            .iter()
            .find(|r| r.customer_tenant_id == id)
            .cloned()
            .expect("relationship")
    };

    let lamna = of("lamna");
    assert_eq!(lamna.status, "active");
    assert_eq!(lamna.customer_display_name, "Lamna Healthcare");
    let end = lamna.end_date_time.expect("an end date");
    let days = (end - chrono::Utc::now()).num_days();
    assert!((9..=10).contains(&days), "lamna ends in 10 days: {days}");
    let activated = lamna.activated_at.expect("activated");
    assert_eq!((end - activated).num_days(), 730);
    assert_eq!(lamna.auto_extend_duration.as_deref(), Some("PT0S"));
    assert!(
        lamna
            .roles
            .contains(&sim_roles::GLOBAL_ADMINISTRATOR.to_owned())
    );
    assert!(lamna.roles.iter().all(|r| *r == r.to_ascii_lowercase()));

    let wide = of("wideworldimporters");
    assert_eq!(
        wide.roles,
        [
            sim_roles::USER_ADMINISTRATOR,
            sim_roles::EXCHANGE_ADMINISTRATOR
        ],
        "GDAP without Global or Privileged Role Administrator"
    );

    let alpine = of("alpineskihouse");
    assert_eq!(alpine.status, "approvalPending");
    assert!(alpine.activated_at.is_none() && alpine.end_date_time.is_none());

    // Customers: those with an active relationship.
    let customers = partner::customers(f.validator.http(), &token)
        .await
        .expect("listed");
    assert_eq!(customers.len(), 5);
    assert!(
        customers
            .iter()
            .all(|c| c.tenant_id != f.tenant("alpineskihouse").id)
    );
}

#[tokio::test]
async fn customers_are_validated_without_the_application_object() {
    let f = Fixture::demo().await;
    f.sim.state().clear_requests();

    // Complete: every permission, its directory roles, no credential expiry.
    let fourth = f.tenant("fourthcoffee");
    let report = f
        .validator
        .validate_customer(&f.partner_credentials_in("fourthcoffee"), None)
        .await
        .expect("valid");
    assert_eq!(report.tenant_id, fourth.id);
    assert_eq!(report.tenant_display_name.as_deref(), Some("Fourth Coffee"));
    assert!(report.permissions.missing.is_empty());
    let graph_defaults: BTreeSet<String> =
        DEFAULT_REQUIRED.iter().map(|p| (*p).to_owned()).collect();
    assert_eq!(report.permissions.granted, graph_defaults);
    for role in [
        roles::USER_ADMINISTRATOR,
        roles::PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
        sim_roles::EXCHANGE_ADMINISTRATOR,
    ] {
        assert!(report.directory_roles.contains(role), "{role}");
    }
    // Exchange Administrator is named from Graph's activated roles (not a role the
    // domain's capabilities know).
    assert!(
        report
            .directory_roles
            .0
            .iter()
            .any(|r| r.id == sim_roles::EXCHANGE_ADMINISTRATOR
                && r.name.as_deref() == Some("Exchange Administrator"))
    );
    assert!(report.directory_role_status.missing.is_empty());
    assert!(report.secret.is_none() && report.certificate.is_none());
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(
        report.status(),
        tenantry_domain::OrganizationStatus::Connected
    );

    // Exchange Administrator missing: the same report, without that role.
    let margie = f
        .validator
        .validate_customer(&f.partner_credentials_in("margiestravel"), None)
        .await
        .expect("valid");
    assert!(
        !margie
            .directory_roles
            .contains(sim_roles::EXCHANGE_ADMINISTRATOR)
    );
    assert!(margie.directory_roles.contains(roles::USER_ADMINISTRATOR));
    assert!(margie.permissions.missing.is_empty());

    // Not consented: AADSTS7000229.
    assert!(matches!(
        f.validator
            .validate_customer(&f.partner_credentials_in("alpineskihouse"), None)
            .await,
        Err(ValidationError::ServicePrincipalNotFound)
    ));

    // Inside customers, /applications was never asked for, while the customers' own
    // principals were read there.
    let requests = f.sim.requests();
    assert!(
        requests.iter().all(|r| !r.path.contains("/applications")),
        "{:?}",
        requests
            .iter()
            .filter(|r| r.path.contains("/applications"))
            .collect::<Vec<_>>()
    );
    for tenant in [fourth.id, f.tenant("margiestravel").id] {
        assert!(requests.iter().any(|r| {
            r.tenant.as_deref() == Some(tenant.to_string().as_str())
                && r.path.starts_with("/v1.0/servicePrincipals/")
        }));
    }

    // `validate` would read it there, and answer for a 404 with a warning.
    f.sim.state().clear_requests();
    let plain = f
        .validator
        .validate(&f.partner_credentials_in("fourthcoffee"), None)
        .await
        .expect("valid");
    assert!(!plain.warnings.is_empty());
    assert!(
        f.sim
            .requests()
            .iter()
            .any(|r| r.path.contains("/applications(") && r.status == 404)
    );
}

#[tokio::test]
async fn in_customers_both_not_consented_codes_mean_service_principal_not_found() {
    let f = Fixture::demo().await;
    let fourth = f.tenant("fourthcoffee");
    // AADSTS700016 (an app id the directory cannot resolve): not consented in a customer,
    // while `validate` calls it an app missing from the tenant.
    let stranger = Credentials::preflight(
        &fourth.id.to_string(),
        &uuid::Uuid::new_v4().to_string(),
        "some-secret-value",
    )
    .expect("preflight");
    assert!(matches!(
        f.validator.validate_customer(&stranger, None).await,
        Err(ValidationError::ServicePrincipalNotFound)
    ));
    assert!(matches!(
        f.validator.validate(&stranger, None).await,
        Err(ValidationError::InvalidCredentials {
            reason: CredentialReason::AppNotFoundInTenant,
            aadsts: Some(700016)
        })
    ));
    // The partner's secret is still checked first: a wrong one is a wrong one.
    let partner = f.partner();
    let wrong = Credentials::preflight(
        &fourth.id.to_string(),
        &partner.app().client_id.to_string(),
        "wrong-secret-value",
    )
    .expect("preflight");
    assert!(matches!(
        f.validator.validate_customer(&wrong, None).await,
        Err(ValidationError::InvalidCredentials {
            reason: CredentialReason::SecretInvalid,
            ..
        })
    ));
}

#[tokio::test]
async fn the_admin_consent_link_round_trips_through_adminconsent() {
    let f = Fixture::demo().await;
    let alpine = f.tenant("alpineskihouse");
    let client = f.partner().app().client_id;
    let state = "s+1=2 x/y";
    let url = partner::admin_consent_url(
        f.validator.http().config(),
        alpine.id,
        client,
        CALLBACK,
        state,
    );
    assert!(url.starts_with(&format!("{}/{}/adminconsent?", f.sim.base_url(), alpine.id)));
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = browser.get(&url).send().await.expect("sent");
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii location")
        .to_owned();
    let back = reqwest::Url::parse(&location).expect("absolute location");
    assert_eq!(
        format!("{}://{}{}", back.scheme(), back.authority(), back.path()),
        CALLBACK
    );
    let query: Vec<(String, String)> = back
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let value = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(value("admin_consent"), Some("True"));
    assert_eq!(value("tenant"), Some(alpine.id.to_string().as_str()));
    assert_eq!(value("state"), Some(state));
    assert!(value("error").is_none());
}

/// One partner credential serves every customer: 50 jobs asking at once for one
/// customer's token cost Entra one request (single flight per customer tenant), and a
/// second customer gets a token of its own.
#[tokio::test]
async fn fifty_concurrent_jobs_for_one_customer_make_one_token_request() {
    let fixture = Fixture::demo().await;
    let partner = fixture.partner();
    let http = GraphHttp::new(
        GraphConfig::new(&fixture.sim.base_url(), &fixture.sim.base_url())
            .with_exchange_url(&fixture.sim.base_url()),
    )
    .expect("client");
    let access = tenantry_graph::GraphAccess::new(http);
    let credential = tenantry_domain::AppCredential::Secret(secrecy::SecretString::from(
        partner.secret_value().to_owned(),
    ));
    let customer = fixture.tenant("fourthcoffee").id;
    let client = partner.app().client_id;
    let mut jobs = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (access, credential) = (access.clone(), credential.clone());
        jobs.spawn(async move {
            access
                .organization_token(customer, client, &credential)
                .await
                .map(|t| secrecy::ExposeSecret::expose_secret(&t).to_owned())
        });
    }
    let mut tokens = BTreeSet::new();
    while let Some(joined) = jobs.join_next().await {
        tokens.insert(joined.expect("joined").expect("a token"));
    }
    assert_eq!(tokens.len(), 1, "every job got the same token");
    let other = fixture.tenant("lamna").id;
    access
        .organization_token(other, client, &credential)
        .await
        .expect("another customer's token");
    let token_requests = |tenant: uuid::Uuid| {
        fixture
            .sim
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == format!("/{tenant}/oauth2/v2.0/token"))
            .count()
    };
    assert_eq!(token_requests(customer), 1, "one request for 50 jobs");
    assert_eq!(token_requests(other), 1, "one token per customer tenant");
}
