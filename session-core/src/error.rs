//! The one error type of `session-core`, shared by every store.

use crate::serializer::SerializerError;
use crate::value::ValueError;

/// Django's `SessionInterrupted` message: the body of the 400 answer when a session was deleted
/// (logged out, flushed or expired) by a concurrent request before this one could save it.
pub const SESSION_INTERRUPTED_MESSAGE: &str = "The request's session was deleted before the request \
     completed. The user may have logged out in a concurrent request, for example.";

/// The body of the 409 answer when a save lost to a concurrent request's under the `merge` or
/// `reject` [concurrency policy](crate::ConcurrencyPolicy).
pub const SESSION_CONFLICT_MESSAGE: &str = "The request's session was changed by a concurrent \
     request before this one could save it. Retry the request.";

/// The body of the 500 answer to a session error: details go to the log, never to the client.
pub const SESSION_ERROR_MESSAGE: &str = "Server Error (500)";

/// A boxed error from a store's backend (database driver, Redis client, filesystem, ...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong with a session.
///
/// Stores report their backend failures as [`Error::Store`]; the two save conflicts have their own
/// variants because callers act on them: [`Error::CreateConflict`] makes the session retry with a new
/// key, and [`Error::SessionDeleted`] is Django's `UpdateError`, which the middleware turns into a
/// 400 response instead of resurrecting a session that was logged out elsewhere.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A must-create save found the key already taken.
    #[error("a session with this key already exists")]
    CreateConflict,

    /// An update found no record to update: the session was deleted (logged out, flushed or
    /// expired) by another request after this one loaded it.
    #[error(
        "the session was deleted before the request completed; \
         the user may have logged out in a concurrent request"
    )]
    SessionDeleted,

    /// The stored session changed since this request read it, and the
    /// [concurrency policy](crate::ConcurrencyPolicy) does not let this save overwrite it: under
    /// `reject` at once, under `merge` after every attempt lost the race. A store's
    /// [`save_if_unchanged`](crate::SessionStore::save_if_unchanged) also answers it for a stale
    /// version. The middleware answers 409 without a cookie.
    #[error(
        "the session was changed by a concurrent request since this one read it; \
         retry the request"
    )]
    Conflict,

    /// The store's backend failed (connection lost, disk full, ...).
    #[error("session store error: {0}")]
    Store(#[source] BoxError),

    /// The session data could not be serialized.
    #[error("session data serializer error: {0}")]
    Serializer(#[from] SerializerError),

    /// Validly signed data held something other than a dict.
    #[error("session data is a {found}, not a dict")]
    NotADict {
        /// The Python type name found.
        found: &'static str,
    },

    /// The signed value could not be produced or verified.
    #[error("signing error: {0}")]
    Signing(#[from] session_signing::Error),

    /// A session value does not have the type the caller asked for (or a value could not be turned
    /// into a session value).
    #[error("session value {key:?}: {source}")]
    Value {
        /// The session key (the dict key, not the session id) involved.
        key: String,
        /// What did not fit.
        #[source]
        source: ValueError,
    },

    /// A session key does not satisfy the validity rule.
    #[error(
        "invalid session key ({len} bytes): keys need at least 8 characters and at most 4096 bytes"
    )]
    InvalidSessionKey {
        /// The length of the rejected key in bytes.
        len: usize,
    },

    /// The configuration is unusable.
    #[error("invalid session configuration: {0}")]
    Config(String),

    /// The OS random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Random(String),

    /// Every attempt to create a session under a fresh key hit an existing one.
    #[error(
        "could not create a session: {attempts} fresh keys were all taken; \
         the store is probably not working"
    )]
    KeyGenerationExhausted {
        /// How many keys were tried.
        attempts: usize,
    },
}

impl Error {
    /// The HTTP status a handler answers this error with, in every web framework adapter: 400 for
    /// [`Error::SessionDeleted`] (Django's `SessionInterrupted`, as the session middleware
    /// answers it), 409 for [`Error::Conflict`], 500 for everything else.
    pub fn status_code(&self) -> u16 {
        match self {
            Error::SessionDeleted => 400,
            Error::Conflict => 409,
            _ => 500,
        }
    }

    /// The text sent with [`status_code`](Self::status_code): Django's message for
    /// [`Error::SessionDeleted`], [`SESSION_CONFLICT_MESSAGE`] for [`Error::Conflict`],
    /// [`SESSION_ERROR_MESSAGE`] otherwise (the cause is logged, never sent).
    pub fn public_message(&self) -> &'static str {
        match self {
            Error::SessionDeleted => SESSION_INTERRUPTED_MESSAGE,
            Error::Conflict => SESSION_CONFLICT_MESSAGE,
            _ => SESSION_ERROR_MESSAGE,
        }
    }

    /// Logs this error as answered with [`status_code`](Self::status_code): on target
    /// `djsession`, an error for a 500 (with the cause), a warning otherwise.
    pub fn log_answered(&self) {
        let status = self.status_code();
        if status >= 500 {
            tracing::error!(target: "djsession", error = %self, "session error answered with {status}");
        } else {
            tracing::warn!(target: "djsession", error = %self, "session error answered with {status}");
        }
    }

    /// Wraps a backend error.
    pub fn store(error: impl Into<BoxError>) -> Self {
        Error::Store(error.into())
    }
}
