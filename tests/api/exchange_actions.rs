//! Exchange Online actions against the simulator, checked by what Exchange holds
//! afterwards (a new scan reads it back): shared mailboxes and their FullAccess, SendAs
//! and SendOnBehalf holders, distribution groups and their members (already a member and
//! not a member are successes with a note), forwarding (to an outside address only with
//! an approval), conversion to shared and hiding; bad input, unknown targets and a 429
//! storm.

use serde_json::{Value, json};
use sqlx::PgPool;
use tenantry_domain::Role;

use crate::exchange::act;
use crate::helpers::{TestApp, TestMsp, assert_problem};

/// Opens `actions` to the owner's key without approval.
pub(crate) async fn open(app: &TestApp, msp: &TestMsp, organization: &str, actions: &[&str]) {
    for action in actions {
        let response = app
            .request(
                reqwest::Method::PUT,
                &format!("/api/v1/organizations/{organization}/policies/{action}"),
                Some(&msp.owner_key),
            )
            .json(&json!({"approval": "none"}))
            .send()
            .await
            .expect("policy");
        assert_eq!(response.status(), 200, "{action}");
    }
}

/// The action after the worker ran what was queued.
pub(crate) async fn finished(app: &TestApp, key: &str, action: &Value) -> Value {
    app.run_pending_jobs().await;
    app.get(
        &format!("/api/v1/actions/{}", action["id"].as_str().expect("id")),
        key,
    )
    .await
    .json()
    .await
    .expect("action")
}

/// An admin key of another person approves `action`.
async fn approve(app: &TestApp, msp: &TestMsp, action: &Value, reason: &str) {
    let (_, admin) = app.key_for(msp, Role::Admin).await;
    let approved = app
        .post_json(
            &format!(
                "/api/v1/actions/{}/approve",
                action["id"].as_str().expect("id")
            ),
            &admin,
            json!({"reason": reason}),
        )
        .await;
    assert_eq!(approved.status(), 200);
}

/// A new discovery run, finished.
pub(crate) async fn rescan(app: &TestApp, key: &str, organization: &str) {
    let scan = app
        .post_json(
            &format!("/api/v1/organizations/{organization}/discovery-runs"),
            key,
            json!({}),
        )
        .await;
    assert_eq!(scan.status(), 202);
    app.run_pending_jobs().await;
}

async fn mailbox(app: &TestApp, key: &str, organization: &str, address: &str) -> Value {
    let response = app
        .get(
            &format!("/api/v1/organizations/{organization}/mailboxes/{address}"),
            key,
        )
        .await;
    assert_eq!(response.status(), 200, "{address}");
    response.json().await.expect("mailbox")
}

fn holds(list: &Value, who: &str) -> bool {
    list.as_array().is_some_and(|l| {
        l.iter()
            .any(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(who)))
    })
}

fn cmdlets(app: &TestApp, name: &str) -> usize {
    app.sim
        .requests()
        .iter()
        .filter(|r| r.cmdlet.as_deref() == Some(name) && r.status == 200)
        .count()
}

