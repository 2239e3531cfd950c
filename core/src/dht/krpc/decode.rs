//! Decoding KRPC messages from bencode (on `bendy`). Being written: see the helper's task.

use super::Message;

/// What was wrong with a datagram that claimed to be KRPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// Not valid bencode, trailing bytes, or nesting too deep.
    #[error("malformed bencode")]
    Bencode,
    /// The top level is not a dictionary.
    #[error("not a dictionary")]
    NotADict,
    /// A required key is absent.
    #[error("missing key {0}")]
    MissingKey(&'static str),
    /// A key has the wrong bencode type.
    #[error("wrong type for key {0}")]
    WrongType(&'static str),
    /// A byte string has an invalid length (ids, compact infos, tokens, ports).
    #[error("invalid length for key {0}")]
    BadLength(&'static str),
    /// An integer is out of range (ports, error codes).
    #[error("integer out of range for key {0}")]
    OutOfRange(&'static str),
    /// `y` is not `q`, `r` or `e`.
    #[error("unknown message type")]
    UnknownMessageType,
}

/// A KRPC decoding failure, with what could be learned before it (so that a malformed
/// query can still be answered with error 203 under its transaction id).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct DecodeError {
    /// What was wrong.
    pub kind: DecodeErrorKind,
    /// The transaction id, if it was found and valid.
    pub transaction_id: Option<Vec<u8>>,
    /// Whether the message was a query (`y` = `q`).
    pub is_query: bool,
}

impl Message {
    /// Decodes one KRPC message that fills the whole datagram.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let _ = bytes;
        Err(DecodeError {
            kind: DecodeErrorKind::Bencode,
            transaction_id: None,
            is_query: false,
        })
    }
}
