//! The per-request session handle.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::changes::Changes;
use crate::config::ConcurrencyPolicy;
use crate::expiry::{EXPIRY_KEY, Expiry};
use crate::metrics::{self, names};
use crate::serializer::SerializerError;
use crate::store::{KeyKind, SaveMode, SessionStore, SharedRecord, Version};
use crate::value::{Dict, MAX_DEPTH, Value, from_value, to_value};
use crate::{Error, SessionCodec, SessionConfig, SessionKey};

/// The session data key of the test cookie (Django's `TEST_COOKIE_NAME`).
pub const TEST_COOKIE_NAME: &str = "testcookie";
/// The test cookie's value (Django's `TEST_COOKIE_VALUE`).
pub const TEST_COOKIE_VALUE: &str = "worked";

/// How many fresh keys [`Session::create`] tries before giving up. Keys are 165 random bits, so a
/// second attempt already means the store is misbehaving; the bound turns a broken store into an
/// error instead of a loop.
pub const CREATE_ATTEMPTS: usize = 100;

/// One client's session, as seen by one request: Django's `request.session`.
///
/// A `Session` is a cheap handle (clone it freely; clones share state). Nothing is read from the
/// store until the data is first needed, so a request that never touches its session never touches
/// the store. The `accessed` and `modified` flags follow Django's rules exactly; the middleware uses
/// them to decide whether to save and what cookie to send.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{MemoryStore, Session, SessionConfig, Expiry};
///
/// # tokio_test_block_on(async {
/// let store = Arc::new(MemoryStore::default());
/// let config = Arc::new(SessionConfig::new("a long random secret"));
///
/// // A request without a session cookie.
/// let session = Session::new(store.clone(), config.clone(), None);
/// session.insert("user_id", &42u64).await?;
/// session.set_expiry(Expiry::Seconds(3600)).await?;
/// session.save().await?;
/// let key = session.key().expect("saving made a key");
///
/// // A later request presenting that key in its cookie.
/// let session = Session::new(store, config, Some(key.as_str()));
/// assert_eq!(session.get::<u64>("user_id").await?, Some(42));
/// assert!(session.accessed() && !session.modified());
/// # Ok::<(), session_core::Error>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
///
/// # Concurrent requests
///
/// Two requests on one session (two tabs, a page and its XHRs) each load it and each save it. What
/// the later save does is [`SessionConfig::concurrency`](crate::SessionConfig::concurrency):
///
/// | | `last_write_wins` (default, Django's) | `merge` | `reject` |
/// |---|---|---|---|
/// | both set different keys | the later save erases the earlier one's key | both keys survive | the later save fails with [`Error::Conflict`] |
/// | both set the same key | the later value | the later save's value | the later save fails |
/// | one removes a key the other set | the later save's whole data | the later save's change to that key wins (a key only one of them touched keeps that one's change) | the later save fails |
/// | one flushes or cycles the key | a later save fails with [`Error::SessionDeleted`] (Django's `SessionInterrupted`) | same: the flush wins, nothing is resurrected | same |
/// | one calls [`clear`](Self::clear) | its empty data, or the later data | everything stored is dropped, then the other's later changes apply on top | the later save fails |
/// | expiry ([`set_expiry`](Self::set_expiry)) | the later save's | `_session_expiry` is a key like any other: set by one request, it survives the other's save | the later save fails |
///
/// Under `merge` a save reads the stored session again only when it changed since this request
/// read it (the compare-and-swap failed), re-applies this request's [`changes`](Self::changes)
/// to it, and tries again, up to [`merge_attempts`](crate::SessionConfig::merge_attempts) times;
/// then it fails with [`Error::Conflict`]. The middleware answers a conflict 409, without a cookie.
/// After a merged save the handle holds the merged data. A change made behind the session's back
/// and flagged with [`set_modified`](Self::set_modified) is not a recorded change, so `merge` cannot
/// re-apply it: change values through [`insert`](Self::insert) and friends.
///
/// Any write changes what a store compares: a last-write-wins save of ours, and Django's own save
/// to a shared database or cache (it rewrites `session_data` and the expiry), so requests of both
/// are detected.
/// Both policies need a store that can compare-and-swap
/// ([`StoreCapabilities`](crate::StoreCapabilities)); [`ConcurrencyPolicy::check_store`] is the
/// check store and layer constructors make.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn SessionStore>,
    config: Arc<SessionConfig>,
    state: Mutex<State>,
    // Serialises loads so concurrent first accesses through clones of one handle load once.
    load_lock: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    key: Option<SessionKey>,
    // `None` until loaded: "not loaded" and "loaded and empty" are different states in Django.
    // Shared so a save can write a snapshot without cloning the data or holding the lock.
    cache: Option<Arc<Dict>>,
    accessed: bool,
    modified: bool,
    // What the loaded data was read at, under the merge and reject policies; `None` when this
    // request has not read the stored record (or has just created it).
    version: Option<Version>,
    // What this request changed since it loaded or last saved, for the merge policy.
    changes: Changes,
    // When the stored record expires, when the store said so on load (or we last saved it): the
    // throttled sliding expiry (`refresh_fraction`) decides from it.
    stored_expires_at: Option<OffsetDateTime>,
}

