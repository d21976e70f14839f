//! Operators, the people holding API keys: four eyes compares people, so a second key
//! minted by the requester cannot approve; owners add new people; the operator is named
//! by `/me`, key listings, actions and the audit log; the migration gives every older key
//! a person of its own.

use hmac::{KeyInit, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use tenantry_domain::Role;
use uuid::Uuid;

use crate::helpers::{TestApp, TestMsp, assert_problem, connect, sim_user};

/// The migration that introduced operators; everything before it is the old schema.
const OPERATORS_MIGRATION: i64 = 20261201000001;
const LAST_MIGRATION_BEFORE: i64 = 20261122000009;

async fn me(app: &TestApp, key: &str) -> Value {
    let response = app.get("/api/v1/me", key).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("me")
}

async fn mint(app: &TestApp, key: &str, body: Value) -> Value {
    let response = app.post_json("/api/v1/api-keys", key, body).await;
    let status = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(status, 201, "{text}");
    serde_json::from_str(&text).expect("created key")
}

/// A password reset of a contoso user, waiting for approval.
async fn pending_reset(app: &TestApp, key: &str, org: &str, idempotency: &str) -> String {
    let (_, upn) = sim_user(app, "contoso", 7).await;
    let response = app
        .request(
            Method::POST,
            &format!("/api/v1/organizations/{org}/actions"),
            Some(key),
        )
        .header("Idempotency-Key", idempotency)
        .json(&json!({"action": "password_reset", "target": upn}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    let action: Value = response.json().await.expect("action");
    assert_eq!(action["state"], "pending_approval");
    action["id"].as_str().expect("id").to_owned()
}

async fn decide(app: &TestApp, key: &str, id: &str, verb: &str) -> reqwest::Response {
    app.post_json(&format!("/api/v1/actions/{id}/{verb}"), key, json!({}))
        .await
}

/// `key` mints a second key of `role` for itself (no operator named), then both of its
/// keys are refused approving and denying its own request.
async fn second_key_cannot_decide(app: &TestApp, msp: &TestMsp, key: &str, role: &str) {
    let org = connect(app, msp, "contoso").await;
    let first = me(app, key).await;
    let second = mint(app, key, json!({"name": "my other key", "role": role})).await;
    let second_key = second["api_key"].as_str().expect("key").to_owned();
    assert_eq!(
        second["key"]["operator"], first["operator"],
        "a minted key belongs to the minter"
    );
    assert_eq!(me(app, &second_key).await["operator"], first["operator"]);

    let id = pending_reset(app, key, &org, "self-1").await;
    for verb in ["approve", "deny"] {
        assert_problem(
            decide(app, &second_key, &id, verb).await,
            403,
            "SELF_APPROVAL",
        )
        .await;
        assert_problem(decide(app, key, &id, verb).await, 403, "SELF_APPROVAL").await;
    }
    let action: Value = app
        .get(&format!("/api/v1/actions/{id}"), key)
        .await
        .json()
        .await
        .expect("action");
    assert_eq!(action["state"], "pending_approval");
    assert_eq!(action["requester"]["operator"], first["operator"]);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn an_admins_second_key_cannot_approve_the_admins_own_request(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Two-key admin MSP").await;
    let (_, admin) = app.key_for(&msp, Role::Admin).await;
    second_key_cannot_decide(&app, &msp, &admin, "admin").await;
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn an_owners_second_key_cannot_approve_the_owners_own_request(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Two-key owner MSP").await;
    second_key_cannot_decide(&app, &msp, &msp.owner_key, "owner").await;
}

/// The owner adds Bob, a new person, with an admin key of his own.
async fn owner_adds_bob(app: &TestApp, msp: &TestMsp) -> (Value, String) {
    let bob = mint(
        app,
        &msp.owner_key,
        json!({"name": "Bob's laptop", "role": "admin", "operator": {"name": "bob@example.com"}}),
    )
    .await;
    let key = bob["api_key"].as_str().expect("key").to_owned();
    (bob["key"]["operator"].clone(), key)
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_key_an_owner_made_for_a_new_operator_approves_the_owners_request(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Two-person MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    let owner = me(&app, &msp.owner_key).await["operator"].clone();
    assert_eq!(owner["name"], "Owner of Two-person MSP");
    let (bob, bob_key) = owner_adds_bob(&app, &msp).await;
    assert_eq!(bob["name"], "bob@example.com");
    assert_ne!(bob["id"], owner["id"], "a different person");
    assert_eq!(me(&app, &bob_key).await["operator"], bob);
    // Bob's own keys are Bob's.
    let bobs_second = mint(
        &app,
        &bob_key,
        json!({"name": "Bob's phone", "role": "technician", "operator": {"id": bob["id"]}}),
    )
    .await;
    assert_eq!(bobs_second["key"]["operator"], bob);

    let id = pending_reset(&app, &msp.owner_key, &org, "owner-1").await;
    let approved = decide(&app, &bob_key, &id, "approve").await;
    assert_eq!(approved.status(), 200);
    let approved: Value = approved.json().await.expect("approved");
    assert_eq!(approved["state"], "queued");
    assert_eq!(approved["requester"]["operator"], owner);
    assert_eq!(approved["approval"]["decided_by_operator"], bob);

    // Listings name each key's person.
    let keys: Value = app
        .get("/api/v1/api-keys", &msp.owner_key)
        .await
        .json()
        .await
        .expect("keys");
    let holders: Vec<&Value> = keys["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|k| &k["operator"])
        .collect();
    assert_eq!(holders, vec![&owner, &bob, &bob]);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn only_owners_add_people_and_nobody_mints_a_key_for_someone_else(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Careful MSP").await;
    let (_, admin) = app.key_for(&msp, Role::Admin).await;
    let (bob, _) = owner_adds_bob(&app, &msp).await;
    let owner = me(&app, &msp.owner_key).await["operator"].clone();

    let new_person = app
        .post_json(
            "/api/v1/api-keys",
            &admin,
            json!({"name": "sock puppet", "role": "technician", "operator": {"name": "Mallory"}}),
        )
        .await;
    assert_problem(new_person, 403, "FORBIDDEN").await;
    for (key, other) in [(&admin, &owner), (&msp.owner_key, &bob)] {
        let someone_else = app
            .post_json(
                "/api/v1/api-keys",
                key,
                json!({"name": "as them", "role": "technician", "operator": {"id": other["id"]}}),
            )
            .await;
        assert_problem(someone_else, 403, "FORBIDDEN").await;
    }
    let both = app
        .post_json(
            "/api/v1/api-keys",
            &msp.owner_key,
            json!({"name": "x", "role": "viewer", "operator": {"id": owner["id"], "name": "Y"}}),
        )
        .await;
    let problem = assert_problem(both, 422, "INVALID_REQUEST").await;
    assert_eq!(problem["errors"][0]["field"], "operator");
    let blank = app
        .post_json(
            "/api/v1/api-keys",
            &msp.owner_key,
            json!({"name": "x", "role": "viewer", "operator": {"name": ""}}),
        )
        .await;
    let problem = assert_problem(blank, 422, "INVALID_REQUEST").await;
    assert_eq!(problem["errors"][0]["field"], "operator.name");
    let count: i64 = sqlx::query_scalar("select count(*) from operator where msp_id = $1")
        .bind(msp.id)
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(
        count, 3,
        "the owner, the admin's holder and Bob; nobody else"
    );
}

async fn audit_of(app: &TestApp, key: &str, id: &str) -> Vec<Value> {
    let events: Value = app
        .get(&format!("/api/v1/audit-events?action_id={id}"), key)
        .await
        .json()
        .await
        .expect("events");
    events["data"].as_array().expect("data").clone()
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn the_audit_log_names_the_operators_who_asked_decided_and_were_added(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Audited people MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    let owner = me(&app, &msp.owner_key).await["operator"].clone();
    let (bob, bob_key) = owner_adds_bob(&app, &msp).await;

    let id = pending_reset(&app, &msp.owner_key, &org, "audit-1").await;
    let refused = decide(&app, &msp.owner_key, &id, "approve").await;
    assert_problem(refused, 403, "SELF_APPROVAL").await;
    assert_eq!(decide(&app, &bob_key, &id, "approve").await.status(), 200);

    let events = audit_of(&app, &msp.owner_key, &id).await;
    let by_kind = |kind: &str| {
        events
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} event in {events:?}"))
            .clone()
    };
    assert_eq!(by_kind("action.requested")["actor"]["operator"], owner);
    assert_eq!(by_kind("action.approved")["actor"]["operator"], bob);

    let added: Value = app
        .get("/api/v1/audit-events?kind=operator.created", &msp.owner_key)
        .await
        .json()
        .await
        .expect("events");
    let added = &added["data"][0];
    assert_eq!(added["parameters"]["operator"], bob);
    assert_eq!(added["actor"]["operator"], owner);
    let verified = app.get("/api/v1/audit-events/verify", &msp.owner_key).await;
    assert_eq!(verified.status(), 200);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn an_employee_never_approves_their_own_request_and_a_technician_may_instead(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Self-service people MSP").await;
    let org = connect(&app, &msp, "contoso").await;
    let (_, gateway) = app.key_for(&msp, Role::SelfServiceGateway).await;
    let (_, upn) = sim_user(&app, "contoso", 7).await;
    // Technicians' approval instead of colleagues': no approver groups.
    let policy = app
        .request(
            Method::PUT,
            &format!("/api/v1/organizations/{org}/policies/mfa_reset"),
            Some(&msp.owner_key),
        )
        .json(&json!({"self_service": true, "privileged_guard": "off",
            "approvers": {"roles": ["owner", "technician"]}}))
        .send()
        .await
        .expect("sent");
    assert_eq!(policy.status(), 200);
    let asked = app
        .request(
            Method::POST,
            &format!("/api/v1/organizations/{org}/actions"),
            Some(&gateway),
        )
        .header("Idempotency-Key", "ss-1")
        .json(&json!({"action": "mfa_reset", "target": upn, "requested_by": upn}))
        .send()
        .await
        .expect("sent");
    assert_eq!(asked.status(), 201);
    let asked: Value = asked.json().await.expect("asked");
    let id = asked["id"].as_str().expect("id");
    assert_eq!(asked["state"], "pending_approval");

    for verb in ["approve", "deny"] {
        let own = app
            .post_json(
                &format!("/api/v1/actions/{id}/{verb}"),
                &gateway,
                json!({"approver": upn}),
            )
            .await;
        assert_problem(own, 403, "SELF_APPROVAL").await;
    }
    let (_, colleague) = sim_user(&app, "contoso", 8).await;
    let no_group = app
        .post_json(
            &format!("/api/v1/actions/{id}/approve"),
            &gateway,
            json!({"approver": colleague}),
        )
        .await;
    assert_problem(no_group, 403, "NOT_AN_APPROVER").await;
    let (_, technician) = app.key_for(&msp, Role::Technician).await;
    let approved = app
        .post_json(
            &format!("/api/v1/actions/{id}/approve"),
            &technician,
            json!({}),
        )
        .await;
    assert_eq!(approved.status(), 200);
    let approved: Value = approved.json().await.expect("approved");
    assert_eq!(approved["state"], "queued");
    assert_eq!(
        approved["approval"]["decided_by_operator"],
        me(&app, &technician).await["operator"]
    );
}

/// A key as the schema before operators stored it, usable afterwards (digested under the
/// test pepper, `helpers::test_pepper`).
async fn insert_old_key(pool: &PgPool, msp: Uuid, name: &str, role: &str) -> (Uuid, String) {
    let id = Uuid::now_v7();
    let key_id = hex(&Uuid::new_v4().as_bytes()[..8]);
    let secret = hex(Uuid::new_v4().as_bytes()) + &hex(Uuid::new_v4().as_bytes());
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&[0x5a; 32]).expect("any key length");
    mac.update(key_id.as_bytes());
    mac.update(&[0]);
    mac.update(secret.as_bytes());
    let digest = mac.finalize().into_bytes().to_vec();
    sqlx::query(
        "insert into api_key (api_key_id, msp_id, key_id, secret_hmac, name, role)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(msp)
    .bind(&key_id)
    .bind(digest)
    .bind(name)
    .bind(role)
    .execute(pool)
    .await
    .expect("old key");
    (id, format!("tnty_{key_id}_{secret}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[sqlx::test(migrations = false)]
async fn the_migration_gives_every_older_key_a_person_of_its_own(pool: PgPool) {
    tenantry_store::MIGRATOR
        .run_to(LAST_MIGRATION_BEFORE, &pool)
        .await
        .expect("the schema before operators");
    let msp = Uuid::now_v7();
    sqlx::query("insert into msp (msp_id, name) values ($1, 'Old MSP')")
        .bind(msp)
        .execute(&pool)
        .await
        .expect("msp");
    let (owner_id, owner) = insert_old_key(&pool, msp, "initial owner key", "owner").await;
    let (admin_id, admin) = insert_old_key(&pool, msp, &"a".repeat(100), "admin").await;
    let org = Uuid::now_v7();
    sqlx::query("insert into organization (organization_id, msp_id, name) values ($1, $2, 'Org')")
        .bind(org)
        .bind(msp)
        .execute(&pool)
        .await
        .expect("organization");
    // A request of the owner's key, pending when the migration runs.
    let action = Uuid::now_v7();
    sqlx::query(
        "insert into action_request (action_id, msp_id, organization_id, action, state, targets,
             parameters, requested_by_key, requester_kind, approval_required, approver_roles, expires_at)
         values ($1, $2, $3, 'revoke_sessions', 'pending_approval', '[]', '{}', $4, 'technician', true,
             '{owner,admin}', now() + interval '1 hour')",
    )
    .bind(action)
    .bind(msp)
    .bind(org)
    .bind(owner_id)
    .execute(&pool)
    .await
    .expect("pending request");

    tenantry_store::MIGRATOR
        .run(&pool)
        .await
        .expect("the operators migration");
    assert!(tenantry_store::MIGRATOR.version_exists(OPERATORS_MIGRATION));
    let holders: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
        "select k.api_key_id, k.operator_id, p.name from api_key k
         join operator p on p.msp_id = k.msp_id and p.operator_id = k.operator_id
         order by k.api_key_id",
    )
    .fetch_all(&pool)
    .await
    .expect("holders");
    assert_eq!(holders.len(), 2);
    assert_ne!(holders[0].1, holders[1].1, "one person per older key");
    assert!(
        holders
            .iter()
            .all(|(_, _, name)| name.chars().count() <= 100)
    );
    let requester: Option<Uuid> =
        sqlx::query_scalar("select requested_by_operator from action_request where action_id = $1")
            .bind(action)
            .fetch_one(&pool)
            .await
            .expect("requester");
    assert_eq!(requester, Some(owner_id), "the owner key's person");

    // Both keys still work, and the admin's approval of the owner's request still passes.
    let app = TestApp::spawn(pool).await;
    let owner_me = me(&app, &owner).await;
    assert_eq!(owner_me["operator"]["id"], owner_id.to_string());
    assert_eq!(
        me(&app, &admin).await["operator"]["id"],
        admin_id.to_string()
    );
    let approved = decide(&app, &admin, &action.to_string(), "approve").await;
    assert_eq!(approved.status(), 200);
}
