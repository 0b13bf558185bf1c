//! Log out everywhere on the cache engine in Redis ([`RedisUserSessions`]).

use std::collections::BTreeMap;

use session_cache::{CacheStore, KeyFunction, RedisCache};
use session_core::{Dict, Session, SessionCodec, SessionConfig, SessionKey};
use time::OffsetDateTime;

use super::{UserSession, user_of};
use crate::AuthError;
use crate::user::KeyKind;

/// The logical cache key of a user's session set, before the user id (the cache's key function
/// adds `KEY_PREFIX` and `VERSION` around it, as for the sessions).
pub const USER_SET_PREFIX: &str = "djsession.auth.user_sessions:";

/// Lists and revokes a user's sessions kept by the cache engine ([`CacheStore`]) in Redis.
///
/// - **The index**: one Redis set per user, `<KEY_PREFIX>:<VERSION>:djsession.auth.user_sessions:<user
///   id>` (the cache's own key layout), whose members are session keys.
///   [`record`](Self::record) adds a login made here and stretches the set's lifetime to at least
///   the session's; [`forget`](Self::forget) removes a session on logout. Members whose session
///   entry is gone (expired, flushed elsewhere) or now holds another user are pruned by
///   [`list`](Self::list) and [`revoke`](Self::revoke). Looking a user up costs one `SMEMBERS`
///   and a `GET` and `TTL` per member.
/// - **The scan**: sessions Django logged in are in no set, so `list` and `revoke` also walk the
///   session keys with `SCAN … MATCH <KEY_PREFIX>:<VERSION>:django.contrib.sessions.cache* COUNT
///   <batch>`, fetch each batch with one `MGET`, decode every value with the session serializer
///   (pickle for Django's entries) and keep those whose `_auth_user_id` is the user. Its cost is
///   linear in the number of keys in the Redis database (not just the sessions: `SCAN` visits every
///   key to match the pattern), independent of the user: about 6 µs per key, so revoking 1,000
///   sessions among 1,000,000 takes 5.5 s against 236 ms through the set alone (the
///   [module docs](super) have the figures).
///   `SCAN` reaches a single node, so on a Redis Cluster turn it off with
///   [`with_scan(false)`](Self::with_scan) (the index works on a Cluster).
///
/// Session entries carry no signing timestamp, so [`UserSession::last_change`] is `None` here;
/// [`UserSession::expire_date`] is now plus the entry's remaining `TTL`.
pub struct RedisUserSessions {
    redis: RedisCache,
    keys: KeyFunction,
    session_prefix: String,
    codec: SessionCodec,
    key_kind: KeyKind,
    scan: bool,
    batch: u32,
}

