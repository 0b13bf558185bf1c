//! Load+save round trips per second against a single Redis, beside `redis-benchmark` GET/SET
//! figures for the same value size and concurrency on the same server in the same run.
//!
//! ```sh
//! cargo bench -p session-cache --features redis --bench redis_roundtrip
//! ```
//!
//! Uses `$SESSION_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`) and `redis-benchmark` from
//! `$PATH`. One round trip is what a request that reads and changes its session costs: a `GET`
//! (load) and a `SET … XX EX` (save). Each of `c` tasks loops on its own session through one
//! store (one multiplexed connection); `redis-benchmark -c c` runs `c` connections. The baseline
//! for a round trip is therefore one GET plus one SET at redis-benchmark's rates:
//! `1 / (1/get + 1/set)` pairs per second.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use session_cache::{Cache, CacheStore, RedisCache};
use session_core::serializer::SerializerName;
use session_core::{Dict, SaveMode, SessionConfig, SessionKey, SessionRecord, SessionStore, Value};
use time::OffsetDateTime;

const CONCURRENCY: [usize; 3] = [1, 16, 64];
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(5);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A typical logged-in session: Django's auth keys, a CSRF-ish token, a small cart.
fn session_data() -> Dict {
    let mut data = Dict::new();
    data.insert("_auth_user_id", Value::from("184467"));
    data.insert(
        "_auth_user_backend",
        Value::from("django.contrib.auth.backends.ModelBackend"),
    );
    data.insert(
        "_auth_user_hash",
        Value::from("6f5a3c1e0b0d4b1f8f1c2b7a9d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e"),
    );
    data.insert("visits", Value::from(17i64));
    data.insert(
        "cart",
        Value::List(vec![Value::from("sku-1042"), Value::from("sku-2210")]),
    );
    data
}

fn record(data: &Dict) -> SessionRecord<'_> {
    SessionRecord {
        data,
        expires_at: OffsetDateTime::now_utc() + time::Duration::seconds(1_209_600),
        expiry_age: 1_209_600,
    }
}

/// Round trips per second with `concurrency` tasks, each on its own session.
async fn ours(store: &CacheStore, concurrency: usize) -> Result<f64, BoxError> {
    let data = Arc::new(session_data());
    let mut keys = Vec::new();
    for _ in 0..concurrency {
        let key = SessionKey::generate()?;
        store
            .save(&key, record(&data), SaveMode::MustCreate)
            .await?;
        keys.push(key);
    }
    let counted = Arc::new(AtomicU64::new(0));
    let counting = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_at = Instant::now() + WARM_UP + MEASURE;
    let tasks: Vec<_> = keys
        .iter()
        .cloned()
        .map(|key| {
            let (store, data) = (store.clone(), data.clone());
            let (counted, counting) = (counted.clone(), counting.clone());
            tokio::spawn(async move {
                while Instant::now() < stop_at {
                    let loaded = store.load(&key).await?.ok_or("session vanished")?;
                    store.save(&key, record(&loaded), SaveMode::Update).await?;
                    if counting.load(Ordering::Relaxed) {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                drop(data);
                Ok::<(), BoxError>(())
            })
        })
        .collect();
    tokio::time::sleep(WARM_UP).await;
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    for key in &keys {
        store.delete(key).await?;
    }
    Ok(counted.load(Ordering::Relaxed) as f64 / elapsed)
}

/// `redis-benchmark` GET and SET requests per second.
fn redis_benchmark(
    host: &str,
    port: &str,
    size: usize,
    concurrency: usize,
) -> Result<(f64, f64), BoxError> {
    let requests = if concurrency == 1 { 50_000 } else { 200_000 };
    let output = Command::new("redis-benchmark")
        .args(["-h", host, "-p", port, "-t", "get,set", "-q"])
        .args(["-d", &size.to_string(), "-c", &concurrency.to_string()])
        .args(["-n", &requests.to_string()])
        .output()?;
    if !output.status.success() {
        return Err(format!("redis-benchmark failed: {output:?}").into());
    }
    let text = String::from_utf8_lossy(&output.stdout).replace('\r', "\n");
    let rate = |name: &str| -> Result<f64, BoxError> {
        text.lines()
            .filter_map(|line| line.trim().strip_prefix(&format!("{name}: ")))
            .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
            .next_back()
            .ok_or_else(|| format!("no {name} figure in redis-benchmark output: {text}").into())
    };
    Ok((rate("GET")?, rate("SET")?))
}

fn host_and_port(url: &str) -> (String, String) {
    let authority = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    match authority.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.to_owned()),
        None => (authority.to_owned(), "6379".to_owned()),
    }
}

fn main() -> Result<(), BoxError> {
    let url = std::env::var("SESSION_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let (host, port) = host_and_port(&url);
    let runtime = tokio::runtime::Runtime::new()?;
    let config = SessionConfig {
        serializer: SerializerName::Pickle,
        ..SessionConfig::new("bench secret")
    };
    let prefix = format!("djsession_bench_{}", std::process::id());
    let store = runtime.block_on(async {
        let redis = RedisCache::connect(&url).await?;
        CacheStore::new(Cache::new(redis).with_key_prefix(prefix), &config)
    })?;
    let size = session_core::SessionCodec::new(&config)?
        .serialize(&session_data())?
        .len();

    println!("Redis at {url}; session value {size} bytes (pickle); {MEASURE:?} per point");
    println!(
        "{:>4} | {:>12} | {:>12} | {:>12} | {:>14} | {:>6}",
        "c", "ours rt/s", "bench GET/s", "bench SET/s", "GET+SET pair/s", "ratio"
    );
    for concurrency in CONCURRENCY {
        let ours = runtime.block_on(ours(&store, concurrency))?;
        let (get, set) = redis_benchmark(&host, &port, size, concurrency)?;
        let pairs = 1.0 / (1.0 / get + 1.0 / set);
        println!(
            "{concurrency:>4} | {ours:>12.0} | {get:>12.0} | {set:>12.0} | {pairs:>14.0} | {:>6.2}",
            ours / pairs
        );
    }
    Ok(())
}