#[sqlx::test]
async fn shared_mailboxes_and_their_access_are_managed_through_exchange(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let organization = crate::helpers::connect(&app, &msp, "contoso").await;
    app.run_pending_jobs().await;
    open(
        &app,
        &msp,
        &organization,
        &[
            "create_shared_mailbox",
            "grant_mailbox_access",
            "revoke_mailbox_access",
        ],
    )
    .await;
    let contoso = app.demo("contoso");
    let domain = contoso.domains[0].clone();
    let (alice, bob) = (
        contoso.user_upn(20).expect("upn"),
        contoso.user_upn(21).expect("upn"),
    );
    let key = &msp.owner_key;
    let address = format!("projects@{domain}");

    // The dry run names the cmdlet and its parameters, and sends nothing.
    let dry = act(
        &app,
        key,
        &organization,
        json!({"action": "create_shared_mailbox", "target": address, "parameters": {"display_name": "Projects"}, "dry_run": true}),
        "dry",
    )
    .await;
    assert_eq!(dry["steps"][0]["path"], "New-Mailbox", "{dry}");
    assert_eq!(
        dry["steps"][0]["body"],
        json!({"Name": "projects", "DisplayName": "Projects", "PrimarySmtpAddress": address, "Shared": true})
    );
    assert_eq!(cmdlets(&app, "New-Mailbox"), 0);

    let created = act(
        &app,
        key,
        &organization,
        json!({"action": "create_shared_mailbox", "target": address, "parameters": {"display_name": "Projects"}}),
        "create",
    )
    .await;
    let done = finished(&app, key, &created).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(cmdlets(&app, "New-Mailbox"), 1);

    // The new mailbox is not in the inventory yet: Exchange itself finds it.
    let mut requests = Vec::new();
    for (n, (user, access)) in [
        (&alice, "full_access"),
        (&bob, "send_as"),
        (&bob, "send_on_behalf"),
    ]
    .into_iter()
    .enumerate()
    {
        let granted = act(
            &app,
            key,
            &organization,
            json!({"action": "grant_mailbox_access", "target": address, "parameters": {"user": user, "access": access}}),
            &format!("grant-{n}"),
        )
        .await;
        requests.push(granted);
    }
    for granted in &requests {
        let done = finished(&app, key, granted).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    rescan(&app, key, &organization).await;
    let shown = mailbox(&app, key, &organization, &address).await;
    assert_eq!(
        shown["data"]["recipientTypeDetails"], "SharedMailbox",
        "{shown}"
    );
    assert!(holds(&shown["data"]["fullAccess"], &alice), "{shown}");
    assert!(holds(&shown["data"]["sendAs"], &bob), "{shown}");
    assert!(
        !shown["data"]["grantSendOnBehalfTo"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{shown}"
    );

    // Revoking twice: the second finds nothing to remove and still succeeds.
    for n in 0..2 {
        let revoked = act(
            &app,
            key,
            &organization,
            json!({"action": "revoke_mailbox_access", "target": address, "parameters": {"user": alice, "access": "full_access"}}),
            &format!("revoke-{n}"),
        )
        .await;
        assert_eq!(finished(&app, key, &revoked).await["state"], "succeeded");
    }
    rescan(&app, key, &organization).await;
    let shown = mailbox(&app, key, &organization, &address).await;
    assert!(!holds(&shown["data"]["fullAccess"], &alice), "{shown}");

    // Bad input and unknown objects are refused before anything is stored.
    let post = |body: Value, idempotency: &'static str| {
        app.request(
            reqwest::Method::POST,
            &format!("/api/v1/organizations/{organization}/actions"),
            Some(key),
        )
        .header("Idempotency-Key", idempotency)
        .json(&body)
        .send()
    };
    let taken = post(
        json!({"action": "create_shared_mailbox", "target": format!("info@{}", contoso.domains.get(1).unwrap_or(&domain)), "parameters": {"display_name": "Info again"}}),
        "bad-1",
    )
    .await
    .expect("request");
    assert_problem(taken, 422, "INVALID_REQUEST").await;
    let no_name = post(
        json!({"action": "create_shared_mailbox", "target": format!("x@{domain}"), "parameters": {}}),
        "bad-2",
    )
    .await
    .expect("request");
    let problem = assert_problem(no_name, 422, "INVALID_REQUEST").await;
    assert_eq!(
        problem["errors"][0]["field"], "parameters.display_name",
        "{problem}"
    );
    let right = post(
        json!({"action": "grant_mailbox_access", "target": address, "parameters": {"user": alice, "access": "owner"}}),
        "bad-3",
    )
    .await
    .expect("request");
    let problem = assert_problem(right, 422, "INVALID_REQUEST").await;
    assert_eq!(
        problem["errors"][0]["field"], "parameters.access",
        "{problem}"
    );
    let nobody = post(
        json!({"action": "grant_mailbox_access", "target": format!("nobody@{domain}"), "parameters": {"user": alice}}),
        "bad-4",
    )
    .await
    .expect("request");
    assert_problem(nobody, 422, "TARGET_NOT_FOUND").await;
    let stranger = post(
        json!({"action": "grant_mailbox_access", "target": address, "parameters": {"user": format!("stranger@{domain}")}}),
        "bad-5",
    )
    .await
    .expect("request");
    assert_problem(stranger, 422, "TARGET_NOT_FOUND").await;
    // A user's mailbox named by its alias is still that user: the Global Administrator's
    // mailbox is guarded like the account.
    let admin_alias = contoso
        .user_upn(0)
        .expect("upn")
        .split('@')
        .next()
        .expect("alias")
        .to_owned();
    let guarded = post(
        json!({"action": "grant_mailbox_access", "target": admin_alias, "parameters": {"user": alice}}),
        "bad-6",
    )
    .await
    .expect("request");
    assert_problem(guarded, 403, "PRIVILEGED_TARGET").await;
    // Exchange's identities take wildcards; Tenantry looks up exact ones only.
    let wildcard = post(
        json!({"action": "grant_mailbox_access", "target": "*", "parameters": {"user": alice}}),
        "bad-7",
    )
    .await
    .expect("request");
    assert_problem(wildcard, 422, "TARGET_NOT_FOUND").await;
    assert_eq!(cmdlets(&app, "New-Mailbox"), 1, "refusals send nothing");
}

#[sqlx::test]
async fn distribution_groups_are_created_and_their_members_changed(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let organization = crate::helpers::connect(&app, &msp, "contoso").await;
    app.run_pending_jobs().await;
    open(
        &app,
        &msp,
        &organization,
        &[
            "create_distribution_group",
            "add_distribution_group_member",
            "remove_distribution_group_member",
        ],
    )
    .await;
    let contoso = app.demo("contoso");
    let domain = contoso.domains[0].clone();
    let upn = |i: u32| contoso.user_upn(i).expect("upn");
    let key = &msp.owner_key;
    let address = format!("project-team@{domain}");
    let created = act(
        &app,
        key,
        &organization,
        json!({"action": "create_distribution_group", "target": address, "parameters": {"display_name": "Project Team", "type": "security"}}),
        "create",
    )
    .await;
    let done = finished(&app, key, &created).await;
    assert_eq!(done["state"], "succeeded", "{done}");

    // A bulk add (the group found by Exchange, it is not in the inventory yet), then the
    // same again: already a member is a success with a note.
    let mut notes = Vec::new();
    for n in 0..2 {
        let added = act(
            &app,
            key,
            &organization,
            json!({"action": "add_distribution_group_member", "target": [upn(61), upn(62)], "parameters": {"group": address}}),
            &format!("add-{n}"),
        )
        .await;
        let done = finished(&app, key, &added).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        notes.push(done["steps"].clone());
    }
    assert!(
        notes[1].to_string().contains("already a member"),
        "{}",
        notes[1]
    );
    let removed = act(
        &app,
        key,
        &organization,
        json!({"action": "remove_distribution_group_member", "target": [upn(62), upn(63)], "parameters": {"group": "Project Team"}}),
        "remove",
    )
    .await;
    let done = finished(&app, key, &removed).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(done["steps"].to_string().contains("not a member"), "{done}");

    rescan(&app, key, &organization).await;
    let groups = app
        .get_all(
            &format!("/api/v1/organizations/{organization}/distribution-groups?q=project"),
            key,
        )
        .await;
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["data"]["security"], true);
    let members: Value = app
        .get(
            &format!(
                "/api/v1/organizations/{organization}/distribution-groups/{}/members",
                groups[0]["id"].as_str().expect("id")
            ),
            key,
        )
        .await
        .json()
        .await
        .expect("members");
    let addresses: Vec<&str> = members["data"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| {
            m["primary_smtp_address"]
                .as_str()
                .or(m["primarySmtpAddress"].as_str())
        })
        .collect();
    assert_eq!(addresses.len(), 1, "{members}");
    assert!(addresses[0].eq_ignore_ascii_case(&upn(61)), "{members}");

    let unknown = app
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/organizations/{organization}/actions"),
            Some(key),
        )
        .header("Idempotency-Key", "unknown")
        .json(&json!({"action": "add_distribution_group_member", "target": upn(64), "parameters": {"group": "no-such-group"}}))
        .send()
        .await
        .expect("request");
    assert_problem(unknown, 422, "TARGET_NOT_FOUND").await;
}

