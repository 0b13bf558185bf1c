//! Capturing `tracing` events, to check what a session logs.
//!
//! Capture goes through one process-wide subscriber that hands each event to the capture running
//! on the emitting thread, if any. A scoped subscriber per capture would race with `tracing`'s
//! per-callsite interest cache when tests run in parallel (an event site first seen while no
//! capture was active can stay disabled), and miss events now and then.

use std::cell::RefCell;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
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
}

thread_local! {
    static CAPTURED: RefCell<Option<Vec<LogEvent>>> = const { RefCell::new(None) };
}

struct ThreadCapture;

struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

fn record(event: &Event<'_>) {
    CAPTURED.with(|captured| {
        if let Some(events) = captured.borrow_mut().as_mut() {
            let mut visitor = MessageVisitor(String::new());
            event.record(&mut visitor);
            events.push(LogEvent {
                target: event.metadata().target().to_owned(),
                level: *event.metadata().level(),
                message: visitor.0,
            });
        }
    });
}

impl<S: Subscriber> Layer<S> for ThreadCapture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        record(event);
    }
}

/// Installs the process-wide capturing subscriber once. Returns false when the process already
/// has another global subscriber; capture then falls back to a scoped one.
fn global_capture_installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(ThreadCapture);
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
        let subscriber = tracing_subscriber::registry().with(ThreadCapture);
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
