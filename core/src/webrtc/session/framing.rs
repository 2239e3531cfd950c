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
//!
//! Frames are written by the send path (`send.rs`, `SendQueue`) and read by the
//! receive path (`receive.rs`, `Reassembly`); this file holds the format they share.

/// The largest frame (one SCTP message), header included.
pub const FRAME_MAX: usize = 64 * 1024;

/// The smallest frame a sender cuts to fit its SCTP budget (see `SendPath::write`):
/// below this it waits for acknowledgements instead of writing ever smaller frames.
pub(crate) const MIN_SPLIT_FRAME: usize = 8 * 1024;
const _: () = assert!(MIN_SPLIT_FRAME > 5 && MIN_SPLIT_FRAME <= FRAME_MAX);

/// The largest application message a session sends or accepts (16 MiB).
pub const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

pub(super) const TAG_WHOLE: u8 = 0;
pub(super) const TAG_FIRST: u8 = 1;
pub(super) const TAG_MIDDLE: u8 = 2;
pub(super) const TAG_LAST: u8 = 3;

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

#[cfg(test)]
mod tests {
    use super::super::receive::Reassembly;
    use super::super::send::SendQueue;
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
            if len > max {
                // No room for the smallest frame it would cut: nothing is built.
                assert!(queue.next_frame(&mut frame, max).is_none());
            }
            let (built, body) = queue.next_frame(&mut frame, max.max(len)).unwrap();
            let built = built.to_vec();
            assert_eq!(built.len(), len);
            assert!(built.len() <= max.clamp(MIN_SPLIT_FRAME, FRAME_MAX));
            queue.advance(body);
            if let Some(m) = rx.push(built).unwrap() {
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
