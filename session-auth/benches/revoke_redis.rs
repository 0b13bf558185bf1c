//! Log out everywhere at scale on the cache engine in Redis: one user's 1,000 sessions among
//! 1,000,000 pickled session entries, listed and revoked through the per-user set and through
//! the SCAN (release build, the Redis at `SESSION_TEST_REDIS_URL`, default
//! redis://127.0.0.1:6379, database 15 by default; the bench's keys are removed at the end).
//!
//! ```text
//! cargo bench -p session-auth --features redis --bench revoke_redis
//! REVOKE_BENCH_SESSIONS=100000 cargo bench -p session-auth --features redis --bench revoke_redis
//! ```
//!
//! Prints one line per measurement. Not a criterion benchmark: each measurement deletes what it
//! measures, and building the data takes far longer than any of them.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)] // a measuring tool

use std::sync::Arc;
use std::time::Instant;

use session_auth::KeyKind;
use session_auth::everywhere::RedisUserSessions;
use session_cache::{Cache, CacheStore, RedisCache};
use session_core::serializer::SerializerName;
use session_core::{SessionCodec, SessionConfig, SessionKey, Value, value::Dict};

const TARGET_USER: &str = "424242";
const TARGET_SESSIONS: usize = 1_000;
const TTL: u64 = 1_209_600;

fn payload(codec: &SessionCodec, user: &str) -> Vec<u8> {
    let mut data = Dict::new();
    data.insert("_auth_user_id", Value::from(user));
    data.insert(
        "_auth_user_backend",
        Value::from("django.contrib.auth.backends.ModelBackend"),
    );
    data.insert("_auth_user_hash", Value::from("0".repeat(64)));
    codec.serialize(&data).unwrap()
}

async fn set_all(
    connection: &mut redis::aio::MultiplexedConnection,
    entries: &[(String, Arc<Vec<u8>>)],
) {
    for chunk in entries.chunks(10_000) {
        let mut pipe = redis::pipe();
        for (key, value) in chunk {
            pipe.cmd("SET")
                .arg(key)
                .arg(value.as_slice())
                .arg("EX")
                .arg(TTL)
                .ignore();
        }
        let () = pipe.query_async(connection).await.unwrap();
    }
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::var("REVOKE_BENCH_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let url = std::env::var("REVOKE_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/15".to_owned());
    let config = SessionConfig {
        serializer: SerializerName::Pickle,
        ..SessionConfig::new("bench-secret")
    };
    let codec = SessionCodec::new(&config).unwrap();
    let redis = RedisCache::connect(&url).await.unwrap();
    let prefix = format!("djsession_bench_{}", std::process::id());
    let store =
        CacheStore::new(Cache::new(redis.clone()).with_key_prefix(&prefix), &config).unwrap();
    let mut connection = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys_before: u64 = redis.command(&redis::cmd("DBSIZE")).await.unwrap();

    let started = Instant::now();
    let others = total - TARGET_SESSIONS;
    let mut entries = Vec::with_capacity(100_000);
    let mut value = Arc::new(Vec::new());
    for n in 0..others {
        if n % 10 == 0 {
            value = Arc::new(payload(&codec, &(n / 10).to_string()));
        }
        entries.push((
            store.physical_key(&SessionKey::generate().unwrap()),
            value.clone(),
        ));
        if entries.len() == 100_000 {
            set_all(&mut connection, &entries).await;
            entries.clear();
        }
    }
    set_all(&mut connection, &entries).await;
    let target_value = Arc::new(payload(&codec, TARGET_USER));
    let target: Vec<SessionKey> = (0..TARGET_SESSIONS)
        .map(|_| SessionKey::generate().unwrap())
        .collect();
    let target_entries: Vec<(String, Arc<Vec<u8>>)> = target
        .iter()
        .map(|key| (store.physical_key(key), target_value.clone()))
        .collect();
    set_all(&mut connection, &target_entries).await;
    println!(
        "built {total} sessions in {:.1?} ({keys_before} other keys in the database)",
        started.elapsed()
    );

    let scan = RedisUserSessions::new(redis.clone(), &store, KeyKind::Integer, &config).unwrap();
    let index_only = RedisUserSessions::new(redis.clone(), &store, KeyKind::Integer, &config)
        .unwrap()
        .with_scan(false);
    let fill_set = || async {
        let mut sadd = redis::cmd("SADD");
        sadd.arg(scan.set_key(TARGET_USER));
        for key in &target {
            sadd.arg(key.as_str());
        }
        let _: u64 = redis.command(&sadd).await.unwrap();
    };
    fill_set().await;

    let t = Instant::now();
    let listed = index_only.list(TARGET_USER).await.unwrap().len();
    println!("list, set only:   {listed} sessions in {:.1?}", t.elapsed());
    let t = Instant::now();
    let listed = scan.list(TARGET_USER).await.unwrap().len();
    println!("list, set + scan: {listed} sessions in {:.1?}", t.elapsed());

    let t = Instant::now();
    let removed = index_only.revoke(TARGET_USER).await.unwrap();
    println!(
        "revoke, set only: {removed} sessions in {:.1?}",
        t.elapsed()
    );

    set_all(&mut connection, &target_entries).await;
    let t = Instant::now();
    let removed = scan.revoke(TARGET_USER).await.unwrap();
    println!(
        "revoke, scan (no set): {removed} sessions in {:.1?}",
        t.elapsed()
    );

    // Only the target's entries went; then remove everything the bench wrote.
    let pattern = format!("{prefix}:*");
    let mut cursor = 0u64;
    let mut left = 0usize;
    loop {
        let (next, keys): (u64, Vec<String>) = redis
            .command(
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(10_000),
            )
            .await
            .unwrap();
        left += keys.len();
        if !keys.is_empty() {
            let _: u64 = redis
                .command(redis::cmd("UNLINK").arg(&keys))
                .await
                .unwrap();
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(
        left,
        total - TARGET_SESSIONS,
        "only the target's sessions went"
    );
    println!("{left} other sessions untouched (and now removed)");
}
