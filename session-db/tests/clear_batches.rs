//! `clear_expired` at scale: bounded batches, progress after each, the live rows kept, on every
//! database. (The ten-million-row measurement is `benches/clear_at_scale.rs`.)
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Db, TestDb, store_in};
use session_conformance::config;
use session_core::{Dict, Value};
use session_db::{AnyDbStore, Backend, DEFAULT_CLEAR_BATCH_SIZE, DbError, DjangoSession};
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
                #[tokio::test]
                async fn $test() {
                    super::$test::<$db>(super::Db::$kind, stringify!($test)).await;
                }
            )*
        }
    };
}

on_every_database!(
    expired_rows_are_cleared_in_batches_reporting_progress_and_live_rows_stay,
    a_batch_size_of_zero_is_refused,
    a_pause_between_batches_clears_the_same_rows,
    any_db_store_forwards_the_clearing_options,
);

async fn expired_rows_are_cleared_in_batches_reporting_progress_and_live_rows_stay<B: Backend>(
    kind: Db,
    test: &str,
) {
    let Some(db) = TestDb::or_skip(kind, test) else {
        return;
    };
    let store = store_in::<B, _>(db, DjangoSession, &config()).await;
    let now = OffsetDateTime::now_utc();
    let mut data = Dict::default();
    data.insert("k".to_owned(), Value::from(1i64));
    for i in 0..25 {
        store
            .save_row(&format!("expired{i:04}xx"), &data, now - Duration::hours(1))
            .await
            .unwrap();
    }
    for i in 0..5 {
        store
            .save_row(&format!("live{i:04}xxxx"), &data, now + Duration::hours(1))
            .await
            .unwrap();
    }
    assert_eq!(store.clear_batch_size(), DEFAULT_CLEAR_BATCH_SIZE);
    let batched = store.store.clone().with_clear_batch_size(10).unwrap();
    let mut progress = Vec::new();
    let removed = batched
        .clear_expired_rows_with_progress(|total| progress.push(total))
        .await
        .unwrap();
    assert_eq!(removed, 25);
    assert_eq!(progress, [10, 20, 25], "one report per statement");
    for i in 0..5 {
        assert!(
            store
                .row(&format!("live{i:04}xxxx"))
                .await
                .unwrap()
                .is_some()
        );
    }
    assert!(store.row("expired0000xx").await.unwrap().is_none());
    // Nothing left: one statement, which finds nothing.
    let mut progress = Vec::new();
    assert_eq!(
        batched
            .clear_expired_rows_with_progress(|total| progress.push(total))
            .await
            .unwrap(),
        0
    );
    assert_eq!(progress, [0]);
}

async fn a_batch_size_of_zero_is_refused<B: Backend>(kind: Db, test: &str) {
    let Some(db) = TestDb::or_skip(kind, test) else {
        return;
    };
    let store = store_in::<B, _>(db, DjangoSession, &config()).await;
    let err = store.store.clone().with_clear_batch_size(0).unwrap_err();
    assert!(matches!(err, DbError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("at least 1"), "{err}");
}

/// `n` expired rows and `live` live ones, keyed `expired0000xx`... and `live0000xxxx`...
async fn seed<B: Backend>(
    store: &session_db::DbStore<B>,
    expired: usize,
    live: usize,
) -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    let mut data = Dict::default();
    data.insert("k".to_owned(), Value::from(1i64));
    for i in 0..expired {
        store
            .save_row(&format!("expired{i:04}xx"), &data, now - Duration::hours(1))
            .await
            .unwrap();
    }
    for i in 0..live {
        store
            .save_row(&format!("live{i:04}xxxx"), &data, now + Duration::hours(1))
            .await
            .unwrap();
    }
    now
}

async fn a_pause_between_batches_clears_the_same_rows<B: Backend>(kind: Db, test: &str) {
    let Some(db) = TestDb::or_skip(kind, test) else {
        return;
    };
    let store = store_in::<B, _>(db, DjangoSession, &config()).await;
    assert_eq!(
        store.clear_pause(),
        std::time::Duration::ZERO,
        "no pause by default"
    );
    seed(&store.store, 25, 5).await;
    let pause = std::time::Duration::from_millis(5);
    // Set in either order, and kept when the table changes: the options are independent.
    let paused = store
        .store
        .clone()
        .with_clear_pause(pause)
        .with_clear_batch_size(10)
        .unwrap()
        .with_table(store.table())
        .unwrap();
    assert_eq!(
        (paused.clear_pause(), paused.clear_batch_size()),
        (pause, 10)
    );
    let mut progress = Vec::new();
    let removed = paused
        .clear_expired_rows_with_progress(|total| progress.push(total))
        .await
        .unwrap();
    assert_eq!(removed, 25);
    assert_eq!(
        progress,
        [10, 20, 25],
        "the same statements, paused between"
    );
    for i in 0..5 {
        assert!(
            store
                .row(&format!("live{i:04}xxxx"))
                .await
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(paused.clear_expired_rows().await.unwrap(), 0);
}

async fn any_db_store_forwards_the_clearing_options<B: Backend>(kind: Db, test: &str) {
    let Some(db) = TestDb::or_skip(kind, test) else {
        return;
    };
    let store = store_in::<B, _>(db, DjangoSession, &config()).await;
    seed(&store.store, 12, 3).await;
    let pause = std::time::Duration::from_millis(2);
    let any = AnyDbStore::connect(&store.db().url, &config())
        .await
        .unwrap()
        .with_table(store.table())
        .unwrap()
        .with_clear_batch_size(5)
        .unwrap()
        .with_clear_pause(pause);
    assert_eq!((any.clear_batch_size(), any.clear_pause()), (5, pause));
    let mut progress = Vec::new();
    let removed = any
        .clear_expired_rows_with_progress(|total| progress.push(total))
        .await
        .unwrap();
    assert_eq!((removed, progress), (12, vec![5, 10, 12]));
    assert!(store.row("live0000xxxx").await.unwrap().is_some());
}
