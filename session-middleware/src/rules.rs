//! Django's `SessionMiddleware` rules, free of any web framework: what to read from a request and
//! what to change on its response. The tower layer ([`SessionLayer`](crate::SessionLayer)) and the
//! actix-web middleware (`session-actix`) are thin adapters over [`SessionRules`], so both follow
//! the rules written here once, down to the bytes of `Set-Cookie` and `Vary`.
//!
//! Everything here works on plain text, bytes and status codes, never on a framework's or an
//! `http` version's header types, so a framework on `http` 0.2 (actix-web 4) uses it as well as
//! one on `http` 1. This module does not need the `tower` feature.
//!
//! An adapter does, per request:
//! 1. [`SessionRules::start`] with the request's `Cookie` header values: the lazy session to hand to
//!    the handler (nothing is loaded yet), and whether the request carried the session cookie;
//! 2. run the handler;
//! 3. [`SessionRules::finish`] with the response status: the [`ResponseChanges`] to apply (a
//!    `Set-Cookie` replacing any of the same name, see [`is_cookie_named`], and `Vary: Cookie`
//!    merged with [`vary_with_cookie`]), or the [`Error`] whose response replaces the handler's
//!    ([`Error::status_code`], [`Error::public_message`], [`ERROR_CONTENT_TYPE`], logged once with
//!    [`log_failure`]).
//!
//! ```
//! use session_core::{MemoryStore, SessionConfig};
//! use session_middleware::rules::{SessionRules, vary_with_cookie};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let rules = SessionRules::new(MemoryStore::new(), &SessionConfig::new("secret"))?;
//! let request = rules.start([b"theme=dark".as_slice()]);
//! request.session().insert("user_id", &42).await?; // the handler
//! let changes = rules.finish(&request, 200).await?;
//! assert!(changes.set_cookie.unwrap().starts_with("sessionid="));
//! assert!(changes.vary_cookie);
//! assert_eq!(&*vary_with_cookie([b"Accept-Encoding".as_slice()]), b"Accept-Encoding, Cookie");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use session_core::{SameSite, Session, SessionConfig, SessionStore};
use time::OffsetDateTime;

use crate::cookie::{HttpDate, SetCookie, request_cookie_from_values};
use crate::error::Error;
use crate::vary::patched_vary_bytes;

/// The `Content-Type` of the short text responses that replace a handler's when finishing the
/// session fails.
pub const ERROR_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// A store, a validated config and a clock: everything an adapter needs to apply Django's
/// middleware rules. Build it once; share it behind an `Arc`.
#[derive(Clone)]
pub struct SessionRules {
    store: Arc<dyn SessionStore>,
    config: Arc<SessionConfig>,
    clock: Clock,
}

impl SessionRules {
    /// Rules serving sessions from `store` with `config`, checked as every adapter's constructor
    /// must check them.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the config is invalid ([`SessionConfig::validate`]) or its
    /// concurrency policy needs what the store cannot do
    /// ([`ConcurrencyPolicy::check_store`](session_core::ConcurrencyPolicy::check_store)), and
    /// [`Error::InvalidCookieAttribute`] when `cookie_path` or `cookie_domain` could not be sent in
    /// a `Set-Cookie` header.
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
        Ok(SessionRules {
            store: session_core::store::into_shared(store),
            config: Arc::new(config.clone()),
            clock: Arc::new(OffsetDateTime::now_utc),
        })
    }

    /// Replaces the clock the cookie's `Max-Age` and `expires` are computed from (the real UTC clock
    /// by default). Tests freeze it to compare headers byte for byte; the store's own record expiry
    /// is computed by the session when it saves.
    pub fn with_clock(self, clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        SessionRules {
            clock: Arc::new(clock),
            ..self
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The store sessions are read from and saved to.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// Django's `process_request`: the session for a request whose `Cookie` headers hold
    /// `cookie_headers` (raw values, in order; HTTP/2 sends one per cookie). Nothing is read from
    /// the store until the handler touches the session.
    pub fn start<'h>(&self, cookie_headers: impl IntoIterator<Item = &'h [u8]>) -> RequestSession {
        let cookie = request_cookie_from_values(cookie_headers, &self.config.cookie_name);
        let had_cookie = cookie.is_some();
        let session = Session::new(
            Arc::clone(&self.store),
            Arc::clone(&self.config),
            cookie.as_deref(),
        );
        RequestSession {
            session,
            had_cookie,
        }
    }

    /// Django's `process_response` for a response with `status`: saves the session when the rules
    /// say so and returns the headers to change.
    ///
    /// 1. The request carried the cookie and the session is now empty: the cookie is deleted
    ///    (Django's `delete_cookie`), `Vary: Cookie`.
    /// 2. Otherwise, modified (or `save_every_request`, and then, under a throttled sliding
    ///    expiry, only when [`Session::refresh_due`](session_core::Session::refresh_due)), not
    ///    empty, and `status` below 500: saved, then the cookie is set to its key with
    ///    `expires`/`Max-Age` from its expiry, `Vary: Cookie`.
    /// 3. Otherwise nothing is saved or set; `Vary: Cookie` if the session was accessed.
    ///
    /// # Errors
    /// The [`Error`] whose response replaces the handler's: [`Error::SessionInterrupted`] (400),
    /// [`Error::SessionConflict`] (409), or a 500 one. No cookie may be sent then.
    pub async fn finish(
        &self,
        request: &RequestSession,
        status: u16,
    ) -> Result<ResponseChanges, Error> {
        let config = &self.config;
        let session = &request.session;
        let empty = session.is_empty();
        if request.had_cookie && empty {
            // Django's delete_cookie: Secure only where browsers would otherwise drop the deletion.
            let name = config.cookie_name.as_str();
            let deletion = SetCookie {
                name,
                value: "",
                expires: Some(HttpDate::EPOCH),
                max_age: Some(0),
                path: Some(&config.cookie_path),
                domain: config.cookie_domain.as_deref(),
                secure: name.starts_with("__Secure-")
                    || name.starts_with("__Host-")
                    || config.cookie_samesite == Some(SameSite::None),
                http_only: false,
                same_site: config.cookie_samesite.map(|s| s.as_str()),
            };
            return Ok(ResponseChanges {
                set_cookie: Some(deletion.render()?),
                vary_cookie: true,
            });
        }
        // Django computes the expiry before checking the status; for a 5xx nothing is saved or
        // sent, so the (possibly loading) computation is skipped.
        let now = (self.clock)();
        // Under a throttled sliding expiry (`refresh_fraction`), an unmodified session is saved
        // only once enough of its age has passed; by default every request saves, as in Django.
        let save = !empty
            && status < 500
            && (session.modified()
                || (config.save_every_request
                    && session.refresh_due(now).await.map_err(Error::Store)?));
        if save {
            let expiry = session.expiry().await.map_err(Error::Store)?;
            let lifetime = if expiry.at_browser_close(config.expire_at_browser_close) {
                None
            } else {
                let max_age = session.expiry_age_with(now, expiry);
                let expires = HttpDate::from_unix(now.unix_timestamp().saturating_add(max_age))?;
                Some((max_age, expires))
            };
            session.save().await.map_err(Error::from_save)?;
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
            // CVE-2026-35192: a cookie that is set must be varied on, even if the handler never
            // touched the session (save_every_request).
            return Ok(ResponseChanges {
                set_cookie: Some(cookie.render()?),
                vary_cookie: true,
            });
        }
        Ok(ResponseChanges {
            set_cookie: None,
            vary_cookie: session.accessed(),
        })
    }
}

