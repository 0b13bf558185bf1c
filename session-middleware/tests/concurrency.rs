//! The concurrency guarantee: two requests on one session cookie at once, through the layer,
//! against `MemoryStore`. Each request works on its own snapshot; saves replace the whole record
//! (last writer wins, never a mix); a session deleted by one request is never resurrected by the
//! other, whose save is refused with a 400 instead. Under the merge policy overlapping saves keep
//! both requests' keys; under reject the later one is a 409.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use common::*;
use http::{Response, StatusCode};
use session_core::value::dicts_identical;
use session_core::{
    ConcurrencyPolicy, Dict, MemoryStore, Session, SessionConfig, SessionKey, SessionStore, Value,
};
use session_middleware::{SessionFailure, SessionLayer};
use tokio::sync::{Barrier, Notify};

const ROUNDS: u32 = 300;
const KEYS_PER_WRITER: usize = 8;

/// What a writer request leaves in its session: every key tagged with the writer and the round.
fn complete_data(writer: &str, round: u32) -> Dict {
    let mut data = Dict::new();
    data.insert("writer".to_owned(), Value::from(writer));
    data.insert("round".to_owned(), Value::from(i64::from(round)));
    for i in 0..KEYS_PER_WRITER {
        data.insert(
            format!("k{i}"),
            Value::from(format!("{writer}-{round}-{i}")),
        );
    }
    data
}

/// A pseudo-random number of yields, so the two requests interleave differently each round.
async fn jitter(seed: u32) {
    for _ in 0..(seed.wrapping_mul(2_654_435_761) >> 29) {
        tokio::task::yield_now().await;
    }
}

/// A handler that reads the session, then replaces its whole content with `writer`'s data, one key
/// at a time with yields in between (so a shared in-memory session would show interleaving).
async fn write_everything(session: Session, writer: &'static str, round: u32) {
    let before = session.keys().await.unwrap();
    assert!(!before.is_empty() || session.key().is_none());
    jitter(round).await;
    session.clear();
    for (k, v) in complete_data(writer, round) {
        session.insert_value(k, v).await.unwrap();
        tokio::task::yield_now().await;
    }
}

fn writer_layer(store: Arc<MemoryStore>) -> SessionLayer {
    SessionLayer::new(store, &config()).unwrap()
}

