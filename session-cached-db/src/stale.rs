//! Sessions whose cache entry may be stale: the database changed but the cache could not be told.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use session_core::SessionKey;

/// Keys whose cache entry may hold data the database no longer has, each with the generation of
/// its latest mark.
///
/// A key is marked *before* the store tries to delete its entry and cleared only by a delete (or
/// an overwrite) that started after that mark, so a clear never hides a newer failure: clearing
/// takes the generation it saw and removes the key only if no one marked it again meanwhile.
#[derive(Debug)]
pub(crate) struct StaleKeys {
    keys: Mutex<HashMap<SessionKey, u64>>,
    // Mirrors the map's length so the hot path (nothing stale) never takes the lock.
    len: AtomicUsize,
    next_generation: AtomicU64,
    capacity: usize,
}

/// What marking a key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// Marked with this generation.
    Marked(u64),
    /// Not marked: the set is full.
    Full,
}

impl StaleKeys {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        StaleKeys {
            keys: Mutex::new(HashMap::new()),
            len: AtomicUsize::new(0),
            next_generation: AtomicU64::new(1),
            capacity,
        }
    }

    fn keys(&self) -> MutexGuard<'_, HashMap<SessionKey, u64>> {
        // The map is consistent after every statement, so a panic elsewhere cannot corrupt it.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Marks `key` as possibly stale (again), with a fresh generation.
    pub(crate) fn mark(&self, key: &SessionKey) -> Mark {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let mut keys = self.keys();
        if let Some(current) = keys.get_mut(key) {
            *current = generation;
            return Mark::Marked(generation);
        }
        if keys.len() >= self.capacity {
            return Mark::Full;
        }
        keys.insert(key.clone(), generation);
        self.len.store(keys.len(), Ordering::Release);
        Mark::Marked(generation)
    }

    /// The generation `key` is marked with, if it is marked.
    pub(crate) fn generation(&self, key: &SessionKey) -> Option<u64> {
        if self.is_empty() {
            return None;
        }
        self.keys().get(key).copied()
    }

    /// Unmarks `key` if it still carries `generation`; `true` when it is no longer marked.
    pub(crate) fn clear(&self, key: &SessionKey, generation: u64) -> bool {
        let mut keys = self.keys();
        match keys.get(key) {
            Some(&current) if current == generation => {
                keys.remove(key);
                self.len.store(keys.len(), Ordering::Release);
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// Up to `n` marked keys other than `except`, with their generations.
    pub(crate) fn some(&self, n: usize, except: &SessionKey) -> Vec<(SessionKey, u64)> {
        if self.is_empty() {
            return Vec::new();
        }
        self.keys()
            .iter()
            .filter(|(key, _)| *key != except)
            .take(n)
            .map(|(key, generation)| (key.clone(), *generation))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    fn key(n: u32) -> SessionKey {
        SessionKey::new(format!("key{n:08}")).unwrap()
    }

    #[test]
    fn a_clear_with_an_older_generation_keeps_the_newer_mark() {
        let stale = StaleKeys::with_capacity(10);
        let Mark::Marked(first) = stale.mark(&key(1)) else {
            panic!("not marked")
        };
        let Mark::Marked(second) = stale.mark(&key(1)) else {
            panic!("not marked")
        };
        assert!(second > first);
        assert!(!stale.clear(&key(1), first), "a newer failure must survive");
        assert_eq!(stale.generation(&key(1)), Some(second));
        assert!(stale.clear(&key(1), second));
        assert_eq!(stale.generation(&key(1)), None);
        assert!(stale.is_empty());
    }

    #[test]
    fn clearing_an_unmarked_key_reports_it_unmarked() {
        let stale = StaleKeys::with_capacity(10);
        assert!(stale.clear(&key(1), 7));
        assert!(stale.is_empty());
    }

    #[test]
    fn the_set_is_bounded_but_remarking_a_member_still_works() {
        let stale = StaleKeys::with_capacity(2);
        assert!(matches!(stale.mark(&key(1)), Mark::Marked(_)));
        assert!(matches!(stale.mark(&key(2)), Mark::Marked(_)));
        assert_eq!(stale.mark(&key(3)), Mark::Full);
        assert_eq!(stale.len(), 2);
        assert!(matches!(stale.mark(&key(2)), Mark::Marked(_)));
        assert_eq!(stale.generation(&key(3)), None);
    }

    #[test]
    fn some_skips_the_excepted_key_and_takes_at_most_n() {
        let stale = StaleKeys::with_capacity(10);
        for n in 0..5 {
            stale.mark(&key(n));
        }
        let picked = stale.some(3, &key(0));
        assert_eq!(picked.len(), 3);
        assert!(picked.iter().all(|(k, _)| *k != key(0)));
        assert_eq!(stale.some(10, &key(0)).len(), 4);
    }
}
