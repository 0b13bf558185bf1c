//! Shared set-up for the integration tests: caches on every backend, each under a fresh
//! `KEY_PREFIX` so tests and runs never see each other's entries.
#![allow(dead_code)] // each test file uses a different part
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[cfg(any(feature = "memory", feature = "redis"))]
use session_cache::Cache;
#[cfg(feature = "redis")]
use session_conformance::services;

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
