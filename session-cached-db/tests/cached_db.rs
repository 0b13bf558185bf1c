//! The cached-db store's own behaviour: Django's `CacheDBSessionTests`, the order of cache and
//! database operations, refill lifetimes, and the failure model (a failing cache never fails an
//! operation and never leads to stale reads).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use bytes::Bytes;
use session_cache::{Cache, CacheError, Caches, MemoryCache};
use session_cached_db::{CachedDbError, CachedDbStore, LOG_TARGET};
use session_core::serializer::SerializerName;
use session_core::{
    ClearExpired, Dict, Error, Expiry, LoadedRecord, MemoryStore, SaveMode, Session, SessionKey,
    SessionRecord, SessionStore, Value,
};
use session_db::SqliteStore;
use support::{Counting, TestCache, config, dict, pickled, unpickled, with_logs};
use time::{Duration, OffsetDateTime};
use tracing::Level;

type Store<D = SqliteStore> = Arc<CachedDbStore<D>>;

fn session<D: SessionStore + 'static>(store: &Store<D>, key: Option<&str>) -> Session {
    Session::new(store.clone(), Arc::new(config()), key)
}

/// A store over a [`TestCache`] and a SQLite database whose calls are counted.
async fn counted() -> (
    Store<Counting<SqliteStore>>,
    Arc<TestCache>,
    Arc<support::Calls>,
) {
    let config = config();
    let cache = TestCache::new();
    let (db, calls) = Counting::new(support::sqlite(&config).await);
    let store = CachedDbStore::new(cache.cache(), db, &config).unwrap();
    (Arc::new(store), cache, calls)
}

/// Saves a new session holding `data` and returns its key.
async fn saved<D: SessionStore + 'static>(store: &Store<D>, data: &[(&str, Value)]) -> SessionKey {
    let s = session(store, None);
    for (k, v) in data {
        s.insert_value(*k, v.clone()).await.unwrap();
    }
    s.save().await.unwrap();
    s.key().unwrap()
}

async fn row_count(db: &SqliteStore) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM django_session")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

fn calls(calls: &support::Calls) -> usize {
    calls.total()
}

