//! A logout is never undone by a save or a cache refill that raced it.
//!
//! A save writes the row, then the cache entry; a load that misses reads the row, then refills
//! the entry; a delete removes the row, then the entry. A delete that runs entirely between the
//! other operation's two steps would leave the deleted session in the cache, readable until the
//! entry expires, so both re-check the row after writing the cache and remove the entry when the
//! row is gone. Each test holds one step at a gate, runs the delete, then lets the step go on,
//! making every interleaving deterministic; wrappers around the cache and the database record the
//! order of their calls and fail on command.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use session_cache::{Cache, CacheBackend};
use session_cached_db::{CachedDbStore, LOG_TARGET};
use session_core::{
    ClearExpired, Dict, Error, LoadedRecord, SaveMode, Session, SessionKey, SessionRecord,
    SessionStore, Value,
};
use session_db::SqliteStore;
use support::{Gate, GatedCache, Log, config, dict, push, with_logs};
use tracing::Level;

/// What the racing save adds to the session.
fn cart() -> Value {
    Value::List(vec![1i64.into(), 2i64.into(), 3i64.into()])
}

/// A SQLite store with gates after a save and a load are done (before they return) and before
/// `exists` runs, an `exists` that can be made to fail, and the same log as the cache.
#[derive(Debug)]
struct GatedDb {
    inner: SqliteStore,
    log: Log,
    saved_gate: Arc<Gate>,
    loaded_gate: Arc<Gate>,
    exists_gate: Arc<Gate>,
    fail_exists: Arc<AtomicBool>,
}

#[async_trait]
impl SessionStore for GatedDb {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        Ok(self.load_with_expiry(key).await?.map(|record| record.data))
    }
    async fn load_with_expiry(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        push(&self.log, "db load");
        let loaded = self.inner.load_with_expiry(key).await;
        self.loaded_gate.pass().await;
        loaded
    }
    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.exists_gate.pass().await;
        push(&self.log, "db exists");
        if self.fail_exists.load(Ordering::SeqCst) {
            return Err(Error::store("the database connection was lost"));
        }
        self.inner.exists(key).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        push(&self.log, "db save");
        let saved = self.inner.save(key, record, mode).await;
        self.saved_gate.pass().await;
        saved
    }
    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        push(&self.log, "db delete");
        self.inner.delete(key).await
    }
    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.inner.clear_expired().await
    }
}

struct Fixture {
    store: Arc<CachedDbStore<GatedDb>>,
    cache: Arc<GatedCache>,
    log: Log,
}

impl Fixture {
    async fn new() -> Fixture {
        let config = config();
        let log = Log::default();
        let cache = Arc::new(GatedCache {
            log: log.clone(),
            ..GatedCache::default()
        });
        let db = GatedDb {
            inner: support::sqlite(&config).await,
            log: log.clone(),
            saved_gate: Arc::default(),
            loaded_gate: Arc::default(),
            exists_gate: Arc::default(),
            fail_exists: Arc::default(),
        };
        let store = CachedDbStore::new(Cache::from_arc(cache.clone()), db, &config).unwrap();
        Fixture {
            store: Arc::new(store),
            cache,
            log,
        }
    }

    fn session(&self, key: Option<&SessionKey>) -> Session {
        Session::new(
            self.store.clone(),
            Arc::new(config()),
            key.map(SessionKey::as_str),
        )
    }

    /// A logged-in session, saved (row and cache entry).
    async fn logged_in(&self) -> SessionKey {
        let session = self.session(None);
        session.insert("_auth_user_id", "42").await.unwrap();
        session.save().await.unwrap();
        session.key().unwrap()
    }

    /// Another request logs the session out (Django's `flush`: row, then cache entry).
    async fn log_out(&self, key: &SessionKey) {
        let other = self.session(Some(key));
        other.load().await.unwrap();
        other.flush().await.unwrap();
    }

