//! Hostile input at the signing layer: broken, oversized and adversarial tokens, extreme
//! timestamps and clocks, legacy data, and compressed payloads (the 1 GiB bomb itself is in
//! `decompression_bomb.rs`). Every case states its typed error and runs under a time limit; the
//! oversized cases measure the process's peak memory.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use session_conformance::memory::{isolated, peak_growth_mib};
use std::io::Write as _;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::ZlibEncoder;
use session_signing::{
    Error, SecretKey, Signer, TimestampSigner, UnsignOptions, b62_decode, b62_encode, b64_encode,
    legacy,
};

const SECRET: &str = "django_tests_secret_key";
const MIB: usize = 1 << 20;
const LIMIT: Duration = Duration::from_secs(30);

fn signer() -> TimestampSigner {
    TimestampSigner::new(SecretKey::from(SECRET))
        .with_salt("django.contrib.sessions.SessionStore")
        .with_fallback_keys([SecretKey::from("an old secret")])
}

/// Runs `f` on its own thread and fails the test if it takes longer than [`LIMIT`] (a hang).
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    result
        .recv_timeout(LIMIT)
        .expect("finished within the time limit without panicking")
}

fn assert_bad_signature<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) {
    match result {
        Err(e) if e.is_bad_signature() => {}
        other => panic!("{what}: expected a bad signature, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Truncation, wrong-length signatures, separators.

#[test]
fn every_truncation_of_a_valid_token_is_a_bad_signature() {
    let signer = signer();
    for compress in [false, true] {
        let token = signer.sign_object_at(
            &br#"{"a":"xxxxxxxxxxxxxxxxxxxx"}"#[..],
            compress,
            1_700_000_000,
        );
        assert!(
            signer
                .unsign_object(&token, &UnsignOptions::default())
                .is_ok()
        );
        for end in 0..token.len() {
            assert_bad_signature(
                signer.unsign_object(&token[..end], &UnsignOptions::default()),
                &format!("first {end} bytes of {token}"),
            );
        }
    }
}

#[test]
fn signatures_of_every_wrong_length_are_bad_signatures() {
    let signer = signer();
    let token = signer.sign_at("value", 1_700_000_000);
    let (body, signature) = token.rsplit_once(':').unwrap();
    for len in 0..=2 * signature.len() {
        if len == signature.len() {
            continue;
        }
        let wrong: String = signature.chars().cycle().take(len).collect();
        assert_bad_signature(
            signer.unsign(&format!("{body}:{wrong}"), None),
            &format!("signature of {len} characters"),
        );
    }
    // Multi-byte characters of the right character count are not the right byte count.
    assert_bad_signature(
        signer.unsign(&format!("{body}:{}", "é".repeat(signature.len())), None),
        "non-ASCII signature",
    );
}

#[test]
fn tokens_made_of_separators_are_refused_in_bounded_time() {
    let outcomes = bounded(|| {
        let signer = signer();
        let tokens = [
            ":".to_owned(),
            "::".to_owned(),
            ":".repeat(1_000_000),
            "a:".repeat(1_000_000),
            format!("{}{}", ":".repeat(100_000), signer.sign_at("v", 0)),
        ];
        tokens.map(|t| {
            signer
                .unsign_object(&t, &UnsignOptions::default())
                .map(|_| ())
        })
    });
    for (i, outcome) in outcomes.into_iter().enumerate() {
        assert_bad_signature(outcome, &format!("separator case {i}"));
    }
}

#[test]
fn a_validly_signed_value_with_many_separators_has_no_timestamp_or_bad_base64() {
    let plain =
        Signer::new(SecretKey::from(SECRET)).with_salt("django.contrib.sessions.SessionStore");
    let signer = signer();
    // The timestamp is the last part before the signature; the payload is everything before it.
    let cases = [
        ("a:b:c:d:é", Error::MalformedTimestamp),
        ("a:b:c:d:e", Error::MalformedPayload),
        ("::::", Error::MalformedTimestamp),
        ("e30:::1r31eq", Error::MalformedPayload),
        ("e30:x:1r31eq", Error::MalformedPayload),
    ];
    for (value, expected) in cases {
        let result = signer.unsign_object(&plain.sign(value), &UnsignOptions::default());
        assert_eq!(
            result.as_ref().map_err(|e| e.to_string()),
            Err(expected.to_string()),
            "{value:?}"
        );
    }
}

#[test]
fn a_sixty_four_megabyte_forged_token_is_refused_without_copying_it() {
    if !isolated("a_sixty_four_megabyte_forged_token_is_refused_without_copying_it") {
        return;
    }
    let signer = signer();
    // 64 MiB keeps the unoptimized HMAC of the test build to a few seconds; nothing depends on it.
    let mut token = "A".repeat(64 * MIB);
    token.push_str(":1r31eq:");
    token.push_str(&"B".repeat(43));
    let (result, growth) =
        peak_growth_mib(|| signer.unsign_object(&token, &UnsignOptions::default()));
    assert_bad_signature(result, "64 MiB token");
    assert!(growth < 8, "peak RSS grew {growth} MiB for a 64 MiB token");
}

// ---------------------------------------------------------------------------------------------
// Timestamps and clocks at the extremes.

#[test]
fn timestamps_at_the_i64_extremes_round_trip_through_base62() {
    for n in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX] {
        assert_eq!(b62_decode(&b62_encode(n)).unwrap(), n, "{n}");
    }
    assert_eq!(b62_encode(i64::MAX), "AzL8n0Y58m7");
    assert_eq!(b62_encode(i64::MIN), "-AzL8n0Y58m8");
}

#[test]
fn base62_beyond_i64_or_outside_the_alphabet_is_malformed() {
    for text in [
        "",
        "AzL8n0Y58m8",
        "-AzL8n0Y58m9",
        "zzzzzzzzzzzz",
        &"z".repeat(100_000),
        "1r31eq ",
        "+1",
        "--1",
        "1-",
        "é",
        "\0",
    ] {
        assert!(
            matches!(b62_decode(text), Err(Error::MalformedTimestamp)),
            "{text:?}"
        );
    }
    // Django's quirks on valid input stay: a lone "-" is 0, leading zeros are fine.
    assert_eq!(b62_decode("-").unwrap(), 0);
    assert_eq!(b62_decode(&format!("{}1", "0".repeat(10_000))).unwrap(), 1);
}

#[test]
fn any_timestamp_against_any_clock_and_maximum_age_is_a_verdict_not_a_panic() {
    let signer = signer();
    let clocks = [
        UNIX_EPOCH,
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        UNIX_EPOCH - Duration::from_secs(1_000_000_000_000),
        UNIX_EPOCH + Duration::from_secs(i64::MAX.unsigned_abs()),
        UNIX_EPOCH + Duration::new(u64::MAX / 4, 999_999_999),
    ];
    let ages = [
        None,
        Some(Duration::ZERO),
        Some(Duration::from_secs(60)),
        Some(Duration::MAX),
    ];
    for timestamp in [i64::MIN, -1, 0, 1_700_000_000, 253_402_300_800, i64::MAX] {
        let token = signer.sign_at("v", timestamp);
        for now in clocks {
            for max_age in ages {
                match signer.unsign_at(&token, max_age, now) {
                    Ok(value) => assert_eq!(value, "v"),
                    Err(Error::Expired {
                        age_seconds,
                        max_age_seconds,
                    }) => assert!(age_seconds > max_age_seconds),
                    Err(other) => panic!("{timestamp} at {now:?} / {max_age:?}: {other}"),
                }
            }
        }
    }
}

#[test]
fn a_timestamp_before_1970_is_expired_and_one_in_the_far_future_is_not() {
    let signer = signer();
    let now = SystemTime::now();
    let max_age = Some(Duration::from_secs(3600));
    for past in [i64::MIN, -1, 0] {
        let token = signer.sign_at("v", past);
        let result = signer.unsign_at(&token, max_age, now);
        assert!(
            matches!(result, Err(ref e) if e.is_expired()),
            "{past}: {result:?}"
        );
    }
    // Django only compares the age with max_age, so a future timestamp (forgeable only by a holder
    // of the key) always passes.
    let token = signer.sign_at("v", i64::MAX);
    let future = signer.unsign_at(&token, max_age, now);
    assert_eq!(future.unwrap(), "v");
}

// ---------------------------------------------------------------------------------------------
// Compressed payloads other than the plain bomb.

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn broken_zlib_streams_are_decompression_errors() {
    let signer = signer();
    let stream = zlib(&[b'x'; 10_000]);
    let mut bad_checksum = stream.clone();
    *bad_checksum.last_mut().unwrap() ^= 1;
    for (what, compressed) in [
        ("empty", Vec::new()),
        ("header only", stream[..2].to_vec()),
        ("truncated", stream[..stream.len() / 2].to_vec()),
        ("no checksum", stream[..stream.len() - 4].to_vec()),
        ("bad checksum", bad_checksum),
        ("raw deflate", stream[2..].to_vec()),
        ("not zlib", b"\xff\xff\xff\xff".to_vec()),
    ] {
        let token = signer.sign_at(&format!(".{}", b64_encode(&compressed)), 0);
        let result = signer.unsign_object(&token, &UnsignOptions::default());
        assert!(
            matches!(result, Err(Error::Decompression)),
            "{what}: {result:?}"
        );
    }
}

#[test]
fn a_bomb_hidden_after_the_end_of_a_small_stream_is_ignored_like_python() {
    if !isolated("a_bomb_hidden_after_the_end_of_a_small_stream_is_ignored_like_python") {
        return;
    }
    let signer = signer();
    let mut compressed = zlib(b"{}");
    compressed.extend(zlib(&vec![0u8; 64 * MIB]));
    let token = signer.sign_at(&format!(".{}", b64_encode(&compressed)), 0);
    let (result, growth) =
        peak_growth_mib(|| signer.unsign_object(&token, &UnsignOptions::default()));
    assert_eq!(result.unwrap(), b"{}");
    assert!(growth < 8, "peak RSS grew {growth} MiB");
}

#[test]
fn a_bomb_signed_with_a_fallback_key_is_bounded_too() {
    if !isolated("a_bomb_signed_with_a_fallback_key_is_bounded_too") {
        return;
    }
    let old = TimestampSigner::new(SecretKey::from("an old secret"))
        .with_salt("django.contrib.sessions.SessionStore");
    let token = old.sign_at(
        &format!(".{}", b64_encode(&zlib(&vec![b' '; 128 * MIB]))),
        0,
    );
    let options = UnsignOptions {
        max_decompressed_size: MIB,
        ..UnsignOptions::default()
    };
    let (result, growth) = peak_growth_mib(|| signer().unsign_object(&token, &options));
    assert!(
        matches!(result, Err(Error::DecompressedTooLarge { limit: MIB })),
        "{result:?}"
    );
    assert!(growth < 16, "peak RSS grew {growth} MiB");
}

// ---------------------------------------------------------------------------------------------
// Legacy (pre-3.1) session data.

#[test]
fn hostile_legacy_data_is_malformed_or_a_bad_signature() {
    let secret = SecretKey::from(SECRET);
    let salt = legacy::SESSION_KEY_SALT;
    let b64 = |bytes: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let cases: Vec<(String, bool)> = vec![
        // (data, is a bad signature rather than malformed)
        (b64(b":"), true),
        (b64(b"::::::"), true),
        (b64(&[b"0".repeat(40), b":{}".to_vec()].concat()), true),
        (b64(&[b"a".repeat(100_000), b":{}".to_vec()].concat()), true),
        (b64(&[&b"\xff\xfe"[..], b":{}"].concat()), false),
        (b64(b"no colon anywhere"), false),
        (" \n\t ".repeat(1_000_000), false),
        ("=".repeat(1_000), false),
        ("A".repeat(4 * 1_000_000 + 1), false),
        ("é".repeat(1000), false),
    ];
    let outcomes = bounded(move || {
        cases
            .into_iter()
            .map(|(data, bad_signature)| {
                let result = legacy::decode_session(&data, &secret, &[], salt);
                (
                    data.chars().take(20).collect::<String>(),
                    bad_signature,
                    result,
                )
            })
            .collect::<Vec<_>>()
    });
    for (shown, bad_signature, result) in outcomes {
        match result {
            Err(Error::BadSignature) if bad_signature => {}
            Err(Error::MalformedPayload) if !bad_signature => {}
            other => panic!("{shown:?}…: {other:?}"),
        }
    }
}

#[test]
fn a_sixteen_megabyte_legacy_value_is_refused_in_bounded_time() {
    if !isolated("a_sixteen_megabyte_legacy_value_is_refused_in_bounded_time") {
        return;
    }
    let data = "QUFB".repeat(4 * MIB); // base64 of 12 MiB of "A", no colon
    let (result, growth) = peak_growth_mib(|| {
        bounded(move || {
            legacy::decode_session(
                &data,
                &SecretKey::from(SECRET),
                &[],
                legacy::SESSION_KEY_SALT,
            )
        })
    });
    assert!(matches!(result, Err(Error::MalformedPayload)), "{result:?}");
    // Decoding needs the bytes once more (a whitespace-free copy and the decoded bytes).
    assert!(growth < 48, "peak RSS grew {growth} MiB");
}
