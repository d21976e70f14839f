//! Two `tenantry api` processes over one database: each answers authentication from its
//! own memory, and a key revoked through either one is refused by both on the very next
//! request.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::process::{Running, Tenantry, database_url_for, http_get};

struct ApiProcess {
    base: String,
    _running: Running,
}

impl ApiProcess {
    fn start(database_url: &str) -> Self {
        let mut running = Tenantry::new()
            .database(database_url)
            .env("TENANTRY__HTTP__ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .arg("api")
            .spawn();
        let line = running.wait_for_stderr("listening addr=", Duration::from_secs(60));
        let addr = line
            .split("listening addr=")
            .nth(1)
            .expect("address")
            .trim()
            .to_owned();
        Self {
            base: format!("http://{addr}"),
            _running: running,
        }
    }

    async fn me(&self, key: &str) -> u16 {
        http_get(&format!("{}/api/v1/me", self.base), Some(key))
            .await
            .0
    }

    /// Key rows this process took from its memory so far (its `/metrics`).
    async fn lookups_from_memory(&self) -> u64 {
        let (_, text) = http_get(&format!("{}/metrics", self.base), None).await;
        text.lines()
            .find(|line| line.starts_with("tenantry_api_key_lookups_total{source=\"memory\"}"))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    }

    /// Uses `key` until this process answers it from memory.
    async fn warm(&self, key: &str) {
        let before = self.lookups_from_memory().await;
        for _ in 0..100 {
            assert_eq!(self.me(key).await, 200);
            if self.lookups_from_memory().await > before {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (_, text) = http_get(&format!("{}/metrics", self.base), None).await;
        panic!("{} never answered the key from memory:\n{text}", self.base);
    }

    async fn create_key(&self, owner: &str, name: &str) -> (String, String) {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v1/api-keys", self.base))
            .bearer_auth(owner)
            .json(&json!({"name": name, "role": "technician"}))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("json");
        (
            body["key"]["id"].as_str().expect("id").to_owned(),
            body["api_key"].as_str().expect("key").to_owned(),
        )
    }

    async fn revoke(&self, owner: &str, id: &str) {
        let response = reqwest::Client::new()
            .delete(format!("{}/api/v1/api-keys/{id}", self.base))
            .bearer_auth(owner)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 204);
    }
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_key_revoked_through_one_api_process_is_refused_by_the_other_at_once(pool: PgPool) {
    tenantry_graph::install_default_crypto();
    let url = database_url_for(&pool);
    let first = ApiProcess::start(&url);
    let second = ApiProcess::start(&url);
    let created = Tenantry::new()
        .database(&url)
        .args(["admin", "create-msp", "--name", "Contoso IT", "--json"])
        .output();
    let created: Value = serde_json::from_slice(&created.stdout).expect("json");
    let owner = created["api_key"].as_str().expect("key").to_owned();

    for (round, (revoking, other)) in [(&first, &second), (&second, &first)]
        .into_iter()
        .cycle()
        .take(6)
        .enumerate()
    {
        let (id, key) = revoking.create_key(&owner, &format!("PSA {round}")).await;
        // Both processes hold the key in memory before it is revoked.
        revoking.warm(&key).await;
        other.warm(&key).await;
        revoking.revoke(&owner, &id).await;
        assert_eq!(
            other.me(&key).await,
            401,
            "round {round}: the other process"
        );
        assert_eq!(
            revoking.me(&key).await,
            401,
            "round {round}: the revoking process"
        );
    }
    // The owner key stayed good and cached throughout.
    assert_eq!(first.me(&owner).await, 200);
    assert_eq!(second.me(&owner).await, 200);
}
