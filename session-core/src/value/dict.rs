//! [`Dict`]: a Python `dict` of `str` keys, in insertion order.

use std::fmt;
use std::hash::BuildHasher;
use std::iter::FusedIterator;

use hashbrown::HashTable;

use super::{Str, Value, recycle};

/// Up to this many entries a dict is searched front to back; beyond it, it keeps a hash index.
///
/// Session dicts are mostly small (a cart line item has four keys, a session a handful): a scan of
/// a few short keys beats hashing them, and a dict without an index is one allocation instead of
/// two. Large dicts still find keys in constant time.
const SCAN_LIMIT: usize = 12;

/// An insertion-ordered dict of string keys, like a Python `dict` (and like Django's session data).
///
/// The API follows `std`'s and `indexmap`'s maps: [`insert`](Dict::insert) keeps a replaced key at
/// its first position (as Python does), [`remove`](Dict::remove) keeps the order of the rest (Django's
/// JSON output depends on it), iteration is in insertion order, and `==` ignores order (as Python's
/// `==` does; [`dicts_identical`](super::dicts_identical) compares the order too).
///
/// Dropping a dict of up to 8 entries leaves its memory with the thread (up to 256 KiB per
/// thread), for the next dict that thread decodes or clones: decoding a session whose previous
/// one was dropped on the same thread, as a request's is, allocates almost nothing.
///
/// ```
/// use session_core::value::{Dict, Value};
///
/// let mut cart = Dict::new();
/// cart.insert("sku", Value::from("SKU-000042"));
/// cart.insert("qty", Value::from(2));
/// cart.insert("sku", Value::from("SKU-000043")); // replaced in place
/// assert_eq!(cart.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["sku", "qty"]);
/// assert_eq!(cart.get("qty"), Some(&Value::from(2)));
/// assert_eq!(cart["sku"].as_str(), Some("SKU-000043"));
/// ```
#[derive(Default)]
pub struct Dict {
    entries: Vec<(Str, Value)>,
    /// Positions in `entries` by key hash, once the dict has more than [`SCAN_LIMIT`] entries.
    index: Option<Box<KeyIndex>>,
}

/// Positions of a list's entries by their `Str` keys' hashes: the index of a [`Dict`] past
/// [`SCAN_LIMIT`] entries, and of other lists keyed the same way (the changes a session records).
#[derive(Clone)]
pub(crate) struct KeyIndex {
    table: HashTable<usize>,
    /// Seeded per index, so keys chosen to collide cannot be prepared in advance.
    hasher: foldhash::fast::RandomState,
}

impl KeyIndex {
    pub(crate) fn build<T>(entries: &[(Str, T)]) -> Box<KeyIndex> {
        let hasher = foldhash::fast::RandomState::default();
        let mut table = HashTable::with_capacity(entries.len());
        for (position, (key, _)) in entries.iter().enumerate() {
            let hash = hasher.hash_one(key.as_str());
            table.insert_unique(hash, position, |&i| {
                entries
                    .get(i)
                    .map_or(0, |(k, _)| hasher.hash_one(k.as_str()))
            });
        }
        Box::new(KeyIndex { table, hasher })
    }

    /// Records that `key`, absent from `entries` (all indexed), goes at `position`.
    pub(crate) fn insert_new<T>(&mut self, entries: &[(Str, T)], key: &str, position: usize) {
        let hash = self.hasher.hash_one(key);
        let hasher = &self.hasher;
        self.table.insert_unique(hash, position, |&i| {
            entries
                .get(i)
                .map_or(0, |(k, _)| hasher.hash_one(k.as_str()))
        });
    }
}

/// Appends an entry whose key is known to be absent from `entries`, keeping `index` in step:
/// the entry is indexed when there is an index, and the index is built once the list passes
/// [`SCAN_LIMIT`].
#[inline]
pub(crate) fn push_unique<T>(
    entries: &mut Vec<(Str, T)>,
    index: &mut Option<Box<KeyIndex>>,
    key: Str,
    value: T,
) {
    let position = entries.len();
    if let Some(index) = index {
        index.insert_new(entries, key.as_str(), position);
        entries.push((key, value));
    } else {
        entries.push((key, value));
        if entries.len() > SCAN_LIMIT {
            *index = Some(KeyIndex::build(entries));
        }
    }
}

