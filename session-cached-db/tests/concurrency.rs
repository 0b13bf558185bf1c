//! The `merge` and `reject` concurrency policies through the cache: the capability is the
//! database's, a versioned load reads the row (never a cached copy), and a compare-and-swap
//! updates the cache as a save does, or removes the copy when it loses, so a stale cache entry
//! never hides the newer row.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use session_cache::{Cache, MemoryCache};
use session_cached_db::CachedDbStore;
use session_core::{
    ClearExpired, ConcurrencyPolicy, Dict, Error, LoadedRecord, SaveMode, Session, SessionConfig,
    SessionKey, SessionRecord, SessionStore, Value,
};
use session_db::SqliteStore;
use support::{Counting, TestCache, config, unpickled};

type Store = Arc<CachedDbStore<Counting<SqliteStore>>>;

async fn counted() -> (Store, Arc<TestCache>, Arc<support::Calls>) {
    let config = config();
    let cache = TestCache::new();
    let (db, calls) = Counting::new(support::sqlite(&config).await);
    let store = CachedDbStore::new(cache.cache(), db, &config).unwrap();
    (Arc::new(store), cache, calls)
}

fn session<S: SessionStore + 'static>(
    store: &Arc<S>,
    policy: ConcurrencyPolicy,
    key: Option<&str>,
) -> Session {
    let config = SessionConfig {
        concurrency: policy,
        ..config()
    };
    Session::new(store.clone(), Arc::new(config), key)
}

async fn saved(store: &Store, pairs: &[(&str, i64)]) -> SessionKey {
    let s = session(store, ConcurrencyPolicy::LastWriteWins, None);
    for (k, v) in pairs {
        s.insert(*k, v).await.unwrap();
    }
    s.save().await.unwrap();
    s.key().unwrap()
}

/// Changes the row only, as a process without the cache would (a `db` engine, SQL by hand).
async fn db_only_write(store: &Store, key: &SessionKey, pairs: &[(&str, i64)]) {
    let db = Arc::new(store.db().inner.clone());
    let s = session(&db, ConcurrencyPolicy::LastWriteWins, Some(key.as_str()));
    for (k, v) in pairs {
        s.insert(*k, v).await.unwrap();
    }
    s.save().await.unwrap();
}

