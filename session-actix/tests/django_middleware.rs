//! Django's `SessionMiddlewareTests` (tests/sessions_tests/tests.py, 5.2.14+/6.x) under actix-web,
//! one test each, named after Django's, plus the headers real Django was observed to send (spec
//! §4.3): the same cases as session-middleware's tests/django_middleware.rs for the tower layer.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::*;
use session_core::{SameSite, SaveMode, SessionConfig, SessionStore};
use session_middleware::SESSION_INTERRUPTED_MESSAGE;

/// Django's `get_response_touching_session` (sets `hello = "world"`) behind the middleware.
async fn hello(store: Arc<dyn SessionStore>, config: SessionConfig) -> Answer {
    let (answer, failure) = send(&middleware(store, config), None, |session| async move {
        session.insert("hello", "world").await.unwrap();
        ok()
    })
    .await;
    assert!(failure.is_none());
    answer
}

async fn touching_response(config: SessionConfig) -> Answer {
    hello(Arc::new(InstrumentedStore::default()), config).await
}

#[actix_web::test]
async fn secure_session_cookie() {
    let response = touching_response(SessionConfig {
        cookie_secure: true,
        ..config()
    })
    .await;
    let cookie = response.the_set_cookie();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    assert_eq!(response.vary(), Some("Cookie"));
}

#[actix_web::test]
async fn httponly_session_cookie() {
    let response = touching_response(SessionConfig {
        cookie_httponly: true,
        ..config()
    })
    .await;
    let cookie = response.the_set_cookie();
    assert!(cookie.contains("; HttpOnly;"), "{cookie}");
    assert_eq!(response.vary(), Some("Cookie"));
}

#[actix_web::test]
async fn samesite_session_cookie() {
    let response = touching_response(SessionConfig {
        cookie_samesite: Some(SameSite::Strict),
        ..config()
    })
    .await;
    let cookie = response.the_set_cookie();
    assert!(cookie.ends_with("; Path=/; SameSite=Strict"), "{cookie}");
}

#[actix_web::test]
async fn no_httponly_session_cookie() {
    let response = touching_response(SessionConfig {
        cookie_httponly: false,
        ..config()
    })
    .await;
    let cookie = response.the_set_cookie();
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
    let (response, _) = send(&middleware(store.clone(), config()), None, move |session| {
        let kept = kept.clone();
        async move {
            session.insert("hello", "world").await.unwrap();
            kept.keep(&session);
            status(code)
        }
    })
    .await;
    // The handler's response goes out as it was; the session was accessed, so it varies on Cookie.
    assert_eq!(response.status, code);
    assert_eq!(response.body, "Session test");
    assert!(response.set_cookies.is_empty());
    assert_eq!(response.vary(), Some("Cookie"));
    // Django: `"hello" not in request.session.load()`.
    assert!(!captured.get().load().await.unwrap().contains_key("hello"));
    assert_eq!(store.saves.load(Ordering::SeqCst), 0);
    assert!(store.inner.is_empty());
}

#[actix_web::test]
async fn session_save_on_500() {
    assert_not_saved_on(500).await;
}

#[actix_web::test]
async fn session_save_on_5xx() {
    assert_not_saved_on(503).await;
    assert_not_saved_on(599).await;
}

#[actix_web::test]
async fn session_update_error_redirect() {
    let store = Arc::new(InstrumentedStore::default());
    let (response, failure) = send(
        &middleware(store.clone(), config()),
        None,
        |session| async move {
            // Django's response_delete_session: save(must_create=True), then delete().
            session.save_with(SaveMode::MustCreate).await.unwrap();
            session.delete().await.unwrap();
            ok()
        },
    )
    .await;
    assert_eq!(response.status, 400);
    assert!(
        response.set_cookies.is_empty(),
        "no cookie for a session that is gone"
    );
    let failure = failure.unwrap();
    assert!(matches!(
        failure.error(),
        session_actix::Error::SessionInterrupted
    ));
    assert_eq!(
        response.body,
        "The request's session was deleted before the request completed. \
         The user may have logged out in a concurrent request, for example."
    );
    assert_eq!(
        response.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        failure.error().to_string(),
        SESSION_INTERRUPTED_MESSAGE,
        "Django's exception message"
    );
    // Not resurrected.
    assert!(store.inner.is_empty());
}

