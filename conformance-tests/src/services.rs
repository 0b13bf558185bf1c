//! Reaching the real servers tests run against, and skipping cleanly when they are not configured.
//!
//! Tests read a server's URL from an environment variable (`SESSION_TEST_POSTGRES_URL`,
//! `SESSION_TEST_MYSQL_URL`, `SESSION_TEST_REDIS_URL`). Without it they print that they were
//! skipped; with `SESSION_TEST_REQUIRE_SERVICES=1` a missing server is a failure, so CI never skips
//! silently.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Fixture;

/// The PostgreSQL URL variable.
pub const POSTGRES_URL: &str = "SESSION_TEST_POSTGRES_URL";
/// The MySQL/MariaDB URL variable.
pub const MYSQL_URL: &str = "SESSION_TEST_MYSQL_URL";
/// The Redis URL variable.
pub const REDIS_URL: &str = "SESSION_TEST_REDIS_URL";
/// The Redis Cluster seed URLs variable (comma-separated).
pub const REDIS_CLUSTER_URLS: &str = "SESSION_TEST_REDIS_CLUSTER_URLS";
/// Set to `1` to turn every skip for a missing service into a failure.
pub const REQUIRE_SERVICES: &str = "SESSION_TEST_REQUIRE_SERVICES";

/// Whether missing services must fail tests instead of skipping them.
pub fn required() -> bool {
    std::env::var(REQUIRE_SERVICES).is_ok_and(|v| v == "1")
}

/// The URL in `variable`, or a skipped [`Fixture`] saying it is not set.
pub fn url(variable: &str) -> Result<String, Fixture> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Ok(url),
        _ => Err(Fixture::skip(format!("{variable} is not set"))),
    }
}

/// For tests outside the suite: the URL in `variable`, or `None` after printing that the test was
/// skipped. Panics (failing the test) when services are required.
pub fn url_or_skip(variable: &str, test: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if required() => {
            panic!("{test}: {variable} is not set but {REQUIRE_SERVICES}=1 requires the service")
        }
        _ => {
            println!("skipped {test}: {variable} is not set");
            None
        }
    }
}

/// A name no other test, run or process will use: `prefix`, the process id, a counter and random
/// bits (for tables, schemas, key prefixes and directories).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut random = [0u8; 4];
    // Uniqueness within the process comes from the counter; randomness only separates runs.
    if getrandom::fill(&mut random).is_err() {
        random = [0; 4];
    }
    format!(
        "{prefix}_{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        u32::from_le_bytes(random)
    )
}

/// `url` (a `scheme://authority/database?query` server URL) naming database `database` instead,
/// its query string kept: for a test that needs a database that does not exist.
///
/// ```
/// use session_conformance::services::with_database;
///
/// assert_eq!(
///     with_database("postgres://u@127.0.0.1:5432/test?sslmode=disable", "nope"),
///     "postgres://u@127.0.0.1:5432/nope?sslmode=disable"
/// );
/// assert_eq!(with_database("mysql://root@127.0.0.1", "x"), "mysql://root@127.0.0.1/x");
/// ```
///
/// # Panics
///
/// When `url` has no `://`.
pub fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a scheme://... URL");
    let (path, query) = rest
        .split_once('?')
        .map_or((rest, ""), |(path, query)| (path, query));
    let authority = path
        .split_once('/')
        .map_or(path, |(authority, _)| authority);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{scheme}://{authority}/{database}{query}")
}
