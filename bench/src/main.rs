//! `djsession-bench`: one command that compares djsession with Django and tower-sessions and
//! prints one table.
//!
//! ```sh
//! bench/run                                   # installs wrk if missing, then everything below
//! cargo run -p djsession-bench --release -- all
//! cargo run -p djsession-bench --release -- codec --runs 3
//! ```
//!
//! - **codec**: encode/decode per second of ~100 B, ~2 KB and ~32 KB session dicts: our
//!   `SessionCodec` (JSON, signed, compressed when shorter) against Django's `signing.dumps`/`loads`
//!   in CPython (`bench/django_codec.py`, in a virtualenv it creates), the floor (bare
//!   HMAC-SHA256 + zlib of the same bytes) and, for decoding, the floor plus a parse with the
//!   fastest Rust JSON parser; allocations per operation are counted too. tower-sessions' column
//!   holds its record encoding (MessagePack, unsigned), for information.
//! - **store**: load + modify + save round trips per second at each concurrency, for memory, Redis
//!   and PostgreSQL: our stores against tower-sessions' matching stores and the backend's floor
//!   (a locked map of bytes; `redis-benchmark` GET+SET; the bare SQL statements through sqlx).
//! - **merge**: the same load + modify + save round trip through a `Session` handle under the
//!   `merge` concurrency policy (a versioned load, a compare-and-swap save) against
//!   `last_write_wins`, on memory, Redis and PostgreSQL: round trips per second and client CPU
//!   per round trip.
//! - **http**: an axum handler that reads and writes one session value, under `wrk` on loopback:
//!   requests per second and p99 latency with our layer, tower-sessions' layer and no sessions.
//!
//! Each figure is the median of `--runs` runs (contenders alternate run by run) with the min–max
//! range. Servers: `$SESSION_BENCH_POSTGRES_URL` (else `$SESSION_TEST_POSTGRES_URL`, else
//! `postgres://postgres@127.0.0.1:5432/test`) and `$SESSION_BENCH_REDIS_URL` (else
//! `$SESSION_TEST_REDIS_URL`, else `redis://127.0.0.1:6379`); every table, schema and key made is
//! uniquely named and removed afterwards.

mod allocs;
mod codec;
mod http;
mod http_actix;
mod machine;
mod payload;
mod profile;
mod stats;
mod store;
mod table;

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

/// Counts allocations per operation for the codec rows (off, and nearly free, otherwise).
#[global_allocator]
static ALLOCATOR: allocs::Counting = allocs::Counting;

