//! Hostile input at the session layer: what the serializers, the codec, session keys and the
//! `Session` handle do with data an attacker (or a leaked key) controls.
//!
//! Every case has a stated outcome (a typed error, or an empty session with the security warning)
//! and runs under a time limit; the nesting cases run on a 256 KiB stack to prove the parsers do not
//! recurse without bound, and the expansion cases measure the process's peak memory.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use session_conformance::memory::{isolated, peak_growth_mib};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use session_core::config::SESSION_KEY_SALT;
use session_core::serializer::{SerializerError, SerializerName, json, msgpack, pickle};
use session_core::value::MAX_DEPTH;
use session_core::{
    Dict, Error, MemoryStore, SecretKey, Session, SessionCodec, SessionConfig, SessionKey, Value,
};
use session_signing::{TimestampSigner, b64_encode};

const SECRET: &str = "django_tests_secret_key";
const MIB: usize = 1 << 20;
/// A small stack: a parser that recursed once per nesting level of a 100 000-deep input (at least
/// 100 bytes a level, so 10 MB) would overflow it many times over.
///
/// 256 KiB in optimized builds, where parsing [`MAX_DEPTH`] levels needs at most 128 KiB (JSON) and
/// 256 KiB (MessagePack, pickle). Unoptimized frames are several times larger: there the same
/// parses need up to 768 KiB (JSON objects), 1 MiB (pickle) and 1.5 MiB (MessagePack), so debug
/// builds use 2 MiB, the default stack of spawned threads and tokio's workers.
const SMALL_STACK: usize = if cfg!(debug_assertions) {
    2 * 1024 * 1024
} else {
    256 * 1024
};
/// Generous: every case here finishes in milliseconds.
const LIMIT: Duration = Duration::from_secs(30);

/// Runs `f` on a thread with `stack` bytes of stack and fails the test if it does not finish within
/// [`LIMIT`] (a hang) or panics (a stack overflow aborts the whole process, which fails it too).
fn bounded<T: Send + 'static>(stack: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || {
            let _ = done.send(f());
        })
        .unwrap();
    result
        .recv_timeout(LIMIT)
        .expect("finished within the time limit without panicking")
}

fn codec(serializer: SerializerName) -> SessionCodec {
    SessionCodec::new(&SessionConfig {
        serializer,
        ..SessionConfig::new(SECRET)
    })
    .unwrap()
}

