//! Django's database-backend tests (`DatabaseSessionTests`, `CustomDatabaseSessionTests`), named
//! as Django names them, plus what a SQL store must get right beyond them: schema handling, the
//! application clock, MySQL's affected-rows count, concurrency, and hostile input. Every test runs
//! on every database.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use common::{CustomSession, Db, Raw, TestDb, custom_config, store_in};
use session_conformance::config;
use session_core::codec::{CORRUPTED_MESSAGE, SUSPICIOUS_SESSION_TARGET};
use session_core::{
    Dict, Error, Expiry, SaveMode, Session, SessionKey, SessionRecord, SessionStore, Value,
};
use session_db::{
    ColumnType, ColumnValue, DbError, DbStore, DjangoSession, ExtraColumn, SchemaStatus,
    SessionModel,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

macro_rules! on_every_database {
    (async: $($test:ident),* ; sync: $($sync_test:ident),* $(,)?) => {
        on_every_database!(@db sqlite, sqlx::Sqlite, Sqlite, "sqlite"; $($test),*; $($sync_test),*);
        on_every_database!(@db postgres, sqlx::Postgres, Postgres, "postgres"; $($test),*; $($sync_test),*);
        on_every_database!(@db mysql, sqlx::MySql, MySql, "mysql"; $($test),*; $($sync_test),*);
    };
    (@db $module:ident, $db:ty, $kind:ident, $feature:literal; $($test:ident),*; $($sync_test:ident),*) => {
        #[cfg(feature = $feature)]
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test::<$db>(super::Db::$kind, stringify!($test)).await;
                }
            )*
            $(
                #[test]
                fn $sync_test() {
                    super::$sync_test::<$db>(super::Db::$kind, stringify!($sync_test));
                }
            )*
        }
    };
}

on_every_database!(
    async:
    clearsessions_command,
    aclear_expired,
    session_str,
    session_get_decoded,
    sessionmanager_save,
    extra_session_field,
    custom_model_uses_the_custom_cookie_age,
    ensure_schema_creates_once_and_leaves_an_existing_table_alone,
    ensure_schema_reports_a_missing_extra_column,
    missing_table_is_a_clear_error_for_every_operation,
    expire_date_is_stored_as_django_stores_it,
    load_and_update_compare_with_the_application_clock,
    exists_ignores_expiry_like_django,
    update_writing_identical_data_still_finds_the_row,
    two_hundred_concurrent_creates_make_two_hundred_rows,
    saves_racing_deletes_never_resurrect_under_load,
    overlong_and_nul_keys_never_reach_the_database,
    keys_with_sql_metacharacters_are_plain_data,
    extra_values_are_checked_before_anything_is_written,
    unique_extra_column_is_not_mistaken_for_a_taken_key;
    sync:
    corrupt_session_data_loads_empty_with_the_security_warning,
);

async fn django_store<B: Raw>(
    kind: Db,
    test: &str,
) -> Option<Arc<common::TestStore<B, DjangoSession>>> {
    let db = TestDb::or_skip(kind, test)?;
    Some(Arc::new(
        store_in::<B, _>(db, DjangoSession, &config()).await,
    ))
}

async fn custom_store<B: Raw>(
    kind: Db,
    test: &str,
) -> Option<Arc<common::TestStore<B, CustomSession>>> {
    let db = TestDb::or_skip(kind, test)?;
    Some(Arc::new(
        store_in::<B, _>(db, CustomSession, &custom_config()).await,
    ))
}

fn session<S: SessionStore + 'static>(store: &Arc<S>, key: Option<&str>) -> Session {
    Session::new(store.clone(), Arc::new(config()), key)
}

fn dict(pairs: &[(&str, Value)]) -> Dict {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn record(data: &Dict, expires_at: OffsetDateTime) -> SessionRecord<'_> {
    SessionRecord {
        data,
        expires_at,
        expiry_age: (expires_at - OffsetDateTime::now_utc()).whole_seconds(),
    }
}

