//! The store: Django's `file.SessionStore`.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use session_core::codec::{CORRUPTED_MESSAGE, SUSPICIOUS_SESSION_TARGET};
use session_core::{
    ClearExpired, Dict, Error, Expiry, SaveMode, SessionCodec, SessionConfig, SessionKey,
    SessionRecord, SessionStore, SharedRecord, StoreCapabilities, Version, VersionedRecord,
};
use time::OffsetDateTime;

use crate::FileError;
use crate::atomic::{Dir, WriteStrategy};
use crate::error::ReportedPath;
use crate::names::{self, Entry};

/// How old a temporary file must be before [`clear_expired`](SessionStore::clear_expired) removes
/// it. A write holds its temporary file for milliseconds; one this old was left by a process that
/// was killed or crashed mid-write (ours or Django's).
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Sessions stored one file per session, as Django's file engine
/// (`django.contrib.sessions.backends.file`) stores them, so a Rust service and a Django site can
/// share one directory.
///
/// - The file of session `key` is `<directory>/<cookie_name><key>` (e.g. `/tmp/sessionid9kb4…`),
///   holding exactly the signed string Django writes (ASCII, no newline), mode 0600.
/// - Keys with any character outside `[a-z0-9]` (`/`, `\`, `..`, NUL, ...) never name a file: they
///   load as absent, exist nowhere, delete nothing.
/// - Writes are atomic and crash-safe (see [`WriteStrategy`]); creating never overwrites and
///   updating never recreates a deleted or expired session.
/// - A session expires at its `_session_expiry` date when it has one, `_session_expiry` seconds
///   after the file was last written when that is a number, and otherwise `cookie_age` seconds
///   after it was last written. (Django never expires a session with a numeric expiry on the
///   server; see the crate docs.)
/// - Filesystem work runs on tokio's blocking pool, never on the async worker threads.
///
/// Build it with [`FileStore::new`] or [`FileStore::builder`]; cloning is cheap.
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Also holds the cookie name (`dir.prefix`), which starts every session file's name.
    dir: Dir,
    codec: SessionCodec,
    cookie_age: i64,
    max_file_size: usize,
}

/// Options of a [`FileStore`] beyond the session configuration.
#[derive(Debug, Clone)]
pub struct FileStoreBuilder {
    config: SessionConfig,
    directory: Option<PathBuf>,
    fsync: bool,
    strategy: Option<WriteStrategy>,
    read_only: bool,
}

impl FileStoreBuilder {
    /// The storage directory (Django's `SESSION_FILE_PATH`); default: the OS temporary directory,
    /// as in Django. It must exist and be writable. Keep it private to the service (mode 0700):
    /// whoever can write in it can plant or remove sessions.
    pub fn directory(mut self, path: impl Into<PathBuf>) -> Self {
        self.directory = Some(path.into());
        self
    }

    /// Whether writes are flushed to disk before they count (default true): file data before it
    /// becomes visible, and the directory after renames and removals, so a power loss cannot undo
    /// a logout or leave a session half-written. Turn it off only for a directory on tmpfs, where
    /// there is no disk to flush to.
    pub fn fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// Forces a write strategy instead of the strongest one the filesystem supports (building
    /// fails if the filesystem does not support the one asked for).
    pub fn write_strategy(mut self, strategy: WriteStrategy) -> Self {
        self.strategy = Some(strategy);
        self
    }

    /// Opens the store for reading only (default false), for tools that inspect sessions.
    ///
    /// [`build`](Self::build) then only checks that the directory exists: it creates nothing in
    /// it, not even the scratch files that pick the write strategy, so the directory need not
    /// be writable (and [`FileStore::write_strategy`] is meaningless). `save`, `delete` and
    /// `clear_expired` fail with [`FileError::ReadOnly`] before touching anything. `load` and
    /// `exists` work as usual; they never write in either mode (an expired or corrupt file is
    /// left in place).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Checks the configuration and the directory (it must exist and be writable; Django's
    /// `configuration_check`), and picks the write strategy by trying it on scratch files.
    /// A [`read_only`](Self::read_only) store only checks that the directory exists.
    ///
    /// # Errors
    /// [`FileError`] when the directory is missing, not a directory or not writable (naming the
    /// path and the setting), or `config` is invalid.
    pub async fn build(self) -> Result<FileStore, FileError> {
        let codec = SessionCodec::new(&self.config)?;
        let directory = self.directory.unwrap_or_else(std::env::temp_dir);
        let prefix = self.config.cookie_name.clone();
        let (fsync, strategy, read_only) = (self.fsync, self.strategy, self.read_only);
        let dir = blocking(move || {
            if read_only {
                Dir::open_read_only(&directory, &prefix)
            } else {
                Dir::open(&directory, &prefix, fsync, strategy)
            }
        })
        .await??;
        Ok(FileStore {
            inner: Arc::new(Inner {
                dir,
                cookie_age: self.config.cookie_age,
                // Nothing larger can decode.
                max_file_size: codec.max_encoded_len(),
                codec,
            }),
        })
    }
}

