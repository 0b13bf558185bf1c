//! Clearing expired sessions at scale: a table of `--rows` sessions (default ten million), half
//! of them expired, cleared by `clear_expired_rows` in batches while `--loaders` tasks keep
//! loading live sessions. Prints the time to clear and the load latency (p50, p99) while idle and
//! during the clear, on PostgreSQL and MariaDB (`SESSION_BENCH_POSTGRES_URL` /
//! `SESSION_BENCH_MYSQL_URL`, else the `SESSION_TEST_*` ones, else the local defaults).
//!
//! ```sh
//! cargo bench -p session-db --features postgres,mysql --bench clear_at_scale -- \
//!     --rows 10000000 [--batch 10000] [--pause-ms 0] [--loaders 8] [--idle-seconds 10] \
//!     [--rate 0] [--db postgres|mysql|both]
//! ```
//!
//! By default `--loaders` tasks load back to back (a closed loop that saturates the machine, so
//! any work the clear adds shows as load latency, but a stalled loader sends nothing, so stalls
//! are undercounted). `--rate N` instead starts N loads per second, each its own task, as
//! requests reach a web server, timed from when it was due: a stall counts for every load it
//! held up.
//!
//! The table (`djs_scale_<pid>`) is created with Django's schema and index and dropped after.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark binary: failures abort it

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use session_core::{Dict, SessionConfig, SessionKey, SessionStore, Value};
use session_db::{Backend, DbStore};
use sqlx::{AssertSqlSafe, Executor};

struct Options {
    rows: u64,
    batch: u64,
    pause: Duration,
    loaders: usize,
    idle: Duration,
    // Loads per second across all loaders; 0 = as fast as they can.
    rate: u64,
    dbs: Vec<&'static str>,
}

fn options() -> Options {
    let mut options = Options {
        rows: 10_000_000,
        batch: session_db::DEFAULT_CLEAR_BATCH_SIZE,
        pause: Duration::ZERO,
        loaders: 8,
        idle: Duration::from_secs(10),
        rate: 0,
        dbs: vec!["postgres", "mysql"],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match arg.as_str() {
            "--rows" => options.rows = value().parse().unwrap(),
            "--batch" => options.batch = value().parse().unwrap(),
            "--pause-ms" => options.pause = Duration::from_millis(value().parse().unwrap()),
            "--loaders" => options.loaders = value().parse().unwrap(),
            "--idle-seconds" => options.idle = Duration::from_secs(value().parse().unwrap()),
            "--rate" => options.rate = value().parse().unwrap(),
            "--db" => {
                options.dbs = match value().as_str() {
                    "postgres" => vec!["postgres"],
                    "mysql" => vec!["mysql"],
                    _ => vec!["postgres", "mysql"],
                }
            }
            // cargo bench passes --bench; anything else is ignored.
            _ => {}
        }
    }
    options
}

fn url(database: &str) -> String {
    let (bench, test, default) = match database {
        "postgres" => (
            "SESSION_BENCH_POSTGRES_URL",
            "SESSION_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        ),
        _ => (
            "SESSION_BENCH_MYSQL_URL",
            "SESSION_TEST_MYSQL_URL",
            "mysql://root@127.0.0.1:3306/test",
        ),
    };
    std::env::var(bench)
        .or_else(|_| std::env::var(test))
        .unwrap_or_else(|_| default.to_owned())
}

/// The key of row `i`: 32 characters, as Django's are.
fn key(i: u64) -> String {
    format!("k{i:031x}")
}

/// Latency percentiles of what the loaders recorded.
fn percentiles(mut samples: Vec<Duration>) -> (usize, Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    (samples.len(), at(0.50), at(0.99))
}

/// Row `i` of the live ones (odd rows), from a xorshift state.
fn next_live_row(state: &mut u64, rows: u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state % (rows / 2)) * 2 + 1
}

