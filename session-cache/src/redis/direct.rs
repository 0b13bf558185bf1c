//! Direct connections to a single Redis server: each is used by one call at a time, which writes
//! its command and reads the reply itself.
//!
//! redis-rs's multiplexed connection hands every command to a task of its own and the reply back
//! through a channel; with one caller at a time that only adds two cross-thread hand-overs to
//! each round trip (about a quarter of a round trip's time, measured in bench/README.md). So a
//! single server keeps a few direct connections for when few calls are in flight, and sends the
//! calls beyond them through a connection they share ([`super::shared`]), which batches their
//! commands without a task of its own. This module also routes each call ([`Route`]) and
//! reads replies for both.
//!
//! Replies are read with bounds: a reply may hold at most [`MAX_REPLY_BYTES`] and nest at most
//! [`MAX_DEPTH`] arrays deep, and anything that is not RESP2 (we never ask for RESP3) fails the
//! call and closes the connection. Error replies are parsed by redis-rs itself, so their kinds
//! (`NOSCRIPT`, …) are exactly the multiplexed connection's.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionLike;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::shared::SharedConnection;

/// The most bytes one reply may hold: Redis's own default limit on a bulk string
/// (`proto-max-bulk-len`, 512 MiB).
pub(super) const MAX_REPLY_BYTES: usize = 512 * 1024 * 1024;

/// How deep arrays may nest in a reply (the replies we ask for nest at most twice).
const MAX_DEPTH: usize = 16;

/// The most room a connection's read and write buffers keep between calls, in bytes.
pub(super) const KEPT_BUFFER: usize = 64 * 1024;

/// How long our connections rest after one could not be opened: calls go through redis-rs's
/// multiplexed connection meanwhile, which has its own reconnection and backoff.
const REST_AFTER_FAILED_OPEN: Duration = Duration::from_secs(1);

/// How long another runtime's connection must have been idle before a runtime that has none
/// may close it to open its own (see [`ServerConnections::checkout`]).
const IDLE_BEFORE_RECLAIMED: Duration = Duration::from_secs(1);

/// How many runtimes may have a shared connection at once (actix-web runs one per worker, a
/// worker per core by default). A runtime that has shut down cannot be told from one that has
/// not, so past this a new runtime's connection replaces one with no call in flight (else the
/// oldest): runtimes that come and go cannot pile up connections.
pub(super) const MAX_SHARED: usize = 128;

/// Our connections to a single server, and how to open them: up to `max` direct ones, and a
/// shared one per runtime for the calls beyond them (see [`route`](Self::route)).
#[derive(Debug)]
pub(crate) struct ServerConnections {
    address: (String, u16),
    /// `AUTH` and `SELECT` as the URL asks, packed, sent when a connection opens.
    handshake: Vec<u8>,
    handshake_replies: usize,
    db: i64,
    connection_timeout: Duration,
    response_timeout: Duration,
    max: usize,
    /// Calls in flight on this server, direct or not: direct connections are used only while
    /// there are at most `max`.
    in_flight: AtomicUsize,
    /// Connections open, idle or in use.
    open: AtomicUsize,
    idle: Mutex<Vec<DirectConnection>>,
    /// One shared, pipelined connection per runtime, for calls beyond `max` in flight.
    shared: Mutex<Vec<Shared>>,
    resting_until: Mutex<Option<Instant>>,
}

/// A runtime's shared connection, or the call opening it.
#[derive(Debug)]
pub(super) enum Shared {
    Open(Arc<SharedConnection>),
    Opening(tokio::runtime::Id),
}

impl Shared {
    fn runtime(&self) -> tokio::runtime::Id {
        match self {
            Shared::Open(connection) => connection.runtime,
            Shared::Opening(runtime) => *runtime,
        }
    }
}

impl ServerConnections {
    /// Our connections to the server of `info` (`max` direct ones, and shared ones), or `None`
    /// when it is not one they can reach: TLS, a Unix socket, or RESP3 (which redis-rs's
    /// multiplexed connection handles).
    pub(crate) fn new(
        info: &redis::ConnectionInfo,
        max: usize,
        connection_timeout: Duration,
        response_timeout: Duration,
    ) -> Option<Self> {
        let redis::ConnectionAddr::Tcp(host, port) = info.addr() else {
            return None;
        };
        let settings = info.redis_settings();
        if settings.protocol() != redis::ProtocolVersion::RESP2 {
            return None;
        }
        let mut handshake = Vec::new();
        let mut handshake_replies = 0;
        if let Some(password) = settings.password() {
            let mut auth = redis::cmd("AUTH");
            if let Some(username) = settings.username() {
                auth.arg(username);
            }
            auth.arg(password).write_packed_command(&mut handshake);
            handshake_replies += 1;
        }
        if settings.db() != 0 {
            redis::cmd("SELECT")
                .arg(settings.db())
                .write_packed_command(&mut handshake);
            handshake_replies += 1;
        }
        Some(ServerConnections {
            address: (host.clone(), *port),
            handshake,
            handshake_replies,
            db: settings.db(),
            connection_timeout,
            response_timeout,
            max,
            in_flight: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            idle: Mutex::new(Vec::new()),
            shared: Mutex::new(Vec::new()),
            resting_until: Mutex::new(None),
        })
    }

