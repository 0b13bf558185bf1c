//! Metrics and traces: what a session store is doing, through the [`metrics`](https://docs.rs/metrics) facade
//! (no exporter is forced on you: install the recorder you use, e.g.
//! `metrics-exporter-prometheus`) and [`tracing`] spans.
//!
//! | name | type | labels | counts |
//! |---|---|---|---|
//! | `djsession_store_operations_total` | counter | `store`, `operation` | store calls made by [`Session`](crate::Session) and [`maintenance`](crate::maintenance) |
//! | `djsession_store_errors_total` | counter | `store`, `operation` | those that failed with a backend error ([`Error::Store`]); the outcomes below are not errors |
//! | `djsession_store_operation_duration_seconds` | histogram | `store`, `operation` | their latency, in seconds |
//! | `djsession_sessions_created_total` | counter | `store` | sessions created under a fresh key |
//! | `djsession_sessions_cycled_total` | counter | `store` | key cycles (`cycle_key`, on login) |
//! | `djsession_sessions_flushed_total` | counter | `store` | flushes (logout) |
//! | `djsession_sessions_interrupted_total` | counter | `store` | saves refused because another request deleted the session (Django's `SessionInterrupted`) |
//! | `djsession_save_conflicts_total` | counter | `store`, `policy` | saves that lost to a concurrent one under `merge` or `reject` ([`Error::Conflict`]) |
//! | `djsession_merge_retries_total` | counter | `store` | re-reads of a session changed meanwhile, under `merge` |
//! | `djsession_signature_failures_total` | counter | | stored data or cookies whose signature did not verify (Django's `SuspiciousSession` log) |
//! | `djsession_fallback_key_hits_total` | counter | | signatures verified by a `SECRET_KEY_FALLBACKS` key: how far a key rotation has got (zero: the old key can go) |
//! | `djsession_expired_sessions_cleared_total` | counter | `store` | expired sessions removed by [`maintenance::clear_expired`](crate::maintenance::clear_expired) |
//! | `djsession_cached_db_cache_total` | counter | `result` = `hit`, `miss`, `failure` | the cached-db store's cache reads (`session-cached-db`) |
//!
//! `store` is the store's [`kind`](crate::SessionStore::kind) (`memory`, `postgres`, `mysql`,
//! `sqlite`, `redis`, `moka`, `memcached`, `cache` (another cache backend), `file`, `cookie`,
//! `cached-db`, `custom`, or a custom store's own name);
//! `operation` is `load`, `load_versioned`, `save`, `save_if_unchanged`, `delete` or
//! `clear_expired`; `policy` is `merge` or `reject`.
//!
//! Every store call also runs inside a `tracing` span named `session_store` at debug level, with
//! the fields `store`, `operation` and `key` (redacted: the first four characters), so a trace
//! shows which session a slow request waited on without logging a usable key.
//!
//! With no recorder installed, each metric costs a relaxed atomic load.

use std::future::Future;
use std::time::Instant;

use tracing::Instrument;

use crate::{Error, SessionKey};