/// Runs blocking filesystem work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, FileError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FileError::Interrupted(e.to_string()))
}

impl FileStore {
    /// A store keeping its files in `directory`, with the given session settings (the secret,
    /// serializer and salt sign the files; `cookie_name` prefixes their names; `cookie_age` is the
    /// default lifetime).
    ///
    /// # Errors
    /// [`FileError`] when the directory does not exist, is not a directory or is not writable
    /// (naming the path and the setting), or when `config` is invalid.
    pub async fn new(
        directory: impl Into<PathBuf>,
        config: &SessionConfig,
    ) -> Result<FileStore, FileError> {
        Self::builder(config).directory(directory).build().await
    }

    /// A builder, for the other options (fsync, write strategy, read-only). Without
    /// [`directory`](FileStoreBuilder::directory) the store uses the system's temporary
    /// directory, as Django does when `SESSION_FILE_PATH` is `None`.
    pub fn builder(config: &SessionConfig) -> FileStoreBuilder {
        FileStoreBuilder {
            config: config.clone(),
            directory: None,
            fsync: true,
            strategy: None,
            read_only: false,
        }
    }

    /// The storage directory (absolute).
    pub fn directory(&self) -> &Path {
        &self.inner.dir.path
    }

    /// How this store makes writes atomic on its filesystem. A
    /// [`read_only`](FileStoreBuilder::read_only) store never writes and did not probe the
    /// filesystem; it reports [`WriteStrategy::Placeholder`], the strategy that needs nothing of
    /// it.
    pub fn write_strategy(&self) -> WriteStrategy {
        self.inner.dir.strategy
    }

    /// Whether the store was opened [`read_only`](FileStoreBuilder::read_only).
    pub fn is_read_only(&self) -> bool {
        self.inner.dir.read_only
    }

    /// Reads every live session file in the directory (off the async runtime) and returns those
    /// whose decoded data `keep` accepts: for questions no key answers, such as "every session
    /// of user 42". Its cost is a read and a signature check of every session file, linear in the
    /// directory; only the sessions kept are held in memory. Expired files, files of other
    /// prefixes and temporary files are skipped, and so is a file that cannot be read (with a
    /// warning), as `clear_expired` does.
    ///
    /// # Errors
    /// [`Error::Store`] when the directory cannot be listed.
    pub async fn find_sessions(
        &self,
        keep: impl Fn(&Dict) -> bool + Send + Sync + 'static,
    ) -> Result<Vec<FoundSession>, Error> {
        self.run(move |inner| inner.find_sessions(&keep)).await
    }

    /// The file holding session `key` (Django's `_key_to_file`), or [`FileError::InvalidKey`] when
    /// the key must never name a file (a character outside `[a-z0-9]`, or too long).
    ///
    /// # Errors
    /// [`FileError::InvalidKey`] for a key that must never name a file.
    pub fn file_path(&self, key: &SessionKey) -> Result<PathBuf, FileError> {
        self.inner.file_path(key)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let inner = Arc::clone(&self.inner);
        blocking(move || f(&inner)).await?
    }
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("directory", &self.inner.dir.path)
            .field("prefix", &self.inner.dir.prefix)
            .field("write_strategy", &self.inner.dir.strategy)
            .field("read_only", &self.inner.dir.read_only)
            .finish_non_exhaustive()
    }
}

/// A session file as read: its data, when it expires, and which file it was.
struct Current {
    data: Dict,
    expires_at: OffsetDateTime,
    modified: OffsetDateTime,
    id: Option<(u64, u64)>,
}

