//! The storage interface every backend implements.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::value::Dict;
use crate::{Error, SessionKey};

/// How a save must treat an existing record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    /// Create a new record; if the key is taken, fail with [`Error::CreateConflict`] (atomically: of
    /// two concurrent creators of one key, exactly one wins).
    MustCreate,
    /// Update the existing record; if it no longer exists (deleted or expired by someone else), fail
    /// with [`Error::SessionDeleted`] rather than recreate it.
    Update,
}

/// What is saved: the session data and when it expires.
///
/// `expires_at` and `expiry_age` are computed together by the session from its expiry settings at
/// the moment of the save: a database stores `expires_at` (Django's `expire_date`), a cache uses
/// `expiry_age` as the TTL.
#[derive(Debug, Clone, Copy)]
pub struct SessionRecord<'a> {
    /// The session data, including `_session_expiry` when one is set.
    pub data: &'a Dict,
    /// When the record expires server-side.
    pub expires_at: OffsetDateTime,
    /// Whole seconds from now until `expires_at` (may be zero or negative: already expired).
    pub expiry_age: i64,
}

/// A [`SessionRecord`] that holds its data by reference count rather than by borrow: what the
/// [`Session`](crate::Session) handle saves through [`SessionStore::save_shared`], so a store that
/// keeps values rather than bytes ([`MemoryStore`](crate::MemoryStore)) keeps this very data
/// instead of a copy of it.
#[derive(Debug, Clone)]
pub struct SharedRecord {
    /// The session data, including `_session_expiry` when one is set.
    pub data: Arc<Dict>,
    /// When the record expires server-side.
    pub expires_at: OffsetDateTime,
    /// Whole seconds from now until `expires_at` (may be zero or negative: already expired).
    pub expiry_age: i64,
}

impl SharedRecord {
    /// The same record, borrowed: what [`SessionStore::save`] takes.
    pub fn as_record(&self) -> SessionRecord<'_> {
        SessionRecord {
            data: &self.data,
            expires_at: self.expires_at,
            expiry_age: self.expiry_age,
        }
    }
}

/// A loaded record with its server-side expiry, when the store knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedRecord {
    /// The session data.
    pub data: Dict,
    /// When the record expires (a database's `expire_date`); `None` when the store does not say.
    pub expires_at: Option<OffsetDateTime>,
}

/// An opaque token for the stored state a load read, so a later save can require that nothing
/// changed since ([`SessionStore::save_if_unchanged`]).
///
/// Each store picks what identifies a state: the memory store a counter bumped on every write, the
/// database stores the stored `session_data` and `expire_date`, the cache stores the stored bytes
/// with the entry's expiry (Redis), a cas unique (memcached) or a write stamp (moka), the file store
/// the file's bytes, inode and modification time. The data alone is not enough: Django's
/// signature carries a timestamp in whole seconds, so two saves of the same data within one second
/// write the same text, while the expiry moves on every save. A write by Django changes these like
/// any other write, so it is detected. Compare versions only with versions from the same store
/// and key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Version(VersionRepr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum VersionRepr {
    Counter(u64),
    Bytes(Arc<[u8]>),
}

impl Version {
    /// A version that is a write counter.
    pub fn from_counter(counter: u64) -> Self {
        Version(VersionRepr::Counter(counter))
    }

    /// A version that is the stored bytes (or a digest of them).
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Self {
        Version(VersionRepr::Bytes(bytes.into()))
    }

    /// The counter, for a version made by [`from_counter`](Self::from_counter).
    pub fn as_counter(&self) -> Option<u64> {
        match &self.0 {
            VersionRepr::Counter(counter) => Some(*counter),
            VersionRepr::Bytes(_) => None,
        }
    }

    /// The bytes, for a version made by [`from_bytes`](Self::from_bytes).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.0 {
            VersionRepr::Counter(_) => None,
            VersionRepr::Bytes(bytes) => Some(bytes),
        }
    }
}

impl fmt::Debug for Version {
    // The bytes are a signed session: show their size, not them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            VersionRepr::Counter(counter) => write!(f, "Version(#{counter})"),
            VersionRepr::Bytes(bytes) => write!(f, "Version({} bytes)", bytes.len()),
        }
    }
}

/// A loaded record with the [`Version`] it was read at: what
/// [`SessionStore::load_versioned`] returns.
#[derive(Debug, Clone)]
pub struct VersionedRecord {
    /// The session data.
    pub data: Arc<Dict>,
    /// What was read, to hand back to [`SessionStore::save_if_unchanged`].
    pub version: Version,
    /// When the record expires, when the store knows it (as in [`LoadedRecord`]).
    pub expires_at: Option<OffsetDateTime>,
}

