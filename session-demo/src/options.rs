//! The command line: where to listen, which store, which secret.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use session_core::SessionConfig;

use crate::DemoError;

/// The secret `--insecure-dev-secret` signs sessions with. It is public (it is in this source), so
/// anyone can forge sessions signed with it: development only. It is fixed rather than random so
/// that sessions survive a restart of the demo, which is one of the things it shows.
pub const INSECURE_DEV_SECRET: &str = "djsession-demo INSECURE development secret: published in the source, never use it in production";

/// The SQLite database the demo uses when no `DATABASE_URL` is given: a file in the working
/// directory, created on first use.
pub const DEFAULT_SQLITE_URL: &str = "sqlite://session-demo.sqlite3?mode=rwc";

/// The directory the file store uses when no `--file-path` is given (created on first use).
pub const DEFAULT_FILE_PATH: &str = "session-demo-sessions";

/// The Redis server used when no `REDIS_URL` is given.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A small site showing djsession's sessions: a visit counter, log in (cycles the session key),
/// log out (flushes it), "remember me" (set_expiry) and a page listing the session.
///
/// Without SECRET_KEY the demo refuses to start unless --insecure-dev-secret is given, in debug
/// and release builds alike.
#[derive(Debug, Clone, Parser)]
#[command(name = "session-demo", version)]
pub struct Options {
    /// The address to serve on (port 0 picks a free port; the address is printed on startup).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// Where sessions are stored.
    #[arg(long, value_enum, value_name = "STORE", default_value_t = StoreKind::Sqlite)]
    pub store: StoreKind,

    /// The database of the sqlite, postgres and cached-db stores (default for sqlite and
    /// cached-db: the file session-demo.sqlite3 in the working directory; postgres needs one,
    /// e.g. postgres://user:password@127.0.0.1:5432/db).
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// The Redis server of the redis store, and the cache of the cached-db store (default for
    /// redis: redis://127.0.0.1:6379; cached-db without it caches in process memory).
    #[arg(long, value_name = "URL", env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// The directory of the file store (default: session-demo-sessions in the working directory,
    /// created if missing).
    #[arg(long, value_name = "DIR")]
    pub file_path: Option<PathBuf>,

    /// The secret key sessions are signed with. Prefer the SECRET_KEY environment variable:
    /// command-line arguments are visible to other users of the machine.
    #[arg(long, value_name = "KEY", env = "SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Without SECRET_KEY, sign sessions with a publicly known development key instead of
    /// refusing to start. Anyone can forge sessions signed with it: never use it in production.
    #[arg(long)]
    pub insecure_dev_secret: bool,

    /// Serve Prometheus metrics (djsession's store, session and signing metrics) at GET /metrics.
    #[arg(long)]
    pub metrics: bool,
}

/// The stores the demo can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// In this process's memory (lost on restart).
    Memory,
    /// A SQLite database file (the default: no server needed).
    Sqlite,
    /// One file per session in a directory.
    File,
    /// Signed cookies: the session data is the cookie.
    Cookie,
    /// Redis.
    Redis,
    /// PostgreSQL.
    Postgres,
    /// A database (SQLite or PostgreSQL) with a write-through cache (Redis or in-process).
    CachedDb,
}

/// Where the secret key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// `SECRET_KEY` or `--secret-key`.
    Given,
    /// [`INSECURE_DEV_SECRET`], because `--insecure-dev-secret` was given.
    InsecureDevelopment,
}

impl Options {
    /// The session settings: `SessionConfig::from_env` (Django's setting names:
    /// `SESSION_COOKIE_AGE`, `SECRET_KEY_FALLBACKS`, ...) with the secret key, or
    /// [`DemoError::NoSecret`] when none is given and `--insecure-dev-secret` is not either.
    ///
    /// # Errors
    /// [`DemoError::NoSecret`], [`DemoError::EmptySecret`] for an empty `SECRET_KEY`, and
    /// [`DemoError::Config`] for a variable its setting cannot take (the message names it).
    pub fn session_config(&self) -> Result<(SessionConfig, SecretSource), DemoError> {
        self.session_config_from(|name| std::env::var_os(name))
    }

