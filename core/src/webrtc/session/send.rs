//! The send path: the queue of messages `send` took, framing them out, and handing
//! them to str0m's SCTP within a budget sized to the path's round trip.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use str0m::Rtc;
use str0m::channel::ChannelId;

use super::Session;
use super::framing::{
    FRAME_MAX, MAX_MESSAGE_SIZE, MIN_SPLIT_FRAME, TAG_FIRST, TAG_LAST, TAG_MIDDLE, TAG_WHOLE,
};
use super::sdp_path::MessageMode;
use super::types::{SendError, SessionConfig};

/// Bytes in front of a message in a [`message_buffer`] (and in a message the meeting
/// takes with `Session::poll_event_framed`): the session's own, its frame tag.
pub(crate) const MESSAGE_LEAD: usize = 1;

/// An empty buffer for one outgoing message of up to `capacity` bytes, with room for
/// the session's frame tag in front: build the message behind it and hand it to
/// [`Session::send_message`] as [`Outgoing::Shared`], and the session sends it from
/// there (no copy), as many times as it is handed over.
pub(crate) fn message_buffer(capacity: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(MESSAGE_LEAD + capacity);
    buf.push(TAG_WHOLE);
    buf
}

/// A message for [`Session::send_message`].
#[derive(Debug)]
pub(crate) enum Outgoing<'a> {
    /// Copied into the queue (the public `send`).
    Borrowed(&'a [u8]),
    /// Built on a [`message_buffer`]: queued as it is, shared with the caller.
    Shared(Bytes),
}

impl Session {
    /// Queues `message` for the peer, binary or (on a plain channel, see
    /// `docs/webrtc-sdp.md`) as text, and writes what SCTP takes at once (see
    /// [`Session::send`]).
    pub(crate) fn send_message(
        &mut self,
        message: Outgoing<'_>,
        binary: bool,
    ) -> Result<(), SendError> {
        if self.liveness.is_closed() {
            return Err(SendError::Closed);
        }
        self.send.push(message, binary)?;
        self.settle();
        Ok(())
    }
}

/// The least a session lets str0m's SCTP buffer hold once the path's RTT is known (see
/// [`SendPath::budget`]); by the formula this is only reached below a 0.33 ms RTT.
/// Measured in memory (16 MiB, zero delay): 64 KiB moves ~116 MiB/s, 128 KiB ~83.
pub(super) const MIN_SCTP_BUDGET: usize = 64 * 1024;
// A budget below one frame would cut every frame.
const _: () = assert!(MIN_SCTP_BUDGET >= FRAME_MAX);
/// The rate the SCTP budget is sized for: budget = RTT × this (bytes per second),
/// between [`MIN_SCTP_BUDGET`] and [`SessionConfig::sctp_buffer`].
pub(super) const BUDGET_RATE: f64 = 200e6;

/// Everything between `Session::send` and str0m's SCTP: the queue, the frame being
/// written, back-pressure, and the counters of what the application sent.
#[derive(Debug)]
pub(super) struct SendPath {
    queue: SendQueue,
    /// The frame being written (reused: one allocation per session).
    frame: Vec<u8>,
    /// `send` said `WouldBlock`: a `Writable` event is owed once the queue drains.
    want_writable: bool,
    queue_limit: usize,
    sctp_buffer: usize,
    mode: MessageMode,
    /// Application messages handed to SCTP whole, and their payload bytes.
    messages_sent: u64,
    bytes_sent: u64,
}

impl SendPath {
    pub fn new(config: &SessionConfig, mode: MessageMode) -> SendPath {
        SendPath {
            queue: SendQueue::default(),
            frame: Vec::with_capacity(FRAME_MAX),
            want_writable: false,
            queue_limit: config.send_queue_limit,
            sctp_buffer: config.sctp_buffer,
            mode,
            messages_sent: 0,
            bytes_sent: 0,
        }
    }

    pub fn set_mode(&mut self, mode: MessageMode) {
        self.mode = mode;
    }

    pub fn is_plain(&self) -> bool {
        matches!(self.mode, MessageMode::Plain { .. })
    }

    /// The largest message `send` takes.
    pub fn max_size(&self) -> usize {
        match self.mode {
            MessageMode::Framed => MAX_MESSAGE_SIZE,
            MessageMode::Plain { max_message_size } => max_message_size.min(MAX_MESSAGE_SIZE),
        }
    }

    /// Bytes queued and not yet handed to SCTP.
    pub fn queued_bytes(&self) -> usize {
        self.queue.queued_bytes()
    }

    /// Application messages and payload bytes handed to SCTP.
    pub fn counters(&self) -> (u64, u64) {
        (self.messages_sent, self.bytes_sent)
    }

