//! Mints session cookies with the signed-cookie store for real Django to accept (the reverse
//! interop check).
//!
//! ```sh
//! file=$(mktemp)
//! cargo run -p session-cookie --example write_cookies_for_django -- "$file"
//! python3 fixtures/django/generate_file_cookie.py --read-cookies "$file"
//! ```
//!
//! The file lists each cookie value with the dict it holds; the secret is Django's test suite's
//! (`django_tests_secret_key`).

use std::error::Error;
use std::sync::Arc;

use session_cookie::CookieStore;
use session_core::serializer::SerializerName;
use session_core::{Expiry, Session, SessionConfig, Value};

fn big_number(text: &str) -> Value {
    text.parse().map(Value::Int).unwrap_or(Value::Null)
}

/// Incompressible text, so the cookie really is large.
fn noise(len: usize) -> String {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[(state % 36) as usize])
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let file = std::env::args()
        .nth(1)
        .ok_or("usage: write_cookies_for_django FILE")?;
    let config = Arc::new(SessionConfig::new("django_tests_secret_key"));
    let store = Arc::new(CookieStore::new(&config)?);
    let floats = [0.1, 1e16, -0.0, 5e-324, 1.5e300, f64::NAN, f64::INFINITY];
    let cases: Vec<(&str, Vec<(&str, Value)>)> = vec![
        ("hello-world", vec![("hello", "world".into())]),
        ("empty", vec![]),
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
        ),
        (
            "unicode",
            vec![("zoë ’😀", "naïve ünïcødé ’ 😀 \u{10FFFF}".into())],
        ),
        (
            "numbers",
            vec![
                ("big", big_number("18446744073709551616")),
                (
                    "floats",
                    Value::List(floats.into_iter().map(Value::from).collect()),
                ),
            ],
        ),
        (
            "compressed",
            vec![("cart", Value::from("apple pear plum ".repeat(100)))],
        ),
        (
            "key-order",
            vec![("b", 1i64.into()), ("a", 2i64.into()), ("c", 3i64.into())],
        ),
        ("near-the-size-limit", vec![("x", Value::from(noise(4440)))]),
    ];
    let json = SerializerName::Json.serializer();
    let mut out = Vec::new();
    for (name, entries) in cases {
        let session = Session::new(store.clone(), config.clone(), None);
        session.update(entries).await?;
        if name == "auth-login" {
            // Django ignores per-session expiry for signed cookies; it must still accept the cookie.
            session.set_expiry(Expiry::Seconds(300)).await?;
        }
        session.save().await?;
        if name == "key-order" {
            session.cycle_key().await?;
        }
        let token = session.key().ok_or("a saved session has a key")?;
        out.push(serde_json::json!({
            "name": name,
            "token": token.as_str(),
            "data_json": String::from_utf8(json.dumps_dict(&*session.data().await?)?)?,
        }));
    }
    let manifest = serde_json::json!({
        "cookie_name": config.cookie_name,
        "cookie_age": config.cookie_age,
        "cases": out,
    });
    std::fs::write(&file, serde_json::to_string_pretty(&manifest)?)?;
    println!("wrote {} cookies to {file}", out.len());
    Ok(())
}
