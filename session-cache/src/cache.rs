//! A configured cache (backend + key function) and caches by alias.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::{CacheBackend, CacheError, KeyFunction, Swap, Ttl, VersionedValue};

/// One configured cache, as Django's `caches[alias]` is one: a [`CacheBackend`] plus the
/// [`KeyFunction`] that turns logical keys into stored keys.
///
/// This is the cache abstraction session stores build on ([`CacheStore`](crate::CacheStore) here,
/// the cached-db store's write-through cache elsewhere). Its methods take **logical** keys and an
/// **expiry age in seconds** as Django's cache API does, and apply Django's rule for non-positive
/// ages once for every backend: such an entry must not be readable, so it is deleted rather than
/// stored. Cloning is cheap and clones share the backend.
///
/// ```
/// # #[cfg(feature = "memory")] {
/// use session_cache::{Cache, MemoryCache};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let cache = Cache::new(MemoryCache::new());
/// assert!(cache.add("k", "v1".into(), 60).await?);
/// assert!(!cache.add("k", "v2".into(), 60).await?); // already there
/// assert!(cache.replace("k", "v3".into(), 60).await?);
/// assert_eq!(cache.get("k").await?.as_deref(), Some(&b"v3"[..]));
/// assert!(cache.replace("k", "v4".into(), 0).await?); // age 0: replaced by nothing
/// assert_eq!(cache.get("k").await?, None);
/// # Ok::<(), session_cache::CacheError>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct Cache {
    backend: Arc<dyn CacheBackend>,
    keys: KeyFunction,
}

impl Cache {
    /// A cache with Django's default key function (`":1:<key>"`).
    pub fn new(backend: impl CacheBackend + 'static) -> Self {
        Self::from_arc(Arc::new(backend))
    }

    /// A cache over a shared backend.
    pub fn from_arc(backend: Arc<dyn CacheBackend>) -> Self {
        Cache {
            backend,
            keys: KeyFunction::default(),
        }
    }

    /// Uses `keys` to build stored keys (Django's `KEY_PREFIX` and `VERSION`).
    pub fn with_key_function(mut self, keys: KeyFunction) -> Self {
        self.keys = keys;
        self
    }

