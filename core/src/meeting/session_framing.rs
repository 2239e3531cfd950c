//! Messages of any size over one data channel: frames no larger than the SCTP message
//! limit, and their reassembly.
//!
//! Each SCTP message on the channel is one frame: a one-byte tag, then
//!
//! | tag | name   | body                                             |
//! |-----|--------|--------------------------------------------------|
//! | 0   | whole  | the entire message                               |
//! | 1   | first  | u32 big-endian total length, then the first part |
//! | 2   | middle | the next part                                    |
//! | 3   | last   | the final part                                   |
//!
//! The channel is reliable and ordered, so the parts of one message arrive in order
//! and never interleave with another message. A frame is at most [`FRAME_MAX`] bytes:
//! str0m assumes 64 KiB for a peer's maximum message size when no SDP says otherwise.

use std::collections::VecDeque;

/// The largest frame (one SCTP message), header included.
pub const FRAME_MAX: usize = 64 * 1024;

/// The smallest frame a sender cuts to fit its SCTP budget (see `Session::write_frames`):
/// below this it waits for acknowledgements instead of writing ever smaller frames.
pub(crate) const MIN_SPLIT_FRAME: usize = 8 * 1024;
const _: () = assert!(MIN_SPLIT_FRAME > 5 && MIN_SPLIT_FRAME <= FRAME_MAX);

/// The largest application message a session sends or accepts (16 MiB).
pub const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

const TAG_WHOLE: u8 = 0;
const TAG_FIRST: u8 = 1;
const TAG_MIDDLE: u8 = 2;
const TAG_LAST: u8 = 3;

/// Why a received frame was dropped (a peer bug or a hostile member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The frame was empty, or its tag is unknown.
    #[error("unknown or missing frame tag")]
    BadTag,
    /// A first frame shorter than its length field.
    #[error("truncated first frame")]
    Truncated,
    /// A message announced larger than [`MAX_MESSAGE_SIZE`].
    #[error("announced message exceeds the size bound")]
    TooLarge,
    /// A continuation without a first frame, a new message inside another, or parts
    /// that do not add up to the announced length.
    #[error("frames out of sequence")]
    OutOfSequence,
}

/// The outgoing messages not yet handed to SCTP, bounded by the session's queue limit.
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    messages: VecDeque<Vec<u8>>,
    /// Per message: sent as binary (`true`) or as text. Only plain channels (see
    /// `MessageMode::Plain`) keep the distinction on the wire; frames are always binary.
    binary: VecDeque<bool>,
    /// How much of the front message has already been framed and written.
    offset: usize,
    /// Bytes not yet framed, over all queued messages.
    queued: usize,
}

impl SendQueue {
    /// Bytes waiting to be framed.
    pub fn queued_bytes(&self) -> usize {
        self.queued
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    #[cfg(test)]
    pub fn push(&mut self, message: Vec<u8>) {
        self.push_kind(message, true);
    }

    /// Queues a message, binary or text.
    pub fn push_kind(&mut self, message: Vec<u8>, binary: bool) {
        self.queued += message.len();
        self.messages.push_back(message);
        self.binary.push_back(binary);
    }

    /// The front message, unframed, and whether it is binary (plain channels).
    pub fn front(&self) -> Option<(&[u8], bool)> {
        let m = self.messages.front()?;
        Some((m, self.binary.front().copied().unwrap_or(true)))
    }

    /// Takes the front message off the queue whole (plain channels).
    pub fn pop_front(&mut self) {
        if let Some(m) = self.messages.pop_front() {
            self.queued = self.queued.saturating_sub(m.len());
            self.binary.pop_front();
            self.offset = 0;
        }
    }

    /// The length of the next frame if it may be at most `max` bytes (header included;
    /// `max` is capped at [`FRAME_MAX`] and must be at least [`MIN_SPLIT_FRAME`]);
    /// `None` if nothing is queued.
    pub fn next_frame_len(&self, max: usize) -> Option<usize> {
        let max = max.clamp(MIN_SPLIT_FRAME, FRAME_MAX);
        // A whole or last frame is the tag and the rest; a first or middle frame is full.
        let rest = self.messages.front()?.len() - self.offset;
        Some((rest + 1).min(max))
    }

    /// Writes the next frame, at most `max` bytes (as in [`SendQueue::next_frame_len`]),
    /// into `frame` (cleared first) and returns the length of the message part it
    /// carries; `None` if nothing is queued. The part is only taken off the queue by
    /// [`SendQueue::advance`], once SCTP has accepted the frame.
    ///
    /// Frames are cut where the room is: the receiver only checks that the parts add
    /// up to the announced length, so a sender may size each frame to what its SCTP
    /// budget has left (see `Session::write_frames`).
    pub fn next_frame(&self, frame: &mut Vec<u8>, max: usize) -> Option<usize> {
        let max = max.clamp(MIN_SPLIT_FRAME, FRAME_MAX);
        frame.clear();
        let message = self.messages.front()?;
        let rest = &message[self.offset..];
        let fits = rest.len() < max;
        let (tag, body) = match (self.offset == 0, fits) {
            (true, true) => (TAG_WHOLE, rest),
            // The first part is shorter than the message (max - 5 < rest.len()).
            (true, false) => (TAG_FIRST, &rest[..max - 5]),
            (false, true) => (TAG_LAST, rest),
            (false, false) => (TAG_MIDDLE, &rest[..max - 1]),
        };
        frame.push(tag);
        if tag == TAG_FIRST {
            // `send` bounds messages to MAX_MESSAGE_SIZE < 4 GiB: this never truncates.
            frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
        }
        frame.extend_from_slice(body);
        Some(body.len())
    }

    /// The frame last built by `next_frame`, carrying `body` bytes of the front message,
    /// was accepted. Returns `true` if that completed a message.
    pub fn advance(&mut self, body: usize) -> bool {
        self.offset += body;
        self.queued = self.queued.saturating_sub(body);
        let done = self
            .messages
            .front()
            .is_some_and(|m| self.offset >= m.len());
        if done {
            self.messages.pop_front();
            self.binary.pop_front();
            self.offset = 0;
        }
        done
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames `messages` with frame limits taken in turn from `limits`, reassembles them.
    fn round_trip(messages: &[Vec<u8>], limits: &[usize]) -> Vec<Vec<u8>> {
        let mut queue = SendQueue::default();
        for m in messages {
            queue.push(m.clone());
        }
        let mut out = Vec::new();
        let mut rx = Reassembly::default();
        let mut frame = Vec::new();
        let mut limits = limits.iter().copied().cycle();
        loop {
            let max = limits.next().unwrap_or(FRAME_MAX);
            let Some(len) = queue.next_frame_len(max) else {
                break;
            };
            let body = queue.next_frame(&mut frame, max).unwrap();
            assert_eq!(frame.len(), len);
            assert!(frame.len() <= max.clamp(MIN_SPLIT_FRAME, FRAME_MAX));
            queue.advance(body);
            if let Some(m) = rx.push(frame.clone()).unwrap() {
                out.push(m);
            }
        }
        assert_eq!(queue.queued_bytes(), 0);
        assert_eq!(queue.next_frame_len(FRAME_MAX), None);
        assert_eq!(rx.buffered(), 0);
        out
    }

    #[test]
    fn messages_of_every_boundary_size_round_trip() {
        let sizes = [
            0,
            1,
            FRAME_MAX - 2,
            FRAME_MAX - 1,
            FRAME_MAX,
            FRAME_MAX + 1,
            2 * FRAME_MAX - 6,
            2 * FRAME_MAX - 5,
            2 * FRAME_MAX - 4,
            3 * FRAME_MAX + 17,
            300_000,
        ];
        let messages: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (j * 31 + i) as u8).collect())
            .collect();
        assert_eq!(round_trip(&messages, &[FRAME_MAX]), messages);
    }

