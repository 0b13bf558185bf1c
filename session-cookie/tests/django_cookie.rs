//! Django's signed-cookie backend tests (`CookieSessionTests`) and the cookie store's own rules:
//! refused cookies, the cookie age, `cycle_key`/`flush`/`delete` through the generic `Session`,
//! and the size limit.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use session_conformance::logs;
use session_cookie::{CookieError, CookieStore, MAX_COOKIE_SIZE};
use session_core::codec::{CORRUPTED_MESSAGE, SIGNED_COOKIES_SALT, SUSPICIOUS_SESSION_TARGET};
use session_core::serializer::SerializerName;
use session_core::{
    ClearExpired, Dict, Error, Expiry, SaveMode, Session, SessionCodec, SessionConfig, SessionKey,
    SessionRecord, SessionStore, Value,
};
use session_signing::{SecretKey, TimestampSigner};
use time::OffsetDateTime;

fn config() -> SessionConfig {
    session_conformance::config()
}

fn session(config: &SessionConfig, key: Option<&str>) -> Session {
    Session::new(
        Arc::new(CookieStore::new(config).unwrap()),
        Arc::new(config.clone()),
        key,
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn dict(pairs: &[(&str, Value)]) -> Dict {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn token_codec(config: &SessionConfig) -> SessionCodec {
    SessionCodec::with_token_salt(config, SIGNED_COOKIES_SALT).unwrap()
}

/// Loads `token` through a session as a request would, capturing what was logged.
fn load_logged(
    config: &SessionConfig,
    token: &str,
) -> (Session, Dict, Vec<session_conformance::logs::LogEvent>) {
    let s = session(config, Some(token));
    let (data, events) = logs::capture(|| runtime().block_on(s.data()));
    (s.clone(), (*data.unwrap()).clone(), events)
}

fn is_security_warning(events: &[session_conformance::logs::LogEvent]) -> bool {
    events.iter().any(|e| {
        e.target == SUSPICIOUS_SESSION_TARGET
            && e.level == tracing::Level::WARN
            && e.message.contains(CORRUPTED_MESSAGE)
    })
}

/// Django's `test_unpickling_exception`: a validly signed cookie whose payload does not decode
/// gives an empty session (never an error), keeps the key and marks the session modified. Django
/// logs nothing; we log the security warning.
#[test]
fn unpickling_exception() {
    let config = config();
    let signer = TimestampSigner::new(SecretKey::from("django_tests_secret_key"))
        .with_salt(SIGNED_COOKIES_SALT);
    // JSON serializer: a payload that is not JSON, and JSON that is not a dict.
    for payload in [&b"b'invalid data'"[..], b"[1, 2, 3]"] {
        let token = signer.sign_object(payload, false);
        let (s, data, events) = load_logged(&config, &token);
        assert_eq!(data, Dict::new());
        assert_eq!(s.key().unwrap().as_str(), token, "the key is kept");
        assert!(s.modified(), "a fresh cookie will be sent");
        assert!(is_security_warning(&events), "{events:?}");
    }
    // Pickle serializer: a pickle that would call os.system is refused, not executed.
    let config = SessionConfig {
        serializer: SerializerName::Pickle,
        ..config
    };
    let evil = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
    let token = signer.sign_object(evil, false);
    let (s, data, events) = load_logged(&config, &token);
    assert_eq!(data, Dict::new());
    assert!(s.modified());
    assert!(is_security_warning(&events), "{events:?}");
}

/// A tampered or foreign cookie reads as an empty session, keeps its key, is marked modified
/// (Django's `create()`), logs the security warning, and the next save sends a fresh token for
/// `{}`: `e30:<timestamp>:<signature>`, as Django's middleware does.
#[test]
fn invalid_cookie_yields_an_empty_modified_session_and_a_fresh_cookie() {
    let config = config();
    let good = token_codec(&config)
        .encode(&dict(&[("hello", Value::from("world"))]))
        .unwrap();
    let other_salt = SessionCodec::new(&config)
        .unwrap()
        .encode(&dict(&[("hello", Value::from("world"))]))
        .unwrap();
    for bad in [
        good.to_uppercase(),
        format!("{good}a"),
        good.replace(':', ""),
        other_salt,
        "not a cookie at all".to_owned(),
    ] {
        let (s, data, events) = load_logged(&config, &bad);
        assert_eq!(data, Dict::new(), "{bad}");
        assert!(s.modified() && s.accessed());
        assert!(
            !s.is_empty(),
            "the key is kept, so the session is not empty"
        );
        assert!(is_security_warning(&events), "{bad}: {events:?}");
        runtime().block_on(s.save()).unwrap();
        let fresh = s.key().unwrap();
        assert!(fresh.as_str().starts_with("e30:"), "{fresh:?}");
        assert_eq!(token_codec(&config).decode(fresh.as_str()), Dict::new());
    }
}

/// Cookies older than the cookie age are refused (Django passes `max_age=SESSION_COOKIE_AGE`), and
/// that is only logged at debug level: stale cookies are normal.
#[test]
fn stale_cookie_is_refused_by_the_cookie_age() {
    let config = SessionConfig {
        cookie_age: 1000,
        ..config()
    };
    let data = dict(&[("hello", Value::from("world"))]);
    let codec = token_codec(&config);
    let fresh = codec.encode_at(&data, now_secs() - 998).unwrap();
    let stale = codec.encode_at(&data, now_secs() - 1001).unwrap();
    let store = CookieStore::new(&config).unwrap();
    assert_eq!(store.decode(&fresh).unwrap(), data);
    assert!(matches!(store.decode(&stale), Err(Error::Signing(ref e)) if e.is_expired()));

    let (s, loaded, events) = load_logged(&config, &stale);
    assert_eq!(loaded, Dict::new());
    assert!(s.modified());
    assert!(!is_security_warning(&events), "{events:?}");
}

/// Per-session expiry is not enforced by this backend (Django ticket #19201): a session whose
/// `set_expiry` date has passed still loads until the cookie age is reached.
#[test]
fn per_session_expiry_is_ignored_as_in_django() {
    let config = config();
    runtime().block_on(async {
        let s = session(&config, None);
        s.insert("foo", "bar").await.unwrap();
        s.set_expiry(Expiry::In(time::Duration::seconds(-10)))
            .await
            .unwrap();
        s.save().await.unwrap();
        let again = session(&config, Some(s.key().unwrap().as_str()));
        assert_eq!(
            again.get::<String>("foo").await.unwrap().as_deref(),
            Some("bar")
        );
    });
}

/// Django's `cycle_key` is `save()`: the same data under a freshly signed token, marked modified.
/// The old token cannot be revoked and still loads (until the cookie age).
#[test]
fn cycle_key_re_signs_the_same_data() {
    let config = config();
    let codec = token_codec(&config);
    runtime().block_on(async {
        let data = dict(&[("b", Value::from("d")), ("a", Value::from("c"))]);
        let old = codec.encode_at(&data, now_secs() - 100).unwrap();
        let s = session(&config, Some(&old));
        s.cycle_key().await.unwrap();
        let new = s.key().unwrap();
        assert_ne!(new.as_str(), old, "a fresh timestamp makes a new token");
        assert_eq!(codec.decode(new.as_str()), data);
        assert_eq!(
            s.items().await.unwrap(),
            data.clone()
                .into_iter()
                .map(|(k, v)| (k.into_string(), v))
                .collect::<Vec<_>>()
        );
        assert!(s.modified());
        let store = CookieStore::new(&config).unwrap();
        assert_eq!(
            store.decode(&old).unwrap(),
            data,
            "issued cookies stay valid"
        );
    });
}

/// Django's `flush`: the data is emptied and the key dropped, so the middleware deletes the cookie.
#[test]
fn flush_empties_the_session_and_drops_the_key() {
    let config = config();
    runtime().block_on(async {
        let s = session(&config, None);
        s.insert("foo", "bar").await.unwrap();
        s.save().await.unwrap();
        let prev = s.key().unwrap();
        let s = session(&config, Some(prev.as_str()));
        assert_eq!(
            s.get::<String>("foo").await.unwrap().as_deref(),
            Some("bar")
        );
        s.flush().await.unwrap();
        assert_eq!(s.key(), None);
        assert!(s.is_empty() && s.modified() && s.accessed());
        assert_eq!(s.len().await.unwrap(), 0);
    });
}

/// Django's `delete()` on this backend: the key becomes None, the data `{}`, and `modified` is set.
#[test]
fn delete_empties_the_session() {
    let config = config();
    runtime().block_on(async {
        let s = session(&config, None);
        s.insert("foo", "bar").await.unwrap();
        s.save().await.unwrap();
        s.set_modified(false);
        s.delete().await.unwrap();
        assert_eq!(s.key(), None);
        assert!(s.modified());
        assert_eq!(s.len().await.unwrap(), 0);
    });
}

/// Django's `test_invalid_key` for this backend: `"1"` is no key, and saving makes a signed `{}`.
#[test]
fn invalid_key_saves_a_signed_empty_dict() {
    let config = config();
    runtime().block_on(async {
        let s = session(&config, Some("1"));
        assert_eq!(s.key(), None);
        s.save().await.unwrap();
        let key = s.key().unwrap();
        assert!(key.as_str().starts_with("e30:"));
        assert_eq!(s.get_value("cat").await.unwrap(), None);
    });
}

/// Nothing lives on the server: `exists` is always false, `delete` is a no-op, nothing to clear.
#[test]
fn nothing_lives_on_the_server() {
    let config = config();
    let store = CookieStore::new(&config).unwrap();
    runtime().block_on(async {
        let data = dict(&[("a", Value::from(1i64))]);
        let record = SessionRecord {
            data: &data,
            expires_at: OffsetDateTime::now_utc(),
            expiry_age: 0,
        };
        let any = SessionKey::generate().unwrap();
        let token = store
            .save(&any, record, SaveMode::MustCreate)
            .await
            .unwrap();
        assert_ne!(token, any, "the key returned is the signed data");
        assert!(!store.exists(&token).await.unwrap());
        store.delete(&token).await.unwrap();
        assert_eq!(store.load(&token).await.unwrap(), Some(data));
        assert_eq!(
            store.clear_expired().await.unwrap(),
            ClearExpired::NotNeeded
        );
    });
}

/// Sessions are compressed when that is shorter, exactly as Django's `signing.dumps(compress=True)`.
#[test]
fn tokens_are_djangos_tokens() {
    let config = config();
    let codec = token_codec(&config);
    // Django 5.2 (spec §4.3): the signed_cookies backend's cookie for {"hello": "world"}.
    assert_eq!(
        codec
            .encode_at(&dict(&[("hello", Value::from("world"))]), 1_700_000_000)
            .unwrap(),
        "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc"
    );
    let compressible = dict(&[("foo", Value::from("bar".repeat(100)))]);
    assert!(codec.encode(&compressible).unwrap().starts_with('.'));
}

fn noise(len: usize) -> String {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[(state % 36) as usize])
        })
        .collect()
}

