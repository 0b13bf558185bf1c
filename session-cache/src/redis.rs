//! Redis: a single server through direct connections, a shared pipelined one and a reconnecting
//! `ConnectionManager`, a Redis Cluster, or a master found through Sentinel.

mod direct;
mod shared;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, ServerErrorKind,
};

use crate::sentinel::SentinelConnection;
use direct::{Route, ServerConnections};

use crate::backend::{stamped, unstamp};
use crate::{CacheBackend, CacheError, Swap, Ttl, VersionedValue};

/// A Redis server or Redis Cluster holding the cache entries.
///
/// Commands are atomic on the server: `SET … EX` for [`set`](CacheBackend::set),
/// `SET … NX EX` for [`add`](CacheBackend::add), `SET … XX EX` for
/// [`replace`](CacheBackend::replace), `DEL`, `EXISTS` and `GET`, exactly what Django's
/// `RedisCache` sends (Django's `set` for an existing session is a `GET` then a `SET`; we use
/// `SET XX`, so a session deleted in between is never recreated).
///
/// A compare-and-swap ([`compare_and_swap`](CacheBackend::compare_and_swap)) is one Lua script
/// run on the server ([`COMPARE_AND_SWAP_SCRIPT`]: `EVALSHA`, then `EVAL` when the server
/// answers `NOSCRIPT`), so nothing can write between its `GET` and its `SET`; the versioned read
/// is `GET` and `PEXPIRETIME` in one `MULTI`/`EXEC` transaction, so nothing can write between
/// those two either. Each touches one key, so they run on a Cluster (routed by that key) and
/// behind Sentinel, the write with `WAIT` when configured. A version is the
/// stored bytes and their absolute expiry (`PEXPIRETIME`, Redis 7.0 or later), which every
/// `SET … EX` changes.
///
/// A single server (plain TCP, RESP2) is reached through connections of our own, which calls use
/// without handing their commands to another task: while only a few calls are in flight, each
/// takes a direct connection of its own ([`RedisCacheBuilder::direct_connections`]); with more,
/// they share one pipelined connection per tokio runtime, on which whichever call is free writes
/// every queued command in one go and reads every reply that has arrived, handing each to its
/// caller. A connection that fails is replaced by the next call. redis-rs's multiplexed
/// connection, which reconnects by itself ([`ConnectionManager`]), serves TLS, Unix sockets and
/// RESP3, and any call made while one of ours cannot be opened. A Cluster is reached through the
/// cluster client, which follows slot moves and reconnects to failed nodes. Calls made while the
/// server is unreachable fail within the configured timeouts with [`CacheError::Redis`]; later
/// calls succeed again once it is back, without rebuilding anything. Cloning is cheap and clones
/// share the connections.
///
/// ```no_run
/// use session_cache::{Cache, RedisCache};
///
/// # async fn demo() -> Result<(), session_cache::CacheError> {
/// // One server:
/// let single = RedisCache::connect("redis://127.0.0.1:6379/0").await?;
/// // A Cluster, from any of its nodes (a comma-separated list is a Cluster's seed nodes):
/// let cluster = RedisCache::connect("redis://10.0.0.1:7000,redis://10.0.0.2:7000").await?;
/// // With explicit timeouts:
/// let tuned = RedisCache::builder("redis://127.0.0.1:6379")
///     .connection_timeout(std::time::Duration::from_millis(500))
///     .response_timeout(std::time::Duration::from_millis(500))
///     .connect()
///     .await?;
/// let cache = Cache::new(single).with_key_prefix("myapp");
/// # let _ = (cluster, tuned, cache);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisCache {
    connection: Connection,
    location: String,
    wait: Option<WaitForReplicas>,
}

#[derive(Clone)]
enum Connection {
    Single {
        manager: ConnectionManager,
        /// Our own connections (direct and shared); `None` when the server is reached through
        /// TLS, a Unix socket or RESP3, which only `manager` speaks.
        ours: Option<Arc<ServerConnections>>,
    },
    Cluster(ClusterConnection),
    Sentinel(std::sync::Arc<SentinelConnection>),
}

/// `WAIT replicas timeout` after every write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WaitForReplicas {
    replicas: usize,
    timeout: Duration,
}

