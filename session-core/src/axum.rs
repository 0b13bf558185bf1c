//! axum integration (feature `axum`): [`Session`] is an extractor, and [`Error`] is a response,
//! so handlers take `session: Session` and use `?` on every session call.
//!
//! The session itself is put in the request extensions by the session layer (the
//! `session-middleware` crate, `djsession::SessionLayer`); these impls only read it from there, so
//! they cost nothing when the layer is absent beyond the rejection.

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::{Error, Session};

/// The rejection of the [`Session`] extractor when no session layer runs in front of the handler:
/// a server misconfiguration, answered with 500. Extract `Option<Session>` to handle it yourself.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "no session in the request: add `.layer(SessionLayer::new(store, &config)?)` to the router \
     serving this handler"
)]
pub struct MissingSessionLayer;

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Server Error (500): sessions are not configured for this route.",
        )
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(MissingSessionLayer)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Session>().cloned())
    }
}

impl Error {
    /// [`status_code`](Self::status_code) as an `http` status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// A handler returning `Result<_, session_core::Error>` answers a failed session call like the
/// session middleware answers a failed save: 400 with Django's `SessionInterrupted` message when
/// the session was deleted by a concurrent request, otherwise 500 with a generic body and the
/// cause logged (target `djsession`, level error; a deleted session is logged as a warning).
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.log_answered();
        (self.status(), self.public_message()).into_response()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::SESSION_ERROR_MESSAGE;

    #[test]
    fn a_deleted_session_is_djangos_400_and_other_errors_a_generic_500() {
        let response = Error::SessionDeleted.into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);

        let response = Error::store("connection refused to 10.0.0.7:5432").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            Error::store("x").public_message(),
            SESSION_ERROR_MESSAGE,
            "the cause is never sent to the client"
        );
        assert_eq!(
            Error::SessionDeleted.public_message(),
            crate::SESSION_INTERRUPTED_MESSAGE
        );
    }

    #[test]
    fn a_lost_concurrent_save_is_a_409_asking_to_retry() {
        let response = Error::Conflict.into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert!(Error::Conflict.public_message().contains("Retry"));
    }
}
