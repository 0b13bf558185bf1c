//! zlib compression as `sign_object` uses it, and bounded decompression.
//!
//! Two implementations, each where it is best: deflate is CPython's C zlib (flate2's `zlib`
//! backend), the only one whose bytes match Django's (it deflates the body; the zlib wrapper's
//! Adler-32 comes from zlib-rs's SIMD checksum, the same four bytes); inflate is zlib-rs, which
//! reads the same streams (inflating is deterministic: a valid stream has one meaning) and does
//! it faster.

use std::cell::RefCell;
use std::thread::LocalKey;

use flate2::{Compress, Compression, FlushCompress, Status};
use zlib_rs::{Inflate, InflateFlush};

use crate::Error;
use crate::encoding::b64_decode_into;

/// How [`Signer::sign_object`](crate::Signer::sign_object) deflates a payload it compresses.
///
/// Reading accepts every valid zlib stream whatever the setting, as Django's does, so a value
/// written with either one reads everywhere.
///
/// | setting | zlib level | a 2 KB session (JSON) | a 32 KB session |
/// |---|---|---|---|
/// | [`Django`](Deflate::Django) | 6, CPython's `zlib.compress` default | Django's bytes: 950 B | Django's bytes: 6,796 B |
/// | [`Fast`](Deflate::Fast) | 1 | 1,008 B (+6 %), encoded 1.2× faster | 8,644 B (+27 %), encoded 2.1× faster |
///
/// (The bench's sessions, 2026-12-07: `bench/README.md`.)
///
/// ```
/// use session_signing::{Deflate, SecretKey, TimestampSigner, UnsignOptions};
///
/// let json = br#"{"cart":"sku-1,sku-1,sku-1,sku-1,sku-1,sku-1,sku-1,sku-1"}"#;
/// let fast = TimestampSigner::new(SecretKey::from("secret")).with_deflate(Deflate::Fast);
/// let token = fast.sign_object_at(json, true, 1_700_000_000);
/// assert!(token.starts_with(".eA")); // zlib header 78 01, level 1 (Django's 78 9c reads ".eJ")
/// let django = TimestampSigner::new(SecretKey::from("secret"));
/// let read = django.unsign_object(&token, &UnsignOptions::default()).unwrap();
/// assert_eq!(read, json);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Deflate {
    /// Level 6, as Django's `zlib.compress(data)`: tokens byte-identical to Django's. The
    /// default.
    #[default]
    Django,
    /// Level 1: deflating takes a fraction of the time (zlib is most of the cost of signing a
    /// large session) for a somewhat larger value. Django reads it, but Django's own token for
    /// the same data differs.
    Fast,
}

impl Deflate {
    /// The zlib level.
    pub fn level(self) -> u32 {
        match self {
            Deflate::Django => 6,
            Deflate::Fast => 1,
        }
    }

    /// The name used in configuration (`django`, `fast`).
    pub fn as_str(self) -> &'static str {
        match self {
            Deflate::Django => "django",
            Deflate::Fast => "fast",
        }
    }

    /// The two header bytes C zlib writes at this level with a 32 KiB window: CMF `0x78`
    /// (deflate, window 2^15), then FLG with the level's FLEVEL (2 "default" for 6, 0 "fastest"
    /// for 1) and the check bits that make the pair a multiple of 31. CPython's
    /// `zlib.compress(data, level)` starts with these.
    pub fn zlib_header(self) -> [u8; 2] {
        match self {
            Deflate::Django => [0x78, 0x9C],
            Deflate::Fast => [0x78, 0x01],
        }
    }
}

impl std::fmt::Display for Deflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Deflate {
    type Err = String;

    /// `django` or `fast` (any case, surrounding spaces ignored).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "django" => Ok(Deflate::Django),
            "fast" => Ok(Deflate::Fast),
            _ => Err(format!(
                "{text:?} is not a deflate setting: use django or fast"
            )),
        }
    }
}

/// CPython's `zlib.decompress` default window (`MAX_WBITS`), with the zlib wrapper.
const WINDOW_BITS: u8 = 15;

