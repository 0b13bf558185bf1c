//! The counters scenario: does a concurrency policy lose acknowledged updates?
//!
//! Groups of tabs share one session cookie (groups of 2 and of 8 by default, as two tabs of a
//! browser, or a page firing a burst of XHRs). Each tab owns one counter key in the shared session
//! and loops as its requests would: a fresh [`Session`] on the shared key (with the policy in its
//! config), read its own counter, increment it, save. A save that returned `Ok` is an
//! *acknowledged* increment; a save refused as a conflict ([`Error::Conflict`]) or interrupted
//! (a store error: its effect is unknown) is not. At the end a fresh session reads every counter:
//! for each tab, `lost = acknowledged - stored` (never below zero), summed over the tabs.
//!
//! Under `last_write_wins` (Django's behaviour) one tab's save writes the whole session as it
//! loaded it, so it puts back the older value of every other tab's counter: increments are lost,
//! by design. Under `merge` and `reject` none may be: `merge` re-applies only this request's
//! changes onto what is stored now, and `reject` refuses a stale save (it is then not
//! acknowledged). A counter above its acknowledged and interrupted increments together (a
//! *phantom* increment) is a violation under every policy.
//!
//! Each tab yields between its read and its save, as a request does other work in between; an
//! in-process store would otherwise run each request to completion before another starts, and
//! nothing would ever race.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{ConcurrencyPolicy, Error, Session, SessionConfig, SessionKey, SessionStore};
use tokio::task::JoinSet;

use crate::SoakError;
use crate::stores::{self, StoreKind, StoreOptions};

/// How many sample messages of unexpected errors a report keeps.
const SAMPLES: usize = 5;

/// How a counters run is shaped.
#[derive(Debug, Clone)]
pub struct CounterOptions {
    /// The groups of tabs: each number is one group sharing one session, of that many tabs.
    pub groups: Vec<usize>,
    /// How long the tabs work.
    pub duration: Duration,
    /// How long the final check keeps retrying a load that fails with a store error.
    pub recovery: Duration,
}

impl Default for CounterOptions {
    fn default() -> Self {
        CounterOptions {
            groups: vec![2, 2, 2, 2, 8, 8],
            duration: Duration::from_secs(10),
            recovery: Duration::from_secs(10),
        }
    }
}

/// The policy as the scenario prints it: `merge`, `reject` or `last-write-wins`.
pub fn policy_name(policy: ConcurrencyPolicy) -> &'static str {
    match policy {
        ConcurrencyPolicy::LastWriteWins => "last-write-wins",
        ConcurrencyPolicy::Merge => "merge",
        ConcurrencyPolicy::Reject => "reject",
    }
}

/// What one tab did, and what its counter held at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TabTally {
    /// Saves that returned `Ok`.
    pub acknowledged: u64,
    /// Saves refused with [`Error::Conflict`].
    pub rejected: u64,
    /// Saves that failed with a store error (their effect is unknown).
    pub interrupted: u64,
    /// Loads that failed with a store error (the request then did nothing).
    pub load_errors: u64,
    /// Errors no request should meet here (the session deleted or recreated, a configuration
    /// error, a value of the wrong type).
    pub unexpected: u64,
    /// The counter found at the end.
    pub stored: u64,
}

impl TabTally {
    /// Acknowledged increments the counter does not hold.
    pub fn lost(&self) -> u64 {
        self.acknowledged.saturating_sub(self.stored)
    }

    /// Increments the counter holds beyond every save that may have landed.
    pub fn phantom(&self) -> u64 {
        self.stored
            .saturating_sub(self.acknowledged + self.interrupted)
    }
}

/// The outcome of one store under one policy.
#[derive(Debug, Clone)]
pub struct CounterReport {
    /// The store's name (`memory`, `redis`, ...).
    pub store: String,
    /// Where it ran (table, key prefix, ...).
    pub description: String,
    /// The policy the tabs' sessions saved under.
    pub policy: ConcurrencyPolicy,
    /// The sizes of the groups of tabs.
    pub groups: Vec<usize>,
    /// Every tab, group by group.
    pub tabs: Vec<TabTally>,
    /// Samples of the unexpected errors.
    pub unexpected_samples: Vec<String>,
    /// How long the tabs worked.
    pub elapsed: Duration,
}

impl CounterReport {
    fn sum(&self, field: impl Fn(&TabTally) -> u64) -> u64 {
        self.tabs.iter().map(field).sum()
    }

    /// Acknowledged increments, over every tab.
    pub fn acknowledged(&self) -> u64 {
        self.sum(|t| t.acknowledged)
    }

    /// Lost increments, over every tab.
    pub fn lost(&self) -> u64 {
        self.sum(TabTally::lost)
    }

    /// Saves refused as conflicts, over every tab.
    pub fn rejected(&self) -> u64 {
        self.sum(|t| t.rejected)
    }

    /// Saves interrupted by store errors, over every tab.
    pub fn interrupted(&self) -> u64 {
        self.sum(|t| t.interrupted)
    }

