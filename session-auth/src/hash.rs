//! `_auth_user_hash`: Django's `AbstractBaseUser.get_session_auth_hash`.

use session_signing::{Algorithm, SecretKey, constant_time_eq, salted_hmac};

/// The `key_salt` Django passes to `salted_hmac` for the session auth hash (the dotted path of the
/// method, kept even by custom user models).
pub const SESSION_AUTH_HASH_SALT: &str =
    "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash";

/// Django's `user.get_session_auth_hash()` with `secret` in place of `SECRET_KEY`:
/// `salted_hmac(SESSION_AUTH_HASH_SALT, password, secret, algorithm="sha256").hexdigest()`, where
/// `password` is the user's stored password hash (the `password` column), never the raw password.
///
/// ```
/// use session_auth::session_auth_hash;
/// use session_core::SecretKey;
///
/// let hash = session_auth_hash("pbkdf2_sha256$1000000$salt$hash", &SecretKey::from("secret"));
/// assert_eq!(hash.len(), 64);
/// assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
/// ```
pub fn session_auth_hash(password: &str, secret: &SecretKey) -> String {
    let digest = salted_hmac(
        SESSION_AUTH_HASH_SALT.as_bytes(),
        password.as_bytes(),
        secret.as_bytes(),
        Algorithm::Sha256,
    );
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Which secret verified a session's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashMatch {
    /// `SECRET_KEY`.
    Current,
    /// `SECRET_KEY_FALLBACKS[index]`.
    Fallback(usize),
}

/// Django's check in `get_user`: `stored` against the hash under `secret`, then under each fallback
/// in order, stopping at the first match; every comparison is constant-time. An empty `stored`
/// matches nothing (Django does not even try the fallbacks then).
pub fn verify_session_auth_hash(
    stored: &str,
    password: &str,
    secret: &SecretKey,
    fallbacks: &[SecretKey],
) -> Option<HashMatch> {
    if stored.is_empty() {
        return None;
    }
    if constant_time_eq(
        stored.as_bytes(),
        session_auth_hash(password, secret).as_bytes(),
    ) {
        return Some(HashMatch::Current);
    }
    fallbacks
        .iter()
        .position(|fallback| {
            constant_time_eq(
                stored.as_bytes(),
                session_auth_hash(password, fallback).as_bytes(),
            )
        })
        .map(HashMatch::Fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fallback_match_names_the_first_matching_fallback() {
        let old = SecretKey::from("old");
        let stored = session_auth_hash("pw", &old);
        let keys = [SecretKey::from("other"), old.clone(), old];
        assert_eq!(
            verify_session_auth_hash(&stored, "pw", &SecretKey::from("new"), &keys),
            Some(HashMatch::Fallback(1))
        );
        assert_eq!(
            verify_session_auth_hash(&stored, "pw", &keys[1], &[]),
            Some(HashMatch::Current)
        );
    }

    #[test]
    fn a_changed_password_or_an_empty_hash_matches_nothing() {
        let key = SecretKey::from("k");
        let stored = session_auth_hash("old-hash", &key);
        assert_eq!(
            verify_session_auth_hash(&stored, "new-hash", &key, &[]),
            None
        );
        assert_eq!(verify_session_auth_hash("", "", &key, &[]), None);
    }
}
