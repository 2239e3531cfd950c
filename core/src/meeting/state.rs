//! The meeting: from addresses the DHT gave, through authenticated signaling, to one
//! WebRTC [`Session`] per member, with reconnection and a clean leave.
//!
//! The [`Meeting`] owns no socket and no DHT: the [`Node`](crate::Node) hands it the
//! addresses found under the topic ([`Meeting::discovered`]), the `dm_signal` queries
//! that arrived ([`Meeting::handle_signal`]) and the datagrams of its sessions
//! ([`Meeting::handle_datagram`]); it hands back signaling to send through the DHT
//! ([`Meeting::poll_signal`]) and session datagrams ([`Meeting::poll_transmit`]).
//!
//! Flow between two members A and B: each finds the other's address in the DHT and
//! sends a *hello* (both at once is what opens the NATs). Whoever receives a hello or
//! parameters from an unknown member creates a session — the member with the lower
//! member id is ICE-controlling, so both sides agree without talking — and sends its
//! parameters; parameters received start the session's ICE/DTLS/SCTP.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::Rng as _;

use super::delivery::{Delivery, Received};
use super::keys::MeetingKeys;
use super::signal::{MemberId, ReplayGuard, Signal, SignalBody, SignalError};
use crate::dht::{InfoHash, NodeId};
use crate::seed::{Rng, Seed};
use crate::transmit::{SansIo, Transmit};
use crate::webrtc::MAX_MESSAGE_SIZE;
use crate::webrtc::ice_username_recipient;
use crate::webrtc::{
    DisconnectReason, SendError, Session, SessionConfig, SessionEvent, SessionStats,
};

/// Bytes a delivery frame adds to a message (kind and sequence number).
const FRAME_OVERHEAD: usize = 9;
/// How long an acknowledgement may wait for more deliveries to share it.
const ACK_DELAY: Duration = Duration::from_millis(50);

/// Addresses from the DHT remembered at most (each gets hellos until it answers).
pub const MAX_CONTACTS: usize = 256;
/// The gap after a contact's first hello; it doubles with each hello until
/// `MeetingConfig::hello_every`.
const FIRST_HELLO_GAP: Duration = Duration::from_millis(250);

/// Meeting settings; `Default` gives the design's values.
#[derive(Clone, Debug)]
pub struct MeetingConfig {
    /// Settings of each WebRTC session (connect timeout 30 s, dead-path 15 s, …).
    pub session: SessionConfig,
    /// Members connected at most (sessions are the expensive state).
    pub max_members: usize,
    /// A discovered address that has not answered gets a hello this often, once the
    /// first few (0.25 s apart, the gap doubling each time) have gone unanswered.
    pub hello_every: Duration,
    /// A discovered address that is not rediscovered for this long is forgotten.
    pub contact_ttl: Duration,
    /// Reconnection attempts after a session fails (3).
    pub reconnect_attempts: u32,
    /// Delay before each reconnection attempt (5 s).
    pub reconnect_delay: Duration,
}

impl Default for MeetingConfig {
    fn default() -> Self {
        MeetingConfig {
            session: SessionConfig::default(),
            max_members: 32,
            hello_every: Duration::from_secs(5),
            contact_ttl: Duration::from_secs(120),
            reconnect_attempts: 3,
            reconnect_delay: Duration::from_secs(5),
        }
    }
}

/// Why a member is no longer connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerGone {
    /// The member said bye.
    Left,
    /// We left.
    WeLeft,
    /// The session failed and every reconnection attempt too.
    Failed(DisconnectReason),
}

/// What the meeting reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MeetingEvent {
    /// The DHT gave an address under the topic that we had not seen.
    PeerDiscovered {
        /// The address.
        addr: SocketAddr,
    },
    /// A member answered and a session to it is being set up.
    PeerConnecting {
        /// The member.
        member: MemberId,
        /// Where its signaling came from.
        addr: SocketAddr,
    },
    /// The data channel to a member is open.
    PeerConnected {
        /// The member.
        member: MemberId,
    },
    /// The session to a member failed; a new attempt follows after the reconnect delay.
    PeerReconnecting {
        /// The member.
        member: MemberId,
        /// Why the session failed.
        reason: DisconnectReason,
        /// Which attempt comes next (1-based).
        attempt: u32,
    },
    /// A member is gone for good.
    PeerDisconnected {
        /// The member.
        member: MemberId,
        /// Why.
        reason: PeerGone,
    },
    /// A whole message from a member.
    Message {
        /// The sender.
        member: MemberId,
        /// The message.
        data: Vec<u8>,
    },
    /// A member's send queue has room again after [`SendError::WouldBlock`].
    Writable {
        /// The member.
        member: MemberId,
    },
}