    /// [`session_config`](Self::session_config) with the variables other than the secret looked
    /// up by `lookup` (for tests).
    ///
    /// # Errors
    /// As [`session_config`](Self::session_config).
    pub fn session_config_from(
        &self,
        mut lookup: impl FnMut(&str) -> Option<std::ffi::OsString>,
    ) -> Result<(SessionConfig, SecretSource), DemoError> {
        let (secret, source) = match (&self.secret_key, self.insecure_dev_secret) {
            (Some(secret), _) if secret.is_empty() => return Err(DemoError::EmptySecret),
            (Some(secret), _) => (secret.as_str(), SecretSource::Given),
            (None, true) => (INSECURE_DEV_SECRET, SecretSource::InsecureDevelopment),
            (None, false) => return Err(DemoError::NoSecret),
        };
        let config = SessionConfig::from_lookup(|name| match name {
            "SECRET_KEY" => Some(secret.into()),
            other => lookup(other),
        })?;
        Ok((config, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        Options::try_parse_from(std::iter::once("session-demo").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn defaults_serve_the_sqlite_file_on_port_8000() {
        let options = parse(&["--insecure-dev-secret"]);
        assert_eq!(options.listen, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(options.store, StoreKind::Sqlite);
        assert_eq!(options.file_path, None);
    }

    #[test]
    fn every_store_name_parses() {
        for (name, kind) in [
            ("memory", StoreKind::Memory),
            ("sqlite", StoreKind::Sqlite),
            ("file", StoreKind::File),
            ("cookie", StoreKind::Cookie),
            ("redis", StoreKind::Redis),
            ("postgres", StoreKind::Postgres),
            ("cached-db", StoreKind::CachedDb),
        ] {
            assert_eq!(parse(&["--store", name]).store, kind, "{name}");
        }
        assert!(Options::try_parse_from(["session-demo", "--store", "mongodb"]).is_err());
    }

    #[test]
    fn refuses_to_start_without_a_secret_unless_told_to_use_the_development_one() {
        let mut options = parse(&[]);
        options.secret_key = None; // whatever SECRET_KEY the test process has
        assert!(matches!(options.session_config(), Err(DemoError::NoSecret)));

        options.insecure_dev_secret = true;
        let (config, source) = options.session_config().unwrap();
        assert_eq!(source, SecretSource::InsecureDevelopment);
        assert_eq!(config.secret_key, INSECURE_DEV_SECRET.into());
    }

    #[test]
    fn a_given_secret_wins_over_the_development_one() {
        let mut options = parse(&["--secret-key", "a real secret", "--insecure-dev-secret"]);
        let (config, source) = options.session_config().unwrap();
        assert_eq!(source, SecretSource::Given);
        assert_eq!(config.secret_key, "a real secret".into());

        options.secret_key = Some(String::new());
        assert!(matches!(
            options.session_config(),
            Err(DemoError::EmptySecret)
        ));
    }

    #[test]
    fn djangos_session_settings_come_from_the_environment_by_their_names() {
        let options = parse(&["--secret-key", "given"]);
        let (config, _) = options
            .session_config_from(|name| match name {
                "SESSION_COOKIE_AGE" => Some("60".into()),
                "SESSION_COOKIE_NAME" => Some("demo_session".into()),
                // Ignored: --secret-key / SECRET_KEY is read by the option parser.
                "SECRET_KEY" => Some("not this one".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.cookie_age, 60);
        assert_eq!(config.cookie_name, "demo_session");
        assert_eq!(config.secret_key, session_core::SecretKey::from("given"));

        let error = options
            .session_config_from(|name| (name == "SESSION_COOKIE_SECURE").then(|| "perhaps".into()))
            .unwrap_err();
        assert!(
            error.to_string().starts_with("SESSION_COOKIE_SECURE"),
            "{error}"
        );
    }

    #[test]
    fn the_no_secret_message_says_how_to_fix_it() {
        let message = DemoError::NoSecret.to_string();
        assert!(message.contains("SECRET_KEY"), "{message}");
        assert!(message.contains("--insecure-dev-secret"), "{message}");
    }
}
