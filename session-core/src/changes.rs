//! What one request changed in its session: what the `merge` concurrency policy re-applies onto
//! the stored session when another request saved it meanwhile.

use std::fmt;

use crate::expiry::EXPIRY_KEY;
use crate::value::{Dict, KeyIndex, Str, position_of, push_unique};

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
#[derive(Clone, Default)]
pub struct Changes {
    cleared: bool,
    // Recorded on every insert under every policy, so kept cheap: session keys are short and
    // `Str` holds them inline, and a request changes a few of them, so one list searched front
    // to back (one allocation; a hash map took two per request), indexed as a `Dict` is past
    // `SCAN_LIMIT` keys so that many changes stay linear in time.
    keys: Vec<(Str, Change)>,
    index: Option<Box<KeyIndex>>,
}

impl PartialEq for Changes {
    fn eq(&self, other: &Self) -> bool {
        // The index only mirrors `keys`.
        self.cleared == other.cleared && self.keys == other.keys
    }
}

impl Eq for Changes {}

impl fmt::Debug for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Changes")
            .field("cleared", &self.cleared)
            .field("keys", &KeysDebug(&self.keys))
            .finish()
    }
}

/// The changed keys as a map, as `Debug` showed them when they were kept in one.
struct KeysDebug<'a>(&'a [(Str, Change)]);

impl fmt::Debug for KeysDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(key, change)| (key, change)))
            .finish()
    }
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
        let position = self.position(key)?;
        self.keys.get(position).map(|(_, change)| *change)
    }

    fn position(&self, key: &str) -> Option<usize> {
        position_of(&self.keys, self.index.as_deref(), key)
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
        self.cleared || self.position(EXPIRY_KEY).is_some()
    }

    pub(crate) fn set(&mut self, key: &str) {
        self.record(key, Change::Set);
    }

    pub(crate) fn removed(&mut self, key: &str) {
        self.record(key, Change::Removed);
    }

    fn record(&mut self, key: &str, change: Change) {
        if let Some(position) = self.position(key) {
            if let Some((_, held)) = self.keys.get_mut(position) {
                *held = change;
            }
            return;
        }
        push_unique(&mut self.keys, &mut self.index, Str::from(key), change);
    }

    pub(crate) fn clear(&mut self) {
        self.cleared = true;
        self.keys.clear();
        self.index = None;
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
        for (key, _) in &self.keys {
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
    fn many_changed_keys_are_each_recorded_once_in_first_changed_order() {
        let mut changes = Changes::default();
        let keys: Vec<String> = (0..100).map(|i| format!("key{i}")).collect();
        for key in &keys {
            changes.set(key);
        }
        // Changed again, past the scan limit and before it: recorded in place.
        for key in keys.iter().step_by(3) {
            changes.removed(key);
        }
        changes.set(EXPIRY_KEY);
        assert_eq!(changes.iter().count(), keys.len() + 1);
        for (i, ((key, change), expected)) in changes.iter().zip(&keys).enumerate() {
            assert_eq!(key, expected);
            let expected = if i % 3 == 0 {
                Change::Removed
            } else {
                Change::Set
            };
            assert_eq!(
                (change, changes.get(key)),
                (expected, Some(expected)),
                "{key}"
            );
        }
        assert!(changes.expiry_changed());
        assert_eq!(changes.get("key100"), None);
        let copy = changes.clone();
        changes.clear();
        assert!(changes.iter().next().is_none() && changes.get("key50").is_none());
        changes.set("key50");
        assert_eq!(changes.get("key50"), Some(Change::Set));
        assert_ne!(changes, copy);
        assert_eq!(
            format!("{changes:?}"),
            r#"Changes { cleared: true, keys: {"key50": Set} }"#
        );
    }

    #[test]
    fn the_expiry_is_a_key_like_any_other() {
        let mut changes = Changes::default();
        assert!(changes.is_empty() && !changes.expiry_changed());
        changes.set(EXPIRY_KEY);
        assert!(changes.expiry_changed());
    }
}
