//! The axum extractor (feature `axum`).

use std::ops::Deref;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

/// The request's session, as an axum extractor.
///
/// It is the [`session_core::Session`] the [`SessionLayer`](crate::SessionLayer) put in the request
/// extensions (it derefs to it). Extracting it fails with [`MissingSessionLayer`] (a 500) when the
/// layer is not applied to the route; extract `Option<Session>` to handle that case yourself.
#[derive(Debug, Clone)]
pub struct Session(pub session_core::Session);

impl Session {
    /// The underlying session handle.
    pub fn into_inner(self) -> session_core::Session {
        self.0
    }
}

impl Deref for Session {
    type Target = session_core::Session;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// The rejection of the [`Session`] extractor when no [`SessionLayer`](crate::SessionLayer) runs in
/// front of the handler: a server misconfiguration, answered with 500.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "no session in the request: add `.layer(SessionLayer::new(store, config)?)` to the router \
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
            .get::<session_core::Session>()
            .cloned()
            .map(Session)
            .ok_or(MissingSessionLayer)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<session_core::Session>()
            .cloned()
            .map(Session))
    }
}
