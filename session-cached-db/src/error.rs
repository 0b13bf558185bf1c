//! The error type of `session-cached-db`.

use session_cache::CacheError;

/// What can go wrong building a [`CachedDbStore`](crate::CachedDbStore).
///
/// Only construction fails with it. Once built, the store reports the database's errors as they
/// are ([`session_core::Error`]) and never fails an operation because of the cache: cache failures
/// are logged and worked around.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CachedDbError {
    /// The cache could not be chosen, e.g. an alias that is not configured (Django's
    /// `InvalidCacheBackendError`, raised when the store is built).
    #[error(transparent)]
    Cache(#[from] CacheError),

    /// The session settings are unusable (the codec for cache values could not be built).
    #[error(transparent)]
    Session(#[from] session_core::Error),
}

impl From<CachedDbError> for session_core::Error {
    fn from(error: CachedDbError) -> Self {
        match error {
            CachedDbError::Cache(error) => error.into(),
            CachedDbError::Session(error) => error,
        }
    }
}
