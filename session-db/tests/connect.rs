//! `DbStore::connect` on URLs that cannot work: the driver's own error, promptly, never the
//! password. The closed-port, silent-server, bad-URL and SQLite cases need no server; unknown
//! databases, roles and passwords run against the servers `SESSION_TEST_*_URL` name (skipped
//! without them, a failure with `SESSION_TEST_REQUIRE_SERVICES=1`).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[cfg(any(feature = "postgres", feature = "mysql"))]
use std::net::TcpListener;
use std::time::{Duration, Instant};

use session_core::SessionConfig;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use session_db::sqlx;
use session_db::{Backend, DEFAULT_CONNECT_TIMEOUT, DbError, DbStore, SqliteStore};

/// A generous bound on every failure here: a bare sqlx pool would take its 30 s acquire timeout.
const PROMPTLY: Duration = Duration::from_secs(10);

/// The password put in every URL, which no message may show.
const PASSWORD: &str = "hunter2-Zq9";

fn config() -> SessionConfig {
    SessionConfig::new("django_tests_secret_key")
}

/// Connects to `url`, which must fail; returns the store's error after checking it is a
/// `DbError::Connect` that arrived within [`PROMPTLY`] and shows no [`PASSWORD`].
async fn connect_failure<B: Backend>(url: &str) -> DbError {
    let started = Instant::now();
    let error = DbStore::<B>::connect(url, &config()).await.unwrap_err();
    let took = started.elapsed();
    assert!(took < PROMPTLY, "took {took:?} to fail: {error}");
    assert!(matches!(error, DbError::Connect { .. }), "{error:?}");
    assert_no_password(&error.to_string(), &format!("{error:?}"));
    error
}

#[track_caller]
fn assert_no_password(display: &str, debug: &str) {
    assert!(
        !display.contains(PASSWORD),
        "Display shows the password: {display}"
    );
    assert!(
        !debug.contains(PASSWORD),
        "Debug shows the password: {debug}"
    );
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// The driver's error inside a `DbError::Connect`.
fn driver_error(error: &DbError) -> &sqlx::Error {
    match error {
        DbError::Connect { source } => source,
        other => panic!("not a connect error: {other:?}"),
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// A local port nothing listens on (it was free a moment ago).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
#[track_caller]
fn assert_refused(error: &DbError) {
    match driver_error(error) {
        sqlx::Error::Io(io) => {
            assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused, "{error}")
        }
        other => panic!("not a refused connection: {other:?}"),
    }
    assert!(error.to_string().contains("refused"), "{error}");
}

#[tokio::test]
async fn a_missing_sqlite_file_is_reported_as_unopenable_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.sqlite3");
    let error =
        connect_failure::<session_db::sqlx::Sqlite>(&format!("sqlite://{}", path.display())).await;
    assert!(
        error.to_string().contains("unable to open database file"),
        "{error}"
    );
    assert!(!path.exists());
    // A directory that does not exist cannot be created into, even with mode=rwc.
    let error = connect_failure::<session_db::sqlx::Sqlite>(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("no/such/dir/db.sqlite3").display()
    ))
    .await;
    assert!(
        error.to_string().contains("unable to open database file"),
        "{error}"
    );
}

#[tokio::test]
async fn an_in_memory_sqlite_store_still_connects_and_keeps_its_data() {
    let store = SqliteStore::connect("sqlite::memory:", &config())
        .await
        .unwrap();
    store.ensure_schema().await.unwrap();
    // The table lives in the pool's one connection, not in the probe that preceded it.
    store.check_schema().await.unwrap();
}

/// `PRAGMA name` on one of the store's connections.
async fn pragma(store: &SqliteStore, name: &str) -> String {
    let value: session_db::sqlx::sqlite::SqliteRow =
        session_db::sqlx::query(session_db::sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
            .fetch_one(store.pool())
            .await
            .unwrap();
    use session_db::sqlx::Row as _;
    match value.try_get::<String, _>(0) {
        Ok(text) => text,
        Err(_) => value.try_get::<i64, _>(0).unwrap().to_string(),
    }
}

#[tokio::test]
async fn a_sqlite_file_gets_wal_and_synchronous_normal() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("s.sqlite3").display()
    );
    let store = SqliteStore::connect(&url, &config()).await.unwrap();
    store.ensure_schema().await.unwrap();
    assert_eq!(pragma(&store, "journal_mode").await, "wal");
    // 1 is NORMAL (FULL, sqlx's default, is 2).
    assert_eq!(pragma(&store, "synchronous").await, "1");
}

#[tokio::test]
async fn a_read_only_sqlite_url_is_opened_without_changing_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("django.sqlite3");
    // A file made by someone else, in the rollback-journal mode Django leaves it in.
    {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = session_db::sqlx::SqlitePool::connect(&url).await.unwrap();
        session_db::sqlx::query("CREATE TABLE t (x)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    for query in ["mode=ro", "immutable=1"] {
        let url = format!("sqlite://{}?{query}", path.display());
        let store = SqliteStore::connect(&url, &config()).await.unwrap();
        assert_eq!(pragma(&store, "journal_mode").await, "delete", "{query}");
        store.pool().close().await;
    }
}

