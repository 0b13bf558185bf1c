//! What the fuzz targets share: the secrets and clock they run with, the codecs they decode with
//! (built once, since deriving HMAC keys per input would dominate the run), and the invariants
//! several targets check.
//!
//! Each target reads its first input byte as a *selector* (which codec, which mode) and the rest
//! as the data, so one corpus entry pins one exact path through the code.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use session_core::config::SESSION_KEY_SALT;
use session_core::serializer::SerializerName;
use session_core::value::dicts_identical;
use session_core::{Algorithm, Dict, SecretKey, SessionCodec, SessionConfig};
use session_signing::TimestampSigner;

/// The secret every target signs with: the one the committed Django fixtures were signed with, so
/// the seed tokens verify and mutations start from valid data.
pub const SECRET: &str = "django_tests_secret_key";
/// A fallback key, so the fallback-verification path is fuzzed too.
pub const FALLBACK: &str = "fuzz-old-secret-key";
/// The fixed "now" of every decode (2023-11-14T22:13:20Z), so runs are reproducible.
pub const NOW: i64 = 1_700_000_000;

/// [`NOW`] as a `SystemTime`.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW.unsigned_abs())
}

/// `UNIX_EPOCH + seconds` when representable (negative seconds are before 1970).
pub fn system_time(seconds: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

/// Splits the selector byte off an input (an empty input selects 0 and has no data).
pub fn split(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&selector, rest)) => (selector, rest),
        None => (0, &[]),
    }
}

/// Reads a little-endian `i64` from the front of `data` (zero-padded), returning the rest.
pub fn take_i64(data: &[u8]) -> (i64, &[u8]) {
    let n = data.len().min(8);
    let mut bytes = [0u8; 8];
    bytes[..n].copy_from_slice(&data[..n]);
    (i64::from_le_bytes(bytes), &data[n..])
}

/// How a codec variant verifies and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Django 4.0+: SHA-256 tokens only.
    Current,
    /// `accept_legacy_formats`: also SHA-1 tokens and the pre-3.1 session format.
    AcceptLegacy,
    /// `hashing_algorithm = sha1`: writes the pre-3.1 session format, as Django 3.x did.
    Sha1,
}

const SERIALIZERS: [SerializerName; 3] = [
    SerializerName::Json,
    SerializerName::MsgPack,
    SerializerName::Pickle,
];
const VARIANTS: [Variant; 3] = [Variant::Current, Variant::AcceptLegacy, Variant::Sha1];

/// The session configuration of one serializer and variant.
pub fn config(serializer: SerializerName, variant: Variant) -> SessionConfig {
    SessionConfig {
        secret_key_fallbacks: vec![SecretKey::from(FALLBACK)],
        serializer,
        accept_legacy_formats: variant == Variant::AcceptLegacy,
        hashing_algorithm: if variant == Variant::Sha1 {
            Algorithm::Sha1
        } else {
            Algorithm::Sha256
        },
        // Small, so inflating stays fast; the bound itself is what is being checked.
        max_decompressed_size: 256 * 1024,
        ..SessionConfig::new(SECRET)
    }
}

/// One codec under test, with a signer that signs exactly what it verifies (same key, salt and
/// algorithm), to build validly signed tokens around fuzzed payloads.
#[derive(Debug)]
pub struct CodecUnderTest {
    /// The serializer's configuration name.
    pub serializer: SerializerName,
    /// How it verifies and writes.
    pub variant: Variant,
    /// The codec.
    pub codec: SessionCodec,
    /// A signer whose tokens the codec accepts.
    pub signer: TimestampSigner,
}

/// Every serializer × variant, built once.
pub fn codecs() -> &'static [CodecUnderTest] {
    static CODECS: OnceLock<Vec<CodecUnderTest>> = OnceLock::new();
    CODECS.get_or_init(|| {
        let mut all = Vec::new();
        for serializer in SERIALIZERS {
            for variant in VARIANTS {
                let config = config(serializer, variant);
                let codec = SessionCodec::new(&config).expect("the fuzz configuration is valid");
                let signer = TimestampSigner::new(config.secret_key.clone())
                    .with_salt(SESSION_KEY_SALT)
                    .with_algorithm(config.hashing_algorithm);
                all.push(CodecUnderTest {
                    serializer,
                    variant,
                    codec,
                    signer,
                });
            }
        }
        all
    })
}

/// The codec a selector's low four bits pick: `serializer * 3 + variant`, with json, msgpack,
/// pickle and current, accept-legacy, sha1 in that order (9 to 15 wrap around).
pub fn codec_for(selector: u8) -> &'static CodecUnderTest {
    let all = codecs();
    &all[usize::from(selector & 0x0f) % all.len()]
}

/// Invariant: whatever a codec decoded, it encodes again, and that encoding decodes to an
/// identical dict (floats bit for bit, keys in order).
pub fn assert_round_trips(codec: &SessionCodec, data: &Dict, compress: bool) {
    let encoded = codec
        .encode_with(data, compress, Some(NOW))
        .unwrap_or_else(|e| panic!("a decoded session failed to encode again: {e}"));
    let decoded = codec
        .try_decode_at(&encoded, None, now())
        .unwrap_or_else(|e| panic!("our own encoding failed to decode: {e}; token {encoded:?}"));
    assert!(
        dicts_identical(data, &decoded),
        "round trip changed the session: {data:?} became {decoded:?}"
    );
}
