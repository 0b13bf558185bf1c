//! Django's signed-cookie session engine (`django.contrib.sessions.backends.signed_cookies`).
//!
//! [`CookieStore`] keeps nothing on the server: the session key *is* the session data, signed
//! with the secret key (salt `django.contrib.sessions.backends.signed_cookies`), compressed when
//! that is shorter, exactly as Django's `signing.dumps` writes it. Tokens minted by a Django site
//! with the same `SECRET_KEY`, serializer and cookie age are accepted here, and the reverse.
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{KeyKind, Session, SessionConfig, SessionStore};
//! use session_cookie::CookieStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let config = Arc::new(SessionConfig::new("the Django site's SECRET_KEY"));
//! let store = Arc::new(CookieStore::new(&config)?);
//! assert_eq!(store.key_kind(), KeyKind::SignedData);
//!
//! let session = Session::new(store.clone(), config.clone(), None);
//! session.insert("hello", "world").await?;
//! session.save().await?;
//! // The cookie value is the signed data: `eyJoZWxsbyI6IndvcmxkIn0:<timestamp>:<signature>`.
//! let cookie = session.key().unwrap();
//! assert!(cookie.as_str().starts_with("eyJoZWxsbyI6IndvcmxkIn0:"));
//!
//! // The next request presents the cookie; the data comes out of it.
//! let next = Session::new(store.clone(), config.clone(), Some(cookie.as_str()));
//! assert_eq!(next.get::<String>("hello").await?.as_deref(), Some("world"));
//!
//! // A tampered cookie reads as an empty session, marked modified so the client gets a fresh one.
//! let forged = cookie.as_str().replace("eyJoZWxsbyI6IndvcmxkIn0", "eyJoZWxsbyI6ImV2aWwifQ");
//! let next = Session::new(store, config, Some(&forged));
//! assert_eq!(next.len().await?, 0);
//! assert!(next.modified());
//! # Ok::<(), session_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! Compatibility is checked both ways against real Django 5.2: `tests/django_interop.rs` judges
//! the cookies Django minted (`fixtures/django/file-cookie-vectors.json`) as Django did, and
//!
//! ```sh
//! file=$(mktemp)
//! cargo run -p session-cookie --example write_cookies_for_django -- "$file"
//! python3 fixtures/django/generate_file_cookie.py --read-cookies "$file"
//! ```
//!
//! has Django load the cookies we minted.
//!
//! # Behaviour (Django's)
//!
//! - Loading verifies the signature (fallback secrets included) and refuses tokens older than
//!   `cookie_age` (`max_age`), whatever the session's own `set_expiry`: Django ignores per-session
//!   expiry here (ticket #19201), and so do we. An invalid or stale cookie gives an empty session
//!   that keeps its key and is marked modified, so an accessed session is re-sent as a fresh
//!   (empty) cookie.
//! - Saving signs the current data with a fresh timestamp and returns the new token as the key.
//! - `exists` is always false; `delete` removes nothing (the `Session` then empties itself and
//!   drops its key); `clear_expired` is `ClearExpired::NotNeeded`.
//! - `cycle_key` re-signs the same data; `flush` empties the session and drops the key, so the
//!   middleware deletes the cookie. Issued cookies cannot be revoked: a copy stays valid until it is
//!   `cookie_age` old. The data is signed, not encrypted: clients can read it.
//!
//! # Differences from Django
//!
//! - **Size limit.** Django sends whatever the data needs; browsers silently drop a cookie whose
//!   name and value exceed 4096 bytes, losing the session without an error. Here
//!   [`save`](session_core::SessionStore::save) fails with [`CookieError::TooLarge`] (inside
//!   `session_core::Error::Store`) when the cookie name plus the token exceed
//!   [`MAX_COOKIE_SIZE`] bytes, the budget RFC 6265 gives name and value together (the attributes
//!   `Path`, `Expires`, ... are not counted). The session is not saved, and no cookie is produced
//!   for the middleware to send.
//! - **Logging.** Django logs nothing when a cookie is refused. Here a cookie whose signature does
//!   not verify, or which is validly signed but does not decode (a payload the serializer
//!   refuses, such as a pickle naming a Python global), logs Django's `Session data corrupted`
//!   warning on the `django.security.SuspiciousSession` target; a merely stale cookie is logged at
//!   debug level.
//!
//! # Concurrency policies
//!
//! Only `last_write_wins` (the default, Django's behaviour). The session lives in the client's
//! cookie, so there is no stored record to compare against: two requests holding the same
//! cookie each get their own new cookie, and the browser keeps whichever response arrives last.
//! The store declares no compare-and-swap
//! ([`capabilities`](session_core::SessionStore::capabilities) is `BASIC`), and
//! [`CookieStore::new`] refuses `concurrency = "merge"` or `"reject"` with
//! [`Error::Config`], as the middleware would: a configuration asking for them is never
//! silently downgraded. Use a server-side store (database, cache, file) for those policies.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use session_core::codec::{CORRUPTED_MESSAGE, SIGNED_COOKIES_SALT, SUSPICIOUS_SESSION_TARGET};
use session_core::{
    ClearExpired, Dict, Error, KeyKind, SaveMode, SessionCodec, SessionConfig, SessionKey,
    SessionRecord, SessionStore,
};

