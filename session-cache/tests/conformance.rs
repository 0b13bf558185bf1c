//! Django's session behaviours (the conformance suite) against the cache store on every backend:
//! the in-process cache always; Redis (single, Cluster, Sentinel, and zlib-compressed as
//! django-redis stores it) and memcached when their URLs are set. Every backend declares
//! compare-and-swap, so the concurrency behaviours run on each.
#![cfg(any(feature = "memory", feature = "redis", feature = "memcached"))]

mod support;

use session_cache::{Cache, CacheStore};
use session_conformance::{Capabilities, Fixture, session_conformance};
use session_core::serializer::SerializerName;

#[allow(dead_code)] // unused when no backend feature is on
fn fixture(cache: Cache, config: session_core::SessionConfig) -> Fixture {
    match CacheStore::new(cache, &config) {
        Ok(store) => Fixture::new(store)
            .with_config(config)
            .with_capabilities(Capabilities::cache()),
        Err(error) => Fixture::skip(format!("the cache store could not be built: {error}")),
    }
}

#[allow(dead_code)] // unused when no backend feature is on
fn pickle_config() -> session_core::SessionConfig {
    session_core::SessionConfig {
        serializer: SerializerName::Pickle,
        ..session_conformance::config()
    }
}

#[cfg(feature = "memory")]
session_conformance!(memory, async {
    fixture(support::memory_cache(), session_conformance::config())
});

// The serializer Django's cache uses: every value must survive a pickle round trip too.
#[cfg(feature = "memory")]
session_conformance!(memory_pickle, async {
    fixture(support::memory_cache(), pickle_config())
});

#[cfg(feature = "redis")]
session_conformance!(redis, async {
    use session_conformance::services;
    match services::url(services::REDIS_URL) {
        Ok(url) => fixture(support::redis_cache_at(&url).await, pickle_config()),
        Err(skip) => skip,
    }
});

#[cfg(feature = "redis")]
session_conformance!(redis_cluster, async {
    use session_conformance::services;
    match services::url(services::REDIS_CLUSTER_URLS) {
        Ok(urls) => fixture(support::redis_cache_at(&urls).await, pickle_config()),
        Err(skip) => skip,
    }
});

#[cfg(feature = "redis")]
session_conformance!(redis_sentinel, async {
    use session_conformance::services;
    match services::url(support::REDIS_SENTINEL_URLS) {
        Ok(urls) => fixture(
            support::redis_sentinel_cache_at(&urls).await,
            pickle_config(),
        ),
        Err(skip) => skip,
    }
});

#[cfg(feature = "memcached")]
session_conformance!(memcached, async {
    use session_conformance::services;
    match services::url(support::MEMCACHED_URLS) {
        Ok(urls) => fixture(
            support::memcached_cache_at(&support::first_url(&urls)).await,
            pickle_config(),
        ),
        Err(skip) => skip,
    }
});

#[cfg(feature = "memcached")]
session_conformance!(memcached_several_servers, async {
    use session_conformance::services;
    match services::url(support::MEMCACHED_URLS) {
        Ok(urls) if urls.contains(',') => {
            fixture(support::memcached_cache_at(&urls).await, pickle_config())
        }
        Ok(urls) => Fixture::skip(format!("only one memcached server in {urls}")),
        Err(skip) => skip,
    }
});

// django-redis with a compressor: compare-and-swap compares the stored, compressed bytes.
#[cfg(all(feature = "redis", feature = "compression"))]
session_conformance!(redis_zlib, async {
    use session_cache::{CompressedCache, Compressor, RedisCache};
    use session_conformance::services;
    match services::url(services::REDIS_URL) {
        Ok(url) => match RedisCache::connect(&url).await {
            Ok(redis) => fixture(
                Cache::new(CompressedCache::new(redis, Compressor::Zlib))
                    .with_key_prefix(services::unique_name("djsession_test")),
                pickle_config(),
            ),
            Err(error) => Fixture::skip(format!("cannot connect to {url}: {error}")),
        },
        Err(skip) => skip,
    }
});
