//! The `Session` handle's own rules, beyond the conformance suite: laziness, how it drives a store,
//! and how it treats stores whose key is their data.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use session_core::{
    ClearExpired, Dict, Error, Expiry, KeyKind, MemoryStore, SaveMode, Session, SessionConfig,
    SessionKey, SessionRecord, SessionStore, Value,
};

/// Counts the calls made to an inner store.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryStore,
    loads: AtomicUsize,
    saves: AtomicUsize,
    other: AtomicUsize,
}

impl Counting {
    fn calls(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
            + self.saves.load(Ordering::SeqCst)
            + self.other.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl SessionStore for Counting {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        // Give concurrent callers a chance to race.
        tokio::task::yield_now().await;
        self.inner.load(key).await
    }
    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.other.fetch_add(1, Ordering::SeqCst);
        self.inner.exists(key).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.saves.fetch_add(1, Ordering::SeqCst);
        self.inner.save(key, record, mode).await
    }
    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.other.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key).await
    }
    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.inner.clear_expired().await
    }
}

fn config() -> Arc<SessionConfig> {
    Arc::new(SessionConfig::new("django_tests_secret_key"))
}

#[tokio::test]
async fn a_session_never_touched_never_touches_the_store() {
    let store = Arc::new(Counting::default());
    let session = Session::new(store.clone(), config(), Some("abcdefghijklmnop"));
    assert_eq!(session.key().unwrap().as_str(), "abcdefghijklmnop");
    assert!(!session.is_empty());
    assert!(!session.accessed() && !session.modified());
    assert_eq!(store.calls(), 0);
}

