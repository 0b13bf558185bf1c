//! Django's `SessionMiddleware` for actix-web 4, over any djsession
//! [`SessionStore`](session_core::SessionStore): lazy sessions shared byte for byte with a Django
//! site.
//!
//! [`SessionMiddleware`] reads the session cookie, gives handlers a lazy session (the [`Session`]
//! extractor), and on the way out saves it and sets, refreshes or deletes the cookie exactly as
//! Django 5.2.14+ / 6.x does. The rules are not written here: they are
//! [`session_middleware::rules`], the same code the tower layer (`session_middleware::SessionLayer`,
//! for axum, hyper and tonic) runs, so both frameworks send the same bytes for the same session.
//!
//! ```
//! use actix_web::{App, HttpResponse, test, web};
//! use session_actix::{Session, SessionError, SessionMiddleware};
//! use session_core::{MemoryStore, SessionConfig};
//!
//! async fn visits(session: Session) -> Result<String, SessionError> {
//!     let n: u64 = session.get("visits").await?.unwrap_or(0);
//!     session.insert("visits", &(n + 1)).await?;
//!     Ok(format!("visit {}", n + 1))
//! }
//!
//! # actix_web::rt::System::new().block_on(async {
//! let sessions = SessionMiddleware::new(MemoryStore::new(), &SessionConfig::new("a long random secret"))?;
//! let app = test::init_service(
//!     App::new().wrap(sessions).route("/", web::get().to(visits)),
//! )
//! .await;
//!
//! let first = test::call_service(&app, test::TestRequest::get().to_request()).await;
//! let set_cookie = first.headers().get("set-cookie").ok_or("no cookie")?.to_str()?.to_owned();
//! // sessionid=<32 chars>; expires=<now + 2 weeks>; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax
//! assert!(set_cookie.ends_with("; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax"));
//! assert_eq!(first.headers().get("vary").ok_or("no Vary")?, "Cookie");
//!
//! let cookie = set_cookie.split(';').next().unwrap_or_default().to_owned(); // "sessionid=..."
//! let second = test::TestRequest::get().insert_header(("cookie", cookie)).to_request();
//! let body = test::call_and_read_body(&app, second).await;
//! assert_eq!(body, "visit 2");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # The rules
//!
//! Exactly those of `session_middleware` (its crate docs list them with the bytes sent):
//!
//! - **Lazy.** Nothing is read from the store until a handler touches the session: a request that
//!   never uses it costs no store call, with or without a cookie (actix-session loads eagerly).
//! - **Response**, from the session's `accessed`/`modified` flags: a request that carried the
//!   cookie and ends with an empty session gets the cookie deleted (Django's `delete_cookie`); a
//!   modified (or `save_every_request`) non-empty session is saved and its cookie set, with
//!   `expires`, `HttpOnly`, `Max-Age`, `Path`, `SameSite`, `Secure` in the order Python writes
//!   them; a 5xx response never saves or sets anything. `Vary: Cookie` is merged into the
//!   handler's `Vary` (Django's `patch_vary_headers`) whenever the cookie is set or the session
//!   was accessed. The middleware's `Set-Cookie` replaces one the handler wrote for the same name.
//! - **Failures while finishing the response** replace it, without any `Set-Cookie`, and carry the
//!   error as a [`SessionFailure`] response extension: a session deleted meanwhile by another
//!   request is Django's `SessionInterrupted` (400, [`SESSION_INTERRUPTED_MESSAGE`]); under the
//!   `merge` or `reject` [concurrency policy](session_core::ConcurrencyPolicy) a lost concurrent
//!   save is a 409 ([`SESSION_CONFLICT_MESSAGE`], [`Error::SessionConflict`]); any other store
//!   failure is a 500 with a generic body, the cause logged.
//! - An error the inner service returns as `Err` (rather than as an error response) passes
//!   through untouched, and the session is not saved, as with the tower layer.
//!
//! # Handlers
//!
//! [`Session`] derefs to [`session_core::Session`], the one session type of every djsession
//! adapter: `get`, `insert`, `flush`, `cycle_key`, expiry, all of it. It is a newtype only because
//! Rust's orphan rule forbids implementing actix's `FromRequest` (a foreign trait) for
//! `session_core::Session` (a foreign type) here; [`Session::into_inner`] gives the inner handle.
//! Take `Option<Session>` to serve routes without the middleware; a plain `Session` there is
//! answered with 500 ([`MissingSessionMiddleware`]).
//!
//! For the same reason `session_core::Error` cannot be an actix `ResponseError` itself:
//! return [`SessionError`] (`?` converts), which answers as the axum integration answers
//! `session_core::Error`: 400 with Django's `SessionInterrupted` message for a session deleted by
//! a concurrent request, 409 for a conflict, otherwise 500 with a generic body and the cause
//! logged.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod middleware;
mod session;

pub use middleware::{SessionMiddleware, SessionMiddlewareService};
pub use session::{MissingSessionMiddleware, Session, SessionError};
pub use session_middleware::{
    Error, SERVER_ERROR_MESSAGE, SESSION_CONFLICT_MESSAGE, SESSION_INTERRUPTED_MESSAGE,
    SessionFailure,
};
