//! End-to-end tests of the `tenantry` binary as an operator uses it: `--help`, `admin`,
//! `migrate`, `serve` and `dev` (with an external database and with its own private
//! PostgreSQL cluster), checking the `--json` interface points, graceful shutdown, and
//! that no secret reaches the logs.

mod key_revocation;
mod process;

use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;

use process::{Tenantry, database_url_for, http_get};

#[test]
fn help_lists_every_subcommand() {
    let output = Tenantry::new().arg("--help").output();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in [
        "serve",
        "api",
        "worker",
        "migrate",
        "dev",
        "graph-sim",
        "admin",
        "keys",
        "test-env",
    ] {
        assert!(help.contains(command), "--help lacks {command}:\n{help}");
    }
    let admin = Tenantry::new().args(["admin", "--help"]).output();
    let admin = String::from_utf8_lossy(&admin.stdout);
    assert!(
        admin.contains("create-msp") && admin.contains("create-key"),
        "{admin}"
    );
    let keys = Tenantry::new().args(["keys", "--help"]).output();
    assert!(String::from_utf8_lossy(&keys.stdout).contains("rotate"));
}

#[test]
fn a_worker_without_the_master_key_refuses_to_start() {
    let output = Tenantry::new()
        .env(
            "TENANTRY__DATABASE__URL",
            "postgres://nobody@127.0.0.1:1/none",
        )
        .env_remove("TENANTRY__SECRETS__MASTER_KEY")
        .arg("worker")
        .output();
    assert!(!output.status.success(), "worker must exit non-zero");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MASTER_KEY"), "{stderr}");
}

#[test]
fn bad_configuration_is_reported_before_anything_starts() {
    let output = Tenantry::new()
        .env("TENANTRY__HTTP__ADRR", "x")
        .arg("migrate")
        .output();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("adrr"));
    let output = Tenantry::new()
        .env_remove("TENANTRY__DATABASE__URL")
        .arg("migrate")
        .output();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("TENANTRY__DATABASE__URL"));
}

