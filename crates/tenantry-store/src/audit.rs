//! The audit log: append-only events chained by SHA-256 per MSP. Each event stores the
//! previous event's hash and its own, computed over a canonical rendering of its content
//! (object keys sorted, times in microseconds), so editing, deleting or reordering a row
//! breaks the chain where it happened and `verify` names that place.
//!
//! Events are appended inside the transaction of the change they record, under a per-MSP
//! advisory lock, so the log never misses a change and the chain never forks.

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use tenantry_domain::{ActionId, MspId, OrganizationId};
use uuid::Uuid;

use crate::error::StoreError;
use crate::ids::NullableUuid;

/// The advisory-lock class of audit chains (the key is the MSP id's hash).
const AUDIT_LOCK_CLASS: i32 = 0x7A55;
/// The link before the first event.
const GENESIS: [u8; 32] = [0; 32];

/// An event to append.
#[derive(Clone, Debug, Default)]
pub struct NewEvent {
    /// What happened, e.g. `action.requested`, `action.approved`, `policy.updated`.
    pub kind: &'static str,
    /// Who: `{"type": "api_key", "api_key_id", "role", "name", "operator": {"id", "name"}}`,
    /// `{"type": "employee", "user_id", "via_api_key_id", "via_operator"}`,
    /// `{"type": "webhook_endpoint", …}` or `{"type": "system", "component"}`.
    pub actor: Value,
    pub organization_id: Option<Uuid>,
    pub action_id: Option<Uuid>,
    pub action: Option<String>,
    pub targets: Value,
    /// Never a secret: callers pass redacted parameters.
    pub parameters: Value,
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub graph_request_ids: Vec<String>,
}

/// A stored event, as listed and exported.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct AuditEvent {
    pub seq: i64,
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub kind: String,
    pub actor: Value,
    #[sqlx(try_from = "NullableUuid")]
    pub organization_id: Option<OrganizationId>,
    #[sqlx(try_from = "NullableUuid")]
    pub action_id: Option<ActionId>,
    pub action: Option<String>,
    pub targets: Value,
    pub parameters: Value,
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub graph_request_ids: Vec<String>,
    #[serde(serialize_with = "as_hex")]
    pub prev_hash: Vec<u8>,
    #[serde(serialize_with = "as_hex")]
    pub hash: Vec<u8>,
}

fn as_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

/// `value` with every object's keys in sorted order (JSONB does not keep the order they
/// were written in, so the hash must not depend on it). Also the form request bodies are
/// fingerprinted in for idempotency keys.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut sorted = Map::new();
            for key in keys {
                sorted.insert(key.clone(), canonical(&map[key]));
            }
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The hash of an event: SHA-256 over the previous hash and the canonical JSON of
/// everything the event says.
fn event_hash(msp: Uuid, event: &AuditEvent) -> [u8; 32] {
    let content = serde_json::json!({
        "msp_id": msp,
        "seq": event.seq,
        "event_id": event.event_id,
        "occurred_at": event.occurred_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "kind": event.kind,
        "actor": event.actor,
        "organization_id": event.organization_id,
        "action_id": event.action_id,
        "action": event.action,
        "targets": event.targets,
        "parameters": event.parameters,
        "decision": event.decision,
        "reason": event.reason,
        "graph_request_ids": event.graph_request_ids,
    });
    let mut hasher = Sha256::new();
    hasher.update(&event.prev_hash);
    hasher.update(canonical(&content).to_string().as_bytes());
    hasher.finalize().into()
}

