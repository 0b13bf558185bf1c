//! [`SqlUserSource`]: users from the Django site's database (sqlx; PostgreSQL, MySQL/MariaDB,
//! SQLite).

use std::fmt;

use async_trait::async_trait;
use session_db::{DEFAULT_CONNECT_TIMEOUT, Dialect, is_identifier};
use sqlx::{AssertSqlSafe, Row as _, SqlSafeStr as _, SqlStr};
use time::OffsetDateTime;

use crate::AuthError;
use crate::user::{KeyKind, User, UserSource};

/// Where a user model lives: table and column names (Django's `db_table` and field columns).
///
/// [`UserModel::django`] is `django.contrib.auth.models.User` (`auth_user`); a custom
/// `AUTH_USER_MODEL` names its own table and columns:
///
/// ```
/// use session_auth::{KeyKind, UserModel};
///
/// // class Account(AbstractBaseUser): email = models.EmailField(unique=True);
/// //     USERNAME_FIELD = "email"; class Meta: db_table = "accounts"
/// let model = UserModel::custom("accounts", "id")
///     .with_username_column(Some("email"))
///     .with_is_active_column(None); // no is_active field: every user is active, as in Django
/// assert_eq!(model.table, "accounts");
/// assert_eq!(model.key_kind, KeyKind::Integer);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserModel {
    /// The table (`db_table`).
    pub table: String,
    /// The primary key column.
    pub key_column: String,
    /// How the primary key is parsed from the session.
    pub key_kind: KeyKind,
    /// The password hash column (`password` on `AbstractBaseUser`).
    pub password_column: String,
    /// The `is_active` column; `None` when the model has no such field (every user is active).
    pub is_active_column: Option<String>,
    /// The `USERNAME_FIELD` column, for [`Auth::authenticate`](crate::Auth::authenticate);
    /// `None` when logins by username are not needed.
    pub username_column: Option<String>,
    /// The `last_login` column, set on login; `None` when the model has none.
    pub last_login_column: Option<String>,
}

impl UserModel {
    /// Django's `auth_user` table.
    pub fn django() -> Self {
        UserModel {
            table: "auth_user".to_owned(),
            key_column: "id".to_owned(),
            key_kind: KeyKind::Integer,
            password_column: "password".to_owned(),
            is_active_column: Some("is_active".to_owned()),
            username_column: Some("username".to_owned()),
            last_login_column: Some("last_login".to_owned()),
        }
    }

    /// A custom user model in `table` with an integer primary key `key_column`; the other columns
    /// default to `AbstractBaseUser`'s (`password`, `last_login`) and `AbstractUser`'s
    /// (`is_active`, `username`). Change them with the `with_*` methods.
    pub fn custom(table: &str, key_column: &str) -> Self {
        UserModel {
            table: table.to_owned(),
            key_column: key_column.to_owned(),
            ..UserModel::django()
        }
    }

    /// Sets the primary key's kind.
    pub fn with_key_kind(mut self, kind: KeyKind) -> Self {
        self.key_kind = kind;
        self
    }

    /// Sets the password column.
    pub fn with_password_column(mut self, column: &str) -> Self {
        self.password_column = column.to_owned();
        self
    }

    /// Sets (or removes) the `is_active` column.
    pub fn with_is_active_column(mut self, column: Option<&str>) -> Self {
        self.is_active_column = column.map(str::to_owned);
        self
    }

    /// Sets (or removes) the `USERNAME_FIELD` column.
    pub fn with_username_column(mut self, column: Option<&str>) -> Self {
        self.username_column = column.map(str::to_owned);
        self
    }

    /// Sets (or removes) the `last_login` column.
    pub fn with_last_login_column(mut self, column: Option<&str>) -> Self {
        self.last_login_column = column.map(str::to_owned);
        self
    }

