//! `Signer`, `TimestampSigner`, `dumps` and `loads`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::algorithm::{Algorithm, KeyedMac};
use crate::compress::{Deflate, compressed_if_smaller, inflate_bounded, with_payload_bytes};
use crate::encoding::{
    B62_MAX_LEN, b62_decode, b64_decode, b64_encode_into, b64_encode_slice, constant_time_eq,
    push_b62,
};
use crate::{Error, SecretKey};

/// Default salt of [`Signer`] (Django's `"<module>.<ClassName>"`).
pub const DEFAULT_SIGNER_SALT: &str = "django.core.signing.Signer";
/// Default salt of [`TimestampSigner`].
pub const DEFAULT_TIMESTAMP_SIGNER_SALT: &str = "django.core.signing.TimestampSigner";
/// Default salt of Django's `signing.dumps` / `signing.loads`.
pub const DEFAULT_DUMPS_SALT: &str = "django.core.signing";
/// Default separator between value, timestamp and signature.
pub const DEFAULT_SEPARATOR: &str = ":";
/// Default bound on the inflated size of a compressed payload (4 MiB). Django has no bound.
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 4 * 1024 * 1024;

/// Django appends this to every signer salt before deriving the HMAC key.
const SIGNER_SALT_SUFFIX: &[u8] = b"signer";

/// What a signer was configured with; the derived HMAC states are computed from it.
#[derive(Clone)]
struct Config {
    key: SecretKey,
    fallback_keys: Vec<SecretKey>,
    salt: String,
    default_salt: &'static str,
    sep: String,
    algorithm: Algorithm,
    legacy_sha1: bool,
    deflate: Deflate,
}

impl Config {
    fn new(key: SecretKey, default_salt: &'static str) -> Self {
        Config {
            key,
            fallback_keys: Vec::new(),
            salt: default_salt.to_owned(),
            default_salt,
            sep: DEFAULT_SEPARATOR.to_owned(),
            algorithm: Algorithm::Sha256,
            legacy_sha1: false,
            deflate: Deflate::Django,
        }
    }

    /// `[key, *fallback_keys]`, the order Django tries them in.
    fn verification_keys(&self) -> impl Iterator<Item = &SecretKey> {
        // An empty fallback key means "the primary key" in Django (`key or self.key`), which is
        // tried first anyway.
        std::iter::once(&self.key).chain(self.fallback_keys.iter().filter(|k| !k.is_empty()))
    }

    fn derive(&self, algorithm: Algorithm) -> Vec<KeyedMac> {
        let mut key_salt = Vec::with_capacity(self.salt.len() + SIGNER_SALT_SUFFIX.len());
        key_salt.extend_from_slice(self.salt.as_bytes());
        key_salt.extend_from_slice(SIGNER_SALT_SUFFIX);
        self.verification_keys()
            .map(|key| KeyedMac::derive(algorithm, &key_salt, key.as_bytes()))
            .collect()
    }
}

struct Inner {
    config: Config,
    /// One HMAC state per verification key; the first one signs.
    macs: Vec<KeyedMac>,
    /// SHA-1 states per verification key, when legacy SHA-1 signatures are accepted.
    legacy_macs: Vec<KeyedMac>,
}

impl Inner {
    fn new(config: Config) -> Self {
        let macs = config.derive(config.algorithm);
        let legacy_macs = if config.legacy_sha1 && config.algorithm != Algorithm::Sha1 {
            config.derive(Algorithm::Sha1)
        } else {
            Vec::new()
        };
        Inner {
            config,
            macs,
            legacy_macs,
        }
    }
}

