//! Shared set-up: caches and databases for each test (fresh key prefix, fresh table), a cache
//! that fails on command, a database store that counts its calls, log capture, and a Redis server
//! the test owns.
#![allow(dead_code)] // each test file uses a different part
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use async_trait::async_trait;
use bytes::Bytes;
use session_cache::{Cache, CacheBackend, CacheError, MemoryCache, RedisCache, Ttl};
use session_cached_db::CachedDbStore;
use session_conformance::services;
use session_core::serializer::SerializerName;
use session_core::{
    ClearExpired, Dict, Error, LoadedRecord, SaveMode, SessionConfig, SessionKey, SessionRecord,
    SessionStore, SharedRecord, StoreCapabilities, Value, Version, VersionedRecord,
};
use session_db::{MySqlStore, PgStore, SqliteStore};

pub fn config() -> SessionConfig {
    session_conformance::config()
}

pub fn dict(pairs: &[(&str, Value)]) -> Dict {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// `data` as Django's cache framework stores it (pickled).
pub fn pickled(data: &Dict) -> Vec<u8> {
    SerializerName::Pickle
        .serializer()
        .dumps_dict(data)
        .unwrap()
}

/// A cache value read back as the session dict it pickles.
pub fn unpickled(bytes: &[u8]) -> Dict {
    match SerializerName::Pickle
        .serializer()
        .loads_stored_bytes(bytes)
        .unwrap()
    {
        Value::Dict(data) => data,
        other => panic!("cached value is not a dict: {other:?}"),
    }
}

/// A fresh in-memory SQLite database with Django's table.
pub async fn sqlite(config: &SessionConfig) -> SqliteStore {
    let db = SqliteStore::connect("sqlite::memory:", config)
        .await
        .unwrap();
    db.ensure_schema().await.unwrap();
    db
}

/// The in-memory cache + SQLite store.
pub async fn memory_sqlite() -> CachedDbStore<SqliteStore> {
    let config = config();
    CachedDbStore::new(
        Cache::new(MemoryCache::new()),
        sqlite(&config).await,
        &config,
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// A cache that fails on command.

/// The message of every failure [`TestCache`] fakes (Django's failing test cache's).
pub const FAKED: &str = "Faked exception saving to cache";

/// An in-memory cache whose reads, writes and deletes can be made to fail, and which records the
/// lifetime of every write.
#[derive(Default)]
pub struct TestCache {
    inner: MemoryCache,
    pub fail_reads: AtomicBool,
    pub fail_writes: AtomicBool,
    pub fail_deletes: AtomicBool,
    pub ttls: Mutex<BTreeMap<String, u64>>,
    pub deletes: AtomicUsize,
}

impl std::fmt::Debug for TestCache {
    // Stable, like a Django cache object's repr in its log message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestCache")
    }
}

impl TestCache {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn cache(self: &Arc<Self>) -> Cache {
        Cache::from_arc(self.clone())
    }

    /// Every operation fails (a cache that is down).
    pub fn down(&self, down: bool) {
        for flag in [&self.fail_reads, &self.fail_writes, &self.fail_deletes] {
            flag.store(down, Ordering::SeqCst);
        }
    }

    /// What the cache holds under `physical_key`, bypassing the failure switches.
    pub async fn peek(&self, physical_key: &str) -> Option<Bytes> {
        self.inner.get(physical_key).await.unwrap()
    }

    /// Stores `value` directly, bypassing the switches.
    pub async fn poke(&self, physical_key: &str, value: &[u8]) {
        let ttl = Ttl::from_age(3600).unwrap();
        self.inner
            .set(physical_key, Bytes::copy_from_slice(value), ttl)
            .await
            .unwrap();
    }

    pub fn ttl(&self, physical_key: &str) -> Option<u64> {
        self.ttls.lock().unwrap().get(physical_key).copied()
    }

    fn check(flag: &AtomicBool) -> Result<(), CacheError> {
        if flag.load(Ordering::SeqCst) {
            return Err(CacheError::backend(FAKED));
        }
        Ok(())
    }

    fn record(&self, key: &str, ttl: Ttl) {
        self.ttls
            .lock()
            .unwrap()
            .insert(key.to_owned(), ttl.seconds());
    }
}

#[async_trait]
impl CacheBackend for TestCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        Self::check(&self.fail_reads)?;
        self.inner.get(key).await
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<(), CacheError> {
        Self::check(&self.fail_writes)?;
        self.record(key, ttl);
        self.inner.set(key, value, ttl).await
    }

    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError> {
        Self::check(&self.fail_writes)?;
        let added = self.inner.add(key, value, ttl).await?;
        if added {
            self.record(key, ttl);
        }
        Ok(added)
    }

    async fn replace(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError> {
        Self::check(&self.fail_writes)?;
        self.record(key, ttl);
        self.inner.replace(key, value, ttl).await
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        Self::check(&self.fail_deletes)?;
        self.deletes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key).await
    }

    async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        Self::check(&self.fail_reads)?;
        self.inner.exists(key).await
    }
}

