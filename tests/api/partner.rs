//! Partner mode end to end against the simulator's partner scenario (adatum and its six
//! customers): creating the connection and its refusals, the GDAP sync and every badge,
//! consent links and their callback (accepted, declined, forged, replayed, expired,
//! another MSP's), connecting customers, discovery on a partner-mode organization,
//! consent revoked after connecting, moving an organization between models, rotation,
//! deletion, and another MSP's key seeing none of it.

use serde_json::{Value, json};
use sqlx::PgPool;
use tenantry_domain::Role;
use tenantry_graph_sim::scenario::{self, ConsentChoice, ConsentSpec};

use crate::helpers::{TestApp, TestMsp, assert_problem};

async fn spawn(pool: PgPool) -> TestApp {
    let app = TestApp::spawn_on(pool, scenario::partner_demo(), |_| {}).await;
    // The consent page accepts only registered redirect URIs: register this service's.
    let partner = app.demo("adatum");
    app.sim
        .state()
        .set_redirect_uris(
            "adatum",
            partner.app().client_id,
            vec![format!("{}/consent/callback", app.url)],
        )
        .expect("redirect URIs");
    app
}

fn connection_body(app: &TestApp) -> Value {
    let partner = app.demo("adatum");
    json!({
        "name": "Adatum Partners",
        "tenant_id": partner.id,
        "client_id": partner.app().client_id,
        "client_secret": partner.secret_value(),
    })
}

async fn create_connection(app: &TestApp, msp: &TestMsp) -> Value {
    let response = app
        .post_json(
            "/api/v1/partner-connections",
            &msp.owner_key,
            connection_body(app),
        )
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.expect("connection")
}

async fn customers(app: &TestApp, key: &str, connection: &str) -> Vec<Value> {
    app.get_all(
        &format!("/api/v1/partner-connections/{connection}/customers"),
        key,
    )
    .await
}

fn customer<'a>(list: &'a [Value], app: &TestApp, name: &str) -> &'a Value {
    let id = app.demo(name).id.to_string();
    list.iter()
        .find(|c| c["tenant_id"] == id.as_str())
        .unwrap_or_else(|| panic!("customer {name} listed"))
}

