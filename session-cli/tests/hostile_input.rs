//! Hostile input to the `sessions` binary: decompression bombs, broken and extreme tokens,
//! non-UTF-8 arguments and input, deeply nested and oversized JSON, path-like session keys.
//!
//! The outcome is always an exit status of 1 (the value failed) or 2 (unusable input), exactly one
//! line on stderr and nothing on stdout; never a crash (101 for a panic, a signal for a stack
//! overflow) and never a hang (each run is killed after a time limit).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use session_core::SecretKey;
use session_core::config::SESSION_KEY_SALT;
use session_signing::{TimestampSigner, b64_encode};

const KEY: &str = "django_tests_secret_key";
const LIMIT: Duration = Duration::from_secs(30);
const MIB: usize = 1 << 20;

struct Output {
    /// `None`: killed by a signal.
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `sessions` with `args` and `stdin`, killing it if it outlives [`LIMIT`].
fn sessions(args: &[&OsStr], stdin: Vec<u8>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessions"))
        .args(args)
        .env_remove("SECRET_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    // A writer thread, so a child that stops reading early cannot deadlock the test.
    std::thread::spawn(move || {
        let _ = pipe.write_all(&stdin);
    });
    let pid = child.id();
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = match result.recv_timeout(LIMIT) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("sessions {args:?} did not finish within {LIMIT:?}");
        }
    };
    Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn decode(extra: &[&str], data: &str) -> Output {
    let mut args: Vec<&OsStr> = vec!["decode".as_ref(), "--secret-key".as_ref(), KEY.as_ref()];
    args.extend(extra.iter().map(OsStr::new));
    args.push(data.as_ref());
    sessions(&args, Vec::new())
}

fn encode(extra: &[&str], stdin: Vec<u8>) -> Output {
    let mut args: Vec<&OsStr> = vec!["encode".as_ref(), "--secret-key".as_ref(), KEY.as_ref()];
    args.extend(extra.iter().map(OsStr::new));
    sessions(&args, stdin)
}

/// Exit `code`, nothing on stdout, one line on stderr mentioning `needle`.
#[track_caller]
fn refused(out: &Output, code: i32, needle: &str) {
    assert_eq!(out.code, Some(code), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "");
    let line = out.stderr.strip_suffix('\n').expect("one line on stderr");
    assert!(!line.contains('\n'), "more than one line: {:?}", out.stderr);
    assert!(
        line.to_lowercase().contains(&needle.to_lowercase()),
        "{line:?} lacks {needle:?}"
    );
}

fn signer() -> TimestampSigner {
    TimestampSigner::new(SecretKey::from(KEY)).with_salt(SESSION_KEY_SALT)
}

#[test]
fn a_signed_decompression_bomb_is_refused_at_the_limit() {
    // 64 MiB of spaces inside a JSON string, deflated to about 64 KB: one argument can carry it.
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(b"{\"a\":\"").unwrap();
    let chunk = vec![b' '; MIB];
    for _ in 0..64 {
        encoder.write_all(&chunk).unwrap();
    }
    encoder.write_all(b"\"}").unwrap();
    let payload = format!(".{}", b64_encode(&encoder.finish().unwrap()));
    let token = signer().sign_at(&payload, 1_700_000_000);
    assert!(token.len() < 120_000, "{} bytes", token.len());
    refused(&decode(&[], &token), 1, "exceeds the limit");
}

#[test]
fn broken_tokens_are_refused_with_one_line() {
    let valid = signer().sign_object_at(br#"{"a":1}"#, false, 1_700_000_000);
    assert_eq!(decode(&[], &valid).code, Some(0));
    let (body, signature) = valid.rsplit_once(':').unwrap();
    let cases = [
        ("truncated", valid[..valid.len() - 3].to_owned()),
        ("signature too long", format!("{valid}AAAA")),
        (
            "signature too short",
            format!("{body}:{}", &signature[..10]),
        ),
        ("empty", String::new()),
        ("separators", ":".repeat(100_000)),
        (
            "separators and a token",
            format!("{}{valid}", ":".repeat(50_000)),
        ),
        ("control characters", "\u{1}\u{2}\u{7f}:\t:\r".to_owned()),
        ("nested too deep", {
            let deep = [b"[".repeat(10_000), b"]".repeat(10_000)].concat();
            signer().sign_object_at(&deep, true, 1_700_000_000)
        }),
        (
            "not JSON",
            signer().sign_object_at(b"\xff\xfe", false, 1_700_000_000),
        ),
    ];
    for (what, token) in cases {
        let out = decode(&[], &token);
        assert_eq!(out.code, Some(1), "{what}: {}", out.stderr);
        refused(&out, 1, "");
    }
}

#[test]
fn timestamps_far_in_the_future_pass_and_before_1970_expire() {
    for future in [i64::MAX, 253_402_300_800] {
        let token = signer().sign_object_at(b"{}", false, future);
        let out = decode(&["--max-age", "60"], &token);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(0), "{}\n"),
            "{future}"
        );
    }
    for past in [i64::MIN, -1, 0] {
        let token = signer().sign_object_at(b"{}", false, past);
        refused(&decode(&["--max-age", "60"], &token), 1, "expired");
        // Without a maximum age the timestamp is not judged.
        assert_eq!(decode(&[], &token).code, Some(0), "{past}");
    }
}

