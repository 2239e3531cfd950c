//! [`PeerConnection`]: a WebRTC data channel to any standard WebRTC stack (a browser
//! tab, simple-peer, another library), set up by SDP offer/answer passed out of band.
//! It is a [`Session`] underneath, so the channel behaves as between meeting members:
//! the same events, stats, bounds, timeouts and run loop.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::Candidate;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, Reliability};
use str0m::config::DtlsVersion;
use str0m::net::Protocol;

use super::sdp::{self, CandidateCheck, FRAMING_ATTRIBUTE, RemoteSdp, SdpError, Setup};
use super::session::sdp_path::MessageMode;
use super::session::{Outgoing, SeededRtc};
use super::signal::{CandidateInit, Signal};
use super::{
    CandidateKind, IceCandidate, SendError, Session, SessionConfig, SessionEvent, SessionStats,
};
use crate::{SansIo, Seed, Transmit};

/// The label of the data channel a dhtmeet offerer opens.
pub const CHANNEL_LABEL: &str = "dhtmeet";

/// Settings of a [`PeerConnection`]; `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The session underneath: timeouts and buffer bounds (its `dtls` and `snap` are not
    /// used: see `dtls13` and `snap` here).
    pub session: SessionConfig,
    /// Announce [`FRAMING_ATTRIBUTE`]: if the peer announces it too (a dhtmeet peer),
    /// messages are framed as between meeting members (any size up to 16 MiB);
    /// otherwise one message is one SCTP message. Default on.
    pub framing: bool,
    /// Trickle ICE: the description carries no candidates; they follow as
    /// [`Signal::Candidate`]s and a [`Signal::EndOfCandidates`] from
    /// [`PeerConnection::poll_signal`]. Default off (candidates in the SDP).
    pub trickle: bool,
    /// Offer SCTP SNAP (`a=sctp-init`) in our offers. Browsers do not support it yet;
    /// an answerer reciprocates whenever an offer carries it. Default off.
    pub snap: bool,
    /// Our server-reflexive addresses (from STUN), added as candidates beside the host
    /// candidate.
    pub server_reflexive: Vec<SocketAddr>,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            session: SessionConfig::default(),
            framing: true,
            trickle: false,
            snap: false,
            server_reflexive: Vec::new(),
        }
    }
}

/// Why an offer, answer or candidate was refused. After an error from
/// [`PeerConnection::answer`] there is no connection; after one from
/// [`PeerConnection::handle_signal`] with an answer, the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The remote SDP failed the first pass.
    #[error(transparent)]
    Sdp(#[from] SdpError),
    /// str0m refused the description (inconsistent m-lines, bundle groups …).
    #[error("the WebRTC stack refused the remote description")]
    Rejected,
    /// A signal that does not fit the state: an offer to an offerer, a second answer,
    /// an answer to an answerer.
    #[error("unexpected signal for this side of the exchange")]
    UnexpectedSignal,
    /// A candidate for another session (its ufrag is not the peer's).
    #[error("the candidate belongs to another ICE session")]
    ForeignCandidate,
    /// More than [`sdp::MAX_SDP_CANDIDATES`] remote candidates.
    #[error("too many remote candidates")]
    TooManyCandidates,
    /// The local address cannot be an ICE host candidate.
    #[error("the local address cannot be an ICE host candidate")]
    BadLocalAddress,
    /// The connection is closed.
    #[error("the connection is closed")]
    Closed,
}

/// What [`PeerConnection::handle_signal`] did with a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateOutcome {
    /// Added: ICE will try it.
    Added,
    /// An mDNS (`.local`) candidate: skipped (logged).
    SkippedMdns,
    /// TCP, another component, or unparsable: skipped (logged).
    SkippedUnusable,
    /// Not a candidate (an offer or answer was handled), or the end of candidates.
    None,
}

#[derive(Debug)]
enum Role {
    /// We offered; waiting for the answer while `pending` is set.
    Offerer { pending: Option<SdpPendingOffer> },
    /// We answered.
    Answerer,
}

/// Counters of what the SDP path skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignalingStats {
    /// Remote candidates added (from the SDP and trickled).
    pub candidates_added: u64,
    /// mDNS candidates skipped.
    pub skipped_mdns: u64,
    /// Other candidates skipped.
    pub skipped_unusable: u64,
}

