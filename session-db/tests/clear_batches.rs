//! `clear_expired` at scale: bounded batches, progress after each, the live rows kept, on every
//! database. (The ten-million-row measurement is `benches/clear_at_scale.rs`.)
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Db, TestDb, store_in};
use session_conformance::config;
use session_core::{Dict, Value};
use session_db::{Backend, DEFAULT_CLEAR_BATCH_SIZE, DbError, DjangoSession};
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