/// What a store can do beyond the basic operations, so a configuration that needs more is refused
/// when the store is built instead of being silently downgraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StoreCapabilities {
    /// [`load_versioned`](SessionStore::load_versioned) and
    /// [`save_if_unchanged`](SessionStore::save_if_unchanged) work, atomically: what the
    /// `merge` and `reject` [concurrency policies](crate::ConcurrencyPolicy) need.
    pub compare_and_swap: bool,
}

impl StoreCapabilities {
    /// The basic operations only (what a store that overrides nothing declares).
    pub const BASIC: StoreCapabilities = StoreCapabilities {
        compare_and_swap: false,
    };

    /// The basic operations and compare-and-swap saves.
    pub const COMPARE_AND_SWAP: StoreCapabilities = StoreCapabilities {
        compare_and_swap: true,
    };
}

/// What [`SessionStore::clear_expired`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearExpired {
    /// This many expired records were removed.
    Removed(u64),
    /// The backend expires records by itself (a cache's TTL, a signed cookie): nothing to clear.
    NotNeeded,
}

/// How a store's keys relate to its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyKind {
    /// Random keys naming server-side records (db, cache, file, memory). A key that loads nothing is
    /// dropped, so the next save makes a fresh key.
    #[default]
    Random,
    /// The key is the signed session data itself (the signed-cookie store). A key that fails to load
    /// is kept and the session is marked modified, so the client gets a fresh (empty) cookie, as in
    /// Django.
    SignedData,
}

/// A session storage backend: Django's `SessionStore` primitives, async.
///
/// The [`Session`](crate::Session) handle builds Django's semantics (lazy loading, flags, key
/// generation, `cycle_key`, `flush`, expiry) on top of these five operations, so a store only
/// translates them to its storage. Run the `session-conformance` suite against a new store to check it.
///
/// Implementations must:
/// - never return an expired record from [`load`](Self::load) (treat it as absent);
/// - return corrupt records as present but empty ([`SessionCodec::decode`](crate::SessionCodec::decode)
///   does this and logs the security warning);
/// - make [`SaveMode::MustCreate`] atomic and never turn [`SaveMode::Update`] of a vanished record
///   into a re-insert;
/// - never write anything during `load` or `exists`.
#[async_trait]
pub trait SessionStore: Send + Sync + fmt::Debug {
    /// The data stored under `key`, or `None` when there is no live record.
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error>;

    /// [`load`](Self::load), also saying when the record expires. Stores that keep an expiry
    /// (databases) override it; a cache in front of the store uses it to expire its copy with the
    /// record (Django's `cached_db` sets the cache timeout from `expire_date`).
    async fn load_with_expiry(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        Ok(self.load(key).await?.map(|data| LoadedRecord {
            data,
            expires_at: None,
        }))
    }

    /// [`load`](Self::load), with the data behind a reference count. The
    /// [`Session`](crate::Session) handle loads through this, and changes its data copy-on-write,
    /// so a store that keeps values ([`MemoryStore`](crate::MemoryStore)) overrides it to hand out
    /// what it holds without copying it. The default wraps what `load` returns.
    async fn load_shared(&self, key: &SessionKey) -> Result<Option<Arc<Dict>>, Error> {
        Ok(self.load(key).await?.map(Arc::new))
    }

    /// Whether a record exists under `key` (Django's db backend counts expired, uncleared rows).
    async fn exists(&self, key: &SessionKey) -> Result<bool, Error>;

    /// Writes `record` under `key` according to `mode`, and returns the key the client should hold
    /// from now on: `key` itself for every store except the signed-cookie one, whose key is the
    /// signed data.
    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error>;

    /// [`save`](Self::save), handing over the data behind a reference count. The
    /// [`Session`](crate::Session) handle saves through this; a store that keeps values overrides
    /// it to keep `record.data` itself rather than a copy. The default saves
    /// [`record.as_record()`](SharedRecord::as_record), with the same rules as `save`.
    async fn save_shared(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.save(key, record.as_record(), mode).await
    }

    /// Removes the record under `key`; absent records are not an error.
    async fn delete(&self, key: &SessionKey) -> Result<(), Error>;

    /// Removes every expired record (Django's `clearsessions`).
    async fn clear_expired(&self) -> Result<ClearExpired, Error>;

    /// How this store's keys relate to its data.
    fn key_kind(&self) -> KeyKind {
        KeyKind::Random
    }

