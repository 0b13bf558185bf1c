//! `sessions whoami`.

use std::sync::Arc;
use std::time::SystemTime;

use session_auth::{
    ALLOW_ALL_USERS_MODEL_BACKEND, Anonymous, Auth, AuthBackend, AuthConfig, AuthError, KeyKind,
    SessionUser, SqlUserSource, UserModel,
};
use session_core::serializer::json;
use session_core::value::Value;
use session_core::{Session, SessionKey, SessionStore};
use time::OffsetDateTime;

use crate::Error;
use crate::args::{Engine, UserArgs, UserKeyKind, WhoamiArgs};
use crate::store;

/// What `--user-database-url` is called in messages.
const USERS: &str = "the user database (--user-database-url / USER_DATABASE_URL)";

/// Who is logged in to the session `args` name, verified as Django's `get_user` verifies it,
/// changing nothing: `{"user_id": "...", "backend": "...", "verified": true}`.
///
/// # Errors
/// Exit-2 errors for unusable options or stores that cannot be opened; [`Error::NotLoggedIn`]
/// (exit 1) when there is no user, the hash does not match, or the user is inactive or gone;
/// [`Error::Auth`] (exit 1) when the session's user id is malformed or the user table fails.
pub async fn whoami(args: &WhoamiArgs, now: SystemTime) -> Result<String, Error> {
    let key = SessionKey::new(args.session_key.as_str()).map_err(|_| Error::InvalidSessionKey)?;
    let config = store::config(&args.store, &args.keys)?;
    let now = OffsetDateTime::from(now);
    let store: Arc<dyn SessionStore> = match args.store.engine {
        // cached-db sessions are read from the database, the source of truth.
        Engine::Db | Engine::CachedDb => {
            Arc::new(store::open_db_read_only(&args.store, &config, now).await?)
        }
        Engine::File => Arc::new(store::open_file_read_only(&args.store, &config).await?),
        Engine::Cache => Arc::new(store::open_cache(&args.store, &config).await?),
        Engine::Cookie => Arc::new(store::open_cookie(&config, now)?),
    };
    let auth = open_auth(&args.users).await?;
    let session = Session::new(store, Arc::new(config), Some(key.as_str()));
    match auth.inspect(&session).await.map_err(auth_error)? {
        SessionUser::Authenticated(found) => Ok(format!(
            "{{\"user_id\": {}, \"backend\": {}, \"verified\": true}}",
            json_string(&found.user.id)?,
            json_string(&found.backend)?
        )),
        SessionUser::Anonymous(Anonymous::NoUser) => Err(Error::NotLoggedIn(format!(
            "no user: no user is logged in to session {} (or no live session is stored under it)",
            key.redacted()
        ))),
        SessionUser::Anonymous(reason) => Err(Error::NotLoggedIn(reason.to_string())),
    }
}

fn json_string(text: &str) -> Result<String, Error> {
    json::to_string(&Value::from(text))
        .map_err(|error| Error::decode(session_core::Error::Serializer(error)))
}

fn auth_error(error: AuthError) -> Error {
    match error {
        AuthError::Session(source) => Error::Store(source),
        other => Error::Auth(other),
    }
}

async fn open_auth(args: &UserArgs) -> Result<Auth, Error> {
    let url = args
        .user_database_url
        .as_deref()
        .ok_or(Error::MissingUserDatabaseUrl)?;
    let model = UserModel::custom(&args.user_table, &args.user_key_column)
        .with_key_kind(match args.user_key_kind {
            UserKeyKind::Integer => KeyKind::Integer,
            UserKeyKind::Text => KeyKind::Text,
        })
        .with_password_column(&args.user_password_column)
        .with_is_active_column((!args.no_is_active).then_some(args.user_is_active_column.as_str()))
        .with_username_column(None)
        .with_last_login_column(None);
    let opened = |error: AuthError| Error::Open {
        what: USERS,
        source: session_core::Error::store(error),
    };
    // Read-only, as `show` opens the session database.
    let users = SqlUserSource::connect(&store::read_only_url(url), &model)
        .await
        .map_err(opened)?;
    let config = AuthConfig {
        backends: args
            .auth_backends
            .iter()
            .map(|path| AuthBackend {
                path: path.clone(),
                allow_inactive: path == ALLOW_ALL_USERS_MODEL_BACKEND,
            })
            .collect(),
        ..AuthConfig::default()
    };
    Auth::new(Arc::new(users), &config).map_err(opened)
}
