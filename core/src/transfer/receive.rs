//! [`Incoming`]: the files arriving from every member.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use super::wire::{self, Frame, FrameError};
use super::{
    CHUNK, FileName, MAX_FILE_SIZE, MAX_INCOMING, MAX_INCOMING_PER_MEMBER, NameError,
    STALL_TIMEOUT, TransferKey,
};
use crate::meeting::signal::MemberId;

/// Events kept for [`Incoming::poll_event`] when the caller does not drain them.
pub const MAX_EVENTS: usize = 4 * MAX_INCOMING;

/// The files arriving from every member, checked message by message. The caller
/// writes the bytes ([`Received::Chunk`]), checks the SHA-256 when the last one came
/// and keeps the file; refusals say which file to drop.
///
/// Inputs: [`Incoming::handle_message`] for every message a member sent,
/// [`Incoming::handle_timeout`], [`Incoming::member_left`], [`Incoming::cancel`].
/// Outputs: what `handle_message` returns, then [`Incoming::poll_event`] until `None`
/// after every input (failures no message caused: a stall, a member gone), and
/// [`Incoming::poll_timeout`].
///
/// Bounds: [`MAX_INCOMING`] files at once, [`MAX_INCOMING_PER_MEMBER`] from one member,
/// [`CHUNK`] bytes per piece, [`MAX_FILE_SIZE`] per file, names of
/// [`super::NAME_MAX`] bytes; a file silent for [`STALL_TIMEOUT`] is dropped; at most
/// [`MAX_EVENTS`] events wait to be polled (the oldest go first).
#[derive(Debug, Default)]
pub struct Incoming {
    files: BTreeMap<TransferKey, Arriving>,
    events: VecDeque<IncomingEvent>,
    stats: IncomingStats,
}

#[derive(Debug)]
struct Arriving {
    name: FileName,
    size: u64,
    done: u64,
    last_heard: Instant,
}

/// A file a member offered and that is now arriving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingFile {
    /// Who sends it, and its id.
    pub key: TransferKey,
    /// Its name: safe to create in a directory.
    pub name: FileName,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, as the sender says: the caller checks it at the end.
    pub sha256: [u8; 32],
}

/// What a message was.
#[derive(Debug, PartialEq, Eq)]
pub enum Received<'a> {
    /// Not a transfer message: the application's (a line of text).
    Text(&'a [u8]),
    /// A file is coming: make room for it. One of 0 bytes is complete at once.
    Offer(IncomingFile),
    /// The next bytes of a file: write them after the last ones. When `done == size`
    /// the file is complete (and forgotten here): check its SHA-256 and keep it.
    Chunk {
        /// Which file.
        key: TransferKey,
        /// The bytes.
        bytes: &'a [u8],
        /// Bytes received so far, these included.
        done: u64,
        /// The file's size.
        size: u64,
    },
}