#[sqlx::test]
async fn forwarding_outside_the_organization_waits_for_an_approval(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let organization = crate::helpers::connect(&app, &msp, "contoso").await;
    app.run_pending_jobs().await;
    open(
        &app,
        &msp,
        &organization,
        &[
            "set_mailbox_forwarding",
            "convert_to_shared_mailbox",
            "hide_from_address_lists",
        ],
    )
    .await;
    let contoso = app.demo("contoso");
    let upn = |i: u32| contoso.user_upn(i).expect("upn");
    let key = &msp.owner_key;

    // To a colleague: a recipient of the tenant, no approval needed.
    let inside = act(
        &app,
        key,
        &organization,
        json!({"action": "set_mailbox_forwarding", "target": upn(30), "parameters": {"forward_to": upn(31)}}),
        "inside",
    )
    .await;
    assert_eq!(inside["state"], "queued", "{inside}");
    assert_eq!(finished(&app, key, &inside).await["state"], "succeeded");

    // Outside: approval, even though the policy asks for none.
    let outside = act(
        &app,
        key,
        &organization,
        json!({"action": "set_mailbox_forwarding", "target": upn(32), "parameters": {"forward_to": "archive@partner-example.org", "keep_copy": false}}),
        "outside",
    )
    .await;
    assert_eq!(outside["state"], "pending_approval", "{outside}");
    assert!(
        outside["approval"]["reason"]
            .as_str()
            .or(outside["approval_reason"].as_str())
            .unwrap_or_default()
            .contains("partner-example.org"),
        "{outside}"
    );
    let before = cmdlets(&app, "Set-Mailbox");
    app.run_pending_jobs().await;
    assert_eq!(
        cmdlets(&app, "Set-Mailbox"),
        before,
        "nothing sent before approval"
    );
    approve(&app, &msp, &outside, "customer asked in ticket 88").await;
    assert_eq!(finished(&app, key, &outside).await["state"], "succeeded");

    // The owner may let outside forwarding follow the policy like any other request, on
    // set_mailbox_forwarding only.
    let put_policy = |action: &'static str, body: Value| {
        app.request(
            reqwest::Method::PUT,
            &format!("/api/v1/organizations/{organization}/policies/{action}"),
            Some(key),
        )
        .json(&body)
        .send()
    };
    let misplaced = put_policy(
        "clear_mailbox_forwarding",
        json!({"approval": "none", "outside_forwarding_approval": false}),
    )
    .await
    .expect("policy");
    let problem = assert_problem(misplaced, 422, "INVALID_REQUEST").await;
    assert_eq!(
        problem["errors"][0]["field"], "outside_forwarding_approval",
        "{problem}"
    );
    let waived = put_policy(
        "set_mailbox_forwarding",
        json!({"approval": "none", "outside_forwarding_approval": false}),
    )
    .await
    .expect("policy");
    assert_eq!(waived.status(), 200);
    let waived: Value = waived.json().await.expect("policy");
    assert_eq!(waived["outside_forwarding_approval"], false);
    let straight = act(
        &app,
        key,
        &organization,
        json!({"action": "set_mailbox_forwarding", "target": upn(35), "parameters": {"forward_to": "archive@partner-example.org"}}),
        "outside-waived",
    )
    .await;
    assert_eq!(straight["state"], "queued", "{straight}");
    assert_eq!(finished(&app, key, &straight).await["state"], "succeeded");

    for (n, action) in ["convert_to_shared_mailbox", "hide_from_address_lists"]
        .iter()
        .enumerate()
    {
        let done = act(
            &app,
            key,
            &organization,
            json!({"action": action, "target": upn(33)}),
            &format!("mailbox-{n}"),
        )
        .await;
        assert_eq!(
            finished(&app, key, &done).await["state"],
            "succeeded",
            "{action}"
        );
    }

    rescan(&app, key, &organization).await;
    let colleague = mailbox(&app, key, &organization, &upn(30)).await;
    assert!(
        colleague["data"]["forwardingAddress"].is_string(),
        "{colleague}"
    );
    assert!(
        colleague["data"]["outsideForwardingDomain"].is_null(),
        "{colleague}"
    );
    let leaving = mailbox(&app, key, &organization, &upn(32)).await;
    assert_eq!(
        leaving["data"]["outsideForwardingDomain"], "partner-example.org",
        "{leaving}"
    );
    assert_eq!(leaving["data"]["deliverToMailboxAndForward"], false);
    let converted = mailbox(&app, key, &organization, &upn(33)).await;
    assert_eq!(
        converted["data"]["recipientTypeDetails"], "SharedMailbox",
        "{converted}"
    );
    assert_eq!(
        converted["data"]["hiddenFromAddressLists"], true,
        "{converted}"
    );

    let bad = app
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/organizations/{organization}/actions"),
            Some(key),
        )
        .header("Idempotency-Key", "bad")
        .json(&json!({"action": "set_mailbox_forwarding", "target": upn(34), "parameters": {"forward_to": "not an address"}}))
        .send()
        .await
        .expect("request");
    let problem = assert_problem(bad, 422, "INVALID_REQUEST").await;
    assert_eq!(problem["errors"][0]["field"], "parameters.forward_to");
}

