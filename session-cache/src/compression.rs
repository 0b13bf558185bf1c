//! django-redis's compressors, as a wrapper around any backend.

use std::fmt;
use std::io::{self, Read, Write};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{CacheBackend, CacheError, Swap, Ttl, VersionedValue};

/// One of django-redis's compressors (`"COMPRESSOR"` in the cache's `OPTIONS`).
///
/// As in django-redis, a value is compressed only when longer than the compressor's
/// [`min_length`](Self::min_length), and reading tries to decompress and falls back to the bytes
/// as they are when they are not in the compressor's format (django-redis's "little values, chosen
/// to be not compressed"). A plain pickle can never be mistaken for compressed data: it starts with
/// `0x80`, which none of these formats accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compressor {
    /// `django_redis.compressors.zlib.ZlibCompressor`: zlib, level 6, above 15 bytes (our bytes
    /// are CPython's: both use the C zlib).
    Zlib,
    /// `django_redis.compressors.gzip.GzipCompressor`: gzip, level 9, above 15 bytes.
    Gzip,
    /// `django_redis.compressors.lzma.LzmaCompressor`: the `.xz` format, above 100 bytes.
    /// **Read only**: values we write are stored uncompressed, which django-redis reads as it
    /// reads its own short values (there is no maintained pure-Rust `.xz` encoder that
    /// compresses).
    Lzma,
    /// `django_redis.compressors.lz4.Lz4Compressor`: the LZ4 frame format, above 15 bytes.
    Lz4,
    /// `django_redis.compressors.zstd.ZStdCompressor`: a Zstandard frame, above 15 bytes.
    Zstd,
}

impl Compressor {
    /// django-redis's threshold: values of at most this many bytes are stored uncompressed.
    pub fn min_length(self) -> usize {
        match self {
            Compressor::Lzma => 100,
            _ => 15,
        }
    }

    /// The django-redis class name, for messages.
    pub fn django_name(self) -> &'static str {
        match self {
            Compressor::Zlib => "django_redis.compressors.zlib.ZlibCompressor",
            Compressor::Gzip => "django_redis.compressors.gzip.GzipCompressor",
            Compressor::Lzma => "django_redis.compressors.lzma.LzmaCompressor",
            Compressor::Lz4 => "django_redis.compressors.lz4.Lz4Compressor",
            Compressor::Zstd => "django_redis.compressors.zstd.ZStdCompressor",
        }
    }

    /// `value` as django-redis's compressor stores it: compressed when longer than
    /// [`min_length`](Self::min_length), unchanged otherwise (and always unchanged for
    /// [`Lzma`](Self::Lzma), which we only read).
    ///
    /// ```
    /// use session_cache::Compressor;
    ///
    /// let pickle = [&b"\x80\x04\x95"[..], &[b'x'; 200]].concat();
    /// let stored = Compressor::Zlib.compress(&pickle);
    /// assert!(stored.len() < pickle.len());
    /// assert_eq!(Compressor::Zlib.decompress(&stored, 1 << 20).unwrap(), pickle);
    /// // Short values and values not in the format pass through.
    /// assert_eq!(Compressor::Zlib.compress(b"\x80\x04N."), b"\x80\x04N.");
    /// assert_eq!(Compressor::Zlib.decompress(b"\x80\x04N.", 1 << 20).unwrap(), b"\x80\x04N.");
    /// ```
    pub fn compress(self, value: &[u8]) -> Vec<u8> {
        if value.len() <= self.min_length() || self == Compressor::Lzma {
            return value.to_vec();
        }
        let compressed = match self {
            Compressor::Zlib => {
                let mut encoder =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
                encoder.write_all(value).and_then(|()| encoder.finish())
            }
            Compressor::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
                encoder.write_all(value).and_then(|()| encoder.finish())
            }
            Compressor::Lzma => Ok(value.to_vec()),
            Compressor::Lz4 => {
                let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
                encoder
                    .write_all(value)
                    .and_then(|()| encoder.finish().map_err(io::Error::other))
            }
            Compressor::Zstd => Ok(ruzstd::encoding::compress_to_vec(
                value,
                ruzstd::encoding::CompressionLevel::Fastest,
            )),
        };
        // Compressing into memory cannot fail; should an encoder ever fail, the value is stored
        // uncompressed, which every reader (django-redis included) accepts.
        compressed.unwrap_or_else(|_| value.to_vec())
    }

    /// `value` decompressed, or unchanged when it is not in the compressor's format (as
    /// django-redis reads it), expanding to at most `limit` bytes.
    ///
    /// # Errors
    ///
    /// [`CacheError::Decompression`] when the value would expand past `limit`.
    pub fn decompress(self, value: &[u8], limit: usize) -> Result<Vec<u8>, CacheError> {
        let mut out = Limited::new(limit);
        let outcome = match self {
            Compressor::Zlib => copy(flate2::read::ZlibDecoder::new(value), &mut out),
            Compressor::Gzip => copy(flate2::read::MultiGzDecoder::new(value), &mut out),
            Compressor::Lz4 => copy(lz4_flex::frame::FrameDecoder::new(value), &mut out),
            Compressor::Zstd => match ruzstd::decoding::StreamingDecoder::new(value) {
                Ok(decoder) => copy(decoder, &mut out),
                Err(_) => Err(io::Error::from(io::ErrorKind::InvalidData)),
            },
            Compressor::Lzma => {
                lzma_rs::xz_decompress(&mut &value[..], &mut out).map_err(|e| match e {
                    lzma_rs::error::Error::IoError(io) => io,
                    _ => io::Error::from(io::ErrorKind::InvalidData),
                })
            }
        };
        match outcome {
            Ok(()) => Ok(out.buffer),
            Err(_) if out.exceeded => Err(CacheError::Decompression {
                compressor: self.django_name(),
                limit,
            }),
            // Not in this format: stored uncompressed.
            Err(_) => Ok(value.to_vec()),
        }
    }
}

