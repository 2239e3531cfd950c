//! The meeting: from addresses the DHT gave, through authenticated signaling, to one
//! WebRTC [`Session`] per member, with reconnection and a clean leave.
//!
//! The [`Meeting`] owns no socket and no DHT. Besides the [`SansIo`] face (its sessions'
//! datagrams in, their datagrams and the application's [`Event`]s out), it has one more
//! input and one more output, both about the DHT, which the [`Node`](crate::Node) routes:
//! [`Meeting::handle_peers_found`] (addresses found under the topic) and
//! [`Meeting::handle_signal`] (a `dm_signal` query that arrived) in,
//! [`Meeting::poll_signal`] (signaling to send as a `dm_signal` query) out.
//!
//! Flow between two members A and B: each finds the other's address in the DHT and
//! sends a *hello* with a challenge (both at once is what opens the NATs). A hello from
//! a member not yet proven is answered with a hello that echoes its challenge and makes
//! our own; whoever receives a message echoing its challenge knows the sender holds the
//! meeting's key now (not a copy of an old hello) and creates a session — the member with
//! the lower member id is ICE-controlling, so both sides agree without talking — and
//! sends its parameters, echoing the other's challenge in turn; parameters received start
//! the session's ICE/DTLS/SCTP. Nothing but hellos goes to an address before its member
//! is proven, and no member slot is taken.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rand_core::Rng as _;

use super::challenges::Challenges;
use super::contacts::Contacts;
use super::keys::MeetingKeys;
use super::peer::{Outputs, Peer, Via};
use super::prediction::{HELLOS_BEFORE_PREDICTION, PathChange, Prediction, PredictionStats};
use super::signal::{DmSignalBody, MemberId, ReplayGuard};
use super::{MeetingConfig, MeetingStats};
use crate::dht::{InfoHash, NodeId};
use crate::event::{Event, PeerGone};
use crate::nat::NatClass;
use crate::seed::{Rng, Seed};
use crate::punch::PunchConfig;
use crate::transmit::{SansIo, SocketCommand, Transmit};
use crate::webrtc::{
    DisconnectReason, MAX_MESSAGE_SIZE, SendError, Session, SessionStats, ice_username_recipient,
};

/// Bytes a delivery frame adds to a message (kind and sequence number).
const FRAME_OVERHEAD: usize = 9;
/// Reflexive addresses of ours offered as candidates at most.
const MAX_REFLEXIVE: usize = 4;

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
    contacts: Contacts,
    /// Our challenges per address, and theirs to echo: who proved it holds the key now.
    challenges: Challenges,
    peers: BTreeMap<MemberId, Peer>,
    replay: ReplayGuard,
    signals: VecDeque<(SocketAddr, Vec<u8>)>,
    out: Outputs,
    /// Members whose session took datagrams whose outputs are not collected yet: a
    /// burst of datagrams is settled once, at the first `poll_*` (see `Session`).
    unsettled: BTreeSet<MemberId>,
    stats: MeetingStats,
    left: bool,
    /// Our NAT class, told to members in hellos and parameters.
    nat: NatClass,
    /// Port prediction towards contacts that do not answer.
    prediction: Prediction,
}