/// The error type of the harness: anything that stops a benchmark, with its message.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser, Debug)]
#[command(about = "Compare djsession with Django and tower-sessions; prints one table")]
struct Cli {
    #[command(subcommand)]
    what: What,
    /// Runs per figure (the table shows their median and range).
    #[arg(long, default_value_t = 5, global = true)]
    runs: usize,
    /// Before starting, wait until the 1-minute load average is below this (polling every 30 s).
    #[arg(long, global = true)]
    wait_for_load: Option<f64>,
    /// The longest wait for `--wait-for-load`, in minutes; then it measures anyway and says so.
    #[arg(long, default_value_t = 60, global = true)]
    max_wait_minutes: u64,
    /// Seconds per codec run.
    #[arg(long, default_value_t = 1.0, global = true)]
    codec_seconds: f64,
    /// Counted seconds per store run.
    #[arg(long, default_value_t = 2.0, global = true)]
    store_seconds: f64,
    /// Uncounted seconds before each store run.
    #[arg(long, default_value_t = 0.5, global = true)]
    store_warm_up: f64,
    /// Store concurrencies.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64], global = true)]
    concurrency: Vec<usize>,
    /// Session size for store round trips: "100 B", "2 KB" or "32 KB".
    #[arg(long, default_value = "2 KB", global = true)]
    store_payload: String,
    /// Store backends to measure.
    #[arg(long, value_delimiter = ',', default_values_t = ["memory".to_owned(), "redis".to_owned(), "postgres".to_owned()], global = true)]
    stores: Vec<String>,
    /// Connections in each PostgreSQL pool.
    #[arg(long, default_value_t = 16, global = true)]
    pg_pool: u32,
    /// Seconds of load per HTTP run.
    #[arg(long, default_value_t = 5, global = true)]
    http_seconds: u64,
    /// Seconds of uncounted load before each HTTP run.
    #[arg(long, default_value_t = 1, global = true)]
    http_warm_up: u64,
    /// HTTP connections held open by wrk.
    #[arg(long, default_value_t = 64, global = true)]
    connections: usize,
    /// wrk threads (the server gets the other cores).
    #[arg(long, default_value_t = 1, global = true)]
    wrk_threads: usize,
    /// Pre-created sessions the HTTP requests cycle through.
    #[arg(long, default_value_t = 1024, global = true)]
    http_sessions: usize,
    /// Session size for the HTTP handler's sessions.
    #[arg(long, default_value = "100 B", global = true)]
    http_payload: String,
    /// Tokio worker threads (the same runtime serves every contender).
    #[arg(long, default_value_t = 2, global = true)]
    worker_threads: usize,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
enum What {
    /// Codec, store and HTTP comparisons.
    All,
    /// Encode/decode against Django and the HMAC+zlib floor.
    Codec,
    /// Store round trips against tower-sessions and each backend's floor.
    Store,
    /// HTTP requests per second and p99 latency against tower-sessions and no sessions.
    Http,
    /// Our store round trips through `Session` under the `merge` concurrency policy against
    /// `last_write_wins`.
    Merge,
    /// Run one operation in a loop and nothing else, for a profiler such as callgrind.
    Profile {
        /// `encode`, `decode` (our codec), `encode-floor`, `encode-write-floor`,
        /// `decode-floor`, `decode-parse-floor` (the codec floors, bare and with the JSON),
        /// `store-ours` / `store-tower` (memory store round
        /// trips), `pg-ours` / `pg-tower` / `pg-floor` (PostgreSQL round trips, one at a time),
        /// `redis-ours` / `redis-tower` (Redis round trips, one at a time),
        /// `http-ours` / `http-tower` / `http-bare` (in-process requests through the axum routers
        /// over memory stores), `http-ours-redis` / `http-tower-redis` / `http-redis-floor`
        /// (in-process requests through our layer over our Redis store, tower-sessions' over
        /// theirs, and the Redis floor's route); `serve-ROUTE` (`serve-ours-redis`, ...) serves
        /// the `http-ROUTE` router on a loopback port for `--iterations` seconds, for wrk.
        op: String,
        /// Session size: "100 B", "2 KB" or "32 KB".
        #[arg(long, default_value = "2 KB")]
        payload: String,
        /// Calls to make.
        #[arg(long, default_value_t = 1_000)]
        iterations: u64,
    },
}

fn env_url(names: &[&str], default: &str) -> String {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| default.to_owned())
}

fn payload(label: &str) -> Result<payload::Payload, BoxError> {
    payload::by_label(label).ok_or_else(|| {
        format!("unknown payload {label:?}: use \"100 B\", \"2 KB\" or \"32 KB\"").into()
    })
}

/// `[[package]]` blocks of the workspace's Cargo.lock: name, version and dependency entries.
fn locked_packages() -> Vec<(String, String, Vec<String>)> {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
        .unwrap_or_default();
    let quoted = |line: &str, key: &str| {
        line.strip_prefix(key)
            .map(|v| v.trim().trim_matches(['"', ',']).to_owned())
    };
    lock.split("[[package]]")
        .map(|block| {
            let (mut name, mut version, mut deps) = (String::new(), String::new(), Vec::new());
            for line in block.lines() {
                if let Some(v) = quoted(line, "name = ") {
                    name = v;
                } else if let Some(v) = quoted(line, "version = ") {
                    version = v;
                } else if line.starts_with(" \"") {
                    deps.push(line.trim().trim_matches(['"', ',']).to_owned());
                }
            }
            (name, version, deps)
        })
        .collect()
}

