//! The entry buffers of dropped small dicts, kept per thread for the next dicts a reader builds.
//!
//! A decoded session is one allocation per dict, and a large one is mostly dicts of one size (a
//! 32 KB cart is 437 line items of four entries). glibc's per-thread cache keeps seven free
//! chunks of a size, so dropping such a session sent the other 430 frees down its coalescing
//! path and the next decode's mallocs split the coalesced chunks up again: 15 % of a 32 KB
//! decode's samples. A dropped dict leaves its emptied buffer here instead, and the readers
//! (JSON, MessagePack, pickle) take their dicts' buffers from here first: a session decoded,
//! used and dropped by the same thread, as a request is, reuses the previous one's buffers.
//!
//! What is kept is bounded per thread ([`KEPT_BYTES`]), only buffers of small dicts are kept
//! ([`MAX_KEPT_ENTRIES`]), and a buffer taken has exactly the room asked for, so a dict built
//! from one is the size it would have been.

use std::cell::RefCell;

use super::{Str, Value};

type Entries = Vec<(Str, Value)>;

/// Buffers of dicts of up to this many entries are kept: line items, messages, users' records.
pub(crate) const MAX_KEPT_ENTRIES: usize = 8;

/// At most this many bytes of buffers are kept per thread: what a 32 KB session's dicts hold,
/// twice over. Beyond it a dropped dict frees its buffer as before.
const KEPT_BYTES: usize = 256 * 1024;

const ENTRY_BYTES: usize = std::mem::size_of::<(Str, Value)>();

struct Kept {
    /// `by_room[n - 1]` holds empty buffers with room for exactly `n` entries.
    by_room: [Vec<Entries>; MAX_KEPT_ENTRIES],
    /// The bytes of entry room kept, over every size.
    bytes: usize,
}

thread_local! {
    static KEPT: RefCell<Kept> = const {
        RefCell::new(Kept {
            by_room: [const { Vec::new() }; MAX_KEPT_ENTRIES],
            bytes: 0,
        })
    };
}

/// An empty buffer with room for exactly `room` entries: a kept one when there is one.
#[inline]
pub(crate) fn take(room: usize) -> Entries {
    if (1..=MAX_KEPT_ENTRIES).contains(&room) {
        let kept = KEPT.try_with(|kept| {
            let mut kept = kept.try_borrow_mut().ok()?;
            let buffer = kept.by_room.get_mut(room - 1)?.pop()?;
            kept.bytes -= room * ENTRY_BYTES;
            Some(buffer)
        });
        if let Ok(Some(buffer)) = kept {
            return buffer;
        }
    }
    Vec::with_capacity(room)
}

/// Whether a dropped dict with room for `room` entries should offer its buffer to [`keep`].
#[inline]
pub(crate) fn may_keep(room: usize) -> bool {
    (1..=MAX_KEPT_ENTRIES).contains(&room)
}

/// Keeps an empty buffer for [`take`], or frees it when the thread keeps enough already (or is
/// exiting, or is inside [`take`] or `keep` on this thread already).
#[inline]
pub(crate) fn keep(buffer: Entries) {
    let room = buffer.capacity();
    if !buffer.is_empty() || !may_keep(room) {
        return;
    }
    // Whatever is not kept is simply dropped (freed) here.
    let _ = KEPT.try_with(|kept| {
        let Ok(mut kept) = kept.try_borrow_mut() else {
            return;
        };
        let mut bytes = kept.bytes + room * ENTRY_BYTES;
        // Over the bound, free buffers of the room that holds the most bytes, so that what is
        // kept follows the sizes being dropped now rather than filling up with one size for good
        // (a dict grown by inserts, then dropped, would otherwise crowd out every other size).
        while bytes > KEPT_BYTES {
            let fullest = (1..=MAX_KEPT_ENTRIES)
                .max_by_key(|&r| kept.by_room.get(r - 1).map_or(0, |b| b.len() * r));
            match fullest {
                Some(fullest) if fullest != room => {
                    if kept
                        .by_room
                        .get_mut(fullest - 1)
                        .and_then(Vec::pop)
                        .is_none()
                    {
                        return;
                    }
                    bytes -= fullest * ENTRY_BYTES;
                }
                _ => return,
            }
        }
        if let Some(buffers) = kept.by_room.get_mut(room - 1) {
            buffers.push(buffer);
            kept.bytes = bytes;
        }
    });
}