/// Counters of the meeting's signaling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeetingStats {
    /// Signaling messages queued for sending.
    pub signals_sent: u64,
    /// Signaling messages accepted.
    pub signals_accepted: u64,
    /// Refused: malformed.
    pub dropped_malformed: u64,
    /// Refused: not authenticated (not a member, or altered).
    pub dropped_bad_mac: u64,
    /// Refused: replayed or too old.
    pub dropped_replayed: u64,
    /// Refused: addressed to another member.
    pub dropped_not_for_us: u64,
    /// New members refused because [`MeetingConfig::max_members`] were present.
    pub dropped_full: u64,
    /// Datagrams for no session.
    pub dropped_unrouted: u64,
}

#[derive(Debug)]
struct Contact {
    member: Option<MemberId>,
    next_hello: Instant,
    /// Hellos sent so far: the first few follow each other quickly (see `FIRST_HELLO_GAP`).
    hellos: u32,
    seen: Instant,
}

#[derive(Debug)]
struct Peer {
    addr: SocketAddr,
    session: Option<Session>,
    remote_ufrag: Option<String>,
    connected: bool,
    attempts: u32,
    retry_at: Option<Instant>,
    /// The session must be connected by then (covers waiting for the member's
    /// parameters, which the session's own connect timeout does not).
    connect_by: Option<Instant>,
    /// Sequence numbers, acknowledgements and the messages awaiting them.
    delivery: Delivery,
    /// When a pending acknowledgement must go out at the latest.
    ack_at: Option<Instant>,
}

/// One meeting's state machine.
#[derive(Debug)]
pub struct Meeting {
    config: MeetingConfig,
    keys: MeetingKeys,
    me: MemberId,
    node_id: NodeId,
    seed: Seed,
    seq: u64,
    sessions_made: u64,
    now: Instant,
    local: SocketAddr,
    reflexive: Vec<SocketAddr>,
    contacts: BTreeMap<SocketAddr, Contact>,
    peers: BTreeMap<MemberId, Peer>,
    replay: ReplayGuard,
    signals: VecDeque<(SocketAddr, Vec<u8>)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<MeetingEvent>,
    /// Members whose session took datagrams whose outputs are not collected yet: a
    /// burst of datagrams is settled once, at the first `poll_*` (see `Session`).
    unsettled: BTreeSet<MemberId>,
    stats: MeetingStats,
    left: bool,
}

impl Meeting {
    /// A meeting for `keys`, on our socket `local` (our host candidate), as DHT node
    /// `node_id`.
    pub fn new(
        config: MeetingConfig,
        keys: MeetingKeys,
        node_id: NodeId,
        local: SocketAddr,
        seed: Seed,
        now: Instant,
    ) -> Self {
        let mut rng: Rng = seed.child("meeting").rng();
        let mut me = [0u8; 8];
        rng.fill_bytes(&mut me);
        Meeting {
            config,
            keys,
            me: MemberId(me),
            node_id,
            seed,
            seq: 0,
            sessions_made: 0,
            now,
            local,
            reflexive: Vec::new(),
            contacts: BTreeMap::new(),
            peers: BTreeMap::new(),
            replay: ReplayGuard::new(),
            signals: VecDeque::new(),
            transmits: VecDeque::new(),
            unsettled: BTreeSet::new(),
            events: VecDeque::new(),
            stats: MeetingStats::default(),
            left: false,
        }
    }

    /// Our member id.
    pub fn member_id(&self) -> MemberId {
        self.me
    }

    /// The DHT topic of the meeting.
    pub fn topic(&self) -> InfoHash {
        self.keys.topic
    }

    /// Signaling counters.
    pub fn stats(&self) -> MeetingStats {
        self.stats
    }

