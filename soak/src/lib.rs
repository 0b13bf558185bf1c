//! Soak and fault tests for djsession: concurrent virtual users work their sessions against a
//! store for a fixed time, and every session is then checked against what its users last wrote.
//!
//! - **Private sessions.** Each virtual user owns a few sessions (it keeps the cookie it was
//!   given) and creates, reads, modifies, cycles (`cycle_key`, as on login) and flushes them at
//!   random, through [`session_core::Session`] handles or, for a share of the users, as HTTP
//!   requests through `session-middleware` over an in-process tower service (cookie in,
//!   `Set-Cookie` out). Every session holds its owner's unique marker and a version counter, so a
//!   read of another user's data (a *crossed* update) or of an older version (a *lost* update) is
//!   named as such. The user checks what it reads against its model on every request and
//!   re-reads all its sessions periodically; flushed and cycled-away keys must load as absent.
//! - **Shared sessions.** Pairs of tabs share one cookie jar, as two tabs of a browser do, and
//!   replace, read, cycle and flush the same session concurrently. They are checked against the
//!   documented guarantee: whole-record last-writer-wins (a read shows exactly one write's
//!   complete data, never a mix, and never one that an acknowledged later write had replaced), and
//!   no resurrection after a delete.
//! - **The end.** Every key any user or tab ever held is loaded by a fresh `Session` and compared
//!   with the model; the report gives operations per second, totals by kind, store errors and
//!   violations (which must be zero).
//! - **Counters** ([`mod@counters`]): groups of tabs sharing one session each increment their own
//!   counter key under a [concurrency policy](session_core::ConcurrencyPolicy); at the end every
//!   acknowledged increment must be stored under `merge` and `reject` (under `last_write_wins`,
//!   Django's behaviour, some are lost by design, and the scenario counts them).
//! - **Faults.** [`soak`] can run on a private PostgreSQL or Redis ([`servers`]) that it kills and
//!   restarts during the run: calls then fail with typed store errors (expected), and nothing
//!   acknowledged may be lost. For cached-db it restarts the Redis cache, which comes back
//!   (persistent) holding entries that went stale while it was down: none may be served. A call whose effect is unknown (the server died mid-save) lets the
//!   model accept either the old or the new data, never anything else.
//!
//! ```
//! use std::time::Duration;
//! use djsession_soak::{SoakOptions, StoreKind, StoreOptions, soak, soak_config};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let options = SoakOptions {
//!     users: 4,
//!     pairs: 1,
//!     duration: Duration::from_millis(300),
//!     ..SoakOptions::default()
//! };
//! let run = soak(StoreKind::Memory, soak_config(), StoreOptions::default(), options, None).await?;
//! assert_eq!(run.report.violations, 0);
//! assert!(run.report.passed(), "{}", run.report);
//! # Ok::<(), djsession_soak::SoakError>(())
//! # }).unwrap();
//! ```

pub mod client;
pub mod counters;
pub mod data;
pub mod engine;
pub mod model;
pub mod refresh;
pub mod report;
pub mod rng;
pub mod servers;
pub mod stores;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use counters::{CounterOptions, CounterOutcome, CounterReport, counters};
pub use engine::{RestartCount, SoakOptions};
pub use report::{Report, Violation, ViolationKind};
pub use servers::{PrivatePostgres, PrivateRedis, ServerError};
pub use session_core::SessionConfig;
pub use stores::{OpenedStore, StoreKind, StoreOptions};

