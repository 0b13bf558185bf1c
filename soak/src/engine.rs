//! The soak run: virtual users working their sessions for a fixed time, then every known key
//! loaded by a fresh session and compared with what its users must have left there.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use session_core::{Dict, SessionConfig, SessionKey, SessionStore};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::{Client, CookieChange, Failure, Op, Outcome};
use crate::data::{self, Changes};
use crate::model::{EventId, Expect, Mismatch, SharedHistory, WriteOutcome};
use crate::report::{FinalCheck, OpKind, Report, RunHeader, Stats, Violation};
use crate::rng::Rng;

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Virtual users, each working sessions of its own.
    pub users: usize,
    /// Pairs of tabs, each pair sharing one session cookie.
    pub pairs: usize,
    /// How long the users work.
    pub duration: Duration,
    /// The share of users and pairs (in percent) that go through the middleware over HTTP
    /// requests; the others use `Session` handles directly.
    pub http_percent: u64,
    /// The seed every user's choices derive from.
    pub seed: u64,
    /// Whether store errors are expected (servers are restarted during the run).
    pub errors_expected: bool,
    /// How many live sessions one user keeps at most (several devices).
    pub sessions_per_user: usize,
    /// Each user re-checks all its sessions after this many operations.
    pub check_every: u64,
    /// How long the final check keeps retrying a load that fails with a store error.
    pub recovery: Duration,
    /// Whether to delete the sessions that are still live at the end.
    pub clean_up: bool,
    /// The server restarts completed so far, counted by whoever restarts the server
    /// ([`PrivateServer::restart_until`](crate::PrivateServer::restart_until)).
    pub restarts: RestartCount,
}

/// How many server restarts have completed during a run: the restarter counts them, and the users
/// read the count to know when a write that failed with unknown effect has been settled.
///
/// PostgreSQL makes a commit durable before it makes it visible. Killed in between, it replays the
/// commit on restart, while a server process not yet stopped can still serve the old row to
/// another connection: a read after the failed write can show the old data and a later read the
/// new. So only a load that began after the next restart completed says which one stands.
#[derive(Debug, Clone, Default)]
pub struct RestartCount(Arc<AtomicU32>);

impl RestartCount {
    /// The restarts completed so far.
    pub fn completed(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }

