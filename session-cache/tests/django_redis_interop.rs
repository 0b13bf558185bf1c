//! Sessions shared with real django-redis 7 + Django 5.2 (`django_redis.cache.RedisCache`, its
//! default pickle serializer, without and with each compressor), replayed from
//! `fixtures/django/django-redis-sessions.json`, which `fixtures/django/generate_django_redis.py`
//! records against a real Redis:
//!
//! - `django_wrote`: the keys and raw (possibly compressed) bytes django-redis left in Redis; we
//!   must read every session from them, with the same compressor configured;
//! - `django_read_ours`: what our store wrote for the same data, and django-redis's verdict on
//!   reading it back; every verdict must be a pass, and we must still write those exact bytes.
#![cfg(all(feature = "compression", feature = "memory"))]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use support::fixture::{cases, data, key, raw};

use std::sync::Arc;

use serde_json::Value as Json;
use session_cache::{Cache, CacheBackend, CacheStore, CompressedCache, Compressor, MemoryCache};
use session_core::serializer::SerializerName;
use session_core::value::dicts_identical;
use session_core::{SessionConfig, SessionStore};

fn fixture() -> Json {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/django/django-redis-sessions.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn config() -> SessionConfig {
    SessionConfig {
        serializer: SerializerName::Pickle,
        ..session_conformance::config()
    }
}

fn compressor(variant: &Json) -> Option<Compressor> {
    match variant["compressor"].as_str() {
        None => None,
        Some("zlib") => Some(Compressor::Zlib),
        Some("gzip") => Some(Compressor::Gzip),
        Some("lzma") => Some(Compressor::Lzma),
        Some("lz4") => Some(Compressor::Lz4),
        Some("zstd") => Some(Compressor::Zstd),
        Some(other) => panic!("unknown compressor {other}"),
    }
}

fn variants(fixture: &Json) -> &Vec<Json> {
    let variants = fixture["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 6, "no compressor, then five");
    variants
}

/// A cache configured as the variant's django-redis is, over `inner`.
fn cache_like(variant: &Json, inner: Arc<dyn CacheBackend>, key_prefix: &str) -> Cache {
    let backend: Arc<dyn CacheBackend> = match compressor(variant) {
        Some(compressor) => Arc::new(CompressedCache::new(inner, compressor)),
        None => inner,
    };
    Cache::from_arc(backend).with_key_prefix(key_prefix)
}

/// Puts django-redis's raw bytes into `inner` under the fixture's keys (relative to
/// `key_prefix`) and reads them through our store; returns how many sessions matched.
async fn read_what_django_redis_wrote(
    inner: Arc<dyn CacheBackend>,
    key_prefix: &str,
    variant: &Json,
) -> usize {
    let cache = cache_like(variant, inner.clone(), key_prefix);
    let store = CacheStore::new(cache, &config()).unwrap();
    let sessions = cases(variant, "django_wrote", Some("session"));
    for case in &sessions {
        let key = key(case);
        let physical = store.physical_key(&key);
        let ttl = session_cache::Ttl::from_age(case["ttl"].as_i64().unwrap()).unwrap();
        inner.set(&physical, raw(case).into(), ttl).await.unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();
        let expected = data(case);
        assert!(
            dicts_identical(&loaded, &expected),
            "{:?}/{}: read {loaded:?}, django-redis wrote {expected:?}",
            variant["compressor"],
            case["name"]
        );
        store.delete(&key).await.unwrap();
    }
    sessions.len()
}

#[tokio::test]
async fn reads_every_session_django_redis_wrote_with_each_compressor() {
    let fixture = fixture();
    for variant in variants(&fixture) {
        let prefix = variant["settings"]["KEY_PREFIX"].as_str().unwrap();
        let memory: Arc<dyn CacheBackend> = Arc::new(MemoryCache::new());
        assert_eq!(
            read_what_django_redis_wrote(memory, prefix, variant).await,
            11
        );
    }
}

#[tokio::test]
async fn compressed_values_really_are_compressed_where_django_redis_compresses() {
    let fixture = fixture();
    for variant in variants(&fixture) {
        let Some(compressor) = compressor(variant) else {
            continue;
        };
        for case in cases(variant, "django_wrote", Some("session")) {
            let raw = raw(case);
            // A plain pickle starts with PROTO; compressed ones start with their format's magic.
            assert_eq!(
                raw.starts_with(b"\x80"),
                raw.len() <= compressor.min_length(),
                "{compressor:?}/{}: {} bytes",
                case["name"],
                raw.len()
            );
        }
    }
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn reads_every_session_django_redis_wrote_from_a_real_redis() {
    use session_conformance::services;
    let test = "reads_every_session_django_redis_wrote_from_a_real_redis";
    let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
        return;
    };
    let redis: Arc<dyn CacheBackend> =
        Arc::new(session_cache::RedisCache::connect(&url).await.unwrap());
    for variant in variants(&fixture()) {
        let prefix = services::unique_name("djsession_django_redis");
        assert_eq!(
            read_what_django_redis_wrote(redis.clone(), &prefix, variant).await,
            11
        );
    }
}

#[tokio::test]
async fn django_redis_read_every_session_we_wrote_and_we_still_write_those_bytes() {
    let fixture = fixture();
    for variant in variants(&fixture) {
        let prefix = variant["settings"]["KEY_PREFIX"].as_str().unwrap();
        let ours = cases(variant, "django_read_ours", None);
        assert_eq!(ours.len(), 11);
        let memory = Arc::new(MemoryCache::new());
        let cache = cache_like(variant, memory.clone(), prefix);
        let store = CacheStore::new(cache, &config()).unwrap();
        for case in ours {
            let label = format!("{:?}/{}", variant["compressor"], case["name"]);
            assert_eq!(
                case["django_equal"], true,
                "{label}: django-redis read something else"
            );
            assert_eq!(
                case["django_key_kept"], true,
                "{label}: django-redis dropped the key"
            );
            assert_eq!(case["physical_key"], case["django_physical_key"], "{label}");
            // Write the same session again: the bytes stored must be the ones django-redis read.
            let key = key(case);
            let data = data(case);
            let record = session_core::SessionRecord {
                data: &data,
                expires_at: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
                expiry_age: 3600,
            };
            store
                .save(&key, record, session_core::SaveMode::MustCreate)
                .await
                .unwrap();
            let stored = memory
                .get(&store.physical_key(&key))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                stored,
                raw(case),
                "{label}: we no longer write the bytes django-redis accepted; rerun \
                 fixtures/django/generate_django_redis.py to check the new ones"
            );
        }
    }
}