/// Why a soak could not run (a failed check is not an error: it is in the [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    /// A server store was asked for without its URL.
    #[error(
        "{variable} is not set: give the server's URL there, or run --restart-every to start a private server"
    )]
    MissingUrl {
        /// The environment variable to set.
        variable: &'static str,
    },
    /// Restarts were asked for a store without a server.
    #[error("--restart-every needs a server store (postgres, redis or cached-db), not {0}")]
    NoServer(&'static str),
    /// A private server could not be started or stopped.
    #[error("private server: {0}")]
    Server(#[from] ServerError),
    /// The store could not be opened or prepared.
    #[error("setting up the store: {0}")]
    Setup(String),
    /// The middleware could not be built.
    #[error("building the session layer: {0}")]
    Middleware(#[from] session_middleware::Error),
}

impl From<session_core::Error> for SoakError {
    fn from(error: session_core::Error) -> Self {
        SoakError::Setup(error.to_string())
    }
}

impl From<session_db::DbError> for SoakError {
    fn from(error: session_db::DbError) -> Self {
        SoakError::Setup(error.to_string())
    }
}

impl From<session_cache::CacheError> for SoakError {
    fn from(error: session_cache::CacheError) -> Self {
        SoakError::Setup(error.to_string())
    }
}

impl From<session_cached_db::CachedDbError> for SoakError {
    fn from(error: session_cached_db::CachedDbError) -> Self {
        SoakError::Setup(error.to_string())
    }
}

impl From<session_file::FileError> for SoakError {
    fn from(error: session_file::FileError) -> Self {
        SoakError::Setup(error.to_string())
    }
}

/// The configuration soaks run with: the conformance suite's, with sessions lasting an hour so
/// that anything a run leaves on a shared server expires soon.
pub fn soak_config() -> SessionConfig {
    let mut config = session_conformance::config();
    config.cookie_age = 3600;
    config
}

/// Kill-and-restart cycles during a soak.
#[derive(Debug, Clone, Copy)]
pub struct RestartPlan {
    /// Time between one restart and the next kill.
    pub every: Duration,
    /// How long the server stays down.
    pub outage: Duration,
}

/// A private server being restarted.
#[derive(Debug)]
pub enum PrivateServer {
    /// PostgreSQL.
    Postgres(PrivatePostgres),
    /// Redis, with its append-only file on (as the Redis store, or cached-db's cache).
    Redis(PrivateRedis),
}

impl PrivateServer {
    /// Starts the private server restarted under `kind`: PostgreSQL for postgres, a persistent
    /// Redis for redis and for cached-db's cache (which then comes back holding entries that
    /// went stale while it was down: none may be served).
    pub async fn start(kind: StoreKind) -> Result<PrivateServer, SoakError> {
        match kind {
            StoreKind::Postgres => Ok(PrivateServer::Postgres(PrivatePostgres::start().await?)),
            StoreKind::Redis => Ok(PrivateServer::Redis(PrivateRedis::start(true).await?)),
            StoreKind::CachedDb => Ok(PrivateServer::Redis(PrivateRedis::start(true).await?)),
            other => Err(SoakError::NoServer(other.name())),
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        match self {
            PrivateServer::Postgres(server) => server.url(),
            PrivateServer::Redis(server) => server.url(),
        }
    }

    /// Kills it as a crash would.
    pub async fn kill(&self) -> Result<(), ServerError> {
        match self {
            PrivateServer::Postgres(server) => server.kill().await,
            PrivateServer::Redis(server) => server.kill().await,
        }
    }

    /// Starts it again on the same port and data.
    pub async fn start_again(&self) -> Result<(), ServerError> {
        match self {
            PrivateServer::Postgres(server) => server.start_again().await,
            PrivateServer::Redis(server) => server.start_again().await,
        }
    }

    /// Kills and restarts the server by `plan` until `until`, leaving it running; returns how
    /// many restarts were done, and counts each in `count` as it completes.
    pub async fn restart_until(
        &self,
        plan: RestartPlan,
        until: Instant,
        count: &RestartCount,
    ) -> Result<u32, ServerError> {
        let mut restarts = 0;
        loop {
            tokio::time::sleep(plan.every).await;
            // Leave the users time to work on the restarted server before the end.
            if Instant::now() + plan.outage + plan.every / 2 > until {
                return Ok(restarts);
            }
            self.kill().await?;
            tokio::time::sleep(plan.outage).await;
            self.start_again().await?;
            count.record();
            restarts += 1;
        }
    }
}

/// What a soak produced.
#[derive(Debug)]
pub struct SoakRun {
    /// The report.
    pub report: Report,
    /// How many times the server was killed and restarted.
    pub restarts: u32,
}

/// Opens a store of `kind` on private space, soaks it, and removes the space again. With
/// `restarts`, the store runs on a private server that is killed and restarted during the run
/// ([`PrivateServer::start`]: PostgreSQL, Redis, or cached-db's Redis cache), and store errors
/// are expected.
pub async fn soak(
    kind: StoreKind,
    config: SessionConfig,
    mut store_options: StoreOptions,
    mut options: SoakOptions,
    restarts: Option<RestartPlan>,
) -> Result<SoakRun, SoakError> {
    let server = match restarts {
        Some(_) => {
            let server = PrivateServer::start(kind).await?;
            if kind == StoreKind::CachedDb {
                store_options.cache_url = Some(server.url());
            } else {
                store_options.url = Some(server.url());
            }
            options.errors_expected = true;
            Some(server)
        }
        None => None,
    };
    let opened = stores::open(kind, &config, &store_options).await?;
    let until = Instant::now() + options.duration;
    let count = options.restarts.clone();
    let run = engine::run(
        opened.store.clone(),
        Arc::new(config),
        opened.description.clone(),
        options,
    );
    let (report, restarts) = match (&server, restarts) {
        (Some(server), Some(plan)) => {
            let (report, restarted) = tokio::join!(run, server.restart_until(plan, until, &count));
            (report?, restarted?)
        }
        _ => (run.await?, 0),
    };
    opened.close().await?;
    Ok(SoakRun { report, restarts })
}