/// A cookie whose name and value exceed 4096 bytes is refused with a clear error instead of being
/// sent (browsers would drop it): up to the limit saves, past it does not, for several cookie
/// names; the session keeps its previous cookie, which still holds the previous data.
#[test]
fn cookie_over_4096_bytes_is_refused() {
    for cookie_name in ["sessionid", "a_much_longer_session_cookie_name"] {
        let config = SessionConfig {
            cookie_name: cookie_name.to_owned(),
            ..config()
        };
        let store = CookieStore::new(&config).unwrap();
        let (mut largest_ok, mut smallest_refused) = (0, usize::MAX);
        runtime().block_on(async {
            for len in 4000..5500 {
                let data = dict(&[("x", Value::from(noise(len)))]);
                let record = SessionRecord {
                    data: &data,
                    expires_at: OffsetDateTime::now_utc(),
                    expiry_age: 0,
                };
                let key = SessionKey::generate().unwrap();
                match store.save(&key, record, SaveMode::Update).await {
                    Ok(token) => {
                        let size = cookie_name.len() + token.as_str().len();
                        assert!(size <= MAX_COOKIE_SIZE, "{size}");
                        assert_eq!(store.cookie_size(token.as_str()), size);
                        largest_ok = largest_ok.max(size);
                    }
                    Err(Error::Store(inner)) => {
                        let Some(CookieError::TooLarge { size, limit }) = inner.downcast_ref()
                        else {
                            panic!("unexpected error {inner}")
                        };
                        assert_eq!(*limit, MAX_COOKIE_SIZE);
                        assert!(*size > MAX_COOKIE_SIZE, "{size}");
                        assert!(inner.to_string().contains("over the 4096-byte limit"));
                        smallest_refused = smallest_refused.min(*size);
                    }
                    Err(other) => panic!("unexpected error {other}"),
                }
            }
        });
        assert!(
            largest_ok >= MAX_COOKIE_SIZE - 2,
            "{cookie_name}: {largest_ok}"
        );
        assert!(
            smallest_refused <= MAX_COOKIE_SIZE + 2,
            "{cookie_name}: {smallest_refused}"
        );

        // Through a session: the save fails and the session still holds its previous cookie.
        runtime().block_on(async {
            let s = session(&config, None);
            s.insert("small", "value").await.unwrap();
            s.save().await.unwrap();
            let before = s.key().unwrap();
            s.insert("big", &noise(5000)).await.unwrap();
            let err = s.save().await.unwrap_err();
            assert!(err.to_string().contains("was not saved"), "{err}");
            assert_eq!(s.key(), Some(before.clone()));
            let again = session(&config, Some(before.as_str()));
            assert_eq!(again.keys().await.unwrap(), ["small"]);
        });
    }
}
