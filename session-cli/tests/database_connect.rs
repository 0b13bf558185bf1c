//! A `--database-url` that cannot work gives the driver's own reason on one line, within seconds
//! (not after sqlx's 30 s pool timeout, not as "pool timed out"), and never the URL's password.
//! Closed ports, silent servers and missing SQLite files need no server; an unknown database and
//! a wrong password run against the servers `SESSION_TEST_*_URL` name (skipped without them).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use session_conformance::services::{self, MYSQL_URL, POSTGRES_URL, with_database};

/// A generous bound on a failure that is reported as it happens.
const PROMPTLY: Duration = Duration::from_secs(10);
/// The password in every URL here.
const PASSWORD: &str = "PASSW0RD-connect-3e1f";
/// What every failure starts with.
const PREFIX: &str = "sessions: could not open the database (--database-url / DATABASE_URL): \
                      could not connect to the session database: ";

/// Runs `sessions clearsessions` on `url` (which must fail with exit status 2); returns its one
/// line of stderr and how long it took, after checking the line holds no password.
fn clearsessions_failure(url: &str) -> (String, Duration) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_sessions"))
        .args(["clearsessions", "--database-url", url])
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty());
    let line = stderr.strip_suffix('\n').unwrap().to_owned();
    assert!(!line.contains('\n'), "more than one line: {stderr:?}");
    assert!(line.starts_with(PREFIX), "{line}");
    assert!(!line.contains(PASSWORD), "{line}");
    (line, took)
}

/// A local port nothing listens on (it was free a moment ago).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_refused_connection_is_reported_as_refused_within_seconds() {
    let port = closed_port();
    for scheme in ["postgres", "mysql"] {
        let (line, took) =
            clearsessions_failure(&format!("{scheme}://app:{PASSWORD}@127.0.0.1:{port}/site"));
        assert!(took < PROMPTLY, "{scheme}: {took:?}");
        assert!(line.contains("Connection refused"), "{line}");
    }
}

#[test]
fn a_server_that_never_answers_is_given_up_on_after_the_connect_timeout() {
    // Listening but never accepting: the handshake completes in the kernel, nothing replies.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap();
    let (line, took) = clearsessions_failure(&format!("postgres://app:{PASSWORD}@{address}/site"));
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(line.contains("no answer within 5s"), "{line}");
}

#[test]
fn a_missing_sqlite_file_is_reported_as_unopenable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.sqlite3");
    let (line, took) = clearsessions_failure(&format!("sqlite://{}", path.display()));
    assert!(took < PROMPTLY, "{took:?}");
    assert!(line.contains("unable to open database file"), "{line}");
    assert!(!path.exists());
}

#[test]
fn an_unknown_postgres_database_is_named() {
    let Some(url) = services::url_or_skip(POSTGRES_URL, "an_unknown_postgres_database_is_named")
    else {
        return;
    };
    let db = services::unique_name("no_such_db");
    let (line, took) = clearsessions_failure(&with_database(&url, &db));
    assert!(took < PROMPTLY, "{took:?}");
    assert!(
        line.contains(&format!("database \"{db}\" does not exist")),
        "{line}"
    );
}

#[test]
fn a_wrong_mysql_password_is_access_denied() {
    let Some(url) = services::url_or_skip(MYSQL_URL, "a_wrong_mysql_password_is_access_denied")
    else {
        return;
    };
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.rsplit_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap();
    let (line, took) = clearsessions_failure(&format!("{scheme}://{user}:{PASSWORD}@{host}"));
    assert!(took < PROMPTLY, "{took:?}");
    assert!(
        line.contains(&format!("Access denied for user '{user}'")),
        "{line}"
    );
}
