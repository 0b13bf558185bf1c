//! The layer's behaviour beyond Django's own middleware tests: laziness, header merging, expiry
//! attributes, error responses, configuration checks and body pass-through.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use common::*;
use http::header::{SET_COOKIE, VARY};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame};
use http_body_util::{BodyExt, Either, Full};
use session_core::{Expiry, SessionConfig, SessionKey, SessionStore};
use session_middleware::{SessionFailure, SessionLayer};
use time::Duration;
use tower::{Layer, ServiceExt, service_fn};

#[tokio::test]
async fn a_request_that_never_touches_its_session_never_touches_the_store() {
    let store = Arc::new(InstrumentedStore::default());
    let key = existing_session(store.clone(), &[("hello", "world")]).await;
    let before = store.calls();
    let service = app(
        &layer(store.clone(), config()),
        |_session| async move { ok() },
    );

    for cookie in [
        None,
        Some(format!("sessionid={key}")),
        Some("a=b".to_owned()),
    ] {
        let response = send(&service, cookie.as_deref()).await;
        assert!(set_cookies(&response).is_empty(), "{cookie:?}");
        assert_eq!(vary(&response), None, "{cookie:?}");
    }
    assert_eq!(
        store.calls(),
        before,
        "no store call for untouched sessions"
    );
}

#[tokio::test]
async fn a_too_short_cookie_is_deleted_without_a_store_call() {
    // Django: a key shorter than 8 characters is no key, so the untouched session is empty.
    let store = Arc::new(InstrumentedStore::default());
    let service = app(
        &layer(store.clone(), config()),
        |_session| async move { ok() },
    );
    let response = send(&service, Some("sessionid=abc")).await;
    assert_eq!(
        the_set_cookie(&response),
        "Set-Cookie: sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax"
    );
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
    assert_eq!(store.calls(), 0);
}

#[tokio::test]
async fn an_unknown_key_that_is_read_gets_its_cookie_deleted() {
    let store = Arc::new(InstrumentedStore::default());
    let service = app(&layer(store.clone(), config()), |session| async move {
        assert_eq!(session.get::<String>("hello").await.unwrap(), None);
        ok()
    });
    let response = send(&service, Some("sessionid=abcdefghijklmnop")).await;
    assert!(the_set_cookie(&response).contains("sessionid=\"\"; expires=Thu, 01 Jan 1970"));
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
    assert!(store.inner.is_empty(), "a load never creates a record");
}

#[tokio::test]
async fn a_read_only_session_varies_but_is_not_saved() {
    let store = Arc::new(InstrumentedStore::default());
    let key = existing_session(store.clone(), &[("hello", "world")]).await;
    let saves = store.saves.load(Ordering::SeqCst);
    let service = app(&layer(store.clone(), config()), |session| async move {
        assert_eq!(
            session.get::<String>("hello").await.unwrap().as_deref(),
            Some("world")
        );
        ok()
    });
    let response = send(&service, Some(&format!("sessionid={key}"))).await;
    assert!(set_cookies(&response).is_empty());
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
    assert_eq!(store.saves.load(Ordering::SeqCst), saves);

    // A brand-new session that is only read has nothing to save and no key.
    let service = app(&layer(store.clone(), config()), |session| async move {
        assert_eq!(session.get::<String>("hello").await.unwrap(), None);
        ok()
    });
    let response = send(&service, None).await;
    assert!(set_cookies(&response).is_empty());
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
}

#[tokio::test]
async fn the_session_cookie_is_found_among_others_and_the_last_duplicate_wins() {
    let store = Arc::new(InstrumentedStore::default());
    let key = existing_session(store.clone(), &[("hello", "world")]).await;
    let service = app(&layer(store.clone(), config()), |session| async move {
        let hello = session.get::<String>("hello").await.unwrap();
        session.insert("seen", &hello).await.unwrap();
        ok()
    });
    let header =
        format!("csrftoken=x; sessionid=stale-key-0000; theme=\"dark\"; sessionid=\"{key}\"");
    let response = send(&service, Some(&header)).await;
    assert_eq!(cookie_value(&the_set_cookie(&response)), key);
    let stored = store
        .inner
        .load(&SessionKey::new(key).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored["seen"], "world".into());
}

