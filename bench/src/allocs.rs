//! Counting allocations per operation: the bench binary's global allocator forwards everything
//! to the system allocator and, only while a thread has asked for it, counts that thread's
//! allocation calls.
//!
//! Counting is off during timed runs: all it costs then is one thread-local flag read per call,
//! the same for every contender. A `GlobalAlloc` cannot be written without `unsafe`; this module
//! is the only place the bench allows it, and it only forwards to [`System`].
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The bench binary's allocator.
pub struct Counting;

thread_local! {
    // `const` thread-locals without destructors never allocate, so they are safe to touch from
    // inside the allocator.
    static ENABLED: Cell<bool> = const { Cell::new(false) };
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with` fails only during thread teardown; those calls are not ours to count.
    let _ = ENABLED.try_with(|enabled| {
        if enabled.get() {
            let _ = CALLS.try_with(|calls| calls.set(calls.get() + 1));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; counting
// touches only thread-local `Cell`s, which neither allocate nor unwind.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as `alloc`; `ptr` and `layout` come from this allocator, which is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocation calls (allocations and reallocations; frees are not counted) per call of `op`,
/// averaged over `calls` calls on this thread.
pub fn per_call(calls: u32, mut op: impl FnMut()) -> f64 {
    // One uncounted call first, so lazily made per-thread state (zlib streams) is not charged.
    op();
    CALLS.with(|c| c.set(0));
    ENABLED.with(|e| e.set(true));
    for _ in 0..calls {
        op();
    }
    ENABLED.with(|e| e.set(false));
    let total = CALLS.with(Cell::get);
    total as f64 / f64::from(calls.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_allocation_of_the_operation_and_nothing_else() {
        let none = per_call(10, || {
            std::hint::black_box(1 + 1);
        });
        assert_eq!(none, 0.0);
        let two = per_call(10, || {
            let a = std::hint::black_box(vec![1u8; 10]);
            let b = std::hint::black_box("x".repeat(3));
            drop((a, b));
        });
        assert_eq!(two, 2.0);
        let grows = per_call(4, || {
            let mut v: Vec<u64> = Vec::with_capacity(1);
            v.extend_from_slice(&[1, 2, 3]);
            std::hint::black_box(v);
        });
        assert_eq!(grows, 2.0, "one allocation and one reallocation");
    }
}
