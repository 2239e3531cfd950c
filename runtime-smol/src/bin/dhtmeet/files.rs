//! Files between `dhtmeet join` members: the CLI's small application protocol on top of
//! meeting messages (docs/PROTOCOL.md, "CLI messages").
//!
//! A message whose first byte is not 0 is a line of text. A message starting with 0 is a
//! control frame: `0, 1, id u32, size u64, sha256 [32], name_len u16, name` offers a
//! file; `0, 2, id u32, offset u64, bytes` carries its bytes in order. Meeting messages
//! are reliable and ordered, so the receiver only checks that each piece starts where the
//! last ended, and the SHA-256 at the end.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use dhtmeet_core::meeting::signal::MemberId;
use sha2::{Digest, Sha256};

/// Bytes of a file per message.
pub(crate) const PIECE: usize = 256 * 1024;
/// The largest file accepted (a bound on what a peer can make us write).
pub(crate) const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024 * 1024;
/// Files being received at once, over all members.
pub(crate) const MAX_INCOMING: usize = 16;
const NAME_MAX: usize = 255;

/// One decoded message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    Text(&'a [u8]),
    Offer {
        id: u32,
        size: u64,
        sha256: [u8; 32],
        name: String,
    },
    Data {
        id: u32,
        offset: u64,
        bytes: &'a [u8],
    },
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("truncated control frame")]
    Truncated,
    #[error("unknown control frame kind {0}")]
    UnknownKind(u8),
    #[error("file name is not UTF-8")]
    BadName,
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Result<&'a [u8], FrameError> {
    if data.len() < n {
        return Err(FrameError::Truncated);
    }
    let (head, rest) = data.split_at(n);
    *data = rest;
    Ok(head)
}

fn take_u32(data: &mut &[u8]) -> Result<u32, FrameError> {
    let b = take(data, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn take_u64(data: &mut &[u8]) -> Result<u64, FrameError> {
    let mut a = [0u8; 8];
    a.copy_from_slice(take(data, 8)?);
    Ok(u64::from_be_bytes(a))
}

pub(crate) fn decode(message: &[u8]) -> Result<Frame<'_>, FrameError> {
    let [0, rest @ ..] = message else {
        return Ok(Frame::Text(message));
    };
    let mut data = rest;
    let kind = take(&mut data, 1)?[0];
    match kind {
        1 => {
            let id = take_u32(&mut data)?;
            let size = take_u64(&mut data)?;
            let mut sha256 = [0u8; 32];
            sha256.copy_from_slice(take(&mut data, 32)?);
            let len = take(&mut data, 2)?;
            let len = u16::from_be_bytes([len[0], len[1]]) as usize;
            let name = std::str::from_utf8(take(&mut data, len)?)
                .map_err(|_| FrameError::BadName)?
                .to_owned();
            Ok(Frame::Offer {
                id,
                size,
                sha256,
                name,
            })
        }
        2 => {
            let id = take_u32(&mut data)?;
            let offset = take_u64(&mut data)?;
            Ok(Frame::Data {
                id,
                offset,
                bytes: data,
            })
        }
        other => Err(FrameError::UnknownKind(other)),
    }
}

pub(crate) fn encode_offer(id: u32, size: u64, sha256: &[u8; 32], name: &str) -> Vec<u8> {
    let mut name = name;
    while name.len() > NAME_MAX {
        // Cut on a character boundary.
        let mut cut = NAME_MAX;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name = &name[..cut];
    }
    let mut out = Vec::with_capacity(2 + 4 + 8 + 32 + 2 + name.len());
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(sha256);
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out
}

pub(crate) fn encode_data(id: u32, offset: u64, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(14 + bytes.len());
    out.extend_from_slice(&[0, 2]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

/// A name a peer sent, made safe to create in our directory: the last path component,
/// no control characters, never hidden, never empty.
pub(crate) fn safe_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = last
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .trim_start_matches('.')
        .to_owned();
    if clean.is_empty() {
        "received-file".into()
    } else {
        clean
    }
}

/// The SHA-256 and length of a file, read once.
pub(crate) fn digest_file(path: &Path) -> io::Result<([u8; 32], u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; PIECE];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hasher.finalize().into(), len))
}