/// The inflate output buffer a thread keeps between calls, at most (bigger ones, grown for a
/// rare large value, are given back afterwards).
const KEPT_SCRATCH: usize = 1 << 20;

thread_local! {
    // A fresh deflate state means ~260 KiB allocated and faulted in per call, which made
    // signing a 50-byte session take longer than a 2 KiB one; a fresh inflate state dominated
    // reading a small one. One reusable state of each per thread (reset before each use)
    // avoids that.
    static DEFLATE: RefCell<Deflater> = RefCell::new(Deflater::django());
    static DEFLATE_FAST: RefCell<Deflater> = RefCell::new(Deflater::fast());
    static INFLATE: RefCell<Inflater> = RefCell::new(Inflater::new());
}

/// The zlib wrapper around a raw deflate body: the two header bytes and the Adler-32 trailer.
const ZLIB_WRAPPER_LEN: usize = 2 + 4;

/// A deflate state and the buffer it writes into, reused from call to call (deflate writes into
/// spare capacity, so the buffer is never zeroed).
struct Deflater {
    /// A raw deflate state (no zlib wrapper): [`deflate_within`] writes the wrapper itself.
    state: Compress,
    out: Vec<u8>,
}

impl Deflater {
    fn new(setting: Deflate) -> Self {
        Deflater {
            state: Compress::new(Compression::new(setting.level()), false),
            out: Vec::new(),
        }
    }

    fn django() -> Self {
        Self::new(Deflate::Django)
    }

    fn fast() -> Self {
        Self::new(Deflate::Fast)
    }
}

/// An inflate state and the buffer it writes into. The buffer is initialised once and reused,
/// so inflating costs one exact-size copy of the output rather than zeroing or regrowing a
/// fresh buffer each time.
struct Inflater {
    state: Inflate,
    scratch: Vec<u8>,
    /// Where a payload is base64-decoded before it is inflated (or handed over as it is).
    decoded: Vec<u8>,
}

impl Inflater {
    fn new() -> Self {
        Inflater {
            state: Inflate::new(true, WINDOW_BITS),
            scratch: Vec::new(),
            decoded: Vec::new(),
        }
    }

    /// Gives back buffers grown for a rare large value.
    fn trim(&mut self) {
        if self.scratch.len() > KEPT_SCRATCH {
            self.scratch = Vec::new();
        }
        if self.decoded.capacity() > KEPT_SCRATCH {
            self.decoded = Vec::new();
        }
    }
}

/// Decodes a `sign_object` payload (`.` + base64 of a zlib stream, or base64 of the bytes) in
/// this thread's buffers and hands the bytes to `f` without copying them out; inflating is
/// bounded by `limit` as in [`inflate_bounded`].
pub(crate) fn with_payload_bytes<R>(
    payload: &str,
    limit: usize,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, Error> {
    // `with_reused` may need to call its closure on a fresh state instead, so `f` travels in
    // an `Option` and is taken by whichever call runs.
    let mut f = Some(f);
    with_reused(&INFLATE, Inflater::new, |inflater| {
        let result = decode_payload_in(inflater, payload, limit)
            .map(|bytes| f.take().map(|f| f(bytes)).ok_or(Error::Decompression));
        inflater.trim();
        result.and_then(|r| r)
    })
}

fn decode_payload_in<'a>(
    inflater: &'a mut Inflater,
    payload: &str,
    limit: usize,
) -> Result<&'a [u8], Error> {
    let (compressed, text) = match payload.strip_prefix('.') {
        Some(text) => (true, text),
        None => (false, payload),
    };
    inflater.decoded.clear();
    b64_decode_into(text, &mut inflater.decoded)?;
    if !compressed {
        // Uncompressed data is never larger than the token itself, so no bound is needed.
        return Ok(&inflater.decoded);
    }
    let Inflater {
        state,
        scratch,
        decoded,
    } = inflater;
    let len = inflate_len(state, scratch, decoded, limit)?;
    Ok(scratch.get(..len).unwrap_or_default())
}

