//! Django password hashes: checking, making, and saying when one needs upgrading.
//!
//! The hashing itself is [`djangohashers`]'s; this module adds what Django's
//! `django.contrib.auth.hashers` does around it, for Django 5.2:
//!
//! - only the hashers in [`PasswordConfig::hashers`] (Django's `PASSWORD_HASHERS`) are accepted;
//!   the default is Django 5.2's default list (PBKDF2-SHA256, PBKDF2-SHA1, Argon2, BCrypt-SHA256,
//!   Scrypt); `md5` and plain `bcrypt` are accepted when added, as in Django;
//! - a hash needs upgrading ([`PasswordCheck::must_update`]) when its hasher is not the preferred
//!   one (the first, PBKDF2-SHA256), or its iteration count differs from Django 5.2's 1,000,000,
//!   or its salt has less than 128 bits of entropy (Django 5.2's `must_update`);
//! - timing: an unusable (`!...`) or unknown hash still costs one full hash (Django's
//!   `make_password` of a random string), and a wrong password against a hash with fewer
//!   iterations runs the missing ones (Django's `harden_runtime`), so response times do not tell
//!   which users exist or how old their hashes are. Comparisons are constant-time (djangohashers).
//!
//! Every hash runs on [`tokio::task::spawn_blocking`]: at 1,000,000 PBKDF2 iterations a check costs
//! hundreds of milliseconds of CPU, which would stall every other task on an async worker.

use djangohashers::{Hasher as _, PBKDF2Hasher};

use crate::AuthError;

/// Django 5.2's PBKDF2 iteration count (`PBKDF2PasswordHasher.iterations`).
pub const DJANGO_PBKDF2_ITERATIONS: u32 = 1_000_000;

/// The salt length Django 5.2 generates: `ceil(128 / log2(62))` characters of `[A-Za-z0-9]`.
pub const SALT_CHARS: usize = 22;

/// Django's `UNUSABLE_PASSWORD_PREFIX`: a hash starting with it never matches.
pub const UNUSABLE_PASSWORD_PREFIX: &str = "!";

/// A password hasher Django ships, named by the algorithm prefix of its hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordHasher {
    /// `pbkdf2_sha256` (`PBKDF2PasswordHasher`), Django's default.
    Pbkdf2Sha256,
    /// `pbkdf2_sha1` (`PBKDF2SHA1PasswordHasher`).
    Pbkdf2Sha1,
    /// `argon2` (`Argon2PasswordHasher`).
    Argon2,
    /// `bcrypt_sha256` (`BCryptSHA256PasswordHasher`).
    BCryptSha256,
    /// `bcrypt` (`BCryptPasswordHasher`).
    BCrypt,
    /// `scrypt` (`ScryptPasswordHasher`).
    Scrypt,
    /// `md5` (`MD5PasswordHasher`, salted; for tests and old sites).
    Md5,
}

impl PasswordHasher {
    /// The algorithm prefix of this hasher's hashes.
    pub fn algorithm(self) -> &'static str {
        match self {
            PasswordHasher::Pbkdf2Sha256 => "pbkdf2_sha256",
            PasswordHasher::Pbkdf2Sha1 => "pbkdf2_sha1",
            PasswordHasher::Argon2 => "argon2",
            PasswordHasher::BCryptSha256 => "bcrypt_sha256",
            PasswordHasher::BCrypt => "bcrypt",
            PasswordHasher::Scrypt => "scrypt",
            PasswordHasher::Md5 => "md5",
        }
    }

    /// Django 5.2's default `PASSWORD_HASHERS`, in order.
    pub const DJANGO_DEFAULTS: [PasswordHasher; 5] = [
        PasswordHasher::Pbkdf2Sha256,
        PasswordHasher::Pbkdf2Sha1,
        PasswordHasher::Argon2,
        PasswordHasher::BCryptSha256,
        PasswordHasher::Scrypt,
    ];
}

/// Django's `PASSWORD_HASHERS`, for the hashers this crate can make (the preferred one must be
/// PBKDF2-SHA256; the others are accepted for checking and upgraded on login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordConfig {
    /// Accepted hashers; the first is the preferred one and must be
    /// [`PasswordHasher::Pbkdf2Sha256`].
    pub hashers: Vec<PasswordHasher>,
    /// The preferred hasher's iteration count (default [`DJANGO_PBKDF2_ITERATIONS`]); set it to
    /// the Django site's value if it subclasses the hasher to change it.
    pub iterations: u32,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        PasswordConfig {
            hashers: PasswordHasher::DJANGO_DEFAULTS.to_vec(),
            iterations: DJANGO_PBKDF2_ITERATIONS,
        }
    }
}

