//! What the benches share: the session every worker uses, the databases, and their set-up.
#![allow(dead_code)] // each bench uses a different part

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use session_cache::Cache;
use session_cached_db::CACHED_DB_KEY_PREFIX;
use session_core::{Dict, SaveMode, SessionConfig, SessionKey, SessionRecord, SessionStore, Value};
use session_db::{Backend, DbStore};
use time::{Duration, OffsetDateTime};

/// Seconds per measurement.
pub const SECONDS: f64 = 2.0;
/// Measurements per configuration; the best one counts.
pub const ROUNDS: usize = 3;
/// Concurrent workers, each on its own session.
pub const CONCURRENCY: [usize; 2] = [1, 16];

/// A typical logged-in session (as in `session-db`'s and `session-cache`'s benches).
pub fn session_data() -> Dict {
    let mut data = Dict::new();
    data.insert("_auth_user_id", Value::from("48213"));
    data.insert(
        "_auth_user_backend",
        Value::from("django.contrib.auth.backends.ModelBackend"),
    );
    data.insert(
        "_auth_user_hash",
        Value::from("4f1c7e1d9a3b5e7f2c8d0a6b4e2f1c3d5a7b9e0f2d4c6a8b0e2f4d6c8a0b2e4f"),
    );
    data.insert(
        "cart",
        Value::List(vec![Value::from(17i64), Value::from(4i64)]),
    );
    data
}

/// A record of [`session_data`] living two weeks.
pub fn record(data: &Dict) -> SessionRecord<'_> {
    SessionRecord {
        data,
        expires_at: OffsetDateTime::now_utc() + Duration::days(14),
        expiry_age: 14 * 86400,
    }
}

/// This run's table and cache key prefix.
pub fn private_name() -> String {
    format!("djs_cached_bench_{}", std::process::id())
}

/// The database store on this run's table, holding one session per worker; returns their keys.
pub async fn database<B: Backend>(pool: sqlx::Pool<B>) -> (DbStore<B>, Vec<SessionKey>)
where
    DbStore<B>: SessionStore,
{
    let config = SessionConfig::new("a bench secret");
    let db = DbStore::<B>::new(pool, &config)
        .unwrap()
        .with_table(&private_name())
        .unwrap();
    db.ensure_schema().await.unwrap();
    let data = session_data();
    let mut keys = Vec::new();
    for _ in 0..*CONCURRENCY.iter().max().unwrap() {
        let key = SessionKey::generate().unwrap();
        db.save(&key, record(&data), SaveMode::MustCreate)
            .await
            .unwrap();
        keys.push(key);
    }
    (db, keys)
}

/// SQLite on a file in `dir`: WAL, synchronous=NORMAL, one connection (as `session-db`'s bench).
pub async fn sqlite_pool(dir: &std::path::Path) -> sqlx::SqlitePool {
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };
    let options = SqliteConnectOptions::new()
        .filename(dir.join("bench.sqlite3"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap()
}

pub const SQLITE_LABEL: &str = "SQLite (file, WAL, synchronous=NORMAL, 1 connection)";
pub const POSTGRES_LABEL: &str = "PostgreSQL (pool of 16)";

/// PostgreSQL (pool of 16) on `SESSION_TEST_POSTGRES_URL`, if set.
pub async fn postgres_pool() -> Option<sqlx::PgPool> {
    let Ok(url) = std::env::var("SESSION_TEST_POSTGRES_URL") else {
        println!("PostgreSQL: skipped (SESSION_TEST_POSTGRES_URL is not set)");
        return None;
    };
    Some(
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(16)
            .connect(&url)
            .await
            .unwrap(),
    )
}

/// Drops this run's table.
pub async fn drop_table(pool: &sqlx::PgPool) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS \"{}\"",
        private_name()
    )))
    .execute(pool)
    .await
    .unwrap();
}

/// Operations per second: `workers` tasks, worker `w` running `op(w)` in a loop for [`SECONDS`].
pub async fn per_second<F, Fut>(workers: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let deadline = Instant::now() + StdDuration::from_secs_f64(SECONDS);
    let start = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    op(w).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// Measures `rate(store, workers)` for every store at every concurrency (best of [`ROUNDS`], the
/// stores alternating) and prints the table, each rate also as a multiple of the first store's.
pub async fn compare<F, Fut>(
    label: &str,
    unit: &str,
    stores: &[(String, Arc<dyn SessionStore>)],
    rate: F,
) where
    F: Fn(Arc<dyn SessionStore>, usize) -> Fut,
    Fut: std::future::Future<Output = f64>,
{
    println!("\n{label}");
    println!("| concurrency | store | {unit} | vs {} |", stores[0].0);
    println!("|---:|---|---:|---:|");
    for workers in CONCURRENCY {
        let mut best = vec![0f64; stores.len()];
        for _ in 0..ROUNDS {
            for (i, (_, store)) in stores.iter().enumerate() {
                best[i] = best[i].max(rate(store.clone(), workers).await);
            }
        }
        for (i, (name, _)) in stores.iter().enumerate() {
            println!(
                "| {workers} | {name} | {:.0} | {:.2}x |",
                best[i],
                best[i] / best[0]
            );
        }
    }
}

/// Removes the cached-db entries of `keys` from `cache`, so a shared Redis keeps nothing.
pub async fn forget_cached(cache: &Cache, keys: &[SessionKey]) {
    for key in keys {
        let cache_key = format!("{CACHED_DB_KEY_PREFIX}{}", key.as_str());
        cache.delete(&cache_key).await.unwrap();
    }
}
