//! The DHT's settings, their defaults (the design's values) and their validation.

use std::net::SocketAddr;
use std::time::Duration;

use super::id::NodeId;

/// Bootstrap addresses at most.
pub const MAX_BOOTSTRAP: usize = 32;
/// DHT settings. `Default` gives the design's values and no bootstrap node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhtConfig {
    /// Where to bootstrap from (resolved by the runtime; the public routers are the
    /// runtime's default for the real Internet, never the core's).
    pub bootstrap: Vec<SocketAddr>,
    /// A fixed node id (`NODE_ID`); otherwise random, and BEP 42-secure once our public
    /// IP is known.
    pub node_id: Option<NodeId>,
    /// BEP 43 read-only, always: we query but do not answer, and ask others not to
    /// query us (registered extension queries, meeting signaling, still get through).
    pub read_only: bool,
    /// BEP 43 read-only while the node may be behind a NAT (used by `Node`): with STUN
    /// servers configured, the DHT starts read-only and answers queries only once STUN
    /// shows that the node's public address is its own socket address. A node behind a
    /// NAT that answers would enter others' routing tables while most of them cannot
    /// reach it, and every lookup that meets it waits out two RPC timeouts. Without
    /// STUN servers (a public DHT node) this has no effect.
    pub read_only_behind_nat: bool,
    /// Time to wait for an answer before retransmitting once, then giving up. Lookup
    /// queries wait a timeout from measured round-trip times instead, at most this.
    pub rpc_timeout: Duration,
    /// Queries in flight per lookup (α).
    pub alpha: usize,
    /// Closest nodes a lookup converges on and announces to (k).
    pub k: usize,
    /// Re-announce and re-lookup of watched topics.
    pub refresh_interval: Duration,
    /// Refuse routing-table entries whose id is not BEP 42-valid for their IP.
    pub enforce_bep42: bool,
    /// Retry a failed bootstrap after this long.
    pub bootstrap_retry: Duration,
}

impl Default for DhtConfig {
    fn default() -> Self {
        DhtConfig {
            bootstrap: Vec::new(),
            node_id: None,
            read_only: false,
            read_only_behind_nat: true,
            rpc_timeout: Duration::from_millis(1500),
            alpha: 3,
            k: 8,
            refresh_interval: Duration::from_secs(30),
            enforce_bep42: false,
            bootstrap_retry: Duration::from_secs(30),
        }
    }
}

/// A [`DhtConfig`] that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DhtConfigError {
    /// More than [`MAX_BOOTSTRAP`] bootstrap addresses.
    #[error("{0} DHT bootstrap nodes configured, at most {MAX_BOOTSTRAP} are allowed")]
    TooManyBootstrap(usize),
    /// The RPC timeout is zero.
    #[error("the DHT RPC timeout must be positive")]
    ZeroRpcTimeout,
    /// α is zero or larger than k.
    #[error("DHT alpha must be between 1 and k")]
    BadAlpha,
    /// k is zero or larger than a bucket.
    #[error("DHT k must be between 1 and {}", super::routing::K)]
    BadK,
    /// The refresh interval is zero.
    #[error("the DHT refresh interval must be positive")]
    ZeroRefreshInterval,
}

impl DhtConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), DhtConfigError> {
        if self.bootstrap.len() > MAX_BOOTSTRAP {
            return Err(DhtConfigError::TooManyBootstrap(self.bootstrap.len()));
        }
        if self.rpc_timeout.is_zero() {
            return Err(DhtConfigError::ZeroRpcTimeout);
        }
        if self.k == 0 || self.k > super::routing::K {
            return Err(DhtConfigError::BadK);
        }
        if self.alpha == 0 || self.alpha > self.k {
            return Err(DhtConfigError::BadAlpha);
        }
        if self.refresh_interval.is_zero() || self.bootstrap_retry.is_zero() {
            return Err(DhtConfigError::ZeroRefreshInterval);
        }
        Ok(())
    }
}
