//! Opening each store on fresh, private space (a temporary directory, a new table, a new key
//! prefix), and removing it afterwards.

use std::sync::Arc;
use std::time::Duration;

use session_cache::{Cache, CacheStore, MemcachedCache, MemoryCache, RedisCache};
use session_cached_db::CachedDbStore;
use session_conformance::services;
use session_core::{MemoryStore, SessionConfig, SessionStore};
use session_db::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use session_db::sqlx::{AssertSqlSafe, raw_sql};
use session_db::{MySqlStore, PgStore, SqliteStore};
use session_file::FileStore;
use tempfile::TempDir;

use crate::SoakError;

/// The stores a soak can run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// `session_core::MemoryStore`.
    Memory,
    /// `session-cache` over its bounded in-process cache (moka; also accepted as `moka`).
    #[value(alias = "moka")]
    CacheMemory,
    /// `session-db` on a SQLite file in a temporary directory (WAL, `synchronous=NORMAL`; see
    /// [`StoreOptions::sqlite_url_defaults`]).
    Sqlite,
    /// `session-db` on PostgreSQL (`SESSION_TEST_POSTGRES_URL`).
    Postgres,
    /// `session-db` on MySQL/MariaDB (`SESSION_TEST_MYSQL_URL`; also accepted as `mariadb`).
    #[value(alias = "mariadb")]
    Mysql,
    /// `session-cache` over Redis (`SESSION_TEST_REDIS_URL`).
    Redis,
    /// `session-cache` over a Redis Cluster with replicas (`SESSION_TEST_REDIS_CLUSTER_URLS`),
    /// every write waiting for its master's replica (`WAIT 1`), so that a failover loses nothing
    /// acknowledged.
    RedisCluster,
    /// `session-file` in a temporary directory.
    File,
    /// `session-cached-db`: a Redis cache (`SESSION_TEST_REDIS_URL`) in front of PostgreSQL
    /// (`SESSION_TEST_POSTGRES_URL`), as in production.
    CachedDb,
    /// `session-cached-db`: the in-process cache in front of SQLite (no server needed).
    CachedDbLocal,
    /// `session-cache` over memcached (`SESSION_TEST_MEMCACHED_URLS`: one server or several,
    /// keys placed as Django's `PyMemcacheCache` places them).
    Memcached,
}

impl StoreKind {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::CacheMemory => "cache-memory",
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
            StoreKind::Mysql => "mysql",
            StoreKind::Redis => "redis",
            StoreKind::RedisCluster => "redis-cluster",
            StoreKind::File => "file",
            StoreKind::CachedDb => "cached-db",
            StoreKind::CachedDbLocal => "cached-db-local",
            StoreKind::Memcached => "memcached",
        }
    }

    /// Every store that keeps sessions on the server side (all of them: the signed-cookie store
    /// is not soaked), in the order the counters scenario runs them when no store is named.
    pub const ALL: [StoreKind; 11] = [
        StoreKind::Memory,
        StoreKind::CacheMemory,
        StoreKind::Sqlite,
        StoreKind::Postgres,
        StoreKind::Mysql,
        StoreKind::Redis,
        StoreKind::RedisCluster,
        StoreKind::File,
        StoreKind::CachedDb,
        StoreKind::CachedDbLocal,
        StoreKind::Memcached,
    ];

    /// The environment variables holding the URLs of the servers the store needs.
    pub fn url_variables(self) -> &'static [&'static str] {
        match self {
            StoreKind::Postgres => &[services::POSTGRES_URL],
            StoreKind::Mysql => &[services::MYSQL_URL],
            StoreKind::Redis => &[services::REDIS_URL],
            StoreKind::RedisCluster => &[services::REDIS_CLUSTER_URLS],
            StoreKind::CachedDb => &[services::POSTGRES_URL, services::REDIS_URL],
            StoreKind::Memcached => &[MEMCACHED_URLS],
            _ => &[],
        }
    }
}

/// The environment variable holding the memcached servers (`memcache://host:port`, several
/// separated by commas), as session-cache's tests read it.
pub const MEMCACHED_URLS: &str = "SESSION_TEST_MEMCACHED_URLS";