fn reset(calls: &support::Calls) {
    for c in [&calls.load, &calls.exists, &calls.save, &calls.delete] {
        c.store(0, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// Django's CacheDBSessionTests.

#[tokio::test]
async fn exists_searches_cache_first() {
    let (store, _cache, db_calls) = counted().await;
    let key = saved(&store, &[("a", 1.into())]).await;
    reset(&db_calls);
    assert!(store.exists(&key).await.unwrap());
    assert_eq!(calls(&db_calls), 0, "exists must not reach the database");

    // Not in the cache: the database answers (Django's `or super().exists(key)`).
    store.cache().delete(&store.cache_key(&key)).await.unwrap();
    assert!(store.exists(&key).await.unwrap());
    assert_eq!(db_calls.exists.load(Ordering::SeqCst), 1);
    assert!(
        !store
            .exists(&SessionKey::generate().unwrap())
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn load_overlong_key() {
    let store = Arc::new(support::memory_sqlite().await);
    let letters_digits = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let key = letters_digits.repeat(20);
    assert_eq!(key.len(), 1240);
    let s = session(&store, Some(&key));
    assert_eq!(s.load().await.unwrap(), Dict::new());
    assert_eq!(s.key(), None, "an unknown key is dropped");
    assert_eq!(
        store
            .load(&SessionKey::new(key.clone()).unwrap())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn non_default_cache() {
    let config = config();
    // Django raises InvalidCacheBackendError when the alias is not configured (ticket #21000).
    let only_default = Caches::new().with("default", Cache::new(MemoryCache::new()));
    let error = CachedDbStore::from_caches(
        &only_default,
        "sessions",
        support::sqlite(&config).await,
        &config,
    )
    .unwrap_err();
    assert!(
        matches!(error, CachedDbError::Cache(CacheError::UnknownAlias { ref alias, .. }) if alias == "sessions"),
        "{error:?}"
    );
    assert!(error.to_string().contains("\"sessions\""), "{error}");
    assert!(matches!(
        session_core::Error::from(error),
        session_core::Error::Config(_)
    ));

    // With the alias configured, sessions go to that cache and not to the default one.
    let default = Cache::new(MemoryCache::new());
    let sessions = Cache::new(MemoryCache::new());
    let caches = Caches::new()
        .with("default", default.clone())
        .with("sessions", sessions.clone());
    let store = Arc::new(
        CachedDbStore::from_caches(&caches, "sessions", support::sqlite(&config).await, &config)
            .unwrap(),
    );
    let key = saved(&store, &[("a", 1.into())]).await;
    let physical = store.physical_key(&key);
    assert!(sessions.backend().exists(&physical).await.unwrap());
    assert!(!default.backend().exists(&physical).await.unwrap());
}

#[test]
fn cache_set_failure_non_fatal() {
    let ((store, key), events) = with_logs(async {
        let (store, cache, _) = counted().await;
        cache.fail_writes.store(true, Ordering::SeqCst);
        let s = session(&store, None);
        s.insert("key", "val").await.unwrap();
        s.save().await.unwrap();
        let key = s.key().unwrap();
        // The save reached the database.
        let loaded = store.db().inner.load(&key).await.unwrap();
        assert_eq!(loaded, Some(dict(&[("key", "val".into())])));
        (store, key)
    });
    let error = events
        .iter()
        .find(|e| e.level == Level::ERROR)
        .expect("an ERROR is logged");
    assert_eq!(error.target, LOG_TARGET);
    assert_eq!(error.target, "django.contrib.sessions");
    assert_eq!(
        error.message,
        format!("Error saving to cache ({:?})", store.cache())
    );
    assert!(
        error.fields["error"].contains(support::FAKED),
        "{:?}",
        error.fields
    );
    assert!(
        !events
            .iter()
            .any(|e| format!("{e:?}").contains(key.as_str())),
        "session keys are credentials: never logged"
    );
}

/// Django's `clearsessions`: only expired database rows go; the cache is not touched (live
/// entries stay, expired sessions were never readable from it).
#[tokio::test]
async fn clearsessions() {
    let (store, cache, _) = counted().await;
    let live = session(&store, None);
    live.insert("live", &true).await.unwrap();
    live.set_expiry(Expiry::Seconds(3600)).await.unwrap();
    live.save().await.unwrap();
    let expired = session(&store, None);
    expired.insert("live", &false).await.unwrap();
    expired.set_expiry(Expiry::Seconds(-3600)).await.unwrap();
    expired.save().await.unwrap();
    let (live, expired) = (live.key().unwrap(), expired.key().unwrap());
    assert_eq!(row_count(&store.db().inner).await, 2);
    assert!(cache.peek(&store.physical_key(&expired)).await.is_none());

    assert_eq!(
        store.clear_expired().await.unwrap(),
        ClearExpired::Removed(1)
    );
    assert_eq!(row_count(&store.db().inner).await, 1);
    assert!(store.db().inner.row(live.as_str()).await.unwrap().is_some());
    assert!(cache.peek(&store.physical_key(&live)).await.is_some());
    assert!(!store.exists(&expired).await.unwrap());
}

// ---------------------------------------------------------------------------------------------
// Reads: the cache first, then the database, refilling the cache.

#[tokio::test]
async fn loads_are_served_from_the_cache_without_a_query() {
    let (store, _cache, db_calls) = counted().await;
    let key = saved(&store, &[("cart", Value::List(vec![3.into(), 1.into()]))]).await;
    reset(&db_calls);
    for _ in 0..3 {
        let s = session(&store, Some(key.as_str()));
        assert_eq!(s.get::<Vec<i64>>("cart").await.unwrap(), Some(vec![3, 1]));
    }
    assert_eq!(calls(&db_calls), 0);
}

#[tokio::test]
async fn a_miss_reads_the_database_and_refills_the_cache_until_the_rows_expiry() {
    let (store, cache, db_calls) = counted().await;
    let s = session(&store, None);
    s.insert("a", &1).await.unwrap();
    // Half a second past a whole number, so the refill's floor is visible.
    let expires = OffsetDateTime::now_utc() + Duration::seconds(1000) + Duration::milliseconds(500);
    s.set_expiry(Expiry::At(expires)).await.unwrap();
    s.save().await.unwrap();
    let key = s.key().unwrap();
    let physical = store.physical_key(&key);
    cache.ttls.lock().unwrap().clear();
    store.cache().delete(&store.cache_key(&key)).await.unwrap();
    reset(&db_calls);

    let loaded = store.load_with_expiry(&key).await.unwrap().unwrap();
    assert_eq!(loaded.data.get("a"), Some(&Value::from(1)));
    assert_eq!(
        loaded
            .expires_at
            .map(session_core::expiry::to_python_datetime),
        Some(session_core::expiry::to_python_datetime(expires)),
        "a database read reports the row's expiry"
    );
    assert_eq!(db_calls.load.load(Ordering::SeqCst), 1);
    let ttl = cache.ttl(&physical).expect("the cache was refilled");
    assert!((999..=1000).contains(&ttl), "refill lifetime {ttl}");
    assert_eq!(
        unpickled(&cache.peek(&physical).await.unwrap()),
        loaded.data
    );

    // Refilled: the next load is a hit, and a hit does not know the expiry.
    let again = store.load_with_expiry(&key).await.unwrap().unwrap();
    assert_eq!(again.data, loaded.data);
    assert_eq!(again.expires_at, None);
    assert_eq!(db_calls.load.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_session_missing_from_both_loads_nothing_and_writes_nothing() {
    let (store, cache, _) = counted().await;
    let s = session(&store, Some("someunknownkey"));
    assert_eq!(s.load().await.unwrap(), Dict::new());
    assert_eq!(s.key(), None);
    let key = SessionKey::new("someunknownkey").unwrap();
    assert!(cache.peek(&store.physical_key(&key)).await.is_none());
    assert_eq!(row_count(&store.db().inner).await, 0);
}

/// With a database store that reports no expiry, the refill lifetime comes from the data.
#[tokio::test]
async fn refill_lifetime_falls_back_to_the_sessions_own_expiry() {
    let config = config();
    let cache = TestCache::new();
    let store =
        Arc::new(CachedDbStore::new(cache.cache(), support::NoExpiry::default(), &config).unwrap());
    let at = OffsetDateTime::now_utc() + Duration::seconds(500) + Duration::milliseconds(500);
    let cases: [(Option<Expiry>, std::ops::RangeInclusive<u64>); 4] = [
        (None, 1_209_599..=1_209_600),
        (Some(Expiry::Seconds(300)), 300..=300),
        (Some(Expiry::BrowserClose), 1_209_599..=1_209_600),
        (Some(Expiry::At(at)), 499..=500),
    ];
    for (expiry, wanted) in cases {
        let s = session(&store, None);
        s.insert("x", &1).await.unwrap();
        if let Some(expiry) = expiry {
            s.set_expiry(expiry).await.unwrap();
        }
        s.save().await.unwrap();
        let key = s.key().unwrap();
        store.cache().delete(&store.cache_key(&key)).await.unwrap();
        let loaded = store.load_with_expiry(&key).await.unwrap().unwrap();
        assert_eq!(
            loaded.expires_at, None,
            "the database store reports no expiry"
        );
        let ttl = cache.ttl(&store.physical_key(&key)).unwrap();
        assert!(wanted.contains(&ttl), "{expiry:?}: lifetime {ttl}");
    }
}

/// A database store whose load lets a concurrent save land between its read and the refill.
#[derive(Debug)]
struct RacingDb {
    inner: MemoryStore,
    cache: Cache,
    cache_key: std::sync::Mutex<Option<(String, Bytes)>>,
}

#[async_trait]
impl SessionStore for RacingDb {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        self.inner.load(key).await
    }
    async fn load_with_expiry(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        let read = self.inner.load_with_expiry(key).await;
        let racing = self.cache_key.lock().unwrap().take();
        if let Some((cache_key, newer)) = racing {
            self.cache.set(&cache_key, newer, 3600).await.unwrap();
        }
        read
    }
    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.inner.exists(key).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.inner.save(key, record, mode).await
    }
    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.inner.delete(key).await
    }
    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.inner.clear_expired().await
    }
}

#[tokio::test]
async fn a_refill_never_overwrites_what_a_concurrent_save_wrote() {
    let config = config();
    let cache = Cache::new(MemoryCache::new());
    let db = RacingDb {
        inner: MemoryStore::new(),
        cache: cache.clone(),
        cache_key: std::sync::Mutex::new(None),
    };
    let store = Arc::new(CachedDbStore::new(cache.clone(), db, &config).unwrap());
    let key = saved(&store, &[("v", 1.into())]).await;
    let cache_key = store.cache_key(&key);
    cache.delete(&cache_key).await.unwrap();
    let newer = dict(&[("v", 2.into())]);
    *store.db().cache_key.lock().unwrap() = Some((cache_key.clone(), pickled(&newer).into()));

    // This load read v1 from the database; a save wrote v2 to the cache meanwhile.
    let loaded = store.load(&key).await.unwrap().unwrap();
    assert_eq!(loaded.get("v"), Some(&Value::from(1)));
    assert_eq!(
        unpickled(&cache.get(&cache_key).await.unwrap().unwrap()),
        newer
    );
}

// ---------------------------------------------------------------------------------------------
// Writes: the database first, then the cache.

#[tokio::test]
async fn saves_write_the_database_then_the_cache_with_the_rows_lifetime() {
    let (store, cache, _) = counted().await;
    let s = session(&store, None);
    s.insert("a", "b").await.unwrap();
    s.set_expiry(Expiry::Seconds(600)).await.unwrap();
    s.save().await.unwrap();
    let key = s.key().unwrap();
    let row = store.db().inner.row(key.as_str()).await.unwrap().unwrap();
    let data = row.get_decoded(store.db().inner.codec());
    assert_eq!(data.get("a"), Some(&Value::from("b")));
    let physical = store.physical_key(&key);
    assert_eq!(unpickled(&cache.peek(&physical).await.unwrap()), data);
    let ttl = cache.ttl(&physical).unwrap();
    assert!((599..=600).contains(&ttl), "lifetime {ttl}");

    // An update rewrites both.
    s.insert("a", "c").await.unwrap();
    s.save().await.unwrap();
    let row = store.db().inner.row(key.as_str()).await.unwrap().unwrap();
    assert_eq!(
        row.get_decoded(store.db().inner.codec()).get("a"),
        Some(&Value::from("c"))
    );
    assert_eq!(
        unpickled(&cache.peek(&physical).await.unwrap()).get("a"),
        Some(&Value::from("c"))
    );
}

/// A database store whose saves fail.
#[derive(Debug)]
struct FailingSaves(MemoryStore);

#[async_trait]
impl SessionStore for FailingSaves {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        self.0.load(key).await
    }
    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.0.exists(key).await
    }
    async fn save(
        &self,
        _key: &SessionKey,
        _record: SessionRecord<'_>,
        _mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        Err(Error::store("the database is down"))
    }
    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.0.delete(key).await
    }
    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.0.clear_expired().await
    }
}

#[tokio::test]
async fn a_save_the_database_refuses_never_reaches_the_cache() {
    let config = config();
    let cache = TestCache::new();
    let store = Arc::new(
        CachedDbStore::new(cache.cache(), FailingSaves(MemoryStore::new()), &config).unwrap(),
    );
    let key = SessionKey::generate().unwrap();
    let data = dict(&[("a", 1.into())]);
    let record = SessionRecord {
        data: &data,
        expires_at: OffsetDateTime::now_utc() + Duration::seconds(60),
        expiry_age: 60,
    };
    let error = store
        .save(&key, record, SaveMode::MustCreate)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("the database is down"),
        "{error}"
    );
    assert!(cache.peek(&store.physical_key(&key)).await.is_none());
    assert!(
        cache.ttls.lock().unwrap().is_empty(),
        "no cache write was attempted"
    );
}

