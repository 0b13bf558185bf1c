//! An in-process store: the embedded default and the store tests use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::store::{
    ClearExpired, LoadedRecord, SaveMode, SessionRecord, SessionStore, SharedRecord,
    StoreCapabilities, Version, VersionedRecord,
};
use crate::value::Dict;
use crate::{Error, SessionKey};

/// Sessions kept in this process's memory, with their expiry honoured.
///
/// Data is kept as values (no encoding, no signing: nothing else reads it), shared with the
/// sessions that load it: a [`Session`](crate::Session) loads it as a reference-count bump, copies
/// it only when it changes it, and hands the changed data over on save. So it is fast, but it is lost when the process exits and is
/// not shared between processes: use it for tests, demos and single-process services. Expired
/// records are never returned; they are dropped by [`clear_expired`](SessionStore::clear_expired)
/// and whenever a save finds one in its way. For a bounded in-process cache, see `session-cache`.
///
/// It can compare-and-swap (the `merge` and `reject` [concurrency
/// policies](crate::ConcurrencyPolicy)): every write stamps the record with a fresh number from a
/// store-wide counter, and a conditional save checks it under the same lock that writes.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// Hashed with foldhash, randomly seeded per map, as `Dict`'s index is: SipHash took about
    /// 500 instructions of each request's load and save. Keys that collide cannot be chosen
    /// without the seed, and new sessions get generated keys, not ones a client sent.
    records: Mutex<Records>,
    // Only ever read and bumped under `records`' lock; a plain counter would do, but the lock
    // guards the map, not the store.
    writes: std::sync::atomic::AtomicU64,
}

type Records = HashMap<SessionKey, Stored, foldhash::fast::RandomState>;

#[derive(Debug)]
struct Stored {
    data: Arc<Dict>,
    expires_at: OffsetDateTime,
    /// `expires_at` in the unit liveness is checked in.
    expires_nanos: i128,
    version: u64,
}

impl Stored {
    fn new(data: Arc<Dict>, expires_at: OffsetDateTime, version: u64) -> Self {
        Stored {
            data,
            expires_at,
            expires_nanos: expires_at.unix_timestamp_nanos(),
            version,
        }
    }

    fn is_live(&self, now: UnixNanos) -> bool {
        // Django's db backend: a record is live while expire_date > now.
        self.expires_nanos > now.0
    }
}

/// The clock as nanoseconds since the Unix epoch, the clock `OffsetDateTime::now_utc` reads
/// without its conversion to a calendar date (about 100 instructions of each load and save).
#[derive(Debug, Clone, Copy)]
struct UnixNanos(i128);

impl UnixNanos {
    fn now() -> Self {
        let nanos = |duration: std::time::Duration| {
            i128::try_from(duration.as_nanos()).unwrap_or(i128::MAX)
        };
        UnixNanos(match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(after) => nanos(after),
            Err(before) => -nanos(before.duration()),
        })
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn records(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get_live(&self, key: &SessionKey) -> Option<Arc<Dict>> {
        let now = UnixNanos::now();
        self.records()
            .get(key)
            .filter(|stored| stored.is_live(now))
            .map(|stored| Arc::clone(&stored.data))
    }

    fn put(
        &self,
        key: &SessionKey,
        data: Arc<Dict>,
        expires_at: OffsetDateTime,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        let now = UnixNanos::now();
        let mut records = self.records();
        let stored = Stored::new(data, expires_at, self.next_version());
        if let Some(held) = records.get_mut(key) {
            let live = held.is_live(now);
            match mode {
                SaveMode::MustCreate if live => return Err(Error::CreateConflict),
                SaveMode::Update if !live => return Err(Error::SessionDeleted),
                _ => {}
            }
            // The replaced data is dropped after the lock: freeing a large dict need not hold up
            // every other session.
            let replaced = std::mem::replace(held, stored);
            drop(records);
            drop(replaced);
        } else if mode == SaveMode::Update {
            return Err(Error::SessionDeleted);
        } else {
            records.insert(key.clone(), stored);
        }
        Ok(key.clone())
    }

    fn next_version(&self) -> u64 {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .wrapping_add(1)
    }

    /// How many records are held, live or expired.
    pub fn len(&self) -> usize {
        self.records().len()
    }

    /// Whether the store holds no records.
    pub fn is_empty(&self) -> bool {
        self.records().is_empty()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        Ok(self.get_live(key).map(Arc::unwrap_or_clone))
    }

    async fn load_shared(&self, key: &SessionKey) -> Result<Option<Arc<Dict>>, Error> {
        Ok(self.get_live(key))
    }

    async fn load_with_expiry(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        let now = UnixNanos::now();
        Ok(self
            .records()
            .get(key)
            .filter(|stored| stored.is_live(now))
            .map(|stored| LoadedRecord {
                data: Dict::clone(&stored.data),
                expires_at: Some(stored.expires_at),
            }))
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        let now = UnixNanos::now();
        Ok(self.records().get(key).is_some_and(|s| s.is_live(now)))
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.put(key, Arc::new(record.data.clone()), record.expires_at, mode)
    }

    async fn save_shared(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.put(key, record.data, record.expires_at, mode)
    }

    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities::COMPARE_AND_SWAP
    }

    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        let now = UnixNanos::now();
        Ok(self
            .records()
            .get(key)
            .filter(|stored| stored.is_live(now))
            .map(|stored| VersionedRecord {
                data: Arc::clone(&stored.data),
                version: Version::from_counter(stored.version),
                expires_at: Some(stored.expires_at),
            }))
    }

    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, Error> {
        let now = UnixNanos::now();
        let mut records = self.records();
        let held = match records.get_mut(key) {
            Some(held) if held.is_live(now) => held,
            _ => return Err(Error::SessionDeleted),
        };
        if expected.as_counter() != Some(held.version) {
            return Err(Error::Conflict);
        }
        let version = self.next_version();
        let replaced =
            std::mem::replace(held, Stored::new(record.data, record.expires_at, version));
        drop(records);
        drop(replaced);
        Ok(Version::from_counter(version))
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.records().remove(key);
        Ok(())
    }

    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        let now = UnixNanos::now();
        let mut records = self.records();
        let before = records.len();
        records.retain(|_, stored| stored.is_live(now));
        Ok(ClearExpired::Removed((before - records.len()) as u64))
    }
}