#[tokio::test]
async fn vary_is_merged_with_the_handlers() {
    let store = Arc::new(InstrumentedStore::default());
    let cases = [
        ("Accept-Encoding", "Accept-Encoding, Cookie"),
        ("accept-encoding,COOKIE", "accept-encoding, COOKIE"),
        ("*", "*"),
    ];
    for (existing, expected) in cases {
        let service = app(&layer(store.clone(), config()), move |session| async move {
            session.insert("a", "b").await.unwrap();
            let mut response = ok();
            response
                .headers_mut()
                .insert(VARY, HeaderValue::from_static(existing));
            response
        });
        let response = send(&service, None).await;
        assert_eq!(vary(&response).as_deref(), Some(expected));
    }
}

#[tokio::test]
async fn the_layers_cookie_replaces_a_handler_cookie_of_the_same_name_only() {
    let store = Arc::new(InstrumentedStore::default());
    let service = app(&layer(store, config()), |session| async move {
        session.insert("a", "b").await.unwrap();
        let mut response = ok();
        let headers = response.headers_mut();
        headers.append(
            SET_COOKIE,
            HeaderValue::from_static("csrftoken=abc; Path=/"),
        );
        headers.append(
            SET_COOKIE,
            HeaderValue::from_static("sessionid=forged; Path=/"),
        );
        headers.append(SET_COOKIE, HeaderValue::from_static("sessionid2=kept"));
        response
    });
    let response = send(&service, None).await;
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    assert_eq!(cookies[0], "csrftoken=abc; Path=/");
    assert_eq!(cookies[1], "sessionid2=kept");
    assert_generated(&cookie_value(&cookies[2]));
}

