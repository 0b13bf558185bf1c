//! Opening the store the command line asks for.

use std::path::Path;
use std::sync::Arc;

use session_cache::{Cache, CacheStore, MemoryCache, RedisCache};
use session_cached_db::CachedDbStore;
use session_cookie::CookieStore;
use session_core::{MemoryStore, SessionConfig, SessionStore};
use session_db::AnyDbStore;
use session_file::FileStore;

use crate::DemoError;
use crate::options::{
    DEFAULT_FILE_PATH, DEFAULT_REDIS_URL, DEFAULT_SQLITE_URL, Options, StoreKind,
};

/// A store, ready to serve, with a description for the pages (never holding a password).
#[derive(Debug, Clone)]
pub struct OpenedStore {
    /// The store.
    pub store: Arc<dyn SessionStore>,
    /// What it is, for people: "SQLite database sqlite://session-demo.sqlite3?mode=rwc".
    pub description: String,
}

impl OpenedStore {
    /// A store with a description.
    pub fn new(store: Arc<dyn SessionStore>, description: impl Into<String>) -> Self {
        OpenedStore {
            store,
            description: description.into(),
        }
    }

    /// A fresh in-process [`MemoryStore`].
    pub fn memory() -> Self {
        Self::new(
            Arc::new(MemoryStore::new()),
            "in-process memory (lost on restart)",
        )
    }
}

/// Opens (and for databases, creates the table of) the store `options` select, signing with
/// `config`'s secret.
///
/// # Errors
/// [`DemoError::MissingUrl`] / [`DemoError::WrongUrl`] for unusable options,
/// [`DemoError::Store`] when the store cannot be reached or created.
pub async fn open(options: &Options, config: &SessionConfig) -> Result<OpenedStore, DemoError> {
    let name = store_name(options.store);
    let failed = |source: session_core::Error| DemoError::Store {
        store: name,
        source,
    };
    match options.store {
        StoreKind::Memory => Ok(OpenedStore::memory()),
        StoreKind::Sqlite => {
            let url = sqlite_url(options)?;
            let store = open_db(url, config).await.map_err(failed)?;
            Ok(OpenedStore::new(
                Arc::new(store),
                format!("SQLite database {url}"),
            ))
        }
        StoreKind::Postgres => {
            let url = options
                .database_url
                .as_deref()
                .ok_or(DemoError::MissingUrl {
                    store: name,
                    what: "DATABASE_URL or --database-url (postgres://user:password@host:5432/db)",
                })?;
            if !is_postgres(url) {
                return Err(DemoError::WrongUrl {
                    store: name,
                    expected: "postgres://",
                });
            }
            let store = open_db(url, config).await.map_err(failed)?;
            // The URL is not shown: it may hold a password.
            Ok(OpenedStore::new(
                Arc::new(store),
                "PostgreSQL database (DATABASE_URL), table django_session",
            ))
        }
        StoreKind::CachedDb => {
            // The database: PostgreSQL when DATABASE_URL names one, else SQLite.
            let (db, db_description): (Arc<dyn SessionStore>, String) =
                match options.database_url.as_deref() {
                    Some(url) if is_postgres(url) => (
                        Arc::new(open_db(url, config).await.map_err(failed)?),
                        "PostgreSQL database (DATABASE_URL)".to_owned(),
                    ),
                    _ => {
                        let url = sqlite_url(options)?;
                        (
                            Arc::new(open_db(url, config).await.map_err(failed)?),
                            format!("SQLite database {url}"),
                        )
                    }
                };
            let (cache, cache_description) = match options.redis_url.as_deref() {
                Some(url) => (
                    Cache::new(
                        RedisCache::connect(url)
                            .await
                            .map_err(|e| failed(e.into()))?,
                    ),
                    "Redis (REDIS_URL)",
                ),
                None => (Cache::new(MemoryCache::new()), "an in-process cache"),
            };
            let store = CachedDbStore::new(cache, db, config).map_err(|e| failed(e.into()))?;
            Ok(OpenedStore::new(
                Arc::new(store),
                format!("{db_description}, cached in {cache_description} (cached_db)"),
            ))
        }
        StoreKind::File => {
            let dir = options
                .file_path
                .clone()
                .unwrap_or_else(|| DEFAULT_FILE_PATH.into());
            create_private_dir(&dir).map_err(|source| {
                failed(session_core::Error::store(format!(
                    "could not create the session directory {}: {source}",
                    dir.display()
                )))
            })?;
            let store = FileStore::new(&dir, config)
                .await
                .map_err(|e| failed(e.into()))?;
            let description = format!("one file per session in {}", store.directory().display());
            Ok(OpenedStore::new(Arc::new(store), description))
        }
        StoreKind::Cookie => {
            let store = CookieStore::new(config).map_err(failed)?;
            Ok(OpenedStore::new(
                Arc::new(store),
                "signed cookies (the session data is the cookie; nothing on the server)",
            ))
        }
        StoreKind::Redis => {
            let url = options.redis_url.as_deref().unwrap_or(DEFAULT_REDIS_URL);
            let store = CacheStore::connect(url, config)
                .await
                .map_err(|e| failed(e.into()))?;
            Ok(OpenedStore::new(Arc::new(store), "Redis (REDIS_URL)"))
        }
    }
}

/// The name of a store as `--store` spells it.
pub fn store_name(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Memory => "memory",
        StoreKind::Sqlite => "sqlite",
        StoreKind::File => "file",
        StoreKind::Cookie => "cookie",
        StoreKind::Redis => "redis",
        StoreKind::Postgres => "postgres",
        StoreKind::CachedDb => "cached-db",
    }
}

/// The SQLite URL: `DATABASE_URL` when given (it must be a SQLite one), else the file in the
/// working directory.
fn sqlite_url(options: &Options) -> Result<&str, DemoError> {
    match options.database_url.as_deref() {
        None => Ok(DEFAULT_SQLITE_URL),
        Some(url) if url.starts_with("sqlite:") => Ok(url),
        Some(_) => Err(DemoError::WrongUrl {
            store: store_name(options.store),
            expected: if options.store == StoreKind::CachedDb {
                "postgres:// or sqlite:"
            } else {
                "sqlite:"
            },
        }),
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The database store at `url` (session-db's [`AnyDbStore`], the one way to open a store from a
/// URL), its table created if missing.
///
/// # Errors
/// The store's error when the database cannot be reached or the table created.
pub async fn open_db(url: &str, config: &SessionConfig) -> Result<AnyDbStore, session_core::Error> {
    let store = AnyDbStore::connect(url, config).await?;
    store.ensure_schema().await?;
    Ok(store)
}

/// Creates `dir` (and its parents) if missing; a new directory is private to this user, since
/// whoever can write in a session directory can plant sessions.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}
