//! Django's cache-session-specific tests (`CacheSessionTests` in `tests/sessions_tests/tests.py`),
//! named as Django names them, plus the cache rules around them (key layout, lifetimes,
//! non-positive ages, corrupt values), on every backend: the in-process cache always, a real Redis
//! and a real Redis Cluster when their URLs are set.
#![cfg(any(feature = "memory", feature = "redis"))]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;

use session_cache::{Cache, CacheError, CacheStore, Caches};
use session_conformance::logs;
use session_core::codec::{CORRUPTED_MESSAGE, SUSPICIOUS_SESSION_TARGET};
use session_core::serializer::SerializerName;
use session_core::{
    Dict, Error, Expiry, SaveMode, Session, SessionConfig, SessionKey, SessionRecord, SessionStore,
    Value,
};
use time::OffsetDateTime;

fn config() -> SessionConfig {
    SessionConfig {
        serializer: SerializerName::Pickle,
        ..session_conformance::config()
    }
}

fn session(store: &CacheStore, key: Option<&str>) -> Session {
    Session::new(Arc::new(store.clone()), Arc::new(config()), key)
}

fn record(data: &Dict, age: i64) -> SessionRecord<'_> {
    SessionRecord {
        data,
        expires_at: OffsetDateTime::now_utc().saturating_add(time::Duration::seconds(age)),
        expiry_age: age,
    }
}