/// A WebRTC peer connection with one data channel, negotiated by SDP. See
/// `docs/webrtc-sdp.md` and the module docs of [`crate::webrtc`].
pub struct PeerConnection {
    session: Session,
    role: Role,
    remote_ufrag: Option<String>,
    local_description: String,
    signals: VecDeque<Signal>,
    signaling: SignalingStats,
    trickle: bool,
    framing: bool,
}

impl std::fmt::Debug for PeerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConnection")
            .field("role", &self.role)
            .field("session", &self.session)
            .field("signaling", &self.signaling)
            .finish_non_exhaustive()
    }
}

impl PeerConnection {
    /// Creates the offerer's side on our socket address `local`: returns the
    /// connection and the offer to send. Then give the answer to
    /// [`PeerConnection::handle_signal`].
    pub fn offer(
        now: Instant,
        config: PeerConfig,
        local: SocketAddr,
        seed: Seed,
    ) -> Result<(PeerConnection, Signal), PeerError> {
        // An offerer is the ICE controlling side and, as str0m answers `actpass` with
        // `passive` and browsers with `active`, either DTLS client or server: DTLS 1.2,
        // which every stack speaks.
        let mut peer = PeerConnection::build(now, &config, local, seed, DtlsVersion::Dtls12, true)?;
        let made = peer.session.rtc_call(|rtc| {
            let mut api = rtc.sdp_api();
            let channel = api.add_channel_with_config(ChannelConfig {
                label: CHANNEL_LABEL.into(),
                ordered: true,
                reliability: Reliability::Reliable,
                negotiated: None,
                protocol: String::new(),
            });
            api.apply()
                .map(|(offer, pending)| (channel, offer, pending))
        });
        // `apply` gives nothing only without changes, and a channel was just added.
        let Some((channel, offer, pending)) = made else {
            return Err(PeerError::Rejected);
        };
        peer.session.set_channel(channel);
        peer.role = Role::Offerer {
            pending: Some(pending),
        };
        let sdp = peer.describe(offer.to_sdp_string());
        peer.session.settle();
        Ok((peer, Signal::Offer { sdp }))
    }

    /// Creates the answerer's side for a remote `offer` (a [`Signal::Offer`]): returns
    /// the connection and the answer to send. Connecting starts at once.
    pub fn answer(
        now: Instant,
        config: PeerConfig,
        local: SocketAddr,
        seed: Seed,
        offer: &Signal,
    ) -> Result<(PeerConnection, Signal), PeerError> {
        let Signal::Offer { sdp } = offer else {
            return Err(PeerError::UnexpectedSignal);
        };
        let remote = sdp::inspect(sdp)?;
        let offer = SdpOffer::from_sdp_string(&remote.cleaned).map_err(|_| SdpError::Unparsable)?;
        // str0m answers `actpass` and `active` as the DTLS server, which follows the
        // client's version; it is the client only for a `passive` offer.
        let version = match remote.setup {
            Some(Setup::Passive) => DtlsVersion::Dtls12,
            _ => DtlsVersion::Auto,
        };
        let mut peer = PeerConnection::build(now, &config, local, seed, version, false)?;
        let answer = peer
            .session
            .rtc_call(|rtc| rtc.sdp_api().accept_offer(offer))
            .map_err(|_| PeerError::Rejected)?;
        peer.role = Role::Answerer;
        peer.take_remote(&remote);
        let sdp = peer.describe(answer.to_sdp_string());
        peer.session.start_connecting(now);
        Ok((peer, Signal::Answer { sdp }))
    }

    fn build(
        now: Instant,
        config: &PeerConfig,
        local: SocketAddr,
        seed: Seed,
        dtls: DtlsVersion,
        controlling: bool,
    ) -> Result<PeerConnection, PeerError> {
        let parts = SeededRtc::build(now, &seed, "webrtc", |c| {
            c.set_dtls_version(dtls)
                .set_snap_enabled(config.snap)
                .set_sctp_max_buffered_amount(config.session.sctp_buffer)
        })
        .into_parts(now, config.session.clone(), controlling, local)
        .ok_or(PeerError::Rejected)?;
        let mut session = Session::from_sdp_parts(parts);
        let host = Candidate::host(local, Protocol::Udp).map_err(|_| PeerError::BadLocalAddress)?;
        session.rtc_call(|rtc| rtc.add_local_candidate(host).is_some());
        for &addr in config.server_reflexive.iter().take(sdp::MAX_SDP_CANDIDATES) {
            if let Ok(c) = Candidate::server_reflexive(addr, local, Protocol::Udp)
                && session.rtc_call(|rtc| rtc.add_local_candidate(c).is_some())
            {
                session.note_local_candidate(IceCandidate {
                    kind: CandidateKind::ServerReflexive,
                    addr,
                });
            }
        }
        Ok(PeerConnection {
            session,
            role: Role::Answerer,
            remote_ufrag: None,
            local_description: String::new(),
            signals: VecDeque::new(),
            signaling: SignalingStats::default(),
            trickle: config.trickle,
            framing: config.framing,
        })
    }