#[sqlx::test]
async fn exchange_actions_finish_through_a_throttling_storm(pool: PgPool) {
    use tenantry_graph_sim::{FaultSpec, Faults};
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let organization = crate::helpers::connect(&app, &msp, "contoso").await;
    app.run_pending_jobs().await;
    open(
        &app,
        &msp,
        &organization,
        &["add_distribution_group_member"],
    )
    .await;
    let contoso = app.demo("contoso");
    let key = &msp.owner_key;
    let targets: Vec<String> = (40..50)
        .map(|i| contoso.user_upn(i).expect("upn"))
        .collect();
    let added = act(
        &app,
        key,
        &organization,
        json!({"action": "add_distribution_group_member", "target": targets, "parameters": {"group": "sales-dl"}}),
        "storm",
    )
    .await;
    // The storm begins once the request is stored: the worker meets it.
    let mut faults = Faults::default();
    faults.tenants.insert(
        contoso.id.to_string(),
        FaultSpec {
            error_rate: 0.5,
            error_statuses: vec![429],
            retry_after_secs: Some(0.05),
            ..Default::default()
        },
    );
    app.sim.state().set_faults(faults);
    let mut done = finished(&app, key, &added).await;
    for _ in 0..20 {
        if done["state"] != "queued" && done["state"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        done = finished(&app, key, &added).await;
    }
    app.sim.state().set_faults(Faults::default());
    assert_eq!(done["state"], "succeeded", "{done}");
    let throttled = app
        .sim
        .requests()
        .iter()
        .filter(|r| r.status == 429 && r.path.contains("/InvokeCommand"))
        .count();
    assert!(throttled > 0, "the storm reached the cmdlets");
    assert_eq!(
        cmdlets(&app, "Add-DistributionGroupMember"),
        10,
        "each member added exactly once"
    );
}

/// The contoso user's Graph object (what Microsoft holds now).
async fn graph_user(app: &TestApp, tenant: &str, upn: &str) -> Value {
    app.graph(
        tenant,
        reqwest::Method::GET,
        &format!("/users/{upn}?$select=id,accountEnabled,assignedLicenses"),
        None,
    )
    .await
    .json()
    .await
    .expect("user")
}

#[sqlx::test]
async fn offboarding_runs_every_step_after_one_approval_exactly_as_its_dry_run_showed(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let organization = crate::helpers::connect(&app, &msp, "contoso").await;
    app.run_pending_jobs().await;
    let contoso = app.demo("contoso");
    // A member of Sales DL (the demo's members 25 to 34), given a licence and a Graph
    // group before the scan the offboarding reads its memberships from.
    let (leaver, delegate) = (
        contoso.user_upn(30).expect("upn"),
        contoso.user_upn(31).expect("upn"),
    );
    let key = &msp.owner_key;
    let user = graph_user(&app, "contoso", &leaver).await;
    let user_id = user["id"].as_str().expect("id").to_owned();
    let licensed = app
        .graph(
            "contoso",
            reqwest::Method::POST,
            &format!("/users/{user_id}/assignLicense"),
            Some(json!({"addLicenses": [{"skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df", "disabledPlans": []}], "removeLicenses": []})),
        )
        .await;
    let status = licensed.status();
    assert_eq!(status, 200, "{}", licensed.text().await.unwrap_or_default());
    let groups: Value = app
        .graph("contoso", reqwest::Method::GET, "/groups?$top=50", None)
        .await
        .json()
        .await
        .expect("groups");
    let group = groups["value"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| {
            g["securityEnabled"] == true
                && g["mailEnabled"] != true
                && !g["groupTypes"].to_string().contains("Dynamic")
        })
        .expect("a security group")
        .clone();
    let joined = app
        .graph(
            "contoso",
            reqwest::Method::POST,
            &format!("/groups/{}/members/$ref", group["id"].as_str().expect("id")),
            Some(json!({"@odata.id": format!("{}/v1.0/directoryObjects/{user_id}", app.sim.base_url())})),
        )
        .await;
    let status = joined.status();
    let answer = joined.text().await.unwrap_or_default();
    assert!(
        status.is_success() || answer.contains("already exist"),
        "{status} {answer}"
    );
    rescan(&app, key, &organization).await;

    let request = json!({"action": "offboard_user", "target": leaver,
        "parameters": {"delegate": delegate, "forward_to_delegate": true}});
    let mut dry_request = request.clone();
    dry_request["dry_run"] = json!(true);
    let dry = act(&app, key, &organization, dry_request, "dry").await;
    assert_eq!(dry["decision"], "would_wait_for_approval", "{dry}");
    let planned = step_keys(&dry);
    let names: Vec<&str> = planned.iter().map(|(n, _, _)| n.as_str()).collect();
    for expected in [
        "block sign-in",
        "reset password",
        "revoke sign-in sessions",
        "leave distribution group Sales DL",
        "convert mailbox to shared",
        "grant full access",
        "forward mail to the delegate",
        "hide from address lists",
        "remove 1 licence(s)",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    let group_name = group["displayName"].as_str().expect("name");
    assert!(
        names.contains(&format!("leave group {group_name}").as_str()),
        "{names:?}"
    );
    assert!(
        dry.to_string().contains("[generated at execution"),
        "no password in a plan"
    );

    // One approval covers every step; nothing is sent before it.
    let requested = act(&app, key, &organization, request, "offboard").await;
    assert_eq!(requested["state"], "pending_approval", "{requested}");
    app.run_pending_jobs().await;
    assert_eq!(
        graph_user(&app, "contoso", &leaver).await["accountEnabled"],
        true
    );
    approve(&app, &msp, &requested, "HR ticket 512").await;
    let done = finished(&app, key, &requested).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(
        step_keys(&done),
        planned,
        "what ran is what the dry run showed"
    );
    let licence_step = done["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| {
            s["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/assignLicense"))
        })
        .expect("licence step");
    assert_eq!(
        licence_step["detail"]["licenses_returned"], 1,
        "{licence_step}"
    );

    // What Microsoft holds now.
    let after = graph_user(&app, "contoso", &leaver).await;
    assert_eq!(after["accountEnabled"], false);
    assert_eq!(after["assignedLicenses"], json!([]));
    rescan(&app, key, &organization).await;
    let shown = mailbox(&app, key, &organization, &leaver).await;
    assert_eq!(
        shown["data"]["recipientTypeDetails"], "SharedMailbox",
        "{shown}"
    );
    assert_eq!(shown["data"]["hiddenFromAddressLists"], true, "{shown}");
    assert!(shown["data"]["forwardingAddress"].is_string(), "{shown}");
    let detail: Value = app
        .get(
            &format!("/api/v1/organizations/{organization}/users/{user_id}"),
            key,
        )
        .await
        .json()
        .await
        .expect("user");
    assert!(
        !detail.to_string().contains(group_name),
        "left the group: {detail}"
    );
    let sales = app
        .get_all(
            &format!("/api/v1/organizations/{organization}/distribution-groups?q=Sales"),
            key,
        )
        .await;
    assert!(
        !sales[0]
            .to_string()
            .to_lowercase()
            .contains(&leaver.to_lowercase()),
        "{sales:?}"
    );
}

