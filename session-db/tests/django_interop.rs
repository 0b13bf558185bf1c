//! Rows real Django 5.2 wrote (`fixtures/django/db-rows.json`, from `generate_db.py`) are read by
//! our store on each database exactly as Django reads them; the DDL and index names we emit are
//! the ones Django emits.
//!
//! The other direction (Django reading rows our store wrote) is `generate_db.py --check-rust`,
//! fed by `cargo run -p session-db --example write_rows_for_django` (see the README).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{CustomSession, Db, Raw, TestDb, store_in};
use serde_json::Value as Json;
use session_core::serializer::{JsonSerializer, Serializer};
use session_core::value::dicts_identical;
use session_core::{Dict, SessionKey, SessionStore, Value};
use session_db::{
    Dialect, DjangoSession, SessionModel, create_table_sql, django_index_name, sqlite_text,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn fixture() -> Json {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/django/db-rows.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn python_dict(json_text: &str) -> Dict {
    match JsonSerializer.loads_text(json_text).unwrap() {
        Value::Dict(d) => d,
        other => panic!("not a dict: {other:?}"),
    }
}

/// A Python `time.time()` value as a moment, exact to the microsecond (as Python's datetimes).
fn instant(unix: f64) -> OffsetDateTime {
    let whole = unix.floor();
    let micros = ((unix - whole) * 1e6).round() as i64;
    OffsetDateTime::from_unix_timestamp(whole as i64).unwrap()
        + time::Duration::microseconds(micros)
}

fn vendor(kind: Db) -> &'static str {
    match kind {
        Db::Sqlite => "sqlite",
        Db::Postgres => "postgres",
        Db::MySql => "mysql",
    }
}

fn dialect(name: &str) -> Dialect {
    match name {
        "sqlite" => Dialect::Sqlite,
        "postgres" => Dialect::Postgres,
        "mysql" => Dialect::MySql,
        other => panic!("unknown vendor {other}"),
    }
}

/// Inserts Django's rows verbatim into a fresh table and reads each one back with our store, at
/// the instant Django judged them.
async fn reads_what_django_wrote<B: Raw>(kind: Db) {
    let Some(db) = TestDb::or_skip(kind, "reads_what_django_wrote") else {
        return;
    };
    let fixture = fixture();
    let vendor_rows = fixture["vendors"][vendor(kind)]["rows"].as_array().unwrap();
    let verify_now = instant(fixture["verify_now"].as_f64().unwrap());
    let store = store_in::<B, _>(db, DjangoSession, &session_conformance::config()).await;
    for row in vendor_rows {
        B::insert_raw(
            store.pool(),
            store.table(),
            row["session_key"].as_str().unwrap(),
            row["session_data"].as_str().unwrap(),
            row["expire_date_stored"].as_str().unwrap(),
        )
        .await;
    }
    let at_verify = Arc::new(
        session_db::DbStore::<B>::new(store.pool().clone(), &session_conformance::config())
            .unwrap()
            .with_table(store.table())
            .unwrap()
            .with_clock(move || verify_now),
    );
    let mut live = 0;
    let mut expired = 0;
    for row in vendor_rows {
        let name = row["name"].as_str().unwrap();
        let key_text = row["session_key"].as_str().unwrap();
        let key = SessionKey::new(key_text).unwrap();
        let decoded = python_dict(row["decoded_json"].as_str().unwrap());

        // The row as stored: data verbatim, the same moment, Django's decoding.
        let ours = at_verify.row(key_text).await.unwrap().unwrap();
        assert_eq!(
            ours.session_data,
            row["session_data"].as_str().unwrap(),
            "{name}"
        );
        let django_expire =
            OffsetDateTime::parse(row["expire_date"].as_str().unwrap(), &Rfc3339).unwrap();
        assert_eq!(ours.expire_date, django_expire, "{name}");
        assert!(
            dicts_identical(&ours.get_decoded(at_verify.codec()), &decoded),
            "{name}"
        );

        // We would have written the very same bytes and the very same expire_date text.
        let signed_at = row["signed_at"].as_i64().unwrap();
        assert_eq!(
            at_verify.codec().encode_at(&decoded, signed_at).unwrap(),
            ours.session_data,
            "{name}: re-encoding differs"
        );
        let stored = row["expire_date_stored"].as_str().unwrap();
        let our_text = B::expire_text(store.pool(), store.table(), key_text).await;
        assert_eq!(our_text, stored.trim_end_matches("+00:00"), "{name}");
        if kind == Db::Sqlite {
            assert_eq!(sqlite_text(django_expire), stored, "{name}");
        }

        // Load agrees with Django's own load() at the same instant.
        let loaded = at_verify.load(&key).await.unwrap();
        if row["django_loads_at_verify_now"].as_bool().unwrap() {
            live += 1;
            let want = python_dict(row["loaded_json"].as_str().unwrap());
            assert!(dicts_identical(&loaded.unwrap(), &want), "{name}");
        } else {
            expired += 1;
            assert_eq!(loaded, None, "{name}: Django found it expired");
        }
        assert!(at_verify.exists(&key).await.unwrap(), "{name}");
    }
    // clearsessions at that instant removes the rows that expired strictly before it.
    let strictly_before = vendor_rows
        .iter()
        .filter(|r| {
            OffsetDateTime::parse(r["expire_date"].as_str().unwrap(), &Rfc3339).unwrap()
                < verify_now
        })
        .count() as u64;
    assert_eq!(
        at_verify.clear_expired_rows().await.unwrap(),
        strictly_before
    );
    assert!(live >= 10 && expired >= 3, "{live} live, {expired} expired");
    println!(
        "{}: read {} Django rows ({live} live, {expired} expired)",
        vendor(kind),
        vendor_rows.len()
    );
}

#[tokio::test]
async fn sqlite_reads_what_django_wrote() {
    reads_what_django_wrote::<sqlx::Sqlite>(Db::Sqlite).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_reads_what_django_wrote() {
    reads_what_django_wrote::<sqlx::Postgres>(Db::Postgres).await;
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn mysql_reads_what_django_wrote() {
    reads_what_django_wrote::<sqlx::MySql>(Db::MySql).await;
}

#[test]
fn our_ddl_is_djangos_ddl_on_every_database() {
    let fixture = fixture();
    for (name, vendor) in fixture["vendors"].as_object().unwrap() {
        let dialect = dialect(name);
        let django: Vec<String> =
            serde_json::from_value(vendor["ddl"]["django_session"].clone()).unwrap();
        assert_eq!(
            create_table_sql(dialect, "django_session", &[]),
            django,
            "{name}"
        );
        let custom: Vec<String> =
            serde_json::from_value(vendor["ddl"]["custom_sessions"].clone()).unwrap();
        assert_eq!(
            create_table_sql(dialect, "my_custom_sessions", CustomSession.extra_columns()),
            custom,
            "{name}"
        );
    }
}

#[test]
fn index_names_are_djangos_for_any_table_name() {
    let fixture = fixture();
    let mut checked = 0;
    for (name, vendor) in fixture["vendors"].as_object().unwrap() {
        let dialect = dialect(name);
        for (table, names) in vendor["index_names"].as_object().unwrap() {
            for (column, suffix, field) in [
                ("expire_date", "", "expire_date"),
                ("session_key", "_like", "session_key_like"),
                ("account_id", "", "account_id"),
            ] {
                assert_eq!(
                    django_index_name(dialect, table, column, suffix),
                    names[field].as_str().unwrap(),
                    "{name} {table} {column}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 6 * 3);
}
