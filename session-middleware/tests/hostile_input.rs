//! Hostile `Cookie` headers through the whole layer: oversized, non-UTF-8, overlong keys, floods
//! of cookies, pathological quoting, and forged or broken signed-cookie tokens.
//!
//! The outcome is always the same: the handler runs with an absent (empty) session, the response is
//! the handler's 200, an offered cookie is deleted rather than adopted, and a store is never asked
//! about a key the session rules refuse. Memory-heavy cases measure the peak RSS of this process.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use session_conformance::memory::{isolated, peak_growth_mib};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::header::COOKIE;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::Full;
use session_cookie::CookieStore;
use session_core::codec::SIGNED_COOKIES_SALT;
use session_core::{SecretKey, Session, SessionConfig, SessionKey};
use session_signing::TimestampSigner;
use tower::{Service, ServiceExt};

const MIB: usize = 1 << 20;
const LIMIT: Duration = Duration::from_secs(60);

/// What the handler saw of the session.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    key: Option<SessionKey>,
    len: usize,
}

/// Runs one request with `cookie` as its raw `Cookie` header value through a layer over `store`,
/// on its own thread and runtime, failing on a hang; returns the response and what the handler saw.
fn run(
    store: Arc<dyn session_core::SessionStore>,
    config: SessionConfig,
    cookie: HeaderValue,
    writes: bool,
) -> (http::Response<Body>, Seen) {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let seen = Arc::new(Mutex::new(None));
        let record = seen.clone();
        let service = app(&layer(store, config), move |session: Session| {
            let record = record.clone();
            async move {
                let len = session.len().await.unwrap();
                *record.lock().unwrap() = Some(Seen {
                    key: session.key(),
                    len,
                });
                if writes {
                    session.insert("visits", &1).await.unwrap();
                }
                ok()
            }
        });
        let request = Request::builder()
            .header(COOKIE, cookie)
            .body(Full::<Bytes>::default())
            .unwrap();
        let response = runtime.block_on(service.clone().oneshot(request)).unwrap();
        let seen = seen.lock().unwrap().clone().expect("the handler ran");
        let _ = done.send((response, seen));
    });
    result
        .recv_timeout(LIMIT)
        .expect("the request finished in time")
}

fn memory() -> Arc<InstrumentedStore> {
    Arc::new(InstrumentedStore::default())
}

/// Asserts the outcome every hostile cookie must have: a 200, an empty session without a key, the
/// offered cookie deleted (or replaced by a fresh generated key when the handler wrote).
fn assert_absent(response: &http::Response<Body>, seen: &Seen, writes: bool, what: &str) {
    assert_eq!(response.status(), StatusCode::OK, "{what}");
    assert_eq!(seen.len, 0, "{what}");
    let cookies = set_cookies(response);
    assert_eq!(cookies.len(), 1, "{what}: {cookies:?}");
    let value = cookie_value(&cookies[0]);
    if writes {
        assert_generated(&value);
    } else {
        assert_eq!(value, "\"\"", "{what}: the cookie is deleted: {cookies:?}");
    }
}

/// A header value of `len` bytes, `prefix` then `fill`, without an extra copy.
fn big_header(prefix: &str, fill: u8, len: usize) -> HeaderValue {
    let mut bytes = Vec::with_capacity(len);
    bytes.extend_from_slice(prefix.as_bytes());
    bytes.resize(len, fill);
    HeaderValue::from_maybe_shared(Bytes::from(bytes)).unwrap()
}

#[test]
fn a_hundred_megabyte_session_cookie_is_an_absent_session_and_the_store_is_never_asked() {
    if !isolated(
        "a_hundred_megabyte_session_cookie_is_an_absent_session_and_the_store_is_never_asked",
    ) {
        return;
    }
    let store = memory();
    let header = big_header("sessionid=", b'a', 100 * MIB);
    let ((response, seen), growth) =
        peak_growth_mib(|| run(store.clone(), config(), header, false));
    assert_absent(&response, &seen, false, "100 MB cookie");
    assert_eq!(seen.key, None);
    assert_eq!(
        store.calls(),
        0,
        "a key over SessionKey::MAX_LEN never reaches the store"
    );
    // The layer reads an ASCII header in place and keeps only the cookie's value while the
    // request runs: one copy of the 100 MiB header at most, on top of the header itself.
    assert!(growth <= 100 + 16, "peak RSS grew {growth} MiB");
    eprintln!("100 MiB Cookie header: peak RSS +{growth} MiB while handled");
}

#[test]
fn a_hundred_megabyte_header_of_other_cookies_leaves_the_session_alone() {
    if !isolated("a_hundred_megabyte_header_of_other_cookies_leaves_the_session_alone") {
        return;
    }
    let store = memory();
    let header = big_header("other=", b'b', 100 * MIB);
    let ((response, seen), growth) =
        peak_growth_mib(|| run(store.clone(), config(), header, false));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen, Seen { key: None, len: 0 });
    assert!(
        set_cookies(&response).is_empty(),
        "no session cookie was offered"
    );
    assert!(growth <= 2 * 100 + 16, "peak RSS grew {growth} MiB");
}

