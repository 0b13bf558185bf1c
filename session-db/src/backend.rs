//! What differs between the databases: how values are bound and read, how errors are recognised,
//! and how DDL runs. Everything else (SQL shape, session semantics) is shared by the store.

use std::future::Future;
use std::time::Duration;

use sqlx::pool::PoolOptions;
use sqlx::{Pool, SqlStr};
use time::OffsetDateTime;

use crate::connections::Connections;
use crate::model::{ColumnType, ColumnValue, ExtraColumn};
use crate::schema::Dialect;

/// A database the store runs on: [`sqlx::Postgres`], [`sqlx::MySql`] or [`sqlx::Sqlite`] (each
/// behind its cargo feature). Sealed: the per-database details live in this crate.
pub trait Backend: sqlx::Database + sealed::Ops {}

/// A bound parameter.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Text(&'a str),
    /// A moment, written as the database's `expire_date` type (already normalised).
    At(OffsetDateTime),
    Extra(&'a ColumnValue, ColumnType),
}

/// A row as stored.
#[derive(Debug)]
pub struct RawRow {
    pub session_key: String,
    pub session_data: String,
    /// The expiry, or the stored text when it does not parse (SQLite only).
    pub expire_date: Result<OffsetDateTime, String>,
    /// The stored text of `expire_date`, where the column holds text (SQLite): what a
    /// compare-and-swap compares, since text Django wrote in another format would not round-trip
    /// through `expire_date`.
    pub expire_text: Option<String>,
    pub extra: Vec<ColumnValue>,
}

/// `expire_date` as read: [`RawRow::expire_date`] and [`RawRow::expire_text`].
pub type ReadExpire = (Result<OffsetDateTime, String>, Option<String>);

/// How a driver error should be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    MissingTable,
    MissingColumn,
    UniqueViolation,
    Other,
}

pub mod sealed {
    use super::*;

    /// The per-database operations. Each returns the driver's error; the store adds context.
    pub trait Ops: sqlx::Database {
        const DIALECT: Dialect;

        /// Runs a statement and returns the number of rows it matched.
        fn execute<'a>(
            connections: &'a Connections<Self>,
            sql: &'a SqlStr,
            params: &'a [Param<'a>],
        ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 'a;

        /// The first column (text) of the first row, if any.
        fn fetch_text<'a>(
            connections: &'a Connections<Self>,
            sql: &'a SqlStr,
            params: &'a [Param<'a>],
        ) -> impl Future<Output = Result<Option<String>, sqlx::Error>> + Send + 'a;

        /// Whether the query returns a row.
        fn fetch_exists<'a>(
            connections: &'a Connections<Self>,
            sql: &'a SqlStr,
            params: &'a [Param<'a>],
        ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send + 'a;

        /// The first column (text) of every row.
        fn fetch_texts<'a>(
            connections: &'a Connections<Self>,
            sql: &'a SqlStr,
            params: &'a [Param<'a>],
        ) -> impl Future<Output = Result<Vec<String>, sqlx::Error>> + Send + 'a;

        /// `session_key, session_data, expire_date, <extra columns>` of the first row.
        fn fetch_row<'a>(
            connections: &'a Connections<Self>,
            sql: &'a SqlStr,
            params: &'a [Param<'a>],
            extra: &'a [ExtraColumn],
        ) -> impl Future<Output = Result<Option<RawRow>, sqlx::Error>> + Send + 'a;

        /// Runs DDL statements, in one transaction where the database has transactional DDL.
        fn run_ddl<'a>(
            pool: &'a Pool<Self>,
            statements: &'a [String],
        ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'a;

        /// The query listing a table's column names (the table name is its only parameter); no
        /// rows when the table does not exist.
        const COLUMNS_SQL: &'static str;

        /// What kind of failure an error is.
        fn classify(error: &sqlx::Error) -> ErrorClass;

        /// Pool settings for a URL: [`session_pool_options`](super::session_pool_options),
        /// unless the database needs others.
        fn pool_options(_url: &str) -> PoolOptions<Self> {
            super::session_pool_options()
        }

        /// Connection settings for a URL: what it says, plus the store's defaults.
        fn connect_options(
            url: &str,
        ) -> Result<<Self::Connection as sqlx::Connection>::Options, sqlx::Error> {
            url.parse()
        }
    }
}

