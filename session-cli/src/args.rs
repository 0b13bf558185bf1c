//! The command line, as clap parses it.
//!
//! Options shared by several subcommands live in their own structs ([`KeyArgs`], [`CodecArgs`],
//! [`StoreArgs`]) and are flattened into each subcommand, so they are written after the subcommand
//! name (`sessions decode --secret-key ... DATA`) and a new subcommand picks exactly the ones it
//! needs.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use session_core::codec::SIGNED_COOKIES_SALT;
use session_core::config::SESSION_KEY_SALT;
use session_core::serializer::SerializerName;
use std::ffi::OsString;

use session_core::{ConfigError, Deflate, SecretKey, SessionCodec, SessionConfig};

use crate::Error;

/// Encode, decode, show and clear Django-compatible sessions.
///
/// Values are signed exactly as Django signs them, so `sessions decode` reads what a Django site
/// stored (in its database, cache, files or signed cookies) and `sessions encode` writes what
/// Django reads. `sessions show` and `sessions clearsessions` work on the stores themselves.
///
/// Exit status: 0 on success, 1 when a value fails to decode or encode or a session is not found,
/// 2 for usage errors, unusable configuration (a store that cannot be opened) and unreadable
/// input.
#[derive(Debug, Parser)]
#[command(
    name = "sessions",
    version,
    after_help = "Run `sessions <COMMAND> --help` for the options of each command."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify and decode one encoded session value; print the session dict as one line of JSON.
    ///
    /// Accepts today's format (`payload:timestamp:signature`, optionally compressed), SHA-1
    /// signatures and the pre-Django-3.1 session format, as Django 3.1/3.2 did. On any failure
    /// (bad signature, expired, malformed, not a dict) prints one line on stderr naming the reason
    /// and exits 1, printing nothing on stdout.
    Decode(DecodeArgs),
    /// Read one JSON object on stdin and print it signed, as Django would store it.
    ///
    /// The JSON is read as Python's `json` module reads it: integers of any size, floats, NaN and
    /// Infinity. The value is compressed when that makes it shorter, as Django does. Invalid JSON
    /// or a value that is not an object: one line on stderr, exit 2.
    Encode(EncodeArgs),
    /// Remove expired sessions from a store and print how many (Django's `manage.py
    /// clearsessions`; run it from cron).
    ///
    /// db and cached-db delete the table's rows whose expire_date has passed (cached-db's cache
    /// entries expire with their rows); file removes expired session files (and temporary files
    /// a killed writer left behind, which are not counted); cache has nothing to do, since
    /// entries expire by themselves. The file engine needs the secret key (a session's own
    /// expiry is inside its signed data); the others do not.
    Clearsessions(ClearArgs),
    /// Print who is logged in to the session under KEY, verified as Django's get_user does:
    /// one line of JSON, `{"user_id": "...", "backend": "...", "verified": true}`.
    ///
    /// The user's current password hash is read from --user-database-url (Django's auth_user,
    /// or a custom user model with the --user-* options) and the session's _auth_user_hash is
    /// checked against it with SECRET_KEY and each --fallback-key. Exit 1 with one line on stderr
    /// when there is no user, the hash does not match (the password changed), or the user is
    /// inactive (for ModelBackend) or gone. Nothing is changed: Django would flush a session
    /// whose hash does not match; whoami only reports it. For --engine cookie, KEY is the
    /// cookie's value.
    Whoami(WhoamiArgs),
    /// Log a user out everywhere: delete every live session of user ID and print how many were
    /// removed (db, cached-db and cache engines).
    ///
    /// db and cached-db: sessions are found through --index-table (logins session-auth indexed)
    /// and by a scan that verifies and decodes every live row (Django's logins are in no index),
    /// a read of the whole table in batches; cached-db also deletes their cache entries, so it
    /// needs --cache-url. cache: through session-auth's per-user Redis set and a SCAN of the
    /// session keys under --cache-key-prefix that decodes every value. file: every session file
    /// of --file-path is read and verified (there is no index).
    Revoke(UserSessionArgs),
    /// Print the live sessions of user ID, one JSON line each: the key redacted, its
    /// expire_date and when its data last changed (null on cache, whose entries carry no
    /// timestamp). Found as `revoke` finds them; cached-db is read from the database.
    List(UserSessionArgs),
    /// Print the session stored under SESSION_KEY as one line of JSON (for support and
    /// debugging).
    ///
    /// Exit 1, with one line on stderr, when no live session is stored under the key (absent or
    /// expired) or its data does not verify with the secret key (the reason is named).
    /// cached-db sessions are read from the database, the source of truth.
    Show(ShowArgs),
}