#[tokio::test]
async fn a_create_conflict_leaves_the_other_sessions_cache_entry_alone() {
    let (store, cache, _) = counted().await;
    let key = saved(&store, &[("owner", "first".into())]).await;
    let physical = store.physical_key(&key);
    let before = cache.peek(&physical).await.unwrap();
    let other = dict(&[("owner", "second".into())]);
    let record = SessionRecord {
        data: &other,
        expires_at: OffsetDateTime::now_utc() + Duration::seconds(60),
        expiry_age: 60,
    };
    assert!(matches!(
        store.save(&key, record, SaveMode::MustCreate).await,
        Err(Error::CreateConflict)
    ));
    assert_eq!(cache.peek(&physical).await.unwrap(), before);
}

/// Django parity for rows deleted behind the store's back: the cached copy keeps loading, until
/// a save finds the row gone, which removes the copy too.
#[tokio::test]
async fn a_row_deleted_elsewhere_is_dropped_from_the_cache_by_the_next_save() {
    let (store, cache, _) = counted().await;
    let s = session(&store, None);
    s.insert("a", &1).await.unwrap();
    s.save().await.unwrap();
    let key = s.key().unwrap();
    let physical = store.physical_key(&key);

    store.db().inner.delete(&key).await.unwrap(); // not through the cached store
    assert!(
        store.load(&key).await.unwrap().is_some(),
        "as Django: served from the cache"
    );

    s.insert("a", &2).await.unwrap();
    assert!(matches!(s.save().await, Err(Error::SessionDeleted)));
    assert!(cache.peek(&physical).await.is_none());
    assert_eq!(store.load(&key).await.unwrap(), None);
}