/// A pooled connection used more recently than this is handed out without a ping.
///
/// HikariCP skips its liveness check within 500 ms of a connection's last use for the same
/// reason: a connection that just answered a query is alive, and pinging it would cost a round
/// trip on every acquire.
pub const PING_IF_IDLE_FOR: Duration = Duration::from_millis(500);

/// sqlx's pool settings, except that a connection is pinged before it is handed out only when
/// it has been idle longer than [`PING_IF_IDLE_FOR`].
///
/// sqlx pings every connection it hands out (`test_before_acquire`): one more round trip to the
/// server for every statement run on the pool, which on a session load or save (one statement
/// each) doubles the round trips. A connection that dies while in use still fails only the
/// statement it was running, and is then discarded, as before.
pub(crate) fn session_pool_options<DB: sqlx::Database>() -> PoolOptions<DB> {
    PoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_IF_IDLE_FOR {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        })
}

/// `query` with `params` bound in order by the driver's `bind`.
pub(crate) fn bound<Q>(query: Q, params: &[Param<'_>], bind: impl Fn(Q, &Param<'_>) -> Q) -> Q {
    params.iter().fold(query, bind)
}

/// Implements the parts that are the same code for every driver (the types differ).
macro_rules! common_ops {
    ($db:ty, $bind:ident, $read_expire:ident, $read_extra:ident) => {
        async fn execute<'a>(
            connections: &'a $crate::connections::Connections<$db>,
            sql: &'a sqlx::SqlStr,
            params: &'a [$crate::backend::Param<'a>],
        ) -> Result<u64, sqlx::Error> {
            let query = $crate::backend::bound(sqlx::query::<$db>(sql.clone()), params, $bind);
            let mut lease = connections.acquire().await?;
            let done = query.execute(lease.connection()).await?;
            lease.keep();
            Ok(done.rows_affected())
        }

        async fn fetch_text<'a>(
            connections: &'a $crate::connections::Connections<$db>,
            sql: &'a sqlx::SqlStr,
            params: &'a [$crate::backend::Param<'a>],
        ) -> Result<Option<String>, sqlx::Error> {
            use sqlx::Row as _;
            let query = $crate::backend::bound(sqlx::query::<$db>(sql.clone()), params, $bind);
            let mut lease = connections.acquire().await?;
            let row = query.fetch_optional(lease.connection()).await?;
            lease.keep();
            match row {
                Some(row) => Ok(Some(row.try_get::<String, _>(0)?)),
                None => Ok(None),
            }
        }

        async fn fetch_exists<'a>(
            connections: &'a $crate::connections::Connections<$db>,
            sql: &'a sqlx::SqlStr,
            params: &'a [$crate::backend::Param<'a>],
        ) -> Result<bool, sqlx::Error> {
            let query = $crate::backend::bound(sqlx::query::<$db>(sql.clone()), params, $bind);
            let mut lease = connections.acquire().await?;
            let row = query.fetch_optional(lease.connection()).await?;
            lease.keep();
            Ok(row.is_some())
        }

        async fn fetch_texts<'a>(
            connections: &'a $crate::connections::Connections<$db>,
            sql: &'a sqlx::SqlStr,
            params: &'a [$crate::backend::Param<'a>],
        ) -> Result<Vec<String>, sqlx::Error> {
            use sqlx::Row as _;
            let query = $crate::backend::bound(sqlx::query::<$db>(sql.clone()), params, $bind);
            let mut lease = connections.acquire().await?;
            let rows = query.fetch_all(lease.connection()).await?;
            lease.keep();
            rows.iter().map(|row| row.try_get::<String, _>(0)).collect()
        }

        async fn fetch_row<'a>(
            connections: &'a $crate::connections::Connections<$db>,
            sql: &'a sqlx::SqlStr,
            params: &'a [$crate::backend::Param<'a>],
            extra: &'a [$crate::model::ExtraColumn],
        ) -> Result<Option<$crate::backend::RawRow>, sqlx::Error> {
            use sqlx::Row as _;
            let query = $crate::backend::bound(sqlx::query::<$db>(sql.clone()), params, $bind);
            let mut lease = connections.acquire().await?;
            let row = query.fetch_optional(lease.connection()).await?;
            lease.keep();
            let Some(row) = row else {
                return Ok(None);
            };
            let mut values = Vec::with_capacity(extra.len());
            for (i, column) in extra.iter().enumerate() {
                values.push($read_extra(&row, 3 + i, column.column_type())?);
            }
            let (expire_date, expire_text) = $read_expire(&row)?;
            Ok(Some($crate::backend::RawRow {
                session_key: row.try_get(0)?,
                session_data: row.try_get(1)?,
                expire_date,
                expire_text,
                extra: values,
            }))
        }
    };
}