    /// Our description as sent: str0m's, with the framing attribute, and in trickle
    /// mode without candidates (queued as signals instead).
    fn describe(&mut self, sdp: String) -> String {
        let mut out = String::with_capacity(sdp.len() + 64);
        let mut mid = None;
        for line in sdp.lines() {
            if let Some(m) = line.strip_prefix("a=mid:") {
                mid.get_or_insert_with(|| m.to_owned());
            }
            if let Some(c) = line.strip_prefix("a=")
                && c.starts_with("candidate:")
                && self.trickle
            {
                self.signals.push_back(Signal::Candidate(CandidateInit {
                    candidate: c.to_owned(),
                    sdp_mid: None,
                    sdp_m_line_index: Some(0),
                    username_fragment: Some(self.session.ufrag().to_owned()),
                }));
                continue;
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
        for s in &mut self.signals {
            if let Signal::Candidate(c) = s {
                c.sdp_mid = mid.clone();
            }
        }
        if self.trickle {
            self.signals.push_back(Signal::EndOfCandidates);
        }
        if self.framing {
            // The application m-line is the last (the only one we make or answer in
            // a data-channel session), so the attribute belongs to it.
            out.push_str(FRAMING_ATTRIBUTE);
            out.push_str("\r\n");
        }
        self.local_description = out.clone();
        out
    }

    /// What the remote description fixes: its ufrag, addresses and the message mode.
    fn take_remote(&mut self, remote: &RemoteSdp) {
        self.remote_ufrag = Some(remote.ufrag.clone());
        for &addr in &remote.candidates {
            self.session.add_remote_addr(addr);
        }
        self.signaling.candidates_added += remote.candidates.len() as u64;
        self.signaling.skipped_mdns += remote.skipped_mdns as u64;
        self.signaling.skipped_unusable += remote.skipped_other as u64;
        let mode = if self.framing && remote.framing {
            MessageMode::Framed
        } else {
            MessageMode::Plain {
                max_message_size: remote.max_message_size,
            }
        };
        self.session.set_mode(mode);
    }

    // ---- getters ----

    /// The SDP we sent (offer or answer).
    pub fn local_description(&self) -> &str {
        &self.local_description
    }

    /// Messages are framed (the peer is a dhtmeet peer that announced framing).
    pub fn is_framed(&self) -> bool {
        !self.session.is_plain()
    }

    /// The largest message [`PeerConnection::send`] takes: 16 MiB between dhtmeet
    /// peers, the peer's `a=max-message-size` towards a standard peer (before the
    /// answer: 16 MiB).
    pub fn max_message_size(&self) -> usize {
        self.session.max_send_size()
    }

    /// The data channel is open.
    pub fn is_connected(&self) -> bool {
        self.session.is_connected()
    }

    /// The connection is over.
    pub fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    /// Counters and RTT, as for a meeting session.
    pub fn stats(&self) -> SessionStats {
        self.session.stats()
    }

    /// What signaling skipped and added.
    pub fn signaling_stats(&self) -> SignalingStats {
        self.signaling
    }

    /// The session underneath.
    pub fn session(&self) -> &Session {
        &self.session
    }

    // ---- inputs and mutators ----

    /// Takes a signal from the peer: the answer (offerer), or a trickled candidate.
    pub fn handle_signal(
        &mut self,
        now: Instant,
        signal: &Signal,
    ) -> Result<CandidateOutcome, PeerError> {
        if self.session.is_closed() {
            return Err(PeerError::Closed);
        }
        match signal {
            Signal::Answer { sdp } => {
                let Role::Offerer { pending } = &mut self.role else {
                    return Err(PeerError::UnexpectedSignal);
                };
                let Some(pending) = pending.take() else {
                    return Err(PeerError::UnexpectedSignal);
                };
                let result = self.accept_answer(now, sdp, pending);
                if result.is_err() {
                    self.session.close();
                }
                result.map(|()| CandidateOutcome::None)
            }
            Signal::Offer { .. } => Err(PeerError::UnexpectedSignal),
            Signal::Candidate(c) => self.add_remote_candidate(now, c),
            Signal::EndOfCandidates => Ok(CandidateOutcome::None),
        }
    }

    fn accept_answer(
        &mut self,
        now: Instant,
        sdp: &str,
        pending: SdpPendingOffer,
    ) -> Result<(), PeerError> {
        let remote = sdp::inspect(sdp)?;
        if remote.setup == Some(Setup::ActPass) {
            // An answer must choose (RFC 5763 §5).
            return Err(SdpError::UnsupportedSetup.into());
        }
        let answer =
            SdpAnswer::from_sdp_string(&remote.cleaned).map_err(|_| SdpError::Unparsable)?;
        self.session
            .rtc_call(|rtc| rtc.sdp_api().accept_answer(pending, answer))
            .map_err(|_| PeerError::Rejected)?;
        self.take_remote(&remote);
        self.session.start_connecting(now);
        Ok(())
    }

    fn add_remote_candidate(
        &mut self,
        now: Instant,
        init: &CandidateInit,
    ) -> Result<CandidateOutcome, PeerError> {
        if let (Some(theirs), Some(known)) = (&init.username_fragment, &self.remote_ufrag)
            && theirs != known
        {
            return Err(PeerError::ForeignCandidate);
        }
        match sdp::check_candidate(&init.candidate) {
            CandidateCheck::Usable(c) => {
                if self.signaling.candidates_added >= sdp::MAX_SDP_CANDIDATES as u64 {
                    return Err(PeerError::TooManyCandidates);
                }
                self.signaling.candidates_added += 1;
                self.session.add_remote_addr(c.addr());
                self.session.rtc_call(|rtc| rtc.add_remote_candidate(*c));
                self.session.handle_timeout(now);
                Ok(CandidateOutcome::Added)
            }
            CandidateCheck::Mdns => {
                self.signaling.skipped_mdns += 1;
                tracing::warn!(
                    candidate = init.candidate,
                    "skipping an mDNS (.local) candidate: names are not resolved"
                );
                Ok(CandidateOutcome::SkippedMdns)
            }
            CandidateCheck::Unusable => {
                self.signaling.skipped_unusable += 1;
                tracing::debug!(candidate = init.candidate, "skipping an unusable candidate");
                Ok(CandidateOutcome::SkippedUnusable)
            }
        }
    }

    /// Adds one of our server-reflexive addresses after the description was sent: the
    /// candidate to send comes out of [`PeerConnection::poll_signal`]. `false` if str0m
    /// refused it.
    pub fn add_local_candidate(&mut self, addr: SocketAddr) -> bool {
        let Ok(c) = Candidate::server_reflexive(addr, self.session_local(), Protocol::Udp) else {
            return false;
        };
        let line = c.to_sdp_string();
        if !self
            .session
            .rtc_call(|rtc| rtc.add_local_candidate(c).is_some())
        {
            return false;
        }
        self.session.note_local_candidate(IceCandidate {
            kind: CandidateKind::ServerReflexive,
            addr,
        });
        self.signals.push_back(Signal::Candidate(CandidateInit {
            candidate: line,
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: Some(self.session.ufrag().to_owned()),
        }));
        true
    }

    fn session_local(&self) -> SocketAddr {
        self.session
            .local_parameters()
            .candidates
            .first()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.addr)
    }

    /// The next signal to send the peer besides the offer or answer (trickled
    /// candidates, then the end of candidates).
    #[must_use]
    pub fn poll_signal(&mut self) -> Option<Signal> {
        self.signals.pop_front()
    }

    /// Queues a binary message (see [`Session::send`]).
    pub fn send(&mut self, message: &[u8]) -> Result<(), SendError> {
        self.session.send_message(Outgoing::Borrowed(message), true)
    }

    /// Queues a text message: a string on the peer's side if the channel is plain
    /// (framed channels carry bytes only; the text arrives as its UTF-8).
    pub fn send_text(&mut self, message: &str) -> Result<(), SendError> {
        self.session
            .send_message(Outgoing::Borrowed(message.as_bytes()), false)
    }

    /// Closes gracefully (see [`Session::close`]).
    pub fn close(&mut self) {
        self.session.close();
    }
}

impl SansIo for PeerConnection {
    type Event = SessionEvent;

    fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
    ) {
        self.session.handle_datagram(now, local, remote, datagram);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.session.handle_timeout(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.session.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<SessionEvent> {
        self.session.poll_event()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }
}

#[cfg(test)]
#[path = "peer_tests.rs"]
pub(super) mod tests;