/// The secret keys values are signed with. `Debug` shows only whether each was given.
#[derive(Clone, Args)]
pub struct KeyArgs {
    /// The Django site's SECRET_KEY. Prefer the SECRET_KEY environment variable: command-line
    /// arguments are visible to other users of the machine.
    #[arg(long, value_name = "KEY", env = "SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// An older key still accepted when verifying, like Django's SECRET_KEY_FALLBACKS (never used
    /// to sign). Repeat for several.
    #[arg(long = "fallback-key", value_name = "KEY")]
    pub fallback_keys: Vec<String>,
}

impl KeyArgs {
    /// Django's session settings: `SessionConfig::from_env` (Django's setting names, e.g.
    /// `SESSION_COOKIE_AGE`, `SECRET_KEY_FALLBACKS`), with `--secret-key` for `SECRET_KEY`, the
    /// `--fallback-key`s added to the fallbacks and `serializer` replacing `SESSION_SERIALIZER`
    /// when given; reading the pre-3.1 session format and SHA-1 signatures as Django 3.1/3.2 did.
    ///
    /// # Errors
    /// [`Error::MissingSecret`] without a secret key, [`Error::Config`] for a variable the
    /// setting cannot take (the message names it).
    pub fn config(&self, serializer: Option<SerializerArg>) -> Result<SessionConfig, Error> {
        let mut config = SessionConfig::from_lookup(|name| match name {
            "SECRET_KEY" => self.secret_key.clone().map(OsString::from),
            other => std::env::var_os(other),
        })
        .map_err(|error| match error {
            ConfigError::Missing { .. } => Error::MissingSecret,
            other => Error::Config(other.into()),
        })?;
        config.secret_key_fallbacks.extend(
            self.fallback_keys
                .iter()
                .map(|key| SecretKey::from(key.as_str())),
        );
        if let Some(serializer) = serializer {
            config.serializer = serializer.into();
        }
        config.accept_legacy_formats = true;
        Ok(config)
    }
}

/// Which salt and serializer values are signed with.
#[derive(Debug, Clone, Args)]
pub struct CodecArgs {
    /// The Django session backend whose values these are; it determines the salt.
    /// db, cache, cached-db and file use "django.contrib.sessions.SessionStore"; cookie uses
    /// "django.contrib.sessions.backends.signed_cookies".
    #[arg(long, value_enum, value_name = "NAME", default_value_t = Backend::Db)]
    pub backend: Backend,

    /// Sign with this salt instead of the backend's (e.g. "django.core.signing" for values made
    /// with `signing.dumps`).
    #[arg(long, value_name = "SALT", conflicts_with = "backend")]
    pub salt: Option<String>,

    /// The SESSION_SERIALIZER of the Django site [default: the SESSION_SERIALIZER environment
    /// variable, else json].
    #[arg(long, value_enum, value_name = "NAME")]
    pub serializer: Option<SerializerArg>,
}

/// Options of `sessions decode`.
#[derive(Debug, Clone, Args)]
pub struct DecodeArgs {
    /// Reject values signed more than SECONDS ago (fractions allowed), like the signed-cookie
    /// backend's SESSION_COOKIE_AGE check. Pre-3.1 session values carry no timestamp and are
    /// never rejected for age.
    #[arg(long, value_name = "SECONDS", value_parser = parse_max_age)]
    pub max_age: Option<Duration>,

