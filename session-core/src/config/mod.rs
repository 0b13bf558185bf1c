//! Django's session settings, with Django's defaults.

use serde::{Deserialize, Serialize};
use session_signing::{Algorithm, Deflate, SecretKey};

use crate::Error;
use crate::serializer::SerializerName;

mod env;
pub use env::{ConfigError, ENV_VARIABLES};

/// The salt Django's session backends sign `session_data` with
/// (`"django.contrib.sessions." + type(self).__qualname__`; every built-in backend class is named
/// `SessionStore`).
pub const SESSION_KEY_SALT: &str = "django.contrib.sessions.SessionStore";

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SameSite {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax` (Django's default).
    Lax,
    /// `SameSite=None` (browsers then require `Secure`).
    None,
}

impl SameSite {
    /// The attribute value as Django writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

/// What a save does when another request changed the same session since this one loaded it.
///
/// Two requests on one session (two tabs, a page and its XHRs) each load the whole session; under
/// Django's rule the later save silently erases the earlier one's changes. The other two policies
/// need a store that can compare-and-swap ([`StoreCapabilities::compare_and_swap`]); they change
/// nothing Django reads or writes. See [`Session`](crate::Session#concurrent-requests) for the
/// exact merge rules.
///
/// [`StoreCapabilities::compare_and_swap`]: crate::store::StoreCapabilities::compare_and_swap
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcurrencyPolicy {
    /// Django's behaviour (the default): a save writes the whole session, whatever was stored
    /// meanwhile.
    #[default]
    LastWriteWins,
    /// A save re-applies only this request's changes (keys set or removed, a clear) onto what is
    /// stored now, atomically, retrying up to [`SessionConfig::merge_attempts`] times when another
    /// save lands in between; then it fails with [`Error::Conflict`].
    Merge,
    /// A save succeeds only if the stored session is still the one this request read; otherwise it
    /// fails with [`Error::Conflict`] (the middleware answers 409).
    Reject,
}

impl ConcurrencyPolicy {
    /// The name used in config files and `SESSION_CONCURRENCY`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConcurrencyPolicy::LastWriteWins => "last_write_wins",
            ConcurrencyPolicy::Merge => "merge",
            ConcurrencyPolicy::Reject => "reject",
        }
    }

    /// Whether the policy needs a store that can compare-and-swap.
    pub fn needs_compare_and_swap(self) -> bool {
        self != ConcurrencyPolicy::LastWriteWins
    }

    /// Checks that `store` can serve this policy: the error a store or layer constructor returns
    /// rather than silently falling back to last-write-wins.
    ///
    /// # Errors
    /// [`Error::Config`] when the policy needs compare-and-swap and the store cannot do it.
    pub fn check_store(self, store: &dyn crate::SessionStore) -> Result<(), Error> {
        if self.needs_compare_and_swap() && !store.capabilities().compare_and_swap {
            return Err(Error::Config(format!(
                "concurrency = {:?} needs a store that can compare-and-swap, and {store:?} cannot: \
                 use concurrency = \"last_write_wins\" with it, or a server-side store",
                self.as_str()
            )));
        }
        Ok(())
    }
}

impl std::fmt::Display for ConcurrencyPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ConcurrencyPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "last_write_wins" => Ok(ConcurrencyPolicy::LastWriteWins),
            "merge" => Ok(ConcurrencyPolicy::Merge),
            "reject" => Ok(ConcurrencyPolicy::Reject),
            _ => Err(format!(
                "{s:?} is not a concurrency policy: use last_write_wins, merge or reject"
            )),
        }
    }
}

/// How many times a [`ConcurrencyPolicy::Merge`] save tries before giving up (default of
/// [`SessionConfig::merge_attempts`]).
pub const DEFAULT_MERGE_ATTEMPTS: u32 = 8;

/// Django's session settings (`SESSION_*`, `SECRET_KEY`, `SECRET_KEY_FALLBACKS`), with Django's
/// defaults.
///
/// Build it in code or deserialize it (every field is optional in a config file except the secret):
///
/// ```
/// use session_core::{SessionConfig, serializer::SerializerName};
///
/// let config: SessionConfig = serde_json::from_str(r#"{
///     "secret_key": "change me",
///     "cookie_age": 3600,
///     "serializer": "msgpack"
/// }"#).unwrap();
/// assert_eq!(config.cookie_name, "sessionid");
/// assert_eq!(config.serializer, SerializerName::MsgPack);
///
/// let config = SessionConfig { cookie_secure: true, ..SessionConfig::new("change me") };
/// assert!(config.validate().is_ok());
/// ```
///
/// It deliberately does not implement `Serialize`: it holds secrets.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// `SECRET_KEY`: signs session data. Required (an empty key is a configuration error).
    pub secret_key: SecretKey,
    /// `SECRET_KEY_FALLBACKS`: older keys still accepted when verifying, never used to sign.
    pub secret_key_fallbacks: Vec<SecretKey>,
    /// `SESSION_COOKIE_NAME` (default `sessionid`); also the file store's file-name prefix.
    pub cookie_name: String,
    /// `SESSION_COOKIE_AGE` in seconds (default 1209600, two weeks).
    pub cookie_age: i64,
    /// `SESSION_COOKIE_DOMAIN` (default none: a host-only cookie).
    pub cookie_domain: Option<String>,
    /// `SESSION_COOKIE_PATH` (default `/`).
    pub cookie_path: String,
    /// `SESSION_COOKIE_SECURE` (default false).
    pub cookie_secure: bool,
    /// `SESSION_COOKIE_HTTPONLY` (default true).
    pub cookie_httponly: bool,
    /// `SESSION_COOKIE_SAMESITE` (default `Lax`; `null` omits the attribute).
    pub cookie_samesite: Option<SameSite>,
    /// `SESSION_EXPIRE_AT_BROWSER_CLOSE` (default false).
    pub expire_at_browser_close: bool,
    /// `SESSION_SAVE_EVERY_REQUEST` (default false).
    pub save_every_request: bool,
    /// `SESSION_SERIALIZER`: `json` (default), `msgpack` or `pickle`.
    pub serializer: SerializerName,
    /// The salt session data is signed with (default [`SESSION_KEY_SALT`]). Change it only to share
    /// sessions with a Django backend class that is not named `SessionStore`.
    pub key_salt: String,
    /// Django 3.1/3.2's `DEFAULT_HASHING_ALGORITHM`: `sha256` (default) writes today's format;
    /// `sha1` writes the pre-3.1 session format and SHA-1 signatures, for sites still on that setting.
    pub hashing_algorithm: Algorithm,
    /// Also accept the pre-3.1 session format and SHA-1 signatures when reading (what Django 3.1 and
    /// 3.2 did during the transition; Django 4.0+ rejects them). Default false. Implied by
    /// `hashing_algorithm = "sha1"`.
    pub accept_legacy_formats: bool,
    /// The largest decompressed session accepted, in bytes (default 4 MiB). Django has no such bound;
    /// without one a tiny compressed value could expand into gigabytes.
    pub max_decompressed_size: usize,
    /// How session data is deflated when compressing it shortens it: `django` (the default, zlib
    /// level 6) writes Django's exact bytes; `fast` (level 1) deflates two to three times faster
    /// into a somewhat larger value that Django reads all the same ([`Deflate`]). Reading
    /// accepts both. Not a Django setting.
    pub deflate: Deflate,
    /// What a save does when a concurrent request changed the session meanwhile (default
    /// [`ConcurrencyPolicy::LastWriteWins`], Django's behaviour). Not a Django setting.
    pub concurrency: ConcurrencyPolicy,
    /// How many times a [`ConcurrencyPolicy::Merge`] save tries (default
    /// [`DEFAULT_MERGE_ATTEMPTS`]); at least 1. Not a Django setting.
    pub merge_attempts: u32,
    /// Throttled sliding expiry, for `save_every_request`: an unmodified session is saved (and
    /// its cookie re-sent) only once at least this fraction of its age has passed since its last
    /// save, so a busy site stops writing on every request. 0.0 (the default) saves on every
    /// request, as Django does; 0.1 with the two-week default age saves an unmodified session
    /// at most every 33.6 hours, and it still never expires sooner than 90 % of its age after
    /// the last request. Between 0.0 and 1.0. See
    /// [`Session::refresh_due`](crate::Session::refresh_due). Not a Django setting.
    pub refresh_fraction: f64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            secret_key: SecretKey::from(""),
            secret_key_fallbacks: Vec::new(),
            cookie_name: "sessionid".to_owned(),
            cookie_age: 1_209_600,
            cookie_domain: None,
            cookie_path: "/".to_owned(),
            cookie_secure: false,
            cookie_httponly: true,
            cookie_samesite: Some(SameSite::Lax),
            expire_at_browser_close: false,
            save_every_request: false,
            serializer: SerializerName::Json,
            key_salt: SESSION_KEY_SALT.to_owned(),
            hashing_algorithm: Algorithm::Sha256,
            accept_legacy_formats: false,
            max_decompressed_size: session_signing::DEFAULT_MAX_DECOMPRESSED_SIZE,
            deflate: Deflate::Django,
            concurrency: ConcurrencyPolicy::LastWriteWins,
            merge_attempts: DEFAULT_MERGE_ATTEMPTS,
            refresh_fraction: 0.0,
        }
    }
}