/// The position of `key` in `entries`: looked up in `index` when the list has one, else by a
/// scan from the front.
#[inline]
pub(crate) fn position_of<T>(
    entries: &[(Str, T)],
    index: Option<&KeyIndex>,
    key: &str,
) -> Option<usize> {
    match index {
        Some(index) => {
            let hash = index.hasher.hash_one(key);
            index
                .table
                .find(hash, |&i| {
                    entries.get(i).is_some_and(|(k, _)| k.as_str() == key)
                })
                .copied()
        }
        None => entries.iter().position(|(k, _)| k.as_str() == key),
    }
}

impl Dict {
    /// An empty dict (no allocation).
    pub const fn new() -> Self {
        Dict {
            entries: Vec::new(),
            index: None,
        }
    }

    /// An empty dict with room for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Dict {
            entries: Vec::with_capacity(capacity),
            index: None,
        }
    }

    /// An empty buffer with room for exactly `room` entries, for a reader to collect a dict's
    /// entries in before [`from_parsed`](Self::from_parsed): a dropped dict's buffer when this
    /// thread kept one of that room (see [`recycle`]), else a new one.
    #[inline]
    pub(crate) fn parsed_entries_buffer(room: usize) -> Vec<(Str, Value)> {
        recycle::take(room)
    }

    /// `entries` in a buffer of exactly their room, for a reader that collected them in a buffer
    /// of guessed room (see [`parsed_entries_buffer`](Self::parsed_entries_buffer)); the other
    /// buffer is kept for the next dict when it is small.
    #[inline]
    pub(crate) fn fit_parsed_entries(mut entries: Vec<(Str, Value)>) -> Vec<(Str, Value)> {
        if entries.len() == entries.capacity() {
            return entries;
        }
        if !recycle::may_keep(entries.len()) {
            entries.shrink_to_fit();
            return entries;
        }
        let mut fitted = recycle::take(entries.len());
        fitted.append(&mut entries);
        recycle::keep(entries);
        fitted
    }

    /// A dict of parsed entries, in order, applying Python's rule for a repeated key: the last
    /// value wins, at the first occurrence's position (as `json.loads` and unpickling do).
    ///
    /// Parsers collect an object's entries first and build its dict once, at its final size: for
    /// a small dict that is the one allocation it needs, with no per-entry insert.
    ///
    /// Inlined, so that the parser builds the `Dict` (and the `Value` around it) in place rather
    /// than copying one returned through memory (see `json::push_default`); the work is out of
    /// line.
    #[inline(always)]
    pub(crate) fn from_parsed(entries: Vec<(Str, Value)>) -> Dict {
        let may_repeat = Dict::keys_may_repeat(&entries);
        Dict::from_checked_parsed(entries, may_repeat)
    }

    /// [`from_parsed`](Self::from_parsed) for a parser that has asked
    /// [`keys_may_repeat`](Self::keys_may_repeat) already, before moving the entries into a
    /// buffer of their exact room: read where they were parsed, the keys cost no wait, where read
    /// right after a copy they waited for it (6 % of a 32 KB decode).
    #[inline(always)]
    pub(crate) fn from_checked_parsed(mut entries: Vec<(Str, Value)>, may_repeat: bool) -> Dict {
        if may_repeat {
            if entries.len() > SCAN_LIMIT {
                return Dict::indexed_from_parsed(entries);
            }
            Dict::drop_repeated_keys(&mut entries);
        }
        Dict {
            entries,
            index: None,
        }
    }

    /// Whether two of these keys may be the same: `false` means they all differ (see
    /// [`KeyPrints`]). More entries than a scan serves always answer `true` (they are indexed
    /// instead).
    #[inline]
    pub(crate) fn keys_may_repeat(entries: &[(Str, Value)]) -> bool {
        let mut prints = KeyPrints::new();
        for (key, _) in entries.iter().take(SCAN_LIMIT + 1) {
            prints.add(key);
        }
        prints.may_repeat()
    }

    /// [`from_parsed`](Self::from_parsed) for more entries than a scan serves.
    #[inline(never)]
    fn indexed_from_parsed(entries: Vec<(Str, Value)>) -> Dict {
        let count = entries.len();
        let mut dict = Dict::with_capacity(count);
        for (key, value) in entries {
            dict.insert(key, value);
        }
        if dict.len() < count {
            dict.shrink_to_fit();
        }
        dict
    }

    /// Applies the repeated-key rule to a few parsed entries by scanning: a later entry's value
    /// replaces the first one's, and the later entry goes.
    #[inline(never)]
    fn drop_repeated_keys(entries: &mut Vec<(Str, Value)>) {
        let mut i = 1;
        while i < entries.len() {
            let (earlier, rest) = entries.split_at_mut(i);
            let repeated = rest.first_mut().and_then(|(key, value)| {
                let first = earlier.iter_mut().find(|(k, _)| same_key(k, key))?;
                first.1 = std::mem::take(value);
                Some(())
            });
            if repeated.is_some() {
                entries.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// How many entries the dict holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// How many entries the dict has room for without reallocating.
    pub fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// Whether the dict is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The position of `key`, if present.
    pub fn get_index_of(&self, key: &str) -> Option<usize> {
        position_of(&self.entries, self.index.as_deref(), key)
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let position = self.get_index_of(key)?;
        self.entries.get(position).map(|(_, v)| v)
    }

    /// The value under `key`, to change in place.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let position = self.get_index_of(key)?;
        self.entries.get_mut(position).map(|(_, v)| v)
    }

    /// The stored key and its value.
    pub fn get_key_value(&self, key: &str) -> Option<(&Str, &Value)> {
        let position = self.get_index_of(key)?;
        self.get_index(position)
    }

    /// The entry at `position` (in insertion order).
    pub fn get_index(&self, position: usize) -> Option<(&Str, &Value)> {
        self.entries.get(position).map(|(k, v)| (k, v))
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get_index_of(key).is_some()
    }

    /// Sets `key` to `value`; returns the value it replaces. A new key goes last, a present one
    /// keeps its position (as in Python).
    pub fn insert(&mut self, key: impl Into<Str>, value: Value) -> Option<Value> {
        let key = key.into();
        if let Some(position) = self.get_index_of(&key) {
            let slot = self.entries.get_mut(position)?;
            return Some(std::mem::replace(&mut slot.1, value));
        }
        self.push_new(key, value);
        None
    }

    /// Appends an entry whose key is known to be absent.
    fn push_new(&mut self, key: Str, value: Value) {
        push_unique(&mut self.entries, &mut self.index, key, value);
    }

    /// Removes `key`, keeping the order of the other entries; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.remove_entry(key).map(|(_, v)| v)
    }

    /// Removes `key`, keeping the order of the other entries; returns the stored key and value.
    pub fn remove_entry(&mut self, key: &str) -> Option<(Str, Value)> {
        let position = self.get_index_of(key)?;
        if let Some(index) = &mut self.index {
            let hash = index.hasher.hash_one(key);
            if let Ok(found) = index.table.find_entry(hash, |&i| i == position) {
                found.remove();
            }
            // Every entry after the removed one moves up by one.
            for i in index.table.iter_mut() {
                if *i > position {
                    *i -= 1;
                }
            }
        }
        Some(self.entries.remove(position))
    }

    /// Keeps only the entries for which `keep` answers true, in their order.
    pub fn retain(&mut self, mut keep: impl FnMut(&Str, &mut Value) -> bool) {
        let before = self.entries.len();
        self.entries.retain_mut(|(k, v)| keep(k, v));
        if self.entries.len() != before && self.index.is_some() {
            self.index = Some(KeyIndex::build(&self.entries));
        }
    }

    /// Removes every entry (keeping the room).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.index = None;
    }

    /// Frees room kept for entries that are not there.
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
    }

    /// The entries, in insertion order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.entries.iter())
    }

    /// The entries with their values changeable, in insertion order.
    pub fn iter_mut(&mut self) -> IterMut<'_> {
        IterMut(self.entries.iter_mut())
    }

    /// The keys, in insertion order.
    pub fn keys(&self) -> Keys<'_> {
        Keys(self.entries.iter())
    }

    /// The values, in insertion order.
    pub fn values(&self) -> Values<'_> {
        Values(self.entries.iter())
    }

    /// The values, changeable, in insertion order.
    pub fn values_mut(&mut self) -> ValuesMut<'_> {
        ValuesMut(self.entries.iter_mut())
    }

    /// The first entry.
    pub fn first(&self) -> Option<(&Str, &Value)> {
        self.get_index(0)
    }

    /// The last entry.
    pub fn last(&self) -> Option<(&Str, &Value)> {
        self.entries.last().map(|(k, v)| (k, v))
    }
}

