//! Verified API keys held in memory, so that authenticating a request costs no database
//! round trip, and the `last_used_at` writes batched in the background.
//!
//! What is cached is a key's *row* (its digest, whether it is revoked, the principal it
//! makes, and the key and MSP rows `GET /api/v1/me` answers with), never a secret: every request is still verified against the digest in constant
//! time, so a wrong secret for a cached key id is refused exactly as before.
//!
//! The cache is trusted only while this process listens on [`API_KEYS_CHANNEL`]: a
//! revocation publishes the key id there in its own transaction, and every listening
//! process forgets the key when it commits. Without a live listener (it never started,
//! or its connection dropped and may have missed messages) every request reads the row
//! again. [`CACHE_TTL`] is the backstop for anything that changes a key without telling
//! the channel. An entry is stored only if no change arrived while its row was being read,
//! so a row read just before a revocation cannot be cached after the revocation's
//! notice went by.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tenantry_domain::{ApiKeyRecordId, KeyId};

use crate::api_keys::ApiKeyRecord;
use crate::operator::MspRecord;
use crate::principal::Principal;

/// The channel on which key changes are published; the payload is the key's public id.
pub(crate) const API_KEYS_CHANNEL: &str = "tenantry_api_keys";

/// How long an entry is trusted without any notice: the bound on a change that was not
/// published (there is none today; a lost notice clears the whole cache instead).
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(60);

/// At most this many keys are held; beyond it, new keys are verified from the database
/// every time until entries expire (unknown ids are never held, so guessing cannot fill it).
const CAPACITY: usize = 50_000;

/// `last_used_at` has a minute's precision: a use within a minute of the last one noted
/// for the key is not written again.
const USE_PRECISION: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// A key's row as authentication needs it, and as `GET /api/v1/me` shows it (with its
/// MSP's row): neither changes while the key is live but for `last_used_at`, which this
/// process knows at least as well as the database does.
#[derive(Debug)]
pub(crate) struct KnownKey {
    pub secret_hmac: Vec<u8>,
    pub revoked: bool,
    pub principal: Principal,
    pub shown: (MspRecord, ApiKeyRecord),
}

struct Entry {
    key: Arc<KnownKey>,
    read_at: Instant,
}

#[derive(Default)]
pub(crate) struct KeyCache {
    live: AtomicBool,
    /// Bumped by every change notice and every loss of the listener.
    generation: AtomicU64,
    entries: Mutex<HashMap<KeyId, Entry>>,
    usage: Mutex<Usage>,
    from_memory: AtomicU64,
    from_database: AtomicU64,
}

/// How many key rows authentication took from memory and from the database, since the
/// process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyLookups {
    pub memory: u64,
    pub database: u64,
}

