//! The `merge` and `reject` concurrency policies on every database: the compare-and-swap sees
//! every other writer (a last-write-wins save of ours, SQL run by hand, real Django), tells a
//! conflict from a deleted or expired session, compares bytes whatever the collation, and fills
//! a custom model's columns. The shared behaviours are in `conformance.rs`; these are what only a
//! database shows.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{CustomSession, Db, Raw, TestDb, TestStore, custom_config, store_in};
use session_conformance::{config, services};
use session_core::{
    ConcurrencyPolicy, Dict, Error, Session, SessionConfig, SessionKey, SessionStore, SharedRecord,
    Value,
};
use session_db::{ColumnValue, DjangoSession, SqliteStore};
use time::{Duration, OffsetDateTime};

macro_rules! on_every_database {
    ($($test:ident),* $(,)?) => {
        on_every_database!(@db sqlite, sqlx::Sqlite, Sqlite, "sqlite"; $($test),*);
        on_every_database!(@db postgres, sqlx::Postgres, Postgres, "postgres"; $($test),*);
        on_every_database!(@db mysql, sqlx::MySql, MySql, "mysql"; $($test),*);
    };
    (@db $module:ident, $db:ty, $kind:ident, $feature:literal; $($test:ident),*) => {
        #[cfg(feature = $feature)]
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test::<$db>(super::Db::$kind, stringify!($test)).await;
                }
            )*
        }
    };
}

on_every_database!(
    a_row_another_writer_changed_after_our_load_is_a_conflict_under_reject,
    a_row_another_writer_changed_after_our_load_is_merged_under_merge,
    session_data_rewritten_by_hand_is_a_conflict,
    rewriting_identical_data_within_one_second_still_changes_the_version,
    a_stored_text_differing_only_in_case_or_trailing_space_is_a_conflict,
    a_deleted_or_expired_row_is_session_deleted_and_never_reinserted,
    consecutive_saves_of_one_request_each_succeed_under_reject,
    a_custom_models_columns_follow_a_compare_and_swap,
);

async fn django_store<B: Raw>(kind: Db, test: &str) -> Option<Arc<TestStore<B, DjangoSession>>> {
    let db = TestDb::or_skip(kind, test)?;
    Some(Arc::new(
        store_in::<B, _>(db, DjangoSession, &config()).await,
    ))
}

fn under(policy: ConcurrencyPolicy) -> Arc<SessionConfig> {
    Arc::new(SessionConfig {
        concurrency: policy,
        ..config()
    })
}

fn session<S: SessionStore + 'static>(
    store: &Arc<S>,
    policy: ConcurrencyPolicy,
    key: Option<&str>,
) -> Session {
    Session::new(store.clone(), under(policy), key)
}

/// A session saved (last-write-wins) with `pairs`, and its key.
async fn saved_with<S: SessionStore + 'static>(
    store: &Arc<S>,
    pairs: &[(&str, i64)],
) -> SessionKey {
    let s = session(store, ConcurrencyPolicy::LastWriteWins, None);
    for (k, v) in pairs {
        s.insert(*k, v).await.unwrap();
    }
    s.save().await.unwrap();
    s.key().unwrap()
}

fn dict(pairs: &[(&str, i64)]) -> Dict {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect()
}

fn record(pairs: &[(&str, i64)]) -> SharedRecord {
    SharedRecord {
        data: Arc::new(dict(pairs)),
        expires_at: OffsetDateTime::now_utc() + Duration::hours(1),
        expiry_age: 3600,
    }
}

fn keys(data: &Dict) -> Vec<&str> {
    data.keys().map(|k| k.as_str()).collect()
}

async fn a_row_another_writer_changed_after_our_load_is_a_conflict_under_reject<B: Raw>(
    kind: Db,
    test: &str,
) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    let key = saved_with(&store, &[("n", 1)]).await;
    let ours = session(&store, ConcurrencyPolicy::Reject, Some(key.as_str()));
    assert_eq!(ours.get::<i64>("n").await.unwrap(), Some(1));

    // Another request (Django's own policy) saves in between.
    let other = session(&store, ConcurrencyPolicy::LastWriteWins, Some(key.as_str()));
    other.insert("other", &2).await.unwrap();
    other.save().await.unwrap();

    ours.insert("mine", &3).await.unwrap();
    assert!(matches!(ours.save().await, Err(Error::Conflict)));
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(
        keys(&stored),
        ["n", "other"],
        "the rejected save changed the row"
    );
}

