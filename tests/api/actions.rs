//! Identity actions against the simulator, end to end: requests, policies, approvals,
//! the privileged-target guard at request and execution time, self-service, idempotency,
//! dry runs, the one-time password reveal, Microsoft's failure paths, resuming after a
//! crash without repeating a step, and the audit chain.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use tenantry_domain::Role;
use tenantry_graph_sim::{FaultSpec, Faults};

use crate::helpers::{
    TestApp, assert_problem, connect, sim_calls, sim_user, test_engine, test_leader,
};

async fn set_policy(app: &TestApp, key: &str, org: &str, action: &str, policy: Value) {
    let response = app
        .request(
            Method::PUT,
            &format!("/api/v1/organizations/{org}/policies/{action}"),
            Some(key),
        )
        .json(&policy)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
}

async fn request(
    app: &TestApp,
    key: &str,
    org: &str,
    idempotency_key: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut builder = app
        .request(
            Method::POST,
            &format!("/api/v1/organizations/{org}/actions"),
            Some(key),
        )
        .json(&body);
    if let Some(idempotency) = idempotency_key {
        builder = builder.header("Idempotency-Key", idempotency);
    }
    builder.send().await.expect("sent")
}

/// Runs the pending jobs, then returns the action, which must have left the queued,
/// approved and running states.
async fn finished_action(app: &TestApp, key: &str, id: &str) -> Value {
    app.run_pending_jobs().await;
    let body: Value = app
        .get(&format!("/api/v1/actions/{id}"), key)
        .await
        .json()
        .await
        .expect("action");
    assert!(
        !matches!(
            body["state"].as_str(),
            Some("queued" | "running" | "approved")
        ),
        "the action ended: {body}"
    );
    body
}