    fn calls(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    /// What the cache holds for `key`, without going through the store.
    async fn cached(&self, key: &SessionKey) -> Option<Bytes> {
        self.cache
            .inner
            .get(&self.store.physical_key(key))
            .await
            .unwrap()
    }

    /// Nothing anywhere: no row, no cache entry, and loads find nothing.
    async fn assert_logged_out(&self, key: &SessionKey) {
        assert_eq!(self.store.db().inner.load(key).await.unwrap(), None, "row");
        assert_eq!(self.cached(key).await, None, "cache entry");
        assert_eq!(self.store.load(key).await.unwrap(), None, "load");
        assert!(!self.store.exists(key).await.unwrap(), "exists");
        let next_request = self.session(Some(key));
        assert_eq!(
            next_request.get::<String>("_auth_user_id").await.unwrap(),
            None
        );
    }

    /// Starts a request that loads the session, adds to it and saves it; returns its task.
    fn save_in_background(&self, key: &SessionKey) -> tokio::task::JoinHandle<Result<(), Error>> {
        let session = self.session(Some(key));
        tokio::spawn(async move {
            session.insert("cart", &vec![1, 2, 3]).await?;
            session.save().await
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The save window: database written, cache not yet.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_between_a_saves_row_and_its_cache_write_stays_a_logout() {
    let f = Fixture::new().await;
    let key = f.logged_in().await;
    f.calls();

    f.cache.set_gate.arm();
    let saving = f.save_in_background(&key);
    f.cache.set_gate.reached().await;
    // The row holds the cart; the cache write waits. Another request logs out, completely.
    f.log_out(&key).await;
    assert_eq!(f.store.load(&key).await.unwrap(), None, "logged out");
    f.cache.set_gate.release();
    saving.await.unwrap().unwrap();

    f.assert_logged_out(&key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_while_a_saves_database_write_returns_stays_a_logout() {
    let f = Fixture::new().await;
    let key = f.logged_in().await;

    f.store.db().saved_gate.arm();
    let saving = f.save_in_background(&key);
    f.store.db().saved_gate.reached().await;
    f.log_out(&key).await;
    f.store.db().saved_gate.release();
    saving.await.unwrap().unwrap();

    f.assert_logged_out(&key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_between_a_saves_cache_write_and_its_check_stays_a_logout() {
    let f = Fixture::new().await;
    let key = f.logged_in().await;

    f.store.db().exists_gate.arm();
    let saving = f.save_in_background(&key);
    f.store.db().exists_gate.reached().await;
    f.log_out(&key).await;
    f.store.db().exists_gate.release();
    saving.await.unwrap().unwrap();

    f.assert_logged_out(&key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_whose_check_finds_the_row_keeps_its_cache_entry() {
    let f = Fixture::new().await;
    let key = f.logged_in().await;
    f.calls();
    f.save_in_background(&key).await.unwrap().unwrap();
    assert_eq!(
        f.calls(),
        [
            "cache get", // the request's load: a hit
            "db save",
            "cache set",
            "db exists" // after the cache write: a delete before it would be missed
        ]
    );
    let cached = f.cached(&key).await.expect("the entry stays");
    assert!(!cached.is_empty());
    // Served from the cache, with the cart.
    let loaded = f.store.load(&key).await.unwrap().unwrap();
    assert_eq!(f.calls(), ["cache get"], "a warm load is one cache read");
    assert_eq!(loaded.get("cart"), Some(&cart()));
}

// ---------------------------------------------------------------------------------------------
// The refill window: row read on a miss, cache not yet refilled.

/// Empties the cache so that the next load is a miss that refills it.
async fn evict(f: &Fixture, key: &SessionKey) {
    f.cache
        .inner
        .delete(&f.store.physical_key(key))
        .await
        .unwrap();
    f.calls();
}

/// Starts a request that loads the session (a miss); returns what it loaded.
fn load_in_background(
    f: &Fixture,
    key: &SessionKey,
) -> tokio::task::JoinHandle<Result<Option<Dict>, Error>> {
    let (store, key) = (f.store.clone(), key.clone());
    tokio::spawn(async move { store.load(&key).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_between_a_refills_row_read_and_its_cache_write_stays_a_logout() {
    let f = Fixture::new().await;
    let key = f.logged_in().await;
    evict(&f, &key).await;

    f.cache.add_gate.arm();
    let loading = load_in_background(&f, &key);
    f.cache.add_gate.reached().await;
    f.log_out(&key).await;
    f.cache.add_gate.release();
    // The load read the row before the logout: it may return it (it began before the logout
    // ended), but must not leave it behind.
    let loaded = loading.await.unwrap().unwrap();
    assert_eq!(loaded, Some(dict(&[("_auth_user_id", "42".into())])));

    f.assert_logged_out(&key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_while_a_refills_database_read_returns_stays_a_logout() {
    let f = Fixture::new().await;
    let key = f.logged_in().await;
    evict(&f, &key).await;

    f.store.db().loaded_gate.arm();
    let loading = load_in_background(&f, &key);
    f.store.db().loaded_gate.reached().await;
    f.log_out(&key).await;
    f.store.db().loaded_gate.release();
    assert!(loading.await.unwrap().unwrap().is_some());

    f.assert_logged_out(&key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refill_checks_the_row_after_writing_the_cache_and_only_when_it_wrote() {
    let f = Fixture::new().await;
    let key = f.logged_in().await;
    evict(&f, &key).await;
    assert!(f.store.load(&key).await.unwrap().is_some());
    assert_eq!(
        f.calls(),
        ["cache get", "db load", "cache add", "db exists"],
        "miss, row, refill, check"
    );
    assert!(f.cached(&key).await.is_some(), "the refilled entry stays");

    // A refill that finds an entry already there (a concurrent save's) wrote nothing: nothing
    // to check.
    f.cache.set_gate.arm();
    let saving = f.save_in_background(&key);
    f.cache.set_gate.reached().await;
    evict(&f, &key).await;
    f.store.db().loaded_gate.arm();
    let loading = load_in_background(&f, &key);
    f.store.db().loaded_gate.reached().await;
    f.cache.set_gate.release();
    saving.await.unwrap().unwrap();
    f.calls();
    f.store.db().loaded_gate.release();
    loading.await.unwrap().unwrap();
    assert_eq!(
        f.calls(),
        ["cache add"],
        "the add lost to the save: no check"
    );
    let loaded = f.store.load(&key).await.unwrap().unwrap();
    assert_eq!(loaded.get("cart"), Some(&cart()), "the save's data won");
}

// ---------------------------------------------------------------------------------------------
// When the check itself fails.

#[test]
fn a_check_the_database_cannot_answer_removes_the_entry_it_could_not_confirm() {
    let ((), events) = with_logs(async {
        let f = Fixture::new().await;
        let key = f.logged_in().await;
        f.store.db().fail_exists.store(true, Ordering::SeqCst);
        f.save_in_background(&key).await.unwrap().unwrap();
        assert_eq!(f.cached(&key).await, None, "unconfirmed: removed");
        assert_eq!(f.store.stale_sessions(), 0);
        // The save reached the database; loads read it there.
        let loaded = f.store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.get("cart"), Some(&cart()));
        assert_eq!(
            f.cached(&key).await,
            None,
            "the refill could not confirm either"
        );

        // Once the database answers again, the cache is used again.
        f.store.db().fail_exists.store(false, Ordering::SeqCst);
        f.store.load(&key).await.unwrap().unwrap();
        assert!(f.cached(&key).await.is_some());
    });
    let warning = events
        .iter()
        .find(|e| e.level == Level::WARN && e.message.starts_with("Error checking the database"))
        .expect("the failed check is logged");
    assert_eq!(warning.target, LOG_TARGET);
    assert!(
        warning.fields["error"].contains("the database connection was lost"),
        "{:?}",
        warning.fields
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_entry_that_cannot_be_removed_is_bypassed_until_it_can() {
    let f = Fixture::new().await;
    let key = f.logged_in().await;

    // The logout lands in the save's window, and then the cache refuses to delete anything.
    f.cache.set_gate.arm();
    let saving = f.save_in_background(&key);
    f.cache.set_gate.reached().await;
    f.log_out(&key).await;
    f.cache.fail_deletes.store(true, Ordering::SeqCst);
    f.cache.set_gate.release();
    saving.await.unwrap().unwrap();

    assert!(
        f.cached(&key).await.is_some(),
        "the entry could not be removed"
    );
    assert_eq!(
        f.store.stale_sessions(),
        1,
        "so the session is marked stale"
    );
    assert_eq!(
        f.store.load(&key).await.unwrap(),
        None,
        "and read from the database"
    );
    assert!(!f.store.exists(&key).await.unwrap());

    // The cache works again: the next operation on the session removes the entry first.
    f.cache.fail_deletes.store(false, Ordering::SeqCst);
    assert_eq!(f.store.load(&key).await.unwrap(), None);
    f.assert_logged_out(&key).await;
    assert_eq!(f.store.stale_sessions(), 0);
}
