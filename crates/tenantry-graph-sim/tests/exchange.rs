//! The Exchange Online admin API through real HTTP (graph-facts-next §2): tokens for the
//! outlook scope, InvokeCommand's authorisation, envelope, paging, errors and cmdlets,
//! on the demo scenario's contoso and tailspin.

mod common;

use std::collections::HashSet;

use common::{Sim, claims};
use reqwest::Response;
use serde_json::{Value, json};
use tenantry_graph_sim::scenario::exchange::{CONTOSO_FORWARDING_USER, CONTOSO_OUTSIDE_ADDRESS};
use tenantry_graph_sim::{ScriptedFault, TenantSpec, scenario};

const EXO_SCOPE: &str = "https://outlook.office365.com/.default";

fn demo_tenant(name: &str) -> TenantSpec {
    scenario::demo()
        .tenants
        .into_iter()
        .find(|t| t.name == name)
        .expect("demo tenant")
}

async fn demo() -> (Sim, TenantSpec, TenantSpec) {
    let contoso = demo_tenant("contoso");
    let tailspin = demo_tenant("tailspin");
    let sim = Sim::start(vec![contoso.clone(), tailspin.clone()]).await;
    (sim, contoso, tailspin)
}

async fn token_for(sim: &Sim, spec: &TenantSpec, scope: &str) -> String {
    let response = sim
        .client
        .post(sim.url(&format!("/{}/oauth2/v2.0/token", spec.id)))
        .form(&[
            ("client_id", spec.app().client_id.to_string().as_str()),
            ("client_secret", spec.secret_value()),
            ("scope", scope),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    body["access_token"].as_str().expect("token").to_owned()
}

async fn invoke_at(
    sim: &Sim,
    token: &str,
    url: &str,
    cmdlet: &str,
    parameters: Value,
    page_size: Option<u32>,
) -> Response {
    let mut request = sim
        .client
        .post(url)
        .bearer_auth(token)
        .header(
            "X-AnchorMailbox",
            "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}",
        )
        .json(&json!({"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}}));
    if let Some(size) = page_size {
        request = request.header("Prefer", format!("odata.maxpagesize={size}"));
    }
    request.send().await.expect("sent")
}

fn invoke_url(sim: &Sim, tenant: &str) -> String {
    sim.url(&format!("/adminapi/beta/{tenant}/InvokeCommand"))
}

async fn invoke(
    sim: &Sim,
    token: &str,
    spec: &TenantSpec,
    cmdlet: &str,
    parameters: Value,
) -> Response {
    invoke_at(
        sim,
        token,
        &invoke_url(sim, &spec.id.to_string()),
        cmdlet,
        parameters,
        None,
    )
    .await
}

async fn ok(response: Response) -> Value {
    assert_eq!(response.status(), 200, "{}", response.url());
    assert_eq!(
        response.headers()["content-type"],
        "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
    );
    for header in [
        "Rate-Limit-Limit",
        "Rate-Limit-Remaining",
        "Rate-Limit-Reset",
    ] {
        assert!(response.headers().contains_key(header), "{header}");
    }
    let body: Value = response.json().await.expect("json");
    assert!(
        body["@odata.context"]
            .as_str()
            .expect("context")
            .ends_with("/$metadata#Collection(Exchange.GenericHashTable)")
    );
    assert_eq!(body["adminapi.warnings@odata.type"], "#Collection(String)");
    assert!(body["@adminapi.warnings"].is_array());
    assert!(body["value"].is_array());
    body
}

/// Asserts the nested error form of §2.8 and returns the `details[0].message` parts.
async fn cmdlet_error(response: Response, status: u16, code: &str, exception: &str) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["message"], "Error executing cmdlet");
    assert_eq!(
        body["error"]["innererror"]["type"],
        "Microsoft.Exchange.Admin.OData.Core.ODataServiceException"
    );
    let message = body["error"]["details"][0]["message"]
        .as_str()
        .expect("details message");
    let parts: Vec<&str> = message.splitn(3, '|').collect();
    assert_eq!(parts.len(), 3, "{message}");
    assert!(
        parts[0].starts_with("Ex") && parts[0].len() == 8,
        "{message}"
    );
    assert_eq!(parts[1], exception, "{message}");
    parts[2].to_owned()
}

#[tokio::test]
async fn the_outlook_token_carries_manage_as_app_and_the_graph_token_does_not() {
    let (sim, contoso, _) = demo().await;
    let exo = claims(&token_for(&sim, &contoso, EXO_SCOPE).await);
    assert_eq!(exo["aud"], "https://outlook.office365.com");
    assert_eq!(exo["roles"], json!(["Exchange.ManageAsApp"]));
    assert!(
        exo["wids"]
            .as_array()
            .expect("wids")
            .contains(&json!("29232cdf-9323-42fd-ade2-1d097af3e4de")),
        "Exchange Administrator in wids"
    );
    let graph_token = sim.token(&contoso).await;
    let graph = claims(&graph_token);
    assert_eq!(graph["aud"], "https://graph.microsoft.com");
    let roles = graph["roles"].as_array().expect("roles");
    assert_eq!(roles.len(), 27);
    assert!(!roles.contains(&json!("Exchange.ManageAsApp")));
    assert!(graph.get("wids").is_none());

    // Graph lists the grant against the tenant's Exchange Online service principal.
    let exchange_sp: Value = sim
        .get(
            &graph_token,
            "/servicePrincipals(appId='00000002-0000-0ff1-ce00-000000000000')",
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(exchange_sp["displayName"], "Office 365 Exchange Online");
    let sp = contoso.app().service_principal.as_ref().expect("sp").id;
    let rows: Value = sim
        .get(
            &graph_token,
            &format!("/servicePrincipals/{sp}/appRoleAssignments?$top=999"),
        )
        .await
        .json()
        .await
        .expect("json");
    let rows = rows["value"].as_array().expect("value");
    assert_eq!(rows.len(), 28);
    let exchange_rows: Vec<&Value> = rows
        .iter()
        .filter(|r| r["resourceId"] == exchange_sp["id"])
        .collect();
    assert_eq!(exchange_rows.len(), 1);
    assert_eq!(
        exchange_rows[0]["appRoleId"],
        "dc50a0fb-09a3-484d-be87-e023b12c6440"
    );
    assert_eq!(
        exchange_rows[0]["resourceDisplayName"],
        "Office 365 Exchange Online"
    );
}

#[tokio::test]
async fn graph_tokens_missing_and_expired_tokens_are_refused_with_401() {
    let (sim, contoso, _) = demo().await;
    let graph_token = sim.token(&contoso).await;
    let response = invoke(
        &sim,
        &graph_token,
        &contoso,
        "Get-OrganizationConfig",
        json!({}),
    )
    .await;
    assert_eq!(response.status(), 401);
    let response = invoke(&sim, "", &contoso, "Get-OrganizationConfig", json!({})).await;
    assert_eq!(response.status(), 401);
    // And an Exchange token is refused by Graph.
    let exo = token_for(&sim, &contoso, EXO_SCOPE).await;
    assert_eq!(sim.get(&exo, "/organization").await.status(), 401);
    // The probe works, by GUID and by domain, with case-insensitive names.
    let body = ok(invoke(&sim, &exo, &contoso, "get-organizationconfig", json!({})).await).await;
    assert_eq!(body["value"][0]["DisplayName"], "Contoso Ltd");
    let by_domain = invoke_at(
        &sim,
        &exo,
        &sim.url("/adminapi/v1.0/contoso.onmicrosoft.com/InvokeCommand"),
        "Get-OrganizationConfig",
        json!({}),
        None,
    )
    .await;
    ok(by_domain).await;
}

#[tokio::test]
async fn tailspin_without_an_exchange_role_is_not_allowed_verbatim() {
    let (sim, _, tailspin) = demo().await;
    let exo = token_for(&sim, &tailspin, EXO_SCOPE).await;
    assert_eq!(claims(&exo)["roles"], json!(["Exchange.ManageAsApp"]));
    for cmdlet in ["Get-Mailbox", "Set-Mailbox", "Get-OrganizationConfig"] {
        let response = invoke(&sim, &exo, &tailspin, cmdlet, json!({})).await;
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.expect("json");
        let message = format!("User is not allowed to call {cmdlet}");
        assert_eq!(
            body,
            json!({"error": {"code": "Unauthorized", "message": message,
                "innererror": {"message": message, "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException"}}})
        );
    }
}

#[tokio::test]
async fn get_mailbox_pages_by_posting_the_same_body_to_the_next_link() {
    let (sim, contoso, _) = demo().await;
    let exo = token_for(&sim, &contoso, EXO_SCOPE).await;
    let parameters = json!({"ResultSize": "Unlimited"});
    let mut url = invoke_url(&sim, &contoso.id.to_string());
    let mut seen = HashSet::new();
    let mut pages = 0;
    let mut first_next = None;
    loop {
        let response = invoke_at(
            &sim,
            &exo,
            &url,
            "Get-Mailbox",
            parameters.clone(),
            Some(100),
        )
        .await;
        assert_eq!(
            response.headers()["Preference-Applied"],
            "odata.maxpagesize=100"
        );
        let body = ok(response).await;
        let rows = body["value"].as_array().expect("value");
        assert!(rows.len() <= 100);
        for row in rows {
            assert_eq!(row["Guid@odata.type"], "#Guid");
            assert_eq!(row["EmailAddresses@odata.type"], "#Collection(String)");
            assert_eq!(row["WhenCreatedUTC@data.type"], "System.DateTime");
            assert!(
                seen.insert(row["Guid"].as_str().expect("guid").to_owned()),
                "once"
            );
        }
        pages += 1;
        match body["@odata.nextLink"].as_str() {
            Some(next) => {
                first_next.get_or_insert_with(|| next.to_owned());
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 255, "250 user mailboxes and 5 shared ones");
    assert_eq!(pages, 3);
    let next = first_next.expect("a next link");
    let get = sim
        .client
        .get(&next)
        .bearer_auth(&exo)
        .send()
        .await
        .expect("sent");
    assert_eq!(get.status(), 405, "a GET on the nextLink is refused");
    // Another body on the link is refused too.
    let other = invoke_at(
        &sim,
        &exo,
        &next,
        "Get-Mailbox",
        json!({"ResultSize": 10}),
        Some(100),
    )
    .await;
    assert_eq!(other.status(), 400);

    // Without ResultSize at most 1000, and 10 when asked for 10 (no next link).
    let ten = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Get-Mailbox",
        json!({"ResultSize": 10}),
    )
    .await)
    .await;
    assert_eq!(ten["value"].as_array().expect("value").len(), 10);
    assert!(ten.get("@odata.nextLink").is_none());
    assert_eq!(
        ten["@adminapi.warnings"]
            .as_array()
            .expect("warnings")
            .len(),
        1
    );

    // The request log names the cmdlet.
    let logged: Vec<_> = sim
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.cmdlet.as_deref() == Some("Get-Mailbox"))
        .collect();
    assert!(logged.len() >= 5);
    assert!(logged[0].path.starts_with("/adminapi/beta/"));
    assert_eq!(
        logged[0].tenant.as_deref(),
        Some(contoso.id.to_string().as_str())
    );
}

#[tokio::test]
async fn shared_mailboxes_filter_and_identity_not_found() {
    let (sim, contoso, _) = demo().await;
    let exo = token_for(&sim, &contoso, EXO_SCOPE).await;
    let shared = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Get-Mailbox",
        json!({"RecipientTypeDetails": "SharedMailbox", "ResultSize": "Unlimited"}),
    )
    .await)
    .await;
    let rows = shared["value"].as_array().expect("value");
    assert_eq!(rows.len(), 5);
    assert!(
        rows.iter()
            .all(|r| r["RecipientTypeDetails"] == "SharedMailbox")
    );
    assert!(
        rows.iter()
            .any(|r| r["PrimarySmtpAddress"] == "info@contoso.example")
    );
    let both = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Get-Mailbox",
        json!({"recipienttypedetails": "SharedMailbox,UserMailbox", "ResultSize": "Unlimited"}),
    )
    .await)
    .await;
    assert_eq!(both["value"].as_array().expect("value").len(), 255);

    let missing = invoke(
        &sim,
        &exo,
        &contoso,
        "Get-Mailbox",
        json!({"Identity": "nobody@contoso.example"}),
    )
    .await;
    let text = cmdlet_error(
        missing,
        404,
        "NotFound",
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
    )
    .await;
    assert!(
        text.contains("'nobody@contoso.example' couldn't be found"),
        "{text}"
    );

    // FullAccess rows include NT AUTHORITY\SELF; SendAs grants are listed.
    let permissions = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Get-MailboxPermission",
        json!({"Identity": "info@contoso.example"}),
    )
    .await)
    .await;
    let users: Vec<&str> = permissions["value"]
        .as_array()
        .expect("value")
        .iter()
        .filter_map(|r| r["User"].as_str())
        .collect();
    assert_eq!(users[0], "NT AUTHORITY\\SELF");
    assert_eq!(users.len(), 3);
    let send_as = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Get-RecipientPermission",
        json!({"Identity": "info@contoso.example"}),
    )
    .await)
    .await;
    assert_eq!(send_as["value"].as_array().expect("value").len(), 2);
}

