//! The middleware's errors and how they become responses.

use std::sync::Arc;

use http::StatusCode;

pub use session_core::{SESSION_CONFLICT_MESSAGE, SESSION_INTERRUPTED_MESSAGE};

/// The body of the 500 response sent when the session could not be saved. Details go to the log,
/// never to the client.
pub const SERVER_ERROR_MESSAGE: &str = "Server Error (500): the session could not be saved.";

/// Everything that can go wrong in the session layer.
///
/// Construction errors ([`InvalidConfig`](Error::InvalidConfig),
/// [`InvalidCookieAttribute`](Error::InvalidCookieAttribute)) are returned by
/// [`SessionRules::new`](crate::rules::SessionRules::new) (and the adapters' constructors built on
/// it, such as `SessionLayer::new`). The others happen while finishing a response;
/// the layer then replaces the response with [`status`](Error::status) and a short text body, logs
/// the error, and attaches it to the response as a [`SessionFailure`] extension.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The [`SessionConfig`](session_core::SessionConfig) failed its own validation.
    #[error("the session layer cannot start: {0}")]
    InvalidConfig(#[source] session_core::Error),

    /// `cookie_path` or `cookie_domain` would break the `Set-Cookie` header.
    #[error(
        "the session layer cannot start: {setting} {value:?} cannot be sent in a Set-Cookie header: \
         use printable ASCII without ';'{extra}"
    )]
    InvalidCookieAttribute {
        /// The offending setting (`cookie_path` or `cookie_domain`).
        setting: &'static str,
        /// Its value.
        value: String,
        /// An additional restriction of this setting, or empty.
        extra: &'static str,
    },

    /// Django's `SessionInterrupted`: the session was deleted (logged out, flushed or expired) by
    /// another request after this one loaded it, so saving it would resurrect it. Answered with 400.
    #[error("{SESSION_INTERRUPTED_MESSAGE}")]
    SessionInterrupted,

    /// Under the `merge` or `reject` [concurrency policy](session_core::ConcurrencyPolicy), the
    /// save lost to a concurrent request's ([`session_core::Error::Conflict`]). Answered with 409
    /// and no cookie; the client may retry.
    #[error("{SESSION_CONFLICT_MESSAGE}")]
    SessionConflict,

    /// The store failed while the response was being finished (loading the session to compute its
    /// expiry, or saving it). Answered with 500; no session cookie is sent.
    #[error("the session store failed while finishing the response: {0}")]
    Store(#[source] session_core::Error),

    /// The session's expiry lies outside the dates an HTTP `expires` attribute can carry (years 1
    /// to 9999; Django fails the same way). Check the `set_expiry` value or `cookie_age`.
    #[error(
        "the session's expiry (Unix time {unix_seconds}) is outside years 1-9999 and cannot be \
         written as a cookie date: use a smaller expiry"
    )]
    ExpiryOutOfRange {
        /// The requested expiry, in Unix seconds.
        unix_seconds: i64,
    },

    /// The session key holds characters above U+00FF, which no HTTP header can carry. Only a store
    /// returning such keys from `save` can cause this.
    #[error(
        "the session key contains characters that cannot be sent in a cookie: \
         the store returned an unusable key"
    )]
    UnsendableCookieValue,

    /// The session had no key right after a successful save: another task still holding the
    /// session flushed it while the response was being finished.
    #[error(
        "the session lost its key while the response was being finished: \
         do not keep using the session after the handler has returned"
    )]
    KeyVanished,
}

impl Error {
    /// The status of the response that replaces the handler's when this error happens while the
    /// response is being finished: 400 for [`Error::SessionInterrupted`] (Django's `BadRequest`),
    /// 409 for [`Error::SessionConflict`], 500 otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::SessionInterrupted => StatusCode::BAD_REQUEST,
            Error::SessionConflict => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// [`status`](Self::status) as a number, for frameworks on another `http` version.
    pub fn status_code(&self) -> u16 {
        self.status().as_u16()
    }

    /// The error a failed save of the session becomes: Django's `SessionInterrupted` for a session
    /// deleted meanwhile, the conflict of the merge/reject policies, or a store failure.
    pub(crate) fn from_save(error: session_core::Error) -> Self {
        match error {
            session_core::Error::SessionDeleted => Error::SessionInterrupted,
            session_core::Error::Conflict => Error::SessionConflict,
            other => Error::Store(other),
        }
    }

    /// The text body sent with [`status`](Self::status): Django's message for
    /// [`Error::SessionInterrupted`], ours for [`Error::SessionConflict`], a generic one otherwise
    /// (details are logged, not sent).
    pub fn public_message(&self) -> &'static str {
        match self {
            Error::SessionInterrupted => SESSION_INTERRUPTED_MESSAGE,
            Error::SessionConflict => SESSION_CONFLICT_MESSAGE,
            _ => SERVER_ERROR_MESSAGE,
        }
    }
}

/// Attached to the extensions of a response the layer replaced because finishing the session
/// failed, so outer layers can render their own error page or count failures.
#[derive(Debug, Clone)]
pub struct SessionFailure(pub Arc<Error>);

impl SessionFailure {
    /// The error that replaced the response.
    pub fn error(&self) -> &Error {
        &self.0
    }
}