#[sqlx::test]
async fn offboarding_where_exchange_is_not_granted_skips_those_steps_with_the_reason(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let organization = crate::helpers::connect(&app, &msp, "tailspin").await;
    app.run_pending_jobs().await;
    open(&app, &msp, &organization, &["offboard_user"]).await;
    let tailspin = app.demo("tailspin");
    let (leaver, delegate) = (
        tailspin.user_upn(30).expect("upn"),
        tailspin.user_upn(31).expect("upn"),
    );
    let key = &msp.owner_key;
    let requested = act(
        &app,
        key,
        &organization,
        json!({"action": "offboard_user", "target": leaver, "parameters": {"delegate": delegate}}),
        "offboard",
    )
    .await;
    let done = finished(&app, key, &requested).await;
    assert_eq!(done["state"], "partially_succeeded", "{done}");
    let steps = done["steps"].as_array().expect("steps");
    for step in steps {
        // Tailspin's app holds no Exchange role (and no role to reset passwords).
        if step["method"] == "EXCHANGE" || step["state"] == "skipped" {
            assert_eq!(step["state"], "skipped", "{step}");
            assert_eq!(step["error_code"], "CAPABILITY_UNAVAILABLE", "{step}");
            assert!(
                step["error_message"]
                    .as_str()
                    .is_some_and(|m| m.contains("grant it")),
                "{step}"
            );
        } else {
            assert_eq!(step["state"], "succeeded", "{step}");
        }
    }
    assert!(steps.iter().any(|s| s["method"] == "EXCHANGE"), "{done}");
    assert_eq!(
        graph_user(&app, "tailspin", &leaver).await["accountEnabled"],
        false
    );
    assert_eq!(
        app.sim
            .requests()
            .iter()
            .filter(|r| r.path.contains("/InvokeCommand")
                && r.tenant.as_deref() == Some(&tailspin.id.to_string()))
            .filter(|r| r.cmdlet.as_deref().is_some_and(|c| !c.starts_with("Get-")))
            .count(),
        0,
        "no cmdlet was sent for a skipped step"
    );
}

