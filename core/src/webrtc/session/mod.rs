//! One WebRTC peer connection: ICE, DTLS and one reliable, ordered data channel, on
//! str0m's direct API (no SDP; the SDP path, `PeerConnection`, builds the same type),
//! as a sans-IO state machine.
//!
//! # Use
//!
//! 1. [`Session::new`] with `now`, our ICE role (the caller's deterministic rule decides
//!    who is controlling), our socket address as a host candidate and a seed.
//! 2. Send [`Session::local_parameters`] to the peer over signaling; give the peer's to
//!    [`Session::set_remote`].
//! 3. Drive it like every machine of the core ([`SansIo`]): `handle_datagram`,
//!    `handle_timeout`, then drain `poll_transmit`, `poll_event`, `poll_timeout`.
//!    [`SessionEvent::Connected`] says the data channel is open.
//! 4. [`Session::send`] messages of up to [`MAX_MESSAGE_SIZE`] bytes; they arrive as
//!    [`SessionEvent::Message`], whole, once, in order. When `send` says
//!    [`SendError::WouldBlock`], wait for [`SessionEvent::Writable`].
//!
//! # Bounds
//!
//! * Outgoing: the queue holds at most [`SessionConfig::send_queue_limit`] bytes, or one
//!   message if that message alone is larger; str0m buffers at most
//!   [`SessionConfig::sctp_buffer`] more.
//! * Incoming: one partial message of at most [`MAX_MESSAGE_SIZE`] bytes; SCTP's receive
//!   window is 1 MiB.
//! * Remote parameters: at most [`MAX_REMOTE_CANDIDATES`] candidates, credentials of at
//!   most 256 bytes; learned remote addresses at most [`MAX_REMOTE_ADDRS`].
//!
//! # Determinism
//!
//! Time comes in as `now`. str0m draws ICE tie-breakers and STUN transaction ids from
//! `fastrand`'s thread-local generator: the session reseeds it from its own stream
//! around every call into str0m and restores the caller's state afterwards (see
//! `rtc.rs`, the one place the core touches `fastrand`), so those draws depend only
//! on the session's seed and inputs. What cannot be contained (DTLS and SCTP handshake
//! bytes, the certificate) is listed in `docs/webrtc.md`.
//!
//! # Parts
//!
//! A session is made of parts that each own their state: `rtc.rs` (str0m's `Rtc` behind
//! the seeded `fastrand` stream, and driving it), `send.rs` (queue, framing out, SCTP budget),
//! `receive.rs` (reassembly), `liveness.rs` (phase, round trips, timeouts), `route.rs`
//! (which datagrams are the peer's) and `dtls.rs` (dimpl seeded from the session).
//! `direct.rs` and `sdp_path.rs` hold what each way of setting a session up does;
//! `rtc.rs` also runs str0m and hands its outputs to the parts; this file holds the
//! public face.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::channel::{ChannelId, SctpInitData};
use str0m::net::{Protocol, Receive};
use str0m::{Input, Rtc};

mod direct;
mod dtls;
mod framing;
mod liveness;
mod receive;
mod route;
mod rtc;
pub(crate) mod sdp_path;
mod send;
mod types;

pub use framing::{FRAME_MAX, FramingError, MAX_MESSAGE_SIZE};
use liveness::Liveness;
use receive::ReceivePath;
use route::RemoteAddrs;
pub use route::{MAX_REMOTE_ADDRS, ice_username_recipient};
pub(crate) use rtc::{BuiltRtc, ICE_CHARS, SeededRtc};
use sdp_path::MessageMode;
use send::SendPath;
pub(crate) use send::{MESSAGE_LEAD, Outgoing, message_buffer};
pub use types::{
    CandidateKind, DisconnectReason, DtlsChoice, IceCandidate, NewSessionError, SendError,
    SessionConfig, SessionConfigError, SessionEvent, SessionParameters, SessionStats,
    SetRemoteError,
};

use crate::{SansIo, Transmit};