/// A live session found by [`FileStore::find_sessions`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FoundSession {
    /// Its key (a credential: show it redacted).
    pub key: SessionKey,
    /// Its decoded data.
    pub data: Dict,
    /// When it expires (its file's modification time plus its expiry, as Django computes it).
    pub expires_at: OffsetDateTime,
    /// When its file was last written.
    pub modified: OffsetDateTime,
}

/// The identity of a file (device, inode), to notice it was replaced between two looks.
fn file_id(meta: &fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// The version of a session file: its bytes, then its identity (device, inode) and modification
/// time to the nanosecond.
///
/// The bytes alone are not enough: the signed string's timestamp counts whole seconds, so two
/// writes of the same data within a second are byte for byte the same, and a save that lost
/// to such a write would not notice it. Every write, ours and Django's, puts a new file in place
/// (a temporary file renamed over the old one), with its own inode and modification time, so
/// the identity tells such writes apart.
fn file_version(mut bytes: Vec<u8>, meta: &fs::Metadata) -> Vec<u8> {
    bytes.push(0);
    if let Some((dev, ino)) = file_id(meta) {
        bytes.extend_from_slice(&dev.to_be_bytes());
        bytes.extend_from_slice(&ino.to_be_bytes());
    }
    let modified = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    bytes.extend_from_slice(&modified.to_be_bytes());
    bytes
}

/// When a session written at `modified` holding `data` expires.
///
/// An ISO `_session_expiry` is the moment itself; a number counts from the last write (Django
/// never expires those server-side, but the number means "this many seconds after the last
/// save"); absent or `0` (browser close) gives the cookie age from the last write, as in Django.
fn expires_at(data: &Dict, modified: OffsetDateTime, cookie_age: i64) -> OffsetDateTime {
    Expiry::of_data(data).date(modified, cookie_age)
}

/// Opens `path` for reading without waiting on a FIFO: anyone who can create files in the
/// directory (by default the shared temporary directory) could otherwise hang every load of a key,
/// and `clear_expired`, with a FIFO under its name. `O_NONBLOCK` changes nothing for regular
/// files; the caller then sees the FIFO is not a file.
fn open_without_blocking(path: &Path) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits().cast_signed());
    }
    options.open(path)
}

fn corrupted(path: &ReportedPath, why: &str) -> Dict {
    tracing::warn!(target: SUSPICIOUS_SESSION_TARGET, %path, why, "{CORRUPTED_MESSAGE}");
    Dict::new()
}

impl Inner {
    fn file_name(&self, key: &SessionKey) -> Option<String> {
        names::session_file_name(&self.dir.prefix, key)
    }

    fn file_path(&self, key: &SessionKey) -> Result<PathBuf, FileError> {
        self.file_name(key)
            .map(|name| self.dir.path.join(name))
            .ok_or(FileError::InvalidKey {
                max_len: names::max_key_len(&self.dir.prefix),
            })
    }

    /// Reads the session file at `path`: `None` when there is none. Corrupt contents read as an
    /// empty session (with Django's security warning when the signature is bad); an empty file
    /// is a creation placeholder and reads as an empty session too.
    fn read(&self, path: &Path) -> Result<Option<Current>, Error> {
        Ok(self.read_with_bytes(path)?.map(|(current, _)| current))
    }

