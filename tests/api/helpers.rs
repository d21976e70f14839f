//! `TestApp`: the real API on a random port, over a fresh database per test (from
//! `#[sqlx::test]`), driven with a real HTTP client.

use std::sync::{Arc, Mutex};

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use sqlx::PgPool;
use tenantry_api::{ApiConfig, Metrics};
use tenantry_domain::{DisplayName, OrganizationLimit, Role};
use tenantry_store::{ApiKeyPepper, KeyHolder, NewApiKey, Store};
use tokio::sync::oneshot;
use uuid::Uuid;

pub struct TestApp {
    pub url: String,
    pub pool: PgPool,
    pub store: Store,
    /// Microsoft, for this test: the demo tenants without the 50,000-user one.
    pub sim: tenantry_graph_sim::GraphSim,
    pub scenario: tenantry_graph_sim::Scenario,
    /// The app's Graph client and token cache, shared with workers as in `serve`.
    pub graph: tenantry_graph::GraphAccess,
    /// The settings the app was built from.
    pub settings: tenantry::settings::Settings,
    client: reqwest::Client,
    _shutdown: oneshot::Sender<()>,
    /// Stops the API key watch (dropping it is enough).
    _key_watch: tokio::sync::watch::Sender<bool>,
}

/// One MSP with its first owner key.
pub struct TestMsp {
    pub id: Uuid,
    pub name: String,
    pub owner_key: String,
    pub owner_key_id: Uuid,
}

