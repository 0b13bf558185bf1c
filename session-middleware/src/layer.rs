//! The tower `Layer` and `Service`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{Either, Full};
use session_core::{SameSite, Session, SessionConfig, SessionStore};
use time::OffsetDateTime;
use tower_layer::Layer;
use tower_service::Service;

use crate::cookie::{EPOCH_HTTP_DATE, SetCookie, http_date, request_cookie_ref};
use crate::error::{Error, SessionFailure};
use crate::vary::patch_vary;

/// The body of responses passing through the layer: the handler's body untouched (`Left`), or the
/// short text of an error response the layer produced (`Right`).
pub type ResponseBody<B> = Either<B, Full<Bytes>>;

/// The future returned by [`SessionService`].
pub type ResponseFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send + 'static>>;

type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// Django's `SessionMiddleware` as a tower [`Layer`].
///
/// Build it once from a store and a [`SessionConfig`] (validated here), then apply it to a router or
/// service. Cloning is cheap. See the [crate docs](crate) for the exact behaviour.
#[derive(Clone)]
pub struct SessionLayer {
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<dyn SessionStore>,
    config: Arc<SessionConfig>,
    clock: Clock,
}

impl SessionLayer {
    /// A layer serving sessions from `store` with `config`: the same two arguments, in the same
    /// order, as every store's constructor. Any [`SessionStore`] works, an
    /// `Arc<dyn SessionStore>` included.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the config is invalid ([`SessionConfig::validate`]), and
    /// [`Error::InvalidCookieAttribute`] when `cookie_path` or `cookie_domain` could not be sent
    /// in a `Set-Cookie` header.
    pub fn new(store: impl SessionStore + 'static, config: &SessionConfig) -> Result<Self, Error> {
        config.validate().map_err(Error::InvalidConfig)?;
        config
            .concurrency
            .check_store(&store)
            .map_err(Error::InvalidConfig)?;
        check_attribute("cookie_path", &config.cookie_path, true)?;
        if let Some(domain) = &config.cookie_domain {
            check_attribute("cookie_domain", domain, false)?;
        }
        Ok(SessionLayer {
            shared: Arc::new(Shared {
                store: Arc::new(store),
                config: Arc::new(config.clone()),
                clock: Arc::new(OffsetDateTime::now_utc),
            }),
        })
    }

    /// Replaces the clock the cookie's `Max-Age` and `expires` are computed from (the real UTC clock
    /// by default). Tests freeze it to compare headers byte for byte; the store's own record expiry
    /// is computed by the session when it saves.
    pub fn with_clock(self, clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        SessionLayer {
            shared: Arc::new(Shared {
                store: Arc::clone(&self.shared.store),
                config: Arc::clone(&self.shared.config),
                clock: Arc::new(clock),
            }),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &SessionConfig {
        &self.shared.config
    }

    /// The store sessions are read from and saved to.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.shared.store
    }
}

/// Printable ASCII without `;` (and, for a domain, without spaces): anything else would end the
/// attribute early or break the header.
fn check_attribute(setting: &'static str, value: &str, allow_space: bool) -> Result<(), Error> {
    let allowed = |b: u8| (0x21..0x7f).contains(&b) && b != b';' || (allow_space && b == b' ');
    if value.bytes().all(allowed) {
        Ok(())
    } else {
        Err(Error::InvalidCookieAttribute {
            setting,
            value: value.to_owned(),
            extra: if allow_space { "" } else { " or spaces" },
        })
    }
}

impl fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the store itself: a store's Debug may show session data.
        f.debug_struct("SessionLayer")
            .field("key_kind", &self.shared.store.key_kind())
            .field("cookie_name", &self.shared.config.cookie_name)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .field("cookie_name", &self.shared.config.cookie_name)
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
        let shared = Arc::clone(&self.shared);
        // Django's process_request: nothing is loaded until the handler touches the session.
        let cookie = request_cookie_ref(request.headers(), &shared.config.cookie_name);
        let had_cookie = cookie.is_some();
        let session = Session::new(
            Arc::clone(&shared.store),
            Arc::clone(&shared.config),
            cookie.as_deref(),
        );
        drop(cookie);
        request.extensions_mut().insert(session.clone());
        // Called here, not inside the future, so the readiness `poll_ready` reserved is used.
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(shared.finish(had_cookie, &session, response).await)
        })
    }
}

impl Shared {
    /// Django's `process_response`, turning a failure into the response that replaces the
    /// handler's.
    async fn finish<B>(
        &self,
        request_had_cookie: bool,
        session: &Session,
        response: Response<B>,
    ) -> Response<ResponseBody<B>> {
        let (mut parts, body) = response.into_parts();
        match self
            .process_response(
                request_had_cookie,
                session,
                parts.status.as_u16(),
                &mut parts.headers,
            )
            .await
        {
            Ok(()) => Response::from_parts(parts, Either::Left(body)),
            Err(error) => error_response(error),
        }
    }

