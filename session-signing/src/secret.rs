//! The secret key type (Django's `SECRET_KEY` / `SECRET_KEY_FALLBACKS` entries).

use std::fmt;
use std::sync::Arc;

use crate::encoding::constant_time_eq;

/// A signing secret: Django's `SECRET_KEY` or one of its `SECRET_KEY_FALLBACKS`.
///
/// Django converts str keys to UTF-8 and uses bytes keys as they are; both are supported
/// (`SecretKey::from("...")`, [`SecretKey::from_bytes`]). Cloning is cheap (shared bytes).
/// `Debug` and `Display` never print the bytes, and equality is checked in constant time.
///
/// An empty key is accepted here (Django would fall back to `settings.SECRET_KEY`); configuration
/// layers should reject it using [`SecretKey::is_empty`].
#[derive(Clone)]
pub struct SecretKey(Arc<[u8]>);

impl SecretKey {
    /// A key made of arbitrary bytes (Django accepts `bytes` keys such as `b"\xe7"`).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        SecretKey(Arc::from(bytes))
    }

    /// The raw key bytes (for a str key: its UTF-8 encoding).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// True if the key has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for SecretKey {
    fn from(key: &str) -> Self {
        SecretKey::from_bytes(key.as_bytes())
    }
}

impl From<String> for SecretKey {
    fn from(key: String) -> Self {
        SecretKey(Arc::from(key.into_bytes()))
    }
}

impl From<Vec<u8>> for SecretKey {
    fn from(key: Vec<u8>) -> Self {
        SecretKey(Arc::from(key))
    }
}

impl From<&[u8]> for SecretKey {
    fn from(key: &[u8]) -> Self {
        SecretKey::from_bytes(key)
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Serializes as a string when the key is UTF-8 (the usual `SECRET_KEY`), otherwise as bytes.
#[cfg(feature = "serde")]
impl serde::Serialize for SecretKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => serializer.serialize_bytes(&self.0),
        }
    }
}

/// Deserializes from a string (UTF-8 encoded, as Django does for str keys) or from bytes.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for SecretKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = SecretKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret key as a string or as bytes")
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<SecretKey, E> {
                Ok(SecretKey::from(key))
            }
            fn visit_string<E: serde::de::Error>(self, key: String) -> Result<SecretKey, E> {
                Ok(SecretKey::from(key))
            }
            fn visit_bytes<E: serde::de::Error>(self, key: &[u8]) -> Result<SecretKey, E> {
                Ok(SecretKey::from_bytes(key))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, key: Vec<u8>) -> Result<SecretKey, E> {
                Ok(SecretKey::from(key))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<SecretKey, A::Error> {
                // Formats without a bytes type (JSON, TOML) write bytes as a list of integers.
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(byte) = seq.next_element::<u8>()? {
                    bytes.push(byte);
                }
                Ok(SecretKey::from(bytes))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_keys_are_utf8_and_bytes_keys_are_kept_as_is() {
        assert_eq!(SecretKey::from("é").as_bytes(), "é".as_bytes());
        assert_eq!(SecretKey::from(String::from("abc")).as_bytes(), b"abc");
        assert_eq!(SecretKey::from(vec![0xe7]).as_bytes(), &[0xe7]);
        assert_eq!(SecretKey::from_bytes(&[0xe7]).as_bytes(), &[0xe7]);
        assert!(SecretKey::from("").is_empty());
        assert!(!SecretKey::from("x").is_empty());
    }

    #[test]
    fn secret_key_debug_and_display_never_show_the_bytes() {
        let key = SecretKey::from("hunter2-very-secret");
        for rendered in [format!("{key:?}"), format!("{key}"), format!("{key:#?}")] {
            assert_eq!(rendered, "SecretKey(<redacted>)");
        }
    }

    #[test]
    fn secret_keys_compare_by_content() {
        assert_eq!(SecretKey::from("abc"), SecretKey::from_bytes(b"abc"));
        assert_ne!(SecretKey::from("abc"), SecretKey::from("abd"));
        assert_ne!(SecretKey::from("abc"), SecretKey::from("abcd"));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn secret_key_serde_reads_strings_and_byte_lists() {
        let key: Option<SecretKey> = serde_json::from_str("\"django-insecure-x\"").ok();
        assert_eq!(key, Some(SecretKey::from("django-insecure-x")));
        let bytes: Option<SecretKey> = serde_json::from_str("[231]").ok();
        assert_eq!(bytes, Some(SecretKey::from_bytes(&[0xe7])));
        assert_eq!(
            serde_json::to_string(&SecretKey::from("abc"))
                .ok()
                .as_deref(),
            Some("\"abc\"")
        );
        assert_eq!(
            serde_json::to_string(&SecretKey::from_bytes(&[0xe7]))
                .ok()
                .as_deref(),
            Some("[231]")
        );
        assert!(serde_json::from_str::<SecretKey>("12").is_err());
    }
}
