//! Reading, verifying and writing the logged-in user of a session: `django.contrib.auth`'s
//! `get_user`, `login`, `logout`, `update_session_auth_hash` and `authenticate`.

use std::sync::Arc;

use session_core::{Session, Value};
use time::OffsetDateTime;

use crate::hash::{HashMatch, session_auth_hash, verify_session_auth_hash};
use crate::password::{self, random_string};
use crate::{AuthConfig, AuthError, User, UserSource};

/// The session key holding the user's primary key, as a string (Django's `SESSION_KEY`).
pub const SESSION_KEY: &str = "_auth_user_id";
/// The session key holding the backend's dotted path (`BACKEND_SESSION_KEY`).
pub const BACKEND_SESSION_KEY: &str = "_auth_user_backend";
/// The session key holding the session auth hash (`HASH_SESSION_KEY`).
pub const HASH_SESSION_KEY: &str = "_auth_user_hash";
/// Where the CSRF secret lives in the session with `CSRF_USE_SESSIONS` (`CSRF_SESSION_KEY`).
pub const CSRF_SESSION_KEY: &str = "_csrftoken";
/// Django's `CSRF_SECRET_LENGTH`.
pub const CSRF_SECRET_LENGTH: usize = 32;

/// A user whose session verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// The user, as the source has it now.
    pub user: User,
    /// The backend path stored in the session.
    pub backend: String,
    /// Which secret verified the session's hash.
    pub verified_with: HashMatch,
}

/// Why a session has no (trustworthy) user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Anonymous {
    /// No `_auth_user_id` / `_auth_user_backend` in the session, or a null id: nobody logged in.
    NoUser,
    /// The session names a backend that is not in [`AuthConfig::backends`].
    UnknownBackend {
        /// The stored backend value.
        backend: String,
    },
    /// No user has that primary key (deleted since).
    UserGone {
        /// The primary key.
        id: String,
    },
    /// The user is inactive and the backend refuses inactive users.
    Inactive {
        /// The primary key.
        id: String,
    },
    /// `_auth_user_hash` is missing or matches no secret: the password changed since the login
    /// (or the secret key changed without a fallback). Django flushes such a session.
    HashMismatch {
        /// The primary key.
        id: String,
    },
}

impl std::fmt::Display for Anonymous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Anonymous::NoUser => f.write_str("no user is logged in to this session"),
            Anonymous::UnknownBackend { backend } => write!(
                f,
                "the session's backend {backend:?} is not one of the configured authentication backends"
            ),
            Anonymous::UserGone { id } => write!(f, "user {id:?} does not exist"),
            Anonymous::Inactive { id } => write!(f, "user {id:?} is inactive"),
            Anonymous::HashMismatch { id } => write!(
                f,
                "the session hash of user {id:?} does not match (the password changed, or the \
                 secret key changed without a fallback)"
            ),
        }
    }
}

/// What a session says about its user: [`Auth::inspect`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionUser {
    /// A verified user.
    Authenticated(AuthenticatedUser),
    /// Nobody, and why.
    Anonymous(Anonymous),
}

/// What [`Auth::login`] did besides writing the three keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The new CSRF secret (Django's `rotate_token`). With
    /// [`AuthConfig::csrf_use_sessions`] it is already in the session under `_csrftoken`;
    /// otherwise set it as the `csrftoken` cookie if the site uses Django's CSRF cookie.
    pub csrf_secret: String,
    /// Whether the session was flushed because it belonged to another user (or to an older
    /// password of this one); otherwise its key was cycled and its data kept, unless it already
    /// held this very login.
    pub flushed: bool,
}

