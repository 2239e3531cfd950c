//! The `dht` scenario's settings.

use std::net::SocketAddr;
use std::time::Duration;

use dhtmeet_core::dht::{DhtConfig, DhtConfigError};

use super::public_addr;
use crate::preset::NatPreset;

/// The presets NAT'd clients sit behind, in turn.
pub const CLIENT_PRESETS: [NatPreset; 6] = [
    NatPreset::Home,
    NatPreset::PortRestrictedCone,
    NatPreset::Symmetric,
    NatPreset::Cgnat,
    NatPreset::FullCone,
    NatPreset::RestrictedCone,
];

/// Public nodes at most (one `/16` of addresses).
pub const MAX_NODES: usize = 65_000;

/// The DHT port of every public node.
pub const DHT_PORT: u16 = 6881;

/// How long the scenario waits for lookups still running after the last one started.
pub const DRAIN: Duration = Duration::from_secs(90);

/// The `dht` scenario's settings. `Default` is 1,000 nodes, 100 lookups of each kind, no
/// loss, no churn, no NAT'd clients, 4 bootstrap nodes, delays 10–150 ms.
#[derive(Clone, Debug, PartialEq)]
pub struct DhtSimConfig {
    /// DHT nodes with public addresses (bootstrap nodes included).
    pub nodes: usize,
    /// Announces, get_peers lookups and find_node lookups: this many of each.
    pub lookups: usize,
    /// Probability that a datagram is lost between two hosts (0–1).
    pub loss: f64,
    /// Fraction of the non-bootstrap public nodes that crash and restart (0–1).
    pub churn: f64,
    /// Mean uptime and mean downtime of a churning node.
    pub churn_period: Duration,
    /// DHT nodes behind NAT presets ([`CLIENT_PRESETS`], in turn).
    pub nat_clients: usize,
    /// NAT'd clients run BEP 43 read-only (they query, are never queried).
    pub nat_read_only: bool,
    /// Bootstrap nodes (the first public nodes).
    pub bootstrap_nodes: usize,
    /// Shortest one-way delay of a path.
    pub min_delay: Duration,
    /// Longest one-way delay of a path.
    pub max_delay: Duration,
    /// Members joining per second of virtual time.
    pub join_rate: u32,
    /// Virtual time between the last join and the first measurement.
    pub settle: Duration,
    /// Virtual time between two lookup starts.
    pub spacing: Duration,
    /// The DHT settings of every node (`bootstrap` is filled in by the scenario).
    pub dht: DhtConfig,
}

impl Default for DhtSimConfig {
    fn default() -> Self {
        DhtSimConfig {
            nodes: 1000,
            lookups: 100,
            loss: 0.0,
            churn: 0.0,
            churn_period: Duration::from_secs(30),
            nat_clients: 0,
            nat_read_only: false,
            bootstrap_nodes: 4,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(150),
            join_rate: 100,
            settle: Duration::from_secs(60),
            spacing: Duration::from_millis(20),
            dht: DhtConfig::default(),
        }
    }
}

/// A [`DhtSimConfig`] that cannot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DhtSimConfigError {
    /// `nodes` is not in 1 ..= [`MAX_NODES`], or fewer than the bootstrap nodes.
    #[error("the DHT needs between the bootstrap node count (at least 1) and {MAX_NODES} nodes")]
    NodeCount,
    /// More than [`MAX_NODES`] NAT'd clients.
    #[error("at most {MAX_NODES} NAT'd clients")]
    ClientCount,
    /// A probability is outside 0–1.
    #[error("{0} must be between 0 and 1")]
    Probability(&'static str),
    /// `min_delay` exceeds `max_delay`.
    #[error("the minimum delay exceeds the maximum delay")]
    Delay,
    /// `join_rate` is zero, or `spacing` or `churn_period` is zero.
    #[error("the join rate, the lookup spacing and the churn period must be positive")]
    Rate,
    /// The DHT settings are invalid.
    #[error("DHT configuration: {0}")]
    Dht(#[from] DhtConfigError),
}

impl DhtSimConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), DhtSimConfigError> {
        if self.bootstrap_nodes == 0 || self.nodes < self.bootstrap_nodes || self.nodes > MAX_NODES
        {
            return Err(DhtSimConfigError::NodeCount);
        }
        if self.nat_clients > MAX_NODES {
            return Err(DhtSimConfigError::ClientCount);
        }
        for (name, p) in [("loss", self.loss), ("churn", self.churn)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(DhtSimConfigError::Probability(name));
            }
        }
        if self.min_delay > self.max_delay {
            return Err(DhtSimConfigError::Delay);
        }
        if self.join_rate == 0 || self.spacing.is_zero() || self.churn_period.is_zero() {
            return Err(DhtSimConfigError::Rate);
        }
        let bootstrap: Vec<SocketAddr> = (0..self.bootstrap_nodes).map(public_addr).collect();
        DhtConfig {
            bootstrap: bootstrap[..bootstrap.len().min(dhtmeet_core::dht::MAX_BOOTSTRAP)].to_vec(),
            ..self.dht.clone()
        }
        .validate()?;
        Ok(())
    }
}
