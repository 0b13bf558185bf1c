//! Django's `cached_db` engine: a write-through cache in front of a session store.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use session_cache::{Cache, Caches};
use session_core::expiry::floor_seconds;
use session_core::serializer::SerializerName;
use session_core::{
    ClearExpired, Dict, Error, Expiry, KeyKind, LoadedRecord, SaveMode, SessionCodec,
    SessionConfig, SessionKey, SessionRecord, SessionStore, SharedRecord, StoreCapabilities,
    Version, VersionedRecord,
};
use time::OffsetDateTime;

use crate::CachedDbError;
use crate::stale::{Mark, StaleKeys};

/// The prefix Django's cached-db engine puts before the session key in the cache
/// (`django.contrib.sessions.backends.cached_db.KEY_PREFIX`).
pub const CACHED_DB_KEY_PREFIX: &str = "django.contrib.sessions.cached_db";

/// The `tracing` target of the store's cache warnings and errors: the logger Django's cached-db
/// engine logs to, so existing log routing keeps working.
pub const LOG_TARGET: &str = "django.contrib.sessions";

/// How many sessions can be tracked as "cache entry possibly stale" at once (see
/// [`CachedDbStore::stale_sessions`]). Reaching it takes that many failed cache writes or deletes
/// that could not be undone, i.e. a long outage.
pub const STALE_CAPACITY: usize = 100_000;

/// How many other stale entries one successful cache operation tries to remove on the side.
const DRAIN_BATCH: usize = 8;

/// Sessions in a database with a write-through cache in front: Django's
/// `django.contrib.sessions.backends.cached_db.SessionStore`.
///
/// `D` is the database store, any [`SessionStore`]: a `session_db::DbStore` (PostgreSQL,
/// MySQL/MariaDB, SQLite), a store of your own, or `Arc<dyn SessionStore>` to choose at run time.
/// The cache is a [`session_cache::Cache`] (memory, Redis, Redis Cluster, or your own
/// [`CacheBackend`](session_cache::CacheBackend)). See the [crate documentation](crate) for the
/// key layout, the failure model and why it is generic over the database.
///
/// - **load**: the cache first; on a miss, the database, then the cache is refilled (only if
///   still absent) with a lifetime of the whole seconds left until the row's `expire_date`, and
///   the row is checked to be still there (else the new entry is removed).
/// - **exists**: the cache first; the database only when the cache does not have the key.
/// - **save**: the database first (it alone decides [`Error::CreateConflict`] and
///   [`Error::SessionDeleted`]), then the cache, then a check that the row is still there (a
///   logout may have deleted it meanwhile; then the entry is removed). A session the database
///   says was deleted is removed from the cache too.
/// - **delete**: the database, then the cache.
/// - **clear_expired**: the database's; cache entries expire with their rows by themselves.
/// - **compare-and-swap** (the `merge` and `reject` policies): the database's capability; a
///   versioned load always reads the row, and a swap goes to the database, then the cache is
///   written through (or the entry removed when the swap lost). See the [crate
///   documentation](crate#concurrency-policies).
///
/// The cache never decides anything and never fails an operation: its errors are logged on
/// [`LOG_TARGET`] and the database answers.
pub struct CachedDbStore<D> {
    cache: Cache,
    db: D,
    prefix: String,
    codec: SessionCodec,
    cache_serializer: SerializerName,
    cookie_age: i64,
    stale: Arc<StaleKeys>,
    // Read the cache entry's expiry with it (one script on Redis instead of a GET) only when the
    // throttled sliding expiry needs it.
    cache_expiry: bool,
}

impl<D: SessionStore> CachedDbStore<D> {
    /// `cache` in front of `db`. `config` gives the cookie age (the cache lifetime when the
    /// database does not report an expiry) and the codec settings; cache values are pickled, as
    /// Django's cache framework stores them, whatever `config.serializer` is (that one is the
    /// database's `SESSION_SERIALIZER`): see [`with_cache_serializer`](Self::with_cache_serializer).
    ///
    /// # Errors
    /// [`CachedDbError`] when `config` is invalid.
    pub fn new(cache: Cache, db: D, config: &SessionConfig) -> Result<Self, CachedDbError> {
        let cache_serializer = SerializerName::Pickle;
        Ok(CachedDbStore {
            cache,
            db,
            prefix: CACHED_DB_KEY_PREFIX.to_owned(),
            codec: SessionCodec::new(config)?.with_serializer(cache_serializer.serializer()),
            cache_serializer,
            cookie_age: config.cookie_age,
            stale: Arc::new(StaleKeys::with_capacity(STALE_CAPACITY)),
            cache_expiry: config.save_every_request && config.refresh_fraction > 0.0,
        })
    }

