//! Our half of `fixtures/django/generate_cached_db.py`: the cached-db store on the same Redis and
//! PostgreSQL schema as a Django 5.2 site using `django.contrib.sessions.backends.cached_db`.
//!
//! Reads one JSON request on stdin:
//! `{"redis_url", "key_prefix", "pg_url", "action": "read" | "write", "cases": [...]}` and prints
//! `{"results": [...]}`.
//!
//! - `read`: each case is a session Django wrote (`session_key`, `data_json`, `physical_key`,
//!   `expire_date`). We load it from the cache (Django's pickle), then delete the cache entry and
//!   load it from the database (Django's signed row), which refills the cache; every load must
//!   equal `data_json`, our cache key must be Django's, and the database load must report the
//!   row's `expire_date`.
//! - `write`: each case (`session_key`, `data_json`) is created by our store under the given key
//!   with the given data (`_session_expiry` included), for Django to read back.

use std::io::Read;
use std::sync::Arc;

use base64::Engine;
use session_cache::{Cache, RedisCache};
use session_cached_db::CachedDbStore;
use session_core::expiry::{isoformat, parse_isoformat};
use session_core::serializer::{JsonSerializer, Serializer};
use session_core::{Dict, SaveMode, Session, SessionConfig, SessionKey, SessionStore, Value};
use session_db::PgStore;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn text<'a>(value: &'a serde_json::Value, field: &str) -> Result<&'a str, BoxError> {
    value[field]
        .as_str()
        .ok_or_else(|| format!("field {field:?} must be a string").into())
}

fn parse_dict(json: &str) -> Result<Dict, BoxError> {
    match JsonSerializer.loads_text(json)? {
        Value::Dict(data) => Ok(data),
        _ => Err("data_json must be a JSON object".into()),
    }
}

/// Compact JSON with key order and int/float kept: equal text means equal sessions.
fn json(data: &Dict) -> Result<String, BoxError> {
    Ok(String::from_utf8(JsonSerializer.dumps_dict(data)?)?)
}

async fn redis_ttl(redis_url: &str, physical_key: &str) -> Result<i64, BoxError> {
    let mut conn = redis::Client::open(redis_url)?
        .get_multiplexed_async_connection()
        .await?;
    Ok(redis::cmd("TTL")
        .arg(physical_key)
        .query_async(&mut conn)
        .await?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let request: serde_json::Value = serde_json::from_str(&input)?;
    let redis_url = text(&request, "redis_url")?;

    // Django's settings: SECRET_KEY, the default JSON SESSION_SERIALIZER; the cache pickles.
    let config = SessionConfig::new("django_tests_secret_key");
    let db = PgStore::connect(text(&request, "pg_url")?, &config).await?;
    db.check_schema().await?;
    let cache = Cache::new(RedisCache::connect(redis_url).await?)
        .with_key_prefix(text(&request, "key_prefix")?);
    let store = Arc::new(CachedDbStore::new(cache, db, &config)?);
    let shared: Arc<dyn SessionStore> = store.clone();
    let config = Arc::new(config);

    let cases = request["cases"]
        .as_array()
        .ok_or("field cases must be a list")?;
    let mut results = Vec::new();
    for case in cases {
        let key = SessionKey::new(text(case, "session_key")?)?;
        let expected = json(&parse_dict(text(case, "data_json")?)?)?;
        let cache_key = store.cache_key(&key);
        let physical_key = store.physical_key(&key);
        let result = match text(&request, "action")? {
            "read" => {
                let cached_before = store.cache().exists(&cache_key).await?;
                let from_cache = store.load_with_expiry(&key).await?;
                store.cache().delete(&cache_key).await?;
                let from_db = store.load_with_expiry(&key).await?;
                let django_expiry = parse_isoformat(text(case, "expire_date")?)
                    .ok_or("expire_date is not an ISO datetime")?;
                let cache_json = match &from_cache {
                    Some(record) => Some(json(&record.data)?),
                    None => None,
                };
                let db_json = match &from_db {
                    Some(record) => Some(json(&record.data)?),
                    None => None,
                };
                serde_json::json!({
                    "name": case["name"],
                    "session_key": key.as_str(),
                    "physical_key_equal": physical_key == text(case, "physical_key")?,
                    "cached_before": cached_before,
                    // A cache hit does not know the expiry: `None` proves the cache answered.
                    "cache_hit": from_cache.as_ref().is_some_and(|r| r.expires_at.is_none()),
                    "cache_equal": cache_json.as_deref() == Some(expected.as_str()),
                    "db_equal": db_json.as_deref() == Some(expected.as_str()),
                    "db_expire_date_equal": from_db.as_ref().and_then(|r| r.expires_at) == Some(django_expiry),
                    "exists": store.exists(&key).await?,
                    "refill_ttl": redis_ttl(redis_url, &physical_key).await?,
                    "cache_loaded_json": cache_json,
                    "db_loaded_json": db_json,
                })
            }
            "write" => {
                let session = Session::new(shared.clone(), config.clone(), Some(key.as_str()));
                session.clear(); // "loaded and empty": keeps the chosen key instead of loading
                session
                    .update(parse_dict(text(case, "data_json")?)?)
                    .await?;
                session.save_with(SaveMode::MustCreate).await?;
                let raw = store
                    .cache()
                    .backend()
                    .get(&physical_key)
                    .await?
                    .ok_or("the session is not in Redis after its save")?;
                let row = store
                    .db()
                    .row(key.as_str())
                    .await?
                    .ok_or("the session is not in the database after its save")?;
                serde_json::json!({
                    "name": case["name"],
                    "session_key": key.as_str(),
                    "data_json": json(&*session.data().await?)?,
                    "physical_key": physical_key,
                    "value_b64": base64::engine::general_purpose::STANDARD.encode(&raw),
                    "ttl": redis_ttl(redis_url, &physical_key).await?,
                    "session_data": row.session_data,
                    "expire_date": isoformat(row.expire_date),
                })
            }
            other => return Err(format!("unknown action {other:?}").into()),
        };
        results.push(result);
    }
    println!("{}", serde_json::json!({ "results": results }));
    Ok(())
}
