//! The suite proves itself: every deliberately broken store below fails the behaviours that pin
//! what it breaks, and the correct store passes them all.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use async_trait::async_trait;
use session_conformance::{Outcome, Report, run_all};
use session_core::{
    ClearExpired, Dict, Error, MemoryStore, SaveMode, SessionKey, SessionRecord, SessionStore,
    SharedRecord, StoreCapabilities, Value, Version, VersionedRecord,
};

/// How a [`Broken`] store misbehaves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Must-create overwrites an existing record (an upsert).
    IgnoresMustCreate,
    /// Update of a missing record re-inserts it.
    UpsertsOnUpdate,
    /// Load returns records whatever their expiry.
    ReturnsExpired,
    /// Delete does nothing.
    ForgetsDeletes,
    /// `clear_expired` reports no removals.
    MiscountsClearExpired,
    /// Dict keys come back sorted (as a JSONB column would return them).
    SortsKeys,
    /// Integers beyond 64 bits come back as floats.
    RoundsBigIntegers,
    /// Loading an unknown key creates an empty record.
    CreatesOnLoad,
    /// `exists` always answers false.
    NeverExists,
    /// A compare-and-swap save writes whatever the stored version (declaring compare-and-swap
    /// and not doing it).
    IgnoresVersion,
    /// `is_unchanged` says yes to any version of a live record (an `exists` under another name).
    AlwaysUnchanged,
}

/// A `MemoryStore` with one fault.
#[derive(Debug)]
struct Broken {
    inner: MemoryStore,
    fault: Fault,
    // What the store would hold without expiry checks, for `ReturnsExpired`.
    shadow: std::sync::Mutex<std::collections::HashMap<SessionKey, Dict>>,
}

impl Broken {
    fn new(fault: Fault) -> Self {
        Broken {
            inner: MemoryStore::new(),
            fault,
            shadow: Default::default(),
        }
    }
}

fn sort_keys(value: &Value) -> Value {
    match value {
        Value::Dict(d) => {
            let mut pairs: Vec<_> = d.iter().map(|(k, v)| (k.clone(), sort_keys(v))).collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Dict(pairs.into_iter().collect())
        }
        Value::List(items) => Value::List(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

fn round_big_ints(value: &Value) -> Value {
    match value {
        Value::Int(i) if i.as_i64().is_none() => Value::Float(i.to_f64()),
        Value::Dict(d) => Value::Dict(
            d.iter()
                .map(|(k, v)| (k.clone(), round_big_ints(v)))
                .collect(),
        ),
        Value::List(items) => Value::List(items.iter().map(round_big_ints).collect()),
        other => other.clone(),
    }
}

#[async_trait]
impl SessionStore for Broken {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        let loaded = match self.fault {
            Fault::ReturnsExpired => self.shadow.lock().unwrap().get(key).cloned(),
            _ => self.inner.load(key).await?,
        };
        if loaded.is_none() && self.fault == Fault::CreatesOnLoad {
            let empty = Dict::new();
            let record = SessionRecord {
                data: &empty,
                expires_at: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
                expiry_age: 3600,
            };
            self.inner.save(key, record, SaveMode::MustCreate).await?;
        }
        Ok(loaded.map(|data| match self.fault {
            Fault::SortsKeys => match sort_keys(&Value::Dict(data)) {
                Value::Dict(d) => d,
                _ => unreachable!(),
            },
            Fault::RoundsBigIntegers => match round_big_ints(&Value::Dict(data)) {
                Value::Dict(d) => d,
                _ => unreachable!(),
            },
            _ => data,
        }))
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        if self.fault == Fault::NeverExists {
            return Ok(false);
        }
        self.inner.exists(key).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        let result = match (self.fault, mode) {
            (Fault::IgnoresMustCreate, SaveMode::MustCreate) => {
                // An upsert (`INSERT ... ON CONFLICT DO UPDATE`): every creator wins. A
                // check-then-write race would only be caught when the creators' checks and
                // writes happen to interleave, which a self-test cannot count on.
                self.inner.delete(key).await?;
                self.inner.save(key, record, SaveMode::MustCreate).await
            }
            (Fault::UpsertsOnUpdate, SaveMode::Update) => {
                self.inner.delete(key).await?;
                self.inner.save(key, record, SaveMode::MustCreate).await
            }
            _ => self.inner.save(key, record, mode).await,
        };
        if result.is_ok() {
            self.shadow
                .lock()
                .unwrap()
                .insert(key.clone(), record.data.clone());
        }
        result
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        if self.fault == Fault::ForgetsDeletes {
            return Ok(());
        }
        self.shadow.lock().unwrap().remove(key);
        self.inner.delete(key).await
    }

    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities::COMPARE_AND_SWAP
    }

    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        self.inner.load_versioned(key).await
    }

    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, Error> {
        if self.fault == Fault::IgnoresVersion {
            // Swaps against whatever is stored now: a plain overwrite under a conditional name.
            let Some(current) = self.inner.load_versioned(key).await? else {
                return Err(Error::SessionDeleted);
            };
            return self
                .inner
                .save_if_unchanged(key, record, &current.version)
                .await;
        }
        self.inner.save_if_unchanged(key, record, expected).await
    }

    async fn is_unchanged(&self, key: &SessionKey, expected: &Version) -> Result<bool, Error> {
        if self.fault == Fault::AlwaysUnchanged {
            return self.inner.exists(key).await;
        }
        self.inner.is_unchanged(key, expected).await
    }

    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        let cleared = self.inner.clear_expired().await?;
        if self.fault == Fault::MiscountsClearExpired {
            return Ok(ClearExpired::Removed(0));
        }
        Ok(cleared)
    }
}