/// How to reach a server store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The server's URL (the database's, for cached-db); `None` reads the store's environment
    /// variable.
    pub url: Option<String>,
    /// The Redis URL of cached-db's cache; `None` reads `SESSION_TEST_REDIS_URL`.
    pub cache_url: Option<String>,
    /// How long a database call waits for a pooled connection, and a Redis call for a connection
    /// or response, before failing: bounds how long calls hang while a server is down.
    pub timeout: Duration,
    /// Database pool size.
    pub max_connections: u32,
    /// Open SQLite with `DbStore::connect(url)` as the crate docs do (its URL defaults: WAL,
    /// `synchronous=NORMAL`, sqlx's pool of 10) instead of a pool of `max_connections` built here.
    pub sqlite_url_defaults: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            url: None,
            cache_url: None,
            timeout: Duration::from_secs(3),
            max_connections: 16,
            sqlite_url_defaults: false,
        }
    }
}

enum Teardown {
    Nothing,
    Directory(TempDir),
    Postgres(PgStore),
    MySql(MySqlStore),
}

/// A store opened on private space.
pub struct OpenedStore {
    /// The store.
    pub store: Arc<dyn SessionStore>,
    /// What it is and where, for reports.
    pub description: String,
    teardown: Teardown,
}

impl std::fmt::Debug for OpenedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStore")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl OpenedStore {
    /// Removes the private space (drops the table, deletes the directory).
    pub async fn close(self) -> Result<(), SoakError> {
        fn dropped<T>(
            table: &str,
            result: Result<T, session_db::sqlx::Error>,
        ) -> Result<(), SoakError> {
            result
                .map(drop)
                .map_err(|e| SoakError::Setup(format!("could not drop table {table}: {e}")))
        }
        match self.teardown {
            Teardown::Nothing => Ok(()),
            Teardown::Directory(dir) => dir
                .close()
                .map_err(|e| SoakError::Setup(format!("could not remove the directory: {e}"))),
            Teardown::Postgres(store) => {
                let sql = format!("DROP TABLE IF EXISTS \"{}\"", store.table());
                let result = raw_sql(AssertSqlSafe(sql)).execute(store.pool()).await;
                dropped(store.table(), result)
            }
            Teardown::MySql(store) => {
                let sql = format!("DROP TABLE IF EXISTS `{}`", store.table());
                let result = raw_sql(AssertSqlSafe(sql)).execute(store.pool()).await;
                dropped(store.table(), result)
            }
        }
    }
}

fn url_from(given: &Option<String>, variable: &'static str) -> Result<String, SoakError> {
    if let Some(url) = given {
        return Ok(url.clone());
    }
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Ok(url),
        _ => Err(SoakError::MissingUrl { variable }),
    }
}

async fn postgres(
    config: &SessionConfig,
    options: &StoreOptions,
) -> Result<(PgStore, String), SoakError> {
    let url = url_from(&options.url, services::POSTGRES_URL)?;
    let pool = pool_options(options)
        .connect(&url)
        .await
        .map_err(|e| SoakError::Setup(format!("could not connect to PostgreSQL: {e}")))?;
    let table = services::unique_name("soak");
    let store = PgStore::new(pool, config)?.with_table(&table)?;
    store.ensure_schema().await?;
    Ok((store, table))
}

async fn redis(url: &Option<String>, options: &StoreOptions) -> Result<(Cache, String), SoakError> {
    let url = url_from(url, services::REDIS_URL)?;
    redis_with(
        RedisCache::builder(&url)
            .connection_timeout(options.timeout)
            .response_timeout(options.timeout),
    )
    .await
}

async fn redis_cluster(
    url: &Option<String>,
    options: &StoreOptions,
) -> Result<(Cache, String), SoakError> {
    let urls = url_from(url, services::REDIS_CLUSTER_URLS)?;
    redis_with(
        RedisCache::builder(&urls)
            .cluster()
            .connection_timeout(options.timeout)
            .response_timeout(options.timeout)
            .wait_for_replicas(1, options.timeout),
    )
    .await
}

async fn redis_with(
    builder: session_cache::RedisCacheBuilder,
) -> Result<(Cache, String), SoakError> {
    let redis = builder.connect().await?;
    let prefix = services::unique_name("soak");
    Ok((Cache::new(redis).with_key_prefix(prefix.clone()), prefix))
}

async fn sqlite(
    dir: &TempDir,
    config: &SessionConfig,
    options: &StoreOptions,
) -> Result<(SqliteStore, String), SoakError> {
    let path = dir.path().join("sessions.sqlite3");
    let (store, description) = if options.sqlite_url_defaults {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        (
            SqliteStore::connect(&url, config).await?,
            "DbStore::connect(url): WAL, synchronous=NORMAL, 10 connections".to_owned(),
        )
    } else {
        let connect = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let pool = pool_options(options)
            .connect_with(connect)
            .await
            .map_err(|e| SoakError::Setup(format!("could not open SQLite: {e}")))?;
        (
            SqliteStore::new(pool, config)?,
            format!(
                "WAL, synchronous=NORMAL, {} connections",
                options.max_connections
            ),
        )
    };
    store.ensure_schema().await?;
    Ok((store, description))
}

