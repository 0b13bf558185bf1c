//! A Django site writing a session between our load and our save, on every backend: Django's
//! bytes (recorded from Django 5.2 in `fixtures/django/cache-sessions.json`) are put at the
//! session's key the way Django's cache puts them (a raw `SET` on Redis, pymemcache's `set` on
//! memcached, django-redis's zlib compression), and then our request saves. Under `reject` the
//! save is a conflict and Django's bytes stay exactly as written; under `merge` our change lands
//! on top of Django's session, and Django's keys survive.
#![cfg(any(feature = "memory", feature = "redis", feature = "memcached"))]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
#![allow(dead_code)] // each backend feature uses a different part

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value as Json;
use session_cache::{Cache, CacheStore};
use session_core::value::dicts_identical;
use session_core::{ConcurrencyPolicy, Error, Session, SessionConfig, SessionStore, Value};
use support::fixture::{cases, data, raw};

/// Writes the given bytes at the given physical key, as Django's side of the cache does.
type DjangoWriter = Box<dyn Fn(String, Vec<u8>) -> Pin<Box<dyn Future<Output = ()> + Send>>>;

/// Django's `login()` as recorded: a session holding `_auth_user_id` and its backend.
fn django_login() -> Json {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/django/cache-sessions.json"
    );
    let fixture: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    cases(&fixture, "django_wrote", Some("session"))
        .into_iter()
        .find(|case| case["name"] == "logged_in_user")
        .unwrap()
        .clone()
}

fn config(policy: ConcurrencyPolicy) -> Arc<SessionConfig> {
    Arc::new(SessionConfig {
        concurrency: policy,
        ..session_conformance::config()
    })
}

/// Our request reads the session, Django writes its login into it, our request saves a cart.
async fn django_writes_between_our_load_and_save(
    cache: Cache,
    django: DjangoWriter,
    policy: ConcurrencyPolicy,
) {
    let login = django_login();
    let store: Arc<dyn SessionStore> =
        Arc::new(CacheStore::new(cache.clone(), &config(policy)).unwrap());
    let physical = |key: &session_core::SessionKey| {
        CacheStore::new(cache.clone(), &config(policy))
            .unwrap()
            .physical_key(key)
    };

    let first = Session::new(store.clone(), config(policy), None);
    first.insert("visits", &1).await.unwrap();
    first.save().await.unwrap();
    let key = first.key().unwrap();

    let ours = Session::new(store.clone(), config(policy), Some(key.as_str()));
    assert_eq!(ours.get::<i64>("visits").await.unwrap(), Some(1));
    django(physical(&key), raw(&login)).await;
    ours.insert("cart", &vec![3, 1, 4]).await.unwrap();
    let saved = ours.save().await;

    let stored = store.load(&key).await.unwrap().unwrap();
    match policy {
        ConcurrencyPolicy::Reject => {
            assert!(matches!(saved, Err(Error::Conflict)), "{saved:?}");
            assert!(
                dicts_identical(&stored, &data(&login)),
                "Django's session must stay as Django wrote it: {stored:?}"
            );
        }
        ConcurrencyPolicy::Merge => {
            saved.unwrap();
            let mut expected = data(&login);
            expected.insert(
                "cart".to_owned(),
                Value::List(vec![Value::from(3), Value::from(1), Value::from(4)]),
            );
            assert!(
                dicts_identical(&stored, &expected),
                "our cart on top of Django's login, without our stale visits: {stored:?}"
            );
        }
        ConcurrencyPolicy::LastWriteWins => unreachable!("not exercised here"),
    }
    store.delete(&key).await.unwrap();
}

const POLICIES: [ConcurrencyPolicy; 2] = [ConcurrencyPolicy::Reject, ConcurrencyPolicy::Merge];

#[cfg(feature = "memory")]
#[tokio::test]
async fn a_write_by_another_client_between_load_and_save_is_seen_on_the_memory_cache() {
    for policy in POLICIES {
        let cache = support::memory_cache();
        let backend = Arc::clone(cache.backend());
        let writer: DjangoWriter = Box::new(move |key, bytes| {
            let backend = Arc::clone(&backend);
            Box::pin(async move {
                let ttl = session_cache::Ttl::from_age(300).unwrap();
                backend.set(&key, Bytes::from(bytes), ttl).await.unwrap();
            })
        });
        django_writes_between_our_load_and_save(cache, writer, policy).await;
    }
}