async fn stored(store: &MemoryStore, key: &str) -> Option<Dict> {
    store.load(&SessionKey::new(key).unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_leave_exactly_one_requests_complete_data() {
    let store = Arc::new(MemoryStore::new());
    let layer = writer_layer(store.clone());
    let mut wins = [0u32; 2];
    for round in 0..ROUNDS {
        let key = existing_session(store.clone(), &[("initial", "data")]).await;
        let cookie = format!("sessionid={key}");
        let a = app(&layer, move |s| async move {
            write_everything(s, "A", round).await;
            ok()
        });
        let b = app(&layer, move |s| async move {
            write_everything(s, "B", round.wrapping_add(7)).await;
            ok()
        });
        let (ca, cb) = (cookie.clone(), cookie.clone());
        let ra = tokio::spawn(async move { send(&a, Some(&ca)).await });
        let rb = tokio::spawn(async move { send(&b, Some(&cb)).await });
        let (ra, rb) = (ra.await.unwrap(), rb.await.unwrap());
        for response in [&ra, &rb] {
            assert_eq!(response.status(), StatusCode::OK, "round {round}");
            assert_eq!(cookie_value(&the_set_cookie(response)), key);
        }
        let record = stored(&store, &key).await.unwrap();
        let a_data = complete_data("A", round);
        let b_data = complete_data("B", round.wrapping_add(7));
        match (
            dicts_identical(&record, &a_data),
            dicts_identical(&record, &b_data),
        ) {
            (true, false) => wins[0] += 1,
            (false, true) => wins[1] += 1,
            _ => panic!("round {round}: the record is not one request's complete data: {record:?}"),
        }
    }
    println!("last writer: A {} times, B {} times", wins[0], wins[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_session_is_never_resurrected_by_a_concurrent_writer() {
    let store = Arc::new(MemoryStore::new());
    let layer = writer_layer(store.clone());
    let (mut saved_before_flush, mut interrupted, mut fresh_session) = (0u32, 0u32, 0u32);
    for round in 0..ROUNDS {
        let key = existing_session(store.clone(), &[("initial", "data")]).await;
        let cookie = format!("sessionid={key}");
        let logout = app(&layer, move |s| async move {
            jitter(round.wrapping_add(3)).await;
            s.flush().await.unwrap();
            ok()
        });
        let writer = app(&layer, move |s| async move {
            write_everything(s, "B", round).await;
            ok()
        });
        let (ca, cb) = (cookie.clone(), cookie.clone());
        let ra = tokio::spawn(async move { send(&logout, Some(&ca)).await });
        let rb = tokio::spawn(async move { send(&writer, Some(&cb)).await });
        let (ra, rb) = (ra.await.unwrap(), rb.await.unwrap());

        // The logout always deletes the cookie, and the old session is gone for good.
        assert!(the_set_cookie(&ra).starts_with("Set-Cookie: sessionid=\"\";"));
        assert_eq!(
            stored(&store, &key).await,
            None,
            "round {round}: resurrected"
        );

        match rb.status() {
            // The writer was refused: its save would have brought the session back.
            StatusCode::BAD_REQUEST => {
                assert!(set_cookies(&rb).is_empty());
                interrupted += 1;
            }
            StatusCode::OK => {
                let new_key = cookie_value(&the_set_cookie(&rb));
                if new_key == key {
                    // It saved before the logout, which then deleted the record.
                    saved_before_flush += 1;
                } else {
                    // It loaded after the logout: a brand-new session holding only its own data.
                    let record = stored(&store, &new_key).await.unwrap();
                    assert!(
                        dicts_identical(&record, &complete_data("B", round)),
                        "{record:?}"
                    );
                    fresh_session += 1;
                }
            }
            other => panic!("round {round}: unexpected status {other}"),
        }
    }
    println!(
        "writer saved before the flush {saved_before_flush}, refused {interrupted}, \
         started afresh {fresh_session}"
    );
}

#[tokio::test]
async fn a_save_after_a_concurrent_flush_is_refused_with_400() {
    let store = Arc::new(MemoryStore::new());
    let layer = writer_layer(store.clone());
    let key = existing_session(store.clone(), &[("initial", "data")]).await;
    let cookie = format!("sessionid={key}");
    let loaded = Arc::new(Notify::new());
    let go = Arc::new(Notify::new());

    let (l, g) = (loaded.clone(), go.clone());
    let writer = app(&layer, move |s| {
        let (l, g) = (l.clone(), g.clone());
        async move {
            assert_eq!(
                s.get::<String>("initial").await.unwrap().as_deref(),
                Some("data")
            );
            s.insert("more", "data").await.unwrap();
            l.notify_one();
            g.notified().await;
            ok()
        }
    });
    let c = cookie.clone();
    let pending = tokio::spawn(async move { send(&writer, Some(&c)).await });
    loaded.notified().await;

    let logout = app(&layer, |s| async move {
        s.flush().await.unwrap();
        ok()
    });
    let response = send(&logout, Some(&cookie)).await;
    assert!(the_set_cookie(&response).starts_with("Set-Cookie: sessionid=\"\";"));
    go.notify_one();

    let response = pending.await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookies(&response).is_empty());
    assert_eq!(stored(&store, &key).await, None);
    assert!(store.is_empty());
}

/// Two requests on one cookie that both load the session, then each set a key of their own; the
/// second saves after the first. Returns both responses and the stored record.
async fn overlapping_saves(
    policy: ConcurrencyPolicy,
) -> (Response<Body>, Response<Body>, Option<Dict>) {
    let store = Arc::new(MemoryStore::new());
    let config = SessionConfig {
        concurrency: policy,
        ..config()
    };
    let layer = SessionLayer::new(store.clone(), &config).unwrap();
    let key = existing_session(store.clone(), &[("initial", "data")]).await;
    let cookie = format!("sessionid={key}");
    // Both requests have loaded the record before either saves.
    let both_loaded = Arc::new(Barrier::new(2));
    let first_done = Arc::new(Notify::new());

    let make = |writer: &'static str, wait_for_first: bool| {
        let (barrier, first_done) = (both_loaded.clone(), first_done.clone());
        app(&layer, move |s| {
            let (barrier, first_done) = (barrier.clone(), first_done.clone());
            async move {
                s.keys().await.unwrap();
                barrier.wait().await;
                s.insert(writer, writer).await.unwrap();
                if wait_for_first {
                    first_done.notified().await;
                }
                ok()
            }
        })
    };
    let (first, second) = (make("first", false), make("second", true));
    let c = cookie.clone();
    let pending = tokio::spawn(async move { send(&second, Some(&c)).await });
    let first = send(&first, Some(&cookie)).await;
    first_done.notify_one();
    let second = pending.await.unwrap();
    let record = stored(&store, &key).await;
    (first, second, record)
}

fn keys_of(record: &Dict) -> Vec<&str> {
    record.keys().map(|k| k.as_str()).collect()
}

#[tokio::test]
async fn of_two_overlapping_saves_the_later_replaces_the_whole_record() {
    let (first, second, record) = overlapping_saves(ConcurrencyPolicy::LastWriteWins).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);
    // Last writer wins, whole: the first request's change is replaced, not merged.
    assert_eq!(keys_of(&record.unwrap()), ["initial", "second"]);
}

#[tokio::test]
async fn under_merge_both_overlapping_saves_keep_their_keys() {
    let (first, second, record) = overlapping_saves(ConcurrencyPolicy::Merge).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(set_cookies(&second).len(), 1);
    assert_eq!(keys_of(&record.unwrap()), ["initial", "first", "second"]);
}

#[tokio::test]
async fn under_reject_the_later_overlapping_save_is_a_409_without_a_cookie() {
    let (first, second, record) = overlapping_saves(ConcurrencyPolicy::Reject).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::CONFLICT);
    assert!(set_cookies(&second).is_empty());
    let failure = second.extensions().get::<SessionFailure>().unwrap();
    assert!(matches!(
        failure.error(),
        session_middleware::Error::SessionConflict
    ));
    assert_eq!(
        body_text(second).await,
        session_middleware::SESSION_CONFLICT_MESSAGE
    );
    assert_eq!(keys_of(&record.unwrap()), ["initial", "first"]);
}

#[tokio::test]
async fn a_policy_the_store_cannot_serve_is_refused_when_the_layer_is_built() {
    #[derive(Debug)]
    struct NoCompareAndSwap(MemoryStore);

    #[async_trait::async_trait]
    impl SessionStore for NoCompareAndSwap {
        async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, session_core::Error> {
            self.0.load(key).await
        }
        async fn exists(&self, key: &SessionKey) -> Result<bool, session_core::Error> {
            self.0.exists(key).await
        }
        async fn save(
            &self,
            key: &SessionKey,
            record: session_core::SessionRecord<'_>,
            mode: session_core::SaveMode,
        ) -> Result<SessionKey, session_core::Error> {
            self.0.save(key, record, mode).await
        }
        async fn delete(&self, key: &SessionKey) -> Result<(), session_core::Error> {
            self.0.delete(key).await
        }
        async fn clear_expired(&self) -> Result<session_core::ClearExpired, session_core::Error> {
            self.0.clear_expired().await
        }
    }

    for policy in [ConcurrencyPolicy::Merge, ConcurrencyPolicy::Reject] {
        let config = SessionConfig {
            concurrency: policy,
            ..config()
        };
        let err = SessionLayer::new(NoCompareAndSwap(MemoryStore::new()), &config).unwrap_err();
        assert!(
            err.to_string().contains("compare-and-swap")
                && err.to_string().contains("last_write_wins"),
            "{err}"
        );
    }
    // The same store keeps working under Django's policy.
    SessionLayer::new(NoCompareAndSwap(MemoryStore::new()), &config()).unwrap();
}
