//! Writes sessions with the file store for real Django to read back (the reverse interop check).
//!
//! ```sh
//! dir=$(mktemp -d)
//! cargo run -p session-file --example write_files_for_django -- "$dir"
//! python3 fixtures/django/generate_file_cookie.py --read-files "$dir"
//! ```
//!
//! The directory receives one session file per case and `expected.json`, listing each session's
//! key, the dict saved, and whether Django should find it live or expired. The secret is Django's
//! test suite's (`django_tests_secret_key`).

use std::error::Error;
use std::sync::Arc;

use session_core::serializer::SerializerName;
use session_core::{Dict, Expiry, Session, SessionConfig, Value};
use session_file::FileStore;

fn big_number(text: &str) -> Value {
    text.parse().map(Value::Int).unwrap_or(Value::Null)
}

/// One session to write: its name, entries, expiry, and whether Django should find it live.
type Case = (
    &'static str,
    Vec<(&'static str, Value)>,
    Option<Expiry>,
    &'static str,
);

fn cases() -> Vec<Case> {
    let noise: String = (0..60_000u64)
        .scan(0x9E37_79B9_7F4A_7C15u64, |state, _| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            Some(char::from(
                b"abcdefghijklmnopqrstuvwxyz0123456789"[(*state % 36) as usize],
            ))
        })
        .collect();
    let floats = [
        0.1,
        1e16,
        1e-5,
        -0.0,
        5e-324,
        1.5e300,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    vec![
        (
            "plain",
            vec![("a test key", "a test value".into())],
            None,
            "live",
        ),
        ("empty", vec![], None, "live"),
        (
            "auth-login",
            vec![
                ("_auth_user_id", "42".into()),
                (
                    "_auth_user_backend",
                    "django.contrib.auth.backends.ModelBackend".into(),
                ),
                ("_auth_user_hash", "5d41402abc4b2a76b9719d911017c592".into()),
            ],
            None,
            "live",
        ),
        (
            "unicode",
            vec![
                ("zoë ’😀", "naïve ünïcødé ’ 😀 \u{10FFFF}".into()),
                ("", "empty-string key".into()),
            ],
            None,
            "live",
        ),
        (
            "numbers",
            vec![
                ("big", big_number("18446744073709551616")),
                (
                    "neg",
                    big_number("-10000000000000000000000000000000000000000"),
                ),
                ("i64 min", Value::from(i64::MIN)),
                (
                    "floats",
                    Value::List(floats.into_iter().map(Value::from).collect()),
                ),
            ],
            None,
            "live",
        ),
        (
            "compressed",
            vec![("cart", Value::from("apple pear plum ".repeat(40)))],
            None,
            "live",
        ),
        (
            "large-incompressible",
            vec![("noise", Value::from(noise))],
            None,
            "live",
        ),
        (
            "key-order",
            vec![("b", 1i64.into()), ("a", 2i64.into()), ("c", 3i64.into())],
            None,
            "live",
        ),
        (
            "int-expiry",
            vec![("k", "v".into())],
            Some(Expiry::Seconds(300)),
            "live",
        ),
        (
            "browser-close",
            vec![("k", "v".into())],
            Some(Expiry::BrowserClose),
            "live",
        ),
        (
            "iso-expiry-future",
            vec![("k", "v".into())],
            Some(Expiry::In(
                time::Duration::days(30) + time::Duration::microseconds(123_456),
            )),
            "live",
        ),
        (
            "iso-expiry-past",
            vec![("k", "v".into())],
            Some(Expiry::In(time::Duration::seconds(-10))),
            "expired",
        ),
        (
            "int-expiry-negative",
            vec![("k", "v".into())],
            Some(Expiry::Seconds(-10)),
            "expired",
        ),
    ]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: write_files_for_django DIR")?;
    let config = Arc::new(SessionConfig::new("django_tests_secret_key"));
    let store = Arc::new(FileStore::new(&dir, &config).await?);
    let json = SerializerName::Json.serializer();
    let mut manifest = Vec::new();
    for (name, entries, expiry, expect) in cases() {
        let session = Session::new(store.clone(), config.clone(), None);
        session.update(entries).await?;
        if let Some(expiry) = expiry {
            session.set_expiry(expiry).await?;
        }
        session.save().await?;
        if name == "key-order" {
            // Updated and cycled: the data moves to a new key, in order.
            session.insert("b", &4i64).await?;
            session.save().await?;
            session.cycle_key().await?;
        }
        let key = session.key().ok_or("a saved session has a key")?;
        let data: Dict = (*session.data().await?).clone();
        manifest.push(serde_json::json!({
            "name": name,
            "key": key.as_str(),
            "data_json": String::from_utf8(json.dumps_dict(&data)?)?,
            "expect": expect,
        }));
    }
    let expected = serde_json::json!({
        "cookie_name": config.cookie_name,
        "cookie_age": config.cookie_age,
        "cases": manifest,
    });
    std::fs::write(
        std::path::Path::new(&dir).join("expected.json"),
        serde_json::to_string_pretty(&expected)?,
    )?;
    println!(
        "wrote {} sessions to {dir} ({:?})",
        manifest.len(),
        store.write_strategy()
    );
    Ok(())
}
