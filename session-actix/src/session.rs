//! The `Session` extractor and the errors handlers answer with.

use std::fmt;
use std::future::{Ready, ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use session_middleware::rules::ERROR_CONTENT_TYPE;

/// The request's session, as an actix-web extractor: take `session: Session` in a handler.
///
/// It derefs to [`session_core::Session`], the session type every djsession adapter hands out,
/// so the whole Django API is there (`get`, `insert`, `flush`, `cycle_key`, expiry...). It is a
/// newtype only because the orphan rule forbids implementing actix's `FromRequest` for
/// `session_core::Session` outside `session-core`. Clones share one session.
///
/// Extraction fails with [`MissingSessionMiddleware`] (500) when no
/// [`SessionMiddleware`](crate::SessionMiddleware) wraps the route; extract `Option<Session>` to handle that yourself.
#[derive(Clone)]
pub struct Session(session_core::Session);

impl Session {
    /// The inner [`session_core::Session`], e.g. to hand to code shared with other frameworks.
    pub fn into_inner(self) -> session_core::Session {
        self.0
    }
}

impl Deref for Session {
    type Target = session_core::Session;

    fn deref(&self) -> &session_core::Session {
        &self.0
    }
}

impl AsRef<session_core::Session> for Session {
    fn as_ref(&self) -> &session_core::Session {
        &self.0
    }
}

impl From<Session> for session_core::Session {
    fn from(session: Session) -> Self {
        session.0
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl FromRequest for Session {
    type Error = MissingSessionMiddleware;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(
            request
                .extensions()
                .get::<session_core::Session>()
                .cloned()
                .map(Session)
                .ok_or(MissingSessionMiddleware),
        )
    }
}

/// The rejection of the [`Session`] extractor when no
/// [`SessionMiddleware`](crate::SessionMiddleware) runs in front of the handler: a server misconfiguration, answered
/// with 500 (as axum's `MissingSessionLayer`). Extract `Option<Session>` to handle it yourself.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "no session in the request: add `.wrap(SessionMiddleware::new(store, &config)?)` to the app \
     or scope serving this handler"
)]
pub struct MissingSessionMiddleware;

/// The body of the 500 answer to [`MissingSessionMiddleware`], the same as axum's.
const MISSING_MIDDLEWARE_MESSAGE: &str =
    "Server Error (500): sessions are not configured for this route.";

impl ResponseError for MissingSessionMiddleware {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        tracing::error!("{self}");
        HttpResponse::build(self.status_code())
            .insert_header((CONTENT_TYPE, ERROR_CONTENT_TYPE))
            .body(MISSING_MIDDLEWARE_MESSAGE)
    }
}

/// A failed session call, as an actix-web error: return `Result<_, SessionError>` from handlers
/// and use `?` on every session call.
///
/// It answers as the middleware answers a failed save (and as `session_core::Error` answers under
/// axum): 400 with Django's `SessionInterrupted` message for [`session_core::Error::SessionDeleted`],
/// 409 for [`session_core::Error::Conflict`], 500 with a generic body otherwise; the cause is
/// logged (target `djsession`), never sent. A wrapper because the orphan rule forbids
/// implementing actix's `ResponseError` for `session_core::Error` here.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SessionError(#[from] pub session_core::Error);

impl SessionError {
    /// The session error itself.
    pub fn into_inner(self) -> session_core::Error {
        self.0
    }
}

impl ResponseError for SessionError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        self.0.log_answered();
        HttpResponse::build(self.status_code())
            .insert_header((CONTENT_TYPE, ERROR_CONTENT_TYPE))
            .body(self.0.public_message())
    }
}
