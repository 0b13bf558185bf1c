//! Servers dying under the stores: PostgreSQL and Redis are started privately (their own port and
//! data directory, never the shared servers), killed as a crash would kill them, and restarted on
//! the same port.
//!
//! - While the server is down, every call returns a typed store error within the configured
//!   timeouts (no hang, no panic).
//! - Once it is back, the same store object works again (the sqlx pool and the Redis connection
//!   manager reconnect by themselves).
//! - Nothing acknowledged is lost: a save that returned `Ok` before the kill is there after the
//!   restart (Redis runs with `appendfsync always` for this; without persistence a restart empties
//!   it by design, and the soak reports exactly that).
//!
//! `session-cache/tests/redis_fault.rs` already checks each Redis operation during an outage; here
//! Redis is restarted under a running soak instead.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use djsession_soak::report::ViolationKind;
use djsession_soak::{
    PrivatePostgres, PrivateRedis, PrivateServer, RestartPlan, ServerError, SoakError, SoakOptions,
    StoreKind, StoreOptions, engine, soak, soak_config, stores,
};
use session_conformance::services;
use session_core::{
    Dict, Error, SaveMode, Session, SessionKey, SessionRecord, SessionStore, Value,
};
use session_db::PgStore;
use session_db::sqlx::postgres::PgPoolOptions;
use time::OffsetDateTime;

/// Far longer than any call may take while a server is down (pool acquire timeout: 2 s); reaching
/// it means a call hung.
const HANG: Duration = Duration::from_secs(15);
/// How long a database call waits for a connection before failing.
const ACQUIRE: Duration = Duration::from_secs(2);

/// The server, or `None` after printing why the test is skipped (it fails instead when services
/// are required).
fn started<T>(result: Result<T, ServerError>, test: &str) -> Option<T> {
    match result {
        Ok(server) => Some(server),
        Err(ServerError::NotInstalled(what)) if !services::required() => {
            println!("skipped {test}: {what}");
            None
        }
        Err(error) => panic!("{test}: {error}"),
    }
}

fn record(data: &Dict) -> SessionRecord<'_> {
    SessionRecord {
        data,
        expires_at: OffsetDateTime::now_utc() + time::Duration::seconds(300),
        expiry_age: 300,
    }
}

fn counter(n: i64) -> Dict {
    [("n".to_owned(), Value::from(n))].into_iter().collect()
}

fn counter_of(data: &Dict) -> i64 {
    data["n"].as_i64().unwrap()
}

