//! Discovery against the simulator, end to end: adding a tenant queues a run, workers
//! read every section into the inventory, the inventory API answers from it; delta runs
//! apply changes and deletions; refused sections are skipped by name; throttling storms
//! and outages end in a complete inventory, never in a run marked done too early.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use tenantry_graph_sim::{FaultSpec, Faults};

use crate::helpers::{TestApp, Workers, assert_problem, connect_run};

/// How many group memberships demo tenant `tenant` has, asked of the simulator's Graph.
async fn sim_group_members(app: &TestApp, tenant: &str) -> usize {
    let groups: Value = app
        .graph(tenant, Method::GET, "/groups?$top=999", None)
        .await
        .json()
        .await
        .expect("groups");
    let mut total = 0;
    for group in groups["value"].as_array().expect("groups") {
        let members: Value = app
            .graph(
                tenant,
                Method::GET,
                &format!(
                    "/groups/{}/members?$top=999",
                    group["id"].as_str().expect("id")
                ),
                None,
            )
            .await
            .json()
            .await
            .expect("members");
        total += members["value"].as_array().map_or(0, Vec::len);
    }
    total
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn adding_a_tenant_queues_a_discovery_that_fills_the_inventory(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Discovering MSP").await;
    let (org, run) = connect_run(&app, &msp.owner_key, app.connect_body("contoso")).await;

    // Queued in the same transaction as the organization, before any worker runs.
    let queued: Value = app
        .get(
            &format!("/api/v1/organizations/{org}/discovery-runs/{run}"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("run");
    assert_eq!(queued["state"], "queued");
    assert_eq!(queued["trigger"], "added");
    let jobs: Value = app
        .get(&format!("/api/v1/jobs?organization={org}"), &msp.owner_key)
        .await
        .json()
        .await
        .expect("jobs");
    assert_eq!(jobs["data"].as_array().map(Vec::len), Some(1), "{jobs}");
    assert_eq!(jobs["data"][0]["kind"], "discovery");
    assert_eq!(jobs["data"][0]["state"], "available");

    // The validation's own calls are interactive; only the scan's are background work.
    app.sim.state().clear_requests();
    let done = app.finished_run(&msp.owner_key, &org, &run).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    for section in [
        "organization",
        "domains",
        "users",
        "groups",
        "group_members",
        "directory_roles",
        "service_principals",
        "licenses",
        "devices",
        "app_secret",
    ] {
        assert_eq!(
            done["sections"][section]["status"], "done",
            "{section}: {done}"
        );
    }
    // The demo tenants do not grant Identity Protection: the section says what to grant.
    assert_eq!(done["sections"]["risky_users"]["status"], "skipped");
    assert_eq!(
        done["sections"]["risky_users"]["permission"],
        "IdentityRiskyUser.Read.All"
    );
    assert_eq!(done["sections"]["users"]["count"], 250);
    assert!(done["graph_requests"].as_i64().unwrap_or(0) >= 11, "{done}");
    // Requests count every `$batch` item, as Microsoft throttles them; round trips count
    // a `$batch` once.
    let round_trips = done["graph_round_trips"].as_i64().unwrap_or(0);
    assert!(round_trips >= 11, "{done}");
    assert!(
        done["graph_requests"].as_i64().unwrap_or(0) > round_trips,
        "{done}"
    );
    assert_eq!(done["sections"]["users"]["reason"], "full", "{done}");

    // Background reads are sent at low priority, users and groups through delta, and
    // group members in batches.
    let requests = app.sim.requests();
    let graph: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with("/v1.0/"))
        .collect();
    assert!(
        graph
            .iter()
            .all(|r| r.throttle_priority.as_deref() == Some("Low")),
        "every discovery request is low priority"
    );
    assert!(
        graph
            .iter()
            .any(|r| r.path.starts_with("/v1.0/users/delta"))
    );
    assert!(graph.iter().any(|r| r.path.starts_with("/v1.0/$batch")));

    let users = app
        .get_all(
            &format!("/api/v1/organizations/{org}/users"),
            &msp.owner_key,
        )
        .await;
    assert_eq!(users.len(), 250);
    let first = &users[0];
    assert!(first["user_principal_name"].is_string() && first["id"].is_string());

    // Search: case-insensitive, on name, UPN or mail.
    let needle = first["user_principal_name"]
        .as_str()
        .expect("upn")
        .split('@')
        .next()
        .expect("local part")
        .to_uppercase();
    let found: Value = app
        .get(
            &format!("/api/v1/organizations/{org}/users?q={needle}"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("search");
    assert!(
        found["data"]
            .as_array()
            .expect("rows")
            .iter()
            .any(|u| u["id"] == first["id"]),
        "{found}"
    );
    let disabled = app
        .get_all(
            &format!("/api/v1/organizations/{org}/users?enabled=false"),
            &msp.owner_key,
        )
        .await;
    assert!(disabled.iter().all(|u| u["account_enabled"] == false));

    // Approver proposals: the holders of the four admin roles (the simulator gives the
    // first three users Global, User and Helpdesk Administrator).
    let proposals: Value = app
        .get(
            &format!("/api/v1/organizations/{org}/approver-proposals"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("proposals");
    let proposals = proposals["data"].as_array().expect("rows");
    assert_eq!(proposals.len(), 3, "{proposals:?}");
    let holder = proposals[0]["user_id"].as_str().expect("user id");

    let detail: Value = app
        .get(
            &format!("/api/v1/organizations/{org}/users/{holder}"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("user");
    assert!(!detail["roles"].as_array().expect("roles").is_empty());

    let groups = app
        .get_all(
            &format!("/api/v1/organizations/{org}/groups"),
            &msp.owner_key,
        )
        .await;
    assert!(!groups.is_empty());
    let mut members_total = 0;
    for group in &groups {
        let members = app
            .get_all(
                &format!(
                    "/api/v1/organizations/{org}/groups/{}/members",
                    group["id"].as_str().expect("id")
                ),
                &msp.owner_key,
            )
            .await;
        assert_eq!(
            members.len() as i64,
            group["member_count"].as_i64().unwrap_or(-1)
        );
        members_total += members.len();
    }
    assert_eq!(members_total, sim_group_members(&app, "contoso").await);

    let roles: Value = app
        .get(
            &format!("/api/v1/organizations/{org}/directory-roles"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("roles");
    assert!(
        roles["data"]
            .as_array()
            .expect("roles")
            .iter()
            .any(|r| r["display_name"] == "Global Administrator"
                && !r["members"].as_array().expect("members").is_empty()),
        "{roles}"
    );
    for listed in ["licenses", "applications"] {
        let rows = app
            .get_all(
                &format!("/api/v1/organizations/{org}/{listed}"),
                &msp.owner_key,
            )
            .await;
        assert!(!rows.is_empty(), "{listed}");
    }

    // The app's own secret expiry is known to the organization.
    let organization: Value = app
        .get(&format!("/api/v1/organizations/{org}"), &msp.owner_key)
        .await
        .json()
        .await
        .expect("organization");
    assert!(
        organization["secret_expires_at"].is_string(),
        "{organization}"
    );
    assert!(organization["next_scan_at"].is_string(), "{organization}");

    let jobs: Value = app
        .get(
            &format!("/api/v1/jobs?organization={org}&state=completed"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("jobs");
    assert_eq!(jobs["data"][0]["attempt"], 1, "{jobs}");
    // The queue as Prometheus sees it, read from the database at scrape time.
    let metrics = app
        .request(Method::GET, "/metrics", None)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("tenantry_job_wait_seconds{quantile=\"0.99\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tenantry_jobs_started_recently"),
        "{metrics}"
    );
    // Staging is emptied once the run is applied.
    let staged: i64 = sqlx::query_scalar("select count(*) from discovery_stage")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(staged, 0);

    // Deleting the organization removes its whole inventory (no foreign keys per row).
    assert_eq!(
        app.delete(&format!("/api/v1/organizations/{org}"), &msp.owner_key)
            .await
            .status(),
        204
    );
    for table in [
        "inventory_user",
        "inventory_group",
        "inventory_group_member",
        "inventory_role",
        "inventory_role_member",
        "inventory_object",
        "discovery_run",
    ] {
        let left: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
                .fetch_one(&pool)
                .await
                .expect("count");
        assert_eq!(left, 0, "{table} keeps rows of a deleted organization");
    }
}

/// Connects demo tenant `tenant` and runs its first scan, which must succeed; returns the organization's id.
async fn scanned(app: &TestApp, key: &str, tenant: &str) -> String {
    let (org, run) = connect_run(app, key, app.connect_body(tenant)).await;
    let done = app.finished_run(key, &org, &run).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    org
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_delta_run_applies_changes_and_removals(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Delta MSP").await;
    let org = scanned(&app, &msp.owner_key, "tailspin").await;
    let users = app
        .get_all(
            &format!("/api/v1/organizations/{org}/users"),
            &msp.owner_key,
        )
        .await;
    assert_eq!(users.len(), 40);
    let changed = users[5]["id"].as_str().expect("id").to_owned();
    let removed = users[6]["id"].as_str().expect("id").to_owned();
    let joiner = users[7]["id"].as_str().expect("id").to_owned();
    let groups = app
        .get_all(
            &format!("/api/v1/organizations/{org}/groups"),
            &msp.owner_key,
        )
        .await;
    let group = groups[0]["id"].as_str().expect("group").to_owned();

    // An admin changes the tenant in Entra.
    let patched = app
        .graph(
            "tailspin",
            Method::PATCH,
            &format!("/users/{changed}"),
            Some(json!({"jobTitle": "Chief Delta Officer", "department": "Deltas"})),
        )
        .await;
    assert_eq!(patched.status(), 204);
    let deleted = app
        .graph(
            "tailspin",
            Method::DELETE,
            &format!("/users/{removed}"),
            None,
        )
        .await;
    assert_eq!(deleted.status(), 204);
    let members = app
        .get_all(
            &format!("/api/v1/organizations/{org}/groups/{group}/members"),
            &msp.owner_key,
        )
        .await;
    if !members.iter().any(|m| m["id"] == joiner) {
        let added = app
            .graph(
                "tailspin",
                Method::POST,
                &format!("/groups/{group}/members/$ref"),
                Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{joiner}")})),
            )
            .await;
        assert_eq!(added.status(), 204);
    }
    app.sim.state().clear_requests();

    let response = app
        .post_json(
            &format!("/api/v1/organizations/{org}/discovery-runs"),
            &msp.owner_key,
            json!({"mode": "delta"}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let delta: Value = response.json().await.expect("run");
    assert_eq!(delta["mode"], "delta");
    assert_eq!(delta["trigger"], "manual");
    let done = app
        .finished_run(&msp.owner_key, &org, delta["id"].as_str().expect("id"))
        .await;
    assert_eq!(done["state"], "succeeded", "{done}");
    // Nothing but users and groups (and members of changed groups) is read: every other
    // section was read by the full run moments ago, and the record says so.
    assert_eq!(done["sections"]["users"]["reason"], "delta", "{done}");
    for section in [
        "organization",
        "domains",
        "directory_roles",
        "service_principals",
        "licenses",
        "devices",
        "risky_users",
        "app_secret",
    ] {
        assert_eq!(
            done["sections"][section]["status"], "not_due",
            "{section}: {done}"
        );
        assert!(
            done["sections"][section]["due_at"].is_string(),
            "{section}: {done}"
        );
    }

    // Only delta links were followed: no full listing.
    let requests = app.sim.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.path.contains("/users/delta") && r.path.contains("deltatoken")),
        "{requests:?}"
    );
    assert!(!requests.iter().any(|r| r.path.contains("/subscribedSkus")));

    let user: Value = app
        .get(
            &format!("/api/v1/organizations/{org}/users/{changed}"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("user");
    assert_eq!(user["job_title"], "Chief Delta Officer");
    assert_eq!(user["department"], "Deltas");
    let gone = app
        .get(
            &format!("/api/v1/organizations/{org}/users/{removed}"),
            &msp.owner_key,
        )
        .await;
    assert_problem(gone, 404, "NOT_FOUND").await;
    let members = app
        .get_all(
            &format!("/api/v1/organizations/{org}/groups/{group}/members"),
            &msp.owner_key,
        )
        .await;
    assert!(members.iter().any(|m| m["id"] == joiner));
    assert!(!members.iter().any(|m| m["id"] == removed));
    let by_department = app
        .get_all(
            &format!("/api/v1/organizations/{org}/users?department=deltas"),
            &msp.owner_key,
        )
        .await;
    assert_eq!(by_department.len(), 1);
    // The delta was merged into the current generation, and its own rows dropped.
    for table in [
        "inventory_user",
        "inventory_group",
        "inventory_group_member",
    ] {
        assert_eq!(
            rows_outside_current_generation(&pool, table, &org).await,
            0,
            "{table}"
        );
    }

    // A delta token Microsoft no longer accepts: the delta run reads everything again,
    // and a user deleted meanwhile leaves the inventory with its memberships.
    let leaver = users[8]["id"].as_str().expect("id").to_owned();
    let deleted = app
        .graph(
            "tailspin",
            Method::DELETE,
            &format!("/users/{leaver}"),
            None,
        )
        .await;
    assert_eq!(deleted.status(), 204);
    sqlx::query(
        "update discovery_cursor set delta_link = delta_link || 'spoiled'
         where organization_id = $1::uuid and section = 'users'",
    )
    .bind(&org)
    .execute(&pool)
    .await
    .expect("spoil the link");
    let done = run_to_end(&app, &msp.owner_key, &org, "delta").await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["sections"]["users"]["count"], 38, "{done}");
    let left = app
        .get_all(
            &format!("/api/v1/organizations/{org}/users"),
            &msp.owner_key,
        )
        .await;
    assert_eq!(left.len(), 38);
    assert!(!left.iter().any(|u| u["id"] == leaver.as_str()));
    let memberships: i64 = sqlx::query_scalar(
        "select count(*) from inventory_group_member where organization_id = $1::uuid and member_id = $2::uuid",
    )
    .bind(&org)
    .bind(&leaver)
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(memberships, 0);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_delta_run_reads_other_sections_when_due_or_asked_for(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Schedule MSP").await;
    let org = scanned(&app, &msp.owner_key, "tailspin").await;
    let licences_before = app
        .get_all(
            &format!("/api/v1/organizations/{org}/licenses"),
            &msp.owner_key,
        )
        .await;
    assert!(!licences_before.is_empty());

    // Devices were read five hours ago (their interval is four): due. Licences were read
    // just now, but a change notification asked for them: requested.
    sqlx::query(
        "update discovery_section set read_at = now() - interval '5 hours'
         where organization_id = $1::uuid and section = 'devices'",
    )
    .bind(&org)
    .execute(&pool)
    .await
    .expect("age devices");
    let organization = tenantry_domain::OrganizationId::from_uuid(org.parse().expect("uuid"));
    app.store
        .discovery()
        .request_sections(
            organization,
            &[tenantry_domain::discovery::Section::Licenses],
        )
        .await
        .expect("requested");
    app.sim.state().clear_requests();

    let done = run_to_end(&app, &msp.owner_key, &org, "delta").await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["sections"]["devices"]["status"], "done", "{done}");
    assert_eq!(done["sections"]["devices"]["reason"], "due", "{done}");
    assert_eq!(done["sections"]["licenses"]["status"], "done", "{done}");
    assert_eq!(
        done["sections"]["licenses"]["reason"], "requested",
        "{done}"
    );
    assert_eq!(done["sections"]["domains"]["status"], "not_due", "{done}");
    let requests = app.sim.requests();
    assert!(requests.iter().any(|r| r.path.contains("/subscribedSkus")));
    assert!(requests.iter().any(|r| r.path.contains("/managedDevices")));
    assert!(!requests.iter().any(|r| r.path.contains("/domains")));

    // The sections it read replaced the current generation's rows, once each.
    let licences = app
        .get_all(
            &format!("/api/v1/organizations/{org}/licenses"),
            &msp.owner_key,
        )
        .await;
    assert_eq!(licences.len(), licences_before.len());
    for table in ["inventory_object", "inventory_user"] {
        assert_eq!(
            rows_outside_current_generation(&pool, table, &org).await,
            0,
            "{table}"
        );
    }

    // Read now: the next delta run leaves both alone.
    let done = run_to_end(&app, &msp.owner_key, &org, "delta").await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["sections"]["devices"]["status"], "not_due", "{done}");
    assert_eq!(done["sections"]["licenses"]["status"], "not_due", "{done}");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn an_object_listed_twice_is_written_once_as_last_listed(pool: PgPool) {
    use tenantry_store::discovery::{Removals, RunKeys};
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Twice MSP").await;
    let org = scanned(&app, &msp.owner_key, "tailspin").await;
    let principal = app.store.authenticate(&msp.owner_key).await.expect("key");
    let organization = tenantry_domain::OrganizationId::from_uuid(org.parse().expect("uuid"));
    let (run, _) = app
        .store
        .scope(&principal)
        .queue_discovery(
            organization,
            tenantry_store::DiscoveryTrigger::Manual,
            tenantry_store::DiscoveryMode::Full,
        )
        .await
        .expect("queued");
    let store = app.store.discovery();
    let context = store.start(run.run_id).await.expect("started");
    let keys = RunKeys {
        run: run.run_id,
        organization,
        msp: context.msp_id,
    };
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let user = |id: uuid::Uuid, title: &str| json!({"id": id, "displayName": "Twice", "userPrincipalName": format!("{id}@example.com"), "jobTitle": title});
    // Listed twice in one page, then again in a later page (the plain insert collides
    // both times and the page is written as an upsert).
    let first = json!([user(a, "first"), user(b, "first"), user(a, "second")]).to_string();
    let later = json!([user(b, "third")]).to_string();
    for page in [&first, &later] {
        store
            .write_delta_page(keys, "users", page, Removals::None)
            .await
            .expect("written");
    }
    let titles: Vec<(uuid::Uuid, Option<String>)> = sqlx::query_as(
        "select user_id, job_title from inventory_user where generation = $1 order by job_title",
    )
    .bind(run.run_id.as_uuid())
    .fetch_all(&pool)
    .await
    .expect("rows");
    assert_eq!(
        titles,
        [
            (a, Some("second".to_owned())),
            (b, Some("third".to_owned()))
        ]
    );
    // A listed section (devices) takes the same plain insert first and the same upsert.
    let device = |id: uuid::Uuid, name: &str| json!({"id": id, "deviceName": name});
    let first = json!([device(a, "first"), device(b, "first"), device(a, "second")]).to_string();
    let later = json!([device(b, "third")]).to_string();
    for page in [&first, &later] {
        store
            .write_page(keys, "devices", "id", page)
            .await
            .expect("written");
    }
    let names: Vec<(String, Option<String>)> = sqlx::query_as(
        "select object_id, display_name from inventory_object
         where generation = $1 and section = 'devices' order by display_name",
    )
    .bind(run.run_id.as_uuid())
    .fetch_all(&pool)
    .await
    .expect("rows");
    assert_eq!(
        names,
        [
            (a.to_string(), Some("second".to_owned())),
            (b.to_string(), Some("third".to_owned()))
        ]
    );
}

/// Rows of `table` for `organization` outside its current generation.
async fn rows_outside_current_generation(pool: &PgPool, table: &str, organization: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from {table} i join organization o using (organization_id)
         where o.organization_id = $1::uuid and i.generation <> o.inventory_generation"
    )))
    .bind(organization)
    .fetch_one(pool)
    .await
    .expect("count")
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn readers_see_the_previous_inventory_until_a_full_run_is_applied(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Generations MSP").await;
    let org = scanned(&app, &msp.owner_key, "contoso").await;
    let users_path = format!("/api/v1/organizations/{org}/users");
    let devices_path = format!("/api/v1/organizations/{org}/devices");
    let users = app.get_all(&users_path, &msp.owner_key).await;
    assert_eq!(users.len(), 250);
    let devices = app.get_all(&devices_path, &msp.owner_key).await.len();
    assert!(devices > 0);
    let leaver = users[3]["id"].as_str().expect("id").to_owned();
    // The next scan takes a new token, without the permission removed below.
    app.graph.forget_tokens();

    // In Entra: a user leaves, and the app loses its Intune permission. Microsoft is slow,
    // so the next scan is still running while we read.
    app.change_tenant("contoso", |t| {
        *t = t.clone().without_permissions(&[
            "DeviceManagementManagedDevices.Read.All",
            "DeviceManagementManagedDevices.ReadWrite.All",
        ]);
    });
    let deleted = app
        .graph("contoso", Method::DELETE, &format!("/users/{leaver}"), None)
        .await;
    assert_eq!(deleted.status(), 204);
    answer_slowly(&app, "contoso");
    let started: Value = app
        .post_json(
            &format!("/api/v1/organizations/{org}/discovery-runs"),
            &msp.owner_key,
            json!({}),
        )
        .await
        .json()
        .await
        .expect("run");
    assert_eq!(started["mode"], "full");
    let second = started["id"].as_str().expect("id").to_owned();
    // Workers in the background: the test reads while the scan runs.
    let _workers = app.start_workers();
    // Wait until the running scan has written users of its own.
    let mut written = 0_i64;
    for _ in 0..300 {
        written = sqlx::query_scalar(
            "select count(*) from inventory_user where organization_id = $1::uuid and generation = $2::uuid",
        )
        .bind(&org)
        .bind(&second)
        .fetch_one(&pool)
        .await
        .expect("count");
        if written > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(written > 0, "the second scan wrote no users");
    let during = app.get_all(&users_path, &msp.owner_key).await;
    assert_eq!(during.len(), 250, "readers see the applied inventory only");
    assert!(during.iter().any(|u| u["id"] == leaver.as_str()));
    let running: Value = app
        .get(
            &format!("/api/v1/organizations/{org}/discovery-runs/{second}"),
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("run");
    assert_eq!(running["state"], "running", "{running}");

    let done = app.wait_for_run(&msp.owner_key, &org, &second).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["sections"]["devices"]["status"], "skipped");
    let after = app.get_all(&users_path, &msp.owner_key).await;
    assert_eq!(after.len(), 249);
    assert!(!after.iter().any(|u| u["id"] == leaver.as_str()));
    // A section Microsoft refused keeps what the previous scan found.
    assert_eq!(
        app.get_all(&devices_path, &msp.owner_key).await.len(),
        devices
    );
    // The previous generation is gone; nothing but the current one is kept.
    for table in [
        "inventory_user",
        "inventory_group",
        "inventory_group_member",
        "inventory_role",
        "inventory_role_member",
        "inventory_object",
    ] {
        assert_eq!(
            rows_outside_current_generation(&pool, table, &org).await,
            0,
            "{table}"
        );
    }
    let generation: uuid::Uuid = sqlx::query_scalar(
        "select inventory_generation from organization where organization_id = $1::uuid",
    )
    .bind(&org)
    .fetch_one(&pool)
    .await
    .expect("generation");
    assert_eq!(generation.to_string(), second);
}

/// Inventory rows (every table, every generation) whose `column` is `value`.
async fn inventory_rows(pool: &PgPool, column: &str, value: &str) -> i64 {
    let mut total = 0;
    for table in [
        "inventory_user",
        "inventory_group",
        "inventory_group_member",
        "inventory_role",
        "inventory_role_member",
        "inventory_object",
    ] {
        total += sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "select count(*) from {table} where {column} = $1::uuid"
        )))
        .bind(value)
        .fetch_one(pool)
        .await
        .expect("count");
    }
    total
}

/// Makes every answer of Microsoft for demo tenant `tenant` 400 ms late, so a scan of it
/// is still running while a test looks.
fn answer_slowly(app: &TestApp, tenant: &str) {
    let mut faults = Faults::default();
    faults.tenants.insert(
        app.demo(tenant).id.to_string(),
        FaultSpec {
            latency_ms: 400,
            ..Default::default()
        },
    );
    app.sim.state().set_faults(faults);
}

/// Connects contoso with every Microsoft answer 400 ms late, starts the workers and waits
/// until the first scan has written rows of its own.
async fn slow_scan_under_way(app: &TestApp, key: &str) -> (String, String, Workers) {
    let (org, run) = connect_run(app, key, app.connect_body("contoso")).await;
    answer_slowly(app, "contoso");
    let workers = app.start_workers();
    for _ in 0..300 {
        if inventory_rows(&app.pool, "generation", &run).await > 0 {
            return (org, run, workers);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the scan wrote nothing");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn deleting_an_organization_mid_scan_leaves_none_of_its_rows(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Leaving MSP").await;
    let (org, run, _workers) = slow_scan_under_way(&app, &msp.owner_key).await;
    assert_eq!(
        app.delete(&format!("/api/v1/organizations/{org}"), &msp.owner_key)
            .await
            .status(),
        204
    );
    // The scan's worker may still be reading Microsoft: wait until it has stopped.
    let mut seen = app.sim.requests().len();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let now = app.sim.requests().len();
        if now == seen {
            break;
        }
        seen = now;
    }
    assert_eq!(inventory_rows(&pool, "organization_id", &org).await, 0);
    let staged: i64 =
        sqlx::query_scalar("select count(*) from discovery_stage where run_id = $1::uuid")
            .bind(&run)
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(staged, 0);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_scan_cancelled_while_running_leaves_no_rows_behind(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let msp = app.create_msp("Cancelling MSP").await;
    let (org, run, _workers) = slow_scan_under_way(&app, &msp.owner_key).await;
    let written = || inventory_rows(&pool, "generation", &run);
    let jobs: Value = app
        .get("/api/v1/jobs?kind=discovery&state=running", &msp.owner_key)
        .await
        .json()
        .await
        .expect("jobs");
    let job = jobs["data"][0]["id"].as_str().expect("a running job");
    let cancelled = app
        .post_json(
            &format!("/api/v1/jobs/{job}/cancel"),
            &msp.owner_key,
            json!({}),
        )
        .await;
    assert_eq!(cancelled.status(), 200);
    let closed = app.wait_for_run(&msp.owner_key, &org, &run).await;
    assert_eq!(closed["state"], "cancelled", "{closed}");
    assert_eq!(written().await, 0, "a closed run's rows are dropped");
    let staged: i64 = sqlx::query_scalar("select count(*) from discovery_stage")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(staged, 0);
    assert!(
        app.get_all(
            &format!("/api/v1/organizations/{org}/users"),
            &msp.owner_key
        )
        .await
        .is_empty()
    );
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_section_refused_for_a_missing_permission_is_skipped_by_name(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.change_tenant("contoso", |t| {
        *t = t.clone().without_permissions(&[
            "DeviceManagementManagedDevices.Read.All",
            "DeviceManagementManagedDevices.ReadWrite.All",
        ]);
    });
    let msp = app.create_msp("Partial MSP").await;
    let mut body = app.connect_body("contoso");
    body["capabilities"] = json!(["discovery"]);
    let (org, run) = connect_run(&app, &msp.owner_key, body).await;
    let done = app.finished_run(&msp.owner_key, &org, &run).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["sections"]["devices"]["status"], "skipped");
    assert_eq!(
        done["sections"]["devices"]["permission"],
        "DeviceManagementManagedDevices.ReadWrite.All"
    );
    assert_eq!(done["sections"]["users"]["status"], "done");
    let users = app
        .get_all(
            &format!("/api/v1/organizations/{org}/users"),
            &msp.owner_key,
        )
        .await;
    assert_eq!(users.len(), 250);
}

/// Connects `tenant` with workers stopped, injects `spec` for it, then runs discovery.
async fn discover_under_faults(
    app: &TestApp,
    key: &str,
    tenant: &str,
    spec: FaultSpec,
) -> (String, Value) {
    let (org, run) = connect_run(app, key, app.connect_body(tenant)).await;
    let mut faults = Faults::default();
    faults.tenants.insert(app.demo(tenant).id.to_string(), spec);
    app.sim.state().set_faults(faults);
    let done = app.finished_run(key, &org, &run).await;
    (org, done)
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_throttling_storm_ends_with_a_complete_and_correct_inventory(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Throttled MSP").await;
    let storm = FaultSpec {
        error_rate: 0.33,
        error_statuses: vec![429],
        retry_after_secs: Some(0.02),
        ..Default::default()
    };
    let (org, done) = discover_under_faults(&app, &msp.owner_key, "contoso", storm).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(done["throttled"].as_i64().unwrap_or(0) > 0, "{done}");
    let throttled = app
        .sim
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert!(throttled > 0);
    let users = app
        .get_all(
            &format!("/api/v1/organizations/{org}/users"),
            &msp.owner_key,
        )
        .await;
    assert_eq!(users.len(), 250);
    let groups = app
        .get_all(
            &format!("/api/v1/organizations/{org}/groups"),
            &msp.owner_key,
        )
        .await;
    let members: i64 = groups
        .iter()
        .map(|g| g["member_count"].as_i64().unwrap_or(0))
        .sum();
    app.sim.state().set_faults(Faults::default());
    assert_eq!(members as usize, sim_group_members(&app, "contoso").await);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn graph_outages_are_retried_until_the_run_completes(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Outage MSP").await;
    let outage = FaultSpec {
        error_rate: 0.3,
        error_statuses: vec![503, 504],
        ..Default::default()
    };
    let (org, done) = discover_under_faults(&app, &msp.owner_key, "tailspin", outage).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let users = app
        .get_all(
            &format!("/api/v1/organizations/{org}/users"),
            &msp.owner_key,
        )
        .await;
    assert_eq!(users.len(), 40);
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn a_large_tenant_is_paged_completely(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let mut scenario = app.sim.state().scenario();
    scenario
        .tenants
        .push(tenantry_graph_sim::TenantSpec::healthy(
            "bigcorp", "Big Corp", 12_000,
        ));
    app.sim.state().load(scenario.clone());
    let spec = scenario
        .tenants
        .iter()
        .find(|t| t.name == "bigcorp")
        .expect("bigcorp")
        .clone();
    let msp = app.create_msp("Big MSP").await;
    let body = json!({"name": "Big Corp", "provider": "microsoft365", "tenant_id": spec.id,
        "client_id": spec.app().client_id, "client_secret": spec.secret_value()});
    let (org, run) = connect_run(&app, &msp.owner_key, body).await;
    let done = app.finished_run(&msp.owner_key, &org, &run).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["sections"]["users"]["count"], 12_000);
    let count: i64 =
        sqlx::query_scalar("select count(*) from inventory_user where organization_id = $1::uuid")
            .bind(&org)
            .fetch_one(&app.pool)
            .await
            .expect("count");
    assert_eq!(count, 12_000);
    let pages = app
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v1.0/users/delta"))
        .count();
    assert_eq!(pages, 13, "999 users a page");
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn scan_now_is_unique_per_organization_and_needs_a_technician(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Unique MSP").await;
    let (org, first) = connect_run(&app, &msp.owner_key, app.connect_body("tailspin")).await;
    let path = format!("/api/v1/organizations/{org}/discovery-runs");
    // No worker runs: the first run is still queued, so scan-now returns it.
    let again = app
        .request(Method::POST, &path, Some(&msp.owner_key))
        .send()
        .await
        .expect("sent");
    assert_eq!(again.status(), 202);
    let again: Value = again.json().await.expect("run");
    assert_eq!(again["id"], first.as_str());
    let discovery_jobs: i64 = sqlx::query_scalar(
        "select count(*) from job where kind = 'discovery' and organization_id = $1::uuid",
    )
    .bind(&org)
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(discovery_jobs, 1);
    let metrics = app
        .request(Method::GET, "/metrics", None)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("tenantry_jobs{kind=\"discovery\",state=\"available\"} 1"),
        "{metrics}"
    );

    let (_, viewer) = app.key_for(&msp, tenantry_domain::Role::Viewer).await;
    assert_problem(
        app.post_json(&path, &viewer, json!({})).await,
        403,
        "FORBIDDEN",
    )
    .await;
    let bad_mode = app
        .post_json(&path, &msp.owner_key, json!({"mode": "sideways"}))
        .await;
    assert_problem(bad_mode, 422, "INVALID_REQUEST").await;
    let runs = app.get_all(&path, &viewer).await;
    assert_eq!(runs.len(), 1);
    let bad_kind = app
        .get(
            &format!("/api/v1/organizations/{org}/groups?kind=weird"),
            &msp.owner_key,
        )
        .await;
    assert_problem(bad_kind, 422, "INVALID_REQUEST").await;
    let long_q = app
        .get(
            &format!("/api/v1/organizations/{org}/users?q={}", "a".repeat(201)),
            &msp.owner_key,
        )
        .await;
    assert_problem(long_q, 422, "INVALID_REQUEST").await;
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn jobs_can_be_cancelled_and_retried_by_admins_only(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Jobs MSP").await;
    let (org, run) = connect_run(&app, &msp.owner_key, app.connect_body("tailspin")).await;
    let jobs: Value = app
        .get(
            "/api/v1/jobs?kind=discovery&state=available",
            &msp.owner_key,
        )
        .await
        .json()
        .await
        .expect("jobs");
    let job = jobs["data"][0]["id"].as_str().expect("job").to_owned();
    let (_, technician) = app.key_for(&msp, tenantry_domain::Role::Technician).await;
    let refused = app
        .post_json(
            &format!("/api/v1/jobs/{job}/cancel"),
            &technician,
            json!({}),
        )
        .await;
    assert_problem(refused, 403, "FORBIDDEN").await;
    let cancelled = app
        .post_json(
            &format!("/api/v1/jobs/{job}/cancel"),
            &msp.owner_key,
            json!({}),
        )
        .await;
    assert_eq!(cancelled.status(), 200);
    let cancelled: Value = cancelled.json().await.expect("job");
    assert_eq!(cancelled["state"], "cancelled");
    let twice = app
        .post_json(
            &format!("/api/v1/jobs/{job}/cancel"),
            &msp.owner_key,
            json!({}),
        )
        .await;
    assert_problem(twice, 409, "JOB_STATE_CONFLICT").await;

    // The leader closes the run of a cancelled job.
    app.run_maintenance().await;
    let closed = app.finished_run(&msp.owner_key, &org, &run).await;
    assert_eq!(closed["state"], "cancelled");

    let retried = app
        .post_json(
            &format!("/api/v1/jobs/{job}/retry"),
            &msp.owner_key,
            json!({}),
        )
        .await;
    assert_eq!(retried.status(), 200);
    let bad_state = app.get("/api/v1/jobs?state=exploded", &msp.owner_key).await;
    assert_problem(bad_state, 422, "INVALID_REQUEST").await;
    let other = app.create_msp("Other MSP").await;
    let hidden = app
        .get(&format!("/api/v1/jobs/{job}"), &other.owner_key)
        .await;
    assert_problem(hidden, 404, "NOT_FOUND").await;
}

#[sqlx::test(migrator = "tenantry_store::MIGRATOR")]
async fn schedules_are_validated_and_due_scans_are_queued_by_the_leader(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Scheduled MSP").await;
    let (org, first) = connect_run(&app, &msp.owner_key, app.connect_body("tailspin")).await;
    let path = format!("/api/v1/organizations/{org}");
    let bad = app
        .request(Method::PATCH, &path, Some(&msp.owner_key))
        .json(&json!({"scan_schedule": "every day"}))
        .send()
        .await
        .expect("sent");
    assert_problem(bad, 422, "INVALID_REQUEST").await;
    let set = app
        .request(Method::PATCH, &path, Some(&msp.owner_key))
        .json(&json!({"scan_schedule": "30 2 * * *"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(set.status(), 200);
    let set: Value = set.json().await.expect("org");
    assert_eq!(set["scan_schedule"], "30 2 * * *");
    assert!(
        set["next_scan_at"]
            .as_str()
            .is_some_and(|t| t.contains("T02:30:00")),
        "{set}"
    );

    for (schedule, why) in [
        ("* * * * *", "a full scan every minute"),
        ("*/20 * * * *", "every 20 minutes"),
        ("0 0 31 2 *", "never fires"),
    ] {
        let refused = app
            .request(Method::PATCH, &path, Some(&msp.owner_key))
            .json(&json!({"scan_schedule": schedule}))
            .send()
            .await
            .expect("sent");
        let problem = assert_problem(refused, 422, "INVALID_REQUEST").await;
        assert_eq!(problem["errors"][0]["field"], "scan_schedule", "{why}");
    }

    assert_eq!(
        app.finished_run(&msp.owner_key, &org, &first).await["state"],
        "succeeded"
    );
    // Make the schedule due: the leader queues exactly one scheduled run.
    sqlx::query("update organization set next_scan_at = now() - interval '1 minute' where organization_id = $1::uuid")
        .bind(&org)
        .execute(&app.pool)
        .await
        .expect("due");
    let runs_path = format!("/api/v1/organizations/{org}/discovery-runs");
    app.run_maintenance().await;
    app.run_maintenance().await;
    let runs = app.get_all(&runs_path, &msp.owner_key).await;
    let scheduled = runs
        .iter()
        .find(|r| r["trigger"] == "schedule")
        .and_then(|r| r["id"].as_str())
        .expect("a scheduled run was queued")
        .to_owned();
    assert_eq!(
        app.finished_run(&msp.owner_key, &org, &scheduled).await["state"],
        "succeeded"
    );
    let runs = app.get_all(&runs_path, &msp.owner_key).await;
    assert_eq!(
        runs.iter().filter(|r| r["trigger"] == "schedule").count(),
        1
    );
    let organization: Value = app
        .get(&path, &msp.owner_key)
        .await
        .json()
        .await
        .expect("org");
    assert!(
        organization["next_scan_at"]
            .as_str()
            .is_some_and(|t| t.contains("T02:30:00")),
        "moved on by the cron expression: {organization}"
    );
}

/// Asks for a discovery run of `mode` through the API and waits for its end.
async fn run_to_end(app: &TestApp, key: &str, org: &str, mode: &str) -> Value {
    let run: Value = app
        .post_json(
            &format!("/api/v1/organizations/{org}/discovery-runs"),
            key,
            json!({"mode": mode}),
        )
        .await
        .json()
        .await
        .expect("run");
    app.finished_run(key, org, run["id"].as_str().expect("id"))
        .await
}