#[test]
fn ten_megabytes_of_high_latin1_bytes_are_read_and_refused() {
    if !isolated("ten_megabytes_of_high_latin1_bytes_are_read_and_refused") {
        return;
    }
    let store = memory();
    // Each byte 0x80-0xFF becomes a two-byte character when read as Latin-1.
    let header = big_header("sessionid=", 0xe9, 10 * MIB);
    let ((response, seen), growth) = peak_growth_mib(|| run(store.clone(), config(), header, true));
    assert_absent(&response, &seen, true, "10 MB of 0xE9");
    assert_eq!(store.loads.load(Ordering::SeqCst), 0);
    assert!(growth <= 2 * 20 + 16, "peak RSS grew {growth} MiB");
}

#[test]
fn non_utf8_session_cookies_are_latin1_keys_that_load_nothing() {
    for raw in [
        &b"sessionid=\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8"[..],
        b"sessionid=k\xe9y12345678",
        b"sessionid=\"\xff\\377\\000abcdefgh\"",
        b"\xff\xff=\xff; sessionid=\x80\x81\x82\x83\x84\x85\x86\x87",
    ] {
        let store = memory();
        let header = HeaderValue::from_bytes(raw).unwrap();
        let (response, seen) = run(store.clone(), config(), header, false);
        assert_absent(&response, &seen, false, &String::from_utf8_lossy(raw));
        // The key is valid by Django's rule (8+ characters), so the store is asked and finds nothing.
        assert_eq!(store.loads.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn a_ten_thousand_character_key_is_replaced_by_a_fresh_generated_key() {
    let store = memory();
    let offered = "k".repeat(10_000);
    let header = HeaderValue::from_str(&format!("sessionid={offered}")).unwrap();
    let (response, seen) = run(store.clone(), config(), header, true);
    assert_absent(&response, &seen, true, "10 000-character key");
    assert_eq!(store.loads.load(Ordering::SeqCst), 0);
}

#[test]
fn path_like_keys_are_never_adopted() {
    for offered in [
        "../../etc/passwd",
        "/etc/passwd",
        "a/b/c/d/e/f",
        "..\\..\\x\\y",
    ] {
        let store = memory();
        let header = HeaderValue::from_str(&format!("sessionid={offered}")).unwrap();
        let (response, seen) = run(store.clone(), config(), header, true);
        assert_absent(&response, &seen, true, offered);
    }
}

#[test]
fn floods_of_cookies_and_separators_are_handled_in_bounded_time() {
    let many_cookies: String = (0..100_000).map(|i| format!("c{i}=v{i}; ")).collect();
    let cases = [
        format!("{many_cookies}sessionid=short"),
        ";".repeat(1_000_000),
        "=".repeat(1_000_000),
        format!("sessionid=\"{}\"", "\\".repeat(1_000_000)),
        format!("sessionid=\"{}\"", "\\377".repeat(250_000)),
        "sessionid=".repeat(100_000),
    ];
    for header in cases {
        let store = memory();
        let shown: String = header.chars().take(30).collect();
        let (response, seen) = run(
            store.clone(),
            config(),
            HeaderValue::from_str(&header).unwrap(),
            false,
        );
        assert_eq!(response.status(), StatusCode::OK, "{shown}");
        assert_eq!(seen, Seen { key: None, len: 0 }, "{shown}");
    }
}

// ---------------------------------------------------------------------------------------------
// The signed-cookie store, where the cookie is the data.

fn cookie_store() -> Arc<CookieStore> {
    Arc::new(CookieStore::new(&config()).unwrap())
}

fn cookie_signer() -> TimestampSigner {
    TimestampSigner::new(SecretKey::from(SECRET)).with_salt(SIGNED_COOKIES_SALT)
}

/// Django's signed-cookie outcome for a refused cookie: an empty session that keeps the offered
/// key as modified, so the response replaces the cookie with a freshly signed empty session (`{}`
/// is `e30` in base64), never the offered token.
fn assert_refused_cookie(response: &http::Response<Body>, seen: &Seen, offered: &str, what: &str) {
    assert_eq!(response.status(), StatusCode::OK, "{what}");
    assert_eq!(seen.len, 0, "{what}");
    let cookies = set_cookies(response);
    assert_eq!(cookies.len(), 1, "{what}: {cookies:?}");
    let value = cookie_value(&cookies[0]);
    assert!(
        value.starts_with("e30:") && value != offered,
        "{what}: {value}"
    );
}

#[test]
fn forged_broken_and_stale_signed_cookies_are_empty_sessions() {
    let signer = cookie_signer();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let valid = signer.sign_object_at(br#"{"user":1}"#, false, now);
    let (body, signature) = valid.rsplit_once(':').unwrap();
    let cases = [
        ("truncated", valid[..valid.len() - 1].to_owned()),
        ("signature too long", format!("{valid}A")),
        ("empty signature", format!("{body}:")),
        (
            "signature of another length",
            format!("{body}:{}", &signature[..20]),
        ),
        ("many separators", format!("{}{valid}", ":".repeat(1000))),
        (
            "before 1970",
            signer.sign_object_at(br#"{"user":1}"#, false, -1),
        ),
        (
            "i64::MIN",
            signer.sign_object_at(br#"{"user":1}"#, false, i64::MIN),
        ),
        ("not a dict", signer.sign_object_at(b"[1,2,3]", false, now)),
        ("not JSON", signer.sign_object_at(b"\xff\xfe", false, now)),
        (
            "nested too deep",
            signer.sign_object_at(&[b"[".repeat(300), b"]".repeat(300)].concat(), true, now),
        ),
    ];
    for (what, token) in cases {
        let header = HeaderValue::from_str(&format!("sessionid={token}")).unwrap();
        let (response, seen) = run(cookie_store(), config(), header, false);
        assert_refused_cookie(&response, &seen, &token, what);
    }
    // The valid token loads, so the cases above fail for the reason they name.
    let header = HeaderValue::from_str(&format!("sessionid={valid}")).unwrap();
    let (response, seen) = run(cookie_store(), config(), header, false);
    assert_eq!((response.status(), seen.len), (StatusCode::OK, 1));
}

#[test]
fn a_signed_cookie_from_the_far_future_is_accepted_as_django_does() {
    // Only a holder of the secret key can sign one; Django never expires it (age < 0 < max_age).
    let token = cookie_signer().sign_object_at(br#"{"user":1}"#, false, i64::MAX);
    let header = HeaderValue::from_str(&format!("sessionid={token}")).unwrap();
    let (response, seen) = run(cookie_store(), config(), header, false);
    assert_eq!((response.status(), seen.len), (StatusCode::OK, 1));
}

/// A validly signed cookie holding `size` bytes of JSON (one long string), compressed.
fn bomb_cookie(size: usize) -> String {
    let mut json = b"{\"a\":\"".to_vec();
    json.resize(size - 2, b' ');
    json.extend_from_slice(b"\"}");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    cookie_signer().sign_object_at(&json, true, now)
}

#[test]
fn the_largest_bomb_a_cookie_can_carry_inflates_within_bounded_memory() {
    if !isolated("the_largest_bomb_a_cookie_can_carry_inflates_within_bounded_memory") {
        return;
    }
    // At Django's compression level a cookie under SessionKey::MAX_LEN (4096) carries under
    // 3 MiB (3 MiB signs to 4160 bytes): less than the 4 MiB decompression limit, so it loads.
    let token = bomb_cookie(5 * MIB / 2);
    assert!(token.len() <= SessionKey::MAX_LEN, "{} bytes", token.len());
    let header = HeaderValue::from_str(&format!("sessionid={token}")).unwrap();
    let ((response, seen), growth) =
        peak_growth_mib(|| run(cookie_store(), config(), header, false));
    assert_eq!((response.status(), seen.len), (StatusCode::OK, 1));
    assert!(growth < 64, "peak RSS grew {growth} MiB");
    eprintln!(
        "2.5 MiB cookie bomb in {} bytes: peak RSS +{growth} MiB",
        token.len()
    );
}

#[test]
fn a_bomb_cookie_longer_than_a_session_key_is_never_decoded() {
    let token = bomb_cookie(8 * MIB);
    assert!(token.len() > SessionKey::MAX_LEN, "{} bytes", token.len());
    let header = HeaderValue::from_str(&format!("sessionid={token}")).unwrap();
    let (response, seen) = run(cookie_store(), config(), header, false);
    assert_absent(&response, &seen, false, "8 MiB bomb cookie");
}

#[tokio::test]
async fn an_extreme_session_expiry_in_a_validly_signed_cookie_is_a_typed_failure_not_a_panic() {
    // `_session_expiry` = i64::MAX seconds: the cookie's expiry date is beyond what HTTP dates
    // (years 1-9999) can carry. Only a key holder can sign this; the layer must still answer.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = cookie_signer().sign_object_at(
        format!("{{\"_session_expiry\":{},\"a\":1}}", i64::MAX).as_bytes(),
        false,
        now,
    );
    let service = app(
        &layer(cookie_store(), config()),
        |session: Session| async move {
            session.insert("a", &2).await.unwrap();
            ok()
        },
    );
    let request = Request::builder()
        .header(COOKIE, format!("sessionid={token}"))
        .body(Full::<Bytes>::default())
        .unwrap();
    let response = service
        .clone()
        .ready()
        .await
        .unwrap()
        .call(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let failure = response
        .extensions()
        .get::<session_middleware::SessionFailure>()
        .unwrap();
    assert!(
        failure.error().to_string().contains("expir"),
        "{}",
        failure.error()
    );
}