#[tokio::test]
async fn set_mailbox_forwarding_is_read_back_with_the_smtp_prefix() {
    let (sim, contoso, _) = demo().await;
    let exo = token_for(&sim, &contoso, EXO_SCOPE).await;
    let victim = contoso.user_upn(CONTOSO_FORWARDING_USER).expect("upn");
    let before = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Get-Mailbox",
        json!({"Identity": victim}),
    )
    .await)
    .await;
    assert_eq!(
        before["value"][0]["ForwardingSmtpAddress"],
        format!("smtp:{CONTOSO_OUTSIDE_ADDRESS}")
    );
    assert_eq!(before["value"][0]["DeliverToMailboxAndForward"], false);

    let user = contoso.user_upn(20).expect("upn");
    let set = invoke(
        &sim,
        &exo,
        &contoso,
        "Set-Mailbox",
        json!({"Identity": user, "ForwardingSMTPAddress": "ext@example.org", "ForwardingAddress": null,
            "DeliverToMailboxAndForward": true, "HiddenFromAddressListsEnabled": true,
            "GrantSendOnBehalfTo": {"@odata.type": "#Exchange.GenericHashTable", "add": contoso.user_upn(21).expect("upn")},
            "Confirm": false}),
    )
    .await;
    assert_eq!(ok(set).await["value"], json!([]));
    let after = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Get-Mailbox",
        json!({"Identity": user}),
    )
    .await)
    .await;
    let row = &after["value"][0];
    assert_eq!(row["ForwardingSmtpAddress"], "smtp:ext@example.org");
    assert_eq!(row["DeliverToMailboxAndForward"], true);
    assert_eq!(row["HiddenFromAddressListsEnabled"], true);
    assert_eq!(
        row["GrantSendOnBehalfTo"].as_array().expect("list").len(),
        1
    );

    // Converted to shared, it is listed as shared.
    ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Set-Mailbox",
        json!({"Identity": user, "Type": "Shared"}),
    )
    .await)
    .await;
    let shared = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Get-Mailbox",
        json!({"RecipientTypeDetails": "SharedMailbox"}),
    )
    .await)
    .await;
    assert_eq!(shared["value"].as_array().expect("value").len(), 6);
}

