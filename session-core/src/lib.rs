//! Django's session framework, in Rust: the core.
//!
//! This crate holds what every session store shares:
//!
//! - [`Session`], the per-request handle with Django's `SessionBase` semantics (lazy loading, the
//!   `accessed`/`modified` flags, `cycle_key`, `flush`, expiry, the test cookie);
//! - [`SessionKey`], validated on the way in and generated from the OS CSPRNG;
//! - [`SessionStore`], the async trait each backend implements (`session-db`, `session-cache`,
//!   `session-file`, `session-cookie`, `session-cached-db`, and [`MemoryStore`] here);
//! - [`SessionConfig`], Django's session settings with Django's defaults;
//! - [`SessionCodec`], which signs and verifies stored data exactly as Django does;
//! - the [`serializer`]s (JSON byte-identical to Django's, MessagePack, safe pickle) and the
//!   [`Value`] model they share;
//! - [`metrics`] and tracing spans for every store call, and [`maintenance`] (clearing expired
//!   sessions, once or periodically).
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{MemoryStore, Session, SessionConfig};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = Arc::new(MemoryStore::new());
//! let config = Arc::new(SessionConfig::new("a long random secret"));
//!
//! let session = Session::new(store.clone(), config.clone(), None);
//! let visits: u32 = session.get("visits").await?.unwrap_or(0);
//! session.insert("visits", &(visits + 1)).await?;
//! session.save().await?;
//!
//! let again = Session::new(store, config, session.key().as_ref().map(|k| k.as_str()));
//! assert_eq!(again.get::<u32>("visits").await?, Some(1));
//! # Ok::<(), session_core::Error>(())
//! # }).unwrap();
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
mod axum;
mod changes;
pub mod codec;
pub mod config;
mod error;
pub mod expiry;
mod key;
pub mod maintenance;
mod memory;
pub mod metrics;
pub mod serializer;
mod session;
pub mod store;
pub mod value;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use axum::MissingSessionLayer;
pub use changes::{Change, Changes};
pub use codec::SessionCodec;
pub use config::{ConcurrencyPolicy, ConfigError, SameSite, SessionConfig};
pub use error::{
    BoxError, Error, SESSION_CONFLICT_MESSAGE, SESSION_ERROR_MESSAGE, SESSION_INTERRUPTED_MESSAGE,
};
pub use expiry::Expiry;
pub use key::{GENERATED_KEY_LEN, KEY_ALPHABET, SessionKey, redact};
pub use memory::MemoryStore;
pub use session::{CREATE_ATTEMPTS, Session, TEST_COOKIE_NAME, TEST_COOKIE_VALUE};
pub use store::{
    ClearExpired, KeyKind, LoadedRecord, SaveMode, SessionRecord, SessionStore, SharedRecord,
    StoreCapabilities, Version, VersionedRecord,
};
pub use value::{Dict, Int, Str, Value};

/// Re-exported so users name one crate for secrets, algorithms and the deflate setting.
pub use session_signing::{Algorithm, Deflate, SecretKey};
