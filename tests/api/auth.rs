//! API-key authentication: good, wrong, unknown, malformed and revoked keys; what is
//! stored; throttling of repeated failures.

use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{TestApp, assert_problem};

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_good_key_identifies_its_msp_and_records_its_use(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;

    let response = app.get("/api/v1/me", &msp.owner_key).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let me: Value = response.json().await.expect("json");
    assert_eq!(me["msp"]["id"], msp.id.to_string());
    assert_eq!(me["msp"]["name"], "Contoso IT");
    assert_eq!(me["key"]["role"], "owner");
    assert_eq!(me["key"]["organization_ids"], Value::Null);

    // The use is written in the background, at most once a minute per key.
    assert_eq!(app.store.flush_key_usage().await.expect("flush"), 1);
    let again: Value = app
        .get("/api/v1/me", &msp.owner_key)
        .await
        .json()
        .await
        .expect("json");
    assert!(
        again["key"]["last_used_at"].is_string(),
        "last_used_at is recorded: {again}"
    );
    assert_eq!(
        app.store.flush_key_usage().await.expect("flush"),
        0,
        "a use within the minute is not written again"
    );
    assert!(
        msp.owner_key
            .contains(me["key"]["key_id"].as_str().expect("key id"))
    );
    assert!(
        !me.to_string().contains(&msp.owner_key[22..]),
        "the secret is never echoed"
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn me_is_answered_from_the_key_held_in_memory_as_the_database_has_it(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    crate::helpers::wait_until_keys_cached(&app.store).await;
    let msp = app.create_msp("Contoso IT").await;
    let me: Value = app
        .get("/api/v1/me", &msp.owner_key)
        .await
        .json()
        .await
        .expect("json");
    let id: uuid::Uuid = me["key"]["id"].as_str().expect("id").parse().expect("uuid");
    let written: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select last_used_at from api_key where api_key_id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .expect("row");
    assert_eq!(written, None, "the use is written later, in the background");
    assert!(
        me["key"]["last_used_at"].is_string(),
        "the answer knows of this very use: {me}"
    );
    // Field by field what the database holds (the key list reads it there).
    let listed = app.get_all("/api/v1/api-keys", &msp.owner_key).await;
    let row = listed
        .iter()
        .find(|k| k["id"] == me["key"]["id"])
        .expect("listed");
    for field in [
        "key_id",
        "name",
        "role",
        "organization_ids",
        "operator",
        "created_by",
        "created_at",
        "revoked_at",
    ] {
        assert_eq!(me["key"][field], row[field], "{field}");
    }
    assert_eq!(me["msp"]["name"], "Contoso IT");
    assert_eq!(me["msp"]["id"], msp.id.to_string());
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn only_an_hmac_of_the_secret_is_stored(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let secret = msp.owner_key.rsplit('_').next().expect("secret part");
    let rows: Vec<String> = sqlx::query_scalar("select row_to_json(k)::text from api_key k")
        .fetch_all(&app.pool)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    assert!(
        !rows[0].contains(secret),
        "the key's secret must not be stored: {}",
        rows[0]
    );
    let digest_len: i32 = sqlx::query_scalar("select octet_length(secret_hmac) from api_key")
        .fetch_one(&app.pool)
        .await
        .expect("digest");
    assert_eq!(digest_len, 32);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn refused_keys_answer_401_with_a_bearer_challenge(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let (key_id, secret) = {
        let rest = msp.owner_key.strip_prefix("tnty_").expect("prefix");
        rest.split_once('_').expect("two parts")
    };
    let wrong_secret = format!("tnty_{key_id}_{}", "0".repeat(64));
    let unknown_id = format!("tnty_ffffffffffffffff_{secret}");
    let malformed = format!("tnty_{key_id}_{}", &secret[..10]);

    for (label, key) in [
        ("wrong secret", wrong_secret.as_str()),
        ("unknown key id", unknown_id.as_str()),
        ("malformed", malformed.as_str()),
        ("not a key at all", "hunter2"),
    ] {
        let response = app.get("/api/v1/me", key).await;
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(
            challenge.starts_with("Bearer"),
            "{label}: WWW-Authenticate is {challenge:?}"
        );
        let body = assert_problem(response, 401, "UNAUTHENTICATED").await;
        assert!(
            !body.to_string().contains(secret),
            "{label}: the presented secret is not echoed"
        );
    }

    let missing = app
        .request(Method::GET, "/api/v1/me", None)
        .send()
        .await
        .expect("sent");
    assert!(missing.headers().contains_key("www-authenticate"));
    assert_problem(missing, 401, "UNAUTHENTICATED").await;

    let basic = app
        .request(Method::GET, "/api/v1/me", None)
        .header("authorization", format!("Basic {}", msp.owner_key))
        .send()
        .await
        .expect("sent");
    assert_problem(basic, 401, "UNAUTHENTICATED").await;

    // The failures did not disturb the real key.
    assert_eq!(app.get("/api/v1/me", &msp.owner_key).await.status(), 200);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_revoked_key_stops_working_at_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let (admin_id, admin_key) = app.key_for(&msp, tenantry_domain::Role::Admin).await;
    assert_eq!(app.get("/api/v1/me", &admin_key).await.status(), 200);

    let revoked = app
        .delete(&format!("/api/v1/api-keys/{admin_id}"), &msp.owner_key)
        .await;
    assert_eq!(revoked.status(), 204);

    assert_problem(
        app.get("/api/v1/me", &admin_key).await,
        401,
        "UNAUTHENTICATED",
    )
    .await;
    let revoked_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select revoked_at from api_key where api_key_id = $1")
            .bind(admin_id)
            .fetch_one(&app.pool)
            .await
            .expect("row");
    assert!(revoked_at.is_some());
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn repeated_bad_keys_from_one_address_are_rate_limited_but_valid_keys_pass(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |config| config.auth_failures_per_minute = 3).await;
    let msp = app.create_msp("Contoso IT").await;
    let guess = format!("tnty_0123456789abcdef_{}", "a".repeat(64));
    for _ in 0..3 {
        assert_problem(app.get("/api/v1/me", &guess).await, 401, "UNAUTHENTICATED").await;
    }
    let limited = app.get("/api/v1/me", &guess).await;
    let retry_after: u64 = limited
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_problem(limited, 429, "RATE_LIMITED").await;
    // While blocked, every failure from the address is a 429, whatever was wrong with it:
    // a guesser learns nothing more.
    let (key_id, _) = msp
        .owner_key
        .strip_prefix("tnty_")
        .and_then(|rest| rest.split_once('_'))
        .expect("key parts");
    let wrong_secret = format!("tnty_{key_id}_{}", "0".repeat(64));
    for key in [guess.as_str(), wrong_secret.as_str(), "hunter2"] {
        assert_problem(app.get("/api/v1/me", key).await, 429, "RATE_LIMITED").await;
    }
    let missing = app
        .request(Method::GET, "/api/v1/me", None)
        .send()
        .await
        .expect("sent");
    assert_problem(missing, 429, "RATE_LIMITED").await;
    // A valid key from the same address (a colleague behind the same NAT or proxy) still
    // works, and its success does not lift the block for the guesser.
    assert_eq!(app.get("/api/v1/me", &msp.owner_key).await.status(), 200);
    assert_problem(app.get("/api/v1/me", &guess).await, 429, "RATE_LIMITED").await;
    // Unauthenticated probes stay available.
    assert_eq!(
        app.request(Method::GET, "/healthz", None)
            .send()
            .await
            .expect("sent")
            .status(),
        200
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn keys_are_answered_from_memory_until_the_notice_connection_is_lost(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Contoso IT").await;
    let (admin_id, admin_key) = app.key_for(&msp, tenantry_domain::Role::Admin).await;
    assert_eq!(app.get("/api/v1/me", &admin_key).await.status(), 200);
    let before = app.store.key_lookups();
    assert_eq!(app.get("/api/v1/me", &admin_key).await.status(), 200);
    let after = app.store.key_lookups();
    assert_eq!(
        (
            after.memory - before.memory,
            after.database - before.database
        ),
        (1, 0),
        "the second use is answered from memory"
    );

    // The notice connection dies (e.g. PostgreSQL restarted, a proxy cut it): notices may
    // be missed, so the cache is no longer trusted.
    let killed: Vec<bool> = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity
         where datname = current_database() and query ilike 'listen%tenantry_api_keys%'",
    )
    .fetch_all(&app.pool)
    .await
    .expect("terminate");
    assert_eq!(killed, [true], "one listening connection");
    for _ in 0..500 {
        if !app.store.caches_keys() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!app.store.caches_keys(), "the lost listener is noticed");
    // A change no notice announces (here: straight in the database) is seen at once.
    sqlx::query("update api_key set revoked_at = now() where api_key_id = $1")
        .bind(admin_id)
        .execute(&app.pool)
        .await
        .expect("revoke");
    assert_eq!(app.get("/api/v1/me", &admin_key).await.status(), 401);

    // The watch subscribes again and starts from an empty cache.
    crate::helpers::wait_until_keys_cached(&app.store).await;
    assert_eq!(app.get("/api/v1/me", &admin_key).await.status(), 401);
    assert_eq!(app.get("/api/v1/me", &msp.owner_key).await.status(), 200);
}
