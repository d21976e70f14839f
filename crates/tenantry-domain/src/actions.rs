//! The identity actions Tenantry carries out, declared as data: what each is called, the
//! capability (permissions and directory roles) it needs, whether an employee may ask for
//! it on themselves, how its parameters are checked, and the Graph calls it makes
//! (graph-facts §6). The executor and the dry run both work from [`plan`], so what a dry
//! run shows is what execution sends.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::capabilities::Capability;
use crate::name::checked_text;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    PasswordReset,
    MfaReset,
    UnblockSignin,
    RevokeSessions,
    DisableAccount,
    EnableAccount,
    UpdateUserProfile,
    UpdatePhoto,
    GrantAccess,
    RevokeAccess,
    CreateUser,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action {0:?}")]
pub struct UnknownAction(pub String);

/// Stands in for a generated password in plans, dry runs and step records: the password
/// itself exists only in the request to Microsoft and sealed in the vault.
pub const PASSWORD_PLACEHOLDER: &str = "[generated at execution; revealed once]";
/// Stands in for the id of the user a `create_user` step creates.
pub const CREATED_USER: &str = "{created-user-id}";
/// The most targets one bulk request may name.
pub const MAX_TARGETS: usize = 50;

impl ActionKind {
    pub const ALL: [ActionKind; 11] = [
        ActionKind::PasswordReset,
        ActionKind::MfaReset,
        ActionKind::UnblockSignin,
        ActionKind::RevokeSessions,
        ActionKind::DisableAccount,
        ActionKind::EnableAccount,
        ActionKind::UpdateUserProfile,
        ActionKind::UpdatePhoto,
        ActionKind::GrantAccess,
        ActionKind::RevokeAccess,
        ActionKind::CreateUser,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ActionKind::PasswordReset => "password_reset",
            ActionKind::MfaReset => "mfa_reset",
            ActionKind::UnblockSignin => "unblock_signin",
            ActionKind::RevokeSessions => "revoke_sessions",
            ActionKind::DisableAccount => "disable_account",
            ActionKind::EnableAccount => "enable_account",
            ActionKind::UpdateUserProfile => "update_user_profile",
            ActionKind::UpdatePhoto => "update_photo",
            ActionKind::GrantAccess => "grant_access",
            ActionKind::RevokeAccess => "revoke_access",
            ActionKind::CreateUser => "create_user",
        }
    }

    /// The capability whose permissions and directory roles the action needs.
    pub const fn capability(self) -> Capability {
        match self {
            ActionKind::PasswordReset => Capability::PasswordReset,
            ActionKind::MfaReset => Capability::MfaReset,
            ActionKind::UnblockSignin => Capability::UnblockSignin,
            ActionKind::RevokeSessions => Capability::RevokeSessions,
            ActionKind::DisableAccount | ActionKind::EnableAccount => Capability::DisableAccount,
            ActionKind::UpdateUserProfile => Capability::UpdateUserProfile,
            ActionKind::UpdatePhoto => Capability::UpdatePhoto,
            ActionKind::GrantAccess | ActionKind::RevokeAccess => Capability::GrantAccess,
            ActionKind::CreateUser => Capability::CreateUser,
        }
    }

    /// Whether a policy may open the action to employees acting on themselves (the set
    /// Dex offers for self-service, seed 001). Disabling accounts or creating users is
    /// never self-service.
    pub const fn may_be_self_service(self) -> bool {
        matches!(
            self,
            ActionKind::PasswordReset
                | ActionKind::MfaReset
                | ActionKind::UnblockSignin
                | ActionKind::UpdateUserProfile
                | ActionKind::UpdatePhoto
                | ActionKind::GrantAccess
        )
    }

    /// Whether one request may name several targets (bulk unlock and the like).
    pub const fn takes_many_targets(self) -> bool {
        matches!(
            self,
            ActionKind::DisableAccount | ActionKind::EnableAccount | ActionKind::RevokeSessions
        )
    }

    /// Whether the target is a user to be created rather than one that exists.
    pub const fn creates_target(self) -> bool {
        matches!(self, ActionKind::CreateUser)
    }

    /// Whether execution generates a password to reveal once.
    pub const fn generates_password(self) -> bool {
        matches!(self, ActionKind::PasswordReset | ActionKind::CreateUser)
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ActionKind {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActionKind::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

/// One field that failed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParameterError {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> ParameterError {
    ParameterError {
        field: format!("parameters.{field}"),
        message: message.into(),
    }
}

/// Profile fields an application may change (graph-facts §6.6): ours → Graph's, and the
/// longest value accepted.
const PROFILE_FIELDS: [(&str, &str, usize); 6] = [
    ("job_title", "jobTitle", 128),
    ("department", "department", 64),
    ("office_location", "officeLocation", 128),
    ("business_phone", "businessPhones", 64),
    ("mobile_phone", "mobilePhone", 64),
    ("usage_location", "usageLocation", 2),
];

/// Microsoft's limit for a photo upload (graph-facts §6.8).
pub const MAX_PHOTO_BYTES: usize = 4 * 1024 * 1024;

/// Checked parameters. References to other objects (a group, a manager) are kept as
/// given and resolved against the tenant before planning.
#[derive(Clone, Debug, PartialEq)]
pub enum Parameters {
    None,
    /// Graph property → new value (`null` clears), and a manager reference.
    Profile {
        changes: Map<String, Value>,
        manager: Option<String>,
    },
    Photo {
        content_type: String,
        bytes: Vec<u8>,
    },
    Group {
        group: String,
    },
    NewUser {
        /// The `POST /users` body without the password.
        profile: Map<String, Value>,
        manager: Option<String>,
        license_sku_id: Option<uuid::Uuid>,
    },
}

impl Parameters {
    /// The parameters as stored and shown: photo bytes become their size.
    pub fn to_record(&self) -> Value {
        match self {
            Parameters::None => json!({}),
            Parameters::Profile { changes, manager } => {
                let mut shown = Map::new();
                for (ours, graph, _) in PROFILE_FIELDS {
                    if let Some(value) = changes.get(graph) {
                        let value = match (ours, value) {
                            ("business_phone", Value::Array(phones)) => {
                                phones.first().cloned().unwrap_or(Value::Null)
                            }
                            _ => value.clone(),
                        };
                        shown.insert(ours.to_owned(), value);
                    }
                }
                if let Some(manager) = manager {
                    shown.insert("manager".into(), json!(manager));
                }
                Value::Object(shown)
            }
            Parameters::Photo {
                content_type,
                bytes,
            } => json!({"content_type": content_type, "bytes": bytes.len()}),
            Parameters::Group { group } => json!({"group": group}),
            Parameters::NewUser {
                profile,
                manager,
                license_sku_id,
            } => json!({
                "display_name": profile.get("displayName"),
                "given_name": profile.get("givenName"),
                "surname": profile.get("surname"),
                "mail_nickname": profile.get("mailNickname"),
                "job_title": profile.get("jobTitle"),
                "department": profile.get("department"),
                "usage_location": profile.get("usageLocation"),
                "manager": manager,
                "license_sku_id": license_sku_id,
            }),
        }
    }

    /// A reference to another user (a manager), when there is one to resolve.
    pub fn manager(&self) -> Option<&str> {
        match self {
            Parameters::Profile { manager, .. } | Parameters::NewUser { manager, .. } => {
                manager.as_deref()
            }
            _ => None,
        }
    }
}

fn text(
    object: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<String>, ParameterError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => checked_text(s, max)
            .map(|s| Some(s.to_owned()))
            .map_err(|e| invalid(field, e.to_string())),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

fn usage_location(value: &str) -> Result<String, ParameterError> {
    if value.len() == 2 && value.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(invalid(
            "usage_location",
            "must be a two-letter ISO 3166 country code such as \"US\"",
        ))
    }
}

/// The value of a checked field, its error (if any) added to `errors`.
fn keep(
    errors: &mut Vec<ParameterError>,
    result: Result<Option<String>, ParameterError>,
) -> Option<String> {
    match result {
        Ok(value) => value,
        Err(error) => {
            errors.push(error);
            None
        }
    }
}

/// Checks `raw` (the request's `parameters`, absent as `null`) for `kind`.
pub fn parse_parameters(kind: ActionKind, raw: &Value) -> Result<Parameters, Vec<ParameterError>> {
    let empty = Map::new();
    let object = match raw {
        Value::Null => &empty,
        Value::Object(map) => map,
        _ => {
            return Err(vec![ParameterError {
                field: "parameters".into(),
                message: "must be an object".into(),
            }]);
        }
    };
    let allowed: &[&str] = match kind {
        ActionKind::UpdateUserProfile => &[
            "job_title",
            "department",
            "office_location",
            "business_phone",
            "mobile_phone",
            "usage_location",
            "manager",
        ],
        ActionKind::UpdatePhoto => &["content_type", "data"],
        ActionKind::GrantAccess | ActionKind::RevokeAccess => &["group"],
        ActionKind::CreateUser => &[
            "display_name",
            "given_name",
            "surname",
            "mail_nickname",
            "job_title",
            "department",
            "usage_location",
            "manager",
            "license_sku_id",
        ],
        _ => &[],
    };
    let mut errors: Vec<ParameterError> = object
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| invalid(k, format!("is not a parameter of {kind}")))
        .collect();
    let parameters = match kind {
        ActionKind::UpdateUserProfile => {
            let mut changes = Map::new();
            for (ours, graph, max) in PROFILE_FIELDS {
                if !object.contains_key(ours) {
                    continue;
                }
                let value = match keep(&mut errors, text(object, ours, max)) {
                    None if object.get(ours) == Some(&Value::Null) => {
                        if ours == "business_phone" {
                            json!([])
                        } else {
                            Value::Null
                        }
                    }
                    None => continue,
                    Some(v) if ours == "usage_location" => match usage_location(&v) {
                        Ok(code) => json!(code),
                        Err(e) => {
                            errors.push(e);
                            continue;
                        }
                    },
                    // Graph takes exactly one business phone (graph-facts §6.6).
                    Some(v) if ours == "business_phone" => json!([v]),
                    Some(v) => json!(v),
                };
                changes.insert(graph.to_owned(), value);
            }
            let manager = keep(&mut errors, text(object, "manager", 256));
            if changes.is_empty() && manager.is_none() && errors.is_empty() {
                errors.push(ParameterError {
                    field: "parameters".into(),
                    message: "must change at least one of job_title, department, office_location, business_phone, mobile_phone, usage_location, manager".into(),
                });
            }
            Parameters::Profile { changes, manager }
        }
        ActionKind::UpdatePhoto => {
            let content_type = keep(&mut errors, text(object, "content_type", 32));
            let data = keep(
                &mut errors,
                text(object, "data", MAX_PHOTO_BYTES * 4 / 3 + 4),
            );
            match (content_type, data) {
                (Some(content_type), Some(data)) => {
                    if content_type != "image/jpeg" && content_type != "image/png" {
                        errors.push(invalid("content_type", "must be image/jpeg or image/png"));
                    }
                    match base64::engine::general_purpose::STANDARD.decode(data.as_bytes()) {
                        Ok(bytes) if bytes.is_empty() => {
                            errors.push(invalid("data", "must not be empty"));
                            Parameters::None
                        }
                        Ok(bytes) if bytes.len() > MAX_PHOTO_BYTES => {
                            errors.push(invalid("data", "must be at most 4 MB"));
                            Parameters::None
                        }
                        Ok(bytes) => Parameters::Photo {
                            content_type,
                            bytes,
                        },
                        Err(_) => {
                            errors.push(invalid("data", "must be base64"));
                            Parameters::None
                        }
                    }
                }
                (content_type, data) => {
                    if content_type.is_none() && !object.contains_key("content_type") {
                        errors.push(invalid("content_type", "is required"));
                    }
                    if data.is_none() && !object.contains_key("data") {
                        errors.push(invalid("data", "is required (base64)"));
                    }
                    Parameters::None
                }
            }
        }
        ActionKind::GrantAccess | ActionKind::RevokeAccess => {
            match keep(&mut errors, text(object, "group", 256)) {
                Some(group) => Parameters::Group { group },
                None => {
                    if !object.contains_key("group") {
                        errors.push(invalid("group", "is required: a group id, mail or name"));
                    }
                    Parameters::None
                }
            }
        }
        ActionKind::CreateUser => {
            let mut profile = Map::new();
            match keep(&mut errors, text(object, "display_name", 256)) {
                Some(name) => {
                    profile.insert("displayName".into(), json!(name));
                }
                None if !object.contains_key("display_name") => {
                    errors.push(invalid("display_name", "is required"));
                }
                None => {}
            }
            for (ours, graph, max) in [
                ("given_name", "givenName", 64),
                ("surname", "surname", 64),
                ("job_title", "jobTitle", 128),
                ("department", "department", 64),
            ] {
                if let Some(v) = keep(&mut errors, text(object, ours, max)) {
                    profile.insert(graph.into(), json!(v));
                }
            }
            if let Some(nickname) = keep(&mut errors, text(object, "mail_nickname", 64)) {
                if nickname
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                {
                    profile.insert("mailNickname".into(), json!(nickname));
                } else {
                    errors.push(invalid(
                        "mail_nickname",
                        "may hold only letters, digits, '.', '_' and '-'",
                    ));
                }
            }
            if let Some(location) = keep(&mut errors, text(object, "usage_location", 2)) {
                match usage_location(&location) {
                    Ok(code) => {
                        profile.insert("usageLocation".into(), json!(code));
                    }
                    Err(e) => errors.push(e),
                }
            }
            let license_sku_id = match keep(&mut errors, text(object, "license_sku_id", 36)) {
                Some(raw) => match uuid::Uuid::parse_str(&raw) {
                    Ok(id) => Some(id),
                    Err(_) => {
                        errors.push(invalid("license_sku_id", "must be a SKU id (a GUID)"));
                        None
                    }
                },
                None => None,
            };
            if license_sku_id.is_some() && !profile.contains_key("usageLocation") {
                errors.push(invalid(
                    "usage_location",
                    "is required to assign a licence (Microsoft refuses licences without it)",
                ));
            }
            let manager = keep(&mut errors, text(object, "manager", 256));
            Parameters::NewUser {
                profile,
                manager,
                license_sku_id,
            }
        }
        _ => Parameters::None,
    };
    if errors.is_empty() {
        Ok(parameters)
    } else {
        Err(errors)
    }
}