async fn a_row_another_writer_changed_after_our_load_is_merged_under_merge<B: Raw>(
    kind: Db,
    test: &str,
) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    let key = saved_with(&store, &[("n", 1), ("gone", 0)]).await;
    let ours = session(&store, ConcurrencyPolicy::Merge, Some(key.as_str()));
    assert_eq!(ours.get::<i64>("n").await.unwrap(), Some(1));

    let other = session(&store, ConcurrencyPolicy::LastWriteWins, Some(key.as_str()));
    other.insert("other", &2).await.unwrap();
    other.insert("n", &10).await.unwrap();
    other.save().await.unwrap();

    ours.insert("mine", &3).await.unwrap();
    ours.remove("gone").await.unwrap();
    ours.save().await.unwrap();
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(keys(&stored), ["n", "other", "mine"]);
    assert_eq!(
        stored.get("n"),
        Some(&Value::from(10)),
        "the other's change was lost"
    );
    // The handle holds what was written.
    assert_eq!(ours.get::<i64>("other").await.unwrap(), Some(2));
}

async fn session_data_rewritten_by_hand_is_a_conflict<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    let key = saved_with(&store, &[("n", 1)]).await;
    let read = store.load_versioned(&key).await.unwrap().unwrap();
    // Another program rewrites only `session_data` (no expire_date change), as SQL by hand would.
    let text = store.codec().encode(&dict(&[("n", 2)])).unwrap();
    let sql = format!(
        "UPDATE {{t}} SET session_data = '{text}' WHERE session_key = '{}'",
        key.as_str()
    );
    assert_eq!(B::exec(store.pool(), store.table(), &sql).await.unwrap(), 1);

    let swapped = store
        .save_if_unchanged(&key, record(&[("n", 3)]), &read.version)
        .await;
    assert!(matches!(swapped, Err(Error::Conflict)), "{swapped:?}");
    assert_eq!(
        store.load(&key).await.unwrap().unwrap().get("n"),
        Some(&Value::from(2))
    );
}

/// Two saves of the same data within one second write the same `session_data` (the signature's
/// timestamp is in seconds): the version must still change, or a save over the version read
/// before both would succeed (two racing `reject` saves would both win).
async fn rewriting_identical_data_within_one_second_still_changes_the_version<B: Raw>(
    kind: Db,
    test: &str,
) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    let key = saved_with(&store, &[("k", 1)]).await;
    let first = store.load_versioned(&key).await.unwrap().unwrap();
    let second = store
        .save_if_unchanged(&key, record(&[("k", 1)]), &first.version)
        .await
        .unwrap();
    assert_ne!(second, first.version);
    assert_eq!(
        store.load_versioned(&key).await.unwrap().unwrap().version,
        second,
        "the version returned must be the one stored"
    );
    let stale = store
        .save_if_unchanged(&key, record(&[("k", 2)]), &first.version)
        .await;
    assert!(matches!(stale, Err(Error::Conflict)), "{stale:?}");

    // And through sessions: one request rewrites the same value, the other's save conflicts.
    let (a, b) = (
        session(&store, ConcurrencyPolicy::Reject, Some(key.as_str())),
        session(&store, ConcurrencyPolicy::Reject, Some(key.as_str())),
    );
    a.keys().await.unwrap();
    b.keys().await.unwrap();
    b.insert("k", &1).await.unwrap();
    b.save().await.unwrap();
    a.insert("k", &5).await.unwrap();
    assert!(matches!(a.save().await, Err(Error::Conflict)));
}

/// MySQL compares strings by the column's collation (case-insensitive, pad-space by default);
/// the compare-and-swap must compare bytes on every database.
async fn a_stored_text_differing_only_in_case_or_trailing_space_is_a_conflict<B: Raw>(
    kind: Db,
    test: &str,
) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    let appended = match kind {
        Db::MySql => "CONCAT(session_data, ' ')",
        Db::Postgres | Db::Sqlite => "session_data || ' '",
    };
    for rewrite in ["UPPER(session_data)", "LOWER(session_data)", appended] {
        let key = saved_with(&store, &[("n", 1)]).await;
        let read = store.load_versioned(&key).await.unwrap().unwrap();
        let sql = format!(
            "UPDATE {{t}} SET session_data = {rewrite} WHERE session_key = '{}'",
            key.as_str()
        );
        B::exec(store.pool(), store.table(), &sql).await.unwrap();
        let row = store.row(key.as_str()).await.unwrap().unwrap();
        let original = read.version.as_bytes().unwrap();
        if original.ends_with(row.session_data.as_bytes()) {
            continue; // the rewrite changed nothing (no letter of that case)
        }
        let swapped = store
            .save_if_unchanged(&key, record(&[("n", 2)]), &read.version)
            .await;
        assert!(
            matches!(swapped, Err(Error::Conflict)),
            "{rewrite}: {swapped:?}"
        );
        let after = store.row(key.as_str()).await.unwrap().unwrap();
        assert_eq!(
            after.session_data, row.session_data,
            "{rewrite}: the row was written"
        );
    }
}

