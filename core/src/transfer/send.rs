//! [`Outgoing`]: one file on its way to one member.

use super::wire::{self, DATA_HEADER};
use super::{CHUNK, FileName, MAX_FILE_SIZE};

/// One file being sent to one member: the offer, then its bytes in order, [`CHUNK`]
/// bytes per message. The caller reads the file: [`Outgoing::next_chunk`] says where
/// and how much, and the caller fills the chunk's payload and sends the message with
/// `Node::send` (whose back-pressure paces the file).
///
/// ```
/// use dhtmeet_core::transfer::{FileName, Outgoing};
///
/// let file = b"hello, file";
/// let sha256 = [0u8; 32]; // the caller hashes the file (SHA-256)
/// let mut out = Outgoing::new(1, FileName::sanitize("notes.txt"), file.len() as u64, sha256)
///     .unwrap();
/// let mut messages = vec![out.offer()];
/// while let Some(mut chunk) = out.next_chunk() {
///     let at = chunk.offset() as usize;
///     let len = chunk.payload_mut().len();
///     chunk.payload_mut().copy_from_slice(&file[at..at + len]);
///     messages.push(chunk.into_message());
/// }
/// assert!(out.is_complete());
/// assert_eq!(messages.len(), 2); // to send, in order, with Node::send
/// ```
#[derive(Debug)]
pub struct Outgoing {
    id: u32,
    name: FileName,
    size: u64,
    sha256: [u8; 32],
    /// Bytes handed out in chunks so far.
    handed_out: u64,
}

/// Why a file cannot be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutgoingError {
    /// Larger than any receiver accepts.
    #[error("{size} bytes is over the {MAX_FILE_SIZE}-byte limit")]
    TooLarge {
        /// The file's size.
        size: u64,
    },
}

/// The next piece of a file: a message whose payload the caller fills with the file's
/// bytes from [`Chunk::offset`], then sends ([`Chunk::into_message`]).
#[derive(Debug)]
pub struct Chunk {
    offset: u64,
    message: Vec<u8>,
}

impl Chunk {
    /// Where the payload starts in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The payload to fill, exactly as long as the piece.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.message[DATA_HEADER..]
    }

    /// The message to send.
    pub fn into_message(self) -> Vec<u8> {
        self.message
    }
}

impl Outgoing {
    /// A file to send: `id` is unique among the files this node sends while it runs
    /// (a counter), `size` and `sha256` are the file's (the receiver checks both).
    pub fn new(
        id: u32,
        name: FileName,
        size: u64,
        sha256: [u8; 32],
    ) -> Result<Outgoing, OutgoingError> {
        if size > MAX_FILE_SIZE {
            return Err(OutgoingError::TooLarge { size });
        }
        Ok(Outgoing {
            id,
            name,
            size,
            sha256,
            handed_out: 0,
        })
    }

    /// The offer: the first message to send, before any chunk.
    pub fn offer(&self) -> Vec<u8> {
        wire::encode_offer(self.id, self.size, &self.sha256, &self.name)
    }

    /// The next piece, in order; `None` once every byte was handed out.
    #[must_use]
    pub fn next_chunk(&mut self) -> Option<Chunk> {
        let left = self.size - self.handed_out;
        if left == 0 {
            return None;
        }
        // At most CHUNK (256 KiB), so it fits a usize everywhere.
        let len = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
        let mut message = Vec::with_capacity(DATA_HEADER + len);
        message.extend_from_slice(&wire::data_header(self.id, self.handed_out));
        message.resize(DATA_HEADER + len, 0);
        let chunk = Chunk {
            offset: self.handed_out,
            message,
        };
        self.handed_out += len as u64;
        Some(chunk)
    }

    /// The id of this file.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The name offered.
    pub fn name(&self) -> &FileName {
        &self.name
    }

    /// The file's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes handed out in chunks so far.
    pub fn handed_out(&self) -> u64 {
        self.handed_out
    }

    /// Every byte was handed out.
    pub fn is_complete(&self) -> bool {
        self.handed_out == self.size
    }
}
