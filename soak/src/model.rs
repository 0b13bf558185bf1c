//! What each key must hold, and the checks that turn a wrong read into a named violation.
//!
//! Private sessions (one owner) are checked exactly: the owner knows what it last wrote, so a
//! load must return exactly that. After a failed call whose effect is unknown (a server killed
//! mid-save), the key may hold either the old or the new data, so an expectation is a small set
//! of candidates.
//!
//! Shared sessions (two tabs on one cookie) cannot be predicted exactly, so every write and
//! delete is logged with the logical times it began and ended, and each read is checked against
//! the log: it must show exactly one write's complete data (never a mix), one that was made to
//! this key and not refused, not one that an acknowledged later write had replaced before the
//! read began (last writer wins), and nothing at all once a delete had been acknowledged (no
//! resurrection).

use std::collections::HashMap;

use session_core::value::dicts_identical;
use session_core::{Dict, SessionKey, Value};

use crate::data;
use crate::report::ViolationKind;

/// A failed check: what kind, and what was expected and found.
pub type Mismatch = (ViolationKind, String);

/// What a key of a private session must hold.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The session key.
    pub key: SessionKey,
    /// The data the key may hold: exactly one of these. Empty: the key must be absent.
    pub present: Vec<Dict>,
    /// Whether absence is acceptable too (a delete whose effect is unknown).
    pub absent_ok: bool,
    /// The restarts completed when a write of unknown effect to the key failed, while that write
    /// is unsettled: until a load that began after one more restart completed, a load that
    /// matches does not narrow the candidates (see [`RestartCount`](crate::engine::RestartCount)).
    pub unsettled: Option<u32>,
}

impl Expect {
    /// A live session that must hold exactly `data`.
    pub fn live(key: SessionKey, data: Dict) -> Expect {
        Expect {
            key,
            present: vec![data],
            absent_ok: false,
            unsettled: None,
        }
    }

    /// A deleted key that must load as absent.
    pub fn gone(key: SessionKey) -> Expect {
        Expect {
            key,
            present: Vec::new(),
            absent_ok: true,
            unsettled: None,
        }
    }

    /// A write of unknown effect failed when `restarts` restarts had completed: the key may hold
    /// any of `candidates`, or anything it could hold before if that was still unsettled.
    pub fn unknown_write(&mut self, candidates: Vec<Dict>, restarts: u32) {
        if self.unsettled.is_none() {
            self.present.clear();
        }
        for candidate in candidates {
            if !self.present.iter().any(|c| dicts_identical(c, &candidate)) {
                self.present.push(candidate);
            }
        }
        self.unsettled = Some(restarts);
    }

    /// A delete of unknown effect failed when `restarts` restarts had completed: the key may be
    /// gone, or still hold any of its candidates, until a later restart settles it.
    pub fn unknown_delete(&mut self, restarts: u32) {
        self.absent_ok = true;
        self.unsettled = Some(restarts);
    }

    /// Whether a load that began after `began` completed restarts settles every earlier write.
    pub fn is_settled_for(&self, began: u32) -> bool {
        self.unsettled.is_none_or(|failed| began > failed)
    }

    /// A load that began after `began` completed restarts found `found`, which [`check`] accepted:
    /// the key holds exactly that from now on, unless a write of unknown effect is unsettled, when
    /// every candidate stays.
    ///
    /// [`check`]: Self::check
    pub fn narrow_to(&mut self, found: &Dict, began: u32) {
        if self.is_settled_for(began) {
            self.present = vec![found.clone()];
            self.absent_ok = false;
            self.unsettled = None;
        }
    }

    /// Whether the key must be live.
    pub fn must_be_live(&self) -> bool {
        !self.absent_ok
    }

    /// The highest version among the candidates (0 when none).
    pub fn max_version(&self) -> i64 {
        self.present
            .iter()
            .filter_map(data::version)
            .max()
            .unwrap_or(0)
    }

