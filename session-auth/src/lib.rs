//! Who is logged in: Django's auth sessions (`django.contrib.auth`) from Rust, both directions.
//!
//! A Django site keeps the logged-in user in the session under three keys: `_auth_user_id` (the
//! user's primary key, as a string), `_auth_user_backend` (the authentication backend's dotted
//! path) and `_auth_user_hash` (an HMAC of the user's *current* password hash, so changing the
//! password logs out every other session). Reading `_auth_user_id` alone trusts sessions Django
//! has already disowned; this crate checks them exactly as Django 5.2 does, and writes logins
//! Django honours.
//!
//! - **Read**: [`Auth::get_user`] is Django's `get_user` (verification with `SECRET_KEY`, then
//!   each `SECRET_KEY_FALLBACKS` entry, the key cycled and the hash rewritten on a fallback match,
//!   the session flushed on a mismatch, inactive users refused as `ModelBackend` refuses them);
//!   [`Auth::inspect`] answers the same question without touching the session.
//! - **Write**: [`Auth::login`], [`Auth::logout`], [`Auth::update_session_auth_hash`], as
//!   `django.contrib.auth` does them, CSRF rotation included.
//! - **Passwords**: [`Auth::authenticate`] checks Django password hashes ([`password`]) off the
//!   async runtime and upgrades old ones on login as Django does.
//! - **Users** come from a [`UserSource`]: [`SqlUserSource`] reads Django's `auth_user` or a
//!   custom user model ([`UserModel`]) on PostgreSQL, MySQL/MariaDB and SQLite (features
//!   `postgres`, `mysql`, `sqlite`, the last on by default); [`MemoryUserSource`] for tests.
//! - **axum** (feature `axum`): the [`AuthUser`](extract::AuthUser) and
//!   [`MaybeUser`](extract::MaybeUser) extractors.
//! - **Log out everywhere**: list and revoke a user's sessions ([`everywhere`]). On the db and
//!   cached-db engines [`everywhere::UserSessions`] uses a custom session model's user column,
//!   or a side table of the logins made here plus a verifying scan that also finds Django's
//!   (cached-db: the cache entries go with the rows); on the cache engine in Redis (feature
//!   `redis`) `everywhere::RedisUserSessions` uses a per-user Redis set plus a `SCAN`
//!   (`sessions revoke --user ID` / `sessions list --user ID` in the CLI).
//!
//! ```
//! use std::sync::Arc;
//! use session_auth::{Auth, AuthConfig, MemoryUserSource, User, password};
//! use session_core::{MemoryStore, Session, SessionConfig};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! // The users (here in memory; SqlUserSource reads the Django site's auth_user table).
//! let fast = password::PasswordConfig { iterations: 1_000, ..Default::default() };
//! let users = Arc::new(MemoryUserSource::new());
//! users.insert("ada", User {
//!     id: "1".into(),
//!     password: password::make_password("correct horse", &fast).await?,
//!     is_active: true,
//!     backend: None,
//! });
//! let auth = Auth::new(users, &AuthConfig { passwords: fast, ..AuthConfig::default() })?;
//!
//! // A login request: check the password, then log the user in to the request's session.
//! let config = Arc::new(SessionConfig::new("the Django site's SECRET_KEY"));
//! let store = Arc::new(MemoryStore::new());
//! let session = Session::new(store.clone(), config.clone(), None);
//! let ada = auth.authenticate("ada", "correct horse").await?.expect("right password");
//! auth.login(&session, &ada, None).await?;
//! session.save().await?;
//!
//! // A later request with that session cookie: who is it?
//! let cookie = session.key().expect("saved");
//! let later = Session::new(store, config, Some(cookie.as_str()));
//! let who = auth.get_user(&later).await?.expect("logged in");
//! assert_eq!(who.user.id, "1");
//! assert_eq!(who.backend, "django.contrib.auth.backends.ModelBackend");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Exactly what Django does
//!
//! `get_user` (Django 5.2, identical in 4.2):
//!
//! | session | user source | result | session afterwards |
//! |---|---|---|---|
//! | no `_auth_user_id` or no `_auth_user_backend` | – | anonymous | unchanged |
//! | backend not in [`AuthConfig::backends`] | – | anonymous | unchanged |
//! | id of no user | none | anonymous | unchanged |
//! | inactive user, `ModelBackend` | found | anonymous | unchanged |
//! | hash matches under `SECRET_KEY` | found | the user | unchanged |
//! | hash matches only under a fallback key | found | the user | key cycled, hash rewritten under `SECRET_KEY` |
//! | hash missing, empty or matching no key | found | anonymous | flushed |
//! | `_auth_user_id` not a valid key (`"abc"` for an integer key) | – | [`AuthError::InvalidUserId`] (Django: `ValidationError`, a 500) | unchanged |
//!
//! The hash is `salted_hmac("django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash",
//! <password hash>, secret, algorithm="sha256").hexdigest()` ([`session_auth_hash`]), compared in
//! constant time.
//!
//! **Inactive users.** Django's default `ModelBackend` refuses users with `is_active = False`,
//! both at login and for existing sessions; `AllowAllUsersModelBackend` serves them. List the
//! site's backend in [`AuthConfig::backends`] ([`AuthBackend::model_backend`],
//! [`AuthBackend::allow_all_users_model_backend`]); a custom model without `is_active` has only
//! active users ([`UserModel::is_active_column`] `None`).
//!
//! `login(session, user)`: if the session holds another user (or this user under an older
//! password), it is flushed; if it holds no user, its key is cycled (data kept); then
//! `_auth_user_id` is set to the key *as a string* (`"42"`, Django's `value_to_string`),
//! `_auth_user_backend` to the backend path and `_auth_user_hash` to the hash under `SECRET_KEY`;
//! the CSRF secret is rotated (into the session under `_csrftoken` with
//! [`AuthConfig::csrf_use_sessions`], Django's `CSRF_USE_SESSIONS`, else returned for the
//! `csrftoken` cookie); `last_login` is set. `logout` flushes. `update_session_auth_hash` cycles
//! the key and stores the new hash when the session is that user's.
//!
//! **Password hashes** are checked by [`djangohashers`](https://crates.io/crates/djangohashers),
//! except Argon2: djangohashers 1.8 assumes `argon2i` and URL-safe base64, while Django (through
//! argon2-cffi) has written `argon2id` with standard base64 since 3.2, so those go to
//! `rust-argon2`'s PHC verifier, as argon2-cffi's `verify` does. Every hasher Django 5.2 ships
//! is checked against a hash Django made (`fixtures/django/auth-sessions.json`).
//!
//! Django's signals (`user_logged_in`, `user_logged_out`, `user_login_failed`) have no equivalent
//! here: the Rust side calls what it needs after these functions return.
//!
//! # Migrating: Django keeps serving /admin, Rust serves /api, one login for both
//!
//! 1. Point both at the same session store and settings: the same `SECRET_KEY` (and
//!    `SECRET_KEY_FALLBACKS`), `SESSION_ENGINE` store (e.g. `session-db` on Django's
//!    `django_session` table), `SESSION_SERIALIZER`, cookie name, domain and path. Put both behind
//!    one host, routing `/admin` (and Django's login views) to Django and `/api` to Rust.
//! 2. Give Rust read access to the user table: [`SqlUserSource::connect`] with the site's database
//!    URL and [`UserModel::django`] (or [`UserModel::custom`] for an `AUTH_USER_MODEL`).
//! 3. In the Rust app, add the session layer and an [`Auth`] extension, and take
//!    [`AuthUser`](extract::AuthUser) in handlers that need a user. Whoever logged in on
//!    Django's `/accounts/login/` or `/admin/login/` is that user in Rust; changing the password
//!    in Django, deactivating the user or logging out there takes effect in Rust on the next
//!    request.
//! 4. When the Rust side grows its own login page, use [`Auth::authenticate`] and [`Auth::login`]:
//!    Django sees such a user as `request.user`, and Rust's [`Auth::logout`] logs them out of
//!    Django too (it is the same session). Set [`AuthConfig::csrf_use_sessions`] to match Django's
//!    `CSRF_USE_SESSIONS`.
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use axum::{Extension, Router, routing::get};
//! use session_auth::{Auth, AuthConfig, SqlUserSource, UserModel, extract::AuthUser};
//! use session_core::SessionConfig;
//! use session_db::PgStore;
//! use session_middleware::SessionLayer;
//!
//! let database = "postgres://app@127.0.0.1/site";
//! let sessions = SessionConfig::new(std::env::var("SECRET_KEY")?);
//! let store = Arc::new(PgStore::connect(database, &sessions).await?);
//! let users = SqlUserSource::connect(database, &UserModel::django()).await?;
//! let auth = Auth::new(Arc::new(users), &AuthConfig::default())?;
//!
//! async fn me(AuthUser(me): AuthUser) -> String {
//!     format!("user {}", me.user.id)
//! }
//! let api = Router::new()
//!     .route("/api/me", get(me))
//!     .layer(Extension(auth))
//!     .layer(SessionLayer::new(store, &sessions)?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8001").await?;
//! axum::serve(listener, api).await?;
//! # Ok(()) }
//! ```

mod auth;
mod config;
mod error;
pub mod everywhere;
mod hash;
mod memory;
pub mod password;
mod sql;
mod user;

#[cfg(feature = "axum")]
pub mod extract;

pub use auth::{
    Anonymous, Auth, AuthenticatedUser, BACKEND_SESSION_KEY, CSRF_SECRET_LENGTH, CSRF_SESSION_KEY,
    HASH_SESSION_KEY, Login, SESSION_KEY, SessionUser,
};
pub use config::{
    ALLOW_ALL_USERS_MODEL_BACKEND, AuthBackend, AuthConfig, MODEL_BACKEND, Unauthenticated,
};
pub use error::AuthError;
pub use hash::{HashMatch, SESSION_AUTH_HASH_SALT, session_auth_hash, verify_session_auth_hash};
pub use memory::MemoryUserSource;
pub use sql::{SqlUserSource, UserModel, UserPool};
pub use user::{KeyKind, User, UserSource};