    /// The encoded session value, taken verbatim (no whitespace is trimmed).
    #[arg(value_name = "DATA", allow_hyphen_values = true)]
    pub data: String,

    /// The secret keys.
    #[command(flatten, next_help_heading = "Keys")]
    pub keys: KeyArgs,

    /// The salt and serializer.
    #[command(flatten, next_help_heading = "Salt and serializer")]
    pub codec: CodecArgs,
}

/// Options of `sessions encode`.
#[derive(Debug, Clone, Args)]
pub struct EncodeArgs {
    /// Never compress (by default the value is compressed when that makes it shorter).
    #[arg(long)]
    pub no_compress: bool,

    /// How to deflate when compressing: django (zlib level 6, Django's exact bytes) or fast
    /// (level 1: quicker, somewhat larger, still read by Django) [default: the SESSION_DEFLATE
    /// environment variable, else django].
    #[arg(long, value_enum, value_name = "HOW", conflicts_with = "no_compress")]
    pub deflate: Option<DeflateArg>,

    /// Sign as if at this time (seconds since 1970-01-01 UTC) instead of now, for reproducible
    /// output.
    #[arg(long, value_name = "UNIX_SECONDS", allow_negative_numbers = true)]
    pub timestamp: Option<i64>,

    /// The secret keys.
    #[command(flatten, next_help_heading = "Keys")]
    pub keys: KeyArgs,

    /// The salt and serializer.
    #[command(flatten, next_help_heading = "Salt and serializer")]
    pub codec: CodecArgs,
}

/// Options of `sessions clearsessions`.
#[derive(Debug, Clone, Args)]
pub struct ClearArgs {
    /// The store.
    #[command(flatten, next_help_heading = "Store")]
    pub store: StoreArgs,

    /// The secret keys (needed by the file engine only).
    #[command(flatten, next_help_heading = "Keys")]
    pub keys: KeyArgs,

    /// How many expired rows each DELETE removes (db and cached-db engines): small batches hold
    /// locks briefly, so the site keeps serving while millions of rows go.
    #[arg(long, value_name = "ROWS", default_value_t = session_db::DEFAULT_CLEAR_BATCH_SIZE,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,

    /// How long to wait after each full batch, in milliseconds (db and cached-db engines;
    /// default 0). On a busy site, a few times as long as one batch takes (300 for batches of
    /// 10,000) eases the load the clear puts on the site's own queries (see
    /// `DbStore::with_clear_pause`).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub pause_ms: u64,
}

/// Options of `sessions show`.
#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// The session key (the value of the session cookie).
    #[arg(value_name = "SESSION_KEY", allow_hyphen_values = true)]
    pub session_key: String,

    /// The store.
    #[command(flatten, next_help_heading = "Store")]
    pub store: StoreArgs,

    /// The secret keys.
    #[command(flatten, next_help_heading = "Keys")]
    pub keys: KeyArgs,
}

/// Options of `sessions whoami`.
#[derive(Debug, Clone, Args)]
pub struct WhoamiArgs {
    /// The session key (the session cookie's value; for --engine cookie, the signed cookie).
    #[arg(value_name = "KEY", allow_hyphen_values = true)]
    pub session_key: String,

    /// The store.
    #[command(flatten, next_help_heading = "Store")]
    pub store: StoreArgs,

    /// The secret keys.
    #[command(flatten, next_help_heading = "Keys")]
    pub keys: KeyArgs,

    /// The users.
    #[command(flatten, next_help_heading = "Users")]
    pub users: UserArgs,
}

/// Options of `sessions revoke` and `sessions list`.
#[derive(Debug, Clone, Args)]
pub struct UserSessionArgs {
    /// The user's primary key, as Django stores it in _auth_user_id.
    #[arg(long, value_name = "ID")]
    pub user: String,