    /// The cache configured under `alias` (Django's `SESSION_CACHE_ALIAS`) in front of `db`; an
    /// alias that is not configured is an error here, as Django raises
    /// `InvalidCacheBackendError` when the store is constructed.
    ///
    /// # Errors
    /// [`CachedDbError`] when `alias` is not configured or `config` is invalid.
    pub fn from_caches(
        caches: &Caches,
        alias: &str,
        db: D,
        config: &SessionConfig,
    ) -> Result<Self, CachedDbError> {
        Self::new(caches.get(alias)?.clone(), db, config)
    }

    /// Serializes cache values with `serializer` instead of pickle. Only for caches no Django site
    /// reads: Django expects a pickle there.
    pub fn with_cache_serializer(mut self, serializer: SerializerName) -> Self {
        self.codec = self.codec.with_serializer(serializer.serializer());
        self.cache_serializer = serializer;
        self
    }

    /// Replaces the session key prefix (default [`CACHED_DB_KEY_PREFIX`]). Change it only to
    /// mimic a Django subclass with its own `cache_key_prefix`; to separate applications sharing
    /// one cache, give each its own `KEY_PREFIX` ([`Cache::with_key_prefix`]) instead.
    pub fn with_session_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The database store (for what only it offers: `ensure_schema`, rows, its pool).
    pub fn db(&self) -> &D {
        &self.db
    }

    /// The serializer of cache values.
    pub fn cache_serializer(&self) -> SerializerName {
        self.cache_serializer
    }

    /// The session key prefix.
    pub fn session_key_prefix(&self) -> &str {
        &self.prefix
    }

    /// The logical cache key of a session (Django's `cache_key`):
    /// `django.contrib.sessions.cached_db<session key>`.
    pub fn cache_key(&self, key: &SessionKey) -> String {
        let mut out = String::with_capacity(self.prefix.len() + key.as_str().len());
        out.push_str(&self.prefix);
        out.push_str(key.as_str());
        out
    }

    /// The key stored in the cache backend: the cache's key function applied to
    /// [`cache_key`](Self::cache_key), by default `:1:django.contrib.sessions.cached_db<key>`.
    pub fn physical_key(&self, key: &SessionKey) -> String {
        self.cache.make_key(&self.cache_key(key))
    }

    /// How many sessions currently bypass the cache because a database change could not be
    /// written to it and their old entry could not be removed either. Each one is retried (and
    /// the session served from the database meanwhile) until the cache accepts the removal; a
    /// number that stays above zero means the cache is still failing.
    pub fn stale_sessions(&self) -> usize {
        self.stale.len()
    }