#[tokio::test]
async fn adding_a_member_twice_fails_with_member_already_exists() {
    let (sim, contoso, _) = demo().await;
    let exo = token_for(&sim, &contoso, EXO_SCOPE).await;
    let groups = ok(invoke(&sim, &exo, &contoso, "Get-DistributionGroup", json!({})).await).await;
    let groups = groups["value"].as_array().expect("value");
    assert_eq!(groups.len(), 3);
    assert_eq!(
        groups
            .iter()
            .filter(|g| g["RecipientTypeDetails"] == "MailUniversalSecurityGroup")
            .count(),
        1
    );
    let member = contoso.user_upn(100).expect("upn");
    let body = json!({"Identity": "sales-dl", "Member": member, "BypassSecurityGroupManagerCheck": true, "Confirm": false});
    let first = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Add-DistributionGroupMember",
        body.clone(),
    )
    .await)
    .await;
    assert_eq!(first["value"], json!([]));
    let second = invoke(
        &sim,
        &exo,
        &contoso,
        "Add-DistributionGroupMember",
        body.clone(),
    )
    .await;
    cmdlet_error(
        second,
        400,
        "BadRequest",
        "Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException",
    )
    .await;
    let members = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Get-DistributionGroupMember",
        json!({"Identity": "sales-dl"}),
    )
    .await)
    .await;
    assert_eq!(members["value"].as_array().expect("value").len(), 11);
    let removed = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Remove-DistributionGroupMember",
        body.clone(),
    )
    .await)
    .await;
    assert_eq!(removed["value"], json!([]));
    let again = invoke(&sim, &exo, &contoso, "Remove-DistributionGroupMember", body).await;
    assert_eq!(again.status(), 400);
}

