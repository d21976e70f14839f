//! Checking an action's parameters: each field's rules, Microsoft's own limits, and the
//! record kept of them (no secrets, no photo bytes).

use base64::Engine;
use serde_json::{Map, Value, json};

use super::ActionKind;
use crate::name::checked_text;

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
    /// A shared mailbox or distribution group to create (`security`: a mail-enabled
    /// security group; always false for a mailbox).
    NewRecipient {
        display_name: String,
        alias: Option<String>,
        security: bool,
    },
    /// Who gets (or loses) which right on the target mailbox.
    MailboxAccess {
        user: String,
        right: MailboxRight,
        auto_mapping: bool,
    },
    /// The distribution group a member joins or leaves (id, address or name).
    DistributionGroup {
        group: String,
    },
    Forwarding {
        forward_to: String,
        keep_copy: bool,
    },
    Hidden {
        hidden: bool,
    },
    /// The inbox rules to disable, by name or identity; empty: every rule that is
    /// neither built-in nor a delegate rule.
    InboxRules {
        only: Vec<String>,
    },
    /// A SKU to assign (with its plans to leave off, and a usage location to set first)
    /// or to remove.
    License {
        sku_id: uuid::Uuid,
        disabled_plans: Vec<uuid::Uuid>,
        usage_location: Option<String>,
    },
    /// What an offboarding does beyond blocking, resetting and revoking (each `true` by
    /// default but the forwarding), and who takes over the mailbox (the user's manager
    /// when not named).
    Offboarding {
        delegate: Option<String>,
        forward_to_delegate: bool,
        remove_from_groups: bool,
        convert_to_shared: bool,
        hide_from_address_lists: bool,
        remove_licenses: bool,
    },
}

/// A right on a mailbox, each granted by its own cmdlet (graph-facts-next §2.10.3–4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailboxRight {
    /// `Add-MailboxPermission -AccessRights FullAccess`.
    FullAccess,
    /// `Add-RecipientPermission -AccessRights SendAs`.
    SendAs,
    /// `Set-Mailbox -GrantSendOnBehalfTo @{Add=…}`.
    SendOnBehalf,
}

