//! The validator against the simulator over real HTTP: one test per outcome.

use std::time::Duration;

use tenantry_domain::capabilities::{Capability, roles};
use tenantry_graph::{
    CredentialReason, Credentials, GraphConfig, GraphHttp, TokenCache, ValidationError, Validator,
};
use tenantry_graph_sim::scenario::demo;
use tenantry_graph_sim::{Faults, GraphSim, Scenario, TenantSpec};

struct Fixture {
    sim: GraphSim,
    validator: Validator,
    scenario: Scenario,
}

async fn fixture() -> Fixture {
    fixture_with(Duration::from_secs(15)).await
}

async fn fixture_with(timeout: Duration) -> Fixture {
    // The demo without its 50,000-user tenant, which these tests do not need.
    let mut scenario = demo();
    scenario.tenants.retain(|t| t.name != "litware");
    let sim = GraphSim::start(scenario.clone()).await.expect("simulator");
    let mut config =
        GraphConfig::new(&sim.base_url(), &sim.base_url()).with_exchange_url(&sim.base_url());
    config.request_timeout = timeout;
    let validator = Validator::new(GraphHttp::new(config).expect("client"));
    Fixture {
        sim,
        validator,
        scenario,
    }
}

impl Fixture {
    fn tenant(&self, name: &str) -> &TenantSpec {
        self.scenario
            .tenants
            .iter()
            .find(|t| t.name == name)
            .expect("demo tenant")
    }

    fn credentials(&self, name: &str) -> Credentials {
        let t = self.tenant(name);
        Credentials::preflight(
            &t.id.to_string(),
            &t.app().client_id.to_string(),
            t.secret_value(),
        )
        .expect("preflight")
    }
}

fn reason(result: Result<tenantry_graph::ValidationReport, ValidationError>) -> CredentialReason {
    match result {
        Err(ValidationError::InvalidCredentials { reason, .. }) => reason,
        other => panic!("expected INVALID_CREDENTIALS, got {other:?}"),
    }
}

