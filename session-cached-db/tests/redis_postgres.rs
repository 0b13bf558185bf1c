//! The store on the real servers (Redis in front of PostgreSQL), where it matters that they are
//! real: the refill lifetime Redis holds comes from the row's `expire_date` as PostgreSQL returns
//! it, a cache hit sends no query, and Redis takes overlong keys in its stride.
//!
//! Skipped unless `SESSION_TEST_REDIS_URL` and `SESSION_TEST_POSTGRES_URL` are set (a failure
//! under `SESSION_TEST_REQUIRE_SERVICES=1`).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use session_cached_db::CachedDbStore;
use session_conformance::services;
use session_core::{Expiry, Session, SessionKey, SessionStore, Value};
use support::{Counting, PgTable, config};
use time::{Duration, OffsetDateTime};

type Store = Arc<CachedDbStore<Counting<PgTable>>>;

/// The store and a raw Redis connection, or `None` when the servers are not configured.
async fn servers(
    test: &str,
) -> Option<(
    Store,
    Arc<support::Calls>,
    redis::aio::MultiplexedConnection,
)> {
    let redis_url = services::url_or_skip(services::REDIS_URL, test)?;
    let postgres_url = services::url_or_skip(services::POSTGRES_URL, test)?;
    let config = config();
    let (db, calls) = Counting::new(PgTable::create(&postgres_url, &config).await);
    let cache = support::redis_cache(&redis_url).await;
    let store = Arc::new(CachedDbStore::new(cache, db, &config).unwrap());
    let raw = redis::Client::open(redis_url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    Some((store, calls, raw))
}

fn session(store: &Store, key: Option<&str>) -> Session {
    Session::new(store.clone(), Arc::new(config()), key)
}

#[tokio::test]
async fn the_refill_lifetime_in_redis_is_the_time_left_on_the_postgres_row() {
    let Some((store, calls, mut raw)) =
        servers("the_refill_lifetime_in_redis_is_the_time_left_on_the_postgres_row").await
    else {
        return;
    };
    let s = session(&store, None);
    s.insert("a", &1).await.unwrap();
    let expires = OffsetDateTime::now_utc() + Duration::seconds(1000) + Duration::milliseconds(500);
    s.set_expiry(Expiry::At(expires)).await.unwrap();
    s.save().await.unwrap();
    let key = s.key().unwrap();
    let physical = store.physical_key(&key);
    let ttl: i64 = redis::cmd("TTL")
        .arg(&physical)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!((999..=1000).contains(&ttl), "save lifetime {ttl}");

    let _: i64 = redis::cmd("DEL")
        .arg(&physical)
        .query_async(&mut raw)
        .await
        .unwrap();
    let loaded = store.load_with_expiry(&key).await.unwrap().unwrap();
    assert_eq!(loaded.data.get("a"), Some(&Value::from(1)));
    assert_eq!(
        loaded.expires_at,
        Some(session_core::expiry::to_python_datetime(expires)),
        "PostgreSQL's expire_date, in the same query"
    );
    assert_eq!(calls.load.load(Ordering::SeqCst), 1);
    let ttl: i64 = redis::cmd("TTL")
        .arg(&physical)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!((999..=1000).contains(&ttl), "refill lifetime {ttl}");
}

#[tokio::test]
async fn exists_searches_cache_first_on_redis_and_postgres() {
    let Some((store, calls, _raw)) =
        servers("exists_searches_cache_first_on_redis_and_postgres").await
    else {
        return;
    };
    let s = session(&store, None);
    s.save().await.unwrap();
    let key = s.key().unwrap();
    let before = calls.total();
    assert!(store.exists(&key).await.unwrap());
    assert_eq!(store.load(&key).await.unwrap(), Some(Default::default()));
    assert_eq!(calls.total(), before, "no query for a cached session");
}

#[tokio::test]
async fn load_overlong_key_on_redis_and_postgres() {
    let Some((store, _calls, _raw)) = servers("load_overlong_key_on_redis_and_postgres").await
    else {
        return;
    };
    let key = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".repeat(20);
    let s = session(&store, Some(&key));
    assert_eq!(s.load().await.unwrap(), session_core::Dict::new());
    assert_eq!(s.key(), None);
    assert!(!store.exists(&SessionKey::new(key).unwrap()).await.unwrap());
}