/// Polls an action until it leaves the waiting and running states (or 60 s pass): for
/// tests whose workers run in the background.
async fn wait_for_action(app: &TestApp, key: &str, id: &str) -> Value {
    for _ in 0..1200 {
        let body: Value = app
            .get(&format!("/api/v1/actions/{id}"), key)
            .await
            .json()
            .await
            .expect("action");
        if !matches!(
            body["state"].as_str(),
            Some("queued" | "running" | "approved")
        ) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("action {id} did not finish in 60 s");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_password_reset_waits_for_four_eyes_then_is_revealed_exactly_once(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Actions MSP").await;
    let (_, technician) = app.key_for(&msp, Role::Technician).await;
    let (_, admin) = app.key_for(&msp, Role::Admin).await;
    let org = connect(&app, &msp, "contoso").await;
    let (user_id, upn) = sim_user(&app, "contoso", 7).await;

    let response = request(
        &app,
        &technician,
        &org,
        Some("reset-7"),
        json!({"action": "password_reset", "target": upn, "requested_by": "Tess (ticket 4711)"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let action: Value = response.json().await.expect("action");
    let id = action["id"].as_str().expect("id").to_owned();
    assert_eq!(
        action["state"], "pending_approval",
        "writes need approval by default"
    );
    assert_eq!(action["targets"][0]["id"], user_id.as_str());
    assert!(action["approval"]["expires_at"].is_string());

    // Four eyes: not the requester, not a technician.
    let own = app
        .post_json(
            &format!("/api/v1/actions/{id}/approve"),
            &technician,
            json!({}),
        )
        .await;
    assert_problem(own, 403, "SELF_APPROVAL").await;
    let (_, other_technician) = app.key_for(&msp, Role::Technician).await;
    let not_approver = app
        .post_json(
            &format!("/api/v1/actions/{id}/approve"),
            &other_technician,
            json!({}),
        )
        .await;
    assert_problem(not_approver, 403, "NOT_AN_APPROVER").await;
    let early = app
        .post_json(
            &format!("/api/v1/actions/{id}/reveal"),
            &technician,
            json!({}),
        )
        .await;
    assert_problem(early, 409, "ACTION_STATE_CONFLICT").await;
    assert_eq!(
        sim_calls(&app, "PATCH", &user_id),
        0,
        "nothing sent before approval"
    );

    let approved = app
        .post_json(
            &format!("/api/v1/actions/{id}/approve"),
            &admin,
            json!({"reason": "caller verified by phone"}),
        )
        .await;
    assert_eq!(approved.status(), 200);
    let approved: Value = approved.json().await.expect("approved");
    assert_eq!(approved["state"], "queued");

    let done = finished_action(&app, &technician, &id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let steps = done["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0]["method"], "PATCH");
    assert_eq!(steps[0]["http_status"], 204);
    assert!(
        steps[0]["ms_request_id"].is_string(),
        "Microsoft's request id kept"
    );
    assert_eq!(
        steps[0]["detail"]["request"]["passwordProfile"]["forceChangePasswordNextSignIn"],
        true
    );
    assert_eq!(sim_calls(&app, "PATCH", &format!("/users/{user_id}")), 1);
    assert!(done["password_available"].as_bool().expect("flag"));

    // Only the requester reveals, and only once.
    let stranger = app
        .post_json(&format!("/api/v1/actions/{id}/reveal"), &admin, json!({}))
        .await;
    assert_problem(stranger, 403, "FORBIDDEN").await;
    let revealed = app
        .post_json(
            &format!("/api/v1/actions/{id}/reveal"),
            &technician,
            json!({}),
        )
        .await;
    assert_eq!(revealed.status(), 200);
    assert_eq!(
        revealed
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let revealed: Value = revealed.json().await.expect("password");
    let password = revealed["password"].as_str().expect("password").to_owned();
    assert!(password.len() >= 16);
    let again = app
        .post_json(
            &format!("/api/v1/actions/{id}/reveal"),
            &technician,
            json!({}),
        )
        .await;
    assert_problem(again, 410, "SECRET_GONE").await;

    // The password is nowhere else: not in rows, job payloads, audit events or answers.
    for table in [
        "action_request",
        "action_step",
        "job",
        "audit_event",
        "action_secret",
    ] {
        let text: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select string_agg(t::text, ' ') from {table} t"
        )))
        .fetch_one(&pool)
        .await
        .expect("dump");
        assert!(
            !text.unwrap_or_default().contains(&password),
            "the password is in {table}"
        );
    }
    let shown = app
        .get(&format!("/api/v1/actions/{id}"), &technician)
        .await
        .text()
        .await
        .expect("body");
    assert!(!shown.contains(&password));
    let events = app
        .get(
            &format!("/api/v1/audit-events/export?action_id={id}"),
            &msp.owner_key,
        )
        .await
        .text()
        .await
        .expect("export");
    assert!(!events.contains(&password));
    let kinds: Vec<String> = events
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("ndjson")["kind"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "action.requested",
            "action.approved",
            "action.started",
            "action.finished",
            "action.password_revealed"
        ]
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn idempotency_keys_return_the_same_action_and_refuse_a_different_body(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Idempotent MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    let (_, upn) = sim_user(&app, "contoso", 9).await;
    let body = json!({"action": "revoke_sessions", "target": upn});

    let missing = request(&app, &msp.owner_key, &org, None, body.clone()).await;
    let problem = assert_problem(missing, 422, "INVALID_REQUEST").await;
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");

    let first = request(&app, &msp.owner_key, &org, Some("k-1"), body.clone()).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("first");
    let replay = request(&app, &msp.owner_key, &org, Some("k-1"), body.clone()).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(
        replay
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let replay: Value = replay.json().await.expect("replay");
    assert_eq!(replay["id"], first["id"]);

    let other = request(
        &app,
        &msp.owner_key,
        &org,
        Some("k-1"),
        json!({"action": "revoke_sessions", "target": upn, "requested_by": "someone else"}),
    )
    .await;
    assert_problem(other, 422, "IDEMPOTENCY_KEY_REUSED").await;
    let rows: i64 = sqlx::query_scalar("select count(*) from action_request")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(rows, 1);

    // Bad input is refused with the field named.
    let unknown_action = request(
        &app,
        &msp.owner_key,
        &org,
        Some("k-2"),
        json!({"action": "format_c", "target": upn}),
    )
    .await;
    assert_problem(unknown_action, 422, "INVALID_REQUEST").await;
    let bad_parameter = request(
        &app,
        &msp.owner_key,
        &org,
        Some("k-3"),
        json!({"action": "update_user_profile", "target": upn, "parameters": {"birthday": "1990-01-01"}}),
    )
    .await;
    let problem = assert_problem(bad_parameter, 422, "INVALID_REQUEST").await;
    assert_eq!(problem["errors"][0]["field"], "parameters.birthday");
    let unknown_user = request(
        &app,
        &msp.owner_key,
        &org,
        Some("k-4"),
        json!({"action": "revoke_sessions", "target": "nobody@contoso.example"}),
    )
    .await;
    assert_problem(unknown_user, 422, "TARGET_NOT_FOUND").await;
    let (_, viewer) = app.key_for(&msp, Role::Viewer).await;
    let read_only = request(&app, &viewer, &org, Some("k-5"), body).await;
    assert_problem(read_only, 403, "FORBIDDEN").await;
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_dry_run_shows_the_exact_graph_calls_and_sends_no_write(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Dry MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    let (user_id, upn) = sim_user(&app, "contoso", 4).await;
    app.sim.state().clear_requests();

    let response = request(
        &app,
        &msp.owner_key,
        &org,
        None,
        json!({"action": "mfa_reset", "target": upn, "dry_run": true}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let plan: Value = response.json().await.expect("plan");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["decision"], "would_wait_for_approval");
    let steps = plan["steps"].as_array().expect("steps");
    let calls: Vec<String> = steps
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["method"].as_str().unwrap_or(""),
                s["path"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        calls[0],
        format!("GET /users/{user_id}/authentication/methods")
    );
    assert_eq!(calls.len(), 3, "list, authenticator, phone: {calls:?}");
    assert!(calls[1..].iter().all(|c| c.starts_with("DELETE ")));
    assert!(
        !calls.iter().any(|c| c.contains("28c10230")),
        "never the password method"
    );

    let writes = app
        .sim
        .requests()
        .iter()
        .filter(|r| r.method != "GET" && r.path.starts_with("/v1.0/"))
        .count();
    assert_eq!(writes, 0, "a dry run changes nothing");
    let rows: i64 = sqlx::query_scalar("select count(*) from action_request")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(rows, 0);

    let password = request(
        &app,
        &msp.owner_key,
        &org,
        None,
        json!({"action": "password_reset", "target": upn, "dry_run": true}),
    )
    .await
    .json::<Value>()
    .await
    .expect("plan");
    assert_eq!(
        password["steps"][0]["body"]["passwordProfile"]["password"],
        "[generated at execution; revealed once]"
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn the_privileged_guard_refuses_at_request_and_again_before_execution(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Guarded MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    let (admin_id, admin_upn) = sim_user(&app, "contoso", 0).await;

    let refused = request(
        &app,
        &msp.owner_key,
        &org,
        Some("ga-1"),
        json!({"action": "password_reset", "target": admin_upn}),
    )
    .await;
    let problem = assert_problem(refused, 403, "PRIVILEGED_TARGET").await;
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("Global Administrator")
    );

    // The guard off and no approval: queued. Then the owner turns the guard back on
    // before a worker picks it up: the worker checks again and changes nothing.
    set_policy(
        &app,
        &msp.owner_key,
        &org,
        "revoke_sessions",
        json!({"approval": "none", "privileged_guard": "off"}),
    )
    .await;
    let queued = request(
        &app,
        &msp.owner_key,
        &org,
        Some("ga-2"),
        json!({"action": "revoke_sessions", "target": admin_upn}),
    )
    .await;
    assert_eq!(queued.status(), 201);
    let queued: Value = queued.json().await.expect("queued");
    assert_eq!(queued["state"], "queued");
    assert_eq!(
        queued["privileged_targets"][0]["user_id"],
        admin_id.as_str()
    );
    set_policy(
        &app,
        &msp.owner_key,
        &org,
        "revoke_sessions",
        json!({"approval": "none"}),
    )
    .await;

    let done = finished_action(&app, &msp.owner_key, queued["id"].as_str().expect("id")).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert_eq!(done["error"]["code"], "PRIVILEGED_TARGET");
    assert_eq!(sim_calls(&app, "POST", "revokeSignInSessions"), 0);

    // Escalation instead of refusal: a privileged target needs an approval.
    set_policy(
        &app,
        &msp.owner_key,
        &org,
        "revoke_sessions",
        json!({"approval": "none", "privileged_guard": "require_approval"}),
    )
    .await;
    let escalated: Value = request(
        &app,
        &msp.owner_key,
        &org,
        Some("ga-3"),
        json!({"action": "revoke_sessions", "target": admin_upn}),
    )
    .await
    .json()
    .await
    .expect("escalated");
    assert_eq!(escalated["state"], "pending_approval");
    assert!(
        escalated["approval"]["reason"]
            .as_str()
            .expect("reason")
            .contains("privileged")
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn employees_act_on_themselves_through_a_gateway_only_where_the_policy_allows(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Self-service MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    let (_, gateway) = app.key_for(&msp, Role::SelfServiceGateway).await;
    let (employee_id, employee) = sim_user(&app, "contoso", 10).await;
    let (_, colleague) = sim_user(&app, "contoso", 11).await;

    let closed = request(
        &app,
        &gateway,
        &org,
        Some("s-1"),
        json!({"action": "password_reset", "target": employee, "requested_by": employee}),
    )
    .await;
    assert_problem(closed, 403, "SELF_SERVICE_NOT_ALLOWED").await;

    set_policy(
        &app,
        &msp.owner_key,
        &org,
        "password_reset",
        json!({"approval": "none", "self_service": true}),
    )
    .await;
    let not_self = request(
        &app,
        &gateway,
        &org,
        Some("s-2"),
        json!({"action": "password_reset", "target": colleague, "requested_by": employee}),
    )
    .await;
    assert_problem(not_self, 403, "SELF_SERVICE_NOT_ALLOWED").await;
    let never = request(
        &app,
        &gateway,
        &org,
        Some("s-3"),
        json!({"action": "disable_account", "target": employee, "requested_by": employee}),
    )
    .await;
    assert_problem(never, 403, "SELF_SERVICE_NOT_ALLOWED").await;
    let anonymous = request(
        &app,
        &gateway,
        &org,
        Some("s-4"),
        json!({"action": "password_reset", "target": employee}),
    )
    .await;
    assert_problem(anonymous, 422, "INVALID_REQUEST").await;

    let own = request(
        &app,
        &gateway,
        &org,
        Some("s-5"),
        json!({"action": "password_reset", "target": employee, "requested_by": employee}),
    )
    .await;
    assert_eq!(own.status(), 201);
    let own: Value = own.json().await.expect("own");
    assert_eq!(own["state"], "queued");
    assert_eq!(own["requester"]["kind"], "employee");
    assert_eq!(own["requester"]["requested_by"], employee_id.as_str());
    let id = own["id"].as_str().expect("id");
    let done = finished_action(&app, &gateway, id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    // The gateway reveals only for the employee who asked.
    let wrong_person = app
        .post_json(
            &format!("/api/v1/actions/{id}/reveal"),
            &gateway,
            json!({"requested_by": colleague}),
        )
        .await;
    assert_problem(wrong_person, 403, "FORBIDDEN").await;
    let revealed = app
        .post_json(
            &format!("/api/v1/actions/{id}/reveal"),
            &gateway,
            json!({"requested_by": employee}),
        )
        .await;
    assert_eq!(revealed.status(), 200);
    // Self-service stays within the employee's own contact details and listed groups.
    set_policy(
        &app,
        &msp.owner_key,
        &org,
        "update_user_profile",
        json!({"approval": "none", "self_service": true}),
    )
    .await;
    let title = request(
        &app,
        &gateway,
        &org,
        Some("s-6"),
        json!({"action": "update_user_profile", "target": employee,
        "requested_by": employee, "parameters": {"job_title": "Chief Executive"}}),
    )
    .await;
    assert_problem(title, 403, "SELF_SERVICE_NOT_ALLOWED").await;
    let phone = request(
        &app,
        &gateway,
        &org,
        Some("s-7"),
        json!({"action": "update_user_profile", "target": employee,
        "requested_by": employee, "parameters": {"mobile_phone": "+1 206 555 0100"}}),
    )
    .await;
    assert_eq!(phone.status(), 201);
    set_policy(
        &app,
        &msp.owner_key,
        &org,
        "grant_access",
        json!({"approval": "none", "self_service": true}),
    )
    .await;
    let groups = graph_json(&app, "/groups?$top=1").await;
    let group = groups["value"][0]["id"].as_str().expect("group").to_owned();
    let unlisted = request(
        &app,
        &gateway,
        &org,
        Some("s-8"),
        json!({"action": "grant_access", "target": employee,
        "requested_by": employee, "parameters": {"group": group}}),
    )
    .await;
    assert_problem(unlisted, 403, "SELF_SERVICE_NOT_ALLOWED").await;
    // Control characters never reach the database.
    let control = request(
        &app,
        &gateway,
        &org,
        Some("s-9"),
        json!({"action": "password_reset", "target": employee,
        "requested_by": "bob\u{0007}"}),
    )
    .await;
    assert_problem(control, 422, "INVALID_REQUEST").await;

    // A gateway key does not read the audit log.
    let audit = app.get("/api/v1/audit-events", &gateway).await;
    assert_problem(audit, 403, "FORBIDDEN").await;
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn mfa_reset_deletes_the_default_method_last_and_keeps_the_password(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("MFA MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    set_policy(
        &app,
        &msp.owner_key,
        &org,
        "mfa_reset",
        json!({"approval": "none"}),
    )
    .await;
    // User 4: an authenticator app (the default) and a phone.
    let (user_id, upn) = sim_user(&app, "contoso", 4).await;
    let action: Value = request(
        &app,
        &msp.owner_key,
        &org,
        Some("m-1"),
        json!({"action": "mfa_reset", "target": upn}),
    )
    .await
    .json()
    .await
    .expect("action");
    let done = finished_action(&app, &msp.owner_key, action["id"].as_str().expect("id")).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let steps = done["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert!(steps.iter().all(|s| s["state"] == "succeeded"));
    // Microsoft refused the default first; it went last.
    let refused_first = app
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.contains("microsoftAuthenticatorMethods"))
        .map(|r| r.status)
        .collect::<Vec<_>>();
    assert_eq!(refused_first, [400, 204]);
    let methods: Value = app
        .graph(
            "contoso",
            Method::GET,
            &format!("/users/{user_id}/authentication/methods"),
            None,
        )
        .await
        .json()
        .await
        .expect("methods");
    let left = methods["value"].as_array().expect("methods");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], "28c10230-6103-485e-b985-444c60001490");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn microsofts_refusals_fail_the_action_with_microsofts_code(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Refused MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    for action in ["password_reset", "grant_access", "disable_account"] {
        set_policy(
            &app,
            &msp.owner_key,
            &org,
            action,
            json!({"approval": "none"}),
        )
        .await;
    }
    let (_, upn) = sim_user(&app, "contoso", 12).await;
    let (member_id, member_upn) = sim_user(&app, "contoso", 13).await;
    let groups: Value = app
        .graph(
            "contoso",
            Method::GET,
            &format!("/users/{member_id}/memberOf"),
            None,
        )
        .await
        .json()
        .await
        .expect("groups");
    let group = groups["value"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["@odata.type"] == "#microsoft.graph.group")
        .expect("the user is in a group")["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // The app lost its User Administrator role after validation: Graph answers 403.
    app.change_tenant("contoso", |t| {
        *t = t.clone().with_directory_roles(&[]);
    });
    let reset: Value = request(
        &app,
        &msp.owner_key,
        &org,
        Some("r-1"),
        json!({"action": "password_reset", "target": upn}),
    )
    .await
    .json()
    .await
    .expect("reset");
    // Already a member: the desired state holds, nothing changes.
    let grant: Value = request(
        &app,
        &msp.owner_key,
        &org,
        Some("r-2"),
        json!({"action": "grant_access", "target": member_upn, "parameters": {"group": group}}),
    )
    .await
    .json()
    .await
    .expect("grant");
    let reset = finished_action(&app, &msp.owner_key, reset["id"].as_str().expect("id")).await;
    let grant = finished_action(&app, &msp.owner_key, grant["id"].as_str().expect("id")).await;
    assert_eq!(reset["state"], "failed", "{reset}");
    assert_eq!(reset["error"]["code"], "Authorization_RequestDenied");
    assert_eq!(reset["steps"][0]["http_status"], 403);
    assert!(reset["steps"][0]["ms_request_id"].is_string());
    assert!(
        !reset["password_available"].as_bool().expect("flag"),
        "a refused password is not kept"
    );
    assert_eq!(grant["state"], "succeeded", "{grant}");
    assert_eq!(
        grant["steps"][0]["detail"]["note"],
        "already a member; nothing changed"
    );

    // A tenant that never granted the role is refused before anything is queued.
    let tailspin = connect(&app, &msp, "tailspin").await;
    let (_, tailspin_user) = sim_user(&app, "tailspin", 8).await;
    let refused = request(
        &app,
        &msp.owner_key,
        &tailspin,
        Some("r-3"),
        json!({"action": "password_reset", "target": tailspin_user}),
    )
    .await;
    let problem = assert_problem(refused, 422, "CAPABILITY_UNAVAILABLE").await;
    assert_eq!(problem["missing_directory_roles"][0], "User Administrator");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn disabling_accounts_in_bulk_shows_in_the_inventory_at_once(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Bulk MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    // Run the first discovery so the inventory holds the users.
    let runs: Value = app
        .get(
            &format!("/api/v1/organizations/{org}/discovery-runs"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("runs");
    let run = runs["data"][0]["id"].as_str().expect("run").to_owned();
    app.finished_run(&msp.owner_key, &org, &run).await;
    set_policy(
        &app,
        &msp.owner_key,
        &org,
        "disable_account",
        json!({"approval": "none"}),
    )
    .await;
    let (first_id, first) = sim_user(&app, "contoso", 14).await;
    let (second_id, second) = sim_user(&app, "contoso", 15).await;
    let action: Value = request(
        &app,
        &msp.owner_key,
        &org,
        Some("b-1"),
        json!({"action": "disable_account", "target": [first, second]}),
    )
    .await
    .json()
    .await
    .expect("action");
    let done = finished_action(&app, &msp.owner_key, action["id"].as_str().expect("id")).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["steps"].as_array().expect("steps").len(), 2);
    for user in [first_id, second_id] {
        let row: Value = app
            .get(
                &format!("/api/v1/organizations/{org}/users/{user}"),
                &msp.owner_key,
            )
            .await
            .json()
            .await
            .expect("user");
        assert_eq!(row["account_enabled"], false, "{row}");
    }
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn denied_and_expired_requests_never_run(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Deciding MSP").await;
    let (_, technician) = app.key_for(&msp, Role::Technician).await;
    let org = connect(&app, &msp, "contoso").await;
    let (_, upn) = sim_user(&app, "contoso", 16).await;
    let first: Value = request(
        &app,
        &technician,
        &org,
        Some("d-1"),
        json!({"action": "revoke_sessions", "target": upn}),
    )
    .await
    .json()
    .await
    .expect("first");
    let second: Value = request(
        &app,
        &technician,
        &org,
        Some("d-2"),
        json!({"action": "disable_account", "target": upn}),
    )
    .await
    .json()
    .await
    .expect("second");
    let first_id = first["id"].as_str().expect("id");
    let second_id = second["id"].as_str().expect("id");

    let denied = app
        .post_json(
            &format!("/api/v1/actions/{first_id}/deny"),
            &msp.owner_key,
            json!({"reason": "not on a ticket"}),
        )
        .await;
    assert_eq!(denied.status(), 200);
    let denied: Value = denied.json().await.expect("denied");
    assert_eq!(denied["state"], "denied");
    let late = app
        .post_json(
            &format!("/api/v1/actions/{first_id}/approve"),
            &msp.owner_key,
            json!({}),
        )
        .await;
    assert_problem(late, 409, "ACTION_STATE_CONFLICT").await;

    // The deadline passes; the leader expires the request.
    sqlx::query("update action_request set expires_at = now() - interval '1 second' where action_id = $1::uuid")
        .bind(second_id)
        .execute(&pool)
        .await
        .expect("backdate");
    app.run_maintenance().await;
    let body: Value = app
        .get(&format!("/api/v1/actions/{second_id}"), &technician)
        .await
        .json()
        .await
        .expect("action");
    assert_eq!(body["state"], "expired", "{body}");
    let approve_expired = app
        .post_json(
            &format!("/api/v1/actions/{second_id}/approve"),
            &msp.owner_key,
            json!({}),
        )
        .await;
    assert_problem(approve_expired, 409, "ACTION_STATE_CONFLICT").await;
    assert_eq!(sim_calls(&app, "POST", "revokeSignInSessions"), 0);
    assert_eq!(sim_calls(&app, "PATCH", "/users/"), 0);
    // An admin cancels a queued action's job: the leader closes the action.
    set_policy(
        &app,
        &msp.owner_key,
        &org,
        "revoke_sessions",
        json!({"approval": "none"}),
    )
    .await;
    let queued: Value = request(
        &app,
        &technician,
        &org,
        Some("d-3"),
        json!({"action": "revoke_sessions", "target": upn}),
    )
    .await
    .json()
    .await
    .expect("queued");
    let job = queued["job_id"].as_str().expect("job");
    let cancelled = app
        .post_json(
            &format!("/api/v1/jobs/{job}/cancel"),
            &msp.owner_key,
            json!({}),
        )
        .await;
    assert_eq!(cancelled.status(), 200);
    // The leader closes an action whose job ended without it.
    app.run_maintenance().await;
    let closed: Value = app
        .get(
            &format!("/api/v1/actions/{}", queued["id"].as_str().expect("id")),
            &technician,
        )
        .await
        .json()
        .await
        .expect("action");
    assert_eq!(closed["state"], "failed", "{closed}");
    assert_eq!(closed["error"]["code"], "JOB_ENDED");

    let listed: Value = app
        .get(
            &format!("/api/v1/actions?organization={org}&state=denied"),
            &technician,
        )
        .await
        .json()
        .await
        .expect("list");
    assert_eq!(listed["data"].as_array().expect("data").len(), 1);
}

/// Starts workers that give running jobs only a moment to finish when stopped, so a
/// stop in the middle of a slow Graph call leaves the step as a crash would.
fn impatient_workers(app: &TestApp) -> tokio::sync::watch::Sender<bool> {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let engine = tenantry_jobs::EngineConfig {
        drain: Duration::from_millis(200),
        ..test_engine()
    };
    tokio::spawn(tenantry_jobs::run(
        app.job_context(),
        engine,
        test_leader(),
        shutdown,
    ));
    stop
}

async fn step_states(pool: &PgPool, action: &str) -> Vec<String> {
    sqlx::query_scalar("select state from action_step where action_id = $1::uuid order by position")
        .bind(action)
        .fetch_all(pool)
        .await
        .expect("steps")
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn after_a_crash_completed_steps_are_not_repeated_and_a_password_is_never_set_twice(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Crashing MSP").await;
    // Dismissing risk needs a permission Dex's default list lacks (seed 000).
    app.change_tenant("contoso", |t| {
        *t = t
            .clone()
            .with_permissions(&["IdentityRiskyUser.ReadWrite.All"]);
    });
    let org = connect(&app, &msp, "contoso").await;
    for action in ["unblock_signin", "password_reset"] {
        set_policy(
            &app,
            &msp.owner_key,
            &org,
            action,
            json!({"approval": "none"}),
        )
        .await;
    }
    let (risky_id, risky) = sim_user(&app, "contoso", 5).await;
    let (reset_id, reset) = sim_user(&app, "contoso", 17).await;
    let unblock: Value = request(
        &app,
        &msp.owner_key,
        &org,
        Some("c-1"),
        json!({"action": "unblock_signin", "target": risky}),
    )
    .await
    .json()
    .await
    .expect("unblock");
    let unblock = unblock["id"].as_str().expect("id").to_owned();

    // Microsoft slows down; the worker dies while the second step is in flight.
    let tenant = app.demo("contoso").id.to_string();
    let slow = |ms| Faults {
        tenants: [(
            tenant.clone(),
            FaultSpec {
                latency_ms: ms,
                ..FaultSpec::default()
            },
        )]
        .into(),
        ..Faults::default()
    };
    app.sim.state().set_faults(slow(600));
    let stop = impatient_workers(&app);
    let mut states = Vec::new();
    for _ in 0..300 {
        states = step_states(&pool, &unblock).await;
        if states == ["succeeded", "sent"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(states, ["succeeded", "sent"]);
    let _ = stop.send(true);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        step_states(&pool, &unblock).await,
        ["succeeded", "sent"],
        "the stop left the step in flight"
    );
    app.sim.state().set_faults(Faults::default());

    let workers = app.start_workers();
    let done = wait_for_action(&app, &msp.owner_key, &unblock).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(
        sim_calls(&app, "POST", "riskyUsers/dismiss"),
        1,
        "the completed step was not repeated"
    );
    assert!(sim_calls(&app, "PATCH", &format!("/users/{risky_id}")) >= 1);
    drop(workers);

    // A password step whose answer was lost is not sent again.
    let password: Value = request(
        &app,
        &msp.owner_key,
        &org,
        Some("c-2"),
        json!({"action": "password_reset", "target": reset}),
    )
    .await
    .json()
    .await
    .expect("reset");
    let password = password["id"].as_str().expect("id").to_owned();
    app.sim.state().set_faults(slow(1500));
    let stop = impatient_workers(&app);
    for _ in 0..300 {
        if step_states(&pool, &password).await == ["sent"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(true);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    app.sim.state().set_faults(Faults::default());
    let done = finished_action(&app, &msp.owner_key, &password).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert_eq!(done["steps"][0]["state"], "unknown");
    assert_eq!(done["error"]["code"], "STEP_OUTCOME_UNKNOWN");
    assert!(
        sim_calls(&app, "PATCH", &format!("/users/{reset_id}")) <= 1,
        "the password was not sent a second time"
    );
    assert!(
        done["password_available"].as_bool().expect("flag"),
        "what may have been set can still be revealed"
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn the_audit_chain_verifies_and_names_the_first_edited_or_removed_event(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Audited MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    let (_, upn) = sim_user(&app, "contoso", 18).await;
    for n in 0..3 {
        let response = request(
            &app,
            &msp.owner_key,
            &org,
            Some(&format!("a-{n}")),
            json!({"action": "revoke_sessions", "target": upn}),
        )
        .await;
        assert_eq!(response.status(), 201);
    }
    set_policy(
        &app,
        &msp.owner_key,
        &org,
        "mfa_reset",
        json!({"approval": "none"}),
    )
    .await;

    let verified: Value = app
        .get("/api/v1/audit-events/verify", &msp.owner_key)
        .await
        .json()
        .await
        .expect("verify");
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(verified["events_checked"], 4);
    let (_, technician) = app.key_for(&msp, Role::Technician).await;
    assert_problem(
        app.get("/api/v1/audit-events/verify", &technician).await,
        403,
        "FORBIDDEN",
    )
    .await;

    let page: Value = app
        .get("/api/v1/audit-events?limit=2", &msp.owner_key)
        .await
        .json()
        .await
        .expect("page");
    assert_eq!(page["data"][0]["kind"], "policy.updated", "newest first");
    let next = page["next_cursor"].as_str().expect("cursor");
    let rest: Value = app
        .get(
            &format!("/api/v1/audit-events?limit=2&cursor={next}"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("rest");
    assert_eq!(rest["data"].as_array().expect("data").len(), 2);
    assert!(rest["next_cursor"].is_null());

    // Someone with database access rewrites history.
    sqlx::query("update audit_event set reason = 'nothing to see' where msp_id = $1 and seq = 2")
        .bind(msp.id)
        .execute(&pool)
        .await
        .expect("tamper");
    let broken: Value = app
        .get("/api/v1/audit-events/verify", &msp.owner_key)
        .await
        .json()
        .await
        .expect("verify");
    assert_eq!(broken["valid"], false);
    assert_eq!(broken["first_broken"]["seq"], 2);
    assert_eq!(broken["first_broken"]["problem"], "content_changed");

    sqlx::query("delete from audit_event where msp_id = $1 and seq <= 2")
        .bind(msp.id)
        .execute(&pool)
        .await
        .expect("remove");
    let cut: Value = app
        .get("/api/v1/audit-events/verify", &msp.owner_key)
        .await
        .json()
        .await
        .expect("verify");
    assert_eq!(cut["first_broken"]["seq"], 3);
    assert_eq!(cut["first_broken"]["problem"], "sequence_gap");
}

/// Requests `body` with no approval needed and waits for it to finish.
async fn run_action(app: &TestApp, key: &str, org: &str, idempotency: &str, body: Value) -> Value {
    let response = request(app, key, org, Some(idempotency), body).await;
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let action: Value = response.json().await.expect("action");
    assert_eq!(action["state"], "queued", "{action}");
    let done = finished_action(app, key, action["id"].as_str().expect("id")).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(
        done["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["state"] == "succeeded"),
        "{done}"
    );
    done
}

async fn group_has(app: &TestApp, group: &str, user: &str) -> bool {
    graph_json(app, &format!("/groups/{group}/members?$top=999")).await["value"]
        .as_array()
        .expect("members")
        .iter()
        .any(|m| m["id"] == user)
}

async fn graph_json(app: &TestApp, path: &str) -> Value {
    app.graph("contoso", Method::GET, path, None)
        .await
        .json()
        .await
        .expect("graph json")
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn every_other_action_changes_the_tenant_as_microsoft_documents(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Busy MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    for action in [
        "update_user_profile",
        "update_photo",
        "grant_access",
        "revoke_access",
        "create_user",
        "disable_account",
        "enable_account",
        "revoke_sessions",
    ] {
        set_policy(
            &app,
            &msp.owner_key,
            &org,
            action,
            json!({"approval": "none"}),
        )
        .await;
    }
    let (user_id, upn) = sim_user(&app, "contoso", 19).await;
    let (manager_id, manager) = sim_user(&app, "contoso", 18).await;
    let key = msp.owner_key.clone();

    run_action(&app, &key, &org, "p-1", json!({"action": "update_user_profile", "target": upn,
        "parameters": {"job_title": "Buyer", "department": "Finance", "usage_location": "gb", "manager": manager}})).await;
    let profile = graph_json(
        &app,
        &format!("/users/{user_id}?$select=jobTitle,department,usageLocation"),
    )
    .await;
    assert_eq!(profile["jobTitle"], "Buyer");
    assert_eq!(profile["department"], "Finance");
    assert_eq!(profile["usageLocation"], "GB");
    assert_eq!(
        graph_json(&app, &format!("/users/{user_id}/manager")).await["id"],
        manager_id.as_str()
    );

    run_action(
        &app,
        &key,
        &org,
        "p-2",
        json!({"action": "update_photo", "target": user_id,
        "parameters": {"content_type": "image/png", "data": "iVBORw0KGgoAAAANSUhEUg=="}}),
    )
    .await;
    assert_eq!(
        sim_calls(&app, "PUT", &format!("/users/{user_id}/photo")),
        1
    );

    // A group the user is not in: added, then removed.
    let member_of = graph_json(&app, &format!("/users/{user_id}/memberOf")).await;
    let groups = graph_json(&app, "/groups?$top=50").await;
    let group = groups["value"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["id"].as_str().expect("id").to_owned())
        .find(|g| {
            !member_of["value"]
                .as_array()
                .expect("memberOf")
                .iter()
                .any(|m| m["id"] == g.as_str())
        })
        .expect("a group without the user");
    run_action(
        &app,
        &key,
        &org,
        "p-3",
        json!({"action": "grant_access", "target": upn, "parameters": {"group": group}}),
    )
    .await;
    assert!(group_has(&app, &group, &user_id).await);
    run_action(
        &app,
        &key,
        &org,
        "p-4",
        json!({"action": "revoke_access", "target": upn, "parameters": {"group": group}}),
    )
    .await;
    assert!(!group_has(&app, &group, &user_id).await);

    run_action(
        &app,
        &key,
        &org,
        "p-5",
        json!({"action": "disable_account", "target": upn}),
    )
    .await;
    assert_eq!(
        graph_json(&app, &format!("/users/{user_id}?$select=accountEnabled")).await["accountEnabled"],
        false
    );
    run_action(
        &app,
        &key,
        &org,
        "p-6",
        json!({"action": "enable_account", "target": upn}),
    )
    .await;
    assert_eq!(
        graph_json(&app, &format!("/users/{user_id}?$select=accountEnabled")).await["accountEnabled"],
        true
    );
    run_action(
        &app,
        &key,
        &org,
        "p-7",
        json!({"action": "revoke_sessions", "target": [upn, manager]}),
    )
    .await;
    assert_eq!(sim_calls(&app, "POST", "revokeSignInSessions"), 2);

    // A new starter: created, given a manager and a licence, password revealed once.
    let created = run_action(&app, &key, &org, "p-8", json!({"action": "create_user", "target": "ana.new@contoso.example",
        "parameters": {"display_name": "Ana New", "given_name": "Ana", "surname": "New", "usage_location": "US",
            "manager": manager, "license_sku_id": "c7df2760-2c81-4ef7-b578-5b5392b571df"}})).await;
    let steps = created["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3, "create, manager, licence: {steps:?}");
    let new_id = steps[0]["detail"]["created_id"]
        .as_str()
        .expect("created id")
        .to_owned();
    let new_user = graph_json(
        &app,
        "/users/ana.new@contoso.example?$select=id,displayName,assignedLicenses",
    )
    .await;
    assert_eq!(new_user["id"], new_id.as_str());
    assert_eq!(
        new_user["assignedLicenses"][0]["skuId"],
        "c7df2760-2c81-4ef7-b578-5b5392b571df"
    );
    assert_eq!(
        graph_json(&app, &format!("/users/{new_id}/manager")).await["id"],
        manager_id.as_str()
    );
    let id = created["id"].as_str().expect("id");
    let revealed = app
        .post_json(&format!("/api/v1/actions/{id}/reveal"), &key, json!({}))
        .await;
    assert_eq!(revealed.status(), 200);
    let taken = request(
        &app,
        &key,
        &org,
        Some("p-9"),
        json!({"action": "create_user", "target": "ana.new@contoso.example",
        "parameters": {"display_name": "Ana Again"}}),
    )
    .await;
    let problem = assert_problem(taken, 422, "INVALID_REQUEST").await;
    assert_eq!(problem["errors"][0]["field"], "target");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn members_of_an_approver_group_approve_colleagues_self_service_requests(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Approver-group MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    let (_, gateway) = app.key_for(&msp, Role::SelfServiceGateway).await;
    let runs: Value = app
        .get(
            &format!("/api/v1/organizations/{org}/discovery-runs"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("runs");
    let run = runs["data"][0]["id"].as_str().expect("run").to_owned();
    app.finished_run(&msp.owner_key, &org, &run).await;

    // A group with at least two members: one asks, another approves.
    let groups = graph_json(&app, "/groups?$top=50").await;
    let mut chosen = None;
    for group in groups["value"].as_array().expect("groups") {
        let id = group["id"].as_str().expect("id");
        let members = graph_json(&app, &format!("/groups/{id}/members?$top=999")).await;
        let users: Vec<String> = members["value"]
            .as_array()
            .expect("members")
            .iter()
            .filter_map(|m| m["userPrincipalName"].as_str().map(str::to_owned))
            .filter(|upn| {
                ["0@", "1@", "2@"]
                    .iter()
                    .all(|admin| !upn.starts_with(admin) && !upn.contains(&format!(".{}", admin)))
            })
            .collect();
        if users.len() >= 2 {
            chosen = Some((id.to_owned(), users));
            break;
        }
    }
    let (group, members) = chosen.expect("a group with two members");
    let (_, outsider) = sim_user(&app, "contoso", 3).await;
    set_policy(
        &app,
        &msp.owner_key,
        &org,
        "mfa_reset",
        json!({"self_service": true, "privileged_guard": "off",
        "approvers": {"roles": ["owner"], "groups": [group]}}),
    )
    .await;
    let asked = request(
        &app,
        &gateway,
        &org,
        Some("g-1"),
        json!({"action": "mfa_reset", "target": members[0], "requested_by": members[0]}),
    )
    .await;
    assert_eq!(asked.status(), 201);
    let asked: Value = asked.json().await.expect("asked");
    assert_eq!(asked["state"], "pending_approval");
    let id = asked["id"].as_str().expect("id");

    let own = app
        .post_json(
            &format!("/api/v1/actions/{id}/approve"),
            &gateway,
            json!({"approver": members[0]}),
        )
        .await;
    assert_problem(own, 403, "SELF_APPROVAL").await;
    let stranger = app
        .post_json(
            &format!("/api/v1/actions/{id}/approve"),
            &gateway,
            json!({"approver": outsider}),
        )
        .await;
    assert_problem(stranger, 403, "NOT_AN_APPROVER").await;
    let colleague = app
        .post_json(
            &format!("/api/v1/actions/{id}/approve"),
            &gateway,
            json!({"approver": members[1]}),
        )
        .await;
    assert_eq!(colleague.status(), 200);
    let approved: Value = colleague.json().await.expect("approved");
    assert_eq!(approved["state"], "queued");
    assert!(approved["approval"]["decided_by"].is_string());
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn identity_protections_one_request_a_second_snoozes_without_spending_attempts(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Throttled MSP").await;
    app.change_tenant("contoso", |t| {
        *t = t
            .clone()
            .with_permissions(&["IdentityRiskyUser.ReadWrite.All"]);
    });
    let org = connect(&app, &msp, "contoso").await;
    set_policy(
        &app,
        &msp.owner_key,
        &org,
        "unblock_signin",
        json!({"approval": "none"}),
    )
    .await;
    // Users 5, 102 and 199 are at risk; three dismissals at once exceed Microsoft's limit.
    // A generated user's id ends in its index (docs/simulator.md).
    let (first, _) = sim_user(&app, "contoso", 0).await;
    let mut ids = Vec::new();
    for (n, index) in [5u32, 102, 199].into_iter().enumerate() {
        let target = format!("{}{index:08x}", &first[..first.len() - 8]);
        let action: Value = request(
            &app,
            &msp.owner_key,
            &org,
            Some(&format!("t-{n}")),
            json!({"action": "unblock_signin", "target": target}),
        )
        .await
        .json()
        .await
        .expect("action");
        assert_eq!(action["state"], "queued", "{action}");
        ids.push(action["id"].as_str().expect("id").to_owned());
    }
    let workers = app.start_workers();
    let mut jobs = Vec::new();
    for id in &ids {
        let done = wait_for_action(&app, &msp.owner_key, id).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        jobs.push(done["job_id"].as_str().expect("job").to_owned());
    }
    drop(workers);
    let throttled = app
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("riskyUsers/dismiss") && r.status == 429)
        .count();
    assert!(throttled >= 1, "Microsoft's limit was reached");
    let mut snoozes = 0;
    for job in jobs {
        let job: Value = app
            .get(&format!("/api/v1/jobs/{job}"), &msp.owner_key)
            .await
            .json()
            .await
            .expect("job");
        assert_eq!(job["attempt"], 1, "throttling spends no attempt: {job}");
        snoozes += job["snoozes"].as_i64().expect("snoozes");
    }
    assert!(snoozes >= 1);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_disabled_action_and_an_unreachable_microsoft_are_refused_with_their_codes(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Refusing MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    let (_, upn) = sim_user(&app, "contoso", 9).await;
    set_policy(
        &app,
        &msp.owner_key,
        &org,
        "revoke_sessions",
        json!({"enabled": false}),
    )
    .await;
    let disabled = request(
        &app,
        &msp.owner_key,
        &org,
        Some("off-1"),
        json!({"action": "revoke_sessions", "target": upn}),
    )
    .await;
    assert_problem(disabled, 403, "ACTION_DISABLED").await;

    // Microsoft answers nothing but 503s: nothing is stored, the caller may retry.
    let tenant = app.demo("contoso").id.to_string();
    app.sim.state().set_faults(Faults {
        tenants: [(
            tenant,
            FaultSpec {
                error_rate: 1.0,
                error_statuses: vec![503],
                ..FaultSpec::default()
            },
        )]
        .into(),
        ..Faults::default()
    });
    let down = request(
        &app,
        &msp.owner_key,
        &org,
        Some("down-1"),
        json!({"action": "mfa_reset", "target": upn}),
    )
    .await;
    assert_problem(down, 503, "UPSTREAM_UNAVAILABLE").await;
    app.sim.state().set_faults(Faults::default());
    let rows: i64 = sqlx::query_scalar("select count(*) from action_request")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(rows, 0);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn policies_name_only_approvers_who_can_decide(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Approver MSP").await;
    let other = app.create_msp("Other MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    let (technician, _) = app.key_for(&msp, Role::Technician).await;
    let (revoked, _) = app.key_for(&msp, Role::Admin).await;
    sqlx::query("update api_key set revoked_at = now() where api_key_id = $1")
        .bind(revoked)
        .execute(&app.pool)
        .await
        .expect("revoked");
    let (gateway, _) = app.key_for(&msp, Role::SelfServiceGateway).await;
    let (foreign, _) = app.key_for(&other, Role::Admin).await;
    let put = |approvers: Value| {
        app.request(
            Method::PUT,
            &format!("/api/v1/organizations/{org}/policies/password_reset"),
            Some(&msp.owner_key),
        )
        .json(&json!({"approvers": approvers}))
        .send()
    };
    let refused = |field: &'static str| {
        move |problem: Value| {
            let fields: Vec<&str> = problem["errors"]
                .as_array()
                .expect("errors")
                .iter()
                .filter_map(|e| e["field"].as_str())
                .collect();
            assert_eq!(fields, [field], "{problem}");
        }
    };
    for key in [
        other.owner_key_id,
        foreign,
        uuid::Uuid::new_v4(),
        revoked,
        gateway,
    ] {
        let response = put(json!({"keys": [key]})).await.expect("sent");
        refused("approvers.keys")(assert_problem(response, 422, "INVALID_REQUEST").await);
    }
    // Another MSP's key and a made-up id read alike.
    let detail = |response: Value| {
        response["errors"][0]["message"]
            .as_str()
            .map(|m| m.split(':').next().map(str::to_owned))
    };
    let a = detail(
        assert_problem(
            put(json!({"keys": [foreign]})).await.expect("sent"),
            422,
            "INVALID_REQUEST",
        )
        .await,
    );
    let b = detail(
        assert_problem(
            put(json!({"keys": [uuid::Uuid::new_v4()]}))
                .await
                .expect("sent"),
            422,
            "INVALID_REQUEST",
        )
        .await,
    );
    assert_eq!(a, b);
    let response = put(json!({"roles": ["owner"], "groups": [uuid::Uuid::new_v4()]}))
        .await
        .expect("sent");
    refused("approvers.groups")(assert_problem(response, 422, "INVALID_REQUEST").await);
    let policy: Value = app
        .get(
            &format!("/api/v1/organizations/{org}/policies/password_reset"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("policy");
    assert_eq!(policy["is_default"], true, "nothing was saved");
    // The MSP's own active key is an approver.
    set_policy(
        &app,
        &msp.owner_key,
        &org,
        "password_reset",
        json!({"approvers": {"keys": [technician]}}),
    )
    .await;
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn mfa_reset_deletes_an_alternate_mobile_phone_before_the_mobile_one(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("MFA MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    set_policy(
        &app,
        &msp.owner_key,
        &org,
        "mfa_reset",
        json!({"approval": "none"}),
    )
    .await;
    // Listed mobile, password, alternateMobile, authenticator (the default).
    let (user_id, upn) = sim_user(&app, "contoso", 7).await;
    let phone = |id: &str, kind: &str| {
        json!({"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", "id": id,
            "phoneNumber": "+1 2065550107", "phoneType": kind, "smsSignInState": "notAllowedByPolicy"})
    };
    let authenticator = "6f0c1b6e-3f43-4d1e-9a38-0d3a5f1e2c11";
    assert!(app.sim.state().set_authentication_methods(
        "contoso.onmicrosoft.com",
        &user_id,
        vec![
            phone("3179e48a-750b-4051-897c-87b9720928f7", "mobile"),
            json!({"@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
                "id": "28c10230-6103-485e-b985-444c60001490", "password": null}),
            phone("b6332ec1-7057-4abe-9331-3d72feddfe41", "alternateMobile"),
            json!({"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
                "id": authenticator, "displayName": "iPhone 15"}),
        ],
        Some(authenticator),
    ));
    let action: Value = request(
        &app,
        &msp.owner_key,
        &org,
        Some("m-4"),
        json!({"action": "mfa_reset", "target": upn}),
    )
    .await
    .json()
    .await
    .expect("action");
    let done = finished_action(&app, &msp.owner_key, action["id"].as_str().expect("id")).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let steps = done["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 4, "the listing and three deletes: {steps:?}");
    let methods: Value = app
        .graph(
            "contoso",
            Method::GET,
            &format!("/users/{user_id}/authentication/methods"),
            None,
        )
        .await
        .json()
        .await
        .expect("methods");
    let left = methods["value"].as_array().expect("methods");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["id"], "28c10230-6103-485e-b985-444c60001490");
}