/// The bytes of entry room this thread keeps (for tests).
#[cfg(test)]
pub(crate) fn kept_bytes() -> usize {
    KEPT.with(|kept| kept.borrow().bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_buffer_is_taken_back_with_exactly_the_room_asked_for() {
        let before = kept_bytes();
        let mut buffer = Vec::with_capacity(4);
        buffer.push((Str::from("sku"), Value::from("SKU-1")));
        buffer.clear();
        let address = buffer.as_ptr();
        keep(buffer);
        assert_eq!(kept_bytes(), before + 4 * ENTRY_BYTES);
        let three = take(3);
        assert_eq!(three.capacity(), 3);
        let taken = take(4);
        assert_eq!(taken.capacity(), 4);
        assert_eq!(taken.as_ptr(), address, "the kept buffer is reused");
        assert_eq!(kept_bytes(), before);
    }

    #[test]
    fn a_full_thread_makes_room_for_the_size_dropped_now() {
        std::thread::spawn(|| {
            for _ in 0..KEPT_BYTES / (8 * ENTRY_BYTES) {
                keep(Vec::with_capacity(8));
            }
            for _ in 0..100 {
                keep(Vec::with_capacity(4));
            }
            assert!(kept_bytes() <= KEPT_BYTES);
            let fours = (0..100).filter(|_| take_kept(4)).count();
            assert_eq!(fours, 100, "the buffers of four were kept");
        })
        .join()
        .unwrap();
    }

    /// Whether `take(room)` handed over a kept buffer.
    fn take_kept(room: usize) -> bool {
        let before = kept_bytes();
        let buffer = take(room);
        buffer.capacity() == room && kept_bytes() + room * ENTRY_BYTES == before
    }

    #[test]
    fn dicts_dropped_while_their_thread_exits_are_freed_quietly() {
        use crate::value::Dict;

        thread_local! {
            static LATE: RefCell<Option<Dict>> = const { RefCell::new(None) };
        }
        let small = || -> Dict { (0..4).map(|i| (format!("k{i}"), Value::from(i))).collect() };
        // Thread-local values are destroyed in an order of their own when a thread exits; one
        // thread sets the dict's slot up before this thread's kept buffers, the other after,
        // so a dict is dropped both before and after its thread's kept buffers are gone.
        for kept_first in [true, false] {
            std::thread::spawn(move || {
                if kept_first {
                    keep(Vec::with_capacity(4));
                }
                LATE.with(|late| *late.borrow_mut() = Some(small()));
                if !kept_first {
                    keep(Vec::with_capacity(4));
                }
            })
            .join()
            .unwrap();
        }
    }

    #[test]
    fn a_buffer_still_holding_entries_is_not_kept() {
        let before = kept_bytes();
        keep(vec![(Str::from("a"), Value::Null)]);
        assert_eq!(kept_bytes(), before);
    }

    #[test]
    fn large_and_roomless_buffers_are_not_kept() {
        let before = kept_bytes();
        keep(Vec::with_capacity(MAX_KEPT_ENTRIES + 1));
        keep(Vec::new());
        assert_eq!(kept_bytes(), before);
        assert_eq!(take(MAX_KEPT_ENTRIES + 1).capacity(), MAX_KEPT_ENTRIES + 1);
        assert_eq!(take(0).capacity(), 0);
    }

    #[test]
    fn a_thread_keeps_no_more_than_its_bound() {
        // A thread of its own, so that nothing else here has kept buffers on it.
        std::thread::spawn(|| {
            let offered = 2 * KEPT_BYTES / (8 * ENTRY_BYTES);
            for _ in 0..offered {
                keep(Vec::with_capacity(8));
            }
            assert_eq!(
                kept_bytes(),
                KEPT_BYTES / (8 * ENTRY_BYTES) * 8 * ENTRY_BYTES
            );
        })
        .join()
        .unwrap();
    }
}
