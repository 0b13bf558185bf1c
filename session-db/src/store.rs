//! The store: Django's `db.SessionStore` over a sqlx pool.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use session_core::{
    ClearExpired, Dict, Error, LoadedRecord, SaveMode, SessionCodec, SessionConfig, SessionKey,
    SessionRecord, SessionStore, SharedRecord, StoreCapabilities, Version, VersionedRecord,
};
use sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _, Pool, SqlSafeStr, SqlStr};
use time::OffsetDateTime;

use crate::backend::{Backend, ErrorClass, Param, RawRow};
use crate::connections::Connections;
use crate::error::DbError;
use crate::model::{ColumnValue, DjangoSession, ExtraColumn, SessionModel};
use crate::schema::{self, DEFAULT_TABLE, DJANGO_COLUMNS, Dialect, MAX_KEY_CHARS};
use crate::timestamp;

/// How long [`DbStore::connect`] waits for the database to accept a connection (TCP, TLS,
/// authentication; opening the file for SQLite) before it gives up: 5 seconds.
///
/// A handshake with a reachable server takes milliseconds; waiting longer mostly delays the report
/// that the host is unreachable or silent. [`DbStore::connect_pool`] takes another value.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The error for a database that did not complete the handshake within `timeout`: an I/O
/// timeout, as the driver reports one on an established connection.
fn no_answer(timeout: Duration) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer within {timeout:?}"),
    ))
}

/// The clock the store compares `expire_date` with.
type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// What [`DbStore::ensure_schema`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaStatus {
    /// The table was missing and has been created, with Django's DDL.
    Created,
    /// The table already existed (created by Django's migration, or earlier) and has every column
    /// the store needs; it was left as it is.
    AlreadyPresent,
}

/// One row of the session table, as stored (Django's `Session` model instance).
///
/// Its string form is the session key, as Django's `Session.__str__`.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    /// `session_key`.
    pub session_key: String,
    /// `session_data`: the signed, encoded session, exactly as stored.
    pub session_data: String,
    /// `expire_date`, in UTC.
    pub expire_date: OffsetDateTime,
    /// The custom model's extra columns, in declaration order.
    pub extra: Vec<ColumnValue>,
}

impl SessionRow {
    /// The decoded session data (Django's `Session.get_decoded()`): an empty dict when it does not
    /// verify or decode, with Django's security warning logged for a bad signature.
    pub fn get_decoded(&self, codec: &SessionCodec) -> Dict {
        codec.decode(&self.session_data)
    }
}

impl fmt::Display for SessionRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.session_key)
    }
}

/// The SQL the store runs, built once for its table and model.
#[derive(Debug)]
struct Statements {
    load: SqlStr,
    load_with_expiry: SqlStr,
    exists: SqlStr,
    exists_live: SqlStr,
    insert: SqlStr,
    update: SqlStr,
    update_if_unchanged: SqlStr,
    unchanged: SqlStr,
    upsert: SqlStr,
    delete: SqlStr,
    // One bounded batch of `clear_expired`; `{batch}` is replaced by the batch size.
    clear_expired_batch: String,
    row: SqlStr,
    columns: SqlStr,
    create: Vec<String>,
}