#[tokio::test]
async fn inbox_rules_hide_hidden_ones_and_the_junk_rule_cannot_be_disabled() {
    let (sim, contoso, _) = demo().await;
    let exo = token_for(&sim, &contoso, EXO_SCOPE).await;
    let victim = contoso.user_upn(CONTOSO_FORWARDING_USER).expect("upn");
    let visible = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Get-InboxRule",
        json!({"Mailbox": victim}),
    )
    .await)
    .await;
    let names = |body: &Value| -> Vec<String> {
        body["value"]
            .as_array()
            .expect("value")
            .iter()
            .filter_map(|r| r["Name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(names(&visible), ["Invoices", "Sync"]);
    assert_eq!(visible["value"][0]["MoveToFolder"], "RSS Feeds");
    assert_eq!(
        visible["value"][1]["ForwardTo"],
        json!([CONTOSO_OUTSIDE_ADDRESS])
    );
    let all = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Get-InboxRule",
        json!({"Mailbox": victim, "IncludeHidden": true}),
    )
    .await)
    .await;
    let all_names = names(&all);
    assert_eq!(all_names.len(), 4);
    assert!(all_names.contains(&"Junk E-Mail Rule".to_owned()));
    let junk = all["value"]
        .as_array()
        .expect("value")
        .iter()
        .find(|r| r["Name"] == "Junk E-Mail Rule")
        .expect("junk rule");
    let refused = invoke(
        &sim,
        &exo,
        &contoso,
        "Disable-InboxRule",
        json!({"Identity": junk["Identity"], "Confirm": false}),
    )
    .await;
    cmdlet_error(
        refused,
        400,
        "BadRequest",
        "Microsoft.Exchange.Management.StoreTasks.InboxRuleOperationException",
    )
    .await;
    // The forwarding rule can be disabled.
    let sync = &visible["value"][1];
    let disabled = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Disable-InboxRule",
        json!({"Identity": sync["Identity"], "Confirm": false}),
    )
    .await)
    .await;
    assert_eq!(disabled["value"], json!([]));
    let after = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Get-InboxRule",
        json!({"Mailbox": victim}),
    )
    .await)
    .await;
    assert_eq!(after["value"][1]["Enabled"], false);
}