/// The binary's settings for a test, loaded as `serve` loads them: `config/` in the
/// `test` environment, with the test secrets, Microsoft at `sim`, a 64 KiB body limit and
/// a failed-authentication limit that the tests do not hit by accident.
pub fn test_settings(sim: &tenantry_graph_sim::GraphSim) -> tenantry::settings::Settings {
    use base64::Engine;
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let vars = [
        ("TENANTRY__SECRETS__API_KEY_PEPPER", encode(&TEST_PEPPER)),
        ("TENANTRY__SECRETS__MASTER_KEY", encode(&TEST_MASTER_KEY)),
        ("TENANTRY__MICROSOFT__AUTHORITY_URL", sim.base_url()),
        ("TENANTRY__MICROSOFT__GRAPH_URL", sim.base_url()),
        ("TENANTRY__MICROSOFT__EXCHANGE_URL", sim.base_url()),
        ("TENANTRY__HTTP__BODY_LIMIT_BYTES", "65536".into()),
        ("TENANTRY__HTTP__AUTH_FAILURES_PER_MINUTE", "1000".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    tenantry::settings::Settings::load(&tenantry::settings::Sources {
        config_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        env_name: Some("test".into()),
        vars,
    })
    .expect("the test settings load")
}

const TEST_PEPPER: [u8; 32] = [0x5a; 32];

pub const TEST_MASTER_KEY: [u8; 32] = [0x4d; 32];

pub fn test_pepper() -> ApiKeyPepper {
    ApiKeyPepper::new(TEST_PEPPER.to_vec()).expect("pepper")
}

/// Waits for the API key watch to subscribe, so tests run on the cached path, as
/// `serve` does once started.
pub async fn wait_until_keys_cached(store: &Store) {
    for _ in 0..500 {
        if store.caches_keys() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the API key watch did not subscribe within 5 s");
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with(pool, |_| {}).await
    }

    /// The app as `serve` builds it (`tenantry::wiring`), with `tweak` applied to its HTTP
    /// settings.
    pub async fn spawn_with(pool: PgPool, tweak: impl FnOnce(&mut ApiConfig)) -> Self {
        let mut scenario = tenantry_graph_sim::scenario::demo();
        scenario.tenants.retain(|t| t.name != "litware");
        Self::spawn_on(pool, scenario, tweak).await
    }

    /// The app over a simulator loaded with `scenario`.
    pub async fn spawn_on(
        pool: PgPool,
        scenario: tenantry_graph_sim::Scenario,
        tweak: impl FnOnce(&mut ApiConfig),
    ) -> Self {
        tenantry_graph::install_default_crypto();
        let sim = tenantry_graph_sim::GraphSim::start(scenario.clone())
            .await
            .expect("simulator");
        let mut settings = test_settings(&sim);
        tweak(&mut settings.http);
        let store = Store::new(pool.clone(), settings.api_key_pepper().expect("pepper"))
            .with_keyring(settings.keyring().expect("keyring"));
        let graph = tenantry::wiring::graph_access(&settings, None).expect("graph access");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        // Where the simulator delivers Graph change notifications.
        settings.http.public_url.get_or_insert_with(|| url.clone());
        let app = tenantry_api::build(
            store.clone(),
            graph.clone(),
            &settings.http,
            Arc::new(Metrics::new()),
        )
        .expect("app builds");
        let (key_watch, stop_key_watch) = tokio::sync::watch::channel(false);
        tenantry_api::spawn_key_watch(store.clone(), stop_key_watch);
        wait_until_keys_cached(&store).await;
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(tenantry_api::serve(listener, app, async {
            let _ = stopped.await;
        }));
        Self {
            url,
            pool,
            store,
            sim,
            scenario,
            graph,
            settings,
            client: reqwest::Client::new(),
            _shutdown: shutdown,
            _key_watch: key_watch,
        }
    }

    pub fn request(&self, method: Method, path: &str, key: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.url));
        match key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Response {
        self.request(Method::GET, path, Some(key))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, key: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(key))
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn delete(&self, path: &str, key: &str) -> Response {
        self.request(Method::DELETE, path, Some(key))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn create_msp(&self, name: &str) -> TestMsp {
        let (msp, key, issued) = self
            .store
            .operator()
            .create_msp(
                DisplayName::parse(name).expect("name"),
                DisplayName::parse(&format!("Owner of {name}")).expect("operator name"),
            )
            .await
            .expect("create msp");
        TestMsp {
            id: msp.id.as_uuid(),
            name: msp.name,
            owner_key: issued.expose().to_owned(),
            owner_key_id: key.id.as_uuid(),
        }
    }

    /// A key of `role` for `msp`, made through the operator path (no API call), held by a
    /// person of its own.
    pub async fn key_for(&self, msp: &TestMsp, role: Role) -> (Uuid, String) {
        let new = NewApiKey {
            name: DisplayName::parse(&format!("{role} key")).expect("name"),
            role,
            organizations: OrganizationLimit::All,
            operator: KeyHolder::Minter,
        };
        let (record, issued) = self
            .store
            .operator()
            .create_key(tenantry_domain::MspId::from_uuid(msp.id), new)
            .await
            .expect("create key");
        (record.id.as_uuid(), issued.expose().to_owned())
    }

    /// A bare organization row for `msp`, without credentials (as no API call can make one).
    pub async fn insert_organization(&self, msp: &TestMsp, name: &str) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query("insert into organization (organization_id, msp_id, name) values ($1, $2, $3)")
            .bind(id)
            .bind(msp.id)
            .bind(name)
            .execute(&self.pool)
            .await
            .expect("insert organization");
        id
    }
}

/// Workers running in the test process; they stop when this is dropped.
pub struct Workers {
    stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Leader settings for tests: quick ticks and a short lease.
pub fn test_leader() -> tenantry_jobs::LeaderConfig {
    tenantry_jobs::LeaderConfig {
        tick: std::time::Duration::from_millis(100),
        lease: std::time::Duration::from_secs(3),
        ..Default::default()
    }
}

/// Engine settings for tests: quick polls and a short lease.
pub fn test_engine() -> tenantry_jobs::EngineConfig {
    tenantry_jobs::EngineConfig {
        concurrency: 4,
        poll_interval: std::time::Duration::from_millis(50),
        heartbeat_interval: std::time::Duration::from_millis(500),
        lease: std::time::Duration::from_secs(3),
        drain: std::time::Duration::from_secs(5),
        ..Default::default()
    }
}

impl TestApp {
    /// Starts the job engine (workers and leader) against this app's database and
    /// simulator.
    pub fn start_workers(&self) -> Workers {
        self.start_workers_with(test_engine())
    }

    /// [`TestApp::start_workers`] with other engine settings.
    pub fn start_workers_with(&self, engine: tenantry_jobs::EngineConfig) -> Workers {
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(tenantry_jobs::run(
            self.job_context(),
            engine,
            test_leader(),
            shutdown,
        ));
        Workers { stop }
    }

    /// Runs every job that is due, or becomes due within 30 s (snoozes, retries), to
    /// its end, in this task: the deterministic way for a test to let the workers do
    /// their part. Tests about concurrency, heartbeats and crashes start real workers
    /// instead ([`TestApp::start_workers`]).
    pub async fn run_pending_jobs(&self) -> usize {
        tenantry_jobs::engine(&self.job_context(), test_engine())
            .run_until_idle(std::time::Duration::from_secs(30))
            .await
            .expect("jobs run")
    }

    /// One round of the leader's maintenance (expiring approvals, closing what ended
    /// jobs left, queueing due scans and renewals, rescuing lost jobs), here and now.
    pub async fn run_maintenance(&self) {
        tenantry_jobs::leader::maintain_once(&self.store, &test_leader())
            .await
            .expect("maintenance");
    }

    /// What the binary's workers get: this app's store, Graph access and public URL.
    pub fn job_context(&self) -> tenantry_jobs::JobContext {
        tenantry::wiring::job_context(&self.store, &self.graph, &self.settings)
    }

    /// Runs the pending jobs, then returns the run, which must have ended.
    pub async fn finished_run(&self, key: &str, organization: &str, run: &str) -> Value {
        self.run_pending_jobs().await;
        let path = format!("/api/v1/organizations/{organization}/discovery-runs/{run}");
        let body: Value = self.get(&path, key).await.json().await.expect("run");
        assert!(
            !matches!(body["state"].as_str(), Some("queued" | "running")),
            "the run ended: {body}"
        );
        body
    }

    /// Polls a run until it leaves `queued`/`running` (or 60 s pass) and returns it: for
    /// tests whose workers run in the background.
    pub async fn wait_for_run(&self, key: &str, organization: &str, run: &str) -> Value {
        let path = format!("/api/v1/organizations/{organization}/discovery-runs/{run}");
        let mut body = Value::Null;
        for _ in 0..1200 {
            body = self.get(&path, key).await.json().await.expect("run");
            if !matches!(body["state"].as_str(), Some("queued" | "running")) {
                return body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("run {run} did not finish in 60 s: {body}");
    }

    /// Every row of a paginated list (following `next_cursor`).
    pub async fn get_all(&self, path: &str, key: &str) -> Vec<Value> {
        let mut rows = Vec::new();
        let mut cursor: Option<String> = None;
        let separator = if path.contains('?') { '&' } else { '?' };
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}{separator}limit=100&cursor={c}"),
                None => format!("{path}{separator}limit=100"),
            };
            let response = self.get(&url, key).await;
            assert_eq!(response.status(), 200, "{url}");
            let body: Value = response.json().await.expect("page");
            rows.extend(body["data"].as_array().cloned().unwrap_or_default());
            match body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return rows,
            }
        }
    }

    /// A Graph token for demo tenant `name`'s app, to change the tenant as its admin would.
    pub async fn graph_token(&self, name: &str) -> String {
        let t = self.demo(name);
        let response = self
            .client
            .post(format!(
                "{}/{}/oauth2/v2.0/token",
                self.sim.base_url(),
                t.id
            ))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &t.app().client_id.to_string()),
                ("client_secret", t.secret_value()),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .expect("token request");
        let body: Value = response.json().await.expect("token body");
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// Sends a Graph request to the simulator as demo tenant `name`'s app.
    pub async fn graph(
        &self,
        name: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let token = self.graph_token(name).await;
        let mut request = self
            .client
            .request(method, format!("{}/v1.0{path}", self.sim.base_url()))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("graph request")
    }
}

