//! Memcached, one server or several, sharing entries with Django's `PyMemcacheCache`.

mod hash;
mod protocol;

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;

use crate::backend::{stamped, unstamp};
use crate::{CacheBackend, CacheError, Swap, Ttl, VersionedValue};
use protocol::{Connection, Item, Request, Response, StoreCommand, StoreReply};

/// pymemcache's flag for a pickled value (`pymemcache.serde.FLAG_PICKLE`): what Django's
/// `PyMemcacheCache` stores a session dict with.
pub const FLAG_PICKLE: u32 = 1;

/// The longest key memcached accepts, in bytes (and Django's limit, in characters).
pub const MAX_KEY_LENGTH: usize = 250;

/// The default port of a server named without one (Django's and pymemcache's default).
pub const DEFAULT_PORT: u16 = 11211;

/// Lifetimes longer than this (30 days) are absolute Unix times for memcached.
const RELATIVE_EXPIRY_LIMIT: u64 = 60 * 60 * 24 * 30;

/// What went wrong talking to a memcached server (inside [`CacheError::Memcached`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemcachedError {
    /// The connection failed or broke.
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),

    /// The server did not answer in time.
    #[error("no answer to {operation} within {after:?}")]
    Timeout {
        /// What was being done (`connect`, `get`, …).
        operation: &'static str,
        /// The timeout that ran out.
        after: Duration,
    },

    /// The server refused the command (`ERROR`, `CLIENT_ERROR …`, `SERVER_ERROR …`, for
    /// example a value over the server's item size limit).
    #[error("the server refused {command}: {reply}")]
    Server {
        /// The command refused.
        command: String,
        /// The server's reply line.
        reply: String,
    },

    /// The server answered something that is not memcached's protocol.
    #[error("unexpected reply: {0}")]
    Protocol(String),

    /// A key memcached (and Django) refuses: longer than 250 characters or bytes, or holding a
    /// space or control character.
    #[error("invalid memcached key {key:?}: {reason}")]
    InvalidKey {
        /// The key (shortened when long).
        key: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// A value over the configured size limit ([`MemcachedCacheBuilder::max_value_size`]).
    #[error(
        "a value of {size} bytes is over the {limit}-byte limit; raise max_value_size (and memcached's -I) or keep sessions smaller"
    )]
    ValueTooLarge {
        /// The value's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl MemcachedError {
    fn protocol(message: String) -> Self {
        MemcachedError::Protocol(message)
    }
}

/// Checks a key against Django's memcached rules (`memcache_key_warnings`, an error for
/// `PyMemcacheCache`) and pymemcache's (`check_key_helper`): at most 250 characters and 250 UTF-8
/// bytes, no character from `\x00`–`\x20` or `\x7f`.
///
/// ```
/// use session_cache::memcached_key_problem;
///
/// assert_eq!(memcached_key_problem(":1:django.contrib.sessions.cacheabc"), None);
/// assert!(memcached_key_problem("has space").is_some());
/// assert!(memcached_key_problem(&"k".repeat(251)).is_some());
/// ```
pub fn memcached_key_problem(key: &str) -> Option<&'static str> {
    if key.chars().count() > MAX_KEY_LENGTH || key.len() > MAX_KEY_LENGTH {
        Some("longer than 250 characters or bytes")
    } else if key.chars().any(|c| c <= '\x20' || c == '\x7f') {
        Some("contains a space or a control character")
    } else {
        None
    }
}

fn invalid_key(key: &str, reason: &'static str) -> MemcachedError {
    let shown: String = key.chars().take(80).collect();
    MemcachedError::InvalidKey { key: shown, reason }
}

/// A token from [`MemcachedCache::gets`], naming the version of the entry that was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CasToken(u64);

impl CasToken {
    /// The server's `cas unique` number.
    pub fn value(self) -> u64 {
        self.0
    }
}

/// What [`MemcachedCache::cas`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// The value was stored: the entry had not changed since it was read.
    Stored,
    /// Nothing was stored: the entry changed since it was read.
    Changed,
    /// Nothing was stored: the entry is gone (deleted or expired).
    NotFound,
}

