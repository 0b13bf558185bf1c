//! The `merge` and `reject` concurrency policies on the file store: compare-and-swap saves under
//! a per-session lock file, writes by others (another store on the directory, Django's
//! write-then-rename) between a load and a save, and lock files that never pile up.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{STRATEGIES, TempStore};
use session_core::{ConcurrencyPolicy, Error, Session, SessionConfig, SessionStore, Value};
use session_file::{FileStore, WriteStrategy};

fn config(policy: ConcurrencyPolicy) -> Arc<SessionConfig> {
    Arc::new(SessionConfig {
        concurrency: policy,
        ..session_conformance::config()
    })
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Puts `contents` under `path` as Django's file backend writes: a temporary file in the same
/// directory, renamed over the session file. Django takes no lock of ours.
fn django_write(path: &Path, contents: &[u8]) {
    let temp = path.with_file_name(format!(
        "{}_out_djangotmp",
        path.file_name().unwrap().to_str().unwrap()
    ));
    std::fs::write(&temp, contents).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

async fn saved_session(store: &Arc<TempStore>, policy: ConcurrencyPolicy) -> Session {
    let session = Session::new(store.clone(), config(policy), None);
    session.insert("visits", &1).await.unwrap();
    session.save().await.unwrap();
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_by_another_store_between_load_and_save_is_a_conflict_under_reject() {
    for strategy in STRATEGIES {
        let store =
            Arc::new(TempStore::new(&config(ConcurrencyPolicy::Reject), Some(strategy)).await);
        let key = saved_session(&store, ConcurrencyPolicy::Reject)
            .await
            .key()
            .unwrap();
        let ours = Session::new(
            store.clone(),
            config(ConcurrencyPolicy::Reject),
            Some(key.as_str()),
        );
        assert_eq!(ours.get::<i64>("visits").await.unwrap(), Some(1));

        // Another process on the same directory (last-write-wins, as Django) logs the user in.
        let other = FileStore::new(store.dir.path(), &session_conformance::config())
            .await
            .unwrap();
        let theirs = Session::new(
            Arc::new(other),
            config(ConcurrencyPolicy::LastWriteWins),
            Some(key.as_str()),
        );
        theirs.insert("_auth_user_id", "42").await.unwrap();
        theirs.save().await.unwrap();

        ours.insert("cart", &vec![1, 2]).await.unwrap();
        let saved = ours.save().await;
        assert!(
            matches!(saved, Err(Error::Conflict)),
            "{strategy:?}: {saved:?}"
        );
        let stored = store.load(&key).await.unwrap().unwrap();
        assert_eq!(stored.get("_auth_user_id"), Some(&Value::from("42")));
        assert_eq!(stored.get("cart"), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_django_style_write_between_load_and_save_is_merged_under_merge() {
    for strategy in STRATEGIES {
        let store =
            Arc::new(TempStore::new(&config(ConcurrencyPolicy::Merge), Some(strategy)).await);
        let key = saved_session(&store, ConcurrencyPolicy::Merge)
            .await
            .key()
            .unwrap();
        let ours = Session::new(
            store.clone(),
            config(ConcurrencyPolicy::Merge),
            Some(key.as_str()),
        );
        assert_eq!(ours.get::<i64>("visits").await.unwrap(), Some(1));

        // What Django writes for {"_auth_user_id": "42"}: the signed string, renamed into place.
        let scratch = Session::new(store.clone(), config(ConcurrencyPolicy::Merge), None);
        scratch.insert("_auth_user_id", "42").await.unwrap();
        scratch.save().await.unwrap();
        let scratch_key = scratch.key().unwrap();
        let signed = std::fs::read(store.store.file_path(&scratch_key).unwrap()).unwrap();
        store.delete(&scratch_key).await.unwrap();
        django_write(&store.store.file_path(&key).unwrap(), &signed);

        ours.insert("cart", &vec![1, 2]).await.unwrap();
        ours.save().await.unwrap();
        let stored = store.load(&key).await.unwrap().unwrap();
        let keys: Vec<&str> = stored.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["_auth_user_id", "cart"], "{strategy:?}");
    }
}

/// Django re-saving a session unchanged, within the same second, writes the very same bytes;
/// the new file's identity still makes it a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_of_the_same_bytes_is_a_change() {
    let store = Arc::new(TempStore::new(&config(ConcurrencyPolicy::Reject), None).await);
    let key = saved_session(&store, ConcurrencyPolicy::Reject)
        .await
        .key()
        .unwrap();
    let ours = Session::new(
        store.clone(),
        config(ConcurrencyPolicy::Reject),
        Some(key.as_str()),
    );
    assert_eq!(ours.get::<i64>("visits").await.unwrap(), Some(1));
    let path = store.store.file_path(&key).unwrap();
    let same = std::fs::read(&path).unwrap();
    django_write(&path, &same);
    ours.insert("visits", &2).await.unwrap();
    let saved = ours.save().await;
    assert!(matches!(saved, Err(Error::Conflict)), "{saved:?}");
}

/// Many merge saves racing on one session leave only the session file: each save removes its
/// lock file when it releases it, conflicts and deleted sessions included.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_files_do_not_pile_up() {
    for strategy in STRATEGIES {
        let store =
            Arc::new(TempStore::new(&config(ConcurrencyPolicy::Merge), Some(strategy)).await);
        let key = saved_session(&store, ConcurrencyPolicy::Merge)
            .await
            .key()
            .unwrap();
        let mut tasks = Vec::new();
        for tab in 0..8 {
            let (store, key) = (store.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                for n in 0..10i64 {
                    let s = Session::new(
                        store.clone(),
                        config(ConcurrencyPolicy::Merge),
                        Some(key.as_str()),
                    );
                    s.insert(&format!("tab{tab}"), &n).await.unwrap();
                    match s.save().await {
                        Ok(()) | Err(Error::Conflict) => {}
                        Err(other) => panic!("{other:?}"),
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let file = store.store.file_path(&key).unwrap();
        let file = file.file_name().unwrap().to_str().unwrap();
        assert_eq!(names(store.dir.path()), [file], "{strategy:?}");

        // A save onto a deleted session fails and leaves nothing either.
        let late = Session::new(
            store.clone(),
            config(ConcurrencyPolicy::Merge),
            Some(key.as_str()),
        );
        late.insert("late", &1).await.unwrap();
        store.delete(&key).await.unwrap();
        assert!(matches!(late.save().await, Err(Error::SessionDeleted)));
        assert!(names(store.dir.path()).is_empty(), "{strategy:?}");
    }
}

/// A lock file left by a process killed while holding it (the OS released its lock) does not
/// block the next save, which takes it over and removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leftover_lock_file_is_taken_over_and_removed() {
    let store = Arc::new(
        TempStore::new(
            &config(ConcurrencyPolicy::Reject),
            Some(WriteStrategy::HardLink),
        )
        .await,
    );
    let key = saved_session(&store, ConcurrencyPolicy::Reject)
        .await
        .key()
        .unwrap();
    let path = store.store.file_path(&key).unwrap();
    let lock = path.with_file_name(format!(
        "{}_lock",
        path.file_name().unwrap().to_str().unwrap()
    ));
    std::fs::write(&lock, b"").unwrap();
    let s = Session::new(
        store.clone(),
        config(ConcurrencyPolicy::Reject),
        Some(key.as_str()),
    );
    s.insert("visits", &2).await.unwrap();
    s.save().await.unwrap();
    assert!(!lock.exists());
    assert_eq!(
        store.load(&key).await.unwrap().unwrap().get("visits"),
        Some(&Value::from(2))
    );
}

/// A lock file is held for the moment of a save: one that is there while no save runs is
/// left over by a killed process, and clear_expired removes it once it is old (as it does
/// temporary files), never a fresh one.
#[tokio::test]
async fn clear_expired_keeps_fresh_lock_files() {
    let store = TempStore::new(&session_conformance::config(), None).await;
    let lock = store.dir.path().join("sessionidabcdefgh12345678_lock");
    std::fs::write(&lock, b"").unwrap();
    store.clear_expired().await.unwrap();
    assert!(lock.exists());
}