async fn flushed(config: SessionConfig, cookie: Option<&str>) -> Answer {
    let store = Arc::new(InstrumentedStore::default());
    send(&middleware(store, config), cookie, |session| async move {
        session.flush().await.unwrap();
        ok()
    })
    .await
    .0
}

#[actix_web::test]
async fn session_delete_on_end() {
    let response = flushed(config(), Some("sessionid=abc")).await;
    assert_eq!(
        response.the_set_cookie(),
        "Set-Cookie: sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax"
    );
    assert_eq!(response.vary(), Some("Cookie"));
}

#[actix_web::test]
async fn session_delete_on_end_with_custom_domain_and_path() {
    let config = SessionConfig {
        cookie_domain: Some(".example.local".to_owned()),
        cookie_path: "/example/".to_owned(),
        ..config()
    };
    let response = flushed(config, Some("sessionid=abc")).await;
    assert_eq!(
        response.the_set_cookie(),
        "Set-Cookie: sessionid=\"\"; Domain=.example.local; expires=Thu, 01 Jan 1970 00:00:00 GMT; \
         Max-Age=0; Path=/example/; SameSite=Lax"
    );
    assert_eq!(response.vary(), Some("Cookie"));
}

#[actix_web::test]
async fn flush_empty_without_session_cookie_doesnt_set_cookie() {
    let response = flushed(config(), None).await;
    assert!(response.set_cookies.is_empty());
    // The session was accessed (flush clears it), so the response varies on Cookie.
    assert_eq!(response.vary(), Some("Cookie"));
}

#[actix_web::test]
async fn save_every_request_with_non_empty_session_renews_session_cookie() {
    let store = Arc::new(InstrumentedStore::default());
    let middleware = middleware(
        store.clone(),
        SessionConfig {
            save_every_request: true,
            ..config()
        },
    );
    let (response, _) = send(&middleware, None, |session| async move {
        session.insert("hello", "world").await.unwrap();
        ok()
    })
    .await;
    let key = cookie_value(&response.the_set_cookie());
    assert_generated(&key);

    // A handler that never touches the session.
    let cookie = format!("sessionid={key}");
    let (response, _) = send(&middleware, Some(&cookie), |_session| async move { ok() }).await;
    assert_eq!(
        response.the_set_cookie(),
        format!(
            "Set-Cookie: sessionid={key}; expires=Tue, 28 Nov 2023 22:13:20 GMT; HttpOnly; \
             Max-Age=1209600; Path=/; SameSite=Lax"
        )
    );
    // CVE-2026-35192: the renewed cookie must be varied on.
    assert_eq!(response.vary(), Some("Cookie"));
}

#[actix_web::test]
async fn empty_session_saved() {
    let store = Arc::new(InstrumentedStore::default());
    let middleware = middleware(store.clone(), config());
    let (response, _) = send(&middleware, None, |session| async move {
        session.insert("foo", "bar").await.unwrap();
        let items = session.items().await.unwrap();
        assert_eq!(items, vec![("foo".to_owned(), "bar".into())]);
        ok()
    })
    .await;
    let cookie = response.the_set_cookie();
    assert!(cookie.starts_with("Set-Cookie: sessionid="), "{cookie}");
    assert_eq!(response.vary(), Some("Cookie"));
    let key = cookie_value(&cookie);

    // Emptied, but it still has a key: saved, and the cookie is set again.
    let (response, _) = send(
        &middleware,
        Some(&format!("sessionid={key}")),
        |session| async move {
            assert!(session.remove("foo").await.unwrap().is_some());
            ok()
        },
    )
    .await;
    let stored = store
        .inner
        .load(&session_core::SessionKey::new(key.clone()).unwrap())
        .await
        .unwrap();
    assert_eq!(stored, Some(session_core::Dict::new()));
    assert!(key.len() > 8);
    let cookie = response.the_set_cookie();
    assert!(
        cookie.starts_with(&format!("Set-Cookie: sessionid={key}")),
        "{cookie}"
    );
    assert_eq!(response.vary(), Some("Cookie"));
}

// The headers real Django 6.1.3 sent with the clock frozen at t=1700000000 (spec §4.3).

/// Splits `Set-Cookie: sessionid=<key>; rest` into the generated key and the rest.
fn key_and_rest(set_cookie: &str) -> (String, String) {
    let after = set_cookie.strip_prefix("Set-Cookie: sessionid=").unwrap();
    let (key, rest) = after.split_once(';').unwrap_or((after, ""));
    assert_generated(key);
    (key.to_owned(), rest.to_owned())
}

