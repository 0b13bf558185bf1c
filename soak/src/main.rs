//! `djsession-soak`: drive concurrent virtual users against one store for a fixed time, then
//! check every session; exits 1 on any lost or crossed update (or unexpected error), 2 when the
//! soak could not run. `--scenario counters --policy P` instead counts the increments a
//! concurrency policy loses (every store when none is named).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use djsession_soak::counters::{CounterOptions, counters};
use djsession_soak::refresh::{RefreshOptions, refresh};
use djsession_soak::{RestartPlan, SoakOptions, StoreKind, StoreOptions, soak, soak_config};
use session_core::ConcurrencyPolicy;

/// Soak a djsession store: N virtual users create, read, modify, cycle and flush sessions for a
/// fixed time (half of them through the session middleware), pairs of tabs share sessions, and
/// every session is then checked against what its users last wrote.
///
/// With --scenario counters, groups of 2 and 8 tabs share one session each and increment their
/// own counter keys under --policy; prints one line per store (every store when --store is
/// omitted): `counters <store> <policy>: lost increments L of A acknowledged`.
///
/// Server URLs come from SESSION_TEST_POSTGRES_URL, SESSION_TEST_MYSQL_URL,
/// SESSION_TEST_REDIS_URL, SESSION_TEST_REDIS_CLUSTER_URLS and SESSION_TEST_MEMCACHED_URLS (each
/// run uses a fresh table or key prefix and removes it), unless --restart-every starts a private
/// server.
#[derive(Debug, Parser)]
#[command(name = "djsession-soak", version)]
struct Args {
    /// What to run.
    #[arg(long, value_enum, default_value_t = Scenario::Soak)]
    scenario: Scenario,
    /// The store to soak (required by the soak scenario; the counters scenario runs every store
    /// when it is omitted).
    #[arg(long, value_enum)]
    store: Option<StoreKind>,
    /// The concurrency policy of the counters scenario: merge, reject or last-write-wins.
    #[arg(long, value_parser = clap::value_parser!(ConcurrencyPolicy))]
    policy: Option<ConcurrencyPolicy>,
    /// The refresh scenario's throttled `refresh_fraction` (compared with 0, Django's rule).
    #[arg(long, default_value_t = 0.25)]
    fraction: f64,
    /// The refresh scenario's session age in seconds (short, so throttled sessions are re-saved
    /// within the run too).
    #[arg(long, default_value_t = 20)]
    cookie_age: i64,
    /// The sizes of the counters scenario's groups of tabs (one shared session per group).
    #[arg(long, value_delimiter = ',', default_values_t = [2, 2, 2, 2, 8, 8])]
    groups: Vec<usize>,
    /// Virtual users with sessions of their own.
    #[arg(long, default_value_t = 32)]
    users: usize,
    /// Pairs of tabs sharing one session cookie (default: users / 8, at least 1).
    #[arg(long)]
    pairs: Option<usize>,
    /// How long the users (or tabs) work, in seconds, per store.
    #[arg(long, alias = "seconds", default_value_t = 10.0)]
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

/// The scenarios the binary runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    /// Virtual users and pairs of tabs, every session checked at the end.
    Soak,
    /// Tabs sharing sessions increment their own counters under a concurrency policy.
    Counters,
    /// Users make read-only requests under save_every_request; the store's writes are counted
    /// with Django's rule and with a throttled sliding expiry (--fraction).
    Refresh,
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

/// The counters scenario on `args.store`, or on every store: one line each on stdout (the run's
/// other figures on stderr); exits 1 when a store lost an acknowledged increment under merge or
/// reject (or met an unexpected error), 2 when a store could not be run.
async fn run_counters(args: &Args) -> ExitCode {
    let Some(policy) = args.policy else {
        eprintln!(
            "djsession-soak: --scenario counters needs --policy merge|reject|last-write-wins"
        );
        return ExitCode::from(2);
    };
    if args.restart_every.is_some() {
        eprintln!("djsession-soak: --restart-every applies to the soak scenario only");
        return ExitCode::from(2);
    }
    if args.groups.is_empty() || args.groups.contains(&0) {
        eprintln!("djsession-soak: --groups needs group sizes of at least 1");
        return ExitCode::from(2);
    }
    let (options, store_options) = match seconds(args.duration, "duration")
        .and_then(|duration| Ok((duration, seconds(args.timeout, "timeout")?)))
    {
        Ok((duration, timeout)) => (
            CounterOptions {
                groups: args.groups.clone(),
                duration,
                ..CounterOptions::default()
            },
            StoreOptions {
                timeout,
                max_connections: args.max_connections,
                sqlite_url_defaults: args.sqlite_url_defaults,
                ..StoreOptions::default()
            },
        ),
        Err(message) => {
            eprintln!("djsession-soak: {message}");
            return ExitCode::from(2);
        }
    };
    let kinds = match args.store {
        Some(kind) => vec![kind],
        None => StoreKind::ALL.to_vec(),
    };
    let (mut failed, mut broken) = (false, false);
    for kind in kinds {
        match counters(kind, policy, soak_config(), &store_options, &options).await {
            Ok(outcome) => {
                println!("{outcome}");
                if let djsession_soak::CounterOutcome::Ran(report) = &outcome {
                    eprintln!("{}", report.details());
                }
                failed |= outcome.failed();
            }
            Err(error) => {
                println!(
                    "counters {} {}: could not run: {error}",
                    kind.name(),
                    djsession_soak::counters::policy_name(policy)
                );
                broken = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else if broken {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// The refresh scenario on `args.store`, or on every store: one line each on stdout; exits 1 when
/// a run failed (a request error, or a session lost while in use), 2 on bad options.
async fn run_refresh(args: &Args) -> ExitCode {
    if !(0.0..=1.0).contains(&args.fraction) || args.cookie_age <= 0 {
        eprintln!("djsession-soak: --fraction must be 0.0-1.0 and --cookie-age positive");
        return ExitCode::from(2);
    }
    let duration = match seconds(args.duration, "duration") {
        Ok(duration) => duration,
        Err(message) => {
            eprintln!("djsession-soak: {message}");
            return ExitCode::from(2);
        }
    };
    let options = RefreshOptions {
        users: args.users,
        duration,
        fraction: args.fraction,
        cookie_age: args.cookie_age,
    };
    let store_options = StoreOptions {
        max_connections: args.max_connections,
        ..StoreOptions::default()
    };
    let kinds = match args.store {
        Some(kind) => vec![kind],
        None => StoreKind::ALL.to_vec(),
    };
    let mut failed = false;
    for kind in kinds {
        match refresh(kind, soak_config(), &store_options, &options).await {
            Ok(report) => println!("{report}"),
            Err(error) => {
                println!("refresh {}: failed: {error}", kind.name());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.scenario == Scenario::Refresh {
        return run_refresh(&args).await;
    }
    if args.scenario == Scenario::Counters {
        return run_counters(&args).await;
    }
    let Some(kind) = args.store else {
        eprintln!("djsession-soak: the soak scenario needs --store");
        return ExitCode::from(2);
    };
    if args.policy.is_some() {
        eprintln!("djsession-soak: --policy applies to --scenario counters only");
        return ExitCode::from(2);
    }
    let (options, store, restarts) = match plan(&args) {
        Ok(plan) => plan,
        Err(message) => {
            eprintln!("djsession-soak: {message}");
            return ExitCode::from(2);
        }
    };
    match soak(kind, soak_config(), store, options, restarts).await {
        Ok(run) => {
            println!("{}", run.report);
            if restarts.is_some() {
                println!("RESTARTS store={} restarts={}", kind.name(), run.restarts);
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