impl State {
    /// After `saved` was written: what was changed is stored now, unless the data changed again
    /// during the save.
    fn changes_saved(&mut self, saved: &Arc<Dict>) {
        if self
            .cache
            .as_ref()
            .is_some_and(|cache| Arc::ptr_eq(cache, saved))
        {
            self.changes = Changes::default();
        }
    }

    fn data_mut(&mut self) -> &mut Dict {
        Arc::make_mut(self.cache.get_or_insert_with(Default::default))
    }

    fn data(&self) -> &Dict {
        static EMPTY: std::sync::OnceLock<Dict> = std::sync::OnceLock::new();
        self.cache
            .as_deref()
            .unwrap_or_else(|| EMPTY.get_or_init(Dict::new))
    }
}

impl Session {
    /// A session for a request that presented `key` in its cookie (or no cookie). An invalid key
    /// (empty, shorter than 8 characters, longer than 4096 bytes) counts as no key.
    pub fn new(
        store: Arc<dyn SessionStore>,
        config: Arc<SessionConfig>,
        key: Option<&str>,
    ) -> Self {
        Session {
            inner: Arc::new(Inner {
                store,
                config,
                state: Mutex::new(State {
                    key: key.and_then(SessionKey::from_client),
                    ..State::default()
                }),
                load_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way that matters more
        // than losing the session, so keep going with the inner value.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The store as a trait object: calling through `Arc<dyn SessionStore>` itself would go through
    /// the `Arc` forwarding impl and box every call's future twice.
    fn backend(&self) -> &dyn SessionStore {
        &*self.inner.store
    }

    /// The store this session reads and writes.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.store
    }

    /// The settings this session follows.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The current session key (`None` until the session is saved, or after a flush). Read-only: it
    /// changes only through [`save`](Self::save), [`cycle_key`](Self::cycle_key),
    /// [`flush`](Self::flush) or a load that finds nothing.
    pub fn key(&self) -> Option<SessionKey> {
        self.state().key.clone()
    }

    /// Whether the data was read or written during this request (the middleware then adds
    /// `Vary: Cookie`).
    pub fn accessed(&self) -> bool {
        self.state().accessed
    }

    /// Whether the data was changed during this request (the middleware then saves it).
    pub fn modified(&self) -> bool {
        self.state().modified
    }

    /// Sets the `modified` flag, as assigning `request.session.modified` does in Django: set it after
    /// changing a value in place that the session cannot see.
    pub fn set_modified(&self, modified: bool) {
        self.state().modified = modified;
    }

    /// Sets the `accessed` flag (Django exposes it as a plain attribute too).
    pub fn set_accessed(&self, accessed: bool) {
        self.state().accessed = accessed;
    }

    /// What this request changed since the session was loaded or last saved (the `merge` policy
    /// re-applies it). Django's `modified` flag is unaffected by it.
    pub fn changes(&self) -> Changes {
        self.state().changes.clone()
    }

    /// Django's `is_empty`: no key, and no data loaded or the loaded data is empty. Touches no flag
    /// and never loads.
    pub fn is_empty(&self) -> bool {
        let state = self.state();
        state.key.is_none() && state.cache.as_ref().is_none_or(|data| data.is_empty())
    }

    /// Makes sure the data is loaded, setting `accessed`, and returns the locked state.
    async fn loaded(&self) -> Result<MutexGuard<'_, State>, Error> {
        let is_loaded = {
            let mut state = self.state();
            state.accessed = true;
            state.cache.is_some()
        };
        if !is_loaded {
            let _one_loader = self.inner.load_lock.lock().await;
            let key = {
                let state = self.state();
                if state.cache.is_some() {
                    None
                } else {
                    Some(state.key.clone())
                }
            };
            if let Some(key) = key {
                // Shared with the store where it keeps values: copied only if changed.
                let (loaded, version, expires_at) = match &key {
                    None => (Some(Arc::default()), None, None),
                    Some(key) if self.policy().needs_compare_and_swap() => {
                        match self
                            .call("load_versioned", key, self.backend().load_versioned(key))
                            .await?
                        {
                            Some(record) => {
                                (Some(record.data), Some(record.version), record.expires_at)
                            }
                            None => (None, None, None),
                        }
                    }
                    // Throttled sliding expiry needs to know when the record expires.
                    Some(key) if self.refresh_throttled() => {
                        match self
                            .call("load", key, self.backend().load_with_expiry(key))
                            .await?
                        {
                            Some(record) => (Some(Arc::new(record.data)), None, record.expires_at),
                            None => (None, None, None),
                        }
                    }
                    Some(key) => (
                        self.call("load", key, self.backend().load_shared(key))
                            .await?,
                        None,
                        None,
                    ),
                };
                let mut state = self.state();
                if state.cache.is_none() {
                    state.version = version;
                    state.stored_expires_at = expires_at;
                    state.cache = Some(match loaded {
                        Some(data) => data,
                        None => {
                            self.forget_missing_key(&mut state, key.as_ref());
                            Arc::default()
                        }
                    });
                }
            }
        }
        Ok(self.state())
    }

    /// One store call, counted, timed and traced ([`crate::metrics`]).
    async fn call<T>(
        &self,
        operation: &'static str,
        key: &SessionKey,
        call: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let store = self.backend().kind();
        let result = metrics::store_call(store, operation, Some(key), call).await;
        if let Err(Error::SessionDeleted) = &result {
            metrics::count(names::SESSIONS_INTERRUPTED, store);
        }
        result
    }

    fn refresh_throttled(&self) -> bool {
        let config = &self.inner.config;
        config.save_every_request && config.refresh_fraction > 0.0
    }

    /// Whether saving an unmodified session now is worth it under `save_every_request`: the
    /// throttled sliding expiry of [`SessionConfig::refresh_fraction`]. True when the fraction
    /// is 0 (Django's rule: every request), when the store did not say when the record expires
    /// (the database, cached-db, memory, Redis and in-process cache stores do; memcached and
    /// files do not, and always save), or when at
    /// least that fraction of the session's age has passed since its last save. False for a
    /// session that expires at a fixed date (a save would not extend it). The middleware saves
    /// a modified session whatever this says. Loads the session if it is not loaded.
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn refresh_due(&self, now: OffsetDateTime) -> Result<bool, Error> {
        let fraction = self.inner.config.refresh_fraction;
        if fraction <= 0.0 {
            return Ok(true);
        }
        let (expiry, stored_expires_at) = {
            let state = self.loaded().await?;
            (stored_expiry(state.data()), state.stored_expires_at)
        };
        let Some(expires_at) = stored_expires_at else {
            return Ok(true);
        };
        let span = match expiry {
            Expiry::At(_) | Expiry::In(_) => return Ok(false),
            other => other.age(now, self.inner.config.cookie_age),
        };
        if span <= 0 {
            return Ok(true);
        }
        // Saved at `expires_at - span`; due once `fraction * span` has passed since then.
        let remaining = (expires_at - now).as_seconds_f64();
        Ok(remaining <= (1.0 - fraction) * span as f64)
    }

    fn policy(&self) -> ConcurrencyPolicy {
        self.inner.config.concurrency
    }

    /// What Django's backends do when a key loads nothing.
    fn forget_missing_key(&self, state: &mut State, key: Option<&SessionKey>) {
        match self.backend().key_kind() {
            // The key names nothing: drop it so the next save makes a fresh one.
            KeyKind::Random => {
                if state.key.as_ref() == key {
                    state.key = None;
                }
            }
            // An invalid or stale signed cookie: keep it and mark the session modified, so the
            // client is sent a fresh cookie (Django's signed_cookies `create()`).
            KeyKind::SignedData => state.modified = true,
        }
    }

    /// The value under `key`, converted to `T` (`None` when absent).
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it;
    /// [`Error::Value`] when the value is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.get_value(key).await? {
            Some(value) => from_value(value).map(Some).map_err(|source| Error::Value {
                key: key.to_owned(),
                source,
            }),
            None => Ok(None),
        }
    }

