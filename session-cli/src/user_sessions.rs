//! `sessions revoke` and `sessions list`: a user's sessions (session-auth's `UserSessions` on
//! db and cached-db, `RedisUserSessions` on cache, `FileUserSessions` on file).

use std::time::SystemTime;

use session_auth::KeyKind;
use session_auth::everywhere::{FileUserSessions, RedisUserSessions, UserSession, UserSessions};
use session_core::expiry::isoformat;
use time::OffsetDateTime;

use crate::Error;
use crate::args::{Engine, UserKeyKind, UserSessionArgs};
use crate::store;

/// Where a user's sessions are looked for: the database (db, cached-db), Redis (cache) or the
/// session directory (file).
enum Finder {
    Db(UserSessions),
    Redis(RedisUserSessions),
    File(FileUserSessions),
}

impl Finder {
    async fn list(&self, user: &str) -> Result<Vec<UserSession>, Error> {
        match self {
            Finder::Db(sessions) => sessions.list(user).await,
            Finder::Redis(sessions) => sessions.list(user).await,
            Finder::File(sessions) => sessions.list(user).await,
        }
        .map_err(Error::Auth)
    }

    async fn revoke(&self, user: &str) -> Result<u64, Error> {
        match self {
            Finder::Db(sessions) => sessions.revoke(user).await,
            Finder::Redis(sessions) => sessions.revoke(user).await,
            Finder::File(sessions) => sessions.revoke(user).await,
        }
        .map_err(Error::Auth)
    }
}

async fn open(args: &UserSessionArgs, now: SystemTime, read_only: bool) -> Result<Finder, Error> {
    let config = store::config(&args.store, &args.keys)?;
    let kind = match args.user_key_kind {
        UserKeyKind::Integer => KeyKind::Integer,
        UserKeyKind::Text => KeyKind::Text,
    };
    let engine = args.store.engine;
    if engine == Engine::Cache {
        let (redis, store) = store::open_redis_cache(&args.store, &config).await?;
        let sessions = RedisUserSessions::new(redis, &store, kind, &config)
            .map_err(Error::Auth)?
            .with_scan(!args.index_only);
        return Ok(Finder::Redis(sessions));
    }
    if engine == Engine::File {
        let files = if read_only {
            store::open_file_read_only(&args.store, &config).await?
        } else {
            store::open_file(&args.store, &config).await?
        };
        return Ok(Finder::File(FileUserSessions::new(files, kind)));
    }
    if !matches!(engine, Engine::Db | Engine::CachedDb) {
        return Err(Error::UnsupportedEngine);
    }
    if args.index_only && args.index_table.is_none() {
        return Err(Error::IndexOnlyWithoutIndex);
    }
    // cached-db: revoking must also delete the cached copies, so the cache is needed then.
    let cache = if engine == Engine::CachedDb && !read_only {
        Some(store::open_redis_cache(&args.store, &config).await?.1)
    } else {
        None
    };
    let now = OffsetDateTime::from(now);
    let db = if read_only {
        store::open_db_read_only(&args.store, &config, now).await?
    } else {
        store::open_db(&args.store, &config, now).await?
    };
    let mut sessions = UserSessions::new(store::user_pool(&db), &args.store.table, kind, &config)
        .map_err(Error::Auth)?
        .with_scan(!args.index_only);
    if let Some(cache) = cache {
        sessions = sessions.with_cache(
            cache.cache().clone(),
            session_cached_db::CACHED_DB_KEY_PREFIX,
        );
    }
    match &args.index_table {
        Some(index) => sessions
            .with_index(index)
            .map(Finder::Db)
            .map_err(Error::Auth),
        None => Ok(Finder::Db(sessions)),
    }
}

/// Deletes every live session of `--user`; returns how many, as a bare number.
///
/// # Errors
/// Exit-2 errors for unusable options or a store that cannot be opened, [`Error::Auth`] when the
/// database fails.
pub async fn revoke(args: &UserSessionArgs, now: SystemTime) -> Result<String, Error> {
    let removed = open(args, now, false).await?.revoke(&args.user).await?;
    Ok(removed.to_string())
}

/// The live sessions of `--user`, one JSON line each (nothing for none).
///
/// # Errors
/// As [`revoke`].
pub async fn list(args: &UserSessionArgs, now: SystemTime) -> Result<String, Error> {
    let sessions = open(args, now, true).await?.list(&args.user).await?;
    let lines: Vec<String> = sessions
        .iter()
        .map(|s| {
            let last_change = s
                .last_change
                .map_or_else(|| "null".to_owned(), |at| format!("\"{}\"", isoformat(at)));
            format!(
                "{{\"key\": \"{}\", \"expire_date\": \"{}\", \"last_change\": {last_change}}}",
                s.key,
                isoformat(s.expire_date)
            )
        })
        .collect();
    Ok(lines.join("\n"))
}