/// Two sessions, one expired: `clearsessions` removes exactly that one.
async fn clearsessions_command<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    assert_eq!(B::count(store.pool(), store.table()).await, 0);
    let live = session(&store, None);
    live.insert("foo", "bar").await.unwrap();
    live.set_expiry(Expiry::Seconds(3600)).await.unwrap();
    live.save().await.unwrap();
    let other = session(&store, None);
    other.insert("foo", "bar").await.unwrap();
    other.set_expiry(Expiry::Seconds(-3600)).await.unwrap();
    other.save().await.unwrap();
    assert_eq!(B::count(store.pool(), store.table()).await, 2);

    assert_eq!(store.clear_expired_rows().await.unwrap(), 1);
    assert_eq!(B::count(store.pool(), store.table()).await, 1);
    assert!(
        store
            .row(live.key().unwrap().as_str())
            .await
            .unwrap()
            .is_some()
    );
}

/// Django calls `aclear_expired()` on both sessions; here both run at once, and the expired row
/// is counted once.
async fn aclear_expired<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    assert_eq!(B::count(store.pool(), store.table()).await, 0);
    for seconds in [3600, -3600] {
        let s = session(&store, None);
        s.insert("key", "value").await.unwrap();
        s.set_expiry(Expiry::Seconds(seconds)).await.unwrap();
        s.save().await.unwrap();
    }
    assert_eq!(B::count(store.pool(), store.table()).await, 2);
    let (a, b) = tokio::join!(store.clear_expired(), store.clear_expired());
    let removed = [a.unwrap(), b.unwrap()].map(|c| match c {
        session_core::ClearExpired::Removed(n) => n,
        other => panic!("a database clears rows, got {other:?}"),
    });
    assert_eq!(removed.iter().sum::<u64>(), 1);
    assert_eq!(B::count(store.pool(), store.table()).await, 1);
}

/// The row's string form is its key (`Session.__str__`).
async fn session_str<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    let s = session(&store, None);
    s.insert("x", &1).await.unwrap();
    s.save().await.unwrap();
    let key = s.key().unwrap();
    let row = store.row(key.as_str()).await.unwrap().unwrap();
    assert_eq!(row.to_string(), key.as_str());
}

/// A row decodes to the saved data (`Session.get_decoded()`).
async fn session_get_decoded<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    let s = session(&store, None);
    s.insert("x", &1).await.unwrap();
    s.save().await.unwrap();
    let row = store.row(s.key().unwrap().as_str()).await.unwrap().unwrap();
    assert_eq!(
        row.get_decoded(store.codec()),
        dict(&[("x", Value::from(1i64))])
    );
}

/// `SessionManager.save` replaces the row's data (and deletes the row for empty data).
async fn sessionmanager_save<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    let s = session(&store, None);
    s.insert("y", &1).await.unwrap();
    s.save().await.unwrap();
    let key = s.key().unwrap();
    let row = store.row(key.as_str()).await.unwrap().unwrap();

    let saved = store
        .save_row(
            &row.session_key,
            &dict(&[("y", Value::from(2i64))]),
            row.expire_date,
        )
        .await
        .unwrap();
    assert_eq!(saved.expire_date, row.expire_date);
    // A fresh handle: the data comes from the database, not a cache.
    let reloaded = session(&store, Some(key.as_str()));
    assert_eq!(reloaded.get::<i64>("y").await.unwrap(), Some(2));
    assert_eq!(store.row(key.as_str()).await.unwrap().unwrap(), saved);

    // Saving under a new key inserts; saving empty data deletes.
    let expire = OffsetDateTime::now_utc() + Duration::hours(1);
    store
        .save_row("managerkey1", &dict(&[("z", Value::from(3i64))]), expire)
        .await
        .unwrap();
    assert!(store.row("managerkey1").await.unwrap().is_some());
    store
        .save_row("managerkey1", &Dict::new(), expire)
        .await
        .unwrap();
    assert_eq!(store.row("managerkey1").await.unwrap(), None);
}

