//! The refresh scenario: how many writes the throttled sliding expiry saves.
//!
//! Django's `SESSION_SAVE_EVERY_REQUEST` writes every session on every request, even one that only
//! reads it, so that its expiry slides. With
//! [`refresh_fraction`](session_core::SessionConfig::refresh_fraction) above zero an unmodified
//! session is re-saved only once that fraction of its age has passed since its last save. Here
//! `users` browsers each log in once, then keep making requests that only read their session,
//! through the middleware's own rules ([`SessionRules`]), with `save_every_request` on; the store
//! counts the writes. The same run is made with the fraction at 0 (Django's rule) and at the
//! fraction given, so the line printed compares the two, and every user's session must still be
//! there at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use session_core::{
    ClearExpired, Dict, Error, LoadedRecord, SaveMode, SessionConfig, SessionKey, SessionRecord,
    SessionStore, SharedRecord, StoreCapabilities, Version, VersionedRecord,
};
use session_middleware::rules::SessionRules;

use crate::SoakError;
use crate::stores::{self, StoreKind, StoreOptions};

/// How a refresh run is shaped.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    /// Browsers, each with a session of its own.
    pub users: usize,
    /// How long each of the two runs lasts.
    pub duration: Duration,
    /// The throttled run's `refresh_fraction`.
    pub fraction: f64,
    /// The session age (`cookie_age`, seconds): short, so the throttled run re-saves within the
    /// run too.
    pub cookie_age: i64,
}

impl Default for RefreshOptions {
    fn default() -> Self {
        RefreshOptions {
            users: 32,
            duration: Duration::from_secs(10),
            fraction: 0.25,
            cookie_age: 20,
        }
    }
}

/// One run's counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshRun {
    /// The `refresh_fraction` of the run.
    pub fraction: f64,
    /// Requests made after the logins.
    pub requests: u64,
    /// Store writes those requests caused.
    pub writes: u64,
}

/// What the two runs on one store did.
#[derive(Debug, Clone)]
pub struct RefreshReport {
    /// The store's name.
    pub store: String,
    /// Django's rule (fraction 0).
    pub every_request: RefreshRun,
    /// The throttled run.
    pub throttled: RefreshRun,
}

impl RefreshReport {
    /// The share of the writes per request the throttle avoided, in percent.
    pub fn saved_percent(&self) -> f64 {
        let rate = |run: &RefreshRun| run.writes as f64 / run.requests.max(1) as f64;
        let django = rate(&self.every_request);
        if django == 0.0 {
            return 0.0;
        }
        100.0 * (1.0 - rate(&self.throttled) / django)
    }
}

impl std::fmt::Display for RefreshReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (django, ours) = (self.every_request, self.throttled);
        write!(
            f,
            "refresh {}: fraction 0 (Django): {} writes for {} requests; fraction {}: {} writes \
             for {} requests; {:.2} % of the writes saved",
            self.store,
            django.writes,
            django.requests,
            ours.fraction,
            ours.writes,
            ours.requests,
            self.saved_percent()
        )
    }
}

/// Runs the scenario on a fresh store of `kind`, once with the fraction at 0 and once throttled.
///
/// # Errors
/// [`SoakError`] when the store cannot be opened, or a request fails, or a session is missing at
/// the end (the throttle must never let a session in use expire).
pub async fn refresh(
    kind: StoreKind,
    config: SessionConfig,
    store_options: &StoreOptions,
    options: &RefreshOptions,
) -> Result<RefreshReport, SoakError> {
    let mut runs = Vec::new();
    for fraction in [0.0, options.fraction] {
        let config = SessionConfig {
            save_every_request: true,
            refresh_fraction: fraction,
            cookie_age: options.cookie_age,
            ..config.clone()
        };
        let opened = stores::open(kind, &config, store_options).await?;
        let counted = Arc::new(CountingWrites::new(opened.store.clone()));
        let run = run_on(counted, &config, options).await;
        opened.close().await?;
        runs.push(run?);
    }
    Ok(RefreshReport {
        store: kind.name().to_owned(),
        every_request: runs[0],
        throttled: runs[1],
    })
}

/// The two phases on one store: logins, then read-only requests until the time is up.
pub async fn run_on(
    store: Arc<CountingWrites>,
    config: &SessionConfig,
    options: &RefreshOptions,
) -> Result<RefreshRun, SoakError> {
    let rules = Arc::new(SessionRules::new(store.clone(), config)?);
    let deadline = Instant::now() + options.duration;
    let mut users = tokio::task::JoinSet::new();
    for user in 0..options.users {
        let rules = rules.clone();
        users.spawn(async move {
            // Log in: the first request stores the user in a new session.
            let request = rules.start(std::iter::empty::<&[u8]>());
            request.session().insert("user", &user).await?;
            let changes = rules.finish(&request, 200).await?;
            let mut cookie = cookie_pair(changes.set_cookie)?;
            let mut requests = 0u64;
            while Instant::now() < deadline {
                let request = rules.start([cookie.as_bytes()]);
                let seen = request.session().get::<usize>("user").await?;
                if seen != Some(user) {
                    return Err(SoakError::Setup(format!(
                        "user {user} found {seen:?} in their session"
                    )));
                }
                let changes = rules.finish(&request, 200).await?;
                if changes.set_cookie.is_some() {
                    cookie = cookie_pair(changes.set_cookie)?;
                }
                requests += 1;
                tokio::task::yield_now().await;
            }
            Ok::<_, SoakError>(requests)
        });
    }
    let logins = options.users as u64;
    let mut requests = 0;
    while let Some(done) = users.join_next().await {
        requests += done.map_err(|e| SoakError::Setup(format!("a user panicked: {e}")))??;
    }
    Ok(RefreshRun {
        fraction: config.refresh_fraction,
        requests,
        writes: store.writes.load(Ordering::Relaxed).saturating_sub(logins),
    })
}

/// `name=value` of a `Set-Cookie` value, as a browser sends it back.
fn cookie_pair(set_cookie: Option<String>) -> Result<String, SoakError> {
    set_cookie
        .and_then(|c| c.split(';').next().map(str::to_owned))
        .ok_or_else(|| SoakError::Setup("a saved session set no cookie".to_owned()))
}

/// A store that counts its writes (every kind of save) and forwards everything.
#[derive(Debug)]
pub struct CountingWrites {
    inner: Arc<dyn SessionStore>,
    /// Writes so far.
    pub writes: AtomicU64,
}

impl CountingWrites {
    /// Counts the writes to `inner`.
    pub fn new(inner: Arc<dyn SessionStore>) -> Self {
        CountingWrites {
            inner,
            writes: AtomicU64::new(0),
        }
    }

    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl SessionStore for CountingWrites {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        self.inner.load(key).await
    }
    async fn load_with_expiry(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        self.inner.load_with_expiry(key).await
    }
    async fn load_shared(&self, key: &SessionKey) -> Result<Option<Arc<Dict>>, Error> {
        self.inner.load_shared(key).await
    }
    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.inner.exists(key).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.wrote();
        self.inner.save(key, record, mode).await
    }
    async fn save_shared(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        self.wrote();
        self.inner.save_shared(key, record, mode).await
    }
    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.inner.delete(key).await
    }
    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.inner.clear_expired().await
    }
    fn key_kind(&self) -> session_core::KeyKind {
        self.inner.key_kind()
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn capabilities(&self) -> StoreCapabilities {
        self.inner.capabilities()
    }
    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        self.inner.load_versioned(key).await
    }
    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, Error> {
        self.wrote();
        self.inner.save_if_unchanged(key, record, expected).await
    }
}