/// Django's `django.core.signing.Signer`: appends `sep + signature` to a string and checks it.
///
/// The HMAC key for every secret is derived once, when the signer is built, so signing and
/// verifying cost one HMAC over the value per key tried. Cloning is cheap (shared state).
///
/// ```
/// use session_signing::{SecretKey, Signer};
///
/// let signer = Signer::new(SecretKey::from("predictable-secret"));
/// let signed = signer.sign("hello");
/// assert_eq!(signed, "hello:T8oWtiMIRTzcoR3NRO-2PQNf5dTweZy0EL25Kt6lUo0");
/// assert_eq!(signer.unsign(&signed).unwrap(), "hello");
/// assert!(signer.unsign("hello:forged").unwrap_err().is_bad_signature());
/// ```
#[derive(Clone)]
pub struct Signer {
    inner: Arc<Inner>,
}

impl Signer {
    /// A signer with Django's defaults: salt `django.core.signing.Signer`, separator `:`,
    /// SHA-256, no fallback keys.
    pub fn new(key: SecretKey) -> Self {
        Self::from_config(Config::new(key, DEFAULT_SIGNER_SALT))
    }

    fn from_config(config: Config) -> Self {
        Signer {
            inner: Arc::new(Inner::new(config)),
        }
    }

    fn reconfigure(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.inner.config.clone();
        change(&mut config);
        Self::from_config(config)
    }

    /// Namespaces signatures: a value signed with one salt does not verify under another.
    /// An empty salt means the default salt, as in Django (`salt or default`).
    pub fn with_salt(self, salt: impl Into<String>) -> Self {
        let salt = salt.into();
        self.reconfigure(|config| {
            config.salt = if salt.is_empty() {
                config.default_salt.to_owned()
            } else {
                salt
            };
        })
    }

    /// Uses another separator. Rejected like Django does when it is empty or made only of
    /// `A-z0-9-_=` (characters that can occur in the value or the signature); note that the
    /// ASCII range `A-z` includes ``[ \ ] ^ _ ` ``.
    pub fn with_separator(self, sep: &str) -> Result<Self, Error> {
        if is_unsafe_separator(sep) {
            return Err(Error::InvalidSeparator(sep.to_owned()));
        }
        Ok(self.reconfigure(|config| config.sep = sep.to_owned()))
    }

    /// Uses another hash algorithm (Django: `algorithm=`).
    pub fn with_algorithm(self, algorithm: Algorithm) -> Self {
        self.reconfigure(|config| config.algorithm = algorithm)
    }

    /// Also accepts signatures made with these keys (Django's `SECRET_KEY_FALLBACKS`), tried in
    /// order after the primary key. Signing always uses the primary key. Replaces any fallback
    /// keys set before.
    pub fn with_fallback_keys(self, keys: impl IntoIterator<Item = SecretKey>) -> Self {
        let keys: Vec<SecretKey> = keys.into_iter().collect();
        self.reconfigure(|config| config.fallback_keys = keys)
    }

    /// Also accepts SHA-1 signatures (27 characters) under the primary and fallback keys after
    /// the configured algorithm fails, like Django 3.1/3.2 did for data signed by Django 3.0 and
    /// older. Signing is unaffected.
    pub fn with_legacy_sha1(self, accept: bool) -> Self {
        self.reconfigure(|config| config.legacy_sha1 = accept)
    }

    /// How [`sign_object`](Self::sign_object) deflates what it compresses:
    /// [`Deflate::Django`] (the default) writes Django's exact bytes, [`Deflate::Fast`] deflates
    /// faster into a somewhat larger value that Django still reads. Verifying is unaffected.
    pub fn with_deflate(self, deflate: Deflate) -> Self {
        self.reconfigure(|config| config.deflate = deflate)
    }

    /// The deflate setting [`sign_object`](Self::sign_object) uses.
    pub fn deflate(&self) -> Deflate {
        self.inner.config.deflate
    }

    /// The salt in use.
    pub fn salt(&self) -> &str {
        &self.inner.config.salt
    }

    /// The separator in use.
    pub fn separator(&self) -> &str {
        &self.inner.config.sep
    }