    /// Phantom increments, over every tab.
    pub fn phantom(&self) -> u64 {
        self.sum(TabTally::phantom)
    }

    /// Unexpected errors, over every tab.
    pub fn unexpected(&self) -> u64 {
        self.sum(|t| t.unexpected)
    }

    /// Whether the policy kept its promise: nothing acknowledged lost under `merge` and
    /// `reject`, and under every policy no phantom increment and no unexpected error.
    pub fn passed(&self) -> bool {
        let loses_by_design = self.policy == ConcurrencyPolicy::LastWriteWins;
        (loses_by_design || self.lost() == 0) && self.phantom() == 0 && self.unexpected() == 0
    }

    /// Everything else the run counted, for a second line (the summary line is [`Display`]).
    ///
    /// [`Display`]: fmt::Display
    pub fn details(&self) -> String {
        let groups: Vec<String> = self.groups.iter().map(ToString::to_string).collect();
        let secs = self.elapsed.as_secs_f64();
        let saves = self.acknowledged() + self.rejected() + self.interrupted();
        let mut text = format!(
            "  {} {}: {}; {} tabs in groups of {} for {secs:.1} s: {saves} saves ({:.0}/s), \
             {} acknowledged, {} rejected as conflicts, {} interrupted, {} load errors, \
             {} phantom increments, {} unexpected errors",
            self.store,
            policy_name(self.policy),
            self.description,
            self.tabs.len(),
            groups.join(","),
            saves as f64 / secs.max(1e-9),
            self.acknowledged(),
            self.rejected(),
            self.interrupted(),
            self.sum(|t| t.load_errors),
            self.phantom(),
            self.unexpected(),
        );
        for sample in &self.unexpected_samples {
            text.push_str(&format!("\n    unexpected: {sample}"));
        }
        text
    }
}

impl fmt::Display for CounterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "counters {} {}: lost increments {} of {} acknowledged",
            self.store,
            policy_name(self.policy),
            self.lost(),
            self.acknowledged()
        )
    }
}

/// A store run, or skipped with the reason.
#[derive(Debug, Clone)]
pub enum CounterOutcome {
    /// The scenario ran.
    Ran(CounterReport),
    /// The store cannot serve the policy (it declares no compare-and-swap).
    Skipped {
        /// The store's name.
        store: String,
        /// The policy asked for.
        policy: ConcurrencyPolicy,
        /// Why it did not run.
        reason: String,
    },
}

impl CounterOutcome {
    /// Whether it ran and failed.
    pub fn failed(&self) -> bool {
        matches!(self, CounterOutcome::Ran(report) if !report.passed())
    }
}

impl fmt::Display for CounterOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CounterOutcome::Ran(report) => report.fmt(f),
            CounterOutcome::Skipped {
                store,
                policy,
                reason,
            } => write!(
                f,
                "counters {store} {}: skipped: {reason}",
                policy_name(*policy)
            ),
        }
    }
}

/// Opens a store of `kind` on fresh private space with `policy` in its config, runs the scenario
/// on it (or skips it when it cannot compare-and-swap and the policy needs it), and removes the
/// space.
pub async fn counters(
    kind: StoreKind,
    policy: ConcurrencyPolicy,
    mut config: SessionConfig,
    store_options: &StoreOptions,
    options: &CounterOptions,
) -> Result<CounterOutcome, SoakError> {
    config.concurrency = policy;
    let opened = stores::open(kind, &config, store_options).await?;
    let outcome = run_on(
        opened.store.clone(),
        Arc::new(config),
        kind.name(),
        &opened.description,
        options,
    )
    .await;
    opened.close().await?;
    outcome
}

