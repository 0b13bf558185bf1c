//! Load and save round trips per second through `DbStore`, beside the same database's floor: the
//! bare prepared statement the store runs (same SQL, same row, data already encoded), through sqlx,
//! in the same run.
//!
//! ```sh
//! SESSION_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo bench -p session-db --features postgres --bench roundtrip
//! ```
//!
//! SQLite runs on a temporary file; PostgreSQL when its URL is set. Each figure is the best of
//! `ROUNDS` runs of `SECONDS` seconds (store and floor alternating), at concurrency 1 and 16 (one
//! row per worker, so saves do not queue on one row lock).
#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use session_core::expiry::to_python_datetime;
use session_core::{Dict, SaveMode, SessionConfig, SessionKey, SessionRecord, SessionStore, Value};
use session_db::{Backend, DbStore};
use time::{Duration, OffsetDateTime};

const SECONDS: f64 = 2.0;
const ROUNDS: usize = 3;
const CONCURRENCY: [usize; 2] = [1, 16];

/// A typical logged-in session: about 200 bytes of JSON, about 290 signed.
fn session_data() -> Dict {
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

/// Runs `op` from `workers` tasks for `SECONDS` and returns operations per second.
async fn run<F, Fut>(workers: usize, op: &Arc<F>) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
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

/// The best of `ROUNDS` runs of each, alternating store and floor so that load from other
/// processes on the machine affects both alike.
async fn compare<F, Fut, G, Gut>(workers: usize, ours: F, floor: G) -> (f64, f64)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
    G: Fn(usize) -> Gut + Send + Sync + 'static,
    Gut: Future<Output = ()> + Send,
{
    let (ours, floor) = (Arc::new(ours), Arc::new(floor));
    let (mut best_ours, mut best_floor) = (0.0f64, 0.0f64);
    for _ in 0..ROUNDS {
        best_ours = best_ours.max(run(workers, &ours).await);
        best_floor = best_floor.max(run(workers, &floor).await);
    }
    (best_ours, best_floor)
}

/// The floor: the store's own SQL, bound and run directly.
trait Floor: Backend {
    fn load(
        pool: &sqlx::Pool<Self>,
        sql: &Arc<str>,
        key: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Option<String>> + Send;
    fn update(
        pool: &sqlx::Pool<Self>,
        sql: &Arc<str>,
        data: &str,
        expire: OffsetDateTime,
        key: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = u64> + Send;
    fn drop_table(pool: &sqlx::Pool<Self>, table: &str) -> impl Future<Output = ()> + Send;
    const LOAD: &'static str;
    const UPDATE: &'static str;
}

impl Floor for sqlx::Sqlite {
    async fn drop_table(pool: &sqlx::Pool<Self>, table: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE \"{table}\"")))
            .execute(pool)
            .await
            .unwrap();
    }
    async fn load(
        pool: &sqlx::Pool<Self>,
        sql: &Arc<str>,
        key: &str,
        now: OffsetDateTime,
    ) -> Option<String> {
        use sqlx::Row as _;
        sqlx::query::<Self>(sqlx::AssertSqlSafe(Arc::clone(sql)))
            .bind(key)
            .bind(session_db::sqlite_text(now))
            .fetch_optional(pool)
            .await
            .unwrap()
            .map(|row| row.get(0))
    }
    async fn update(
        pool: &sqlx::Pool<Self>,
        sql: &Arc<str>,
        data: &str,
        expire: OffsetDateTime,
        key: &str,
        now: OffsetDateTime,
    ) -> u64 {
        sqlx::query::<Self>(sqlx::AssertSqlSafe(Arc::clone(sql)))
            .bind(data)
            .bind(session_db::sqlite_text(expire))
            .bind(key)
            .bind(session_db::sqlite_text(now))
            .execute(pool)
            .await
            .unwrap()
            .rows_affected()
    }
    const LOAD: &'static str =
        "SELECT \"session_data\" FROM \"{t}\" WHERE \"session_key\" = ? AND \"expire_date\" > ?";
    const UPDATE: &'static str = "UPDATE \"{t}\" SET \"session_data\" = ?, \"expire_date\" = ? \
         WHERE \"session_key\" = ? AND \"expire_date\" > ?";
}

#[cfg(feature = "postgres")]
impl Floor for sqlx::Postgres {
    async fn drop_table(pool: &sqlx::Pool<Self>, table: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE \"{table}\"")))
            .execute(pool)
            .await
            .unwrap();
    }
    async fn load(
        pool: &sqlx::Pool<Self>,
        sql: &Arc<str>,
        key: &str,
        now: OffsetDateTime,
    ) -> Option<String> {
        use sqlx::Row as _;
        sqlx::query::<Self>(sqlx::AssertSqlSafe(Arc::clone(sql)))
            .bind(key)
            .bind(now)
            .fetch_optional(pool)
            .await
            .unwrap()
            .map(|row| row.get(0))
    }
    async fn update(
        pool: &sqlx::Pool<Self>,
        sql: &Arc<str>,
        data: &str,
        expire: OffsetDateTime,
        key: &str,
        now: OffsetDateTime,
    ) -> u64 {
        sqlx::query::<Self>(sqlx::AssertSqlSafe(Arc::clone(sql)))
            .bind(data)
            .bind(expire)
            .bind(key)
            .bind(now)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected()
    }
    const LOAD: &'static str = "SELECT \"session_data\" FROM \"{t}\" WHERE \"session_key\" = $1 \
         AND \"expire_date\" > $2";
    const UPDATE: &'static str = "UPDATE \"{t}\" SET \"session_data\" = $1, \"expire_date\" = $2 \
         WHERE \"session_key\" = $3 AND \"expire_date\" > $4";
}

