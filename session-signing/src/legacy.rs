//! The session-data format of Django 3.0 and older (spec §2.9 (a)).
//!
//! ```text
//! session_data = B64( hexdigest ":" serialized )       ; standard base64, padded
//! hexdigest    = lowercase hex of HMAC-SHA1( SHA1(key_salt + secret), serialized )
//! key_salt     = "django.contrib.sessions" + class name  ; no dot: "django.contrib.sessionsSessionStore"
//! ```
//!
//! Django 3.1 and 3.2 still read it as a fallback; 4.0 dropped it. Reading it lets a migration
//! keep sessions that old Django versions wrote.
//!
//! ```
//! use session_signing::{SecretKey, legacy};
//!
//! let secret = SecretKey::from("django_tests_secret_key");
//! let data = "OWUzNTNmNWQxNTBjOWExZmM4MmQ3NzNhMDRmMjU4NmYwNDUyNGI2NDp7ImEgdGVzdCBrZXkiOiJhIHRlc3QgdmFsdWUifQ==";
//! let json = legacy::decode_session(data, &secret, &[], legacy::SESSION_KEY_SALT).unwrap();
//! assert_eq!(json, br#"{"a test key":"a test value"}"#);
//! ```

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

use crate::algorithm::{Algorithm, KeyedMac};
use crate::encoding::constant_time_eq;
use crate::{Error, SecretKey};

/// The key salt of every built-in Django session store class: `"django.contrib.sessions"` +
/// `"SessionStore"` (no dot in between, unlike the 3.1+ salt).
pub const SESSION_KEY_SALT: &str = "django.contrib.sessionsSessionStore";

/// Standard alphabet, padding optional, non-canonical trailing bits accepted: as forgiving as
/// Python's `base64.b64decode` on what Django wrote, without its skipping of junk characters.
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Encodes `serialized` the way Django 3.0's `SessionBase.encode` did.
pub fn encode_session(serialized: &[u8], secret: &SecretKey, key_salt: &str) -> String {
    let mac = KeyedMac::derive(Algorithm::Sha1, key_salt.as_bytes(), secret.as_bytes());
    let mut raw = lower_hex(mac.digest(&[serialized]).as_slice()).into_bytes();
    raw.push(b':');
    raw.extend_from_slice(serialized);
    STANDARD.encode(raw)
}

/// Decodes legacy session data and returns the serialized bytes.
///
/// Accepts standard base64 with or without padding (ASCII white space is ignored), splits at
/// the **first** `:` and compares the lowercase hex HMAC in constant time against `secret`,
/// then each of `fallback_keys`.
///
/// Errors: [`Error::MalformedPayload`] when the base64 or the `hexdigest:data` layout is
/// broken (Django returned an empty session silently), [`Error::BadSignature`] when no key
/// matches (Django logged `Session data corrupted`).
pub fn decode_session(
    session_data: &str,
    secret: &SecretKey,
    fallback_keys: &[SecretKey],
    key_salt: &str,
) -> Result<Vec<u8>, Error> {
    let compact: Vec<u8> = session_data
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let raw = LENIENT_STANDARD
        .decode(compact)
        .map_err(|_| Error::MalformedPayload)?;
    let colon = raw
        .iter()
        .position(|&b| b == b':')
        .ok_or(Error::MalformedPayload)?;
    let (hash, serialized) = (&raw[..colon], &raw[colon + 1..]);
    // Django decodes the hash as UTF-8 before comparing; failing that is not a "corrupted" log.
    if std::str::from_utf8(hash).is_err() {
        return Err(Error::MalformedPayload);
    }
    let matches_key = |key: &SecretKey| {
        let mac = KeyedMac::derive(Algorithm::Sha1, key_salt.as_bytes(), key.as_bytes());
        let expected = lower_hex(mac.digest(&[serialized]).as_slice());
        constant_time_eq(expected.as_bytes(), hash)
    };
    if std::iter::once(secret)
        .chain(fallback_keys)
        .any(matches_key)
    {
        Ok(serialized.to_vec())
    } else {
        Err(Error::BadSignature)
    }
}

fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "django_tests_secret_key";
    // Spec §2.9: Django 3.0.14's encoding of {"a test key": "a test value"}.
    const DJANGO_30_SESSION_DATA: &str = "OWUzNTNmNWQxNTBjOWExZmM4MmQ3NzNhMDRmMjU4NmYwNDUyNGI2NDp7ImEgdGVzdCBrZXkiOiJhIHRlc3QgdmFsdWUifQ==";
    const SERIALIZED: &[u8] = br#"{"a test key":"a test value"}"#;

    // Django 3.1/3.2: sessions_tests.SessionTestsMixin.test_decode_legacy.
    #[test]
    fn test_decode_legacy() {
        let decoded = decode_session(
            DJANGO_30_SESSION_DATA,
            &SecretKey::from(SECRET),
            &[],
            SESSION_KEY_SALT,
        );
        assert_eq!(decoded.ok().as_deref(), Some(SERIALIZED));
    }

    #[test]
    fn legacy_encoding_matches_django_30_byte_for_byte() {
        assert_eq!(
            encode_session(SERIALIZED, &SecretKey::from(SECRET), SESSION_KEY_SALT),
            DJANGO_30_SESSION_DATA
        );
    }

    #[test]
    fn legacy_decode_tries_fallback_keys() {
        let decoded = decode_session(
            DJANGO_30_SESSION_DATA,
            &SecretKey::from("new-secret"),
            &[SecretKey::from("other"), SecretKey::from(SECRET)],
            SESSION_KEY_SALT,
        );
        assert_eq!(decoded.ok().as_deref(), Some(SERIALIZED));
    }

    #[test]
    fn legacy_decode_rejects_wrong_key_or_salt_as_bad_signature() {
        let wrong_key = decode_session(
            DJANGO_30_SESSION_DATA,
            &SecretKey::from("nope"),
            &[],
            SESSION_KEY_SALT,
        );
        assert!(matches!(wrong_key, Err(Error::BadSignature)));
        let wrong_salt = decode_session(
            DJANGO_30_SESSION_DATA,
            &SecretKey::from(SECRET),
            &[],
            "django.contrib.sessions.SessionStore",
        );
        assert!(matches!(wrong_salt, Err(Error::BadSignature)));
    }

    #[test]
    fn legacy_decode_is_lenient_about_padding_and_white_space() {
        let secret = SecretKey::from(SECRET);
        let unpadded = DJANGO_30_SESSION_DATA.trim_end_matches('=');
        let wrapped = format!("{}\n{}\n", &unpadded[..40], &unpadded[40..]);
        for data in [unpadded, wrapped.as_str()] {
            let decoded = decode_session(data, &secret, &[], SESSION_KEY_SALT);
            assert_eq!(decoded.ok().as_deref(), Some(SERIALIZED), "{data:?}");
        }
    }

    #[test]
    fn legacy_decode_compares_the_hex_digest_exactly() {
        // Django compares against the lowercase hexdigest; upper case is a mismatch.
        let secret = SecretKey::from(SECRET);
        let upper = STANDARD
            .encode(br#"9E353F5D150C9A1FC82D773A04F2586F04524B64:{"a test key":"a test value"}"#);
        assert!(matches!(
            decode_session(&upper, &secret, &[], SESSION_KEY_SALT),
            Err(Error::BadSignature)
        ));
    }

    #[test]
    fn legacy_decode_reports_broken_layout_as_malformed() {
        let secret = SecretKey::from(SECRET);
        let no_colon = STANDARD.encode(b"9e353f5d150c9a1fc82d773a04f2586f04524b64");
        let non_utf8_hash = STANDARD.encode(b"\xff\xfe:{}");
        for data in [
            "not base64 at all!",
            "Zm9v=Zm9v",
            "é",
            "",
            no_colon.as_str(),
            non_utf8_hash.as_str(),
        ] {
            assert!(
                matches!(
                    decode_session(data, &secret, &[], SESSION_KEY_SALT),
                    Err(Error::MalformedPayload)
                ),
                "{data:?}"
            );
        }
    }

    #[test]
    fn legacy_decode_splits_at_the_first_colon() {
        let secret = SecretKey::from(SECRET);
        let serialized = br#"{"a:b":"c:d"}"#;
        let encoded = encode_session(serialized, &secret, SESSION_KEY_SALT);
        let decoded = decode_session(&encoded, &secret, &[], SESSION_KEY_SALT);
        assert_eq!(decoded.ok().as_deref(), Some(&serialized[..]));
    }
}
