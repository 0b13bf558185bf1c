//! The actix-web `Transform` and its service: a thin adapter over
//! [`session_middleware::rules`].

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, COOKIE, HeaderMap, HeaderValue, SET_COOKIE, VARY};
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpResponse};
use session_core::{SessionConfig, SessionStore};
use session_middleware::rules::{
    ERROR_CONTENT_TYPE, ResponseChanges, SessionRules, is_cookie_named, log_failure,
    vary_with_cookie,
};
use session_middleware::{Error, SessionFailure};
use time::OffsetDateTime;

/// Django's `SessionMiddleware` for actix-web: `App::new().wrap(SessionMiddleware::new(store,
/// &config)?)`.
///
/// Build it once from a store and a [`SessionConfig`] (validated here, as
/// `session_middleware::SessionLayer::new` validates it), then wrap an `App`, a `Scope` or a
/// `Resource`. Cloning is cheap (the factory closure of `HttpServer::new` clones it per worker).
/// See the [crate docs](crate) for the exact behaviour.
#[derive(Clone)]
pub struct SessionMiddleware {
    rules: Arc<SessionRules>,
}

impl SessionMiddleware {
    /// Middleware serving sessions from `store` with `config`: the same two arguments, in the same
    /// order, as every store's constructor and the tower layer's. Any [`SessionStore`] works, an
    /// `Arc<dyn SessionStore>` included, which is shared as it is
    /// ([`into_shared`](session_core::store::into_shared)): the same store can serve other code.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the config is invalid ([`SessionConfig::validate`]) or asks
    /// for a concurrency policy the store cannot serve (a store without compare-and-swap under
    /// `merge` or `reject`), and [`Error::InvalidCookieAttribute`] when `cookie_path` or
    /// `cookie_domain` could not be sent in a `Set-Cookie` header.
    pub fn new(store: impl SessionStore + 'static, config: &SessionConfig) -> Result<Self, Error> {
        Ok(SessionMiddleware {
            rules: Arc::new(SessionRules::new(store, config)?),
        })
    }

    /// Replaces the clock the cookie's `Max-Age` and `expires` are computed from (the real UTC clock
    /// by default), as `SessionLayer::with_clock` does. Tests freeze it to compare headers byte for
    /// byte; the store's own record expiry is computed by the session when it saves.
    pub fn with_clock(self, clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        SessionMiddleware {
            rules: Arc::new(SessionRules::clone(&self.rules).with_clock(clock)),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &SessionConfig {
        self.rules.config()
    }

    /// The store sessions are read from and saved to.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        self.rules.store()
    }
}

impl fmt::Debug for SessionMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the store itself: a store's Debug may show session data.
        f.debug_struct("SessionMiddleware")
            .field("key_kind", &self.rules.store().key_kind())
            .field("cookie_name", &self.rules.config().cookie_name)
            .finish_non_exhaustive()
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionMiddlewareService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionMiddlewareService {
            service,
            rules: Arc::clone(&self.rules),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around the inner one.
pub struct SessionMiddlewareService<S> {
    service: S,
    rules: Arc<SessionRules>,
}

impl<S> fmt::Debug for SessionMiddlewareService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddlewareService")
            .field("cookie_name", &self.rules.config().cookie_name)
            .finish_non_exhaustive()
    }
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T> + 'static>>;

impl<S, B> Service<ServiceRequest> for SessionMiddlewareService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let rules = Arc::clone(&self.rules);
        // Django's process_request: nothing is loaded until the handler touches the session.
        let state = rules.start(request.headers().get_all(COOKIE).map(HeaderValue::as_bytes));
        request.extensions_mut().insert(state.session().clone());
        let response = self.service.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            let status = response.status().as_u16();
            let failure = match rules.finish(&state, status).await {
                Ok(changes) => {
                    match apply(response.headers_mut(), changes, &rules.config().cookie_name) {
                        Ok(()) => return Ok(response.map_into_left_body()),
                        Err(error) => error,
                    }
                }
                Err(error) => error,
            };
            Ok(response
                .into_response(error_response(failure))
                .map_into_right_body())
        })
    }
}

/// Writes the rules' changes into the response headers.
fn apply(headers: &mut HeaderMap, changes: ResponseChanges, name: &str) -> Result<(), Error> {
    if let Some(rendered) = changes.set_cookie {
        // The rendered text becomes the header's bytes as it is, not copied.
        let value = HeaderValue::from_maybe_shared(Bytes::from(rendered))
            .map_err(|_| Error::UnsendableCookieValue)?;
        // Django keeps one cookie per name on a response: the middleware's replaces the handler's.
        if headers
            .get_all(SET_COOKIE)
            .any(|v| is_cookie_named(v.as_bytes(), name))
        {
            let kept: Vec<HeaderValue> = headers
                .get_all(SET_COOKIE)
                .filter(|v| !is_cookie_named(v.as_bytes(), name))
                .cloned()
                .collect();
            headers.remove(SET_COOKIE);
            for v in kept {
                headers.append(SET_COOKIE, v);
            }
        }
        headers.append(SET_COOKIE, value);
    }
    if changes.vary_cookie {
        let merged = vary_with_cookie(headers.get_all(VARY).map(HeaderValue::as_bytes));
        let bytes = match merged {
            std::borrow::Cow::Borrowed(value) => Bytes::from_static(value),
            std::borrow::Cow::Owned(value) => Bytes::from(value),
        };
        // Every byte came from a valid header value or a header name, plus ", ": always valid.
        if let Ok(value) = HeaderValue::from_maybe_shared(bytes) {
            headers.insert(VARY, value);
        }
    }
    Ok(())
}

/// The response that replaces the handler's when finishing the session failed: the rules' status
/// and text, no cookie, the error as a [`SessionFailure`] extension.
fn error_response(error: Error) -> HttpResponse<BoxBody> {
    log_failure(&error);
    let status =
        StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, ERROR_CONTENT_TYPE))
        .body(error.public_message());
    response
        .extensions_mut()
        .insert(SessionFailure(Arc::new(error)));
    response
}
