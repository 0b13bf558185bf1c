//! A cache store tells when a session expires where its backend can in the same round trip
//! (Redis, the in-process cache): what the throttled sliding expiry
//! (`SessionConfig::refresh_fraction`) decides from.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use session_cache::{Cache, CacheStore, MemoryCache};
use session_conformance::{config, services};
use session_core::{Dict, SaveMode, SessionKey, SessionRecord, SessionStore, Value};
use time::{Duration, OffsetDateTime};

async fn saved_then_loaded_expiry(store: &CacheStore) -> Option<OffsetDateTime> {
    let key = SessionKey::generate().unwrap();
    let mut data = Dict::default();
    data.insert("k".to_owned(), Value::from(1i64));
    let record = SessionRecord {
        data: &data,
        expires_at: OffsetDateTime::now_utc() + Duration::seconds(100),
        expiry_age: 100,
    };
    store
        .save(&key, record, SaveMode::MustCreate)
        .await
        .unwrap();
    let loaded = store.load_with_expiry(&key).await.unwrap().unwrap();
    assert_eq!(loaded.data, data);
    store.delete(&key).await.unwrap();
    loaded.expires_at
}

fn about_100_seconds_from_now(expires_at: Option<OffsetDateTime>) {
    let left = expires_at.unwrap() - OffsetDateTime::now_utc();
    assert!(
        left > Duration::seconds(97) && left <= Duration::seconds(100),
        "{left}"
    );
}

#[tokio::test]
async fn the_in_process_cache_reports_when_an_entry_expires() {
    let store = CacheStore::new(Cache::new(MemoryCache::new()), &config()).unwrap();
    about_100_seconds_from_now(saved_then_loaded_expiry(&store).await);
}

#[tokio::test]
async fn redis_reports_when_an_entry_expires() {
    let Some(url) =
        services::url_or_skip(services::REDIS_URL, "redis_reports_when_an_entry_expires")
    else {
        return;
    };
    let redis = session_cache::RedisCache::connect(&url).await.unwrap();
    let cache = Cache::new(redis).with_key_prefix(services::unique_name("expiry"));
    let store = Arc::new(CacheStore::new(cache, &config()).unwrap());
    about_100_seconds_from_now(saved_then_loaded_expiry(&store).await);
}

/// Redis reads a value and its expiry together (`GET` and `PEXPIRETIME` in one transaction):
/// a key with no expiry reads with none, and a missing key reads as missing, not as an error.
#[tokio::test]
async fn redis_reads_an_entry_without_expiry_and_a_missing_one() {
    use session_cache::CacheBackend;

    let Some(url) = services::url_or_skip(
        services::REDIS_URL,
        "redis_reads_an_entry_without_expiry_and_a_missing_one",
    ) else {
        return;
    };
    let redis = session_cache::RedisCache::connect(&url).await.unwrap();
    let key = services::unique_name("no-expiry");
    let missing = format!("{key}:missing");
    let () = redis
        .command(redis::cmd("SET").arg(&key).arg("held"))
        .await
        .unwrap();

    let (value, expires) = redis.get_with_expiry(&key).await.unwrap().unwrap();
    assert_eq!(&value[..], b"held");
    assert_eq!(expires, None);
    let versioned = redis.get_versioned(&key).await.unwrap().unwrap();
    assert_eq!(&versioned.value[..], b"held");
    assert!(redis.get_with_expiry(&missing).await.unwrap().is_none());
    assert!(redis.get_versioned(&missing).await.unwrap().is_none());

    let _: i64 = redis.command(redis::cmd("DEL").arg(&key)).await.unwrap();
}
