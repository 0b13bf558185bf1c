//! Crash-safe, race-safe writes of whole files into the storage directory.
//!
//! Every write goes to a fresh temporary file in the same directory (mode 0600), is flushed to
//! disk, and only then becomes visible under the session's name in one atomic step, so a reader
//! (or a process restarted after a kill or a crash) sees the old file or the new one, never part
//! of one. How that last step is done depends on what the filesystem offers; see
//! [`WriteStrategy`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use session_core::{Error, SessionKey};

use crate::error::{FileError, ReportedPath};
use crate::names::{lock_file_name, temp_file_name};

/// How many fresh temporary names are tried before giving up (a clash needs two equal 165-bit
/// random strings, so a second attempt already means something else is wrong).
const TEMP_ATTEMPTS: usize = 4;

/// How the file store makes a complete file appear under a session's name.
///
/// The builder picks the strongest one the directory's filesystem supports, by trying it on
/// scratch files; [`FileStore::write_strategy`](crate::FileStore::write_strategy) tells which one
/// is in use. All three write the complete data to a temporary file first, so a session file is
/// never seen half-written, and all three make creation atomic (of two creators of one key,
/// exactly one wins). They differ in what an update racing a delete can do:
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStrategy {
    /// `renameat2(RENAME_NOREPLACE)` to create and `renameat2(RENAME_EXCHANGE)` to update (Linux
    /// 3.15+ on ext4, xfs, btrfs, tmpfs, overlayfs, ...; `renameatx_np` on macOS/APFS).
    ///
    /// An update swaps the new file with the existing one in one step, which fails if the
    /// session file is gone: an update never recreates a session deleted before it, with no
    /// window at all.
    RenameExchange,
    /// `link()` to create (fails if the name exists) and check-then-`rename()` to update (any
    /// POSIX filesystem with hard links, NFS included).
    ///
    /// An update checks that the session file still exists right before renaming over it. The
    /// check and the rename are made under the session's lock (see the crate docs' "Concurrency
    /// policies"), and this store's deletes take the same lock, so a delete of this store (in any
    /// process on the machine) lands before the check or after the rename, never between them.
    /// A delete by a writer that does not take the lock (Django) can still land in the
    /// microseconds between the two and be undone by the rename, as with Django's own store.
    HardLink,
    /// Django's own way: an exclusive `open(O_CREAT|O_EXCL)` reserves the name with an empty
    /// placeholder, then the complete temporary file is renamed over it; updates as
    /// [`HardLink`](Self::HardLink). For filesystems without hard links.
    ///
    /// A reader can see the empty placeholder for the moment between the two steps. It reads
    /// as an existing session with no data, as in Django; only the creator knows the new key, so
    /// no client can be affected. If the data cannot be written, the placeholder is removed again.
    Placeholder,
}

