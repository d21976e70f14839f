//! A faithful local Microsoft identity platform + Microsoft Graph simulator, for
//! `tenantry dev`, the tests and the benchmarks. It knows nothing of Tenantry and depends
//! on no other crate of the workspace.
//!
//! One listener serves the login authority (`/{tenant}/oauth2/v2.0/token`, OpenID
//! configuration, JWKS), Graph (`/v1.0/...`) and a control API (`/_sim/...`). Wire
//! formats follow `graph-facts.md` (the reference notes of the project); where that
//! reference marks a behaviour UNVERIFIED, the code says so where it chooses.
//!
//! Partner mode (graph-facts-next §1): a partner tenant's multi-tenant app signs in to
//! customer tenants that hold its service principal, `/adminconsent` creates that principal
//! after a propagation delay, and the partner tenant answers the GDAP APIs
//! (`/v1.0/tenantRelationships/…`). `scenario::partner_demo` is the preset.
//!
//! The Exchange Online admin API (graph-facts-next §2): `POST
//! /adminapi/{beta|v1.0}/{tenant}/InvokeCommand` runs the modelled cmdlets on a simulated
//! Exchange organisation per tenant, for tokens asked for `https://outlook.office365.com/.default`.
//!
//! Change-notification subscriptions (`/v1.0/subscriptions`) make the simulator a client
//! too: it validates notification endpoints when a subscription is created and, while a
//! [`GraphSim`] runs, a background task POSTs change notifications for user and group
//! writes to them ([`SimState::notifications`] logs each delivery).
//!
//! # Performance
//!
//! Paging through all 50,000 users of the demo's `litware` tenant with `$top=999` and a
//! 12-property `$select` (51 pages over loopback, `cargo bench -p tenantry-graph-sim
//! --bench paging`, release build, this project's 2-core machine, 2026-11-22): the
//! simulator spends 535–646 ms in its handlers (1.5–1.9× the lower bound of generating and
//! serialising the same users once in-process, 348 ms); wall time 0.83–1.0 s. With 50 ms
//! of injected latency per request the run takes 3.6 s, 1.4× the sequential lower bound of
//! 51 × 50 ms. Users are generated on demand, so a large tenant costs no start-up time.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = tenantry_graph_sim::GraphSim::start(tenantry_graph_sim::scenario::demo()).await?;
//! println!("authority and Graph at {}", sim.base_url());
//! # Ok(()) }
//! ```

mod consent;
mod control;
mod exchange;
pub use control::credentials;
mod faults;
mod graph;
mod keys;
pub mod model;
mod notify;
pub mod partner;
pub mod permissions;
mod record;
pub mod scenario;
mod throttle;
mod tls;
mod token;
mod urlencoding;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use faults::{FaultSpec, Faults, ScriptedFault};
pub use model::subscriptions::Subscription;
pub use notify::{DeliveryKind, DeliveryRecord, LifecycleEvent};
pub use record::RequestRecord;
pub use scenario::{Scenario, TenantSpec};
pub use tls::{TlsError, TlsOptions};

use chrono::{DateTime, Utc};
use model::World;
use uuid::Uuid;

/// Shared simulator state; cheap to clone.
#[derive(Clone)]
pub struct SimState {
    inner: Arc<Inner>,
}

struct Inner {
    scenario: RwLock<Scenario>,
    world: RwLock<World>,
    base_url: RwLock<String>,
    log: Mutex<Vec<RequestRecord>>,
    faults: RwLock<Faults>,
    throttle: Mutex<throttle::Throttle>,
    /// Deliveries of change and lifecycle notifications.
    notifications: Mutex<Vec<DeliveryRecord>>,
    /// The client to notification endpoints, built on first use.
    http: OnceLock<Option<reqwest::Client>>,
    /// How far the login authority's clock is from the machine's, for client assertions'
    /// `nbf`/`exp` (a caller whose clock is off).
    clock_offset: RwLock<chrono::Duration>,
}

impl SimState {
    pub fn new(scenario: Scenario) -> Self {
        let world = World::new(&scenario);
        Self {
            inner: Arc::new(Inner {
                scenario: RwLock::new(scenario),
                world: RwLock::new(world),
                base_url: RwLock::new(String::new()),
                log: Mutex::new(Vec::new()),
                faults: RwLock::new(Faults::default()),
                throttle: Mutex::new(throttle::Throttle::default()),
                notifications: Mutex::new(Vec::new()),
                http: OnceLock::new(),
                clock_offset: RwLock::new(chrono::Duration::zero()),
            }),
        }
    }

