//! Managing API keys through the API: who may create which keys, validation, pagination,
//! revocation rules.

use serde_json::{Value, json};
use sqlx::PgPool;
use tenantry_domain::Role;
use uuid::Uuid;

use crate::helpers::{TestApp, assert_problem};

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn an_owner_creates_a_key_that_works_and_is_shown_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;

    let response = app
        .post_json(
            "/api/v1/api-keys",
            &msp.owner_key,
            json!({"name": "PSA integration", "role": "technician"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("json");
    let new_key = created["api_key"]
        .as_str()
        .expect("the key is returned")
        .to_owned();
    assert!(new_key.starts_with(&format!(
        "tnty_{}_",
        created["key"]["key_id"].as_str().expect("key id")
    )));
    assert_eq!(created["key"]["role"], "technician");
    assert_eq!(created["key"]["name"], "PSA integration");
    assert_eq!(created["key"]["created_by"], msp.owner_key_id.to_string());

    let me: Value = app
        .get("/api/v1/me", &new_key)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["key"]["role"], "technician");
    assert_eq!(me["msp"]["id"], msp.id.to_string());

    let id = created["key"]["id"].as_str().expect("id");
    let fetched: Value = app
        .get(&format!("/api/v1/api-keys/{id}"), &msp.owner_key)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(fetched["id"], id);
    assert!(
        fetched.get("api_key").is_none(),
        "the secret is shown only at creation"
    );
    let listed = app
        .get("/api/v1/api-keys", &msp.owner_key)
        .await
        .text()
        .await
        .expect("text");
    assert!(
        !listed.contains(&new_key[22..]),
        "listing never shows secrets"
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn technicians_and_viewers_cannot_manage_keys(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    for role in [Role::Technician, Role::Viewer] {
        let (_, key) = app.key_for(&msp, role).await;
        assert_eq!(
            app.get("/api/v1/me", &key).await.status(),
            200,
            "{role} can read itself"
        );
        assert_problem(app.get("/api/v1/api-keys", &key).await, 403, "FORBIDDEN").await;
        assert_problem(
            app.post_json(
                "/api/v1/api-keys",
                &key,
                json!({"name": "x", "role": "viewer"}),
            )
            .await,
            403,
            "FORBIDDEN",
        )
        .await;
        assert_problem(
            app.delete(&format!("/api/v1/api-keys/{}", msp.owner_key_id), &key)
                .await,
            403,
            "FORBIDDEN",
        )
        .await;
        assert_problem(
            app.get(&format!("/api/v1/api-keys/{}", msp.owner_key_id), &key)
                .await,
            403,
            "FORBIDDEN",
        )
        .await;
    }
    let count: i64 = sqlx::query_scalar("select count(*) from api_key where revoked_at is null")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(count, 3, "nothing was created or revoked");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn admins_cannot_mint_or_revoke_owner_keys(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let (_, admin) = app.key_for(&msp, Role::Admin).await;

    let body = assert_problem(
        app.post_json(
            "/api/v1/api-keys",
            &admin,
            json!({"name": "escalate", "role": "owner"}),
        )
        .await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("owner")),
        "{body}"
    );
    assert_problem(
        app.delete(&format!("/api/v1/api-keys/{}", msp.owner_key_id), &admin)
            .await,
        403,
        "FORBIDDEN",
    )
    .await;

    let created = app
        .post_json(
            "/api/v1/api-keys",
            &admin,
            json!({"name": "helper", "role": "admin"}),
        )
        .await;
    assert_eq!(created.status(), 201);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn the_last_owner_key_cannot_be_revoked(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let own = format!("/api/v1/api-keys/{}", msp.owner_key_id);
    assert_problem(
        app.delete(&own, &msp.owner_key).await,
        409,
        "LAST_OWNER_KEY",
    )
    .await;

    let second: Value = app
        .post_json(
            "/api/v1/api-keys",
            &msp.owner_key,
            json!({"name": "second owner", "role": "owner"}),
        )
        .await
        .json()
        .await
        .expect("json");
    let second_key = second["api_key"].as_str().expect("key").to_owned();
    assert_eq!(app.delete(&own, &second_key).await.status(), 204);
    assert_eq!(
        app.delete(&own, &second_key).await.status(),
        204,
        "revoking twice is harmless"
    );
    assert_problem(
        app.get("/api/v1/me", &msp.owner_key).await,
        401,
        "UNAUTHENTICATED",
    )
    .await;
    let second_own = format!(
        "/api/v1/api-keys/{}",
        second["key"]["id"].as_str().expect("id")
    );
    assert_problem(
        app.delete(&second_own, &second_key).await,
        409,
        "LAST_OWNER_KEY",
    )
    .await;
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn keys_can_be_limited_to_the_msps_own_organizations(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let other = app.create_msp("Fabrikam Partners").await;
    let mine = app.insert_organization(&msp, "Woodgrove Bank").await;
    let theirs = app.insert_organization(&other, "Litware").await;

    let created = app
        .post_json(
            "/api/v1/api-keys",
            &msp.owner_key,
            json!({"name": "Woodgrove only", "role": "admin", "organization_ids": [mine]}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    assert_eq!(created["key"]["organization_ids"], json!([mine]));
    let limited = created["api_key"].as_str().expect("key");
    let me: Value = app
        .get("/api/v1/me", limited)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["key"]["organization_ids"], json!([mine]));
    // A key limited to some organizations manages no keys, whatever its role.
    assert_problem(app.get("/api/v1/api-keys", limited).await, 403, "FORBIDDEN").await;

    let body = assert_problem(
        app.post_json(
            "/api/v1/api-keys",
            &msp.owner_key,
            json!({"name": "sneaky", "role": "viewer", "organization_ids": [theirs]}),
        )
        .await,
        422,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "organization_ids");
    let linked: i64 =
        sqlx::query_scalar("select count(*) from api_key_organization where organization_id = $1")
            .bind(theirs)
            .fetch_one(&app.pool)
            .await
            .expect("count");
    assert_eq!(linked, 0);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn invalid_key_requests_name_the_bad_fields(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let cases = [
        (json!({"name": "  ", "role": "viewer"}), "name"),
        (json!({"name": "x".repeat(101), "role": "viewer"}), "name"),
        (
            json!({"name": "ok", "role": "viewer", "organization_ids": []}),
            "organization_ids",
        ),
        (json!({"name": "ok", "role": "root"}), "body"),
        (
            json!({"name": "ok", "role": "viewer", "scopes": ["all"]}),
            "body",
        ),
        (json!({"role": "viewer"}), "body"),
    ];
    for (body, field) in cases {
        let problem = assert_problem(
            app.post_json("/api/v1/api-keys", &msp.owner_key, body.clone())
                .await,
            422,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{body} → {problem}");
    }
    let count: i64 = sqlx::query_scalar("select count(*) from api_key")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(count, 1, "no key was created by an invalid request");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn key_lists_page_with_a_cursor(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    for _ in 0..4 {
        app.key_for(&msp, Role::Viewer).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/api-keys?limit=2".to_owned();
    loop {
        let page: Value = app
            .get(&path, &msp.owner_key)
            .await
            .json()
            .await
            .expect("json");
        let data = page["data"].as_array().expect("data");
        assert!(data.len() <= 2);
        seen.extend(
            data.iter()
                .map(|key| key["id"].as_str().expect("id").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/api-keys?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "every key once: {seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5);

    for bad in ["limit=0", "limit=101", "cursor=not-a-cursor"] {
        assert_problem(
            app.get(&format!("/api/v1/api-keys?{bad}"), &msp.owner_key)
                .await,
            422,
            "INVALID_REQUEST",
        )
        .await;
    }
    assert_problem(
        app.get("/api/v1/api-keys?limit=abc", &msp.owner_key).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_problem(
        app.get("/api/v1/api-keys?colour=blue", &msp.owner_key)
            .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_problem(
        app.get("/api/v1/api-keys/not-a-uuid", &msp.owner_key).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_problem(
        app.get(
            &format!("/api/v1/api-keys/{}", Uuid::now_v7()),
            &msp.owner_key,
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_key_revoked_mid_request_cannot_mint_or_revoke_keys(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let (admin_id, admin_key) = app.key_for(&msp, Role::Admin).await;
    let (viewer_id, _) = app.key_for(&msp, Role::Viewer).await;
    // Authenticated first, then revoked before the work: as with a slow request body.
    let principal = app
        .store
        .authenticate(&admin_key)
        .await
        .expect("valid at first");
    sqlx::query("update api_key set revoked_at = now() where api_key_id = $1")
        .bind(admin_id)
        .execute(&app.pool)
        .await
        .expect("revoke");
    let scope = app.store.scope(&principal);
    let new = tenantry_store::NewApiKey {
        name: tenantry_domain::DisplayName::parse("late").expect("name"),
        role: Role::Admin,
        organizations: tenantry_domain::OrganizationLimit::All,
        operator: tenantry_store::KeyHolder::Minter,
    };
    assert!(matches!(
        scope.create_api_key(new).await,
        Err(tenantry_store::StoreError::CallerRevoked)
    ));
    assert!(matches!(
        scope
            .revoke_api_key(tenantry_domain::ApiKeyRecordId::from_uuid(viewer_id))
            .await,
        Err(tenantry_store::StoreError::CallerRevoked)
    ));
    let count: i64 = sqlx::query_scalar("select count(*) from api_key where revoked_at is null")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(count, 2, "nothing minted, the viewer key untouched");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_limited_owner_key_does_not_count_as_the_surviving_owner(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let organization = app.insert_organization(&msp, "Woodgrove Bank").await;
    let limited = app
        .post_json(
            "/api/v1/api-keys",
            &msp.owner_key,
            json!({"name": "limited owner", "role": "owner", "organization_ids": [organization]}),
        )
        .await;
    assert_eq!(limited.status(), 201);
    // The limited owner cannot manage keys, so the unlimited one is still the last.
    assert_problem(
        app.delete(
            &format!("/api/v1/api-keys/{}", msp.owner_key_id),
            &msp.owner_key,
        )
        .await,
        409,
        "LAST_OWNER_KEY",
    )
    .await;
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn two_owner_keys_revoking_each_other_at_once_leave_exactly_one(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for trial in 0..30 {
        let msp = app.create_msp(&format!("MSP {trial}")).await;
        let (second_id, second_key) = app.key_for(&msp, Role::Owner).await;
        let first = format!("/api/v1/api-keys/{}", msp.owner_key_id);
        let second = format!("/api/v1/api-keys/{second_id}");
        let (a, b) = tokio::join!(
            app.delete(&second, &msp.owner_key),
            app.delete(&first, &second_key)
        );
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [204, 401],
            "trial {trial}: one revocation wins, the other's own key is gone by then"
        );
        let active: i64 = sqlx::query_scalar(
            "select count(*) from api_key where msp_id = $1 and role = 'owner' and revoked_at is null",
        )
        .bind(msp.id)
        .fetch_one(&app.pool)
        .await
        .expect("count");
        assert_eq!(active, 1, "trial {trial}");
    }
}