fn dict(pairs: &[(&str, Value)]) -> Dict {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// `test_default_cache`: a saved session is in the default cache, under its cache key.
async fn default_cache(cache: Cache) {
    let caches = Caches::new().with("default", cache);
    let store = CacheStore::from_caches(&caches, "default", &config()).unwrap();
    let s = session(&store, None);
    s.insert("a", "b").await.unwrap();
    s.save().await.unwrap();
    let key = s.key().unwrap();
    let entry = caches
        .get("default")
        .unwrap()
        .get(&store.cache_key(&key))
        .await
        .unwrap();
    assert!(entry.is_some(), "the session must be in the default cache");
}

/// `test_non_default_cache`: with the session cache alias pointing at another cache, sessions go
/// there and not to the default one; an alias that is not configured fails at construction
/// (`InvalidCacheBackendError`, ticket #21000).
async fn non_default_cache(default: Cache, sessions: Cache) {
    let caches = Caches::new()
        .with("default", default)
        .with("sessions", sessions);
    let store = CacheStore::from_caches(&caches, "sessions", &config()).unwrap();
    let s = session(&store, None);
    s.insert("a", "b").await.unwrap();
    s.save().await.unwrap();
    let cache_key = store.cache_key(&s.key().unwrap());
    let in_default = caches.get("default").unwrap().get(&cache_key).await;
    let in_sessions = caches.get("sessions").unwrap().get(&cache_key).await;
    assert!(
        in_default.unwrap().is_none(),
        "nothing in the default cache"
    );
    assert!(
        in_sessions.unwrap().is_some(),
        "the session is in `sessions`"
    );

    let only_default = Caches::new().with("default", caches.get("default").unwrap().clone());
    match CacheStore::from_caches(&only_default, "sessions", &config()) {
        Err(CacheError::UnknownAlias { alias, configured }) => {
            assert_eq!(alias, "sessions");
            assert_eq!(configured, ["default"]);
        }
        other => panic!("an unknown alias must be a configuration error, got {other:?}"),
    }
    let as_core: Error = CacheStore::from_caches(&only_default, "sessions", &config())
        .unwrap_err()
        .into();
    assert!(matches!(as_core, Error::Config(ref m) if m.contains("\"sessions\"")));
}

/// `test_create_and_save`: `create()` then `save()` leaves the entry in the cache.
async fn create_and_save(cache: Cache) {
    let store = CacheStore::new(cache.clone(), &config()).unwrap();
    let s = session(&store, None);
    s.create().await.unwrap();
    s.save().await.unwrap();
    let key = s.key().unwrap();
    assert!(cache.get(&store.cache_key(&key)).await.unwrap().is_some());
}

/// `test_load_overlong_key`: a 1240-character key loads nothing, without an error.
async fn load_overlong_key(cache: Cache) {
    let store = CacheStore::new(cache, &config()).unwrap();
    let overlong = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".repeat(20);
    assert_eq!(overlong.len(), 1240);
    let s = session(&store, Some(&overlong));
    assert_eq!(s.load().await.unwrap(), Dict::new());
    assert_eq!(s.key(), None, "a key that loads nothing is dropped");
    let key = SessionKey::new(overlong).unwrap();
    assert_eq!(store.load(&key).await.unwrap(), None);
    assert!(!store.exists(&key).await.unwrap());
}

/// The entry lives at `<KEY_PREFIX>:1:django.contrib.sessions.cache<key>` and holds the
/// serializer's bytes of the dict (a pickle here), unsigned.
async fn stored_under_djangos_key_as_serializer_bytes(cache: Cache) {
    let store = CacheStore::new(cache.clone(), &config()).unwrap();
    let key = SessionKey::generate().unwrap();
    let data = dict(&[("hello", Value::from("world"))]);
    store
        .save(&key, record(&data, 300), SaveMode::MustCreate)
        .await
        .unwrap();
    let prefix = cache.key_function().key_prefix();
    let physical = format!("{prefix}:1:django.contrib.sessions.cache{}", key.as_str());
    assert_eq!(store.physical_key(&key), physical);
    let raw = cache.backend().get(&physical).await.unwrap().unwrap();
    let expected = session_core::serializer::PickleSerializer::default();
    assert_eq!(
        raw,
        session_core::serializer::Serializer::dumps_dict(&expected, &data).unwrap()
    );
}

/// Must-create never overwrites; update never recreates; both keep the data they were given.
async fn saves_are_conditional(cache: Cache) {
    let store = CacheStore::new(cache, &config()).unwrap();
    let key = SessionKey::generate().unwrap();
    let first = dict(&[("v", Value::from(1i64))]);
    let second = dict(&[("v", Value::from(2i64))]);
    assert!(matches!(
        store
            .save(&key, record(&first, 300), SaveMode::Update)
            .await,
        Err(Error::SessionDeleted)
    ));
    assert!(!store.exists(&key).await.unwrap(), "update must not create");
    store
        .save(&key, record(&first, 300), SaveMode::MustCreate)
        .await
        .unwrap();
    assert!(matches!(
        store
            .save(&key, record(&second, 300), SaveMode::MustCreate)
            .await,
        Err(Error::CreateConflict)
    ));
    assert_eq!(store.load(&key).await.unwrap(), Some(first));
    store
        .save(&key, record(&second, 300), SaveMode::Update)
        .await
        .unwrap();
    assert_eq!(store.load(&key).await.unwrap(), Some(second));
    store.delete(&key).await.unwrap();
    assert!(!store.exists(&key).await.unwrap());
    store.delete(&key).await.unwrap(); // deleting what is gone is fine
}

/// A non-positive expiry age leaves nothing readable: a must-create stores nothing (but still
/// reports a taken key), an update deletes the entry, and an update of an absent entry is still
/// `SessionDeleted`.
async fn non_positive_age_stores_nothing(cache: Cache) {
    let store = CacheStore::new(cache, &config()).unwrap();
    let data = dict(&[("v", Value::from(1i64))]);
    for age in [0, -1, -3600, i64::MIN] {
        let key = SessionKey::generate().unwrap();
        store
            .save(&key, record(&data, age), SaveMode::MustCreate)
            .await
            .unwrap();
        assert!(!store.exists(&key).await.unwrap(), "age {age}: stored");
        assert!(matches!(
            store.save(&key, record(&data, age), SaveMode::Update).await,
            Err(Error::SessionDeleted)
        ));

        store
            .save(&key, record(&data, 300), SaveMode::MustCreate)
            .await
            .unwrap();
        assert!(matches!(
            store
                .save(&key, record(&data, age), SaveMode::MustCreate)
                .await,
            Err(Error::CreateConflict)
        ));
        store
            .save(&key, record(&data, age), SaveMode::Update)
            .await
            .unwrap();
        assert_eq!(store.load(&key).await.unwrap(), None, "age {age}: readable");
    }
    // A session that sets an expiry in the past is not readable after its save either.
    let s = session(&store, None);
    s.insert("k", "v").await.unwrap();
    s.set_expiry(Expiry::Seconds(-5)).await.unwrap();
    s.save().await.unwrap();
    assert_eq!(store.load(&s.key().unwrap()).await.unwrap(), None);
}

/// A huge expiry age is clamped, not refused (Redis rejects expiry times past i64 milliseconds).
async fn huge_age_is_kept(cache: Cache) {
    let store = CacheStore::new(cache, &config()).unwrap();
    let key = SessionKey::generate().unwrap();
    let data = dict(&[("v", Value::from(1i64))]);
    store
        .save(&key, record(&data, i64::MAX), SaveMode::MustCreate)
        .await
        .unwrap();
    assert_eq!(store.load(&key).await.unwrap(), Some(data));
    store.delete(&key).await.unwrap();
}

/// Bytes that are not a session (garbage, a pickled non-dict, Django's raw int) load as an empty
/// session with Django's security warning, never as an error.
async fn corrupt_value_loads_empty_with_a_warning(cache: Cache) {
    let store = CacheStore::new(cache.clone(), &config()).unwrap();
    for garbage in [&b"\x80\x05garbage"[..], b"42", b"\x80\x04]\x94.", b""] {
        let key = SessionKey::generate().unwrap();
        cache
            .set(&store.cache_key(&key), garbage.to_vec().into(), 300)
            .await
            .unwrap();
        let (loaded, events) = logs::capture(|| {
            futures_lite_block_on(store.load(&key)) // deserialization logs synchronously
        });
        assert_eq!(loaded.unwrap(), Some(Dict::new()), "{garbage:?}");
        assert!(
            events
                .iter()
                .any(|e| e.target == SUSPICIOUS_SESSION_TARGET
                    && e.message.contains(CORRUPTED_MESSAGE)),
            "{garbage:?}: {events:?}"
        );
        let s = session(&store, Some(key.as_str()));
        assert_eq!(*s.data().await.unwrap(), Dict::new());
        assert_eq!(
            s.key(),
            Some(key),
            "a present-but-corrupt entry keeps its key"
        );
    }
}

/// Runs a future to completion on the current thread (so `logs::capture` sees its events) inside
/// the test's runtime.
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

macro_rules! django_cache_tests {
    ($backend:ident, $cache:expr) => {
        mod $backend {
            use super::*;

            macro_rules! with_cache {
                ($name:ident, $body:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        #[allow(clippy::redundant_closure_call)]
                        let Some(cache) = ($cache)(stringify!($name)).await else {
                            return;
                        };
                        super::$body(cache).await;
                    }
                };
            }

            with_cache!(default_cache, default_cache);
            with_cache!(create_and_save, create_and_save);
            with_cache!(load_overlong_key, load_overlong_key);
            with_cache!(
                stored_under_djangos_key_as_serializer_bytes,
                stored_under_djangos_key_as_serializer_bytes
            );
            with_cache!(saves_are_conditional, saves_are_conditional);
            with_cache!(
                non_positive_age_stores_nothing,
                non_positive_age_stores_nothing
            );
            with_cache!(huge_age_is_kept, huge_age_is_kept);
            with_cache!(
                corrupt_value_loads_empty_with_a_warning,
                corrupt_value_loads_empty_with_a_warning
            );

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn non_default_cache() {
                let Some(default) = ($cache)("non_default_cache").await else {
                    return;
                };
                let sessions = ($cache)("non_default_cache").await.unwrap();
                super::non_default_cache(default, sessions).await;
            }
        }
    };
}

