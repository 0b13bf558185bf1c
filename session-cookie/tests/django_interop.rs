//! Cookies minted by real Django 5.2 (`fixtures/django/file-cookie-vectors.json` from
//! `generate_file_cookie.py`, and the `signed_cookie` cases of `signing-vectors.json`) are
//! accepted or refused exactly as Django's signed-cookie backend does at the same cookie age, and
//! we mint byte-identical tokens.
//!
//! The other direction (Django accepting our cookies) is `examples/write_cookies_for_django.rs` plus the
//! generator's `--read-cookies` mode.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value as Json;
use session_cookie::CookieStore;
use session_core::codec::SIGNED_COOKIES_SALT;
use session_core::serializer::SerializerName;
use session_core::value::dicts_identical;
use session_core::{Dict, SecretKey, SessionCodec, SessionConfig, SessionKey, SessionStore, Value};

fn fixture(name: &str) -> Json {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/django")
        .join(name);
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn python_dict(text: &str) -> Dict {
    match SerializerName::Json.serializer().loads_text(text).unwrap() {
        Value::Dict(d) => d,
        other => panic!("not a dict: {other:?}"),
    }
}

fn str_of<'a>(case: &'a Json, field: &str) -> &'a str {
    case[field].as_str().unwrap()
}

/// The moment `seconds` after the epoch.
fn at(seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap())
}

#[tokio::test]
async fn cookies_minted_by_django_are_judged_as_django_judges_them() {
    let vectors = fixture("file-cookie-vectors.json");
    let secret = str_of(&vectors, "secret");
    let cases = vectors["signed_cookies"].as_array().unwrap();
    let (mut accepted, mut refused, mut identical) = (0, 0, 0);
    for case in cases {
        let name = str_of(case, "name");
        let token = str_of(case, "token");
        let signed_at = case["signed_at"].as_i64().unwrap();
        let cookie_age = case["cookie_age"].as_i64().unwrap();
        let fallbacks: Vec<SecretKey> = case["fallback_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| SecretKey::from(k.as_str().unwrap()))
            .collect();
        let data = python_dict(str_of(case, "data_json"));

        // Byte identity: the same data signed at the same second gives Django's token.
        if !case["tampered"].as_bool().unwrap() {
            let signer_config = SessionConfig::new(str_of(case, "signed_with"));
            let codec = SessionCodec::with_token_salt(&signer_config, SIGNED_COOKIES_SALT).unwrap();
            assert_eq!(codec.encode_at(&data, signed_at).unwrap(), token, "{name}");
            identical += 1;
        }

        for check in case["checks"].as_array().unwrap() {
            let age = check["age"].as_i64().unwrap();
            let config = SessionConfig {
                secret_key_fallbacks: fallbacks.clone(),
                cookie_age,
                ..SessionConfig::new(secret)
            };
            // Django judged the cookie `age` seconds after it was signed: so do we.
            let store = CookieStore::new(&config)
                .unwrap()
                .with_clock(move || at(signed_at + age));
            let ours = store.load(&SessionKey::new(token).unwrap()).await.unwrap();
            let django_accepted = !check["modified"].as_bool().unwrap();
            match (&ours, django_accepted) {
                (Some(loaded), true) => {
                    let django = python_dict(str_of(check, "load_json"));
                    assert!(
                        dicts_identical(loaded, &django),
                        "{name} at {age}: {loaded:?}"
                    );
                    accepted += 1;
                }
                (None, false) => refused += 1,
                _ => panic!(
                    "{name} at age {age}: we read {ours:?}, Django accepted={django_accepted}"
                ),
            }
            assert!(
                check["key_kept"].as_bool().unwrap(),
                "Django keeps the key either way"
            );
        }
    }
    println!(
        "{} Django cookies: {accepted} accepted and {refused} refused as Django did, \
         {identical} byte-identical re-signings",
        cases.len()
    );
    assert!(accepted > 0 && refused > 0);
}

/// Django's `cycle_key` 100 s after issuing: the same data re-signed at the new second; our
/// session's `cycle_key` keeps the data and re-signs it.
#[tokio::test]
async fn cycle_key_matches_djangos() {
    let vectors = fixture("file-cookie-vectors.json");
    let cycle = &vectors["cookie_cycle_key"];
    let config = SessionConfig::new(str_of(&vectors, "secret"));
    let codec = SessionCodec::with_token_salt(&config, SIGNED_COOKIES_SALT).unwrap();
    let data = python_dict(str_of(cycle, "data_json"));
    assert_eq!(
        codec
            .encode_at(&data, cycle["cycled_at"].as_i64().unwrap())
            .unwrap(),
        str_of(cycle, "after")
    );

    let signed_at = vectors["signed_at"].as_i64().unwrap();
    let store = std::sync::Arc::new(
        CookieStore::new(&config)
            .unwrap()
            .with_clock(move || at(signed_at + 100)),
    );
    let session = session_core::Session::new(
        store.clone(),
        std::sync::Arc::new(config),
        Some(str_of(cycle, "before")),
    );
    session.cycle_key().await.unwrap();
    let after = session.key().unwrap();
    assert_ne!(after.as_str(), str_of(cycle, "before"));
    assert!(session.modified());
    assert_eq!(store.decode(after.as_str()).unwrap(), data);
}

/// The signed-cookie cases of the shared signing fixture (JSON and MessagePack from Django 5.2,
/// pickle protocols 2-5 from Django 4.2): our load gives what Django's backend `load()` gave.
#[tokio::test]
async fn signing_fixture_cookies_load_as_in_django() {
    let vectors = fixture("signing-vectors.json");
    let mut checked = 0;
    for case in vectors["cases"].as_array().unwrap() {
        if case["kind"] != "signed_cookie" {
            continue;
        }
        let serializer = match str_of(case, "serializer") {
            "json" => SerializerName::Json,
            "msgpack" => SerializerName::MsgPack,
            s if s.starts_with("pickle") => SerializerName::Pickle,
            other => panic!("unknown serializer {other}"),
        };
        let verify = &case["verify"];
        let now = verify["now"].as_f64().unwrap();
        let config = SessionConfig {
            serializer,
            cookie_age: verify["session_cookie_age"].as_i64().unwrap(),
            ..SessionConfig::new(str_of(case, "secret"))
        };
        // The moment Django loaded the cookie, to the nanosecond it recorded.
        let store = CookieStore::new(&config)
            .unwrap()
            .with_clock(move || UNIX_EPOCH + Duration::from_secs_f64(now));
        let ours = store
            .load(&SessionKey::new(str_of(case, "token")).unwrap())
            .await
            .unwrap();
        let expect = &case["expect"];
        if expect["cookie_load_modified"].as_bool().unwrap() {
            assert_eq!(ours, None, "{}", str_of(case, "name"));
        } else {
            let django = python_dict(str_of(expect, "cookie_load_json"));
            let ours = ours.unwrap_or_else(|| panic!("{} refused", str_of(case, "name")));
            assert!(dicts_identical(&ours, &django), "{}", str_of(case, "name"));
        }
        checked += 1;
    }
    println!("{checked} signed-cookie cases of signing-vectors.json");
    assert_eq!(checked, 30);
}