/// Runs `f` on this thread's reusable state, or on a fresh one if that is unavailable (during
/// thread teardown, or if it were ever re-entered). Both give the same bytes.
fn with_reused<T: 'static, R>(
    key: &'static LocalKey<RefCell<T>>,
    fresh: fn() -> T,
    mut f: impl FnMut(&mut T) -> R,
) -> R {
    let reused = key.try_with(|cell| cell.try_borrow_mut().ok().map(|mut state| f(&mut state)));
    match reused {
        Ok(Some(result)) => result,
        _ => f(&mut fresh()),
    }
}

/// Django's rule: compress with `zlib.compress` (level 6 for [`Deflate::Django`], zlib wrapper)
/// and keep the result only if it saves at least two bytes (`len(c) < len(data) - 1`). Hands the
/// compressed bytes to `f` (they stay in this thread's buffer), or returns `None` when the raw
/// data should be used.
///
/// Uses the C zlib (flate2 feature `zlib`), whose output is byte-identical to CPython's.
pub(crate) fn compressed_if_smaller<R>(
    data: &[u8],
    setting: Deflate,
    mut f: impl FnMut(&[u8]) -> R,
) -> Option<R> {
    let max_len = data.len().checked_sub(2)?;
    let (key, fresh): (_, fn() -> Deflater) = match setting {
        Deflate::Django => (&DEFLATE, Deflater::django),
        Deflate::Fast => (&DEFLATE_FAST, Deflater::fast),
    };
    with_reused(key, fresh, |deflater| {
        let Deflater { state, out } = deflater;
        let result = deflate_within(state, setting.zlib_header(), out, data, max_len)
            .and_then(|len| out.get(..len))
            .map(&mut f);
        if out.len() > KEPT_SCRATCH {
            *out = Vec::new();
        }
        result
    })
}

/// [`compressed_if_smaller`], copied out.
#[cfg(test)]
fn compress_if_smaller(data: &[u8]) -> Option<Vec<u8>> {
    compressed_if_smaller(data, Deflate::Django, <[u8]>::to_vec)
}

/// Compresses `data` in one `Z_FINISH` call, as CPython does, into the first `max_len` bytes of
/// `out` (grown, zero-filled, if shorter); returns the compressed length, or `None` if it does
/// not fit. Running out of room means compression does not pay, which also ends the work early
/// for incompressible data.
///
/// The stream is byte for byte what C zlib's `compress` writes (header, deflate body, Adler-32
/// of `data`, big-endian), but zlib deflates only the body: the checksum is zlib-rs's SIMD
/// Adler-32, where zlib's own is a byte loop that took 3-4 % of encoding a session.
fn deflate_within(
    deflate: &mut Compress,
    zlib_header: [u8; 2],
    out: &mut Vec<u8>,
    data: &[u8],
    max_len: usize,
) -> Option<usize> {
    deflate.reset();
    let body_room = max_len.checked_sub(ZLIB_WRAPPER_LEN)?;
    if out.len() < max_len {
        out.resize(max_len, 0);
    }
    let (header, rest) = out.get_mut(..max_len)?.split_at_mut(zlib_header.len());
    header.copy_from_slice(&zlib_header);
    // One byte more than the body may use: a raw stream that fills its buffer exactly is not
    // reported finished (zlib wants another call to see the room is not needed).
    let body = rest.get_mut(..=body_room)?;
    let body_len = match deflate.compress(data, body, FlushCompress::Finish) {
        Ok(Status::StreamEnd) => usize::try_from(deflate.total_out()).ok()?,
        _ => return None,
    };
    if body_len > body_room {
        return None;
    }
    let end = zlib_header.len() + body_len;
    let checksum = zlib_rs::adler32::adler32(1, data).to_be_bytes();
    out.get_mut(end..end + checksum.len())?
        .copy_from_slice(&checksum);
    Some(end + checksum.len())
}