impl SessionConfig {
    /// Django's defaults with the given secret key.
    pub fn new(secret_key: impl Into<SecretKey>) -> Self {
        SessionConfig {
            secret_key: secret_key.into(),
            ..SessionConfig::default()
        }
    }

    /// Checks the settings Django would refuse (or that would make every cookie unusable).
    pub fn validate(&self) -> Result<(), Error> {
        if self.secret_key.is_empty() {
            return Err(Error::Config(
                "secret_key is empty: set it to the Django site's SECRET_KEY (or a long random \
                 string if no Django site shares these sessions)"
                    .to_owned(),
            ));
        }
        if self.cookie_name.is_empty() || !self.cookie_name.bytes().all(is_cookie_name_byte) {
            return Err(Error::Config(format!(
                "cookie_name {:?} is not a valid cookie name: use letters, digits and !#$%&'*+-.^_`|~",
                self.cookie_name
            )));
        }
        if !matches!(self.hashing_algorithm, Algorithm::Sha256 | Algorithm::Sha1) {
            return Err(Error::Config(format!(
                "hashing_algorithm {} is not one Django sessions use: choose sha256 or sha1",
                self.hashing_algorithm
            )));
        }
        if self.max_decompressed_size == 0 {
            return Err(Error::Config(
                "max_decompressed_size is 0: no session could be read".to_owned(),
            ));
        }
        if !(0.0..=1.0).contains(&self.refresh_fraction) {
            return Err(Error::Config(format!(
                "refresh_fraction {} is outside 0.0-1.0: use 0.0 to save on every request \
                 (Django's rule) or a fraction of the session age such as 0.1",
                self.refresh_fraction
            )));
        }
        if self.merge_attempts == 0 {
            return Err(Error::Config(
                "merge_attempts is 0: a merge save needs at least one attempt".to_owned(),
            ));
        }
        Ok(())
    }
}

