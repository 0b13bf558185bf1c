//! [`AnyDbStore`]: the database store on whichever database a URL names.

use async_trait::async_trait;
use session_core::{
    ClearExpired, Dict, Error, KeyKind, LoadedRecord, SaveMode, SessionCodec, SessionConfig,
    SessionKey, SessionRecord, SessionStore, SharedRecord, StoreCapabilities, Version,
    VersionedRecord,
};
use time::OffsetDateTime;

use crate::store::{SchemaStatus, SessionRow};
use crate::{DbError, DbStore};

/// The database store on whichever database a URL names: the one way every tool of this
/// workspace (the `sessions` CLI, the demo, the soak) opens a store from a `DATABASE_URL`.
///
/// | URL scheme | database | feature |
/// |---|---|---|
/// | `postgres:` / `postgresql:` | PostgreSQL | `postgres` |
/// | `mysql:` / `mariadb:` | MySQL or MariaDB | `mysql` |
/// | `sqlite:` | SQLite | `sqlite` (default) |
///
/// It is a [`SessionStore`] and offers the inherent operations of [`DbStore`] that do not
/// depend on the database (rows, schema, clearing). When the database is known at compile time,
/// [`PgStore`](crate::PgStore), [`MySqlStore`](crate::MySqlStore) or
/// [`SqliteStore`](crate::SqliteStore) is one match arm cheaper per call.
///
/// ```
/// use session_core::SessionConfig;
/// use session_db::AnyDbStore;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let config = SessionConfig::new("the Django site's SECRET_KEY");
/// let store = AnyDbStore::connect("sqlite::memory:", &config).await?;
/// store.ensure_schema().await?;
/// assert_eq!(store.database(), "SQLite");
/// # Ok::<(), session_db::DbError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub enum AnyDbStore {
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(crate::PgStore),
    /// MySQL or MariaDB.
    #[cfg(feature = "mysql")]
    MySql(crate::MySqlStore),
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(crate::SqliteStore),
}

/// Runs `$body` with `$store` bound to the inner store, whatever the database.
macro_rules! each {
    ($self:expr, $store:ident => $body:expr) => {
        match $self {
            #[cfg(feature = "postgres")]
            AnyDbStore::Postgres($store) => $body,
            #[cfg(feature = "mysql")]
            AnyDbStore::MySql($store) => $body,
            #[cfg(feature = "sqlite")]
            AnyDbStore::Sqlite($store) => $body,
        }
    };
}

/// The databases compiled in, for the message of an unsupported URL.
const COMPILED: &[&str] = &[
    #[cfg(feature = "postgres")]
    "postgres://",
    #[cfg(feature = "mysql")]
    "mysql://",
    #[cfg(feature = "sqlite")]
    "sqlite:",
];

