//! Django's `SessionMiddleware` as a tower [`Layer`](tower_layer::Layer), for axum, hyper, tonic
//! or any tower stack, over any [`SessionStore`](session_core::SessionStore).
//!
//! The layer reads the session cookie, gives the handler a lazy [`session_core::Session`] in the
//! request extensions (with the `axum` feature, also the `Session` extractor), and on the way out
//! saves the session and sets, refreshes or deletes the cookie exactly as Django 5.2.14+ / 6.x does,
//! down to the bytes of the `Set-Cookie` and `Vary` headers. Sessions are shared with a Django site
//! when both use the same store, secret and cookie settings.
//!
//! # Features and other frameworks
//!
//! The rules are written once, framework-free, in [`rules`] (plain text, bytes and status codes;
//! no tower, no `http` header types): the tower layer here and the actix-web middleware of
//! `session-actix` are thin adapters over [`rules::SessionRules`]. The `tower` feature (default)
//! adds [`SessionLayer`]; `axum` adds the axum extractor. An adapter for another framework depends
//! on this crate with `default-features = false`.
//!
//! # With axum
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::get, body::Body, http::{Request, header}};
//! use session_core::{MemoryStore, SessionConfig};
//! use session_middleware::{Session, SessionLayer};
//! use tower::ServiceExt;
//!
//! async fn visits(session: Session) -> Result<String, String> {
//!     let n: u64 = session.get("visits").await.map_err(|e| e.to_string())?.unwrap_or(0);
//!     session.insert("visits", &(n + 1)).await.map_err(|e| e.to_string())?;
//!     Ok(format!("visit {}", n + 1))
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = Arc::new(MemoryStore::new());
//! let layer = SessionLayer::new(store, &SessionConfig::new("a long random secret"))?;
//! let app = Router::new().route("/", get(visits)).layer(layer);
//!
//! let first = app.clone().oneshot(Request::new(Body::empty())).await?;
//! let set_cookie = first.headers()[header::SET_COOKIE].to_str()?;
//! // sessionid=<32 chars>; expires=<now + 2 weeks>; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax
//! assert!(set_cookie.ends_with("; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax"));
//! assert_eq!(first.headers()[header::VARY], "Cookie");
//!
//! let cookie = set_cookie.split(';').next().unwrap().to_owned(); // "sessionid=..."
//! let second = Request::builder().header(header::COOKIE, cookie).body(Body::empty())?;
//! let second = app.oneshot(second).await?;
//! let body = axum::body::to_bytes(second.into_body(), 1024).await?;
//! assert_eq!(body, "visit 2");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # With plain tower or hyper
//!
//! Any `Service<http::Request<B>, Response = http::Response<R>>` can be wrapped; the handler finds
//! the session in the request extensions. Serve the result with hyper 1 through
//! `hyper_util::service::TowerToHyperService`, or add the layer to a tonic server with
//! `Server::builder().layer(layer)`.
//!
//! ```
//! use std::{convert::Infallible, sync::Arc};
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use session_core::{MemoryStore, Session, SessionConfig};
//! use session_middleware::SessionLayer;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let layer = SessionLayer::new(MemoryStore::new(), &SessionConfig::new("secret"))?;
//! let service = layer.layer(service_fn(|request: Request<Full<Bytes>>| async move {
//!     let session = request.extensions().get::<Session>().expect("the layer is applied").clone();
//!     session.insert("user_id", &42).await.map_err(|e| e.to_string())?;
//!     Ok::<_, String>(Response::new(Full::new(Bytes::from("logged in"))))
//! }));
//! let response = service.oneshot(Request::new(Full::default())).await?;
//! assert!(response.headers()["set-cookie"].to_str()?.starts_with("sessionid="));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! Response bodies are never buffered: the handler's body is passed on as
//! [`Either::Left`](http_body_util::Either) of [`ResponseBody`]; only the layer's own error
//! responses are `Right`.
//!
//! # The exact rules (Django's `SessionMiddleware`)
//!
//! **Request.** The `Cookie` headers are parsed with Django's `parse_cookie` ([`cookie::parse_cookie`]:
//! split on `;`, first `=`, whitespace stripped, Python unquoting, the last duplicate wins). The value
//! under `cookie_name` becomes the session key; a value shorter than 8 characters counts as no key.
//! Nothing is read from the store until the handler touches the data: a request that never uses its
//! session costs no store call.
//!
//! **Response**, in Django's order, from the session's `accessed`, `modified` and `is_empty()`:
//! 1. If the request carried the cookie (whatever its value) and the session is now empty (no key,
//!    no data: after `flush()`, or a key that loaded nothing), the cookie is deleted:
//!    `sessionid=""; [Domain=…; ]expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=…[; SameSite=…][; Secure]`,
//!    with `Secure` only for `__Secure-`/`__Host-` names or `SameSite=None` (Django's
//!    `delete_cookie`; `cookie_secure` and `HttpOnly` are not used). `Vary: Cookie` is added.
//! 2. Otherwise, if the session is modified (or `save_every_request` is set) and not empty, and the
//!    response status is below 500: the session is saved, then the cookie is set to its (possibly
//!    new) key with `expires` and `Max-Age` from its expiry (`Max-Age` = `get_expiry_age()`,
//!    `expires` = `http_date(now + Max-Age)`; neither for browser-length sessions), then `Domain`,
//!    `HttpOnly`, `Path`, `SameSite` and `Secure` from the config. `Vary: Cookie` is added whenever
//!    the cookie is set (the CVE-2026-35192 fix), and whenever the session was accessed.
//! 3. A 5xx response never saves the session or sets the cookie.
//!
//! **Throttled sliding expiry** (ours, opt-in): with `save_every_request` and
//! [`refresh_fraction`](session_core::SessionConfig::refresh_fraction) above 0, rule 2 saves an
//! *unmodified* session (and re-sends its cookie) only once that fraction of its age has passed
//! since its last save ([`Session::refresh_due`](session_core::Session::refresh_due)); Django
//! saves it on every request. A modified session is saved as always. With 0.1 and the two-week
//! default age, a session in constant use is written about once a day and a half instead of on
//! every request, and it still lives at least 90 % of its age past the last request. Stores that
//! do not report their records' expiry (memcached, files, cookies) keep Django's rule.
//!
//! Attributes are written in the order Python's `http.cookies` sorts them (`Domain`, `expires`,
//! `HttpOnly`, `Max-Age`, `Path`, `SameSite`, `Secure`), and the value is quoted only when it holds a
//! character outside ``A-Za-z0-9!#$%&'*+-.^_`|~:``. A `Set-Cookie` the handler wrote for the session
//! cookie's name is replaced when the layer writes its own (Django keeps one cookie per name). `Vary`
//! is merged as Django's `patch_vary_headers` does ([`vary::patch_vary`]).
//!
//! The signed-cookie store (`session_cookie::CookieStore`) works unchanged: its session key *is* the
//! cookie value, so a changed session is re-signed into a new cookie, and a forged or stale cookie
//! that is read is replaced by a fresh empty one, as in Django.
//!
//! # Errors and responses
//!
//! | what failed while finishing the response | response sent instead | logged |
//! |---|---|---|
//! | the save found the record deleted by another request ([`session_core::Error::SessionDeleted`]) | 400, Django's `SessionInterrupted` message ([`SESSION_INTERRUPTED_MESSAGE`]) | warning, target `django.security.SessionInterrupted` |
//! | under the `merge` or `reject` [concurrency policy](session_core::ConcurrencyPolicy), the save lost to a concurrent request's ([`session_core::Error::Conflict`]) | 409, [`SESSION_CONFLICT_MESSAGE`] | warning, target `djsession.SessionConflict` |
//! | any other store error (load for the expiry, or save) | 500, a generic message ([`SERVER_ERROR_MESSAGE`]) | error, with the cause |
//! | an expiry outside years 1-9999 | 500 | error |
//!
//! The replacing response has no `Set-Cookie` (no cookie is ever sent for data that was not saved)
//! and carries the error as a [`SessionFailure`] extension. Errors the handler gets from its own
//! session calls are the handler's to answer. Nothing here panics on bad input.
//!
//! # Concurrency
//!
//! Two requests for one session, in one process or many, never corrupt each other. The guarantee:
//!
//! - **Snapshot per request.** Each request gets its own [`session_core::Session`], loaded from the
//!   store at most once, on first use; requests never share in-memory session data.
//! - **Whole-record saves; last writer wins by default.** A save writes the request's complete
//!   data in one store operation, so the stored record is always exactly one request's data (or,
//!   under `merge`, one consistent merge), never a torn mix. Under Django's default
//!   (`concurrency = "last_write_wins"`), of two requests that change one session at once, the
//!   later save replaces the earlier one's changes. Under `merge` the later save re-applies only
//!   its own changes onto what is stored; under `reject` it fails with 409 (see
//!   [`session_core::Session`]'s concurrency table). [`SessionLayer::new`] refuses a policy the
//!   store cannot serve (a store without compare-and-swap, such as signed cookies).
//! - **No resurrection.** Saves of an existing session are updates that fail when the record is
//!   gone, so once one request deletes a session (`flush()` on logout, `cycle_key()`), another
//!   request still holding the old key cannot bring it back: it gets the 400 above instead.
//!
//! The tests drive two concurrent requests on one cookie through the layer for many rounds against
//! [`MemoryStore`](session_core::MemoryStore), and check after each that the record is exactly one
//! request's complete data, and that a flushed session never reappears. Work a handler spawns with a
//! clone of the session after returning its response is not saved.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
pub use error::{
    Error, SERVER_ERROR_MESSAGE, SESSION_CONFLICT_MESSAGE, SESSION_INTERRUPTED_MESSAGE,
    SessionFailure,
};

pub mod cookie;
pub mod rules;
pub mod vary;

#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
mod layer;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use layer::{ResponseBody, ResponseFuture, SessionLayer, SessionService};

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use session_core::MissingSessionLayer;
/// The one session type handlers name. With the `axum` feature it is also an axum extractor (the
/// impl lives in `session-core`, next to the type).
pub use session_core::Session;
