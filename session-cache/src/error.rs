//! The error type of `session-cache`.

use session_core::BoxError;

/// Everything that can go wrong with a cache or a [`CacheStore`](crate::CacheStore).
///
/// A session store converts it into [`session_core::Error::Store`] (or `Error::Config` for
/// configuration mistakes) so callers see one error type per crate boundary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// A store was asked for a cache alias that is not configured (Django's
    /// `InvalidCacheBackendError`, raised when the session store is constructed).
    #[error(
        "no cache is configured under the alias {alias:?} (configured: {configured:?}); \
         add it to the caches or choose one of the configured aliases"
    )]
    UnknownAlias {
        /// The alias asked for.
        alias: String,
        /// The aliases that are configured.
        configured: Vec<String>,
    },

    /// The cache or store configuration is unusable.
    #[error("invalid cache configuration: {0}")]
    Config(String),

    /// The session settings are unusable (the codec could not be built).
    #[error(transparent)]
    Session(#[from] session_core::Error),

    /// A cache backend of your own failed: its server is unreachable, timed out, refused the
    /// operation, or answered something it should not have.
    ///
    /// This is the error a user's [`CacheBackend`](crate::CacheBackend) returns when its cache
    /// fails: build it with [`CacheError::backend`] from the client library's error. Stores treat
    /// it as a cache failure ([`session_core::Error::Store`]; the cached-db store logs it and
    /// falls back to the database), never as a configuration mistake, which is
    /// [`Config`](Self::Config).
    #[error("cache backend error: {0}; check that the cache is up and reachable")]
    Backend(#[source] BoxError),

    /// Redis failed: the server is unreachable, timed out, or refused the command.
    #[cfg(feature = "redis")]
    #[error("redis error ({location}): {source}; check that the server is up and reachable")]
    Redis {
        /// Where the cache lives (the URL with any password hidden).
        location: String,
        /// What the Redis client reported.
        #[source]
        source: redis::RedisError,
    },

    /// A write reached the Redis master but fewer replicas than
    /// [`wait_for_replicas`](crate::RedisCacheBuilder::wait_for_replicas) asked for acknowledged
    /// it in time: it may be lost if the master fails now.
    #[cfg(feature = "redis")]
    #[error(
        "redis ({location}): only {acknowledged} of {wanted} replicas acknowledged the write in \
         time; check the replicas' health and link, or wait for fewer"
    )]
    NotReplicated {
        /// Where the cache lives.
        location: String,
        /// How many replicas acknowledged the write.
        acknowledged: usize,
        /// How many were asked for.
        wanted: usize,
    },

    /// Memcached failed: a server is unreachable, timed out or refused the command, or the key or
    /// value is one memcached cannot hold.
    #[cfg(feature = "memcached")]
    #[error("memcached error ({server}): {source}; check that the server is up and reachable")]
    Memcached {
        /// The server holding the key (`host:port`).
        server: String,
        /// What went wrong.
        #[source]
        source: crate::MemcachedError,
    },

    /// A compressed value expands past the configured bound
    /// ([`CompressedCache::with_max_decompressed_size`](crate::CompressedCache::with_max_decompressed_size)).
    #[cfg(feature = "compression")]
    #[error(
        "a value compressed with {compressor} expands past {limit} bytes; raise the bound if \
         such sessions are expected"
    )]
    Decompression {
        /// The compressor (django-redis's class name).
        compressor: &'static str,
        /// The bound.
        limit: usize,
    },
}

impl From<CacheError> for session_core::Error {
    fn from(error: CacheError) -> Self {
        match error {
            CacheError::Session(error) => error,
            CacheError::UnknownAlias { .. } | CacheError::Config(_) => {
                session_core::Error::Config(error.to_string())
            }
            other @ CacheError::Backend(_) => session_core::Error::store(other),
            #[cfg(feature = "redis")]
            other @ (CacheError::Redis { .. } | CacheError::NotReplicated { .. }) => {
                session_core::Error::store(other)
            }
            #[cfg(feature = "memcached")]
            other @ CacheError::Memcached { .. } => session_core::Error::store(other),
            #[cfg(feature = "compression")]
            other @ CacheError::Decompression { .. } => session_core::Error::store(other),
        }
    }
}

impl CacheError {
    /// The error a [`CacheBackend`](crate::CacheBackend) of your own returns when its cache fails
    /// (anything convertible to a boxed error: the client library's error, or a message).
    ///
    /// ```
    /// use session_cache::CacheError;
    ///
    /// let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply within 200 ms");
    /// let error = CacheError::backend(io);
    /// assert_eq!(
    ///     error.to_string(),
    ///     "cache backend error: no reply within 200 ms; check that the cache is up and reachable"
    /// );
    /// assert!(std::error::Error::source(&error).is_some());
    /// ```
    pub fn backend(error: impl Into<BoxError>) -> Self {
        CacheError::Backend(error.into())
    }
}