impl PasswordConfig {
    /// Checks the settings can work.
    ///
    /// # Errors
    /// [`AuthError::Config`] when the preferred hasher is not PBKDF2-SHA256 or the iteration count
    /// is zero.
    pub fn validate(&self) -> Result<(), AuthError> {
        if self.hashers.first() != Some(&PasswordHasher::Pbkdf2Sha256) {
            return Err(AuthError::Config(
                "the first (preferred) password hasher must be Pbkdf2Sha256: it is the one this \
                 crate hashes new passwords with"
                    .to_owned(),
            ));
        }
        if self.iterations == 0 {
            return Err(AuthError::Config(
                "password iterations must be positive".to_owned(),
            ));
        }
        Ok(())
    }
}

/// The result of [`check_password`]: Django's `verify_password` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCheck {
    /// The password matches the hash.
    pub correct: bool,
    /// The hash should be regenerated with the preferred hasher and settings (Django calls the
    /// `setter` when the password is also correct).
    pub must_update: bool,
}

/// Django's `identify_hasher`: the algorithm a stored hash names.
fn identify(encoded: &str) -> &str {
    if (encoded.len() == 32 && !encoded.contains('$'))
        || (encoded.len() == 37 && encoded.starts_with("md5$$"))
    {
        return "unsalted_md5";
    }
    if encoded.len() == 46 && encoded.starts_with("sha1$$") {
        return "unsalted_sha1";
    }
    encoded.split('$').next().unwrap_or("")
}

/// Django's `verify_password(password, encoded)`, run off the async runtime.
///
/// # Errors
/// [`AuthError::Config`] for unusable settings; [`AuthError::Hasher`] when the hasher fails on a
/// malformed stored hash (djangohashers panics on some; the panic is contained in the blocking
/// task).
pub async fn check_password(
    password: &str,
    encoded: &str,
    config: &PasswordConfig,
) -> Result<PasswordCheck, AuthError> {
    config.validate()?;
    let (password, encoded, config) = (password.to_owned(), encoded.to_owned(), config.clone());
    blocking(move || verify_blocking(&password, &encoded, &config)).await?
}

/// Django's `make_password(password)`: a PBKDF2-SHA256 hash with a fresh 22-character salt and the
/// configured iterations (`pbkdf2_sha256$1000000$<salt>$<hash>`), made off the async runtime.
///
/// # Errors
/// [`AuthError::Config`] for unusable settings, [`AuthError::Hasher`] if the blocking task fails,
/// [`AuthError::Password`] when the OS random generator fails.
pub async fn make_password(password: &str, config: &PasswordConfig) -> Result<String, AuthError> {
    config.validate()?;
    let (password, iterations) = (password.to_owned(), config.iterations);
    blocking(move || encode_pbkdf2(&password, iterations)).await?
}

/// Django's `make_password(None)`: a hash no password matches (`!` and 40 random characters).
///
/// # Errors
/// [`AuthError::Password`] when the OS random generator fails.
pub fn make_unusable_password() -> Result<String, AuthError> {
    Ok(format!("{UNUSABLE_PASSWORD_PREFIX}{}", random_string(40)?))
}

/// Django's `is_password_usable(encoded)`.
pub fn is_password_usable(encoded: &str) -> bool {
    !encoded.starts_with(UNUSABLE_PASSWORD_PREFIX)
}

/// Whether `encoded` should be regenerated (Django's `hasher_changed or preferred.must_update`),
/// without checking any password. Unknown or unusable hashes report `false`: they cannot be
/// upgraded without the password, and Django does not try.
pub fn must_update(encoded: &str, config: &PasswordConfig) -> bool {
    if !is_password_usable(encoded) {
        return false;
    }
    let algorithm = identify(encoded);
    if !config.hashers.iter().any(|h| h.algorithm() == algorithm) {
        return false;
    }
    if algorithm != PasswordHasher::Pbkdf2Sha256.algorithm() {
        return true;
    }
    match pbkdf2_parts(encoded) {
        Some((iterations, salt)) => iterations != config.iterations || salt_too_weak(salt),
        None => true,
    }
}