/// Where and how to connect: see [`RedisCache::builder`].
#[derive(Debug, Clone)]
pub struct RedisCacheBuilder {
    topology: Topology,
    connection_timeout: Duration,
    response_timeout: Duration,
    reconnect_attempts: usize,
    direct_connections: usize,
    wait: Option<WaitForReplicas>,
}

#[derive(Clone, PartialEq, Eq)]
enum Topology {
    Single(String),
    Cluster(Vec<String>),
    Sentinel {
        sentinels: Vec<String>,
        master: String,
    },
}

/// The compare-and-swap script: `KEYS[1]` the key, `ARGV[1]` the expected bytes, `ARGV[2]` the
/// expected absolute expiry in milliseconds (`PEXPIRETIME`), `ARGV[3]` the new value, `ARGV[4]`
/// the lifetime in seconds (empty: remove the entry, as a plain save with a non-positive age
/// does). Answers the new `PEXPIRETIME` (0 after a removal) when written, -2 when the entry is at
/// another version, -1 when there is none (nothing is written then: a deleted session is never
/// recreated).
///
/// The expiry is part of the version because every `SET … EX` (ours, Django's) sets a new one,
/// so two writes of the same bytes are told apart, to the millisecond. `PEXPIRETIME` needs Redis
/// 7.0 or later.
pub const COMPARE_AND_SWAP_SCRIPT: &str = r"local held = redis.call('GET', KEYS[1])
if not held then return -1 end
if held ~= ARGV[1] or redis.call('PEXPIRETIME', KEYS[1]) ~= tonumber(ARGV[2]) then return -2 end
if ARGV[4] == '' then redis.call('DEL', KEYS[1]) return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
return redis.call('PEXPIRETIME', KEYS[1])
";

/// The SHA-1 of [`COMPARE_AND_SWAP_SCRIPT`], for `EVALSHA` (a test checks it against the
/// server's `SCRIPT LOAD`).
const COMPARE_AND_SWAP_SHA1: &str = "c9e10db6fb22c6355ef1b8a95fbefec728db3b95";

fn is_noscript(error: &CacheError) -> bool {
    matches!(error, CacheError::Redis { source, .. }
        if source.kind() == ErrorKind::Server(ServerErrorKind::NoScript))
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topology::Single(url) => write!(f, "Single({})", redact(url)),
            Topology::Cluster(urls) => f
                .debug_tuple("Cluster")
                .field(&urls.iter().map(|u| redact(u)).collect::<Vec<_>>())
                .finish(),
            Topology::Sentinel { sentinels, master } => f
                .debug_struct("Sentinel")
                .field(
                    "sentinels",
                    &sentinels.iter().map(|u| redact(u)).collect::<Vec<_>>(),
                )
                .field("master", master)
                .finish(),
        }
    }
}

impl RedisCacheBuilder {
    /// The default time allowed to open a connection: 2 s.
    pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
    /// The default time allowed for each response: 2 s.
    pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
    /// The default number of reconnection attempts after a failure, before a call gives up: 2.
    pub const DEFAULT_RECONNECT_ATTEMPTS: usize = 2;
    /// The default number of direct connections to a single server: 2.
    pub const DEFAULT_DIRECT_CONNECTIONS: usize = 2;

    fn new(topology: Topology) -> Self {
        RedisCacheBuilder {
            topology,
            connection_timeout: Self::DEFAULT_CONNECTION_TIMEOUT,
            response_timeout: Self::DEFAULT_RESPONSE_TIMEOUT,
            reconnect_attempts: Self::DEFAULT_RECONNECT_ATTEMPTS,
            direct_connections: Self::DEFAULT_DIRECT_CONNECTIONS,
            wait: None,
        }
    }

    /// Treats the URLs as a Redis Cluster's seed nodes, even if there is only one.
    pub fn cluster(mut self) -> Self {
        if let Topology::Single(url) = self.topology {
            self.topology = Topology::Cluster(vec![url]);
        }
        self
    }

    /// How long opening a connection may take.
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long each response may take.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How many times to retry connecting (with a short exponential backoff) before a call fails.
    /// Each failed call starts a new round, so a returning server is picked up by the next call.
    pub fn reconnect_attempts(mut self, attempts: usize) -> Self {
        self.reconnect_attempts = attempts;
        self
    }

