//! Django's file-backend tests (`FileSessionTests`), and the file store's own guarantees: file
//! format, key checks, expiry decisions, placeholders, `clear_expired`, full disks.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{STRATEGIES, TempStore, noise};
use session_core::{
    ClearExpired, Dict, Error, Expiry, SaveMode, Session, SessionCodec, SessionConfig, SessionKey,
    SessionRecord, SessionStore, Value,
};
use session_file::{FileError, FileStore, STALE_TEMP_AGE, WriteStrategy};
use time::OffsetDateTime;

fn config() -> SessionConfig {
    session_conformance::config()
}

fn session(store: &TempStore, config: &SessionConfig, key: Option<&str>) -> Session {
    Session::new(Arc::new(store.store.clone()), Arc::new(config.clone()), key)
}

fn dict(pairs: &[(&str, Value)]) -> Dict {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn record(data: &Dict) -> SessionRecord<'_> {
    SessionRecord {
        data,
        expires_at: OffsetDateTime::now_utc() + time::Duration::hours(1),
        expiry_age: 3600,
    }
}

fn set_mtime(path: &Path, at: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

fn ago(seconds: u64) -> SystemTime {
    SystemTime::now() - Duration::from_secs(seconds)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn key(text: &str) -> SessionKey {
    SessionKey::new(text).unwrap()
}

/// Django's `test_configuration_check`: a directory that does not exist is a configuration error
/// naming the path and the setting to change.
#[tokio::test]
async fn configuration_check() {
    let missing = "/if/this/directory/exists/you/have/a/weird/computer";
    let err = FileStore::new(missing, &config()).await.unwrap_err();
    assert!(
        matches!(err, FileError::StorageDirectory { ref path, .. } if path == Path::new(missing))
    );
    let message = err.to_string();
    assert!(message.contains(missing), "{message}");
    assert!(message.contains("doesn't exist"), "{message}");
    assert!(message.contains("SESSION_FILE_PATH"), "{message}");

    let not_a_dir = tempfile::NamedTempFile::new().unwrap();
    let err = FileStore::new(not_a_dir.path(), &config())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is not a directory"), "{err}");

    // An invalid session configuration is reported as such, not as a directory problem.
    let dir = tempfile::tempdir().unwrap();
    let err = FileStore::new(dir.path(), &SessionConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FileError::Config(Error::Config(_))),
        "{err:?}"
    );
}

/// A directory the process cannot write to is refused when the store is built, not at the first
/// request.
#[tokio::test]
async fn configuration_check_refuses_a_read_only_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o500)).unwrap();
    if fs::File::create(dir.path().join("probe")).is_ok() {
        // root ignores directory permissions.
        println!("skipped configuration_check_refuses_a_read_only_directory: running as root");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        return;
    }
    let err = FileStore::new(dir.path(), &config()).await.unwrap_err();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    assert!(err.to_string().contains("is not writable"), "{err}");
}

/// Without a directory, the OS temporary directory is used, as in Django.
#[tokio::test]
async fn default_directory_is_the_os_temp_dir() {
    let store = FileStore::builder(&config()).build().await.unwrap();
    assert_eq!(
        store.directory(),
        std::path::absolute(std::env::temp_dir()).unwrap()
    );
}