/// The custom model's `account_id` follows `_auth_user_id` on insert and on update.
async fn extra_session_field<B: Raw>(kind: Db, test: &str) {
    let Some(store) = custom_store::<B>(kind, test).await else {
        return;
    };
    let s = Session::new(store.clone(), Arc::new(custom_config()), None);
    s.insert("_auth_user_id", &42).await.unwrap();
    s.save().await.unwrap();
    let key = s.key().unwrap();
    let row = store.row(key.as_str()).await.unwrap().unwrap();
    assert_eq!(row.extra, vec![ColumnValue::Integer(42)]);

    s.pop::<i64>("_auth_user_id").await.unwrap();
    s.save().await.unwrap();
    let row = store.row(key.as_str()).await.unwrap().unwrap();
    assert_eq!(row.extra, vec![ColumnValue::Null]);

    // Django's int(): a numeric string counts, anything else is NULL.
    s.insert("_auth_user_id", "7").await.unwrap();
    s.save().await.unwrap();
    let row = store.row(key.as_str()).await.unwrap().unwrap();
    assert_eq!(row.extra, vec![ColumnValue::Integer(7)]);
    s.insert("_auth_user_id", "not a number").await.unwrap();
    s.save().await.unwrap();
    let row = store.row(key.as_str()).await.unwrap().unwrap();
    assert_eq!(row.extra, vec![ColumnValue::Null]);
}

/// `CustomDatabaseSessionTests.custom_session_cookie_age`: the row expires after 86400 s.
async fn custom_model_uses_the_custom_cookie_age<B: Raw>(kind: Db, test: &str) {
    let Some(store) = custom_store::<B>(kind, test).await else {
        return;
    };
    let s = Session::new(store.clone(), Arc::new(custom_config()), None);
    assert_eq!(s.expiry_age().await.unwrap(), 86400);
    let before = OffsetDateTime::now_utc();
    s.save().await.unwrap();
    let row = store.row(s.key().unwrap().as_str()).await.unwrap().unwrap();
    let lifetime = row.expire_date - before;
    assert!(
        lifetime >= Duration::seconds(86399) && lifetime <= Duration::seconds(86401),
        "{lifetime}"
    );
}

async fn ensure_schema_creates_once_and_leaves_an_existing_table_alone<B: Raw>(
    kind: Db,
    test: &str,
) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    // store_in already created it.
    let s = session(&store, None);
    s.insert("kept", &true).await.unwrap();
    s.save().await.unwrap();
    assert_eq!(
        store.ensure_schema().await.unwrap(),
        SchemaStatus::AlreadyPresent
    );
    assert_eq!(B::count(store.pool(), store.table()).await, 1);
    store.check_schema().await.unwrap();

    // A second store on a new table name creates it, once, even when racing itself.
    let other = DbStore::<B>::new(store.pool().clone(), &config())
        .unwrap()
        .with_table(&format!("{}_b", store.table()))
        .unwrap();
    let (a, b) = tokio::join!(other.ensure_schema(), other.ensure_schema());
    let mut statuses = [a.unwrap(), b.unwrap()];
    statuses.sort_by_key(|s| *s == SchemaStatus::AlreadyPresent);
    assert_eq!(
        statuses,
        [SchemaStatus::Created, SchemaStatus::AlreadyPresent]
    );
    B::exec(other.pool(), other.table(), "DROP TABLE {t}")
        .await
        .unwrap();
}

async fn ensure_schema_reports_a_missing_extra_column<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    // Django's plain table, used with a model that needs account_id.
    let custom = DbStore::<B, _>::with_model(store.pool().clone(), CustomSession, &config())
        .unwrap()
        .with_table(store.table())
        .unwrap();
    let err = custom.ensure_schema().await.unwrap_err();
    assert!(
        matches!(&err, DbError::MissingColumn { column, .. } if column == "account_id"),
        "{err}"
    );
    assert!(
        err.to_string().contains("has no column account_id"),
        "{err}"
    );
    // Using it anyway explains the same thing instead of passing on the driver's words.
    let s = Session::new(Arc::new(custom), Arc::new(config()), None);
    let err = s.save().await.unwrap_err();
    assert!(
        err.to_string().contains("has no column account_id") && err.to_string().contains("migrate"),
        "{err}"
    );
}