impl PartialEq for Dict {
    /// Python's `==`: the same keys with equal values, in any order.
    fn eq(&self, other: &Dict) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl fmt::Debug for Dict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl std::ops::Index<&str> for Dict {
    type Output = Value;

    /// The value under `key`.
    ///
    /// # Panics
    /// If `key` is absent; use [`Dict::get`] for data you did not write yourself.
    fn index(&self, key: &str) -> &Value {
        match self.get(key) {
            Some(value) => value,
            None => panic!("key {key:?} is not in the dict"),
        }
    }
}

impl std::ops::IndexMut<&str> for Dict {
    /// The value under `key`, to change in place.
    ///
    /// # Panics
    /// If `key` is absent; use [`Dict::get_mut`] for data you did not write yourself.
    fn index_mut(&mut self, key: &str) -> &mut Value {
        match self.get_mut(key) {
            Some(value) => value,
            None => panic!("key {key:?} is not in the dict"),
        }
    }
}

impl<K: Into<Str>, V: Into<Value>> FromIterator<(K, V)> for Dict {
    /// Later values of a repeated key replace earlier ones at the first position (as Python's
    /// `dict(pairs)` does).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut dict = Dict::with_capacity(iter.size_hint().0);
        dict.extend(iter);
        dict
    }
}

