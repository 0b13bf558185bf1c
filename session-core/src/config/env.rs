//! [`SessionConfig::from_env`]: Django's setting names, read from the environment.

use std::ffi::OsString;

use session_signing::SecretKey;

use super::{SameSite, SessionConfig, is_cookie_name_byte};
use crate::serializer::SerializerName;

/// Why a configuration could not be read from the environment. Every variant names the variable;
/// none shows the value of a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required variable is not set.
    #[error(
        "{variable} is not set: set it to the Django site's {variable} (or a long random string \
         if no Django site shares these sessions)"
    )]
    Missing {
        /// The variable.
        variable: &'static str,
    },
    /// A variable holds bytes that are not UTF-8.
    #[error("{variable} is not valid UTF-8")]
    NotUnicode {
        /// The variable.
        variable: &'static str,
    },
    /// A variable holds a value the setting cannot take.
    #[error("{variable}: {reason}")]
    Invalid {
        /// The variable.
        variable: &'static str,
        /// What is wrong and what would be accepted.
        reason: String,
    },
}

impl From<ConfigError> for crate::Error {
    fn from(error: ConfigError) -> Self {
        crate::Error::Config(error.to_string())
    }
}

/// The variables [`SessionConfig::from_env`] reads, in Django's names.
pub const ENV_VARIABLES: [&str; 16] = [
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "SESSION_COOKIE_AGE",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_DOMAIN",
    "SESSION_COOKIE_PATH",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_EXPIRE_AT_BROWSER_CLOSE",
    "SESSION_SAVE_EVERY_REQUEST",
    "SESSION_SERIALIZER",
    "SESSION_CONCURRENCY",
    "SESSION_MERGE_ATTEMPTS",
    "SESSION_REFRESH_FRACTION",
    "SESSION_DEFLATE",
];

