//! A cache entry never keeps data the database has already replaced, when the write that made it
//! stale was versioned (a `merge` or `reject` save, or a refill after a versioned read).
//!
//! A save writes the row, then the cache entry. Two saves of one session can finish their row
//! writes in one order and their cache writes in the other, which leaves the older data in the
//! cache: under `merge` that is an acknowledged update every cached reader misses, although the
//! database has it. Each write therefore checks, after its cache write, that the row is still at
//! the version it cached, and removes the entry when it is not. These tests hold one cache write
//! at a gate while the other write completes, making the crossing deterministic.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;

use session_cache::{Cache, CacheBackend};
use session_cached_db::CachedDbStore;
use session_core::{
    ConcurrencyPolicy, Dict, SaveMode, Session, SessionConfig, SessionKey, SessionRecord,
    SessionStore,
};
use session_db::SqliteStore;
use support::{GatedCache, config, unpickled};
use time::{Duration, OffsetDateTime};

struct Fixture {
    store: Arc<CachedDbStore<SqliteStore>>,
    cache: Arc<GatedCache>,
}

impl Fixture {
    async fn new() -> Fixture {
        let config = config();
        let cache = Arc::new(GatedCache::default());
        let db = support::sqlite(&config).await;
        let store = CachedDbStore::new(Cache::from_arc(cache.clone()), db, &config).unwrap();
        Fixture {
            store: Arc::new(store),
            cache,
        }
    }

    fn session(&self, key: Option<&SessionKey>, policy: ConcurrencyPolicy) -> Session {
        let config = SessionConfig {
            concurrency: policy,
            ..config()
        };
        Session::new(
            self.store.clone(),
            Arc::new(config),
            key.map(SessionKey::as_str),
        )
    }

    /// A session holding `count = 0`, saved (row and cache entry).
    async fn counter(&self) -> SessionKey {
        let session = self.session(None, ConcurrencyPolicy::LastWriteWins);
        session.insert("count", &0).await.unwrap();
        session.save().await.unwrap();
        session.key().unwrap()
    }

    /// One request under `policy`: reads `count`, stores `count + 1` under `field`.
    async fn increment(&self, key: &SessionKey, policy: ConcurrencyPolicy, field: &str) {
        let session = self.session(Some(key), policy);
        let count = session.get::<i64>("count").await.unwrap().unwrap_or(0);
        session.insert(field, &(count + 1)).await.unwrap();
        session.save().await.unwrap();
    }

    /// What the cache holds for `key`, decoded, without going through the store.
    async fn cached(&self, key: &SessionKey) -> Option<Dict> {
        let physical = self.store.physical_key(key);
        let bytes = self.cache.inner.get(&physical).await.unwrap()?;
        Some(unpickled(&bytes))
    }

    /// The row's data, read from the database alone.
    async fn row(&self, key: &SessionKey) -> Dict {
        self.store.db().load(key).await.unwrap().unwrap()
    }

    /// The cache holds nothing for `key` or exactly the row's data, and a plain (cached) load
    /// answers the row's data.
    async fn assert_cache_agrees(&self, key: &SessionKey) {
        let row = self.row(key).await;
        if let Some(cached) = self.cached(key).await {
            assert_eq!(cached, row, "the cache entry is older than the row");
        }
        assert_eq!(self.store.load(key).await.unwrap(), Some(row));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_merge_saves_whose_cache_writes_cross_leave_no_older_copy_cached() {
    let f = Fixture::new().await;
    let key = f.counter().await;

    // The first request's row write lands; its cache write waits.
    f.cache.set_gate.arm();
    let first = {
        let session = f.session(Some(&key), ConcurrencyPolicy::Merge);
        tokio::spawn(async move {
            session.insert("a", &1).await.unwrap();
            session.save().await.unwrap();
        })
    };
    f.cache.set_gate.reached().await;
    // A second request reads the first one's row, adds to it, and saves, cache and all.
    f.increment(&key, ConcurrencyPolicy::Merge, "b").await;
    assert_eq!(f.cached(&key).await, Some(f.row(&key).await));
    // Now the first request's cache write lands, over the newer entry.
    f.cache.set_gate.release();
    first.await.unwrap();

    let row = f.row(&key).await;
    assert_eq!(row.get("a"), Some(&1i64.into()));
    assert_eq!(row.get("b"), Some(&1i64.into()));
    f.assert_cache_agrees(&key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reject_saves_whose_cache_writes_cross_leave_no_older_copy_cached() {
    let f = Fixture::new().await;
    let key = f.counter().await;

    f.cache.set_gate.arm();
    let first = {
        let session = f.session(Some(&key), ConcurrencyPolicy::Reject);
        tokio::spawn(async move {
            session.insert("count", &1).await.unwrap();
            session.save().await.unwrap();
        })
    };
    f.cache.set_gate.reached().await;
    // Read after the first save's row write, so this one is not stale and is accepted.
    f.increment(&key, ConcurrencyPolicy::Reject, "count").await;
    f.cache.set_gate.release();
    first.await.unwrap();

    assert_eq!(f.row(&key).await.get("count"), Some(&2i64.into()));
    f.assert_cache_agrees(&key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refill_landing_after_the_row_changed_leaves_no_older_copy_cached() {
    for policy in [ConcurrencyPolicy::LastWriteWins, ConcurrencyPolicy::Merge] {
        let f = Fixture::new().await;
        let key = f.counter().await;
        // Evict the entry, so the next load reads the row and refills.
        f.cache
            .inner
            .delete(&f.store.physical_key(&key))
            .await
            .unwrap();

        f.cache.add_gate.arm();
        let reader = {
            let session = f.session(Some(&key), policy);
            tokio::spawn(async move { session.get::<i64>("count").await.unwrap() })
        };
        f.cache.add_gate.reached().await;
        // The row changes while the refill waits, by a process that does not use the cache (the
        // cache entry is absent, so the refill's `add` still succeeds).
        let mut data = f.row(&key).await;
        data.insert("count".to_owned(), 5i64.into());
        f.store
            .db()
            .save(
                &key,
                SessionRecord {
                    data: &data,
                    expires_at: OffsetDateTime::now_utc() + Duration::hours(1),
                    expiry_age: 3600,
                },
                SaveMode::Update,
            )
            .await
            .unwrap();
        f.cache.add_gate.release();
        assert_eq!(
            reader.await.unwrap(),
            Some(0),
            "{policy}: read before the change"
        );

        assert_eq!(
            f.cached(&key).await,
            None,
            "{policy}: the older copy stayed"
        );
        f.assert_cache_agrees(&key).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioned_save_that_finds_its_row_unchanged_keeps_its_cache_entry() {
    let f = Fixture::new().await;
    let key = f.counter().await;
    f.increment(&key, ConcurrencyPolicy::Merge, "count").await;
    assert_eq!(f.cached(&key).await, Some(f.row(&key).await));
    assert_eq!(f.store.stale_sessions(), 0);
}