    /// How many direct connections a single server may have, and how many calls may be in
    /// flight for them to be used (default
    /// [`DEFAULT_DIRECT_CONNECTIONS`](Self::DEFAULT_DIRECT_CONNECTIONS); 0: none).
    ///
    /// While at most `connections` calls are in flight, a call takes a direct connection for its
    /// whole exchange, writing its command and reading the reply itself, and gives it back after
    /// a complete reply. With more in flight, calls share one pipelined connection per tokio
    /// runtime: a call queues its command, and whichever call is free writes all that is queued
    /// in one write (having let the others queue theirs first) or reads all the replies that have
    /// arrived, each going to the call that waits for it. Neither path hands commands or replies
    /// to another task, as redis-rs's multiplexed connection does; under load that hand-over
    /// cost more client CPU than the commands (bench/README.md).
    ///
    /// A direct connection that failed or timed out, or whose call was dropped mid-exchange, is
    /// closed, not reused; one the server closed while idle is noticed before use and replaced.
    /// A call dropped part-way through on the shared connection leaves it whole (what it had
    /// queued is sent, its reply read and discarded); a failure of the connection itself, or no
    /// reply within the response timeout, fails the calls on it, and the next call opens
    /// another. If a connection cannot be opened, calls use redis-rs's multiplexed connection for
    /// a second before trying again. A connection serves only calls on the tokio runtime that
    /// opened it (actix-web runs one per worker thread); another runtime may close a direct one
    /// to open its own once it has been idle for a second.
    ///
    /// Only plain TCP in RESP2 (`redis://`) uses our connections; TLS, Unix sockets and RESP3 go
    /// through redis-rs's multiplexed connection alone. Clusters and Sentinel are not affected.
    ///
    /// ```no_run
    /// use session_cache::RedisCache;
    ///
    /// # async fn demo() -> Result<(), session_cache::CacheError> {
    /// // A service whose requests rarely overlap: up to four at a time get a connection each.
    /// let redis = RedisCache::builder("redis://127.0.0.1:6379")
    ///     .direct_connections(4)
    ///     .connect()
    ///     .await?;
    /// # let _ = redis; Ok(()) }
    /// ```
    pub fn direct_connections(mut self, connections: usize) -> Self {
        self.direct_connections = connections;
        self
    }

    /// Makes every write wait until `replicas` replicas have acknowledged it (Redis `WAIT`, sent
    /// in the same round trip), for at most `timeout`; a write that fewer replicas acknowledged
    /// in time fails with [`CacheError::NotReplicated`] (it was applied on the master, but may be
    /// lost if the master fails before replicating it). Without it (the default) a write is
    /// acknowledged once the master applied it, and a failover can lose the last writes the
    /// replicas had not received yet. On a Cluster, `WAIT` goes to the master of the key's slot
    /// with the write (one pipeline), and counts that master's replicas.
    pub fn wait_for_replicas(mut self, replicas: usize, timeout: Duration) -> Self {
        self.wait = (replicas > 0).then_some(WaitForReplicas { replicas, timeout });
        self
    }