    /// [`read`](Self::read), also returning the file's version ([`file_version`] of the bytes
    /// read: the contents, or their first `max_file_size + 1` bytes for a file too large to be a
    /// session).
    fn read_with_bytes(&self, path: &Path) -> Result<Option<(Current, Vec<u8>)>, Error> {
        let mut file = match open_without_blocking(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.dir.io_error("open", path, e).into()),
        };
        let meta = file
            .metadata()
            .map_err(|e| self.dir.io_error("inspect", path, e))?;
        if !meta.is_file() {
            // A directory or device under a session's name is not a session.
            return Ok(None);
        }
        let modified = meta
            .modified()
            .map_err(|e| self.dir.io_error("read the modification time of", path, e))?;
        let mut bytes = Vec::new();
        let data = if meta.len() > self.max_file_size as u64 {
            corrupted(
                &self.dir.reported(path),
                "larger than any session this store can read",
            )
        } else {
            bytes.reserve(usize::try_from(meta.len()).unwrap_or(0));
            (&mut file)
                .take(self.max_file_size as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| self.dir.io_error("read", path, e))?;
            if bytes.is_empty() {
                Dict::new()
            } else if bytes.len() > self.max_file_size {
                corrupted(
                    &self.dir.reported(path),
                    "larger than any session this store can read",
                )
            } else {
                match std::str::from_utf8(&bytes) {
                    Ok(text) if text.is_ascii() => self.codec.decode(text),
                    _ => corrupted(&self.dir.reported(path), "not ASCII"),
                }
            }
        };
        let version = file_version(bytes, &meta);
        let modified = OffsetDateTime::from(modified);
        Ok(Some((
            Current {
                expires_at: expires_at(&data, modified, self.cookie_age),
                modified,
                data,
                id: file_id(&meta),
            },
            version,
        )))
    }

    /// The live session under `key` with the bytes it was read from (its version).
    fn load_versioned(&self, key: &SessionKey) -> Result<Option<(Current, Vec<u8>)>, Error> {
        let Some(name) = self.file_name(key) else {
            return Ok(None);
        };
        Ok(self
            .read_with_bytes(&self.dir.path.join(name))?
            .filter(|(current, _)| current.expires_at > OffsetDateTime::now_utc()))
    }

    /// Replaces the live session file of `key` with `encoded` if it still holds `expected`,
    /// under the key's lock (see [`Dir::replace_under_lock`]).
    fn save_if_unchanged(
        &self,
        key: &SessionKey,
        encoded: &str,
        expected: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.dir.ensure_writable("save a session")?;
        let Some(name) = self.file_name(key) else {
            // Such a key names no file, so there is nothing to update.
            return Err(Error::SessionDeleted);
        };
        let path = self.dir.path.join(&name);
        let written = self.dir.replace_under_lock(&name, encoded.as_bytes(), || {
            match self.read_with_bytes(&path)? {
                Some((current, held)) if current.expires_at > OffsetDateTime::now_utc() => {
                    if held == expected {
                        Ok(())
                    } else {
                        Err(Error::Conflict)
                    }
                }
                // Gone or expired: a conditional save never brings it back.
                _ => Err(Error::SessionDeleted),
            }
        })?;
        Ok(file_version(encoded.as_bytes().to_vec(), &written))
    }

    fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        let Some(name) = self.file_name(key) else {
            return Ok(None);
        };
        // An expired file reads as absent and stays until clear_expired: a load never writes.
        Ok(self
            .read(&self.dir.path.join(name))?
            .filter(|current| current.expires_at > OffsetDateTime::now_utc())
            .map(|current| current.data))
    }

    fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        let Some(name) = self.file_name(key) else {
            return Ok(false);
        };
        let path = self.dir.path.join(name);
        match fs::symlink_metadata(&path) {
            Ok(meta) => Ok(!meta.is_dir()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.dir.io_error("inspect", &path, e).into()),
        }
    }

    fn save(&self, key: &SessionKey, encoded: &str, mode: SaveMode) -> Result<(), Error> {
        self.dir.ensure_writable("save a session")?;
        let Some(name) = self.file_name(key) else {
            return Err(match mode {
                // Such a key names no file, so there is nothing to update.
                SaveMode::Update => Error::SessionDeleted,
                SaveMode::MustCreate => FileError::InvalidKey {
                    max_len: names::max_key_len(&self.dir.prefix),
                }
                .into(),
            });
        };
        match mode {
            SaveMode::MustCreate => self.dir.create(&name, encoded.as_bytes()),
            SaveMode::Update => {
                match self.read(&self.dir.path.join(&name))? {
                    Some(current) if current.expires_at > OffsetDateTime::now_utc() => {}
                    // Gone or expired: updating must not bring it back.
                    _ => return Err(Error::SessionDeleted),
                }
                self.dir.replace(&name, encoded.as_bytes())
            }
        }
    }

    fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.dir.ensure_writable("delete a session")?;
        let Some(name) = self.file_name(key) else {
            return Ok(());
        };
        self.dir.remove(&name)
    }

    fn find_sessions(
        &self,
        keep: &(dyn Fn(&Dict) -> bool + Send + Sync),
    ) -> Result<Vec<FoundSession>, Error> {
        let entries = fs::read_dir(&self.dir.path)
            .map_err(|e| self.dir.io_error("list", &self.dir.path, e))?;
        let now = OffsetDateTime::now_utc();
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.dir.io_error("list", &self.dir.path, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Entry::Session(key) = names::classify(&self.dir.prefix, name) else {
                continue;
            };
            let Ok(key) = SessionKey::new(key) else {
                continue;
            };
            let path = entry.path();
            let current = match self.read(&path) {
                Ok(Some(current)) => current,
                Ok(None) => continue,
                Err(error) => {
                    // One unreadable file must not hide the others.
                    let path = self.dir.reported(&path);
                    tracing::warn!(%path, %error, "find_sessions skipped a file");
                    continue;
                }
            };
            if current.expires_at > now && keep(&current.data) {
                found.push(FoundSession {
                    key,
                    data: current.data,
                    expires_at: current.expires_at,
                    modified: current.modified,
                });
            }
        }
        Ok(found)
    }

    fn clear_expired(&self) -> Result<u64, Error> {
        self.dir.ensure_writable("clear expired sessions")?;
        let entries = fs::read_dir(&self.dir.path)
            .map_err(|e| self.dir.io_error("list", &self.dir.path, e))?;
        let now = OffsetDateTime::now_utc();
        let (mut sessions, mut temps) = (0u64, 0u64);
        for entry in entries {
            let entry = entry.map_err(|e| self.dir.io_error("list", &self.dir.path, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            let outcome = match names::classify(&self.dir.prefix, name) {
                Entry::Session(_) => self.remove_if_expired(&path, now).map(|removed| {
                    sessions += u64::from(removed);
                }),
                Entry::Temp => self.remove_if_stale_temp(&path).map(|removed| {
                    temps += u64::from(removed);
                }),
                // A lock file is removed by the save that took it; one this old was left by a
                // process killed while holding it, unless someone holds it again now.
                Entry::Lock => self.remove_if_abandoned_lock(&path).map(|removed| {
                    temps += u64::from(removed);
                }),
                Entry::Foreign => Ok(()),
            };
            if let Err(error) = outcome {
                // One unreadable file must not stop the sweep of the others.
                let path = self.dir.reported(&path);
                tracing::warn!(%path, %error, "clear_expired skipped a file");
            }
        }
        if sessions + temps > 0 {
            self.dir.sync()?;
        }
        tracing::debug!(
            sessions,
            temporary_files = temps,
            "clear_expired removed expired sessions and stale temporary files"
        );
        Ok(sessions)
    }

    fn remove_if_expired(&self, path: &Path, now: OffsetDateTime) -> Result<bool, Error> {
        let Some(current) = self.read(path)? else {
            return Ok(false);
        };
        if current.expires_at > now {
            return Ok(false);
        }
        // An update may have replaced the expired file since it was read; remove only the file
        // that was judged.
        let still_same = match fs::symlink_metadata(path) {
            Ok(meta) => file_id(&meta) == current.id,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(self.dir.io_error("inspect", path, e).into()),
        };
        if !still_same {
            return Ok(false);
        }
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.dir.io_error("remove", path, e).into()),
        }
    }

    fn remove_if_abandoned_lock(&self, path: &Path) -> Result<bool, Error> {
        if !self.is_stale(path)? {
            return Ok(false);
        }
        self.dir.remove_abandoned_lock(path)
    }

    /// Whether `path` is a regular file last modified at least [`STALE_TEMP_AGE`] ago.
    fn is_stale(&self, path: &Path) -> Result<bool, Error> {
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(self.dir.io_error("inspect", path, e).into()),
        };
        let modified = meta
            .modified()
            .map_err(|e| self.dir.io_error("read the modification time of", path, e))?;
        let age = SystemTime::now()
            .duration_since(modified)
            .unwrap_or(Duration::ZERO);
        Ok(age >= STALE_TEMP_AGE)
    }

    fn remove_if_stale_temp(&self, path: &Path) -> Result<bool, Error> {
        if !self.is_stale(path)? {
            return Ok(false);
        }
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.dir.io_error("remove", path, e).into()),
        }
    }
}

