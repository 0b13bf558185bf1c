//! Log out everywhere: list and revoke every session of a user, without altering Django's
//! `django_session` table.
//!
//! | engine | type | how a user's sessions are found |
//! |---|---|---|
//! | db | [`UserSessions`] | a custom session model's user column ([`with_user_column`](UserSessions::with_user_column)) if the site has one; else the side table ([`with_index`](UserSessions::with_index)) and the scan |
//! | cached-db | [`UserSessions`] + [`with_cache`](UserSessions::with_cache) | as db, in the database (the source of truth); revoke also deletes the cache entries |
//! | cache (Redis) | `RedisUserSessions` (feature `redis`) | a per-user Redis set and a `SCAN` of the session keys |
//! | file | `FileUserSessions` (feature `file`) | no index: every session file is read and verified |
//! | signed_cookies | — | not possible: the sessions live in browsers and can only be outlived (rotate `SECRET_KEY`, or change the user's password so `_auth_user_hash` stops verifying) |
//!
//! On the database engines, three ways to find a user's sessions:
//!
//! - **A user column** of a custom session model (`session_db::SessionModel`, as Django's
//!   documented `account_id = IntegerField(null=True, db_index=True)`): Django and this crate
//!   fill it on every save, so one indexed `WHERE <column> = ?` query finds every session,
//!   Django's logins included. The best option where a site has (or can add) such a model.
//! - **The index**: a side table, `djsession_user_session (user_id, session_key)` by default,
//!   primary key `(user_id, session_key)`, that [`UserSessions::record`] fills after a login made
//!   here and [`UserSessions::forget`] empties on logout. Django's own table is never altered.
//!   Looking a user up costs one index range read, whatever the number of sessions.
//! - **The scan**: sessions Django logged in are in no index of ours, so [`UserSessions::list`]
//!   and [`UserSessions::revoke`] also read every live row, in batches of
//!   [`UserSessions::with_batch_size`] (default 1,000) ordered by `session_key`, verify and decode
//!   each, and keep those whose `_auth_user_id` is the user. Its cost is a read and an HMAC
//!   check (plus JSON decoding) of every live session: linear in the table, independent of the
//!   user. Turn it off with [`UserSessions::with_scan(false)`](UserSessions::with_scan) once every
//!   login goes through the index (a user column turns it off by itself).
//!
//! Revoking deletes the rows found (in chunks), then their cache entries (cached-db), then their
//! index entries. Index entries of sessions that expired or were deleted elsewhere are ignored
//! by `list` (the join finds no live row) and removed by the user's next `revoke`.
//!
//! On Redis the same two halves: a set per user
//! (`<KEY_PREFIX>:<VERSION>:djsession.auth.user_sessions:<user id>`) kept on login and logout
//! and pruned of entries that expired, and a `SCAN … MATCH` of the session keys that `MGET`s each
//! batch and decodes the pickled values (see `RedisUserSessions`; on a Redis Cluster only the
//! set works, `SCAN` reaching one node).
//!
//! Measured on the 2-core development VM shared with other builds (2026-12-06, release build,
//! one user's 1,000 sessions among 1,000,000; `cargo bench -p session-auth --bench revoke` on a
//! SQLite file, `cargo bench -p session-auth --features redis --bench revoke_redis` on the local
//! Redis 7.0):
//!
//! | | list | revoke |
//! |---|---|---|
//! | SQLite, user column ([`with_user_column`](UserSessions::with_user_column)) | 4.6 ms | 41 ms |
//! | SQLite, index only ([`with_scan(false)`](UserSessions::with_scan)) | 17 ms | 59 ms |
//! | SQLite, scan (Django's logins; no index entries) | 9.7 s | 10.5 s |
//! | Redis, set only (`with_scan(false)`) | 122 ms | 236 ms |
//! | Redis, scan (Django's logins; no set) | 6.6 s | 5.5 s |
//!
//! All delete exactly the user's 1,000 sessions (the benchmarks assert the other 999,000
//! remain). Figures move with the load of the shared VM (an earlier run of the SQLite scan took
//! 18.6 s); their ratios are what matters. The SQLite scan costs about 10 µs per live session
//! (a read, an HMAC check and a JSON decode), the Redis scan about 6 µs per key (`SCAN`, `MGET`
//! and an unpickle; Redis values are not signed, so there is no HMAC). The file engine, which
//! has no index, reads every file: 1.1 s to list or revoke 1,000 sessions among 100,000 files,
//! about 11 µs per file (`cargo bench -p session-auth --features file --bench revoke_file`, same
//! VM and day, on the VM's ext4 disk). Run scans from a job, not a request, on large stores.

