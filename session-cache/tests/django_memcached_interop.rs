//! Sessions shared with real Django 5.2 on memcached (`PyMemcacheCache` + the cache session
//! engine), on one server and on three, replayed from `fixtures/django/memcached-sessions.json`,
//! which `fixtures/django/generate_memcached.py` records against real memcached servers:
//!
//! - `placement`: the server pymemcache's `HashClient` picks for a spread of keys; ours must agree;
//! - `django_wrote`: the servers, flags, bytes and TTLs Django left; we must read every session
//!   from the server Django put it on;
//! - `django_read_ours`: what our store wrote for the same data and where, with Django's verdict
//!   on reading it back; every verdict must be a pass, and we must still write those bytes there.
#![cfg(feature = "memcached")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use support::fixture::{cases, data, key, raw};

use serde_json::Value as Json;
use session_cache::{
    CACHE_SESSION_KEY_PREFIX, Cache, CacheStore, FLAG_PICKLE, KeyFunction, MemcachedCache,
};
use session_conformance::{logs, services};
use session_core::codec::{CORRUPTED_MESSAGE, SUSPICIOUS_SESSION_TARGET};
use session_core::serializer::{PickleSerializer, Serializer, SerializerName};
use session_core::value::dicts_identical;
use session_core::{Dict, SessionConfig, SessionStore};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn fixture() -> Json {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/django/memcached-sessions.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const TOPOLOGIES: [&str; 2] = ["single", "several"];

fn config() -> SessionConfig {
    SessionConfig {
        serializer: SerializerName::Pickle,
        ..session_conformance::config()
    }
}

fn servers(topology: &Json) -> Vec<String> {
    topology["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn server_list(topology: &Json) -> String {
    servers(topology).join(",")
}

fn key_prefix(topology: &Json) -> &str {
    topology["settings"]["KEY_PREFIX"].as_str().unwrap()
}

fn held_by(case: &Json) -> Vec<&str> {
    case["held_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn every_key_is_placed_on_the_server_pymemcache_chooses() {
    let fixture = fixture();
    let placement = &fixture["placement"];
    let builder = MemcachedCache::builder(&server_list(placement));
    let keys = placement["keys"].as_array().unwrap();
    assert!(keys.len() >= 60);
    for case in keys {
        let key = case["key"].as_str().unwrap();
        assert_eq!(
            builder.server_for(key).as_deref(),
            case["server"].as_str(),
            "{key:?}"
        );
    }
    // The order servers are listed in does not matter, only their names.
    let reversed: Vec<String> = servers(placement).into_iter().rev().collect();
    let reversed = MemcachedCache::builder(&reversed.join(","));
    for case in keys {
        let key = case["key"].as_str().unwrap();
        assert_eq!(reversed.server_for(key).as_deref(), case["server"].as_str());
    }
}

#[test]
fn django_put_each_session_on_the_server_we_would_choose_with_the_pickle_flag() {
    let fixture = fixture();
    for name in TOPOLOGIES {
        let topology = &fixture[name];
        let builder = MemcachedCache::builder(&server_list(topology));
        let wrote = cases(topology, "django_wrote", None);
        assert_eq!(wrote.len(), 13, "{name}");
        for case in wrote {
            let label = format!("{name}/{}", case["name"]);
            assert_eq!(case["django_error"], Json::Null, "{label}");
            let physical = case["physical_key"].as_str().unwrap();
            let keys = KeyFunction::default().with_key_prefix(key_prefix(topology));
            let logical = format!("{CACHE_SESSION_KEY_PREFIX}{}", key(case).as_str());
            assert_eq!(keys.make_key(&logical), physical, "{label}");
            if case["name"] == "expiry_absolute" {
                // Django's memcached cache silently stores nothing for a session expiring after
                // 2038 (its absolute exptime overflows memcached's); see the store docs.
                assert!(held_by(case).is_empty(), "{label}");
                continue;
            }
            let home = builder.server_for(physical).unwrap();
            assert_eq!(held_by(case), [home.as_str()], "{label}");
            let expected_flags = if case["kind"] == "raw_int" { 2 } else { 1 };
            assert_eq!(case["flags"], expected_flags, "{label}");
        }
    }
}

#[test]
fn django_read_every_session_we_wrote_and_we_still_write_those_bytes() {
    let fixture = fixture();
    for name in TOPOLOGIES {
        let topology = &fixture[name];
        let ours = cases(topology, "django_read_ours", None);
        assert_eq!(ours.len(), 11, "{name}");
        for case in ours {
            let label = format!("{name}/{}", case["name"]);
            assert_eq!(
                case["django_equal"], true,
                "{label}: Django read something else"
            );
            assert_eq!(
                case["django_key_kept"], true,
                "{label}: Django dropped the key"
            );
            assert_eq!(case["physical_key"], case["django_physical_key"], "{label}");
            assert_eq!(case["our_server"], case["django_server"], "{label}");
            assert_eq!(
                held_by(case),
                [case["our_server"].as_str().unwrap()],
                "{label}"
            );
            assert_eq!(case["flags"], FLAG_PICKLE, "{label}");
            let today = PickleSerializer::default().dumps_dict(&data(case)).unwrap();
            assert_eq!(
                today,
                raw(case),
                "{label}: we no longer write the bytes Django accepted; rerun \
                 fixtures/django/generate_memcached.py to check the new ones against Django"
            );
            let ttl = case["ttl"].as_i64().unwrap();
            let expected = match case["name"].as_str().unwrap() {
                "expiry_seconds" => 300,
                // Capped at memcached's last second (2038-01-19), where Django stores nothing.
                "expiry_absolute" => continue,
                _ => 1_209_600,
            };
            assert!((expected - 5..=expected).contains(&ttl), "{label}: {ttl}");
        }
    }
}

/// Puts Django's bytes on the servers under the fixture's keys through our backend, checks they
/// land where Django put them, and reads them back through our store; returns how many matched.
async fn read_what_django_wrote(urls: &str, topology: &Json) -> usize {
    let memcached = std::sync::Arc::new(MemcachedCache::connect(urls).await.unwrap());
    let cache = Cache::from_arc(memcached.clone()).with_key_prefix(key_prefix(topology));
    let store = CacheStore::new(cache.clone(), &config()).unwrap();
    let mut read = 0;
    for case in cases(topology, "django_wrote", Some("session")) {
        if held_by(case).is_empty() {
            continue; // expiry_absolute: Django stored nothing
        }
        let key = key(case);
        let physical = store.physical_key(&key);
        assert_eq!(memcached.server_for(&physical), held_by(case)[0]);
        let ttl = session_cache::Ttl::from_age(case["ttl"].as_i64().unwrap()).unwrap();
        cache
            .backend()
            .set(&physical, raw(case).into(), ttl)
            .await
            .unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();
        let expected = data(case);
        assert!(
            dicts_identical(&loaded, &expected),
            "{}: read {loaded:?}, Django wrote {expected:?}",
            case["name"]
        );
        store.delete(&key).await.unwrap();
        read += 1;
    }
    read
}

/// The fixture's servers, when they are the ones under test (the fixture names them).
fn live_servers(topology: &Json, test: &str) -> Option<String> {
    let configured = services::url_or_skip(support::MEMCACHED_URLS, test)?;
    let configured: Vec<String> = configured
        .split(',')
        .map(|u| u.trim().trim_start_matches("memcache://").to_owned())
        .collect();
    let wanted = servers(topology);
    assert!(
        wanted.iter().all(|s| configured.contains(s)),
        "the fixture was recorded on {wanted:?}; {} names {configured:?}",
        support::MEMCACHED_URLS
    );
    Some(wanted.join(","))
}

#[tokio::test]
async fn reads_every_session_django_wrote_from_one_real_memcached() {
    let topology = &fixture()["single"];
    let test = "reads_every_session_django_wrote_from_one_real_memcached";
    let Some(urls) = live_servers(topology, test) else {
        return;
    };
    assert_eq!(read_what_django_wrote(&urls, topology).await, 10);
}

#[tokio::test]
async fn reads_every_session_django_wrote_from_three_real_memcacheds() {
    let topology = &fixture()["several"];
    let test = "reads_every_session_django_wrote_from_three_real_memcacheds";
    let Some(urls) = live_servers(topology, test) else {
        return;
    };
    assert_eq!(read_what_django_wrote(&urls, topology).await, 10);
}

/// Stores `value` with `flags` over a raw connection, as another client (pymemcache storing an
/// int) would.
async fn raw_set(address: &str, key: &str, flags: u32, value: &[u8]) {
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut stream = BufReader::new(stream);
    let header = format!("set {key} {flags} 300 {}\r\n", value.len());
    let request = [header.as_bytes(), value, b"\r\n"].concat();
    stream.get_mut().write_all(&request).await.unwrap();
    let mut reply = String::new();
    stream.read_line(&mut reply).await.unwrap();
    assert_eq!(reply, "STORED\r\n");
}

/// Django's raw ints (pymemcache's integer flag) and pickles of Python objects (a `datetime`)
/// are not session data we can read: they load as an empty session with the security warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_that_are_not_plain_data_load_empty_with_a_warning() {
    let topology = &fixture()["several"];
    let test = "values_that_are_not_plain_data_load_empty_with_a_warning";
    let Some(urls) = live_servers(topology, test) else {
        return;
    };
    let memcached = MemcachedCache::connect(&urls).await.unwrap();
    let cache = Cache::new(memcached).with_key_prefix(key_prefix(topology));
    let store = CacheStore::new(cache, &config()).unwrap();
    let odd: Vec<_> = ["raw_int", "python_object"]
        .iter()
        .flat_map(|kind| cases(topology, "django_wrote", Some(kind)))
        .collect();
    assert_eq!(odd.len(), 2);
    for case in odd {
        let key = key(case);
        let physical = store.physical_key(&key);
        let flags = u32::try_from(case["flags"].as_u64().unwrap()).unwrap();
        raw_set(held_by(case)[0], &physical, flags, &raw(case)).await;
        let (loaded, events) = logs::capture(|| {
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(store.load(&key))
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
        store.delete(&key).await.unwrap();
    }
}
