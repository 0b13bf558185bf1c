//! Django's `cache` session engine on top of a [`Cache`].

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use session_core::{
    ClearExpired, Dict, Error, LoadedRecord, SaveMode, SessionCodec, SessionConfig, SessionKey,
    SessionRecord, SessionStore, SharedRecord, StoreCapabilities, Version, VersionedRecord,
};

use session_core::serializer::SerializerName;
use time::OffsetDateTime;

use crate::{Cache, CacheError, Caches, Swap};

/// The prefix Django's cache session engine puts before the session key
/// (`django.contrib.sessions.backends.cache.KEY_PREFIX`).
pub const CACHE_SESSION_KEY_PREFIX: &str = "django.contrib.sessions.cache";

/// Sessions in a cache: Django's `django.contrib.sessions.backends.cache.SessionStore`.
///
/// Each session is one cache entry:
/// - **key**: the cache's key function applied to `"django.contrib.sessions.cache" + session key`,
///   by default `:1:django.contrib.sessions.cache<session key>`, exactly where Django puts it;
/// - **value**: the pickle of the session dict, not signed: what Django's cache framework stores,
///   whatever `SESSION_SERIALIZER` says (Django's cache backends always pickle), so a Django site
///   on the same cache shares sessions with the default settings. A JSON or MessagePack value
///   is available with [`with_cache_serializer`](CacheStore::with_cache_serializer), for caches
///   no Django site reads;
/// - **lifetime**: the session's expiry age, set atomically with the value.
///
/// Saves are single atomic commands: a must-create save is add-if-absent (`SET NX`), so two
/// creators can never both win, and an update is replace-if-present (`SET XX`), so a session
/// deleted meanwhile (logged out elsewhere, or expired) fails with [`Error::SessionDeleted`]
/// instead of coming back. A non-positive expiry age stores nothing readable. Corrupt values load
/// as an empty session with Django's security warning. There is nothing to clear: entries expire
/// by themselves.
///
/// Backend failures (an unreachable Redis) are reported as [`Error::Store`] by every operation,
/// `load` included. Django's `load` instead treats any exception as a miss (ticket #17810, meant
/// for memcached refusing odd keys), which silently logs the user out and replaces their cookie
/// during an outage; keys are never a problem here (Redis and the memory cache accept any key, and
/// an unknown or overlong key simply misses), so an error always means the cache is unavailable
/// and the caller decides.
///
/// # Concurrency policies
///
/// The store compare-and-swaps (the `merge` and `reject`
/// [`ConcurrencyPolicy`](session_core::ConcurrencyPolicy)) when its backend can
/// ([`CacheBackend::can_compare_and_swap`](crate::CacheBackend::can_compare_and_swap): every
/// built-in one), and refuses to be built for those policies otherwise. A version is the stored
/// bytes, exactly what Django's cache holds, plus a stamp every write changes; a conditional save
/// is one atomic operation of the backend. See the crate docs' "Concurrency policies" for each
/// backend's primitive and costs.
#[derive(Clone)]
pub struct CacheStore {
    cache: Cache,
    prefix: String,
    codec: SessionCodec,
    cache_serializer: SerializerName,
}

impl CacheStore {
    /// A store in `cache` with Django's key prefix. Values are pickled, as Django's cache
    /// framework stores them, whatever `config.serializer` is: see
    /// [`with_cache_serializer`](Self::with_cache_serializer).
    ///
    /// # Errors
    /// [`CacheError::Session`] when `config` is invalid, or asks for the `merge` or `reject`
    /// concurrency policy and the backend cannot compare-and-swap.
    pub fn new(cache: Cache, config: &SessionConfig) -> Result<Self, CacheError> {
        let cache_serializer = SerializerName::Pickle;
        let store = CacheStore {
            cache,
            prefix: CACHE_SESSION_KEY_PREFIX.to_owned(),
            codec: SessionCodec::new(config)?.with_serializer(cache_serializer.serializer()),
            cache_serializer,
        };
        // A backend that cannot compare-and-swap is refused for merge and reject here, rather
        // than served as last-write-wins.
        config.concurrency.check_store(&store)?;
        Ok(store)
    }

