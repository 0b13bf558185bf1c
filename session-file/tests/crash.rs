//! Writers killed mid-write and disks that fill up never leave a session file half-written.
//!
//! Both tests re-run this test binary as a child process (the `#[ignore]`d `child_*` entry points,
//! selected with an environment variable naming the directory to write in): the kill test kills
//! the child with SIGKILL while it writes, the full-disk test runs it under a file-size limit
//! (`ulimit -f`, with SIGXFSZ ignored so writes fail with EFBIG instead of killing it).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{STRATEGIES, noise};
use session_core::{
    ClearExpired, Dict, Error, SaveMode, SessionCodec, SessionKey, SessionRecord, SessionStore,
    Value,
};
use session_file::{FileError, FileStore, STALE_TEMP_AGE, WriteStrategy};
use time::OffsetDateTime;

const CHILD_DIR: &str = "SESSION_FILE_TEST_CHILD_DIR";
const CHILD_STRATEGY: &str = "SESSION_FILE_TEST_CHILD_STRATEGY";
const CHILD_FIRST: &str = "SESSION_FILE_TEST_CHILD_FIRST";

/// The dict written as version `n`: its number and incompressible noise of a size that varies
/// from about 40 KB to 240 KB, so a write takes long enough to be interrupted.
fn version(n: u64) -> Dict {
    let mut data = Dict::new();
    data.insert("n".to_owned(), Value::from(n as i64));
    let len = 40_000 + (n.wrapping_mul(7919) % 200_000) as usize;
    data.insert("noise".to_owned(), Value::from(noise(len, n)));
    data
}

fn record(data: &Dict) -> SessionRecord<'_> {
    SessionRecord {
        data,
        expires_at: OffsetDateTime::now_utc() + time::Duration::hours(1),
        expiry_age: 3600,
    }
}

fn strategy_named(name: &str) -> WriteStrategy {
    STRATEGIES
        .into_iter()
        .find(|s| format!("{s:?}") == name)
        .unwrap()
}

fn child_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("this is a child process of the crash tests; they run it with {name} set")
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Child of `writer_killed_mid_write_leaves_only_complete_files`: writes sessions until killed.
#[test]
#[ignore = "child process of writer_killed_mid_write_leaves_only_complete_files, which runs it"]
fn child_writer() {
    let dir = child_env(CHILD_DIR);
    let strategy = strategy_named(&child_env(CHILD_STRATEGY));
    let mut n: u64 = child_env(CHILD_FIRST).parse().unwrap();
    runtime().block_on(async move {
        let store = FileStore::builder(&session_conformance::config())
            .directory(dir)
            .write_strategy(strategy)
            .build()
            .await
            .unwrap();
        loop {
            let key = SessionKey::generate().unwrap();
            let data = version(n);
            store
                .save(&key, record(&data), SaveMode::MustCreate)
                .await
                .unwrap();
            n += 1;
            for _ in 0..3 {
                let data = version(n);
                store
                    .save(&key, record(&data), SaveMode::Update)
                    .await
                    .unwrap();
                n += 1;
            }
            if n.is_multiple_of(3) {
                store.delete(&key).await.unwrap();
            }
        }
    });
}

fn random_below(limit: u64) -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    hasher.finish() % limit
}

fn session_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("sessionid") && !n.contains("_out_") && !n.ends_with("_lock"))
        .collect()
}

/// Temporary files, and lock files: a writer killed while holding a session's lock leaves its
/// file (the OS lock itself goes with the process).
fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("_out_") || n.ends_with("_lock"))
        .collect()
}

