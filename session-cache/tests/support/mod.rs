//! Shared set-up for the integration tests: caches on every backend, each under a fresh
//! `KEY_PREFIX` so tests and runs never see each other's entries.
#![allow(dead_code)] // each test file uses a different part
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

pub mod fixture;

#[cfg(any(feature = "memory", feature = "redis", feature = "memcached"))]
use session_cache::Cache;
#[cfg(any(feature = "redis", feature = "memcached"))]
use session_conformance::services;

/// The memcached servers for the tests: comma-separated `memcache://host:port` URLs. The first
/// is the single-server case; all of them together the multi-server one.
#[cfg(feature = "memcached")]
pub const MEMCACHED_URLS: &str = "SESSION_TEST_MEMCACHED_URLS";

/// The first of the memcached URLs (one server).
#[cfg(feature = "memcached")]
pub fn first_url(urls: &str) -> String {
    urls.split(',').next().unwrap_or_default().trim().to_owned()
}

/// Connects to the memcached servers `urls` under a fresh `KEY_PREFIX`.
#[cfg(feature = "memcached")]
pub async fn memcached_cache_at(urls: &str) -> Cache {
    let memcached = session_cache::MemcachedCache::connect(urls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {urls}: {e}"));
    Cache::new(memcached).with_key_prefix(services::unique_name("djsession_test"))
}

/// A cache on the first memcached server (`several == false`) or on all of them, or `None`
/// after printing that `test` was skipped (a failure under `SESSION_TEST_REQUIRE_SERVICES=1`).
#[cfg(feature = "memcached")]
pub async fn memcached_cache_or_skip(several: bool, test: &str) -> Option<Cache> {
    let urls = services::url_or_skip(MEMCACHED_URLS, test)?;
    let urls = if several {
        assert!(
            urls.contains(','),
            "{MEMCACHED_URLS} must name several servers for the multi-server tests: {urls}"
        );
        urls
    } else {
        first_url(&urls)
    };
    Some(memcached_cache_at(&urls).await)
}

/// A fresh in-process cache.
#[cfg(feature = "memory")]
pub fn memory_cache() -> Cache {
    Cache::new(session_cache::MemoryCache::new())
}

/// Connects to `urls` (one Redis, or comma-separated Cluster seeds) under a fresh `KEY_PREFIX`.
#[cfg(feature = "redis")]
pub async fn redis_cache_at(urls: &str) -> Cache {
    let redis = session_cache::RedisCache::connect(urls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {urls}: {e}"));
    Cache::new(redis).with_key_prefix(services::unique_name("djsession_test"))
}

/// For tests outside the suite: a cache on the server named by `variable`
/// (`SESSION_TEST_REDIS_URL` or `SESSION_TEST_REDIS_CLUSTER_URLS`), or `None` after printing that
/// `test` was skipped (a failure under `SESSION_TEST_REQUIRE_SERVICES=1`).
#[cfg(feature = "redis")]
pub async fn redis_cache_or_skip(variable: &str, test: &str) -> Option<Cache> {
    let urls = services::url_or_skip(variable, test)?;
    Some(redis_cache_at(&urls).await)
}

/// The sentinels of the CI's Sentinel group (`.ci/redis-sentinel`), comma-separated URLs.
#[cfg(feature = "redis")]
pub const REDIS_SENTINEL_URLS: &str = "SESSION_TEST_REDIS_SENTINEL_URLS";

/// The name the CI's sentinels monitor the group under.
#[cfg(feature = "redis")]
pub const REDIS_SENTINEL_MASTER: &str = "djsession";

/// Connects through the sentinels `urls` to the master of [`REDIS_SENTINEL_MASTER`], each write
/// waiting for one replica, under a fresh `KEY_PREFIX`.
#[cfg(feature = "redis")]
pub async fn redis_sentinel_cache_at(urls: &str) -> Cache {
    let redis = session_cache::RedisCache::sentinel(urls, REDIS_SENTINEL_MASTER)
        .wait_for_replicas(1, std::time::Duration::from_secs(1))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect through the sentinels {urls}: {e}"));
    Cache::new(redis).with_key_prefix(services::unique_name("djsession_test"))
}