impl MailboxRight {
    pub const fn as_str(self) -> &'static str {
        match self {
            MailboxRight::FullAccess => "full_access",
            MailboxRight::SendAs => "send_as",
            MailboxRight::SendOnBehalf => "send_on_behalf",
        }
    }
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
            Parameters::NewRecipient {
                display_name,
                alias,
                security,
            } => {
                let mut shown = json!({"display_name": display_name, "alias": alias});
                // Only groups may be security ones; a mailbox's record has no type.
                if *security {
                    shown["type"] = json!("security");
                }
                shown
            }
            Parameters::MailboxAccess {
                user,
                right,
                auto_mapping,
            } => {
                let mut shown = json!({"user": user, "access": right.as_str()});
                if *right == MailboxRight::FullAccess {
                    shown["auto_mapping"] = json!(auto_mapping);
                }
                shown
            }
            Parameters::DistributionGroup { group } => json!({"group": group}),
            Parameters::Forwarding {
                forward_to,
                keep_copy,
            } => json!({"forward_to": forward_to, "keep_copy": keep_copy}),
            Parameters::Hidden { hidden } => json!({"hidden": hidden}),
            Parameters::InboxRules { only } if only.is_empty() => json!({}),
            Parameters::InboxRules { only } => json!({"rules": only}),
            Parameters::License {
                sku_id,
                disabled_plans,
                usage_location,
            } => {
                let mut shown = json!({"sku_id": sku_id});
                if !disabled_plans.is_empty() {
                    shown["disabled_plans"] = json!(disabled_plans);
                }
                if let Some(location) = usage_location {
                    shown["usage_location"] = json!(location);
                }
                shown
            }
            Parameters::Offboarding {
                delegate,
                forward_to_delegate,
                remove_from_groups,
                convert_to_shared,
                hide_from_address_lists,
                remove_licenses,
            } => json!({
                "delegate": delegate,
                "forward_to_delegate": forward_to_delegate,
                "remove_from_groups": remove_from_groups,
                "convert_to_shared": convert_to_shared,
                "hide_from_address_lists": hide_from_address_lists,
                "remove_licenses": remove_licenses,
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

/// A true/false field (`default` when absent), its error (if any) added to `errors`.
fn flag(
    errors: &mut Vec<ParameterError>,
    object: &Map<String, Value>,
    field: &str,
    default: bool,
) -> bool {
    match object.get(field) {
        None | Some(Value::Null) => default,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(invalid(field, "must be true or false"));
            default
        }
    }
}

/// An Exchange alias: letters, digits, `.`, `-` and `_` (no leading or trailing dot).
fn alias(value: &str) -> Result<String, ParameterError> {
    let valid = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !value.starts_with('.')
        && !value.ends_with('.');
    if valid {
        Ok(value.to_owned())
    } else {
        Err(invalid(
            "alias",
            "may hold only letters, digits, '.', '_' and '-', and not start or end with '.'",
        ))
    }
}

/// A required reference to another object, its error (if any) added to `errors`.
fn required_reference(
    errors: &mut Vec<ParameterError>,
    object: &Map<String, Value>,
    field: &str,
    what: &str,
) -> Option<String> {
    let value = keep(errors, text(object, field, 256));
    if value.is_none() && !object.contains_key(field) {
        errors.push(invalid(field, format!("is required: {what}")));
    }
    value
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
        ActionKind::CreateSharedMailbox => &["display_name", "alias"],
        ActionKind::CreateDistributionGroup => &["display_name", "alias", "type"],
        ActionKind::GrantMailboxAccess => &["user", "access", "auto_mapping"],
        // A revocation's record carries FullAccess's auto-mapping too; it is ignored.
        ActionKind::RevokeMailboxAccess => &["user", "access", "auto_mapping"],
        ActionKind::AddDistributionGroupMember | ActionKind::RemoveDistributionGroupMember => {
            &["group"]
        }
        ActionKind::SetMailboxForwarding => &["forward_to", "keep_copy"],
        ActionKind::HideFromAddressLists => &["hidden"],
        ActionKind::DisableInboxRules => &["rules"],
        ActionKind::AssignLicense => &["sku_id", "disabled_plans", "usage_location"],
        ActionKind::RemoveLicense => &["sku_id"],
        ActionKind::OffboardUser => &[
            "delegate",
            "forward_to_delegate",
            "remove_from_groups",
            "convert_to_shared",
            "hide_from_address_lists",
            "remove_licenses",
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
        ActionKind::CreateSharedMailbox | ActionKind::CreateDistributionGroup => {
            let display_name =
                required_reference(&mut errors, object, "display_name", "the name people see");
            let alias = match keep(&mut errors, text(object, "alias", 64)) {
                Some(raw) => match alias(&raw) {
                    Ok(alias) => Some(alias),
                    Err(e) => {
                        errors.push(e);
                        None
                    }
                },
                None => None,
            };
            let security = match keep(&mut errors, text(object, "type", 16)).as_deref() {
                None | Some("distribution") => false,
                Some("security") => true,
                Some(_) => {
                    errors.push(invalid("type", "must be \"distribution\" or \"security\""));
                    false
                }
            };
            Parameters::NewRecipient {
                display_name: display_name.unwrap_or_default(),
                alias,
                security,
            }
        }
        ActionKind::GrantMailboxAccess | ActionKind::RevokeMailboxAccess => {
            let user = required_reference(
                &mut errors,
                object,
                "user",
                "the user who gets or loses the access (UPN, mail or id)",
            );
            let right = match keep(&mut errors, text(object, "access", 32)).as_deref() {
                None | Some("full_access") => MailboxRight::FullAccess,
                Some("send_as") => MailboxRight::SendAs,
                Some("send_on_behalf") => MailboxRight::SendOnBehalf,
                Some(_) => {
                    errors.push(invalid(
                        "access",
                        "must be full_access, send_as or send_on_behalf",
                    ));
                    MailboxRight::FullAccess
                }
            };
            let auto_mapping = flag(&mut errors, object, "auto_mapping", true);
            if object.contains_key("auto_mapping") && right != MailboxRight::FullAccess {
                errors.push(invalid("auto_mapping", "applies to full_access only"));
            }
            Parameters::MailboxAccess {
                user: user.unwrap_or_default(),
                right,
                auto_mapping,
            }
        }
        ActionKind::AddDistributionGroupMember | ActionKind::RemoveDistributionGroupMember => {
            let group = required_reference(
                &mut errors,
                object,
                "group",
                "a distribution group's id, address or name",
            );
            Parameters::DistributionGroup {
                group: group.unwrap_or_default(),
            }
        }
        ActionKind::SetMailboxForwarding => {
            let forward_to = required_reference(
                &mut errors,
                object,
                "forward_to",
                "the address mail is forwarded to",
            );
            if let Some(address) = &forward_to
                && !is_mail_address(address)
            {
                errors.push(invalid(
                    "forward_to",
                    "must be an email address, local@domain",
                ));
            }
            let keep_copy = flag(&mut errors, object, "keep_copy", true);
            Parameters::Forwarding {
                forward_to: forward_to.unwrap_or_default(),
                keep_copy,
            }
        }
        ActionKind::HideFromAddressLists => {
            let hidden = flag(&mut errors, object, "hidden", true);
            Parameters::Hidden { hidden }
        }
        ActionKind::DisableInboxRules => {
            let only = match object.get("rules") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) if !items.is_empty() && items.len() <= 100 => items
                    .iter()
                    .filter_map(|item| match item.as_str().map(|s| checked_text(s, 256)) {
                        Some(Ok(name)) => Some(name.to_owned()),
                        _ => {
                            errors.push(invalid(
                                "rules",
                                "each rule is its name or identity (1 to 256 characters)",
                            ));
                            None
                        }
                    })
                    .collect(),
                Some(_) => {
                    errors.push(invalid(
                        "rules",
                        "must list 1 to 100 rule names or identities (leave it out for every rule)",
                    ));
                    Vec::new()
                }
            };
            Parameters::InboxRules { only }
        }
        ActionKind::AssignLicense | ActionKind::RemoveLicense => {
            let guid = |raw: &str| uuid::Uuid::parse_str(raw).ok();
            let sku_id = match keep(&mut errors, text(object, "sku_id", 36)) {
                Some(raw) => guid(&raw).or_else(|| {
                    errors.push(invalid(
                        "sku_id",
                        "must be a SKU id (a GUID; GET …/licenses lists them)",
                    ));
                    None
                }),
                None => {
                    if !object.contains_key("sku_id") {
                        errors.push(invalid(
                            "sku_id",
                            "is required: the SKU id (GET …/licenses lists them)",
                        ));
                    }
                    None
                }
            };
            let disabled_plans = match object.get("disabled_plans") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(plans)) if plans.len() <= 100 => plans
                    .iter()
                    .filter_map(|p| {
                        let plan = p.as_str().and_then(guid);
                        if plan.is_none() {
                            errors.push(invalid(
                                "disabled_plans",
                                "each plan is a service plan id (a GUID)",
                            ));
                        }
                        plan
                    })
                    .collect(),
                Some(_) => {
                    errors.push(invalid(
                        "disabled_plans",
                        "must list up to 100 service plan ids",
                    ));
                    Vec::new()
                }
            };
            let usage_location = match keep(&mut errors, text(object, "usage_location", 2)) {
                Some(raw) => match usage_location(&raw) {
                    Ok(code) => Some(code),
                    Err(e) => {
                        errors.push(e);
                        None
                    }
                },
                None => None,
            };
            Parameters::License {
                sku_id: sku_id.unwrap_or_default(),
                disabled_plans,
                usage_location,
            }
        }
        ActionKind::OffboardUser => {
            let delegate = keep(&mut errors, text(object, "delegate", 256));
            let forward_to_delegate = flag(&mut errors, object, "forward_to_delegate", false);
            let remove_from_groups = flag(&mut errors, object, "remove_from_groups", true);
            let convert_to_shared = flag(&mut errors, object, "convert_to_shared", true);
            let hide_from_address_lists =
                flag(&mut errors, object, "hide_from_address_lists", true);
            let remove_licenses = flag(&mut errors, object, "remove_licenses", true);
            Parameters::Offboarding {
                delegate,
                forward_to_delegate,
                remove_from_groups,
                convert_to_shared,
                hide_from_address_lists,
                remove_licenses,
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

/// Whether `raw` is a plain mail address: an RFC 5322 dot-atom local part and a dotted
/// domain of letters, digits and hyphens (no quoted local parts, no IP literals).
pub fn is_mail_address(raw: &str) -> bool {
    raw.len() <= 254
        && raw.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && local.len() <= 64
                && local
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
                && !local.starts_with('.')
                && !local.ends_with('.')
                && !local.contains("..")
                && domain.contains('.')
                && domain.split('.').all(|label| {
                    !label.is_empty()
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        })
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