use std::collections::BTreeMap;

#[cfg(feature = "redis")]
mod cache;
#[cfg(feature = "file")]
mod file;
#[cfg(feature = "redis")]
pub use cache::{RedisUserSessions, USER_SET_PREFIX};
#[cfg(feature = "file")]
pub use file::FileUserSessions;

use session_cache::Cache;
use session_core::{Dict, Session, SessionCodec, SessionConfig, SessionKey, Value};
use session_db::{ColumnType, Dialect, SessionModel, is_identifier};
use sqlx::{AssertSqlSafe, Row as _, SqlSafeStr as _, SqlStr};
use time::OffsetDateTime;

use crate::user::KeyKind;
use crate::{AuthError, SESSION_KEY, UserPool};

/// The default name of the index table.
pub const DEFAULT_INDEX_TABLE: &str = "djsession_user_session";

/// One session of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSession {
    /// The session key, redacted (its first characters): keys are credentials.
    pub key: String,
    /// When the row expires (`expire_date`).
    pub expire_date: OffsetDateTime,
    /// When the session data was last written: the signing timestamp inside `session_data`.
    pub last_change: Option<OffsetDateTime>,
}

/// Lists and revokes a user's sessions in a `django_session` table (see the module docs).
pub struct UserSessions {
    pool: UserPool,
    codec: SessionCodec,
    key_kind: KeyKind,
    dialect: Dialect,
    table: String,
    index: Option<String>,
    user_column: Option<UserColumn>,
    cache: Option<(Cache, String)>,
    scan: bool,
    batch: u32,
}

impl std::fmt::Debug for UserSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSessions")
            .field("table", &self.table)
            .field("index", &self.index)
            .field("user_column", &self.user_column)
            .field("cache", &self.cache)
            .field("scan", &self.scan)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

/// An extra column of the session model holding the user id.
#[derive(Debug, Clone)]
struct UserColumn {
    name: String,
    integer: bool,
}

/// A query parameter: the user id as the user column's type wants it, or a key bound as text.
#[derive(Clone, Copy)]
enum Param<'a> {
    Text(&'a str),
    Integer(i64),
}

/// A row read by the scan.
struct Row {
    key: String,
    data: String,
    expire_date: OffsetDateTime,
}

impl UserSessions {
    /// Sessions in `table` (Django's `django_session` unless a custom session model says
    /// otherwise) on `pool`, decoded with `config`'s secrets, user ids parsed as `key_kind`. No
    /// index: everything is found by scanning; add one with [`with_index`](Self::with_index).
    ///
    /// # Errors
    /// [`AuthError::Config`] for an unusable table name or session configuration.
    pub fn new(
        pool: impl Into<UserPool>,
        table: &str,
        key_kind: KeyKind,
        config: &SessionConfig,
    ) -> Result<Self, AuthError> {
        if !is_identifier(table) {
            return Err(AuthError::Config(format!(
                "{table:?} is not a usable table name"
            )));
        }
        let pool = pool.into();
        Ok(UserSessions {
            dialect: pool.dialect(),
            pool,
            codec: SessionCodec::new(config)?,
            key_kind,
            table: table.to_owned(),
            index: None,
            user_column: None,
            cache: None,
            scan: true,
            batch: 1_000,
        })
    }

    /// Keeps the index in `table` ([`DEFAULT_INDEX_TABLE`] is the usual name); create it with
    /// [`ensure_index`](Self::ensure_index).
    ///
    /// # Errors
    /// [`AuthError::Config`] for an unusable table name.
    pub fn with_index(mut self, table: &str) -> Result<Self, AuthError> {
        if !is_identifier(table) {
            return Err(AuthError::Config(format!(
                "{table:?} is not a usable table name"
            )));
        }
        self.index = Some(table.to_owned());
        Ok(self)
    }

