//! Users: generated from the tenant's seed on demand (index → user), with writes kept as
//! overlays (patched copies, deletions, created users, managers). Listing, paging and
//! lookups never materialise the whole tenant.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::ids::{self, Kind};

const FIRST: [&str; 24] = [
    "Adele",
    "Alex",
    "Allan",
    "Diego",
    "Emily",
    "Grady",
    "Henrietta",
    "Isaiah",
    "Johanna",
    "Joni",
    "Lee",
    "Lidia",
    "Lynne",
    "Megan",
    "Miriam",
    "Nestor",
    "Patti",
    "Pradeep",
    "Sarah",
    "John",
    "Maria",
    "Wei",
    "Fatima",
    "Olga",
];
const LAST: [&str; 20] = [
    "Vance",
    "Wilber",
    "Deyoung",
    "Siciliani",
    "Braun",
    "Archie",
    "Mueller",
    "Henderson",
    "Lauer",
    "Sherman",
    "Gu",
    "Holloway",
    "Robbins",
    "Bowen",
    "Graham",
    "Wilke",
    "Fernandez",
    "Gupta",
    "Smith",
    "Garcia",
];
const DEPARTMENTS: [&str; 8] = [
    "Finance",
    "Sales",
    "Marketing",
    "IT",
    "Operations",
    "Legal",
    "HR",
    "Engineering",
];
const TITLES: [&str; 6] = [
    "Analyst",
    "Manager",
    "Specialist",
    "Director",
    "Coordinator",
    "Engineer",
];
const OFFICES: [&str; 4] = ["18/2111", "131/1104", "20/1101", "24/1106"];

