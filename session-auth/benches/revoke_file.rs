//! Log out everywhere on the file engine: one user's 1,000 sessions among 100,000 session
//! files (by default), listed and revoked by reading every file (release build).
//!
//! ```text
//! cargo bench -p session-auth --features file --bench revoke_file
//! REVOKE_BENCH_SESSIONS=1000000 cargo bench -p session-auth --features file --bench revoke_file
//! ```
//!
//! Prints one line per measurement.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)] // a measuring tool

use std::time::Instant;

use session_auth::KeyKind;
use session_auth::everywhere::FileUserSessions;
use session_core::{SessionCodec, SessionConfig, SessionKey, Value, value::Dict};
use session_file::FileStore;

const TARGET_USER: &str = "424242";
const TARGET_SESSIONS: usize = 1_000;

fn payload(codec: &SessionCodec, user: &str) -> String {
    let mut data = Dict::new();
    data.insert("_auth_user_id", Value::from(user));
    data.insert(
        "_auth_user_backend",
        Value::from("django.contrib.auth.backends.ModelBackend"),
    );
    data.insert("_auth_user_hash", Value::from("0".repeat(64)));
    codec.encode(&data).unwrap()
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::var("REVOKE_BENCH_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let config = SessionConfig::new("bench-secret");
    let codec = SessionCodec::new(&config).unwrap();
    let store = FileStore::new(dir.path(), &config).await.unwrap();

    let started = Instant::now();
    // Files written directly (as a Django site would have left them), not through the store's
    // fsynced atomic writes, which would make building the directory the slowest part by far.
    let write = |user: &str, count: usize| {
        let value = payload(&codec, user);
        for _ in 0..count {
            let key = SessionKey::generate().unwrap();
            std::fs::write(store.file_path(&key).unwrap(), &value).unwrap();
        }
    };
    for user in 0..(total - TARGET_SESSIONS).div_ceil(10) {
        write(
            &user.to_string(),
            10.min(total - TARGET_SESSIONS - user * 10),
        );
    }
    write(TARGET_USER, TARGET_SESSIONS);
    println!("built {total} session files in {:.1?}", started.elapsed());

    let sessions = FileUserSessions::new(store, KeyKind::Integer);
    let t = Instant::now();
    let listed = sessions.list(TARGET_USER).await.unwrap().len();
    println!("list:   {listed} sessions in {:.1?}", t.elapsed());
    let t = Instant::now();
    let removed = sessions.revoke(TARGET_USER).await.unwrap();
    println!("revoke: {removed} sessions in {:.1?}", t.elapsed());
    let left = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(
        left,
        total - TARGET_SESSIONS,
        "only the target's files went"
    );
    println!("{left} other session files untouched");
}