#[tokio::test]
async fn a_healthy_tenant_gets_a_full_report() {
    let f = fixture().await;
    let report = f
        .validator
        .validate(&f.credentials("contoso"), None)
        .await
        .expect("valid");
    assert_eq!(report.tenant_id, f.tenant("contoso").id);
    assert_eq!(report.tenant_display_name.as_deref(), Some("Contoso Ltd"));
    assert!(
        report
            .verified_domains
            .contains(&"contoso.onmicrosoft.com".to_owned())
    );
    assert_eq!(report.permissions.granted.len(), 27);
    assert!(report.permissions.missing.is_empty() && report.permissions.extra.is_empty());
    assert!(report.directory_roles.contains(roles::USER_ADMINISTRATOR));
    assert!(
        report
            .directory_role_status
            .granted
            .contains(roles::USER_ADMINISTRATOR)
    );
    assert!(report.directory_role_status.missing.is_empty());
    let status = |c: Capability| {
        report
            .capabilities
            .iter()
            .find(|s| s.capability == c)
            .expect("listed")
            .clone()
    };
    assert!(status(Capability::PasswordReset).available);
    assert!(
        !status(Capability::UnblockSignin).available,
        "Dex's list has no IdentityRiskyUser permission"
    );
    let secret = report.secret.as_ref().expect("secret expiry");
    assert_eq!(
        secret.hint.as_deref(),
        Some(&f.tenant("contoso").secret_value()[..3])
    );
    assert!(secret.days_left.is_some_and(|d| d > 30));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[tokio::test]
async fn a_verified_domain_names_the_tenant_too() {
    let f = fixture().await;
    let t = f.tenant("contoso");
    let credentials = Credentials::preflight(
        "Contoso.OnMicrosoft.com",
        &t.app().client_id.to_string(),
        t.secret_value(),
    )
    .expect("ok");
    let report = f
        .validator
        .validate(&credentials, None)
        .await
        .expect("valid");
    assert_eq!(report.tenant_id, t.id);
}

#[tokio::test]
async fn missing_permissions_are_listed_exactly_with_a_consent_link() {
    let f = fixture().await;
    match f.validator.validate(&f.credentials("fabrikam"), None).await {
        Err(ValidationError::MissingPermissions {
            missing,
            admin_consent_url,
            report,
        }) => {
            assert_eq!(
                missing,
                ["AuditLog.Read.All", "Reports.Read.All", "Sites.Read.All"]
            );
            let t = f.tenant("fabrikam");
            assert_eq!(
                admin_consent_url,
                format!(
                    "{}/{}/adminconsent?client_id={}",
                    f.sim.base_url(),
                    t.id,
                    t.app().client_id
                )
            );
            assert_eq!(report.permissions.granted.len(), 24);
        }
        other => panic!("expected MISSING_PERMISSIONS, got {other:?}"),
    }
    // Narrowed to what password resets need, the same tenant passes.
    let report = f
        .validator
        .validate(
            &f.credentials("fabrikam"),
            Some(&[Capability::PasswordReset]),
        )
        .await
        .expect("valid");
    assert!(
        report
            .permissions
            .extra
            .contains("AppCatalog.ReadWrite.All"),
        "granted but not required"
    );
}

#[tokio::test]
async fn each_refusal_maps_to_its_reason() {
    let f = fixture().await;
    let contoso = f.tenant("contoso");
    let (tenant, client) = (contoso.id.to_string(), contoso.app().client_id.to_string());
    let creds = |t: &str, c: &str, s: &str| Credentials::preflight(t, c, s).expect("preflight");
    assert_eq!(
        reason(
            f.validator
                .validate(&creds(&tenant, &client, "wrong-secret-value"), None)
                .await
        ),
        CredentialReason::SecretInvalid
    );
    assert_eq!(
        reason(
            f.validator
                .validate(&f.credentials("woodgrove"), None)
                .await
        ),
        CredentialReason::SecretExpired
    );
    let stranger = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        reason(
            f.validator
                .validate(&creds(&tenant, &stranger, "x"), None)
                .await
        ),
        CredentialReason::AppNotFoundInTenant
    );
    assert_eq!(
        reason(
            f.validator
                .validate(&creds(&stranger, &client, "x"), None)
                .await
        ),
        CredentialReason::TenantNotFound
    );
    assert_eq!(
        reason(
            f.validator
                .validate(&creds("nobody.example", &client, "x"), None)
                .await
        ),
        CredentialReason::TenantNotFound
    );
    assert!(matches!(
        f.validator
            .validate(&f.credentials("northwind"), None)
            .await,
        Err(ValidationError::ServicePrincipalNotFound)
    ));
    assert!(matches!(
        Credentials::preflight(
            &tenant,
            &client,
            &contoso.app().secrets[0].key_id.to_string()
        ),
        Err(ValidationError::InvalidCredentials {
            reason: CredentialReason::SecretIdNotValue,
            ..
        })
    ));
    assert!(
        f.sim
            .requests()
            .iter()
            .all(|r| !r.path.contains(contoso.secret_value()))
    );
}

#[tokio::test]
async fn without_a_directory_role_password_reset_is_unavailable() {
    let f = fixture().await;
    let report = f
        .validator
        .validate(&f.credentials("tailspin"), None)
        .await
        .expect("valid");
    let reset = report
        .capabilities
        .iter()
        .find(|s| s.capability == Capability::PasswordReset)
        .expect("listed");
    assert!(!reset.available);
    assert!(reset.missing_permissions.is_empty());
    assert!(
        reset
            .missing_directory_role
            .contains(&"User Administrator".to_owned())
    );
    assert!(
        report
            .directory_role_status
            .missing
            .contains(roles::USER_ADMINISTRATOR)
    );
}

