//! A short soak of every store (a few seconds each), and proof that the checks catch what they
//! claim to: stores broken on purpose (dropping updates, serving another session's data,
//! ignoring deletes, merging writes) must each produce the violation named after their fault.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use djsession_soak::report::ViolationKind;
use djsession_soak::{Report, SoakOptions, StoreKind, StoreOptions, engine, soak, soak_config};
use session_conformance::services;
use session_core::{
    ClearExpired, Dict, Error, MemoryStore, SaveMode, SessionKey, SessionRecord, SessionStore,
};

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn options(duration: Duration, pairs: usize) -> SoakOptions {
    SoakOptions {
        users: 8,
        pairs,
        duration,
        seed: seed(),
        ..SoakOptions::default()
    }
}

/// Soaks `kind` for a few seconds (skipping a server store whose URL is not set) and checks that
/// it kept every promise, and that the run really exercised every kind of operation.
async fn soak_for_a_few_seconds(kind: StoreKind, test: &str) {
    soak_with_pairs(kind, 2, test).await;
}

/// [`soak_for_a_few_seconds`] with `pairs` pairs of tabs sharing sessions (0: private sessions
/// only).
async fn soak_with_pairs(kind: StoreKind, pairs: usize, test: &str) {
    for variable in kind.url_variables() {
        if services::url_or_skip(variable, test).is_none() {
            return;
        }
    }
    let run = soak(
        kind,
        soak_config(),
        StoreOptions::default(),
        options(Duration::from_secs(3), pairs),
        None,
    )
    .await
    .unwrap();
    let report = run.report;
    println!("{report}");
    assert!(report.passed(), "{report}");
    let shared: &[&str] = if pairs > 0 {
        &["shared-write", "shared-read"]
    } else {
        &[]
    };
    for kind in ["create", "read", "modify", "cycle", "flush", "check"]
        .iter()
        .chain(shared)
    {
        assert!(report.ops[kind] > 0, "no {kind} operation ran: {report}");
    }
    assert!(report.final_check.live > 0, "{report}");
    assert!(report.final_check.absent > 0, "{report}");
    assert_eq!(report.final_check.shared > 0, pairs > 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_loses_and_crosses_nothing_under_load() {
    soak_for_a_few_seconds(
        StoreKind::Memory,
        "memory_store_loses_and_crosses_nothing_under_load",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_cache_store_loses_and_crosses_nothing_under_load() {
    soak_for_a_few_seconds(
        StoreKind::CacheMemory,
        "in_process_cache_store_loses_and_crosses_nothing_under_load",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_loses_and_crosses_nothing_under_load() {
    soak_for_a_few_seconds(
        StoreKind::Sqlite,
        "sqlite_store_loses_and_crosses_nothing_under_load",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_loses_and_crosses_nothing_under_load() {
    soak_for_a_few_seconds(
        StoreKind::File,
        "file_store_loses_and_crosses_nothing_under_load",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_loses_and_crosses_nothing_under_load() {
    soak_for_a_few_seconds(
        StoreKind::Postgres,
        "postgres_store_loses_and_crosses_nothing_under_load",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_store_loses_and_crosses_nothing_under_load() {
    soak_for_a_few_seconds(
        StoreKind::Mysql,
        "mysql_store_loses_and_crosses_nothing_under_load",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_db_over_redis_and_postgres_loses_and_crosses_nothing_under_load() {
    soak_for_a_few_seconds(
        StoreKind::CachedDb,
        "cached_db_over_redis_and_postgres_loses_and_crosses_nothing_under_load",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_db_over_memory_and_sqlite_loses_and_crosses_nothing_under_load() {
    soak_for_a_few_seconds(
        StoreKind::CachedDbLocal,
        "cached_db_over_memory_and_sqlite_loses_and_crosses_nothing_under_load",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_loses_and_crosses_nothing_under_load() {
    soak_for_a_few_seconds(
        StoreKind::Redis,
        "redis_store_loses_and_crosses_nothing_under_load",
    )
    .await;
}

/// A store that misbehaves in one way, every `every`-th time it gets the chance.
#[derive(Debug)]
struct Broken {
    inner: MemoryStore,
    fault: Fault,
    every: u64,
    count: AtomicU64,
    last_loaded: std::sync::Mutex<Option<SessionKey>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// An update reports success but writes nothing.
    DropsUpdates,
    /// A load returns the data of the previously loaded (other) key.
    ServesAnotherSession,
    /// A delete reports success but deletes nothing.
    IgnoresDeletes,
    /// An update keeps the stored keys the new data lacks (a field-by-field merge).
    MergesWrites,
    /// An update of a deleted record inserts it again.
    UpdatesRecreate,
}

impl Broken {
    fn new(fault: Fault, every: u64) -> Self {
        Broken {
            inner: MemoryStore::new(),
            fault,
            every,
            count: AtomicU64::new(0),
            last_loaded: std::sync::Mutex::new(None),
        }
    }

    fn strikes(&self, fault: Fault) -> bool {
        self.fault == fault
            && self
                .count
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(self.every)
    }
}

#[async_trait]
impl SessionStore for Broken {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        tokio::task::yield_now().await;
        let previous = self.last_loaded.lock().unwrap().replace(key.clone());
        if let Some(previous) = previous
            && previous != *key
            && self.strikes(Fault::ServesAnotherSession)
            && let Some(theirs) = self.inner.load(&previous).await?
        {
            return Ok(Some(theirs));
        }
        self.inner.load(key).await
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.inner.exists(key).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        // Widen the windows in which concurrent requests interleave.
        tokio::task::yield_now().await;
        if mode == SaveMode::Update {
            let existing = self.inner.load(key).await?;
            if existing.is_some() && self.strikes(Fault::DropsUpdates) {
                return Ok(key.clone());
            }
            if let Some(existing) = &existing
                && self.strikes(Fault::MergesWrites)
            {
                let mut merged = existing.clone();
                merged.extend(record.data.iter().map(|(k, v)| (k.clone(), v.clone())));
                let record = SessionRecord {
                    data: &merged,
                    ..record
                };
                return self.inner.save(key, record, mode).await;
            }
            if existing.is_none() && self.strikes(Fault::UpdatesRecreate) {
                return self.inner.save(key, record, SaveMode::MustCreate).await;
            }
        }
        self.inner.save(key, record, mode).await
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        tokio::task::yield_now().await;
        if self.strikes(Fault::IgnoresDeletes) {
            return Ok(());
        }
        self.inner.delete(key).await
    }

    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.inner.clear_expired().await
    }
}

async fn soak_broken(fault: Fault, every: u64) -> Report {
    let store = Arc::new(Broken::new(fault, every));
    let report = engine::run(
        store,
        Arc::new(soak_config()),
        format!("broken: {fault:?}"),
        SoakOptions {
            users: 6,
            pairs: 3,
            duration: Duration::from_millis(1500),
            seed: seed(),
            ..SoakOptions::default()
        },
    )
    .await
    .unwrap();
    println!("{report}");
    assert!(!report.passed(), "a broken store passed: {report}");
    report
}

fn found(report: &Report, kind: ViolationKind) -> bool {
    report.violation_samples.iter().any(|v| v.kind == kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_drops_updates_is_caught_losing_them() {
    let report = soak_broken(Fault::DropsUpdates, 50).await;
    assert!(found(&report, ViolationKind::LostUpdate), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_serves_another_session_is_caught_crossing_them() {
    let report = soak_broken(Fault::ServesAnotherSession, 50).await;
    assert!(found(&report, ViolationKind::CrossedUpdate), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_ignores_deletes_is_caught_resurrecting_sessions() {
    let report = soak_broken(Fault::IgnoresDeletes, 5).await;
    assert!(found(&report, ViolationKind::Resurrected), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_merges_writes_is_caught_mixing_them() {
    let report = soak_broken(Fault::MergesWrites, 3).await;
    assert!(
        found(&report, ViolationKind::Corrupted) || found(&report, ViolationKind::MixedWrite),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_updates_recreate_deleted_sessions_is_caught() {
    let report = soak_broken(Fault::UpdatesRecreate, 1).await;
    assert!(
        found(&report, ViolationKind::Resurrected)
            || found(&report, ViolationKind::WrongSaveOutcome),
        "{report}"
    );
}