/// A message refused. When [`Refused::dropped`] names a file, that file is no longer
/// arriving: drop what was written of it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not a well-formed transfer message.
    #[error("malformed transfer message from {from}: {error}")]
    Malformed {
        /// Who sent it.
        from: MemberId,
        /// What is wrong.
        error: FrameError,
    },
    /// An offer whose name could leave the directory or hide the file.
    #[error("file name refused: {error}")]
    BadName {
        /// The offer's sender and id.
        key: TransferKey,
        /// What is wrong with the name.
        error: NameError,
    },
    /// An offer of a file larger than [`MAX_FILE_SIZE`].
    #[error("{name}: {size} bytes is over the {MAX_FILE_SIZE}-byte limit")]
    TooLarge {
        /// The offer's sender and id.
        key: TransferKey,
        /// The file's name.
        name: FileName,
        /// The size offered.
        size: u64,
    },
    /// [`MAX_INCOMING`] files already arriving, or [`MAX_INCOMING_PER_MEMBER`] from
    /// this member.
    #[error("{name}: too many files arriving at once")]
    Busy {
        /// The offer's sender and id.
        key: TransferKey,
        /// The file's name.
        name: FileName,
    },
    /// An offer with the id of a file still arriving: both are dropped.
    #[error("{name}: offered again while arriving")]
    DuplicateId {
        /// The sender and id.
        key: TransferKey,
        /// The name of the file that was arriving.
        name: FileName,
    },
    /// A piece of no file arriving (never offered, refused, dropped or complete).
    #[error("a piece of no file being received")]
    UnknownFile {
        /// The sender and the id it used.
        key: TransferKey,
    },
    /// A piece that does not start where the last one ended (messages are ordered, so
    /// the sender is broken): the file is dropped.
    #[error("{name}: piece at {offset} does not follow byte {expected}")]
    OutOfOrder {
        /// The file.
        key: TransferKey,
        /// Its name.
        name: FileName,
        /// Where the piece starts.
        offset: u64,
        /// Where it should have.
        expected: u64,
    },
    /// A piece that goes past the size offered (the size lied): the file is dropped.
    #[error("{name}: more bytes than the {size} offered")]
    Overrun {
        /// The file.
        key: TransferKey,
        /// Its name.
        name: FileName,
        /// The size offered.
        size: u64,
    },
    /// A piece of more than [`CHUNK`] bytes: the file is dropped.
    #[error("{name}: a piece of {len} bytes, over the {CHUNK}-byte limit")]
    ChunkTooLarge {
        /// The file.
        key: TransferKey,
        /// Its name.
        name: FileName,
        /// The piece's length.
        len: usize,
    },
}

impl Refused {
    /// The file that was arriving and is now dropped, if any: remove what was written.
    pub fn dropped(&self) -> Option<TransferKey> {
        match self {
            Refused::DuplicateId { key, .. }
            | Refused::OutOfOrder { key, .. }
            | Refused::Overrun { key, .. }
            | Refused::ChunkTooLarge { key, .. } => Some(*key),
            _ => None,
        }
    }
}

/// A file that stopped arriving without a message saying so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncomingEvent {
    /// Nothing came for [`STALL_TIMEOUT`]: dropped.
    Stalled {
        /// The file.
        key: TransferKey,
        /// Its name.
        name: FileName,
    },
    /// Its sender left the meeting: dropped.
    SenderLeft {
        /// The file.
        key: TransferKey,
        /// Its name.
        name: FileName,
    },
}

/// Counters of what [`Incoming`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IncomingStats {
    /// Offers accepted.
    pub offers: u64,
    /// Files whose last byte arrived.
    pub complete: u64,
    /// File bytes accepted.
    pub bytes: u64,
    /// Messages refused as malformed.
    pub malformed: u64,
    /// Offers refused: bad name, too large, busy, duplicate id.
    pub offers_refused: u64,
    /// Pieces refused: unknown file, out of order, overrun, too large.
    pub pieces_refused: u64,
    /// Files dropped because nothing came for [`STALL_TIMEOUT`].
    pub stalled: u64,
}

impl Incoming {
    /// No file arriving.
    pub fn new() -> Incoming {
        Incoming::default()
    }

