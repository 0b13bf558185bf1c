//! The tower `Layer` and `Service`.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, Entry, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{Either, Full};
use session_core::{SessionConfig, SessionStore};
use time::OffsetDateTime;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{Error, SessionFailure};
use crate::rules::{
    ERROR_CONTENT_TYPE, ResponseChanges, SessionRules, is_cookie_named, log_failure,
    vary_with_cookie,
};

/// The body of responses passing through the layer: the handler's body untouched (`Left`), or the
/// short text of an error response the layer produced (`Right`).
pub type ResponseBody<B> = Either<B, Full<Bytes>>;

/// The future returned by [`SessionService`].
pub type ResponseFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send + 'static>>;

/// Django's `SessionMiddleware` as a tower [`Layer`].
///
/// Build it once from a store and a [`SessionConfig`] (validated here), then apply it to a router or
/// service. Cloning is cheap. See the [crate docs](crate) for the exact behaviour; the rules
/// themselves live in [`SessionRules`], shared with the other frameworks' adapters.
#[derive(Clone)]
pub struct SessionLayer {
    rules: Arc<SessionRules>,
}

impl SessionLayer {
    /// A layer serving sessions from `store` with `config`: the same two arguments, in the same
    /// order, as every store's constructor. Any [`SessionStore`] works, an
    /// `Arc<dyn SessionStore>` included, which is shared as it is
    /// ([`into_shared`](session_core::store::into_shared)): the same store can serve other code.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the config is invalid ([`SessionConfig::validate`]) or asks
    /// for a concurrency policy the store cannot serve, and [`Error::InvalidCookieAttribute`] when
    /// `cookie_path` or `cookie_domain` could not be sent in a `Set-Cookie` header.
    pub fn new(store: impl SessionStore + 'static, config: &SessionConfig) -> Result<Self, Error> {
        Ok(SessionLayer {
            rules: Arc::new(SessionRules::new(store, config)?),
        })
    }

    /// Replaces the clock the cookie's `Max-Age` and `expires` are computed from (the real UTC clock
    /// by default). Tests freeze it to compare headers byte for byte; the store's own record expiry
    /// is computed by the session when it saves.
    pub fn with_clock(self, clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        SessionLayer {
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

impl fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the store itself: a store's Debug may show session data.
        f.debug_struct("SessionLayer")
            .field("key_kind", &self.rules.store().key_kind())
            .field("cookie_name", &self.rules.config().cookie_name)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            rules: Arc::clone(&self.rules),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    rules: Arc<SessionRules>,
}

impl<S: fmt::Debug> fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .field("cookie_name", &self.rules.config().cookie_name)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let rules = Arc::clone(&self.rules);
        // Django's process_request: nothing is loaded until the handler touches the session.
        let state = rules.start(
            request
                .headers()
                .get_all(COOKIE)
                .iter()
                .map(HeaderValue::as_bytes),
        );
        request.extensions_mut().insert(state.session().clone());
        // Called here, not inside the future, so the readiness `poll_ready` reserved is used.
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let (mut parts, body) = response.into_parts();
            match rules.finish(&state, parts.status.as_u16()).await {
                Ok(changes) => {
                    match apply(&mut parts.headers, changes, &rules.config().cookie_name) {
                        Ok(()) => Ok(Response::from_parts(parts, Either::Left(body))),
                        Err(error) => Ok(error_response(error)),
                    }
                }
                Err(error) => Ok(error_response(error)),
            }
        })
    }
}

/// Writes the rules' changes into the response headers.
fn apply(headers: &mut HeaderMap, changes: ResponseChanges, name: &str) -> Result<(), Error> {
    if let Some(rendered) = changes.set_cookie {
        set_cookie(headers, name, rendered)?;
    }
    if changes.vary_cookie {
        // One lookup of `Vary`, whether the handler set it or not.
        match headers.entry(VARY) {
            Entry::Vacant(vacant) => {
                vacant.insert(HeaderValue::from_static("Cookie"));
            }
            Entry::Occupied(mut occupied) => {
                let bytes = match vary_with_cookie(occupied.iter().map(HeaderValue::as_bytes)) {
                    Cow::Borrowed(value) => Bytes::from_static(value),
                    Cow::Owned(value) => Bytes::from(value),
                };
                // Every byte came from a valid header value or a header name, plus ", ": always
                // valid.
                if let Ok(value) = HeaderValue::from_maybe_shared(bytes) {
                    // Replaces every `Vary` value with the merged one.
                    occupied.insert(value);
                }
            }
        }
    }
    Ok(())
}

/// Adds the session cookie, replacing any `Set-Cookie` for the same name the handler wrote (Django
/// keeps one cookie per name on a response, so the middleware's wins).
fn set_cookie(headers: &mut HeaderMap, name: &str, rendered: String) -> Result<(), Error> {
    // The rendered text becomes the header's bytes as it is, not copied.
    let value = HeaderValue::from_maybe_shared(Bytes::from(rendered))
        .map_err(|_| Error::UnsendableCookieValue)?;
    let same_name = |v: &HeaderValue| is_cookie_named(v.as_bytes(), name);
    // One lookup of `Set-Cookie`, whether the handler set any or not.
    match headers.entry(SET_COOKIE) {
        Entry::Vacant(vacant) => {
            vacant.insert(value);
        }
        Entry::Occupied(mut occupied) if occupied.iter().any(same_name) => {
            let kept: Vec<HeaderValue> =
                occupied.iter().filter(|v| !same_name(v)).cloned().collect();
            // The first replaces every value held; the rest follow it, ours last.
            let mut values = kept.into_iter().chain(std::iter::once(value));
            if let Some(first) = values.next() {
                occupied.insert(first);
            }
            for v in values {
                occupied.append(v);
            }
        }
        Entry::Occupied(mut occupied) => occupied.append(value),
    }
    Ok(())
}

fn error_response<B>(error: Error) -> Response<ResponseBody<B>> {
    log_failure(&error);
    let mut response = Response::new(Either::Right(Full::new(Bytes::from_static(
        error.public_message().as_bytes(),
    ))));
    *response.status_mut() = error.status();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ERROR_CONTENT_TYPE));
    response
        .extensions_mut()
        .insert(SessionFailure(Arc::new(error)));
    response
}