/// The metric names, as the table above lists them.
pub mod names {
    /// Counter: store calls, by `store` and `operation`.
    pub const STORE_OPERATIONS: &str = "djsession_store_operations_total";
    /// Counter: store calls that failed with a backend error, by `store` and `operation`.
    pub const STORE_ERRORS: &str = "djsession_store_errors_total";
    /// Histogram: store call latency in seconds, by `store` and `operation`.
    pub const STORE_DURATION: &str = "djsession_store_operation_duration_seconds";
    /// Counter: sessions created, by `store`.
    pub const SESSIONS_CREATED: &str = "djsession_sessions_created_total";
    /// Counter: key cycles, by `store`.
    pub const SESSIONS_CYCLED: &str = "djsession_sessions_cycled_total";
    /// Counter: flushes, by `store`.
    pub const SESSIONS_FLUSHED: &str = "djsession_sessions_flushed_total";
    /// Counter: saves refused because the session was deleted meanwhile, by `store`.
    pub const SESSIONS_INTERRUPTED: &str = "djsession_sessions_interrupted_total";
    /// Counter: saves that lost to a concurrent one, by `store` and `policy`.
    pub const SAVE_CONFLICTS: &str = "djsession_save_conflicts_total";
    /// Counter: re-reads under the merge policy, by `store`.
    pub const MERGE_RETRIES: &str = "djsession_merge_retries_total";
    /// Counter: signatures that did not verify.
    pub const SIGNATURE_FAILURES: &str = "djsession_signature_failures_total";
    /// Counter: signatures verified by a fallback key (defined by `session-signing`).
    pub const FALLBACK_KEY_HITS: &str = session_signing::FALLBACK_KEY_HITS_METRIC;
    /// Counter: expired sessions removed, by `store`.
    pub const EXPIRED_CLEARED: &str = "djsession_expired_sessions_cleared_total";
    /// Counter: the cached-db store's cache reads, by `result` (`hit`, `miss`, `failure`).
    pub const CACHED_DB_CACHE: &str = "djsession_cached_db_cache_total";
}

/// Runs one store call inside its span, counting it and timing it.
pub(crate) async fn store_call<T>(
    store: &'static str,
    operation: &'static str,
    key: Option<&SessionKey>,
    call: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let span = tracing::debug_span!(
        "session_store",
        store,
        operation,
        key = key.map(|k| tracing::field::display(crate::key::Redacted(k.as_str())))
    );
    let started = Instant::now();
    // A span no subscriber wants is not entered: with `tracing`'s `log` feature on (actix-web
    // turns it on), entering and leaving one still asked `log` each time, about 400
    // instructions per request.
    let result = if span.is_disabled() {
        call.await
    } else {
        call.instrument(span).await
    };
    let failed = matches!(&result, Err(Error::Store(_)));
    match static_keys(store, operation) {
        Some(keys) => {
            ::metrics::with_recorder(|recorder| {
                recorder
                    .register_counter(&keys.operations, &METADATA)
                    .increment(1);
                recorder
                    .register_histogram(&keys.duration, &METADATA)
                    .record(Since(started));
                if failed {
                    recorder
                        .register_counter(&keys.errors, &METADATA)
                        .increment(1);
                }
            });
        }
        // A store kind this crate does not know (a custom store's own name): the same metrics
        // with labels built for the call.
        None => {
            let labels = [("store", store), ("operation", operation)];
            ::metrics::counter!(names::STORE_OPERATIONS, &labels).increment(1);
            ::metrics::histogram!(names::STORE_DURATION, &labels).record(Since(started));
            if failed {
                ::metrics::counter!(names::STORE_ERRORS, &labels).increment(1);
            }
        }
    }
    result
}

/// The seconds since a call started, read only by a histogram that records them: with no
/// recorder installed, the clock is not read a second time (two reads fewer per request).
struct Since(Instant);