    /// Where one call goes: a direct connection while at most `max` calls are in flight and one
    /// is free (or can be opened), else its runtime's shared connection, else (while either
    /// cannot be opened) redis-rs's multiplexed connection. The call counts as in flight until
    /// the route is dropped.
    pub(crate) async fn route(&self) -> Route<'_> {
        let calls = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        let call = InFlight { pool: self };
        let mut lane = None;
        if calls <= self.max {
            lane = self.checkout().await.map(Lane::Direct);
        }
        if lane.is_none() {
            lane = self.shared_connection().await.map(Lane::Shared);
        }
        Route { lane, _call: call }
    }

    /// This runtime's shared connection, opened if it has none usable; `None` while another call
    /// opens it or after one could not be opened (see [`REST_AFTER_FAILED_OPEN`]).
    async fn shared_connection(&self) -> Option<Arc<SharedConnection>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?.id();
        {
            let mut shared = self.lock_shared();
            if let Some(at) = shared.iter().position(|s| s.runtime() == runtime) {
                match &shared[at] {
                    Shared::Open(connection) if connection.is_usable() => {
                        return Some(connection.clone());
                    }
                    Shared::Opening(_) => return None,
                    // Failed, or closed by the server: replaced below.
                    Shared::Open(_) => drop(shared.remove(at)),
                }
            }
            if self.is_resting() {
                return None;
            }
            if shared.len() >= MAX_SHARED {
                let unused = shared
                    .iter()
                    .position(|s| matches!(s, Shared::Open(c) if c.is_idle()));
                drop(shared.remove(unused.unwrap_or(0)));
            }
            shared.push(Shared::Opening(runtime));
        }
        let mut opening = OpeningShared {
            pool: self,
            runtime,
            opened: None,
        };
        // Boxed: opening is rare, and held inline it would size every call's future.
        match Box::pin(self.open_connection(runtime)).await {
            Ok(connection) => {
                let connection = Arc::new(SharedConnection::new(
                    connection.stream,
                    runtime,
                    self.db,
                    self.response_timeout,
                ));
                opening.opened = Some(connection.clone());
                Some(connection)
            }
            Err(_) => {
                self.rest();
                None
            }
        }
    }

    /// A direct connection, or `None` when all are in use (or resting after a failed open).
    ///
    /// A socket belongs to the tokio runtime that opened it (that runtime's driver wakes its
    /// readers), and one program may run several, actix-web one per worker thread: a
    /// connection is only reused by calls on the runtime that opened it. When all `max` are open
    /// and none is free for this runtime, an idle one that is not in use elsewhere is closed to
    /// make room: one the server closed, or one idle for [`IDLE_BEFORE_RECLAIMED`] (its runtime
    /// may have shut down, which cannot be seen from here). Runtimes busy with their own keep
    /// them, so no two take connections from each other back and forth.
    async fn checkout(&self) -> Option<Checkout<'_>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?.id();
        loop {
            let popped = {
                let mut idle = self.lock_idle();
                let mine = idle.iter().rposition(|c| c.runtime == runtime);
                mine.map(|at| idle.swap_remove(at))
            };
            let Some(connection) = popped else {
                break;
            };
            if connection.is_alive() {
                return Some(Checkout::new(self, connection));
            }
            // Closed by the server while idle (a restart, a timeout, CLIENT KILL).
            self.open.fetch_sub(1, Ordering::AcqRel);
        }
        if self.is_resting() {
            return None;
        }
        let reserved = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .is_ok();
        if !reserved {
            let unused = {
                let mut idle = self.lock_idle();
                let at = idle
                    .iter()
                    .position(|c| c.idle_since.elapsed() >= IDLE_BEFORE_RECLAIMED || !c.is_alive());
                at.map(|at| idle.swap_remove(at))
            };
            // Its slot passes to the connection opened below.
            drop(unused?);
        }
        let mut slot = OpeningSlot {
            pool: self,
            opened: false,
        };
        // Boxed: opening is rare, and held inline it would size every call's future.
        match Box::pin(self.open_connection(runtime)).await {
            Ok(connection) => {
                slot.opened = true;
                Some(Checkout::new(self, connection))
            }
            Err(_) => {
                self.rest();
                None
            }
        }
    }

    /// How many direct connections are open (idle or in use).
    #[cfg(test)]
    fn open_count(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// After a failed open: no connection of ours is tried for [`REST_AFTER_FAILED_OPEN`].
    fn rest(&self) {
        *self.lock_resting() = Some(Instant::now() + REST_AFTER_FAILED_OPEN);
    }

    fn is_resting(&self) -> bool {
        let mut resting = self.lock_resting();
        match *resting {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *resting = None;
                false
            }
            None => false,
        }
    }

    async fn open_connection(&self, runtime: tokio::runtime::Id) -> RedisResult<DirectConnection> {
        let (host, port) = (&self.address.0, self.address.1);
        let stream = tokio::time::timeout(
            self.connection_timeout,
            TcpStream::connect((host.as_str(), port)),
        )
        .await
        .map_err(|_| timed_out("connecting", self.connection_timeout))??;
        // Commands are small and answered one at a time: never hold one back (Nagle).
        stream.set_nodelay(true)?;
        let mut connection = DirectConnection {
            stream,
            runtime,
            idle_since: Instant::now(),
            read: Vec::new(),
            write: self.handshake.clone(),
        };
        if self.handshake_replies > 0 {
            let replies = tokio::time::timeout(
                self.response_timeout,
                connection.exchange(self.handshake_replies),
            )
            .await
            .map_err(|_| timed_out("the handshake", self.response_timeout))??;
            for reply in replies {
                reply.extract_error()?;
            }
        }
        Ok(connection)
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<DirectConnection>> {
        // The lists hold plain data: a panic elsewhere cannot leave them half-changed.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn lock_shared(&self) -> std::sync::MutexGuard<'_, Vec<Shared>> {
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_resting(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.resting_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A place among the `max` taken for a connection being opened: given back when the opening
/// fails, or when the call is dropped while it waits for it (a caller's own timeout), so
/// abandoned openings never use the places up.
struct OpeningSlot<'a> {
    pool: &'a ServerConnections,
    opened: bool,
}

impl Drop for OpeningSlot<'_> {
    fn drop(&mut self) {
        if !self.opened {
            self.pool.open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A runtime's shared connection being opened: its entry becomes the connection once open, and
/// goes when the opening fails or the call opening it is dropped.
struct OpeningShared<'a> {
    pool: &'a ServerConnections,
    runtime: tokio::runtime::Id,
    opened: Option<Arc<SharedConnection>>,
}

impl Drop for OpeningShared<'_> {
    fn drop(&mut self) {
        let mut shared = self.pool.lock_shared();
        let at = shared
            .iter()
            .position(|s| matches!(s, Shared::Opening(r) if *r == self.runtime));
        match (at, self.opened.take()) {
            (Some(at), Some(connection)) => shared[at] = Shared::Open(connection),
            (Some(at), None) => drop(shared.remove(at)),
            // Pushed out by other runtimes meanwhile: the connection serves this call alone.
            (None, _) => {}
        }
    }
}

/// One open connection. It is reused only after a complete exchange; after any error or a
/// cancelled call its state is unknown and it is closed.
#[derive(Debug)]
struct DirectConnection {
    stream: TcpStream,
    /// The runtime whose driver the socket is registered with.
    runtime: tokio::runtime::Id,
    /// When it was last given back.
    idle_since: Instant,
    /// Bytes received and not yet parsed (empty between exchanges).
    read: Vec<u8>,
    /// The request being sent (kept to reuse its allocation).
    write: Vec<u8>,
}

impl DirectConnection {
    /// Whether an idle connection can still be used: nothing to read (tokio answers from its
    /// cached readiness, without a system call, when the socket has not become readable).
    fn is_alive(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends the request in `self.write` and reads `replies` replies to it.
    async fn exchange(&mut self, replies: usize) -> RedisResult<Vec<Value>> {
        self.stream.write_all(&self.write).await?;
        let mut values = Vec::with_capacity(replies);
        let mut parsed = 0;
        while values.len() < replies {
            match next_reply(&self.read[parsed..])? {
                Some((value, used)) => {
                    values.push(value);
                    parsed += used;
                }
                None => {
                    if self.read.len() - parsed >= MAX_REPLY_BYTES {
                        return Err(protocol_error(format!(
                            "a reply is over {MAX_REPLY_BYTES} bytes"
                        )));
                    }
                    if self.read.capacity() - self.read.len() < 4096 {
                        self.read.reserve(8192);
                    }
                    if self.stream.read_buf(&mut self.read).await? == 0 {
                        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
                    }
                }
            }
        }
        if parsed != self.read.len() {
            return Err(protocol_error(
                "the server sent more than the replies asked for".to_owned(),
            ));
        }
        self.read.clear();
        // One large reply or value must not stay in memory with every idle connection.
        if self.read.capacity() > KEPT_BUFFER {
            self.read = Vec::new();
        }
        if self.write.capacity() > KEPT_BUFFER {
            self.write = Vec::new();
        }
        Ok(values)
    }
}

/// One call to the server, held until it ends: see [`ServerConnections::route`].
pub(crate) struct Route<'a> {
    /// The connection it goes through, if it got one of ours (else redis-rs's multiplexed one).
    lane: Option<Lane<'a>>,
    // Dropped after `lane`: a direct connection is back in the idle list before the call stops
    // counting as in flight.
    _call: InFlight<'a>,
}

impl<'a> Route<'a> {
    /// The connection of ours the call goes through, if it got one.
    pub(crate) fn lane(&mut self) -> Option<&mut Lane<'a>> {
        self.lane.as_mut()
    }
}

/// A connection of ours for one call: a direct one of its own, or its runtime's shared one.
pub(crate) enum Lane<'a> {
    Direct(Checkout<'a>),
    Shared(Arc<SharedConnection>),
}

impl Lane<'_> {
    /// Sends what `pack` writes and reads `replies` replies, within the response timeout.
    async fn request(
        &mut self,
        pack: impl FnOnce(&mut Vec<u8>),
        replies: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Lane::Direct(direct) => direct.request(pack, replies).await,
            Lane::Shared(shared) => shared.request(pack, replies).await,
        }
    }
}

