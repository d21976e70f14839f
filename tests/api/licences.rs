//! Licence actions against the simulator: Microsoft's rules (a SKU the tenant has, a free
//! seat per user, a usage location) refused as field errors before any call, an
//! assignment that sets the usage location first, and a removal that says the seat came
//! back; what Graph holds afterwards.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::exchange::act;
use crate::exchange_actions::{finished, open, rescan};
use crate::helpers::{TestApp, assert_problem};

const E5: &str = "c7df2760-2c81-4ef7-b578-5b5392b571df";

async fn licences_of(app: &TestApp, upn: &str) -> Value {
    let user: Value = app
        .graph(
            "contoso",
            reqwest::Method::GET,
            &format!("/users/{upn}?$select=id,usageLocation,assignedLicenses"),
            None,
        )
        .await
        .json()
        .await
        .expect("user");
    user
}

fn assign_calls(app: &TestApp) -> usize {
    app.sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("/assignLicense"))
        .count()
}

#[sqlx::test]
async fn licences_are_assigned_and_removed_under_microsofts_rules(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let msp = app.create_msp("Northwind MSP").await;
    let organization = crate::helpers::connect(&app, &msp, "contoso").await;
    app.run_pending_jobs().await;
    let key = &msp.owner_key;
    open(
        &app,
        &msp,
        &organization,
        &["assign_license", "remove_license"],
    )
    .await;
    let contoso = app.demo("contoso");
    let upn = |i: u32| contoso.user_upn(i).expect("upn");
    let post = |body: Value, idempotency: &'static str| {
        app.request(
            reqwest::Method::POST,
            &format!("/api/v1/organizations/{organization}/actions"),
            Some(key),
        )
        .header("Idempotency-Key", idempotency)
        .json(&body)
        .send()
    };

    // A user without a usage location: refused by field before any call, then assigned
    // with one given (set first, in the same action).
    // (A user created without one; Graph's generated users all have "US".)
    let created = app
        .graph(
            "contoso",
            reqwest::Method::POST,
            "/users",
            Some(json!({"accountEnabled": true, "displayName": "No Location",
                "mailNickname": "nolocation", "userPrincipalName": "nolocation@contoso.example",
                "passwordProfile": {"forceChangePasswordNextSignIn": true, "password": "Zq8!vR2#pLm4@tN6"}})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let unlocated = "nolocation@contoso.example".to_owned();
    let refused = post(
        json!({"action": "assign_license", "target": unlocated, "parameters": {"sku_id": E5}}),
        "no-location",
    )
    .await
    .expect("request");
    let problem = assert_problem(refused, 422, "INVALID_REQUEST").await;
    assert_eq!(
        problem["errors"][0]["field"], "parameters.usage_location",
        "{problem}"
    );
    assert_eq!(assign_calls(&app), 0, "nothing sent");
    let assigned = act(
        &app,
        key,
        &organization,
        json!({"action": "assign_license", "target": [upn(40), unlocated.clone()], "parameters": {"sku_id": E5, "usage_location": "gb"}}),
        "assign",
    )
    .await;
    let done = finished(&app, key, &assigned).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    for who in [upn(40), unlocated.clone()] {
        let user = licences_of(&app, &who).await;
        assert_eq!(user["usageLocation"], "GB", "{user}");
        assert!(user["assignedLicenses"].to_string().contains(E5), "{user}");
    }

    // A scan stores each user's licences: the users list filters by SKU and finds the
    // unlicensed.
    rescan(&app, key, &organization).await;
    let holders = app
        .get_all(
            &format!("/api/v1/organizations/{organization}/users?license={E5}"),
            key,
        )
        .await;
    let names: Vec<&str> = holders
        .iter()
        .filter_map(|u| u["user_principal_name"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&upn(40).as_str()) && names.contains(&unlocated.as_str()));
    assert_eq!(holders[0]["assigned_licenses"], json!([E5]));
    let unlicensed = app
        .get_all(
            &format!("/api/v1/organizations/{organization}/users?unlicensed=true"),
            key,
        )
        .await;
    assert!(
        unlicensed
            .iter()
            .all(|u| u["assigned_licenses"] == json!([])),
        "{unlicensed:?}"
    );
    assert!(
        !unlicensed
            .iter()
            .any(|u| u["user_principal_name"] == upn(40).as_str()),
        "a licensed user is not unlicensed"
    );
    let bad = app
        .get(
            &format!("/api/v1/organizations/{organization}/users?license=E5"),
            key,
        )
        .await;
    assert_problem(bad, 400, "INVALID_REQUEST").await;

    // The organization's licences carry their product name and seats.
    let skus = app
        .get_all(
            &format!("/api/v1/organizations/{organization}/licenses"),
            key,
        )
        .await;
    let e5 = skus
        .iter()
        .find(|s| s["id"] == E5)
        .unwrap_or_else(|| panic!("E5 in {skus:?}"));
    assert_eq!(e5["name"], "Office 365 E5", "{e5}");
    let seats = &e5["seats"];
    assert_eq!(
        seats["available"].as_i64(),
        Some(seats["purchased"].as_i64().unwrap_or(0) - seats["assigned"].as_i64().unwrap_or(0)),
        "{e5}"
    );
    assert_eq!(
        seats["available"], 3,
        "the simulator keeps three seats free: {e5}"
    );

    // Removal: the seat comes back, and the step says so.
    let removed = act(
        &app,
        key,
        &organization,
        json!({"action": "remove_license", "target": upn(40), "parameters": {"sku_id": E5}}),
        "remove",
    )
    .await;
    let done = finished(&app, key, &removed).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["steps"][0]["detail"]["licenses_returned"], 1, "{done}");
    assert_eq!(
        licences_of(&app, &upn(40)).await["assignedLicenses"],
        json!([])
    );

    // Bad input and Microsoft's rules, each named.
    let before = assign_calls(&app);
    let not_held = post(
        json!({"action": "remove_license", "target": upn(40), "parameters": {"sku_id": E5}}),
        "not-held",
    )
    .await
    .expect("request");
    let problem = assert_problem(not_held, 422, "INVALID_REQUEST").await;
    assert_eq!(problem["errors"][0]["field"], "target", "{problem}");
    let unknown_sku = post(
        json!({"action": "assign_license", "target": upn(42), "parameters": {"sku_id": "00000000-0000-0000-0000-000000000001"}}),
        "unknown-sku",
    )
    .await
    .expect("request");
    let problem = assert_problem(unknown_sku, 422, "INVALID_REQUEST").await;
    assert_eq!(
        problem["errors"][0]["field"], "parameters.sku_id",
        "{problem}"
    );
    let not_a_guid = post(
        json!({"action": "assign_license", "target": upn(42), "parameters": {"sku_id": "E5"}}),
        "not-a-guid",
    )
    .await
    .expect("request");
    assert_problem(not_a_guid, 422, "INVALID_REQUEST").await;
    // The simulator keeps 3 seats free: five more users do not fit.
    let too_many: Vec<String> = (50..55).map(upn).collect();
    let no_seats = post(
        json!({"action": "assign_license", "target": too_many, "parameters": {"sku_id": E5}}),
        "no-seats",
    )
    .await
    .expect("request");
    let problem = assert_problem(no_seats, 422, "INVALID_REQUEST").await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("seat(s) needed")),
        "{problem}"
    );
    assert_eq!(assign_calls(&app), before, "refusals send nothing");
}
