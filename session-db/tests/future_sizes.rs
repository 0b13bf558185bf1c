//! What a session request allocates for the futures it boxes on PostgreSQL: every store call goes
//! through an `async_trait` method, which boxes its future, and glibc serves blocks of up to
//! 1,032 bytes from a per-thread cache, larger ones from its shared bins after consolidating
//! them (see session-cache's `tests/future_sizes.rs`, where Redis calls boxed 3.2–3.6 KB).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::mem::size_of_val;
use std::sync::Arc;

use session_conformance::memory::assert_boxed_futures_fit_the_thread_cache;
use session_conformance::services;
use session_core::{
    Dict, SaveMode, SessionConfig, SessionKey, SessionRecord, SessionStore, SharedRecord,
};
use session_db::PgStore;
use time::OffsetDateTime;

#[tokio::test]
async fn postgres_futures_of_a_request_fit_the_allocators_thread_cache() {
    let test = "postgres_futures_of_a_request_fit_the_allocators_thread_cache";
    let Some(url) = services::url_or_skip(services::POSTGRES_URL, test) else {
        return;
    };
    let store = PgStore::connect(&url, &SessionConfig::new("secret"))
        .await
        .unwrap();
    let key = SessionKey::generate().unwrap();
    let data = Dict::new();
    let record = SessionRecord {
        data: &data,
        expires_at: OffsetDateTime::now_utc(),
        expiry_age: 60,
    };
    let shared = SharedRecord {
        data: Arc::new(Dict::new()),
        expires_at: OffsetDateTime::now_utc(),
        expiry_age: 60,
    };
    let sizes = [
        ("load", size_of_val(&*store.load(&key))),
        ("load_shared", size_of_val(&*store.load_shared(&key))),
        ("exists", size_of_val(&*store.exists(&key))),
        (
            "save",
            size_of_val(&*store.save(&key, record, SaveMode::Update)),
        ),
        (
            "save_shared",
            size_of_val(&*store.save_shared(&key, shared, SaveMode::Update)),
        ),
    ];
    assert_boxed_futures_fit_the_thread_cache(&sizes);
}