#[tokio::test]
async fn new_shared_mailbox_is_visible_and_grants_work() {
    let (sim, contoso, _) = demo().await;
    let exo = token_for(&sim, &contoso, EXO_SCOPE).await;
    let created = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "New-Mailbox",
        json!({"displayName": "Sales", "name": "sales", "primarySMTPAddress": "sales@contoso.example", "Shared": true}),
    )
    .await)
    .await;
    assert_eq!(created["value"][0]["RecipientTypeDetails"], "SharedMailbox");
    assert!(created["value"][0]["ExternalDirectoryObjectId"].is_string());
    let again = invoke(
        &sim,
        &exo,
        &contoso,
        "New-Mailbox",
        json!({"name": "sales", "primarySMTPAddress": "sales@contoso.example", "Shared": true}),
    )
    .await;
    cmdlet_error(
        again,
        400,
        "BadRequest",
        "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
    )
    .await;
    let found = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Get-Mailbox",
        json!({"Identity": "sales@contoso.example"}),
    )
    .await)
    .await;
    assert_eq!(found["value"][0]["DisplayName"], "Sales");
    let alice = contoso.user_upn(50).expect("upn");
    ok(invoke(&sim, &exo, &contoso, "Add-MailboxPermission",
        json!({"Identity": "sales@contoso.example", "user": alice, "accessRights": ["FullAccess"], "automapping": true, "InheritanceType": "all", "Confirm": false})).await).await;
    ok(invoke(&sim, &exo, &contoso, "Add-RecipientPermission",
        json!({"Identity": "sales@contoso.example", "Trustee": alice, "accessRights": ["SendAs"], "Confirm": false})).await).await;
    let full = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Get-MailboxPermission",
        json!({"Identity": "sales@contoso.example"}),
    )
    .await)
    .await;
    assert_eq!(full["value"].as_array().expect("value").len(), 2);
    ok(invoke(&sim, &exo, &contoso, "Remove-MailboxPermission",
        json!({"Identity": "sales@contoso.example", "user": alice, "accessRights": ["FullAccess"], "Confirm": false})).await).await;
    let full = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Get-MailboxPermission",
        json!({"Identity": "sales@contoso.example"}),
    )
    .await)
    .await;
    assert_eq!(full["value"].as_array().expect("value").len(), 1);
    let group = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "New-DistributionGroup",
        json!({"Name": "Approvers", "Alias": "approvers", "Type": "Security", "Members": [alice]}),
    )
    .await)
    .await;
    assert_eq!(
        group["value"][0]["RecipientTypeDetails"],
        "MailUniversalSecurityGroup"
    );
    // Confirm: true answers a confirmation message and changes nothing.
    let confirm = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Set-Mailbox",
        json!({"Identity": alice, "HiddenFromAddressListsEnabled": true, "Confirm": true}),
    )
    .await)
    .await;
    assert!(confirm["@adminapi.confirmationmessage"].is_string());
    let unchanged = ok(invoke(
        &sim,
        &exo,
        &contoso,
        "Get-Mailbox",
        json!({"Identity": alice}),
    )
    .await)
    .await;
    assert_eq!(
        unchanged["value"][0]["HiddenFromAddressListsEnabled"],
        false
    );
    // An unknown cmdlet.
    let unknown = invoke(&sim, &exo, &contoso, "Get-Nothing", json!({})).await;
    cmdlet_error(
        unknown,
        400,
        "BadRequest",
        "System.Management.Automation.CommandNotFoundException",
    )
    .await;
}