impl ::metrics::IntoF64 for Since {
    fn into_f64(self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// What the `metrics` macros would attach to the store-call metrics.
static METADATA: ::metrics::Metadata<'static> =
    ::metrics::Metadata::new(module_path!(), ::metrics::Level::INFO, Some(module_path!()));

/// The three metric keys of one known store call.
struct StoreCallKeys {
    operations: ::metrics::Key,
    duration: ::metrics::Key,
    errors: ::metrics::Key,
}

impl StoreCallKeys {
    const fn of(labels: &'static [::metrics::Label; 2]) -> Self {
        StoreCallKeys {
            operations: ::metrics::Key::from_static_parts(names::STORE_OPERATIONS, labels),
            duration: ::metrics::Key::from_static_parts(names::STORE_DURATION, labels),
            errors: ::metrics::Key::from_static_parts(names::STORE_ERRORS, labels),
        }
    }
}

/// Where `item` is in `list`, at compile time (a name missing from it fails the build).
const fn position(list: &[&str], item: &str) -> usize {
    let mut i = 0;
    while i < list.len() {
        if same_bytes(list[i].as_bytes(), item.as_bytes()) {
            return i;
        }
        i += 1;
    }
    panic!("a store call label missing from its list")
}

/// `a == b`, which is not yet callable at compile time.
const fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Defines [`STORE_KINDS`], [`OPERATIONS`], [`STORE_CALL_LABELS`] and [`STORE_CALL_KEYS`] from
/// one list of each, so that the tables cannot disagree with the lists they are looked up by.
macro_rules! store_call_labels {
    (kinds: [$($kind:literal),* $(,)?], operations: $operations:tt) => {
        /// The store kinds of this workspace, in the order of [`STORE_CALL_LABELS`].
        const STORE_KINDS: [&str; [$($kind),*].len()] = [$($kind),*];

        /// The operations of [`store_call`], in the order of [`STORE_CALL_LABELS`]' rows.
        const OPERATIONS: [&str; store_call_labels!(@count $operations)] =
            store_call_labels!(@list $operations);

        /// The `store` and `operation` labels of every known store call, made at compile time:
        /// building them per call allocated a label list for each metric, four allocations per
        /// request.
        static STORE_CALL_LABELS: [[[::metrics::Label; 2]; OPERATIONS.len()]; STORE_KINDS.len()] =
            [$(store_call_labels!(@kind $kind, $operations)),*];

        /// The keys of every known store call's metrics, hashed at compile time: building them
        /// per call hashed their name and labels again each time (about 400 instructions per
        /// store call, with or without a recorder installed).
        static STORE_CALL_KEYS: [[StoreCallKeys; OPERATIONS.len()]; STORE_KINDS.len()] =
            [$(store_call_labels!(@kind_keys $kind, $operations)),*];
    };
    (@kind_keys $kind:literal, [$($operation:literal),* $(,)?]) => {
        [$(StoreCallKeys::of(
            &STORE_CALL_LABELS[position(&STORE_KINDS, $kind)][position(&OPERATIONS, $operation)],
        )),*]
    };
    (@count [$($operation:literal),* $(,)?]) => { [$($operation),*].len() };
    (@list [$($operation:literal),* $(,)?]) => { [$($operation),*] };
    (@kind $kind:literal, [$($operation:literal),* $(,)?]) => {
        [$([
            ::metrics::Label::from_static_parts("store", $kind),
            ::metrics::Label::from_static_parts("operation", $operation),
        ]),*]
    };
}

store_call_labels! {
    kinds: [
        "memory", "postgres", "mysql", "sqlite", "redis", "moka", "memcached", "cache", "file",
        "cookie", "cached-db", "custom",
    ],
    operations: ["load", "load_versioned", "save", "save_if_unchanged", "delete", "clear_expired"]
}

/// The prebuilt keys of a store call, if its store kind and operation are known.
fn static_keys(store: &str, operation: &str) -> Option<&'static StoreCallKeys> {
    let kind = STORE_KINDS.iter().position(|k| *k == store)?;
    let operation = OPERATIONS.iter().position(|o| *o == operation)?;
    STORE_CALL_KEYS.get(kind)?.get(operation)
}

/// Counts one event labelled with the store.
pub(crate) fn count(name: &'static str, store: &'static str) {
    ::metrics::counter!(name, "store" => store).increment(1);
}

#[cfg(test)]
pub(crate) mod testing {
    //! A recorder for one test: what the code under test recorded, by name and labels.

    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    /// Runs `f` with a fresh local recorder and returns its result and every counter recorded
    /// (`name{label=value,...}` → total) plus every histogram's sample count.
    pub fn recorded<T>(f: impl FnOnce() -> T) -> (T, Vec<(String, u64)>) {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let out = ::metrics::with_local_recorder(&recorder, f);
        let mut seen: Vec<(String, u64)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let mut labels: Vec<String> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                labels.sort();
                let name = format!("{}{{{}}}", key.name(), labels.join(","));
                let n = match value {
                    DebugValue::Counter(n) => n,
                    DebugValue::Histogram(samples) => samples.len() as u64,
                    DebugValue::Gauge(_) => 0,
                };
                (name, n)
            })
            .collect();
        seen.sort();
        (out, seen)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::testing::recorded;
    use super::{OPERATIONS, STORE_KINDS, names, static_keys, store_call};
    use crate::{ConcurrencyPolicy, Error, MemoryStore, Session, SessionCodec, SessionConfig};

