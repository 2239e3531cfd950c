//! The [`Node`]: one UDP socket's worth of protocol, demultiplexed by first byte.
//!
//! Today a node discovers its public address with STUN and answers other nodes' Binding
//! requests. The DHT and meetings join it in later milestones, on the same socket.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crate::demux::PacketKind;
use crate::dht::{Dht, DhtConfig, DhtConfigError, DhtEvent, DhtStats, InfoHash, LookupSummary};
use crate::seed::Seed;
use crate::stun::wire::{Class, Message};
use crate::stun::{
    AllServersFailed, BindingClient, BindingServer, ClientStats, Mapping, ServerStats, StunConfig,
    StunConfigError, StunEvent, StunReport,
};
use crate::transmit::{SansIo, Transmit};

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
}

impl NodeConfig {
    /// The design's defaults, with `seed` as the root of the node's randomness and no
    /// STUN servers (the runtimes fill in `stun.servers`).
    pub fn new(seed: Seed) -> Self {
        NodeConfig {
            seed,
            stun: StunConfig::default(),
            dht: Some(DhtConfig::default()),
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
}

/// A snapshot of the node's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    events: VecDeque<Event>,
    stats: NodeStats,
}

impl Node {
    /// Validates `config` and starts the node at `now` (STUN discovery begins at once).
    pub fn new(config: NodeConfig, now: Instant) -> Result<Node, ConfigError> {
        config.stun.validate()?;
        let dht = match config.dht {
            Some(dht) => Some(Dht::new(dht, config.seed.child("dht"), now)?),
            None => None,
        };
        let stun_client = if config.stun.servers.is_empty() {
            None
        } else {
            Some(BindingClient::new(
                config.stun,
                config.seed.child("stun"),
                now,
            )?)
        };
        let mut node = Node {
            stun_client,
            dht,
            stun_server: BindingServer::new(),
            latest_report: None,
            stun_reachable: false,
            events: VecDeque::new(),
            stats: NodeStats::default(),
        };
        node.collect_dht_events();
        Ok(node)
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
            stats,
        }
    }

    fn handle_stun(&mut self, now: Instant, remote: SocketAddr, datagram: &[u8]) {
        let msg = match Message::decode(datagram) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::debug!(%remote, error = %e, "dropped malformed STUN");
                self.stats.dropped_stun_malformed += 1;
                return;
            }
        };
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
        while let Some(event) = dht.poll_event() {
            self.events.push_back(match event {
                DhtEvent::Ready { nodes } => Event::DhtReady { nodes },
                DhtEvent::BootstrapFailed => Event::DhtBootstrapFailed,
                DhtEvent::PeersFound {
                    info_hash, peers, ..
                } => Event::PeersFound { info_hash, peers },
                DhtEvent::LookupDone(summary) => Event::LookupDone(summary),
            });
        }
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
        match PacketKind::classify(datagram) {
            PacketKind::Stun => self.handle_stun(now, remote, datagram),
            PacketKind::Dtls => self.stats.dropped_dtls += 1,
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
        self.stun_server
            .poll_transmit()
            .or_else(|| self.stun_client.as_mut().and_then(|c| c.poll_transmit()))
            .or_else(|| self.dht.as_mut().and_then(|d| d.poll_transmit()))
    }

    fn poll_event(&mut self) -> Option<Event> {
        // Events of API calls made through `dht_mut` are collected here.
        self.collect_dht_events();
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let stun = self.stun_client.as_ref().and_then(|c| c.poll_timeout());
        let dht = self.dht.as_ref().and_then(|d| d.poll_timeout());
        stun.into_iter().chain(dht).min()
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
