//! The pre-Django-3.1 session format: `session_signing::legacy::decode_session` on arbitrary text,
//! its round trip, and `SessionCodec` with `accept_legacy_formats` (and the SHA-1 setting) on
//! validly signed legacy data around arbitrary serializer bytes.
//!
//! Selector bits 0-1: mode; bits 2-5: which codec (`codec_for`); bit 7: compression.
#![no_main]

use djsession_fuzz::{FALLBACK, SECRET, Variant, assert_round_trips, codec_for, now, split};
use libfuzzer_sys::fuzz_target;
use session_core::value::dicts_identical;
use session_signing::{Error, SecretKey, legacy};

fuzz_target!(|data: &[u8]| {
    let (selector, data) = split(data);
    let secret = SecretKey::from(SECRET);
    let fallbacks = [SecretKey::from(FALLBACK)];
    let salt = legacy::SESSION_KEY_SALT;
    match selector & 3 {
        0 => {
            let text = String::from_utf8_lossy(data);
            match legacy::decode_session(&text, &secret, &fallbacks, salt) {
                Ok(_) | Err(Error::BadSignature | Error::MalformedPayload) => {}
                Err(other) => panic!("legacy decoding failed with an unexpected error: {other}"),
            }
        }
        1 => {
            // Signed with the fallback: verification must try it.
            let encoded = legacy::encode_session(data, &fallbacks[0], salt);
            let decoded = legacy::decode_session(&encoded, &secret, &fallbacks, salt);
            assert_eq!(decoded.as_deref().ok(), Some(data));
        }
        _ => {
            let under_test = codec_for(selector >> 2);
            let codec = &under_test.codec;
            let encoded = legacy::encode_session(data, &secret, salt);
            let decoded = codec.try_decode_at(&encoded, None, now());
            if under_test.variant == Variant::Current {
                // Django 4.0+ refuses the old format outright.
                assert!(
                    decoded.is_err(),
                    "legacy data accepted without accept_legacy_formats"
                );
                return;
            }
            match (codec.deserialize_dict(data), &decoded) {
                (Ok(expected), Ok(got)) => assert!(dicts_identical(&expected, got)),
                (Err(_), Err(_)) => {}
                (expected, got) => panic!("codec and serializer disagree: {expected:?} vs {got:?}"),
            }
            if let Ok(dict) = decoded {
                assert_round_trips(codec, &dict, selector & 0x80 != 0);
            }
        }
    }
});
