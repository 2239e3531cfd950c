//! Exactly-once, in-order delivery to a member across reconnections.
//!
//! One data channel is reliable and ordered, but a session can die (dead path, NAT
//! rebinding) with messages in flight, and its replacement starts empty. So every
//! application message carries a per-member sequence number, the receiver acknowledges
//! cumulatively, and the sender keeps what is not acknowledged (bounded) and sends it
//! again, in order, on the next session; the receiver drops what it already delivered.
//!
//! Frames are built behind the session's lead byte (`message_buffer`) and kept as
//! shared [`Bytes`]: the session queues the very bytes the retransmission store holds,
//! and a received frame is stripped of the session's tag and our header in one move.
//!
//! Frames on the channel (one per session message):
//!
//! | first byte | rest |
//! |---|---|
//! | 1 = data | sequence number (8 bytes, big-endian), then the message |
//! | 2 = ack | highest sequence number delivered in order (8 bytes) |

use std::collections::VecDeque;

use bytes::Bytes;

use crate::webrtc::{MESSAGE_LEAD, SessionStats, message_buffer};

/// Bytes of messages kept for a member until acknowledged; sending more waits
/// ([`SendError::WouldBlock`](crate::webrtc::SendError::WouldBlock)).
pub const MAX_UNACKED_BYTES: usize = 8 * 1024 * 1024;
/// Messages delivered before an acknowledgement is sent without waiting for the timer.
pub const ACK_EVERY: u32 = 16;

/// Bytes a data frame adds to a message: its kind and sequence number.
const FRAME_HEADER: usize = 9;
const DATA: u8 = 1;
const ACK: u8 = 2;

/// What a frame from the member turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// The next message, to hand to the application.
    Message(Vec<u8>),
    /// A message already delivered (resent after a reconnection): dropped.
    Duplicate,
    /// An acknowledgement: unacknowledged messages were released.
    Ack,
    /// Not a frame of ours, or a gap in the sequence: dropped.
    Malformed,
}

/// The delivery state towards and from one member.
#[derive(Debug)]
pub(crate) struct Delivery {
    next_seq: u64,
    /// Frames behind the session's lead byte, in sequence order.
    unacked: VecDeque<(u64, Bytes)>,
    /// Bytes of the frames in `unacked` (lead bytes not counted).
    unacked_bytes: usize,
    /// Messages up to this sequence number were handed to the current session.
    sent_upto: u64,
    /// Messages up to this sequence number are acknowledged.
    acked: u64,
    /// The sequence number the next message from the member must carry.
    expected: u64,
    /// Messages delivered since our last acknowledgement.
    unacknowledged_deliveries: u32,
    /// Nothing received yet: the first data frame sets `expected` (the member may have
    /// kept sending to us while we had given it up and forgotten it; what it had sent
    /// before was delivered and acknowledged then).
    fresh: bool,
    pub(crate) duplicates: u64,
    pub(crate) malformed: u64,
    /// The application's messages and payload bytes over the current session (see
    /// [`Delivery::application_stats`]).
    session_counts: AppCounts,
}

/// Application messages and payload bytes, each way, over one session.
#[derive(Debug, Default, Clone, Copy)]
struct AppCounts {
    messages_sent: u64,
    bytes_sent: u64,
    messages_received: u64,
    bytes_received: u64,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            next_seq: 1,
            unacked: VecDeque::new(),
            unacked_bytes: 0,
            sent_upto: 0,
            acked: 0,
            expected: 1,
            unacknowledged_deliveries: 0,
            fresh: true,
            duplicates: 0,
            malformed: 0,
            session_counts: AppCounts::default(),
        }
    }
}