impl Meeting {
    /// A meeting for `keys`, on our socket `local` (our host candidate), as DHT node
    /// `node_id`. Our member id, and every session's credentials, come from `seed`: a
    /// node passes a fresh child seed for every meeting it joins.
    pub fn new(
        now: Instant,
        config: MeetingConfig,
        keys: MeetingKeys,
        node_id: NodeId,
        local: SocketAddr,
        seed: Seed,
    ) -> Self {
        let mut rng: Rng = seed.child("meeting").rng();
        let mut me = [0u8; 8];
        rng.fill_bytes(&mut me);
        let prediction = Prediction::new(
            config.port_prediction,
            PunchConfig::default(),
            seed.child("prediction"),
        );
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
            contacts: Contacts::default(),
            challenges: Challenges::new(&seed),
            peers: BTreeMap::new(),
            replay: ReplayGuard::new(),
            signals: VecDeque::new(),
            out: Outputs::default(),
            unsettled: BTreeSet::new(),
            stats: MeetingStats::default(),
            left: false,
            nat: NatClass::Unknown,
            prediction,
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

    /// Our NAT class (from the node's observer), told to members in the hellos and
    /// parameters sent from now on.
    pub fn set_nat_class(&mut self, class: NatClass) {
        self.nat = class;
    }

    /// A member's NAT class, as its latest hello or parameters said;
    /// [`NatClass::Unknown`] for a member that did not say (or an older version).
    pub fn peer_nat(&self, member: &MemberId) -> NatClass {
        self.peers.get(member).map_or(NatClass::Unknown, |p| p.nat)
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
        self.peers.get(member).and_then(Peer::application_stats)
    }

    /// Addresses worth remembering for the next time we join: those of members with a
    /// session (connected ones first), then those of contacts that answered as members.
    /// Addresses only, never anything they said.
    pub fn member_addresses(&self) -> Vec<SocketAddr> {
        let mut peers: Vec<&Peer> = self.peers.values().collect();
        peers.sort_by_key(|p| !p.connected);
        let mut out: Vec<SocketAddr> = peers.iter().map(|p| p.addr).collect();
        for addr in self.contacts.member_addresses() {
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
        out
    }

    /// Our address as someone outside saw it (STUN, or DHT nodes): offered to new
    /// sessions as a server-reflexive candidate.
    pub fn add_reflexive(&mut self, addr: SocketAddr) {
        if addr != self.local
            && !self.reflexive.contains(&addr)
            && self.reflexive.len() < MAX_REFLEXIVE
        {
            self.reflexive.push(addr);
        }
    }

    fn is_own_address(&self, addr: SocketAddr) -> bool {
        addr == self.local || self.reflexive.contains(&addr)
    }

    /// Addresses the DHT found under the topic (or remembered from the last time).
    pub fn handle_peers_found(&mut self, now: Instant, addrs: &[SocketAddr]) {
        self.advance(now);
        if self.left {
            return;
        }
        for &addr in addrs {
            if !self.is_own_address(addr) && self.contacts.found(self.now, addr) {
                self.out.events.push_back(Event::PeerDiscovered { addr });
            }
        }
        self.send_due_hellos();
    }

    /// Port prediction's counters.
    pub fn prediction_stats(&self) -> PredictionStats {
        self.prediction.stats()
    }

    /// A port-prediction probe arrived on pool socket `local_port` (`None`: the main
    /// socket) from `remote`.
    pub fn handle_punch(
        &mut self,
        now: Instant,
        local_port: Option<u16>,
        remote: SocketAddr,
        datagram: &[u8],
    ) {
        self.advance(now);
        self.prediction
            .handle_datagram(self.now, local_port, remote, datagram);
        self.after_prediction();
    }

    /// The next change to the paths the node aliases to pool sockets.
    #[must_use]
    pub fn poll_path(&mut self) -> Option<PathChange> {
        self.prediction.poll_path()
    }

    /// Starts port prediction towards contacts that have not answered a few hellos.
    fn predict(&mut self) {
        if self.left {
            return;
        }
        let contacts = self.contacts.unanswered(HELLOS_BEFORE_PREDICTION);
        let our_ip = self.reflexive.first().map(|a| a.ip());
        let peers = &self.peers;
        let known = |ip| peers.values().any(|p| p.addr.ip().to_canonical() == ip);
        self.prediction.consider(
            self.now,
            self.nat,
            our_ip,
            &self.keys.signaling,
            &contacts,
            known,
        );
        self.after_prediction();
    }

    /// Takes the attempts' datagrams, and greets at once the contacts a path was found to.
    fn after_prediction(&mut self) {
        while let Some(t) = self.prediction.poll_transmit() {
            self.out.transmits.push_back(t);
        }
        let mut greet = false;
        while let Some(remote) = self.prediction.poll_found() {
            self.contacts.found(self.now, remote);
            self.contacts.hello_now(self.now, remote);
            let ip = remote.ip().to_canonical();
            for peer in self.peers.values_mut() {
                if !peer.connected && peer.addr.ip().to_canonical() == ip {
                    peer.via = Via::Predicted;
                }
            }
            greet = true;
        }
        if greet {
            self.send_due_hellos();
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
        for r in &self.reflexive {
            session.add_local_candidate(*r);
        }
        let params = session.local_parameters().clone();
        let peer = self.peers.entry(member).or_insert_with(|| Peer::new(addr));
        peer.addr = addr;
        peer.retry_at = None;
        peer.connect_by = Some(self.now + self.config.session.connect_timeout);
        peer.session = Some(session);
        peer.via = if self.prediction.reached_ip(addr.ip()) {
            Via::Predicted
        } else {
            Via::Direct
        };
        peer.remote_ufrag = None;
        peer.connected = false;
        self.out
            .events
            .push_back(Event::PeerConnecting { member, addr });
        self.queue_signal(addr, Some(member), DmSignalBody::Params(params));
        true
    }

    fn drop_session(&mut self, member: &MemberId) {
        if let Some(peer) = self.peers.get_mut(member) {
            peer.drop_session(&mut self.out.transmits);
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
        peer.pump(&mut self.out.transmits);
        Ok(())
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
            self.queue_signal(addr, Some(member), DmSignalBody::Bye);
            self.drop_session(&member);
            self.out.events.push_back(Event::PeerDisconnected {
                member,
                reason: PeerGone::WeLeft,
            });
        }
        self.peers.clear();
        self.contacts.clear();
        self.challenges.clear();
        self.prediction.close_all(self.now);
        self.after_prediction();
        self.left = true;
    }

    /// Whether a datagram (an ICE check by its USERNAME, a STUN response or DTLS by its
    /// source) belongs to one of the sessions: the route the node asks before handing
    /// over a STUN message that could also be for its own STUN client or responder.
    pub fn accepts(&self, remote: SocketAddr, datagram: &[u8]) -> bool {
        self.route(remote, datagram).is_some()
    }

    fn route(&self, remote: SocketAddr, datagram: &[u8]) -> Option<MemberId> {
        // Only STUN (first byte 0–3, RFC 7983) can carry a USERNAME: DTLS, the data, is
        // routed by its source without a look.
        let stun = matches!(datagram.first(), Some(0..=3));
        let by_ufrag = if stun {
            ice_username_recipient(datagram)
        } else {
            None
        };
        self.peers.iter().find_map(|(m, p)| {
            let s = p.session.as_ref()?;
            let ours = match by_ufrag {
                Some(ufrag) => ufrag == s.ufrag().as_bytes(),
                None => s.knows_address(remote),
            };
            ours.then_some(*m)
        })
    }

    /// Collects the outputs of the sessions that took datagrams since the last `poll_*`.
    fn settle_unsettled(&mut self) {
        while let Some(member) = self.unsettled.pop_first() {
            let peer = self.peers.get_mut(&member);
            if let Some(reason) = peer.and_then(|p| p.settle(self.now, member, &mut self.out)) {
                self.session_failed(&member, reason);
            }
        }
    }

    /// Drains one session's outputs into the meeting's (as `settle_unsettled` does).
    fn settle(&mut self, member: &MemberId) {
        let peer = self.peers.get_mut(member);
        if let Some(reason) = peer.and_then(|p| p.settle(self.now, *member, &mut self.out)) {
            self.session_failed(member, reason);
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
            self.out.events.push_back(Event::PeerReconnecting {
                member: *member,
                reason,
                attempt,
            });
        } else {
            self.peers.remove(member);
            self.out.events.push_back(Event::PeerDisconnected {
                member: *member,
                reason: PeerGone::Failed(reason),
            });
        }
    }

    /// One member's timers at `now`: a due reconnection, the session's own timeout, an
    /// owed acknowledgement, the connect deadline.
    fn member_timeout(&mut self, member: MemberId) {
        let now = self.now;
        let Some(peer) = self.peers.get_mut(&member) else {
            return;
        };
        if peer.retry_at.is_some_and(|t| t <= now) {
            peer.retry_at = None;
            let addr = peer.addr;
            self.start_session(member, addr);
        }
        if let Some(s) = self.peers.get_mut(&member).and_then(|p| p.session.as_mut()) {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
        self.settle(&member);
        if let Some(peer) = self.peers.get_mut(&member) {
            if peer.ack_due(now) {
                peer.pump(&mut self.out.transmits);
                peer.ack_handled();
            }
            if peer.connect_by.is_some_and(|t| t <= now) {
                self.session_failed(&member, DisconnectReason::ConnectTimeout);
            }
        }
    }

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// The next signaling message to send as a `dm_signal` query: (address, arguments).
    /// The node hands it to the DHT, which sends it as a KRPC query (transaction id,
    /// one retransmission, acknowledgement).
    #[must_use]
    pub fn poll_signal(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.settle_unsettled();
        self.signals.pop_front()
    }

    /// Our ICE usernames (ufrags) of the sessions that run (tests check they are new).
    #[cfg(test)]
    pub(crate) fn local_ufrags(&self) -> Vec<String> {
        let sessions = self.peers.values().filter_map(|p| p.session.as_ref());
        sessions.map(|s| s.ufrag().to_string()).collect()
    }

    /// Whether outputs wait to be collected (`poll_timeout` then answers "now").
    fn unsettled(&self) -> bool {
        !self.unsettled.is_empty()
    }
}

impl SansIo for Meeting {
    type Event = Event;

    /// A datagram of one of the sessions (ICE STUN or DTLS); counted in
    /// `dropped_unrouted` if it belongs to none. Its outputs are collected at the next
    /// `poll_*`, so that a burst of datagrams is settled once.
    fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
    ) {
        self.advance(now);
        let Some(member) = self.route(remote, datagram) else {
            self.stats.dropped_unrouted += 1;
            return;
        };
        if let Some(s) = self.peers.get_mut(&member).and_then(|p| p.session.as_mut()) {
            s.handle_datagram(self.now, local, remote, datagram);
        }
        self.unsettled.insert(member);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        self.settle_unsettled();
        let members: Vec<MemberId> = self.peers.keys().copied().collect();
        for member in members {
            self.member_timeout(member);
        }
        self.contacts.expire(self.now, self.config.contact_ttl);
        self.challenges.expire(self.now);
        self.send_due_hellos();
        self.prediction.handle_timeout(self.now);
        self.predict();
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.settle_unsettled();
        self.out.transmits.pop_front()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.settle_unsettled();
        self.out.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.unsettled() {
            return Some(self.now);
        }
        let peers = self.peers.values().filter_map(Peer::next_timeout);
        let prediction = self.prediction.poll_timeout();
        peers.chain(self.contacts.next_hello()).chain(prediction).min()
    }

    fn poll_socket_command(&mut self) -> Option<SocketCommand> {
        self.prediction.poll_socket_command()
    }

    fn handle_socket_opened(&mut self, now: Instant, local: SocketAddr) {
        self.advance(now);
        self.prediction.handle_socket_opened(self.now, local.port());
        self.after_prediction();
    }

    fn handle_socket_failed(&mut self, now: Instant) {
        self.advance(now);
        self.prediction.handle_socket_failed(self.now);
        self.after_prediction();
    }
}

#[path = "signaling.rs"]
mod signaling;

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
