//! The transfer messages as bytes (`docs/PROTOCOL.md`, "File transfer"): a message whose
//! first byte is not 0 is text; `0, 1, id u32, size u64, sha256 [32], name_len u16,
//! name` offers a file; `0, 2, id u32, offset u64, bytes` carries a piece of it. Big
//! endian throughout. Decoding is purely syntactic: what the fields may hold is the
//! receiver's business ([`super::Incoming`]).

use super::FileName;

/// The first byte of every transfer message (a text message never starts with it).
pub const CONTROL: u8 = 0;
/// The kind byte of an offer.
pub const KIND_OFFER: u8 = 1;
/// The kind byte of a piece of a file.
pub const KIND_DATA: u8 = 2;
/// The bytes before a piece's payload: `0, 2, id, offset`.
pub const DATA_HEADER: usize = 2 + 4 + 8;
/// The bytes of an offer before its name.
pub const OFFER_HEADER: usize = 2 + 4 + 8 + 32 + 2;

/// One decoded message, borrowing from its bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Not a transfer message: a line of text, for the application.
    Text(&'a [u8]),
    /// A file is coming.
    Offer {
        /// The sender's id for it.
        id: u32,
        /// Its length in bytes, as the sender says.
        size: u64,
        /// Its SHA-256, as the sender says.
        sha256: [u8; 32],
        /// Its name, unchecked.
        name: &'a str,
    },
    /// A piece of a file.
    Data {
        /// The sender's id for the file.
        id: u32,
        /// Where the piece starts in the file.
        offset: u64,
        /// The piece.
        bytes: &'a [u8],
    },
}

/// Why bytes are not a transfer message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Shorter than its fields.
    #[error("truncated transfer message")]
    Truncated,
    /// An offer whose bytes go on after its name.
    #[error("bytes after an offer's name")]
    TrailingBytes,
    /// A kind this version does not know.
    #[error("unknown transfer message kind {0}")]
    UnknownKind(u8),
    /// The name is not UTF-8.
    #[error("file name is not UTF-8")]
    NameNotUtf8,
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Result<&'a [u8], FrameError> {
    if data.len() < n {
        return Err(FrameError::Truncated);
    }
    let (head, rest) = data.split_at(n);
    *data = rest;
    Ok(head)
}

fn take_array<const N: usize>(data: &mut &[u8]) -> Result<[u8; N], FrameError> {
    let mut a = [0u8; N];
    a.copy_from_slice(take(data, N)?);
    Ok(a)
}

/// Reads one message; never panics, whatever the bytes.
pub fn decode(message: &[u8]) -> Result<Frame<'_>, FrameError> {
    let [CONTROL, rest @ ..] = message else {
        return Ok(Frame::Text(message));
    };
    let mut data = rest;
    let [kind] = take_array(&mut data)?;
    match kind {
        KIND_OFFER => {
            let id = u32::from_be_bytes(take_array(&mut data)?);
            let size = u64::from_be_bytes(take_array(&mut data)?);
            let sha256 = take_array(&mut data)?;
            let len = u16::from_be_bytes(take_array(&mut data)?);
            let name = std::str::from_utf8(take(&mut data, usize::from(len))?)
                .map_err(|_| FrameError::NameNotUtf8)?;
            if !data.is_empty() {
                return Err(FrameError::TrailingBytes);
            }
            Ok(Frame::Offer {
                id,
                size,
                sha256,
                name,
            })
        }
        KIND_DATA => {
            let id = u32::from_be_bytes(take_array(&mut data)?);
            let offset = u64::from_be_bytes(take_array(&mut data)?);
            Ok(Frame::Data {
                id,
                offset,
                bytes: data,
            })
        }
        other => Err(FrameError::UnknownKind(other)),
    }
}

/// An offer of file `id`.
pub fn encode_offer(id: u32, size: u64, sha256: &[u8; 32], name: &FileName) -> Vec<u8> {
    let name = name.as_str().as_bytes();
    // A FileName is at most NAME_MAX (255) bytes, so its length fits a u16.
    let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(OFFER_HEADER + name.len());
    out.extend_from_slice(&[CONTROL, KIND_OFFER]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(sha256);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(name);
    out
}

/// The header of a piece of file `id` at `offset`; the payload follows it.
pub fn data_header(id: u32, offset: u64) -> [u8; DATA_HEADER] {
    let mut out = [0u8; DATA_HEADER];
    out[..2].copy_from_slice(&[CONTROL, KIND_DATA]);
    out[2..6].copy_from_slice(&id.to_be_bytes());
    out[6..].copy_from_slice(&offset.to_be_bytes());
    out
}

/// A piece of file `id` at `offset`.
pub fn encode_data(id: u32, offset: u64, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DATA_HEADER + bytes.len());
    out.extend_from_slice(&data_header(id, offset));
    out.extend_from_slice(bytes);
    out
}
