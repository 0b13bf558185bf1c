//! Log out everywhere at scale: one user's 1,000 sessions among 1,000,000, listed and revoked
//! through the index, through the scan and through a custom session model's indexed user column
//! (SQLite file, release build).
//!
//! ```text
//! cargo bench -p session-auth --bench revoke              # 1,000,000 sessions
//! REVOKE_BENCH_SESSIONS=100000 cargo bench -p session-auth --bench revoke
//! ```
//!
//! Prints one line per measurement. Not a criterion benchmark: each measurement deletes what it
//! measures, and building the table takes far longer than any of them.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)] // a measuring tool

use std::time::Instant;

use session_auth::KeyKind;
use session_auth::everywhere::UserSessions;
use session_core::{SessionCodec, SessionConfig, SessionKey, Value, value::Dict};
use session_db::{ColumnType, ColumnValue, ExtraColumn, SessionModel};
use sqlx::{AssertSqlSafe, Executor as _, SqlitePool};

const TARGET_USER: &str = "424242";
const TARGET_SESSIONS: usize = 1_000;

/// Django's documented custom session model: `account_id = IntegerField(null=True,
/// db_index=True)` filled from `_auth_user_id`.
#[derive(Debug)]
struct AccountSession;

impl SessionModel for AccountSession {
    fn extra_columns(&self) -> &[ExtraColumn] {
        const COLUMNS: &[ExtraColumn] = &[ExtraColumn::new("account_id", ColumnType::Integer)
            .nullable()
            .indexed()];
        COLUMNS
    }

    fn values(&self, data: &Dict) -> Vec<ColumnValue> {
        let id = match data.get("_auth_user_id") {
            Some(Value::Str(s)) => s.parse::<i64>().ok(),
            _ => None,
        };
        vec![id.into()]
    }
}

/// Rows of (key, data, account_id).
async fn insert(pool: &SqlitePool, rows: &[(String, String, usize)]) {
    let mut tx = pool.begin().await.unwrap();
    for chunk in rows.chunks(300) {
        let values: Vec<String> = chunk
            .iter()
            .map(|(key, data, account)| {
                format!("('{key}', '{data}', '2099-01-01 00:00:00', {account})")
            })
            .collect();
        let sql = format!(
            "INSERT INTO django_session (session_key, session_data, expire_date, account_id) \
             VALUES {}",
            values.join(", ")
        );
        tx.execute(AssertSqlSafe(sql)).await.unwrap();
    }
    tx.commit().await.unwrap();
}

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
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let config = SessionConfig::new("bench-secret");
    let store =
        session_db::DbStore::<sqlx::Sqlite, _>::connect_with_model(&url, AccountSession, &config)
            .await
            .unwrap();
    store.ensure_schema().await.unwrap();
    let pool = store.pool().clone();
    let codec = SessionCodec::new(&config).unwrap();

    let started = Instant::now();
    // Everyone else: 10 sessions per user, each user's data signed once.
    let others = total - TARGET_SESSIONS;
    let mut rows = Vec::with_capacity(others);
    let mut signed = String::new();
    for n in 0..others {
        if n % 10 == 0 {
            signed = payload(&codec, &(n / 10).to_string());
        }
        rows.push((
            SessionKey::generate().unwrap().as_str().to_owned(),
            signed.clone(),
            n / 10,
        ));
        if rows.len() == 100_000 {
            insert(&pool, &rows).await;
            rows.clear();
        }
    }
    insert(&pool, &rows).await;
    let target_payload = payload(&codec, TARGET_USER);
    let target_id: usize = TARGET_USER.parse().unwrap();
    let target: Vec<(String, String, usize)> = (0..TARGET_SESSIONS)
        .map(|_| {
            (
                SessionKey::generate().unwrap().as_str().to_owned(),
                target_payload.clone(),
                target_id,
            )
        })
        .collect();
    insert(&pool, &target).await;
    println!("built {total} sessions in {:.1?}", started.elapsed());

    let scan = UserSessions::new(pool.clone(), "django_session", KeyKind::Integer, &config)
        .unwrap()
        .with_index("djsession_user_session")
        .unwrap();
    scan.ensure_index().await.unwrap();
    let index_only = UserSessions::new(pool.clone(), "django_session", KeyKind::Integer, &config)
        .unwrap()
        .with_index("djsession_user_session")
        .unwrap()
        .with_scan(false);
    let index_rows: Vec<String> = target
        .iter()
        .map(|(key, _, _)| format!("('{TARGET_USER}', '{key}')"))
        .collect();
    let fill_index = || async {
        pool.execute(AssertSqlSafe(format!(
            "INSERT INTO djsession_user_session (user_id, session_key) VALUES {}",
            index_rows.join(", ")
        )))
        .await
        .unwrap();
    };
    fill_index().await;

    let t = Instant::now();
    let listed = index_only.list(TARGET_USER).await.unwrap().len();
    println!(
        "list, index only:  {listed} sessions in {:.1?}",
        t.elapsed()
    );
    let t = Instant::now();
    let listed = scan.list(TARGET_USER).await.unwrap().len();
    println!(
        "list, index + scan: {listed} sessions in {:.1?}",
        t.elapsed()
    );

    let t = Instant::now();
    let removed = index_only.revoke(TARGET_USER).await.unwrap();
    println!(
        "revoke, index only:  {removed} sessions in {:.1?}",
        t.elapsed()
    );

    insert(&pool, &target).await;
    let t = Instant::now();
    let removed = scan.revoke(TARGET_USER).await.unwrap();
    println!(
        "revoke, scan (no index entries): {removed} sessions in {:.1?}",
        t.elapsed()
    );
    insert(&pool, &target).await;
    let by_column = UserSessions::new(pool.clone(), "django_session", KeyKind::Integer, &config)
        .unwrap()
        .with_user_column(&AccountSession, "account_id")
        .unwrap();
    let t = Instant::now();
    let listed = by_column.list(TARGET_USER).await.unwrap().len();
    println!(
        "list, user column:   {listed} sessions in {:.1?}",
        t.elapsed()
    );
    let t = Instant::now();
    let removed = by_column.revoke(TARGET_USER).await.unwrap();
    println!(
        "revoke, user column: {removed} sessions in {:.1?}",
        t.elapsed()
    );

    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM django_session")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        left as usize,
        total - TARGET_SESSIONS,
        "only the target's sessions went"
    );
    println!("{left} other sessions untouched");
}
