//! `djsession-soak`: drive concurrent virtual users against one store for a fixed time, then
//! check every session; exits 1 on any lost or crossed update (or unexpected error), 2 when the
//! soak could not run.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use djsession_soak::{RestartPlan, SoakOptions, StoreKind, StoreOptions, soak, soak_config};

/// Soak a djsession store: N virtual users create, read, modify, cycle and flush sessions for a
/// fixed time (half of them through the session middleware), pairs of tabs share sessions, and
/// every session is then checked against what its users last wrote.
///
/// Server URLs come from SESSION_TEST_POSTGRES_URL, SESSION_TEST_MYSQL_URL and
/// SESSION_TEST_REDIS_URL (each run uses a fresh table or key prefix and removes it), unless
/// --restart-every starts a private server.
#[derive(Debug, Parser)]
#[command(name = "djsession-soak", version)]
struct Args {
    /// The store to soak.
    #[arg(long, value_enum)]
    store: StoreKind,
    /// Virtual users with sessions of their own.
    #[arg(long, default_value_t = 32)]
    users: usize,
    /// Pairs of tabs sharing one session cookie (default: users / 8, at least 1).
    #[arg(long)]
    pairs: Option<usize>,
    /// How long the users work, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Percentage of users and pairs going through the middleware as HTTP requests.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=100))]
    http_percent: u64,
    /// Seed of the users' random choices (default: from the clock; printed in the report).
    #[arg(long)]
    seed: Option<u64>,
    /// Live sessions one user keeps at most.
    #[arg(long, default_value_t = 3)]
    sessions_per_user: usize,
    /// Run on a private server killed and restarted every SECS seconds: PostgreSQL (postgres),
    /// Redis with appendfsync always (redis), or the Redis cache, also persistent (cached-db,
    /// whose PostgreSQL comes from SESSION_TEST_POSTGRES_URL).
    #[arg(long, value_name = "SECS")]
    restart_every: Option<f64>,
    /// How long each outage lasts, in seconds (with --restart-every).
    #[arg(long, default_value_t = 1.0)]
    outage: f64,
    /// Seconds a database call waits for a connection, or a Redis call for its reply, before
    /// failing.
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
    /// Database pool size.
    #[arg(long, default_value_t = 16)]
    max_connections: u32,
    /// Open SQLite with `DbStore::connect(url)` as the crate docs do (WAL, synchronous=NORMAL,
    /// sqlx's pool of 10) instead of a pool of --max-connections built here.
    #[arg(long)]
    sqlite_url_defaults: bool,
}

fn seconds(value: f64, name: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| format!("--{name} must be a positive number"))
}

fn plan(args: &Args) -> Result<(SoakOptions, StoreOptions, Option<RestartPlan>), String> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let options = SoakOptions {
        users: args.users,
        pairs: args.pairs.unwrap_or((args.users / 8).max(1)),
        duration: seconds(args.duration, "duration")?,
        http_percent: args.http_percent,
        seed,
        sessions_per_user: args.sessions_per_user,
        ..SoakOptions::default()
    };
    let store = StoreOptions {
        timeout: seconds(args.timeout, "timeout")?,
        max_connections: args.max_connections,
        sqlite_url_defaults: args.sqlite_url_defaults,
        ..StoreOptions::default()
    };
    let restarts = match args.restart_every {
        Some(every) => Some(RestartPlan {
            every: seconds(every, "restart-every")?,
            outage: seconds(args.outage, "outage")?,
        }),
        None => None,
    };
    Ok((options, store, restarts))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let (options, store, restarts) = match plan(&args) {
        Ok(plan) => plan,
        Err(message) => {
            eprintln!("djsession-soak: {message}");
            return ExitCode::from(2);
        }
    };
    match soak(args.store, soak_config(), store, options, restarts).await {
        Ok(run) => {
            println!("{}", run.report);
            if restarts.is_some() {
                println!(
                    "RESTARTS store={} restarts={}",
                    args.store.name(),
                    run.restarts
                );
            }
            if run.report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("djsession-soak: {error}");
            ExitCode::from(2)
        }
    }
}