/// Django's auth, over a [`UserSource`]: cheap to clone, share one per application.
///
/// ```
/// # use std::sync::Arc;
/// use session_auth::{Auth, AuthConfig, MemoryUserSource, User};
/// use session_core::{MemoryStore, Session, SessionConfig};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let users = Arc::new(MemoryUserSource::new());
/// let ada = User { id: "7".into(), password: "md5$salt$hash".into(), is_active: true, backend: None };
/// users.insert("ada", ada.clone());
/// let auth = Auth::new(users.clone(), &AuthConfig::default())?;
///
/// let config = Arc::new(SessionConfig::new("the Django site's SECRET_KEY"));
/// let session = Session::new(Arc::new(MemoryStore::new()), config, None);
/// auth.login(&session, &ada, None).await?;
/// assert_eq!(session.get::<String>("_auth_user_id").await?.as_deref(), Some("7"));
/// assert!(auth.get_user(&session).await?.is_some());
///
/// // The password changes elsewhere (Django's admin): this session is no longer trusted, and
/// // get_user logs it out, as Django does.
/// users.insert("ada", User { password: "md5$salt$other".into(), ..ada });
/// assert!(auth.get_user(&session).await?.is_none());
/// assert!(session.key().is_none() && session.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Auth {
    source: Arc<dyn UserSource>,
    config: Arc<AuthConfig>,
}

impl Auth {
    /// Auth over `source` with `config`.
    ///
    /// # Errors
    /// [`AuthError::Config`] for unusable settings ([`AuthConfig::validate`]).
    pub fn new(source: Arc<dyn UserSource>, config: &AuthConfig) -> Result<Self, AuthError> {
        config.validate()?;
        Ok(Auth {
            source,
            config: Arc::new(config.clone()),
        })
    }

    /// The user source.
    pub fn source(&self) -> &Arc<dyn UserSource> {
        &self.source
    }

    /// The settings.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Who the session belongs to, verified exactly as Django 5.2's `get_user` verifies it, but
    /// changing nothing: no flush on a mismatch, no key cycle on a fallback match. For tools and
    /// diagnostics; request handling wants [`get_user`](Self::get_user).
    ///
    /// # Errors
    /// Session or user source failures, and [`AuthError::InvalidUserId`] for an id Django could
    /// not parse either.
    pub async fn inspect(&self, session: &Session) -> Result<SessionUser, AuthError> {
        use SessionUser::Anonymous as Anon;
        // Django reads the id first (its parse error wins), then the backend; either missing is
        // a KeyError: anonymous.
        let Some(raw_id) = session.get_value(SESSION_KEY).await? else {
            return Ok(Anon(Anonymous::NoUser));
        };
        let id = self.source.key_kind().to_python(&raw_id)?;
        let Some(backend) = session.get_value(BACKEND_SESSION_KEY).await? else {
            return Ok(Anon(Anonymous::NoUser));
        };
        let Some(backend_config) = backend.as_str().and_then(|path| self.config.backend(path))
        else {
            return Ok(Anon(Anonymous::UnknownBackend {
                backend: backend
                    .as_str()
                    .map_or_else(|| format!("{backend:?}"), str::to_owned),
            }));
        };
        let Some(id) = id else {
            // pk=None finds nobody.
            return Ok(Anon(Anonymous::NoUser));
        };
        let Some(user) = self.source.user_by_id(&id).await? else {
            return Ok(Anon(Anonymous::UserGone { id }));
        };
        if !user.is_active && !backend_config.allow_inactive {
            return Ok(Anon(Anonymous::Inactive { id }));
        }
        let stored = session.get_value(HASH_SESSION_KEY).await?;
        let config = session.config();
        let verified = match stored_hash(stored.as_ref()) {
            Some(stored) => verify_session_auth_hash(
                stored,
                &user.password,
                &config.secret_key,
                &config.secret_key_fallbacks,
            ),
            None => None,
        };
        Ok(match verified {
            Some(verified_with) => SessionUser::Authenticated(AuthenticatedUser {
                user,
                backend: backend_config.path.clone(),
                verified_with,
            }),
            None => Anon(Anonymous::HashMismatch { id }),
        })
    }