impl ConnectionLike for Lane<'_> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut values = self
                .request(|buffer| cmd.write_packed_command(buffer), 1)
                .await?;
            values
                .pop()
                .ok_or_else(|| protocol_error("no reply".to_owned()))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let packed = pipeline.get_packed_pipeline();
            let mut values = self
                .request(|buffer| buffer.extend_from_slice(&packed), offset + count)
                .await?;
            Ok(values.split_off(offset))
        })
    }

    fn get_db(&self) -> i64 {
        match self {
            Lane::Direct(direct) => direct.pool.db,
            Lane::Shared(shared) => shared.db,
        }
    }
}

/// One call counted as in flight until dropped.
struct InFlight<'a> {
    pool: &'a ServerConnections,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.pool.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A direct connection checked out for one call; it goes back to the idle list only when the
/// call's exchange completed, and is closed otherwise (an error, a timeout, a dropped future).
pub(crate) struct Checkout<'a> {
    pool: &'a ServerConnections,
    connection: Option<DirectConnection>,
    reusable: bool,
}

impl<'a> Checkout<'a> {
    fn new(pool: &'a ServerConnections, connection: DirectConnection) -> Self {
        Checkout {
            pool,
            connection: Some(connection),
            reusable: true,
        }
    }

    /// Sends what `pack` writes and reads `replies` replies, within the response timeout.
    async fn request(
        &mut self,
        pack: impl FnOnce(&mut Vec<u8>),
        replies: usize,
    ) -> RedisResult<Vec<Value>> {
        let timeout = self.pool.response_timeout;
        let Some(connection) = self.connection.as_mut() else {
            return Err(io::Error::from(io::ErrorKind::NotConnected).into());
        };
        self.reusable = false;
        connection.write.clear();
        pack(&mut connection.write);
        let values = tokio::time::timeout(timeout, connection.exchange(replies))
            .await
            .map_err(|_| timed_out("a reply", timeout))??;
        self.reusable = true;
        Ok(values)
    }
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        match self.connection.take() {
            Some(mut connection) if self.reusable => {
                connection.idle_since = Instant::now();
                self.pool.lock_idle().push(connection);
            }
            _ => {
                self.pool.open.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

pub(super) fn timed_out(what: &str, after: Duration) -> RedisError {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no answer to {what} within {after:?}"),
    )
    .into()
}

pub(super) fn protocol_error(detail: String) -> RedisError {
    RedisError::from((ErrorKind::Parse, "invalid reply from Redis", detail))
}

/// The first whole reply in `input` and the bytes it took, or `None` when more bytes are needed.
///
/// Framed first, without building anything, so a reply that arrives in many pieces is built
/// once, when it is whole.
pub(super) fn next_reply(input: &[u8]) -> RedisResult<Option<(Value, usize)>> {
    let Some((_, used)) = parse_reply(input, 0, Build::No)? else {
        return Ok(None);
    };
    match parse_reply(&input[..used], 0, Build::Yes)? {
        Some((value, _)) => Ok(Some((value, used))),
        None => Err(protocol_error(
            "a reply framed whole parsed short".to_owned(),
        )),
    }
}

/// Whether [`parse_reply`] builds the value or only finds where the reply ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Build {
    Yes,
    No,
}

/// Parses one RESP2 reply at the start of `input`: the value (`Nil` everywhere when not built)
/// and the bytes it took, or `None` when more bytes are needed.
fn parse_reply(input: &[u8], depth: usize, build: Build) -> RedisResult<Option<(Value, usize)>> {
    let Some(newline) = input.iter().position(|&byte| byte == b'\n') else {
        if input.len() > MAX_LINE {
            return Err(protocol_error("a reply line is too long".to_owned()));
        }
        return Ok(None);
    };
    let after_line = newline + 1;
    let Some(line) = input[..newline].strip_suffix(b"\r") else {
        return Err(protocol_error(
            "a reply line does not end with CRLF".to_owned(),
        ));
    };
    let Some((&kind, line)) = line.split_first() else {
        return Err(protocol_error("an empty reply line".to_owned()));
    };
    let value = match (kind, build) {
        (b'+' | b'-', Build::No) => Value::Nil,
        (b'+', Build::Yes) => {
            let text = std::str::from_utf8(line)
                .map_err(|_| protocol_error("a status reply is not UTF-8".to_owned()))?;
            if text == "OK" {
                Value::Okay
            } else {
                Value::SimpleString(text.to_owned())
            }
        }
        // redis-rs reads the error's kind and code, so NOSCRIPT and the rest are told apart
        // exactly as on its own connections.
        (b'-', Build::Yes) => redis::parse_redis_value(&input[..after_line])?,
        (b':', _) => Value::Int(parse_integer(line)?),
        (b'$', _) => {
            let length = parse_integer(line)?;
            if length < 0 {
                return Ok(Some((Value::Nil, after_line)));
            }
            let length = usize::try_from(length)
                .ok()
                .filter(|&length| length <= MAX_REPLY_BYTES)
                .ok_or_else(|| protocol_error(format!("a bulk string of {length} bytes")))?;
            let end = after_line + length;
            if input.len() < end + 2 {
                return Ok(None);
            }
            if &input[end..end + 2] != b"\r\n" {
                return Err(protocol_error(
                    "a bulk string does not end with CRLF".to_owned(),
                ));
            }
            let value = match build {
                Build::Yes => Value::BulkString(input[after_line..end].to_vec()),
                Build::No => Value::Nil,
            };
            return Ok(Some((value, end + 2)));
        }
        (b'*', _) => {
            let count = parse_integer(line)?;
            if count < 0 {
                return Ok(Some((Value::Nil, after_line)));
            }
            if depth >= MAX_DEPTH {
                return Err(protocol_error(format!(
                    "arrays nested over {MAX_DEPTH} deep"
                )));
            }
            // Each element takes at least 3 bytes: a count past what the limit can hold is bad.
            let count = usize::try_from(count)
                .ok()
                .filter(|&count| count <= MAX_REPLY_BYTES / 3)
                .ok_or_else(|| protocol_error(format!("an array of {count} elements")))?;
            let mut items = Vec::with_capacity(match build {
                Build::Yes => count.min(64),
                Build::No => 0,
            });
            let mut used = after_line;
            for _ in 0..count {
                let Some((item, taken)) = parse_reply(&input[used..], depth + 1, build)? else {
                    return Ok(None);
                };
                if build == Build::Yes {
                    items.push(item);
                }
                used += taken;
            }
            let value = match build {
                Build::Yes => Value::Array(items),
                Build::No => Value::Nil,
            };
            return Ok(Some((value, used)));
        }
        (other, _) => {
            return Err(protocol_error(format!(
                "unknown reply type {:?} (only RESP2 is spoken here)",
                char::from(other)
            )));
        }
    };
    Ok(Some((value, after_line)))
}

/// The longest header or status line accepted before its CRLF.
const MAX_LINE: usize = 64 * 1024;

fn parse_integer(digits: &[u8]) -> RedisResult<i64> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| {
            protocol_error(format!(
                "{:?} is not an integer",
                String::from_utf8_lossy(digits)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::IntoConnectionInfo;
    use session_conformance::services;

    /// Replies of every RESP2 shape, as a server sends them.
    const REPLIES: &[&[u8]] = &[
        b"+OK\r\n",
        b"+QUEUED\r\n",
        b"+\r\n",
        b"-ERR unknown command 'FOO'\r\n",
        b"-NOSCRIPT No matching script. Please use EVAL.\r\n",
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        b":0\r\n",
        b":-2\r\n",
        b":1773927846123\r\n",
        b"$-1\r\n",
        b"$0\r\n\r\n",
        b"$5\r\nhello\r\n",
        b"$4\r\na\r\nb\r\n",
        b"*-1\r\n",
        b"*0\r\n",
        b"*2\r\n$3\r\nval\r\n:1773927846123\r\n",
        b"*3\r\n+OK\r\n-ERR inside\r\n*1\r\n$-1\r\n",
    ];

    fn parse_whole(input: &[u8]) -> RedisResult<Option<(Value, usize)>> {
        parse_reply(input, 0, Build::Yes)
    }

    #[test]
    fn every_reply_parses_as_redis_rs_parses_it() {
        for &reply in REPLIES {
            let ours = parse_whole(reply).unwrap();
            let theirs = redis::parse_redis_value(reply).unwrap();
            assert_eq!(ours, Some((theirs, reply.len())), "{reply:?}");
            let framed = parse_reply(reply, 0, Build::No).unwrap().map(|(_, n)| n);
            assert_eq!(framed, Some(reply.len()), "{reply:?}");
        }
    }

    #[test]
    fn a_reply_cut_anywhere_asks_for_more_bytes() {
        for &reply in REPLIES {
            for cut in 0..reply.len() {
                assert_eq!(
                    parse_whole(&reply[..cut]).unwrap(),
                    None,
                    "{reply:?} cut at {cut}"
                );
                assert_eq!(parse_reply(&reply[..cut], 0, Build::No).unwrap(), None);
            }
        }
    }

    #[test]
    fn a_reply_followed_by_another_takes_only_its_own_bytes() {
        let both = [REPLIES[15], REPLIES[11]].concat();
        let (_, used) = parse_whole(&both).unwrap().unwrap();
        assert_eq!(used, REPLIES[15].len());
    }

    /// A small deterministic generator, so a failure replays.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    /// A random RESP2 reply, nesting arrays up to `depth` more levels.
    fn random_reply(rng: &mut Lcg, depth: u32, out: &mut Vec<u8>) {
        let kinds = if depth == 0 { 6 } else { 8 };
        match rng.below(kinds) {
            0 => out.extend_from_slice(b"+OK\r\n"),
            1 => out.extend_from_slice(b"-NOSCRIPT No matching script.\r\n"),
            2 => out.extend_from_slice(
                format!(":{}\r\n", rng.below(1 << 40) as i64 - (1 << 39)).as_bytes(),
            ),
            3 => out.extend_from_slice(b"$-1\r\n"),
            4 | 5 => {
                let body: Vec<u8> = (0..rng.below(40)).map(|_| rng.below(256) as u8).collect();
                out.extend_from_slice(format!("${}\r\n", body.len()).as_bytes());
                out.extend_from_slice(&body);
                out.extend_from_slice(b"\r\n");
            }
            6 => out.extend_from_slice(b"*-1\r\n"),
            _ => {
                let count = rng.below(4);
                out.extend_from_slice(format!("*{count}\r\n").as_bytes());
                for _ in 0..count {
                    random_reply(rng, depth - 1, out);
                }
            }
        }
    }

    #[test]
    fn random_replies_parse_as_redis_rs_parses_them_whole_cut_or_damaged() {
        let mut rng = Lcg(0x5e55_1011);
        for _ in 0..3_000 {
            let mut reply = Vec::new();
            random_reply(&mut rng, 3, &mut reply);
            let theirs = redis::parse_redis_value(&reply).unwrap();
            assert_eq!(parse_whole(&reply).unwrap(), Some((theirs, reply.len())));
            let cut = rng.below(reply.len() as u64) as usize;
            assert_eq!(
                parse_whole(&reply[..cut]).unwrap(),
                None,
                "{reply:?} cut at {cut}"
            );

            // One byte changed: an error, a request for more, or a reply redis-rs reads alike.
            let mut damaged = reply.clone();
            let at = rng.below(damaged.len() as u64) as usize;
            damaged[at] = rng.below(256) as u8;
            if let Ok(Some((ours, used))) = parse_whole(&damaged) {
                let theirs = redis::parse_redis_value(&damaged[..used]);
                assert_eq!(theirs.ok(), Some(ours), "{damaged:?}");
            }
        }
    }

    #[test]
    fn malformed_or_oversized_replies_are_errors() {
        let nested = "*1\r\n".repeat(MAX_DEPTH + 1) + ":1\r\n";
        let long_line = format!("+{}", "x".repeat(MAX_LINE + 1));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("unknown type", b"%1\r\n".to_vec()),
            ("RESP3 double", b",1.5\r\n".to_vec()),
            ("empty line", b"\r\n".to_vec()),
            ("bare newline", b":1\n".to_vec()),
            ("bad integer", b":12a\r\n".to_vec()),
            ("bad bulk length", b"$x\r\n".to_vec()),
            ("bulk past the limit", b"$600000000\r\n".to_vec()),
            ("bulk without its CRLF", b"$2\r\nabcd".to_vec()),
            ("array count past the limit", b"*999999999999\r\n".to_vec()),
            ("nested too deep", nested.into_bytes()),
            ("status not UTF-8", b"+\xff\r\n".to_vec()),
            ("line without end", long_line.into_bytes()),
        ];
        for (what, input) in cases {
            let error = parse_whole(&input).expect_err(what);
            assert_eq!(error.kind(), ErrorKind::Parse, "{what}: {error:?}");
        }
    }

    fn pool(url: &str, max: usize, response_timeout: Duration) -> ServerConnections {
        let info = url.into_connection_info().unwrap();
        ServerConnections::new(&info, max, Duration::from_secs(2), response_timeout).unwrap()
    }

    async fn client_id(connection: &mut Lane<'_>) -> i64 {
        redis::cmd("CLIENT")
            .arg("ID")
            .query_async(connection)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn one_caller_at_a_time_reuses_one_connection_and_a_crowd_gets_at_most_max() {
        let test = "one_caller_at_a_time_reuses_one_connection_and_a_crowd_gets_at_most_max";
        let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
            return;
        };
        let direct = pool(&url, 2, Duration::from_secs(2));
        let key = services::unique_name("direct-reuse");
        let mut ids = Vec::new();
        for round in 0..5 {
            let mut connection = Lane::Direct(direct.checkout().await.unwrap());
            let () = redis::cmd("SET")
                .arg(&key)
                .arg(round)
                .arg("EX")
                .arg(60)
                .query_async(&mut connection)
                .await
                .unwrap();
            let read: i64 = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .unwrap();
            assert_eq!(read, round);
            ids.push(client_id(&mut connection).await);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "one connection served every call");
        assert_eq!(direct.open_count(), 1);

        let first = Lane::Direct(direct.checkout().await.unwrap());
        let second = Lane::Direct(direct.checkout().await.unwrap());
        assert!(
            direct.checkout().await.is_none(),
            "a third caller is refused"
        );
        drop((first, second));
        assert_eq!(direct.open_count(), 2, "both went back to the idle list");
        let mut again = Lane::Direct(direct.checkout().await.unwrap());
        let _: i64 = client_id(&mut again).await;
    }

    #[tokio::test]
    async fn a_large_value_passes_whole_and_its_buffers_are_not_kept() {
        let test = "a_large_value_passes_whole_and_its_buffers_are_not_kept";
        let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
            return;
        };
        let direct = pool(&url, 1, Duration::from_secs(5));
        let key = services::unique_name("direct-large");
        let value: Vec<u8> = (0..3 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
        let mut connection = Lane::Direct(direct.checkout().await.unwrap());
        let () = redis::cmd("SET")
            .arg(&key)
            .arg(&value)
            .arg("EX")
            .arg(60)
            .query_async(&mut connection)
            .await
            .unwrap();
        let read: Vec<u8> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(read == value, "3 MiB came back changed");
        let Lane::Direct(checkout) = &connection else {
            unreachable!("a direct connection was checked out")
        };
        let held = checkout.connection.as_ref().unwrap();
        assert!(held.read.capacity() <= KEPT_BUFFER && held.write.capacity() <= KEPT_BUFFER);
        let () = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .map(|_: i64| ())
            .unwrap();
    }

    #[tokio::test]
    async fn direct_connections_are_used_only_while_at_most_max_calls_are_in_flight() {
        let test = "direct_connections_are_used_only_while_at_most_max_calls_are_in_flight";
        let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
            return;
        };
        let direct = pool(&url, 2, Duration::from_secs(2));
        let first = direct.route().await;
        let second = direct.route().await;
        let third = direct.route().await;
        assert!(is_direct(&first) && is_direct(&second));
        assert!(
            is_shared(&third),
            "a third call goes through the shared connection"
        );
        drop(first);
        // An idle connection is free now, but three calls are still one too many.
        let fourth = direct.route().await;
        assert_eq!(direct.lock_idle().len(), 1);
        assert!(is_shared(&fourth));
        drop((second, third, fourth));
        assert_eq!(direct.in_flight.load(Ordering::Acquire), 0);
        let mut alone = direct.route().await;
        assert!(is_direct(&alone));
        let id: i64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(alone.lane().unwrap())
            .await
            .unwrap();
        assert!(id > 0);
        assert_eq!(direct.open_count(), 2, "both connections were kept");
    }

    fn is_direct(route: &Route<'_>) -> bool {
        matches!(route.lane, Some(Lane::Direct(_)))
    }

    fn is_shared(route: &Route<'_>) -> bool {
        matches!(route.lane, Some(Lane::Shared(_)))
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_replaced_before_use() {
        let test = "a_connection_closed_while_idle_is_replaced_before_use";
        let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
            return;
        };
        let direct = pool(&url, 1, Duration::from_secs(2));
        let killed = client_id(&mut Lane::Direct(direct.checkout().await.unwrap())).await;
        let mut admin = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let () = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(killed)
            .query_async(&mut admin)
            .await
            .map(|_: i64| ())
            .unwrap();
        // The close reaches this side's socket (and tokio's readiness) almost at once.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let replacement = client_id(&mut Lane::Direct(direct.checkout().await.unwrap())).await;
        assert_ne!(replacement, killed);
        assert_eq!(direct.open_count(), 1);
    }

    #[tokio::test]
    async fn a_call_that_times_out_or_is_dropped_closes_its_connection() {
        let test = "a_call_that_times_out_or_is_dropped_closes_its_connection";
        let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
            return;
        };
        let direct = pool(&url, 1, Duration::from_millis(100));
        let empty = services::unique_name("direct-timeout");
        // BLPOP on an empty list answers after its own 1 s timeout: past the response timeout.
        let mut connection = Lane::Direct(direct.checkout().await.unwrap());
        let error = redis::cmd("BLPOP")
            .arg(&empty)
            .arg(1)
            .query_async::<Value>(&mut connection)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Io, "{error}");
        assert!(error.to_string().contains("no answer"), "{error}");
        drop(connection);
        assert_eq!(
            direct.open_count(),
            0,
            "a timed-out connection is not reused"
        );