#[tokio::test]
async fn graph_sim_serves_the_demo_tenants_it_prints() {
    tenantry_graph::install_default_crypto();
    let mut sim = Tenantry::new()
        .args(["graph-sim", "--scenario", "demo", "--port", "0"])
        .spawn();
    let first = sim.wait_for_stdout_line(Duration::from_secs(30));
    let base = first
        .strip_prefix("Microsoft simulator at ")
        .expect("the URL comes first")
        .trim()
        .to_owned();
    let mut tenants = Vec::new();
    loop {
        let line = sim.wait_for_stdout_line(Duration::from_secs(5));
        if line.starts_with("Stop with") {
            break;
        }
        tenants.push(line);
    }
    let contoso = tenants
        .iter()
        .find(|l| l.trim_start().starts_with("contoso"))
        .expect("contoso is listed");
    let words: Vec<&str> = contoso.split_whitespace().collect();
    let field = |name: &str| words[words.iter().position(|w| *w == name).expect(name) + 1];
    let (tenant, client, secret) = (field("tenant"), field("client"), field("secret"));
    assert!(contoso.ends_with("(healthy)"), "{contoso}");
    let response = reqwest::Client::new()
        .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("client_id", client),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let token: Value = response.json().await.expect("json");
    let (status, body) = http_get(
        &format!("{base}/v1.0/organization"),
        token["access_token"].as_str(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Contoso Ltd"));
    assert!(
        tenants
            .iter()
            .any(|l| l.contains("litware") && l.contains("healthy"))
    );
    assert!(
        tenants
            .iter()
            .any(|l| l.contains("woodgrove") && l.contains("secret expired"))
    );
    let (code, _) = sim.terminate(Duration::from_secs(10));
    assert_eq!(code, Some(0));
}

#[test]
fn graph_sim_serves_https_with_a_ca_it_writes_out() {
    let ca = tempfile::NamedTempFile::new().expect("temp file");
    let ca_path = ca.path().display().to_string();
    let mut sim = Tenantry::new()
        .args(["graph-sim", "--port", "0", "--tls", "--ca-out", &ca_path])
        .spawn();
    let first = sim.wait_for_stdout_line(Duration::from_secs(30));
    let base = first
        .strip_prefix("Microsoft simulator at ")
        .expect("the URL comes first")
        .trim()
        .to_owned();
    assert!(base.starts_with("https://localhost:"), "{base}");
    let trust = loop {
        let line = sim.wait_for_stdout_line(Duration::from_secs(5));
        if line.contains("TLS: trust") {
            break line;
        }
    };
    assert!(trust.contains(&ca_path), "{trust}");
    // OpenSSL (through Python's ssl) accepts the chain for localhost with that CA.
    let tenant = tenantry_graph_sim::scenario::demo().tenants[0].id;
    let script = "import ssl, sys, urllib.request\n\
        ctx = ssl.create_default_context(cafile=sys.argv[2])\n\
        body = urllib.request.urlopen(sys.argv[1], context=ctx).read().decode()\n\
        print(body)";
    let url = format!("{base}/{tenant}/v2.0/.well-known/openid-configuration");
    let output = std::process::Command::new("python3")
        .args(["-c", script, &url, &ca_path])
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(
        config["token_endpoint"],
        format!("{base}/{tenant}/oauth2/v2.0/token"),
        "links use the https base"
    );
    let untrusted = std::process::Command::new("python3")
        .args([
            "-c",
            "import urllib.request, sys; urllib.request.urlopen(sys.argv[1])",
            &url,
        ])
        .env_remove("SSL_CERT_FILE")
        .env_remove("REQUESTS_CA_BUNDLE")
        .output()
        .expect("python3");
    assert!(
        !untrusted.status.success(),
        "without the CA the certificate is not trusted"
    );
    let (code, _) = sim.terminate(Duration::from_secs(10));
    assert_eq!(code, Some(0));
}

#[sqlx::test(migrations = false)]
async fn migrate_then_admin_create_msp_and_key_print_json(pool: PgPool) {
    let url = database_url_for(&pool);
    let not_migrated = Tenantry::new()
        .database(&url)
        .args(["admin", "create-msp", "--name", "Contoso IT"])
        .output();
    assert!(!not_migrated.status.success());
    assert!(String::from_utf8_lossy(&not_migrated.stderr).contains("tenantry migrate"));

    for _ in 0..2 {
        let migrated = Tenantry::new().database(&url).arg("migrate").output();
        assert!(
            migrated.status.success(),
            "{}",
            String::from_utf8_lossy(&migrated.stderr)
        );
    }

    let created = Tenantry::new()
        .database(&url)
        .args(["admin", "create-msp", "--name", "Contoso IT", "--json"])
        .output();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let msp: Value = serde_json::from_slice(&created.stdout).expect("one JSON object");
    let msp_id = msp["msp_id"].as_str().expect("msp_id").to_owned();
    let owner_key = msp["api_key"].as_str().expect("api_key").to_owned();
    assert!(owner_key.starts_with("tnty_"));

    let key = Tenantry::new()
        .database(&url)
        .args([
            "admin",
            "create-key",
            "--msp",
            &msp_id,
            "--role",
            "viewer",
            "--json",
        ])
        .output();
    assert!(
        key.status.success(),
        "{}",
        String::from_utf8_lossy(&key.stderr)
    );
    let key: Value = serde_json::from_slice(&key.stdout).expect("one JSON object");
    assert_eq!(key["msp_id"], msp_id.as_str());
    assert_eq!(key["role"], "viewer");
    assert_ne!(key["api_key"], owner_key.as_str());

    let unknown = Tenantry::new()
        .database(&url)
        .args([
            "admin",
            "create-key",
            "--msp",
            &uuid::Uuid::now_v7().to_string(),
            "--role",
            "viewer",
        ])
        .output();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no MSP"));
    let bad_role = Tenantry::new()
        .database(&url)
        .args(["admin", "create-key", "--msp", &msp_id, "--role", "root"])
        .output();
    assert!(!bad_role.status.success());

    let stored: i64 = sqlx::query_scalar("select count(*) from api_key where msp_id = $1::uuid")
        .bind(&msp_id)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(stored, 2);
}

/// Runs `tenantry admin …` with `--json` and returns its object.
fn admin_json(url: &str, args: &[&str]) -> Value {
    let output = Tenantry::new()
        .database(url)
        .arg("admin")
        .args(args.iter().copied())
        .arg("--json")
        .output();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

#[sqlx::test(migrations = false)]
async fn admin_keys_name_the_operator_who_holds_them(pool: PgPool) {
    let url = database_url_for(&pool);
    let migrated = Tenantry::new().database(&url).arg("migrate").output();
    assert!(migrated.status.success());

    let msp = admin_json(
        &url,
        &[
            "create-msp",
            "--name",
            "Contoso IT",
            "--operator",
            "Alice Example",
        ],
    );
    assert_eq!(msp["operator"]["name"], "Alice Example");
    let msp_id = msp["msp_id"].as_str().expect("msp_id").to_owned();
    let defaulted = admin_json(&url, &["create-msp", "--name", "Fabrikam"]);
    assert_eq!(defaulted["operator"]["name"], "Owner of Fabrikam");

    let bob = admin_json(
        &url,
        &[
            "create-key",
            "--msp",
            &msp_id,
            "--role",
            "admin",
            "--operator",
            "bob@example.com",
        ],
    );
    assert_eq!(bob["operator"]["name"], "bob@example.com");
    assert_ne!(bob["operator"]["id"], msp["operator"]["id"]);
    let alices_id = msp["operator"]["id"].as_str().expect("id").to_owned();
    let alices_second = admin_json(
        &url,
        &[
            "create-key",
            "--msp",
            &msp_id,
            "--role",
            "technician",
            "--operator-id",
            &alices_id,
        ],
    );
    assert_eq!(alices_second["operator"], msp["operator"]);
    let own_person = admin_json(
        &url,
        &[
            "create-key",
            "--msp",
            &msp_id,
            "--role",
            "viewer",
            "--name",
            "PSA sync",
        ],
    );
    assert_eq!(own_person["operator"]["name"], "holder of PSA sync");

    let fabrikams = defaulted["operator"]["id"].as_str().expect("id").to_owned();
    let elsewhere = Tenantry::new()
        .database(&url)
        .args([
            "admin",
            "create-key",
            "--msp",
            &msp_id,
            "--role",
            "viewer",
            "--operator-id",
            &fabrikams,
        ])
        .output();
    assert!(!elsewhere.status.success(), "another MSP's operator");
    assert!(String::from_utf8_lossy(&elsewhere.stderr).contains("no operator"));
    let both = Tenantry::new()
        .database(&url)
        .args([
            "admin",
            "create-key",
            "--msp",
            &msp_id,
            "--role",
            "viewer",
            "--operator",
            "X",
            "--operator-id",
            &alices_id,
        ])
        .output();
    assert!(!both.status.success());
}

#[sqlx::test(migrations = false)]
async fn serve_migrates_serves_keeps_secrets_out_of_logs_and_stops_on_sigterm(pool: PgPool) {
    let url = database_url_for(&pool);
    let sim = tenantry_graph_sim::GraphSim::start(tenantry_graph_sim::Scenario {
        tenants: vec![tenantry_graph_sim::TenantSpec::healthy(
            "contoso",
            "Contoso Ltd",
            20,
        )],
    })
    .await
    .expect("simulator");
    let mut server = Tenantry::new()
        .database(&url)
        .env("RUST_LOG", "debug")
        .env("TENANTRY__MICROSOFT__AUTHORITY_URL", sim.base_url())
        .env("TENANTRY__MICROSOFT__GRAPH_URL", sim.base_url())
        .env("TENANTRY__MICROSOFT__EXCHANGE_URL", sim.base_url())
        .arg("serve")
        .spawn();
    let addr = server.wait_for_stderr("listening addr=", Duration::from_secs(60));
    let addr = addr
        .split("listening addr=")
        .nth(1)
        .expect("address")
        .trim()
        .to_owned();
    let base = format!("http://{addr}");
    let (status, _) = http_get(&format!("{base}/readyz"), None).await;
    assert_eq!(status, 200, "serve applied the migrations itself");

    let created = Tenantry::new()
        .database(&url)
        .args(["admin", "create-msp", "--name", "Contoso IT", "--json"])
        .output();
    let created: Value = serde_json::from_slice(&created.stdout).expect("json");
    let key = created["api_key"].as_str().expect("key");
    let (status, body) = http_get(&format!("{base}/api/v1/me"), Some(key)).await;
    assert_eq!(status, 200, "{body}");
    let wrong = format!("{}{}", &key[..key.len() - 4], "0000");
    let (status, _) = http_get(&format!("{base}/api/v1/me"), Some(&wrong)).await;
    assert_eq!(status, 401);

    // Connecting a tenant: its client secret must not reach the logs either.
    let tenant = sim.state().scenario().tenants[0].clone();
    let connected = reqwest::Client::new()
        .post(format!("{base}/api/v1/organizations"))
        .bearer_auth(key)
        .json(&serde_json::json!({"name": "Contoso", "provider": "microsoft365", "tenant_id": tenant.id,
            "client_id": tenant.app().client_id, "client_secret": tenant.secret_value()}))
        .send()
        .await
        .expect("sent");
    assert_eq!(connected.status(), 201);
    // `serve` runs the workers too: the first discovery completes (and logs nothing
    // secret either).
    let connected: Value = connected.json().await.expect("json");
    let run_path = format!(
        "{base}/api/v1/organizations/{}/discovery-runs/{}",
        connected["organization"]["id"].as_str().expect("id"),
        connected["discovery_run_id"].as_str().expect("run")
    );
    let mut state = String::new();
    for _ in 0..600 {
        let (_, body) = http_get(&run_path, Some(key)).await;
        let run: Value = serde_json::from_str(&body).expect("run");
        state = run["state"].as_str().unwrap_or_default().to_owned();
        if state != "queued" && state != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, "succeeded");

    // A password reset, revealed once: the password must not reach the logs either.
    let organization = connected["organization"]["id"].as_str().expect("id");
    let client = reqwest::Client::new();
    let policy = client
        .put(format!(
            "{base}/api/v1/organizations/{organization}/policies/password_reset"
        ))
        .bearer_auth(key)
        .json(&serde_json::json!({"approval": "none"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(policy.status(), 200);
    // Simulated UPNs end in the user's index; users 0–2 are administrators.
    let (_, users) = http_get(
        &format!("{base}/api/v1/organizations/{organization}/users?limit=20"),
        Some(key),
    )
    .await;
    let users: Value = serde_json::from_str(&users).expect("users");
    let target = users["data"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| {
            u["user_principal_name"]
                .as_str()
                .is_some_and(|upn| upn.contains("7@"))
        })
        .expect("user 7")["id"]
        .clone();
    let action: Value = client
        .post(format!(
            "{base}/api/v1/organizations/{organization}/actions"
        ))
        .bearer_auth(key)
        .header("Idempotency-Key", "logs-1")
        .json(&serde_json::json!({"action": "password_reset", "target": target}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("action");
    let action_path = format!(
        "{base}/api/v1/actions/{}",
        action["id"].as_str().expect("action id")
    );
    let mut done = Value::Null;
    for _ in 0..600 {
        let (_, body) = http_get(&action_path, Some(key)).await;
        done = serde_json::from_str(&body).expect("action");
        if !matches!(done["state"].as_str(), Some("queued" | "running")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(done["state"], "succeeded", "{done}");
    let revealed: Value = client
        .post(format!("{action_path}/reveal"))
        .bearer_auth(key)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("password");
    let password = revealed["password"].as_str().expect("password").to_owned();

    let (code, logs) = server.terminate(Duration::from_secs(20));
    assert!(
        !logs.contains(&password),
        "a generated password reached the logs"
    );
    assert_eq!(code, Some(0), "graceful shutdown exits 0; logs:\n{logs}");
    assert!(
        !logs.contains(tenant.secret_value()),
        "the client secret reached the logs"
    );
    assert!(
        logs.contains("tenant connected"),
        "the connection is logged (without the secret)"
    );
    let secret = key.rsplit('_').next().expect("secret");
    assert!(
        !logs.contains(secret),
        "the API key's secret reached the logs"
    );
    assert!(
        !logs.contains(&wrong[wrong.len() - 40..]),
        "a presented wrong key reached the logs"
    );
    assert!(
        logs.contains("API key refused"),
        "refusals are logged (without the key)"
    );
    // A job's log lines name the job, its MSP and its organization.
    let job_line = logs
        .lines()
        .find(|l| l.contains("job attempt ended") && l.contains("kind=action"))
        .unwrap_or_else(|| panic!("the action job logged its end:\n{logs}"));
    for field in ["job_id=", "msp_id=", "organization_id=", "attempt=1"] {
        assert!(job_line.contains(field), "{field} in {job_line}");
    }
}

#[sqlx::test(migrations = false)]
async fn dev_with_an_external_database_prints_json_and_a_working_key(pool: PgPool) {
    tenantry_graph::install_default_crypto();
    let url = database_url_for(&pool);
    let data = tempfile::tempdir().expect("temp dir");
    let mut dev = Tenantry::new()
        .database(&url)
        .env("TENANTRY__DEV__DATA_DIR", data.path())
        .args(["dev", "--json"])
        .spawn();
    let line = dev.wait_for_stdout_line(Duration::from_secs(60));
    let ready: Value = serde_json::from_str(&line).expect("one JSON line");
    for field in ["url", "api_key", "msp_id", "demo_tenants", "graph_sim_url"] {
        assert!(!ready[field].is_null(), "{field} missing from {ready}");
    }
    let demo = ready["demo_tenants"].as_array().expect("demo tenants");
    let names: Vec<&str> = demo.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "contoso",
            "fabrikam",
            "northwind",
            "woodgrove",
            "tailspin",
            "litware"
        ]
    );
    let contoso = &demo[0];
    let token = reqwest::Client::new()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            ready["graph_sim_url"].as_str().expect("url"),
            contoso["tenant_id"].as_str().expect("tid")
        ))
        .form(&[
            ("client_id", contoso["client_id"].as_str().expect("client")),
            (
                "client_secret",
                contoso["client_secret"].as_str().expect("secret"),
            ),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(token.status(), 200, "the printed demo credentials work");
    let (status, body) = http_get(
        &format!("{}/api/v1/me", ready["url"].as_str().expect("url")),
        ready["api_key"].as_str(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Demo MSP"));
    let (code, logs) = dev.terminate(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        !logs.contains(ready["api_key"].as_str().expect("key")),
        "the key is printed on stdout only"
    );
}

#[test]
fn dev_brings_up_its_own_postgres_and_reuses_it() {
    let data = tempfile::tempdir().expect("temp dir");
    // Let the postgres user reach the folder, as it can in a usual checkout.
    std::fs::set_permissions(
        data.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut keys = Vec::new();
    for run in 0..2 {
        let mut dev = Tenantry::new()
            .env_remove("TENANTRY__DATABASE__URL")
            .env("TENANTRY__DEV__DATA_DIR", data.path())
            .args(["dev", "--json"])
            .spawn();
        let line = dev.wait_for_stdout_line(Duration::from_secs(120));
        let ready: Value = serde_json::from_str(&line).expect("one JSON line");
        let key = ready["api_key"].as_str().expect("key").to_owned();
        let (status, body) = runtime.block_on(http_get(
            &format!("{}/api/v1/me", ready["url"].as_str().expect("url")),
            Some(&key),
        ));
        assert_eq!(status, 200, "run {run}: {body}");
        let (code, logs) = dev.terminate(Duration::from_secs(30));
        assert_eq!(code, Some(0), "run {run}: {logs}");
        let record: Value = serde_json::from_slice(
            &std::fs::read(data.path().join("postgres.json")).expect("cluster record"),
        )
        .expect("json");
        let password = record["password"].as_str().expect("password");
        assert!(
            !logs.contains(password),
            "the database password reached the logs"
        );
        let port = record["port"].as_u64().expect("port");
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", u16::try_from(port).expect("port")))
                .is_err(),
            "run {run}: dev stops the PostgreSQL it started"
        );
        keys.push(key);
    }
    assert_eq!(
        keys[0], keys[1],
        "the second run reuses the cluster, the demo MSP and its key"
    );
}

/// Stops a postmaster a failed test left running (its pid is the first line of
/// `postmaster.pid`), so the temporary folder does not outlive it.
struct StopLeftover(std::path::PathBuf);

impl Drop for StopLeftover {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.0.join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<i32>().ok());
        if let Some(pid) = pid {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGINT,
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    }
}

#[test]
fn dev_after_a_crash_adopts_the_postgres_left_running_and_stops_it() {
    let data = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(
        data.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let dev = || {
        Tenantry::new()
            .env_remove("TENANTRY__DATABASE__URL")
            .env("TENANTRY__DEV__DATA_DIR", data.path())
            .args(["dev", "--json"])
            .spawn()
    };
    let listening = |port: u16| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    // The first run starts the cluster, then dies without cleaning up.
    let mut crashed = dev();
    crashed.wait_for_stdout_line(Duration::from_secs(120));
    crashed.kill();
    let record: Value = serde_json::from_slice(
        &std::fs::read(data.path().join("postgres.json")).expect("cluster record"),
    )
    .expect("json");
    let _leftover = StopLeftover(record["pgdata"].as_str().expect("pgdata").into());
    let port = u16::try_from(record["port"].as_u64().expect("port")).expect("port");
    assert!(listening(port), "the crashed run left PostgreSQL running");

    // The next run finds it running, with nobody alive responsible for it.
    let mut next = dev();
    let line = next.wait_for_stdout_line(Duration::from_secs(120));
    let ready: Value = serde_json::from_str(&line).expect("one JSON line");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (status, body) = runtime.block_on(http_get(
        &format!("{}/api/v1/me", ready["url"].as_str().expect("url")),
        ready["api_key"].as_str(),
    ));
    assert_eq!(status, 200, "{body}");
    let (code, logs) = next.terminate(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        !listening(port),
        "dev stops the PostgreSQL it adopted:\n{logs}"
    );
}

/// Environment for a `tenantry worker` with a short lease, talking to `sim`.
fn worker(url: &str, sim: &tenantry_graph_sim::GraphSim, drain_secs: &str) -> Tenantry {
    Tenantry::new()
        .database(url)
        .env("TENANTRY__MICROSOFT__AUTHORITY_URL", sim.base_url())
        .env("TENANTRY__MICROSOFT__GRAPH_URL", sim.base_url())
        .env("TENANTRY__MICROSOFT__EXCHANGE_URL", sim.base_url())
        .env("TENANTRY__JOBS__LEASE_SECS", "3")
        .env("TENANTRY__JOBS__HEARTBEAT_SECS", "1")
        .env("TENANTRY__JOBS__POLL_INTERVAL_MS", "100")
        .env("TENANTRY__JOBS__DRAIN_SECS", drain_secs)
        .env("RUST_LOG", "info")
        .arg("worker")
}

async fn scalar(pool: &PgPool, sql: &str) -> String {
    sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .expect("query")
}

async fn wait_for(pool: &PgPool, sql: &str, expected: &str, limit: Duration) {
    let started = std::time::Instant::now();
    loop {
        let value = scalar(pool, sql).await;
        if value == expected {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{sql} = {value}, wanted {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_killed_workers_scan_is_finished_by_another_and_sigterm_gives_work_back(pool: PgPool) {
    tenantry_graph::install_default_crypto();
    let url = database_url_for(&pool);
    let tenant = tenantry_graph_sim::TenantSpec::healthy("slowcorp", "Slow Corp", 3000);
    let sim = tenantry_graph_sim::GraphSim::start(tenantry_graph_sim::Scenario {
        tenants: vec![tenant.clone()],
    })
    .await
    .expect("simulator");
    // Slow answers keep the scan running long enough to kill its worker mid-job.
    let mut faults = tenantry_graph_sim::Faults::default();
    faults.global.latency_ms = 400;
    sim.state().set_faults(faults);

    // An organization stored as `POST /organizations` would, with its first scan queued.
    let created = Tenantry::new()
        .database(&url)
        .args(["admin", "create-msp", "--name", "Worker MSP", "--json"])
        .output();
    let created: Value = serde_json::from_slice(&created.stdout).expect("json");
    let key = created["api_key"].as_str().expect("key");
    let keyring = tenantry_store::sealing::Keyring::new(&[0x21; 32], &[]).expect("keyring");
    let store = tenantry_store::Store::new(
        pool.clone(),
        tenantry_store::ApiKeyPepper::new(vec![0x33; 32]).expect("pepper"),
    )
    .with_keyring(keyring);
    let principal = store.authenticate(key).await.expect("key");
    let (organization, run) = store
        .scope(&principal)
        .create_organization(tenantry_store::NewOrganization {
            name: tenantry_domain::DisplayName::parse("Slow Corp").expect("name"),
            tenant_id: tenant.id,
            client_id: tenant.app().client_id,
            credential: tenantry_domain::AppCredential::Secret(
                tenant.secret_value().to_owned().into(),
            ),
            generated_certificate: None,
            status: "connected".into(),
            report: serde_json::json!({}),
        })
        .await
        .expect("organization");

    // A lease far longer than the test: only the liveness lock can reveal the kill.
    let mut first = worker(&url, &sim, "20")
        .env("TENANTRY__JOBS__LEASE_SECS", "600")
        .spawn();
    wait_for(
        &pool,
        "select state from job",
        "running",
        Duration::from_secs(60),
    )
    .await;
    let first_worker = scalar(&pool, "select attempted_by from job").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    first.kill();

    let second = worker(&url, &sim, "20")
        .env("TENANTRY__JOBS__LEASE_SECS", "600")
        .spawn();
    wait_for(
        &pool,
        &format!("select state from discovery_run where run_id = '{run}'"),
        "succeeded",
        Duration::from_secs(120),
    )
    .await;
    let (attempt, finisher, errors): (i32, String, Value) =
        sqlx::query_as("select attempt, attempted_by, errors from job")
            .fetch_one(&pool)
            .await
            .expect("job");
    assert_eq!(
        attempt, 2,
        "the killed attempt counted once, then the job finished"
    );
    assert_ne!(finisher, first_worker);
    assert_eq!(
        errors[0]["error"], "worker lost: its process or database connection ended",
        "rescued because its liveness lock went with the process, not after the lease"
    );
    let users: i64 = sqlx::query_scalar(
        "select count(*) from inventory_user u join organization o using (organization_id)
             where o.organization_id = $1 and u.generation = o.inventory_generation",
    )
    .bind(organization.id.as_uuid())
    .fetch_one(&pool)
    .await
    .expect("users");
    assert_eq!(users, 3000);

    // SIGTERM with a scan running and a drain too short for it: the scan goes back to
    // the queue, its attempt not spent, and the worker exits 0.
    let (code, _) = second.terminate(Duration::from_secs(30));
    assert_eq!(code, Some(0));
    let mut third = worker(&url, &sim, "1").spawn();
    third.wait_for_stderr("worker started", Duration::from_secs(30));
    let mut tx = pool.begin().await.expect("tx");
    let (rerun, _) = tenantry_store::discovery::queue_run(
        &mut tx,
        principal.msp_id(),
        organization.id,
        tenantry_store::DiscoveryTrigger::Manual,
        tenantry_store::DiscoveryMode::Full,
    )
    .await
    .expect("queued");
    tx.commit().await.expect("commit");
    wait_for(
        &pool,
        "select state from job where state = 'running' union all select 'none' limit 1",
        "running",
        Duration::from_secs(60),
    )
    .await;
    let (code, logs) = third.terminate(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{logs}");
    assert!(logs.contains("unfinished jobs given back"), "{logs}");
    let (state, attempt): (String, i32) = sqlx::query_as(
        "select j.state, j.attempt from job j join discovery_run r on r.job_id = j.job_id where r.run_id = $1",
    )
    .bind(rerun.as_uuid())
    .fetch_one(&pool)
    .await
    .expect("job");
    assert_eq!((state.as_str(), attempt), ("available", 0));
    assert!(!logs.contains(tenant.secret_value()));
}
