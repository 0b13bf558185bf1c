//! Counting what happened during a run, and the report printed at the end.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// How many violations and errors are kept word for word (all are counted).
const SAMPLES: usize = 40;

/// What kind of broken promise a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationKind {
    /// A session held an older version than its owner last saved, or a shared session held a
    /// write that a later acknowledged write had replaced.
    LostUpdate,
    /// A session held data written by another user.
    CrossedUpdate,
    /// A shared session held data that no single write produced (a mix of two writes).
    MixedWrite,
    /// A session's data differs from every version its owner could have left there.
    Corrupted,
    /// A live session loaded as absent.
    LostSession,
    /// A deleted (flushed or cycled-away) session loaded with data again.
    Resurrected,
    /// A save the store refused (or that failed) left its data behind anyway, or a save of a live
    /// session was refused as deleted.
    WrongSaveOutcome,
}

impl ViolationKind {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            ViolationKind::LostUpdate => "lost update",
            ViolationKind::CrossedUpdate => "crossed update",
            ViolationKind::MixedWrite => "mixed write",
            ViolationKind::Corrupted => "corrupted data",
            ViolationKind::LostSession => "lost session",
            ViolationKind::Resurrected => "resurrected session",
            ViolationKind::WrongSaveOutcome => "wrong save outcome",
        }
    }
}

/// One broken promise, with what was expected and what was found.
#[derive(Debug, Clone)]
pub struct Violation {
    /// What kind.
    pub kind: ViolationKind,
    /// Where it was found (which user, which session key, which phase).
    pub context: String,
    /// Expected and found, in words.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.kind.name(), self.context, self.detail)
    }
}

/// The operations counted separately in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// A private session created.
    Create,
    /// A private session read.
    Read,
    /// A private session read, changed and saved.
    Modify,
    /// A private session moved to a new key (login), then changed and saved.
    Cycle,
    /// A private session flushed (logout).
    Flush,
    /// A shared session replaced by one tab.
    SharedWrite,
    /// A shared session read by one tab.
    SharedRead,
    /// A shared session moved to a new key by one tab.
    SharedCycle,
    /// A shared session flushed by one tab.
    SharedFlush,
    /// A load made only to check a session against the model (periodically and at the end).
    Check,
}