/// Runs `call`, which must end within [`HANG`] with a store error; returns how long it took.
async fn fails_with_a_store_error<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, Error>>,
) -> Duration {
    let started = Instant::now();
    let result = tokio::time::timeout(HANG, call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung while the server was down"));
    match result {
        Err(Error::Store(source)) => {
            let message = source.to_string();
            assert!(message.contains("database"), "{what}: {message}");
        }
        other => panic!("{what} while the server was down: expected a store error, got {other:?}"),
    }
    started.elapsed()
}

/// One writer: its own session, saved with an increasing counter as fast as it can.
#[derive(Debug, Default)]
struct Writes {
    /// The last counter a save acknowledged.
    acknowledged: i64,
    /// Counters whose save failed after `acknowledged` (each may or may not have landed).
    unknown: Vec<i64>,
    /// Failed saves, and the longest any call took.
    failures: u64,
    slowest: Duration,
}

async fn write_until(
    store: Arc<PgStore>,
    key: SessionKey,
    from: i64,
    stop: Arc<AtomicBool>,
) -> Writes {
    let mut writes = Writes {
        acknowledged: from,
        ..Writes::default()
    };
    let mut n = from;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let data = counter(n);
        let started = Instant::now();
        let result = tokio::time::timeout(HANG, store.save(&key, record(&data), SaveMode::Update))
            .await
            .expect("a save hung while the server was down");
        writes.slowest = writes.slowest.max(started.elapsed());
        match result {
            Ok(_) => {
                writes.acknowledged = n;
                writes.unknown.clear();
            }
            Err(Error::Store(_)) => {
                writes.failures += 1;
                writes.unknown.push(n);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("a save failed with {other:?}, not a store error"),
        }
    }
    writes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_mid_run_fails_calls_promptly_then_the_same_store_recovers_with_every_acknowledged_save()
 {
    let test = "postgres_killed_mid_run_fails_calls_promptly_then_the_same_store_recovers_with_every_acknowledged_save";
    let Some(server) = started(PrivatePostgres::start().await, test) else {
        return;
    };
    let config = soak_config();
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(ACQUIRE)
        .connect(&server.url())
        .await
        .unwrap();
    let store = Arc::new(PgStore::new(pool, &config).unwrap());
    store.ensure_schema().await.unwrap();
    let shared: Arc<dyn SessionStore> = store.clone();
    let config = Arc::new(config);

    // Eight writers, each on its own session, saving as fast as they can.
    let mut keys = Vec::new();
    for _ in 0..8 {
        let key = SessionKey::generate().unwrap();
        store
            .save(&key, record(&counter(0)), SaveMode::MustCreate)
            .await
            .unwrap();
        keys.push(key);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = keys
        .iter()
        .map(|key| tokio::spawn(write_until(store.clone(), key.clone(), 0, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Killed mid-run, as a crash would (no checkpoint; crash recovery on the next start).
    server.kill().await.unwrap();
    let fresh = SessionKey::generate().unwrap();
    let d = counter(1);
    // Every operation, once.
    let mut slowest = [
        fails_with_a_store_error("load", store.load(&keys[0])).await,
        fails_with_a_store_error("exists", store.exists(&keys[0])).await,
        fails_with_a_store_error(
            "save(MustCreate)",
            store.save(&fresh, record(&d), SaveMode::MustCreate),
        )
        .await,
        fails_with_a_store_error(
            "save(Update)",
            store.save(&keys[0], record(&d), SaveMode::Update),
        )
        .await,
        fails_with_a_store_error("delete", store.delete(&fresh)).await,
        fails_with_a_store_error("clear_expired", store.clear_expired()).await,
    ]
    .into_iter()
    .max()
    .unwrap();
    // Many callers at once, and through a Session: the error reaches the caller, not an empty
    // session.
    let loads: Vec<_> = (0..32)
        .map(|_| {
            let (store, key) = (store.clone(), keys[1].clone());
            tokio::spawn(async move { fails_with_a_store_error("load", store.load(&key)).await })
        })
        .collect();
    for load in loads {
        slowest = slowest.max(
            load.await
                .expect("a load panicked while the server was down"),
        );
    }
    let during = Session::new(shared.clone(), config.clone(), Some(keys[2].as_str()));
    slowest = slowest.max(fails_with_a_store_error("Session::get", during.get::<i64>("n")).await);
    println!("slowest call while PostgreSQL was down: {slowest:?}");
    assert!(
        slowest < ACQUIRE + Duration::from_secs(3),
        "calls took up to {slowest:?} with a {ACQUIRE:?} acquire timeout"
    );

    // The writers saw the outage too; stop them and see what they had acknowledged.
    stop.store(true, Ordering::Relaxed);
    let mut before_restart = Vec::new();
    for writer in writers {
        let writes = writer.await.expect("a writer panicked");
        assert!(writes.acknowledged > 0, "a writer never saved: {writes:?}");
        assert!(
            writes.failures > 0,
            "a writer never saw the outage: {writes:?}"
        );
        assert!(writes.slowest < HANG, "{writes:?}");
        before_restart.push(writes);
    }
    println!("writers before the restart: {before_restart:?}");

    // Back on the same port and data: the same store object recovers by itself.
    server.start_again().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let probe = SessionKey::generate().unwrap();
    loop {
        match store
            .save(&probe, record(&counter(7)), SaveMode::MustCreate)
            .await
        {
            Ok(_) => break,
            Err(Error::Store(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => panic!("the store did not recover after the restart: {other:?}"),
        }
    }
    assert_eq!(store.load(&probe).await.unwrap(), Some(counter(7)));

    // Every acknowledged save survived the crash: each session holds its last acknowledged
    // counter, or a later one whose save failed with unknown effect; never an older one.
    for (key, writes) in keys.iter().zip(&before_restart) {
        let stored = counter_of(&store.load(key).await.unwrap().expect("a session vanished"));
        assert!(
            stored == writes.acknowledged || writes.unknown.contains(&stored),
            "key {}: stored {stored}, but {} was acknowledged (unknown: {:?})",
            key.as_str(),
            writes.acknowledged,
            writes.unknown
        );
    }

    // And it keeps working: writers and sessions carry on.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = keys
        .iter()
        .zip(&before_restart)
        .map(|(key, writes)| {
            let from = writes
                .unknown
                .iter()
                .copied()
                .max()
                .unwrap_or(writes.acknowledged);
            tokio::spawn(write_until(store.clone(), key.clone(), from, stop.clone()))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for (writer, key) in writers.into_iter().zip(&keys) {
        let writes = writer.await.unwrap();
        assert_eq!(writes.failures, 0, "{writes:?}");
        assert_eq!(
            store.load(key).await.unwrap(),
            Some(counter(writes.acknowledged))
        );
    }
    let after = Session::new(shared, config, None);
    after.insert("user", &8).await.unwrap();
    after.save().await.unwrap();
    let again = Session::new(
        store.clone(),
        Arc::new(soak_config()),
        after.key().as_ref().map(SessionKey::as_str),
    );
    assert_eq!(again.get::<i64>("user").await.unwrap(), Some(8));
}

/// Soaks `kind` for `duration` on a private server killed 1.5 s after each (re)start.
async fn soak_through_restarts(kind: StoreKind, duration: Duration, test: &str) {
    soak_through_restarts_with(kind, duration, 2, true, test).await;
}

/// [`soak_through_restarts`] with `pairs` pairs of tabs, and whether the outages must show as
/// errors.
async fn soak_through_restarts_with(
    kind: StoreKind,
    duration: Duration,
    pairs: usize,
    errors_seen: bool,
    test: &str,
) {
    let options = SoakOptions {
        users: 8,
        pairs,
        duration,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
        ..SoakOptions::default()
    };
    let store = StoreOptions {
        timeout: ACQUIRE,
        ..StoreOptions::default()
    };
    let plan = RestartPlan {
        every: Duration::from_millis(1500),
        outage: Duration::from_millis(700),
    };
    let run = match soak(kind, soak_config(), store, options, Some(plan)).await {
        Ok(run) => run,
        Err(SoakError::Server(ServerError::NotInstalled(what))) if !services::required() => {
            println!("skipped {test}: {what}");
            return;
        }
        Err(error) => panic!("{test}: {error}"),
    };
    let report = run.report;
    println!("{report}\nrestarts: {}", run.restarts);
    assert!(run.restarts >= 2, "{} restarts", run.restarts);
    if errors_seen {
        assert!(report.errors > 0, "the outages went unnoticed: {report}");
    } else {
        assert_eq!(
            report.errors, 0,
            "the cache's outages reached the users: {report}"
        );
    }
    assert!(report.passed(), "{report}");
    assert!(report.final_check.live > 0, "{report}");
    assert_eq!(report.final_check.shared > 0, pairs > 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_through_postgres_restarts_loses_and_crosses_nothing() {
    // A PostgreSQL restart includes crash recovery and takes a few seconds here.
    soak_through_restarts(
        StoreKind::Postgres,
        Duration::from_secs(14),
        "soak_through_postgres_restarts_loses_and_crosses_nothing",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_through_redis_restarts_loses_and_crosses_nothing() {
    soak_through_restarts(
        StoreKind::Redis,
        Duration::from_secs(8),
        "soak_through_redis_restarts_loses_and_crosses_nothing",
    )
    .await;
}

/// cached-db's Redis cache killed and restarted under PostgreSQL (`SESSION_TEST_POSTGRES_URL`):
/// the users never see an error (the database answers), and the restarted cache, which comes back
/// holding entries that went stale meanwhile, never serves one. Private sessions only: shared
/// ones hit the race of `tests/cached_db_race.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_through_cached_db_cache_restarts_serves_nothing_stale() {
    let test = "soak_through_cached_db_cache_restarts_serves_nothing_stale";
    if services::url_or_skip(services::POSTGRES_URL, test).is_none() {
        return;
    }
    soak_through_restarts_with(StoreKind::CachedDb, Duration::from_secs(8), 0, false, test).await;
}

/// The control: a Redis without persistence forgets everything on restart, and the soak must
/// say so (lost sessions), or its silence about the other runs would prove nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_without_persistence_is_reported_as_lost_sessions() {
    let test = "a_redis_restart_without_persistence_is_reported_as_lost_sessions";
    let Some(redis) = started(PrivateRedis::start(false).await, test) else {
        return;
    };
    let server = PrivateServer::Redis(redis);
    let config = soak_config();
    let store_options = StoreOptions {
        url: Some(server.url()),
        timeout: ACQUIRE,
        ..StoreOptions::default()
    };
    let opened = stores::open(StoreKind::Redis, &config, &store_options)
        .await
        .unwrap();
    let options = SoakOptions {
        users: 6,
        pairs: 2,
        duration: Duration::from_secs(4),
        errors_expected: true,
        ..SoakOptions::default()
    };
    let until = Instant::now() + options.duration;
    let plan = RestartPlan {
        every: Duration::from_millis(1500),
        outage: Duration::from_millis(300),
    };
    let count = options.restarts.clone();
    let (report, restarts) = tokio::join!(
        engine::run(
            opened.store.clone(),
            Arc::new(config),
            "redis without persistence",
            options
        ),
        server.restart_until(plan, until, &count)
    );
    let report = report.unwrap();
    println!("{report}");
    assert!(restarts.unwrap() >= 1);
    assert!(!report.passed(), "{report}");
    assert!(
        report
            .violation_samples
            .iter()
            .any(|v| v.kind == ViolationKind::LostSession),
        "{report}"
    );
}

/// A private Redis Cluster of 3 masters with one replica each, on free loopback ports in a
/// temporary directory (nodes time out after 1 s, so a failover takes a few seconds); every node
/// is killed when this is dropped.
struct PrivateCluster {
    dir: tempfile::TempDir,
    ports: Vec<u16>,
    nodes: Vec<Option<tokio::process::Child>>,
}

impl PrivateCluster {
    async fn start(test: &str) -> Option<PrivateCluster> {
        let installed = tokio::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .await
            .is_ok();
        if !installed {
            assert!(
                !services::required(),
                "{test}: redis-server is not installed"
            );
            println!("skipped {test}: redis-server is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..6)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            })
            .collect();
        let nodes = ports
            .iter()
            .map(|&port| Some(Self::node(dir.path(), port)))
            .collect();
        for &port in &ports {
            wait_for(Duration::from_secs(20), "a cluster node", || async move {
                cli(port, &["ping"]).await.as_deref() == Some("PONG")
            })
            .await;
        }
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = tokio::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .await
            .unwrap();
        assert!(created.status.success(), "{created:?}");
        let cluster = PrivateCluster { dir, ports, nodes };
        cluster.wait_until_whole().await;
        Some(cluster)
    }

    /// A node keeping its cluster config (`nodes.conf`) in its own directory, and no data.
    fn node(dir: &std::path::Path, port: u16) -> tokio::process::Child {
        let node_dir = dir.join(port.to_string());
        std::fs::create_dir_all(&node_dir).unwrap();
        tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&node_dir)
            .arg("--logfile")
            .arg(node_dir.join("redis.log"))
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    fn urls(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every slot served, by three masters each with a replica in sync: the cluster's own view
    /// (from either of two nodes) and each replica's replication link. A replica that the
    /// cluster lists as connected may not have finished its first sync yet, and until it has,
    /// every write waiting for a replica (`WAIT 1`) times out: a soak started then saw every
    /// operation fail (CI, 2026-12-07 06:48), and a master killed then had no copy of its data.
    async fn wait_until_whole(&self) {
        let ports = self.ports.clone();
        wait_for(Duration::from_secs(60), "a whole cluster", || {
            let ports = ports.clone();
            async move {
                let mut served = false;
                for &port in ports.iter().take(2) {
                    let info = cli(port, &["cluster", "info"]).await.unwrap_or_default();
                    let nodes = cli(port, &["cluster", "nodes"]).await.unwrap_or_default();
                    let healthy = |role: &str| {
                        nodes
                            .lines()
                            .filter(|l| {
                                l.contains(role) && !l.contains("fail") && l.contains(" connected")
                            })
                            .count()
                    };
                    if info.contains("cluster_state:ok")
                        && healthy("master") == 3
                        && healthy("slave") == 3
                    {
                        served = true;
                        break;
                    }
                }
                if !served {
                    return false;
                }
                let mut in_sync = 0;
                for &port in &ports {
                    let replication = cli(port, &["info", "replication"])
                        .await
                        .unwrap_or_default();
                    if replication.contains("role:slave")
                        && replication.contains("master_link_status:up")
                    {
                        in_sync += 1;
                    }
                }
                in_sync == 3
            }
        })
        .await;
    }

    /// A node that is a master now.
    async fn a_master(&self) -> usize {
        for (index, &port) in self.ports.iter().enumerate() {
            let info = cli(port, &["info", "replication"])
                .await
                .unwrap_or_default();
            if info.contains("role:master") {
                return index;
            }
        }
        panic!("no master in the cluster");
    }

    /// Kills node `index` (SIGKILL), waits until its replica is a master serving the slots,
    /// then restarts it empty on the same port: it rejoins as the new master's replica, as an
    /// operator's restart would. Returns how long the promotion took after the kill, and how it
    /// came about.
    ///
    /// Redis elects the replica by itself within a few seconds. On a starved machine (2 cores
    /// running other fault tests beside this one) that election has been seen to stall past a
    /// minute; after [`ELECTION_GRACE`] the test does what an operator would and promotes the
    /// replica with `CLUSTER FAILOVER TAKEOVER`. Either way the store sees the same thing, a
    /// master gone and its slots moved, which is what this soak is about.
    async fn fail_over(&mut self, index: usize) -> (Duration, Promotion) {
        let mut node = self.nodes[index].take().unwrap();
        let port = self.ports[index];
        let witness = self.ports[(index + 1) % self.ports.len()];
        let victim_id = cli(port, &["cluster", "myid"]).await.unwrap();
        let replica = self.replica_of(witness, &victim_id).await;
        let killed = Instant::now();
        node.kill().await.unwrap();
        // Promoted means the replica itself is a master and the cluster gives it the slots. The
        // victim merely flagged `fail?` (suspected) is not enough: a restart then would come back
        // as the slots' master, empty, and its replica would resync from it and drop every key.
        let promoted = || async move {
            let role = cli(replica, &["info", "replication"])
                .await
                .unwrap_or_default();
            let nodes = cli(witness, &["cluster", "nodes"])
                .await
                .unwrap_or_default();
            let info = cli(witness, &["cluster", "info"]).await.unwrap_or_default();
            role.contains("role:master")
                && serves_slots(&nodes, replica)
                && info.contains("cluster_state:ok")
        };
        let mut how = Promotion::Elected;
        if !poll_until(ELECTION_GRACE, promoted).await {
            let took_over = cli(replica, &["cluster", "failover", "takeover"]).await;
            assert_eq!(
                took_over.as_deref(),
                Some("OK"),
                "no election after {ELECTION_GRACE:?}, and the replica :{replica} refused a \
                 takeover; its log:\n{}",
                self.log_tail(replica)
            );
            how = Promotion::TakenOver;
            if !poll_until(Duration::from_secs(60), promoted).await {
                panic!(
                    "the replica :{replica} taken over within 60 s: no; its log:\n{}",
                    self.log_tail(replica)
                );
            }
        }
        let took = killed.elapsed();
        self.nodes[index] = Some(Self::node(self.dir.path(), port));
        (took, how)
    }

    /// The port of the replica of the node `master_id`, as `witness` sees the cluster.
    async fn replica_of(&self, witness: u16, master_id: &str) -> u16 {
        let nodes = cli(witness, &["cluster", "nodes"]).await.unwrap();
        nodes
            .lines()
            .find_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let is_its_replica =
                    fields.get(2)?.contains("slave") && fields.get(3)? == &master_id;
                let address = fields.get(1)?;
                let port = address.split('@').next()?.rsplit(':').next()?;
                is_its_replica.then(|| port.parse().ok()).flatten()
            })
            .unwrap_or_else(|| panic!("no replica of {master_id} in:\n{nodes}"))
    }

    /// The last lines of a node's log, for a failure message.
    fn log_tail(&self, port: u16) -> String {
        let log = self.dir.path().join(port.to_string()).join("redis.log");
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// Whether the node on `port` is, in a `CLUSTER NODES` listing, a master that is not failed or
/// suspected and serves slots (its line lists slot ranges after the 8 fixed fields).
fn serves_slots(nodes: &str, port: u16) -> bool {
    let address = format!(":{port}@");
    nodes.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let flags: Vec<&str> = fields.get(2).map_or(Vec::new(), |f| f.split(',').collect());
        fields.get(1).is_some_and(|a| a.contains(&address))
            && flags.contains(&"master")
            && !flags.iter().any(|f| f.starts_with("fail"))
            && fields.len() > 8
    })
}

#[test]
fn only_a_master_neither_failed_nor_suspected_serves_slots() {
    let nodes = "\
a1 127.0.0.1:7001@17001 master,fail? - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002 myself,master - 0 0 2 connected 5461-10922
c3 127.0.0.1:7003@17003 master,fail - 0 0 3 connected 10923-16383
d4 127.0.0.1:7004@17004 slave a1 0 0 1 connected
e5 127.0.0.1:7005@17005 master - 0 0 7 connected";
    assert!(!serves_slots(nodes, 7001), "suspected (fail?)");
    assert!(serves_slots(nodes, 7002));
    assert!(!serves_slots(nodes, 7003), "failed");
    assert!(!serves_slots(nodes, 7004), "a replica");
    assert!(!serves_slots(nodes, 7005), "a master without slots");
    assert!(!serves_slots(nodes, 7006), "not listed");
}

/// How long a soak waits for Redis to elect a killed master's replica before promoting it by hand.
const ELECTION_GRACE: Duration = Duration::from_secs(20);

/// How a killed master's replica became master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Promotion {
    /// By the cluster's own election.
    Elected,
    /// By `CLUSTER FAILOVER TAKEOVER`, after the election stalled.
    TakenOver,
}

async fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = tokio::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).replace('\r', ""))
        .map(|s| s.trim().to_owned())
}

async fn wait_for<F, Fut>(within: Duration, what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    if !poll_until(within, check).await {
        panic!("{what} within {within:?}: no");
    }
}

/// Whether `check` held within `within`, polled every 100 ms.
async fn poll_until<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A soak on a Redis Cluster with replicas (every write waiting for its replica: `WAIT 1`) while
/// one master is killed (SIGKILL) 3 s in and, once its replica is promoted (by the cluster's
/// election, or by an operator's takeover if that stalls), restarted empty (it rejoins as a
/// replica): the store follows the promotion (the cluster client refreshes its slot map on the
/// errors and on MOVED), the users see store errors meanwhile (writes to the shard wait for a
/// replica until the restarted node has synced) and nothing else, and no acknowledged write is
/// lost, crossed or mixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_through_a_cluster_master_failover_loses_and_crosses_nothing() {
    let test = "soak_through_a_cluster_master_failover_loses_and_crosses_nothing";
    let Some(mut cluster) = PrivateCluster::start(test).await else {
        return;
    };
    let options = SoakOptions {
        users: 8,
        pairs: 2,
        duration: Duration::from_secs(14),
        errors_expected: true,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
        ..SoakOptions::default()
    };
    let store = StoreOptions {
        url: Some(cluster.urls()),
        timeout: Duration::from_secs(1),
        ..StoreOptions::default()
    };
    let run = soak(StoreKind::RedisCluster, soak_config(), store, options, None);
    let fail_over = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let victim = cluster.a_master().await;
        let killed = Instant::now();
        let (promoted, how) = cluster.fail_over(victim).await;
        cluster.wait_until_whole().await;
        (cluster.ports[victim], promoted, how, killed.elapsed())
    };
    let (run, (victim, promoted, how, whole)) = tokio::join!(run, fail_over);
    let report = run.unwrap().report;
    println!(
        "{report}\nmaster :{victim} killed; its replica promoted ({how:?}) after {promoted:?}, \
         the restarted node in sync after {whole:?}"
    );
    assert!(report.errors > 0, "the failover went unnoticed: {report}");
    assert!(report.passed(), "{report}");
    assert!(report.final_check.live > 0, "{report}");
    assert!(report.final_check.shared > 0, "{report}");
}