    /// The cache lifetime for a record read from the database: the whole seconds until its
    /// `expire_date`, or, from a store that does not report one, the expiry in the data
    /// (`_session_expiry`, else the cookie age), counted from now.
    fn refill_age(
        &self,
        data: &Dict,
        expires_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> i64 {
        match expires_at {
            Some(at) => floor_seconds(at - now),
            None => Expiry::of_data(data).age(now, self.cookie_age),
        }
    }

    /// Makes the cache usable for `key`: `true` unless the key is marked stale and its entry still
    /// cannot be removed (then the caller must not read or refill the entry).
    async fn settle(&self, key: &SessionKey, cache_key: &str) -> bool {
        let Some(generation) = self.stale.generation(key) else {
            return true;
        };
        match self.cache.delete(cache_key).await {
            // Trust the cache only if nobody marked the key again while we were deleting.
            Ok(_) => self.stale.clear(key, generation),
            Err(error) => {
                tracing::warn!(
                    target: LOG_TARGET,
                    %error,
                    "Error deleting a stale session from cache ({:?}); reading the session from the database",
                    self.cache
                );
                false
            }
        }
    }

    /// Removes `key`'s entry after the database changed without the cache following. If that
    /// fails, the key stays marked, so this process bypasses the entry until it can be removed.
    async fn invalidate(&self, key: &SessionKey) {
        // Marked before the delete: reads racing it bypass the entry instead of trusting it.
        let mark = self.stale.mark(key);
        match self.cache.delete(&self.cache_key(key)).await {
            Ok(_) => {
                if let Mark::Marked(generation) = mark {
                    self.stale.clear(key, generation);
                }
            }
            Err(error) => {
                tracing::error!(
                    target: LOG_TARGET,
                    %error,
                    "Error deleting from cache ({:?}); the session is read from the database until its entry can be removed",
                    self.cache
                );
                if mark == Mark::Full {
                    tracing::error!(
                        target: LOG_TARGET,
                        capacity = STALE_CAPACITY,
                        "Too many sessions with stale cache entries to track; this one may be read stale from the cache until its entry expires"
                    );
                }
            }
        }
    }

    /// Retries the removal of a few other stale entries, after the cache has just worked.
    async fn drain(&self, current: &SessionKey) {
        let batch = self.stale.some(DRAIN_BATCH, current);
        if batch.is_empty() {
            return;
        }
        let deletes = batch
            .iter()
            .map(|(key, _)| async move { self.cache.delete(&self.cache_key(key)).await });
        let results = futures::future::join_all(deletes).await;
        for ((key, generation), result) in batch.iter().zip(results) {
            if result.is_ok() {
                self.stale.clear(key, *generation);
            }
        }
    }

    /// Puts a record read from the database into the cache unless something is there already
    /// (a save that raced this load wrote newer data, which must win), then makes sure no write
    /// or delete changed the row meanwhile (`version`: what was read, when the database can say).
    async fn refill(
        &self,
        key: &SessionKey,
        cache_key: &str,
        data: &Dict,
        expires_at: Option<OffsetDateTime>,
        version: Option<&Version>,
    ) {
        let age = self.refill_age(data, expires_at, OffsetDateTime::now_utc());
        if age <= 0 {
            return; // it would not be readable anyway
        }
        let result = match self.codec.serialize(data) {
            Ok(bytes) => self
                .cache
                .add(cache_key, Bytes::from(bytes), age)
                .await
                .map_err(Error::from),
            Err(error) => Err(error),
        };
        match result {
            // The row was read before the entry was written: a write or a delete may have come
            // in between.
            Ok(true) => {
                self.confirm(key, version).await;
            }
            // Someone else's entry, theirs to confirm.
            Ok(false) => {}
            Err(error) => tracing::warn!(
                target: LOG_TARGET,
                %error,
                "Error saving to cache ({:?}) after reading the session from the database",
                self.cache
            ),
        }
    }

    /// [`refill`](Self::refill) with what a versioned read returned, checked against its version.
    async fn refill_versioned(&self, key: &SessionKey, cache_key: &str, record: &VersionedRecord) {
        self.refill(
            key,
            cache_key,
            &record.data,
            record.expires_at,
            Some(&record.version),
        )
        .await;
    }

    /// Called after this store wrote `key`'s cache entry (a save's `set`, a refill's `add`):
    /// keeps the entry only if the database still holds what it copies, so a delete or a write
    /// that ran between the database step and the cache write cannot leave a logged-out or
    /// outdated session readable from the cache. `true` when the entry may stay.
    ///
    /// With the `version` the entry copies (a compare-and-swap's, a versioned read's), the row
    /// must still be at it ([`SessionStore::is_unchanged`]): two compare-and-swaps whose cache
    /// writes land in the opposite order to their database writes leave the older copy in the
    /// cache, and its writer's check, after that cache write, sees the newer row and removes it.
    /// Without one (a plain save; a database that cannot compare-and-swap), only a delete is
    /// caught (`exists`), and racing plain saves may leave either's data cached, as in Django.
    ///
    /// It must come after the cache write: checked before, a change could still land between the
    /// check and the write. `exists` also counts an expired row not yet cleared; that is harmless,
    /// because the entry was given a lifetime that ends no later than the row's `expire_date`.
    /// When the database cannot answer, the entry is removed (or, failing that, the session is
    /// marked stale): the cache is only an optimisation, so doubt costs one database read later.
    async fn confirm(&self, key: &SessionKey, version: Option<&Version>) -> bool {
        let current = match version {
            Some(version) => self.db.is_unchanged(key, version).await,
            None => self.db.exists(key).await,
        };
        match current {
            Ok(true) => true,
            Ok(false) => {
                tracing::debug!(
                    target: LOG_TARGET,
                    "The session was changed or deleted while it was being cached; removing its cache entry"
                );
                self.invalidate(key).await;
                false
            }
            Err(error) => {
                tracing::warn!(
                    target: LOG_TARGET,
                    %error,
                    "Error checking the database after caching a session ({:?}); removing its cache entry",
                    self.cache
                );
                self.invalidate(key).await;
                false
            }
        }
    }

    /// Writes the saved data to the cache with the row's lifetime and confirms the row still
    /// holds it (at `written`, the version a compare-and-swap returned) or, after a plain save,
    /// is still there; on failure, makes sure no older copy can be read instead.
    async fn write_through(
        &self,
        key: &SessionKey,
        record: &SessionRecord<'_>,
        written: Option<&Version>,
    ) {
        let cache_key = self.cache_key(key);
        let generation = self.stale.generation(key);
        // From the row's expiry rather than the precomputed age, so the copy never outlives the
        // row even when the save took a while.
        let age = floor_seconds(record.expires_at - OffsetDateTime::now_utc());
        let result = match self.codec.serialize(record.data) {
            Ok(bytes) => self
                .cache
                .set(&cache_key, Bytes::from(bytes), age)
                .await
                .map_err(Error::from),
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => {
                // A delete or another write may have run between the database write and this
                // one. (A lifetime already over made the write a removal: nothing to confirm, as
                // for a refill.)
                if age > 0 && !self.confirm(key, written).await {
                    return;
                }
                if let Some(generation) = generation {
                    // Overwritten: whatever stale value was there is gone.
                    self.stale.clear(key, generation);
                }
                self.drain(key).await;
            }
            Err(error) => {
                // Django's message (5.1+), on Django's logger; the save itself succeeded.
                tracing::error!(target: LOG_TARGET, %error, "Error saving to cache ({:?})", self.cache);
                self.invalidate(key).await;
            }
        }
    }
}

#[async_trait]
impl<D: SessionStore> SessionStore for CachedDbStore<D> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        Ok(self.load_with_expiry(key).await?.map(|record| record.data))
    }

    /// A cache hit knows the row's expiry only under the throttled sliding expiry, from the
    /// cache entry's own (written with the row's) where the cache tells it; a database read
    /// always does.
    async fn load_with_expiry(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        let cache_key = self.cache_key(key);
        let mut refill = self.settle(key, &cache_key).await;
        // What the cache did for this load, for `djsession_cached_db_cache_total`: a miss unless
        // it served the session or failed.
        let mut outcome = "miss";
        if refill {
            let read = if self.cache_expiry {
                self.cache.get_with_expiry(&cache_key).await
            } else {
                self.cache
                    .get(&cache_key)
                    .await
                    .map(|hit| hit.map(|b| (b, None)))
            };
            match read {
                Ok(Some((bytes, expires))) => match self.codec.deserialize_dict(&bytes) {
                    Ok(data) => {
                        self.drain(key).await;
                        count_cache("hit");
                        return Ok(Some(LoadedRecord {
                            data,
                            expires_at: expires.map(time::OffsetDateTime::from),
                        }));
                    }
                    Err(error) => {
                        tracing::warn!(
                            target: LOG_TARGET,
                            %error,
                            "Cache entry is not session data ({:?}); reading the session from the database",
                            self.cache
                        );
                        // The refill only fills an absent entry: remove this one first.
                        refill = match self.cache.delete(&cache_key).await {
                            Ok(_) => true,
                            Err(_) => {
                                self.stale.mark(key);
                                false
                            }
                        };
                    }
                },
                Ok(None) => {}
                Err(error) => {
                    outcome = "failure";
                    tracing::warn!(
                        target: LOG_TARGET,
                        %error,
                        "Error reading from cache ({:?}); reading the session from the database",
                        self.cache
                    );
                    // A failing cache would fail the refill too, after another timeout.
                    refill = false;
                }
            }
        }
        count_cache(outcome);
        if !refill {
            return self.db.load_with_expiry(key).await;
        }
        if !self.db.capabilities().compare_and_swap {
            let record = self.db.load_with_expiry(key).await?;
            if let Some(record) = &record {
                self.refill(key, &cache_key, &record.data, record.expires_at, None)
                    .await;
            }
            return Ok(record);
        }
        // Read with its version (the same one query on `session-db`), so the refill's check can
        // tell a row rewritten since, not only a deleted one.
        let Some(record) = self.db.load_versioned(key).await? else {
            return Ok(None);
        };
        self.refill_versioned(key, &cache_key, &record).await;
        Ok(Some(LoadedRecord {
            // Fresh from the database: nobody else holds it, so this moves rather than copies.
            data: Arc::unwrap_or_clone(record.data),
            expires_at: record.expires_at,
        }))
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        let cache_key = self.cache_key(key);
        if self.settle(key, &cache_key).await {
            match self.cache.exists(&cache_key).await {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(error) => tracing::warn!(
                    target: LOG_TARGET,
                    %error,
                    "Error reading from cache ({:?}); asking the database",
                    self.cache
                ),
            }
        }
        self.db.exists(key).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        match self.db.save(key, record, mode).await {
            Ok(held) => {
                self.write_through(&held, &record, None).await;
                Ok(held)
            }
            Err(Error::SessionDeleted) => {
                // Deleted or expired elsewhere (another process, clearsessions): a cached copy
                // must not keep it alive.
                self.invalidate(key).await;
                Err(Error::SessionDeleted)
            }
            // A conflict means the key is someone else's: its cache entry is theirs too.
            Err(other) => Err(other),
        }
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.db.delete(key).await?;
        self.invalidate(key).await;
        Ok(())
    }

    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.db.clear_expired().await
    }

    fn key_kind(&self) -> KeyKind {
        self.db.key_kind()
    }

    /// The database's: the cache adds no compare-and-swap of its own, since Django's cache
    /// entries carry no version.
    fn capabilities(&self) -> StoreCapabilities {
        self.db.capabilities()
    }

    fn kind(&self) -> &'static str {
        "cached-db"
    }

    /// The database's versioned load: the cache cannot say what version its copy is of, so this
    /// always reads the row. The cache is then refilled as after a miss (only if absent).
    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        let cache_key = self.cache_key(key);
        let usable = self.settle(key, &cache_key).await;
        let record = self.db.load_versioned(key).await?;
        if usable && let Some(record) = &record {
            self.refill_versioned(key, &cache_key, record).await;
        }
        Ok(record)
    }

    /// The database's compare-and-swap, then the cache as after a [`save`](Self::save): written
    /// through on success; removed when the database says the session changed
    /// ([`Error::Conflict`]) or is gone ([`Error::SessionDeleted`]), so a stale copy never hides
    /// the newer row.
    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, Error> {
        match self
            .db
            .save_if_unchanged(key, record.clone(), expected)
            .await
        {
            Ok(version) => {
                self.write_through(key, &record.as_record(), Some(&version))
                    .await;
                Ok(version)
            }
            Err(error @ (Error::Conflict | Error::SessionDeleted)) => {
                self.invalidate(key).await;
                Err(error)
            }
            Err(other) => Err(other),
        }
    }
}

impl<D: Clone> Clone for CachedDbStore<D> {
    /// Clones share the cache, the database store (as `D`'s clones do) and the stale-entry
    /// tracking.
    fn clone(&self) -> Self {
        CachedDbStore {
            cache: self.cache.clone(),
            db: self.db.clone(),
            prefix: self.prefix.clone(),
            codec: self.codec.clone(),
            cache_serializer: self.cache_serializer,
            cookie_age: self.cookie_age,
            stale: Arc::clone(&self.stale),
            cache_expiry: self.cache_expiry,
        }
    }
}

impl<D: fmt::Debug> fmt::Debug for CachedDbStore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedDbStore")
            .field("cache", &self.cache)
            .field("db", &self.db)
            .field("prefix", &self.prefix)
            .field("cache_serializer", &self.cache_serializer.as_str())
            .field("stale_sessions", &self.stale.len())
            .finish()
    }
}

/// Counts one cache read of a load: `hit`, `miss` or `failure`.
fn count_cache(result: &'static str) {
    metrics::counter!(session_core::metrics::names::CACHED_DB_CACHE, "result" => result)
        .increment(1);
}
