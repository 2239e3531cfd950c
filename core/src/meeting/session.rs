//! One WebRTC peer connection between two members: ICE, DTLS and one reliable, ordered
//! data channel, on str0m's direct API (no SDP), as a sans-IO state machine.
//!
//! # Use
//!
//! 1. [`Session::new`] with our ICE role (the caller's deterministic rule decides who
//!    is controlling), our socket address as a host candidate, a seed and `now`.
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
//! before every call into str0m (see `Session::rtc_call`), so those draws depend only
//! on the session's seed and inputs. What cannot be contained (DTLS and SCTP handshake
//! bytes, the certificate) is listed in `docs/webrtc.md`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::Rng as _;
use str0m::channel::{ChannelConfig, ChannelId, Reliability, SctpInitData};
use str0m::config::{DtlsVersion, Fingerprint};
use str0m::ice::IceCreds;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Input, Rtc, RtcConfig};

pub use super::session_framing::MAX_MESSAGE_SIZE;
use super::session_framing::{FRAME_MAX, Reassembly, SendQueue};
use super::session_rtc::remote_candidate;
use super::session_sdp::MessageMode;
pub use super::session_types::{
    CandidateKind, DisconnectReason, DtlsChoice, IceCandidate, NewSessionError, SendError,
    SessionConfig, SessionConfigError, SessionEvent, SessionParameters, SessionStats,
    SetRemoteError,
};
use crate::{SansIo, Seed, Transmit};

/// The SCTP stream id of the one pre-negotiated data channel.
const CHANNEL_STREAM_ID: u16 = 0;
/// At most this many remote candidates are taken from signaling.
pub const MAX_REMOTE_CANDIDATES: usize = 8;
/// At most this many remote addresses are remembered for [`Session::accepts`].
pub const MAX_REMOTE_ADDRS: usize = 16;
/// Longest accepted remote ufrag or pwd, in bytes.
const MAX_CREDENTIAL_LEN: usize = 256;
/// Longest accepted remote SCTP INIT chunk (SNAP), in bytes.
const MAX_SCTP_INIT_LEN: usize = 512;
/// Timeouts further away than this are str0m's "never".
const FAR_FUTURE: Duration = Duration::from_secs(24 * 3600);
/// The smallest step the session asks to be woken after, when str0m keeps asking for
/// an immediate wakeup (so a driver never spins at one instant).
pub(super) const MIN_TICK: Duration = Duration::from_millis(1);
/// DTLS datagrams a session takes before it settles even if nobody polls (see
/// `Session::unsettled`): dimpl queues at most 30 received records until str0m polls
/// it, and refuses more.
pub(super) const MAX_UNSETTLED: usize = 16;
/// How long after `close` str0m is still driven to send its close output.
const CLOSE_DRAIN: Duration = Duration::from_secs(2);
/// The least a session lets str0m's SCTP buffer hold once the path's RTT is known (see
/// `Session::sctp_budget`); by the formula this is only reached below a 0.33 ms RTT.
/// Measured in memory (16 MiB, zero delay): 64 KiB moves ~116 MiB/s, 128 KiB ~83.
pub(super) const MIN_SCTP_BUDGET: usize = 64 * 1024;
// A budget below one frame would cut every frame.
const _: () = assert!(MIN_SCTP_BUDGET >= super::session_framing::FRAME_MAX);
/// The rate the SCTP budget is sized for: budget = RTT × this (bytes per second),
/// between [`MIN_SCTP_BUDGET`] and [`SessionConfig::sctp_buffer`].
pub(super) const BUDGET_RATE: f64 = 200e6;
/// Characters of ICE credentials (RFC 8839 §5.4, `ice-char`).
pub(crate) const ICE_CHARS: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for `set_remote`.
    New,
    /// ICE/DTLS/SCTP under way since `set_remote`.
    Connecting { deadline: Instant },
    /// The channel is open.
    Connected,
    /// Over.
    Closed,
}

