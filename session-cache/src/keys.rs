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
    /// `"<KEY_PREFIX>:<VERSION>:"`, made once: every cache call builds a key, and formatting the
    /// version each time cost more than the rest of making it.
    head: String,
}

impl Default for KeyFunction {
    /// Django's defaults: `KEY_PREFIX = ""`, `VERSION = 1`.
    fn default() -> Self {
        KeyFunction::from_parts(String::new(), 1)
    }
}

impl KeyFunction {
    fn from_parts(key_prefix: String, version: i64) -> Self {
        let head = format!("{key_prefix}:{version}:");
        KeyFunction {
            key_prefix,
            version,
            head,
        }
    }

    /// Sets `KEY_PREFIX`.
    pub fn with_key_prefix(self, key_prefix: impl Into<String>) -> Self {
        Self::from_parts(key_prefix.into(), self.version)
    }

    /// Sets `VERSION`.
    pub fn with_version(self, version: i64) -> Self {
        Self::from_parts(self.key_prefix, version)
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
        let mut out = String::with_capacity(self.head.len() + key.len());
        out.push_str(&self.head);
        out.push_str(key);
        out
    }
}

impl fmt::Debug for KeyFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}:{}:<key>\"", self.key_prefix, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_django_make_key_after_any_change() {
        let keys = KeyFunction::default();
        assert_eq!(keys.make_key("k"), ":1:k");
        assert_eq!(keys.make_key(""), ":1:");
        let keys = keys.with_version(-7).with_key_prefix("p:q");
        assert_eq!(keys.make_key("k"), "p:q:-7:k");
        assert_eq!(
            keys,
            KeyFunction::default()
                .with_key_prefix("p:q")
                .with_version(-7)
        );
        assert_eq!(format!("{keys:?}"), "\"p:q:-7:<key>\"");
    }
}