async fn missing_table_is_a_clear_error_for_every_operation<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    let missing = DbStore::<B>::new(store.pool().clone(), &config())
        .unwrap()
        .with_table("djs_no_such_table")
        .unwrap();
    let expect = |result: Result<(), Error>, op: &str| {
        let err = result.unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, Error::Store(_))
                && text.contains("djs_no_such_table does not exist")
                && text.contains("ensure_schema"),
            "{op}: {text}"
        );
    };
    let key = SessionKey::generate().unwrap();
    let data = Dict::new();
    let soon = OffsetDateTime::now_utc() + Duration::hours(1);
    expect(missing.load(&key).await.map(drop), "load");
    expect(missing.exists(&key).await.map(drop), "exists");
    expect(
        missing
            .save(&key, record(&data, soon), SaveMode::MustCreate)
            .await
            .map(drop),
        "create",
    );
    expect(
        missing
            .save(&key, record(&data, soon), SaveMode::Update)
            .await
            .map(drop),
        "update",
    );
    expect(missing.delete(&key).await, "delete");
    expect(missing.clear_expired().await.map(drop), "clear_expired");
    assert!(matches!(
        missing.check_schema().await,
        Err(DbError::MissingTable { .. })
    ));
    assert!(matches!(
        missing.row(key.as_str()).await,
        Err(DbError::MissingTable { .. })
    ));
}

async fn expire_date_is_stored_as_django_stores_it<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    let cases = [
        (
            datetime!(2030-01-02 03:04:05.123456789 UTC),
            "2030-01-02 03:04:05.123456",
        ),
        (datetime!(2030-01-02 03:04:05 UTC), "2030-01-02 03:04:05"),
        // Another offset is stored as UTC.
        (
            datetime!(2030-01-02 05:04:05.5 +02:00),
            "2030-01-02 03:04:05.500000",
        ),
    ];
    for (at, django_sqlite_text) in cases {
        let key = SessionKey::generate().unwrap();
        store
            .save(&key, record(&Dict::new(), at), SaveMode::MustCreate)
            .await
            .unwrap();
        let row = store.row(key.as_str()).await.unwrap().unwrap();
        let micros = at.replace_nanosecond(at.microsecond() * 1000).unwrap();
        assert_eq!(row.expire_date, micros);
        let stored = B::expire_text(store.pool(), store.table(), key.as_str()).await;
        let expected = if kind == Db::Sqlite {
            // Python's str(datetime): no fraction when the microseconds are zero.
            django_sqlite_text.to_owned()
        } else {
            let t = micros.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.microsecond()
            )
        };
        assert_eq!(stored, expected);
    }
}

async fn load_and_update_compare_with_the_application_clock<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    let t = datetime!(2031-06-01 12:00:00.000001 UTC);
    let at = |clock: OffsetDateTime| {
        DbStore::<B>::new(store.pool().clone(), &config())
            .unwrap()
            .with_table(store.table())
            .unwrap()
            .with_clock(move || clock)
    };
    let key = SessionKey::generate().unwrap();
    let data = dict(&[("a", Value::from(1i64))]);
    at(t - Duration::hours(1))
        .save(&key, record(&data, t), SaveMode::MustCreate)
        .await
        .unwrap();
    let micro = Duration::microseconds(1);
    // Live while expire_date > now.
    assert_eq!(at(t - micro).load(&key).await.unwrap(), Some(data.clone()));
    assert_eq!(at(t).load(&key).await.unwrap(), None);
    // An update at the boundary finds nothing: no reviving an expired row.
    assert!(matches!(
        at(t)
            .save(
                &key,
                record(&data, t + Duration::hours(1)),
                SaveMode::Update
            )
            .await,
        Err(Error::SessionDeleted)
    ));
    // Cleared only once expire_date < now.
    assert_eq!(at(t).clear_expired_rows().await.unwrap(), 0);
    assert_eq!(at(t + micro).clear_expired_rows().await.unwrap(), 1);
    assert_eq!(store.row(key.as_str()).await.unwrap(), None);
}