    /// Whether this connects to a Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.topology, Topology::Cluster(_))
    }

    /// Connects (failing if the server or no seed node is reachable).
    ///
    /// # Errors
    /// [`CacheError`] when no server (or no Cluster seed node) answers, or the URL is
    /// malformed.
    pub async fn connect(self) -> Result<RedisCache, CacheError> {
        if self.topology == Topology::Cluster(Vec::new()) {
            return Err(CacheError::Config(
                "no Redis URL given: pass redis://host:port, or several comma-separated URLs \
                 for a Cluster"
                    .to_owned(),
            ));
        }
        if matches!(&self.topology, Topology::Sentinel { sentinels, master }
            if sentinels.is_empty() || master.is_empty())
        {
            return Err(CacheError::Config(
                "Sentinel needs at least one sentinel URL and the master's name".to_owned(),
            ));
        }
        let location = match &self.topology {
            Topology::Single(url) => redact(url),
            Topology::Cluster(urls) => format!(
                "cluster {}",
                urls.iter().map(|u| redact(u)).collect::<Vec<_>>().join(",")
            ),
            Topology::Sentinel { sentinels, master } => format!(
                "sentinel {} master {master}",
                sentinels
                    .iter()
                    .map(|u| redact(u))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        let error = |source| CacheError::Redis {
            location: location.clone(),
            source,
        };
        // WAIT blocks for up to its own timeout before it answers: allow for it.
        let response_timeout =
            self.response_timeout + self.wait.map_or(Duration::ZERO, |w| w.timeout);
        let connection = match &self.topology {
            Topology::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(error)?;
                let ours = ServerConnections::new(
                    client.get_connection_info(),
                    self.direct_connections,
                    self.connection_timeout,
                    response_timeout,
                )
                .map(Arc::new);
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.connection_timeout))
                    .set_response_timeout(Some(response_timeout))
                    .set_number_of_retries(self.reconnect_attempts)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_secs(1));
                Connection::Single {
                    manager: ConnectionManager::new_with_config(client, config)
                        .await
                        .map_err(error)?,
                    ours,
                }
            }
            Topology::Cluster(urls) => {
                let attempts = u32::try_from(self.reconnect_attempts).unwrap_or(u32::MAX);
                // A request may need a reconnection and a redirection on top of its response.
                let overall = response_timeout.saturating_mul(attempts.saturating_add(1))
                    + self.connection_timeout.saturating_mul(attempts);
                let client = ClusterClient::builder(urls.iter().map(String::as_str))
                    .connection_timeout(self.connection_timeout)
                    .response_timeout(response_timeout)
                    .overall_response_timeout(Some(overall))
                    .retries(attempts)
                    .min_retry_wait(50)
                    .max_retry_wait(1000)
                    .build()
                    .map_err(error)?;
                Connection::Cluster(client.get_async_connection().await.map_err(error)?)
            }
            Topology::Sentinel { sentinels, master } => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.connection_timeout))
                    .set_response_timeout(Some(response_timeout));
                Connection::Sentinel(std::sync::Arc::new(
                    SentinelConnection::connect(sentinels, master, config)
                        .await
                        .map_err(error)?,
                ))
            }
        };
        Ok(RedisCache {
            connection,
            location,
            wait: self.wait,
        })
    }
}

impl RedisCache {
    /// Connects with default settings; see [`builder`](Self::builder) for the URL forms.
    ///
    /// # Errors
    /// [`CacheError`] when no server (or no Cluster seed node) answers, or the URL is
    /// malformed.
    pub async fn connect(urls: &str) -> Result<Self, CacheError> {
        Self::builder(urls).connect().await
    }

    /// Starts configuring a connection to `urls`: one URL (`redis://[:password@]host:port[/db]`,
    /// `rediss://` for TLS if the redis crate's TLS feature is on, `redis+unix:///path`) is a single
    /// server; several URLs separated by commas are the seed nodes of a Redis Cluster (call
    /// [`RedisCacheBuilder::cluster`] for a Cluster named by one seed).
    ///
    /// Unlike Django's `LOCATION`, where extra URLs are read replicas, extra URLs here name a
    /// Cluster: replicas are not supported.
    pub fn builder(urls: &str) -> RedisCacheBuilder {
        let urls: Vec<String> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        let topology = match <[String; 1]>::try_from(urls) {
            Ok([url]) => Topology::Single(url),
            Err(urls) => Topology::Cluster(urls),
        };
        RedisCacheBuilder::new(topology)
    }

    /// Starts configuring a connection to the master of the group `master` monitored by the
    /// sentinels `sentinel_urls` (comma-separated `redis://host:port` URLs of the sentinels
    /// themselves). The master is looked up through the sentinels when connecting and again
    /// after any failed command, so the cache follows a failover: calls fail (with
    /// [`CacheError::Redis`], within the timeouts) only while the group has no reachable master.
    /// See [`RedisCacheBuilder::wait_for_replicas`] for what an acknowledged write survives.
    ///
    /// The example runs against the sentinels in `SESSION_TEST_REDIS_SENTINEL_URLS`, watching
    /// `djsession` as `.ci/redis-sentinel` sets them up (and does nothing without them):
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_cache::{Cache, RedisCache};
    ///
    /// # let Ok(sentinels) = std::env::var("SESSION_TEST_REDIS_SENTINEL_URLS") else { return };
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // sentinels = "redis://10.0.0.1:26379,redis://10.0.0.2:26379,redis://10.0.0.3:26379"
    /// let redis = RedisCache::sentinel(&sentinels, "djsession")
    ///     .wait_for_replicas(1, Duration::from_millis(500))
    ///     .connect()
    ///     .await?;
    /// let cache = Cache::new(redis).with_key_prefix("doc-example");
    /// cache.set("k", "v".into(), 60).await?; // on the master, and acknowledged by its replica
    /// assert_eq!(cache.get("k").await?.as_deref(), Some(&b"v"[..]));
    /// # cache.delete("k").await?;
    /// # Ok::<(), session_cache::CacheError>(())
    /// # }).unwrap();
    /// ```
    pub fn sentinel(sentinel_urls: &str, master: &str) -> RedisCacheBuilder {
        let sentinels = sentinel_urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        RedisCacheBuilder::new(Topology::Sentinel {
            sentinels,
            master: master.trim().to_owned(),
        })
    }

