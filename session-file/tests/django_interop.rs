//! Session files written by real Django 5.2 (`fixtures/django/file-cookie-vectors.json`, made by
//! `fixtures/django/generate_file_cookie.py`) are recreated in a temporary directory, aged by
//! setting their modification time, and read by the file store: it must find what Django's
//! `load()` found at the same age, except where we differ on purpose (a numeric
//! `_session_expiry` expires here; Django never expires it).
//!
//! The other direction (Django reading our files) is `examples/write_files_for_django.rs` plus the
//! generator's `--read-files` mode; see the crate README section in `lib.rs`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::Value as Json;
use session_core::serializer::SerializerName;
use session_core::value::dicts_identical;
use session_core::{
    ClearExpired, Dict, SessionCodec, SessionConfig, SessionKey, SessionStore, Value,
};
use session_file::FileStore;

fn vectors() -> Json {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/django/file-cookie-vectors.json");
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// Python's `json.dumps` text (NaN, big ints, key order) as a session dict.
fn python_dict(text: &str) -> Dict {
    match SerializerName::Json.serializer().loads_text(text).unwrap() {
        Value::Dict(d) => d,
        other => panic!("not a dict: {other:?}"),
    }
}

fn str_of<'a>(case: &'a Json, field: &str) -> &'a str {
    case[field].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_written_by_django_are_read_as_django_reads_them() {
    let vectors = vectors();
    assert_eq!(
        vectors["django"]
            .as_str()
            .unwrap()
            .split('.')
            .take(2)
            .collect::<Vec<_>>(),
        ["5", "2"]
    );
    let cases = vectors["file_sessions"].as_array().unwrap();
    let (mut checks, mut differences) = (0, 0);
    for case in cases {
        let name = str_of(case, "name");
        let config = SessionConfig {
            cookie_name: str_of(case, "cookie_name").to_owned(),
            cookie_age: case["cookie_age"].as_i64().unwrap(),
            ..SessionConfig::new(str_of(&vectors, "secret"))
        };
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path(), &config).await.unwrap();
        let key = SessionKey::new(str_of(case, "key")).unwrap();
        let path = dir.path().join(str_of(case, "file_name"));
        assert_eq!(store.file_path(&key).unwrap(), path, "{name}: file naming");
        let contents = str_of(case, "contents");
        let saved = python_dict(str_of(case, "data_json"));
        if !contents.is_empty() && !case["tampered"].as_bool().unwrap() {
            let codec = SessionCodec::new(&config).unwrap();
            let decoded = codec.try_decode(contents, None).unwrap();
            assert!(
                dicts_identical(&decoded, &saved),
                "{name}: contents decode to the dict"
            );
        }
        fs::write(&path, contents).unwrap();

        let int_expiry = saved
            .get("_session_expiry")
            .and_then(Value::as_i64)
            .filter(|_| case["int_expiry_quirk"].as_bool().unwrap());
        let mut last_live = true;
        for check in case["checks"].as_array().unwrap() {
            let age = check["age"].as_u64().unwrap();
            fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(SystemTime::now() - Duration::from_secs(age))
                .unwrap();
            let django_live = check["key_kept"].as_bool().unwrap();
            let django_loaded = python_dict(str_of(check, "load_json"));
            let ours = store.load(&key).await.unwrap();
            let expect_live = match int_expiry {
                // Our documented difference: the number counts from the last write.
                Some(seconds) if age as i64 >= seconds => {
                    assert!(django_live, "{name}: Django keeps numeric expiries forever");
                    differences += 1;
                    false
                }
                _ => django_live,
            };
            match (&ours, expect_live) {
                (Some(data), true) => assert!(
                    dicts_identical(data, &django_loaded),
                    "{name} at age {age}: we read {data:?}, Django {django_loaded:?}"
                ),
                (None, false) => {}
                _ => panic!("{name} at age {age}: we read {ours:?}, Django live={django_live}"),
            }
            last_live = expect_live;
            checks += 1;
        }
        // clear_expired agrees with the last verdict.
        let removed = store.clear_expired().await.unwrap();
        assert_eq!(
            removed,
            ClearExpired::Removed(u64::from(!last_live)),
            "{name}"
        );
        assert_eq!(path.exists(), last_live, "{name}");
    }
    println!(
        "{} Django files, {checks} load verdicts checked ({differences} documented differences)",
        cases.len()
    );
    assert!(cases.len() >= 15 && differences > 0);
}

/// Django's files are updated in place by us (atomically) and stay Django's format: an update of
/// a Django-written file keeps the name, mode and encoding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_written_by_django_can_be_updated() {
    let vectors = vectors();
    let case = vectors["file_sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "auth-login")
        .unwrap();
    let config = SessionConfig::new(str_of(&vectors, "secret"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(str_of(case, "file_name"));
    fs::write(&path, str_of(case, "contents")).unwrap();
    let store = std::sync::Arc::new(FileStore::new(dir.path(), &config).await.unwrap());
    let session = session_core::Session::new(
        store.clone(),
        std::sync::Arc::new(config.clone()),
        Some(str_of(case, "key")),
    );
    assert_eq!(
        session
            .get::<String>("_auth_user_id")
            .await
            .unwrap()
            .as_deref(),
        Some("42")
    );
    session.insert("cart", &vec!["apple"]).await.unwrap();
    session.save().await.unwrap();
    assert_eq!(session.key().unwrap().as_str(), str_of(case, "key"));
    let text = fs::read_to_string(&path).unwrap();
    let data = SessionCodec::new(&config)
        .unwrap()
        .try_decode(&text, None)
        .unwrap();
    assert_eq!(
        data.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
        [
            "_auth_user_id",
            "_auth_user_backend",
            "_auth_user_hash",
            "cart"
        ]
    );
}