impl SessionConfig {
    /// Django's settings from environment variables of the same names, Django's defaults for
    /// those that are unset. `SECRET_KEY` is required.
    ///
    /// | variable | value |
    /// |---|---|
    /// | `SECRET_KEY` | the secret (required, non-empty) |
    /// | `SECRET_KEY_FALLBACKS` | older secrets, comma-separated (spaces around commas ignored) |
    /// | `SESSION_COOKIE_AGE` | seconds, an integer |
    /// | `SESSION_COOKIE_NAME`, `SESSION_COOKIE_PATH` | text |
    /// | `SESSION_COOKIE_DOMAIN` | a domain; empty or `None` for a host-only cookie |
    /// | `SESSION_COOKIE_SECURE`, `SESSION_COOKIE_HTTPONLY`, `SESSION_EXPIRE_AT_BROWSER_CLOSE`, `SESSION_SAVE_EVERY_REQUEST` | `True` / `False` (also `true`, `1`, `yes`, `on` and their opposites) |
    /// | `SESSION_COOKIE_SAMESITE` | `Lax`, `Strict` or `None` (the attribute value `None`); `False` or empty to send no attribute (Django's Python `None`) |
    /// | `SESSION_SERIALIZER` | `json`, `msgpack`, `pickle`, or Django's dotted path (`django.contrib.sessions.serializers.JSONSerializer`, `...PickleSerializer`) |
    /// | `SESSION_CONCURRENCY` | `last_write_wins`, `merge` or `reject` ([`ConcurrencyPolicy`](super::ConcurrencyPolicy); ours, not Django's) |
    /// | `SESSION_MERGE_ATTEMPTS` | a positive integer (ours, not Django's) |
    /// | `SESSION_REFRESH_FRACTION` | a number from 0.0 to 1.0 ([`SessionConfig::refresh_fraction`]; ours, not Django's) |
    /// | `SESSION_DEFLATE` | `django` or `fast` ([`SessionConfig::deflate`]; ours, not Django's) |
    ///
    /// The result is [validated](SessionConfig::validate).
    ///
    /// ```
    /// use session_core::SessionConfig;
    ///
    /// // In a real service: `let config = SessionConfig::from_env()?;`
    /// let vars = [
    ///     ("SECRET_KEY", "the Django site's secret"),
    ///     ("SESSION_COOKIE_SECURE", "True"),
    ///     ("SESSION_SERIALIZER", "django.contrib.sessions.serializers.JSONSerializer"),
    /// ];
    /// let config = SessionConfig::from_lookup(|name| {
    ///     vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.into())
    /// })?;
    /// assert!(config.cookie_secure);
    /// assert_eq!(config.cookie_age, 1_209_600); // Django's default
    /// # Ok::<(), session_core::config::ConfigError>(())
    /// ```
    ///
    /// # Loading from a file
    ///
    /// `SessionConfig` deserializes from any serde format, with the same defaults; field names
    /// are the Django setting's, lower-case, without `SESSION_` (`cookie_age`, `serializer`, ...):
    ///
    /// ```
    /// use session_core::SessionConfig;
    ///
    /// // let toml_text = std::fs::read_to_string("sessions.toml")?;
    /// let toml_text = r#"
    ///     secret_key = "the Django site's secret"
    ///     secret_key_fallbacks = ["the previous secret"]
    ///     cookie_secure = true
    ///     serializer = "json"
    /// "#;
    /// let config: SessionConfig = toml::from_str(toml_text)?;
    /// config.validate()?;
    ///
    /// let json_text = r#"{"secret_key": "the Django site's secret", "cookie_age": 3600}"#;
    /// let config: SessionConfig = serde_json::from_str(json_text)?;
    /// assert_eq!(config.cookie_age, 3600);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError`], naming the variable: `SECRET_KEY` unset or empty, a value that is not
    /// UTF-8, or one the setting cannot take (an age that is not an integer, an unknown
    /// serializer, an invalid cookie name, ...).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// [`from_env`](Self::from_env) with the variables looked up by `lookup` instead of in the
    /// process environment (for tests, or settings kept elsewhere).
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(
        mut lookup: impl FnMut(&str) -> Option<OsString>,
    ) -> Result<Self, ConfigError> {
        let mut var = |variable: &'static str| -> Result<Option<String>, ConfigError> {
            match lookup(variable) {
                None => Ok(None),
                Some(value) => value
                    .into_string()
                    .map(Some)
                    .map_err(|_| ConfigError::NotUnicode { variable }),
            }
        };
        let mut config = SessionConfig::default();