#[test]
fn unusable_maximum_ages_are_usage_errors() {
    let token = signer().sign_object_at(b"{}", false, 1_700_000_000);
    for age in [
        "-1",
        "NaN",
        "inf",
        "1e400",
        "",
        "ten",
        "18446744073709551616",
    ] {
        let out = decode(&["--max-age", age], &token);
        assert_eq!(out.code, Some(2), "{age:?}: {}", out.stderr);
        assert_eq!(out.stdout, "");
    }
}

#[test]
fn encode_round_trips_timestamps_at_the_i64_extremes() {
    for timestamp in [i64::MIN, -1, i64::MAX] {
        let stamp = timestamp.to_string();
        let out = encode(&["--timestamp", &stamp], br#"{"a": 1}"#.to_vec());
        assert_eq!(out.code, Some(0), "{timestamp}: {}", out.stderr);
        let token = out.stdout.trim_end();
        let back = decode(&[], token);
        assert_eq!(back.code, Some(0), "{timestamp}: {}", back.stderr);
        let json: serde_json::Value = serde_json::from_str(&back.stdout).unwrap();
        assert_eq!(json, serde_json::json!({"a": 1}), "{timestamp}");
    }
}

#[test]
fn non_utf8_arguments_and_input_are_usage_errors() {
    let bad = OsStr::from_bytes(b"e30:1r31eq:\xff\xfe");
    let out = sessions(
        &[
            "decode".as_ref(),
            "--secret-key".as_ref(),
            KEY.as_ref(),
            bad,
        ],
        Vec::new(),
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(out.stdout, "");
    let key = OsStr::from_bytes(b"\xff\xfe secret");
    let out = sessions(
        &["encode".as_ref(), "--secret-key".as_ref(), key],
        b"{}".to_vec(),
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    refused(&encode(&[], b"{\"a\": \"\xff\xfe\"}".to_vec()), 2, "UTF-8");
}

#[test]
fn deeply_nested_and_oversized_input_is_refused_without_crashing() {
    let deep = [
        b"{\"a\":".repeat(1_000_000),
        b"1".to_vec(),
        b"}".repeat(1_000_000),
    ]
    .concat();
    refused(&encode(&[], deep), 2, "");
    let deep_list = [b"{\"a\":".to_vec(), b"[".repeat(1_000_000)].concat();
    refused(&encode(&[], deep_list), 2, "");
    let oversized = vec![b' '; session_cli::MAX_INPUT_BYTES + 1];
    refused(&encode(&[], oversized), 2, "larger than");
    let long_number = format!("{{\"n\": {}}}", "9".repeat(100_000)).into_bytes();
    refused(&encode(&[], long_number), 2, "");
}

#[test]
fn path_like_session_keys_on_the_file_engine_touch_nothing_outside_the_directory() {
    let sandbox = tempfile::tempdir().unwrap();
    let directory = sandbox.path().join("store");
    std::fs::create_dir(&directory).unwrap();
    let dir = directory.to_str().unwrap();
    for key in [
        "../../../../etc/passwd",
        "../store2/abcdefgh",
        "/etc/passwd",
        "abcdefgh\\x\\y",
    ] {
        let words = [
            "show",
            "--engine",
            "file",
            "--file-path",
            dir,
            "--secret-key",
            KEY,
            key,
        ];
        let args: Vec<&OsStr> = words.iter().map(OsStr::new).collect();
        let out = sessions(&args, Vec::new());
        assert!(matches!(out.code, Some(1 | 2)), "{key:?}: {}", out.stderr);
        assert_eq!(out.stdout, "");
    }
    let names: Vec<_> = std::fs::read_dir(sandbox.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["store"]);
    assert_eq!(std::fs::read_dir(&directory).unwrap().count(), 0);
}

// ---------------------------------------------------------------------------------------------
// The db store on SQLite (through session-db, which this crate builds with every database):
// hostile keys and hostile rows.

mod sqlite {
    use std::sync::Arc;

    use session_core::{
        Dict, SaveMode, Session, SessionConfig, SessionKey, SessionRecord, SessionStore, Value,
    };
    use session_db::SqliteStore;
    use session_db::sqlx;
    use time::OffsetDateTime;

    use super::{KEY, signer};

    async fn store() -> SqliteStore {
        let store = SqliteStore::connect("sqlite::memory:", &SessionConfig::new(KEY))
            .await
            .unwrap();
        store.ensure_schema().await.unwrap();
        store
    }

    fn data() -> Dict {
        [("user".to_owned(), Value::from(1i64))]
            .into_iter()
            .collect()
    }

    fn record(data: &Dict) -> SessionRecord<'_> {
        SessionRecord {
            data,
            expires_at: OffsetDateTime::now_utc() + time::Duration::hours(1),
            expiry_age: 3600,
        }
    }

    async fn row_count(store: &SqliteStore) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM django_session")
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn keys_a_row_cannot_hold_are_never_looked_up_and_cannot_be_created() {
        let store = store().await;
        for text in [
            "k".repeat(41),
            "k".repeat(SessionKey::MAX_LEN),
            "abcdefgh\0ijklmnop".to_owned(),
        ] {
            let key = SessionKey::new(text.as_str()).unwrap();
            assert_eq!(store.load(&key).await.unwrap(), None);
            assert!(!store.exists(&key).await.unwrap());
            store.delete(&key).await.unwrap();
            let created = store
                .save(&key, record(&data()), SaveMode::MustCreate)
                .await;
            assert!(created.is_err(), "{}: {created:?}", text.len());
        }
        assert_eq!(row_count(&store).await, 0);
    }

    #[tokio::test]
    async fn sql_and_pattern_characters_in_keys_are_plain_text() {
        let store = store().await;
        let bystander = SessionKey::generate().unwrap();
        store
            .save(&bystander, record(&data()), SaveMode::MustCreate)
            .await
            .unwrap();
        for text in [
            "' OR '1'='1' --",
            "\"; DROP TABLE django_session; --",
            "%%%%%%%%",
            "________",
            "../../etc/passwd",
            "é\u{202e}\u{fffd}\u{1f600}abcd",
        ] {
            let key = SessionKey::new(text).unwrap();
            assert_eq!(store.load(&key).await.unwrap(), None, "{text:?}");
            store
                .save(&key, record(&data()), SaveMode::MustCreate)
                .await
                .unwrap();
            assert_eq!(store.load(&key).await.unwrap(), Some(data()), "{text:?}");
            store.delete(&key).await.unwrap();
            assert_eq!(store.load(&key).await.unwrap(), None, "{text:?}");
        }
        // Nothing else was read, changed or deleted.
        assert_eq!(row_count(&store).await, 1);
        assert_eq!(store.load(&bystander).await.unwrap(), Some(data()));
    }

    #[tokio::test]
    async fn a_session_offered_a_ten_thousand_character_key_saves_under_a_fresh_key() {
        let store = Arc::new(store().await);
        let session = Session::new(
            store.clone(),
            Arc::new(SessionConfig::new(KEY)),
            Some(&"a".repeat(10_000)),
        );
        assert_eq!(session.len().await.unwrap(), 0);
        session.insert("a", &1).await.unwrap();
        session.save().await.unwrap();
        let key = session.key().unwrap();
        assert!(key.is_generated_form() && key.as_str().len() == 32);
        assert_eq!(row_count(&store).await, 1);
    }

    #[tokio::test]
    async fn hostile_rows_load_as_empty_sessions_or_typed_errors_and_stay_untouched() {
        let store = store().await;
        let bomb = {
            use std::io::Write as _;
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            encoder.write_all(&vec![b' '; 64 << 20]).unwrap();
            let payload = format!(
                ".{}",
                session_signing::b64_encode(&encoder.finish().unwrap())
            );
            signer().sign_at(&payload, 1_700_000_000)
        };
        let future = "9999-12-31 23:59:59";
        #[derive(Debug, Clone, Copy)]
        enum Outcome {
            /// An empty session (Django's answer to data that does not verify).
            Empty,
            /// No session.
            Absent,
            /// A typed store error naming the column that could not be read.
            StoreError,
        }
        let rows: [(&str, &[u8], &str, Outcome); 7] = [
            // Django would read the bytes and fail to decode them into an empty session; sqlx
            // refuses to read a BLOB as text. SQLite compares dates as text, as Django's query
            // does there: "not a date" sorts after any year (live), "-0001" before (expired).
            (
                "non-UTF-8 data (a BLOB)",
                b"\xff\xfe\xfd",
                future,
                Outcome::StoreError,
            ),
            ("forged data", b"e30:1r31eq:forged", future, Outcome::Empty),
            ("a bomb", bomb.as_bytes(), future, Outcome::Empty),
            ("empty data", b"", future, Outcome::Empty),
            (
                "control characters",
                b"\x01\x02:\x03:\x04",
                future,
                Outcome::Empty,
            ),
            (
                "an unreadable date",
                b"e30:1r31eq:forged",
                "not a date",
                Outcome::Empty,
            ),
            (
                "a date before year 1",
                b"e30:1r31eq:forged",
                "-0001-01-01 00:00:00",
                Outcome::Absent,
            ),
        ];
        for (what, session_data, expire_date, expected) in rows {
            let key = SessionKey::generate().unwrap();
            let insert = sqlx::query(
                "INSERT INTO django_session (session_key, session_data, expire_date) \
                 VALUES (?, ?, ?)",
            )
            .bind(key.as_str());
            // Text where it is text; the non-UTF-8 bytes go in as a BLOB, which SQLite accepts in
            // any column.
            let insert = match std::str::from_utf8(session_data) {
                Ok(text) => insert.bind(text),
                Err(_) => insert.bind(session_data),
            };
            insert
                .bind(expire_date)
                .execute(store.pool())
                .await
                .unwrap();
            match (store.load(&key).await, expected) {
                (Ok(Some(data)), Outcome::Empty) => assert!(data.is_empty(), "{what}: {data:?}"),
                (Ok(None), Outcome::Absent) => {}
                (Err(session_core::Error::Store(_)), Outcome::StoreError) => {}
                (other, _) => panic!("{what}: expected {expected:?}, got {other:?}"),
            }
            let kept: Vec<u8> = sqlx::query_scalar(
                "SELECT CAST(session_data AS BLOB) FROM django_session WHERE session_key = ?",
            )
            .bind(key.as_str())
            .fetch_one(store.pool())
            .await
            .unwrap();
            assert_eq!(kept, session_data, "{what}: a load never rewrites the row");
        }
    }
}