/// Checks a user principal name for a user to be created: `local@domain`.
pub fn parse_new_upn(raw: &str) -> Result<String, ParameterError> {
    let upn = raw.trim();
    let valid = upn.len() <= 113
        && upn.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && local.len() <= 64
                && local
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-'".contains(c))
                && !local.starts_with('.')
                && !local.ends_with('.')
                && domain.contains('.')
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
        });
    if valid {
        Ok(upn.to_owned())
    } else {
        Err(ParameterError {
            field: "target".into(),
            message:
                "must be the new user's principal name, local@domain (letters, digits, . _ - ')"
                    .into(),
        })
    }
}

/// A user the action is about, resolved against the tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The object id; `None` for a user still to be created.
    pub id: Option<uuid::Uuid>,
    pub user_principal_name: Option<String>,
    pub display_name: Option<String>,
}

/// References resolved before planning.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    pub group_id: Option<uuid::Uuid>,
    pub manager_id: Option<uuid::Uuid>,
}

/// One Graph call of an action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedStep {
    pub name: String,
    pub method: &'static str,
    /// After `/v1.0`.
    pub path: String,
    /// JSON body; a password appears only as [`PASSWORD_PLACEHOLDER`].
    pub body: Option<Value>,
    /// Whether sending it twice does no harm. A step that may have been sent but whose
    /// answer was lost is sent again only when this holds.
    pub idempotent: bool,
}

