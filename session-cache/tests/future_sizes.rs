//! What a session request allocates for the futures it boxes on Redis.
//!
//! Every call through an `async_trait` method boxes its future. glibc serves blocks of up to
//! 1,032 bytes from a per-thread cache and larger ones from its shared bins, consolidating them
//! first: a Redis request boxed 3.2 and 3.6 KB futures, and malloc and free were about a fifth of
//! the server's time (bench/README.md). These pin the sizes below that line.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::mem::size_of_val;

use bytes::Bytes;
use session_cache::{Cache, CacheBackend, CacheStore, RedisCache, Ttl};
use session_conformance::memory::assert_boxed_futures_fit_the_thread_cache;
use session_conformance::services;
use session_core::{
    Dict, SaveMode, SessionConfig, SessionKey, SessionRecord, SessionStore, SharedRecord,
};

#[tokio::test]
async fn redis_futures_of_a_request_fit_the_allocators_thread_cache() {
    let test = "redis_futures_of_a_request_fit_the_allocators_thread_cache";
    let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
        return;
    };
    let redis = RedisCache::connect(&url).await.unwrap();
    let ttl = Ttl::from_age(60).unwrap();
    let sizes = [
        ("get", size_of_val(&*redis.get("k"))),
        ("set", size_of_val(&*redis.set("k", Bytes::new(), ttl))),
        ("add", size_of_val(&*redis.add("k", Bytes::new(), ttl))),
        (
            "replace",
            size_of_val(&*redis.replace("k", Bytes::new(), ttl)),
        ),
        ("delete", size_of_val(&*redis.delete("k"))),
        ("exists", size_of_val(&*redis.exists("k"))),
    ];
    let store = CacheStore::new(Cache::new(redis), &SessionConfig::new("secret")).unwrap();
    let key = SessionKey::generate().unwrap();
    let data = Dict::new();
    let record = SessionRecord {
        data: &data,
        expires_at: time::OffsetDateTime::now_utc(),
        expiry_age: 60,
    };
    let shared = SharedRecord {
        data: std::sync::Arc::new(Dict::new()),
        expires_at: time::OffsetDateTime::now_utc(),
        expiry_age: 60,
    };
    let store_sizes = [
        ("store load", size_of_val(&*store.load(&key))),
        ("store load_shared", size_of_val(&*store.load_shared(&key))),
        (
            "store save",
            size_of_val(&*store.save(&key, record, SaveMode::Update)),
        ),
        (
            "store save_shared",
            size_of_val(&*store.save_shared(&key, shared, SaveMode::Update)),
        ),
    ];
    let all: Vec<(&str, usize)> = sizes.into_iter().chain(store_sizes).collect();
    assert_boxed_futures_fit_the_thread_cache(&all);
}