/// Memcached: one server, or several with keys spread exactly as Django's `PyMemcacheCache`
/// (pymemcache's `HashClient`) spreads them, so both sides look for a session on the same server.
///
/// Values are stored as pymemcache's `pickle_serde` stores a session: the bytes given (a pickle,
/// in Django's cache format) with flag [`FLAG_PICKLE`]. Reads hand back the stored bytes whatever
/// their flags: a value another client stored as text or an integer is not a pickled dict, so the
/// session store treats it as corrupt, exactly as it treats Django's raw integers in Redis.
///
/// Commands map one to one: [`add`](CacheBackend::add) is memcached's `add` (atomic must-create),
/// [`replace`](CacheBackend::replace) its `replace` (never recreates a deleted session),
/// [`set`](CacheBackend::set), `get`, `delete`; [`gets`](Self::gets) and [`cas`](Self::cas) are
/// exposed for optimistic updates. Lifetimes over 30 days are sent as absolute Unix times, as
/// Django does (memcached reads them so).
///
/// Keys follow Django's memcached rules ([`memcached_key_problem`]): writing an invalid key is
/// an error ([`MemcachedError::InvalidKey`]); reading, testing or deleting one finds nothing,
/// because nothing can be stored under it (Django's session `load` likewise treats the error as
/// a miss).
///
/// Each server has a small pool of connections, opened on demand within the connection timeout;
/// each reply must come within the response timeout. A server that is down or slow fails the
/// calls for the keys it holds with [`CacheError::Memcached`], never a panic, and the next call
/// connects again. Unlike pymemcache, which after repeated failures drops a dead server and
/// moves its keys to the others, keys never move: a session is never read from one server and
/// then, after a hiccup, from another that holds an older copy.
///
/// ```no_run
/// use session_cache::{Cache, MemcachedCache};
///
/// # async fn demo() -> Result<(), session_cache::CacheError> {
/// // Django: "LOCATION": ["10.0.0.1:11211", "10.0.0.2:11211"] — the same servers, same order
/// // not needed (placement depends only on the names).
/// let memcached = MemcachedCache::connect("memcache://10.0.0.1:11211,memcache://10.0.0.2:11211")
///     .await?;
/// let cache = Cache::new(memcached).with_key_prefix("myapp");
/// # let _ = cache;
/// # Ok(()) }
/// ```
pub struct MemcachedCache {
    servers: Vec<Server>,
    /// The node names the hash places keys among (`host:port`), parallel to `servers`.
    nodes: Vec<String>,
    connection_timeout: Duration,
    response_timeout: Duration,
    max_value_size: usize,
}

struct Server {
    address: String,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

/// Where and how to connect: see [`MemcachedCache::builder`].
#[derive(Debug, Clone)]
pub struct MemcachedCacheBuilder {
    servers: Result<Vec<(String, u16)>, String>,
    connection_timeout: Duration,
    response_timeout: Duration,
    max_idle_connections: usize,
    max_value_size: usize,
}

impl MemcachedCacheBuilder {
    /// The default time allowed to open a connection: 2 s.
    pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
    /// The default time allowed for each reply: 2 s.
    pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
    /// The default number of idle connections kept per server: 16.
    pub const DEFAULT_MAX_IDLE_CONNECTIONS: usize = 16;
    /// The default value size limit: 1 MiB, memcached's default item size (`-I`).
    pub const DEFAULT_MAX_VALUE_SIZE: usize = 1024 * 1024;

