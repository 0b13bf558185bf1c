//! The one error type of `session-auth`.

use session_core::BoxError;

/// Everything that can go wrong while reading, verifying or writing who is logged in.
///
/// "Nobody is logged in" is not an error: reads return `None` or an
/// [`Anonymous`](crate::Anonymous) reason for that.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The session could not be read or written (store failure, undecodable value, ...).
    #[error("session error: {0}")]
    Session(#[from] session_core::Error),

    /// The user source (the users table) failed: connection lost, table or column missing.
    #[error(
        "user source error: {0}; check the user database URL and the UserModel's table and column names"
    )]
    Source(#[source] BoxError),

    /// The session's `_auth_user_id` is not a valid primary key of the user model (Django raises
    /// `ValidationError` here, a server error). Only someone holding the secret key or write access
    /// to the session store can put such a value there.
    #[error("the session's _auth_user_id {value} is not a valid {expected} primary key")]
    InvalidUserId {
        /// The stored value, as JSON.
        value: String,
        /// What the user model's primary key is.
        expected: &'static str,
    },

    /// The configuration cannot work (an unusable table or column name, no backend, ...).
    #[error("invalid auth configuration: {0}")]
    Config(String),

    /// `login` was not told which backend authenticated the user and several are configured
    /// (Django's `ValueError` for the same case).
    #[error(
        "several authentication backends are configured, so login needs to be told which one \
         authenticated the user: pass a backend or set User::backend"
    )]
    AmbiguousBackend,

    /// The password hasher failed (its blocking task panicked or was cancelled).
    #[error("password hashing failed: {0}")]
    Hasher(String),

    /// A password can not be hashed with the chosen settings.
    #[error("cannot hash the password: {0}")]
    Password(String),
}

impl AuthError {
    /// Wraps a user source failure.
    pub fn source(error: impl Into<BoxError>) -> Self {
        AuthError::Source(error.into())
    }
}
