//! Sessions shared with Django 5.2's `cached_db` engine, replayed from
//! `fixtures/django/cached-db-sessions.json`, which `fixtures/django/generate_cached_db.py`
//! records against a real Redis and PostgreSQL (both directions, see its docstring).
//!
//! Here, without Python or servers: every session Django wrote is put back where Django put it
//! (its cache value under its physical key in a memory cache, its row in SQLite) and must load
//! through our store from the cache and, once the entry is gone, from the row; every session we
//! wrote was read back exactly by Django, and we still write the same cache bytes for it.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;

use base64::Engine;
use session_cache::{Cache, CacheBackend, MemoryCache, Ttl};
use session_cached_db::CachedDbStore;
use session_core::expiry::{parse_isoformat, python_datetime_text};
use session_core::serializer::{JsonSerializer, Serializer, SerializerName};
use session_core::{Dict, SessionKey, SessionStore, Value};
use session_db::SqliteStore;
use time::Duration;

fn fixture() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/django/cached-db-sessions.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn text<'a>(value: &'a serde_json::Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {value}"))
}

fn data(json: &str) -> Dict {
    match JsonSerializer.loads_text(json).unwrap() {
        Value::Dict(data) => data,
        other => panic!("not a dict: {other:?}"),
    }
}

/// Compact JSON: equal text means equal sessions, key order and int/float included.
fn json(data: &Dict) -> String {
    String::from_utf8(JsonSerializer.dumps_dict(data).unwrap()).unwrap()
}

fn base64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[tokio::test]
async fn we_read_every_session_django_wrote_from_its_cache_entry_and_from_its_row() {
    let fixture = fixture();
    let settings = &fixture["settings"];
    let wrote = fixture["django_wrote"].as_array().unwrap();
    assert_eq!(wrote.len(), 11);
    let expiries: Vec<_> = wrote
        .iter()
        .map(|r| parse_isoformat(text(r, "expire_date")).unwrap())
        .collect();
    // Read the rows as of the moment they were written: all live.
    let now = *expiries.iter().min().unwrap() - Duration::seconds(1);

    let config = support::config();
    let backend = Arc::new(MemoryCache::new());
    let cache = Cache::from_arc(backend.clone()).with_key_prefix(text(settings, "KEY_PREFIX"));
    let db = SqliteStore::connect("sqlite::memory:", &config)
        .await
        .unwrap()
        .with_clock(move || now);
    db.ensure_schema().await.unwrap();
    let store = CachedDbStore::new(cache, db, &config).unwrap();

    for (row, expire_date) in wrote.iter().zip(expiries) {
        let name = text(row, "name");
        let key = SessionKey::new(text(row, "session_key")).unwrap();
        let expected = json(&data(text(row, "data_json")));
        assert_eq!(
            store.physical_key(&key),
            text(row, "physical_key"),
            "{name}"
        );
        assert_eq!(
            store.cache_key(&key),
            text(row, "django_cache_key"),
            "{name}"
        );
        backend
            .set(
                text(row, "physical_key"),
                base64(text(row, "value_b64")).into(),
                Ttl::from_age(3600).unwrap(),
            )
            .await
            .unwrap();
        sqlx::query("INSERT INTO django_session VALUES (?, ?, ?)")
            .bind(key.as_str())
            .bind(text(row, "session_data"))
            .bind(python_datetime_text(expire_date, ' '))
            .execute(store.db().pool())
            .await
            .unwrap();

        let hit = store.load_with_expiry(&key).await.unwrap().unwrap();
        assert_eq!(hit.expires_at, None, "{name}: served from the cache");
        assert_eq!(json(&hit.data), expected, "{name}: Django's cache value");

        store.cache().delete(&store.cache_key(&key)).await.unwrap();
        let miss = store.load_with_expiry(&key).await.unwrap().unwrap();
        assert_eq!(miss.expires_at, Some(expire_date), "{name}: from the row");
        assert_eq!(json(&miss.data), expected, "{name}: Django's row");
        assert!(store.exists(&key).await.unwrap(), "{name}");
    }
}

#[test]
fn django_read_every_session_we_wrote_and_we_still_write_the_same_cache_bytes() {
    let fixture = fixture();
    let ours = fixture["django_read_ours"].as_array().unwrap();
    assert_eq!(ours.len(), 11);
    let pickle = SerializerName::Pickle.serializer();
    for row in ours {
        let name = text(row, "name");
        for verdict in [
            "django_cached_before",
            "django_cache_equal",
            "django_db_equal",
            "django_key_kept",
            "django_exists",
        ] {
            assert_eq!(row[verdict], true, "{name}: {verdict}");
        }
        assert_eq!(
            text(row, "django_physical_key"),
            text(row, "physical_key"),
            "{name}"
        );
        assert_eq!(
            pickle.dumps_dict(&data(text(row, "data_json"))).unwrap(),
            base64(text(row, "value_b64")),
            "{name}: our cache bytes changed since Django read them; rerun \
             fixtures/django/generate_cached_db.py to check the new ones against Django"
        );
    }
}

#[test]
fn the_live_run_recorded_no_disagreement_in_either_direction() {
    let fixture = fixture();
    for row in fixture["we_read_django"].as_array().unwrap() {
        for check in [
            "physical_key_equal",
            "cached_before",
            "cache_hit",
            "cache_equal",
            "db_equal",
            "db_expire_date_equal",
            "exists",
        ] {
            assert_eq!(row[check], true, "{}: {check}", text(row, "name"));
        }
    }
}
