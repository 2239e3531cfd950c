//! The [`Node`]: one UDP socket's worth of protocol, demultiplexed by first byte.
//!
//! A node discovers its public address with STUN and answers others' Binding requests,
//! runs a Mainline DHT node, and, once it joins a meeting, signals the members the DHT
//! finds and runs one WebRTC session to each — all on the same socket.
//!
//! The node is a router. Its children — the STUN client and responder, the DHT and the
//! meeting — all have the [`SansIo`] face. `handle_*` routes an input to the child it
//! belongs to; the children's outputs are collected in one place, [`Node::collect`],
//! right after every input but a DTLS datagram (its session settles a burst of data
//! once, at the meeting's first `poll_*`), where what one child says to another is routed
//! (STUN's address to the DHT and the meeting, the DHT's topic peers and `dm_signal`
//! queries to the meeting, the meeting's signaling to the DHT). A meeting's datagrams
//! and events are not collected at all: `poll_transmit` and `poll_event` take them
//! straight from the meeting.

mod config;
mod dht_ops;
mod health;
mod nat;
mod paths;
mod pool;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

pub use config::{ConfigError, JoinError, LookupError, NodeConfig};
pub use health::{Health, NodeStats, PeerHealth};

use crate::demux::PacketKind;
use crate::dht::{Dht, DhtEvent, ExtensionVerdict, LookupKind};
use crate::event::Event;
use crate::meeting::code::{self, CodeStrength};
use crate::meeting::keys::MeetingKeys;
use crate::meeting::signal::{self, MemberId};
use crate::meeting::{Meeting, MeetingConfig};
use crate::nat::NatObserver;
use crate::seed::Seed;
use crate::state::{MAX_SAVED_NODES, SavedState};
use crate::stun::wire::{Class, Message};
use crate::stun::{BindingClient, BindingServer, StunReport};
use crate::transmit::{SansIo, SocketCommand, Transmit};
use crate::webrtc::SendError;

/// A dhtmeet node: the sans-IO state machine a runtime drives over one UDP socket.
#[derive(Debug)]
pub struct Node {
    stun_client: Option<BindingClient>,
    stun_server: BindingServer,
    dht: Option<Dht>,
    meeting: Option<Meeting>,
    meeting_config: MeetingConfig,
    seed: Seed,
    /// Meetings joined so far: each gets its own child seed, so a re-join in the same
    /// process is a new member with new credentials.
    meetings_joined: u64,
    local: Option<SocketAddr>,
    /// Meetings joined before, with their members' addresses (from a saved state and
    /// from meetings left since).
    remembered: SavedState,
    latest_report: Option<StunReport>,
    /// Where new flows of the main socket appear, as the NAT observer last said (one
    /// public port for all): a change means the NAT moved our port.
    public: Option<SocketAddr>,
    stun_reachable: bool,
    stun_rounds_finished: u64,
    /// The DHT has bootstrapped or given up at least once.
    dht_started: bool,
    /// The DHT is read-only unless the latest STUN round showed our socket address is
    /// public (`DhtConfig::read_only_behind_nat`).
    auto_read_only: bool,
    now: Instant,
    /// The node's own events (STUN, DHT); the meeting's wait in the meeting.
    events: VecDeque<Event>,
    stats: NodeStats,
    /// The last datagrams of a meeting we left (its sessions' close alerts).
    departing: VecDeque<Transmit>,
    /// Extra sockets for port prediction.
    pool: pool::SocketPool,
    /// Predicted paths on pool sockets, aliased to the main socket.
    paths: paths::Paths,
    /// Observations of the main socket's public address, and the NAT class they show.
    nat: NatObserver,
}