/// Reads an extra column with the Rust types sqlx maps each column type to on this driver.
macro_rules! read_extra_fn {
    ($name:ident, $row:ty, $int:ty) => {
        fn $name(
            row: &$row,
            index: usize,
            ty: $crate::model::ColumnType,
        ) -> Result<$crate::model::ColumnValue, sqlx::Error> {
            use sqlx::Row as _;
            use $crate::model::ColumnType;
            Ok(match ty {
                ColumnType::Integer => row.try_get::<Option<$int>, _>(index)?.map(i64::from).into(),
                ColumnType::BigInteger => row.try_get::<Option<i64>, _>(index)?.into(),
                ColumnType::Boolean => row.try_get::<Option<bool>, _>(index)?.into(),
                ColumnType::Float => row.try_get::<Option<f64>, _>(index)?.into(),
                ColumnType::Text | ColumnType::VarChar(_) => {
                    row.try_get::<Option<String>, _>(index)?.into()
                }
            })
        }
    };
}

/// Binds an extra column's value with the type its column has on this driver.
macro_rules! bind_extra {
    ($query:expr, $value:expr, $ty:expr, $int:ty) => {{
        use $crate::model::{ColumnType, ColumnValue};
        let query = $query;
        match ($ty, $value) {
            (ColumnType::Integer, ColumnValue::Integer(i)) => {
                // Checked against the column before binding; saturate rather than panic.
                query.bind(<$int>::try_from(*i).unwrap_or(<$int>::MAX))
            }
            (ColumnType::Integer, _) => query.bind(None::<$int>),
            (ColumnType::BigInteger, ColumnValue::Integer(i)) => query.bind(*i),
            (ColumnType::BigInteger, _) => query.bind(None::<i64>),
            (ColumnType::Boolean, ColumnValue::Boolean(b)) => query.bind(*b),
            (ColumnType::Boolean, _) => query.bind(None::<bool>),
            (ColumnType::Float, ColumnValue::Float(f)) => query.bind(*f),
            (ColumnType::Float, _) => query.bind(None::<f64>),
            (ColumnType::Text | ColumnType::VarChar(_), ColumnValue::Text(s)) => {
                query.bind(s.as_str())
            }
            (ColumnType::Text | ColumnType::VarChar(_), _) => query.bind(None::<&str>),
        }
    }};
}

#[cfg(feature = "postgres")]
mod postgres {
    use sqlx::postgres::{PgArguments, PgRow};
    use sqlx::query::Query;
    use sqlx::{Pool, Postgres, Row as _};
    use time::OffsetDateTime;

    use super::{ErrorClass, Param, sealed::Ops};
    use crate::schema::Dialect;

    impl super::Backend for Postgres {}

