//! The in-process cache: bounded, with per-entry lifetimes (moka).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use moka::Expiry;
use moka::future::Cache as Moka;
use moka::ops::compute::{CompResult, Op};

use crate::backend::{stamped, unstamp};
use crate::{CacheBackend, CacheError, Swap, Ttl, VersionedValue};

/// What bounds a [`MemoryCache`]. When the bound is reached, the least valuable entries are evicted
/// (moka's TinyLFU policy), as a Django `LocMemCache` culls at `MAX_ENTRIES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryBound {
    /// At most this many entries.
    Entries(u64),
    /// At most about this many bytes of keys and values (each entry also counts
    /// [`MemoryCache::ENTRY_OVERHEAD`] bytes of bookkeeping).
    Bytes(u64),
}

/// An in-process cache of byte values with per-entry lifetimes: the embedded default for sessions
/// that need no sharing between processes.
///
/// It holds the serialized bytes only (never live session objects), so what a session reads is
/// exactly what another would read from Redis, and clones of a value are reference-counted, not
/// copied. Every write (set, add, replace, delete) goes through moka's per-key `entry` computation,
/// so operations on one key are atomic and totally ordered: of two concurrent adds exactly one wins,
/// and a replace racing a delete never brings the entry back. A compare-and-swap is one such
/// computation too: it compares the held bytes and write stamp (every write takes a fresh number
/// from a cache-wide counter) with the expected ones and writes only when they are equal, so it
/// is atomic against every other write of the key.
///
/// Expired entries are never returned, and the cache is bounded ([`MemoryBound`], default
/// [`MemoryCache::DEFAULT_MAX_BYTES`]). Clones share the entries.
#[derive(Clone)]
pub struct MemoryCache {
    entries: Moka<String, Entry>,
    bound: MemoryBound,
    /// Stamps every written entry, so a version tells two writes of the same bytes apart.
    writes: Arc<AtomicU64>,
}

#[derive(Clone)]
struct Entry {
    value: Bytes,
    ttl: Duration,
    stamp: u64,
    // When the entry expires, for `get_with_expiry` (the TTL counts from the write).
    expires: std::time::SystemTime,
}

/// Each entry lives for the lifetime it was written with, counted from that write.
struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, entry: &Entry, _now: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        entry: &Entry,
        _now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::bounded(MemoryBound::Bytes(Self::DEFAULT_MAX_BYTES))
    }
}

impl MemoryCache {
    /// The default bound: 64 MiB of keys and values.
    pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

    /// Bytes each entry counts beyond its key and value under [`MemoryBound::Bytes`] (an estimate of
    /// moka's per-entry bookkeeping, so a flood of tiny entries is bounded too).
    pub const ENTRY_OVERHEAD: u64 = 96;

    /// A cache with the default bound.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache with the given bound.
    pub fn bounded(bound: MemoryBound) -> Self {
        let builder = Moka::builder().expire_after(PerEntryTtl);
        let entries = match bound {
            MemoryBound::Entries(max) => builder.max_capacity(max).build(),
            MemoryBound::Bytes(max) => builder
                .max_capacity(max)
                .weigher(|key: &String, entry: &Entry| {
                    let weight = key.len() as u64 + entry.value.len() as u64 + Self::ENTRY_OVERHEAD;
                    u32::try_from(weight).unwrap_or(u32::MAX)
                })
                .build(),
        };
        MemoryCache {
            entries,
            bound,
            writes: Arc::new(AtomicU64::new(0)),
        }
    }

    fn entry(&self, value: Bytes, ttl: Ttl) -> Entry {
        let ttl = ttl.as_duration();
        Entry {
            value,
            ttl,
            stamp: self.writes.fetch_add(1, Ordering::Relaxed),
            expires: std::time::SystemTime::now() + ttl,
        }
    }

    /// The bound this cache was built with.
    pub fn bound(&self) -> MemoryBound {
        self.bound
    }

    /// How many entries are held (approximate until pending maintenance has run; see
    /// [`run_pending_tasks`](Self::run_pending_tasks)).
    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }

    /// The total weight held: entries under [`MemoryBound::Entries`], bytes under
    /// [`MemoryBound::Bytes`] (approximate until pending maintenance has run).
    pub fn weighted_size(&self) -> u64 {
        self.entries.weighted_size()
    }

    /// Runs moka's pending maintenance now (evictions, expirations), which otherwise happens a
    /// little later in the background of cache operations.
    pub async fn run_pending_tasks(&self) {
        self.entries.run_pending_tasks().await;
    }

    async fn compute(
        &self,
        key: &str,
        decide: impl FnOnce(bool) -> Op<Entry>,
    ) -> CompResult<String, Entry> {
        self.entries
            .entry_by_ref(key)
            .and_compute_with(|current| std::future::ready(decide(current.is_some())))
            .await
    }
}

#[async_trait]
impl CacheBackend for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        Ok(self.entries.get(key).await.map(|entry| entry.value))
    }

    async fn get_with_expiry(
        &self,
        key: &str,
    ) -> Result<Option<(Bytes, Option<std::time::SystemTime>)>, CacheError> {
        Ok(self
            .entries
            .get(key)
            .await
            .map(|entry| (entry.value, Some(entry.expires))))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<(), CacheError> {
        let entry = self.entry(value, ttl);
        self.compute(key, |_| Op::Put(entry)).await;
        Ok(())
    }

    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError> {
        let entry = self.entry(value, ttl);
        let result = self
            .compute(
                key,
                |present| if present { Op::Nop } else { Op::Put(entry) },
            )
            .await;
        Ok(matches!(result, CompResult::Inserted(_)))
    }

    async fn replace(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError> {
        let entry = self.entry(value, ttl);
        let result = self
            .compute(
                key,
                |present| if present { Op::Put(entry) } else { Op::Nop },
            )
            .await;
        Ok(matches!(result, CompResult::ReplacedWith(_)))
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let result = self
            .compute(key, |present| if present { Op::Remove } else { Op::Nop })
            .await;
        Ok(matches!(result, CompResult::Removed(_)))
    }

    async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.entries.contains_key(key))
    }

    fn can_compare_and_swap(&self) -> bool {
        true
    }

    fn kind(&self) -> &'static str {
        "moka"
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<VersionedValue>, CacheError> {
        Ok(self.entries.get(key).await.map(|entry| VersionedValue {
            version: stamped(&entry.value, entry.stamp),
            value: entry.value,
        }))
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Ttl>,
        expected: &Bytes,
    ) -> Result<Swap, CacheError> {
        let replacement = ttl.map(|ttl| self.entry(value.clone(), ttl));
        let written = stamped(&value, replacement.as_ref().map_or(0, |entry| entry.stamp));
        let expected = unstamp(expected);
        let result = self
            .entries
            .entry_by_ref(key)
            .and_compute_with(|current| {
                std::future::ready(match current {
                    Some(held)
                        if expected == Some((&held.value().value[..], held.value().stamp)) =>
                    {
                        match replacement {
                            Some(entry) => Op::Put(entry),
                            None => Op::Remove,
                        }
                    }
                    _ => Op::Nop,
                })
            })
            .await;
        Ok(match result {
            CompResult::ReplacedWith(_) | CompResult::Removed(_) => Swap::Written(written),
            CompResult::Unchanged(_) => Swap::Changed,
            // `Inserted` cannot happen (nothing is written over an absent entry).
            CompResult::StillNone(_) | CompResult::Inserted(_) => Swap::Missing,
        })
    }
}

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field("bound", &self.bound)
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}