    /// The signing algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.config.algorithm
    }

    /// Whether legacy SHA-1 signatures are accepted.
    pub fn accepts_legacy_sha1(&self) -> bool {
        self.inner.config.legacy_sha1
    }

    /// The signature of `value` under the primary key: unpadded URL-safe base64 of
    /// `HMAC-H(H(salt + "signer" + key), value)` (Django's `Signer.signature`).
    pub fn signature(&self, value: &[u8]) -> String {
        let mut out = String::with_capacity(self.inner.config.algorithm.signature_len());
        self.push_signature(value, &mut out);
        out
    }

    fn push_signature(&self, value: &[u8], out: &mut String) {
        // `macs` always holds the primary key first.
        if let Some(primary) = self.inner.macs.first() {
            b64_encode_into(primary.digest(&[value]).as_slice(), out);
        }
    }

    /// `value + sep + signature(value)`.
    pub fn sign(&self, value: &str) -> String {
        let mut text = String::with_capacity(self.signed_len(value.len()));
        text.push_str(value);
        self.append_signature(text)
    }

    /// Length of the signed form of a `len`-byte text.
    fn signed_len(&self, len: usize) -> usize {
        len + self.inner.config.sep.len() + self.inner.config.algorithm.signature_len()
    }

    /// Signs `text` in place: appends `sep` and the signature of everything before it.
    fn append_signature(&self, mut text: String) -> String {
        // The signature covers only the value, so compute it before appending the separator.
        let digest = self
            .inner
            .macs
            .first()
            .map(|mac| mac.digest(&[text.as_bytes()]));
        text.push_str(&self.inner.config.sep);
        if let Some(digest) = digest {
            b64_encode_into(digest.as_slice(), &mut text);
        }
        text
    }

    /// Checks the signature and returns the value it covers.
    ///
    /// Splits at the **last** separator, then compares (in constant time) against the primary
    /// key and each fallback key in turn, and, if enabled, against their SHA-1 signatures.
    /// Errors: [`Error::MissingSeparator`] or [`Error::BadSignature`].
    pub fn unsign<'a>(&self, signed: &'a str) -> Result<&'a str, Error> {
        let sep = self.inner.config.sep.as_str();
        let (value, signature) =
            rsplit_at_separator(signed, sep).ok_or_else(|| Error::MissingSeparator {
                sep: sep.to_owned(),
            })?;
        if self.verifies(value.as_bytes(), signature.as_bytes()) {
            Ok(value)
        } else {
            Err(Error::BadSignature)
        }
    }

    fn verifies(&self, value: &[u8], signature: &[u8]) -> bool {
        let current = (self.inner.config.algorithm, self.inner.macs.as_slice());
        let legacy = (Algorithm::Sha1, self.inner.legacy_macs.as_slice());
        // Room for the longest signature (SHA-512: 86 characters), on the stack.
        let mut expected = [0u8; 88];
        for (algorithm, macs) in [current, legacy] {
            // A signature of the wrong length cannot match any key of this algorithm; lengths
            // are public, so skipping the HMACs leaks nothing.
            if signature.len() != algorithm.signature_len() {
                continue;
            }
            for (index, mac) in macs.iter().enumerate() {
                let digest = mac.digest(&[value]);
                let Some(len) = b64_encode_slice(digest.as_slice(), &mut expected) else {
                    continue;
                };
                if constant_time_eq(expected.get(..len).unwrap_or_default(), signature) {
                    // The primary key is first: any later one is a fallback, which a finished
                    // key rotation no longer needs.
                    if index > 0 {
                        metrics::counter!(crate::FALLBACK_KEY_HITS_METRIC).increment(1);
                    }
                    return true;
                }
            }
        }
        false
    }

    /// Django's `Signer.sign_object` for already-serialized bytes: `payload + sep + signature`
    /// where `payload` is the unpadded URL-safe base64 of `serialized`, or `"."` followed by the
    /// base64 of its zlib compression when `compress` is set and compression saves at least two
    /// bytes (deflated as [`with_deflate`](Self::with_deflate) set).
    pub fn sign_object(&self, serialized: &[u8], compress: bool) -> String {
        let deflate = compress.then_some(self.deflate());
        with_payload(serialized, deflate, |payload, dot| {
            let mut text = String::with_capacity(self.signed_len(payload_len(payload, dot)));
            push_payload(payload, dot, &mut text);
            self.append_signature(text)
        })
    }

    /// Django's `Signer.unsign_object`: verifies, then returns the serializer bytes (inflated if
    /// the payload is compressed, bounded by `max_decompressed_size`).
    pub fn unsign_object(
        &self,
        signed: &str,
        max_decompressed_size: usize,
    ) -> Result<Vec<u8>, Error> {
        decode_payload(self.unsign(signed)?, max_decompressed_size)
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_config(&self.inner.config, f.debug_struct("Signer"))
    }
}

