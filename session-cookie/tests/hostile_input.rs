//! Hostile cookies reaching the signed-cookie store, where the key *is* the signed data: forged,
//! truncated, oversized, deeply nested or compressed tokens, and timestamps at the extremes.
//!
//! The outcome is always a session without data (`load` gives `None`) and never a panic or a hang;
//! only a validly signed, fresh token of a dict loads.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::{Arc, mpsc};
use std::time::Duration;

use session_cookie::{CookieError, CookieStore, MAX_COOKIE_SIZE};
use session_core::codec::SIGNED_COOKIES_SALT;
use session_core::{
    Dict, Error, SaveMode, SecretKey, Session, SessionConfig, SessionKey, SessionRecord,
    SessionStore, Value,
};
use session_signing::{TimestampSigner, b64_encode};
use time::OffsetDateTime;

const SECRET: &str = "django_tests_secret_key";
const LIMIT: Duration = Duration::from_secs(20);
/// Parsing the nesting limit's worth of levels needs up to 1.5 MiB of stack in unoptimized builds
/// (see session-core's tests/hostile_input.rs); 256 KiB is plenty when optimized.
const SMALL_STACK: usize = if cfg!(debug_assertions) {
    2 * 1024 * 1024
} else {
    256 * 1024
};

fn store() -> CookieStore {
    CookieStore::new(&SessionConfig::new(SECRET)).unwrap()
}

fn signer() -> TimestampSigner {
    TimestampSigner::new(SecretKey::from(SECRET)).with_salt(SIGNED_COOKIES_SALT)
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Loads `token` through the store on a small-stack thread, failing on a hang; `None` when the
/// token is not even a valid session key (too long), which the session treats as no cookie.
fn load(token: String) -> Option<Option<Dict>> {
    let (done, result) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let outcome = SessionKey::from_client(&token)
                .map(|key| runtime.block_on(store().load(&key)).unwrap());
            let _ = done.send(outcome);
        })
        .unwrap();
    result.recv_timeout(LIMIT).expect("load finished in time")
}

