//! What can go wrong, and the exit status each failure maps to.

use std::fmt;

/// Why a `sessions` command failed.
///
/// [`Error::exit_code`] is 2 for usage errors and unreadable input (the command could not even
/// start its work) and 1 when a well-formed request fails (a value that does not decode or cannot
/// be encoded).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Neither `--secret-key` nor `SECRET_KEY` was given.
    #[error(
        "no secret key: pass --secret-key KEY or set the SECRET_KEY environment variable \
         to the Django site's SECRET_KEY"
    )]
    MissingSecret,

    /// The options do not make a usable configuration (e.g. an empty secret key).
    #[error("{0}")]
    Config(#[source] session_core::Error),

    /// Standard input could not be read.
    #[error("could not read standard input: {0}")]
    ReadInput(#[source] std::io::Error),

    /// Standard input is larger than [`crate::MAX_INPUT_BYTES`].
    #[error("standard input is larger than {limit} bytes; a session that large cannot be stored")]
    InputTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },

    /// Standard input is not UTF-8 text.
    #[error("standard input is not UTF-8 text (invalid byte at offset {offset})")]
    InputNotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },

    /// Standard input is not valid JSON.
    #[error("standard input is not valid JSON: {0}")]
    InvalidJson(#[source] session_core::serializer::SerializerError),

    /// Standard input holds JSON that is not an object.
    #[error("standard input holds a JSON {found}, but a session is a JSON object ({{...}})")]
    NotAnObject {
        /// What it holds, in JSON terms (`array`, `string`, ...).
        found: &'static str,
    },

    /// The session could not be encoded with the chosen serializer.
    #[error("cannot encode this session: {0}")]
    Encode(#[source] session_core::Error),

    /// An integer MessagePack as Python writes it cannot hold.
    #[error(
        "cannot encode this session: {path} holds the integer {value}, outside the range \
         Python's msgpack can pack (-2**63 to 2**64-1), so Django could not read it back; \
         store it as a string or use --serializer json"
    )]
    MsgPackIntOutOfRange {
        /// Where in the session (`cart.items[2].qty`).
        path: String,
        /// The integer, in decimal.
        value: String,
    },

    /// `--engine db` or `cached-db` without a database URL.
    #[error(
        "--engine {engine} needs the database: set DATABASE_URL (or pass --database-url) to \
         postgres://..., mysql://... or sqlite://path"
    )]
    MissingDatabaseUrl {
        /// The engine.
        engine: &'static str,
    },

    /// The database URL names a database the store does not support.
    #[error(
        "the database URL (--database-url / DATABASE_URL) must start with postgres://, \
         postgresql://, mysql://, mariadb:// or sqlite:"
    )]
    UnsupportedDatabaseUrl,

    /// `--engine cache` without a Redis URL.
    #[error(
        "--engine cache needs the cache: set REDIS_URL (or pass --cache-url) to redis://host:6379"
    )]
    MissingCacheUrl,

    /// `--engine file` without a directory.
    #[error(
        "--engine file needs the session directory: pass --file-path DIR (Django's SESSION_FILE_PATH)"
    )]
    MissingFilePath,

    /// The session key given cannot be a session key.
    #[error(
        "SESSION_KEY is not a session key: keys have 8 to 4096 characters (the value of the \
         session cookie, usually 32 characters of a-z and 0-9)"
    )]
    InvalidSessionKey,

    /// The store could not be opened (unreachable server, missing table, unusable directory).
    #[error("could not open {what}: {}", one_line(.source))]
    Open {
        /// Which store, by the option that configures it (never its URL).
        what: &'static str,
        /// Why.
        #[source]
        source: session_core::Error,
    },

    /// No session is stored under the key.
    #[error("no session under key {key} {place}")]
    NotFound {
        /// The key's first characters (a key is a credential).
        key: String,
        /// Where it was looked for.
        place: &'static str,
    },

    /// A session is stored under the key, but it has expired.
    #[error("the session under key {key} has expired{}", .at.as_ref().map(|at| format!(" (at {at})")).unwrap_or_default())]
    Expired {
        /// The key's first characters.
        key: String,
        /// When, if the store records it.
        at: Option<String>,
    },

    /// The store failed while working.
    #[error("{}", one_line(.0))]
    Store(#[source] session_core::Error),

    /// The async runtime could not be started.
    #[error("could not start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),

    /// `revoke` / `list` on an engine they do not support.
    #[error(
        "revoke and list work on --engine db, cached-db, cache and file; signed-cookie sessions \
         live in browsers and cannot be listed or deleted (change the user's password, or rotate \
         SECRET_KEY, to end them)"
    )]
    UnsupportedEngine,

    /// `--index-only` on db/cached-db without `--index-table`.
    #[error("--index-only needs --index-table NAME on the db and cached-db engines")]
    IndexOnlyWithoutIndex,

    /// `whoami` without a user database.
    #[error(
        "whoami needs the user table: set USER_DATABASE_URL (or pass --user-database-url) to \
         postgres://..., mysql://... or sqlite://path"
    )]
    MissingUserDatabaseUrl,

    /// The session has no verified user (`whoami`).
    #[error("{0}")]
    NotLoggedIn(String),

    /// Reading the session's user failed (`whoami`).
    #[error("{0}")]
    Auth(#[source] session_auth::AuthError),

    /// The value did not verify or decode.
    #[error("cannot decode: {reason}: {}", detail(.source))]
    Decode {
        /// The class of failure.
        reason: DecodeFailure,
        /// The underlying error.
        #[source]
        source: session_core::Error,
    },
}

