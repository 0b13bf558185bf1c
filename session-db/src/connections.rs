//! The store's own short hold on the pool's connections, so that one statement after another
//! does not pay sqlx's release ping.
//!
//! sqlx tests every connection given back to its pool with a ping (a `Sync` and its
//! `ReadyForQuery` on PostgreSQL, `COM_PING` on MySQL), in a task it spawns, whatever the
//! connection just did. A session load or save is one statement, so each one cost a second round
//! trip to the server and a task: at 16 concurrent round trips on PostgreSQL the bare statements
//! ran 40 % faster without it (bench/README.md). The ping is there for connections left in an
//! unknown state (a statement cancelled half-way, an error); a statement that ran to its end
//! leaves its connection ready for the next one, and sqlx itself reads any rest of the previous
//! result before running the next statement.
//!
//! So a connection whose statement completed is kept here, for the store's next statement, instead
//! of going back to sqlx. The hold is short and bounded, so the pool stays the pool:
//! - a connection goes back to sqlx (with its ping, lifetime and idle checks) at the latest
//!   [`KEEP_CONNECTION_FOR`] after the store took it out, and idle ones are swept back within
//!   about twice that;
//! - at most `max_connections - 1` are kept idle, so code sharing the pool never waits on
//!   connections the store is merely holding, and a one-connection pool (in-memory SQLite) keeps
//!   none;
//! - a statement that failed, or was cancelled, drops its connection back to sqlx as before;
//! - when the store's statements are waiting for a connection (more of them than the pool has
//!   connections), a completed statement hands its connection to the one that has waited
//!   longest, so they are served in order rather than by whoever asks next;
//! - once the pool is closed, nothing is kept and `Pool::close` completes within the sweep.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};
use tokio::sync::oneshot;

/// How long the store may keep a connection it took from the pool before giving it back.
///
/// Short enough that code sharing the pool, and sqlx's own checks, see every connection several
/// times a second; long enough that a busy store gives one back (and pays its ping) only once
/// per this many statements on it.
pub const KEEP_CONNECTION_FOR: Duration = Duration::from_millis(100);

/// A pool, and the connections the store holds on to between statements.
/// Public only to appear in the sealed backend trait; not re-exported.
pub struct Connections<DB: Database> {
    kept: Arc<Kept<DB>>,
}

impl<DB: Database> Clone for Connections<DB> {
    fn clone(&self) -> Self {
        Connections {
            kept: Arc::clone(&self.kept),
        }
    }
}

struct Kept<DB: Database> {
    pool: Pool<DB>,
    /// The pool's `max_connections`.
    max: u32,
    /// `max_connections - 1` (see the module docs).
    limit: usize,
    state: Mutex<KeptState<DB>>,
}

struct KeptState<DB: Database> {
    /// The most recently kept last: the next statement takes it.
    held: Vec<Held<DB>>,
    /// The store's statements waiting for a connection, longest first; one that got a connection
    /// from the pool instead leaves its sender closed here.
    waiting: VecDeque<oneshot::Sender<Held<DB>>>,
    /// Whether a sweeper task is running; set and cleared under the lock.
    sweeping: bool,
}

/// A connection taken from the pool, and when.
struct Held<DB: Database> {
    connection: PoolConnection<DB>,
    taken_at: Instant,
}

impl<DB: Database> Held<DB> {
    fn is_due_back(&self) -> bool {
        self.taken_at.elapsed() >= KEEP_CONNECTION_FOR
    }
}

/// A connection for one statement: [`keep`](Self::keep) it when the statement completed, or drop
/// it (on an error, or when the statement's future is dropped) to give it back to sqlx, which
/// pings it.
pub struct Lease<'a, DB: Database> {
    held: Held<DB>,
    kept: &'a Arc<Kept<DB>>,
}

impl<DB: Database> Connections<DB> {
    pub(crate) fn new(pool: Pool<DB>) -> Self {
        let max = pool.options().get_max_connections();
        Connections {
            kept: Arc::new(Kept {
                pool,
                max,
                limit: (max as usize).saturating_sub(1),
                state: Mutex::new(KeptState {
                    held: Vec::new(),
                    waiting: VecDeque::new(),
                    sweeping: false,
                }),
            }),
        }
    }

    pub(crate) fn pool(&self) -> &Pool<DB> {
        &self.kept.pool
    }