fn step_keys(action: &Value) -> Vec<(String, String, String)> {
    action["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_owned(),
                s["method"].as_str().unwrap_or_default().to_owned(),
                s["path"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[sqlx::test]
async fn bec_remediation_as_one_request_is_dry_run_approved_and_run_step_by_step(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let organization = crate::helpers::connect(&app, &msp, "contoso").await;
    app.run_pending_jobs().await;
    let key = &msp.owner_key;

    // The technician finds the mailbox forwarding outside through the API.
    let outside = app
        .get_all(
            &format!("/api/v1/organizations/{organization}/mailboxes?forwarding=outside"),
            key,
        )
        .await;
    assert_eq!(outside.len(), 1, "{outside:?}");
    let victim = outside[0]["data"]["userPrincipalName"]
        .as_str()
        .expect("upn")
        .to_owned();
    // The organization itself says so.
    let shown: Value = app
        .get(&format!("/api/v1/organizations/{organization}"), key)
        .await
        .json()
        .await
        .expect("organization");
    assert_eq!(
        shown["warnings"][0]["code"], "OUTSIDE_FORWARDING",
        "{shown}"
    );
    assert!(
        shown["warnings"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("outside-example.net")),
        "{shown}"
    );

    let dry = act(
        &app,
        key,
        &organization,
        json!({"action": "remediate_compromised_user", "target": victim, "dry_run": true}),
        "dry",
    )
    .await;
    assert_eq!(dry["decision"], "would_wait_for_approval", "{dry}");
    let planned = step_keys(&dry);
    let names: Vec<&str> = planned.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        &names[..3],
        ["reset password", "revoke sign-in sessions", "block sign-in"]
    );
    assert!(names.contains(&"clear mailbox forwarding"), "{names:?}");
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("disable inbox rule"))
            .count(),
        3,
        "the attacker's three rules, hidden one included, not the junk rule: {names:?}"
    );
    assert!(
        app.sim
            .requests()
            .iter()
            .all(|r| r.cmdlet.as_deref().is_none_or(|c| c.starts_with("Get-"))),
        "a dry run changes nothing"
    );

    let requested = act(
        &app,
        key,
        &organization,
        json!({"action": "remediate_compromised_user", "target": victim}),
        "bec",
    )
    .await;
    assert_eq!(requested["state"], "pending_approval", "{requested}");
    approve(&app, &msp, &requested, "Defender alert 4411").await;
    let done = finished(&app, key, &requested).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(
        step_keys(&done),
        planned,
        "what ran is what the dry run showed"
    );
    assert!(done["password_available"] == true, "{done}");

    let rules: Value = app
        .get(
            &format!("/api/v1/organizations/{organization}/users/{victim}/inbox-rules"),
            key,
        )
        .await
        .json()
        .await
        .expect("rules");
    for rule in rules["data"].as_array().expect("rules") {
        assert_eq!(rule["enabled"], rule["built_in"] == true, "{rule}");
    }
    rescan(&app, key, &organization).await;
    let outside = app
        .get_all(
            &format!("/api/v1/organizations/{organization}/mailboxes?forwarding=outside"),
            key,
        )
        .await;
    assert!(outside.is_empty(), "{outside:?}");
    let shown: Value = app
        .get(&format!("/api/v1/organizations/{organization}"), key)
        .await
        .json()
        .await
        .expect("organization");
    assert!(shown.get("warnings").is_none(), "{shown}");
}