fn copy(mut reader: impl Read, out: &mut Limited) -> io::Result<()> {
    io::copy(&mut reader, out).map(drop)
}

/// A buffer that refuses to grow past its limit (bounding every decoder, including those that
/// write rather than read).
struct Limited {
    buffer: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl Limited {
    fn new(limit: usize) -> Self {
        Limited {
            buffer: Vec::new(),
            limit,
            exceeded: false,
        }
    }
}

impl Write for Limited {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buffer.len().saturating_add(data.len()) > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("decompressed value over the limit"));
        }
        self.buffer.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A backend whose values are compressed as django-redis's `COMPRESSOR` option compresses them,
/// to share sessions with a Django site using `django_redis.cache.RedisCache` with a compressor.
///
/// Writes compress (values over the compressor's threshold); reads decompress what is
/// compressed and take the rest as it is, so sessions written before compression was turned on
/// still load, as in django-redis. Decompression is bounded
/// ([`with_max_decompressed_size`](Self::with_max_decompressed_size), default 16 MiB): a value
/// expanding past it is an error, never an allocation of its full size.
///
/// ```
/// # #[cfg(feature = "memory")] {
/// use session_cache::{Cache, CompressedCache, Compressor, MemoryCache};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // Django: CACHES["default"]["OPTIONS"]["COMPRESSOR"] = "django_redis.compressors.zlib.ZlibCompressor"
/// // (a RedisCache in production; the in-process cache keeps this example self-contained)
/// let cache = Cache::new(CompressedCache::new(MemoryCache::new(), Compressor::Zlib));
/// let big = bytes::Bytes::from(vec![b'x'; 1000]);
/// cache.set("k", big.clone(), 60).await?;
/// assert_eq!(cache.get("k").await?, Some(big));
/// # Ok::<(), session_cache::CacheError>(())
/// # }).unwrap();
/// # }
/// ```
pub struct CompressedCache<B> {
    inner: B,
    compressor: Compressor,
    max_decompressed_size: usize,
}

impl<B: CacheBackend> CompressedCache<B> {
    /// The default bound on a decompressed value: 16 MiB.
    pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 16 * 1024 * 1024;

    /// `inner`'s values, compressed with `compressor`.
    pub fn new(inner: B, compressor: Compressor) -> Self {
        CompressedCache {
            inner,
            compressor,
            max_decompressed_size: Self::DEFAULT_MAX_DECOMPRESSED_SIZE,
        }
    }

    /// Sets the largest size a value may decompress to.
    pub fn with_max_decompressed_size(mut self, bytes: usize) -> Self {
        self.max_decompressed_size = bytes;
        self
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The compressor.
    pub fn compressor(&self) -> Compressor {
        self.compressor
    }
}

#[async_trait]
impl<B: CacheBackend> CacheBackend for CompressedCache<B> {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        match self.inner.get(key).await? {
            Some(value) => Ok(Some(Bytes::from(
                self.compressor
                    .decompress(&value, self.max_decompressed_size)?,
            ))),
            None => Ok(None),
        }
    }

