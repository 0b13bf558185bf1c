//! Django's `django.core.signing` and `django.utils.crypto.salted_hmac`, byte-compatible.
//!
//! Everything Django 3.1+ signs (session data in the database, file and cache backends, the
//! signed-cookie session backend, `signing.dumps`) can be verified here, and everything signed
//! here verifies in Django, given the same secret, salt and serializer bytes. The output is
//! byte-identical to Django's, compressed payloads included (the C zlib is used for that),
//! unless a signer is told to deflate faster ([`Deflate::Fast`], zlib level 1: a somewhat larger
//! value that Django reads all the same).
//!
//! This crate deals in **bytes**: [`TimestampSigner::sign_object`] takes what Django's
//! serializer would produce (for sessions, compact ASCII JSON) and
//! [`TimestampSigner::unsign_object`] gives those bytes back. Producing and parsing the JSON is
//! the serializer's job (session-core).
//!
//! # Example
//!
//! ```
//! use session_signing::{SecretKey, Signer, TimestampSigner, UnsignOptions, dumps, loads};
//!
//! // Plain signatures.
//! let signer = Signer::new(SecretKey::from("predictable-secret"));
//! let signed = signer.sign("hello");
//! assert_eq!(signed, "hello:T8oWtiMIRTzcoR3NRO-2PQNf5dTweZy0EL25Kt6lUo0");
//! assert_eq!(signer.unsign(&signed)?, "hello");
//!
//! // signing.dumps / signing.loads on serializer bytes; this is Django's own example value.
//! let key = SecretKey::from("predictable-key");
//! let json = b"[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19]";
//! let token = dumps(json, &key, "django.core.signing", true);
//! assert!(token.starts_with(".eJwFwcERACAIwLCF-rCiILN47r-GyZVJsNgkxaFxoDgxcOHGxMKD_T7vhAml:"));
//! let back = loads(&token, &key, &[], "django.core.signing", &UnsignOptions::default())?;
//! assert_eq!(back, json);
//!
//! // Session data as Django writes it, at a fixed time; keep the signer around, it caches
//! // the derived HMAC key.
//! let sessions = TimestampSigner::new(SecretKey::from("django_tests_secret_key"))
//!     .with_salt("django.contrib.sessions.SessionStore");
//! let data = sessions.sign_object_at(br#"{"a":1}"#, true, 1_700_000_000);
//! assert_eq!(data, "eyJhIjoxfQ:1r31eq:NfAtvWseBBfnU2u2rC5Yib1Iv7dNauuwbmN0MvCBGmI");
//!
//! // Tampering is detected; such errors are the ones Django logs as "Session data corrupted".
//! let err = sessions
//!     .unsign_object(&data.replace("eyJh", "eyJi"), &UnsignOptions::default())
//!     .unwrap_err();
//! assert!(err.is_bad_signature());
//! # Ok::<(), session_signing::Error>(())
//! ```
//!
//! # Wire format
//!
//! ```text
//! plain    = value sep sig                       ; Signer
//! signed   = payload sep ts sep sig              ; TimestampSigner::sign_object, dumps
//! payload  = [ "." ] B64U( data )                ; "." present iff data is zlib-compressed
//! data     = serializer bytes                    ; or zlib (RFC 1950, level 6) of them
//! ts       = base62( floor(unix_time) )          ; alphabet 0-9 A-Z a-z
//! sig      = B64U( HMAC-H( K, everything before the last sep ) )
//! K        = H( salt || "signer" || secret )     ; H = SHA-256 (Django 3.1+), SHA-1 before
//! B64U     = URL-safe base64 without padding
//! sep      = ":" by default
//! ```
//!
//! Compression is used only when it saves at least two bytes (`len(zlib) < len(data) - 1`),
//! exactly like Django, and the leading `.` is covered by the signature. Verification splits at
//! the **last** separator, then tries the primary key and each fallback key with constant-time
//! comparison; [`Signer::with_legacy_sha1`] also accepts pre-3.1 SHA-1 signatures. The
//! pre-3.1 session-data format lives in [`legacy`].
//!
//! # Bounded decompression
//!
//! A compressed payload is inflated into a buffer that grows step by step and is abandoned with
//! [`Error::DecompressedTooLarge`] as soon as the output exceeds
//! [`UnsignOptions::max_decompressed_size`] (default [`DEFAULT_MAX_DECOMPRESSED_SIZE`],
//! 4 MiB); the buffer never grows past that limit plus one byte, so a ~1 MB token holding
//! 1 GiB of zeros costs about 1 MiB. **Django has no such bound, we do.** Only validly signed
//! payloads are ever inflated, so this matters when a secret key leaks or a signer is shared
//! with less trusted code. Uncompressed payloads need no bound: they are never larger than the
//! token.
//!
//! # Errors
//!
//! One enum, [`Error`]. [`Error::is_bad_signature`] separates what Django raises
//! `BadSignature`/`SignatureExpired` for (logged by sessions as `Session data corrupted`) from
//! structural failures after a valid signature (returned as an empty session, not logged).
//!
//! # Differences from Django
//!
//! Checked against all 620 cases of the workspace's Django fixture
//! (`fixtures/django/signing-vectors.json`, test `shared_django_vectors`); these are the only
//! verdicts that differ, all on tokens Django never writes (only a holder of the key could):
//!
//! * **Strict base64.** Payloads must be canonical unpadded URL-safe base64. Python's decoder
//!   skips foreign characters and accepts `+`, `/` and padding; such hand-made tokens fail here
//!   with [`Error::MalformedPayload`] (a structural error, as Django's own base64 failures are).
//! * **Bounded decompression**, see above.
//! * Timestamps are `i64`; Python's are unbounded (a base62 timestamp beyond `i64` is
//!   [`Error::MalformedTimestamp`]).
//!
//! Not implemented: hash algorithms other than SHA-1/256/512 (Django accepts any `hashlib`
//! name, and rejects unknown ones only when signing; here [`Algorithm`] rejects them when
//! parsed, with Django's message). The blake2b vector of Django's `test_salted_hmac` is
//! therefore not tested. Also absent: the cookie signer (`get_cookie_signer`, not used by
//! sessions) and `get_random_string`.
//!
//! # Performance
//!
//! `cargo bench -p session-signing` measures this crate against its floor (see `benches/`); the figures,
//! with their dates and machines, are in `benches/README.md` beside the benches, and the
//! comparison with Django and tower-sessions in the workspace's `bench/README.md`.

mod algorithm;
mod compress;
mod encoding;
mod error;
pub mod legacy;
mod secret;
mod signer;

pub use algorithm::{Algorithm, base64_hmac, salted_hmac};
pub use compress::Deflate;
pub use encoding::{
    BASE62_ALPHABET, b62_decode, b62_encode, b64_decode, b64_encode, constant_time_eq,
};
pub use error::Error;

/// The counter (through the `metrics` facade) of signatures verified by a fallback key rather
/// than the primary one: while it grows, values signed with an old key are still in use; once it
/// stays at zero, the old key can be dropped from the fallbacks.
pub const FALLBACK_KEY_HITS_METRIC: &str = "djsession_fallback_key_hits_total";
pub use secret::SecretKey;
pub use signer::{
    DEFAULT_DUMPS_SALT, DEFAULT_MAX_DECOMPRESSED_SIZE, DEFAULT_SEPARATOR, DEFAULT_SIGNER_SALT,
    DEFAULT_TIMESTAMP_SIGNER_SALT, Signer, TimestampSigner, UnsignOptions, dumps, loads,
};
