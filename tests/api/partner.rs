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

    // No secret anywhere it could leak: job arguments, audit events, stored customers.
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