    pub(crate) fn world(&self) -> RwLockReadGuard<'_, World> {
        self.inner.world.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn world_mut(&self) -> RwLockWriteGuard<'_, World> {
        self.inner.world.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The scheme and authority the simulator is reached at, e.g. `http://127.0.0.1:9000`.
    pub fn base_url(&self) -> String {
        self.inner
            .base_url
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_base_url(&self, url: String) {
        *self
            .inner
            .base_url
            .write()
            .unwrap_or_else(|p| p.into_inner()) = url;
    }

    /// Replaces the scenario and forgets every write (subscriptions included), the request
    /// and delivery logs and the throttles.
    pub fn load(&self, scenario: Scenario) {
        *self.world_mut() = World::new(&scenario);
        *self
            .inner
            .scenario
            .write()
            .unwrap_or_else(|p| p.into_inner()) = scenario;
        self.inner
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.clear_notifications();
        *self
            .inner
            .throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = throttle::Throttle::default();
    }

    /// Back to the loaded scenario's initial state.
    pub fn reset(&self) {
        let scenario = self.scenario();
        self.load(scenario);
        *self.inner.faults.write().unwrap_or_else(|p| p.into_inner()) = Faults::default();
        self.set_clock_offset(chrono::Duration::zero());
    }

    /// Moves the login authority's clock by `offset` for the time checks of client
    /// assertions, as if the caller's clock were off by `-offset` (zero: in step).
    pub fn set_clock_offset(&self, offset: chrono::Duration) {
        *self
            .inner
            .clock_offset
            .write()
            .unwrap_or_else(|p| p.into_inner()) = offset;
    }

    /// The login authority's time: the machine's, moved by the clock offset.
    pub(crate) fn authority_now(&self) -> DateTime<Utc> {
        Utc::now()
            + *self
                .inner
                .clock_offset
                .read()
                .unwrap_or_else(|p| p.into_inner())
    }

    pub fn scenario(&self) -> Scenario {
        self.inner
            .scenario
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Every request served so far (login and Graph; not the control API).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn clear_requests(&self) {
        self.inner
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.inner.faults.write().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    /// What the configured faults do to one request (no copy of the configuration): a
    /// matching scripted fault first (used up), else the rates.
    pub(crate) fn decide_fault(
        &self,
        tenant: Option<&str>,
        method: &str,
        path: &str,
    ) -> faults::Decision {
        let faults = self.inner.faults.read().unwrap_or_else(|p| p.into_inner());
        if faults.scripted.is_empty() {
            return faults.decide(tenant);
        }
        drop(faults);
        let mut faults = self.inner.faults.write().unwrap_or_else(|p| p.into_inner());
        match faults.take_scripted(method, path) {
            Some(outcome) => faults::Decision {
                delay: None,
                outcome,
            },
            None => faults.decide(tenant),
        }
    }

    /// Gives user `user` (object id or UPN) of tenant `tenant` (GUID, domain or name)
    /// these authentication methods, as Graph lists them (`@odata.type`, `id`, …); the one
    /// whose id is `default` is the default MFA method. Returns whether the user exists.
    /// Makes Exchange refuse every cmdlet of `tenant` (by id or name) for `delay` from now
    /// as if the app's role assignment had not reached Exchange yet; `None` ends it.
    /// `false` for an unknown tenant.
    pub fn set_exchange_rbac_delay(
        &self,
        tenant: &str,
        delay: Option<std::time::Duration>,
    ) -> bool {
        let mut world = self.world_mut();
        let Some(index) = world.tenant_named(tenant) else {
            return false;
        };
        world.tenants[index].exchange_rbac_ready_at = delay.map(|d| {
            Utc::now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
        });
        true
    }

    pub fn set_authentication_methods(
        &self,
        tenant: &str,
        user: &str,
        methods: Vec<serde_json::Value>,
        default: Option<&str>,
    ) -> bool {
        let mut world = self.world_mut();
        let Some(tenant) = world.tenant_named(tenant) else {
            return false;
        };
        let tenant = &mut world.tenants[tenant];
        let Some(index) = tenant.users.find(user) else {
            return false;
        };
        let methods = methods
            .into_iter()
            .map(|body| {
                let is_default = default.is_some_and(|d| body["id"].as_str() == Some(d));
                model::methods::Method::new(body, is_default)
            })
            .collect();
        tenant.methods.set(index, methods);
        true
    }

    /// Registers a certificate credential on app `client_id` of tenant `tenant` (GUID,
    /// domain or name), as an admin uploading it in Entra would: in the running world and in
    /// the scenario (so a reload keeps it). The certificate's thumbprint is answered, or
    /// `None` when there is no such app or the PEM is not an RSA certificate.
    pub fn add_certificate(
        &self,
        tenant: &str,
        client_id: Uuid,
        spec: scenario::CertificateSpec,
    ) -> Option<String> {
        let certificate = model::Certificate::from_spec(&spec)?;
        let thumbprint = certificate.thumbprint_s256.clone();
        let mut world = self.world_mut();
        let index = world.tenant_named(tenant)?;
        let app = world.tenants[index]
            .apps
            .iter_mut()
            .find(|a| a.client_id == client_id)?;
        app.certificates.push(certificate);
        self.in_scenario_app(index, client_id, |app| app.certificates.push(spec));
        Some(thumbprint)
    }

    /// Applies `change` to app `client_id` of the scenario's tenant `index` too, so that a
    /// reload keeps what the control API changed in the running world.
    fn in_scenario_app(
        &self,
        index: usize,
        client_id: Uuid,
        change: impl FnOnce(&mut scenario::AppSpec),
    ) {
        let mut scenario = self
            .inner
            .scenario
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(app) = scenario
            .tenants
            .get_mut(index)
            .and_then(|t| t.apps.iter_mut().find(|a| a.client_id == client_id))
        {
            change(app);
        }
    }

    /// Removes the certificate credential `key_id` from an app (world and scenario);
    /// `false` when there is none.
    pub fn remove_certificate(&self, tenant: &str, client_id: Uuid, key_id: Uuid) -> bool {
        let mut world = self.world_mut();
        let Some(index) = world.tenant_named(tenant) else {
            return false;
        };
        let Some(app) = world.tenants[index]
            .apps
            .iter_mut()
            .find(|a| a.client_id == client_id)
        else {
            return false;
        };
        let before = app.certificates.len();
        app.certificates.retain(|c| c.key_id != key_id);
        let removed = app.certificates.len() < before;
        drop(world);
        self.in_scenario_app(index, client_id, |app| {
            app.certificates.retain(|c| c.key_id != key_id)
        });
        removed
    }

    /// Adds a one-off fault (see [`ScriptedFault`]), keeping the other faults.
    pub fn script_fault(&self, fault: ScriptedFault) {
        self.inner
            .faults
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .scripted
            .push(fault);
    }

    pub fn faults(&self) -> Faults {
        self.inner
            .faults
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn record(&self, record: RequestRecord) {
        let mut log = self.inner.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() >= record::MAX_RECORDS {
            log.drain(..record::MAX_RECORDS / 10);
        }
        log.push(record);
    }

    pub(crate) fn throttle(&self) -> std::sync::MutexGuard<'_, throttle::Throttle> {
        self.inner
            .throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn delivery_log(&self) -> std::sync::MutexGuard<'_, Vec<DeliveryRecord>> {
        self.inner
            .notifications
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Every delivery of a change or lifecycle notification so far (one record per POST,
    /// retries included), oldest first.
    pub fn notifications(&self) -> Vec<DeliveryRecord> {
        self.delivery_log().clone()
    }

    pub fn clear_notifications(&self) {
        self.delivery_log().clear();
    }

    pub(crate) fn record_delivery(&self, record: DeliveryRecord) {
        let mut log = self.delivery_log();
        if log.len() >= notify::MAX_RECORDS {
            log.drain(..notify::MAX_RECORDS / 10);
        }
        log.push(record);
    }

    pub(crate) fn http_client(&self) -> Option<reqwest::Client> {
        notify::client(&self.inner.http)
    }

    /// Every change-notification subscription of every tenant and app.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.world()
            .tenants
            .iter()
            .flat_map(|t| t.subscriptions.all().iter().cloned())
            .collect()
    }

    /// Moves a subscription's `expirationDateTime` (to the past, to make it expire);
    /// `false` when there is no such subscription.
    pub fn set_subscription_expiration(&self, id: Uuid, at: DateTime<Utc>) -> bool {
        let mut world = self.world_mut();
        world
            .tenants
            .iter_mut()
            .find_map(|t| t.subscriptions.find_mut(id))
            .map(|s| s.expiration_date_time = at)
            .is_some()
    }

    /// Sends a lifecycle notification for a subscription (and, for `subscriptionRemoved`,
    /// deletes it first); `None` when there is no such subscription.
    pub async fn send_lifecycle(&self, id: Uuid, event: LifecycleEvent) -> Option<DeliveryRecord> {
        let subscription = self.subscription_for_lifecycle(id, event)?;
        Some(notify::send_lifecycle(self, &subscription, event).await)
    }

    fn subscription_for_lifecycle(&self, id: Uuid, event: LifecycleEvent) -> Option<Subscription> {
        let mut world = self.world_mut();
        world.tenants.iter_mut().find_map(|t| {
            if event == LifecycleEvent::SubscriptionRemoved {
                t.subscriptions.remove(id)
            } else {
                t.subscriptions.find_mut(id).map(|s| s.clone())
            }
        })
    }

    /// Delivers the queued change notifications now instead of at the next tick (the
    /// only way when serving [`router`] without [`GraphSim`]).
    pub async fn deliver_notifications(&self) -> Vec<DeliveryRecord> {
        notify::deliver_pending(self).await
    }
}

/// The whole simulator as an axum router (login, Graph and `/_sim/`).
pub fn router(state: SimState) -> Router {
    let served = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token::token))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(token::openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(token::jwks))
        .route("/{tenant}/adminconsent", get(consent::v1))
        .route("/{tenant}/v2.0/adminconsent", get(consent::v2))
        .route("/v1.0/{*path}", axum::routing::any(graph::entry))
        .route(
            "/adminapi/{version}/{tenant}/InvokeCommand",
            axum::routing::any(exchange::invoke),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            record::observe,
        ));
    served.merge(control::router()).with_state(state)
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listening: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A running simulator.
pub struct GraphSim {
    state: SimState,
    addr: SocketAddr,
    /// With TLS: the PEM clients should trust.
    ca_pem_path: Option<std::path::PathBuf>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Delivers change notifications in the background while the simulator runs.
    deliverer: Option<notify::Deliverer>,
}

impl GraphSim {
    /// Starts the simulator on a free port of 127.0.0.1.
    pub async fn start(scenario: Scenario) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0", scenario).await
    }

    /// Starts the simulator on `addr` (e.g. `127.0.0.1:9000`).
    pub async fn start_on(addr: &str, scenario: Scenario) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = SimState::new(scenario);
        state.set_base_url(format!("http://{addr}"));
        let app = router(state.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = served.await {
                tracing::error!(%error, "the Graph simulator stopped");
            }
        });
        Ok(Self {
            deliverer: Some(notify::Deliverer::spawn(state.clone())),
            state,
            addr,
            ca_pem_path: None,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// Starts the simulator over HTTPS on `addr`, reached as `https://localhost:<port>`.
    /// The PEM to trust is written to `options.ca_out` (or a temporary file) and returned by
    /// [`GraphSim::ca_pem_path`].
    pub async fn start_tls(
        addr: &str,
        scenario: Scenario,
        options: TlsOptions,
    ) -> Result<Self, StartError> {
        let identity = match options.cert_and_key_pem {
            Some((chain_pem, key_pem)) => tls::Identity {
                trust_pem: chain_pem.clone(),
                chain_pem,
                key_pem,
            },
            None => tls::generate()?,
        };
        let acceptor = tls::acceptor(&identity)?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let ca_path = options.ca_out.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("tenantry-graph-sim-{}-ca.pem", addr.port()))
        });
        tls::write_trust(&identity.trust_pem, &ca_path)?;
        let state = SimState::new(scenario);
        state.set_base_url(format!("https://localhost:{}", addr.port()));
        let app = router(state.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tls::serve(listener, acceptor, app, stopped));
        Ok(Self {
            deliverer: Some(notify::Deliverer::spawn(state.clone())),
            state,
            addr,
            ca_pem_path: Some(ca_path),
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// With TLS, the file holding the PEM clients should trust.
    pub fn ca_pem_path(&self) -> Option<&std::path::Path> {
        self.ca_pem_path.as_deref()
    }

    pub fn base_url(&self) -> String {
        self.state.base_url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &SimState {
        &self.state
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.requests()
    }

    /// See [`SimState::notifications`].
    pub fn notifications(&self) -> Vec<DeliveryRecord> {
        self.state.notifications()
    }

    /// See [`SimState::subscriptions`].
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.state.subscriptions()
    }

    /// See [`SimState::send_lifecycle`].
    pub async fn send_lifecycle(&self, id: Uuid, event: LifecycleEvent) -> Option<DeliveryRecord> {
        self.state.send_lifecycle(id, event).await
    }

    /// Stops accepting connections and delivering notifications, and waits for both tasks.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(deliverer) = self.deliverer.take() {
            deliverer.stop().await;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for GraphSim {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // The deliverer stops itself when dropped.
    }
}