#[tokio::test]
async fn deletes_remove_the_row_and_the_cache_entry() {
    let (store, cache, _) = counted().await;
    let s = session(&store, None);
    s.insert("a", &1).await.unwrap();
    s.save().await.unwrap();
    let key = s.key().unwrap();
    let physical = store.physical_key(&key);
    assert!(cache.peek(&physical).await.is_some());
    s.flush().await.unwrap();
    assert!(cache.peek(&physical).await.is_none());
    assert!(store.db().inner.row(key.as_str()).await.unwrap().is_none());
    assert!(!store.exists(&key).await.unwrap());

    // cycle_key deletes the old key from both as well.
    let s = session(&store, None);
    s.insert("a", &1).await.unwrap();
    s.save().await.unwrap();
    let old = s.key().unwrap();
    s.cycle_key().await.unwrap();
    assert!(cache.peek(&store.physical_key(&old)).await.is_none());
    assert!(store.db().inner.row(old.as_str()).await.unwrap().is_none());
    let new = s.key().unwrap();
    assert!(store.db().inner.row(new.as_str()).await.unwrap().is_some());
}

// ---------------------------------------------------------------------------------------------
// Key layout and values.

#[tokio::test]
async fn keys_and_values_are_djangos() {
    let config = config();
    let cache = TestCache::new();
    let db = support::sqlite(&config).await;
    let store = Arc::new(CachedDbStore::new(cache.cache(), db, &config).unwrap());
    let key = saved(&store, &[("hello", "world".into())]).await;
    let physical = store.physical_key(&key);
    assert_eq!(
        physical,
        format!(":1:django.contrib.sessions.cached_db{}", key.as_str())
    );
    assert_eq!(physical.len(), 68);
    // The value is the pickled dict (protocol header 0x80), the row the signed JSON.
    let value = cache.peek(&physical).await.unwrap();
    assert_eq!(value[0], 0x80);
    assert_eq!(unpickled(&value), dict(&[("hello", "world".into())]));
    let row = store.db().row(key.as_str()).await.unwrap().unwrap();
    assert!(
        row.session_data.starts_with("eyJoZWxsbyI6IndvcmxkIn0:"),
        "{}",
        row.session_data
    );

    // KEY_PREFIX and VERSION wrap the logical key, as Django's key function does.
    let shop = Cache::new(MemoryCache::new()).with_key_function(
        session_cache::KeyFunction::default()
            .with_key_prefix("shop")
            .with_version(3),
    );
    let store = CachedDbStore::new(shop, support::sqlite(&config).await, &config).unwrap();
    assert_eq!(
        store.physical_key(&key),
        format!("shop:3:django.contrib.sessions.cached_db{}", key.as_str())
    );
    // A Django subclass with its own cache_key_prefix.
    let store = store.with_session_key_prefix("myapp.sessions");
    assert_eq!(store.session_key_prefix(), "myapp.sessions");
    assert_eq!(
        store.physical_key(&key),
        format!("shop:3:myapp.sessions{}", key.as_str())
    );
}