async fn exists_ignores_expiry_like_django<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    let key = SessionKey::generate().unwrap();
    let past = OffsetDateTime::now_utc() - Duration::hours(1);
    store
        .save(&key, record(&Dict::new(), past), SaveMode::MustCreate)
        .await
        .unwrap();
    assert_eq!(store.load(&key).await.unwrap(), None);
    assert!(store.exists(&key).await.unwrap());
    // And the key stays taken until cleared.
    assert!(matches!(
        store
            .save(&key, record(&Dict::new(), past), SaveMode::MustCreate)
            .await,
        Err(Error::CreateConflict)
    ));
}

/// MySQL reports zero affected rows for an UPDATE that changes nothing unless the client sets
/// CLIENT_FOUND_ROWS. Writing the very same values must still count as finding the row.
async fn update_writing_identical_data_still_finds_the_row<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    let key = SessionKey::generate().unwrap();
    let data = dict(&[("same", Value::from("data"))]);
    let expire = datetime!(2035-01-01 00:00:00 UTC);
    store
        .save(&key, record(&data, expire), SaveMode::MustCreate)
        .await
        .unwrap();
    // The signed data carries a timestamp in seconds: retry until two writes are identical.
    let mut identical = false;
    for _ in 0..20 {
        let before = store.row(key.as_str()).await.unwrap().unwrap();
        store
            .save(&key, record(&data, expire), SaveMode::Update)
            .await
            .unwrap();
        let after = store.row(key.as_str()).await.unwrap().unwrap();
        if before == after {
            identical = true;
            break;
        }
    }
    assert!(identical, "never wrote identical values twice");
}

async fn two_hundred_concurrent_creates_make_two_hundred_rows<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let s = session(&store, None);
            tokio::spawn(async move {
                s.insert("i", &i).await?;
                s.save().await?;
                Ok::<_, Error>(s.key())
            })
        })
        .collect();
    let mut keys = Vec::new();
    for task in tasks {
        keys.push(task.await.unwrap().unwrap().unwrap());
    }
    keys.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    keys.dedup();
    assert_eq!(keys.len(), 200);
    assert_eq!(B::count(store.pool(), store.table()).await, 200);
    for (n, key) in keys.iter().enumerate().step_by(37) {
        let loaded = store.load(key).await.unwrap().unwrap();
        assert!(loaded.contains_key("i"), "row {n}");
    }
}

/// Many sessions, each saved repeatedly while another task deletes it: once the delete has
/// happened, no save brings the row back.
async fn saves_racing_deletes_never_resurrect_under_load<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    const SESSIONS: usize = 60;
    const SAVES: usize = 8;
    let mut tasks = Vec::new();
    for i in 0..SESSIONS {
        let s = session(&store, None);
        s.insert("i", &i).await.unwrap();
        s.save().await.unwrap();
        let key = s.key().unwrap();
        let saver = tokio::spawn(async move {
            for n in 0..SAVES {
                s.insert("n", &n).await.unwrap();
                match s.save().await {
                    Ok(()) => {}
                    Err(Error::SessionDeleted) => return true,
                    Err(other) => panic!("save failed: {other}"),
                }
                tokio::task::yield_now().await;
            }
            false
        });
        let deleter = {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move {
                tokio::time::sleep(StdDuration::from_millis((i % 7) as u64)).await;
                store.delete(&key).await.unwrap();
            })
        };
        tasks.push((key, saver, deleter));
    }
    let mut interrupted = 0;
    for (key, saver, deleter) in tasks {
        deleter.await.unwrap();
        interrupted += usize::from(saver.await.unwrap());
        assert_eq!(
            store.row(key.as_str()).await.unwrap(),
            None,
            "a deleted session came back"
        );
    }
    assert_eq!(B::count(store.pool(), store.table()).await, 0);
    println!("{interrupted} of {SESSIONS} savers saw SessionDeleted");
}

