//! Opening the store `--engine` names, with the site's settings.

use session_cache::{Cache, CacheStore, KeyFunction, RedisCache};
use session_core::SessionConfig;
use session_db::{AnyDbStore, DbError};
use session_file::FileStore;
use time::OffsetDateTime;

use crate::Error;
use crate::args::{Engine, KeyArgs, StoreArgs};

/// What `--database-url` is called in messages (the URL itself is never printed: it may hold a
/// password).
const DATABASE: &str = "the database (--database-url / DATABASE_URL)";
/// What `--cache-url` is called in messages.
const CACHE: &str = "the cache (--cache-url / REDIS_URL)";
/// What `--file-path` is called in messages.
const FILES: &str = "the session directory (--file-path)";

/// The session settings for `store` and `keys`: the secret keys, serializer, cookie name and age.
///
/// # Errors
/// [`Error::MissingSecret`] without a secret key, [`Error::Config`] for unusable settings.
pub(crate) fn config(store: &StoreArgs, keys: &KeyArgs) -> Result<SessionConfig, Error> {
    // The cache engine's --serializer names the cache values' format, chosen on the store.
    let serializer = match store.engine {
        Engine::Cache => None,
        _ => store.serializer,
    };
    let mut config = keys.config(serializer)?;
    if let Some(name) = &store.cookie_name {
        config.cookie_name.clone_from(name);
    }
    if let Some(age) = store.cookie_age {
        config.cookie_age = age;
    }
    config.validate().map_err(Error::Config)?;
    Ok(config)
}

/// The database store on whichever database `--database-url` names (session-db's
/// [`AnyDbStore`], the one way to open a store from a URL), on `--table`, comparing expiry dates
/// with `now`; checks the table exists with Django's columns.
pub(crate) async fn open_db(
    args: &StoreArgs,
    config: &SessionConfig,
    now: OffsetDateTime,
) -> Result<AnyDbStore, Error> {
    connect(database_url(args)?, args, config, now).await
}

/// [`open_db`] for reading only (`show`, `whoami`, `list`): a SQLite file is opened `mode=ro`
/// unless the URL chooses a mode ([`read_only_url`]).
pub(crate) async fn open_db_read_only(
    args: &StoreArgs,
    config: &SessionConfig,
    now: OffsetDateTime,
) -> Result<AnyDbStore, Error> {
    let url = read_only_url(database_url(args)?);
    connect(&url, args, config, now).await
}

/// The pool under `db`, for session-auth's queries beyond the store's.
pub(crate) fn user_pool(db: &AnyDbStore) -> session_auth::UserPool {
    match db {
        AnyDbStore::Postgres(store) => store.pool().clone().into(),
        AnyDbStore::MySql(store) => store.pool().clone().into(),
        AnyDbStore::Sqlite(store) => store.pool().clone().into(),
    }
}

fn database_url(args: &StoreArgs) -> Result<&str, Error> {
    args.database_url
        .as_deref()
        .ok_or(Error::MissingDatabaseUrl {
            engine: args.engine.name(),
        })
}

/// `url`, opened read-only if it is a SQLite file whose URL chooses no mode: inspecting a Django
/// site's database must change nothing in it (not even its journal mode, which the stores would
/// otherwise switch to WAL).
pub(crate) fn read_only_url(url: &str) -> std::borrow::Cow<'_, str> {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let chooses_mode = query.split('&').any(|pair| pair.starts_with("mode="));
    if url.starts_with("sqlite:") && !url.contains(":memory:") && !chooses_mode {
        let separator = if url.contains('?') { '&' } else { '?' };
        return format!("{url}{separator}mode=ro").into();
    }
    url.into()
}

async fn connect(
    url: &str,
    args: &StoreArgs,
    config: &SessionConfig,
    now: OffsetDateTime,
) -> Result<AnyDbStore, Error> {
    let opened = |source: DbError| match source {
        DbError::UnsupportedUrl { .. } => Error::UnsupportedDatabaseUrl,
        source => Error::Open {
            what: DATABASE,
            source: source.into(),
        },
    };
    // The store reports the driver's own error (refused, bad password, no such file) at once,
    // and a silent server within its connect timeout.
    let store = AnyDbStore::connect(url, config)
        .await
        .map_err(opened)?
        .with_table(&args.table)
        .map_err(opened)?
        .with_clock(move || now);
    store.check_schema().await.map_err(opened)?;
    Ok(store)
}

/// The file store in `--file-path`, able to remove files (for `clearsessions`).
pub(crate) async fn open_file(
    args: &StoreArgs,
    config: &SessionConfig,
) -> Result<FileStore, Error> {
    build_file(args, config, false).await
}

/// The file store in `--file-path`, read-only (for `show`): inspecting must leave the directory
/// exactly as it was, and work on a directory this user cannot write to. A writable store
/// probes the directory with scratch files when it opens.
pub(crate) async fn open_file_read_only(
    args: &StoreArgs,
    config: &SessionConfig,
) -> Result<FileStore, Error> {
    build_file(args, config, true).await
}

async fn build_file(
    args: &StoreArgs,
    config: &SessionConfig,
    read_only: bool,
) -> Result<FileStore, Error> {
    let dir = args.file_path.as_ref().ok_or(Error::MissingFilePath)?;
    FileStore::builder(config)
        .directory(dir)
        .read_only(read_only)
        .build()
        .await
        .map_err(|source| Error::Open {
            what: FILES,
            source: source.into(),
        })
}

/// The signed-cookie store, judging cookie ages at `now`.
pub(crate) fn open_cookie(
    config: &SessionConfig,
    now: OffsetDateTime,
) -> Result<session_cookie::CookieStore, Error> {
    let now = std::time::SystemTime::from(now);
    Ok(session_cookie::CookieStore::new(config)
        .map_err(Error::Config)?
        .with_clock(move || now))
}

/// The cache store on `--cache-url`, with the site's `KEY_PREFIX` and `VERSION`.
pub(crate) async fn open_cache(
    args: &StoreArgs,
    config: &SessionConfig,
) -> Result<CacheStore, Error> {
    open_redis_cache(args, config).await.map(|(_, store)| store)
}

/// [`open_cache`], with the Redis connection under it (for session-auth's per-user sets).
pub(crate) async fn open_redis_cache(
    args: &StoreArgs,
    config: &SessionConfig,
) -> Result<(RedisCache, CacheStore), Error> {
    let url = args.cache_url.as_deref().ok_or(Error::MissingCacheUrl)?;
    let opened = |source| Error::Open {
        what: CACHE,
        source,
    };
    let redis = RedisCache::connect(url)
        .await
        .map_err(|e| opened(e.into()))?;
    let keys = KeyFunction::default()
        .with_key_prefix(args.cache_key_prefix.as_str())
        .with_version(args.cache_version);
    let store = CacheStore::new(Cache::new(redis.clone()).with_key_function(keys), config)
        .map_err(|e| opened(e.into()))?;
    let store = match args.serializer {
        Some(serializer) => store.with_cache_serializer(serializer.into()),
        None => store,
    };
    Ok((redis, store))
}
