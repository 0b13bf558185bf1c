//! Django's database session backend (`django.contrib.sessions.backends.db`) on PostgreSQL,
//! MySQL/MariaDB and SQLite, through [sqlx].
//!
//! A [`DbStore`] reads and writes Django's own `django_session` table, with Django's row format, so
//! a Rust service and a Django site pointed at the same database share live sessions: log in on
//! one, stay logged in on the other.
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{Session, SessionConfig, SessionStore};
//! use session_db::SqliteStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let config = Arc::new(SessionConfig::new("the Django site's SECRET_KEY"));
//! let store = SqliteStore::connect("sqlite::memory:", &config).await?;
//! store.ensure_schema().await?;
//! let store = Arc::new(store);
//!
//! let session = Session::new(store.clone(), config.clone(), None);
//! session.insert("_auth_user_id", "42").await?;
//! session.save().await?;
//! let key = session.key().expect("saved");
//!
//! // The row is Django's: key, signed data, expiry.
//! let row = store.row(key.as_str()).await?.expect("stored");
//! assert_eq!(row.to_string(), key.as_str());
//! assert_eq!(row.get_decoded(store.codec()).get("_auth_user_id"), Some(&"42".into()));
//!
//! // A later request presenting the cookie.
//! let again = Session::new(store.clone(), config, Some(key.as_str()));
//! assert_eq!(again.get::<String>("_auth_user_id").await?.as_deref(), Some("42"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Databases
//!
//! One cargo feature per database: `sqlite` (the default, embedded), `postgres`, `mysql` (which
//! covers MariaDB). Build a store from a pool you already have ([`DbStore::new`] with a
//! [`sqlx::PgPool`], [`sqlx::MySqlPool`] or [`sqlx::SqlitePool`]) or from a URL
//! ([`DbStore::connect`]):
//!
//! | database | URL | store |
//! |---|---|---|
//! | PostgreSQL | `postgres://user:password@127.0.0.1:5432/db` (a schema: `?options=-c%20search_path%3Dmyschema`) | [`PgStore`] |
//! | MySQL / MariaDB | `mysql://user:password@127.0.0.1:3306/db` | [`MySqlStore`] |
//! | SQLite | `sqlite://path/to/db.sqlite3` (`?mode=rwc` to create the file), `sqlite::memory:` | [`SqliteStore`] |
//!
//! A URL that cannot work fails [`DbStore::connect`] at once with the driver's own reason, as
//! [`DbError::Connect`]: connection refused, unknown host, authentication failed, unknown database
//! or role, SQLite file missing or not openable, malformed URL. A server that does not answer is
//! given up on after [`DEFAULT_CONNECT_TIMEOUT`] (5 s; [`DbStore::connect_pool`] takes another).
//! Nothing is retried (a bare sqlx pool retries a refused connection for 30 s and then says only
//! "pool timed out"), and the message never includes the URL, which may hold a password.
//!
//! A SQLite file opened from a URL gets `journal_mode=WAL` and `synchronous=NORMAL` (sqlx's own
//! defaults, a rollback journal with `synchronous=FULL`, make concurrent requests queue on the file
//! lock: about 80 times slower in the soak test). WAL is a property of the file, kept after the
//! store closes; Django and the `sqlite3` shell read such a file as usual. URLs with `mode=ro` or
//! `immutable=1` and in-memory databases are left as they are; for other settings, build a
//! [`sqlx::SqlitePool`] yourself and pass it to [`DbStore::new`].
//!
//! ## Connections
//!
//! Each load or save is one statement. sqlx pings every connection it gets back into its pool (a
//! round trip to the server, from a task it spawns), so a store that gave its connection back
//! after each statement would make two round trips per statement. A store therefore keeps the
//! connection its statement completed on for its next statement, for at most
//! [`KEEP_CONNECTION_FOR`] (100 ms) after it took it from the pool, and the pool stays usable by
//! the rest of your application:
//! - at most `max_connections - 1` connections are kept idle (none with a one-connection pool),
//!   so your own queries on a shared pool never wait on connections the store is merely holding;
//! - idle kept connections go back to the pool within about 200 ms, where sqlx's own checks
//!   (ping, `max_lifetime`, `idle_timeout`) apply as usual;
//! - a statement that fails or is cancelled gives its connection back to sqlx, which pings it;
//! - when more of the store's statements run at once than the pool has connections, a completed
//!   statement hands its connection to the one that has waited longest;
//! - [`sqlx::Pool::close`] does not wait on the store: once the pool is closed nothing is kept.
//!
//! Kept connections count as in use in sqlx's figures: right after a burst of session traffic,
//! [`sqlx::Pool::num_idle`] reads lower than the connections actually idle, for up to about
//! 200 ms.
//!
//! A connection handed out by sqlx is pinged first only when it has been idle for more than
//! [`PING_IF_IDLE_FOR`] (500 ms; sqlx pings every time), so a connection the server closed while
//! idle is replaced before a statement runs on it.
//!
//! One generic type, `DbStore<Database, Model>`, serves all three, rather than one type per
//! database: the semantics (what a load, a must-create or an update means, how expiry is
//! compared, how errors are explained) are the delicate part and exist once, while what really
//! differs (placeholders, how an `expire_date` is bound, which error codes mean "no such table",
//! whether DDL is transactional) is a small sealed [`Backend`] trait implemented for
//! [`sqlx::Postgres`], [`sqlx::MySql`] and [`sqlx::Sqlite`]. The aliases give each database a
//! plain name, and a service that supports several databases can be generic over [`Backend`].
//!
//! # The table
//!
//! Django's model `Session` (migration `sessions.0001_initial`), table `django_session` by default
//! ([`DbStore::with_table`] for another name):
//!
//! | column | PostgreSQL | MySQL / MariaDB | SQLite |
//! |---|---|---|---|
//! | `session_key` (primary key) | `varchar(40)` | `varchar(40)` | `varchar(40)` |
//! | `session_data` | `text` | `longtext` | `text` |
//! | `expire_date` (indexed) | `timestamp with time zone` | `datetime(6)` | `datetime` |
//!
//! [`DbStore::ensure_schema`] creates the table when it is missing with exactly the statements
//! Django's migration runs ([`DbStore::schema_sql`]), index names included
//! (`django_session_expire_date_a5c62663`, and on PostgreSQL the pattern-ops index
//! `django_session_session_key_c0390e0f_like`), so Django can adopt a table we created
//! (`manage.py migrate sessions --fake-initial`). A table that exists is left alone once it is
//! checked to have every column; a missing table or column is reported as such
//! ([`DbError::MissingTable`], [`DbError::MissingColumn`]), never as a bare driver error.
//!
//! `expire_date` is stored as Django stores it with `USE_TZ=True`: an aware timestamp on
//! PostgreSQL; naive UTC on MySQL (`datetime(6)`); naive UTC text on SQLite,
//! `YYYY-MM-DD HH:MM:SS[.ffffff]` with the microseconds omitted when zero (SQLite compares the text,
//! so the format is exactly Python's `str(datetime)`). Every moment is truncated to microseconds,
//! as Python's datetimes are.
//!
//! # Semantics (Django's, plus the races Django leaves open)
//!
//! - **load** returns the row only while `expire_date > now`, `now` being the application's clock
//!   passed as a parameter, as Django does ([`DbStore::with_clock`] replaces it). A corrupt
//!   `session_data` loads as an empty session, with Django's `Session data corrupted` warning.
//!   Loading never writes.
//! - **exists** ignores expiry, like Django: an expired row not yet cleared still holds its key.
//! - **must-create** is a plain `INSERT`; the primary key makes it atomic, and a duplicate key is
//!   [`session_core::Error::CreateConflict`].
//! - **update** is `UPDATE ... WHERE session_key = ? AND expire_date > now`. No row matched means
//!   the session was deleted (logout elsewhere) or expired meanwhile:
//!   [`session_core::Error::SessionDeleted`], never a re-insert. The expiry condition goes beyond
//!   Django, which would revive an expired row not yet cleared. On MySQL an `UPDATE` that writes
//!   identical values reports zero *changed* rows unless the client sets `CLIENT_FOUND_ROWS`; sqlx
//!   always sets it, so the count is of matched rows, and a test pins this.
//! - **clear_expired** deletes the rows expired as of one moment in bounded batches
//!   ([`DbStore::with_clear_batch_size`], default [`DEFAULT_CLEAR_BATCH_SIZE`] rows), each its own
//!   short statement through Django's `expire_date` index: `DELETE ... WHERE expire_date < now
//!   LIMIT n` on MySQL/MariaDB, `DELETE ... WHERE session_key IN (SELECT session_key ... LIMIT n)`
//!   elsewhere, until a batch comes back short. Clearing ten million rows therefore takes no long
//!   lock and no huge transaction, and loads go on meanwhile (measured in the README);
//!   [`DbStore::clear_expired_rows_with_progress`] reports the running total after each batch.
//!   Django's single `DELETE` would hold one transaction for the whole table.
//!   [`DbStore::with_clear_pause`] waits between batches (none by default): each batch takes
//!   CPU and I/O from the loads the database serves meanwhile, and a pause spreads that out (the
//!   README's "Operations" section has the figures for PostgreSQL and MariaDB, and the server
//!   settings MariaDB needs).
//! - Keys longer than 40 characters or containing NUL cannot be in the table: they load nothing
//!   and are never sent to the database; creating one is [`DbError::KeyTooLong`] /
//!   [`DbError::KeyHasNul`].
//! - On MySQL/MariaDB the key comparison follows the column's collation, as it does for Django: with
//!   the usual case-insensitive, pad-space collations, `ABC` and `abc ` name the row `abc`.
//!   Generated keys are lowercase, so only a client that already holds a key can do this.
//!
//! # Concurrency policies
//!
//! Every [`DbStore`] (each database, any [`SessionModel`]) and [`AnyDbStore`] can
//! compare-and-swap, so the `merge` and `reject`
//! [concurrency policies](session_core::ConcurrencyPolicy) work on it. The version a request reads
//! is the row's `session_data` and `expire_date` as stored, and the save is one statement:
//!
//! | database | compare-and-swap |
//! |---|---|
//! | PostgreSQL, SQLite | `UPDATE … SET session_data = $1, expire_date = $2[, extras] WHERE session_key = $k AND expire_date > now AND session_data = <read> AND expire_date = <read>` |
//! | MySQL / MariaDB | the same, with `session_data = CAST(? AS BINARY)` |
//!
//! - **Atomic** because it is one `UPDATE`: the database locks the row, and a concurrent writer's
//!   commit makes the condition false (PostgreSQL re-checks it on the newest row version, InnoDB
//!   reads the latest committed row, SQLite writes one at a time).
//! - **Byte for byte.** MySQL compares strings by the column's collation, case-insensitive and
//!   pad-space by default, under which a different text could pass for the one read; the binary
//!   operand makes it bytewise. PostgreSQL's deterministic collations and SQLite's default compare
//!   bytes already. On SQLite `expire_date` is compared as the text stored.
//! - **Why `expire_date` too.** Two saves of the same data within one second write the same
//!   `session_data` (the signature's timestamp counts seconds), so the data alone would let a save
//!   over a version read before both succeed. Every save, ours and Django's, sets `expire_date`
//!   to now plus the age, to the microsecond (or to a fixed date that is in the data), so
//!   together they change on every write; the only exception rewrites the row identically, and
//!   overwriting that loses nothing.
//! - **Other writers are detected**, whatever they are: a last-write-wins save of ours, a Django
//!   site sharing the table (its `save()` rewrites `session_data` and `expire_date`;
//!   `tests/concurrency.rs` runs real Django between our load and our save), SQL run by hand.
//! - **Conflict or deleted.** When the update matches no row, one more primary-key query
//!   (`SELECT 1 … WHERE session_key = ? AND expire_date > now`, with the same `now`) tells a live
//!   row that changed ([`Error::Conflict`](session_core::Error::Conflict)) from a session deleted
//!   or expired ([`Error::SessionDeleted`](session_core::Error::SessionDeleted)); a row deleted
//!   between the two is reported deleted, which it is. Nothing is ever re-inserted.
//! - **Costs.** The versioned load is the same one query as any load. A swap that wins is one
//!   statement, like a plain update; it carries the data it read as a parameter, so a 32 KB
//!   session sends 64 KB (comparing the whole text is exact and portable; a digest would need a
//!   hash function SQLite lacks, computed on every swap). A swap that loses costs a second query,
//!   and under `merge` another load and swap per retry. The request also keeps the text it read
//!   (about the size of the session) until it saves. `last_write_wins` (the default) runs exactly
//!   the statements it always did.
//!
//! # Custom session models
//!
//! Django projects add columns to the session table (an indexed `account_id`, say) by subclassing
//! `AbstractBaseSession` and overriding `create_model_instance`. Implement [`SessionModel`] to do
//! the same: it declares the [`ExtraColumn`]s (created by [`DbStore::ensure_schema`] with Django's
//! types and index names) and computes their [`ColumnValue`]s from the session data on every insert
//! and update. Values are checked against the declared types before anything is written.
//! A custom model's `get_session_cookie_age()` override corresponds to
//! [`SessionConfig::cookie_age`](session_core::SessionConfig).
//!
//! # Sharing sessions with a Django site
//!
//! - the same database and table (`SESSION_ENGINE = "django.contrib.sessions.backends.db"`, or
//!   `cached_db`, whose rows are the same);
//! - the same `SECRET_KEY` ([`SessionConfig::secret_key`](session_core::SessionConfig)), and
//!   `SECRET_KEY_FALLBACKS` if any;
//! - the same serializer (Django's default JSON is ours);
//! - `USE_TZ = True` (Django's default since 5.0): with `USE_TZ = False` Django stores local time
//!   and the two sides would disagree about expiry by the UTC offset;
//! - the same cookie name and age, for the middleware.
//!
//! Both directions are checked against real Django 5.2 on all three databases by
//! `fixtures/django/generate_db.py` (see `tests/django_interop.rs`).
//!
//! # Performance
//!
//! `cargo bench -p session-db` measures this crate against its floor (see `benches/`); the figures,
//! with their dates and machines, are in `benches/README.md` beside the benches, and the
//! comparison with Django and tower-sessions in the workspace's `bench/README.md`.