impl fmt::Debug for SessionRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the store itself: a store's Debug may show session data.
        f.debug_struct("SessionRules")
            .field("key_kind", &self.store.key_kind())
            .field("cookie_name", &self.config.cookie_name)
            .finish_non_exhaustive()
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

/// One request's session, from [`SessionRules::start`].
#[derive(Debug, Clone)]
pub struct RequestSession {
    session: Session,
    had_cookie: bool,
}

impl RequestSession {
    /// The lazy session to hand to the handler (clones share its state).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Whether the request carried the session cookie, whatever its value.
    pub fn had_cookie(&self) -> bool {
        self.had_cookie
    }
}

/// The changes [`SessionRules::finish`] asks of the handler's response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct ResponseChanges {
    /// A `Set-Cookie` value to add, after removing any `Set-Cookie` the handler wrote for the
    /// session cookie's name ([`is_cookie_named`]; Django keeps one cookie per name).
    pub set_cookie: Option<String>,
    /// Whether `Cookie` must be merged into `Vary` ([`vary_with_cookie`]).
    pub vary_cookie: bool,
}

/// Whether the `Set-Cookie` header value `set_cookie` is for the cookie `name`: the session
/// cookie the middleware writes replaces such a header.
pub fn is_cookie_named(set_cookie: &[u8], name: &str) -> bool {
    let end = set_cookie
        .iter()
        .position(|&b| b == b'=')
        .unwrap_or(set_cookie.len());
    set_cookie[..end].trim_ascii() == name.as_bytes()
}

/// The single `Vary` value a response with the `existing` `Vary` values must carry once `Cookie`
/// is merged in (Django's `patch_vary_headers`, see [`crate::vary::patch_vary`]): `Cookie` alone
/// when there is none.
pub fn vary_with_cookie<'h>(existing: impl IntoIterator<Item = &'h [u8]>) -> Cow<'static, [u8]> {
    let mut existing = existing.into_iter().peekable();
    if existing.peek().is_none() {
        // What the merge gives when there is nothing to merge, without building it.
        return Cow::Borrowed(b"Cookie");
    }
    Cow::Owned(patched_vary_bytes(existing, &["Cookie"]))
}

/// Logs the error that replaced a response, as Django logs it: `SessionInterrupted` as a warning
/// on `django.security.SessionInterrupted`, a lost concurrent save as a warning on
/// `djsession.SessionConflict`, anything else as an error with its cause.
pub fn log_failure(error: &Error) {
    match error {
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_set_cookie_is_matched_by_its_name_only() {
        assert!(is_cookie_named(b"sessionid=abc; Path=/", "sessionid"));
        assert!(is_cookie_named(b" sessionid =abc", "sessionid"));
        assert!(!is_cookie_named(b"sessionid2=abc", "sessionid"));
        assert!(!is_cookie_named(b"other=sessionid", "sessionid"));
        assert!(is_cookie_named(b"sessionid", "sessionid"));
    }

    #[test]
    fn vary_is_cookie_alone_or_merged() {
        assert_eq!(vary_with_cookie(std::iter::empty()), b"Cookie".as_slice());
        assert_eq!(
            vary_with_cookie([b"Accept-Encoding".as_slice(), b"cookie"]),
            b"Accept-Encoding, cookie".as_slice()
        );
        assert_eq!(vary_with_cookie([b"*".as_slice()]), b"*".as_slice());
    }
}