        match var("SECRET_KEY")? {
            Some(secret) if !secret.is_empty() => config.secret_key = SecretKey::from(secret),
            // Set but empty is a different mistake from unset: say which.
            Some(_) => {
                return Err(ConfigError::Invalid {
                    variable: "SECRET_KEY",
                    reason: "secret_key is empty: set it to the Django site's SECRET_KEY (or a \
                             long random string if no Django site shares these sessions)"
                        .to_owned(),
                });
            }
            None => {
                return Err(ConfigError::Missing {
                    variable: "SECRET_KEY",
                });
            }
        }
        if let Some(fallbacks) = var("SECRET_KEY_FALLBACKS")? {
            config.secret_key_fallbacks = fallbacks
                .split(',')
                .map(str::trim)
                .filter(|key| !key.is_empty())
                .map(SecretKey::from)
                .collect();
        }
        if let Some(age) = var("SESSION_COOKIE_AGE")? {
            config.cookie_age = age.trim().parse().map_err(|_| ConfigError::Invalid {
                variable: "SESSION_COOKIE_AGE",
                reason: format!("{age:?} is not a whole number of seconds"),
            })?;
        }
        if let Some(name) = var("SESSION_COOKIE_NAME")? {
            if name.is_empty() || !name.bytes().all(is_cookie_name_byte) {
                return Err(ConfigError::Invalid {
                    variable: "SESSION_COOKIE_NAME",
                    reason: format!(
                        "{name:?} is not a valid cookie name: use letters, digits and \
                         !#$%&'*+-.^_`|~"
                    ),
                });
            }
            config.cookie_name = name;
        }
        if let Some(domain) = var("SESSION_COOKIE_DOMAIN")? {
            config.cookie_domain = match domain.trim() {
                "" | "None" => None,
                domain => Some(domain.to_owned()),
            };
        }
        if let Some(path) = var("SESSION_COOKIE_PATH")? {
            config.cookie_path = path;
        }
        for (variable, slot) in [
            ("SESSION_COOKIE_SECURE", &mut config.cookie_secure),
            ("SESSION_COOKIE_HTTPONLY", &mut config.cookie_httponly),
            (
                "SESSION_EXPIRE_AT_BROWSER_CLOSE",
                &mut config.expire_at_browser_close,
            ),
            ("SESSION_SAVE_EVERY_REQUEST", &mut config.save_every_request),
        ] {
            if let Some(value) = var(variable)? {
                *slot = parse_bool(variable, &value)?;
            }
        }
        if let Some(samesite) = var("SESSION_COOKIE_SAMESITE")? {
            config.cookie_samesite = parse_samesite(&samesite)?;
        }
        if let Some(serializer) = var("SESSION_SERIALIZER")? {
            config.serializer = parse_serializer(&serializer)?;
        }
        if let Some(policy) = var("SESSION_CONCURRENCY")? {
            config.concurrency = policy.parse().map_err(|reason| ConfigError::Invalid {
                variable: "SESSION_CONCURRENCY",
                reason,
            })?;
        }
        if let Some(attempts) = var("SESSION_MERGE_ATTEMPTS")? {
            config.merge_attempts = attempts
                .trim()
                .parse()
                .ok()
                .filter(|&n: &u32| n > 0)
                .ok_or_else(|| ConfigError::Invalid {
                    variable: "SESSION_MERGE_ATTEMPTS",
                    reason: format!("{attempts:?} is not a positive whole number"),
                })?;
        }
        if let Some(fraction) = var("SESSION_REFRESH_FRACTION")? {
            config.refresh_fraction = fraction
                .trim()
                .parse()
                .ok()
                .filter(|f: &f64| (0.0..=1.0).contains(f))
                .ok_or_else(|| ConfigError::Invalid {
                    variable: "SESSION_REFRESH_FRACTION",
                    reason: format!("{fraction:?} is not a number from 0.0 to 1.0"),
                })?;
        }
        if let Some(deflate) = var("SESSION_DEFLATE")? {
            config.deflate = deflate.parse().map_err(|reason| ConfigError::Invalid {
                variable: "SESSION_DEFLATE",
                reason,
            })?;
        }
        config.validate().map_err(|error| ConfigError::Invalid {
            variable: "SESSION_*",
            reason: error.to_string(),
        })?;
        Ok(config)
    }
}

fn parse_bool(variable: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(ConfigError::Invalid {
            variable,
            reason: format!("{value:?} is not a boolean: use True or False"),
        }),
    }
}

fn parse_samesite(value: &str) -> Result<Option<SameSite>, ConfigError> {
    // Django accepts the three values in any case (`set_cookie` lower-cases them to check).
    match value.trim().to_ascii_lowercase().as_str() {
        "lax" => Ok(Some(SameSite::Lax)),
        "strict" => Ok(Some(SameSite::Strict)),
        "none" => Ok(Some(SameSite::None)),
        "false" | "" => Ok(None),
        _ => Err(ConfigError::Invalid {
            variable: "SESSION_COOKIE_SAMESITE",
            reason: format!(
                "{value:?} is not a SameSite value: use Lax, Strict, None, or False for no \
                 attribute"
            ),
        }),
    }
}

