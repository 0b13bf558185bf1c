//! Session keys reaching `session_file::FileStore`: arbitrary key text (separators, `..`, NUL,
//! absolute paths, non-ASCII, any length) through path derivation, load, exists, create, update
//! and delete.
//!
//! The store's directory is `<sandbox>/store`. Invariants: no panic; `file_path` is either an
//! error or exactly `<directory>/sessionid<key>` for a `[a-z0-9]` key; after every operation the
//! sandbox holds nothing but the store's directory, the directory holds nothing but session files
//! named `sessionid[a-z0-9]+`, and the path a naive `directory.join(key)` would name was never
//! created.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use djsession_fuzz::{SECRET, split};
use libfuzzer_sys::fuzz_target;
use session_core::{
    Dict, KEY_ALPHABET, SaveMode, SessionConfig, SessionKey, SessionRecord, SessionStore, Value,
};
use session_file::FileStore;
use time::OffsetDateTime;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    sandbox: tempfile::TempDir,
    store: FileStore,
}

const PREFIX: &str = "sessionid";

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let sandbox = tempfile::tempdir().expect("a temporary directory");
        let directory = sandbox.path().join("store");
        std::fs::create_dir(&directory).expect("the store directory");
        let config = SessionConfig::new(SECRET);
        let store = runtime
            .block_on(
                FileStore::builder(&config)
                    .directory(&directory)
                    .fsync(false)
                    .build(),
            )
            .expect("a file store");
        Fixture {
            runtime,
            sandbox,
            store,
        }
    })
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("readable")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

fn check_confined(fixture: &Fixture, key: &str) {
    assert_eq!(
        names(fixture.sandbox.path()),
        ["store"],
        "a file escaped the store (key {key:?})"
    );
    for name in names(fixture.store.directory()) {
        let rest = name.strip_prefix(PREFIX).unwrap_or("");
        assert!(
            !rest.is_empty() && rest.bytes().all(|b| KEY_ALPHABET.contains(&b)),
            "unexpected file {name:?} in the store (key {key:?})"
        );
    }
    if !key.bytes().all(|b| KEY_ALPHABET.contains(&b)) {
        // Where a store that pasted the key into a path would have written.
        let pasted = fixture.store.directory().join(format!("{PREFIX}{key}"));
        assert!(pasted.symlink_metadata().is_err(), "{pasted:?} exists");
    }
}

fuzz_target!(|data: &[u8]| {
    let (selector, data) = split(data);
    let fixture = fixture();
    let text = String::from_utf8_lossy(data);
    let Ok(key) = SessionKey::new(text.as_ref()) else {
        assert!(SessionKey::from_client(&text).is_none());
        return;
    };
    match fixture.store.file_path(&key) {
        Ok(path) => {
            assert!(key.is_generated_form(), "{text:?} named a file");
            assert_eq!(path.parent(), Some(fixture.store.directory()));
            assert_eq!(
                path.file_name().and_then(|n| n.to_str()),
                Some(&*format!("{PREFIX}{text}"))
            );
        }
        Err(_) => assert!(!key.is_generated_form() || text.len() > 255 - PREFIX.len() - 5 - 32),
    }
    let mut data = Dict::new();
    data.insert("k".to_owned(), Value::from("v"));
    let record = SessionRecord {
        data: &data,
        expires_at: OffsetDateTime::from_unix_timestamp(4_000_000_000).expect("a date"),
        expiry_age: 3600,
    };
    let store = &fixture.store;
    fixture.runtime.block_on(async {
        let _ = store.load(&key).await;
        let _ = store.exists(&key).await;
        let mode = if selector & 1 == 0 {
            SaveMode::MustCreate
        } else {
            SaveMode::Update
        };
        if store.save(&key, record, mode).await.is_ok() {
            assert!(key.is_generated_form(), "saved under {text:?}");
            assert_eq!(store.load(&key).await.ok().flatten().as_ref(), Some(&data));
        }
        check_confined(fixture, &text);
        let _ = store.delete(&key).await;
        assert!(
            !store.exists(&key).await.unwrap_or(true),
            "still there after delete: {text:?}"
        );
    });
    check_confined(fixture, &text);
});
