//! The soak's shared sessions found this on `session-cached-db`: a save that races a delete
//! (logout in one tab while another tab's request saves) puts the deleted session back into the
//! cache, where every later load finds it until the entry expires (the session's whole
//! lifetime). The row is gone, so the next save of that session fails, but reads (an
//! authentication check) see a logged-out user as logged in.
//!
//! The interleaving, made deterministic here by holding the write-through `set` at a gate:
//! 1. request A saves the session: the row is updated;
//! 2. request B flushes the session: the row is deleted, then the cache entry;
//! 3. request A's write-through `set` puts A's data into the cache.
//!
//! Django's `cached_db` has the same window (`save` sets the cache after the database, `delete`
//! deletes the cache after the database), but this project promises no resurrection after a
//! delete: `session-cached-db` now checks the row after writing the cache and removes the entry
//! when the row is gone (its `tests/delete_races.rs` covers every step of both windows, save
//! and refill). This stays as the soak's regression test.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use session_cache::{Cache, CacheBackend, CacheError, MemoryCache, Ttl};
use session_cached_db::CachedDbStore;
use session_core::{Session, SessionStore};
use session_db::SqliteStore;
use tokio::sync::Notify;

/// The in-process cache, except that the next `set` after [`arm`](Self::arm) waits for
/// [`release`](Self::release).
#[derive(Debug, Default)]
struct GatedSet {
    inner: MemoryCache,
    armed: AtomicBool,
    reached: Notify,
    released: Notify,
}

#[async_trait]
impl CacheBackend for GatedSet {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<(), CacheError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.reached.notify_one();
            self.released.notified().await;
        }
        self.inner.set(key, value, ttl).await
    }
    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError> {
        self.inner.add(key, value, ttl).await
    }
    async fn replace(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError> {
        self.inner.replace(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        self.inner.exists(key).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_racing_a_logout_does_not_bring_the_session_back() {
    let config = djsession_soak::soak_config();
    let gate = Arc::new(GatedSet::default());
    let db = SqliteStore::connect("sqlite::memory:", &config)
        .await
        .unwrap();
    db.ensure_schema().await.unwrap();
    let store = Arc::new(CachedDbStore::new(Cache::from_arc(gate.clone()), db, &config).unwrap());
    let config = Arc::new(config);

    let login = Session::new(store.clone(), config.clone(), None);
    login.insert("_auth_user_id", "42").await.unwrap();
    login.save().await.unwrap();
    let key = login.key().unwrap();

    // Request A: loads the session, changes it, saves; its write-through waits at the gate.
    let a = Session::new(store.clone(), config.clone(), Some(key.as_str()));
    a.insert("cart", &vec![1, 2, 3]).await.unwrap();
    gate.armed.store(true, Ordering::SeqCst);
    let saving = tokio::spawn(async move { a.save().await });
    gate.reached.notified().await;

    // Request B: logs out meanwhile.
    let b = Session::new(store.clone(), config.clone(), Some(key.as_str()));
    b.flush().await.unwrap();
    assert_eq!(store.load(&key).await.unwrap(), None, "logged out");

    // Request A's write-through completes.
    gate.released.notify_one();
    saving.await.unwrap().unwrap();

    assert_eq!(
        store.db().load(&key).await.unwrap(),
        None,
        "the row is gone"
    );
    assert_eq!(
        store.load(&key).await.unwrap(),
        None,
        "the logged-out session is readable again from the cache"
    );
}