    async fn process_response(
        &self,
        request_had_cookie: bool,
        session: &Session,
        status: u16,
        headers: &mut HeaderMap,
    ) -> Result<(), Error> {
        let config = &self.config;
        let accessed = session.accessed();
        let modified = session.modified();
        let empty = session.is_empty();
        let need_vary;
        if request_had_cookie && empty {
            // Django's delete_cookie: Secure only where browsers would otherwise drop the deletion.
            let same_site = config.cookie_samesite.map(|s| s.as_str());
            let name = config.cookie_name.as_str();
            let deletion = SetCookie {
                name,
                value: "",
                expires: Some(EPOCH_HTTP_DATE.to_owned()),
                max_age: Some(0),
                path: Some(&config.cookie_path),
                domain: config.cookie_domain.as_deref(),
                secure: name.starts_with("__Secure-")
                    || name.starts_with("__Host-")
                    || config.cookie_samesite == Some(SameSite::None),
                http_only: false,
                same_site,
            };
            set_cookie(headers, name, deletion.render()?)?;
            need_vary = true;
        } else if (modified || config.save_every_request) && !empty && status < 500 {
            // Django computes the expiry before checking the status; for a 5xx nothing is saved
            // or sent, so the (possibly loading) computation is skipped.
            let now = (self.clock)();
            let expiry = session.expiry().await.map_err(Error::Store)?;
            let lifetime = if expiry.at_browser_close(config.expire_at_browser_close) {
                None
            } else {
                let max_age = session.expiry_age_with(now, expiry);
                let expires = http_date(now.unix_timestamp().saturating_add(max_age))?;
                Some((max_age, expires))
            };
            session.save().await.map_err(|error| match error {
                session_core::Error::SessionDeleted => Error::SessionInterrupted,
                session_core::Error::Conflict => Error::SessionConflict,
                other => Error::Store(other),
            })?;
            let key = session.key().ok_or(Error::KeyVanished)?;
            let (max_age, expires) = lifetime.unzip();
            let cookie = SetCookie {
                name: &config.cookie_name,
                value: key.as_str(),
                expires,
                max_age,
                path: Some(&config.cookie_path),
                domain: config.cookie_domain.as_deref(),
                secure: config.cookie_secure,
                http_only: config.cookie_httponly,
                same_site: config.cookie_samesite.map(|s| s.as_str()),
            };
            set_cookie(headers, &config.cookie_name, cookie.render()?)?;
            // CVE-2026-35192: a cookie that is set must be varied on, even if the handler never
            // touched the session (save_every_request).
            need_vary = true;
        } else {
            need_vary = accessed;
        }
        if need_vary {
            if headers.contains_key(VARY) {
                patch_vary(headers, &["Cookie"]);
            } else {
                // What `patch_vary` writes when there is nothing to merge, without building it.
                headers.insert(VARY, HeaderValue::from_static("Cookie"));
            }
        }
        Ok(())
    }
}

/// Adds the session cookie, replacing any `Set-Cookie` for the same name the handler wrote (Django
/// keeps one cookie per name on a response, so the middleware's wins).
fn set_cookie(headers: &mut HeaderMap, name: &str, rendered: String) -> Result<(), Error> {
    // The rendered text becomes the header's bytes as it is, not copied.
    let value = HeaderValue::from_maybe_shared(Bytes::from(rendered))
        .map_err(|_| Error::UnsendableCookieValue)?;
    let same_name = |v: &HeaderValue| {
        let bytes = v.as_bytes();
        let end = bytes.iter().position(|&b| b == b'=').unwrap_or(bytes.len());
        bytes[..end].trim_ascii() == name.as_bytes()
    };
    if headers.get_all(SET_COOKIE).iter().any(same_name) {
        let kept: Vec<HeaderValue> = headers
            .get_all(SET_COOKIE)
            .iter()
            .filter(|v| !same_name(v))
            .cloned()
            .collect();
        headers.remove(SET_COOKIE);
        for v in kept {
            headers.append(SET_COOKIE, v);
        }
    }
    headers.append(SET_COOKIE, value);
    Ok(())
}

fn error_response<B>(error: Error) -> Response<ResponseBody<B>> {
    match &error {
        // Django logs BadRequest exceptions on the security logger named after the class.
        Error::SessionInterrupted => {
            tracing::warn!(target: "django.security.SessionInterrupted", "{error}");
        }
        // Logged like SessionInterrupted: a client-visible race, not a server fault.
        Error::SessionConflict => {
            tracing::warn!(target: "djsession.SessionConflict", "{error}");
        }
        _ => tracing::error!("{error}; the response was replaced with a 500"),
    }
    let mut response = Response::new(Either::Right(Full::new(Bytes::from_static(
        error.public_message().as_bytes(),
    ))));
    *response.status_mut() = error.status();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .extensions_mut()
        .insert(SessionFailure(Arc::new(error)));
    response
}