/// The properties `/users` returns without `$select` (DOCS user-list.md).
pub const DEFAULT_PROPERTIES: [&str; 11] = [
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

/// Properties a `$select` may name (a subset of microsoft.graph.user); the first
/// [`GENERATED`] are the ones a generated user has.
pub const SELECTABLE: [&str; 28] = [
    "id",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "accountEnabled",
    "department",
    "usageLocation",
    "onPremisesSyncEnabled",
    "createdDateTime",
    "userType",
    "mailNickname",
    "assignedLicenses",
    "companyName",
    "employeeId",
    "city",
    "country",
    "state",
    "streetAddress",
    "postalCode",
    "passwordPolicies",
    "otherMails",
];
const GENERATED: usize = 19;

/// What a generated user is derived from.
#[derive(Clone, Copy)]
struct Seed {
    index: u32,
    h: u64,
    first: &'static str,
    last: &'static str,
    department: &'static str,
}

pub struct Users {
    prefix: u64,
    domain: String,
    generated: u32,
    patched: HashMap<u32, Map<String, Value>>,
    deleted: HashSet<u32>,
    created: Vec<Map<String, Value>>,
    upn_index: HashMap<String, u32>,
    /// user index → manager index (UNVERIFIED shape; graph-facts §6.6).
    managers: HashMap<u32, u32>,
}

impl Users {
    pub fn new(prefix: u64, domain: &str, generated: u32) -> Self {
        Self {
            prefix,
            domain: domain.to_owned(),
            generated,
            patched: HashMap::new(),
            deleted: HashSet::new(),
            created: Vec::new(),
            upn_index: HashMap::new(),
            managers: HashMap::new(),
        }
    }

    /// How many index slots exist (generated plus created); some may be deleted.
    pub fn slots(&self) -> u32 {
        self.generated + u32::try_from(self.created.len()).unwrap_or(u32::MAX)
    }

    pub fn id_at(&self, index: u32) -> Uuid {
        ids::generated(self.prefix, Kind::User, index)
    }

    /// The user at `index`, unless deleted.
    pub fn at(&self, index: u32) -> Option<Map<String, Value>> {
        if self.deleted.contains(&index) {
            return None;
        }
        if let Some(user) = self.patched.get(&index) {
            return Some(user.clone());
        }
        if index < self.generated {
            return Some(self.generate(index));
        }
        self.created.get((index - self.generated) as usize).cloned()
    }

    /// Finds a user by object id or user principal name.
    pub fn find(&self, key: &str) -> Option<u32> {
        match Uuid::parse_str(key) {
            Ok(id) => ids::index_of(self.prefix, Kind::User, id).filter(|i| self.is_live(*i)),
            Err(_) => self.find_by_upn(key),
        }
    }

    /// Finds a user by user principal name (case-insensitive).
    pub fn find_by_upn(&self, upn: &str) -> Option<u32> {
        let upn = upn.to_ascii_lowercase();
        let index = self
            .upn_index
            .get(&upn)
            .copied()
            .or_else(|| parse_generated_upn(&upn, &self.domain))?;
        // Generated UPNs are parsed by their number only, and a user may have moved away
        // from an older UPN: the name must still be the user's own.
        let current = self.upn_at(index)?;
        (self.is_live(index) && current.eq_ignore_ascii_case(&upn)).then_some(index)
    }

    /// The users whose `mail` is `mail` (case-insensitive), in index order: the overlays
    /// are searched, and a generated user is recognised by its address (mail = UPN).
    pub fn find_by_mail(&self, mail: &str) -> Vec<u32> {
        let matches = |user: &Map<String, Value>| {
            user.get("mail")
                .and_then(Value::as_str)
                .is_some_and(|m| m.eq_ignore_ascii_case(mail))
        };
        let mut found: Vec<u32> = self
            .patched
            .iter()
            .filter(|(_, user)| matches(user))
            .map(|(index, _)| *index)
            .collect();
        found.extend(
            (self.generated..)
                .zip(&self.created)
                .filter(|(_, user)| matches(user))
                .map(|(index, _)| index),
        );
        if let Some(index) = parse_generated_upn(&mail.to_ascii_lowercase(), &self.domain)
            && index < self.generated
            && !self.patched.contains_key(&index)
            && self
                .upn_at(index)
                .is_some_and(|upn| upn.eq_ignore_ascii_case(mail))
        {
            found.push(index);
        }
        found.retain(|index| self.is_live(*index));
        found.sort_unstable();
        found.dedup();
        found
    }

    /// Whether `index` names a user that exists (a slot that is not deleted).
    fn is_live(&self, index: u32) -> bool {
        index < self.slots() && !self.deleted.contains(&index)
    }

    /// The current user principal name of the user at `index`.
    fn upn_at(&self, index: u32) -> Option<String> {
        let stored = if let Some(user) = self.patched.get(&index) {
            user
        } else if index >= self.generated {
            self.created.get((index - self.generated) as usize)?
        } else {
            let seed = self.seed(index);
            return Some(generated_upn(seed.first, seed.last, index, &self.domain));
        };
        stored
            .get("userPrincipalName")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// The manager of the user at `index`, unless none was set or the manager is deleted.
    pub fn manager_of(&self, index: u32) -> Option<u32> {
        self.managers
            .get(&index)
            .copied()
            .filter(|manager| self.is_live(*manager))
    }

    pub fn set_manager(&mut self, index: u32, manager: u32) {
        self.managers.insert(index, manager);
    }

    /// Removes the manager of the user at `index`; `false` when there was none.
    pub fn remove_manager(&mut self, index: u32) -> bool {
        let had = self.manager_of(index).is_some();
        self.managers.remove(&index);
        had
    }

    pub fn replace(&mut self, index: u32, user: Map<String, Value>) {
        if let Some(upn) = user.get("userPrincipalName").and_then(Value::as_str) {
            self.upn_index.insert(upn.to_ascii_lowercase(), index);
        }
        if index >= self.generated
            && let Some(slot) = self.created.get_mut((index - self.generated) as usize)
        {
            *slot = user;
            return;
        }
        self.patched.insert(index, user);
    }

    pub fn delete(&mut self, index: u32) {
        self.deleted.insert(index);
    }

    /// Adds a user and returns its index; `fields` are the creation body's properties.
    pub fn create(&mut self, mut fields: Map<String, Value>) -> (u32, Map<String, Value>) {
        let index = self.slots();
        fields.insert("id".into(), json!(self.id_at(index)));
        if let Some(upn) = fields.get("userPrincipalName").and_then(Value::as_str) {
            self.upn_index.insert(upn.to_ascii_lowercase(), index);
        }
        self.created.push(fields.clone());
        (index, fields)
    }

    pub fn upn_taken(&self, upn: &str) -> bool {
        self.find(upn).is_some()
    }

    /// The user at `index` with only the `select`ed properties (or the default set),
    /// generating just those for untouched users: listing 50,000 users builds no more
    /// than it sends.
    pub fn view(&self, index: u32, select: Option<&[String]>) -> Option<Map<String, Value>> {
        if self.deleted.contains(&index) {
            return None;
        }
        if let Some(user) = self.patched.get(&index) {
            return Some(project(user, select));
        }
        if index >= self.generated {
            return self
                .created
                .get((index - self.generated) as usize)
                .map(|u| project(u, select));
        }
        let seed = self.seed(index);
        let mut out = Map::new();
        match select {
            Some(fields) => {
                for field in fields {
                    out.insert(field.clone(), self.field(&seed, field));
                }
            }
            None => {
                for field in DEFAULT_PROPERTIES {
                    out.insert(field.to_owned(), self.field(&seed, field));
                }
            }
        }
        Some(out)
    }

    fn generate(&self, index: u32) -> Map<String, Value> {
        let seed = self.seed(index);
        SELECTABLE[..GENERATED]
            .iter()
            .map(|field| ((*field).to_owned(), self.field(&seed, field)))
            .collect()
    }

    fn seed(&self, index: u32) -> Seed {
        let h = ids::stable_hash(&[&self.prefix.to_le_bytes(), &index.to_le_bytes()]);
        let pick = |n: usize, shift: u32| ((h >> shift) as usize) % n;
        let (first, last) = match index {
            0 => ("Megan", "Bowen"),
            1 => ("Adele", "Vance"),
            2 => ("Alex", "Wilber"),
            _ => (FIRST[pick(FIRST.len(), 0)], LAST[pick(LAST.len(), 8)]),
        };
        Seed {
            index,
            h,
            first,
            last,
            department: DEPARTMENTS[pick(DEPARTMENTS.len(), 16)],
        }
    }

    /// One property of a generated user.
    fn field(&self, seed: &Seed, name: &str) -> Value {
        let Seed {
            index,
            h,
            first,
            last,
            department,
        } = *seed;
        let pick = |n: usize, shift: u32| ((h >> shift) as usize) % n;
        match name {
            "id" => json!(self.id_at(index)),
            "businessPhones" => json!([format!("+1 425 555 {:04}", index % 10_000)]),
            "displayName" => json!(format!("{first} {last}")),
            "givenName" => json!(first),
            "surname" => json!(last),
            "jobTitle" => match index {
                0 => json!("IT Director"),
                1 => json!("User Administrator"),
                2 => json!("Helpdesk Technician"),
                _ => json!(format!("{department} {}", TITLES[pick(TITLES.len(), 24)])),
            },
            "mail" | "userPrincipalName" => json!(generated_upn(first, last, index, &self.domain)),
            "mobilePhone" if h.is_multiple_of(3) => Value::Null,
            "mobilePhone" => json!(format!("+1 206 555 {:04}", (h >> 32) % 10_000)),
            "officeLocation" => json!(OFFICES[pick(OFFICES.len(), 32)]),
            "preferredLanguage" => json!("en-US"),
            "accountEnabled" => json!(index < 3 || !h.is_multiple_of(23)),
            "department" => json!(department),
            "usageLocation" => json!("US"),
            "onPremisesSyncEnabled" if h.is_multiple_of(5) => json!(true),
            "createdDateTime" => json!(format!(
                "2021-0{}-{:02}T10:{:02}:00Z",
                1 + h % 9,
                1 + (h >> 8) % 28,
                (h >> 16) % 60
            )),
            "userType" => json!("Member"),
            // Generated users hold no licences (a simplification: subscribedSkus still
            // reports consumed units).
            "assignedLicenses" => json!([]),
            "mailNickname" => json!(format!(
                "{}.{}{index}",
                first.to_ascii_lowercase(),
                last.to_ascii_lowercase()
            )),
            _ => Value::Null,
        }
    }
}

fn generated_upn(first: &str, last: &str, index: u32, domain: &str) -> String {
    format!(
        "{}.{}{index}@{domain}",
        first.to_ascii_lowercase(),
        last.to_ascii_lowercase()
    )
}

/// `first.last123@domain` → 123, when the domain is the tenant's.
fn parse_generated_upn(upn: &str, domain: &str) -> Option<u32> {
    let (local, host) = upn.split_once('@')?;
    if !host.eq_ignore_ascii_case(domain) {
        return None;
    }
    let digits = local.len() - local.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    local[local.len() - digits..].parse().ok()
}

/// Applies `$select` (or the default property set) to a user.
pub fn project(user: &Map<String, Value>, select: Option<&[String]>) -> Map<String, Value> {
    let mut out = Map::new();
    match select {
        Some(fields) => {
            for field in fields {
                out.insert(
                    field.clone(),
                    user.get(field).cloned().unwrap_or(Value::Null),
                );
            }
        }
        None => {
            for field in DEFAULT_PROPERTIES {
                out.insert(
                    field.to_owned(),
                    user.get(field).cloned().unwrap_or(Value::Null),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_stable_and_found_by_id_and_upn() {
        let users = Users::new(42, "contoso.onmicrosoft.com", 1000);
        let a = users.at(500).expect("user");
        assert_eq!(a, users.at(500).expect("user"), "deterministic");
        let id = a["id"].as_str().expect("id");
        assert_eq!(users.find(id), Some(500));
        let upn = a["userPrincipalName"].as_str().expect("upn");
        assert_eq!(users.find(upn), Some(500));
        assert_eq!(users.find(&upn.to_uppercase()), Some(500));
        assert_eq!(users.find("nobody@contoso.onmicrosoft.com"), None);
        let digits = upn.trim_start_matches(|c: char| !c.is_ascii_digit());
        assert_eq!(
            users.find(&format!("nobody{digits}")),
            None,
            "only the user's own UPN finds it, not any name with its number"
        );
        assert_eq!(users.at(1000), None);
    }

    #[test]
    fn mail_lookups_follow_overlays() {
        let mut users = Users::new(42, "contoso.onmicrosoft.com", 100);
        let mut user = users.at(7).expect("user");
        let mail = user["mail"].as_str().expect("mail").to_owned();
        assert_eq!(users.find_by_mail(&mail.to_uppercase()), [7]);
        user.insert("mail".into(), json!("boss@contoso.example"));
        users.replace(7, user);
        assert_eq!(users.find_by_mail(&mail), Vec::<u32>::new());
        assert_eq!(users.find_by_mail("BOSS@contoso.example"), [7]);
        users.delete(7);
        assert_eq!(
            users.find_by_mail("boss@contoso.example"),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn managers_vanish_with_their_user() {
        let mut users = Users::new(42, "contoso.onmicrosoft.com", 10);
        assert_eq!(users.manager_of(3), None);
        users.set_manager(3, 4);
        assert_eq!(users.manager_of(3), Some(4));
        users.delete(4);
        assert_eq!(users.manager_of(3), None);
        assert!(!users.remove_manager(3));
        users.set_manager(3, 5);
        assert!(users.remove_manager(3));
        assert_eq!(users.manager_of(3), None);
    }
}