/// The largest cookie browsers keep, counting the cookie's name and value together (RFC 6265
/// §6.1; RFC 6265bis: "the combined lengths of the cookie-name and cookie-value ≤ 4096 octets").
pub const MAX_COOKIE_SIZE: usize = 4096;

/// What can go wrong in the signed-cookie store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CookieError {
    /// The signed session would make a cookie browsers drop.
    #[error(
        "the session cookie would be {size} bytes (name and value), over the {limit}-byte limit \
         browsers keep, so the session was not saved: store less in the session, or use a \
         server-side store"
    )]
    TooLarge {
        /// The cookie's name plus the token, in bytes.
        size: usize,
        /// [`MAX_COOKIE_SIZE`].
        limit: usize,
    },
}

impl From<CookieError> for Error {
    fn from(error: CookieError) -> Self {
        Error::store(error)
    }
}

/// Sessions stored in the client's cookie, signed: Django's `signed_cookies` engine.
#[derive(Clone)]
pub struct CookieStore {
    codec: SessionCodec,
    cookie_name_len: usize,
    max_age: Duration,
    clock: Arc<dyn Fn() -> SystemTime + Send + Sync>,
}

impl fmt::Debug for CookieStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieStore")
            .field("codec", &self.codec)
            .field("cookie_name_len", &self.cookie_name_len)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl CookieStore {
    /// A store signing with `config`'s secret key and serializer, refusing cookies older than
    /// `config.cookie_age`, and counting `config.cookie_name` in the cookie size.
    ///
    /// # Errors
    /// [`Error::Config`] when `config` is invalid, or asks for the `merge` or `reject`
    /// [concurrency policy](session_core::ConcurrencyPolicy), which this store cannot serve
    /// (see "Concurrency policies" in the crate docs).
    pub fn new(config: &SessionConfig) -> Result<Self, Error> {
        let store = CookieStore {
            codec: SessionCodec::with_token_salt(config, SIGNED_COOKIES_SALT)?,
            cookie_name_len: config.cookie_name.len(),
            max_age: Duration::from_secs(u64::try_from(config.cookie_age).unwrap_or(0)),
            clock: Arc::new(SystemTime::now),
        };
        // Refused here rather than served as last-write-wins behind the configuration's back.
        config.concurrency.check_store(&store)?;
        Ok(store)
    }

    /// Judges cookie ages by this clock instead of the system's (tests, replaying a moment).
    /// Saving still stamps new cookies with the system time.
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The size [`MAX_COOKIE_SIZE`] is compared with: the cookie name plus `token`, in bytes.
    pub fn cookie_size(&self, token: &str) -> usize {
        self.cookie_name_len + token.len()
    }

    /// The data in a cookie value, or why it was refused (bad signature, older than the cookie
    /// age, or a payload that does not decode).
    ///
    /// # Errors
    /// [`Error::Signing`] when the cookie does not verify or is too old, [`Error::Serializer`]
    /// when its payload does not parse.
    pub fn decode(&self, token: &str) -> Result<Dict, Error> {
        self.codec
            .try_decode_at(token, Some(self.max_age), (self.clock)())
    }
}

#[async_trait]
impl SessionStore for CookieStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        match self.decode(key.as_str()) {
            Ok(data) => Ok(Some(data)),
            Err(Error::Signing(error)) if error.is_expired() => {
                tracing::debug!(%error, "refused a stale session cookie");
                Ok(None)
            }
            Err(error) => {
                tracing::warn!(target: SUSPICIOUS_SESSION_TARGET, %error, "{CORRUPTED_MESSAGE}");
                Ok(None)
            }
        }
    }

    async fn exists(&self, _key: &SessionKey) -> Result<bool, Error> {
        Ok(false)
    }

    async fn save(
        &self,
        _key: &SessionKey,
        record: SessionRecord<'_>,
        _mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        let token = self.codec.encode(record.data)?;
        let size = self.cookie_size(&token);
        if size > MAX_COOKIE_SIZE {
            return Err(CookieError::TooLarge {
                size,
                limit: MAX_COOKIE_SIZE,
            }
            .into());
        }
        SessionKey::new(token)
    }

    async fn delete(&self, _key: &SessionKey) -> Result<(), Error> {
        Ok(())
    }

    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        Ok(ClearExpired::NotNeeded)
    }

    fn key_kind(&self) -> KeyKind {
        KeyKind::SignedData
    }

    fn kind(&self) -> &'static str {
        "cookie"
    }
}