    /// A short label naming the kind of store, for metrics and traces (the `store` label of
    /// [`crate::metrics`]): `memory`, `postgres`, `mysql`, `sqlite`, `redis`, `moka`,
    /// `memcached`, `file`, `cookie`, `cached-db`. The default is `custom`.
    fn kind(&self) -> &'static str {
        "custom"
    }

    /// What this store can do beyond the basic operations. The default declares nothing: a store
    /// that overrides [`load_versioned`](Self::load_versioned) and
    /// [`save_if_unchanged`](Self::save_if_unchanged) declares
    /// [`StoreCapabilities::COMPARE_AND_SWAP`].
    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities::BASIC
    }

    /// [`load`](Self::load), with the [`Version`] of what was read. Every write to the record,
    /// through any method of the store (or by another program sharing it, such as Django), must
    /// make later loads return a different version.
    ///
    /// # Errors
    /// The default answers [`Error::Config`]: the store cannot compare-and-swap.
    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        let _ = key;
        Err(no_compare_and_swap(self))
    }

    /// Replaces the live record under `key` with `record`, atomically, only if it is still at
    /// `expected` (a version [`load_versioned`](Self::load_versioned) or an earlier
    /// `save_if_unchanged` returned); returns the version of what it wrote.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the record is at another version, [`Error::SessionDeleted`] when
    /// there is no live record (never re-insert it), [`Error::Store`] when the backend fails. The
    /// default answers [`Error::Config`]: the store cannot compare-and-swap.
    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, Error> {
        let _ = (key, record, expected);
        Err(no_compare_and_swap(self))
    }

    /// Whether the record under `key` is still at `expected` (a version
    /// [`load_versioned`](Self::load_versioned) or [`save_if_unchanged`](Self::save_if_unchanged)
    /// returned): `false` once anything rewrote, removed or expired it.
    ///
    /// A cache in front of the store asks this right after writing its copy of that version, so
    /// a copy that a racing write has already made stale is noticed and removed rather than
    /// served until it expires. The default loads the record with `load_versioned` and compares;
    /// a store that can answer without reading the data back (a database's primary-key query)
    /// overrides it.
    ///
    /// # Errors
    /// As [`load_versioned`](Self::load_versioned): by default [`Error::Config`] when the store
    /// cannot compare-and-swap.
    async fn is_unchanged(&self, key: &SessionKey, expected: &Version) -> Result<bool, Error> {
        let current = self.load_versioned(key).await?;
        Ok(current.is_some_and(|record| record.version == *expected))
    }
}

/// `store` as the shared trait object a [`Session`](crate::Session) holds: an
/// `Arc<dyn SessionStore>` is shared as it is, anything else is put in a new `Arc`.
///
/// Wrapping an `Arc<dyn SessionStore>` in another `Arc` would work through the forwarding impl
/// for `Arc<S>`, which boxes each call's future on top of the store's own box: two allocations
/// more and about 500 instructions more per request through a layer built that way. Adapters
/// that take `impl SessionStore` (the tower layer, actix-web's middleware) share their store
/// through this.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{MemoryStore, SessionStore, store::into_shared};
///
/// let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
/// assert!(Arc::ptr_eq(&into_shared(Arc::clone(&store)), &store));
/// let fresh = into_shared(MemoryStore::new());
/// assert_eq!(fresh.kind(), "memory");
/// ```
pub fn into_shared(store: impl SessionStore + 'static) -> Arc<dyn SessionStore> {
    let any: &dyn Any = &store;
    if let Some(shared) = any.downcast_ref::<Arc<dyn SessionStore>>() {
        return Arc::clone(shared);
    }
    Arc::new(store)
}

fn no_compare_and_swap(store: &(impl SessionStore + ?Sized)) -> Error {
    Error::Config(format!(
        "{store:?} cannot compare-and-swap: use concurrency = \"last_write_wins\" with it"
    ))
}

#[async_trait]
impl<S: SessionStore + ?Sized> SessionStore for Arc<S> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        (**self).load(key).await
    }

    async fn load_with_expiry(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        (**self).load_with_expiry(key).await
    }

    async fn load_shared(&self, key: &SessionKey) -> Result<Option<Arc<Dict>>, Error> {
        (**self).load_shared(key).await
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        (**self).exists(key).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        (**self).save(key, record, mode).await
    }

    async fn save_shared(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        (**self).save_shared(key, record, mode).await
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        (**self).delete(key).await
    }

    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        (**self).clear_expired().await
    }

    fn key_kind(&self) -> KeyKind {
        (**self).key_kind()
    }

    fn capabilities(&self) -> StoreCapabilities {
        (**self).capabilities()
    }

    fn kind(&self) -> &'static str {
        (**self).kind()
    }

    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        (**self).load_versioned(key).await
    }

    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, Error> {
        (**self).save_if_unchanged(key, record, expected).await
    }

    async fn is_unchanged(&self, key: &SessionKey, expected: &Version) -> Result<bool, Error> {
        (**self).is_unchanged(key, expected).await
    }
}
