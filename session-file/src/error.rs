//! The file store's errors.

use std::io;
use std::path::PathBuf;

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
        /// The file or directory involved.
        path: PathBuf,
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

    /// A blocking filesystem task did not complete (it panicked, or the runtime is shutting down).
    #[error("a blocking filesystem task did not complete: {0}")]
    Interrupted(String),

    /// The session configuration is invalid (for example an empty secret key).
    #[error(transparent)]
    Config(#[from] session_core::Error),
}

impl FileError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        FileError::Io {
            action,
            path: path.into(),
            source,
        }
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