    /// Checks every name is a plain identifier (names are quoted into SQL).
    ///
    /// # Errors
    /// [`AuthError::Config`] naming the first unusable name.
    pub fn validate(&self) -> Result<(), AuthError> {
        let names = [
            Some(&self.table),
            Some(&self.key_column),
            Some(&self.password_column),
            self.is_active_column.as_ref(),
            self.username_column.as_ref(),
            self.last_login_column.as_ref(),
        ];
        for name in names.into_iter().flatten() {
            if !is_identifier(name) {
                return Err(AuthError::Config(format!(
                    "{name:?} is not a usable table or column name: use letters, digits and \
                     underscores, not starting with a digit, at most 63 characters"
                )));
            }
        }
        Ok(())
    }
}

/// A connection pool on one of the databases (each behind its cargo feature).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum UserPool {
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    /// MySQL / MariaDB.
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
}

#[cfg(feature = "postgres")]
impl From<sqlx::PgPool> for UserPool {
    fn from(pool: sqlx::PgPool) -> Self {
        UserPool::Postgres(pool)
    }
}

#[cfg(feature = "mysql")]
impl From<sqlx::MySqlPool> for UserPool {
    fn from(pool: sqlx::MySqlPool) -> Self {
        UserPool::MySql(pool)
    }
}

#[cfg(feature = "sqlite")]
impl From<sqlx::SqlitePool> for UserPool {
    fn from(pool: sqlx::SqlitePool) -> Self {
        UserPool::Sqlite(pool)
    }
}

impl UserPool {
    pub(crate) fn dialect(&self) -> Dialect {
        match *self {
            #[cfg(feature = "postgres")]
            UserPool::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "mysql")]
            UserPool::MySql(_) => Dialect::MySql,
            #[cfg(feature = "sqlite")]
            UserPool::Sqlite(_) => Dialect::Sqlite,
        }
    }
}

struct Statements {
    by_id: SqlStr,
    by_username: Option<SqlStr>,
    set_password: SqlStr,
    record_login: Option<SqlStr>,
}

fn sql_str(text: String) -> SqlStr {
    // Safe: built only from validated, quoted identifiers and placeholders.
    AssertSqlSafe(text).into_sql_str()
}

impl Statements {
    fn new(dialect: Dialect, model: &UserModel) -> Self {
        let q = |name: &str| dialect.quote(name);
        let p = |n: usize| dialect.placeholder(n);
        let text = match dialect {
            Dialect::MySql => "CHAR",
            Dialect::Postgres | Dialect::Sqlite => "TEXT",
        };
        let active = model.is_active_column.as_deref().map_or_else(
            || "'1'".to_owned(),
            |column| format!("CASE WHEN {} THEN '1' ELSE '0' END", q(column)),
        );
        let select = format!(
            "SELECT CAST({key} AS {text}), {password}, {active} FROM {table} WHERE ",
            key = q(&model.key_column),
            password = q(&model.password_column),
            table = q(&model.table),
        );
        let update = |column: &str| {
            format!(
                "UPDATE {} SET {} = {} WHERE {} = {}",
                q(&model.table),
                q(column),
                p(1),
                q(&model.key_column),
                p(2)
            )
        };
        Statements {
            by_id: sql_str(format!("{select}{} = {}", q(&model.key_column), p(1))),
            by_username: model
                .username_column
                .as_deref()
                .map(|column| sql_str(format!("{select}{} = {}", q(column), p(1)))),
            set_password: sql_str(update(&model.password_column)),
            record_login: model
                .last_login_column
                .as_deref()
                .map(|c| sql_str(update(c))),
        }
    }
}

/// A bound key or text parameter.
enum Param<'a> {
    Int(i64),
    Text(&'a str),
    At(OffsetDateTime),
}

/// Users from a Django site's database: `auth_user`, or a custom user model ([`UserModel`]), on
/// PostgreSQL, MySQL/MariaDB or SQLite. Runtime queries only; every name is validated and quoted.
///
/// ```no_run
/// use session_auth::{SqlUserSource, UserModel, UserSource};
///
/// # async fn demo() -> Result<(), session_auth::AuthError> {
/// let users = SqlUserSource::connect("postgres://app@127.0.0.1/site", &UserModel::django()).await?;
/// let user = users.user_by_id("42").await?;
/// # let _ = user; Ok(()) }
/// ```
pub struct SqlUserSource {
    pool: UserPool,
    model: UserModel,
    sql: Statements,
}