    /// Members with an open data channel.
    pub fn connected(&self) -> Vec<MemberId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.connected)
            .map(|(m, _)| *m)
            .collect()
    }

    /// A member's session counters (and RTT), if a session exists.
    pub fn peer_stats(&self, member: &MemberId) -> Option<SessionStats> {
        self.peers
            .get(member)
            .and_then(|p| Some(p.delivery.application_stats(p.session.as_ref()?.stats())))
    }

    /// Addresses worth remembering for the next time we join: those of members with a
    /// session (connected ones first), then those of contacts that answered as members.
    /// Addresses only, never anything they said.
    pub fn member_addresses(&self) -> Vec<SocketAddr> {
        let mut peers: Vec<&Peer> = self.peers.values().collect();
        peers.sort_by_key(|p| !p.connected);
        let mut out: Vec<SocketAddr> = peers.iter().map(|p| p.addr).collect();
        for (addr, c) in &self.contacts {
            if c.member.is_some() && !out.contains(addr) {
                out.push(*addr);
            }
        }
        out
    }

    /// Our address as someone outside saw it (STUN, or DHT nodes): offered to new
    /// sessions as a server-reflexive candidate.
    pub fn add_reflexive(&mut self, addr: SocketAddr) {
        if addr != self.local && !self.reflexive.contains(&addr) && self.reflexive.len() < 4 {
            self.reflexive.push(addr);
        }
    }

    fn is_own_address(&self, addr: SocketAddr) -> bool {
        addr == self.local || self.reflexive.contains(&addr)
    }

    /// Addresses the DHT found under the topic.
    pub fn discovered(&mut self, addrs: &[SocketAddr], now: Instant) {
        self.advance(now);
        if self.left {
            return;
        }
        for &addr in addrs {
            if self.is_own_address(addr) {
                continue;
            }
            if let Some(c) = self.contacts.get_mut(&addr) {
                c.seen = self.now;
                continue;
            }
            if self.contacts.len() >= MAX_CONTACTS {
                continue;
            }
            self.contacts.insert(
                addr,
                Contact {
                    member: None,
                    next_hello: self.now,
                    hellos: 0,
                    seen: self.now,
                },
            );
            self.events.push_back(MeetingEvent::PeerDiscovered { addr });
        }
        self.send_due_hellos();
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn queue_signal(&mut self, to_addr: SocketAddr, to: Option<MemberId>, body: SignalBody) {
        let seq = self.next_seq();
        let signal = Signal {
            node_id: self.node_id,
            from: self.me,
            to,
            seq,
            body,
        };
        self.signals
            .push_back((to_addr, signal.encode_args(&self.keys.signaling)));
        self.stats.signals_sent += 1;
    }

    fn send_due_hellos(&mut self) {
        let now = self.now;
        let due: Vec<SocketAddr> = self
            .contacts
            .iter()
            .filter(|(_, c)| c.member.is_none() && c.next_hello <= now)
            .map(|(a, _)| *a)
            .collect();
        for addr in due {
            if let Some(c) = self.contacts.get_mut(&addr) {
                // 0.25 s, 0.5 s, 1 s, 2 s, 4 s, then `hello_every`: a hello that meets a
                // NAT that has not yet seen the peer's own hello is dropped, and the next
                // one should not wait long once that hole is open.
                let gap = FIRST_HELLO_GAP
                    .saturating_mul(1 << c.hellos.min(8))
                    .min(self.config.hello_every);
                c.hellos = c.hellos.saturating_add(1);
                c.next_hello = now + gap;
            }
            self.queue_signal(addr, None, SignalBody::Hello);
        }
    }

    /// A `dm_signal` query's arguments from `from`.
    pub fn handle_signal(&mut self, from: SocketAddr, args: &[u8], now: Instant) {
        self.advance(now);
        if self.left {
            return;
        }
        let signal = match Signal::decode_args(args, &self.keys.signaling, self.me) {
            Ok(s) => s,
            Err(e) => {
                self.count(e);
                return;
            }
        };
        if signal.from == self.me {
            // Our own hello, via our own address in the DHT.
            return;
        }
        if let Err(e) = self.replay.check(signal.from, signal.seq, self.now) {
            self.count(e);
            return;
        }
        self.stats.signals_accepted += 1;
        if let Some(c) = self.contacts.get_mut(&from) {
            c.member = Some(signal.from);
        }
        let member = signal.from;
        match signal.body {
            SignalBody::Hello => {
                if !self.peers.contains_key(&member) {
                    self.start_session(member, from);
                }
            }
            SignalBody::Params(params) => {
                let known = self.peers.get(&member).and_then(|p| p.remote_ufrag.clone());
                if known.as_deref() == Some(params.ufrag.as_str()) {
                    return; // The same parameters again.
                }
                if known.is_some() || self.peers.get(&member).is_some_and(|p| p.session.is_none()) {
                    // The member restarted its session: start ours afresh.
                    self.drop_session(&member);
                }
                if self.peers.get(&member).is_none_or(|p| p.session.is_none())
                    && !self.start_session(member, from)
                {
                    return;
                }
                if let Some(peer) = self.peers.get_mut(&member) {
                    peer.addr = from;
                    peer.remote_ufrag = Some(params.ufrag.clone());
                    if let Some(session) = &mut peer.session {
                        if session.set_remote(&params).is_err() {
                            tracing::debug!(%member, "unusable session parameters");
                        }
                    }
                }
                self.collect(&member);
            }
            SignalBody::Bye => {
                if self.peers.contains_key(&member) {
                    self.drop_session(&member);
                    self.peers.remove(&member);
                    self.events.push_back(MeetingEvent::PeerDisconnected {
                        member,
                        reason: PeerGone::Left,
                    });
                }
            }
        }
    }

    fn count(&mut self, e: SignalError) {
        match e {
            SignalError::Malformed(_) => self.stats.dropped_malformed += 1,
            SignalError::BadMac => self.stats.dropped_bad_mac += 1,
            SignalError::NotForUs => self.stats.dropped_not_for_us += 1,
            SignalError::Replayed => self.stats.dropped_replayed += 1,
        }
    }

    /// Creates a session to `member` and sends it our parameters. False if refused.
    fn start_session(&mut self, member: MemberId, addr: SocketAddr) -> bool {
        if !self.peers.contains_key(&member) && self.peers.len() >= self.config.max_members {
            self.stats.dropped_full += 1;
            return false;
        }
        self.sessions_made += 1;
        let seed = self
            .seed
            .child(&format!("session/{member}/{}", self.sessions_made));
        let controlling = self.me < member;
        let mut session = match Session::new(
            self.now,
            self.config.session.clone(),
            controlling,
            self.local,
            seed,
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, local = %self.local, "cannot create a WebRTC session");
                return false;
            }
        };
        for r in self.reflexive.clone() {
            session.add_local_candidate(r);
        }
        let params = session.local_parameters().clone();
        let peer = self.peers.entry(member).or_insert(Peer {
            addr,
            session: None,
            remote_ufrag: None,
            connected: false,
            attempts: 0,
            retry_at: None,
            connect_by: None,
            delivery: Delivery::default(),
            ack_at: None,
        });
        peer.addr = addr;
        peer.retry_at = None;
        peer.connect_by = Some(self.now + self.config.session.connect_timeout);
        peer.session = Some(session);
        peer.remote_ufrag = None;
        peer.connected = false;
        self.events
            .push_back(MeetingEvent::PeerConnecting { member, addr });
        self.queue_signal(addr, Some(member), SignalBody::Params(params));
        true
    }

    fn drop_session(&mut self, member: &MemberId) {
        if let Some(peer) = self.peers.get_mut(member) {
            if let Some(mut s) = peer.session.take() {
                s.close();
                while let Some(t) = s.poll_transmit() {
                    self.transmits.push_back(t);
                }
            }
            peer.remote_ufrag = None;
            peer.connected = false;
        }
    }

    /// Queues `data` for `member`: delivered exactly once and in order, across
    /// reconnections, unless the member is given up. [`SendError::WouldBlock`] when
    /// [`MAX_UNACKED_BYTES`](super::MAX_UNACKED_BYTES) wait for acknowledgement.
    pub fn send(&mut self, member: &MemberId, data: &[u8]) -> Result<(), SendError> {
        if data.len() > MAX_MESSAGE_SIZE - FRAME_OVERHEAD {
            return Err(SendError::TooLarge);
        }
        let peer = self.peers.get_mut(member).ok_or(SendError::Closed)?;
        if !peer.delivery.queue(data) {
            return Err(SendError::WouldBlock);
        }
        self.pump(member);
        Ok(())
    }

    /// Hands a connected session what waits: an owed acknowledgement, then unsent
    /// messages in order, until its queue is full.
    fn pump(&mut self, member: &MemberId) {
        let Some(peer) = self.peers.get_mut(member) else {
            return;
        };
        if !peer.connected {
            return;
        }
        let Peer {
            session: Some(session),
            delivery,
            ack_at,
            ..
        } = peer
        else {
            return;
        };
        if delivery.ack_pending() {
            if let Some(ack) = delivery.take_ack(true) {
                if session.send(&ack).is_ok() {
                    *ack_at = None;
                }
            }
        }
        while let Some((seq, frame)) = delivery.next_frame() {
            if session.send(frame).is_err() {
                break;
            }
            delivery.mark_sent(seq);
        }
        while let Some(t) = session.poll_transmit() {
            self.transmits.push_back(t);
        }
    }

    /// Queues `data` for every connected member; the members whose queue was full.
    pub fn broadcast(&mut self, data: &[u8]) -> Vec<MemberId> {
        let members = self.connected();
        members
            .into_iter()
            .filter(|m| self.send(m, data).is_err())
            .collect()
    }

    /// Says bye to every member and closes every session.
    pub fn leave(&mut self, now: Instant) {
        self.advance(now);
        if self.left {
            return;
        }
        let members: Vec<(MemberId, SocketAddr)> =
            self.peers.iter().map(|(m, p)| (*m, p.addr)).collect();
        for (member, addr) in members {
            self.queue_signal(addr, Some(member), SignalBody::Bye);
            self.drop_session(&member);
            self.events.push_back(MeetingEvent::PeerDisconnected {
                member,
                reason: PeerGone::WeLeft,
            });
        }
        self.peers.clear();
        self.contacts.clear();
        self.left = true;
    }

    /// Offers a datagram (STUN with USERNAME, STUN responses, DTLS) to the sessions;
    /// false if none takes it.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
    ) -> bool {
        self.advance(now);
        let by_ufrag = ice_username_recipient(datagram);
        let member = self.peers.iter().find_map(|(m, p)| {
            let s = p.session.as_ref()?;
            let ours = match by_ufrag {
                Some(ufrag) => ufrag == s.ufrag().as_bytes(),
                None => s.accepts(remote, datagram),
            };
            ours.then_some(*m)
        });
        let Some(member) = member else {
            self.stats.dropped_unrouted += 1;
            return false;
        };
        if let Some(s) = self.peers.get_mut(&member).and_then(|p| p.session.as_mut()) {
            s.handle_datagram(self.now, local, remote, datagram);
        }
        self.unsettled.insert(member);
        true
    }

    /// Collects the outputs of the sessions that took datagrams since the last `poll_*`.
    fn collect_unsettled(&mut self) {
        while let Some(member) = self.unsettled.pop_first() {
            self.collect(&member);
        }
    }

    /// Drains one session's outputs into the meeting's.
    fn collect(&mut self, member: &MemberId) {
        let Some(peer) = self.peers.get_mut(member) else {
            return;
        };
        let Some(session) = &mut peer.session else {
            return;
        };
        while let Some(t) = session.poll_transmit() {
            self.transmits.push_back(t);
        }
        let mut failed = None;
        let mut pump = false;
        while let Some(e) = session.poll_event() {
            match e {
                SessionEvent::Connected => {
                    peer.connected = true;
                    peer.attempts = 0;
                    peer.connect_by = None;
                    // A new session: whatever was not acknowledged goes again.
                    peer.delivery.restart();
                    pump = true;
                    self.events
                        .push_back(MeetingEvent::PeerConnected { member: *member });
                }
                SessionEvent::Message(frame) => match peer.delivery.receive(&frame) {
                    Received::Message(data) => {
                        self.events.push_back(MeetingEvent::Message {
                            member: *member,
                            data,
                        });
                        if peer.delivery.ack_due_now() {
                            pump = true;
                        } else if peer.ack_at.is_none() {
                            peer.ack_at = Some(self.now + ACK_DELAY);
                        }
                    }
                    Received::Duplicate => {
                        if peer.ack_at.is_none() {
                            peer.ack_at = Some(self.now + ACK_DELAY);
                        }
                    }
                    Received::Ack => pump = true,
                    Received::Malformed => {}
                },
                SessionEvent::Writable => {
                    pump = true;
                    self.events
                        .push_back(MeetingEvent::Writable { member: *member });
                }
                SessionEvent::Disconnected { reason } => failed = Some(reason),
            }
        }
        if let Some(reason) = failed {
            self.session_failed(member, reason);
        } else if pump {
            self.pump(member);
        }
    }

    /// A session failed: try again after the reconnect delay, or give the member up.
    fn session_failed(&mut self, member: &MemberId, reason: DisconnectReason) {
        self.drop_session(member);
        let Some(peer) = self.peers.get_mut(member) else {
            return;
        };
        peer.connect_by = None;
        if peer.attempts < self.config.reconnect_attempts {
            peer.attempts += 1;
            peer.retry_at = Some(self.now + self.config.reconnect_delay);
            let attempt = peer.attempts;
            self.events.push_back(MeetingEvent::PeerReconnecting {
                member: *member,
                reason,
                attempt,
            });
        } else {
            self.peers.remove(member);
            self.events.push_back(MeetingEvent::PeerDisconnected {
                member: *member,
                reason: PeerGone::Failed(reason),
            });
        }
    }

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// The next signaling message to send as a `dm_signal` query: (address, arguments).
    pub fn poll_signal(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.collect_unsettled();
        self.signals.pop_front()
    }
}

