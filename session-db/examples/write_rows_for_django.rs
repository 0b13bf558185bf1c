//! Writes sessions through our store into a named table on each database, for Django to check.
//!
//! ```sh
//! export SESSION_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test
//! export SESSION_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/test
//! cargo run -p session-db --features postgres,mysql --example write_rows_for_django -- \
//!     --out /tmp/djs-rust-rows.json
//! python3 fixtures/django/generate_db.py --check-rust /tmp/djs-rust-rows.json
//! ```
//!
//! Each database gets two tables, recreated on every run: `djs_rust_interop` (Django's model) and
//! `djs_rust_interop_custom` (Django's test-suite `CustomSession`, with `account_id`). SQLite
//! writes to `--sqlite PATH` (default `/tmp/djs-rust-interop.sqlite3`); PostgreSQL and MySQL are
//! included when their URL variable is set. The manifest lists every row with the data written,
//! the expiry, whether it is live, and the expected `account_id`.

use std::sync::Arc;

use serde_json::json;
use session_core::expiry::isoformat;
use session_core::serializer::{JsonSerializer, Serializer};
use session_core::{Dict, Expiry, Session, SessionConfig, Value};
use session_db::{Backend, ColumnType, ColumnValue, DbStore, ExtraColumn, SessionModel};
use time::{Duration, OffsetDateTime};

const TABLE: &str = "djs_rust_interop";
const CUSTOM_TABLE: &str = "djs_rust_interop_custom";

type Failure = Box<dyn std::error::Error>;

/// Django's `sessions_tests.models.CustomSession`.
#[derive(Debug)]
struct CustomSession;

impl SessionModel for CustomSession {
    fn extra_columns(&self) -> &[ExtraColumn] {
        const COLUMNS: &[ExtraColumn] = &[ExtraColumn::new("account_id", ColumnType::Integer)
            .nullable()
            .indexed()];
        COLUMNS
    }

    fn values(&self, data: &Dict) -> Vec<ColumnValue> {
        let account = match data.get("_auth_user_id") {
            Some(Value::Int(i)) => i.as_i64(),
            Some(Value::Str(s)) => s.trim().parse().ok(),
            _ => None,
        };
        vec![account.into()]
    }
}

/// One session to write: its name, data and expiry.
type Case = (&'static str, Vec<(&'static str, Value)>, Option<Expiry>);

fn cases() -> Vec<Case> {
    let now = OffsetDateTime::now_utc();
    let big: Value = "123456789012345678901234567890"
        .parse::<session_core::Int>()
        .map(Value::Int)
        .unwrap_or(Value::Null);
    vec![
        ("hello", vec![("hello", "world".into())], None),
        ("empty", vec![], None),
        (
            "auth_string_id",
            vec![
                ("_auth_user_id", "42".into()),
                (
                    "_auth_user_backend",
                    "django.contrib.auth.backends.ModelBackend".into(),
                ),
            ],
            None,
        ),
        ("auth_int_id", vec![("_auth_user_id", 7i64.into())], None),
        (
            "non_ascii",
            vec![
                ("name", "Zoë ’😀".into()),
                ("ключ", "значение".into()),
                ("controls", "\u{0}\t\n\u{2028}\"\\".into()),
            ],
            None,
        ),
        (
            "values",
            vec![
                ("big", big),
                ("float", 0.1.into()),
                (
                    "bools",
                    Value::List(vec![true.into(), false.into(), Value::Null]),
                ),
                (
                    "nested",
                    Value::List(vec![1i64.into(), Value::List(vec!["deep".into()])]),
                ),
            ],
            None,
        ),
        ("compressed", vec![("note", "abc".repeat(300).into())], None),
        (
            "expiry_seconds",
            vec![("k", "v".into())],
            Some(Expiry::Seconds(300)),
        ),
        (
            "expiry_browser_close",
            vec![("k", "v".into())],
            Some(Expiry::BrowserClose),
        ),
        (
            "expiry_datetime",
            vec![("k", "v".into())],
            Some(Expiry::At(now + Duration::days(1))),
        ),
        (
            "expiry_whole_second",
            vec![("k", "v".into())],
            Some(Expiry::At(
                (now + Duration::days(2))
                    .replace_nanosecond(0)
                    .unwrap_or(now),
            )),
        ),
        (
            "expiry_duration",
            vec![("k", "v".into())],
            Some(Expiry::In(Duration::hours(1))),
        ),
        (
            "expired_seconds",
            vec![("k", "gone".into())],
            Some(Expiry::Seconds(-600)),
        ),
        (
            "expired_datetime",
            vec![("k", "gone".into())],
            Some(Expiry::At(now - Duration::days(3))),
        ),
    ]
}

