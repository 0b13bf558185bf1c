//! zlib compression as `sign_object` uses it, and bounded decompression.

use std::cell::RefCell;
use std::thread::LocalKey;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::Error;

/// CPython's `zlib.compress` default (`Z_DEFAULT_COMPRESSION`).
const LEVEL: u32 = 6;

thread_local! {
    // A fresh deflate state means ~260 KiB allocated and faulted in per call, which made
    // signing a 50-byte session take longer than a 2 KiB one; a fresh inflate state dominated
    // reading a small one. One reusable state of each per thread (reset before each use)
    // avoids that.
    static DEFLATE: RefCell<Compress> = RefCell::new(new_deflate());
    static INFLATE: RefCell<Decompress> = RefCell::new(new_inflate());
}

fn new_deflate() -> Compress {
    Compress::new(Compression::new(LEVEL), true)
}

fn new_inflate() -> Decompress {
    Decompress::new(true)
}

/// Runs `f` on this thread's reusable state, or on a fresh one if that is unavailable (during
/// thread teardown, or if it were ever re-entered). Both give the same bytes.
fn with_reused<T: 'static, R>(
    key: &'static LocalKey<RefCell<T>>,
    fresh: fn() -> T,
    f: impl Fn(&mut T) -> R,
) -> R {
    key.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut state) => f(&mut state),
        Err(_) => f(&mut fresh()),
    })
    .unwrap_or_else(|_| f(&mut fresh()))
}

/// Django's rule: compress with `zlib.compress` (level 6, zlib wrapper) and keep the result only
/// if it saves at least two bytes (`len(c) < len(data) - 1`). Returns `None` when the raw data
/// should be used.
///
/// Uses the C zlib (flate2 feature `zlib`), whose output is byte-identical to CPython's.
pub(crate) fn compress_if_smaller(data: &[u8]) -> Option<Vec<u8>> {
    let max_len = data.len().checked_sub(2)?;
    with_reused(&DEFLATE, new_deflate, |deflate| {
        deflate_within(deflate, data, max_len)
    })
}

/// Compresses `data` in one `Z_FINISH` call, as CPython does, into at most `max_len` bytes.
/// Running out of room means compression does not pay, which also ends the work early for
/// incompressible data.
fn deflate_within(deflate: &mut Compress, data: &[u8], max_len: usize) -> Option<Vec<u8>> {
    deflate.reset();
    let mut out = Vec::with_capacity(max_len);
    match deflate.compress_vec(data, &mut out, FlushCompress::Finish) {
        Ok(Status::StreamEnd) if out.len() <= max_len => Some(out),
        _ => None,
    }
}

/// Inflates a zlib stream, failing with [`Error::DecompressedTooLarge`] as soon as the output
/// exceeds `limit` bytes. The output buffer never grows past `limit + 1` bytes, however well
/// the input compresses.
///
/// Like CPython's `zlib.decompress`, bytes after the end of the stream are ignored, and a
/// truncated or corrupt stream (bad checksum included) is an error.
pub(crate) fn inflate_bounded(compressed: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    with_reused(&INFLATE, new_inflate, |inflate| {
        inflate_within(inflate, compressed, limit)
    })
}

fn inflate_within(
    inflate: &mut Decompress,
    compressed: &[u8],
    limit: usize,
) -> Result<Vec<u8>, Error> {
    inflate.reset(true);
    // Holding one byte more than the limit is how "too large" is noticed.
    let hard_cap = limit.saturating_add(1);
    // Session payloads typically inflate 2-10x; start at 4x.
    let initial = compressed.len().saturating_mul(4).max(64).min(hard_cap);
    let mut out = Vec::with_capacity(initial);
    loop {
        let before = (inflate.total_in(), inflate.total_out());
        let consumed = usize::try_from(before.0).unwrap_or(usize::MAX);
        let input = compressed.get(consumed..).unwrap_or_default();
        let status = inflate
            .decompress_vec(input, &mut out, FlushDecompress::None)
            .map_err(|_| Error::Decompression)?;
        if out.len() > limit {
            return Err(Error::DecompressedTooLarge { limit });
        }
        if status == Status::StreamEnd {
            return Ok(out);
        }
        if out.len() == out.capacity() {
            // Grow geometrically but never past the cap, so a bomb cannot make us allocate
            // twice the limit the way Vec's doubling would.
            let target = out.capacity().saturating_mul(2).min(hard_cap);
            out.reserve_exact(target - out.len());
            continue;
        }
        let stalled = (inflate.total_in(), inflate.total_out()) == before;
        if stalled || input.is_empty() {
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
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::new(6));
        assert!(encoder.write_all(data).is_ok());
        encoder.finish().unwrap_or_default()
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
            let fresh = deflate_within(&mut new_deflate(), input, input.len() - 2);
            assert_eq!(reused, fresh);
            assert_eq!(again, fresh);
            assert_eq!(fresh.as_deref(), Some(zlib(input).as_slice()));
        }
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

    #[test]
    fn compression_matches_cpython_bytes() {
        fn hex(bytes: &[u8]) -> String {
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
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
        let out = inflate_bounded(&compressed, 300_000).unwrap_or_default();
        assert_eq!(out.len(), 300_000);
        assert!(out.capacity() <= 300_001, "capacity {}", out.capacity());
    }
}