impl Statements {
    fn new(
        dialect: Dialect,
        table: &str,
        extra: &[ExtraColumn],
        columns_sql: &'static str,
    ) -> Self {
        let q = |name: &str| dialect.quote(name);
        let p = |n: usize| dialect.placeholder(n);
        let t = q(table);
        let (key, data, expire) = (q("session_key"), q("session_data"), q("expire_date"));
        let extra_names: Vec<String> = extra.iter().map(|c| q(c.name())).collect();
        let all_columns: Vec<String> = [key.clone(), data.clone(), expire.clone()]
            .into_iter()
            .chain(extra_names.iter().cloned())
            .collect();
        let values: Vec<String> = (1..=all_columns.len()).map(p).collect();
        // Updated columns, then the key and the clock: data, expire, extras..., key, now.
        let set: Vec<String> = [&data, &expire]
            .into_iter()
            .chain(extra_names.iter())
            .enumerate()
            .map(|(i, column)| format!("{column} = {}", p(i + 1)))
            .collect();
        let n = set.len();
        let upsert_tail = match dialect {
            Dialect::MySql => format!(
                "ON DUPLICATE KEY UPDATE {}",
                all_columns[1..]
                    .iter()
                    .map(|c| format!("{c} = VALUES({c})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Dialect::Postgres | Dialect::Sqlite => format!(
                "ON CONFLICT ({key}) DO UPDATE SET {}",
                all_columns[1..]
                    .iter()
                    .map(|c| format!("{c} = EXCLUDED.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let insert = format!(
            "INSERT INTO {t} ({}) VALUES ({})",
            all_columns.join(", "),
            values.join(", ")
        );
        let sql = |text: String| AssertSqlSafe(Arc::<str>::from(text)).into_sql_str();
        // "The row is live and still at the version read", with its four placeholders (key,
        // now, expected data, expected expiry) numbered from `first`: the compare-and-swap's
        // condition, and `is_unchanged`'s query, so the two always mean the same.
        // The stored text is compared byte for byte. MySQL would compare two strings by the
        // column's collation (usually case-insensitive and pad-space), under which different
        // data could pass for the version read; a binary operand makes it bytewise.
        // PostgreSQL's deterministic collations and SQLite's BINARY default already are.
        let unchanged_since_read = |first: usize| {
            let expected_data = match dialect {
                Dialect::MySql => format!("CAST({} AS BINARY)", p(first + 2)),
                Dialect::Postgres | Dialect::Sqlite => p(first + 2),
            };
            format!(
                "{key} = {} AND {expire} > {} AND {data} = {expected_data} AND {expire} = {}",
                p(first),
                p(first + 1),
                p(first + 3)
            )
        };
        Statements {
            load: sql(format!(
                "SELECT {data} FROM {t} WHERE {key} = {} AND {expire} > {}",
                p(1),
                p(2)
            )),
            // The row's shape (key, data, expiry) so `fetch_row` reads it.
            load_with_expiry: sql(format!(
                "SELECT {key}, {data}, {expire} FROM {t} WHERE {key} = {} AND {expire} > {}",
                p(1),
                p(2)
            )),
            exists: sql(format!("SELECT 1 FROM {t} WHERE {key} = {} LIMIT 1", p(1))),
            // `load`'s condition without reading the data: whether a failed compare-and-swap met
            // a live row (a conflict) or none (deleted or expired).
            exists_live: sql(format!(
                "SELECT 1 FROM {t} WHERE {key} = {} AND {expire} > {} LIMIT 1",
                p(1),
                p(2)
            )),
            upsert: sql(format!("{insert} {upsert_tail}")),
            insert: sql(insert),
            // The expiry condition keeps an expired-but-uncleared row from being revived.
            update: sql(format!(
                "UPDATE {t} SET {} WHERE {key} = {} AND {expire} > {}",
                set.join(", "),
                p(n + 1),
                p(n + 2)
            )),
            // `update`, only over the `session_data` and `expire_date` that were read: one
            // statement, so the database's row lock makes the comparison and the write atomic.
            update_if_unchanged: sql(format!(
                "UPDATE {t} SET {} WHERE {}",
                set.join(", "),
                unchanged_since_read(n + 1)
            )),
            // The same condition, asked without writing.
            unchanged: sql(format!(
                "SELECT 1 FROM {t} WHERE {} LIMIT 1",
                unchanged_since_read(1)
            )),
            delete: sql(format!("DELETE FROM {t} WHERE {key} = {}", p(1))),
            // Each batch is its own short statement (and transaction), found through Django's
            // index on expire_date: no long lock, no huge undo log. MySQL deletes with a LIMIT;
            // PostgreSQL and SQLite have no DELETE ... LIMIT, so the keys come from a subquery.
            clear_expired_batch: match dialect {
                Dialect::MySql => {
                    format!("DELETE FROM {t} WHERE {expire} < {} LIMIT {{batch}}", p(1))
                }
                Dialect::Postgres | Dialect::Sqlite => format!(
                    "DELETE FROM {t} WHERE {key} IN (SELECT {key} FROM {t} WHERE {expire} < {} \
                     LIMIT {{batch}})",
                    p(1)
                ),
            },
            row: sql(format!(
                "SELECT {} FROM {t} WHERE {key} = {}",
                all_columns.join(", "),
                p(1)
            )),
            columns: SqlStr::from_static(columns_sql),
            create: schema::create_table_sql(dialect, table, extra),
        }
    }
}

/// A session store on a SQL database, sharing Django's `django_session` table.
///
/// `B` is the database ([`sqlx::Postgres`], [`sqlx::MySql`] or [`sqlx::Sqlite`]; the aliases
/// [`PgStore`](crate::PgStore), [`MySqlStore`](crate::MySqlStore) and
/// [`SqliteStore`](crate::SqliteStore) name them), `M` the [`SessionModel`] (Django's own by
/// default). See the [crate documentation](crate) for the schema and the semantics.
pub struct DbStore<B: Backend, M: SessionModel = DjangoSession> {
    /// The pool, and the connections held between statements (see [`KEEP_CONNECTION_FOR`](crate::KEEP_CONNECTION_FOR)).
    connections: Connections<B>,
    codec: SessionCodec,
    model: M,
    table: String,
    sql: Arc<Statements>,
    clock: Clock,
    clear_batch: ClearBatch,
}

/// How many rows one statement of [`DbStore::clear_expired_rows`] deletes by default.
pub const DEFAULT_CLEAR_BATCH_SIZE: u64 = 10_000;

/// The batch size, and its statement with the size written in (an integer we chose: no
/// injection possible), built once.
#[derive(Debug, Clone)]
struct ClearBatch {
    rows: u64,
    sql: SqlStr,
    /// The wait after each full batch (see [`DbStore::with_clear_pause`]).
    pause: Duration,
}

impl ClearBatch {
    fn new(statements: &Statements, rows: u64, pause: Duration) -> Self {
        let text = statements
            .clear_expired_batch
            .replace("{batch}", &rows.to_string());
        ClearBatch {
            rows,
            sql: AssertSqlSafe(Arc::<str>::from(text)).into_sql_str(),
            pause,
        }
    }
}

impl<B: Backend, M: SessionModel> fmt::Debug for DbStore<B, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbStore")
            .field("database", &B::NAME)
            .field("table", &self.table)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl<B: Backend, M: SessionModel + Clone> Clone for DbStore<B, M> {
    fn clone(&self) -> Self {
        DbStore {
            connections: self.connections.clone(),
            codec: self.codec.clone(),
            model: self.model.clone(),
            table: self.table.clone(),
            sql: Arc::clone(&self.sql),
            clock: Arc::clone(&self.clock),
            clear_batch: self.clear_batch.clone(),
        }
    }
}

impl<B: Backend> DbStore<B, DjangoSession> {
    /// A store on `pool`, using table `django_session` and the codec of `config` (whose
    /// `secret_key` must be the Django site's `SECRET_KEY` to share sessions with it).
    ///
    /// # Errors
    /// [`DbError::Config`] when `config` is invalid.
    pub fn new(pool: Pool<B>, config: &SessionConfig) -> Result<Self, DbError> {
        Self::with_model(pool, DjangoSession, config)
    }

    /// Connects a pool to `url` and builds a store on it (an in-memory SQLite URL gets a single
    /// connection that is never recycled, since each connection would be a database of its own).
    ///
    /// One connection is opened first, directly, and must succeed within
    /// [`DEFAULT_CONNECT_TIMEOUT`] (5 s); the pool opens its connections as they are needed.
    ///
    /// # Errors
    ///
    /// [`DbError::Connect`] with the driver's own error, as soon as the
    /// driver reports it: the connection refused (nothing listens on that port), the host unknown,
    /// authentication failed, the database or role unknown, the SQLite file missing (add
    /// `?mode=rwc` to create it) or not openable, or a malformed URL. A host that does not answer
    /// at all is reported after the timeout, as an I/O error saying so. Nothing is retried (a bare
    /// sqlx pool retries a refused connection until its 30 s acquire timeout, then reports only
    /// that it timed out): a service that may start before its database should retry `connect`
    /// itself. The message never contains the URL, which may hold a password.
    ///
    /// Later operations wait for a pooled connection as sqlx's pool does (up to 30 s); for other
    /// pool settings build the pool yourself and use [`DbStore::new`].
    pub async fn connect(url: &str, config: &SessionConfig) -> Result<Self, DbError> {
        Self::connect_with_model(url, DjangoSession, config).await
    }

    /// The pool [`connect`](DbStore::connect) builds, waiting up to `timeout` instead of
    /// [`DEFAULT_CONNECT_TIMEOUT`] for the first connection; pass it to [`DbStore::new`] or
    /// [`DbStore::with_model`]. Fails as `connect` does.
    ///
    /// ```no_run
    /// # async fn demo(config: &session_core::SessionConfig) -> Result<(), session_core::Error> {
    /// use std::time::Duration;
    /// use session_db::PgStore;
    ///
    /// // A database across a slow link.
    /// let pool = PgStore::connect_pool("postgres://app@db.internal/site", Duration::from_secs(20))
    ///     .await?;
    /// let store = PgStore::new(pool, config)?;
    /// # let _ = store; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`connect`](DbStore::connect).
    pub async fn connect_pool(url: &str, timeout: Duration) -> Result<Pool<B>, DbError> {
        let failed = |source| DbError::Connect { source };
        let options = B::connect_options(url).map_err(failed)?;
        // A pool would retry a refused connection until its acquire timeout and then report only
        // "pool timed out"; one direct connection reports the driver's error as it happens.
        let probe = tokio::time::timeout(timeout, options.connect())
            .await
            .map_err(|_| failed(no_answer(timeout)))?
            .map_err(failed)?;
        // Closing politely spares the server an "unexpected EOF" in its log. Its outcome does not
        // matter, and the timeout keeps a stalled close from delaying the store.
        let _ = tokio::time::timeout(timeout, probe.close()).await;
        // Lazy: the probe has shown the URL works; the pool connects with the first query.
        Ok(Self::pool_options(url).connect_lazy_with(options))
    }

    /// The pool settings [`connect`](DbStore::connect) and [`connect_pool`](DbStore::connect_pool)
    /// use for `url`: sqlx's, except that a pooled connection is pinged before it is handed out
    /// only when it has been idle longer than [`PING_IF_IDLE_FOR`](crate::PING_IF_IDLE_FOR)
    /// (sqlx pings every time: one more round trip per statement), and a single connection that
    /// never expires for an in-memory SQLite database. Start from these to size the pool
    /// yourself, then pass it to [`DbStore::new`].
    ///
    /// ```no_run
    /// # async fn demo(config: &session_core::SessionConfig) -> Result<(), Box<dyn std::error::Error>> {
    /// use session_db::PgStore;
    ///
    /// let url = "postgres://app@db.internal/site";
    /// let pool = PgStore::pool_options(url).max_connections(32).connect(url).await?;
    /// let store = PgStore::new(pool, config)?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub fn pool_options(url: &str) -> sqlx::pool::PoolOptions<B> {
        B::pool_options(url)
    }
}

impl<B: Backend, M: SessionModel> DbStore<B, M> {
    /// A store for a custom session model (extra columns computed from the session data).
    ///
    /// # Errors
    /// [`DbError::Config`] when `config` is invalid, and the name errors of
    /// [`DbError`] when the model declares unusable columns.
    pub fn with_model(pool: Pool<B>, model: M, config: &SessionConfig) -> Result<Self, DbError> {
        let codec = SessionCodec::new(config).map_err(DbError::Config)?;
        let sql = Self::statements(DEFAULT_TABLE, &model)?;
        let clear_batch = ClearBatch::new(&sql, DEFAULT_CLEAR_BATCH_SIZE, Duration::ZERO);
        Ok(DbStore {
            connections: Connections::new(pool),
            codec,
            model,
            table: DEFAULT_TABLE.to_owned(),
            sql,
            clock: Arc::new(OffsetDateTime::now_utc),
            clear_batch,
        })
    }

    /// [`connect`](DbStore::connect) with a custom session model.
    ///
    /// # Errors
    /// As [`connect`](DbStore::connect) and [`with_model`](DbStore::with_model).
    pub async fn connect_with_model(
        url: &str,
        model: M,
        config: &SessionConfig,
    ) -> Result<Self, DbError> {
        let pool = DbStore::<B>::connect_pool(url, DEFAULT_CONNECT_TIMEOUT).await?;
        Self::with_model(pool, model, config)
    }

    fn statements(table: &str, model: &M) -> Result<Arc<Statements>, DbError> {
        schema::validate(table, model.extra_columns())?;
        Ok(Arc::new(Statements::new(
            B::DIALECT,
            table,
            model.extra_columns(),
            B::COLUMNS_SQL,
        )))
    }

    /// Uses another table (Django's `db_table` of a custom session model). The name must be a
    /// plain identifier; choose a schema or database through the connection URL.
    ///
    /// # Errors
    /// [`DbError::InvalidTableName`] for a name that is not a plain identifier.
    pub fn with_table(mut self, table: &str) -> Result<Self, DbError> {
        self.sql = Self::statements(table, &self.model)?;
        self.clear_batch =
            ClearBatch::new(&self.sql, self.clear_batch.rows, self.clear_batch.pause);
        self.table = table.to_owned();
        Ok(self)
    }

    /// How many expired rows each statement of [`clear_expired_rows`](Self::clear_expired_rows)
    /// deletes (default [`DEFAULT_CLEAR_BATCH_SIZE`]). Smaller batches hold locks for less time;
    /// larger ones finish in fewer round trips.
    ///
    /// # Errors
    /// [`DbError::Config`] for 0 (no batch would ever delete anything).
    pub fn with_clear_batch_size(mut self, rows: u64) -> Result<Self, DbError> {
        if rows == 0 {
            return Err(DbError::Config(session_core::Error::Config(
                "clear batch size 0 would delete nothing: use at least 1 row per batch".to_owned(),
            )));
        }
        self.clear_batch = ClearBatch::new(&self.sql, rows, self.clear_batch.pause);
        Ok(self)
    }

    /// The number of rows each clearing statement deletes.
    pub fn clear_batch_size(&self) -> u64 {
        self.clear_batch.rows
    }

    /// How long [`clear_expired_rows`](Self::clear_expired_rows) waits after each full batch
    /// before deleting the next (default none).
    ///
    /// A pause trades clearing time for the latency of everything else the database serves
    /// meanwhile: each batch dirties pages the server must write back (and, on InnoDB, purge), and
    /// a pause lets that I/O drain before the next batch adds more, instead of queueing the
    /// sessions being loaded behind it. Clearing is a background chore, so finishing later is
    /// usually the right trade on a busy site. Clearing five million of ten million rows while
    /// loads arrive at 4,000/s, a 300 ms pause (a few times one batch of 10,000 rows there) held
    /// the p99 of those loads to 1.32× idle on PostgreSQL (3.89× without a pause) and to 1.61×
    /// on MariaDB with a buffer pool that holds the table. The repository README's "Operations"
    /// section has the figures and the server settings they were measured with.
    /// [`SessionStore::clear_expired`] pauses too.
    pub fn with_clear_pause(mut self, pause: Duration) -> Self {
        self.clear_batch.pause = pause;
        self
    }

    /// The wait after each full clearing batch.
    pub fn clear_pause(&self) -> Duration {
        self.clear_batch.pause
    }

    /// Compares `expire_date` with this clock instead of the system's (Django's `timezone.now()`).
    /// Useful to read rows as of a given moment, and in tests.
    pub fn with_clock(
        mut self,
        clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static,
    ) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool<B> {
        self.connections.pool()
    }

    /// The codec session data is encoded with.
    pub fn codec(&self) -> &SessionCodec {
        &self.codec
    }

    /// The session model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn now(&self) -> OffsetDateTime {
        timestamp::normalize((self.clock)())
    }

    /// The statements Django's migration runs to create this store's table (`CREATE TABLE`, then
    /// `CREATE INDEX` with Django's index names), for projects that manage their schema by hand.
    pub fn schema_sql(&self) -> &[String] {
        &self.sql.create
    }

    /// Creates the table and its indexes if the table does not exist; leaves an existing table
    /// alone after checking it has every column the store needs.
    ///
    /// A table created here is the one Django's migration would create, so Django can use it;
    /// run `manage.py migrate sessions --fake-initial` there to record the migration as applied.
    ///
    /// # Errors
    /// [`DbError::Database`] when the table cannot be created or inspected.
    pub async fn ensure_schema(&self) -> Result<SchemaStatus, DbError> {
        let present = self.columns().await?;
        if !present.is_empty() {
            self.verify_columns(&present)?;
            return Ok(SchemaStatus::AlreadyPresent);
        }
        let Err(error) = B::run_ddl(self.connections.pool(), &self.sql.create).await else {
            return Ok(SchemaStatus::Created);
        };
        // Another process may have created it meanwhile: then it is there now.
        let present = self.columns().await?;
        if present.is_empty() {
            return Err(self.context(error));
        }
        tracing::debug!(%error, table = %self.table, "session table appeared while creating it");
        self.verify_columns(&present)?;
        Ok(SchemaStatus::AlreadyPresent)
    }

    /// Checks that the table exists and has every column the store needs.
    ///
    /// # Errors
    /// [`DbError::MissingTable`] / [`DbError::MissingColumn`] when the table is not Django's,
    /// [`DbError::Database`] when it cannot be inspected.
    pub async fn check_schema(&self) -> Result<(), DbError> {
        self.verify_columns(&self.columns().await?)
    }

    /// [`check_schema`](DbStore::check_schema) on the column names the catalog listed.
    fn verify_columns(&self, present: &[String]) -> Result<(), DbError> {
        if present.is_empty() {
            return Err(DbError::MissingTable {
                table: self.table.clone(),
            });
        }
        match self.first_missing_column(present) {
            Some(column) => Err(DbError::MissingColumn {
                table: self.table.clone(),
                column,
            }),
            None => Ok(()),
        }
    }

    fn first_missing_column(&self, present: &[String]) -> Option<String> {
        let same = |a: &str, b: &str| match B::DIALECT {
            // Quoted identifiers are case-sensitive in PostgreSQL only.
            Dialect::Postgres => a == b,
            Dialect::MySql | Dialect::Sqlite => a.eq_ignore_ascii_case(b),
        };
        DJANGO_COLUMNS
            .into_iter()
            .chain(self.model.extra_columns().iter().map(ExtraColumn::name))
            .find(|wanted| !present.iter().any(|p| same(p, wanted)))
            .map(str::to_owned)
    }

    async fn columns(&self) -> Result<Vec<String>, DbError> {
        B::fetch_texts(
            &self.connections,
            &self.sql.columns,
            &[Param::Text(&self.table)],
        )
        .await
        .map_err(|source| self.context(source))
    }

    fn context(&self, source: sqlx::Error) -> DbError {
        DbError::Database {
            table: self.table.clone(),
            source,
        }
    }

    /// Turns a driver error into the most helpful [`DbError`].
    async fn explain(&self, source: sqlx::Error) -> DbError {
        match B::classify(&source) {
            ErrorClass::MissingTable => DbError::MissingTable {
                table: self.table.clone(),
            },
            ErrorClass::MissingColumn => match self.columns().await {
                Ok(present) => match self.first_missing_column(&present) {
                    Some(column) => DbError::MissingColumn {
                        table: self.table.clone(),
                        column,
                    },
                    None => self.context(source),
                },
                Err(_) => self.context(source),
            },
            ErrorClass::UniqueViolation | ErrorClass::Other => self.context(source),
        }
    }

    /// Whether a row could hold `key` (`varchar(40)`, no NUL); keys that cannot are never looked up.
    fn storable(&self, key: &str) -> Result<(), DbError> {
        let chars = key.chars().count();
        if chars > MAX_KEY_CHARS {
            return Err(DbError::KeyTooLong {
                table: self.table.clone(),
                chars,
            });
        }
        if key.contains('\0') {
            return Err(DbError::KeyHasNul);
        }
        Ok(())
    }

    /// What a save writes for `data` expiring at `expires_at`: the encoded data, the extra column
    /// values, and the moment as the row holds it.
    fn row_values(
        &self,
        data: &Dict,
        expires_at: OffsetDateTime,
    ) -> Result<(String, Vec<ColumnValue>, OffsetDateTime), Error> {
        let session_data = self.codec.encode(data)?;
        let extra = self.extra_values(data)?;
        Ok((session_data, extra, timestamp::normalize(expires_at)))
    }

    /// The extra column values for `data`, checked against their columns.
    fn extra_values(&self, data: &Dict) -> Result<Vec<ColumnValue>, DbError> {
        let columns = self.model.extra_columns();
        let values = self.model.values(data);
        if values.len() != columns.len() {
            return Err(DbError::ExtraValueCount {
                expected: columns.len(),
                got: values.len(),
            });
        }
        for (column, value) in columns.iter().zip(&values) {
            column.check(value).map_err(|reason| DbError::ExtraValue {
                column: column.name().to_owned(),
                reason,
            })?;
        }
        Ok(values)
    }

    /// Parameters `key, data, expire, extras...` (insert order).
    fn row_params<'a>(
        &'a self,
        key: &'a str,
        data: &'a str,
        expire: OffsetDateTime,
        extra: &'a [ColumnValue],
    ) -> Vec<Param<'a>> {
        let mut params = vec![Param::Text(key), Param::Text(data), Param::At(expire)];
        params.extend(self.extra_params(extra));
        params
    }

    fn extra_params<'a>(&'a self, extra: &'a [ColumnValue]) -> impl Iterator<Item = Param<'a>> {
        extra
            .iter()
            .zip(self.model.extra_columns())
            .map(|(value, column)| Param::Extra(value, column.column_type()))
    }

    /// The row under `key`, whatever its expiry (Django's `Session.objects.get(pk=key)`).
    ///
    /// # Errors
    /// [`DbError::Database`] when the query fails, [`DbError::BadExpireDate`] for an
    /// `expire_date` Django could not have written.
    pub async fn row(&self, key: &str) -> Result<Option<SessionRow>, DbError> {
        if self.storable(key).is_err() {
            return Ok(None);
        }
        let fetched = B::fetch_row(
            &self.connections,
            &self.sql.row,
            &[Param::Text(key)],
            self.model.extra_columns(),
        )
        .await;
        match fetched {
            Ok(Some(raw)) => self.session_row(raw).map(Some),
            Ok(None) => Ok(None),
            Err(source) => Err(self.explain(source).await),
        }
    }

    fn session_row(&self, raw: RawRow) -> Result<SessionRow, DbError> {
        let expire_date = raw.expire_date.map_err(|value| DbError::BadExpireDate {
            table: self.table.clone(),
            value,
        })?;
        Ok(SessionRow {
            session_key: raw.session_key,
            session_data: raw.session_data,
            expire_date,
            extra: raw.extra,
        })
    }

    /// Django's `SessionManager.save(session_key, session_dict, expire_date)`: writes the row
    /// (inserting or replacing it) when the data is not empty, deletes it when it is, and returns
    /// the row as built.
    ///
    /// Unlike Django's manager, which leaves a custom model's extra columns at their defaults, this
    /// fills them from the data, as every other save does.
    ///
    /// # Errors
    /// [`DbError::Database`] when the write fails.
    pub async fn save_row(
        &self,
        key: &str,
        data: &Dict,
        expire_date: OffsetDateTime,
    ) -> Result<SessionRow, Error> {
        self.storable(key)?;
        let (session_data, extra, expire_date) = self.row_values(data, expire_date)?;
        let result = if data.is_empty() {
            B::execute(&self.connections, &self.sql.delete, &[Param::Text(key)]).await
        } else {
            let params = self.row_params(key, &session_data, expire_date, &extra);
            B::execute(&self.connections, &self.sql.upsert, &params).await
        };
        if let Err(source) = result {
            return Err(self.explain(source).await.into());
        }
        Ok(SessionRow {
            session_key: key.to_owned(),
            session_data,
            expire_date,
            extra,
        })
    }

    /// Deletes every row expired as of the store's clock and returns how many went (Django's
    /// `clear_expired`, which `clearsessions` runs), in batches of
    /// [`clear_batch_size`](Self::clear_batch_size) rows, each its own statement: clearing
    /// millions of rows takes no long lock and no huge transaction, and sessions keep loading
    /// meanwhile. Rows that expire while it runs are left for the next run.
    ///
    /// # Errors
    /// [`DbError::Database`] when a delete fails (what earlier batches removed stays removed).
    pub async fn clear_expired_rows(&self) -> Result<u64, DbError> {
        self.clear_expired_rows_with_progress(|_| {}).await
    }

    /// [`clear_expired_rows`](Self::clear_expired_rows), calling `progress` with the running
    /// total after each batch (the CLI draws its progress line with it).
    ///
    /// # Errors
    /// As [`clear_expired_rows`](Self::clear_expired_rows).
    pub async fn clear_expired_rows_with_progress(
        &self,
        mut progress: impl FnMut(u64) + Send,
    ) -> Result<u64, DbError> {
        let now = self.now();
        let mut removed = 0u64;
        loop {
            let batch =
                match B::execute(&self.connections, &self.clear_batch.sql, &[Param::At(now)]).await
                {
                    Ok(batch) => batch,
                    Err(source) => return Err(self.explain(source).await),
                };
            removed += batch;
            progress(removed);
            if batch < self.clear_batch.rows {
                return Ok(removed);
            }
            // Only between full batches: a short one was the last, and nothing follows it.
            if !self.clear_batch.pause.is_zero() {
                tokio::time::sleep(self.clear_batch.pause).await;
            }
        }
    }

    async fn insert(&self, key: &SessionKey, record: &SessionRecord<'_>) -> Result<(), Error> {
        self.storable(key.as_str())?;
        let (session_data, extra, expire) = self.row_values(record.data, record.expires_at)?;
        let params = self.row_params(key.as_str(), &session_data, expire, &extra);
        match B::execute(&self.connections, &self.sql.insert, &params).await {
            Ok(_) => Ok(()),
            Err(source) if B::classify(&source) == ErrorClass::UniqueViolation => {
                // Without extra columns only the key is unique. With them, a unique extra column
                // must not be mistaken for a taken key: retrying with new keys would never end.
                if extra.is_empty() || self.exists(key).await? {
                    Err(Error::CreateConflict)
                } else {
                    Err(DbError::ExtraUniqueViolation {
                        table: self.table.clone(),
                        source,
                    }
                    .into())
                }
            }
            Err(source) => Err(self.explain(source).await.into()),
        }
    }

    async fn update(&self, key: &SessionKey, record: &SessionRecord<'_>) -> Result<(), Error> {
        if self.storable(key.as_str()).is_err() {
            // No row can have this key, so there is nothing to update.
            return Err(Error::SessionDeleted);
        }
        let (session_data, extra, expire) = self.row_values(record.data, record.expires_at)?;
        let now = self.now();
        let mut params = vec![Param::Text(&session_data), Param::At(expire)];
        params.extend(self.extra_params(&extra));
        params.push(Param::Text(key.as_str()));
        params.push(Param::At(now));
        // Counts matched rows on every driver (sqlx sets CLIENT_FOUND_ROWS on MySQL), so
        // rewriting identical data still counts as one.
        match B::execute(&self.connections, &self.sql.update, &params).await {
            Ok(0) => Err(Error::SessionDeleted),
            Ok(_) => Ok(()),
            Err(source) => Err(self.explain(source).await.into()),
        }
    }

    /// The compare-and-swap: `update`, only if the row still holds the `session_data` and
    /// `expire_date` of `expected`; returns the version of what it wrote.
    async fn update_if_unchanged(
        &self,
        key: &SessionKey,
        record: &SessionRecord<'_>,
        expected: &Version,
    ) -> Result<Version, Error> {
        if self.storable(key.as_str()).is_err() {
            return Err(Error::SessionDeleted);
        }
        let (session_data, extra, expire) = self.row_values(record.data, record.expires_at)?;
        let now = self.now();
        let updated = match Self::expected_row(expected) {
            Some((expected_data, expected_expire)) => {
                let mut params = vec![Param::Text(&session_data), Param::At(expire)];
                params.extend(self.extra_params(&extra));
                params.push(Param::Text(key.as_str()));
                params.push(Param::At(now));
                params.push(Param::Text(expected_data));
                params.push(expected_expire);
                // Matched rows, as for `update`: rewriting identical values counts as one.
                match B::execute(&self.connections, &self.sql.update_if_unchanged, &params).await {
                    Ok(updated) => updated,
                    Err(source) => return Err(self.explain(source).await.into()),
                }
            }
            None => 0,
        };
        if updated > 0 {
            // What the row holds now: the text SQLite stores is the one `Param::At` binds.
            let token = match B::DIALECT {
                Dialect::Sqlite => timestamp::sqlite_text(expire),
                Dialect::Postgres | Dialect::MySql => timestamp_token(expire),
            };
            return Ok(RowVersion::encode(&token, &session_data));
        }
        // Nothing matched: the row changed, or is gone. Asked afterwards, with the same clock, so
        // a row deleted or expired since the update is `SessionDeleted` (it is gone now, and a
        // retry could only find that), and a row still live at `now` is a conflict.
        let params = [Param::Text(key.as_str()), Param::At(now)];
        match B::fetch_exists(&self.connections, &self.sql.exists_live, &params).await {
            Ok(true) => Err(Error::Conflict),
            Ok(false) => Err(Error::SessionDeleted),
            Err(source) => Err(self.explain(source).await.into()),
        }
    }

    /// What a row at `version` holds, as the parameters comparing it: its `session_data`, and its
    /// `expire_date` as stored. `None` for a version this store did not make, which no row can
    /// be at.
    fn expected_row(version: &Version) -> Option<(&str, Param<'_>)> {
        let read = RowVersion::parse(version)?;
        let expire = match B::DIALECT {
            // SQLite compares the text as stored.
            Dialect::Sqlite => Param::Text(read.expire),
            Dialect::Postgres | Dialect::MySql => Param::At(timestamp_from_token(read.expire)?),
        };
        Some((read.session_data, expire))
    }

    /// The live row (`load_with_expiry`'s one query).
    async fn live_row(&self, key: &SessionKey) -> Result<Option<LiveRow>, Error> {
        if self.storable(key.as_str()).is_err() {
            return Ok(None);
        }
        let now = self.now();
        let params = [Param::Text(key.as_str()), Param::At(now)];
        let raw =
            match B::fetch_row(&self.connections, &self.sql.load_with_expiry, &params, &[]).await {
                Ok(Some(raw)) => raw,
                Ok(None) => return Ok(None),
                Err(source) => return Err(self.explain(source).await.into()),
            };
        let expires_at = match raw.expire_date {
            Ok(at) => Some(at),
            Err(ref value) => {
                // `load` serves such a row (SQLite compared the text), so this does too, without
                // an expiry: callers then fall back to the one in the data.
                tracing::warn!(
                    table = %self.table,
                    value,
                    "expire_date is not a timestamp; loading the session without its expiry"
                );
                None
            }
        };
        Ok(Some(LiveRow {
            session_data: raw.session_data,
            expires_at,
            expire_text: raw.expire_text,
        }))
    }
}

/// A live row as loaded: the data, the expiry, and `expire_date`'s stored text where the
/// column holds text (SQLite).
struct LiveRow {
    session_data: String,
    expires_at: Option<OffsetDateTime>,
    expire_text: Option<String>,
}

impl LiveRow {
    /// The row's [`Version`]: its `session_data` and `expire_date` as stored.
    fn version(&self) -> Option<Version> {
        let token = match (&self.expire_text, self.expires_at) {
            (Some(text), _) => text.clone(),
            (None, Some(at)) => timestamp_token(at),
            // Only SQLite reads an expiry that is not a timestamp, and it keeps the text.
            (None, None) => return None,
        };
        Some(RowVersion::encode(&token, &self.session_data))
    }
}

/// The parts of a [`Version`] this store made: `<token length>:<expire token><session_data>`.
///
/// The data alone would not do: two saves of the same data within one second (the signature's
/// timestamp) write the same text, so a save over a version read before both would succeed.
/// `expire_date` is reset to now plus the age on every save (ours and Django's), to the
/// microsecond, so together they change on every write, except a rewrite of the identical row
/// (same data, same second, same fixed expiry date), which loses nothing when overwritten.
struct RowVersion<'a> {
    expire: &'a str,
    session_data: &'a str,
}