    /// Queues `message`: accepted if the queue is empty or the message fits within the
    /// queue limit; otherwise [`SendError::WouldBlock`] and a `Writable` owed. An empty
    /// message on a plain channel is [`SendError::Empty`]: str0m hands SCTP an empty
    /// write, which takes a stream sequence number and sends nothing (RFC 8831's
    /// one-byte "empty" payload is not in its API), stalling the ordered channel.
    pub fn push(&mut self, message: Outgoing<'_>, binary: bool) -> Result<(), SendError> {
        let len = match &message {
            Outgoing::Borrowed(m) => m.len(),
            Outgoing::Shared(stored) => stored.len().saturating_sub(MESSAGE_LEAD),
        };
        if len > self.max_size() {
            return Err(SendError::TooLarge);
        }
        if len == 0 && self.is_plain() {
            return Err(SendError::Empty);
        }
        let queued = self.queue.queued_bytes();
        if !self.queue.is_empty() && queued + len > self.queue_limit {
            self.want_writable = true;
            return Err(SendError::WouldBlock);
        }
        let stored = match message {
            // The one copy the send path makes before SCTP's own.
            Outgoing::Borrowed(m) => {
                let mut buf = message_buffer(m.len());
                buf.extend_from_slice(m);
                Bytes::from(buf)
            }
            Outgoing::Shared(stored) => stored,
        };
        self.queue.push_stored(stored, binary);
        Ok(())
    }

    /// A `Writable` is owed and the queue is down to half its limit: take it.
    pub fn take_writable(&mut self) -> bool {
        let due = self.want_writable && self.queue.queued_bytes() <= self.queue_limit / 2;
        if due {
            self.want_writable = false;
        }
        due
    }

    /// How many bytes str0m's SCTP buffer may hold: enough for [`BUDGET_RATE`] over
    /// `path_rtt` (the smallest ICE measurement, or the handshake's estimate until ICE
    /// has one: see `Liveness::path_rtt`), at least [`MIN_SCTP_BUDGET`], at most
    /// [`SessionConfig::sctp_buffer`].
    ///
    /// sctp-proto 0.10 walks every in-flight chunk (three times) on each poll, so the CPU
    /// cost per datagram grows with the bytes in flight: on a sub-millisecond path a full
    /// 1 MiB buffer buys no throughput and costs three times the CPU of 128 KiB.
    ///
    /// The *smallest* RTT, not the latest: an ICE check sent during a transfer waits
    /// behind our own data, so the latest sample measures our queue. Sizing the budget
    /// from it fed back on itself (a bigger budget, a slower poll, a longer queue, a
    /// bigger sample: 0.15 ms grew to 160 ms and throughput fell 4× over 25 transfers on
    /// loopback). The minimum is the path's delay, as in BBR's `min_rtt`; a session is
    /// short-lived enough (it ends with the path) that no window is needed.
    pub fn budget(&self, path_rtt: Option<Duration>) -> usize {
        let max = self.sctp_buffer;
        match path_rtt {
            Some(rtt) => {
                let bdp = (rtt.as_secs_f64() * BUDGET_RATE).min(max as f64) as usize;
                bdp.max(MIN_SCTP_BUDGET).min(max)
            }
            None => max,
        }
    }

    /// Hands queued frames to the channel `id` while SCTP takes them and its buffer
    /// stays within `budget` (see [`SendPath::budget`]); `true` if it took any. Runs
    /// inside `Seeded::call`.
    ///
    /// A frame that does not fit is cut to the room left (down to `MIN_SPLIT_FRAME`)
    /// rather than held back: the receiver's SCTP delays the acknowledgement of an odd
    /// last packet by 200 ms, so a sender that waits for a whole frame's room while a
    /// few bytes are still unacknowledged waits 200 ms per frame (a 64 KiB budget moved
    /// 16 MiB in 12.8 s of virtual time at zero delay this way, instead of none).
    pub fn write_framed(&mut self, rtc: &mut Rtc, id: ChannelId, budget: usize) -> bool {
        let mut wrote = false;
        while let Some(mut ch) = rtc.channel(id) {
            let room = budget.saturating_sub(ch.buffered_amount());
            let Some((frame, body)) = self.queue.next_frame(&mut self.frame, room) else {
                break;
            };
            if !ch.write(true, frame).unwrap_or(false) {
                break;
            }
            wrote = true;
            if self.queue.advance(body) {
                self.messages_sent += 1;
            }
            self.bytes_sent += body as u64;
        }
        wrote
    }

    /// Plain channel: hands whole queued messages to SCTP while it takes them. A message
    /// larger than the budget goes alone into a nearly empty buffer: less than
    /// `MIN_SPLIT_FRAME` (a few packets) left unacknowledged counts as empty, so a
    /// message never waits for the peer's delayed acknowledgement of the last packet
    /// (200 ms). Plain messages cannot be cut, unlike frames.
    pub fn write_plain(&mut self, rtc: &mut Rtc, id: ChannelId, budget: usize) -> bool {
        let mut wrote = false;
        while let Some((message, binary)) = self.queue.front() {
            let Some(mut ch) = rtc.channel(id) else {
                break;
            };
            let buffered = ch.buffered_amount();
            if buffered >= MIN_SPLIT_FRAME && buffered + message.len() > budget {
                break;
            }
            if !ch.write(binary, message).unwrap_or(false) {
                break;
            }
            wrote = true;
            self.messages_sent += 1;
            self.bytes_sent += message.len() as u64;
            self.queue.pop_front();
        }
        wrote
    }
}