fn debug_config(config: &Config, mut out: fmt::DebugStruct<'_, '_>) -> fmt::Result {
    out.field("key", &config.key)
        .field("fallback_keys", &config.fallback_keys)
        .field("salt", &config.salt)
        .field("sep", &config.sep)
        .field("algorithm", &config.algorithm)
        .field("legacy_sha1", &config.legacy_sha1)
        .finish()
}

/// `text.rsplit_once(sep)`, searching for a one-character separator (the default `:`) as a
/// `char`, which is a plain backwards byte scan rather than a substring search.
fn rsplit_at_separator<'a>(text: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    let mut chars = sep.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => text.rsplit_once(c),
        _ => text.rsplit_once(sep),
    }
}

/// Django's `_SEP_UNSAFE.match(sep)` with the regex `^[A-z0-9-_=]*$`.
fn is_unsafe_separator(sep: &str) -> bool {
    // Python's `$` also matches just before a final newline, so "abc\n" is unsafe as well.
    let body = sep.strip_suffix('\n').unwrap_or(sep);
    body.bytes()
        .all(|b| matches!(b, b'A'..=b'z' | b'0'..=b'9' | b'-' | b'='))
}

/// Hands `f` the bytes `sign_object` encodes and whether they are compressed: the zlib
/// compression of `serialized` when `deflate` is given and that saves at least two bytes (still
/// in the compressor's buffer, so it is never copied), else `serialized` itself.
fn with_payload<R>(
    serialized: &[u8],
    deflate: Option<Deflate>,
    mut f: impl FnMut(&[u8], bool) -> R,
) -> R {
    if let Some(deflate) = deflate
        && let Some(result) = compressed_if_smaller(serialized, deflate, |c| f(c, true))
    {
        return result;
    }
    f(serialized, false)
}

/// Length of the payload `push_payload` writes: unpadded base64, after the dot if any.
fn payload_len(bytes: &[u8], dot: bool) -> usize {
    usize::from(dot) + (bytes.len() * 4).div_ceil(3)
}

/// Appends the payload of `sign_object` to `out`: `.` + base64 when compressed.
fn push_payload(bytes: &[u8], dot: bool, out: &mut String) {
    if dot {
        // The dot is signed along with the data, so nobody can flip a payload to "compressed".
        out.push('.');
    }
    b64_encode_into(bytes, out);
}

/// Reverses [`push_payload`]: strips the `.` marker, base64-decodes, inflates within the limit.
fn decode_payload(payload: &str, max_decompressed_size: usize) -> Result<Vec<u8>, Error> {
    match payload.strip_prefix('.') {
        Some(compressed) => inflate_bounded(&b64_decode(compressed)?, max_decompressed_size),
        // Uncompressed data is never larger than the token itself, so no bound is needed.
        None => b64_decode(payload),
    }
}