#[tokio::test]
async fn the_layers_cookie_joins_or_replaces_the_handlers_alone() {
    // (the handler's Set-Cookie values, the ones kept before the layer's)
    let cases: [(&[&'static str], &[&str]); 3] = [
        (&["sessionid=forged"], &[]),
        (&["csrftoken=abc"], &["csrftoken=abc"]),
        (&["a=1", "b=2"], &["a=1", "b=2"]),
    ];
    for (written, kept) in cases {
        let store = Arc::new(InstrumentedStore::default());
        let service = app(&layer(store, config()), move |session| async move {
            session.insert("a", "b").await.unwrap();
            let mut response = ok();
            for cookie in written {
                response
                    .headers_mut()
                    .append(SET_COOKIE, HeaderValue::from_static(cookie));
            }
            // Two `Vary` headers become one merged value.
            response
                .headers_mut()
                .append(VARY, HeaderValue::from_static("Accept-Encoding"));
            response
                .headers_mut()
                .append(VARY, HeaderValue::from_static("Accept-Language"));
            response
        });
        let response = send(&service, None).await;
        let cookies = set_cookies(&response);
        assert_eq!(cookies.len(), kept.len() + 1, "{cookies:?}");
        assert_eq!(&cookies[..kept.len()], kept);
        assert_generated(&cookie_value(&cookies[kept.len()]));
        let varies: Vec<_> = response.headers().get_all(VARY).iter().collect();
        assert_eq!(varies, ["Accept-Encoding, Accept-Language, Cookie"]);
    }
}

#[tokio::test]
async fn a_handler_cookie_of_the_same_name_stays_when_the_layer_sets_none() {
    let store = Arc::new(InstrumentedStore::default());
    let service = app(&layer(store, config()), |_session| async move {
        let mut response = ok();
        response
            .headers_mut()
            .append(SET_COOKIE, HeaderValue::from_static("sessionid=mine"));
        response
    });
    let response = send(&service, None).await;
    assert_eq!(set_cookies(&response), ["sessionid=mine"]);
}

async fn cookie_for_expiry(expiry: Expiry) -> String {
    let store = Arc::new(InstrumentedStore::default());
    let service = app(&layer(store, config()), move |session| async move {
        session.insert("a", "b").await.unwrap();
        session.set_expiry(expiry).await.unwrap();
        ok()
    });
    let response = send(&service, None).await;
    let cookie = the_set_cookie(&response);
    cookie
        .split_once("; ")
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn max_age_and_expires_follow_the_sessions_expiry() {
    assert_eq!(
        cookie_for_expiry(Expiry::Seconds(60)).await,
        "expires=Tue, 14 Nov 2023 22:14:20 GMT; HttpOnly; Max-Age=60; Path=/; SameSite=Lax"
    );
    // Browser-length sessions get neither attribute.
    assert_eq!(
        cookie_for_expiry(Expiry::BrowserClose).await,
        "HttpOnly; Path=/; SameSite=Lax"
    );
    // A fixed deadline: the floored seconds from the (frozen) clock.
    assert_eq!(
        cookie_for_expiry(Expiry::At(FROZEN + Duration::milliseconds(100_500))).await,
        "expires=Tue, 14 Nov 2023 22:15:00 GMT; HttpOnly; Max-Age=100; Path=/; SameSite=Lax"
    );
    // A negative age is sent as Django sends it (the browser drops the cookie).
    assert_eq!(
        cookie_for_expiry(Expiry::Seconds(-10)).await,
        "expires=Tue, 14 Nov 2023 22:13:10 GMT; HttpOnly; Max-Age=-10; Path=/; SameSite=Lax"
    );
}

#[tokio::test]
async fn browser_close_config_yields_to_a_per_session_expiry() {
    let store = Arc::new(InstrumentedStore::default());
    let config = SessionConfig {
        expire_at_browser_close: true,
        ..config()
    };
    let service = app(&layer(store, config), |session| async move {
        session.insert("a", "b").await.unwrap();
        session.set_expiry(Expiry::Seconds(30)).await.unwrap();
        ok()
    });
    let cookie = the_set_cookie(&send(&service, None).await);
    assert!(cookie.contains("; Max-Age=30; "), "{cookie}");
}

#[tokio::test]
async fn an_expiry_past_year_9999_is_a_500_and_nothing_is_saved() {
    let store = Arc::new(InstrumentedStore::default());
    let service = app(&layer(store.clone(), config()), |session| async move {
        session.insert("a", "b").await.unwrap();
        session
            .set_expiry(Expiry::Seconds(i64::MAX / 4))
            .await
            .unwrap();
        ok()
    });
    let response = send(&service, None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookies(&response).is_empty());
    let failure = response.extensions().get::<SessionFailure>().unwrap();
    assert!(matches!(
        failure.error(),
        session_middleware::Error::ExpiryOutOfRange { .. }
    ));
    assert_eq!(store.saves.load(Ordering::SeqCst), 0);
    assert!(store.inner.is_empty());
}

#[tokio::test]
async fn a_failing_load_while_renewing_is_a_500_without_a_cookie() {
    let store = Arc::new(InstrumentedStore::default());
    let key = existing_session(store.clone(), &[("a", "b")]).await;
    store.fail_loads.store(true, Ordering::SeqCst);
    let config = SessionConfig {
        save_every_request: true,
        ..config()
    };
    let service = app(
        &layer(store.clone(), config),
        |_session| async move { ok() },
    );
    let response = send(&service, Some(&format!("sessionid={key}"))).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookies(&response).is_empty());
}

#[test]
fn invalid_configs_are_refused_with_a_clear_error() {
    let store: Arc<dyn SessionStore> = Arc::new(InstrumentedStore::default());
    let refused = |config: SessionConfig| {
        SessionLayer::new(store.clone(), &config)
            .unwrap_err()
            .to_string()
    };
    assert!(refused(SessionConfig::default()).contains("secret_key is empty"));
    assert!(
        refused(SessionConfig {
            cookie_name: "bad name".to_owned(),
            ..config()
        })
        .contains("not a valid cookie name")
    );
    let path = refused(SessionConfig {
        cookie_path: "/a;Domain=evil".to_owned(),
        ..config()
    });
    assert!(
        path.contains("cookie_path") && path.contains("without ';'"),
        "{path}"
    );
    assert!(
        refused(SessionConfig {
            cookie_path: "/a\r\nX-Injected: 1".to_owned(),
            ..config()
        })
        .contains("cookie_path")
    );
    let domain = refused(SessionConfig {
        cookie_domain: Some("exa mple.com".to_owned()),
        ..config()
    });
    assert!(
        domain.contains("cookie_domain") && domain.contains("spaces"),
        "{domain}"
    );
    assert!(
        refused(SessionConfig {
            cookie_domain: Some("ex\u{e4}mple.com".to_owned()),
            ..config()
        })
        .contains("cookie_domain")
    );
    // A path with a space is a valid attribute value.
    assert!(
        SessionLayer::new(
            store,
            &SessionConfig {
                cookie_path: "/my app/".to_owned(),
                ..config()
            }
        )
        .is_ok()
    );
}

#[tokio::test]
async fn the_handler_sees_the_request_body_untouched() {
    let store = Arc::new(InstrumentedStore::default());
    let service = layer(store, config()).layer(service_fn(|request: Request<Full<Bytes>>| async {
        let body = request.into_body().collect().await.unwrap().to_bytes();
        Ok::<_, std::convert::Infallible>(Response::new(Full::new(body)))
    }));
    let request = Request::new(Full::new(Bytes::from_static(b"payload \x00\xff")));
    let response = service.oneshot(request).await.unwrap();
    assert!(matches!(response.body(), Either::Left(_)));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"payload \x00\xff");
}

/// A streaming body fed by a channel: it only yields what the test sends.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

#[tokio::test]
async fn the_response_body_streams_through_unbuffered() {
    let store = Arc::new(InstrumentedStore::default());
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let receiver = std::sync::Mutex::new(Some(receiver));
    let service = layer(store, config()).layer(service_fn(move |request: Request<Full<Bytes>>| {
        let body = ChannelBody(receiver.lock().unwrap().take().unwrap());
        async move {
            let session = request.extensions().get::<session_core::Session>().unwrap();
            session.insert("streaming", &true).await.unwrap();
            Ok::<_, std::convert::Infallible>(Response::new(body))
        }
    }));
    // The headers (with the session cookie) arrive before any body data exists.
    let response = service
        .oneshot(Request::new(Full::default()))
        .await
        .unwrap();
    assert!(response.headers().contains_key(SET_COOKIE));
    let mut body = response.into_body();
    for chunk in ["first", "second"] {
        sender.send(Bytes::from(chunk)).await.unwrap();
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), chunk);
    }
    drop(sender);
    assert!(body.frame().await.is_none());
}

