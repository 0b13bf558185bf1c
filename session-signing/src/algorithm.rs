//! Hash algorithms and Django's `salted_hmac` key derivation.

use std::fmt;
use std::str::FromStr;

use hmac::digest::block_api::EagerHash;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::Error;
use crate::encoding::b64_encode;

/// The hash functions Django's signing can use and this crate implements.
///
/// Django accepts any `hashlib` name; sessions only ever use `sha256` (Django 3.1+) and `sha1`
/// (older data). `blake2b` and the other hashlib names are not implemented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// SHA-1: Django's signer before 3.1, legacy session data, and `salted_hmac`'s default.
    Sha1,
    /// SHA-256: Django's signer default since 3.1.
    #[default]
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// The hashlib name: `"sha1"`, `"sha256"` or `"sha512"`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the raw digest in bytes (20, 32 or 64).
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    /// Length of a signature as it appears in a signed value: unpadded base64 of the digest
    /// (27, 43 or 86 characters).
    pub fn signature_len(self) -> usize {
        (self.digest_len() * 4).div_ceil(3)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    /// Parses a hashlib name. Case-sensitive, like Python's `getattr(hashlib, name)`.
    fn from_str(name: &str) -> Result<Self, Error> {
        match name {
            "sha1" => Ok(Algorithm::Sha1),
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            other => Err(Error::InvalidAlgorithm(other.to_owned())),
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Algorithm {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Algorithm {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl serde::de::Visitor<'_> for NameVisitor {
            type Value = Algorithm;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a hash algorithm name: \"sha1\", \"sha256\" or \"sha512\"")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Algorithm, E> {
                name.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// A raw digest of at most 64 bytes, kept on the stack.
pub(crate) struct DigestBytes {
    bytes: [u8; 64],
    len: usize,
}

impl DigestBytes {
    fn from_slice(digest: &[u8]) -> Self {
        let mut bytes = [0u8; 64];
        let len = digest.len().min(64);
        bytes[..len].copy_from_slice(&digest[..len]);
        Self { bytes, len }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// An HMAC whose key `K = H(key_salt || secret)` is already derived and absorbed, so each
/// message costs one clone of the hash state plus the message itself.
#[derive(Clone)]
pub(crate) enum KeyedMac {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

impl KeyedMac {
    /// Django's `salted_hmac` key step: `K = H(key_salt || secret)`, then HMAC-H keyed with `K`.
    pub(crate) fn derive(algorithm: Algorithm, key_salt: &[u8], secret: &[u8]) -> Self {
        match algorithm {
            Algorithm::Sha1 => KeyedMac::Sha1(derive_hmac::<Sha1>(key_salt, secret)),
            Algorithm::Sha256 => KeyedMac::Sha256(derive_hmac::<Sha256>(key_salt, secret)),
            Algorithm::Sha512 => KeyedMac::Sha512(derive_hmac::<Sha512>(key_salt, secret)),
        }
    }

    /// HMAC of the concatenation of `parts` (lets callers avoid building the message).
    pub(crate) fn digest(&self, parts: &[&[u8]]) -> DigestBytes {
        match self {
            KeyedMac::Sha1(mac) => finish(mac, parts),
            KeyedMac::Sha256(mac) => finish(mac, parts),
            KeyedMac::Sha512(mac) => finish(mac, parts),
        }
    }
}

fn derive_hmac<D: EagerHash>(key_salt: &[u8], secret: &[u8]) -> Hmac<D> {
    let mut hasher = D::new();
    Digest::update(&mut hasher, key_salt);
    Digest::update(&mut hasher, secret);
    let derived = hasher.finalize();
    // HMAC zero-pads keys shorter than the hash block size (RFC 2104), so padding the derived
    // key ourselves gives the same MAC and uses the infallible fixed-size constructor. Every
    // supported digest is shorter than its block (20/64, 32/64, 64/128 bytes).
    let mut key = hmac::digest::Key::<Hmac<D>>::default();
    let len = derived.len().min(key.len());
    key[..len].copy_from_slice(&derived[..len]);
    <Hmac<D> as KeyInit>::new(&key)
}

fn finish<M: Mac + Clone>(mac: &M, parts: &[&[u8]]) -> DigestBytes {
    let mut mac = mac.clone();
    for part in parts {
        mac.update(part);
    }
    DigestBytes::from_slice(&mac.finalize().into_bytes())
}

/// Django's `salted_hmac(key_salt, value, secret, algorithm=...).digest()`:
/// `HMAC-H(H(key_salt || secret), value)`. Returns the raw digest.
///
/// Django's `salted_hmac` defaults to SHA-1; here the algorithm is always explicit.
pub fn salted_hmac(key_salt: &[u8], value: &[u8], secret: &[u8], algorithm: Algorithm) -> Vec<u8> {
    KeyedMac::derive(algorithm, key_salt, secret)
        .digest(&[value])
        .as_slice()
        .to_vec()
}

/// Django's `base64_hmac(salt, value, key, algorithm)`: the unpadded URL-safe base64 of
/// [`salted_hmac`]. This is what `Signer.signature` returns for `salt + "signer"`.
pub fn base64_hmac(salt: &[u8], value: &[u8], key: &[u8], algorithm: Algorithm) -> String {
    b64_encode(&salted_hmac(salt, value, key, algorithm))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_SECRET: &[u8] = b"django_tests_secret_key";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    // Django: utils_tests.test_crypto.TestUtilsCryptoMisc.test_salted_hmac (the blake2b row is
    // skipped: blake2b is not implemented), plus the session-salt rows of spec §1.2.
    #[test]
    fn test_salted_hmac() {
        let x64 = "x".repeat(64);
        let cases: &[(&str, &str, &[u8], Algorithm, &str)] = &[
            (
                "salt",
                "value",
                TEST_SECRET,
                Algorithm::Sha1,
                "b51a2e619c43b1ca4f91d15c57455521d71d61eb",
            ),
            (
                "salt",
                "value",
                b"abcdefg",
                Algorithm::Sha1,
                "8bbee04ccddfa24772d1423a0ba43bd0c0e24b76",
            ),
            (
                "salt",
                "value",
                x64.as_bytes(),
                Algorithm::Sha1,
                "bd3749347b412b1b0a9ea65220e55767ac8e96b0",
            ),
            (
                "salt",
                "value",
                TEST_SECRET,
                Algorithm::Sha256,
                "ee0bf789e4e009371a5372c90f73fcf17695a8439c9108b0480f14e347b3f9ec",
            ),
            (
                "django.contrib.sessions.SessionStore",
                "hello",
                TEST_SECRET,
                Algorithm::Sha1,
                "976844d6b57aaedd0508a6799f04cb5d9001ccd2",
            ),
            (
                "django.contrib.sessions.SessionStore",
                "hello",
                TEST_SECRET,
                Algorithm::Sha256,
                "2a3ae292196f3c701b35d36379ee7486f565a974756455e26a3e20784bb8560f",
            ),
        ];
        for &(key_salt, value, secret, algorithm, expected) in cases {
            let digest = salted_hmac(key_salt.as_bytes(), value.as_bytes(), secret, algorithm);
            assert_eq!(hex(&digest), expected, "{key_salt}/{value}/{algorithm}");
        }
    }

    #[test]
    fn salted_hmac_derives_a_long_secret_key_the_same_way() {
        // A secret longer than the SHA-512 block (128 bytes) must not change the derivation:
        // the derived key is always one digest long.
        let long = vec![b'k'; 300];
        let a = salted_hmac(b"salt", b"value", &long, Algorithm::Sha512);
        let b = salted_hmac(b"salt", b"value", &long, Algorithm::Sha512);
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(
            a,
            salted_hmac(b"salt", b"value", &long[1..], Algorithm::Sha512)
        );
    }

    // Django: utils_tests.test_crypto.TestUtilsCryptoMisc.test_invalid_algorithm.
    #[test]
    fn test_invalid_algorithm() {
        let err = "whatever".parse::<Algorithm>().err();
        let message = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("'whatever' is not an algorithm accepted by the hashlib module."),
            "{message}"
        );
    }

    #[test]
    fn algorithm_names_round_trip_and_are_case_sensitive() {
        for algorithm in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
            assert_eq!(
                algorithm.to_string().parse::<Algorithm>().ok(),
                Some(algorithm)
            );
        }
        assert!(matches!(
            "SHA256".parse::<Algorithm>(),
            Err(Error::InvalidAlgorithm(name)) if name == "SHA256"
        ));
        assert!("blake2b".parse::<Algorithm>().is_err());
        assert_eq!(Algorithm::default(), Algorithm::Sha256);
    }

    #[test]
    fn signature_lengths_match_django() {
        assert_eq!(Algorithm::Sha1.signature_len(), 27);
        assert_eq!(Algorithm::Sha256.signature_len(), 43);
        assert_eq!(Algorithm::Sha512.signature_len(), 86);
        for algorithm in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
            assert_eq!(
                base64_hmac(b"s", b"v", b"k", algorithm).len(),
                algorithm.signature_len()
            );
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn algorithm_serde_uses_hashlib_names() {
        assert_eq!(
            serde_json::to_string(&Algorithm::Sha512).ok().as_deref(),
            Some("\"sha512\"")
        );
        assert_eq!(
            serde_json::from_str::<Algorithm>("\"sha1\"").ok(),
            Some(Algorithm::Sha1)
        );
        let err = serde_json::from_str::<Algorithm>("\"md5\"")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("'md5' is not an algorithm"), "{err}");
    }
}
