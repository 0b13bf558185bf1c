//! The MessagePack reader and writer (`session_core::serializer::msgpack`), on arbitrary bytes.
//!
//! Invariants: no panic, no allocation driven by unchecked length fields; a value read is written
//! and reads back identically, and writing is a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::serializer::msgpack;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = msgpack::from_slice(data) else {
        return;
    };
    let written = msgpack::to_vec(&value).unwrap_or_else(|e| {
        panic!("a value read from MessagePack failed to write: {e}: {value:?}")
    });
    let again = msgpack::from_slice(&written)
        .unwrap_or_else(|e| panic!("our MessagePack failed to read: {e}"));
    assert!(
        again.is_identical(&value),
        "{value:?} read back as {again:?}"
    );
    assert_eq!(msgpack::to_vec(&again).ok(), Some(written));
});
