//! The djsession demo site: what Django's sessions look like from axum.
//!
//! ```sh
//! cargo run -p session-demo -- --insecure-dev-secret          # SQLite file, http://127.0.0.1:8000
//! SECRET_KEY=... cargo run -p session-demo -- --store memory
//! SECRET_KEY=... DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo run -p session-demo -- --store postgres
//! ```
//!
//! | route | what it does |
//! |---|---|
//! | `GET /` | counts visits in the session, shows who is logged in, and the forms below |
//! | `POST /login` | `username` (anything; there are no passwords), `remember=1` optional: cycles the session key, keeps the data, stores the name |
//! | `POST /logout` | flushes the session: the record is deleted and the cookie with it |
//! | `POST /remember` | `remember=1`: a fixed expiry 30 days ahead (`set_expiry`); otherwise the cookie lasts until the browser closes |
//! | `GET /session` | the session's contents and expiry (`get_expiry_age`, `get_expiry_date`, `get_expire_at_browser_close`); changes nothing |
//! | `GET /healthz` | `ok`, without touching any session |
//! | `GET /metrics` | with `--metrics`: Prometheus text of djsession's metrics ([`session_core::metrics`]), without touching any session |
//!
//! Every page is plain server-rendered HTML; everything printed is escaped ([`html::escape`]) and
//! a Content-Security-Policy forbids scripts. The POST forms are protected against cross-site
//! requests by the session cookie's `SameSite=Lax` and a per-session token ([`csrf`]).
//!
//! Without `SECRET_KEY` the demo refuses to start unless `--insecure-dev-secret` is given, in
//! debug and release builds alike, so switching to `--release` never changes what is accepted.
//! The development secret is fixed and public ([`options::INSECURE_DEV_SECRET`]), so sessions
//! survive restarts and anyone can forge them.
//!
//! The site is a function of a store and the session settings, so tests drive it in-process:
//!
//! ```
//! use axum::body::Body;
//! use axum::http::{Request, header};
//! use session_core::SessionConfig;
//! use session_demo::{app, stores::OpenedStore};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let site = app(OpenedStore::memory(), SessionConfig::new("a long random secret"))?;
//! let response = site.oneshot(Request::get("/").body(Body::empty())?).await?;
//! assert_eq!(response.status(), 200);
//! let cookie = response.headers()[header::SET_COOKIE].to_str()?;
//! assert!(cookie.starts_with("sessionid=") && cookie.ends_with("; Path=/; SameSite=Lax"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

pub mod csrf;
mod error;
pub mod html;
pub mod options;
pub mod pages;
pub mod stores;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use session_core::SessionConfig;
use session_middleware::SessionLayer;

pub use error::DemoError;
pub use options::{Options, SecretSource, StoreKind};
pub use stores::OpenedStore;

/// The largest request body accepted (the forms send well under 1 KiB).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The demo site on `store`, with the session settings `config`.
///
/// # Errors
/// [`DemoError::Middleware`] when `config` is unusable (an empty secret, a bad cookie name, ...).
pub fn app(store: OpenedStore, config: SessionConfig) -> Result<Router, DemoError> {
    app_with_metrics(store, config, None)
}

/// The latency buckets of `djsession_store_operation_duration_seconds`, in seconds: 50 us (an
/// in-memory load) to 1 s (a database under lock).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.25, 1.0,
];

/// Installs the process-wide Prometheus recorder for `--metrics`, with [`LATENCY_BUCKETS`] for
/// the store latency histogram, and returns the handle that renders it.
///
/// # Errors
/// [`DemoError::Metrics`] when a recorder is already installed.
pub fn install_metrics() -> Result<metrics_exporter_prometheus::PrometheusHandle, DemoError> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(
                session_core::metrics::names::STORE_DURATION.to_owned(),
            ),
            &LATENCY_BUCKETS,
        )
        .and_then(|builder| builder.install_recorder())
        .map_err(|error| DemoError::Metrics(error.to_string()))
}

/// [`app`], also serving `metrics` as Prometheus text at `GET /metrics` when given.
///
/// # Errors
/// As [`app`].
pub fn app_with_metrics(
    store: OpenedStore,
    config: SessionConfig,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> Result<Router, DemoError> {
    let layer = SessionLayer::new(store.store, &config)?;
    let site = Arc::new(pages::Site {
        store_description: store.description,
    });
    let router = Router::new()
        .route("/", get(pages::home))
        .route("/session", get(pages::contents))
        .route("/login", post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/remember", post(pages::remember))
        .with_state(site)
        .layer(layer)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Outside the session layer: health checks never create or read a session.
        .route("/healthz", get(pages::healthz));
    Ok(match metrics {
        // Outside the session layer too: a scraper has no session.
        Some(handle) => router.route("/metrics", get(move || std::future::ready(handle.render()))),
        None => router,
    })
}
