//! The [`Node`]: one UDP socket's worth of protocol, demultiplexed by first byte.
//!
//! A node discovers its public address with STUN and answers others' Binding requests,
//! runs a Mainline DHT node, and, once it joins a meeting, signals the members the DHT
//! finds and runs one WebRTC session to each — all on the same socket.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crate::demux::PacketKind;
use crate::dht::{
    Dht, DhtConfig, DhtConfigError, DhtError, DhtEvent, DhtStats, InfoHash, LookupKind,
    LookupSummary,
};
use crate::meeting::code::{self, CodeError, CodeStrength};
use crate::meeting::keys::MeetingKeys;
use crate::meeting::signal::{self, MemberId};
use crate::meeting::{Meeting, MeetingConfig, MeetingEvent, MeetingStats, PeerGone};
use crate::seed::Seed;
use crate::state::{MAX_SAVED_NODES, SavedState};
use crate::stun::wire::{Class, Message};
use crate::stun::{
    AllServersFailed, BindingClient, BindingServer, ClientStats, Mapping, ServerStats, StunConfig,
    StunConfigError, StunEvent, StunReport,
};
use crate::transmit::{SansIo, Transmit, canonical_remote};
use crate::webrtc::{DisconnectReason, SendError, SessionConfigError};

/// Everything a node is configured with.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The root of all the node's randomness (transaction ids, later node ids and
    /// credentials). Same seed and same inputs give the same outputs.
    pub seed: Seed,
    /// STUN discovery; with no servers the node does not discover its address.
    pub stun: StunConfig,
    /// The Mainline DHT; `None` runs no DHT (KRPC datagrams are then dropped).
    pub dht: Option<DhtConfig>,
    /// Meetings: sessions, reconnection, limits.
    pub meeting: MeetingConfig,
    /// The socket's own address, our ICE host candidate. A runtime whose socket is bound
    /// to a specific address can leave this `None`: the node learns it from the `local`
    /// argument of `handle_datagram`.
    pub local_addr: Option<SocketAddr>,
    /// What the node remembered before a restart ([`Node::export_state`]): its DHT id and
    /// nodes (questionable until they answer) and the members' addresses of meetings it
    /// joined (greeted at once when it joins the same meeting again).
    pub saved_state: Option<SavedState>,
}

impl NodeConfig {
    /// The design's defaults, with `seed` as the root of the node's randomness and no
    /// STUN servers (the runtimes fill in `stun.servers`).
    pub fn new(seed: Seed) -> Self {
        NodeConfig {
            seed,
            stun: StunConfig::default(),
            dht: Some(DhtConfig::default()),
            meeting: MeetingConfig::default(),
            local_addr: None,
            saved_state: None,
        }
    }
}