impl AnyDbStore {
    /// Connects to the database `url` names, as [`DbStore::connect`] does.
    ///
    /// # Errors
    /// [`DbError::UnsupportedUrl`] when the scheme names no database compiled in (the message
    /// lists those that are, never the URL, which may hold a password); otherwise as
    /// [`DbStore::connect`].
    pub async fn connect(url: &str, config: &SessionConfig) -> Result<Self, DbError> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme.to_ascii_lowercase().as_str() {
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => {
                Ok(AnyDbStore::Postgres(DbStore::connect(url, config).await?))
            }
            #[cfg(feature = "mysql")]
            "mysql" | "mariadb" => Ok(AnyDbStore::MySql(
                DbStore::connect(&mariadb_as_mysql(url), config).await?,
            )),
            #[cfg(feature = "sqlite")]
            "sqlite" => Ok(AnyDbStore::Sqlite(DbStore::connect(url, config).await?)),
            _ => Err(DbError::UnsupportedUrl {
                scheme: scheme.chars().take(20).collect(),
                compiled: COMPILED.join(", "),
            }),
        }
    }

    /// The database's name: `PostgreSQL`, `MySQL/MariaDB` or `SQLite`.
    pub fn database(&self) -> &'static str {
        match self {
            #[cfg(feature = "postgres")]
            AnyDbStore::Postgres(_) => "PostgreSQL",
            #[cfg(feature = "mysql")]
            AnyDbStore::MySql(_) => "MySQL/MariaDB",
            #[cfg(feature = "sqlite")]
            AnyDbStore::Sqlite(_) => "SQLite",
        }
    }

    /// [`DbStore::with_table`].
    ///
    /// # Errors
    /// [`DbError::InvalidTableName`].
    pub fn with_table(self, table: &str) -> Result<Self, DbError> {
        Ok(match self {
            #[cfg(feature = "postgres")]
            AnyDbStore::Postgres(store) => AnyDbStore::Postgres(store.with_table(table)?),
            #[cfg(feature = "mysql")]
            AnyDbStore::MySql(store) => AnyDbStore::MySql(store.with_table(table)?),
            #[cfg(feature = "sqlite")]
            AnyDbStore::Sqlite(store) => AnyDbStore::Sqlite(store.with_table(table)?),
        })
    }

    /// [`DbStore::with_clock`].
    pub fn with_clock(self, clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        match self {
            #[cfg(feature = "postgres")]
            AnyDbStore::Postgres(store) => AnyDbStore::Postgres(store.with_clock(clock)),
            #[cfg(feature = "mysql")]
            AnyDbStore::MySql(store) => AnyDbStore::MySql(store.with_clock(clock)),
            #[cfg(feature = "sqlite")]
            AnyDbStore::Sqlite(store) => AnyDbStore::Sqlite(store.with_clock(clock)),
        }
    }

    /// [`DbStore::table`].
    pub fn table(&self) -> &str {
        each!(self, store => store.table())
    }

    /// [`DbStore::codec`].
    pub fn codec(&self) -> &SessionCodec {
        each!(self, store => store.codec())
    }

    /// [`DbStore::ensure_schema`].
    ///
    /// # Errors
    /// As [`DbStore::ensure_schema`].
    pub async fn ensure_schema(&self) -> Result<SchemaStatus, DbError> {
        each!(self, store => store.ensure_schema().await)
    }

    /// [`DbStore::check_schema`].
    ///
    /// # Errors
    /// As [`DbStore::check_schema`].
    pub async fn check_schema(&self) -> Result<(), DbError> {
        each!(self, store => store.check_schema().await)
    }

    /// [`DbStore::row`].
    ///
    /// # Errors
    /// As [`DbStore::row`].
    pub async fn row(&self, key: &str) -> Result<Option<SessionRow>, DbError> {
        each!(self, store => store.row(key).await)
    }

    /// [`DbStore::clear_expired_rows`].
    ///
    /// # Errors
    /// As [`DbStore::clear_expired_rows`].
    pub async fn clear_expired_rows(&self) -> Result<u64, DbError> {
        each!(self, store => store.clear_expired_rows().await)
    }

    /// [`DbStore::clear_expired_rows_with_progress`].
    ///
    /// # Errors
    /// As [`DbStore::clear_expired_rows`].
    pub async fn clear_expired_rows_with_progress(
        &self,
        progress: impl FnMut(u64) + Send,
    ) -> Result<u64, DbError> {
        each!(self, store => store.clear_expired_rows_with_progress(progress).await)
    }

    /// [`DbStore::with_clear_batch_size`].
    ///
    /// # Errors
    /// As [`DbStore::with_clear_batch_size`].
    pub fn with_clear_batch_size(self, rows: u64) -> Result<Self, DbError> {
        Ok(match self {
            #[cfg(feature = "postgres")]
            AnyDbStore::Postgres(store) => AnyDbStore::Postgres(store.with_clear_batch_size(rows)?),
            #[cfg(feature = "mysql")]
            AnyDbStore::MySql(store) => AnyDbStore::MySql(store.with_clear_batch_size(rows)?),
            #[cfg(feature = "sqlite")]
            AnyDbStore::Sqlite(store) => AnyDbStore::Sqlite(store.with_clear_batch_size(rows)?),
        })
    }

    /// [`DbStore::clear_batch_size`].
    pub fn clear_batch_size(&self) -> u64 {
        each!(self, store => store.clear_batch_size())
    }

    /// [`DbStore::with_clear_pause`].
    pub fn with_clear_pause(self, pause: std::time::Duration) -> Self {
        match self {
            #[cfg(feature = "postgres")]
            AnyDbStore::Postgres(store) => AnyDbStore::Postgres(store.with_clear_pause(pause)),
            #[cfg(feature = "mysql")]
            AnyDbStore::MySql(store) => AnyDbStore::MySql(store.with_clear_pause(pause)),
            #[cfg(feature = "sqlite")]
            AnyDbStore::Sqlite(store) => AnyDbStore::Sqlite(store.with_clear_pause(pause)),
        }
    }

    /// [`DbStore::clear_pause`].
    pub fn clear_pause(&self) -> std::time::Duration {
        each!(self, store => store.clear_pause())
    }
}