fn verify_blocking(
    password: &str,
    encoded: &str,
    config: &PasswordConfig,
) -> Result<PasswordCheck, AuthError> {
    let algorithm = identify(encoded);
    let known = config.hashers.iter().any(|h| h.algorithm() == algorithm);
    if !is_password_usable(encoded) || !known {
        // Django: "Run the default password hasher once to reduce the timing difference between
        // an existing user with an unusable password and a nonexistent user or missing hasher".
        let _ = encode_pbkdf2(&random_string(40)?, config.iterations)?;
        return Ok(PasswordCheck {
            correct: false,
            must_update: false,
        });
    }
    let hasher_changed = algorithm != PasswordHasher::Pbkdf2Sha256.algorithm();
    let must_update = must_update(encoded, config);
    let verified = if algorithm == PasswordHasher::Argon2.algorithm() {
        verify_argon2(password, encoded)
    } else {
        djangohashers::check_password(password, encoded).map_err(|error| format!("{error:?}"))
    };
    let correct = match verified {
        Ok(correct) => correct,
        Err(error) => {
            tracing::warn!(
                algorithm,
                ?error,
                "a stored password hash is malformed; the password is refused"
            );
            false
        }
    };
    if !correct
        && !hasher_changed
        && must_update
        && let Some((iterations, salt)) = pbkdf2_parts(encoded)
        && iterations < config.iterations
    {
        // Django's harden_runtime: run the iterations the old hash is missing.
        let _ = PBKDF2Hasher.encode(password, salt, config.iterations - iterations);
    }
    Ok(PasswordCheck {
        correct,
        must_update,
    })
}

/// The most an Argon2 hash may ask for: stored hashes are data, and a corrupted or hostile one
/// must not make a login allocate gigabytes or spin for minutes. Django's own are m=102400
/// (100 MiB), t=2, p=8.
const ARGON2_MAX_MEMORY_KIB: u32 = 1024 * 1024;
const ARGON2_MAX_TIME: u32 = 64;
const ARGON2_MAX_LANES: u32 = 64;

/// Django's `Argon2PasswordHasher.verify`: argon2-cffi's `PasswordHasher().verify("$" + rest)`,
/// i.e. the PHC string after the `argon2` prefix, any variant, standard base64 without padding.
fn verify_argon2(password: &str, encoded: &str) -> Result<bool, String> {
    let phc = encoded
        .strip_prefix("argon2")
        .ok_or_else(|| "not an argon2 hash".to_owned())?;
    let params = phc
        .split('$')
        .find(|part| part.starts_with("m="))
        .ok_or_else(|| "no m=,t=,p= parameters".to_owned())?;
    for param in params.split(',') {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        let value: u32 = value
            .parse()
            .map_err(|_| format!("parameter {name} is not a number"))?;
        let limit = match name {
            "m" => ARGON2_MAX_MEMORY_KIB,
            "t" => ARGON2_MAX_TIME,
            "p" => ARGON2_MAX_LANES,
            _ => u32::MAX,
        };
        if value > limit {
            return Err(format!(
                "parameter {name}={value} is above the limit {limit}"
            ));
        }
    }
    argon2::verify_encoded(phc, password.as_bytes()).map_err(|error| error.to_string())
}

fn pbkdf2_parts(encoded: &str) -> Option<(u32, &str)> {
    let mut parts = encoded.splitn(4, '$');
    let _algorithm = parts.next()?;
    let iterations = parts.next()?.parse().ok()?;
    let salt = parts.next()?;
    parts.next()?;
    Some((iterations, salt))
}

/// Django's `must_update_salt(salt, 128)`: fewer than 128 bits at log2(62) bits per character.
fn salt_too_weak(salt: &str) -> bool {
    (salt.chars().count() as f64) * 62f64.log2() < 128.0
}

fn encode_pbkdf2(password: &str, iterations: u32) -> Result<String, AuthError> {
    Ok(PBKDF2Hasher.encode(password, &random_string(SALT_CHARS)?, iterations))
}