#[derive(Default)]
struct Usage {
    /// Uses not yet written, latest per key.
    pending: HashMap<ApiKeyRecordId, DateTime<Utc>>,
    /// The last use written (or queued) per key.
    noted: HashMap<ApiKeyRecordId, DateTime<Utc>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain maps that are still consistent.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl KeyCache {
    /// Whether entries are trusted (a listener is live) and uses are written in batches.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Starts trusting the cache: called once the listener is listening. Anything held
    /// from before is dropped, since notices may have been missed.
    pub fn go_live(&self) {
        self.forget_all();
        self.live.store(true, Ordering::Release);
    }

    /// Stops trusting the cache (the listener is gone) and drops it.
    pub fn go_dark(&self) {
        self.live.store(false, Ordering::Release);
        self.forget_all();
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The entry for `key_id` while the cache is trusted and the entry within its TTL.
    fn fresh(&self, key_id: &KeyId) -> Option<Arc<KnownKey>> {
        if !self.is_live() {
            return None;
        }
        lock(&self.entries)
            .get(key_id)
            .filter(|entry| entry.read_at.elapsed() < CACHE_TTL)
            .map(|entry| entry.key.clone())
    }

    pub fn get(&self, key_id: &KeyId) -> Option<Arc<KnownKey>> {
        let found = self.fresh(key_id);
        let counter = if found.is_some() {
            &self.from_memory
        } else {
            &self.from_database
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// The key and its MSP as `GET /api/v1/me` shows them, when the key is held (and the
    /// cache trusted); `last_used_at` is the later of the row's and this process's last
    /// noted use. Not counted as a lookup: authentication already counted this request.
    pub fn shown(&self, key_id: &KeyId) -> Option<(MspRecord, ApiKeyRecord)> {
        let (msp, mut key) = self.fresh(key_id)?.shown.clone();
        let noted = lock(&self.usage).noted.get(&key.id).copied();
        key.last_used_at = key.last_used_at.max(noted);
        Some((msp, key))
    }

    pub fn lookups(&self) -> KeyLookups {
        KeyLookups {
            memory: self.from_memory.load(Ordering::Relaxed),
            database: self.from_database.load(Ordering::Relaxed),
        }
    }

    /// Holds a row read while the cache was at `generation`, unless a change arrived since.
    pub fn insert(&self, key_id: KeyId, key: Arc<KnownKey>, generation: u64) {
        if !self.is_live() {
            return;
        }
        let mut entries = lock(&self.entries);
        if self.generation() != generation {
            return;
        }
        if entries.len() >= CAPACITY {
            entries.retain(|_, entry| entry.read_at.elapsed() < CACHE_TTL);
            if entries.len() >= CAPACITY {
                return;
            }
        }
        let read_at = Instant::now();
        entries.insert(key_id, Entry { key, read_at });
    }

    pub fn forget(&self, key_id: &KeyId) {
        let mut entries = lock(&self.entries);
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(key_id);
    }

    pub fn forget_all(&self) {
        let mut entries = lock(&self.entries);
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    /// Notes a use at `at`; returns whether it is news (more than a minute after the last
    /// use noted for the key), i.e. whether `last_used_at` should be written.
    pub fn note_use(&self, id: ApiKeyRecordId, at: DateTime<Utc>) -> bool {
        let mut usage = lock(&self.usage);
        if usage
            .noted
            .get(&id)
            .is_some_and(|last| at - *last < USE_PRECISION)
        {
            return false;
        }
        usage.noted.insert(id, at);
        if self.is_live() {
            usage.pending.insert(id, at);
        }
        true
    }

    /// The uses to write now, taken out of the cache.
    pub fn take_pending_uses(&self) -> Vec<(ApiKeyRecordId, DateTime<Utc>)> {
        let mut usage = lock(&self.usage);
        // Bounded: a key not used for a while is noted again on its next use.
        if usage.noted.len() > CAPACITY {
            usage.noted.clear();
        }
        usage.pending.drain().collect()
    }

    /// Puts back uses whose write failed, unless a later use of the key is pending.
    pub fn requeue_uses(&self, uses: Vec<(ApiKeyRecordId, DateTime<Utc>)>) {
        let mut usage = lock(&self.usage);
        for (id, at) in uses {
            usage.pending.entry(id).or_insert(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry_domain::{MspId, OrganizationLimit, Role};

    fn known(revoked: bool) -> Arc<KnownKey> {
        let operator = crate::operators::record(uuid::Uuid::nil(), "Ops".into());
        let (msp, id) = (
            MspId::from_uuid(uuid::Uuid::nil()),
            ApiKeyRecordId::from_uuid(uuid::Uuid::nil()),
        );
        let created_at = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("time");
        Arc::new(KnownKey {
            secret_hmac: vec![1; 32],
            revoked,
            principal: Principal::new(
                msp,
                id,
                key_id(),
                Role::Owner,
                OrganizationLimit::All,
                operator.clone(),
            ),
            shown: (
                MspRecord {
                    id: msp,
                    name: "Contoso IT".into(),
                    created_at,
                },
                ApiKeyRecord {
                    id,
                    msp_id: msp,
                    key_id: key_id(),
                    name: "laptop".into(),
                    role: Role::Owner,
                    organizations: OrganizationLimit::All,
                    operator,
                    created_by: None,
                    created_at,
                    last_used_at: Some(created_at),
                    revoked_at: None,
                },
            ),
        })
    }

    #[test]
    fn the_key_is_shown_with_the_later_of_its_rows_use_and_this_processs() {
        let cache = KeyCache::default();
        cache.insert(key_id(), known(false), cache.generation());
        assert!(
            cache.shown(&key_id()).is_none(),
            "not trusted before the listener"
        );
        cache.go_live();
        cache.insert(key_id(), known(false), cache.generation());
        let (msp, key) = cache.shown(&key_id()).expect("held");
        assert_eq!(msp.name, "Contoso IT");
        assert_eq!(key.last_used_at, known(false).shown.1.last_used_at);
        let now = Utc::now();
        assert!(cache.note_use(key.id, now));
        let (_, key) = cache.shown(&key_id()).expect("held");
        assert_eq!(key.last_used_at, Some(now));
        cache.go_dark();
        assert!(
            cache.shown(&key_id()).is_none(),
            "dropped with the listener"
        );
    }

    fn key_id() -> KeyId {
        KeyId::parse("0123456789abcdef").expect("key id")
    }

    #[test]
    fn holds_nothing_until_live() {
        let cache = KeyCache::default();
        cache.insert(key_id(), known(false), cache.generation());
        assert!(cache.get(&key_id()).is_none());
        cache.go_live();
        cache.insert(key_id(), known(false), cache.generation());
        assert!(cache.get(&key_id()).is_some());
        cache.go_dark();
        assert!(cache.get(&key_id()).is_none(), "dark drops and bypasses");
    }

    #[test]
    fn a_row_read_before_a_change_notice_is_not_held() {
        let cache = KeyCache::default();
        cache.go_live();
        let before = cache.generation();
        cache.forget(&key_id());
        cache.insert(key_id(), known(false), before);
        assert!(cache.get(&key_id()).is_none());
    }

    #[test]
    fn forgetting_drops_the_entry() {
        let cache = KeyCache::default();
        cache.go_live();
        cache.insert(key_id(), known(false), cache.generation());
        cache.forget(&key_id());
        assert!(cache.get(&key_id()).is_none());
    }

    #[test]
    fn uses_are_noted_once_a_minute() {
        let cache = KeyCache::default();
        cache.go_live();
        let id = ApiKeyRecordId::from_uuid(uuid::Uuid::nil());
        let now = Utc::now();
        assert!(cache.note_use(id, now));
        assert!(!cache.note_use(id, now + chrono::TimeDelta::seconds(59)));
        assert!(cache.note_use(id, now + chrono::TimeDelta::seconds(61)));
        assert_eq!(cache.take_pending_uses().len(), 1);
        assert!(cache.take_pending_uses().is_empty());
    }
}