#[tokio::test]
async fn the_cache_serializer_can_be_changed_for_caches_django_does_not_read() {
    let config = config();
    let cache = TestCache::new();
    let store = Arc::new(
        CachedDbStore::new(cache.cache(), support::sqlite(&config).await, &config)
            .unwrap()
            .with_cache_serializer(SerializerName::Json),
    );
    assert_eq!(store.cache_serializer(), SerializerName::Json);
    let key = saved(&store, &[("hello", "world".into())]).await;
    let value = cache.peek(&store.physical_key(&key)).await.unwrap();
    assert_eq!(&value[..], br#"{"hello":"world"}"#);
    let s = session(&store, Some(key.as_str()));
    assert_eq!(
        s.get::<String>("hello").await.unwrap().as_deref(),
        Some("world")
    );
}

// ---------------------------------------------------------------------------------------------
// The failure model.

#[test]
fn a_cache_that_is_down_never_fails_an_operation() {
    let ((), events) = with_logs(async {
        let (store, cache, _) = counted().await;
        let key = saved(&store, &[("n", 1.into())]).await;
        cache.down(true);

        // Reads come from the database.
        let s = session(&store, Some(key.as_str()));
        assert_eq!(s.get::<i64>("n").await.unwrap(), Some(1));
        assert!(store.exists(&key).await.unwrap());
        // Writes reach the database.
        s.insert("n", &2).await.unwrap();
        s.save().await.unwrap();
        let fresh = saved(&store, &[("n", 3.into())]).await;
        let row = store.db().inner.row(key.as_str()).await.unwrap().unwrap();
        assert_eq!(
            row.get_decoded(store.db().inner.codec()).get("n"),
            Some(&Value::from(2))
        );
        assert_eq!(
            store.load(&fresh).await.unwrap().unwrap().get("n"),
            Some(&Value::from(3))
        );
        // Deletes reach the database.
        s.flush().await.unwrap();
        assert!(store.db().inner.row(key.as_str()).await.unwrap().is_none());
        assert_eq!(store.load(&key).await.unwrap(), None);
    });
    let on_target: Vec<_> = events.iter().filter(|e| e.target == LOG_TARGET).collect();
    assert!(
        on_target
            .iter()
            .any(|e| e.level == Level::WARN && e.message.starts_with("Error reading from cache (")),
        "{on_target:#?}"
    );
    assert!(
        on_target
            .iter()
            .any(|e| e.level == Level::ERROR && e.message.starts_with("Error saving to cache (")),
        "{on_target:#?}"
    );
    assert!(
        on_target.iter().all(|e| e
            .fields
            .get("error")
            .is_some_and(|m| m.contains(support::FAKED))),
        "{on_target:#?}"
    );
}

#[test]
fn garbage_in_the_cache_is_replaced_from_the_database() {
    let ((), events) = with_logs(async {
        let (store, cache, db_calls) = counted().await;
        let key = saved(&store, &[("n", 1.into())]).await;
        let physical = store.physical_key(&key);
        cache.poke(&physical, b"\x80\x04not a pickle").await;
        reset(&db_calls);

        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.get("n"), Some(&Value::from(1)));
        assert_eq!(db_calls.load.load(Ordering::SeqCst), 1);
        assert_eq!(unpickled(&cache.peek(&physical).await.unwrap()), loaded);
        // A pickle of something else than a dict is garbage too.
        cache.poke(&physical, &pickled_list()).await;
        assert_eq!(store.load(&key).await.unwrap(), Some(loaded));
        assert_eq!(db_calls.load.load(Ordering::SeqCst), 2);
    });
    let warnings: Vec<_> = events
        .iter()
        .filter(|e| e.target == LOG_TARGET && e.level == Level::WARN)
        .collect();
    assert_eq!(warnings.len(), 2, "{events:#?}");
    assert!(
        warnings[0]
            .message
            .starts_with("Cache entry is not session data (")
    );
}