/// A configuration the node refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The STUN settings are invalid.
    #[error("invalid STUN settings: {0}")]
    Stun(#[from] StunConfigError),
    /// The DHT settings are invalid.
    #[error("invalid DHT settings: {0}")]
    Dht(#[from] DhtConfigError),
    /// The WebRTC session settings are invalid.
    #[error("invalid session settings: {0}")]
    Session(#[from] SessionConfigError),
}

/// Why [`Node::join`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The code is empty, mistyped or too weak.
    #[error(transparent)]
    Code(#[from] CodeError),
    /// The node runs no DHT, so it cannot find anyone.
    #[error("meetings need the DHT, and this node runs none")]
    NoDht,
    /// The node is already in a meeting (leave it first).
    #[error("already in a meeting")]
    AlreadyJoined,
    /// The socket's address is not known yet (set `NodeConfig::local_addr`, or bind the
    /// socket to a specific address).
    #[error("the node does not know its socket address yet")]
    NoLocalAddress,
    /// The DHT refused to watch the topic.
    #[error(transparent)]
    Dht(#[from] DhtError),
    /// The node has stopped (a runtime's handle whose thread or task has ended, after
    /// `close`/`shutdown` or a socket error): nothing can join through it any more.
    #[error("the node has stopped")]
    Stopped,
}

/// What a node tells its application. New kinds of events arrive as the protocol grows:
/// match with a `_` arm.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// STUN found the node's public address (and, with two servers, the NAT's mapping).
    AddressDiscovered(StunReport),
    /// No STUN server answered in this round (a retry follows if configured).
    StunUnreachable(AllServersFailed),
    /// The DHT finished bootstrapping with this many nodes in its routing table.
    DhtReady {
        /// Nodes in the routing table.
        nodes: usize,
    },
    /// No DHT bootstrap node answered (retried later).
    DhtBootstrapFailed,
    /// A DHT lookup found peers of `info_hash` (as they arrive).
    PeersFound {
        /// The topic.
        info_hash: InfoHash,
        /// Peers not reported before by this lookup.
        peers: Vec<SocketAddr>,
    },
    /// A DHT lookup (or announce) finished.
    LookupDone(LookupSummary),
    /// The DHT gave an address under our meeting's topic that we had not seen (or, at a
    /// re-join, a member's address remembered in the saved state).
    PeerDiscovered {
        /// The address.
        addr: SocketAddr,
    },
    /// A member answered our signaling; a session to it is being set up.
    PeerConnecting {
        /// The member.
        member: MemberId,
        /// Its address.
        addr: SocketAddr,
    },
    /// The data channel to a member is open.
    PeerConnected {
        /// The member.
        member: MemberId,
    },
    /// The session to a member failed; another attempt follows.
    PeerReconnecting {
        /// The member.
        member: MemberId,
        /// Why the session failed.
        reason: DisconnectReason,
        /// The attempt that follows (1-based).
        attempt: u32,
    },
    /// A member is gone.
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
    /// A member's send queue has room again.
    Writable {
        /// The member.
        member: MemberId,
    },
}

/// Counters of everything the node received and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Datagrams handed to the node.
    pub datagrams_received: u64,
    /// Datagrams whose first byte belongs to no protocol we speak.
    pub dropped_unknown_kind: u64,
    /// DTLS records (no WebRTC session exists yet in this version).
    pub dropped_dtls: u64,
    /// KRPC messages while no DHT runs.
    pub dropped_krpc: u64,
    /// STUN datagrams that failed to decode.
    pub dropped_stun_malformed: u64,
    /// STUN responses that arrived while no discovery was configured.
    pub dropped_stun_unsolicited: u64,
    /// The STUN client's counters.
    pub stun_client: ClientStats,
    /// The STUN responder's counters.
    pub stun_server: ServerStats,
    /// The DHT's counters.
    pub dht: DhtStats,
    /// The meeting's signaling counters.
    pub meeting: MeetingStats,
    /// Application bytes sent to members (sessions that are still open).
    pub bytes_sent: u64,
    /// Application bytes received from members (sessions that are still open).
    pub bytes_received: u64,
    /// Application messages sent to members (sessions that are still open).
    pub messages_sent: u64,
    /// Application messages received from members (sessions that are still open).
    pub messages_received: u64,
}

/// One connected member in a health snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerHealth {
    /// The member.
    pub member: MemberId,
    /// The ICE round-trip time, if measured.
    pub rtt: Option<std::time::Duration>,
    /// Application bytes sent to it and received from it.
    pub bytes: (u64, u64),
}

/// A snapshot of the node's health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// Always `true` once constructed (the config was valid).
    pub initialised: bool,
    /// Whether any STUN server answered in the latest finished round.
    pub stun_reachable: bool,
    /// Our public address, if known.
    pub public_address: Option<SocketAddr>,
    /// The NAT's mapping behaviour, if known.
    pub mapping: Mapping,
    /// Whether the DHT finished bootstrapping.
    pub dht_ready: bool,
    /// Nodes in the DHT routing table.
    pub routing_table_size: usize,
    /// Whether the DHT runs read-only (BEP 43: it queries but answers no DHT queries),
    /// as it does behind a NAT (`DhtConfig::read_only_behind_nat`).
    pub dht_read_only: bool,
    /// Members with an open data channel.
    pub peers: Vec<PeerHealth>,
    /// Traffic counters.
    pub stats: NodeStats,
}