impl Delivery {
    /// Takes a message to send; false if [`MAX_UNACKED_BYTES`] are waiting (a single
    /// message larger than that is accepted when nothing waits).
    pub(crate) fn queue(&mut self, data: &[u8]) -> bool {
        if !self.unacked.is_empty() && self.unacked_bytes + data.len() > MAX_UNACKED_BYTES {
            return false;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut frame = message_buffer(FRAME_HEADER + data.len());
        frame.push(DATA);
        frame.extend_from_slice(&seq.to_be_bytes());
        frame.extend_from_slice(data);
        self.unacked_bytes += frame.len() - MESSAGE_LEAD;
        self.unacked.push_back((seq, Bytes::from(frame)));
        true
    }

    /// A new session: everything not acknowledged goes again.
    pub(crate) fn restart(&mut self) {
        self.sent_upto = self.acked;
        self.session_counts = AppCounts::default();
    }

    /// A session's counters with its application counts replaced by the application's
    /// own: messages and payload bytes handed to the session and delivered from it,
    /// without the delivery frame (kind, sequence number) or the acknowledgements.
    pub(crate) fn application_stats(&self, session: SessionStats) -> SessionStats {
        let c = self.session_counts;
        SessionStats {
            messages_sent: c.messages_sent,
            bytes_sent: c.bytes_sent,
            messages_received: c.messages_received,
            bytes_received: c.bytes_received,
            ..session
        }
    }

    /// Hands the frames not yet handed to the current session to `send`, in order,
    /// until it refuses one (`false`); each one taken counts as sent. The frames are
    /// shared, not copied: they stay here until acknowledged.
    pub(crate) fn send_unsent(&mut self, mut send: impl FnMut(Bytes) -> bool) {
        let Delivery {
            unacked,
            sent_upto,
            session_counts,
            ..
        } = self;
        let start = unacked.partition_point(|(seq, _)| *seq <= *sent_upto);
        for (seq, frame) in unacked.range(start..) {
            if !send(frame.clone()) {
                break;
            }
            session_counts.messages_sent += 1;
            session_counts.bytes_sent += (frame.len() - MESSAGE_LEAD - FRAME_HEADER) as u64;
            *sent_upto = *seq;
        }
    }

    /// Whether messages wait for acknowledgement.
    #[cfg(test)]
    pub(crate) fn has_unacked(&self) -> bool {
        !self.unacked.is_empty()
    }

    /// A frame from the member, behind `lead` bytes of the session's (see
    /// `Session::poll_event_framed`).
    pub(crate) fn receive(&mut self, mut frame: Vec<u8>, lead: usize) -> Received {
        let (kind, rest) = match frame.get(lead..).and_then(<[u8]>::split_first) {
            Some((k, rest)) if rest.len() >= 8 => (*k, rest),
            _ => {
                self.malformed += 1;
                return Received::Malformed;
            }
        };
        let mut n = [0u8; 8];
        n.copy_from_slice(&rest[..8]);
        let seq = u64::from_be_bytes(n);
        if kind == DATA && self.fresh {
            self.fresh = false;
            self.expected = seq.max(1);
        }
        match kind {
            DATA if seq < self.expected => {
                self.duplicates += 1;
                // Acknowledge again: the sender evidently missed our acknowledgement.
                self.unacknowledged_deliveries = self.unacknowledged_deliveries.max(1);
                Received::Duplicate
            }
            DATA if seq == self.expected => {
                self.expected += 1;
                self.unacknowledged_deliveries += 1;
                self.session_counts.messages_received += 1;
                self.session_counts.bytes_received += (rest.len() - 8) as u64;
                // The one copy on the way in: the session's tag and our header go at once.
                frame.drain(..lead + FRAME_HEADER);
                Received::Message(frame)
            }
            ACK if seq < self.next_seq => {
                while self.unacked.front().is_some_and(|(s, _)| *s <= seq) {
                    if let Some((_, f)) = self.unacked.pop_front() {
                        self.unacked_bytes -= f.len() - MESSAGE_LEAD;
                    }
                }
                self.acked = self.acked.max(seq);
                self.sent_upto = self.sent_upto.max(self.acked);
                Received::Ack
            }
            _ => {
                // A gap, or an acknowledgement of what we never sent.
                self.malformed += 1;
                Received::Malformed
            }
        }
    }

    /// An acknowledgement to send now: at once after [`ACK_EVERY`] deliveries, or any
    /// pending one when `flush`.
    /// The frame is built behind the session's lead byte (see `message_buffer`).
    pub(crate) fn take_ack(&mut self, flush: bool) -> Option<Bytes> {
        if self.unacknowledged_deliveries == 0
            || (!flush && self.unacknowledged_deliveries < ACK_EVERY)
        {
            return None;
        }
        self.unacknowledged_deliveries = 0;
        let mut frame = message_buffer(FRAME_HEADER);
        frame.push(ACK);
        frame.extend_from_slice(&(self.expected - 1).to_be_bytes());
        Some(Bytes::from(frame))
    }

    /// Whether [`ACK_EVERY`] deliveries are unacknowledged: acknowledge without waiting.
    pub(crate) fn ack_due_now(&self) -> bool {
        self.unacknowledged_deliveries >= ACK_EVERY
    }

    /// Whether an acknowledgement is owed.
    pub(crate) fn ack_pending(&self) -> bool {
        self.unacknowledged_deliveries > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames `a` hands to a session (as the peer receives them: behind the lead).
    fn unsent(a: &mut Delivery) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        a.send_unsent(|f| {
            frames.push(f.to_vec());
            true
        });
        frames
    }

    /// Moves frames from `a` to `b` as a session would, dropping every frame when `cut`.
    fn pump(a: &mut Delivery, b: &mut Delivery, cut: bool) -> Vec<Vec<u8>> {
        let mut delivered = Vec::new();
        for frame in unsent(a) {
            if !cut {
                if let Received::Message(m) = b.receive(frame, MESSAGE_LEAD) {
                    delivered.push(m);
                }
            }
        }
        if let Some(ack) = b.take_ack(true) {
            if !cut {
                assert_eq!(a.receive(ack.to_vec(), MESSAGE_LEAD), Received::Ack);
            }
        }
        delivered
    }

    #[test]
    fn messages_lost_with_a_session_are_sent_again_and_delivered_once() {
        let (mut a, mut b) = (Delivery::default(), Delivery::default());
        for m in [b"one", b"two"] {
            assert!(a.queue(m));
        }
        assert_eq!(
            pump(&mut a, &mut b, false),
            vec![b"one".to_vec(), b"two".to_vec()]
        );
        assert!(!a.has_unacked());
        // The session dies with "three" and "four" in flight, unacknowledged.
        a.queue(b"three");
        a.queue(b"four");
        assert!(pump(&mut a, &mut b, true).is_empty());
        a.queue(b"five");
        // A new session: everything unacknowledged goes again, once, in order.
        a.restart();
        assert_eq!(
            pump(&mut a, &mut b, false),
            vec![b"three".to_vec(), b"four".to_vec(), b"five".to_vec()]
        );
        assert!(!a.has_unacked());
    }

    #[test]
    fn a_lost_acknowledgement_only_causes_duplicates_that_are_dropped() {
        let (mut a, mut b) = (Delivery::default(), Delivery::default());
        a.queue(b"x");
        let frame = unsent(&mut a).remove(0);
        assert!(unsent(&mut a).is_empty(), "sent once per session");
        assert_eq!(
            b.receive(frame, MESSAGE_LEAD),
            Received::Message(b"x".to_vec())
        );
        let _lost_ack = b.take_ack(true);
        a.restart();
        let again = unsent(&mut a).remove(0);
        assert_eq!(b.receive(again, MESSAGE_LEAD), Received::Duplicate);
        let ack = b.take_ack(true).unwrap().to_vec();
        assert_eq!(a.receive(ack, MESSAGE_LEAD), Received::Ack);
        assert!(!a.has_unacked());
        assert_eq!(b.duplicates, 1);
    }

    #[test]
    fn a_receiver_that_forgot_the_member_resumes_at_its_next_message() {
        let mut b = Delivery::default();
        assert_eq!(
            b.receive(b"\x01\0\0\0\0\0\0\0\x07seven".to_vec(), 0),
            Received::Message(b"seven".to_vec())
        );
        assert_eq!(
            b.receive(b"\x01\0\0\0\0\0\0\0\x08eight".to_vec(), 0),
            Received::Message(b"eight".to_vec())
        );
        let ack = b.take_ack(true).unwrap();
        assert_eq!(ack[MESSAGE_LEAD..], b"\x02\0\0\0\0\0\0\0\x08"[..]);
    }

    #[test]
    fn the_outbox_is_bounded_and_garbage_is_counted() {
        let mut a = Delivery::default();
        assert!(
            a.queue(&vec![0; MAX_UNACKED_BYTES + 10]),
            "one huge message alone is fine"
        );
        assert!(
            !a.queue(b"more"),
            "but nothing more until it is acknowledged"
        );
        let mut b = Delivery::default();
        assert_eq!(
            b.receive(b"\x00\x01\0\0\0\0\0\0\0\x01first".to_vec(), 1),
            Received::Message(b"first".to_vec())
        );
        for junk in [
            &b""[..],
            b"\x01",
            b"\x09\0\0\0\0\0\0\0\x01",
            b"\x01\0\0\0\0\0\0\0\x05gap",
            b"\x02\0\0\0\0\0\0\0\x09",
        ] {
            assert_eq!(b.receive(junk.to_vec(), 0), Received::Malformed);
        }
        assert_eq!(b.malformed, 5);
    }
}