fn pickled_list() -> Vec<u8> {
    SerializerName::Pickle
        .serializer()
        .dumps(&Value::List(vec![1.into()]))
        .unwrap()
}

/// The cache keeps its old value but rejects every write and delete for a while (a partition, a
/// read-only replica, a stuck primary): the old value must never be read again.
#[tokio::test]
async fn a_failed_cache_write_never_leads_to_stale_reads() {
    let (store, cache, _) = counted().await;
    let key = saved(&store, &[("v", 1.into())]).await;
    let physical = store.physical_key(&key);
    cache.fail_writes.store(true, Ordering::SeqCst);
    cache.fail_deletes.store(true, Ordering::SeqCst);

    let s = session(&store, Some(key.as_str()));
    s.insert("v", &2).await.unwrap();
    s.save().await.unwrap();
    assert_eq!(store.stale_sessions(), 1);
    // Still stuck: v1 is in the cache but reads bypass it.
    assert_eq!(
        unpickled(&cache.peek(&physical).await.unwrap()).get("v"),
        Some(&Value::from(1))
    );
    for _ in 0..2 {
        assert_eq!(
            store.load(&key).await.unwrap().unwrap().get("v"),
            Some(&Value::from(2))
        );
    }

    // Back: the stale entry is removed before the cache is trusted again, then refilled.
    cache.fail_writes.store(false, Ordering::SeqCst);
    cache.fail_deletes.store(false, Ordering::SeqCst);
    assert_eq!(
        store.load(&key).await.unwrap().unwrap().get("v"),
        Some(&Value::from(2))
    );
    assert_eq!(store.stale_sessions(), 0);
    assert_eq!(
        unpickled(&cache.peek(&physical).await.unwrap()).get("v"),
        Some(&Value::from(2))
    );
}