    /// The primary key's type.
    #[arg(long, value_enum, value_name = "KIND", default_value_t = UserKeyKind::Integer)]
    pub user_key_kind: UserKeyKind,

    /// The index table session-auth keeps of its logins (djsession_user_session), if any.
    #[arg(long, value_name = "NAME")]
    pub index_table: Option<String>,

    /// Only the index: skip the scan of every live session (faster, but misses Django's logins).
    /// On db and cached-db it needs --index-table; on cache the index is the per-user Redis set.
    #[arg(long)]
    pub index_only: bool,

    /// The store.
    #[command(flatten, next_help_heading = "Store")]
    pub store: StoreArgs,

    /// The secret keys.
    #[command(flatten, next_help_heading = "Keys")]
    pub keys: KeyArgs,
}

/// Where the Django site's users are, and which authentication backends it uses.
#[derive(Clone, Args)]
pub struct UserArgs {
    /// The database holding the user table: postgres://..., mysql://... or sqlite://path.
    #[arg(
        long,
        value_name = "URL",
        env = "USER_DATABASE_URL",
        hide_env_values = true
    )]
    pub user_database_url: Option<String>,

    /// The user table (auth_user, or the db_table of AUTH_USER_MODEL).
    #[arg(long, value_name = "NAME", default_value = "auth_user")]
    pub user_table: String,

    /// The user table's primary key column.
    #[arg(long, value_name = "NAME", default_value = "id")]
    pub user_key_column: String,

    /// The primary key's type.
    #[arg(long, value_enum, value_name = "KIND", default_value_t = UserKeyKind::Integer)]
    pub user_key_kind: UserKeyKind,

    /// The password hash column.
    #[arg(long, value_name = "NAME", default_value = "password")]
    pub user_password_column: String,

    /// The is_active column.
    #[arg(long, value_name = "NAME", default_value = "is_active")]
    pub user_is_active_column: String,

    /// The user model has no is_active field (every user is active, as in Django).
    #[arg(long, conflicts_with = "user_is_active_column")]
    pub no_is_active: bool,

    /// An entry of the site's AUTHENTICATION_BACKENDS whose users are in the table (repeat for
    /// several). django.contrib.auth.backends.AllowAllUsersModelBackend serves inactive users.
    #[arg(
        long = "auth-backend",
        value_name = "PATH",
        default_value = session_auth::MODEL_BACKEND
    )]
    pub auth_backends: Vec<String>,
}

impl fmt::Debug for UserArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserArgs")
            .field(
                "user_database_url",
                &self.user_database_url.as_ref().map(|_| Redacted),
            )
            .field("user_table", &self.user_table)
            .field("user_key_column", &self.user_key_column)
            .field("user_key_kind", &self.user_key_kind)
            .field("user_password_column", &self.user_password_column)
            .field("user_is_active_column", &self.user_is_active_column)
            .field("no_is_active", &self.no_is_active)
            .field("auth_backends", &self.auth_backends)
            .finish()
    }
}

/// The type of the user table's primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UserKeyKind {
    /// AutoField / BigAutoField (Django's default).
    Integer,
    /// A text key (CharField).
    Text,
}

/// Where sessions are stored, as a Django site's settings describe it.
///
/// URLs are never printed (they can hold passwords); pass them through the environment
/// (`DATABASE_URL`, `REDIS_URL`) rather than the command line, where other users of the machine
/// can see them. `Debug` shows only whether each URL was given.
#[derive(Clone, Args)]
pub struct StoreArgs {
    /// The session engine (Django's SESSION_ENGINE): db, file, cache, cached-db or cookie
    /// (signed_cookies: the session is the cookie's value).
    #[arg(long, value_enum, value_name = "ENGINE", default_value_t = Engine::Db)]
    pub engine: Engine,

    /// The database of the db and cached-db engines: postgres://user:password@host:5432/db,
    /// mysql://user:password@host:3306/db (MySQL, MariaDB) or sqlite://path/to/db.sqlite3.
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// The session table (Django's Session model's db_table).
    #[arg(long, value_name = "NAME", default_value = session_db::DEFAULT_TABLE)]
    pub table: String,