    fn bind<'q>(
        query: Query<'q, Postgres, PgArguments>,
        param: &Param<'_>,
    ) -> Query<'q, Postgres, PgArguments> {
        match param {
            Param::Text(s) => query.bind(*s),
            Param::At(at) => query.bind(*at),
            Param::Extra(value, ty) => bind_extra!(query, *value, *ty, i32),
        }
    }

    fn read_expire(row: &PgRow) -> Result<super::ReadExpire, sqlx::Error> {
        Ok((Ok(row.try_get::<OffsetDateTime, _>(2)?), None))
    }

    read_extra_fn!(read_extra, PgRow, i32);

    impl Ops for Postgres {
        const DIALECT: Dialect = Dialect::Postgres;

        // Resolved through the search path, as the store's queries are.
        const COLUMNS_SQL: &'static str = "SELECT attname::text FROM pg_catalog.pg_attribute \
             WHERE attrelid = to_regclass(quote_ident($1)) AND attnum > 0 AND NOT attisdropped";

        common_ops!(Postgres, bind, read_expire, read_extra);

        async fn run_ddl<'a>(
            pool: &'a Pool<Postgres>,
            statements: &'a [String],
        ) -> Result<(), sqlx::Error> {
            let mut tx = pool.begin().await?;
            for statement in statements {
                sqlx::raw_sql(sqlx::AssertSqlSafe(statement.as_str()))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }

        fn classify(error: &sqlx::Error) -> ErrorClass {
            let Some(db) = error.as_database_error() else {
                return ErrorClass::Other;
            };
            match db.code().as_deref() {
                Some("42P01") => ErrorClass::MissingTable,
                Some("42703") => ErrorClass::MissingColumn,
                _ if db.is_unique_violation() => ErrorClass::UniqueViolation,
                _ => ErrorClass::Other,
            }
        }
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use sqlx::mysql::{MySqlArguments, MySqlDatabaseError, MySqlRow};
    use sqlx::query::Query;
    use sqlx::{MySql, Pool, Row as _};
    use time::PrimitiveDateTime;

    use super::{ErrorClass, Param, sealed::Ops};
    use crate::schema::Dialect;
    use crate::timestamp;

    impl super::Backend for MySql {}

    fn bind<'q>(
        query: Query<'q, MySql, MySqlArguments>,
        param: &Param<'_>,
    ) -> Query<'q, MySql, MySqlArguments> {
        match param {
            Param::Text(s) => query.bind(*s),
            // datetime(6) holds naive UTC, as Django writes it with USE_TZ=True.
            Param::At(at) => query.bind(timestamp::naive_utc(*at)),
            Param::Extra(value, ty) => bind_extra!(query, *value, *ty, i32),
        }
    }

    fn read_expire(row: &MySqlRow) -> Result<super::ReadExpire, sqlx::Error> {
        Ok((
            Ok(row.try_get::<PrimitiveDateTime, _>(2)?.assume_utc()),
            None,
        ))
    }

    read_extra_fn!(read_extra, MySqlRow, i32);

    impl Ops for MySql {
        const DIALECT: Dialect = Dialect::MySql;

        const COLUMNS_SQL: &'static str = "SELECT CAST(column_name AS CHAR) FROM \
             information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?";

        common_ops!(MySql, bind, read_expire, read_extra);

        async fn run_ddl<'a>(
            pool: &'a Pool<MySql>,
            statements: &'a [String],
        ) -> Result<(), sqlx::Error> {
            // MySQL commits DDL implicitly: a transaction would not make this atomic.
            for statement in statements {
                sqlx::raw_sql(sqlx::AssertSqlSafe(statement.as_str()))
                    .execute(pool)
                    .await?;
            }
            Ok(())
        }

        fn classify(error: &sqlx::Error) -> ErrorClass {
            let Some(db) = error.as_database_error() else {
                return ErrorClass::Other;
            };
            match db
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(|e| e.number())
            {
                // ER_NO_SUCH_TABLE, ER_BAD_FIELD_ERROR
                Some(1146) => ErrorClass::MissingTable,
                Some(1054) => ErrorClass::MissingColumn,
                _ if db.is_unique_violation() => ErrorClass::UniqueViolation,
                _ => ErrorClass::Other,
            }
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use sqlx::query::Query;
    use sqlx::sqlite::{
        SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqliteRow, SqliteSynchronous,
    };
    use sqlx::{Pool, Row as _, Sqlite};

    use super::{ErrorClass, Param, sealed::Ops};
    use crate::schema::Dialect;
    use crate::timestamp;

    impl super::Backend for Sqlite {}

    fn bind<'q>(
        query: Query<'q, Sqlite, SqliteArguments>,
        param: &Param<'_>,
    ) -> Query<'q, Sqlite, SqliteArguments> {
        match param {
            Param::Text(s) => query.bind(*s),
            // SQLite compares these as text, so the format must be exactly Django's.
            Param::At(at) => query.bind(timestamp::sqlite_text(*at)),
            Param::Extra(value, ty) => bind_extra!(query, *value, *ty, i64),
        }
    }

    fn read_expire(row: &SqliteRow) -> Result<super::ReadExpire, sqlx::Error> {
        let text: String = row.try_get(2)?;
        // The text is kept (moved, not copied, on the usual path) for the compare-and-swap.
        Ok(match timestamp::parse_sqlite_text(&text) {
            Some(at) => (Ok(at), Some(text)),
            None => (Err(text.clone()), Some(text)),
        })
    }

    read_extra_fn!(read_extra, SqliteRow, i64);

    impl Ops for Sqlite {
        const DIALECT: Dialect = Dialect::Sqlite;

        const COLUMNS_SQL: &'static str = "SELECT name FROM pragma_table_info(?)";

        common_ops!(Sqlite, bind, read_expire, read_extra);

        async fn run_ddl<'a>(
            pool: &'a Pool<Sqlite>,
            statements: &'a [String],
        ) -> Result<(), sqlx::Error> {
            let mut tx = pool.begin().await?;
            for statement in statements {
                sqlx::raw_sql(sqlx::AssertSqlSafe(statement.as_str()))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }

        fn classify(error: &sqlx::Error) -> ErrorClass {
            let Some(db) = error.as_database_error() else {
                return ErrorClass::Other;
            };
            let message = db.message();
            if message.starts_with("no such table") {
                ErrorClass::MissingTable
            } else if message.starts_with("no such column")
                || message.contains("has no column named")
            {
                ErrorClass::MissingColumn
            } else if db.is_unique_violation() {
                ErrorClass::UniqueViolation
            } else {
                ErrorClass::Other
            }
        }

        fn pool_options(url: &str) -> sqlx::pool::PoolOptions<Sqlite> {
            let options = super::session_pool_options();
            if is_in_memory(url) {
                // Each connection to an in-memory database is its own database: keep exactly one,
                // forever, or sessions would vanish with a recycled connection.
                options
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
            } else {
                options
            }
        }

        fn connect_options(url: &str) -> Result<SqliteConnectOptions, sqlx::Error> {
            let options: SqliteConnectOptions = url.parse()?;
            if is_in_memory(url) || is_read_only(url) {
                // Nothing to tune in memory, and a read-only file cannot switch journal modes.
                return Ok(options);
            }
            // sqlx's defaults (rollback journal, synchronous=FULL) make concurrent writers queue on
            // the file lock: about 80 times slower than WAL under a web server's concurrency (see
            // soak/README.md). WAL with synchronous=NORMAL is SQLite's recommendation for this
            // use; a committed session survives a crash of the process, and only a power loss can
            // undo the last commits. WAL stays set in the file, which Django reads as well.
            Ok(options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal))
        }
    }

    fn is_in_memory(url: &str) -> bool {
        url.contains(":memory:") || url.contains("mode=memory")
    }

    /// `mode=ro` or `immutable=1`/`true` in the URL's query (how sqlx reads them).
    fn is_read_only(url: &str) -> bool {
        let query = url.split_once('?').map_or("", |(_, query)| query);
        query
            .split('&')
            .any(|pair| matches!(pair, "mode=ro" | "immutable=1" | "immutable=true"))
    }
}