#[tokio::test]
async fn a_failed_cache_delete_never_leaves_a_deleted_session_readable() {
    let (store, cache, _) = counted().await;
    let key = saved(&store, &[("v", 1.into())]).await;
    cache.fail_deletes.store(true, Ordering::SeqCst);
    let s = session(&store, Some(key.as_str()));
    s.flush().await.unwrap();
    assert!(
        cache.peek(&store.physical_key(&key)).await.is_some(),
        "still cached"
    );
    assert_eq!(store.load(&key).await.unwrap(), None);
    assert!(!store.exists(&key).await.unwrap());

    cache.fail_deletes.store(false, Ordering::SeqCst);
    assert!(!store.exists(&key).await.unwrap());
    assert_eq!(store.load(&key).await.unwrap(), None);
    assert!(cache.peek(&store.physical_key(&key)).await.is_none());
    assert_eq!(store.stale_sessions(), 0);
}

#[tokio::test]
async fn a_save_that_finds_the_session_deleted_bypasses_a_cache_it_cannot_clean() {
    let (store, cache, _) = counted().await;
    let s = session(&store, None);
    s.insert("v", &1).await.unwrap();
    s.save().await.unwrap();
    let key = s.key().unwrap();
    store.db().inner.delete(&key).await.unwrap();
    cache.fail_deletes.store(true, Ordering::SeqCst);
    assert!(matches!(s.save().await, Err(Error::SessionDeleted)));
    assert_eq!(store.load(&key).await.unwrap(), None);
}