/// A dhtmeet node: the sans-IO state machine a runtime drives over one UDP socket.
#[derive(Debug)]
pub struct Node {
    stun_client: Option<BindingClient>,
    dht: Option<Dht>,
    stun_server: BindingServer,
    latest_report: Option<StunReport>,
    stun_reachable: bool,
    meeting: Option<Meeting>,
    meeting_config: MeetingConfig,
    seed: Seed,
    local: Option<SocketAddr>,
    /// Meetings joined before, with their members' addresses (from a saved state and
    /// from meetings left since).
    remembered: SavedState,
    now: Instant,
    events: VecDeque<Event>,
    stats: NodeStats,
    /// The meeting took DTLS datagrams whose outputs are not collected yet (a burst is
    /// collected once, at the first `poll_*`).
    meeting_unsettled: bool,
    /// The DHT is read-only unless the latest STUN round showed our socket address is
    /// public (`DhtConfig::read_only_behind_nat`).
    auto_read_only: bool,
}

impl Node {
    /// Validates `config` and starts the node at `now` (STUN discovery begins at once).
    pub fn new(config: NodeConfig, now: Instant) -> Result<Node, ConfigError> {
        config.stun.validate()?;
        config.meeting.session.validate()?;
        let saved = config.saved_state.unwrap_or_default();
        // BEP 43 until STUN shows we are not behind a NAT (`DhtConfig::read_only_behind_nat`).
        let auto_read_only = !config.stun.servers.is_empty()
            && config
                .dht
                .as_ref()
                .is_some_and(|d| d.read_only_behind_nat && !d.read_only);
        let dht = match config.dht {
            Some(mut dht) => {
                dht.read_only |= auto_read_only;
                Some(Dht::with_saved(dht, config.seed.child("dht"), now, &saved)?)
            }
            None => None,
        };
        let stun_client = if config.stun.servers.is_empty() {
            None
        } else {
            Some(BindingClient::new(
                config.stun.clone(),
                config.seed.child("stun"),
                now,
            )?)
        };
        let mut node = Node {
            stun_client,
            dht,
            meeting: None,
            meeting_config: config.meeting,
            seed: config.seed,
            local: config.local_addr.filter(|a| !a.ip().is_unspecified()),
            remembered: SavedState {
                meetings: saved.meetings,
                ..SavedState::default()
            },
            now,
            stun_server: BindingServer::new(),
            latest_report: None,
            stun_reachable: false,
            events: VecDeque::new(),
            stats: NodeStats::default(),
            meeting_unsettled: false,
            auto_read_only,
        };
        node.collect_dht_events();
        Ok(node)
    }

    /// Joins the meeting of invitation `code`: the topic is announced and looked up every
    /// refresh interval, members found are greeted, and a WebRTC session is set up with
    /// each. Weak typed codes are refused unless `allow_weak_code` (see
    /// `docs/meetings.md`). Returns our member id and the code's strength.
    pub fn join(
        &mut self,
        code: &str,
        allow_weak_code: bool,
        now: Instant,
    ) -> Result<(MemberId, CodeStrength), JoinError> {
        self.advance(now);
        let strength = code::check(code, allow_weak_code)?;
        if self.meeting.is_some() {
            return Err(JoinError::AlreadyJoined);
        }
        let local = self.local.ok_or(JoinError::NoLocalAddress)?;
        let dht = self.dht.as_mut().ok_or(JoinError::NoDht)?;
        let keys = MeetingKeys::derive(code);
        let keys_topic = keys.topic;
        dht.watch(keys.topic, LookupKind::Announce { port: None }, self.now)?;
        dht.register_extension(signal::METHOD);
        let node_id = dht.id();
        let mut meeting = Meeting::new(
            self.meeting_config.clone(),
            keys,
            node_id,
            local,
            self.seed.child("meeting"),
            self.now,
        );
        if let Some(r) = &self.latest_report {
            for o in &r.observations {
                meeting.add_reflexive(o.mapped);
            }
        }
        if let Some(ext) = dht.external_address() {
            meeting.add_reflexive(ext);
        }
        // Members remembered from the last time: greeted at once, while the DHT lookup
        // that `watch` started runs in parallel.
        let remembered = self.remembered.contacts_of(&keys_topic).to_vec();
        if !remembered.is_empty() {
            tracing::debug!(contacts = remembered.len(), "greeting remembered members");
            meeting.discovered(&remembered, self.now);
        }
        let me = meeting.member_id();
        self.meeting = Some(meeting);
        self.collect_dht_events();
        Ok((me, strength))
    }