async fn write_rows<B: Backend, M: SessionModel>(
    store: DbStore<B, M>,
    config: &Arc<SessionConfig>,
    custom: bool,
) -> Result<Vec<serde_json::Value>, Failure> {
    store.ensure_schema().await?;
    let store = Arc::new(store);
    let mut rows = Vec::new();
    for (name, pairs, expiry) in cases() {
        let session = Session::new(store.clone(), config.clone(), None);
        session.update(pairs).await?;
        session.save().await?;
        // Then through the update path, which also sets the expiry (an expired session can only
        // be written by an update of a live one: updating an expired row fails).
        if let Some(expiry) = expiry {
            session.set_expiry(expiry).await?;
        }
        session.insert("saved_twice", &true).await?;
        session.save().await?;
        let key = session.key().ok_or("a saved session has a key")?;
        let row = store.row(key.as_str()).await?.ok_or("the row is there")?;
        let data = session.data().await?;
        let data_json = String::from_utf8(JsonSerializer.dumps_dict(&data)?)?;
        let now = OffsetDateTime::now_utc();
        let live = row.expire_date > now;
        if (row.expire_date - now).abs() < Duration::minutes(1) {
            return Err(format!("{name} expires too close to now to judge").into());
        }
        let mut entry = json!({
            "name": name,
            "key": key.as_str(),
            "data_json": data_json,
            "live": live,
            "expire_date": isoformat(row.expire_date),
        });
        if custom {
            entry["account_id"] = match row.extra.first() {
                Some(ColumnValue::Integer(i)) => json!(i),
                _ => json!(null),
            };
        }
        rows.push(entry);
    }
    Ok(rows)
}

async fn write_database<B: Backend>(
    url: &str,
    config: &Arc<SessionConfig>,
    drop_tables: impl AsyncFnOnce(&sqlx::Pool<B>) -> Result<(), sqlx::Error>,
) -> Result<serde_json::Value, Failure> {
    let plain = DbStore::<B>::connect(url, config)
        .await?
        .with_table(TABLE)?;
    drop_tables(plain.pool()).await?;
    let custom = DbStore::<B, _>::with_model(plain.pool().clone(), CustomSession, config)?
        .with_table(CUSTOM_TABLE)?;
    let custom_rows = write_rows(custom, config, true).await?;
    let plain_rows = write_rows(plain, config, false).await?;
    Ok(json!({ TABLE: plain_rows, CUSTOM_TABLE: custom_rows }))
}

fn manifest_entry(url: &str, rows: serde_json::Value) -> serde_json::Value {
    json!({ "django_url": url, "table": TABLE, "custom_table": CUSTOM_TABLE, "rows": rows })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let mut out = None;
    let mut sqlite_path = "/tmp/djs-rust-interop.sqlite3".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = args.next(),
            "--sqlite" => sqlite_path = args.next().ok_or("--sqlite needs a path")?,
            other => return Err(format!("unknown argument {other}; see the example's docs").into()),
        }
    }
    let out = out.ok_or("--out PATH is required")?;
    let config = Arc::new(SessionConfig::new("django_tests_secret_key"));
    let mut databases = serde_json::Map::new();

    let sqlite_url = format!("sqlite://{sqlite_path}?mode=rwc");
    let rows = write_database::<sqlx::Sqlite>(&sqlite_url, &config, async |pool| {
        for table in [TABLE, CUSTOM_TABLE] {
            let sql = format!("DROP TABLE IF EXISTS \"{table}\"");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(pool)
                .await?;
        }
        Ok(())
    })
    .await?;
    databases.insert("sqlite".into(), manifest_entry(&sqlite_path, rows));

    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("SESSION_TEST_POSTGRES_URL") {
        let rows = write_database::<sqlx::Postgres>(&url, &config, async |pool| {
            for table in [TABLE, CUSTOM_TABLE] {
                let sql = format!("DROP TABLE IF EXISTS \"{table}\"");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(pool)
                    .await?;
            }
            Ok(())
        })
        .await?;
        databases.insert("postgres".into(), manifest_entry(&url, rows));
    }

    #[cfg(feature = "mysql")]
    if let Ok(url) = std::env::var("SESSION_TEST_MYSQL_URL") {
        let rows = write_database::<sqlx::MySql>(&url, &config, async |pool| {
            for table in [TABLE, CUSTOM_TABLE] {
                let sql = format!("DROP TABLE IF EXISTS `{table}`");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(pool)
                    .await?;
            }
            Ok(())
        })
        .await?;
        databases.insert("mysql".into(), manifest_entry(&url, rows));
    }

    let count: usize = databases
        .values()
        .map(|db| {
            db["rows"].as_object().map_or(0, |t| {
                t.values().map(|r| r.as_array().map_or(0, Vec::len)).sum()
            })
        })
        .sum();
    let names: Vec<&String> = databases.keys().collect();
    println!("wrote {count} sessions on {names:?}; manifest {out}");
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&json!({ "databases": databases }))?,
    )?;
    Ok(())
}
