//! The receive path: frames (or, on a plain channel, whole SCTP messages) in,
//! application messages out, with the counters of what the application received.

use super::framing::{
    FRAME_MAX, FramingError, MAX_MESSAGE_SIZE, TAG_FIRST, TAG_LAST, TAG_MIDDLE, TAG_WHOLE,
};
use super::send::MESSAGE_LEAD;

/// Everything between str0m's channel data and a `SessionEvent::Message`.
#[derive(Debug, Default)]
pub(super) struct ReceivePath {
    reassembly: Reassembly,
    /// One SCTP message is one application message (a plain channel), not a frame.
    plain: bool,
    messages_received: u64,
    bytes_received: u64,
    malformed_frames: u64,
}

impl ReceivePath {
    pub fn set_plain(&mut self, plain: bool) {
        self.plain = plain;
    }

    /// Takes one SCTP message of the channel; returns an application message when one
    /// is complete, with how many bytes in front of it are the frame's (see
    /// `MESSAGE_LEAD`; 0 on a plain channel or for a reassembled message). A frame that
    /// breaks the framing is counted and dropped.
    ///
    /// A whole frame (the common case) is the message behind its tag: kept as it is, so
    /// the layer that takes the message strips its own header and the tag in one go.
    pub fn on_data(&mut self, data: Vec<u8>) -> Option<(Vec<u8>, usize)> {
        let (message, lead) = if self.plain {
            (data, 0)
        } else if data.first() == Some(&TAG_WHOLE) && self.reassembly.partial.is_none() {
            (data, MESSAGE_LEAD)
        } else {
            match self.reassembly.push(data) {
                Ok(Some(message)) => (message, 0),
                Ok(None) => return None,
                Err(
                    FramingError::BadTag
                    | FramingError::Truncated
                    | FramingError::TooLarge
                    | FramingError::OutOfSequence,
                ) => {
                    self.malformed_frames += 1;
                    return None;
                }
            }
        };
        self.messages_received += 1;
        self.bytes_received += (message.len() - lead) as u64;
        Some((message, lead))
    }

    /// Bytes held for a partial message.
    pub fn buffered(&self) -> usize {
        self.reassembly.buffered()
    }

    /// Messages and payload bytes received, and malformed frames dropped.
    pub fn counters(&self) -> (u64, u64, u64) {
        (
            self.messages_received,
            self.bytes_received,
            self.malformed_frames,
        )
    }
}

/// Reassembles frames into messages; holds at most one partial message, of at most
/// [`MAX_MESSAGE_SIZE`] bytes.
#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    partial: Option<(usize, Vec<u8>)>,
}

impl Reassembly {
    /// Bytes held for a partial message.
    pub fn buffered(&self) -> usize {
        self.partial.as_ref().map_or(0, |(_, b)| b.len())
    }

    /// Takes one frame; returns a message when one is complete. On an error the partial
    /// message (if any) is dropped, so the next well-formed message starts clean.
    pub fn push(&mut self, mut frame: Vec<u8>) -> Result<Option<Vec<u8>>, FramingError> {
        let Some(&tag) = frame.first() else {
            self.partial = None;
            return Err(FramingError::BadTag);
        };
        match (tag, self.partial.take()) {
            (TAG_WHOLE, None) => {
                frame.remove(0);
                Ok(Some(frame))
            }
            (TAG_FIRST, None) => {
                let Some(len) = frame.get(1..5) else {
                    return Err(FramingError::Truncated);
                };
                let mut len_bytes = [0u8; 4];
                len_bytes.copy_from_slice(len);
                let total = u32::from_be_bytes(len_bytes) as usize;
                let body = &frame[5..];
                if total > MAX_MESSAGE_SIZE {
                    return Err(FramingError::TooLarge);
                }
                if body.len() >= total {
                    return Err(FramingError::OutOfSequence);
                }
                // Grow as parts arrive rather than trusting the announced total at once.
                let mut buf = Vec::with_capacity(total.min(4 * FRAME_MAX));
                buf.extend_from_slice(body);
                self.partial = Some((total, buf));
                Ok(None)
            }
            (TAG_MIDDLE | TAG_LAST, Some((total, mut buf))) => {
                let body = &frame[1..];
                let len = buf.len() + body.len();
                let last = tag == TAG_LAST;
                if len > total || (last && len != total) || (!last && len == total) {
                    return Err(FramingError::OutOfSequence);
                }
                buf.extend_from_slice(body);
                if last {
                    Ok(Some(buf))
                } else {
                    self.partial = Some((total, buf));
                    Ok(None)
                }
            }
            (TAG_WHOLE | TAG_FIRST | TAG_MIDDLE | TAG_LAST, _) => Err(FramingError::OutOfSequence),
            _ => Err(FramingError::BadTag),
        }
    }
}