    async fn get_with_expiry(
        &self,
        key: &str,
    ) -> Result<Option<(Bytes, Option<std::time::SystemTime>)>, CacheError> {
        match self.inner.get_with_expiry(key).await? {
            Some((value, expires)) => Ok(Some((
                Bytes::from(
                    self.compressor
                        .decompress(&value, self.max_decompressed_size)?,
                ),
                expires,
            ))),
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<(), CacheError> {
        let value = Bytes::from(self.compressor.compress(&value));
        self.inner.set(key, value, ttl).await
    }

    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError> {
        let value = Bytes::from(self.compressor.compress(&value));
        self.inner.add(key, value, ttl).await
    }

    async fn replace(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, CacheError> {
        let value = Bytes::from(self.compressor.compress(&value));
        self.inner.replace(key, value, ttl).await
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        self.inner.delete(key).await
    }

    async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        self.inner.exists(key).await
    }

    fn can_compare_and_swap(&self) -> bool {
        self.inner.can_compare_and_swap()
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    /// The version is the inner backend's: the stored, compressed bytes, so a value rewritten by
    /// django-redis (which compresses it anew) is seen as changed whenever its bytes are.
    async fn get_versioned(&self, key: &str) -> Result<Option<VersionedValue>, CacheError> {
        match self.inner.get_versioned(key).await? {
            Some(read) => Ok(Some(VersionedValue {
                value: Bytes::from(
                    self.compressor
                        .decompress(&read.value, self.max_decompressed_size)?,
                ),
                version: read.version,
            })),
            None => Ok(None),
        }
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Ttl>,
        expected: &Bytes,
    ) -> Result<Swap, CacheError> {
        let value = Bytes::from(self.compressor.compress(&value));
        self.inner.compare_and_swap(key, value, ttl, expected).await
    }
}

impl<B: fmt::Debug> fmt::Debug for CompressedCache<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompressedCache")
            .field("inner", &self.inner)
            .field("compressor", &self.compressor)
            .field("max_decompressed_size", &self.max_decompressed_size)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compressor; 5] = [
        Compressor::Zlib,
        Compressor::Gzip,
        Compressor::Lzma,
        Compressor::Lz4,
        Compressor::Zstd,
    ];

    fn pickle(len: usize) -> Vec<u8> {
        let mut out = b"\x80\x04\x95".to_vec();
        out.extend((0..len).map(|i| b"session"[i % 7]));
        out
    }

    #[test]
    fn every_compressor_round_trips_and_shrinks_long_values() {
        for compressor in ALL.into_iter().filter(|&c| c != Compressor::Lzma) {
            let value = pickle(5000);
            let stored = compressor.compress(&value);
            assert!(stored.len() < value.len() / 4, "{compressor:?}");
            assert_eq!(compressor.decompress(&stored, 1 << 20).unwrap(), value);
        }
    }

    #[test]
    fn values_up_to_the_threshold_are_stored_as_they_are() {
        for compressor in ALL {
            let short = pickle(compressor.min_length() - 3);
            assert_eq!(short.len(), compressor.min_length());
            assert_eq!(compressor.compress(&short), short, "{compressor:?}");
            assert_eq!(compressor.decompress(&short, 1 << 20).unwrap(), short);
        }
    }

    #[test]
    fn plain_pickles_and_garbage_are_read_as_they_are() {
        for compressor in ALL {
            for raw in [pickle(500), b"42".to_vec(), Vec::new(), vec![0xff; 64]] {
                assert_eq!(compressor.decompress(&raw, 1 << 20).unwrap(), raw);
            }
        }
    }

    #[test]
    fn lzma_values_are_read_and_ours_are_written_plain() {
        let value = pickle(5000);
        assert_eq!(Compressor::Lzma.compress(&value), value);
        // An `.xz` stream as Python's `lzma.compress(value, preset=4)` makes one (made with
        // lzma-rs here; the fixtures hold real django-redis ones).
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &value[..], &mut xz).unwrap();
        assert_eq!(Compressor::Lzma.decompress(&xz, 1 << 20).unwrap(), value);
        assert!(matches!(
            Compressor::Lzma.decompress(&xz, 4096),
            Err(CacheError::Decompression { .. })
        ));
    }

    #[test]
    fn a_value_expanding_past_the_limit_is_an_error() {
        for compressor in ALL.into_iter().filter(|&c| c != Compressor::Lzma) {
            let bomb = compressor.compress(&vec![0; 1 << 20]);
            match compressor.decompress(&bomb, 64 * 1024) {
                Err(CacheError::Decompression { limit, .. }) => assert_eq!(limit, 64 * 1024),
                other => panic!("{compressor:?}: {other:?}"),
            }
        }
    }
}