    /// A kept connection, or the first one either handed over by a completed statement or
    /// given by the pool.
    pub(crate) async fn acquire(&self) -> Result<Lease<'_, DB>, sqlx::Error> {
        // Boxed: sqlx's acquire future is about 2.5 KB, and held inline it would make every
        // statement's future too large for the allocator's thread cache (see
        // tests/future_sizes.rs). Only a statement that finds no kept connection pays the box.
        let held = match self.kept.take_or_wait() {
            Ok(Some(held)) => held,
            Ok(None) => Held {
                connection: Box::pin(self.pool().acquire()).await?,
                taken_at: Instant::now(),
            },
            Err(handed) => Box::pin(self.handed_or_from_pool(handed)).await?,
        };
        Ok(Lease {
            held,
            kept: &self.kept,
        })
    }

    async fn handed_or_from_pool(
        &self,
        handed: oneshot::Receiver<Held<DB>>,
    ) -> Result<Held<DB>, sqlx::Error> {
        let mut handed = Some(handed);
        let mut from_pool = std::pin::pin!(self.pool().acquire());
        std::future::poll_fn(|cx| {
            if let Some(receiver) = handed.as_mut() {
                match Pin::new(receiver).poll(cx) {
                    Poll::Ready(Ok(held)) => return Poll::Ready(Ok(held)),
                    // The store is being dropped: only the pool is left.
                    Poll::Ready(Err(_)) => handed = None,
                    Poll::Pending => {}
                }
            }
            from_pool.as_mut().poll(cx).map_ok(|connection| Held {
                connection,
                taken_at: Instant::now(),
            })
        })
        .await
    }

    /// How many connections the store holds right now (for tests).
    #[cfg(test)]
    fn kept_count(&self) -> usize {
        self.kept.lock().held.len()
    }
}

impl<DB: Database> Lease<'_, DB> {
    /// The connection, to run a statement on.
    pub(crate) fn connection(&mut self) -> &mut DB::Connection {
        &mut self.held.connection
    }

    /// Keeps the connection for the store's next statement: its statement completed.
    pub(crate) fn keep(self) {
        Kept::keep(self.kept, self.held);
    }
}

impl<DB: Database> Kept<DB> {
    fn lock(&self) -> MutexGuard<'_, KeptState<DB>> {
        // Nothing panics under this lock; a poisoned one still holds a consistent list.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently kept connection that is not due back; or, when the pool has none to
    /// give either (all its connections are out), a place in the queue of statements waiting for
    /// one, taken under the same lock, so no hand-over is missed.
    ///
    /// A statement that can get a connection from the pool does not queue: it would wait on both,
    /// and taking a handed-over connection drops its call to the pool, which may be opening a
    /// new connection (under load, dropping those half-opened connections again and again took
    /// PostgreSQL round trips from thousands per second to hundreds).
    fn take_or_wait(&self) -> Result<Option<Held<DB>>, oneshot::Receiver<Held<DB>>> {
        let closed = self.pool.is_closed();
        let mut due = Vec::new();
        let mut state = self.lock();
        let fresh = loop {
            match state.held.pop() {
                Some(held) if closed || held.is_due_back() => due.push(held),
                other => break other,
            }
        };
        let taken = if fresh.is_some() || !self.pool_is_out() {
            Ok(fresh)
        } else {
            // Those at the front that were served by the pool meanwhile are done waiting.
            while state
                .waiting
                .front()
                .is_some_and(oneshot::Sender::is_closed)
            {
                state.waiting.pop_front();
            }
            let (sender, receiver) = oneshot::channel();
            state.waiting.push_back(sender);
            Err(receiver)
        };
        drop(state);
        due.into_iter().for_each(give_back);
        taken
    }

    /// Whether the pool has no connection to give: all of them are out.
    fn pool_is_out(&self) -> bool {
        self.pool.size() >= self.max && self.pool.num_idle() == 0
    }