    /// Checks what a load of the key found, for the owner with `marker`.
    pub fn check(&self, found: Option<&Dict>, marker: &str) -> Result<(), Mismatch> {
        let Some(found) = found else {
            return if self.absent_ok {
                Ok(())
            } else {
                Err((
                    ViolationKind::LostSession,
                    format!("expected {}, found nothing", describe_all(&self.present)),
                ))
            };
        };
        if self.present.iter().any(|c| dicts_identical(c, found)) {
            return Ok(());
        }
        let kind = if self.present.is_empty() {
            ViolationKind::Resurrected
        } else if data::owner(found) != Some(marker) {
            ViolationKind::CrossedUpdate
        } else if data::version(found).unwrap_or(i64::MIN)
            < self
                .present
                .iter()
                .filter_map(data::version)
                .min()
                .unwrap_or(i64::MIN)
        {
            ViolationKind::LostUpdate
        } else {
            ViolationKind::Corrupted
        };
        let expected = if self.present.is_empty() {
            "nothing".to_owned()
        } else {
            describe_all(&self.present)
        };
        let difference = self
            .present
            .iter()
            .find(|c| data::version(c) == data::version(found))
            .map(|c| format!("; {}", first_difference(c, found)))
            .unwrap_or_default();
        Err((
            kind,
            format!("expected {expected}, found {}{difference}", describe(found)),
        ))
    }
}

/// `owner=… version=… (n keys)`.
pub fn describe(data: &Dict) -> String {
    format!(
        "owner={} version={} writer={} ({} keys)",
        data::owner(data).unwrap_or("-"),
        data::version(data).map_or_else(|| "-".to_owned(), |v| v.to_string()),
        data.get(data::WRITER)
            .and_then(Value::as_str)
            .unwrap_or("-"),
        data.len()
    )
}

fn describe_all(candidates: &[Dict]) -> String {
    let all: Vec<String> = candidates.iter().map(describe).collect();
    all.join(" or ")
}

fn short(value: Option<&Value>) -> String {
    let text = format!("{value:?}");
    if text.len() > 120 {
        let mut end = 120;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &text[..end])
    } else {
        text
    }
}

/// The first key whose value or position differs between `expected` and `found`.
pub fn first_difference(expected: &Dict, found: &Dict) -> String {
    for (i, (key, value)) in expected.iter().enumerate() {
        match found
            .get_index_of(key)
            .and_then(|j| Some((j, found.get_index(j)?.1)))
        {
            None => return format!("key {key:?} missing"),
            Some((_, other)) if other != value => {
                return format!(
                    "key {key:?}: expected {}, found {}",
                    short(Some(value)),
                    short(Some(other))
                );
            }
            Some((j, _)) if i != j => return format!("key {key:?} at position {j}, not {i}"),
            Some(_) => {}
        }
    }
    match found.keys().find(|k| !expected.contains_key(k)) {
        Some(extra) => format!("unexpected key {extra:?} = {}", short(found.get(extra))),
        None => "same content".to_owned(),
    }
}

/// How a logged write of a shared session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Still running.
    Pending,
    /// The save returned success.
    Acknowledged,
    /// The save was refused because the session had been deleted: its data must never appear.
    Refused,
    /// The save failed; its effect is unknown.
    Failed,
    /// The request did not write to this key after all (it found the session gone and created a
    /// new one, or failed before saving): its data must never appear here.
    NotApplied,
}

#[derive(Debug, Clone)]
struct WriteEvent {
    writer: String,
    version: i64,
    start: u64,
    end: Option<u64>,
    outcome: WriteOutcome,
}

#[derive(Debug, Clone)]
struct DeleteEvent {
    start: u64,
    end: Option<u64>,
    /// `Some(true)` acknowledged, `Some(false)` failed (effect unknown), `None` still running.
    acknowledged: Option<bool>,
    cancelled: bool,
}

#[derive(Debug, Clone, Default)]
struct KeyLog {
    writes: Vec<WriteEvent>,
    deletes: Vec<DeleteEvent>,
}

/// A handle on a logged event, to finish it.
#[derive(Debug, Clone)]
pub struct EventId {
    key: SessionKey,
    index: usize,
}

/// The write and delete history of the keys one pair of tabs used.
#[derive(Debug, Clone)]
pub struct SharedHistory {
    marker: String,
    keys: HashMap<SessionKey, KeyLog>,
}

impl SharedHistory {
    /// An empty history for the pair whose data carries `marker`.
    pub fn new(marker: impl Into<String>) -> Self {
        SharedHistory {
            marker: marker.into(),
            keys: HashMap::new(),
        }
    }

    /// The pair's marker.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// Every key the pair used.
    pub fn keys(&self) -> impl Iterator<Item = &SessionKey> {
        self.keys.keys()
    }

