//! The state directory: where a node keeps its [`SavedState`] across restarts.
//!
//! The core produces and reads the bytes; this file is the part that touches the disk:
//!
//! * **Atomic writes.** A save writes a temporary file in the same directory, syncs it,
//!   renames it over the state file and syncs the directory. A crash or power cut at any
//!   moment leaves either the previous state or the new one, never a mix
//!   ([`write_atomically`]).
//! * **One file per node.** Each process takes the first free *slot* of the directory
//!   (`node-0.state`, `node-1.state`, …, [`MAX_SLOTS`] of them), holding an exclusive
//!   lock on `node-N.lock` for as long as it runs; the kernel drops the lock when the
//!   process dies, however it dies. Two processes sharing a directory therefore never
//!   write the same file, and a restarted node takes back the first free slot, usually
//!   its own.
//! * **A bad file is a fresh start.** A missing, unreadable, truncated, corrupted or
//!   future-version file gives one clear warning ([`StateDir::load_or_warn`]) and no
//!   state; it is overwritten by the next save.
//! * **A broken slot is skipped.** A slot whose lock file cannot be locked (a directory,
//!   a FIFO, a file this process may not open) or whose state file is not a regular file
//!   (a FIFO would block an `open` forever) gets one warning, and the node takes the next
//!   slot. Nothing but a regular file is ever opened.
//! * **A read-only directory is still read.** Its state loads (under a lock file opened
//!   read-only, or without a lock when none can exist) after one warning that nothing will
//!   be saved ([`StateDir::is_read_only`]).
//!
//! The default directory is the platform's per-user state directory ([`default_dir`]).
//! Decisions and the byte layout: `docs/STATE.md`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use dhtmeet_core::{SavedState, StateError};

/// Slots (one per concurrently running node) a state directory offers.
pub const MAX_SLOTS: u32 = 16;

/// Why a state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    /// The directory cannot be created or its lock files opened.
    #[error("cannot use state directory {dir}: {source}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Every slot is locked by another running node.
    #[error("all {MAX_SLOTS} slots of state directory {0} are in use by other running nodes")]
    AllSlotsBusy(PathBuf),
    /// No slot is usable: each is locked by another node or broken (this is the first
    /// broken slot's cause).
    #[error("no usable slot in state directory {dir}: {path}: {source}")]
    NoUsableSlot {
        /// The directory.
        dir: PathBuf,
        /// The first broken slot's lock or state file.
        path: PathBuf,
        /// Why it is broken.
        source: io::Error,
    },
}

/// Why a saved state could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// There is no state file yet.
    #[error("no saved state at {0}")]
    Missing(PathBuf),
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The path is not a regular file (a FIFO, a directory, a device): never opened.
    #[error("{0} is not a regular file")]
    NotAFile(PathBuf),
    /// The file's bytes are not a usable state.
    #[error("saved state {path} is unusable: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: StateError,
    },
}

/// One node's slot in a state directory, locked for as long as this value lives.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    slot: u32,
    file: PathBuf,
    read_only: bool,
    /// `None` only in a read-only directory whose lock file does not exist (and cannot be
    /// created): nothing is written there, so no writer can be disturbed.
    _lock: Option<SlotLock>,
}

/// What trying one slot gave.
enum Slot {
    Taken(Option<SlotLock>),
    Busy,
}