/// Opens a store of `kind` on fresh private space.
pub async fn open(
    kind: StoreKind,
    config: &SessionConfig,
    options: &StoreOptions,
) -> Result<OpenedStore, SoakError> {
    let opened = |store: Arc<dyn SessionStore>, description: String, teardown| OpenedStore {
        store,
        description,
        teardown,
    };
    Ok(match kind {
        StoreKind::Memory => opened(
            Arc::new(MemoryStore::new()),
            "memory".to_owned(),
            Teardown::Nothing,
        ),
        StoreKind::CacheMemory => opened(
            Arc::new(CacheStore::new(Cache::new(MemoryCache::new()), config)?),
            "cache-memory (moka, 64 MiB bound)".to_owned(),
            Teardown::Nothing,
        ),
        StoreKind::Sqlite => {
            let dir = tempdir()?;
            let (store, description) = sqlite(&dir, config, options).await?;
            opened(
                Arc::new(store),
                format!("sqlite ({description})"),
                Teardown::Directory(dir),
            )
        }
        StoreKind::Postgres => {
            let (store, table) = postgres(config, options).await?;
            opened(
                Arc::new(store.clone()),
                format!("postgres (table {table})"),
                Teardown::Postgres(store),
            )
        }
        StoreKind::Mysql => {
            let url = url_from(&options.url, services::MYSQL_URL)?;
            let pool = pool_options(options)
                .connect(&url)
                .await
                .map_err(|e| SoakError::Setup(format!("could not connect to MySQL: {e}")))?;
            let table = services::unique_name("soak");
            let store = MySqlStore::new(pool, config)?.with_table(&table)?;
            store.ensure_schema().await?;
            opened(
                Arc::new(store.clone()),
                format!("mysql (table {table})"),
                Teardown::MySql(store),
            )
        }
        StoreKind::Redis => {
            let (cache, prefix) = redis(&options.url, options).await?;
            opened(
                Arc::new(CacheStore::new(cache, config)?),
                format!("redis (key prefix {prefix})"),
                Teardown::Nothing,
            )
        }
        StoreKind::RedisCluster => {
            let (cache, prefix) = redis_cluster(&options.url, options).await?;
            opened(
                Arc::new(CacheStore::new(cache, config)?),
                format!("redis-cluster (WAIT 1, key prefix {prefix})"),
                Teardown::Nothing,
            )
        }
        StoreKind::File => {
            let dir = tempdir()?;
            let store = FileStore::new(dir.path(), config).await?;
            let description = format!(
                "file ({}, {:?})",
                dir.path().display(),
                store.write_strategy()
            );
            opened(Arc::new(store), description, Teardown::Directory(dir))
        }
        StoreKind::CachedDb => {
            let (db, table) = postgres(config, options).await?;
            let (cache, prefix) = redis(&options.cache_url, options).await?;
            opened(
                Arc::new(CachedDbStore::new(cache, db.clone(), config)?),
                format!("cached-db (redis key prefix {prefix} over postgres table {table})"),
                Teardown::Postgres(db),
            )
        }
        StoreKind::Memcached => {
            let urls = url_from(&options.url, MEMCACHED_URLS)?;
            let memcached = MemcachedCache::builder(&urls)
                .connection_timeout(options.timeout)
                .response_timeout(options.timeout)
                .connect()
                .await?;
            let prefix = services::unique_name("soak");
            let cache = Cache::new(memcached).with_key_prefix(prefix.clone());
            opened(
                Arc::new(CacheStore::new(cache, config)?),
                format!("memcached (key prefix {prefix})"),
                Teardown::Nothing,
            )
        }
        StoreKind::CachedDbLocal => {
            let dir = tempdir()?;
            let (db, description) = sqlite(&dir, config, options).await?;
            let cache = Cache::new(MemoryCache::new());
            opened(
                Arc::new(CachedDbStore::new(cache, db, config)?),
                format!("cached-db-local (moka over sqlite, {description})"),
                Teardown::Directory(dir),
            )
        }
    })
}

fn pool_options<B: session_db::sqlx::Database>(
    options: &StoreOptions,
) -> session_db::sqlx::pool::PoolOptions<B> {
    session_db::sqlx::pool::PoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.timeout)
}

fn tempdir() -> Result<TempDir, SoakError> {
    tempfile::Builder::new()
        .prefix("djsession-soak-")
        .tempdir()
        .map_err(|e| SoakError::Setup(format!("could not create a temporary directory: {e}")))
}