#[tokio::test]
async fn stale_entries_are_removed_on_the_side_once_the_cache_works() {
    let (store, cache, _) = counted().await;
    let stale = saved(&store, &[("v", 1.into())]).await;
    let other = saved(&store, &[("v", 9.into())]).await;
    cache.fail_writes.store(true, Ordering::SeqCst);
    cache.fail_deletes.store(true, Ordering::SeqCst);
    let s = session(&store, Some(stale.as_str()));
    s.insert("v", &2).await.unwrap();
    s.save().await.unwrap();
    assert_eq!(store.stale_sessions(), 1);

    cache.fail_writes.store(false, Ordering::SeqCst);
    cache.fail_deletes.store(false, Ordering::SeqCst);
    // A hit on another session: the stale entry goes on the side.
    assert!(store.load(&other).await.unwrap().is_some());
    assert_eq!(store.stale_sessions(), 0);
    assert!(cache.peek(&store.physical_key(&stale)).await.is_none());
}

#[tokio::test]
async fn clones_share_the_stale_tracking() {
    let config = config();
    let cache = TestCache::new();
    let store = Arc::new(
        CachedDbStore::new(cache.cache(), support::sqlite(&config).await, &config).unwrap(),
    );
    let clone = Arc::new(CachedDbStore::clone(&store));
    let key = saved(&store, &[("v", 1.into())]).await;
    cache.fail_writes.store(true, Ordering::SeqCst);
    cache.fail_deletes.store(true, Ordering::SeqCst);
    let s = session(&store, Some(key.as_str()));
    s.insert("v", &2).await.unwrap();
    s.save().await.unwrap();
    assert_eq!(clone.stale_sessions(), 1);
    assert_eq!(
        clone.load(&key).await.unwrap().unwrap().get("v"),
        Some(&Value::from(2))
    );
}

/// The counts of `djsession_cached_db_cache_total` by `result` recorded while `f` ran.
fn cache_results(f: impl FnOnce()) -> std::collections::BTreeMap<String, u64> {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, f);
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == "djsession_cached_db_cache_total")
        .map(|(key, _, _, value)| {
            let result = key
                .key()
                .labels()
                .find(|l| l.key() == "result")
                .map(|l| l.value().to_owned())
                .unwrap_or_default();
            let DebugValue::Counter(n) = value else {
                panic!("a counter")
            };
            (result, n)
        })
        .collect()
}

#[test]
fn cache_hits_misses_and_failures_are_counted() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (store, cache, _calls) = runtime.block_on(counted());
    let key = runtime.block_on(saved(&store, &[("a", Value::from(1i64))]));
    let counts = cache_results(|| {
        runtime.block_on(async {
            // Written through on save: a hit.
            session(&store, Some(key.as_str())).load().await.unwrap();
            // Gone from the cache: a miss, then refilled from the database.
            cache.cache().delete(&store.cache_key(&key)).await.unwrap();
            session(&store, Some(key.as_str())).load().await.unwrap();
            // A cache that is down: a failure, and the database answers.
            cache.fail_reads.store(true, Ordering::SeqCst);
            let data = session(&store, Some(key.as_str())).load().await.unwrap();
            assert_eq!(data.get("a"), Some(&Value::from(1i64)));
        })
    });
    let expected: std::collections::BTreeMap<String, u64> =
        [("hit", 1), ("miss", 1), ("failure", 1)]
            .into_iter()
            .map(|(r, n)| (r.to_owned(), n))
            .collect();
    assert_eq!(counts, expected);
}