    /// How long opening a connection may take.
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long each reply may take.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How many idle connections to keep per server (more are opened under load, and closed
    /// after use).
    pub fn max_idle_connections(mut self, connections: usize) -> Self {
        self.max_idle_connections = connections;
        self
    }

    /// The largest value written or read (larger ones are refused with
    /// [`MemcachedError::ValueTooLarge`], before anything is sent or allocated).
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// The node name (`host:port`) of the server that will hold `key`, as pymemcache's
    /// `HashClient` places it: known before connecting, or `None` when the server list is empty
    /// or malformed.
    ///
    /// ```
    /// use session_cache::MemcachedCache;
    ///
    /// let servers = MemcachedCache::builder("10.0.0.1:11211,10.0.0.2:11211");
    /// let home = servers.server_for(":1:django.contrib.sessions.cacheabc").unwrap();
    /// assert!(home == "10.0.0.1:11211" || home == "10.0.0.2:11211");
    /// ```
    pub fn server_for(&self, key: &str) -> Option<String> {
        let nodes: Vec<String> = nodes(self.servers.as_ref().ok()?)
            .into_iter()
            .map(|(node, _)| node)
            .collect();
        hash::rendezvous_node(&nodes, key).map(|index| nodes[index].clone())
    }

    /// Connects to every server (one `version` round trip each), failing if any is unreachable.
    ///
    /// # Errors
    ///
    /// [`CacheError::Config`] for an empty or malformed server list; [`CacheError::Memcached`]
    /// when a server cannot be reached.
    pub async fn connect(self) -> Result<MemcachedCache, CacheError> {
        let servers = self.servers.map_err(CacheError::Config)?;
        if servers.is_empty() {
            return Err(CacheError::Config(
                "no memcached server given: pass memcache://host:port, or several separated by commas"
                    .to_owned(),
            ));
        }
        let mut cache = MemcachedCache {
            servers: Vec::new(),
            nodes: Vec::new(),
            connection_timeout: self.connection_timeout,
            response_timeout: self.response_timeout,
            max_value_size: self.max_value_size,
        };
        for (node, address) in nodes(&servers) {
            cache.servers.push(Server {
                address,
                idle: Mutex::new(Vec::new()),
                max_idle: self.max_idle_connections,
            });
            cache.nodes.push(node);
        }
        for server in &cache.servers {
            cache.run(server, "version", Request::Version).await?;
        }
        Ok(cache)
    }
}

/// Each server's node name for the hash and its socket address, duplicates dropped (pymemcache's
/// hash ignores them too).
fn nodes(servers: &[(String, u16)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (host, port) in servers {
        // pymemcache names a node "host:port" (brackets of an IPv6 host stripped).
        let node = format!("{host}:{port}");
        if out.iter().any(|(seen, _)| *seen == node) {
            continue;
        }
        let address = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            node.clone()
        };
        out.push((node, address));
    }
    out
}

/// Parses Django's `LOCATION` forms: `host:port`, `host`, `[v6]:port`, with or without a
/// `memcache://` (or `memcached://`) scheme, separated by `,` or `;`.
fn parse_servers(urls: &str) -> Result<Vec<(String, u16)>, String> {
    let mut servers = Vec::new();
    for spec in urls
        .split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let bare = spec
            .strip_prefix("memcache://")
            .or_else(|| spec.strip_prefix("memcached://"))
            .unwrap_or(spec)
            .trim_end_matches('/');
        if bare.contains("://") || bare.starts_with('/') || bare.starts_with("unix:") {
            return Err(format!(
                "unsupported memcached server {spec:?}: give memcache://host:port (TCP)"
            ));
        }
        // As pymemcache's normalize_server_spec: the port follows the last colon, unless the
        // address is a bracketed IPv6 one without a port.
        let (host, port) = match bare.rsplit_once(':') {
            Some((host, port)) if !bare.ends_with(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("invalid port in memcached server {spec:?}"))?;
                (host, port)
            }
            _ => (bare, DEFAULT_PORT),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("no host in memcached server {spec:?}"));
        }
        servers.push((host.to_owned(), port));
    }
    Ok(servers)
}

impl MemcachedCache {
    /// Connects with default settings; see [`builder`](Self::builder) for the server list.
    ///
    /// # Errors
    ///
    /// As [`MemcachedCacheBuilder::connect`].
    pub async fn connect(urls: &str) -> Result<Self, CacheError> {
        Self::builder(urls).connect().await
    }