    /// Where the cache lives (URLs with passwords hidden).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Whether this is a Cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self.connection, Connection::Cluster(_))
    }

    fn error(&self, source: RedisError) -> CacheError {
        CacheError::Redis {
            location: self.location.clone(),
            source,
        }
    }

    /// Runs one Redis command on this cache's connection, for features built beside the session
    /// operations on the same Redis (session-auth keeps its per-user session sets this way) so
    /// they share the connection, timeouts and reconnection instead of opening their own.
    ///
    /// On a Cluster the command is routed by its first key, so a multi-key command must keep to
    /// one hash slot, and keyless commands such as `SCAN` reach a single node only.
    ///
    /// ```no_run
    /// # async fn demo(redis: session_cache::RedisCache) -> Result<(), session_cache::CacheError> {
    /// let added: u64 = redis.command(redis::cmd("SADD").arg("set").arg("member")).await?;
    /// # let _ = added; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`CacheError::Redis`] when Redis is unreachable or refuses the command, or when its reply
    /// does not convert to `T`.
    pub async fn command<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, CacheError> {
        self.query(cmd).await
    }

    // A Cluster's and a Sentinel's command futures are boxed: they are a few kilobytes, and
    // held inline they would size every future awaiting this one, down to the one each request
    // boxes for the `CacheBackend` call (3.2–3.6 KB on a single server too, past glibc's
    // per-thread cache; `tests/future_sizes.rs`). A single server's stays inline: redis-rs boxes
    // its own part.
    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, CacheError> {
        let result = match &self.connection {
            Connection::Single { manager, ours } => {
                let mut route = route(ours.as_deref()).await;
                match route.as_mut().and_then(Route::lane) {
                    Some(lane) => cmd.query_async(lane).await,
                    None => cmd.query_async(&mut manager.clone()).await,
                }
            }
            Connection::Cluster(cluster) => {
                Box::pin(async move { cmd.query_async(&mut cluster.clone()).await }).await
            }
            Connection::Sentinel(sentinel) => Box::pin(sentinel.query(cmd)).await,
        };
        result.map_err(|source| self.error(source))
    }

    async fn query_pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, CacheError> {
        let result = match &self.connection {
            Connection::Single { manager, ours } => {
                let mut route = route(ours.as_deref()).await;
                match route.as_mut().and_then(Route::lane) {
                    Some(lane) => pipe.query_async(lane).await,
                    None => pipe.query_async(&mut manager.clone()).await,
                }
            }
            Connection::Cluster(cluster) => {
                Box::pin(async move { pipe.query_async(&mut cluster.clone()).await }).await
            }
            Connection::Sentinel(sentinel) => Box::pin(sentinel.query_pipeline(pipe)).await,
        };
        result.map_err(|source| self.error(source))
    }

    /// Runs the write `cmd`, followed in the same round trip by `WAIT` when configured.
    async fn write<T: FromRedisValue>(&self, cmd: Cmd) -> Result<T, CacheError> {
        let Some(wait) = self.wait else {
            return self.query(&cmd).await;
        };
        let millis = u64::try_from(wait.timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut pipe = redis::pipe();
        pipe.add_command(cmd);
        pipe.cmd("WAIT").arg(wait.replicas).arg(millis);
        let (reply, acknowledged): (T, usize) = self.query_pipeline(&pipe).await?;
        if acknowledged < wait.replicas {
            return Err(CacheError::NotReplicated {
                location: self.location.clone(),
                acknowledged,
                wanted: wait.replicas,
            });
        }
        Ok(reply)
    }

    /// Runs a script that writes by its hash, and by its source when the server does not hold
    /// it yet (a new or restarted server, a failover, a Cluster node seeing it first), through
    /// [`write`](Self::write), so `WAIT` follows it when configured.
    async fn run_write_script<T: FromRedisValue>(
        &self,
        (sha1, source): (&str, &str),
        key: &str,
        args: &[&[u8]],
    ) -> Result<T, CacheError> {
        let call = |command: &str, script: &str| {
            let data = args.iter().map(|arg| arg.len()).sum::<usize>() + key.len() + 64;
            let mut cmd = command_with_room(command, args.len() + 4, data);
            cmd.arg(script).arg(1).arg(key);
            for arg in args {
                cmd.arg(*arg);
            }
            cmd
        };
        match self.write(call("EVALSHA", sha1)).await {
            Err(error) if is_noscript(&error) => self.write(call("EVAL", source)).await,
            other => other,
        }
    }

    /// `GET` and `PEXPIRETIME` of `key` in one `MULTI`/`EXEC` transaction, so nothing writes
    /// between the two: the versioned read. The transaction costs the server about a fifth of
    /// the same read as a Lua script (2 KB sessions on Redis 7.0, `INFO commandstats`: 1.2 µs
    /// for `MULTI` and `EXEC` with the two commands in it, 5.7 µs for the script), and every load
    /// under `merge` or `reject`, or with a throttled sliding expiry, makes one.
    async fn get_and_expiry(&self, key: &str) -> Result<Option<(Vec<u8>, i64)>, CacheError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("GET")
            .arg(key)
            .cmd("PEXPIRETIME")
            .arg(key);
        let (value, expiry): (Option<Vec<u8>>, i64) = self.query_pipeline(&pipe).await?;
        Ok(value.map(|value| (value, expiry)))
    }

    /// `SET key value EX ttl [NX|XX]`; `true` when the value was stored.
    async fn set_with(
        &self,
        key: &str,
        value: &[u8],
        ttl: Ttl,
        condition: Option<&str>,
    ) -> Result<bool, CacheError> {
        let mut cmd = command_with_room("SET", 6, key.len() + value.len() + 32);
        cmd.arg(key).arg(value).arg("EX").arg(ttl.seconds());
        if let Some(condition) = condition {
            cmd.arg(condition);
        }
        // `OK` when stored; a nil reply when the NX/XX condition failed.
        let reply: Option<redis::Value> = self.write(cmd).await?;
        Ok(reply.is_some())
    }
}