/// What became of an incoming file.
#[derive(Debug)]
pub(crate) enum Received {
    /// Some bytes arrived: progress.
    Progress { name: String, done: u64, size: u64 },
    /// Complete and verified: renamed to its final path.
    Done {
        path: PathBuf,
        size: u64,
        sha256: String,
    },
    /// Dropped (wrong checksum, bad order, disk error); the partial file is removed.
    Failed { name: String, reason: String },
}

struct Receiving {
    name: String,
    part: PathBuf,
    file: File,
    size: u64,
    done: u64,
    expected: [u8; 32],
    hasher: Sha256,
}

/// Files being received, written to `dir` as `NAME.part` and renamed when verified.
pub(crate) struct Incoming {
    dir: PathBuf,
    transfers: HashMap<(MemberId, u32), Receiving>,
}

impl Incoming {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Incoming {
            dir,
            transfers: HashMap::new(),
        }
    }

    pub(crate) fn offer(
        &mut self,
        from: MemberId,
        id: u32,
        size: u64,
        sha256: [u8; 32],
        name: &str,
    ) -> Received {
        let name = safe_name(name);
        let fail = |reason: String| Received::Failed {
            name: name.clone(),
            reason,
        };
        if size > MAX_FILE_SIZE {
            return fail(format!(
                "{size} bytes is over the {MAX_FILE_SIZE}-byte limit"
            ));
        }
        if self.transfers.len() >= MAX_INCOMING {
            return fail("too many files arriving at once".into());
        }
        if let Some(old) = self.transfers.remove(&(from, id)) {
            let _ = std::fs::remove_file(&old.part);
        }
        if let Err(e) = std::fs::create_dir_all(&self.dir) {
            return fail(format!("cannot create {}: {e}", self.dir.display()));
        }
        let part = self.dir.join(format!("{name}.{from}-{id}.part"));
        let file = match File::create(&part) {
            Ok(f) => f,
            Err(e) => return fail(format!("cannot create {}: {e}", part.display())),
        };
        let mut receiving = Receiving {
            name: name.clone(),
            part,
            file,
            size,
            done: 0,
            expected: sha256,
            hasher: Sha256::new(),
        };
        if size == 0 {
            return self.finish(&mut receiving);
        }
        self.transfers.insert((from, id), receiving);
        Received::Progress {
            name,
            done: 0,
            size,
        }
    }

    /// A piece of file `id` from `from`; `None` for a piece of no known file (dropped).
    pub(crate) fn data(
        &mut self,
        from: MemberId,
        id: u32,
        offset: u64,
        bytes: &[u8],
    ) -> Option<Received> {
        let mut r = self.transfers.remove(&(from, id))?;
        let fail = |r: &Receiving, reason: String| {
            let _ = std::fs::remove_file(&r.part);
            Received::Failed {
                name: r.name.clone(),
                reason,
            }
        };
        if offset != r.done || r.done + bytes.len() as u64 > r.size {
            return Some(fail(
                &r,
                format!("piece at {offset} does not follow {} (or overruns)", r.done),
            ));
        }
        if let Err(e) = r.file.write_all(bytes) {
            return Some(fail(&r, format!("cannot write: {e}")));
        }
        r.hasher.update(bytes);
        r.done += bytes.len() as u64;
        if r.done == r.size {
            return Some(self.finish(&mut r));
        }
        let progress = Received::Progress {
            name: r.name.clone(),
            done: r.done,
            size: r.size,
        };
        self.transfers.insert((from, id), r);
        Some(progress)
    }

    /// Forgets every file `from` was sending (it left): partial files are removed.
    pub(crate) fn abandon(&mut self, from: MemberId) {
        self.transfers.retain(|(m, _), r| {
            if *m == from {
                let _ = std::fs::remove_file(&r.part);
            }
            *m != from
        });
    }

    fn finish(&self, r: &mut Receiving) -> Received {
        let got: [u8; 32] = std::mem::take(&mut r.hasher).finalize().into();
        if got != r.expected || r.file.flush().and_then(|()| r.file.sync_all()).is_err() {
            let _ = std::fs::remove_file(&r.part);
            return Received::Failed {
                name: r.name.clone(),
                reason: format!(
                    "checksum mismatch: got {}, expected {}",
                    hex(&got),
                    hex(&r.expected)
                ),
            };
        }
        let path = free_path(&self.dir, &r.name);
        if let Err(e) = std::fs::rename(&r.part, &path) {
            let _ = std::fs::remove_file(&r.part);
            return Received::Failed {
                name: r.name.clone(),
                reason: format!("cannot rename to {}: {e}", path.display()),
            };
        }
        Received::Done {
            path,
            size: r.size,
            sha256: hex(&got),
        }
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

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_text_passes_through() {
        let sha = [7u8; 32];
        let offer = encode_offer(3, 1 << 40, &sha, "report.pdf");
        assert_eq!(
            decode(&offer).unwrap(),
            Frame::Offer {
                id: 3,
                size: 1 << 40,
                sha256: sha,
                name: "report.pdf".into()
            }
        );
        let data = encode_data(3, 99, b"abc");
        assert_eq!(
            decode(&data).unwrap(),
            Frame::Data {
                id: 3,
                offset: 99,
                bytes: b"abc"
            }
        );
        assert_eq!(decode(b"hello").unwrap(), Frame::Text(b"hello"));
        assert_eq!(decode(b"").unwrap(), Frame::Text(b""));
    }

    #[test]
    fn every_truncation_of_a_control_frame_is_an_error_not_a_panic() {
        let offer = encode_offer(1, 5, &[1; 32], "x");
        for cut in 1..offer.len() {
            assert!(decode(&offer[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(decode(&[0, 9]), Err(FrameError::UnknownKind(9)));
    }

    #[test]
    fn hostile_names_stay_inside_the_directory() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("..\\..\\x.txt"), "x.txt");
        assert_eq!(safe_name(".bashrc"), "bashrc");
        assert_eq!(safe_name(".."), "received-file");
        assert_eq!(safe_name("a\nb"), "ab");
        assert_eq!(safe_name(""), "received-file");
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dhtmeet-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_file_in_pieces_is_verified_and_renamed() {
        let dir = temp_dir("ok");
        let body: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let sha: [u8; 32] = Sha256::digest(&body).into();
        let from = MemberId([1; 8]);
        let mut inc = Incoming::new(dir.clone());
        inc.offer(from, 1, body.len() as u64, sha, "../data.bin");
        inc.data(from, 1, 0, &body[..600]).unwrap();
        let Some(Received::Done { path, size, .. }) = inc.data(from, 1, 600, &body[600..]) else {
            panic!("not done")
        };
        assert_eq!(size, 1000);
        assert_eq!(path, dir.join("data.bin"));
        assert_eq!(std::fs::read(&path).unwrap(), body);
        // A second file of the same name does not overwrite the first.
        inc.offer(from, 2, 0, Sha256::digest(b"").into(), "data.bin");
        assert!(dir.join("data.bin (2)").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupted_file_is_refused_and_removed() {
        let dir = temp_dir("bad");
        let from = MemberId([2; 8]);
        let mut inc = Incoming::new(dir.clone());
        inc.offer(from, 1, 3, [0; 32], "x");
        let r = inc.data(from, 1, 0, b"abc").unwrap();
        assert!(matches!(r, Received::Failed { .. }), "{r:?}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        // Out-of-order and unknown pieces.
        inc.offer(from, 2, 3, [0; 32], "y");
        assert!(matches!(
            inc.data(from, 2, 1, b"b"),
            Some(Received::Failed { .. })
        ));
        assert!(inc.data(from, 7, 0, b"a").is_none());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