    fn seen(all: &[(String, u64)], name: &str) -> u64 {
        all.iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, count)| *count)
    }

    #[test]
    fn a_store_call_runs_in_its_span_when_a_subscriber_wants_it() {
        #[derive(Clone, Default)]
        struct Output(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Output {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let key = crate::SessionKey::new("abcdefghijklmnop").unwrap();
        let call = || {
            rt.block_on(store_call("memory", "load", Some(&key), async {
                tracing::debug!("inside the call");
                Ok::<_, Error>(())
            }))
            .unwrap()
        };
        // No subscriber: the call runs all the same.
        call();
        let output = Output::default();
        let writer = output.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, call);
        let text = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
        let line = text
            .lines()
            .find(|line| line.contains("inside the call"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains("session_store{"), "{line}");
        assert!(line.contains("memory") && line.contains("load"), "{line}");
        assert!(
            line.contains("abcd…") && !line.contains("abcdefghijklmnop"),
            "{line}"
        );
    }

    #[test]
    fn a_store_calls_duration_is_the_time_it_took() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        ::metrics::with_local_recorder(&recorder, || {
            rt.block_on(store_call("memory", "load", None, async {
                tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                Ok::<_, Error>(())
            }))
        })
        .unwrap();
        let samples: Vec<f64> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(key, ..)| key.key().name() == names::STORE_DURATION)
            .flat_map(|(.., value)| match value {
                DebugValue::Histogram(samples) => samples.into_iter().map(|s| s.0).collect(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(samples.len(), 1, "{samples:?}");
        assert!((0.03..5.0).contains(&samples[0]), "{samples:?}");
    }

    #[test]
    fn a_request_cycle_counts_each_store_call_and_session_event() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let store = Arc::new(MemoryStore::new());
        let config = Arc::new(SessionConfig::new("k"));
        let ((), all) = recorded(|| {
            rt.block_on(async {
                let s = Session::new(store.clone(), config.clone(), None);
                s.insert("a", &1).await.unwrap();
                s.save().await.unwrap();
                let key = s.key().unwrap();
                let again = Session::new(store.clone(), config.clone(), Some(key.as_str()));
                again.get::<i64>("a").await.unwrap();
                again.cycle_key().await.unwrap();
                again.flush().await.unwrap();
            })
        });
        let ops = |op: &str| {
            seen(
                &all,
                &format!("djsession_store_operations_total{{operation={op},store=memory}}"),
            )
        };
        assert_eq!(ops("save"), 2, "{all:#?}");
        assert_eq!(ops("load"), 1);
        assert_eq!(ops("delete"), 2);
        assert_eq!(
            seen(
                &all,
                "djsession_store_operation_duration_seconds{operation=save,store=memory}"
            ),
            2
        );
        assert_eq!(
            seen(&all, "djsession_sessions_created_total{store=memory}"),
            2
        );
        assert_eq!(
            seen(&all, "djsession_sessions_cycled_total{store=memory}"),
            1
        );
        assert_eq!(
            seen(&all, "djsession_sessions_flushed_total{store=memory}"),
            1
        );
        assert!(
            all.iter()
                .all(|(n, _)| !n.starts_with("djsession_store_errors_total"))
        );
    }

    #[test]
    fn every_known_store_call_has_its_prebuilt_keys() {
        for kind in STORE_KINDS {
            for operation in OPERATIONS {
                let keys = static_keys(kind, operation).unwrap();
                for (key, name) in [
                    (&keys.operations, names::STORE_OPERATIONS),
                    (&keys.duration, names::STORE_DURATION),
                    (&keys.errors, names::STORE_ERRORS),
                ] {
                    let labels: Vec<(&str, &str)> =
                        key.labels().map(|l| (l.key(), l.value())).collect();
                    assert_eq!(key.name(), name);
                    assert_eq!(labels, [("store", kind), ("operation", operation)]);
                    // Hashed as a key built at run time would be.
                    let built = ::metrics::Key::from_parts(
                        name,
                        vec![
                            ::metrics::Label::new("store", kind),
                            ::metrics::Label::new("operation", operation),
                        ],
                    );
                    assert_eq!(key.get_hash(), built.get_hash());
                    assert_eq!(*key, built);
                }
            }
        }
        assert!(static_keys("my-store", "load").is_none());
        assert!(static_keys("memory", "scan").is_none());
    }

    /// A store kind with prebuilt labels and a custom store's own name are counted, timed and
    /// their failures counted alike.
    #[test]
    fn known_and_unknown_store_kinds_record_the_same_metrics() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ((), all) = recorded(|| {
            rt.block_on(async {
                for store in ["redis", "my-store"] {
                    let ok = store_call(store, "save", None, async { Ok::<_, Error>(()) }).await;
                    assert!(ok.is_ok());
                    let failed = store_call(store, "save", None, async {
                        Err::<(), _>(Error::Store("down".into()))
                    })
                    .await;
                    assert!(failed.is_err());
                }
            })
        });
        for store in ["redis", "my-store"] {
            let labels = format!("{{operation=save,store={store}}}");
            let count = |name: &str| seen(&all, &format!("{name}{labels}"));
            assert_eq!(count(names::STORE_OPERATIONS), 2, "{all:#?}");
            assert_eq!(count(names::STORE_DURATION), 2, "{all:#?}");
            assert_eq!(count(names::STORE_ERRORS), 1, "{all:#?}");
        }
    }

    #[test]
    fn conflicts_and_merge_retries_are_counted_by_policy() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let store = Arc::new(MemoryStore::new());
        let config = |policy| {
            Arc::new(SessionConfig {
                concurrency: policy,
                ..SessionConfig::new("k")
            })
        };
        let ((), all) = recorded(|| {
            rt.block_on(async {
                let seed = Session::new(store.clone(), config(ConcurrencyPolicy::Merge), None);
                seed.insert("n", &0).await.unwrap();
                seed.save().await.unwrap();
                let key = seed.key().unwrap();
                for policy in [ConcurrencyPolicy::Merge, ConcurrencyPolicy::Reject] {
                    let a = Session::new(store.clone(), config(policy), Some(key.as_str()));
                    let b = Session::new(store.clone(), config(policy), Some(key.as_str()));
                    a.insert("a", &1).await.unwrap();
                    b.insert("b", &1).await.unwrap();
                    a.save().await.unwrap();
                    let _ = b.save().await;
                }
            })
        });
        assert_eq!(seen(&all, "djsession_merge_retries_total{store=memory}"), 1);
        assert_eq!(
            seen(
                &all,
                "djsession_save_conflicts_total{policy=reject,store=memory}"
            ),
            1
        );
        assert_eq!(
            seen(
                &all,
                "djsession_save_conflicts_total{policy=merge,store=memory}"
            ),
            0
        );
    }

    #[test]
    fn a_forged_signature_is_counted() {
        let codec = SessionCodec::new(&SessionConfig::new("k")).unwrap();
        let (data, all) = recorded(|| codec.decode("e30:1rAbCd:forged"));
        assert!(data.is_empty());
        assert_eq!(seen(&all, "djsession_signature_failures_total{}"), 1);
    }
}
