//! A real Redis going away and coming back, in front of a database: every operation keeps
//! succeeding from the database while Redis is down, failures are logged as Django logs them, the
//! same store uses Redis again once it is back, and a Redis that comes back holding old data
//! (persistence on) never serves it.
//!
//! Each test starts its own `redis-server` on a free loopback port as a child process (never the
//! shared one) and kills it mid-run.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_cache::{Cache, RedisCache};
use session_cached_db::{CachedDbStore, LOG_TARGET};
use session_core::{Session, SessionKey, SessionStore, Value};
use session_db::SqliteStore;
use support::{RedisServer, config, with_logs};
use tracing::Level;

/// Far longer than any call may take while Redis is down (timeouts are well under a second).
const HANG: Duration = Duration::from_secs(15);

async fn store_on(server: &RedisServer) -> Arc<CachedDbStore<SqliteStore>> {
    let config = config();
    let redis = RedisCache::builder(&server.url())
        .connection_timeout(Duration::from_millis(300))
        .response_timeout(Duration::from_millis(500))
        .reconnect_attempts(1)
        .connect()
        .await
        .unwrap();
    let db = support::sqlite(&config).await;
    Arc::new(CachedDbStore::new(Cache::new(redis), db, &config).unwrap())
}

fn session(store: &Arc<CachedDbStore<SqliteStore>>, key: Option<&str>) -> Session {
    Session::new(store.clone(), Arc::new(config()), key)
}

/// What Redis itself holds under `physical_key`.
async fn raw_get(server: &RedisServer, physical_key: &str) -> Option<Vec<u8>> {
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("GET")
        .arg(physical_key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

fn v(store_value: Option<session_core::Dict>) -> Option<Value> {
    store_value.and_then(|data| data.get("v").cloned())
}

/// Retries `operation` until it says the cache is in use again (the client reconnects by itself).
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !done().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_redis_outage_never_fails_an_operation_and_the_same_store_recovers() {
    let test = "a_redis_outage_never_fails_an_operation_and_the_same_store_recovers";
    let Some(mut server) = RedisServer::start(test, &["--save", "", "--appendonly", "no"]) else {
        return;
    };
    let ((), events) = with_logs(async {
        let store = store_on(&server).await;
        let s = session(&store, None);
        s.insert("v", &1).await.unwrap();
        s.save().await.unwrap();
        let key = s.key().unwrap();
        let physical = store.physical_key(&key);
        assert!(raw_get(&server, &physical).await.is_some(), "cached");

        server.kill();
        tokio::time::timeout(HANG, async {
            // Reads come from the database.
            assert_eq!(v(store.load(&key).await.unwrap()), Some(1.into()));
            assert!(store.exists(&key).await.unwrap());
            let during = session(&store, Some(key.as_str()));
            assert_eq!(during.get::<i64>("v").await.unwrap(), Some(1));
            // Updates, creates and deletes reach the database.
            during.insert("v", &2).await.unwrap();
            during.save().await.unwrap();
            let created = session(&store, None);
            created.insert("v", &3).await.unwrap();
            created.save().await.unwrap();
            let created = created.key().unwrap();
            assert_eq!(v(store.db().load(&created).await.unwrap()), Some(3.into()));
            assert_eq!(v(store.load(&key).await.unwrap()), Some(2.into()));
            let doomed = session(&store, Some(created.as_str()));
            doomed.flush().await.unwrap();
            assert_eq!(store.db().load(&created).await.unwrap(), None);
            assert_eq!(store.load(&created).await.unwrap(), None);
        })
        .await
        .expect("an operation hung while Redis was down");

        // Back, empty: the same store refills and serves from Redis again.
        server.restart();
        eventually("a refill", async || {
            store.load(&key).await.unwrap();
            raw_get(&server, &physical).await.is_some()
        })
        .await;
        assert_eq!(v(store.load(&key).await.unwrap()), Some(2.into()));
        assert_eq!(store.stale_sessions(), 0);
        let after = session(&store, None);
        after.insert("v", &4).await.unwrap();
        after.save().await.unwrap();
        let after = after.key().unwrap();
        assert!(
            raw_get(&server, &store.physical_key(&after))
                .await
                .is_some()
        );
        // Served from Redis: the row is gone, the cached copy is not (Django's behaviour for rows
        // deleted behind the store's back).
        store.db().delete(&after).await.unwrap();
        assert_eq!(v(store.load(&after).await.unwrap()), Some(4.into()));
    });
    let on_target: Vec<_> = events.iter().filter(|e| e.target == LOG_TARGET).collect();
    assert!(
        on_target.iter().any(|e| e.level == Level::WARN
            && e.message.starts_with("Error reading from cache (")
            && e.fields["error"].contains("redis error")),
        "{on_target:#?}"
    );
    assert!(
        on_target.iter().any(|e| e.level == Level::ERROR
            && e.message.starts_with("Error saving to cache (")
            && e.fields["error"].contains("redis error")),
        "{on_target:#?}"
    );
}

/// Redis with persistence comes back holding the entries of before the outage; the writes and
/// deletes made meanwhile reached only the database. Those old entries must never be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_comes_back_with_old_data_never_serves_it() {
    let test = "a_redis_that_comes_back_with_old_data_never_serves_it";
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap().to_owned();
    let Some(mut server) = RedisServer::start(
        test,
        &[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            &dir_arg,
        ],
    ) else {
        return;
    };
    let store = store_on(&server).await;
    let updated = session(&store, None);
    updated.insert("v", &1).await.unwrap();
    updated.save().await.unwrap();
    let deleted = session(&store, None);
    deleted.insert("v", &1).await.unwrap();
    deleted.save().await.unwrap();
    let (updated_key, deleted_key) = (updated.key().unwrap(), deleted.key().unwrap());

    server.kill();
    tokio::time::timeout(HANG, async {
        updated.insert("v", &2).await.unwrap();
        updated.save().await.unwrap();
        deleted.flush().await.unwrap();
    })
    .await
    .expect("an operation hung while Redis was down");
    assert_eq!(store.stale_sessions(), 2);

    server.restart();
    // The scenario: Redis really does hold the old entries again.
    for key in [&updated_key, &deleted_key] {
        assert!(
            raw_get(&server, &store.physical_key(key)).await.is_some(),
            "Redis did not come back with its old data"
        );
    }
    // Whatever the reconnection does, the old data is never served...
    let check = async |store: &CachedDbStore<SqliteStore>, key: &SessionKey| {
        (
            v(store.load(key).await.unwrap()),
            store.exists(key).await.unwrap(),
        )
    };
    eventually("the removal of stale entries", async || {
        assert_eq!(check(&store, &updated_key).await, (Some(2.into()), true));
        assert_eq!(check(&store, &deleted_key).await, (None, false));
        store.stale_sessions() == 0
    })
    .await;
    // ...and once the cache is clean, it serves the current data again.
    assert_eq!(
        raw_get(&server, &store.physical_key(&deleted_key)).await,
        None
    );
    eventually("a refill with the current data", async || {
        assert_eq!(v(store.load(&updated_key).await.unwrap()), Some(2.into()));
        raw_get(&server, &store.physical_key(&updated_key))
            .await
            .is_some()
    })
    .await;
    let cached = raw_get(&server, &store.physical_key(&updated_key))
        .await
        .unwrap();
    let Value::Dict(cached) = session_core::serializer::SerializerName::Pickle
        .serializer()
        .loads_stored_bytes(&cached)
        .unwrap()
    else {
        panic!("not a dict")
    };
    assert_eq!(cached.get("v"), Some(&Value::from(2)));
}