async fn report(fault: Fault) -> Report {
    run_all(move || async move { Broken::new(fault) }).await
}

fn assert_fails(report: &Report, fault: Fault, expected: &[&str]) {
    let failed = report.failed();
    for name in expected {
        assert!(
            failed.contains(name),
            "{fault:?} should fail {name}; failed: {failed:?}"
        );
    }
}

#[tokio::test]
async fn the_correct_store_passes_every_behaviour() {
    let report = run_all(|| async { MemoryStore::new() }).await;
    assert_eq!(report.failed(), Vec::<&str>::new(), "{report:#?}");
    assert!(report.outcomes.len() >= 54);
    assert!(
        report
            .outcomes
            .iter()
            .all(|(_, outcome)| matches!(outcome, Ok(Outcome::Passed))),
        "a server-side store skips nothing: {report:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_ignores_must_create_fails_the_collision_behaviour() {
    let r = report(Fault::IgnoresMustCreate).await;
    assert_fails(
        &r,
        Fault::IgnoresMustCreate,
        &["must_create_is_atomic_under_key_collision"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_upserts_on_update_resurrects_sessions() {
    let r = report(Fault::UpsertsOnUpdate).await;
    assert_fails(
        &r,
        Fault::UpsertsOnUpdate,
        &[
            "session_save_does_not_resurrect_session_logged_out_in_other_context",
            "save_racing_delete_never_resurrects",
            "save_after_expiry_never_resurrects",
        ],
    );
}

#[tokio::test]
async fn a_store_that_returns_expired_records_fails_the_expiry_behaviours() {
    let r = report(Fault::ReturnsExpired).await;
    assert_fails(
        &r,
        Fault::ReturnsExpired,
        &[
            "actual_expiry",
            "expired_record_is_never_returned_at_the_boundary",
        ],
    );
}

#[tokio::test]
async fn a_store_that_forgets_deletes_fails_delete_flush_and_cycle() {
    let r = report(Fault::ForgetsDeletes).await;
    assert_fails(
        &r,
        Fault::ForgetsDeletes,
        &[
            "delete",
            "flush",
            "cycle",
            "save_racing_delete_never_resurrects",
        ],
    );
}

#[tokio::test]
async fn a_store_that_miscounts_clear_expired_fails_it() {
    let r = report(Fault::MiscountsClearExpired).await;
    assert_fails(
        &r,
        Fault::MiscountsClearExpired,
        &["clear_expired_removes_exactly_the_expired"],
    );
}

#[tokio::test]
async fn a_store_that_reorders_keys_fails_the_round_trip_and_cycle() {
    let r = report(Fault::SortsKeys).await;
    assert_fails(
        &r,
        Fault::SortsKeys,
        &["awkward_values_round_trip", "cycle"],
    );
}

#[tokio::test]
async fn a_store_that_rounds_big_integers_fails_the_round_trip() {
    let r = report(Fault::RoundsBigIntegers).await;
    assert_fails(&r, Fault::RoundsBigIntegers, &["awkward_values_round_trip"]);
}

#[tokio::test]
async fn a_store_that_creates_records_on_load_fails_load_does_not_create() {
    let r = report(Fault::CreatesOnLoad).await;
    assert_fails(
        &r,
        Fault::CreatesOnLoad,
        &["session_load_does_not_create_record"],
    );
}

#[tokio::test]
async fn a_store_whose_exists_lies_fails_save() {
    let r = report(Fault::NeverExists).await;
    assert_fails(&r, Fault::NeverExists, &["save"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_ignores_the_version_loses_concurrent_updates() {
    let r = report(Fault::IgnoresVersion).await;
    assert_fails(
        &r,
        Fault::IgnoresVersion,
        &[
            "a_stale_version_is_refused",
            "merge_keeps_concurrent_saves_of_disjoint_keys",
            "reject_lets_exactly_one_of_two_racing_saves_succeed",
            "concurrent_increments_of_different_keys_all_survive",
        ],
    );
}

#[tokio::test]
async fn a_store_whose_is_unchanged_only_checks_existence_fails_its_behaviour() {
    let r = report(Fault::AlwaysUnchanged).await;
    assert_fails(
        &r,
        Fault::AlwaysUnchanged,
        &["is_unchanged_follows_every_write"],
    );
}

#[tokio::test]
async fn capabilities_turn_inapplicable_behaviours_into_reported_skips() {
    use session_conformance::{Capabilities, Fixture};
    let report = session_conformance::run_all_with(|| async {
        Fixture::new(MemoryStore::new()).with_capabilities(Capabilities::signed_cookie())
    })
    .await;
    let skipped: Vec<_> = report
        .outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Ok(Outcome::Skipped(_))))
        .map(|(n, _)| *n)
        .collect();
    assert!(skipped.contains(&"cycle"), "{skipped:?}");
    assert!(skipped.contains(&"session_load_does_not_create_record"));
    // The memory store does enforce expiry, so claiming it does not is caught.
    assert!(report.failed().contains(&"actual_expiry"));
    // And claiming it cannot compare-and-swap is caught too.
    assert!(
        report
            .failed()
            .contains(&"declared_compare_and_swap_is_what_the_store_does")
    );
}

#[tokio::test]
async fn an_unconfigured_service_is_reported_as_skipped() {
    use session_conformance::Fixture;
    let report =
        session_conformance::run_all_with(|| async { Fixture::skip("NO_SUCH_URL is not set") })
            .await;
    if session_conformance::services::required() {
        assert_eq!(report.failed().len(), report.outcomes.len());
    } else {
        assert!(report.outcomes.iter().all(
            |(_, o)| matches!(o, Ok(Outcome::Skipped(reason)) if reason.contains("NO_SUCH_URL"))
        ));
    }
}
