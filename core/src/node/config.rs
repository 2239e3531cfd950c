//! What a [`Node`](super::Node) is configured with, and what its API calls refuse.

use std::net::SocketAddr;

use crate::dht::{DhtConfig, DhtConfigError, DhtError};
use crate::meeting::MeetingConfig;
use crate::meeting::code::CodeError;
use crate::seed::Seed;
use crate::state::SavedState;
use crate::stun::{StunConfig, StunConfigError};
use crate::webrtc::SessionConfigError;

/// Everything a node is configured with.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The root of all the node's randomness (transaction ids, node ids, member ids,
    /// ICE credentials). Same seed and same inputs give the same outputs.
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
    ///
    /// [`Node::export_state`]: super::Node::export_state
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

/// Why [`Node::join`](super::Node::join) refused.
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

/// Why a DHT lookup or announce ([`Node::get_peers`](super::Node::get_peers) and the
/// like) could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The node runs no DHT (`NodeConfig::dht` is `None`).
    #[error("the node runs no DHT")]
    NoDht,
    /// The DHT refused (too many lookups running).
    #[error(transparent)]
    Dht(#[from] DhtError),
}