fn report(op: &str, workers: usize, ours: f64, floor: f64) {
    println!(
        "  {op:<6} {workers:>4} {ours:>12.0} {floor:>12.0} {:>6.0}%",
        100.0 * ours / floor
    );
}

async fn bench<B: Floor>(name: &str, pool: sqlx::Pool<B>) {
    let config = SessionConfig::new("a benchmark secret");
    let table = format!("djs_bench_{}", std::process::id());
    let store = Arc::new(
        DbStore::<B>::new(pool, &config)
            .unwrap()
            .with_table(&table)
            .unwrap(),
    );
    store.ensure_schema().await.unwrap();
    let data = Arc::new(session_data());
    let expire = to_python_datetime(OffsetDateTime::now_utc() + Duration::days(14));
    let keys: Arc<Vec<SessionKey>> =
        Arc::new((0..16).map(|_| SessionKey::generate().unwrap()).collect());
    for key in keys.iter() {
        let record = SessionRecord {
            data: &data,
            expires_at: expire,
            expiry_age: 1_209_600,
        };
        store.save(key, record, SaveMode::MustCreate).await.unwrap();
    }
    let encoded: Arc<str> = store.codec().encode(&data).unwrap().into();
    let load_sql: Arc<str> = B::LOAD.replace("{t}", &table).into();
    let update_sql: Arc<str> = B::UPDATE.replace("{t}", &table).into();
    println!("{name}: session_data {} bytes", encoded.len());
    println!(
        "  {:<6} {:>4} {:>12} {:>12} {:>7}",
        "op", "conc", "store/s", "floor/s", "ratio"
    );
    for workers in CONCURRENCY {
        let (s, k) = (store.clone(), keys.clone());
        let pool = store.pool().clone();
        let (fk, sql) = (keys.clone(), load_sql.clone());
        let (ours, floor) = compare(
            workers,
            move |w| {
                let (s, k) = (s.clone(), k.clone());
                async move {
                    assert!(s.load(&k[w]).await.unwrap().is_some());
                }
            },
            move |w| {
                let (pool, k, sql) = (pool.clone(), fk.clone(), sql.clone());
                async move {
                    let now = to_python_datetime(OffsetDateTime::now_utc());
                    assert!(B::load(&pool, &sql, k[w].as_str(), now).await.is_some());
                }
            },
        )
        .await;
        report("load", workers, ours, floor);

        let (s, k, d) = (store.clone(), keys.clone(), data.clone());
        let pool = store.pool().clone();
        let (fk, sql, enc) = (keys.clone(), update_sql.clone(), encoded.clone());
        let (ours, floor) = compare(
            workers,
            move |w| {
                let (s, k, d) = (s.clone(), k.clone(), d.clone());
                async move {
                    let record = SessionRecord {
                        data: &d,
                        expires_at: expire,
                        expiry_age: 1_209_600,
                    };
                    s.save(&k[w], record, SaveMode::Update).await.unwrap();
                }
            },
            move |w| {
                let (pool, k, sql, enc) = (pool.clone(), fk.clone(), sql.clone(), enc.clone());
                async move {
                    let now = to_python_datetime(OffsetDateTime::now_utc());
                    assert_eq!(
                        B::update(&pool, &sql, &enc, expire, k[w].as_str(), now).await,
                        1
                    );
                }
            },
        )
        .await;
        report("save", workers, ours, floor);
    }
    B::drop_table(store.pool(), &table).await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use sqlx::sqlite::{
            SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
        };
        let dir = tempfile::tempdir().unwrap();
        // WAL with synchronous=NORMAL, as SQLite is usually run for a web service (the default
        // rollback journal fsyncs every commit and measures the disk). One connection: SQLite
        // writes one at a time, and a single connection queues them without busy-wait sleeps.
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("bench.sqlite3"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        bench::<sqlx::Sqlite>("sqlite (file, WAL, synchronous=NORMAL, 1 connection)", pool).await;

        #[cfg(feature = "postgres")]
        match std::env::var("SESSION_TEST_POSTGRES_URL") {
            Ok(url) => {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(16)
                    .connect(&url)
                    .await
                    .unwrap();
                bench::<sqlx::Postgres>("postgres (pool of 16)", pool).await
            }
            Err(_) => println!("postgres: skipped (SESSION_TEST_POSTGRES_URL is not set)"),
        }
    });
}
