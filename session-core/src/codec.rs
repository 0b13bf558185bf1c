//! Turning session data into the signed strings Django stores, and back.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use session_signing::{Algorithm, SecretKey, TimestampSigner, UnsignOptions, legacy};

use crate::serializer::Serializer;
use crate::value::{Dict, Value};
use crate::{Error, SessionConfig};

/// The `tracing` target of the warning logged when session data fails verification: the logger
/// name Django uses, so existing log routing keeps working.
pub const SUSPICIOUS_SESSION_TARGET: &str = "django.security.SuspiciousSession";

/// The message of that warning (Django's, verbatim).
pub const CORRUPTED_MESSAGE: &str = "Session data corrupted";

/// The salt of the signed-cookie backend's tokens.
pub const SIGNED_COOKIES_SALT: &str = "django.contrib.sessions.backends.signed_cookies";

/// The serialization buffer a thread keeps between encodes, at most (a larger one, grown for a
/// rare large session, is given back afterwards).
const KEPT_BUFFER: usize = 1 << 20;

thread_local! {
    // Serializing into a buffer reused from encode to encode saves allocating and regrowing
    // one per call; the signed string is built from it.
    static SERIALIZED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's empty serialization buffer, or a fresh one if that is in use.
fn with_buffer<R>(mut f: impl FnMut(&mut Vec<u8>) -> R) -> R {
    let reused = SERIALIZED.try_with(|cell| {
        let mut buffer = cell.try_borrow_mut().ok()?;
        buffer.clear();
        let result = f(&mut buffer);
        if buffer.capacity() > KEPT_BUFFER {
            *buffer = Vec::new();
        }
        Some(result)
    });
    match reused {
        Ok(Some(result)) => result,
        _ => f(&mut Vec::new()),
    }
}

/// Encodes and decodes session data with the configured serializer, secret keys and salt.
///
/// This is Django's `SessionBase.encode`/`decode`: `signing.dumps(data, salt=key_salt,
/// compress=True)` and its inverse. Stores hold one and use it for everything they persist, so every
/// store reads and writes exactly what Django does. Cloning is cheap.
///
/// ```
/// use session_core::{SessionCodec, SessionConfig, Dict, Value};
///
/// let codec = SessionCodec::new(&SessionConfig::new("django_tests_secret_key")).unwrap();
/// let mut data = Dict::new();
/// data.insert("a test key", Value::from("a test value"));
/// // Django wrote this at t=1700000000 (spec §1.14).
/// assert_eq!(
///     codec.encode_at(&data, 1_700_000_000).unwrap(),
///     "eyJhIHRlc3Qga2V5IjoiYSB0ZXN0IHZhbHVlIn0:1r31eq:z3T5kuYwaLspnAAUpfRWpbinC-rn6c6P1Qf9PsCyZ2s"
/// );
/// assert_eq!(codec.decode(&codec.encode(&data).unwrap()), data);
/// // Tampered data decodes to an empty session (and logs a warning), as in Django.
/// assert!(codec.decode("bad:encoded:value").is_empty());
/// ```
#[derive(Clone, Debug)]
pub struct SessionCodec {
    serializer: Arc<dyn Serializer>,
    signer: TimestampSigner,
    /// Verification keys for the pre-3.1 session format, when it is accepted.
    legacy: Option<LegacyKeys>,
    write: WriteFormat,
    max_decompressed_size: usize,
}

#[derive(Clone, Debug)]
struct LegacyKeys {
    secret: SecretKey,
    fallbacks: Vec<SecretKey>,
    key_salt: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteFormat {
    /// `payload:timestamp:signature` (SHA-256 signatures, or SHA-1 for a Django 3.x token salt).
    Signed,
    /// The pre-3.1 `base64(hexdigest:serialized)` session format.
    LegacySession,
}

impl SessionCodec {
    /// The codec for `session_data` as the db, cache, cached-db and file backends store it (signed
    /// with `config.key_salt`).
    ///
    /// # Errors
    /// [`Error::Config`] when `config` is invalid ([`SessionConfig::validate`]).
    pub fn new(config: &SessionConfig) -> Result<Self, Error> {
        Self::build(config, &config.key_salt, true)
    }

    /// A codec for signed tokens under another salt, such as the signed-cookie backend's
    /// ([`SIGNED_COOKIES_SALT`]). With `hashing_algorithm = "sha1"` it writes SHA-1 tokens, as
    /// Django 3.1/3.2 did.
    ///
    /// # Errors
    /// [`Error::Config`] when `config` is invalid.
    pub fn with_token_salt(config: &SessionConfig, salt: &str) -> Result<Self, Error> {
        Self::build(config, salt, false)
    }

    fn build(config: &SessionConfig, salt: &str, session_data: bool) -> Result<Self, Error> {
        config.validate()?;
        let sha1 = config.hashing_algorithm == Algorithm::Sha1;
        let accept_legacy = config.accept_legacy_formats || sha1;
        let signer = TimestampSigner::new(config.secret_key.clone())
            .with_salt(salt)
            .with_algorithm(config.hashing_algorithm)
            .with_fallback_keys(config.secret_key_fallbacks.iter().cloned())
            .with_legacy_sha1(accept_legacy)
            .with_deflate(config.deflate);
        let legacy = (accept_legacy && session_data).then(|| LegacyKeys {
            secret: config.secret_key.clone(),
            fallbacks: config.secret_key_fallbacks.clone(),
            key_salt: legacy_key_salt(salt),
        });
        Ok(SessionCodec {
            serializer: config.serializer.serializer(),
            signer,
            legacy,
            write: if sha1 && session_data {
                WriteFormat::LegacySession
            } else {
                WriteFormat::Signed
            },
            max_decompressed_size: config.max_decompressed_size,
        })
    }

    /// Replaces the serializer (for a custom [`Serializer`]).
    pub fn with_serializer(mut self, serializer: Arc<dyn Serializer>) -> Self {
        self.serializer = serializer;
        self
    }

    /// The serializer in use.
    pub fn serializer(&self) -> &dyn Serializer {
        self.serializer.as_ref()
    }

    /// The longest stored value this codec can decode: base64 of at most the decompression bound
    /// (4/3 of it) plus a timestamp, a signature and separators. A store can refuse anything
    /// longer without reading it.
    pub fn max_encoded_len(&self) -> usize {
        self.max_decompressed_size.saturating_mul(4) / 3 + 1024
    }

    /// Signs session data now, compressed when that is shorter (Django's `encode`).
    ///
    /// # Errors
    /// [`Error::Serializer`] when the data cannot be serialized.
    pub fn encode(&self, data: &Dict) -> Result<String, Error> {
        self.encode_with(data, true, None)
    }

    /// Signs session data as if at `unix_seconds` (reproducible output).
    ///
    /// # Errors
    /// [`Error::Serializer`] when the data cannot be serialized.
    pub fn encode_at(&self, data: &Dict, unix_seconds: i64) -> Result<String, Error> {
        self.encode_with(data, true, Some(unix_seconds))
    }

    /// Signs session data, choosing compression and the timestamp (`None`: now).
    ///
    /// # Errors
    /// [`Error::Serializer`] when the data cannot be serialized.
    pub fn encode_with(
        &self,
        data: &Dict,
        compress: bool,
        unix_seconds: Option<i64>,
    ) -> Result<String, Error> {
        with_buffer(|serialized| {
            self.serializer.dumps_dict_into(data, serialized)?;
            Ok(match (self.write, &self.legacy) {
                (WriteFormat::LegacySession, Some(keys)) => {
                    legacy::encode_session(serialized, &keys.secret, &keys.key_salt)
                }
                _ => match unix_seconds {
                    Some(ts) => self.signer.sign_object_at(serialized, compress, ts),
                    None => self.signer.sign_object(serialized, compress),
                },
            })
        })
    }

    /// Decodes stored session data the way Django's `decode` does: anything that fails yields an
    /// empty session. A failed signature check also logs [`CORRUPTED_MESSAGE`] as a warning on the
    /// [`SUSPICIOUS_SESSION_TARGET`] target; other failures (a validly signed value that does not
    /// decode) are only logged at debug level, as Django does not log them.
    pub fn decode(&self, session_data: &str) -> Dict {
        self.decode_or_empty(self.try_decode(session_data, None))
    }

    /// Decodes stored data, reporting why it failed. `max_age` rejects values whose timestamp is
    /// older (the signed-cookie backend passes the cookie age).
    ///
    /// # Errors
    /// [`Error::Signing`] when the signature does not verify, is expired or the token is
    /// malformed; [`Error::Serializer`] / [`Error::NotADict`] when the payload is not a session
    /// dict.
    pub fn try_decode(&self, session_data: &str, max_age: Option<Duration>) -> Result<Dict, Error> {
        // The clock matters only for an age check; reading it costs a measurable share of
        // decoding a small session.
        let now = max_age.map_or(SystemTime::UNIX_EPOCH, |_| SystemTime::now());
        self.try_decode_at(session_data, max_age, now)
    }

    /// [`try_decode`](Self::try_decode) with an explicit clock, for reproducible age checks.
    ///
    /// # Errors
    /// As [`try_decode`](Self::try_decode).
    pub fn try_decode_at(
        &self,
        session_data: &str,
        max_age: Option<Duration>,
        now: SystemTime,
    ) -> Result<Dict, Error> {
        let options = UnsignOptions {
            max_age,
            max_decompressed_size: self.max_decompressed_size,
            now: Some(now),
        };
        // The verified bytes are parsed where they were decoded, never copied out.
        match self
            .signer
            .unsign_object_with(session_data, &options, |bytes| self.deserialize_dict(bytes))
        {
            Ok(parsed) => parsed,
            Err(current) => match self.legacy_decode(session_data) {
                // Django 3.1/3.2 fell back to the legacy format after any failure.
                Some(bytes) => self.deserialize_dict(&bytes),
                None => {
                    if current.is_bad_signature() {
                        ::metrics::counter!(crate::metrics::names::SIGNATURE_FAILURES).increment(1);
                    }
                    Err(current.into())
                }
            },
        }
    }

    fn legacy_decode(&self, session_data: &str) -> Option<Vec<u8>> {
        let keys = self.legacy.as_ref()?;
        legacy::decode_session(session_data, &keys.secret, &keys.fallbacks, &keys.key_salt).ok()
    }

    /// Serializes session data without signing it (the cache backends store the serializer's bytes
    /// directly, as Django's cache framework stores a pickle of the dict).
    ///
    /// # Errors
    /// [`Error::Serializer`] when the data cannot be serialized.
    pub fn serialize(&self, data: &Dict) -> Result<Vec<u8>, Error> {
        Ok(self.serializer.dumps_dict(data)?)
    }

    /// Parses unsigned serializer bytes; anything that does not parse to a dict yields an empty
    /// session and a warning on [`SUSPICIOUS_SESSION_TARGET`].
    pub fn deserialize(&self, bytes: &[u8]) -> Dict {
        match self.deserialize_dict(bytes) {
            Ok(data) => data,
            Err(error) => {
                tracing::warn!(target: SUSPICIOUS_SESSION_TARGET, %error, "{CORRUPTED_MESSAGE}");
                Dict::new()
            }
        }
    }

    /// Parses unsigned serializer bytes, reporting why they do not hold a session dict.
    ///
    /// # Errors
    /// [`Error::Serializer`] when the bytes do not parse, [`Error::NotADict`] when they hold
    /// something else than a dict.
    pub fn deserialize_dict(&self, bytes: &[u8]) -> Result<Dict, Error> {
        match self.serializer.loads_stored_bytes(bytes)? {
            Value::Dict(data) => Ok(data),
            other => Err(Error::NotADict {
                found: other.type_name(),
            }),
        }
    }

    fn decode_or_empty(&self, result: Result<Dict, Error>) -> Dict {
        match result {
            Ok(data) => data,
            Err(Error::Signing(error)) if error.is_bad_signature() => {
                tracing::warn!(target: SUSPICIOUS_SESSION_TARGET, %error, "{CORRUPTED_MESSAGE}");
                Dict::new()
            }
            Err(error) => {
                tracing::debug!(%error, "validly signed session data did not decode; using an empty session");
                Dict::new()
            }
        }
    }
}

/// The pre-3.1 key salt: `"django.contrib.sessions" + class name`, with no dot, where today's is
/// `"django.contrib.sessions." + qualname`.
fn legacy_key_salt(key_salt: &str) -> String {
    match key_salt.strip_prefix("django.contrib.sessions.") {
        Some(class_name) => format!("django.contrib.sessions{class_name}"),
        None => key_salt.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SessionConfig {
        SessionConfig::new("django_tests_secret_key")
    }

    #[test]
    fn the_longest_decodable_value_fits_max_encoded_len() {
        let codec = SessionCodec::new(&SessionConfig {
            max_decompressed_size: 3000,
            ..config()
        })
        .unwrap();
        // Incompressible text, serialized just under the bound: the largest value that decodes.
        let mut state = 0x2545_f491_u32;
        let text: String = (0..2980)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                char::from(b'!' + (state % 90) as u8)
            })
            .filter(|c| *c != '"' && *c != '\\')
            .collect();
        let data = dict(&[("t", Value::from(text.as_str()))]);
        let token = codec.encode(&data).unwrap();
        assert_eq!(codec.try_decode(&token, None).unwrap(), data);
        assert!(
            token.len() <= codec.max_encoded_len(),
            "{} > {}",
            token.len(),
            codec.max_encoded_len()
        );
    }

    fn dict(pairs: &[(&str, Value)]) -> Dict {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn encodes_djangos_bytes() {
        let codec = SessionCodec::new(&config()).unwrap();
        assert_eq!(
            codec.encode_at(&Dict::new(), 1_700_000_000).unwrap(),
            "e30:1r31eq:4jUc7d6K4SjljzmCBMRybFprOH2S1lYgEeb3CCv8FJw"
        );
        let data = dict(&[
            ("a", Value::from(1i64)),
            ("_session_expiry", Value::from(300i64)),
        ]);
        assert_eq!(
            codec.encode_at(&data, 1_700_000_000).unwrap(),
            "eyJhIjoxLCJfc2Vzc2lvbl9leHBpcnkiOjMwMH0:1r31eq:aLClNFASpo6awdor8BwDPnO1GPfJxWZ6i7jXHXlQJ7Q"
        );
    }

    #[test]
    fn compresses_when_django_does() {
        let codec = SessionCodec::new(&config()).unwrap();
        let data = dict(&[
            ("foo", Value::from("bar".repeat(30))),
            ("n", Value::from(1i64)),
        ]);
        assert_eq!(
            codec.encode_at(&data, 1_700_000_000).unwrap(),
            ".eJyrVkrLz1eyUkpKLKIRUtJRylOyMqwFAIwBKH4:1r31eq:XGHLKeQh_xerYK4-VxfOBd5IubtedzTiPAnjwD_BpaQ"
        );
    }

    /// `deflate = "fast"`: CPython's `zlib.compress(data, 1)` in the payload (same body as level
    /// 6 for data this small, another header), read back by a codec on Django's default.
    #[test]
    fn the_fast_deflate_setting_writes_level_1_and_the_default_reads_it() {
        let fast = SessionCodec::new(&SessionConfig {
            deflate: session_signing::Deflate::Fast,
            ..config()
        })
        .unwrap();
        let data = dict(&[
            ("foo", Value::from("bar".repeat(30))),
            ("n", Value::from(1i64)),
        ]);
        let token = fast.encode_at(&data, 1_700_000_000).unwrap();
        assert!(
            token.starts_with(".eAGrVkrLz1eyUkpKLKIRUtJRylOyMqwFAIwBKH4:1r31eq:"),
            "{token}"
        );
        let django = SessionCodec::new(&config()).unwrap();
        assert_eq!(django.try_decode(&token, None).unwrap(), data);
    }

    #[test]
    fn fallback_keys_verify_old_data() {
        let config = SessionConfig {
            secret_key_fallbacks: vec![SecretKey::from("oldsecret")],
            ..SessionConfig::new("newsecret")
        };
        let codec = SessionCodec::new(&config).unwrap();
        let decoded = codec.decode("eyJhIjoxfQ:1r31eq:7J3scDv1MGVjVPou5Ii8M_alAkty62DUQkj_3VMtbCE");
        assert_eq!(decoded, dict(&[("a", Value::from(1i64))]));
    }

    #[test]
    fn legacy_format_is_read_only_when_accepted() {
        let legacy = "OWUzNTNmNWQxNTBjOWExZmM4MmQ3NzNhMDRmMjU4NmYwNDUyNGI2NDp7ImEgdGVzdCBrZXkiOiJhIHRlc3QgdmFsdWUifQ==";
        let strict = SessionCodec::new(&config()).unwrap();
        assert!(strict.decode(legacy).is_empty());
        let lenient = SessionCodec::new(&SessionConfig {
            accept_legacy_formats: true,
            ..config()
        })
        .unwrap();
        assert_eq!(
            lenient.decode(legacy),
            dict(&[("a test key", Value::from("a test value"))])
        );
    }

    #[test]
    fn sha1_setting_writes_the_legacy_session_format_like_django_3() {
        let codec = SessionCodec::new(&SessionConfig {
            hashing_algorithm: Algorithm::Sha1,
            ..config()
        })
        .unwrap();
        let data = dict(&[("a test key", Value::from("a test value"))]);
        let encoded = codec.encode(&data).unwrap();
        // Django 3.0's exact output for this dict (spec §2.9).
        assert_eq!(
            encoded,
            "OWUzNTNmNWQxNTBjOWExZmM4MmQ3NzNhMDRmMjU4NmYwNDUyNGI2NDp7ImEgdGVzdCBrZXkiOiJhIHRlc3QgdmFsdWUifQ=="
        );
        assert_eq!(codec.decode(&encoded), data);
    }

    #[test]
    fn signed_cookie_tokens_use_their_own_salt() {
        let codec = SessionCodec::with_token_salt(&config(), SIGNED_COOKIES_SALT).unwrap();
        let data = dict(&[("hello", Value::from("world"))]);
        assert_eq!(
            codec.encode_at(&data, 1_700_000_000).unwrap(),
            "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc"
        );
    }

    #[test]
    fn max_age_rejects_old_tokens() {
        let codec = SessionCodec::with_token_salt(&config(), SIGNED_COOKIES_SALT).unwrap();
        let token = "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc";
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let max_age = Some(Duration::from_secs(100));
        assert!(
            codec
                .try_decode_at(token, max_age, at(1_700_000_100))
                .is_ok()
        );
        let err = codec
            .try_decode_at(token, max_age, at(1_700_000_101))
            .unwrap_err();
        assert!(matches!(err, Error::Signing(ref e) if e.is_bad_signature()));
    }

    #[test]
    fn validly_signed_non_dicts_are_refused() {
        let codec = SessionCodec::new(&config()).unwrap();
        let signer = TimestampSigner::new(SecretKey::from("django_tests_secret_key"))
            .with_salt(crate::config::SESSION_KEY_SALT);
        let list = signer.sign_object(b"[1,2]", false);
        assert!(matches!(
            codec.try_decode(&list, None),
            Err(Error::NotADict { found: "list" })
        ));
        assert!(codec.decode(&list).is_empty());
    }

    #[test]
    fn legacy_salt_drops_the_dot_before_the_class_name() {
        assert_eq!(
            legacy_key_salt("django.contrib.sessions.SessionStore"),
            "django.contrib.sessionsSessionStore"
        );
    }
}