    /// Logs a write of `writer`'s `version` to `key`, begun at `start`.
    pub fn begin_write(
        &mut self,
        key: &SessionKey,
        writer: &str,
        version: i64,
        start: u64,
    ) -> EventId {
        let log = self.keys.entry(key.clone()).or_default();
        log.writes.push(WriteEvent {
            writer: writer.to_owned(),
            version,
            start,
            end: None,
            outcome: WriteOutcome::Pending,
        });
        EventId {
            key: key.clone(),
            index: log.writes.len() - 1,
        }
    }

    /// Records how a logged write ended.
    pub fn finish_write(&mut self, id: &EventId, end: u64, outcome: WriteOutcome) {
        if let Some(write) = self
            .keys
            .get_mut(&id.key)
            .and_then(|log| log.writes.get_mut(id.index))
        {
            write.end = Some(end);
            write.outcome = outcome;
        }
    }

    /// Logs a write that is already over (a session created, or copied by `cycle_key`).
    pub fn add_write(
        &mut self,
        key: &SessionKey,
        writer: &str,
        version: i64,
        (start, end): (u64, u64),
        outcome: WriteOutcome,
    ) {
        let id = self.begin_write(key, writer, version, start);
        self.finish_write(&id, end, outcome);
    }

    /// Logs a delete of `key`, begun at `start`.
    pub fn begin_delete(&mut self, key: &SessionKey, start: u64) -> EventId {
        let log = self.keys.entry(key.clone()).or_default();
        log.deletes.push(DeleteEvent {
            start,
            end: None,
            acknowledged: None,
            cancelled: false,
        });
        EventId {
            key: key.clone(),
            index: log.deletes.len() - 1,
        }
    }

    /// Records how a logged delete ended: `Some(acknowledged)`, or `None` when the request did
    /// not delete after all.
    pub fn finish_delete(&mut self, id: &EventId, end: u64, acknowledged: Option<bool>) {
        if let Some(delete) = self
            .keys
            .get_mut(&id.key)
            .and_then(|log| log.deletes.get_mut(id.index))
        {
            delete.end = Some(end);
            delete.acknowledged = acknowledged;
            delete.cancelled = acknowledged.is_none();
        }
    }

