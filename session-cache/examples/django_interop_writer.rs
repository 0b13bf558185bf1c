//! Writes sessions into Redis or memcached with `CacheStore` for
//! `fixtures/django/generate_cache.py` and `generate_memcached.py`, which then have real Django
//! read them back.
//!
//! Reads one JSON request on stdin:
//! `{"redis_url" | "memcached_urls", "key_prefix", "compressor"?, "cases": [{"name", "session_key",
//! "data_json"}]}` (`compressor`: one of django-redis's, `zlib`, `gzip`, `lzma`, `lz4`, `zstd`)
//! and prints `{"results": [{"name", "session_key", "physical_key", "value_b64", "data_json",
//! "server"}]}` (`server`: the memcached server we placed the session on, else null). Each
//! session is created under the given key with the default settings (the cache store pickles
//! its values, as Django's cache framework does, whatever the session serializer) and the data
//! given as JSON text (`_session_expiry` included, as `set_expiry` leaves it).

use std::io::Read;
use std::sync::Arc;

use base64::Engine;
use session_cache::{Cache, CacheStore, CompressedCache, Compressor, MemcachedCache, RedisCache};
use session_core::serializer::{JsonSerializer, Serializer};
use session_core::{SaveMode, Session, SessionConfig, SessionKey, SessionStore, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn text<'a>(value: &'a serde_json::Value, field: &str) -> Result<&'a str, BoxError> {
    value[field]
        .as_str()
        .ok_or_else(|| format!("request field {field:?} must be a string").into())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let request: serde_json::Value = serde_json::from_str(&input)?;

    let config = SessionConfig::new("django_tests_secret_key");
    let memcached = match request["memcached_urls"].as_str() {
        Some(urls) => Some(Arc::new(MemcachedCache::connect(urls).await?)),
        None => None,
    };
    let cache = match &memcached {
        Some(memcached) => Cache::from_arc(memcached.clone()),
        None => {
            let redis = RedisCache::connect(text(&request, "redis_url")?).await?;
            let compressor = match request["compressor"].as_str() {
                None => None,
                Some("zlib") => Some(Compressor::Zlib),
                Some("gzip") => Some(Compressor::Gzip),
                Some("lzma") => Some(Compressor::Lzma),
                Some("lz4") => Some(Compressor::Lz4),
                Some("zstd") => Some(Compressor::Zstd),
                Some(other) => return Err(format!("unknown compressor {other:?}").into()),
            };
            match compressor {
                Some(compressor) => Cache::new(CompressedCache::new(redis, compressor)),
                None => Cache::new(redis),
            }
        }
    }
    .with_key_prefix(text(&request, "key_prefix")?);
    let store = CacheStore::new(cache.clone(), &config)?;
    let raw_cache = match &memcached {
        Some(memcached) => Cache::from_arc(memcached.clone()),
        None => Cache::new(RedisCache::connect(text(&request, "redis_url")?).await?),
    };
    let shared: Arc<dyn SessionStore> = Arc::new(store.clone());
    let config = Arc::new(config);

    let mut results = Vec::new();
    for case in request["cases"]
        .as_array()
        .ok_or("request field cases must be a list")?
    {
        let key = SessionKey::new(text(case, "session_key")?)?;
        let Value::Dict(data) = JsonSerializer.loads_text(text(case, "data_json")?)? else {
            return Err("data_json must be a JSON object".into());
        };
        let session = Session::new(shared.clone(), config.clone(), Some(key.as_str()));
        session.clear(); // "loaded and empty": keeps the chosen key instead of loading
        session.update(data).await?;
        session.save_with(SaveMode::MustCreate).await?;
        let saved = session.key().ok_or("the session lost its key")?;
        // What the cache holds, compressed if it is (the backend's own read would decompress).
        let raw = raw_cache
            .backend()
            .get(&store.physical_key(&saved))
            .await?
            .ok_or("the session is not in the cache after its save")?;
        let data_json = String::from_utf8(JsonSerializer.dumps_dict(&*session.data().await?)?)?;
        results.push(serde_json::json!({
            "name": case["name"],
            "session_key": saved.as_str(),
            "physical_key": store.physical_key(&saved),
            "value_b64": base64::engine::general_purpose::STANDARD.encode(&raw),
            "data_json": data_json,
            "server": memcached.as_ref().map(|m| m.server_for(&store.physical_key(&saved)).to_owned()),
        }));
    }
    println!("{}", serde_json::json!({ "results": results }));
    Ok(())
}
