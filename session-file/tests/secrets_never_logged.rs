//! Secrets and session keys never appear in the file store's `Debug`/`Display` output or logs.
//!
//! Every `tracing` event of every thread (the store logs from tokio's blocking pool) is captured
//! with all its fields (`session_conformance::logs::all_threads`).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use session_conformance::logs;
use session_core::{
    Dict, SaveMode, SecretKey, SessionConfig, SessionKey, SessionRecord, SessionStore, Value,
};
use session_file::FileStore;
use time::OffsetDateTime;

const PRIMARY: &str = "S3CRET-primary-4f9a1c02e7";
const FALLBACK: &str = "S3CRET-fallback-7b2e0d93aa";

fn config() -> SessionConfig {
    SessionConfig {
        secret_key_fallbacks: vec![SecretKey::from(FALLBACK)],
        ..SessionConfig::new(PRIMARY)
    }
}

fn record(data: &Dict) -> SessionRecord<'_> {
    SessionRecord {
        data,
        expires_at: OffsetDateTime::now_utc() + time::Duration::hours(1),
        expiry_age: 3600,
    }
}

/// Drives the store through its success and failure paths; returns everything rendered (Debug
/// and Display of the store and its errors, then the log lines) and the session keys involved.
async fn exercise() -> (Vec<String>, Vec<String>) {
    let logs = logs::all_threads();
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::builder(&config())
        .directory(dir.path())
        .fsync(false)
        .build()
        .await
        .unwrap();
    let mut rendered = vec![
        format!("{store:?}"),
        format!("{:?}", FileStore::builder(&config())),
    ];
    let mut keys = Vec::new();
    let data: Dict = [("user".to_owned(), Value::from(1i64))]
        .into_iter()
        .collect();

    // A normal session.
    let key = SessionKey::generate().unwrap();
    store
        .save(&key, record(&data), SaveMode::MustCreate)
        .await
        .unwrap();
    store.load(&key).await.unwrap();
    keys.push(key.as_str().to_owned());

    // A corrupt file (forged, then not ASCII): Django's security warning.
    for contents in [&b"e30:1r31eq:forged"[..], b"\xff\xfe"] {
        let key = SessionKey::generate().unwrap();
        std::fs::write(store.file_path(&key).unwrap(), contents).unwrap();
        store.load(&key).await.unwrap();
        keys.push(key.as_str().to_owned());
    }

    // Failures: a directory under a session's name cannot be removed, replaced or created.
    let key = SessionKey::generate().unwrap();
    std::fs::create_dir(store.file_path(&key).unwrap()).unwrap();
    for error in [
        store.delete(&key).await.err(),
        store
            .save(&key, record(&data), SaveMode::MustCreate)
            .await
            .err(),
        store
            .save(&key, record(&data), SaveMode::Update)
            .await
            .err(),
    ]
    .into_iter()
    .flatten()
    {
        rendered.push(format!("{error} / {error:?}"));
    }
    keys.push(key.as_str().to_owned());

    // A session name that cannot even be opened (a symlink to itself): the load fails, and
    // clear_expired logs that it skipped the file.
    #[cfg(unix)]
    {
        let key = SessionKey::generate().unwrap();
        let path = store.file_path(&key).unwrap();
        std::os::unix::fs::symlink(&path, &path).unwrap();
        let error = store.load(&key).await.unwrap_err();
        rendered.push(format!("{error} / {error:?}"));
        keys.push(key.as_str().to_owned());
    }
    store.clear_expired().await.unwrap();

    // Refusals: a key that cannot name a file, a session too large, a read-only store.
    let key = SessionKey::new("NOT-A-FILE-NAME-0123").unwrap();
    let error = store
        .save(&key, record(&data), SaveMode::MustCreate)
        .await
        .unwrap_err();
    rendered.push(format!("{error} / {error:?}"));
    keys.push(key.as_str().to_owned());
    let key = SessionKey::generate().unwrap();
    let small = FileStore::builder(&SessionConfig {
        max_decompressed_size: 100,
        ..config()
    })
    .directory(dir.path())
    .build()
    .await
    .unwrap();
    // Random text, so compression cannot bring it under the limit.
    let noise: String = (0..125)
        .map(|_| SessionKey::generate().unwrap().as_str().to_owned())
        .collect();
    let huge: Dict = [("blob".to_owned(), Value::from(noise))]
        .into_iter()
        .collect();
    let error = small
        .save(&key, record(&huge), SaveMode::MustCreate)
        .await
        .unwrap_err();
    rendered.push(format!("{error} / {error:?}"));
    let read_only = FileStore::builder(&config())
        .directory(dir.path())
        .read_only(true)
        .build()
        .await
        .unwrap();
    rendered.push(format!("{read_only:?}"));
    let error = read_only
        .save(&key, record(&data), SaveMode::MustCreate)
        .await
        .unwrap_err();
    rendered.push(format!("{error} / {error:?}"));
    keys.push(key.as_str().to_owned());

    // A bad configuration, and a missing directory.
    let error = FileStore::builder(&SessionConfig::new(""))
        .directory(dir.path())
        .build()
        .await
        .unwrap_err();
    rendered.push(format!("{error} / {error:?}"));
    let error = FileStore::new(dir.path().join("missing"), &config())
        .await
        .unwrap_err();
    rendered.push(format!("{error} / {error:?}"));

    // Every line so far (another test's too: more lines can only make the checks stricter).
    rendered.extend(logs.lines());
    (rendered, keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_keys_appear_in_no_debug_display_or_log_output() {
    let (rendered, _) = exercise().await;
    assert!(
        rendered
            .iter()
            .any(|l| l.contains("Session data corrupted")),
        "the corrupt files were logged (the capture works): {rendered:#?}"
    );
    for line in &rendered {
        for secret in [PRIMARY, FALLBACK] {
            assert!(!line.contains(secret), "a secret leaked: {line}");
        }
    }
}

/// Session keys are credentials: the file store shows the paths of session files (in its
/// "Session data corrupted" warning, in `clear_expired`'s warnings and in every `FileError::Io`)
/// with the key shortened, as `SessionKey`'s `Debug` shows keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_keys_appear_in_no_debug_display_or_log_output() {
    let (rendered, keys) = exercise().await;
    assert!(
        rendered.iter().any(|l| l.contains("could not remove")),
        "the failures were rendered (the check has something to check): {rendered:#?}"
    );
    for line in &rendered {
        for key in &keys {
            assert!(!line.contains(key.as_str()), "a session key leaked: {line}");
        }
    }
}
