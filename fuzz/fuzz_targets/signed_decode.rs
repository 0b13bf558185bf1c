//! `SessionCodec::try_decode` for every serializer (json, msgpack, pickle), compressed or not, under
//! today's format, with legacy formats accepted, and with Django 3.x's SHA-1 setting.
//!
//! Selector bits 0-3 pick the codec (`codec_for`); bits 4-5 the mode; bit 6 compression.
//! - mode 0: the data is a whole token (almost always a bad signature: checks the refusal path);
//! - mode 1: the data is a payload (`[.]base64`), signed validly: checks base64, zlib, serializers;
//! - mode 2: the data is serializer bytes, signed validly (compressed or not): decoding must agree
//!   with the serializer alone;
//! - mode 3: the data is a zlib stream, signed validly as a compressed payload: checks inflating
//!   arbitrary streams within the bound.
//!
//! Invariants: no panic; every dict decoded re-encodes and decodes identically.
#![no_main]

use djsession_fuzz::{NOW, assert_round_trips, codec_for, now, split};
use libfuzzer_sys::fuzz_target;
use session_core::value::dicts_identical;
use session_signing::b64_encode;

fuzz_target!(|data: &[u8]| {
    let (selector, data) = split(data);
    let under_test = codec_for(selector);
    let codec = &under_test.codec;
    let compress = selector & 0x40 != 0;
    let token = match (selector >> 4) & 3 {
        0 => String::from_utf8_lossy(data).into_owned(),
        1 => under_test
            .signer
            .sign_at(&String::from_utf8_lossy(data), NOW),
        2 => under_test.signer.sign_object_at(data, compress, NOW),
        _ => under_test
            .signer
            .sign_at(&format!(".{}", b64_encode(data)), NOW),
    };
    let decoded = codec.try_decode_at(&token, None, now());
    if (selector >> 4) & 3 == 2 {
        // A valid signature around serializer bytes: the codec must say what the serializer says.
        match (codec.deserialize_dict(data), &decoded) {
            (Ok(expected), Ok(got)) => assert!(dicts_identical(&expected, got)),
            (Err(_), Err(_)) => {}
            (expected, got) => panic!("codec and serializer disagree: {expected:?} vs {got:?}"),
        }
    }
    if let Ok(dict) = decoded {
        assert_round_trips(codec, &dict, compress);
    }
    // The lenient entry point never fails, whatever the token.
    let _ = codec.decode(&token);
});