/// Django's `test_invalid_key_backslash`.
#[tokio::test]
async fn invalid_key_backslash() {
    let store = TempStore::new(&config(), None).await;
    // Django's own key, "a\\b\\c", is shorter than 8 characters: no session can even hold it.
    assert!(SessionKey::new("a\\b\\c").is_err());
    let err = store.store.file_path(&key("a\\b\\c\\defgh")).unwrap_err();
    assert!(matches!(err, FileError::InvalidKey { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("invalid characters in session key")
    );
}

/// Django's `test_invalid_key_forwardslash`.
#[tokio::test]
async fn invalid_key_forwardslash() {
    let store = TempStore::new(&config(), None).await;
    assert!(SessionKey::new("a/b/c").is_err());
    let err = store.store.file_path(&key("a/b/c/defgh")).unwrap_err();
    assert!(matches!(err, FileError::InvalidKey { .. }), "{err:?}");
}

/// Keys that could reach outside the directory are rejected before any filesystem call: they
/// load nothing, exist nowhere, delete nothing and cannot be created or updated.
#[tokio::test]
async fn traversal_keys_never_touch_the_filesystem() {
    let config = config();
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("store");
    fs::create_dir(&dir).unwrap();
    // A directory named like a session file prefix, so "sessionidevil/../../victimkey1" would
    // resolve to a real file outside the store.
    fs::create_dir(dir.join("sessionidevil")).unwrap();
    let victim = outer.path().join("victimkey1");
    let encoded = SessionCodec::new(&config)
        .unwrap()
        .encode(&dict(&[("secret", Value::from("victim"))]))
        .unwrap();
    fs::write(&victim, &encoded).unwrap();
    let store = FileStore::new(&dir, &config).await.unwrap();
    assert_eq!(
        fs::read_to_string(dir.join("sessionidevil/../../victimkey1")).unwrap(),
        encoded,
        "the traversal path does reach the victim"
    );

    let data = dict(&[("x", Value::from(1i64))]);
    for bad in [
        "evil/../../victimkey1",
        "evil\\..\\..\\victimkey1",
        "../../../../etc/passwd",
        "abcdefgh\0/../x",
        "..........",
        "ABCDEFGHIJKL",
        "abcd_efghijk",
    ] {
        let bad = key(bad);
        assert_eq!(store.load(&bad).await.unwrap(), None, "{bad:?}");
        assert!(!store.exists(&bad).await.unwrap(), "{bad:?}");
        store.delete(&bad).await.unwrap();
        assert!(matches!(
            store.save(&bad, record(&data), SaveMode::Update).await,
            Err(Error::SessionDeleted)
        ));
        let err = store
            .save(&bad, record(&data), SaveMode::MustCreate)
            .await
            .unwrap_err();
        let Error::Store(inner) = err else {
            panic!("expected a store error, got {err:?}")
        };
        assert!(matches!(
            inner.downcast_ref::<FileError>(),
            Some(FileError::InvalidKey { .. })
        ));
    }
    assert_eq!(fs::read_to_string(&victim).unwrap(), encoded);
    assert_eq!(names_in(&dir), ["sessionidevil"]);
}

/// A session presenting a bad key in its cookie gets a fresh key when it saves, as in Django.
#[tokio::test]
async fn bad_cookie_key_is_replaced_on_save() {
    let config = config();
    let store = TempStore::new(&config, None).await;
    let s = session(&store, &config, Some("../../../etc/passwd"));
    s.insert("a", "b").await.unwrap();
    s.save().await.unwrap();
    let key = s.key().unwrap();
    assert!(key.is_generated_form() && key.as_str().len() == 32);
    assert_eq!(
        names_in(store.dir.path()),
        [format!("sessionid{}", key.as_str())]
    );
}

/// The file is what Django writes: named `<cookie name><key>`, holding exactly the signed string
/// (ASCII, no newline), readable and writable by the owner only.
#[tokio::test]
async fn session_files_are_djangos_files() {
    for cookie_name in ["sessionid", "myapp_sid"] {
        let config = SessionConfig {
            cookie_name: cookie_name.to_owned(),
            ..config()
        };
        let store = TempStore::new(&config, None).await;
        let s = session(&store, &config, None);
        s.insert("zoë", &vec![1, 2, 3]).await.unwrap();
        s.save().await.unwrap();
        let key = s.key().unwrap();
        let name = format!("{cookie_name}{}", key.as_str());
        assert_eq!(names_in(store.dir.path()), std::slice::from_ref(&name));
        let path = store.dir.path().join(&name);
        let contents = fs::read(&path).unwrap();
        assert!(contents.is_ascii() && !contents.ends_with(b"\n"));
        let text = String::from_utf8(contents).unwrap();
        assert_eq!(text.matches(':').count(), 2, "payload:timestamp:signature");
        let codec = SessionCodec::new(&config).unwrap();
        assert_eq!(
            codec.try_decode(&text, None).unwrap(),
            dict(&[(
                "zoë",
                Value::List(vec![1i64.into(), 2i64.into(), 3i64.into()])
            )])
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

/// Every strategy leaves exactly the session files behind: no temporary files, no placeholders.
#[tokio::test]
async fn writes_leave_no_temporary_files() {
    let config = config();
    for strategy in STRATEGIES {
        let store = TempStore::new(&config, Some(strategy)).await;
        let s = session(&store, &config, None);
        s.insert("n", &1).await.unwrap();
        s.save().await.unwrap();
        for n in 2..5 {
            s.insert("n", &n).await.unwrap();
            s.save().await.unwrap();
        }
        s.cycle_key().await.unwrap();
        let key = s.key().unwrap();
        assert_eq!(
            names_in(store.dir.path()),
            [format!("sessionid{}", key.as_str())],
            "{strategy:?}"
        );
        let again = session(&store, &config, Some(key.as_str()));
        assert_eq!(
            again.get::<i64>("n").await.unwrap(),
            Some(4),
            "{strategy:?}"
        );
    }
}

/// Django's `test_clearsessions_command`, with `SESSION_COOKIE_AGE = 0`: a session with
/// `set_expiry(3600)` is kept, one with `set_expiry(-3600)` and one without expiry are removed.
/// (Django keeps the first because it never expires integer expiries; we keep it because it was
/// written less than 3600 s ago. The result is the same.)
#[tokio::test]
async fn clearsessions_command() {
    let config = SessionConfig {
        cookie_age: 0,
        ..config()
    };
    let store = TempStore::new(&config, None).await;
    let count = || {
        names_in(store.dir.path())
            .iter()
            .filter(|n| n.starts_with("sessionid"))
            .count()
    };
    for expiry in [Some(3600), Some(-3600), None] {
        let s = session(&store, &config, None);
        s.insert("foo", "bar").await.unwrap();
        if let Some(seconds) = expiry {
            s.set_expiry(Expiry::Seconds(seconds)).await.unwrap();
        }
        s.save().await.unwrap();
    }
    assert_eq!(count(), 3);
    assert_eq!(
        store.clear_expired().await.unwrap(),
        ClearExpired::Removed(2)
    );
    assert_eq!(count(), 1);
}

/// Our deliberate difference: a numeric `_session_expiry` counts from the file's last write, so
/// an idle session expires (Django would keep serving it forever) and `clear_expired` removes it.
#[tokio::test]
async fn numeric_expiry_counts_from_the_last_write_unlike_django() {
    let config = config();
    let store = TempStore::new(&config, None).await;
    let s = session(&store, &config, None);
    s.insert("foo", "bar").await.unwrap();
    s.set_expiry(Expiry::Seconds(300)).await.unwrap();
    s.save().await.unwrap();
    let key = s.key().unwrap();
    let path = store.store.file_path(&key).unwrap();

    set_mtime(&path, ago(299));
    assert!(
        store.load(&key).await.unwrap().is_some(),
        "idle 299 s of 300"
    );
    set_mtime(&path, ago(301));
    assert_eq!(store.load(&key).await.unwrap(), None, "idle 301 s of 300");
    assert_eq!(
        store.clear_expired().await.unwrap(),
        ClearExpired::Removed(1)
    );
    assert!(!path.exists());
}

/// Without a per-session expiry (or with "browser close"), a file lives for the cookie age after
/// its last write; an ISO expiry is absolute, whatever the file's age.
#[tokio::test]
async fn expiry_follows_djangos_rules_for_dates_and_the_cookie_age() {
    let config = SessionConfig {
        cookie_age: 1000,
        ..config()
    };
    let store = TempStore::new(&config, None).await;
    let store = &store;
    let config = &config;
    let saved = |expiry: Expiry| async move {
        let s = session(store, config, None);
        s.insert("k", "v").await.unwrap();
        s.set_expiry(expiry).await.unwrap();
        s.save().await.unwrap();
        let key = s.key().unwrap();
        (store.store.file_path(&key).unwrap(), key)
    };
    for expiry in [Expiry::Default, Expiry::BrowserClose] {
        let (path, key) = saved(expiry).await;
        set_mtime(&path, ago(999));
        assert!(store.load(&key).await.unwrap().is_some(), "{expiry:?}");
        set_mtime(&path, ago(1001));
        assert_eq!(store.load(&key).await.unwrap(), None, "{expiry:?}");
    }
    let (path, key) = saved(Expiry::In(time::Duration::days(30))).await;
    set_mtime(&path, ago(10_000_000));
    assert!(store.load(&key).await.unwrap().is_some(), "date ahead");
    let (path, key) = saved(Expiry::In(time::Duration::seconds(-1))).await;
    set_mtime(&path, SystemTime::now());
    assert_eq!(store.load(&key).await.unwrap(), None, "date passed");
}

/// Loading an expired session writes nothing (Django deletes the file and creates a new empty
/// one): the file reads as absent, the session drops its key, and the directory is unchanged.
#[tokio::test]
async fn loading_an_expired_session_writes_nothing() {
    let config = config();
    let store = TempStore::new(&config, None).await;
    let s = session(&store, &config, None);
    s.insert("foo", "bar").await.unwrap();
    s.save().await.unwrap();
    let key = s.key().unwrap();
    let path = store.store.file_path(&key).unwrap();
    set_mtime(&path, ago(config.cookie_age as u64 + 1));
    let snapshot = || {
        (
            names_in(store.dir.path()),
            fs::read(&path).unwrap(),
            fs::metadata(&path).unwrap().modified().unwrap(),
        )
    };
    let before = snapshot();

    let again = session(&store, &config, Some(key.as_str()));
    assert_eq!(again.get_value("foo").await.unwrap(), None);
    assert_eq!(again.key(), None);
    assert_eq!(store.load(&key).await.unwrap(), None);
    assert!(
        store.exists(&key).await.unwrap(),
        "the file stays until cleared"
    );
    assert_eq!(snapshot(), before);
}

/// An update of an expired file fails (and does not revive it), even though the file is still
/// there.
#[tokio::test]
async fn updating_an_expired_file_fails() {
    let config = config();
    for strategy in STRATEGIES {
        let store = TempStore::new(&config, Some(strategy)).await;
        let s = session(&store, &config, None);
        s.insert("foo", "bar").await.unwrap();
        s.save().await.unwrap();
        let key = s.key().unwrap();
        let path = store.store.file_path(&key).unwrap();
        set_mtime(&path, ago(config.cookie_age as u64 + 1));
        s.insert("foo", "baz").await.unwrap();
        assert!(matches!(s.save().await, Err(Error::SessionDeleted)));
        assert_eq!(store.load(&key).await.unwrap(), None, "{strategy:?}");
    }
}

/// An empty file is a creation placeholder (Django's exclusive create leaves one for a moment):
/// the key is taken, and it reads as a session without data, as in Django, until the cookie age
/// has passed; then clear_expired removes it.
#[tokio::test]
async fn empty_placeholder_is_an_existing_session_without_data() {
    let config = config();
    let store = TempStore::new(&config, None).await;
    let key = SessionKey::generate().unwrap();
    let path = store.dir.path().join(format!("sessionid{}", key.as_str()));
    fs::write(&path, b"").unwrap();

    assert!(store.exists(&key).await.unwrap());
    assert_eq!(store.load(&key).await.unwrap(), Some(Dict::new()));
    let data = dict(&[("a", Value::from(1i64))]);
    assert!(matches!(
        store.save(&key, record(&data), SaveMode::MustCreate).await,
        Err(Error::CreateConflict)
    ));
    let s = session(&store, &config, Some(key.as_str()));
    assert_eq!(s.len().await.unwrap(), 0);
    assert_eq!(s.key().as_ref(), Some(&key), "the key is kept");

    let stale = store.dir.path().join(format!(
        "sessionid{}",
        SessionKey::generate().unwrap().as_str()
    ));
    fs::write(&stale, b"").unwrap();
    set_mtime(&stale, ago(config.cookie_age as u64 + 1));
    assert_eq!(
        store.clear_expired().await.unwrap(),
        ClearExpired::Removed(1)
    );
    assert!(path.exists() && !stale.exists());
}

/// clear_expired removes expired session files and temporary files older than
/// [`STALE_TEMP_AGE`] (left by killed writers, ours or Django's), counts only the sessions, and
/// leaves everything else alone however old it is.
#[tokio::test]
async fn clear_expired_removes_stale_temporary_files_and_leaves_foreign_files_alone() {
    let config = config();
    let store = TempStore::new(&config, None).await;
    let dir = store.dir.path();
    let live = session(&store, &config, None);
    live.insert("a", "b").await.unwrap();
    live.save().await.unwrap();
    let live_name = format!("sessionid{}", live.key().unwrap().as_str());

    let old = ago(config.cookie_age as u64 * 10);
    let foreign = [
        "other",
        "sessionid",
        "sessionidshort",
        "sessionidABCDEFGHIJKL",
        "sessionidabcdefghijkl.bak",
        "sessionid_out_abc",
        "mysessionidabcdefghijkl",
    ];
    for name in foreign {
        fs::write(dir.join(name), b"not a session").unwrap();
        set_mtime(&dir.join(name), old);
    }
    fs::create_dir(dir.join("sessionidabcdefghijklmnop")).unwrap();
    let stale_ours = format!(
        "{live_name}_out_{}",
        SessionKey::generate().unwrap().as_str()
    );
    let stale_djangos = "sessionidabcdefghijkl_out_k2j_h4g5";
    let fresh_temp = format!(
        "{live_name}_out_{}",
        SessionKey::generate().unwrap().as_str()
    );
    for name in [stale_ours.as_str(), stale_djangos, fresh_temp.as_str()] {
        fs::write(dir.join(name), b"partial").unwrap();
    }
    for name in [stale_ours.as_str(), stale_djangos] {
        set_mtime(
            &dir.join(name),
            SystemTime::now() - STALE_TEMP_AGE - Duration::from_secs(1),
        );
    }
    set_mtime(
        &dir.join(&fresh_temp),
        SystemTime::now() - STALE_TEMP_AGE + Duration::from_secs(60),
    );

    assert_eq!(
        store.clear_expired().await.unwrap(),
        ClearExpired::Removed(0)
    );
    let mut expected: Vec<String> = foreign.iter().map(|s| (*s).to_owned()).collect();
    expected.extend([
        "sessionidabcdefghijklmnop".to_owned(),
        live_name,
        fresh_temp,
    ]);
    expected.sort();
    assert_eq!(names_in(dir), expected);
}

/// A file whose contents do not verify is a corrupt session: present, empty, and expiring by its
/// modification time, so clear_expired eventually removes it (as Django's clearsessions does).
#[tokio::test]
async fn corrupt_files_read_as_empty_sessions() {
    let config = config();
    let store = TempStore::new(&config, None).await;
    for contents in [
        &b"bad:encoded:value"[..],
        b"\xff\xfe not ascii",
        b"no separator",
    ] {
        let key = SessionKey::generate().unwrap();
        let path = store.dir.path().join(format!("sessionid{}", key.as_str()));
        fs::write(&path, contents).unwrap();
        assert_eq!(store.load(&key).await.unwrap(), Some(Dict::new()));
        set_mtime(&path, ago(config.cookie_age as u64 + 1));
        assert_eq!(store.load(&key).await.unwrap(), None);
    }
    assert_eq!(
        store.clear_expired().await.unwrap(),
        ClearExpired::Removed(3)
    );
}

/// Sessions too large to be read back are refused at save time, keeping the stored version.
#[tokio::test]
async fn sessions_too_large_to_read_back_are_not_written() {
    let config = SessionConfig {
        max_decompressed_size: 3000,
        ..config()
    };
    let store = TempStore::new(&config, None).await;
    let s = session(&store, &config, None);
    s.insert("small", "value").await.unwrap();
    s.save().await.unwrap();
    let key = s.key().unwrap();
    let before = fs::read(store.store.file_path(&key).unwrap()).unwrap();
    // Incompressible, so the encoded form really is large.
    let noise = noise(20_000, 1);
    s.insert("big", &noise).await.unwrap();
    let err = s.save().await.unwrap_err();
    let Error::Store(inner) = &err else {
        panic!("expected a store error, got {err:?}")
    };
    assert!(
        matches!(
            inner.downcast_ref::<FileError>(),
            Some(FileError::TooLarge { limit: 5024, .. })
        ),
        "{err}"
    );
    assert_eq!(
        fs::read(store.store.file_path(&key).unwrap()).unwrap(),
        before
    );
    assert_eq!(names_in(store.dir.path()).len(), 1);
}

/// With fsync off (for tmpfs), everything works the same.
#[tokio::test]
async fn fsync_can_be_turned_off() {
    let config = config();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        FileStore::builder(&config)
            .directory(dir.path())
            .fsync(false)
            .build()
            .await
            .unwrap(),
    );
    let s = Session::new(store.clone(), Arc::new(config.clone()), None);
    s.insert("a", "b").await.unwrap();
    s.save().await.unwrap();
    let key = s.key().unwrap();
    assert_eq!(
        store.load(&key).await.unwrap(),
        Some(dict(&[("a", Value::from("b"))]))
    );
}

/// This machine's temporary directory supports the strongest strategy, and the builder picks
/// it.
#[tokio::test]
async fn the_strongest_supported_strategy_is_picked() {
    let store = TempStore::new(&config(), None).await;
    assert_eq!(store.store.write_strategy(), WriteStrategy::RenameExchange);
}

/// Every entry of `dir` with its contents and modification time, then the directory's own
/// modification time (which any created, renamed or removed entry changes).
fn snapshot(dir: &Path) -> (Vec<(String, String, SystemTime)>, SystemTime) {
    let entries = names_in(dir)
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let contents = String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned();
            let modified = fs::metadata(&path).unwrap().modified().unwrap();
            (name, contents, modified)
        })
        .collect();
    (entries, fs::metadata(dir).unwrap().modified().unwrap())
}

fn is_read_only_refusal(result: Result<(), Error>) -> bool {
    match result {
        Err(Error::Store(inner)) => matches!(
            inner.downcast_ref::<FileError>(),
            Some(FileError::ReadOnly { .. })
        ),
        _ => false,
    }
}

/// A read-only store (for inspecting sessions) creates, changes and removes nothing: not when
/// it is built (no write-strategy probe), not when it loads expired, corrupt or placeholder
/// files, and it refuses every write before touching anything.
#[tokio::test]
async fn read_only_stores_leave_the_directory_untouched() {
    let config = config();
    let writable = TempStore::new(&config, None).await;
    let dir = writable.dir.path();
    let data = dict(&[("a", Value::from("b"))]);
    let [live, expired, forged, placeholder] = [(); 4].map(|_| SessionKey::generate().unwrap());
    for key in [&live, &expired] {
        writable
            .save(key, record(&data), SaveMode::MustCreate)
            .await
            .unwrap();
    }
    let expired_at = ago(u64::try_from(config.cookie_age).unwrap() + 60);
    set_mtime(&writable.store.file_path(&expired).unwrap(), expired_at);
    fs::write(
        writable.store.file_path(&forged).unwrap(),
        "e30:1r31eq:forged",
    )
    .unwrap();
    fs::write(writable.store.file_path(&placeholder).unwrap(), "").unwrap();
    let stale_temp = dir.join(format!("sessionid{}_out_k2j_h4g5", live.as_str()));
    fs::write(&stale_temp, "left by a killed writer").unwrap();
    set_mtime(&stale_temp, ago(STALE_TEMP_AGE.as_secs() + 60));
    // In the past, so any change to the directory shows however coarse the clock.
    fs::File::open(dir).unwrap().set_modified(ago(600)).unwrap();
    let before = snapshot(dir);

    let store = FileStore::builder(&config)
        .directory(dir)
        .read_only(true)
        .build()
        .await
        .unwrap();
    assert!(store.is_read_only());
    assert!(!writable.store.is_read_only());
    assert_eq!(store.load(&live).await.unwrap(), Some(data.clone()));
    assert_eq!(store.load(&expired).await.unwrap(), None);
    assert!(store.exists(&expired).await.unwrap());
    assert_eq!(store.load(&forged).await.unwrap(), Some(Dict::new()));
    assert_eq!(store.load(&placeholder).await.unwrap(), Some(Dict::new()));

    let fresh = SessionKey::generate().unwrap();
    for (mode, key) in [(SaveMode::MustCreate, &fresh), (SaveMode::Update, &live)] {
        let saved = store.save(key, record(&data), mode).await.map(drop);
        assert!(is_read_only_refusal(saved), "{mode:?}");
    }
    assert!(is_read_only_refusal(store.delete(&live).await));
    assert!(is_read_only_refusal(store.clear_expired().await.map(drop)));

    assert_eq!(snapshot(dir), before);
    // The same directory through a writable store does change: the check can see changes.
    writable.store.clear_expired().await.unwrap();
    assert_ne!(snapshot(dir), before);
}

/// Opening a missing directory read-only is the usual configuration error, and creates nothing.
#[tokio::test]
async fn read_only_stores_do_not_create_a_missing_directory() {
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("sessions");
    let err = FileStore::builder(&config())
        .directory(&missing)
        .read_only(true)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err, FileError::StorageDirectory { ref path, .. } if path == &missing),
        "{err:?}"
    );
    assert!(err.to_string().contains("doesn't exist"), "{err}");
    assert!(!missing.exists());
    assert!(names_in(parent.path()).is_empty());
}