impl StateDir {
    /// Opens (creating it if needed, mode 0700 on Unix) the state directory `dir` and
    /// takes its first free slot, skipping broken ones with a warning. A directory this
    /// process cannot write is opened read-only, with a warning.
    pub fn open(dir: &Path) -> Result<StateDir, StateDirError> {
        if let Err(source) = create_private_dir(dir)
            && !dir.is_dir()
        {
            return Err(StateDirError::Io {
                dir: dir.to_path_buf(),
                source,
            });
        }
        let read_only = !is_writable_dir(dir);
        let mut broken = None;
        for slot in 0..MAX_SLOTS {
            let file = dir.join(format!("node-{slot}.state"));
            let lock_path = dir.join(format!("node-{slot}.lock"));
            let taken = check_state_file(&file)
                .map_err(|e| (file.clone(), e))
                .and_then(|()| {
                    SlotLock::try_take(&lock_path, read_only).map_err(|e| (lock_path, e))
                });
            match taken {
                Ok(Slot::Taken(lock)) => {
                    if read_only {
                        tracing::warn!(
                            "state directory {} is read-only: loading {}, but nothing will be saved",
                            dir.display(),
                            file.display()
                        );
                    }
                    return Ok(StateDir {
                        dir: dir.to_path_buf(),
                        slot,
                        file,
                        read_only,
                        _lock: lock,
                    });
                }
                Ok(Slot::Busy) => {}
                Err((path, e)) => {
                    tracing::warn!("{}: {e}; trying the next slot", path.display());
                    broken.get_or_insert((path, e));
                }
            }
        }
        Err(match broken {
            Some((path, source)) => StateDirError::NoUsableSlot {
                dir: dir.to_path_buf(),
                path,
                source,
            },
            None => StateDirError::AllSlotsBusy(dir.to_path_buf()),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The slot this node holds.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The state file of this slot.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Whether the directory cannot be written: the state loads, [`StateDir::save`]
    /// writes nothing.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Reads and decodes the slot's state.
    pub fn load(&self) -> Result<SavedState, LoadError> {
        read_state(&self.file)
    }

    /// The slot's state, or `None` after one warning on stderr saying why the node starts
    /// afresh (a missing file gets a quieter note: it is the normal first start).
    pub fn load_or_warn(&self) -> Option<SavedState> {
        match self.load() {
            Ok(state) => Some(state),
            Err(e @ LoadError::Missing(_)) => {
                tracing::info!("{e}: starting afresh");
                None
            }
            Err(e) => {
                tracing::warn!("{e}; starting afresh (it will be overwritten)");
                None
            }
        }
    }

    /// Encodes `state` and writes it atomically to the slot's file. In a read-only
    /// directory this writes nothing and returns `Ok`: [`StateDir::open`] said so once,
    /// and a failure every minute would only repeat it.
    pub fn save(&self, state: &SavedState) -> io::Result<()> {
        if self.read_only {
            return Ok(());
        }
        write_atomically(&self.file, &state.encode())
    }
}

/// Reads a state file (refusing to read more than the format can hold) and decodes it.
pub fn read_state(path: &Path) -> Result<SavedState, LoadError> {
    let io_err = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match open_regular(path, OpenOptions::new().read(true)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(LoadError::Missing(path.to_path_buf()));
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            return Err(LoadError::NotAFile(path.to_path_buf()));
        }
        Err(e) => return Err(io_err(e)),
    };
    let mut bytes = Vec::new();
    let limit = dhtmeet_core::MAX_STATE_BYTES as u64 + 1;
    file.take(limit).read_to_end(&mut bytes).map_err(io_err)?;
    SavedState::decode(&bytes).map_err(|source| LoadError::Invalid {
        path: path.to_path_buf(),
        source,
    })
}

/// Replaces `path` with `bytes` so that a crash at any moment leaves either the old file
/// or the new one: write a temporary file beside it, sync it, rename it over `path`,
/// sync the directory (so that the rename itself survives a power cut).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    // One temporary name per target: a slot has one writer (its lock holder).
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let result = (|| {
        // A new file, never one found there (a FIFO would block the open).
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Opens `path` with `options` only if it is a regular file (or a link to one):
/// anything else is `InvalidInput`. On Unix the open does not block (a FIFO or a device
/// could) and the check is on the opened file itself.
fn open_regular(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    #[cfg(not(unix))]
    if fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(not_a_file());
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_a_file());
    }
    Ok(file)
}

fn not_a_file() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")
}

/// A slot whose state file exists but is not a regular file is broken.
fn check_state_file(path: &Path) -> io::Result<()> {
    match fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(not_a_file()),
        _ => Ok(()),
    }
}

/// Whether this process may create files in `dir` (`access(2)`: also false on a
/// read-only file system).
#[cfg(unix)]
fn is_writable_dir(dir: &Path) -> bool {
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_ok()
}

#[cfg(not(unix))]
fn is_writable_dir(dir: &Path) -> bool {
    fs::metadata(dir).is_ok_and(|m| !m.permissions().readonly())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Windows cannot open a directory as a file; its rename is durable on NTFS's journal.
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// An exclusive lock on a slot's lock file, released when dropped or when the process
/// dies (`flock` on Unix).
#[derive(Debug)]
struct SlotLock {
    _file: File,
    #[cfg(not(unix))]
    path: PathBuf,
}

impl SlotLock {
    /// Locks the slot's lock file (created if needed), or, in a read-only directory,
    /// the existing one opened read-only (no lock file: the slot is taken unlocked).
    #[cfg(unix)]
    fn try_take(path: &Path, read_only: bool) -> io::Result<Slot> {
        use rustix::fs::{FlockOperation, flock};
        let mut options = OpenOptions::new();
        options.read(true);
        if !read_only {
            options.write(true).create(true).truncate(false);
        }
        let file = match open_regular(path, &mut options) {
            Ok(file) => file,
            Err(e) if read_only && e.kind() == io::ErrorKind::NotFound => {
                return Ok(Slot::Taken(None));
            }
            Err(e) => return Err(e),
        };
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Slot::Taken(Some(SlotLock { _file: file }))),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(Slot::Busy),
            Err(e) => Err(e.into()),
        }
    }

    /// Without `flock`: the lock file exists while a node holds the slot. A node that
    /// crashed leaves it behind, and the next node takes the next slot.
    #[cfg(not(unix))]
    fn try_take(path: &Path, read_only: bool) -> io::Result<Slot> {
        if read_only {
            return Ok(Slot::Taken(None));
        }
        match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(file) => Ok(Slot::Taken(Some(SlotLock {
                _file: file,
                path: path.to_path_buf(),
            }))),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Slot::Busy),
            Err(e) => Err(e),
        }
    }
}

#[cfg(not(unix))]
impl Drop for SlotLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The platform's per-user directory for state a program keeps between runs:
/// `$XDG_STATE_HOME/dhtmeet` or `~/.local/state/dhtmeet` on Linux and other Unix,
/// `~/Library/Application Support/dhtmeet` on macOS, `%LOCALAPPDATA%\dhtmeet` on Windows.
/// `None` if the home directory is unknown.
pub fn default_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if cfg!(windows) {
        return env("LOCALAPPDATA").map(|d| d.join("dhtmeet"));
    }
    if cfg!(target_os = "macos") {
        return env("HOME").map(|h| h.join("Library/Application Support/dhtmeet"));
    }
    env("XDG_STATE_HOME")
        .filter(|d| d.is_absolute())
        .map(|d| d.join("dhtmeet"))
        .or_else(|| env("HOME").map(|h| h.join(".local/state/dhtmeet")))
}

#[cfg(test)]
#[path = "state_dir_tests.rs"]
mod tests;