#[tokio::test]
async fn the_capability_is_the_databases() {
    let config = config();
    let cache = || Cache::new(MemoryCache::new());
    let db = CachedDbStore::new(cache(), support::sqlite(&config).await, &config).unwrap();
    assert!(db.capabilities().compare_and_swap);
    assert!(ConcurrencyPolicy::Reject.check_store(&db).is_ok());

    // A database store that cannot compare-and-swap makes the cached store refuse the policies.
    let basic =
        CachedDbStore::new(cache(), Basic(session_core::MemoryStore::new()), &config).unwrap();
    assert!(!basic.capabilities().compare_and_swap);
    assert!(matches!(
        ConcurrencyPolicy::Merge.check_store(&basic),
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn a_versioned_load_reads_the_row_even_when_the_cache_holds_a_copy() {
    let (store, cache, calls) = counted().await;
    let key = saved(&store, &[("n", 1)]).await;
    db_only_write(&store, &key, &[("n", 2)]).await;
    // The cache still holds the old copy, which a plain load serves (as Django's would).
    let physical = store.physical_key(&key);
    assert_eq!(
        unpickled(&cache.peek(&physical).await.unwrap()).get("n"),
        Some(&Value::from(1))
    );

    let loads = calls.load.load(Ordering::SeqCst);
    let record = store.load_versioned(&key).await.unwrap().unwrap();
    assert_eq!(record.data.get("n"), Some(&Value::from(2)));
    assert_eq!(
        calls.load.load(Ordering::SeqCst),
        loads + 1,
        "the row must be read"
    );
    assert!(record.expires_at.is_some(), "the row's expiry");

    // A session under merge sees the row, not the copy.
    let s = session(&store, ConcurrencyPolicy::Merge, Some(key.as_str()));
    assert_eq!(s.get::<i64>("n").await.unwrap(), Some(2));
}

#[tokio::test]
async fn a_versioned_load_refills_a_missing_cache_entry() {
    let (store, cache, _) = counted().await;
    let key = saved(&store, &[("n", 1)]).await;
    let physical = store.physical_key(&key);
    store.cache().delete(&store.cache_key(&key)).await.unwrap();
    assert!(store.load_versioned(&key).await.unwrap().is_some());
    let entry = cache.peek(&physical).await.expect("refilled");
    assert_eq!(unpickled(&entry).get("n"), Some(&Value::from(1)));
}

#[tokio::test]
async fn a_successful_compare_and_swap_writes_the_cache_through() {
    let (store, cache, _) = counted().await;
    let key = saved(&store, &[("n", 1)]).await;
    let (a, b) = (
        session(&store, ConcurrencyPolicy::Merge, Some(key.as_str())),
        session(&store, ConcurrencyPolicy::Merge, Some(key.as_str())),
    );
    a.keys().await.unwrap();
    b.keys().await.unwrap();
    a.insert("a", &1).await.unwrap();
    a.save().await.unwrap();
    b.insert("b", &2).await.unwrap();
    b.save().await.unwrap(); // conflicts once, then merges

    let entry = unpickled(&cache.peek(&store.physical_key(&key)).await.unwrap());
    let keys: Vec<&str> = entry.keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["n", "a", "b"]);
    assert_eq!(Some(entry), store.db().inner.load(&key).await.unwrap());
}

#[tokio::test]
async fn a_lost_compare_and_swap_removes_the_cached_copy() {
    let (store, cache, _) = counted().await;
    let key = saved(&store, &[("n", 1)]).await;
    let physical = store.physical_key(&key);
    let ours = session(&store, ConcurrencyPolicy::Reject, Some(key.as_str()));
    ours.keys().await.unwrap();

    // Another process changes the row without the cache: the copy is now stale.
    db_only_write(&store, &key, &[("n", 2)]).await;
    assert!(cache.peek(&physical).await.is_some());

    ours.insert("mine", &1).await.unwrap();
    assert!(matches!(ours.save().await, Err(Error::Conflict)));
    assert!(
        cache.peek(&physical).await.is_none(),
        "the stale copy survived"
    );
    // So a plain load now reads the newer row.
    let loaded = store.load(&key).await.unwrap().unwrap();
    assert_eq!(loaded.get("n"), Some(&Value::from(2)));
    assert_eq!(loaded.get("mine"), None);
}

#[tokio::test]
async fn a_compare_and_swap_onto_a_deleted_row_removes_the_cached_copy() {
    let (store, cache, _) = counted().await;
    let key = saved(&store, &[("n", 1)]).await;
    let physical = store.physical_key(&key);
    let ours = session(&store, ConcurrencyPolicy::Merge, Some(key.as_str()));
    ours.keys().await.unwrap();

    store.db().inner.delete(&key).await.unwrap(); // not through the cached store
    assert!(
        store.load(&key).await.unwrap().is_some(),
        "as Django: served from the cache"
    );

    ours.insert("mine", &1).await.unwrap();
    assert!(matches!(ours.save().await, Err(Error::SessionDeleted)));
    assert!(cache.peek(&physical).await.is_none());
    assert_eq!(store.load(&key).await.unwrap(), None);
}

/// A database store that forwards the basic operations only, so it cannot compare-and-swap.
#[derive(Debug)]
struct Basic<S>(S);

#[async_trait::async_trait]
impl<S: SessionStore> SessionStore for Basic<S> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        self.0.load(key).await
    }
    async fn load_with_expiry(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        self.0.load_with_expiry(key).await
    }
    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.0.exists(key).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.0.save(key, record, mode).await
    }
    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.0.delete(key).await
    }
    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.0.clear_expired().await
    }
}
