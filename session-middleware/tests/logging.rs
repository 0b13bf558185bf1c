//! What the layer logs when it replaces a response. Kept in its own test binary: `tracing` caches
//! per-callsite interest process-wide, so a test emitting the same event on another thread without a
//! subscriber could race with the capture.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::*;
use http::StatusCode;
use session_middleware::{SERVER_ERROR_MESSAGE, SessionFailure};

/// Runs `test` on a fresh current-thread runtime with the `tracing` events captured.
fn with_logs<T>(
    test: impl std::future::Future<Output = T>,
) -> (T, Vec<session_conformance::logs::LogEvent>) {
    session_conformance::logs::capture(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(test)
    })
}

#[test]
fn a_failing_save_is_a_logged_500_without_a_cookie() {
    let store = Arc::new(InstrumentedStore::default());
    store.fail_saves.store(true, Ordering::SeqCst);
    let service = app(&layer(store.clone(), config()), |session| async move {
        session.insert("a", "b").await.unwrap();
        ok()
    });
    let (response, logs) = with_logs(send(&service, None));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        set_cookies(&response).is_empty(),
        "no cookie for unsaved data"
    );
    assert_eq!(vary(&response), None);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let failure = response
        .extensions()
        .get::<SessionFailure>()
        .unwrap()
        .clone();
    assert!(matches!(
        failure.error(),
        session_middleware::Error::Store(session_core::Error::Store(_))
    ));
    let (body, _) = with_logs(body_text(response));
    assert_eq!(body, SERVER_ERROR_MESSAGE);
    assert!(!body.contains("backend down"), "details stay in the log");
    assert!(
        logs.iter()
            .any(|e| e.level == tracing::Level::ERROR && e.message.contains("backend down (test)")),
        "{logs:?}"
    );
    assert!(store.inner.is_empty());
}

#[test]
fn session_interrupted_is_logged_on_djangos_security_logger() {
    let store = Arc::new(InstrumentedStore::default());
    let ((key, response), logs) = with_logs(async {
        let key = existing_session(store.clone(), &[("a", "b")]).await;
        let service = app(&layer(store.clone(), config()), |session| async move {
            session.insert("c", "d").await.unwrap();
            // Another request logs the user out meanwhile.
            session
                .store()
                .delete(&session.key().unwrap())
                .await
                .unwrap();
            ok()
        });
        let response = send(&service, Some(&format!("sessionid={key}"))).await;
        (key, response)
    });
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookies(&response).is_empty());
    assert!(
        logs.iter()
            .any(|e| e.target == "django.security.SessionInterrupted"
                && e.level == tracing::Level::WARN),
        "{logs:?}"
    );
    assert!(!key.is_empty());
    assert!(store.inner.is_empty(), "the logged-out session stays gone");
}