impl TestApp {
    pub fn demo(&self, name: &str) -> &tenantry_graph_sim::TenantSpec {
        self.scenario
            .tenants
            .iter()
            .find(|t| t.name == name)
            .expect("demo tenant")
    }

    /// Changes demo tenant `name` in the simulator, as an admin would in Entra (the
    /// simulator reloads its current scenario with the change).
    pub fn change_tenant(
        &self,
        name: &str,
        change: impl FnOnce(&mut tenantry_graph_sim::TenantSpec),
    ) {
        let mut scenario = self.sim.state().scenario();
        change(
            scenario
                .tenants
                .iter_mut()
                .find(|t| t.name == name)
                .expect("demo tenant"),
        );
        self.sim.state().load(scenario);
    }

    /// The body an MSP would send to connect demo tenant `name`.
    pub fn connect_body(&self, name: &str) -> Value {
        let t = self.demo(name);
        serde_json::json!({
            "name": t.display_name, "provider": "microsoft365", "tenant_id": t.id,
            "client_id": t.app().client_id, "client_secret": t.secret_value(),
        })
    }
}

/// Asserts the response is a problem document with `status` and `code`, and returns it.
pub async fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status of {}",
        response.url()
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("https://tenantry.dev/problems/")),
        "{body}"
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert_eq!(
        body["request_id"].as_str(),
        request_id.as_deref(),
        "request id in body and header"
    );
    body
}

/// Connects demo tenant `name` for `msp` and returns the organization id.
pub async fn connect(app: &TestApp, msp: &TestMsp, name: &str) -> String {
    let response = app
        .post_json(
            "/api/v1/organizations",
            &msp.owner_key,
            app.connect_body(name),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("body");
    created["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// The simulator's user at `index` of demo tenant `name`: (object id, UPN). Users 0–2
/// hold Global, User and Helpdesk Administrator; 5 is at risk; every fourth has an
/// authenticator app (the default) and a phone.
pub async fn sim_user(app: &TestApp, name: &str, index: usize) -> (String, String) {
    let users: Value = app
        .graph(name, Method::GET, "/users?$top=20", None)
        .await
        .json()
        .await
        .expect("users");
    let user = &users["value"][index];
    (
        user["id"].as_str().expect("id").to_owned(),
        user["userPrincipalName"].as_str().expect("upn").to_owned(),
    )
}

/// Graph calls the simulator served successfully with `method` on paths containing
/// `fragment`.
pub fn sim_calls(app: &TestApp, method: &str, fragment: &str) -> usize {
    app.sim
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path.contains(fragment) && r.status < 400)
        .count()
}

/// Connects a tenant with `body` and returns (organization id, first discovery run id).
pub async fn connect_run(app: &TestApp, key: &str, body: Value) -> (String, String) {
    let response = app.post_json("/api/v1/organizations", key, body).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("body");
    (
        created["organization"]["id"]
            .as_str()
            .expect("id")
            .to_owned(),
        created["discovery_run_id"]
            .as_str()
            .expect("run id")
            .to_owned(),
    )
}

/// Every log line the test's tasks write while it runs (this thread's subscriber, at
/// TRACE, so nothing is filtered out).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    pub fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}
