//! The byte-level cache interface every backend implements.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::CacheError;

/// How long an entry lives: a whole number of seconds, at least one.
///
/// Django hands its cache the session's expiry age in whole seconds, and a non-positive age means
/// "do not keep this". [`Ttl::from_age`] turns an age into a `Ttl` or `None`, and [`Cache`](crate::Cache)
/// handles the `None` case once for every backend (delete instead of store), so backends only ever
/// see positive lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ttl(u64);

impl Ttl {
    /// The longest lifetime kept (10,000 years, past any date Python can write): longer ages are
    /// clamped to it, because Redis refuses expiry times whose milliseconds overflow.
    pub const MAX: Ttl = Ttl(10_000 * 365 * 24 * 60 * 60);

    /// The lifetime for an expiry age in seconds, or `None` when the age is zero or negative (the
    /// entry must not be readable at all).
    pub fn from_age(age_seconds: i64) -> Option<Ttl> {
        u64::try_from(age_seconds)
            .ok()
            .filter(|&secs| secs > 0)
            .map(|secs| Ttl(secs.min(Self::MAX.0)))
    }

    /// The lifetime in seconds (at least 1).
    pub fn seconds(self) -> u64 {
        self.0
    }

    /// The lifetime as a duration.
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(self.0)
    }
}

/// A value read with its version: what [`CacheBackend::get_versioned`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedValue {
    /// The value, as [`get`](CacheBackend::get) returns it.
    pub value: Bytes,
    /// What identifies the stored entry, for [`CacheBackend::compare_and_swap`]: it must differ
    /// after any write of the entry, by any client of the cache (a Django site included). The
    /// built-in backends use the stored bytes themselves (compressed, for a
    /// [`CompressedCache`](crate::CompressedCache)) followed by a stamp the cache changes on
    /// every write even when the bytes are the same: Redis's absolute expiry time in
    /// milliseconds (`PEXPIRETIME`), memcached's `cas unique`, a write counter in the
    /// in-process cache. Redis's stamp changes only from one millisecond to the next: a write
    /// of the same bytes with the same lifetime within the millisecond of the one before keeps
    /// the version, and leaves the entry exactly as it was, so a compare against that version
    /// still describes what is stored.
    pub version: Bytes,
}

/// What a [`CacheBackend::compare_and_swap`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swap {
    /// The entry was still at the expected version and was replaced (or, for a lifetime of
    /// `None`, removed); this is the version of what was written.
    Written(Bytes),
    /// The entry is at another version: nothing was written.
    Changed,
    /// There is no live entry: nothing was written (never recreated).
    Missing,
}

/// A key-value cache holding raw bytes with per-entry lifetimes: the operations Django's session
/// backends need, each one atomic.
///
/// Keys given to a backend are the final (physical) keys; [`Cache`](crate::Cache) applies the key
/// function. Implemented by [`MemoryCache`](crate::MemoryCache) and
/// [`RedisCache`](crate::RedisCache) (single node and Cluster); implement it to put sessions in
/// another cache.
///
/// Every method must either complete or fail with an error: a backend that cannot reach its server
/// reports it (within its configured timeouts) instead of pretending the key is absent. A backend
/// of your own reports its failures as [`CacheError::Backend`], built with
/// [`CacheError::backend`] from its client's error.
#[async_trait]
pub trait CacheBackend: Send + Sync + fmt::Debug {
    /// The value under `key`, or `None` when it is absent or expired.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError>;

    /// Stores `value` under `key` for `ttl`, whether or not the key exists (Redis `SET … EX`).
    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<(), CacheError>;

    /// Stores `value` only if `key` is absent (Redis `SET … NX EX`); `true` when it was stored. Of
    /// two concurrent adds of one key exactly one returns `true`.
    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError>;