#[async_trait]
impl CacheBackend for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        let value: Option<Vec<u8>> = self
            .query(command_with_room("GET", 2, key.len() + 3).arg(key))
            .await?;
        Ok(value.map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<(), CacheError> {
        self.set_with(key, &value, ttl, None).await.map(drop)
    }

    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError> {
        self.set_with(key, &value, ttl, Some("NX")).await
    }

    async fn replace(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError> {
        self.set_with(key, &value, ttl, Some("XX")).await
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let mut del = command_with_room("DEL", 2, key.len() + 3);
        del.arg(key);
        let removed: u64 = self.write(del).await?;
        Ok(removed > 0)
    }

    async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        let found: u64 = self
            .query(command_with_room("EXISTS", 2, key.len() + 6).arg(key))
            .await?;
        Ok(found > 0)
    }

    fn can_compare_and_swap(&self) -> bool {
        true
    }

    fn kind(&self) -> &'static str {
        "redis"
    }

    /// The value and its `PEXPIRETIME` (Redis 7.0+) in one round trip, as `get_versioned` reads.
    async fn get_with_expiry(
        &self,
        key: &str,
    ) -> Result<Option<(Bytes, Option<std::time::SystemTime>)>, CacheError> {
        Ok(self.get_and_expiry(key).await?.map(|(value, expiry_ms)| {
            // -1: no expiry set (not one of ours); otherwise milliseconds since the epoch.
            let expires = u64::try_from(expiry_ms)
                .ok()
                .map(|ms| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms));
            (Bytes::from(value), expires)
        }))
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<VersionedValue>, CacheError> {
        Ok(self
            .get_and_expiry(key)
            .await?
            .map(|(value, expiry)| VersionedValue {
                version: stamped(&value, expiry.cast_unsigned()),
                value: Bytes::from(value),
            }))
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Ttl>,
        expected: &Bytes,
    ) -> Result<Swap, CacheError> {
        // Versions are made by get_versioned; anything else matches no entry.
        let Some((expected, expiry)) = unstamp(expected) else {
            return Ok(Swap::Changed);
        };
        let expiry = expiry.cast_signed().to_string();
        let ttl = ttl.map(|ttl| ttl.seconds().to_string()).unwrap_or_default();
        let args: [&[u8]; 4] = [expected, expiry.as_bytes(), &value, ttl.as_bytes()];
        let reply: i64 = self
            .run_write_script((COMPARE_AND_SWAP_SHA1, COMPARE_AND_SWAP_SCRIPT), key, &args)
            .await?;
        match reply {
            -1 => Ok(Swap::Missing),
            -2 => Ok(Swap::Changed),
            written if written >= 0 => Ok(Swap::Written(stamped(&value, written.cast_unsigned()))),
            other => Err(self.error(RedisError::from((
                ErrorKind::UnexpectedReturnType,
                "the compare-and-swap script answered",
                other.to_string(),
            )))),
        }
    }
}