#[tokio::test]
async fn an_outage_is_never_reported_as_bad_credentials() {
    let f = fixture_with(Duration::from_millis(400)).await;
    let credentials = f.credentials("contoso");
    for faults in [
        serde_json::json!({"global": {"error_rate": 1.0, "error_statuses": [503]}}),
        serde_json::json!({"global": {"error_rate": 1.0, "error_statuses": [500]}}),
        serde_json::json!({"global": {"drop_rate": 1.0}}),
        serde_json::json!({"global": {"latency_ms": 1000}}),
    ] {
        f.sim
            .state()
            .set_faults(serde_json::from_value::<Faults>(faults.clone()).expect("faults"));
        let validator = Validator::new(
            GraphHttp::new({
                let mut c = GraphConfig::new(&f.sim.base_url(), &f.sim.base_url())
                    .with_exchange_url(&f.sim.base_url());
                c.request_timeout = Duration::from_millis(400);
                c
            })
            .expect("client"),
        );
        match validator.validate(&credentials, None).await {
            Err(ValidationError::UpstreamUnavailable { .. }) => {}
            other => panic!("{faults}: expected UPSTREAM_UNAVAILABLE, got {other:?}"),
        }
    }
    // Graph throttling after a good token is an outage too, with Microsoft's Retry-After.
    f.sim.state().set_faults(Faults::default());
    let _ = f
        .validator
        .validate(&credentials, None)
        .await
        .expect("warm the token cache");
    let client = reqwest::Client::new();
    client
        .put(format!("{}/_sim/throttle", f.sim.base_url()))
        .json(&serde_json::json!({"scale": 0.0001}))
        .send()
        .await
        .expect("sent");
    match f.validator.validate(&credentials, None).await {
        Err(ValidationError::UpstreamUnavailable { retry_after, .. }) => {
            assert!(retry_after.is_some(), "Retry-After is kept")
        }
        other => panic!("expected UPSTREAM_UNAVAILABLE, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_token_requests_share_one_call_and_validation_always_gets_a_fresh_token() {
    let f = fixture().await;
    let tenant = f.tenant("contoso").clone();
    let http = GraphHttp::new(
        GraphConfig::new(&f.sim.base_url(), &f.sim.base_url()).with_exchange_url(&f.sim.base_url()),
    )
    .expect("client");
    let cache = TokenCache::default();
    let secret = tenantry_domain::AppCredential::Secret(secrecy::SecretString::from(
        tenant.secret_value().to_owned(),
    ));
    let runs: Vec<_> = (0..5)
        .map(|_| {
            let (cache, http, secret) = (cache.clone(), http.clone(), secret.clone());
            let (tid, client) = (tenant.id.to_string(), tenant.app().client_id.to_string());
            tokio::spawn(
                async move { cache.token(&http, &tid, &client, &secret).await.map(|_| ()) },
            )
        })
        .collect();
    for run in runs {
        run.await.expect("task").expect("token");
    }
    let token_calls = || {
        f.sim
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
            .count()
    };
    assert_eq!(token_calls(), 1, "single flight and cache");
    let wrong =
        tenantry_domain::AppCredential::Secret(secrecy::SecretString::from("wrong".to_owned()));
    assert!(
        cache
            .token(
                &http,
                &tenant.id.to_string(),
                &tenant.app().client_id.to_string(),
                &wrong
            )
            .await
            .is_err()
    );

    // Validation does not trust a cached token: a secret revoked since must fail.
    let credentials = f.credentials("contoso");
    f.validator
        .validate(&credentials, None)
        .await
        .expect("valid");
    f.validator
        .validate(&credentials, None)
        .await
        .expect("valid");
    assert_eq!(
        token_calls(),
        6,
        "two more per validation, Graph's and Exchange's for contoso's live check (and one for the wrong secret)"
    );
}

/// Registers `certificate` on tenant `name`'s app in the simulator, as an admin would.
fn register(f: &Fixture, name: &str, certificate: &tenantry_domain::CertificateCredential) {
    let t = f.tenant(name);
    let spec = tenantry_graph_sim::scenario::CertificateSpec {
        key_id: uuid::Uuid::new_v4(),
        display_name: "CN=Tenantry".into(),
        certificate_pem: tenantry_graph::certificate::certificate_pem(&certificate.certificate_der),
        start: certificate.not_before,
        end: certificate.not_after,
    };
    f.sim
        .state()
        .add_certificate(name, t.app().client_id, spec)
        .expect("registered");
}

#[tokio::test]
async fn certificates_are_proven_by_assertions_and_each_refusal_has_its_reason() {
    let f = fixture().await;
    let t = f.tenant("contoso").clone();
    let (tenant, client) = (t.id.to_string(), t.app().client_id.to_string());
    let now = chrono::Utc::now();
    let certificate = tenantry_graph::certificate::generate("Tenantry", now).expect("generated");
    let with = |c: &tenantry_domain::CertificateCredential| {
        Credentials::with_certificate(&tenant, &client, c.clone()).expect("preflight")
    };

    // Not registered on the app yet.
    assert_eq!(
        reason(f.validator.validate(&with(&certificate), None).await),
        CredentialReason::CertificateNotRegistered
    );
    register(&f, "contoso", &certificate);
    let report = f
        .validator
        .validate(&with(&certificate), None)
        .await
        .expect("valid");
    assert!(report.secret.is_none());
    let expiry = report.certificate.as_ref().expect("certificate expiry");
    assert_eq!(expiry.expires_at, certificate.not_after);
    assert_eq!(expiry.thumbprint_s256, certificate.thumbprint_s256);
    assert!(expiry.days_left > 700);
    assert_eq!(
        report.status(),
        tenantry_domain::OrganizationStatus::Connected
    );
    // The token was issued for a certificate.
    let token_request = f
        .sim
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .expect("token request");
    assert_eq!(token_request.status, 200);

    // The registered certificate's thumbprint, signed by another key.
    let other = tenantry_graph::certificate::generate("Other", now).expect("generated");
    let forged = tenantry_domain::CertificateCredential {
        private_key_pem: other.private_key_pem.clone(),
        ..certificate.clone()
    };
    assert_eq!(
        reason(f.validator.validate(&with(&forged), None).await),
        CredentialReason::CertificateSignatureInvalid
    );

    // The service's clock an hour behind Microsoft's: the assertion is already expired.
    f.sim.state().set_clock_offset(chrono::Duration::hours(1));
    assert_eq!(
        reason(f.validator.validate(&with(&certificate), None).await),
        CredentialReason::AssertionTimeInvalid
    );
    f.sim.state().set_clock_offset(chrono::Duration::zero());

    // Expired: Tenantry's own copy is checked before any call.
    let calls = f.sim.requests().len();
    let expired = tenantry_domain::CertificateCredential {
        not_after: now - chrono::Duration::days(1),
        ..certificate.clone()
    };
    assert!(matches!(
        Credentials::with_certificate(&tenant, &client, expired),
        Err(ValidationError::InvalidCredentials {
            reason: CredentialReason::CertificateExpired,
            aadsts: None
        })
    ));
    assert_eq!(f.sim.requests().len(), calls, "no call to Microsoft");
    // … and Entra's copy ending is the same reason.
    f.sim.state().remove_certificate(
        "contoso",
        t.app().client_id,
        f.sim.state().scenario().tenants[0].apps[0].certificates[0].key_id,
    );
    let ended = tenantry_graph_sim::scenario::CertificateSpec {
        key_id: uuid::Uuid::new_v4(),
        display_name: "CN=Tenantry".into(),
        certificate_pem: tenantry_graph::certificate::certificate_pem(&certificate.certificate_der),
        start: now - chrono::Duration::days(30),
        end: now - chrono::Duration::days(1),
    };
    f.sim
        .state()
        .add_certificate("contoso", t.app().client_id, ended)
        .expect("registered");
    assert_eq!(
        reason(f.validator.validate(&with(&certificate), None).await),
        CredentialReason::CertificateExpired
    );
}

#[test]
fn a_certificate_near_its_end_is_warned_of_like_a_secret() {
    let now = chrono::Utc::now();
    let mut certificate =
        tenantry_graph::certificate::generate("Tenantry", now).expect("generated");
    certificate.not_after = now + chrono::Duration::days(10);
    let mut warnings = Vec::new();
    let expiry = tenantry_graph::validator::certificate_expiry(&certificate, &mut warnings);
    assert_eq!(expiry.days_left, 9);
    assert!(
        warnings[0].contains("certificate expires in 9 days"),
        "{warnings:?}"
    );
}
