//! Connecting tenants: one test per outcome of the validator through the API, against the
//! simulator over real HTTP, plus binding, rotation, deletion and sealing.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use tenantry_domain::Role;
use tenantry_graph_sim::ScriptedFault;

use crate::helpers::{TEST_MASTER_KEY, TestApp, assert_problem};

async fn connect(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.post_json("/api/v1/organizations", key, body).await
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_healthy_tenant_connects_with_its_report_and_a_sealed_secret(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let response = connect(&app, &msp.owner_key, app.connect_body("contoso")).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    let contoso = app.demo("contoso");
    assert_eq!(body["organization"]["tenant_id"], contoso.id.to_string());
    assert_eq!(body["organization"]["status"], "connected");
    assert_eq!(
        body["validation"]["permissions"]["granted"]
            .as_array()
            .expect("granted")
            .len(),
        27
    );
    assert!(
        !body.to_string().contains(contoso.secret_value()),
        "the secret is never returned"
    );

    // Nowhere in the database, in any form a dump would show.
    let dump: Vec<String> = sqlx::query_scalar(
        "select row_to_json(t)::text from (select * from organization) t
         union all select row_to_json(t)::text from (select organization_id, encode(sealed_secret, 'escape') as s from organization_credential) t
         union all select row_to_json(t)::text from (select organization_id, encode(sealed, 'escape') as s from organization_data_key) t",
    )
    .fetch_all(&app.pool)
    .await
    .expect("dump");
    assert_eq!(dump.len(), 3);
    assert!(
        dump.iter().all(|row| !row.contains(contoso.secret_value())),
        "{dump:?}"
    );

    let id = body["organization"]["id"].as_str().expect("id");
    let listed: Value = app
        .get("/api/v1/organizations", &msp.owner_key)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["data"][0]["id"], id);
    let validation: Value = app
        .get(
            &format!("/api/v1/organizations/{id}/validation"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(validation["tenant_id"], contoso.id.to_string());
    let revalidated = app
        .request(
            Method::POST,
            &format!("/api/v1/organizations/{id}/validate"),
            Some(&msp.owner_key),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(
        revalidated.status(),
        200,
        "the stored, sealed secret opens and still works"
    );
    // A viewer reads the report but may not sign in with the credential to redo it.
    let (_, viewer) = app.key_for(&msp, tenantry_domain::Role::Viewer).await;
    let token_requests = app.sim.requests().len();
    let refused = app
        .request(
            Method::POST,
            &format!("/api/v1/organizations/{id}/validate"),
            Some(&viewer),
        )
        .send()
        .await
        .expect("sent");
    assert_problem(refused, 403, "FORBIDDEN").await;
    assert_eq!(
        app.sim.requests().len(),
        token_requests,
        "Microsoft was not asked"
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn each_failure_has_its_code_and_reason(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let key = msp.owner_key.as_str();
    let contoso = app.demo("contoso").clone();

    let body = assert_problem(
        connect(&app, key, app.connect_body("fabrikam")).await,
        422,
        "MISSING_PERMISSIONS",
    )
    .await;
    assert_eq!(
        body["missing_permissions"],
        json!(["AuditLog.Read.All", "Reports.Read.All", "Sites.Read.All"])
    );
    let fabrikam = app.demo("fabrikam");
    assert_eq!(
        body["admin_consent_url"],
        format!(
            "{}/{}/adminconsent?client_id={}",
            app.sim.base_url(),
            fabrikam.id,
            fabrikam.app().client_id
        )
    );

    let reason = |body: Value| body["reason"].as_str().expect("reason").to_owned();
    let problem = assert_problem(
        connect(&app, key, app.connect_body("woodgrove")).await,
        422,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_eq!(reason(problem), "secret_expired");
    let mut wrong = app.connect_body("contoso");
    wrong["client_secret"] = json!("not-the-secret");
    assert_eq!(
        reason(assert_problem(connect(&app, key, wrong).await, 422, "INVALID_CREDENTIALS").await),
        "secret_invalid"
    );
    let mut unknown_app = app.connect_body("contoso");
    unknown_app["client_id"] = json!(uuid::Uuid::new_v4());
    assert_eq!(
        reason(
            assert_problem(
                connect(&app, key, unknown_app).await,
                422,
                "INVALID_CREDENTIALS"
            )
            .await
        ),
        "app_not_found_in_tenant"
    );
    let mut unknown_tenant = app.connect_body("contoso");
    unknown_tenant["tenant_id"] = json!(uuid::Uuid::new_v4());
    assert_eq!(
        reason(
            assert_problem(
                connect(&app, key, unknown_tenant).await,
                422,
                "INVALID_CREDENTIALS"
            )
            .await
        ),
        "tenant_not_found"
    );
    assert_problem(
        connect(&app, key, app.connect_body("northwind")).await,
        422,
        "SERVICE_PRINCIPAL_NOT_FOUND",
    )
    .await;

    let token_calls_before = app.sim.requests().len();
    let mut secret_id = app.connect_body("contoso");
    secret_id["client_secret"] = json!(contoso.app().secrets[0].key_id);
    assert_eq!(
        reason(
            assert_problem(
                connect(&app, key, secret_id).await,
                422,
                "INVALID_CREDENTIALS"
            )
            .await
        ),
        "secret_id_not_value"
    );
    assert_eq!(
        app.sim.requests().len(),
        token_calls_before,
        "caught before any call to Microsoft"
    );

    let problem = assert_problem(
        connect(&app, key, json!({"name": "", "provider": "google", "tenant_id": "not a tenant", "client_id": "x", "client_secret": ""})).await,
        422,
        "INVALID_REQUEST",
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "name",
            "provider",
            "tenant_id",
            "client_id",
            "client_secret"
        ]
    );

    // A verified domain names the tenant too, and whitespace around pasted values is trimmed.
    let mut by_domain = app.connect_body("contoso");
    by_domain["tenant_id"] = json!("  contoso.onmicrosoft.com ");
    by_domain["client_secret"] = json!(format!(" {} \n", contoso.secret_value()));
    let created = connect(&app, key, by_domain).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    assert_eq!(created["organization"]["tenant_id"], contoso.id.to_string());

    let count: i64 = sqlx::query_scalar("select count(*) from organization")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(count, 1, "failures store nothing");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn credentials_answering_for_another_tenant_are_a_mismatch(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let other = uuid::Uuid::new_v4();
    app.change_tenant("contoso", |t| *t = t.clone().with_organization_id(other));
    let body = assert_problem(
        connect(&app, &msp.owner_key, app.connect_body("contoso")).await,
        422,
        "TENANT_MISMATCH",
    )
    .await;
    assert_eq!(body["actual_tenant_id"], other.to_string());
    assert_eq!(
        body["expected_tenant_id"],
        app.demo("contoso").id.to_string()
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_tenant_binds_to_one_organization_in_the_whole_service(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let first = app.create_msp("First MSP").await;
    let second = app.create_msp("Second MSP").await;
    // Two MSPs race to bind the same tenant: exactly one wins.
    let (a, b) = tokio::join!(
        connect(&app, &first.owner_key, app.connect_body("contoso")),
        connect(&app, &second.owner_key, app.connect_body("contoso"))
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 409]);
    let loser = if a.status() == 409 { a } else { b };
    let body = assert_problem(loser, 409, "TENANT_ALREADY_BOUND").await;
    for msp in [&first, &second] {
        assert!(
            !body.to_string().contains(&msp.name)
                && !body.to_string().contains(&msp.id.to_string()),
            "no MSP is named"
        );
    }
    assert_problem(
        connect(&app, &first.owner_key, app.connect_body("contoso")).await,
        409,
        "TENANT_ALREADY_BOUND",
    )
    .await;
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn only_owners_and_admins_connect_tenants_and_others_never_reach_microsoft(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    for role in [Role::Technician, Role::Viewer] {
        let (_, key) = app.key_for(&msp, role).await;
        let mut by_domain = app.connect_body("contoso");
        by_domain["tenant_id"] = json!("contoso.onmicrosoft.com");
        assert_problem(connect(&app, &key, by_domain).await, 403, "FORBIDDEN").await;
    }
    assert!(
        app.sim.requests().is_empty(),
        "no call to Microsoft on their behalf"
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn microsoft_down_is_upstream_unavailable_never_bad_credentials(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    app.sim.state().set_faults(
        serde_json::from_value(json!({"global": {"error_rate": 1.0, "error_statuses": [503]}}))
            .expect("faults"),
    );
    let response = connect(&app, &msp.owner_key, app.connect_body("contoso")).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(response, 503, "UPSTREAM_UNAVAILABLE").await;
    let count: i64 = sqlx::query_scalar("select count(*) from organization")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(count, 0);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn once_consent_is_granted_the_same_tenant_connects(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    assert_problem(
        connect(&app, &msp.owner_key, app.connect_body("fabrikam")).await,
        422,
        "MISSING_PERMISSIONS",
    )
    .await;
    // The customer's admin grants the three permissions in Entra.
    app.change_tenant("fabrikam", |t| {
        *t = t.clone().with_permissions(&[
            "AuditLog.Read.All",
            "Reports.Read.All",
            "Sites.Read.All",
        ]);
    });
    assert_eq!(
        connect(&app, &msp.owner_key, app.connect_body("fabrikam"))
            .await
            .status(),
        201
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn rotating_the_secret_keeps_the_old_one_until_the_new_one_passes(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let created: Value = connect(&app, &msp.owner_key, app.connect_body("contoso"))
        .await
        .json()
        .await
        .expect("json");
    let id = created["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let contoso = app.demo("contoso").clone();
    let path = format!("/api/v1/organizations/{id}/credentials");
    let put = |body: Value| {
        app.request(Method::PUT, &path, Some(&msp.owner_key))
            .json(&body)
            .send()
    };

    let bad =
        put(json!({"client_id": contoso.app().client_id, "client_secret": "wrong-new-secret"}))
            .await
            .expect("sent");
    assert_problem(bad, 422, "INVALID_CREDENTIALS").await;
    let validate = |key: String| {
        let path = format!("/api/v1/organizations/{id}/validate");
        let app = &app;
        async move {
            app.request(Method::POST, &path, Some(&key))
                .send()
                .await
                .expect("sent")
                .status()
        }
    };
    assert_eq!(
        validate(msp.owner_key.clone()).await,
        200,
        "the old secret is still in place"
    );

    // The admin adds a second secret in Entra and rotates to it.
    let new_secret = tenantry_graph_sim::scenario::SecretSpec {
        key_id: uuid::Uuid::new_v4(),
        value: "NEW8Q~rotated-secret-value-0123456789ab".to_owned(),
        display_name: "rotated".to_owned(),
        start: chrono::Utc::now() - chrono::Duration::days(1),
        end: chrono::Utc::now() + chrono::Duration::days(365),
    };
    app.change_tenant("contoso", |t| t.apps[0].secrets.push(new_secret.clone()));
    let good =
        put(json!({"client_id": contoso.app().client_id, "client_secret": new_secret.value}))
            .await
            .expect("sent");
    assert_eq!(good.status(), 200);
    // The old secret is removed in Entra; the organization keeps working on the new one.
    app.change_tenant("contoso", |t| {
        t.apps[0].secrets.retain(|s| s.value == new_secret.value)
    });
    assert_eq!(validate(msp.owner_key.clone()).await, 200);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn deleting_destroys_the_data_key_and_the_tenant_can_be_added_again(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let created: Value = connect(&app, &msp.owner_key, app.connect_body("contoso"))
        .await
        .json()
        .await
        .expect("json");
    let id = created["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (_, viewer) = app.key_for(&msp, Role::Viewer).await;
    assert_problem(
        app.delete(&format!("/api/v1/organizations/{id}"), &viewer)
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_eq!(
        app.delete(&format!("/api/v1/organizations/{id}"), &msp.owner_key)
            .await
            .status(),
        204
    );
    let keys: i64 = sqlx::query_scalar("select count(*) from organization_data_key")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(keys, 0, "crypto-shredded");
    assert_problem(
        app.get(&format!("/api/v1/organizations/{id}"), &msp.owner_key)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(
        connect(&app, &msp.owner_key, app.connect_body("contoso"))
            .await
            .status(),
        201
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn swapped_sealed_secrets_do_not_open_and_master_key_rotation_keeps_tenants_working(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let a: Value = connect(&app, &msp.owner_key, app.connect_body("contoso"))
        .await
        .json()
        .await
        .expect("json");
    let b: Value = connect(&app, &msp.owner_key, app.connect_body("tailspin"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        b["organization"]["status"], "needs_attention",
        "no directory role for password resets"
    );
    let principal = app.store.authenticate(&msp.owner_key).await.expect("key");
    let org = |v: &Value| {
        tenantry_domain::OrganizationId::from_uuid(
            v["organization"]["id"]
                .as_str()
                .expect("id")
                .parse()
                .expect("uuid"),
        )
    };

    // Master-key rotation: new key current, old key previous; re-seal; the new key alone works.
    let new_key = [0x77u8; 32];
    let rotating = tenantry_store::Store::new(app.pool.clone(), crate::helpers::test_pepper())
        .with_keyring(
            tenantry_store::sealing::Keyring::new(&new_key, &[&TEST_MASTER_KEY]).expect("keyring"),
        );
    assert_eq!(
        rotating
            .operator()
            .rotate_data_keys()
            .await
            .expect("rotated"),
        2
    );
    assert_eq!(
        rotating
            .operator()
            .rotate_data_keys()
            .await
            .expect("idempotent"),
        0
    );
    let rotated = tenantry_store::Store::new(app.pool.clone(), crate::helpers::test_pepper())
        .with_keyring(tenantry_store::sealing::Keyring::new(&new_key, &[]).expect("keyring"));
    let (_, credential) = rotated
        .scope(&principal)
        .credential(org(&a))
        .await
        .expect("opens under the new key");
    let tenantry_domain::AppCredential::Secret(secret) = credential else {
        panic!("a secret credential");
    };
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&secret),
        app.demo("contoso").secret_value()
    );

    // Swap the two organizations' sealed secrets: neither opens any more.
    sqlx::query(
        "update organization_credential c set sealed_secret = o.sealed_secret, credential_id = o.credential_id
         from organization_credential o where c.organization_id <> o.organization_id",
    )
    .execute(&app.pool)
    .await
    .expect("swap");
    for organization in [org(&a), org(&b)] {
        assert!(matches!(
            rotated.scope(&principal).credential(organization).await,
            Err(tenantry_store::StoreError::Sealing(_))
        ));
    }
}

/// Makes the waiting job of `kind` for `organization` due now (as if its wait had passed).
async fn make_due(app: &TestApp, kind: &str, organization: &str) {
    sqlx::query(
        "update job set scheduled_at = now() where kind = $1 and organization_id = $2::uuid
           and state in ('available', 'scheduled', 'retryable')",
    )
    .bind(kind)
    .bind(organization)
    .execute(&app.pool)
    .await
    .expect("due");
}

async fn revalidate_job(app: &TestApp, key: &str, organization: &str) -> Value {
    let jobs: Value = app
        .get(
            &format!("/api/v1/jobs?organization={organization}&kind=revalidate"),
            key,
        )
        .await
        .json()
        .await
        .expect("jobs");
    assert_eq!(jobs["data"].as_array().map(Vec::len), Some(1), "{jobs}");
    jobs["data"][0].clone()
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_consent_failure_is_checked_again_on_a_schedule_until_it_passes(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let created: Value = connect(&app, &msp.owner_key, app.connect_body("contoso"))
        .await
        .json()
        .await
        .expect("json");
    let id = created["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Someone removes a permission in Entra; the next check says so.
    app.change_tenant("contoso", |t| {
        *t = t.clone().without_permissions(&["AuditLog.Read.All"]);
    });
    let failed = app
        .post_json(
            &format!("/api/v1/organizations/{id}/validate"),
            &msp.owner_key,
            json!({}),
        )
        .await;
    assert_problem(failed, 422, "MISSING_PERMISSIONS").await;
    let organization: Value = app
        .get(&format!("/api/v1/organizations/{id}"), &msp.owner_key)
        .await
        .json()
        .await
        .expect("org");
    assert_eq!(organization["status"], "needs_attention");
    // A check is queued for a minute later, without anyone asking.
    let job = revalidate_job(&app, &msp.owner_key, &id).await;
    assert_eq!(job["state"], "available");
    let next: chrono::DateTime<chrono::Utc> = job["next_run_at"]
        .as_str()
        .expect("next run")
        .parse()
        .expect("time");
    let wait = next - chrono::Utc::now();
    assert!(
        wait > chrono::Duration::seconds(50) && wait <= chrono::Duration::seconds(61),
        "{wait}"
    );

    // Still missing at the first check: the job waits for the next step (5 minutes),
    // without spending an attempt.
    make_due(&app, "revalidate", &id).await;
    app.run_pending_jobs().await;
    let snoozed = revalidate_job(&app, &msp.owner_key, &id).await;
    assert_eq!(snoozed["snoozes"], 1, "{snoozed}");
    assert_eq!(snoozed["state"], "scheduled", "{snoozed}");
    assert_eq!(snoozed["attempt"], 0);
    let next: chrono::DateTime<chrono::Utc> = snoozed["next_run_at"]
        .as_str()
        .expect("next run")
        .parse()
        .expect("time");
    assert!(next - chrono::Utc::now() > chrono::Duration::minutes(4));

    // The admin grants consent; the following check finds it and the status recovers.
    app.change_tenant("contoso", |t| {
        *t = t.clone().with_permissions(&["AuditLog.Read.All"]);
    });
    make_due(&app, "revalidate", &id).await;
    app.run_pending_jobs().await;
    let job = revalidate_job(&app, &msp.owner_key, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    let organization: Value = app
        .get(&format!("/api/v1/organizations/{id}"), &msp.owner_key)
        .await
        .json()
        .await
        .expect("org");
    assert_eq!(organization["status"], "connected");
    let report: Value = app
        .get(
            &format!("/api/v1/organizations/{id}/validation"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("report");
    assert!(report.to_string().contains("AuditLog.Read.All"), "{report}");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_report_of_a_replaced_secret_never_overwrites_the_newer_one(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let created: Value = connect(&app, &msp.owner_key, app.connect_body("contoso"))
        .await
        .json()
        .await
        .expect("json");
    let id: tenantry_domain::OrganizationId = created["organization"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let principal = app.store.authenticate(&msp.owner_key).await.expect("key");
    let scope = app.store.scope(&principal);
    // A re-validation starts with the current secret…
    let (old_credential, secret) = scope.credential(id).await.expect("credential");
    // …meanwhile the secret is replaced, with its report…
    scope
        .replace_credentials(
            id,
            app.demo("contoso").app().client_id,
            &secret,
            None,
            tenantry_domain::OrganizationStatus::Connected,
            &json!({"newer": true}),
        )
        .await
        .expect("replaced");
    // …and the slow re-validation's report arrives last: it is not saved.
    let saved = scope
        .save_validation(
            id,
            old_credential,
            tenantry_domain::OrganizationStatus::CredentialsInvalid,
            &json!({"older": true}),
        )
        .await
        .expect("save");
    assert!(!saved);
    let organization = scope.organization(id).await.expect("org");
    assert_eq!(organization.status, "connected");
    assert_eq!(
        scope.validation_report(id).await.expect("report"),
        Some(json!({"newer": true}))
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_short_retry_after_is_waited_out_inside_the_request_and_a_long_one_is_answered(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let organization_answers = |app: &TestApp| -> Vec<u16> {
        app.sim
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/v1.0/organization"))
            .map(|r| r.status)
            .collect()
    };
    // Microsoft throttles the one /organization read, asking for 1.5 s.
    app.sim
        .state()
        .script_fault(ScriptedFault::new("/v1.0/organization", 429).retry_after(1.5));
    let started = std::time::Instant::now();
    let response = connect(&app, &msp.owner_key, app.connect_body("contoso")).await;
    assert_eq!(response.status(), 201);
    assert_eq!(organization_answers(&app), [429, 200], "asked again once");
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500));

    // A wait beyond the validation's budget is not made inside the request.
    app.sim.state().clear_requests();
    app.sim
        .state()
        .script_fault(ScriptedFault::new("/v1.0/organization", 429).retry_after(30.0));
    let started = std::time::Instant::now();
    let response = connect(&app, &msp.owner_key, app.connect_body("tailspin")).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("30")
    );
    assert_problem(response, 503, "UPSTREAM_UNAVAILABLE").await;
    assert_eq!(organization_answers(&app), [429]);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_service_principal_graph_does_not_show_yet_is_not_found_and_checked_again(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let replicating = |app: &TestApp, yes: bool| {
        app.change_tenant("contoso", |t| {
            *t = t.clone().with_service_principal_replicating(yes);
        });
    };
    // Consent was just granted: Entra issues tokens, Graph does not show the principal yet.
    replicating(&app, true);
    let body = assert_problem(
        connect(&app, &msp.owner_key, app.connect_body("contoso")).await,
        422,
        "SERVICE_PRINCIPAL_NOT_FOUND",
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("few minutes")),
        "{body}"
    );
    assert!(
        app.sim
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/oauth2/v2.0/token") && r.status == 200),
        "the credentials themselves worked"
    );
    replicating(&app, false);
    let created: Value = connect(&app, &msp.owner_key, app.connect_body("contoso"))
        .await
        .json()
        .await
        .expect("json");
    let id = created["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // The same lag at a re-validation: the organization needs attention (its credentials
    // are not called invalid) and is checked again on the schedule until it passes.
    replicating(&app, true);
    let failed = app
        .post_json(
            &format!("/api/v1/organizations/{id}/validate"),
            &msp.owner_key,
            json!({}),
        )
        .await;
    assert_problem(failed, 422, "SERVICE_PRINCIPAL_NOT_FOUND").await;
    assert_eq!(
        organization(&app, &msp.owner_key, &id).await["status"],
        "needs_attention"
    );
    assert_eq!(
        revalidate_job(&app, &msp.owner_key, &id).await["state"],
        "available"
    );
    replicating(&app, false);
    make_due(&app, "revalidate", &id).await;
    app.run_pending_jobs().await;
    assert_eq!(
        revalidate_job(&app, &msp.owner_key, &id).await["state"],
        "completed"
    );
    assert_eq!(
        organization(&app, &msp.owner_key, &id).await["status"],
        "connected"
    );
}

async fn organization(app: &TestApp, key: &str, id: &str) -> Value {
    app.get(&format!("/api/v1/organizations/{id}"), key)
        .await
        .json()
        .await
        .expect("organization")
}

/// The organization's `secret_expires_at`, parsed.
async fn secret_expiry(
    app: &TestApp,
    key: &str,
    id: &str,
) -> Option<chrono::DateTime<chrono::Utc>> {
    organization(app, key, id).await["secret_expires_at"]
        .as_str()
        .map(|t| t.parse().expect("time"))
}

async fn forget_secret_expiry(app: &TestApp) {
    sqlx::query("update organization set secret_expires_at = null")
        .execute(&app.pool)
        .await
        .expect("cleared");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn the_secret_expiry_follows_every_validation_and_roles_are_named(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let key = msp.owner_key.clone();
    let created: Value = connect(&app, &key, app.connect_body("contoso"))
        .await
        .json()
        .await
        .expect("json");
    let id = created["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let reported: chrono::DateTime<chrono::Utc> = created["validation"]["secret"]["expires_at"]
        .as_str()
        .expect("the report knows the expiry")
        .parse()
        .expect("time");
    assert_eq!(
        created["organization"]["secret_expires_at"]
            .as_str()
            .map(|t| t.parse::<chrono::DateTime<chrono::Utc>>().expect("time")),
        Some(reported),
        "on create"
    );
    assert_eq!(secret_expiry(&app, &key, &id).await, Some(reported));
    let user_administrator = tenantry_domain::capabilities::roles::USER_ADMINISTRATOR;
    // Contoso's app also holds Exchange Administrator, for the Exchange admin API.
    assert_eq!(
        created["validation"]["directory_roles"],
        json!([
            {"id": tenantry_domain::capabilities::roles::EXCHANGE_ADMINISTRATOR, "name": "Exchange Administrator"},
            {"id": user_administrator, "name": "User Administrator"}
        ])
    );
    assert_eq!(
        created["validation"]["directory_role_status"]["granted"],
        json!([{"id": user_administrator, "name": "User Administrator"}])
    );

    // Re-validating on request sets it.
    forget_secret_expiry(&app).await;
    let validated = app
        .post_json(
            &format!("/api/v1/organizations/{id}/validate"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(validated.status(), 200);
    assert_eq!(secret_expiry(&app, &key, &id).await, Some(reported));

    // Automatic re-validation sets it (the first scan, which reads the expiry too, is
    // taken off the queue so only the re-validation can).
    forget_secret_expiry(&app).await;
    sqlx::query("delete from job where kind = 'discovery'")
        .execute(&app.pool)
        .await
        .expect("no scan");
    let principal = app.store.authenticate(&key).await.expect("key");
    app.store
        .scope(&principal)
        .schedule_revalidation(id.parse().expect("id"))
        .await
        .expect("queued");
    make_due(&app, "revalidate", &id).await;
    app.run_pending_jobs().await;
    assert_eq!(revalidate_job(&app, &key, &id).await["state"], "completed");
    assert_eq!(secret_expiry(&app, &key, &id).await, Some(reported));

    // A new secret brings its own expiry.
    let end = (chrono::Utc::now() + chrono::Duration::days(200))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
        .parse::<chrono::DateTime<chrono::Utc>>()
        .expect("time");
    let new_secret = tenantry_graph_sim::scenario::SecretSpec {
        key_id: uuid::Uuid::new_v4(),
        value: "NEW8Q~rotated-secret-value-0123456789ab".to_owned(),
        display_name: "rotated".to_owned(),
        start: chrono::Utc::now() - chrono::Duration::days(1),
        end,
    };
    app.change_tenant("contoso", |t| t.apps[0].secrets.push(new_secret.clone()));
    let rotated = app
        .request(
            Method::PUT,
            &format!("/api/v1/organizations/{id}/credentials"),
            Some(&key),
        )
        .json(&json!({"client_id": app.demo("contoso").app().client_id, "client_secret": new_secret.value}))
        .send()
        .await
        .expect("sent");
    assert_eq!(rotated.status(), 200);
    assert_eq!(secret_expiry(&app, &key, &id).await, Some(end));
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn made_up_credentials_never_learn_whether_another_msp_connected_a_tenant(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let first = app.create_msp("First MSP").await;
    let second = app.create_msp("Second MSP").await;
    assert_eq!(
        connect(&app, &first.owner_key, app.connect_body("contoso"))
            .await
            .status(),
        201
    );
    let made_up = |name: &str| {
        let mut body = app.connect_body(name);
        body["client_id"] = json!(uuid::Uuid::new_v4());
        body["client_secret"] = json!("abc8Q~made-up-secret-value-0123456789xyz");
        body
    };
    // The connected tenant and one nobody connected answer alike.
    let mut answers = Vec::new();
    for name in ["contoso", "tailspin"] {
        let problem = assert_problem(
            connect(&app, &second.owner_key, made_up(name)).await,
            422,
            "INVALID_CREDENTIALS",
        )
        .await;
        answers.push((problem["reason"].clone(), problem["aadsts_code"].clone()));
    }
    assert_eq!(answers[0], answers[1]);
    // A made-up secret for the connected tenant's real app is just a wrong secret.
    let mut wrong_secret = app.connect_body("contoso");
    wrong_secret["client_secret"] = json!("abc8Q~made-up-secret-value-0123456789xyz");
    let problem = assert_problem(
        connect(&app, &second.owner_key, wrong_secret).await,
        422,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_eq!(problem["reason"], "secret_invalid");
    // Credentials that work for the tenant learn that it is taken.
    assert_problem(
        connect(&app, &second.owner_key, app.connect_body("contoso")).await,
        409,
        "TENANT_ALREADY_BOUND",
    )
    .await;
    let count: i64 = sqlx::query_scalar("select count(*) from organization")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(count, 1);
}