#[tokio::test]
async fn a_session_without_a_key_reads_nothing_from_the_store() {
    let store = Arc::new(Counting::default());
    let session = Session::new(store.clone(), config(), None);
    assert_eq!(session.get_value("x").await.unwrap(), None);
    assert!(session.accessed());
    assert_eq!(store.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_accesses_through_clones_load_once() {
    let store = Arc::new(Counting::default());
    let seed = Session::new(store.clone(), config(), None);
    seed.insert("n", &1).await.unwrap();
    seed.save().await.unwrap();
    let key = seed.key().unwrap();

    let session = Session::new(store.clone(), config(), Some(key.as_str()));
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let s = session.clone();
            tokio::spawn(async move { s.get::<i64>("n").await })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap().unwrap(), Some(1));
    }
    assert_eq!(store.loads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn saving_an_untouched_session_with_a_key_loads_it_first() {
    // Django's save() reads the stored data before writing it back, so nothing is lost.
    let store = Arc::new(MemoryStore::new());
    let first = Session::new(store.clone(), config(), None);
    first.insert("kept", "yes").await.unwrap();
    first.save().await.unwrap();
    let key = first.key().unwrap();

    let untouched = Session::new(store.clone(), config(), Some(key.as_str()));
    untouched.save().await.unwrap();
    let again = Session::new(store, config(), Some(key.as_str()));
    assert_eq!(
        again.get::<String>("kept").await.unwrap().as_deref(),
        Some("yes")
    );
}

#[tokio::test]
async fn must_create_writes_the_current_data_without_loading() {
    let store = Arc::new(Counting::default());
    let session = Session::new(store.clone(), config(), None);
    session.insert("a", &1).await.unwrap();
    session.save_with(SaveMode::MustCreate).await.unwrap();
    assert_eq!(store.loads.load(Ordering::SeqCst), 0);
    assert!(session.modified());
}

/// A store where every key is taken.
#[derive(Debug, Default)]
struct AlwaysTaken {
    attempts: AtomicUsize,
}

#[async_trait]
impl SessionStore for AlwaysTaken {
    async fn load(&self, _: &SessionKey) -> Result<Option<Dict>, Error> {
        Ok(None)
    }
    async fn exists(&self, _: &SessionKey) -> Result<bool, Error> {
        Ok(true)
    }
    async fn save(
        &self,
        _: &SessionKey,
        _: SessionRecord<'_>,
        _: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        Err(Error::CreateConflict)
    }
    async fn delete(&self, _: &SessionKey) -> Result<(), Error> {
        Ok(())
    }
    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        Ok(ClearExpired::NotNeeded)
    }
}

#[tokio::test]
async fn create_gives_up_on_a_store_where_every_key_is_taken() {
    let store = Arc::new(AlwaysTaken::default());
    let session = Session::new(store.clone(), config(), None);
    let err = session.save().await.unwrap_err();
    assert!(
        matches!(err, Error::KeyGenerationExhausted { attempts: 100 }),
        "{err}"
    );
    assert_eq!(
        store.attempts.load(Ordering::SeqCst),
        session_core::CREATE_ATTEMPTS
    );
}

#[tokio::test]
async fn a_store_error_is_returned_not_swallowed() {
    #[derive(Debug)]
    struct Down;
    #[async_trait]
    impl SessionStore for Down {
        async fn load(&self, _: &SessionKey) -> Result<Option<Dict>, Error> {
            Err(Error::store("connection refused"))
        }
        async fn exists(&self, _: &SessionKey) -> Result<bool, Error> {
            Err(Error::store("connection refused"))
        }
        async fn save(
            &self,
            _: &SessionKey,
            _: SessionRecord<'_>,
            _: SaveMode,
        ) -> Result<SessionKey, Error> {
            Err(Error::store("connection refused"))
        }
        async fn delete(&self, _: &SessionKey) -> Result<(), Error> {
            Err(Error::store("connection refused"))
        }
        async fn clear_expired(&self) -> Result<ClearExpired, Error> {
            Err(Error::store("connection refused"))
        }
    }
    let fresh = Session::new(Arc::new(Down), config(), None);
    fresh.insert("x", &1).await.unwrap();
    assert!(matches!(fresh.save().await, Err(Error::Store(_))));
    assert_eq!(
        fresh.key(),
        None,
        "a failed create must not leave a made-up key"
    );

    let session = Session::new(Arc::new(Down), config(), Some("abcdefghijkl"));
    assert!(matches!(session.get_value("x").await, Err(Error::Store(_))));
    // The failed load left nothing behind: the next access tries again.
    assert!(matches!(session.keys().await, Err(Error::Store(_))));
    assert_eq!(session.key().unwrap().as_str(), "abcdefghijkl");
}

#[tokio::test]
async fn typed_access_reports_the_key_and_the_mismatch() {
    let session = Session::new(Arc::new(MemoryStore::new()), config(), None);
    session.insert("count", "not a number").await.unwrap();
    let err = session.get::<u32>("count").await.unwrap_err();
    assert!(
        matches!(&err, Error::Value { key, .. } if key == "count"),
        "{err}"
    );
    // A failed typed pop leaves the value in place.
    assert!(session.pop::<u32>("count").await.is_err());
    assert_eq!(
        session.get::<String>("count").await.unwrap().as_deref(),
        Some("not a number")
    );
}

#[tokio::test]
async fn values_nested_past_the_limit_are_refused_at_insert() {
    let session = Session::new(Arc::new(MemoryStore::new()), config(), None);
    let deep = (0..session_core::value::MAX_DEPTH).fold(Value::Null, |v, _| Value::List(vec![v]));
    let err = session.insert_value("deep", deep).await.unwrap_err();
    assert!(matches!(err, Error::Serializer(_)), "{err}");
    assert!(!session.modified());
    let ok = (0..session_core::value::MAX_DEPTH - 1).fold(Value::Null, |v, _| Value::List(vec![v]));
    session.insert_value("deep", ok).await.unwrap();
}

#[tokio::test]
async fn struct_values_round_trip_through_the_store() {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Cart {
        items: Vec<String>,
        total_cents: u64,
        coupon: Option<String>,
    }
    let store = Arc::new(MemoryStore::new());
    let session = Session::new(store.clone(), config(), None);
    let cart = Cart {
        items: vec!["tea".into(), "cake".into()],
        total_cents: 1250,
        coupon: None,
    };
    session.insert("cart", &cart).await.unwrap();
    session.save().await.unwrap();
    let again = Session::new(
        store,
        config(),
        session.key().as_ref().map(SessionKey::as_str),
    );
    assert_eq!(again.get::<Cart>("cart").await.unwrap(), Some(cart));
}

#[tokio::test]
async fn cycle_key_deletes_the_old_record_and_keeps_the_data() {
    let store = Arc::new(MemoryStore::new());
    let session = Session::new(store.clone(), config(), None);
    session.insert("user", &7).await.unwrap();
    session.save().await.unwrap();
    let old = session.key().unwrap();
    session.cycle_key().await.unwrap();
    let new = session.key().unwrap();
    assert_ne!(old, new);
    assert_eq!(store.load(&old).await.unwrap(), None);
    assert_eq!(store.len(), 1);
    assert!(session.modified());
}

#[tokio::test]
async fn set_expiry_default_marks_modified_only_when_an_expiry_was_stored() {
    let session = Session::new(Arc::new(MemoryStore::new()), config(), None);
    session.set_expiry(Expiry::Default).await.unwrap();
    assert!(!session.modified());
    session.set_expiry(Expiry::Seconds(5)).await.unwrap();
    session.set_modified(false);
    session.set_expiry(Expiry::Default).await.unwrap();
    assert!(session.modified());
}

#[tokio::test]
async fn the_record_carries_the_expiry_computed_at_save_time() {
    #[derive(Debug, Default)]
    struct Recording(std::sync::Mutex<Vec<(time::OffsetDateTime, i64)>>);
    #[async_trait]
    impl SessionStore for Recording {
        async fn load(&self, _: &SessionKey) -> Result<Option<Dict>, Error> {
            Ok(None)
        }
        async fn exists(&self, _: &SessionKey) -> Result<bool, Error> {
            Ok(false)
        }
        async fn save(
            &self,
            key: &SessionKey,
            r: SessionRecord<'_>,
            _: SaveMode,
        ) -> Result<SessionKey, Error> {
            self.0.lock().unwrap().push((r.expires_at, r.expiry_age));
            Ok(key.clone())
        }
        async fn delete(&self, _: &SessionKey) -> Result<(), Error> {
            Ok(())
        }
        async fn clear_expired(&self) -> Result<ClearExpired, Error> {
            Ok(ClearExpired::NotNeeded)
        }
    }
    let store = Arc::new(Recording::default());
    let session = Session::new(store.clone(), config(), None);
    let before = time::OffsetDateTime::now_utc();
    session.set_expiry(Expiry::Seconds(300)).await.unwrap();
    session.save().await.unwrap();
    let at = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    session.set_expiry(Expiry::At(at)).await.unwrap();
    session.save().await.unwrap();
    let recorded = store.0.lock().unwrap().clone();
    assert_eq!(recorded[0].1, 300);
    assert!(recorded[0].0 >= before + time::Duration::seconds(300));
    assert!(recorded[0].0 <= time::OffsetDateTime::now_utc() + time::Duration::seconds(300));
    // A fixed moment is stored to the microsecond, as Python does.
    assert_eq!(
        recorded[1].0,
        at.replace_nanosecond(at.microsecond() * 1000).unwrap()
    );
    assert!((86_398..=86_400).contains(&recorded[1].1));
}

/// A store whose key is its data, like the signed-cookie store.
#[derive(Debug, Default)]
struct DataInKey;

#[async_trait]
impl SessionStore for DataInKey {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        Ok(key.as_str().strip_prefix("data:").map(|rest| {
            let mut d = Dict::new();
            d.insert("v".to_owned(), Value::from(rest));
            d
        }))
    }
    async fn exists(&self, _: &SessionKey) -> Result<bool, Error> {
        Ok(false)
    }
    async fn save(
        &self,
        _: &SessionKey,
        r: SessionRecord<'_>,
        _: SaveMode,
    ) -> Result<SessionKey, Error> {
        let v = r.data.get("v").and_then(Value::as_str).unwrap_or("none");
        SessionKey::new(format!("data:{v}"))
    }
    async fn delete(&self, _: &SessionKey) -> Result<(), Error> {
        Ok(())
    }
    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        Ok(ClearExpired::NotNeeded)
    }
    fn key_kind(&self) -> KeyKind {
        KeyKind::SignedData
    }
}