/// A temporary file that is removed when dropped, unless kept.
pub(crate) struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl TempFile {
    fn new(path: PathBuf) -> Self {
        TempFile { path, keep: false }
    }

    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            // Best effort: a leftover is removed later by clear_expired.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The storage directory, with how to write into it.
#[derive(Debug)]
pub(crate) struct Dir {
    pub(crate) path: PathBuf,
    /// The cookie name, which starts every session file's name.
    pub(crate) prefix: String,
    // Kept open to fsync the directory after renames and removals.
    handle: Option<File>,
    fsync: bool,
    pub(crate) strategy: WriteStrategy,
    /// Opened by [`Dir::open_read_only`]: the store must not write.
    pub(crate) read_only: bool,
}

/// A file created with `O_CREAT|O_EXCL`, readable and writable by its owner only.
fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
fn rename_with(from: &Path, to: &Path, exchange: bool) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    let flags = if exchange {
        RenameFlags::EXCHANGE
    } else {
        RenameFlags::NOREPLACE
    };
    renameat_with(CWD, from, CWD, to, flags).map_err(io::Error::from)
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
fn rename_with(_from: &Path, _to: &Path, _exchange: bool) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// `path`, made absolute, after checking it is an existing directory.
fn existing_directory(path: &Path) -> Result<PathBuf, FileError> {
    let unusable = |problem: &str, source| storage_directory(path, problem, source);
    let absolute = std::path::absolute(path)
        .map_err(|e| unusable("cannot be resolved to an absolute path", Some(e)))?;
    match fs::metadata(&absolute) {
        Ok(meta) if meta.is_dir() => Ok(absolute),
        Ok(_) => Err(unusable("is not a directory", None)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(unusable("doesn't exist", Some(e))),
        Err(e) => Err(unusable("cannot be inspected", Some(e))),
    }
}

fn storage_directory(path: &Path, problem: &str, source: Option<io::Error>) -> FileError {
    FileError::StorageDirectory {
        path: path.to_owned(),
        problem: problem.to_owned(),
        source,
    }
}

impl Dir {
    /// Checks that `path` is an existing directory, without writing anything into it (so it
    /// need not be writable); the store must then refuse to write (see [`Dir::read_only`]).
    pub(crate) fn open_read_only(path: &Path, prefix: &str) -> Result<Dir, FileError> {
        Ok(Dir {
            path: existing_directory(path)?,
            prefix: prefix.to_owned(),
            handle: None,
            fsync: false,
            // Never used: nothing is written. The one strategy that needs nothing of the
            // filesystem.
            strategy: WriteStrategy::Placeholder,
            read_only: true,
        })
    }

    /// Checks that `path` is a writable directory and picks the write strategy (`forced`, if
    /// given, after checking the filesystem supports it). `prefix` names the scratch files.
    pub(crate) fn open(
        path: &Path,
        prefix: &str,
        fsync: bool,
        forced: Option<WriteStrategy>,
    ) -> Result<Dir, FileError> {
        let unusable = |problem: &str, source| storage_directory(path, problem, source);
        let path = existing_directory(path)?;
        // Renames are made durable by flushing the directory: with fsync on, a directory that
        // cannot be opened is unusable, not a silent loss of durability.
        let handle = if fsync {
            Some(File::open(&path).map_err(|e| unusable("cannot be opened to flush it", Some(e)))?)
        } else {
            None
        };
        let mut dir = Dir {
            handle,
            path,
            prefix: prefix.to_owned(),
            fsync,
            strategy: WriteStrategy::Placeholder,
            read_only: false,
        };
        // Scratch files are named as temporary files of a random key, so a crash here leaves only
        // names clear_expired removes.
        let scratch = format!("{prefix}{}", SessionKey::generate()?.as_str());
        let probe = dir.write_temp(&scratch, b"").map_err(|e| match e {
            FileError::Io { source, .. } => unusable("is not writable", Some(source)),
            other => other,
        })?;
        let target = dir.path.join(temp_file_name(&scratch)?);
        let _cleanup = TempFile::new(target.clone());
        let supports = |strategy| match strategy {
            WriteStrategy::RenameExchange => {
                rename_with(&probe.path, &target, false).is_ok()
                    && fs::rename(&target, &probe.path).is_ok()
                    && create_new(&target).is_ok()
                    && rename_with(&probe.path, &target, true).is_ok()
            }
            WriteStrategy::HardLink => {
                let _ = fs::remove_file(&target);
                fs::hard_link(&probe.path, &target).is_ok()
            }
            WriteStrategy::Placeholder => true,
        };
        dir.strategy = match forced {
            Some(strategy) if supports(strategy) => strategy,
            Some(strategy) => {
                return Err(unusable(
                    &format!(
                        "is on a filesystem that does not support the {strategy:?} write strategy"
                    ),
                    None,
                ));
            }
            None => [WriteStrategy::RenameExchange, WriteStrategy::HardLink]
                .into_iter()
                .find(|&s| supports(s))
                .unwrap_or(WriteStrategy::Placeholder),
        };
        Ok(dir)
    }

    /// `path` (this directory or a file in it) as errors and logs show it: a session key in a
    /// file name is shortened.
    pub(crate) fn reported(&self, path: &Path) -> ReportedPath {
        if path == self.path {
            ReportedPath::full(path)
        } else {
            ReportedPath::file(path, &self.prefix)
        }
    }

    /// The error for `action` on `path` (this directory or a file in it) failing with `source`.
    pub(crate) fn io_error(
        &self,
        action: &'static str,
        path: &Path,
        source: io::Error,
    ) -> FileError {
        FileError::io(action, self.reported(path), source)
    }

    /// Fails with [`FileError::ReadOnly`] if the store was opened read-only.
    pub(crate) fn ensure_writable(&self, action: &'static str) -> Result<(), Error> {
        if self.read_only {
            Err(FileError::ReadOnly { action }.into())
        } else {
            Ok(())
        }
    }

    /// Makes renames and removals in the directory durable.
    pub(crate) fn sync(&self) -> Result<(), Error> {
        match (&self.handle, self.fsync) {
            (Some(handle), true) => handle
                .sync_all()
                .map_err(|e| self.io_error("flush the directory", &self.path, e).into()),
            _ => Ok(()),
        }
    }

    /// Writes `contents` to a new temporary file of session file `file_name`, flushed to disk.
    fn write_temp(&self, file_name: &str, contents: &[u8]) -> Result<TempFile, FileError> {
        let mut last = None;
        for _ in 0..TEMP_ATTEMPTS {
            let path = self.path.join(temp_file_name(file_name)?);
            let mut file = match create_new(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(self.io_error("create a temporary file in", &self.path, e)),
            };
            let temp = TempFile::new(path);
            file.write_all(contents)
                .map_err(|e| self.io_error("write", &temp.path, e))?;
            if self.fsync {
                file.sync_data()
                    .map_err(|e| self.io_error("flush", &temp.path, e))?;
            }
            return Ok(temp);
        }
        let e = last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists));
        Err(self.io_error("create a temporary file in", &self.path, e))
    }

    /// Creates session file `file_name` holding `contents`, or fails with
    /// [`Error::CreateConflict`] if it exists.
    pub(crate) fn create(&self, file_name: &str, contents: &[u8]) -> Result<(), Error> {
        let target = self.path.join(file_name);
        let conflict_or = |e: io::Error, action| match e.kind() {
            io::ErrorKind::AlreadyExists => Error::CreateConflict,
            _ => self.io_error(action, &target, e).into(),
        };
        match self.strategy {
            WriteStrategy::RenameExchange => {
                let temp = self.write_temp(file_name, contents)?;
                rename_with(&temp.path, &target, false).map_err(|e| conflict_or(e, "create"))?;
                temp.keep();
            }
            WriteStrategy::HardLink => {
                let temp = self.write_temp(file_name, contents)?;
                fs::hard_link(&temp.path, &target).map_err(|e| conflict_or(e, "create"))?;
                // Dropping `temp` removes its name; the session file keeps the data.
            }
            WriteStrategy::Placeholder => {
                drop(create_new(&target).map_err(|e| conflict_or(e, "create"))?);
                let placeholder = TempFile::new(target.clone());
                let temp = self.write_temp(file_name, contents)?;
                fs::rename(&temp.path, &target)
                    .map_err(|e| self.io_error("rename a temporary file over", &target, e))?;
                temp.keep();
                placeholder.keep();
            }
        }
        self.sync()
    }

    /// The session's lock, where updates check that the session file exists and then rename
    /// over it in two steps: a delete between them would be undone, so both steps, and this
    /// store's deletes, are made under it. `RenameExchange` fails by itself if the file is gone
    /// and needs none.
    fn lock_if_updates_check_then_rename(
        &self,
        file_name: &str,
    ) -> Result<Option<SessionLock>, Error> {
        match self.strategy {
            WriteStrategy::RenameExchange => Ok(None),
            WriteStrategy::HardLink | WriteStrategy::Placeholder => self.lock(file_name).map(Some),
        }
    }

    /// Replaces existing session file `file_name` with `contents`, or fails with
    /// [`Error::SessionDeleted`] if it no longer exists.
    pub(crate) fn replace(&self, file_name: &str, contents: &[u8]) -> Result<(), Error> {
        let temp = self.write_temp(file_name, contents)?;
        let lock = self.lock_if_updates_check_then_rename(file_name)?;
        self.swap_in(temp, file_name)?;
        drop(lock);
        self.sync()
    }

    /// Removes session file `file_name`, if it exists. Under a strategy whose updates check then
    /// rename, the removal waits for the session's lock, so it cannot fall between an update's
    /// check and its rename (which would bring the deleted session back).
    pub(crate) fn remove(&self, file_name: &str) -> Result<(), Error> {
        let path = self.path.join(file_name);
        let lock = self.lock_if_updates_check_then_rename(file_name)?;
        let removed = fs::remove_file(&path);
        drop(lock);
        match removed {
            Ok(()) => self.sync(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_error("remove", &path, e).into()),
        }
    }

    /// [`replace`](Self::replace), only if `check` (which reads the current file) passes, with
    /// the session's lock held from the check to the rename, so no other conditional save of
    /// this directory (in this process or another) can land in between. The new contents are
    /// written and flushed before the lock is taken and the directory is flushed after it is
    /// released: the lock covers a read and a rename only.
    ///
    /// Writers that do not take the lock (Django, and under `RenameExchange` this store's plain
    /// saves and deletes, which need no lock there) are not excluded: see the crate docs'
    /// "Concurrency policies".
    ///
    /// Returns the metadata of the file written (now the session file).
    pub(crate) fn replace_under_lock(
        &self,
        file_name: &str,
        contents: &[u8],
        check: impl FnOnce() -> Result<(), Error>,
    ) -> Result<fs::Metadata, Error> {
        let temp = self.write_temp(file_name, contents)?;
        let written = fs::symlink_metadata(&temp.path)
            .map_err(|e| self.io_error("inspect", &temp.path, e))?;
        let lock = self.lock(file_name)?;
        check()?;
        self.swap_in(temp, file_name)?;
        drop(lock);
        self.sync()?;
        Ok(written)
    }

    /// Puts the complete temporary file `temp` under the name of existing session file
    /// `file_name`, or fails with [`Error::SessionDeleted`] if there is none.
    fn swap_in(&self, temp: TempFile, file_name: &str) -> Result<(), Error> {
        let target = self.path.join(file_name);
        match self.strategy {
            WriteStrategy::RenameExchange => match rename_with(&temp.path, &target, true) {
                // `temp` now names the previous version; dropping it removes that.
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::SessionDeleted),
                Err(e) => Err(self.io_error("replace", &target, e).into()),
            },
            WriteStrategy::HardLink | WriteStrategy::Placeholder => {
                match fs::symlink_metadata(&target) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(Error::SessionDeleted);
                    }
                    Err(e) => return Err(self.io_error("inspect", &target, e).into()),
                }
                fs::rename(&temp.path, &target)
                    .map_err(|e| self.io_error("rename a temporary file over", &target, e))?;
                temp.keep();
                Ok(())
            }
        }
    }

    /// Takes the exclusive lock of session file `file_name`: an OS lock (`flock` on Unix) on
    /// `<file name>_lock`, created if need be, which excludes other threads and processes alike
    /// (each opens the file anew, and the lock belongs to the open file).
    ///
    /// The holder removes the file when it releases the lock, so lock files do not accumulate;
    /// a waiter that then gets the lock of the removed file sees that the name now leads to
    /// another file (or none), and starts over, so two holders never overlap.
    fn lock(&self, file_name: &str) -> Result<SessionLock, Error> {
        let path = self.path.join(lock_file_name(file_name));
        for _ in 0..LOCK_ATTEMPTS {
            let file = lock_file_options(true)
                .open(&path)
                .map_err(|e| self.io_error("open the lock file", &path, e))?;
            file.lock().map_err(|e| self.io_error("lock", &path, e))?;
            // Otherwise removed (or replaced) by the holder before us: this lock guards nothing.
            if self.still_named(&path, &file)? {
                return Ok(SessionLock { path, file });
            }
        }
        Err(self
            .io_error(
                "lock",
                &path,
                io::Error::other("the lock file kept being replaced while waiting for it"),
            )
            .into())
    }

    /// Whether `path` still names `file`, the lock file opened from it: false when a holder has
    /// removed it (or something replaced it) since.
    fn still_named(&self, path: &Path, file: &File) -> Result<bool, Error> {
        let held = file
            .metadata()
            .map_err(|e| self.io_error("inspect", path, e))?;
        match fs::symlink_metadata(path) {
            Ok(named) => Ok(same_file(&named, &held)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_error("inspect", path, e).into()),
        }
    }

    /// Removes the lock file at `path` if nobody holds it (one left by a process killed while
    /// holding it), the way a holder removes it on release: with its lock taken, and only if the
    /// name still leads to the file locked. A held lock file stays: removed under its holder, it
    /// would let another process lock a new file of the same name, and two holders would
    /// overlap. Elsewhere than Unix a held file cannot be removed at all, so it is removed as
    /// it is.
    pub(crate) fn remove_abandoned_lock(&self, path: &Path) -> Result<bool, Error> {
        #[cfg(unix)]
        {
            let file = match lock_file_options(false).open(path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(self.io_error("open the lock file", path, e).into()),
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Ok(false),
                Err(fs::TryLockError::Error(e)) => {
                    return Err(self.io_error("lock", path, e).into());
                }
            }
            if !self.still_named(path, &file)? {
                return Ok(false);
            }
        }
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_error("remove", path, e).into()),
        }
    }
}