    /// Counts one more completed restart (the server accepts connections again).
    pub fn record(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Default for SoakOptions {
    fn default() -> Self {
        SoakOptions {
            users: 16,
            pairs: 4,
            duration: Duration::from_secs(10),
            http_percent: 50,
            seed: 1,
            errors_expected: false,
            sessions_per_user: 3,
            check_every: 50,
            recovery: Duration::from_secs(30),
            clean_up: true,
            restarts: RestartCount::default(),
        }
    }
}

/// What every participant shares.
struct Ctx {
    stats: Stats,
    clock: AtomicU64,
    deadline: Instant,
    options: SoakOptions,
    fresh: Client,
}

impl Ctx {
    /// A logical time: every event gets a distinct, increasing one.
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    fn running(&self) -> bool {
        Instant::now() < self.deadline
    }

    /// The server restarts completed so far.
    fn restarts(&self) -> u32 {
        self.options.restarts.completed()
    }

    fn violation(&self, (kind, detail): Mismatch, context: String) {
        self.stats.violation(Violation {
            kind,
            context,
            detail,
        });
    }

    fn failure(&self, failure: &Failure, context: impl FnOnce() -> String) {
        match failure {
            Failure::Store(message) => self
                .stats
                .store_error(|| format!("{}: {message}", context())),
            Failure::Deleted => self
                .stats
                .unexpected_error(|| format!("{}: the save was refused as deleted", context())),
            Failure::Other(message) => self
                .stats
                .unexpected_error(|| format!("{}: {message}", context())),
        }
    }
}

/// Loads `key` through a fresh session, as a new request would: `None` when absent.
pub async fn load_fresh(client: &Client, key: &SessionKey) -> Result<Option<Dict>, Failure> {
    let outcome = client.request(Some(key), &Op::Read).await;
    match (outcome.performed.loaded, outcome.performed.error) {
        (Some(found), _) => Ok(found),
        (None, Some(failure)) => Err(failure),
        (None, None) => Err(Failure::Other("the read loaded nothing".to_owned())),
    }
}

/// Runs the soak against `store` and reports.
pub async fn run(
    store: Arc<dyn SessionStore>,
    config: Arc<SessionConfig>,
    description: impl Into<String>,
    options: SoakOptions,
) -> Result<Report, session_middleware::Error> {
    let direct = Client::direct(store.clone(), config.clone());
    let http = Client::http(store, config)?;
    let header = RunHeader {
        store: description.into(),
        users: options.users,
        pairs: options.pairs,
        seed: options.seed,
        errors_expected: options.errors_expected,
    };
    let started = Instant::now();
    let ctx = Arc::new(Ctx {
        stats: Stats::default(),
        clock: AtomicU64::new(1),
        deadline: started + options.duration,
        options: options.clone(),
        fresh: direct.clone(),
    });
    let pick = |rng: &mut Rng| {
        if rng.percent(options.http_percent) {
            http.clone()
        } else {
            direct.clone()
        }
    };

    let mut users = JoinSet::new();
    for index in 0..options.users {
        let mut rng = Rng::derive(options.seed, index as u64);
        let client = pick(&mut rng);
        users.spawn(user(ctx.clone(), index, client, rng));
    }
    let mut pairs = Vec::new();
    let mut tabs = JoinSet::new();
    for index in 0..options.pairs {
        let mut rng = Rng::derive(options.seed, (options.users + index) as u64);
        let marker = format!("p{index}-{:x}", options.seed);
        let pair = Arc::new(Pair {
            history: Mutex::new(SharedHistory::new(marker.clone())),
            marker,
            jar: Mutex::new(None),
        });
        for (tab_index, writer) in ["A", "B"].into_iter().enumerate() {
            let client = pick(&mut rng);
            let tab_rng = Rng::derive(rng.next_u64(), tab_index as u64);
            tabs.spawn(tab(ctx.clone(), pair.clone(), writer, client, tab_rng));
        }
        pairs.push(pair);
    }

    let mut ends = Vec::new();
    while let Some(end) = users.join_next().await {
        match end {
            Ok(end) => ends.push(end),
            Err(panic) => ctx
                .stats
                .unexpected_error(|| format!("a virtual user panicked: {panic}")),
        }
    }
    while let Some(end) = tabs.join_next().await {
        if let Err(panic) = end {
            ctx.stats
                .unexpected_error(|| format!("a tab panicked: {panic}"));
        }
    }
    let elapsed = started.elapsed();

    let final_check = final_check(&ctx, &ends, &pairs).await;
    if options.clean_up {
        clean_up(&ctx, &ends, &pairs).await;
    }
    Ok(ctx.stats.report(header, elapsed, final_check))
}

/// What a private user leaves behind for the final check.
struct UserEnd {
    marker: String,
    expects: Vec<Expect>,
}

/// The user's model of its sessions.
struct UserState {
    index: usize,
    marker: String,
    /// Sessions the user holds a cookie for.
    owned: Vec<Expect>,
    /// Keys deleted by flush or cycle, which must stay absent.
    gone: Vec<Expect>,
    /// Sessions whose key the client never received (a request failed after creating them).
    detached: Vec<Expect>,
}

impl UserState {
    fn context(&self, what: &str, key: &SessionKey) -> String {
        format!("user {} ({what}, key {})", self.index, key.as_str())
    }

    /// Checks what a load of `owned[i]` that began after `began` completed restarts found.
    /// `Some(true)` the session is live and matched, `Some(false)` it is (acceptably) gone and now
    /// tracked as such, `None` a violation was recorded and the session is no longer tracked.
    ///
    /// A match narrows the expectation to what was found ([`Expect::narrow_to`]), unless a write
    /// of unknown effect is still unsettled ([`RestartCount`]): then every candidate stays.
    fn judge(
        &mut self,
        ctx: &Ctx,
        i: usize,
        found: Option<&Dict>,
        what: &str,
        began: u32,
    ) -> Option<bool> {
        let settled = self.owned[i].is_settled_for(began);
        match self.owned[i].check(found, &self.marker) {
            Ok(()) if found.is_some() => {
                if let Some(found) = found {
                    self.owned[i].narrow_to(found, began);
                }
                Some(true)
            }
            Ok(()) => {
                let gone = self.owned.swap_remove(i);
                self.gone.push(if settled {
                    Expect::gone(gone.key)
                } else {
                    gone
                });
                Some(false)
            }
            Err(mismatch) => {
                let context = self.context(what, &self.owned[i].key);
                ctx.violation(mismatch, context);
                self.owned.swap_remove(i);
                None
            }
        }
    }
}

async fn user(ctx: Arc<Ctx>, index: usize, client: Client, mut rng: Rng) -> UserEnd {
    let mut state = UserState {
        index,
        marker: format!("u{index}-{:x}", ctx.options.seed),
        owned: Vec::new(),
        gone: Vec::new(),
        detached: Vec::new(),
    };
    let mut done = 0u64;
    while ctx.running() {
        // In-process stores can answer without ever being pending; yielding between requests
        // keeps every user and tab running, as a server's per-request tasks would.
        tokio::task::yield_now().await;
        let room = state.owned.len() < ctx.options.sessions_per_user.max(1);
        if state.owned.is_empty() || (room && rng.percent(8)) {
            create(&ctx, &client, &mut state, &mut rng).await;
        } else {
            let i = rng.index(state.owned.len());
            match rng.below(100) {
                0..35 => read(&ctx, &client, &mut state, i).await,
                35..80 => modify(&ctx, &client, &mut state, &mut rng, i).await,
                80..90 => cycle(&ctx, &client, &mut state, &mut rng, i).await,
                _ => flush(&ctx, &client, &mut state, i).await,
            }
        }
        done += 1;
        if done.is_multiple_of(ctx.options.check_every.max(1)) {
            verify(&ctx, &mut state).await;
        }
    }
    let UserState {
        marker,
        owned,
        gone,
        detached,
        ..
    } = state;
    UserEnd {
        marker,
        expects: owned.into_iter().chain(gone).chain(detached).collect(),
    }
}

async fn create(ctx: &Ctx, client: &Client, state: &mut UserState, rng: &mut Rng) {
    let data = data::initial(rng, &state.marker);
    let outcome = client.request(None, &Op::Create(data.clone())).await;
    ctx.stats.op(OpKind::Create);
    if let Some(failure) = outcome.failure() {
        // The session may exist under a key nobody received: harmless, and unknowable.
        ctx.failure(failure, || format!("user {} (create)", state.index));
        return;
    }
    match outcome.cookie {
        CookieChange::Set(key) => state.owned.push(Expect::live(key, data)),
        other => ctx.violation(
            (
                crate::report::ViolationKind::WrongSaveOutcome,
                format!("a created session gave the client no key ({other:?})"),
            ),
            format!("user {} (create)", state.index),
        ),
    }
}

async fn read(ctx: &Ctx, client: &Client, state: &mut UserState, i: usize) {
    let key = state.owned[i].key.clone();
    let began = ctx.restarts();
    let outcome = client.request(Some(&key), &Op::Read).await;
    ctx.stats.op(OpKind::Read);
    match (&outcome.performed.loaded, outcome.failure()) {
        (Some(found), _) => {
            state.judge(ctx, i, found.as_ref(), "read", began);
        }
        (None, Some(failure)) => ctx.failure(failure, || state.context("read", &key)),
        (None, None) => {}
    }
}

/// The loaded data when the session was found and matched the model; otherwise records what
/// happened and returns `None`.
fn found_live(
    ctx: &Ctx,
    state: &mut UserState,
    i: usize,
    outcome: &Outcome,
    what: &str,
    began: u32,
) -> Option<Dict> {
    let key = state.owned[i].key.clone();
    match &outcome.performed.loaded {
        Some(found) => match state.judge(ctx, i, found.as_ref(), what, began) {
            Some(true) => found.clone(),
            _ => None,
        },
        None => {
            if let Some(failure) = outcome.failure() {
                ctx.failure(failure, || state.context(what, &key));
            }
            None
        }
    }
}

async fn modify(ctx: &Ctx, client: &Client, state: &mut UserState, rng: &mut Rng, i: usize) {
    let key = state.owned[i].key.clone();
    let changes = Changes::random(rng, &state.marker, state.owned[i].max_version() + 1);
    let began = ctx.restarts();
    let outcome = client
        .request(Some(&key), &Op::Modify(changes.clone()))
        .await;
    ctx.stats.op(OpKind::Modify);
    let Some(before) = found_live(ctx, state, i, &outcome, "modify", began) else {
        return;
    };
    let after = changes.apply(&before);
    match outcome.failure() {
        None => state.owned[i] = Expect::live(key, after),
        Some(Failure::Deleted) => {
            ctx.violation(
                (
                    crate::report::ViolationKind::WrongSaveOutcome,
                    "saving a live private session was refused as deleted".to_owned(),
                ),
                state.context("modify", &key),
            );
            state.owned.swap_remove(i);
        }
        Some(failure) => {
            ctx.failure(failure, || state.context("modify", &key));
            state.owned[i].unknown_write(vec![before, after], ctx.restarts());
        }
    }
}

async fn cycle(ctx: &Ctx, client: &Client, state: &mut UserState, rng: &mut Rng, i: usize) {
    let old = state.owned[i].key.clone();
    let changes = Changes::random(rng, &state.marker, state.owned[i].max_version() + 1);
    let began = ctx.restarts();
    let outcome = client
        .request(Some(&old), &Op::Cycle(changes.clone()))
        .await;
    ctx.stats.op(OpKind::Cycle);
    let Some(before) = found_live(ctx, state, i, &outcome, "cycle", began) else {
        return;
    };
    let held = outcome.cookie.apply(Some(&old));
    let cycled_to = outcome.performed.cycled_to.clone();
    match (&outcome.performed.error, cycled_to) {
        (Some(failure), None) => {
            // The new key was never created (or nobody learnt it): the old one is untouched.
            ctx.failure(failure, || state.context("cycle", &old));
        }
        (Some(failure), Some(new)) => {
            // Created under the new key; deleting the old one failed, with unknown effect.
            ctx.failure(failure, || state.context("cycle", &old));
            let mut maybe_gone = state.owned[i].clone();
            maybe_gone.unknown_write(vec![before.clone()], ctx.restarts());
            maybe_gone.absent_ok = true;
            if held.as_ref() == Some(&new) {
                state.owned[i] = Expect::live(new, before);
                state.gone.push(maybe_gone);
            } else {
                state.detached.push(Expect::live(new, before));
                state.owned[i] = maybe_gone;
            }
        }
        (None, Some(new)) => {
            state.gone.push(Expect::gone(old.clone()));
            let after = changes.apply(&before);
            let saved = match &outcome.save {
                Ok(()) => Expect::live(new.clone(), after),
                Err(Failure::Deleted) => {
                    ctx.violation(
                        (
                            crate::report::ViolationKind::WrongSaveOutcome,
                            "saving a freshly cycled session was refused as deleted".to_owned(),
                        ),
                        state.context("cycle", &new),
                    );
                    state.owned.swap_remove(i);
                    return;
                }
                Err(failure) => {
                    ctx.failure(failure, || state.context("cycle", &new));
                    let mut saved = Expect::live(new.clone(), before.clone());
                    saved.unknown_write(vec![before, after], ctx.restarts());
                    saved
                }
            };
            if held.as_ref() == Some(&new) {
                state.owned[i] = saved;
            } else {
                // The client never got the new cookie and holds a deleted key: the session lives
                // on, unreachable, and must still hold what was written.
                state.detached.push(saved);
                state.owned.swap_remove(i);
            }
        }
        (None, None) => {
            ctx.violation(
                (
                    crate::report::ViolationKind::WrongSaveOutcome,
                    "cycle_key succeeded but the key did not change".to_owned(),
                ),
                state.context("cycle", &old),
            );
            state.owned.swap_remove(i);
        }
    }
}

async fn flush(ctx: &Ctx, client: &Client, state: &mut UserState, i: usize) {
    let key = state.owned[i].key.clone();
    let outcome = client.request(Some(&key), &Op::Flush).await;
    ctx.stats.op(OpKind::Flush);
    match outcome.failure() {
        None => {
            state.owned.swap_remove(i);
            state.gone.push(Expect::gone(key));
        }
        Some(failure) => {
            ctx.failure(failure, || state.context("flush", &key));
            state.owned[i].unknown_delete(ctx.restarts());
        }
    }
}

/// Re-reads every session the user holds and its most recently deleted keys.
async fn verify(ctx: &Ctx, state: &mut UserState) {
    let mut i = 0;
    while i < state.owned.len() {
        let key = state.owned[i].key.clone();
        ctx.stats.op(OpKind::Check);
        let began = ctx.restarts();
        match load_fresh(&ctx.fresh, &key).await {
            Ok(found) => {
                if state.judge(ctx, i, found.as_ref(), "periodic check", began) != Some(true) {
                    continue; // owned[i] was removed; the next one moved into its place
                }
            }
            Err(failure) => ctx.failure(&failure, || state.context("periodic check", &key)),
        }
        i += 1;
    }
    let recent = state.gone.len().saturating_sub(16);
    for expect in &mut state.gone[recent..] {
        ctx.stats.op(OpKind::Check);
        let began = ctx.restarts();
        match load_fresh(&ctx.fresh, &expect.key).await {
            Ok(found) => match expect.check(found.as_ref(), &state.marker) {
                Ok(()) if found.is_none() && expect.is_settled_for(began) => {
                    expect.present.clear();
                    expect.unsettled = None;
                }
                Ok(()) => {}
                Err(mismatch) => {
                    let context = format!(
                        "user {} (periodic check, key {})",
                        state.index,
                        expect.key.as_str()
                    );
                    ctx.violation(mismatch, context);
                }
            },
            Err(failure) => ctx.failure(&failure, || {
                format!(
                    "user {} (periodic check, key {})",
                    state.index,
                    expect.key.as_str()
                )
            }),
        }
    }
}

/// Two tabs sharing one cookie jar.
struct Pair {
    marker: String,
    history: Mutex<SharedHistory>,
    jar: Mutex<Option<SessionKey>>,
}

impl Pair {
    fn history(&self) -> std::sync::MutexGuard<'_, SharedHistory> {
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cookie(&self) -> Option<SessionKey> {
        self.jar
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A response's `Set-Cookie`, applied to the shared jar as a browser would (the last response
    /// wins, whichever tab sent its request first).
    fn store_cookie(&self, change: &CookieChange) {
        let mut jar = self.jar.lock().unwrap_or_else(PoisonError::into_inner);
        match change {
            CookieChange::Unchanged => {}
            CookieChange::Set(key) => *jar = Some(key.clone()),
            CookieChange::Deleted => *jar = None,
        }
    }
}

async fn tab(ctx: Arc<Ctx>, pair: Arc<Pair>, writer: &'static str, client: Client, mut rng: Rng) {
    let mut version = 0i64;
    let context = |what: &str, key: Option<&SessionKey>| {
        let marker = &pair.marker;
        match key {
            Some(key) => format!("pair {marker} tab {writer} ({what}, key {})", key.as_str()),
            None => format!("pair {marker} tab {writer} ({what})"),
        }
    };
    while ctx.running() {
        // As for users: without it, tabs on an in-process store would never let users run.
        tokio::task::yield_now().await;
        let key = pair.cookie();
        let choice = rng.below(100);
        match (&key, choice) {
            (None, _) | (Some(_), 0..45) => {
                version += 1;
                shared_write(
                    &ctx,
                    &pair,
                    &client,
                    writer,
                    version,
                    key.as_ref(),
                    &context,
                )
                .await;
            }
            (Some(key), 45..85) => {
                let start = ctx.tick();
                let outcome = client.request(Some(key), &Op::Read).await;
                let end = ctx.tick();
                ctx.stats.op(OpKind::SharedRead);
                match (&outcome.performed.loaded, outcome.failure()) {
                    (Some(found), _) => {
                        let checked = pair.history().check(key, found.as_ref(), start, end);
                        if let Err(mismatch) = checked {
                            ctx.violation(mismatch, context("read", Some(key)));
                        }
                    }
                    (None, Some(failure)) => ctx.failure(failure, || context("read", Some(key))),
                    (None, None) => {}
                }
                pair.store_cookie(&outcome.cookie);
            }
            (Some(key), 85..93) => {
                let start = ctx.tick();
                let delete = pair.history().begin_delete(key, start);
                let outcome = client.request(Some(key), &Op::CycleOnly).await;
                let end = ctx.tick();
                ctx.stats.op(OpKind::SharedCycle);
                shared_cycled(&ctx, &pair, key, &delete, &outcome, (start, end), &context);
                pair.store_cookie(&outcome.cookie);
            }
            (Some(key), _) => {
                let start = ctx.tick();
                let delete = pair.history().begin_delete(key, start);
                let outcome = client.request(Some(key), &Op::Flush).await;
                let end = ctx.tick();
                ctx.stats.op(OpKind::SharedFlush);
                let acknowledged = match outcome.failure() {
                    None => true,
                    Some(failure) => {
                        ctx.failure(failure, || context("flush", Some(key)));
                        false
                    }
                };
                pair.history()
                    .finish_delete(&delete, end, Some(acknowledged));
                pair.store_cookie(&outcome.cookie);
            }
        }
    }
}

async fn shared_write(
    ctx: &Ctx,
    pair: &Pair,
    client: &Client,
    writer: &str,
    version: i64,
    key: Option<&SessionKey>,
    context: &impl Fn(&str, Option<&SessionKey>) -> String,
) {
    let data = data::shared(&pair.marker, writer, version);
    let start = ctx.tick();
    let logged: Option<EventId> =
        key.map(|k| pair.history().begin_write(k, writer, version, start));
    let outcome = client.request(key, &Op::Replace(data)).await;
    let end = ctx.tick();
    ctx.stats.op(OpKind::SharedWrite);
    let mut history = pair.history();
    let found_present = match (&outcome.performed.loaded, key) {
        (Some(found), Some(key)) => {
            if let Err(mismatch) = history.check(key, found.as_ref(), start, end) {
                ctx.violation(mismatch, context("write", Some(key)));
            }
            Some(found.is_some())
        }
        (Some(_), None) => Some(false),
        (None, _) => None,
    };
    let result = match (&outcome.performed.error, &outcome.save) {
        (Some(failure), _) | (None, Err(failure)) => Err(failure.clone()),
        (None, Ok(())) => Ok(()),
    };
    match (found_present, &result) {
        // Loaded, then saved over the same key: the update's outcome is this write's.
        (Some(true), _) => {
            let written = match &result {
                Ok(()) => WriteOutcome::Acknowledged,
                Err(Failure::Deleted) => WriteOutcome::Refused,
                Err(Failure::Store(_)) => WriteOutcome::Failed,
                Err(Failure::Other(_)) => WriteOutcome::NotApplied,
            };
            if let Some(logged) = &logged {
                history.finish_write(logged, end, written);
            }
        }
        // Found nothing: the write created a session under a new key (if it succeeded).
        (Some(false), _) => {
            if let Some(logged) = &logged {
                history.finish_write(logged, end, WriteOutcome::NotApplied);
            }
            if let (Ok(()), CookieChange::Set(new)) = (&result, &outcome.cookie) {
                history.add_write(
                    new,
                    writer,
                    version,
                    (start, end),
                    WriteOutcome::Acknowledged,
                );
            }
        }
        (None, _) => {
            if let Some(logged) = &logged {
                history.finish_write(logged, end, WriteOutcome::NotApplied);
            }
        }
    }
    drop(history);
    match &result {
        Ok(()) => {}
        // Another tab deleted the session meanwhile: the 400 the guarantee promises.
        Err(Failure::Deleted) => ctx.stats.interrupted(),
        Err(failure) => ctx.failure(failure, || context("write", key)),
    }
    pair.store_cookie(&outcome.cookie);
}

fn shared_cycled(
    ctx: &Ctx,
    pair: &Pair,
    key: &SessionKey,
    delete: &EventId,
    outcome: &Outcome,
    (start, end): (u64, u64),
    context: &impl Fn(&str, Option<&SessionKey>) -> String,
) {
    let mut history = pair.history();
    let found = match &outcome.performed.loaded {
        Some(found) => {
            if let Err(mismatch) = history.check(key, found.as_ref(), start, end) {
                ctx.violation(mismatch, context("cycle", Some(key)));
            }
            found.clone()
        }
        None => None,
    };
    let copied = found
        .as_ref()
        .and_then(|d| data::shared_origin(d).map(|(writer, version)| (writer.to_owned(), version)));
    match (&outcome.performed.cycled_to, &copied) {
        (Some(new), Some((writer, version))) => {
            // cycle_key created the new key holding the data it loaded.
            history.add_write(
                new,
                writer,
                *version,
                (start, end),
                WriteOutcome::Acknowledged,
            );
            let deleted = outcome.performed.error.is_none();
            history.finish_delete(delete, end, Some(deleted));
        }
        _ => history.finish_delete(delete, end, None),
    }
    drop(history);
    if let Some(failure) = outcome.failure() {
        ctx.failure(failure, || context("cycle", Some(key)));
    }
}

/// Loads `key` through a fresh session, retrying store errors until `until` (a restarted server
/// may still be coming back).
async fn load_until(ctx: &Ctx, key: &SessionKey, until: Instant) -> Result<Option<Dict>, Failure> {
    loop {
        ctx.stats.op(OpKind::Check);
        match load_fresh(&ctx.fresh, key).await {
            Err(Failure::Store(_)) if Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// What the final check of one key found.
enum Checked {
    Live,
    Absent,
    Shared,
}

async fn final_check(ctx: &Arc<Ctx>, ends: &[UserEnd], pairs: &[Arc<Pair>]) -> FinalCheck {
    let started = Instant::now();
    let until = started + ctx.options.recovery;
    let limit = Arc::new(Semaphore::new(16));
    let mut checks = JoinSet::new();
    for end in ends {
        for expect in &end.expects {
            let (ctx, limit, expect, marker) = (
                ctx.clone(),
                limit.clone(),
                expect.clone(),
                end.marker.clone(),
            );
            checks.spawn(async move {
                let _permit = limit.acquire().await.ok();
                let result = load_until(&ctx, &expect.key, until).await;
                let context = || format!("final check of {marker}'s key {}", expect.key.as_str());
                match result {
                    Ok(found) => match expect.check(found.as_ref(), &marker) {
                        Ok(()) if found.is_some() => Some(Checked::Live),
                        Ok(()) => Some(Checked::Absent),
                        Err(mismatch) => {
                            ctx.violation(mismatch, context());
                            None
                        }
                    },
                    Err(failure) => {
                        // Recovery was expected by now: the store did not come back.
                        ctx.stats
                            .unexpected_error(|| format!("{}: {failure:?}", context()));
                        None
                    }
                }
            });
        }
    }
    for pair in pairs {
        let keys: Vec<SessionKey> = pair.history().keys().cloned().collect();
        for key in keys {
            let (ctx, limit, pair) = (ctx.clone(), limit.clone(), pair.clone());
            checks.spawn(async move {
                let _permit = limit.acquire().await.ok();
                let result = load_until(&ctx, &key, until).await;
                let marker = &pair.marker;
                let context = || format!("final check of pair {marker}'s key {}", key.as_str());
                match result {
                    Ok(found) => {
                        let now = ctx.tick();
                        let checked = pair.history().check(&key, found.as_ref(), now, now);
                        match checked {
                            Ok(()) => Some(Checked::Shared),
                            Err(mismatch) => {
                                ctx.violation(mismatch, context());
                                None
                            }
                        }
                    }
                    Err(failure) => {
                        ctx.stats
                            .unexpected_error(|| format!("{}: {failure:?}", context()));
                        None
                    }
                }
            });
        }
    }
    let mut result = FinalCheck::default();
    while let Some(done) = checks.join_next().await {
        match done {
            Ok(Some(Checked::Live)) => result.live += 1,
            Ok(Some(Checked::Absent)) => result.absent += 1,
            Ok(Some(Checked::Shared)) => result.shared += 1,
            Ok(None) => {}
            Err(panic) => ctx
                .stats
                .unexpected_error(|| format!("a final check panicked: {panic}")),
        }
    }
    result.took = started.elapsed();
    result
}

/// Deletes what is still live, so shared servers are left as they were found.
async fn clean_up(ctx: &Ctx, ends: &[UserEnd], pairs: &[Arc<Pair>]) {
    let mut keys: Vec<SessionKey> = ends
        .iter()
        .flat_map(|end| end.expects.iter())
        .filter(|e| !e.present.is_empty())
        .map(|e| e.key.clone())
        .collect();
    for pair in pairs {
        keys.extend(pair.history().keys().cloned());
    }
    for key in keys {
        // Best effort: a failure here loses nothing that matters.
        let _ = ctx.fresh.store().delete(&key).await;
    }
}
