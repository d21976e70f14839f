//! Inbox rules (`Get-InboxRule -IncludeHidden`, graph-facts-next §2.10.9), read on demand for
//! one mailbox and judged the way BEC remediation judges them: a rule that forwards or
//! redirects mail, deletes it, or moves it where its owner does not look (RSS Feeds,
//! Archive, Conversation History) is suspicious, more so when it is hidden. Built-in rules
//! (`Junk E-Mail Rule`, `Microsoft.Exchange.OOF.*`) are listed but never suspicious, and
//! never disabled.

use serde::Serialize;
use serde_json::Value;

/// Folders mail is moved to so that its owner does not see it (observed in BEC cases;
/// the list is Tenantry's choice).
const HIDING_FOLDERS: [&str; 4] = [
    "RSS Feeds",
    "RSS Subscriptions",
    "Archive",
    "Conversation History",
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InboxRule {
    /// `Alias\RuleIdentity`: what `Disable-InboxRule -Identity` takes.
    pub identity: String,
    pub name: String,
    pub enabled: bool,
    pub priority: Option<i64>,
    pub forward_to: Vec<String>,
    pub redirect_to: Vec<String>,
    pub move_to_folder: Option<String>,
    pub delete_message: bool,
    pub subject_or_body_contains: Vec<String>,
    /// Exchange's own rule (junk mail, out of office): shown, never touched.
    pub built_in: bool,
    /// `Delegate Rule -N`: Outlook's delegate rules, which Exchange refuses to disable.
    pub delegate_rule: bool,
    /// Why the rule looks like an attacker's, empty when it does not.
    pub suspicious: Vec<&'static str>,
}

fn strings(row: &Value, name: &str) -> Vec<String> {
    row[name]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn is_built_in(name: &str) -> bool {
    name == "Junk E-Mail Rule" || name.starts_with("Microsoft.Exchange.OOF.")
}

fn is_delegate_rule(name: &str) -> bool {
    name.strip_prefix("Delegate Rule -")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl InboxRule {
    /// A `Get-InboxRule` row; `None` without its identity or name.
    pub fn from_row(row: &Value) -> Option<Self> {
        let name = row["Name"].as_str()?.to_owned();
        let mut rule = Self {
            identity: row["Identity"].as_str()?.to_owned(),
            enabled: row["Enabled"].as_bool().unwrap_or(false),
            priority: row["Priority"].as_i64(),
            forward_to: strings(row, "ForwardTo"),
            redirect_to: strings(row, "RedirectTo"),
            move_to_folder: row["MoveToFolder"].as_str().map(str::to_owned),
            delete_message: row["DeleteMessage"].as_bool().unwrap_or(false),
            subject_or_body_contains: strings(row, "SubjectOrBodyContainsWords"),
            built_in: is_built_in(&name),
            delegate_rule: is_delegate_rule(&name),
            suspicious: Vec::new(),
            name,
        };
        rule.suspicious = rule.judge();
        Some(rule)
    }

    fn judge(&self) -> Vec<&'static str> {
        if self.built_in {
            return Vec::new();
        }
        let mut reasons = Vec::new();
        if !self.forward_to.is_empty() || !self.redirect_to.is_empty() {
            reasons.push("forwards or redirects mail");
        }
        if self.delete_message {
            reasons.push("deletes mail");
        }
        if self.move_to_folder.as_deref().is_some_and(|f| {
            HIDING_FOLDERS
                .iter()
                .any(|h| f.eq_ignore_ascii_case(h) || f.ends_with(&format!("\\{h}")))
        }) {
            reasons.push("moves mail to a folder its owner does not read");
        }
        if !reasons.is_empty() && self.name.trim_matches(['.', ' ', '-', '_']).is_empty() {
            reasons.push("has no real name");
        }
        reasons
    }

    /// Whether BEC remediation disables it: enabled, not built in, not a delegate rule.
    pub fn to_disable(&self) -> bool {
        self.enabled && !self.built_in && !self.delegate_rule
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_are_judged_as_bec_remediation_judges_them() {
        let hidden = InboxRule::from_row(&json!({
            "Identity": "allan\\16752869479666417665", "Name": ".", "Enabled": true,
            "DeleteMessage": true, "SubjectOrBodyContainsWords": ["password"]
        }))
        .expect("rule");
        assert_eq!(hidden.suspicious, ["deletes mail", "has no real name"]);
        assert!(hidden.to_disable());
        let rss = InboxRule::from_row(&json!({
            "Identity": "a\\1", "Name": "Invoices", "Enabled": true, "MoveToFolder": "RSS Feeds"
        }))
        .expect("rule");
        assert_eq!(
            rss.suspicious,
            ["moves mail to a folder its owner does not read"]
        );
        let junk = InboxRule::from_row(&json!({
            "Identity": "a\\2", "Name": "Junk E-Mail Rule", "Enabled": true, "DeleteMessage": true
        }))
        .expect("rule");
        assert!(junk.built_in && junk.suspicious.is_empty() && !junk.to_disable());
        let delegate = InboxRule::from_row(&json!({
            "Identity": "a\\3", "Name": "Delegate Rule -12", "Enabled": true, "ForwardTo": ["x@y.z"]
        }))
        .expect("rule");
        assert!(delegate.delegate_rule && !delegate.to_disable());
        assert!(InboxRule::from_row(&json!({"Name": "no identity"})).is_none());
    }
}