impl<'a> RowVersion<'a> {
    fn encode(expire: &str, session_data: &str) -> Version {
        let length = expire.len().to_string();
        let mut bytes = Vec::with_capacity(length.len() + 1 + expire.len() + session_data.len());
        bytes.extend_from_slice(length.as_bytes());
        bytes.push(b':');
        bytes.extend_from_slice(expire.as_bytes());
        bytes.extend_from_slice(session_data.as_bytes());
        Version::from_bytes(bytes)
    }

    fn parse(version: &'a Version) -> Option<Self> {
        let text = std::str::from_utf8(version.as_bytes()?).ok()?;
        let (length, rest) = text.split_once(':')?;
        let length: usize = length.parse().ok()?;
        if !rest.is_char_boundary(length) {
            return None;
        }
        let (expire, session_data) = rest.split_at_checked(length)?;
        Some(RowVersion {
            expire,
            session_data,
        })
    }
}

/// A moment as a version token (PostgreSQL, MySQL): its nanoseconds since the epoch, which
/// [`timestamp_from_token`] reads back exactly.
fn timestamp_token(at: OffsetDateTime) -> String {
    at.unix_timestamp_nanos().to_string()
}

fn timestamp_from_token(token: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(token.parse().ok()?).ok()
}

#[async_trait]
impl<B: Backend, M: SessionModel> SessionStore for DbStore<B, M> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        if self.storable(key.as_str()).is_err() {
            return Ok(None);
        }
        let now = self.now();
        let params = [Param::Text(key.as_str()), Param::At(now)];
        match B::fetch_text(&self.connections, &self.sql.load, &params).await {
            Ok(data) => Ok(data.map(|data| self.codec.decode(&data))),
            Err(source) => Err(self.explain(source).await.into()),
        }
    }

    /// The live row's data and its `expire_date`, in one query.
    async fn load_with_expiry(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        Ok(self.live_row(key).await?.map(|row| LoadedRecord {
            data: self.codec.decode(&row.session_data),
            expires_at: row.expires_at,
        }))
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        if self.storable(key.as_str()).is_err() {
            return Ok(false);
        }
        match B::fetch_exists(
            &self.connections,
            &self.sql.exists,
            &[Param::Text(key.as_str())],
        )
        .await
        {
            Ok(found) => Ok(found),
            Err(source) => Err(self.explain(source).await.into()),
        }
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        match mode {
            SaveMode::MustCreate => self.insert(key, &record).await?,
            SaveMode::Update => self.update(key, &record).await?,
        }
        Ok(key.clone())
    }

    /// Every database and session model: one conditional `UPDATE` (see the [crate
    /// documentation](crate#concurrency-policies)).
    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities::COMPARE_AND_SWAP
    }

    fn kind(&self) -> &'static str {
        match B::DIALECT {
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// `load_with_expiry`'s one query; the version is the row's `session_data` and `expire_date`
    /// as read, which every save rewrites (ours and Django's).
    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        let Some(row) = self.live_row(key).await? else {
            return Ok(None);
        };
        let version = row.version().ok_or_else(|| {
            Error::Store("a live row without a readable expire_date and its text".into())
        })?;
        Ok(Some(VersionedRecord {
            data: Arc::new(self.codec.decode(&row.session_data)),
            version,
            expires_at: row.expires_at,
        }))
    }

    /// `UPDATE … WHERE session_key = ? AND expire_date > now AND session_data = <read> AND
    /// expire_date = <read>`; when it matches nothing, one more primary-key query tells a conflict
    /// (a live row) from a deleted or expired session.
    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, Error> {
        self.update_if_unchanged(key, &record.as_record(), expected)
            .await
    }

    /// One primary-key query comparing the live row's `session_data` and `expire_date` with the
    /// version's, in the database, so the data is sent but never read back or decoded.
    async fn is_unchanged(&self, key: &SessionKey, expected: &Version) -> Result<bool, Error> {
        if self.storable(key.as_str()).is_err() {
            return Ok(false);
        }
        let Some((expected_data, expected_expire)) = Self::expected_row(expected) else {
            return Ok(false);
        };
        let params = [
            Param::Text(key.as_str()),
            Param::At(self.now()),
            Param::Text(expected_data),
            expected_expire,
        ];
        match B::fetch_exists(&self.connections, &self.sql.unchanged, &params).await {
            Ok(found) => Ok(found),
            Err(source) => Err(self.explain(source).await.into()),
        }
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        if self.storable(key.as_str()).is_err() {
            return Ok(());
        }
        match B::execute(
            &self.connections,
            &self.sql.delete,
            &[Param::Text(key.as_str())],
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(source) => Err(self.explain(source).await.into()),
        }
    }

    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        Ok(ClearExpired::Removed(self.clear_expired_rows().await?))
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use session_core::Value;
    use time::macros::datetime;

    use super::*;

    async fn store_at(now: OffsetDateTime) -> DbStore<sqlx::Sqlite> {
        let config = SessionConfig::new("django_tests_secret_key");
        let store = DbStore::<sqlx::Sqlite>::connect("sqlite::memory:", &config)
            .await
            .unwrap()
            .with_clock(move || now);
        store.ensure_schema().await.unwrap();
        store
    }

    fn data() -> Dict {
        [("hello".to_owned(), Value::from("world"))]
            .into_iter()
            .collect()
    }

    async fn save(store: &DbStore<sqlx::Sqlite>, key: &SessionKey, expires_at: OffsetDateTime) {
        let data = data();
        let record = SessionRecord {
            data: &data,
            expires_at,
            expiry_age: 0, // unused by a database
        };
        store.save(key, record, SaveMode::MustCreate).await.unwrap();
    }

    #[tokio::test]
    async fn load_with_expiry_returns_the_rows_expire_date_to_the_microsecond() {
        let store = store_at(datetime!(2030-01-01 00:00:00 UTC)).await;
        let key = SessionKey::generate().unwrap();
        save(&store, &key, datetime!(2030-01-15 12:34:56.789012345 UTC)).await;

        let loaded = store.load_with_expiry(&key).await.unwrap().unwrap();
        assert_eq!(loaded.data, data());
        // Stored as Django stores it: truncated to microseconds.
        assert_eq!(
            loaded.expires_at,
            Some(datetime!(2030-01-15 12:34:56.789012 UTC))
        );
        assert_eq!(Some(loaded.data), store.load(&key).await.unwrap());
    }

    #[tokio::test]
    async fn load_with_expiry_finds_what_load_finds_and_nothing_else() {
        let store = store_at(datetime!(2030-01-01 00:00:00 UTC)).await;
        let expired = SessionKey::generate().unwrap();
        let at_now = SessionKey::generate().unwrap();
        save(&store, &expired, datetime!(2029-12-31 23:59:59 UTC)).await;
        // `expire_date > now`: a row expiring exactly now is gone, as in Django.
        save(&store, &at_now, datetime!(2030-01-01 00:00:00 UTC)).await;
        let unknown = SessionKey::generate().unwrap();
        let overlong = SessionKey::new("k".repeat(41)).unwrap();
        for key in [&expired, &at_now, &unknown, &overlong] {
            assert_eq!(store.load_with_expiry(key).await.unwrap(), None, "{key:?}");
            assert_eq!(store.load(key).await.unwrap(), None, "{key:?}");
        }
    }

    #[tokio::test]
    async fn a_row_whose_expire_date_is_not_a_timestamp_loads_without_an_expiry() {
        let store = store_at(datetime!(2030-01-01 00:00:00 UTC)).await;
        let key = SessionKey::generate().unwrap();
        let session_data = store.codec().encode(&data()).unwrap();
        // Sorts after any real moment, so SQLite's text comparison keeps the row live.
        sqlx::query("INSERT INTO django_session VALUES (?, ?, ?)")
            .bind(key.as_str())
            .bind(session_data)
            .bind("9999-zz")
            .execute(store.pool())
            .await
            .unwrap();
        let loaded = store.load_with_expiry(&key).await.unwrap().unwrap();
        assert_eq!(loaded.data, data());
        assert_eq!(loaded.expires_at, None);
    }
}
