//! A cache backend of the user's own: its failures are `CacheError::Backend`, which every store
//! operation reports as a store failure (not a configuration mistake), with the cause kept.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::error::Error as _;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use session_cache::{Cache, CacheBackend, CacheError, CacheStore, Ttl};
use session_core::{Dict, Error, SaveMode, SessionConfig, SessionKey, SessionRecord, SessionStore};
use time::OffsetDateTime;

/// A cache whose server never answers, as a user's own client would report it.
#[derive(Debug)]
struct Unreachable;

impl Unreachable {
    fn fail<T>() -> Result<T, CacheError> {
        Err(CacheError::backend(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "memcached at 10.0.0.7:11211 did not answer within 200 ms",
        )))
    }
}

#[async_trait]
impl CacheBackend for Unreachable {
    async fn get(&self, _: &str) -> Result<Option<Bytes>, CacheError> {
        Self::fail()
    }
    async fn set(&self, _: &str, _: Bytes, _: Ttl) -> Result<(), CacheError> {
        Self::fail()
    }
    async fn add(&self, _: &str, _: Bytes, _: Ttl) -> Result<bool, CacheError> {
        Self::fail()
    }
    async fn replace(&self, _: &str, _: Bytes, _: Ttl) -> Result<bool, CacheError> {
        Self::fail()
    }
    async fn delete(&self, _: &str) -> Result<bool, CacheError> {
        Self::fail()
    }
    async fn exists(&self, _: &str) -> Result<bool, CacheError> {
        Self::fail()
    }
}

/// The `CacheError` inside a store error, with the I/O error the backend gave it.
fn backend_cause(error: &Error) -> &std::io::Error {
    let Error::Store(inner) = error else {
        panic!("a failing cache is a store failure, got {error:?}")
    };
    let cache_error = inner.downcast_ref::<CacheError>().unwrap();
    assert!(
        matches!(cache_error, CacheError::Backend(_)),
        "{cache_error:?}"
    );
    cache_error
        .source()
        .unwrap()
        .downcast_ref::<std::io::Error>()
        .unwrap()
}

#[tokio::test]
async fn a_custom_backends_failures_reach_the_caller_as_store_errors_with_their_cause() {
    let config = SessionConfig::new("django_tests_secret_key");
    let store = CacheStore::new(Cache::from_arc(Arc::new(Unreachable)), &config).unwrap();
    let key = SessionKey::generate().unwrap();
    let data: Dict = [("user", session_core::Value::from(1i64))]
        .into_iter()
        .collect();
    let record = SessionRecord {
        data: &data,
        expires_at: OffsetDateTime::now_utc() + time::Duration::hours(1),
        expiry_age: 3600,
    };
    let errors = [
        store.load(&key).await.unwrap_err(),
        store.exists(&key).await.unwrap_err(),
        store
            .save(&key, record, SaveMode::MustCreate)
            .await
            .unwrap_err(),
        store
            .save(&key, record, SaveMode::Update)
            .await
            .unwrap_err(),
        store.delete(&key).await.unwrap_err(),
    ];
    for error in &errors {
        let cause = backend_cause(error);
        assert_eq!(cause.kind(), std::io::ErrorKind::TimedOut);
        assert!(
            error.to_string().contains("did not answer within 200 ms"),
            "the message names the cause: {error}"
        );
    }
}

#[test]
fn a_backend_error_says_what_failed_and_what_to_check() {
    let error = CacheError::backend("connection reset by peer");
    assert_eq!(
        error.to_string(),
        "cache backend error: connection reset by peer; check that the cache is up and reachable"
    );
    assert!(matches!(Error::from(error), Error::Store(_)));
    // A configuration mistake stays one.
    assert!(matches!(
        Error::from(CacheError::Config("no such option".to_owned())),
        Error::Config(_)
    ));
}

/// A backend of one's own that does not implement compare-and-swap: the store declares none,
/// serves last-write-wins, and refuses to be built for `merge` or `reject` (never a silent
/// downgrade), with the way out in the message.
#[test]
fn a_backend_without_compare_and_swap_is_refused_for_merge_and_reject() {
    use session_core::ConcurrencyPolicy;
    let cache = Cache::new(Unreachable);
    let store = CacheStore::new(cache.clone(), &SessionConfig::new("k")).unwrap();
    assert!(!store.capabilities().compare_and_swap);
    for policy in [ConcurrencyPolicy::Merge, ConcurrencyPolicy::Reject] {
        let config = SessionConfig {
            concurrency: policy,
            ..SessionConfig::new("k")
        };
        match CacheStore::new(cache.clone(), &config) {
            Err(CacheError::Session(Error::Config(message))) => {
                assert!(message.contains("last_write_wins"), "{message}");
            }
            other => panic!("{policy}: expected a configuration error, got {other:?}"),
        }
    }
}