    /// Connects to the Redis server (or, with several comma-separated URLs, the Redis Cluster)
    /// at `url` with [`RedisCache::connect`](crate::RedisCache::connect), and builds a store on
    /// it with Django's default `KEY_PREFIX` and `VERSION`. For other cache settings, build the
    /// [`Cache`] yourself and use [`new`](Self::new).
    ///
    /// # Errors
    /// [`CacheError`] when the server cannot be reached or `config` is invalid.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub async fn connect(url: &str, config: &SessionConfig) -> Result<Self, CacheError> {
        let redis = crate::RedisCache::connect(url).await?;
        Self::new(Cache::new(redis), config)
    }

    /// Serializes cache values with `serializer` instead of pickle. Only for caches no Django site
    /// reads: Django expects a pickle there.
    pub fn with_cache_serializer(mut self, serializer: SerializerName) -> Self {
        self.codec = self.codec.with_serializer(serializer.serializer());
        self.cache_serializer = serializer;
        self
    }

    /// The codec the cache values are serialized with (its serializer is
    /// [`cache_serializer`](Self::cache_serializer)).
    pub fn codec(&self) -> &SessionCodec {
        &self.codec
    }

    /// The serializer of the cache values ([`SerializerName::Pickle`] unless
    /// [`with_cache_serializer`](Self::with_cache_serializer) chose another).
    pub fn cache_serializer(&self) -> SerializerName {
        self.cache_serializer
    }

    /// A store in the cache configured under `alias` (Django's `SESSION_CACHE_ALIAS`); an alias
    /// that is not configured is [`CacheError::UnknownAlias`], as Django raises
    /// `InvalidCacheBackendError` when the store is constructed.
    ///
    /// # Errors
    /// [`CacheError::UnknownAlias`] when `alias` is not configured; as [`new`](Self::new)
    /// otherwise.
    pub fn from_caches(
        caches: &Caches,
        alias: &str,
        config: &SessionConfig,
    ) -> Result<Self, CacheError> {
        Self::new(caches.get(alias)?.clone(), config)
    }

    /// Replaces the session key prefix (default [`CACHE_SESSION_KEY_PREFIX`]). Change it only to
    /// mimic a Django subclass with its own `cache_key_prefix`; to separate applications sharing
    /// one Redis, give each its own `KEY_PREFIX` ([`Cache::with_key_prefix`]) instead.
    pub fn with_session_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The cache holding the sessions.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The session key prefix.
    pub fn session_key_prefix(&self) -> &str {
        &self.prefix
    }

    /// The logical cache key of a session (Django's `SessionStore.cache_key`):
    /// `django.contrib.sessions.cache<session key>`.
    pub fn cache_key(&self, key: &SessionKey) -> String {
        let mut out = String::with_capacity(self.prefix.len() + key.as_str().len());
        out.push_str(&self.prefix);
        out.push_str(key.as_str());
        out
    }

    /// The key actually stored in the backend: the cache's key function applied to
    /// [`cache_key`](Self::cache_key), by default `:1:django.contrib.sessions.cache<session key>`.
    pub fn physical_key(&self, key: &SessionKey) -> String {
        self.cache.make_key(&self.cache_key(key))
    }
}

#[async_trait]
impl SessionStore for CacheStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        let bytes = self.cache.get(&self.cache_key(key)).await?;
        Ok(bytes.map(|bytes| self.codec.deserialize(&bytes)))
    }

    /// The entry's expiry where the backend tells it in the same round trip (Redis, the
    /// in-process cache; memcached does not): what the throttled sliding expiry needs.
    async fn load_with_expiry(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        let read = self.cache.get_with_expiry(&self.cache_key(key)).await?;
        Ok(read.map(|(bytes, expires)| LoadedRecord {
            data: self.codec.deserialize(&bytes),
            expires_at: expires.map(OffsetDateTime::from),
        }))
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        Ok(self.cache.exists(&self.cache_key(key)).await?)
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        let value = Bytes::from(self.codec.serialize(record.data)?);
        let cache_key = self.cache_key(key);
        match mode {
            SaveMode::MustCreate => {
                if !self.cache.add(&cache_key, value, record.expiry_age).await? {
                    return Err(Error::CreateConflict);
                }
            }
            SaveMode::Update => {
                if !self
                    .cache
                    .replace(&cache_key, value, record.expiry_age)
                    .await?
                {
                    return Err(Error::SessionDeleted);
                }
            }
        }
        Ok(key.clone())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.cache.delete(&self.cache_key(key)).await?;
        Ok(())
    }

    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        Ok(ClearExpired::NotNeeded)
    }

    fn kind(&self) -> &'static str {
        self.cache.kind()
    }

    fn capabilities(&self) -> StoreCapabilities {
        if self.cache.can_compare_and_swap() {
            StoreCapabilities::COMPARE_AND_SWAP
        } else {
            StoreCapabilities::BASIC
        }
    }

    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        let Some(read) = self.cache.get_versioned(&self.cache_key(key)).await? else {
            return Ok(None);
        };
        Ok(Some(VersionedRecord {
            data: std::sync::Arc::new(self.codec.deserialize(&read.value)),
            version: Version::from_bytes(&read.version[..]),
            expires_at: None,
        }))
    }

    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, Error> {
        // A version this store did not make can match nothing it holds.
        let Some(expected) = expected.as_bytes() else {
            return Err(Error::Conflict);
        };
        let value = Bytes::from(self.codec.serialize(&record.data)?);
        let swap = self
            .cache
            .compare_and_swap(
                &self.cache_key(key),
                value,
                record.expiry_age,
                &Bytes::copy_from_slice(expected),
            )
            .await?;
        match swap {
            Swap::Written(version) => Ok(Version::from_bytes(&version[..])),
            Swap::Changed => Err(Error::Conflict),
            Swap::Missing => Err(Error::SessionDeleted),
        }
    }
}

impl fmt::Debug for CacheStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheStore")
            .field("cache", &self.cache)
            .field("prefix", &self.prefix)
            .field("serializer", &self.codec.serializer().name())
            .finish()
    }
}
