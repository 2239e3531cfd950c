//! What the DHT reports: events, lookup summaries, counters, and refused API calls; and
//! the outbox every part of the node writes its datagrams and events to.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use super::extension::ExtensionReply;
use super::id::{InfoHash, NodeId};
use super::krpc::CompactNode;
use super::lookup::{LookupId, LookupKind};
use super::lookups::MAX_LOOKUPS;
use super::topics::MAX_TOPICS;
use crate::transmit::Transmit;

/// An API call the DHT refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DhtError {
    /// [`MAX_LOOKUPS`] lookups are running.
    #[error("too many DHT lookups running (at most {MAX_LOOKUPS})")]
    TooManyLookups,
    /// [`MAX_TOPICS`] topics are watched.
    #[error("too many DHT topics watched (at most {MAX_TOPICS})")]
    TooManyTopics,
}

/// What a finished lookup found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupSummary {
    /// The lookup.
    pub id: LookupId,
    /// What it was.
    pub kind: LookupKind,
    /// The id or info-hash looked up.
    pub target: NodeId,
    /// Peers found (get_peers and announce).
    pub peers: Vec<SocketAddr>,
    /// The k closest nodes that answered, closest first.
    pub closest: Vec<CompactNode>,
    /// Queries sent by the lookup (announces not counted).
    pub rpcs: u32,
    /// Time from start to the last answer needed.
    pub elapsed: Duration,
    /// Nodes that acknowledged our announce_peer.
    pub announced: usize,
}

/// What the DHT reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhtEvent {
    /// Bootstrap finished with this many nodes in the routing table (0 for a node with no
    /// bootstrap address: the first node of a network).
    Ready {
        /// Nodes in the routing tables.
        nodes: usize,
    },
    /// No bootstrap node answered; retried after [`DhtConfig::bootstrap_retry`](super::DhtConfig::bootstrap_retry).
    BootstrapFailed,
    /// A get_peers or announce lookup found new peers (sent as they arrive).
    PeersFound {
        /// The lookup.
        lookup: LookupId,
        /// The info-hash.
        info_hash: InfoHash,
        /// Peers not reported before by this lookup.
        peers: Vec<SocketAddr>,
    },
    /// A lookup finished.
    LookupDone(LookupSummary),
    /// A node answering one of our queries said where it saw us (BEP 42 `ip`): an
    /// observation of our public address by the destination `by`, which we queried.
    /// Unverified (a node can lie); one per response that carries `ip`, so at most one
    /// per query we sent.
    AddressReported {
        /// The node that answered (the destination of our query).
        by: SocketAddr,
        /// Our address as it saw it.
        address: SocketAddr,
    },
    /// A query of a registered extension method arrived. It is answered only when the
    /// owner passes `reply` to [`Dht::answer_extension`](super::Dht::answer_extension)
    /// with its verdict.
    ExtensionQuery {
        /// Where it came from.
        from: SocketAddr,
        /// The method.
        method: Vec<u8>,
        /// The raw bencoded `a` dictionary.
        args: Vec<u8>,
        /// Where the answer goes.
        reply: ExtensionReply,
    },
}

/// Counters of the DHT's traffic and of what it dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DhtStats {
    /// Queries received and answered (or refused with an error).
    pub queries_received: u64,
    /// Error replies sent (203 protocol, 204 method unknown).
    pub errors_sent: u64,
    /// Queries sent, retransmissions included.
    pub queries_sent: u64,
    /// Responses matched to one of our queries.
    pub responses_received: u64,
    /// Error replies received.
    pub errors_received: u64,
    /// Queries of ours that went unanswered after every attempt.
    pub timeouts: u64,
    /// Lookup queries whose first attempt went unanswered within the timeout from
    /// measured round-trip times: sent again while the lookup asked the next candidate.
    pub soft_timeouts: u64,
    /// Announces stored.
    pub announces_stored: u64,
    /// Datagrams that were not valid KRPC.
    pub dropped_malformed: u64,
    /// Responses to transactions we do not have (late, duplicated, forged).
    pub dropped_unknown_transaction: u64,
    /// Responses from an address other than the one we queried.
    pub dropped_unexpected_source: u64,
    /// Queries over a rate limit (their source's, per IP or IPv6 /64, or the total).
    pub dropped_flood: u64,
    /// Queries received while read-only (BEP 43).
    pub dropped_read_only: u64,
    /// announce_peer with a token that was forged, expired or for another IP.
    pub dropped_bad_token: u64,
    /// Queries not sent because [`MAX_PENDING`](super::MAX_PENDING) were outstanding.
    pub dropped_pending_full: u64,
}

/// Datagrams to send and events to report, in the order the node's parts produced them.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    transmits: VecDeque<Transmit>,
    events: VecDeque<DhtEvent>,
}

impl Outbox {
    /// Queues `contents` for `destination`.
    pub(super) fn send(&mut self, destination: SocketAddr, contents: Vec<u8>) {
        self.transmits.push_back(Transmit::new(destination, contents));
    }

    /// Queues an event.
    pub(super) fn report(&mut self, event: DhtEvent) {
        self.events.push_back(event);
    }

    pub(super) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub(super) fn poll_event(&mut self) -> Option<DhtEvent> {
        self.events.pop_front()
    }
}