impl Error {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::MissingSecret
            | Error::Config(_)
            | Error::ReadInput(_)
            | Error::InputTooLarge { .. }
            | Error::InputNotUtf8 { .. }
            | Error::InvalidJson(_)
            | Error::NotAnObject { .. }
            | Error::MissingDatabaseUrl { .. }
            | Error::UnsupportedDatabaseUrl
            | Error::MissingCacheUrl
            | Error::MissingFilePath
            | Error::InvalidSessionKey
            | Error::Open { .. }
            | Error::MissingUserDatabaseUrl
            | Error::UnsupportedEngine
            | Error::IndexOnlyWithoutIndex
            | Error::Runtime(_) => 2,
            Error::Encode(_)
            | Error::MsgPackIntOutOfRange { .. }
            | Error::Decode { .. }
            | Error::NotFound { .. }
            | Error::Expired { .. }
            | Error::NotLoggedIn(_)
            | Error::Auth(_)
            | Error::Store(_) => 1,
        }
    }

    /// The message on one line (the command's contract is one line on stderr).
    pub fn one_line(&self) -> String {
        self.to_string()
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The decode failure class, if this is one.
    pub fn decode_failure(&self) -> Option<DecodeFailure> {
        match self {
            Error::Decode { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    pub(crate) fn not_found(key: &session_core::SessionKey, place: &'static str) -> Self {
        Error::NotFound {
            key: key.redacted(),
            place,
        }
    }

    /// The first four characters of a key and an ellipsis: enough to tell keys apart in a
    /// message, not enough to use one.
    pub(crate) fn decode(source: session_core::Error) -> Self {
        Error::Decode {
            reason: DecodeFailure::of(&source),
            source,
        }
    }
}

/// The underlying error without the core's prefix: the failure class already says what failed
/// (and the core's serializer prefix speaks of serializing, while this is reading).
fn detail(error: &session_core::Error) -> String {
    match error {
        session_core::Error::Signing(signing) => signing.to_string(),
        session_core::Error::Serializer(serializer) => serializer.to_string(),
        other => other.to_string(),
    }
}

/// A store error's whole chain on one line, without the core's generic prefix (the command
/// already says what it was doing).
fn one_line(error: &session_core::Error) -> String {
    let mut text = match error {
        session_core::Error::Store(inner) => inner.to_string(),
        other => other.to_string(),
    };
    let mut source = std::error::Error::source(error);
    if let session_core::Error::Store(inner) = error {
        source = inner.source();
    }
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Why a value did not decode, in the classes Django's behaviour distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeFailure {
    /// Not signed by any of the keys with this salt (Django's `BadSignature`): tampered, another
    /// secret, another backend's salt, or not a signed value at all.
    BadSignature,
    /// Validly signed, but older than `--max-age` (Django's `SignatureExpired`).
    Expired,
    /// Validly signed, but the content does not decode (bad base64, zlib, serializer data).
    Malformed,
    /// Validly signed and decoded, but not a dict (Django would return the value itself; a
    /// session is a dict).
    NotADict,
}

impl DecodeFailure {
    fn of(error: &session_core::Error) -> Self {
        match error {
            session_core::Error::Signing(e) if e.is_expired() => DecodeFailure::Expired,
            session_core::Error::Signing(e) if e.is_bad_signature() => DecodeFailure::BadSignature,
            session_core::Error::NotADict { .. } => DecodeFailure::NotADict,
            _ => DecodeFailure::Malformed,
        }
    }

    /// The class as printed (`bad signature`, `expired`, `malformed`, `not a dict`).
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeFailure::BadSignature => "bad signature",
            DecodeFailure::Expired => "expired",
            DecodeFailure::Malformed => "malformed",
            DecodeFailure::NotADict => "not a dict",
        }
    }
}

impl fmt::Display for DecodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use session_core::serializer::SerializerError;

    use super::*;

    #[test]
    fn input_and_usage_problems_exit_2_and_failed_work_exits_1() {
        let malformed = || SerializerError::Malformed {
            format: "json",
            offset: 0,
            reason: "Expecting value".into(),
        };
        for usage in [
            Error::MissingSecret,
            Error::InputTooLarge { limit: 1 },
            Error::InputNotUtf8 { offset: 0 },
            Error::InvalidJson(malformed()),
            Error::NotAnObject { found: "array" },
            Error::MissingDatabaseUrl { engine: "db" },
            Error::UnsupportedDatabaseUrl,
            Error::MissingCacheUrl,
            Error::MissingFilePath,
            Error::InvalidSessionKey,
            Error::Open {
                what: "the database",
                source: session_core::Error::store("connection refused"),
            },
            Error::UnsupportedEngine,
            Error::IndexOnlyWithoutIndex,
            Error::Runtime(std::io::Error::other("no threads")),
        ] {
            assert_eq!(usage.exit_code(), 2, "{usage}");
        }
        for failed in [
            Error::Encode(session_core::Error::Serializer(malformed())),
            Error::MsgPackIntOutOfRange {
                path: "[\"a\"]".into(),
                value: "18446744073709551616".into(),
            },
            Error::decode(session_core::Error::NotADict { found: "list" }),
            Error::NotFound {
                key: "abcd…".into(),
                place: "in the table",
            },
            Error::Expired {
                key: "abcd…".into(),
                at: None,
            },
            Error::Store(session_core::Error::store("disk full")),
        ] {
            assert_eq!(failed.exit_code(), 1, "{failed}");
        }
    }

    #[test]
    fn messages_are_printed_on_one_line() {
        let error = Error::InvalidJson(SerializerError::Malformed {
            format: "json",
            offset: 3,
            reason: "first line\n  second line\n".into(),
        });
        assert_eq!(
            error.one_line(),
            "standard input is not valid JSON: malformed json data at byte 3: first line second line"
        );
    }

    #[test]
    fn store_errors_are_printed_with_their_causes_on_one_line() {
        let io = std::io::Error::other("permission denied");
        let wrapped = session_core::Error::store(io);
        let error = Error::Open {
            what: "the session directory (--file-path)",
            source: wrapped,
        };
        assert_eq!(
            error.one_line(),
            "could not open the session directory (--file-path): permission denied"
        );
        let expired = Error::Expired {
            key: "abcd…".into(),
            at: Some("2026-01-01T00:00:00+00:00".into()),
        };
        assert_eq!(
            expired.one_line(),
            "the session under key abcd… has expired (at 2026-01-01T00:00:00+00:00)"
        );
    }

    #[test]
    fn decode_failures_are_classed_like_djangos_exceptions() {
        let class = |error| Error::decode(error).decode_failure();
        assert_eq!(
            class(session_core::Error::NotADict { found: "str" }),
            Some(DecodeFailure::NotADict)
        );
        assert_eq!(
            class(session_signing_error_of("not signed")),
            Some(DecodeFailure::BadSignature)
        );
        assert_eq!(Error::MissingSecret.decode_failure(), None);
    }

    /// A real bad-signature error from the core, without depending on session-signing directly.
    fn session_signing_error_of(value: &str) -> session_core::Error {
        let codec = session_core::SessionCodec::new(&session_core::SessionConfig::new("k"))
            .expect("valid config");
        codec
            .try_decode(value, None)
            .expect_err("not a signed value")
    }
}