async fn a_deleted_or_expired_row_is_session_deleted_and_never_reinserted<B: Raw>(
    kind: Db,
    test: &str,
) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    // Expired: the same table seen from three weeks later (the cookie age is two).
    let key = saved_with(&store, &[("n", 1)]).await;
    let read = store.load_versioned(&key).await.unwrap().unwrap();
    let later = store
        .store
        .clone()
        .with_clock(|| OffsetDateTime::now_utc() + Duration::weeks(3));
    assert!(later.load_versioned(&key).await.unwrap().is_none());
    let swapped = later
        .save_if_unchanged(&key, record(&[("n", 2)]), &read.version)
        .await;
    assert!(matches!(swapped, Err(Error::SessionDeleted)), "{swapped:?}");
    let row = store.row(key.as_str()).await.unwrap().unwrap();
    assert_eq!(
        row.get_decoded(store.codec()).get("n"),
        Some(&Value::from(1))
    );

    // Deleted: not brought back.
    store.delete(&key).await.unwrap();
    let swapped = store
        .save_if_unchanged(&key, record(&[("n", 3)]), &read.version)
        .await;
    assert!(matches!(swapped, Err(Error::SessionDeleted)), "{swapped:?}");
    assert_eq!(B::count(store.pool(), store.table()).await, 0);

    // A key no row can have, and a version from another store, answer without a conflict.
    let overlong = SessionKey::new("k".repeat(41)).unwrap();
    let swapped = store
        .save_if_unchanged(&overlong, record(&[("n", 4)]), &read.version)
        .await;
    assert!(matches!(swapped, Err(Error::SessionDeleted)), "{swapped:?}");
    let key = saved_with(&store, &[("n", 5)]).await;
    let foreign = session_core::Version::from_counter(1);
    let swapped = store
        .save_if_unchanged(&key, record(&[("n", 6)]), &foreign)
        .await;
    assert!(matches!(swapped, Err(Error::Conflict)), "{swapped:?}");
}

async fn consecutive_saves_of_one_request_each_succeed_under_reject<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    let key = saved_with(&store, &[("n", 0)]).await;
    let s = session(&store, ConcurrencyPolicy::Reject, Some(key.as_str()));
    for n in 1..=3 {
        s.insert("n", &n).await.unwrap();
        s.save().await.unwrap();
    }
    assert_eq!(
        store.load(&key).await.unwrap().unwrap().get("n"),
        Some(&Value::from(3))
    );
}

