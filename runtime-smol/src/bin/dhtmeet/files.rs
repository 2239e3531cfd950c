//! The file IO of `dhtmeet join` around the core's transfer protocol
//! (`dhtmeet_core::transfer`, docs/PROTOCOL.md "File transfer"): reading and hashing what
//! we send, writing, checking (SHA-256) and keeping what arrives.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use dhtmeet_core::meeting::signal::MemberId;
use dhtmeet_core::transfer::{
    CHUNK, FileName, Incoming, IncomingEvent, IncomingFile, Outgoing, OutgoingError, Received,
    Refused, TransferKey,
};
use dhtmeet_smol::NodeHandle;
use sha2::{Digest, Sha256};

mod part;

use part::PartFile;

/// What became of a file, for the person at the terminal.
#[derive(Debug)]
pub(crate) enum FileUpdate {
    /// Some bytes moved.
    Step { name: String, done: u64, size: u64 },
    /// Sent (handed to the node), or received, verified and renamed into place.
    Done {
        name: String,
        size: u64,
        path: Option<PathBuf>,
        sha256: String,
    },
    /// Given up.
    Failed { name: String, error: FileError },
}

/// Why a file did not make it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileError {
    #[error("{0}")]
    Refused(Refused),
    #[error("nothing came for too long")]
    Stalled,
    #[error("the sender left")]
    SenderLeft,
    #[error("checksum mismatch: got {got}, expected {expected}")]
    Checksum { got: String, expected: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: changed while sending: {source}", path.display())]
    Changed { path: PathBuf, source: io::Error },
    #[error(transparent)]
    TooLarge(#[from] OutgoingError),
    #[error("its partial file is gone (a bug)")]
    NoPartFile,
    #[error("the node did not take it: {0}")]
    Node(#[from] dhtmeet_core::webrtc::SendError),
}

/// What a member's message was.
pub(crate) enum Message<'a> {
    Text(&'a [u8]),
    File(FileUpdate),
    /// Malformed, or a piece of no file: logged and dropped.
    Nothing,
}

/// Files arriving, written to `dir` as `NAME.<sender>-<id>.part` and renamed when
/// their SHA-256 matches.
pub(crate) struct Inbox {
    dir: PathBuf,
    incoming: Incoming,
    parts: BTreeMap<TransferKey, PartFile>,
}

impl Inbox {
    /// An inbox over `dir`, first cleared of the partial files of receivers that died
    /// (returns how many were removed).
    pub(crate) fn open(dir: PathBuf) -> io::Result<(Inbox, usize)> {
        let removed = part::remove_stale(&dir)?;
        let inbox = Inbox {
            dir,
            incoming: Incoming::new(),
            parts: BTreeMap::new(),
        };
        Ok((inbox, removed))
    }

    pub(crate) fn handle_message<'a>(
        &mut self,
        now: Instant,
        from: MemberId,
        data: &'a [u8],
    ) -> Message<'a> {
        match self.incoming.handle_message(now, from, data) {
            Ok(Received::Text(text)) => Message::Text(text),
            Ok(Received::Offer(file)) => Message::File(self.offer(file)),
            Ok(Received::Chunk {
                key,
                bytes,
                done,
                size,
            }) => Message::File(self.chunk(key, bytes, done, size)),
            Err(e @ (Refused::Malformed { .. } | Refused::UnknownFile { .. })) => {
                tracing::debug!(%from, error = %e, "transfer message dropped");
                Message::Nothing
            }
            Err(e) => {
                let name = match (e.dropped().and_then(|k| self.drop_part(k)), &e) {
                    (Some(name), _) => name,
                    (None, Refused::TooLarge { name, .. } | Refused::Busy { name, .. }) => {
                        name.to_string()
                    }
                    (None, _) => "(refused name)".into(),
                };
                Message::File(FileUpdate::Failed {
                    name,
                    error: FileError::Refused(e),
                })
            }
        }
    }

    fn offer(&mut self, file: IncomingFile) -> FileUpdate {
        let name = file.name.to_string();
        match PartFile::create(&self.dir, &file) {
            Ok(part) if file.size == 0 => self.finish(part),
            Ok(part) => {
                self.parts.insert(file.key, part);
                FileUpdate::Step {
                    name,
                    done: 0,
                    size: file.size,
                }
            }
            Err(error) => {
                self.incoming.cancel(file.key);
                FileUpdate::Failed { name, error }
            }
        }
    }

    fn chunk(&mut self, key: TransferKey, bytes: &[u8], done: u64, size: u64) -> FileUpdate {
        let Some(part) = self.parts.get_mut(&key) else {
            // Every offer accepted has its partial file until the core forgets it.
            self.incoming.cancel(key);
            return FileUpdate::Failed {
                name: String::new(),
                error: FileError::NoPartFile,
            };
        };
        let name = part.name().to_string();
        if let Err(error) = part.write(bytes) {
            self.incoming.cancel(key);
            self.drop_part(key);
            return FileUpdate::Failed { name, error };
        }
        if done < size {
            return FileUpdate::Step { name, done, size };
        }
        match self.parts.remove(&key) {
            Some(part) => self.finish(part),
            None => FileUpdate::Step { name, done, size },
        }
    }

    fn finish(&self, part: PartFile) -> FileUpdate {
        let name = part.name().to_string();
        match part.keep(&self.dir) {
            Ok((path, size, sha256)) => FileUpdate::Done {
                name,
                size,
                path: Some(path),
                sha256: hex(&sha256),
            },
            Err(error) => FileUpdate::Failed { name, error },
        }
    }

    /// Removes the partial file of `key`; its name, if there was one.
    fn drop_part(&mut self, key: TransferKey) -> Option<String> {
        let part = self.parts.remove(&key)?;
        let name = part.name().to_string();
        part.remove();
        Some(name)
    }

    /// Files dropped since the last call (stalled, or their sender left).
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Vec<(MemberId, FileUpdate)> {
        self.incoming.handle_timeout(now);
        self.drain()
    }

    pub(crate) fn member_left(&mut self, member: MemberId) -> Vec<(MemberId, FileUpdate)> {
        self.incoming.member_left(member);
        self.drain()
    }

    fn drain(&mut self) -> Vec<(MemberId, FileUpdate)> {
        let mut out = Vec::new();
        while let Some(event) = self.incoming.poll_event() {
            let (key, name, error) = match event {
                IncomingEvent::Stalled { key, name } => (key, name, FileError::Stalled),
                IncomingEvent::SenderLeft { key, name } => (key, name, FileError::SenderLeft),
            };
            self.drop_part(key);
            let name = name.to_string();
            out.push((key.member, FileUpdate::Failed { name, error }));
        }
        out
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.incoming.poll_timeout()
    }
}

/// The SHA-256 and length of a file, read once.
pub(crate) fn digest_file(path: &Path) -> io::Result<([u8; 32], u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
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

/// Sends `path` to `member` as file `id`, each piece as soon as the node takes the last
/// one; `progress` hears of every piece. Returns the size sent.
pub(crate) async fn send_file(
    node: &NodeHandle,
    member: MemberId,
    path: &Path,
    id: u32,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, FileError> {
    let io = |source| FileError::Io {
        path: path.to_owned(),
        source,
    };
    let p = path.to_owned();
    let (sha256, size) = smol::unblock(move || digest_file(&p)).await.map_err(io)?;
    let local_name = path
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy().into_owned());
    let mut out = Outgoing::new(id, FileName::sanitize(&local_name), size, sha256)?;
    node.send(&member, &out.offer()).await?;
    let mut file = File::open(path).map_err(io)?;
    while let Some(mut chunk) = out.next_chunk() {
        file.read_exact(chunk.payload_mut())
            .map_err(|source| FileError::Changed {
                path: path.to_owned(),
                source,
            })?;
        node.send(&member, &chunk.into_message()).await?;
        progress(out.handed_out(), size);
    }
    Ok(size)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