/// Django's `get_random_string(length)`: uniform over `[A-Za-z0-9]`, from the OS CSPRNG.
pub(crate) fn random_string(length: usize) -> Result<String, AuthError> {
    const ALPHABET: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    // 248 = 4 * 62: bytes at or above it are dropped so every character is equally likely.
    const LIMIT: u8 = 248;
    let mut out = String::with_capacity(length);
    let mut buf = [0u8; 64];
    while out.len() < length {
        getrandom::fill(&mut buf)
            .map_err(|e| AuthError::Password(format!("the OS random generator failed: {e}")))?;
        for &byte in &buf {
            if byte < LIMIT && out.len() < length {
                out.push(char::from(ALPHABET[usize::from(byte % 62)]));
            }
        }
    }
    Ok(out)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AuthError> {
    tokio::task::spawn_blocking(work).await.map_err(|error| {
        AuthError::Hasher(if error.is_panic() {
            "the password hasher panicked (probably on a malformed stored hash)".to_owned()
        } else {
            "the password hashing task was cancelled".to_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordConfig {
        PasswordConfig {
            iterations: 1_000,
            hashers: vec![
                PasswordHasher::Pbkdf2Sha256,
                PasswordHasher::Pbkdf2Sha1,
                PasswordHasher::Md5,
            ],
        }
    }

    #[tokio::test]
    async fn a_made_password_checks_and_needs_no_update() {
        let encoded = make_password("s3cret", &fast()).await.unwrap();
        let parts: Vec<&str> = encoded.split('$').collect();
        assert_eq!(parts[0], "pbkdf2_sha256");
        assert_eq!(parts[1], "1000");
        assert_eq!(parts[2].len(), SALT_CHARS);
        let check = check_password("s3cret", &encoded, &fast()).await.unwrap();
        assert_eq!(
            check,
            PasswordCheck {
                correct: true,
                must_update: false
            }
        );
        assert!(
            !check_password("wrong", &encoded, &fast())
                .await
                .unwrap()
                .correct
        );
    }

    #[test]
    fn must_update_follows_django_5_2() {
        let config = fast();
        let salt = "a".repeat(SALT_CHARS);
        assert!(!must_update(
            &format!("pbkdf2_sha256$1000${salt}$x"),
            &config
        ));
        // Another iteration count, either way.
        assert!(must_update(&format!("pbkdf2_sha256$999${salt}$x"), &config));
        assert!(must_update(
            &format!("pbkdf2_sha256$1001${salt}$x"),
            &config
        ));
        // djangohashers' own 12-character salts are too short for Django 5.2.
        assert!(must_update("pbkdf2_sha256$1000$abcdefghijkl$x", &config));
        // Not the preferred hasher.
        assert!(must_update("pbkdf2_sha1$1000$salt$x", &config));
        assert!(must_update("md5$salt$x", &config));
        // Unusable or unknown: nothing to upgrade.
        assert!(!must_update("!abc", &config));
        assert!(!must_update("crypt$$abc", &config));
    }

    #[tokio::test]
    async fn hashers_not_configured_are_refused_as_django_refuses_them() {
        // Django's own test vector for MD5PasswordHasher: make_password("lètmein", "seasalt", "md5").
        let md5 = "md5$seasalt$3f86d0d3d465b7b458c231bf3555c0e3";
        assert!(
            check_password("lètmein", md5, &fast())
                .await
                .unwrap()
                .correct
        );
        let defaults = PasswordConfig::default();
        let check = check_password("lètmein", md5, &defaults).await.unwrap();
        assert!(!check.correct && !check.must_update);
    }

    #[tokio::test]
    async fn unusable_and_garbage_hashes_never_match() {
        let unusable = make_unusable_password().unwrap();
        assert_eq!(unusable.len(), 41);
        assert!(!is_password_usable(&unusable));
        for encoded in [unusable.as_str(), "", "pbkdf2_sha256$notanumber$salt$hash"] {
            let check = check_password("", encoded, &fast()).await.unwrap();
            assert!(!check.correct, "{encoded:?}");
        }
    }

    #[tokio::test]
    async fn an_argon2_hash_asking_for_gigabytes_is_refused_without_running() {
        let config = PasswordConfig::default();
        let hostile = "argon2$argon2id$v=19$m=4194304,t=2,p=8$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
        let check = check_password("x", hostile, &config).await.unwrap();
        assert!(!check.correct);
    }

    #[test]
    fn the_preferred_hasher_must_be_pbkdf2_sha256() {
        let config = PasswordConfig {
            hashers: vec![PasswordHasher::Argon2],
            ..PasswordConfig::default()
        };
        assert!(matches!(config.validate(), Err(AuthError::Config(_))));
    }
}
