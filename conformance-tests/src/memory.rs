//! Measuring the memory a hostile input makes a test allocate (Linux only: it reads
//! `/proc/self/status`), and checking that the futures a request boxes stay within the
//! allocator's per-thread cache ([`assert_boxed_futures_fit_the_thread_cache`]).
//!
//! ```no_run
//! use session_conformance::memory::{isolated, peak_growth_mib};
//!
//! #[test]
//! fn a_bomb_is_refused_in_bounded_memory() {
//!     if !isolated("a_bomb_is_refused_in_bounded_memory") {
//!         return; // the body ran, and passed, in a process of its own
//!     }
//!     let (result, grown) = peak_growth_mib(|| vec![0u8; 1 << 20].len());
//!     assert_eq!(result, 1 << 20);
//!     assert!(grown < 64, "peak RSS grew {grown} MiB");
//! }
//! ```

/// Set in the child process [`isolated`] starts.
const CHILD: &str = "DJSESSION_TEST_ISOLATED";

/// Runs the calling test again alone in a fresh process (this test binary, filtered to `test`, its
/// exact name), so the peak RSS it measures is its own and not memory another test freed. Returns
/// true in that child, where the test body then runs; in the parent it asserts the child passed
/// and returns false.
///
/// # Panics
///
/// In the parent, when the child fails or cannot be started.
pub fn isolated(test: &str) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let status = std::process::Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .status()
        .expect("the test binary runs again");
    assert!(status.success(), "{test} failed in its own process");
    false
}

/// Runs `f`; returns its result and how far the peak RSS rose above the RSS before it, in MiB.
///
/// # Panics
///
/// When `/proc/self` cannot be read or written (not Linux).
pub fn peak_growth_mib<T>(f: impl FnOnce() -> T) -> (T, u64) {
    // Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS (Linux 4.0+).
    std::fs::write("/proc/self/clear_refs", "5").expect("/proc/self/clear_refs is writable");
    let before = rss_kib("VmRSS:");
    let result = f();
    (result, rss_kib("VmHWM:").saturating_sub(before) / 1024)
}

/// The peak RSS of this process so far, in KiB.
pub fn peak_rss_kib() -> u64 {
    rss_kib("VmHWM:")
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// The largest block glibc's allocator serves from its per-thread cache (its 64th bin: 24 + 63 ×
/// 16 bytes). A larger block goes through its shared bins, which it consolidates first, so a
/// store or layer that boxes a larger future for every request pays that on every request.
pub const THREAD_CACHED_BYTES: usize = 1032;

/// Asserts that every `(call, size)` of `sizes`, the sizes of futures a request boxes
/// (`size_of_val(&*boxed)`), fits [`THREAD_CACHED_BYTES`]; prints them all first.
///
/// # Panics
///
/// Naming every future over the limit.
pub fn assert_boxed_futures_fit_the_thread_cache(sizes: &[(&str, usize)]) {
    eprintln!("boxed future sizes: {sizes:?}");
    let too_large: Vec<_> = sizes
        .iter()
        .filter(|(_, size)| *size > THREAD_CACHED_BYTES)
        .collect();
    assert!(
        too_large.is_empty(),
        "futures over {THREAD_CACHED_BYTES} bytes: {too_large:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn futures_up_to_the_thread_cache_pass() {
        assert_boxed_futures_fit_the_thread_cache(&[("small", 40), ("edge", THREAD_CACHED_BYTES)]);
    }

    #[test]
    #[should_panic(expected = "futures over 1032 bytes: [(\"large\", 1033)]")]
    fn a_future_past_the_thread_cache_fails_naming_it() {
        assert_boxed_futures_fit_the_thread_cache(&[("small", 40), ("large", 1033)]);
    }

    #[test]
    fn growth_counts_what_the_closure_touches() {
        if !isolated("memory::tests::growth_counts_what_the_closure_touches") {
            return;
        }
        let (len, grown) = peak_growth_mib(|| {
            let block = vec![1u8; 64 << 20];
            std::hint::black_box(&block).len()
        });
        assert_eq!(len, 64 << 20);
        assert!((60..200).contains(&grown), "grew {grown} MiB for 64 MiB");
        assert!(peak_rss_kib() >= 64 << 10);
        // Each measurement starts from the current RSS, not from an earlier peak.
        let (_, none) = peak_growth_mib(|| 1 + 1);
        assert!(none < 8, "grew {none} MiB for nothing");
    }
}