impl std::fmt::Debug for RedisUserSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisUserSessions")
            .field("redis", &self.redis)
            .field("keys", &self.keys)
            .field("session_prefix", &self.session_prefix)
            .field("scan", &self.scan)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl RedisUserSessions {
    /// The sessions `store` keeps in `redis` (the backend of `store`'s cache: pass the same
    /// [`RedisCache`], clones share one connection), decoded as `store` decodes them (pickles by
    /// default, as Django's cache framework stores them, whatever `config.serializer` says),
    /// user ids parsed as `key_kind`. Scans by default; see [`with_scan`](Self::with_scan).
    ///
    /// # Errors
    /// [`AuthError::Config`] for an unusable session configuration.
    pub fn new(
        redis: RedisCache,
        store: &CacheStore,
        key_kind: KeyKind,
        config: &SessionConfig,
    ) -> Result<Self, AuthError> {
        Ok(RedisUserSessions {
            redis,
            keys: store.cache().key_function().clone(),
            session_prefix: store.session_key_prefix().to_owned(),
            codec: {
                config.validate()?;
                store.codec().clone()
            },
            key_kind,
            scan: true,
            batch: 1_000,
        })
    }

    /// Whether `list` and `revoke` also scan for sessions no set knows (default true: Django's
    /// logins are never indexed). Must be false on a Redis Cluster.
    pub fn with_scan(mut self, scan: bool) -> Self {
        self.scan = scan;
        self
    }

    /// The `COUNT` hint of each `SCAN` call and the keys fetched per `MGET` (default 1,000; at
    /// least 1).
    pub fn with_batch_size(mut self, keys: u32) -> Self {
        self.batch = keys.max(1);
        self
    }

    /// The Redis key of user `user_id`'s session set.
    pub fn set_key(&self, user_id: &str) -> String {
        self.keys.make_key(&format!("{USER_SET_PREFIX}{user_id}"))
    }

    fn session_entry(&self, key: &str) -> String {
        self.keys.make_key(&format!("{}{key}", self.session_prefix))
    }

    async fn cmd<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, AuthError> {
        self.redis
            .command(cmd)
            .await
            .map_err(|e| AuthError::Session(e.into()))
    }

    /// Adds `session` to the set of `user_id`; call it after [`Auth::login`](crate::Auth::login).
    /// A session without a key yet (login flushed it) is saved first. The set lives at least as
    /// long as the session (`EXPIRE … NX`, then `EXPIRE … GT`, so it never shortens).
    ///
    /// # Errors
    /// Session and Redis failures.
    pub async fn record(&self, session: &Session, user_id: &str) -> Result<(), AuthError> {
        if session.key().is_none() {
            session.save().await?;
        }
        let Some(key) = session.key() else {
            return Ok(());
        };
        let age = session.expiry_age().await?.max(1);
        let set = self.set_key(user_id);
        self.cmd::<u64>(redis::cmd("SADD").arg(&set).arg(key.as_str()))
            .await?;
        for condition in ["NX", "GT"] {
            self.cmd::<u64>(redis::cmd("EXPIRE").arg(&set).arg(age).arg(condition))
                .await?;
        }
        Ok(())
    }

    /// Removes session `key` from the set of `user_id` (on logout: call it before
    /// [`Auth::logout`](crate::Auth::logout), while the key and user are known).
    ///
    /// # Errors
    /// Redis failures.
    pub async fn forget(&self, key: &SessionKey, user_id: &str) -> Result<(), AuthError> {
        self.cmd::<u64>(
            redis::cmd("SREM")
                .arg(self.set_key(user_id))
                .arg(key.as_str()),
        )
        .await
        .map(drop)
    }

    /// The live sessions of user `user_id`, by key.
    ///
    /// # Errors
    /// Redis failures; [`AuthError::Config`] when scanning a Redis Cluster.
    pub async fn list(&self, user_id: &str) -> Result<Vec<UserSession>, AuthError> {
        let now = OffsetDateTime::now_utc();
        let mut out = Vec::new();
        for key in self.find(user_id).await?.into_keys() {
            let ttl: i64 = self
                .cmd(redis::cmd("TTL").arg(self.session_entry(&key)))
                .await?;
            // -2: gone since it was found; -1: no TTL (never written so by a session store).
            if ttl == -2 {
                continue;
            }
            let expire_date = if ttl >= 0 {
                now + time::Duration::seconds(ttl)
            } else {
                OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT)
            };
            out.push(UserSession {
                key: session_core::redact(&key),
                expire_date,
                last_change: None,
            });
        }
        Ok(out)
    }

    /// Deletes every live session of user `user_id` and the user's set; returns how many
    /// sessions were removed.
    ///
    /// # Errors
    /// Redis failures (sessions deleted before the failure stay deleted); [`AuthError::Config`]
    /// when scanning a Redis Cluster.
    pub async fn revoke(&self, user_id: &str) -> Result<u64, AuthError> {
        let mut removed = 0;
        for key in self.find(user_id).await?.into_keys() {
            // One key per DEL: session entries of one user lie in different Cluster slots.
            removed += self
                .cmd::<u64>(redis::cmd("DEL").arg(self.session_entry(&key)))
                .await?;
        }
        self.cmd::<u64>(redis::cmd("DEL").arg(self.set_key(user_id)))
            .await?;
        Ok(removed)
    }

    /// The user's live sessions (key → data): the set's members that still hold the user (others
    /// pruned from the set), then with the scan every other session entry naming the user.
    async fn find(&self, user_id: &str) -> Result<BTreeMap<String, Dict>, AuthError> {
        let mut found = BTreeMap::new();
        let set = self.set_key(user_id);
        let members: Vec<String> = self.cmd(redis::cmd("SMEMBERS").arg(&set)).await?;
        for key in members {
            let value: Option<Vec<u8>> = self
                .cmd(redis::cmd("GET").arg(self.session_entry(&key)))
                .await?;
            match value.map(|bytes| self.codec.deserialize(&bytes)) {
                Some(data) if self.holds(&data, user_id) => {
                    found.insert(key, data);
                }
                // Expired, deleted, or re-used by another user: no longer this user's.
                _ => {
                    self.cmd::<u64>(redis::cmd("SREM").arg(&set).arg(&key))
                        .await?;
                }
            }
        }
        if self.scan {
            if self.redis.is_cluster() {
                return Err(AuthError::Config(
                    "the session scan needs a single Redis server (SCAN reaches one Cluster \
                     node): use with_scan(false) and record logins in the per-user sets"
                        .to_owned(),
                ));
            }
            let entry_prefix = self.session_entry("");
            let pattern = format!("{}*", glob_escape(&entry_prefix));
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = self
                    .cmd(
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(&pattern)
                            .arg("COUNT")
                            .arg(self.batch),
                    )
                    .await?;
                for chunk in keys.chunks(self.batch as usize) {
                    let values: Vec<Option<Vec<u8>>> =
                        self.cmd(redis::cmd("MGET").arg(chunk)).await?;
                    for (entry, value) in chunk.iter().zip(values) {
                        let Some(key) = entry.strip_prefix(&entry_prefix) else {
                            continue;
                        };
                        if found.contains_key(key) {
                            continue;
                        }
                        let Some(bytes) = value else { continue };
                        let data = self.codec.deserialize(&bytes);
                        if self.holds(&data, user_id) {
                            found.insert(key.to_owned(), data);
                        }
                    }
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(found)
    }

    fn holds(&self, data: &Dict, user_id: &str) -> bool {
        user_of(data, self.key_kind).is_some_and(|id| id == user_id)
    }
}

/// `text` with Redis glob metacharacters escaped, so a key prefix matches only itself.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn glob_escape_makes_a_prefix_match_only_itself() {
        assert_eq!(glob_escape("app*:1:x"), "app\\*:1:x");
        assert_eq!(glob_escape("[a]?\\"), "\\[a\\]\\?\\\\");
        assert_eq!(
            glob_escape(":1:django.contrib.sessions.cache"),
            ":1:django.contrib.sessions.cache"
        );
    }
}