mod any;
mod backend;
mod connections;
mod error;
mod model;
mod schema;
mod store;
mod timestamp;

pub use any::AnyDbStore;
pub use backend::{Backend, PING_IF_IDLE_FOR};
pub use connections::KEEP_CONNECTION_FOR;
pub use error::DbError;
pub use model::{ColumnType, ColumnValue, DjangoSession, ExtraColumn, SessionModel};
pub use schema::{
    DEFAULT_TABLE, Dialect, MAX_KEY_CHARS, create_table_sql, django_index_name, is_identifier,
};
pub use store::{
    DEFAULT_CLEAR_BATCH_SIZE, DEFAULT_CONNECT_TIMEOUT, DbStore, SchemaStatus, SessionRow,
};
pub use timestamp::sqlite_text;

/// The store on PostgreSQL.
#[cfg(feature = "postgres")]
pub type PgStore<M = DjangoSession> = DbStore<sqlx::Postgres, M>;

/// The store on MySQL or MariaDB.
#[cfg(feature = "mysql")]
pub type MySqlStore<M = DjangoSession> = DbStore<sqlx::MySql, M>;

/// The store on SQLite.
#[cfg(feature = "sqlite")]
pub type SqliteStore<M = DjangoSession> = DbStore<sqlx::Sqlite, M>;

/// Re-exported so users name one sqlx.
pub use sqlx;