#[tokio::test]
async fn an_invalid_signed_cookie_is_kept_and_marked_modified_like_django() {
    let session = Session::new(Arc::new(DataInKey), config(), Some("garbage-token"));
    assert_eq!(session.get_value("v").await.unwrap(), None);
    assert_eq!(session.key().unwrap().as_str(), "garbage-token");
    assert!(session.modified());
    assert!(!session.is_empty());
}

#[tokio::test]
async fn saving_a_data_keyed_session_adopts_the_key_the_store_returns() {
    let session = Session::new(Arc::new(DataInKey), config(), None);
    session.insert("v", "hello").await.unwrap();
    session.save().await.unwrap();
    assert_eq!(session.key().unwrap().as_str(), "data:hello");
    session.insert("v", "world").await.unwrap();
    session.cycle_key().await.unwrap();
    assert_eq!(session.key().unwrap().as_str(), "data:world");
}

#[tokio::test]
async fn deleting_a_data_keyed_session_empties_it_as_django_does() {
    let session = Session::new(Arc::new(DataInKey), config(), Some("data:present"));
    assert_eq!(
        session.get::<String>("v").await.unwrap().as_deref(),
        Some("present")
    );
    session.delete().await.unwrap();
    assert_eq!(session.key(), None);
    assert!(session.is_empty());
    assert!(session.modified());
}