#[tokio::test]
async fn cookie_names_with_secure_prefixes_are_deleted_with_secure() {
    let store = Arc::new(InstrumentedStore::default());
    for name in ["__Secure-sid", "__Host-sid"] {
        let config = SessionConfig {
            cookie_name: name.to_owned(),
            ..config()
        };
        let service = app(&layer(store.clone(), config), |session| async move {
            session.flush().await.unwrap();
            ok()
        });
        let response = send(&service, Some(&format!("{name}=whatever-key"))).await;
        assert_eq!(
            the_set_cookie(&response),
            format!(
                "Set-Cookie: {name}=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; \
                 Path=/; SameSite=Lax; Secure"
            )
        );
    }
}

#[tokio::test]
async fn an_emptied_session_loses_its_cookie_even_on_a_5xx() {
    // Django's delete branch does not look at the status; only saving does.
    let store = Arc::new(InstrumentedStore::default());
    let key = existing_session(store.clone(), &[("a", "b")]).await;
    let service = app(&layer(store.clone(), config()), |session| async move {
        session.flush().await.unwrap();
        status(503)
    });
    let response = send(&service, Some(&format!("sessionid={key}"))).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        the_set_cookie(&response)
            .starts_with("Set-Cookie: sessionid=\"\"; expires=Thu, 01 Jan 1970")
    );
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
    assert!(store.inner.is_empty());
}