    /// Django 5.2's `get_user(request)`: the session's user when its hash verifies.
    ///
    /// What Django does to the session, this does too:
    /// - the hash matches under `SECRET_KEY`: nothing changes;
    /// - it matches only under a `SECRET_KEY_FALLBACKS` entry: the session key is cycled and the
    ///   hash rewritten under `SECRET_KEY` (so the fallback can be retired); Django 4.2 and 5.2 do
    ///   the same;
    /// - it is missing or matches no key: the session is flushed (logged out) and `None` returned;
    /// - no user, an unknown backend, a deleted or refused (inactive) user: `None`, the session
    ///   left as it is (Django does not flush then either).
    ///
    /// Save the session afterwards (the session middleware does) so the rewritten hash is stored.
    ///
    /// # Errors
    /// As [`inspect`](Self::inspect), and session store failures while flushing or cycling.
    pub async fn get_user(
        &self,
        session: &Session,
    ) -> Result<Option<AuthenticatedUser>, AuthError> {
        match self.inspect(session).await? {
            SessionUser::Authenticated(found) => {
                if found.verified_with != HashMatch::Current {
                    session.cycle_key().await?;
                    let current =
                        session_auth_hash(&found.user.password, &session.config().secret_key);
                    session.insert(HASH_SESSION_KEY, &current).await?;
                }
                Ok(Some(found))
            }
            SessionUser::Anonymous(Anonymous::HashMismatch { .. }) => {
                session.flush().await?;
                Ok(None)
            }
            SessionUser::Anonymous(_) => Ok(None),
        }
    }

    /// Django's `login(request, user, backend)`: makes `user` the session's user.
    ///
    /// - If the session already holds a user: it is flushed (a new, empty session) when that is
    ///   another user or its hash differs from this user's current one; a repeated login of the
    ///   same user keeps the session as it is.
    /// - Otherwise its key is cycled (data kept), against session fixation.
    /// - Then `_auth_user_id` (the key as a string), `_auth_user_backend` (`backend`, else
    ///   `user.backend`, else the only configured backend) and `_auth_user_hash` are written, the
    ///   CSRF secret is rotated (see [`Login::csrf_secret`]) and the user's `last_login` is set
    ///   (Django's `update_last_login` receiver).
    ///
    /// # Errors
    /// [`AuthError::AmbiguousBackend`] when the backend cannot be chosen; session, store and user
    /// source failures.
    pub async fn login(
        &self,
        session: &Session,
        user: &User,
        backend: Option<&str>,
    ) -> Result<Login, AuthError> {
        let hash = session_auth_hash(&user.password, &session.config().secret_key);
        let mut flushed = false;
        if let Some(raw_id) = session.get_value(SESSION_KEY).await? {
            let current = self.source.key_kind().to_python(&raw_id)?;
            let stored = session.get_value(HASH_SESSION_KEY).await?;
            let same_hash = stored_hash(stored.as_ref()).is_some_and(|stored| {
                session_signing::constant_time_eq(stored.as_bytes(), hash.as_bytes())
            });
            if current.as_deref() != Some(user.id.as_str()) || !same_hash {
                session.flush().await?;
                flushed = true;
            }
        } else {
            session.cycle_key().await?;
        }
        let backend = self.login_backend(user, backend)?;
        session.insert(SESSION_KEY, &user.id).await?;
        session.insert(BACKEND_SESSION_KEY, &backend).await?;
        session.insert(HASH_SESSION_KEY, &hash).await?;
        let csrf_secret = random_string(CSRF_SECRET_LENGTH)?;
        if self.config.csrf_use_sessions {
            session.insert(CSRF_SESSION_KEY, &csrf_secret).await?;
        }
        self.source
            .record_login(&user.id, OffsetDateTime::now_utc())
            .await?;
        Ok(Login {
            csrf_secret,
            flushed,
        })
    }

    /// Django's `_get_backend_from_user`.
    fn login_backend(&self, user: &User, backend: Option<&str>) -> Result<String, AuthError> {
        if let Some(path) = backend.or(user.backend.as_deref()) {
            return Ok(path.to_owned());
        }
        match self.config.backends.as_slice() {
            [only] => Ok(only.path.clone()),
            _ => Err(AuthError::AmbiguousBackend),
        }
    }