/// A memory-store record holding `visits = 1`, and its key.
async fn stored_visit(store: &Arc<MemoryStore>) -> SessionKey {
    let session = Session::new(store.clone(), config(), None);
    session.insert("visits", &1).await.unwrap();
    session.save().await.unwrap();
    session.key().unwrap()
}

#[tokio::test]
async fn the_memory_store_shares_its_data_with_sessions_instead_of_copying_it() {
    let store = Arc::new(MemoryStore::new());
    let key = stored_visit(&store).await;

    let first = store.load_shared(&key).await.unwrap().unwrap();
    let second = store.load_shared(&key).await.unwrap().unwrap();
    assert!(Arc::ptr_eq(&first, &second), "a load is a reference count");

    // A session's save hands its data over: the store keeps that very dict.
    let session = Session::new(store.clone(), config(), Some(key.as_str()));
    session.insert("visits", &2).await.unwrap();
    session.save().await.unwrap();
    let saved = session.data().await.unwrap();
    let stored = store.load_shared(&key).await.unwrap().unwrap();
    assert!(Arc::ptr_eq(&saved, &stored), "a save is a reference count");
    // What was handed out before is untouched.
    assert_eq!(first.get("visits"), Some(&Value::from(1)));
}

#[tokio::test]
async fn changing_a_loaded_session_changes_the_stored_data_only_when_saved() {
    let store = Arc::new(MemoryStore::new());
    let key = stored_visit(&store).await;
    let session = Session::new(store.clone(), config(), Some(key.as_str()));
    let before = session.data().await.unwrap();

    session.insert("visits", &2).await.unwrap();
    session.insert("cart", &["tea"]).await.unwrap();
    session.remove("visits").await.unwrap();
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(stored.get("visits"), Some(&Value::from(1)));
    assert!(!stored.contains_key("cart"));
    assert_eq!(
        *before, stored,
        "the snapshot taken before the changes keeps them out"
    );

    session.save().await.unwrap();
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(stored.get("visits"), None);
    assert_eq!(stored.get("cart"), Some(&Value::List(vec!["tea".into()])));
    assert_eq!(*before, {
        let mut first = Dict::new();
        first.insert("visits", Value::from(1));
        first
    });
}

