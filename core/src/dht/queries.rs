//! Our side of KRPC: the queries we sent and await an answer to, each under a random
//! transaction id, retransmitted once, and matched to the reply from the address we
//! asked (BEP 5).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::Rng as _;

use super::events::{DhtStats, Outbox};
use super::id::NodeId;
use super::krpc::{Body, Message, Query};
use super::lookup::LookupId;
use crate::seed::Rng;

/// Queries of ours awaiting an answer at most (≤ lookups × α + announces + pings).
pub const MAX_PENDING: usize = 1024;
/// Our client version in `v`: "DM" and a 2-byte version (BEP 20 style).
pub const CLIENT_VERSION: [u8; 4] = *b"DM\x00\x01";
/// Attempts per query (the first send plus one retransmission).
const ATTEMPTS: u8 = 2;

/// Why we sent a query: where its answer or failure goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    Lookup(LookupId),
    Announce(LookupId),
    Ping,
    /// An extension query (meeting signaling): fire and forget, retransmitted once.
    Extension,
}

/// A query to send.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) to: SocketAddr,
    /// The node's id, if we know it (bootstrap addresses and pings of strangers: not).
    pub(super) id: Option<NodeId>,
    pub(super) query: Query,
    pub(super) purpose: Purpose,
}

/// A query of ours that was answered, refused, or went unanswered.
#[derive(Clone, Copy, Debug)]
pub(super) struct Settled {
    pub(super) to: SocketAddr,
    pub(super) id: Option<NodeId>,
    pub(super) purpose: Purpose,
}

#[derive(Debug)]
struct Pending {
    to: SocketAddr,
    id: Option<NodeId>,
    purpose: Purpose,
    bytes: Vec<u8>,
    deadline: Instant,
    attempts: u8,
}

impl Pending {
    fn settled(&self) -> Settled {
        Settled {
            to: self.to,
            id: self.id,
            purpose: self.purpose,
        }
    }
}

/// The transactions we have open.
#[derive(Debug)]
pub(super) struct Queries {
    pending: BTreeMap<[u8; 4], Pending>,
    rpc_timeout: Duration,
    counts: DhtStats,
}

impl Queries {
    /// None open; each attempt waits `rpc_timeout` for its answer.
    pub(super) fn new(rpc_timeout: Duration) -> Self {
        Queries {
            pending: BTreeMap::new(),
            rpc_timeout,
            counts: DhtStats::default(),
        }
    }

    /// Builds and sends a query from `from` (marked `ro` if `read_only`) under a fresh
    /// transaction id drawn from `rng`; false if it could not be sent (too many pending).
    pub(super) fn send(
        &mut self,
        now: Instant,
        rng: &mut Rng,
        from: NodeId,
        read_only: bool,
        out: &mut Outbox,
        q: Outgoing,
    ) -> bool {
        if self.pending.len() >= MAX_PENDING {
            self.counts.dropped_pending_full += 1;
            return false;
        }
        let mut t = [0u8; 4];
        loop {
            rng.fill_bytes(&mut t);
            if !self.pending.contains_key(&t) {
                break;
            }
        }
        let msg = Message {
            transaction_id: t.to_vec(),
            version: Some(CLIENT_VERSION.to_vec()),
            read_only,
            ip: None,
            body: Body::Query {
                id: from,
                query: q.query,
            },
        };
        let bytes = msg.encode();
        out.send(q.to, bytes.clone());
        self.counts.queries_sent += 1;
        self.pending.insert(
            t,
            Pending {
                to: q.to,
                id: q.id,
                purpose: q.purpose,
                bytes,
                deadline: now + self.rpc_timeout,
                attempts: 1,
            },
        );
        true
    }

    /// Pings in flight.
    pub(super) fn pings_in_flight(&self) -> usize {
        self.pending
            .values()
            .filter(|p| p.purpose == Purpose::Ping)
            .count()
    }

    /// The query a reply from `remote` answers, closed; `None` (counted) if it answers
    /// none of ours or comes from another address than the one we asked.
    pub(super) fn take_reply(&mut self, remote: SocketAddr, msg: &Message) -> Option<Settled> {
        let Ok(t) = <[u8; 4]>::try_from(msg.transaction_id.as_slice()) else {
            self.counts.dropped_unknown_transaction += 1;
            return None;
        };
        let Some(pending) = self.pending.get(&t) else {
            self.counts.dropped_unknown_transaction += 1;
            return None;
        };
        if pending.to != remote {
            self.counts.dropped_unexpected_source += 1;
            return None;
        }
        let pending = self.pending.remove(&t)?;
        match msg.body {
            Body::Response { .. } => self.counts.responses_received += 1,
            Body::Error { .. } => self.counts.errors_received += 1,
            Body::Query { .. } => {}
        }
        Some(pending.settled())
    }

    /// Transactions whose answer is overdue at `now`, for [`Queries::retry_or_expire`].
    pub(super) fn overdue(&self, now: Instant) -> Vec<[u8; 4]> {
        self.pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(t, _)| *t)
            .collect()
    }

    /// Retransmits the overdue query `t` if it has an attempt left; otherwise closes it
    /// and returns it as failed.
    pub(super) fn retry_or_expire(
        &mut self,
        now: Instant,
        t: [u8; 4],
        out: &mut Outbox,
    ) -> Option<Settled> {
        let p = self.pending.get_mut(&t)?;
        if p.attempts < ATTEMPTS {
            p.attempts += 1;
            p.deadline = now + self.rpc_timeout;
            out.send(p.to, p.bytes.clone());
            self.counts.queries_sent += 1;
            return None;
        }
        let p = self.pending.remove(&t)?;
        self.counts.timeouts += 1;
        Some(p.settled())
    }

    /// When the next open query is overdue.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Fills in our counters (queries sent, replies, timeouts, and what we dropped of
    /// them) in `stats`.
    pub(super) fn count_into(&self, stats: &mut DhtStats) {
        let c = &self.counts;
        stats.queries_sent = c.queries_sent;
        stats.responses_received = c.responses_received;
        stats.errors_received = c.errors_received;
        stats.timeouts = c.timeouts;
        stats.dropped_unknown_transaction = c.dropped_unknown_transaction;
        stats.dropped_unexpected_source = c.dropped_unexpected_source;
        stats.dropped_pending_full = c.dropped_pending_full;
    }
}