// ---------------------------------------------------------------------------------------------
// Gates: a cache whose writes can be held at a chosen moment, for deterministic races.

/// Holds the next call that passes it, once armed, until released.
#[derive(Default)]
pub struct Gate {
    armed: AtomicBool,
    reached: Notify,
    released: Notify,
}

impl Gate {
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    pub async fn pass(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.reached.notify_one();
            self.released.notified().await;
        }
    }

    /// Waits until a call is held here (a store that never makes the call fails the test).
    pub async fn reached(&self) {
        tokio::time::timeout(std::time::Duration::from_secs(10), self.reached.notified())
            .await
            .expect("the store never made the call this gate holds");
    }

    pub fn release(&self) {
        self.released.notify_one();
    }
}

/// The calls reaching the cache and the database, in order.
pub type Log = Arc<Mutex<Vec<&'static str>>>;

pub fn push(log: &Log, call: &'static str) {
    log.lock().unwrap().push(call);
}

/// The in-process cache, with a gate before `set` and `add` take effect, deletes that can be
/// made to fail, and a log of its calls.
#[derive(Default)]
pub struct GatedCache {
    pub inner: MemoryCache,
    pub log: Log,
    pub set_gate: Gate,
    pub add_gate: Gate,
    pub fail_deletes: AtomicBool,
}

impl std::fmt::Debug for GatedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatedCache")
    }
}