/// The outgoing messages not yet handed to SCTP, bounded by the session's queue limit.
///
/// Each message is stored behind one byte holding [`TAG_WHOLE`] (see
/// [`message_buffer`]): a message that goes out as one frame (the common case) is handed
/// to SCTP from where it is stored, not copied into a frame first, and a message the
/// meeting built is shared with its retransmission store, not copied either.
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    /// `[TAG_WHOLE, message…]` per message.
    messages: VecDeque<Bytes>,
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
        let mut stored = message_buffer(message.len());
        stored.extend_from_slice(&message);
        self.push_stored(Bytes::from(stored), true);
    }

    /// Queues a message stored behind its [`TAG_WHOLE`] byte (see [`message_buffer`]),
    /// binary or text.
    pub fn push_stored(&mut self, stored: Bytes, binary: bool) {
        debug_assert_eq!(stored.first(), Some(&TAG_WHOLE));
        self.queued += stored.len().saturating_sub(MESSAGE_LEAD);
        self.messages.push_back(stored);
        self.binary.push_back(binary);
    }

    /// The front message, unframed, and whether it is binary (plain channels).
    pub fn front(&self) -> Option<(&[u8], bool)> {
        let m = self.messages.front()?.get(1..)?;
        Some((m, self.binary.front().copied().unwrap_or(true)))
    }

    /// Takes the front message off the queue whole (plain channels).
    pub fn pop_front(&mut self) {
        if let Some(m) = self.messages.pop_front() {
            self.queued = self.queued.saturating_sub(m.len() - 1);
            self.binary.pop_front();
            self.offset = 0;
        }
    }

    /// The length of the next frame if it may be at most `max` bytes (header included;
    /// `max` is capped at [`FRAME_MAX`] and must be at least [`MIN_SPLIT_FRAME`]);
    /// `None` if nothing is queued.
    #[cfg(test)]
    pub fn next_frame_len(&self, max: usize) -> Option<usize> {
        let max = max.clamp(MIN_SPLIT_FRAME, FRAME_MAX);
        // A whole or last frame is the tag and the rest; a first or middle frame is full.
        let rest = self.messages.front()?.len() - 1 - self.offset;
        Some((rest + 1).min(max))
    }

    /// The next frame, at most `room` bytes, and the length of the message part it
    /// carries; `None` if nothing is queued or the next frame does not fit in `room`
    /// (frames are cut to `room`, capped at [`FRAME_MAX`], but never below
    /// [`MIN_SPLIT_FRAME`]). A whole message is its stored bytes (tag included); a part
    /// is built into `frame` (cleared first), only once it is known to fit: a refused
    /// frame would be a 64 KiB copy for nothing, on every input while SCTP is full. The
    /// part is only taken off the queue by [`SendQueue::advance`], once SCTP has
    /// accepted the frame.
    ///
    /// Frames are cut where the room is: the receiver only checks that the parts add
    /// up to the announced length, so a sender may size each frame to what its SCTP
    /// budget has left (see `SendPath::write_framed`).
    pub fn next_frame<'a>(
        &'a self,
        frame: &'a mut Vec<u8>,
        room: usize,
    ) -> Option<(&'a [u8], usize)> {
        let max = room.clamp(MIN_SPLIT_FRAME, FRAME_MAX);
        let stored = self.messages.front()?;
        let message = stored.get(MESSAGE_LEAD..)?;
        let rest = &message[self.offset..];
        // A whole or last frame is the tag and the rest; a first or middle frame is full.
        if (rest.len() + 1).min(max) > room {
            return None;
        }
        frame.clear();
        let fits = rest.len() < max;
        let (tag, body) = match (self.offset == 0, fits) {
            // Stored behind its TAG_WHOLE byte: the frame as it is.
            (true, true) => return Some((stored, rest.len())),
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
        Some((frame, body.len()))
    }

    /// The frame last built by `next_frame`, carrying `body` bytes of the front message,
    /// was accepted. Returns `true` if that completed a message.
    pub fn advance(&mut self, body: usize) -> bool {
        self.offset += body;
        self.queued = self.queued.saturating_sub(body);
        let done = self
            .messages
            .front()
            .is_some_and(|m| self.offset >= m.len() - 1);
        if done {
            self.messages.pop_front();
            self.binary.pop_front();
            self.offset = 0;
        }
        done
    }
}