    /// Starts configuring a connection to the servers in `urls`, separated by commas or
    /// semicolons, each `memcache://host:port` or, as in Django's `LOCATION`, `host:port` (port
    /// 11211 when left out; `[::1]:11211` for IPv6). Name the servers exactly as the Django site
    /// does (`127.0.0.1` and `localhost` are different names to the hash), in any order.
    pub fn builder(urls: &str) -> MemcachedCacheBuilder {
        MemcachedCacheBuilder {
            servers: parse_servers(urls),
            connection_timeout: MemcachedCacheBuilder::DEFAULT_CONNECTION_TIMEOUT,
            response_timeout: MemcachedCacheBuilder::DEFAULT_RESPONSE_TIMEOUT,
            max_idle_connections: MemcachedCacheBuilder::DEFAULT_MAX_IDLE_CONNECTIONS,
            max_value_size: MemcachedCacheBuilder::DEFAULT_MAX_VALUE_SIZE,
        }
    }

    /// The servers' node names (`host:port`), in the order given.
    pub fn servers(&self) -> &[String] {
        &self.nodes
    }

    /// The node name of the server holding `key` (as pymemcache's `HashClient` places it).
    pub fn server_for(&self, key: &str) -> &str {
        &self.nodes[self.index_for(key)]
    }

    fn index_for(&self, key: &str) -> usize {
        // `connect` refuses an empty list, so there is always a winner.
        hash::rendezvous_node(&self.nodes, key).unwrap_or(0)
    }

    /// The value under `key` and a token for [`cas`](Self::cas), or `None` when absent (or the
    /// key is one memcached cannot hold).
    ///
    /// # Errors
    ///
    /// [`CacheError::Memcached`] when the key's server fails.
    pub async fn gets(&self, key: &str) -> Result<Option<(Bytes, CasToken)>, CacheError> {
        if memcached_key_problem(key).is_some() {
            return Ok(None);
        }
        let item = self.fetch(key, true).await?;
        Ok(item.and_then(|item| Some((item.data, CasToken(item.cas?)))))
    }

    /// Stores `value` only if the entry under `key` is still the one [`gets`](Self::gets) read
    /// with `token`.
    ///
    /// # Errors
    ///
    /// [`CacheError::Memcached`] for an invalid key, a value over the size limit, or a failing
    /// server.
    pub async fn cas(
        &self,
        key: &str,
        value: Bytes,
        ttl: Ttl,
        token: CasToken,
    ) -> Result<CasOutcome, CacheError> {
        match self
            .store(StoreCommand::Cas(token.0), "cas", key, &value, ttl)
            .await?
        {
            StoreReply::Stored => Ok(CasOutcome::Stored),
            StoreReply::Exists => Ok(CasOutcome::Changed),
            StoreReply::NotFound | StoreReply::NotStored => Ok(CasOutcome::NotFound),
        }
    }

    async fn store(
        &self,
        command: StoreCommand,
        name: &'static str,
        key: &str,
        value: &[u8],
        ttl: Ttl,
    ) -> Result<StoreReply, CacheError> {
        self.store_with_exptime(command, name, key, value, exptime(ttl, SystemTime::now()))
            .await
    }

    /// A storage command with memcached's own `exptime` (negative: the item expires at once).
    async fn store_with_exptime(
        &self,
        command: StoreCommand,
        name: &'static str,
        key: &str,
        value: &[u8],
        exptime: i64,
    ) -> Result<StoreReply, CacheError> {
        let server = &self.nodes[self.index_for(key)];
        let fail = |source| CacheError::Memcached {
            server: server.clone(),
            source,
        };
        if let Some(reason) = memcached_key_problem(key) {
            return Err(fail(invalid_key(key, reason)));
        }
        if value.len() > self.max_value_size {
            return Err(fail(MemcachedError::ValueTooLarge {
                size: value.len(),
                limit: self.max_value_size,
            }));
        }
        let request = Request::Store {
            command,
            key,
            flags: FLAG_PICKLE,
            exptime,
            data: value,
        };
        match self.on_key(key, name, request).await? {
            Response::Stored(reply) => Ok(reply),
            other => Err(fail(mismatched(name, &other))),
        }
    }