async fn a_custom_models_columns_follow_a_compare_and_swap<B: Raw>(kind: Db, test: &str) {
    let Some(db) = TestDb::or_skip(kind, test) else {
        return;
    };
    let store = Arc::new(store_in::<B, _>(db, CustomSession, &custom_config()).await);
    let config = |policy| {
        Arc::new(SessionConfig {
            concurrency: policy,
            ..custom_config()
        })
    };
    let first = Session::new(
        store.clone(),
        config(ConcurrencyPolicy::LastWriteWins),
        None,
    );
    first.insert("n", &1).await.unwrap();
    first.save().await.unwrap();
    let key = first.key().unwrap();

    for policy in [ConcurrencyPolicy::Merge, ConcurrencyPolicy::Reject] {
        let s = Session::new(store.clone(), config(policy), Some(key.as_str()));
        let id = if policy == ConcurrencyPolicy::Merge {
            "42"
        } else {
            "43"
        };
        s.insert("_auth_user_id", id).await.unwrap();
        s.save().await.unwrap();
        let row = store.row(key.as_str()).await.unwrap().unwrap();
        assert_eq!(
            row.extra,
            [ColumnValue::Integer(id.parse().unwrap())],
            "{policy}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Real Django as the other writer (SQLite file; any python that imports Django 5.2).

/// The python to run Django with: `SESSION_TEST_PYTHON` if set; else `python3` if it imports
/// Django 5.2+; else the fixtures' own throwaway virtualenv (`fixtures/django/djvenv.py`, built
/// once under /tmp with pip), so a fresh machine runs this test too. `None` (after printing why)
/// when none works, unless `SESSION_TEST_REQUIRE_SERVICES=1`.
fn django_python(test: &str) -> Option<String> {
    // Tests run in parallel: find (or build) the environment once.
    static PYTHON: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    match PYTHON.get_or_init(find_django_python) {
        Ok(python) => Some(python.clone()),
        Err(message) => {
            assert!(!services::required(), "{test}: {message}");
            eprintln!("skipping {test}: {message}");
            None
        }
    }
}

fn imports_django(python: &str) -> bool {
    Command::new(python)
        .args(["-c", "import django; assert django.VERSION >= (5, 2)"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn find_django_python() -> Result<String, String> {
    if let Ok(python) = std::env::var("SESSION_TEST_PYTHON") {
        return if imports_django(&python) {
            Ok(python)
        } else {
            Err(format!(
                "SESSION_TEST_PYTHON={python} cannot import Django 5.2 or later"
            ))
        };
    }
    if imports_django("python3") {
        return Ok("python3".to_owned());
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/django");
    let built = Command::new("python3")
        .arg("-c")
        .arg("import sys; sys.path.insert(0, sys.argv[1]); import djvenv; print(djvenv.ensure('django52'))")
        .arg(&fixtures)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run python3 to build the Django virtualenv: {e}"))?;
    let python = String::from_utf8_lossy(&built.stdout).trim().to_owned();
    if built.status.success() && imports_django(&python) {
        Ok(python)
    } else {
        Err(
            "python3 cannot import Django 5.2 or later and fixtures/django/djvenv.py could not \
             build an environment that can (pip install \"django>=5.2,<6\", or set \
             SESSION_TEST_PYTHON)"
                .to_owned(),
        )
    }
}

/// Runs `fixtures/django/workers/concurrent_writer.py` with `request` (JSON) on stdin.
async fn django(python: &str, request: serde_json::Value) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/django/workers/concurrent_writer.py");
    let python = python.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "Django failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(answer["ok"], true, "{answer}");
        answer
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_by_django_between_our_load_and_save_is_detected() {
    let test = "a_save_by_django_between_our_load_and_save_is_detected";
    let Some(python) = django_python(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = Arc::new(SqliteStore::connect(&url, &config()).await.unwrap());
    store.ensure_schema().await.unwrap();
    let secret = "django_tests_secret_key"; // session_conformance::config()'s
    let django_sets = |key: &SessionKey, name: &str, value: i64| {
        serde_json::json!({
            "sqlite": path.to_str().unwrap(), "secret_key": secret,
            "session_key": key.as_str(), "mode": "set", "key": name, "value": value,
        })
    };

    // reject: Django's save in between makes ours a conflict, and the row keeps Django's data.
    let key = saved_with(&store, &[("n", 1)]).await;
    let ours = session(&store, ConcurrencyPolicy::Reject, Some(key.as_str()));
    assert_eq!(ours.get::<i64>("n").await.unwrap(), Some(1));
    django(&python, django_sets(&key, "from_django", 7)).await;
    ours.insert("mine", &1).await.unwrap();
    assert!(matches!(ours.save().await, Err(Error::Conflict)));
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(keys(&stored), ["n", "from_django"]);

    // merge: both keys survive, and Django reads the merged session.
    let ours = session(&store, ConcurrencyPolicy::Merge, Some(key.as_str()));
    assert_eq!(ours.get::<i64>("from_django").await.unwrap(), Some(7));
    django(&python, django_sets(&key, "from_django", 8)).await;
    ours.insert("mine", &2).await.unwrap();
    ours.save().await.unwrap();
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(stored.get("from_django"), Some(&Value::from(8)));
    assert_eq!(stored.get("mine"), Some(&Value::from(2)));
    let read = django(
        &python,
        serde_json::json!({
            "sqlite": path.to_str().unwrap(), "secret_key": secret,
            "session_key": key.as_str(), "mode": "read",
        }),
    )
    .await;
    assert_eq!(
        read["data"],
        serde_json::json!({"n": 1, "from_django": 8, "mine": 2}),
        "{read}"
    );
}
