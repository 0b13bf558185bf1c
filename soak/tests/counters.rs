//! The counters scenario on the memory store under each concurrency policy: tabs sharing a
//! session increment their own counters, and every acknowledged increment must be stored under
//! `merge` and `reject`. Under `last_write_wins` increments are lost by design; on a
//! current-thread runtime the tabs interleave the same way every time (each yields between its
//! read and its save, so all of a group read before any saves), which makes that loss certain
//! rather than a matter of timing. The scenario's own check is checked too: a store that claims
//! compare-and-swap but ignores the version must be caught losing increments.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use djsession_soak::counters::{CounterOptions, CounterOutcome, CounterReport, run_on};
use djsession_soak::soak_config;
use session_core::{
    ClearExpired, ConcurrencyPolicy, Dict, Error, MemoryStore, SaveMode, SessionKey, SessionRecord,
    SessionStore, SharedRecord, StoreCapabilities, Version, VersionedRecord,
};

fn options() -> CounterOptions {
    CounterOptions {
        groups: vec![2, 8],
        duration: Duration::from_millis(300),
        ..CounterOptions::default()
    }
}

async fn run(store: Arc<dyn SessionStore>, policy: ConcurrencyPolicy) -> CounterOutcome {
    let mut config = soak_config();
    config.concurrency = policy;
    let outcome = run_on(store, Arc::new(config), "memory", "memory", &options())
        .await
        .unwrap();
    println!("{outcome}");
    outcome
}

fn ran(outcome: CounterOutcome) -> CounterReport {
    match outcome {
        CounterOutcome::Ran(report) => {
            println!("{}", report.details());
            report
        }
        skipped => panic!("the scenario did not run: {skipped}"),
    }
}

async fn on_memory(policy: ConcurrencyPolicy) -> CounterReport {
    ran(run(Arc::new(MemoryStore::new()), policy).await)
}

#[tokio::test]
async fn last_write_wins_loses_increments_of_tabs_sharing_a_session() {
    let report = on_memory(ConcurrencyPolicy::LastWriteWins).await;
    assert!(report.acknowledged() > 0, "{report}");
    assert!(report.lost() > 0, "{report}");
    assert_eq!(report.phantom(), 0, "{}", report.details());
    // Losing them is Django's behaviour, not a failure of the run.
    assert!(report.passed(), "{}", report.details());
    assert_eq!(
        report.to_string(),
        format!(
            "counters memory last-write-wins: lost increments {} of {} acknowledged",
            report.lost(),
            report.acknowledged()
        )
    );
}

#[tokio::test]
async fn merge_loses_no_acknowledged_increment() {
    let report = on_memory(ConcurrencyPolicy::Merge).await;
    assert!(report.acknowledged() > 0, "{report}");
    assert_eq!(report.lost(), 0, "{}", report.details());
    assert!(report.passed(), "{}", report.details());
    assert_eq!(
        report.to_string(),
        format!(
            "counters memory merge: lost increments 0 of {} acknowledged",
            report.acknowledged()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_loses_no_acknowledged_increment_with_tabs_in_parallel() {
    let report = on_memory(ConcurrencyPolicy::Merge).await;
    assert!(report.acknowledged() > 0, "{report}");
    assert_eq!(report.lost(), 0, "{}", report.details());
    assert!(report.passed(), "{}", report.details());
}

#[tokio::test]
async fn reject_refuses_stale_saves_and_loses_no_acknowledged_increment() {
    let report = on_memory(ConcurrencyPolicy::Reject).await;
    assert!(report.acknowledged() > 0, "{report}");
    assert!(report.rejected() > 0, "{}", report.details());
    assert_eq!(report.lost(), 0, "{}", report.details());
    assert!(report.passed(), "{}", report.details());
    assert!(
        report
            .to_string()
            .starts_with("counters memory reject: lost increments 0 of "),
        "{report}"
    );
}

/// The memory store, declaring only what a store that overrides nothing declares, or (with
/// `blind`) claiming compare-and-swap while writing whatever the version.
#[derive(Debug, Default)]
struct Plain {
    inner: MemoryStore,
    blind: bool,
}

#[async_trait]
impl SessionStore for Plain {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
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
        self.inner.save(key, record, mode).await
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.inner.delete(key).await
    }

    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.inner.clear_expired().await
    }

    fn capabilities(&self) -> StoreCapabilities {
        if self.blind {
            StoreCapabilities::COMPARE_AND_SWAP
        } else {
            StoreCapabilities::BASIC
        }
    }

    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        self.inner.load_versioned(key).await
    }

    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        _expected: &Version,
    ) -> Result<Version, Error> {
        if !self.blind {
            return Err(Error::Config("no compare-and-swap".to_owned()));
        }
        // The fault: the version is never compared.
        self.inner
            .save_shared(key, record, SaveMode::Update)
            .await?;
        Ok(Version::from_counter(0))
    }
}

#[tokio::test]
async fn a_store_without_compare_and_swap_is_skipped_with_its_reason() {
    for policy in [ConcurrencyPolicy::Merge, ConcurrencyPolicy::Reject] {
        let outcome = run(Arc::new(Plain::default()), policy).await;
        assert!(
            matches!(&outcome, CounterOutcome::Skipped { .. }),
            "{outcome}"
        );
        assert!(!outcome.failed());
        assert!(
            outcome
                .to_string()
                .contains(": skipped: the store does not declare capabilities().compare_and_swap"),
            "{outcome}"
        );
    }
    // Last-write-wins needs nothing: it runs.
    let report = ran(run(Arc::new(Plain::default()), ConcurrencyPolicy::LastWriteWins).await);
    assert!(report.acknowledged() > 0, "{report}");
}

#[tokio::test]
async fn a_store_that_ignores_the_version_is_caught_losing_increments() {
    for policy in [ConcurrencyPolicy::Merge, ConcurrencyPolicy::Reject] {
        let store = Arc::new(Plain {
            blind: true,
            ..Plain::default()
        });
        let report = ran(run(store, policy).await);
        assert!(report.lost() > 0, "{}", report.details());
        assert!(!report.passed(), "{}", report.details());
    }
}