#[actix_web::test]
async fn observed_db_backend_cookie() {
    let response = touching_response(config()).await;
    let (_, rest) = key_and_rest(&response.the_set_cookie());
    assert_eq!(
        rest,
        " expires=Tue, 28 Nov 2023 22:13:20 GMT; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax"
    );
    assert_eq!(response.vary(), Some("Cookie"));
}

#[actix_web::test]
async fn observed_signed_cookies_backend_cookie() {
    let response = hello(Arc::new(SignedDataStore::new(&config())), config()).await;
    assert_eq!(
        response.the_set_cookie(),
        "Set-Cookie: sessionid=eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc; \
         expires=Tue, 28 Nov 2023 22:13:20 GMT; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax"
    );
}

#[actix_web::test]
async fn observed_secure_domain_samesite_none_and_age() {
    let response = touching_response(SessionConfig {
        cookie_secure: true,
        cookie_domain: Some(".example.com".to_owned()),
        cookie_samesite: Some(SameSite::None),
        cookie_age: 3600,
        ..config()
    })
    .await;
    let (_, rest) = key_and_rest(&response.the_set_cookie());
    assert_eq!(
        rest,
        " Domain=.example.com; expires=Tue, 14 Nov 2023 23:13:20 GMT; HttpOnly; Max-Age=3600; \
         Path=/; SameSite=None; Secure"
    );
}

#[actix_web::test]
async fn observed_expire_at_browser_close() {
    let response = touching_response(SessionConfig {
        expire_at_browser_close: true,
        ..config()
    })
    .await;
    let (_, rest) = key_and_rest(&response.the_set_cookie());
    assert_eq!(rest, " HttpOnly; Path=/; SameSite=Lax");
}

#[actix_web::test]
async fn observed_no_samesite_no_httponly() {
    let response = touching_response(SessionConfig {
        cookie_samesite: None,
        cookie_httponly: false,
        ..config()
    })
    .await;
    let (_, rest) = key_and_rest(&response.the_set_cookie());
    assert_eq!(
        rest,
        " expires=Tue, 28 Nov 2023 22:13:20 GMT; Max-Age=1209600; Path=/"
    );
}

#[actix_web::test]
async fn observed_flush_with_samesite_none_is_secure() {
    let config = SessionConfig {
        cookie_samesite: Some(SameSite::None),
        ..config()
    };
    let response = flushed(config, Some("sessionid=abcdefghijkl")).await;
    assert_eq!(
        response.the_set_cookie(),
        "Set-Cookie: sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; \
         SameSite=None; Secure"
    );
}

#[actix_web::test]
async fn observed_signed_cookies_cycle_key_100_seconds_later() {
    let config = config();
    let store = Arc::new(SignedDataStore::new(&config));
    let cookie =
        "sessionid=eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc";
    let later = FROZEN + time::Duration::seconds(100);
    *store.now.lock().unwrap() = later;
    let middleware = session_actix::SessionMiddleware::new(store, &config)
        .unwrap()
        .with_clock(move || later);
    let (response, _) = send(&middleware, Some(cookie), |session| async move {
        session.cycle_key().await.unwrap();
        ok()
    })
    .await;
    assert_eq!(
        response.the_set_cookie(),
        "Set-Cookie: sessionid=eyJoZWxsbyI6IndvcmxkIn0:1r31gS:a7oK0LqtNvF3B5UrmFNGWTK5RByNR2TwaQBRCFBwDXE; \
         expires=Tue, 28 Nov 2023 22:15:00 GMT; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax"
    );
}

#[actix_web::test]
async fn observed_signed_cookies_invalid_cookie_read_sends_a_fresh_empty_cookie() {
    let config = config();
    let store = Arc::new(SignedDataStore::new(&config));
    let (response, _) = send(
        &middleware(store, config),
        Some("sessionid=not-a-valid-signed-cookie"),
        |session| async move {
            assert_eq!(session.get::<String>("hello").await.unwrap(), None);
            ok()
        },
    )
    .await;
    let value = cookie_value(&response.the_set_cookie());
    // `{}` signed at the frozen time.
    assert!(value.starts_with("e30:1r31eq:"), "{value}");
    assert_eq!(response.vary(), Some("Cookie"));
}
