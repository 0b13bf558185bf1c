//! Users as the session check needs them, and where they come from.

use std::fmt;

use async_trait::async_trait;
use session_core::Value;
use time::OffsetDateTime;

use crate::AuthError;

/// A user of the Django site: what `get_user`, `login` and the password check need of Django's
/// user model.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// The primary key as Django writes it into the session: `_meta.pk.value_to_string(user)`
    /// (`"42"` for the default integer key).
    pub id: String,
    /// The stored password hash (the model's `password` field, e.g.
    /// `pbkdf2_sha256$1000000$salt$hash`): what the session auth hash is computed from.
    pub password: String,
    /// `is_active`; `true` for a custom model without that field (Django's `getattr(user,
    /// "is_active", True)`).
    pub is_active: bool,
    /// The dotted path of the backend that authenticated this user (Django's `user.backend`), set
    /// by [`Auth::authenticate`](crate::Auth::authenticate); `login` uses it when not given one.
    pub backend: Option<String>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password hash is a secret (an offline guessing target): never in logs.
        f.debug_struct("User")
            .field("id", &self.id)
            .field("is_active", &self.is_active)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// What kind of primary key the user model has: it decides how `_auth_user_id` (always stored as
/// a string) is turned back into a key, as Django's `_meta.pk.to_python` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyKind {
    /// `AutoField` / `BigAutoField` / `IntegerField` (Django's default `id`).
    #[default]
    Integer,
    /// A `CharField` (or any key compared as text).
    Text,
}

impl KeyKind {
    fn name(self) -> &'static str {
        match self {
            KeyKind::Integer => "integer",
            KeyKind::Text => "text",
        }
    }

    /// Django's `pk.to_python(session[SESSION_KEY])` followed by `value_to_string`: the canonical
    /// text of the key, or `None` for a null value (which finds no user, as in Django).
    ///
    /// Integers follow Python's `int(str)`: surrounding whitespace, a sign and `_` between digits
    /// are accepted, so `" 42 "` and `"4_2"` are user 42.
    ///
    /// # Errors
    /// [`AuthError::InvalidUserId`] for a value Django's `to_python` rejects.
    pub fn to_python(self, value: &Value) -> Result<Option<String>, AuthError> {
        let invalid = || AuthError::InvalidUserId {
            value: value_repr(value),
            expected: self.name(),
        };
        match (self, value) {
            (_, Value::Null) => Ok(None),
            (KeyKind::Integer, Value::Str(text)) => python_int(text)
                .map(|n| Some(n.to_string()))
                .ok_or_else(invalid),
            (KeyKind::Integer, Value::Int(n)) => {
                n.as_i64().map(|n| Some(n.to_string())).ok_or_else(invalid)
            }
            (KeyKind::Integer, _) => Err(invalid()),
            (KeyKind::Text, Value::Str(text)) => Ok(Some(text.to_string())),
            (KeyKind::Text, Value::Int(n)) => Ok(Some(n.to_string())),
            (KeyKind::Text, _) => Err(invalid()),
        }
    }
}

fn value_repr(value: &Value) -> String {
    let shown = format!("{value:?}");
    // The value is untrusted and may be large: bound what goes into messages and logs.
    shown.chars().take(80).collect()
}

/// Python's `int(text)` for the range a database key can hold.
fn python_int(text: &str) -> Option<i64> {
    let trimmed = text.trim_matches(|c: char| c.is_whitespace());
    let (sign, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (-1, &trimmed[1..]),
        Some(b'+') => (1, &trimmed[1..]),
        _ => (1, trimmed),
    };
    let bytes = digits.as_bytes();
    let well_formed = !bytes.is_empty()
        && bytes.first().is_some_and(u8::is_ascii_digit)
        && bytes.last().is_some_and(u8::is_ascii_digit)
        && bytes.iter().all(|b| b.is_ascii_digit() || *b == b'_')
        && !digits.contains("__");
    if !well_formed {
        return None;
    }
    let cleaned: String = digits.chars().filter(|c| *c != '_').collect();
    cleaned.parse::<i64>().ok().map(|n| n * sign)
}

/// Where users come from: the Django site's user table, or anything else that can answer the same
/// questions. [`SqlUserSource`](crate::SqlUserSource) reads Django's `auth_user` or a custom user
/// model on PostgreSQL, MySQL/MariaDB and SQLite.
#[async_trait]
pub trait UserSource: Send + Sync + fmt::Debug {
    /// The primary key's kind (how `_auth_user_id` is parsed).
    fn key_kind(&self) -> KeyKind {
        KeyKind::Integer
    }

    /// The user with primary key `id` (canonical text, as [`KeyKind::to_python`] gives it), active
    /// or not; `None` when there is none.
    async fn user_by_id(&self, id: &str) -> Result<Option<User>, AuthError>;

    /// The user whose `USERNAME_FIELD` is `username` (Django's `get_by_natural_key`).
    async fn user_by_username(&self, username: &str) -> Result<Option<User>, AuthError>;

    /// Stores a new password hash for user `id` (`user.set_password(...); user.save(update_fields=
    /// ["password"])`).
    async fn set_password(&self, id: &str, encoded: &str) -> Result<(), AuthError>;

    /// Records a login (Django's `update_last_login` receiver sets `last_login`). The default does
    /// nothing, as for a Django model without `last_login`.
    async fn record_login(&self, id: &str, at: OffsetDateTime) -> Result<(), AuthError> {
        let _ = (id, at);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_keys_parse_as_python_int_does() {
        let parse = |s: &str| KeyKind::Integer.to_python(&Value::from(s));
        assert_eq!(parse("42").unwrap().as_deref(), Some("42"));
        assert_eq!(parse(" 42\n").unwrap().as_deref(), Some("42"));
        assert_eq!(parse("+4_2").unwrap().as_deref(), Some("42"));
        assert_eq!(parse("-7").unwrap().as_deref(), Some("-7"));
        for bad in [
            "",
            "4__2",
            "_42",
            "42_",
            "abc",
            "4.2",
            "99999999999999999999",
        ] {
            assert!(
                matches!(parse(bad), Err(AuthError::InvalidUserId { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            KeyKind::Integer
                .to_python(&Value::from(7))
                .unwrap()
                .as_deref(),
            Some("7")
        );
        assert_eq!(KeyKind::Integer.to_python(&Value::Null).unwrap(), None);
    }

    #[test]
    fn text_keys_are_kept_verbatim() {
        assert_eq!(
            KeyKind::Text
                .to_python(&Value::from(" Ab "))
                .unwrap()
                .as_deref(),
            Some(" Ab ")
        );
    }

    #[test]
    fn debug_output_hides_the_password_hash() {
        let user = User {
            id: "1".into(),
            password: "pbkdf2_sha256$1$secret-salt$secret-hash".into(),
            is_active: true,
            backend: None,
        };
        assert!(!format!("{user:?}").contains("secret"));
    }
}
