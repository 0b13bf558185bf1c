//! The names nearly every user of djsession needs: `use djsession::prelude::*;`.

pub use crate::{ConcurrencyPolicy, Expiry, Session, SessionConfig, SessionStore};

#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use crate::SessionLayer;

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql")))
)]
pub use crate::AnyDbStore;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use crate::MySqlStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use crate::PgStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use crate::SqliteStore;

#[cfg(feature = "cached-db")]
#[cfg_attr(docsrs, doc(cfg(feature = "cached-db")))]
pub use crate::CachedDbStore;
#[cfg(feature = "cookie")]
#[cfg_attr(docsrs, doc(cfg(feature = "cookie")))]
pub use crate::CookieStore;
#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub use crate::FileStore;
#[cfg(feature = "memory-cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory-cache")))]
pub use crate::MemoryCache;
pub use crate::MemoryStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use crate::RedisCache;
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
pub use crate::{Cache, CacheStore};