impl fmt::Debug for SqlUserSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlUserSource")
            .field("database", &self.pool.dialect())
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl SqlUserSource {
    /// Users of `model` through a pool you already have.
    ///
    /// # Errors
    /// [`AuthError::Config`] for an unusable table or column name.
    pub fn new(pool: impl Into<UserPool>, model: &UserModel) -> Result<Self, AuthError> {
        model.validate()?;
        let pool = pool.into();
        Ok(SqlUserSource {
            sql: Statements::new(pool.dialect(), model),
            pool,
            model: model.clone(),
        })
    }

    /// Connects to `url` (`postgres://`, `mysql://` / `mariadb://`, `sqlite:`), as the session
    /// stores do: the driver's own error at once, 5 s for a server that does not answer, the URL
    /// never in messages.
    ///
    /// # Errors
    /// [`AuthError::Config`] for a URL of a database whose feature is not enabled or an unusable
    /// name; [`AuthError::Source`] when the connection fails.
    pub async fn connect(url: &str, model: &UserModel) -> Result<Self, AuthError> {
        model.validate()?;
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        let failed = |e: session_db::DbError| AuthError::source(e);
        let pool: UserPool = match scheme {
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => {
                session_db::PgStore::connect_pool(url, DEFAULT_CONNECT_TIMEOUT)
                    .await
                    .map_err(failed)?
                    .into()
            }
            #[cfg(feature = "mysql")]
            "mysql" | "mariadb" => {
                session_db::MySqlStore::connect_pool(url, DEFAULT_CONNECT_TIMEOUT)
                    .await
                    .map_err(failed)?
                    .into()
            }
            #[cfg(feature = "sqlite")]
            "sqlite" => session_db::SqliteStore::connect_pool(url, DEFAULT_CONNECT_TIMEOUT)
                .await
                .map_err(failed)?
                .into(),
            _ => {
                return Err(AuthError::Config(format!(
                    "the user database URL has scheme {scheme:?}: use postgres://, mysql:// or \
                     sqlite: (with the matching session-auth feature enabled)"
                )));
            }
        };
        Self::new(pool, model)
    }

    /// The pool.
    pub fn pool(&self) -> &UserPool {
        &self.pool
    }

    /// The model.
    pub fn model(&self) -> &UserModel {
        &self.model
    }

    fn key_param<'a>(&self, id: &'a str) -> Result<Param<'a>, AuthError> {
        match self.model.key_kind {
            KeyKind::Integer => id
                .parse()
                .map(Param::Int)
                .map_err(|_| AuthError::InvalidUserId {
                    value: format!("{id:?}"),
                    expected: "integer",
                }),
            KeyKind::Text => Ok(Param::Text(id)),
        }
    }

    async fn fetch_user(&self, sql: &SqlStr, param: Param<'_>) -> Result<Option<User>, AuthError> {
        /// One row of `(key text, password, '1' | '0')`.
        macro_rules! fetch {
            ($pool:expr, $bind:path) => {{
                let query = $bind(sqlx::query(sql.clone()), param);
                match query.fetch_optional($pool).await {
                    Ok(Some(row)) => (|| {
                        Ok::<_, sqlx::Error>(Some((
                            row.try_get::<String, _>(0)?,
                            row.try_get::<String, _>(1)?,
                            row.try_get::<String, _>(2)?,
                        )))
                    })(),
                    Ok(None) => Ok(None),
                    Err(error) => Err(error),
                }
            }};
        }
        let row = match &self.pool {
            #[cfg(feature = "postgres")]
            UserPool::Postgres(pool) => fetch!(pool, bind_pg),
            #[cfg(feature = "mysql")]
            UserPool::MySql(pool) => fetch!(pool, bind_mysql),
            #[cfg(feature = "sqlite")]
            UserPool::Sqlite(pool) => fetch!(pool, bind_sqlite),
        }
        .map_err(AuthError::source)?;
        Ok(row.map(|(id, password, active)| User {
            id,
            password,
            is_active: active == "1",
            backend: None,
        }))
    }

    async fn execute(
        &self,
        sql: &SqlStr,
        value: Param<'_>,
        key: Param<'_>,
    ) -> Result<u64, AuthError> {
        macro_rules! execute {
            ($pool:expr, $bind:path) => {
                $bind($bind(sqlx::query(sql.clone()), value), key)
                    .execute($pool)
                    .await
                    .map(|done| done.rows_affected())
            };
        }
        match &self.pool {
            #[cfg(feature = "postgres")]
            UserPool::Postgres(pool) => execute!(pool, bind_pg),
            #[cfg(feature = "mysql")]
            UserPool::MySql(pool) => execute!(pool, bind_mysql),
            #[cfg(feature = "sqlite")]
            UserPool::Sqlite(pool) => execute!(pool, bind_sqlite),
        }
        .map_err(AuthError::source)
    }

    fn moment(&self, at: OffsetDateTime) -> Param<'static> {
        Param::At(session_core::expiry::to_python_datetime(at))
    }
}

