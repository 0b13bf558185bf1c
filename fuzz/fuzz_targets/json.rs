//! The JSON reader and writer (`session_core::serializer::json`), on arbitrary bytes.
//!
//! Invariants: no panic; a parsed value renders, the rendering parses to an identical value, and
//! renders to the same bytes again (rendering is a fixed point, as Django's output is).
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::serializer::json;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = json::from_slice(data) else {
        return;
    };
    let rendered = json::to_vec(&value)
        .unwrap_or_else(|e| panic!("a parsed value failed to render: {e}: {value:?}"));
    let reparsed = json::from_slice(&rendered).unwrap_or_else(|e| {
        panic!(
            "our rendering failed to parse: {e}: {:?}",
            String::from_utf8_lossy(&rendered)
        )
    });
    assert!(
        reparsed.is_identical(&value),
        "{value:?} re-parsed as {reparsed:?}"
    );
    assert_eq!(json::to_vec(&reparsed).ok(), Some(rendered));
});
