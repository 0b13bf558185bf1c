//! Django's session behaviours (the shared conformance suite) on the cached-db store: an
//! in-process cache in front of SQLite always, Redis in front of PostgreSQL when both URLs are
//! set, and the in-process cache in front of MySQL/MariaDB when its URL is. Each behaviour gets a
//! fresh database (or table) and a fresh cache key prefix.

mod support;

use session_cache::{Cache, MemoryCache};
use session_cached_db::CachedDbStore;
use session_conformance::{Capabilities, Fixture, services, session_conformance};

// The cache's whole-second lifetimes never show: an entry that expires early is read from the
// database, so the store expires exactly as the database does.
fn fixture(store: impl session_core::SessionStore + 'static) -> Fixture {
    Fixture::new(store)
        .with_config(support::config())
        .with_capabilities(Capabilities::server_side())
}

session_conformance!(memory_sqlite, async {
    fixture(support::memory_sqlite().await)
});

// A database store that reports no expiry (the trait's default, unlike `MemoryStore`, which reports
// it): the cache lifetime then comes from the session data, and every behaviour must
// still hold.
session_conformance!(memory_memorystore, async {
    let config = support::config();
    fixture(
        CachedDbStore::new(
            Cache::new(MemoryCache::new()),
            support::NoExpiry::default(),
            &config,
        )
        .unwrap(),
    )
});

session_conformance!(redis_postgres, async {
    let redis = match services::url(services::REDIS_URL) {
        Ok(url) => url,
        Err(skip) => return skip,
    };
    let postgres = match services::url(services::POSTGRES_URL) {
        Ok(url) => url,
        Err(skip) => return skip,
    };
    let config = support::config();
    let db = support::PgTable::create(&postgres, &config).await;
    fixture(CachedDbStore::new(support::redis_cache(&redis).await, db, &config).unwrap())
});

// MariaDB (or MySQL) behind the in-process cache: its compare-and-swap compares bytes whatever
// the collation.
session_conformance!(memory_mysql, async {
    let mysql = match services::url(services::MYSQL_URL) {
        Ok(url) => url,
        Err(skip) => return skip,
    };
    let config = support::config();
    let db = support::MySqlTable::create(&mysql, &config).await;
    fixture(CachedDbStore::new(Cache::new(MemoryCache::new()), db, &config).unwrap())
});
