//! The in-process cache: bounded, per-entry lifetimes, atomic conditional writes, shared bytes.
#![cfg(feature = "memory")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use bytes::Bytes;
use session_cache::{CacheBackend, MemoryBound, MemoryCache, Ttl};

fn ttl(seconds: i64) -> Ttl {
    Ttl::from_age(seconds).unwrap()
}

#[tokio::test]
async fn bounded_by_entries_evicts_beyond_the_bound() {
    let cache = MemoryCache::bounded(MemoryBound::Entries(100));
    for i in 0..1000 {
        cache
            .set(&format!("k{i}"), Bytes::from_static(b"v"), ttl(600))
            .await
            .unwrap();
    }
    cache.run_pending_tasks().await;
    assert!(cache.entry_count() <= 100, "{}", cache.entry_count());
    assert!(cache.entry_count() > 0);
}

#[tokio::test]
async fn bounded_by_bytes_counts_keys_values_and_overhead() {
    const LIMIT: u64 = 64 * 1024;
    let cache = MemoryCache::bounded(MemoryBound::Bytes(LIMIT));
    let value = Bytes::from(vec![b'x'; 1024]);
    for i in 0..1000 {
        cache
            .set(&format!("key{i:04}"), value.clone(), ttl(600))
            .await
            .unwrap();
    }
    cache.run_pending_tasks().await;
    assert!(cache.weighted_size() <= LIMIT, "{}", cache.weighted_size());
    let per_entry = 7 + 1024 + MemoryCache::ENTRY_OVERHEAD;
    assert!(cache.entry_count() <= LIMIT / per_entry);
    assert!(cache.entry_count() > 0);
    assert_eq!(cache.bound(), MemoryBound::Bytes(LIMIT));
}

#[tokio::test]
async fn default_bound_is_64_mib() {
    assert_eq!(
        MemoryCache::new().bound(),
        MemoryBound::Bytes(64 * 1024 * 1024)
    );
}

#[tokio::test]
async fn entries_expire_after_their_own_lifetime() {
    let cache = MemoryCache::new();
    cache.set("short", "a".into(), ttl(1)).await.unwrap();
    cache.set("long", "b".into(), ttl(600)).await.unwrap();
    cache.set("renewed", "c".into(), ttl(600)).await.unwrap();
    // A replace gives the entry the new lifetime.
    assert!(cache.replace("renewed", "d".into(), ttl(1)).await.unwrap());
    assert!(cache.exists("short").await.unwrap());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for gone in ["short", "renewed"] {
        assert_eq!(cache.get(gone).await.unwrap(), None, "{gone}");
        assert!(!cache.exists(gone).await.unwrap(), "{gone}");
        assert!(!cache.replace(gone, "x".into(), ttl(60)).await.unwrap());
        assert!(!cache.delete(gone).await.unwrap());
    }
    assert_eq!(cache.get("long").await.unwrap().as_deref(), Some(&b"b"[..]));
    // An expired entry does not block an add.
    assert!(cache.add("short", "new".into(), ttl(60)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_adds_have_exactly_one_winner() {
    for round in 0..50 {
        let cache = MemoryCache::new();
        let key = format!("k{round}");
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let cache = cache.clone();
                let key = key.clone();
                tokio::spawn(async move {
                    let won = cache.add(&key, format!("{i}").into(), ttl(60)).await;
                    (i, won.unwrap())
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (i, won) = task.await.unwrap();
            if won {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let stored = cache.get(&key).await.unwrap().unwrap();
        assert_eq!(stored, Bytes::from(format!("{}", winners[0])));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replace_racing_delete_never_resurrects() {
    let cache = MemoryCache::new();
    for round in 0..200 {
        let key = format!("k{round}");
        cache.set(&key, "old".into(), ttl(60)).await.unwrap();
        let replacer = {
            let cache = cache.clone();
            let key = key.clone();
            tokio::spawn(async move { cache.replace(&key, "new".into(), ttl(60)).await })
        };
        let deleter = {
            let cache = cache.clone();
            let key = key.clone();
            tokio::spawn(async move { cache.delete(&key).await })
        };
        replacer.await.unwrap().unwrap();
        assert!(
            deleter.await.unwrap().unwrap(),
            "the delete found the entry"
        );
        assert_eq!(cache.get(&key).await.unwrap(), None, "round {round}");
    }
}

#[tokio::test]
async fn values_are_shared_bytes_not_copies() {
    let cache = MemoryCache::new();
    let value = Bytes::from(vec![7u8; 4096]);
    cache.set("k", value.clone(), ttl(60)).await.unwrap();
    let first = cache.get("k").await.unwrap().unwrap();
    let second = cache.get("k").await.unwrap().unwrap();
    assert_eq!(first.as_ptr(), value.as_ptr());
    assert_eq!(second.as_ptr(), value.as_ptr());
}

#[test]
fn ttl_from_age_refuses_non_positive_and_clamps_huge_ages() {
    assert_eq!(Ttl::from_age(0), None);
    assert_eq!(Ttl::from_age(-1), None);
    assert_eq!(Ttl::from_age(i64::MIN), None);
    assert_eq!(Ttl::from_age(1).unwrap().seconds(), 1);
    assert_eq!(Ttl::from_age(1_209_600).unwrap().seconds(), 1_209_600);
    assert_eq!(Ttl::from_age(i64::MAX), Some(Ttl::MAX));
    assert_eq!(Ttl::MAX.as_duration(), Duration::from_secs(315_360_000_000));
}