    /// Finds the user's sessions through `column`, an extra column of the site's custom session
    /// model (`session_db::SessionModel`, as Django's documented `account_id =
    /// IntegerField(null=True, db_index=True)` filled from `_auth_user_id`): one `WHERE <column>
    /// = ?` query, instead of the side table. Both Django and this crate fill the column on every
    /// save, so Django's logins are found too and the scan is turned off; turn it back on with
    /// [`with_scan(true)`](Self::with_scan) afterwards if rows saved before the column existed
    /// must be found. Index the column (`ExtraColumn::indexed`) or the query reads the table.
    /// Rows found are still verified and decoded, so a row whose column disagrees with its
    /// signed data is not the user's.
    ///
    /// # Errors
    /// [`AuthError::Config`] when `model` has no extra column `column`, or it is neither an
    /// integer nor a text column.
    pub fn with_user_column(
        mut self,
        model: &impl SessionModel,
        column: &str,
    ) -> Result<Self, AuthError> {
        let found = model
            .extra_columns()
            .iter()
            .find(|c| c.name() == column)
            .ok_or_else(|| {
                AuthError::Config(format!(
                    "the session model {model:?} has no extra column {column:?}"
                ))
            })?;
        let integer = match found.column_type() {
            ColumnType::Integer | ColumnType::BigInteger => true,
            ColumnType::Text | ColumnType::VarChar(_) => false,
            other => {
                return Err(AuthError::Config(format!(
                    "the user column {column:?} is a {other} column: it must hold user ids as \
                     integers or text"
                )));
            }
        };
        if !is_identifier(column) {
            return Err(AuthError::Config(format!(
                "{column:?} is not a usable column name"
            )));
        }
        self.user_column = Some(UserColumn {
            name: column.to_owned(),
            integer,
        });
        self.scan = false;
        Ok(self)
    }

    /// The cached_db engine: `revoke` also deletes each removed session's entry from `cache`
    /// under `session_key_prefix` (Django's is `django.contrib.sessions.cached_db`,
    /// `session_cached_db::CACHED_DB_KEY_PREFIX`: pass the store's `cache()` and
    /// `session_key_prefix()`), so a revoked
    /// session is not served from the cache until it expires there. Rows are deleted first, then
    /// the entries, as Django's `cached_db` `delete` leaves no row to reload afterwards.
    pub fn with_cache(mut self, cache: Cache, session_key_prefix: impl Into<String>) -> Self {
        self.cache = Some((cache, session_key_prefix.into()));
        self
    }

    /// Whether `list` and `revoke` also scan the table for sessions the index does not know
    /// (default true: Django's logins are never indexed).
    pub fn with_scan(mut self, scan: bool) -> Self {
        self.scan = scan;
        self
    }

    /// Rows read per scan query (default 1,000; at least 1).
    pub fn with_batch_size(mut self, rows: u32) -> Self {
        self.batch = rows.max(1);
        self
    }

    fn q(&self, name: &str) -> String {
        self.dialect.quote(name)
    }

    fn p(&self, n: usize) -> String {
        self.dialect.placeholder(n)
    }

