//! A partial file on disk: `NAME.<sender>-<id>.part`, hashed as it is written, held
//! with an exclusive `flock` while this process writes it, and renamed into place when
//! its SHA-256 matches. [`remove_stale`] removes those of receivers that died.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use dhtmeet_core::transfer::{FileName, IncomingFile};
use sha2::{Digest, Sha256};

use super::{FileError, hex};

pub(crate) struct PartFile {
    name: FileName,
    path: PathBuf,
    file: File,
    hasher: Sha256,
    expected: [u8; 32],
    size: u64,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.to_owned(),
        source,
    }
}

impl PartFile {
    /// Creates (or truncates) the partial file of `incoming` in `dir`, locked.
    pub(crate) fn create(dir: &Path, incoming: &IncomingFile) -> Result<PartFile, FileError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let key = incoming.key;
        let path = dir.join(format!("{}.{}-{}.part", incoming.name, key.member, key.id));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_error(&path))?;
        if !try_lock(&file).map_err(io_error(&path))? {
            return Err(FileError::Io {
                path,
                source: io::Error::new(io::ErrorKind::WouldBlock, "held by another dhtmeet"),
            });
        }
        Ok(PartFile {
            name: incoming.name.clone(),
            path,
            file,
            hasher: Sha256::new(),
            expected: incoming.sha256,
            size: incoming.size,
        })
    }

    pub(crate) fn name(&self) -> &FileName {
        &self.name
    }

    /// Appends `bytes` (the core checked their order and the size).
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), FileError> {
        self.hasher.update(bytes);
        self.file.write_all(bytes).map_err(io_error(&self.path))
    }

    /// Checks the SHA-256, syncs, and renames the file to `dir/NAME` (or `NAME (2)`, …):
    /// its path, size and SHA-256. On any failure the partial file is removed.
    pub(crate) fn keep(mut self, dir: &Path) -> Result<(PathBuf, u64, [u8; 32]), FileError> {
        let got: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
        if got != self.expected {
            let error = FileError::Checksum {
                got: hex(&got),
                expected: hex(&self.expected),
            };
            self.remove();
            return Err(error);
        }
        if let Err(e) = self.file.flush().and_then(|()| self.file.sync_all()) {
            let error = io_error(&self.path)(e);
            self.remove();
            return Err(error);
        }
        let path = free_path(dir, self.name.as_str());
        if let Err(e) = std::fs::rename(&self.path, &path) {
            let error = io_error(&path)(e);
            self.remove();
            return Err(error);
        }
        Ok((path, self.size, got))
    }

    /// Removes the partial file.
    pub(crate) fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `dir/name`, or `dir/name (2)`, … if taken.
fn free_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|n| dir.join(format!("{name} ({n})")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// Whether `name` is one of our partial files: `….<16 hex digits>-<digits>.part`.
fn is_part_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".part") else {
        return false;
    };
    let Some((rest, id)) = stem.rsplit_once('-') else {
        return false;
    };
    let Some((_, member)) = rest.rsplit_once('.') else {
        return false;
    };
    !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && member.len() == 16
        && member.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Removes the partial files in `dir` that no running receiver holds (one killed in the
/// middle of a file left them); returns how many. A missing `dir` holds none.
pub(crate) fn remove_stale(dir: &Path) -> io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry?.path();
        let ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(is_part_name);
        if ours && path.is_file() && is_stale(&path)? {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Takes an exclusive lock on `file`, held until it is closed (or the process dies);
/// `false` if another process holds it.
#[cfg(unix)]
fn try_lock(file: &File) -> io::Result<bool> {
    use rustix::fs::{FlockOperation, flock};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Without `flock` there is no lock: staleness goes by age ([`is_stale`]).
#[cfg(not(unix))]
fn try_lock(_file: &File) -> io::Result<bool> {
    Ok(true)
}

/// No process holds the partial file.
#[cfg(unix)]
fn is_stale(path: &Path) -> io::Result<bool> {
    try_lock(&File::open(path)?)
}

/// Untouched for longer than a live receiver keeps a silent file.
#[cfg(not(unix))]
fn is_stale(path: &Path) -> io::Result<bool> {
    let modified = std::fs::metadata(path)?.modified()?;
    Ok(modified
        .elapsed()
        .is_ok_and(|age| age >= dhtmeet_core::transfer::STALL_TIMEOUT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhtmeet_core::meeting::signal::MemberId;
    use dhtmeet_core::transfer::TransferKey;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dhtmeet-part-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn incoming(id: u32, name: &str, body: &[u8]) -> IncomingFile {
        IncomingFile {
            key: TransferKey {
                member: MemberId([0xab; 8]),
                id,
            },
            name: FileName::parse(name).unwrap(),
            size: body.len() as u64,
            sha256: Sha256::digest(body).into(),
        }
    }

    #[test]
    fn a_verified_file_is_renamed_beside_any_namesake() {
        let dir = temp_dir("keep");
        for (id, want) in [(1, "data.bin"), (2, "data.bin (2)")] {
            let mut part = PartFile::create(&dir, &incoming(id, "data.bin", b"abc")).unwrap();
            part.write(b"abc").unwrap();
            let (path, size, _) = part.keep(&dir).unwrap();
            assert_eq!((path, size), (dir.join(want), 3));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupted_file_is_refused_and_removed() {
        let dir = temp_dir("bad");
        let mut part = PartFile::create(&dir, &incoming(1, "x", b"abc")).unwrap();
        part.write(b"abd").unwrap();
        assert!(matches!(part.keep(&dir), Err(FileError::Checksum { .. })));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_partial_files_nobody_holds_are_removed() {
        let dir = temp_dir("stale");
        let held = PartFile::create(&dir, &incoming(1, "held.bin", b"abc")).unwrap();
        let stale = dir.join("old.bin.abababababababab-7.part");
        std::fs::write(&stale, b"ab").unwrap();
        std::fs::write(dir.join("notes.part"), b"not ours").unwrap();
        std::fs::write(dir.join("x.zzzzzzzzzzzzzzzz-1.part"), b"not ours").unwrap();
        assert_eq!(remove_stale(&dir).unwrap(), 1);
        assert!(!stale.exists());
        assert!(held.path.exists(), "a running receiver's file stays");
        assert!(dir.join("notes.part").exists());
        drop(held);
        assert_eq!(remove_stale(&dir).unwrap(), 1, "closed: stale now");
        assert_eq!(remove_stale(&temp_dir("missing")).unwrap(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