#[tokio::test]
async fn stores_without_shared_calls_get_the_default_ones_through_load_and_save() {
    // `Counting` implements only `load` and `save`: a session still reads and writes through them.
    let store = Arc::new(Counting::default());
    let session = Session::new(store.clone(), config(), None);
    session.insert("a", &1).await.unwrap();
    session.save().await.unwrap();
    let key = session.key().unwrap();
    let again = Session::new(store.clone(), config(), Some(key.as_str()));
    assert_eq!(again.get::<i64>("a").await.unwrap(), Some(1));
    assert_eq!(store.loads.load(Ordering::SeqCst), 1);
    assert_eq!(store.saves.load(Ordering::SeqCst), 1);
}

fn config_under(policy: session_core::ConcurrencyPolicy) -> Arc<SessionConfig> {
    Arc::new(SessionConfig {
        concurrency: policy,
        ..SessionConfig::new("secret")
    })
}

#[tokio::test]
async fn every_change_is_recorded_beside_djangos_modified_flag() {
    use session_core::Change;
    let store = Arc::new(MemoryStore::new());
    let s = Session::new(store, config(), None);
    assert!(s.changes().is_empty());
    s.insert("a", &1).await.unwrap();
    s.insert("b", &2).await.unwrap();
    s.remove("a").await.unwrap();
    s.pop::<i64>("missing").await.unwrap();
    s.update([("c", 3i64)]).await.unwrap();
    s.set_expiry(Expiry::Seconds(60)).await.unwrap();
    let changes = s.changes();
    let listed: Vec<_> = changes.iter().collect();
    assert_eq!(
        listed,
        [
            ("a", Change::Removed),
            ("b", Change::Set),
            ("c", Change::Set),
            ("_session_expiry", Change::Set)
        ]
    );
    assert!(changes.expiry_changed() && !changes.cleared());
    assert!(s.modified());

    s.save().await.unwrap();
    assert!(s.changes().is_empty(), "a save leaves nothing pending");
    assert!(s.modified(), "Django's flag is untouched by the change log");

    s.clear();
    assert!(s.changes().cleared());
}

#[tokio::test]
async fn a_modified_flag_alone_records_no_change() {
    let store = Arc::new(MemoryStore::new());
    let s = Session::new(store, config(), None);
    s.set_modified(true);
    assert!(s.changes().is_empty());
}

#[tokio::test]
async fn under_merge_a_cleared_session_drops_what_another_request_stored_meanwhile() {
    use session_core::ConcurrencyPolicy;
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let seed = Session::new(store.clone(), config(), None);
    seed.insert("old", &1).await.unwrap();
    seed.save().await.unwrap();
    let key = seed.key().unwrap();

    let clearing = Session::new(
        store.clone(),
        config_under(ConcurrencyPolicy::Merge),
        Some(key.as_str()),
    );
    let other = Session::new(
        store.clone(),
        config_under(ConcurrencyPolicy::Merge),
        Some(key.as_str()),
    );
    other.insert("theirs", &2).await.unwrap();
    // Cleared without reading first (Django's `clear` never loads).
    clearing.clear();
    clearing.insert("mine", &3).await.unwrap();
    other.save().await.unwrap();
    clearing.save().await.unwrap();
    let stored = store.load(&key).await.unwrap().unwrap();
    let keys: Vec<&str> = stored.keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["mine"]);
}

