//! `sessions show`.

use std::io::Read as _;
use std::time::SystemTime;

use session_core::expiry::isoformat;
use session_core::serializer::json;
use session_core::value::{Dict, Value};
use session_core::{SessionCodec, SessionKey, SessionStore};
use time::OffsetDateTime;

use crate::Error;
use crate::args::{Engine, ShowArgs};
use crate::store;
use session_db::AnyDbStore;

/// The session stored under `args.session_key`, as of `now`, as one line of JSON in Django's
/// rendering.
///
/// # Errors
/// Exit-2 errors for unusable options or a store that cannot be opened; [`Error::NotFound`],
/// [`Error::Expired`] or [`Error::Decode`] (exit 1) when there is no readable live session under
/// the key; [`Error::Store`] when the store fails while reading.
pub async fn show(args: &ShowArgs, now: SystemTime) -> Result<String, Error> {
    let key = SessionKey::new(args.session_key.as_str()).map_err(|_| Error::InvalidSessionKey)?;
    let config = store::config(&args.store, &args.keys)?;
    let now = OffsetDateTime::from(now);
    let data = match args.store.engine {
        Engine::Db | Engine::CachedDb => {
            let db = store::open_db_read_only(&args.store, &config, now).await?;
            from_db(&db, &key, now).await?
        }
        Engine::File => {
            let files = store::open_file_read_only(&args.store, &config).await?;
            from_file(
                &files,
                &key,
                &SessionCodec::new(&config).map_err(Error::Config)?,
            )
            .await?
        }
        Engine::Cookie => {
            // The key is the cookie: decoding it is reading it, expiry (SESSION_COOKIE_AGE)
            // included.
            let cookies = store::open_cookie(&config, now)?;
            cookies.decode(key.as_str()).map_err(Error::decode)?
        }
        Engine::Cache => {
            let cache = store::open_cache(&args.store, &config).await?;
            from_cache(&cache, &key, cache.codec()).await?
        }
    };
    json::to_string(&Value::Dict(data))
        .map_err(|error| Error::decode(session_core::Error::Serializer(error)))
}

/// The row's data, if the row is live (Django's db `load`: `expire_date > now`) and verifies.
async fn from_db(db: &AnyDbStore, key: &SessionKey, now: OffsetDateTime) -> Result<Dict, Error> {
    let row = db
        .row(key.as_str())
        .await
        .map_err(|e| Error::Store(e.into()))?
        .ok_or_else(|| Error::not_found(key, "in the table"))?;
    if row.expire_date <= now {
        return Err(Error::Expired {
            key: key.redacted(),
            at: Some(isoformat(row.expire_date)),
        });
    }
    db.codec()
        .try_decode(&row.session_data, None)
        .map_err(Error::decode)
}

/// The file's data. The store reads unverifiable files as empty sessions (as Django does), so an
/// empty result is read again to say why.
async fn from_file(
    files: &session_file::FileStore,
    key: &SessionKey,
    codec: &SessionCodec,
) -> Result<Dict, Error> {
    match files.load(key).await.map_err(Error::Store)? {
        Some(data) if !data.is_empty() => Ok(data),
        Some(empty) => {
            let path = files.file_path(key).map_err(|e| Error::Store(e.into()))?;
            // Bounded as the store's own read is: a file longer than any decodable value is
            // not read whole.
            let limit = codec.max_encoded_len();
            let mut contents = Vec::new();
            std::fs::File::open(&path)
                .and_then(|file| file.take(limit as u64 + 1).read_to_end(&mut contents))
                .map_err(|source| Error::Store(session_core::Error::store(source)))?;
            if contents.is_empty() {
                // A creation placeholder: an existing session without data, as in Django.
                return Ok(empty);
            }
            if contents.len() > limit {
                return Err(Error::decode(session_core::Error::store(format!(
                    "the file is longer than any session ({limit} bytes) this configuration decodes"
                ))));
            }
            codec
                .try_decode(&String::from_utf8_lossy(&contents), None)
                .map_err(Error::decode)
        }
        None if files.exists(key).await.map_err(Error::Store)? => Err(Error::Expired {
            key: key.redacted(),
            at: None,
        }),
        None => Err(Error::not_found(key, "in the session directory")),
    }
}

/// The cached data, read once: the value's own decode error says why it does not verify (the
/// store's load would read it as an empty session).
async fn from_cache(
    cache: &session_cache::CacheStore,
    key: &SessionKey,
    codec: &SessionCodec,
) -> Result<Dict, Error> {
    let raw = cache
        .cache()
        .get(&cache.cache_key(key))
        .await
        .map_err(|e| Error::Store(e.into()))?
        .ok_or_else(|| {
            Error::not_found(
                key,
                "in the cache (absent, or expired: the cache drops expired sessions)",
            )
        })?;
    codec.deserialize_dict(&raw).map_err(Error::decode)
}