/// A client that does not follow redirects, as a browser's view of `/adminconsent`.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Opens a consent link as the customer's admin; returns where Microsoft redirects.
async fn open_consent_link(app: &TestApp, key: &str, connection: &str, name: &str) -> String {
    let tenant = app.demo(name).id;
    let response = app
        .post_json(
            &format!("/api/v1/partner-connections/{connection}/customers/{tenant}/consent-link"),
            key,
            json!({}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let link: Value = response.json().await.expect("link");
    let url = link["url"].as_str().expect("url");
    assert!(url.starts_with(&app.sim.base_url()), "{url}");
    let answer = browser().get(url).send().await.expect("consent page");
    assert_eq!(answer.status(), 302, "the admin's answer redirects");
    answer.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned()
}

#[sqlx::test]
async fn a_partner_connection_syncs_badges_consents_connects_and_discovers(pool: PgPool) {
    let app = spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let partner = app.demo("adatum");
    let (logs, guard) = crate::helpers::Logs::capture();
    let created = create_connection(&app, &msp).await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["tenant_id"], partner.id.to_string());
    assert_eq!(created["credential_type"], "secret");
    assert_eq!(created["redirect_uri_registered"], true, "{created}");
    assert!(
        created["consent_scope"]
            .as_array()
            .is_some_and(|s| s.iter().any(|p| p == "User.ReadWrite.All")),
        "{created}"
    );
    assert!(
        !created.to_string().contains(partner.secret_value()),
        "the secret is never answered"
    );

    // The first sync was queued with the connection: GDAP, then every customer verified.
    app.run_pending_jobs().await;
    let list = customers(&app, &msp.owner_key, &id).await;
    assert_eq!(list.len(), 6, "every GDAP customer is listed");
    let fourth = customer(&list, &app, "fourthcoffee");
    assert_eq!(fourth["consent"]["status"], "complete", "{fourth}");
    assert_eq!(fourth["gdap"]["status"], "active");
    assert_eq!(fourth["gdap"]["can_consent"], true);
    assert_eq!(fourth["directory_roles"]["status"], "complete", "{fourth}");
    assert_eq!(fourth["ready_to_connect"], true);
    let alpine = customer(&list, &app, "alpineskihouse");
    assert_eq!(alpine["consent"]["status"], "not_consented", "{alpine}");
    assert!(alpine["consent"]["fix"].is_string());
    let wide = customer(&list, &app, "wideworldimporters");
    assert_eq!(wide["gdap"]["can_consent"], false, "{wide}");
    assert_eq!(wide["gdap"]["tone"], "warning");
    let margie = customer(&list, &app, "margiestravel");
    assert_eq!(
        margie["directory_roles"]["status"], "roles_missing",
        "{margie}"
    );
    assert!(
        margie["directory_roles"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Exchange Administrator")),
        "{margie}"
    );
    let lamna = customer(&list, &app, "lamna");
    assert_eq!(lamna["gdap"]["status"], "expiring", "{lamna}");
    let proseware = customer(&list, &app, "proseware");
    assert_eq!(
        proseware["consent"]["status"], "permissions_missing",
        "roles not yet in tokens: {proseware}"
    );
    assert!(
        !proseware["consent"]["missing_permissions"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );

    // Consent for Alpine Ski House: link → admin accepts → callback → verified by itself.
    app.sim
        .state()
        .set_consent(
            "alpineskihouse",
            ConsentSpec {
                choice: ConsentChoice::Accept,
                propagation_seconds: 0,
                service_principal_seconds: Some(0),
            },
        )
        .expect("consent");
    let location = open_consent_link(&app, &msp.owner_key, &id, "alpineskihouse").await;
    assert!(
        location.starts_with(&format!("{}/consent/callback?", app.url)),
        "{location}"
    );
    assert!(location.contains("admin_consent=True"), "{location}");
    let page = reqwest::get(&location).await.expect("callback");
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .expect("html")
            .contains("consent was given")
    );
    let alpine: Value = app
        .get(
            &format!(
                "/api/v1/partner-connections/{id}/customers/{}",
                app.demo("alpineskihouse").id
            ),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("customer");
    assert_eq!(alpine["consent"]["status"], "propagating", "{alpine}");
    // The queued verification turns it green without anyone asking.
    app.run_pending_jobs().await;
    let list = customers(&app, &msp.owner_key, &id).await;
    assert_eq!(
        customer(&list, &app, "alpineskihouse")["consent"]["status"],
        "complete"
    );
    // The same answer again: used up, nothing changes.
    let replay = reqwest::get(&location).await.expect("replay");
    assert_eq!(replay.status(), 400);
    assert!(replay.text().await.expect("html").contains("already used"));

    // Connect two consented customers and one that is not.
    let tenants = json!([
        app.demo("fourthcoffee").id,
        app.demo("alpineskihouse").id,
        app.demo("wideworldimporters").id
    ]);
    let response = app
        .post_json(
            &format!("/api/v1/partner-connections/{id}/customers/connect"),
            &msp.owner_key,
            json!({"tenant_ids": tenants}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let connected: Value = response.json().await.expect("results");
    let results = connected["data"].as_array().expect("results");
    assert_eq!(results[0]["outcome"], "created", "{connected}");
    assert_eq!(results[1]["outcome"], "created");
    assert_eq!(results[2]["outcome"], "refused");
    assert_eq!(results[2]["problem"]["code"], "CUSTOMER_NOT_READY");
    let organization = results[0]["organization"]["id"]
        .as_str()
        .expect("org")
        .to_owned();
    assert_eq!(results[0]["organization"]["credential_source"], "partner");
    assert_eq!(
        results[0]["organization"]["partner_connection_id"],
        id.as_str()
    );
    assert_eq!(
        results[0]["organization"]["client_id"],
        partner.app().client_id.to_string()
    );

    // Discovery on a partner-mode organization: the partner's app, the customer's tenant.
    app.run_pending_jobs().await;
    let users = app
        .get_all(
            &format!("/api/v1/organizations/{organization}/users"),
            &msp.owner_key,
        )
        .await;
    let runs = app
        .get_all(
            &format!("/api/v1/organizations/{organization}/discovery-runs"),
            &msp.owner_key,
        )
        .await;
    assert_eq!(
        users.len(),
        60,
        "Fourth Coffee's users are in the inventory: {runs:?}"
    );
    let own_token_requests = app
        .sim
        .requests()
        .iter()
        .filter(|r| {
            r.path
                .contains(&format!("{}/oauth2", app.demo("fourthcoffee").id))
        })
        .count();
    assert!(
        own_token_requests >= 1,
        "tokens were asked in the customer tenant"
    );

    // Consent revoked after connecting: the next token is refused (AADSTS7000229), the
    // organization says why and its jobs stop instead of retrying.
    app.sim
        .state()
        .remove_service_principal("fourthcoffee", partner.app().client_id)
        .expect("revoke");
    app.graph.forget_tokens();
    let run = app
        .post_json(
            &format!("/api/v1/organizations/{organization}/discovery-runs"),
            &msp.owner_key,
            json!({}),
        )
        .await;
    assert_eq!(run.status(), 202);
    app.run_pending_jobs().await;
    let org: Value = app
        .get(
            &format!("/api/v1/organizations/{organization}"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("org");
    assert_eq!(org["status"], "needs_attention", "{org}");
    assert!(
        org["status_reason"]
            .as_str()
            .is_some_and(|r| r.contains("AADSTS7000229")),
        "{org}"
    );
    let retrying: i64 = sqlx::query_scalar(
        "select count(*) from job where kind = 'discovery' and state in ('available', 'retryable', 'scheduled')",
    )
    .fetch_one(&app.pool)
    .await
    .expect("jobs");
    assert_eq!(retrying, 0, "the discovery job stopped for good");

    // Deleting the connection is refused while organizations use it, unless forced.
    let refused = app
        .delete(&format!("/api/v1/partner-connections/{id}"), &msp.owner_key)
        .await;
    assert_problem(refused, 409, "PARTNER_CONNECTION_IN_USE").await;
    let forced = app
        .delete(
            &format!("/api/v1/partner-connections/{id}?force=true"),
            &msp.owner_key,
        )
        .await;
    assert_eq!(forced.status(), 200);
    let org: Value = app
        .get(
            &format!("/api/v1/organizations/{organization}"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("org");
    assert_eq!(org["status"], "needs_attention");
    assert_eq!(org["credential_source"], Value::Null, "{org}");
    let kept: i64 =
        sqlx::query_scalar("select count(*) from inventory_user where organization_id = $1::uuid")
            .bind(&organization)
            .fetch_one(&app.pool)
            .await
            .expect("inventory");
    assert!(kept > 0, "the inventory stays");

    // No secret anywhere it could leak: the logs, job arguments, audit events, stored
    // customers; nor the consent link's state in the logs.
    drop(guard);
    let logged = logs.text();
    assert!(
        logged.contains("partner connection created"),
        "logs were captured"
    );
    assert!(
        !logged.contains(partner.secret_value()),
        "the secret is never logged"
    );
    let state = location
        .split("state=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .expect("state in the callback");
    assert!(!logged.contains(state), "the consent state is never logged");
    let leaked: i64 = sqlx::query_scalar(
        "select (select count(*) from job where args::text like '%' || $1 || '%')
              + (select count(*) from audit_event where parameters::text like '%' || $1 || '%')
              + (select count(*) from partner_customer where verification::text like '%' || $1 || '%')",
    )
    .bind(partner.secret_value())
    .fetch_one(&app.pool)
    .await
    .expect("leak check");
    assert_eq!(leaked, 0);
}

#[sqlx::test]
async fn consent_callbacks_with_forged_expired_declined_or_missing_state_change_nothing(
    pool: PgPool,
) {
    let app = spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let id = create_connection(&app, &msp).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.run_pending_jobs().await;
    // Bulk links: one for every listed customer whose consent is not complete.
    let response = app
        .post_json(
            &format!("/api/v1/partner-connections/{id}/consent-links"),
            &msp.owner_key,
            json!({}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let links: Value = response.json().await.expect("links");
    let mut pending: Vec<&str> = links["data"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| {
            assert!(
                l["url"].as_str().is_some_and(|u| u.contains("state=")),
                "{l}"
            );
            l["display_name"].as_str().expect("name")
        })
        .collect();
    pending.sort_unstable();
    assert_eq!(
        pending,
        ["Alpine Ski House", "Proseware Inc", "Wide World Importers"],
        "every customer not yet complete, and only those"
    );
    let callback = |query: &str| format!("{}/consent/callback?{query}", app.url);

    let forged = reqwest::get(callback(&format!(
        "admin_consent=True&tenant={}&state={}",
        app.demo("alpineskihouse").id,
        "ab".repeat(32)
    )))
    .await
    .expect("forged");
    assert_eq!(forged.status(), 400);
    let text = forged.text().await.expect("html");
    assert!(text.contains("not issued"), "{text}");
    let missing = reqwest::get(callback("admin_consent=True"))
        .await
        .expect("no state");
    assert_eq!(missing.status(), 400);
    let script = reqwest::get(callback(
        "state=%3Cscript%3Ealert(1)%3C/script%3E&admin_consent=True",
    ))
    .await
    .expect("script");
    assert_eq!(script.status(), 400);
    assert!(
        !script.text().await.expect("html").contains("<script>"),
        "nothing is echoed"
    );

    // Expired: a link older than an hour.
    let location = open_consent_link(&app, &msp.owner_key, &id, "alpineskihouse").await;
    sqlx::query("update consent_request set expires_at = now() - interval '1 minute'")
        .execute(&app.pool)
        .await
        .expect("age the link");
    let expired = reqwest::get(&location).await.expect("expired");
    assert_eq!(expired.status(), 400);
    assert!(expired.text().await.expect("html").contains("expired"));

    // Declined by the admin: the customer says so, with the AADSTS code.
    app.sim
        .state()
        .set_consent(
            "alpineskihouse",
            ConsentSpec {
                choice: ConsentChoice::Decline,
                ..ConsentSpec::default()
            },
        )
        .expect("decline");
    let location = open_consent_link(&app, &msp.owner_key, &id, "alpineskihouse").await;
    assert!(location.contains("error=access_denied"), "{location}");
    let declined = reqwest::get(&location).await.expect("declined");
    assert_eq!(declined.status(), 200);
    let alpine: Value = app
        .get(
            &format!(
                "/api/v1/partner-connections/{id}/customers/{}",
                app.demo("alpineskihouse").id
            ),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("customer");
    assert_eq!(alpine["consent"]["status"], "declined", "{alpine}");
    assert!(
        alpine["consent"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("AADSTS65004")),
        "{alpine}"
    );
    let used: i64 =
        sqlx::query_scalar("select count(*) from consent_request where used_at is not null")
            .fetch_one(&app.pool)
            .await
            .expect("count");
    assert_eq!(used, 1, "only the declined answer used a state");
    let issued: i64 = sqlx::query_scalar("select count(*) from consent_request")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(issued, 5, "three bulk links and two single ones");
}

#[sqlx::test]
async fn creating_a_connection_refuses_bad_input_wrong_credentials_and_single_tenant_apps(
    pool: PgPool,
) {
    let app = spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let path = "/api/v1/partner-connections";
    let (_, admin) = app.key_for(&msp, Role::Admin).await;
    let forbidden = app.post_json(path, &admin, connection_body(&app)).await;
    assert_problem(forbidden, 403, "FORBIDDEN").await;

    let mut bad = connection_body(&app);
    bad["client_id"] = json!("not-a-guid");
    bad["name"] = json!("");
    let body = assert_problem(
        app.post_json(path, &msp.owner_key, bad).await,
        422,
        "INVALID_REQUEST",
    )
    .await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"name") && fields.contains(&"client_id"),
        "{body}"
    );

    let mut wrong = connection_body(&app);
    wrong["client_secret"] = json!("wrong8Q~secret-value-000000000000000000");
    let body = assert_problem(
        app.post_json(path, &msp.owner_key, wrong).await,
        422,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_eq!(body["reason"], "secret_invalid");

    let mut unknown = connection_body(&app);
    unknown["capabilities"] = json!(["teleportation"]);
    assert_problem(
        app.post_json(path, &msp.owner_key, unknown).await,
        422,
        "INVALID_REQUEST",
    )
    .await;

    // Narrowed to discovery: the consent scope is what discovery needs, no more.
    let mut narrowed = connection_body(&app);
    narrowed["capabilities"] = json!(["discovery"]);
    let response = app.post_json(path, &msp.owner_key, narrowed).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("connection");
    let expected: Vec<String> = tenantry_domain::capabilities::required_permissions(Some(&[
        tenantry_domain::capabilities::Capability::Discovery,
    ]))
    .into_iter()
    .collect();
    assert_eq!(created["consent_scope"], json!(expected));
    assert_eq!(created["capabilities"], json!(["discovery"]));
    assert!(
        !created["consent_scope"]
            .as_array()
            .expect("scope")
            .iter()
            .any(|p| p == "UserAuthenticationMethod.ReadWrite.All"),
        "no write permission a scan does not need"
    );
    let id = created["id"].as_str().expect("id").to_owned();
    app.run_pending_jobs().await;
    let list = customers(&app, &msp.owner_key, &id).await;
    assert_eq!(
        customer(&list, &app, "fourthcoffee")["consent"]["status"],
        "complete"
    );
    let deleted = app
        .delete(&format!("/api/v1/partner-connections/{id}"), &msp.owner_key)
        .await;
    assert_eq!(deleted.status(), 200);

    // The app made single-tenant in Entra: no customer could consent to it.
    app.change_tenant("adatum", |t| {
        t.apps[0].sign_in_audience = scenario::SignInAudience::AzureADMyOrg;
    });
    assert_problem(
        app.post_json(path, &msp.owner_key, connection_body(&app))
            .await,
        422,
        "PARTNER_APP_NOT_MULTITENANT",
    )
    .await;
    let stored: i64 = sqlx::query_scalar("select count(*) from partner_connection")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(stored, 0, "nothing refused is stored");
}

#[sqlx::test]
async fn another_msps_key_sees_no_partner_connection_customer_or_link(pool: PgPool) {
    let app = spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let other = app.create_msp("Contoso MSP").await;
    let id = create_connection(&app, &msp).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.run_pending_jobs().await;
    let tenant = app.demo("alpineskihouse").id;
    let listed: Value = app
        .get("/api/v1/partner-connections", &other.owner_key)
        .await
        .json()
        .await
        .expect("list");
    assert_eq!(listed["data"], json!([]));
    for path in [
        format!("/api/v1/partner-connections/{id}"),
        format!("/api/v1/partner-connections/{id}/customers"),
        format!("/api/v1/partner-connections/{id}/customers/{tenant}"),
    ] {
        assert_problem(app.get(&path, &other.owner_key).await, 404, "NOT_FOUND").await;
    }
    for path in [
        format!("/api/v1/partner-connections/{id}/customers/{tenant}/consent-link"),
        format!("/api/v1/partner-connections/{id}/consent-links"),
        format!("/api/v1/partner-connections/{id}/sync"),
        format!("/api/v1/partner-connections/{id}/customers/{tenant}/verify"),
    ] {
        assert_problem(
            app.post_json(&path, &other.owner_key, json!({})).await,
            404,
            "NOT_FOUND",
        )
        .await;
    }
    let connect = app
        .post_json(
            &format!("/api/v1/partner-connections/{id}/customers/connect"),
            &other.owner_key,
            json!({"tenant_ids": [tenant]}),
        )
        .await;
    assert_problem(connect, 404, "NOT_FOUND").await;
    assert_problem(
        app.delete(
            &format!("/api/v1/partner-connections/{id}?force=true"),
            &other.owner_key,
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
}

/// The partner demo with one more customer, Tailwind Traders, that also has an app
/// registration of its own (the per-tenant model) beside the partner app's principal.
fn scenario_with_a_tenant_in_both_models() -> scenario::Scenario {
    use tenantry_graph_sim::TenantSpec;
    use tenantry_graph_sim::scenario::partner::roles;
    let mut demo = scenario::partner_demo();
    let partner = demo.tenants[0].clone();
    let mut tailwind = TenantSpec::healthy("tailwind", "Tailwind Traders", 20);
    let through_partner = TenantSpec::customer_of(&partner, "tailwind", "Tailwind Traders", 20);
    tailwind.apps.push(through_partner.apps[0].clone());
    demo.tenants[0] = partner.with_relationship(scenario::RelationshipSpec::active(
        &tailwind,
        &[roles::GLOBAL_ADMINISTRATOR, roles::USER_ADMINISTRATOR],
        100,
        730,
    ));
    demo.tenants.push(tailwind);
    demo
}

async fn connect_through(app: &TestApp, key: &str, connection: &str, name: &str) -> Value {
    let response = app
        .post_json(
            &format!("/api/v1/partner-connections/{connection}/customers/connect"),
            key,
            json!({"tenant_ids": [app.demo(name).id]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("results");
    body["data"][0].clone()
}

async fn inventory_users(app: &TestApp, organization: &str) -> i64 {
    sqlx::query_scalar("select count(*) from inventory_user where organization_id = $1::uuid")
        .bind(organization)
        .fetch_one(&app.pool)
        .await
        .expect("inventory")
}

#[sqlx::test]
async fn an_organization_moves_to_partner_mode_and_back_keeping_its_inventory_and_acts(
    pool: PgPool,
) {
    let app = TestApp::spawn_on(pool, scenario_with_a_tenant_in_both_models(), |_| {}).await;
    let msp = app.create_msp("Northwind MSP").await;
    // Connected the per-tenant way first, and scanned.
    let organization = crate::helpers::connect(&app, &msp, "tailwind").await;
    app.run_pending_jobs().await;
    assert_eq!(inventory_users(&app, &organization).await, 20);

    let connection = create_connection(&app, &msp).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.run_pending_jobs().await;
    let moved = connect_through(&app, &msp.owner_key, &connection, "tailwind").await;
    assert_eq!(moved["outcome"], "moved", "{moved}");
    assert_eq!(moved["organization"]["id"], organization.as_str());
    assert_eq!(moved["organization"]["credential_source"], "partner");
    assert_eq!(
        inventory_users(&app, &organization).await,
        20,
        "the inventory stays"
    );
    let own_credential: i64 = sqlx::query_scalar(
        "select count(*) from organization_credential where organization_id = $1::uuid",
    )
    .bind(&organization)
    .fetch_one(&app.pool)
    .await
    .expect("credential rows");
    assert_eq!(
        own_credential, 0,
        "one credential per organization: the partner's"
    );
    // Connecting it again changes nothing.
    let again = connect_through(&app, &msp.owner_key, &connection, "tailwind").await;
    assert_eq!(again["outcome"], "already_connected");

    // An action in partner mode: the partner's app, in Tailwind's tenant.
    let response = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/organizations/{organization}/policies/revoke_sessions"),
            Some(&msp.owner_key),
        )
        .json(&json!({"approval": "none"}))
        .send()
        .await
        .expect("policy");
    assert_eq!(response.status(), 200);
    // A user who holds no admin role (users 0–2 do), so the privileged guard stays out.
    let (_, upn) = crate::helpers::sim_user(&app, "tailwind", 10).await;
    let requested = app
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/organizations/{organization}/actions"),
            Some(&msp.owner_key),
        )
        .header("Idempotency-Key", "ticket-1")
        .json(&json!({"action": "revoke_sessions", "target": upn}))
        .send()
        .await
        .expect("request");
    assert_eq!(requested.status(), 201);
    let action: Value = requested.json().await.expect("action");
    app.run_pending_jobs().await;
    let done: Value = app
        .get(
            &format!("/api/v1/actions/{}", action["id"].as_str().expect("id")),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("action");
    assert_eq!(done["state"], "succeeded", "{done}");
    let tailwind = app.demo("tailwind").id.to_string();
    let revoked = app
        .sim
        .requests()
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.path.ends_with("/revokeSignInSessions")
                && r.tenant.as_deref() == Some(tailwind.as_str())
        })
        .count();
    assert_eq!(
        revoked, 1,
        "Graph received the write in the customer's tenant"
    );

    // And back to its own app registration: the binding is cleared.
    let own = app.demo("tailwind");
    let response = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/organizations/{organization}/credentials"),
            Some(&msp.owner_key),
        )
        .json(&json!({"client_id": own.app().client_id, "client_secret": own.secret_value()}))
        .send()
        .await
        .expect("replace");
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let back: Value = app
        .get(
            &format!("/api/v1/organizations/{organization}"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("org");
    assert_eq!(back["credential_source"], "own", "{back}");
    assert_eq!(back["partner_connection_id"], Value::Null);
    assert_eq!(inventory_users(&app, &organization).await, 20);
}

#[sqlx::test]
async fn rotating_the_partner_credential_with_twenty_organizations_fails_no_job(pool: PgPool) {
    let app = TestApp::spawn_on(pool, scenario::partner::partner_at_scale(20, 3), |_| {}).await;
    let msp = app.create_msp("Northwind MSP").await;
    let partner = app.demo("scalepartner").clone();
    let response = app
        .post_json(
            "/api/v1/partner-connections",
            &msp.owner_key,
            json!({"name": "Scale", "tenant_id": partner.id, "client_id": partner.app().client_id,
                   "client_secret": partner.secret_value()}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let connection = response.json::<Value>().await.expect("connection")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.run_pending_jobs().await;
    let tenants: Vec<String> = app.scenario.tenants[1..]
        .iter()
        .map(|t| t.id.to_string())
        .collect();
    let response = app
        .post_json(
            &format!("/api/v1/partner-connections/{connection}/customers/connect"),
            &msp.owner_key,
            json!({"tenant_ids": tenants}),
        )
        .await;
    let connected: Value = response.json().await.expect("connected");
    let organizations: Vec<String> = connected["data"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            assert_eq!(r["outcome"], "created", "{r}");
            r["organization"]["id"].as_str().expect("id").to_owned()
        })
        .collect();
    assert_eq!(organizations.len(), 20);
    app.run_pending_jobs().await;

    // A new secret is added to the app in Entra, and scans are running when it is put in.
    let new_secret = "rot8Q~new-secret-value-0000000000000000000".to_owned();
    app.change_tenant("scalepartner", |t| {
        let mut added = t.apps[0].secrets[0].clone();
        added.key_id = uuid::Uuid::now_v7();
        added.value = new_secret.clone();
        t.apps[0].secrets.push(added);
    });
    let workers = app.start_workers();
    for organization in &organizations {
        let run = app
            .post_json(
                &format!("/api/v1/organizations/{organization}/discovery-runs"),
                &msp.owner_key,
                json!({}),
            )
            .await;
        assert_eq!(run.status(), 202);
    }
    let rotated = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/partner-connections/{connection}/credentials"),
            Some(&msp.owner_key),
        )
        .json(&json!({"client_secret": new_secret}))
        .send()
        .await
        .expect("rotate");
    assert_eq!(rotated.status(), 200);
    // Then the old secret is removed in Entra: everything from now on must use the new one.
    wait_for_runs(&app, 40).await;
    let old = partner.secret_value().to_owned();
    app.change_tenant("scalepartner", |t| {
        t.apps[0].secrets.retain(|s| s.value != old)
    });
    for organization in &organizations {
        app.post_json(
            &format!("/api/v1/organizations/{organization}/discovery-runs"),
            &msp.owner_key,
            json!({}),
        )
        .await;
    }
    wait_for_runs(&app, 60).await;
    drop(workers);
    let states: Vec<(String, i64)> =
        sqlx::query_as("select state, count(*) from discovery_run group by state order by state")
            .fetch_all(&app.pool)
            .await
            .expect("runs");
    assert_eq!(
        states,
        [("succeeded".to_owned(), 60)],
        "every scan succeeded"
    );
    let failed: i64 = sqlx::query_scalar(
        "select count(*) from job where state = 'discarded' or (state = 'completed' and attempt > 1)",
    )
    .fetch_one(&app.pool)
    .await
    .expect("jobs");
    assert_eq!(failed, 0, "no job failed or needed another attempt");
}

/// Waits until `count` discovery runs have succeeded (at most 60 s).
async fn wait_for_runs(app: &TestApp, count: i64) {
    for _ in 0..600 {
        let done: i64 = sqlx::query_scalar(
            "select count(*) from discovery_run where state not in ('queued', 'running')",
        )
        .fetch_one(&app.pool)
        .await
        .expect("runs");
        if done >= count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{count} discovery runs did not finish within 60 s");
}

#[sqlx::test]
async fn a_certificate_partner_connection_works_and_an_unregistered_one_is_refused(pool: PgPool) {
    let app = spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let partner = app.demo("adatum").clone();
    let generate = || async {
        let response = app
            .post_json("/api/v1/certificates", &msp.owner_key, json!({}))
            .await;
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.expect("certificate")
    };
    let body = |generated: &Value| {
        json!({"name": "Adatum (certificate)", "tenant_id": partner.id,
               "client_id": partner.app().client_id,
               "certificate": {"generated_id": generated["id"]}})
    };
    let unregistered = generate().await;
    let refused = app
        .post_json(
            "/api/v1/partner-connections",
            &msp.owner_key,
            body(&unregistered),
        )
        .await;
    let problem = assert_problem(refused, 422, "INVALID_CREDENTIALS").await;
    assert_eq!(problem["reason"], "certificate_not_registered", "{problem}");

    // Registered on the app in Entra (the simulator's control API), it connects.
    let pem = unregistered["certificate_pem"]
        .as_str()
        .expect("pem")
        .to_owned();
    app.change_tenant("adatum", |t| *t = t.clone().with_certificate(&pem));
    let created = app
        .post_json(
            "/api/v1/partner-connections",
            &msp.owner_key,
            body(&unregistered),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("connection");
    assert_eq!(created["credential_type"], "certificate");
    assert!(created["certificate_thumbprint"].is_string());
    let id = created["id"].as_str().expect("id").to_owned();
    // The public certificate, as a .cer file for Entra; never the key.
    let cer = app
        .get(
            &format!("/api/v1/partner-connections/{id}/certificate.cer"),
            &msp.owner_key,
        )
        .await;
    assert_eq!(cer.status(), 200);
    assert_eq!(cer.headers()["content-type"], "application/pkix-cert");
    let der = cer.bytes().await.expect("der");
    assert_eq!(der.first(), Some(&0x30), "DER starts with a SEQUENCE");
    assert!(!String::from_utf8_lossy(&der).contains("PRIVATE KEY"));
    app.run_pending_jobs().await;
    let list = customers(&app, &msp.owner_key, &id).await;
    assert_eq!(
        customer(&list, &app, "fourthcoffee")["consent"]["status"],
        "complete",
        "client assertions work in customer tenants too"
    );
    let private_keys: i64 = sqlx::query_scalar(
        "select count(*) from partner_connection where sealed_secret::text like '%PRIVATE KEY%'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("sealed");
    assert_eq!(private_keys, 0, "the key is sealed");
}

#[sqlx::test]
async fn a_gdap_relationship_that_ends_shows_on_the_customer_and_its_organization(pool: PgPool) {
    let app = spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let connection = create_connection(&app, &msp).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.run_pending_jobs().await;
    let connected = connect_through(&app, &msp.owner_key, &connection, "fourthcoffee").await;
    let organization = connected["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.run_pending_jobs().await;

    // The customer terminates the relationship in its admin center.
    let fourth = app.demo("fourthcoffee").id;
    let relationship = app
        .demo("adatum")
        .gdap_relationships
        .iter()
        .find(|r| r.customer_tenant_id == fourth)
        .expect("relationship")
        .clone()
        .with_status(scenario::RelationshipStatus::Terminated);
    app.sim
        .state()
        .put_relationship("adatum", relationship)
        .expect("terminate");
    let sync = app
        .post_json(
            &format!("/api/v1/partner-connections/{connection}/sync"),
            &msp.owner_key,
            json!({}),
        )
        .await;
    assert_eq!(sync.status(), 202);
    app.run_pending_jobs().await;
    let list = customers(&app, &msp.owner_key, &connection).await;
    let badge = &customer(&list, &app, "fourthcoffee")["gdap"];
    assert_eq!(badge["status"], "ended", "{badge}");
    assert_eq!(badge["can_consent"], false);
    let org: Value = app
        .get(
            &format!("/api/v1/organizations/{organization}"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("org");
    assert_eq!(org["status"], "needs_attention", "{org}");
    assert!(
        org["status_reason"]
            .as_str()
            .is_some_and(|r| r.contains("GDAP")),
        "{org}"
    );
}

#[sqlx::test]
async fn a_state_answers_only_for_the_msp_connection_and_customer_it_was_issued_for(pool: PgPool) {
    let app = spawn(pool).await;
    let ours = app.create_msp("Northwind MSP").await;
    let theirs = app.create_msp("Contoso MSP").await;
    // Both MSPs connect the same partner app (two MSPs of one partner, say).
    let our_connection = create_connection(&app, &ours).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let their_connection = create_connection(&app, &theirs).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.run_pending_jobs().await;
    app.sim
        .state()
        .set_consent(
            "alpineskihouse",
            ConsentSpec {
                choice: ConsentChoice::Accept,
                propagation_seconds: 0,
                service_principal_seconds: Some(0),
            },
        )
        .expect("consent");
    // Their link, answered: only their customer row moves.
    let location =
        open_consent_link(&app, &theirs.owner_key, &their_connection, "alpineskihouse").await;
    assert_eq!(
        reqwest::get(&location).await.expect("callback").status(),
        200
    );
    let alpine = app.demo("alpineskihouse").id;
    let consented: Vec<(uuid::Uuid, bool)> = sqlx::query_as(
        "select msp_id, consented_at is not null from partner_customer where tenant_id = $1 order by msp_id",
    )
    .bind(alpine)
    .fetch_all(&app.pool)
    .await
    .expect("rows");
    let expected: Vec<(uuid::Uuid, bool)> = {
        let mut rows = vec![(ours.id, false), (theirs.id, true)];
        rows.sort();
        rows
    };
    assert_eq!(
        consented, expected,
        "our customer is untouched by their state"
    );
    // Our key cannot ask a link for their connection, nor read its customer.
    let path =
        format!("/api/v1/partner-connections/{their_connection}/customers/{alpine}/consent-link");
    assert_problem(
        app.post_json(&path, &ours.owner_key, json!({})).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let ours_now: Value = app
        .get(
            &format!("/api/v1/partner-connections/{our_connection}/customers/{alpine}"),
            &ours.owner_key,
        )
        .await
        .json()
        .await
        .expect("customer");
    assert_eq!(
        ours_now["consent"]["consented_at"],
        Value::Null,
        "{ours_now}"
    );
}

#[sqlx::test]
async fn exchange_works_through_a_partner_connection_that_asks_for_it(pool: PgPool) {
    let app = spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let key = &msp.owner_key;
    // The partner app declares Exchange.ManageAsApp on Exchange's own resource, so a
    // connection may ask for the exchange capability and its consent covers it.
    let mut body = connection_body(&app);
    body["capabilities"] = json!(["discovery", "exchange", "disable_account"]);
    let response = app
        .post_json("/api/v1/partner-connections", key, body)
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("connection");
    assert!(
        created["consent_scope"]
            .as_array()
            .is_some_and(|s| s.iter().any(|p| p == "Exchange.ManageAsApp")),
        "{created}"
    );
    let connection = created["id"].as_str().expect("id").to_owned();
    app.run_pending_jobs().await;

    // A customer holding the Exchange Administrator role: working, checked live in the
    // customer's own Exchange.
    let fourth = connect_through(&app, key, &connection, "fourthcoffee").await;
    assert_eq!(fourth["outcome"], "created", "{fourth}");
    let organization = fourth["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let validation: Value = app
        .get(
            &format!("/api/v1/organizations/{organization}/validation"),
            key,
        )
        .await
        .json()
        .await
        .expect("validation");
    let exchange = validation["capabilities"]
        .as_array()
        .expect("capabilities")
        .iter()
        .find(|c| c["capability"] == "exchange")
        .expect("exchange")
        .clone();
    assert_eq!(exchange["available"], true, "{exchange}");
    assert_eq!(exchange["live_check"], "working", "{exchange}");
    let customer_tenant = app.demo("fourthcoffee").id.to_string();
    assert!(
        app.sim
            .requests()
            .iter()
            .any(|r| r.cmdlet.as_deref() == Some("Get-OrganizationConfig")
                && r.tenant.as_deref() == Some(customer_tenant.as_str())),
        "the probe ran in the customer's Exchange"
    );

    // An Exchange action on the customer, signed with the partner's credential.
    let response = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/organizations/{organization}/policies/hide_from_address_lists"),
            Some(key),
        )
        .json(&json!({"approval": "none"}))
        .send()
        .await
        .expect("policy");
    assert_eq!(response.status(), 200);
    app.run_pending_jobs().await;
    let upn = app.demo("fourthcoffee").user_upn(5).expect("upn");
    let action: Value = app
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/organizations/{organization}/actions"),
            Some(key),
        )
        .header("Idempotency-Key", "hide-1")
        .json(&json!({"action": "hide_from_address_lists", "target": upn}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("action");
    app.run_pending_jobs().await;
    let done: Value = app
        .get(
            &format!(
                "/api/v1/actions/{}",
                action["id"].as_str().expect("id {action}")
            ),
            key,
        )
        .await
        .json()
        .await
        .expect("action");
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(
        app.sim
            .requests()
            .iter()
            .any(|r| r.cmdlet.as_deref() == Some("Set-Mailbox")
                && r.tenant.as_deref() == Some(customer_tenant.as_str())),
        "the cmdlet went to the customer's Exchange"
    );

    // Without the Exchange role in the customer: not available, the role named.
    let margie = connect_through(&app, key, &connection, "margiestravel").await;
    let organization = margie["organization"]["id"]
        .as_str()
        .expect("id {margie}")
        .to_owned();
    let validation: Value = app
        .get(
            &format!("/api/v1/organizations/{organization}/validation"),
            key,
        )
        .await
        .json()
        .await
        .expect("validation");
    let exchange = validation["capabilities"]
        .as_array()
        .expect("capabilities")
        .iter()
        .find(|c| c["capability"] == "exchange")
        .expect("exchange")
        .clone();
    assert_eq!(exchange["available"], false, "{exchange}");
    assert!(
        exchange["missing_directory_role"]
            .to_string()
            .contains("Exchange Administrator"),
        "{exchange}"
    );
}