async fn overlong_and_nul_keys_never_reach_the_database<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    // A 10 000-character cookie is no key at all: the session starts afresh.
    let huge = "k".repeat(10_000);
    let s = session(&store, Some(&huge));
    assert_eq!(s.key(), None);
    s.insert("a", &1).await.unwrap();
    s.save().await.unwrap();
    assert_eq!(s.key().unwrap().as_str().len(), 32);

    let soon = OffsetDateTime::now_utc() + Duration::hours(1);
    for (key, what) in [
        ("k".repeat(SessionKey::MAX_LEN), "at most 40 characters"),
        ("k".repeat(41), "at most 40 characters"),
        ("nul\0inside-the-key".to_owned(), "NUL"),
    ] {
        let key = SessionKey::new(key).unwrap();
        assert_eq!(store.load(&key).await.unwrap(), None, "{what}");
        assert!(!store.exists(&key).await.unwrap());
        store.delete(&key).await.unwrap();
        assert_eq!(store.row(key.as_str()).await.unwrap(), None);
        let err = store
            .save(&key, record(&Dict::new(), soon), SaveMode::MustCreate)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Store(inner) if inner.to_string().contains("cannot be stored")),
            "{err}"
        );
        assert!(matches!(
            store
                .save(&key, record(&Dict::new(), soon), SaveMode::Update)
                .await,
            Err(Error::SessionDeleted)
        ));
    }
    // Exactly 40 characters is fine.
    let forty = SessionKey::new("k".repeat(40)).unwrap();
    store
        .save(&forty, record(&Dict::new(), soon), SaveMode::MustCreate)
        .await
        .unwrap();
    assert_eq!(store.load(&forty).await.unwrap(), Some(Dict::new()));
    assert_eq!(B::count(store.pool(), store.table()).await, 2);
}

async fn keys_with_sql_metacharacters_are_plain_data<B: Raw>(kind: Db, test: &str) {
    let Some(store) = django_store::<B>(kind, test).await else {
        return;
    };
    let soon = OffsetDateTime::now_utc() + Duration::hours(1);
    let keys = [
        "it's a 'key'",
        "double\"quoted\"",
        "back\\slash\\key",
        "percent%key",
        "under_score_key",
        "semi;colon;--key",
        "ünïcødé-ключ-鍵",
    ];
    for (i, k) in keys.iter().enumerate() {
        let key = SessionKey::new(*k).unwrap();
        let data = dict(&[("i", Value::from(i as i64))]);
        store
            .save(&key, record(&data, soon), SaveMode::MustCreate)
            .await
            .unwrap();
        assert_eq!(store.load(&key).await.unwrap(), Some(data), "{k}");
        assert_eq!(store.row(k).await.unwrap().unwrap().session_key, *k);
    }
    // `%` and `_` are not wildcards: similar keys find nothing.
    for near in ["percentXkey", "percent%ke", "underXscore_key", "under%%%"] {
        let key = SessionKey::new(near).unwrap();
        assert_eq!(store.load(&key).await.unwrap(), None, "{near}");
        assert!(!store.exists(&key).await.unwrap(), "{near}");
    }
    assert_eq!(
        B::count(store.pool(), store.table()).await,
        keys.len() as i64
    );
    for k in keys {
        store.delete(&SessionKey::new(k).unwrap()).await.unwrap();
    }
    assert_eq!(B::count(store.pool(), store.table()).await, 0);
}

/// A model that returns what it is told to.
#[derive(Debug)]
struct Misbehaving(Vec<ColumnValue>);

impl SessionModel for Misbehaving {
    fn extra_columns(&self) -> &[ExtraColumn] {
        const COLUMNS: &[ExtraColumn] = &[ExtraColumn::new("account_id", ColumnType::Integer)
            .nullable()
            .indexed()];
        COLUMNS
    }