    /// The raw value under `key`.
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>, Error> {
        Ok(self.loaded().await?.data().get(key).cloned())
    }

    /// Whether `key` is present (Django's `key in session`).
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn contains_key(&self, key: &str) -> Result<bool, Error> {
        Ok(self.loaded().await?.data().contains_key(key))
    }

    /// Stores `value` under `key` (Django's `session[key] = value`); sets `modified`.
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it;
    /// [`Error::Value`] when `value` cannot become a session value (or nests too deeply).
    pub async fn insert<T: Serialize + ?Sized>(
        &self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<(), Error> {
        let key = key.into();
        match to_value(value) {
            Ok(value) => self.insert_value(key, value).await,
            Err(source) => Err(Error::Value { key, source }),
        }
    }

    /// Stores a raw value under `key`; sets `modified`. Overwriting keeps the key's position, as in a
    /// Python dict.
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it;
    /// [`Error::Value`] when `value` nests too deeply.
    pub async fn insert_value(
        &self,
        key: impl Into<String>,
        value: impl Into<Value>,
    ) -> Result<(), Error> {
        let value = value.into();
        check_depth(&value)?;
        let key = key.into();
        let mut state = self.loaded().await?;
        state.changes.set(&key);
        state.data_mut().insert(key, value);
        state.modified = true;
        Ok(())
    }

    /// Removes `key` and returns its value (Django's `del session[key]`, without the `KeyError`):
    /// sets `modified` only if the key was present.
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn remove(&self, key: &str) -> Result<Option<Value>, Error> {
        let mut state = self.loaded().await?;
        if !state.data().contains_key(key) {
            return Ok(None);
        }
        state.modified = true;
        state.changes.removed(key);
        Ok(state.data_mut().remove(key))
    }

    /// Removes `key` and returns its value converted to `T` (Django's `pop(key)`); `None` when
    /// absent, in which case `modified` is left alone. If the value does not convert, it stays.
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it;
    /// [`Error::Value`] when the value is not a `T` (it then stays in the session).
    pub async fn pop<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let mut state = self.loaded().await?;
        let Some(value) = state.data().get(key) else {
            return Ok(None);
        };
        let converted = from_value(value.clone()).map_err(|source| Error::Value {
            key: key.to_owned(),
            source,
        })?;
        state.data_mut().remove(key);
        state.changes.removed(key);
        state.modified = true;
        Ok(Some(converted))
    }

