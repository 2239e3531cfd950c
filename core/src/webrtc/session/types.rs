//! The public types of a [`Session`]: its settings, the parameters signaling carries,
//! its events, errors and counters.

use std::net::SocketAddr;
use std::time::Duration;

#[cfg(doc)]
use super::{MAX_MESSAGE_SIZE, MAX_REMOTE_CANDIDATES, Session};

/// Which DTLS version the session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsChoice {
    /// DTLS 1.2 (RFC 6347): what every WebRTC stack speaks.
    Dtls12,
    /// DTLS 1.3 (RFC 9147): one round trip less.
    Dtls13,
}

/// Settings of a [`Session`]; `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// While connected, report [`DisconnectReason::Timeout`] after this long without a
    /// datagram from the peer (str0m keeps the path alive with a check every ~3 s).
    /// Default 15 s.
    pub idle_timeout: Duration,
    /// Report [`DisconnectReason::ConnectTimeout`] if the channel is not open this long
    /// after [`Session::set_remote`]. Default 30 s.
    pub connect_timeout: Duration,
    /// DTLS version; the passive (controlled) side accepts either. Default DTLS 1.3.
    pub dtls: DtlsChoice,
    /// Offer SCTP SNAP (the SCTP INIT travels in signaling, saving the 4-way SCTP
    /// handshake). Used only if both sides offer it. Default on.
    pub snap: bool,
    /// Most bytes `send` queues before [`SendError::WouldBlock`]. Default 1 MiB.
    pub send_queue_limit: usize,
    /// Most bytes str0m's SCTP buffers for sending (its default is 128 KiB, which caps
    /// throughput at one buffer per round trip). Default 1 MiB. The session fills it only
    /// as far as the round trip needs (RTT × 200 MB/s, at least 128 KiB): SCTP's CPU cost
    /// per datagram grows with the bytes in flight.
    pub sctp_buffer: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(30),
            dtls: DtlsChoice::Dtls13,
            snap: true,
            send_queue_limit: 1024 * 1024,
            sctp_buffer: 1024 * 1024,
        }
    }
}

/// A [`SessionConfig`] a session could not work with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionConfigError {
    /// `sctp_buffer` is smaller than one frame: nothing could ever be written.
    #[error("sctp_buffer must hold at least one {0}-byte frame")]
    SctpBufferTooSmall(usize),
    /// A zero idle or connect timeout would fail every session at once.
    #[error("idle_timeout and connect_timeout must be longer than zero")]
    ZeroTimeout,
}

impl SessionConfig {
    /// Checks the settings a session cannot work with.
    pub fn validate(&self) -> Result<(), SessionConfigError> {
        if self.sctp_buffer < super::FRAME_MAX {
            return Err(SessionConfigError::SctpBufferTooSmall(super::FRAME_MAX));
        }
        if self.idle_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(SessionConfigError::ZeroTimeout);
        }
        Ok(())
    }
}

/// The kind of an ICE candidate (RFC 8445 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CandidateKind {
    /// An address of our own socket.
    Host,
    /// Our address as seen from outside a NAT (by STUN, or by DHT nodes).
    ServerReflexive,
}

/// An ICE candidate as it travels in signaling: a kind and an address (UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IceCandidate {
    /// Host or server-reflexive.
    pub kind: CandidateKind,
    /// The transport address.
    pub addr: SocketAddr,
}

/// What one side tells the other to connect: everything a member's signaling carries.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionParameters {
    /// ICE username fragment.
    pub ufrag: String,
    /// ICE password.
    pub pwd: String,
    /// SHA-256 fingerprint of the DTLS certificate (binds the channel to the member
    /// whose signaling carried it).
    pub fingerprint: [u8; 32],
    /// ICE candidates.
    pub candidates: Vec<IceCandidate>,
    /// The SCTP INIT chunk for SNAP, if offered.
    pub sctp_init: Option<Vec<u8>>,
}

