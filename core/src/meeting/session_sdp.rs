//! What a [`Session`] does differently when it was set up by SDP offer/answer (see
//! `crate::webrtc`) instead of the direct API: it is built around an `Rtc` that the SDP
//! path configured, it may adopt the channel the peer opens, and towards a standard
//! WebRTC peer its messages are plain (one message = one SCTP message) instead of framed.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::Input;
use str0m::channel::ChannelId;

use super::session::{Phase, Session};
pub(crate) use super::session::{SeededRtc, SessionParts};
use super::session_framing::{MAX_MESSAGE_SIZE, MIN_SPLIT_FRAME};
use super::session_types::{IceCandidate, SessionEvent};

/// How application messages map onto the data channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageMode {
    /// Between dhtmeet peers: frames of at most [`FRAME_MAX`](super::FRAME_MAX) bytes, messages up to
    /// [`MAX_MESSAGE_SIZE`] (`session_framing.rs`).
    Framed,
    /// Towards a standard WebRTC peer: one message is one SCTP message, string or binary,
    /// of at most `max_message_size` bytes (the peer's `a=max-message-size`).
    Plain {
        /// The largest message the peer accepts.
        max_message_size: usize,
    },
}

impl Session {
    /// A session around an `Rtc` the SDP path built and negotiated (or is negotiating).
    /// It adopts the first channel that opens, unless [`Session::set_channel`] names
    /// one (an offerer's own). The session stays `New` until [`Session::start_connecting`].
    pub(crate) fn from_sdp_parts(parts: SessionParts) -> Session {
        Session::assemble(parts, None, None, true, MessageMode::Framed)
    }

    /// The SDP exchange is complete: connect (the connect timeout starts now).
    pub(crate) fn start_connecting(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.phase != Phase::New {
            return;
        }
        self.phase = Phase::Connecting {
            deadline: self.now + self.config.connect_timeout,
        };
        let now = self.now;
        self.rtc_input(Input::Timeout(now));
        self.settle();
    }

    /// A remote address (a candidate from SDP or trickle) whose DTLS is the peer's.
    pub(crate) fn add_remote_addr(&mut self, addr: SocketAddr) {
        self.remember_remote(addr);
    }

    /// Records a local candidate the SDP carries (for `local_parameters`).
    pub(crate) fn note_local_candidate(&mut self, candidate: IceCandidate) {
        if !self.local_params.candidates.contains(&candidate) {
            self.local_params.candidates.push(candidate);
        }
    }

    /// Sets how messages map onto the channel; call before the channel opens.
    pub(crate) fn set_mode(&mut self, mode: MessageMode) {
        self.mode = mode;
    }

    /// The largest message `send` takes.
    pub(crate) fn max_send_size(&self) -> usize {
        match self.mode {
            MessageMode::Framed => MAX_MESSAGE_SIZE,
            MessageMode::Plain { max_message_size } => max_message_size.min(MAX_MESSAGE_SIZE),
        }
    }

    pub(crate) fn is_plain(&self) -> bool {
        matches!(self.mode, MessageMode::Plain { .. })
    }

    /// A message on a plain channel: it is the whole application message.
    pub(super) fn on_plain_message(&mut self, data: Vec<u8>) {
        self.stats.messages_received += 1;
        self.stats.bytes_received += data.len() as u64;
        self.events.push_back(SessionEvent::Message(data));
    }

    /// Plain channel: hands whole queued messages to SCTP while it takes them; `true` if
    /// it took any. A message larger than the SCTP budget goes alone into a nearly empty
    /// buffer: less than `MIN_SPLIT_FRAME` (a few packets) left unacknowledged counts as
    /// empty, so a message never waits for the peer's delayed acknowledgement of the
    /// last packet (200 ms). Plain messages cannot be cut, unlike frames.
    pub(super) fn write_plain(&mut self, id: ChannelId) -> bool {
        let budget = self.sctp_budget();
        fastrand::seed(self.fastrand_state);
        let mut wrote = false;
        while let Some((message, binary)) = self.send_queue.front() {
            let Some(mut ch) = self.rtc.channel(id) else {
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
            self.stats.messages_sent += 1;
            self.stats.bytes_sent += message.len() as u64;
            self.send_queue.pop_front();
        }
        self.fastrand_state = fastrand::u64(..);
        wrote
    }
}

impl Session {
    /// The channel our own offer adds (the offerer knows its id before it opens).
    pub(crate) fn set_channel(&mut self, id: ChannelId) {
        self.channel = Some(id);
        self.adopt_channel = false;
    }
}