impl<K: Into<Str>, V: Into<Value>> Extend<(K, V)> for Dict {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (key, value) in iter {
            self.insert(key, value.into());
        }
    }
}

impl<K: Into<Str>, V: Into<Value>, const N: usize> From<[(K, V); N]> for Dict {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

/// The entries of a [`Dict`], in insertion order.
#[derive(Clone, Debug)]
pub struct Iter<'a>(std::slice::Iter<'a, (Str, Value)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a Str, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl ExactSizeIterator for Iter<'_> {}
impl FusedIterator for Iter<'_> {}

/// The entries of a [`Dict`] with changeable values, in insertion order.
#[derive(Debug)]
pub struct IterMut<'a>(std::slice::IterMut<'a, (Str, Value)>);

impl<'a> Iterator for IterMut<'a> {
    type Item = (&'a Str, &'a mut Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (&*k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for IterMut<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (&*k, v))
    }
}

impl ExactSizeIterator for IterMut<'_> {}
impl FusedIterator for IterMut<'_> {}

/// The keys of a [`Dict`], in insertion order.
#[derive(Clone, Debug)]
pub struct Keys<'a>(std::slice::Iter<'a, (Str, Value)>);

impl<'a> Iterator for Keys<'a> {
    type Item = &'a Str;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, _)| k)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Keys<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, _)| k)
    }
}

impl ExactSizeIterator for Keys<'_> {}
impl FusedIterator for Keys<'_> {}

/// The values of a [`Dict`], in insertion order.
#[derive(Clone, Debug)]
pub struct Values<'a>(std::slice::Iter<'a, (Str, Value)>);