/// At most this many remote candidates are taken from signaling.
pub const MAX_REMOTE_CANDIDATES: usize = 8;
/// Timeouts further away than this are str0m's "never".
const FAR_FUTURE: Duration = Duration::from_secs(24 * 3600);
/// The smallest step the session asks to be woken after, when str0m keeps asking for
/// an immediate wakeup (so a driver never spins at one instant).
const MIN_TICK: Duration = Duration::from_millis(1);
/// DTLS datagrams a session takes before it settles even if nobody polls (see
/// `Session::unsettled`): dimpl queues at most 30 received records until str0m polls
/// it, and refuses more.
const MAX_UNSETTLED: usize = 16;

/// Datagram counters (the application's are the send and receive paths').
#[derive(Debug, Clone, Copy, Default)]
struct DatagramCounts {
    sent: u64,
    bytes_sent: u64,
    received: u64,
    bytes_received: u64,
    dropped: u64,
}

/// One WebRTC peer connection with one reliable, ordered data channel. See the
/// comments at the top of `core/src/webrtc/session/mod.rs` and `docs/webrtc.md`.
pub struct Session {
    config: SessionConfig,
    rtc: SeededRtc,
    controlling: bool,
    local: SocketAddr,
    local_params: SessionParameters,
    snap: Option<SctpInitData>,
    channel: Option<ChannelId>,
    /// SDP path: adopt the first channel that opens (the peer may be the one opening it).
    adopt_channel: bool,
    /// The latest `now` seen.
    now: Instant,
    /// str0m's next timeout, as it gave it (clamped when read).
    rtc_timeout: Option<Instant>,
    liveness: Liveness,
    remote_addrs: RemoteAddrs,
    send: SendPath,
    receive: ReceivePath,
    transmits: VecDeque<Transmit>,
    /// Events, each with how many bytes in front of a message are its frame's (see
    /// [`Session::poll_event_framed`]; `poll_event` strips them).
    events: VecDeque<(SessionEvent, usize)>,
    /// Datagrams handed to str0m since the last [`Session::settle`]: settling (a walk
    /// over SCTP's in-flight chunks) waits for the first `poll_*` call, so a burst read
    /// in one go costs one settle, not one per datagram; at most [`MAX_UNSETTLED`].
    unsettled: usize,
    datagrams: DatagramCounts,
}

/// What a session is built from: an `Rtc` and its local credentials (made by
/// [`Session::new`] for meetings, or by the SDP path).
pub(crate) struct SessionParts {
    config: SessionConfig,
    rtc: SeededRtc,
    controlling: bool,
    local: SocketAddr,
    ufrag: String,
    pwd: String,
    fingerprint: [u8; 32],
    now: Instant,
}

