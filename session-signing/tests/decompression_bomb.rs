//! A validly signed zlib bomb must be refused without inflating it.
//!
//! This file is its own test binary so that the process's peak memory reflects only this test.

use flate2::{Compress, Compression, FlushCompress};
use session_signing::{
    DEFAULT_MAX_DECOMPRESSED_SIZE, Error, SecretKey, TimestampSigner, UnsignOptions, b64_encode,
};

const MIB: usize = 1 << 20;

/// A zlib stream of `mib` MiB of zeros, built without compressing them all: one MiB is deflated
/// with a full flush (which resets the compressor, so the block stands alone) and that block is
/// repeated. 1 GiB comes out at about 1 MB.
fn zeros_stream(mib: usize) -> Vec<u8> {
    let zeros = vec![0u8; MIB];
    let mut deflate = Compress::new(Compression::new(9), false);
    let mut block = Vec::with_capacity(64 * 1024);
    let status = deflate.compress_vec(&zeros, &mut block, FlushCompress::Full);
    assert!(status.is_ok());
    assert_eq!(
        deflate.total_in(),
        MIB as u64,
        "the block holds the whole MiB"
    );
    let mut tail = Vec::with_capacity(64);
    assert!(
        deflate
            .compress_vec(&[], &mut tail, FlushCompress::Finish)
            .is_ok()
    );

    let mut stream = Vec::with_capacity(2 + block.len() * mib + tail.len() + 4);
    stream.extend_from_slice(&[0x78, 0xda]);
    for _ in 0..mib {
        stream.extend_from_slice(&block);
    }
    stream.extend_from_slice(&tail);
    // Adler-32 of n zero bytes: a = 1, b = n (mod 65521).
    let n = (mib * MIB) as u64;
    let adler = ((n % 65_521) << 16) | 1;
    stream.extend_from_slice(&(adler as u32).to_be_bytes());
    stream
}

fn signed_bomb(signer: &TimestampSigner, mib: usize) -> String {
    signer.sign_at(
        &format!(".{}", b64_encode(&zeros_stream(mib))),
        1_700_000_000,
    )
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn the_bomb_construction_is_a_valid_stream() {
    let signer = TimestampSigner::new(SecretKey::from("bomb-secret"));
    let token = signed_bomb(&signer, 4);
    let options = UnsignOptions {
        max_decompressed_size: 4 * MIB,
        ..UnsignOptions::default()
    };
    let data = signer
        .unsign_object(&token, &options)
        .expect("valid stream");
    assert_eq!(data.len(), 4 * MIB);
    assert!(data.iter().all(|&b| b == 0));
}

#[test]
fn a_signed_gigabyte_of_zeros_is_refused_at_the_limit_without_inflating_it() {
    let before = peak_rss_kib();
    let signer = TimestampSigner::new(SecretKey::from("bomb-secret"));
    let token = signed_bomb(&signer, 1024);
    assert!(
        token.len() < 2 * MIB,
        "1 GiB of zeros should fit in a ~1.4 MB token, got {}",
        token.len()
    );

    let options = UnsignOptions {
        max_decompressed_size: MIB,
        ..UnsignOptions::default()
    };
    let result = signer.unsign_object(&token, &options);
    assert!(
        matches!(&result, Err(e @ Error::DecompressedTooLarge { limit }) if *limit == MIB && !e.is_bad_signature()),
        "{:?}",
        result.as_ref().map(Vec::len)
    );

    // The default limit applies to loads() too.
    let via_loads = session_signing::loads(
        &token,
        &SecretKey::from("bomb-secret"),
        &[],
        "django.core.signing.TimestampSigner",
        &UnsignOptions::default(),
    );
    assert!(matches!(
        via_loads,
        Err(Error::DecompressedTooLarge {
            limit: DEFAULT_MAX_DECOMPRESSED_SIZE
        })
    ));

    // Peak memory grew by the token and a few MiB of output, not by the gigabyte.
    if let (Some(before), Some(after)) = (before, peak_rss_kib()) {
        let grown_mib = (after.saturating_sub(before)) / 1024;
        assert!(grown_mib < 64, "peak RSS grew by {grown_mib} MiB");
    }
}
