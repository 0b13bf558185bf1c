//! The whole `SessionLayer` on hostile `Cookie` headers: raw header bytes, or a validly signed
//! signed-cookie session around arbitrary serializer bytes.
//!
//! Selector bit 0: the store (memory, or the signed-cookie store); bit 1: whether the handler
//! writes to the session; bit 2: raw header bytes, or `sessionid=<validly signed data>`; bit 3:
//! compression of that data.
//!
//! Invariants: no panic; the handler always runs and the response is a 200 (a hostile cookie is
//! an absent session, never a server error); a cookie that did not load never comes back in a
//! `Set-Cookie` (no session fixation).
#![no_main]

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use djsession_fuzz::{NOW, SECRET, split};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use session_cookie::CookieStore;
use session_core::codec::SIGNED_COOKIES_SALT;
use session_core::{MemoryStore, SecretKey, Session, SessionConfig, SessionStore};
use session_middleware::SessionLayer;
use session_middleware::cookie::unquote;
use session_signing::TimestampSigner;
use tower::{Layer, ServiceExt, service_fn};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    config: SessionConfig,
    cookie_layer: SessionLayer,
    cookie_signer: TimestampSigner,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let config = SessionConfig {
            // Long enough that a cookie signed at NOW is never stale, so the fuzzed data decodes.
            cookie_age: 100 * 365 * 24 * 3600,
            ..SessionConfig::new(SECRET)
        };
        let cookie: Arc<dyn SessionStore> =
            Arc::new(CookieStore::new(&config).expect("valid config"));
        let cookie_layer = SessionLayer::new(cookie, &config).expect("valid config");
        Fixture {
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime"),
            cookie_signer: TimestampSigner::new(SecretKey::from(SECRET))
                .with_salt(SIGNED_COOKIES_SALT),
            config,
            cookie_layer,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let (selector, data) = split(data);
    let fixture = fixture();
    let header = if selector & 4 == 0 {
        match HeaderValue::from_bytes(data) {
            Ok(value) => value,
            Err(_) => return,
        }
    } else {
        let token = fixture
            .cookie_signer
            .sign_object_at(data, selector & 8 != 0, NOW);
        HeaderValue::from_str(&format!("{}={token}", fixture.config.cookie_name))
            .expect("a signed token is a valid header value")
    };
    let writes = selector & 2 != 0;
    // A fresh memory store per input: with one shared store, libFuzzer learns a key an earlier
    // input created (from the comparisons below) and sends it back, and that key *should* load.
    let layer = if selector & 1 == 0 {
        let memory: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        &SessionLayer::new(memory, &fixture.config).expect("valid config")
    } else {
        &fixture.cookie_layer
    };
    let service = layer.layer(service_fn(
        move |request: Request<Full<Bytes>>| async move {
            let session = request
                .extensions()
                .get::<Session>()
                .expect("layer")
                .clone();
            let _ = session.get_value("visits").await;
            if writes {
                session.insert("visits", &1).await.expect("insert");
            }
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        },
    ));
    let request = Request::builder()
        .header(COOKIE, header.clone())
        .body(Full::default())
        .expect("request");
    let response = fixture
        .runtime
        .block_on(service.oneshot(request))
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK, "header {header:?}");
    if selector & 1 == 0 {
        // Memory store (empty before this request): an unknown client key is never adopted.
        let sent = String::from_utf8_lossy(header.as_bytes()).into_owned();
        for set_cookie in response.headers().get_all(SET_COOKIE) {
            let set_cookie = set_cookie.to_str().expect("ASCII Set-Cookie");
            let value = set_cookie
                .strip_prefix("sessionid=")
                .and_then(|rest| rest.split(';').next())
                .map(unquote)
                .unwrap_or_default();
            // An empty value is the deletion of the cookie.
            assert!(
                value.is_empty() || !sent.contains(value.as_ref()),
                "the client's key came back: {set_cookie}"
            );
        }
    }
});
