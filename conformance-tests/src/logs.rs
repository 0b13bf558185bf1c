//! Capturing `tracing` events, to check what a session logs.
//!
//! Capture goes through one process-wide subscriber that hands each event to the capture running
//! on the emitting thread, if any. A scoped subscriber per capture would race with `tracing`'s
//! per-callsite interest cache when tests run in parallel (an event site first seen while no
//! capture was active can stay disabled), and miss events now and then.
//!
//! - [`capture`]: the events of one closure on this thread, with their fields (what a test
//!   asserts on: "this load logged `Session data corrupted`").
//! - [`all_threads`]: every span and event of every thread from then on, rendered with every
//!   field (what a "no secret is ever logged" test scans: stores log from tokio's worker and
//!   blocking threads).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// One captured event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// The event's target (e.g. `django.security.SuspiciousSession`).
    pub target: String,
    /// Its level.
    pub level: Level,
    /// Its message.
    pub message: String,
    /// Its other fields, rendered (`str` fields as they are, the rest with `Debug`).
    pub fields: BTreeMap<String, String>,
}

thread_local! {
    static CAPTURED: RefCell<Option<Vec<LogEvent>>> = const { RefCell::new(None) };
}

/// Collects an event's or span's fields by name.
#[derive(Default)]
struct FieldMap(BTreeMap<String, String>);

impl Visit for FieldMap {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The chain too: a secret hidden in a source must show up.
        let mut text = format!("{value} ({value:?})");
        let mut source = value.source();
        while let Some(inner) = source {
            let _ = write!(text, ": {inner} ({inner:?})");
            source = inner.source();
        }
        self.0.insert(field.name().to_owned(), text);
    }
}

fn record_for_this_thread(event: &Event<'_>) {
    CAPTURED.with(|captured| {
        if let Some(events) = captured.borrow_mut().as_mut() {
            let mut fields = FieldMap::default();
            event.record(&mut fields);
            let mut fields = fields.0;
            events.push(LogEvent {
                target: event.metadata().target().to_owned(),
                level: *event.metadata().level(),
                message: fields.remove("message").unwrap_or_default(),
                fields,
            });
        }
    });
}

/// Every line [`all_threads`] has recorded, once it has been called.
static ALL_THREADS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static ALL_THREADS_ON: AtomicBool = AtomicBool::new(false);

fn record_everywhere(line: impl FnOnce() -> String) {
    if ALL_THREADS_ON.load(Ordering::Acquire) {
        let line = line();
        ALL_THREADS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }
}

fn render(kind: &str, name: &str, fields: &FieldMap) -> String {
    let mut line = format!("{kind} {name}");
    for (field, value) in &fields.0 {
        let _ = write!(line, " {field}={value}");
    }
    line
}

struct GlobalCapture;

impl<S: Subscriber> Layer<S> for GlobalCapture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        record_for_this_thread(event);
        record_everywhere(|| {
            let mut fields = FieldMap::default();
            event.record(&mut fields);
            let meta = event.metadata();
            render(meta.level().as_str(), meta.target(), &fields)
        });
    }
    fn on_new_span(&self, span: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        record_everywhere(|| {
            let mut fields = FieldMap::default();
            span.record(&mut fields);
            render("span", span.metadata().name(), &fields)
        });
    }
    fn on_record(&self, _span: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        record_everywhere(|| {
            let mut fields = FieldMap::default();
            values.record(&mut fields);
            render("record", "", &fields)
        });
    }
}

/// Installs the process-wide capturing subscriber once. Returns false when the process already
/// has another global subscriber; capture then falls back to a scoped one.
fn global_capture_installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(GlobalCapture);
        let installed = tracing::subscriber::set_global_default(subscriber).is_ok();
        tracing::callsite::rebuild_interest_cache();
        installed
    })
}

/// Runs `f` on this thread with every `tracing` event it emits captured, and returns them with its
/// result.
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<LogEvent>) {
    let previous = CAPTURED.with(|captured| captured.borrow_mut().replace(Vec::new()));
    let result = if global_capture_installed() {
        f()
    } else {
        let subscriber = tracing_subscriber::registry().with(GlobalCapture);
        tracing::subscriber::with_default(subscriber, f)
    };
    let events = CAPTURED.with(|captured| {
        let mut captured = captured.borrow_mut();
        let events = captured.take().unwrap_or_default();
        *captured = previous;
        events
    });
    (result, events)
}

/// [`capture`] of a future, run to completion on a current-thread runtime (so every event it
/// logs, timers and I/O included, is emitted on this thread).
pub fn capture_async<F: std::future::Future>(future: F) -> (F::Output, Vec<LogEvent>) {
    capture(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
            .block_on(future)
    })
}

/// Every span and event of every thread.
#[derive(Debug, Clone, Copy)]
pub struct AllThreads(());

impl AllThreads {
    /// Every line recorded so far, by any test of this process: `LEVEL target field=value ...`
    /// for events, `span name field=value ...` for spans. Scanning other tests' lines too can
    /// only make a "never logged" check stricter.
    pub fn lines(&self) -> Vec<String> {
        ALL_THREADS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Starts recording every span and event of every thread, with all their fields, and returns the
/// handle to read them.
///
/// # Panics
///
/// If the process already has a global `tracing` subscriber of its own (then nothing could be
/// recorded, and a "never logged" test would pass without looking).
pub fn all_threads() -> AllThreads {
    assert!(
        global_capture_installed(),
        "another global tracing subscriber is installed: logs::all_threads cannot see events"
    );
    ALL_THREADS_ON.store(true, Ordering::Release);
    AllThreads(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_only_this_threads_events() {
        let ((), events) = capture(|| {
            tracing::warn!(target: "djsession.test", "inside");
            std::thread::spawn(|| tracing::warn!(target: "djsession.test", "other thread"))
                .join()
                .unwrap();
        });
        tracing::warn!(target: "djsession.test", "outside");
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].message, "inside");
        assert_eq!(events[0].level, Level::WARN);
    }

    #[test]
    fn captures_every_field() {
        let ((), events) = capture(|| {
            let error = std::io::Error::other("disk on fire");
            tracing::warn!(target: "djsession.test", path = "a/b", error = &error as &dyn std::error::Error, "failed");
        });
        assert_eq!(events[0].message, "failed");
        assert_eq!(events[0].fields["path"], "a/b");
        assert!(
            events[0].fields["error"].contains("disk on fire"),
            "{events:?}"
        );
    }

    #[test]
    fn all_threads_records_other_threads_spans_and_fields() {
        let all = all_threads();
        std::thread::spawn(|| {
            let span = tracing::info_span!("request", user = "u-4711");
            let _entered = span.enter();
            tracing::debug!(target: "djsession.test", key = ?"k-0815", "other thread");
        })
        .join()
        .unwrap();
        let lines = all.lines();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("span request") && l.contains("u-4711")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("DEBUG djsession.test") && l.contains("k-0815")),
            "{lines:#?}"
        );
    }

    #[test]
    fn captures_nest() {
        let (inner, outer) = capture(|| {
            tracing::info!("outer");
            let ((), inner) = capture(|| tracing::info!("inner"));
            inner
        });
        assert_eq!(inner.len(), 1);
        assert_eq!(outer.len(), 1);
        assert_eq!(outer[0].message, "outer");
    }
}