    /// Creates the index table if it is missing.
    ///
    /// # Errors
    /// [`AuthError::Config`] without an index; [`AuthError::Source`] when the database fails.
    pub async fn ensure_index(&self) -> Result<(), AuthError> {
        let index = self.index_table()?;
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} (user_id varchar(255) NOT NULL, session_key varchar(40) \
             NOT NULL, PRIMARY KEY (user_id, session_key))",
            self.q(index)
        );
        self.execute(&sql, &[]).await.map(drop)
    }

    fn index_table(&self) -> Result<&str, AuthError> {
        self.index.as_deref().ok_or_else(|| {
            AuthError::Config("no index table: call with_index(DEFAULT_INDEX_TABLE)".to_owned())
        })
    }

    /// Indexes `session` as a session of `user_id`; call it after [`Auth::login`](crate::Auth::login).
    /// A session without a key yet (login flushed it) is saved first, so the key indexed is the
    /// one its cookie will carry.
    ///
    /// # Errors
    /// [`AuthError::Config`] without an index; session and database failures.
    pub async fn record(&self, session: &Session, user_id: &str) -> Result<(), AuthError> {
        let index = self.index_table()?;
        if session.key().is_none() {
            session.save().await?;
        }
        let Some(key) = session.key() else {
            return Ok(());
        };
        let delete = format!(
            "DELETE FROM {} WHERE user_id = {} AND session_key = {}",
            self.q(index),
            self.p(1),
            self.p(2)
        );
        let insert = format!(
            "INSERT INTO {} (user_id, session_key) VALUES ({}, {})",
            self.q(index),
            self.p(1),
            self.p(2)
        );
        self.execute(&delete, &[user_id, key.as_str()]).await?;
        self.execute(&insert, &[user_id, key.as_str()])
            .await
            .map(drop)
    }

    /// Drops the index entries of session `key` (on logout: call it before
    /// [`Auth::logout`](crate::Auth::logout), while the key is known).
    ///
    /// # Errors
    /// [`AuthError::Config`] without an index; database failures.
    pub async fn forget(&self, key: &SessionKey) -> Result<(), AuthError> {
        let index = self.index_table()?;
        let sql = format!(
            "DELETE FROM {} WHERE session_key = {}",
            self.q(index),
            self.p(1)
        );
        self.execute(&sql, &[key.as_str()]).await.map(drop)
    }

    /// The live sessions of user `user_id`, by key.
    ///
    /// # Errors
    /// Database failures.
    pub async fn list(&self, user_id: &str) -> Result<Vec<UserSession>, AuthError> {
        let found = self.find(user_id).await?;
        Ok(found
            .into_iter()
            .map(|(key, row)| UserSession {
                key: session_core::redact(&key),
                expire_date: row.expire_date,
                last_change: last_change(&row.data),
            })
            .collect())
    }

    /// Deletes every live session of user `user_id` and its index entries; returns how many
    /// sessions were removed.
    ///
    /// # Errors
    /// Database failures (sessions deleted before the failure stay deleted).
    pub async fn revoke(&self, user_id: &str) -> Result<u64, AuthError> {
        let found = self.find(user_id).await?;
        let keys: Vec<&str> = found.keys().map(|k| k.as_str()).collect();
        let mut removed = 0;
        for chunk in keys.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|n| self.p(n)).collect();
            let sql = format!(
                "DELETE FROM {} WHERE session_key IN ({})",
                self.q(&self.table),
                placeholders.join(", ")
            );
            removed += self.execute(&sql, chunk).await?;
        }
        if let Some((cache, prefix)) = &self.cache {
            for key in &keys {
                cache
                    .delete(&format!("{prefix}{key}"))
                    .await
                    .map_err(|e| AuthError::Session(e.into()))?;
            }
        }
        if let Some(index) = &self.index {
            let sql = format!(
                "DELETE FROM {} WHERE user_id = {}",
                self.q(index),
                self.p(1)
            );
            self.execute(&sql, &[user_id]).await?;
        }
        Ok(removed)
    }

    /// The user's live sessions: the indexed ones, then (with the scan) every other live row
    /// whose verified data names the user.
    async fn find(&self, user_id: &str) -> Result<BTreeMap<String, Row>, AuthError> {
        let now = session_core::expiry::to_python_datetime(OffsetDateTime::now_utc());
        let mut found = BTreeMap::new();
        if let Some(column) = &self.user_column {
            let param = if column.integer {
                // Not an integer: no row can hold it (Django's to_python would refuse it too).
                match user_id.trim().parse() {
                    Ok(id) => Param::Integer(id),
                    Err(_) => return Ok(found),
                }
            } else {
                Param::Text(user_id)
            };
            let sql = format!(
                "SELECT session_key, session_data, expire_date FROM {} WHERE {} = {} AND \
                 expire_date > {}",
                self.q(&self.table),
                self.q(&column.name),
                self.p(1),
                self.p(2)
            );
            for row in self.rows(&sql, param, now).await? {
                if self.belongs_to(&row, user_id) {
                    found.insert(row.key.clone(), row);
                }
            }
        }
        if let Some(index) = &self.index {
            let sql = format!(
                "SELECT s.session_key, s.session_data, s.expire_date FROM {} i JOIN {} s ON \
                 s.session_key = i.session_key WHERE i.user_id = {} AND s.expire_date > {}",
                self.q(index),
                self.q(&self.table),
                self.p(1),
                self.p(2)
            );
            for row in self.rows(&sql, Param::Text(user_id), now).await? {
                // Indexed keys are checked too: a session re-used by another user since is not
                // this user's.
                if self.belongs_to(&row, user_id) {
                    found.insert(row.key.clone(), row);
                }
            }
        }
        if self.scan {
            let sql = format!(
                "SELECT session_key, session_data, expire_date FROM {} WHERE session_key > {} AND \
                 expire_date > {} ORDER BY session_key LIMIT {}",
                self.q(&self.table),
                self.p(1),
                self.p(2),
                self.batch
            );
            let mut after = String::new();
            loop {
                let batch = self.rows(&sql, Param::Text(&after), now).await?;
                let Some(last) = batch.last() else { break };
                after.clone_from(&last.key);
                let full = batch.len() >= self.batch as usize;
                for row in batch {
                    if self.belongs_to(&row, user_id) {
                        found.insert(row.key.clone(), row);
                    }
                }
                if !full {
                    break;
                }
            }
        }
        Ok(found)
    }

    fn belongs_to(&self, row: &Row, user_id: &str) -> bool {
        let Ok(data) = self.codec.try_decode(&row.data, None) else {
            return false;
        };
        user_of(&data, self.key_kind).is_some_and(|id| id == user_id)
    }

    async fn rows(
        &self,
        sql: &str,
        param: Param<'_>,
        now: OffsetDateTime,
    ) -> Result<Vec<Row>, AuthError> {
        let sql = AssertSqlSafe(sql.to_owned()).into_sql_str();
        macro_rules! fetch {
            ($pool:expr, $expire:ty, $now:expr, $convert:expr) => {{
                let query = sqlx::query(sql.clone());
                let query = match param {
                    Param::Text(text) => query.bind(text),
                    Param::Integer(n) => query.bind(n),
                };
                let rows = query
                    .bind($now)
                    .fetch_all($pool)
                    .await
                    .map_err(AuthError::source)?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let expire: $expire = row.try_get(2).map_err(AuthError::source)?;
                    let convert: fn($expire) -> Option<OffsetDateTime> = $convert;
                    let Some(expire_date) = convert(expire) else {
                        continue;
                    };
                    out.push(Row {
                        key: row.try_get(0).map_err(AuthError::source)?,
                        data: row.try_get(1).map_err(AuthError::source)?,
                        expire_date,
                    });
                }
                out
            }};
        }
        Ok(match &self.pool {
            #[cfg(feature = "postgres")]
            UserPool::Postgres(pool) => fetch!(pool, OffsetDateTime, now, Some),
            #[cfg(feature = "mysql")]
            UserPool::MySql(pool) => fetch!(
                pool,
                time::PrimitiveDateTime,
                time::PrimitiveDateTime::new(now.date(), now.time()),
                |at| Some(at.assume_utc())
            ),
            #[cfg(feature = "sqlite")]
            UserPool::Sqlite(pool) => fetch!(pool, String, session_db::sqlite_text(now), |text| {
                session_core::expiry::parse_isoformat(&text)
            }),
        })
    }

    async fn execute(&self, sql: &str, params: &[&str]) -> Result<u64, AuthError> {
        let sql: SqlStr = AssertSqlSafe(sql.to_owned()).into_sql_str();
        macro_rules! run {
            ($pool:expr) => {{
                let mut query = sqlx::query(sql.clone());
                for param in params {
                    query = query.bind(*param);
                }
                query
                    .execute($pool)
                    .await
                    .map(|done| done.rows_affected())
                    .map_err(AuthError::source)
            }};
        }
        match &self.pool {
            #[cfg(feature = "postgres")]
            UserPool::Postgres(pool) => run!(pool),
            #[cfg(feature = "mysql")]
            UserPool::MySql(pool) => run!(pool),
            #[cfg(feature = "sqlite")]
            UserPool::Sqlite(pool) => run!(pool),
        }
    }
}

/// The signing time in a `payload:timestamp:signature` value.
fn last_change(session_data: &str) -> Option<OffsetDateTime> {
    let mut parts = session_data.rsplitn(3, ':');
    let _signature = parts.next()?;
    let timestamp = session_signing::b62_decode(parts.next()?).ok()?;
    OffsetDateTime::from_unix_timestamp(timestamp).ok()
}

/// The canonical user id a decoded session names (`_auth_user_id` through the key kind), if any.
fn user_of(data: &Dict, key_kind: KeyKind) -> Option<String> {
    data.get(SESSION_KEY)
        .and_then(|id: &Value| key_kind.to_python(id).ok().flatten())
}