/// One WebRTC peer connection with one reliable, ordered data channel. See the
/// comments at the top of `core/src/meeting/session.rs` and `docs/webrtc.md`.
pub struct Session {
    pub(super) config: SessionConfig,
    pub(super) rtc: Rtc,
    pub(super) controlling: bool,
    pub(super) local: SocketAddr,
    pub(super) local_params: SessionParameters,
    pub(super) snap: Option<SctpInitData>,
    pub(super) phase: Phase,
    pub(super) channel: Option<ChannelId>,
    /// ICE and DTLS are up (str0m's `Connected`).
    pub(super) dtls_connected: bool,
    /// The data channel is open (with SNAP, str0m says so before DTLS is up).
    pub(super) channel_open: bool,
    /// After `close`, str0m is still driven until then to send its close output.
    pub(super) closing_until: Option<Instant>,
    /// The latest `now` seen.
    pub(super) now: Instant,
    /// str0m's next timeout, as it gave it (clamped when read).
    pub(super) rtc_timeout: Option<Instant>,
    pub(super) last_received: Instant,
    /// Half the time from `set_remote` to `Connected` (the handshake takes at least two
    /// round trips, fewer only if the peer started long before us): an RTT estimate
    /// until ICE measures one.
    pub(super) handshake_rtt: Option<Duration>,
    /// The smallest ICE round trip measured: the path's own delay, without the queueing
    /// our own data adds (see [`Session::sctp_budget`]).
    pub(super) min_rtt: Option<Duration>,
    /// The state of the session's own stream that reseeds `fastrand` on every call.
    pub(super) fastrand_state: u64,
    pub(super) remote_addrs: Vec<SocketAddr>,
    pub(super) send_queue: SendQueue,
    pub(super) frame: Vec<u8>,
    pub(super) reassembly: Reassembly,
    pub(super) want_writable: bool,
    pub(super) transmits: VecDeque<Transmit>,
    /// Datagrams handed to str0m since the last [`Session::settle`]: settling (a walk
    /// over SCTP's in-flight chunks) waits for the first `poll_*` call, so a burst read
    /// in one go costs one settle, not one per datagram; at most [`MAX_UNSETTLED`].
    pub(super) unsettled: usize,
    pub(super) events: VecDeque<SessionEvent>,
    pub(super) stats: SessionStats,
    /// Framed (between dhtmeet members) or plain (towards a standard WebRTC peer).
    pub(crate) mode: MessageMode,
    /// SDP path: adopt the first channel that opens (the peer may be the one opening it).
    pub(crate) adopt_channel: bool,
}

/// What a session is built from: an `Rtc` and its local credentials (made by
/// [`Session::new`] for meetings, or by the SDP path).
pub(crate) struct SessionParts {
    pub config: SessionConfig,
    pub rtc: Rtc,
    pub controlling: bool,
    pub local: SocketAddr,
    pub ufrag: String,
    pub pwd: String,
    pub fingerprint: [u8; 32],
    pub fastrand_state: u64,
    pub now: Instant,
}

/// A str0m `Rtc` built with ICE credentials and a `fastrand` state derived from a seed:
/// the one recipe both paths use (meetings' [`Session::new`] and the SDP path), so that
/// str0m's own draws depend on nothing but the seed.
pub(crate) struct SeededRtc {
    pub rtc: Rtc,
    pub ufrag: String,
    pub pwd: String,
    /// `fastrand`'s state after building (see [`Session::rtc_call`]).
    pub fastrand_state: u64,
    /// Our DTLS certificate's SHA-256 fingerprint (`None` if str0m gave another hash).
    pub fingerprint: Option<[u8; 32]>,
}