/// RFC 6265 `token` characters, which a cookie name must consist of.
fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_djangos() {
        let c = SessionConfig::default();
        assert_eq!(c.cookie_name, "sessionid");
        assert_eq!(c.cookie_age, 1_209_600);
        assert_eq!(c.cookie_path, "/");
        assert_eq!(c.cookie_domain, None);
        assert!(!c.cookie_secure);
        assert!(c.cookie_httponly);
        assert_eq!(c.cookie_samesite, Some(SameSite::Lax));
        assert!(!c.expire_at_browser_close);
        assert!(!c.save_every_request);
        assert_eq!(c.serializer, SerializerName::Json);
        assert_eq!(c.key_salt, "django.contrib.sessions.SessionStore");
        assert_eq!(c.concurrency, ConcurrencyPolicy::LastWriteWins);
    }

    #[test]
    fn concurrency_policies_read_from_config_files_by_their_snake_case_names() {
        for (name, policy) in [
            ("last_write_wins", ConcurrencyPolicy::LastWriteWins),
            ("merge", ConcurrencyPolicy::Merge),
            ("reject", ConcurrencyPolicy::Reject),
        ] {
            let config: SessionConfig = serde_json::from_str(&format!(
                r#"{{"secret_key": "k", "concurrency": "{name}", "merge_attempts": 3}}"#
            ))
            .unwrap();
            assert_eq!(config.concurrency, policy);
            assert_eq!(config.merge_attempts, 3);
            assert_eq!(policy.as_str(), name);
            assert_eq!(name.parse::<ConcurrencyPolicy>().unwrap(), policy);
        }
        assert!(
            serde_json::from_str::<SessionConfig>(r#"{"secret_key": "k", "concurrency": "yolo"}"#)
                .is_err()
        );
    }

    #[test]
    fn deflate_reads_from_a_file_by_name_and_defaults_to_djangos() {
        let config: SessionConfig =
            serde_json::from_str(r#"{"secret_key": "k", "deflate": "fast"}"#).unwrap();
        assert_eq!(config.deflate, Deflate::Fast);
        assert_eq!(SessionConfig::new("k").deflate, Deflate::Django);
        assert!(
            serde_json::from_str::<SessionConfig>(r#"{"secret_key": "k", "deflate": "best"}"#)
                .is_err()
        );
    }

    #[test]
    fn a_refresh_fraction_outside_zero_to_one_is_a_configuration_error() {
        for bad in [-0.1, 1.5, f64::NAN] {
            let config = SessionConfig {
                refresh_fraction: bad,
                ..SessionConfig::new("k")
            };
            assert!(
                config
                    .validate()
                    .unwrap_err()
                    .to_string()
                    .contains("refresh_fraction"),
                "{bad}"
            );
        }
    }

    #[test]
    fn zero_merge_attempts_is_a_configuration_error() {
        let config = SessionConfig {
            merge_attempts: 0,
            ..SessionConfig::new("k")
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("merge_attempts")
        );
    }

    #[test]
    fn empty_secret_is_a_configuration_error() {
        let err = SessionConfig::default().validate().unwrap_err();
        assert!(err.to_string().contains("secret_key is empty"));
    }

    #[test]
    fn bad_cookie_names_are_rejected() {
        for name in ["", "session id", "a;b", "sess=ion"] {
            let config = SessionConfig {
                cookie_name: name.to_owned(),
                ..SessionConfig::new("k")
            };
            assert!(config.validate().is_err(), "{name:?}");
        }
    }

    #[test]
    fn deserializes_from_a_config_file_with_defaults() {
        let config: SessionConfig = serde_json::from_str(
            r#"{"secret_key": "s3cret", "secret_key_fallbacks": ["old"],
                "cookie_samesite": null, "serializer": "pickle"}"#,
        )
        .unwrap();
        assert_eq!(config.secret_key, SecretKey::from("s3cret"));
        assert_eq!(config.secret_key_fallbacks, vec![SecretKey::from("old")]);
        assert_eq!(config.cookie_samesite, None);
        assert_eq!(config.serializer, SerializerName::Pickle);
        assert_eq!(config.cookie_age, 1_209_600);
    }

    #[test]
    fn unknown_settings_are_rejected_not_ignored() {
        let result: Result<SessionConfig, _> =
            serde_json::from_str(r#"{"secret_key": "k", "cookie_agee": 5}"#);
        assert!(result.is_err());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = SessionConfig {
            secret_key_fallbacks: vec![SecretKey::from("old-secret-value")],
            ..SessionConfig::new("current-secret-value")
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("current-secret-value"));
        assert!(!shown.contains("old-secret-value"));
    }
}