#[tokio::test]
async fn throttled_requests_get_429_with_a_fractional_retry_after() {
    let (sim, contoso, _) = demo().await;
    let exo = token_for(&sim, &contoso, EXO_SCOPE).await;
    // The admin API's own budget, shrunk to 3 requests.
    let set = sim
        .client
        .put(sim.url("/_sim/throttle"))
        .json(&json!({"scale": 0.0001}))
        .send()
        .await
        .expect("sent");
    assert!(set.status().is_success());
    let mut throttled = None;
    for _ in 0..10 {
        let response = invoke(&sim, &exo, &contoso, "Get-OrganizationConfig", json!({})).await;
        if response.status() == 429 {
            throttled = Some(response);
            break;
        }
    }
    let response = throttled.expect("throttled within 10 requests");
    let retry_after: f64 = response.headers()["Retry-After"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(
        retry_after > 0.0 && retry_after.fract() != 0.0,
        "{retry_after}"
    );
    assert_eq!(response.headers()["Rate-Limit-Remaining"], "0");

    // A scripted fault on the endpoint (the simulator's fault mechanism) too.
    sim.sim.state().load(scenario::Scenario {
        tenants: vec![contoso.clone()],
    });
    sim.sim.state().script_fault(
        ScriptedFault::new(&format!("/adminapi/beta/{}/InvokeCommand", contoso.id), 429)
            .retry_after(2.5),
    );
    let exo = token_for(&sim, &contoso, EXO_SCOPE).await;
    let response = invoke(&sim, &exo, &contoso, "Get-OrganizationConfig", json!({})).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["Retry-After"], "2.500");
    ok(invoke(&sim, &exo, &contoso, "Get-OrganizationConfig", json!({})).await).await;
}