/// sqlx knows MariaDB as `mysql:`; accept Django's and SQLAlchemy's `mariadb:` spelling too.
#[cfg(feature = "mysql")]
fn mariadb_as_mysql(url: &str) -> std::borrow::Cow<'_, str> {
    match url.split_once(':') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("mariadb") => {
            format!("mysql:{rest}").into()
        }
        _ => url.into(),
    }
}

#[async_trait]
impl SessionStore for AnyDbStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        each!(self, store => store.load(key).await)
    }

    async fn load_with_expiry(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        each!(self, store => store.load_with_expiry(key).await)
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        each!(self, store => store.exists(key).await)
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        each!(self, store => store.save(key, record, mode).await)
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        each!(self, store => store.delete(key).await)
    }

    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        each!(self, store => store.clear_expired().await)
    }

    fn key_kind(&self) -> KeyKind {
        each!(self, store => store.key_kind())
    }

    fn capabilities(&self) -> StoreCapabilities {
        each!(self, store => store.capabilities())
    }

    fn kind(&self) -> &'static str {
        each!(self, store => store.kind())
    }

    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        each!(self, store => store.load_versioned(key).await)
    }

    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, Error> {
        each!(self, store => store.save_if_unchanged(key, record, expected).await)
    }

    async fn is_unchanged(&self, key: &SessionKey, expected: &Version) -> Result<bool, Error> {
        each!(self, store => store.is_unchanged(key, expected).await)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn an_unknown_scheme_is_refused_naming_the_databases_compiled_in() {
        let config = SessionConfig::new("k");
        let error = AnyDbStore::connect("oracle://scott:tiger@db/orcl", &config)
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, DbError::UnsupportedUrl { .. }), "{error:?}");
        assert!(message.contains("oracle"), "{message}");
        assert!(!message.contains("tiger"), "the password leaked: {message}");
        for compiled in COMPILED {
            assert!(message.contains(compiled), "{message}");
        }
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_sqlite_url_opens_a_working_sqlite_store() {
        let config = SessionConfig::new("k");
        let store = AnyDbStore::connect("sqlite::memory:", &config)
            .await
            .unwrap();
        assert_eq!(store.database(), "SQLite");
        store.ensure_schema().await.unwrap();
        let store = std::sync::Arc::new(store);
        let session = session_core::Session::new(store.clone(), config.into(), None);
        session.insert("n", &1).await.unwrap();
        session.save().await.unwrap();
        let key = session.key().unwrap();
        assert!(store.row(key.as_str()).await.unwrap().is_some());
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn compare_and_swap_is_forwarded_to_the_database_store() {
        use session_core::ConcurrencyPolicy;
        let config = SessionConfig::new("k");
        let store = AnyDbStore::connect("sqlite::memory:", &config)
            .await
            .unwrap();
        store.ensure_schema().await.unwrap();
        assert!(store.capabilities().compare_and_swap);
        let store = std::sync::Arc::new(store);
        let under = |policy| {
            std::sync::Arc::new(SessionConfig {
                concurrency: policy,
                ..config.clone()
            })
        };
        let first =
            session_core::Session::new(store.clone(), under(ConcurrencyPolicy::Reject), None);
        first.insert("n", &1).await.unwrap();
        first.save().await.unwrap();
        let key = first.key().unwrap();

        let a = session_core::Session::new(
            store.clone(),
            under(ConcurrencyPolicy::Reject),
            Some(key.as_str()),
        );
        let b = session_core::Session::new(
            store.clone(),
            under(ConcurrencyPolicy::Reject),
            Some(key.as_str()),
        );
        a.insert("a", &1).await.unwrap();
        b.insert("b", &1).await.unwrap();
        a.save().await.unwrap();
        assert!(matches!(b.save().await, Err(Error::Conflict)));
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn mariadb_urls_are_read_as_mysql_urls() {
        assert_eq!(
            mariadb_as_mysql("mariadb://root@127.0.0.1:3306/test"),
            "mysql://root@127.0.0.1:3306/test"
        );
        assert_eq!(mariadb_as_mysql("mysql://x"), "mysql://x");
    }
}