    fn values(&self, _data: &Dict) -> Vec<ColumnValue> {
        self.0.clone()
    }
}

async fn extra_values_are_checked_before_anything_is_written<B: Raw>(kind: Db, test: &str) {
    let Some(db) = TestDb::or_skip(kind, test) else {
        return;
    };
    let good = store_in::<B, _>(db, CustomSession, &config()).await;
    let soon = OffsetDateTime::now_utc() + Duration::hours(1);
    for (values, complaint) in [
        (vec![], "returned 0 values for its 1 extra columns"),
        (
            vec![ColumnValue::Null, ColumnValue::Null],
            "returned 2 values",
        ),
        (
            vec!["42".into()],
            "a text value does not fit a integer column",
        ),
        (
            vec![ColumnValue::Integer(1 << 40)],
            "does not fit a 32-bit integer column",
        ),
    ] {
        let store =
            DbStore::<B, _>::with_model(good.pool().clone(), Misbehaving(values), &config())
                .unwrap()
                .with_table(good.table())
                .unwrap();
        let key = SessionKey::generate().unwrap();
        let err = store
            .save(&key, record(&Dict::new(), soon), SaveMode::MustCreate)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(complaint), "{err}");
        assert_eq!(store.row(key.as_str()).await.unwrap(), None);
    }
    assert_eq!(B::count(good.pool(), good.table()).await, 0);
}

async fn unique_extra_column_is_not_mistaken_for_a_taken_key<B: Raw>(kind: Db, test: &str) {
    let Some(store) = custom_store::<B>(kind, test).await else {
        return;
    };
    B::exec(
        store.pool(),
        store.table(),
        &format!(
            "CREATE UNIQUE INDEX {}_one_session_per_account ON {{t}} (account_id)",
            store.table()
        ),
    )
    .await
    .unwrap();
    let config = Arc::new(custom_config());
    let first = Session::new(store.clone(), config.clone(), None);
    first.insert("_auth_user_id", &7).await.unwrap();
    first.save().await.unwrap();
    let second = Session::new(store.clone(), config, None);
    second.insert("_auth_user_id", &7).await.unwrap();
    let err = second.save().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("unique constraint other than the session key"),
        "expected a clear error, not {err}"
    );
    assert_eq!(B::count(store.pool(), store.table()).await, 1);
}

/// A row whose `session_data` does not verify loads as an empty session (the row is there) and
/// logs Django's security warning.
fn corrupt_session_data_loads_empty_with_the_security_warning<B: Raw>(kind: Db, test: &str) {
    let Some(db) = TestDb::or_skip(kind, test) else {
        return;
    };
    let ((), events) = session_conformance::logs::capture(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = Arc::new(store_in::<B, _>(db, DjangoSession, &config()).await);
            let expire = match kind {
                Db::Postgres => "2099-01-01 00:00:00+00:00",
                _ => "2099-01-01 00:00:00",
            };
            for (key, data) in [
                ("corruptkey1", "bad:encoded:value"),
                ("corruptkey2", "Zmxhc2tkajphbGtkamY="),
            ] {
                B::insert_raw(store.pool(), store.table(), key, data, expire).await;
                let loaded = store.load(&SessionKey::new(key).unwrap()).await.unwrap();
                assert_eq!(loaded, Some(Dict::new()), "{key}");
                // The session handle keeps the key (the row exists) with empty data.
                let s = session(&store, Some(key));
                assert!(s.items().await.unwrap().is_empty());
                assert_eq!(s.key().unwrap().as_str(), key);
            }
        });
    });
    let warnings = events
        .iter()
        .filter(|e| {
            e.target == SUSPICIOUS_SESSION_TARGET
                && e.level == tracing::Level::WARN
                && e.message.contains(CORRUPTED_MESSAGE)
        })
        .count();
    assert!(
        warnings >= 4,
        "expected the security warning per load: {events:?}"
    );
}
