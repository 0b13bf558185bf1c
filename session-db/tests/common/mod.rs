//! Test fixtures: a fresh table per store on each database, dropped when the store is dropped.
#![allow(dead_code, clippy::unwrap_used)] // shared by several test files; test code

use std::ops::Deref;

use async_trait::async_trait;
use session_conformance::{Fixture, services};
use session_core::{
    ClearExpired, Dict, Error, LoadedRecord, SaveMode, SessionConfig, SessionKey, SessionRecord,
    SessionStore, SharedRecord, StoreCapabilities, Value, Version, VersionedRecord,
};
use session_db::{
    Backend, ColumnType, ColumnValue, DbStore, DjangoSession, ExtraColumn, SessionModel,
};

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
    MySql,
}

impl Db {
    fn variable(self) -> Option<&'static str> {
        match self {
            Db::Sqlite => None,
            Db::Postgres => Some(services::POSTGRES_URL),
            Db::MySql => Some(services::MYSQL_URL),
        }
    }
}

/// Where a test's tables live; for SQLite a temporary file, removed with this value.
#[derive(Debug)]
pub struct TestDb {
    pub kind: Db,
    pub url: String,
    dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// The database for a conformance fixture, or the skip.
    pub fn for_fixture(kind: Db) -> Result<TestDb, Fixture> {
        match kind.variable() {
            None => Ok(Self::sqlite_file()),
            Some(variable) => services::url(variable).map(|url| TestDb {
                kind,
                url,
                dir: None,
            }),
        }
    }

    /// The database for a plain test, or `None` after printing that `test` was skipped.
    pub fn or_skip(kind: Db, test: &str) -> Option<TestDb> {
        match kind.variable() {
            None => Some(Self::sqlite_file()),
            Some(variable) => services::url_or_skip(variable, test).map(|url| TestDb {
                kind,
                url,
                dir: None,
            }),
        }
    }

    /// A fresh SQLite file: several connections, so concurrency is real (locks, busy waits).
    fn sqlite_file() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("sessions.sqlite3").display()
        );
        TestDb {
            kind: Db::Sqlite,
            url,
            dir: Some(dir),
        }
    }
}

/// Drops the table when dropped (best effort; on its own thread and runtime, since `Drop` cannot
/// await and the test's runtime may be shutting down).
#[derive(Debug)]
pub struct Guard {
    db: TestDb,
    table: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.db.kind == Db::Sqlite {
            return; // the temporary directory goes with `self.db`
        }
        let (kind, url, table) = (self.db.kind, self.db.url.clone(), self.table.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move { drop_table(kind, &url, &table).await.ok() })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test table {}", self.table);
        }
    }
}

async fn drop_table(kind: Db, url: &str, table: &str) -> Result<(), sqlx::Error> {
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    use sqlx::{AssertSqlSafe, Connection, Executor};
    match kind {
        #[cfg(feature = "postgres")]
        Db::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            conn.execute(sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS \"{table}\""
            ))))
            .await?;
        }
        #[cfg(feature = "mysql")]
        Db::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(url).await?;
            conn.execute(sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS `{table}`"
            ))))
            .await?;
        }
        _ => {
            // Nothing to drop without the database's driver (SQLite files go with their directory).
            let _ = (kind, url, table);
        }
    }
    Ok(())
}

/// A store on a fresh table, which is dropped with it.
#[derive(Debug)]
pub struct TestStore<B: Backend, M: SessionModel = DjangoSession> {
    pub store: DbStore<B, M>,
    guard: Guard,
}

impl<B: Backend, M: SessionModel> TestStore<B, M> {
    pub fn db(&self) -> &TestDb {
        &self.guard.db
    }
}

impl<B: Backend, M: SessionModel> Deref for TestStore<B, M> {
    type Target = DbStore<B, M>;
    fn deref(&self) -> &DbStore<B, M> {
        &self.store
    }
}

#[async_trait]
impl<B: Backend, M: SessionModel> SessionStore for TestStore<B, M> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        self.store.load(key).await
    }
    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.store.exists(key).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.store.save(key, record, mode).await
    }
    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.store.delete(key).await
    }
    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.store.clear_expired().await
    }
    async fn load_with_expiry(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        self.store.load_with_expiry(key).await
    }
    fn capabilities(&self) -> StoreCapabilities {
        self.store.capabilities()
    }
    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        self.store.load_versioned(key).await
    }
    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, Error> {
        self.store.save_if_unchanged(key, record, expected).await
    }
}

/// A store with `model` and `config` on a fresh table (schema created) in `db`.
pub async fn store_in<B: Backend, M: SessionModel>(
    db: TestDb,
    model: M,
    config: &SessionConfig,
) -> TestStore<B, M> {
    let table = services::unique_name("djs");
    let store = DbStore::<B, M>::connect_with_model(&db.url, model, config)
        .await
        .unwrap()
        .with_table(&table)
        .unwrap();
    let guard = Guard { db, table };
    store.ensure_schema().await.unwrap();
    TestStore { store, guard }
}

