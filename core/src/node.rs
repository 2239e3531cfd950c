//! The [`Node`]: one UDP socket's worth of protocol, demultiplexed by first byte.
//!
//! Today a node discovers its public address with STUN and answers other nodes' Binding
//! requests. The DHT and meetings join it in later milestones, on the same socket.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crate::demux::PacketKind;
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
}

impl NodeConfig {
    /// The design's defaults, with `seed` as the root of the node's randomness and no
    /// STUN servers (the runtimes fill in `stun.servers`).
    pub fn new(seed: Seed) -> Self {
        NodeConfig {
            seed,
            stun: StunConfig::default(),
        }
    }
}

/// A configuration the node refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The STUN settings are invalid.
    #[error("invalid STUN settings: {0}")]
    Stun(#[from] StunConfigError),
}

/// What a node tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// STUN found the node's public address (and, with two servers, the NAT's mapping).
    AddressDiscovered(StunReport),
    /// No STUN server answered in this round (a retry follows if configured).
    StunUnreachable(AllServersFailed),
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
    /// KRPC messages (no DHT in this version).
    pub dropped_krpc: u64,
    /// STUN datagrams that failed to decode.
    pub dropped_stun_malformed: u64,
    /// STUN responses that arrived while no discovery was configured.
    pub dropped_stun_unsolicited: u64,
    /// The STUN client's counters.
    pub stun_client: ClientStats,
    /// The STUN responder's counters.
    pub stun_server: ServerStats,
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
    /// Traffic counters.
    pub stats: NodeStats,
}

/// A dhtmeet node: the sans-IO state machine a runtime drives over one UDP socket.
#[derive(Debug)]
pub struct Node {
    stun_client: Option<BindingClient>,
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
        let stun_client = if config.stun.servers.is_empty() {
            None
        } else {
            Some(BindingClient::new(
                config.stun,
                config.seed.child("stun"),
                now,
            )?)
        };
        Ok(Node {
            stun_client,
            stun_server: BindingServer::new(),
            latest_report: None,
            stun_reachable: false,
            events: VecDeque::new(),
            stats: NodeStats::default(),
        })
    }

    /// Starts a new STUN round now (e.g. after the network changed).
    pub fn rediscover(&mut self, now: Instant) {
        if let Some(client) = &mut self.stun_client {
            client.rediscover(now);
            self.collect_stun_events();
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
        Health {
            initialised: true,
            stun_reachable: self.stun_reachable,
            public_address: self.latest_report.as_ref().map(|r| r.first.mapped),
            mapping: self
                .latest_report
                .as_ref()
                .map_or(Mapping::Unknown, |r| r.mapping),
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
                    self.collect_stun_events();
                }
                None => self.stats.dropped_stun_unsolicited += 1,
            },
            Class::Request | Class::Indication => self.stun_server.handle_message(remote, &msg),
        }
    }

    fn collect_stun_events(&mut self) {
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
        _local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
    ) {
        self.stats.datagrams_received += 1;
        match PacketKind::classify(datagram) {
            PacketKind::Stun => self.handle_stun(now, remote, datagram),
            PacketKind::Dtls => self.stats.dropped_dtls += 1,
            PacketKind::Krpc => self.stats.dropped_krpc += 1,
            PacketKind::Unknown => self.stats.dropped_unknown_kind += 1,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Some(client) = &mut self.stun_client {
            client.handle_timeout(now);
            self.collect_stun_events();
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.stun_server
            .poll_transmit()
            .or_else(|| self.stun_client.as_mut().and_then(|c| c.poll_transmit()))
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.stun_client.as_ref().and_then(|c| c.poll_timeout())
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
