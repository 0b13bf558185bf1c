//! What the suite runs against.

use std::sync::Arc;

use session_core::{Session, SessionConfig, SessionStore};

/// What a store can do, so behaviours that cannot apply are reported as skipped (with the reason)
/// instead of failing or silently disappearing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// The store keeps records on the server under random keys, so `exists`, must-create conflicts,
    /// deletion by another request and key cycling are observable. False for signed cookies.
    pub server_side_records: bool,
    /// The store enforces a per-session expiry (`set_expiry`). Signed cookies expire only by the
    /// cookie age (Django ticket #19201).
    pub per_session_expiry: bool,
    /// `clear_expired` removes records (database, file, memory); false when the backend expires
    /// them by itself (cache TTL) and answers `NotNeeded`.
    pub clears_expired: bool,
    /// How early (in whole seconds) a record may disappear before its expiry: caches that set TTLs
    /// in whole seconds expire up to one second early, as Django's cache backend does.
    pub early_expiry_seconds: i64,
    /// The store compare-and-swaps (`StoreCapabilities::compare_and_swap`), so the `merge` and
    /// `reject` concurrency behaviours run; the suite checks the store declares exactly this.
    pub compare_and_swap: bool,
}

impl Capabilities {
    /// A server-side store with exact expiry, `clear_expired` and compare-and-swap (database,
    /// file, memory).
    pub const fn server_side() -> Self {
        Capabilities {
            server_side_records: true,
            per_session_expiry: true,
            clears_expired: true,
            early_expiry_seconds: 0,
            compare_and_swap: true,
        }
    }

    /// A cache: server-side records that expire by TTL (to the second), need no clearing and
    /// compare-and-swap.
    pub const fn cache() -> Self {
        Capabilities {
            clears_expired: false,
            early_expiry_seconds: 1,
            ..Self::server_side()
        }
    }

    /// The signed-cookie store: no server-side records, expiry by cookie age only.
    pub const fn signed_cookie() -> Self {
        Capabilities {
            server_side_records: false,
            per_session_expiry: false,
            clears_expired: false,
            early_expiry_seconds: 0,
            compare_and_swap: false,
        }
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Self::server_side()
    }
}

/// A store under test, with the configuration its sessions use and its capabilities; or the
/// reason it could not be set up (a service that is not configured).
#[derive(Debug)]
pub struct Fixture {
    pub(crate) setup: Result<Box<Harness>, String>,
}

impl Fixture {
    /// A store with the suite's standard [`config`](crate::config) and server-side capabilities.
    pub fn new(store: impl SessionStore + 'static) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// A shared store.
    pub fn from_arc(store: Arc<dyn SessionStore>) -> Self {
        Fixture {
            setup: Ok(Box::new(Harness {
                store,
                config: crate::config(),
                capabilities: Capabilities::default(),
            })),
        }
    }

    /// A fixture that could not be set up: every behaviour reports it as skipped (or fails, under
    /// `SESSION_TEST_REQUIRE_SERVICES=1`).
    pub fn skip(reason: impl Into<String>) -> Self {
        Fixture {
            setup: Err(reason.into()),
        }
    }

    /// Uses `config` for the sessions (it must be the configuration the store was built with).
    pub fn with_config(mut self, config: SessionConfig) -> Self {
        if let Ok(harness) = &mut self.setup {
            harness.config = config;
        }
        self
    }

    /// Declares what the store can do.
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        if let Ok(harness) = &mut self.setup {
            harness.capabilities = capabilities;
        }
        self
    }
}

impl<S: SessionStore + 'static> From<S> for Fixture {
    fn from(store: S) -> Self {
        Fixture::new(store)
    }
}

/// What a behaviour gets: the store, its config and capabilities, and sessions on it.
#[derive(Debug, Clone)]
pub struct Harness {
    store: Arc<dyn SessionStore>,
    config: SessionConfig,
    capabilities: Capabilities,
}

impl Harness {
    /// A session as a request presenting `key` would get it.
    pub fn session(&self, key: Option<&str>) -> Session {
        self.session_with(self.config.clone(), key)
    }

    /// A session with other settings (same store).
    pub fn session_with(&self, config: SessionConfig, key: Option<&str>) -> Session {
        Session::new(self.store.clone(), Arc::new(config), key)
    }

    /// The store under test.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The configuration sessions use.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The store's capabilities.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }
}
