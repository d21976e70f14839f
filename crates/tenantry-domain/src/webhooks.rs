//! Inbound remediation webhooks, the parts without I/O: the rules an endpoint maps events
//! with, the event a sender posts, and the `Tenantry-Signature` header
//! (`t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`, several `v1` allowed while a
//! sender rotates its secret).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::actions::ActionKind;
use crate::name::checked_text;

/// Most rules on one endpoint, and actions in one rule.
pub const MAX_RULES: usize = 20;
pub const MAX_RULE_ACTIONS: usize = 10;
/// How far a signature's timestamp may be from now, either way.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;
/// Most signatures one header may carry.
const MAX_SIGNATURES: usize = 5;

/// What a webhook may trigger: actions that contain a compromise and need nothing but
/// the user.
pub const CONTAINMENT: [ActionKind; 7] = [
    ActionKind::RevokeSessions,
    ActionKind::PasswordReset,
    ActionKind::MfaReset,
    ActionKind::DisableAccount,
    // BEC remediation's Exchange steps (issue #17).
    ActionKind::ClearMailboxForwarding,
    ActionKind::DisableInboxRules,
    // The whole BEC remediation as one action.
    ActionKind::RemediateCompromisedUser,
];

/// Whether a rule's actions follow the organization's approval policy or skip it (the
/// privileged-target guard applies either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleApproval {
    Policy,
    None,
}

/// An event type mapped to a playbook: actions carried out in order on the event's target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub event: String,
    pub actions: Vec<ActionKind>,
    #[serde(default = "policy_approval")]
    pub approval: RuleApproval,
}

fn policy_approval() -> RuleApproval {
    RuleApproval::Policy
}

/// An event type: lower-case words separated by dots, dashes or underscores.
fn valid_type(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 100
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Checks an endpoint's rules: (field, message) for each problem.
pub fn rule_problems(rules: &[Rule]) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if rules.is_empty() || rules.len() > MAX_RULES {
        problems.push((
            "rules".to_owned(),
            format!("must hold between 1 and {MAX_RULES} rules"),
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        if !valid_type(&rule.event) {
            problems.push((
                format!("rules[{i}].event"),
                "must be an event type such as user.compromised".into(),
            ));
        }
        if rule.actions.is_empty() || rule.actions.len() > MAX_RULE_ACTIONS {
            problems.push((
                format!("rules[{i}].actions"),
                format!("must list between 1 and {MAX_RULE_ACTIONS} actions"),
            ));
        }
        for kind in &rule.actions {
            // An alert may only contain damage: a leaked signing secret must not be able
            // to re-enable, unblock or grant anything.
            if !CONTAINMENT.contains(kind) {
                problems.push((
                    format!("rules[{i}].actions"),
                    format!(
                        "{kind} is not a containment action; webhooks may run revoke_sessions, password_reset, mfa_reset, disable_account, clear_mailbox_forwarding, disable_inbox_rules and remediate_compromised_user"
                    ),
                ));
            }
        }
        if rules[..i].iter().any(|r| r.event == rule.event) {
            problems.push((
                format!("rules[{i}].event"),
                "another rule already maps this event".into(),
            ));
        }
    }
    problems
}

/// A delivered event, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    pub occurred_at: Option<String>,
    /// An organization id or a Microsoft 365 tenant id, when the event names one.
    pub organization: Option<uuid::Uuid>,
    pub target: Option<String>,
    pub data: Value,
}

fn text(
    object: &Map<String, Value>,
    field: &str,
    max: usize,
    problems: &mut Vec<(String, String)>,
) -> Option<String> {
    match object.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if checked_text(s, max).is_ok() => Some(s.trim().to_owned()),
        Some(_) => {
            problems.push((
                field.to_owned(),
                format!("must be a string of 1 to {max} characters"),
            ));
            None
        }
    }
}