#[cfg(feature = "memory")]
django_cache_tests!(memory, |_test: &'static str| async {
    Some(support::memory_cache())
});

#[cfg(feature = "redis")]
django_cache_tests!(redis, |test: &'static str| async move {
    support::redis_cache_or_skip(session_conformance::services::REDIS_URL, test).await
});

#[cfg(feature = "redis")]
django_cache_tests!(redis_cluster, |test: &'static str| async move {
    support::redis_cache_or_skip(session_conformance::services::REDIS_CLUSTER_URLS, test).await
});

#[cfg(feature = "memory")]
#[test]
fn default_layout_is_djangos_64_character_key() {
    let store = CacheStore::new(support::memory_cache(), &config()).unwrap();
    let key = SessionKey::new("9kb4paf7njryyw8w72lxnmwn32igkmu2").unwrap();
    assert_eq!(
        store.cache_key(&key),
        "django.contrib.sessions.cache9kb4paf7njryyw8w72lxnmwn32igkmu2"
    );
    let physical = store.physical_key(&key);
    assert_eq!(
        physical,
        ":1:django.contrib.sessions.cache9kb4paf7njryyw8w72lxnmwn32igkmu2"
    );
    assert_eq!(physical.len(), 64);
    assert_eq!(
        store.session_key_prefix(),
        session_cache::CACHE_SESSION_KEY_PREFIX
    );
}

#[cfg(feature = "memory")]
#[test]
fn key_prefix_version_and_session_prefix_are_configurable() {
    let cache = support::memory_cache().with_key_function(
        session_cache::KeyFunction::default()
            .with_key_prefix("shop")
            .with_version(2),
    );
    let store = CacheStore::new(cache, &config())
        .unwrap()
        .with_session_key_prefix("django.contrib.sessions.cached_db");
    let key = SessionKey::new("abcdefgh").unwrap();
    assert_eq!(
        store.physical_key(&key),
        "shop:2:django.contrib.sessions.cached_dbabcdefgh"
    );
}