/// How a lock file is opened: read-write, private, never through a link planted under its name
/// (elsewhere, [`Dir::still_named`] refuses one: a link is never the file it leads to), and
/// created if `create`.
fn lock_file_options(create: bool) -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .create(create)
        .truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0),
    );
    options
}

/// How many times [`Dir::lock`] opens the lock file anew after finding it was removed by the
/// holder before it: each retry follows a release, so running out means a pathological churn.
const LOCK_ATTEMPTS: usize = 1000;

/// Whether two metadata describe the same file.
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        // Without inode numbers the name is trusted; lock files are then not removed on
        // release (see `SessionLock`), so the name always leads to the locked file.
        let _ = (a, b);
        true
    }
}

/// A held session lock ([`Dir::lock`]): releasing it removes the lock file, then unlocks.
pub(crate) struct SessionLock {
    path: PathBuf,
    // Closing it releases the OS lock; it is dropped after `drop` below has run.
    #[allow(dead_code)]
    file: File,
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        // Removed while still locked, so whoever waits on it notices and starts over. Best
        // effort: a leftover is removed later by clear_expired. Elsewhere than Unix an open file
        // cannot be removed and waiters could not tell, so it stays.
        #[cfg(unix)]
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [WriteStrategy; 3] = [
        WriteStrategy::RenameExchange,
        WriteStrategy::HardLink,
        WriteStrategy::Placeholder,
    ];

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn probing_leaves_no_scratch_files() {
        let dir = tempfile::tempdir().unwrap();
        for strategy in ALL {
            Dir::open(dir.path(), "sessionid", true, Some(strategy)).unwrap();
        }
        Dir::open(dir.path(), "sessionid", true, None).unwrap();
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn only_file_names_are_shortened_not_the_directory() {
        // A directory whose own name starts with the cookie name is still shown in full.
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sessionidabcdefghijkl");
        fs::create_dir(&path).unwrap();
        let dir = Dir::open(&path, "sessionid", false, None).unwrap();
        assert_eq!(dir.reported(&path).to_string(), path.display().to_string());
        assert_eq!(
            dir.reported(&path.join("notes.txt")).to_string(),
            path.join("notes.txt").display().to_string()
        );
        assert_eq!(
            dir.reported(&path.join("sessionidmnopqrstuvwx"))
                .to_string(),
            path.join("sessionidmnop…").display().to_string()
        );
    }

    #[test]
    fn temporary_files_are_shown_without_their_sessions_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path(), "sessionid", false, None).unwrap();
        let temp = dir.write_temp("sessionidabcdefghijkl", b"data").unwrap();
        let shown = dir.reported(&temp.path).to_string();
        let prefix = tmp.path().join("sessionidabcd…_out_");
        assert!(shown.starts_with(&prefix.display().to_string()), "{shown}");
        assert!(shown.ends_with('…'), "{shown}");
        assert!(!shown.contains("abcdefghijkl"), "{shown}");
    }

    #[test]
    fn read_only_directories_refuse_writes_and_must_exist() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_read_only(tmp.path(), "sessionid").unwrap();
        assert!(matches!(
            dir.ensure_writable("save a session"),
            Err(Error::Store(_))
        ));
        assert!(
            Dir::open(tmp.path(), "sessionid", false, None)
                .unwrap()
                .ensure_writable("save a session")
                .is_ok()
        );
        let missing = tmp.path().join("missing");
        assert!(matches!(
            Dir::open_read_only(&missing, "sessionid"),
            Err(FileError::StorageDirectory { .. })
        ));
        assert!(!missing.exists());
    }

    #[test]
    fn replacing_a_deleted_file_fails_and_leaves_nothing() {
        for strategy in ALL {
            let tmp = tempfile::tempdir().unwrap();
            let dir = Dir::open(tmp.path(), "sessionid", true, Some(strategy)).unwrap();
            dir.create("sessionidabcdefghijkl", b"one").unwrap();
            fs::remove_file(tmp.path().join("sessionidabcdefghijkl")).unwrap();
            assert!(matches!(
                dir.replace("sessionidabcdefghijkl", b"two"),
                Err(Error::SessionDeleted)
            ));
            assert!(names(tmp.path()).is_empty(), "{strategy:?}");
        }
    }

    /// A lock file nobody holds (its holder was killed) is removed; one somebody holds stays,
    /// and so does its holder's exclusion: a second locker still waits for it.
    #[cfg(unix)]
    #[test]
    fn only_an_abandoned_lock_file_is_removed() {
        const NAME: &str = "sessionidabcdefghijkl";
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path(), "sessionid", false, None).unwrap();
        let lock_path = tmp.path().join(lock_file_name(NAME));

        fs::write(&lock_path, b"").unwrap();
        assert!(dir.remove_abandoned_lock(&lock_path).unwrap());
        assert!(!lock_path.exists());
        assert!(
            !dir.remove_abandoned_lock(&lock_path).unwrap(),
            "already gone"
        );

        let held = dir.lock(NAME).unwrap();
        assert!(!dir.remove_abandoned_lock(&lock_path).unwrap());
        assert!(lock_path.exists(), "a held lock file must stay");
        let other = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&lock_path)
            .unwrap();
        assert!(
            matches!(other.try_lock(), Err(fs::TryLockError::WouldBlock)),
            "the holder still excludes others"
        );
        drop(held);
        assert!(!lock_path.exists(), "the holder removes it on release");
    }

    /// Under the strategies whose updates check then rename, a delete and an update wait for the
    /// session's lock, so neither can fall between another update's check and its rename (where
    /// a delete would be undone). `RenameExchange` needs no lock and takes none.
    #[test]
    fn deletes_and_updates_wait_for_the_lock_where_updates_check_then_rename() {
        use std::sync::{Arc, mpsc};
        use std::time::Duration;
        const NAME: &str = "sessionidabcdefghijkl";
        for strategy in ALL {
            let tmp = tempfile::tempdir().unwrap();
            let dir = Arc::new(Dir::open(tmp.path(), "sessionid", false, Some(strategy)).unwrap());
            dir.create(NAME, b"one").unwrap();
            let waits = strategy != WriteStrategy::RenameExchange;
            let run = |op: fn(&Dir) -> Result<(), Error>| {
                let (done, finished) = mpsc::channel();
                let dir = dir.clone();
                let worker = std::thread::spawn(move || {
                    let result = op(&dir);
                    done.send(()).unwrap();
                    result
                });
                (finished, worker)
            };

            let held = dir.lock(NAME).unwrap();
            let (finished, updater) = run(|dir| dir.replace(NAME, b"two"));
            let blocked = finished.recv_timeout(Duration::from_millis(200)).is_err();
            assert_eq!(blocked, waits, "{strategy:?}: update blocked by the lock");
            drop(held);
            updater.join().unwrap().unwrap();
            assert_eq!(fs::read(tmp.path().join(NAME)).unwrap(), b"two");

            let held = dir.lock(NAME).unwrap();
            let (finished, deleter) = run(|dir| dir.remove(NAME));
            let blocked = finished.recv_timeout(Duration::from_millis(200)).is_err();
            assert_eq!(blocked, waits, "{strategy:?}: delete blocked by the lock");
            assert_eq!(tmp.path().join(NAME).exists(), waits, "{strategy:?}");
            drop(held);
            deleter.join().unwrap().unwrap();
            assert!(names(tmp.path()).is_empty(), "{strategy:?}");
            // Deleting what is gone is no error.
            dir.remove(NAME).unwrap();
        }
    }

    #[test]
    fn creating_over_an_existing_file_conflicts_and_keeps_it() {
        for strategy in ALL {
            let tmp = tempfile::tempdir().unwrap();
            let dir = Dir::open(tmp.path(), "sessionid", true, Some(strategy)).unwrap();
            dir.create("sessionidabcdefghijkl", b"first").unwrap();
            assert!(matches!(
                dir.create("sessionidabcdefghijkl", b"second"),
                Err(Error::CreateConflict)
            ));
            assert_eq!(names(tmp.path()), ["sessionidabcdefghijkl"], "{strategy:?}");
            assert_eq!(
                fs::read(tmp.path().join("sessionidabcdefghijkl")).unwrap(),
                b"first"
            );
            dir.replace("sessionidabcdefghijkl", b"third").unwrap();
            assert_eq!(names(tmp.path()), ["sessionidabcdefghijkl"], "{strategy:?}");
            assert_eq!(
                fs::read(tmp.path().join("sessionidabcdefghijkl")).unwrap(),
                b"third"
            );
        }
    }
}