#[tokio::test]
async fn a_tenant_at_scale_pages_its_mailboxes_by_the_thousand_with_shared_ones_and_groups() {
    let spec = TenantSpec::healthy("scale", "Scale Ltd", 1980)
        .with_exchange_admin()
        .with_exchange_at_scale(20, 10, 50);
    let sim = Sim::start(vec![spec.clone()]).await;
    let exo = token_for(&sim, &spec, EXO_SCOPE).await;
    let parameters = json!({"ResultSize": "Unlimited"});
    let mut url = invoke_url(&sim, &spec.id.to_string());
    let (mut seen, mut shared, mut pages) = (HashSet::new(), 0, 0);
    loop {
        let body = ok(invoke_at(
            &sim,
            &exo,
            &url,
            "Get-Mailbox",
            parameters.clone(),
            Some(1000),
        )
        .await)
        .await;
        let rows = body["value"].as_array().expect("value");
        assert!(rows.len() <= 1000);
        for row in rows {
            assert!(seen.insert(row["Guid"].as_str().expect("guid").to_owned()));
            shared += usize::from(row["RecipientTypeDetails"] == "SharedMailbox");
        }
        pages += 1;
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!((seen.len(), shared, pages), (2000, 20, 2));

    let holders = ok(invoke(
        &sim,
        &exo,
        &spec,
        "Get-MailboxPermission",
        json!({"Identity": "shared-3@scale.example"}),
    )
    .await)
    .await;
    assert_eq!(
        holders["value"].as_array().expect("value").len(),
        3,
        "SELF and two"
    );
    let send_as = ok(invoke(
        &sim,
        &exo,
        &spec,
        "Get-RecipientPermission",
        json!({"Identity": "shared-3@scale.example"}),
    )
    .await)
    .await;
    assert_eq!(
        send_as["value"].as_array().expect("value").len(),
        2,
        "SELF and one"
    );
    let groups = ok(invoke(
        &sim,
        &exo,
        &spec,
        "Get-DistributionGroup",
        parameters.clone(),
    )
    .await)
    .await;
    assert_eq!(groups["value"].as_array().expect("value").len(), 10);
    let members = ok(invoke(
        &sim,
        &exo,
        &spec,
        "Get-DistributionGroupMember",
        json!({"Identity": "dl-9@scale.example", "ResultSize": "Unlimited"}),
    )
    .await)
    .await;
    assert_eq!(members["value"].as_array().expect("value").len(), 50);
}