#[test]
fn broken_tokens_load_no_session() {
    let valid = signer().sign_object_at(br#"{"user":1}"#, false, now());
    assert_eq!(load(valid.clone()).unwrap().unwrap().len(), 1);
    let (body, signature) = valid.rsplit_once(':').unwrap();
    let cases = [
        ("every truncation", None),
        ("empty signature", Some(format!("{body}:"))),
        (
            "signature one short",
            Some(format!("{body}:{}", &signature[1..])),
        ),
        ("signature one long", Some(format!("{valid}A"))),
        ("only separators", Some(":".repeat(SessionKey::MAX_LEN))),
        (
            "separators first",
            Some(format!("{}{valid}", ":".repeat(1000))),
        ),
        (
            "Latin-1 signature",
            Some(format!("{body}:{}", "é".repeat(43))),
        ),
        ("NUL bytes", Some(format!("{valid}\0\0\0"))),
    ];
    for (what, token) in cases {
        match token {
            Some(token) => assert_eq!(load(token), Some(None), "{what}"),
            None => {
                for end in 8..valid.len() {
                    assert_eq!(load(valid[..end].to_owned()), Some(None), "{what}: {end}");
                }
            }
        }
    }
}

#[test]
fn validly_signed_tokens_that_are_not_session_dicts_load_no_session() {
    let nested = [b"[".repeat(100_000), b"]".repeat(100_000)].concat();
    let nested_dicts = format!("{}1{}", "{\"a\":".repeat(300), "}".repeat(300));
    for (what, serialized, compress) in [
        ("a list", b"[1,2,3]".to_vec(), false),
        ("not JSON", b"\xff\xfe\xfd".to_vec(), false),
        ("empty", Vec::new(), false),
        ("100 000 levels, compressed", nested, true),
        ("300 levels of dicts", nested_dicts.into_bytes(), true),
    ] {
        let token = signer().sign_object_at(&serialized, compress, now());
        assert!(
            token.len() <= SessionKey::MAX_LEN,
            "{what}: {}",
            token.len()
        );
        assert_eq!(load(token), Some(None), "{what}");
    }
}

#[test]
fn timestamps_before_1970_are_stale_and_the_far_future_is_fresh_as_in_django() {
    for past in [i64::MIN, -1, 0, now() - 1_209_601] {
        let token = signer().sign_object_at(b"{}", false, past);
        assert_eq!(load(token), Some(None), "{past}");
    }
    // Django checks only that the age does not exceed the cookie age, so a token from the future
    // (signable only with the secret key) stays fresh.
    for future in [now() + 1_000_000, 253_402_300_800, i64::MAX] {
        let token = signer().sign_object_at(b"{}", false, future);
        assert_eq!(load(token), Some(Some(Dict::new())), "{future}");
    }
}

#[test]
fn base62_timestamps_beyond_i64_load_no_session() {
    let plain =
        session_signing::Signer::new(SecretKey::from(SECRET)).with_salt(SIGNED_COOKIES_SALT);
    for stamp in ["AzL8n0Y58m8", "-AzL8n0Y58m9", &"z".repeat(3000), "", "-"] {
        let token = plain.sign(&format!("e30:{stamp}"));
        let loaded = load(token);
        // "-" is Django's quirk for 0 (1970): valid, and stale.
        assert_eq!(loaded, Some(None), "{stamp:?}");
    }
}

#[test]
fn a_cookie_of_ten_thousand_characters_is_no_cookie() {
    let mut token = signer().sign_object_at(br#"{"a":1}"#, false, now());
    token.push_str(&"A".repeat(10_000));
    assert_eq!(load(token), None);
}

#[test]
fn the_largest_bomb_a_cookie_can_carry_loads_within_the_limit() {
    // At Django's compression level a cookie under SessionKey::MAX_LEN carries under 3 MiB, less
    // than the 4 MiB decompression limit: it loads. A larger bomb does not fit in a key at all.
    let mut json = b"{\"a\":\"".to_vec();
    json.resize((5 << 20) / 2 - 2, b' ');
    json.extend_from_slice(b"\"}");
    let token = signer().sign_object_at(&json, true, now());
    assert!(token.len() <= SessionKey::MAX_LEN);
    assert_eq!(load(token).unwrap().unwrap().len(), 1);
    // Even at zlib's best ratio, a stream that inflates past the 4 MiB limit does not fit in a
    // session key, so the limit is never the only defence here.
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut encoder, &vec![b' '; (4 << 20) + 1]).unwrap();
    let payload = format!(".{}", b64_encode(&encoder.finish().unwrap()));
    let token = signer().sign_at(&payload, now());
    assert!(token.len() > SessionKey::MAX_LEN, "{}", token.len());
    assert_eq!(load(token), None);
}

#[tokio::test]
async fn a_session_too_large_for_a_cookie_is_a_typed_error_and_keeps_the_old_cookie() {
    let store = Arc::new(store());
    let config = Arc::new(SessionConfig::new(SECRET));
    let session = Session::new(store.clone(), config.clone(), None);
    session.insert("small", &1).await.unwrap();
    session.save().await.unwrap();
    let saved = session.key().unwrap();
    // Random (incompressible) text larger than a cookie.
    let noise: String = (0..200)
        .map(|_| SessionKey::generate().unwrap().as_str().to_owned())
        .collect();
    session.insert("big", &noise).await.unwrap();
    let error = session.save().await.unwrap_err();
    let Error::Store(inner) = &error else {
        panic!("{error:?}")
    };
    assert!(
        matches!(inner.downcast_ref::<CookieError>(), Some(CookieError::TooLarge { limit, .. }) if *limit == MAX_COOKIE_SIZE),
        "{error}"
    );
    // The session still holds the cookie it had; nothing was half-written.
    assert_eq!(session.key().unwrap(), saved);
    let record_data: Dict = [("big".to_owned(), Value::from(noise.as_str()))]
        .into_iter()
        .collect();
    let direct = store
        .save(
            &saved,
            SessionRecord {
                data: &record_data,
                expires_at: OffsetDateTime::now_utc(),
                expiry_age: 0,
            },
            SaveMode::Update,
        )
        .await;
    assert!(direct.is_err());
}
