//! What one request changed in its session: what the `merge` concurrency policy re-applies onto
//! the stored session when another request saved it meanwhile.

use indexmap::IndexMap;

use crate::expiry::EXPIRY_KEY;
use crate::value::{Dict, Str};

/// How one key of the session changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The key was given a value (inserted or overwritten).
    Set,
    /// The key was removed.
    Removed,
}

/// What a [`Session`](crate::Session) changed since it was loaded or last saved: per key set or
/// removed, in the order first touched, and whether it was cleared.
///
/// It is kept beside Django's `modified` flag, which it does not change: `modified` still says
/// whether to save, `Changes` says what the save changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    cleared: bool,
    // Recorded on every insert under every policy, so kept cheap: session keys are short and
    // `Str` holds them inline, and foldhash (seeded per map) hashes them in a few instructions.
    keys: IndexMap<Str, Change, foldhash::fast::RandomState>,
}

impl Changes {
    /// Nothing changed (a `modified` flag set by hand records nothing).
    pub fn is_empty(&self) -> bool {
        !self.cleared && self.keys.is_empty()
    }

    /// The whole session was cleared ([`Session::clear`](crate::Session::clear) or a flush); the
    /// keys listed were changed after that.
    pub fn cleared(&self) -> bool {
        self.cleared
    }

    /// How `key` changed, if it did.
    pub fn get(&self, key: &str) -> Option<Change> {
        self.keys.get(key).copied()
    }

    /// The changed keys, in the order they were first changed.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Change)> {
        self.keys
            .iter()
            .map(|(key, change)| (key.as_str(), *change))
    }

    /// The session's own expiry (`_session_expiry`, set by `set_expiry`) was set or removed, or
    /// the session was cleared (which removes it).
    pub fn expiry_changed(&self) -> bool {
        self.cleared || self.keys.contains_key(EXPIRY_KEY)
    }

    pub(crate) fn set(&mut self, key: &str) {
        self.record(key, Change::Set);
    }

    pub(crate) fn removed(&mut self, key: &str) {
        self.record(key, Change::Removed);
    }

    fn record(&mut self, key: &str, change: Change) {
        match self.keys.get_mut(key) {
            Some(held) => *held = change,
            None => {
                self.keys.insert(Str::from(key), change);
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.cleared = true;
        self.keys.clear();
    }

    /// `stored` with these changes applied: emptied first if the session was cleared, then every
    /// changed key takes its value in `ours` (the data the changes were made to), or is removed
    /// if `ours` no longer has it. Keys kept from `stored` keep their places; new ones follow, in
    /// the order they were first changed.
    pub fn apply(&self, stored: &Dict, ours: &Dict) -> Dict {
        let mut merged = if self.cleared {
            Dict::with_capacity(self.keys.len())
        } else {
            stored.clone()
        };
        for key in self.keys.keys() {
            match ours.get(key) {
                Some(value) => {
                    merged.insert(key.clone(), value.clone());
                }
                None => {
                    merged.remove(key);
                }
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Value;

    fn dict(pairs: &[(&str, i64)]) -> Dict {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect()
    }

    #[test]
    fn only_the_changed_keys_are_taken_from_ours() {
        let stored = dict(&[("a", 1), ("theirs", 2), ("gone", 3)]);
        let ours = dict(&[("a", 10), ("new", 5)]);
        let mut changes = Changes::default();
        changes.set("a");
        changes.removed("gone");
        changes.set("new");
        assert_eq!(
            changes.apply(&stored, &ours),
            dict(&[("a", 10), ("theirs", 2), ("new", 5)])
        );
    }

    #[test]
    fn a_key_set_then_removed_is_removed() {
        let mut changes = Changes::default();
        changes.set("k");
        changes.removed("k");
        assert_eq!(changes.get("k"), Some(Change::Removed));
        assert_eq!(changes.apply(&dict(&[("k", 1)]), &Dict::new()), Dict::new());
    }

    #[test]
    fn a_clear_drops_what_is_stored_and_keeps_what_was_set_after_it() {
        let mut changes = Changes::default();
        changes.set("before");
        changes.clear();
        changes.set("after");
        assert!(changes.cleared() && changes.expiry_changed());
        assert_eq!(changes.get("before"), None);
        let stored = dict(&[("theirs", 1), ("before", 2)]);
        let ours = dict(&[("after", 3)]);
        assert_eq!(changes.apply(&stored, &ours), dict(&[("after", 3)]));
    }

    #[test]
    fn the_expiry_is_a_key_like_any_other() {
        let mut changes = Changes::default();
        assert!(changes.is_empty() && !changes.expiry_changed());
        changes.set(EXPIRY_KEY);
        assert!(changes.expiry_changed());
    }
}
