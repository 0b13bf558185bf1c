//! Session keys: validated on the way in, generated from the OS CSPRNG.

use std::fmt;
use std::sync::Arc;

use crate::Error;

/// The alphabet of generated keys (Django's `VALID_KEY_CHARS`): lowercase ASCII letters, then digits.
pub const KEY_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// The length of generated keys (32 characters, about 165 bits).
pub const GENERATED_KEY_LEN: usize = 32;

/// A session key: the value of the session cookie.
///
/// Django's rule applies: a key is valid when it has at least [`SessionKey::MIN_LEN`] characters. A
/// key offered by a client that breaks the rule is treated as no key at all
/// ([`SessionKey::from_client`] gives `None`), so a fresh key is generated on save and a client cannot
/// choose its own session id (session fixation). We also cap the length at [`SessionKey::MAX_LEN`]
/// bytes (Django has no cap) so a hostile cookie cannot make every store handle megabytes of key.
///
/// For most stores the key is 32 random `[a-z0-9]` characters; for the signed-cookie store it is the
/// signed session data itself.
///
/// A key is a bearer credential, so `Debug` shows only its first four characters.
// Shared, not boxed: a key is cloned several times per request (the session, the store's answer,
// the cookie), and a clone should not allocate.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionKey(Arc<str>);

impl SessionKey {
    /// The shortest valid key (Django's rule).
    pub const MIN_LEN: usize = 8;
    /// The longest key accepted: browsers cap a cookie at about 4 KB, and the signed-cookie store's
    /// keys are whole cookies.
    pub const MAX_LEN: usize = 4096;

    /// Validates a key.
    ///
    /// ```
    /// use session_core::SessionKey;
    /// assert!(SessionKey::new("12345678").is_ok());
    /// assert!(SessionKey::new("1234567").is_err());
    /// ```
    pub fn new(key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        if Self::is_valid(&key) {
            Ok(SessionKey(Arc::from(key)))
        } else {
            Err(Error::InvalidSessionKey { len: key.len() })
        }
    }

    /// A key as offered by a client (a cookie value): `None` when it is not valid, which the session
    /// treats as "no key".
    pub fn from_client(key: &str) -> Option<Self> {
        Self::is_valid(key).then(|| SessionKey(key.into()))
    }

    /// A new random key: 32 characters of `[a-z0-9]` drawn uniformly from the OS CSPRNG.
    pub fn generate() -> Result<Self, Error> {
        // 252 = 7 * 36: bytes at or above it are rejected so every character is equally likely.
        const LIMIT: u8 = 252;
        let mut key = String::with_capacity(GENERATED_KEY_LEN);
        let mut buf = [0u8; 48];
        while key.len() < GENERATED_KEY_LEN {
            getrandom::fill(&mut buf).map_err(|e| Error::Random(e.to_string()))?;
            for &byte in &buf {
                if byte < LIMIT && key.len() < GENERATED_KEY_LEN {
                    key.push(char::from(KEY_ALPHABET[usize::from(byte % 36)]));
                }
            }
        }
        Ok(SessionKey(Arc::from(key)))
    }

    /// Whether `key` satisfies the validity rule.
    pub fn is_valid(key: &str) -> bool {
        // Python's len() counts code points, so the minimum is in characters; the cap is in bytes.
        key.len() <= Self::MAX_LEN && key.chars().nth(Self::MIN_LEN - 1).is_some()
    }

    /// The key as text (the cookie value).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether every character is in [`KEY_ALPHABET`], as generated keys are. Stores that turn keys
    /// into file names or similar must refuse keys for which this is false.
    pub fn is_generated_form(&self) -> bool {
        self.0.bytes().all(|b| KEY_ALPHABET.contains(&b))
    }
}

/// How many leading characters of a key [`redact`] keeps: enough to tell keys apart in a log,
/// far too few to use one.
const SHOWN_CHARS: usize = 4;

/// What messages, logs and pages may show of a session key, or of any text that may hold one
/// (a file name, a random token): its first four characters and an ellipsis.
///
/// ```
/// assert_eq!(session_core::redact("q5nyf6c0noxsqbpv"), "q5ny…");
/// ```
pub fn redact(text: &str) -> String {
    Redacted(text).to_string()
}

/// [`redact`] as a `Display`, so a log field or span that is never recorded costs nothing.
pub(crate) struct Redacted<'a>(pub(crate) &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars().take(SHOWN_CHARS) {
            fmt::Write::write_char(f, c)?;
        }
        f.write_str("…")
    }
}

impl SessionKey {
    /// This key as messages and logs may show it ([`redact`]): `Debug` shows the same.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({}, {} bytes)", self.redacted(), self.0.len())
    }
}

impl AsRef<str> for SessionKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_validity_rule_applies_to_client_keys() {
        assert!(SessionKey::from_client("").is_none());
        assert!(SessionKey::from_client("1234567").is_none());
        assert!(SessionKey::from_client("12345678").is_some());
        assert!(SessionKey::from_client(&"k".repeat(SessionKey::MAX_LEN)).is_some());
        assert!(SessionKey::from_client(&"k".repeat(SessionKey::MAX_LEN + 1)).is_none());
    }

    #[test]
    fn multibyte_keys_count_characters_like_python() {
        // Python's len() counts code points: seven 3-byte characters are still too short.
        assert!(SessionKey::from_client(&"€".repeat(7)).is_none());
        assert!(SessionKey::from_client(&"€".repeat(8)).is_some());
    }

    #[test]
    fn generated_keys_are_32_chars_of_the_alphabet_and_distinct() {
        let a = SessionKey::generate().unwrap();
        let b = SessionKey::generate().unwrap();
        assert_eq!(a.as_str().len(), GENERATED_KEY_LEN);
        assert!(a.is_generated_form());
        assert_ne!(a, b);
    }

    #[test]
    fn generated_keys_use_every_character_of_the_alphabet() {
        let mut seen = [false; 36];
        for _ in 0..200 {
            for b in SessionKey::generate().unwrap().as_str().bytes() {
                let idx = KEY_ALPHABET.iter().position(|&c| c == b).unwrap();
                seen[idx] = true;
            }
        }
        assert!(
            seen.iter().all(|&s| s),
            "6400 draws should cover all 36 characters"
        );
    }

    #[test]
    fn debug_does_not_reveal_the_key() {
        let key = SessionKey::new("secretsessionkey1234").unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("secretsessionkey1234"));
        assert!(shown.starts_with("SessionKey(secr"));
    }

    #[test]
    fn redaction_keeps_four_characters_not_four_bytes() {
        assert_eq!(redact("secretsessionkey1234"), "secr…");
        assert_eq!(redact("éèêëabcd"), "éèêë…");
        assert_eq!(redact("ab"), "ab…");
        let key = SessionKey::new("secretsessionkey1234").unwrap();
        assert_eq!(key.redacted(), "secr…");
        assert_eq!(format!("{key:?}"), "SessionKey(secr…, 20 bytes)");
    }
}