impl<'a> Iterator for Values<'a> {
    type Item = &'a Value;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(_, v)| v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Values<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(_, v)| v)
    }
}

impl ExactSizeIterator for Values<'_> {}
impl FusedIterator for Values<'_> {}

/// The values of a [`Dict`], changeable, in insertion order.
#[derive(Debug)]
pub struct ValuesMut<'a>(std::slice::IterMut<'a, (Str, Value)>);

impl<'a> Iterator for ValuesMut<'a> {
    type Item = &'a mut Value;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(_, v)| v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for ValuesMut<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(_, v)| v)
    }
}

impl ExactSizeIterator for ValuesMut<'_> {}
impl FusedIterator for ValuesMut<'_> {}

/// The entries of a [`Dict`], owned, in insertion order.
#[derive(Debug)]
pub struct IntoIter(std::vec::IntoIter<(Str, Value)>);

impl Iterator for IntoIter {
    type Item = (Str, Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for IntoIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back()
    }
}

impl ExactSizeIterator for IntoIter {}
impl FusedIterator for IntoIter {}

impl IntoIterator for Dict {
    type Item = (Str, Value);
    type IntoIter = IntoIter;

    fn into_iter(mut self) -> IntoIter {
        IntoIter(std::mem::take(&mut self.entries).into_iter())
    }
}

/// A clone's buffer is a kept one when the thread has one of its room (see
/// `value/recycle.rs`), so that sessions cloned out of a store and dropped after the request
/// reuse the same buffers.
impl Clone for Dict {
    fn clone(&self) -> Self {
        let mut entries = recycle::take(self.entries.len());
        entries.extend(self.entries.iter().cloned());
        Dict {
            entries,
            index: self.index.clone(),
        }
    }
}

/// A small dict's buffer goes back to its thread for the next dict a reader builds (see
/// `value/recycle.rs`), once its entries are dropped.
impl Drop for Dict {
    fn drop(&mut self) {
        if recycle::may_keep(self.entries.capacity()) {
            self.entries.clear();
            recycle::keep(std::mem::take(&mut self.entries));
        }
    }
}

impl<'a> IntoIterator for &'a Dict {
    type Item = (&'a Str, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Dict {
    type Item = (&'a Str, &'a mut Value);
    type IntoIter = IterMut<'a>;

    fn into_iter(self) -> IterMut<'a> {
        self.iter_mut()
    }
}

impl serde::Serialize for Dict {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for Dict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Dict(dict) => Ok(dict),
            other => Err(serde::de::Error::invalid_type(
                serde::de::Unexpected::Other(other.type_name()),
                &"a dict",
            )),
        }
    }
}

/// Whether two keys are equal, with their prints ([`key_print`]: length, first and last byte)
/// compared before the bytes themselves: the keys of one small object nearly always differ
/// there, and that spares a `memcmp` call per pair.
#[inline]
fn same_key(a: &str, b: &str) -> bool {
    key_print(a) == key_print(b) && a == b
}

/// The prints ([`key_print`]) of a parsed object's keys, which tell whether two of them may be the
/// same: each key's length and end bytes, compared as integers, so only an object with two keys
/// alike in all three (rare) is scanned key by key.
///
/// The JSON reader adds each key as it reads it, from the input's bytes: reading the keys back
/// from the entries just written waited for those writes to complete (a failed store forward:
/// up to 12 % of a 32 KB decode's samples).
pub(crate) struct KeyPrints {
    prints: [u64; SCAN_LIMIT],
    count: usize,
}

impl KeyPrints {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        KeyPrints {
            prints: [0; SCAN_LIMIT],
            count: 0,
        }
    }

    /// Counts the next entry's key (every entry's, in order, repeated keys too).
    #[inline(always)]
    pub(crate) fn add(&mut self, key: &str) {
        if let Some(print) = self.prints.get_mut(self.count) {
            *print = key_print(key);
        }
        self.count += 1;
    }

    /// Whether two of the keys may be the same: `false` means they all differ. More keys than a
    /// scan serves always answer `true` (their dict is indexed instead).
    #[inline]
    pub(crate) fn may_repeat(&self) -> bool {
        let Some(prints) = self.prints.get(..self.count) else {
            return true;
        };
        (1..prints.len()).any(|i| prints[..i].contains(&prints[i]))
    }
}