#[async_trait]
impl CacheBackend for GatedCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        push(&self.log, "cache get");
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<(), CacheError> {
        self.set_gate.pass().await;
        push(&self.log, "cache set");
        self.inner.set(key, value, ttl).await
    }
    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError> {
        self.add_gate.pass().await;
        push(&self.log, "cache add");
        self.inner.add(key, value, ttl).await
    }
    async fn replace(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError> {
        push(&self.log, "cache replace");
        self.inner.replace(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        push(&self.log, "cache delete");
        if self.fail_deletes.load(Ordering::SeqCst) {
            return Err(CacheError::backend(FAKED));
        }
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        push(&self.log, "cache exists");
        self.inner.exists(key).await
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

// ---------------------------------------------------------------------------------------------
// A database store that counts its calls (Django's assertNumQueries).

#[derive(Debug, Default)]
pub struct Calls {
    pub load: AtomicUsize,
    pub exists: AtomicUsize,
    pub save: AtomicUsize,
    pub delete: AtomicUsize,
}

impl Calls {
    pub fn total(&self) -> usize {
        [&self.load, &self.exists, &self.save, &self.delete]
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .sum()
    }
}

/// Wraps a store and counts every call reaching it. Forwards `load_with_expiry` (counted as a
/// load), so the wrapped store's expiry still reaches the cache.
#[derive(Debug)]
pub struct Counting<D> {
    pub inner: D,
    pub calls: Arc<Calls>,
}

impl<D> Counting<D> {
    pub fn new(inner: D) -> (Self, Arc<Calls>) {
        let calls = Arc::new(Calls::default());
        (
            Counting {
                inner,
                calls: calls.clone(),
            },
            calls,
        )
    }
}

#[async_trait]
impl<D: SessionStore> SessionStore for Counting<D> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        self.calls.load.fetch_add(1, Ordering::SeqCst);
        self.inner.load(key).await
    }
    async fn load_with_expiry(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        self.calls.load.fetch_add(1, Ordering::SeqCst);
        self.inner.load_with_expiry(key).await
    }
    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.calls.exists.fetch_add(1, Ordering::SeqCst);
        self.inner.exists(key).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.calls.save.fetch_add(1, Ordering::SeqCst);
        self.inner.save(key, record, mode).await
    }
    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.calls.delete.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key).await
    }
    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.inner.clear_expired().await
    }
    fn capabilities(&self) -> StoreCapabilities {
        self.inner.capabilities()
    }
    // Counted as a load and a save: what they replace under the merge and reject policies.
    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        self.calls.load.fetch_add(1, Ordering::SeqCst);
        self.inner.load_versioned(key).await
    }
    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, Error> {
        self.calls.save.fetch_add(1, Ordering::SeqCst);
        self.inner.save_if_unchanged(key, record, expected).await
    }
    // Counted as an `exists`: the check after a cache write it replaces.
    async fn is_unchanged(&self, key: &SessionKey, expected: &Version) -> Result<bool, Error> {
        self.calls.exists.fetch_add(1, Ordering::SeqCst);
        self.inner.is_unchanged(key, expected).await
    }
}

/// A database store that reports no expiry (`load_with_expiry` is the trait's default, and
/// versioned loads carry none), forwarding everything else, compare-and-swap included: what a
/// store of the user's own may be. `MemoryStore` alone reports its expiry.
#[derive(Debug, Default)]
pub struct NoExpiry(pub session_core::MemoryStore);

#[async_trait]
impl SessionStore for NoExpiry {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        self.0.load(key).await
    }
    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.0.exists(key).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.0.save(key, record, mode).await
    }
    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.0.delete(key).await
    }
    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.0.clear_expired().await
    }
    fn capabilities(&self) -> StoreCapabilities {
        self.0.capabilities()
    }
    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        Ok(self
            .0
            .load_versioned(key)
            .await?
            .map(|record| VersionedRecord {
                expires_at: None,
                ..record
            }))
    }
    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, Error> {
        self.0.save_if_unchanged(key, record, expected).await
    }
}

// ---------------------------------------------------------------------------------------------
// Log capture.

#[allow(unused_imports)] // not every test binary captures logs
pub use session_conformance::logs::capture_async as with_logs;

// ---------------------------------------------------------------------------------------------
// Real servers.

/// A Redis cache on `url` under a fresh `KEY_PREFIX`, with short timeouts.
pub async fn redis_cache(url: &str) -> Cache {
    let redis = RedisCache::builder(url)
        .connection_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    Cache::new(redis).with_key_prefix(services::unique_name("djs_cached_db"))
}

/// A PostgreSQL store on a fresh table, dropped with the store. Any [`SessionStore`] can be the
/// database: this one forwards everything, `load_with_expiry` and compare-and-swap included.
#[derive(Debug)]
pub struct PgTable {
    pub store: PgStore,
    url: String,
    table: String,
}

impl PgTable {
    pub async fn create(url: &str, config: &SessionConfig) -> PgTable {
        let table = services::unique_name("djs_cached");
        let store = PgStore::connect(url, config)
            .await
            .unwrap()
            .with_table(&table)
            .unwrap();
        store.ensure_schema().await.unwrap();
        PgTable {
            store,
            url: url.to_owned(),
            table,
        }
    }
}

impl Drop for PgTable {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be shutting down: use a thread of our own.
        let (url, table) = (self.url.clone(), self.table.clone());
        let dropped = std::thread::spawn(move || {
            use sqlx::{Connection, Executor};
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let mut conn = sqlx::PgConnection::connect(&url).await.ok()?;
                conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP TABLE IF EXISTS \"{table}\""
                ))))
                .await
                .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop test table {}", self.table);
        }
    }
}