#[cfg(feature = "postgres")]
type PgQuery<'q> =
    sqlx::query::Query<'q, sqlx::Postgres, <sqlx::Postgres as sqlx::Database>::Arguments>;
#[cfg(feature = "mysql")]
type MySqlQuery<'q> =
    sqlx::query::Query<'q, sqlx::MySql, <sqlx::MySql as sqlx::Database>::Arguments>;
#[cfg(feature = "sqlite")]
type SqliteQuery<'q> =
    sqlx::query::Query<'q, sqlx::Sqlite, <sqlx::Sqlite as sqlx::Database>::Arguments>;

#[cfg(feature = "postgres")]
fn bind_pg<'q>(query: PgQuery<'q>, param: Param<'q>) -> PgQuery<'q> {
    match param {
        Param::Int(n) => query.bind(n),
        Param::Text(text) => query.bind(text),
        Param::At(at) => query.bind(at),
    }
}

#[cfg(feature = "mysql")]
fn bind_mysql<'q>(query: MySqlQuery<'q>, param: Param<'q>) -> MySqlQuery<'q> {
    match param {
        Param::Int(n) => query.bind(n),
        Param::Text(text) => query.bind(text),
        // datetime(6) holds naive UTC, as Django writes it with USE_TZ=True.
        Param::At(at) => query.bind(time::PrimitiveDateTime::new(at.date(), at.time())),
    }
}

#[cfg(feature = "sqlite")]
fn bind_sqlite<'q>(query: SqliteQuery<'q>, param: Param<'q>) -> SqliteQuery<'q> {
    match param {
        Param::Int(n) => query.bind(n),
        Param::Text(text) => query.bind(text),
        // Django's SQLite text for an aware datetime: naive UTC `str(datetime)`.
        Param::At(at) => query.bind(session_db::sqlite_text(at)),
    }
}

#[async_trait]
impl UserSource for SqlUserSource {
    fn key_kind(&self) -> KeyKind {
        self.model.key_kind
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, AuthError> {
        let key = self.key_param(id)?;
        self.fetch_user(&self.sql.by_id, key).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<User>, AuthError> {
        let Some(sql) = &self.sql.by_username else {
            return Err(AuthError::Config(
                "the user model has no username column: set UserModel::username_column to its \
                 USERNAME_FIELD column"
                    .to_owned(),
            ));
        };
        self.fetch_user(sql, Param::Text(username)).await
    }

    async fn set_password(&self, id: &str, encoded: &str) -> Result<(), AuthError> {
        let key = self.key_param(id)?;
        self.execute(&self.sql.set_password, Param::Text(encoded), key)
            .await
            .map(drop)
    }

    async fn record_login(&self, id: &str, at: OffsetDateTime) -> Result<(), AuthError> {
        let Some(sql) = &self.sql.record_login else {
            return Ok(());
        };
        let key = self.key_param(id)?;
        self.execute(sql, self.moment(at), key).await.map(drop)
    }
}
