//! The pool `DbStore::connect` builds (`DbStore::pool_options`): a connection is pinged before it
//! is handed out only when it has been idle longer than `PING_IF_IDLE_FOR`, and the store keeps a
//! connection between its statements for up to `KEEP_CONNECTION_FOR` instead of giving it back
//! to sqlx (which pings every connection it gets back), so a busy store spends one round trip
//! per statement; a connection the server dropped while idle is still replaced before a
//! statement runs on it. Needs `SESSION_TEST_POSTGRES_URL` (skipped without it, a failure with
//! `SESSION_TEST_REQUIRE_SERVICES=1`).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use session_conformance::services;
use session_core::{Dict, SaveMode, SessionConfig, SessionKey, SessionRecord, SessionStore, Value};
use session_db::sqlx::{self, Connection as _};
use session_db::{KEEP_CONNECTION_FOR, PING_IF_IDLE_FOR, PgStore};
use time::OffsetDateTime;

/// A store on `pool` over a new table named from `prefix`, holding one live session.
async fn store_with_one_session(
    pool: &sqlx::PgPool,
    prefix: &str,
) -> (PgStore, String, SessionKey, Dict) {
    let table = services::unique_name(prefix);
    let store = PgStore::new(pool.clone(), &SessionConfig::new("django_tests_secret_key"))
        .unwrap()
        .with_table(&table)
        .unwrap();
    store.ensure_schema().await.unwrap();
    let key = SessionKey::generate().unwrap();
    let mut data = Dict::new();
    data.insert("visits", Value::from(1));
    let record = SessionRecord {
        data: &data,
        expires_at: OffsetDateTime::now_utc() + time::Duration::hours(1),
        expiry_age: 3600,
    };
    store
        .save(&key, record, SaveMode::MustCreate)
        .await
        .unwrap();
    (store, table, key, data)
}

#[tokio::test]
async fn the_pool_pings_only_connections_idle_for_a_while() {
    let options = PgStore::pool_options("postgres://localhost/test");
    assert!(!options.get_test_before_acquire());
}

#[tokio::test]
async fn a_connection_the_server_dropped_while_idle_is_replaced_before_the_next_load() {
    let test = "a_connection_the_server_dropped_while_idle_is_replaced_before_the_next_load";
    let Some(url) = services::url_or_skip(services::POSTGRES_URL, test) else {
        return;
    };
    // One connection, so the load must use the one that was killed (or its replacement).
    let pool = PgStore::pool_options(&url)
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let (store, table, key, data) = store_with_one_session(&pool, "djs_pool").await;

    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(killed);
    tokio::time::sleep(PING_IF_IDLE_FOR + Duration::from_millis(300)).await;

    let loaded = store.load(&key).await;
    let new_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE \"{table}\"")))
        .execute(&mut admin)
        .await
        .unwrap();
    assert_eq!(loaded.unwrap(), Some(data));
    assert_ne!(new_pid, pid, "the dropped connection was replaced");
}

#[tokio::test]
async fn loads_in_a_row_reuse_one_connection_without_sqlxs_release_ping() {
    let test = "loads_in_a_row_reuse_one_connection_without_sqlxs_release_ping";
    let Some(url) = services::url_or_skip(services::POSTGRES_URL, test) else {
        return;
    };
    // sqlx calls `after_release` on every connection it gets back, just before pinging it.
    let released = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&released);
    let pool = PgStore::pool_options(&url)
        .max_connections(4)
        .after_release(move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(true) })
        })
        .connect(&url)
        .await
        .unwrap();
    let (store, table, key, data) = store_with_one_session(&pool, "djs_keep").await;
    // Everything the store kept goes back first, so the loads start from the pool.
    tokio::time::sleep(KEEP_CONNECTION_FOR * 3).await;
    let before = released.load(Ordering::SeqCst);

    let started = Instant::now();
    let mut loads = 0;
    while started.elapsed() < KEEP_CONNECTION_FOR / 2 && loads < 50 {
        assert_eq!(store.load(&key).await.unwrap().as_ref(), Some(&data));
        loads += 1;
    }
    let during = released.load(Ordering::SeqCst) - before;

    // And the kept connection goes back on its own once the store is idle.
    tokio::time::sleep(KEEP_CONNECTION_FOR * 3).await;
    let after = released.load(Ordering::SeqCst) - before;
    let idle = pool.num_idle();
    let size = pool.size() as usize;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE \"{table}\"")))
        .execute(&pool)
        .await
        .unwrap();
    assert!(loads > 1, "only {loads} load(s) in {KEEP_CONNECTION_FOR:?}");
    assert_eq!(
        during, 0,
        "{loads} loads gave connections back {during} times"
    );
    assert!(after >= 1, "the idle connection stayed with the store");
    assert_eq!(idle, size, "every connection is back in the pool");
}