#[test]
fn the_layers_debug_output_shows_no_session_data() {
    let store = Arc::new(session_core::MemoryStore::new());
    let layer = SessionLayer::new(store.clone(), &config()).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(existing_session(store, &[("secret", "hunter2")]));
    let shown = format!("{layer:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("sessionid"), "{shown}");
}

#[tokio::test]
async fn deleting_ignores_cookie_secure_and_httponly() {
    let store = Arc::new(InstrumentedStore::default());
    let config = SessionConfig {
        cookie_secure: true,
        cookie_httponly: true,
        cookie_samesite: None,
        ..config()
    };
    let service = app(&layer(store, config), |session| async move {
        session.flush().await.unwrap();
        ok()
    });
    let response = send(&service, Some("sessionid=")).await;
    assert_eq!(
        the_set_cookie(&response),
        "Set-Cookie: sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"
    );
}

#[tokio::test]
async fn a_signed_data_session_round_trips_through_its_cookie() {
    let config = config();
    let store = Arc::new(SignedDataStore::new(&config));
    let layer = layer(store.clone(), config);
    let write = app(&layer, |session| async move {
        let n: i64 = session.get("n").await.unwrap().unwrap_or(0);
        session.insert("n", &(n + 1)).await.unwrap();
        ok()
    });
    let first = cookie_value(&the_set_cookie(&send(&write, None).await));
    let second = cookie_value(&the_set_cookie(
        &send(&write, Some(&format!("sessionid={first}"))).await,
    ));
    let decoded = store
        .load(&SessionKey::new(second.clone()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(decoded["n"], 2i64.into());

    // Reading does not re-sign; flushing deletes the cookie.
    let read = app(&layer, |session| async move {
        assert_eq!(session.get::<i64>("n").await.unwrap(), Some(2));
        ok()
    });
    let response = send(&read, Some(&format!("sessionid={second}"))).await;
    assert!(set_cookies(&response).is_empty());
    let flush = app(&layer, |session| async move {
        session.flush().await.unwrap();
        ok()
    });
    let response = send(&flush, Some(&format!("sessionid={second}"))).await;
    assert!(
        the_set_cookie(&response)
            .starts_with("Set-Cookie: sessionid=\"\"; expires=Thu, 01 Jan 1970")
    );
}

/// A store whose saves hand back a key no HTTP header can carry.
#[derive(Debug, Default)]
struct UnsendableKeyStore;

#[async_trait::async_trait]
impl SessionStore for UnsendableKeyStore {
    async fn load(
        &self,
        _key: &SessionKey,
    ) -> Result<Option<session_core::Dict>, session_core::Error> {
        Ok(None)
    }

    async fn exists(&self, _key: &SessionKey) -> Result<bool, session_core::Error> {
        Ok(false)
    }

    async fn save(
        &self,
        _key: &SessionKey,
        _record: session_core::SessionRecord<'_>,
        _mode: session_core::SaveMode,
    ) -> Result<SessionKey, session_core::Error> {
        SessionKey::new("\u{20ac}".repeat(10))
    }

    async fn delete(&self, _key: &SessionKey) -> Result<(), session_core::Error> {
        Ok(())
    }

    async fn clear_expired(&self) -> Result<session_core::ClearExpired, session_core::Error> {
        Ok(session_core::ClearExpired::NotNeeded)
    }
}

#[tokio::test]
async fn a_key_that_cannot_be_sent_is_a_500_not_a_panic() {
    let service = app(
        &layer(Arc::new(UnsendableKeyStore), config()),
        |session| async move {
            session.insert("a", "b").await.unwrap();
            ok()
        },
    );
    let response = send(&service, None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookies(&response).is_empty());
    assert!(matches!(
        response
            .extensions()
            .get::<SessionFailure>()
            .unwrap()
            .error(),
        session_middleware::Error::UnsendableCookieValue
    ));
}

#[tokio::test]
async fn a_throttled_sliding_expiry_resaves_an_unmodified_session_only_once_the_fraction_has_passed()
 {
    let store = Arc::new(InstrumentedStore::default());
    // Saved now, with the default two-week age.
    let key = existing_session(store.clone(), &[("a", "b")]).await;
    let cookie = format!("sessionid={key}");
    let config = SessionConfig {
        save_every_request: true,
        refresh_fraction: 0.5,
        ..config()
    };
    let saved_at = time::OffsetDateTime::now_utc();
    for (later, resaved) in [
        (time::Duration::hours(1), false),
        (time::Duration::days(6), false),
        (time::Duration::days(8), true),
    ] {
        let saves = store.saves.load(Ordering::SeqCst);
        let layer = SessionLayer::new(store.clone(), &config)
            .unwrap()
            .with_clock(move || saved_at + later);
        let service = app(&layer, |_session| async move { ok() });
        let response = send(&service, Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            store.saves.load(Ordering::SeqCst) - saves,
            usize::from(resaved),
            "{later}"
        );
        assert_eq!(
            set_cookies(&response).len(),
            usize::from(resaved),
            "{later}"
        );
        // Loaded to decide, so varied on the cookie either way.
        assert_eq!(vary(&response).as_deref(), Some("Cookie"));
    }
}

#[tokio::test]
async fn under_a_throttled_sliding_expiry_a_modified_session_is_still_saved_every_time() {
    let store = Arc::new(InstrumentedStore::default());
    let key = existing_session(store.clone(), &[("a", "b")]).await;
    let config = SessionConfig {
        save_every_request: true,
        refresh_fraction: 0.5,
        ..config()
    };
    let layer = SessionLayer::new(store.clone(), &config).unwrap();
    let service = app(&layer, |session| async move {
        session.insert("visits", &1).await.unwrap();
        ok()
    });
    let saves = store.saves.load(Ordering::SeqCst);
    let response = send(&service, Some(&format!("sessionid={key}"))).await;
    assert_eq!(store.saves.load(Ordering::SeqCst) - saves, 1);
    assert_eq!(set_cookies(&response).len(), 1);
}

#[test]
fn a_shared_store_is_held_as_it_is_not_wrapped_in_another_arc() {
    let store: Arc<dyn SessionStore> = Arc::new(session_core::MemoryStore::new());
    let layer = SessionLayer::new(Arc::clone(&store), &config()).unwrap();
    // Wrapped again, every store call would box its future twice.
    assert!(Arc::ptr_eq(layer.store(), &store));
    let own = SessionLayer::new(session_core::MemoryStore::new(), &config()).unwrap();
    assert_eq!(own.store().kind(), "memory");
}
