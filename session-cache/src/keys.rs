//! How logical cache keys become the keys stored in the backend.

use std::fmt;

/// Django's cache key function: `"<KEY_PREFIX>:<VERSION>:<key>"`.
///
/// Django's cache framework wraps every key it is given, so with default settings the cache session
/// backend's entry for session `abc…` lives at `:1:django.contrib.sessions.cacheabc…`. Use the same
/// `KEY_PREFIX` and `VERSION` as the Django site's `CACHES` entry to share its sessions; give each
/// application its own prefix to keep applications apart in one Redis.
///
/// ```
/// use session_cache::KeyFunction;
///
/// assert_eq!(KeyFunction::default().make_key("k"), ":1:k");
/// let shop = KeyFunction::default().with_key_prefix("shop").with_version(3);
/// assert_eq!(shop.make_key("k"), "shop:3:k");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct KeyFunction {
    key_prefix: String,
    version: i64,
}

impl Default for KeyFunction {
    /// Django's defaults: `KEY_PREFIX = ""`, `VERSION = 1`.
    fn default() -> Self {
        KeyFunction {
            key_prefix: String::new(),
            version: 1,
        }
    }
}

impl KeyFunction {
    /// Sets `KEY_PREFIX`.
    pub fn with_key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.key_prefix = key_prefix.into();
        self
    }

    /// Sets `VERSION`.
    pub fn with_version(mut self, version: i64) -> Self {
        self.version = version;
        self
    }

    /// The configured `KEY_PREFIX`.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The configured `VERSION`.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The key stored in the backend for the logical `key`.
    pub fn make_key(&self, key: &str) -> String {
        use fmt::Write;
        let mut out = String::with_capacity(self.key_prefix.len() + key.len() + 24);
        // Writing to a String cannot fail.
        let _ = write!(out, "{}:{}:{}", self.key_prefix, self.version, key);
        out
    }
}

impl fmt::Debug for KeyFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}:{}:<key>\"", self.key_prefix, self.version)
    }
}
