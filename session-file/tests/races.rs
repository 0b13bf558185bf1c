//! Concurrent writers on one session file: updates racing deletes, updates racing updates,
//! creators racing creators, readers racing writers.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{STRATEGIES, TempStore, noise};
use session_core::{Dict, Error, SaveMode, SessionKey, SessionRecord, SessionStore, Value};
use session_file::WriteStrategy;
use time::OffsetDateTime;
use tokio::sync::Barrier;

fn record(data: &Dict) -> SessionRecord<'_> {
    SessionRecord {
        data,
        expires_at: OffsetDateTime::now_utc() + time::Duration::hours(1),
        expiry_age: 3600,
    }
}

fn version(n: i64) -> Dict {
    let mut data = Dict::new();
    data.insert("n".to_owned(), Value::from(n));
    data.insert("noise".to_owned(), Value::from(noise(2000, n as u64)));
    data
}

fn random_below(limit: u64) -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(limit);
    hasher.finish() % limit.max(1)
}

async fn store(strategy: WriteStrategy) -> Arc<TempStore> {
    Arc::new(TempStore::new(&session_conformance::config(), Some(strategy)).await)
}

/// With `renameat2(RENAME_EXCHANGE)`, an update racing a delete of the same session never brings it
/// back, over hundreds of rounds: the delete is released at a random moment within the update's
/// duration, so both orders (and everything in between) occur.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn update_racing_delete_never_resurrects_with_rename_exchange() {
    let store = store(WriteStrategy::RenameExchange).await;
    // How long one update takes here, to spread the deletes over it.
    let key = SessionKey::generate().unwrap();
    store
        .save(&key, record(&version(0)), SaveMode::MustCreate)
        .await
        .unwrap();
    let started = Instant::now();
    for n in 1..=10 {
        store
            .save(&key, record(&version(n)), SaveMode::Update)
            .await
            .unwrap();
    }
    let update_micros = (started.elapsed().as_micros() / 10).max(1) as u64;
    let (mut updated_first, mut deleted_first) = (0, 0);
    for round in 0..300 {
        let key = SessionKey::generate().unwrap();
        store
            .save(&key, record(&version(round)), SaveMode::MustCreate)
            .await
            .unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let updater = {
            let (store, key, barrier) = (store.clone(), key.clone(), barrier.clone());
            tokio::spawn(async move {
                let data = version(round + 1000);
                barrier.wait().await;
                store.save(&key, record(&data), SaveMode::Update).await
            })
        };
        let deleter = {
            let (store, key, barrier) = (store.clone(), key.clone(), barrier.clone());
            let delay = Duration::from_micros(random_below(update_micros * 3 / 2));
            tokio::spawn(async move {
                barrier.wait().await;
                tokio::task::spawn_blocking(move || std::thread::sleep(delay))
                    .await
                    .unwrap();
                store.delete(&key).await
            })
        };
        deleter.await.unwrap().unwrap();
        match updater.await.unwrap() {
            Ok(_) => updated_first += 1,
            Err(Error::SessionDeleted) => deleted_first += 1,
            Err(other) => panic!("round {round}: {other}"),
        }
        assert_eq!(
            store.load(&key).await.unwrap(),
            None,
            "round {round}: the deleted session came back"
        );
        assert!(!store.exists(&key).await.unwrap());
    }
    println!(
        "update ({update_micros} µs) landed first {updated_first} times, \
         delete first {deleted_first} times"
    );
    assert!(
        updated_first > 0 && deleted_first > 0,
        "both orders must occur to test anything"
    );
}

/// Many concurrent updates of one session: every one succeeds, the file ends as exactly one of
/// the versions written, readers only ever see complete versions, and no temporary file is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_and_reads_see_only_complete_versions() {
    for strategy in STRATEGIES {
        let store = store(strategy).await;
        let key = SessionKey::generate().unwrap();
        store
            .save(&key, record(&version(0)), SaveMode::MustCreate)
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for writer in 1..=8i64 {
            let (store, key) = (store.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    let data = version(writer * 100 + i);
                    store
                        .save(&key, record(&data), SaveMode::Update)
                        .await
                        .unwrap();
                }
            }));
        }
        for _ in 0..4 {
            let (store, key) = (store.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..40 {
                    let data = store.load(&key).await.unwrap().unwrap();
                    let n = data.get("n").and_then(Value::as_i64).unwrap();
                    assert!(session_core::value::dicts_identical(&data, &version(n)));
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let last = store.load(&key).await.unwrap().unwrap();
        let n = last.get("n").and_then(Value::as_i64).unwrap();
        assert!(
            n % 100 == 9 && (1..=8).contains(&(n / 100)),
            "{strategy:?}: {n}"
        );
        let names: Vec<_> = std::fs::read_dir(store.dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{strategy:?}: leftovers");
    }
}
