//! Graph v1.0 through real HTTP: bodies and headers compared with graph-facts, paging,
//! delta, batch, permission checks, write rules.

mod common;

use std::collections::HashSet;

use common::{Sim, assert_graph_error};
use reqwest::Method;
use serde_json::{Value, json};
use tenantry_graph_sim::TenantSpec;

fn contoso(users: u32) -> TenantSpec {
    TenantSpec::healthy("contoso", "Contoso Ltd", users)
}

#[tokio::test]
async fn organization_matches_the_documented_shape() {
    let spec = contoso(30);
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let response = sim.get(&token, "/organization").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/json;odata.metadata=minimal")
    );
    assert_eq!(response.headers()["x-ms-resource-unit"], "1");
    let body: Value = response.json().await.expect("json");
    assert!(
        body["@odata.context"]
            .as_str()
            .expect("context")
            .ends_with("/v1.0/$metadata#organization")
    );
    let org = &body["value"][0];
    assert_eq!(org["id"], spec.id.to_string());
    assert_eq!(org["displayName"], "Contoso Ltd");
    for field in [
        "deletedDateTime",
        "businessPhones",
        "city",
        "country",
        "countryLetterCode",
        "createdDateTime",
        "defaultUsageLocation",
        "isMultipleDataLocationsForServicesEnabled",
        "marketingNotificationEmails",
        "onPremisesLastSyncDateTime",
        "onPremisesSyncEnabled",
        "partnerTenantType",
        "postalCode",
        "preferredLanguage",
        "securityComplianceNotificationMails",
        "securityComplianceNotificationPhones",
        "state",
        "street",
        "technicalNotificationMails",
        "tenantType",
        "directorySizeQuota",
        "assignedPlans",
        "privacyProfile",
        "provisionedPlans",
        "verifiedDomains",
    ] {
        assert!(org.get(field).is_some(), "organization.{field}");
    }
    let initial = &org["verifiedDomains"][0];
    assert_eq!(initial["name"], "contoso.onmicrosoft.com");
    assert_eq!(initial["isInitial"], true);
    assert_eq!(initial["type"], "Managed");
}

