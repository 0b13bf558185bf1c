//! The file store's errors.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What can go wrong in the file store.
///
/// Store operations report these inside [`session_core::Error::Store`] (use
/// `error.source()` / `downcast_ref::<FileError>()` to inspect them); the builder returns them
/// directly. Save conflicts are not errors of this crate: they are
/// [`session_core::Error::CreateConflict`] and [`session_core::Error::SessionDeleted`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The storage directory is unusable (Django's `ImproperlyConfigured` from the file backend).
    #[error(
        "the session storage path {path:?} {problem}: set the file store's directory (Django's \
         SESSION_FILE_PATH) to an existing directory this process can write to"
    )]
    StorageDirectory {
        /// The directory that was configured.
        path: PathBuf,
        /// What is wrong with it ("doesn't exist", "is not a directory", "is not writable", ...).
        problem: String,
        /// The underlying error, when there was one.
        #[source]
        source: Option<io::Error>,
    },

    /// A key that cannot name a session file was used to create a session (Django's
    /// `InvalidSessionKey`). Loading, checking or deleting such a key simply finds nothing.
    #[error(
        "invalid characters in session key: the file store only accepts keys of 8 to {max_len} \
         characters from [a-z0-9], as generated keys are"
    )]
    InvalidKey {
        /// The longest key accepted with the configured cookie name.
        max_len: usize,
    },

    /// A filesystem operation failed (disk full, permission denied, I/O error, ...).
    #[error("could not {action} {path:?}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory involved (shown with any session key shortened).
        path: ReportedPath,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The encoded session is larger than the store reads back, so it was not written.
    #[error(
        "the encoded session is {size} bytes, over the file store's limit of {limit} bytes: store \
         less in the session, or raise max_decompressed_size in the session configuration"
    )]
    TooLarge {
        /// The encoded size, in bytes.
        size: usize,
        /// The largest session file the store reads, in bytes.
        limit: usize,
    },

    /// The store was opened read-only ([`FileStoreBuilder::read_only`]), so it refused to
    /// write; nothing was changed.
    ///
    /// [`FileStoreBuilder::read_only`]: crate::FileStoreBuilder::read_only
    #[error("cannot {action}: the file store was opened read-only")]
    ReadOnly {
        /// What was refused.
        action: &'static str,
    },

    /// A blocking filesystem task did not complete (it panicked, or the runtime is shutting down).
    #[error("a blocking filesystem task did not complete: {0}")]
    Interrupted(String),

    /// The session configuration is invalid (for example an empty secret key).
    #[error(transparent)]
    Config(#[from] session_core::Error),
}

impl FileError {
    pub(crate) fn io(action: &'static str, path: ReportedPath, source: io::Error) -> Self {
        FileError::Io {
            action,
            path,
            source,
        }
    }
}

/// A path as the file store reports it in errors and logs.
///
/// The name of a session file is its session key, a bearer credential, so `Display` and
/// `Debug` shorten the key to its first four characters, as `SessionKey`'s `Debug` does
/// (`"/var/sessions/sessionid9kb4…"`; a write's temporary file shows as
/// `"/var/sessions/sessionid9kb4…_out_x7q2…"`). The storage directory, and files not named
/// after the cookie name, are shown in full.
#[derive(Clone, PartialEq, Eq)]
pub struct ReportedPath {
    path: PathBuf,
    /// The file name as shown, when it is not shown as is.
    shown_name: Option<String>,
}

impl ReportedPath {
    /// A path shown in full (the storage directory).
    pub(crate) fn full(path: impl Into<PathBuf>) -> Self {
        ReportedPath {
            path: path.into(),
            shown_name: None,
        }
    }

    /// A file in the storage directory of a store whose cookie name is `prefix`.
    pub(crate) fn file(path: impl Into<PathBuf>, prefix: &str) -> Self {
        let path = path.into();
        let shown_name = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| crate::names::shown_file_name(prefix, name));
        ReportedPath { path, shown_name }
    }

    /// The whole path, session key included. The key is a credential: never log this, log the
    /// `ReportedPath` itself.
    pub fn as_path(&self) -> &Path {
        &self.path
    }

    fn shown(&self) -> PathBuf {
        match &self.shown_name {
            Some(name) => self.path.with_file_name(name),
            None => self.path.clone(),
        }
    }
}

impl fmt::Display for ReportedPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.shown().display(), f)
    }
}

impl fmt::Debug for ReportedPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Quoted like a `PathBuf`, so messages read as they did with one.
        fmt::Debug::fmt(&self.shown(), f)
    }
}

impl From<FileError> for session_core::Error {
    fn from(error: FileError) -> Self {
        match error {
            FileError::Config(inner) => inner,
            other => session_core::Error::store(other),
        }
    }
}
