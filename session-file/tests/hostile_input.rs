//! Hostile input reaching the file store: keys that look like paths or are too long for a file
//! name, and session files whose contents (or kind) an attacker with access to the directory
//! controls: non-UTF-8 bytes, oversized files, signed decompression bombs, FIFOs, symlinks.
//!
//! Each store lives in `<sandbox>/store`; after every case the sandbox must hold nothing but that
//! directory, so nothing was ever created outside it. Every case runs under a time limit.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use session_core::config::SESSION_KEY_SALT;
use session_core::{
    Dict, Error, SaveMode, SecretKey, Session, SessionConfig, SessionKey, SessionRecord,
    SessionStore, Value,
};
use session_file::{FileError, FileStore};
use session_signing::{TimestampSigner, b64_encode};
use time::OffsetDateTime;

const SECRET: &str = "django_tests_secret_key";
const MIB: usize = 1 << 20;
const LIMIT: Duration = Duration::from_secs(20);

struct Sandbox {
    root: tempfile::TempDir,
    store: FileStore,
}

impl Sandbox {
    async fn new() -> Sandbox {
        let root = tempfile::tempdir().unwrap();
        let directory = root.path().join("store");
        std::fs::create_dir(&directory).unwrap();
        let store = FileStore::builder(&SessionConfig::new(SECRET))
            .directory(&directory)
            .fsync(false)
            .build()
            .await
            .unwrap();
        Sandbox { root, store }
    }

    fn dir(&self) -> &Path {
        self.store.directory()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Nothing outside the store's directory, and exactly `expected` inside it.
    fn assert_contains_only(&self, expected: &[&str]) {
        assert_eq!(
            Self::names(self.root.path()),
            ["store"],
            "a file escaped the store"
        );
        assert_eq!(Self::names(self.dir()), expected);
    }
}

async fn timed<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {LIMIT:?}"))
}

fn record(data: &Dict) -> SessionRecord<'_> {
    SessionRecord {
        data,
        expires_at: OffsetDateTime::now_utc() + time::Duration::hours(1),
        expiry_age: 3600,
    }
}

fn one_entry() -> Dict {
    let mut data = Dict::new();
    data.insert("user", Value::from(1i64));
    data
}