    /// Checks what a read of `key` that ran from `start` to `end` found.
    pub fn check(
        &self,
        key: &SessionKey,
        found: Option<&Dict>,
        start: u64,
        end: u64,
    ) -> Result<(), Mismatch> {
        let empty = KeyLog::default();
        let log = self.keys.get(key).unwrap_or(&empty);
        let Some(found) = found else {
            // Absent is right only if some delete had begun before the read ended.
            return if log.deletes.iter().any(|d| !d.cancelled && d.start < end) {
                Ok(())
            } else {
                Err((
                    ViolationKind::LostSession,
                    format!(
                        "a shared session loaded as absent with no delete begun ({} writes logged)",
                        log.writes.len()
                    ),
                ))
            };
        };
        if data::owner(found) != Some(self.marker.as_str()) {
            return Err((
                ViolationKind::CrossedUpdate,
                format!(
                    "expected the pair {}'s data, found {}",
                    self.marker,
                    describe(found)
                ),
            ));
        }
        let Some((writer, version)) = data::shared_origin(found) else {
            return Err((
                ViolationKind::MixedWrite,
                format!("data without a writer or version: {}", describe(found)),
            ));
        };
        let whole = data::shared(&self.marker, writer, version);
        if !dicts_identical(&whole, found) {
            return Err((
                ViolationKind::MixedWrite,
                format!(
                    "not one write's complete data: {}",
                    first_difference(&whole, found)
                ),
            ));
        }
        if let Some(delete) = log
            .deletes
            .iter()
            .find(|d| d.acknowledged == Some(true) && d.end.is_some_and(|e| e < start))
        {
            return Err((
                ViolationKind::Resurrected,
                format!(
                    "{writer}'s version {version} read at {start} after a delete acknowledged at {}",
                    delete.end.unwrap_or_default()
                ),
            ));
        }
        let candidates: Vec<&WriteEvent> = log
            .writes
            .iter()
            .filter(|w| w.writer == writer && w.version == version && w.start < end)
            .collect();
        let Some(write) = candidates.iter().find(|w| {
            matches!(
                w.outcome,
                WriteOutcome::Pending | WriteOutcome::Acknowledged | WriteOutcome::Failed
            )
        }) else {
            let refused = candidates
                .iter()
                .any(|w| w.outcome == WriteOutcome::Refused);
            return Err((
                if refused {
                    ViolationKind::WrongSaveOutcome
                } else {
                    ViolationKind::CrossedUpdate
                },
                format!(
                    "{writer}'s version {version} is here, but that write was {} this key",
                    if refused {
                        "refused on"
                    } else {
                        "never made to"
                    }
                ),
            ));
        };
        if let Some(written_end) = write.end
            && let Some(later) = log.writes.iter().find(|w| {
                w.outcome == WriteOutcome::Acknowledged
                    && w.start > written_end
                    && w.end.is_some_and(|e| e < start)
            })
        {
            return Err((
                ViolationKind::LostUpdate,
                format!(
                    "read at {start} found {writer}'s version {version} (ended {written_end}), \
                     replaced by {}'s version {} (acknowledged at {})",
                    later.writer,
                    later.version,
                    later.end.unwrap_or_default()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    fn key() -> SessionKey {
        SessionKey::generate().unwrap()
    }

    #[test]
    fn a_private_session_must_be_exactly_one_candidate() {
        let mut rng = crate::rng::Rng::new(1);
        let v1 = data::initial(&mut rng, "me");
        let changes = data::Changes::random(&mut rng, "me", 2);
        let v2 = changes.apply(&v1);
        let expect = Expect::live(key(), v2.clone());
        assert!(expect.check(Some(&v2), "me").is_ok());
        assert_eq!(
            expect.check(Some(&v1), "me").unwrap_err().0,
            ViolationKind::LostUpdate
        );
        assert_eq!(
            expect.check(None, "me").unwrap_err().0,
            ViolationKind::LostSession
        );
        let theirs = data::initial(&mut rng, "them");
        assert_eq!(
            expect.check(Some(&theirs), "me").unwrap_err().0,
            ViolationKind::CrossedUpdate
        );
        let mut tampered = v2.clone();
        tampered.insert("k0", Value::from("tampered"));
        assert_eq!(
            expect.check(Some(&tampered), "me").unwrap_err().0,
            ViolationKind::Corrupted
        );
        let gone = Expect::gone(key());
        assert!(gone.check(None, "me").is_ok());
        assert_eq!(
            gone.check(Some(&v2), "me").unwrap_err().0,
            ViolationKind::Resurrected
        );
    }

    #[test]
    fn a_failed_write_stays_possible_until_a_restart_settles_it() {
        let mut rng = crate::rng::Rng::new(3);
        let v10 = data::initial(&mut rng, "me");
        let v11 = data::Changes::random(&mut rng, "me", 11).apply(&v10);
        let mut expect = Expect::live(key(), v10.clone());
        // The save of v11 failed with no restart completed yet.
        expect.unknown_write(vec![v10.clone(), v11.clone()], 0);
        // A server process of the dying server still serves the old row...
        expect.narrow_to(&v10, 0);
        // ...and crash recovery then replays the commit of v11.
        assert!(expect.check(Some(&v11), "me").is_ok());
        // After the restart, what a load finds stands.
        expect.narrow_to(&v10, 1);
        assert_eq!(
            expect.check(Some(&v11), "me").map_err(|(kind, _)| kind),
            Err(ViolationKind::Corrupted)
        );
        assert!(expect.check(Some(&v10), "me").is_ok());
    }

    #[test]
    fn unsettled_writes_keep_every_candidate_and_settled_ones_replace_them() {
        let mut rng = crate::rng::Rng::new(4);
        let v10 = data::initial(&mut rng, "me");
        let v11 = data::Changes::random(&mut rng, "me", 11).apply(&v10);
        let v12 = data::Changes::random(&mut rng, "me", 12).apply(&v10);
        let v13 = data::Changes::random(&mut rng, "me", 13).apply(&v12);
        let mut expect = Expect::live(key(), v10.clone());
        expect.unknown_write(vec![v10.clone(), v11.clone()], 2);
        expect.narrow_to(&v10, 2);
        // A second failed save, built on the v10 that was read, before the restart.
        expect.unknown_write(vec![v10.clone(), v12.clone()], 2);
        for candidate in [&v10, &v11, &v12] {
            assert!(expect.check(Some(candidate), "me").is_ok());
        }
        assert_eq!(expect.present.len(), 3, "no candidate twice");
        // Once settled, a failed save's candidates replace the earlier ones.
        expect.narrow_to(&v12, 3);
        expect.unknown_write(vec![v12.clone(), v13.clone()], 3);
        assert!(expect.check(Some(&v13), "me").is_ok());
        assert!(expect.check(Some(&v11), "me").is_err());
        assert!(!expect.is_settled_for(3) && expect.is_settled_for(4));
    }

    #[test]
    fn a_failed_delete_allows_absence_and_keeps_every_candidate_until_settled() {
        let mut rng = crate::rng::Rng::new(5);
        let v10 = data::initial(&mut rng, "me");
        let v11 = data::Changes::random(&mut rng, "me", 11).apply(&v10);
        let mut expect = Expect::live(key(), v10.clone());
        expect.unknown_write(vec![v10.clone(), v11.clone()], 1);
        expect.unknown_delete(1);
        assert!(expect.check(None, "me").is_ok());
        assert!(expect.check(Some(&v10), "me").is_ok());
        assert!(expect.check(Some(&v11), "me").is_ok());
        assert!(!expect.is_settled_for(1) && expect.is_settled_for(2));
    }

    #[test]
    fn an_unknown_outcome_accepts_either_side() {
        let mut rng = crate::rng::Rng::new(2);
        let v1 = data::initial(&mut rng, "me");
        let v2 = data::Changes::random(&mut rng, "me", 2).apply(&v1);
        let expect = Expect {
            key: key(),
            present: vec![v1.clone(), v2.clone()],
            absent_ok: true,
            unsettled: None,
        };
        assert!(expect.check(Some(&v1), "me").is_ok());
        assert!(expect.check(Some(&v2), "me").is_ok());
        assert!(expect.check(None, "me").is_ok());
        assert_eq!(expect.max_version(), 2);
    }

    #[test]
    fn a_shared_read_must_show_one_unreplaced_write() {
        let k = key();
        let mut history = SharedHistory::new("pair");
        history.add_write(&k, "A", 1, (1, 2), WriteOutcome::Acknowledged);
        history.add_write(&k, "B", 1, (3, 4), WriteOutcome::Acknowledged);
        let a1 = data::shared("pair", "A", 1);
        let b1 = data::shared("pair", "B", 1);
        // B's write ended before the read began: A's is stale.
        assert_eq!(
            history.check(&k, Some(&a1), 5, 6).unwrap_err().0,
            ViolationKind::LostUpdate
        );
        assert!(history.check(&k, Some(&b1), 5, 6).is_ok());
        // A read that overlapped B's write may still see A's.
        assert!(history.check(&k, Some(&a1), 3, 6).is_ok());
        // Half of each write.
        let mut mixed = a1.clone();
        mixed.insert("f3", b1["f3"].clone());
        assert_eq!(
            history.check(&k, Some(&mixed), 5, 6).unwrap_err().0,
            ViolationKind::MixedWrite
        );
        // A write that was never made, another pair's data, absence without a delete.
        assert_eq!(
            history
                .check(&k, Some(&data::shared("pair", "A", 9)), 5, 6)
                .unwrap_err()
                .0,
            ViolationKind::CrossedUpdate
        );
        assert_eq!(
            history
                .check(&k, Some(&data::shared("other", "A", 1)), 5, 6)
                .unwrap_err()
                .0,
            ViolationKind::CrossedUpdate
        );
        assert_eq!(
            history.check(&k, None, 5, 6).unwrap_err().0,
            ViolationKind::LostSession
        );
    }

    #[test]
    fn a_shared_session_stays_deleted_and_refused_writes_never_land() {
        let k = key();
        let mut history = SharedHistory::new("pair");
        history.add_write(&k, "A", 1, (1, 2), WriteOutcome::Acknowledged);
        let delete = history.begin_delete(&k, 3);
        // Absent while the delete runs: fine.
        assert!(history.check(&k, None, 2, 4).is_ok());
        history.finish_delete(&delete, 5, Some(true));
        let refused = history.begin_write(&k, "B", 1, 4);
        history.finish_write(&refused, 6, WriteOutcome::Refused);
        assert_eq!(
            history
                .check(&k, Some(&data::shared("pair", "A", 1)), 7, 8)
                .unwrap_err()
                .0,
            ViolationKind::Resurrected
        );
        assert!(history.check(&k, None, 7, 8).is_ok());
        let other = key();
        history.add_write(&other, "A", 1, (1, 2), WriteOutcome::Acknowledged);
        let refused = history.begin_write(&other, "B", 2, 3);
        history.finish_write(&refused, 4, WriteOutcome::Refused);
        assert_eq!(
            history
                .check(&other, Some(&data::shared("pair", "B", 2)), 5, 6)
                .unwrap_err()
                .0,
            ViolationKind::WrongSaveOutcome
        );
    }
}