impl PlannedStep {
    fn new(name: impl Into<String>, method: &'static str, path: String) -> Self {
        Self {
            name: name.into(),
            method,
            path,
            body: None,
            idempotent: true,
        }
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn once(mut self) -> Self {
        self.idempotent = false;
        self
    }
}

/// The Graph calls of an action. `graph_base` (e.g. `https://graph.microsoft.com/v1.0`)
/// builds the `@odata.id` references Graph asks for. `mfa_reset` plans its listing here
/// and its deletes from the listing ([`mfa_delete_steps`]).
pub fn plan(
    kind: ActionKind,
    targets: &[Target],
    parameters: &Parameters,
    resolved: &Resolved,
    graph_base: &str,
) -> Vec<PlannedStep> {
    let user = |t: &Target| {
        t.id.map_or_else(|| CREATED_USER.to_owned(), |id| id.to_string())
    };
    let mut steps = Vec::new();
    for target in targets {
        let id = user(target);
        match kind {
            ActionKind::PasswordReset => steps.push(
                PlannedStep::new("set password", "PATCH", format!("/users/{id}"))
                    .body(json!({"passwordProfile": {
                        "forceChangePasswordNextSignIn": true,
                        "password": PASSWORD_PLACEHOLDER,
                    }}))
                    .once(),
            ),
            ActionKind::MfaReset => steps.push(PlannedStep::new(
                "list authentication methods",
                "GET",
                format!("/users/{id}/authentication/methods"),
            )),
            ActionKind::UnblockSignin => {
                steps.push(
                    PlannedStep::new(
                        "dismiss user risk",
                        "POST",
                        "/identityProtection/riskyUsers/dismiss".into(),
                    )
                    .body(json!({"userIds": [id]})),
                );
                steps.push(
                    PlannedStep::new("enable account", "PATCH", format!("/users/{id}"))
                        .body(json!({"accountEnabled": true})),
                );
            }
            ActionKind::RevokeSessions => steps.push(PlannedStep::new(
                "revoke sign-in sessions",
                "POST",
                format!("/users/{id}/revokeSignInSessions"),
            )),
            ActionKind::DisableAccount | ActionKind::EnableAccount => {
                let enable = kind == ActionKind::EnableAccount;
                steps.push(
                    PlannedStep::new(
                        if enable {
                            "enable account"
                        } else {
                            "disable account"
                        },
                        "PATCH",
                        format!("/users/{id}"),
                    )
                    .body(json!({"accountEnabled": enable})),
                );
            }
            ActionKind::UpdateUserProfile => {
                if let Parameters::Profile { changes, .. } = parameters
                    && !changes.is_empty()
                {
                    steps.push(
                        PlannedStep::new("update profile", "PATCH", format!("/users/{id}"))
                            .body(Value::Object(changes.clone())),
                    );
                }
                if let Some(manager) = resolved.manager_id {
                    steps.push(set_manager(&id, manager, graph_base));
                }
            }
            ActionKind::UpdatePhoto => {
                if let Parameters::Photo { content_type, .. } = parameters {
                    steps.push(PlannedStep {
                        name: format!("upload photo ({content_type})"),
                        ..PlannedStep::new("", "PUT", format!("/users/{id}/photo/$value"))
                    });
                }
            }
            ActionKind::GrantAccess | ActionKind::RevokeAccess => {
                let group = resolved
                    .group_id
                    .map_or_else(|| "{group-id}".to_owned(), |g| g.to_string());
                steps.push(if kind == ActionKind::GrantAccess {
                    PlannedStep::new(
                        "add group member",
                        "POST",
                        format!("/groups/{group}/members/$ref"),
                    )
                    .body(json!({"@odata.id": format!("{graph_base}/directoryObjects/{id}")}))
                } else {
                    PlannedStep::new(
                        "remove group member",
                        "DELETE",
                        format!("/groups/{group}/members/{id}/$ref"),
                    )
                });
            }
            ActionKind::CreateUser => {
                if let Parameters::NewUser {
                    profile,
                    license_sku_id,
                    ..
                } = parameters
                {
                    let upn = target.user_principal_name.clone().unwrap_or_default();
                    let mut body = profile.clone();
                    body.insert("accountEnabled".into(), json!(true));
                    body.insert("userPrincipalName".into(), json!(upn));
                    if !body.contains_key("mailNickname") {
                        let local = upn.split('@').next().unwrap_or_default();
                        let nickname: String = local
                            .chars()
                            .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
                            .collect();
                        body.insert("mailNickname".into(), json!(nickname));
                    }
                    body.insert(
                        "passwordProfile".into(),
                        json!({"forceChangePasswordNextSignIn": true, "password": PASSWORD_PLACEHOLDER}),
                    );
                    steps.push(
                        PlannedStep::new("create user", "POST", "/users".into())
                            .body(Value::Object(body))
                            .once(),
                    );
                    if let Some(manager) = resolved.manager_id {
                        steps.push(set_manager(CREATED_USER, manager, graph_base));
                    }
                    if let Some(sku) = license_sku_id {
                        steps.push(
                            PlannedStep::new(
                                "assign licence",
                                "POST",
                                format!("/users/{CREATED_USER}/assignLicense"),
                            )
                            .body(json!({
                                "addLicenses": [{"skuId": sku, "disabledPlans": []}],
                                "removeLicenses": [],
                            })),
                        );
                    }
                }
            }
        }
    }
    steps
}

fn set_manager(user: &str, manager: uuid::Uuid, graph_base: &str) -> PlannedStep {
    PlannedStep::new("set manager", "PUT", format!("/users/{user}/manager/$ref"))
        .body(json!({"@odata.id": format!("{graph_base}/users/{manager}")}))
}

/// The deletable collections by a method's `@odata.type` (graph-facts §6.3). The password
/// method has none: it is never deleted.
const METHOD_COLLECTIONS: [(&str, &str); 7] = [
    (
        "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
        "microsoftAuthenticatorMethods",
    ),
    ("#microsoft.graph.phoneAuthenticationMethod", "phoneMethods"),
    (
        "#microsoft.graph.softwareOathAuthenticationMethod",
        "softwareOathMethods",
    ),
    ("#microsoft.graph.fido2AuthenticationMethod", "fido2Methods"),
    ("#microsoft.graph.emailAuthenticationMethod", "emailMethods"),
    (
        "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
        "temporaryAccessPassMethods",
    ),
    (
        "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
        "windowsHelloForBusinessMethods",
    ),
];

/// One DELETE per method the listing returned, password excluded, in listed order except
/// that alternateMobile phones go first: "A user can't have an alternateMobile number
/// without a mobile number" (graph-facts §6.3), so the mobile one is refused while an
/// alternateMobile one remains. Graph v1.0 does not say which method is the default; the
/// executor learns it from Microsoft's refusal ("Cannot delete default method with other
/// methods configured") and, like any delete refused while other methods remain, sends it
/// again after the others.
pub fn mfa_delete_steps(user: &str, methods: &[Value]) -> Vec<PlannedStep> {
    let alternate_mobile = |method: &&Value| {
        method["@odata.type"] == "#microsoft.graph.phoneAuthenticationMethod"
            && method["phoneType"] == "alternateMobile"
    };
    let (first, rest): (Vec<&Value>, Vec<&Value>) = methods.iter().partition(alternate_mobile);
    first
        .into_iter()
        .chain(rest)
        .filter_map(|method| {
            let kind = method["@odata.type"].as_str()?;
            let id = method["id"].as_str()?;
            let (_, collection) = METHOD_COLLECTIONS.iter().find(|(t, _)| *t == kind)?;
            Some(PlannedStep::new(
                format!("delete {}", collection.trim_end_matches("Methods")),
                "DELETE",
                format!("/users/{user}/authentication/{collection}/{id}"),
            ))
        })
        .collect()
}

/// Roles Microsoft itself treats as non-administrators for profile writes (graph-facts
/// §6.6): holding only these does not make an account privileged. Every other directory
/// role does. Template ids of the last three are from Entra's built-in roles reference
/// and not in graph-facts (UNVERIFIED).
const UNPRIVILEGED_ROLES: [&str; 4] = [
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b", // Directory Readers
    "95e79109-95c0-4d8e-aee3-d01accf2d47b", // Guest Inviter
    "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b", // Message Center Reader
    "4a5d8f65-41da-4de4-8968-e035b65339cf", // Reports Reader
];

/// Whether holding the role with this template id makes an account privileged.
pub fn is_privileged_role(template_id: &str) -> bool {
    !UNPRIVILEGED_ROLES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(template_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips_its_name() {
        for kind in ActionKind::ALL {
            assert_eq!(kind.as_str().parse::<ActionKind>(), Ok(kind));
        }
        assert!("format_disk".parse::<ActionKind>().is_err());
    }

    #[test]
    fn profile_parameters_map_to_graph_properties_and_reject_strangers() {
        let parsed = parse_parameters(
            ActionKind::UpdateUserProfile,
            &json!({"job_title": " Buyer ", "usage_location": "gb", "business_phone": "+44 20 7946 0000", "department": null}),
        )
        .expect("valid");
        let Parameters::Profile { changes, manager } = parsed else {
            panic!("profile");
        };
        assert_eq!(changes["jobTitle"], "Buyer");
        assert_eq!(changes["usageLocation"], "GB");
        assert_eq!(changes["businessPhones"], json!(["+44 20 7946 0000"]));
        assert_eq!(changes["department"], Value::Null);
        assert_eq!(manager, None);

        let errors = parse_parameters(
            ActionKind::UpdateUserProfile,
            &json!({"birthday": "2000-01-01", "usage_location": "GBR"}),
        )
        .expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["parameters.birthday", "parameters.usage_location"],
            "{errors:?}"
        );
        assert!(parse_parameters(ActionKind::UpdateUserProfile, &json!({})).is_err());
        assert!(parse_parameters(ActionKind::PasswordReset, &json!({"password": "x"})).is_err());
        assert_eq!(
            parse_parameters(ActionKind::PasswordReset, &Value::Null),
            Ok(Parameters::None)
        );
    }

    #[test]
    fn a_licence_needs_a_usage_location() {
        let errors = parse_parameters(
            ActionKind::CreateUser,
            &json!({"display_name": "Ana", "license_sku_id": "c7df2760-2c81-4ef7-b578-5b5392b571df"}),
        )
        .expect_err("no usage location");
        assert_eq!(errors[0].field, "parameters.usage_location");
        assert!(parse_new_upn("ana@contoso.example").is_ok());
        assert!(parse_new_upn("ana@localhost").is_err());
        assert!(parse_new_upn("a na@contoso.example").is_err());
    }

    #[test]
    fn a_password_never_appears_in_a_plan() {
        let target = Target {
            id: Some(uuid::Uuid::nil()),
            user_principal_name: None,
            display_name: None,
        };
        let steps = plan(
            ActionKind::PasswordReset,
            &[target],
            &Parameters::None,
            &Resolved::default(),
            "https://graph.microsoft.com/v1.0",
        );
        assert_eq!(steps.len(), 1);
        assert!(!steps[0].idempotent, "a password is set once");
        assert_eq!(
            steps[0].body.as_ref().expect("body")["passwordProfile"]["password"],
            PASSWORD_PLACEHOLDER
        );
    }

    #[test]
    fn an_alternate_mobile_phone_is_deleted_before_the_mobile_one() {
        let phone = |id: &str, kind: &str| json!({"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", "id": id, "phoneType": kind});
        let methods = [
            phone("m", "mobile"),
            json!({"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "28c10230-6103-485e-b985-444c60001490"}),
            phone("a", "alternateMobile"),
            json!({"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod", "id": "x"}),
        ];
        let paths: Vec<String> = mfa_delete_steps("u", &methods)
            .into_iter()
            .map(|s| s.path)
            .collect();
        assert_eq!(
            paths,
            [
                "/users/u/authentication/phoneMethods/a",
                "/users/u/authentication/phoneMethods/m",
                "/users/u/authentication/microsoftAuthenticatorMethods/x",
            ]
        );
    }

    #[test]
    fn mfa_deletes_skip_the_password_method() {
        let methods = [
            json!({"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "28c10230-6103-485e-b985-444c60001490"}),
            json!({"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", "id": "3179e48a-750b-4051-897c-87b9720928f7"}),
        ];
        let steps = mfa_delete_steps("u", &methods);
        assert_eq!(steps.len(), 1);
        assert_eq!(
            steps[0].path,
            "/users/u/authentication/phoneMethods/3179e48a-750b-4051-897c-87b9720928f7"
        );
    }

    #[test]
    fn reader_roles_are_not_privileged() {
        assert!(!is_privileged_role("88d8e3e3-8f55-4a1e-953a-9b9898b8876b"));
        assert!(is_privileged_role("62e90394-69f5-4237-9190-012177145e10"));
        assert!(is_privileged_role("729827e3-9c14-49f7-bb1b-9608f156bbb8"));
    }
}
