//! Django's `SessionMiddlewareTests` (tests/sessions_tests/tests.py, 5.2.14+/6.x), one test each,
//! named after Django's, plus the headers real Django was observed to send (spec §4.3).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use common::*;
use session_core::{SameSite, SaveMode, SessionConfig, SessionStore};
use session_middleware::{SESSION_INTERRUPTED_MESSAGE, SessionFailure};

/// A response from Django's `get_response_touching_session` (sets `hello = "world"`).
async fn touching_response(config: SessionConfig) -> http::Response<Body> {
    send(
        &hello_app(Arc::new(InstrumentedStore::default()), config),
        None,
    )
    .await
}

#[tokio::test]
async fn secure_session_cookie() {
    let response = touching_response(SessionConfig {
        cookie_secure: true,
        ..config()
    })
    .await;
    let cookie = the_set_cookie(&response);
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
}

#[tokio::test]
async fn httponly_session_cookie() {
    let response = touching_response(SessionConfig {
        cookie_httponly: true,
        ..config()
    })
    .await;
    let cookie = the_set_cookie(&response);
    assert!(cookie.contains("; HttpOnly;"), "{cookie}");
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
}

#[tokio::test]
async fn samesite_session_cookie() {
    let response = touching_response(SessionConfig {
        cookie_samesite: Some(SameSite::Strict),
        ..config()
    })
    .await;
    let cookie = the_set_cookie(&response);
    assert!(cookie.ends_with("; Path=/; SameSite=Strict"), "{cookie}");
}

#[tokio::test]
async fn no_httponly_session_cookie() {
    let response = touching_response(SessionConfig {
        cookie_httponly: false,
        ..config()
    })
    .await;
    let cookie = the_set_cookie(&response);
    assert!(!cookie.contains("HttpOnly"), "{cookie}");
    assert!(
        cookie.ends_with(
            "; expires=Tue, 28 Nov 2023 22:13:20 GMT; Max-Age=1209600; Path=/; SameSite=Lax"
        ),
        "{cookie}"
    );
}