    /// Django's `logout(request)`: flushes the session (data, record and key).
    ///
    /// # Errors
    /// Session store failures.
    pub async fn logout(&self, session: &Session) -> Result<(), AuthError> {
        session.flush().await?;
        Ok(())
    }

    /// Django's `update_session_auth_hash(request, user)` after `user`'s password changed: cycles
    /// the session key and, when the session belongs to `user`, stores the hash of the new
    /// password so this session stays logged in (every other session of the user is invalidated
    /// by the change).
    ///
    /// # Errors
    /// Session and store failures; [`AuthError::InvalidUserId`] for an unparsable stored id.
    pub async fn update_session_auth_hash(
        &self,
        session: &Session,
        user: &User,
    ) -> Result<(), AuthError> {
        session.cycle_key().await?;
        let current = match session.get_value(SESSION_KEY).await? {
            Some(raw) => self.source.key_kind().to_python(&raw)?,
            None => None,
        };
        if current.as_deref() == Some(user.id.as_str()) {
            let hash = session_auth_hash(&user.password, &session.config().secret_key);
            session.insert(HASH_SESSION_KEY, &hash).await?;
        }
        Ok(())
    }

    /// Django's `authenticate(username=..., password=...)` with `ModelBackend`: the user when the
    /// password is right and the backend accepts the user (active, or any with
    /// `AllowAllUsersModelBackend`), with [`User::backend`] set to the first configured backend.
    ///
    /// As Django does, a correct password whose hash needs upgrading
    /// ([`password::must_update`]) is rehashed with the preferred hasher and stored
    /// ([`UserSource::set_password`]) before the user is returned, so `login` then hashes the new
    /// value; an unknown username still costs one password hash, so timing does not reveal which
    /// usernames exist.
    ///
    /// # Errors
    /// User source and hasher failures.
    pub async fn authenticate(
        &self,
        username: &str,
        password_text: &str,
    ) -> Result<Option<User>, AuthError> {
        let passwords = &self.config.passwords;
        let Some(mut user) = self.source.user_by_username(username).await? else {
            // Django: "Run the default password hasher once to reduce the timing difference
            // between an existing and a nonexistent user (#20760)."
            password::make_password(password_text, passwords).await?;
            return Ok(None);
        };
        let check = password::check_password(password_text, &user.password, passwords).await?;
        if !check.correct {
            return Ok(None);
        }
        if check.must_update {
            let upgraded = password::make_password(password_text, passwords).await?;
            self.source.set_password(&user.id, &upgraded).await?;
            user.password = upgraded;
        }
        let Some(backend) = self.config.backends.first() else {
            return Ok(None);
        };
        if !user.is_active && !backend.allow_inactive {
            return Ok(None);
        }
        user.backend = Some(backend.path.clone());
        Ok(Some(user))
    }

    /// Django's `user.set_password(raw); user.save()`: stores a fresh hash of `password_text` and
    /// returns the user as it is now. Call [`update_session_auth_hash`](Self::update_session_auth_hash)
    /// next to keep the current session logged in.
    ///
    /// # Errors
    /// User source and hasher failures.
    pub async fn set_password(&self, user: &User, password_text: &str) -> Result<User, AuthError> {
        let encoded = password::make_password(password_text, &self.config.passwords).await?;
        self.source.set_password(&user.id, &encoded).await?;
        Ok(User {
            password: encoded,
            ..user.clone()
        })
    }
}

/// The stored hash as Django's truthiness sees it: `None` for a missing or falsy value. A value
/// that is not a string can never equal a hex digest; it is compared as its JSON text, which
/// never matches.
fn stored_hash(value: Option<&Value>) -> Option<&str> {
    match value? {
        Value::Str(text) if !text.is_empty() => Some(text),
        Value::Null | Value::Bool(false) | Value::Str(_) => None,
        // Truthy non-strings: Django compares their bytes and fails; "-" matches no hex digest.
        _ => Some("-"),
    }
}