    fn keep(kept: &Arc<Kept<DB>>, mut held: Held<DB>) {
        if held.is_due_back() || kept.pool.is_closed() {
            give_back(held);
            return;
        }
        // The sweeper needs a runtime to run on; without one, the connection goes back to sqlx.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            give_back(held);
            return;
        };
        let mut state = kept.lock();
        while let Some(waiter) = state.waiting.pop_front() {
            match waiter.send(held) {
                Ok(()) => return,
                // That one was served by the pool, or gave up.
                Err(back) => held = back,
            }
        }
        if state.held.len() >= kept.limit {
            drop(state);
            give_back(held);
            return;
        }
        state.held.push(held);
        if !state.sweeping {
            state.sweeping = true;
            runtime.spawn(sweep(Arc::downgrade(kept)));
        }
    }
}

/// Gives connections due back (or all, once the pool is closed) back to sqlx, every
/// [`KEEP_CONNECTION_FOR`], until none is kept or the store is gone.
async fn sweep<DB: Database>(kept: Weak<Kept<DB>>) {
    loop {
        tokio::time::sleep(KEEP_CONNECTION_FOR).await;
        let Some(kept) = kept.upgrade() else {
            return;
        };
        let closed = kept.pool.is_closed();
        let mut state = kept.lock();
        let due: Vec<Held<DB>> = state
            .held
            .extract_if(.., |held| closed || held.is_due_back())
            .collect();
        let done = state.held.is_empty();
        if done {
            state.sweeping = false;
        }
        drop(state);
        drop(due);
        if done {
            return;
        }
    }
}

impl<DB: Database> Drop for Kept<DB> {
    fn drop(&mut self) {
        std::mem::take(&mut self.lock().held)
            .into_iter()
            .for_each(give_back);
    }
}

/// Gives a connection back to sqlx's pool.
fn give_back<DB: Database>(held: Held<DB>) {
    if tokio::runtime::Handle::try_current().is_ok() {
        drop(held);
    } else {
        // sqlx gives a dropped connection back from a task, and spawning one outside a runtime
        // panics. A store dropped after its runtime ended (a sync `main`) has no use for the
        // pool's connections any more: close the socket instead.
        drop(held.connection.leak());
    }
}