/// Appends `event` to `msp`'s chain, in the caller's transaction.
pub async fn append(
    conn: &mut PgConnection,
    msp: MspId,
    event: NewEvent,
) -> Result<Uuid, StoreError> {
    sqlx::query("select pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(AUDIT_LOCK_CLASS)
        .bind(msp.as_uuid())
        .execute(&mut *conn)
        .await?;
    let last: Option<(i64, Vec<u8>)> = sqlx::query_as(
        "select seq, hash from audit_event where msp_id = $1 order by seq desc limit 1",
    )
    .bind(msp.as_uuid())
    .fetch_optional(&mut *conn)
    .await?;
    let (seq, prev_hash) = last.map_or((1, GENESIS.to_vec()), |(seq, hash)| (seq + 1, hash));
    let mut stored = AuditEvent {
        seq,
        event_id: Uuid::now_v7(),
        // Microseconds: what PostgreSQL keeps, so the hash survives the round trip.
        occurred_at: Utc::now().trunc_subsecs(6),
        kind: event.kind.to_owned(),
        actor: event.actor,
        organization_id: event.organization_id.map(OrganizationId::from),
        action_id: event.action_id.map(ActionId::from),
        action: event.action,
        targets: if event.targets.is_null() {
            Value::Array(Vec::new())
        } else {
            event.targets
        },
        parameters: if event.parameters.is_null() {
            Value::Object(Map::new())
        } else {
            event.parameters
        },
        decision: event.decision,
        reason: event.reason,
        graph_request_ids: event.graph_request_ids,
        prev_hash,
        hash: Vec::new(),
    };
    stored.hash = event_hash(msp.as_uuid(), &stored).to_vec();
    sqlx::query(
        "insert into audit_event (msp_id, seq, event_id, occurred_at, kind, actor, organization_id,
             action_id, action, targets, parameters, decision, reason, graph_request_ids, prev_hash, hash)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(msp.as_uuid())
    .bind(stored.seq)
    .bind(stored.event_id)
    .bind(stored.occurred_at)
    .bind(&stored.kind)
    .bind(&stored.actor)
    .bind(stored.organization_id.map(Uuid::from))
    .bind(stored.action_id.map(Uuid::from))
    .bind(&stored.action)
    .bind(&stored.targets)
    .bind(&stored.parameters)
    .bind(&stored.decision)
    .bind(&stored.reason)
    .bind(&stored.graph_request_ids)
    .bind(&stored.prev_hash)
    .bind(&stored.hash)
    .execute(&mut *conn)
    .await?;
    Ok(stored.event_id)
}

/// Which events to list or export.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub organization: Option<Uuid>,
    pub action_id: Option<Uuid>,
    pub kind: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "seq, event_id, occurred_at, kind, actor, organization_id, action_id, action, targets, parameters, decision, reason, graph_request_ids, prev_hash, hash";

/// Events of `msp` matching `filter` and visible to a key limited to `organizations`
/// (`None`: all), newest first (`descending`) or oldest first, after `cursor` (a seq).
pub(crate) async fn page(
    db: &PgPool,
    msp: MspId,
    organizations: Option<&[Uuid]>,
    filter: &AuditFilter,
    cursor: Option<i64>,
    limit: i64,
    descending: bool,
) -> Result<Vec<AuditEvent>, StoreError> {
    let (order, compare) = if descending {
        ("desc", "<")
    } else {
        ("asc", ">")
    };
    let sql = format!(
        "select {COLUMNS} from audit_event
         where msp_id = $1
           and ($2::uuid[] is null or organization_id = any($2))
           and ($3::uuid is null or organization_id = $3)
           and ($4::uuid is null or action_id = $4)
           and ($5::text is null or kind = $5)
           and ($6::timestamptz is null or occurred_at >= $6)
           and ($7::timestamptz is null or occurred_at < $7)
           and ($8::bigint is null or seq {compare} $8)
         order by seq {order} limit $9"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(msp.as_uuid())
        .bind(organizations)
        .bind(filter.organization)
        .bind(filter.action_id)
        .bind(&filter.kind)
        .bind(filter.since)
        .bind(filter.until)
        .bind(cursor)
        .bind(limit)
        .fetch_all(db)
        .await?)
}

/// What walking a chain found.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Verification {
    pub valid: bool,
    pub events_checked: i64,
    /// The hash of the last event: keep it elsewhere to detect the newest events being
    /// cut off, which no chain can show by itself.
    pub head_hash: Option<String>,
    pub first_broken: Option<BrokenLink>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BrokenLink {
    pub seq: i64,
    pub event_id: Uuid,
    /// `content_changed`, `link_broken` (the previous event was changed or removed) or
    /// `sequence_gap` (events before this one were removed).
    pub problem: &'static str,
}

/// Walks `msp`'s whole chain from the first event, in pages.
pub(crate) async fn verify(db: &PgPool, msp: MspId) -> Result<Verification, StoreError> {
    let mut expected_prev = GENESIS.to_vec();
    let mut expected_seq = 1;
    let mut checked = 0;
    let mut cursor = None;
    loop {
        let events = page(db, msp, None, &AuditFilter::default(), cursor, 1000, false).await?;
        let Some(last) = events.last() else {
            break;
        };
        cursor = Some(last.seq);
        for event in &events {
            checked += 1;
            let problem = if event.seq != expected_seq {
                Some("sequence_gap")
            } else if event.prev_hash != expected_prev {
                Some("link_broken")
            } else if event.hash != event_hash(msp.as_uuid(), event) {
                Some("content_changed")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Ok(Verification {
                    valid: false,
                    events_checked: checked,
                    head_hash: None,
                    first_broken: Some(BrokenLink {
                        seq: event.seq,
                        event_id: event.event_id,
                        problem,
                    }),
                });
            }
            expected_prev = event.hash.clone();
            expected_seq = event.seq + 1;
        }
    }
    Ok(Verification {
        valid: true,
        events_checked: checked,
        head_hash: (checked > 0).then(|| hex::encode(&expected_prev)),
        first_broken: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_ignores_key_order_but_not_content() {
        let mut event = AuditEvent {
            seq: 1,
            event_id: Uuid::nil(),
            occurred_at: DateTime::from_timestamp(1_700_000_000, 123_456_000).expect("time"),
            kind: "action.requested".into(),
            actor: serde_json::json!({"type": "api_key", "role": "technician"}),
            organization_id: None,
            action_id: None,
            action: Some("password_reset".into()),
            targets: serde_json::json!([]),
            parameters: serde_json::json!({}),
            decision: None,
            reason: None,
            graph_request_ids: Vec::new(),
            prev_hash: GENESIS.to_vec(),
            hash: Vec::new(),
        };
        let first = event_hash(Uuid::nil(), &event);
        event.actor = serde_json::json!({"role": "technician", "type": "api_key"});
        assert_eq!(event_hash(Uuid::nil(), &event), first);
        event.action = Some("mfa_reset".into());
        assert_ne!(event_hash(Uuid::nil(), &event), first);
    }
}