    /// Leaves the meeting: says bye to every member, closes every session, stops
    /// announcing. Safe to call when not in a meeting.
    pub fn leave(&mut self, now: Instant) {
        self.advance(now);
        let Some(meeting) = &mut self.meeting else {
            return;
        };
        self.remembered
            .remember_meeting(meeting.topic(), &meeting.member_addresses());
        meeting.leave(self.now);
        let topic = meeting.topic();
        if let Some(dht) = &mut self.dht {
            dht.unwatch(&topic);
        }
        self.collect_meeting();
        self.meeting = None;
    }

    /// What is worth keeping across a restart (see [`SavedState`]): the DHT id and the
    /// public IP it was derived for, the routing table's good nodes, and the members'
    /// addresses of the meeting we are in and of meetings joined before. A runtime saves
    /// [`SavedState::encode`] periodically and on a clean exit, and passes the state back
    /// in [`NodeConfig::saved_state`].
    pub fn export_state(&self) -> SavedState {
        let mut state = self.remembered.clone();
        if let Some(dht) = &self.dht {
            state.node_id = Some(dht.id());
            state.id_ip = dht.id_ip();
            state.nodes = dht.nodes_to_save(MAX_SAVED_NODES);
        }
        if let Some(m) = &self.meeting {
            state.remember_meeting(m.topic(), &m.member_addresses());
        }
        state
    }

    /// The meeting, if joined.
    pub fn meeting(&self) -> Option<&Meeting> {
        self.meeting.as_ref()
    }

    /// Sends `data` (any size up to the session bound) to `member`.
    pub fn send(&mut self, member: &MemberId, data: &[u8]) -> Result<(), SendError> {
        let r = self
            .meeting
            .as_mut()
            .ok_or(SendError::Closed)?
            .send(member, data);
        self.collect_meeting();
        r
    }

    /// Sends `data` to every connected member; returns those whose queue was full.
    pub fn broadcast(&mut self, data: &[u8]) -> Vec<MemberId> {
        let Some(m) = &mut self.meeting else {
            return Vec::new();
        };
        let full = m.broadcast(data);
        self.collect_meeting();
        full
    }

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Moves the meeting's outputs: signaling into the DHT, events to the application.
    fn collect_meeting(&mut self) {
        self.meeting_unsettled = false;
        let Some(meeting) = &mut self.meeting else {
            return;
        };
        while let Some((to, args)) = meeting.poll_signal() {
            if let Some(dht) = &mut self.dht {
                dht.send_extension(to, signal::METHOD, args);
            }
        }
        while let Some(e) = meeting.poll_event() {
            self.events.push_back(match e {
                MeetingEvent::PeerDiscovered { addr } => Event::PeerDiscovered { addr },
                MeetingEvent::PeerConnecting { member, addr } => {
                    Event::PeerConnecting { member, addr }
                }
                MeetingEvent::PeerConnected { member } => Event::PeerConnected { member },
                MeetingEvent::PeerReconnecting {
                    member,
                    reason,
                    attempt,
                } => Event::PeerReconnecting {
                    member,
                    reason,
                    attempt,
                },
                MeetingEvent::PeerDisconnected { member, reason } => {
                    Event::PeerDisconnected { member, reason }
                }
                MeetingEvent::Message { member, data } => Event::Message { member, data },
                MeetingEvent::Writable { member } => Event::Writable { member },
            });
        }
    }

    /// The DHT, for lookups, announces and watched topics (`None` if not configured).
    pub fn dht(&self) -> Option<&Dht> {
        self.dht.as_ref()
    }

    /// The DHT, mutably. After calling it, drain the node's outputs as after any input.
    pub fn dht_mut(&mut self) -> Option<&mut Dht> {
        self.dht.as_mut()
    }

    /// Starts a new STUN round now (e.g. after the network changed).
    pub fn rediscover(&mut self, now: Instant) {
        if let Some(client) = &mut self.stun_client {
            client.rediscover(now);
            self.collect_stun_events(now);
        }
    }