/// Options for [`TimestampSigner::unsign_object`] and [`loads`].
#[derive(Clone, Debug)]
pub struct UnsignOptions {
    /// Reject signatures older than this (Django's `max_age`). `None` accepts any age;
    /// session data is decoded with `None`, signed-cookie sessions with the cookie age.
    pub max_age: Option<Duration>,
    /// Upper bound on the inflated size of a compressed payload; exceeding it fails with
    /// [`Error::DecompressedTooLarge`]. Django has no such bound.
    pub max_decompressed_size: usize,
    /// The time to measure the age against; `None` means [`SystemTime::now`].
    pub now: Option<SystemTime>,
}

impl Default for UnsignOptions {
    fn default() -> Self {
        UnsignOptions {
            max_age: None,
            max_decompressed_size: DEFAULT_MAX_DECOMPRESSED_SIZE,
            now: None,
        }
    }
}

/// Django's `TimestampSigner`: signs `value + sep + base62(unix seconds)` so that the age of a
/// signature can be checked.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use session_signing::{SecretKey, TimestampSigner};
///
/// let signer = TimestampSigner::new(SecretKey::from("predictable-key"));
/// let signed = signer.sign_at("hello", 123_456_789);
/// assert_eq!(signed, "hello:8M0kX:0pJB1_TN9Bno2aK29thnZKKHn76ngzcQVnIrp_DNs5M");
///
/// let eleven_seconds_later = UNIX_EPOCH + Duration::from_secs(123_456_800);
/// let max_age = Some(Duration::from_secs(10));
/// let err = signer.unsign_at(&signed, max_age, eleven_seconds_later).unwrap_err();
/// assert!(err.is_expired());
/// ```
#[derive(Clone)]
pub struct TimestampSigner {
    signer: Signer,
}

impl TimestampSigner {
    /// A timestamp signer with Django's defaults: salt `django.core.signing.TimestampSigner`,
    /// separator `:`, SHA-256, no fallback keys.
    pub fn new(key: SecretKey) -> Self {
        TimestampSigner {
            signer: Signer::from_config(Config::new(key, DEFAULT_TIMESTAMP_SIGNER_SALT)),
        }
    }

    /// See [`Signer::with_salt`].
    pub fn with_salt(self, salt: impl Into<String>) -> Self {
        TimestampSigner {
            signer: self.signer.with_salt(salt),
        }
    }

    /// See [`Signer::with_separator`].
    pub fn with_separator(self, sep: &str) -> Result<Self, Error> {
        Ok(TimestampSigner {
            signer: self.signer.with_separator(sep)?,
        })
    }

    /// See [`Signer::with_algorithm`].
    pub fn with_algorithm(self, algorithm: Algorithm) -> Self {
        TimestampSigner {
            signer: self.signer.with_algorithm(algorithm),
        }
    }

    /// See [`Signer::with_fallback_keys`].
    pub fn with_fallback_keys(self, keys: impl IntoIterator<Item = SecretKey>) -> Self {
        TimestampSigner {
            signer: self.signer.with_fallback_keys(keys),
        }
    }

    /// See [`Signer::with_legacy_sha1`].
    pub fn with_legacy_sha1(self, accept: bool) -> Self {
        TimestampSigner {
            signer: self.signer.with_legacy_sha1(accept),
        }
    }

    /// See [`Signer::with_deflate`].
    pub fn with_deflate(self, deflate: Deflate) -> Self {
        TimestampSigner {
            signer: self.signer.with_deflate(deflate),
        }
    }

    /// The underlying plain signer (same key, salt, separator and algorithm).
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Signs `value` with the current time.
    pub fn sign(&self, value: &str) -> String {
        self.sign_at(value, unix_seconds(SystemTime::now()))
    }

    /// Signs `value` as if at `unix_seconds`: `value:TS:SIG` with the default separator.
    pub fn sign_at(&self, value: &str, unix_seconds: i64) -> String {
        let mut text = String::with_capacity(self.timestamped_len(value.len()));
        text.push_str(value);
        self.push_timestamp(unix_seconds, &mut text);
        self.signer.append_signature(text)
    }