#[async_trait]
impl SessionStore for FileStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Dict>, Error> {
        let key = key.clone();
        self.run(move |inner| inner.load(&key)).await
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        let key = key.clone();
        self.run(move |inner| inner.exists(&key)).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: SessionRecord<'_>,
        mode: SaveMode,
    ) -> Result<SessionKey, Error> {
        let encoded = self.inner.codec.encode(record.data)?;
        if encoded.len() > self.inner.max_file_size {
            return Err(FileError::TooLarge {
                size: encoded.len(),
                limit: self.inner.max_file_size,
            }
            .into());
        }
        let owned = key.clone();
        self.run(move |inner| inner.save(&owned, &encoded, mode))
            .await?;
        Ok(key.clone())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        let key = key.clone();
        self.run(move |inner| inner.delete(&key)).await
    }

    async fn clear_expired(&self) -> Result<ClearExpired, Error> {
        self.run(Inner::clear_expired)
            .await
            .map(ClearExpired::Removed)
    }

    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities::COMPARE_AND_SWAP
    }

    fn kind(&self) -> &'static str {
        "file"
    }

    async fn load_versioned(&self, key: &SessionKey) -> Result<Option<VersionedRecord>, Error> {
        let key = key.clone();
        let read = self.run(move |inner| inner.load_versioned(&key)).await?;
        Ok(read.map(|(current, bytes)| VersionedRecord {
            data: Arc::new(current.data),
            version: Version::from_bytes(bytes),
            expires_at: Some(current.expires_at),
        }))
    }

    async fn save_if_unchanged(
        &self,
        key: &SessionKey,
        record: SharedRecord,
        expected: &Version,
    ) -> Result<Version, Error> {
        // A version this store did not make can match no file.
        let Some(expected) = expected.as_bytes().map(<[u8]>::to_vec) else {
            return Err(Error::Conflict);
        };
        let encoded = self.inner.codec.encode(&record.data)?;
        if encoded.len() > self.inner.max_file_size {
            return Err(FileError::TooLarge {
                size: encoded.len(),
                limit: self.inner.max_file_size,
            }
            .into());
        }
        let key = key.clone();
        self.run(move |inner| {
            let written = inner.save_if_unchanged(&key, &encoded, &expected)?;
            Ok(Version::from_bytes(written))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_conformance::logs;

    fn store_in(dir: &Path) -> FileStore {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(FileStore::new(dir, &session_conformance::config()))
            .unwrap()
    }

    #[test]
    fn corrupt_files_log_djangos_security_warning() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        for (contents, why) in [
            (&b"bad:encoded:value"[..], "Signature does not match"),
            (b"\xff\xfe", "not ASCII"),
        ] {
            let path = dir.path().join("sessionidabcdefghijkl");
            fs::write(&path, contents).unwrap();
            let (read, events) = logs::capture(|| store.inner.read(&path));
            assert_eq!(read.unwrap().unwrap().data, Dict::new());
            assert!(
                events.iter().any(|e| e.target == SUSPICIOUS_SESSION_TARGET
                    && e.level == tracing::Level::WARN
                    && e.message.contains(CORRUPTED_MESSAGE)),
                "{why}: {events:?}"
            );
        }
    }

    #[test]
    fn placeholders_are_not_security_events() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let path = dir.path().join("sessionidabcdefghijkl");
        fs::write(&path, b"").unwrap();
        let (read, events) = logs::capture(|| store.inner.read(&path));
        assert_eq!(read.unwrap().unwrap().data, Dict::new());
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn io_errors_name_the_directory_and_the_action_but_only_the_keys_head() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let key = SessionKey::new("abcdefghijkl").unwrap();
        let path = dir.path().join("sessionidabcdefghijkl");
        fs::create_dir(&path).unwrap();
        let Err(Error::Store(error)) = store.inner.delete(&key) else {
            panic!("removing a directory as a session file must fail");
        };
        let Some(FileError::Io { path: reported, .. }) = error.downcast_ref::<FileError>() else {
            panic!("expected an I/O error: {error:?}");
        };
        let shown = format!("{:?}", dir.path().join("sessionidabcd…"));
        assert!(
            error
                .to_string()
                .starts_with(&format!("could not remove {shown}: ")),
            "{error}"
        );
        assert!(format!("{error:?}").contains(&shown), "{error:?}");
        assert!(!format!("{error} {error:?}").contains("abcdefghijkl"));
        // The program still gets the whole path.
        assert_eq!(reported.as_path(), path);
    }

    #[test]
    fn a_directory_named_like_a_session_is_not_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let key = SessionKey::new("abcdefghijkl").unwrap();
        fs::create_dir(dir.path().join("sessionidabcdefghijkl")).unwrap();
        assert!(store.inner.load(&key).unwrap().is_none());
        assert!(!store.inner.exists(&key).unwrap());
    }
}