#[tokio::test]
async fn merge_gives_up_after_its_attempts_with_a_conflict() {
    use session_core::{ConcurrencyPolicy, SharedRecord, Version, VersionedRecord};

    /// Every compare-and-swap loses, as if another request always saved in between.
    #[derive(Debug, Default)]
    struct AlwaysRaced {
        inner: MemoryStore,
        swaps: AtomicUsize,
    }

    #[async_trait]
    impl SessionStore for AlwaysRaced {
        async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
            self.inner.load(key).await
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
        fn capabilities(&self) -> session_core::StoreCapabilities {
            session_core::StoreCapabilities::COMPARE_AND_SWAP
        }
        async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
            self.inner.load_versioned(key).await
        }
        async fn save_if_unchanged(
            &self,
            _key: &SessionKey,
            _record: SharedRecord,
            _expected: &Version,
        ) -> Result<Version, Error> {
            self.swaps.fetch_add(1, Ordering::SeqCst);
            Err(Error::Conflict)
        }
    }

    let store = Arc::new(AlwaysRaced::default());
    let seed = Session::new(store.clone(), config(), None);
    seed.insert("k", &0).await.unwrap();
    seed.save().await.unwrap();
    let key = seed.key().unwrap();
    let config = Arc::new(SessionConfig {
        concurrency: ConcurrencyPolicy::Merge,
        merge_attempts: 3,
        ..SessionConfig::new("secret")
    });
    let s = Session::new(store.clone(), config, Some(key.as_str()));
    s.insert("k", &1).await.unwrap();
    assert!(matches!(s.save().await, Err(Error::Conflict)));
    assert_eq!(store.swaps.load(Ordering::SeqCst), 3);
    assert!(
        !s.changes().is_empty(),
        "the unsaved change is still pending"
    );
}

#[tokio::test]
async fn a_policy_on_a_store_without_compare_and_swap_is_a_configuration_error() {
    use session_core::ConcurrencyPolicy;
    let store = Arc::new(Counting::default());
    let seed = Session::new(store.clone(), config(), None);
    seed.insert("k", &0).await.unwrap();
    seed.save().await.unwrap();
    let key = seed.key().unwrap();
    let s = Session::new(
        store,
        config_under(ConcurrencyPolicy::Reject),
        Some(key.as_str()),
    );
    let err = s.get::<i64>("k").await.unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("last_write_wins")),
        "{err}"
    );
}

fn throttled(fraction: f64) -> Arc<SessionConfig> {
    Arc::new(SessionConfig {
        save_every_request: true,
        refresh_fraction: fraction,
        cookie_age: 100,
        ..SessionConfig::new("secret")
    })
}

/// A session saved now on `store`, presented again by a later request with `config`.
async fn saved_then_presented(store: Arc<dyn SessionStore>, config: Arc<SessionConfig>) -> Session {
    let first = Session::new(store.clone(), config.clone(), None);
    first.insert("k", &1).await.unwrap();
    first.save().await.unwrap();
    Session::new(store, config, Some(first.key().unwrap().as_str()))
}

#[tokio::test]
async fn a_throttled_refresh_is_due_once_the_fraction_of_the_age_has_passed() {
    let now = time::OffsetDateTime::now_utc();
    let s = saved_then_presented(Arc::new(MemoryStore::new()), throttled(0.5)).await;
    assert!(!s.refresh_due(now).await.unwrap(), "just saved");
    assert!(
        !s.refresh_due(now + time::Duration::seconds(45))
            .await
            .unwrap()
    );
    assert!(
        s.refresh_due(now + time::Duration::seconds(55))
            .await
            .unwrap()
    );
    assert!(!s.modified(), "asking changes nothing");
}

#[tokio::test]
async fn without_a_fraction_every_request_refreshes_as_in_django() {
    let now = time::OffsetDateTime::now_utc();
    let s = saved_then_presented(Arc::new(MemoryStore::new()), throttled(0.0)).await;
    assert!(s.refresh_due(now).await.unwrap());
}

#[tokio::test]
async fn a_store_that_does_not_report_expiry_always_refreshes() {
    let now = time::OffsetDateTime::now_utc();
    // Counting forwards load but not load_with_expiry: the trait's default says nothing.
    let s = saved_then_presented(Arc::new(Counting::default()), throttled(0.5)).await;
    assert!(s.refresh_due(now).await.unwrap());
}

#[tokio::test]
async fn a_session_expiring_at_a_fixed_date_is_never_refreshed() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let config = throttled(0.5);
    let first = Session::new(store.clone(), config.clone(), None);
    first
        .set_expiry(Expiry::At(
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
        .await
        .unwrap();
    first.save().await.unwrap();
    let again = Session::new(store, config, Some(first.key().unwrap().as_str()));
    let later = time::OffsetDateTime::now_utc() + time::Duration::minutes(59);
    assert!(!again.refresh_due(later).await.unwrap());
}