/// Loads random live sessions until `stop`, returning every latency: from `loaders` tasks
/// back to back, or, with a `rate`, as requests arriving at that rate.
async fn load_while<B: Backend>(
    store: Arc<DbStore<B>>,
    rows: u64,
    loaders: usize,
    rate: u64,
    stop: Arc<AtomicBool>,
) -> Vec<Duration> {
    if rate > 0 {
        return load_at_rate(store, rows, rate, stop).await;
    }
    let mut tasks = Vec::new();
    for seed in 0..loaders as u64 {
        let (store, stop) = (store.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let i = next_live_row(&mut state, rows);
                let key = SessionKey::new(key(i)).unwrap();
                let started = Instant::now();
                let loaded = store.load(&key).await.unwrap();
                samples.push(started.elapsed());
                assert!(loaded.is_some(), "live row {i} must load");
            }
            samples
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

/// How late the load scheduler may wake before its lateness counts as load latency.
const TIMER_SLACK: Duration = Duration::from_millis(1);

/// Loads arriving `rate` times a second, each its own task, as requests reach a web server:
/// a load that stalls delays only itself, and each is timed from when it arrived (waiting for
/// a pool connection included), so a stall is counted for every load it held up.
async fn load_at_rate<B: Backend>(
    store: Arc<DbStore<B>>,
    rows: u64,
    rate: u64,
    stop: Arc<AtomicBool>,
) -> Vec<Duration> {
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut sent = 0u32;
    let mut tasks = tokio::task::JoinSet::new();
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // Every load due by now, each timed from its due moment, less the timer's own
        // lateness up to a millisecond (its granularity, not the database's doing): a load is
        // counted late only when the scheduler itself was held up longer than that.
        let now = Instant::now();
        while started + period * sent <= now {
            let due = (started + period * sent + TIMER_SLACK).min(now);
            sent += 1;
            let i = next_live_row(&mut state, rows);
            let store = store.clone();
            tasks.spawn(async move {
                let key = SessionKey::new(key(i)).unwrap();
                let loaded = store.load(&key).await.unwrap();
                assert!(loaded.is_some(), "live row {i} must load");
                due.elapsed()
            });
        }
        // A load that failed aborts the run, as in the back-to-back loaders.
        while let Some(latency) = tasks.try_join_next() {
            samples.push(latency.unwrap());
        }
        tokio::time::sleep(period).await;
    }
    while let Some(latency) = tasks.join_next().await {
        samples.push(latency.unwrap());
    }
    samples
}

async fn run<B: Backend>(
    database: &str,
    populate: impl AsyncFnOnce(&DbStore<B>, &str) -> Duration,
    drop_table: impl AsyncFnOnce(&DbStore<B>),
    options: &Options,
) where
    DbStore<B>: SessionStore,
{
    let config = SessionConfig::new("clear_at_scale");
    let table = format!("djs_scale_{}", std::process::id());
    let store = DbStore::<B>::connect(&url(database), &config)
        .await
        .unwrap()
        .with_table(&table)
        .unwrap()
        .with_clear_batch_size(options.batch)
        .unwrap()
        .with_clear_pause(options.pause);
    store.ensure_schema().await.unwrap();
    let mut data = Dict::default();
    data.insert("_auth_user_id".to_owned(), Value::from("18342"));
    data.insert("cart".to_owned(), Value::from("a few items"));
    let encoded = store.codec().encode(&data).unwrap();

    println!(
        "{database}: populating {} rows ({} expired)...",
        options.rows,
        options.rows / 2
    );
    let took = populate(&store, &encoded).await;
    println!("{database}: populated in {:.1} s", took.as_secs_f64());
    let store = Arc::new(store);

    let stop = Arc::new(AtomicBool::new(false));
    let idle = tokio::spawn(load_while(
        store.clone(),
        options.rows,
        options.loaders,
        options.rate,
        stop.clone(),
    ));
    tokio::time::sleep(options.idle).await;
    stop.store(true, Ordering::Relaxed);
    let (idle_n, idle_p50, idle_p99) = percentiles(idle.await.unwrap());

    let stop = Arc::new(AtomicBool::new(false));
    let during = tokio::spawn(load_while(
        store.clone(),
        options.rows,
        options.loaders,
        options.rate,
        stop.clone(),
    ));
    let started = Instant::now();
    let mut batches = 0u64;
    let removed = store
        .clear_expired_rows_with_progress(|_| batches += 1)
        .await
        .unwrap();
    let clear = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (during_n, during_p50, during_p99) = percentiles(during.await.unwrap());
    assert_eq!(removed, options.rows / 2);

    println!(
        "{database}: cleared {removed} of {} rows in {:.1} s ({batches} statements of up to {}, \
         {} ms pause; {:.0} rows/s)",
        options.rows,
        clear.as_secs_f64(),
        options.batch,
        options.pause.as_millis(),
        removed as f64 / clear.as_secs_f64()
    );
    let pacing = match options.rate {
        0 => format!("{} tasks back to back", options.loaders),
        rate => format!("{rate}/s arriving"),
    };
    println!(
        "{database}: loads ({pacing}): idle p50 {:.2} ms p99 {:.2} ms ({idle_n} loads); during the clear p50 {:.2} ms p99 {:.2} ms ({during_n} loads); p99 during/idle {:.2}x",
        idle_p50.as_secs_f64() * 1e3,
        idle_p99.as_secs_f64() * 1e3,
        during_p50.as_secs_f64() * 1e3,
        during_p99.as_secs_f64() * 1e3,
        during_p99.as_secs_f64() / idle_p99.as_secs_f64()
    );
    drop_table(&store).await;
}

/// Inserts in chunks of a million rows, so no single transaction is huge.
const CHUNK: u64 = 1_000_000;

#[tokio::main]
async fn main() {
    let options = options();
    let rows = options.rows;
    if options.dbs.contains(&"postgres") {
        run::<sqlx::Postgres>(
            "postgres",
            async |store, encoded| {
                let started = Instant::now();
                let mut from = 1;
                while from <= rows {
                    let to = (from + CHUNK - 1).min(rows);
                    let sql = format!(
                        "INSERT INTO \"{}\" (session_key, session_data, expire_date) \
                         SELECT 'k' || lpad(to_hex(i), 31, '0'), $1, \
                         CASE WHEN i % 2 = 0 THEN now() - interval '1 day' \
                         ELSE now() + interval '1 day' END \
                         FROM generate_series({from}::bigint, {to}::bigint) i",
                        store.table()
                    );
                    sqlx::query(AssertSqlSafe(sql))
                        .bind(encoded)
                        .execute(store.pool())
                        .await
                        .unwrap();
                    from = to + 1;
                }
                store
                    .pool()
                    .execute(sqlx::raw_sql(AssertSqlSafe(format!(
                        "ANALYZE \"{}\"",
                        store.table()
                    ))))
                    .await
                    .unwrap();
                started.elapsed()
            },
            async |store| {
                let sql = format!("DROP TABLE \"{}\"", store.table());
                store
                    .pool()
                    .execute(sqlx::raw_sql(AssertSqlSafe(sql)))
                    .await
                    .unwrap();
            },
            &options,
        )
        .await;
    }
    if options.dbs.contains(&"mysql") {
        run::<sqlx::MySql>(
            "mysql",
            async |store, encoded| {
                let started = Instant::now();
                let mut from = 1;
                while from <= rows {
                    let to = (from + CHUNK - 1).min(rows);
                    // MariaDB's Sequence engine: seq_1_to_N is a table of 1..N.
                    let sql = format!(
                        "INSERT INTO `{}` (session_key, session_data, expire_date) \
                         SELECT CONCAT('k', LPAD(LOWER(HEX(seq)), 31, '0')), ?, \
                         IF(seq % 2 = 0, UTC_TIMESTAMP(6) - INTERVAL 1 DAY, \
                         UTC_TIMESTAMP(6) + INTERVAL 1 DAY) FROM seq_{from}_to_{to}",
                        store.table()
                    );
                    sqlx::query(AssertSqlSafe(sql))
                        .bind(encoded)
                        .execute(store.pool())
                        .await
                        .unwrap();
                    from = to + 1;
                }
                store
                    .pool()
                    .execute(sqlx::raw_sql(AssertSqlSafe(format!(
                        "ANALYZE TABLE `{}`",
                        store.table()
                    ))))
                    .await
                    .unwrap();
                started.elapsed()
            },
            async |store| {
                let sql = format!("DROP TABLE `{}`", store.table());
                store
                    .pool()
                    .execute(sqlx::raw_sql(AssertSqlSafe(sql)))
                    .await
                    .unwrap();
            },
            &options,
        )
        .await;
    }
}
