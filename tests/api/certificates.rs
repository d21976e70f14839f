//! Certificate credentials end to end: uploading a key and certificate, generating a pair
//! and registering its certificate in Entra (the simulator's control API), each refusal's
//! reason and code, expiry warnings, rotation between secrets and certificates with every
//! job succeeding, the `.cer` downloads, and the private key kept out of every answer, log
//! and plaintext column.

use base64::Engine;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::PgPool;
use tenantry_domain::CertificateCredential;
use tenantry_graph::certificate;

use crate::helpers::{Logs, TestApp, TestMsp, assert_problem};

/// A key pair whose certificate is valid from `start` for two years.
fn key_pair(start: chrono::DateTime<chrono::Utc>) -> CertificateCredential {
    certificate::generate("Tenantry test", start).expect("generated")
}

/// Registers a certificate (PEM) on demo tenant `name`'s app, through the simulator's
/// control API, as an admin uploading it in Entra; returns its key id.
async fn register_in_entra(app: &TestApp, name: &str, certificate_pem: &str) -> String {
    let t = app.demo(name);
    let response = reqwest::Client::new()
        .post(format!(
            "{}/_sim/tenants/{}/applications/{}/certificates",
            app.sim.base_url(),
            t.id,
            t.app().client_id
        ))
        .json(&json!({"certificatePem": certificate_pem}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    body["keyId"].as_str().expect("key id").to_owned()
}

/// The body connecting demo tenant `name` with `certificate` instead of a secret.
fn certificate_body(app: &TestApp, name: &str, certificate: Value) -> Value {
    let mut body = app.connect_body(name);
    body.as_object_mut()
        .expect("object")
        .remove("client_secret");
    body["certificate"] = certificate;
    body
}

fn uploaded(pair: &CertificateCredential) -> Value {
    json!({
        "private_key_pem": pair.private_key_pem.expose_secret(),
        "certificate_pem": certificate::certificate_pem(&pair.certificate_der),
    })
}

/// The base64 body of a PEM key, and a few distinctive pieces of it.
fn key_fragments(pair: &CertificateCredential) -> Vec<String> {
    let pem = pair.private_key_pem.expose_secret();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    vec![
        pem.to_owned(),
        body[..60].to_owned(),
        body[body.len() / 2..body.len() / 2 + 60].to_owned(),
    ]
}

async fn assert_no_key_at_rest(app: &TestApp, pair: &CertificateCredential) {
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar(
        "select sealed_secret from organization_credential
         union all select sealed_private_key from generated_certificate",
    )
    .fetch_all(&app.pool)
    .await
    .expect("sealed columns");
    let fragments = key_fragments(pair);
    for value in &sealed {
        let text = String::from_utf8_lossy(value);
        assert!(!text.contains("PRIVATE KEY"), "a sealed column holds PEM");
        for fragment in &fragments {
            assert!(
                !text.contains(fragment.as_str()),
                "a sealed column holds the key"
            );
        }
    }
    // Nor anywhere else in the database's plaintext: jobs, reports, audit.
    let dump: String = sqlx::query_scalar(
        "select coalesce(string_agg(t::text, ' '), '') from (
             select args::text as t from job
             union all select coalesce(validation_report::text, '') from organization
             union all select coalesce(last_error, '') from job
         ) rows",
    )
    .fetch_one(&app.pool)
    .await
    .expect("dump");
    for fragment in &fragments {
        assert!(
            !dump.contains(fragment.as_str()),
            "the key is in plaintext rows"
        );
    }
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn an_uploaded_certificate_connects_and_its_key_never_leaves_the_service(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let pair = key_pair(chrono::Utc::now());
    let pem = certificate::certificate_pem(&pair.certificate_der);
    register_in_entra(&app, "contoso", &pem).await;

    let (logs, guard) = Logs::capture();
    let response = app
        .post_json(
            "/api/v1/organizations",
            &msp.owner_key,
            certificate_body(&app, "contoso", uploaded(&pair)),
        )
        .await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.expect("body");
    let created: Value = serde_json::from_str(&text).expect("json");
    let org = created["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(created["organization"]["credential_type"], "certificate");
    assert_eq!(
        created["organization"]["certificate_thumbprint"],
        pair.thumbprint_s256
    );
    assert_eq!(
        created["validation"]["certificate"]["thumbprint_s256"],
        pair.thumbprint_s256
    );
    assert!(created["validation"]["secret"].is_null());
    let expires: chrono::DateTime<chrono::Utc> = created["organization"]["secret_expires_at"]
        .as_str()
        .expect("expiry")
        .parse()
        .expect("time");
    assert_eq!(expires, pair.not_after);
    assert_eq!(created["organization"]["status"], "connected");

    // The first discovery runs on the certificate.
    let run = created["discovery_run_id"]
        .as_str()
        .expect("run")
        .to_owned();
    let finished = app.finished_run(&msp.owner_key, &org, &run).await;
    assert_eq!(finished["state"], "succeeded", "{finished}");
    let validated = app
        .post_json(
            &format!("/api/v1/organizations/{org}/validate"),
            &msp.owner_key,
            json!({}),
        )
        .await;
    assert_eq!(validated.status(), 200);
    let validation = validated.text().await.expect("body");
    let view = app
        .get(&format!("/api/v1/organizations/{org}"), &msp.owner_key)
        .await
        .text()
        .await
        .expect("view");
    drop(guard);

    let logged = logs.text();
    assert!(logged.contains("tenant connected"), "logs were captured");
    for fragment in key_fragments(&pair) {
        for (what, haystack) in [
            ("the connect answer", &text),
            ("the validation", &validation),
            ("the organization", &view),
            ("the logs", &logged),
        ] {
            assert!(
                !haystack.contains(fragment.as_str()),
                "{what} holds the private key"
            );
        }
    }
    assert!(!logged.contains("PRIVATE KEY"), "no key PEM in the logs");
    assert_no_key_at_rest(&app, &pair).await;
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_generated_certificate_connects_once_registered_and_is_downloaded_per_msp(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let other = app.create_msp("Other MSP").await;
    let generated = app
        .post_json(
            "/api/v1/certificates",
            &msp.owner_key,
            json!({"common_name": "Tenantry for Contoso"}),
        )
        .await;
    assert_eq!(generated.status(), 201);
    let text = generated.text().await.expect("body");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    let generated: Value = serde_json::from_str(&text).expect("json");
    let id = generated["id"].as_str().expect("id").to_owned();
    let pem = generated["certificate_pem"]
        .as_str()
        .expect("pem")
        .to_owned();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));

    // The .cer download is the DER of the same certificate.
    let cer = app
        .get(
            &format!("/api/v1/certificates/{id}/certificate.cer"),
            &msp.owner_key,
        )
        .await;
    assert_eq!(cer.status(), 200);
    assert_eq!(cer.headers()["content-type"], "application/pkix-cert");
    let der = cer.bytes().await.expect("der").to_vec();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let from_pem = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("pem body");
    assert_eq!(der, from_pem);
    assert_eq!(
        generated["thumbprint_s256"],
        certificate::thumbprint_s256(&der)
    );
    for path in [
        format!("/api/v1/certificates/{id}"),
        format!("/api/v1/certificates/{id}/certificate.cer"),
    ] {
        assert_problem(app.get(&path, &other.owner_key).await, 404, "NOT_FOUND").await;
    }

    // Before the certificate is registered in Entra, Entra does not know it.
    let body = certificate_body(&app, "contoso", json!({"generated_id": id}));
    let refused = app
        .post_json("/api/v1/organizations", &msp.owner_key, body.clone())
        .await;
    let problem = assert_problem(refused, 422, "INVALID_CREDENTIALS").await;
    assert_eq!(problem["reason"], "certificate_not_registered");
    assert_eq!(problem["aadsts_code"], 700027);
    // Another MSP cannot use it.
    let foreign = app
        .post_json("/api/v1/organizations", &other.owner_key, body.clone())
        .await;
    assert_problem(foreign, 422, "INVALID_REQUEST").await;

    register_in_entra(&app, "contoso", &pem).await;
    let connected = app
        .post_json("/api/v1/organizations", &msp.owner_key, body.clone())
        .await;
    assert_eq!(connected.status(), 201);
    let connected: Value = connected.json().await.expect("json");
    let org = connected["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(connected["organization"]["credential_type"], "certificate");
    let run = connected["discovery_run_id"].as_str().expect("run");
    assert_eq!(
        app.finished_run(&msp.owner_key, &org, run).await["state"],
        "succeeded"
    );

    // Used up: the key moved into the organization.
    assert_problem(
        app.get(&format!("/api/v1/certificates/{id}"), &msp.owner_key)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let cer = app
        .get(
            &format!("/api/v1/organizations/{org}/certificate.cer"),
            &msp.owner_key,
        )
        .await;
    assert_eq!(cer.status(), 200);
    assert!(
        cer.headers()["content-disposition"]
            .to_str()
            .expect("header")
            .contains(".cer")
    );
    assert_eq!(cer.bytes().await.expect("der").to_vec(), der);
    assert_problem(
        app.get(
            &format!("/api/v1/organizations/{org}/certificate.cer"),
            &other.owner_key,
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let count: i64 = sqlx::query_scalar("select count(*) from generated_certificate")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(count, 0);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn bad_certificate_input_is_refused_with_a_stable_code_before_microsoft_is_asked(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let key = &msp.owner_key;
    let now = chrono::Utc::now();
    let pair = key_pair(now);
    let pem = certificate::certificate_pem(&pair.certificate_der);
    let other = key_pair(now);
    let expired = key_pair(now - chrono::Duration::days(800));
    let calls = app.sim.requests().len();
    let post = |body: Value| app.post_json("/api/v1/organizations", key, body);

    let malformed_key = post(certificate_body(
        &app,
        "contoso",
        json!({"private_key_pem": "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----", "certificate_pem": pem}),
    ))
    .await;
    let problem = assert_problem(malformed_key, 422, "CERTIFICATE_MALFORMED").await;
    assert_eq!(problem["field"], "certificate.private_key_pem");
    let malformed_certificate = post(certificate_body(
        &app,
        "contoso",
        json!({"private_key_pem": pair.private_key_pem.expose_secret(), "certificate_pem": "hello"}),
    ))
    .await;
    let problem = assert_problem(malformed_certificate, 422, "CERTIFICATE_MALFORMED").await;
    assert_eq!(problem["field"], "certificate.certificate_pem");
    assert!(
        !problem.to_string().contains("PRIVATE KEY"),
        "no input quoted: {problem}"
    );

    let mismatch = post(certificate_body(
        &app,
        "contoso",
        json!({"private_key_pem": other.private_key_pem.expose_secret(), "certificate_pem": pem}),
    ))
    .await;
    assert_problem(mismatch, 422, "CERTIFICATE_KEY_MISMATCH").await;

    let old = post(certificate_body(&app, "contoso", uploaded(&expired))).await;
    let problem = assert_problem(old, 422, "CERTIFICATE_EXPIRED").await;
    assert!(problem["not_after"].is_string());

    let mut both = certificate_body(&app, "contoso", uploaded(&pair));
    both["client_secret"] = json!(app.demo("contoso").secret_value());
    assert_problem(post(both).await, 422, "CREDENTIAL_AMBIGUOUS").await;
    let mut neither = app.connect_body("contoso");
    neither
        .as_object_mut()
        .expect("object")
        .remove("client_secret");
    assert_problem(post(neither).await, 422, "CREDENTIAL_MISSING").await;
    let half = post(certificate_body(
        &app,
        "contoso",
        json!({"certificate_pem": pem}),
    ))
    .await;
    let problem = assert_problem(half, 422, "CREDENTIAL_MISSING").await;
    assert_eq!(problem["field"], "certificate.private_key_pem");

    let oversized = post(certificate_body(
        &app,
        "contoso",
        json!({"private_key_pem": "A".repeat(certificate::MAX_PEM_BYTES + 1), "certificate_pem": pem}),
    ))
    .await;
    let problem = assert_problem(oversized, 422, "CERTIFICATE_TOO_LARGE").await;
    assert_eq!(problem["field"], "certificate.private_key_pem");

    assert_eq!(app.sim.requests().len(), calls, "Microsoft was never asked");
    let count: i64 = sqlx::query_scalar("select count(*) from organization")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(count, 0, "failures store nothing");
}

/// Connects demo tenant `name` with an uploaded, registered certificate.
async fn connect_with_certificate(
    app: &TestApp,
    msp: &TestMsp,
    name: &str,
    pair: &CertificateCredential,
) -> Value {
    register_in_entra(
        app,
        name,
        &certificate::certificate_pem(&pair.certificate_der),
    )
    .await;
    let response = app
        .post_json(
            "/api/v1/organizations",
            &msp.owner_key,
            certificate_body(app, name, uploaded(pair)),
        )
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.expect("json")
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn each_certificate_refusal_has_its_reason_and_fix(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let now = chrono::Utc::now();
    let pair = key_pair(now);
    let created = connect_with_certificate(&app, &msp, "contoso", &pair).await;
    let org = created["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let validate_path = format!("/api/v1/organizations/{org}/validate");
    let validate = || app.post_json(&validate_path, &msp.owner_key, json!({}));
    let reason = |problem: &Value| problem["reason"].as_str().unwrap_or_default().to_owned();

    // The service's clock an hour behind Microsoft's.
    app.sim.state().set_clock_offset(chrono::Duration::hours(1));
    let problem = assert_problem(validate().await, 422, "INVALID_CREDENTIALS").await;
    assert_eq!(reason(&problem), "assertion_time_invalid");
    assert_eq!(problem["aadsts_code"], 700024);
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("NTP"))
    );
    app.sim.state().set_clock_offset(chrono::Duration::zero());

    // A key that is not the certificate's (no upload makes one: the store is written
    // directly, as a corrupted credential would be).
    let principal = app.store.authenticate(&msp.owner_key).await.expect("key");
    let scope = app.store.scope(&principal);
    let id: tenantry_domain::OrganizationId = org.parse().expect("id");
    let forged = CertificateCredential {
        private_key_pem: key_pair(now).private_key_pem,
        ..pair.clone()
    };
    scope
        .replace_credentials(
            id,
            app.demo("contoso").app().client_id,
            &tenantry_domain::AppCredential::Certificate(forged),
            None,
            tenantry_domain::OrganizationStatus::Connected,
            &json!({}),
        )
        .await
        .expect("stored");
    let problem = assert_problem(validate().await, 422, "INVALID_CREDENTIALS").await;
    assert_eq!(reason(&problem), "certificate_signature_invalid");
    assert_eq!(
        app.get(&format!("/api/v1/organizations/{org}"), &msp.owner_key)
            .await
            .json::<Value>()
            .await
            .expect("org")["status"],
        "credentials_invalid"
    );

    // The certificate removed from the app in Entra.
    scope
        .replace_credentials(
            id,
            app.demo("contoso").app().client_id,
            &tenantry_domain::AppCredential::Certificate(pair.clone()),
            None,
            tenantry_domain::OrganizationStatus::Connected,
            &json!({}),
        )
        .await
        .expect("stored");
    assert_eq!(validate().await.status(), 200);
    app.change_tenant("contoso", |t| t.apps[0].certificates.clear());
    let problem = assert_problem(validate().await, 422, "INVALID_CREDENTIALS").await;
    assert_eq!(reason(&problem), "certificate_not_registered");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Upload certificate"))
    );

    // Entra's copy of it has ended.
    app.change_tenant("contoso", |t| {
        t.apps[0]
            .certificates
            .push(tenantry_graph_sim::scenario::CertificateSpec {
                key_id: uuid::Uuid::new_v4(),
                display_name: "CN=Tenantry".into(),
                certificate_pem: certificate::certificate_pem(&pair.certificate_der),
                start: now - chrono::Duration::days(30),
                end: now - chrono::Duration::days(1),
            });
    });
    let problem = assert_problem(validate().await, 422, "INVALID_CREDENTIALS").await;
    assert_eq!(reason(&problem), "certificate_expired");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_certificate_near_its_end_is_warned_of_like_a_secret(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    // Valid for two years from 720 days ago: ten days left.
    let pair = key_pair(chrono::Utc::now() - chrono::Duration::days(720));
    let created = connect_with_certificate(&app, &msp, "contoso", &pair).await;
    assert_eq!(created["organization"]["status"], "secret_expiring");
    assert_eq!(created["validation"]["certificate"]["days_left"], 9);
    assert!(
        created["validation"]["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| w
                .as_str()
                .is_some_and(|w| w.contains("certificate expires in 9 days"))),
        "{}",
        created["validation"]
    );
    // A discovery keeps the status and the expiry, as for a secret.
    let org = created["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let run = created["discovery_run_id"]
        .as_str()
        .expect("run")
        .to_owned();
    assert_eq!(
        app.finished_run(&msp.owner_key, &org, &run).await["state"],
        "succeeded"
    );
    let view: Value = app
        .get(&format!("/api/v1/organizations/{org}"), &msp.owner_key)
        .await
        .json()
        .await
        .expect("org");
    assert_eq!(view["status"], "secret_expiring");
    let expires: chrono::DateTime<chrono::Utc> = view["secret_expires_at"]
        .as_str()
        .expect("expiry")
        .parse()
        .expect("time");
    assert_eq!(expires, pair.not_after);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn rotating_from_a_secret_to_a_certificate_and_back_fails_no_job(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let key = msp.owner_key.clone();
    let (org, first_run) =
        crate::helpers::connect_run(&app, &key, app.connect_body("contoso")).await;
    assert_eq!(
        app.finished_run(&key, &org, &first_run).await["state"],
        "succeeded"
    );
    let put = |body: Value| {
        app.request(
            Method::PUT,
            &format!("/api/v1/organizations/{org}/credentials"),
            Some(&key),
        )
        .json(&body)
        .send()
    };
    let scan = || async {
        let run: Value = app
            .post_json(
                &format!("/api/v1/organizations/{org}/discovery-runs"),
                &key,
                json!({}),
            )
            .await
            .json()
            .await
            .expect("run");
        let id = run["id"].as_str().expect("run id").to_owned();
        app.finished_run(&key, &org, &id).await["state"].clone()
    };
    let client_id = app.demo("contoso").app().client_id;

    // Secret → generated certificate: generated, registered in Entra, then swapped in.
    let generated: Value = app
        .post_json("/api/v1/certificates", &key, json!({}))
        .await
        .json()
        .await
        .expect("generated");
    let pem = generated["certificate_pem"].as_str().expect("pem");
    let refused =
        put(json!({"client_id": client_id, "certificate": {"generated_id": generated["id"]}}))
            .await
            .expect("sent");
    assert_problem(refused, 422, "INVALID_CREDENTIALS").await;
    assert_eq!(scan().await, "succeeded", "the secret still works");
    register_in_entra(&app, "contoso", pem).await;
    let swapped =
        put(json!({"client_id": client_id, "certificate": {"generated_id": generated["id"]}}))
            .await
            .expect("sent");
    assert_eq!(swapped.status(), 200);
    let report: Value = swapped.json().await.expect("report");
    assert!(report["certificate"]["expires_at"].is_string());
    // The old secret is removed in Entra; everything runs on the certificate.
    app.change_tenant("contoso", |t| t.apps[0].secrets.clear());
    assert_eq!(scan().await, "succeeded");
    let view: Value = app
        .get(&format!("/api/v1/organizations/{org}"), &key)
        .await
        .json()
        .await
        .expect("org");
    assert_eq!(view["credential_type"], "certificate");

    // Certificate → secret: a new secret in Entra, swapped in, the certificate removed.
    let new_secret = tenantry_graph_sim::scenario::SecretSpec {
        key_id: uuid::Uuid::new_v4(),
        value: "NEW8Q~rotated-secret-value-0123456789ab".to_owned(),
        display_name: "rotated".to_owned(),
        start: chrono::Utc::now() - chrono::Duration::days(1),
        end: chrono::Utc::now() + chrono::Duration::days(365),
    };
    app.change_tenant("contoso", |t| t.apps[0].secrets.push(new_secret.clone()));
    let back = put(json!({"client_id": client_id, "client_secret": new_secret.value}))
        .await
        .expect("sent");
    assert_eq!(back.status(), 200);
    app.change_tenant("contoso", |t| t.apps[0].certificates.clear());
    assert_eq!(scan().await, "succeeded");
    let view: Value = app
        .get(&format!("/api/v1/organizations/{org}"), &key)
        .await
        .json()
        .await
        .expect("org");
    assert_eq!(view["credential_type"], "secret");
    assert!(view["certificate_thumbprint"].is_null());
    assert_problem(
        app.get(
            &format!("/api/v1/organizations/{org}/certificate.cer"),
            &key,
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;

    let jobs = app.get_all("/api/v1/jobs", &key).await;
    assert!(jobs.len() >= 4, "{jobs:?}");
    for job in &jobs {
        assert_eq!(job["state"], "completed", "no job failed: {job}");
        assert_eq!(job["errors"], json!([]), "no attempt failed: {job}");
    }

    // Each replacement is in the audit log: who, what kind, which certificate; never
    // the credential.
    let events = app.get_all("/api/v1/audit-events", &key).await;
    let replaced: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "organization.credential_replaced")
        .collect();
    let kinds: Vec<&Value> = replaced
        .iter()
        .map(|e| &e["parameters"]["credential_type"])
        .collect();
    assert_eq!(kinds.len(), 2, "secret → certificate → secret: {events:?}");
    assert!(kinds.contains(&&json!("certificate")) && kinds.contains(&&json!("secret")));
    for event in &replaced {
        assert_eq!(event["organization_id"], json!(org));
        assert_eq!(event["actor"]["type"], "api_key");
        let text = event.to_string();
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains("client_secret\":\""),
            "{text}"
        );
    }
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_generated_key_pair_raced_into_two_organizations_goes_to_exactly_one(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let key = msp.owner_key.clone();
    let names = ["contoso", "tailspin"];
    let mut organizations = Vec::new();
    for name in names {
        organizations.push(crate::helpers::connect(&app, &msp, name).await);
    }
    let generated: Value = app
        .post_json("/api/v1/certificates", &key, json!({}))
        .await
        .json()
        .await
        .expect("generated");
    let pem = generated["certificate_pem"].as_str().expect("pem");
    for name in names {
        register_in_entra(&app, name, pem).await;
    }
    // Both requests prove the same key pair to Microsoft, then store it at once.
    let swap = |name: &str, org: &str| {
        app.request(
            Method::PUT,
            &format!("/api/v1/organizations/{org}/credentials"),
            Some(&key),
        )
        .json(&json!({
            "client_id": app.demo(name).app().client_id,
            "certificate": {"generated_id": generated["id"]},
        }))
        .send()
    };
    let (first, second) = tokio::join!(
        swap(names[0], &organizations[0]),
        swap(names[1], &organizations[1])
    );
    let answers = [first, second];
    let mut statuses = Vec::new();
    for answer in answers {
        let answer = answer.expect("sent");
        statuses.push(answer.status().as_u16());
        if answer.status() != 200 {
            // Whichever request lost, it is told its input went stale, never "no page".
            assert_problem(answer, 422, "INVALID_REQUEST").await;
        }
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 422], "one organization got the key pair");
    let certificates: i64 = sqlx::query_scalar(
        "select count(*) from organization_credential where kind = 'certificate'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(certificates, 1, "the key lives in one organization only");
}