/// Signs `payload` exactly as the codec's signer would (a holder of the secret key).
fn signer() -> TimestampSigner {
    TimestampSigner::new(SecretKey::from(SECRET)).with_salt(SESSION_KEY_SALT)
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Memory measurement: the peak RSS of a test running alone in its own process.

// ---------------------------------------------------------------------------------------------
// Deep nesting: a typed TooDeep error on a small stack, never a stack overflow.

fn nested_json(depth: usize, open: &str, close: &str) -> Vec<u8> {
    let mut out = open.repeat(depth);
    out.push_str(&close.repeat(depth));
    out.into_bytes()
}

#[test]
fn json_nested_a_hundred_thousand_levels_is_too_deep_on_a_small_stack() {
    let lists = bounded(SMALL_STACK, || {
        json::from_slice(&nested_json(100_000, "[", "]"))
    });
    assert_eq!(lists, Err(SerializerError::TooDeep { limit: MAX_DEPTH }));
    let dicts = bounded(SMALL_STACK, || {
        let mut text = "{\"a\":".repeat(100_000);
        text.push('1');
        text.push_str(&"}".repeat(100_000));
        json::from_str(&text)
    });
    assert_eq!(dicts, Err(SerializerError::TooDeep { limit: MAX_DEPTH }));
    // Unterminated: the depth check fires before the missing brackets are noticed.
    let open_only = bounded(SMALL_STACK, || json::from_slice(&b"[".repeat(1_000_000)));
    assert_eq!(
        open_only,
        Err(SerializerError::TooDeep { limit: MAX_DEPTH })
    );
}

#[test]
fn json_at_the_depth_limit_parses_and_one_more_level_does_not() {
    let (at, over) = bounded(SMALL_STACK, || {
        let at = json::from_slice(&nested_json(MAX_DEPTH, "[", "]")).map(|v| v.depth());
        let over = json::from_slice(&nested_json(MAX_DEPTH + 1, "[", "]")).map(|v| v.depth());
        (at, over)
    });
    assert_eq!(at, Ok(MAX_DEPTH));
    assert_eq!(over, Err(SerializerError::TooDeep { limit: MAX_DEPTH }));
}

#[test]
fn msgpack_nested_a_hundred_thousand_levels_is_too_deep_on_a_small_stack() {
    // fixarray of one element (0x91), 100 000 times, then nil; and the same with fixmaps {"": ...}.
    let mut arrays = vec![0x91u8; 100_000];
    arrays.push(0xc0);
    let mut maps = [0x81u8, 0xa0].repeat(100_000);
    maps.push(0xc0);
    let results = bounded(SMALL_STACK, move || {
        (msgpack::from_slice(&arrays), msgpack::from_slice(&maps))
    });
    assert_eq!(
        results.0,
        Err(SerializerError::TooDeep { limit: MAX_DEPTH })
    );
    assert_eq!(
        results.1,
        Err(SerializerError::TooDeep { limit: MAX_DEPTH })
    );
}

#[test]
fn pickle_nested_a_hundred_thousand_levels_is_too_deep_on_a_small_stack() {
    const N: usize = 100_000;
    // Protocol 2: N empty lists, then N-1 APPENDs fold each into the one below.
    let mut appends = vec![0x80, 0x02];
    appends.extend(std::iter::repeat_n(b']', N));
    appends.extend(std::iter::repeat_n(b'a', N - 1));
    appends.push(b'.');
    // Protocol 0 style: N MARKs, then N LISTs, each wrapping what is above its mark.
    let mut marks = vec![b'('; N];
    marks.extend(std::iter::repeat_n(b'l', N));
    marks.push(b'.');
    // Dicts: {"": {"": ... }} with SETITEM.
    let mut dicts = vec![0x80, 0x04];
    for _ in 0..N {
        dicts.extend_from_slice(&[b'}', 0x8c, 0x00]);
    }
    dicts.push(b'N');
    dicts.extend(std::iter::repeat_n(b's', N));
    dicts.push(b'.');
    let results = bounded(SMALL_STACK, move || {
        [appends, marks, dicts].map(|bytes| pickle::from_slice(&bytes))
    });
    for result in results {
        assert_eq!(result, Err(SerializerError::TooDeep { limit: MAX_DEPTH }));
    }
}

#[test]
fn nested_input_through_the_codec_is_an_empty_session_on_a_small_stack() {
    let token = signer().sign_object_at(&nested_json(100_000, "[", "]"), true, 1_700_000_000);
    let (strict, lenient) = bounded(SMALL_STACK, move || {
        let codec = codec(SerializerName::Json);
        (codec.try_decode(&token, None), codec.decode(&token))
    });
    assert!(matches!(
        strict,
        Err(Error::Serializer(SerializerError::TooDeep { .. }))
    ));
    assert!(lenient.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Expansion: decompression bombs and shared-reference bombs cost bounded memory.

/// A signed token whose payload inflates to `mib` MiB of JSON-looking text (a string of spaces),
/// built by compressing it for real (about 1 KB per MiB at level 9).
fn signed_bomb(mib: usize) -> String {
    let mut payload = Vec::with_capacity(mib * MIB + 16);
    payload.extend_from_slice(b"{\"a\":\"");
    payload.resize(mib * MIB, b' ');
    payload.extend_from_slice(b"\"}");
    let compressed = zlib(&payload);
    signer().sign_at(&format!(".{}", b64_encode(&compressed)), 1_700_000_000)
}

#[test]
fn a_signed_decompression_bomb_through_the_codec_is_refused_within_the_limit() {
    if !isolated("a_signed_decompression_bomb_through_the_codec_is_refused_within_the_limit") {
        return;
    }
    let token = signed_bomb(256);
    assert!(token.len() < 2 * MIB, "{} bytes", token.len());
    let codec = codec(SerializerName::Json);
    let (result, growth) = peak_growth_mib(|| codec.try_decode(&token, None));
    match result {
        Err(Error::Signing(e)) => assert!(
            e.to_string().contains("exceeds the limit of 4194304 bytes"),
            "{e}"
        ),
        other => panic!("expected DecompressedTooLarge, got {other:?}"),
    }
    // The limit is 4 MiB; inflating the whole 256 MiB would show.
    assert!(growth < 32, "peak RSS grew {growth} MiB");
    assert!(codec.decode(&token).is_empty());
}

#[test]
fn a_bomb_just_under_the_limit_is_inflated_and_one_byte_over_is_not() {
    let limit = 64 * 1024;
    let codec = SessionCodec::new(&SessionConfig {
        max_decompressed_size: limit,
        ..SessionConfig::new(SECRET)
    })
    .unwrap();
    let json_of_len = |len: usize| {
        let mut text = b"{\"a\":\"".to_vec();
        text.resize(len - 2, b'x');
        text.extend_from_slice(b"\"}");
        text
    };
    let sign = |bytes: &[u8]| signer().sign_at(&format!(".{}", b64_encode(&zlib(bytes))), 0);
    assert_eq!(
        codec.try_decode(&sign(&json_of_len(limit)), None).unwrap()["a"]
            .as_str()
            .map(str::len),
        Some(limit - 8)
    );
    let over = codec.try_decode(&sign(&json_of_len(limit + 1)), None);
    assert!(
        matches!(&over, Err(Error::Signing(e)) if !e.is_bad_signature()),
        "{over:?}"
    );
}

#[test]
fn a_pickle_of_shared_references_doubling_sixty_times_is_too_large_not_an_exabyte() {
    if !isolated("a_pickle_of_shared_references_doubling_sixty_times_is_too_large_not_an_exabyte") {
        return;
    }
    // Level 0 is [None]; level i+1 is (level i, level i) through the memo: 2^60 values in ~700 bytes.
    let mut bytes = vec![0x80, 0x04, b']', b'N', b'a', 0x94];
    for level in 0..60u8 {
        bytes.extend_from_slice(&[b'h', level, b'h', level, 0x86, 0x94]);
    }
    bytes.push(b'.');
    let (result, growth) =
        peak_growth_mib(|| bounded(SMALL_STACK, move || pickle::from_slice(&bytes)));
    assert!(
        matches!(result, Err(SerializerError::TooLarge { .. })),
        "{result:?}"
    );
    assert!(growth < 64, "peak RSS grew {growth} MiB");
}

#[test]
fn length_fields_claiming_gigabytes_are_refused_before_allocating() {
    if !isolated("length_fields_claiming_gigabytes_are_refused_before_allocating") {
        return;
    }
    type Parse = fn(&[u8]) -> Result<Value, SerializerError>;
    let cases: Vec<(&str, Vec<u8>, Parse)> = vec![
        (
            "msgpack array32",
            vec![0xdd, 0xff, 0xff, 0xff, 0xff],
            msgpack::from_slice,
        ),
        (
            "msgpack map32",
            vec![0xdf, 0xff, 0xff, 0xff, 0xff],
            msgpack::from_slice,
        ),
        (
            "msgpack str32",
            vec![0xdb, 0xff, 0xff, 0xff, 0xff, b'a'],
            msgpack::from_slice,
        ),
        (
            "pickle BINUNICODE8",
            [&[0x80, 0x04, 0x8d][..], &[0xff; 8], b"abc"].concat(),
            pickle::from_slice,
        ),
        (
            "pickle BINUNICODE",
            [&[0x80, 0x02, b'X'][..], &[0xff; 4], b"abc"].concat(),
            pickle::from_slice,
        ),
        (
            "pickle FRAME",
            [&[0x80, 0x04, 0x95][..], &[0xff; 8], b"N."].concat(),
            pickle::from_slice,
        ),
        (
            "pickle LONG4",
            [&[0x80, 0x02, 0x8b][..], &[0xff, 0xff, 0xff, 0x7f], b"."].concat(),
            pickle::from_slice,
        ),
    ];
    for (name, bytes, parse) in cases {
        let (result, growth) = peak_growth_mib(|| parse(&bytes));
        assert!(
            matches!(result, Err(SerializerError::Malformed { .. })),
            "{name}: {result:?}"
        );
        assert!(growth < 16, "{name}: peak RSS grew {growth} MiB");
    }
}

#[test]
fn json_integers_longer_than_pythons_digit_limit_are_refused_like_python() {
    let digits = "9".repeat(100_000);
    let result = json::from_str(&format!("{{\"n\":{digits}}}"));
    assert!(
        matches!(&result, Err(SerializerError::Malformed { reason, .. }) if reason.contains("4300")),
        "{result:?}"
    );
    assert!(json::from_str(&format!("{{\"n\":{}}}", "9".repeat(4300))).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Non-UTF-8 and otherwise broken stored values: typed errors, never a panic.

#[test]
fn non_utf8_serializer_bytes_are_typed_errors_or_latin1_like_django() {
    // JSON: bytes are read as Latin-1, as Django's JSONSerializer does (`data.decode("latin-1")`),
    // so no byte is unreadable; what is not JSON is a typed error.
    assert_eq!(
        json::from_slice(b"{\"a\":\"\xff\xfe\"}")
            .unwrap()
            .as_dict()
            .unwrap()["a"],
        Value::Str("\u{ff}\u{fe}".into())
    );
    assert!(
        json::from_slice(b"{\"\xc3\":1}")
            .unwrap()
            .as_dict()
            .unwrap()
            .contains_key("\u{c3}")
    );
    for bytes in [&b"\xff\xfe{}"[..], b"\x00", b"{\"a\":\xff}"] {
        let result = json::from_slice(bytes);
        assert!(
            matches!(result, Err(SerializerError::Malformed { .. })),
            "{bytes:?}: {result:?}"
        );
    }
    // msgpack str with invalid UTF-8.
    assert!(matches!(
        msgpack::from_slice(b"\xa2\xff\xfe"),
        Err(SerializerError::Malformed { .. })
    ));
    // pickle: BINUNICODE must be UTF-8; Python 2 strings are read as Latin-1 and always work.
    assert!(matches!(
        pickle::from_slice(b"\x80\x02X\x02\x00\x00\x00\xff\xfe."),
        Err(SerializerError::Malformed { .. })
    ));
    assert_eq!(
        pickle::from_slice(b"\x80\x02U\x02\xff\xfe."),
        Ok(Value::Str("\u{ff}\u{fe}".into()))
    );
}

#[test]
fn validly_signed_garbage_decodes_to_an_empty_session_for_every_serializer() {
    for serializer in [
        SerializerName::Json,
        SerializerName::MsgPack,
        SerializerName::Pickle,
    ] {
        let codec = codec(serializer);
        for garbage in [
            &b"\xff\xfe\xfd"[..],
            b"",
            b"[1,2]",
            b"\x80\x05\x95",
            b"cos\nsystem\n.",
        ] {
            for compress in [false, true] {
                let token = signer().sign_object_at(garbage, compress, 1_700_000_000);
                assert!(
                    codec.try_decode(&token, None).is_err(),
                    "{serializer}: {garbage:?}"
                );
                assert!(codec.decode(&token).is_empty());
            }
        }
    }
}

#[test]
fn unsigned_cache_bytes_that_do_not_hold_a_dict_are_an_empty_session() {
    for serializer in [
        SerializerName::Json,
        SerializerName::MsgPack,
        SerializerName::Pickle,
    ] {
        let codec = codec(serializer);
        for bytes in [
            &b"\xff"[..],
            b"",
            b"\x00\x00\x00\x00",
            b"null",
            b"\x80\x04N.",
        ] {
            assert!(
                codec.deserialize(bytes).is_empty(),
                "{serializer}: {bytes:?}"
            );
            assert!(
                codec.deserialize_dict(bytes).is_err(),
                "{serializer}: {bytes:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens: wrong signatures, truncation, separators, timestamps. Always a typed error; never Ok.

fn valid_token() -> String {
    let mut data = Dict::new();
    data.insert("user", Value::from(42i64));
    codec(SerializerName::Json)
        .encode_at(&data, 1_700_000_000)
        .unwrap()
}

#[test]
fn every_truncation_of_a_valid_token_is_refused_as_a_bad_signature() {
    let token = valid_token();
    let codec = codec(SerializerName::Json);
    assert!(codec.try_decode(&token, None).is_ok());
    for end in 0..token.len() {
        match codec.try_decode(&token[..end], None) {
            Err(Error::Signing(e)) => assert!(e.is_bad_signature(), "{end}: {e}"),
            other => panic!("prefix of {end} bytes: {other:?}"),
        }
    }
}

#[test]
fn signatures_of_the_wrong_length_are_bad_signatures() {
    let token = valid_token();
    let codec = codec(SerializerName::Json);
    let (body, signature) = token.rsplit_once(':').unwrap();
    for wrong in [
        String::new(),
        signature[..signature.len() - 1].to_owned(),
        format!("{signature}A"),
        format!("{signature}{signature}"),
        "A".repeat(10_000),
        "é".repeat(43),
    ] {
        match codec.try_decode(&format!("{body}:{wrong}"), None) {
            Err(Error::Signing(e)) => assert!(e.is_bad_signature(), "{e}"),
            other => panic!("{wrong:?}: {other:?}"),
        }
    }
}

#[test]
fn a_million_separators_are_refused_in_bounded_time() {
    let result = bounded(SMALL_STACK, || {
        let codec = codec(SerializerName::Json);
        let tokens = [
            ":".repeat(1_000_000),
            "a:".repeat(500_000),
            format!("{}{}", ":".repeat(1_000_000), valid_token()),
        ];
        tokens.map(|t| codec.try_decode(&t, None).map(|_| ()))
    });
    for outcome in result {
        assert!(
            matches!(&outcome, Err(Error::Signing(e)) if e.is_bad_signature()),
            "{outcome:?}"
        );
    }
}

#[test]
fn timestamps_far_in_the_future_or_before_1970_decode_and_age_without_overflow() {
    let codec = SessionCodec::with_token_salt(
        &SessionConfig::new(SECRET),
        session_core::codec::SIGNED_COOKIES_SALT,
    )
    .unwrap();
    let signer = TimestampSigner::new(SecretKey::from(SECRET))
        .with_salt(session_core::codec::SIGNED_COOKIES_SALT);
    let now = std::time::SystemTime::now();
    for timestamp in [i64::MAX, i64::MIN, i64::MIN + 1, -1, 0, 253_402_300_800] {
        let token = signer.sign_object_at(b"{}", false, timestamp);
        // Without a maximum age any timestamp verifies.
        assert_eq!(codec.try_decode_at(&token, None, now).unwrap(), Dict::new());
        // With one, the future passes (as in Django) and the past is expired.
        let aged = codec.try_decode_at(&token, Some(Duration::from_secs(60)), now);
        if timestamp > 1_700_000_000 {
            assert!(aged.is_ok(), "{timestamp}: {aged:?}");
        } else {
            assert!(
                matches!(&aged, Err(Error::Signing(e)) if e.is_expired()),
                "{timestamp}: {aged:?}"
            );
        }
        let forever = codec.try_decode_at(&token, Some(Duration::MAX), now);
        assert!(forever.is_ok(), "{timestamp}: {forever:?}");
    }
}

#[test]
fn base62_timestamps_beyond_i64_are_malformed_not_wrapped() {
    let plain = session_signing::Signer::new(SecretKey::from(SECRET)).with_salt(SESSION_KEY_SALT);
    let codec = codec(SerializerName::Json);
    // i64::MAX is AzL8n0Y58m7 in base62; one more, and far more, overflow.
    for stamp in [
        "AzL8n0Y58m8",
        "-AzL8n0Y58m9",
        "zzzzzzzzzzzzzzzzzzzz",
        &"9".repeat(10_000),
    ] {
        let token = plain.sign(&format!("e30:{stamp}"));
        let result = codec.try_decode(&token, Some(Duration::from_secs(60)));
        assert!(
            matches!(&result, Err(Error::Signing(e)) if e.to_string().contains("timestamp")),
            "{stamp}: {result:?}"
        );
        assert!(codec.decode(&token).is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Session keys: too long, path-like, non-ASCII. A client can never make a store see them.

#[test]
fn a_ten_thousand_character_key_is_no_key() {
    let long = "a".repeat(10_000);
    assert!(SessionKey::from_client(&long).is_none());
    assert!(matches!(
        SessionKey::new(long.clone()),
        Err(Error::InvalidSessionKey { len: 10_000 })
    ));
    assert!(SessionKey::from_client(&"é".repeat(5_000)).is_none());
}

#[test]
fn path_like_and_control_character_keys_are_valid_keys_but_never_generated_form() {
    for key in [
        "../../etc/passwd",
        "/etc/passwd",
        "..\\..\\windows\\win.ini",
        "abcdefgh\0ijkl",
        "ABCDEFGHIJ",
        "abc def ghi",
    ] {
        let parsed = SessionKey::from_client(key).unwrap();
        assert!(!parsed.is_generated_form(), "{key:?}");
    }
}

#[tokio::test]
async fn a_session_offered_a_hostile_key_loads_empty_and_saves_under_a_fresh_key() {
    let store = Arc::new(MemoryStore::new());
    let config = Arc::new(SessionConfig::new(SECRET));
    for offered in [
        "a".repeat(10_000),
        "k".repeat(SessionKey::MAX_LEN),
        "../../etc/passwd".to_owned(),
        "\u{0}\u{1}\u{2}\u{3}\u{4}\u{5}\u{6}\u{7}".to_owned(),
        "short".to_owned(),
    ] {
        let session = Session::new(store.clone(), config.clone(), Some(&offered));
        assert_eq!(session.len().await.unwrap(), 0);
        session.insert("a", &1).await.unwrap();
        session.save().await.unwrap();
        let key = session.key().unwrap();
        assert_ne!(key.as_str(), offered);
        assert!(key.is_generated_form() && key.as_str().len() == 32);
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile `_session_expiry` values inside validly decoded data: no overflow anywhere.

#[tokio::test]
async fn extreme_session_expiry_values_never_overflow() {
    let config = Arc::new(SessionConfig::new(SECRET));
    for expiry in [
        Value::from(i64::MAX),
        Value::from(i64::MIN),
        Value::from(u64::MAX),
        Value::Float(f64::NAN),
        Value::Float(1e308),
        Value::Str("9999-12-31T23:59:59.999999+00:00".into()),
        Value::Str("0001-01-01T00:00:00-23:59".into()),
        Value::Str("not a date".into()),
        Value::List(vec![Value::Null; 3]),
    ] {
        let store = Arc::new(MemoryStore::new());
        let session = Session::new(store.clone(), config.clone(), None);
        session.insert("a", &1).await.unwrap();
        session.save().await.unwrap();
        let key = session.key().unwrap();
        let loaded = Session::new(store.clone(), config.clone(), Some(key.as_str()));
        loaded
            .insert_value("_session_expiry", expiry.clone())
            .await
            .unwrap();
        let _ = loaded.expiry_age().await;
        let _ = loaded.expiry_date().await;
        let _ = loaded.expire_at_browser_close().await;
        // Saving computes the record's expiry from it: a value or a typed error, no panic.
        let _ = loaded.save().await;
    }
}
