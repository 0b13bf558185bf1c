//! One pipelined connection to a single Redis server, shared by every call in flight on a tokio
//! runtime once there are more than the direct connections serve.
//!
//! There is no task behind it: the calls themselves do its I/O. A call queues its command and
//! takes whichever part of the work is free: writing what is queued (its own command and any that
//! others queued meanwhile, in one write) or reading replies (all that have arrived, each handed
//! to the call that waits for it, in command order). A call that finds both taken waits to be
//! handed its reply or a free part. redis-rs's multiplexed connection does the same work in a
//! task of its own, reached through a channel, and hands each reply back through another: under
//! load those hand-overs cost more client CPU than the commands themselves (bench/README.md).
//!
//! A call dropped part-way (a caller's timeout, a closed HTTP connection) leaves the connection
//! whole: writes and reads are each one cancel-safe system call, what a dropped writer had not
//! sent yet is sent by the next, and a dropped call's replies are read and discarded in turn. A
//! failure of the connection itself (an I/O error, a reply that is not RESP2 or over the limits,
//! no reply within the response timeout) fails every call on it, and the next call opens another.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::time::Duration;

use redis::{RedisError, RedisResult, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::direct::{KEPT_BUFFER, MAX_REPLY_BYTES, next_reply, protocol_error, timed_out};

/// A connection shared by many calls at once (see the module's docs).
#[derive(Debug)]
pub(crate) struct SharedConnection {
    state: Mutex<State>,
    /// The runtime whose driver its socket is registered with: only its calls use it.
    pub(super) runtime: tokio::runtime::Id,
    /// The database the handshake selected.
    pub(super) db: i64,
    response_timeout: Duration,
}

#[derive(Debug)]
struct State {
    /// Why the connection failed, once it has: every call on it fails with this.
    broken: Option<RedisError>,
    /// Commands queued and not yet taken by a writer, in order.
    queued: Vec<u8>,
    /// The writing half, when no call is writing.
    writer: Option<WriteSide>,
    /// The reading half, when no call is reading.
    reader: Option<ReadSide>,
    /// The calls whose replies have not all arrived, in the order of their commands.
    waiting: VecDeque<Arc<Mutex<Slot>>>,
    /// The call reading, while it waits for bytes: woken when a command is left unsent with no
    /// call waiting to send it (a writer was dropped), which it then sends itself, for its own
    /// reply may be among those unsent.
    reader_waker: Option<Waker>,
}

#[derive(Debug)]
struct WriteSide {
    half: OwnedWriteHalf,
    /// Bytes taken from `queued`; what a dropped writer left unsent goes out before `queued`.
    sending: Vec<u8>,
    sent: usize,
}

impl WriteSide {
    fn has_unsent(&self) -> bool {
        self.sent < self.sending.len()
    }
}

#[derive(Debug)]
struct ReadSide {
    half: OwnedReadHalf,
    /// Bytes received and not yet parsed into replies.
    buffer: Vec<u8>,
}

/// One call's replies, filled in by whichever call reads them.
#[derive(Debug)]
struct Slot {
    wanted: usize,
    replies: Vec<Value>,
    /// Set while the call waits, so that the call that fills the slot or frees a part of the
    /// work can wake it.
    waker: Option<Waker>,
}

impl Slot {
    fn is_full(&self) -> bool {
        self.replies.len() == self.wanted
    }
}

/// What a call does next.
enum Step {
    Finished(RedisResult<Vec<Value>>),
    /// Write, knowing whether other calls wait (then let them queue first).
    Write(WriteSide, bool),
    Read(ReadSide),
}

impl SharedConnection {
    /// A shared connection over `stream`, opened (and through its handshake) on `runtime`.
    pub(super) fn new(
        stream: TcpStream,
        runtime: tokio::runtime::Id,
        db: i64,
        response_timeout: Duration,
    ) -> Self {
        let (read, write) = stream.into_split();
        SharedConnection {
            state: Mutex::new(State {
                broken: None,
                queued: Vec::new(),
                writer: Some(WriteSide {
                    half: write,
                    sending: Vec::new(),
                    sent: 0,
                }),
                reader: Some(ReadSide {
                    half: read,
                    buffer: Vec::new(),
                }),
                waiting: VecDeque::new(),
                reader_waker: None,
            }),
            runtime,
            db,
            response_timeout,
        }
    }

    /// Whether calls may use it: it has not failed, and, when no call is using it, the server
    /// has not closed it (tokio answers that from its cached readiness, without a system call).
    pub(super) fn is_usable(&self) -> bool {
        let mut state = self.lock();
        if state.broken.is_some() {
            return false;
        }
        if !state.waiting.is_empty() {
            return true;
        }
        let Some(reader) = state.reader.as_ref() else {
            return true;
        };
        let mut probe = [0u8; 1];
        let alive = matches!(reader.half.try_read(&mut probe),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        if !alive {
            let closed = io::Error::new(io::ErrorKind::ConnectionReset, "closed by the server");
            Self::fail(&mut state, closed.into());
        }
        alive
    }

    /// Whether no call is in flight on it.
    pub(super) fn is_idle(&self) -> bool {
        self.lock().waiting.is_empty()
    }

    /// Queues what `pack` writes, which asks for `replies` replies, and returns them once they
    /// have all arrived, within the response timeout (after which the connection is closed: its
    /// server is not answering).
    pub(super) async fn request(
        &self,
        pack: impl FnOnce(&mut Vec<u8>),
        replies: usize,
    ) -> RedisResult<Vec<Value>> {
        let slot = Arc::new(Mutex::new(Slot {
            wanted: replies,
            replies: Vec::with_capacity(replies),
            waker: None,
        }));
        {
            let mut state = self.lock();
            if let Some(broken) = &state.broken {
                return Err(broken.clone());
            }
            pack(&mut state.queued);
            state.waiting.push_back(slot.clone());
        }
        let mut call = Call {
            connection: self,
            slot: &slot,
            finished: false,
        };
        let timeout = self.response_timeout;
        match tokio::time::timeout(timeout, call.run()).await {
            Ok(result) => result,
            Err(_) => {
                let error = timed_out("a reply", timeout);
                Self::fail(&mut self.lock(), error.clone());
                Err(error)
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change to the state is made whole under the lock: a panic elsewhere cannot
        // leave it half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the connection failed: its halves are closed when the calls holding them let go,
    /// and every waiting call is woken to return the error.
    fn fail(state: &mut State, error: RedisError) {
        if state.broken.is_none() {
            state.broken = Some(error);
        }
        state.writer = None;
        state.reader = None;
        state.queued = Vec::new();
        if let Some(waker) = state.reader_waker.take() {
            waker.wake();
        }
        for slot in state.waiting.drain(..) {
            if let Some(waker) = lock_slot(&slot).waker.take() {
                waker.wake();
            }
        }
    }

    /// Gives back a half a call held when it stopped part-way (unless the connection failed
    /// meanwhile), waking a call for any work that leaves undone.
    fn give_back(&self, give: impl FnOnce(&mut State)) {
        let mut state = self.lock();
        if state.broken.is_some() {
            return;
        }
        give(&mut state);
        if Self::has_free_work(&state) {
            Self::wake_one(&mut state);
        }
    }

    /// Wakes one call to take a part of the work that has been freed: a waiting call, or else
    /// the call reading, which may be waiting for the reply to a command no one else would send.
    fn wake_one(state: &mut State) {
        for slot in &state.waiting {
            if let Some(waker) = lock_slot(slot).waker.take() {
                waker.wake();
                return;
            }
        }
        if let Some(waker) = state.reader_waker.take() {
            waker.wake();
        }
    }

    /// Whether commands wait to be sent.
    fn has_unsent(state: &State) -> bool {
        !state.queued.is_empty() || state.writer.as_ref().is_some_and(WriteSide::has_unsent)
    }

    /// Whether a freed part has work that no call is doing.
    fn has_free_work(state: &State) -> bool {
        let write = state.writer.is_some() && Self::has_unsent(state);
        let read = state.reader.is_some() && !state.waiting.is_empty();
        write || read
    }
}

/// One call on the connection; dropped before its replies arrive, it stops waiting without
/// taking any work with it.
struct Call<'a> {
    connection: &'a SharedConnection,
    slot: &'a Arc<Mutex<Slot>>,
    finished: bool,
}

impl Call<'_> {
    async fn run(&mut self) -> RedisResult<Vec<Value>> {
        let mut batched = false;
        loop {
            match self.next_step().await {
                Step::Finished(result) => {
                    self.finished = true;
                    return result;
                }
                Step::Write(side, others_wait) => {
                    let mut writing = Writing {
                        connection: self.connection,
                        side: Some(side),
                    };
                    // Others queue their commands while this call lets them run once; its write
                    // then carries them too. With 64 callers that halved both Redis's and the
                    // client's CPU per command (bench/README.md). A call alone does not wait.
                    if !batched && others_wait {
                        batched = true;
                        tokio::task::yield_now().await;
                    }
                    writing.write().await;
                }
                Step::Read(side) => {
                    let mut reading = Reading {
                        connection: self.connection,
                        side: Some(side),
                    };
                    reading.read(self.slot).await;
                }
            }
        }
    }

    /// Waits until the call's replies are in, the connection failed, or a part of the work is
    /// free for it.
    async fn next_step(&self) -> Step {
        poll_fn(|cx| {
            let mut state = self.connection.lock();
            let mut slot = lock_slot(self.slot);
            if slot.is_full() {
                return Poll::Ready(Step::Finished(Ok(std::mem::take(&mut slot.replies))));
            }
            if let Some(broken) = &state.broken {
                return Poll::Ready(Step::Finished(Err(broken.clone())));
            }
            if SharedConnection::has_unsent(&state)
                && let Some(side) = state.writer.take()
            {
                slot.waker = None;
                return Poll::Ready(Step::Write(side, state.waiting.len() > 1));
            }
            if let Some(side) = state.reader.take() {
                slot.waker = None;
                return Poll::Ready(Step::Read(side));
            }
            slot.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut state = self.connection.lock();
        lock_slot(self.slot).waker = None;
        // It may have been woken to take a part of the work, and will not now.
        if state.broken.is_none() && SharedConnection::has_free_work(&state) {
            SharedConnection::wake_one(&mut state);
        }
    }
}

/// The writing half, held by the call writing; given back when it is dropped.
struct Writing<'a> {
    connection: &'a SharedConnection,
    side: Option<WriteSide>,
}

impl Writing<'_> {
    /// Writes until nothing is queued, then gives the half back (or fails the connection).
    async fn write(&mut self) {
        loop {
            let Some(side) = self.side.as_mut() else {
                return;
            };
            if !side.has_unsent() {
                let mut state = self.connection.lock();
                if state.broken.is_some() {
                    self.side = None;
                    return;
                }
                side.sending.clear();
                if state.queued.is_empty() {
                    if side.sending.capacity() > KEPT_BUFFER {
                        side.sending = Vec::new();
                    }
                    // Given back under the lock that saw nothing queued: a command queued after
                    // it finds the half free and is sent by its own call.
                    state.writer = self.side.take();
                    return;
                }
                std::mem::swap(&mut side.sending, &mut state.queued);
                side.sent = 0;
            }
            // One system call at a time: dropped between them, nothing is half-sent.
            match side.half.write(&side.sending[side.sent..]).await {
                Ok(0) => return self.fail(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(written) => side.sent += written,
                Err(error) => return self.fail(error.into()),
            }
        }
    }

    fn fail(&mut self, error: RedisError) {
        self.side = None;
        SharedConnection::fail(&mut self.connection.lock(), error);
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        if let Some(side) = self.side.take() {
            self.connection.give_back(|state| state.writer = Some(side));
        }
    }
}

/// The reading half, held by the call reading; given back when it is dropped.
struct Reading<'a> {
    connection: &'a SharedConnection,
    side: Option<ReadSide>,
}

impl Reading<'_> {
    /// Reads and hands out replies until `own` has all of its own, then gives the half back
    /// (or fails the connection).
    async fn read(&mut self, own: &Arc<Mutex<Slot>>) {
        loop {
            let Some(side) = self.side.as_mut() else {
                return;
            };
            let mut replies = Vec::new();
            let mut parsed = 0;
            loop {
                match next_reply(&side.buffer[parsed..]) {
                    Ok(Some((value, used))) => {
                        replies.push(value);
                        parsed += used;
                    }
                    Ok(None) => break,
                    Err(error) => return self.fail(error),
                }
            }
            side.buffer.drain(..parsed);
            if !replies.is_empty() && self.hand_out(replies, own) {
                return; // given back by `drop`
            }
            let Some(side) = self.side.as_mut() else {
                return;
            };
            if side.buffer.len() >= MAX_REPLY_BYTES {
                return self.fail(protocol_error(format!(
                    "a reply is over {MAX_REPLY_BYTES} bytes"
                )));
            }
            if side.buffer.is_empty() && side.buffer.capacity() > KEPT_BUFFER {
                side.buffer = Vec::new();
            }
            if side.buffer.capacity() - side.buffer.len() < 4096 {
                side.buffer.reserve(16 * 1024);
            }
            // One system call: dropped while it waits, nothing has been read. While it waits,
            // a command left unsent with no one to send it is sent from here.
            let connection = self.connection;
            let mut receive = std::pin::pin!(side.half.read_buf(&mut side.buffer));
            let received = poll_fn(|cx| {
                {
                    let mut state = connection.lock();
                    if SharedConnection::has_unsent(&state)
                        && let Some(writer) = state.writer.take()
                    {
                        state.reader_waker = None;
                        return Poll::Ready(Err(writer));
                    }
                    state.reader_waker = Some(cx.waker().clone());
                }
                receive.as_mut().poll(cx).map(Ok)
            })
            .await;
            match received {
                Ok(Ok(0)) => {
                    return self.fail(io::Error::from(io::ErrorKind::UnexpectedEof).into());
                }
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return self.fail(error.into()),
                Err(writer) => {
                    Writing {
                        connection,
                        side: Some(writer),
                    }
                    .write()
                    .await;
                }
            }
        }
    }

    /// Gives `replies` to the calls waiting for them, in order; whether `own` is now full.
    fn hand_out(&mut self, replies: Vec<Value>, own: &Arc<Mutex<Slot>>) -> bool {
        let mut state = self.connection.lock();
        for reply in replies {
            let Some(front) = state.waiting.front() else {
                drop(state);
                self.fail(protocol_error(
                    "the server sent a reply nothing asked for".into(),
                ));
                return false;
            };
            let mut slot = lock_slot(front);
            slot.replies.push(reply);
            if slot.is_full() {
                if let Some(waker) = slot.waker.take() {
                    waker.wake();
                }
                drop(slot);
                state.waiting.pop_front();
            }
        }
        state.reader_waker = None;
        if !lock_slot(own).is_full() {
            return false;
        }
        // Given back under the lock that handed out the replies; another call reads the rest.
        state.reader = self.side.take();
        if !state.waiting.is_empty() {
            SharedConnection::wake_one(&mut state);
        }
        true
    }

    fn fail(&mut self, error: RedisError) {
        self.side = None;
        SharedConnection::fail(&mut self.connection.lock(), error);
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        if let Some(side) = self.side.take() {
            self.connection.give_back(|state| {
                state.reader = Some(side);
                state.reader_waker = None;
            });
        }
    }
}

fn lock_slot(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::direct::{Lane, Route, ServerConnections};
    use redis::IntoConnectionInfo;
    use session_conformance::services;

    /// Connections to `url` where every call goes through the shared connection.
    fn shared_only(url: &str, response_timeout: Duration) -> ServerConnections {
        let info = url.into_connection_info().unwrap();
        ServerConnections::new(&info, 0, Duration::from_secs(2), response_timeout).unwrap()
    }

    async fn shared(pool: &ServerConnections) -> Arc<SharedConnection> {
        let mut route: Route<'_> = pool.route().await;
        match route.lane() {
            Some(Lane::Shared(connection)) => connection.clone(),
            _ => panic!("the call did not get the shared connection"),
        }
    }

    async fn query<T: redis::FromRedisValue>(
        connection: &Arc<SharedConnection>,
        cmd: &redis::Cmd,
    ) -> RedisResult<T> {
        let mut lane = Lane::Shared(connection.clone());
        cmd.query_async(&mut lane).await
    }

    async fn client_id(connection: &Arc<SharedConnection>) -> i64 {
        query(connection, redis::cmd("CLIENT").arg("ID"))
            .await
            .unwrap()
    }

    fn echo(text: &str) -> redis::Cmd {
        let mut cmd = redis::cmd("ECHO");
        cmd.arg(text);
        cmd
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_calls_at_once_share_one_connection_and_each_gets_its_own_reply() {
        let test = "many_calls_at_once_share_one_connection_and_each_gets_its_own_reply";
        let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
            return;
        };
        let pool = Arc::new(shared_only(&url, Duration::from_secs(5)));
        let prefix = services::unique_name("djsession_shared");
        let connection = shared(&pool).await;
        let id = client_id(&connection).await;
        let tasks: Vec<_> = (0..64)
            .map(|task| {
                let (pool, prefix) = (pool.clone(), prefix.clone());
                tokio::spawn(async move {
                    for n in 0..60 {
                        // Values from a few bytes to 200 KB, so replies arrive in pieces.
                        let size = [3, 700, 20_000, 200_000][(task + n) % 4];
                        let value = format!("{task}:{n}:").repeat(size / 8 + 1);
                        let key = format!("{prefix}:{task}");
                        let connection = shared(&pool).await;
                        let () = query(&connection, redis::cmd("SET").arg(&key).arg(&value))
                            .await
                            .unwrap();
                        let read: String = query(&connection, redis::cmd("GET").arg(&key))
                            .await
                            .unwrap();
                        assert!(read == value, "task {task} read another call's reply");
                        // A transaction: its replies come after MULTI's and each QUEUED.
                        let mut pipe = redis::pipe();
                        pipe.atomic()
                            .append(&key, "!")
                            .ignore()
                            .strlen(&key)
                            .del(&key)
                            .ignore();
                        let (length,): (usize,) = pipe
                            .query_async(&mut Lane::Shared(connection.clone()))
                            .await
                            .unwrap();
                        assert_eq!(length, value.len() + 1);
                        let deleted: i64 = query(&connection, redis::cmd("EXISTS").arg(&key))
                            .await
                            .unwrap();
                        assert_eq!(deleted, 0);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            client_id(&shared(&pool).await).await,
            id,
            "one connection served them all"
        );
        assert_eq!(pool.lock_shared().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_dropped_at_any_point_leave_the_connection_whole() {
        let test = "calls_dropped_at_any_point_leave_the_connection_whole";
        let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
            return;
        };
        let pool = Arc::new(shared_only(&url, Duration::from_secs(5)));
        let id = client_id(&shared(&pool).await).await;
        let dropped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..32u64)
            .map(|task| {
                let (pool, dropped) = (pool.clone(), dropped.clone());
                tokio::spawn(async move {
                    let mut seed = task.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                    for n in 0..300 {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Long enough that replies come in pieces and writes may be partial.
                        let text = format!("{task}/{n}/").repeat(1 + (seed % 3000) as usize);
                        let connection = shared(&pool).await;
                        if seed % 3 == 0 {
                            // Dropped at a random point: before its write, after it, mid-read.
                            let command = echo(&text);
                            let mut call = Box::pin(query::<String>(&connection, &command));
                            let mut reply = None;
                            for _ in 0..=(seed >> 8) % 6 {
                                reply = poll_once(&mut call).await;
                                if reply.is_some() {
                                    break;
                                }
                                tokio::task::yield_now().await;
                            }
                            match reply {
                                Some(reply) => assert_eq!(reply.unwrap(), text),
                                None => {
                                    dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                            }
                        } else {
                            let reply: String = query(&connection, &echo(&text)).await.unwrap();
                            assert!(reply == text, "task {task} got another call's reply");
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert!(
            dropped.load(std::sync::atomic::Ordering::Relaxed) > 100,
            "calls were dropped"
        );
        let connection = shared(&pool).await;
        assert_eq!(
            client_id(&connection).await,
            id,
            "the connection was never replaced"
        );
        let reply: String = query(&connection, &echo("after")).await.unwrap();
        assert_eq!(reply, "after");
    }

    /// Polls `future` once.
    async fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
        poll_fn(|cx| {
            Poll::Ready(match std::pin::Pin::new(&mut *future).poll(cx) {
                Poll::Ready(output) => Some(output),
                Poll::Pending => None,
            })
        })
        .await
    }

    #[tokio::test]
    async fn a_dropped_call_s_command_is_sent_with_the_next_and_its_reply_discarded() {
        let test = "a_dropped_call_s_command_is_sent_with_the_next_and_its_reply_discarded";
        let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
            return;
        };
        let pool = shared_only(&url, Duration::from_secs(5));
        let connection = shared(&pool).await;
        // The first call sends its command and waits for its reply, reading.
        let (first_cmd, second_cmd) = (echo("first"), echo("second"));
        let mut first = Box::pin(query::<String>(&connection, &first_cmd));
        assert!(poll_once(&mut first).await.is_none());
        assert!(
            connection.lock().reader.is_none(),
            "the first call is reading"
        );
        // The second queues its command and takes the writing half, then lets others queue
        // theirs before it writes (two calls are waiting), and is dropped right there.
        let mut second = Box::pin(query::<String>(&connection, &second_cmd));
        assert!(poll_once(&mut second).await.is_none());
        {
            let state = connection.lock();
            assert!(state.writer.is_none() && !state.queued.is_empty());
        }
        drop(second);
        {
            let state = connection.lock();
            assert!(
                state.writer.is_some() && !state.queued.is_empty(),
                "left unsent"
            );
        }
        // Nobody else waits: the reading call sends it, reads its own reply and the second's.
        assert_eq!(first.await.unwrap(), "first");
        let reply: String = query(&connection, &echo("third")).await.unwrap();
        assert_eq!(
            reply, "third",
            "the dropped call's reply was read and discarded"
        );
        assert!(connection.lock().waiting.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_the_server_closes_fails_its_calls_and_is_replaced() {
        let test = "a_connection_the_server_closes_fails_its_calls_and_is_replaced";
        let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
            return;
        };
        let pool = Arc::new(shared_only(&url, Duration::from_secs(5)));
        let killer = redis::Client::open(url.as_str()).unwrap();
        let killer = killer.get_multiplexed_async_connection().await.unwrap();
        let kill = |id: i64| {
            let mut killer = killer.clone();
            async move {
                let killed: i64 = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("ID")
                    .arg(id)
                    .query_async(&mut killer)
                    .await
                    .unwrap();
                assert_eq!(killed, 1);
            }
        };
        // Closed while idle: noticed before the next call, which gets a new connection.
        let idle = client_id(&shared(&pool).await).await;
        kill(idle).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let replacement = shared(&pool).await;
        let replaced = client_id(&replacement).await;
        assert_ne!(replaced, idle);
        // Closed while calls wait on it (BLPOP holds the reply back): they fail, none hangs.
        let key = services::unique_name("djsession_shared_blpop");
        let waiting: Vec<_> = (0..8)
            .map(|_| {
                let (connection, key) = (replacement.clone(), key.clone());
                tokio::spawn(async move {
                    query::<Option<(String, String)>>(
                        &connection,
                        redis::cmd("BLPOP").arg(&key).arg(30),
                    )
                    .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        kill(replaced).await;
        for call in waiting {
            let result = tokio::time::timeout(Duration::from_secs(5), call).await;
            assert!(
                result.unwrap().unwrap().is_err(),
                "a call on a closed connection fails"
            );
        }
        let fresh = shared(&pool).await;
        assert_ne!(client_id(&fresh).await, replaced);
    }

    #[tokio::test]
    async fn a_reply_later_than_the_response_timeout_closes_the_connection() {
        let test = "a_reply_later_than_the_response_timeout_closes_the_connection";
        let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
            return;
        };
        let pool = shared_only(&url, Duration::from_millis(300));
        let connection = shared(&pool).await;
        let before = client_id(&connection).await;
        let key = services::unique_name("djsession_shared_blpop");
        let started = std::time::Instant::now();
        let blocked =
            query::<Option<(String, String)>>(&connection, redis::cmd("BLPOP").arg(&key).arg(5))
                .await;
        assert!(blocked.unwrap_err().is_timeout());
        assert!(started.elapsed() < Duration::from_secs(2));
        // Its late reply would answer the next command: the connection is not used again.
        assert!(query::<String>(&connection, &echo("late")).await.is_err());
        let after = client_id(&shared(&pool).await).await;
        assert_ne!(after, before);
    }

    #[tokio::test]
    async fn server_errors_keep_their_kind_and_the_connection() {
        let test = "server_errors_keep_their_kind_and_the_connection";
        let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
            return;
        };
        let pool = shared_only(&url, Duration::from_secs(5));
        let connection = shared(&pool).await;
        let id = client_id(&connection).await;
        let missing = query::<()>(
            &connection,
            redis::cmd("EVALSHA").arg("0".repeat(40)).arg(0),
        )
        .await;
        assert_eq!(
            missing.unwrap_err().kind(),
            redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
        );
        assert_eq!(client_id(&connection).await, id);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_reading_sends_a_command_a_dropped_call_left_unsent() {
        // A stand-in server, so that nothing is answered until the test says so.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let runtime = tokio::runtime::Handle::current().id();
        let connection = Arc::new(SharedConnection::new(
            stream,
            runtime,
            0,
            Duration::from_secs(10),
        ));
        let commands = [echo("first"), echo("second"), echo("third")];
        // The first call sends its command and reads, waiting for its reply.
        let mut first = Box::pin(query::<String>(&connection, &commands[0]));
        assert!(poll_once(&mut first).await.is_none());
        assert!(connection.lock().reader.is_none());
        // The second takes the writing half and lets others queue before it writes.
        let mut second = Box::pin(query::<String>(&connection, &commands[1]));
        assert!(poll_once(&mut second).await.is_none());
        assert!(connection.lock().writer.is_none());
        // The third queues its command and waits; once the first is dropped, it reads.
        let third = {
            let (connection, command) = (connection.clone(), commands[2].clone());
            tokio::spawn(async move { query::<String>(&connection, &command).await })
        };
        while connection.lock().waiting.len() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(first);
        while connection.lock().reader.is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The second is dropped before writing: the third's command is among those unsent,
        // and no call but the third, reading, is there to send them.
        drop(second);
        let expected: Vec<u8> = commands
            .iter()
            .flat_map(|c| c.get_packed_command())
            .collect();
        let mut received = Vec::new();
        let all_sent = tokio::time::timeout(Duration::from_secs(2), async {
            while received.len() < expected.len() {
                let mut chunk = [0u8; 256];
                let read = server.read(&mut chunk).await.unwrap();
                received.extend_from_slice(&chunk[..read]);
            }
        })
        .await;
        assert!(
            all_sent.is_ok(),
            "received only {:?}",
            String::from_utf8_lossy(&received)
        );
        assert_eq!(received, expected);
        server
            .write_all(b"$5\r\nfirst\r\n$6\r\nsecond\r\n$5\r\nthird\r\n")
            .await
            .unwrap();
        assert_eq!(third.await.unwrap().unwrap(), "third");
    }

    #[test]
    fn runtimes_that_come_and_go_cannot_pile_up_connections() {
        let test = "runtimes_that_come_and_go_cannot_pile_up_connections";
        let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
            return;
        };
        let pool = shared_only(&url, Duration::from_secs(5));
        let runtimes = crate::redis::direct::MAX_SHARED + 5;
        let mut ids = std::collections::HashSet::new();
        for _ in 0..runtimes {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            ids.insert(runtime.block_on(async { client_id(&shared(&pool).await).await }));
        }
        assert_eq!(
            ids.len(),
            runtimes,
            "each runtime had a connection of its own"
        );
        assert_eq!(pool.lock_shared().len(), crate::redis::direct::MAX_SHARED);
    }
}