#[sqlx::test]
async fn only_the_listed_inbox_rules_are_disabled_when_the_request_names_them(pool: PgPool) {
    use tenantry_graph_sim::scenario::exchange::CONTOSO_FORWARDING_USER;
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let organization = crate::helpers::connect(&app, &msp, "contoso").await;
    app.run_pending_jobs().await;
    open(&app, &msp, &organization, &["disable_inbox_rules"]).await;
    let key = &msp.owner_key;
    let victim = app
        .demo("contoso")
        .user_upn(CONTOSO_FORWARDING_USER)
        .expect("upn");
    let bad = app
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/organizations/{organization}/actions"),
            Some(key),
        )
        .header("Idempotency-Key", "bad")
        .json(&json!({"action": "disable_inbox_rules", "target": victim, "parameters": {"rules": "Invoices"}}))
        .send()
        .await
        .expect("request");
    let problem = assert_problem(bad, 422, "INVALID_REQUEST").await;
    assert_eq!(problem["errors"][0]["field"], "parameters.rules");

    // "invoices" by name (any case), and the built-in junk rule, which is never touched.
    let only = act(
        &app,
        key,
        &organization,
        json!({"action": "disable_inbox_rules", "target": victim, "parameters": {"rules": ["invoices", "Junk E-Mail Rule"]}}),
        "only",
    )
    .await;
    let done = finished(&app, key, &only).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(cmdlets(&app, "Disable-InboxRule"), 1, "{done}");
    let rules: Value = app
        .get(
            &format!("/api/v1/organizations/{organization}/users/{victim}/inbox-rules"),
            key,
        )
        .await
        .json()
        .await
        .expect("rules");
    for rule in rules["data"].as_array().expect("rules") {
        let expected = rule["name"] != "Invoices";
        assert_eq!(rule["enabled"], expected, "{rule}");
    }
}