/// What [`same_key`] compares first, as one integer: keys with different prints differ.
#[inline]
fn key_print(key: &str) -> u64 {
    let bytes = key.as_bytes();
    let ends = match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => u64::from(first) << 8 | u64::from(last),
        _ => 0,
    };
    (bytes.len() as u64) << 16 | ends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(dict: &Dict) -> Vec<&str> {
        dict.keys().map(Str::as_str).collect()
    }

    /// Small and large dicts take different paths (scan, index): every behaviour is pinned at
    /// both sizes, across the limit.
    fn sizes() -> [usize; 4] {
        [3, SCAN_LIMIT, SCAN_LIMIT + 1, 100]
    }

    fn numbered(n: usize) -> Dict {
        (0..n)
            .map(|i| (format!("k{i}"), Value::from(i as i64)))
            .collect()
    }

    #[test]
    fn a_clone_is_equal_in_order_and_exactly_sized_at_every_size() {
        for n in sizes() {
            let mut dict = numbered(n);
            dict.remove("k1");
            let clone = dict.clone();
            assert!(super::super::dicts_identical(&dict, &clone));
            assert_eq!(clone.capacity(), n - 1);
            assert_eq!(
                clone.get(&format!("k{}", n - 1)),
                Some(&Value::from(n as i64 - 1))
            );
            assert_eq!(clone.get("k1"), None);
        }
    }

    #[test]
    fn finds_every_key_at_every_size() {
        for n in sizes() {
            let dict = numbered(n);
            assert_eq!(dict.len(), n);
            for i in 0..n {
                assert_eq!(
                    dict.get(&format!("k{i}")),
                    Some(&Value::from(i as i64)),
                    "n={n}"
                );
                assert_eq!(dict.get_index_of(&format!("k{i}")), Some(i));
            }
            assert_eq!(dict.get("absent"), None);
            assert!(!dict.contains_key("absent"));
        }
    }

    #[test]
    fn a_replaced_key_keeps_its_first_position() {
        for n in sizes() {
            let mut dict = numbered(n);
            assert_eq!(dict.insert("k0", Value::from("new")), Some(Value::from(0)));
            assert_eq!(dict.len(), n);
            assert_eq!(keys(&dict)[0], "k0");
            assert_eq!(dict["k0"], Value::from("new"));
        }
    }

    #[test]
    fn removing_keeps_the_order_of_the_rest_and_lookups_stay_right() {
        for n in sizes() {
            let mut dict = numbered(n);
            assert_eq!(dict.remove("k1"), Some(Value::from(1)));
            assert_eq!(dict.remove("k1"), None);
            let expected: Vec<String> = (0..n)
                .filter(|&i| i != 1)
                .map(|i| format!("k{i}"))
                .collect();
            assert_eq!(keys(&dict), expected);
            for (position, key) in expected.iter().enumerate() {
                assert_eq!(dict.get_index_of(key), Some(position), "n={n} {key}");
            }
            dict.insert("k1", Value::from(1));
            assert_eq!(keys(&dict).last(), Some(&"k1"));
            assert_eq!(dict.get("k1"), Some(&Value::from(1)));
        }
    }

    #[test]
    fn retain_and_clear_keep_lookups_right() {
        for n in sizes() {
            let mut dict = numbered(n);
            dict.retain(|k, _| k.ends_with('0') || k.ends_with('5'));
            for (position, key) in keys(&dict).iter().enumerate() {
                assert_eq!(dict.get_index_of(key), Some(position));
            }
            assert!(dict.get("k1").is_none());
            dict.clear();
            assert!(dict.is_empty());
            assert!(dict.get("k0").is_none());
            dict.insert("a", Value::from(1));
            assert_eq!(dict["a"], Value::from(1));
        }
    }

    #[test]
    fn growing_past_the_scan_limit_and_back_keeps_every_key() {
        let mut dict = Dict::new();
        for i in 0..40 {
            dict.insert(format!("k{i}"), Value::from(i));
        }
        for i in (0..40).step_by(2) {
            dict.remove(&format!("k{i}"));
        }
        for i in 0..40 {
            assert_eq!(dict.contains_key(&format!("k{i}")), i % 2 == 1, "k{i}");
        }
        assert_eq!(dict.len(), 20);
    }

    #[test]
    fn parsed_entries_follow_pythons_rule_for_repeated_keys() {
        for n in sizes() {
            let mut entries: Vec<(Str, Value)> = (0..n)
                .map(|i| (Str::from(format!("k{i}")), Value::from(i as i64)))
                .collect();
            entries.push(("k0".into(), Value::from("last")));
            entries.push(("k0".into(), Value::from("really last")));
            let dict = Dict::from_parsed(entries);
            assert_eq!(dict.len(), n, "n={n}");
            assert_eq!(keys(&dict)[0], "k0");
            assert_eq!(dict["k0"], Value::from("really last"));
            assert_eq!(dict.get_index_of(&format!("k{}", n - 1)), Some(n - 1));
        }
    }

    /// Keys that agree in length, first and last byte (what the scan compares first) are still
    /// told apart by their middle, and empty keys repeat like any other.
    #[test]
    fn parsed_keys_alike_at_both_ends_stay_distinct() {
        let entries: Vec<(Str, Value)> = [
            ("abc", 1),
            ("axc", 2),
            ("", 3),
            ("abc", 4),
            ("a", 5),
            ("", 6),
        ]
        .into_iter()
        .map(|(k, v)| (Str::from(k), Value::from(v)))
        .collect();
        let dict = Dict::from_parsed(entries);
        assert_eq!(keys(&dict), ["abc", "axc", "", "a"]);
        assert_eq!(dict["abc"], Value::from(4));
        assert_eq!(dict["axc"], Value::from(2));
        assert_eq!(dict[""], Value::from(6));
    }

    /// Every size the scan serves, with one key repeated at every pair of positions: the
    /// result is what inserting the entries one by one gives (Python's rule), so the quick
    /// integer check cannot miss a repeat wherever it sits.
    #[test]
    fn a_repeated_key_is_found_at_every_pair_of_positions() {
        for len in 2..=SCAN_LIMIT {
            for earlier in 0..len {
                for later in earlier + 1..len {
                    let key = |i: usize| {
                        let i = if i == later { earlier } else { i };
                        format!("key{i:02}")
                    };
                    let entries: Vec<(Str, Value)> = (0..len)
                        .map(|i| (Str::from(key(i).as_str()), Value::from(i as i64)))
                        .collect();
                    let mut expected = Dict::new();
                    for (k, v) in entries.clone() {
                        expected.insert(k, v);
                    }
                    let dict = Dict::from_parsed(entries);
                    assert!(
                        crate::value::dicts_identical(&dict, &expected),
                        "{len} entries, {earlier} repeated at {later}"
                    );
                    assert_eq!(dict.len(), len - 1);
                }
            }
        }
    }

    #[test]
    fn equality_ignores_order_like_python() {
        let a: Dict = [("x", 1), ("y", 2)].into();
        let b: Dict = [("y", 2), ("x", 1)].into();
        let c: Dict = [("x", 1), ("y", 3)].into();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(!super::super::dicts_identical(&a, &b));
    }

    #[test]
    fn values_change_in_place() {
        let mut dict: Dict = [("a", 1), ("b", 2)].into();
        for value in dict.values_mut() {
            *value = Value::from(value.as_i64().unwrap_or(0) * 10);
        }
        if let Some(v) = dict.get_mut("a") {
            *v = Value::from("changed");
        }
        assert_eq!(
            format!("{dict:?}"),
            r#"{"a": Str("changed"), "b": Int(20)}"#
        );
    }
}