/// A writer killed with SIGKILL at a random moment, five times per strategy, leaves every session
/// file either absent or complete: each decodes (signature valid) to exactly one of the versions
/// written. Only the placeholder strategy may leave an empty placeholder (read as a session
/// without data, as in Django). Leftover temporary and lock files are removed by clear_expired
/// once old.
#[test]
fn writer_killed_mid_write_leaves_only_complete_files() {
    let config = session_conformance::config();
    let codec = SessionCodec::new(&config).unwrap();
    let exe = std::env::current_exe().unwrap();
    for strategy in STRATEGIES {
        let dir = tempfile::tempdir().unwrap();
        let (mut checked, mut placeholders, mut temps_left) = (0, 0, 0);
        for round in 0..5u64 {
            let mut child = Command::new(&exe)
                .args(["child_writer", "--exact", "--ignored", "--nocapture"])
                .env(CHILD_DIR, dir.path())
                .env(CHILD_STRATEGY, format!("{strategy:?}"))
                .env(CHILD_FIRST, (round * 1_000_000).to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // Wait for the first file of this round, then kill at a random moment.
            let before = session_files(dir.path()).len() + temp_files(dir.path()).len();
            let started = Instant::now();
            while session_files(dir.path()).len() + temp_files(dir.path()).len() <= before {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "the child wrote nothing"
                );
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "the child exited early"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(20 + random_below(200)));
            child.kill().unwrap();
            child.wait().unwrap();
        }
        for name in session_files(dir.path()) {
            let contents = fs::read(dir.path().join(&name)).unwrap();
            if contents.is_empty() {
                assert_eq!(
                    strategy,
                    WriteStrategy::Placeholder,
                    "{name} is empty: only the placeholder strategy leaves placeholders"
                );
                placeholders += 1;
                continue;
            }
            let text = String::from_utf8(contents).unwrap();
            let data = codec
                .try_decode(&text, None)
                .unwrap_or_else(|e| panic!("{name} is not a complete session ({strategy:?}): {e}"));
            let n = data.get("n").and_then(Value::as_i64).unwrap() as u64;
            assert!(
                session_core::value::dicts_identical(&data, &version(n)),
                "{name} holds a damaged version {n}"
            );
            checked += 1;
        }
        assert!(
            checked > 0,
            "{strategy:?}: no session survived to be checked"
        );
        // Leftover temporary and lock files are removed once they are old, and only then.
        temps_left += temp_files(dir.path()).len();
        let store = runtime()
            .block_on(
                FileStore::builder(&config)
                    .directory(dir.path())
                    .write_strategy(strategy)
                    .build(),
            )
            .unwrap();
        assert_eq!(
            runtime().block_on(store.clear_expired()).unwrap(),
            ClearExpired::Removed(0)
        );
        assert_eq!(temp_files(dir.path()).len(), temps_left);
        let old = SystemTime::now() - STALE_TEMP_AGE - Duration::from_secs(1);
        for name in temp_files(dir.path()) {
            fs::File::options()
                .write(true)
                .open(dir.path().join(name))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        runtime().block_on(store.clear_expired()).unwrap();
        assert!(temp_files(dir.path()).is_empty());
        println!(
            "{strategy:?}: {checked} complete session files, {placeholders} placeholders, \
             {temps_left} temporary or lock files left by kills"
        );
    }
}

/// Child of `full_disk_write_is_an_error_not_corruption`: runs under a 32 KB file-size limit.
#[test]
#[ignore = "child process of full_disk_write_is_an_error_not_corruption, which runs it"]
fn child_disk_full() {
    let dir = child_env(CHILD_DIR);
    let strategy = strategy_named(&child_env(CHILD_STRATEGY));
    runtime().block_on(async move {
        let store = FileStore::builder(&session_conformance::config())
            .directory(dir)
            .write_strategy(strategy)
            .build()
            .await
            .unwrap();
        let key = SessionKey::new(child_env(CHILD_FIRST)).unwrap();
        let small = version(0).into_iter().take(1).collect::<Dict>();
        store
            .save(&key, record(&small), SaveMode::MustCreate)
            .await
            .unwrap();
        let big = version(1);
        for mode in [SaveMode::Update, SaveMode::MustCreate] {
            let target = match mode {
                SaveMode::Update => key.clone(),
                SaveMode::MustCreate => SessionKey::generate().unwrap(),
            };
            let err = store.save(&target, record(&big), mode).await.unwrap_err();
            let Error::Store(inner) = &err else {
                panic!("expected a store error, got {err:?}")
            };
            let Some(FileError::Io { source, .. }) = inner.downcast_ref::<FileError>() else {
                panic!("expected an I/O error, got {err:?}")
            };
            // EFBIG: "File too large" (ENOSPC on a really full disk takes the same path).
            assert_eq!(source.raw_os_error(), Some(27), "{err}");
            println!("{mode:?} failed as expected: {err}");
        }
    });
}

/// A write that runs out of space fails with an error naming the file and the cause, and leaves
/// the stored session as it was, with no partial or temporary file.
#[test]
fn full_disk_write_is_an_error_not_corruption() {
    let config = session_conformance::config();
    let codec = SessionCodec::new(&config).unwrap();
    let exe = std::env::current_exe().unwrap();
    for strategy in STRATEGIES {
        let dir = tempfile::tempdir().unwrap();
        let key = SessionKey::generate().unwrap();
        let output = Command::new("sh")
            .arg("-c")
            .arg(r#"trap '' XFSZ; ulimit -f 64 && exec "$0" "$@""#)
            .arg(&exe)
            .args(["child_disk_full", "--exact", "--ignored", "--nocapture"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_STRATEGY, format!("{strategy:?}"))
            .env(CHILD_FIRST, key.as_str())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{strategy:?}: child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("Update failed as expected"), "{stdout}");
        assert!(stdout.contains("MustCreate failed as expected"), "{stdout}");
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            [format!("sessionid{}", key.as_str())],
            "{strategy:?}"
        );
        let stored = fs::read_to_string(dir.path().join(&names[0])).unwrap();
        let data = codec.try_decode(&stored, None).unwrap();
        assert_eq!(data.get("n").and_then(Value::as_i64), Some(0));
    }
}