/// Inflates a zlib stream, failing with [`Error::DecompressedTooLarge`] as soon as the output
/// exceeds `limit` bytes. No buffer ever grows past `limit + 1` bytes, however well the input
/// compresses.
///
/// Like CPython's `zlib.decompress`, bytes after the end of the stream are ignored, and a
/// truncated or corrupt stream (bad checksum included) is an error.
pub(crate) fn inflate_bounded(compressed: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    with_reused(&INFLATE, Inflater::new, |inflater| {
        let result = inflate_within(inflater, compressed, limit);
        inflater.trim();
        result
    })
}

fn inflate_within(
    inflater: &mut Inflater,
    compressed: &[u8],
    limit: usize,
) -> Result<Vec<u8>, Error> {
    let len = inflate_len(
        &mut inflater.state,
        &mut inflater.scratch,
        compressed,
        limit,
    )?;
    Ok(inflater.scratch.get(..len).unwrap_or_default().to_vec())
}

/// Inflates `compressed` into the start of `scratch` (grown as needed, never past `limit + 1`
/// bytes) and returns the inflated length.
fn inflate_len(
    state: &mut Inflate,
    scratch: &mut Vec<u8>,
    compressed: &[u8],
    limit: usize,
) -> Result<usize, Error> {
    state.reset(true);
    // Holding one byte more than the limit is how "too large" is noticed.
    let hard_cap = limit.saturating_add(1);
    // Session payloads typically inflate 2-10x; have room for 8x from the start.
    let wanted = compressed.len().saturating_mul(8).max(64).min(hard_cap);
    if scratch.len() < wanted {
        scratch.resize(wanted, 0);
    }
    let mut consumed = 0;
    let mut written = 0;
    loop {
        let room = scratch.len().min(hard_cap);
        let input = compressed.get(consumed..).unwrap_or_default();
        let before = (state.total_in(), state.total_out());
        let output = scratch.get_mut(written..room).unwrap_or_default();
        let status = state
            .decompress(input, output, InflateFlush::NoFlush)
            .map_err(|_| Error::Decompression)?;
        let progress = (
            usize::try_from(state.total_in() - before.0).unwrap_or(usize::MAX),
            usize::try_from(state.total_out() - before.1).unwrap_or(usize::MAX),
        );
        consumed = consumed.saturating_add(progress.0);
        written = written.saturating_add(progress.1);
        if written > limit {
            return Err(Error::DecompressedTooLarge { limit });
        }
        if status == zlib_rs::Status::StreamEnd {
            return Ok(written);
        }
        if written == room {
            // Grow geometrically but never past the cap, so a bomb cannot make us allocate
            // twice the limit the way Vec's doubling would.
            let target = room.saturating_mul(2).min(hard_cap);
            scratch.resize(target, 0);
            continue;
        }
        if progress == (0, 0) || consumed >= compressed.len() {
            // Room left for output but no more input: the stream ends before its trailer.
            return Err(Error::Decompression);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::ZlibEncoder;
    use std::io::Write;

    fn zlib(data: &[u8]) -> Vec<u8> {
        zlib_at(data, Deflate::Django)
    }

    /// C zlib's own wrapped stream at the setting's level, through flate2.
    fn zlib_at(data: &[u8], setting: Deflate) -> Vec<u8> {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::new(setting.level()));
        assert!(encoder.write_all(data).is_ok());
        encoder.finish().unwrap_or_default()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    // Spec §1.9: measured on Django with JSON input.
    #[test]
    fn compression_is_used_only_when_it_saves_two_bytes() {
        assert!(compress_if_smaller(b"{}").is_none());
        assert!(compress_if_smaller(b"\"aaaaaaaaaa\"").is_none()); // 12 -> 12
        assert!(compress_if_smaller(b"\"aaaaaaaaaaa\"").is_none()); // 13 -> 12
        assert!(compress_if_smaller(b"\"aaaaaaaaaaaa\"").is_some()); // 14 -> 12
    }

    #[test]
    fn reused_deflate_state_gives_the_same_bytes_as_a_fresh_one() {
        let inputs: [&[u8]; 4] = [
            b"[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19]",
            &[b'x'; 5000],
            b"\"aaaaaaaaaaaa\"",
            br#"{"foo":"barbarbarbarbarbarbarbarbarbar","n":1}"#,
        ];
        for input in inputs {
            let reused = compress_if_smaller(input);
            let again = compress_if_smaller(input);
            let mut buffer = Vec::new();
            let mut state = Deflater::django().state;
            let header = Deflate::Django.zlib_header();
            let fresh = deflate_within(&mut state, header, &mut buffer, input, input.len() - 2)
                .map(|len| buffer[..len].to_vec());
            assert_eq!(reused, fresh);
            assert_eq!(again, fresh);
            assert_eq!(fresh.as_deref(), Some(zlib(input).as_slice()));
        }
    }

    #[test]
    fn a_bigger_buffer_left_by_a_previous_call_does_not_change_the_decision() {
        assert!(compress_if_smaller(&[b'x'; 50_000]).is_some());
        assert!(compress_if_smaller(b"\"aaaaaaaaaaa\"").is_none()); // 13 -> 12
        assert_eq!(
            compress_if_smaller(b"\"aaaaaaaaaaaa\"").map(|c| c.len()),
            Some(12)
        );
    }

    #[test]
    fn incompressible_and_tiny_inputs_stay_raw() {
        assert!(compress_if_smaller(b"").is_none());
        assert!(compress_if_smaller(b"a").is_none());
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        assert!(compress_if_smaller(&noise).is_none());
    }

    /// The header and checksum written around the raw deflate body make exactly C zlib's own
    /// wrapped stream, and the keep-it rule sees the same length, at every size from empty to
    /// past zlib's 64 KiB buffers, compressible or not, and at the edge of "saves two bytes".
    #[test]
    fn the_wrapped_raw_stream_is_c_zlibs_stream_at_every_size() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut inputs: Vec<Vec<u8>> = (0..40).map(|n| b"ab".repeat(n)).collect();
        for len in [1, 7, 100, 1_000, 5_000, 32_000, 70_000, 200_000] {
            const ALPHABET: &[u8] = b"{\"sku\":\"SKU-0123\",qty:1},";
            let words: Vec<u8> = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            let noise: Vec<u8> = (0..len).map(|_| (next() >> 24) as u8).collect();
            let mixed: Vec<u8> = words
                .iter()
                .zip(&noise)
                .map(|(&w, &n)| if n < 16 { n } else { w })
                .collect();
            inputs.extend([words, noise, mixed]);
        }
        for setting in [Deflate::Django, Deflate::Fast] {
            let mut compressed_some = 0;
            for input in &inputs {
                let reference = zlib_at(input, setting);
                let expected = (reference.len() + 1 < input.len()).then_some(reference);
                let ours = compressed_if_smaller(input, setting, <[u8]>::to_vec);
                assert_eq!(ours, expected, "{setting}: input of {} bytes", input.len());
                compressed_some += usize::from(ours.is_some());
            }
            assert!(compressed_some > 20 && compressed_some < inputs.len());
        }
    }

    /// Both settings keep their own state in one thread, so alternating them changes no output.
    #[test]
    fn the_two_settings_alternate_in_one_thread_without_mixing() {
        let data =
            br#"{"cart":"SKU-0001 SKU-0002 SKU-0001 SKU-0002 SKU-0001 SKU-0003"}"#.repeat(20);
        let django = compressed_if_smaller(&data, Deflate::Django, <[u8]>::to_vec);
        let fast = compressed_if_smaller(&data, Deflate::Fast, <[u8]>::to_vec);
        assert_eq!(
            django.as_deref(),
            Some(zlib_at(&data, Deflate::Django).as_slice())
        );
        assert_eq!(
            fast.as_deref(),
            Some(zlib_at(&data, Deflate::Fast).as_slice())
        );
        assert_ne!(django, fast);
        assert_eq!(
            compressed_if_smaller(&data, Deflate::Django, <[u8]>::to_vec),
            django
        );
        for compressed in [django, fast].into_iter().flatten() {
            assert_eq!(
                inflate_bounded(&compressed, 1 << 20).ok(),
                Some(data.clone())
            );
        }
    }

    #[test]
    fn fast_compression_matches_cpython_level_1_bytes() {
        // CPython 3.11 / zlib 1.2.13: zlib.compress(data, 1).hex(); level 6 gives 106 bytes.
        // A cart of 12 items, as Python's json.dumps(..., separators=(",", ":")) writes it.
        let items: Vec<String> = (0..12)
            .map(|i| {
                format!(
                    r#"{{"sku":"SKU-{:04}","qty":{}}}"#,
                    i * 37 % 1000,
                    i % 3 + 1
                )
            })
            .collect();
        let data = format!(r#"{{"cart":[{}]}}"#, items.join(","));
        let data = data.as_bytes();
        assert_eq!(data.len(), 334);
        let expected = "78015dd0310a84401044d1bb74ec82dd3d3a3a57d8508cc4400c8d74dd4064eeae490956a50f7e50a7ccd3b64b1a4ef92d7f49d27dfb4f794f0a59f74392e6e24d1e41c61403c8895415c4410d0d8883da54200e9a19888356b5200e5a5b8338e8ee200e7a7cdee060289f373c8ff9026c765c09";
        let ours = compressed_if_smaller(data, Deflate::Fast, hex);
        assert_eq!(ours.as_deref(), Some(expected));
        assert_eq!(compress_if_smaller(data).map(|c| c.len()), Some(106));
    }

    #[test]
    fn settings_parse_from_their_names() {
        for setting in [Deflate::Django, Deflate::Fast] {
            assert_eq!(setting.as_str().parse(), Ok(setting));
        }
        assert_eq!(" FAST ".parse(), Ok(Deflate::Fast));
        assert_eq!(Deflate::default(), Deflate::Django);
        let error = "9".parse::<Deflate>().unwrap_err();
        assert!(error.contains("django or fast"), "{error}");
    }

    #[test]
    fn compression_matches_cpython_bytes() {
        // CPython 3.11 / zlib 1.2.13: zlib.compress(data).hex()
        let cases: [(&[u8], &str); 2] = [
            (b"\"aaaaaaaaaaaa\"", "789c534a44024a00242604d1"),
            (
                b"[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19]",
                "789c05c1c111002008c0b085fab0a220b378eebf86c99549b0d824c5a171a0383170e1c6c4c283fd3eef8409a5",
            ),
        ];
        for (data, expected) in cases {
            assert_eq!(
                compress_if_smaller(data).map(|c| hex(&c)).as_deref(),
                Some(expected)
            );
        }
    }

    #[test]
    fn inflate_round_trips_and_ignores_trailing_bytes_like_cpython() {
        let data = b"hello world hello world hello world".repeat(10);
        let mut compressed = zlib(&data);
        assert_eq!(
            inflate_bounded(&compressed, 1 << 20).ok(),
            Some(data.clone())
        );
        compressed.extend_from_slice(b"garbage");
        assert_eq!(inflate_bounded(&compressed, 1 << 20).ok(), Some(data));
    }

    #[test]
    fn inflate_rejects_truncated_and_corrupt_streams() {
        let data = b"hello world hello world hello world".repeat(10);
        let compressed = zlib(&data);
        for cut in [
            0,
            1,
            2,
            5,
            compressed.len() / 2,
            compressed.len() - 4,
            compressed.len() - 1,
        ] {
            assert!(
                matches!(
                    inflate_bounded(&compressed[..cut], 1 << 20),
                    Err(Error::Decompression)
                ),
                "truncated at {cut} of {}",
                compressed.len()
            );
        }
        let mut corrupt = compressed.clone();
        corrupt[0] ^= 0xff;
        assert!(matches!(
            inflate_bounded(&corrupt, 1 << 20),
            Err(Error::Decompression)
        ));
        let mut bad_checksum = compressed;
        let last = bad_checksum.len() - 1;
        bad_checksum[last] ^= 0x01;
        assert!(matches!(
            inflate_bounded(&bad_checksum, 1 << 20),
            Err(Error::Decompression)
        ));
    }

    #[test]
    fn inflate_stops_at_the_limit_and_allows_exactly_the_limit() {
        let data = vec![b'a'; 100_000];
        let compressed = zlib(&data);
        assert_eq!(
            inflate_bounded(&compressed, 100_000).map(|d| d.len()).ok(),
            Some(100_000)
        );
        assert!(matches!(
            inflate_bounded(&compressed, 99_999),
            Err(Error::DecompressedTooLarge { limit: 99_999 })
        ));
    }

    #[test]
    fn the_reused_inflate_state_recovers_after_failures() {
        let data = b"recover recover recover recover".repeat(20);
        let compressed = zlib(&data);
        let truncated = &compressed[..compressed.len() / 2];
        for _ in 0..3 {
            assert!(matches!(
                inflate_bounded(truncated, 1 << 20),
                Err(Error::Decompression)
            ));
            assert!(matches!(
                inflate_bounded(&compressed, 10),
                Err(Error::DecompressedTooLarge { limit: 10 })
            ));
            assert_eq!(
                inflate_bounded(&compressed, 1 << 20).ok(),
                Some(data.clone())
            );
        }
    }

    #[test]
    fn a_zero_limit_admits_only_empty_data() {
        assert_eq!(inflate_bounded(&zlib(b""), 0).ok(), Some(Vec::new()));
        assert!(matches!(
            inflate_bounded(&zlib(b"x"), 0),
            Err(Error::DecompressedTooLarge { limit: 0 })
        ));
    }

    #[test]
    fn inflate_never_reserves_more_than_the_limit() {
        let data = vec![b'z'; 300_000];
        let compressed = zlib(&data);
        let mut inflater = Inflater::new();
        let out = inflate_within(&mut inflater, &compressed, 300_000).unwrap_or_default();
        assert_eq!(out.len(), 300_000);
        assert!(out.capacity() <= 300_001, "capacity {}", out.capacity());
        assert!(
            inflater.scratch.len() <= 300_001,
            "scratch {}",
            inflater.scratch.len()
        );
        // A bomb: the buffer stops one byte past the limit.
        let bomb = zlib(&vec![b'z'; 5_000_000]);
        assert!(matches!(
            inflate_within(&mut inflater, &bomb, 1_000_000),
            Err(Error::DecompressedTooLarge { limit: 1_000_000 })
        ));
        assert!(
            inflater.scratch.len() <= 1_000_001,
            "scratch {}",
            inflater.scratch.len()
        );
    }

    #[test]
    fn a_thread_keeps_a_modest_buffer_after_a_large_value() {
        let big = zlib(&vec![b'q'; 2 * KEPT_SCRATCH]);
        assert_eq!(
            inflate_bounded(&big, 4 * KEPT_SCRATCH)
                .map(|d| d.len())
                .ok(),
            Some(2 * KEPT_SCRATCH)
        );
        let kept = INFLATE.with(|cell| cell.borrow().scratch.len());
        assert!(kept <= KEPT_SCRATCH, "kept {kept}");
        let small = b"small small small small".repeat(4);
        assert_eq!(inflate_bounded(&zlib(&small), 1 << 20).ok(), Some(small));
    }

    #[test]
    fn inflate_reads_every_stream_the_c_zlib_writes_at_every_level() {
        let data: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("{{\"k{}\":{}}},", i % 97, i * 7).into_bytes())
            .collect();
        for level in 0..=9 {
            let mut encoder = ZlibEncoder::new(Vec::new(), Compression::new(level));
            assert!(encoder.write_all(&data).is_ok());
            let compressed = encoder.finish().unwrap_or_default();
            assert_eq!(
                inflate_bounded(&compressed, data.len()).ok().as_deref(),
                Some(data.as_slice()),
                "level {level}"
            );
            assert!(matches!(
                inflate_bounded(&compressed, data.len() - 1),
                Err(Error::DecompressedTooLarge { .. })
            ));
        }
    }
}