impl SeededRtc {
    /// Builds the `Rtc` from `seed`'s children `{label}/ice-credentials`,
    /// `{label}/fastrand` and `{label}/dtls` (dimpl's RNG, see `seeded_dtls`);
    /// `configure` adds the path's own settings.
    pub(crate) fn build(
        seed: &Seed,
        label: &str,
        now: Instant,
        configure: impl FnOnce(RtcConfig) -> RtcConfig,
    ) -> SeededRtc {
        let mut rng = seed.child(&format!("{label}/ice-credentials")).rng();
        let mut ice_string = |n: usize| -> String {
            (0..n)
                .map(|_| ICE_CHARS[(rng.next_u32() % 64) as usize] as char)
                .collect()
        };
        let ufrag = ice_string(8);
        let pwd = ice_string(24);
        let fr = seed.child(&format!("{label}/fastrand")).0;
        let dtls = seed.child(&format!("{label}/dtls")).0;
        let rtc_config = RtcConfig::new()
            .set_crypto_provider(super::seeded_dtls::crypto_provider())
            .set_local_ice_credentials(IceCreds {
                ufrag: ufrag.clone(),
                pass: pwd.clone(),
            })
            .set_stats_interval(Some(Duration::from_secs(1)));
        fastrand::seed(u64::from_be_bytes([
            fr[0], fr[1], fr[2], fr[3], fr[4], fr[5], fr[6], fr[7],
        ]));
        let dtls_seed = u64::from_be_bytes([
            dtls[0], dtls[1], dtls[2], dtls[3], dtls[4], dtls[5], dtls[6], dtls[7],
        ]);
        let mut rtc =
            super::seeded_dtls::build_with_seed(dtls_seed, || configure(rtc_config).build(now));
        let fastrand_state = fastrand::u64(..);
        let fp = rtc.direct_api().local_dtls_fingerprint().clone();
        let fingerprint = fp
            .hash_func
            .eq_ignore_ascii_case("sha-256")
            .then(|| fp.bytes.try_into().ok())
            .flatten();
        SeededRtc {
            rtc,
            ufrag,
            pwd,
            fastrand_state,
            fingerprint,
        }
    }
}