/// The version of `package` in Cargo.lock; with `from`, the one `from` depends on.
fn locked_version(package: &str, from: Option<&str>) -> String {
    let packages = locked_packages();
    let pinned = from.and_then(|from| {
        let (_, _, deps) = packages.iter().find(|(name, _, _)| name == from)?;
        let entry = deps.iter().find(|d| d.split(' ').next() == Some(package))?;
        entry.split(' ').nth(1).map(str::to_owned)
    });
    pinned
        .or_else(|| {
            packages
                .iter()
                .find(|(name, _, _)| name == package)
                .map(|(_, version, _)| version.clone())
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// Waits for a quiet machine; returns a note when it gave up.
fn wait_for_load(threshold: f64, max_wait: Duration) -> Option<String> {
    let started = Instant::now();
    loop {
        let load = machine::load_1m().unwrap_or(0.0);
        if load < threshold {
            return None;
        }
        if started.elapsed() >= max_wait {
            return Some(format!(
                "the 1-minute load average stayed at or above {threshold} for {} minutes; \
                 measured anyway at {load}",
                max_wait.as_secs() / 60
            ));
        }
        eprintln!("waiting: 1-minute load average {load} >= {threshold}");
        std::thread::sleep(Duration::from_secs(30));
    }
}

async fn redis_version(url: &str) -> String {
    use tower_sessions_redis_store::fred::prelude::{Client, ClientLike, Config};
    let Ok(config) = Config::from_url(url) else {
        return "?".into();
    };
    let client = Client::new(config, None, None, None);
    if client.init().await.is_err() {
        return "unreachable".into();
    }
    let info: String = client.info(None).await.unwrap_or_default();
    client.quit().await.ok();
    info.lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim()
        .to_owned()
}

async fn postgres_version(url: &str) -> String {
    use sqlx::Connection as _;
    let Ok(mut conn) = sqlx::PgConnection::connect(url).await else {
        return "unreachable".into();
    };
    let version: Result<(String,), _> = sqlx::query_as("SHOW server_version")
        .fetch_one(&mut conn)
        .await;
    conn.close().await.ok();
    version.map_or("?".into(), |(v,)| v)
}

async fn main_async(cli: Cli, runtime_note: String) -> Result<(), BoxError> {
    let postgres_url = env_url(
        &["SESSION_BENCH_POSTGRES_URL", "SESSION_TEST_POSTGRES_URL"],
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let redis_url = env_url(
        &["SESSION_BENCH_REDIS_URL", "SESSION_TEST_REDIS_URL"],
        "redis://127.0.0.1:6379",
    );
    if let What::Profile {
        op,
        payload: label,
        iterations,
    } = &cli.what
    {
        return profile::run(op, &payload(label)?, *iterations).await;
    }
    let wants = |w: What| cli.what == What::All || cli.what == w;
    let waited = cli
        .wait_for_load
        .and_then(|t| wait_for_load(t, Duration::from_secs(cli.max_wait_minutes * 60)));

    let date = machine::now();
    let load_start = machine::load_average();
    let machine = machine::Machine::detect();
    let mut rows = Vec::new();
    let mut json_floors = Vec::new();
    let mut notes = Vec::new();

    if wants(What::Codec) {
        let report = codec::run(&payload::all(), cli.runs, cli.codec_seconds)?;
        rows.extend(report.rows);
        json_floors.extend(report.json_floors);
        notes.push(format!(
            "codec: {}; one figure = calls in ~{} s; floor = C zlib level 6 (raw deflate \
             with zlib-rs's SIMD Adler-32 around it, as ours; kept when shorter) + HMAC-SHA256 \
             of the serialized bytes to encode, HMAC check + zlib-rs \
             inflate to decode, no JSON/base64/timestamp; floor+JSON = that floor plus the \
             JSON with the fastest Rust library: writing Django's bytes from a serde_json map to \
             encode, parsing them into the parser's own document to decode (here: {}); \
             \"encode <size> fast\" = our codec with the opt-in deflate fast (zlib level 1, not \
             Django's bytes but read by Django) against Django's dumps and a level-1 floor; \
             tower-sessions = rmp-serde of its Record, unsigned (for information); allocs = \
             allocation calls per operation (CPython's are not counted)",
            report.django, cli.codec_seconds, report.json_libraries
        ));
    }
    if wants(What::Store) {
        let options = store::Options {
            runs: cli.runs,
            seconds: cli.store_seconds,
            warm_up: cli.store_warm_up,
            concurrency: cli.concurrency.clone(),
            payload: payload(&cli.store_payload)?,
            postgres_url: postgres_url.clone(),
            redis_url: redis_url.clone(),
            pg_pool: cli.pg_pool,
        };
        for backend in &cli.stores {
            let backend_rows = match backend.as_str() {
                "memory" => store::memory(&options).await?,
                "redis" => store::redis(&options).await?,
                "postgres" => store::postgres(&options).await?,
                other => return Err(format!("unknown store {other:?}").into()),
            };
            rows.extend(backend_rows);
        }
        notes.push(format!(
            "store: {} session, one session per worker, {} s counted per run after {} s warm-up; \
             PostgreSQL pools of {} connections each; Redis: tower-sessions one multiplexed \
             connection (fred), ours up to 2 direct ones while at most 2 calls are in flight and \
             one shared pipelined one beyond (redis-benchmark: c connections)",
            options.payload.label, cli.store_seconds, cli.store_warm_up, cli.pg_pool
        ));
    }
    if wants(What::Merge) {
        let options = store::Options {
            runs: cli.runs,
            seconds: cli.store_seconds,
            warm_up: cli.store_warm_up,
            concurrency: cli.concurrency.clone(),
            payload: payload(&cli.store_payload)?,
            postgres_url: postgres_url.clone(),
            redis_url: redis_url.clone(),
            pg_pool: cli.pg_pool,
        };
        for backend in &cli.stores {
            rows.extend(store::merge(backend, &options).await?);
        }
        notes.push(format!(
            "merge: djsession = a fresh `Session` per round trip (read `visits`, write it \
             incremented, save) under concurrency = merge, last_write_wins = the same under \
             Django's policy; {} session, one per worker (so no compare ever fails), {} s \
             counted per run after {} s warm-up, the two alternating; \"µs CPU/rt\" = this \
             process's CPU time per round trip (a server's is not counted)",
            options.payload.label, cli.store_seconds, cli.store_warm_up
        ));
    }
    if wants(What::Http) {
        let options = http::Options {
            runs: cli.runs,
            seconds: cli.http_seconds,
            warm_up: cli.http_warm_up,
            connections: cli.connections,
            threads: cli.wrk_threads,
            sessions: cli.http_sessions,
            payload: payload(&cli.http_payload)?,
            redis_url: redis_url.clone(),
        };
        rows.extend(http::run(&options).await?);
        rows.extend(http_actix::run(&options, cli.worker_threads).await?);
        notes.push(format!(
            "http: wrk -t{} -c{} -d{}s (after {} s warm-up), requests cycle through {} \
             pre-created {} sessions; floor = the same route with no session layer (memory) or \
             doing only the two Redis commands of a session request, GET and SET with its \
             expiry, through redis-rs's multiplexed connection as our store does (Redis); \
             the \"actix\" rows: actix-web with {} workers, ours (session-actix) against \
             actix-session (a-s, in the tower-sessions column) on Redis and on cookies \
             (our Django signed cookies against its CookieSessionStore)",
            cli.wrk_threads,
            cli.connections,
            cli.http_seconds,
            cli.http_warm_up,
            cli.http_sessions,
            options.payload.label,
            cli.worker_threads
        ));
    }

    let load_end = machine::load_average();
    let wrk = machine::command_line("wrk", &["-v"]).unwrap_or_default();
    println!("djsession comparison, {date}");
    println!(
        "Machine: {}, {} cores, {}; {}; {runtime_note}",
        machine.cpu, machine.cores, machine.kernel, machine.rustc
    );
    println!("Load average (1/5/15 min): {load_start} at start, {load_end} at end");
    if let Some(note) = waited {
        println!("NOTE: {note}");
    }
    println!(
        "Peers: tower-sessions {} (memory store {}, Redis store {} on fred {}, PostgreSQL \
         store {} on sqlx {}); ours on sqlx {}, redis {}; Redis {}, PostgreSQL {}{}",
        locked_version("tower-sessions", None),
        locked_version("tower-sessions-memory-store", Some("tower-sessions")),
        locked_version("tower-sessions-redis-store", None),
        locked_version("fred", Some("tower-sessions-redis-store")),
        locked_version("tower-sessions-sqlx-store", None),
        locked_version("sqlx", Some("tower-sessions-sqlx-store")),
        locked_version("sqlx", Some("session-db")),
        locked_version("redis", Some("session-cache")),
        redis_version(&redis_url).await,
        postgres_version(&postgres_url).await,
        if wrk.is_empty() {
            String::new()
        } else {
            format!("; {}", wrk.split(" Copyright").next().unwrap_or(&wrk))
        },
    );
    println!(
        "Each cell: median of {} runs (min–max). \"us vs peer\": >1 means djsession is better \
         (faster or lower latency) than Django (codec) or tower-sessions (store, http); \
         \"(loss)\" marks a loss beyond the spread. \"% of floor\": our median as a share of \
         the floor's.",
        cli.runs
    );
    for note in notes {
        println!("- {note}");
    }
    println!();
    print!("{}", table::render(&rows, &json_floors));
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.worker_threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let note = format!("tokio multi-thread runtime, {} workers", cli.worker_threads);
    match runtime.block_on(main_async(cli, note)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
