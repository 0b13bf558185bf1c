//! `session_signing::TimestampSigner`: `unsign_object` on arbitrary tokens, and timestamps of any
//! value (far future, before 1970, `i64` extremes) against any clock and maximum age.
//!
//! Input: selector, then three little-endian `i64`s (timestamp, "now", maximum age), then data.
//! Selector bits 0-1 pick the mode, bit 2 whether a maximum age applies, bit 3 compression.
//! - mode 0: the data is a token;
//! - mode 1: the data is a value, signed at the timestamp: it must verify back unchanged (or be
//!   reported expired, and only when its age really exceeds the maximum);
//! - mode 2: the data is serializer bytes, `sign_object`ed at the timestamp: `unsign_object` must
//!   give them back;
//! - mode 3: the data is a plain-`Signer` value whose last `:` part is read as a timestamp:
//!   arbitrary base62 text (overflow, signs, empty) must be a typed error, never a panic.
#![no_main]

use std::time::Duration;

use djsession_fuzz::{FALLBACK, SECRET, split, system_time, take_i64};
use libfuzzer_sys::fuzz_target;
use session_signing::{Error, SecretKey, TimestampSigner, UnsignOptions, b62_decode, b62_encode};

fn signer() -> &'static TimestampSigner {
    static SIGNER: std::sync::OnceLock<TimestampSigner> = std::sync::OnceLock::new();
    SIGNER.get_or_init(|| {
        TimestampSigner::new(SecretKey::from(SECRET))
            .with_salt("fuzz.timestamp")
            .with_fallback_keys([SecretKey::from(FALLBACK)])
    })
}

fuzz_target!(|data: &[u8]| {
    let (selector, data) = split(data);
    let (timestamp, data) = take_i64(data);
    let (now_seconds, data) = take_i64(data);
    let (max_age_seconds, data) = take_i64(data);
    let Some(now) = system_time(now_seconds) else {
        return;
    };
    let max_age = (selector & 4 != 0).then(|| Duration::from_secs(max_age_seconds.unsigned_abs()));
    let options = UnsignOptions {
        max_age,
        max_decompressed_size: 256 * 1024,
        now: Some(now),
    };
    let signer = signer();
    let text = String::from_utf8_lossy(data);
    match selector & 3 {
        0 => {
            let _ = signer.unsign_object(&text, &options);
            let _ = signer.unsign_at(&text, max_age, now);
        }
        1 => {
            let signed = signer.sign_at(&text, timestamp);
            match signer.unsign_at(&signed, max_age, now) {
                Ok(value) => assert_eq!(value, text),
                Err(Error::Expired {
                    age_seconds,
                    max_age_seconds,
                }) => {
                    assert!(max_age.is_some() && age_seconds > max_age_seconds);
                }
                Err(other) => panic!("a value we signed at {timestamp} failed: {other}"),
            }
        }
        2 => {
            let signed = signer.sign_object_at(data, selector & 8 != 0, timestamp);
            let generous = UnsignOptions {
                max_age: None,
                max_decompressed_size: data.len().max(1),
                now: Some(now),
            };
            assert_eq!(
                signer.unsign_object(&signed, &generous).as_deref().ok(),
                Some(data)
            );
            let _ = signer.unsign_object(&signed, &options);
        }
        _ => {
            let signed = signer.signer().sign(&text);
            match signer.unsign_at(&signed, max_age, now) {
                Ok(_) | Err(Error::MalformedTimestamp | Error::Expired { .. }) => {}
                Err(other) => panic!("unexpected error for a validly signed value: {other}"),
            }
            if let Some((_, timestamp)) = text.rsplit_once(':')
                && let Ok(n) = b62_decode(timestamp)
            {
                assert_eq!(b62_decode(&b62_encode(n)).ok(), Some(n));
            }
        }
    }
});