impl Node {
    /// Validates `config` and starts the node at `now` (STUN discovery begins at once).
    pub fn new(now: Instant, config: NodeConfig) -> Result<Node, ConfigError> {
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
                Some(Dht::with_saved(now, dht, config.seed.child("dht"), &saved)?)
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
            stun_server: BindingServer::new(),
            dht,
            meeting: None,
            meeting_config: config.meeting,
            seed: config.seed,
            meetings_joined: 0,
            local: config.local_addr.filter(|a| !a.ip().is_unspecified()),
            remembered: SavedState {
                meetings: saved.meetings,
                ..SavedState::default()
            },
            latest_report: None,
            public: None,
            stun_reachable: false,
            stun_rounds_finished: 0,
            dht_started: false,
            auto_read_only,
            now,
            events: VecDeque::new(),
            stats: NodeStats::default(),
            departing: VecDeque::new(),
            pool: pool::SocketPool::default(),
            paths: paths::Paths::default(),
            nat: NatObserver::new(),
        };
        node.collect();
        Ok(node)
    }

    /// Joins the meeting of invitation `code`: the topic is announced and looked up every
    /// refresh interval, members found are greeted, and a WebRTC session is set up with
    /// each. Weak typed codes are refused unless `allow_weak_code` (see
    /// `docs/meetings.md`). Returns our member id (new at every join) and the code's
    /// strength.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use dhtmeet_core::{Node, NodeConfig, Seed};
    /// # let mut config = NodeConfig::new(Seed::from_u64(1));
    /// # config.local_addr = Some("198.51.100.7:4000".parse().unwrap());
    /// # let mut node = Node::new(Instant::now(), config).unwrap();
    /// let code = dhtmeet_core::code::generate(&mut Seed::from_u64(2).rng());
    /// let (me, _strength) = node.join(Instant::now(), &code, false)?;
    /// assert_eq!(node.meeting().map(|m| m.member_id()), Some(me));
    /// // Members arrive as Event::PeerConnected from `poll_event`.
    /// # Ok::<(), dhtmeet_core::JoinError>(())
    /// ```
    pub fn join(
        &mut self,
        now: Instant,
        code: &str,
        allow_weak_code: bool,
    ) -> Result<(MemberId, CodeStrength), JoinError> {
        self.advance(now);
        let strength = code::check(code, allow_weak_code)?;
        if self.meeting.is_some() {
            return Err(JoinError::AlreadyJoined);
        }
        let local = self.local.ok_or(JoinError::NoLocalAddress)?;
        let dht = self.dht.as_mut().ok_or(JoinError::NoDht)?;
        let keys = MeetingKeys::derive(code);
        let topic = keys.topic;
        dht.watch(self.now, keys.topic, LookupKind::Announce { port: None })?;
        dht.register_extension(signal::METHOD);
        self.meetings_joined += 1;
        let seed = self
            .seed
            .child(&format!("meeting/{}", self.meetings_joined));
        let mut meeting = Meeting::new(
            self.now,
            self.meeting_config.clone(),
            keys,
            dht.id(),
            local,
            seed,
        );
        for o in self.latest_report.iter().flat_map(|r| &r.observations) {
            meeting.add_reflexive(o.mapped);
        }
        meeting.set_nat_class(self.nat.class());
        // Members remembered from the last time: greeted at once, while the DHT lookup
        // that `watch` started runs in parallel.
        let remembered = self.remembered.contacts_of(&topic);
        if !remembered.is_empty() {
            tracing::debug!(contacts = remembered.len(), "greeting remembered members");
            meeting.handle_peers_found(self.now, remembered);
        }
        let me = meeting.member_id();
        self.meeting = Some(meeting);
        self.collect();
        Ok((me, strength))
    }

    /// Leaves the meeting: says bye to every member, closes every session, stops
    /// announcing. Safe to call when not in a meeting.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use dhtmeet_core::{Node, NodeConfig, Seed};
    /// # let mut config = NodeConfig::new(Seed::from_u64(1));
    /// # config.local_addr = Some("198.51.100.7:4000".parse().unwrap());
    /// # let mut node = Node::new(Instant::now(), config).unwrap();
    /// # let code = dhtmeet_core::code::generate(&mut Seed::from_u64(2).rng());
    /// node.join(Instant::now(), &code, false)?;
    /// node.leave(Instant::now()); // byes go out at the next poll_transmit
    /// assert!(node.meeting().is_none());
    /// # Ok::<(), dhtmeet_core::JoinError>(())
    /// ```
    pub fn leave(&mut self, now: Instant) {
        self.advance(now);
        let Some(meeting) = &mut self.meeting else {
            return;
        };
        let topic = meeting.topic();
        self.remembered
            .remember_meeting(topic, &meeting.member_addresses());
        meeting.leave(self.now);
        if let Some(dht) = &mut self.dht {
            dht.unwatch(&topic);
        }
        // The byes go out through the DHT, the last datagrams and events through us.
        self.collect();
        if let Some(mut m) = self.meeting.take() {
            while let Some(t) = m.poll_transmit() {
                self.departing.push_back(t);
            }
            while let Some(e) = m.poll_event() {
                self.events.push_back(e);
            }
        }
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
    /// [`SendError::WouldBlock`] when the member's delivery window is full: send again
    /// after [`Event::Writable`].
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use dhtmeet_core::{Node, NodeConfig, Seed};
    /// # let mut config = NodeConfig::new(Seed::from_u64(1));
    /// # config.local_addr = Some("198.51.100.7:4000".parse().unwrap());
    /// # let mut node = Node::new(Instant::now(), config).unwrap();
    /// use dhtmeet_core::{Event, SansIo, SendError};
    /// while let Some(event) = node.poll_event() {
    ///     if let Event::PeerConnected { member, .. } = event {
    ///         match node.send(&member, b"hello") {
    ///             Ok(()) | Err(SendError::WouldBlock) => {} // retry on Event::Writable
    ///             Err(e) => eprintln!("{member}: {e}"),
    ///         }
    ///     }
    /// }
    /// ```
    pub fn send(&mut self, member: &MemberId, data: &[u8]) -> Result<(), SendError> {
        let meeting = self.meeting.as_mut().ok_or(SendError::Closed)?;
        meeting.send(member, data)
    }

    /// Sends `data` to every connected member; returns those whose queue was full.
    pub fn broadcast(&mut self, data: &[u8]) -> Vec<MemberId> {
        self.meeting
            .as_mut()
            .map_or_else(Vec::new, |m| m.broadcast(data))
    }

    /// The DHT, for its routing table, topics and counters (`None` if not configured).
    pub fn dht(&self) -> Option<&Dht> {
        self.dht.as_ref()
    }

    /// Starts a new STUN round now (e.g. after the network changed).
    pub fn rediscover(&mut self, now: Instant) {
        self.advance(now);
        if let Some(client) = &mut self.stun_client {
            client.rediscover(self.now);
            self.collect();
        }
    }

    /// Asks the runtime for `count` pool sockets (at most [`crate::MAX_POOL_SOCKETS`]
    /// open at once); returns how many were asked for. For runtime tests: port
    /// prediction asks for its own. The node keeps these (a meeting never gets them)
    /// until [`Node::close_pool_socket`].
    #[cfg(feature = "internals")]
    pub fn open_pool_sockets(&mut self, now: Instant, count: usize) -> usize {
        self.advance(now);
        self.pool.request_kept(count)
    }

    /// Closes the pool socket of local port `port`. For runtime tests.
    #[cfg(feature = "internals")]
    pub fn close_pool_socket(&mut self, now: Instant, port: u16) {
        self.advance(now);
        self.pool.close(port);
    }

    /// Open pool sockets.
    pub fn pool_sockets(&self) -> usize {
        self.pool.len()
    }

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// The one place the children's outputs are collected and routed: STUN's findings
    /// to the DHT and the meeting, the DHT's topic peers and signaling to the meeting,
    /// the meeting's signaling to the DHT, everything else to the application. One pass
    /// suffices: STUN feeds the DHT and the meeting, the DHT feeds the meeting, and the
    /// meeting's signaling makes the DHT send, never report.
    fn collect(&mut self) {
        self.note_local();
        self.collect_pool();
        while let Some(e) = self.stun_client.as_mut().and_then(|c| c.poll_event()) {
            self.on_stun_event(e);
        }
        while let Some(e) = self.dht.as_mut().and_then(|d| d.poll_event()) {
            self.on_dht_event(e);
        }
        let (Some(m), Some(dht)) = (&mut self.meeting, &mut self.dht) else {
            return;
        };
        if let Some(ext) = dht.external_address() {
            m.add_reflexive(ext);
        }
        while let Some((to, args)) = m.poll_signal() {
            dht.send_extension(to, signal::METHOD, args);
        }
    }

    fn on_dht_event(&mut self, event: DhtEvent) {
        let now = self.now;
        let event = match event {
            DhtEvent::ExtensionQuery {
                from,
                method,
                args,
                reply,
            } => {
                // Outside a meeting, or invalid: the answer of a node that never joined.
                let valid = match &mut self.meeting {
                    Some(m) if method == signal::METHOD => m.handle_signal(now, from, &args),
                    _ => false,
                };
                let verdict = if valid {
                    ExtensionVerdict::Acknowledge
                } else {
                    ExtensionVerdict::AsUnknownMethod
                };
                if let Some(dht) = &mut self.dht {
                    dht.answer_extension(reply, verdict);
                }
                return;
            }
            DhtEvent::Ready { nodes } => {
                self.dht_started = true;
                Event::DhtReady { nodes }
            }
            DhtEvent::BootstrapFailed => {
                self.dht_started = true;
                Event::DhtBootstrapFailed
            }
            DhtEvent::PeersFound {
                info_hash, peers, ..
            } => {
                if let Some(m) = self.meeting.as_mut().filter(|m| m.topic() == info_hash) {
                    m.handle_peers_found(now, &peers);
                }
                Event::PeersFound { info_hash, peers }
            }
            DhtEvent::LookupDone(summary) => Event::LookupDone(summary),
            DhtEvent::AddressReported { by, address } => {
                return self.observe_dht_address(by, address);
            }
        };
        self.events.push_back(event);
    }

    /// A STUN message goes to a session when it is an ICE check or answer (USERNAME or
    /// MESSAGE-INTEGRITY) one of them takes; otherwise responses go to the STUN client
    /// and requests to the responder.
    fn route_stun(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, datagram: &[u8]) {
        let msg = match Message::decode(datagram) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::debug!(%remote, error = %e, "dropped malformed STUN");
                self.stats.dropped_stun_malformed += 1;
                return;
            }
        };
        if msg.has_integrity() || msg.has_username() {
            if let Some(m) = self
                .meeting
                .as_mut()
                .filter(|m| m.accepts(remote, datagram))
            {
                return m.handle_datagram(now, local, remote, datagram);
            }
        }
        match (msg.class(), &mut self.stun_client) {
            (Class::Success | Class::Error, Some(client)) => {
                client.handle_datagram(now, local, remote, datagram);
            }
            (Class::Success | Class::Error, None) => self.stats.dropped_stun_unsolicited += 1,
            (Class::Request | Class::Indication, _) => {
                self.stun_server
                    .handle_datagram(now, local, remote, datagram);
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
        if self.local.is_none() && !local.ip().is_unspecified() && !self.pool.contains(local.port())
        {
            self.local = Some(local);
        }
        // A socket bound to the unspecified address reports it as `local`; the sessions
        // know us by the configured IP. The port says which socket (ours or a pool one).
        let local = match self.local {
            Some(known) if local.ip().is_unspecified() => SocketAddr::new(known.ip(), local.port()),
            _ => local,
        };
        let now = self.now;
        let kind = PacketKind::classify(datagram);
        let probe = kind == PacketKind::Punch;
        // Probes, and anything while pool sockets are open, pass the pool's routing.
        let local = if probe || self.pool.len() > 0 {
            match self.route_pool(now, local, remote, datagram, probe) {
                Some(local) => local,
                None => return self.collect(),
            }
        } else {
            local
        };
        match kind {
            PacketKind::Stun => self.route_stun(now, local, remote, datagram),
            PacketKind::Dtls => match &mut self.meeting {
                Some(m) => m.handle_datagram(now, local, remote, datagram),
                None => self.stats.dropped_dtls += 1,
            },
            PacketKind::Krpc => match &mut self.dht {
                Some(dht) => dht.handle_datagram(now, local, remote, datagram),
                None => self.stats.dropped_krpc += 1,
            },
            PacketKind::Punch | PacketKind::Unknown => self.stats.dropped_unknown_kind += 1,
        }
        // DTLS (the data) waits for the first poll: a burst is settled once. Anything
        // else is routed now, before the next datagram of the burst: a `dm_signal` that
        // creates a session must be routed before the peer's ICE check that follows it,
        // or the check finds no session and is retransmitted ~50 ms later.
        if kind != PacketKind::Dtls {
            self.collect();
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        let now = self.now;
        if let Some(m) = &mut self.meeting {
            if m.poll_timeout().is_some_and(|t| t <= now) {
                m.handle_timeout(now);
            }
        }
        if let Some(client) = &mut self.stun_client {
            client.handle_timeout(now);
        }
        if let Some(dht) = &mut self.dht {
            dht.handle_timeout(now);
        }
        self.collect();
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        // Answers (the responder's) and a left meeting's last datagrams go where a
        // mapping exists; the others may make new ones, which the NAT observer numbers.
        let answer = self.departing.pop_front();
        if let Some(t) = answer.or_else(|| self.stun_server.poll_transmit()) {
            return Some(if self.paths.is_empty() {
                t
            } else {
                self.aliased(t)
            });
        }
        let t = (self.stun_client.as_mut().and_then(|c| c.poll_transmit()))
            .or_else(|| self.dht.as_mut().and_then(|d| d.poll_transmit()))
            .or_else(|| self.meeting.as_mut().and_then(|m| m.poll_transmit()))?;
        let t = if self.paths.is_empty() {
            t
        } else {
            self.aliased(t)
        };
        if t.source_port.is_none() {
            self.nat.note_sent(self.now, t.destination);
        }
        Some(t)
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events
            .pop_front()
            .or_else(|| self.meeting.as_mut().and_then(|m| m.poll_event()))
    }

    fn poll_socket_command(&mut self) -> Option<SocketCommand> {
        self.pool.poll_command()
    }

    fn handle_socket_opened(&mut self, now: Instant, local: SocketAddr) {
        self.advance(now);
        self.pool_socket_opened(self.now, local);
        self.collect();
    }

    fn handle_socket_failed(&mut self, now: Instant) {
        self.advance(now);
        self.pool.failed();
        if let Some(m) = &mut self.meeting {
            m.handle_socket_failed(self.now);
        }
        self.collect();
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if !self.departing.is_empty() {
            return Some(self.now);
        }
        let stun = self.stun_client.as_ref().and_then(|c| c.poll_timeout());
        let dht = self.dht.as_ref().and_then(|d| d.poll_timeout());
        let meeting = self.meeting.as_ref().and_then(|m| m.poll_timeout());
        stun.into_iter().chain(dht).chain(meeting).min()
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