    /// A snapshot of the node's state and counters.
    pub fn health(&self) -> Health {
        let mut stats = self.stats;
        stats.stun_client = self
            .stun_client
            .as_ref()
            .map(|c| c.stats())
            .unwrap_or_default();
        stats.stun_server = self.stun_server.stats();
        stats.dht = self.dht.as_ref().map(|d| d.stats()).unwrap_or_default();
        let mut peers = Vec::new();
        if let Some(m) = &self.meeting {
            stats.meeting = m.stats();
            for member in m.connected() {
                let Some(s) = m.peer_stats(&member) else {
                    continue;
                };
                stats.bytes_sent += s.bytes_sent;
                stats.bytes_received += s.bytes_received;
                stats.messages_sent += s.messages_sent;
                stats.messages_received += s.messages_received;
                peers.push(PeerHealth {
                    member,
                    rtt: s.rtt,
                    bytes: (s.bytes_sent, s.bytes_received),
                });
            }
        }
        Health {
            initialised: true,
            stun_reachable: self.stun_reachable,
            public_address: self.latest_report.as_ref().map(|r| r.first.mapped),
            mapping: self
                .latest_report
                .as_ref()
                .map_or(Mapping::Unknown, |r| r.mapping),
            dht_ready: self.dht.as_ref().is_some_and(|d| d.is_ready()),
            routing_table_size: self.dht.as_ref().map_or(0, |d| d.routing_table_size()),
            dht_read_only: self.dht.as_ref().is_some_and(|d| d.is_read_only()),
            peers,
            stats,
        }
    }

    fn handle_stun(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
    ) {
        let msg = match Message::decode(datagram) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::debug!(%remote, error = %e, "dropped malformed STUN");
                self.stats.dropped_stun_malformed += 1;
                return;
            }
        };
        // ICE checks and their answers carry MESSAGE-INTEGRITY (and checks USERNAME):
        // they belong to the meeting's WebRTC sessions.
        if msg.has_integrity() || msg.has_username() {
            if let Some(m) = &mut self.meeting {
                if m.handle_datagram(now, local, remote, datagram) {
                    self.collect_meeting();
                    return;
                }
            }
        }
        match msg.class() {
            Class::Success | Class::Error => match &mut self.stun_client {
                Some(client) => {
                    client.handle_message(now, remote, &msg);
                    self.collect_stun_events(now);
                }
                None => self.stats.dropped_stun_unsolicited += 1,
            },
            Class::Request | Class::Indication => self.stun_server.handle_message(remote, &msg),
        }
    }

    fn collect_dht_events(&mut self) {
        let Some(dht) = &mut self.dht else { return };
        let now = self.now;
        if let (Some(m), Some(ext)) = (&mut self.meeting, dht.external_address()) {
            m.add_reflexive(ext);
        }
        while let Some(event) = dht.poll_event() {
            if let (
                Some(m),
                DhtEvent::PeersFound {
                    info_hash, peers, ..
                },
            ) = (&mut self.meeting, &event)
            {
                if *info_hash == m.topic() {
                    m.discovered(peers, now);
                }
            }
            if let DhtEvent::ExtensionQuery { from, method, args } = &event {
                if let (Some(m), true) = (&mut self.meeting, method.as_slice() == signal::METHOD) {
                    m.handle_signal(*from, args, now);
                }
                continue;
            }
            self.events.push_back(match event {
                DhtEvent::Ready { nodes } => Event::DhtReady { nodes },
                DhtEvent::BootstrapFailed => Event::DhtBootstrapFailed,
                DhtEvent::PeersFound {
                    info_hash, peers, ..
                } => Event::PeersFound { info_hash, peers },
                DhtEvent::LookupDone(summary) => Event::LookupDone(summary),
                DhtEvent::ExtensionQuery { .. } => continue,
            });
        }
        // Signaling the meeting queued goes out through the DHT (which emits no event
        // for sending).
        self.collect_meeting();
    }

    fn collect_stun_events(&mut self, now: Instant) {
        let Some(client) = &mut self.stun_client else {
            return;
        };
        while let Some(event) = client.poll_event() {
            match event {
                StunEvent::Observed(o) => {
                    tracing::debug!(server = %o.server, mapped = %o.mapped, rtt = ?o.rtt, "STUN answer");
                }
                StunEvent::ServerFailed { server, reason } => {
                    tracing::debug!(%server, %reason, "STUN server failed");
                }
                StunEvent::Finished(Ok(report)) => {
                    self.stun_reachable = true;
                    // BEP 42: a DHT id bound to our public IP, once we know it.
                    if let (Some(dht), Mapping::EndpointIndependent) =
                        (&mut self.dht, report.mapping)
                    {
                        dht.set_public_ip(report.first.mapped.ip(), now);
                    }
                    // After the BEP 42 id, so that a switch to answering looks the new id up.
                    if self.auto_read_only {
                        // Public: the address the world sees is our socket's own. A NAT
                        // may appear or go away between rounds; follow the latest.
                        let public = self.local.is_some_and(|l| {
                            canonical_remote(l) == canonical_remote(report.first.mapped)
                        });
                        if let Some(dht) = &mut self.dht {
                            dht.set_read_only(!public, now);
                        }
                    }
                    if let Some(m) = &mut self.meeting {
                        for o in &report.observations {
                            m.add_reflexive(o.mapped);
                        }
                    }
                    self.latest_report = Some(report.clone());
                    self.events.push_back(Event::AddressDiscovered(report));
                }
                StunEvent::Finished(Err(e)) => {
                    self.stun_reachable = false;
                    self.events.push_back(Event::StunUnreachable(e));
                }
            }
        }
    }
}