    /// Length of the signed form of a `len`-byte value with its timestamp (at most
    /// [`B62_MAX_LEN`] characters) after the separator: room enough for what
    /// [`push_timestamp`](Self::push_timestamp) and the signature add.
    fn timestamped_len(&self, len: usize) -> usize {
        self.signer
            .signed_len(len + self.signer.separator().len() + B62_MAX_LEN)
    }

    fn push_timestamp(&self, unix_seconds: i64, text: &mut String) {
        text.push_str(self.signer.separator());
        push_b62(unix_seconds, text);
    }

    /// Verifies the signature and, if `max_age` is given, the age against the current time.
    pub fn unsign<'a>(&self, signed: &'a str, max_age: Option<Duration>) -> Result<&'a str, Error> {
        self.unsign_at(signed, max_age, SystemTime::now())
    }

    /// Verifies `signed` as if the time were `now`.
    ///
    /// The signature is checked first ([`Error::MissingSeparator`], [`Error::BadSignature`]).
    /// Then the timestamp is split off at the last separator ([`Error::MalformedTimestamp`] if
    /// there is none or it is not base62) and, with `max_age`, the age `now - timestamp` in
    /// fractional seconds must not be **greater** than `max_age` ([`Error::Expired`]); a
    /// timestamp in the future always passes.
    pub fn unsign_at<'a>(
        &self,
        signed: &'a str,
        max_age: Option<Duration>,
        now: SystemTime,
    ) -> Result<&'a str, Error> {
        let result = self.signer.unsign(signed)?;
        let (value, timestamp) = rsplit_at_separator(result, self.signer.separator())
            .ok_or(Error::MalformedTimestamp)?;
        let timestamp = b62_decode(timestamp)?;
        if let Some(max_age) = max_age {
            // Django: `age = time.time() - timestamp`, compared as floats.
            let age_seconds = unix_seconds_f64(now) - timestamp as f64;
            let max_age_seconds = max_age.as_secs_f64();
            if age_seconds > max_age_seconds {
                return Err(Error::Expired {
                    age_seconds,
                    max_age_seconds,
                });
            }
        }
        Ok(value)
    }

    /// Django's `sign_object` on a `TimestampSigner`, at the current time: `payload:TS:SIG`.
    /// `serialized` is the serializer's output (for sessions, Django-compatible JSON bytes).
    pub fn sign_object(&self, serialized: &[u8], compress: bool) -> String {
        self.sign_object_at(serialized, compress, unix_seconds(SystemTime::now()))
    }

    /// [`TimestampSigner::sign_object`] as if at `unix_seconds`.
    pub fn sign_object_at(&self, serialized: &[u8], compress: bool, unix_seconds: i64) -> String {
        let deflate = compress.then_some(self.signer.deflate());
        with_payload(serialized, deflate, |payload, dot| {
            let mut text = String::with_capacity(self.timestamped_len(payload_len(payload, dot)));
            push_payload(payload, dot, &mut text);
            self.push_timestamp(unix_seconds, &mut text);
            self.signer.append_signature(text)
        })
    }

    /// Django's `unsign_object`: verifies signature and age, then returns the serializer bytes,
    /// inflated within `options.max_decompressed_size` when the payload is compressed.
    pub fn unsign_object(&self, signed: &str, options: &UnsignOptions) -> Result<Vec<u8>, Error> {
        let now = match (options.max_age, options.now) {
            (_, Some(now)) => now,
            (Some(_), None) => SystemTime::now(),
            // The time is irrelevant without a max age.
            (None, None) => UNIX_EPOCH,
        };
        let payload = self.unsign_at(signed, options.max_age, now)?;
        decode_payload(payload, options.max_decompressed_size)
    }

    /// [`unsign_object`](Self::unsign_object), handing the serializer bytes to `f` instead of
    /// returning them: they stay in this thread's decoding buffers, which saves allocating and
    /// copying them (the session codec parses them right there).
    ///
    /// # Errors
    /// As [`unsign_object`](Self::unsign_object); `f` is only called on success.
    pub fn unsign_object_with<R>(
        &self,
        signed: &str,
        options: &UnsignOptions,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, Error> {
        let now = match (options.max_age, options.now) {
            (_, Some(now)) => now,
            (Some(_), None) => SystemTime::now(),
            // The time is irrelevant without a max age.
            (None, None) => UNIX_EPOCH,
        };
        let payload = self.unsign_at(signed, options.max_age, now)?;
        with_payload_bytes(payload, options.max_decompressed_size, f)
    }
}