/// A conformance fixture: a fresh table, or the skip when the server is not configured.
pub async fn fixture<B: Backend, M: SessionModel>(
    kind: Db,
    model: M,
    config: SessionConfig,
) -> Fixture {
    match TestDb::for_fixture(kind) {
        Ok(db) => Fixture::new(store_in::<B, M>(db, model, &config).await).with_config(config),
        Err(skip) => skip,
    }
}

/// Django's test config with `CustomDatabaseSessionTests`' cookie age.
pub fn custom_config() -> SessionConfig {
    SessionConfig {
        cookie_age: 86400,
        ..session_conformance::config()
    }
}

/// Django's `sessions_tests.models.CustomSession`: `account_id = IntegerField(null=True,
/// db_index=True)`, filled with `int(data.get("_auth_user_id"))` or NULL.
#[derive(Debug, Clone, Copy, Default)]
pub struct CustomSession;

impl SessionModel for CustomSession {
    fn extra_columns(&self) -> &[ExtraColumn] {
        const COLUMNS: &[ExtraColumn] = &[ExtraColumn::new("account_id", ColumnType::Integer)
            .nullable()
            .indexed()];
        COLUMNS
    }

    fn values(&self, data: &Dict) -> Vec<ColumnValue> {
        vec![data.get("_auth_user_id").and_then(python_int).into()]
    }
}

/// Python's `int(value)` for the values a session holds, `None` where it raises
/// `TypeError`/`ValueError` (and where the result would not fit the column).
pub fn python_int(value: &Value) -> Option<i64> {
    match value {
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Int(i) => i.as_i64(),
        Value::Float(f) if f.is_finite() => {
            let t = f.trunc();
            (t >= i64::MIN as f64 && t <= i64::MAX as f64).then_some(t as i64)
        }
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Raw SQL for checks the store's API does not offer (row counts, rows as Django wrote them).
#[async_trait]
pub trait Raw: Backend {
    /// `SELECT COUNT(*)`.
    async fn count(pool: &sqlx::Pool<Self>, table: &str) -> i64;
    /// Runs a statement; `{t}` in it is replaced by the quoted table name.
    async fn exec(pool: &sqlx::Pool<Self>, table: &str, sql: &str) -> Result<u64, sqlx::Error>;
    /// Inserts a row with `expire_date` given as the database's own text (Django's stored form).
    async fn insert_raw(pool: &sqlx::Pool<Self>, table: &str, key: &str, data: &str, expire: &str);
    /// `expire_date` as text: SQLite's stored text; `YYYY-MM-DD HH:MM:SS.ffffff` (UTC) elsewhere.
    async fn expire_text(pool: &sqlx::Pool<Self>, table: &str, key: &str) -> String;
}

macro_rules! raw_impl {
    ($db:ty, $q:literal, $insert:literal, $expire:literal) => {
        #[async_trait]
        impl Raw for $db {
            async fn count(pool: &sqlx::Pool<Self>, table: &str) -> i64 {
                use sqlx::Row as _;
                let sql = format!(concat!("SELECT COUNT(*) FROM ", $q), table);
                sqlx::query::<$db>(sqlx::AssertSqlSafe(sql))
                    .fetch_one(pool)
                    .await
                    .unwrap()
                    .get::<i64, _>(0)
            }

            async fn exec(
                pool: &sqlx::Pool<Self>,
                table: &str,
                sql: &str,
            ) -> Result<u64, sqlx::Error> {
                let sql = sql.replace("{t}", &format!($q, table));
                Ok(sqlx::query::<$db>(sqlx::AssertSqlSafe(sql))
                    .execute(pool)
                    .await?
                    .rows_affected())
            }

            async fn insert_raw(
                pool: &sqlx::Pool<Self>,
                table: &str,
                key: &str,
                data: &str,
                expire: &str,
            ) {
                let sql = format!($insert, format!($q, table));
                sqlx::query::<$db>(sqlx::AssertSqlSafe(sql))
                    .bind(key)
                    .bind(data)
                    .bind(expire)
                    .execute(pool)
                    .await
                    .unwrap();
            }

            async fn expire_text(pool: &sqlx::Pool<Self>, table: &str, key: &str) -> String {
                use sqlx::Row as _;
                let sql = format!($expire, format!($q, table));
                sqlx::query::<$db>(sqlx::AssertSqlSafe(sql))
                    .bind(key)
                    .fetch_one(pool)
                    .await
                    .unwrap()
                    .get::<String, _>(0)
            }
        }
    };
}

raw_impl!(
    sqlx::Sqlite,
    "\"{}\"",
    "INSERT INTO {} (session_key, session_data, expire_date) VALUES (?, ?, ?)",
    "SELECT expire_date FROM {} WHERE session_key = ?"
);

#[cfg(feature = "postgres")]
raw_impl!(
    sqlx::Postgres,
    "\"{}\"",
    "INSERT INTO {} (session_key, session_data, expire_date) VALUES ($1, $2, CAST($3 AS timestamptz))",
    "SELECT to_char(expire_date AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM {} WHERE session_key = $1"
);

#[cfg(feature = "mysql")]
raw_impl!(
    sqlx::MySql,
    "`{}`",
    "INSERT INTO {} (session_key, session_data, expire_date) VALUES (?, ?, CAST(? AS DATETIME(6)))",
    "SELECT CAST(expire_date AS CHAR) FROM {} WHERE session_key = ?"
);
