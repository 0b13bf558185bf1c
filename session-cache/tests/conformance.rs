//! Django's session behaviours (the conformance suite) against the cache store on every backend:
//! the in-process cache always, a real Redis and a real Redis Cluster when their URLs are set.
#![cfg(any(feature = "memory", feature = "redis"))]

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