impl SansIo for Meeting {
    type Event = MeetingEvent;

    fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
    ) {
        Meeting::handle_datagram(self, now, local, remote, datagram);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        let now = self.now;
        self.collect_unsettled();
        let members: Vec<MemberId> = self.peers.keys().copied().collect();
        for member in members {
            let retry = self
                .peers
                .get(&member)
                .and_then(|p| p.retry_at)
                .is_some_and(|t| t <= now);
            if retry {
                let addr = match self.peers.get_mut(&member) {
                    Some(p) => {
                        p.retry_at = None;
                        p.addr
                    }
                    None => continue,
                };
                self.start_session(member, addr);
            }
            if let Some(s) = self.peers.get_mut(&member).and_then(|p| p.session.as_mut()) {
                if s.poll_timeout().is_some_and(|t| t <= now) {
                    s.handle_timeout(now);
                }
            }
            self.collect(&member);
            let ack_due = self
                .peers
                .get(&member)
                .and_then(|p| p.ack_at)
                .is_some_and(|t| t <= now);
            if ack_due {
                self.pump(&member);
                if let Some(p) = self.peers.get_mut(&member) {
                    // Sent, or no session to send it on: either way, wait for the next event.
                    p.ack_at = None;
                }
            }
            let late = self
                .peers
                .get(&member)
                .and_then(|p| p.connect_by)
                .is_some_and(|t| t <= now);
            if late {
                self.session_failed(&member, DisconnectReason::ConnectTimeout);
            }
        }
        let ttl = self.config.contact_ttl;
        self.contacts
            .retain(|_, c| now.saturating_duration_since(c.seen) < ttl);
        self.send_due_hellos();
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.collect_unsettled();
        self.transmits.pop_front()
    }

    fn poll_event(&mut self) -> Option<MeetingEvent> {
        self.collect_unsettled();
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if !self.unsettled.is_empty() {
            return Some(self.now);
        }
        let sessions = self
            .peers
            .values()
            .filter_map(|p| p.session.as_ref()?.poll_timeout());
        let acks = self.peers.values().filter_map(|p| p.ack_at);
        let retries = self
            .peers
            .values()
            .flat_map(|p| p.retry_at.into_iter().chain(p.connect_by));
        let hellos = self
            .contacts
            .values()
            .filter(|c| c.member.is_none())
            .map(|c| c.next_hello);
        sessions.chain(retries).chain(hellos).chain(acks).min()
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