fn parse_serializer(value: &str) -> Result<SerializerName, ConfigError> {
    match value.trim() {
        "django.contrib.sessions.serializers.JSONSerializer" => Ok(SerializerName::Json),
        // Django 4.2 and earlier; we read and write its bytes without executing anything.
        "django.contrib.sessions.serializers.PickleSerializer" => Ok(SerializerName::Pickle),
        short => short.parse().map_err(|_| ConfigError::Invalid {
            variable: "SESSION_SERIALIZER",
            reason: format!(
                "{value:?} is not a serializer: use json, msgpack, pickle, or \
                 django.contrib.sessions.serializers.JSONSerializer"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<SessionConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        SessionConfig::from_lookup(|name| vars.get(name).map(OsString::from))
    }

    #[test]
    fn only_the_secret_is_required_and_the_rest_are_djangos_defaults() {
        let config = from(&[("SECRET_KEY", "s3cret")]).unwrap();
        assert_eq!(
            config,
            SessionConfig {
                secret_key: SecretKey::from("s3cret"),
                ..SessionConfig::default()
            }
        );
    }

    #[test]
    fn every_setting_is_read_under_its_django_name() {
        let config = from(&[
            ("SECRET_KEY", "new"),
            ("SECRET_KEY_FALLBACKS", "old, older ,,oldest"),
            ("SESSION_COOKIE_AGE", "3600"),
            ("SESSION_COOKIE_NAME", "sid"),
            ("SESSION_COOKIE_DOMAIN", ".example.com"),
            ("SESSION_COOKIE_PATH", "/app/"),
            ("SESSION_COOKIE_SECURE", "True"),
            ("SESSION_COOKIE_HTTPONLY", "false"),
            ("SESSION_COOKIE_SAMESITE", "Strict"),
            ("SESSION_EXPIRE_AT_BROWSER_CLOSE", "1"),
            ("SESSION_SAVE_EVERY_REQUEST", "yes"),
            (
                "SESSION_SERIALIZER",
                "django.contrib.sessions.serializers.PickleSerializer",
            ),
            ("SESSION_CONCURRENCY", "merge"),
            ("SESSION_MERGE_ATTEMPTS", "3"),
            ("SESSION_REFRESH_FRACTION", "0.25"),
            ("SESSION_DEFLATE", "fast"),
        ])
        .unwrap();
        assert_eq!(config.refresh_fraction, 0.25);
        assert_eq!(config.deflate, session_signing::Deflate::Fast);
        assert_eq!(config.concurrency, super::super::ConcurrencyPolicy::Merge);
        assert_eq!(config.merge_attempts, 3);
        assert_eq!(config.secret_key, SecretKey::from("new"));
        assert_eq!(
            config.secret_key_fallbacks,
            ["old", "older", "oldest"].map(SecretKey::from).to_vec()
        );
        assert_eq!(config.cookie_age, 3600);
        assert_eq!(config.cookie_name, "sid");
        assert_eq!(config.cookie_domain.as_deref(), Some(".example.com"));
        assert_eq!(config.cookie_path, "/app/");
        assert!(config.cookie_secure);
        assert!(!config.cookie_httponly);
        assert_eq!(config.cookie_samesite, Some(SameSite::Strict));
        assert!(config.expire_at_browser_close);
        assert!(config.save_every_request);
        assert_eq!(config.serializer, SerializerName::Pickle);
    }

    #[test]
    fn samesite_false_sends_no_attribute_and_none_is_the_attribute_none() {
        let config = from(&[("SECRET_KEY", "k"), ("SESSION_COOKIE_SAMESITE", "False")]).unwrap();
        assert_eq!(config.cookie_samesite, None);
        let config = from(&[("SECRET_KEY", "k"), ("SESSION_COOKIE_SAMESITE", "none")]).unwrap();
        assert_eq!(config.cookie_samesite, Some(SameSite::None));
    }

    #[test]
    fn short_serializer_names_and_djangos_dotted_paths_are_accepted() {
        for (given, expected) in [
            ("json", SerializerName::Json),
            ("msgpack", SerializerName::MsgPack),
            ("pickle", SerializerName::Pickle),
            (
                "django.contrib.sessions.serializers.JSONSerializer",
                SerializerName::Json,
            ),
        ] {
            let config = from(&[("SECRET_KEY", "k"), ("SESSION_SERIALIZER", given)]).unwrap();
            assert_eq!(config.serializer, expected, "{given}");
        }
    }

    #[test]
    fn each_error_names_its_variable() {
        let cases: [(&[(&str, &str)], &str); 8] = [
            (&[], "SECRET_KEY"),
            (&[("SECRET_KEY", "")], "SECRET_KEY"),
            (
                &[("SECRET_KEY", "k"), ("SESSION_COOKIE_AGE", "two weeks")],
                "SESSION_COOKIE_AGE",
            ),
            (
                &[("SECRET_KEY", "k"), ("SESSION_COOKIE_NAME", "a b")],
                "SESSION_COOKIE_NAME",
            ),
            (
                &[("SECRET_KEY", "k"), ("SESSION_COOKIE_SECURE", "maybe")],
                "SESSION_COOKIE_SECURE",
            ),
            (
                &[("SECRET_KEY", "k"), ("SESSION_COOKIE_SAMESITE", "Loose")],
                "SESSION_COOKIE_SAMESITE",
            ),
            (
                &[("SECRET_KEY", "k"), ("SESSION_SERIALIZER", "yaml")],
                "SESSION_SERIALIZER",
            ),
            (
                &[
                    ("SECRET_KEY", "k"),
                    ("SESSION_SAVE_EVERY_REQUEST", "sometimes"),
                ],
                "SESSION_SAVE_EVERY_REQUEST",
            ),
        ];
        for (vars, variable) in cases {
            let message = from(vars).unwrap_err().to_string();
            assert!(message.starts_with(variable), "{variable}: {message}");
        }
    }

    #[test]
    fn an_empty_secret_is_told_apart_from_a_missing_one() {
        assert_eq!(
            from(&[]).unwrap_err(),
            ConfigError::Missing {
                variable: "SECRET_KEY"
            }
        );
        let empty = from(&[("SECRET_KEY", "")]).unwrap_err();
        assert!(matches!(
            empty,
            ConfigError::Invalid {
                variable: "SECRET_KEY",
                ..
            }
        ));
        assert!(empty.to_string().contains("secret_key is empty"), "{empty}");
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let message = from(&[
            ("SECRET_KEY", "top-secret-value"),
            ("SESSION_COOKIE_AGE", "x"),
        ])
        .unwrap_err()
        .to_string();
        assert!(!message.contains("top-secret-value"));
    }

    #[cfg(unix)]
    #[test]
    fn a_value_that_is_not_utf8_is_an_error_naming_the_variable() {
        use std::os::unix::ffi::OsStringExt;
        let error = SessionConfig::from_lookup(|name| match name {
            "SECRET_KEY" => Some(OsString::from("k")),
            "SESSION_COOKIE_PATH" => Some(OsString::from_vec(vec![0xff, 0xfe])),
            _ => None,
        })
        .unwrap_err();
        assert_eq!(
            error,
            ConfigError::NotUnicode {
                variable: "SESSION_COOKIE_PATH"
            }
        );
    }

    #[test]
    fn a_bad_concurrency_setting_names_its_variable() {
        for (variable, value) in [
            ("SESSION_CONCURRENCY", "optimistic"),
            ("SESSION_MERGE_ATTEMPTS", "0"),
            ("SESSION_MERGE_ATTEMPTS", "many"),
            ("SESSION_REFRESH_FRACTION", "2"),
        ] {
            let err = from(&[("SECRET_KEY", "k"), (variable, value)]).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { variable: v, .. } if *v == variable),
                "{err:?}"
            );
        }
    }

    #[test]
    fn an_unknown_deflate_setting_names_its_variable_and_the_choices() {
        let err = from(&[("SECRET_KEY", "k"), ("SESSION_DEFLATE", "level9")]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { variable: "SESSION_DEFLATE", reason }
                if reason.contains("django or fast")),
            "{err:?}"
        );
    }

    #[test]
    fn every_variable_read_is_listed() {
        let mut seen = Vec::new();
        let _ = SessionConfig::from_lookup(|name| {
            seen.push(name.to_owned());
            (name == "SECRET_KEY").then(|| OsString::from("k"))
        });
        let mut listed: Vec<String> = ENV_VARIABLES.iter().map(|v| (*v).to_owned()).collect();
        seen.sort();
        listed.sort();
        assert_eq!(seen, listed);
    }
}