    /// `get` or `gets` of a valid key.
    async fn fetch(&self, key: &str, with_cas: bool) -> Result<Option<Item>, CacheError> {
        let name = if with_cas { "gets" } else { "get" };
        match self
            .on_key(key, name, Request::Get { key, with_cas })
            .await?
        {
            Response::Item(item) => Ok(item),
            other => Err(CacheError::Memcached {
                server: self.server_for(key).to_owned(),
                source: mismatched(name, &other),
            }),
        }
    }

    /// Runs `request` on the server holding `key`.
    async fn on_key(
        &self,
        key: &str,
        operation: &'static str,
        request: Request<'_>,
    ) -> Result<Response, CacheError> {
        let server = &self.servers[self.index_for(key)];
        self.run(server, operation, request).await
    }

    /// Runs `request` on a pooled (or new) connection to `server`, within the timeouts; the
    /// connection goes back to the pool only if the exchange completed.
    async fn run(
        &self,
        server: &Server,
        operation: &'static str,
        request: Request<'_>,
    ) -> Result<Response, CacheError> {
        let fail = |source| CacheError::Memcached {
            server: server.address.clone(),
            source,
        };
        let pooled = server
            .idle
            .lock()
            .map_err(|_| {
                fail(MemcachedError::protocol(
                    "connection pool poisoned".to_owned(),
                ))
            })?
            .pop();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => tokio::time::timeout(
                self.connection_timeout,
                Connection::open(&server.address, self.max_value_size),
            )
            .await
            .map_err(|_| {
                fail(MemcachedError::Timeout {
                    operation: "connect",
                    after: self.connection_timeout,
                })
            })?
            .map_err(fail)?,
        };
        let result = tokio::time::timeout(self.response_timeout, connection.execute(request))
            .await
            .map_err(|_| MemcachedError::Timeout {
                operation,
                after: self.response_timeout,
            })
            .and_then(|result| result)
            .map_err(fail)?;
        if let Ok(mut idle) = server.idle.lock()
            && idle.len() < server.max_idle
        {
            idle.push(connection);
        }
        Ok(result)
    }
}

/// A reply of another kind than the request's: a bug in this module, reported rather than
/// panicking.
fn mismatched(command: &str, response: &Response) -> MemcachedError {
    MemcachedError::protocol(format!("internal: {command} got {response:?}"))
}

/// Memcached's `exptime` for a lifetime: seconds up to 30 days, an absolute Unix time beyond
/// (Django's `get_backend_timeout`), capped at the largest time memcached parses (2038).
fn exptime(ttl: Ttl, now: SystemTime) -> i64 {
    let seconds = ttl.seconds();
    if seconds <= RELATIVE_EXPIRY_LIMIT {
        return i64::try_from(seconds).unwrap_or(i64::from(i32::MAX));
    }
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let absolute = now.saturating_add(seconds);
    i64::try_from(absolute.min(u64::from(i32::MAX.unsigned_abs()))).unwrap_or(i64::from(i32::MAX))
}