/// The command `name`, with room for `args` arguments (the name included) of `data` bytes in all:
/// `redis::cmd` grows its buffers one argument at a time, a few reallocations per command.
fn command_with_room(name: &str, args: usize, data: usize) -> Cmd {
    let mut command = Cmd::with_capacity(args, data);
    command.arg(name);
    command
}

/// Where a call to a single server goes (`None`: it has none of our connections, only the
/// `ConnectionManager`).
async fn route(ours: Option<&ServerConnections>) -> Option<Route<'_>> {
    match ours {
        Some(ours) => Some(ours.route().await),
        None => None,
    }
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisCache({})", self.location)
    }
}

/// The URL with any password replaced by `***`, for logs and error messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let user = userinfo.split_once(':').map_or("", |(user, _)| user);
    format!("{scheme}://{user}:***@{}", &rest[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_appear_in_locations() {
        assert_eq!(
            redact("redis://:s3cret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact("redis://user:s3cret@host:6379"),
            "redis://user:***@host:6379"
        );
        assert_eq!(redact("redis://user@host"), "redis://:***@host");
        assert_eq!(redact("redis://host:6379/0"), "redis://host:6379/0");
        assert_eq!(
            redact("redis+unix:///tmp/r.sock"),
            "redis+unix:///tmp/r.sock"
        );
        let shown = format!(
            "{:?}",
            RedisCache::builder("redis://:pw@a:1,redis://:pw@b:2")
        );
        assert!(!shown.contains("pw@"), "{shown}");
    }

    #[test]
    fn one_url_is_a_single_server_and_several_are_a_cluster() {
        assert!(!RedisCache::builder("redis://127.0.0.1:6379").is_cluster());
        assert!(!RedisCache::builder(" redis://127.0.0.1:6379 ,").is_cluster());
        assert!(RedisCache::builder("redis://a:7000,redis://b:7000").is_cluster());
        assert!(RedisCache::builder("redis://a:7000").cluster().is_cluster());
    }

    #[test]
    fn the_script_hash_is_the_one_redis_computes() {
        let Ok(url) = std::env::var("SESSION_TEST_REDIS_URL") else {
            eprintln!("skipped: SESSION_TEST_REDIS_URL is not set");
            return;
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let loaded: String = runtime
            .block_on(async {
                let redis = RedisCache::connect(&url).await?;
                redis
                    .command(
                        redis::cmd("SCRIPT")
                            .arg("LOAD")
                            .arg(COMPARE_AND_SWAP_SCRIPT),
                    )
                    .await
            })
            .unwrap();
        assert_eq!(loaded, COMPARE_AND_SWAP_SHA1);
    }

    #[test]
    fn an_empty_url_list_fails_to_connect_with_a_clear_error() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let error = runtime
            .block_on(RedisCache::connect(" , "))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no Redis URL given"), "{error}");
    }
}