        // A caller that gives up first (its future dropped mid-exchange) closes it too: the late
        // reply must never be read as the next call's.
        let mut connection = Lane::Direct(direct.checkout().await.unwrap());
        let given_up = tokio::time::timeout(
            Duration::from_millis(20),
            redis::cmd("BLPOP")
                .arg(&empty)
                .arg(1)
                .query_async::<Value>(&mut connection),
        )
        .await;
        assert!(given_up.is_err());
        drop(connection);
        assert_eq!(direct.open_count(), 0);
        let mut fresh = Lane::Direct(direct.checkout().await.unwrap());
        let pong: String = redis::cmd("PING").query_async(&mut fresh).await.unwrap();
        assert_eq!(pong, "PONG");
    }

    #[tokio::test]
    async fn server_error_replies_keep_their_kind_and_the_connection() {
        let test = "server_error_replies_keep_their_kind_and_the_connection";
        let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
            return;
        };
        let direct = pool(&url, 1, Duration::from_secs(2));
        let mut connection = Lane::Direct(direct.checkout().await.unwrap());
        let error = redis::cmd("EVALSHA")
            .arg("0000000000000000000000000000000000000000")
            .arg(0)
            .query_async::<Value>(&mut connection)
            .await
            .unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::Server(redis::ServerErrorKind::NoScript)
        );
        // The exchange completed: the same connection answers the next call.
        let pong: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(pong, "PONG");
        drop(connection);
        assert_eq!(direct.open_count(), 1);
    }

    #[tokio::test]
    async fn a_call_dropped_while_its_connection_opens_gives_its_place_back() {
        // A server that accepts connections and never answers: the handshake (AUTH) waits.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let accepting = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
            }
        });
        let url = format!("redis://:secret@127.0.0.1:{port}");
        let direct = pool(&url, 1, Duration::from_secs(5));
        for _ in 0..3 {
            let given_up = tokio::time::timeout(Duration::from_millis(50), direct.checkout()).await;
            assert!(given_up.is_err(), "the opening never completes");
            assert_eq!(direct.open_count(), 0, "the place was given back");
        }
        assert!(
            !direct.is_resting(),
            "a caller giving up is not a failed open"
        );
        // The same for the shared connection: a call that gives up while it opens leaves no
        // "opening" mark behind, so the next call opens it instead of waiting on nobody.
        let crowd = pool(&url, 0, Duration::from_secs(5));
        for _ in 0..3 {
            let given_up =
                tokio::time::timeout(Duration::from_millis(50), crowd.shared_connection()).await;
            assert!(given_up.is_err(), "the opening never completes");
            assert!(crowd.lock_shared().is_empty(), "the mark was taken back");
        }
        assert!(!crowd.is_resting());
        accepting.abort();
    }

    #[tokio::test]
    async fn an_unreachable_server_leaves_calls_to_the_multiplexed_connection_for_a_while() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let direct = pool(
            &format!("redis://127.0.0.1:{port}"),
            2,
            Duration::from_secs(1),
        );
        assert!(direct.checkout().await.is_none());
        assert!(direct.is_resting());
        assert_eq!(direct.open_count(), 0);
        assert!(
            direct.route().await.lane.is_none(),
            "no shared connection is tried while resting either"
        );
        assert!(direct.lock_shared().is_empty());
    }

    #[test]
    fn a_connection_is_only_reused_on_the_runtime_that_opened_it() {
        let test = "a_connection_is_only_reused_on_the_runtime_that_opened_it";
        let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
            return;
        };
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        let direct = pool(&url, 2, Duration::from_secs(2));
        let first = runtime();
        let first_id = first.block_on(async {
            client_id(&mut Lane::Direct(direct.checkout().await.unwrap())).await
        });
        let second = runtime();
        let second_id = second.block_on(async {
            client_id(&mut Lane::Direct(direct.checkout().await.unwrap())).await
        });
        assert_ne!(first_id, second_id, "the second runtime opened its own");
        assert_eq!(direct.open_count(), 2);
        // Each runtime gets its own back.
        let again = first.block_on(async {
            client_id(&mut Lane::Direct(direct.checkout().await.unwrap())).await
        });
        assert_eq!(again, first_id);

        // A runtime that shut down leaves a connection nobody can use: at the limit, a third
        // runtime closes it once it has been idle a while, and never one in use.
        drop(first);
        let third = runtime();
        let refused = third.block_on(async { direct.checkout().await.is_none() });
        assert!(
            refused,
            "nothing is reclaimed before it has been idle a while"
        );
        let in_use = Lane::Direct(second.block_on(direct.checkout()).unwrap());
        std::thread::sleep(IDLE_BEFORE_RECLAIMED + Duration::from_millis(100));
        let third_id = third.block_on(async {
            client_id(&mut Lane::Direct(direct.checkout().await.unwrap())).await
        });
        assert!(![first_id, second_id].contains(&third_id));
        assert_eq!(direct.open_count(), 2);
        drop(in_use);
        let kept = second.block_on(async {
            client_id(&mut Lane::Direct(direct.checkout().await.unwrap())).await
        });
        assert_eq!(
            kept, second_id,
            "the second runtime's connection was not taken"
        );
    }

    #[test]
    fn tls_unix_sockets_and_resp3_get_none_of_our_connections() {
        let make = |url: &str| {
            ServerConnections::new(
                &url.into_connection_info().unwrap(),
                2,
                Duration::from_secs(1),
                Duration::from_secs(1),
            )
        };
        assert!(make("redis://127.0.0.1:6379").is_some());
        assert!(make("redis+unix:///tmp/redis.sock").is_none());
        assert!(make("redis://127.0.0.1:6379/?protocol=resp3").is_none());
        assert!(
            ServerConnections::new(
                &"redis://127.0.0.1:6379".into_connection_info().unwrap(),
                0,
                Duration::from_secs(1),
                Duration::from_secs(1),
            )
            .is_some(),
            "with no direct connections, calls still share a pipelined one"
        );
    }

    #[test]
    fn the_handshake_authenticates_and_selects_the_database_of_the_url() {
        let direct = pool(
            "redis://alice:s3cret@127.0.0.1:6379/3",
            1,
            Duration::from_secs(1),
        );
        let expected = [
            redis::cmd("AUTH")
                .arg("alice")
                .arg("s3cret")
                .get_packed_command(),
            redis::cmd("SELECT").arg(3).get_packed_command(),
        ]
        .concat();
        assert_eq!(direct.handshake, expected);
        assert_eq!(direct.handshake_replies, 2);
        let plain = pool("redis://127.0.0.1:6379", 1, Duration::from_secs(1));
        assert!(plain.handshake.is_empty());
    }
}