impl OpKind {
    /// Every kind, in report order.
    pub const ALL: [OpKind; 10] = [
        OpKind::Create,
        OpKind::Read,
        OpKind::Modify,
        OpKind::Cycle,
        OpKind::Flush,
        OpKind::SharedWrite,
        OpKind::SharedRead,
        OpKind::SharedCycle,
        OpKind::SharedFlush,
        OpKind::Check,
    ];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Read => "read",
            OpKind::Modify => "modify",
            OpKind::Cycle => "cycle",
            OpKind::Flush => "flush",
            OpKind::SharedWrite => "shared-write",
            OpKind::SharedRead => "shared-read",
            OpKind::SharedCycle => "shared-cycle",
            OpKind::SharedFlush => "shared-flush",
            OpKind::Check => "check",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters shared by every virtual user of a run.
#[derive(Debug, Default)]
pub struct Stats {
    ops: [AtomicU64; OpKind::ALL.len()],
    errors: AtomicU64,
    unexpected: AtomicU64,
    interrupted: AtomicU64,
    violations: AtomicU64,
    violation_samples: Mutex<Vec<Violation>>,
    error_samples: Mutex<Vec<String>>,
}

impl Stats {
    /// Counts one operation of `kind`.
    pub fn op(&self, kind: OpKind) {
        self.ops[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a store error (`Error::Store`, or the layer's 500 for one) returned to a user.
    pub fn store_error(&self, what: impl FnOnce() -> String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.sample_error(what);
    }

    /// Counts an error that no outage explains (a panic, a wrong error type, a store that did not
    /// come back): it always fails the run.
    pub fn unexpected_error(&self, what: impl FnOnce() -> String) {
        self.unexpected.fetch_add(1, Ordering::Relaxed);
        self.sample_error(|| format!("UNEXPECTED {}", what()));
    }

    /// Counts a save refused because another tab had deleted the session (the promised 400).
    pub fn interrupted(&self) {
        self.interrupted.fetch_add(1, Ordering::Relaxed);
    }

    fn sample_error(&self, what: impl FnOnce() -> String) {
        let mut samples = self
            .error_samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if samples.len() < SAMPLES {
            samples.push(what());
        }
    }

    /// Records a violation.
    pub fn violation(&self, violation: Violation) {
        self.violations.fetch_add(1, Ordering::Relaxed);
        let mut samples = self
            .violation_samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if samples.len() < SAMPLES {
            samples.push(violation);
        }
    }

    /// How many errors so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// How many operations (of every kind but checks) so far.
    pub fn total_ops(&self) -> u64 {
        OpKind::ALL
            .iter()
            .filter(|k| **k != OpKind::Check)
            .map(|k| self.ops[k.index()].load(Ordering::Relaxed))
            .sum()
    }

    /// The report of a run that took `elapsed`.
    pub fn report(&self, header: RunHeader, elapsed: Duration, final_check: FinalCheck) -> Report {
        let ops = OpKind::ALL
            .iter()
            .map(|k| (k.name(), self.ops[k.index()].load(Ordering::Relaxed)))
            .collect();
        Report {
            header,
            elapsed,
            ops,
            total_ops: self.total_ops(),
            errors: self.errors(),
            unexpected_errors: self.unexpected.load(Ordering::Relaxed),
            interrupted: self.interrupted.load(Ordering::Relaxed),
            error_samples: self
                .error_samples
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            violations: self.violations.load(Ordering::Relaxed),
            violation_samples: self
                .violation_samples
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            final_check,
        }
    }
}

/// What the run was.
#[derive(Debug, Clone)]
pub struct RunHeader {
    /// The store, as described by its opener.
    pub store: String,
    /// Virtual users with sessions of their own.
    pub users: usize,
    /// Pairs of tabs sharing one session cookie.
    pub pairs: usize,
    /// The seed the users' choices derive from.
    pub seed: u64,
    /// Whether errors were expected (servers restarted during the run).
    pub errors_expected: bool,
}

/// What the final check (every known key loaded by a fresh session) found.
#[derive(Debug, Clone, Copy, Default)]
pub struct FinalCheck {
    /// Sessions that had to be live, and were loaded and compared.
    pub live: u64,
    /// Keys that had to be absent (flushed or cycled away), and were.
    pub absent: u64,
    /// Shared-session keys checked against their write history.
    pub shared: u64,
    /// How long it took.
    pub took: Duration,
}

/// The result of a soak run.
#[derive(Debug, Clone)]
pub struct Report {
    /// What ran.
    pub header: RunHeader,
    /// How long the load phase lasted (the final check not included).
    pub elapsed: Duration,
    /// Operations by kind.
    pub ops: BTreeMap<&'static str, u64>,
    /// Operations of every kind but checks.
    pub total_ops: u64,
    /// Store errors returned to the users.
    pub errors: u64,
    /// Errors no outage explains (always a failure).
    pub unexpected_errors: u64,
    /// Saves of shared sessions refused because the other tab had deleted the session.
    pub interrupted: u64,
    /// The first errors, word for word.
    pub error_samples: Vec<String>,
    /// Violations found (must be zero).
    pub violations: u64,
    /// The first violations.
    pub violation_samples: Vec<Violation>,
    /// The final check.
    pub final_check: FinalCheck,
}

impl Report {
    /// Operations (checks not included) per second of the load phase.
    pub fn ops_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.total_ops as f64 / seconds
        } else {
            0.0
        }
    }

    /// Whether the run kept every promise: no violation, no unexpected error, and no store error
    /// unless errors were expected.
    pub fn passed(&self) -> bool {
        self.violations == 0
            && self.unexpected_errors == 0
            && (self.header.errors_expected || self.errors == 0)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.header;
        writeln!(
            f,
            "store {}: {} users + {} pairs of tabs, {:.1} s, seed {}",
            h.store,
            h.users,
            h.pairs,
            self.elapsed.as_secs_f64(),
            h.seed
        )?;
        let by_kind: Vec<String> = self
            .ops
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        writeln!(f, "  operations: {}", by_kind.join(", "))?;
        writeln!(
            f,
            "  final check: {} live sessions exact, {} deleted keys absent, {} shared keys \
             consistent ({:.1} s)",
            self.final_check.live,
            self.final_check.absent,
            self.final_check.shared,
            self.final_check.took.as_secs_f64()
        )?;
        writeln!(
            f,
            "  shared-session saves refused after the other tab deleted it (400): {}",
            self.interrupted
        )?;
        writeln!(
            f,
            "  store errors: {}{}, unexpected errors: {}",
            self.errors,
            if h.errors_expected {
                " (expected: servers were restarted)"
            } else {
                ""
            },
            self.unexpected_errors
        )?;
        for error in &self.error_samples {
            writeln!(f, "    {error}")?;
        }
        writeln!(f, "  violations: {}", self.violations)?;
        for violation in &self.violation_samples {
            writeln!(f, "    {violation}")?;
        }
        write!(
            f,
            "RESULT store={} ops={} ops_per_s={:.0} errors={} unexpected={} violations={} passed={}",
            h.store,
            self.total_ops,
            self.ops_per_second(),
            self.errors,
            self.unexpected_errors,
            self.violations,
            self.passed()
        )
    }
}