    /// A message `from` sent: text for the application, or a step of a file.
    pub fn handle_message<'a>(
        &mut self,
        now: Instant,
        from: MemberId,
        message: &'a [u8],
    ) -> Result<Received<'a>, Refused> {
        let frame = wire::decode(message).map_err(|error| {
            self.stats.malformed += 1;
            Refused::Malformed { from, error }
        });
        let result = match frame? {
            Frame::Text(text) => return Ok(Received::Text(text)),
            Frame::Offer {
                id,
                size,
                sha256,
                name,
            } => self.offer(now, TransferKey { member: from, id }, size, sha256, name),
            Frame::Data { id, offset, bytes } => {
                self.data(now, TransferKey { member: from, id }, offset, bytes)
            }
        };
        if let Err(e) = &result {
            match e {
                Refused::Malformed { .. } => {}
                Refused::BadName { .. }
                | Refused::TooLarge { .. }
                | Refused::Busy { .. }
                | Refused::DuplicateId { .. } => self.stats.offers_refused += 1,
                _ => self.stats.pieces_refused += 1,
            }
        }
        result
    }

    fn offer<'a>(
        &mut self,
        now: Instant,
        key: TransferKey,
        size: u64,
        sha256: [u8; 32],
        name: &str,
    ) -> Result<Received<'a>, Refused> {
        let name = FileName::parse(name).map_err(|error| Refused::BadName { key, error })?;
        if let Some(old) = self.files.remove(&key) {
            return Err(Refused::DuplicateId {
                key,
                name: old.name,
            });
        }
        if size > MAX_FILE_SIZE {
            return Err(Refused::TooLarge { key, name, size });
        }
        let from_member = self.files.keys().filter(|k| k.member == key.member).count();
        if self.files.len() >= MAX_INCOMING || from_member >= MAX_INCOMING_PER_MEMBER {
            return Err(Refused::Busy { key, name });
        }
        self.stats.offers += 1;
        if size == 0 {
            self.stats.complete += 1;
        } else {
            let arriving = Arriving {
                name: name.clone(),
                size,
                done: 0,
                last_heard: now,
            };
            self.files.insert(key, arriving);
        }
        Ok(Received::Offer(IncomingFile {
            key,
            name,
            size,
            sha256,
        }))
    }

    fn data<'a>(
        &mut self,
        now: Instant,
        key: TransferKey,
        offset: u64,
        bytes: &'a [u8],
    ) -> Result<Received<'a>, Refused> {
        let Some(file) = self.files.get_mut(&key) else {
            return Err(Refused::UnknownFile { key });
        };
        let refusal = if bytes.len() > CHUNK {
            Some(Refused::ChunkTooLarge {
                key,
                name: file.name.clone(),
                len: bytes.len(),
            })
        } else if offset != file.done {
            Some(Refused::OutOfOrder {
                key,
                name: file.name.clone(),
                offset,
                expected: file.done,
            })
        } else if file.size - file.done < bytes.len() as u64 {
            Some(Refused::Overrun {
                key,
                name: file.name.clone(),
                size: file.size,
            })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            self.files.remove(&key);
            return Err(refusal);
        }
        file.done += bytes.len() as u64;
        file.last_heard = now;
        let (done, size) = (file.done, file.size);
        self.stats.bytes += bytes.len() as u64;
        if done == size {
            self.files.remove(&key);
            self.stats.complete += 1;
        }
        Ok(Received::Chunk {
            key,
            bytes,
            done,
            size,
        })
    }

    /// Drops the files nothing came for in [`STALL_TIMEOUT`] ([`IncomingEvent::Stalled`]);
    /// safe to call at any time.
    pub fn handle_timeout(&mut self, now: Instant) {
        let stalled: Vec<TransferKey> = self
            .files
            .iter()
            .filter(|(_, f)| now.saturating_duration_since(f.last_heard) >= STALL_TIMEOUT)
            .map(|(k, _)| *k)
            .collect();
        for key in stalled {
            if let Some(file) = self.files.remove(&key) {
                self.stats.stalled += 1;
                self.push_event(IncomingEvent::Stalled {
                    key,
                    name: file.name,
                });
            }
        }
    }

    /// When [`Incoming::handle_timeout`] next has something to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.files
            .values()
            .map(|f| f.last_heard + STALL_TIMEOUT)
            .min()
    }

    /// `member` left the meeting: its files are dropped ([`IncomingEvent::SenderLeft`]).
    pub fn member_left(&mut self, member: MemberId) {
        let keys: Vec<TransferKey> = self
            .files
            .keys()
            .filter(|k| k.member == member)
            .copied()
            .collect();
        for key in keys {
            if let Some(file) = self.files.remove(&key) {
                self.push_event(IncomingEvent::SenderLeft {
                    key,
                    name: file.name,
                });
            }
        }
    }

    fn push_event(&mut self, event: IncomingEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// The caller gave up on a file (its disk is full, say): it is forgotten, and its
    /// later pieces are refused as [`Refused::UnknownFile`].
    pub fn cancel(&mut self, key: TransferKey) {
        self.files.remove(&key);
    }

    /// The next file that stopped arriving without a message saying so.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<IncomingEvent> {
        self.events.pop_front()
    }

    /// Files arriving now.
    pub fn arriving(&self) -> usize {
        self.files.len()
    }

    /// What was seen so far.
    pub fn stats(&self) -> IncomingStats {
        self.stats
    }
}
