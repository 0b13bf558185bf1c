//! The crate's error type.

/// What can go wrong in the database store. Converted into [`session_core::Error::Store`] at the
/// [`SessionStore`](session_core::SessionStore) boundary (save conflicts become
/// [`session_core::Error::CreateConflict`] and [`session_core::Error::SessionDeleted`] instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The table name cannot be used.
    #[error(
        "invalid table name {name:?}: use ASCII letters, digits and underscores, not starting with \
         a digit, at most 63 characters (select another schema through the connection URL)"
    )]
    InvalidTableName {
        /// The rejected name.
        name: String,
    },

    /// A custom model declares a column name that cannot be used.
    #[error(
        "invalid column name {name:?} in the session model: use ASCII letters, digits and \
         underscores, not starting with a digit, at most 63 characters"
    )]
    InvalidColumnName {
        /// The rejected name.
        name: String,
    },

    /// A custom model declares one of Django's columns, or one column twice.
    #[error(
        "the session model declares column {name:?} twice or as one of Django's own \
         (session_key, session_data, expire_date): give each extra column its own name"
    )]
    DuplicateColumn {
        /// The repeated name.
        name: String,
    },

    /// The session table does not exist.
    #[error(
        "table {table} does not exist: run DbStore::ensure_schema(), or Django's \
         `manage.py migrate sessions` on the Django site sharing this database"
    )]
    MissingTable {
        /// The table.
        table: String,
    },

    /// The session table lacks a column the store needs.
    #[error(
        "table {table} has no column {column}: run ensure_schema on a new table, or Django's \
         `manage.py migrate` (for a custom session model, migrate the app that defines it)"
    )]
    MissingColumn {
        /// The table.
        table: String,
        /// The first missing column.
        column: String,
    },

    /// The key is longer than `session_key varchar(40)` holds, so no row can have it.
    #[error(
        "a session key of {chars} characters cannot be stored: {table}.session_key is \
         varchar(40); use the keys Session generates (32 characters)"
    )]
    KeyTooLong {
        /// The table.
        table: String,
        /// The key's length in characters.
        chars: usize,
    },

    /// The key holds a NUL character, which PostgreSQL text cannot store (and no cookie carries).
    #[error("a session key containing a NUL character cannot be stored: use generated keys")]
    KeyHasNul,

    /// A custom model returned the wrong number of values.
    #[error(
        "the session model returned {got} values for its {expected} extra columns: return one \
         value per column, in the order of extra_columns()"
    )]
    ExtraValueCount {
        /// How many columns the model declares.
        expected: usize,
        /// How many values it returned.
        got: usize,
    },

    /// A custom model returned a value that does not fit its column.
    #[error("extra column {column}: {reason}")]
    ExtraValue {
        /// The column.
        column: String,
        /// Why the value does not fit.
        reason: String,
    },

    /// A stored `expire_date` is not a datetime Django writes.
    #[error(
        "{table}.expire_date holds {value:?}, which is not a datetime Django writes \
         (YYYY-MM-DD HH:MM:SS[.ffffff], UTC): fix or delete that row"
    )]
    BadExpireDate {
        /// The table.
        table: String,
        /// The stored text.
        value: String,
    },

    /// A must-create insert hit a unique constraint of a custom column, not the session key.
    #[error(
        "creating a session in {table} violated a unique constraint other than the session key \
         (a unique extra column?): {source}"
    )]
    ExtraUniqueViolation {
        /// The table.
        table: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// The database could not be reached.
    #[error(
        "could not connect to the session database: {source} (URLs look like \
         postgres://user:password@127.0.0.1:5432/db, mysql://user@127.0.0.1:3306/db, \
         sqlite://path/to/db.sqlite3?mode=rwc or sqlite::memory:)"
    )]
    Connect {
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// The session settings cannot be used (an empty secret, ...): see
    /// [`SessionConfig::validate`](session_core::SessionConfig::validate).
    #[error("the database store cannot start: {0}")]
    Config(#[source] session_core::Error),

    /// A URL names no database this build supports.
    #[error(
        "the database URL scheme {scheme:?} is not supported: use one of {compiled} (enable the \
         session-db feature postgres, mysql or sqlite for the others)"
    )]
    UnsupportedUrl {
        /// The URL's scheme (never the whole URL, which may hold a password).
        scheme: String,
        /// The URL prefixes this build accepts.
        compiled: String,
    },

    /// Any other database failure.
    #[error("database error on session table {table}: {source}")]
    Database {
        /// The table.
        table: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}

impl From<DbError> for session_core::Error {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Config(inner) => inner,
            other => session_core::Error::store(other),
        }
    }
}