const PATH_LIKE: [&str; 10] = [
    "../../../../tmp/escaped",
    "/etc/passwd",
    "abcdefgh/../../x",
    "..\\..\\windows\\win.ini",
    "abcdefgh\0ijklmnop",
    "abcdefgh/",
    "........",
    "ABCDEFGHIJKLMNOP",
    "abcdéfghijklmnop",
    "sessionidabcdefgh_out_abcdefgh",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_like_keys_touch_nothing_and_cannot_be_created() {
    let sandbox = Sandbox::new().await;
    let store = &sandbox.store;
    let data = one_entry();
    for text in PATH_LIKE {
        let key = SessionKey::new(text).unwrap();
        assert!(
            matches!(store.file_path(&key), Err(FileError::InvalidKey { .. })),
            "{text:?}"
        );
        timed(text, async {
            assert_eq!(store.load(&key).await.unwrap(), None, "{text:?}");
            assert!(!store.exists(&key).await.unwrap(), "{text:?}");
            store.delete(&key).await.unwrap();
            let created = store.save(&key, record(&data), SaveMode::MustCreate).await;
            assert!(
                matches!(&created, Err(Error::Store(_))),
                "{text:?}: {created:?}"
            );
            let updated = store.save(&key, record(&data), SaveMode::Update).await;
            assert!(
                matches!(updated, Err(Error::SessionDeleted)),
                "{text:?}: {updated:?}"
            );
        })
        .await;
        sandbox.assert_contains_only(&[]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_too_long_for_a_file_name_are_refused_like_path_like_keys() {
    let sandbox = Sandbox::new().await;
    let store = &sandbox.store;
    let data = one_entry();
    for len in [210, 255, 1000, SessionKey::MAX_LEN] {
        let key = SessionKey::new("a".repeat(len)).unwrap();
        assert!(key.is_generated_form());
        assert!(store.file_path(&key).is_err(), "{len}");
        assert_eq!(store.load(&key).await.unwrap(), None);
        assert!(!store.exists(&key).await.unwrap());
        store.delete(&key).await.unwrap();
        let created = store.save(&key, record(&data), SaveMode::MustCreate).await;
        assert!(
            matches!(created, Err(Error::Store(_))),
            "{len}: {created:?}"
        );
    }
    // The longest that fits (255 - "sessionid" - "_out_" - 32 random characters) works.
    let longest = SessionKey::new("a".repeat(209)).unwrap();
    store
        .save(&longest, record(&data), SaveMode::MustCreate)
        .await
        .unwrap();
    assert_eq!(store.load(&longest).await.unwrap(), Some(data));
    let name = format!("sessionid{}", "a".repeat(209));
    sandbox.assert_contains_only(&[name.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_offered_a_ten_thousand_character_key_saves_under_a_fresh_file() {
    let sandbox = Sandbox::new().await;
    let store = Arc::new(sandbox.store.clone());
    let config = Arc::new(SessionConfig::new(SECRET));
    for offered in ["a".repeat(10_000), "../".repeat(3_000)] {
        let session = Session::new(store.clone(), config.clone(), Some(&offered));
        assert_eq!(session.len().await.unwrap(), 0);
        session.insert("a", &1).await.unwrap();
        session.save().await.unwrap();
        let key = session.key().unwrap();
        assert!(key.is_generated_form() && key.as_str().len() == 32);
        assert!(
            sandbox
                .dir()
                .join(format!("sessionid{}", key.as_str()))
                .is_file()
        );
    }
    assert_eq!(Sandbox::names(sandbox.root.path()), ["store"]);
}

// ---------------------------------------------------------------------------------------------
// Hostile session files: the key is fine, the file is not.

fn generated() -> SessionKey {
    SessionKey::generate().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_utf8_and_non_ascii_files_are_empty_sessions_and_are_kept() {
    let sandbox = Sandbox::new().await;
    let store = &sandbox.store;
    for contents in [
        &b"\xff\xfe\xfd\xfc"[..],
        b"\x00\x00\x00\x00",
        "e30:1r31eq:é".as_bytes(),
        b"eyJhIjoxfQ:1r31eq:\x80",
    ] {
        let key = generated();
        let path = store.file_path(&key).unwrap();
        std::fs::write(&path, contents).unwrap();
        let loaded = timed("load", store.load(&key)).await.unwrap();
        assert_eq!(loaded, Some(Dict::new()), "{contents:?}");
        // Reading never rewrites or removes what is there.
        assert_eq!(std::fs::read(&path).unwrap(), contents);
        // An update replaces it cleanly.
        store
            .save(&key, record(&one_entry()), SaveMode::Update)
            .await
            .unwrap();
        assert_eq!(store.load(&key).await.unwrap(), Some(one_entry()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_larger_than_any_session_is_an_empty_session_without_reading_it() {
    let sandbox = Sandbox::new().await;
    let store = &sandbox.store;
    let key = generated();
    let path = store.file_path(&key).unwrap();
    // Larger than 4/3 of the 4 MiB decompression limit: no valid session is that long.
    std::fs::write(&path, vec![b'a'; 64 * MIB]).unwrap();
    let loaded = timed("load", store.load(&key)).await.unwrap();
    assert_eq!(loaded, Some(Dict::new()));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 64 * MIB as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validly_signed_decompression_bomb_in_a_file_is_an_empty_session() {
    let sandbox = Sandbox::new().await;
    let store = &sandbox.store;
    // 1 GiB of spaces inside a JSON string, deflated to about 1 MB and signed with the store's key.
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    {
        use std::io::Write as _;
        encoder.write_all(b"{\"a\":\"").unwrap();
        let chunk = vec![b' '; MIB];
        for _ in 0..1024 {
            encoder.write_all(&chunk).unwrap();
        }
        encoder.write_all(b"\"}").unwrap();
    }
    let compressed = encoder.finish().unwrap();
    let signer = TimestampSigner::new(SecretKey::from(SECRET)).with_salt(SESSION_KEY_SALT);
    let token = signer.sign_at(&format!(".{}", b64_encode(&compressed)), 1_700_000_000);
    assert!(token.len() < 4 * MIB, "{} bytes", token.len());
    let key = generated();
    std::fs::write(store.file_path(&key).unwrap(), &token).unwrap();
    let loaded = timed("load", store.load(&key)).await.unwrap();
    assert_eq!(loaded, Some(Dict::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_under_a_session_name_is_no_session() {
    let sandbox = Sandbox::new().await;
    let store = &sandbox.store;
    let key = generated();
    std::fs::create_dir(store.file_path(&key).unwrap()).unwrap();
    assert_eq!(timed("load", store.load(&key)).await.unwrap(), None);
    assert!(!store.exists(&key).await.unwrap());
    assert!(timed("clear", store.clear_expired()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_under_a_session_name_never_writes_through_to_its_target() {
    let sandbox = Sandbox::new().await;
    let store = &sandbox.store;
    // The target is outside the store, in the sandbox.
    let outside = sandbox.root.path().join("outside.txt");
    std::fs::write(&outside, b"precious").unwrap();
    let key = generated();
    let link = store.file_path(&key).unwrap();
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    // It reads as a corrupt session (the target is not a signed session).
    assert_eq!(store.load(&key).await.unwrap(), Some(Dict::new()));
    // Updating replaces the link itself; deleting removes the link.
    store
        .save(&key, record(&one_entry()), SaveMode::Update)
        .await
        .unwrap();
    assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
    store.delete(&key).await.unwrap();
    assert_eq!(std::fs::read(&outside).unwrap(), b"precious");
}

#[cfg(target_os = "linux")]
/// Opens the FIFO for writing without blocking (it fails at once when no reader waits), which
/// releases a reader stuck in `open`, so the runtime can shut down whatever the outcome.
fn unblock_readers(fifo: &Path) {
    use std::os::unix::fs::OpenOptionsExt as _;
    const O_NONBLOCK: i32 = 0o4000; // Linux
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(O_NONBLOCK)
        .open(fifo);
}

/// Regression (found by this file): anyone who can create files in the store's directory (by
/// default the OS temporary directory, shared by every local user, as in Django) could hang every
/// load of a key, and `clear_expired`, with a FIFO under the session's file name, since opening a
/// FIFO for reading blocks until a writer appears. A FIFO, like a directory, is no session.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_under_a_session_name_is_no_session_and_does_not_hang() {
    let sandbox = Sandbox::new().await;
    let store = &sandbox.store;
    let key = generated();
    let path = store.file_path(&key).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let loaded = tokio::time::timeout(Duration::from_secs(5), store.load(&key)).await;
    unblock_readers(&path);
    assert!(
        matches!(loaded, Ok(Ok(None))),
        "loading a key whose file is a FIFO: {loaded:?}"
    );
    let cleared = tokio::time::timeout(Duration::from_secs(5), store.clear_expired()).await;
    unblock_readers(&path);
    assert!(matches!(cleared, Ok(Ok(_))), "clear_expired: {cleared:?}");
}