#[test]
fn the_default_connect_timeout_is_a_few_seconds() {
    assert_eq!(DEFAULT_CONNECT_TIMEOUT, Duration::from_secs(5));
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use session_db::PgStore;
    use session_db::sqlx::Postgres;

    #[tokio::test]
    async fn a_closed_port_is_reported_as_refused_at_once() {
        let url = format!("postgres://app:{PASSWORD}@127.0.0.1:{}/site", closed_port());
        assert_refused(&connect_failure::<Postgres>(&url).await);
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out_after_the_given_timeout() {
        // Listening but never accepting: the kernel completes the TCP handshake, nothing replies.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "postgres://app:{PASSWORD}@{}/site",
            silent.local_addr().unwrap()
        );
        let started = Instant::now();
        let error = PgStore::connect_pool(&url, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(started.elapsed() < PROMPTLY);
        assert_no_password(&error.to_string(), &format!("{error:?}"));
        match driver_error(&error) {
            sqlx::Error::Io(io) => assert_eq!(io.kind(), std::io::ErrorKind::TimedOut),
            other => panic!("not a timeout: {other:?}"),
        }
        assert!(
            error.to_string().contains("no answer within 200ms"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_unknown_host_fails_promptly() {
        let url = format!("postgres://app:{PASSWORD}@no-such-host.invalid:5432/site");
        // The lookup's own error, or the timeout where name resolution itself hangs.
        let error = connect_failure::<Postgres>(&url).await;
        assert!(
            matches!(driver_error(&error), sqlx::Error::Io(_)),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_malformed_url_is_a_connect_error_without_the_password() {
        let url = format!("postgres://app:{PASSWORD}@127.0.0.1:notaport/site");
        let error = connect_failure::<Postgres>(&url).await;
        assert!(error.to_string().contains("invalid port number"), "{error}");
    }

    #[tokio::test]
    async fn an_unknown_database_is_named() {
        let Some(url) = services::url_or_skip(services::POSTGRES_URL, "postgres unknown database")
        else {
            return;
        };
        let db = services::unique_name("no_such_db");
        let error = connect_failure::<Postgres>(&with_database(&url, &db)).await;
        assert!(
            error
                .to_string()
                .contains(&format!("database \"{db}\" does not exist")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_unknown_role_is_named_without_the_password() {
        let Some(url) = services::url_or_skip(services::POSTGRES_URL, "postgres unknown role")
        else {
            return;
        };
        let role = services::unique_name("no_such_role");
        let error =
            connect_failure::<Postgres>(&with_userinfo(&url, &format!("{role}:{PASSWORD}"))).await;
        assert!(
            error
                .to_string()
                .contains(&format!("role \"{role}\" does not exist")),
            "{error}"
        );
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use session_db::MySqlStore;
    use session_db::sqlx::MySql;

    #[tokio::test]
    async fn a_closed_port_is_reported_as_refused_at_once() {
        let url = format!("mysql://app:{PASSWORD}@127.0.0.1:{}/site", closed_port());
        assert_refused(&connect_failure::<MySql>(&url).await);
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out_after_the_given_timeout() {
        // MySQL waits for the server's greeting, which a listener that never accepts never sends.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "mysql://app:{PASSWORD}@{}/site",
            silent.local_addr().unwrap()
        );
        let started = Instant::now();
        let error = MySqlStore::connect_pool(&url, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(started.elapsed() < PROMPTLY);
        assert_no_password(&error.to_string(), &format!("{error:?}"));
        assert!(
            error.to_string().contains("no answer within 200ms"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_unknown_database_is_named() {
        let Some(url) = services::url_or_skip(services::MYSQL_URL, "mysql unknown database") else {
            return;
        };
        let db = services::unique_name("no_such_db");
        let error = connect_failure::<MySql>(&with_database(&url, &db)).await;
        assert!(
            error
                .to_string()
                .contains(&format!("Unknown database '{db}'")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_wrong_password_is_access_denied_without_the_password() {
        let Some(url) = services::url_or_skip(services::MYSQL_URL, "mysql wrong password") else {
            return;
        };
        let user = user_of(&url);
        let error =
            connect_failure::<MySql>(&with_userinfo(&url, &format!("{user}:{PASSWORD}"))).await;
        assert!(
            error
                .to_string()
                .contains(&format!("Access denied for user '{user}'")),
            "{error}"
        );
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
use session_conformance::services::{self, with_database};

/// `url` with its `user[:password]` replaced by `userinfo`.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn with_userinfo(url: &str, userinfo: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{userinfo}@{host}")
}

/// The user `url` names.
#[cfg(feature = "mysql")]
fn user_of(url: &str) -> String {
    let (_, rest) = url.split_once("://").unwrap();
    let (userinfo, _) = rest.rsplit_once('@').unwrap();
    userinfo.split(':').next().unwrap().to_owned()
}
