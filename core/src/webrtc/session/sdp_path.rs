//! What a [`Session`] does differently when it was set up by SDP offer/answer (see
//! `crate::webrtc::PeerConnection`) instead of the direct API: it is built around an
//! `Rtc` that the SDP path configured, it may adopt the channel the peer opens, and
//! towards a standard WebRTC peer its messages are plain (one message = one SCTP
//! message) instead of framed.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::Input;
use str0m::channel::ChannelId;

use super::{IceCandidate, Session, SessionParts};

/// How application messages map onto the data channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageMode {
    /// Between dhtmeet peers: frames of at most [`FRAME_MAX`](super::FRAME_MAX) bytes,
    /// messages up to [`MAX_MESSAGE_SIZE`](super::MAX_MESSAGE_SIZE) (`framing.rs`).
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
        let now = self.now;
        if !self.liveness.start_connecting(now) {
            return;
        }
        self.rtc_input(Input::Timeout(now));
        self.settle();
    }

    /// A remote address (a candidate from SDP or trickle) whose DTLS is the peer's.
    pub(crate) fn add_remote_addr(&mut self, addr: SocketAddr) {
        self.remote_addrs.remember(addr);
    }

    /// Records a local candidate the SDP carries (for `local_parameters`).
    pub(crate) fn note_local_candidate(&mut self, candidate: IceCandidate) {
        if !self.local_params.candidates.contains(&candidate) {
            self.local_params.candidates.push(candidate);
        }
    }

    /// Sets how messages map onto the channel; call before the channel opens.
    pub(crate) fn set_mode(&mut self, mode: MessageMode) {
        self.send.set_mode(mode);
        self.receive
            .set_plain(matches!(mode, MessageMode::Plain { .. }));
    }

    /// The largest message `send` takes.
    pub(crate) fn max_send_size(&self) -> usize {
        self.send.max_size()
    }

    pub(crate) fn is_plain(&self) -> bool {
        self.send.is_plain()
    }

    /// The channel our own offer adds (the offerer knows its id before it opens).
    pub(crate) fn set_channel(&mut self, id: ChannelId) {
        self.channel = Some(id);
        self.adopt_channel = false;
    }
}
