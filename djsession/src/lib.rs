#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
pub mod prelude;

pub use error::Error;

/// The attribute a [`SessionStore`] implementation needs (the trait is object-safe through it).
pub use async_trait::async_trait;
/// The error of [`SessionStore`] and [`Session`] operations (`session_core::Error`); it converts
/// into [`Error`].
pub use session_core::Error as SessionError;

// The core: always there.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use session_core::MissingSessionLayer;
/// Clearing expired sessions once or periodically.
pub use session_core::maintenance;
/// The metric names and the table of every metric and label.
pub use session_core::metrics;
/// The serializers (Django's JSON, MessagePack, safe pickle) and the trait to write your own.
pub use session_core::serializer;
/// The value model session data is made of.
pub use session_core::value;
pub use session_core::{
    Change, Changes, ClearExpired, ConcurrencyPolicy, ConfigError, Dict, Expiry, KeyKind,
    LoadedRecord, MemoryStore, SameSite, SaveMode, Session, SessionCodec, SessionConfig,
    SessionKey, SessionRecord, SessionStore, SharedRecord, StoreCapabilities, Str, Value, Version,
    VersionedRecord,
};
/// Django's `django.core.signing` and `salted_hmac`, byte for byte.
pub use session_signing as signing;

/// The `django_session` table on PostgreSQL, MySQL/MariaDB and SQLite (`session-db`).
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql")))
)]
pub use session_db as db;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use session_db::MySqlStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use session_db::PgStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use session_db::SqliteStore;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql")))
)]
pub use session_db::{AnyDbStore, DbError, DbStore};

/// Django's cache engine: Redis and an in-process cache (`session-cache`).
#[cfg(any(
    feature = "redis",
    feature = "memory-cache",
    feature = "memcached",
    feature = "cache-compression",
    feature = "cached-db"
))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "redis",
        feature = "memory-cache",
        feature = "memcached",
        feature = "cache-compression",
        feature = "cached-db"
    )))
)]
pub use session_cache as cache;
#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
pub use session_cache::MemcachedCache;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use session_cache::RedisCache;
#[cfg(any(
    feature = "redis",
    feature = "memory-cache",
    feature = "memcached",
    feature = "cache-compression",
    feature = "cached-db"
))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "redis",
        feature = "memory-cache",
        feature = "memcached",
        feature = "cache-compression",
        feature = "cached-db"
    )))
)]
pub use session_cache::{Cache, CacheError, CacheStore};
#[cfg(feature = "cache-compression")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache-compression")))]
pub use session_cache::{CompressedCache, Compressor};
#[cfg(feature = "memory-cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory-cache")))]
pub use session_cache::{MemoryBound, MemoryCache};

/// Django's file engine (`session-file`).
#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub use session_file as file;
#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub use session_file::{FileError, FileStore};

/// Django's signed-cookie engine (`session-cookie`).
#[cfg(feature = "cookie")]
#[cfg_attr(docsrs, doc(cfg(feature = "cookie")))]
pub use session_cookie as cookie;
#[cfg(feature = "cookie")]
#[cfg_attr(docsrs, doc(cfg(feature = "cookie")))]
pub use session_cookie::CookieStore;

/// Django's cached_db engine (`session-cached-db`).
#[cfg(feature = "cached-db")]
#[cfg_attr(docsrs, doc(cfg(feature = "cached-db")))]
pub use session_cached_db as cached_db;
#[cfg(feature = "cached-db")]
#[cfg_attr(docsrs, doc(cfg(feature = "cached-db")))]
pub use session_cached_db::{CachedDbError, CachedDbStore};

/// Django's `SessionMiddleware` as a tower layer (`session-middleware`).
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use session_middleware as middleware;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use session_middleware::SessionLayer;

/// Django's `SessionMiddleware` for actix-web 4 (`session-actix`): `SessionMiddleware`, the
/// `Session` extractor and `SessionError`, following the same rules as the tower layer.
#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub use session_actix as actix;

/// Django's logged-in user from the session (`session-auth`).
#[cfg(feature = "auth")]
#[cfg_attr(docsrs, doc(cfg(feature = "auth")))]
pub use session_auth as auth;
#[cfg(feature = "auth")]
#[cfg_attr(docsrs, doc(cfg(feature = "auth")))]
pub use session_auth::{Auth, AuthConfig, AuthError, User, UserSource};
