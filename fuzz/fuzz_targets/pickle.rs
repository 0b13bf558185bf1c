//! The safe pickle reader, `session_core::serializer::pickle::from_slice`, on arbitrary bytes.
//!
//! Invariants: no panic, no unbounded allocation (libFuzzer's `-rss_limit_mb` enforces it); a value
//! it reads is written again by every protocol we write (2-5), and that pickle reads back as an
//! identical value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::serializer::pickle;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = pickle::from_slice(data) else {
        return;
    };
    for protocol in 2..=5 {
        let written = pickle::to_vec(&value, protocol).unwrap_or_else(|e| {
            panic!("a value read from a pickle failed to write (protocol {protocol}): {e}")
        });
        let again = pickle::from_slice(&written)
            .unwrap_or_else(|e| panic!("our protocol {protocol} pickle failed to read: {e}"));
        assert!(
            again.is_identical(&value),
            "protocol {protocol} changed {value:?} into {again:?}"
        );
    }
});