    /// A sender cuts frames to whatever room its SCTP budget has (down to
    /// MIN_SPLIT_FRAME); limits outside the range are clamped. Every message survives
    /// whatever the sequence of limits.
    #[test]
    fn frames_cut_to_any_room_reassemble() {
        let sizes = [
            0,
            1,
            5,
            MIN_SPLIT_FRAME - 1,
            MIN_SPLIT_FRAME,
            FRAME_MAX + 9,
            300_000,
        ];
        let messages: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (j * 7 + i) as u8).collect())
            .collect();
        let limits = [
            0,
            MIN_SPLIT_FRAME,
            MIN_SPLIT_FRAME + 1,
            FRAME_MAX - 9,
            20_000,
            usize::MAX,
        ];
        for start in 0..limits.len() {
            let rotated: Vec<usize> = limits[start..]
                .iter()
                .chain(&limits[..start])
                .copied()
                .collect();
            assert_eq!(
                round_trip(&messages, &rotated),
                messages,
                "limits from {start}"
            );
        }
    }

    #[test]
    fn hostile_frames_are_rejected_and_bounded() {
        let mut rx = Reassembly::default();
        assert_eq!(rx.push(vec![]), Err(FramingError::BadTag));
        assert_eq!(rx.push(vec![9, 1]), Err(FramingError::BadTag));
        assert_eq!(
            rx.push(vec![TAG_MIDDLE, 1]),
            Err(FramingError::OutOfSequence)
        );
        assert_eq!(rx.push(vec![TAG_FIRST, 0, 0]), Err(FramingError::Truncated));
        let huge = ((MAX_MESSAGE_SIZE + 1) as u32).to_be_bytes();
        let mut first = vec![TAG_FIRST];
        first.extend_from_slice(&huge);
        assert_eq!(rx.push(first), Err(FramingError::TooLarge));
        // A first frame announcing 10 bytes, then a last part that overshoots.
        assert_eq!(rx.push(vec![TAG_FIRST, 0, 0, 0, 10, 1, 2]), Ok(None));
        assert_eq!(rx.buffered(), 2);
        assert_eq!(
            rx.push(vec![TAG_LAST; 12]),
            Err(FramingError::OutOfSequence)
        );
        assert_eq!(rx.buffered(), 0);
        // A whole message inside a partial one.
        assert_eq!(rx.push(vec![TAG_FIRST, 0, 0, 0, 10, 1, 2]), Ok(None));
        assert_eq!(
            rx.push(vec![TAG_WHOLE, 5]),
            Err(FramingError::OutOfSequence)
        );
        // And afterwards the stream is clean again.
        assert_eq!(rx.push(vec![TAG_WHOLE, 5]), Ok(Some(vec![5])));
    }

    #[test]
    fn arbitrary_frames_never_panic() {
        fn prop(frames: Vec<Vec<u8>>) -> bool {
            let mut rx = Reassembly::default();
            for f in frames {
                let _ = rx.push(f);
                if rx.buffered() > MAX_MESSAGE_SIZE {
                    return false;
                }
            }
            true
        }
        quickcheck::quickcheck(prop as fn(Vec<Vec<u8>>) -> bool);
    }
}
