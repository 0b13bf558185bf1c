//! [`Error`]: every crate's error, in one type handlers can `?` into.

/// Any djsession error: each member crate's own error converts into it with `?`.
///
/// With the `axum` feature it is an axum response, so a handler returning
/// `Result<_, djsession::Error>` answers as the session middleware does: 400 with Django's
/// `SessionInterrupted` message when a concurrent request deleted the session (logged out), 500
/// with a generic body otherwise, the cause logged (target `djsession`) and never sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A session operation failed (load, save, a value of the wrong type, ...).
    #[error(transparent)]
    Session(#[from] session_core::Error),

    /// The settings could not be read from the environment.
    #[error(transparent)]
    Config(#[from] session_core::ConfigError),

    /// Signing or verifying failed (`djsession::signing`).
    #[error(transparent)]
    Signing(#[from] session_signing::Error),

    /// A database store could not be built or failed.
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql")))
    )]
    #[error(transparent)]
    Db(#[from] session_db::DbError),

    /// A cache store could not be built or failed.
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
    #[error(transparent)]
    Cache(#[from] session_cache::CacheError),

    /// The file store could not be built or failed.
    #[cfg(feature = "file")]
    #[cfg_attr(docsrs, doc(cfg(feature = "file")))]
    #[error(transparent)]
    File(#[from] session_file::FileError),

    /// The cached-db store could not be built.
    #[cfg(feature = "cached-db")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cached-db")))]
    #[error(transparent)]
    CachedDb(#[from] session_cached_db::CachedDbError),

    /// Reading, verifying, logging in or revoking a Django user failed.
    #[cfg(feature = "auth")]
    #[cfg_attr(docsrs, doc(cfg(feature = "auth")))]
    #[error(transparent)]
    Auth(#[from] session_auth::AuthError),

    /// The session layer could not be built, or could not finish a response.
    #[cfg(feature = "tower")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
    #[error(transparent)]
    Layer(#[from] session_middleware::Error),
}

impl Error {
    /// Whether this is Django's `SessionInterrupted`: the session was deleted (logged out,
    /// flushed, expired) by a concurrent request before this one could save it.
    pub fn is_session_interrupted(&self) -> bool {
        match self {
            Error::Session(session_core::Error::SessionDeleted) => true,
            #[cfg(feature = "tower")]
            Error::Layer(session_middleware::Error::SessionInterrupted) => true,
            _ => false,
        }
    }
}

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for Error {
    fn into_response(self) -> axum_core::response::Response {
        match self {
            // session_core::Error already answers as the middleware does.
            Error::Session(error) => error.into_response(),
            interrupted if interrupted.is_session_interrupted() => {
                session_core::Error::SessionDeleted.into_response()
            }
            other => {
                let status = http::StatusCode::INTERNAL_SERVER_ERROR;
                tracing::error!(target: "djsession", error = %other, "session error answered with {status}");
                (status, session_core::SESSION_ERROR_MESSAGE).into_response()
            }
        }
    }
}