#[async_trait]
impl CacheBackend for MemcachedCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        if memcached_key_problem(key).is_some() {
            return Ok(None);
        }
        Ok(self.fetch(key, false).await?.map(|item| item.data))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<(), CacheError> {
        self.store(StoreCommand::Set, "set", key, &value, ttl)
            .await
            .map(drop)
    }

    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError> {
        let reply = self
            .store(StoreCommand::Add, "add", key, &value, ttl)
            .await?;
        Ok(reply == StoreReply::Stored)
    }

    async fn replace(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError> {
        let reply = self
            .store(StoreCommand::Replace, "replace", key, &value, ttl)
            .await?;
        Ok(reply == StoreReply::Stored)
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        if memcached_key_problem(key).is_some() {
            return Ok(false);
        }
        match self.on_key(key, "delete", Request::Delete { key }).await? {
            Response::Deleted(deleted) => Ok(deleted),
            other => Err(CacheError::Memcached {
                server: self.server_for(key).to_owned(),
                source: mismatched("delete", &other),
            }),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.get(key).await?.is_some())
    }

    fn can_compare_and_swap(&self) -> bool {
        true
    }

    fn kind(&self) -> &'static str {
        "memcached"
    }

    /// `gets`: one round trip, as `get`. The version is the bytes and their `cas unique`, which
    /// memcached changes on every write (a `set` by Django included).
    async fn get_versioned(&self, key: &str) -> Result<Option<VersionedValue>, CacheError> {
        Ok(self.gets(key).await?.map(|(value, token)| VersionedValue {
            version: stamped(&value, token.value()),
            value,
        }))
    }

    /// `cas` with the token read: the server stores only if nothing wrote the item since, so
    /// the swap is atomic. `cas` does not answer the new token, so a successful swap is followed
    /// by a `gets` (two round trips, on this path only); if another write already landed by
    /// then, the version returned is one no entry has, and the next swap conflicts rather than
    /// silently overwriting that write. A removal (`ttl` of `None`) is a `cas` with a negative
    /// `exptime`, which memcached stores as already expired: `delete` takes no token.
    async fn compare_and_swap(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Ttl>,
        expected: &Bytes,
    ) -> Result<Swap, CacheError> {
        // Versions are made by get_versioned; anything else matches no entry.
        let Some((_, token)) = unstamp(expected) else {
            return Ok(Swap::Changed);
        };
        if memcached_key_problem(key).is_some() {
            // Nothing can be stored under such a key.
            return Ok(Swap::Missing);
        }
        let exptime = ttl.map_or(-1, |ttl| exptime(ttl, SystemTime::now()));
        let reply = self
            .store_with_exptime(StoreCommand::Cas(token), "cas", key, &value, exptime)
            .await?;
        match reply {
            StoreReply::Stored if ttl.is_none() => Ok(Swap::Written(stamped(&value, 0))),
            StoreReply::Stored => {
                let token = match self.gets(key).await? {
                    Some((held, token)) if held == value => token.value(),
                    // Overwritten or removed already: a token no item has (memcached's are
                    // never 0).
                    _ => 0,
                };
                Ok(Swap::Written(stamped(&value, token)))
            }
            StoreReply::Exists => Ok(Swap::Changed),
            StoreReply::NotFound | StoreReply::NotStored => Ok(Swap::Missing),
        }
    }
}

impl fmt::Debug for MemcachedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemcachedCache({})", self.nodes.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists_are_read_as_django_and_pymemcache_read_them() {
        assert_eq!(
            parse_servers("memcache://127.0.0.1:11211, 127.0.0.1:11212;10.0.0.1").unwrap(),
            [
                ("127.0.0.1".to_owned(), 11211),
                ("127.0.0.1".to_owned(), 11212),
                ("10.0.0.1".to_owned(), 11211),
            ]
        );
        assert_eq!(
            parse_servers("memcached://[::1]:11300,[::1]").unwrap(),
            [("::1".to_owned(), 11300), ("::1".to_owned(), 11211)]
        );
        assert!(parse_servers("redis://h:1").is_err());
        assert!(parse_servers("unix:/tmp/memcached.sock").is_err());
        assert!(parse_servers("h:port").is_err());
        assert!(parse_servers(":11211").is_err());
        assert!(parse_servers(" , ").unwrap().is_empty());
    }

    #[test]
    fn keys_follow_djangos_memcached_rules() {
        assert_eq!(memcached_key_problem(&"k".repeat(250)), None);
        assert!(memcached_key_problem(&"k".repeat(251)).is_some());
        // 126 characters, 252 bytes: pymemcache refuses it by bytes.
        assert!(memcached_key_problem(&"é".repeat(126)).is_some());
        assert_eq!(memcached_key_problem(":1:zoë"), None);
        for bad in ["a b", "a\tb", "a\nb", "a\0b", "a\x7fb", "a\x1fb"] {
            assert!(memcached_key_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn lifetimes_over_thirty_days_become_absolute_times() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let ttl = |s: i64| Ttl::from_age(s).unwrap();
        assert_eq!(exptime(ttl(1), now), 1);
        assert_eq!(exptime(ttl(2_592_000), now), 2_592_000);
        assert_eq!(exptime(ttl(2_592_001), now), 1_802_592_001);
        assert_eq!(exptime(Ttl::MAX, now), i64::from(i32::MAX));
    }
}
