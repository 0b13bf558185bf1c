//! The refresh scenario on the memory store: with a throttled sliding expiry, read-only requests
//! under `save_every_request` write far less than Django's every-request rule, and nobody's
//! session is lost on the way.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use djsession_soak::refresh::{CountingWrites, RefreshOptions, run_on};
use djsession_soak::soak_config;
use session_core::{MemoryStore, SessionConfig};

fn config(fraction: f64) -> SessionConfig {
    SessionConfig {
        save_every_request: true,
        refresh_fraction: fraction,
        cookie_age: 2,
        ..soak_config()
    }
}

#[tokio::test]
async fn a_throttled_refresh_writes_a_small_fraction_of_what_every_request_writes() {
    let options = RefreshOptions {
        users: 4,
        duration: Duration::from_millis(1500),
        fraction: 0.5,
        cookie_age: 2,
    };
    let django = run_on(
        Arc::new(CountingWrites::new(Arc::new(MemoryStore::new()))),
        &config(0.0),
        &options,
    )
    .await
    .unwrap();
    assert!(django.requests > 100, "{django:?}");
    assert_eq!(
        django.writes, django.requests,
        "Django's rule: one write per request"
    );

    let throttled = run_on(
        Arc::new(CountingWrites::new(Arc::new(MemoryStore::new()))),
        &config(0.5),
        &options,
    )
    .await
    .unwrap();
    assert!(throttled.requests > 100, "{throttled:?}");
    // Age 2 s, fraction 0.5: each of the 4 sessions is re-saved once a second at most, so a
    // 1.5 s run writes at most one or two times per user.
    assert!(
        (1..=8).contains(&throttled.writes),
        "the throttle must re-save, and rarely: {throttled:?}"
    );
}