    /// The Redis server of the cache engine: redis://host:6379/0 (redis://:PASSWORD@host:6379
    /// with a password), or several comma-separated URLs for a Redis Cluster.
    #[arg(long, value_name = "URL", env = "REDIS_URL", hide_env_values = true)]
    pub cache_url: Option<String>,

    /// The KEY_PREFIX of the Django site's CACHES entry.
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub cache_key_prefix: String,

    /// The VERSION of the Django site's CACHES entry.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        allow_negative_numbers = true
    )]
    pub cache_version: i64,

    /// The directory of the file engine (Django's SESSION_FILE_PATH).
    #[arg(long, value_name = "DIR")]
    pub file_path: Option<PathBuf>,

    /// SESSION_COOKIE_NAME: the file engine names its files after it [default: the
    /// SESSION_COOKIE_NAME environment variable, else sessionid].
    #[arg(long, value_name = "NAME")]
    pub cookie_name: Option<String>,

    /// SESSION_COOKIE_AGE in seconds: how long a session file without its own expiry lives after
    /// its last write (file engine) [default: the SESSION_COOKIE_AGE environment variable, else
    /// 1209600].
    #[arg(long, value_name = "SECONDS")]
    pub cookie_age: Option<i64>,

    /// The SESSION_SERIALIZER of the Django site [default: the SESSION_SERIALIZER environment
    /// variable, else json]. For the cache engine it is the format of the cached values, which
    /// defaults to pickle: a Django site's cache holds pickles whatever SESSION_SERIALIZER says
    /// (its cache framework pickles every value).
    #[arg(long, value_enum, value_name = "NAME")]
    pub serializer: Option<SerializerArg>,
}

/// Stands for a secret (a key, or a URL that may hold a password) in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for KeyArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let KeyArgs {
            secret_key,
            fallback_keys,
        } = self;
        f.debug_struct("KeyArgs")
            .field("secret_key", &secret_key.as_ref().map(|_| Redacted))
            .field(
                "fallback_keys",
                &fallback_keys.iter().map(|_| Redacted).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl fmt::Debug for StoreArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field must be given a place here.
        let StoreArgs {
            engine,
            database_url,
            table,
            cache_url,
            cache_key_prefix,
            cache_version,
            file_path,
            cookie_name,
            cookie_age,
            serializer,
        } = self;
        f.debug_struct("StoreArgs")
            .field("engine", engine)
            .field("database_url", &database_url.as_ref().map(|_| Redacted))
            .field("table", table)
            .field("cache_url", &cache_url.as_ref().map(|_| Redacted))
            .field("cache_key_prefix", cache_key_prefix)
            .field("cache_version", cache_version)
            .field("file_path", file_path)
            .field("cookie_name", cookie_name)
            .field("cookie_age", cookie_age)
            .field("serializer", serializer)
            .finish()
    }
}

/// Django's session engines that keep sessions on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// `django.contrib.sessions.backends.db`: the django_session table.
    Db,
    /// `django.contrib.sessions.backends.file`: one file per session.
    File,
    /// `django.contrib.sessions.backends.cache`: Redis.
    Cache,
    /// `django.contrib.sessions.backends.cached_db`: the table, with a cache in front.
    CachedDb,
    /// `django.contrib.sessions.backends.signed_cookies`: the signed session is the cookie.
    Cookie,
}

impl Engine {
    /// The name as `--engine` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Db => "db",
            Engine::File => "file",
            Engine::Cache => "cache",
            Engine::CachedDb => "cached-db",
            Engine::Cookie => "cookie",
        }
    }
}

/// Django's session backends, by the salt their stored values are signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// `django.contrib.sessions.backends.db`.
    Db,
    /// `django.contrib.sessions.backends.cache`.
    Cache,
    /// `django.contrib.sessions.backends.cached_db`.
    CachedDb,
    /// `django.contrib.sessions.backends.file`.
    File,
    /// `django.contrib.sessions.backends.signed_cookies`.
    Cookie,
}