#[cfg(feature = "redis")]
fn raw_redis_set(redis: session_cache::RedisCache, compress: bool) -> DjangoWriter {
    Box::new(move |key, bytes| {
        let redis = redis.clone();
        Box::pin(async move {
            #[cfg(feature = "compression")]
            let bytes = if compress {
                session_cache::Compressor::Zlib.compress(&bytes)
            } else {
                bytes
            };
            #[cfg(not(feature = "compression"))]
            let _ = compress;
            let _: () = redis
                .command(redis::cmd("SET").arg(&key).arg(bytes).arg("EX").arg(300))
                .await
                .unwrap();
        })
    })
}

#[cfg(feature = "redis")]
async fn redis_case(variable: &str, test: &str, compress: bool) {
    let Some(urls) = session_conformance::services::url_or_skip(variable, test) else {
        return;
    };
    for policy in POLICIES {
        let redis = session_cache::RedisCache::connect(&urls).await.unwrap();
        let writer = raw_redis_set(redis.clone(), compress);
        let cache = if compress {
            #[cfg(feature = "compression")]
            {
                Cache::new(session_cache::CompressedCache::new(
                    redis,
                    session_cache::Compressor::Zlib,
                ))
            }
            #[cfg(not(feature = "compression"))]
            unreachable!("compression tests need the feature")
        } else {
            Cache::new(redis)
        };
        let cache = cache.with_key_prefix(session_conformance::services::unique_name("djrace"));
        django_writes_between_our_load_and_save(cache, writer, policy).await;
    }
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_raw_redis_set_between_load_and_save_is_seen_on_redis() {
    redis_case(
        session_conformance::services::REDIS_URL,
        "a_raw_redis_set_between_load_and_save_is_seen_on_redis",
        false,
    )
    .await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_raw_redis_set_between_load_and_save_is_seen_on_a_redis_cluster() {
    redis_case(
        session_conformance::services::REDIS_CLUSTER_URLS,
        "a_raw_redis_set_between_load_and_save_is_seen_on_a_redis_cluster",
        false,
    )
    .await;
}

#[cfg(all(feature = "redis", feature = "compression"))]
#[tokio::test]
async fn a_django_redis_compressed_write_between_load_and_save_is_seen() {
    redis_case(
        session_conformance::services::REDIS_URL,
        "a_django_redis_compressed_write_between_load_and_save_is_seen",
        true,
    )
    .await;
}

#[cfg(feature = "memcached")]
#[tokio::test]
async fn a_pymemcache_set_between_load_and_save_is_seen_on_memcached() {
    for policy in POLICIES {
        let Some(cache) = support::memcached_cache_or_skip(
            false,
            "a_pymemcache_set_between_load_and_save_is_seen_on_memcached",
        )
        .await
        else {
            return;
        };
        let backend = Arc::clone(cache.backend());
        // pymemcache's `set` with its pickle flag, exactly what MemcachedCache::set sends.
        let writer: DjangoWriter = Box::new(move |key, bytes| {
            let backend = Arc::clone(&backend);
            Box::pin(async move {
                let ttl = session_cache::Ttl::from_age(300).unwrap();
                backend.set(&key, Bytes::from(bytes), ttl).await.unwrap();
            })
        });
        django_writes_between_our_load_and_save(cache, writer, policy).await;
    }
}

/// Another client rewriting the very bytes stored (Django re-saving an unchanged session within
/// the same second) is still a write: a `reject` save that read before it conflicts. The stored
/// bytes alone could not tell; the version's stamp (Redis's expiry, memcached's `cas unique`, the
/// memory cache's write counter) does.
async fn a_rewrite_of_the_same_bytes_is_a_change(cache: Cache) {
    let policy = ConcurrencyPolicy::Reject;
    let cache_store = CacheStore::new(cache.clone(), &config(policy)).unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(cache_store.clone());
    let first = Session::new(store.clone(), config(policy), None);
    first.insert("n", &1).await.unwrap();
    first.save().await.unwrap();
    let key = first.key().unwrap();

    let ours = Session::new(store.clone(), config(policy), Some(key.as_str()));
    assert_eq!(ours.get::<i64>("n").await.unwrap(), Some(1));
    // A millisecond later at least, so Redis's expiry (to the millisecond) moves.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let physical = cache_store.physical_key(&key);
    let held = cache.backend().get(&physical).await.unwrap().unwrap();
    let ttl = session_cache::Ttl::from_age(1_209_600).unwrap();
    cache.backend().set(&physical, held, ttl).await.unwrap();
    ours.insert("n", &2).await.unwrap();
    let saved = ours.save().await;
    assert!(matches!(saved, Err(Error::Conflict)), "{saved:?}");
    assert_eq!(
        store.load(&key).await.unwrap().unwrap().get("n"),
        Some(&Value::from(1))
    );
    store.delete(&key).await.unwrap();
}

#[cfg(feature = "memory")]
#[tokio::test]
async fn a_rewrite_of_the_same_bytes_is_a_change_on_the_memory_cache() {
    a_rewrite_of_the_same_bytes_is_a_change(support::memory_cache()).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_rewrite_of_the_same_bytes_is_a_change_on_redis() {
    let test = "a_rewrite_of_the_same_bytes_is_a_change_on_redis";
    for variable in [
        session_conformance::services::REDIS_URL,
        session_conformance::services::REDIS_CLUSTER_URLS,
    ] {
        if let Some(cache) = support::redis_cache_or_skip(variable, test).await {
            a_rewrite_of_the_same_bytes_is_a_change(cache).await;
        }
    }
}

#[cfg(feature = "memcached")]
#[tokio::test]
async fn a_rewrite_of_the_same_bytes_is_a_change_on_memcached() {
    let test = "a_rewrite_of_the_same_bytes_is_a_change_on_memcached";
    if let Some(cache) = support::memcached_cache_or_skip(false, test).await {
        a_rewrite_of_the_same_bytes_is_a_change(cache).await;
    }
}

/// A server that forgot the scripts (restarted, failed over, `SCRIPT FLUSH`) answers `NOSCRIPT`
/// to `EVALSHA`; the store then sends the source, and saves carry on: on a single server, and
/// behind Sentinel with `WAIT` (where the script travels in a pipeline with `WAIT`, and a
/// `NOSCRIPT` must not send the store looking for another master).
#[cfg(feature = "redis")]
#[tokio::test]
async fn compare_and_swap_survives_a_script_flush() {
    use session_conformance::services;
    let test = "compare_and_swap_survives_a_script_flush";
    let mut servers = Vec::new();
    if let Some(url) = services::url_or_skip(services::REDIS_URL, test) {
        servers.push(session_cache::RedisCache::connect(&url).await.unwrap());
    }
    if let Some(urls) = services::url_or_skip(support::REDIS_SENTINEL_URLS, test) {
        let redis = session_cache::RedisCache::sentinel(&urls, support::REDIS_SENTINEL_MASTER)
            .wait_for_replicas(1, std::time::Duration::from_secs(1))
            .connect()
            .await
            .unwrap();
        servers.push(redis);
    }
    for redis in servers {
        let cache = Cache::new(redis.clone()).with_key_prefix(services::unique_name("djflush"));
        let policy = ConcurrencyPolicy::Merge;
        let store: Arc<dyn SessionStore> =
            Arc::new(CacheStore::new(cache, &config(policy)).unwrap());
        let session = Session::new(store.clone(), config(policy), None);
        session.insert("n", &0).await.unwrap();
        session.save().await.unwrap();
        let key = session.key().unwrap();
        for n in 1..=3 {
            let _: () = redis
                .command(redis::cmd("SCRIPT").arg("FLUSH"))
                .await
                .unwrap();
            let request = Session::new(store.clone(), config(policy), Some(key.as_str()));
            assert_eq!(request.get::<i64>("n").await.unwrap(), Some(n - 1));
            let _: () = redis
                .command(redis::cmd("SCRIPT").arg("FLUSH"))
                .await
                .unwrap();
            request.insert("n", &n).await.unwrap();
            request.save().await.unwrap();
        }
        assert_eq!(
            store.load(&key).await.unwrap().unwrap().get("n"),
            Some(&Value::from(3)),
            "{redis:?}"
        );
        store.delete(&key).await.unwrap();
    }
}