    /// Django's `pop(key, default)`: the value under `key` (removed), or `default` when absent.
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it;
    /// [`Error::Value`] when the value is not a `T`.
    pub async fn pop_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T, Error> {
        Ok(self.pop(key).await?.unwrap_or(default))
    }

    /// Django's `setdefault`: the existing value under `key`, or `default` after storing it (which
    /// sets `modified`).
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it;
    /// [`Error::Value`] when a value cannot be converted.
    pub async fn setdefault<T: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        default: T,
    ) -> Result<T, Error> {
        if let Some(existing) = self.get::<T>(key).await? {
            return Ok(existing);
        }
        self.insert(key, &default).await?;
        Ok(default)
    }

    /// Django's `update`: inserts every pair, and always sets `modified` (even for no pairs).
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it;
    /// [`Error::Value`] when a value cannot become a session value.
    pub async fn update<K, V>(&self, entries: impl IntoIterator<Item = (K, V)>) -> Result<(), Error>
    where
        K: Into<String>,
        V: Into<Value>,
    {
        let entries: Vec<(String, Value)> = entries
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        for (_, value) in &entries {
            check_depth(value)?;
        }
        let mut state = self.loaded().await?;
        for (key, _) in &entries {
            state.changes.set(key);
        }
        state.data_mut().extend(entries);
        state.modified = true;
        Ok(())
    }

    /// The keys, in insertion order.
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn keys(&self) -> Result<Vec<String>, Error> {
        Ok(self
            .loaded()
            .await?
            .data()
            .keys()
            .map(|k| k.to_string())
            .collect())
    }

    /// The values, in insertion order.
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn values(&self) -> Result<Vec<Value>, Error> {
        Ok(self.loaded().await?.data().values().cloned().collect())
    }

    /// The pairs, in insertion order.
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn items(&self) -> Result<Vec<(String, Value)>, Error> {
        Ok(self
            .loaded()
            .await?
            .data()
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect())
    }

    /// A snapshot of all the data (cheap: shared until either side changes).
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn data(&self) -> Result<Arc<Dict>, Error> {
        let mut state = self.loaded().await?;
        Ok(Arc::clone(state.cache.get_or_insert_with(Default::default)))
    }

    /// The number of entries.
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn len(&self) -> Result<usize, Error> {
        Ok(self.loaded().await?.data().len())
    }

    /// Empties the data without loading it (Django's `clear`); sets `accessed` and `modified`.
    pub fn clear(&self) {
        let mut state = self.state();
        state.cache = Some(Arc::default());
        state.changes.clear();
        state.accessed = true;
        state.modified = true;
    }

    /// Saves the session: creates it under a fresh key if it has none, otherwise updates it (Django's
    /// `save()`). Fails with [`Error::SessionDeleted`] if the record was deleted meanwhile.
    ///
    /// # Errors
    /// [`Error::SessionDeleted`] when the record was deleted meanwhile (Django's
    /// `UpdateError`), [`Error::KeyGenerationExhausted`] when no fresh key could be created,
    /// [`Error::Store`] when the store fails, [`Error::Serializer`] when the data cannot be
    /// serialized.
    pub async fn save(&self) -> Result<(), Error> {
        self.save_with(SaveMode::Update).await
    }

    /// Django's `save(must_create=...)`. With [`SaveMode::MustCreate`] the current data is written
    /// without loading anything first, and a taken key is [`Error::CreateConflict`].
    ///
    /// # Errors
    /// As [`save`](Self::save); with [`SaveMode::MustCreate`], [`Error::CreateConflict`] when
    /// the key is taken.
    pub async fn save_with(&self, mode: SaveMode) -> Result<(), Error> {
        let Some(key) = self.key() else {
            // Boxed, as `write_unless_changed` is: a new session's path is only this one save of
            // the request, and inline it would size every save's future.
            return Box::pin(self.create()).await;
        };
        self.write(key, mode).await
    }

    /// Writes the current data under `key` and adopts the key the store returns.
    async fn write(&self, key: SessionKey, mode: SaveMode) -> Result<(), Error> {
        let data = match mode {
            SaveMode::MustCreate => {
                let mut state = self.state();
                state.accessed = true;
                Arc::clone(state.cache.get_or_insert_with(Default::default))
            }
            SaveMode::Update if self.policy().needs_compare_and_swap() => {
                // Boxed: the opt-in policies' future is large, and inline it would size every
                // save's future, down to the one the middleware boxes for each request.
                return Box::pin(self.write_unless_changed(key)).await;
            }
            SaveMode::Update => self.data().await?,
        };
        let record = self.record_of(Arc::clone(&data));
        let expires_at = record.expires_at;
        let held = self
            .call("save", &key, self.backend().save_shared(&key, record, mode))
            .await?;
        let mut state = self.state();
        state.stored_expires_at = Some(expires_at);
        state.key = Some(held);
        // A fresh record: a later save under merge or reject reads its version first.
        state.version = None;
        state.changes_saved(&data);
        Ok(())
    }

    /// An update under the `merge` and `reject` policies: a compare-and-swap against the version
    /// this request read; under `merge`, on a conflict, this request's changes re-applied onto
    /// what is stored now, until a swap succeeds or the attempts run out.
    async fn write_unless_changed(&self, key: SessionKey) -> Result<(), Error> {
        let attempts = match self.policy() {
            ConcurrencyPolicy::Merge => self.inner.config.merge_attempts.max(1),
            _ => 1,
        };
        let (ours, changes, mut expected) = {
            // Reads the record (with its version) if this request has not yet.
            let mut state = self.loaded().await?;
            let ours = Arc::clone(state.cache.get_or_insert_with(Default::default));
            (ours, state.changes.clone(), state.version.clone())
        };
        let mut data = Arc::clone(&ours);
        let mut tried = 0;
        loop {
            let version = match expected.take() {
                Some(version) => version,
                None => {
                    // This request's changes go on top of what is stored now; if nothing is,
                    // the session was flushed or expired meanwhile, and that wins.
                    let Some(current) = self
                        .call("load_versioned", &key, self.backend().load_versioned(&key))
                        .await?
                    else {
                        metrics::count(names::SESSIONS_INTERRUPTED, self.backend().kind());
                        return Err(Error::SessionDeleted);
                    };
                    data = Arc::new(changes.apply(&current.data, &ours));
                    current.version
                }
            };
            tried += 1;
            let record = self.record_of(Arc::clone(&data));
            let expires_at = record.expires_at;
            let swapped = self.call(
                "save_if_unchanged",
                &key,
                self.backend().save_if_unchanged(&key, record, &version),
            );
            match swapped.await {
                Ok(written) => {
                    let mut state = self.state();
                    let unchanged_meanwhile = state
                        .cache
                        .as_ref()
                        .is_some_and(|cache| Arc::ptr_eq(cache, &ours));
                    state.stored_expires_at = Some(expires_at);
                    if unchanged_meanwhile {
                        state.cache = Some(data);
                        state.version = Some(written);
                        state.changes = Changes::default();
                    } else {
                        // Changed during the save (through a clone of this handle): keep every
                        // change, so the next save re-applies them onto a fresh read.
                        state.version = None;
                    }
                    return Ok(());
                }
                Err(Error::Conflict) if tried < attempts => {
                    metrics::count(names::MERGE_RETRIES, self.backend().kind());
                    tracing::debug!(
                        target: "djsession",
                        key = %crate::redact(key.as_str()),
                        attempt = tried,
                        "session changed by a concurrent request; merging again"
                    );
                }
                Err(Error::Conflict) => {
                    ::metrics::counter!(
                        names::SAVE_CONFLICTS,
                        "store" => self.backend().kind(),
                        "policy" => self.policy().as_str()
                    )
                    .increment(1);
                    return Err(Error::Conflict);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The record saving `data` now writes: its expiry computed from the data's own.
    fn record_of(&self, data: Arc<Dict>) -> SharedRecord {
        let now = OffsetDateTime::now_utc();
        let expiry = stored_expiry(&data);
        let cookie_age = self.inner.config.cookie_age;
        SharedRecord {
            expires_at: expiry.date(now, cookie_age),
            expiry_age: expiry.age(now, cookie_age),
            data,
        }
    }

    /// Saves the current data under a fresh key (Django's `create`); sets `modified`.
    ///
    /// # Errors
    /// [`Error::KeyGenerationExhausted`] when every fresh key was taken (a broken store),
    /// [`Error::Store`] when the store fails.
    pub async fn create(&self) -> Result<(), Error> {
        // No `exists` probe before the insert (Django makes one): must-create saves are atomic in
        // every store, so a taken key is reported by the save itself, one round trip cheaper.
        for _ in 0..CREATE_ATTEMPTS {
            // The key is adopted only once the store has accepted it (`write` does that), so a
            // failed create leaves the session's key as it was.
            let key = SessionKey::generate()?;
            match self.write(key, SaveMode::MustCreate).await {
                Ok(()) => {
                    self.state().modified = true;
                    metrics::count(names::SESSIONS_CREATED, self.backend().kind());
                    return Ok(());
                }
                Err(Error::CreateConflict) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(Error::KeyGenerationExhausted {
            attempts: CREATE_ATTEMPTS,
        })
    }

    /// Deletes the stored record of the current key, if any (Django's `delete()`). The in-memory data
    /// is kept, except for the signed-cookie store, whose data is its key: there the session is
    /// emptied, as Django's backend does.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails to delete the record.
    pub async fn delete(&self) -> Result<(), Error> {
        let Some(key) = self.key() else {
            return Ok(());
        };
        self.call("delete", &key, self.backend().delete(&key))
            .await?;
        if self.backend().key_kind() == KeyKind::SignedData {
            let mut state = self.state();
            state.key = None;
            state.cache = Some(Arc::default());
            state.modified = true;
        }
        Ok(())
    }

    /// Ends the session (logout): empties the data, deletes the record and forgets the key. The
    /// middleware then deletes the cookie.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails to delete the record.
    pub async fn flush(&self) -> Result<(), Error> {
        self.clear();
        self.delete().await?;
        self.state().key = None;
        metrics::count(names::SESSIONS_FLUSHED, self.backend().kind());
        Ok(())
    }

    /// Moves the data to a fresh key and deletes the old record (call it on login to defeat session
    /// fixation). Loads the data first, so it works on a session not yet read in this request.
    ///
    /// # Errors
    /// As [`save`](Self::save) (the data is saved under a new key) and [`delete`](Self::delete)
    /// (the old record is removed).
    pub async fn cycle_key(&self) -> Result<(), Error> {
        let data = self.data().await?;
        let old = self.key();
        self.create().await?;
        self.state().cache = Some(data);
        if let Some(old) = old
            && self.key().as_ref() != Some(&old)
        {
            self.call("delete", &old, self.backend().delete(&old))
                .await?;
        }
        metrics::count(names::SESSIONS_CYCLED, self.backend().kind());
        Ok(())
    }

    /// Reads the record straight from the store, bypassing (and not filling) the loaded data, as
    /// Django's `load()` does; a key that loads nothing is forgotten.
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn load(&self) -> Result<Dict, Error> {
        let Some(key) = self.key() else {
            return Ok(Dict::new());
        };
        match self.call("load", &key, self.backend().load(&key)).await? {
            Some(data) => Ok(data),
            None => {
                self.forget_missing_key(&mut self.state(), Some(&key));
                Ok(Dict::new())
            }
        }
    }

    /// Sets when the session expires (Django's `set_expiry`).
    ///
    /// [`Expiry::Default`] removes any per-session expiry (setting `modified` only if there was
    /// one); the others store it and set `modified`. [`Expiry::In`] is resolved against the clock
    /// now, and fixed moments are stored with microsecond precision, as Python does.
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn set_expiry(&self, expiry: Expiry) -> Result<(), Error> {
        match expiry.to_stored(OffsetDateTime::now_utc()) {
            None => self.remove(EXPIRY_KEY).await.map(drop),
            Some(stored) => self.insert_value(EXPIRY_KEY, stored).await,
        }
    }

    /// The stored per-session expiry ([`Expiry::Default`] when none, or when the stored value is
    /// unusable).
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn expiry(&self) -> Result<Expiry, Error> {
        Ok(stored_expiry(self.loaded().await?.data()))
    }

    /// Seconds until the session expires, from now (Django's `get_expiry_age()`).
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn expiry_age(&self) -> Result<i64, Error> {
        let expiry = self.expiry().await?;
        Ok(self.expiry_age_with(OffsetDateTime::now_utc(), expiry))
    }

    /// When the session expires, if saved now (Django's `get_expiry_date()`).
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn expiry_date(&self) -> Result<OffsetDateTime, Error> {
        let expiry = self.expiry().await?;
        Ok(self.expiry_date_with(OffsetDateTime::now_utc(), expiry))
    }

    /// Django's `get_expiry_age(modification=..., expiry=...)`: computed from the given values, never
    /// loading anything.
    pub fn expiry_age_with(&self, modification: OffsetDateTime, expiry: Expiry) -> i64 {
        expiry.age(modification, self.inner.config.cookie_age)
    }

    /// Django's `get_expiry_date(modification=..., expiry=...)`.
    pub fn expiry_date_with(&self, modification: OffsetDateTime, expiry: Expiry) -> OffsetDateTime {
        expiry.date(modification, self.inner.config.cookie_age)
    }

    /// Whether the cookie should last only until the browser closes (Django's
    /// `get_expire_at_browser_close()`).
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn expire_at_browser_close(&self) -> Result<bool, Error> {
        let expiry = self.expiry().await?;
        Ok(expiry.at_browser_close(self.inner.config.expire_at_browser_close))
    }

    /// Stores the test cookie value, to check on a later request that the browser keeps cookies.
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn set_test_cookie(&self) -> Result<(), Error> {
        self.insert_value(TEST_COOKIE_NAME, TEST_COOKIE_VALUE).await
    }

    /// Whether the test cookie set by [`set_test_cookie`](Self::set_test_cookie) came back.
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn test_cookie_worked(&self) -> Result<bool, Error> {
        Ok(self
            .get_value(TEST_COOKIE_NAME)
            .await?
            .as_ref()
            .and_then(Value::as_str)
            == Some(TEST_COOKIE_VALUE))
    }

    /// Removes the test cookie value.
    ///
    /// # Errors
    /// [`Error::Store`] when the data is not loaded yet and the store fails to load it.
    pub async fn delete_test_cookie(&self) -> Result<(), Error> {
        self.remove(TEST_COOKIE_NAME).await.map(drop)
    }

    /// Django's `encode`: the signed string this session's settings would store for `data`.
    ///
    /// # Errors
    /// [`Error::Serializer`] when the data cannot be serialized, [`Error::Signing`] when it
    /// cannot be signed.
    pub fn encode(&self, data: &Dict) -> Result<String, Error> {
        SessionCodec::new(&self.inner.config)?.encode(data)
    }

    /// Django's `decode`: the data in a signed string, or an empty dict if it does not verify or
    /// decode (logging a security warning when the signature is bad). Errors only when the
    /// configuration is invalid.
    ///
    /// # Errors
    /// [`Error::Signing`] when the signature does not verify (or the data is malformed),
    /// [`Error::Serializer`] when the payload does not parse, [`Error::NotADict`] when it is
    /// not a dict.
    pub fn decode(&self, session_data: &str) -> Result<Dict, Error> {
        Ok(SessionCodec::new(&self.inner.config)?.decode(session_data))
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Session")
            .field("key", &state.key)
            .field("loaded", &state.cache.is_some())
            .field("accessed", &state.accessed)
            .field("modified", &state.modified)
            .finish_non_exhaustive()
    }
}

fn stored_expiry(data: &Dict) -> Expiry {
    let stored = data.get(EXPIRY_KEY);
    Expiry::from_stored(stored).unwrap_or_else(|| {
        tracing::warn!(
            value = ?stored,
            "ignoring unusable {EXPIRY_KEY} value; the default expiry applies"
        );
        Expiry::Default
    })
}

/// A value stored in the session sits one level below the session dict itself.
fn check_depth(value: &Value) -> Result<(), Error> {
    if value.depth() + 1 > MAX_DEPTH {
        return Err(Error::Serializer(SerializerError::TooDeep {
            limit: MAX_DEPTH,
        }));
    }
    Ok(())
}
