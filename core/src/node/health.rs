//! The node's health snapshot and counters.

use std::net::SocketAddr;
use std::time::Duration;

use super::Node;
use crate::dht::DhtStats;
use crate::meeting::signal::MemberId;
use crate::meeting::{MeetingStats, PredictionStats};
use crate::nat::NatClass;
use crate::stun::{ClientStats, Mapping, ServerStats};

/// Counters of everything the node received and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Datagrams handed to the node.
    pub datagrams_received: u64,
    /// Datagrams whose first byte belongs to no protocol we speak.
    pub dropped_unknown_kind: u64,
    /// DTLS records while the node is in no meeting (records for no session of a
    /// meeting are counted in `meeting.dropped_unrouted`).
    pub dropped_dtls: u64,
    /// KRPC messages while no DHT runs.
    pub dropped_krpc: u64,
    /// STUN datagrams that failed to decode.
    pub dropped_stun_malformed: u64,
    /// STUN responses that arrived while no discovery was configured.
    pub dropped_stun_unsolicited: u64,
    /// Datagrams on a pool socket that are neither probes nor from the peer of a path
    /// found on it.
    pub dropped_pool_unrouted: u64,
    /// Times the NAT moved our public port for new flows (a Linux masquerade router
    /// after a diverted flow); each one is announced explicitly.
    pub public_moves: u64,
    /// The STUN client's counters.
    pub stun_client: ClientStats,
    /// The STUN responder's counters.
    pub stun_server: ServerStats,
    /// The DHT's counters.
    pub dht: DhtStats,
    /// The meeting's signaling counters.
    pub meeting: MeetingStats,
    /// The meeting's port-prediction counters (attempts, paths, datagrams sent).
    pub prediction: PredictionStats,
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
    pub rtt: Option<Duration>,
    /// Application bytes sent to it and received from it.
    pub bytes: (u64, u64),
}

/// A snapshot of the node's health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// Whether the node has finished starting up: its first STUN round has ended
    /// (answered or not) and its DHT has bootstrapped or given up once. A node with no
    /// STUN servers or no DHT does not wait for that part.
    pub initialised: bool,
    /// Whether any STUN server answered in the latest finished round.
    pub stun_reachable: bool,
    /// Our public address, if known.
    pub public_address: Option<SocketAddr>,
    /// The NAT's mapping behaviour, if known (from the latest STUN round alone).
    pub mapping: Mapping,
    /// How the NAT maps our socket, from every observation of our address (STUN and
    /// DHT nodes); see [`Node::nat_class`].
    pub nat: NatClass,
    /// The observations `nat` rests on.
    pub nat_observations: usize,
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

impl Node {
    /// A snapshot of the node's state and counters.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use dhtmeet_core::{Node, NodeConfig, Seed};
    /// let mut config = NodeConfig::new(Seed::from_u64(1));
    /// config.dht.as_mut().unwrap().bootstrap = vec!["192.0.2.1:6881".parse().unwrap()];
    /// let node = Node::new(Instant::now(), config).unwrap();
    /// let health = node.health();
    /// assert!(!health.initialised); // the bootstrap node has not answered yet
    /// for peer in &health.peers {
    ///     println!("{}: rtt {:?}, bytes {:?}", peer.member, peer.rtt, peer.bytes);
    /// }
    /// ```
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
            stats.prediction = m.prediction_stats();
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
        let report = self.latest_report.as_ref();
        Health {
            initialised: (self.stun_client.is_none() || self.stun_rounds_finished > 0)
                && (self.dht.is_none() || self.dht_started),
            stun_reachable: self.stun_reachable,
            public_address: report.map(|r| r.first.mapped),
            mapping: report.map_or(Mapping::Unknown, |r| r.mapping),
            nat: self.nat.class(),
            nat_observations: self.nat.observations().len(),
            dht_ready: self.dht.as_ref().is_some_and(|d| d.is_ready()),
            routing_table_size: self.dht.as_ref().map_or(0, |d| d.routing_table_size()),
            dht_read_only: self.dht.as_ref().is_some_and(|d| d.is_read_only()),
            peers,
            stats,
        }
    }
}