impl SansIo for Node {
    type Event = Event;

    fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
    ) {
        self.stats.datagrams_received += 1;
        self.advance(now);
        if self.local.is_none() && !local.ip().is_unspecified() {
            self.local = Some(local);
        }
        // A socket bound to the unspecified address reports it as `local`; the sessions
        // know us by the configured address.
        let local = match self.local {
            Some(known) if local.ip().is_unspecified() => known,
            _ => local,
        };
        match PacketKind::classify(datagram) {
            PacketKind::Stun => self.handle_stun(now, local, remote, datagram),
            PacketKind::Dtls => {
                let taken = self
                    .meeting
                    .as_mut()
                    .is_some_and(|m| m.handle_datagram(now, local, remote, datagram));
                if taken {
                    self.meeting_unsettled = true;
                } else {
                    self.stats.dropped_dtls += 1;
                }
            }
            PacketKind::Krpc => match &mut self.dht {
                Some(dht) => {
                    dht.handle_datagram(now, local, remote, datagram);
                    self.collect_dht_events();
                }
                None => self.stats.dropped_krpc += 1,
            },
            PacketKind::Unknown => self.stats.dropped_unknown_kind += 1,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        if let Some(m) = &mut self.meeting {
            if m.poll_timeout().is_some_and(|t| t <= now) {
                m.handle_timeout(now);
            }
        }
        self.collect_meeting();
        if let Some(client) = &mut self.stun_client {
            client.handle_timeout(now);
            self.collect_stun_events(now);
        }
        if let Some(dht) = &mut self.dht {
            dht.handle_timeout(now);
        }
        self.collect_dht_events();
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.meeting_unsettled {
            self.collect_meeting();
        }
        self.stun_server
            .poll_transmit()
            .or_else(|| self.stun_client.as_mut().and_then(|c| c.poll_transmit()))
            .or_else(|| self.dht.as_mut().and_then(|d| d.poll_transmit()))
            .or_else(|| self.meeting.as_mut().and_then(|m| m.poll_transmit()))
    }

    fn poll_event(&mut self) -> Option<Event> {
        if self.meeting_unsettled {
            self.collect_meeting();
        }
        // Events of API calls made through `dht_mut` are collected here.
        self.collect_dht_events();
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.meeting_unsettled {
            return Some(self.now);
        }
        let stun = self.stun_client.as_ref().and_then(|c| c.poll_timeout());
        let dht = self.dht.as_ref().and_then(|d| d.poll_timeout());
        let meeting = self.meeting.as_ref().and_then(|m| m.poll_timeout());
        stun.into_iter().chain(dht).chain(meeting).min()
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