impl BuiltRtc {
    /// The parts of a session around this `Rtc`; `None` if str0m gave a fingerprint
    /// that is not SHA-256 (the only hash signaling carries).
    pub(crate) fn into_parts(
        self,
        now: Instant,
        config: SessionConfig,
        controlling: bool,
        local: SocketAddr,
    ) -> Option<SessionParts> {
        Some(SessionParts {
            config,
            rtc: self.rtc,
            controlling,
            local,
            ufrag: self.ufrag,
            pwd: self.pwd,
            fingerprint: self.fingerprint?,
            now,
        })
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("controlling", &self.controlling)
            .field("local", &self.local)
            .field("ufrag", &self.local_params.ufrag)
            .field("phase", &self.liveness.phase())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The one place a `Session` value is built, from an `Rtc` and its credentials
    /// (by [`Session::new`] for meetings and by the SDP path).
    fn assemble(
        parts: SessionParts,
        snap: Option<SctpInitData>,
        sctp_init: Option<Vec<u8>>,
        adopt_channel: bool,
        mode: MessageMode,
    ) -> Session {
        Session {
            liveness: Liveness::new(parts.now, &parts.config),
            send: SendPath::new(&parts.config, mode),
            receive: ReceivePath::default(),
            config: parts.config,
            rtc: parts.rtc,
            controlling: parts.controlling,
            local: parts.local,
            local_params: SessionParameters {
                ufrag: parts.ufrag,
                pwd: parts.pwd,
                fingerprint: parts.fingerprint,
                candidates: vec![IceCandidate {
                    kind: CandidateKind::Host,
                    addr: parts.local,
                }],
                sctp_init,
            },
            snap,
            channel: None,
            adopt_channel,
            now: parts.now,
            rtc_timeout: None,
            remote_addrs: RemoteAddrs::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            unsettled: 0,
            datagrams: DatagramCounts::default(),
        }
    }

    // ---- getters ----

    /// What the peer needs to connect to us: send it over signaling.
    pub fn local_parameters(&self) -> &SessionParameters {
        &self.local_params
    }

    /// Our ICE ufrag: connectivity checks for this session carry it first in USERNAME
    /// (see [`ice_username_recipient`](ice_username_recipient)).
    pub fn ufrag(&self) -> &str {
        &self.local_params.ufrag
    }

    /// Our ICE role.
    pub fn is_controlling(&self) -> bool {
        self.controlling
    }

    /// The data channel is open.
    pub fn is_connected(&self) -> bool {
        self.liveness.is_connected()
    }

    /// The session is over.
    pub fn is_closed(&self) -> bool {
        self.liveness.is_closed()
    }

    /// Counters and RTT.
    pub fn stats(&self) -> SessionStats {
        let (messages_sent, bytes_sent) = self.send.counters();
        let (messages_received, bytes_received, malformed_frames) = self.receive.counters();
        SessionStats {
            messages_sent,
            bytes_sent,
            messages_received,
            bytes_received,
            datagrams_sent: self.datagrams.sent,
            datagram_bytes_sent: self.datagrams.bytes_sent,
            datagrams_received: self.datagrams.received,
            datagram_bytes_received: self.datagrams.bytes_received,
            datagrams_dropped: self.datagrams.dropped,
            malformed_frames,
            rtt: self.liveness.rtt(),
        }
    }

    /// Bytes queued by `send` and not yet handed to SCTP.
    pub fn queued_bytes(&self) -> usize {
        self.send.queued_bytes()
    }

    /// Bytes the session itself holds in buffers: the send queue, a partial incoming
    /// message, and datagrams and messages not yet polled (str0m's own buffers not
    /// included).
    pub fn buffered_bytes(&self) -> usize {
        let transmits: usize = self.transmits.iter().map(|t| t.contents.len()).sum();
        let messages: usize = self
            .events
            .iter()
            .map(|(e, lead)| match e {
                SessionEvent::Message(m) => m.len() - lead,
                _ => 0,
            })
            .sum();
        self.send.queued_bytes() + self.receive.buffered() + transmits + messages
    }

    /// Whether a datagram from `remote` belongs to this session: an ICE check naming
    /// our ufrag, or anything from an address of the peer we know (its candidates and
    /// the addresses its checks came from). Routing advice for the meeting layer, which
    /// should keep its own ufrag → session and address → session maps (see
    /// [`ice_username_recipient`](ice_username_recipient)).
    pub fn accepts(&self, remote: SocketAddr, datagram: &[u8]) -> bool {
        match ice_username_recipient(datagram) {
            Some(ufrag) => ufrag == self.local_params.ufrag.as_bytes(),
            None => self.knows_address(remote),
        }
    }

    /// Whether `remote` is one of the peer's addresses (a signaled candidate or the
    /// source of a check for us): where a datagram that is not an ICE check for a
    /// ufrag of ours must come from ([`Session::accepts`] without the decode, for a
    /// router that has already looked for a USERNAME).
    pub fn knows_address(&self, remote: SocketAddr) -> bool {
        self.remote_addrs.contains(&remote)
    }

    // ---- mutators (see also `direct.rs`, `sdp_path.rs`) ----

    /// Queues `message` for the peer. Messages may be sent before the channel opens;
    /// they go out once it does.
    ///
    /// Accepted if the queue is empty, or if the message fits within
    /// [`SessionConfig::send_queue_limit`]; otherwise [`SendError::WouldBlock`] and
    /// a [`SessionEvent::Writable`] later.
    pub fn send(&mut self, message: &[u8]) -> Result<(), SendError> {
        self.send_message(Outgoing::Borrowed(message), true)
    }

    /// Closes gracefully: the DTLS close_notify goes out through `poll_transmit`, and
    /// [`SessionEvent::Disconnected`] with [`DisconnectReason::ClosedLocally`] follows.
    pub fn close(&mut self) {
        if self.liveness.is_closed() {
            return;
        }
        // A close that fails leaves nothing to send: the session is over either way.
        let _ = self.rtc.call(|rtc| rtc.close());
        self.close_with(DisconnectReason::ClosedLocally);
        self.liveness.start_draining(self.now);
        self.drain();
    }
}

impl SansIo for Session {
    type Event = SessionEvent;

    fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
    ) {
        self.now = self.now.max(now);
        let now = self.now;
        if self.liveness.is_closed() {
            self.datagrams.dropped += 1;
            return;
        }
        let Ok(receive) = Receive::new(Protocol::Udp, remote, local, datagram) else {
            self.datagrams.dropped += 1;
            return;
        };
        let dtls = matches!(datagram.first(), Some(20..=63));
        if !dtls && ice_username_recipient(datagram) == Some(self.local_params.ufrag.as_bytes()) {
            self.remote_addrs.remember(remote);
        }
        let known = self.remote_addrs.contains(&remote);
        let input = Input::Receive(now, receive);
        // One call into str0m. The meeting layer routed this datagram here, so str0m
        // gets it even if its own `accepts` says no (it refuses the first DTLS datagram
        // from a peer-reflexive address); only what str0m recognises as the peer's
        // counts as life on the path. DTLS from an address that is neither a signaled
        // candidate nor the source of a check for us is a stranger's: dropped. (str0m
        // would take it, and 50 bogus handshake records stall dimpl's handshake for
        // good.)
        let taken = self.rtc.call(|rtc| {
            let from_peer = rtc.accepts(&input);
            if dtls && !from_peer && !known {
                return None;
            }
            Some((from_peer, rtc.handle_input(input).is_ok()))
        });
        let Some((from_peer, handled)) = taken else {
            self.datagrams.dropped += 1;
            return;
        };
        self.datagrams.received += 1;
        self.datagrams.bytes_received += datagram.len() as u64;
        if from_peer {
            self.liveness.heard_from_peer(now);
        }
        if !handled {
            self.input_failed();
        }
        self.unsettled += 1;
        // Only DTLS (the data) waits: ICE's STUN exchanges are settled at once.
        if !dtls || self.unsettled >= MAX_UNSETTLED {
            self.settle();
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let now = self.now;
        if self.liveness.is_closed() {
            if self.liveness.draining(now) && self.rtc.inspect(Rtc::is_alive) {
                self.rtc_input(Input::Timeout(now));
                self.drain();
            } else {
                self.liveness.stop_draining();
            }
            return;
        }
        if let Some(reason) = self.liveness.expired(now) {
            self.close_with(reason);
            return;
        }
        // Woken only to settle datagrams (see `unsettled`): str0m's own timer is not due,
        // and an extra timeout input could make it act early (ICE checks).
        if self.unsettled > 0 && self.rtc_timeout.is_none_or(|t| t > now) {
            self.settle();
            return;
        }
        self.rtc_input(Input::Timeout(now));
        self.settle();
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.unsettled > 0 {
            self.settle();
        }
        self.transmits.pop_front()
    }

    fn poll_event(&mut self) -> Option<SessionEvent> {
        let (mut event, lead) = self.poll_event_framed()?;
        if let SessionEvent::Message(m) = &mut event {
            m.drain(..lead);
        }
        Some(event)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.unsettled > 0 {
            // Settling is due: poll_transmit/poll_event or a timeout now does it.
            return Some(self.now);
        }
        // str0m's "now" is an hour in the past and its "never" a century ahead.
        let rtc = self
            .rtc_timeout
            .map(|t| t.max(self.now))
            .filter(|&t| t < self.now + FAR_FUTURE);
        if self.liveness.is_closed() {
            // After `close`, until str0m has sent its close output or the drain ends.
            let until = self.liveness.drain_until()?;
            return Some(rtc.map_or(until, |t| t.min(until)).max(self.now + MIN_TICK));
        }
        match (rtc, self.liveness.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests;
