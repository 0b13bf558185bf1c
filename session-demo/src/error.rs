//! Why the demo could not start.

/// What stops the demo from starting. Messages say what to do; none contains a secret or a URL
/// (URLs can hold passwords).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// No secret key and no `--insecure-dev-secret`.
    #[error(
        "no secret key: set SECRET_KEY to a long random string (for example \
         `export SECRET_KEY=\"$(head -c 32 /dev/urandom | base64)\"`), or pass \
         --insecure-dev-secret to sign sessions with a publicly known development key"
    )]
    NoSecret,

    /// `SECRET_KEY` is set but empty.
    #[error("SECRET_KEY is empty: set it to a long random string")]
    EmptySecret,

    /// A `SESSION_*` variable holds a value its setting cannot take.
    #[error("{0}")]
    Config(#[from] session_core::ConfigError),

    /// The chosen store needs a URL that was not given.
    #[error("--store {store} needs {what}")]
    MissingUrl {
        /// The store.
        store: &'static str,
        /// Which option or variable, and what it looks like.
        what: &'static str,
    },

    /// The URL given is for another kind of database than the chosen store.
    #[error("--store {store} needs a {expected} URL, but DATABASE_URL / --database-url is not one")]
    WrongUrl {
        /// The store.
        store: &'static str,
        /// The URL scheme expected.
        expected: &'static str,
    },

    /// The store could not be opened (server unreachable, directory not writable, ...).
    #[error("could not open the {store} store: {source}")]
    Store {
        /// The store.
        store: &'static str,
        /// Why.
        #[source]
        source: session_core::Error,
    },

    /// The session settings are unusable.
    #[error("{0}")]
    Middleware(#[from] session_middleware::Error),

    /// The Prometheus recorder could not be installed (another metrics recorder is already
    /// installed in this process).
    #[error("could not serve metrics: {0}")]
    Metrics(String),

    /// The listening address could not be bound, or serving failed.
    #[error("could not serve on {addr}: {source}")]
    Serve {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