#[async_trait]
impl SessionStore for PgTable {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        self.store.load(key).await
    }
    async fn load_with_expiry(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        self.store.load_with_expiry(key).await
    }
    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.store.exists(key).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.store.save(key, record, mode).await
    }
    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.store.delete(key).await
    }
    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.store.clear_expired().await
    }
    fn capabilities(&self) -> StoreCapabilities {
        self.store.capabilities()
    }
    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        self.store.load_versioned(key).await
    }
    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, Error> {
        self.store.save_if_unchanged(key, record, expected).await
    }
    async fn is_unchanged(&self, key: &SessionKey, expected: &Version) -> Result<bool, Error> {
        self.store.is_unchanged(key, expected).await
    }
}

/// A MySQL/MariaDB store on a fresh table, dropped with the store; forwards everything, as
/// [`PgTable`] does.
#[derive(Debug)]
pub struct MySqlTable {
    pub store: MySqlStore,
    url: String,
    table: String,
}

impl MySqlTable {
    pub async fn create(url: &str, config: &SessionConfig) -> MySqlTable {
        let table = services::unique_name("djs_cached");
        let store = MySqlStore::connect(url, config)
            .await
            .unwrap()
            .with_table(&table)
            .unwrap();
        store.ensure_schema().await.unwrap();
        MySqlTable {
            store,
            url: url.to_owned(),
            table,
        }
    }
}

impl Drop for MySqlTable {
    fn drop(&mut self) {
        // As PgTable's: Drop cannot await, so a thread and a runtime of our own.
        let (url, table) = (self.url.clone(), self.table.clone());
        let dropped = std::thread::spawn(move || {
            use sqlx::{Connection, Executor};
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let mut conn = sqlx::MySqlConnection::connect(&url).await.ok()?;
                conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP TABLE IF EXISTS `{table}`"
                ))))
                .await
                .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop test table {}", self.table);
        }
    }
}

#[async_trait]
impl SessionStore for MySqlTable {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        self.store.load(key).await
    }
    async fn load_with_expiry(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        self.store.load_with_expiry(key).await
    }
    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.store.exists(key).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.store.save(key, record, mode).await
    }
    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.store.delete(key).await
    }
    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.store.clear_expired().await
    }
    fn capabilities(&self) -> StoreCapabilities {
        self.store.capabilities()
    }
    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        self.store.load_versioned(key).await
    }
    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, Error> {
        self.store.save_if_unchanged(key, record, expected).await
    }
    async fn is_unchanged(&self, key: &SessionKey, expected: &Version) -> Result<bool, Error> {
        self.store.is_unchanged(key, expected).await
    }
}

/// A `redis-server` child process on a free loopback port, killed when dropped.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    args: Vec<String>,
}

impl RedisServer {
    /// Starts `redis-server` with `extra` arguments on a free port, or `None` when it is not
    /// installed (a failure under `SESSION_TEST_REQUIRE_SERVICES=1`).
    pub fn start(test: &str, extra: &[&str]) -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut args = vec![
            "--port".to_owned(),
            port.to_string(),
            "--bind".to_owned(),
            "127.0.0.1".to_owned(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        match Self::spawn(&args, port) {
            Some(child) => Some(RedisServer { child, port, args }),
            None => {
                assert!(
                    !services::required(),
                    "{test}: redis-server is not installed but {}=1",
                    services::REQUIRE_SERVICES
                );
                println!("skipped {test}: redis-server is not installed");
                None
            }
        }
    }

    fn spawn(args: &[String], port: u16) -> Option<Child> {
        let child = Command::new("redis-server")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(child)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no shutdown save).
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts it again on the same port with the same arguments.
    pub fn restart(&mut self) {
        self.child = Self::spawn(&self.args, self.port).unwrap();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