impl std::fmt::Debug for SessionParameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pwd is a secret: never log it.
        f.debug_struct("SessionParameters")
            .field("ufrag", &self.ufrag)
            .field(
                "fingerprint",
                &format_args!("{:02x}{:02x}…", self.fingerprint[0], self.fingerprint[1]),
            )
            .field("candidates", &self.candidates)
            .field("sctp_init", &self.sctp_init.as_ref().map(Vec::len))
            .finish()
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// Nothing arrived from the peer for [`SessionConfig::idle_timeout`] (dead path).
    Timeout,
    /// The channel did not open within [`SessionConfig::connect_timeout`].
    ConnectTimeout,
    /// DTLS failed: the peer's certificate does not match the signaled fingerprint, or
    /// the handshake broke.
    HandshakeFailed,
    /// The peer closed the DTLS connection, the association or the channel.
    ClosedByPeer,
    /// [`Session::close`] was called.
    ClosedLocally,
}

/// What a session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The data channel is open: messages flow.
    Connected,
    /// A whole message from the peer.
    Message(Vec<u8>),
    /// `send` said [`SendError::WouldBlock`], and the queue has room again.
    Writable,
    /// The session is over; it sends and receives nothing more.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
}

/// Why [`Session::new`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NewSessionError {
    /// The local address cannot be an ICE candidate (unspecified, multicast, …).
    #[error("the local address cannot be an ICE host candidate")]
    BadLocalAddress,
    /// The local DTLS fingerprint is not SHA-256 (a str0m change).
    #[error("the DTLS fingerprint is not SHA-256")]
    Fingerprint,
    /// The SCTP INIT for SNAP could not be made.
    #[error("could not make the SCTP INIT chunk")]
    Snap,
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] SessionConfigError),
}

/// Why [`Session::set_remote`] or [`Session::add_remote_candidate`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetRemoteError {
    /// `set_remote` was already called.
    #[error("remote parameters were already set")]
    AlreadySet,
    /// The session is closed.
    #[error("the session is closed")]
    Closed,
    /// A ufrag of fewer than 4 or a pwd of fewer than 22 ice-chars, or either too long.
    #[error("invalid ICE credentials")]
    BadCredentials,
    /// More than [`MAX_REMOTE_CANDIDATES`], none at all, or an unusable address.
    #[error("invalid or too many candidates")]
    BadCandidates,
    /// The SNAP INIT chunk is too long.
    #[error("invalid SCTP INIT chunk")]
    BadSctpInit,
    /// str0m refused to start DTLS or SCTP.
    #[error("the WebRTC stack refused to start")]
    Start,
}

/// Why [`Session::send`] refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The outgoing queue is full: wait for [`SessionEvent::Writable`]. Nothing was
    /// queued.
    #[error("the send queue is full")]
    WouldBlock,
    /// The message is larger than [`MAX_MESSAGE_SIZE`] (on a plain channel to a standard
    /// WebRTC peer: larger than the peer's `a=max-message-size`).
    #[error("message larger than the size bound")]
    TooLarge,
    /// The session is closed.
    #[error("the session is closed")]
    Closed,
    /// An empty message on a plain channel (towards a standard WebRTC peer): str0m would
    /// send no SCTP message for it yet use up the stream's next sequence number, and
    /// every later message would be stuck at the peer. Send at least one byte. (Framed
    /// channels, between dhtmeet peers, carry empty messages.)
    #[error("empty messages cannot be sent on a plain data channel")]
    Empty,
}

/// Per-session counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Application messages delivered to the peer's SCTP stack (fully queued in it).
    pub messages_sent: u64,
    /// Application bytes of those messages.
    pub bytes_sent: u64,
    /// Application messages received whole.
    pub messages_received: u64,
    /// Application bytes of those messages.
    pub bytes_received: u64,
    /// UDP datagrams handed to `poll_transmit`.
    pub datagrams_sent: u64,
    /// Their bytes.
    pub datagram_bytes_sent: u64,
    /// UDP datagrams given to `handle_datagram` and taken by str0m.
    pub datagrams_received: u64,
    /// Their bytes.
    pub datagram_bytes_received: u64,
    /// Datagrams dropped: not STUN/DTLS, after close, or refused by str0m.
    pub datagrams_dropped: u64,
    /// Frames on the channel that broke the framing (the partial message is dropped).
    pub malformed_frames: u64,
    /// The latest ICE round-trip time on the selected pair, if measured.
    pub rtt: Option<Duration>,
}