#[tokio::test]
async fn service_principal_and_app_role_assignments_follow_the_reference() {
    let spec = contoso(30);
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let sp = spec.app().service_principal.clone().expect("sp");
    let client = spec.app().client_id;

    let by_filter: Value = sim
        .get(
            &token,
            &format!("/servicePrincipals?$filter=appId eq '{client}'"),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(by_filter["value"].as_array().expect("value").len(), 1);
    assert_eq!(by_filter["value"][0]["id"], sp.id.to_string());
    let by_key: Value = sim
        .get(&token, &format!("/servicePrincipals(appId='{client}')"))
        .await
        .json()
        .await
        .expect("json");
    assert!(
        by_key["@odata.context"]
            .as_str()
            .expect("ctx")
            .ends_with("$metadata#servicePrincipals/$entity")
    );
    assert_eq!(by_key["appId"], client.to_string());
    let none: Value = sim
        .get(
            &token,
            &format!(
                "/servicePrincipals?$filter=appId eq '{}'",
                uuid::Uuid::new_v4()
            ),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(none["value"], json!([]));
    assert_graph_error(
        sim.get(
            &token,
            &format!("/servicePrincipals/{}", uuid::Uuid::new_v4()),
        )
        .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;

    let graph: Value = sim
        .get(
            &token,
            "/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')",
        )
        .await
        .json()
        .await
        .expect("json");
    let graph_sp = graph["id"].as_str().expect("graph sp id").to_owned();
    assert_ne!(
        graph_sp, "00000003-0000-0000-c000-000000000000",
        "the resource id is the tenant's own Graph SP"
    );

    let response = sim
        .get(
            &token,
            &format!("/servicePrincipals/{}/appRoleAssignments", sp.id),
        )
        .await;
    assert_eq!(
        response.headers()["x-ms-resource-unit"],
        "2",
        "appRoleAssignments cost 2 RU"
    );
    let assignments: Value = response.json().await.expect("json");
    assert!(
        assignments["@odata.context"]
            .as_str()
            .expect("ctx")
            .ends_with("$metadata#appRoleAssignments")
    );
    let rows = assignments["value"].as_array().expect("value");
    assert_eq!(rows.len(), 27);
    let first = &rows[0];
    for field in [
        "id",
        "deletedDateTime",
        "appRoleId",
        "createdDateTime",
        "principalDisplayName",
        "principalId",
        "principalType",
        "resourceDisplayName",
        "resourceId",
    ] {
        assert!(first.get(field).is_some(), "appRoleAssignment.{field}");
    }
    assert_eq!(first["principalType"], "ServicePrincipal");
    assert_eq!(first["resourceId"], graph_sp);
    assert_eq!(first["principalId"], sp.id.to_string());
    // Paged when asked for small pages.
    let page: Value = sim
        .get(
            &token,
            &format!("/servicePrincipals/{}/appRoleAssignments?$top=20", sp.id),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(page["value"].as_array().expect("value").len(), 20);
    let next = page["@odata.nextLink"].as_str().expect("next link");
    let rest: Value = sim.get_url(&token, next).await.json().await.expect("json");
    assert_eq!(rest["value"].as_array().expect("value").len(), 7);

    let roles: Value = sim
        .get(
            &token,
            &format!(
                "/roleManagement/directory/roleAssignments?$filter=principalId eq '{}'",
                sp.id
            ),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        roles["value"][0]["roleDefinitionId"], "fe930be7-5e62-47db-91af-98c3a49a38b1",
        "User Administrator"
    );

    let app: Value = sim
        .get(
            &token,
            &format!(
                "/applications(appId='{client}')?$select=id,appId,displayName,passwordCredentials"
            ),
        )
        .await
        .json()
        .await
        .expect("json");
    let credential = &app["passwordCredentials"][0];
    assert_eq!(credential["hint"], &spec.secret_value()[..3]);
    assert_eq!(credential["secretText"], Value::Null);
    assert_eq!(
        credential["keyId"],
        spec.app().secrets[0].key_id.to_string()
    );
    assert!(credential["endDateTime"].is_string());
}

#[tokio::test]
async fn every_permission_gated_endpoint_answers_403_without_its_permission() {
    let bare =
        contoso(30).without_permissions(&tenantry_graph_sim::permissions::DEFAULT_REQUIRED[..]);
    let sim = Sim::start(vec![bare.clone()]).await;
    let token = sim.token(&bare).await;
    let user = "megan.bowen0@contoso.onmicrosoft.com";
    let reads = [
        "/organization".to_owned(),
        "/domains".into(),
        "/servicePrincipals".into(),
        format!(
            "/servicePrincipals/{}/appRoleAssignments",
            bare.app().service_principal.as_ref().expect("sp").id
        ),
        "/roleManagement/directory/roleAssignments".into(),
        "/users".into(),
        format!("/users/{user}"),
        "/users/delta".into(),
        format!("/users/{user}/memberOf"),
        format!("/users/{user}/authentication/methods"),
        "/groups".into(),
        "/groups/delta".into(),
        "/directoryRoles".into(),
        "/subscribedSkus".into(),
        "/deviceManagement/managedDevices".into(),
        "/identityProtection/riskyUsers".into(),
    ];
    for path in &reads {
        let body = assert_graph_error(
            sim.get(&token, path).await,
            403,
            "Authorization_RequestDenied",
        )
        .await;
        assert_eq!(
            body["error"]["message"], "Insufficient privileges to complete the operation.",
            "{path}"
        );
    }
    let writes = [
        (
            Method::PATCH,
            format!("/users/{user}"),
            Some(json!({"jobTitle": "x"})),
        ),
        (
            Method::POST,
            format!("/users/{user}/revokeSignInSessions"),
            None,
        ),
        (
            Method::POST,
            "/identityProtection/riskyUsers/dismiss".into(),
            Some(json!({"userIds": []})),
        ),
    ];
    for (method, path, body) in writes {
        // Identity Protection allows one request per second per tenant.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert_graph_error(
            sim.send(&token, method, &path, body).await,
            403,
            "Authorization_RequestDenied",
        )
        .await;
    }
    // An app can always read its own service principal and application.
    let own = sim
        .get(
            &token,
            &format!("/servicePrincipals(appId='{}')", bare.app().client_id),
        )
        .await;
    assert_eq!(own.status(), 200);
    let own_app = sim
        .get(
            &token,
            &format!("/applications(appId='{}')", bare.app().client_id),
        )
        .await;
    assert_eq!(own_app.status(), 200);
}

#[tokio::test]
async fn users_page_in_999_row_pages_with_absolute_next_links() {
    let spec = contoso(2_500);
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let mut url = sim.url("/v1.0/users?$select=id,userPrincipalName,accountEnabled&$top=999");
    let mut sizes = Vec::new();
    let mut ids = HashSet::new();
    loop {
        let page: Value = sim.get_url(&token, &url).await.json().await.expect("json");
        let rows = page["value"].as_array().expect("value");
        sizes.push(rows.len());
        for row in rows {
            assert_eq!(
                row.as_object().expect("object").len(),
                3,
                "$select is honoured: {row}"
            );
            ids.insert(row["id"].as_str().expect("id").to_owned());
        }
        match page["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&sim.sim.base_url()), "{next}");
                assert!(
                    next.contains("$select=id,userPrincipalName,accountEnabled"),
                    "{next}"
                );
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(sizes, [999, 999, 502]);
    assert_eq!(ids.len(), 2_500);

    let default: Value = sim.get(&token, "/users").await.json().await.expect("json");
    assert_eq!(
        default["value"].as_array().expect("value").len(),
        100,
        "100 by default"
    );
    let keys: HashSet<&str> = default["value"][0]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        tenantry_graph_sim::model::users::DEFAULT_PROPERTIES
            .into_iter()
            .collect()
    );

    for top in ["1000", "0", "x"] {
        let body = assert_graph_error(
            sim.get(&token, &format!("/users?$top={top}")).await,
            400,
            "Request_BadRequest",
        )
        .await;
        assert_eq!(
            body["error"]["message"],
            format!("Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive.")
        );
    }
    let by_upn: Value = sim
        .get(&token, "/users/ADELE.VANCE1@contoso.onmicrosoft.com")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(by_upn["displayName"], "Adele Vance");
    let by_id: Value = sim
        .get(
            &token,
            &format!("/users/{}", by_upn["id"].as_str().expect("id")),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        by_id["userPrincipalName"],
        "adele.vance1@contoso.onmicrosoft.com"
    );
    assert_graph_error(
        sim.get(&token, &format!("/users/{}", uuid::Uuid::new_v4()))
            .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
}

#[tokio::test]
async fn delta_rounds_report_changes_and_removals() {
    let spec = contoso(450);
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let mut url = sim.url("/v1.0/users/delta?$select=id,displayName,jobTitle");
    let mut seen = 0;
    let delta_link = loop {
        let page: Value = sim.get_url(&token, &url).await.json().await.expect("json");
        seen += page["value"].as_array().expect("value").len();
        if let Some(next) = page["@odata.nextLink"].as_str() {
            assert!(next.contains("$skiptoken="));
            url = next.to_owned();
        } else {
            break page["@odata.deltaLink"]
                .as_str()
                .expect("delta link")
                .to_owned();
        }
    };
    assert_eq!(seen, 450);
    assert!(delta_link.contains("$deltatoken="));

    // Users 0–2 hold admin roles; 3 and 4 are ordinary.
    let users: Value = sim
        .get(&token, "/users?$top=5&$select=id")
        .await
        .json()
        .await
        .expect("json");
    let changed = users["value"][3]["id"].as_str().expect("id").to_owned();
    let removed = users["value"][4]["id"].as_str().expect("id").to_owned();
    let patched = sim
        .send(
            &token,
            Method::PATCH,
            &format!("/users/{changed}"),
            Some(json!({"jobTitle": "Chief Coffee Officer"})),
        )
        .await;
    assert_eq!(patched.status(), 204);
    let deleted = sim
        .send(&token, Method::DELETE, &format!("/users/{removed}"), None)
        .await;
    assert_eq!(deleted.status(), 204);

    let round: Value = sim
        .get_url(&token, &delta_link)
        .await
        .json()
        .await
        .expect("json");
    let rows = round["value"].as_array().expect("value");
    assert_eq!(rows.len(), 2, "{round}");
    assert_eq!(rows[0]["id"], changed);
    assert_eq!(rows[0]["jobTitle"], "Chief Coffee Officer");
    assert_eq!(
        rows[1],
        json!({"id": removed, "@removed": {"reason": "changed"}})
    );
    let next_link = round["@odata.deltaLink"].as_str().expect("delta link");
    let quiet: Value = sim
        .get_url(&token, next_link)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(quiet["value"], json!([]), "nothing changed since");
    assert!(
        quiet["@odata.deltaLink"].is_string(),
        "the last page carries a deltaLink even when empty"
    );
    assert_graph_error(
        sim.get(&token, &format!("/users/{removed}")).await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
}

#[tokio::test]
async fn batches_run_items_with_dependencies_and_limits() {
    let spec =
        contoso(30).without_permissions(&["Organization.Read.All", "Directory.ReadWrite.All"]);
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let batch = json!({"requests": [
        {"id": "1", "method": "GET", "url": "/organization"},
        {"id": "2", "method": "GET", "url": "/users?$top=2&$select=id", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/directoryRoles"},
    ]});
    let response = sim.send(&token, Method::POST, "/$batch", Some(batch)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let by_id = |id: &str| {
        body["responses"]
            .as_array()
            .expect("responses")
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .expect("item")
    };
    assert_eq!(by_id("1")["status"], 403);
    assert_eq!(
        by_id("1")["body"]["error"]["code"],
        "Authorization_RequestDenied"
    );
    assert_eq!(
        by_id("2")["status"],
        424,
        "a failed dependency fails its dependants"
    );
    assert_eq!(by_id("3")["status"], 200);
    assert_eq!(by_id("3")["headers"]["x-ms-resource-unit"], "1");
    assert!(
        by_id("3")["body"]["value"]
            .as_array()
            .is_some_and(|v| !v.is_empty())
    );

    let too_many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    assert_graph_error(
        sim.send(
            &token,
            Method::POST,
            "/$batch",
            Some(json!({"requests": too_many})),
        )
        .await,
        400,
        "Request_BadRequest",
    )
    .await;
    let duplicate = json!({"requests": [{"id": "1", "method": "GET", "url": "/users"}, {"id": "1", "method": "GET", "url": "/groups"}]});
    assert_graph_error(
        sim.send(&token, Method::POST, "/$batch", Some(duplicate))
            .await,
        400,
        "Request_BadRequest",
    )
    .await;
}

#[tokio::test]
async fn writes_follow_microsofts_rules() {
    let spec = contoso(60);
    let tailspin = TenantSpec::healthy("tailspin", "Tailspin Toys", 20).with_directory_roles(&[]);
    let sim = Sim::start(vec![spec.clone(), tailspin.clone()]).await;
    let token = sim.token(&spec).await;
    // User 20: in Finance-Admins (20 mod 5 = 0), authenticator (default) and phone (20 mod 4 = 0).
    let target: Value = sim
        .get(&token, "/users?$top=21&$select=id,userPrincipalName")
        .await
        .json()
        .await
        .expect("json");
    let member = target["value"][20]["id"].as_str().expect("id").to_owned();

    // Group membership: add, add again (400), unknown object (404), remove.
    let groups: Value = sim
        .get(&token, "/groups?$select=id,displayName")
        .await
        .json()
        .await
        .expect("json");
    let finance = groups["value"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["displayName"] == "Finance-Admins")
        .expect("group")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let reference =
        json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{member}")});
    let members_ref = format!("/groups/{finance}/members/$ref");
    let add = |body: Value| sim.send(&token, Method::POST, &members_ref, Some(body));
    let first = add(reference.clone()).await;
    // User 20 is in group 0 (Finance-Admins) already by generation.
    let body = assert_graph_error(first, 400, "Request_BadRequest").await;
    assert_eq!(
        body["error"]["message"],
        "One or more added object references already exist for the following modified properties: 'members'."
    );
    let removed = sim
        .send(
            &token,
            Method::DELETE,
            &format!("/groups/{finance}/members/{member}/$ref"),
            None,
        )
        .await;
    assert_eq!(removed.status(), 204);
    assert_eq!(add(reference).await.status(), 204);
    let ghost = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", uuid::Uuid::new_v4())});
    assert_graph_error(add(ghost).await, 404, "Request_ResourceNotFound").await;

    // Sessions.
    let revoked = sim
        .send(
            &token,
            Method::POST,
            &format!("/users/{member}/revokeSignInSessions"),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 200);
    let revoked: Value = revoked.json().await.expect("json");
    assert!(
        revoked["@odata.context"]
            .as_str()
            .expect("ctx")
            .ends_with("$metadata#Edm.Boolean")
    );
    assert_eq!(revoked["value"], true);

    // Password reset: User Administrator suffices for a regular user, not for an admin.
    let reset = json!({"passwordProfile": {"forceChangePasswordNextSignIn": true, "password": "xWwvJ]6NMw+bWH-d"}});
    assert_eq!(
        sim.send(
            &token,
            Method::PATCH,
            &format!("/users/{member}"),
            Some(reset.clone())
        )
        .await
        .status(),
        204
    );
    let admin: Value = sim
        .get(&token, "/users?$top=1&$select=id")
        .await
        .json()
        .await
        .expect("json");
    let admin = admin["value"][0]["id"].as_str().expect("id").to_owned();
    assert_graph_error(
        sim.send(
            &token,
            Method::PATCH,
            &format!("/users/{admin}"),
            Some(reset.clone()),
        )
        .await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    let weak = json!({"passwordProfile": {"password": "password"}});
    assert_graph_error(
        sim.send(
            &token,
            Method::PATCH,
            &format!("/users/{member}"),
            Some(weak),
        )
        .await,
        400,
        "Request_BadRequest",
    )
    .await;
    let tail_token = sim.token(&tailspin).await;
    let tail_user: Value = sim
        .get(&tail_token, "/users?$top=11&$select=id")
        .await
        .json()
        .await
        .expect("json");
    let tail_user = tail_user["value"][10]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_graph_error(
        sim.send(
            &tail_token,
            Method::PATCH,
            &format!("/users/{tail_user}"),
            Some(reset),
        )
        .await,
        403,
        "Authorization_RequestDenied",
    )
    .await;

    // MFA reset: the default method goes last; the password method stays.
    let methods: Value = sim
        .get(&token, &format!("/users/{member}/authentication/methods"))
        .await
        .json()
        .await
        .expect("json");
    let methods = methods["value"].as_array().expect("methods").clone();
    assert!(
        methods
            .iter()
            .any(|m| m["@odata.type"] == "#microsoft.graph.passwordAuthenticationMethod")
    );
    let authenticator = methods
        .iter()
        .find(|m| m["@odata.type"] == "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod")
        .expect("authenticator");
    let authenticator_id = authenticator["id"].as_str().expect("id");
    let path =
        format!("/users/{member}/authentication/microsoftAuthenticatorMethods/{authenticator_id}");
    let body = assert_graph_error(
        sim.send(&token, Method::DELETE, &path, None).await,
        400,
        "badRequest",
    )
    .await;
    assert_eq!(
        body["error"]["message"],
        "Cannot delete default method with other methods configured. Please change default method before deletion."
    );
    let phone = sim
        .send(
            &token,
            Method::DELETE,
            &format!(
                "/users/{member}/authentication/phoneMethods/3179e48a-750b-4051-897c-87b9720928f7"
            ),
            None,
        )
        .await;
    assert_eq!(phone.status(), 204);
    assert_eq!(
        sim.send(&token, Method::DELETE, &path, None).await.status(),
        204
    );

    // Profile updates and the properties an app may not touch.
    let profile = json!({"jobTitle": "Controller", "department": "Finance", "officeLocation": "18/2111", "usageLocation": "NL"});
    assert_eq!(
        sim.send(
            &token,
            Method::PATCH,
            &format!("/users/{member}"),
            Some(profile)
        )
        .await
        .status(),
        204
    );
    let updated: Value = sim
        .get(
            &token,
            &format!("/users/{member}?$select=jobTitle,department,usageLocation"),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(updated["jobTitle"], "Controller");
    assert_eq!(updated["usageLocation"], "NL");
    assert_graph_error(
        sim.send(
            &token,
            Method::PATCH,
            &format!("/users/{member}"),
            Some(json!({"birthday": "1990-01-01T00:00:00Z"})),
        )
        .await,
        403,
        "Authorization_RequestDenied",
    )
    .await;

    // Creation, with Microsoft's duplicate check.
    let new_user = json!({"accountEnabled": true, "displayName": "Sarah Connor", "mailNickname": "sarahc",
        "userPrincipalName": "sarah.connor@contoso.example", "passwordProfile": {"forceChangePasswordNextSignIn": true, "password": "Tr1ckY-pass!"}});
    let created = sim
        .send(&token, Method::POST, "/users", Some(new_user.clone()))
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    assert_eq!(created["userPrincipalName"], "sarah.connor@contoso.example");
    let again = assert_graph_error(
        sim.send(&token, Method::POST, "/users", Some(new_user))
            .await,
        400,
        "Request_BadRequest",
    )
    .await;
    assert_eq!(
        again["error"]["message"],
        "Another object with the same value for property userPrincipalName already exists."
    );
    let fetched: Value = sim
        .get(&token, "/users/sarah.connor@contoso.example")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(fetched["id"], created["id"]);

    // Photo.
    let photo = sim
        .client
        .put(sim.url(&format!("/v1.0/users/{member}/photo/$value")))
        .bearer_auth(&token)
        .header("content-type", "image/jpeg")
        .body(vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3])
        .send()
        .await
        .expect("sent");
    assert_eq!(photo.status(), 200);
}

#[tokio::test]
async fn discovery_endpoints_match_the_documented_shapes() {
    let spec = contoso(120).with_permissions(&[
        "IdentityRiskyUser.Read.All",
        "DeviceManagementManagedDevices.Read.All",
    ]);
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let fields = |value: &Value, names: &[&str], what: &str| {
        for name in names {
            assert!(value.get(*name).is_some(), "{what}.{name} in {value}");
        }
    };

    let domains: Value = sim
        .get(&token, "/domains")
        .await
        .json()
        .await
        .expect("json");
    fields(
        &domains["value"][0],
        &[
            "authenticationType",
            "availabilityStatus",
            "isAdminManaged",
            "isDefault",
            "isInitial",
            "isRoot",
            "id",
            "supportedServices",
        ],
        "domain",
    );
    assert_eq!(domains["value"][0]["id"], "contoso.onmicrosoft.com");

    let response = sim.get(&token, "/subscribedSkus").await;
    assert_eq!(response.headers()["x-ms-resource-unit"], "3");
    let skus: Value = response.json().await.expect("json");
    let sku = &skus["value"][0];
    fields(
        sku,
        &[
            "accountName",
            "accountId",
            "appliesTo",
            "capabilityStatus",
            "consumedUnits",
            "id",
            "prepaidUnits",
            "servicePlans",
            "skuId",
            "skuPartNumber",
            "subscriptionIds",
        ],
        "subscribedSku",
    );
    assert_eq!(
        sku["id"],
        format!("{}_{}", spec.id, sku["skuId"].as_str().expect("sku id")),
        "id = {{tenantId}}_{{skuId}}"
    );
    fields(
        &sku["prepaidUnits"],
        &["enabled", "lockedOut", "suspended", "warning"],
        "prepaidUnits",
    );

    let roles: Value = sim
        .get(&token, "/directoryRoles")
        .await
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = roles["value"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(|r| r["displayName"].as_str())
        .collect();
    assert!(
        names.contains(&"Global Administrator") && names.contains(&"User Administrator"),
        "{names:?}"
    );
    fields(
        &roles["value"][0],
        &["id", "description", "displayName", "roleTemplateId"],
        "directoryRole",
    );
    let admins: Value = sim
        .get(
            &token,
            "/directoryRoles(roleTemplateId='62e90394-69f5-4237-9190-012177145e10')/members",
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(admins["value"][0]["@odata.type"], "#microsoft.graph.user");
    let user_admins: Value = sim
        .get(
            &token,
            "/directoryRoles(roleTemplateId='fe930be7-5e62-47db-91af-98c3a49a38b1')/members",
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(
        user_admins["value"]
            .as_array()
            .expect("members")
            .iter()
            .any(|m| m["@odata.type"] == "#microsoft.graph.servicePrincipal"),
        "the app's SP holds User Administrator"
    );
    assert_graph_error(
        sim.get(
            &token,
            "/directoryRoles(roleTemplateId='e8611ab8-c189-46e8-94e1-60213ab1f814')/members",
        )
        .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;

    let devices: Value = sim
        .get(&token, "/deviceManagement/managedDevices")
        .await
        .json()
        .await
        .expect("json");
    let device = &devices["value"][0];
    assert_eq!(device["@odata.type"], "#microsoft.graph.managedDevice");
    fields(
        device,
        &[
            "id",
            "userId",
            "deviceName",
            "managedDeviceOwnerType",
            "enrolledDateTime",
            "lastSyncDateTime",
            "operatingSystem",
            "complianceState",
            "osVersion",
            "userPrincipalName",
            "serialNumber",
        ],
        "managedDevice",
    );

    let risky: Value = sim
        .get(&token, "/identityProtection/riskyUsers")
        .await
        .json()
        .await
        .expect("json");
    fields(
        &risky["value"][0],
        &[
            "id",
            "isDeleted",
            "isProcessing",
            "riskLastUpdatedDateTime",
            "riskLevel",
            "riskState",
            "riskDetail",
            "userDisplayName",
            "userPrincipalName",
        ],
        "riskyUser",
    );

    let groups: Value = sim.get(&token, "/groups").await.json().await.expect("json");
    fields(
        &groups["value"][0],
        &[
            "id",
            "displayName",
            "groupTypes",
            "mail",
            "mailEnabled",
            "mailNickname",
            "securityEnabled",
        ],
        "group",
    );
    let all_staff = groups["value"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["displayName"] == "All Staff")
        .expect("All Staff");
    assert_eq!(all_staff["groupTypes"], json!(["Unified"]));
    let members: Value = sim
        .get(
            &token,
            &format!(
                "/groups/{}/members?$top=5",
                all_staff["id"].as_str().expect("id")
            ),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(members["value"].as_array().expect("members").len(), 5);
    assert!(members["@odata.nextLink"].is_string());
    let member_of: Value = sim
        .get(
            &token,
            &format!(
                "/users/{}/memberOf",
                members["value"][0]["id"].as_str().expect("id")
            ),
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(
        member_of["value"]
            .as_array()
            .expect("memberOf")
            .iter()
            .any(|g| g["id"] == all_staff["id"])
    );
}

/// The ids of the first `n` users, in listing order.
async fn user_ids(sim: &Sim, token: &str, n: usize) -> Vec<String> {
    let page: Value = sim
        .get(token, &format!("/users?$top={n}&$select=id"))
        .await
        .json()
        .await
        .expect("json");
    page["value"]
        .as_array()
        .expect("value")
        .iter()
        .map(|u| u["id"].as_str().expect("id").to_owned())
        .collect()
}

fn reference(collection: &str, id: &str) -> Value {
    json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/{collection}/{id}")})
}

#[tokio::test]
async fn managers_are_set_read_and_removed() {
    let spec = contoso(30);
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let ids = user_ids(&sim, &token, 12).await;
    let (user, boss, other_boss) = (&ids[10], &ids[3], &ids[4]);
    let delta: Value = sim
        .get(&token, "/users/delta?$select=id")
        .await
        .json()
        .await
        .expect("json");
    let delta_link = delta["@odata.deltaLink"]
        .as_str()
        .expect("one page")
        .to_owned();
    let manager_ref = format!("/users/{user}/manager/$ref");

    let set = sim
        .send(
            &token,
            Method::PUT,
            &manager_ref,
            Some(reference("users", boss)),
        )
        .await;
    assert_eq!(set.status(), 204);
    let got = sim.get(&token, &format!("/users/{user}/manager")).await;
    assert_eq!(got.status(), 200);
    let got: Value = got.json().await.expect("json");
    assert_eq!(got["id"], boss.as_str());
    assert_eq!(got["@odata.type"], "#microsoft.graph.user");
    assert!(
        got["@odata.context"]
            .as_str()
            .expect("context")
            .ends_with("/v1.0/$metadata#directoryObjects/$entity")
    );
    let keys: HashSet<&str> = got
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .filter(|k| !k.starts_with('@'))
        .collect();
    assert_eq!(
        keys,
        tenantry_graph_sim::model::users::DEFAULT_PROPERTIES
            .into_iter()
            .collect(),
        "default properties"
    );

    // Through a directoryObjects reference; the new manager replaces the old.
    let other_upn: Value = sim
        .get(
            &token,
            &format!("/users/{other_boss}?$select=userPrincipalName"),
        )
        .await
        .json()
        .await
        .expect("json");
    let other_upn = other_upn["userPrincipalName"].as_str().expect("upn");
    let replaced = sim
        .send(
            &token,
            Method::PUT,
            &manager_ref,
            Some(reference("directoryObjects", other_boss)),
        )
        .await;
    assert_eq!(replaced.status(), 204);
    let selected: Value = sim
        .get(
            &token,
            &format!("/users/{user}/manager?$select=id,userPrincipalName"),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(selected["id"], other_boss.as_str());
    assert_eq!(selected["userPrincipalName"], other_upn);
    assert!(selected.get("displayName").is_none(), "{selected}");

    let round: Value = sim
        .get_url(&token, &delta_link)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        round["value"],
        json!([{"id": user}]),
        "delta sees the change"
    );

    let removed = sim.send(&token, Method::DELETE, &manager_ref, None).await;
    assert_eq!(removed.status(), 204);
    let body = assert_graph_error(
        sim.get(&token, &format!("/users/{user}/manager")).await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    assert_eq!(
        body["error"]["message"],
        "Resource 'manager' does not exist or one of its queried reference-property objects are not present."
    );
}

#[tokio::test]
async fn manager_errors_use_graphs_envelope() {
    let spec = contoso(30);
    let reader = TenantSpec::healthy("fabrikam", "Fabrikam Inc", 20)
        .without_permissions(&["User.ReadWrite.All", "Directory.ReadWrite.All"])
        .with_permissions(&["User.Read.All"]);
    let sim = Sim::start(vec![spec.clone(), reader.clone()]).await;
    let token = sim.token(&spec).await;
    let ids = user_ids(&sim, &token, 12).await;
    let user = &ids[10];
    let manager_ref = format!("/users/{user}/manager/$ref");

    let ghost = uuid::Uuid::new_v4().to_string();
    let body = assert_graph_error(
        sim.send(
            &token,
            Method::PUT,
            &manager_ref,
            Some(reference("users", &ghost)),
        )
        .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    assert_eq!(
        body["error"]["message"],
        format!(
            "Resource '{ghost}' does not exist or one of its queried reference-property objects are not present."
        )
    );
    // A group is a directory object but not a user.
    let groups: Value = sim
        .get(&token, "/groups?$top=1&$select=id")
        .await
        .json()
        .await
        .expect("json");
    let group = groups["value"][0]["id"].as_str().expect("id");
    assert_graph_error(
        sim.send(
            &token,
            Method::PUT,
            &manager_ref,
            Some(reference("directoryObjects", group)),
        )
        .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    assert_graph_error(
        sim.send(
            &token,
            Method::PUT,
            &manager_ref,
            Some(reference("users", user)),
        )
        .await,
        400,
        "Request_BadRequest",
    )
    .await;
    for malformed in [
        json!({}),
        json!({"@odata.id": 42}),
        json!({"@odata.id": "https://graph.microsoft.com/v1.0/groups/x"}),
        json!({"@odata.id": "https://graph.microsoft.com/v1.0/users/"}),
        json!([reference("users", &ids[3])]),
    ] {
        assert_graph_error(
            sim.send(&token, Method::PUT, &manager_ref, Some(malformed))
                .await,
            400,
            "Request_BadRequest",
        )
        .await;
    }
    let not_json = sim
        .client
        .put(sim.url(&format!("/v1.0{manager_ref}")))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_graph_error(not_json, 400, "Request_BadRequest").await;
    assert_graph_error(
        sim.send(&token, Method::DELETE, &manager_ref, None).await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    assert_graph_error(
        sim.get(&token, &format!("/users/{ghost}/manager")).await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    assert_graph_error(
        sim.send(
            &token,
            Method::POST,
            &manager_ref,
            Some(reference("users", &ids[3])),
        )
        .await,
        405,
        "Request_BadRequest",
    )
    .await;

    // Reading needs User.Read.All or more; writing needs User.ReadWrite.All or
    // Directory.ReadWrite.All.
    let read_only = sim.token(&reader).await;
    let fabrikam = user_ids(&sim, &read_only, 5).await;
    let fabrikam_ref = format!("/users/{}/manager/$ref", fabrikam[4]);
    assert_graph_error(
        sim.send(
            &read_only,
            Method::PUT,
            &fabrikam_ref,
            Some(reference("users", &fabrikam[3])),
        )
        .await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    assert_graph_error(
        sim.send(&read_only, Method::DELETE, &fabrikam_ref, None)
            .await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    assert_graph_error(
        sim.get(&read_only, &format!("/users/{}/manager", fabrikam[4]))
            .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
}

const E5: &str = "c7df2760-2c81-4ef7-b578-5b5392b571df";
const P1: &str = "078d2b04-f1bd-4111-bbd4-b4b1b354cef4";

#[tokio::test]
async fn licences_are_assigned_and_removed() {
    let spec = contoso(30);
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let user = user_ids(&sim, &token, 11).await[10].clone();
    let assign = format!("/users/{user}/assignLicense");
    let plan = "11b0131d-43c8-4bbb-b2c8-e80f9a50834a";

    let before: Value = sim
        .get(&token, &format!("/users/{user}?$select=assignedLicenses"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(before["assignedLicenses"], json!([]));

    let added = sim
        .send(
            &token,
            Method::POST,
            &assign,
            Some(json!({"addLicenses": [{"skuId": E5, "disabledPlans": []}, {"skuId": P1, "disabledPlans": [plan]}],
                "removeLicenses": []})),
        )
        .await;
    assert_eq!(added.status(), 200);
    let added: Value = added.json().await.expect("json");
    assert_eq!(added["id"], user.as_str());
    assert!(
        added["@odata.context"]
            .as_str()
            .expect("context")
            .ends_with("/v1.0/$metadata#users/$entity")
    );
    let keys: HashSet<&str> = added
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .filter(|k| !k.starts_with('@'))
        .collect();
    assert_eq!(
        keys,
        tenantry_graph_sim::model::users::DEFAULT_PROPERTIES
            .into_iter()
            .collect(),
        "default properties"
    );
    let after: Value = sim
        .get(
            &token,
            &format!("/users/{user}?$select=id,assignedLicenses"),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        after["assignedLicenses"],
        json!([{"disabledPlans": [], "skuId": E5}, {"disabledPlans": [plan], "skuId": P1}])
    );

    // Remove one; an upper-case sku id is the same SKU.
    let swapped = sim
        .send(
            &token,
            Method::POST,
            &assign,
            Some(json!({"addLicenses": [], "removeLicenses": [E5.to_uppercase()]})),
        )
        .await;
    assert_eq!(swapped.status(), 200);
    let listed: Value = sim
        .get(&token, "/users?$top=11&$select=id,assignedLicenses")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["value"][10]["assignedLicenses"],
        json!([{"disabledPlans": [plan], "skuId": P1}])
    );
    assert_eq!(listed["value"][9]["assignedLicenses"], json!([]));
}

#[tokio::test]
async fn licence_assignment_follows_microsofts_rules() {
    let spec = contoso(30);
    let reader = TenantSpec::healthy("fabrikam", "Fabrikam Inc", 20)
        .without_permissions(&["User.ReadWrite.All", "Directory.ReadWrite.All"])
        .with_permissions(&["User.Read.All"]);
    let sim = Sim::start(vec![spec.clone(), reader.clone()]).await;
    let token = sim.token(&spec).await;
    let add_e5 = json!({"addLicenses": [{"skuId": E5, "disabledPlans": []}], "removeLicenses": []});

    // A new user has no usage location until one is set.
    let created: Value = sim
        .send(
            &token,
            Method::POST,
            "/users",
            Some(
                json!({"accountEnabled": true, "displayName": "Kyle Reese", "mailNickname": "kyle",
                "userPrincipalName": "kyle.reese@contoso.example",
                "passwordProfile": {"password": "Tr1ckY-pass!"}}),
            ),
        )
        .await
        .json()
        .await
        .expect("json");
    let kyle = created["id"].as_str().expect("id").to_owned();
    let assign = format!("/users/{kyle}/assignLicense");
    let body = assert_graph_error(
        sim.send(&token, Method::POST, &assign, Some(add_e5.clone()))
            .await,
        400,
        "Request_BadRequest",
    )
    .await;
    assert_eq!(
        body["error"]["message"],
        "License assignment cannot be done for user with invalid usage location."
    );
    let located = sim
        .send(
            &token,
            Method::PATCH,
            &format!("/users/{kyle}"),
            Some(json!({"usageLocation": "GB"})),
        )
        .await;
    assert_eq!(located.status(), 204);
    assert_eq!(
        sim.send(&token, Method::POST, &assign, Some(add_e5.clone()))
            .await
            .status(),
        200
    );

    // Only the tenant's subscribed SKUs.
    let unknown = "45715bb8-13f9-4bf6-927f-ef96c102d394";
    let body = assert_graph_error(
        sim.send(
            &token,
            Method::POST,
            &assign,
            Some(json!({"addLicenses": [{"skuId": unknown, "disabledPlans": []}], "removeLicenses": []})),
        )
        .await,
        400,
        "Request_BadRequest",
    )
    .await;
    assert_eq!(
        body["error"]["message"],
        format!("License {unknown} does not correspond to a valid company License.")
    );
    // Removing a SKU the user does not hold.
    assert_graph_error(
        sim.send(
            &token,
            Method::POST,
            &assign,
            Some(json!({"addLicenses": [], "removeLicenses": [P1]})),
        )
        .await,
        400,
        "Request_BadRequest",
    )
    .await;
    // Malformed bodies.
    let body = assert_graph_error(
        sim.send(
            &token,
            Method::POST,
            &assign,
            Some(json!({"addLicenses": [{"skuId": E5}]})),
        )
        .await,
        400,
        "Request_BadRequest",
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .ends_with("The missing parameters are: removeLicenses."),
        "{body}"
    );
    for malformed in [
        json!({"addLicenses": [{"skuId": "not-a-guid"}], "removeLicenses": []}),
        json!({"addLicenses": [{"skuId": E5, "disabledPlans": "x"}], "removeLicenses": []}),
        json!({"addLicenses": [], "removeLicenses": [42]}),
    ] {
        assert_graph_error(
            sim.send(&token, Method::POST, &assign, Some(malformed))
                .await,
            400,
            "Request_BadRequest",
        )
        .await;
    }
    // Nothing of the failed requests stuck.
    let held: Value = sim
        .get(
            &token,
            &format!("/users/{kyle}?$select=assignedLicenses,usageLocation"),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        held,
        json!({"@odata.context": held["@odata.context"], "assignedLicenses": [{"disabledPlans": [], "skuId": E5}], "usageLocation": "GB"})
    );
    assert_graph_error(
        sim.send(
            &token,
            Method::POST,
            &format!("/users/{}/assignLicense", uuid::Uuid::new_v4()),
            Some(add_e5.clone()),
        )
        .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;

    let read_only = sim.token(&reader).await;
    let fabrikam = user_ids(&sim, &read_only, 5).await;
    assert_graph_error(
        sim.send(
            &read_only,
            Method::POST,
            &format!("/users/{}/assignLicense", fabrikam[4]),
            Some(add_e5),
        )
        .await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
}

#[tokio::test]
async fn usage_location_is_a_two_letter_code_on_create_and_update() {
    let spec = contoso(30);
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let new_user = |upn: &str, location: &str| {
        json!({"accountEnabled": true, "displayName": "Ellen Ripley", "mailNickname": "ripley",
            "userPrincipalName": upn, "usageLocation": location,
            "passwordProfile": {"password": "Tr1ckY-pass!"}})
    };
    let created = sim
        .send(
            &token,
            Method::POST,
            "/users",
            Some(new_user("ripley@contoso.example", "NL")),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let id = created["id"].as_str().expect("id");
    let read: Value = sim
        .get(&token, &format!("/users/{id}?$select=usageLocation"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(read["usageLocation"], "NL");
    for bad in ["Netherlands", "nl", "N", "1A"] {
        let body = assert_graph_error(
            sim.send(
                &token,
                Method::POST,
                "/users",
                Some(new_user("ripley2@contoso.example", bad)),
            )
            .await,
            400,
            "Request_BadRequest",
        )
        .await;
        assert_eq!(
            body["error"]["message"],
            "Invalid value specified for property 'usageLocation' of resource 'User'.",
            "{bad}"
        );
        assert_graph_error(
            sim.send(
                &token,
                Method::PATCH,
                &format!("/users/{id}"),
                Some(json!({"usageLocation": bad})),
            )
            .await,
            400,
            "Request_BadRequest",
        )
        .await;
    }
    assert_graph_error(
        sim.get(&token, "/users/ripley2@contoso.example").await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    let patched = sim
        .send(
            &token,
            Method::PATCH,
            &format!("/users/{id}"),
            Some(json!({"usageLocation": "DE"})),
        )
        .await;
    assert_eq!(patched.status(), 204);
    let read: Value = sim
        .get(&token, &format!("/users/{id}?$select=usageLocation"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(read["usageLocation"], "DE");
}

#[tokio::test]
async fn users_filter_on_mail_and_upn() {
    let spec = contoso(2_500);
    let sim = Sim::start(vec![spec.clone()]).await;
    let token = sim.token(&spec).await;
    let filter = |expression: &str| {
        format!(
            "/users?$select=id,mail,userPrincipalName&$filter={}",
            expression.replace(' ', "%20").replace('\'', "%27")
        )
    };
    let page = |path: String| {
        let sim = &sim;
        let token = &token;
        async move {
            let response = sim.get(token, &path).await;
            assert_eq!(response.status(), 200, "{path}");
            let body: Value = response.json().await.expect("json");
            assert!(
                body["@odata.context"]
                    .as_str()
                    .expect("context")
                    .ends_with("/v1.0/$metadata#users"),
                "{body}"
            );
            assert!(body.get("@odata.nextLink").is_none(), "{body}");
            body["value"].as_array().expect("value").clone()
        }
    };
    let adele = "adele.vance1@contoso.onmicrosoft.com";

    let by_mail = page(filter("mail eq 'ADELE.Vance1@contoso.onmicrosoft.com'")).await;
    assert_eq!(by_mail.len(), 1);
    assert_eq!(by_mail[0]["userPrincipalName"], adele);
    assert_eq!(by_mail[0].as_object().expect("object").len(), 3, "$select");
    let by_upn = page(filter(&format!("userPrincipalName eq '{adele}'"))).await;
    assert_eq!(by_upn, by_mail);
    // A user far into a large tenant is found without paging through it.
    let skip = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("i:2345")
    };
    let far: Value = sim
        .get(
            &token,
            &format!("/users?$top=1&$select=userPrincipalName&$skiptoken={skip}"),
        )
        .await
        .json()
        .await
        .expect("json");
    let far_upn = far["value"][0]["userPrincipalName"].as_str().expect("upn");
    assert_eq!(page(filter(&format!("mail eq '{far_upn}'"))).await.len(), 1);
    // A name with another user's number is nobody.
    assert!(
        page(filter("mail eq 'nobody1@contoso.onmicrosoft.com'"))
            .await
            .is_empty()
    );
    assert!(
        page(filter(
            "userPrincipalName eq 'nobody1@contoso.onmicrosoft.com'"
        ))
        .await
        .is_empty()
    );
    assert_graph_error(
        sim.get(&token, "/users/nobody1@contoso.onmicrosoft.com")
            .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;

    // Quotes are doubled inside the literal; patched mail is found under its new value.
    let created: Value = sim
        .send(
            &token,
            Method::POST,
            "/users",
            Some(json!({"accountEnabled": true, "displayName": "Miles O'Brien", "mailNickname": "obrien",
                "userPrincipalName": "o'brien@contoso.example", "mail": "o'brien@contoso.example",
                "passwordProfile": {"password": "Tr1ckY-pass!"}})),
        )
        .await
        .json()
        .await
        .expect("json");
    let found = page(filter("userPrincipalName eq 'O''Brien@contoso.example'")).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], created["id"]);
    assert_eq!(
        page(filter("mail eq 'o''brien@contoso.example'")).await,
        found
    );
    let renamed = sim
        .send(
            &token,
            Method::PATCH,
            &format!("/users/{adele}"),
            Some(json!({"mail": "adele@contoso.example"})),
        )
        .await;
    assert_eq!(renamed.status(), 204);
    assert!(page(filter(&format!("mail eq '{adele}'"))).await.is_empty());
    let moved = page(filter("mail eq 'Adele@Contoso.Example'")).await;
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0]["userPrincipalName"], adele);
    assert_eq!(
        page(filter(&format!("userPrincipalName eq '{adele}'"))).await,
        moved
    );

    // Other filters are ignored, as before: the plain first page.
    let ignored: Value = sim
        .get(&token, "/users?$filter=startswith(displayName,%27A%27)")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ignored["value"].as_array().expect("value").len(), 100);
}