impl SeededRtc {
    /// The parts of a session around this `Rtc`; `None` if str0m gave a fingerprint
    /// that is not SHA-256 (the only hash signaling carries).
    pub(crate) fn into_parts(
        self,
        config: SessionConfig,
        controlling: bool,
        local: SocketAddr,
        now: Instant,
    ) -> Option<SessionParts> {
        Some(SessionParts {
            config,
            rtc: self.rtc,
            controlling,
            local,
            ufrag: self.ufrag,
            pwd: self.pwd,
            fingerprint: self.fingerprint?,
            fastrand_state: self.fastrand_state,
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
            .field("phase", &self.phase)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The one place a `Session` value is built, from an `Rtc` and its credentials
    /// (by [`Session::new`] for meetings and by the SDP path).
    pub(crate) fn assemble(
        parts: SessionParts,
        snap: Option<SctpInitData>,
        sctp_init: Option<Vec<u8>>,
        adopt_channel: bool,
        mode: MessageMode,
    ) -> Session {
        Session {
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
            phase: Phase::New,
            channel: None,
            dtls_connected: false,
            channel_open: false,
            closing_until: None,
            now: parts.now,
            rtc_timeout: None,
            last_received: parts.now,
            handshake_rtt: None,
            min_rtt: None,
            fastrand_state: parts.fastrand_state,
            remote_addrs: Vec::new(),
            send_queue: SendQueue::default(),
            frame: Vec::with_capacity(FRAME_MAX),
            reassembly: Reassembly::default(),
            want_writable: false,
            transmits: VecDeque::new(),
            unsettled: 0,
            events: VecDeque::new(),
            stats: SessionStats::default(),
            mode,
            adopt_channel,
        }
    }

    /// A session on our socket address `local` (our host candidate). `controlling` is
    /// our ICE role; the controlling side is also the DTLS client and the SCTP client.
    /// ICE credentials derive from `seed`.
    pub fn new(
        config: SessionConfig,
        controlling: bool,
        local: SocketAddr,
        seed: Seed,
        now: Instant,
    ) -> Result<Session, NewSessionError> {
        config.validate()?;
        let dtls_version = match (controlling, config.dtls) {
            // The passive side follows the client's ClientHello.
            (false, _) => DtlsVersion::Auto,
            (true, DtlsChoice::Dtls12) => DtlsVersion::Dtls12,
            (true, DtlsChoice::Dtls13) => DtlsVersion::Dtls13,
        };
        let mut built = SeededRtc::build(&seed, "session", now, |c| {
            c.set_dtls_version(dtls_version)
                .set_sctp_max_buffered_amount(config.sctp_buffer)
        });
        let host =
            Candidate::host(local, Protocol::Udp).map_err(|_| NewSessionError::BadLocalAddress)?;
        built.rtc.add_local_candidate(host);
        let snap_wanted = config.snap;
        let parts = built
            .into_parts(config, controlling, local, now)
            .ok_or(NewSessionError::Fingerprint)?;
        let (snap, sctp_init) = if snap_wanted {
            let mut data = SctpInitData::new();
            let init = data.local_init_chunk().map_err(|_| NewSessionError::Snap)?;
            (Some(data), Some(init))
        } else {
            (None, None)
        };
        let mut session = Session::assemble(parts, snap, sctp_init, false, MessageMode::Framed);
        // A new Rtc must be kicked at once, or it starts late (field notes).
        session.rtc_input(Input::Timeout(now));
        session.settle();
        Ok(session)
    }

    // ---- getters ----

    /// What the peer needs to connect to us: send it over signaling.
    pub fn local_parameters(&self) -> &SessionParameters {
        &self.local_params
    }

    /// Our ICE ufrag: connectivity checks for this session carry it first in USERNAME
    /// (see [`ice_username_recipient`](super::ice_username_recipient)).
    pub fn ufrag(&self) -> &str {
        &self.local_params.ufrag
    }

    /// Our ICE role.
    pub fn is_controlling(&self) -> bool {
        self.controlling
    }

    /// The data channel is open.
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// The session is over.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Counters and RTT.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Bytes queued by `send` and not yet handed to SCTP.
    pub fn queued_bytes(&self) -> usize {
        self.send_queue.queued_bytes()
    }

    /// Bytes the session itself holds in buffers: the send queue, a partial incoming
    /// message, and datagrams and messages not yet polled (str0m's own buffers not
    /// included).
    pub fn buffered_bytes(&self) -> usize {
        let transmits: usize = self.transmits.iter().map(|t| t.contents.len()).sum();
        let messages: usize = self
            .events
            .iter()
            .map(|e| match e {
                SessionEvent::Message(m) => m.len(),
                _ => 0,
            })
            .sum();
        self.send_queue.queued_bytes() + self.reassembly.buffered() + transmits + messages
    }

    /// Whether a datagram from `remote` belongs to this session: an ICE check naming
    /// our ufrag, or anything from an address of the peer we know (its candidates and
    /// the addresses its checks came from). Routing advice for the meeting layer, which
    /// should keep its own ufrag → session and address → session maps (see
    /// [`ice_username_recipient`](super::ice_username_recipient)).
    pub fn accepts(&self, remote: SocketAddr, datagram: &[u8]) -> bool {
        if let Some(ufrag) = super::ice_username_recipient(datagram) {
            return ufrag == self.local_params.ufrag.as_bytes();
        }
        self.remote_addrs.contains(&remote)
    }

    // ---- mutators ----

    /// Adds one of our server-reflexive addresses (from STUN, or as DHT nodes saw us)
    /// as a candidate; call before sending [`Session::local_parameters`]. Returns
    /// `false` if str0m refused it (a duplicate, an unusable address).
    pub fn add_local_candidate(&mut self, addr: SocketAddr) -> bool {
        if self.phase == Phase::Closed
            || self.local_params.candidates.len() >= MAX_REMOTE_CANDIDATES
        {
            return false;
        }
        let Ok(c) = Candidate::server_reflexive(addr, self.local, Protocol::Udp) else {
            return false;
        };
        let added = self.rtc_call(|rtc| rtc.add_local_candidate(c).is_some());
        self.settle();
        if added {
            self.local_params.candidates.push(IceCandidate {
                kind: CandidateKind::ServerReflexive,
                addr,
            });
        }
        added
    }

    /// Starts connecting to the peer described by `remote` (from its signaling).
    pub fn set_remote(&mut self, remote: &SessionParameters) -> Result<(), SetRemoteError> {
        match self.phase {
            Phase::New => {}
            Phase::Closed => return Err(SetRemoteError::Closed),
            _ => return Err(SetRemoteError::AlreadySet),
        }
        let credential_ok = |s: &str, min: usize| {
            (min..=MAX_CREDENTIAL_LEN).contains(&s.len())
                && s.bytes().all(|b| ICE_CHARS.contains(&b))
        };
        if !credential_ok(&remote.ufrag, 4) || !credential_ok(&remote.pwd, 22) {
            return Err(SetRemoteError::BadCredentials);
        }
        if remote.candidates.is_empty() || remote.candidates.len() > MAX_REMOTE_CANDIDATES {
            return Err(SetRemoteError::BadCandidates);
        }
        let candidates = remote
            .candidates
            .iter()
            .map(|c| remote_candidate(c).ok_or(SetRemoteError::BadCandidates))
            .collect::<Result<Vec<_>, _>>()?;
        if remote
            .sctp_init
            .as_ref()
            .is_some_and(|i| i.len() > MAX_SCTP_INIT_LEN)
        {
            return Err(SetRemoteError::BadSctpInit);
        }
        let snap = match (self.snap.take(), &remote.sctp_init) {
            (Some(mut data), Some(init)) => {
                data.set_remote_init_chunk(init.clone());
                Some(data)
            }
            _ => None,
        };
        for c in &remote.candidates {
            self.remember_remote(c.addr);
        }
        let controlling = self.controlling;
        let creds = IceCreds {
            ufrag: remote.ufrag.clone(),
            pass: remote.pwd.clone(),
        };
        let fingerprint = Fingerprint {
            hash_func: "sha-256".into(),
            bytes: remote.fingerprint.to_vec(),
        };
        let started = self.rtc_call(move |rtc| {
            for c in candidates {
                rtc.add_remote_candidate(c);
            }
            let mut api = rtc.direct_api();
            api.set_ice_controlling(controlling);
            api.set_remote_ice_credentials(creds);
            api.set_remote_fingerprint(fingerprint);
            api.start_dtls(controlling)?;
            match snap {
                Some(data) => api.start_sctp_with_snap(controlling, data)?,
                None => api.start_sctp(controlling),
            }
            let channel = api.create_data_channel(ChannelConfig {
                label: "dhtmeet".into(),
                ordered: true,
                reliability: Reliability::Reliable,
                negotiated: Some(CHANNEL_STREAM_ID),
                protocol: String::new(),
            });
            Ok::<_, str0m::RtcError>(channel)
        });
        let channel = match started {
            Ok(c) => c,
            Err(_) => {
                self.close_with(DisconnectReason::HandshakeFailed);
                return Err(SetRemoteError::Start);
            }
        };
        self.channel = Some(channel);
        self.phase = Phase::Connecting {
            deadline: self.now + self.config.connect_timeout,
        };
        let now = self.now;
        self.rtc_input(Input::Timeout(now));
        self.settle();
        Ok(())
    }

    /// Adds a candidate the peer signaled later (trickle). The candidate is ignored if
    /// the session already holds [`MAX_REMOTE_CANDIDATES`] remote addresses.
    pub fn add_remote_candidate(&mut self, candidate: IceCandidate) -> Result<(), SetRemoteError> {
        if self.phase == Phase::Closed {
            return Err(SetRemoteError::Closed);
        }
        let c = remote_candidate(&candidate).ok_or(SetRemoteError::BadCandidates)?;
        if self.remote_addrs.len() >= MAX_REMOTE_CANDIDATES {
            return Err(SetRemoteError::BadCandidates);
        }
        self.remember_remote(candidate.addr);
        self.rtc_call(|rtc| rtc.add_remote_candidate(c));
        self.settle();
        Ok(())
    }

    /// Queues `message` for the peer. Messages may be sent before the channel opens;
    /// they go out once it does.
    ///
    /// Accepted if the queue is empty, or if the message fits within
    /// [`SessionConfig::send_queue_limit`]; otherwise [`SendError::WouldBlock`] and
    /// a [`SessionEvent::Writable`] later.
    pub fn send(&mut self, message: &[u8]) -> Result<(), SendError> {
        self.send_kind(message, true)
    }

    /// `send`, as binary or (on a plain channel, see `docs/webrtc-sdp.md`) as text.
    pub(crate) fn send_kind(&mut self, message: &[u8], binary: bool) -> Result<(), SendError> {
        if self.phase == Phase::Closed {
            return Err(SendError::Closed);
        }
        if message.len() > self.max_send_size() {
            return Err(SendError::TooLarge);
        }
        let queued = self.send_queue.queued_bytes();
        if !self.send_queue.is_empty() && queued + message.len() > self.config.send_queue_limit {
            self.want_writable = true;
            return Err(SendError::WouldBlock);
        }
        self.send_queue.push_kind(message.to_vec(), binary);
        self.settle();
        Ok(())
    }

    /// Closes gracefully: the DTLS close_notify goes out through `poll_transmit`, and
    /// [`SessionEvent::Disconnected`] with [`DisconnectReason::ClosedLocally`] follows.
    pub fn close(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        let _ = self.rtc_call(|rtc| rtc.close());
        self.close_with(DisconnectReason::ClosedLocally);
        self.closing_until = Some(self.now + CLOSE_DRAIN);
        self.drain();
    }

    // ---- internals ----
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
        if self.phase == Phase::Closed {
            self.stats.datagrams_dropped += 1;
            return;
        }
        let Ok(receive) = Receive::new(Protocol::Udp, remote, local, datagram) else {
            self.stats.datagrams_dropped += 1;
            return;
        };
        let input = Input::Receive(now, receive);
        // The meeting layer routed this datagram here, so str0m gets it even if its own
        // `accepts` says no (it refuses the first DTLS datagram from a peer-reflexive
        // address). Only what str0m recognises as the peer's counts as life on the path.
        let from_peer = self.rtc.accepts(&input);
        if super::ice_username_recipient(datagram) == Some(self.local_params.ufrag.as_bytes()) {
            self.remember_remote(remote);
        }
        // DTLS from an address that is neither a signaled candidate nor the source of a
        // check for us is a stranger's: drop it. (str0m would take it, and 50 bogus
        // handshake records stall dimpl's handshake for good.)
        let dtls = matches!(datagram.first(), Some(20..=63));
        if dtls && !from_peer && !self.remote_addrs.contains(&remote) {
            self.stats.datagrams_dropped += 1;
            return;
        }
        self.stats.datagrams_received += 1;
        self.stats.datagram_bytes_received += datagram.len() as u64;
        if from_peer {
            self.last_received = now;
        }
        self.rtc_input(input);
        self.unsettled += 1;
        // Only DTLS (the data) waits: ICE's STUN exchanges are settled at once.
        if !dtls || self.unsettled >= MAX_UNSETTLED {
            self.settle();
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let now = self.now;
        if self.phase == Phase::Closed {
            if self.closing_until.is_some_and(|t| now < t) && self.rtc.is_alive() {
                self.rtc_input(Input::Timeout(now));
                self.drain();
            } else {
                self.closing_until = None;
            }
            return;
        }
        match self.phase {
            Phase::Connecting { deadline } if now >= deadline => {
                self.close_with(DisconnectReason::ConnectTimeout);
                return;
            }
            Phase::Connected if now >= self.last_received + self.config.idle_timeout => {
                self.close_with(DisconnectReason::Timeout);
                return;
            }
            _ => {}
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
        if self.unsettled > 0 {
            self.settle();
        }
        self.events.pop_front()
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
        if self.phase == Phase::Closed {
            // After `close`, until str0m has sent its close output or the drain ends.
            let until = self.closing_until?;
            return Some(rtc.map_or(until, |t| t.min(until)).max(self.now + MIN_TICK));
        }
        match (rtc, self.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