/// Parses an event body: `id`, `type`, `occurred_at`, `organization` or `tenant_id`,
/// `target`, free `data`.
pub fn parse_event(body: &Value) -> Result<Event, Vec<(String, String)>> {
    let Value::Object(object) = body else {
        return Err(vec![("body".into(), "must be a JSON object".into())]);
    };
    let mut problems = Vec::new();
    for key in object.keys() {
        if ![
            "id",
            "type",
            "occurred_at",
            "organization",
            "tenant_id",
            "target",
            "data",
        ]
        .contains(&key.as_str())
        {
            problems.push((key.clone(), "is not a field of an event".into()));
        }
    }
    let id = text(object, "id", 200, &mut problems);
    let event_type = text(object, "type", 100, &mut problems);
    if event_type.as_deref().is_some_and(|t| !valid_type(t)) {
        problems.push((
            "type".into(),
            "must be an event type such as user.compromised".into(),
        ));
    }
    let occurred_at = text(object, "occurred_at", 64, &mut problems);
    let target = text(object, "target", 256, &mut problems);
    let mut organization = None;
    for field in ["organization", "tenant_id"] {
        if let Some(raw) = text(object, field, 36, &mut problems) {
            match raw.parse::<uuid::Uuid>() {
                Ok(id) if organization.is_none() => organization = Some(id),
                Ok(_) => problems.push((
                    field.into(),
                    "give organization or tenant_id, not both".into(),
                )),
                Err(_) => problems.push((field.into(), "must be a GUID".into())),
            }
        }
    }
    let data = object.get("data").cloned().unwrap_or(Value::Null);
    if !matches!(data, Value::Null | Value::Object(_)) {
        problems.push(("data".into(), "must be an object".into()));
    }
    // PostgreSQL cannot store NUL in JSON text.
    if data.to_string().contains("\\u0000") {
        problems.push(("data".into(), "must not contain NUL characters".into()));
    }
    match (id, event_type) {
        (Some(id), Some(event_type)) if problems.is_empty() => Ok(Event {
            id,
            event_type,
            occurred_at,
            organization,
            target,
            data,
        }),
        (id, event_type) => {
            if id.is_none() && !object.contains_key("id") {
                problems.push(("id".into(), "is required: the sender's event id".into()));
            }
            if event_type.is_none() && !object.contains_key("type") {
                problems.push(("type".into(), "is required".into()));
            }
            Err(problems)
        }
    }
}

/// A parsed `Tenantry-Signature` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub timestamp: i64,
    pub signatures: Vec<[u8; 32]>,
}

/// Parses `t=<unix>,v1=<hex>[,v1=<hex>…]`; unknown schemes are ignored (for future ones).
pub fn parse_signature(header: &str) -> Option<Signature> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        match key {
            "t" => timestamp = Some(value.parse::<i64>().ok()?),
            "v1" => {
                let mut bytes = [0u8; 32];
                if value.len() != 64 {
                    return None;
                }
                for (i, chunk) in value.as_bytes().chunks(2).enumerate() {
                    let hex = std::str::from_utf8(chunk).ok()?;
                    bytes[i] = u8::from_str_radix(hex, 16).ok()?;
                }
                signatures.push(bytes);
            }
            _ => {}
        }
    }
    if signatures.is_empty() || signatures.len() > MAX_SIGNATURES {
        return None;
    }
    Some(Signature {
        timestamp: timestamp?,
        signatures,
    })
}

/// Whether a signature made at `timestamp` may still be accepted at `now`.
pub fn fresh(timestamp: i64, now: i64) -> bool {
    now.abs_diff(timestamp) <= SIGNATURE_TOLERANCE_SECS.unsigned_abs()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn signature_headers_parse_with_several_signatures() {
        let a = "a".repeat(64);
        let b = "0b".repeat(32);
        let parsed = parse_signature(&format!("t=1700000000,v1={a},v1={b}")).expect("parses");
        assert_eq!(parsed.timestamp, 1_700_000_000);
        assert_eq!(parsed.signatures.len(), 2);
        assert_eq!(parsed.signatures[1][0], 0x0b);
        assert!(parse_signature("t=1700000000").is_none(), "no signature");
        assert!(
            parse_signature(&format!("v1={a}")).is_none(),
            "no timestamp"
        );
        assert!(parse_signature("t=1,v1=zz").is_none());
        assert!(fresh(1000, 1300) && !fresh(1000, 1301) && fresh(1300, 1000));
    }

    #[test]
    fn rules_accept_only_actions_a_webhook_can_drive() {
        let good = vec![Rule {
            event: "user.compromised".into(),
            actions: vec![
                ActionKind::RevokeSessions,
                ActionKind::PasswordReset,
                ActionKind::MfaReset,
            ],
            approval: RuleApproval::Policy,
        }];
        assert!(rule_problems(&good).is_empty());
        let bad = vec![Rule {
            event: "User Compromised".into(),
            actions: vec![ActionKind::GrantAccess],
            approval: RuleApproval::None,
        }];
        let fields: Vec<String> = rule_problems(&bad).into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["rules[0].event", "rules[0].actions"]);
    }

    #[test]
    fn events_need_an_id_and_a_type() {
        let event = parse_event(&json!({"id": "evt-1", "type": "user.compromised",
            "target": "ana@contoso.com", "data": {"severity": "high"}}))
        .expect("valid");
        assert_eq!(event.target.as_deref(), Some("ana@contoso.com"));
        let problems = parse_event(&json!({"type": "x", "extra": 1})).expect_err("invalid");
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["extra", "id"]);
    }
}
