//! Sessions shared with real Django 5.2 (`django.core.cache.backends.redis.RedisCache` +
//! the cache session engine), replayed from `fixtures/django/cache-sessions.json`, which
//! `fixtures/django/generate_cache.py` records against a real Redis:
//!
//! - `django_wrote`: the keys, raw bytes and TTLs Django left in Redis; we must read every session
//!   from them, at the same keys;
//! - `django_read_ours`: what our store wrote for the same data, and Django's verdict on reading
//!   it back; every verdict must be a pass, and we must still write those exact bytes.
#![cfg(feature = "memory")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use support::fixture::{cases, data, key, raw};

use serde_json::Value as Json;
use session_cache::{Cache, CacheStore};
use session_conformance::logs;
use session_core::codec::{CORRUPTED_MESSAGE, SUSPICIOUS_SESSION_TARGET};
use session_core::serializer::{PickleSerializer, Serializer, SerializerName};
use session_core::value::dicts_identical;
use session_core::{Dict, SessionConfig, SessionStore};

fn fixture() -> Json {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/django/cache-sessions.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Django's defaults (SESSION_SERIALIZER is JSON), as on the Django side of the fixture: the
/// cache store pickles its values whatever the session serializer, as Django's cache framework
/// does, so nothing needs configuring to share sessions.
fn config() -> SessionConfig {
    let config = session_conformance::config();
    assert_eq!(config.serializer, SerializerName::Json);
    config
}

fn key_prefix(fixture: &Json) -> &str {
    fixture["settings"]["KEY_PREFIX"].as_str().unwrap()
}

fn ttl(case: &Json) -> i64 {
    case["ttl"].as_i64().unwrap()
}

/// Puts Django's bytes where Django put them (relative to `cache`'s key prefix) and reads them
/// back through our store; returns how many sessions matched.
async fn read_what_django_wrote(cache: Cache, fixture: &Json) -> usize {
    let store = CacheStore::new(cache.clone(), &config()).unwrap();
    let sessions = cases(fixture, "django_wrote", Some("session"));
    for case in &sessions {
        let key = key(case);
        cache
            .backend()
            .set(
                &store.physical_key(&key),
                raw(case).into(),
                session_cache::Ttl::from_age(ttl(case)).unwrap(),
            )
            .await
            .unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();
        let expected = data(case);
        assert!(
            dicts_identical(&loaded, &expected),
            "{}: read {loaded:?}, Django wrote {expected:?}",
            case["name"]
        );
        cache.delete(&store.cache_key(&key)).await.unwrap();
    }
    sessions.len()
}

#[tokio::test]
async fn stored_keys_are_where_django_puts_them() {
    let fixture = fixture();
    let cache = support::memory_cache().with_key_prefix(key_prefix(&fixture));
    let store = CacheStore::new(cache, &config()).unwrap();
    let all = cases(&fixture, "django_wrote", None);
    assert_eq!(all.len(), 13);
    for case in all {
        assert_eq!(
            store.physical_key(&key(case)),
            case["physical_key"].as_str().unwrap(),
            "{}",
            case["name"]
        );
        if let Some(logical) = case["django_cache_key"].as_str() {
            assert_eq!(store.cache_key(&key(case)), logical);
        }
    }
}

#[tokio::test]
async fn reads_every_session_django_wrote() {
    let fixture = fixture();
    let cache = support::memory_cache().with_key_prefix(key_prefix(&fixture));
    assert_eq!(read_what_django_wrote(cache, &fixture).await, 11);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn reads_every_session_django_wrote_from_a_real_redis() {
    use session_conformance::services::REDIS_URL;
    let test = "reads_every_session_django_wrote_from_a_real_redis";
    let Some(cache) = support::redis_cache_or_skip(REDIS_URL, test).await else {
        return;
    };
    assert_eq!(read_what_django_wrote(cache, &fixture()).await, 11);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn reads_every_session_django_wrote_from_a_real_redis_cluster() {
    use session_conformance::services::REDIS_CLUSTER_URLS;
    let test = "reads_every_session_django_wrote_from_a_real_redis_cluster";
    let Some(cache) = support::redis_cache_or_skip(REDIS_CLUSTER_URLS, test).await else {
        return;
    };
    assert_eq!(read_what_django_wrote(cache, &fixture()).await, 11);
}

/// Django's raw-int values (its `RedisSerializer` does not pickle ints) and pickles of Python
/// objects (a `datetime`) are not session data we can read: they load as an empty session with
/// the security warning, never an error or a panic.
#[test]
fn values_that_are_not_plain_data_load_empty_with_a_warning() {
    let fixture = fixture();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = support::memory_cache().with_key_prefix(key_prefix(&fixture));
    let store = CacheStore::new(cache.clone(), &config()).unwrap();
    let odd: Vec<_> = ["raw_int", "python_object"]
        .iter()
        .flat_map(|kind| cases(&fixture, "django_wrote", Some(kind)))
        .collect();
    assert_eq!(odd.len(), 2);
    for case in odd {
        let key = key(case);
        let (loaded, events) = logs::capture(|| {
            runtime.block_on(async {
                let ttl = session_cache::Ttl::from_age(ttl(case)).unwrap();
                let physical = store.physical_key(&key);
                cache
                    .backend()
                    .set(&physical, raw(case).into(), ttl)
                    .await?;
                store
                    .load(&key)
                    .await
                    .map_err(session_cache::CacheError::Session)
            })
        });
        assert_eq!(loaded.unwrap(), Some(Dict::new()), "{}", case["name"]);
        assert!(
            events
                .iter()
                .any(|e| e.target == SUSPICIOUS_SESSION_TARGET && e.message == CORRUPTED_MESSAGE),
            "{}: {events:?}",
            case["name"]
        );
    }
}

#[test]
fn django_read_every_session_we_wrote_and_we_still_write_those_bytes() {
    let fixture = fixture();
    let ours = cases(&fixture, "django_read_ours", None);
    assert_eq!(ours.len(), 11);
    for case in ours {
        let name = &case["name"];
        assert_eq!(
            case["django_equal"], true,
            "{name}: Django read something else"
        );
        assert_eq!(
            case["django_key_kept"], true,
            "{name}: Django dropped the key"
        );
        assert_eq!(case["physical_key"], case["django_physical_key"], "{name}");
        let today = PickleSerializer::default().dumps_dict(&data(case)).unwrap();
        assert_eq!(
            today,
            raw(case),
            "{name}: we no longer write the bytes Django accepted; rerun \
             fixtures/django/generate_cache.py to check the new ones against Django"
        );
    }
}

#[test]
fn our_lifetimes_are_djangos() {
    let fixture = fixture();
    let theirs = cases(&fixture, "django_wrote", Some("session"));
    for case in cases(&fixture, "django_read_ours", None) {
        let name = case["name"].as_str().unwrap();
        let django = theirs.iter().find(|c| c["name"] == name).unwrap();
        // Django read our TTLs a moment after we wrote them (Redis reports whole seconds left).
        let ours_when_written = |expected: i64| (expected - 5..=expected).contains(&ttl(case));
        match name {
            // A relative expiry: the same number of seconds.
            "expiry_seconds" => assert!(ttl(django) == 300 && ours_when_written(300), "{name}"),
            // An absolute expiry: the ages were taken some seconds apart.
            "expiry_absolute" => assert!((ttl(case) - ttl(django)).abs() < 120, "{name}"),
            // Everything else (browser-close included) lives SESSION_COOKIE_AGE.
            _ => assert!(
                ttl(django) == 1_209_600 && ours_when_written(1_209_600),
                "{name}: ours {}, Django's {}",
                ttl(case),
                ttl(django)
            ),
        }
    }
}