    /// Sets Django's `KEY_PREFIX` (keeps the version).
    pub fn with_key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.keys = self.keys.with_key_prefix(key_prefix);
        self
    }

    /// The key function.
    pub fn key_function(&self) -> &KeyFunction {
        &self.keys
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn CacheBackend> {
        &self.backend
    }

    /// The backend itself, called through its vtable. Calling a method on the `Arc` would go
    /// through the blanket `impl CacheBackend for Arc<T>` first: one more boxed future per call.
    fn inner(&self) -> &dyn CacheBackend {
        &*self.backend
    }

    /// The stored key for a logical key.
    pub fn make_key(&self, key: &str) -> String {
        self.keys.make_key(key)
    }

    /// The value under `key`, or `None` when it is absent or expired.
    ///
    /// # Errors
    /// [`CacheError`] when the backend fails (a down server is an error, never a miss).
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        self.inner().get(&self.make_key(key)).await
    }

    /// The value under `key` and when it expires, where the backend can tell
    /// ([`CacheBackend::get_with_expiry`]).
    ///
    /// # Errors
    /// [`CacheError`] when the backend fails.
    pub async fn get_with_expiry(
        &self,
        key: &str,
    ) -> Result<Option<(Bytes, Option<std::time::SystemTime>)>, CacheError> {
        self.inner().get_with_expiry(&self.make_key(key)).await
    }

    /// Stores `value` for `age_seconds`; a non-positive age deletes the entry instead (Django's
    /// `cache.set` with a timeout of 0 or less).
    ///
    /// # Errors
    /// [`CacheError`] when the backend fails.
    pub async fn set(&self, key: &str, value: Bytes, age_seconds: i64) -> Result<(), CacheError> {
        let key = self.make_key(key);
        match Ttl::from_age(age_seconds) {
            Some(ttl) => self.inner().set(&key, value, ttl).await,
            None => self.inner().delete(&key).await.map(drop),
        }
    }

    /// Stores `value` only if `key` is absent; `true` when it would be stored. With a non-positive
    /// age nothing is written (the entry could not be read anyway) and the answer is whether the key
    /// was absent, which is what Django's `add` with timeout 0 reports.
    ///
    /// # Errors
    /// [`CacheError`] when the backend fails.
    pub async fn add(&self, key: &str, value: Bytes, age_seconds: i64) -> Result<bool, CacheError> {
        let key = self.make_key(key);
        match Ttl::from_age(age_seconds) {
            Some(ttl) => self.inner().add(&key, value, ttl).await,
            None => Ok(!self.inner().exists(&key).await?),
        }
    }

    /// Stores `value` only if `key` is present; `true` when the key was present. With a
    /// non-positive age the present entry is deleted (it expires now), atomically.
    ///
    /// # Errors
    /// [`CacheError`] when the backend fails.
    pub async fn replace(
        &self,
        key: &str,
        value: Bytes,
        age_seconds: i64,
    ) -> Result<bool, CacheError> {
        let key = self.make_key(key);
        match Ttl::from_age(age_seconds) {
            Some(ttl) => self.inner().replace(&key, value, ttl).await,
            None => self.inner().delete(&key).await,
        }
    }

    /// Removes `key`; `true` when something was removed.
    ///
    /// # Errors
    /// [`CacheError`] when the backend fails.
    pub async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        self.inner().delete(&self.make_key(key)).await
    }

    /// Whether a live entry exists under `key`.
    ///
    /// # Errors
    /// [`CacheError`] when the backend fails.
    pub async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        self.inner().exists(&self.make_key(key)).await
    }

    /// Whether the backend can compare-and-swap ([`CacheBackend::can_compare_and_swap`]).
    pub fn can_compare_and_swap(&self) -> bool {
        self.inner().can_compare_and_swap()
    }

    /// The backend's label for metrics ([`CacheBackend::kind`]).
    pub fn kind(&self) -> &'static str {
        self.inner().kind()
    }

    /// The value under `key` with its version ([`CacheBackend::get_versioned`]).
    ///
    /// # Errors
    /// [`CacheError`] when the backend fails or cannot compare-and-swap.
    pub async fn get_versioned(&self, key: &str) -> Result<Option<VersionedValue>, CacheError> {
        self.inner().get_versioned(&self.make_key(key)).await
    }

    /// Replaces the live entry under `key` with `value` for `age_seconds` only if it is still at
    /// `expected` ([`CacheBackend::compare_and_swap`]); with a non-positive age the entry is
    /// removed instead (under the same condition), as [`replace`](Self::replace) does.
    ///
    /// # Errors
    /// [`CacheError`] when the backend fails or cannot compare-and-swap.
    pub async fn compare_and_swap(
        &self,
        key: &str,
        value: Bytes,
        age_seconds: i64,
        expected: &Bytes,
    ) -> Result<Swap, CacheError> {
        self.inner()
            .compare_and_swap(
                &self.make_key(key),
                value,
                Ttl::from_age(age_seconds),
                expected,
            )
            .await
    }
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.backend)
            .field("keys", &self.keys)
            .finish()
    }
}

/// Caches by alias: Django's `CACHES` setting. Session stores pick theirs by alias
/// (`SESSION_CACHE_ALIAS`, default [`DEFAULT_CACHE_ALIAS`]), and an alias that is not configured
/// is an error when the store is built, as in Django.
///
/// ```
/// # #[cfg(feature = "memory")] {
/// use session_cache::{Cache, CacheError, Caches, MemoryCache};
///
/// let caches = Caches::new()
///     .with("default", Cache::new(MemoryCache::new()))
///     .with("sessions", Cache::new(MemoryCache::new()).with_key_prefix("sess"));
/// assert_eq!(caches.get("sessions").unwrap().key_function().key_prefix(), "sess");
/// assert!(matches!(caches.get("other"), Err(CacheError::UnknownAlias { .. })));
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Caches {
    caches: BTreeMap<String, Cache>,
}

/// Django's default cache alias (and default `SESSION_CACHE_ALIAS`).
pub const DEFAULT_CACHE_ALIAS: &str = "default";

impl Caches {
    /// No caches.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the cache under `alias`.
    pub fn with(mut self, alias: impl Into<String>, cache: Cache) -> Self {
        self.caches.insert(alias.into(), cache);
        self
    }

    /// The cache under `alias`, or [`CacheError::UnknownAlias`].
    ///
    /// # Errors
    /// [`CacheError`] when the backend fails (a down server is an error, never a miss).
    pub fn get(&self, alias: &str) -> Result<&Cache, CacheError> {
        self.caches
            .get(alias)
            .ok_or_else(|| CacheError::UnknownAlias {
                alias: alias.to_owned(),
                configured: self.caches.keys().cloned().collect(),
            })
    }

    /// The configured aliases, sorted.
    pub fn aliases(&self) -> impl Iterator<Item = &str> {
        self.caches.keys().map(String::as_str)
    }
}