impl Backend {
    /// The salt this backend signs values with.
    pub fn salt(self) -> &'static str {
        match self {
            Backend::Db | Backend::Cache | Backend::CachedDb | Backend::File => SESSION_KEY_SALT,
            Backend::Cookie => SIGNED_COOKIES_SALT,
        }
    }
}

/// How `sessions encode` deflates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeflateArg {
    /// zlib level 6, as Django: byte-identical output.
    Django,
    /// zlib level 1: faster, somewhat larger; Django reads it.
    Fast,
}

impl From<DeflateArg> for Deflate {
    fn from(arg: DeflateArg) -> Self {
        match arg {
            DeflateArg::Django => Deflate::Django,
            DeflateArg::Fast => Deflate::Fast,
        }
    }
}

/// The serializers a Django site can be configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SerializerArg {
    /// Django's default JSONSerializer (byte-identical output).
    Json,
    /// MessagePack.
    Msgpack,
    /// Python pickle, plain data only (Django 4.2's PickleSerializer reads it; nothing is ever
    /// executed when reading).
    Pickle,
}

impl From<SerializerArg> for SerializerName {
    fn from(arg: SerializerArg) -> Self {
        match arg {
            SerializerArg::Json => SerializerName::Json,
            SerializerArg::Msgpack => SerializerName::MsgPack,
            SerializerArg::Pickle => SerializerName::Pickle,
        }
    }
}

impl CodecArgs {
    /// The salt values are signed with: `--salt`, else the backend's.
    pub fn salt(&self) -> &str {
        self.salt.as_deref().unwrap_or(self.backend.salt())
    }

    /// The codec these options describe, reading the pre-3.1 session format and SHA-1
    /// signatures as Django 3.1/3.2 did.
    ///
    /// # Errors
    /// [`Error::MissingSecret`] without a secret key, [`Error::Config`] for an unusable one.
    pub fn codec(&self, keys: &KeyArgs) -> Result<SessionCodec, Error> {
        self.codec_deflating(keys, None)
    }

    /// [`codec`](Self::codec), deflating as `deflate` says when it is given (else as
    /// `SESSION_DEFLATE` does).
    ///
    /// # Errors
    /// As [`codec`](Self::codec).
    pub fn codec_deflating(
        &self,
        keys: &KeyArgs,
        deflate: Option<Deflate>,
    ) -> Result<SessionCodec, Error> {
        let mut config = keys.config(self.serializer)?;
        if let Some(deflate) = deflate {
            config.deflate = deflate;
        }
        let codec = match (&self.salt, self.backend) {
            (None, Backend::Db | Backend::Cache | Backend::CachedDb | Backend::File) => {
                SessionCodec::new(&config)
            }
            _ => SessionCodec::with_token_salt(&config, self.salt()),
        };
        codec.map_err(Error::Config)
    }
}

/// `--max-age`: a non-negative number of seconds, fractions allowed.
fn parse_max_age(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("{text:?} is not a non-negative, finite number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_map_to_djangos_salts() {
        assert_eq!(Backend::Db.salt(), "django.contrib.sessions.SessionStore");
        assert_eq!(Backend::Cache.salt(), Backend::Db.salt());
        assert_eq!(Backend::CachedDb.salt(), Backend::Db.salt());
        assert_eq!(Backend::File.salt(), Backend::Db.salt());
        assert_eq!(
            Backend::Cookie.salt(),
            "django.contrib.sessions.backends.signed_cookies"
        );
    }

    #[test]
    fn max_age_takes_whole_and_fractional_seconds() {
        assert_eq!(parse_max_age("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_max_age("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_max_age("0"), Ok(Duration::ZERO));
        for bad in ["-1", "NaN", "inf", "ten", ""] {
            assert!(parse_max_age(bad).is_err(), "{bad:?}");
        }
    }
}
