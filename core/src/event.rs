//! [`Event`]: what a node tells its application. The meeting emits its variants itself,
//! so a member's event crosses no mapping on its way out.

use std::net::SocketAddr;

use crate::dht::{InfoHash, LookupSummary};
use crate::meeting::Via;
use crate::meeting::signal::MemberId;
use crate::stun::{AllServersFailed, StunReport};
use crate::webrtc::DisconnectReason;

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
        /// Where its signaling came from.
        addr: SocketAddr,
    },
    /// The data channel to a member is open.
    PeerConnected {
        /// The member.
        member: MemberId,
        /// How it was reached: directly, or over a path port prediction found.
        via: Via,
    },
    /// The session to a member failed; another attempt follows after the reconnect delay.
    PeerReconnecting {
        /// The member.
        member: MemberId,
        /// Why the session failed.
        reason: DisconnectReason,
        /// The attempt that follows (1-based).
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
    /// A member's send queue has room again after a
    /// [`SendError::WouldBlock`](crate::SendError::WouldBlock).
    Writable {
        /// The member.
        member: MemberId,
    },
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
