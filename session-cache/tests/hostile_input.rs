//! Hostile input reaching the cache store over the in-process cache: odd and overlong keys, and
//! stored values that are not what the serializer wrote (non-UTF-8 bytes, garbage, deep nesting,
//! a pickle whose shared references expand exponentially).
//!
//! Cache values are unsigned serializer bytes, so whoever can write to the cache controls them;
//! whatever they hold, a load is an empty session (with Django's warning) or the data, never a
//! panic, a hang or unbounded memory.
#![cfg(feature = "memory")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use session_conformance::memory::peak_rss_kib;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use bytes::Bytes;
use session_cache::{Cache, CacheStore, MemoryBound, MemoryCache};
use session_core::serializer::SerializerName;
use session_core::{
    Dict, SaveMode, Session, SessionConfig, SessionKey, SessionRecord, SessionStore, Value,
};
use time::OffsetDateTime;

const SECRET: &str = "django_tests_secret_key";
const LIMIT: Duration = Duration::from_secs(20);
/// Parsing the nesting limit's worth of levels needs up to 1.5 MiB of stack in unoptimized builds
/// (see session-core's tests/hostile_input.rs); 256 KiB is plenty when optimized.
const SMALL_STACK: usize = if cfg!(debug_assertions) {
    2 * 1024 * 1024
} else {
    256 * 1024
};

fn store(serializer: SerializerName) -> CacheStore {
    let config = SessionConfig {
        serializer,
        ..SessionConfig::new(SECRET)
    };
    let cache = Cache::new(MemoryCache::bounded(MemoryBound::Entries(1000)));
    // The values are in `serializer`'s format (the store pickles unless told otherwise).
    CacheStore::new(cache, &config)
        .unwrap()
        .with_cache_serializer(serializer)
}

fn record(data: &Dict) -> SessionRecord<'_> {
    SessionRecord {
        data,
        expires_at: OffsetDateTime::now_utc() + time::Duration::hours(1),
        expiry_age: 3600,
    }
}

/// Plants `bytes` as the cached value of `key` and loads it on a small-stack thread (failing on a
/// hang or a stack overflow).
fn load_planted(serializer: SerializerName, bytes: Vec<u8>) -> Option<Dict> {
    let (done, result) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let store = store(serializer);
            let key = SessionKey::generate().unwrap();
            let loaded = runtime.block_on(async {
                store
                    .cache()
                    .set(&store.cache_key(&key), Bytes::from(bytes), 3600)
                    .await
                    .unwrap();
                store.load(&key).await.unwrap()
            });
            let _ = done.send(loaded);
        })
        .unwrap();
    result
        .recv_timeout(LIMIT)
        .expect("the load finished in time")
}

const SERIALIZERS: [SerializerName; 3] = [
    SerializerName::Json,
    SerializerName::MsgPack,
    SerializerName::Pickle,
];

#[test]
fn garbage_in_the_cache_is_an_empty_session_for_every_serializer() {
    for serializer in SERIALIZERS {
        for bytes in [
            &b""[..],
            b"\xff\xfe\xfd",
            b"\x00",
            b"[1,2,3]",
            b"\x93\x01\x02\x03",
            b"\x80\x05]\x94.",
            b"cos\nsystem\n(S'echo pwned'\ntR.",
        ] {
            assert_eq!(
                load_planted(serializer, bytes.to_vec()),
                Some(Dict::new()),
                "{serializer}: {bytes:?}"
            );
        }
    }
}

#[test]
fn non_utf8_json_in_the_cache_reads_as_latin1_like_django() {
    let loaded = load_planted(SerializerName::Json, b"{\"a\":\"\xe9\xff\"}".to_vec()).unwrap();
    assert_eq!(loaded["a"], Value::Str("\u{e9}\u{ff}".into()));
}

#[test]
fn deeply_nested_values_in_the_cache_are_empty_sessions_on_a_small_stack() {
    const N: usize = 100_000;
    let json = format!("{{\"a\":{}{}}}", "[".repeat(N), "]".repeat(N)).into_bytes();
    let mut msgpack = vec![0x81, 0xa1, b'a'];
    msgpack.extend(std::iter::repeat_n(0x91, N));
    msgpack.push(0xc0);
    let mut pickle = vec![0x80, 0x04, b'}', 0x8c, 0x01, b'a'];
    pickle.extend(std::iter::repeat_n(b']', N));
    pickle.extend(std::iter::repeat_n(b'a', N - 1));
    pickle.extend_from_slice(b"s.");
    for (serializer, bytes) in [
        (SerializerName::Json, json),
        (SerializerName::MsgPack, msgpack),
        (SerializerName::Pickle, pickle),
    ] {
        assert_eq!(
            load_planted(serializer, bytes),
            Some(Dict::new()),
            "{serializer}"
        );
    }
}

#[test]
fn a_pickle_bomb_in_the_cache_is_an_empty_session_in_bounded_memory() {
    // {"a": level 60}, where level 0 is [None] and level i+1 is (level i, level i) through the
    // memo: 2^60 values from about 400 bytes.
    let mut pickle = vec![0x80, 0x04, b'}', 0x8c, 0x01, b'a', b']', b'N', b'a', 0x94];
    for level in 0..60u8 {
        pickle.extend_from_slice(&[b'h', level, b'h', level, 0x86, 0x94]);
    }
    pickle.extend_from_slice(b"s.");
    let before = peak_rss_kib();
    assert_eq!(
        load_planted(SerializerName::Pickle, pickle),
        Some(Dict::new())
    );
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 256, "peak RSS grew {grown_mib} MiB");
}

#[tokio::test]
async fn overlong_path_like_and_control_character_keys_are_plain_cache_keys() {
    let store = store(SerializerName::Json);
    let mut data = Dict::new();
    data.insert("a", Value::from(1i64));
    for text in [
        "k".repeat(SessionKey::MAX_LEN),
        "../../etc/passwd".to_owned(),
        "key with spaces\r\n\tand controls\0".to_owned(),
        "é".repeat(1000),
    ] {
        let key = SessionKey::new(text.as_str()).unwrap();
        assert_eq!(store.load(&key).await.unwrap(), None);
        assert!(!store.exists(&key).await.unwrap());
        store
            .save(&key, record(&data), SaveMode::MustCreate)
            .await
            .unwrap();
        assert_eq!(store.load(&key).await.unwrap(), Some(data.clone()));
        store.delete(&key).await.unwrap();
        assert_eq!(store.load(&key).await.unwrap(), None);
    }
}

#[tokio::test]
async fn a_session_offered_a_ten_thousand_character_key_saves_under_a_fresh_key() {
    let store = Arc::new(store(SerializerName::Json));
    let config = Arc::new(SessionConfig::new(SECRET));
    let offered = "a".repeat(10_000);
    let session = Session::new(store.clone(), config, Some(&offered));
    assert_eq!(session.len().await.unwrap(), 0);
    session.insert("a", &1).await.unwrap();
    session.save().await.unwrap();
    let key = session.key().unwrap();
    assert!(key.is_generated_form() && key.as_str().len() == 32);
}