/// Runs the scenario on `store` with `config`'s policy; skips it when the policy needs
/// compare-and-swap and the store does not declare it.
pub async fn run_on(
    store: Arc<dyn SessionStore>,
    config: Arc<SessionConfig>,
    name: &str,
    description: &str,
    options: &CounterOptions,
) -> Result<CounterOutcome, SoakError> {
    let policy = config.concurrency;
    if policy.needs_compare_and_swap() && !store.capabilities().compare_and_swap {
        return Ok(CounterOutcome::Skipped {
            store: name.to_owned(),
            policy,
            reason: format!(
                "the store does not declare capabilities().compare_and_swap, which {} needs",
                policy_name(policy)
            ),
        });
    }
    // One session per group, created as a first request would.
    let mut keys = Vec::with_capacity(options.groups.len());
    for (group, _) in options.groups.iter().enumerate() {
        let session = Session::new(store.clone(), config.clone(), None);
        session.insert("group", &group).await?;
        session.save().await?;
        let key = session
            .key()
            .ok_or_else(|| SoakError::Setup("a saved session has no key".to_owned()))?;
        keys.push(key);
    }

    let started = Instant::now();
    let deadline = started + options.duration;
    let mut tabs = JoinSet::new();
    for (group, (&size, key)) in options.groups.iter().zip(&keys).enumerate() {
        for tab in 0..size {
            let (store, config, key) = (store.clone(), config.clone(), key.clone());
            tabs.spawn(async move {
                let run = work(store, config, key, counter_key(tab), deadline).await;
                ((group, tab), run)
            });
        }
    }
    let mut results = Vec::new();
    while let Some(joined) = tabs.join_next().await {
        results.push(joined.map_err(|e| SoakError::Setup(format!("a tab panicked: {e}")))?);
    }
    let elapsed = started.elapsed();
    results.sort_by_key(|(id, _)| *id);

    // The end: every counter read by a fresh session, as the next request would read it.
    let reader = Arc::new(SessionConfig {
        concurrency: ConcurrencyPolicy::LastWriteWins,
        ..(*config).clone()
    });
    let mut tallies = Vec::with_capacity(results.len());
    let mut samples = Vec::new();
    for ((group, tab), (mut tally, unexpected)) in results {
        let stored = read_counter(
            &store,
            &reader,
            &keys[group],
            &counter_key(tab),
            options.recovery,
        )
        .await;
        match stored {
            Ok(stored) => tally.stored = stored,
            Err(message) => {
                tally.unexpected += 1;
                samples.push(format!("group {group} tab {tab}: final read: {message}"));
            }
        }
        samples.extend(unexpected);
        tallies.push(tally);
    }
    samples.truncate(SAMPLES);
    for key in &keys {
        // Best effort: the sessions expire within the hour anyway.
        let _ = store.delete(key).await;
    }
    Ok(CounterOutcome::Ran(CounterReport {
        store: name.to_owned(),
        description: description.to_owned(),
        policy,
        groups: options.groups.clone(),
        tabs: tallies,
        unexpected_samples: samples,
        elapsed,
    }))
}

fn counter_key(tab: usize) -> String {
    format!("tab{tab}")
}

/// One tab's requests until `deadline`: the tally, and samples of unexpected errors.
async fn work(
    store: Arc<dyn SessionStore>,
    config: Arc<SessionConfig>,
    key: SessionKey,
    counter: String,
    deadline: Instant,
) -> (TabTally, Vec<String>) {
    let mut tally = TabTally::default();
    let mut samples = Vec::new();
    let mut unexpected = |tally: &mut TabTally, what: String| {
        tally.unexpected += 1;
        if samples.len() < SAMPLES {
            samples.push(format!("{counter}: {what}"));
        }
    };
    while Instant::now() < deadline {
        let session = Session::new(store.clone(), config.clone(), Some(key.as_str()));
        let read = session.get::<u64>(&counter).await;
        let value = match read {
            Ok(value) => value.unwrap_or(0),
            Err(Error::Store(_)) => {
                tally.load_errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(error) => {
                unexpected(&mut tally, format!("read: {error}"));
                continue;
            }
        };
        if session.key().as_ref() != Some(&key) {
            unexpected(&mut tally, "the shared session vanished".to_owned());
            continue;
        }
        if let Err(error) = session.insert(counter.as_str(), &(value + 1)).await {
            unexpected(&mut tally, format!("insert: {error}"));
            continue;
        }
        // The rest of the request's work: lets another tab's request run in between.
        tokio::task::yield_now().await;
        match session.save().await {
            Ok(()) if session.key().as_ref() == Some(&key) => tally.acknowledged += 1,
            Ok(()) => unexpected(
                &mut tally,
                "the save went to a new session: the shared one had vanished".to_owned(),
            ),
            Err(Error::Conflict) => tally.rejected += 1,
            Err(Error::Store(_)) => {
                tally.interrupted += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(error) => unexpected(&mut tally, format!("save: {error}")),
        }
        // A request boundary: in-process stores never wait, and a tab would otherwise hold its
        // worker thread.
        tokio::task::yield_now().await;
    }
    (tally, samples)
}

/// The counter under `counter` in the session `key`, as a fresh request reads it (0 when absent),
/// retrying store errors for up to `recovery`.
async fn read_counter(
    store: &Arc<dyn SessionStore>,
    config: &Arc<SessionConfig>,
    key: &SessionKey,
    counter: &str,
    recovery: Duration,
) -> Result<u64, String> {
    let until = Instant::now() + recovery;
    loop {
        let session = Session::new(store.clone(), config.clone(), Some(key.as_str()));
        match session.get::<u64>(counter).await {
            Ok(value) if session.key().as_ref() == Some(key) => return Ok(value.unwrap_or(0)),
            Ok(_) => return Err("the shared session is gone".to_owned()),
            Err(Error::Store(_)) if Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tab_loses_what_it_had_acknowledged_and_the_counter_lacks() {
        let tally = TabTally {
            acknowledged: 10,
            interrupted: 2,
            stored: 7,
            ..TabTally::default()
        };
        assert_eq!(tally.lost(), 3);
        assert_eq!(tally.phantom(), 0);
        let landed = TabTally {
            stored: 11,
            ..tally.clone()
        };
        assert_eq!((landed.lost(), landed.phantom()), (0, 0));
        let phantom = TabTally {
            stored: 13,
            ..tally
        };
        assert_eq!((phantom.lost(), phantom.phantom()), (0, 1));
    }
}
