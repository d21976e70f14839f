//! Exchange Online through the admin API against the simulator: the exchange capability
//! in the validation report (working, and the Exchange role missing), the mailboxes
//! discovery section (paged, skipped with the reason when refused), and the mailbox
//! inventory with its outside-forwarding flag.

use serde_json::Value;
use sqlx::PgPool;
use tenantry_graph_sim::scenario::exchange::{CONTOSO_FORWARDING_USER, CONTOSO_OUTSIDE_ADDRESS};

use crate::helpers::{TestApp, assert_problem};

fn capability<'a>(validation: &'a Value, name: &str) -> &'a Value {
    validation["capabilities"]
        .as_array()
        .expect("capabilities")
        .iter()
        .find(|c| c["capability"] == name)
        .unwrap_or_else(|| panic!("capability {name} in {validation}"))
}

#[sqlx::test]
async fn mailboxes_are_discovered_with_their_outside_forwarding_flagged(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let response = app
        .post_json(
            "/api/v1/organizations",
            &msp.owner_key,
            app.connect_body("contoso"),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("created");
    let exchange = capability(&created["validation"], "exchange");
    assert_eq!(exchange["available"], true, "{exchange}");
    let organization = created["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let run = created["discovery_run_id"]
        .as_str()
        .expect("run")
        .to_owned();
    let finished = app.finished_run(&msp.owner_key, &organization, &run).await;
    assert_eq!(finished["state"], "succeeded", "{finished}");
    assert_eq!(
        finished["sections"]["mailboxes"]["status"], "done",
        "{finished}"
    );
    assert_eq!(finished["sections"]["mailboxes"]["count"], 255);
    let contoso = app.demo("contoso");
    let invoked = app
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("/InvokeCommand"))
        .count();
    assert!(invoked >= 1, "the admin API was called");

    let path = format!("/api/v1/organizations/{organization}/mailboxes");
    let all = app.get_all(&path, &msp.owner_key).await;
    assert_eq!(all.len(), 255, "a mailbox per user and five shared ones");
    let shared = app
        .get_all(&format!("{path}?type=shared"), &msp.owner_key)
        .await;
    assert_eq!(shared.len(), 5);
    assert!(
        shared
            .iter()
            .all(|m| m["data"]["recipientTypeDetails"] == "SharedMailbox")
    );
    // Shared mailboxes carry who may read them and send as them (the demo grants two
    // FullAccess holders and one SendAs trustee each), never the mailbox's own SELF row.
    for mailbox in &shared {
        let full = mailbox["data"]["fullAccess"]
            .as_array()
            .expect("fullAccess");
        assert_eq!(full.len(), 2, "{mailbox}");
        assert_eq!(
            mailbox["data"]["sendAs"].as_array().map(Vec::len),
            Some(1),
            "{mailbox}"
        );
        assert!(!mailbox.to_string().contains("NT AUTHORITY"), "{mailbox}");
    }
    assert_eq!(
        finished["sections"]["distribution_groups"]["count"], 3,
        "{finished}"
    );
    let groups = app
        .get_all(
            &format!("/api/v1/organizations/{organization}/distribution-groups"),
            &msp.owner_key,
        )
        .await;
    assert_eq!(groups.len(), 3);
    let security = groups
        .iter()
        .find(|g| g["data"]["security"] == true)
        .expect("the mail-enabled security group");
    assert_eq!(security["display_name"], "Finance Approvers");
    let members: Value = app
        .get(
            &format!(
                "/api/v1/organizations/{organization}/distribution-groups/{}/members",
                security["id"].as_str().expect("id")
            ),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("members");
    assert_eq!(
        members["data"].as_array().map(Vec::len),
        Some(5),
        "{members}"
    );
    let searched = app
        .get_all(
            &format!("/api/v1/organizations/{organization}/distribution-groups?q=sales"),
            &msp.owner_key,
        )
        .await;
    assert_eq!(searched.len(), 1);
    let outside = app
        .get_all(&format!("{path}?forwarding=outside"), &msp.owner_key)
        .await;
    assert_eq!(outside.len(), 1, "{outside:?}");
    let victim = &outside[0]["data"];
    assert_eq!(victim["forwardingSmtpAddress"], CONTOSO_OUTSIDE_ADDRESS);
    assert_eq!(victim["outsideForwardingDomain"], "outside-example.net");
    let victim_upn = contoso.user_upn(CONTOSO_FORWARDING_USER).expect("upn");
    assert_eq!(victim["userPrincipalName"], victim_upn.as_str());
    let address = victim["primarySmtpAddress"].as_str().expect("address");
    let one: Value = app
        .get(&format!("{path}/{address}"), &msp.owner_key)
        .await
        .json()
        .await
        .expect("mailbox");
    assert_eq!(one["data"]["guid"], victim["guid"]);
    assert_problem(
        app.get(&format!("{path}/nobody@nowhere.example"), &msp.owner_key)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_problem(
        app.get(&format!("{path}?type=mailbag"), &msp.owner_key)
            .await,
        422,
        "INVALID_REQUEST",
    )
    .await;
    // The victim's inbox rules, read live: hidden ones too, the attacker's flagged.
    let rules: Value = app
        .get(
            &format!("/api/v1/organizations/{organization}/users/{victim_upn}/inbox-rules"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("rules");
    let names: Vec<&str> = rules["data"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        names.len(),
        4,
        "two visible, one hidden, the built-in junk rule: {rules}"
    );
    assert_eq!(rules["suspicious"], 3, "{rules}");
    let junk = rules["data"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["name"] == "Junk E-Mail Rule")
        .expect("junk rule");
    assert_eq!(junk["built_in"], true);
    assert_eq!(junk["suspicious"], serde_json::json!([]));
    let (_, viewer) = app.key_for(&msp, tenantry_domain::Role::Viewer).await;
    assert_problem(
        app.get(
            &format!("/api/v1/organizations/{organization}/users/{victim_upn}/inbox-rules"),
            &viewer,
        )
        .await,
        403,
        "FORBIDDEN",
    )
    .await;

    // Another MSP sees none of it.
    let other = app.create_msp("Contoso MSP").await;
    assert_problem(app.get(&path, &other.owner_key).await, 404, "NOT_FOUND").await;
}

#[sqlx::test]
async fn without_an_exchange_role_the_capability_says_so_and_the_section_is_skipped(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let response = app
        .post_json(
            "/api/v1/organizations",
            &msp.owner_key,
            app.connect_body("tailspin"),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("created");
    let exchange = capability(&created["validation"], "exchange");
    assert_eq!(exchange["available"], false, "{exchange}");
    assert!(
        exchange.to_string().contains("Exchange Administrator"),
        "the missing role is named: {exchange}"
    );
    let (organization, run) = (
        created["organization"]["id"]
            .as_str()
            .expect("id")
            .to_owned(),
        created["discovery_run_id"]
            .as_str()
            .expect("run")
            .to_owned(),
    );
    let finished = app.finished_run(&msp.owner_key, &organization, &run).await;
    let section = &finished["sections"]["mailboxes"];
    assert_eq!(section["status"], "skipped", "{finished}");
    assert!(
        section["permission"]
            .as_str()
            .is_some_and(|p| p.contains("Exchange.ManageAsApp")),
        "{section}"
    );
    // A live read says what to grant.
    let upn = app.demo("tailspin").user_upn(10).expect("upn");
    let refused = app
        .get(
            &format!("/api/v1/organizations/{organization}/users/{upn}/inbox-rules"),
            &msp.owner_key,
        )
        .await;
    let problem = assert_problem(refused, 422, "CAPABILITY_UNAVAILABLE").await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Exchange Administrator")),
        "{problem}"
    );
}

pub(crate) async fn act(
    app: &TestApp,
    key: &str,
    organization: &str,
    body: Value,
    idempotency: &str,
) -> Value {
    let response = app
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/organizations/{organization}/actions"),
            Some(key),
        )
        .header("Idempotency-Key", idempotency)
        .json(&body)
        .send()
        .await
        .expect("request");
    // 200 for a dry run (nothing is stored), 201 for a request.
    let status = response.status();
    let body: Value = response.json().await.expect("action");
    assert!(matches!(status.as_u16(), 200 | 201), "{status} {body}");
    body
}

#[sqlx::test]
async fn bec_remediation_clears_forwarding_and_disables_the_attackers_inbox_rules(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let organization = crate::helpers::connect(&app, &msp, "contoso").await;
    app.run_pending_jobs().await;
    let victim = app
        .demo("contoso")
        .user_upn(CONTOSO_FORWARDING_USER)
        .expect("upn");
    for action in ["clear_mailbox_forwarding", "disable_inbox_rules"] {
        let response = app
            .request(
                reqwest::Method::PUT,
                &format!("/api/v1/organizations/{organization}/policies/{action}"),
                Some(&msp.owner_key),
            )
            .json(&serde_json::json!({"approval": "none"}))
            .send()
            .await
            .expect("policy");
        assert_eq!(response.status(), 200);
    }
    // The dry run shows the cmdlets, and sends nothing to Exchange.
    let before = app.sim.requests().len();
    let dry = act(
        &app,
        &msp.owner_key,
        &organization,
        serde_json::json!({"action": "disable_inbox_rules", "target": victim, "dry_run": true}),
        "dry-1",
    )
    .await;
    let planned = dry["planned_steps"]
        .as_array()
        .or(dry["steps"].as_array())
        .expect("steps");
    assert_eq!(planned[0]["method"], "EXCHANGE", "{dry}");
    assert_eq!(planned[0]["path"], "Get-InboxRule");
    assert!(
        app.sim.requests()[before..]
            .iter()
            .all(|r| !r.path.contains("InvokeCommand")),
        "a dry run calls no cmdlet"
    );

    let cleared = act(
        &app,
        &msp.owner_key,
        &organization,
        serde_json::json!({"action": "clear_mailbox_forwarding", "target": victim}),
        "bec-1",
    )
    .await;
    let rules = act(
        &app,
        &msp.owner_key,
        &organization,
        serde_json::json!({"action": "disable_inbox_rules", "target": victim}),
        "bec-2",
    )
    .await;
    app.run_pending_jobs().await;
    for action in [&cleared, &rules] {
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
    }
    let sent: Vec<String> = app
        .sim
        .requests()
        .iter()
        .filter_map(|r| r.cmdlet.clone())
        .filter(|c| c == "Set-Mailbox" || c == "Disable-InboxRule")
        .collect();
    assert_eq!(
        sent.iter().filter(|c| *c == "Disable-InboxRule").count(),
        3,
        "the three attacker's rules, not the built-in junk rule: {sent:?}"
    );
    assert!(sent.iter().any(|c| c == "Set-Mailbox"));

    // What Exchange says now: no rule of the attacker's is enabled, and a new scan finds
    // no forwarding outside.
    let now: Value = app
        .get(
            &format!("/api/v1/organizations/{organization}/users/{victim}/inbox-rules"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("rules");
    for rule in now["data"].as_array().expect("rules") {
        let built_in = rule["built_in"] == true;
        assert_eq!(rule["enabled"], built_in, "{rule}");
    }
    let scan = app
        .post_json(
            &format!("/api/v1/organizations/{organization}/discovery-runs"),
            &msp.owner_key,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(scan.status(), 202);
    app.run_pending_jobs().await;
    let outside = app
        .get_all(
            &format!("/api/v1/organizations/{organization}/mailboxes?forwarding=outside"),
            &msp.owner_key,
        )
        .await;
    assert!(outside.is_empty(), "{outside:?}");
}

#[sqlx::test]
async fn the_bec_playbook_from_a_signed_alert_skips_what_the_tenant_has_not_granted(pool: PgPool) {
    use crate::webhooks::{deliver_signed, endpoint, event};
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let playbook = serde_json::json!([
        "revoke_sessions",
        "clear_mailbox_forwarding",
        "disable_inbox_rules"
    ]);
    for (tenant, exchange_done) in [("contoso", true), ("tailspin", false)] {
        let organization = crate::helpers::connect(&app, &msp, tenant).await;
        app.run_pending_jobs().await;
        let upn = app
            .demo(tenant)
            .user_upn(CONTOSO_FORWARDING_USER)
            .expect("upn");
        let (id, secret) = endpoint(
            &app,
            &msp.owner_key,
            serde_json::json!({"name": format!("SIEM {tenant}"), "organization_id": organization,
                "rules": [{"event": "user.compromised", "actions": playbook, "approval": "none"}]}),
        )
        .await;
        let response = deliver_signed(
            &app,
            &id,
            &secret,
            &serde_json::json!({"id": format!("alert-{tenant}"), "type": "user.compromised", "target": upn}),
        )
        .await;
        assert_eq!(response.status(), 202);
        let delivery = response.json::<Value>().await.expect("accepted")["id"]
            .as_str()
            .expect("id")
            .to_owned();
        app.run_pending_jobs().await;
        let done = event(&app, &msp.owner_key, &delivery).await;
        let steps = done["outcome"].as_array().expect("outcome");
        assert_eq!(steps.len(), 3, "{done}");
        assert_eq!(steps[0]["state"], "succeeded", "{done}");
        for step in &steps[1..] {
            if exchange_done {
                assert_eq!(step["state"], "succeeded", "{done}");
            } else {
                assert_eq!(step["state"], "skipped", "{done}");
                assert_eq!(step["code"], "CAPABILITY_UNAVAILABLE");
                assert!(step["detail"].is_string());
            }
        }
        assert_eq!(
            done["state"],
            if exchange_done { "completed" } else { "failed" },
            "{done}"
        );
    }
}

#[sqlx::test]
async fn the_exchange_capability_is_checked_live_and_propagating_is_checked_again(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Northwind MSP").await;
    let key = &msp.owner_key;

    // Permission missing: fabrikam's app holds no Exchange.ManageAsApp (and lacks Graph
    // permissions, so the report comes with the refusal); nothing is probed.
    let fabrikam = app
        .post_json("/api/v1/organizations", key, app.connect_body("fabrikam"))
        .await;
    let problem = assert_problem(fabrikam, 422, "MISSING_PERMISSIONS").await;
    let exchange = capability(&problem["validation"], "exchange");
    assert_eq!(exchange["available"], false, "{exchange}");
    assert_eq!(
        exchange["missing_permissions"],
        serde_json::json!(["Exchange.ManageAsApp"]),
        "{exchange}"
    );
    assert!(exchange.get("live_check").is_none(), "{exchange}");

    // Granted, but Exchange's RBAC has not caught up: propagating, unavailable, warned,
    // and checked again on the schedule.
    let contoso = app.demo("contoso");
    assert!(app.sim.state().set_exchange_rbac_delay(
        &contoso.id.to_string(),
        Some(std::time::Duration::from_secs(3600))
    ));
    let created = app
        .post_json("/api/v1/organizations", key, app.connect_body("contoso"))
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("created");
    let exchange = capability(&created["validation"], "exchange");
    assert_eq!(exchange["live_check"], "propagating", "{exchange}");
    assert_eq!(exchange["available"], false, "{exchange}");
    assert!(
        created["validation"]["warnings"]
            .to_string()
            .contains("Get-OrganizationConfig answered 401"),
        "{created}"
    );
    let probes = app
        .sim
        .requests()
        .iter()
        .filter(|r| r.cmdlet.as_deref() == Some("Get-OrganizationConfig"))
        .count();
    assert_eq!(probes, 1, "one live probe per validation");
    let organization = created["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let scheduled: i64 = sqlx::query_scalar(
        "select count(*) from job where kind = 'revalidate' and organization_id = $1::uuid",
    )
    .bind(&organization)
    .fetch_one(&pool)
    .await
    .expect("jobs");
    assert_eq!(scheduled, 1, "a revalidation is scheduled");
    // An Exchange action is refused meanwhile, with the capability named.
    let refused = app
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/organizations/{organization}/actions"),
            Some(key),
        )
        .header("Idempotency-Key", "early")
        .json(&serde_json::json!({"action": "clear_mailbox_forwarding", "target": contoso.user_upn(7).expect("upn")}))
        .send()
        .await
        .expect("request");
    assert_problem(refused, 422, "CAPABILITY_UNAVAILABLE").await;

    // Once Exchange honours the role: working.
    app.sim
        .state()
        .set_exchange_rbac_delay(&contoso.id.to_string(), None);
    let validated: Value = app
        .post_json(
            &format!("/api/v1/organizations/{organization}/validate"),
            key,
            serde_json::json!({}),
        )
        .await
        .json()
        .await
        .expect("validated");
    let exchange = capability(&validated, "exchange");
    assert_eq!(exchange["live_check"], "working", "{exchange}");
    assert_eq!(exchange["available"], true, "{exchange}");
}

#[sqlx::test]
async fn mailboxes_and_group_members_beyond_one_exchange_page_are_all_discovered(pool: PgPool) {
    use tenantry_graph_sim::{Scenario, TenantSpec};
    // 1,200 user mailboxes and 3 shared ones: two pages of Get-Mailbox; a distribution
    // group of 1,100 members: two pages of Get-DistributionGroupMember.
    let big = TenantSpec::healthy("contoso", "Contoso Ltd", 1_200)
        .with_exchange_admin()
        .with_exchange_at_scale(3, 1, 1_100);
    let app = TestApp::spawn_on(pool, Scenario { tenants: vec![big] }, |_| {}).await;
    let msp = app.create_msp("Northwind MSP").await;
    let organization = crate::helpers::connect(&app, &msp, "contoso").await;
    app.run_pending_jobs().await;
    let key = &msp.owner_key;
    let mailboxes = app
        .get_all(
            &format!("/api/v1/organizations/{organization}/mailboxes"),
            key,
        )
        .await;
    assert_eq!(mailboxes.len(), 1_203);
    let pages = app
        .sim
        .requests()
        .iter()
        .filter(|r| r.cmdlet.as_deref() == Some("Get-Mailbox") && r.status == 200)
        .count();
    assert!(pages >= 2, "Get-Mailbox answered in {pages} page(s)");
    let groups = app
        .get_all(
            &format!("/api/v1/organizations/{organization}/distribution-groups"),
            key,
        )
        .await;
    assert_eq!(groups.len(), 1);
    let members = app
        .get_all(
            &format!(
                "/api/v1/organizations/{organization}/distribution-groups/{}/members",
                groups[0]["id"].as_str().expect("id")
            ),
            key,
        )
        .await;
    assert_eq!(members.len(), 1_100);
}

#[sqlx::test]
async fn a_signed_alert_can_run_the_whole_remediation_as_one_action(pool: PgPool) {
    use crate::webhooks::{deliver_signed, endpoint, event};
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    for (tenant, complete) in [("contoso", true), ("tailspin", false)] {
        let organization = crate::helpers::connect(&app, &msp, tenant).await;
        app.run_pending_jobs().await;
        let upn = app
            .demo(tenant)
            .user_upn(CONTOSO_FORWARDING_USER)
            .expect("upn");
        let (id, secret) = endpoint(
            &app,
            &msp.owner_key,
            serde_json::json!({"name": format!("SIEM {tenant}"), "organization_id": organization,
                "rules": [{"event": "user.compromised", "actions": ["remediate_compromised_user"], "approval": "none"}]}),
        )
        .await;
        let response = deliver_signed(
            &app,
            &id,
            &secret,
            &serde_json::json!({"id": format!("alert-{tenant}"), "type": "user.compromised", "target": upn}),
        )
        .await;
        assert_eq!(response.status(), 202);
        let delivery = response.json::<Value>().await.expect("accepted")["id"]
            .as_str()
            .expect("id")
            .to_owned();
        app.run_pending_jobs().await;
        app.run_pending_jobs().await;
        let done = event(&app, &msp.owner_key, &delivery).await;
        let entry = &done["outcome"][0];
        let action: Value = app
            .get(
                &format!(
                    "/api/v1/actions/{}",
                    entry["action_id"].as_str().expect("action id")
                ),
                &msp.owner_key,
            )
            .await
            .json()
            .await
            .expect("action");
        let steps = action["steps"].as_array().expect("steps");
        if complete {
            assert_eq!(action["state"], "succeeded", "{action}");
            assert_eq!(done["state"], "completed", "{done}");
            assert!(steps.iter().all(|s| s["state"] == "succeeded"), "{action}");
        } else {
            // Tailspin grants sign-out but neither Exchange nor the roles to reset
            // passwords or MFA: those steps are recorded skipped, with the reason.
            assert_eq!(action["state"], "partially_succeeded", "{action}");
            let state_of = |name: &str| {
                steps
                    .iter()
                    .find(|s| s["name"] == name)
                    .map(|s| s["state"].clone())
                    .unwrap_or_else(|| panic!("{name} in {action}"))
            };
            assert_eq!(state_of("revoke sign-in sessions"), "succeeded");
            assert_eq!(state_of("clear mailbox forwarding"), "skipped");
            assert_eq!(state_of("disable inbox rules"), "skipped");
            assert!(
                steps
                    .iter()
                    .filter(|s| s["state"] == "skipped")
                    .all(|s| s["error_code"] == "CAPABILITY_UNAVAILABLE"),
                "{action}"
            );
        }
    }
}