    /// Stores `value` only if `key` is present (Redis `SET … XX EX`); `true` when it was stored. An
    /// absent or expired key is never recreated.
    async fn replace(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError>;

    /// Removes `key`; `true` when something was removed.
    async fn delete(&self, key: &str) -> Result<bool, CacheError>;

    /// Whether a live entry exists under `key`.
    async fn exists(&self, key: &str) -> Result<bool, CacheError>;

    /// [`get`](Self::get), also saying when the entry expires, where the backend can tell in the
    /// same round trip (Redis: `PEXPIRETIME` in one script; the in-process cache: its own
    /// record). The throttled sliding expiry of `session_core::SessionConfig::refresh_fraction`
    /// reads it; the default answers `get` with no expiry, so sessions are then re-saved on
    /// every request, as Django does.
    ///
    /// # Errors
    /// [`CacheError`] when the backend fails.
    async fn get_with_expiry(
        &self,
        key: &str,
    ) -> Result<Option<(Bytes, Option<std::time::SystemTime>)>, CacheError> {
        Ok(self.get(key).await?.map(|value| (value, None)))
    }

    /// Whether [`get_versioned`](Self::get_versioned) and
    /// [`compare_and_swap`](Self::compare_and_swap) work: what a
    /// [`CacheStore`](crate::CacheStore) declares as its compare-and-swap capability. The
    /// default is `false`; every built-in backend answers `true`.
    fn can_compare_and_swap(&self) -> bool {
        false
    }

    /// A short label for metrics and traces (the `store` label of `session_core::metrics`):
    /// `redis`, `memcached`, `moka`; `cache` by default.
    fn kind(&self) -> &'static str {
        "cache"
    }

    /// The value under `key` with its version, or `None` when it is absent or expired. One
    /// read: the hot path of a plain [`get`](Self::get) is unchanged.
    ///
    /// # Errors
    /// [`CacheError`] when the backend fails; the default answers [`CacheError::Config`]
    /// (this backend cannot compare-and-swap).
    async fn get_versioned(&self, key: &str) -> Result<Option<VersionedValue>, CacheError> {
        let _ = key;
        Err(no_compare_and_swap(self))
    }

    /// Atomically: if the live entry under `key` is at `expected` (a
    /// [`VersionedValue::version`] or an earlier [`Swap::Written`]), replaces it with `value` for
    /// `ttl` (or removes it when `ttl` is `None`: a non-positive expiry age) and answers
    /// [`Swap::Written`]; if it is at another version answers [`Swap::Changed`]; if there is none,
    /// [`Swap::Missing`] (never recreating it).
    ///
    /// # Errors
    /// [`CacheError`] when the backend fails; the default answers [`CacheError::Config`]
    /// (this backend cannot compare-and-swap).
    async fn compare_and_swap(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Ttl>,
        expected: &Bytes,
    ) -> Result<Swap, CacheError> {
        let _ = (key, value, ttl, expected);
        Err(no_compare_and_swap(self))
    }
}

/// A version made of the stored `value` and a `stamp` the cache changes on every write.
pub(crate) fn stamped(value: &[u8], stamp: u64) -> Bytes {
    let mut version = Vec::with_capacity(value.len() + 8);
    version.extend_from_slice(value);
    version.extend_from_slice(&stamp.to_be_bytes());
    Bytes::from(version)
}

/// The value and stamp of a version made by [`stamped`], or `None` for any other bytes.
pub(crate) fn unstamp(version: &[u8]) -> Option<(&[u8], u64)> {
    let split = version.len().checked_sub(8)?;
    let (value, stamp) = version.split_at(split);
    Some((value, u64::from_be_bytes(stamp.try_into().ok()?)))
}

fn no_compare_and_swap(backend: &(impl CacheBackend + ?Sized)) -> CacheError {
    CacheError::Config(format!(
        "{backend:?} cannot compare-and-swap: use concurrency = \"last_write_wins\" with it"
    ))
}

/// A shared backend is a backend: wrappers such as
/// [`CompressedCache`](crate::CompressedCache) can sit over an `Arc` that something else
/// (a raw view of the same cache, say) also holds.
#[async_trait]
impl<T: CacheBackend + ?Sized> CacheBackend for std::sync::Arc<T> {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        (**self).get(key).await
    }

    async fn get_with_expiry(
        &self,
        key: &str,
    ) -> Result<Option<(Bytes, Option<std::time::SystemTime>)>, CacheError> {
        (**self).get_with_expiry(key).await
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<(), CacheError> {
        (**self).set(key, value, ttl).await
    }

    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError> {
        (**self).add(key, value, ttl).await
    }

    async fn replace(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError> {
        (**self).replace(key, value, ttl).await
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        (**self).delete(key).await
    }

    async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        (**self).exists(key).await
    }

    fn can_compare_and_swap(&self) -> bool {
        (**self).can_compare_and_swap()
    }

    fn kind(&self) -> &'static str {
        (**self).kind()
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<VersionedValue>, CacheError> {
        (**self).get_versioned(key).await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Ttl>,
        expected: &Bytes,
    ) -> Result<Swap, CacheError> {
        (**self).compare_and_swap(key, value, ttl, expected).await
    }
}