impl fmt::Debug for TimestampSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_config(&self.signer.inner.config, f.debug_struct("TimestampSigner"))
    }
}

/// `int(time.time())`: whole seconds since the epoch, truncated toward zero.
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// `time.time()`: fractional seconds since the epoch.
fn unix_seconds_f64(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}

/// Django's `signing.dumps` for already-serialized bytes:
/// `TimestampSigner::new(key).with_salt(salt).sign_object(serialized, compress)`.
///
/// This derives the HMAC key on every call; code that signs repeatedly should keep a
/// [`TimestampSigner`].
pub fn dumps(serialized: &[u8], key: &SecretKey, salt: &str, compress: bool) -> String {
    TimestampSigner::new(key.clone())
        .with_salt(salt)
        .sign_object(serialized, compress)
}

/// Django's `signing.loads` returning the serializer bytes: verifies with `key` then each of
/// `fallback_keys`, checks `options.max_age`, and inflates within
/// `options.max_decompressed_size`.
///
/// This derives the HMAC keys on every call; code that verifies repeatedly should keep a
/// [`TimestampSigner`].
pub fn loads(
    signed: &str,
    key: &SecretKey,
    fallback_keys: &[SecretKey],
    salt: &str,
    options: &UnsignOptions,
) -> Result<Vec<u8>, Error> {
    TimestampSigner::new(key.clone())
        .with_salt(salt)
        .with_fallback_keys(fallback_keys.iter().cloned())
        .unsign_object(signed, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fallback_hits(f: impl FnOnce()) -> u64 {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, f);
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(key, ..)| key.key().name() == crate::FALLBACK_KEY_HITS_METRIC)
            .map(|(.., value)| match value {
                DebugValue::Counter(n) => n,
                _ => 0,
            })
            .sum()
    }

    #[test]
    fn only_signatures_verified_by_a_fallback_key_count_as_fallback_hits() {
        let old = Signer::new(SecretKey::from("old"));
        let current = Signer::new(SecretKey::from("new"))
            .with_fallback_keys([SecretKey::from("older"), SecretKey::from("old")]);
        let by_old = old.sign("v");
        let by_new = current.sign("v");
        assert_eq!(
            fallback_hits(|| assert!(current.unsign(&by_new).is_ok())),
            0
        );
        assert_eq!(
            fallback_hits(|| assert!(current.unsign(&by_old).is_ok())),
            1
        );
        assert_eq!(
            fallback_hits(|| assert!(current.unsign("v:forged").is_err())),
            0
        );
    }

    #[test]
    fn unsign_object_with_sees_exactly_what_unsign_object_returns() {
        let signer = TimestampSigner::new(SecretKey::from("k")).with_salt("s");
        let options = UnsignOptions::default();
        let json = br#"{"cart":[1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6]}"#;
        for (bytes, compress) in [(&json[..], true), (&json[..], false), (&b"{}"[..], true)] {
            let token = signer.sign_object(bytes, compress);
            assert_eq!(token.starts_with('.'), compress && bytes.len() > 2);
            let returned = signer.unsign_object(&token, &options).ok();
            let seen = signer
                .unsign_object_with(&token, &options, <[u8]>::to_vec)
                .ok();
            assert_eq!(returned.as_deref(), Some(bytes));
            assert_eq!(seen, returned);
        }
    }

    #[test]
    fn unsign_object_with_calls_nothing_on_failure_and_keeps_the_bound() {
        let signer = TimestampSigner::new(SecretKey::from("k"));
        let token = signer.sign_object(&[b'a'; 10_000], true);
        let tight = UnsignOptions {
            max_decompressed_size: 9_999,
            ..UnsignOptions::default()
        };
        let mut called = false;
        let result = signer.unsign_object_with(&token, &tight, |_| called = true);
        assert!(matches!(
            result,
            Err(Error::DecompressedTooLarge { limit: 9_999 })
        ));
        let tampered = token.replacen('.', ".e", 1);
        let result = signer.unsign_object_with(&tampered, &UnsignOptions::default(), |_| {
            called = true;
        });
        assert!(result.is_err_and(|e| e.is_bad_signature()));
        assert!(!called);
        let exact = UnsignOptions {
            max_decompressed_size: 10_000,
            ..UnsignOptions::default()
        };
        assert_eq!(
            signer.unsign_object_with(&token, &exact, <[u8]>::len).ok(),
            Some(10_000)
        );
    }

    #[test]
    fn unsign_object_with_may_be_nested() {
        // Decoding inside the callback (which borrows this thread's buffers) falls back to
        // fresh buffers and still gives the right bytes.
        let signer = TimestampSigner::new(SecretKey::from("k"));
        let outer = signer.sign_object(&b"outer ".repeat(50), true);
        let inner = signer.sign_object(&b"inner ".repeat(50), true);
        let options = UnsignOptions::default();
        let both = signer.unsign_object_with(&outer, &options, |outer_bytes| {
            let inner_bytes = signer.unsign_object_with(&inner, &options, <[u8]>::to_vec);
            (outer_bytes.to_vec(), inner_bytes.ok())
        });
        let (outer_bytes, inner_bytes) = both.unwrap_or_default();
        assert_eq!(outer_bytes, b"outer ".repeat(50));
        assert_eq!(inner_bytes, Some(b"inner ".repeat(50)));
    }

    #[test]
    fn unsafe_separators_follow_djangos_regex() {
        for unsafe_sep in [
            "", "-", "abc", "_", "=", "[", "]", "^", "`", "\\", "a-b", "abc\n", "\n",
        ] {
            assert!(is_unsafe_separator(unsafe_sep), "{unsafe_sep:?}");
        }
        for safe in [
            ":", "/", "*sep*", ",", ".", "~", "+", "é", "\t", "abc\n\n", "a:b",
        ] {
            assert!(!is_unsafe_separator(safe), "{safe:?}");
        }
    }

    #[test]
    fn unix_seconds_truncates_toward_zero_like_int_of_time() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_999);
        assert_eq!(unix_seconds(t), 1_700_000_000);
        let before = UNIX_EPOCH - Duration::from_millis(1_500);
        assert_eq!(unix_seconds(before), -1);
        assert!((unix_seconds_f64(before) + 1.5).abs() < 1e-9);
    }

    #[test]
    fn signer_derives_one_state_per_key_and_sha1_states_only_when_asked() {
        let signer = Signer::new("a".into()).with_fallback_keys(["b".into(), "c".into()]);
        assert_eq!(signer.inner.macs.len(), 3);
        assert!(signer.inner.legacy_macs.is_empty());
        let legacy = signer.with_legacy_sha1(true);
        assert_eq!(legacy.inner.legacy_macs.len(), 3);
        // With SHA-1 as the main algorithm the legacy set would be redundant.
        assert!(
            legacy
                .with_algorithm(Algorithm::Sha1)
                .inner
                .legacy_macs
                .is_empty()
        );
    }
}