async fn assert_not_saved_on(code: u16) {
    let store = Arc::new(InstrumentedStore::default());
    let captured = Captured::default();
    let kept = captured.clone();
    let service = app(&layer(store.clone(), config()), move |session| {
        let kept = kept.clone();
        async move {
            session.insert("hello", "world").await.unwrap();
            kept.keep(&session);
            status(code)
        }
    });
    let response = send(&service, None).await;
    // The handler's response goes out as it was; the session was accessed, so it varies on Cookie.
    assert_eq!(response.status().as_u16(), code);
    assert!(set_cookies(&response).is_empty());
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
    // Django: `"hello" not in request.session.load()`.
    assert!(!captured.get().load().await.unwrap().contains_key("hello"));
    assert_eq!(store.saves.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert!(store.inner.is_empty());
}

#[tokio::test]
async fn session_save_on_500() {
    assert_not_saved_on(500).await;
}

#[tokio::test]
async fn session_save_on_5xx() {
    assert_not_saved_on(503).await;
    assert_not_saved_on(599).await;
}

#[tokio::test]
async fn session_update_error_redirect() {
    let store = Arc::new(InstrumentedStore::default());
    let service = app(&layer(store.clone(), config()), |session| async move {
        // Django's response_delete_session: save(must_create=True), then delete().
        session.save_with(SaveMode::MustCreate).await.unwrap();
        session.delete().await.unwrap();
        ok()
    });
    let response = send(&service, None).await;
    assert_eq!(response.status(), http::StatusCode::BAD_REQUEST);
    assert!(
        set_cookies(&response).is_empty(),
        "no cookie for a session that is gone"
    );
    let failure = response
        .extensions()
        .get::<SessionFailure>()
        .unwrap()
        .clone();
    assert!(matches!(
        failure.error(),
        session_middleware::Error::SessionInterrupted
    ));
    assert_eq!(
        body_text(response).await,
        "The request's session was deleted before the request completed. \
         The user may have logged out in a concurrent request, for example."
    );
    assert_eq!(
        failure.error().to_string(),
        SESSION_INTERRUPTED_MESSAGE,
        "Django's exception message"
    );
    // Not resurrected.
    assert!(store.inner.is_empty());
}

#[tokio::test]
async fn session_delete_on_end() {
    let store = Arc::new(InstrumentedStore::default());
    let service = app(&layer(store, config()), |session| async move {
        session.flush().await.unwrap();
        ok()
    });
    let response = send(&service, Some("sessionid=abc")).await;
    assert_eq!(
        the_set_cookie(&response),
        "Set-Cookie: sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax"
    );
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
}

#[tokio::test]
async fn session_delete_on_end_with_custom_domain_and_path() {
    let store = Arc::new(InstrumentedStore::default());
    let config = SessionConfig {
        cookie_domain: Some(".example.local".to_owned()),
        cookie_path: "/example/".to_owned(),
        ..config()
    };
    let service = app(&layer(store, config), |session| async move {
        session.flush().await.unwrap();
        ok()
    });
    let response = send(&service, Some("sessionid=abc")).await;
    assert_eq!(
        the_set_cookie(&response),
        "Set-Cookie: sessionid=\"\"; Domain=.example.local; expires=Thu, 01 Jan 1970 00:00:00 GMT; \
         Max-Age=0; Path=/example/; SameSite=Lax"
    );
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
}

#[tokio::test]
async fn flush_empty_without_session_cookie_doesnt_set_cookie() {
    let store = Arc::new(InstrumentedStore::default());
    let service = app(&layer(store, config()), |session| async move {
        session.flush().await.unwrap();
        ok()
    });
    let response = send(&service, None).await;
    assert!(set_cookies(&response).is_empty());
    // The session was accessed (flush clears it), so the response varies on Cookie.
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
}

#[tokio::test]
async fn save_every_request_with_non_empty_session_renews_session_cookie() {
    let store = Arc::new(InstrumentedStore::default());
    let layer = layer(
        store.clone(),
        SessionConfig {
            save_every_request: true,
            ..config()
        },
    );
    let first = app(&layer, |session| async move {
        session.insert("hello", "world").await.unwrap();
        ok()
    });
    let response = send(&first, None).await;
    let key = cookie_value(&the_set_cookie(&response));
    assert_generated(&key);

    // A handler that never touches the session, on a fresh service.
    let untouched = app(&layer, |_session| async move { ok() });
    let response = send(&untouched, Some(&format!("sessionid={key}"))).await;
    assert_eq!(
        the_set_cookie(&response),
        format!(
            "Set-Cookie: sessionid={key}; expires=Tue, 28 Nov 2023 22:13:20 GMT; HttpOnly; \
             Max-Age=1209600; Path=/; SameSite=Lax"
        )
    );
    // CVE-2026-35192: the renewed cookie must be varied on.
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
}

#[tokio::test]
async fn empty_session_saved() {
    let store = Arc::new(InstrumentedStore::default());
    let layer = layer(store.clone(), config());
    let set_foo = app(&layer, |session| async move {
        session.insert("foo", "bar").await.unwrap();
        let items = session.items().await.unwrap();
        assert_eq!(items, vec![("foo".to_owned(), "bar".into())]);
        ok()
    });
    let response = send(&set_foo, None).await;
    let cookie = the_set_cookie(&response);
    assert!(cookie.starts_with("Set-Cookie: sessionid="), "{cookie}");
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
    let key = cookie_value(&cookie);

    // Emptied, but it still has a key: saved, and the cookie is set again.
    let delete_foo = app(&layer, |session| async move {
        assert!(session.remove("foo").await.unwrap().is_some());
        ok()
    });
    let response = send(&delete_foo, Some(&format!("sessionid={key}"))).await;
    let stored = store
        .inner
        .load(&session_core::SessionKey::new(key.clone()).unwrap())
        .await
        .unwrap();
    assert_eq!(stored, Some(session_core::Dict::new()));
    assert!(key.len() > 8);
    let cookie = the_set_cookie(&response);
    assert!(
        cookie.starts_with(&format!("Set-Cookie: sessionid={key}")),
        "{cookie}"
    );
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
}

// The headers real Django 6.1.3 sent with the clock frozen at t=1700000000 (spec §4.3).

/// Django's `get_response_touching_session` behind the layer.
fn hello_app(
    store: Arc<dyn SessionStore>,
    config: SessionConfig,
) -> impl tower::Service<
    http::Request<http_body_util::Full<bytes::Bytes>>,
    Response = http::Response<Body>,
    Error = std::convert::Infallible,
    Future: Send,
> + Clone {
    app(&layer(store, config), |session| async move {
        session.insert("hello", "world").await.unwrap();
        ok()
    })
}

/// Splits `Set-Cookie: sessionid=<key>; rest` into the generated key and the rest.
fn key_and_rest(set_cookie: &str) -> (String, String) {
    let after = set_cookie.strip_prefix("Set-Cookie: sessionid=").unwrap();
    let (key, rest) = after.split_once(';').unwrap_or((after, ""));
    assert_generated(key);
    (key.to_owned(), rest.to_owned())
}

#[tokio::test]
async fn observed_db_backend_cookie() {
    let store = Arc::new(InstrumentedStore::default());
    let response = send(&hello_app(store, config()), None).await;
    let (_, rest) = key_and_rest(&the_set_cookie(&response));
    assert_eq!(
        rest,
        " expires=Tue, 28 Nov 2023 22:13:20 GMT; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax"
    );
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
}

#[tokio::test]
async fn observed_signed_cookies_backend_cookie() {
    let store = Arc::new(SignedDataStore::new(&config()));
    let response = send(&hello_app(store, config()), None).await;
    assert_eq!(
        the_set_cookie(&response),
        "Set-Cookie: sessionid=eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc; \
         expires=Tue, 28 Nov 2023 22:13:20 GMT; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax"
    );
}

#[tokio::test]
async fn observed_secure_domain_samesite_none_and_age() {
    let config = SessionConfig {
        cookie_secure: true,
        cookie_domain: Some(".example.com".to_owned()),
        cookie_samesite: Some(SameSite::None),
        cookie_age: 3600,
        ..config()
    };
    let response = send(
        &hello_app(Arc::new(InstrumentedStore::default()), config),
        None,
    )
    .await;
    let (_, rest) = key_and_rest(&the_set_cookie(&response));
    assert_eq!(
        rest,
        " Domain=.example.com; expires=Tue, 14 Nov 2023 23:13:20 GMT; HttpOnly; Max-Age=3600; \
         Path=/; SameSite=None; Secure"
    );
}

#[tokio::test]
async fn observed_expire_at_browser_close() {
    let config = SessionConfig {
        expire_at_browser_close: true,
        ..config()
    };
    let response = send(
        &hello_app(Arc::new(InstrumentedStore::default()), config),
        None,
    )
    .await;
    let (_, rest) = key_and_rest(&the_set_cookie(&response));
    assert_eq!(rest, " HttpOnly; Path=/; SameSite=Lax");
}

#[tokio::test]
async fn observed_no_samesite_no_httponly() {
    let config = SessionConfig {
        cookie_samesite: None,
        cookie_httponly: false,
        ..config()
    };
    let response = send(
        &hello_app(Arc::new(InstrumentedStore::default()), config),
        None,
    )
    .await;
    let (_, rest) = key_and_rest(&the_set_cookie(&response));
    assert_eq!(
        rest,
        " expires=Tue, 28 Nov 2023 22:13:20 GMT; Max-Age=1209600; Path=/"
    );
}

#[tokio::test]
async fn observed_flush_with_samesite_none_is_secure() {
    let config = SessionConfig {
        cookie_samesite: Some(SameSite::None),
        ..config()
    };
    let service = app(
        &layer(Arc::new(InstrumentedStore::default()), config),
        |session| async move {
            session.flush().await.unwrap();
            ok()
        },
    );
    let response = send(&service, Some("sessionid=abcdefghijkl")).await;
    assert_eq!(
        the_set_cookie(&response),
        "Set-Cookie: sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; \
         SameSite=None; Secure"
    );
}

#[tokio::test]
async fn observed_signed_cookies_cycle_key_100_seconds_later() {
    let config = config();
    let store = Arc::new(SignedDataStore::new(&config));
    let cookie =
        "sessionid=eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc";
    let later = FROZEN + time::Duration::seconds(100);
    *store.now.lock().unwrap() = later;
    let service = app(
        &session_middleware::SessionLayer::new(store, &config)
            .unwrap()
            .with_clock(move || later),
        |session| async move {
            session.cycle_key().await.unwrap();
            ok()
        },
    );
    let response = send(&service, Some(cookie)).await;
    assert_eq!(
        the_set_cookie(&response),
        "Set-Cookie: sessionid=eyJoZWxsbyI6IndvcmxkIn0:1r31gS:a7oK0LqtNvF3B5UrmFNGWTK5RByNR2TwaQBRCFBwDXE; \
         expires=Tue, 28 Nov 2023 22:15:00 GMT; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax"
    );
}

#[tokio::test]
async fn observed_signed_cookies_invalid_cookie_read_sends_a_fresh_empty_cookie() {
    let config = config();
    let store = Arc::new(SignedDataStore::new(&config));
    let service = app(&layer(store, config), |session| async move {
        assert_eq!(session.get::<String>("hello").await.unwrap(), None);
        ok()
    });
    let response = send(&service, Some("sessionid=not-a-valid-signed-cookie")).await;
    let value = cookie_value(&the_set_cookie(&response));
    // `{}` signed at the frozen time.
    assert!(value.starts_with("e30:1r31eq:"), "{value}");
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
}