#[cfg(all(test, feature = "sqlite"))]
#[allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use sqlx::Sqlite;
    use sqlx::sqlite::SqlitePoolOptions;

    use super::*;

    /// A pool of `max` connections to a fresh SQLite file, counting every connection sqlx gets
    /// back (its `after_release` runs just before its release ping).
    async fn counted_pool(max: u32) -> (Pool<Sqlite>, Arc<AtomicUsize>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let released = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&released);
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("db.sqlite3").display()
        );
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .after_release(move |_, _| {
                count.fetch_add(1, Ordering::SeqCst);
                Box::pin(async { Ok(true) })
            })
            .connect(&url)
            .await
            .unwrap();
        (pool, released, dir)
    }

    async fn statement(connections: &Connections<Sqlite>) {
        let mut lease = connections.acquire().await.unwrap();
        sqlx::query("SELECT 1")
            .execute(lease.connection())
            .await
            .unwrap();
        lease.keep();
    }

    #[tokio::test]
    async fn statements_in_a_row_reuse_one_connection_without_giving_it_back() {
        let (pool, released, _dir) = counted_pool(4).await;
        let connections = Connections::new(pool.clone());
        let started = Instant::now();
        let mut statements = 0;
        while started.elapsed() < KEEP_CONNECTION_FOR / 2 && statements < 50 {
            statement(&connections).await;
            statements += 1;
        }
        assert!(statements > 1);
        assert_eq!(released.load(Ordering::SeqCst), 0);
        assert_eq!(connections.kept_count(), 1);
        assert_eq!(pool.size(), 1, "one connection served them all");
    }

    #[tokio::test]
    async fn a_kept_connection_goes_back_to_the_pool_when_due() {
        let (pool, released, _dir) = counted_pool(4).await;
        let connections = Connections::new(pool.clone());
        statement(&connections).await;
        assert_eq!(pool.num_idle(), 0, "kept by the store");

        // Due back: the next statement gives it back and takes a connection from the pool.
        tokio::time::sleep(KEEP_CONNECTION_FOR).await;
        statement(&connections).await;
        assert!(released.load(Ordering::SeqCst) >= 1);

        // Idle: the sweeper gives it back without any statement.
        tokio::time::sleep(KEEP_CONNECTION_FOR * 3).await;
        assert_eq!(connections.kept_count(), 0);
        assert_eq!(pool.num_idle(), pool.size() as usize);
    }

    #[tokio::test]
    async fn a_dropped_lease_goes_back_to_the_pool() {
        let (pool, released, _dir) = counted_pool(4).await;
        let connections = Connections::new(pool.clone());
        let mut lease = connections.acquire().await.unwrap();
        let failed = sqlx::query("SELECT * FROM no_such_table")
            .execute(lease.connection())
            .await;
        assert!(failed.is_err());
        drop(lease);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(connections.kept_count(), 0);
        assert_eq!(released.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_store_keeps_at_most_all_but_one_connection() {
        let (pool, _released, _dir) = counted_pool(3).await;
        let connections = Connections::new(pool.clone());
        let leases = [
            connections.acquire().await.unwrap(),
            connections.acquire().await.unwrap(),
            connections.acquire().await.unwrap(),
        ];
        for lease in leases {
            lease.keep();
        }
        assert_eq!(connections.kept_count(), 2);
        // The third went back, so code sharing the pool finds one without waiting.
        let other = tokio::time::timeout(Duration::from_millis(50), pool.acquire()).await;
        assert!(other.is_ok());
    }

    #[tokio::test]
    async fn a_waiting_statement_is_handed_the_next_completed_connection() {
        let (pool, released, _dir) = counted_pool(2).await;
        let connections = Arc::new(Connections::new(pool.clone()));
        let first = connections.acquire().await.unwrap();
        let second = connections.acquire().await.unwrap();
        let waiting = tokio::spawn({
            let connections = Arc::clone(&connections);
            async move { statement(&connections).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the pool is empty");

        first.keep();
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            released.load(Ordering::SeqCst),
            0,
            "handed over, not given back"
        );
        drop(second);
    }

    #[tokio::test]
    async fn waiting_statements_are_served_in_the_order_they_came() {
        let (pool, _released, _dir) = counted_pool(1).await;
        let connections = Arc::new(Connections::new(pool.clone()));
        let only = connections.acquire().await.unwrap();
        let (order_tx, mut order) = tokio::sync::mpsc::unbounded_channel();
        for n in 0..5 {
            let (connections, order_tx) = (Arc::clone(&connections), order_tx.clone());
            tokio::spawn(async move {
                let lease = connections.acquire().await.unwrap();
                order_tx.send(n).unwrap();
                lease.keep();
            });
            // Each is waiting before the next arrives.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        only.keep();
        let mut served = Vec::new();
        for _ in 0..5 {
            served.push(order.recv().await.unwrap());
        }
        assert_eq!(served, [0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_waiting_statement_still_gets_a_connection_the_pool_frees() {
        let (pool, _released, _dir) = counted_pool(1).await;
        let connections = Arc::new(Connections::new(pool.clone()));
        let only = connections.acquire().await.unwrap();
        let waiting = tokio::spawn({
            let connections = Arc::clone(&connections);
            async move { statement(&connections).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Given back to sqlx (a failed statement), not handed over: sqlx serves the waiter.
        drop(only);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_one_connection_pool_keeps_nothing() {
        let (pool, _released, _dir) = counted_pool(1).await;
        let connections = Connections::new(pool.clone());
        statement(&connections).await;
        assert_eq!(connections.kept_count(), 0);
        // Back in the pool for anyone, not held until the sweep.
        let other = tokio::time::timeout(KEEP_CONNECTION_FOR / 2, pool.acquire()).await;
        assert!(other.is_ok());
    }

    #[tokio::test]
    async fn closing_the_pool_does_not_wait_for_kept_connections() {
        let (pool, _released, _dir) = counted_pool(4).await;
        let connections = Connections::new(pool.clone());
        statement(&connections).await;
        statement(&connections).await;
        assert_eq!(connections.kept_count(), 1);
        let closed = tokio::time::timeout(KEEP_CONNECTION_FOR * 5, pool.close()).await;
        assert!(closed.is_ok(), "Pool::close waited on the store");
        assert!(connections.acquire().await.is_err());
    }

    #[test]
    fn a_store_dropped_after_its_runtime_does_not_panic() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (connections, dir) = runtime.block_on(async {
            let (pool, _released, dir) = counted_pool(4).await;
            let connections = Connections::new(pool);
            statement(&connections).await;
            assert_eq!(connections.kept_count(), 1);
            (connections, dir)
        });
        drop(runtime);
        drop(connections);
        drop(dir);
    }
}
